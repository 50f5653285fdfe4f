//! The cost of memoization against a real memcached (started on a free loopback port):
//!
//! - the hit path of a memoized call against a raw `get` of the same value, one call at a time
//!   (latency) and 64 at a time (throughput): overhead in ns and as a ratio;
//! - one call at a time, the floor of a hit's design: the three reads a hit makes (the value
//!   and its two generation counters) as three raw `get`s in one batch on a pinned handle;
//! - single flight under 256 concurrent identical misses, in one process and split over two
//!   clients: how many times the body runs and how long a round takes;
//! - what a hit spends on being observed (its `memoize` span and its per-function counters,
//!   `Cache::stats`), measured alone, as a share of the hit's wall time and client CPU time.
//!
//! `cargo bench -p mcache-registry --bench memoize` (`-- --quick` for fewer iterations).

use mcache_registry::tokio::{Client, Connect};
use mcache_registry::{memoize, Cache, Memcache};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const PAYLOAD_LEN: usize = 100;

fn payload() -> String {
    "x".repeat(PAYLOAD_LEN)
}

#[memoize(cache = cache)]
async fn hit(cache: &Cache<Client>, id: u32) -> String {
    let _ = id;
    payload()
}

static MISS_RUNS: AtomicUsize = AtomicUsize::new(0);

#[memoize(cache = cache)]
async fn miss(cache: &Cache<Client>, round: u32) -> String {
    MISS_RUNS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(20)).await;
    format!("round {round}")
}

fn per_op(elapsed: Duration, n: usize) -> f64 {
    elapsed.as_nanos() as f64 / n as f64
}

/// CPU time of a process (user + system) from `/proc/<pid>/stat`, in ns (Linux; clock ticks of
/// 10 ms, so runs are long enough for a few percent of precision).
fn cpu_ns(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split(' ').collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks * 1e7)
}

/// Wall time and CPU time (this process, memcached) of `f`, per op.
struct Cost {
    wall: f64,
    client_cpu: Option<f64>,
    server_cpu: Option<f64>,
}

async fn cost<F: std::future::Future<Output = ()>>(server_pid: &str, n: usize, f: F) -> Cost {
    let (c0, s0) = (cpu_ns("self"), cpu_ns(server_pid));
    let t = Instant::now();
    f.await;
    let wall = per_op(t.elapsed(), n);
    let (c1, s1) = (cpu_ns("self"), cpu_ns(server_pid));
    let delta = |a: Option<f64>, b: Option<f64>| Some((b? - a?) / n as f64);
    Cost {
        wall,
        client_cpu: delta(c0, c1),
        server_cpu: delta(s0, s1),
    }
}

fn show(label: &str, c: &Cost) {
    let fmt = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.0}"));
    println!(
        "  {label:<14} wall {:>7.0} ns/op   client cpu {:>6} ns/op   memcached cpu {:>6} ns/op",
        c.wall,
        fmt(c.client_cpu),
        fmt(c.server_cpu)
    );
}

fn compare(raw: &Cost, memo: &Cost) {
    let d = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => format!("{:+.0} ns ({:.2}x)", b - a, b / a),
        _ => "n/a".into(),
    };
    println!(
        "  overhead       wall {:+.0} ns ({:.2}x)   client cpu {}   memcached cpu {}",
        memo.wall - raw.wall,
        memo.wall / raw.wall,
        d(raw.client_cpu, memo.client_cpu),
        d(raw.server_cpu, memo.server_cpu)
    );
}

/// Keys holding numbers like a generation counter's (17-20 digits).
const COUNTERS: [&str; 2] = ["counter-a", "counter-b"];

async fn sequential(pid: &str, client: &Client, cache: &Cache<Client>, n: usize) -> (Cost, Cost) {
    let raw = cost(pid, n, async {
        for _ in 0..n {
            assert!(client.get("raw").await.expect("get").is_some());
        }
    })
    .await;
    let memo = cost(pid, n, async {
        for _ in 0..n {
            assert_eq!(hit(cache, 1).await.len(), PAYLOAD_LEN);
        }
    })
    .await;
    (raw, memo)
}

/// What a hit's three reads cost without the registry: the value and two counter-sized
/// values, as three `get`s in one batch (a pinned handle, as a hit reads them).
async fn three_gets(pid: &str, client: &Client, n: usize) -> Cost {
    cost(pid, n, async {
        for _ in 0..n {
            let pinned = client.pinned();
            let (value, (a, b)) = tokio::join!(pinned.get("raw"), async {
                tokio::join!(pinned.get(COUNTERS[0]), pinned.get(COUNTERS[1]))
            });
            assert!(value.expect("get").is_some());
            assert!(a.expect("get").is_some() && b.expect("get").is_some());
        }
    })
    .await
}

