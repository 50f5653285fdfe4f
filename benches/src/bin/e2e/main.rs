//! End-to-end benchmark: mcache-tokio and mcache-async-std side by side with the other Rust
//! memcached clients (`memcache`, `async-memcached`, `mcmc-rs`), against a real memcached
//! (`-t 1`) started on a free loopback port, with memcached's own `memcaslap` and a raw proto
//! `Connection` over a blocking socket as baselines.
//!
//! `cargo run --release -p mcache-benches --bin e2e -- [--seconds N] [--runs N] [--pin]
//! [--shape multi|current] [--clients a,b,..] [--out FILE]`
//!
//! `--shape` (see [`workload`]): `multi` (default) runs the tokio clients on a two-worker
//! multi-thread runtime with keys in order; `current` runs them on one current-thread runtime
//! with 10,000 keys (and 100 of 64 KiB) picked at random.
//!
//! The driver starts memcached, then runs each client in a process of its own
//! (`e2e --client NAME --server HOST:PORT`, which prints its measurements), so that peak RSS and
//! CPU time are per client; with `--runs N` it goes through all clients N times and keeps the
//! best figure of each cell. It writes one markdown report: machine, placement, throughput,
//! client CPU per request, peak RSS, ratios of mcache-tokio against each peer, and the aims.
//!
//! `e2e --client NAME --server HOST:PORT [--server-pid PID] [--only
//! seq|get32|get256|multi100|big64k]` runs one client (or one scenario of it: for strace or
//! perf) against a running memcached; with `--server-pid` (the driver passes it) it also
//! measures memcached's CPU time per request, from `/proc/PID/task/*/schedstat`.
//!
//! `--pin` puts the driver (so every client and memcaslap) and memcached on CPU 0: on virtual
//! machines a cross-CPU wake-up costs far more than the work, so pinned figures measure the
//! client.
//!
//! `E2E_MCACHE_CONNECTIONS=N` (environment, inherited by the worker processes): the mcache
//! clients' connections for the concurrent scenarios, instead of the builder's default (1 on a
//! current-thread runtime, 2 otherwise).
//!
//! `E2E_MCACHE_TIMEOUTS=off`: the mcache clients without a request or read timeout (the peers
//! have none), to measure what enforcing them costs; the report's figures keep them on (5 s).
//!
//! `E2E_MCACHE_SINGLE_GET_AS_META=off`: single-key gets go out as text `get`, not `mg` (the
//! builder's default), to compare what each costs memcached.

mod peers;
mod report;
mod workload;

use mcache_benches::{run_load, Executor, Measurement};
use mcache_client::{Client, Memcache};
use mcache_proto::text::request::{Retrieve, RetrieveCommand, Store, StoreCommand};
use mcache_proto::{Connection, Key, Request};
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The tokio executor the tokio clients run on. In the `multi` shape: two workers (one per
/// core of these machines) unpinned, one when everything shares CPU 0; in the `current` shape
/// a current-thread runtime.
pub(crate) fn tokio_executor(pin: bool) -> std::io::Result<Executor> {
    match workload::shape() {
        workload::Shape::Multi => Executor::tokio(if pin { 1 } else { 2 }),
        workload::Shape::Current => Executor::tokio_current_thread(),
    }
}

/// The 100-byte value of every key (see [`workload`] for which keys).
pub(crate) const VALUE_100: &[u8] = &[b'v'; 100];
/// The size of the large values.
pub(crate) const BIG: usize = 64 * 1024;

/// The measured scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Scenario {
    Sequential,
    Get32,
    Get256,
    Multi100,
    Big64k,
}

impl Scenario {
    pub(crate) const ALL: [Scenario; 5] = [
        Scenario::Sequential,
        Scenario::Get32,
        Scenario::Get256,
        Scenario::Multi100,
        Scenario::Big64k,
    ];

