//! Unix sockets and memcached's ASCII authentication.

use super::{build, client, traffic, until_ok, until_streak, ClientOptions, Harness};
use crate::Memcached;
use mcache_client::Memcache;
use mcache_proto::{Error, MetaSetFlags, MetaStatus};

/// `Builder::server("unix:/path")` (and a bare absolute path) talk to memcached's `-s`.
pub async fn unix_socket<H: Harness>() {
    let mc = Memcached::builder()
        .unix_socket(true)
        .start()
        .unwrap_or_else(|e| panic!("could not start memcached on a unix socket: {e}"));
    let path = mc.socket_path().expect("a unix socket").to_path_buf();
    let c = client::<H>(ClientOptions::new(format!("unix:{}", path.display()))).await;
    c.set("u:k", "over a unix socket", 0).await.unwrap();
    assert_eq!(
        c.get("u:k").await.unwrap().map(|v| v.data),
        Some("over a unix socket".into())
    );
    assert_eq!(
        c.meta_set("u:m", "meta", MetaSetFlags::default())
            .await
            .unwrap()
            .status,
        MetaStatus::Hd
    );
    traffic::<H>(&c, "u").await;

    let bare = client::<H>(ClientOptions::new(path.display().to_string())).await;
    assert_eq!(
        bare.get("u:k").await.unwrap().map(|v| v.data),
        Some("over a unix socket".into())
    );
    let stats = bare.stats(None).await.unwrap();
    assert_eq!(super::stat(&stats, "pid"), u64::from(mc.pid()));

    // A restart recreates the socket file: the same clients reconnect.
    mc.restart().expect("restart memcached");
    for c in [&c, &bare] {
        until_ok::<H, _, _, _>("set after restart", || c.set("u:after", "restart", 0)).await;
        until_streak::<H, _, _>("all connections back", || async {
            let v = c.get("u:after").await?;
            assert_eq!(v.map(|v| v.data), Some("restart".into()));
            Ok(())
        })
        .await;
    }

    // Connecting to a socket that does not exist fails to build, with a typed error.
    let missing = path.with_file_name("no-such.sock");
    match build::<H>(ClientOptions::new(format!("unix:{}", missing.display()))).await {
        Err(Error::Io(_)) => {}
        Err(e) => panic!("missing socket: expected Err(Error::Io), got {e:?}"),
        Ok(_) => panic!("missing socket: the client was built"),
    }
}

/// ASCII authentication (`-Y`): the right credentials work on every connection; a wrong
/// password fails the build with a typed error; without credentials every call gets
/// `Error::Client("unauthenticated")`.
pub async fn ascii_auth<H: Harness>() {
    let mc = Memcached::builder()
        .auth("user", "secret")
        .start()
        .unwrap_or_else(|e| panic!("could not start memcached with -Y: {e}"));
    let options = ClientOptions::for_server(&mc);

    let c = client::<H>(ClientOptions {
        auth: Some(("user".into(), "secret".into())),
        connections: 3,
        ..options.clone()
    })
    .await;
    c.set("auth:k", "v", 0).await.unwrap();
    assert_eq!(
        c.get("auth:k").await.unwrap().map(|v| v.data),
        Some("v".into())
    );
    assert!(c.version().await.unwrap().starts_with("1."));
    traffic::<H>(&c, "auth").await;

    match build::<H>(ClientOptions {
        auth: Some(("user".into(), "wrong".into())),
        ..options.clone()
    })
    .await
    {
        Err(Error::Client(msg)) => assert!(
            String::from_utf8_lossy(&msg).contains("auth"),
            "wrong password: CLIENT_ERROR {msg:?}"
        ),
        Err(e) => panic!("wrong password: expected Err(Error::Client), got {e:?}"),
        Ok(_) => panic!("wrong password: the client was built"),
    }
    match build::<H>(ClientOptions {
        auth: Some(("nobody".into(), "secret".into())),
        ..options.clone()
    })
    .await
    {
        Err(Error::Client(_)) => {}
        Err(e) => panic!("unknown user: expected Err(Error::Client), got {e:?}"),
        Ok(_) => panic!("unknown user: the client was built"),
    }

    // No credentials: the server refuses each command (one at a time: memcached drops the
    // rest of a pipelined batch after refusing its first command).
    let anon = client::<H>(options.clone()).await;
    for _ in 0..4 {
        match anon.get("auth:k").await {
            Err(Error::Client(msg)) => assert_eq!(&msg[..], b"unauthenticated"),
            other => panic!("get without credentials: {other:?}"),
        }
        match anon.version().await {
            Err(Error::Client(msg)) => assert_eq!(&msg[..], b"unauthenticated"),
            other => panic!("version without credentials: {other:?}"),
        }
    }
    // The authenticated client is unaffected.
    assert_eq!(
        c.get("auth:k").await.unwrap().map(|v| v.data),
        Some("v".into())
    );

    // After a restart, every reconnection authenticates again.
    mc.restart().expect("restart memcached");
    until_ok::<H, _, _, _>("set after restart", || c.set("auth:after", "restart", 0)).await;
    until_streak::<H, _, _>("all connections back", || async {
        let v = c.get("auth:after").await?;
        assert_eq!(v.map(|v| v.data), Some("restart".into()));
        Ok(())
    })
    .await;
}