async fn concurrent(
    pid: &str,
    client: &Client,
    cache: &Cache<Client>,
    n: usize,
    width: usize,
) -> (Cost, Cost) {
    let per_task = n / width;
    let raw = cost(pid, per_task * width, async {
        let tasks: Vec<_> = (0..width)
            .map(|_| {
                let client = client.clone();
                tokio::spawn(async move {
                    for _ in 0..per_task {
                        assert!(client.get("raw").await.expect("get").is_some());
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("task");
        }
    })
    .await;
    let memo = cost(pid, per_task * width, async {
        let tasks: Vec<_> = (0..width)
            .map(|i| {
                let cache = cache.clone();
                // Distinct ids: distinct keys, so single flight does not merge the calls.
                let id = 100 + i as u32;
                tokio::spawn(async move {
                    for _ in 0..per_task {
                        assert_eq!(hit(&cache, id).await.len(), PAYLOAD_LEN);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("task");
        }
    })
    .await;
    (raw, memo)
}

async fn stampede(caches: &[Cache<Client>], rounds: u32, callers: usize) -> (f64, Duration) {
    let before = MISS_RUNS.load(Ordering::SeqCst);
    let mut total = Duration::ZERO;
    for round in 0..rounds {
        let t = Instant::now();
        let tasks: Vec<_> = (0..callers)
            .map(|i| {
                let cache = caches[i % caches.len()].clone();
                tokio::spawn(async move { miss(&cache, round).await })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.expect("task"), format!("round {round}"));
        }
        total += t.elapsed();
        caches[0].invalidate_namespace().await.expect("invalidate");
    }
    let runs = MISS_RUNS.load(Ordering::SeqCst) - before;
    (runs as f64 / f64::from(rounds), total / rounds)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (n, rounds) = if quick { (2_000, 5) } else { (20_000, 30) };
    let server = mcache_testkit::Memcached::start().expect("memcached starts");
    let addr = server.host_port_string();
    let pid = server.pid().to_string();
    // One thread: no work stealing or spinning workers in the CPU figures.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let client = Client::connect(addr.as_str()).await.expect("connect");
        let cache = Cache::new(client.clone(), "bench").expect("namespace");
        client.set("raw", payload(), 0).await.expect("set");
        for key in COUNTERS {
            client
                .set(key, "8230591623904771105", 0)
                .await
                .expect("set");
        }
        hit(&cache, 1).await;
        for i in 0..64 {
            hit(&cache, 100 + i).await;
        }
        // Warm up both paths.
        sequential(&pid, &client, &cache, n / 10).await;

        let (raw, memo) = sequential(&pid, &client, &cache, n).await;
        println!("hit path, one call at a time ({n} calls, {PAYLOAD_LEN}-byte value, default client: 1 connection on this current-thread runtime):");
        show("raw get", &raw);
        show("memoized hit", &memo);
        compare(&raw, &memo);
        let floor = three_gets(&pid, &client, n).await;
        println!("the floor of a hit's design: its three reads as raw gets in one batch ({n} calls):");
        show("three gets", &floor);
        compare(&raw, &floor);
        println!("  memoized hit over three gets: wall {:+.0} ns ({:.2}x)", memo.wall - floor.wall, memo.wall / floor.wall);

        // Two connections (the default on a multi-thread runtime): the value and the counters
        // still go out in one write, through a pinned handle.
        let two = Client::builder()
            .server(addr.as_str())
            .connections(2)
            .build()
            .await
            .expect("connect");
        let two_cache = Cache::new(two.clone(), "bench").expect("namespace");
        sequential(&pid, &two, &two_cache, n / 10).await;
        let (raw, memo) = sequential(&pid, &two, &two_cache, n).await;
        println!("hit path, one call at a time, client with two connections:");
        show("raw get", &raw);
        show("memoized hit", &memo);
        compare(&raw, &memo);

        let (raw, memo) = concurrent(&pid, &client, &cache, n * 4, 64).await;
        println!("hit path, 64 concurrent callers ({} calls):", n * 4);
        show("raw get", &raw);
        show("memoized hit", &memo);
        compare(&raw, &memo);

        // The observability of a hit (span + counters), alone, against the hit itself.
        let (_, memo) = sequential(&pid, &client, &cache, n).await;
        let m = n * 500;
        let observed = cost(&pid, m, async {
            for _ in 0..m {
                mcache_registry::__private::observe_hit(&cache, &hit::FUNCTION);
            }
        })
        .await;
        println!("stats counters and span of a hit, alone ({m} calls):");
        show("observe", &observed);
        // The loop is CPU only: its wall time is its CPU time, finer than the CPU clock's ticks.
        let of_cpu = memo.client_cpu.map_or("n/a".to_string(), |cpu| {
            format!("{:.2}% of its client CPU ({cpu:.0} ns)", 100.0 * observed.wall / cpu)
        });
        println!(
            "  share of a memoized hit: {:.2}% of its wall time ({:.0} ns), {of_cpu}",
            100.0 * observed.wall / memo.wall,
            memo.wall,
        );

        let second = Cache::new(
            Client::connect(addr.as_str()).await.expect("connect"),
            "bench",
        )
        .expect("namespace");
        let (runs, took) = stampede(std::slice::from_ref(&cache), rounds, 256).await;
        println!("single flight, 256 concurrent identical misses, one client ({rounds} rounds, 20 ms body):");
        println!("  body runs per round {runs:.2}, round {:.1} ms", took.as_secs_f64() * 1e3);
        let (runs, took) = stampede(&[cache.clone(), second], rounds, 256).await;
        println!("single flight + leases, 256 misses over two clients ({rounds} rounds):");
        println!("  body runs per round {runs:.2}, round {:.1} ms", took.as_secs_f64() * 1e3);
    });
}
