//! The blocking client against real memcached processes started on free loopback ports:
//! every command, keys and values refused before sending, the size limits, a killed, a
//! restarted and a stopped server, unix sockets, authentication, pools with failover,
//! twemproxy, and threads sharing one client (one of them panicking) with no reply ever
//! delivered to the wrong caller.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod blocking_support;

use blocking_support::{address, builder, client, is_outage, start, stat, until_ok};
use bytes::Bytes;
use mcache_client::blocking::{Client, Memcache};
use mcache_client::{
    AsKey, EncodeError, Error, Failover, HealthPolicy, Key, MetaArithmeticFlags, MetaDeleteFlags,
    MetaGetFlags, MetaSetFlags, MetaStatus, ProxyKind, StoreStatus, Value,
};
use mcache_proto::text::request::{Store, StoreCommand};
use mcache_proto::{DecodeError, PoisonReason};
use mcache_testkit::faulty::{Fault, FaultyServer};
use mcache_testkit::{Memcached, Nutcracker};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

fn data(v: Option<Value>) -> Option<Bytes> {
    v.map(|v| v.data)
}

fn bytes(s: &str) -> Option<Bytes> {
    Some(Bytes::copy_from_slice(s.as_bytes()))
}

#[test]
fn connect_shorthand_and_bad_addresses() {
    let mc = start();
    let c = Client::connect(mc.host_port_string()).unwrap();
    assert!(c.version().unwrap().starts_with("1."));
    assert_eq!(c.endpoints().count(), 1);
    assert!(matches!(Client::connect("h:port"), Err(Error::Config(_))));
    assert!(matches!(Client::builder().build(), Err(Error::Config(_))));
    // Nobody listens on a port just freed: a typed connect error, not a hang or a panic. (A
    // parallel test's server may take the port in between: then try another one.)
    let refused = (0..5).any(|_| {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        match Client::connect(format!("127.0.0.1:{port}")) {
            Err(Error::Io(e)) => {
                assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
                true
            }
            Ok(_) => false,
            Err(other) => panic!("connect to a closed port: {other:?}"),
        }
    });
    assert!(
        refused,
        "five freed ports in a row were taken by other servers"
    );
    let c = Client::builder()
        .url(&format!(
            "memcache://{}?timeout=2s&connections=3",
            mc.host_port_string()
        ))
        .unwrap()
        .build()
        .unwrap();
    c.set("url", "ok", 0).unwrap();
    assert_eq!(data(c.get("url").unwrap()), bytes("ok"));
}

#[test]
fn retrieval_and_storage_commands() {
    let mc = start();
    let c = client(&mc);
    assert_eq!(c.get("a").unwrap(), None);
    c.set("a", "alpha", 0).unwrap();
    let v = c.get("a").unwrap().unwrap();
    assert_eq!(
        (v.key, v.data, v.cas),
        (Key::new("a").unwrap(), "alpha".into(), None)
    );
    let cas = c
        .gets("a")
        .unwrap()
        .and_then(|v| v.cas)
        .expect("gets has a cas");
    assert_eq!(
        c.cas("a", "stale?", 0, cas + 1).unwrap(),
        StoreStatus::Exists
    );
    assert_eq!(c.cas("a", "alpha2", 0, cas).unwrap(), StoreStatus::Stored);
    assert_eq!(c.cas("nope", "x", 0, 1).unwrap(), StoreStatus::NotFound);

    let status = c.store(Store {
        command: StoreCommand::Set,
        key: Key::new("b").unwrap(),
        flags: 0xdead_beef,
        exptime: 0,
        value: Bytes::from_static(b"beta"),
        noreply: false,
    });
    assert_eq!(status.unwrap(), StoreStatus::Stored);
    let got = c.get_multi(["a", "missing", "b", "a"]).unwrap();
    let flags: Vec<_> = got.iter().map(|v| v.as_ref().map(|v| v.flags)).collect();
    assert_eq!(flags, [Some(0), None, Some(0xdead_beef), Some(0)]);
    let values: Vec<_> = got.into_iter().map(data).collect();
    assert_eq!(
        values,
        [bytes("alpha2"), None, bytes("beta"), bytes("alpha2")]
    );
    assert_eq!(c.get_multi(Vec::<&str>::new()).unwrap(), vec![]);
    let with_cas = c.gets_multi(["b", "missing"]).unwrap();
    assert!(with_cas[0].as_ref().and_then(|v| v.cas).is_some());
    assert_eq!(with_cas[1], None);

    assert!(!c.add("a", "no", 0).unwrap());
    assert!(c.add("c", "new", 0).unwrap());
    assert!(!c.replace("missing", "no", 0).unwrap());
    assert!(c.replace("c", "replaced", 0).unwrap());
    assert!(c.append("c", ">").unwrap() && c.prepend("c", "<").unwrap());
    assert!(!c.append("missing", ">").unwrap() && !c.prepend("missing", "<").unwrap());
    assert_eq!(data(c.get("c").unwrap()), bytes("<replaced>"));

    // gat / gats set a new TTL (seen with mg's t flag).
    let ttl = |k: &str| {
        let m = c.meta_get(
            k,
            MetaGetFlags {
                ttl: true,
                ..Default::default()
            },
        );
        m.unwrap().flags.ttl.expect("mg t")
    };
    assert_eq!(ttl("c"), -1);
    assert_eq!(data(c.gat(100, "c").unwrap()), bytes("<replaced>"));
    assert!((1..=100).contains(&ttl("c")));
    let v = c.gats(200, "b").unwrap().unwrap();
    assert!(v.cas.is_some() && (101..=200).contains(&ttl("b")));
    assert_eq!(c.gat(1, "missing").unwrap(), None);
    assert_eq!(c.gats(1, "missing").unwrap(), None);

    // Binary-safe, empty and large values.
    let binary: Vec<u8> = (0..=255).collect();
    c.set("bin", binary.clone(), 0).unwrap();
    assert_eq!(data(c.get("bin").unwrap()).as_deref(), Some(&binary[..]));
    c.set("empty", "", 0).unwrap();
    assert_eq!(data(c.get("empty").unwrap()), bytes(""));
    let big: Vec<u8> = (0..900 * 1024).map(|i| (i % 251) as u8).collect();
    c.set("big", big.clone(), 0).unwrap();
    assert_eq!(data(c.get("big").unwrap()).as_deref(), Some(&big[..]));
}

