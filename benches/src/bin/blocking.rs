//! The blocking client (`mcache_client::blocking`) measured against what a synchronous
//! program could use instead, against one memcached started here (Debian's `memcached`):
//!
//! - sequential round trips (one thread, `get` of 100-byte values): the blocking client vs
//!   proto's `Connection` driven by hand over a blocking `TcpStream` (the floor: no pool,
//!   no routing, no deadlines);
//! - 32 threads sharing one client (`get`s of 100-byte values): the blocking client with 32
//!   connections vs rust-memcache (`memcache` crate, sync) over an r2d2 pool of 32, as its
//!   builder makes it and tuned (ASCII protocol, no checkout probe).
//!
//! Client CPU per get is from getrusage (this process: user + system).
//!
//! `blocking [seconds per cell] [sequential]` (default 3 seconds; `sequential`: only the
//! sequential cells) prints a Markdown table. Each cell runs in three rounds, alternating
//! with the other cells of its scenario, and its best round is reported (the machine may be
//! busy with other work during any one round).

use mcache_benches::{run_threads, Measurement};
use mcache_client::blocking::{Client, Memcache};
use mcache_proto::commands::{self, Call};
use mcache_proto::{Connection, Request, Response};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Mutex;
use std::time::{Duration, Instant};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Keys stored before measuring (100-byte values).
const KEYS: u64 = 1000;

fn key(i: u64) -> String {
    format!("blocking:{}", i % KEYS)
}

/// How many times each cell runs (alternating with the others of its scenario): the best
/// round is reported, as the machine may be busy with other work during any one of them.
const ROUNDS: u32 = 3;

/// One measured cell: scenario, client, and a run of it for a given time.
type Cell<'a> = (
    &'static str,
    &'static str,
    Box<dyn Fn(Duration) -> Measurement + 'a>,
);

fn main() -> Result<(), BoxError> {
    let secs: f64 = std::env::args().nth(1).map_or(Ok(3.0), |a| a.parse())?;
    let only = std::env::args().nth(2).unwrap_or_default();
    let round = Duration::from_secs_f64(secs / f64::from(ROUNDS));
    let server = mcache_testkit::Memcached::builder().threads(2).start()?;
    let addr = server.host_port_string();
    let setup = Client::connect(addr.as_str())?;
    for i in 0..KEYS {
        setup.set(key(i).as_str(), vec![b'v'; 100], 0)?;
    }

    let raw = Mutex::new(Raw::connect(&addr)?);
    let client = blocking_client(&addr, 1)?;
    let shared = blocking_client(&addr, 32)?;
    let as_built = memcache_client(&addr, 32, false)?;
    let tuned = memcache_client(&addr, 32, true)?;
    let peer = |c: &memcache::Client, t: usize, i: u64| {
        let k = key((t as u64) * 7919 + i);
        c.get::<Vec<u8>>(&k).ok().flatten().map_or(0, |_| 1)
    };
    let sequential: Vec<Cell<'_>> = vec![
        (
            "sequential",
            "proto Connection, blocking TcpStream",
            Box::new(|d| {
                run_threads(1, d, 1, |_, i| {
                    raw.lock().map_or(0, |mut raw| raw.get(&key(i)))
                })
            }),
        ),
        (
            "sequential",
            "mcache blocking",
            Box::new(|d| run_threads(1, d, 1, |_, i| hit(&client, i))),
        ),
    ];
    let threads: Vec<Cell<'_>> = vec![
        (
            "32 threads",
            "mcache blocking (32 connections)",
            Box::new(|d| run_threads(32, d, 1, |t, i| hit(&shared, (t as u64) * 7919 + i))),
        ),
        (
            "32 threads",
            "memcache 0.21 (r2d2 32, as built)",
            Box::new(|d| run_threads(32, d, 1, |t, i| peer(&as_built, t, i))),
        ),
        (
            "32 threads",
            "memcache 0.21 (r2d2 32, tuned)",
            Box::new(|d| run_threads(32, d, 1, |t, i| peer(&tuned, t, i))),
        ),
    ];
    let mut rows = best_of(&sequential, round);
    if only != "sequential" {
        rows.extend(best_of(&threads, round));
    }
    print_table(&rows)
}

