//! The async and the sync form of `#[memoize]` over one real memcached, as an async service
//! and a sync service sharing it would be: the same function (the same path: the two
//! `price`s below are nested in function bodies of this module, so both are
//! `cross_form::price`) has the same keys in both forms, so a value memoized by either is a
//! hit for the other, generations bumped by either drop the other's entries, a value
//! replaced by either is what the other reads, and a recompute running in one form is
//! waited for (through the lease) by the other.
#![cfg(all(feature = "tokio", feature = "blocking"))]

use mcache_registry::blocking::{self, Blocking};
use mcache_registry::tokio::{Client, Connect};
use mcache_registry::{memoize, Cache};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Quote {
    sku: u32,
    cents: u64,
}

/// What `price` computes, in both services; skus from 100 on are slow.
fn quote(sku: u32) -> Quote {
    if sku >= 100 {
        thread::sleep(Duration::from_millis(300));
    }
    Quote {
        sku,
        cents: u64::from(sku) * 250,
    }
}

static ASYNC_RUNS: AtomicUsize = AtomicUsize::new(0);
static SYNC_RUNS: AtomicUsize = AtomicUsize::new(0);

/// One service's `price` and its key registry, behind closures.
struct Service {
    call: Box<dyn Fn(u32) -> Quote + Send + Sync>,
    key: Box<dyn Fn(u32) -> String + Send + Sync>,
    replace: Box<dyn Fn(u32, Quote) + Send + Sync>,
    invalidate_all: Box<dyn Fn() + Send + Sync>,
}

/// The async service: `price` is an `async fn` over the tokio client.
fn async_service(rt: Arc<tokio::runtime::Runtime>, cache: Cache<Client>) -> Service {
    #[memoize(cache = cache, ttl = 60)]
    async fn price(cache: &Cache<Client>, sku: u32) -> Quote {
        ASYNC_RUNS.fetch_add(1, Ordering::SeqCst);
        quote(sku)
    }
    let (rt2, rt3) = (rt.clone(), rt.clone());
    let (c1, c2, c3, c4) = (cache.clone(), cache.clone(), cache.clone(), cache);
    Service {
        call: Box::new(move |sku| rt.block_on(price(&c1, sku))),
        key: Box::new(move |sku| price::key(&c2, sku).expect("a key").to_string()),
        replace: Box::new(move |sku, q| {
            rt2.block_on(price::replace(&c3, sku, &q)).expect("replace")
        }),
        invalidate_all: Box::new(move || {
            rt3.block_on(price::invalidate_all(&c4))
                .expect("invalidate_all")
        }),
    }
}

/// The sync service: `price` is a plain `fn` over the blocking client.
fn sync_service(cache: Cache<Blocking>) -> Service {
    #[blocking::memoize(cache = cache, ttl = 60)]
    fn price(cache: &Cache<Blocking>, sku: u32) -> Quote {
        SYNC_RUNS.fetch_add(1, Ordering::SeqCst);
        quote(sku)
    }
    let (c1, c2, c3, c4) = (cache.clone(), cache.clone(), cache.clone(), cache);
    Service {
        call: Box::new(move |sku| price(&c1, sku)),
        key: Box::new(move |sku| price::key(&c2, sku).expect("a key").to_string()),
        replace: Box::new(move |sku, q| price::replace(&c3, sku, &q).expect("replace")),
        invalidate_all: Box::new(move || price::invalidate_all(&c4).expect("invalidate_all")),
    }
}

/// Runs of the async and of the sync `price`.
fn runs() -> (usize, usize) {
    (
        ASYNC_RUNS.load(Ordering::SeqCst),
        SYNC_RUNS.load(Ordering::SeqCst),
    )
}

fn total((a, s): (usize, usize)) -> usize {
    a + s
}

#[test]
fn each_form_hits_what_the_other_memoized() {
    let server = mcache_testkit::Memcached::start().expect("memcached starts");
    let addr = server.host_port_string();
    let rt = Arc::new(tokio::runtime::Runtime::new().expect("a tokio runtime"));
    let async_client = rt
        .block_on(Client::connect(addr.as_str()))
        .expect("connects");
    let sync_client = blocking::Client::connect(addr.as_str()).expect("connects");
    let a = async_service(rt, Cache::new(async_client, "shop").expect("namespace"));
    let s = sync_service(Cache::new(Blocking::new(sync_client), "shop").expect("namespace"));

    assert_eq!((a.key)(1), "shop:cross_form::price:v1:i1");
    assert_eq!((s.key)(1), (a.key)(1), "one key in both forms");

    // Each form in turn writes (runs `price` once), and the other reads: a hit, no run.
    for (sku, writer, reader, what) in [(1, &a, &s, "async → sync"), (2, &s, &a, "sync → async")]
    {
        let before = runs();
        assert_eq!((writer.call)(sku), quote(sku));
        assert_eq!(total(runs()), total(before) + 1, "{what}: the writer ran");
        assert_eq!((reader.call)(sku), quote(sku));
        assert_eq!(total(runs()), total(before) + 1, "{what}: the reader hit");
    }
    assert_eq!(runs(), (1, 1), "one run in each form");

    // A generation bumped by one form drops the other's entries, and a value replaced by
    // one form is what the other reads.
    for (sku, bumper, reader, what) in [(1, &s, &a, "sync → async"), (2, &a, &s, "async → sync")]
    {
        let before = total(runs());
        (bumper.invalidate_all)();
        assert_eq!((reader.call)(sku), quote(sku));
        assert_eq!(
            total(runs()),
            before + 1,
            "{what}: recomputed after the bump"
        );
        let special = Quote { sku, cents: 1 };
        (bumper.replace)(sku, special.clone());
        assert_eq!((reader.call)(sku), special, "{what}: the replaced value");
        assert_eq!(total(runs()), before + 1, "{what}: read, not run");
    }
    assert_eq!(runs(), (2, 2), "each form recomputed once");

    // A slow recompute in either form is shared with the other through the lease.
    let before = runs();
    let barrier = Barrier::new(4);
    thread::scope(|scope| {
        for service in [&a, &a, &s, &s] {
            let barrier = &barrier;
            scope.spawn(move || {
                barrier.wait();
                assert_eq!((service.call)(100), quote(100));
            });
        }
    });
    let after = runs();
    assert_eq!(
        total(after),
        total(before) + 1,
        "one recompute for both forms: {before:?} → {after:?}"
    );
}
