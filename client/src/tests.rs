//! The [`Client`](crate::Client) over the manual runtime: bounds and deadlines seen by callers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::testing::{poll, ready, Connect, ManualRuntime, MemStream};
use crate::{Builder, Error, Memcache, Runtime};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

/// A client of one connection to an in-memory server, configured by `configure`.
fn client_on(
    rt: &ManualRuntime,
    configure: impl FnOnce(Builder) -> Builder,
) -> (crate::Client, MemStream) {
    let server = MemStream::new();
    rt.on_connect(Connect::Open(server.clone()));
    let builder = Builder::new(Arc::new(rt.clone()))
        .server("mem:1")
        .connections(1);
    (ready(configure(builder).build()).unwrap(), server)
}

#[test]
fn callers_beyond_the_in_flight_bound_wait_for_room_within_their_deadline() {
    // Defect 3: 100,000 concurrent callers against a stopped server took 217 MiB, because
    // the queue between callers and a connection was unbounded.
    let rt = ManualRuntime::new();
    let (client, server) = client_on(&rt, |b| {
        b.max_in_flight(2)
            .request_timeout(Some(Duration::from_secs(1)))
    });
    let mut calls: Vec<_> = (0..1000)
        .map(|i| Box::pin(client.get(format!("k{i}"))))
        .collect();
    for c in &mut calls {
        assert!(poll(c.as_mut()).is_pending());
    }
    rt.run_tasks();
    assert_eq!(server.take_written(), b"mg k0 f v O0\r\nmg k1 f v O1\r\n");
    rt.advance(Duration::from_millis(999));
    rt.run_tasks();
    for c in &mut calls {
        assert!(poll(c.as_mut()).is_pending());
    }
    rt.advance(Duration::from_millis(1));
    rt.run_tasks();
    for c in &mut calls {
        assert!(matches!(poll(c.as_mut()), Poll::Ready(Err(Error::Timeout))));
    }
    assert!(server.take_written().is_empty(), "nobody else was let in");
}

#[test]
fn a_client_on_a_runtime_of_its_own_serves_calls() {
    let rt = ManualRuntime::new();
    let server = MemStream::new();
    rt.on_connect(Connect::Open(server.clone()));
    let client = ready(
        Builder::new(Arc::new(rt.clone()))
            .server("mem:1")
            .connections(1)
            .build(),
    )
    .unwrap();
    let mut set = Box::pin(client.set("k", "v", 0));
    assert!(poll(set.as_mut()).is_pending());
    rt.run_tasks();
    assert_eq!(server.take_written(), b"set k 0 0 1\r\nv\r\n");
    server.send(b"STORED\r\n");
    rt.run_tasks();
    assert!(matches!(poll(set.as_mut()), Poll::Ready(Ok(()))));
    drop(set);
    drop(client);
    rt.run_tasks();
    assert_eq!(
        rt.tasks(),
        0,
        "the connection task ends with the last handle"
    );
}

#[test]
fn an_unreachable_single_server_fails_a_strict_build_with_the_cause() {
    let rt = ManualRuntime::new();
    rt.on_connect(Connect::Refuse);
    let strict = Builder::new(Arc::new(rt))
        .server("mem:1")
        .require_reachable(true);
    let err = ready(strict.build()).unwrap_err();
    match err {
        Error::Io(io) => assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused),
        other => panic!("{other:?}"),
    }
}

#[test]
fn no_server_is_a_configuration_error() {
    let err = ready(Builder::new(Arc::new(ManualRuntime::new())).build()).unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
}

#[cfg(feature = "tls")]
#[test]
fn tls_over_a_unix_socket_without_a_name_is_refused_not_downgraded() {
    // Defect 6: TLS configured for a unix-socket endpoint was silently skipped.
    let rt = ManualRuntime::new();
    let tls = crate::tls::TlsConfig::with_root_certificates_pem(b"").unwrap();
    let err = ready(
        Builder::new(Arc::new(rt.clone()))
            .server("unix:/tmp/mc.sock")
            .tls(tls.clone())
            .build(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::Config(m) if m.contains("server_name")),
        "{err:?}"
    );
    assert!(rt.attempts().is_empty(), "nothing was opened");
    // With a name to verify, TLS runs over the socket: the handshake's first bytes go out.
    let server = MemStream::new();
    rt.on_connect(Connect::Open(server.clone()));
    let build = Builder::new(Arc::new(rt.clone()))
        .server("unix:/tmp/mc.sock")
        .tls(tls.server_name("localhost"))
        .build();
    assert!(poll(std::pin::pin!(build)).is_pending());
    let hello = server.take_written();
    assert_eq!(
        hello.first(),
        Some(&0x16),
        "a TLS handshake record, not plaintext"
    );
}

