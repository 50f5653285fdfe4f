//! Cancellation: futures dropped at random points and tiny request timeouts never hand a
//! reply to the wrong caller, never panic, and never break the client.

use super::{client, guard, sleep, spawn_catch, start_memcached, ClientOptions, Harness};
use mcache_client::Memcache;
use mcache_proto::{Error, Key, MetaGetFlags, MetaStatus};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const TASKS: u64 = 64;
const OPS_PER_TASK: u64 = 250;
const SHARED_KEYS: u64 = 40;

#[derive(Default)]
struct Tally {
    ops: AtomicU64,
    ok: AtomicU64,
    dropped: AtomicU64,
    timeouts: AtomicU64,
    /// Errors that are not the caller's own timeout: none are expected.
    other_errors: AtomicU64,
    /// Replies for another key, or an older version than the caller's own last write.
    wrong: AtomicU64,
    examples: Mutex<Vec<String>>,
}

impl Tally {
    fn bad(&self, counter: &AtomicU64, what: String) {
        counter.fetch_add(1, Ordering::Relaxed);
        let mut ex = self.examples.lock().unwrap_or_else(|e| e.into_inner());
        if ex.len() < 10 {
            ex.push(what);
        }
    }
}

/// The values a call returned, one per key asked for.
type Values = Vec<Option<Vec<u8>>>;
/// The keys asked for, each with the exact version it must have (for the task's own key).
type Checks = Vec<(String, Option<u64>)>;

/// How a call ends.
enum Outcome<T> {
    Done(Result<T, Error>),
    Dropped,
}

/// Runs `call` to completion, or drops it early: after one poll, or when a short random sleep
/// wins the race.
async fn maybe_drop<H: Harness, T>(
    rng: &mut StdRng,
    drop_it: bool,
    call: impl Future<Output = Result<T, Error>>,
) -> Outcome<T> {
    if !drop_it {
        return Outcome::Done(call.await);
    }
    if rng.random_bool(0.5) {
        let mut call = Box::pin(call);
        match futures_lite::future::poll_once(&mut call).await {
            Some(r) => Outcome::Done(r),
            None => Outcome::Dropped,
        }
    } else {
        let delay = Duration::from_micros(rng.random_range(0..400));
        futures_lite::future::or(async { Outcome::Done(call.await) }, async {
            sleep::<H>(delay).await;
            Outcome::Dropped
        })
        .await
    }
}

/// Parses `key|task|version`.
fn parse(v: &[u8]) -> Option<(&str, u64, u64)> {
    let s = std::str::from_utf8(v).ok()?;
    let mut it = s.split('|');
    let (k, t, n) = (it.next()?, it.next()?, it.next()?);
    Some((k, t.parse().ok()?, n.parse().ok()?))
}

