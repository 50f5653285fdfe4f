//! A fixed amount of work for instruction and syscall counting (callgrind, strace -c), which,
//! unlike timings, do not depend on what else the machine is doing.
//!
//! `load <tokio|async-std> <tasks> <gets per task> [connections]`: starts memcached, stores
//! 100 keys of 100 bytes, then `tasks` tasks each do `gets` gets.

use mcache_proto::Memcache;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt_name = args.first().map(String::as_str).unwrap_or("tokio");
    let tasks: usize = args.get(1).map_or(Ok(32), |a| a.parse())?;
    let gets: usize = args.get(2).map_or(Ok(10_000), |a| a.parse())?;
    let conns: usize = args.get(3).map_or(Ok(1), |a| a.parse())?;
    let server = mcache_testkit::Memcached::builder().threads(1).start()?;
    let addr = server.host_port_string();
    let start = Instant::now();
    match rt_name {
        "tokio" => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            rt.block_on(async {
                let c = mcache_tokio::Client::builder()
                    .server(addr)
                    .connections(conns)
                    .build()
                    .await?;
                work(c, tasks, gets, |f| {
                    let h = tokio::spawn(f);
                    Box::pin(async move { h.await.unwrap_or(0) })
                })
                .await
            })?;
        }
        _ => {
            async_std::task::block_on(async {
                let c = mcache_async_std::Client::builder()
                    .server(addr)
                    .connections(conns)
                    .build()
                    .await?;
                work(c, tasks, gets, |f| Box::pin(async_std::task::spawn(f))).await
            })?;
        }
    }
    eprintln!("{} gets in {:?}", tasks * gets, start.elapsed());
    Ok(())
}

async fn work<C, S>(c: C, tasks: usize, gets: usize, spawn: S) -> Result<(), mcache_proto::Error>
where
    C: Memcache + Clone + Send + Sync + 'static,
    S: Fn(mcache_benches::BoxFuture<u64>) -> mcache_benches::BoxFuture<u64>,
{
    let keys: Vec<String> = (0..100).map(|i| format!("key{i}")).collect();
    for k in &keys {
        c.set(k.as_str(), vec![b'v'; 100], 0).await?;
    }
    let keys = std::sync::Arc::new(keys);
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let c = c.clone();
            let keys = keys.clone();
            spawn(Box::pin(async move {
                let mut hits = 0;
                for i in 0..gets {
                    if let Ok(Some(_)) = c.get(keys[(t + i) % 100].as_str()).await {
                        hits += 1;
                    }
                }
                hits
            }))
        })
        .collect();
    let mut hits = 0;
    for h in handles {
        hits += h.await;
    }
    assert_eq!(hits as usize, tasks * gets, "every get hits");
    Ok(())
}
