//! Invalidation against a real memcached: one call, a whole function, a whole namespace (O(1)
//! generation bumps), across "processes"; evicted generation counters never bring old entries
//! back; version bumps; replace and refresh through the key registry.
#![cfg(feature = "tokio")]

mod common;

use mcache_registry::shape::Plain;
use mcache_registry::tokio::Client;
use mcache_registry::{memoize, Args, Cache, Function, Memcache};
use std::sync::atomic::{AtomicUsize, Ordering};

static F_RUNS: AtomicUsize = AtomicUsize::new(0);
static G_RUNS: AtomicUsize = AtomicUsize::new(0);

#[memoize(cache = cache, skip = [cache])]
async fn f(cache: &Cache<Client>, id: u32) -> u32 {
    F_RUNS.fetch_add(1, Ordering::SeqCst);
    id * 10
}

#[memoize(cache = cache, skip = [cache])]
async fn g(cache: &Cache<Client>, id: u32) -> u32 {
    G_RUNS.fetch_add(1, Ordering::SeqCst);
    id * 100
}

fn runs() -> (usize, usize) {
    (F_RUNS.load(Ordering::SeqCst), G_RUNS.load(Ordering::SeqCst))
}

/// One test for `f` and `g`, so their counters are not shared between tests.
#[tokio::test]
async fn per_call_function_and_namespace_invalidation() {
    let server = common::server();
    let a = common::cache(&server).await;
    let b = common::cache(&server).await; // another process
    let other_ns = common::builder(&server)
        .await
        .namespace("other")
        .build()
        .unwrap();

    for cache in [&a, &b, &other_ns] {
        assert_eq!(f(cache, 1).await, 10);
        assert_eq!(f(cache, 2).await, 20);
        assert_eq!(g(cache, 1).await, 100);
    }
    assert_eq!(runs(), (4, 2), "`test` shared by a and b; `other` separate");

    // One call, from the other process.
    assert!(f::invalidate(&b, 1).await.unwrap());
    assert!(!f::invalidate(&b, 1).await.unwrap(), "nothing left to drop");
    assert_eq!(f(&a, 1).await, 10);
    assert_eq!(f(&a, 2).await, 20);
    assert_eq!(runs(), (5, 2));

    // A whole function: every call of f, in every process; g untouched.
    f::invalidate_all(&b).await.unwrap();
    assert!(!f::is_cached(&a, 1).await.unwrap());
    assert_eq!(f(&a, 1).await, 10);
    assert_eq!(f(&a, 2).await, 20);
    assert_eq!(g(&a, 1).await, 100);
    assert_eq!(runs(), (7, 2));
    assert_eq!(f(&b, 2).await, 20);
    assert_eq!(runs(), (7, 2));

    // A whole namespace: f and g in `test`, not in `other`.
    a.invalidate_namespace().await.unwrap();
    assert_eq!(f(&b, 1).await, 10);
    assert_eq!(g(&b, 1).await, 100);
    assert_eq!(runs(), (8, 3));
    assert_eq!(f(&other_ns, 1).await, 10);
    assert_eq!(g(&other_ns, 1).await, 100);
    assert_eq!(runs(), (8, 3), "other namespace still cached");
}

static E_RUNS: AtomicUsize = AtomicUsize::new(0);

#[memoize(cache = cache, skip = [cache])]
async fn evictable(cache: &Cache<Client>, id: u32) -> u32 {
    E_RUNS.fetch_add(1, Ordering::SeqCst);
    id
}

/// A generation counter that is evicted is recreated at a random value, never at the value
/// entries were stamped with: they must not come back.
#[tokio::test]
async fn evicted_generation_counters_never_bring_entries_back() {
    let server = common::server();
    let cache = common::builder(&server)
        .await
        .namespace("evict")
        .build()
        .unwrap();
    assert_eq!(evictable(&cache, 1).await, 1);
    assert_eq!(evictable(&cache, 1).await, 1);
    assert_eq!(E_RUNS.load(Ordering::SeqCst), 1);
    // Counters live where the docs say.
    assert!(cache
        .client()
        .expect("a client")
        .delete("evict:invalidation::evictable:!g")
        .await
        .unwrap());
    assert_eq!(evictable(&cache, 1).await, 1);
    assert_eq!(
        E_RUNS.load(Ordering::SeqCst),
        2,
        "function counter recreated: entry stale"
    );
    assert!(cache
        .client()
        .expect("a client")
        .delete("evict:!g")
        .await
        .unwrap());
    assert_eq!(evictable(&cache, 1).await, 1);
    assert_eq!(
        E_RUNS.load(Ordering::SeqCst),
        3,
        "namespace counter recreated: entry stale"
    );
    assert_eq!(evictable(&cache, 1).await, 1);
    assert_eq!(E_RUNS.load(Ordering::SeqCst), 3);
}

