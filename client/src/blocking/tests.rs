//! Unit tests of the blocking client's connections against a real memcached: what happens
//! to a connection lent to a thread that panics mid-request, waiting for a free connection,
//! socket timeouts set only when needed, and the reconnect backoff.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::link::Link;
use super::server::Server;
use crate::endpoint::Endpoint;
use crate::settings::Settings;
use crate::stats::ServerCounters;
use mcache_proto::commands::{self, Call};
use mcache_proto::{Error, Request, Response};
use mcache_testkit::Memcached;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn server_for(mc: &Memcached, max: usize) -> (Server, Settings) {
    let endpoint = Endpoint::from(mc.host_port_string());
    let counters = Arc::new(ServerCounters::new(&endpoint, 1));
    let settings = Settings::default();
    (Server::new(endpoint, max, &settings, counters), settings)
}

fn request<T>(call: Result<Call<T>, Error>) -> Request {
    match call.unwrap() {
        Call::Send { request, .. } => request,
        Call::Ready(_) => panic!("a call that sends nothing"),
    }
}

fn soon() -> Option<Instant> {
    Some(Instant::now() + Duration::from_secs(5))
}

fn value_of(reply: Result<Response, Error>) -> Vec<u8> {
    match reply.unwrap() {
        Response::Values(v) => v[0].data.to_vec(),
        other => panic!("not a value: {other:?}"),
    }
}

#[test]
fn a_connection_lent_to_a_thread_that_panics_mid_request_is_closed() {
    let mc = Memcached::start().unwrap();
    let (server, settings) = server_for(&mc, 1);
    for k in ["one", "two"] {
        let mut lease = server.lease(&settings, soon()).unwrap();
        let set = request(commands::set(k, format!("value of {k}"), 0));
        lease.link().unwrap().round_trip(set, soon()).unwrap();
    }
    assert_eq!(server.lent(), 0);
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut lease = server.lease(&settings, soon()).unwrap();
        let link = lease.link().unwrap();
        link.send(request(commands::get("one")), soon()).unwrap();
        panic!("the caller panics with its request written and its reply unread");
    }));
    assert!(panicked.is_err());
    assert_eq!(server.lent(), 0, "the slot was given back");
    let mut lease = server.lease(&settings, soon()).unwrap();
    let reply = lease
        .link()
        .unwrap()
        .round_trip(request(commands::get("two")), soon());
    assert_eq!(value_of(reply), b"value of two");
    drop(lease);
    assert_eq!(server.stats().reconnects, 1, "a new connection was opened");
}

#[test]
fn callers_wait_for_a_free_connection_within_their_deadline() {
    let mc = Memcached::start().unwrap();
    let (server, settings) = server_for(&mc, 1);
    let held = server.lease(&settings, soon()).unwrap();
    let started = Instant::now();
    let waited = server.lease(&settings, Some(started + Duration::from_millis(50)));
    assert!(matches!(waited, Err(Error::Timeout)));
    assert!(started.elapsed() >= Duration::from_millis(50));
    // A waiter is woken when the connection comes back, long before its own deadline
    // (a lost wake-up would keep it waiting the whole minute).
    let long = Some(Instant::now() + Duration::from_secs(60));
    let woken = std::thread::scope(|s| {
        let waiter = s.spawn(|| server.lease(&settings, long).map(drop));
        std::thread::sleep(Duration::from_millis(20));
        let released = Instant::now();
        drop(held);
        waiter.join().unwrap().unwrap();
        released.elapsed()
    });
    assert!(woken < Duration::from_secs(30), "woken after {woken:?}");
    assert_eq!(
        server.stats().reconnects,
        0,
        "the one connection was reused"
    );
}

#[test]
fn socket_timeouts_are_set_only_when_a_deadline_needs_it() {
    let mc = Memcached::start().unwrap();
    let settings = Settings::default();
    let mut link = Link::open(&Endpoint::from(mc.host_port_string()), &settings).unwrap();
    let mut round_trip = |timeout: Duration| {
        let deadline = Some(Instant::now() + timeout);
        link.round_trip(request(commands::get("k")), deadline)
            .unwrap();
        link.socket_timeouts()
    };
    let first = round_trip(Duration::from_secs(1));
    assert!(first.0.is_some_and(|t| t <= Duration::from_secs(1)));
    for _ in 0..20 {
        assert_eq!(
            round_trip(Duration::from_secs(1)),
            first,
            "a timeout was set again"
        );
    }
    let short = round_trip(Duration::from_millis(100)).0.unwrap();
    assert!(short <= Duration::from_millis(100), "{short:?}");
}

#[test]
fn after_a_failed_connect_calls_fail_fast_until_the_backoff_passes() {
    // A unix socket path that does not exist refuses every connect, whatever else runs (a
    // TCP port found free a moment ago could be taken by a server of a parallel test).
    let dir = mcache_testkit::TempDir::new("mcache-refused").unwrap();
    let endpoint = Endpoint::Unix(dir.path().join("absent.sock"));
    let settings = Settings {
        backoff_min: Duration::from_millis(200),
        ..Settings::default()
    };
    let counters = Arc::new(ServerCounters::new(&endpoint, 1));
    let server = Server::new(endpoint, 2, &settings, counters);
    assert!(matches!(server.lease(&settings, soon()), Err(Error::Io(_))));
    for _ in 0..3 {
        assert!(matches!(
            server.lease(&settings, soon()),
            Err(Error::Unavailable(_))
        ));
    }
    assert_eq!(server.stats().connect_failures, 1);
    std::thread::sleep(Duration::from_millis(250));
    assert!(matches!(server.lease(&settings, soon()), Err(Error::Io(_))));
    assert_eq!(server.stats().connect_failures, 2);
}

/// Compiles only if the client and its server handles can be cloned and shared by threads.
#[allow(dead_code)]
fn shared_by_threads() {
    fn shared<T: Clone + Send + Sync + 'static>() {}
    shared::<super::Client>();
    shared::<super::ServerHandle>();
    shared::<super::Builder>();
}
