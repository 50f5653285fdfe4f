//! Through twemproxy (`nutcracker`, started by the case in front of two memcached): the text
//! commands it carries work unchanged (noreply batches closed with `version`); what it
//! cannot carry is refused before sending, and nothing is closed.

use super::{client, guard, sleep, spawn_catch, ClientOptions, Harness};
use crate::{Memcached, Nutcracker};
use bytes::Bytes;
use mcache_client::Memcache;
use mcache_proto::text::request::{Store, StoreCommand};
use mcache_proto::{
    EncodeError, Error, Key, MetaArithmeticFlags, MetaDeleteFlags, MetaGetFlags, MetaSetFlags,
    ProxyKind, StoreStatus, Value,
};
use std::time::Duration;

struct Proxied {
    backends: Vec<Memcached>,
    nut: Nutcracker,
}

fn start_proxied() -> Proxied {
    let backends: Vec<Memcached> = (0..2)
        .map(|_| Memcached::start().unwrap_or_else(|e| panic!("could not start memcached: {e}")))
        .collect();
    let mut b = Nutcracker::builder().hash("md5").distribution("ketama");
    for m in &backends {
        b = b.server(m.host_port_string(), 1, None);
    }
    let nut = b
        .start()
        .unwrap_or_else(|e| panic!("could not start nutcracker: {e}"));
    Proxied { backends, nut }
}

fn options(p: &Proxied) -> ClientOptions {
    ClientOptions {
        proxy: Some(ProxyKind::Twemproxy),
        // One connection: a `noreply` request is known to be done once a later reply
        // arrives, and any connection nutcracker closed would show.
        connections: 1,
        ..ClientOptions::new(p.nut.host_port_string())
    }
}

fn data(v: &Option<Value>) -> Option<&[u8]> {
    v.as_ref().map(|v| &v.data[..])
}

fn key(k: &str) -> Key {
    Key::new(k).unwrap()
}

/// Which backends hold `k` (asked directly, not through the proxy).
async fn backends_holding<H: Harness>(p: &Proxied, k: &str) -> Vec<usize> {
    let mut out = Vec::new();
    for (i, m) in p.backends.iter().enumerate() {
        let c = H::connect(m.host_port_string())
            .await
            .expect("direct client");
        if c.get(k).await.expect("direct get").is_some() {
            out.push(i);
        }
    }
    out
}

