//! Every command through the client, with its error cases.

use super::{
    client, guard, sleep, spawn_catch, start_memcached, stat, until_streak, ClientOptions, Harness,
};
use crate::Memcached;
use bytes::Bytes;
use mcache_client::Memcache;
use mcache_proto::text::request::{Store, StoreCommand};
use mcache_proto::{
    DecodeError, EncodeError, Error, Key, KeyError, MetaArithmeticFlags, MetaArithmeticMode,
    MetaDeleteFlags, MetaGetFlags, MetaSetFlags, MetaSetMode, MetaStatus, Opaque, PoisonReason,
    Stat, StoreStatus, Value,
};
use std::time::Duration;

fn key(k: &str) -> Key {
    Key::new(k).unwrap()
}

fn data(v: &Option<Value>) -> Option<&[u8]> {
    v.as_ref().map(|v| &v.data[..])
}

async fn stats<C: Memcache>(c: &C) -> Vec<Stat> {
    c.stats(None).await.expect("stats")
}

async fn ttl_of<C: Memcache>(c: &C, k: &str) -> i64 {
    let m = c
        .meta_get(
            k,
            MetaGetFlags {
                ttl: true,
                ..Default::default()
            },
        )
        .await
        .expect("mg t");
    assert_eq!(m.status, MetaStatus::Hd, "mg {k} t: {m:?}");
    m.flags.ttl.expect("mg t returns a ttl")
}

/// get, gets, get_multi (misses line up with the keys given, duplicates), gets_multi, gat, gats.
pub async fn retrieval<H: Harness>() {
    let mc = start_memcached();
    let c = client::<H>(ClientOptions::for_server(&mc)).await;

    assert_eq!(c.get("r:a").await.unwrap(), None);
    assert_eq!(c.gets("r:a").await.unwrap(), None);
    c.set("r:a", "alpha", 0).await.unwrap();
    let v = c.get("r:a").await.unwrap().expect("hit");
    assert_eq!(v.key, key("r:a"));
    assert_eq!(v.data, "alpha");
    assert_eq!(v.flags, 0);
    assert_eq!(v.cas, None, "get carries no cas");

    // Client flags go through `store`.
    let status = c
        .store(Store {
            command: StoreCommand::Set,
            key: key("r:b"),
            flags: 0xdead_beef,
            exptime: 0,
            value: Bytes::from_static(b"beta"),
            noreply: false,
        })
        .await
        .unwrap();
    assert_eq!(status, StoreStatus::Stored);
    let b = c.get("r:b").await.unwrap().expect("hit");
    assert_eq!((b.flags, &b.data[..]), (0xdead_beef, &b"beta"[..]));

    // Every key type the API takes.
    assert_eq!(
        data(&c.get(String::from("r:a")).await.unwrap()),
        Some(&b"alpha"[..])
    );
    assert_eq!(
        data(&c.get(b"r:a".to_vec()).await.unwrap()),
        Some(&b"alpha"[..])
    );
    assert_eq!(
        data(&c.get(&b"r:a"[..]).await.unwrap()),
        Some(&b"alpha"[..])
    );
    assert_eq!(
        data(&c.get(Bytes::from_static(b"r:a")).await.unwrap()),
        Some(&b"alpha"[..])
    );
    assert_eq!(
        data(&c.get(&key("r:a")).await.unwrap()),
        Some(&b"alpha"[..])
    );

    // gets: a cas that changes when the value does.
    let c1 = c
        .gets("r:a")
        .await
        .unwrap()
        .expect("hit")
        .cas
        .expect("gets has a cas");
    c.set("r:a", "alpha2", 0).await.unwrap();
    let g = c.gets("r:a").await.unwrap().expect("hit");
    assert_eq!(g.data, "alpha2");
    let c2 = g.cas.expect("gets has a cas");
    assert_ne!(c1, c2, "cas must change on update");

    // get_multi: one entry per key, in the order given.
    let got = c
        .get_multi(["r:a", "r:missing1", "r:b", "r:missing2"])
        .await
        .unwrap();
    assert_eq!(got.len(), 4);
    assert_eq!(data(&got[0]), Some(&b"alpha2"[..]));
    assert_eq!(got[1], None);
    assert_eq!(data(&got[2]), Some(&b"beta"[..]));
    assert_eq!(got[2].as_ref().map(|v| v.flags), Some(0xdead_beef));
    assert_eq!(got[3], None);
    for (v, k) in got.iter().zip(["r:a", "r:missing1", "r:b", "r:missing2"]) {
        if let Some(v) = v {
            assert_eq!(v.key, key(k));
        }
    }
    assert_eq!(c.get_multi(["r:x", "r:y"]).await.unwrap(), vec![None, None]);
    assert_eq!(c.get_multi(Vec::<&str>::new()).await.unwrap(), vec![]);

    // Duplicates: the server answers each occurrence.
    let dup = c.get_multi(["r:a", "r:a"]).await.unwrap();
    assert_eq!(
        dup.iter().map(data).collect::<Vec<_>>(),
        [Some(&b"alpha2"[..]); 2]
    );
    let dup = c.get_multi(["r:a", "r:nope", "r:a"]).await.unwrap();
    assert_eq!(
        dup.iter().map(data).collect::<Vec<_>>(),
        [Some(&b"alpha2"[..]), None, Some(&b"alpha2"[..])]
    );
    let dup = c.get_multi(["r:nope", "r:b", "r:nope"]).await.unwrap();
    assert_eq!(
        dup.iter().map(data).collect::<Vec<_>>(),
        [None, Some(&b"beta"[..]), None]
    );

    // Many keys in one request, every other one present.
    let keys: Vec<String> = (0..200).map(|i| format!("r:many:{i}")).collect();
    for k in keys.iter().step_by(2) {
        c.set(k.as_str(), k.clone(), 0).await.unwrap();
    }
    let got = c.get_multi(keys.iter()).await.unwrap();
    assert_eq!(got.len(), keys.len());
    for (i, (v, k)) in got.iter().zip(&keys).enumerate() {
        if i % 2 == 0 {
            assert_eq!(data(v), Some(k.as_bytes()), "key {k}");
        } else {
            assert_eq!(*v, None, "key {k}");
        }
    }

    // gets_multi: the same cas as gets.
    let got = c.gets_multi(["r:a", "r:missing", "r:b"]).await.unwrap();
    assert_eq!(got[0].as_ref().and_then(|v| v.cas), Some(c2));
    assert_eq!(got[1], None);
    assert!(got[2].as_ref().and_then(|v| v.cas).is_some());

    // gat / gats: the value, and a new TTL.
    assert_eq!(ttl_of(&c, "r:a").await, -1);
    let v = c.gat(100, "r:a").await.unwrap().expect("gat hit");
    assert_eq!((&v.data[..], v.cas), (&b"alpha2"[..], None));
    let ttl = ttl_of(&c, "r:a").await;
    assert!((1..=100).contains(&ttl), "ttl after gat 100: {ttl}");
    assert_eq!(c.gat(100, "r:missing").await.unwrap(), None);
    let v = c.gats(200, "r:b").await.unwrap().expect("gats hit");
    assert_eq!(v.data, "beta");
    let cas_b = c.gets("r:b").await.unwrap().and_then(|v| v.cas);
    assert_eq!(v.cas, cas_b);
    let ttl = ttl_of(&c, "r:b").await;
    assert!((101..=200).contains(&ttl), "ttl after gats 200: {ttl}");
    assert_eq!(c.gats(0, "r:missing").await.unwrap(), None);

    // A large value (512 KiB) in and out, intact.
    let big: Vec<u8> = (0..512 * 1024).map(|i| (i % 251) as u8).collect();
    c.set("r:big", big.clone(), 0).await.unwrap();
    assert_eq!(data(&c.get("r:big").await.unwrap()), Some(&big[..]));
}

