//! The integration suite every client adapter runs (feature `suite`).
//!
//! There is one client ([`mcache_client::Client`]) whatever the runtime, so each case is an
//! `async fn` generic only over a [`Harness`]: what differs between runtimes (the adapter's
//! [`Runtime`], its `Client::connect` shorthand, and how a test blocks on a case). The suite
//! builds clients itself from [`ClientOptions`] ([`build`]), spawns on [`Harness::runtime`]
//! and sleeps on its timer, so the same cases run against mcache-tokio, and mcache-async-std
//! on async-std and on smol.
//!
//! An adapter's test file implements [`Harness`] and expands [`suite_tests!`](crate::suite_tests)
//! (one `#[test]` per case) and, with TLS, [`tls_suite_tests!`](crate::tls_suite_tests), as
//! `client-tokio/tests/suite.rs` does (where it is compiled and run):
//!
//! ```text
//! struct Tokio;
//! impl mcache_testkit::suite::Harness for Tokio { /* NAME, runtime, connect, block_on */ }
//! mcache_testkit::suite_tests!(Tokio);
//! ```
//!
//! Every case starts its own memcached. Timeouts in the cases are hang guards only: no
//! assertion depends on how fast anything is.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cancel;
mod commands;
mod faults;
mod hostile;
mod pool;
mod proxy;
mod tls;
mod transports;

pub use cancel::cancellation;
pub use commands::{
    arithmetic, binary_keys, delete_touch_flush, dropping_the_client_closes_connections,
    invalid_keys_are_never_sent, meta_commands, meta_quiet_batches, pipelined_load, retrieval,
    server_commands, storage, value_over_client_limit, value_over_client_limit_from_server,
    value_over_server_limit,
};
pub use faults::{server_killed_and_restarted, server_stopped_and_continued};
pub use hostile::{
    accept_never_answer, close_after_n_bytes, faults_under_load, faulty_server_answers_correctly,
    garbage_replies, huge_declared_lengths, out_of_order_replies, reset_mid_value,
    slow_drip_is_cut_off, stall_mid_frame, truncated_frames,
};
pub use pool::{
    pool_get_multi_merges_in_caller_order, pool_keyless_commands, pool_kill_fail_fast,
    pool_kill_rehash, pool_placement_matches_ring_and_libmemcached, PoolOptions,
};
pub use proxy::{twemproxy_refuses_what_it_cannot_carry, twemproxy_text_commands};
pub use tls::{
    tls_plaintext_client_fails, tls_roundtrip, tls_untrusted_certificates_fail,
    tls_writes_resume_after_stall, TestCertificate, TlsMemcached,
};
pub use transports::{ascii_auth, unix_socket};

use crate::Memcached;
use futures_lite::FutureExt;
use mcache_client::tls::TlsConfig;
use mcache_client::{Builder, Client, Error, Memcache, MetaGetFlags, Runtime, Stat};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

/// What differs between the runtimes the suite runs on.
pub trait Harness: Sized + Send + Sync + 'static {
    /// A short name for messages (`"tokio"`, `"async-std"`, `"smol"`).
    const NAME: &'static str;

    /// The adapter's [`Runtime`]: the suite builds its clients, spawns its tasks and sleeps
    /// on it.
    fn runtime() -> Arc<dyn Runtime>;

    /// The adapter's own `Client::connect(server)` shorthand: one server, default settings.
    fn connect(server: String) -> impl Future<Output = Result<Client, Error>>;

    /// Runs a case to completion on a fresh runtime (the body of each `#[test]`).
    fn block_on<T>(case: impl Future<Output = T>) -> T;
}

