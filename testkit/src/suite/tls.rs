//! TLS (memcached's `-Z`) with a self-signed certificate made for the test.

use super::{
    build, client, guard, sleep, spawn_catch, start_memcached, traffic, until_ok, until_streak,
    ClientOptions, Harness, TlsOptions,
};
use crate::{Memcached, TempDir};
use mcache_client::Memcache;
use mcache_proto::{Error, MetaGetFlags, MetaSetFlags, MetaStatus};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

/// A self-signed certificate and its private key, in PEM.
#[derive(Debug, Clone)]
pub struct TestCertificate {
    /// The certificate (also the root to trust).
    pub cert_pem: String,
    /// Its private key.
    pub key_pem: String,
}

/// A memcached serving TLS only, with the directory that holds its certificate.
#[derive(Debug)]
pub struct TlsMemcached {
    /// The server.
    pub server: Memcached,
    /// The certificate it presents.
    pub certificate: TestCertificate,
    _dir: TempDir,
}

impl TestCertificate {
    /// A fresh self-signed certificate for `names` (DNS names or IP addresses).
    pub fn self_signed(names: &[&str]) -> TestCertificate {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let ck = rcgen::generate_simple_self_signed(names).expect("rcgen certificate");
        TestCertificate {
            cert_pem: ck.cert.pem(),
            key_pem: ck.signing_key.serialize_pem(),
        }
    }

    /// Starts memcached with `-Z` and this certificate.
    pub fn start_memcached(&self) -> TlsMemcached {
        self.start_memcached_with(&[])
    }

    /// Starts memcached with `-Z`, this certificate, and extra arguments.
    pub fn start_memcached_with(&self, args: &[&str]) -> TlsMemcached {
        let dir = TempDir::new("mcache-tls").expect("temp dir");
        // Readable by a memcached that dropped root privileges.
        dir.set_mode(0o755).expect("chmod");
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        for (path, pem) in [(&cert, &self.cert_pem), (&key, &self.key_pem)] {
            fs::write(path, pem).expect("write pem");
            fs::set_permissions(path, fs::Permissions::from_mode(0o644)).expect("chmod");
        }
        let server = Memcached::builder()
            .arg("-Z")
            .arg("-o")
            .arg(format!(
                "ssl_chain_cert={},ssl_key={}",
                cert.display(),
                key.display()
            ))
            .args(args)
            .start()
            .unwrap_or_else(|e| panic!("could not start memcached with TLS: {e}"));
        TlsMemcached {
            server,
            certificate: self.clone(),
            _dir: dir,
        }
    }
}

fn tls_options(mc: &Memcached, root_pem: &str, server_name: Option<&str>) -> ClientOptions {
    ClientOptions {
        tls: Some(TlsOptions {
            root_pem: root_pem.as_bytes().to_vec(),
            server_name: server_name.map(str::to_string),
        }),
        ..ClientOptions::for_server(mc)
    }
}

/// A client that must be refused: its build fails within the connect timeout, or (builds
/// are fail-open: the client connects in the background) every call it makes fails and none
/// is ever served over the refused connection.
async fn must_not_build<H: Harness>(what: &str, options: ClientOptions) -> Error {
    let client = match guard::<H, _>(what, Duration::from_secs(10), build::<H>(options)).await {
        Ok(client) => client,
        Err(e) => return e,
    };
    let mut last = None;
    for _ in 0..3 {
        match guard::<H, _>(what, Duration::from_secs(10), client.get("t:k")).await {
            Ok(v) => panic!("{what}: a call was served: {v:?}"),
            Err(e) => last = Some(e),
        }
    }
    last.unwrap_or_else(|| Error::Config(format!("{what}: no call made")))
}

