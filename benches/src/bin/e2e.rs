//! End-to-end benchmark: mcache-tokio and mcache-async-std against a real memcached (`-t 1`)
//! started on a free loopback port, with memcached's own `memcaslap` and a raw proto
//! `Connection` over a blocking socket as baselines.
//!
//! `cargo run --release -p mcache-benches --bin e2e -- [--seconds N] [--pin] [--out FILE]`
//!
//! `--pin` puts this process and memcached on CPU 0 (`taskset`): on virtual machines a
//! cross-CPU wake-up costs far more than the work, so pinned figures measure the client.

use mcache_benches::{peak_rss_kib, run_load, BoxFuture, Measurement, Runtime};
use mcache_proto::text::request::{Retrieve, RetrieveCommand};
use mcache_proto::{Connection, Key, Memcache, Request};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

struct Tokio(tokio::runtime::Runtime);
impl Runtime for Tokio {
    fn spawn(&self, f: BoxFuture<u64>) -> BoxFuture<u64> {
        let h = self.0.spawn(f);
        Box::pin(async move { h.await.unwrap_or(0) })
    }
    fn block_on<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        self.0.block_on(f)
    }
}

struct AsyncStd;
impl Runtime for AsyncStd {
    fn spawn(&self, f: BoxFuture<u64>) -> BoxFuture<u64> {
        Box::pin(async_std::task::spawn(f))
    }
    fn block_on<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        async_std::task::block_on(f)
    }
}

struct Row {
    scenario: &'static str,
    client: &'static str,
    unit: &'static str,
    m: Measurement,
}

const VALUE_100: &[u8] = &[b'v'; 100];

fn scenarios<C, R>(
    rt: &R,
    name: &'static str,
    make: impl Fn(usize) -> C,
    secs: Duration,
) -> Vec<Row>
where
    C: Memcache + Clone + Send + Sync + 'static,
    R: Runtime,
{
    let mut rows = Vec::new();
    let seq = make(1);
    let m = run_load(rt, 1, secs, 2, move |i| {
        let c = seq.clone();
        async move {
            let k = format!("seq{}", i % 1000);
            let _ = c.set(k.as_str(), VALUE_100, 0).await;
            let _ = c.get(k.as_str()).await;
            2
        }
    });
    rows.push(Row {
        scenario: "sequential set+get, 1 connection",
        client: name,
        unit: "req/s",
        m,
    });

    let c = make(2);
    rt.block_on(async {
        for i in 0..1000 {
            let _ = c.set(format!("key{i}"), VALUE_100, 0).await;
        }
        let _ = c.set("big", vec![b'x'; 64 * 1024], 0).await;
    });
    for tasks in [32usize, 256] {
        let c2 = c.clone();
        let m = run_load(rt, tasks, secs, 1, move |i| {
            let c = c2.clone();
            async move {
                let k = format!("key{}", i % 1000);
                u64::from(matches!(c.get(k.as_str()).await, Ok(Some(_))))
            }
        });
        let scenario = if tasks == 32 {
            "get 100 B, 32 tasks"
        } else {
            "get 100 B, 256 tasks"
        };
        rows.push(Row {
            scenario,
            client: name,
            unit: "gets/s",
            m,
        });
    }
    let keys: Vec<Key> = (0..100)
        .filter_map(|i| Key::new(format!("key{i}")).ok())
        .collect();
    let c2 = c.clone();
    let m = run_load(rt, 8, secs, 1, move |_| {
        let c = c2.clone();
        let keys = keys.clone();
        async move {
            match c.get_multi(keys).await {
                Ok(v) => v.iter().filter(|v| v.is_some()).count() as u64,
                Err(_) => 0,
            }
        }
    });
    rows.push(Row {
        scenario: "get_multi 100 keys, 8 tasks",
        client: name,
        unit: "keys/s",
        m,
    });
    let c2 = c.clone();
    let m = run_load(rt, 8, secs, 1, move |_| {
        let c = c2.clone();
        async move {
            match c.get("big").await {
                Ok(Some(v)) => v.data.len() as u64,
                _ => 0,
            }
        }
    });
    rows.push(Row {
        scenario: "get 64 KiB, 8 tasks",
        client: name,
        unit: "B/s",
        m,
    });
    rows
}

/// Sequential set+get over a blocking socket, driving proto's Connection directly.
fn raw_sequential(addr: std::net::SocketAddr, secs: Duration) -> std::io::Result<Measurement> {
    let mut sock = std::net::TcpStream::connect(addr)?;
    sock.set_nodelay(true)?;
    let mut conn = Connection::default();
    let mut buf = vec![0u8; 64 * 1024];
    let cpu0 = mcache_benches::cpu_time();
    let start = Instant::now();
    let mut ops = 0u64;
    let mut i = 0u64;
    while start.elapsed() < secs {
        let key = Key::new(format!("seq{}", i % 1000)).map_err(std::io::Error::other)?;
        i += 1;
        for req in [
            Request::Store(mcache_proto::text::request::Store {
                command: mcache_proto::text::request::StoreCommand::Set,
                key: key.clone(),
                flags: 0,
                exptime: 0,
                value: bytes::Bytes::from_static(VALUE_100),
                noreply: false,
            }),
            Request::Retrieve(Retrieve {
                command: RetrieveCommand::Get,
                keys: vec![key.clone()],
            }),
        ] {
            conn.send(req).map_err(std::io::Error::other)?;
            let out = conn.transmit().to_vec();
            sock.write_all(&out)?;
            conn.advance_transmit(out.len(), Instant::now());
            loop {
                if let Some((_, r)) = conn.poll_response() {
                    r.map_err(std::io::Error::other)?;
                    break;
                }
                let n = sock.read(&mut buf)?;
                if n == 0 {
                    return Err(std::io::Error::other("server closed"));
                }
                conn.receive(&buf[..n], Instant::now());
            }
            ops += 1;
        }
    }
    Ok(Measurement {
        units: ops,
        ops,
        wall: start.elapsed(),
        cpu: mcache_benches::cpu_time() - cpu0,
    })
}

