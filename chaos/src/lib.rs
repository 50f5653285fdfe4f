//! mcache's soak/chaos run: the one client (`mcache_client::Client`) on both runtimes at once,
//! tokio (mcache-tokio's [`Tokio`]) and async-std (mcache-async-std's [`AsyncIo`]), each on
//! its own thread, many tasks issuing mixed commands against two real memcached processes,
//! while a harness thread kills (SIGKILL, then restart on the same port) and freezes
//! (SIGSTOP/SIGCONT) them and the tasks drop or time out random calls. Tasks are spawned,
//! sleep and give up on calls through the client's [`Runtime`], never through an executor's
//! own API.
//!
//! Every value a task writes names its key and a version (`<key>=<version>`), and each task owns
//! its keys, so the checker's model is exact:
//!
//! - a value for the wrong key, or of a version the task never wrote, is a **mismatch**;
//! - a value older than the task's last acknowledged write of that key is **stale**, unless the
//!   write was followed by a restart of the key's server (tracked as restart epochs) or the value
//!   is one whose write is in doubt (it failed, timed out or was dropped: it may still have been
//!   applied, late, on another connection);
//! - counters (`incr`) must only go up between restarts.
//!
//! A miss is always allowed (a killed server comes back empty). Every failure must be an outage
//! error (`Poisoned`, `Io`, `Timeout`, `Unavailable`) or a dropped call; anything else counts
//! as unexpected.
//! [`run`] returns a [`Report`]; [`Report::verdict`] fails on any mismatch, stale read,
//! unexpected error, or RSS growth past the bound.

#![forbid(unsafe_code)]

use mcache_async_std::AsyncIo;
use mcache_client::{
    Builder, Client, Error, Memcache, MetaGetFlags, MetaSetFlags, MetaStatus, Runtime, StoreStatus,
};
use mcache_testkit::faulty::rss_bytes;
use mcache_testkit::Memcached;
use mcache_tokio::Tokio;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// How long the load runs.
    pub duration: Duration,
    /// Tasks in all, split between the two runtimes.
    pub tasks: usize,
    /// Time between two faults (kill/restart or stop/continue, alternating between the servers).
    pub fault_every: Duration,
    /// How long a killed server stays down, and a stopped one frozen.
    pub fault_length: Duration,
    /// One call in this many is dropped after a random 0–2 ms (a cancelled future).
    pub drop_one_in: u32,
    /// Most the RSS may grow between warm-up and the end.
    pub rss_bound: u64,
    /// Print progress every this long (`None`: silent).
    pub progress: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            duration: Duration::from_secs(60),
            tasks: 16,
            fault_every: Duration::from_secs(3),
            fault_length: Duration::from_millis(500),
            drop_one_in: 50,
            rss_bound: 64 * 1024 * 1024,
            progress: None,
        }
    }
}

/// The counts of a run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// How long the load ran.
    pub elapsed: Duration,
    /// Calls made (each command of a task counts once; a `get_multi` counts once).
    pub operations: u64,
    /// Calls that succeeded.
    pub successes: u64,
    /// Hits checked (values compared against the model).
    pub values_checked: u64,
    /// Failures by kind (`poisoned:closed`, `timeout`, `io`, `dropped`, …).
    pub errors: BTreeMap<String, u64>,
    /// Values of another key, or of a version never written. Must be 0.
    pub mismatches: u64,
    /// Values older than an acknowledged write with no restart in between (and not in doubt).
    /// Must be 0.
    pub stale: u64,
    /// Older values after a restart of the key's server or of an in-doubt write (allowed).
    pub stale_allowed: u64,
    /// Counters that went down with no restart in between. Must be 0.
    pub counter_regressions: u64,
    /// Failures that are not outage errors. Must be 0.
    pub unexpected: u64,
    /// The first few problems, described.
    pub problems: Vec<String>,
    /// Faults injected: (kills, stops).
    pub kills: u64,
    /// SIGSTOP/SIGCONT cycles.
    pub stops: u64,
    /// Time from each restart or SIGCONT to the first success on that server.
    pub recoveries: Vec<Duration>,
    /// Faults after which no success was seen before the next fault or the end.
    pub unrecovered: u64,
    /// RSS after warm-up (bytes).
    pub rss_warm: Option<u64>,
    /// RSS at the end (bytes).
    pub rss_end: Option<u64>,
    /// The bound applied to the RSS growth.
    pub rss_bound: u64,
}