#[test]
fn a_call_sends_nothing_until_polled_and_its_future_stays_small() {
    let rt = ManualRuntime::new();
    let (client, server) = client_on(&rt, |b| b);
    rt.run_tasks();
    // Made, then dropped unpolled: nothing is sent.
    drop(client.delete("gone"));
    let first = client.set("a", "1", 0);
    let mut second = Box::pin(client.set("b", "2", 0));
    assert!(poll(second.as_mut()).is_pending());
    rt.run_tasks();
    // The one polled first is sent first, whichever was made first.
    assert_eq!(server.take_written(), b"set b 0 0 1\r\n2\r\n");
    drop(first);
    rt.run_tasks();
    assert_eq!(server.take_written(), b"");
    // The request is kept once, only until queued: a get's future was 1,616 bytes when each
    // layer of the call was an `async fn` holding its own copy.
    let size = std::mem::size_of_val(&client.get("k"));
    assert!(size <= 256, "a get's future is {size} bytes");
}

#[test]
fn a_call_polled_again_after_its_result_says_so_and_sends_nothing() {
    let rt = ManualRuntime::new();
    let (client, server) = client_on(&rt, |b| b);
    rt.run_tasks();
    let request = mcache_proto::commands::get("k").map(|call| match call {
        mcache_proto::commands::Call::Send { request, .. } => request,
        mcache_proto::commands::Call::Ready(_) => unreachable!("a get is sent"),
    });
    let mut call = Box::pin(client.execute(request.unwrap()));
    assert!(poll(call.as_mut()).is_pending());
    rt.run_tasks();
    assert_eq!(server.take_written(), b"mg k f v O0\r\n");
    server.send(b"EN O0\r\n");
    rt.run_tasks();
    assert!(matches!(poll(call.as_mut()), Poll::Ready(Ok(_))));
    let again = poll(call.as_mut());
    assert!(
        matches!(&again, Poll::Ready(Err(Error::Unavailable(m))) if m.contains("after it finished")),
        "{again:?}"
    );
    rt.run_tasks();
    assert_eq!(server.take_written(), b"");
    let stats = client.client_stats().servers.remove(0);
    assert_eq!(
        (stats.requests, stats.ok),
        (1, 1),
        "counted once: {stats:?}"
    );
}

#[test]
fn one_connection_per_server_by_default_on_a_single_threaded_runtime_two_otherwise() {
    for (rt, configure, expected) in [
        (ManualRuntime::new(), None, 2),
        (ManualRuntime::new().single_threaded(), None, 1),
        (ManualRuntime::new().single_threaded(), Some(3), 3),
    ] {
        for _ in 0..expected {
            rt.on_connect(Connect::Open(MemStream::new()));
        }
        let mut builder = Builder::new(Arc::new(rt.clone())).server("mem:1");
        if let Some(n) = configure {
            builder = builder.connections(n);
        }
        let _client = ready(builder.build()).unwrap();
        assert_eq!(rt.attempts().len(), expected, "connections({configure:?})");
    }
}

/// Two in-memory streams, handed out by `rt`'s next two connects.
fn two_streams(rt: &ManualRuntime) -> [MemStream; 2] {
    let streams = [MemStream::new(), MemStream::new()];
    for s in &streams {
        rt.on_connect(Connect::Open(s.clone()));
    }
    streams
}

#[test]
fn requests_joined_through_a_pinned_handle_share_one_write_and_one_read() {
    let rt = ManualRuntime::new();
    let servers = two_streams(&rt);
    let client = ready(
        Builder::new(Arc::new(rt.clone()))
            .server("mem:1")
            .connections(2)
            .build(),
    )
    .unwrap();
    rt.run_tasks();
    let pinned = client.pinned();
    let mut both = Box::pin(crate::join_all([pinned.get("a"), pinned.get("b")]));
    assert!(poll(both.as_mut()).is_pending());
    assert!(poll(both.as_mut()).is_pending());
    let written: Vec<Vec<u8>> = servers.iter().map(MemStream::take_written).collect();
    let (used, other) = match written.iter().position(|w| !w.is_empty()) {
        Some(i) => (i, 1 - i),
        None => panic!("nothing written"),
    };
    assert_eq!(
        written[used], b"mg a f v O0\r\nmg b f v O1\r\n",
        "one connection"
    );
    assert!(written[other].is_empty());
    assert_eq!(servers[used].writes(), 1, "one write");
    servers[used].send(b"VA 1 f0 O0\r\nA\r\nVA 1 f0 O1\r\nB\r\n");
    match poll(both.as_mut()) {
        Poll::Ready(v) => {
            let v: Vec<_> = v.into_iter().map(|r| r.unwrap().unwrap().data).collect();
            assert_eq!(v, ["A", "B"]);
        }
        Poll::Pending => panic!("both replies were read by the caller"),
    }
}

