//! Heap allocations per request on the client's hot paths, counted by a global allocator:
//! a figure that, unlike timings, does not depend on what else the machine is doing.
//!
//! `allocs [requests]` (dhat's allocator in testing mode: counts only, writes no file):
//! starts memcached (`-t 1`), then on a current-thread tokio runtime
//! counts the allocations of `requests` sequential calls of each kind (after a warm-up), and
//! prints one line per kind: `allocs <kind> <allocations per call> <bytes per call>`.
//!
//! The reply itself needs some (a get's `Vec` of values; a multi-get's result list); the
//! rest is the client's own cost.

use mcache_benches::Executor;
use mcache_client::{Client, Memcache};

/// dhat's counting allocator (the system allocator underneath).
#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// Allocations and bytes allocated so far.
fn snapshot() -> (u64, u64) {
    let s = dhat::HeapStats::get();
    (s.total_blocks, s.total_bytes)
}

/// Counts `n` calls of `call` (after a warm-up); each does `per` requests.
async fn count<F, Fut>(kind: &str, n: u64, per: u64, mut call: F)
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for i in 0..n.min(1000) {
        call(i).await;
    }
    let (a0, b0) = snapshot();
    for i in 0..n {
        call(i).await;
    }
    let (a1, b1) = snapshot();
    println!(
        "allocs {kind} {:.2} {:.0}",
        (a1 - a0) as f64 / (n * per) as f64,
        (b1 - b0) as f64 / (n * per) as f64
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u64 = std::env::args().nth(1).map_or(Ok(20_000), |a| a.parse())?;
    let _profiler = dhat::Profiler::builder().testing().build();
    let server = mcache_testkit::Memcached::builder().threads(1).start()?;
    let exec = Executor::tokio_current_thread()?;
    let keys: Vec<String> = (0..1000).map(|i| format!("key{i}")).collect();
    exec.block_on(async {
        let c: Client = exec
            .client()
            .server(server.host_port_string())
            .connections(1)
            .build()
            .await?;
        for k in &keys {
            c.set(k.as_str(), vec![b'v'; 100], 0).await?;
        }
        let value = bytes::Bytes::from(vec![b'v'; 100]);
        count("get", n, 1, |i| {
            let c = &c;
            let k = keys[(i % 1000) as usize].as_str();
            async move {
                let _ = c.get(k).await;
            }
        })
        .await;
        count("set", n, 1, |i| {
            let (c, v) = (&c, value.clone());
            let k = keys[(i % 1000) as usize].as_str();
            async move {
                let _ = c.set(k, v, 0).await;
            }
        })
        .await;
        count("get_multi_100", n / 10, 1, |i| {
            let c = &c;
            let start = (i % 900) as usize;
            let ks = &keys[start..start + 100];
            async move {
                let _ = c.get_multi(ks).await;
            }
        })
        .await;
        // 32 concurrent gets in one task (the pipelined path through the connection task).
        count("get_x32", n / 32, 32, |i| {
            let c = &c;
            let keys = &keys;
            async move {
                let calls =
                    (0..32u64).map(|j| c.get(keys[((i * 32 + j) % 1000) as usize].as_str()));
                let _ = mcache_client::join_all(calls).await;
            }
        })
        .await;
        Ok::<_, mcache_client::Error>(())
    })?;
    Ok(())
}