impl Report {
    /// `Ok` if the run kept every promise; else what broke.
    pub fn verdict(&self) -> Result<(), String> {
        let mut broken = Vec::new();
        if self.mismatches > 0 {
            broken.push(format!("{} mismatches", self.mismatches));
        }
        if self.stale > 0 {
            broken.push(format!("{} stale reads", self.stale));
        }
        if self.counter_regressions > 0 {
            broken.push(format!("{} counter regressions", self.counter_regressions));
        }
        if self.unexpected > 0 {
            broken.push(format!("{} unexpected errors", self.unexpected));
        }
        if let (Some(w), Some(e)) = (self.rss_warm, self.rss_end) {
            if e > w + self.rss_bound {
                broken.push(format!(
                    "RSS grew from {} to {} MiB",
                    w / (1 << 20),
                    e / (1 << 20)
                ));
            }
        }
        if self.operations == 0 || self.successes == 0 {
            broken.push("no successful operation".to_string());
        }
        if broken.is_empty() {
            Ok(())
        } else {
            Err(broken.join(", "))
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64();
        writeln!(f, "elapsed:             {secs:.1} s")?;
        writeln!(
            f,
            "operations:          {} ({:.0}/s)",
            self.operations,
            self.operations as f64 / secs.max(1e-9)
        )?;
        writeln!(f, "successes:           {}", self.successes)?;
        writeln!(f, "values checked:      {}", self.values_checked)?;
        let total: u64 = self.errors.values().sum();
        writeln!(f, "errors:              {total}")?;
        for (k, v) in &self.errors {
            writeln!(f, "  {k:<28} {v}")?;
        }
        writeln!(f, "mismatches:          {}", self.mismatches)?;
        writeln!(f, "stale reads:         {}", self.stale)?;
        writeln!(f, "stale (allowed):     {}", self.stale_allowed)?;
        writeln!(f, "counter regressions: {}", self.counter_regressions)?;
        writeln!(f, "unexpected errors:   {}", self.unexpected)?;
        writeln!(f, "kills (SIGKILL):     {}", self.kills)?;
        writeln!(f, "stops (SIGSTOP):     {}", self.stops)?;
        let mut r = self.recoveries.clone();
        r.sort();
        if r.is_empty() {
            writeln!(f, "recoveries:          0")?;
        } else {
            writeln!(
                f,
                "recoveries:          {} (median {:?}, max {:?})",
                r.len(),
                r[r.len() / 2],
                r[r.len() - 1]
            )?;
        }
        writeln!(f, "unrecovered faults:  {}", self.unrecovered)?;
        let mib = |b: Option<u64>| {
            b.map_or("n/a".to_string(), |b| {
                format!("{:.1} MiB", b as f64 / 1048576.0)
            })
        };
        writeln!(f, "RSS after warm-up:   {}", mib(self.rss_warm))?;
        writeln!(f, "RSS at the end:      {}", mib(self.rss_end))?;
        for p in &self.problems {
            writeln!(f, "problem: {p}")?;
        }
        Ok(())
    }
}

/// State shared by the tasks and the fault harness.
struct Shared {
    stop: AtomicBool,
    /// Per server: bumped when it is killed (its data is gone).
    epochs: [AtomicU64; 2],
    /// Per server: when the last restart/SIGCONT happened, waiting for a first success.
    pending: [Mutex<Option<Instant>>; 2],
    report: Mutex<Report>,
}

impl Shared {
    fn epoch(&self, server: usize) -> u64 {
        self.epochs[server].load(Ordering::SeqCst)
    }

