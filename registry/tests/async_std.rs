//! The registry over the futures-io adapter on async-std's executor (feature `async-std`):
//! memoization, single flight and cross-process leases need no tokio.
#![cfg(feature = "async-std")]

use mcache_registry::async_std::{Client, Connect};
use mcache_registry::{memoize, Cache};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

static RUNS: AtomicUsize = AtomicUsize::new(0);

#[memoize(cache = cache)]
async fn slow(cache: &Cache<Client>, id: u32) -> String {
    RUNS.fetch_add(1, Ordering::SeqCst);
    async_std::task::sleep(Duration::from_millis(100)).await;
    format!("value {id}")
}

#[test]
fn memoize_on_async_std() {
    let server = mcache_testkit::Memcached::start().expect("memcached starts");
    let addr = server.host_port_string();
    async_std::task::block_on(async move {
        let a = Cache::new(Client::connect(addr.as_str()).await.unwrap(), "as").unwrap();
        let b = Cache::new(Client::connect(addr.as_str()).await.unwrap(), "as").unwrap();
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let cache = if i % 2 == 0 { a.clone() } else { b.clone() };
                async_std::task::spawn(async move { slow(&cache, 1).await })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await, "value 1");
        }
        assert_eq!(RUNS.load(Ordering::SeqCst), 1, "one run across two clients");
        assert!(slow::is_cached(&a, 1).await.unwrap());
        slow::invalidate_all(&b).await.unwrap();
        assert_eq!(slow(&a, 1).await, "value 1");
        assert_eq!(RUNS.load(Ordering::SeqCst), 2);
    });
}
