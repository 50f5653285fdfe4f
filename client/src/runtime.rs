//! The runtime trait: the only things the client needs from an executor. Spawning the
//! connection tasks, a resettable timer, the current time, and opening byte streams over TCP
//! and unix sockets. Everything else (the protocol, pooling, deadlines, reconnects, TLS)
//! is written once in this crate, above this trait.
//!
//! An adapter implements [`Runtime`] for its executor in a few dozen lines (`mcache-tokio`,
//! `mcache-async-std`); a test implements it with an in-memory stream and a clock moved by
//! hand. This module must never name an executor.

use crate::io::ByteStream;
use std::fmt;
use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the client needs from an executor. Implemented by the adapter crates; a client holds
/// an `Arc<dyn Runtime>`, so its type is the same whatever the runtime.
pub trait Runtime: Send + Sync + fmt::Debug + 'static {
    /// Runs `future` to completion in the background (a connection's driver, a lease
    /// release). The client never awaits it.
    fn spawn(&self, future: BoxFuture<'static, ()>);

    /// A timer that fires at `at` (at once if `at` has passed); [`Timer::reset`] reuses it.
    fn timer(&self, at: Instant) -> Pin<Box<dyn Timer>>;

    /// The time now. Every deadline of the client is measured with it; a test runtime moves
    /// it by hand.
    fn now(&self) -> Instant {
        Instant::now()
    }

    /// Whether every task of this runtime runs on one thread (tokio's current-thread runtime).
    /// The client then opens one connection per server unless told otherwise
    /// ([`Builder::connections`](crate::Builder::connections)): on one thread a second
    /// connection only splits the batches that thread writes and reads, and never adds
    /// parallelism. Defaults to `false`.
    fn single_threaded(&self) -> bool {
        false
    }

    /// Opens a TCP connection to `addr` (`host:port`, resolved by the runtime) with
    /// `TCP_NODELAY` set. The client bounds it with its connect timeout.
    fn connect_tcp<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<Box<dyn ByteStream>>>;

    /// Opens a unix-domain stream socket at `path`.
    fn connect_unix<'a>(&'a self, path: &'a Path)
        -> BoxFuture<'a, io::Result<Box<dyn ByteStream>>>;
}

/// A timer of a [`Runtime`]: fires once at its deadline, and can be moved to another.
pub trait Timer: Send {
    /// Moves the deadline to `at` (earlier or later), re-arming a timer that fired.
    fn reset(self: Pin<&mut Self>, at: Instant);

    /// `Ready` once the deadline has passed; otherwise wakes `cx` when it does.
    fn poll_fire(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()>;
}

/// Waits for `duration` on `runtime`'s timer.
pub async fn sleep(runtime: &dyn Runtime, duration: Duration) {
    let at = runtime.now() + duration;
    let mut timer = runtime.timer(at);
    std::future::poll_fn(|cx| timer.as_mut().poll_fire(cx)).await;
}

/// Runs `future` until `deadline`: its output, or `None` once the deadline has passed (the
/// deadline is checked first on every poll, so a future that becomes ready only after it
/// passed still counts as late).
pub async fn timeout<F: Future>(
    runtime: &dyn Runtime,
    deadline: Instant,
    future: F,
) -> Option<F::Output> {
    let mut timer = runtime.timer(deadline);
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(|cx| {
        if timer.as_mut().poll_fire(cx).is_ready() {
            return Poll::Ready(None);
        }
        future.as_mut().poll(cx).map(Some)
    })
    .await
}
