//! Shared pieces of mcache's benchmarks: the executors a benchmark runs on (with the client's
//! [`Runtime`] for each), a load loop, and CPU accounting.
//!
//! There is one client type, `mcache_client::Client`; a benchmark mode only picks the runtime
//! it is built on ([`Executor::client`]). Tasks are spawned through that same [`Runtime`].

use mcache_client::{Builder, Runtime};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a benchmark runs on: an executor to block on, and the client's [`Runtime`] over it
/// (tasks, timers, sockets).
pub struct Executor {
    kind: Kind,
    runtime: Arc<dyn Runtime>,
}

enum Kind {
    Tokio(tokio::runtime::Runtime),
    AsyncStd,
}

impl Executor {
    /// A tokio multi-thread runtime with `workers` worker threads, and mcache-tokio's
    /// [`Tokio`](mcache_tokio::Tokio) runtime on it.
    pub fn tokio(workers: usize) -> std::io::Result<Executor> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers.max(1))
            .enable_all()
            .build()?;
        Ok(Executor::on_tokio(rt))
    }

    /// A tokio current-thread runtime (every task on the thread that blocks on it), and
    /// mcache-tokio's [`Tokio`](mcache_tokio::Tokio) runtime on it.
    pub fn tokio_current_thread() -> std::io::Result<Executor> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(Executor::on_tokio(rt))
    }

    fn on_tokio(rt: tokio::runtime::Runtime) -> Executor {
        // Made inside the runtime, so that its tasks go to this runtime.
        let runtime = {
            let _in = rt.enter();
            mcache_tokio::Tokio::runtime()
        };
        Executor {
            kind: Kind::Tokio(rt),
            runtime,
        }
    }

    /// async-std's global executor, and mcache-async-std's
    /// [`AsyncIo::async_std`](mcache_async_std::AsyncIo::async_std) runtime on it.
    pub fn async_std() -> Executor {
        Executor {
            kind: Kind::AsyncStd,
            runtime: mcache_async_std::AsyncIo::async_std(),
        }
    }

    /// The executor's name (`tokio`, `async-std`).
    pub fn name(&self) -> &'static str {
        match self.kind {
            Kind::Tokio(_) => "tokio",
            Kind::AsyncStd => "async-std",
        }
    }

    /// The client's runtime on this executor.
    pub fn runtime(&self) -> &Arc<dyn Runtime> {
        &self.runtime
    }

    /// A client builder on this executor's runtime.
    pub fn client(&self) -> Builder {
        Builder::new(self.runtime.clone())
    }

    /// Runs a future to completion on this executor.
    pub fn block_on<T>(&self, f: impl Future<Output = T>) -> T {
        match &self.kind {
            Kind::Tokio(rt) => rt.block_on(f),
            Kind::AsyncStd => async_std::task::block_on(f),
        }
    }
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

/// The memcached whose CPU time [`run_load`] and [`run_threads`] measure beside the client's
/// (see [`watch_server`]).
static SERVER_PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();

/// From now on, measurements include the CPU time of the memcached process `pid` (a server on
/// this machine): what each request costs the server, not only the client.
pub fn watch_server(pid: u32) {
    let _ = SERVER_PID.set(pid);
}

/// CPU time the watched memcached has used so far (every thread's, from
/// `/proc/<pid>/task/*/schedstat`, in ns), or `None` if no server is watched or it cannot be
/// read.
pub fn server_cpu_time() -> Option<Duration> {
    let pid = SERVER_PID.get()?;
    let mut ns: u64 = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        ns += stat.split(' ').next()?.trim().parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(ns))
}

/// The watched server's CPU time since `start` (a [`server_cpu_time`] reading).
pub fn server_cpu_since(start: Option<Duration>) -> Option<Duration> {
    Some(server_cpu_time()?.saturating_sub(start?))
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
    /// The server's CPU time meanwhile, when one is watched ([`watch_server`]).
    pub server_cpu: Option<Duration>,
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

    /// The server's CPU time per operation, in µs, when it was measured.
    pub fn server_cpu_per_op_us(&self) -> Option<f64> {
        Some(self.server_cpu?.as_secs_f64() * 1e6 / self.ops.max(1) as f64)
    }
}

/// Runs `tasks` copies of `body` for `duration`; each call of `body` returns the units it did
/// (and counts as `ops_per_call` operations).
pub fn run_load<F, Fut>(
    exec: &Executor,
    tasks: usize,
    duration: Duration,
    ops_per_call: u64,
    body: F,
) -> Measurement
where
    F: Fn(u64) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = u64> + Send + 'static,
{
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let cpu0 = cpu_time();
    let server0 = server_cpu_time();
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks as u64)
        .map(|t| {
            let stop = stop.clone();
            let calls = calls.clone();
            let body = body.clone();
            let (done, units) = futures_channel::oneshot::channel();
            exec.runtime().spawn(Box::pin(async move {
                let mut units = 0;
                let mut i = t << 32;
                while !stop.load(Ordering::Relaxed) {
                    units += body(i).await;
                    i += 1;
                    calls.fetch_add(1, Ordering::Relaxed);
                }
                let _ = done.send(units);
            }));
            units
        })
        .collect();
    let timer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(duration);
            stop.store(true, Ordering::Relaxed);
        })
    };
    let units: u64 = exec.block_on(async {
        let mut total = 0;
        for h in handles {
            // A task that panicked did no units that count.
            total += h.await.unwrap_or(0);
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
        server_cpu: server_cpu_since(server0),
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
    let server0 = server_cpu_time();
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
        server_cpu: server_cpu_since(server0),
    }
}