/// 64 tasks doing random get/set/get_multi/mg; 10% of the futures are dropped at random
/// points and a fifth of the calls go through clients with request timeouts of 1 µs to 1 ms.
/// Every value holds its own key: no caller may ever see another key's value, a key the task
/// alone writes must read back exactly, no task may panic, and the client must still serve.
pub async fn cancellation<H: Harness>() {
    let mc = start_memcached();
    let options = ClientOptions::for_server(&mc);
    let main = client::<H>(options.clone()).await;
    let mut tiny = Vec::new();
    for micros in [1, 20, 200, 1000] {
        tiny.push(
            client::<H>(ClientOptions {
                request_timeout: Some(Duration::from_micros(micros)),
                ..options.clone()
            })
            .await,
        );
    }
    let seed: u64 = rand::random();
    let tally = Arc::new(Tally::default());
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let main = main.clone();
        let tiny = tiny.clone();
        let tally = tally.clone();
        tasks.push(spawn_catch::<H, _>(async move {
            let mut rng = StdRng::seed_from_u64(seed ^ t.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            // A key only this task writes, only through `main`, never cancelled: it must
            // read back exactly the last version written.
            let own = format!("own:{t}");
            let mut own_version = 0u64;
            main.set(own.as_str(), format!("{own}|{t}|0"), 0)
                .await
                .unwrap();
            for i in 1..=OPS_PER_TASK {
                tally.ops.fetch_add(1, Ordering::Relaxed);
                let use_tiny = rng.random_bool(0.2);
                let c = if use_tiny {
                    &tiny[rng.random_range(0..tiny.len())]
                } else {
                    &main
                };
                let drop_it = rng.random_bool(0.1);
                let shared = format!("shared:{}", rng.random_range(0..SHARED_KEYS));
                let value = format!("{shared}|{t}|{i}");
                // What to check a reply against: the key asked for, and for the own key the
                // exact version.
                let (outcome, checks): (Outcome<Values>, Checks) = match rng.random_range(0..10) {
                    0..=3 => {
                        let o =
                            maybe_drop::<H, _>(&mut rng, drop_it, c.set(shared.as_str(), value, 0))
                                .await;
                        (map(o, |()| vec![]), vec![])
                    }
                    4..=6 => {
                        let o = maybe_drop::<H, _>(&mut rng, drop_it, c.get(shared.as_str())).await;
                        (
                            map(o, |v| vec![v.map(|v| v.data.to_vec())]),
                            vec![(shared.clone(), None)],
                        )
                    }
                    7 => {
                        let keys = [shared.clone(), own.clone(), format!("missing:{t}:{i}")];
                        let o =
                            maybe_drop::<H, _>(&mut rng, drop_it, c.get_multi(keys.iter())).await;
                        (
                            map(o, |vs| {
                                vs.into_iter().map(|v| v.map(|v| v.data.to_vec())).collect()
                            }),
                            vec![
                                (shared.clone(), None),
                                (own.clone(), Some(own_version)),
                                (keys[2].clone(), None),
                            ],
                        )
                    }
                    8 => {
                        let o = maybe_drop::<H, _>(&mut rng, drop_it, c.get(own.as_str())).await;
                        (
                            map(o, |v| vec![v.map(|v| v.data.to_vec())]),
                            vec![(own.clone(), Some(own_version))],
                        )
                    }
                    _ => {
                        let flags = MetaGetFlags {
                            value: true,
                            key: true,
                            ..Default::default()
                        };
                        let o = maybe_drop::<H, _>(
                            &mut rng,
                            drop_it,
                            c.meta_get(shared.as_str(), flags),
                        )
                        .await;
                        let expected_key = Key::new(&shared).unwrap();
                        let o = match o {
                            Outcome::Done(Ok(m))
                                if m.status == MetaStatus::Va
                                    && m.flags.key.as_ref() != Some(&expected_key) =>
                            {
                                tally.bad(
                                    &tally.wrong,
                                    format!("mg {shared}: reply for key {:?}", m.flags.key),
                                );
                                Outcome::Done(Ok(m))
                            }
                            o => o,
                        };
                        (
                            map(o, |m| vec![m.value.map(|v| v.to_vec())]),
                            vec![(shared.clone(), None)],
                        )
                    }
                };
                match outcome {
                    Outcome::Dropped => {
                        tally.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    Outcome::Done(Err(Error::Timeout)) if use_tiny => {
                        tally.timeouts.fetch_add(1, Ordering::Relaxed);
                    }
                    Outcome::Done(Err(e)) => {
                        tally.bad(
                            &tally.other_errors,
                            format!("task {t} op {i} (tiny: {use_tiny}): {e}"),
                        );
                    }
                    Outcome::Done(Ok(values)) => {
                        tally.ok.fetch_add(1, Ordering::Relaxed);
                        if values.len() != checks.len() {
                            tally.bad(
                                &tally.wrong,
                                format!("{} values for {} keys", values.len(), checks.len()),
                            );
                        }
                        for (v, (k, exact)) in values.iter().zip(&checks) {
                            match (v, exact) {
                                (Some(v), _) => match parse(v) {
                                    Some((vk, vt, vn))
                                        if vk == k && exact.is_none_or(|n| vt == t && vn == n) => {}
                                    _ => tally.bad(
                                        &tally.wrong,
                                        format!(
                                            "asked {k} (version {exact:?}), got {:?}",
                                            String::from_utf8_lossy(v)
                                        ),
                                    ),
                                },
                                (None, Some(_)) => tally.bad(&tally.wrong, format!("{k} missing")),
                                (None, None) => {}
                            }
                        }
                    }
                }
                // Now and then, a new version of the own key (never cancelled).
                if i % 10 == 0 {
                    own_version = i;
                    if let Err(e) = main.set(own.as_str(), format!("{own}|{t}|{i}"), 0).await {
                        tally.bad(&tally.other_errors, format!("set {own}: {e}"));
                    }
                }
            }
        }));
    }
    let mut panics = Vec::new();
    for task in tasks {
        if let Err(p) = guard::<H, _>("cancellation task", Duration::from_secs(45), task).await {
            panics.push(p);
        }
    }
    let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let report = format!(
        "{} (seed {seed}): ops {} ok {} dropped {} timeouts {} other errors {} wrong {} panics {}; examples: {:?}",
        H::NAME,
        n(&tally.ops),
        n(&tally.ok),
        n(&tally.dropped),
        n(&tally.timeouts),
        n(&tally.other_errors),
        n(&tally.wrong),
        panics.len(),
        tally.examples.lock().unwrap_or_else(|e| e.into_inner()),
    );
    eprintln!("{report}");
    assert!(panics.is_empty(), "{report}; panics: {panics:?}");
    assert_eq!(n(&tally.wrong), 0, "{report}");
    assert_eq!(n(&tally.other_errors), 0, "{report}");
    assert_eq!(
        n(&tally.ok) + n(&tally.dropped) + n(&tally.timeouts),
        TASKS * OPS_PER_TASK,
        "every call accounted for: {report}"
    );
    assert!(n(&tally.dropped) > 0, "nothing was cancelled: {report}");

    // The client still serves, in step.
    for i in 0..50 {
        let k = format!("after:{i}");
        main.set(k.as_str(), k.clone(), 0).await.unwrap();
        assert_eq!(
            main.get(k.as_str()).await.unwrap().map(|v| v.data),
            Some(k.clone().into())
        );
    }
    let own: Vec<String> = (0..TASKS).map(|t| format!("own:{t}")).collect();
    let got = main.get_multi(own.iter()).await.unwrap();
    for (t, (v, k)) in got.iter().zip(&own).enumerate() {
        let last = OPS_PER_TASK / 10 * 10;
        assert_eq!(
            v.as_ref().map(|v| v.data.to_vec()),
            Some(format!("{k}|{t}|{last}").into_bytes()),
            "{report}"
        );
    }
    // The 1 ms client too: its connections are in step (some calls may still time out).
    for _ in 0..200 {
        match tiny[3].get("after:0").await {
            Ok(v) => assert_eq!(v.map(|v| v.data), Some("after:0".into()), "{report}"),
            Err(Error::Timeout) => {}
            Err(e) => panic!("1 ms client after the storm: {e}; {report}"),
        }
    }
}

fn map<T, U>(o: Outcome<T>, f: impl FnOnce(T) -> U) -> Outcome<U> {
    match o {
        Outcome::Done(r) => Outcome::Done(r.map(f)),
        Outcome::Dropped => Outcome::Dropped,
    }
}
