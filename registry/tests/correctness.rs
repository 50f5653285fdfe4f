//! Never a silent wrong answer, and fail-open from the first line (issue 13), against a real
//! memcached: results behind type aliases never cache their errors, a value stored with
//! another type is a miss, a dropped call releases its lease, a client built while memcached
//! is down serves uncached calls, and registry operations respect the circuit breaker.
#![cfg(feature = "tokio")]

mod common;

use mcache_registry::proto::MetaGetFlags;
use mcache_registry::shape::Plain;
use mcache_registry::tokio::{Client, Connect};
use mcache_registry::{memoize, Args, Cache, Error, Function, Memcache};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct AppError(String);

type AppResult<T> = Result<T, AppError>;
type Maybe<T> = Option<T>;

static ALIAS_RESULT_RUNS: AtomicUsize = AtomicUsize::new(0);
static ALIAS_OPTION_RUNS: AtomicUsize = AtomicUsize::new(0);
static IO_RESULT_RUNS: AtomicUsize = AtomicUsize::new(0);
static SPELLED_RUNS: AtomicUsize = AtomicUsize::new(0);

#[memoize(cache = cache, result = true)]
async fn alias_result(cache: &Cache<Client>, id: u32) -> AppResult<String> {
    ALIAS_RESULT_RUNS.fetch_add(1, Ordering::SeqCst);
    Err(AppError(format!("no row {id}")))
}

#[memoize(cache = cache)]
async fn spelled_result(cache: &Cache<Client>, id: u32) -> Result<String, AppError> {
    SPELLED_RUNS.fetch_add(1, Ordering::SeqCst);
    Err(AppError(format!("no row {id}")))
}

#[memoize(cache = cache, option = true)]
async fn alias_option(cache: &Cache<Client>, id: u32) -> Maybe<u32> {
    ALIAS_OPTION_RUNS.fetch_add(1, Ordering::SeqCst);
    (id > 100).then_some(id)
}

#[memoize(cache = cache)]
async fn io_result(cache: &Cache<Client>, id: u32) -> std::io::Result<u32> {
    IO_RESULT_RUNS.fetch_add(1, Ordering::SeqCst);
    if id == 0 {
        return Err(std::io::Error::other("zero"));
    }
    Ok(id)
}

/// Item 1: an `Err` (or `None`) is never cached, whatever the return type is called.
#[tokio::test]
async fn errors_behind_aliases_are_never_cached() {
    let server = common::server();
    let cache = common::cache(&server).await;
    for _ in 0..3 {
        assert!(alias_result(&cache, 1).await.is_err());
        assert!(spelled_result(&cache, 1).await.is_err());
        assert_eq!(alias_option(&cache, 1).await, None);
        assert!(io_result(&cache, 0).await.is_err());
    }
    assert_eq!(ALIAS_RESULT_RUNS.load(Ordering::SeqCst), 3, "AppResult<T>");
    assert_eq!(SPELLED_RUNS.load(Ordering::SeqCst), 3, "Result<T, E>");
    assert_eq!(ALIAS_OPTION_RUNS.load(Ordering::SeqCst), 3, "Maybe<T>");
    assert_eq!(IO_RESULT_RUNS.load(Ordering::SeqCst), 3, "io::Result<T>");
    assert!(!alias_result::is_cached(&cache, 1).await.unwrap());
    // `Ok`/`Some` still are, as the entry `T`.
    assert_eq!(alias_option(&cache, 200).await, Some(200));
    assert_eq!(alias_option::cached(&cache, 200).await.unwrap(), Some(200));
    assert_eq!(io_result(&cache, 5).await.unwrap(), 5);
    assert_eq!(io_result(&cache, 5).await.unwrap(), 5);
    assert_eq!(IO_RESULT_RUNS.load(Ordering::SeqCst), 4);
}

