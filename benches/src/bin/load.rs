//! A fixed amount of work for instruction and syscall counting (callgrind, strace -c), which,
//! unlike timings, do not depend on what else the machine is doing.
//!
//! `load <tokio|current|async-std> <tasks> <gets per task> [connections]`: starts memcached, stores
//! 100 keys of 100 bytes, then `tasks` tasks each do `gets` gets.

use mcache_benches::Executor;
use mcache_client::{Client, Error, Memcache};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt_name = args.first().map(String::as_str).unwrap_or("tokio");
    let tasks: usize = args.get(1).map_or(Ok(32), |a| a.parse())?;
    let gets: usize = args.get(2).map_or(Ok(10_000), |a| a.parse())?;
    let conns: usize = args.get(3).map_or(Ok(1), |a| a.parse())?;
    let server = mcache_testkit::Memcached::builder().threads(1).start()?;
    let addr = server.host_port_string();
    let exec = match rt_name {
        "tokio" => Executor::tokio(2)?,
        "current" => Executor::tokio_current_thread()?,
        _ => Executor::async_std(),
    };
    let start = Instant::now();
    exec.block_on(async {
        let c = exec
            .client()
            .server(addr)
            .connections(conns)
            .build()
            .await?;
        work(&exec, c, tasks, gets).await
    })?;
    eprintln!("{} gets in {:?}", tasks * gets, start.elapsed());
    Ok(())
}

async fn work(exec: &Executor, c: Client, tasks: usize, gets: usize) -> Result<(), Error> {
    let keys: Vec<String> = (0..100).map(|i| format!("key{i}")).collect();
    for k in &keys {
        c.set(k.as_str(), vec![b'v'; 100], 0).await?;
    }
    let keys = std::sync::Arc::new(keys);
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let c = c.clone();
            let keys = keys.clone();
            let (done, hits) = futures_channel::oneshot::channel();
            exec.runtime().spawn(Box::pin(async move {
                let mut hits = 0u64;
                for i in 0..gets {
                    if let Ok(Some(_)) = c.get(keys[(t + i) % 100].as_str()).await {
                        hits += 1;
                    }
                }
                let _ = done.send(hits);
            }));
            hits
        })
        .collect();
    let mut hits = 0;
    for h in handles {
        hits += h.await.unwrap_or(0);
    }
    assert_eq!(hits as usize, tasks * gets, "every get hits");
    Ok(())
}
