//! Runtime neutrality: the two things the registry needs from an executor, a timer (to poll
//! for a value another process is computing) and a way to run a small task in the background
//! (to release a lease whose holder was dropped or panicked).
//!
//! Inside a tokio runtime (feature `tokio`) tokio's timer and spawner are used; otherwise, with
//! feature `async-std`, async-std's (which work under any executor). Without either, a helper
//! thread does the job. This module must never block the calling task.

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

/// Waits for `d`.
pub(crate) async fn sleep(d: Duration) {
    #[cfg(feature = "tokio")]
    if ::tokio::runtime::Handle::try_current().is_ok() {
        ::tokio::time::sleep(d).await;
        return;
    }
    #[cfg(feature = "async-std")]
    if cfg!(feature = "async-std") {
        ::async_std::task::sleep(d).await;
        return;
    }
    ThreadSleep::new(d).await;
}

/// Runs `f` to completion in the background.
pub(crate) fn spawn(f: impl Future<Output = ()> + Send + 'static) {
    #[cfg(feature = "tokio")]
    if let Ok(handle) = ::tokio::runtime::Handle::try_current() {
        drop(handle.spawn(f));
        return;
    }
    #[cfg(feature = "async-std")]
    if cfg!(feature = "async-std") {
        drop(::async_std::task::spawn(f));
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("mcache-registry".into())
        .spawn(move || block_on(f));
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "could not start a thread to release a lease");
    }
}

struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `f` on the current thread, parking between wake-ups.
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

/// Whether the timer fired, and who to wake when it does.
type TimerState = Arc<Mutex<(bool, Option<Waker>)>>;

/// A timer on a helper thread, for when no runtime feature applies.
struct ThreadSleep {
    duration: Duration,
    state: Option<TimerState>,
}

impl ThreadSleep {
    fn new(duration: Duration) -> Self {
        ThreadSleep {
            duration,
            state: None,
        }
    }
}

impl Future for ThreadSleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let duration = self.duration;
        let state = self.state.get_or_insert_with(|| {
            let state = Arc::new(Mutex::new((false, None::<Waker>)));
            let shared = state.clone();
            let started = std::thread::Builder::new()
                .name("mcache-registry-timer".into())
                .spawn(move || {
                    std::thread::sleep(duration);
                    let mut s = shared.lock().unwrap_or_else(|p| p.into_inner());
                    s.0 = true;
                    if let Some(w) = s.1.take() {
                        w.wake();
                    }
                });
            if started.is_err() {
                // No thread: the timer fires at once (the caller only polls sooner).
                state.lock().unwrap_or_else(|p| p.into_inner()).0 = true;
            }
            state
        });
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        if s.0 {
            Poll::Ready(())
        } else {
            s.1 = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

pin_project_lite::pin_project! {
    /// Two futures polled together (so an adapter can pipeline their requests), built without
    /// moving them: a join's size is the sum of its parts.
    pub(crate) struct Join2<A: Future, B: Future> {
        #[pin]
        a: MaybeDone<A>,
        #[pin]
        b: MaybeDone<B>,
    }
}

pin_project_lite::pin_project! {
    #[project = MaybeDoneProj]
    #[project_replace = MaybeDoneReplace]
    enum MaybeDone<F: Future> {
        Running { #[pin] f: F },
        Done { out: F::Output },
        Taken,
    }
}

impl<F: Future> MaybeDone<F> {
    /// Polls until done; `true` once the output is there.
    fn poll_done(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> bool {
        let out = match self.as_mut().project() {
            MaybeDoneProj::Running { f } => match f.poll(cx) {
                Poll::Ready(out) => out,
                Poll::Pending => return false,
            },
            MaybeDoneProj::Done { .. } => return true,
            MaybeDoneProj::Taken => return false,
        };
        self.project_replace(MaybeDone::Done { out });
        true
    }

    fn take(self: Pin<&mut Self>) -> Option<F::Output> {
        match self.project_replace(MaybeDone::Taken) {
            MaybeDoneReplace::Done { out } => Some(out),
            _ => None,
        }
    }
}

/// Polls `a` and `b` concurrently; both outputs.
pub(crate) fn join2<A: Future, B: Future>(a: A, b: B) -> Join2<A, B> {
    Join2 {
        a: MaybeDone::Running { f: a },
        b: MaybeDone::Running { f: b },
    }
}

impl<A: Future, B: Future> Future for Join2<A, B> {
    type Output = (A::Output, B::Output);
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let a = this.a.as_mut().poll_done(cx);
        let b = this.b.as_mut().poll_done(cx);
        if a && b {
            if let (Some(a), Some(b)) = (this.a.take(), this.b.take()) {
                return Poll::Ready((a, b));
            }
        }
        Poll::Pending
    }
}

/// A random 64-bit number, for generation starts and TTL jitter. Not for keys: keys never
/// depend on anything but their inputs.
pub(crate) fn random_u64() -> u64 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // RandomState is seeded from the OS once per thread; the counter and the clock make every
    // call distinct.
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    h.write_u128(now);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_timer_and_block_on() {
        let t = std::time::Instant::now();
        block_on(ThreadSleep::new(Duration::from_millis(5)));
        assert!(t.elapsed() >= Duration::from_millis(5));
        assert_eq!(block_on(join2(async { 1 }, async { 2 })), (1, 2));
        let slow = async {
            ThreadSleep::new(Duration::from_millis(2)).await;
            "slow"
        };
        assert_eq!(block_on(join2(slow, async { 3 })), ("slow", 3));
    }

    #[test]
    fn random_numbers_differ() {
        assert_ne!(random_u64(), random_u64());
    }
}
