//! One task per connection: moves bytes between a socket and a proto [`Connection`], and
//! completes each waiting caller through its oneshot. Nothing here knows the grammar.

use crate::transport::{connect, Endpoint, Stream};
use crate::Settings;
use bytes::{Bytes, BytesMut};
use mcache_proto::{Connection, Error, PoisonReason, Request, Response, Waiters};
use std::future::{poll_fn, Future as _};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::io::AsyncWrite;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Sleep;

/// A caller's request and where its reply goes.
pub(crate) struct Command {
    pub(crate) request: Request,
    pub(crate) reply: oneshot::Sender<Result<Response, Error>>,
    /// When the caller stops waiting.
    pub(crate) deadline: Option<Instant>,
}

/// How many rounds one poll may do before yielding to other tasks.
const ROUNDS_PER_POLL: usize = 32;
/// How much to read per call.
const READ_CHUNK: usize = 64 * 1024;

/// Runs a connection until every `Client` handle is gone: serves, reconnects with backoff,
/// and fails callers fast while the server is unreachable.
pub(crate) async fn run(
    endpoint: Endpoint,
    settings: Arc<Settings>,
    mut rx: mpsc::UnboundedReceiver<Command>,
    mut stream: Option<Stream>,
) {
    let mut backoff = settings.backoff_min;
    loop {
        let reason = match stream.take() {
            Some(s) => s_result(Driver::new(s, &settings, &mut rx).drive().await),
            None => match connect(&endpoint, &settings).await {
                Ok(s) => {
                    tracing::info!(%endpoint, "reconnected");
                    backoff = settings.backoff_min;
                    s_result(Driver::new(s, &settings, &mut rx).drive().await)
                }
                Err(e) => {
                    tracing::warn!(%endpoint, error = %e, "connect failed");
                    Some(e.to_string())
                }
            },
        };
        let Some(reason) = reason else {
            return; // every client handle dropped and all replies delivered
        };
        // Fail callers fast while waiting to retry: a cache that is down must not stall.
        let sleep = tokio::time::sleep(backoff);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => break,
                cmd = rx.recv() => match cmd {
                    Some(cmd) => {
                        let _ = cmd.reply.send(Err(Error::Io(format!("{endpoint} unavailable: {reason}"))));
                    }
                    None => return,
                },
            }
        }
        backoff = (backoff * 2).min(settings.backoff_max);
    }
}

fn s_result(r: Result<(), PoisonReason>) -> Option<String> {
    match r {
        Ok(()) => None,
        Err(reason) => {
            tracing::warn!(%reason, "connection lost");
            Some(reason.to_string())
        }
    }
}

struct Driver<'a> {
    stream: Stream,
    conn: Connection,
    rx: &'a mut mpsc::UnboundedReceiver<Command>,
    rx_closed: bool,
    waiters: Waiters<oneshot::Sender<Result<Response, Error>>>,
    out: Bytes,
    /// Bytes went to the stream and no flush has completed since: a TLS stream may hold some.
    unflushed: bool,
    rbuf: BytesMut,
    timer: Pin<Box<Sleep>>,
    timer_at: Option<Instant>,
}

impl<'a> Driver<'a> {
    fn new(
        stream: Stream,
        settings: &Settings,
        rx: &'a mut mpsc::UnboundedReceiver<Command>,
    ) -> Self {
        Driver {
            stream,
            conn: Connection::new(settings.connection.clone()),
            rx,
            rx_closed: false,
            waiters: Waiters::default(),
            out: Bytes::new(),
            unflushed: false,
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            timer: Box::pin(tokio::time::sleep(std::time::Duration::ZERO)),
            timer_at: None,
        }
    }

