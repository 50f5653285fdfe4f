//! The other Rust memcached clients, driven through the same scenarios as mcache.
//!
//! - `memcache` (rust-memcache, blocking): one `memcache::Client` shared by N OS threads, its
//!   r2d2 pool sized to N connections (the documented way: `Client` is `Sync`, each call checks a
//!   connection out of the pool). Built twice: as its builder makes it (binary protocol, its
//!   default; r2d2's default `test_on_check_out`, which sends a `version` round trip before
//!   every command), and tuned: ASCII protocol and `Client::with_pool` over an r2d2 pool with
//!   that test off.
//! - `async-memcached` and `mcmc-rs` (tokio): one connection per task, as a pool the size of
//!   the task count would give; each connection sits in its own `tokio::sync::Mutex`, locked
//!   only by its task (uncontended), because both clients need `&mut self` per request.

use crate::{dur, workload, Scenario, BIG, VALUE_100};
use async_memcached::AsciiProtocol;
use mcache_benches::{run_load, run_threads, Executor, Measurement};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a scenario needs from a client that holds one connection and needs `&mut` per request.
pub(crate) trait PeerConn: Send + 'static {
    /// `set key value`: true when stored.
    fn set<'a>(
        &'a mut self,
        key: &'a str,
        value: &'a [u8],
    ) -> impl Future<Output = bool> + Send + 'a;
    /// `get key`: the value's length on a hit.
    fn get<'a>(&'a mut self, key: &'a str) -> impl Future<Output = Option<usize>> + Send + 'a;
    /// One multi-key get: the number of hits.
    fn get_multi<'a>(&'a mut self, keys: &'a [String]) -> impl Future<Output = u64> + Send + 'a;
}

/// An `async-memcached` connection.
pub(crate) struct AsyncMemcached(async_memcached::Client);

impl AsyncMemcached {
    pub(crate) async fn connect(addr: String) -> Result<Self, BoxError> {
        Ok(AsyncMemcached(
            async_memcached::Client::new(format!("tcp://{addr}")).await?,
        ))
    }
}

impl PeerConn for AsyncMemcached {
    async fn set(&mut self, key: &str, value: &[u8]) -> bool {
        self.0.set(key, value, None, None).await.is_ok()
    }

    async fn get(&mut self, key: &str) -> Option<usize> {
        match self.0.get(key).await {
            Ok(Some(v)) => v.data.map(|d| d.len()),
            _ => None,
        }
    }

    async fn get_multi(&mut self, keys: &[String]) -> u64 {
        match self.0.get_multi(keys).await {
            Ok(v) => v.len() as u64,
            Err(_) => 0,
        }
    }
}

/// An `mcmc-rs` connection (its `Connection::Tcp`, built here to set `TCP_NODELAY` as the other
/// clients do; otherwise what `Connection::tcp_connect` makes).
pub(crate) struct Mcmc(mcmc_rs::Connection);

impl Mcmc {
    pub(crate) async fn connect(addr: String) -> Result<Self, BoxError> {
        let sock = tokio::net::TcpStream::connect(addr).await?;
        sock.set_nodelay(true)?;
        Ok(Mcmc(mcmc_rs::Connection::Tcp(tokio::io::BufReader::new(
            sock,
        ))))
    }
}

impl PeerConn for Mcmc {
    async fn set(&mut self, key: &str, value: &[u8]) -> bool {
        matches!(
            self.0.set(key, 0, 0, false, value).await,
            Ok(mcmc_rs::StorageResult::Stored)
        )
    }

    async fn get(&mut self, key: &str) -> Option<usize> {
        match self.0.get(key).await {
            Ok(Some(item)) => Some(item.data_block.len()),
            _ => None,
        }
    }

    async fn get_multi(&mut self, keys: &[String]) -> u64 {
        match self.0.get_multi(keys).await {
            Ok(v) => v.len() as u64,
            Err(_) => 0,
        }
    }
}

type Pool<P> = Arc<Vec<tokio::sync::Mutex<P>>>;

/// Opens `n` connections.
fn open<P, C, Fut>(rt: &Executor, connect: &C, n: usize) -> Result<Pool<P>, BoxError>
where
    P: PeerConn,
    C: Fn() -> Fut,
    Fut: Future<Output = Result<P, BoxError>>,
{
    let conns = rt.block_on(async {
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(tokio::sync::Mutex::new(connect().await?));
        }
        Ok::<_, BoxError>(v)
    })?;
    Ok(Arc::new(conns))
}

/// The task's own connection: `run_load` numbers a task's calls from `task << 32`.
fn own<P>(pool: &Pool<P>, i: u64) -> &tokio::sync::Mutex<P> {
    &pool[(i >> 32) as usize % pool.len()]
}