/// The text-command cases of the suite, through nutcracker: retrieval (get, gets, multi-key
/// fanned out over both backends, duplicates, misses, a 512 KiB value), storage (every
/// command, flags, cas, `noreply` closed by `version`), delete and touch, incr/decr with
/// their error; the keys really land on both backends.
pub async fn twemproxy_text_commands<H: Harness>() {
    let p = start_proxied();
    let c = client::<H>(options(&p)).await;
    assert!(c.version().await.unwrap().starts_with("1."));

    // Retrieval.
    assert_eq!(c.get("t:a").await.unwrap(), None);
    c.set("t:a", "alpha", 0).await.unwrap();
    assert_eq!(data(&c.get("t:a").await.unwrap()), Some(&b"alpha"[..]));
    let st = |command, k: &str, v: &'static str, noreply| Store {
        command,
        key: key(k),
        flags: 0xbeef,
        exptime: 0,
        value: Bytes::from_static(v.as_bytes()),
        noreply,
    };
    assert_eq!(
        c.store(st(StoreCommand::Set, "t:b", "beta", false))
            .await
            .unwrap(),
        StoreStatus::Stored
    );
    let b = c.get("t:b").await.unwrap().expect("hit");
    assert_eq!((b.flags, &b.data[..]), (0xbeef, &b"beta"[..]));
    let c1 = c
        .gets("t:a")
        .await
        .unwrap()
        .and_then(|v| v.cas)
        .expect("cas");
    c.set("t:a", "alpha2", 0).await.unwrap();
    let c2 = c
        .gets("t:a")
        .await
        .unwrap()
        .and_then(|v| v.cas)
        .expect("cas");
    assert_ne!(c1, c2);
    let got = c
        .get_multi(["t:a", "t:miss", "t:b", "t:a", "t:miss2"])
        .await
        .unwrap();
    assert_eq!(
        got.iter().map(data).collect::<Vec<_>>(),
        [
            Some(&b"alpha2"[..]),
            None,
            Some(&b"beta"[..]),
            Some(&b"alpha2"[..]),
            None
        ]
    );
    let got = c.gets_multi(["t:a", "t:nope", "t:b"]).await.unwrap();
    assert_eq!(got[0].as_ref().and_then(|v| v.cas), Some(c2));
    assert_eq!(got[1], None);
    assert!(got[2].as_ref().and_then(|v| v.cas).is_some());
    // 200 keys in one request, fanned out by the proxy over both backends.
    let keys: Vec<String> = (0..200).map(|i| format!("t:many:{i}")).collect();
    for k in keys.iter().step_by(2) {
        c.set(k.as_str(), k.clone(), 0).await.unwrap();
    }
    let got = c.get_multi(keys.iter()).await.unwrap();
    for (i, (v, k)) in got.iter().zip(&keys).enumerate() {
        let expect = (i % 2 == 0).then_some(k.as_bytes());
        assert_eq!(data(v), expect, "{k}");
    }
    let mut on = [0usize; 2];
    for k in keys.iter().step_by(2).take(20) {
        let held = backends_holding::<H>(&p, k).await;
        assert_eq!(held.len(), 1, "{k} on {held:?}");
        on[held[0]] += 1;
    }
    assert!(on[0] > 0 && on[1] > 0, "keys on both backends: {on:?}");
    let big: Vec<u8> = (0..512 * 1024).map(|i| (i % 251) as u8).collect();
    c.set("t:big", big.clone(), 0).await.unwrap();
    assert_eq!(data(&c.get("t:big").await.unwrap()), Some(&big[..]));

    // Storage.
    assert!(c.add("t:new", "x", 0).await.unwrap());
    assert!(!c.add("t:new", "y", 0).await.unwrap());
    assert!(!c.replace("t:absent", "x", 0).await.unwrap());
    assert!(c.replace("t:new", "z", 0).await.unwrap());
    assert!(c.append("t:new", "-after").await.unwrap());
    assert!(c.prepend("t:new", "before-").await.unwrap());
    assert!(!c.append("t:absent", "x").await.unwrap());
    assert_eq!(
        data(&c.get("t:new").await.unwrap()),
        Some(&b"before-z-after"[..])
    );
    let unique = c.gets("t:new").await.unwrap().and_then(|v| v.cas).unwrap();
    assert_eq!(
        c.cas("t:new", "cas1", 0, unique).await.unwrap(),
        StoreStatus::Stored
    );
    assert_eq!(
        c.cas("t:new", "cas2", 0, unique).await.unwrap(),
        StoreStatus::Exists
    );
    assert_eq!(
        c.cas("t:absent", "x", 0, unique).await.unwrap(),
        StoreStatus::NotFound
    );
    // noreply: the batch is closed with `version` (an `mn` would make nutcracker hang up),
    // and the next reply is the next request's own.
    assert_eq!(
        c.store(st(StoreCommand::Set, "t:nr", "quiet", true))
            .await
            .unwrap(),
        StoreStatus::NoReply
    );
    assert_eq!(
        c.store(st(StoreCommand::Add, "t:nr", "again", true))
            .await
            .unwrap(),
        StoreStatus::NoReply
    );
    assert_eq!(data(&c.get("t:nr").await.unwrap()), Some(&b"quiet"[..]));
    let raw: Vec<u8> = b"\r\nEND\r\n\0\xff VALUE x 0 1\r\n".to_vec();
    c.set("t:raw", raw.clone(), 0).await.unwrap();
    assert_eq!(data(&c.get("t:raw").await.unwrap()), Some(&raw[..]));
    // twemproxy hangs up on a negative exptime in a storage command: refused before sending.
    match c.set("t:gone", "x", -1).await {
        Err(Error::Encode(EncodeError::NotCarriedByProxy { command: "set", .. })) => {}
        other => panic!("set with exptime -1 through twemproxy: {other:?}"),
    }
    // touch takes it.
    c.set("t:gone", "x", 0).await.unwrap();
    assert!(c.touch("t:gone", -1).await.unwrap());
    assert_eq!(c.get("t:gone").await.unwrap(), None);
    // A backend's SERVER_ERROR is relayed; the connection goes on.
    let over: Vec<u8> = vec![b'o'; 1024 * 1024 - 10];
    match c.set("t:over", over, 0).await {
        Err(Error::Server(_)) => {}
        other => panic!("value over the server's item size: {other:?}"),
    }
    assert_eq!(data(&c.get("t:raw").await.unwrap()), Some(&raw[..]));

    // delete, touch (with noreply).
    assert!(!c.delete("t:d").await.unwrap());
    c.set("t:d", "v", 0).await.unwrap();
    assert!(c.delete("t:d").await.unwrap());
    assert_eq!(c.get("t:d").await.unwrap(), None);
    assert!(!c.touch("t:t", 100).await.unwrap());
    c.set("t:t", "v", 0).await.unwrap();
    assert!(c.touch("t:t", 100).await.unwrap());
    let quiet = |r: mcache_proto::Request| {
        let c = c.clone();
        async move { c.execute(r).await }
    };
    quiet(mcache_proto::Request::Touch {
        key: key("t:t"),
        exptime: 0,
        noreply: true,
    })
    .await
    .unwrap();
    quiet(mcache_proto::Request::Delete {
        key: key("t:t"),
        noreply: true,
    })
    .await
    .unwrap();
    assert_eq!(c.get("t:t").await.unwrap(), None);

    // incr/decr.
    assert_eq!(c.incr("t:n", 1).await.unwrap(), None);
    c.set("t:n", "10", 0).await.unwrap();
    assert_eq!(c.incr("t:n", 5).await.unwrap(), Some(15));
    assert_eq!(c.decr("t:n", 3).await.unwrap(), Some(12));
    assert_eq!(c.decr("t:n", 100).await.unwrap(), Some(0));
    assert_eq!(
        c.incr("t:n", u64::MAX).await.unwrap(),
        Some(u64::MAX),
        "0 + 2^64-1"
    );
    assert_eq!(c.incr("t:n", 2).await.unwrap(), Some(1), "wraps at 2^64");
    quiet(mcache_proto::Request::Incr {
        key: key("t:n"),
        delta: 9,
        noreply: true,
    })
    .await
    .unwrap();
    // (memcached pads an incremented value to its previous length: read it with `incr 0`.)
    assert_eq!(c.incr("t:n", 0).await.unwrap(), Some(10));
    c.set("t:text", "abc", 0).await.unwrap();
    assert!(matches!(c.incr("t:text", 1).await, Err(Error::Client(_))));
    assert_eq!(c.incr("t:n", 1).await.unwrap(), Some(11), "still in step");
    assert!(p.nut.is_running());
}