/// Runs every cell [`ROUNDS`] times, in turn; the best round of each.
fn best_of(cells: &[Cell<'_>], round: Duration) -> Vec<(&'static str, &'static str, Measurement)> {
    let mut best: Vec<Option<Measurement>> = cells.iter().map(|_| None).collect();
    for _ in 0..ROUNDS {
        for ((_, _, run), best) in cells.iter().zip(&mut best) {
            let m = run(round);
            if best.as_ref().is_none_or(|b| m.rate() > b.rate()) {
                *best = Some(m);
            }
        }
    }
    let rows = cells.iter().zip(best);
    rows.filter_map(|((scenario, name, _), m)| Some((*scenario, *name, m?)))
        .collect()
}

/// Prints the rows as a Markdown table.
fn print_table(rows: &[(&str, &str, Measurement)]) -> Result<(), BoxError> {
    println!(
        "| scenario | client | gets/s | µs per get (wall, per thread) | client CPU µs per get |"
    );
    println!("|---|---|---:|---:|---:|");
    for (scenario, name, m) in rows {
        let threads = if *scenario == "sequential" { 1.0 } else { 32.0 };
        let latency = threads * 1e6 / m.rate().max(1e-9);
        println!(
            "| {scenario} | {name} | {:.0} | {latency:.1} | {:.2} |",
            m.rate(),
            m.cpu_per_op_us()
        );
    }
    Ok(())
}

/// The blocking client with `connections` connections.
fn blocking_client(addr: &str, connections: usize) -> Result<Client, BoxError> {
    let builder = Client::builder().server(addr).connections(connections);
    Ok(builder.build()?)
}

/// One `get` through the blocking client: 1 on a hit.
fn hit(c: &Client, i: u64) -> u64 {
    c.get(key(i).as_str()).ok().flatten().map_or(0, |_| 1)
}

/// proto's `Connection` over a blocking socket, driven by hand: the loop of the crate docs.
struct Raw {
    conn: Connection,
    socket: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    fn connect(addr: &str) -> std::io::Result<Raw> {
        let socket = TcpStream::connect(addr)?;
        socket.set_nodelay(true)?;
        Ok(Raw {
            conn: Connection::default(),
            socket,
            buf: vec![0; 32 * 1024],
        })
    }

    /// One `get` round trip: 1 on a hit, 0 on a miss or any failure.
    fn get(&mut self, key: &str) -> u64 {
        let Ok(Call::Send { request, .. }) = commands::get(key) else {
            return 0;
        };
        self.round_trip(request).map_or(0, |r| match r {
            Response::Values(v) => v.len() as u64,
            _ => 0,
        })
    }

    fn round_trip(&mut self, request: Request) -> Result<Response, BoxError> {
        let id = self.conn.send(request)?;
        if let Some(out) = self.conn.take_transmit(Instant::now()) {
            self.socket.write_all(&out)?;
        }
        loop {
            if let Some((got, reply)) = self.conn.poll_response() {
                if got == id {
                    return Ok(reply?);
                }
                continue;
            }
            let n = self.socket.read(&mut self.buf)?;
            if n == 0 {
                return Err("connection closed".into());
            }
            self.conn.receive(&self.buf[..n], Instant::now());
        }
    }
}

/// rust-memcache over an r2d2 pool of `size`: as its builder makes it (binary protocol and
/// r2d2's `version` probe on every checkout), or tuned (ASCII, no probe).
fn memcache_client(addr: &str, size: u32, tuned: bool) -> Result<memcache::Client, BoxError> {
    let url = format!("memcache://{addr}?timeout=10&tcp_nodelay=true");
    if !tuned {
        let built = memcache::Client::builder().add_server(url.as_str())?;
        return Ok(built.with_max_pool_size(size).build()?);
    }
    let manager =
        memcache::ConnectionManager::new(url::Url::parse(&format!("{url}&protocol=ascii"))?);
    let pool = r2d2::Pool::builder()
        .max_size(size)
        .test_on_check_out(false)
        .build(manager)?;
    Ok(memcache::Client::with_pool(pool)?)
}
