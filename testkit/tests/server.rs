//! Integration tests of the testkit against a real memcached.

use std::path::Path;
use std::time::Duration;

use mcache_testkit::{Memcached, TestkitError};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn version(server: &Memcached) -> std::io::Result<Vec<u8>> {
    server.raw_roundtrip(b"version\r\n", b"\r\n")
}

/// Whether a process with this pid exists at all (a zombie would still exist).
fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn two_servers_run_at_once_on_distinct_ports() -> TestResult {
    let a = Memcached::start()?;
    let b = Memcached::start()?;
    assert_ne!(a.port(), b.port());
    assert_ne!(a.pid(), b.pid());
    assert!(a.addr().ip().is_loopback());
    assert_eq!(a.host_port_string(), format!("127.0.0.1:{}", a.port()));
    assert_eq!(a.socket_path(), None);
    assert!(version(&a)?.starts_with(b"VERSION "));
    assert!(version(&b)?.starts_with(b"VERSION "));

    // They are distinct servers.
    assert_eq!(
        a.raw_roundtrip(b"set k 0 0 1\r\na\r\n", b"\r\n")?,
        b"STORED\r\n"
    );
    assert_eq!(b.raw_roundtrip(b"get k\r\n", b"END\r\n")?, b"END\r\n");
    Ok(())
}

#[test]
fn kill_then_restart_on_the_same_port() -> TestResult {
    let server = Memcached::start()?;
    let port = server.port();
    let first_pid = server.pid();
    assert_eq!(
        server.raw_roundtrip(b"set k 0 0 1\r\na\r\n", b"\r\n")?,
        b"STORED\r\n"
    );

    server.kill()?;
    assert!(!server.is_running());
    assert!(
        !process_exists(first_pid),
        "killed memcached was not reaped"
    );
    assert!(version(&server).is_err(), "a killed server answered");
    server.kill()?; // idempotent
    assert!(matches!(server.stop(), Err(TestkitError::NotRunning)));

    server.restart()?;
    assert!(server.is_running());
    assert_eq!(server.port(), port);
    assert_ne!(server.pid(), first_pid);
    assert_eq!(server.raw_roundtrip(b"get k\r\n", b"END\r\n")?, b"END\r\n");
    assert_eq!(
        server.raw_roundtrip(b"set k 0 0 1\r\nb\r\n", b"\r\n")?,
        b"STORED\r\n"
    );

    // Restarting a running server replaces it.
    let second_pid = server.pid();
    server.restart()?;
    assert_ne!(server.pid(), second_pid);
    assert!(!process_exists(second_pid));
    assert!(version(&server)?.starts_with(b"VERSION "));
    Ok(())
}

#[test]
fn stop_freezes_and_cont_resumes() -> TestResult {
    let server = Memcached::start()?;
    server.stop()?;
    assert!(
        server.is_running(),
        "a stopped process still counts as running"
    );
    // The kernel accepts the connection, but nobody answers.
    let frozen =
        server.raw_roundtrip_with_timeout(b"version\r\n", b"\r\n", Duration::from_millis(300));
    assert!(frozen.is_err(), "a stopped server answered: {frozen:?}");

    server.cont()?;
    assert!(version(&server)?.starts_with(b"VERSION "));

    // A stopped server can be killed and restarted.
    server.stop()?;
    server.restart()?;
    assert!(version(&server)?.starts_with(b"VERSION "));
    Ok(())
}

#[test]
fn unix_socket_mode() -> TestResult {
    let server = Memcached::builder().unix_socket(true).start()?;
    let socket = server
        .socket_path()
        .ok_or("no socket path in unix socket mode")?
        .to_path_buf();
    assert!(socket.exists());
    assert!(version(&server)?.starts_with(b"VERSION "));

    server.kill()?;
    server.restart()?;
    assert!(version(&server)?.starts_with(b"VERSION "));

    let dir = socket.parent().ok_or("socket has no parent")?.to_path_buf();
    let pid = server.pid();
    drop(server);
    assert!(!dir.exists(), "temp dir {} was not removed", dir.display());
    assert!(!process_exists(pid));
    Ok(())
}

#[test]
fn missing_binary_says_how_to_install() {
    let result = Memcached::builder()
        .binary("/nonexistent/mcache-testkit/memcached")
        .start();
    match result {
        Err(e @ TestkitError::NotFound { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("memcached not found"), "{msg}");
            assert!(msg.contains("apt-get install -y memcached"), "{msg}");
            assert!(
                msg.contains("/nonexistent/mcache-testkit/memcached"),
                "{msg}"
            );
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[test]
fn bad_arguments_report_memcached_stderr() {
    let result = Memcached::builder()
        .arg("--no-such-option-for-memcached")
        .start();
    match result {
        Err(e @ TestkitError::Exited { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("--no-such-option-for-memcached"), "{msg}");
        }
        other => panic!("expected Exited, got {other:?}"),
    }
}

#[test]
fn listening_elsewhere_is_refused() {
    for args in [
        &["-l", "0.0.0.0"][..],
        &["-p", "11211"],
        &["--listen=0.0.0.0"],
    ] {
        let result = Memcached::builder().args(args.iter().copied()).start();
        assert!(
            matches!(result, Err(TestkitError::InvalidArgument(_))),
            "{args:?}: {result:?}"
        );
    }
}

#[test]
fn options_reach_memcached() -> TestResult {
    let server = Memcached::builder()
        .threads(2)
        .memory_mb(16)
        .args(["-I", "2m"])
        .start()?;
    let stats = String::from_utf8(server.raw_roundtrip(b"stats\r\n", b"END\r\n")?)?;
    assert!(stats.contains("STAT threads 2\r\n"), "{stats}");
    assert!(
        stats.contains(&format!("STAT pid {}\r\n", server.pid())),
        "{stats}"
    );
    let settings = String::from_utf8(server.raw_roundtrip(b"stats settings\r\n", b"END\r\n")?)?;
    assert!(
        settings.contains("STAT maxbytes 16777216\r\n"),
        "{settings}"
    );
    assert!(
        settings.contains("STAT item_size_max 2097152\r\n"),
        "{settings}"
    );
    assert!(settings.contains("STAT udpport 0\r\n"), "{settings}");
    Ok(())
}

#[test]
fn ascii_auth_mode() -> TestResult {
    let server = Memcached::builder().auth("alice", "secret").start()?;
    assert_eq!(server.credentials(), Some(("alice", "secret")));
    let refused = server.raw_roundtrip(b"version\r\n", b"\r\n")?;
    assert!(refused.starts_with(b"CLIENT_ERROR"), "{refused:?}");

    let reply =
        server.raw_roundtrip(b"set auth 0 0 12\r\nalice secret\r\nget k\r\n", b"END\r\n")?;
    assert_eq!(reply, b"STORED\r\nEND\r\n");

    let bad = Memcached::builder().auth("bad:user", "x").start();
    assert!(
        matches!(bad, Err(TestkitError::InvalidArgument(_))),
        "{bad:?}"
    );
    Ok(())
}

#[test]
fn drop_kills_and_reaps_even_on_panic() {
    let pid = std::sync::Mutex::new(None);
    let result = std::panic::catch_unwind(|| {
        let server = Memcached::start().expect("memcached starts");
        *pid.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(server.pid());
        server.stop().expect("stop");
        panic!("test panics while memcached is stopped");
    });
    assert!(result.is_err());
    let pid = pid
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .expect("the closure recorded the pid");
    assert!(!process_exists(pid), "memcached {pid} leaked");
}
