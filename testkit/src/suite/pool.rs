//! Server pools: placement checked against each real server and the libmemcached vectors,
//! multi-key gets split and merged, keyless commands, and a server killed under load with
//! each failover policy.

use super::{client, guard, is_outage, sleep, spawn_catch, stat, ClientOptions, Harness};
use crate::Memcached;
use mcache_client::{Client, Memcache};
use mcache_proto::{
    EncodeError, Error, Failover, HashMode, HealthPolicy, KeyHash, Ring, ServerSpec,
};
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Pool settings for [`ClientOptions::pool`].
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// In order: `(address to connect to, name the placement uses)`, given to the builder
    /// as `server_as(address, name)`.
    pub servers: Vec<(String, ServerSpec)>,
    /// `Builder::hash_mode`.
    pub hash_mode: HashMode,
    /// `Builder::health`.
    pub health: HealthPolicy,
}

impl PoolOptions {
    /// Servers started by the testkit, named by their real `127.0.0.1:port`, weighted
    /// ketama, default health.
    pub fn for_servers(servers: &[&Memcached]) -> Self {
        PoolOptions {
            servers: servers
                .iter()
                .map(|m| {
                    let addr = m.host_port_string();
                    let spec = ServerSpec::parse(&addr).expect("host:port");
                    (addr, spec)
                })
                .collect(),
            hash_mode: HashMode::default(),
            health: HealthPolicy::default(),
        }
    }

    /// The ring the client must place keys with.
    pub fn ring(&self) -> Ring {
        Ring::new(self.servers.iter().map(|(_, s)| s.clone()), self.hash_mode)
            .expect("a valid pool")
    }
}

/// Whether the pool may use `server` now.
fn is_available(c: &Client, server: usize) -> bool {
    c.pool().is_available(server, c.runtime().now())
}

fn start_servers(n: usize) -> Vec<Memcached> {
    (0..n)
        .map(|_| Memcached::start().unwrap_or_else(|e| panic!("could not start memcached: {e}")))
        .collect()
}

fn pool_options(mcs: &[Memcached], pool: PoolOptions) -> ClientOptions {
    ClientOptions {
        pool: Some(pool),
        ..ClientOptions::new(mcs[0].host_port_string())
    }
}

/// One plain single-server client per server: the pool's placement is checked through
/// these, never through the pool itself.
async fn direct_clients<H: Harness>(mcs: &[Memcached]) -> Vec<Client> {
    let mut out = Vec::new();
    for mc in mcs {
        out.push(client::<H>(ClientOptions::for_server(mc)).await);
    }
    out
}

/// Which of `keys` each server holds (`held[server][i]`), asked 100 keys at a time.
async fn holdings<C: Memcache>(direct: &[C], keys: &[String]) -> Vec<Vec<bool>> {
    let mut held = Vec::new();
    for c in direct {
        let mut mine = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(100) {
            let got = c.get_multi(chunk.iter()).await.expect("direct get_multi");
            mine.extend(got.iter().map(Option::is_some));
        }
        held.push(mine);
    }
    held
}

/// The servers holding key `i`.
fn holders(held: &[Vec<bool>], i: usize) -> Vec<usize> {
    (0..held.len()).filter(|&s| held[s][i]).collect()
}

/// Sets every key (value = the key) through `c`, from 8 tasks.
async fn set_all<H: Harness>(c: &Client, keys: &[String]) {
    let mut tasks = Vec::new();
    for part in keys.chunks(keys.len().div_ceil(8).max(1)) {
        let c = c.clone();
        let part = part.to_vec();
        tasks.push(spawn_catch::<H, _>(async move {
            for k in part {
                c.set(k.as_str(), k.clone(), 0)
                    .await
                    .unwrap_or_else(|e| panic!("set {k}: {e}"));
            }
        }));
    }
    for t in tasks {
        guard::<H, _>("set task", Duration::from_secs(60), t)
            .await
            .unwrap_or_else(|p| panic!("set task panicked: {p}"));
    }
}

/// Section 2 of the ketama vector file (`proto/tests/data/ketama_vectors.txt`, whose
/// `ring_vectors` test checks that this copy is the same), compiled in so the suite needs no
/// file at run time.
const VECTORS_SECTION2: &str = include_str!("../../data/ketama_vectors_section2.txt");

