//! Stampede protection against a real memcached: single flight in one process, leases across
//! "processes" (separate clients and caches), stale-while-revalidate, the stale-set race, and
//! leaders that are dropped or panic.
#![cfg(feature = "tokio")]

mod common;

use mcache_registry::tokio::Client;
use mcache_registry::{memoize, Cache};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Semaphore;

static SLOW_RUNS: AtomicUsize = AtomicUsize::new(0);

/// The cache comes in as an argument (skipped from the key), so one function serves two
/// "processes".
#[memoize(cache = cache, skip = [cache])]
async fn slow(cache: &Cache<Client>, id: u32) -> String {
    SLOW_RUNS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    format!("value {id}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_calls_across_two_clients_run_once() {
    let server = common::server();
    let a = common::cache(&server).await;
    let b = common::cache(&server).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let cache = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.spawn(async move { slow(&cache, 7).await });
    }
    while let Some(r) = tasks.join_next().await {
        assert_eq!(r.unwrap(), "value 7");
    }
    assert_eq!(
        SLOW_RUNS.load(Ordering::SeqCst),
        1,
        "one run for 50 calls in two processes"
    );
    assert!(slow::is_cached(&a, 7).await.unwrap());
}

static GATED_RUNS: AtomicUsize = AtomicUsize::new(0);
static GATE: Semaphore = Semaphore::const_new(0);
static VERSION: AtomicUsize = AtomicUsize::new(1);

/// Reads `VERSION`, then waits for the test to open the gate.
#[memoize(cache = cache, skip = [cache])]
async fn gated(cache: &Cache<Client>, id: u32) -> String {
    let version = VERSION.load(Ordering::SeqCst);
    GATED_RUNS.fetch_add(1, Ordering::SeqCst);
    GATE.acquire().await.expect("gate open").forget();
    format!("{id} v{version}")
}

async fn wait_for(counter: &AtomicUsize, n: usize) {
    for _ in 0..1000 {
        if counter.load(Ordering::SeqCst) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("counter never reached {n}");
}

/// One test drives `gated`, in phases, so its statics are not shared with another test.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stale_while_revalidate_and_the_stale_set_race() {
    let server = common::server();
    let swr =
        |b: mcache_registry::CacheBuilder<Client>| b.stale_while_revalidate(true).build().unwrap();
    let a = swr(common::builder(&server).await);
    let b = swr(common::builder(&server).await);

    // Fill v1.
    GATE.add_permits(1);
    assert_eq!(gated(&a, 1).await, "1 v1");
    assert_eq!(GATED_RUNS.load(Ordering::SeqCst), 1);

    // Stale-while-revalidate: the data changes, the entry is marked stale; while one caller
    // recomputes, callers in both processes get the stale value at once.
    VERSION.store(2, Ordering::SeqCst);
    assert!(gated::invalidate(&a, 1).await.unwrap());
    let recompute = {
        let a = a.clone();
        tokio::spawn(async move { gated(&a, 1).await })
    };
    wait_for(&GATED_RUNS, 2).await;
    for cache in [&a, &b, &a, &b] {
        // Bounded: a caller that waited for the recompute instead would block on the gate.
        let served = tokio::time::timeout(Duration::from_secs(10), gated(cache, 1)).await;
        assert_eq!(
            served.expect("served without waiting"),
            "1 v1",
            "stale value served during the recompute"
        );
    }
    assert_eq!(
        GATED_RUNS.load(Ordering::SeqCst),
        2,
        "nobody else recomputed"
    );
    GATE.add_permits(1);
    assert_eq!(recompute.await.unwrap(), "1 v2");
    assert!(gated::is_cached(&b, 1).await.unwrap());
    assert_eq!(gated(&b, 1).await, "1 v2");
    assert_eq!(GATED_RUNS.load(Ordering::SeqCst), 2);

    // The stale-set race: a recompute that started before an invalidation must not be stored.
    assert!(gated::invalidate(&a, 2).await.is_ok());
    let slow_fill = {
        let a = a.clone();
        tokio::spawn(async move { gated(&a, 2).await })
    };
    wait_for(&GATED_RUNS, 3).await; // read v2, now waiting
    VERSION.store(3, Ordering::SeqCst);
    gated::invalidate(&b, 2).await.unwrap();
    GATE.add_permits(1);
    assert_eq!(
        slow_fill.await.unwrap(),
        "2 v2",
        "its own caller gets what it computed"
    );
    assert!(
        !gated::is_cached(&a, 2).await.unwrap(),
        "but it was not stored"
    );
    GATE.add_permits(1);
    assert_eq!(gated(&a, 2).await, "2 v3", "the next call recomputes");
    assert!(gated::is_cached(&b, 2).await.unwrap(), "and stores");
    assert_eq!(gated(&b, 2).await, "2 v3");
    assert_eq!(GATED_RUNS.load(Ordering::SeqCst), 4);

    // The same race against a function-wide invalidation (a generation bump).
    VERSION.store(4, Ordering::SeqCst);
    gated::invalidate_all(&a).await.unwrap();
    let slow_fill = {
        let a = a.clone();
        tokio::spawn(async move { gated(&a, 3).await })
    };
    wait_for(&GATED_RUNS, 5).await;
    VERSION.store(5, Ordering::SeqCst);
    gated::invalidate_all(&b).await.unwrap();
    GATE.add_permits(1);
    assert_eq!(slow_fill.await.unwrap(), "3 v4");
    assert!(
        !gated::is_cached(&b, 3).await.unwrap(),
        "stored under an old generation: stale"
    );
    GATE.add_permits(1);
    assert_eq!(gated(&b, 3).await, "3 v5");
    assert!(gated::is_cached(&a, 3).await.unwrap());
    assert_eq!(GATED_RUNS.load(Ordering::SeqCst), 6);
}