#[test]
fn delete_touch_arithmetic_and_server_commands() {
    let mc = start();
    let c = client(&mc);
    c.set("k", "v", 0).unwrap();
    assert!(c.touch("k", 100).unwrap());
    assert!(!c.touch("missing", 100).unwrap());
    assert!(c.delete("k").unwrap());
    assert!(!c.delete("k").unwrap());

    assert_eq!(c.incr("n", 1).unwrap(), None);
    c.set("n", "10", 0).unwrap();
    assert_eq!(c.incr("n", 5).unwrap(), Some(15));
    assert_eq!(c.decr("n", 20).unwrap(), Some(0));
    assert_eq!(c.incr("n", u64::MAX).unwrap(), Some(u64::MAX));
    c.set("text", "abc", 0).unwrap();
    assert!(matches!(c.incr("text", 1), Err(Error::Client(_))));
    assert_eq!(
        data(c.get("text").unwrap()),
        bytes("abc"),
        "the connection is in step"
    );

    assert!(c.version().unwrap().starts_with("1."));
    c.verbosity(0).unwrap();
    c.meta_noop().unwrap();
    assert!(stat(&c, "pid") > 0);
    assert!(!c.stats(Some("settings")).unwrap().is_empty());
    c.flush_all(None).unwrap();
    assert_eq!(c.get("text").unwrap(), None);
    c.set("later", "v", 0).unwrap();
    c.flush_all(Some(100)).unwrap();
    assert_eq!(data(c.get("later").unwrap()), bytes("v"), "flush in 100 s");
    // Any definition of proto runs through `run`.
    let added = c.run(mcache_proto::commands::add("fresh", "x", 0)).unwrap();
    assert!(added);
}

#[test]
fn meta_commands() {
    let mc = start();
    let c = client(&mc);
    let set = c.meta_set(
        "m",
        "meta",
        MetaSetFlags {
            cas: true,
            ..Default::default()
        },
    );
    let set = set.unwrap();
    assert_eq!(set.status, MetaStatus::Hd);
    let value = MetaGetFlags {
        value: true,
        cas: true,
        ..Default::default()
    };
    let got = c.meta_get("m", value).unwrap();
    assert_eq!(
        (got.status, got.value),
        (MetaStatus::Va, Some("meta".into()))
    );
    assert_eq!(got.flags.cas, set.flags.cas);
    assert_eq!(c.meta_get("missing", value).unwrap().status, MetaStatus::En);
    assert!(c
        .meta_debug("m")
        .unwrap()
        .is_some_and(|d| d.starts_with(b"exp=")));
    assert_eq!(c.meta_debug("missing").unwrap(), None);

    c.set("count", "1", 0).unwrap();
    let incr = MetaArithmeticFlags {
        value: true,
        delta: Some(41),
        ..Default::default()
    };
    let m = c.meta_arithmetic("count", incr).unwrap();
    assert_eq!(m.value, Some("42".into()));
    let gone = c.meta_delete("count", MetaDeleteFlags::default()).unwrap();
    assert_eq!(gone.status, MetaStatus::Hd);
    let again = c.meta_delete("count", MetaDeleteFlags::default()).unwrap();
    assert_eq!(again.status, MetaStatus::Nf);
}

