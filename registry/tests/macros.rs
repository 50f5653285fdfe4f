//! What `#[memoize]` accepts and generates, against a real memcached: sync functions (which
//! become async), `Option`/`Result` results and negative caching, `key`/`skip`, methods with
//! `self_key` and `skip_self` (shared, `&mut` and by-value receivers), associated functions,
//! `impl`-level defaults and the global cache.
#![cfg(feature = "tokio")]

mod common;

use mcache_registry::proto::MetaGetFlags;
use mcache_registry::tokio::Client;
use mcache_registry::{memoize, Cache, Memcache};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

async fn ttl_of(cache: &Cache<Client>, key: mcache_registry::Key) -> i64 {
    let flags = MetaGetFlags {
        ttl: true,
        ..Default::default()
    };
    cache
        .client()
        .expect("a client")
        .meta_get(key, flags)
        .await
        .expect("mg")
        .flags
        .ttl
        .expect("t flag returned")
}

static SYNC_RUNS: AtomicUsize = AtomicUsize::new(0);

/// A sync function: memoized, it becomes async (as in txcaching).
#[memoize(cache = cache, skip = [cache], ttl = Duration::from_secs(90))]
fn square(cache: &Cache<Client>, mut x: u64) -> u64 {
    SYNC_RUNS.fetch_add(1, Ordering::SeqCst);
    x *= x;
    x
}

#[tokio::test]
async fn sync_functions_become_async() {
    let server = common::server();
    let cache = common::cache(&server).await;
    assert_eq!(square(&cache, 12).await, 144);
    assert_eq!(square(&cache, 12).await, 144);
    assert_eq!(SYNC_RUNS.load(Ordering::SeqCst), 1);
    assert_eq!(square::refresh(&cache, 12).await, 144);
    assert_eq!(SYNC_RUNS.load(Ordering::SeqCst), 2);
    let ttl = ttl_of(&cache, square::key(&cache, 12).unwrap()).await;
    assert!(
        (80..=90).contains(&ttl),
        "ttl from a Duration expression: {ttl}"
    );
}

static OPT_RUNS: AtomicUsize = AtomicUsize::new(0);
static NEG_RUNS: AtomicUsize = AtomicUsize::new(0);

#[memoize(cache = cache, skip = [cache])]
async fn find(cache: &Cache<Client>, name: &str) -> Option<u32> {
    OPT_RUNS.fetch_add(1, Ordering::SeqCst);
    name.parse().ok()
}

#[memoize(cache = cache, skip = [cache], ttl = 600, cache_none, negative_ttl = 5)]
async fn find_negative(cache: &Cache<Client>, name: &str) -> Option<u32> {
    NEG_RUNS.fetch_add(1, Ordering::SeqCst);
    name.parse().ok()
}

#[tokio::test]
async fn none_is_cached_only_when_asked_with_its_own_ttl() {
    let server = common::server();
    let cache = common::cache(&server).await;
    for _ in 0..2 {
        assert_eq!(find(&cache, "7").await, Some(7));
        assert_eq!(find(&cache, "x").await, None);
    }
    assert_eq!(OPT_RUNS.load(Ordering::SeqCst), 3, "Some cached, None not");
    assert_eq!(find::cached(&cache, "7").await.unwrap(), Some(7));

    for _ in 0..2 {
        assert_eq!(find_negative(&cache, "7").await, Some(7));
        assert_eq!(find_negative(&cache, "x").await, None);
    }
    assert_eq!(NEG_RUNS.load(Ordering::SeqCst), 2, "None cached too");
    assert_eq!(
        find_negative::cached(&cache, "x").await.unwrap(),
        Some(None)
    );
    let neg = ttl_of(&cache, find_negative::key(&cache, "x").unwrap()).await;
    let pos = ttl_of(&cache, find_negative::key(&cache, "7").unwrap()).await;
    assert!((1..=5).contains(&neg), "negative ttl {neg}");
    assert!((590..=600).contains(&pos), "positive ttl {pos}");
    // replace takes the stored entry: here the whole Option.
    find_negative::replace(&cache, "x", &Some(99))
        .await
        .unwrap();
    assert_eq!(find_negative(&cache, "x").await, Some(99));
}

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct NotFound(String);

static RES_RUNS: AtomicUsize = AtomicUsize::new(0);
static ERR_RUNS: AtomicUsize = AtomicUsize::new(0);

#[memoize(cache = cache, skip = [cache])]
async fn load(cache: &Cache<Client>, id: i64) -> Result<String, std::io::Error> {
    RES_RUNS.fetch_add(1, Ordering::SeqCst);
    if id < 0 {
        return Err(std::io::Error::other("negative id"));
    }
    Ok(format!("item {id}"))
}

#[memoize(cache = cache, skip = [cache], cache_err, negative_ttl = 3)]
async fn load_err(cache: &Cache<Client>, id: i64) -> Result<String, NotFound> {
    ERR_RUNS.fetch_add(1, Ordering::SeqCst);
    if id < 0 {
        Err(NotFound(format!("{id}")))?;
    }
    Ok(format!("item {id}"))
}

