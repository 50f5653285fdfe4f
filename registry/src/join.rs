//! [`join2`]: two futures polled together on the caller's task, so that an adapter can
//! pipeline their requests (a value and its generations in one round trip). Executor-agnostic:
//! nothing is spawned, nothing is boxed.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn joins_ready_and_waiting_futures() {
        assert_eq!(join2(async { 1 }, async { 2 }).await, (1, 2));
        let slow = async {
            tokio::time::sleep(Duration::from_millis(2)).await;
            "slow"
        };
        assert_eq!(join2(slow, async { 3 }).await, ("slow", 3));
    }
}