/// Each command over a bad key: its name and a call through the blocking trait.
type Op = (&'static str, fn(&Client, &[u8]) -> Result<(), Error>);

const KEYED_OPS: &[Op] = &[
    ("get", |c, k| c.get(k).map(drop)),
    ("gets", |c, k| c.gets(k).map(drop)),
    ("get_multi", |c, k| c.get_multi([&b"ok"[..], k]).map(drop)),
    ("gets_multi", |c, k| c.gets_multi([k, &b"ok"[..]]).map(drop)),
    ("gat", |c, k| c.gat(1, k).map(drop)),
    ("gats", |c, k| c.gats(1, k).map(drop)),
    ("set", |c, k| c.set(k, "v", 0)),
    ("add", |c, k| c.add(k, "v", 0).map(drop)),
    ("replace", |c, k| c.replace(k, "v", 0).map(drop)),
    ("append", |c, k| c.append(k, "v").map(drop)),
    ("prepend", |c, k| c.prepend(k, "v").map(drop)),
    ("cas", |c, k| c.cas(k, "v", 0, 1).map(drop)),
    ("delete", |c, k| c.delete(k).map(drop)),
    ("incr", |c, k| c.incr(k, 1).map(drop)),
    ("decr", |c, k| c.decr(k, 1).map(drop)),
    ("touch", |c, k| c.touch(k, 1).map(drop)),
    ("mg", |c, k| {
        c.meta_get(k, MetaGetFlags::default()).map(drop)
    }),
    ("ms", |c, k| {
        c.meta_set(k, "v", MetaSetFlags::default()).map(drop)
    }),
    ("md", |c, k| {
        c.meta_delete(k, MetaDeleteFlags::default()).map(drop)
    }),
    ("ma", |c, k| {
        c.meta_arithmetic(k, MetaArithmeticFlags::default())
            .map(drop)
    }),
    ("me", |c, k| c.meta_debug(k).map(drop)),
];

/// Invalid keys are refused by every command with the key's own error, and nothing reaches
/// the server: its byte and command counters do not move.
#[test]
fn invalid_keys_are_refused_before_sending() {
    let mc = start();
    let c = client(&mc);
    c.set("ok", "alive", 0).unwrap();
    let long = [b'k'; 251];
    let bad: [&[u8]; 8] = [
        b"with space",
        b"a\r\nflush_all",
        b"nl\n",
        &long,
        b"",
        b"tab\tkey",
        b"nul\0",
        b"del\x7f",
    ];
    let counters = [
        "cmd_get",
        "cmd_set",
        "cmd_touch",
        "get_misses",
        "curr_items",
        "bytes_read",
    ];
    let before: Vec<u64> = counters.iter().map(|n| stat(&c, n)).collect();
    for k in bad {
        let expected = Error::from(k.into_key().expect_err("a bad key"));
        for (name, op) in KEYED_OPS {
            assert_eq!(
                op(&c, k),
                Err(expected.clone()),
                "{name} {:?}",
                k.escape_ascii().to_string()
            );
        }
    }
    let after: Vec<u64> = counters.iter().map(|n| stat(&c, n)).collect();
    // Only the `stats` requests that read the counters reached the server.
    let stats_bytes = (b"stats\r\n".len() * counters.len()) as u64;
    for ((name, b), a) in counters.iter().zip(&before).zip(&after) {
        let moved = if *name == "bytes_read" {
            a - b - stats_bytes
        } else {
            a - b
        };
        assert_eq!(moved, 0, "stat {name} moved");
    }
    assert_eq!(data(c.get("ok").unwrap()), bytes("alive"));
    let k250 = "k".repeat(250);
    c.set(k250.as_str(), "longest", 0).unwrap();
    assert_eq!(data(c.get(k250.as_str()).unwrap()), bytes("longest"));
}

/// Values at and over the limits: the client's limit is exact, a 2 MB value is refused with
/// a typed error before sending, a value over the server's item size is the server's error,
/// and a value over the client's limit coming from the server closes that connection only.
#[test]
fn values_at_the_size_limits() {
    let mc = Memcached::builder().args(["-I", "4m"]).start().unwrap();
    let c = client(&mc);
    let limit = 1024 * 1024;
    let at_limit = Bytes::from(vec![b'a'; limit]);
    c.set("at", at_limit.clone(), 0).unwrap();
    assert_eq!(data(c.get("at").unwrap()), Some(at_limit));

    let sets_before = stat(&c, "cmd_set");
    for len in [limit + 1, 2_000_000] {
        let value = Bytes::from(vec![b'x'; len]);
        let refused = Err(Error::Encode(EncodeError::ValueTooLarge {
            len,
            max: limit,
        }));
        assert_eq!(c.set("over", value.clone(), 0), refused);
        assert_eq!(c.append("at", value.clone()).map(drop), refused);
        assert_eq!(c.cas("at", value.clone(), 0, 1).map(drop), refused);
        let ms = c.meta_set("over", value, MetaSetFlags::default()).map(drop);
        assert_eq!(ms, refused);
    }
    assert_eq!(
        stat(&c, "cmd_set"),
        sets_before,
        "a refused value reached the server"
    );
    assert_eq!(c.get("over").unwrap(), None);

    // 1.5 MiB stored by a client allowing 4 MiB; the 1 MiB client refuses it when it comes
    // back, and goes on.
    let big = Bytes::from(vec![b'z'; 1536 * 1024]);
    let roomy = builder(&mc).max_value_len(4 * limit).build().unwrap();
    roomy.set("big", big.clone(), 0).unwrap();
    assert_eq!(data(roomy.get("big").unwrap()), Some(big));
    c.set("small", "fine", 0).unwrap();
    for _ in 0..3 {
        let too_large = DecodeError::ValueTooLarge {
            len: 1536 * 1024,
            max: limit,
        };
        let refused = Err(Error::Poisoned(PoisonReason::Malformed(too_large)));
        assert_eq!(c.get("big"), refused);
        assert_eq!(data(c.get("small").unwrap()), bytes("fine"));
    }
    assert_eq!(c.client_stats().servers[0].reconnects, 3);

    // Over the server's item size (default -I 1m): its SERVER_ERROR, the stream in step.
    let small_server = start();
    let c = builder(&small_server)
        .max_value_len(4 * limit)
        .build()
        .unwrap();
    match c.set("big", Bytes::from(vec![b'y'; 1536 * 1024]), 0) {
        Err(Error::Server(msg)) => assert!(String::from_utf8_lossy(&msg).contains("too large")),
        other => panic!("1.5 MiB to a 1 MiB server: {other:?}"),
    }
    c.set("after", "in step", 0).unwrap();
    assert_eq!(data(c.get("after").unwrap()), bytes("in step"));
}

/// Runs `threads` threads of set/get on their own keys until `stop`; each value names its
/// key, so a reply delivered to the wrong caller is seen. Returns the calls that succeeded
/// and the errors, by thread.
fn load(c: &Client, threads: usize, stop: &AtomicBool, done: &AtomicU64) -> Vec<Vec<Error>> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mut errors = Vec::new();
                    for i in 0u64.. {
                        if stop.load(Ordering::Relaxed) || errors.len() > 50 {
                            break;
                        }
                        let k = format!("load:{t}:{}", i % 8);
                        let r = if i % 2 == 0 {
                            c.set(k.as_str(), format!("{k}|{i}"), 0)
                        } else {
                            c.get(k.as_str()).map(|v| {
                                if let Some(v) = v {
                                    let mine = v.data.starts_with(format!("{k}|").as_bytes());
                                    assert!(mine, "{k} got {:?}", v.data);
                                }
                            })
                        };
                        match r {
                            Ok(()) => done.fetch_add(1, Ordering::Relaxed),
                            Err(e) => {
                                errors.push(e);
                                std::thread::sleep(Duration::from_millis(5));
                                0
                            }
                        };
                    }
                    errors
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a load thread panicked"))
            .collect()
    })
}

