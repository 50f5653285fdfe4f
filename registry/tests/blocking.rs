//! The sync form of `#[memoize]` (`mcache_registry::blocking::memoize`) against a real
//! memcached: plain functions that stay plain, their hits and misses, the key registry
//! (key, is_cached, cached, replace, invalidate, refresh, invalidate_all), generations,
//! methods, single flight across threads, leases across two caches, a lease released when its
//! holder panics, the circuit breaker with memcached stopped, `Cache::disabled()` and the
//! global blocking cache. Each test has a memcached of its own and functions of its own.
#![cfg(feature = "blocking")]

use mcache_registry::blocking::{block_on, memoize, Blocking, Client};
use mcache_registry::{Cache, Error};
use mcache_testkit::Memcached;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

fn server() -> Memcached {
    Memcached::start().expect("memcached starts (is the `memcached` package installed?)")
}

fn client(server: &Memcached, request_timeout: Duration) -> Client {
    Client::builder()
        .server(server.host_port_string())
        .request_timeout(Some(request_timeout))
        .build()
        .expect("client connects")
}

fn cache(server: &Memcached) -> Cache<Blocking> {
    let client = client(server, Duration::from_secs(1));
    Cache::new(Blocking::new(client), "test").expect("valid namespace")
}

fn count(runs: &AtomicUsize) -> usize {
    runs.load(Ordering::SeqCst)
}

static SQUARES: AtomicUsize = AtomicUsize::new(0);

#[memoize(cache = cache, ttl = 60)]
fn square(cache: &Cache<Blocking>, x: u64) -> u64 {
    SQUARES.fetch_add(1, Ordering::SeqCst);
    x * x
}

/// Calls another memoized function from its body: `block_on` nests.
#[memoize(cache = cache, ttl = 60)]
fn sum_of_squares(cache: &Cache<Blocking>, a: u64, b: u64) -> u64 {
    square(cache, a) + square(cache, b)
}

#[test]
fn hits_misses_and_the_key_registry() {
    let server = server();
    let cache = cache(&server);
    let runs = || count(&SQUARES);

    assert_eq!(square(&cache, 3), 9);
    assert_eq!(square(&cache, 3), 9);
    assert_eq!(runs(), 1, "the second call was a hit");
    assert_eq!(square(&cache, 4), 16);
    assert_eq!(runs(), 2, "other arguments, another key");

    let key = square::key(&cache, 3).expect("a key");
    assert_eq!(key.to_string(), "test:blocking::square:v1:i3");
    assert!(square::is_cached(&cache, 3).expect("is_cached"));
    assert!(!square::is_cached(&cache, 5).expect("is_cached"));
    assert_eq!(square::cached(&cache, 3).expect("cached"), Some(9));
    assert_eq!(square::cached(&cache, 5).expect("cached"), None);

    square::replace(&cache, 3, &100_u64).expect("replace");
    assert_eq!(
        square(&cache, 3),
        100,
        "the replaced value, without running"
    );
    assert_eq!(runs(), 2);
    assert!(square::invalidate(&cache, 3).expect("invalidate"));
    assert!(
        !square::invalidate(&cache, 3).expect("invalidate"),
        "already gone"
    );
    assert_eq!(square(&cache, 3), 9);
    assert_eq!(runs(), 3, "invalidated: ran again");

    square::replace(&cache, 3, &7_u64).expect("replace");
    assert_eq!(square::refresh(&cache, 3), 9, "refresh runs the function");
    assert_eq!(runs(), 4);
    assert_eq!(square(&cache, 3), 9, "and stores its result");
    assert_eq!(runs(), 4);

    square::invalidate_all(&cache).expect("invalidate_all");
    assert_eq!(square(&cache, 3), 9);
    assert_eq!(square(&cache, 4), 16);
    assert_eq!(
        runs(),
        6,
        "a generation bump drops every call of the function"
    );
    block_on(cache.invalidate_namespace()).expect("invalidate_namespace");
    assert_eq!(square(&cache, 4), 16);
    assert_eq!(runs(), 7, "and one of the namespace drops everything in it");

    assert_eq!(sum_of_squares(&cache, 3, 4), 25, "memoized calls nest");
    assert_eq!(runs(), 8, "square(3) ran, square(4) was cached");
    assert_eq!(sum_of_squares(&cache, 3, 4), 25);
    assert_eq!(runs(), 8, "the sum was cached");

    // `refresh` is not a memoized call: 11 calls, 8 runs.
    let stats = cache.stats().function(&square::FUNCTION);
    assert_eq!(
        (stats.misses, stats.hits, stats.errors),
        (7, 4, 0),
        "{stats:?}"
    );
    let sums = cache.stats().function(&sum_of_squares::FUNCTION);
    assert_eq!((sums.misses, sums.hits), (1, 1), "{sums:?}");
}

static EMAILS: AtomicUsize = AtomicUsize::new(0);

