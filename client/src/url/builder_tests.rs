//! `Builder::url` applying a URL's servers and options, and `build` refusing an address that
//! does not parse (a child of `builder`, to read what the builder holds). No network.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::testing::ManualRuntime;
use std::future::Future;
use std::task::{Context, Poll, Waker};

fn tcp(s: &str) -> Endpoint {
    Endpoint::Tcp(s.into())
}

/// The output of a future that completes without waiting.
fn ready<F: Future>(f: F) -> F::Output {
    match std::pin::pin!(f).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("not ready"),
    }
}

fn builder() -> Builder {
    Builder::new(Arc::new(ManualRuntime::new()))
}

#[test]
fn builder_url_applies_servers_and_options() {
    let b = builder()
        .url(
            "memcache://u:p@a:1,b:2?timeout=250ms&connect_timeout=3s&read_timeout=none\
              &connections=3&max_in_flight=8&max_value_len=2m&max_reply_len=1m\
              &backoff_min=5ms&backoff_max=1s",
        )
        .unwrap();
    let servers: Vec<_> = b
        .servers
        .iter()
        .map(|(e, s)| (e.clone(), s.clone()))
        .collect();
    assert_eq!(
        servers,
        vec![
            (tcp("a:1"), ServerSpec::new("a", 1)),
            (tcp("b:2"), ServerSpec::new("b", 2))
        ]
    );
    assert_eq!(b.request_timeout, Some(Duration::from_millis(250)));
    assert_eq!(b.connections, Some(3));
    let s = &b.settings;
    assert_eq!(s.connect_timeout, Duration::from_secs(3));
    assert_eq!(s.connection.read_timeout, None);
    assert_eq!(s.max_in_flight, 8);
    assert_eq!(s.connection.limits.max_value_len, 2 << 20);
    assert_eq!(s.connection.limits.max_reply_len, 1 << 20);
    assert_eq!(s.backoff_min, Duration::from_millis(5));
    assert_eq!(s.backoff_max, Duration::from_secs(1));
    assert_eq!(s.auth, Some(("u".into(), "p".into())));
    // Only what is given changes.
    let b = builder().url("unix:///s?backoff_max=10s").unwrap();
    assert_eq!(b.servers[0].0, Endpoint::Unix("/s".into()));
    assert_eq!(b.servers[0].1, ServerSpec::new("/s", 0));
    assert_eq!(b.settings.backoff_min, Duration::from_millis(50));
    assert_eq!(b.settings.backoff_max, Duration::from_secs(10));
    assert_eq!(b.request_timeout, Some(Duration::from_secs(1)));
    assert_eq!(b.connections, None, "the default, chosen from the runtime");
    assert!(builder().url("memcache://h?nope=1").is_err());
}

#[test]
fn a_server_that_does_not_parse_is_refused_at_build() {
    let rt = ManualRuntime::new();
    for (server, why) in [
        ("h:abc", "port \"abc\""),
        ("memcache://h:1?timeout=1s", "Builder::url"),
        ("memcaches://h:1", "TLS"),
        (":1", "no host"),
    ] {
        let err = ready(Builder::new(Arc::new(rt.clone())).server(server).build()).unwrap_err();
        match err {
            Error::Config(m) => assert!(m.contains(why), "{server}: {m}"),
            other => panic!("{server}: {other:?}"),
        }
    }
    assert!(rt.attempts().is_empty(), "nothing was opened");
}

#[test]
fn parse_errors_convert_for_question_mark() {
    fn configure(b: Builder) -> Result<Builder, Error> {
        Ok(b.url("memcache://h:1?connections=none")?)
    }
    let err = configure(builder()).unwrap_err();
    assert!(
        matches!(&err, Error::Config(m) if m.contains("connections")),
        "{err:?}"
    );
}

#[cfg(not(feature = "tls"))]
#[test]
fn memcaches_without_tls_says_to_enable_it() {
    let e = builder().url("memcaches://h:1").unwrap_err();
    assert_eq!(
        e,
        ParseError::TlsDisabled {
            input: "memcaches://h:1".into()
        }
    );
    assert!(e.to_string().contains("`tls` feature"), "{e}");
}

#[cfg(all(
    feature = "tls",
    not(any(feature = "webpki-roots", feature = "native-roots"))
))]
#[test]
fn memcaches_without_roots_says_where_to_get_them() {
    let e = builder().url("memcaches://h:1").unwrap_err();
    assert!(matches!(e, ParseError::NoTlsRoots { .. }), "{e:?}");
}

#[cfg(feature = "tls")]
#[test]
fn memcaches_keeps_a_tls_config_given_first() {
    use futures_rustls::rustls;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    let tls = crate::tls::TlsConfig::new(Arc::new(config));
    let b = builder()
        .tls(tls)
        .url("memcaches://h:1?server_name=cache.internal")
        .unwrap();
    let tls = b.settings.tls.as_ref().unwrap();
    assert_eq!(tls.name_for(Some("h")), Some("cache.internal"));
}

#[cfg(any(feature = "webpki-roots", feature = "native-roots"))]
#[test]
fn memcaches_with_a_roots_feature_turns_tls_on() {
    match builder().url("memcaches://h:1") {
        Ok(b) => {
            let tls = b.settings.tls.as_ref().unwrap();
            assert_eq!(tls.name_for(Some("h")), Some("h"));
        }
        // native roots only, on a machine without any.
        Err(e) => assert!(matches!(e, ParseError::TlsRoots { .. }), "{e:?}"),
    }
}

#[test]
fn build_is_fail_open_unless_reachability_is_required() {
    use crate::testing::{poll, Connect, MemStream};
    use crate::Memcache;
    // Strict: the cause of the failed connect.
    let rt = ManualRuntime::new();
    rt.on_connect(Connect::Refuse);
    let strict = Builder::new(Arc::new(rt.clone()))
        .server("mem:1")
        .require_reachable(true);
    match ready(strict.build()) {
        Err(Error::Io(io)) => assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused),
        other => panic!("{other:?}"),
    }

    // Fail-open (the default): built while the server is down; calls fail fast.
    let rt = ManualRuntime::new();
    let client = ready(
        Builder::new(Arc::new(rt.clone()))
            .server("mem:1")
            .connections(1)
            .backoff(Duration::from_millis(10), Duration::from_millis(10))
            .build(),
    )
    .expect("built with the server down");
    rt.run_tasks();
    let mut get = std::pin::pin!(client.get("k"));
    assert!(poll(get.as_mut()).is_pending());
    rt.run_tasks();
    match poll(get.as_mut()) {
        Poll::Ready(Err(Error::Unavailable(why))) => assert!(why.contains("mem:1"), "{why}"),
        other => panic!("{other:?}"),
    }

    // The server comes up: the connection is opened in the background and serves.
    let server = MemStream::new();
    rt.on_connect(Connect::Open(server.clone()));
    rt.advance(Duration::from_millis(20));
    rt.run_tasks();
    let mut get = std::pin::pin!(client.get("k"));
    assert!(poll(get.as_mut()).is_pending());
    rt.run_tasks();
    assert_eq!(server.take_written(), b"mg k f v O0\r\n");
    server.send(b"EN O0\r\n");
    rt.run_tasks();
    assert!(matches!(poll(get.as_mut()), Poll::Ready(Ok(None))));
    assert!(rt.attempts().len() >= 3, "build, then background retries");
}
