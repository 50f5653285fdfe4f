//! Smoke test: many tasks doing set/get through one client.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use mcache_tokio::{Client, Memcache};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke() {
    let mc = mcache_testkit::Memcached::start().unwrap();
    let c = Client::connect(mc.host_port_string()).await.unwrap();
    c.set("a", "1", 0).await.unwrap();
    assert_eq!(c.get("a").await.unwrap().unwrap().data, "1");
    let mut tasks = Vec::new();
    for t in 0..32 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..2000 {
                let k = format!("k{t}-{i}");
                c.set(k.as_str(), k.clone(), 0).await.unwrap();
                assert_eq!(c.get(k.as_str()).await.unwrap().unwrap().data, k.as_bytes());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}
