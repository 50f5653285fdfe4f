//! Test doubles for deterministic tests of the driver and the client: a [`Runtime`] whose
//! clock moves only by hand and whose tasks run only when a test says so, and an in-memory
//! [`ByteStream`] whose peer the test plays (partial writes, reads split anywhere, stalls,
//! drips, closes). No sockets, no threads, no sleeping.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::io::ByteStream;
use crate::runtime::{BoxFuture, Runtime, Timer};
use std::collections::VecDeque;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Polls `f` once with a waker that does nothing (the tests poll again when they choose).
pub(crate) fn poll<F: std::future::Future + ?Sized>(f: Pin<&mut F>) -> Poll<F::Output> {
    f.poll(&mut Context::from_waker(Waker::noop()))
}

/// The output of `f`, which must be ready at its first poll.
pub(crate) fn ready<F: std::future::Future>(f: F) -> F::Output {
    match poll(std::pin::pin!(f)) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("not ready"),
    }
}

/// What a scripted connect attempt does.
pub(crate) enum Connect {
    /// Succeeds with this stream.
    Open(MemStream),
    /// Fails at once.
    Refuse,
    /// Never completes (a connect that hangs).
    Hang,
    /// Succeeds with this stream once the clock has moved this far past the attempt.
    OpenAfter(Duration, MemStream),
}

#[derive(Default)]
struct RtState {
    now_offset: Duration,
    tasks: Vec<BoxFuture<'static, ()>>,
    connects: VecDeque<Connect>,
    /// When each connect attempt was made, as offsets from the start.
    attempts: Vec<Duration>,
}

/// A runtime driven by hand.
#[derive(Clone)]
pub(crate) struct ManualRuntime {
    start: Instant,
    state: Arc<Mutex<RtState>>,
    single_threaded: bool,
}

impl std::fmt::Debug for ManualRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ManualRuntime")
    }
}

impl ManualRuntime {
    pub(crate) fn new() -> ManualRuntime {
        ManualRuntime {
            start: Instant::now(),
            state: Arc::default(),
            single_threaded: false,
        }
    }

    /// The same runtime, saying that it runs every task on one thread.
    pub(crate) fn single_threaded(self) -> ManualRuntime {
        ManualRuntime {
            single_threaded: true,
            ..self
        }
    }

    /// Moves the clock forward.
    pub(crate) fn advance(&self, d: Duration) {
        self.state.lock().unwrap().now_offset += d;
    }

    /// Time since the runtime was made.
    pub(crate) fn elapsed(&self) -> Duration {
        self.state.lock().unwrap().now_offset
    }

    /// Scripts the next connect attempt.
    pub(crate) fn on_connect(&self, c: Connect) {
        self.state.lock().unwrap().connects.push_back(c);
    }

    /// When each connect attempt was made (offsets from the start).
    pub(crate) fn attempts(&self) -> Vec<Duration> {
        self.state.lock().unwrap().attempts.clone()
    }

    /// Polls every spawned task once; finished tasks are dropped.
    pub(crate) fn run_tasks(&self) {
        let mut tasks = std::mem::take(&mut self.state.lock().unwrap().tasks);
        let mut cx = Context::from_waker(Waker::noop());
        tasks.retain_mut(|t| t.as_mut().poll(&mut cx).is_pending());
        self.state.lock().unwrap().tasks.extend(tasks);
    }

    /// Number of tasks still running.
    pub(crate) fn tasks(&self) -> usize {
        self.state.lock().unwrap().tasks.len()
    }

    fn open(&self) -> BoxFuture<'static, io::Result<Box<dyn ByteStream>>> {
        let mut state = self.state.lock().unwrap();
        let at = state.now_offset;
        state.attempts.push(at);
        match state.connects.pop_front() {
            Some(Connect::Open(s)) => {
                Box::pin(async move { Ok(Box::new(s) as Box<dyn ByteStream>) })
            }
            Some(Connect::Refuse) | None => {
                Box::pin(async { Err(io::ErrorKind::ConnectionRefused.into()) })
            }
            Some(Connect::Hang) => Box::pin(std::future::pending()),
            Some(Connect::OpenAfter(delay, s)) => {
                let (rt, ready_at) = (self.clone(), at + delay);
                Box::pin(std::future::poll_fn(move |_| {
                    if rt.elapsed() >= ready_at {
                        Poll::Ready(Ok(Box::new(s.clone()) as Box<dyn ByteStream>))
                    } else {
                        Poll::Pending
                    }
                }))
            }
        }
    }
}