/// Item 2: a value stored as one type and read back as another (the function's return type
/// changed between builds) is a miss that recomputes and overwrites, never a reinterpretation.
#[tokio::test]
async fn a_changed_return_type_is_a_miss_not_wrong_data() {
    let server = common::server();
    let cache = common::cache(&server).await;
    const F: Function = Function::new("correctness::changed");
    let args = Args::new().with(&1u8).unwrap();
    let old = cache
        .memoize::<Plain<u64>, _, _>(&F, &args, || std::future::ready(7000u64))
        .await;
    assert_eq!(old, 7000);
    assert_eq!(cache.cached::<u64>(&F, &args).await.unwrap(), Some(7000));

    // The new build's function returns a pair: 7000 in postcard is two bytes, (216, 54).
    assert_eq!(cache.cached::<(u8, u8)>(&F, &args).await.unwrap(), None);
    let runs = AtomicUsize::new(0);
    let pair = || {
        runs.fetch_add(1, Ordering::SeqCst);
        std::future::ready((1u8, 2u8))
    };
    for _ in 0..2 {
        let got = cache
            .memoize::<Plain<(u8, u8)>, _, _>(&F, &args, pair)
            .await;
        assert_eq!(got, (1, 2), "recomputed, not the old bytes read as a pair");
    }
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "recomputed once, then cached"
    );

    // As i64 (zigzag in postcard: 7000 would read as 3500), after a u64 is stored again.
    cache.set_cached(&F, &args, &7000u64, false).await.unwrap();
    assert_eq!(cache.cached::<i64>(&F, &args).await.unwrap(), None);
    let got = cache
        .memoize::<Plain<i64>, _, _>(&F, &args, || std::future::ready(-1i64))
        .await;
    assert_eq!(got, -1);
    assert_eq!(cache.cached::<i64>(&F, &args).await.unwrap(), Some(-1));

    // The version is part of the fingerprint too.
    let v2 = F.with_version(2);
    cache.set_cached(&v2, &args, &5u64, false).await.unwrap();
    assert_eq!(cache.cached::<u64>(&v2, &args).await.unwrap(), Some(5));
}

