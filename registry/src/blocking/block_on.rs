//! [`block_on`]: runs a future to completion on the calling thread, parking it while the
//! future waits. The sync form of `#[memoize]` runs the registry's async memoization through
//! it, so that both forms share one implementation.
//!
//! Wakers unpark the thread (a flight's leader on another thread wakes its followers this
//! way). The timers of [`BlockingRuntime`](super::runtime::BlockingRuntime) polled inside it
//! leave their deadline here instead of starting a thread: the thread parks until the
//! earliest one. This module never talks to memcached.

use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::Instant;

thread_local! {
    /// `Some` while this thread polls a future in [`block_on`]: the earliest deadline a timer
    /// polled meanwhile asked to be woken at, if any.
    static WAKE_AT: Cell<Option<Option<Instant>>> = const { Cell::new(None) };
}

/// Asks the [`block_on`] polling on this thread to wake by `at`; `false` if no `block_on`
/// is polling here (the caller must arrange its wake-up itself).
pub(crate) fn wake_at(at: Instant) -> bool {
    WAKE_AT.with(|slot| match slot.get() {
        Some(earliest) => {
            slot.set(Some(Some(earliest.map_or(at, |e| e.min(at)))));
            true
        }
        None => false,
    })
}

/// Wakes one `block_on`: sets its flag and unparks its thread.
struct Signal {
    woken: AtomicBool,
    thread: Thread,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

/// Puts back the deadline slot of an enclosing `block_on` (also when the future panics).
struct Restore(Option<Option<Instant>>);

impl Drop for Restore {
    fn drop(&mut self) {
        WAKE_AT.with(|slot| slot.set(self.0));
    }
}

/// Runs `future` to completion on this thread, parking between polls until it is woken (or a
/// timer of the blocking runtime is due).
///
/// Meant for the futures of a [`Cache<Blocking>`](super::Blocking) (its methods are `async`:
/// `block_on(cache.invalidate_namespace())`), which do their round trips on the polling
/// thread. Any future whose wake-ups come from other threads works too; one that needs an
/// async runtime's reactor (a tokio client's) never completes here.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let signal = Arc::new(Signal {
        woken: AtomicBool::new(false),
        thread: thread::current(),
    });
    let waker = Waker::from(signal.clone());
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    // A nested `block_on` (a memoized function calling another) keeps its own deadlines.
    let _restore = Restore(WAKE_AT.with(|slot| slot.replace(Some(None))));
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        let due = WAKE_AT.with(|slot| slot.replace(Some(None))).flatten();
        while !signal.woken.swap(false, Ordering::AcqRel) {
            match due {
                None => thread::park(),
                Some(at) => match at.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => thread::park_timeout(left),
                    _ => break,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    #[test]
    fn ready_futures_complete_at_once() {
        assert_eq!(block_on(async { 7 }), 7);
    }

    #[test]
    fn a_wake_from_another_thread_resumes_the_future() {
        let event = Arc::new(event_listener::Event::new());
        let ready = Arc::new(AtomicBool::new(false));
        let (e, r) = (event.clone(), ready.clone());
        let waker = thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            r.store(true, Ordering::SeqCst);
            e.notify(usize::MAX);
        });
        let polls = AtomicUsize::new(0);
        block_on(async {
            loop {
                polls.fetch_add(1, Ordering::SeqCst);
                let listener = event.listen();
                if ready.load(Ordering::SeqCst) {
                    break;
                }
                listener.await;
            }
        });
        waker.join().expect("the waking thread ends");
        assert!(polls.load(Ordering::SeqCst) >= 2, "it waited, then resumed");
    }

    #[test]
    fn a_due_deadline_ends_the_park_and_nesting_keeps_the_outer_one() {
        let start = Instant::now();
        let at = start + Duration::from_millis(30);
        let mut asked = false;
        block_on(std::future::poll_fn(|_| {
            if Instant::now() >= at {
                return Poll::Ready(());
            }
            assert!(wake_at(at), "inside block_on");
            if !asked {
                asked = true;
                // A nested block_on neither sees nor eats the outer deadline.
                assert_eq!(block_on(async { WAKE_AT.with(Cell::get) }), Some(None));
            }
            Poll::Pending
        }));
        assert!(start.elapsed() >= Duration::from_millis(30));
        assert!(!wake_at(at), "outside block_on");
    }
}
