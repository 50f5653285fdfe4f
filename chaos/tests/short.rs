//! The short chaos run for CI: 12 s of load over both adapters with SIGKILLs and SIGSTOPs of
//! the two memcached servers in the middle; no mismatch, no stale read, no unexpected error.

use mcache_chaos::{run, Config};
use std::time::Duration;

#[test]
fn short_chaos_run() {
    let config = Config {
        duration: Duration::from_secs(12),
        tasks: 8,
        fault_every: Duration::from_millis(2500),
        fault_length: Duration::from_millis(400),
        drop_one_in: 30,
        ..Config::default()
    };
    let report = run(&config).unwrap_or_else(|e| panic!("chaos run could not start: {e}"));
    println!("{report}");
    assert!(report.kills >= 1, "no kill happened:\n{report}");
    assert!(report.stops >= 1, "no stop happened:\n{report}");
    assert_eq!(report.mismatches, 0, "{report}");
    assert_eq!(report.stale, 0, "{report}");
    if let Err(e) = report.verdict() {
        panic!("chaos run failed: {e}\n{report}");
    }
}