/// Everything the suite sets on an adapter's builder.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// `host:port` or `unix:/path`.
    pub server: String,
    /// `Builder::connections`.
    pub connections: usize,
    /// `Builder::request_timeout`.
    pub request_timeout: Option<Duration>,
    /// `Builder::read_timeout`.
    pub read_timeout: Option<Duration>,
    /// `Builder::connect_timeout`.
    pub connect_timeout: Duration,
    /// `Builder::backoff(min, max)`.
    pub backoff: (Duration, Duration),
    /// `Builder::max_value_len`, if set.
    pub max_value_len: Option<usize>,
    /// `Builder::auth(user, pass)`, if set.
    pub auth: Option<(String, String)>,
    /// `Builder::tls(..)`, if set.
    pub tls: Option<TlsOptions>,
    /// A pool of servers instead of `server`, if set.
    pub pool: Option<PoolOptions>,
    /// `Builder::proxy(..)`, if set.
    pub proxy: Option<mcache_proto::ProxyKind>,
}

/// TLS settings for [`ClientOptions::tls`].
#[derive(Debug, Clone)]
pub struct TlsOptions {
    /// PEM certificates to trust (`TlsConfig::with_root_certificates_pem`); may be empty.
    pub root_pem: Vec<u8>,
    /// `TlsConfig::server_name`, if set.
    pub server_name: Option<String>,
}

impl ClientOptions {
    /// Options for `server` with the suite's defaults: 2 connections, 5 s request and read
    /// timeouts and 2 s connect timeout (hang guards), quick reconnects (20 ms to 500 ms).
    pub fn new(server: impl Into<String>) -> Self {
        ClientOptions {
            server: server.into(),
            connections: 2,
            request_timeout: Some(Duration::from_secs(5)),
            read_timeout: Some(Duration::from_secs(5)),
            connect_timeout: Duration::from_secs(2),
            backoff: (Duration::from_millis(20), Duration::from_millis(500)),
            max_value_len: None,
            auth: None,
            tls: None,
            pool: None,
            proxy: None,
        }
    }

    /// Options for a server started by the testkit (TCP or unix socket).
    pub fn for_server(mc: &Memcached) -> Self {
        match mc.socket_path() {
            Some(path) => ClientOptions::new(format!("unix:{}", path.display())),
            None => ClientOptions::new(mc.host_port_string()),
        }
    }
}

/// Runs one case under a hang guard (60 s): the body of every generated `#[test]`.
///
/// The case is boxed: executors pass the future they run by value through many layers of
/// calls, and in debug builds each layer keeps copies of it on the test thread's stack.
pub fn run_case<H: Harness>(name: &str, case: impl Future<Output = ()>) {
    let what = format!("{} case `{name}`", H::NAME);
    H::block_on(Box::pin(guard::<H, _>(
        &what,
        Duration::from_secs(60),
        case,
    )));
}

/// Awaits `f`, or panics if it takes longer than `limit`: a hang guard, not a speed check.
pub(crate) async fn guard<H: Harness, T>(
    what: &str,
    limit: Duration,
    f: impl Future<Output = T>,
) -> T {
    let r = futures_lite::future::or(async { Some(f.await) }, async {
        sleep::<H>(limit).await;
        None
    })
    .await;
    match r {
        Some(v) => v,
        None => panic!("{what}: still not finished after {limit:?} (hang)"),
    }
}

/// Spawns `task` on the runtime, catching a panic as `Err(message)` so that cases can count
/// panics.
pub(crate) fn spawn_catch<H: Harness, T: Send + 'static>(
    task: impl Future<Output = T> + Send + 'static,
) -> impl Future<Output = Result<T, String>> + Send + 'static {
    let (tx, rx) = futures_channel::oneshot::channel();
    H::runtime().spawn(Box::pin(async move {
        let out = AssertUnwindSafe(task)
            .catch_unwind()
            .await
            .map_err(|p| panic_message(&*p));
        let _ = tx.send(out);
    }));
    async move {
        rx.await
            .unwrap_or_else(|_| Err("the task was dropped unfinished".to_string()))
    }
}

/// Sleeps on the runtime's timer.
pub(crate) async fn sleep<H: Harness>(d: Duration) {
    let runtime = H::runtime();
    mcache_client::sleep(&*runtime, d).await;
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}

