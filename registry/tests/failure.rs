//! The failure policy against a real memcached: stopped (SIGSTOP) or killed mid-test, foreign
//! or undecodable values, values too large to store or impossible to encode, arguments that
//! cannot be keyed. Every call still returns the function's result; the function runs once
//! per call at most.
#![cfg(feature = "tokio")]

mod common;

use mcache_registry::shape::Plain;
use mcache_registry::tokio::{Client, Connect};
use mcache_registry::{memoize, Args, Cache, Codec, Function, Memcache};
use serde::{Serialize, Serializer};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

static RUNS: AtomicUsize = AtomicUsize::new(0);

#[memoize(cache = cache, skip = [cache])]
async fn lookup(cache: &Cache<Client>, id: u32) -> String {
    RUNS.fetch_add(1, Ordering::SeqCst);
    format!("row {id}")
}

fn runs() -> usize {
    RUNS.load(Ordering::SeqCst)
}

async fn until_cached(cache: &Cache<Client>, id: u32) {
    for _ in 0..200 {
        assert_eq!(lookup(cache, id).await, format!("row {id}"));
        if lookup::is_cached(cache, id).await.unwrap_or(false) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("caching never resumed");
}

/// One test for `lookup`: stopped, resumed, killed, restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memcached_stopped_or_killed_mid_test() {
    let server = common::server();
    let cache = common::breaker_cache(&server, 3, Duration::from_millis(200)).await;
    assert_eq!(lookup(&cache, 1).await, "row 1");
    assert_eq!(lookup(&cache, 1).await, "row 1");
    assert_eq!(runs(), 1);

    // Frozen: requests time out; calls succeed, uncached.
    server.stop().unwrap();
    for i in 0..5 {
        assert_eq!(lookup(&cache, 1).await, "row 1");
        assert_eq!(lookup(&cache, 2).await, "row 2");
        assert_eq!(runs(), 1 + 2 * (i + 1), "each call runs the function once");
    }
    assert!(cache.is_bypassing(), "the circuit breaker opened");
    assert!(
        lookup::invalidate(&cache, 1).await.is_err(),
        "registry operations report the failure"
    );
    server.cont().unwrap();
    until_cached(&cache, 3).await;
    assert!(!cache.is_bypassing());
    let before = runs();
    assert_eq!(lookup(&cache, 3).await, "row 3");
    assert_eq!(runs(), before, "cached again");

    // Killed: connection refused; calls succeed, uncached.
    server.kill().unwrap();
    let before = runs();
    for _ in 0..5 {
        assert_eq!(lookup(&cache, 3).await, "row 3");
    }
    assert_eq!(runs(), before + 5);
    server.restart().unwrap();
    until_cached(&cache, 4).await;
}

