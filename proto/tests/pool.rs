//! [`Pool`]: routing, splitting multi-key retrievals and merging the replies in the caller's
//! order, broadcasting keyless commands, health bookkeeping from observed replies (synthetic
//! `Instant`s), and what twemproxy carries. Servers are simulated by in-memory maps.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use mcache_proto::pool::{is_server_failure, Broadcast, Split};
use mcache_proto::text::request::{Retrieve, RetrieveCommand, Store, StoreCommand};
use mcache_proto::{
    DecodeError, EncodeError, Error, Failover, HashMode, HealthPolicy, IoError, Key, KeyError,
    MetaGetFlags, Plan, PoisonReason, Pool, ProxyKind, Request, Response, ServerSpec, SyncCommand,
    Value,
};
use proptest::prelude::*;
use std::collections::HashMap;
use std::io::ErrorKind as IoKind;
use std::time::{Duration, Instant};

fn specs(n: usize) -> Vec<ServerSpec> {
    (0..n)
        .map(|i| ServerSpec::new("127.0.0.1", 11211 + i as u16))
        .collect()
}

fn pool(n: usize, failover: Failover) -> Pool {
    Pool::new(
        specs(n),
        HashMode::KetamaWeighted,
        HealthPolicy {
            failure_limit: 2,
            retry_after: Duration::from_secs(10),
            failover,
        },
    )
    .unwrap()
}

fn key(k: &str) -> Key {
    Key::new(k).unwrap()
}

fn get(keys: &[&str]) -> Request {
    Request::Retrieve(Retrieve {
        command: RetrieveCommand::Get,
        keys: keys.iter().map(|k| key(k)).collect(),
    })
}

fn set(k: &str) -> Request {
    Request::Store(Store {
        command: StoreCommand::Set,
        key: key(k),
        flags: 0,
        exptime: 0,
        value: Bytes::from_static(b"v"),
        noreply: false,
    })
}

/// A transport error: connection refused, while doing `what`.
fn refused(what: &str) -> IoError {
    IoError::from_kind(what, IoKind::ConnectionRefused)
}

/// A key of `server` under `pool`'s placement (keys `{prefix}0`, `{prefix}1`, ...).
fn key_on(pool: &Pool, server: usize, prefix: &str) -> String {
    (0..)
        .map(|i| format!("{prefix}{i}"))
        .find(|k| pool.server_for(k.as_bytes()) == server)
        .unwrap()
}

/// Servers simulated by maps: answers a retrieval as memcached does (hits, in the order asked,
/// each occurrence of a duplicate key).
struct Sim {
    stores: Vec<HashMap<Vec<u8>, Bytes>>,
}

impl Sim {
    fn new(n: usize) -> Self {
        Sim {
            stores: vec![HashMap::new(); n],
        }
    }

    fn answer(&self, server: usize, request: &Request) -> Result<Response, Error> {
        match request {
            Request::Retrieve(r) => Ok(Response::Values(
                r.keys
                    .iter()
                    .filter_map(|k| {
                        self.stores[server].get(k.wire()).map(|data| Value {
                            key: k.clone(),
                            flags: server as u32,
                            cas: None,
                            data: data.clone(),
                        })
                    })
                    .collect(),
            )),
            Request::Version => Ok(Response::Version(Bytes::from(format!("1.6.{server}")))),
            other => panic!("sim: unexpected {other:?}"),
        }
    }
}

fn run_split(sim: &Sim, mut split: Split) -> (Vec<usize>, Split, Vec<Result<Response, Error>>) {
    let parts = std::mem::take(&mut split.parts);
    let servers = parts.iter().map(|(s, _)| *s).collect();
    let replies = parts.iter().map(|(s, r)| sim.answer(*s, r)).collect();
    (servers, split, replies)
}

fn values(r: Result<Response, Error>) -> Vec<(Vec<u8>, Bytes)> {
    match r.unwrap() {
        Response::Values(v) => v
            .into_iter()
            .map(|v| (v.key.wire().to_vec(), v.data))
            .collect(),
        other => panic!("expected values, got {other:?}"),
    }
}

