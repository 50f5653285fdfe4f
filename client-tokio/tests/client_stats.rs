//! `Client::client_stats` against a real memcached: requests and results counted, calls
//! failing fast while the server is down, the reconnect after it is back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mcache_testkit::Memcached;
use mcache_tokio::{Client, Connect as _, Error, Memcache as _};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "current_thread")]
async fn client_stats_against_a_real_server() {
    let server = Memcached::start().unwrap();
    let client = Client::builder()
        .server(server.host_port_string())
        .connections(1)
        .backoff(Duration::from_millis(20), Duration::from_millis(40))
        .build()
        .await
        .unwrap();

    for i in 0..10 {
        client.set(format!("k{i}"), "v", 0).await.unwrap();
        assert!(client.get(format!("k{i}")).await.unwrap().is_some());
    }
    let s = client.client_stats().servers.remove(0);
    assert_eq!((s.requests, s.ok, s.errors.total()), (20, 20, 0), "{s:?}");
    assert_eq!((s.reconnects, s.in_flight), (0, 0), "{s:?}");

    server.kill().unwrap();
    // The connection is found lost (a failure), then calls fail fast while it is down.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match client.get("k0").await {
            Err(Error::Unavailable(_)) => break,
            Err(e) if e.is_connection_failure() => {}
            other => panic!("{other:?}"),
        }
        assert!(Instant::now() < deadline, "never unavailable");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.restart().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while client.get("k0").await.is_err() {
        assert!(Instant::now() < deadline, "never served again");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let s = client.client_stats().servers.remove(0);
    assert!(s.errors.unavailable >= 1, "{s:?}");
    assert!(s.reconnects >= 1, "{s:?}");
    assert!(s.ok >= 21, "{s:?}");
    assert_eq!(s.completed(), s.requests, "{s:?}");
    assert_eq!(s.in_flight, 0, "{s:?}");
}