#[tokio::test]
async fn foreign_and_undecodable_values_are_misses() {
    let server = common::server();
    let cache = common::cache(&server).await;
    const F: Function = Function::new("failure::typed");
    let args = Args::new().with(&1u8).unwrap();
    let key = cache.key(&F, &args);
    let runs = AtomicUsize::new(0);
    let compute = || {
        runs.fetch_add(1, Ordering::SeqCst);
        std::future::ready("fresh".to_string())
    };

    // Written by something else (flags 0, no stamp).
    cache
        .client()
        .expect("a client")
        .set(&key, "garbage", 0)
        .await
        .unwrap();
    assert_eq!(
        cache
            .memoize::<Plain<String>, _, _>(&F, &args, compute)
            .await,
        "fresh"
    );
    assert_eq!(
        cache
            .memoize::<Plain<String>, _, _>(&F, &args, compute)
            .await,
        "fresh"
    );
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "recomputed once, then cached"
    );

    // The result type changed: the stored value no longer decodes.
    cache
        .set_cached(&F, &args, &vec![1u64 << 40; 3], false)
        .await
        .unwrap();
    assert_eq!(cache.cached::<String>(&F, &args).await.unwrap(), None);
    assert_eq!(
        cache
            .memoize::<Plain<String>, _, _>(&F, &args, compute)
            .await,
        "fresh"
    );
    assert_eq!(
        cache
            .memoize::<Plain<String>, _, _>(&F, &args, compute)
            .await,
        "fresh"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn values_that_cannot_be_stored_are_returned_uncached() {
    let server = common::server();
    let cache = common::builder(&server)
        .await
        .codec(Codec::Json)
        .build()
        .unwrap();
    let runs = AtomicUsize::new(0);

    // Over memcached's 1 MB item limit.
    const BIG: Function = Function::new("failure::big");
    let big = || {
        runs.fetch_add(1, Ordering::SeqCst);
        std::future::ready("x".repeat(2 << 20))
    };
    for _ in 0..2 {
        let v = cache
            .memoize::<Plain<String>, _, _>(&BIG, &Args::new(), big)
            .await;
        assert_eq!(v.len(), 2 << 20);
    }
    assert_eq!(runs.load(Ordering::SeqCst), 2);

    // JSON cannot encode a map with tuple keys.
    const ODD: Function = Function::new("failure::odd");
    let odd = || {
        runs.fetch_add(1, Ordering::SeqCst);
        std::future::ready(HashMap::from([((1u8, 2u8), 3u8)]))
    };
    for _ in 0..2 {
        let v = cache
            .memoize::<Plain<HashMap<(u8, u8), u8>>, _, _>(&ODD, &Args::new(), odd)
            .await;
        assert_eq!(v[&(1, 2)], 3);
    }
    assert_eq!(runs.load(Ordering::SeqCst), 4);
    assert!(!cache.is_bypassing(), "refusals are not outages");
}

/// An argument whose `Serialize` fails.
struct Unkeyable;

impl Serialize for Unkeyable {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("no key for you"))
    }
}

static UNKEYED_RUNS: AtomicUsize = AtomicUsize::new(0);

#[memoize(cache = cache, skip = [cache])]
async fn unkeyed(cache: &Cache<Client>, arg: Unkeyable) -> u8 {
    let _ = arg;
    UNKEYED_RUNS.fetch_add(1, Ordering::SeqCst);
    7
}

#[tokio::test]
async fn arguments_that_cannot_be_keyed_run_uncached() {
    let server = common::server();
    let cache = common::cache(&server).await;
    assert_eq!(unkeyed(&cache, Unkeyable).await, 7);
    assert_eq!(unkeyed(&cache, Unkeyable).await, 7);
    assert_eq!(UNKEYED_RUNS.load(Ordering::SeqCst), 2);
    assert!(matches!(
        unkeyed::key(&cache, Unkeyable),
        Err(mcache_registry::Error::Args(_))
    ));
}

static FROZEN_RUNS: AtomicUsize = AtomicUsize::new(0);

#[memoize(cache = cache)]
async fn frozen(cache: &Cache<Client>, id: u32) -> u32 {
    FROZEN_RUNS.fetch_add(1, Ordering::SeqCst);
    id
}

/// A client with no request timeout of its own: the cache's `op_timeout` bounds each round
/// trip, so a frozen memcached still cannot hang a call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn op_timeout_bounds_a_client_without_one() {
    let server = common::server();
    let client = Client::builder()
        .server(server.host_port_string().as_str())
        .request_timeout(None)
        .build()
        .await
        .unwrap();
    let cache = Cache::builder(client)
        .namespace("test")
        .op_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    assert_eq!(frozen(&cache, 1).await, 1);
    server.stop().unwrap();
    let call = tokio::time::timeout(Duration::from_secs(20), frozen(&cache, 1)).await;
    assert_eq!(call.expect("the call did not hang"), 1);
    assert_eq!(FROZEN_RUNS.load(Ordering::SeqCst), 2, "ran uncached");
    server.cont().unwrap();
}