fn wait_for(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..1000 {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("{what}: not after 10 s");
}

/// Killed under load: callers get outage errors (never a wrong value, never a hang), calls
/// while it is down fail; restarted, the client recovers on its own.
#[test]
fn server_killed_and_restarted() {
    let mc = start();
    let c = builder(&mc)
        .request_timeout(Some(Duration::from_secs(2)))
        .build()
        .unwrap();
    c.set("before", "kill", 0).unwrap();
    let (stop, done) = (AtomicBool::new(false), AtomicU64::new(0));
    let errors = std::thread::scope(|s| {
        let loaded = s.spawn(|| load(&c, 8, &stop, &done));
        wait_for("load before the kill", || {
            done.load(Ordering::Relaxed) > 200
        });
        mc.kill().unwrap();
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::Relaxed);
        loaded.join().unwrap()
    });
    let all: Vec<&Error> = errors.iter().flatten().collect();
    assert!(!all.is_empty(), "no caller saw the kill");
    assert!(all.iter().all(|e| is_outage(e)), "{all:?}");
    for _ in 0..5 {
        let e = c
            .get("before")
            .expect_err("a call succeeded with the server dead");
        assert!(is_outage(&e), "{e:?}");
    }
    mc.restart().unwrap();
    until_ok("after restart", 10, || c.set("after", "restart", 0));
    assert_eq!(c.get("before").unwrap(), None);
    assert!(c.client_stats().servers[0].connect_failures > 0);
}