/// Starts a default memcached or panics with the testkit's explanation.
pub(crate) fn start_memcached() -> Memcached {
    Memcached::start().unwrap_or_else(|e| panic!("could not start memcached: {e}"))
}

/// Builds a client on `H`'s runtime with [`Builder::new`], applying every option.
pub async fn build<H: Harness>(o: ClientOptions) -> Result<Client, Error> {
    let mut b = Builder::new(H::runtime());
    match o.pool {
        Some(pool) => {
            for (addr, spec) in pool.servers {
                b = b.server_as(addr, spec);
            }
            b = b.hash_mode(pool.hash_mode).health(pool.health);
        }
        None => b = b.server(o.server),
    }
    if let Some(proxy) = o.proxy {
        b = b.proxy(proxy);
    }
    let mut b = b
        .connections(o.connections)
        .request_timeout(o.request_timeout)
        .read_timeout(o.read_timeout)
        .connect_timeout(o.connect_timeout)
        .backoff(o.backoff.0, o.backoff.1);
    if let Some(n) = o.max_value_len {
        b = b.max_value_len(n);
    }
    if let Some((user, pass)) = o.auth {
        b = b.auth(user, pass);
    }
    if let Some(tls) = o.tls {
        let mut config = TlsConfig::with_root_certificates_pem(&tls.root_pem)
            .map_err(|e| Error::Config(format!("root certificates: {e}")))?;
        if let Some(name) = tls.server_name {
            config = config.server_name(name);
        }
        b = b.tls(config);
    }
    // Strict: a case that expects a refused connection sees the build fail.
    b.require_reachable(true).build().await
}

/// Builds a client or panics.
pub(crate) async fn client<H: Harness>(options: ClientOptions) -> Client {
    let server = options.server.clone();
    build::<H>(options)
        .await
        .unwrap_or_else(|e| panic!("{}: client for {server} failed to build: {e}", H::NAME))
}

/// The value of the `stats` counter `name`.
pub(crate) fn stat(stats: &[Stat], name: &str) -> u64 {
    let s = stats
        .iter()
        .find(|s| s.name == name.as_bytes())
        .unwrap_or_else(|| panic!("no stat {name} in the reply"));
    std::str::from_utf8(&s.value)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("stat {name} is not a number: {:?}", s.value))
}

/// Whether an error is one a caller may get when the server is gone or unresponsive.
pub(crate) fn is_outage(e: &Error) -> bool {
    matches!(
        e,
        Error::Poisoned(_) | Error::Io(_) | Error::Unavailable(_) | Error::Timeout
    )
}

/// Polls `op` (with a short sleep between tries, up to about 10 s) until it succeeds; every
/// failure on the way must be an outage error.
pub(crate) async fn until_ok<H: Harness, T, F, Fut>(what: &str, mut op: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    let mut last = None;
    for _ in 0..200 {
        match op().await {
            Ok(v) => return v,
            Err(e) => {
                assert!(
                    is_outage(&e),
                    "{what}: unexpected error while recovering: {e:?}"
                );
                last = Some(e);
            }
        }
        sleep::<H>(Duration::from_millis(50)).await;
    }
    panic!("{what}: no success after 200 tries; last error {last:?}");
}

