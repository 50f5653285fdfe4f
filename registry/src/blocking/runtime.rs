//! [`BlockingRuntime`]: the [`Runtime`] of a blocking backend, which the registry sleeps and
//! spawns on. No executor: a spawned task runs on a thread of its own, and a timer polled
//! inside [`block_on`] parks the caller's thread until its deadline (polled anywhere else, a
//! sleeping thread wakes it). It opens no connections: the blocking client does its own IO.

use super::block_on::{block_on, wake_at};
use mcache_client::{BoxFuture, ByteStream, Runtime, Timer};
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::thread;
use std::time::Instant;

/// The runtime of [`Blocking`](super::Blocking): threads and parking, no reactor.
#[derive(Debug, Default)]
pub(crate) struct BlockingRuntime;

impl BlockingRuntime {
    /// The one instance every blocking backend shares.
    pub(crate) fn shared() -> Arc<dyn Runtime> {
        static RUNTIME: OnceLock<Arc<dyn Runtime>> = OnceLock::new();
        RUNTIME.get_or_init(|| Arc::new(BlockingRuntime)).clone()
    }
}

fn take<T>(slot: &Mutex<Option<T>>) -> Option<T> {
    slot.lock().unwrap_or_else(|p| p.into_inner()).take()
}

/// Runs `job` on a new thread, or on this one if no thread can be started.
fn on_a_thread(name: &str, job: impl FnOnce() + Send + 'static) {
    let slot = Arc::new(Mutex::new(Some(job)));
    let theirs = slot.clone();
    let started = thread::Builder::new().name(name.into()).spawn(move || {
        if let Some(job) = take(&theirs) {
            job();
        }
    });
    if let Err(e) = started {
        tracing::debug!(error = %e, "no thread for a background task: running it here");
        if let Some(job) = take(&slot) {
            job();
        }
    }
}

impl Runtime for BlockingRuntime {
    /// Runs `future` on a thread of its own (a lease release after a caller panicked).
    fn spawn(&self, future: BoxFuture<'static, ()>) {
        on_a_thread("mcache-registry-task", move || block_on(future));
    }

    fn timer(&self, at: Instant) -> Pin<Box<dyn Timer>> {
        Box::pin(ParkTimer { at, waking: None })
    }

    /// Refused: a blocking backend's client opens its own std sockets.
    fn connect_tcp<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<Box<dyn ByteStream>>> {
        Box::pin(std::future::ready(Err(no_streams(addr))))
    }

    /// Refused, as [`connect_tcp`](Self::connect_tcp).
    fn connect_unix<'a>(
        &'a self,
        path: &'a Path,
    ) -> BoxFuture<'a, io::Result<Box<dyn ByteStream>>> {
        Box::pin(std::future::ready(Err(no_streams(
            &path.display().to_string(),
        ))))
    }
}

fn no_streams(to: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("the blocking backend's runtime opens no async streams (to {to}): use an async client's runtime"),
    )
}

/// A timer that fires at `at`: inside [`block_on`] it asks the parked thread to wake by
/// then; elsewhere a sleeping thread wakes the task.
struct ParkTimer {
    at: Instant,
    /// The deadline a sleeping thread was started for.
    waking: Option<Instant>,
}

impl Timer for ParkTimer {
    fn reset(mut self: Pin<&mut Self>, at: Instant) {
        self.at = at;
    }

    fn poll_fire(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let at = self.at;
        if Instant::now() >= at {
            return Poll::Ready(());
        }
        if !wake_at(at) && self.waking != Some(at) {
            self.waking = Some(at);
            let waker = cx.waker().clone();
            on_a_thread("mcache-registry-timer", move || {
                thread::sleep(at.saturating_duration_since(Instant::now()));
                waker.wake();
            });
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn sleeps_end_at_their_deadline_inside_and_outside_block_on() {
        let rt = BlockingRuntime::shared();
        let start = Instant::now();
        block_on(mcache_client::sleep(&*rt, Duration::from_millis(20)));
        assert!(start.elapsed() >= Duration::from_millis(20));

        // Polled by another executor (a tokio task), a sleeping thread wakes it.
        let tokio = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let start = Instant::now();
        tokio.block_on(mcache_client::sleep(&*rt, Duration::from_millis(20)));
        assert!(start.elapsed() >= Duration::from_millis(20));
    }

    #[test]
    fn spawned_tasks_run_and_streams_are_refused() {
        let rt = BlockingRuntime::shared();
        let (tx, rx) = std::sync::mpsc::channel();
        rt.spawn(Box::pin(async move {
            tx.send(thread::current().name().map(String::from)).unwrap();
        }));
        let name = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(name.as_deref(), Some("mcache-registry-task"));
        let refused = block_on(rt.connect_tcp("127.0.0.1:1")).map(drop);
        assert_eq!(refused.unwrap_err().kind(), io::ErrorKind::Unsupported);
    }
}