#[test]
fn twemproxy_carries_the_text_commands_it_supports_and_nothing_else() {
    let p = ProxyKind::Twemproxy;
    assert_eq!(p.sync_command(), SyncCommand::Version);
    assert_eq!(p.name(), "twemproxy");
    let k = key("k");
    let carried = [
        get(&["a", "b"]),
        Request::Retrieve(Retrieve {
            command: RetrieveCommand::Gets,
            keys: vec![k.clone()],
        }),
        set("k"),
        Request::Delete {
            key: k.clone(),
            noreply: true,
        },
        Request::Incr {
            key: k.clone(),
            delta: 1,
            noreply: false,
        },
        Request::Decr {
            key: k.clone(),
            delta: 1,
            noreply: true,
        },
        Request::Touch {
            key: k.clone(),
            exptime: -1,
            noreply: false,
        },
        Request::Version,
        Request::Quit,
    ];
    for r in &carried {
        assert!(p.carries(r), "{} must be carried", r.command_name());
        assert_eq!(p.check(r), Ok(()));
    }
    let refused = [
        Request::Retrieve(Retrieve {
            command: RetrieveCommand::Gat(1),
            keys: vec![k.clone()],
        }),
        Request::Retrieve(Retrieve {
            command: RetrieveCommand::Gats(1),
            keys: vec![k.clone()],
        }),
        Request::FlushAll {
            delay: None,
            noreply: false,
        },
        Request::Verbosity {
            level: 1,
            noreply: false,
        },
        Request::Stats { args: None },
        Request::MetaGet(Box::new(mcache_proto::meta::request::MetaGet {
            key: k.clone(),
            flags: MetaGetFlags::default(),
        })),
        Request::MetaNoop,
        Request::MetaDebug { key: k.clone() },
        // twemproxy reads a storage command's exptime as unsigned and hangs up on `-1`.
        Request::Store(Store {
            exptime: -1,
            ..match set("k") {
                Request::Store(s) => s,
                _ => unreachable!(),
            }
        }),
    ];
    for r in &refused {
        assert!(!p.carries(r), "{} must be refused", r.command_name());
        match p.check(r) {
            Err(EncodeError::NotCarriedByProxy {
                command,
                proxy: "twemproxy",
                why,
            }) => {
                assert_eq!(command, r.command_name());
                assert!(!why.is_empty());
            }
            other => panic!("{other:?}"),
        }
    }
    // Through a pool: refused before any routing, with a message naming the command.
    let mut pool = pool(2, Failover::FailFast).with_proxy(Some(p));
    match pool.plan(Request::Stats { args: None }, Instant::now()) {
        Plan::Refused(e) => {
            assert!(e.to_string().contains("stats"), "{e}");
            assert!(e.to_string().contains("twemproxy"), "{e}");
        }
        other => panic!("stats through twemproxy: {other:?}"),
    }
    assert!(matches!(
        pool.plan_split(
            Retrieve {
                command: RetrieveCommand::Gat(5),
                keys: vec![key("a")]
            },
            Instant::now()
        ),
        Err(Error::Encode(EncodeError::NotCarriedByProxy {
            command: "gat",
            ..
        }))
    ));
    assert!(matches!(
        pool.plan(get(&["a"]), Instant::now()),
        Plan::One { .. }
    ));
}

#[test]
fn behind_twemproxy_a_multi_get_goes_one_key_per_request() {
    let mut pool = Pool::new(specs(1), HashMode::KetamaWeighted, HealthPolicy::default())
        .unwrap()
        .with_proxy(Some(ProxyKind::Twemproxy));
    assert!(ProxyKind::Twemproxy.reorders_multi_get());
    let mut sim = Sim::new(1);
    sim.stores[0].insert(b"b".to_vec(), Bytes::from_static(b"B"));
    sim.stores[0].insert(b"a".to_vec(), Bytes::from_static(b"A"));
    let Plan::Split(split) = pool.plan(get(&["a", "x", "b", "a"]), Instant::now()) else {
        panic!("a multi-key get through twemproxy is split")
    };
    let parts: Vec<_> = split.parts.iter().map(|(s, r)| (*s, r.clone())).collect();
    assert_eq!(
        parts,
        [
            (0, get(&["a"])),
            (0, get(&["x"])),
            (0, get(&["b"])),
            (0, get(&["a"]))
        ]
    );
    let (_, split, replies) = run_split(&sim, split);
    assert_eq!(
        values(split.merge(replies)),
        [
            (b"a".to_vec(), Bytes::from_static(b"A")),
            (b"b".to_vec(), Bytes::from_static(b"B")),
            (b"a".to_vec(), Bytes::from_static(b"A")),
        ]
    );
    // One key: sent as it is. Other commands too.
    let r = get(&["a"]);
    assert!(
        matches!(pool.plan(r.clone(), Instant::now()), Plan::One { server: 0, request } if request == r)
    );
    assert!(matches!(
        pool.plan(set("a"), Instant::now()),
        Plan::One { server: 0, .. }
    ));
    // A pool of servers behind twemproxy-like limits: each key alone, to its own server.
    let mut pool = self::pool(3, Failover::FailFast).with_proxy(Some(ProxyKind::Twemproxy));
    let Plan::Split(split) = pool.plan(get(&["a", "b", "c"]), Instant::now()) else {
        panic!()
    };
    assert_eq!(split.parts.len(), 3);
    for (server, r) in &split.parts {
        let Request::Retrieve(r) = r else { panic!() };
        assert_eq!(r.keys.len(), 1);
        assert_eq!(*server, pool.server_for(r.keys[0].wire()));
    }
}