/// Polls `op` until it succeeds 10 times in a row (so that every connection of a client is
/// back), with a short sleep after each failure, up to 200 failures; every failure must be an
/// outage error.
pub(crate) async fn until_streak<H: Harness, F, Fut>(what: &str, mut op: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), Error>>,
{
    let (mut streak, mut failures) = (0, 0);
    while streak < 10 {
        match op().await {
            Ok(()) => streak += 1,
            Err(e) => {
                assert!(
                    is_outage(&e),
                    "{what}: unexpected error while recovering: {e:?}"
                );
                streak = 0;
                failures += 1;
                assert!(
                    failures < 200,
                    "{what}: still failing after 200 tries: {e:?}"
                );
                sleep::<H>(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Some traffic from 8 tasks, each checking its own values.
pub(crate) async fn traffic<H: Harness>(c: &Client, prefix: &str) {
    let mut tasks = Vec::new();
    for t in 0..8 {
        let c = c.clone();
        let prefix = prefix.to_string();
        tasks.push(spawn_catch::<H, _>(async move {
            for i in 0..100 {
                let k = format!("{prefix}:{t}:{}", i % 10);
                let v = format!("{k}={i}");
                c.set(k.as_str(), v.clone(), 0).await.unwrap();
                assert_eq!(
                    c.get(k.as_str()).await.unwrap().map(|v| v.data),
                    Some(v.clone().into())
                );
                let m = c
                    .meta_get(
                        k.as_str(),
                        MetaGetFlags {
                            value: true,
                            ..Default::default()
                        },
                    )
                    .await
                    .unwrap();
                assert_eq!(m.value, Some(v.into()));
            }
        }));
    }
    for t in tasks {
        guard::<H, _>("traffic task", Duration::from_secs(30), t)
            .await
            .unwrap_or_else(|p| panic!("task panicked: {p}"));
    }
}

/// Expands to one `#[test]` per case of the suite (TLS cases aside) for the [`Harness`] `$h`.
///
/// ```text
/// mcache_testkit::suite_tests!(Tokio); // client-tokio/tests/suite.rs
/// ```
#[macro_export]
macro_rules! suite_tests {
    ($h:ty) => {
        $crate::suite_tests!(@cases $h;
            retrieval,
            storage,
            delete_touch_flush,
            arithmetic,
            server_commands,
            meta_commands,
            meta_quiet_batches,
            binary_keys,
            value_over_client_limit,
            value_over_client_limit_from_server,
            value_over_server_limit,
            invalid_keys_are_never_sent,
            pipelined_load,
            dropping_the_client_closes_connections,
            cancellation,
            server_killed_and_restarted,
            server_stopped_and_continued,
            unix_socket,
            ascii_auth,
        );
    };
    (@cases $h:ty; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::suite::run_case::<$h>(
                    stringify!($case),
                    $crate::suite::$case::<$h>(),
                );
            }
        )*
    };
}

/// Expands to one `#[test]` per hostile-server case (the fault-injection server of
/// [`crate::faulty`]) for the [`Harness`] `$h`.
///
/// ```text
/// mcache_testkit::hostile_suite_tests!(Tokio); // client-tokio/tests/faults.rs
/// ```
#[macro_export]
macro_rules! hostile_suite_tests {
    ($h:ty) => {
        $crate::suite_tests!(@cases $h;
            faulty_server_answers_correctly,
            garbage_replies,
            truncated_frames,
            huge_declared_lengths,
            stall_mid_frame,
            slow_drip_is_cut_off,
            out_of_order_replies,
            reset_mid_value,
            accept_never_answer,
            close_after_n_bytes,
            faults_under_load,
        );
    };
}

/// Expands to one `#[test]` per server-pool and twemproxy case for the [`Harness`] `$h`
/// (several memcached processes; the twemproxy cases also start `nutcracker`).
///
/// ```text
/// mcache_testkit::pool_suite_tests!(Tokio); // client-tokio/tests/suite.rs
/// ```
#[macro_export]
macro_rules! pool_suite_tests {
    ($h:ty) => {
        $crate::suite_tests!(@cases $h;
            pool_placement_matches_ring_and_libmemcached,
            pool_get_multi_merges_in_caller_order,
            pool_keyless_commands,
            pool_kill_fail_fast,
            pool_kill_rehash,
            twemproxy_text_commands,
            twemproxy_refuses_what_it_cannot_carry,
        );
    };
}

/// Expands to one `#[test]` per TLS case of the suite for the [`Harness`] `$h`.
#[macro_export]
macro_rules! tls_suite_tests {
    ($h:ty) => {
        $crate::suite_tests!(@cases $h;
            tls_roundtrip,
            tls_untrusted_certificates_fail,
            tls_plaintext_client_fails,
            tls_writes_resume_after_stall,
        );
    };
}