#[tokio::test]
async fn errors_are_cached_only_when_asked() {
    let server = common::server();
    let cache = common::cache(&server).await;
    for _ in 0..2 {
        assert_eq!(load(&cache, 1).await.unwrap(), "item 1");
        assert!(load(&cache, -1).await.is_err());
    }
    assert_eq!(
        RES_RUNS.load(Ordering::SeqCst),
        3,
        "Ok cached, Err not (and E needs no serde)"
    );
    assert_eq!(
        load::cached(&cache, 1).await.unwrap().as_deref(),
        Some("item 1")
    );

    for _ in 0..2 {
        assert_eq!(load_err(&cache, 1).await, Ok("item 1".into()));
        assert_eq!(load_err(&cache, -1).await, Err(NotFound("-1".into())));
    }
    assert_eq!(ERR_RUNS.load(Ordering::SeqCst), 2);
    let neg = ttl_of(&cache, load_err::key(&cache, -1).unwrap()).await;
    assert!((1..=3).contains(&neg), "negative ttl {neg}");
}

static KEY_RUNS: AtomicUsize = AtomicUsize::new(0);

/// Only `id` is keyed: `trace` does not change the result.
#[memoize(cache = cache, key = [id])]
async fn keyed(cache: &Cache<Client>, id: u32, trace: &str) -> u32 {
    let _ = trace;
    KEY_RUNS.fetch_add(1, Ordering::SeqCst);
    id
}

#[tokio::test]
async fn key_and_skip_choose_the_arguments() {
    let server = common::server();
    let cache = common::cache(&server).await;
    assert_eq!(keyed(&cache, 1, "a").await, 1);
    assert_eq!(keyed(&cache, 1, "b").await, 1);
    assert_eq!(KEY_RUNS.load(Ordering::SeqCst), 1);
    // Helpers take the keyed arguments only; refresh takes them all.
    assert_eq!(
        keyed::key(&cache, 1).unwrap().to_string(),
        "test:macros::keyed:v1:i1"
    );
    assert_eq!(keyed::refresh(&cache, 1, "c").await, 1);
    assert_eq!(KEY_RUNS.load(Ordering::SeqCst), 2);
}

struct Repo {
    tenant: String,
    cache: Cache<Client>,
    reads: AtomicUsize,
    writes: u32,
}

#[memoize(cache = self.cache, ttl = 300)]
impl Repo {
    /// Keyed by tenant: each tenant's rows are their own.
    #[memoize(self_key = [self.tenant])]
    async fn row(&self, id: u32) -> String {
        self.reads.fetch_add(1, Ordering::SeqCst);
        format!("{}/{id}", self.tenant)
    }

    /// Does not depend on `self`.
    #[memoize(skip_self, ttl = 30)]
    fn schema_version(&self) -> u32 {
        self.reads.fetch_add(1, Ordering::SeqCst);
        3
    }

    /// `&mut self`: the cache handle is cloned before the body borrows `self`.
    #[memoize(self_key = [self.tenant])]
    async fn bump(&mut self, by: u32) -> u32 {
        self.writes += by;
        self.writes
    }

    /// By value.
    #[memoize(skip_self)]
    async fn consume(self, id: u32) -> u32 {
        drop(self);
        id + 1
    }

    /// An associated function: its helpers take the cache.
    #[memoize(cache = cache)]
    async fn lookup(cache: &Cache<Client>, id: u32) -> u32 {
        id * 2
    }

    fn new(tenant: &str, cache: &Cache<Client>) -> Repo {
        Repo {
            tenant: tenant.into(),
            cache: cache.clone(),
            reads: AtomicUsize::new(0),
            writes: 0,
        }
    }
}

