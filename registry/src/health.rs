//! The circuit breaker: after a few consecutive transport failures the cache is bypassed for a
//! while, so that a dead or frozen memcached costs no timeout per call.
//!
//! It owns only counting and timing; it never talks to memcached. Closed: every call uses the
//! cache. Open (after `threshold` failures in a row): calls skip the cache until the cooldown
//! ends. Then one call probes; its success closes the breaker, its failure opens it again for
//! twice as long (at most 32 cooldowns).

use mcache_proto::Error as ProtoError;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub(crate) struct Breaker {
    threshold: u32,
    cooldown: Duration,
    failures: AtomicU32,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    /// The cache is left alone until then.
    until: Option<Instant>,
    /// When the current probe started (a probe that never reports is replaced after a while).
    probe: Option<Instant>,
    /// Openings in a row, for the doubling cooldown.
    streak: u32,
}

/// Whether an error says memcached (or the way to it) is unwell, rather than this request.
pub(crate) fn is_transport(e: &ProtoError) -> bool {
    matches!(
        e,
        ProtoError::Io(_)
            | ProtoError::Unavailable(_)
            | ProtoError::Timeout
            | ProtoError::Poisoned(_)
    )
}

impl Breaker {
    pub(crate) fn new(threshold: u32, cooldown: Duration) -> Breaker {
        Breaker {
            threshold: threshold.max(1),
            cooldown,
            failures: AtomicU32::new(0),
            open: Mutex::new(Open::default()),
        }
    }

    /// Whether this call may use the cache.
    pub(crate) fn allow(&self) -> bool {
        if self.failures.load(Ordering::Relaxed) < self.threshold {
            return true;
        }
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if open.until.is_some_and(|until| now < until) {
            return false;
        }
        // Cooldown over: one caller probes.
        match open.probe {
            Some(t) if now.duration_since(t) < self.cooldown.max(Duration::from_secs(1)) => false,
            _ => {
                open.probe = Some(now);
                true
            }
        }
    }

    /// Whether the breaker is open now (for diagnostics).
    pub(crate) fn is_open(&self) -> bool {
        self.failures.load(Ordering::Relaxed) >= self.threshold
    }

    pub(crate) fn success(&self) {
        if self.failures.load(Ordering::Relaxed) == 0 {
            return;
        }
        let was_open = self.failures.swap(0, Ordering::AcqRel) >= self.threshold;
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        *open = Open::default();
        if was_open {
            tracing::warn!("memcached answers again: cache back in use");
        }
    }

    /// Records a failed round trip. Transport failures count toward opening; other errors are
    /// logged only.
    pub(crate) fn failure(&self, what: &'static str, e: &ProtoError) {
        if !is_transport(e) {
            tracing::warn!(error = %e, what, "memcached refused a cache operation");
            return;
        }
        let n = self.failures.fetch_add(1, Ordering::AcqRel) + 1;
        if n < self.threshold {
            tracing::warn!(error = %e, what, "memcached failed; running uncached");
            return;
        }
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if n == self.threshold || open.probe.is_some() {
            open.streak = (open.streak + 1).min(6);
            let wait = self
                .cooldown
                .checked_mul(1u32 << (open.streak - 1))
                .unwrap_or(Duration::MAX);
            let now = Instant::now();
            open.until = now
                .checked_add(wait)
                .or_else(|| now.checked_add(Duration::from_secs(3600)));
            open.probe = None;
            if open.streak == 1 {
                tracing::warn!(error = %e, what, ?wait, "memcached unavailable: bypassing the cache");
            } else {
                tracing::debug!(error = %e, what, ?wait, "memcached still unavailable");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_and_probes_after_cooldown() {
        let b = Breaker::new(2, Duration::ZERO);
        let err = ProtoError::Timeout;
        assert!(b.allow());
        b.failure("t", &err);
        assert!(b.allow() && !b.is_open());
        b.failure("t", &err);
        assert!(b.is_open());
        // Zero cooldown: the next caller probes, the one after does not.
        assert!(b.allow());
        assert!(!b.allow());
        b.success();
        assert!(!b.is_open() && b.allow());
    }

    #[test]
    fn stays_open_during_cooldown_and_ignores_refusals() {
        let b = Breaker::new(1, Duration::from_secs(3600));
        b.failure("t", &ProtoError::Server("busy".into()));
        assert!(!b.is_open(), "a server reply is not a transport failure");
        b.failure(
            "t",
            &ProtoError::Io(mcache_proto::IoError::from_kind(
                "connect",
                std::io::ErrorKind::ConnectionRefused,
            )),
        );
        assert!(!b.allow());
    }
}