/// SIGSTOP: calls time out with typed timeout errors (the request timeout, or the read
/// timeout), their connections are closed, and after SIGCONT the replies they never read
/// are never handed to anyone.
#[test]
fn server_stopped_and_continued() {
    let mc = start();
    let by_request = builder(&mc)
        .request_timeout(Some(Duration::from_millis(200)))
        .read_timeout(Some(Duration::from_secs(60)))
        .build()
        .unwrap();
    let by_read = builder(&mc)
        .request_timeout(None)
        .read_timeout(Some(Duration::from_millis(300)))
        .build()
        .unwrap();
    by_request.set("a", "A", 0).unwrap();
    by_request.set("b", "B", 0).unwrap();
    mc.stop().unwrap();
    std::thread::scope(|s| {
        for i in 0..6 {
            let (by_request, by_read) = (&by_request, &by_read);
            s.spawn(move || {
                let e = by_request.get("a").expect_err("stopped");
                assert_eq!(e, Error::Timeout, "request timeout (thread {i})");
                assert!(e.is_timeout());
                let e = by_read
                    .set("a", "changed while stopped", 0)
                    .expect_err("stopped");
                assert_eq!(e, Error::Poisoned(PoisonReason::Timeout), "read timeout");
                assert!(e.is_timeout());
            });
        }
    });
    mc.cont().unwrap();
    for c in [&by_request, &by_read] {
        for _ in 0..20 {
            let a = until_ok("after SIGCONT", 1, || c.get("a"));
            assert!(matches!(
                data(a).as_deref(),
                Some(b"A" | b"changed while stopped")
            ));
            assert_eq!(data(c.get("b").unwrap()), bytes("B"));
        }
        let stats = c.client_stats().servers[0].clone();
        assert!(stats.timeouts >= 6, "{stats:?}");
    }
}

/// A reply stalled mid-frame past the request timeout: that call fails, its half-read
/// connection is closed, and the next calls read whole replies of their own.
#[test]
fn reply_cut_mid_frame_never_reaches_the_next_caller() {
    let server = FaultyServer::start().unwrap();
    for k in ["one", "two"] {
        server.insert(k, format!("value of {k} {}", "x".repeat(4000)));
    }
    let c = Client::builder()
        .server(server.host_port_string())
        .connections(1)
        .request_timeout(Some(Duration::from_millis(150)))
        .build()
        .unwrap();
    server.set_fault(Fault::StallMidFrame(Duration::from_millis(500)));
    assert_eq!(c.get("one"), Err(Error::Timeout));
    server.set_fault(Fault::Correct);
    for k in ["two", "one", "two"] {
        let v = data(c.get(k).unwrap()).unwrap();
        assert!(
            v.starts_with(format!("value of {k} ").as_bytes()),
            "{k}: {v:?}"
        );
    }
    assert_eq!(
        server.connections_accepted(),
        2,
        "the stalled connection was not reused"
    );
    server.set_fault(Fault::Garbage);
    assert!(matches!(
        c.get("one"),
        Err(Error::Poisoned(PoisonReason::Malformed(_)))
    ));
    server.set_fault(Fault::Correct);
    assert!(data(c.get("two").unwrap()).is_some_and(|v| v.starts_with(b"value of two ")));
}

#[test]
fn unix_socket() {
    let mc = Memcached::builder().unix_socket(true).start().unwrap();
    assert!(address(&mc).starts_with("unix:"));
    let c = client(&mc);
    c.set("unix", "socket", 0).unwrap();
    assert_eq!(data(c.get("unix").unwrap()), bytes("socket"));
    let big = Bytes::from(vec![b'u'; 512 * 1024]);
    c.set("big", big.clone(), 0).unwrap();
    assert_eq!(data(c.get("big").unwrap()), Some(big));
    let path = mc.socket_path().unwrap().to_path_buf();
    let by_url = Client::builder()
        .url(&format!("unix://{}", path.display()))
        .unwrap();
    assert_eq!(
        data(by_url.build().unwrap().get("unix").unwrap()),
        bytes("socket")
    );
}