impl Runtime for ManualRuntime {
    fn spawn(&self, future: BoxFuture<'static, ()>) {
        self.state.lock().unwrap().tasks.push(future);
    }

    fn timer(&self, at: Instant) -> Pin<Box<dyn Timer>> {
        Box::pin(ManualTimer {
            rt: self.clone(),
            at,
        })
    }

    fn now(&self) -> Instant {
        self.start + self.elapsed()
    }

    fn single_threaded(&self) -> bool {
        self.single_threaded
    }

    fn connect_tcp<'a>(&'a self, _: &'a str) -> BoxFuture<'a, io::Result<Box<dyn ByteStream>>> {
        self.open()
    }

    fn connect_unix<'a>(&'a self, _: &'a Path) -> BoxFuture<'a, io::Result<Box<dyn ByteStream>>> {
        self.open()
    }
}

struct ManualTimer {
    rt: ManualRuntime,
    at: Instant,
}

impl Timer for ManualTimer {
    fn reset(self: Pin<&mut Self>, at: Instant) {
        self.get_mut().at = at;
    }

    fn poll_fire(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if self.rt.now() >= self.at {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

#[derive(Default)]
struct Wire {
    /// Bytes the server sent that the client has not read.
    to_client: VecDeque<u8>,
    /// Everything the client wrote.
    from_client: Vec<u8>,
    /// Most bytes one read returns (reads split anywhere).
    read_chunk: Option<usize>,
    /// Most bytes one write takes (partial writes).
    write_chunk: Option<usize>,
    /// Writes return `Pending` (the peer stopped reading).
    write_blocked: bool,
    /// The server closed: reads return 0 once `to_client` is empty.
    closed: bool,
    writes: usize,
    /// The room each read offered, in order.
    offered: Vec<usize>,
}

/// The client's end of an in-memory connection; clones share it, so the test keeps one to
/// play the server.
#[derive(Clone, Default)]
pub(crate) struct MemStream(Arc<Mutex<Wire>>);

impl MemStream {
    pub(crate) fn new() -> MemStream {
        MemStream::default()
    }

    /// The server sends `bytes`.
    pub(crate) fn send(&self, bytes: &[u8]) {
        self.0.lock().unwrap().to_client.extend(bytes);
    }

    /// Everything the client wrote, taken.
    pub(crate) fn take_written(&self) -> Vec<u8> {
        std::mem::take(&mut self.0.lock().unwrap().from_client)
    }

    /// Number of successful write calls so far.
    pub(crate) fn writes(&self) -> usize {
        self.0.lock().unwrap().writes
    }

    /// The room each read that returned bytes offered, taken.
    pub(crate) fn take_offered(&self) -> Vec<usize> {
        std::mem::take(&mut self.0.lock().unwrap().offered)
    }

    pub(crate) fn set_read_chunk(&self, n: usize) {
        self.0.lock().unwrap().read_chunk = Some(n);
    }

    pub(crate) fn set_write_chunk(&self, n: usize) {
        self.0.lock().unwrap().write_chunk = Some(n);
    }

    pub(crate) fn set_write_blocked(&self, blocked: bool) {
        self.0.lock().unwrap().write_blocked = blocked;
    }

    /// The server closes its end.
    pub(crate) fn close(&self) {
        self.0.lock().unwrap().closed = true;
    }
}

impl ByteStream for MemStream {
    fn poll_read(&mut self, _: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut w = self.0.lock().unwrap();
        if w.to_client.is_empty() {
            return if w.closed {
                Poll::Ready(Ok(0))
            } else {
                Poll::Pending
            };
        }
        w.offered.push(buf.len());
        let n = buf
            .len()
            .min(w.to_client.len())
            .min(w.read_chunk.unwrap_or(usize::MAX));
        for (dst, src) in buf.iter_mut().zip(w.to_client.drain(..n)) {
            *dst = src;
        }
        Poll::Ready(Ok(n))
    }

    fn poll_write(&mut self, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let mut w = self.0.lock().unwrap();
        if w.closed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if w.write_blocked {
            return Poll::Pending;
        }
        let n = buf.len().min(w.write_chunk.unwrap_or(usize::MAX));
        w.from_client.extend_from_slice(&buf[..n]);
        w.writes += 1;
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // One write call takes from every buffer in turn, within the write chunk.
        let all: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
        self.poll_write(cx, &all)
    }

    fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
