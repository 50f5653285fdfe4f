//! Parsing of addresses and URLs, and `Builder::url` applying them: no network.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

fn url(s: &str) -> ClientUrl {
    parse_url(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn tcp(s: &str) -> Endpoint {
    Endpoint::Tcp(s.into())
}

fn endpoint(s: &str) -> Result<Endpoint, ParseError> {
    s.parse()
}

#[test]
fn every_endpoint_form() {
    for (input, want) in [
        ("h:1", tcp("h:1")),
        ("h", tcp("h:11211")),
        ("10.0.0.1:11212", tcp("10.0.0.1:11212")),
        ("[::1]:7", tcp("[::1]:7")),
        ("[::1]", tcp("[::1]:11211")),
        ("::1", tcp("[::1]:11211")),
        ("memcache://h:1", tcp("h:1")),
        ("memcache://h", tcp("h:11211")),
        ("memcache://h:1/", tcp("h:1")),
        ("memcache://[::1]:7", tcp("[::1]:7")),
        ("unix:/run/mc.sock", Endpoint::Unix("/run/mc.sock".into())),
        ("/run/mc.sock", Endpoint::Unix("/run/mc.sock".into())),
        ("unix:///run/mc.sock", Endpoint::Unix("/run/mc.sock".into())),
        (
            "unix:///run/a%20b.sock",
            Endpoint::Unix("/run/a b.sock".into()),
        ),
    ] {
        assert_eq!(endpoint(input), Ok(want), "{input}");
    }
}

#[test]
fn endpoint_errors() {
    let err = |s: &str| endpoint(s).unwrap_err();
    assert_eq!(
        err("h:abc"),
        ParseError::BadPort {
            input: "h:abc".into(),
            port: "abc".into()
        }
    );
    assert_eq!(
        err("memcache://h:abc"),
        ParseError::BadPort {
            input: "memcache://h:abc".into(),
            port: "abc".into()
        }
    );
    for bad_port in ["h:", "h:0", "h:65536", "h:-1", "memcache://h:99999"] {
        assert!(
            matches!(err(bad_port), ParseError::BadPort { .. }),
            "{bad_port}"
        );
    }
    for empty in [
        "",
        ":11211",
        "memcache://",
        "memcache://:1",
        "memcache://h:1,",
    ] {
        assert!(
            matches!(err(empty), ParseError::EmptyHost { .. }),
            "{empty:?}"
        );
    }
    for empty in ["unix:", "unix://"] {
        assert!(
            matches!(err(empty), ParseError::EmptyPath { .. }),
            "{empty}"
        );
    }
    assert_eq!(
        err("redis://h:1"),
        ParseError::UnknownScheme {
            input: "redis://h:1".into(),
            scheme: "redis".into()
        }
    );
    for malformed in [
        "[::1",
        "memcache://h:1/db",
        "memcache://h:1#x",
        "unix://host/sock",
        "unix:///a%zz",
        "memcache://user@h:1",
        "h:1?timeout=1s",
        "memcache://h x:1",
    ] {
        assert!(
            matches!(err(malformed), ParseError::Malformed { .. }),
            "{malformed}"
        );
    }
    // What a client holds, not an address.
    for client_url in [
        "memcaches://h:1",
        "memcache://h:1?timeout=1s",
        "memcache://u:p@h:1",
        "memcache://a:1,b:2",
    ] {
        assert!(
            matches!(err(client_url), ParseError::NotAnEndpoint { .. }),
            "{client_url}"
        );
    }
}

#[test]
fn messages_name_the_input_and_the_reason() {
    let e = endpoint("memcache://h:abc").unwrap_err().to_string();
    assert!(
        e.contains("\"memcache://h:abc\"") && e.contains("port \"abc\""),
        "{e}"
    );
    let e = parse_url("memcache://h:1?timeuot=1s")
        .unwrap_err()
        .to_string();
    assert!(e.contains("\"timeuot\"") && e.contains("timeout"), "{e}");
    let e = parse_url("memcache://h:1?timeout=soon")
        .unwrap_err()
        .to_string();
    assert!(e.contains("timeout=\"soon\"") && e.contains("500ms"), "{e}");
    let e = endpoint("memcaches://h:1").unwrap_err().to_string();
    assert!(e.contains("Builder::url"), "{e}");
    let e: mcache_proto::Error = endpoint("h:x").unwrap_err().into();
    assert!(matches!(e, mcache_proto::Error::Config(m) if m.contains("port \"x\"")));
}

#[test]
fn every_option() {
    let u = url(
        "memcache://h:1?timeout=500ms&connect_timeout=2s&read_timeout=1m&connections=4\
         &max_in_flight=64&max_value_len=2m&max_reply_len=512k&backoff_min=10&backoff_max=250us",
    );
    assert_eq!(
        u.options,
        Options {
            request_timeout: Some(Some(Duration::from_millis(500))),
            connect_timeout: Some(Duration::from_secs(2)),
            read_timeout: Some(Some(Duration::from_secs(60))),
            connections: Some(4),
            max_in_flight: Some(64),
            max_value_len: Some(2 << 20),
            max_reply_len: Some(512 << 10),
            backoff_min: Some(Duration::from_millis(10)),
            backoff_max: Some(Duration::from_micros(250)),
            server_name: None,
        }
    );
    assert_eq!(u.endpoints, vec![tcp("h:1")]);
    assert!(!u.tls);
    let u = url("memcache://h?timeout=none&read_timeout=none&");
    assert_eq!(u.options.request_timeout, Some(None));
    assert_eq!(u.options.read_timeout, Some(None));
    let u = url("memcaches://h:1?server_name=cache.internal");
    assert!(u.tls);
    assert_eq!(u.options.server_name.as_deref(), Some("cache.internal"));
    let u = url("unix:///run/mc.sock?connections=1");
    assert_eq!(u.endpoints, vec![Endpoint::Unix("/run/mc.sock".into())]);
    assert_eq!(u.options.connections, Some(1));
    // A plain address is a URL without options.
    assert_eq!(url("h:2").endpoints, vec![tcp("h:2")]);
    assert_eq!(url("h:2").options, Options::default());
}

#[test]
fn servers_and_credentials() {
    let u = url("memcache://a:1,b,[::1]:3");
    assert_eq!(
        u.endpoints,
        vec![tcp("a:1"), tcp("b:11211"), tcp("[::1]:3")]
    );
    let u = url("memcache://user:p%40ss%3Aw@h:1");
    assert_eq!(u.auth, Some(("user".into(), "p@ss:w".into())));
    assert_eq!(u.endpoints, vec![tcp("h:1")]);
    // An unencoded '@' in the password: the host is after the last one.
    assert_eq!(
        url("memcache://u:a@b@h:1").auth,
        Some(("u".into(), "a@b".into()))
    );
    assert!(matches!(
        parse_url("memcache://:p@h:1"),
        Err(ParseError::Malformed { .. })
    ));
}

#[test]
fn option_errors() {
    let bad = |s: &str| match parse_url(s) {
        Err(ParseError::BadOption { name, .. }) => name,
        other => panic!("{s}: {other:?}"),
    };
    assert_eq!(bad("memcache://h?timeout=soon"), "timeout");
    assert_eq!(bad("memcache://h?timeout=1.5s"), "timeout");
    assert_eq!(bad("memcache://h?timeout=-1s"), "timeout");
    assert_eq!(bad("memcache://h?timeout="), "timeout");
    assert_eq!(bad("memcache://h?timeout"), "timeout");
    assert_eq!(bad("memcache://h?connect_timeout=none"), "connect_timeout");
    assert_eq!(bad("memcache://h?read_timeout=2h"), "read_timeout");
    assert_eq!(bad("memcache://h?connections=0"), "connections");
    assert_eq!(bad("memcache://h?connections=two"), "connections");
    assert_eq!(bad("memcache://h?max_in_flight=+5"), "max_in_flight");
    assert_eq!(bad("memcache://h?max_value_len=1g"), "max_value_len");
    assert_eq!(bad("memcache://h?max_reply_len=k"), "max_reply_len");
    assert_eq!(bad("memcache://h?backoff_min=fast"), "backoff_min");
    assert_eq!(bad("memcache://h?timeout=1s&timeout=2s"), "timeout");
    assert_eq!(bad("memcache://h?server_name=x"), "server_name");
    assert_eq!(bad("memcaches://h?server_name="), "server_name");
    assert_eq!(
        parse_url("memcache://h:1?timeout=1s&pool=3"),
        Err(ParseError::UnknownOption {
            input: "memcache://h:1?timeout=1s&pool=3".into(),
            name: "pool".into()
        })
    );
}

#[test]
fn durations_and_sizes() {
    assert_eq!(duration("0"), Some(Duration::ZERO));
    assert_eq!(duration("750"), Some(Duration::from_millis(750)));
    assert_eq!(duration("2s"), Some(Duration::from_secs(2)));
    assert_eq!(duration("3m"), Some(Duration::from_secs(180)));
    assert_eq!(duration("s"), None);
    assert_eq!(duration("1 s"), None);
    assert_eq!(duration("99999999999999999999m"), None);
    assert_eq!(size("100"), Some(100));
    assert_eq!(size("1K"), Some(1024));
    assert_eq!(size("1M"), Some(1 << 20));
    assert_eq!(size(""), None);
}