struct Db {
    cache: Cache<Blocking>,
    tenant: u32,
}

#[memoize(cache = self.cache, ttl = 60)]
impl Db {
    /// `None` is not cached; the tenant is part of the key.
    #[memoize(self_key = [self.tenant])]
    fn email(&self, user: &str) -> Option<String> {
        EMAILS.fetch_add(1, Ordering::SeqCst);
        (user != "nobody").then(|| format!("{user}@{}.example", self.tenant))
    }

    /// An associated function takes its cache as an argument.
    #[memoize(cache = cache)]
    fn greeting(cache: &Cache<Blocking>, name: &str) -> String {
        format!("hello {name}")
    }
}

#[test]
fn methods_and_associated_functions() {
    let server = server();
    let cache = cache(&server);
    let db = Db {
        cache: cache.clone(),
        tenant: 7,
    };
    let other = Db {
        cache: cache.clone(),
        tenant: 8,
    };
    assert_eq!(db.email("bob").as_deref(), Some("bob@7.example"));
    assert_eq!(db.email("bob").as_deref(), Some("bob@7.example"));
    assert_eq!(count(&EMAILS), 1);
    assert_eq!(other.email("bob").as_deref(), Some("bob@8.example"));
    assert_eq!(count(&EMAILS), 2, "the tenant is keyed");
    assert_eq!(db.email("nobody"), None);
    assert_eq!(db.email("nobody"), None);
    assert_eq!(count(&EMAILS), 4, "None is not cached");

    assert!(db.email_is_cached("bob").expect("is_cached"));
    assert_eq!(
        db.email_key("bob").expect("a key").to_string(),
        "test:blocking::Db::email:v1:i7:s3:bob"
    );
    db.email_replace("bob", "bob@new.example").expect("replace");
    assert_eq!(db.email("bob").as_deref(), Some("bob@new.example"));
    assert!(db.email_invalidate("bob").expect("invalidate"));
    assert_eq!(db.email("bob").as_deref(), Some("bob@7.example"));
    assert_eq!(count(&EMAILS), 5);

    assert_eq!(Db::greeting(&cache, "ann"), "hello ann");
    assert!(Db::greeting_is_cached(&cache, "ann").expect("is_cached"));
    assert!(Db::greeting_invalidate(&cache, "ann").expect("invalidate"));
}

/// A slow computation of `value`, counted in `runs`.
fn slowly(runs: &AtomicUsize, value: u32) -> u32 {
    runs.fetch_add(1, Ordering::SeqCst);
    thread::sleep(Duration::from_millis(300));
    value
}

static SLOW_RUNS: AtomicUsize = AtomicUsize::new(0);

#[memoize(cache = cache, ttl = 60)]
fn slow(cache: &Cache<Blocking>, x: u32) -> u32 {
    slowly(&SLOW_RUNS, x + 1)
}

#[test]
fn concurrent_identical_misses_on_threads_run_once() {
    let server = server();
    let cache = cache(&server);
    const THREADS: usize = 16;
    let barrier = Barrier::new(THREADS);
    thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                barrier.wait();
                assert_eq!(slow(&cache, 1), 2);
            });
        }
    });
    assert_eq!(count(&SLOW_RUNS), 1, "one run for {THREADS} threads");
    let stats = cache.stats().function(&slow::FUNCTION);
    assert_eq!(
        (stats.misses, stats.hits),
        (1, THREADS as u64 - 1),
        "{stats:?}"
    );
}

static LEASED_RUNS: AtomicUsize = AtomicUsize::new(0);

#[memoize(cache = cache, ttl = 60)]
fn leased(cache: &Cache<Blocking>, x: u32) -> u32 {
    slowly(&LEASED_RUNS, x * 10)
}

#[test]
fn two_caches_share_one_recompute_through_the_lease() {
    let server = server();
    // Two caches over two clients: no in-process flight in common, as in two processes.
    let (a, b) = (cache(&server), cache(&server));
    const EACH: usize = 6;
    let barrier = &Barrier::new(2 * EACH);
    thread::scope(|s| {
        for cache in [&a, &b] {
            for _ in 0..EACH {
                s.spawn(move || {
                    barrier.wait();
                    assert_eq!(leased(cache, 4), 40);
                });
            }
        }
    });
    assert_eq!(
        count(&LEASED_RUNS),
        1,
        "one recompute between the two caches"
    );
    let waits = [&a, &b].map(|c| c.stats().function(&leased::FUNCTION).lease_waits);
    assert_eq!(
        waits.iter().sum::<u64>(),
        1,
        "the other leader waited: {waits:?}"
    );
}

static PANICS: AtomicUsize = AtomicUsize::new(0);

#[memoize(cache = cache, ttl = 60)]
fn panics_once(cache: &Cache<Blocking>, x: u32) -> u32 {
    if PANICS.fetch_add(1, Ordering::SeqCst) == 0 {
        panic!("the first run fails");
    }
    x
}

