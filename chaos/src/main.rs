//! `mcache-chaos`: the soak/chaos run (see the library's documentation).
//!
//! ```text
//! cargo run --release -p mcache-chaos -- --seconds 600 --tasks 32
//! ```
//!
//! Prints its counts; exits 1 on any mismatch, stale read, unexpected error or RSS growth past
//! the bound, 2 if the run could not be set up.

#![forbid(unsafe_code)]

use mcache_chaos::{run, Config};
use std::time::Duration;

fn main() {
    let mut config = Config {
        progress: Some(Duration::from_secs(30)),
        ..Config::default()
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut num = |name: &str| -> u64 {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| usage(&format!("{name} needs a number")))
        };
        match a.as_str() {
            "--seconds" => config.duration = Duration::from_secs(num("--seconds")),
            "--tasks" => config.tasks = num("--tasks").max(1) as usize,
            "--fault-every-ms" => {
                config.fault_every = Duration::from_millis(num("--fault-every-ms"))
            }
            "--fault-length-ms" => {
                config.fault_length = Duration::from_millis(num("--fault-length-ms"))
            }
            "--drop-one-in" => config.drop_one_in = num("--drop-one-in").max(1) as u32,
            "--rss-bound-mib" => config.rss_bound = num("--rss-bound-mib") << 20,
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    eprintln!("mcache-chaos: {config:?}");
    match run(&config) {
        Ok(report) => {
            print!("{report}");
            match report.verdict() {
                Ok(()) => println!("verdict: OK"),
                Err(e) => {
                    println!("verdict: FAILED: {e}");
                    std::process::exit(1);
                }
            }
        }
        Err(e) => {
            eprintln!("mcache-chaos: could not run: {e}");
            std::process::exit(2);
        }
    }
}

fn usage(problem: &str) -> ! {
    if !problem.is_empty() {
        eprintln!("mcache-chaos: {problem}");
    }
    eprintln!(
        "usage: mcache-chaos [--seconds N] [--tasks N] [--fault-every-ms N] \
         [--fault-length-ms N] [--drop-one-in N] [--rss-bound-mib N]"
    );
    std::process::exit(2);
}
