//! Per-function counters of memoized calls: what [`Cache::stats`](crate::Cache::stats) reads,
//! what feature `metrics` exports, and what the debug span of each call records.
//!
//! This module owns counting only: a few relaxed atomic adds per call, behind a read lock on
//! a map from function path to counters. It never talks to memcached and never decides
//! anything about a call.

use crate::by_function::PathMap;
use crate::key::Function;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// How one memoized call was served (one per call).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Served {
    /// A fresh value from memcached, or the result of an identical call running in this
    /// process: the function did not run.
    Hit,
    /// A stale value, served while another caller recomputes (stale-while-revalidate).
    Stale,
    /// The function ran (and its result was stored if it could be).
    Miss,
    /// The function ran without asking memcached: the circuit breaker is open, or the cache
    /// is disabled.
    Bypass,
}

impl Served {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Served::Hit => "hit",
            Served::Stale => "stale",
            Served::Miss => "miss",
            Served::Bypass => "bypass",
        }
    }
}

/// What happened during one memoized call, besides how it was served.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Events {
    /// The call waited (polled) for another process's recompute.
    pub(crate) lease_wait: bool,
    /// memcached failed, refused or answered garbage during the call (it still succeeded).
    pub(crate) errors: u32,
}

/// What one memoized function's calls did, through one [`Cache`](crate::Cache), since it was
/// made. Each call is counted once in `hits`, `stale`, `misses` or `bypasses`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FunctionStats {
    /// Served without running the function: a fresh value from memcached, or the result of
    /// an identical call running at the same time in this process.
    pub hits: u64,
    /// Served a stale value while another caller recomputed it (stale-while-revalidate).
    pub stale: u64,
    /// The function ran: a miss, a recompute it won, or a cache failure mid-call.
    pub misses: u64,
    /// The function ran without asking memcached: the circuit breaker was open, or the cache
    /// is [disabled](crate::Cache::disabled).
    pub bypasses: u64,
    /// Calls that waited for another process's recompute of the same call.
    pub lease_waits: u64,
    /// memcached failures, refusals or garbage met by calls (each call still succeeded).
    pub errors: u64,
}

impl FunctionStats {
    /// Every call: `hits + stale + misses + bypasses`.
    pub fn calls(&self) -> u64 {
        self.hits + self.stale + self.misses + self.bypasses
    }
}

/// A snapshot of [`Cache::stats`](crate::Cache::stats): the counters of every memoized
/// function called through the cache, by path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheStats {
    functions: BTreeMap<&'static str, FunctionStats>,
}

impl CacheStats {
    /// The counters of `function` (zero if it was never called).
    pub fn function(&self, function: &Function) -> FunctionStats {
        self.functions
            .get(function.path())
            .copied()
            .unwrap_or_default()
    }

    /// Every function called, by path, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &FunctionStats)> {
        self.functions.iter().map(|(path, s)| (*path, s))
    }

    /// All functions together.
    pub fn total(&self) -> FunctionStats {
        self.functions
            .values()
            .fold(FunctionStats::default(), |mut t, s| {
                t.hits += s.hits;
                t.stale += s.stale;
                t.misses += s.misses;
                t.bypasses += s.bypasses;
                t.lease_waits += s.lease_waits;
                t.errors += s.errors;
                t
            })
    }
}

#[derive(Debug, Default)]
struct Counters {
    served: [AtomicU64; 4],
    lease_waits: AtomicU64,
    errors: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> FunctionStats {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        FunctionStats {
            hits: load(&self.served[Served::Hit as usize]),
            stale: load(&self.served[Served::Stale as usize]),
            misses: load(&self.served[Served::Miss as usize]),
            bypasses: load(&self.served[Served::Bypass as usize]),
            lease_waits: load(&self.lease_waits),
            errors: load(&self.errors),
        }
    }
}

type Map = PathMap<Arc<Counters>>;

/// The counters of one cache, by function path.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    map: RwLock<Map>,
}

impl Stats {
    /// Counts one call of `function`.
    pub(crate) fn record(&self, function: &Function, served: Served, events: Events) {
        let path = function.path();
        let found = {
            let map = self.map.read().unwrap_or_else(|p| p.into_inner());
            map.get(path).map(|c| count(c, served, events)).is_some()
        };
        if !found {
            let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
            count(map.entry(path).or_default(), served, events);
        }
        #[cfg(feature = "metrics")]
        export(path, served, events);
    }

    pub(crate) fn snapshot(&self) -> CacheStats {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        CacheStats {
            functions: map.iter().map(|(p, c)| (*p, c.snapshot())).collect(),
        }
    }
}

fn count(c: &Counters, served: Served, events: Events) {
    c.served[served as usize].fetch_add(1, Ordering::Relaxed);
    if events.lease_wait {
        c.lease_waits.fetch_add(1, Ordering::Relaxed);
    }
    if events.errors > 0 {
        c.errors
            .fetch_add(u64::from(events.errors), Ordering::Relaxed);
    }
}

/// Feature `metrics`: `mcache_registry_calls_total{function, outcome}` (outcome `hit`,
/// `stale`, `miss`, `bypass`), `mcache_registry_lease_waits_total{function}` and
/// `mcache_registry_errors_total{function}`, through the `metrics` facade.
#[cfg(feature = "metrics")]
fn export(path: &'static str, served: Served, events: Events) {
    metrics::counter!("mcache_registry_calls_total", "function" => path, "outcome" => served.as_str())
        .increment(1);
    if events.lease_wait {
        metrics::counter!("mcache_registry_lease_waits_total", "function" => path).increment(1);
    }
    if events.errors > 0 {
        metrics::counter!("mcache_registry_errors_total", "function" => path)
            .increment(u64::from(events.errors));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_counted_per_function() {
        const F: Function = Function::new("a::f");
        const G: Function = Function::new("a::g");
        let stats = Stats::default();
        stats.record(&F, Served::Miss, Events::default());
        stats.record(&F, Served::Hit, Events::default());
        stats.record(
            &F,
            Served::Hit,
            Events {
                lease_wait: true,
                errors: 2,
            },
        );
        stats.record(&G, Served::Bypass, Events::default());
        let s = stats.snapshot();
        let f = s.function(&F);
        assert_eq!((f.hits, f.misses, f.lease_waits, f.errors), (2, 1, 1, 2));
        assert_eq!(f.calls(), 3);
        assert_eq!(s.function(&G).bypasses, 1);
        assert_eq!(s.total().calls(), 4);
        assert_eq!(s.function(&Function::new("none")), FunctionStats::default());
        assert_eq!(
            s.iter().map(|(p, _)| p).collect::<Vec<_>>(),
            ["a::f", "a::g"]
        );
    }
}