/// `\\` and `\xHH` escapes of the vector file's key column.
fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match (b[i], b.get(i + 1)) {
            (b'\\', Some(b'x')) => {
                let hex = std::str::from_utf8(&b[i + 2..i + 4]).expect("hex");
                out.push(u8::from_str_radix(hex, 16).expect("hex"));
                i += 4;
            }
            (b'\\', Some(&c)) => {
                out.push(c);
                i += 2;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// A configuration of section 2 of the vector file (placements computed by libmemcached
/// 1.1.4 itself): its mode, servers (name, weight) and `(key, server index)` rows.
struct VectorConfig {
    mode: HashMode,
    servers: Vec<ServerSpec>,
    rows: Vec<(Vec<u8>, usize)>,
    header: String,
}

fn libmemcached_configs() -> Vec<VectorConfig> {
    let text = VECTORS_SECTION2;
    let start = text.find("\n## 2.").expect("section 2 of the vector file");
    let end = text[start + 1..]
        .find("\n## ")
        .map_or(text.len(), |e| start + 1 + e);
    let mut configs: Vec<VectorConfig> = Vec::new();
    for line in text[start..end].lines() {
        if let Some(header) = line.strip_prefix("# mode=") {
            let mode = match header.split_whitespace().next() {
                Some("ketama_weighted") => HashMode::KetamaWeighted,
                Some("spy") => HashMode::KetamaSpy,
                Some("ketama") => HashMode::Ketama(KeyHash::OneAtATime),
                Some("ketama_md5keyhash") => HashMode::Ketama(KeyHash::Md5),
                Some("modula") => HashMode::Modula(KeyHash::OneAtATime),
                Some("modula_md5") => HashMode::Modula(KeyHash::Md5),
                Some("modula_crc") => HashMode::Modula(KeyHash::Crc),
                other => panic!("unknown mode {other:?} in {line}"),
            };
            let list = header
                .split("servers=")
                .nth(1)
                .expect("servers= in the header");
            let servers = list
                .split(',')
                .map(|s| {
                    let (addr, w) = s.split_once('*').expect("addr*weight");
                    ServerSpec::parse(addr)
                        .expect("host:port")
                        .with_weight(w.parse().expect("weight"))
                })
                .collect();
            configs.push(VectorConfig {
                mode,
                servers,
                rows: Vec::new(),
                header: line.to_string(),
            });
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            let cols: Vec<&str> = line.split('\t').collect();
            let idx = cols
                .iter()
                .find_map(|c| c.strip_prefix("idx="))
                .expect("idx column")
                .parse()
                .expect("idx");
            if let Some(config) = configs.last_mut() {
                config.rows.push((unescape(cols[1]), idx));
            }
        }
    }
    assert!(configs.len() >= 8, "section 2 has every mode");
    configs
}

/// Three memcached: 10,000 keys set through the pool are each found on exactly one server,
/// the one `Ring::server_for` names. Then, for every configuration of the vector file's
/// section 2 (libmemcached 1.1.4's own placements; every mode, weights, names with and
/// without port 11211), the real servers are named as the vectors name them
/// (`Builder::server_as`) and each vector key is found on the server libmemcached chose.
pub async fn pool_placement_matches_ring_and_libmemcached<H: Harness>() {
    let mcs = start_servers(4);
    let direct = direct_clients::<H>(&mcs).await;

    let three = PoolOptions::for_servers(&[&mcs[0], &mcs[1], &mcs[2]]);
    let ring = three.ring();
    let c = client::<H>(pool_options(&mcs, three)).await;
    let keys: Vec<String> = (0..10_000).map(|i| format!("placement:{i}")).collect();
    set_all::<H>(&c, &keys).await;
    let held = holdings(&direct, &keys).await;
    let mut per_server = [0usize; 4];
    for (i, k) in keys.iter().enumerate() {
        let expect = ring.server_for(k.as_bytes());
        assert_eq!(
            holders(&held, i),
            [expect],
            "{k}: held by the wrong servers (ring says {expect})"
        );
        per_server[expect] += 1;
    }
    for (s, n) in per_server[..3].iter().enumerate() {
        assert!(
            *n > 1_000,
            "server {s} got {n} of 10,000 keys: {per_server:?}"
        );
    }
    assert_eq!(per_server[3], 0);

    let configs = libmemcached_configs();
    let mut checked = 0;
    for config in configs {
        for d in &direct {
            d.flush_all(None).await.expect("direct flush_all");
        }
        let n = config.servers.len();
        let options = PoolOptions {
            servers: mcs[..n]
                .iter()
                .zip(&config.servers)
                .map(|(m, spec)| (m.host_port_string(), spec.clone()))
                .collect(),
            hash_mode: config.mode,
            health: HealthPolicy::default(),
        };
        let c = client::<H>(pool_options(&mcs, options)).await;
        let rows: Vec<(String, usize)> = config
            .rows
            .iter()
            .filter_map(|(k, idx)| {
                let k = String::from_utf8(k.clone()).ok()?;
                // Keys a text command cannot carry (a space) are the ring tests' business.
                mcache_proto::Key::new(&k).ok()?;
                Some((k, *idx))
            })
            .collect();
        assert!(!rows.is_empty(), "{}: no usable rows", config.header);
        let keys: Vec<String> = rows.iter().map(|(k, _)| k.clone()).collect();
        set_all::<H>(&c, &keys).await;
        let held = holdings(&direct[..n], &keys).await;
        for (i, (k, idx)) in rows.iter().enumerate() {
            assert_eq!(
                holders(&held, i),
                [*idx],
                "{}: key {k:?} must be on server {idx}",
                config.header
            );
            checked += 1;
        }
    }
    assert!(checked >= 90, "only {checked} vector placements checked");
}

/// get_multi/gets_multi over three servers: one request split per server, merged in the
/// caller's order with misses and duplicates in place; the values really come from three
/// servers. `get_multi_each` gives the same per key.
pub async fn pool_get_multi_merges_in_caller_order<H: Harness>() {
    let mcs = start_servers(3);
    let options = PoolOptions::for_servers(&[&mcs[0], &mcs[1], &mcs[2]]);
    let ring = options.ring();
    let c = client::<H>(pool_options(&mcs, options)).await;
    let direct = direct_clients::<H>(&mcs).await;

    let on = |server: usize, prefix: &str, skip: usize| -> String {
        (0..)
            .map(|i| format!("{prefix}:{i}"))
            .filter(|k| ring.server_for(k.as_bytes()) == server)
            .nth(skip)
            .expect("a key")
    };
    let (a0, a1, b0, c0, c1) = (
        on(0, "g", 0),
        on(0, "g", 1),
        on(1, "g", 0),
        on(2, "g", 0),
        on(2, "g", 1),
    );
    let (m1, m2) = (on(1, "miss", 0), on(2, "miss", 0));
    for k in [&a0, &a1, &b0, &c0, &c1] {
        c.set(k.as_str(), format!("v-{k}"), 0).await.unwrap();
    }
    // Each value sits on its own server.
    for (k, s) in [(&a0, 0), (&b0, 1), (&c0, 2)] {
        assert!(
            direct[s].get(k.as_str()).await.unwrap().is_some(),
            "{k} on {s}"
        );
    }

    let asked = [&c0, &m1, &a0, &b0, &c0, &a1, &m2, &c1, &a0];
    let got = c.get_multi(asked).await.unwrap();
    assert_eq!(got.len(), asked.len());
    for (k, v) in asked.iter().zip(&got) {
        let expect = (!k.starts_with("miss")).then(|| format!("v-{k}"));
        assert_eq!(
            v.as_ref()
                .map(|v| String::from_utf8_lossy(&v.data).into_owned()),
            expect,
            "{k}"
        );
        if let Some(v) = v {
            assert_eq!(v.key.wire(), k.as_bytes());
        }
    }

    // gets_multi: the cas of each value is its own server's.
    let got = c.gets_multi([&b0, &m1, &c1, &a0]).await.unwrap();
    for (k, v, s) in [(&b0, &got[0], 1), (&c1, &got[2], 2), (&a0, &got[3], 0)] {
        let own = direct[s]
            .gets(k.as_str())
            .await
            .unwrap()
            .and_then(|v| v.cas);
        assert_eq!(v.as_ref().and_then(|v| v.cas), own, "{k}");
        assert!(own.is_some());
    }
    assert_eq!(got[1], None);

    // Many keys over every server, every other one present.
    let keys: Vec<String> = (0..300).map(|i| format!("many:{i}")).collect();
    for k in keys.iter().step_by(2) {
        c.set(k.as_str(), k.clone(), 0).await.unwrap();
    }
    let got = c.get_multi(keys.iter()).await.unwrap();
    let each = c.get_multi_each(keys.iter()).await.unwrap();
    for (i, k) in keys.iter().enumerate() {
        let expect = (i % 2 == 0).then(|| k.clone().into_bytes());
        assert_eq!(got[i].as_ref().map(|v| v.data.to_vec()), expect, "{k}");
        let e = each[i].as_ref().unwrap_or_else(|e| panic!("{k}: {e}"));
        assert_eq!(e.as_ref().map(|v| v.data.to_vec()), expect, "{k} (each)");
    }
    assert!(
        (0..3).all(|s| keys.iter().any(|k| ring.server_for(k.as_bytes()) == s)),
        "300 keys span every server"
    );
    assert_eq!(c.get_multi(Vec::<&str>::new()).await.unwrap(), vec![]);
    // An invalid key fails the whole request before anything is sent.
    assert!(matches!(
        c.get_multi(["ok", "not ok"]).await,
        Err(Error::Encode(EncodeError::Key(_)))
    ));
}

/// Keyless commands through `execute` go to every server (`flush_all` empties all three;
/// `stats` and `version` answer with server 0's reply); the per-server methods answer per
/// server, in order; a dead server makes `execute` fail and shows in its own entry only.
pub async fn pool_keyless_commands<H: Harness>() {
    let mcs = start_servers(3);
    let options = PoolOptions::for_servers(&[&mcs[0], &mcs[1], &mcs[2]]);
    let c = client::<H>(pool_options(&mcs, options)).await;
    let direct = direct_clients::<H>(&mcs).await;
    let keys: Vec<String> = (0..60).map(|i| format!("kl:{i}")).collect();

    assert!(c.version().await.unwrap().starts_with("1."));
    let stats = c.stats(None).await.unwrap();
    assert_eq!(
        stat(&stats, "pid"),
        u64::from(mcs[0].pid()),
        "server 0's stats"
    );
    c.verbosity(0).await.unwrap();
    c.meta_noop().await.unwrap();

    let versions = c.version_all().await;
    let stats = c.stats_all(None).await;
    for (i, mc) in mcs.iter().enumerate() {
        assert_eq!(versions[i].0.to_string(), mc.host_port_string());
        assert!(versions[i].1.as_ref().unwrap().starts_with("1."));
        assert_eq!(stats[i].0.to_string(), mc.host_port_string());
        assert_eq!(
            stat(stats[i].1.as_ref().unwrap(), "pid"),
            u64::from(mc.pid())
        );
    }

    // flush_all through execute: every server.
    set_all::<H>(&c, &keys).await;
    let held = holdings(&direct, &keys).await;
    assert!(
        held.iter().all(|h| h.iter().any(|&x| x)),
        "keys on every server"
    );
    c.flush_all(None).await.unwrap();
    let held = holdings(&direct, &keys).await;
    assert!(held.iter().flatten().all(|&x| !x), "flush_all left keys");
    // Per server.
    set_all::<H>(&c, &keys).await;
    let flushed = c.flush_all_servers(None).await;
    assert_eq!(flushed.len(), 3);
    assert!(flushed.iter().all(|(_, r)| r.is_ok()), "{flushed:?}");
    let held = holdings(&direct, &keys).await;
    assert!(
        held.iter().flatten().all(|&x| !x),
        "flush_all_servers left keys"
    );
    // One server alone.
    c.set("one", "1", 0).await.unwrap();
    let home = PoolOptions::for_servers(&[&mcs[0], &mcs[1], &mcs[2]])
        .ring()
        .server_for(b"one");
    let handle = c.server(home).expect("a server of the pool");
    assert_eq!(
        handle.get("one").await.unwrap().map(|v| v.data),
        Some("1".into())
    );
    let other = c.server((home + 1) % 3).expect("a server of the pool");
    assert_eq!(other.get("one").await.unwrap(), None);

    // Server 2 dead: execute fails (first error), the per-server entries say which.
    mcs[2].kill().unwrap();
    let e = c.version().await.expect_err("a server is dead");
    assert!(is_outage(&e), "{e:?}");
    let versions = c.version_all().await;
    assert!(
        versions[0].1.is_ok() && versions[1].1.is_ok(),
        "{versions:?}"
    );
    assert!(versions[2].1.as_ref().is_err_and(is_outage), "{versions:?}");
}

/// Counters of a load run.
#[derive(Default)]
struct Load {
    /// Phase: 0 before the kill, 1 after it, 2 after the restart.
    phase: AtomicUsize,
    stop: AtomicUsize,
    /// Successful calls on live servers' keys after the kill.
    live_ok_while_down: AtomicU64,
    /// Failed calls on the dead server's keys.
    dead_errors: AtomicU64,
    /// Successful calls on the dead server's keys while it was down.
    dead_ok_while_down: AtomicU64,
    ops: AtomicU64,
}

/// 6 tasks doing set/get on keys of every server until told to stop. A live server's key
/// must never fail. A dead server's key may fail with an outage error, except (with
/// `moved_when_out`) when the pool had it out at the call's start: then it must succeed.
fn run_load<H: Harness>(
    c: &Client,
    keys: Arc<Vec<(String, usize)>>,
    dead: usize,
    moved_when_out: bool,
    load: Arc<Load>,
) -> Vec<impl Future<Output = Result<(), String>> + Send + 'static> {
    let mut tasks = Vec::new();
    for t in 0..6usize {
        let c = c.clone();
        let keys = keys.clone();
        let load = load.clone();
        tasks.push(spawn_catch::<H, _>(async move {
            let mut i = t;
            while load.stop.load(Ordering::Acquire) == 0 {
                let (k, home) = &keys[i % keys.len()];
                i += 7;
                let phase = load.phase.load(Ordering::Acquire);
                let out_at_start = !is_available(&c, dead);
                let r = if i % 2 == 0 {
                    c.set(k.as_str(), format!("{k}|{i}"), 0).await
                } else {
                    match c.get(k.as_str()).await {
                        Ok(Some(v)) => {
                            assert!(
                                v.data.starts_with(format!("{k}|").as_bytes()),
                                "{k}: value of another key {:?}",
                                v.data
                            );
                            Ok(())
                        }
                        Ok(None) => Ok(()),
                        Err(e) => Err(e),
                    }
                };
                load.ops.fetch_add(1, Ordering::Relaxed);
                match (r, *home == dead) {
                    (Ok(()), false) => {
                        if phase == 1 {
                            load.live_ok_while_down.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    (Err(e), false) => panic!("{k} (live server {home}) failed: {e:?}"),
                    (Ok(()), true) => {
                        if phase == 1 {
                            load.dead_ok_while_down.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    (Err(e), true) => {
                        assert!(is_outage(&e), "{k} (dead server): {e:?}");
                        assert!(
                            !(moved_when_out && out_at_start),
                            "{k}: the server was out when the call started, so the key \
                             must have moved, yet: {e:?}"
                        );
                        load.dead_errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    tasks
}

/// Waits (polling, up to about 30 s) until `cond` holds.
async fn wait_for<H: Harness>(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..600 {
        if cond() {
            return;
        }
        sleep::<H>(Duration::from_millis(50)).await;
    }
    panic!("{what}: not reached after 30 s");
}

async fn kill_under_load<H: Harness>(failover: Failover) {
    let mcs = start_servers(3);
    let mut options = PoolOptions::for_servers(&[&mcs[0], &mcs[1], &mcs[2]]);
    options.health = HealthPolicy {
        failure_limit: 2,
        retry_after: Duration::from_secs(2),
        failover,
    };
    let ring = options.ring();
    let c = client::<H>(ClientOptions {
        backoff: (Duration::from_millis(20), Duration::from_millis(200)),
        ..pool_options(&mcs, options)
    })
    .await;
    let direct = direct_clients::<H>(&mcs).await;
    let dead = 1;
    let keys: Arc<Vec<(String, usize)>> = Arc::new(
        (0..120)
            .map(|i| {
                let k = format!("load:{i}");
                let home = ring.server_for(k.as_bytes());
                (k, home)
            })
            .collect(),
    );
    assert!((0..3).all(|s| keys.iter().any(|(_, h)| *h == s)));
    let load = Arc::new(Load::default());
    let tasks = run_load::<H>(
        &c,
        keys.clone(),
        dead,
        failover == Failover::Rehash,
        load.clone(),
    );

    guard::<H, _>("load before the kill", Duration::from_secs(20), async {
        while load.ops.load(Ordering::Relaxed) < 300 {
            sleep::<H>(Duration::from_millis(5)).await;
        }
    })
    .await;
    mcs[dead].kill().unwrap();
    load.phase.store(1, Ordering::Release);

    // Ejected after its failures; the others keep working meanwhile.
    wait_for::<H>("dead server ejected", || !is_available(&c, dead)).await;
    let (dead_key, _) = keys.iter().find(|(_, h)| *h == dead).unwrap();
    match failover {
        Failover::FailFast => {
            // Out: its keys fail without being sent.
            if !is_available(&c, dead) {
                match c.get(dead_key.as_str()).await {
                    Err(Error::Unavailable(m)) => assert!(m.contains("down"), "{m}"),
                    other => panic!("key of an ejected server: {other:?}"),
                }
            }
        }
        Failover::Rehash => {
            // Its keys now live on a live server.
            if !is_available(&c, dead) {
                c.set(dead_key.as_str(), format!("{dead_key}|moved"), 0)
                    .await
                    .expect("a moved key is stored on a live server");
                let mut holders = Vec::new();
                for s in [0, 2] {
                    if direct[s].get(dead_key.as_str()).await.unwrap().is_some() {
                        holders.push(s);
                    }
                }
                assert_eq!(holders.len(), 1, "{dead_key} must be on one live server");
            }
        }
        other => panic!("no check written for failover {other:?}"),
    }
    let before = load.live_ok_while_down.load(Ordering::Relaxed);
    guard::<H, _>(
        "live traffic while a server is down",
        Duration::from_secs(20),
        async {
            while load.live_ok_while_down.load(Ordering::Relaxed) < before + 200 {
                sleep::<H>(Duration::from_millis(5)).await;
            }
        },
    )
    .await;
    if failover == Failover::Rehash {
        guard::<H, _>("moved keys served", Duration::from_secs(20), async {
            while load.dead_ok_while_down.load(Ordering::Relaxed) < 50 {
                sleep::<H>(Duration::from_millis(5)).await;
            }
        })
        .await;
    }

    // Back: re-admitted after its retry delay, when it answers; its keys go home again.
    mcs[dead].restart().unwrap();
    wait_for::<H>("dead server re-admitted", || is_available(&c, dead)).await;
    guard::<H, _>(
        "dead server's keys served again",
        Duration::from_secs(30),
        async {
            loop {
                match c
                    .set(dead_key.as_str(), format!("{dead_key}|home"), 0)
                    .await
                {
                    Ok(()) if is_available(&c, dead) => {
                        if direct[dead]
                            .get(dead_key.as_str())
                            .await
                            .ok()
                            .flatten()
                            .is_some()
                        {
                            break;
                        }
                    }
                    Ok(()) => {}
                    Err(e) => assert!(is_outage(&e), "{e:?}"),
                }
                sleep::<H>(Duration::from_millis(50)).await;
            }
        },
    )
    .await;
    load.phase.store(2, Ordering::Release);
    let ops = load.ops.load(Ordering::Relaxed);
    guard::<H, _>("load after the restart", Duration::from_secs(20), async {
        while load.ops.load(Ordering::Relaxed) < ops + 300 {
            sleep::<H>(Duration::from_millis(5)).await;
        }
    })
    .await;
    load.stop.store(1, Ordering::Release);
    for t in tasks {
        guard::<H, _>("load task", Duration::from_secs(30), t)
            .await
            .unwrap_or_else(|p| panic!("load task failed: {p}"));
    }
    if failover == Failover::FailFast {
        assert!(
            load.dead_errors.load(Ordering::Relaxed) > 0,
            "the dead server's keys never failed"
        );
    }
}

/// FailFast: one of three servers killed under load (6 tasks of set/get): its keys fail
/// (without being sent once it is out), every other key keeps working with zero errors;
/// restarted, it is re-admitted after the retry delay and serves its keys again.
pub async fn pool_kill_fail_fast<H: Harness>() {
    kill_under_load::<H>(Failover::FailFast).await;
}

/// Rehash: the same, but once the server is out its keys move to the live servers and
/// every call on them succeeds; when it is back they return to it.
pub async fn pool_kill_rehash<H: Harness>() {
    kill_under_load::<H>(Failover::Rehash).await;
}
