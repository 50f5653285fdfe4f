//! A synchronous command-line memcached client on `mcache_client::blocking`, with no async
//! runtime anywhere in the program.
//!
//! ```text
//! # A demo against a private memcached started for it (Debian's `memcached` on the PATH):
//! cargo run -p mcache-client --features blocking --example blocking
//!
//! # One command against a server of yours:
//! cargo run -p mcache-client --features blocking --example blocking -- \
//!     --server 127.0.0.1:11211 set greeting hello 60
//! #   commands: get KEY | set KEY VALUE [TTL] | delete KEY | incr KEY [N] | version | stats
//! ```
//!
//! The demo caches a slow computation (a get, then on a miss the computation and a set), and
//! shares one client between eight threads.

use mcache_client::blocking::{Client, Memcache};
use mcache_client::Error;
use std::process::ExitCode;
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let server = match args.iter().position(|a| a == "--server") {
        Some(i) if i + 1 < args.len() => Some(args.drain(i..=i + 1).nth(1)),
        Some(_) => return usage("--server needs an address"),
        None => None,
    };
    let result = match server.flatten() {
        Some(server) => Client::connect(server.as_str()).and_then(|c| command(&c, &args)),
        None => demo(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage(why: &str) -> ExitCode {
    eprintln!("{why}\nusage: blocking [--server ADDR COMMAND...]");
    eprintln!(
        "commands: get KEY | set KEY VALUE [TTL] | delete KEY | incr KEY [N] | version | stats"
    );
    ExitCode::from(2)
}

/// Runs one command of the command line.
fn command(cache: &Client, args: &[String]) -> Result<(), Error> {
    let arg = |i: usize| args.get(i).map(String::as_str);
    let number = |i: usize, default: u64| {
        arg(i).map_or(Ok(default), |s| {
            s.parse()
                .map_err(|_| Error::Config(format!("{s:?} is not a number")))
        })
    };
    match (arg(0), arg(1), arg(2)) {
        (Some("get"), Some(key), None) => match cache.get(key)? {
            Some(v) => println!("{}", v.data.escape_ascii()),
            None => println!("(miss)"),
        },
        (Some("set"), Some(key), Some(value)) => {
            let ttl = i32::try_from(number(3, 0)?).unwrap_or(i32::MAX);
            cache.set(key, value.to_string(), ttl)?;
            println!("stored");
        }
        (Some("delete"), Some(key), None) => println!("{}", cache.delete(key)?),
        (Some("incr"), Some(key), _) => match cache.incr(key, number(2, 1)?)? {
            Some(n) => println!("{n}"),
            None => println!("(miss: incr needs an existing number)"),
        },
        (Some("version"), None, None) => println!("{}", cache.version()?),
        (Some("stats"), None, None) => {
            for s in cache.stats(None)? {
                println!("{} {}", s.name.escape_ascii(), s.value.escape_ascii());
            }
        }
        _ => return Err(Error::Config(format!("unknown command {args:?}"))),
    }
    Ok(())
}

/// A slow computation worth caching: the number of primes below `n`, slowly.
fn primes_below(n: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(300));
    (2..n)
        .filter(|&k| (2..k).take_while(|d| d * d <= k).all(|d| k % d != 0))
        .count() as u64
}

/// The cached form: a hit is read from memcached, a miss computed and stored for a minute.
fn cached_primes_below(cache: &Client, n: u64) -> Result<(u64, bool), Error> {
    let key = format!("demo:primes_below:{n}");
    if let Some(hit) = cache.get(key.as_str())? {
        let text = String::from_utf8_lossy(&hit.data);
        if let Ok(count) = text.parse() {
            return Ok((count, true));
        }
    }
    let count = primes_below(n);
    cache.set(key.as_str(), count.to_string(), 60)?;
    Ok((count, false))
}

/// The demo: a private memcached, a cached computation, eight threads on one client.
fn demo() -> Result<(), Error> {
    let server = mcache_testkit::Memcached::start()
        .map_err(|e| Error::Config(format!("could not start memcached: {e}")))?;
    let addr = server.host_port_string();
    println!("memcached started on {addr} for this demo");
    let cache = Client::builder().server(addr.as_str()).build()?;
    println!("server version {}", cache.version()?);

    for round in ["first call", "second call"] {
        let started = Instant::now();
        let (count, hit) = cached_primes_below(&cache, 50_000)?;
        let how = if hit { "hit" } else { "miss, computed" };
        println!(
            "{round}: {count} primes below 50000 ({how}, {:?})",
            started.elapsed()
        );
    }

    cache.set("demo:visits", "0", 0)?;
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let cache = cache.clone();
            std::thread::spawn(move || {
                (0..100).try_for_each(|_| cache.incr("demo:visits", 1).map(drop))
            })
        })
        .collect();
    for t in threads {
        t.join()
            .map_err(|_| Error::Config("a thread panicked".into()))??;
    }
    let visits = cache.get("demo:visits")?.map(|v| v.data);
    println!("8 threads x 100 incr on one client: demo:visits = {visits:?}");
    let stats = cache.client_stats();
    if let Some(total) = stats.total() {
        println!(
            "client counted {} requests, {} ok",
            total.requests, total.ok
        );
    }
    Ok(())
}