/// memcaslap (libmemcached-tools) against the same server: its TPS.
fn memcaslap(addr: &str, concurrency: u32, secs: Duration, pin: bool) -> Option<f64> {
    let mut cmd = if pin {
        let mut c = std::process::Command::new("taskset");
        c.args(["-c", "0", "memcaslap"]);
        c
    } else {
        std::process::Command::new("memcaslap")
    };
    let out = cmd
        .args([
            "-s",
            addr,
            "-T",
            "1",
            "-c",
            &concurrency.to_string(),
            "-X",
            "100",
        ])
        .arg(format!("-t{}s", secs.as_secs().max(1)))
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "Run time: 5.0s Ops: 935467 TPS: 186872 Net_rate: 21.3M/s"
    let line = text.lines().rev().find(|l| l.contains("TPS:"))?;
    let tps = line.split("TPS:").nth(1)?.split_whitespace().next()?;
    tps.parse().ok()
}

fn fmt_rate(r: f64, unit: &str) -> String {
    if unit == "B/s" {
        format!("{:.0} MB/s", r / 1e6)
    } else if r >= 1e6 {
        format!("{:.2}M {unit}", r / 1e6)
    } else {
        format!("{:.0}k {unit}", r / 1e3)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut secs = Duration::from_secs(3);
    let mut pin = false;
    let mut out_file = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seconds" => secs = Duration::from_secs(args.next().ok_or("--seconds N")?.parse()?),
            "--pin" => pin = true,
            "--out" => out_file = Some(args.next().ok_or("--out FILE")?),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if pin {
        let mut set = nix::sched::CpuSet::new();
        set.set(0)?;
        nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)?;
    }
    let server = mcache_testkit::Memcached::builder().threads(1).start()?;
    if pin {
        std::process::Command::new("taskset")
            .args(["-a", "-p", "-c", "0", &server.pid().to_string()])
            .output()?;
    }
    let addr = server.host_port_string();
    eprintln!(
        "memcached on {addr} (-t 1), {}s per scenario, {}",
        secs.as_secs(),
        if pin { "pinned to CPU 0" } else { "unpinned" }
    );

    let mut rows = Vec::new();
    let raw = raw_sequential(server.addr(), secs)?;
    rows.push(Row {
        scenario: "sequential set+get, 1 connection",
        client: "raw proto Connection (blocking)",
        unit: "req/s",
        m: raw,
    });

    let workers = if pin { 1 } else { 2 };
    let tokio_rt = Tokio(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()?,
    );
    let a = addr.clone();
    let make_tokio = |n: usize| {
        let a = a.clone();
        tokio_rt.0.block_on(async move {
            mcache_tokio::Client::builder()
                .server(a)
                .connections(n)
                .request_timeout(Some(Duration::from_secs(5)))
                .build()
                .await
        })
    };
    let probe = make_tokio(1)?;
    drop(probe);
    rows.extend(scenarios(
        &tokio_rt,
        "mcache-tokio",
        |n| make_tokio(n).expect("connect"),
        secs,
    ));

    let a = addr.clone();
    let make_async_std = move |n: usize| {
        let a = a.clone();
        async_std::task::block_on(async move {
            mcache_async_std::Client::builder()
                .server(a)
                .connections(n)
                .request_timeout(Some(Duration::from_secs(5)))
                .build()
                .await
        })
        .expect("connect")
    };
    rows.extend(scenarios(
        &AsyncStd,
        "mcache-async-std",
        make_async_std,
        secs,
    ));

    let caslap = memcaslap(&addr, 32, secs, pin);
    let mut md = String::new();
    md.push_str(&format!(
        "Machine: {} cores, memcached 1.6.18 `-t 1`, 100-byte values unless stated, {} s per scenario, {}.\n\n",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        secs.as_secs(),
        if pin { "client and server pinned to CPU 0" } else { "unpinned" }
    ));
    md.push_str("| scenario | client | throughput | client CPU / request |\n|---|---|---|---|\n");
    for r in &rows {
        md.push_str(&format!(
            "| {} | {} | {} | {:.2} µs |\n",
            r.scenario,
            r.client,
            fmt_rate(r.m.rate(), r.unit),
            r.m.cpu_per_op_us()
        ));
    }
    if let Some(tps) = caslap {
        md.push_str(&format!(
            "| memcaslap -T 1 -c 32 -X 100 (90% get) | memcaslap | {} | n/a |\n",
            fmt_rate(tps, "ops/s")
        ));
        for r in rows.iter().filter(|r| r.scenario == "get 100 B, 32 tasks") {
            md.push_str(&format!(
                "\n{} at 32 tasks: {:.2}× memcaslap's ops/s.",
                r.client,
                r.m.rate() / tps
            ));
        }
        md.push('\n');
    } else {
        md.push_str(
            "\n(memcaslap not found: `apt-get install libmemcached-tools` for the baseline)\n",
        );
    }
    md.push_str(&format!(
        "\nPeak RSS of the benchmark process: {} MiB.\n",
        peak_rss_kib() / 1024
    ));
    println!("{md}");
    if let Some(f) = out_file {
        std::fs::write(f, md)?;
    }
    Ok(())
}