/// Item 3: a caller dropped after its leased `mg` was sent and before the reply came back
/// leaves no lease behind: the next caller (here or in another process) does not wait it out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_call_releases_its_lease() {
    let server = common::server();
    let client = Client::builder()
        .server(server.host_port_string().as_str())
        .request_timeout(Some(Duration::from_secs(10)))
        .build()
        .await
        .unwrap();
    let cache = Cache::builder(client)
        .namespace("test")
        .lease_ttl(Duration::from_secs(60))
        .lease_wait(Duration::from_secs(60))
        .build()
        .unwrap();
    const F: Function = Function::new("correctness::dropped");
    let args = Args::new().with(&7u32).unwrap();
    let key = cache.key(&F, &args);
    // Warm the generation counters, so that only the leased `mg` is in flight below.
    assert!(!cache.is_cached(&F, &args).await.unwrap());

    server.stop().unwrap();
    let call = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .memoize::<Plain<u32>, _, _>(&F, &args, || std::future::ready(1))
                .await
        })
    };
    // The request is written; memcached, frozen, has not answered.
    tokio::time::sleep(Duration::from_millis(300)).await;
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
    server.cont().unwrap();

    // memcached granted the lease to a caller that is gone; it must be given back.
    let mut released = false;
    for _ in 0..100 {
        let item = cache
            .client()
            .unwrap()
            .meta_get(&key, MetaGetFlags::default())
            .await
            .unwrap();
        if item.status == mcache_registry::proto::MetaStatus::En {
            released = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(released, "the lease of the dropped call is still held");

    let args = Args::new().with(&7u32).unwrap();
    let next = tokio::time::timeout(
        Duration::from_secs(10),
        cache.memoize::<Plain<u32>, _, _>(&F, &args, || std::future::ready(2)),
    )
    .await
    .expect("the next caller is not stalled by the dropped call's lease");
    assert_eq!(next, 2);
    assert_eq!(cache.cached::<u32>(&F, &args).await.unwrap(), Some(2));
}

static DOWN_RUNS: AtomicUsize = AtomicUsize::new(0);

#[memoize(cache = cache)]
async fn while_down(cache: &Cache<Client>, id: u32) -> u32 {
    DOWN_RUNS.fetch_add(1, Ordering::SeqCst);
    id * 10
}

/// Item 4: the application starts while memcached is down: the client builds, the cache is
/// made, memoized functions run uncached, and caching starts once memcached is up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_while_memcached_is_down() {
    let server = common::server();
    let addr = server.host_port_string();
    server.kill().unwrap();

    // A script wants to know: `Client::connect` is strict.
    assert!(Client::connect(addr.as_str()).await.is_err());
    assert!(Client::builder()
        .server(addr.as_str())
        .require_reachable(true)
        .build()
        .await
        .is_err());

    let client = Client::builder()
        .server(addr.as_str())
        .backoff(Duration::from_millis(10), Duration::from_millis(50))
        .build()
        .await
        .expect("building does not need memcached");
    let cache = Cache::new(client, "test").unwrap();
    for i in 0..3 {
        assert_eq!(while_down(&cache, 1).await, 10);
        assert_eq!(DOWN_RUNS.load(Ordering::SeqCst), i + 1, "uncached");
    }

    server.restart().unwrap();
    let mut cached = false;
    for _ in 0..200 {
        assert_eq!(while_down(&cache, 2).await, 20);
        if while_down::is_cached(&cache, 2).await.unwrap_or(false) {
            cached = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(cached, "caching started once memcached came up");
    let before = DOWN_RUNS.load(Ordering::SeqCst);
    assert_eq!(while_down(&cache, 2).await, 20);
    assert_eq!(DOWN_RUNS.load(Ordering::SeqCst), before, "a hit");
}

static DISABLED_RUNS: AtomicUsize = AtomicUsize::new(0);

#[memoize(cache = cache)]
async fn with_disabled(cache: &Cache<Client>, id: u32) -> u32 {
    DISABLED_RUNS.fetch_add(1, Ordering::SeqCst);
    id + 1
}

/// Item 4: `Cache::disabled()` runs every call and makes registry operations no-ops.
#[tokio::test]
async fn a_disabled_cache_runs_everything_uncached() {
    let cache: Cache<Client> = Cache::disabled();
    assert_eq!(with_disabled(&cache, 1).await, 2);
    assert_eq!(with_disabled(&cache, 1).await, 2);
    assert_eq!(DISABLED_RUNS.load(Ordering::SeqCst), 2);
    assert!(!with_disabled::is_cached(&cache, 1).await.unwrap());
    assert_eq!(with_disabled::cached(&cache, 1).await.unwrap(), None);
    assert!(!with_disabled::invalidate(&cache, 1).await.unwrap());
    with_disabled::replace(&cache, 1, &5).await.unwrap();
    with_disabled::invalidate_all(&cache).await.unwrap();
    cache.invalidate_namespace().await.unwrap();
    assert_eq!(with_disabled::refresh(&cache, 1).await, 2);
    assert_eq!(DISABLED_RUNS.load(Ordering::SeqCst), 3);
    assert!(cache.client().is_none());
    assert!(
        cache.get("k").await.is_err(),
        "plain commands say it is off"
    );
}

#[memoize(cache = cache)]
async fn guarded(cache: &Cache<Client>, id: u32) -> u32 {
    id
}

/// Item 5: while the breaker is open, registry operations return `Error::Unavailable` at once
/// instead of each waiting out a request timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_operations_respect_the_breaker() {
    let server = common::server();
    let cache = common::breaker_cache(&server, 2, Duration::from_secs(600)).await;
    assert_eq!(guarded(&cache, 1).await, 1);
    server.stop().unwrap();
    while !cache.is_bypassing() {
        assert_eq!(guarded(&cache, 1).await, 1);
    }
    let unavailable = |r: Result<(), Error>, what: &str| {
        assert!(matches!(r, Err(Error::Unavailable)), "{what}: {r:?}");
    };
    unavailable(guarded::invalidate(&cache, 1).await.map(drop), "invalidate");
    unavailable(guarded::replace(&cache, 1, &2).await, "replace");
    unavailable(guarded::invalidate_all(&cache).await, "invalidate_all");
    unavailable(cache.invalidate_namespace().await, "invalidate_namespace");
    unavailable(guarded::is_cached(&cache, 1).await.map(drop), "is_cached");
    unavailable(guarded::cached(&cache, 1).await.map(drop), "cached");
    assert_eq!(
        guarded::refresh(&cache, 1).await,
        1,
        "refresh runs uncached"
    );
    server.cont().unwrap();
}

/// A memoized lookup is two reports to the circuit breaker, however its requests travel: its
/// value and its generation counters (read as two gets beside the value, but one operation).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_against_a_stopped_server_counts_two_failures_toward_the_breaker() {
    let server = common::server();
    let cache = common::breaker_cache(&server, 3, Duration::from_secs(600)).await;
    assert_eq!(guarded(&cache, 7).await, 7);
    server.stop().unwrap();
    assert_eq!(guarded(&cache, 7).await, 7);
    assert!(
        !cache.is_bypassing(),
        "two failures, under the threshold of three"
    );
    assert_eq!(guarded(&cache, 7).await, 7);
    assert!(cache.is_bypassing(), "four failures open the breaker");
    server.cont().unwrap();
}