    pub(crate) fn id(self) -> &'static str {
        match self {
            Scenario::Sequential => "seq",
            Scenario::Get32 => "get32",
            Scenario::Get256 => "get256",
            Scenario::Multi100 => "multi100",
            Scenario::Big64k => "big64k",
        }
    }

    fn from_id(id: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.id() == id)
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            Scenario::Sequential => "sequential set+get, 1 connection",
            Scenario::Get32 => "get 100 B, 32 tasks",
            Scenario::Get256 => "get 100 B, 256 tasks",
            Scenario::Multi100 => "multi-get 100 keys, 8 tasks",
            Scenario::Big64k => "get 64 KiB, 8 tasks",
        }
    }

    pub(crate) fn unit(self) -> &'static str {
        match self {
            Scenario::Sequential => "req/s",
            Scenario::Get32 | Scenario::Get256 => "gets/s",
            Scenario::Multi100 => "keys/s",
            Scenario::Big64k => "B/s",
        }
    }
}

/// `--only SCENARIO` (worker): the one scenario to run, for profiling (strace, perf).
static ONLY: std::sync::OnceLock<Scenario> = std::sync::OnceLock::new();

/// How long to run scenario `s`: no time at all when `--only` names another.
pub(crate) fn dur(s: Scenario, secs: Duration) -> Duration {
    match ONLY.get() {
        Some(only) if *only != s => Duration::ZERO,
        _ => secs,
    }
}

/// The clients the runner knows.
pub(crate) struct ClientInfo {
    /// Name on the command line (`--client`).
    pub(crate) id: &'static str,
    /// Column heading.
    pub(crate) label: &'static str,
    /// Another crate (ratios are computed against it).
    pub(crate) peer: bool,
    /// How it is driven.
    pub(crate) how: &'static str,
}

pub(crate) const CLIENTS: &[ClientInfo] = &[
    ClientInfo {
        id: "mcache-tokio",
        label: "mcache-tokio",
        peer: false,
        how: "`Client::builder()`, 1 connection for the sequential scenario, the builder's \
              default otherwise (1 connection on the `current` shape's current-thread runtime, \
              2 on a multi-thread one), shared by all tasks (requests multiplexed and \
              pipelined); the shape's tokio runtime",
    },
    ClientInfo {
        id: "mcache-async-std",
        label: "mcache-async-std",
        peer: false,
        how: "as mcache-tokio, on async-std's executor (multi-thread: 2 connections)",
    },
    ClientInfo {
        id: "raw",
        label: "raw Connection",
        peer: false,
        how: "proto's `Connection` over a blocking `std::net::TcpStream`, one request at a \
              time (sequential scenario only): the floor for the adapters",
    },
    ClientInfo {
        id: "memcache",
        label: "memcache",
        peer: true,
        how: "rust-memcache 0.21 (blocking, binary protocol, its default): one `Client` \
              (`Client::builder().with_max_pool_size(N)`, URL `?timeout=10&tcp_nodelay=true` \
              as in its docs) shared by N OS threads, one thread per task; r2d2's default \
              test-on-checkout sends a `version` round trip before every command",
    },
    ClientInfo {
        id: "memcache-tuned",
        label: "memcache (tuned)",
        peer: true,
        how: "as memcache, but with the ASCII protocol (`&protocol=ascii`: its binary protocol \
              writes each request in several unbuffered syscalls) and `Client::with_pool` over \
              an r2d2 pool built with `test_on_check_out(false)` (one round trip per command)",
    },
    ClientInfo {
        id: "async-memcached",
        label: "async-memcached",
        peer: true,
        how: "async-memcached 0.9 (tokio, ASCII protocol): one connection (`Client::new`) per \
              task, each in its own uncontended `tokio::sync::Mutex` (the client needs `&mut`); \
              same runtime as mcache-tokio",
    },
    ClientInfo {
        id: "mcmc-rs",
        label: "mcmc-rs",
        peer: true,
        how: "mcmc-rs 0.9 with `tokio-runtime`: one `Connection::Tcp` (with `TCP_NODELAY`) per \
              task, each in its own uncontended `tokio::sync::Mutex`; same runtime as \
              mcache-tokio",
    },
];