#[test]
fn ascii_auth() {
    let mc = Memcached::builder().auth("user", "secret").start().unwrap();
    let c = builder(&mc)
        .auth("user", "secret")
        .connections(3)
        .build()
        .unwrap();
    c.set("auth", "v", 0).unwrap();
    assert_eq!(data(c.get("auth").unwrap()), bytes("v"));
    for (user, pass) in [("user", "wrong"), ("nobody", "secret")] {
        match builder(&mc).auth(user, pass).build() {
            Err(Error::Client(_)) => {}
            other => panic!("{user}:{pass}: expected Err(Client), got {other:?}"),
        }
    }
    let anonymous = client(&mc);
    for _ in 0..3 {
        assert_eq!(
            anonymous.get("auth"),
            Err(Error::Client("unauthenticated".into()))
        );
    }
    // Credentials in a URL; and every reconnection authenticates again.
    let url = format!("memcache://user:secret@{}", mc.host_port_string());
    let by_url = Client::builder().url(&url).unwrap().build().unwrap();
    assert_eq!(data(by_url.get("auth").unwrap()), bytes("v"));
    mc.restart().unwrap();
    until_ok("after restart", 10, || c.set("after", "restart", 0));
    assert_eq!(data(c.get("after").unwrap()), bytes("restart"));
}

/// Three servers: each key on the server the pool places it on (proto's ketama), multi-key
/// gets split and merged in the caller's order, keyless commands on every server.
#[test]
fn pool_placement_split_and_broadcast() {
    let mcs: Vec<Memcached> = (0..3).map(|_| start()).collect();
    let c = Client::builder()
        .servers(mcs.iter().map(address))
        .build()
        .unwrap();
    let keys: Vec<String> = (0..60).map(|i| format!("pool:{i}")).collect();
    for k in &keys {
        c.set(k.as_str(), k.clone(), 0).unwrap();
    }
    let handles: Vec<_> = (0..3).map(|i| c.server(i).unwrap()).collect();
    let mut per_server = [0; 3];
    for k in &keys {
        let home = c.pool().server_for(k.as_bytes());
        per_server[home] += 1;
        for (i, h) in handles.iter().enumerate() {
            assert_eq!(
                h.get(k.as_str()).unwrap().is_some(),
                i == home,
                "{k} on server {i}"
            );
        }
    }
    assert!(
        per_server.iter().all(|&n| n > 5),
        "ketama spreads keys: {per_server:?}"
    );
    let mut asked: Vec<String> = keys.iter().rev().cloned().collect();
    asked.insert(7, "pool:missing".into());
    let got = c.get_multi(asked.iter()).unwrap();
    for (k, v) in asked.iter().zip(got) {
        let expected = (k != "pool:missing").then(|| Bytes::copy_from_slice(k.as_bytes()));
        assert_eq!(data(v), expected, "{k}");
    }
    c.flush_all(None).unwrap();
    for h in &handles {
        assert_eq!(h.get_multi(keys.iter()).unwrap(), vec![None; keys.len()]);
        assert!(stat(h, "cmd_flush") == 1);
    }
    assert!(c.version().unwrap().starts_with("1."));
    assert!(c.client_stats().servers.iter().all(|s| s.requests > 0));
}

/// A pool under load loses one server: with fail-fast its keys fail (ejected: at once) and
/// the others' keys never do; with rehash its keys move to the servers left.
#[test]
fn pool_failover() {
    for failover in [Failover::FailFast, Failover::Rehash] {
        let mcs: Vec<Memcached> = (0..3).map(|_| start()).collect();
        let health = HealthPolicy {
            failover,
            ..HealthPolicy::default()
        };
        let c = Client::builder()
            .servers(mcs.iter().map(address))
            .health(health)
            .request_timeout(Some(Duration::from_secs(2)))
            .build()
            .unwrap();
        let keys: Vec<String> = (0..60).map(|i| format!("fo:{i}")).collect();
        let victim = c.pool().server_for(keys[0].as_bytes());
        mcs[victim].kill().unwrap();
        let (mut ok, mut failed) = (0, 0);
        for round in 0..4 {
            for k in &keys {
                let home = c.pool().server_for(k.as_bytes());
                match c.set(k.as_str(), k.clone(), 0) {
                    Ok(()) => ok += 1,
                    Err(e) => {
                        assert!(is_outage(&e), "{failover:?} {k}: {e:?}");
                        assert_eq!(home, victim, "{failover:?}: {k} failed on a live server");
                        assert!(round == 0 || failover == Failover::FailFast, "{k}: {e:?}");
                        failed += 1;
                    }
                }
            }
        }
        assert!(!c.pool().is_available(victim, std::time::Instant::now()));
        assert!(
            ok > 0 && failed > 0,
            "{failover:?}: ok {ok}, failed {failed}"
        );
        if failover == Failover::Rehash {
            let moved = c.get(keys[0].as_str()).unwrap();
            assert_eq!(data(moved), bytes(&keys[0]), "rehashed to a live server");
        }
    }
}