static HANG_RUNS: AtomicUsize = AtomicUsize::new(0);

/// The first run never ends; the second panics; later ones return.
#[memoize(cache = cache, skip = [cache])]
async fn troubled(cache: &Cache<Client>, id: u32) -> String {
    match HANG_RUNS.fetch_add(1, Ordering::SeqCst) {
        0 => std::future::pending::<()>().await,
        1 => panic!("the body panics"),
        _ => {}
    }
    format!("ok {id}")
}

/// A leader that is dropped (its task aborted) or panics releases its lease: the next caller,
/// in this process or another, recomputes and stores without waiting for the lease to expire
/// (`lease_wait` is shorter than `lease_ttl`: a lease left behind would make them run uncached
/// and store nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dropped_or_panicking_leaders_release_their_lease() {
    let server = common::server();
    let settings = |b: mcache_registry::CacheBuilder<Client>| {
        b.lease_ttl(Duration::from_secs(60))
            .lease_wait(Duration::from_secs(3))
            .build()
            .unwrap()
    };
    let a = settings(common::builder(&server).await);
    let b = settings(common::builder(&server).await);

    let leader = {
        let a = a.clone();
        tokio::spawn(async move { troubled(&a, 1).await })
    };
    wait_for(&HANG_RUNS, 1).await;
    let follower = {
        let a = a.clone();
        tokio::spawn(async move { troubled(&a, 1).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await; // let it join the flight
    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());
    // The follower takes over: it panics (run 2), a new call from the other process wins.
    assert!(follower.await.unwrap_err().is_panic());
    assert_eq!(troubled(&b, 1).await, "ok 1");
    assert_eq!(HANG_RUNS.load(Ordering::SeqCst), 3);
    assert!(
        troubled::is_cached(&a, 1).await.unwrap(),
        "stored under a fresh lease"
    );
    assert_eq!(troubled(&a, 1).await, "ok 1");
    assert_eq!(HANG_RUNS.load(Ordering::SeqCst), 3);
}

static EARLY_RUNS: AtomicUsize = AtomicUsize::new(0);
static EARLY_GATE: Semaphore = Semaphore::const_new(0);

/// Runs after the first wait for the gate.
#[memoize(cache = cache, ttl = 5)]
async fn early(cache: &Cache<Client>, id: u32) -> String {
    let run = EARLY_RUNS.fetch_add(1, Ordering::SeqCst) + 1;
    if run > 1 {
        EARLY_GATE.acquire().await.expect("gate open").forget();
    }
    format!("{id} run {run}")
}

/// Early recache (meta `R`): with 5 s to live and a 10 s window, the first reader after a fill
/// recomputes, and meanwhile everyone else, in any process, is served the live value.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn early_recache_serves_the_live_value_meanwhile() {
    let server = common::server();
    let window = |b: mcache_registry::CacheBuilder<Client>| {
        b.recache_before(Duration::from_secs(10)).build().unwrap()
    };
    let a = window(common::builder(&server).await);
    let b = window(common::builder(&server).await);
    assert_eq!(early(&a, 1).await, "1 run 1");
    let recache = {
        let b = b.clone();
        tokio::spawn(async move { early(&b, 1).await })
    };
    wait_for(&EARLY_RUNS, 2).await;
    // Bounded: a caller that waited for the recompute instead would block on the gate.
    let bounded = |f| tokio::time::timeout(Duration::from_secs(10), f);
    let from_a = bounded(early(&a, 1)).await.expect("served without waiting");
    assert_eq!(from_a, "1 run 1", "another process: the live value");
    let from_b = bounded(early(&b, 1)).await.expect("served without waiting");
    assert_eq!(from_b, "1 run 1", "same process: the live value");
    assert_eq!(EARLY_RUNS.load(Ordering::SeqCst), 2);
    EARLY_GATE.add_permits(1);
    assert_eq!(recache.await.unwrap(), "1 run 2");
    assert_eq!(
        early::cached(&a, 1).await.unwrap().as_deref(),
        Some("1 run 2")
    );
}