/// Every scenario for the mcache client on `rt`'s runtime.
fn mcache_scenarios(
    rt: &Executor,
    addr: &str,
    secs: Duration,
) -> Result<Vec<(Scenario, Measurement)>, BoxError> {
    let make = |n: Option<usize>| -> Result<Client, BoxError> {
        let timeout = match std::env::var("E2E_MCACHE_TIMEOUTS").as_deref() {
            Ok("off") => None,
            _ => Some(Duration::from_secs(5)),
        };
        let mut builder = rt
            .client()
            .server(addr)
            .request_timeout(timeout)
            .read_timeout(timeout);
        if let Some(n) = n {
            builder = builder.connections(n);
        }
        if std::env::var("E2E_MCACHE_SINGLE_GET_AS_META").as_deref() == Ok("off") {
            builder = builder.single_get_as_meta(false);
        }
        rt.block_on(builder.build()).map_err(BoxError::from)
    };
    let mut out = Vec::new();
    let seq = make(Some(1))?;
    let m = run_load(rt, 1, dur(Scenario::Sequential, secs), 2, move |i| {
        let c = seq.clone();
        async move {
            let k = format!("seq{}", i % 1000);
            let _ = c.set(k.as_str(), VALUE_100, 0).await;
            let _ = c.get(k.as_str()).await;
            2
        }
    });
    out.push((Scenario::Sequential, m));

    let connections = std::env::var("E2E_MCACHE_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok());
    let c = make(connections)?;
    rt.block_on(async {
        for k in workload::all_keys() {
            c.set(k, VALUE_100, 0).await?;
        }
        for k in workload::all_big_keys() {
            c.set(k, vec![b'x'; BIG], 0).await?;
        }
        Ok::<_, mcache_client::Error>(())
    })?;
    for (scenario, tasks) in [(Scenario::Get32, 32usize), (Scenario::Get256, 256)] {
        let c2 = c.clone();
        let m = run_load(rt, tasks, dur(scenario, secs), 1, move |i| {
            let c = c2.clone();
            async move {
                let k = workload::key(i);
                u64::from(matches!(c.get(k.as_str()).await, Ok(Some(_))))
            }
        });
        out.push((scenario, m));
    }
    let keys: Arc<Vec<String>> = Arc::new(workload::all_keys().collect());
    let c2 = c.clone();
    let m = run_load(rt, 8, dur(Scenario::Multi100, secs), 1, move |i| {
        let c = c2.clone();
        let keys = keys.clone();
        async move {
            let start = workload::multi_start(i);
            match c.get_multi(&keys[start..start + 100]).await {
                Ok(v) => v.iter().filter(|v| v.is_some()).count() as u64,
                Err(_) => 0,
            }
        }
    });
    out.push((Scenario::Multi100, m));
    let c2 = c.clone();
    let m = run_load(rt, 8, dur(Scenario::Big64k, secs), 1, move |i| {
        let c = c2.clone();
        async move {
            match c.get(workload::big_key(i).as_str()).await {
                Ok(Some(v)) => v.data.len() as u64,
                _ => 0,
            }
        }
    });
    out.push((Scenario::Big64k, m));
    Ok(out)
}

/// Sequential set+get over a blocking socket, driving proto's Connection directly.
fn raw_sequential(addr: &str, secs: Duration) -> std::io::Result<Measurement> {
    let mut sock = std::net::TcpStream::connect(addr)?;
    sock.set_nodelay(true)?;
    let mut conn = Connection::default();
    let mut buf = vec![0u8; 64 * 1024];
    let cpu0 = mcache_benches::cpu_time();
    let server0 = mcache_benches::server_cpu_time();
    let start = Instant::now();
    let mut ops = 0u64;
    let mut i = 0u64;
    while start.elapsed() < secs {
        let key = Key::new(format!("seq{}", i % 1000)).map_err(std::io::Error::other)?;
        i += 1;
        for req in [
            Request::Store(Store {
                command: StoreCommand::Set,
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
            let out = conn.transmit();
            sock.write_all(out)?;
            let n = out.len();
            conn.advance_transmit(n, Instant::now());
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
        cpu: mcache_benches::cpu_time().saturating_sub(cpu0),
        server_cpu: mcache_benches::server_cpu_since(server0),
    })
}

fn pin_self() -> Result<(), BoxError> {
    let mut set = nix::sched::CpuSet::new();
    set.set(0)?;
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)?;
    Ok(())
}

/// `--client NAME`: runs one client's scenarios and prints one line per measurement
/// (`row <scenario> <units> <ops> <wall ns> <cpu ns> <memcached cpu ns or ->`), then
/// `rss <KiB>`.
fn worker(client: &str, addr: &str, secs: Duration, pin: bool) -> Result<(), BoxError> {
    if pin {
        pin_self()?;
    }
    let rows: Vec<(Scenario, Measurement)> = match client {
        "raw" => vec![(Scenario::Sequential, raw_sequential(addr, secs)?)],
        "mcache-tokio" => mcache_scenarios(&tokio_executor(pin)?, addr, secs)?,
        "mcache-async-std" => mcache_scenarios(&Executor::async_std(), addr, secs)?,
        "memcache" => peers::memcache_scenarios(addr, false, secs)?,
        "memcache-tuned" => peers::memcache_scenarios(addr, true, secs)?,
        "async-memcached" => {
            let rt = tokio_executor(pin)?;
            peers::async_scenarios(
                &rt,
                || peers::AsyncMemcached::connect(addr.to_string()),
                secs,
            )?
        }
        "mcmc-rs" => {
            let rt = tokio_executor(pin)?;
            peers::async_scenarios(&rt, || peers::Mcmc::connect(addr.to_string()), secs)?
        }
        other => return Err(format!("unknown client {other}").into()),
    };
    let mut out = std::io::stdout().lock();
    for (s, m) in rows {
        if ONLY.get().is_some_and(|only| *only != s) {
            continue;
        }
        writeln!(
            out,
            "row {} {} {} {} {} {}",
            s.id(),
            m.units,
            m.ops,
            m.wall.as_nanos(),
            m.cpu.as_nanos(),
            m.server_cpu
                .map_or("-".to_string(), |d| d.as_nanos().to_string())
        )?;
    }
    writeln!(out, "rss {}", mcache_benches::peak_rss_kib())?;
    Ok(())
}

/// One client's figures from one worker process.
pub(crate) struct ClientRun {
    pub(crate) rows: Vec<(Scenario, Measurement)>,
    pub(crate) rss_kib: u64,
}

fn parse_worker(text: &str) -> Result<ClientRun, BoxError> {
    let mut run = ClientRun {
        rows: Vec::new(),
        rss_kib: 0,
    };
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            ["row", id, units, ops, wall, cpu, server_cpu] => {
                let s = Scenario::from_id(id).ok_or("unknown scenario")?;
                run.rows.push((
                    s,
                    Measurement {
                        units: units.parse()?,
                        ops: ops.parse()?,
                        wall: Duration::from_nanos(wall.parse()?),
                        cpu: Duration::from_nanos(cpu.parse()?),
                        server_cpu: server_cpu.parse().ok().map(Duration::from_nanos),
                    },
                ));
            }
            ["rss", kib] => run.rss_kib = kib.parse()?,
            _ => {}
        }
    }
    Ok(run)
}

