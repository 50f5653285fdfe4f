//! What `#[memoize]` accepts, as people know it from the `cached` crate, against a real
//! memcached: one-line bodies without a lint, the cache as `&Cache`, `Cache` or `Arc<Cache>`,
//! `refresh` taking the function's own arguments, `replace` taking a borrowed form, a key
//! expression (`key = ...`, `convert = ...`), a time to live from the value (`ttl_fn`), the
//! hit flag (`Cached<T>`), and the per-function counters of `Cache::stats`.
//!
//! Every warning is an error here: generated code must not trigger a lint in the user's crate
//! (clippy's too, under the workspace's `clippy -D warnings`).
#![cfg(feature = "tokio")]
#![deny(warnings)]

mod common;

use mcache_registry::proto::MetaGetFlags;
use mcache_registry::tokio::Client;
use mcache_registry::{memoize, Cache, Cached, Memcache};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

static DOUBLES: AtomicUsize = AtomicUsize::new(0);

fn count(counter: &AtomicUsize) {
    counter.fetch_add(1, Ordering::SeqCst);
}

#[memoize(cache = cache)]
fn double(cache: &Cache<Client>, x: u32) -> u32 {
    count(&DOUBLES);
    x * 2
}

/// A one-line body (`unused_braces` fired on the expansion, and `cargo fix` then removed
/// these braces).
#[rustfmt::skip]
#[memoize(cache = cache)]
fn triple(cache: &Cache<Client>, x: u32) -> u32 { x * 3 }

#[rustfmt::skip]
#[memoize(cache = cache, key = [x])]
async fn times(cache: &Cache<Client>, x: u32, y: u32) -> u32 { x * y }

#[memoize(cache = cache)]
async fn by_value(cache: Cache<Client>, x: u32) -> u32 {
    x + 1
}

#[memoize(cache = cache)]
async fn by_arc(cache: Arc<Cache<Client>>, x: u32) -> u32 {
    x + 2
}

#[tokio::test]
async fn one_line_bodies_and_any_form_of_the_cache() {
    let server = common::server();
    let cache = common::cache(&server).await;
    assert_eq!(double(&cache, 4).await, 8);
    assert_eq!(double(&cache, 4).await, 8);
    assert_eq!(DOUBLES.load(Ordering::SeqCst), 1);
    assert_eq!(triple(&cache, 4).await, 12);
    assert_eq!(times(&cache, 4, 2).await, 8);
    assert_eq!(by_value(cache.clone(), 1).await, 2);
    assert!(by_value::is_cached(&cache, 1).await.unwrap());
    let shared = Arc::new(cache.clone());
    assert_eq!(by_arc(shared.clone(), 1).await, 3);
    assert!(by_arc::is_cached(&shared, 1).await.unwrap());
}

static SLOW: AtomicUsize = AtomicUsize::new(0);

#[memoize(cache = cache)]
async fn slow(cache: &Cache<Client>, id: u32) -> String {
    count(&SLOW);
    format!("row {id}")
}

#[tokio::test]
async fn refresh_takes_the_cache_once_and_replace_a_borrowed_form() {
    let server = common::server();
    let cache = common::cache(&server).await;
    assert_eq!(slow(&cache, 7).await, "row 7");
    assert_eq!(slow::refresh(&cache, 7).await, "row 7");
    assert_eq!(SLOW.load(Ordering::SeqCst), 2);
    slow::replace(&cache, 7, "edited").await.unwrap();
    assert_eq!(slow(&cache, 7).await, "edited");
    slow::replace(&cache, 7, &"owned".to_string())
        .await
        .unwrap();
    assert_eq!(
        slow::cached(&cache, 7).await.unwrap().as_deref(),
        Some("owned")
    );
    assert_eq!(SLOW.load(Ordering::SeqCst), 2);
}

static KEYED: AtomicUsize = AtomicUsize::new(0);

/// The key is an expression over the arguments (`cached`'s `convert`): case does not matter.
#[memoize(cache = cache, key = format!("{}:{lang}", user.to_lowercase()))]
async fn greeting(cache: &Cache<Client>, user: &str, lang: &str, request_id: u64) -> String {
    let _ = request_id;
    count(&KEYED);
    format!("hello {user} ({lang})")
}

/// `convert` is the same option, by its `cached` name.
#[memoize(cache = cache, convert = id / 10)]
async fn bucket(cache: &Cache<Client>, id: u32) -> u32 {
    id / 10
}