/// Every scenario for an async client with one connection per task.
pub(crate) fn async_scenarios<P, C, Fut>(
    rt: &Executor,
    connect: C,
    secs: Duration,
) -> Result<Vec<(Scenario, Measurement)>, BoxError>
where
    P: PeerConn,
    C: Fn() -> Fut,
    Fut: Future<Output = Result<P, BoxError>>,
{
    let mut out = Vec::new();
    let seq = open(rt, &connect, 1)?;
    let m = run_load(rt, 1, dur(Scenario::Sequential, secs), 2, move |i| {
        let pool = seq.clone();
        async move {
            let mut c = own(&pool, i).lock().await;
            let k = format!("seq{}", i % 1000);
            let _ = c.set(&k, VALUE_100).await;
            let _ = c.get(&k).await;
            2
        }
    });
    out.push((Scenario::Sequential, m));

    let setup = open(rt, &connect, 1)?;
    rt.block_on(async {
        let mut c = setup[0].lock().await;
        for k in workload::all_keys() {
            if !c.set(&k, VALUE_100).await {
                return Err(BoxError::from("preload set failed"));
            }
        }
        for k in workload::all_big_keys() {
            if !c.set(&k, &vec![b'x'; BIG]).await {
                return Err(BoxError::from("preload set of a 64 KiB value failed"));
            }
        }
        Ok(())
    })?;

    for (scenario, tasks) in [(Scenario::Get32, 32usize), (Scenario::Get256, 256)] {
        let pool = open(rt, &connect, tasks)?;
        let m = run_load(rt, tasks, dur(scenario, secs), 1, move |i| {
            let pool = pool.clone();
            async move {
                let mut c = own(&pool, i).lock().await;
                let k = workload::key(i);
                u64::from(c.get(&k).await.is_some())
            }
        });
        out.push((scenario, m));
    }

    let keys: Arc<Vec<String>> = Arc::new(workload::all_keys().collect());
    let pool = open(rt, &connect, 8)?;
    let m = run_load(rt, 8, dur(Scenario::Multi100, secs), 1, move |i| {
        let pool = pool.clone();
        let keys = keys.clone();
        async move {
            let mut c = own(&pool, i).lock().await;
            let start = workload::multi_start(i);
            c.get_multi(&keys[start..start + 100]).await
        }
    });
    out.push((Scenario::Multi100, m));

    let pool = open(rt, &connect, 8)?;
    let m = run_load(rt, 8, dur(Scenario::Big64k, secs), 1, move |i| {
        let pool = pool.clone();
        async move {
            let mut c = own(&pool, i).lock().await;
            c.get(&workload::big_key(i)).await.unwrap_or(0) as u64
        }
    });
    out.push((Scenario::Big64k, m));
    Ok(out)
}

/// rust-memcache's `Client` over a pool of `size` connections. Not `tuned`: as its builder
/// makes it (binary protocol, r2d2's default `version` round trip on every checkout). `tuned`:
/// the ASCII protocol (far fewer syscalls per request than its unbuffered binary one) and an
/// r2d2 pool without the checkout test.
fn memcache_client(addr: &str, size: u32, tuned: bool) -> Result<memcache::Client, BoxError> {
    let url = format!("memcache://{addr}?timeout=10&tcp_nodelay=true");
    if tuned {
        let url = url::Url::parse(&format!("{url}&protocol=ascii"))?;
        let pool = r2d2::Pool::builder()
            .max_size(size)
            .test_on_check_out(false)
            .build(memcache::ConnectionManager::new(url))?;
        Ok(memcache::Client::with_pool(pool)?)
    } else {
        Ok(memcache::Client::builder()
            .add_server(url.as_str())?
            .with_max_pool_size(size)
            .build()?)
    }
}

/// Every scenario for rust-memcache: N threads share one `Client` with a pool of N.
pub(crate) fn memcache_scenarios(
    addr: &str,
    tuned: bool,
    secs: Duration,
) -> Result<Vec<(Scenario, Measurement)>, BoxError> {
    let mut out = Vec::new();
    let c = memcache_client(addr, 1, tuned)?;
    let m = run_threads(1, dur(Scenario::Sequential, secs), 2, |_, i| {
        let k = format!("seq{}", i % 1000);
        let _ = c.set(&k, VALUE_100, 0);
        let _ = c.get::<Vec<u8>>(&k);
        2
    });
    out.push((Scenario::Sequential, m));

    for k in workload::all_keys() {
        c.set(&k, VALUE_100, 0)?;
    }
    for k in workload::all_big_keys() {
        c.set(&k, &vec![b'x'; BIG][..], 0)?;
    }

    for (scenario, threads) in [(Scenario::Get32, 32usize), (Scenario::Get256, 256)] {
        let c = memcache_client(addr, threads as u32, tuned)?;
        let m = run_threads(threads, dur(scenario, secs), 1, |t, i| {
            let k = workload::key(((t as u64) << 32) | i);
            u64::from(matches!(c.get::<Vec<u8>>(&k), Ok(Some(_))))
        });
        out.push((scenario, m));
    }

    let names: Vec<String> = workload::all_keys().collect();
    let keys: Vec<&str> = names.iter().map(String::as_str).collect();
    let c = memcache_client(addr, 8, tuned)?;
    let m = run_threads(8, dur(Scenario::Multi100, secs), 1, |t, i| {
        let start = workload::multi_start(((t as u64) << 32) | i);
        c.gets::<Vec<u8>>(&keys[start..start + 100])
            .map_or(0, |v| v.len() as u64)
    });
    out.push((Scenario::Multi100, m));

    let m = run_threads(8, dur(Scenario::Big64k, secs), 1, |t, i| {
        c.get::<Vec<u8>>(&workload::big_key(((t as u64) << 32) | i))
            .ok()
            .flatten()
            .map_or(0, |v| v.len() as u64)
    });
    out.push((Scenario::Big64k, m));
    Ok(out)
}
