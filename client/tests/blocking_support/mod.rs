//! What the blocking client's test files share: servers, clients with quick timeouts and
//! reconnects, memcached's counters, and waiting for recovery after an outage.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mcache_client::blocking::{Builder, Client, Memcache};
use mcache_client::Error;
use mcache_testkit::Memcached;
use std::time::Duration;

/// Starts a default memcached or panics with the testkit's explanation.
pub(crate) fn start() -> Memcached {
    Memcached::start().unwrap_or_else(|e| panic!("could not start memcached: {e}"))
}

/// The address a client uses for `mc`: its unix socket if it has one, else `host:port`.
pub(crate) fn address(mc: &Memcached) -> String {
    match mc.socket_path() {
        Some(path) => format!("unix:{}", path.display()),
        None => mc.host_port_string(),
    }
}

/// A builder for `mc` with hang-guard timeouts (5 s) and quick reconnects (20 to 200 ms).
pub(crate) fn builder(mc: &Memcached) -> Builder {
    Client::builder()
        .server(address(mc))
        .request_timeout(Some(Duration::from_secs(5)))
        .read_timeout(Some(Duration::from_secs(5)))
        .connect_timeout(Duration::from_secs(2))
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
}

/// A client for `mc` from [`builder`].
pub(crate) fn client(mc: &Memcached) -> Client {
    builder(mc).build().expect("blocking client")
}

/// memcached's counter `name`, as `stats` reports it.
pub(crate) fn stat(c: &impl Memcache, name: &str) -> u64 {
    let stats = c.stats(None).expect("stats");
    let s = stats.iter().find(|s| s.name == name.as_bytes());
    let s = s.unwrap_or_else(|| panic!("no stat {name}"));
    let text = std::str::from_utf8(&s.value).expect("a stat is text");
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("stat {name}: {text:?}"))
}

/// Whether `e` is what a caller may get while a server is gone or not answering.
pub(crate) fn is_outage(e: &Error) -> bool {
    matches!(
        e,
        Error::Poisoned(_) | Error::Io(_) | Error::Unavailable(_) | Error::Timeout
    )
}

/// Calls `op` until it succeeds `streak` times in a row (every connection is back), 20 ms
/// apart after a failure, for at most 400 failures; every failure must be an outage.
pub(crate) fn until_ok<T>(
    what: &str,
    streak: usize,
    mut op: impl FnMut() -> Result<T, Error>,
) -> T {
    let (mut ok, mut failures) = (0, 0);
    loop {
        match op() {
            Ok(v) if ok + 1 >= streak => return v,
            Ok(_) => ok += 1,
            Err(e) => {
                assert!(is_outage(&e), "{what}: not an outage error: {e:?}");
                failures += 1;
                assert!(failures < 400, "{what}: still failing: {e:?}");
                ok = 0;
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}
