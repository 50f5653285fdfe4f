//! The blocking client over TLS (memcached's `-Z`) with certificates made for the test:
//! trusted certificates work (for an IP address, a host name, a unix socket with a server
//! name), untrusted ones and a plaintext client fail with typed errors.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod blocking_support;

use blocking_support::until_ok;
use bytes::Bytes;
use mcache_client::blocking::{Builder, Client, Memcache};
use mcache_client::tls::TlsConfig;
use mcache_client::Error;
use mcache_testkit::suite::TestCertificate;
use std::time::Duration;

fn tls_builder(server: &str, roots_pem: &str) -> Builder {
    let tls = TlsConfig::with_root_certificates_pem(roots_pem.as_bytes()).unwrap();
    Client::builder()
        .server(server)
        .tls(tls)
        .connect_timeout(Duration::from_secs(2))
        .request_timeout(Some(Duration::from_secs(5)))
}

#[test]
fn tls_roundtrip_with_a_trusted_certificate() {
    let cert = TestCertificate::self_signed(&["localhost", "127.0.0.1"]);
    let tls = cert.start_memcached();
    let port = tls.server.port();
    for server in [format!("127.0.0.1:{port}"), format!("localhost:{port}")] {
        let c = tls_builder(&server, &cert.cert_pem)
            .connections(4)
            .build()
            .unwrap();
        c.set("t:k", "secret", 0).unwrap();
        assert_eq!(c.get("t:k").unwrap().map(|v| v.data), Some("secret".into()));
        let big = Bytes::from(vec![b'q'; 700 * 1024]);
        c.set("t:big", big.clone(), 0).unwrap();
        assert_eq!(c.get("t:big").unwrap().map(|v| v.data), Some(big));
        std::thread::scope(|s| {
            for t in 0..8 {
                let c = &c;
                s.spawn(move || {
                    for i in 0..50 {
                        let k = format!("t:{t}");
                        let v = format!("{t}/{i}");
                        c.set(k.as_str(), v.clone(), 0).unwrap();
                        assert_eq!(c.get(k.as_str()).unwrap().map(|v| v.data), Some(v.into()));
                    }
                });
            }
        });
    }
    // A restart: the new connections handshake again.
    let c = tls_builder(&format!("127.0.0.1:{port}"), &cert.cert_pem)
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
        .build()
        .unwrap();
    tls.server.restart().unwrap();
    until_ok("after restart", 5, || c.set("t:after", "restart", 0));
}

#[test]
fn tls_untrusted_or_misnamed_certificates_and_plaintext_fail() {
    let cert = TestCertificate::self_signed(&["localhost"]);
    let tls = cert.start_memcached();
    let port = tls.server.port();
    let other = TestCertificate::self_signed(&["localhost", "127.0.0.1"]);
    let refused = |what: &str, b: Builder| match b.build() {
        Err(Error::Io(e)) => e,
        other => panic!("{what}: expected a TLS error, got {other:?}"),
    };
    let e = refused(
        "another root",
        tls_builder(&format!("localhost:{port}"), &other.cert_pem),
    );
    assert!(e.to_string().contains("TLS"), "{e}");
    let e = refused(
        "not for 127.0.0.1",
        tls_builder(&format!("127.0.0.1:{port}"), &cert.cert_pem),
    );
    assert!(e.to_string().contains("TLS"), "{e}");
    // The right root and name work on the same server.
    let ok = tls_builder(&format!("localhost:{port}"), &cert.cert_pem)
        .build()
        .unwrap();
    assert!(ok.version().unwrap().starts_with("1."));

    // Plaintext to a TLS server: no reply it can read, within the timeouts.
    let plain = Client::builder()
        .server(format!("127.0.0.1:{port}"))
        .request_timeout(Some(Duration::from_millis(500)))
        .build();
    let e = plain
        .and_then(|c| c.version())
        .expect_err("plaintext to a TLS server");
    assert!(
        matches!(e, Error::Timeout | Error::Poisoned(_) | Error::Io(_)),
        "{e:?}"
    );
}

/// TLS to a unix socket is refused before connecting unless a name to verify the
/// certificate against is set.
#[test]
fn tls_over_a_unix_socket_needs_a_server_name() {
    let cert = TestCertificate::self_signed(&["memcached.test"]);
    match tls_builder("unix:/nonexistent/mc.sock", &cert.cert_pem).build() {
        Err(Error::Config(msg)) => assert!(msg.contains("server_name"), "{msg}"),
        other => panic!("TLS over a unix socket without a name: {other:?}"),
    }
    let named = TlsConfig::with_root_certificates_pem(cert.cert_pem.as_bytes())
        .unwrap()
        .server_name("memcached.test");
    let b = Client::builder()
        .server("unix:/nonexistent/mc.sock")
        .tls(named);
    match b.build() {
        Err(Error::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{e}"),
        other => panic!("a socket that does not exist: {other:?}"),
    }
}