#[tokio::test]
async fn key_expressions() {
    let server = common::server();
    let cache = common::cache(&server).await;
    assert_eq!(greeting(&cache, "Bob", "en", 1).await, "hello Bob (en)");
    assert_eq!(greeting(&cache, "BOB", "en", 2).await, "hello Bob (en)");
    assert_eq!(KEYED.load(Ordering::SeqCst), 1);
    assert_eq!(greeting(&cache, "bob", "fr", 3).await, "hello bob (fr)");
    assert_eq!(KEYED.load(Ordering::SeqCst), 2);
    // The helpers take the arguments the key mentions.
    assert_eq!(
        greeting::key(&cache, "bOb", "en").unwrap().to_string(),
        "test:ergonomics::greeting:v1:s6:bob:en"
    );
    assert!(greeting::invalidate(&cache, "bob", "en").await.unwrap());
    assert_eq!(bucket(&cache, 42).await, 4);
    assert!(bucket::is_cached(&cache, 47).await.unwrap());
    assert_eq!(
        bucket::key(&cache, 40).unwrap().to_string(),
        "test:ergonomics::bucket:v1:i4"
    );
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Token {
    secret: String,
    valid_for: u64,
}

fn token_ttl(t: &Token) -> Duration {
    Duration::from_secs(t.valid_for)
}

#[memoize(cache = cache, ttl_fn = token_ttl)]
async fn token(
    cache: &Cache<Client>,
    scope: &str,
    valid_for: u64,
) -> Result<Token, std::io::Error> {
    Ok(Token {
        secret: format!("s-{scope}"),
        valid_for,
    })
}

#[memoize(cache = cache, ttl_fn = |v: &u64| Duration::from_secs(*v))]
async fn lives(cache: &Cache<Client>, secs: u64) -> u64 {
    secs
}

async fn ttl_of(cache: &Cache<Client>, key: mcache_registry::Key) -> i64 {
    let flags = MetaGetFlags {
        ttl: true,
        ..Default::default()
    };
    let r = cache.meta_get(key, flags).await.expect("mg");
    r.flags.ttl.expect("t flag")
}

#[tokio::test]
async fn time_to_live_from_the_value() {
    let server = common::server();
    let cache = common::cache(&server).await;
    token(&cache, "read", 120).await.unwrap();
    let ttl = ttl_of(&cache, token::key(&cache, "read", 120).unwrap()).await;
    assert!((110..=120).contains(&ttl), "ttl from the token: {ttl}");
    lives(&cache, 40).await;
    let ttl = ttl_of(&cache, lives::key(&cache, 40).unwrap()).await;
    assert!((30..=40).contains(&ttl), "ttl from a closure: {ttl}");
    // `replace` and `refresh` use it too.
    let t = Token {
        secret: "x".into(),
        valid_for: 600,
    };
    token::replace(&cache, "read", 120, &t).await.unwrap();
    let ttl = ttl_of(&cache, token::key(&cache, "read", 120).unwrap()).await;
    assert!((590..=600).contains(&ttl), "replace: {ttl}");
    lives::refresh(&cache, 40).await;
}

#[memoize(cache = cache)]
async fn flagged(cache: &Cache<Client>, id: u32) -> Cached<u32> {
    Cached::new(id)
}

#[memoize(cache = cache)]
async fn flagged_result(cache: &Cache<Client>, id: u32) -> Result<Cached<u32>, std::io::Error> {
    if id == 0 {
        return Err(std::io::Error::other("zero"));
    }
    Ok(Cached::new(id))
}

#[tokio::test]
async fn the_hit_flag() {
    let server = common::server();
    let cache = common::cache(&server).await;
    let first = flagged(&cache, 1).await;
    assert!(!first.was_cached);
    let second = flagged(&cache, 1).await;
    assert!(second.was_cached);
    assert_eq!(*second, 1);
    assert!(!flagged_result(&cache, 2).await.unwrap().was_cached);
    assert!(flagged_result(&cache, 2).await.unwrap().was_cached);
    assert!(flagged_result(&cache, 0).await.is_err());
}

static COUNTED: AtomicUsize = AtomicUsize::new(0);

#[memoize(cache = cache)]
async fn counted(cache: &Cache<Client>, id: u32) -> u32 {
    count(&COUNTED);
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_function_counters() {
    let server = common::server();
    let cache = common::breaker_cache(&server, 1, Duration::from_secs(600)).await;
    counted(&cache, 1).await;
    counted(&cache, 1).await;
    counted(&cache, 1).await;
    counted(&cache, 2).await;
    let stats = cache.stats().function(&counted::FUNCTION);
    assert_eq!((stats.hits, stats.misses, stats.calls()), (2, 2, 4));
    assert_eq!((stats.bypasses, stats.errors, stats.stale), (0, 0, 0));

    server.stop().unwrap();
    counted(&cache, 3).await; // fails: the breaker opens
    counted(&cache, 3).await; // bypassed
    server.cont().unwrap();
    let stats = cache.stats().function(&counted::FUNCTION);
    assert_eq!(stats.errors, 1, "{stats:?}");
    assert_eq!(stats.bypasses, 1, "{stats:?}");
    assert_eq!(stats.calls(), 6);
    assert_eq!(COUNTED.load(Ordering::SeqCst), 4);
    assert_eq!(cache.stats().total().calls(), 6);
    let disabled: Cache<Client> = Cache::disabled();
    counted(&disabled, 1).await;
    assert_eq!(disabled.stats().function(&counted::FUNCTION).bypasses, 1);
}

#[memoize(cache = cache)]
async fn contended(cache: &Cache<Client>, id: u32) -> u32 {
    id
}

/// Lease waits (another process is recomputing) and stale serves (stale-while-revalidate).
#[tokio::test]
async fn lease_waits_and_stale_serves_are_counted() {
    let server = common::server();
    let cache = common::builder(&server)
        .await
        .lease_wait(Duration::from_millis(50))
        .stale_while_revalidate(true)
        .build()
        .unwrap();
    // "Another process" takes the lease of a call that is not cached: this one waits, then
    // runs uncached.
    let key = contended::key(&cache, 1).unwrap();
    let lease = MetaGetFlags {
        vivify: Some(30),
        ..Default::default()
    };
    assert!(cache.meta_get(&key, lease).await.unwrap().flags.won);
    assert_eq!(contended(&cache, 1).await, 1);
    let stats = cache.stats().function(&contended::FUNCTION);
    assert_eq!((stats.lease_waits, stats.misses), (1, 1), "{stats:?}");

    // A cached call, invalidated (marked stale), whose recompute another process has won:
    // this one is served the stale value.
    assert_eq!(contended(&cache, 2).await, 2);
    assert!(contended::invalidate(&cache, 2).await.unwrap());
    let key = contended::key(&cache, 2).unwrap();
    assert!(cache.meta_get(&key, lease).await.unwrap().flags.won);
    assert_eq!(contended(&cache, 2).await, 2);
    let stats = cache.stats().function(&contended::FUNCTION);
    assert_eq!(stats.stale, 1, "{stats:?}");
}
