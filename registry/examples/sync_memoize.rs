//! A synchronous program (no async runtime anywhere) that memoizes a slow function in
//! memcached with `mcache_registry::blocking::memoize`: the function stays a plain `fn`.
//!
//! One command runs it; it starts a memcached of its own (through `mcache-testkit`, so the
//! `memcached` binary must be installed), or uses the one `MEMCACHE_URL` names:
//!
//! ```text
//! cargo run -p mcache-registry --example sync_memoize --features blocking
//! MEMCACHE_URL=memcache://127.0.0.1:11211 cargo run -p mcache-registry --example sync_memoize --features blocking
//! ```
//!
//! It prints what each step took: a miss runs the slow function, a hit comes from memcached,
//! eight threads asking for the same new report run it once, an invalidation makes the next
//! call run it again, and an error is never cached. The counters come from `Cache::stats`.

use mcache_registry::blocking::{block_on, memoize, Blocking, Client};
use mcache_registry::Cache;
use serde::{Deserialize, Serialize};
use std::error::Error;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// What the slow function computes.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Report {
    customer: u32,
    month: String,
    orders: u32,
    total_cents: u64,
}

/// How many times the slow function ran.
static RUNS: AtomicUsize = AtomicUsize::new(0);

/// The slow function: half a second per report. Cached for five minutes per customer and
/// month; an `Err` is never cached.
#[memoize(cache = cache, ttl = 300)]
fn monthly_report(cache: &Cache<Blocking>, customer: u32, month: &str) -> Result<Report, String> {
    RUNS.fetch_add(1, Ordering::SeqCst);
    thread::sleep(Duration::from_millis(500));
    if customer == 0 {
        return Err("no customer 0".into());
    }
    let orders = customer % 17 + 3;
    Ok(Report {
        customer,
        month: month.into(),
        orders,
        total_cents: u64::from(orders) * 1_999,
    })
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sync_memoize: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `f`, printing what it returned, how long it took and how many runs it cost.
fn step<T: std::fmt::Debug>(what: &str, f: impl FnOnce() -> T) -> T {
    let (runs, start) = (RUNS.load(Ordering::SeqCst), Instant::now());
    let out = f();
    let ran = RUNS.load(Ordering::SeqCst) - runs;
    println!("{what:<44} {:>9.2?}  runs: {ran}  {out:?}", start.elapsed());
    out
}

fn run() -> Result<(), Box<dyn Error>> {
    // A memcached of our own unless MEMCACHE_URL names one (kept alive until the end).
    let (_server, url) = match std::env::var("MEMCACHE_URL") {
        Ok(url) => (None, url),
        Err(_) => {
            let server = mcache_testkit::Memcached::start()?;
            let url = format!("memcache://{}", server.host_port_string());
            (Some(server), url)
        }
    };
    println!("memcached at {url}\n");
    let client = Client::builder().url(&url)?.build()?;
    let cache = Cache::new(Blocking::new(client), "sync-example")?;
    // A shared memcached may hold reports of an earlier run: start from none.
    block_on(cache.invalidate_namespace())?;

    let report = || monthly_report(&cache, 42, "2026-11");
    step("first call (miss: runs the function)", report)?;
    step("second call (hit: served by memcached)", report)?;
    step("is it cached?", || {
        monthly_report::is_cached(&cache, 42, "2026-11")
    })?;

    step("8 threads ask for one new report at once", || {
        thread::scope(|s| {
            let threads: Vec<_> = (0..8)
                .map(|_| s.spawn(|| monthly_report(&cache, 7, "2026-11")))
                .collect();
            let ok = threads
                .into_iter()
                .map(|t| t.join().is_ok_and(|r| r.is_ok()));
            format!("{} of 8 served", ok.filter(|ok| *ok).count())
        })
    });

    step("invalidate it (the report's data changed)", || {
        monthly_report::invalidate(&cache, 42, "2026-11")
    })?;
    step("call again (miss: runs the function)", report)?;
    for what in [
        "an error (runs, and is not cached)",
        "the same error again (runs again)",
    ] {
        let failed = step(what, || monthly_report(&cache, 0, "2026-11"));
        assert!(failed.is_err(), "customer 0 has no report");
    }

    let stats = cache.stats().function(&monthly_report::FUNCTION);
    println!(
        "\n{} runs for {} calls: {} hits, {} misses",
        RUNS.load(Ordering::SeqCst),
        stats.calls(),
        stats.hits,
        stats.misses
    );
    Ok(())
}