    fn succeeded(&self, server: usize) {
        let mut p = self.pending[server]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(at) = p.take() {
            drop(p);
            self.lock().recoveries.push(at.elapsed());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Report> {
        self.report.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn problem(&self, r: &mut Report, what: String) {
        if r.problems.len() < 20 {
            r.problems.push(what);
        }
    }
}

/// A task's counts, merged into the report at the end.
#[derive(Default)]
struct Local {
    operations: u64,
    successes: u64,
    values_checked: u64,
    errors: BTreeMap<String, u64>,
    stale_allowed: u64,
}

/// What a task knows of one of its keys.
#[derive(Default)]
struct KeyModel {
    /// The last version whose write (or delete) was acknowledged, and the server's epoch then.
    acked: Option<(u64, u64)>,
    /// Versions whose write failed or was dropped: they may land at any time (the last 64).
    doubt: VecDeque<u64>,
    /// The highest version ever issued.
    issued: u64,
}

impl KeyModel {
    fn in_doubt(&mut self, v: u64) {
        if self.doubt.len() == 64 {
            self.doubt.pop_front();
        }
        self.doubt.push_back(v);
    }
}

fn error_kind(e: &Error) -> (String, bool) {
    match e {
        Error::Poisoned(r) => {
            let reason = format!("{r:?}");
            let name = reason.split('(').next().unwrap_or("").to_lowercase();
            (format!("poisoned:{name}"), true)
        }
        Error::Timeout => ("timeout".to_string(), true),
        Error::Io(_) => ("io".to_string(), true),
        Error::Unavailable(_) => ("unavailable".to_string(), true),
        Error::Encode(_) => ("encode".to_string(), false),
        Error::Protocol(_) => ("server ERROR".to_string(), false),
        Error::Client(_) => ("CLIENT_ERROR".to_string(), false),
        Error::Server(_) => ("SERVER_ERROR".to_string(), false),
        Error::UnexpectedResponse { .. } => ("unexpected response".to_string(), false),
        Error::Config(_) => ("config".to_string(), false),
        other => (format!("other: {other}"), false),
    }
}

/// Which server a key lives on (each client talks to one server: the model stays exact).
fn server_of(key: &str) -> usize {
    let h = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    (h % 2) as usize
}

fn parse_value(data: &[u8]) -> Option<(&str, u64)> {
    let s = std::str::from_utf8(data).ok()?;
    let (k, v) = s.split_once('=')?;
    Some((k, v.parse().ok()?))
}

const SLOTS: usize = 8;

/// Values read: (slot, value if hit).
type Reads = Vec<(usize, Option<Vec<u8>>)>;

/// What a call came to; `None` inside: dropped.
enum Outcome {
    /// A write: `Ok(true)` acknowledged, `Ok(false)` not applied, `Err` in doubt.
    Write(Option<Result<bool, Error>>),
    /// Values read for slots.
    Read(Option<Result<Reads, Error>>),
    /// An `incr` of the task's counter.
    Counter(Option<Result<Option<u64>, Error>>),
}

/// One task: `name` is unique; `clients[s]` talks to server `s`.
async fn task(
    name: String,
    clients: [Client; 2],
    shared: Arc<Shared>,
    drop_one_in: u32,
    seed: u64,
) {
    let runtime = clients[0].runtime().clone();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let keys: Vec<String> = (0..SLOTS).map(|s| format!("{name}:{s}")).collect();
    let servers: Vec<usize> = keys.iter().map(|k| server_of(k)).collect();
    let mut models: Vec<KeyModel> = (0..SLOTS).map(|_| KeyModel::default()).collect();
    let counter = format!("{name}:n");
    let counter_server = server_of(&counter);
    // The last counter value seen, with its server epoch.
    let mut counter_seen: Option<(u64, u64)> = None;
    let mut version = 0u64;
    let mut local = Local::default();

    while !shared.stop.load(Ordering::Relaxed) {
        let slot = rng.random_range(0..SLOTS);
        let key = keys[slot].clone();
        let key = key.as_str();
        let s = servers[slot];
        let c = &clients[s];
        let drop_after = (rng.random_range(0..drop_one_in.max(1)) == 0)
            .then(|| Duration::from_micros(rng.random_range(0..2000)));
        let op = rng.random_range(0..100u32);
        let epoch_before = shared.epoch(s);
        let counter_epoch_before = shared.epoch(counter_server);
        version += 1;
        let v = version;
        local.operations += 1;

        // Runs `f`, or gives up after `drop_after` (dropping the call mid-flight).
        macro_rules! call {
            ($f:expr) => {{
                match drop_after {
                    None => Some($f.await),
                    Some(d) => mcache_client::timeout(&*runtime, runtime.now() + d, $f).await,
                }
            }};
        }

        let outcome = match op {
            0..=29 => {
                models[slot].issued = v;
                let val = format!("{key}={v}");
                Outcome::Write(
                    call!(c.set(key.to_string(), val.clone(), 0)).map(|r| r.map(|()| true)),
                )
            }
            30..=34 => {
                models[slot].issued = v;
                let val = format!("{key}={v}");
                let flags = MetaSetFlags::default();
                Outcome::Write(
                    call!(c.meta_set(key.to_string(), val.clone(), flags))
                        .map(|r| r.map(|m| m.status == MetaStatus::Hd)),
                )
            }
            35..=39 => {
                // A delete acknowledges "version v": nothing older may be read after it.
                models[slot].issued = v;
                Outcome::Write(call!(c.delete(key.to_string())).map(|r| r.map(|_| true)))
            }
            40..=44 => {
                // gets + cas.
                match call!(c.gets(key.to_string())) {
                    Some(Ok(Some(got))) => {
                        let checked = vec![(slot, Some(got.data.to_vec()))];
                        check_reads(
                            &shared,
                            &mut local,
                            &keys,
                            &mut models,
                            &servers,
                            epoch_before,
                            &checked,
                        );
                        models[slot].issued = v;
                        let val = format!("{key}={v}");
                        let cas = got.cas.unwrap_or(0);
                        Outcome::Write(
                            call!(c.cas(key.to_string(), val, 0, cas))
                                .map(|r| r.map(|st| st == StoreStatus::Stored)),
                        )
                    }
                    Some(Ok(None)) => Outcome::Read(Some(Ok(vec![(slot, None)]))),
                    Some(Err(e)) => Outcome::Read(Some(Err(e))),
                    None => Outcome::Read(None),
                }
            }
            45..=54 => {
                let flags = MetaGetFlags {
                    value: true,
                    ..Default::default()
                };
                Outcome::Read(
                    call!(c.meta_get(key.to_string(), flags))
                        .map(|r| r.map(|m| vec![(slot, m.value.map(|v| v.to_vec()))])),
                )
            }
            55..=64 => {
                // get_multi of the task's keys on this server.
                let slots: Vec<usize> = (0..SLOTS).filter(|&i| servers[i] == s).collect();
                let ks: Vec<String> = slots.iter().map(|&i| keys[i].clone()).collect();
                Outcome::Read(call!(c.get_multi(ks.clone())).map(|r| {
                    r.map(|vals| {
                        slots
                            .iter()
                            .zip(vals)
                            .map(|(&i, v)| (i, v.map(|v| v.data.to_vec())))
                            .collect()
                    })
                }))
            }
            65..=72 => {
                let cs = counter_server;
                let r = call!(clients[cs].incr(counter.clone(), 1));
                if let Some(Ok(None)) = r {
                    // Gone (server restarted) or never made: start it again.
                    let _ = call!(clients[cs].add(counter.clone(), "0".to_string(), 0));
                }
                Outcome::Counter(r)
            }
            _ => Outcome::Read(
                call!(c.get(key.to_string()))
                    .map(|r| r.map(|v| vec![(slot, v.map(|v| v.data.to_vec()))])),
            ),
        };

        let server_for_outcome = if matches!(outcome, Outcome::Counter(_)) {
            counter_server
        } else {
            s
        };
        let result: Option<Result<(), Error>> = match outcome {
            Outcome::Write(None) => {
                models[slot].in_doubt(v);
                None
            }
            Outcome::Write(Some(Ok(applied))) => {
                if applied {
                    // Acknowledged in the epoch the call started in (a kill during the call
                    // bumps the epoch: the write may be gone).
                    models[slot].acked = Some((v, epoch_before));
                }
                Some(Ok(()))
            }
            Outcome::Write(Some(Err(e))) => {
                models[slot].in_doubt(v);
                Some(Err(e))
            }
            Outcome::Read(None) => None,
            Outcome::Read(Some(Ok(vals))) => {
                check_reads(
                    &shared,
                    &mut local,
                    &keys,
                    &mut models,
                    &servers,
                    epoch_before,
                    &vals,
                );
                Some(Ok(()))
            }
            Outcome::Read(Some(Err(e))) => Some(Err(e)),
            Outcome::Counter(None) => None,
            Outcome::Counter(Some(Ok(n))) => {
                // Epochs are sampled before the call: a reply from the old process that arrives
                // after the kill was counted still belongs to the epoch the call started in.
                let epoch = shared.epoch(counter_server);
                if let Some(n) = n {
                    if let Some((prev, e)) = counter_seen {
                        if e == counter_epoch_before && epoch == e && n <= prev {
                            let mut r = shared.lock();
                            r.counter_regressions += 1;
                            shared.problem(&mut r, format!("{counter}: {n} after {prev}"));
                        }
                    }
                    local.values_checked += 1;
                    counter_seen = Some((n, counter_epoch_before));
                }
                Some(Ok(()))
            }
            Outcome::Counter(Some(Err(e))) => Some(Err(e)),
        };
        match result {
            None => *local.errors.entry("dropped".to_string()).or_default() += 1,
            Some(Ok(())) => {
                local.successes += 1;
                shared.succeeded(server_for_outcome);
            }
            Some(Err(e)) => {
                let (kind, outage) = error_kind(&e);
                *local.errors.entry(kind).or_default() += 1;
                if !outage {
                    let mut r = shared.lock();
                    r.unexpected += 1;
                    shared.problem(&mut r, format!("{key}: unexpected error {e:?}"));
                }
            }
        }
    }
    let mut r = shared.lock();
    r.operations += local.operations;
    r.successes += local.successes;
    r.values_checked += local.values_checked;
    r.stale_allowed += local.stale_allowed;
    for (k, v) in local.errors {
        *r.errors.entry(k).or_default() += v;
    }
}

/// Checks values read for the task's slots against the model.
fn check_reads(
    shared: &Shared,
    local: &mut Local,
    keys: &[String],
    models: &mut [KeyModel],
    servers: &[usize],
    epoch_before: u64,
    vals: &[(usize, Option<Vec<u8>>)],
) {
    for (slot, data) in vals {
        let Some(data) = data else { continue };
        let key = &keys[*slot];
        let m = &models[*slot];
        local.values_checked += 1;
        match parse_value(data) {
            Some((k, v)) if k == key && v <= m.issued && v > 0 => {
                if let Some((acked, epoch)) = m.acked {
                    if v < acked {
                        let now = shared.epoch(servers[*slot]);
                        if epoch != now || epoch != epoch_before || m.doubt.contains(&v) {
                            local.stale_allowed += 1;
                        } else {
                            let mut r = shared.lock();
                            r.stale += 1;
                            shared.problem(
                                &mut r,
                                format!("{key}: version {v} read after {acked} was acknowledged"),
                            );
                        }
                    }
                }
            }
            _ => {
                let mut r = shared.lock();
                r.mismatches += 1;
                shared.problem(
                    &mut r,
                    format!(
                        "{key}: read {:?} (issued up to {})",
                        String::from_utf8_lossy(&data[..data.len().min(80)]),
                        m.issued
                    ),
                );
            }
        }
    }
}

/// Client settings for the run: 2 connections, 1 s request and read timeouts, quick
/// reconnects.
const CONNECTIONS: usize = 2;
const TIMEOUT: Duration = Duration::from_secs(1);
const BACKOFF: (Duration, Duration) = (Duration::from_millis(10), Duration::from_millis(200));

/// A client of one server, on `runtime`.
async fn client(runtime: Arc<dyn Runtime>, addr: &str) -> Result<Client, String> {
    Builder::new(runtime)
        .server(addr)
        .connections(CONNECTIONS)
        .request_timeout(Some(TIMEOUT))
        .read_timeout(Some(TIMEOUT))
        .connect_timeout(Duration::from_millis(500))
        .backoff(BACKOFF.0, BACKOFF.1)
        .build()
        .await
        .map_err(|e| format!("client of {addr}: {e}"))
}

/// One runtime's share of the load: its clients, and `tasks` tasks spawned on it (named
/// `<name>:<n>`, seeded from `seed`), until the harness says stop.
async fn side(
    runtime: Arc<dyn Runtime>,
    name: &'static str,
    tasks: usize,
    seed: u64,
    addrs: [String; 2],
    shared: Arc<Shared>,
    drop_one_in: u32,
) -> Result<(), String> {
    let clients = [
        client(runtime.clone(), &addrs[0]).await?,
        client(runtime.clone(), &addrs[1]).await?,
    ];
    let done: Vec<_> = (0..tasks)
        .map(|t| {
            let (tx, rx) = futures_channel::oneshot::channel::<()>();
            let work = task(
                format!("{name}:{t}"),
                clients.clone(),
                shared.clone(),
                drop_one_in,
                seed + t as u64,
            );
            runtime.spawn(Box::pin(async move {
                work.await;
                let _ = tx.send(());
            }));
            rx
        })
        .collect();
    for (t, rx) in done.into_iter().enumerate() {
        // The sender is dropped without a send only if the task panicked.
        rx.await.map_err(|_| format!("task {name}:{t} panicked"))?;
    }
    Ok(())
}

/// Runs the chaos load with `config`; returns its counts (see [`Report::verdict`]).
pub fn run(config: &Config) -> Result<Report, String> {
    let servers = [
        Memcached::builder()
            .memory_mb(64)
            .start()
            .map_err(|e| format!("memcached: {e}"))?,
        Memcached::builder()
            .memory_mb(64)
            .start()
            .map_err(|e| format!("memcached: {e}"))?,
    ];
    let addrs = [servers[0].host_port_string(), servers[1].host_port_string()];
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        epochs: [AtomicU64::new(0), AtomicU64::new(0)],
        pending: [Mutex::new(None), Mutex::new(None)],
        report: Mutex::new(Report {
            rss_bound: config.rss_bound,
            ..Report::default()
        }),
    });
    let tokio_tasks = config.tasks.div_ceil(2);
    let async_std_tasks = config.tasks - tokio_tasks;
    let drop_one_in = config.drop_one_in;

    // The tokio side: its own runtime on its own thread.
    let tokio_thread = {
        let (shared, addrs) = (shared.clone(), addrs.clone());
        std::thread::Builder::new()
            .name("chaos-tokio".into())
            .spawn(move || -> Result<(), String> {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?;
                rt.block_on(async move {
                    // Made inside the runtime: its tasks go to this runtime's workers.
                    let runtime = Tokio::runtime();
                    side(runtime, "tokio", tokio_tasks, 0, addrs, shared, drop_one_in).await
                })
            })
            .map_err(|e| e.to_string())?
    };
    // The async-std side.
    let async_std_thread = {
        let (shared, addrs) = (shared.clone(), addrs.clone());
        std::thread::Builder::new()
            .name("chaos-async-std".into())
            .spawn(move || -> Result<(), String> {
                async_std::task::block_on(side(
                    AsyncIo::async_std(),
                    "async-std",
                    async_std_tasks,
                    1000,
                    addrs,
                    shared,
                    drop_one_in,
                ))
            })
            .map_err(|e| e.to_string())?
    };

    // The fault harness, on this thread.
    let started = Instant::now();
    let deadline = started + config.duration;
    let warm_at = started + (config.duration / 5).min(Duration::from_secs(10));
    let mut rss_warm = None;
    let mut next_fault = started + config.fault_every;
    let mut next_progress = config.progress.map(|p| started + p);
    let mut round = 0u64;
    let mut harness_error = None;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        let now = Instant::now();
        if rss_warm.is_none() && now >= warm_at {
            rss_warm = rss_bytes();
        }
        if let (Some(at), Some(every)) = (next_progress, config.progress) {
            if now >= at {
                eprintln!(
                    "[{:>5.0} s] faults: {round}, RSS {:.1} MiB",
                    started.elapsed().as_secs_f64(),
                    rss_bytes().unwrap_or(0) as f64 / 1048576.0
                );
                next_progress = Some(at + every);
            }
        }
        if now >= next_fault && now + config.fault_length < deadline {
            // Alternate kill and stop, and the servers: kill 0, stop 1, kill 1, stop 0, …
            let kill = round.is_multiple_of(2);
            let which = ((round + round / 2) % 2) as usize;
            let server = &servers[which];
            let outcome = if kill {
                // SIGKILL, down for a while, restart on the same port (empty).
                shared.epochs[which].fetch_add(1, Ordering::SeqCst);
                server
                    .kill()
                    .map_err(|e| format!("kill: {e}"))
                    .and_then(|()| {
                        std::thread::sleep(config.fault_length);
                        restart(server)
                    })
            } else {
                server
                    .stop()
                    .map_err(|e| format!("stop: {e}"))
                    .and_then(|()| {
                        std::thread::sleep(config.fault_length);
                        server.cont().map_err(|e| format!("cont: {e}"))
                    })
            };
            if let Err(e) = outcome {
                harness_error = Some(e);
                break;
            }
            {
                let mut p = shared.pending[which]
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                if p.is_some() {
                    shared.lock().unrecovered += 1;
                }
                *p = Some(Instant::now());
            }
            let mut r = shared.lock();
            if kill {
                r.kills += 1;
            } else {
                r.stops += 1;
            }
            drop(r);
            round += 1;
            next_fault = Instant::now() + config.fault_every;
        }
    }
    shared.stop.store(true, Ordering::SeqCst);
    let elapsed = started.elapsed();
    let joined = [
        tokio_thread
            .join()
            .map_err(|_| "the tokio thread panicked".to_string()),
        async_std_thread
            .join()
            .map_err(|_| "the async-std thread panicked".to_string()),
    ];
    for j in joined {
        j??;
    }
    if let Some(e) = harness_error {
        return Err(e);
    }
    let rss_end = rss_bytes();
    let mut report = shared.lock().clone();
    report.elapsed = elapsed;
    report.rss_warm = rss_warm;
    report.rss_end = rss_end;
    // A recovery still pending at the end, if the run ended long after the fault.
    for p in &shared.pending {
        if let Some(at) = *p.lock().unwrap_or_else(PoisonError::into_inner) {
            if at.elapsed() > Duration::from_secs(5) {
                report.unrecovered += 1;
            }
        }
    }
    Ok(report)
}

/// Restarts a killed server on its port, retrying while the port is not free yet.
fn restart(server: &Memcached) -> Result<(), String> {
    let mut last = String::new();
    for _ in 0..50 {
        match server.restart() {
            Ok(()) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("restart: {last}"))
}