/// Through twemproxy: the text commands work, and what it cannot carry is refused before
/// sending.
#[test]
fn twemproxy() {
    let backends: Vec<Memcached> = (0..2).map(|_| start()).collect();
    let mut nut = Nutcracker::builder().hash("md5").distribution("ketama");
    for m in &backends {
        nut = nut.server(m.host_port_string(), 1, None);
    }
    let nut = nut.start().expect("nutcracker");
    let c = Client::builder()
        .server(nut.host_port_string())
        .proxy(ProxyKind::Twemproxy)
        .build()
        .unwrap();
    for i in 0..20 {
        let k = format!("tw:{i}");
        c.set(k.as_str(), k.clone(), 0).unwrap();
    }
    let got = c.get_multi((0..20).map(|i| format!("tw:{i}"))).unwrap();
    assert!(got
        .iter()
        .enumerate()
        .all(|(i, v)| data(v.clone()) == bytes(&format!("tw:{i}"))));
    assert_eq!(c.incr("tw:n", 1).unwrap(), None);
    assert!(c.delete("tw:0").unwrap());
    let refused = c.meta_get("tw:1", MetaGetFlags::default());
    assert!(matches!(
        refused,
        Err(Error::Encode(EncodeError::NotCarriedByProxy { .. }))
    ));
    assert!(matches!(
        c.gat(1, "tw:1"),
        Err(Error::Encode(EncodeError::NotCarriedByProxy { .. }))
    ));
    assert_eq!(
        data(c.get("tw:1").unwrap()),
        bytes("tw:1"),
        "the connection is in step"
    );
}