fn run_worker(
    client: &str,
    addr: &str,
    server_pid: u32,
    secs: Duration,
    pin: bool,
) -> Result<ClientRun, BoxError> {
    let mut cmd = std::process::Command::new(std::env::current_exe()?);
    cmd.args(["--client", client, "--server", addr, "--seconds"])
        .arg(secs.as_secs().to_string())
        .args(["--server-pid", &server_pid.to_string()])
        .args(["--shape", workload::shape().id()])
        .stderr(std::process::Stdio::inherit());
    if pin {
        cmd.arg("--pin");
    }
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(format!("worker {client} exited with {}", out.status).into());
    }
    parse_worker(&String::from_utf8_lossy(&out.stdout))
}

/// What memcaslap did, with its CPU time (from `RUSAGE_CHILDREN`).
pub(crate) struct Caslap {
    /// Hits per second: keys fetched that were found.
    pub(crate) hits_per_s: f64,
    /// Client CPU per request (a multi-get counts once).
    pub(crate) cpu_per_req_us: f64,
    /// memcached's CPU per request meanwhile.
    pub(crate) server_cpu_per_req_us: Option<f64>,
}

fn children_cpu() -> Duration {
    use nix::sys::resource::{getrusage, UsageWho};
    match getrusage(UsageWho::RUSAGE_CHILDREN) {
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

/// memcaslap's workload: 16-byte keys (its minimum), 100-byte values, 99% gets and 1% sets
/// (its default of 10% sets would make the sets, one round trip each, dominate a multi-get run).
const CASLAP_CONFIG: &str = "key\n16 16 1\nvalue\n100 100 1\ncmd\n0 0.01\n1 0.99\n";

/// memcaslap (libmemcached-tools) against the same server: one thread, `-c 32`,
/// [`CASLAP_CONFIG`], `division` keys per get.
fn memcaslap(addr: &str, division: u32, secs: Duration, pin: bool) -> Option<Caslap> {
    let cfg = std::env::temp_dir().join(format!("mcache-e2e-memcaslap-{}.cfg", std::process::id()));
    std::fs::write(&cfg, CASLAP_CONFIG).ok()?;
    let mut cmd = if pin {
        let mut c = std::process::Command::new("taskset");
        c.args(["-c", "0", "memcaslap"]);
        c
    } else {
        std::process::Command::new("memcaslap")
    };
    cmd.args(["-s", addr, "-T", "1", "-c", "32", "-F"])
        .arg(&cfg)
        .arg("-d")
        .arg(division.to_string())
        .arg(format!("-t{}s", secs.as_secs().max(1)));
    let cpu0 = children_cpu();
    let server0 = mcache_benches::server_cpu_time();
    let out = cmd.output();
    let cpu = children_cpu().saturating_sub(cpu0);
    let server_cpu = mcache_benches::server_cpu_since(server0);
    let _ = std::fs::remove_file(&cfg);
    let out = out.ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| -> Option<f64> {
        let line = text.lines().rev().find(|l| l.contains(name))?;
        let v = line.split(name).nth(1)?.split_whitespace().next()?;
        v.trim_end_matches('s').parse().ok()
    };
    // "cmd_get: 841920", "get_misses: 0", "Run time: 5.0s Ops: 935467 TPS: 186872 ..."
    let run_time = field("Run time:")?;
    let gets = field("cmd_get:")?;
    let misses = field("get_misses:")?;
    let sets = field("cmd_set:")?;
    let requests = gets / f64::from(division) + sets;
    Some(Caslap {
        hits_per_s: (gets - misses) / run_time,
        cpu_per_req_us: cpu.as_secs_f64() * 1e6 / requests.max(1.0),
        server_cpu_per_req_us: server_cpu.map(|d| d.as_secs_f64() * 1e6 / requests.max(1.0)),
    })
}

struct DriverArgs {
    secs: Duration,
    runs: usize,
    pin: bool,
    clients: Vec<&'static ClientInfo>,
    out_file: Option<String>,
}

fn driver(args: DriverArgs) -> Result<(), BoxError> {
    if args.pin {
        pin_self()?;
    }
    let server = mcache_testkit::Memcached::builder().threads(1).start()?;
    if args.pin {
        let st = std::process::Command::new("taskset")
            .args(["-a", "-p", "-c", "0", &server.pid().to_string()])
            .output()?;
        if !st.status.success() {
            return Err("taskset on memcached failed".into());
        }
    }
    mcache_benches::watch_server(server.pid());
    let addr = server.host_port_string();
    eprintln!(
        "memcached on {addr} (-t 1), {} s per scenario, {} run(s), {}",
        args.secs.as_secs(),
        args.runs,
        if args.pin {
            "pinned to CPU 0"
        } else {
            "unpinned"
        }
    );
    let mut results = report::Results::default();
    for run in 1..=args.runs {
        // Every other run in reverse order, so that a burst of load from elsewhere on the
        // machine does not hit the same clients in every run.
        let mut order: Vec<&ClientInfo> = args.clients.clone();
        if run % 2 == 0 {
            order.reverse();
        }
        for c in order {
            eprintln!("run {run}/{}: {}", args.runs, c.id);
            match run_worker(c.id, &addr, server.pid(), args.secs, args.pin) {
                Ok(r) => results.add(c.id, r),
                Err(e) => {
                    eprintln!("  {} failed: {e}", c.id);
                    results.fail(c.id, e.to_string());
                }
            }
        }
        eprintln!("run {run}/{}: memcaslap", args.runs);
        if let Some(m) = memcaslap(&addr, 1, args.secs, args.pin) {
            results.add_caslap(Scenario::Get32, m);
        }
        if let Some(m) = memcaslap(&addr, 100, args.secs, args.pin) {
            results.add_caslap(Scenario::Multi100, m);
        }
    }
    let md = report::markdown(&results, &args.clients, args.secs, args.runs, args.pin);
    println!("{md}");
    if let Some(f) = args.out_file {
        std::fs::write(f, md)?;
    }
    Ok(())
}

fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let mut secs = Duration::from_secs(3);
    let mut pin = false;
    let mut runs = 1;
    let mut out_file = None;
    let mut client = None;
    let mut server = None;
    let mut clients: Vec<&'static ClientInfo> = CLIENTS.iter().collect();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seconds" => secs = Duration::from_secs(args.next().ok_or("--seconds N")?.parse()?),
            "--runs" => runs = args.next().ok_or("--runs N")?.parse()?,
            "--pin" => pin = true,
            "--shape" => {
                let id = args.next().ok_or("--shape multi|current")?;
                let shape =
                    workload::Shape::from_id(&id).ok_or_else(|| format!("unknown shape {id}"))?;
                workload::set_shape(shape);
            }
            "--out" => out_file = Some(args.next().ok_or("--out FILE")?),
            "--client" => client = Some(args.next().ok_or("--client NAME")?),
            "--server" => server = Some(args.next().ok_or("--server HOST:PORT")?),
            "--server-pid" => {
                mcache_benches::watch_server(args.next().ok_or("--server-pid PID")?.parse()?)
            }
            "--only" => {
                let id = args.next().ok_or("--only SCENARIO")?;
                let s = Scenario::from_id(&id).ok_or_else(|| format!("unknown scenario {id}"))?;
                let _ = ONLY.set(s);
            }
            "--clients" => {
                let list = args.next().ok_or("--clients a,b,...")?;
                clients = list
                    .split(',')
                    .map(|n| {
                        CLIENTS
                            .iter()
                            .find(|c| c.id == n)
                            .ok_or_else(|| format!("unknown client {n}"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    match (client, server) {
        (Some(c), Some(s)) => worker(&c, &s, secs, pin),
        (Some(_), None) => Err("--client needs --server HOST:PORT".into()),
        (None, _) => driver(DriverArgs {
            secs,
            runs: runs.max(1),
            pin,
            clients,
            out_file,
        }),
    }
}