static V_RUNS: AtomicUsize = AtomicUsize::new(0);

#[tokio::test]
async fn version_bump_changes_every_key() {
    let server = common::server();
    let cache = common::cache(&server).await;
    const V1: Function = Function::new("invalidation::report");
    const V2: Function = V1.with_version(2);
    let args = Args::new().with("q1").unwrap();
    let compute = |tag: &'static str| {
        V_RUNS.fetch_add(1, Ordering::SeqCst);
        std::future::ready(tag.to_string())
    };
    assert_eq!(
        cache
            .memoize::<Plain<String>, _, _>(&V1, &args, || compute("old"))
            .await,
        "old"
    );
    assert_eq!(
        cache
            .memoize::<Plain<String>, _, _>(&V1, &args, || compute("old"))
            .await,
        "old"
    );
    assert_eq!(V_RUNS.load(Ordering::SeqCst), 1);
    assert_eq!(
        cache
            .memoize::<Plain<String>, _, _>(&V2, &args, || compute("new"))
            .await,
        "new"
    );
    assert_eq!(
        cache
            .memoize::<Plain<String>, _, _>(&V2, &args, || compute("new"))
            .await,
        "new"
    );
    assert_eq!(
        V_RUNS.load(Ordering::SeqCst),
        2,
        "v2 computed once, under its own key"
    );
    assert_ne!(cache.key(&V1, &args), cache.key(&V2, &args));
    assert!(cache.key(&V2, &args).to_string().contains(":v2:"));
}

static R_RUNS: AtomicUsize = AtomicUsize::new(0);

#[memoize(cache = cache, skip = [cache], version = 3, ttl = 120)]
async fn profile(cache: &Cache<Client>, user: &str) -> Option<String> {
    let n = R_RUNS.fetch_add(1, Ordering::SeqCst);
    (user != "nobody").then(|| format!("{user} #{n}"))
}

#[tokio::test]
async fn replace_refresh_and_cached_through_the_registry() {
    let server = common::server();
    let a = common::cache(&server).await;
    let b = common::cache(&server).await;
    assert_eq!(profile::cached(&a, "ann").await.unwrap(), None);
    assert_eq!(profile(&a, "ann").await.as_deref(), Some("ann #0"));
    assert_eq!(
        profile::cached(&b, "ann").await.unwrap().as_deref(),
        Some("ann #0")
    );
    assert!(profile::key(&a, "ann")
        .unwrap()
        .to_string()
        .contains(":v3:"));

    // Replace (from the other process): the next call returns it without running.
    profile::replace(&b, "ann", &"ann (edited)".to_string())
        .await
        .unwrap();
    assert_eq!(profile(&a, "ann").await.as_deref(), Some("ann (edited)"));
    assert_eq!(R_RUNS.load(Ordering::SeqCst), 1);

    // Refresh: recompute and store, whatever is cached.
    assert_eq!(profile::refresh(&a, "ann").await.as_deref(), Some("ann #1"));
    assert_eq!(profile(&b, "ann").await.as_deref(), Some("ann #1"));
    assert_eq!(R_RUNS.load(Ordering::SeqCst), 2);

    // The entry's TTL is the function's.
    let ttl = a
        .client()
        .expect("a client")
        .meta_get(
            profile::key(&a, "ann").unwrap(),
            mcache_registry::proto::MetaGetFlags {
                ttl: true,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .flags
        .ttl
        .unwrap();
    assert!((100..=120).contains(&ttl), "{ttl}");

    // A refresh that yields None (not cached by default) leaves nothing behind.
    assert_eq!(profile::refresh(&a, "nobody").await, None);
    assert!(!profile::is_cached(&a, "nobody").await.unwrap());
    assert_eq!(profile(&a, "nobody").await, None);
    assert_eq!(R_RUNS.load(Ordering::SeqCst), 4);
}

/// The plain commands are on the handle (it implements `Memcache`), outside any namespace.
#[tokio::test]
async fn direct_commands_on_the_handle() {
    let server = common::server();
    let cache = common::cache(&server).await;
    cache.set("plain", "a", 0).await.unwrap();
    assert!(cache.append("plain", "b").await.unwrap());
    assert!(cache.replace("plain", "c", 0).await.unwrap());
    assert!(cache.prepend("plain", "0").await.unwrap());
    assert_eq!(cache.get("plain").await.unwrap().unwrap().data, "0c");
    assert!(cache.delete("plain").await.unwrap());
    cache.set("plain", "x", 0).await.unwrap();
    cache.flush_all(None).await.unwrap();
    assert!(cache.get("plain").await.unwrap().is_none());
}
