//! Quickstart: mcache-proto's `Connection` driving a real memcached over a blocking `TcpStream`,
//! printing every byte that goes over the wire. `cargo run -p mcache-proto --example quickstart`
//! starts its own memcached on a free loopback port (mcache-testkit): nothing else to set up.
//!
//! The idea to take away is *sans IO*: `Connection` never touches a socket or a clock.
//! - `send(request)` encodes a request into the connection's output buffer and returns an id;
//! - `transmit()` hands out the bytes to write; `advance_transmit(n)` says `n` were written;
//! - `receive(bytes)` takes whatever was read, in pieces of any size;
//! - `poll_response()` returns each decoded reply paired with the id of its request.
//!
//! The socket's owner (here blocking code; in the adapters a tokio task) only moves bytes.

use mcache_proto::meta::request::MetaGet;
use mcache_proto::text::request::{Retrieve, RetrieveCommand, Store, StoreCommand};
use mcache_proto::{Connection, Key, MetaGetFlags, Request, Response};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// The socket and the protocol state: the only two things a driver needs.
struct Demo {
    sock: TcpStream,
    conn: Connection,
}

impl Demo {
    /// Sends `requests` in one write, then reads until each has its reply, showing the bytes.
    fn exchange(&mut self, title: &str, requests: Vec<Request>) -> Res<Vec<Response>> {
        println!("\n== {title}");
        let mut ids = Vec::new();
        for request in requests {
            ids.push(self.conn.send(request)?); // a bad request fails here, nothing queued
        }
        // Out: the connection hands us bytes (to a quiet batch it adds its own `mn`).
        let out = self.conn.transmit().to_vec();
        self.sock.write_all(&out)?;
        self.conn.advance_transmit(out.len(), Instant::now());
        println!("-> {}", out.escape_ascii());
        // In: hand over whatever arrives, until every request has been answered.
        let mut replies = Vec::new();
        let mut buf = [0u8; 4096];
        while replies.len() < ids.len() {
            let n = self.sock.read(&mut buf)?;
            if n == 0 {
                self.conn.receive_eof(); // pending requests fail instead of waiting forever
            } else {
                println!("<- {}", buf[..n].escape_ascii());
                self.conn.receive(&buf[..n], Instant::now());
            }
            while let Some((id, reply)) = self.conn.poll_response() {
                assert_eq!(id, ids[replies.len()], "replies come back in request order");
                let reply = reply?;
                println!("   request {}: {}", id.get(), show(&reply));
                replies.push(reply);
            }
        }
        Ok(replies)
    }
}

fn show(reply: &Response) -> String {
    let Response::Meta(m) = reply else {
        return format!("{reply:?}");
    };
    let f = &m.flags;
    let asked = format!("cas {:?} flags {:?} ttl {:?}", f.cas, f.client_flags, f.ttl);
    format!("{:?} {:?} key {:?} {asked}", m.status, m.value, f.key)
}

fn store(command: StoreCommand, key: &str, flags: u32, value: &'static str) -> Res<Request> {
    let (key, value, exptime, noreply) = (Key::new(key)?, value.into(), 0, false);
    Ok(Request::Store(Store {
        command,
        key,
        flags,
        exptime,
        value,
        noreply,
    }))
}

fn retrieve(command: RetrieveCommand, keys: &[&str]) -> Res<Request> {
    let keys = keys.iter().map(Key::new).collect::<Result<_, _>>()?;
    Ok(Request::Retrieve(Retrieve { command, keys }))
}

fn mg(key: &str, flags: MetaGetFlags) -> Res<Request> {
    let mut mg = MetaGet::new(Key::new(key)?);
    mg.flags = flags;
    Ok(mg.into())
}

fn main() -> Res<()> {
    // A private memcached for this run; if it cannot start, testkit's error says how to fix it.
    let server = mcache_testkit::Memcached::start().unwrap_or_else(|e| {
        eprintln!("cannot start memcached: {e}");
        std::process::exit(1)
    });
    println!("memcached listening on {}", server.addr());
    let sock = TcpStream::connect(server.addr())?;
    sock.set_read_timeout(Some(Duration::from_secs(5)))?; // fail rather than hang
    let conn = Connection::default();
    let mut d = Demo { sock, conn };
    use RetrieveCommand::{Get, Gets};
    use StoreCommand::{Cas, Set};

    d.exchange("set", vec![store(Set, "greeting", 42, "hello")?])?;
    d.exchange("get", vec![retrieve(Get, &["greeting"])?])?;

    // gets returns a cas unique; cas stores only if the item has not changed since.
    let got = d.exchange("gets", vec![retrieve(Gets, &["greeting"])?])?;
    let cas = match got.first() {
        Some(Response::Values(v)) => v.first().and_then(|v| v.cas).ok_or("no cas")?,
        _ => return Err("no values".into()),
    };
    let swap = |v| store(Cas(cas), "greeting", 42, v);
    let (first, stale) = (swap("howdy")?, swap("hi")?);
    d.exchange("cas twice: the second is stale", vec![first, stale])?;

    // Pipelining: many requests in one write, the replies in the same order.
    let (a, b) = (store(Set, "a", 0, "1")?, store(Set, "b", 0, "2")?);
    let multi = retrieve(Get, &["a", "missing", "b", "greeting"])?;
    d.exchange("pipelined sets and a multi-get", vec![a, b, multi])?;

    // Meta commands: flags say what to send back; the connection adds and checks an `O<id>`.
    let flags = MetaGetFlags {
        value: true,
        client_flags: true,
        cas: true,
        ttl: true,
        key: true,
        ..Default::default()
    };
    d.exchange("meta get with flags", vec![mg("greeting", flags)?])?;

    // Quiet mode (`q`): the server stays silent on a miss. The connection ends the batch with
    // an `mn` of its own, swallows the `MN`, and reports each silent miss as `EN`.
    let mut quiet = MetaGetFlags::default();
    (quiet.value, quiet.quiet) = (true, true);
    let keys = ["a", "nope", "b", "nada"];
    let batch = keys.iter().map(|k| mg(k, quiet)).collect::<Res<_>>()?;
    d.exchange("quiet batch: 2 hits, 2 silent misses", batch)?;

    let idle = d.conn.is_idle();
    println!("\ndone: every reply matched to its request; nothing left pending: {idle}");
    Ok(())
}