#[test]
fn a_panicking_holder_releases_its_lease() {
    let server = server();
    let client = client(&server, Duration::from_secs(1));
    // With a lease held to its end, the second call would wait 10 s and run uncached.
    let cache = Cache::builder(Blocking::new(client))
        .namespace("test")
        .lease_ttl(Duration::from_secs(10))
        .lease_wait(Duration::from_secs(10))
        .build()
        .expect("valid namespace");
    let panicked = thread::scope(|s| s.spawn(|| panics_once(&cache, 5)).join());
    assert!(panicked.is_err(), "the first call panicked");
    let start = Instant::now();
    assert_eq!(panics_once(&cache, 5), 5);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "the lease was released, not waited out: {:?}",
        start.elapsed()
    );
    assert!(panics_once::is_cached(&cache, 5).expect("is_cached"));
}

static FLAKY_RUNS: AtomicUsize = AtomicUsize::new(0);

#[memoize(cache = cache, ttl = 60)]
fn flaky(cache: &Cache<Blocking>, x: u32) -> String {
    FLAKY_RUNS.fetch_add(1, Ordering::SeqCst);
    format!("row {x}")
}

#[test]
fn memcached_stopped_means_uncached_calls_then_the_breaker_bypasses_it() {
    let server = server();
    let timeout = Duration::from_millis(300);
    let cache = Cache::builder(Blocking::new(client(&server, timeout)))
        .namespace("test")
        .circuit_breaker(3, Duration::from_secs(2))
        .build()
        .expect("valid namespace");
    assert_eq!(flaky(&cache, 1), "row 1");
    assert_eq!(flaky(&cache, 1), "row 1");
    assert_eq!(count(&FLAKY_RUNS), 1);

    server.stop().expect("SIGSTOP");
    for i in 0..4 {
        assert_eq!(flaky(&cache, 1), "row 1");
        assert_eq!(
            count(&FLAKY_RUNS),
            2 + i,
            "each call runs the function once"
        );
    }
    assert!(cache.is_bypassing(), "the circuit breaker opened");
    let start = Instant::now();
    assert_eq!(flaky(&cache, 2), "row 2");
    assert!(
        start.elapsed() < timeout,
        "a bypassed call waits out no timeout: {:?}",
        start.elapsed()
    );
    assert_eq!(flaky::invalidate(&cache, 1), Err(Error::Unavailable));

    server.cont().expect("SIGCONT");
    let back = (0..400).any(|_| {
        assert_eq!(flaky(&cache, 3), "row 3");
        let cached = flaky::is_cached(&cache, 3).unwrap_or(false);
        thread::sleep(Duration::from_millis(25));
        cached
    });
    assert!(back, "caching resumed");
    assert!(!cache.is_bypassing());
}

static OFF_RUNS: AtomicUsize = AtomicUsize::new(0);

#[memoize(cache = cache)]
fn off(cache: &Cache<Blocking>, x: u32) -> u32 {
    OFF_RUNS.fetch_add(1, Ordering::SeqCst);
    x * 2
}

#[test]
fn a_disabled_cache_runs_every_call() {
    let cache: Cache<Blocking> = Cache::disabled();
    assert_eq!(off(&cache, 21), 42);
    assert_eq!(off(&cache, 21), 42);
    assert_eq!(count(&OFF_RUNS), 2);
    assert_eq!(off::invalidate(&cache, 21), Ok(false));
    assert_eq!(off::is_cached(&cache, 21), Ok(false));
    assert_eq!(off::cached(&cache, 21), Ok(None));
    assert_eq!(off::replace(&cache, 21, &1_u32), Ok(()));
    assert_eq!(off::invalidate_all(&cache), Ok(()));
    assert_eq!(off(&cache, 21), 42, "replace stored nothing");
    assert_eq!(cache.stats().function(&off::FUNCTION).bypasses, 3);
}

static GLOBAL_RUNS: AtomicUsize = AtomicUsize::new(0);

/// No `cache = ...`: the global blocking cache.
#[memoize(ttl = 60)]
fn global_double(x: u32) -> u32 {
    GLOBAL_RUNS.fetch_add(1, Ordering::SeqCst);
    x * 2
}

#[test]
fn without_a_cache_argument_the_global_blocking_cache_is_used() {
    assert_eq!(global_double(4), 8);
    assert_eq!(global_double(4), 8);
    assert_eq!(count(&GLOBAL_RUNS), 2, "no global cache yet: uncached");
    let server = server();
    assert!(mcache_registry::blocking::install_global(cache(&server)).is_ok());
    let global = mcache_registry::blocking::global().expect("installed");
    assert_eq!(global_double(4), 8);
    assert_eq!(global_double(4), 8);
    assert_eq!(count(&GLOBAL_RUNS), 3, "cached through the global cache");
    assert!(global_double::invalidate(global, 4).expect("invalidate"));
}
