//! Shared set-up for the registry's integration tests: a real memcached per test, clients and
//! caches over it.

#![allow(dead_code, unreachable_pub)]

use mcache_registry::tokio::{Client, Connect};
use mcache_registry::{Cache, CacheBuilder};
use mcache_testkit::Memcached;
use std::time::Duration;

/// A memcached of its own for one test.
pub fn server() -> Memcached {
    Memcached::start().expect("memcached starts (is the `memcached` package installed?)")
}

/// A client with the default settings (a 1 s request timeout: generous on a loaded machine,
/// where a timeout would make a call run uncached and a count of runs go up).
pub async fn client(server: &Memcached) -> Client {
    Client::connect(server.host_port_string().as_str())
        .await
        .expect("client connects")
}

/// A client with a short request timeout, so that a stopped server is noticed quickly.
pub async fn impatient_client(server: &Memcached) -> Client {
    Client::builder()
        .server(server.host_port_string().as_str())
        .request_timeout(Some(Duration::from_millis(300)))
        .build()
        .await
        .expect("client connects")
}

/// A builder over a fresh client, namespace `test`.
pub async fn builder(server: &Memcached) -> CacheBuilder<Client> {
    Cache::builder(client(server).await).namespace("test")
}

/// A cache over an [`impatient_client`], namespace `test`, whose circuit breaker opens after
/// `failures` consecutive transport failures, for `cooldown`.
pub async fn breaker_cache(server: &Memcached, failures: u32, cooldown: Duration) -> Cache<Client> {
    Cache::builder(impatient_client(server).await)
        .namespace("test")
        .circuit_breaker(failures, cooldown)
        .build()
        .expect("valid namespace")
}

/// A cache with the default settings, namespace `test`.
pub async fn cache(server: &Memcached) -> Cache<Client> {
    builder(server).await.build().expect("valid namespace")
}
