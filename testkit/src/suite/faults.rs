//! Faults: the server killed with requests in flight, or frozen with SIGSTOP.

use super::{
    client, guard, is_outage, sleep, spawn_catch, start_memcached, until_ok, until_streak,
    ClientOptions, Harness,
};
use mcache_client::Memcache;
use mcache_proto::{Error, PoisonReason};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Requests in flight from 16 tasks when memcached is killed: each caller gets an error
/// (`Poisoned`, `Io` or `Timeout`), nobody panics; after a restart on the same port the same
/// client serves again within a bounded number of retries.
pub async fn server_killed_and_restarted<H: Harness>() {
    let mc = start_memcached();
    let c = client::<H>(ClientOptions {
        request_timeout: Some(Duration::from_secs(3)),
        read_timeout: Some(Duration::from_secs(3)),
        ..ClientOptions::for_server(&mc)
    })
    .await;
    c.set("before", "kill", 0).await.unwrap();

    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for t in 0..16u64 {
        let c = c.clone();
        let done = done.clone();
        tasks.push(spawn_catch::<H, _>(async move {
            // Loop until the first error: the server's death.
            for i in 0u64.. {
                let k = format!("f:{t}:{}", i % 8);
                let r = if i % 2 == 0 {
                    c.set(k.as_str(), format!("{k}|{i}"), 0).await
                } else {
                    match c.get(k.as_str()).await {
                        Ok(Some(v)) if !v.data.starts_with(format!("{k}|").as_bytes()) => {
                            panic!("value of another key for {k}: {:?}", v.data)
                        }
                        Ok(_) => Ok(()),
                        Err(e) => Err(e),
                    }
                };
                match r {
                    Ok(()) => {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => return (i, e),
                }
            }
            unreachable!()
        }));
    }
    // Let the load run, then kill the server under it.
    guard::<H, _>("load before the kill", Duration::from_secs(20), async {
        while done.load(Ordering::Relaxed) < 16 * 20 {
            sleep::<H>(Duration::from_millis(5)).await;
        }
    })
    .await;
    mc.kill().expect("kill memcached");
    for task in tasks {
        let (i, e) = guard::<H, _>("caller after the kill", Duration::from_secs(15), task)
            .await
            .unwrap_or_else(|p| panic!("a task panicked: {p}"));
        assert!(i > 0, "the task's first call failed: {e:?}");
        assert!(
            is_outage(&e),
            "in-flight caller: expected Poisoned/Io/Timeout, got {e:?}"
        );
    }
    // While the server is down, calls fail (they do not hang, they do not succeed).
    for _ in 0..5 {
        let e = guard::<H, _>("call while down", Duration::from_secs(10), c.get("before"))
            .await
            .expect_err("a call succeeded with the server dead");
        assert!(is_outage(&e), "call while down: {e:?}");
    }

    mc.restart().expect("restart memcached");
    guard::<H, _>("recovery", Duration::from_secs(30), async {
        until_ok::<H, _, _, _>("set after restart", || c.set("after", "restart", 0)).await;
        // Every connection of the client is back: a run of successes in a row.
        until_streak::<H, _, _>("all connections back", || async {
            let v = c.get("after").await?;
            assert_eq!(v.map(|v| v.data), Some("restart".into()));
            Ok(())
        })
        .await;
    })
    .await;
    // A fresh server: the old data is gone.
    assert_eq!(c.get("before").await.unwrap(), None);
}

/// A frozen server (SIGSTOP). Each timeout is checked alone, with the other one out of
/// reach of the hang guards: a client with a 200 ms request timeout (read timeout 60 s) gets
/// `Err(Timeout)`; a client without request timeout but with a 500 ms read timeout gets
/// `Err(Poisoned(Timeout))` as its connection is closed. Nothing hangs. After SIGCONT both
/// recover, and the late replies to abandoned requests reach nobody.
pub async fn server_stopped_and_continued<H: Harness>() {
    let mc = start_memcached();
    let by_request = client::<H>(ClientOptions {
        request_timeout: Some(Duration::from_millis(200)),
        read_timeout: Some(Duration::from_secs(60)),
        ..ClientOptions::for_server(&mc)
    })
    .await;
    let by_read = client::<H>(ClientOptions {
        request_timeout: None,
        read_timeout: Some(Duration::from_millis(500)),
        ..ClientOptions::for_server(&mc)
    })
    .await;
    by_request.set("a", "A", 0).await.unwrap();
    by_request.set("b", "B", 0).await.unwrap();
    assert_eq!(
        by_read.get("b").await.unwrap().map(|v| v.data),
        Some("B".into())
    );

    mc.stop().expect("SIGSTOP");
    let mut calls = Vec::new();
    for i in 0..12 {
        let c = if i < 8 {
            by_request.clone()
        } else {
            by_read.clone()
        };
        calls.push(spawn_catch::<H, _>(async move {
            if i % 2 == 0 {
                c.get("a").await.map(drop)
            } else {
                c.set("a", "changed while stopped", 0).await
            }
        }));
    }
    for (i, call) in calls.into_iter().enumerate() {
        let r = guard::<H, _>("call to a stopped server", Duration::from_secs(10), call)
            .await
            .unwrap_or_else(|p| panic!("a task panicked: {p}"));
        if i < 8 {
            assert!(
                matches!(r, Err(Error::Timeout)),
                "200 ms request timeout, server stopped: expected Err(Timeout), got {r:?}"
            );
        } else {
            assert!(
                matches!(r, Err(Error::Poisoned(PoisonReason::Timeout))),
                "500 ms read timeout, server stopped: expected Err(Poisoned(Timeout)), got {r:?}"
            );
        }
    }
    // More calls while it stays stopped: errors, never a hang. The read-timeout client
    // reconnects (the kernel still accepts connections) and times out again, or fails fast
    // while it waits to reconnect.
    for _ in 0..4 {
        let r = guard::<H, _>(
            "call to a stopped server",
            Duration::from_secs(10),
            by_request.get("a"),
        )
        .await;
        assert!(matches!(r, Err(Error::Timeout)), "request timeout: {r:?}");
        let r = guard::<H, _>(
            "call to a stopped server",
            Duration::from_secs(10),
            by_read.get("a"),
        )
        .await;
        assert!(
            matches!(
                r,
                Err(Error::Poisoned(PoisonReason::Timeout) | Error::Io(_) | Error::Unavailable(_))
            ),
            "read timeout: {r:?}"
        );
    }

    mc.cont().expect("SIGCONT");
    guard::<H, _>("recovery", Duration::from_secs(30), async {
        for c in [&by_request, &by_read] {
            // The first answer to `get b` must be b's value, not a late reply to `get a`.
            let v = until_ok::<H, _, _, _>("get b after SIGCONT", || c.get("b")).await;
            assert_eq!(v.map(|v| v.data), Some("B".into()));
            until_streak::<H, _, _>("all connections back", || async {
                let v = c.get("b").await?;
                assert_eq!(v.map(|v| v.data), Some("B".into()));
                let m = c.get_multi(["b", "nothing", "b"]).await?;
                let m: Vec<_> = m.into_iter().map(|v| v.map(|v| v.data)).collect();
                assert_eq!(m, [Some("B".into()), None, Some("B".into())]);
                Ok(())
            })
            .await;
        }
    })
    .await;
    // `a` is either A or the value set while stopped (that set may have been executed late).
    let a = by_request.get("a").await.unwrap().map(|v| v.data);
    assert!(
        a == Some("A".into()) || a == Some("changed while stopped".into()),
        "a = {a:?}"
    );
}