#[test]
fn a_reply_counted_after_its_server_was_ejected_does_not_re_admit_it() {
    // The pool suite's `pool_kill_fail_fast` failed now and then: a caller whose reply was
    // read just before its server died counted it after the failures that ejected the
    // server, which re-admitted it; the next call of its keys then went to the dead
    // connection instead of being refused.
    let rt = ManualRuntime::new();
    let servers = two_streams(&rt);
    let client = ready(
        Builder::new(Arc::new(rt.clone()))
            .servers(["mem:1", "mem:2"])
            .connections(1)
            .health(mcache_proto::HealthPolicy {
                failure_limit: 2,
                retry_after: Duration::from_secs(10),
                failover: mcache_proto::Failover::FailFast,
            })
            .build(),
    )
    .unwrap();
    rt.run_tasks();
    let pool = client.pool();
    let key = (0..)
        .map(|i| format!("k{i}"))
        .find(|k| pool.server_for(k.as_bytes()) == 1)
        .unwrap();
    let mut late = Box::pin(client.get(key.clone()));
    assert!(poll(late.as_mut()).is_pending());
    rt.run_tasks();
    assert_eq!(
        servers[1].take_written(),
        format!("mg {key} f v O0\r\n").as_bytes()
    );
    servers[1].send(b"EN O0\r\n");
    // Other callers see the server fail meanwhile, and it is ejected.
    rt.advance(Duration::from_millis(1));
    for _ in 0..2 {
        pool.record_failure(1, rt.now());
    }
    assert!(!pool.is_available(1, rt.now()));
    // The reply sent before the failures is counted now: the server stays out.
    assert!(matches!(poll(late.as_mut()), Poll::Ready(Ok(None))));
    assert!(
        !pool.is_available(1, rt.now()),
        "re-admitted by a late reply"
    );
    match ready(client.get(key.as_str())) {
        Err(Error::Unavailable(m)) => assert!(m.contains("down"), "{m}"),
        other => panic!("a key of an ejected server: {other:?}"),
    }
    assert!(servers[1].take_written().is_empty(), "nothing sent to it");
}

#[test]
fn a_single_key_get_goes_out_as_mg_unless_turned_off_or_through_twemproxy() {
    use mcache_proto::ProxyKind;
    /// A name, the builder's setup, what goes out, the reply.
    type Case = (
        &'static str,
        fn(Builder) -> Builder,
        &'static [u8],
        &'static [u8],
    );
    let cases: [Case; 4] = [
        ("default", |b| b, b"mg k f v O0\r\n", b"VA 1 f3 O0\r\nv\r\n"),
        (
            "off",
            |b| b.single_get_as_meta(false),
            b"get k\r\n",
            b"VALUE k 3 1\r\nv\r\nEND\r\n",
        ),
        (
            "twemproxy",
            |b| b.proxy(ProxyKind::Twemproxy),
            b"get k\r\n",
            b"VALUE k 3 1\r\nv\r\nEND\r\n",
        ),
        (
            "twemproxy, then asked for",
            |b| b.proxy(ProxyKind::Twemproxy).single_get_as_meta(true),
            b"get k\r\n",
            b"VALUE k 3 1\r\nv\r\nEND\r\n",
        ),
    ];
    for (name, configure, wire, reply) in cases {
        let rt = ManualRuntime::new();
        let (client, server) = client_on(&rt, configure);
        rt.run_tasks();
        let mut get = Box::pin(client.get("k"));
        assert!(poll(get.as_mut()).is_pending());
        rt.run_tasks();
        assert_eq!(server.take_written(), wire, "{name}");
        server.send(reply);
        rt.run_tasks();
        match poll(get.as_mut()) {
            Poll::Ready(Ok(Some(v))) => {
                assert_eq!(
                    (v.key.wire(), v.flags, &v.data[..]),
                    (&b"k"[..], 3, &b"v"[..]),
                    "{name}"
                )
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}