    /// Serves until the connection fails (`Err`) or every handle is gone and idle (`Ok`).
    async fn drive(mut self) -> Result<(), PoisonReason> {
        let r = poll_fn(|cx| self.poll(cx)).await;
        if let Err(reason) = &r {
            // Whatever the connection did not answer fails now.
            for tx in self.waiters.drain() {
                let _ = tx.send(Err(Error::Poisoned(reason.clone())));
            }
        }
        r
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), PoisonReason>> {
        for _ in 0..ROUNDS_PER_POLL {
            let mut progress = self.accept(cx);
            progress |= self.write(cx);
            progress |= self.read(cx);
            self.deliver();
            if let Some(reason) = self.conn.poisoned() {
                return Poll::Ready(Err(reason.clone()));
            }
            if self.rx_closed && self.conn.is_idle() && self.out.is_empty() {
                return Poll::Ready(Ok(()));
            }
            if !progress {
                self.arm_timer(cx);
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Takes every queued caller request into the connection.
    fn accept(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        while !self.rx_closed {
            match self.rx.poll_recv(cx) {
                Poll::Ready(Some(cmd)) => {
                    progress = true;
                    if cmd.reply.is_closed() {
                        continue; // the caller gave up before anything was written
                    }
                    match self.conn.send(cmd.request) {
                        Ok(id) => self.waiters.push(id, cmd.deadline, cmd.reply),
                        Err(e) => {
                            let _ = cmd.reply.send(Err(e));
                        }
                    }
                }
                Poll::Ready(None) => self.rx_closed = true,
                Poll::Pending => break,
            }
        }
        progress
    }

    /// Writes queued bytes: many requests per syscall.
    fn write(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        loop {
            if self.out.is_empty() {
                match self.conn.take_transmit(Instant::now()) {
                    Some(b) => self.out = b,
                    None => {
                        if self.unflushed && self.flush(cx) {
                            return true;
                        }
                        return progress;
                    }
                }
            }
            match Pin::new(&mut self.stream).poll_write(cx, &self.out) {
                Poll::Ready(Ok(0)) => {
                    self.conn.poison(PoisonReason::Closed);
                    return true;
                }
                Poll::Ready(Ok(n)) => {
                    let _ = self.out.split_to(n);
                    progress = true;
                }
                Poll::Ready(Err(e)) => {
                    tracing::debug!(error = %e, "write failed");
                    self.conn.poison(PoisonReason::Closed);
                    return true;
                }
                Poll::Pending => {
                    // Flush is a no-op for TCP and unix sockets; TLS needs it to send records.
                    let _ = Pin::new(&mut self.stream).poll_flush(cx);
                    return progress;
                }
            }
            if self.out.is_empty() {
                self.unflushed = true;
                if self.flush(cx) {
                    return true;
                }
            }
        }
    }

    /// Flushes the stream. A TLS stream takes bytes into its own buffer even when the socket
    /// is full, and sends them only on a flush or a later write: a flush that returned
    /// `Pending` is retried when the socket drains, even if nothing new is to be written.
    /// Returns whether the connection failed.
    fn flush(&mut self, cx: &mut Context<'_>) -> bool {
        match Pin::new(&mut self.stream).poll_flush(cx) {
            Poll::Ready(Ok(())) => self.unflushed = false,
            Poll::Ready(Err(e)) => {
                tracing::debug!(error = %e, "flush failed");
                self.conn.poison(PoisonReason::Closed);
                return true;
            }
            Poll::Pending => {}
        }
        false
    }

    /// Reads what the socket has and feeds the connection.
    fn read(&mut self, cx: &mut Context<'_>) -> bool {
        self.rbuf.reserve(READ_CHUNK);
        match tokio_util::io::poll_read_buf(Pin::new(&mut self.stream), cx, &mut self.rbuf) {
            Poll::Ready(Ok(0)) => {
                self.conn.receive_eof();
                true
            }
            Poll::Ready(Ok(_)) => {
                self.conn.receive_buf(&mut self.rbuf, Instant::now());
                true
            }
            Poll::Ready(Err(e)) => {
                tracing::debug!(error = %e, "read failed");
                self.conn.poison(PoisonReason::Closed);
                true
            }
            Poll::Pending => false,
        }
    }

    /// Hands each reply to the caller of the request it answers.
    fn deliver(&mut self) {
        while let Some((id, result)) = self.conn.poll_response() {
            // A caller that gave up dropped its receiver: the reply is discarded.
            if let Some(tx) = self.waiters.take(id) {
                let _ = tx.send(result);
            }
        }
    }

    /// Wakes the task at the next deadline: the connection's read timeout or a caller's
    /// request timeout (that caller fails with `Timeout`, its request is abandoned).
    fn arm_timer(&mut self, cx: &mut Context<'_>) {
        loop {
            let at = match (self.conn.poll_timeout(), self.waiters.next_deadline()) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => match a.or(b) {
                    Some(at) => at,
                    None => {
                        self.timer_at = None;
                        return;
                    }
                },
            };
            if self.timer_at != Some(at) {
                self.timer_at = Some(at);
                self.timer
                    .as_mut()
                    .reset(tokio::time::Instant::from_std(at));
            }
            if self.timer.as_mut().poll(cx).is_pending() {
                return;
            }
            if !self.on_timer() {
                if self.conn.poisoned().is_some() {
                    cx.waker().wake_by_ref();
                }
                return;
            }
        }
    }

    /// Handles deadlines that passed; returns whether anything changed.
    fn on_timer(&mut self) -> bool {
        let now = Instant::now();
        self.timer_at = None;
        let expired = self.waiters.expire(now, &mut self.conn);
        let any = !expired.is_empty();
        for tx in expired {
            let _ = tx.send(Err(Error::Timeout));
        }
        self.conn.handle_timeout(now);
        if self.conn.poisoned().is_some() {
            return false;
        }
        any
    }
}
