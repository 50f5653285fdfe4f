//! `get_multi` of 100 keys over a pool of 3 memcached against the same over one server, with
//! both adapters: keys/s and client CPU per key.
//!
//! `cargo run --release -p mcache-benches --bin pool -- [--seconds N] [--tasks N]
//! [--connections N] [--server-threads N]`
//!
//! Each server is a private memcached on a free loopback port (`-t 1` by default). 300 keys of
//! 100 bytes are stored through the client; each call asks for 100 of them (a window sliding
//! over the 300, so every call spans every server of the pool) and checks that all 100 hit.
//! Over 3 servers a call is split into one `get` per server, sent at once, and merged in the
//! caller's order.

use mcache_benches::{run_load, Executor, Measurement};
use mcache_client::{Client, Memcache};
use mcache_testkit::Memcached;
use std::sync::Arc;
use std::time::Duration;

const KEYS: usize = 300;
const PER_CALL: usize = 100;

struct Options {
    seconds: f64,
    tasks: usize,
    connections: usize,
    server_threads: u32,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        seconds: 3.0,
        tasks: 8,
        connections: 2,
        server_threads: 1,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--seconds" => o.seconds = value()?.parse().map_err(|e| format!("{e}"))?,
            "--tasks" => o.tasks = value()?.parse().map_err(|e| format!("{e}"))?,
            "--connections" => o.connections = value()?.parse().map_err(|e| format!("{e}"))?,
            "--server-threads" => {
                o.server_threads = value()?.parse().map_err(|e| format!("{e}"))?
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(o)
}

fn keys() -> Arc<Vec<String>> {
    Arc::new((0..KEYS).map(|i| format!("pool:key:{i}")).collect())
}

/// Stores the keys, then measures `get_multi` of 100 keys from `tasks` tasks.
fn measure(exec: &Executor, c: Client, o: &Options) -> Measurement {
    let keys = keys();
    exec.block_on(async {
        for k in keys.iter() {
            c.set(k.as_str(), vec![b'v'; 100], 0).await.expect("set");
        }
    });
    run_load(
        exec,
        o.tasks,
        Duration::from_secs_f64(o.seconds),
        1,
        move |i| {
            let c = c.clone();
            let keys = keys.clone();
            async move {
                let start = (i as usize).wrapping_mul(37) % KEYS;
                let window = (0..PER_CALL).map(|j| keys[(start + j) % KEYS].as_str());
                let got = c.get_multi(window).await.expect("get_multi");
                let hits = got.iter().filter(|v| v.is_some()).count();
                assert_eq!(hits, PER_CALL, "every key hits");
                hits as u64
            }
        },
    )
}

fn report(name: &str, servers: usize, m: &Measurement) {
    println!(
        "| {name:<9} | {servers} | {:>12.0} | {:>10.0} | {:>14.2} |",
        m.rate(),
        m.ops as f64 / m.wall.as_secs_f64(),
        m.cpu.as_secs_f64() * 1e6 / m.units.max(1) as f64,
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let o = options()?;
    let servers: Vec<Memcached> = (0..3)
        .map(|_| Memcached::builder().threads(o.server_threads).start())
        .collect::<Result<_, _>>()?;
    let addrs: Vec<String> = servers.iter().map(Memcached::host_port_string).collect();
    println!(
        "get_multi of {PER_CALL} keys (of {KEYS}, 100-byte values), {} tasks, {} connections per \
         server, memcached -t {}, {} s per scenario, {} CPUs",
        o.tasks,
        o.connections,
        o.server_threads,
        o.seconds,
        std::thread::available_parallelism().map_or(0, usize::from),
    );
    println!("| adapter   | servers | keys/s | get_multi/s | client CPU µs/key |");
    println!("|---|---|---:|---:|---:|");

    // The one client type, on each runtime in turn.
    for exec in [Executor::tokio(2)?, Executor::async_std()] {
        for n in [1, 3] {
            let c = exec.block_on(
                exec.client()
                    .servers(addrs[..n].iter().cloned())
                    .connections(o.connections)
                    .build(),
            )?;
            let m = measure(&exec, c, &o);
            report(exec.name(), n, &m);
        }
    }
    Ok(())
}