/// set, add, replace, append, prepend (`Ok(false)` on NOT_STORED), cas, `store` with
/// flags and `noreply`, binary-safe and empty values, negative exptime.
pub async fn storage<H: Harness>() {
    let mc = start_memcached();
    let c = client::<H>(ClientOptions {
        // One connection, so that a `noreply` request is known to be done once a later
        // reply arrives.
        connections: 1,
        ..ClientOptions::for_server(&mc)
    })
    .await;

    c.set("s:k", "one", 0).await.unwrap();
    c.set("s:k", "two", 0).await.unwrap();
    assert_eq!(data(&c.get("s:k").await.unwrap()), Some(&b"two"[..]));

    assert!(c.add("s:new", "x", 0).await.unwrap());
    assert!(
        !c.add("s:new", "y", 0).await.unwrap(),
        "add on an existing key"
    );
    assert_eq!(data(&c.get("s:new").await.unwrap()), Some(&b"x"[..]));

    assert!(
        !c.replace("s:absent", "x", 0).await.unwrap(),
        "replace on a missing key"
    );
    assert_eq!(c.get("s:absent").await.unwrap(), None);
    assert!(c.replace("s:new", "z", 0).await.unwrap());
    assert_eq!(data(&c.get("s:new").await.unwrap()), Some(&b"z"[..]));

    assert!(
        !c.append("s:absent", "x").await.unwrap(),
        "append on a missing key"
    );
    assert!(
        !c.prepend("s:absent", "x").await.unwrap(),
        "prepend on a missing key"
    );
    assert_eq!(c.get("s:absent").await.unwrap(), None);
    assert!(c.append("s:k", "-after").await.unwrap());
    assert!(c.prepend("s:k", "before-").await.unwrap());
    assert_eq!(
        data(&c.get("s:k").await.unwrap()),
        Some(&b"before-two-after"[..])
    );

    // cas: Stored, then Exists with the stale unique, NotFound on a missing key.
    let unique = c
        .gets("s:k")
        .await
        .unwrap()
        .and_then(|v| v.cas)
        .expect("cas");
    assert_eq!(
        c.cas("s:k", "cas1", 0, unique).await.unwrap(),
        StoreStatus::Stored
    );
    assert_eq!(
        c.cas("s:k", "cas2", 0, unique).await.unwrap(),
        StoreStatus::Exists
    );
    assert_eq!(data(&c.get("s:k").await.unwrap()), Some(&b"cas1"[..]));
    assert_eq!(
        c.cas("s:absent", "x", 0, unique).await.unwrap(),
        StoreStatus::NotFound
    );
    assert_eq!(c.get("s:absent").await.unwrap(), None);

    // `store` with every storage command and flags.
    let st = |command, k: &str, v: &'static str, noreply| Store {
        command,
        key: key(k),
        flags: 7,
        exptime: 0,
        value: Bytes::from_static(v.as_bytes()),
        noreply,
    };
    assert_eq!(
        c.store(st(StoreCommand::Add, "s:st", "a", false))
            .await
            .unwrap(),
        StoreStatus::Stored
    );
    assert_eq!(
        c.store(st(StoreCommand::Add, "s:st", "b", false))
            .await
            .unwrap(),
        StoreStatus::NotStored
    );
    assert_eq!(
        c.store(st(StoreCommand::Replace, "s:nope", "b", false))
            .await
            .unwrap(),
        StoreStatus::NotStored
    );
    assert_eq!(
        c.store(st(StoreCommand::Append, "s:st", "c", false))
            .await
            .unwrap(),
        StoreStatus::Stored
    );
    let unique = c
        .gets("s:st")
        .await
        .unwrap()
        .and_then(|v| v.cas)
        .expect("cas");
    assert_eq!(
        c.store(st(StoreCommand::Cas(unique + 1000), "s:st", "d", false))
            .await
            .unwrap(),
        StoreStatus::Exists
    );
    assert_eq!(
        c.store(st(StoreCommand::Cas(unique), "s:st", "e", false))
            .await
            .unwrap(),
        StoreStatus::Stored
    );
    let v = c.get("s:st").await.unwrap().expect("hit");
    assert_eq!((v.flags, &v.data[..]), (7, &b"e"[..]));

    // noreply: no answer, and the next reply on the connection is the next request's own.
    assert_eq!(
        c.store(st(StoreCommand::Set, "s:nr", "quiet", true))
            .await
            .unwrap(),
        StoreStatus::NoReply
    );
    assert_eq!(
        c.store(st(StoreCommand::Add, "s:nr", "again", true))
            .await
            .unwrap(),
        StoreStatus::NoReply
    );
    assert_eq!(data(&c.get("s:nr").await.unwrap()), Some(&b"quiet"[..]));

    // Values are binary-safe; empty values exist.
    let raw: Vec<u8> = b"\r\nEND\r\n\0\xff VALUE x 0 1\r\n".to_vec();
    c.set("s:raw", raw.clone(), 0).await.unwrap();
    assert_eq!(data(&c.get("s:raw").await.unwrap()), Some(&raw[..]));
    c.set("s:empty", "", 0).await.unwrap();
    assert_eq!(data(&c.get("s:empty").await.unwrap()), Some(&b""[..]));

    // A negative exptime stores an item that is already expired.
    c.set("s:gone", "x", -1).await.unwrap();
    assert_eq!(c.get("s:gone").await.unwrap(), None);
}