/// TLS with the server's certificate as the root, verified for the IP address and for a
/// host name: commands, a large value and pipelined load all work.
pub async fn tls_roundtrip<H: Harness>() {
    let cert = TestCertificate::self_signed(&["localhost", "127.0.0.1"]);
    let tls = cert.start_memcached();
    let mc = &tls.server;

    // Verified for 127.0.0.1 (the IP address in the certificate).
    let c = client::<H>(tls_options(mc, &cert.cert_pem, None)).await;
    c.set("t:k", "secret", 0).await.unwrap();
    assert_eq!(
        c.get("t:k").await.unwrap().map(|v| v.data),
        Some("secret".into())
    );
    assert_eq!(
        c.meta_set("t:m", "meta", MetaSetFlags::default())
            .await
            .unwrap()
            .status,
        MetaStatus::Hd
    );
    let m = c
        .meta_get(
            "t:m",
            MetaGetFlags {
                value: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(m.value, Some("meta".into()));
    // A value spanning many TLS records, both ways.
    let big: Vec<u8> = (0..700 * 1024).map(|i| (i % 253) as u8).collect();
    c.set("t:big", big.clone(), 0).await.unwrap();
    assert_eq!(
        c.get("t:big").await.unwrap().map(|v| v.data.to_vec()),
        Some(big)
    );
    traffic::<H>(&c, "tls").await;

    // Verified for the name "localhost", with the root among other certificates.
    let other = TestCertificate::self_signed(&["other.invalid"]);
    let bundle = format!("{}{}", other.cert_pem, cert.cert_pem);
    let named = client::<H>(ClientOptions {
        connections: 3,
        ..tls_options(mc, &bundle, Some("localhost"))
    })
    .await;
    assert_eq!(
        named.get("t:k").await.unwrap().map(|v| v.data),
        Some("secret".into())
    );
    traffic::<H>(&named, "tls-named").await;

    // After a restart, the connections come back over TLS.
    mc.restart().expect("restart memcached");
    for c in [&c, &named] {
        until_ok::<H, _, _, _>("set after restart", || c.set("t:after", "restart", 0)).await;
        until_streak::<H, _, _>("all connections back", || async {
            let v = c.get("t:after").await?;
            assert_eq!(v.map(|v| v.data), Some("restart".into()));
            Ok(())
        })
        .await;
    }
}

/// Verification is on: a client that trusts no root, another root, or expects another name
/// fails to build; the server keeps serving verified clients.
pub async fn tls_untrusted_certificates_fail<H: Harness>() {
    let cert = TestCertificate::self_signed(&["localhost", "127.0.0.1"]);
    let tls = cert.start_memcached();
    let mc = &tls.server;
    let other = TestCertificate::self_signed(&["localhost", "127.0.0.1"]);

    must_not_build::<H>("empty root store", tls_options(mc, "", None)).await;
    must_not_build::<H>("another root", tls_options(mc, &other.cert_pem, None)).await;
    must_not_build::<H>(
        "another root, by name",
        tls_options(mc, &other.cert_pem, Some("localhost")),
    )
    .await;
    must_not_build::<H>(
        "a name not in the certificate",
        tls_options(mc, &cert.cert_pem, Some("example.com")),
    )
    .await;

    let c = client::<H>(tls_options(mc, &cert.cert_pem, Some("localhost"))).await;
    c.set("t:k", "v", 0).await.unwrap();
    assert_eq!(
        c.get("t:k").await.unwrap().map(|v| v.data),
        Some("v".into())
    );
}

/// A plain-text client against a TLS server gets errors, not replies and not a hang; a TLS
/// client against a plain-text server fails to build.
pub async fn tls_plaintext_client_fails<H: Harness>() {
    let cert = TestCertificate::self_signed(&["localhost", "127.0.0.1"]);
    let tls = cert.start_memcached();
    let plain = ClientOptions {
        request_timeout: Some(Duration::from_secs(2)),
        read_timeout: Some(Duration::from_secs(2)),
        ..ClientOptions::for_server(&tls.server)
    };
    // The TCP connect succeeds (the handshake is the server's to refuse), or not.
    if let Ok(c) = build::<H>(plain).await {
        for _ in 0..3 {
            let r = guard::<H, _>(
                "plain-text call to a TLS server",
                Duration::from_secs(10),
                c.get("t:k"),
            )
            .await;
            assert!(r.is_err(), "plain-text call to a TLS server: {r:?}");
        }
    }

    let mc = start_memcached();
    must_not_build::<H>(
        "TLS client against a plain-text server",
        tls_options(&mc, &cert.cert_pem, None),
    )
    .await;
    // The plain-text server is unharmed.
    let c = client::<H>(ClientOptions::for_server(&mc)).await;
    c.set("t:k", "v", 0).await.unwrap();
    assert_eq!(
        c.get("t:k").await.unwrap().map(|v| v.data),
        Some("v".into())
    );
}

/// The TCP connections of `/proc/net/tcp` on 127.0.0.1: (local port, remote port, bytes in
/// the send queue, bytes in the receive queue).
fn loopback_sockets() -> Vec<(u16, u16, usize, usize)> {
    let Ok(table) = fs::read_to_string("/proc/net/tcp") else {
        return Vec::new();
    };
    let hex = |s: &str| usize::from_str_radix(s, 16).ok();
    let port = |addr: &str| {
        addr.split_once(':')
            .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
    };
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (tx, rx) = f.get(4)?.split_once(':')?;
            Some((port(f.get(1)?)?, port(f.get(2)?)?, hex(tx)?, hex(rx)?))
        })
        .collect()
}