/// Every command twemproxy cannot carry fails with `NotCarriedByProxy` naming it, before
/// anything is sent: 8 tasks doing get/set on the same single connection meanwhile see no
/// error at all (nutcracker would have closed it, failing them). A client without the
/// proxy option shows what happens otherwise: `stats` loses the connection.
pub async fn twemproxy_refuses_what_it_cannot_carry<H: Harness>() {
    let p = start_proxied();
    let c = client::<H>(options(&p)).await;
    c.set("r:k", "v", 0).await.unwrap();

    let mut tasks = Vec::new();
    for t in 0..8 {
        let c = c.clone();
        tasks.push(spawn_catch::<H, _>(async move {
            for i in 0..150 {
                let k = format!("r:{t}:{}", i % 5);
                let v = format!("{k}={i}");
                c.set(k.as_str(), v.clone(), 0)
                    .await
                    .unwrap_or_else(|e| panic!("set {k}: {e:?}"));
                let got = c
                    .get(k.as_str())
                    .await
                    .unwrap_or_else(|e| panic!("get {k}: {e:?}"));
                assert_eq!(got.map(|v| v.data), Some(v.into()));
            }
        }));
    }
    for _ in 0..20 {
        let refusals: Vec<(&str, Result<(), Error>)> = vec![
            ("gat", c.gat(10, "r:k").await.map(drop)),
            ("gats", c.gats(10, "r:k").await.map(drop)),
            ("flush_all", c.flush_all(None).await),
            ("stats", c.stats(None).await.map(drop)),
            ("verbosity", c.verbosity(1).await),
            (
                "mg",
                c.meta_get("r:k", MetaGetFlags::default()).await.map(drop),
            ),
            (
                "ms",
                c.meta_set("r:k", "x", MetaSetFlags::default())
                    .await
                    .map(drop),
            ),
            (
                "md",
                c.meta_delete("r:k", MetaDeleteFlags::default())
                    .await
                    .map(drop),
            ),
            (
                "ma",
                c.meta_arithmetic("r:k", MetaArithmeticFlags::default())
                    .await
                    .map(drop),
            ),
            ("mn", c.meta_noop().await),
            ("me", c.meta_debug("r:k").await.map(drop)),
        ];
        for (command, r) in refusals {
            match r {
                Err(Error::Encode(EncodeError::NotCarriedByProxy {
                    command: got,
                    proxy: "twemproxy",
                    ..
                })) => assert_eq!(got, command),
                other => panic!("{command} through twemproxy: {other:?}"),
            }
        }
        sleep::<H>(Duration::from_millis(2)).await;
    }
    for t in tasks {
        guard::<H, _>("traffic beside the refusals", Duration::from_secs(30), t)
            .await
            .unwrap_or_else(|p| panic!("a task saw an error: {p}"));
    }
    assert_eq!(
        c.get("r:k").await.unwrap().map(|v| v.data),
        Some("v".into())
    );

    // Without the option, `stats` goes out and nutcracker hangs up (so would a single-key
    // `get`, sent as `mg` without it).
    let plain = client::<H>(ClientOptions {
        proxy: None,
        ..options(&p)
    })
    .await;
    plain.set("r:plain", "v", 0).await.unwrap();
    match plain.stats(None).await {
        Err(e) if super::is_outage(&e) => {}
        other => panic!("stats through twemproxy without the option: {other:?}"),
    }
    assert!(p.nut.is_running());
}