#[test]
fn one_server_takes_everything_and_keeps_no_health() {
    let mut pool = pool(1, Failover::FailFast);
    let now = Instant::now();
    for r in [
        set("a"),
        get(&["a", "b", "c"]),
        Request::Version,
        Request::Stats { args: None },
    ] {
        match pool.plan(r.clone(), now) {
            Plan::One { server: 0, request } => assert_eq!(request, r),
            other => panic!("{other:?}"),
        }
    }
    for _ in 0..10 {
        pool.observe(0, &Err(Error::Poisoned(PoisonReason::Closed)), now, now);
    }
    assert!(pool.is_available(0, now));
    assert_eq!(pool.failures(0), 0);
}

#[test]
fn keyed_requests_go_to_the_key_s_server() {
    let mut pool = pool(3, Failover::FailFast);
    let now = Instant::now();
    let mut seen = [false; 3];
    for i in 0..200 {
        let k = format!("key:{i}");
        let expect = pool.server_for(k.as_bytes());
        seen[expect] = true;
        match pool.plan(set(&k), now) {
            Plan::One { server, .. } => assert_eq!(server, expect, "{k}"),
            other => panic!("{other:?}"),
        }
        match pool.plan(get(&[&k]), now) {
            Plan::One { server, .. } => assert_eq!(server, expect, "{k}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(pool.route(k.as_bytes(), now), Ok(expect));
    }
    assert_eq!(seen, [true; 3], "200 keys reach every server");
}

#[test]
fn binary_keys_are_placed_by_their_base64_wire_form() {
    let mut pool = pool(3, Failover::FailFast);
    let k = Key::binary([0u8, 1, 2, 0xff]).unwrap();
    let r = Request::MetaDebug { key: k.clone() };
    match pool.plan(r, Instant::now()) {
        Plan::One { server, .. } => assert_eq!(server, pool.server_for(k.wire())),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_multi_get_on_one_server_is_sent_unchanged() {
    let mut pool = pool(3, Failover::FailFast);
    let a = key_on(&pool, 1, "a");
    let b = key_on(&pool, 1, "b");
    let r = get(&[&a, &b, &a]);
    match pool.plan(r.clone(), Instant::now()) {
        Plan::One { server: 1, request } => assert_eq!(request, r),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_multi_get_is_split_per_server_and_merged_in_the_caller_s_order() {
    let mut pool = pool(3, Failover::FailFast);
    let mut sim = Sim::new(3);
    let keys: Vec<String> = (0..60).map(|i| format!("m:{i}")).collect();
    // Every third key is present, on its own server.
    for k in keys.iter().step_by(3) {
        let s = pool.server_for(k.as_bytes());
        sim.stores[s].insert(k.as_bytes().to_vec(), Bytes::from(format!("value of {k}")));
    }
    // Duplicates and misses in the request.
    let mut asked: Vec<&str> = keys.iter().map(String::as_str).collect();
    asked.push("m:0");
    asked.push("m:1");
    asked.insert(5, "m:3");
    let Plan::Split(split) = pool.plan(get(&asked), Instant::now()) else {
        panic!("60 keys over 3 servers must split")
    };
    assert_eq!(split.parts.len(), 3, "one part per server");
    let (servers, split, replies) = run_split(&sim, split);
    let mut sorted = servers.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [0, 1, 2]);
    // Each part holds exactly its server's keys, in the caller's order.
    let merged = values(split.merge(replies));
    let expect: Vec<(Vec<u8>, Bytes)> = asked
        .iter()
        .filter_map(|k| {
            let s = pool.server_for(k.as_bytes());
            sim.stores[s]
                .get(k.as_bytes())
                .map(|v| (k.as_bytes().to_vec(), v.clone()))
        })
        .collect();
    assert_eq!(merged, expect);
}

#[test]
fn merge_each_gives_one_entry_per_key() {
    let mut pool = pool(3, Failover::FailFast);
    let mut sim = Sim::new(3);
    let (a, b, c) = (
        key_on(&pool, 0, "a"),
        key_on(&pool, 1, "b"),
        key_on(&pool, 2, "c"),
    );
    sim.stores[1].insert(b.as_bytes().to_vec(), Bytes::from_static(b"B"));
    sim.stores[2].insert(c.as_bytes().to_vec(), Bytes::from_static(b"C"));
    let retrieve = Retrieve {
        command: RetrieveCommand::Get,
        keys: [&c, &a, &b, &c, "missing"].iter().map(|k| key(k)).collect(),
    };
    let split = pool.plan_split(retrieve, Instant::now()).unwrap();
    let (_, split, replies) = run_split(&sim, split);
    let each: Vec<Option<Bytes>> = split
        .merge_each(replies)
        .into_iter()
        .map(|r| r.unwrap().map(|v| v.data))
        .collect();
    assert_eq!(
        each,
        [
            Some(Bytes::from_static(b"C")),
            None,
            Some(Bytes::from_static(b"B")),
            Some(Bytes::from_static(b"C")),
            None
        ]
    );
    // On one server too.
    let mut one = Pool::new(specs(1), HashMode::KetamaWeighted, HealthPolicy::default()).unwrap();
    let split = one
        .plan_split(
            Retrieve {
                command: RetrieveCommand::Gets,
                keys: vec![key("x"), key("y")],
            },
            Instant::now(),
        )
        .unwrap();
    assert_eq!(split.parts.len(), 1);
}

#[test]
fn a_failed_part_fails_the_merge_with_the_first_key_s_error_and_only_its_keys_in_merge_each() {
    let mut pool = pool(3, Failover::FailFast);
    let sim = Sim::new(3);
    let (a, b, c) = (
        key_on(&pool, 0, "a"),
        key_on(&pool, 1, "b"),
        key_on(&pool, 2, "c"),
    );
    let asked = [a.as_str(), b.as_str(), c.as_str()];
    let fail = |split: Split, bad: usize, e: Error| {
        let (servers, split, mut replies) = run_split(&sim, split);
        let at = servers.iter().position(|&s| s == bad).unwrap();
        replies[at] = Err(e);
        (split, replies)
    };
    let Plan::Split(split) = pool.plan(get(&asked), Instant::now()) else {
        panic!()
    };
    let (split, replies) = fail(split, 1, Error::Poisoned(PoisonReason::Closed));
    assert_eq!(
        split.merge(replies),
        Err(Error::Poisoned(PoisonReason::Closed))
    );
    let split = pool
        .plan_split(
            Retrieve {
                command: RetrieveCommand::Get,
                keys: asked.iter().map(|k| key(k)).collect(),
            },
            Instant::now(),
        )
        .unwrap();
    let (split, replies) = fail(split, 2, Error::Timeout);
    let each = split.merge_each(replies);
    assert_eq!(each[0], Ok(None));
    assert_eq!(each[1], Ok(None));
    assert_eq!(each[2], Err(Error::Timeout));

    // A reply that is not values is an error of that part; a missing reply too.
    let Plan::Split(mut split) = pool.plan(get(&asked), Instant::now()) else {
        panic!()
    };
    let n = std::mem::take(&mut split.parts).len();
    let mut replies: Vec<_> = (0..n).map(|_| Ok(Response::Values(vec![]))).collect();
    replies[0] = Ok(Response::Stored);
    assert!(matches!(
        split.merge(replies),
        Err(Error::UnexpectedResponse { command: "get", .. })
    ));
    let Plan::Split(mut split) = pool.plan(get(&asked), Instant::now()) else {
        panic!()
    };
    split.parts.clear();
    assert!(matches!(
        split.merge(vec![]),
        Err(Error::UnexpectedResponse { command: "get", .. })
    ));
}

#[test]
fn invalid_retrievals_are_refused_before_splitting() {
    let mut pool = pool(3, Failover::FailFast);
    let r = Request::Retrieve(Retrieve {
        command: RetrieveCommand::Get,
        keys: vec![key("a"), Key::binary([1u8, 2]).unwrap()],
    });
    match pool.plan(r, Instant::now()) {
        Plan::Refused(Error::Encode(EncodeError::Key(KeyError::BinaryInTextCommand))) => {}
        other => panic!("{other:?}"),
    }
    // Without keys: sent to one server, whose connection refuses it.
    assert!(matches!(
        pool.plan(get(&[]), Instant::now()),
        Plan::One { server: 0, .. }
    ));
}

fn run_broadcast(
    sim: &Sim,
    mut b: Broadcast,
) -> (Vec<usize>, Broadcast, Vec<Result<Response, Error>>) {
    let parts = std::mem::take(&mut b.parts);
    let servers = parts.iter().map(|(s, _)| *s).collect();
    let replies = parts.iter().map(|(s, r)| sim.answer(*s, r)).collect();
    (servers, b, replies)
}

#[test]
fn keyless_commands_go_to_every_server() {
    let mut pool = pool(3, Failover::FailFast);
    let sim = Sim::new(3);
    let Plan::Broadcast(b) = pool.plan(Request::Version, Instant::now()) else {
        panic!("version is broadcast")
    };
    let (servers, b, replies) = run_broadcast(&sim, b);
    assert_eq!(servers, [0, 1, 2]);
    assert_eq!(
        b.merge(replies),
        Ok(Response::Version(Bytes::from_static(b"1.6.0")))
    );
    // The first error by server index wins over any reply.
    let Plan::Broadcast(b) = pool.plan(Request::Version, Instant::now()) else {
        panic!()
    };
    let (_, b, mut replies) = run_broadcast(&sim, b);
    replies[2] = Err(Error::Io(refused("two")));
    replies[1] = Err(Error::Server(Bytes::from_static(b"one")));
    assert_eq!(
        b.merge(replies),
        Err(Error::Server(Bytes::from_static(b"one")))
    );
    for r in [
        Request::FlushAll {
            delay: None,
            noreply: false,
        },
        Request::Stats { args: None },
        Request::Verbosity {
            level: 0,
            noreply: true,
        },
        Request::MetaNoop,
        Request::Quit,
    ] {
        assert!(
            matches!(pool.plan(r.clone(), Instant::now()), Plan::Broadcast(b) if b.parts.len() == 3 && b.parts.iter().all(|(_, p)| *p == r)),
            "{r:?}"
        );
    }
}

#[test]
fn fail_fast_ejects_after_the_limit_fails_only_that_server_s_keys_and_retries_later() {
    let mut pool = pool(3, Failover::FailFast);
    let t0 = Instant::now();
    let dead = 1;
    let k_dead = key_on(&pool, dead, "d");
    let k_live = key_on(&pool, 2, "l");

    // One failure: still in (limit 2). A reply clears the count.
    pool.observe(dead, &Err(Error::Io(refused("refused"))), t0, t0);
    assert_eq!(pool.failures(dead), 1);
    pool.observe(dead, &Ok(Response::Stored), t0, t0);
    assert_eq!(pool.failures(dead), 0);
    // Errors that are the server's own reply count as a reply; request errors count neither way.
    pool.observe(dead, &Err(Error::Timeout), t0, t0);
    pool.observe(
        dead,
        &Err(Error::Poisoned(PoisonReason::Malformed(
            DecodeError::LineTooLong { max: 1 },
        ))),
        t0,
        t0,
    );
    assert_eq!(pool.failures(dead), 1);
    pool.observe(
        dead,
        &Err(Error::Client(Bytes::from_static(b"bad"))),
        t0,
        t0,
    );
    assert_eq!(pool.failures(dead), 0);

    // Two in a row: out for 10 s.
    pool.observe(dead, &Err(Error::Poisoned(PoisonReason::Closed)), t0, t0);
    pool.observe(dead, &Err(Error::Poisoned(PoisonReason::Timeout)), t0, t0);
    assert!(!pool.is_available(dead, t0));
    assert_eq!(pool.retry_at(dead), Some(t0 + Duration::from_secs(10)));

    let t1 = t0 + Duration::from_secs(1);
    match pool.plan(set(&k_dead), t1) {
        Plan::Refused(Error::Unavailable(msg)) => {
            assert!(
                msg.contains("127.0.0.1:11212") && msg.contains("down"),
                "{msg}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        pool.plan(set(&k_live), t1),
        Plan::One { server: 2, .. }
    ));
    // A split: the dead server's keys fail, the others are sent.
    let Plan::Split(split) = pool.plan(get(&[&k_live, &k_dead]), t1) else {
        panic!()
    };
    assert_eq!(split.parts.len(), 1);
    let (_, split, replies) = run_split(&Sim::new(3), split);
    assert!(matches!(split.merge(replies), Err(Error::Unavailable(_))));
    let split = pool
        .plan_split(
            Retrieve {
                command: RetrieveCommand::Get,
                keys: vec![key(&k_live), key(&k_dead)],
            },
            t1,
        )
        .unwrap();
    let (_, split, replies) = run_split(&Sim::new(3), split);
    let each = split.merge_each(replies);
    assert_eq!(each[0], Ok(None));
    assert!(matches!(&each[1], Err(Error::Unavailable(m)) if m.contains("down")));
    // A broadcast skips it, and reports it.
    let Plan::Broadcast(b) = pool.plan(Request::Version, t1) else {
        panic!()
    };
    assert_eq!(b.parts.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [0, 2]);
    let (_, b, replies) = run_broadcast(&Sim::new(3), b);
    assert!(matches!(b.merge(replies), Err(Error::Unavailable(m)) if m.contains("down")));

    // At the retry time its keys go to it again; one failure puts it out again at once.
    let t2 = t0 + Duration::from_secs(10);
    assert!(pool.is_available(dead, t2));
    assert!(matches!(pool.plan(set(&k_dead), t2), Plan::One { server, .. } if server == dead));
    pool.observe(dead, &Err(Error::Io(refused("still down"))), t2, t2);
    assert!(!pool.is_available(dead, t2));
    assert_eq!(pool.retry_at(dead), Some(t2 + Duration::from_secs(10)));
    // It answers at its next retry: re-admitted, nothing on record.
    let t3 = t2 + Duration::from_secs(10);
    assert!(matches!(pool.plan(set(&k_dead), t3), Plan::One { server, .. } if server == dead));
    pool.observe(dead, &Ok(Response::Stored), t3, t3);
    assert!(
        pool.is_available(dead, t2),
        "re-admitted: available even before its retry time"
    );
    assert_eq!(pool.retry_at(dead), None);
    assert_eq!(pool.failures(dead), 0);
}

#[test]
fn a_reply_to_a_request_sent_before_the_failure_neither_re_admits_nor_clears() {
    // Seen in the pool suite (`pool_kill_fail_fast`, now and then): a caller read its reply
    // just before its server was killed and counted it on another thread after the failures
    // that ejected the server; the server came back into the pool and the next call of its
    // keys was sent to the dead connection instead of being refused.
    for failover in [Failover::FailFast, Failover::Rehash] {
        let mut pool = pool(3, failover);
        let t0 = Instant::now();
        let dead = 1;
        let k_dead = key_on(&pool, dead, "late");
        let sent = t0;
        let t1 = t0 + Duration::from_millis(5);
        pool.observe(dead, &Err(Error::Poisoned(PoisonReason::Closed)), t1, t1);
        pool.observe(dead, &Err(Error::Io(refused("refused"))), t1, t1);
        assert!(!pool.is_available(dead, t1));
        // The late reply: sent at t0, counted at t2.
        let t2 = t1 + Duration::from_millis(1);
        pool.observe(dead, &Ok(Response::Stored), sent, t2);
        pool.observe(
            dead,
            &Err(Error::Client(Bytes::from_static(b"bad"))),
            sent,
            t2,
        );
        assert!(!pool.is_available(dead, t2), "{failover:?}: still out");
        assert_eq!(pool.retry_at(dead), Some(t1 + Duration::from_secs(10)));
        assert_eq!(pool.failures(dead), 2, "{failover:?}: failures kept");
        match pool.plan(set(&k_dead), t2) {
            Plan::One { server, .. } => assert_ne!(server, dead, "{failover:?}"),
            Plan::Refused(Error::Unavailable(m)) => assert!(m.contains("down"), "{m}"),
            other => panic!("{other:?}"),
        }
        // Before any ejection too: a late reply does not clear a later failure.
        let live = 2;
        pool.observe(live, &Err(Error::Timeout), t1, t1);
        pool.observe(live, &Ok(Response::Stored), sent, t2);
        assert_eq!(pool.failures(live), 1, "{failover:?}");
        // A reply to a request sent at or after the failure counts: the probe at retry time.
        pool.observe(live, &Ok(Response::Stored), t1, t2);
        assert_eq!(pool.failures(live), 0);
        let t3 = t1 + Duration::from_secs(10);
        pool.observe(dead, &Ok(Response::Stored), t3, t3);
        assert!(pool.is_available(dead, t2), "{failover:?}: re-admitted");
        assert_eq!((pool.retry_at(dead), pool.failures(dead)), (None, 0));
    }
}

#[test]
fn rehash_moves_a_dead_server_s_keys_while_it_is_out() {
    let mut pool = pool(3, Failover::Rehash);
    let t0 = Instant::now();
    let dead = 0;
    let keys: Vec<String> = (0..300).map(|i| format!("r:{i}")).collect();
    for _ in 0..2 {
        pool.observe(dead, &Err(Error::Io(refused("refused"))), t0, t0);
    }
    assert!(!pool.is_available(dead, t0));
    let t1 = t0 + Duration::from_secs(1);
    let mut moved = 0;
    for k in &keys {
        let home = pool.server_for(k.as_bytes());
        let Plan::One { server, .. } = pool.plan(set(k), t1) else {
            panic!()
        };
        assert_ne!(server, dead, "{k} sent to a dead server");
        if home == dead {
            moved += 1;
        }
    }
    assert!(moved > 0, "some keys lived on the dead server");
    // A split never names the dead server either, and nothing fails.
    let asked: Vec<&str> = keys.iter().map(String::as_str).collect();
    let Plan::Split(split) = pool.plan(get(&asked), t1) else {
        panic!()
    };
    assert!(split.parts.iter().all(|(s, _)| *s != dead));
    let (_, split, replies) = run_split(&Sim::new(3), split);
    assert_eq!(split.merge(replies), Ok(Response::Values(vec![])));
    // Back at its retry time; re-admitted by its first reply.
    let t2 = t0 + Duration::from_secs(10);
    let k = key_on(&pool, dead, "r");
    assert!(matches!(pool.plan(set(&k), t2), Plan::One { server, .. } if server == dead));
    pool.observe(dead, &Ok(Response::Stored), t2, t2);
    assert_eq!(pool.retry_at(dead), None);
    assert!(matches!(pool.plan(set(&k), t1), Plan::One { server, .. } if server == dead));
    // Every server out: every key fails.
    for s in 0..3 {
        for _ in 0..2 {
            pool.observe(s, &Err(Error::Timeout), t2, t2);
        }
    }
    assert!(
        matches!(pool.plan(set("x"), t2), Plan::Refused(Error::Unavailable(m)) if m.contains("every server"))
    );
}

#[test]
fn server_failures_are_connection_level_errors() {
    let counted = [
        Error::Io(refused("x")),
        Error::Io(IoError::from_kind("connect", IoKind::TimedOut)),
        Error::Unavailable("server 127.0.0.1:11211 is down".into()),
        Error::Timeout,
        Error::Poisoned(PoisonReason::Closed),
        Error::Poisoned(PoisonReason::Timeout),
    ];
    let not_counted = [
        Error::Poisoned(PoisonReason::StorageRejected),
        Error::Poisoned(PoisonReason::AmbiguousError),
        Error::Poisoned(PoisonReason::Quit),
        Error::Poisoned(PoisonReason::Malformed(DecodeError::LineTooLong { max: 1 })),
        Error::Server(Bytes::new()),
        Error::Client(Bytes::new()),
        Error::Protocol(Bytes::new()),
        Error::UnexpectedResponse {
            command: "get",
            response: "Stored".into(),
        },
        Error::Encode(EncodeError::NoKeys { command: "get" }),
        Error::Config("no server".into()),
    ];
    for e in &counted {
        assert!(is_server_failure(e), "{e:?}");
        assert!(e.is_connection_failure(), "{e:?}");
    }
    for e in &not_counted {
        assert!(!is_server_failure(e), "{e:?}");
        assert!(!e.is_connection_failure(), "{e:?}");
    }
}

#[test]
fn out_of_range_servers_are_ignored() {
    let mut pool = pool(2, Failover::FailFast);
    let now = Instant::now();
    pool.observe(7, &Err(Error::Timeout), now, now);
    pool.observe(7, &Ok(Response::Stored), now, now);
    assert!(!pool.record_failure(9, now));
    assert!(!pool.is_available(9, now));
    assert_eq!(pool.failures(9), 0);
}

#[test]
fn server_specs_parse_as_written() {
    let ok = |s: &str| ServerSpec::parse(s).unwrap();
    assert_eq!(ok("127.0.0.1:11212"), ServerSpec::new("127.0.0.1", 11212));
    assert_eq!(
        ok("cache1.example.com"),
        ServerSpec::new("cache1.example.com", 11211)
    );
    assert_eq!(ok("[::1]:11213"), ServerSpec::new("::1", 11213));
    assert_eq!(ok("[::1]"), ServerSpec::new("::1", 11211));
    assert_eq!(ok("::1"), ServerSpec::new("::1", 11211));
    assert_eq!(ok("/tmp/mc.sock"), ServerSpec::new("/tmp/mc.sock", 0));
    assert_eq!("h:7".parse::<ServerSpec>(), Ok(ServerSpec::new("h", 7)));
}

#[test]
fn server_spec_parse_errors() {
    use mcache_proto::AddrError;
    for (input, port) in [
        ("host:notaport", "notaport"),
        ("h:abc", "abc"),
        ("h:", ""),
        ("h:0", "0"),
        ("h:65536", "65536"),
        ("h:+1", "+1"),
        ("[::1]:x", "x"),
    ] {
        assert_eq!(
            ServerSpec::parse(input),
            Err(AddrError::BadPort {
                input: input.into(),
                port: port.into()
            }),
            "{input}"
        );
    }
    for input in ["", ":11211", "[]:1"] {
        assert_eq!(
            ServerSpec::parse(input),
            Err(AddrError::EmptyHost {
                input: input.into()
            }),
            "{input:?}"
        );
    }
    assert!(matches!(
        ServerSpec::parse("[::1"),
        Err(AddrError::Malformed { .. })
    ));
    assert!(matches!(
        ServerSpec::parse("[::1]11211"),
        Err(AddrError::Malformed { .. })
    ));
    for input in ["h x:1", "h\t", " h:1", "h\n:1"] {
        assert!(
            matches!(ServerSpec::parse(input), Err(AddrError::Malformed { .. })),
            "{input:?}"
        );
    }
    let e = ServerSpec::parse("h:abc").unwrap_err().to_string();
    assert!(e.contains("\"h:abc\"") && e.contains("port \"abc\""), "{e}");
}

proptest! {
    /// Whatever the keys (duplicates, misses, any count) and the pool size, a split retrieval
    /// merged back equals what one server holding every item would have answered.
    #[test]
    fn split_and_merge_equal_a_single_server(
        n in 1usize..6,
        keys in prop::collection::vec(0u16..40, 0..60),
        present in prop::collection::vec(any::<bool>(), 40),
    ) {
        let mut pool = pool(n, Failover::FailFast);
        let mut sim = Sim::new(n);
        let name = |i: u16| format!("p:{i}");
        for (i, &p) in present.iter().enumerate() {
            if p {
                let k = name(i as u16);
                sim.stores[pool.server_for(k.as_bytes())].insert(k.clone().into_bytes(), Bytes::from(k));
            }
        }
        let asked: Vec<String> = keys.iter().map(|&i| name(i)).collect();
        let asked: Vec<&str> = asked.iter().map(String::as_str).collect();
        let expect: Vec<Vec<u8>> = asked.iter().filter(|k| {
            let i: usize = k[2..].parse().unwrap();
            present[i]
        }).map(|k| k.as_bytes().to_vec()).collect();
        let now = Instant::now();
        let got = match pool.plan(get(&asked), now) {
            Plan::One { server, request } => sim.answer(server, &request),
            Plan::Split(split) => {
                let (_, split, replies) = run_split(&sim, split);
                split.merge(replies)
            }
            Plan::Refused(e) => Err(e),
            Plan::Broadcast(_) => panic!("a retrieval is never broadcast"),
            other => panic!("unknown plan {other:?}"),
        };
        if asked.is_empty() {
            // Sent to one server, which would refuse it: nothing to compare.
            return Ok(());
        }
        let got: Vec<Vec<u8>> = values(got).into_iter().map(|(k, _)| k).collect();
        prop_assert_eq!(got, expect);
    }
}

/// Requests of every shape for [`plan_all_up_equals_plan_while_nothing_is_ejected`].
fn shapes(keys: &[String]) -> Vec<Request> {
    let asked: Vec<&str> = keys.iter().map(String::as_str).collect();
    let mut out = vec![
        get(&asked),
        get(&[]),
        Request::Version,
        Request::Stats { args: None },
        Request::MetaNoop,
    ];
    for k in keys.iter().take(3) {
        out.push(set(k));
        out.push(get(&[k]));
        out.push(Request::MetaGet(Box::new(
            mcache_proto::meta::request::MetaGet {
                key: key(k),
                flags: MetaGetFlags::default(),
            },
        )));
    }
    out
}

fn retrieve(keys: &[String]) -> Retrieve {
    Retrieve {
        command: RetrieveCommand::Gets,
        keys: keys.iter().map(|k| key(k)).collect(),
    }
}

proptest! {
    /// While no server has an ejection on record, the plan without health or clock is the
    /// plan with them, for every request shape, pool size, failover and proxy; again once
    /// an ejected server is re-admitted.
    #[test]
    fn plan_all_up_equals_plan_while_nothing_is_ejected(
        n in 1usize..5,
        rehash in any::<bool>(),
        twemproxy in any::<bool>(),
        keys in prop::collection::vec(0u16..50, 0..12),
        failures in prop::collection::vec(0usize..5, 0..4),
    ) {
        let failover = if rehash { Failover::Rehash } else { Failover::FailFast };
        let mut pool = pool(n, failover)
            .with_proxy(twemproxy.then_some(ProxyKind::Twemproxy));
        let keys: Vec<String> = keys.iter().map(|i| format!("e:{i}")).collect();
        let t0 = Instant::now();
        // Failures below the limit (2) eject nothing; a server failed twice in a row is
        // ejected and re-admitted by the success that follows.
        for &s in &failures {
            pool.record_failure(s % n, t0);
            pool.record_success(s % n);
            pool.record_failure(s % n, t0);
        }
        let check = |pool: &mut Pool, now: Instant| -> Result<(), TestCaseError> {
            prop_assert_eq!(pool.ejected(), 0);
            for r in shapes(&keys) {
                prop_assert_eq!(pool.plan_all_up(r.clone()), pool.plan(r, now));
            }
            prop_assert_eq!(
                pool.plan_split_all_up(retrieve(&keys)),
                pool.plan_split(retrieve(&keys), now)
            );
            Ok(())
        };
        check(&mut pool, t0)?;
        // Eject a server: the plans may differ now; the all-up plan still is the placement.
        if n > 1 {
            let dead = failures.first().map_or(0, |s| s % n);
            while !pool.record_failure(dead, t0) {}
            prop_assert_eq!(pool.ejected(), 1);
            let t1 = t0 + Duration::from_secs(1);
            for k in &keys {
                prop_assert_eq!(
                    pool.plan_all_up(set(k)),
                    Plan::One { server: pool.server_for(k.as_bytes()), request: set(k) }
                );
            }
            prop_assert!(!pool.is_available(dead, t1));
            // Re-admitted by its first reply: nothing on record, the plans agree again.
            pool.observe(dead, &Ok(Response::Stored), t1, t1);
            prop_assert_eq!(pool.ejected(), 0);
            check(&mut pool, t1)?;
        }
    }
}

#[test]
fn ejected_counts_servers_with_an_ejection_on_record() {
    let mut pool = pool(3, Failover::FailFast);
    let t0 = Instant::now();
    assert_eq!(pool.ejected(), 0);
    assert!(!pool.record_failure(1, t0));
    assert_eq!(pool.ejected(), 0, "one failure of two");
    assert!(pool.record_failure(1, t0));
    assert_eq!(pool.ejected(), 1);
    assert!(pool.record_failure(2, t0) || pool.record_failure(2, t0));
    assert_eq!(pool.ejected(), 2);
    // Past its retry time a server is available again, but its ejection stays on record
    // until it answers.
    let t1 = t0 + Duration::from_secs(10);
    assert!(pool.is_available(1, t1));
    assert_eq!(pool.ejected(), 2);
    pool.record_success(1);
    assert_eq!(pool.ejected(), 1);
    pool.observe(2, &Err(Error::Server(Bytes::new())), t1, t1);
    assert_eq!(pool.ejected(), 0);
    // While a server is out, the all-up plan ignores it and the plan does not.
    for _ in 0..2 {
        pool.record_failure(0, t1);
    }
    let k = key_on(&pool, 0, "z");
    assert_eq!(
        pool.plan_all_up(set(&k)),
        Plan::One {
            server: 0,
            request: set(&k)
        }
    );
    assert!(matches!(
        pool.plan(set(&k), t1),
        Plan::Refused(Error::Unavailable(_))
    ));
}