#[tokio::test]
async fn methods_with_self_key_and_skip_self() {
    let server = common::server();
    let cache = common::cache(&server).await;
    let acme = Repo::new("acme", &cache);
    let acme2 = Repo::new("acme", &cache);
    let initech = Repo::new("initech", &cache);
    assert_eq!(acme.row(1).await, "acme/1");
    assert_eq!(acme2.row(1).await, "acme/1");
    assert_eq!(
        acme2.reads.load(Ordering::SeqCst),
        0,
        "same tenant: shared entry"
    );
    assert_eq!(initech.row(1).await, "initech/1");
    assert_eq!(initech.reads.load(Ordering::SeqCst), 1);
    assert_eq!(
        acme.row_key(1).unwrap().to_string(),
        "test:macros::Repo::row:v1:s4:acme:i1"
    );
    let ttl = ttl_of(&cache, acme.row_key(1).unwrap()).await;
    assert!((290..=300).contains(&ttl), "impl-level ttl: {ttl}");

    assert_eq!(acme.schema_version().await, 3);
    assert_eq!(initech.schema_version().await, 3);
    assert_eq!(
        initech.reads.load(Ordering::SeqCst),
        1,
        "skip_self: one entry for all"
    );
    assert_eq!(
        initech.schema_version_key().unwrap().to_string(),
        "test:macros::Repo::schema_version:v1"
    );
    let ttl = ttl_of(&cache, acme.schema_version_key().unwrap()).await;
    assert!(
        (20..=30).contains(&ttl),
        "method ttl over the impl's: {ttl}"
    );

    let mut writer = Repo::new("w", &cache);
    assert_eq!(writer.bump(2).await, 2);
    assert_eq!(writer.bump(2).await, 2, "cached");
    assert_eq!(writer.bump_refresh(2).await, 4);
    assert_eq!(writer.bump(2).await, 4);
    assert!(writer.bump_invalidate(2).await.unwrap());
    assert_eq!(writer.bump(2).await, 6);

    assert_eq!(Repo::new("x", &cache).consume(1).await, 2);
    assert!(Repo::new("y", &cache).consume_is_cached(1).await.unwrap());

    assert_eq!(Repo::lookup(&cache, 4).await, 8);
    assert!(Repo::lookup_is_cached(&cache, 4).await.unwrap());
    assert_eq!(
        Repo::lookup_key(&cache, 4).unwrap().to_string(),
        "test:macros::Repo::lookup:v1:i4"
    );

    // Registry helpers on methods.
    acme.row_replace(1, &"edited".to_string()).await.unwrap();
    assert_eq!(initech.row(1).await, "initech/1");
    assert_eq!(acme2.row(1).await, "edited");
    acme.row_invalidate_all().await.unwrap();
    assert_eq!(acme.row_cached(1).await.unwrap(), None);
    assert_eq!(acme2.row(1).await, "acme/1");
}

static GLOBAL_RUNS: AtomicUsize = AtomicUsize::new(0);

/// No `cache = ...`: the global cache.
#[memoize(ttl = 60)]
async fn with_global(x: u32) -> u32 {
    GLOBAL_RUNS.fetch_add(1, Ordering::SeqCst);
    x + 1
}

#[tokio::test]
async fn global_cache() {
    let server = common::server();
    // Before install: runs uncached, helpers report it.
    assert_eq!(with_global(1).await, 2);
    assert_eq!(with_global(1).await, 2);
    assert_eq!(GLOBAL_RUNS.load(Ordering::SeqCst), 2);
    let cache = common::cache(&server).await;
    mcache_registry::install_global(cache).unwrap();
    let global = mcache_registry::global().unwrap();
    assert_eq!(with_global(1).await, 2);
    assert_eq!(with_global(1).await, 2);
    assert_eq!(GLOBAL_RUNS.load(Ordering::SeqCst), 3);
    assert!(with_global::is_cached(global, 1).await.unwrap());
}

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Report {
    title: String,
    lines: Vec<String>,
}

#[memoize(cache = cache)]
async fn report(cache: &Cache<Client>, lines: usize) -> Report {
    Report {
        title: "weekly".into(),
        lines: (0..lines)
            .map(|i| format!("line {i} of the report"))
            .collect(),
    }
}

/// JSON values are plain JSON after the 24-byte header (stamp and type fingerprint), and a reader decodes with the codec
/// recorded in the flags, whatever its own setting.
#[tokio::test]
async fn codecs_are_recorded_in_the_flags() {
    let server = common::server();
    let json = common::builder(&server)
        .await
        .codec(mcache_registry::Codec::Json)
        .build()
        .unwrap();
    let postcard = common::cache(&server).await;
    let written = report(&json, 2).await;
    let raw = json
        .get(report::key(&json, 2).unwrap())
        .await
        .unwrap()
        .expect("stored");
    let body: serde_json::Value = serde_json::from_slice(&raw.data[24..]).unwrap();
    assert_eq!(body["title"], "weekly");
    assert_eq!(raw.flags & 0xF, 2, "codec 2: JSON");
    assert_eq!(report::cached(&postcard, 2).await.unwrap(), Some(written));
}

/// lz4 (feature `lz4`): large payloads are stored compressed, and read back.
#[cfg(feature = "lz4")]
#[tokio::test]
async fn large_values_are_compressed() {
    let server = common::server();
    let cache = common::builder(&server)
        .await
        .compress_above(256)
        .build()
        .unwrap();
    let big = report(&cache, 500).await;
    let raw = cache
        .get(report::key(&cache, 500).unwrap())
        .await
        .unwrap()
        .expect("stored");
    assert_ne!(raw.flags & 0x10, 0, "compressed bit");
    assert!(
        raw.data.len() < 4_000,
        "{} bytes stored (about 11 KB uncompressed)",
        raw.data.len()
    );
    assert_eq!(report::cached(&cache, 500).await.unwrap(), Some(big));
    let small = report(&cache, 1).await;
    let raw = cache
        .get(report::key(&cache, 1).unwrap())
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(raw.flags & 0x10, 0, "small values stay uncompressed");
    assert_eq!(report::cached(&cache, 1).await.unwrap(), Some(small));
}
