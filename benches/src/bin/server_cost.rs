//! What memcached itself spends on each request form: its CPU per request (from its `stats`
//! rusage) and, when `strace` is installed, its `sendmsg` calls per batch. The README's
//! reasons for sending single-key gets as `mg` and multi-key gets as one text `get` come from
//! here.
//!
//! `cargo run --release -p mcache-benches --bin server_cost [BATCHES]` (default 3000). It
//! starts its own memcached (`-t 1`) on a free loopback port; one blocking connection writes
//! a batch and reads its whole reply before the next.

use mcache_testkit::Memcached;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

type BoxError = Box<dyn std::error::Error>;

/// One request form: a batch's bytes and how its reply ends.
struct Form {
    name: &'static str,
    batch: Vec<u8>,
    /// The reply is complete once it holds this many `terminator`s.
    terminators: usize,
    terminator: &'static [u8],
    /// Requests (gets or keys) per batch.
    per_batch: usize,
}

fn forms() -> Vec<Form> {
    let gets: Vec<u8> = (0..32)
        .flat_map(|i| format!("get k{i}\r\n").into_bytes())
        .collect();
    let mgs: Vec<u8> = (0..32)
        .flat_map(|i| format!("mg k{i} f v O{i}\r\n").into_bytes())
        .chain(b"mn\r\n".iter().copied())
        .collect();
    let keys: Vec<String> = (0..100).map(|i| format!("k{i}")).collect();
    let multi = format!("get {}\r\n", keys.join(" ")).into_bytes();
    let multi_mg: Vec<u8> = keys
        .iter()
        .enumerate()
        .flat_map(|(i, k)| format!("mg {k} f v O{i}\r\n").into_bytes())
        .chain(b"mn\r\n".iter().copied())
        .collect();
    vec![
        Form {
            name: "32 pipelined `get <key>`",
            batch: gets,
            terminators: 32,
            terminator: b"END\r\n",
            per_batch: 32,
        },
        Form {
            name: "32 pipelined `mg <key> f v`",
            batch: mgs,
            terminators: 1,
            terminator: b"MN\r\n",
            per_batch: 32,
        },
        Form {
            name: "one `get` of 100 keys",
            batch: multi,
            terminators: 1,
            terminator: b"END\r\n",
            per_batch: 100,
        },
        Form {
            name: "100 pipelined `mg <key> f v`",
            batch: multi_mg,
            terminators: 1,
            terminator: b"MN\r\n",
            per_batch: 100,
        },
    ]
}

/// Sends `form`'s batch `n` times, each time reading its whole reply.
fn run(sock: &mut TcpStream, form: &Form, n: usize) -> Result<(), BoxError> {
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..n {
        sock.write_all(&form.batch)?;
        let mut seen = 0;
        let mut tail: Vec<u8> = Vec::new();
        while seen < form.terminators {
            let got = sock.read(&mut buf)?;
            if got == 0 {
                return Err("memcached closed the connection".into());
            }
            tail.extend_from_slice(&buf[..got]);
            seen += tail
                .windows(form.terminator.len())
                .filter(|w| *w == form.terminator)
                .count();
            let keep = tail.len().saturating_sub(form.terminator.len() - 1);
            tail.drain(..keep);
        }
    }
    Ok(())
}

/// memcached's user + system CPU so far, in µs (`stats`: `rusage_user`, `rusage_system`).
fn server_cpu_us(sock: &mut TcpStream) -> Result<f64, BoxError> {
    sock.write_all(b"stats\r\n")?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 8192];
    while !reply.ends_with(b"END\r\n") {
        let n = sock.read(&mut buf)?;
        if n == 0 {
            return Err("memcached closed the connection".into());
        }
        reply.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&reply);
    let mut total = 0.0;
    for line in text.lines() {
        let mut f = line.split(' ');
        if let (Some("STAT"), Some("rusage_user" | "rusage_system"), Some(v)) =
            (f.next(), f.next(), f.next())
        {
            total += v.parse::<f64>()? * 1e6;
        }
    }
    Ok(total)
}

/// memcached's `sendmsg` calls while `form` runs `n` times, from `strace -c`; `None` without
/// strace.
fn sendmsg_calls(mc: &Memcached, sock: &mut TcpStream, form: &Form, n: usize) -> Option<u64> {
    let mut strace = Command::new("strace")
        .args([
            "-f",
            "-c",
            "-e",
            "trace=sendmsg",
            "-p",
            &mc.pid().to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    // strace attaches asynchronously: give it time before the traffic starts.
    std::thread::sleep(Duration::from_millis(500));
    let ran = run(sock, form, n);
    std::thread::sleep(Duration::from_millis(200));
    let _ = Command::new("kill")
        .args(["-INT", &strace.id().to_string()])
        .status();
    let mut err = String::new();
    strace.stderr.take()?.read_to_string(&mut err).ok()?;
    strace.wait().ok()?;
    ran.ok()?;
    // The summary's row: `% time  seconds  usecs/call  calls  [errors]  syscall`.
    err.lines()
        .find(|l| l.trim_end().ends_with("sendmsg"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|c| c.parse().ok())
}

fn main() -> Result<(), BoxError> {
    let batches: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(3000);
    let mc = Memcached::builder().threads(1).start()?;
    let mut sock = TcpStream::connect(mc.addr())?;
    sock.set_nodelay(true)?;
    sock.set_read_timeout(Some(Duration::from_secs(10)))?;
    for i in 0..100 {
        sock.write_all(format!("set k{i} 0 0 100\r\n{}\r\n", "x".repeat(100)).as_bytes())?;
        let mut ok = [0u8; 8];
        sock.read_exact(&mut ok)?;
    }
    println!(
        "memcached {} (-t 1), {batches} batches per form, one blocking connection",
        mc.host_port_string()
    );
    for form in forms() {
        run(&mut sock, &form, 100)?;
        let before = server_cpu_us(&mut sock)?;
        run(&mut sock, &form, batches)?;
        let spent = server_cpu_us(&mut sock)? - before;
        let per = spent / (batches * form.per_batch) as f64;
        let writes = match sendmsg_calls(&mc, &mut sock, &form, 100) {
            Some(calls) => format!("{:.1}", calls as f64 / 100.0),
            None => "? (no strace)".into(),
        };
        println!(
            "{:32} memcached CPU {per:6.2} µs per get or key, {writes} sendmsg per batch",
            form.name
        );
    }
    Ok(())
}