/// delete (`true`/`false`), touch, flush_all now and delayed.
pub async fn delete_touch_flush<H: Harness>() {
    let mc = start_memcached();
    let c = client::<H>(ClientOptions::for_server(&mc)).await;

    assert!(!c.delete("d:k").await.unwrap(), "delete on a missing key");
    c.set("d:k", "v", 0).await.unwrap();
    assert!(c.delete("d:k").await.unwrap());
    assert_eq!(c.get("d:k").await.unwrap(), None);
    assert!(!c.delete("d:k").await.unwrap());

    assert!(
        !c.touch("d:t", 100).await.unwrap(),
        "touch on a missing key"
    );
    c.set("d:t", "v", 0).await.unwrap();
    assert!(c.touch("d:t", 100).await.unwrap());
    let ttl = ttl_of(&c, "d:t").await;
    assert!((1..=100).contains(&ttl), "ttl after touch 100: {ttl}");
    assert!(c.touch("d:t", 0).await.unwrap());
    assert_eq!(ttl_of(&c, "d:t").await, -1);

    for i in 0..10 {
        c.set(format!("d:f{i}"), "v", 0).await.unwrap();
    }
    // A delayed flush leaves items in place for now.
    c.flush_all(Some(1000)).await.unwrap();
    assert_eq!(data(&c.get("d:f0").await.unwrap()), Some(&b"v"[..]));
    c.flush_all(None).await.unwrap();
    let got = c
        .get_multi((0..10).map(|i| format!("d:f{i}")))
        .await
        .unwrap();
    assert!(got.iter().all(Option::is_none), "flush_all left {got:?}");
    assert_eq!(c.get("d:t").await.unwrap(), None);
    // Items stored after the flush are there.
    c.set("d:after", "v", 0).await.unwrap();
    assert_eq!(data(&c.get("d:after").await.unwrap()), Some(&b"v"[..]));
    c.flush_all(Some(0)).await.unwrap();
    assert_eq!(c.get("d:after").await.unwrap(), None);
}

/// incr/decr: `None` on a miss, 64-bit wrap on incr, clamp at 0 on decr; a non-number gives
/// `Error::Client` and the client keeps working.
pub async fn arithmetic<H: Harness>() {
    let mc = start_memcached();
    let c = client::<H>(ClientOptions::for_server(&mc)).await;

    assert_eq!(c.incr("a:n", 1).await.unwrap(), None);
    assert_eq!(c.decr("a:n", 1).await.unwrap(), None);
    assert_eq!(
        c.get("a:n").await.unwrap(),
        None,
        "incr on a miss creates nothing"
    );

    c.set("a:n", "10", 0).await.unwrap();
    assert_eq!(c.incr("a:n", 5).await.unwrap(), Some(15));
    assert_eq!(c.decr("a:n", 3).await.unwrap(), Some(12));
    assert_eq!(data(&c.get("a:n").await.unwrap()), Some(&b"12"[..]));
    assert_eq!(
        c.decr("a:n", 100).await.unwrap(),
        Some(0),
        "decr clamps at 0"
    );
    assert_eq!(c.decr("a:n", 1).await.unwrap(), Some(0));
    assert_eq!(c.incr("a:n", 0).await.unwrap(), Some(0));

    c.set("a:max", u64::MAX.to_string(), 0).await.unwrap();
    assert_eq!(
        c.incr("a:max", 1).await.unwrap(),
        Some(0),
        "incr wraps at 2^64"
    );
    assert_eq!(c.incr("a:max", 2).await.unwrap(), Some(2));
    c.set("a:one", "1", 0).await.unwrap();
    assert_eq!(c.incr("a:one", u64::MAX).await.unwrap(), Some(0));
    assert_eq!(c.incr("a:one", u64::MAX).await.unwrap(), Some(u64::MAX));
    assert_eq!(c.decr("a:one", u64::MAX).await.unwrap(), Some(0));

    c.set("a:text", "abc", 0).await.unwrap();
    for r in [c.incr("a:text", 1).await, c.decr("a:text", 1).await] {
        match r {
            Err(Error::Client(msg)) => assert!(
                msg.windows(11).any(|w| w == b"non-numeric"),
                "CLIENT_ERROR message: {msg:?}"
            ),
            other => panic!("incr on a non-number: expected Err(Error::Client), got {other:?}"),
        }
    }
    // The connection is still in step.
    assert_eq!(data(&c.get("a:text").await.unwrap()), Some(&b"abc"[..]));
    assert_eq!(c.incr("a:max", 1).await.unwrap(), Some(3));
    c.set("a:after", "41", 0).await.unwrap();
    assert_eq!(c.incr("a:after", 1).await.unwrap(), Some(42));
}

/// version, verbosity, stats (general, settings, reset, refused arguments), mn.
pub async fn server_commands<H: Harness>() {
    let mc = start_memcached();
    let c = client::<H>(ClientOptions::for_server(&mc)).await;

    let v = c.version().await.unwrap();
    assert!(v.starts_with("1."), "version: {v:?}");
    c.verbosity(1).await.unwrap();
    c.verbosity(0).await.unwrap();
    c.meta_noop().await.unwrap();

    let s = stats(&c).await;
    assert_eq!(stat(&s, "pid"), u64::from(mc.pid()));
    assert!(
        stat(&s, "curr_connections") >= 2,
        "the client's two connections"
    );
    let settings = c.stats(Some("settings")).await.unwrap();
    assert_eq!(stat(&settings, "item_size_max"), 1024 * 1024);
    assert!(!c.stats(Some("slabs")).await.unwrap().is_empty());

    c.set("sv:k", "v", 0).await.unwrap();
    assert!(c.get("sv:k").await.unwrap().is_some());
    assert!(stat(&stats(&c).await, "get_hits") >= 1);
    assert_eq!(c.stats(Some("reset")).await.unwrap(), vec![]);
    assert_eq!(stat(&stats(&c).await, "get_hits"), 0, "stats reset");

    // A stats argument that would smuggle a command is refused before sending.
    match c.stats(Some("items\r\nflush_all")).await {
        Err(Error::Encode(EncodeError::InvalidToken { .. })) => {}
        other => panic!("stats with CRLF: {other:?}"),
    }
    // An unknown stats argument is the server's error; the connection goes on.
    assert!(c.stats(Some("no_such_group")).await.is_err());
    assert_eq!(data(&c.get("sv:k").await.unwrap()), Some(&b"v"[..]));
    assert_eq!(c.version().await.unwrap(), v);
}

