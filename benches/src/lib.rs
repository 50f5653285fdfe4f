//! Shared pieces of mcache's benchmarks: a runtime-neutral load loop and CPU accounting.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// What a benchmark needs from an async runtime.
pub trait Runtime {
    /// Spawns a task and returns a future of its output.
    fn spawn(&self, f: BoxFuture<u64>) -> BoxFuture<u64>;
    /// Runs a future to completion on this runtime.
    fn block_on<T>(&self, f: impl Future<Output = T>) -> T;
}

/// CPU time (user + system) used by this process so far.
pub fn cpu_time() -> Duration {
    use nix::sys::resource::{getrusage, UsageWho};
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(u) => {
            let t = |tv: nix::sys::time::TimeVal| {
                Duration::from_secs(tv.tv_sec().max(0) as u64)
                    + Duration::from_micros(tv.tv_usec().max(0) as u64)
            };
            t(u.user_time()) + t(u.system_time())
        }
        Err(_) => Duration::ZERO,
    }
}

/// Peak resident set size of this process, in KiB.
pub fn peak_rss_kib() -> u64 {
    use nix::sys::resource::{getrusage, UsageWho};
    getrusage(UsageWho::RUSAGE_SELF)
        .map(|u| u.max_rss().max(0) as u64)
        .unwrap_or(0)
}

/// One measured scenario.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// Units done (operations, keys or bytes).
    pub units: u64,
    /// Operations (requests) done.
    pub ops: u64,
    /// Wall time.
    pub wall: Duration,
    /// Client CPU time.
    pub cpu: Duration,
}

impl Measurement {
    /// Units per second.
    pub fn rate(&self) -> f64 {
        self.units as f64 / self.wall.as_secs_f64()
    }

    /// Client CPU per operation, in microseconds.
    pub fn cpu_per_op_us(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.ops.max(1) as f64
    }
}

/// Runs `tasks` copies of `body` for `duration`; each call of `body` returns the units it did
/// (and counts as `ops_per_call` operations).
pub fn run_load<R, F, Fut>(
    rt: &R,
    tasks: usize,
    duration: Duration,
    ops_per_call: u64,
    body: F,
) -> Measurement
where
    R: Runtime,
    F: Fn(u64) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = u64> + Send + 'static,
{
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let cpu0 = cpu_time();
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks as u64)
        .map(|t| {
            let stop = stop.clone();
            let calls = calls.clone();
            let body = body.clone();
            rt.spawn(Box::pin(async move {
                let mut units = 0;
                let mut i = t << 32;
                while !stop.load(Ordering::Relaxed) {
                    units += body(i).await;
                    i += 1;
                    calls.fetch_add(1, Ordering::Relaxed);
                }
                units
            }))
        })
        .collect();
    let timer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(duration);
            stop.store(true, Ordering::Relaxed);
        })
    };
    let units: u64 = rt.block_on(async {
        let mut total = 0;
        for h in handles {
            total += h.await;
        }
        total
    });
    let wall = start.elapsed();
    let cpu = cpu_time().saturating_sub(cpu0);
    let _ = timer.join();
    Measurement {
        units,
        ops: calls.load(Ordering::Relaxed) * ops_per_call,
        wall,
        cpu,
    }
}

/// Runs `threads` OS threads calling `body(thread, i)` for `duration`, for blocking clients;
/// each call returns the units it did (and counts as `ops_per_call` operations).
pub fn run_threads<F>(threads: usize, duration: Duration, ops_per_call: u64, body: F) -> Measurement
where
    F: Fn(usize, u64) -> u64 + Sync,
{
    let stop = AtomicBool::new(false);
    let calls = AtomicU64::new(0);
    let cpu0 = cpu_time();
    let start = Instant::now();
    let units = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (stop, calls, body) = (&stop, &calls, &body);
                s.spawn(move || {
                    let mut units = 0;
                    let mut i = 0;
                    while !stop.load(Ordering::Relaxed) {
                        units += body(t, i);
                        i += 1;
                        calls.fetch_add(1, Ordering::Relaxed);
                    }
                    units
                })
            })
            .collect();
        std::thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(0))
            .sum::<u64>()
    });
    let wall = start.elapsed();
    Measurement {
        units,
        ops: calls.load(Ordering::Relaxed) * ops_per_call,
        wall,
        cpu: cpu_time().saturating_sub(cpu0),
    }
}