/// 32 threads share one client with 8 connections (so callers also wait for a free one);
/// one thread panics halfway. Every value read is the reader's own, the panicking thread
/// takes nothing with it, and the client serves on.
#[test]
fn threads_share_one_client_and_a_panic_loses_nothing() {
    let mc = start();
    let c = builder(&mc).connections(8).build().unwrap();
    let misdelivered = AtomicU64::new(0);
    let reads = AtomicU64::new(0);
    let outcomes: Vec<std::thread::Result<()>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..32)
            .map(|t| {
                let (c, misdelivered, reads) = (c.clone(), &misdelivered, &reads);
                s.spawn(move || {
                    for i in 0..200 {
                        let k = format!("t:{t}:{}", i % 5);
                        let v = format!("{k}={i}");
                        c.set(k.as_str(), v.clone(), 0).unwrap();
                        if t == 13 && i == 100 {
                            panic!("thread 13 panics between its set and its get");
                        }
                        let (got, multi) =
                            (c.get(k.as_str()).unwrap(), c.get_multi([&k, "t:none"]));
                        let multi = multi.unwrap();
                        reads.fetch_add(2, Ordering::Relaxed);
                        if data(got) != bytes(&v)
                            || data(multi[0].clone()) != bytes(&v)
                            || multi[1].is_some()
                        {
                            misdelivered.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join()).collect()
    });
    let panicked: Vec<usize> = (0..32).filter(|&t| outcomes[t].is_err()).collect();
    assert_eq!(panicked, [13]);
    assert_eq!(misdelivered.load(Ordering::Relaxed), 0);
    assert_eq!(reads.load(Ordering::Relaxed), (31 * 200 + 100) * 2);
    let stats = c.client_stats().servers[0].clone();
    assert_eq!((stats.in_flight, stats.errors.total()), (0, 0), "{stats:?}");
    assert_eq!(data(c.get("t:13:0").unwrap()), bytes("t:13:0=100"));
    assert!(
        stat(&c, "curr_connections") <= 8 + 1,
        "at most 8 connections (+ memcached's own)"
    );
}

/// A fault-injection server misbehaving in every way it knows, one fault at a time: each
/// call under a fault gets its own value or a typed error within its deadlines (no panic, no
/// hang), and once the server behaves again every call gets its own value.
#[test]
fn hostile_servers_never_desynchronise_the_client() {
    let server = FaultyServer::start().unwrap();
    let keys: Vec<String> = (0..6).map(|i| format!("h:{i}")).collect();
    let value_of = |k: &str| format!("{k}={}", "v".repeat(3000));
    for k in &keys {
        server.insert(k, value_of(k));
    }
    let c = Client::builder()
        .server(server.host_port_string())
        .connections(2)
        .request_timeout(Some(Duration::from_millis(400)))
        .read_timeout(Some(Duration::from_millis(250)))
        .backoff(Duration::from_millis(5), Duration::from_millis(20))
        .build()
        .unwrap();
    let faults = [
        Fault::Garbage,
        Fault::Truncate { close: true },
        Fault::Truncate { close: false },
        Fault::DeclareHuge,
        Fault::StallMidFrame(Duration::from_millis(600)),
        Fault::Drip(Duration::from_millis(20)),
        Fault::OutOfOrder,
        Fault::ResetMidValue,
        Fault::AcceptNeverAnswer,
        Fault::CloseAfterNBytes(5000),
    ];
    for fault in faults {
        server.set_fault(fault.clone());
        for k in &keys {
            match c.get(k.as_str()) {
                Ok(v) => assert_eq!(data(v), bytes(&value_of(k)), "{fault:?}: {k}"),
                Err(e) => assert!(is_outage(&e), "{fault:?}: {k}: {e:?}"),
            }
        }
        server.set_fault(Fault::Correct);
        for k in keys.iter().rev() {
            let v = until_ok("after the fault", 1, || c.get(k.as_str()));
            assert_eq!(data(v), bytes(&value_of(k)), "after {fault:?}: {k}");
        }
    }
    assert_eq!(c.client_stats().servers[0].in_flight, 0);
}

/// Binary keys travel in meta commands (base64, `b` flag) and come back as they went; text
/// commands refuse them before sending.
#[test]
fn binary_keys_in_meta_commands_only() {
    let mc = start();
    let c = client(&mc);
    let raw: &[u8] = b"\x00 bin\r\nflush_all\r\n\xff";
    let k = Key::binary(raw).unwrap();
    let stored = c.meta_set(&k, "bin", MetaSetFlags::default()).unwrap();
    assert_eq!(stored.status, MetaStatus::Hd);
    let flags = MetaGetFlags {
        value: true,
        key: true,
        ..Default::default()
    };
    let got = c.meta_get(&k, flags).unwrap();
    assert_eq!(got.value, Some(Bytes::from_static(b"bin")));
    let back = got.flags.key.expect("k flag");
    assert_eq!((back.decoded(), back.is_binary()), (raw.to_vec(), true));
    let refused = Err(Error::from(mcache_proto::KeyError::BinaryInTextCommand));
    assert_eq!(c.get(&k).map(drop), refused);
    assert_eq!(c.set(&k, "text", 0), refused);
    assert_eq!(
        stat(&c, "curr_items"),
        1,
        "the text set never reached the server"
    );
}

/// Dropping the last clone of a client closes its connections.
#[test]
fn dropping_the_client_closes_its_connections() {
    let mc = start();
    let watcher = client(&mc);
    let before = stat(&watcher, "curr_connections");
    let c = builder(&mc).connections(4).build().unwrap();
    std::thread::scope(|s| {
        for t in 0..4 {
            let c = c.clone();
            s.spawn(move || {
                for i in 0..20 {
                    c.set(format!("d:{t}:{i}").as_str(), "v", 0).unwrap();
                }
            });
        }
    });
    let open = c.client_stats().servers[0].clone();
    assert_eq!(open.in_flight, 0);
    assert!(stat(&watcher, "curr_connections") > before);
    let clone = c.clone();
    drop(c);
    assert!(
        stat(&watcher, "curr_connections") > before,
        "a clone keeps them open"
    );
    drop(clone);
    wait_for("connections closed", || {
        stat(&watcher, "curr_connections") == before
    });
}

/// Quiet meta requests and `noreply` storage complete (the connection closes each with a
/// hidden `mn`), and every connection stays in step for the next caller.
#[test]
fn quiet_and_noreply_requests_complete_in_step() {
    let mc = start();
    let c = builder(&mc).connections(1).build().unwrap();
    let quiet_get = MetaGetFlags {
        value: true,
        quiet: true,
        ..Default::default()
    };
    assert_eq!(
        c.meta_get("q:none", quiet_get).unwrap().status,
        MetaStatus::En
    );
    let quiet_set = MetaSetFlags {
        quiet: true,
        ..Default::default()
    };
    assert_eq!(
        c.meta_set("q:k", "v", quiet_set).unwrap().status,
        MetaStatus::Hd
    );
    let hit = c.meta_get("q:k", quiet_get).unwrap();
    assert_eq!((hit.status, hit.value), (MetaStatus::Va, Some("v".into())));
    let store = |command, value: &'static str| Store {
        command,
        key: Key::new("q:nr").unwrap(),
        flags: 0,
        exptime: 0,
        value: Bytes::from_static(value.as_bytes()),
        noreply: true,
    };
    let status = c.store(store(StoreCommand::Set, "quiet")).unwrap();
    assert_eq!(status, StoreStatus::NoReply);
    let status = c.store(store(StoreCommand::Add, "again")).unwrap();
    assert_eq!(status, StoreStatus::NoReply);
    assert_eq!(data(c.get("q:nr").unwrap()), bytes("quiet"));
    assert_eq!(
        c.client_stats().servers[0].reconnects,
        0,
        "one connection throughout"
    );
}