/// Bytes the kernel holds on the client connection to `server_port` with the longest send
/// queue (its send queue plus the server side's unread receive queue).
fn most_queued_towards(server_port: u16) -> Option<usize> {
    let sockets = loopback_sockets();
    let (client_port, tx) = sockets
        .iter()
        .filter(|s| s.1 == server_port)
        .map(|s| (s.0, s.2))
        .max_by_key(|s| s.1)?;
    let rx = sockets
        .iter()
        .find(|s| s.0 == server_port && s.1 == client_port)
        .map_or(0, |s| s.3);
    Some(tx + rx)
}

/// Writes over TLS that block on a frozen server must all go out once it runs again.
///
/// A TLS stream accepts a write into its own buffer (at most 64 KiB of records for rustls)
/// even when the socket is full, and only sends it on a later write or flush. When the last
/// bytes of a request end up there while the socket is full, the client must flush again once
/// the socket drains; if it only writes when it has new requests, the request never completes.
/// The case measures how much the kernel buffers towards the stopped server, then sends single
/// values sized so that their ends fall into that 64 KiB window.
pub async fn tls_writes_resume_after_stall<H: Harness>() {
    let cert = TestCertificate::self_signed(&["localhost", "127.0.0.1"]);
    let tls = cert.start_memcached_with(&["-I", "16m", "-m", "128"]);
    let mc = &tls.server;
    let mut clients = Vec::new();
    for _ in 0..4 {
        let c = client::<H>(ClientOptions {
            connections: 1,
            // Only the hang guards below bound the wait.
            request_timeout: None,
            read_timeout: Some(Duration::from_secs(60)),
            max_value_len: Some(16 * 1024 * 1024),
            ..tls_options(mc, &cert.cert_pem, None)
        })
        .await;
        c.set("t:warm", "up", 0).await.unwrap();
        clients.push(c);
    }

    // A probe connection in the same state measures how much the kernel buffers towards the
    // stopped server.
    let probe = client::<H>(ClientOptions {
        connections: 1,
        request_timeout: None,
        read_timeout: Some(Duration::from_secs(60)),
        max_value_len: Some(16 * 1024 * 1024),
        ..tls_options(mc, &cert.cert_pem, None)
    })
    .await;
    probe.set("t:warm", "up", 0).await.unwrap();
    mc.stop().expect("SIGSTOP");
    let probe_set = spawn_catch::<H, _>({
        let probe = probe.clone();
        async move { probe.set("t:probe", vec![b'p'; 12 * 1024 * 1024], 0).await }
    });
    sleep::<H>(Duration::from_millis(300)).await;
    let Some(capacity) = most_queued_towards(mc.port()) else {
        mc.cont().expect("SIGCONT");
        eprintln!("no /proc/net/tcp: the stall case cannot aim its writes; skipped");
        return;
    };
    let mut sets = Vec::new();
    for (i, c) in clients.iter().enumerate() {
        // TLS 1.3 adds 22 bytes per record of at most 16 KiB; aim 8 to 56 KiB past capacity.
        let wire = capacity + 8 * 1024 + i * 16 * 1024;
        let len = wire * 16384 / (16384 + 22) - 64;
        let c = c.clone();
        let value = vec![b'a' + i as u8; len];
        sets.push(spawn_catch::<H, _>(async move {
            c.set(format!("t:big:{i}"), value, 0).await
        }));
    }
    // Let the writes fill the socket buffers (a trigger, not an assertion).
    sleep::<H>(Duration::from_millis(300)).await;
    mc.cont().expect("SIGCONT");
    guard::<H, _>("the probe's set", Duration::from_secs(15), probe_set)
        .await
        .unwrap_or_else(|p| panic!("task panicked: {p}"))
        .unwrap_or_else(|e| panic!("probe set: {e}"));
    for (i, set) in sets.into_iter().enumerate() {
        guard::<H, _>(
            &format!(
                "set {i}, written while the server was stopped (kernel buffers {capacity} bytes)"
            ),
            Duration::from_secs(15),
            set,
        )
        .await
        .unwrap_or_else(|p| panic!("task panicked: {p}"))
        .unwrap_or_else(|e| panic!("set {i}: {e}"));
    }
    for (i, c) in clients.iter().enumerate() {
        let v = c.get(format!("t:big:{i}")).await.unwrap().expect("hit");
        assert!(v.data.iter().all(|&b| b == b'a' + i as u8));
    }
}