/// mg (v/c/f/t/k/s, O, q, T), ms modes and C/q, md, ma (N/J/D, modes), mn, me.
pub async fn meta_commands<H: Harness>() {
    let mc = start_memcached();
    let c = client::<H>(ClientOptions::for_server(&mc)).await;

    // ms with flags, then mg with every return flag.
    let set = c
        .meta_set(
            "m:k",
            "hello",
            MetaSetFlags {
                client_flags: Some(5),
                ttl: Some(0),
                cas: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(set.status, MetaStatus::Hd);
    let cas = set.flags.cas.expect("ms c returns the cas");
    let m = c
        .meta_get(
            "m:k",
            MetaGetFlags {
                value: true,
                cas: true,
                client_flags: true,
                ttl: true,
                key: true,
                size: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(m.status, MetaStatus::Va);
    assert_eq!(m.value.as_deref(), Some(&b"hello"[..]));
    assert_eq!(m.flags.cas, Some(cas));
    assert_eq!(m.flags.client_flags, Some(5));
    assert_eq!(m.flags.ttl, Some(-1));
    assert_eq!(m.flags.key, Some(key("m:k")));
    assert_eq!(m.flags.size, Some(5));
    // The text protocol sees the same item.
    let v = c.gets("m:k").await.unwrap().expect("hit");
    assert_eq!((v.flags, v.cas, &v.data[..]), (5, Some(cas), &b"hello"[..]));

    // Misses: EN, and with q the (silent) miss is still reported as EN.
    let miss = c
        .meta_get(
            "m:none",
            MetaGetFlags {
                value: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((miss.status, miss.value), (MetaStatus::En, None));
    let quiet = MetaGetFlags {
        value: true,
        quiet: true,
        ..Default::default()
    };
    assert_eq!(
        c.meta_get("m:none", quiet).await.unwrap().status,
        MetaStatus::En
    );
    // q hides misses only: a hit is answered.
    let hit = c.meta_get("m:k", quiet).await.unwrap();
    assert_eq!(
        (hit.status, hit.value.as_deref()),
        (MetaStatus::Va, Some(&b"hello"[..]))
    );
    // mg without v: HD.
    assert_eq!(
        c.meta_get("m:k", MetaGetFlags::default())
            .await
            .unwrap()
            .status,
        MetaStatus::Hd
    );

    // The caller's own opaque comes back.
    let opaque = Opaque::new(b"caller-7").unwrap();
    for k in ["m:k", "m:none"] {
        let m = c
            .meta_get(
                k,
                MetaGetFlags {
                    opaque: Some(opaque),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(m.flags.opaque, Some(opaque), "mg {k} O");
    }

    // T updates the TTL and t reports it after the update.
    let m = c
        .meta_get(
            "m:k",
            MetaGetFlags {
                touch: Some(100),
                ttl: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(matches!(m.flags.ttl, Some(1..=100)), "mg T100 t: {m:?}");

    // ms modes.
    let mode = |mode| MetaSetFlags {
        mode: Some(mode),
        ..Default::default()
    };
    let ms = |k: &'static str, v: &'static str, f: MetaSetFlags| {
        let c = c.clone();
        async move { c.meta_set(k, v, f).await.unwrap().status }
    };
    assert_eq!(ms("m:k", "x", mode(MetaSetMode::Add)).await, MetaStatus::Ns);
    assert_eq!(
        ms("m:add", "a", mode(MetaSetMode::Add)).await,
        MetaStatus::Hd
    );
    assert_eq!(
        ms("m:none", "x", mode(MetaSetMode::Replace)).await,
        MetaStatus::Ns
    );
    assert_eq!(
        ms("m:add", "b", mode(MetaSetMode::Replace)).await,
        MetaStatus::Hd
    );
    assert_eq!(
        ms("m:none", "x", mode(MetaSetMode::Append)).await,
        MetaStatus::Ns
    );
    assert_eq!(
        ms("m:none", "x", mode(MetaSetMode::Prepend)).await,
        MetaStatus::Ns
    );
    assert_eq!(
        ms("m:add", "c", mode(MetaSetMode::Append)).await,
        MetaStatus::Hd
    );
    assert_eq!(
        ms("m:add", "<", mode(MetaSetMode::Prepend)).await,
        MetaStatus::Hd
    );
    assert_eq!(
        ms("m:add", "set", mode(MetaSetMode::Set)).await,
        MetaStatus::Hd
    );
    assert_eq!(data(&c.get("m:none").await.unwrap()), None);
    assert_eq!(data(&c.get("m:add").await.unwrap()), Some(&b"set"[..]));
    assert_eq!(
        ms("m:add", "+", mode(MetaSetMode::Append)).await,
        MetaStatus::Hd
    );
    assert_eq!(data(&c.get("m:add").await.unwrap()), Some(&b"set+"[..]));

    // ms C: EX on a stale cas, NF on a missing key, HD on the right one.
    let cas_now = c.gets("m:add").await.unwrap().and_then(|v| v.cas).unwrap();
    let cmp = |cas| MetaSetFlags {
        compare_cas: Some(cas),
        ..Default::default()
    };
    assert_eq!(ms("m:add", "x", cmp(cas_now + 1000)).await, MetaStatus::Ex);
    assert_eq!(ms("m:none", "x", cmp(cas_now)).await, MetaStatus::Nf);
    assert_eq!(ms("m:add", "y", cmp(cas_now)).await, MetaStatus::Hd);
    assert_eq!(data(&c.get("m:add").await.unwrap()), Some(&b"y"[..]));
    // ms q: success is silent (reported HD); a failure is answered.
    let q = MetaSetFlags {
        quiet: true,
        ..Default::default()
    };
    assert_eq!(ms("m:q", "quiet", q).await, MetaStatus::Hd);
    assert_eq!(data(&c.get("m:q").await.unwrap()), Some(&b"quiet"[..]));
    let q_add = MetaSetFlags {
        mode: Some(MetaSetMode::Add),
        quiet: true,
        ..Default::default()
    };
    assert_eq!(ms("m:q", "again", q_add).await, MetaStatus::Ns);
    // ms with T: a TTL.
    assert_eq!(
        ms(
            "m:ttl",
            "t",
            MetaSetFlags {
                ttl: Some(300),
                ..Default::default()
            }
        )
        .await,
        MetaStatus::Hd
    );
    assert!((201..=300).contains(&ttl_of(&c, "m:ttl").await));

    // md: HD, NF, EX on a stale cas; q hides success only.
    let md = |k: &'static str, f: MetaDeleteFlags| {
        let c = c.clone();
        async move { c.meta_delete(k, f).await.unwrap().status }
    };
    assert_eq!(
        md("m:none", MetaDeleteFlags::default()).await,
        MetaStatus::Nf
    );
    let cas_q = c.gets("m:q").await.unwrap().and_then(|v| v.cas).unwrap();
    assert_eq!(
        md(
            "m:q",
            MetaDeleteFlags {
                compare_cas: Some(cas_q + 1),
                ..Default::default()
            }
        )
        .await,
        MetaStatus::Ex
    );
    assert_eq!(
        md(
            "m:q",
            MetaDeleteFlags {
                compare_cas: Some(cas_q),
                ..Default::default()
            }
        )
        .await,
        MetaStatus::Hd
    );
    assert_eq!(c.get("m:q").await.unwrap(), None);
    let mdq = MetaDeleteFlags {
        quiet: true,
        ..Default::default()
    };
    assert_eq!(md("m:add", mdq).await, MetaStatus::Hd);
    assert_eq!(md("m:add", mdq).await, MetaStatus::Nf);
    assert_eq!(c.get("m:add").await.unwrap(), None);
    // md I: invalidate (stale), then mg reports X.
    c.set("m:inv", "v", 0).await.unwrap();
    assert_eq!(
        md(
            "m:inv",
            MetaDeleteFlags {
                invalidate: true,
                ttl: Some(30),
                ..Default::default()
            }
        )
        .await,
        MetaStatus::Hd
    );
    let m = c
        .meta_get(
            "m:inv",
            MetaGetFlags {
                value: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(m.flags.stale, "mg after md I: {m:?}");

    // ma: NF on a miss; N/J create; D, modes; v returns the value.
    let ma = |k: &'static str, f: MetaArithmeticFlags| {
        let c = c.clone();
        async move { c.meta_arithmetic(k, f).await.unwrap() }
    };
    assert_eq!(
        ma("m:n", MetaArithmeticFlags::default()).await.status,
        MetaStatus::Nf
    );
    let m = ma(
        "m:n",
        MetaArithmeticFlags {
            vivify: Some(0),
            initial: Some(10),
            value: true,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        (m.status, m.value.as_deref()),
        (MetaStatus::Va, Some(&b"10"[..]))
    );
    let m = ma(
        "m:n",
        MetaArithmeticFlags {
            value: true,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(m.value.as_deref(), Some(&b"11"[..]));
    let m = ma(
        "m:n",
        MetaArithmeticFlags {
            delta: Some(5),
            value: true,
            cas: true,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(m.value.as_deref(), Some(&b"16"[..]));
    assert!(m.flags.cas.is_some());
    let m = ma(
        "m:n",
        MetaArithmeticFlags {
            mode: Some(MetaArithmeticMode::Decrement),
            delta: Some(100),
            value: true,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(m.value.as_deref(), Some(&b"0"[..]), "ma MD clamps at 0");
    let m = ma(
        "m:n",
        MetaArithmeticFlags {
            mode: Some(MetaArithmeticMode::Increment),
            delta: Some(7),
            ..Default::default()
        },
    )
    .await;
    assert_eq!((m.status, m.value), (MetaStatus::Hd, None));
    let m = ma(
        "m:n",
        MetaArithmeticFlags {
            quiet: true,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(m.status, MetaStatus::Hd);
    assert_eq!(c.incr("m:n", 0).await.unwrap(), Some(8));
    let m = ma(
        "m:n",
        MetaArithmeticFlags {
            key: true,
            opaque: Some(opaque),
            value: true,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        (m.flags.key, m.flags.opaque),
        (Some(key("m:n")), Some(opaque))
    );
    match c
        .meta_arithmetic("m:k", MetaArithmeticFlags::default())
        .await
    {
        Err(Error::Client(_)) => {}
        other => panic!("ma on a non-number: {other:?}"),
    }
    // memcached rewrites a shorter number in place, padded with spaces ("9 " after "10").
    let m = c
        .meta_get(
            "m:n",
            MetaGetFlags {
                value: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        m.value.as_deref().map(<[u8]>::trim_ascii_end),
        Some(&b"9"[..])
    );

    // me: facts about an item, None on a miss; mn.
    let info = c.meta_debug("m:k").await.unwrap().expect("me on a hit");
    let info = String::from_utf8_lossy(&info).into_owned();
    assert!(
        info.contains("exp=") && info.contains("size="),
        "me: {info}"
    );
    assert_eq!(c.meta_debug("m:none").await.unwrap(), None);
    c.meta_noop().await.unwrap();
    assert_eq!(data(&c.get("m:k").await.unwrap()), Some(&b"hello"[..]));
}

/// Quiet meta requests from many tasks at once: every silent success and every answered
/// miss or failure goes to its own caller.
pub async fn meta_quiet_batches<H: Harness>() {
    let mc = start_memcached();
    let c = client::<H>(ClientOptions::for_server(&mc)).await;
    let mut tasks = Vec::new();
    for t in 0..16 {
        let c = c.clone();
        tasks.push(spawn_catch::<H, _>(async move {
            for i in 0..150u32 {
                let k = format!("q:{t}:{}", i % 7);
                let v = format!("{k}={i}");
                let qs = MetaSetFlags {
                    quiet: true,
                    ..Default::default()
                };
                assert_eq!(
                    c.meta_set(k.as_str(), v.clone(), qs).await.unwrap().status,
                    MetaStatus::Hd
                );
                let qg = MetaGetFlags {
                    value: true,
                    quiet: true,
                    key: true,
                    ..Default::default()
                };
                let m = c.meta_get(k.as_str(), qg).await.unwrap();
                assert_eq!(m.status, MetaStatus::Va);
                assert_eq!(m.value.as_deref(), Some(v.as_bytes()));
                assert_eq!(m.flags.key, Some(key(&k)));
                let miss = format!("q:{t}:miss:{i}");
                assert_eq!(
                    c.meta_get(miss.as_str(), qg).await.unwrap().status,
                    MetaStatus::En
                );
                let qd = MetaDeleteFlags {
                    quiet: true,
                    ..Default::default()
                };
                assert_eq!(
                    c.meta_delete(miss.as_str(), qd).await.unwrap().status,
                    MetaStatus::Nf
                );
                if i % 3 == 0 {
                    assert_eq!(
                        c.meta_delete(k.as_str(), qd).await.unwrap().status,
                        MetaStatus::Hd
                    );
                    assert_eq!(
                        c.meta_get(k.as_str(), qg).await.unwrap().status,
                        MetaStatus::En
                    );
                }
                let qa = MetaSetFlags {
                    mode: Some(MetaSetMode::Add),
                    quiet: true,
                    ..Default::default()
                };
                let expect = if i % 3 == 0 {
                    MetaStatus::Hd
                } else {
                    MetaStatus::Ns
                };
                assert_eq!(
                    c.meta_set(k.as_str(), v.clone(), qa).await.unwrap().status,
                    expect
                );
            }
        }));
    }
    for t in tasks {
        guard::<H, _>("quiet batch task", Duration::from_secs(30), t)
            .await
            .unwrap_or_else(|p| panic!("task panicked: {p}"));
    }
}

/// Binary keys (`Key::binary`) with every meta command; text commands refuse them before
/// sending.
pub async fn binary_keys<H: Harness>() {
    let mc = start_memcached();
    let c = client::<H>(ClientOptions::for_server(&mc)).await;

    let raw: &[u8] = b"\x00\x01 \r\nflush_all\r\n\xff";
    let k = Key::binary(raw).unwrap();
    assert_eq!(
        c.meta_set(&k, "bin", MetaSetFlags::default())
            .await
            .unwrap()
            .status,
        MetaStatus::Hd
    );
    let m = c
        .meta_get(
            &k,
            MetaGetFlags {
                value: true,
                key: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(m.value.as_deref(), Some(&b"bin"[..]));
    let back = m.flags.key.expect("k flag");
    assert!(back.is_binary());
    assert_eq!(back.decoded(), raw);
    assert_eq!(back, k);

    let n = Key::binary(b"\x00counter").unwrap();
    let m = c
        .meta_arithmetic(
            &n,
            MetaArithmeticFlags {
                vivify: Some(0),
                initial: Some(7),
                value: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(m.value.as_deref(), Some(&b"7"[..]));
    assert_eq!(
        c.meta_delete(&k, MetaDeleteFlags::default())
            .await
            .unwrap()
            .status,
        MetaStatus::Hd
    );
    assert_eq!(
        c.meta_get(&k, MetaGetFlags::default())
            .await
            .unwrap()
            .status,
        MetaStatus::En
    );

    // A binary key is the item whose key is the raw bytes: the same as a text key.
    c.set("plain", "text", 0).await.unwrap();
    let m = c
        .meta_get(
            Key::binary(b"plain").unwrap(),
            MetaGetFlags {
                value: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(m.value.as_deref(), Some(&b"text"[..]));

    // Limits of binary keys.
    assert!(Key::binary([7u8; 186]).is_ok());
    assert!(matches!(
        Key::binary([7u8; 187]),
        Err(KeyError::TooLong { .. })
    ));
    assert_eq!(Key::binary([]), Err(KeyError::Empty));
    let long = Key::binary([0xabu8; 186]).unwrap();
    assert_eq!(
        c.meta_set(&long, "long", MetaSetFlags::default())
            .await
            .unwrap()
            .status,
        MetaStatus::Hd
    );
    let m = c
        .meta_get(
            &long,
            MetaGetFlags {
                value: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(m.value.as_deref(), Some(&b"long"[..]));

    // Text commands refuse binary keys, and send nothing.
    let before = stat(&stats(&c).await, "bytes_read");
    let binary_refused = |r: Result<(), Error>| match r {
        Err(Error::Encode(EncodeError::Key(KeyError::BinaryInTextCommand))) => {}
        other => panic!("text command with a binary key: {other:?}"),
    };
    binary_refused(c.get(&k).await.map(drop));
    binary_refused(c.get_multi([key("plain"), k.clone()]).await.map(drop));
    binary_refused(c.set(&k, "x", 0).await);
    binary_refused(c.delete(&k).await.map(drop));
    binary_refused(c.incr(&n, 1).await.map(drop));
    binary_refused(c.touch(&k, 1).await.map(drop));
    let after = stat(&stats(&c).await, "bytes_read");
    assert_eq!(
        after - before,
        b"stats\r\n".len() as u64,
        "bytes reached the server"
    );
}

/// A value over the client's limit (2 MB against the default 1 MiB) is refused with a typed
/// error and nothing is sent; the connection keeps working.
pub async fn value_over_client_limit<H: Harness>() {
    let mc = start_memcached();
    let c = client::<H>(ClientOptions::for_server(&mc)).await;
    c.set("v:ok", "before", 0).await.unwrap();
    let big = Bytes::from(vec![b'x'; 2_000_000]);
    let before = stats(&c).await;

    let too_large = |r: Result<(), Error>| match r {
        Err(Error::Encode(EncodeError::ValueTooLarge { len, max })) => {
            assert_eq!((len, max), (2_000_000, 1024 * 1024));
        }
        other => panic!("2 MB value: expected Err(Encode(ValueTooLarge)), got {other:?}"),
    };
    too_large(c.set("v:big", big.clone(), 0).await);
    too_large(c.add("v:big", big.clone(), 0).await.map(drop));
    too_large(c.append("v:ok", big.clone()).await.map(drop));
    too_large(c.cas("v:ok", big.clone(), 0, 1).await.map(drop));
    too_large(
        c.meta_set("v:big", big.clone(), MetaSetFlags::default())
            .await
            .map(drop),
    );

    let after = stats(&c).await;
    assert_eq!(stat(&after, "cmd_set"), stat(&before, "cmd_set"));
    assert_eq!(
        stat(&after, "bytes_read") - stat(&before, "bytes_read"),
        b"stats\r\n".len() as u64,
        "bytes reached the server"
    );
    assert_eq!(data(&c.get("v:ok").await.unwrap()), Some(&b"before"[..]));
    assert_eq!(c.get("v:big").await.unwrap(), None);
    c.set("v:ok", "after", 0).await.unwrap();
    assert_eq!(data(&c.get("v:ok").await.unwrap()), Some(&b"after"[..]));
}

/// A value over the client's limit coming back from a server with a larger item size is a
/// typed error (the connection it arrived on is replaced), and the client goes on.
pub async fn value_over_client_limit_from_server<H: Harness>() {
    let mc = Memcached::builder()
        .args(["-I", "4m"])
        .start()
        .unwrap_or_else(|e| panic!("could not start memcached: {e}"));
    let big_client = client::<H>(ClientOptions {
        max_value_len: Some(4 * 1024 * 1024),
        ..ClientOptions::for_server(&mc)
    })
    .await;
    let big = Bytes::from(vec![b'z'; 1536 * 1024]);
    big_client.set("v:big", big.clone(), 0).await.unwrap();
    assert_eq!(
        big_client.get("v:big").await.unwrap().map(|v| v.data),
        Some(big)
    );

    let c = client::<H>(ClientOptions::for_server(&mc)).await;
    c.set("v:small", "fine", 0).await.unwrap();
    for _ in 0..3 {
        match c.get("v:big").await {
            Err(Error::Poisoned(PoisonReason::Malformed(DecodeError::ValueTooLarge {
                len,
                max,
            }))) => {
                assert_eq!((len, max), (1536 * 1024, 1024 * 1024));
            }
            other => panic!("1.5 MiB value for a 1 MiB client: {other:?}"),
        }
        until_streak::<H, _, _>("connections back", || async {
            let v = c.get("v:small").await?;
            assert_eq!(data(&v), Some(&b"fine"[..]));
            Ok(())
        })
        .await;
    }
    let m = c
        .meta_get(
            "v:big",
            MetaGetFlags {
                size: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(m.flags.size, Some(1536 * 1024), "mg without v is fine");
}

/// A value under the client's limit but over the server's item size gets
/// `Error::Server("object too large ...")`; the server swallows the data and the connection
/// stays in step.
pub async fn value_over_server_limit<H: Harness>() {
    let mc = start_memcached();
    let c = client::<H>(ClientOptions {
        max_value_len: Some(2 * 1024 * 1024),
        ..ClientOptions::for_server(&mc)
    })
    .await;
    let big = Bytes::from(vec![b'y'; 1536 * 1024]);
    let server_refused = |what: &str, r: Result<(), Error>| match r {
        Err(Error::Server(msg)) => assert!(
            String::from_utf8_lossy(&msg).contains("too large"),
            "{what}: SERVER_ERROR {msg:?}"
        ),
        other => panic!("{what}: expected Err(Error::Server(object too large)), got {other:?}"),
    };
    server_refused("set", c.set("v:big", big.clone(), 0).await);
    c.set("v:small", "fine", 0).await.unwrap();
    assert_eq!(data(&c.get("v:small").await.unwrap()), Some(&b"fine"[..]));
    assert_eq!(c.get("v:big").await.unwrap(), None);
    server_refused(
        "ms",
        c.meta_set("v:big", big.clone(), MetaSetFlags::default())
            .await
            .map(drop),
    );
    assert_eq!(data(&c.get("v:small").await.unwrap()), Some(&b"fine"[..]));

    // Interleaved with other callers' requests on the same connections.
    let mut tasks = Vec::new();
    for t in 0..8 {
        let c = c.clone();
        let big = big.clone();
        tasks.push(spawn_catch::<H, _>(async move {
            for i in 0..5 {
                let k = format!("v:{t}:{i}");
                if (t + i) % 2 == 0 {
                    assert!(matches!(
                        c.set(k.as_str(), big.clone(), 0).await,
                        Err(Error::Server(_))
                    ));
                } else {
                    c.set(k.as_str(), k.clone(), 0).await.unwrap();
                }
                let got = c.get(k.as_str()).await.unwrap();
                if (t + i) % 2 == 0 {
                    assert_eq!(got, None);
                } else {
                    assert_eq!(data(&got), Some(k.as_bytes()));
                }
            }
        }));
    }
    for t in tasks {
        guard::<H, _>("task", Duration::from_secs(30), t)
            .await
            .unwrap_or_else(|p| panic!("task panicked: {p}"));
    }
}

/// Whether a key error is the one expected.
type IsExpected = fn(&KeyError) -> bool;

/// Invalid keys (space, CR LF, 251 bytes, empty, control bytes, DEL) are refused by every
/// command before anything is sent: the server's byte and command counters do not move.
pub async fn invalid_keys_are_never_sent<H: Harness>() {
    let mc = start_memcached();
    let c = client::<H>(ClientOptions::for_server(&mc)).await;
    c.set("canary", "alive", 0).await.unwrap();
    let ok = key("canary");
    let long = vec![b'k'; 251];
    let bad: Vec<(&[u8], IsExpected)> = vec![
        (b"with space", |e| {
            matches!(
                e,
                KeyError::InvalidByte {
                    byte: b' ',
                    offset: 4
                }
            )
        }),
        (b"a\r\nflush_all", |e| {
            matches!(
                e,
                KeyError::InvalidByte {
                    byte: b'\r',
                    offset: 1
                }
            )
        }),
        (b"nl\n", |e| {
            matches!(e, KeyError::InvalidByte { byte: b'\n', .. })
        }),
        (&long, |e| matches!(e, KeyError::TooLong { len: 251 })),
        (b"", |e| matches!(e, KeyError::Empty)),
        (b"tab\tkey", |e| {
            matches!(e, KeyError::InvalidByte { byte: b'\t', .. })
        }),
        (b"nul\0", |e| {
            matches!(e, KeyError::InvalidByte { byte: 0, .. })
        }),
        (b"del\x7f", |e| {
            matches!(e, KeyError::InvalidByte { byte: 0x7f, .. })
        }),
    ];
    let before = stats(&c).await;
    for (k, is_expected) in &bad {
        let k: &[u8] = k;
        let check = |what: &str, r: Result<(), Error>| match r {
            Err(Error::Encode(EncodeError::Key(e))) => {
                assert!(
                    is_expected(&e),
                    "{what} {:?}: unexpected key error {e:?}",
                    k.escape_ascii().to_string()
                );
            }
            other => panic!(
                "{what} {:?}: expected a key error, got {other:?}",
                k.escape_ascii().to_string()
            ),
        };
        check("get", c.get(k).await.map(drop));
        check("gets", c.gets(k).await.map(drop));
        check("get_multi", c.get_multi([ok.wire(), k]).await.map(drop));
        check("gets_multi", c.gets_multi([k, ok.wire()]).await.map(drop));
        check("gat", c.gat(10, k).await.map(drop));
        check("gats", c.gats(10, k).await.map(drop));
        check("set", c.set(k, "v", 0).await);
        check("add", c.add(k, "v", 0).await.map(drop));
        check("replace", c.replace(k, "v", 0).await.map(drop));
        check("append", c.append(k, "v").await.map(drop));
        check("prepend", c.prepend(k, "v").await.map(drop));
        check("cas", c.cas(k, "v", 0, 1).await.map(drop));
        check("delete", c.delete(k).await.map(drop));
        check("incr", c.incr(k, 1).await.map(drop));
        check("decr", c.decr(k, 1).await.map(drop));
        check("touch", c.touch(k, 1).await.map(drop));
        check("mg", c.meta_get(k, MetaGetFlags::default()).await.map(drop));
        check(
            "ms",
            c.meta_set(k, "v", MetaSetFlags::default()).await.map(drop),
        );
        check(
            "md",
            c.meta_delete(k, MetaDeleteFlags::default()).await.map(drop),
        );
        check(
            "ma",
            c.meta_arithmetic(k, MetaArithmeticFlags::default())
                .await
                .map(drop),
        );
        check("me", c.meta_debug(k).await.map(drop));
        if let Ok(s) = std::str::from_utf8(k) {
            check("get(&str)", c.get(s).await.map(drop));
            check("set(String)", c.set(s.to_string(), "v", 0).await);
        }
    }
    let after = stats(&c).await;
    for counter in [
        "cmd_get",
        "cmd_set",
        "cmd_touch",
        "get_misses",
        "delete_misses",
        "incr_misses",
        "decr_misses",
        "curr_items",
    ] {
        assert_eq!(
            stat(&after, counter),
            stat(&before, counter),
            "stat {counter} moved"
        );
    }
    assert_eq!(
        stat(&after, "bytes_read") - stat(&before, "bytes_read"),
        b"stats\r\n".len() as u64,
        "bytes reached the server"
    );
    assert_eq!(data(&c.get("canary").await.unwrap()), Some(&b"alive"[..]));

    // The longest valid key works.
    let k250 = "k".repeat(250);
    c.set(k250.as_str(), "max", 0).await.unwrap();
    assert_eq!(
        data(&c.get(k250.as_str()).await.unwrap()),
        Some(&b"max"[..])
    );
}

/// Many tasks pipelining set/get through one `Client::connect` client: every reply is the
/// caller's own.
pub async fn pipelined_load<H: Harness>() {
    let mc = start_memcached();
    let c = H::connect(mc.host_port_string())
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    let mut tasks = Vec::new();
    for t in 0..32 {
        let c = c.clone();
        tasks.push(spawn_catch::<H, _>(async move {
            for i in 0..300 {
                let k = format!("l:{t}:{}", i % 50);
                let v = format!("{k}:{i}:{}", "x".repeat(i % 97));
                c.set(k.as_str(), v.clone(), 0).await.unwrap();
                assert_eq!(
                    data(&c.get(k.as_str()).await.unwrap()),
                    Some(v.as_bytes()),
                    "get {k}"
                );
                if i % 25 == 0 {
                    let other = format!("l:{t}:none:{i}");
                    let got = c
                        .get_multi([k.as_str(), other.as_str(), k.as_str()])
                        .await
                        .unwrap();
                    assert_eq!(
                        got.iter().map(data).collect::<Vec<_>>(),
                        [Some(v.as_bytes()), None, Some(v.as_bytes())]
                    );
                }
            }
        }));
    }
    for t in tasks {
        guard::<H, _>("load task", Duration::from_secs(40), t)
            .await
            .unwrap_or_else(|p| panic!("task panicked: {p}"));
    }
}

/// Dropping every handle of a client (with requests in flight) ends its connection tasks:
/// the server sees its connections close.
pub async fn dropping_the_client_closes_connections<H: Harness>() {
    let mc = start_memcached();
    let watcher = client::<H>(ClientOptions {
        connections: 1,
        ..ClientOptions::for_server(&mc)
    })
    .await;
    let open = || async { Ok::<_, Error>(stat(&watcher.stats(None).await?, "curr_connections")) };
    let base = open().await.unwrap();

    let c = client::<H>(ClientOptions {
        connections: 4,
        ..ClientOptions::for_server(&mc)
    })
    .await;
    for i in 0..8 {
        c.set(format!("c:{i}"), "v", 0).await.unwrap();
    }
    assert_eq!(
        open().await.unwrap(),
        base + 4,
        "the client's 4 connections"
    );
    // Requests in flight when the last handle goes.
    let mut tasks = Vec::new();
    for i in 0..16 {
        let c = c.clone();
        tasks.push(spawn_catch::<H, _>(async move {
            let _ = c.get(format!("c:{}", i % 8)).await;
        }));
    }
    drop(c);
    for t in tasks {
        guard::<H, _>("task", Duration::from_secs(10), t)
            .await
            .unwrap_or_else(|p| panic!("task panicked: {p}"));
    }
    let mut last = 0;
    for _ in 0..200 {
        last = open().await.unwrap();
        if last == base {
            return;
        }
        sleep::<H>(Duration::from_millis(50)).await;
    }
    panic!("{last} connections open after the client was dropped, {base} before it was built");
}
