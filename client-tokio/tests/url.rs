//! Clients configured from URLs (`Builder::url`) against real memcached servers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mcache_testkit::Memcached;
use mcache_tokio::{Client, Connect, Error, Memcache, ParseError};

async fn roundtrip(client: &Client, key: &str) {
    client.set(key, "value", 0).await.unwrap();
    let got = client.get(key).await.unwrap();
    assert_eq!(got.map(|v| v.data), Some("value".into()));
}

#[tokio::test]
async fn memcache_url_with_options() {
    let server = Memcached::start().unwrap();
    let url = format!(
        "memcache://127.0.0.1:{}?timeout=2s&connections=1",
        server.port()
    );
    let client = Client::builder().url(&url).unwrap().build().await.unwrap();
    roundtrip(&client, "url:tcp").await;
}

#[tokio::test]
async fn unix_url() {
    let server = Memcached::builder().unix_socket(true).start().unwrap();
    let path = server.socket_path().unwrap().display().to_string();
    let url = format!("unix://{path}?connect_timeout=500ms&read_timeout=none");
    let client = Client::builder().url(&url).unwrap().build().await.unwrap();
    roundtrip(&client, "url:unix").await;
    // The plain forms connect too.
    let client = Client::connect(format!("unix:{path}")).await.unwrap();
    roundtrip(&client, "url:unix:plain").await;
}

#[tokio::test]
async fn credentials_in_the_url() {
    let server = Memcached::builder().auth("user", "p@ss").start().unwrap();
    let url = format!("memcache://user:p%40ss@127.0.0.1:{}", server.port());
    let client = Client::builder().url(&url).unwrap().build().await.unwrap();
    roundtrip(&client, "url:auth").await;
}

#[tokio::test]
async fn bad_urls_are_typed_errors_and_bad_servers_fail_the_build() {
    assert!(matches!(
        Client::builder().url("memcache://127.0.0.1:1?pool=2"),
        Err(ParseError::UnknownOption { .. })
    ));
    assert!(matches!(
        Client::builder().url("memcache://127.0.0.1:abc"),
        Err(ParseError::BadPort { .. })
    ));
    // `Client::connect` takes any string; one that does not parse is refused before connecting.
    match Client::connect("127.0.0.1:abc").await {
        Err(Error::Config(m)) => assert!(m.contains("port \"abc\""), "{m}"),
        other => panic!("{other:?}"),
    }
    // A server that is not there: `Client::connect` and a builder with `require_reachable`
    // fail; a plain builder is fail-open (built, its calls fail until the server answers).
    let server = Memcached::start().unwrap();
    let addr = server.host_port_string();
    server.kill().unwrap();
    assert!(matches!(
        Client::connect(addr.as_str()).await,
        Err(Error::Io(_))
    ));
    let strict = Client::builder()
        .server(addr.as_str())
        .require_reachable(true);
    assert!(matches!(strict.build().await, Err(Error::Io(_))));
    let client = Client::builder()
        .server(addr.as_str())
        .build()
        .await
        .unwrap();
    assert!(client.get("url:down").await.is_err());
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn memcaches_url_with_given_roots_and_server_name() {
    use mcache_testkit::suite::TestCertificate;
    use mcache_tokio::tls::TlsConfig;
    let certificate = TestCertificate::self_signed(&["cache.test"]);
    let tls = certificate.start_memcached();
    let roots = TlsConfig::with_root_certificates_pem(certificate.cert_pem.as_bytes()).unwrap();
    let url = format!(
        "memcaches://127.0.0.1:{}?server_name=cache.test&timeout=2s",
        tls.server.port()
    );
    let client = Client::builder()
        .tls(roots)
        .url(&url)
        .unwrap()
        .build()
        .await
        .unwrap();
    roundtrip(&client, "url:tls").await;
}
