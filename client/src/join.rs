//! [`join_all`]: many futures polled together on the caller's task, for fanning a call out
//! to every server of a pool without spawning.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

/// Runs every future to completion concurrently on the current task; their outputs in
/// order. Executor-agnostic: nothing is spawned.
pub async fn join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    enum Slot<F: Future> {
        Running(Pin<Box<F>>),
        Done(F::Output),
    }
    let mut slots: Vec<Slot<F>> = futures
        .into_iter()
        .map(|f| Slot::Running(Box::pin(f)))
        .collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for slot in slots.iter_mut() {
            if let Slot::Running(f) = slot {
                match f.as_mut().poll(cx) {
                    Poll::Ready(out) => *slot = Slot::Done(out),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    slots
        .into_iter()
        .filter_map(|slot| match slot {
            Slot::Done(out) => Some(out),
            Slot::Running(_) => None,
        })
        .collect()
}
