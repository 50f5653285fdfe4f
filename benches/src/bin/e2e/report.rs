//! Merging the runs (best of N per cell) and writing the markdown report.

use crate::{Caslap, ClientInfo, ClientRun, Scenario, CLIENTS};
use mcache_benches::Measurement;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

/// Everything measured, over all runs.
#[derive(Default)]
pub(crate) struct Results {
    cells: BTreeMap<(&'static str, Scenario), Vec<Measurement>>,
    rss_kib: BTreeMap<&'static str, Vec<u64>>,
    failures: Vec<(&'static str, String)>,
    caslap: BTreeMap<Scenario, Vec<Caslap>>,
}

/// The best of the runs of one cell: highest throughput and lowest CPU per request, each on
/// its own.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Best {
    rate: f64,
    cpu_us: f64,
    /// memcached's CPU per request, the lowest of the runs (when measured).
    server_us: Option<f64>,
}

/// The lowest of some figures, `None` if there are none.
fn lowest(figures: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    figures.flatten().reduce(f64::min)
}

impl Results {
    pub(crate) fn add(&mut self, client: &'static str, run: ClientRun) {
        for (s, m) in run.rows {
            self.cells.entry((client, s)).or_default().push(m);
        }
        self.rss_kib.entry(client).or_default().push(run.rss_kib);
    }

    pub(crate) fn fail(&mut self, client: &'static str, error: String) {
        self.failures.push((client, error));
    }

    pub(crate) fn add_caslap(&mut self, s: Scenario, c: Caslap) {
        self.caslap.entry(s).or_default().push(c);
    }

    fn best(&self, client: &str, s: Scenario) -> Option<Best> {
        let ms = self.cells.get(&(client_id(client)?, s))?;
        Some(Best {
            rate: ms.iter().map(Measurement::rate).fold(0.0, f64::max),
            cpu_us: ms
                .iter()
                .map(Measurement::cpu_per_op_us)
                .fold(f64::INFINITY, f64::min),
            server_us: lowest(ms.iter().map(Measurement::server_cpu_per_op_us)),
        })
    }

    fn best_caslap(&self, s: Scenario) -> Option<Best> {
        let cs = self.caslap.get(&s)?;
        Some(Best {
            rate: cs.iter().map(|c| c.hits_per_s).fold(0.0, f64::max),
            cpu_us: cs
                .iter()
                .map(|c| c.cpu_per_req_us)
                .fold(f64::INFINITY, f64::min),
            server_us: lowest(cs.iter().map(|c| c.server_cpu_per_req_us)),
        })
    }

    /// The best peer's throughput in a scenario, and which peer.
    fn best_peer(&self, s: Scenario) -> Option<(&'static str, f64)> {
        CLIENTS
            .iter()
            .filter(|c| c.peer)
            .filter_map(|c| Some((c.label, self.best(c.id, s)?.rate)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }
}

fn client_id(id: &str) -> Option<&'static str> {
    CLIENTS.iter().find(|c| c.id == id).map(|c| c.id)
}

pub(crate) fn fmt_rate(r: f64, unit: &str) -> String {
    if unit == "B/s" {
        format!("{:.0} MB/s", r / 1e6)
    } else if r >= 1e6 {
        format!("{:.2}M", r / 1e6)
    } else if r >= 1e5 {
        format!("{:.0}k", r / 1e3)
    } else {
        format!("{:.1}k", r / 1e3)
    }
}

fn unit_heading(s: Scenario) -> &'static str {
    if s == Scenario::Big64k {
        "MB/s"
    } else {
        s.unit()
    }
}

fn first_line(cmd: &str, arg: &str) -> Option<String> {
    let out = std::process::Command::new(cmd).arg(arg).output().ok()?;
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()?
            .trim()
            .to_string(),
    )
}

fn machine() -> String {
    // Not `available_parallelism`: that counts only the CPUs this (maybe pinned) process may use.
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cores = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown CPU".to_string(), |m| m.trim().to_string());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or("?".to_string(), |k| k.trim().to_string());
    let memcached = first_line("memcached", "-V").unwrap_or_else(|| "memcached ?".into());
    format!("{cores} cores ({model}), Linux {kernel}; {memcached} `-t 1` on loopback")
}

fn ratio(x: f64, y: f64) -> String {
    if y > 0.0 && x.is_finite() && y.is_finite() {
        format!("{:.2}×", x / y)
    } else {
        "—".into()
    }
}

/// The whole report for one placement.
pub(crate) fn markdown(
    r: &Results,
    clients: &[&'static ClientInfo],
    secs: Duration,
    runs: usize,
    pin: bool,
) -> String {
    let mut md = String::new();
    let placement = if pin {
        "pinned: client and memcached both on CPU 0 (`taskset -c 0`)"
    } else {
        "unpinned"
    };
    let shape = crate::workload::shape();
    let keys = match shape {
        crate::workload::Shape::Multi => {
            "keys in order: 1,000 of 100 B, one of 64 KiB, the same 100 keys per multi-get"
        }
        crate::workload::Shape::Current => {
            "10,000 keys of 100 B and 100 of 64 KiB, each request's key picked at random, \
             100 consecutive keys from a random start per multi-get"
        }
    };
    let _ = writeln!(md, "#### Shape `{}`, placement: {placement}\n", shape.id());
    let _ = writeln!(md, "Workload: {keys}.\n");
    let _ = writeln!(
        md,
        "Machine: {}. 100-byte values unless stated; {} s per scenario; {}; each client in a \
         process of its own, one after another, against the same memcached.\n",
        machine(),
        secs.as_secs(),
        if runs > 1 {
            format!(
                "best of {runs} runs per cell (highest throughput, lowest CPU, lowest RSS, \
                 each cell on its own)"
            )
        } else {
            "one run".to_string()
        }
    );

    let header = |md: &mut String, first: &str| {
        let _ = write!(md, "| {first} |");
        for c in clients {
            let _ = write!(md, " {} |", c.label);
        }
        let _ = writeln!(md, " memcaslap |");
        let _ = write!(md, "|---|");
        for _ in clients {
            let _ = write!(md, "---:|");
        }
        let _ = writeln!(md, "---:|");
    };

    let _ = writeln!(md, "Throughput:\n");
    header(&mut md, "scenario");
    for s in Scenario::ALL {
        let _ = write!(md, "| {} ({}) |", s.label(), unit_heading(s));
        for c in clients {
            let cell = r
                .best(c.id, s)
                .map_or("—".to_string(), |b| fmt_rate(b.rate, s.unit()));
            let _ = write!(md, " {cell} |");
        }
        let cell = match (s, r.best_caslap(s)) {
            (Scenario::Get32, Some(b)) => format!("{}¹", fmt_rate(b.rate, "")),
            (Scenario::Multi100, Some(b)) => format!("{}¹", fmt_rate(b.rate, "")),
            _ => "—".into(),
        };
        let _ = writeln!(md, " {cell} |");
    }

    let _ = writeln!(
        md,
        "\nClient CPU per request (µs, user + system, from `getrusage` of the client process; \
         a 100-key multi-get is one request), and peak RSS of each client's process:\n"
    );
    header(&mut md, "scenario");
    for s in Scenario::ALL {
        let _ = write!(md, "| {} |", s.label());
        for c in clients {
            let cell = r
                .best(c.id, s)
                .map_or("—".to_string(), |b| format!("{:.2}", b.cpu_us));
            let _ = write!(md, " {cell} |");
        }
        let cell = match (s, r.best_caslap(s)) {
            (Scenario::Get32 | Scenario::Multi100, Some(b)) => format!("{:.2}", b.cpu_us),
            _ => "—".into(),
        };
        let _ = writeln!(md, " {cell} |");
    }
    let _ = write!(md, "| peak RSS (MiB) |");
    for c in clients {
        let cell = r
            .rss_kib
            .get(c.id)
            .and_then(|v| v.iter().min())
            .map_or("—".to_string(), |k| format!("{:.1}", *k as f64 / 1024.0));
        let _ = write!(md, " {cell} |");
    }
    let _ = writeln!(md, " — |");
    let _ = writeln!(
        md,
        "\nmemcached's CPU per request while each client ran (µs, all its threads, from \
         `/proc/<pid>/task/*/schedstat`): what a request costs the server, which bounds the \
         throughput when memcached's one worker thread is busy all the time:\n"
    );
    header(&mut md, "scenario");
    for s in Scenario::ALL {
        let _ = write!(md, "| {} |", s.label());
        let fmt = |b: Option<Best>| {
            b.and_then(|b| b.server_us)
                .map_or("—".to_string(), |us| format!("{us:.2}"))
        };
        for c in clients {
            let _ = write!(md, " {} |", fmt(r.best(c.id, s)));
        }
        let cell = match s {
            Scenario::Get32 | Scenario::Multi100 => fmt(r.best_caslap(s)),
            _ => "—".into(),
        };
        let _ = writeln!(md, " {cell} |");
    }
    let _ = writeln!(
        md,
        "\n¹ `memcaslap -T 1 -c 32 -F cfg` (`-d 100` for multi-gets), cfg: 16-byte keys (its \
         minimum), 100-byte values, 99% gets, 1% sets; hits per second (its sets and misses \
         not counted).\n"
    );

    let peers: Vec<_> = clients.iter().filter(|c| c.peer).collect();
    for ours in ["mcache-tokio", "mcache-async-std"] {
        if !clients.iter().any(|c| c.id == ours) || peers.is_empty() {
            continue;
        }
        let _ = writeln!(
            md,
            "{ours} against each peer (throughput ratio, higher is better / CPU-per-request \
             ratio, lower is better):\n"
        );
        let _ = write!(md, "| scenario |");
        for p in &peers {
            let _ = write!(md, " vs {} |", p.label);
        }
        let _ = write!(md, "\n|---|");
        for _ in &peers {
            let _ = write!(md, "---:|");
        }
        let _ = writeln!(md);
        for s in Scenario::ALL {
            let _ = write!(md, "| {} |", s.label());
            for p in &peers {
                let cell = match (r.best(ours, s), r.best(p.id, s)) {
                    (Some(a), Some(b)) => {
                        format!("{} / {}", ratio(a.rate, b.rate), ratio(a.cpu_us, b.cpu_us))
                    }
                    _ => "—".into(),
                };
                let _ = write!(md, " {cell} |");
            }
            let _ = writeln!(md);
        }
        let _ = writeln!(md);
    }

    aims(&mut md, r, clients);

    let _ = writeln!(md, "How each client is driven:\n");
    for c in clients {
        let _ = writeln!(md, "- **{}**: {}.", c.label, c.how);
    }
    let _ = writeln!(
        md,
        "- **memcaslap**: memcached's own load generator (libmemcached-tools, C), one thread, \
         32 connections{}.",
        if pin { ", under `taskset -c 0`" } else { "" }
    );
    let runtime = match crate::workload::shape() {
        crate::workload::Shape::Multi => format!(
            "a multi-thread runtime with {} worker thread(s)",
            if pin { 1 } else { 2 }
        ),
        crate::workload::Shape::Current => "one current-thread runtime".to_string(),
    };
    let _ = writeln!(
        md,
        "\nEvery tokio client runs on {runtime}; async-std's clients on async-std's own \
         executor. The scenarios with 32/256 tasks use 32/256 tasks (async clients) or OS \
         threads (memcache); multi-get and 64 KiB use 8."
    );
    if !r.failures.is_empty() {
        let _ = writeln!(md, "\nFailures:\n");
        for (c, e) in &r.failures {
            let _ = writeln!(md, "- {c}: {e}");
        }
    }
    md
}

/// A client's figure for an aim, and whether it is met.
type Verdict = Option<(String, bool)>;

/// One aim: what it says, and how to judge a client of ours.
type Aim<'a> = (String, Box<dyn Fn(&str) -> Verdict + 'a>);

fn aims(md: &mut String, r: &Results, clients: &[&'static ClientInfo]) {
    let ours: Vec<&str> = ["mcache-tokio", "mcache-async-std"]
        .into_iter()
        .filter(|o| clients.iter().any(|c| c.id == *o))
        .collect();
    if ours.is_empty() {
        return;
    }
    let _ = write!(
        md,
        "The aims (issue 12; ratios against the best peer of each row):\n\n| aim |"
    );
    for o in &ours {
        let _ = write!(md, " {o} |");
    }
    let _ = write!(md, "\n|---|");
    for _ in &ours {
        let _ = write!(md, "---|");
    }
    let _ = writeln!(md);

    let peer = |s: Scenario| r.best_peer(s);
    let peer_label = |s: Scenario| {
        peer(s).map_or("no peer".to_string(), |(n, v)| {
            format!("{n}, {}", fmt_rate(v, s.unit()))
        })
    };
    // Throughput at least `times` the best peer's.
    let faster = |s: Scenario, times: f64| {
        move |o: &str| -> Verdict {
            let (a, (_, p)) = (r.best(o, s)?, peer(s)?);
            Some((ratio(a.rate, p), a.rate >= times * p))
        }
    };
    let lowest_peer_cpu = |s: Scenario| {
        CLIENTS
            .iter()
            .filter(|c| c.peer)
            .filter_map(|c| r.best(c.id, s).map(|b| b.cpu_us))
            .min_by(f64::total_cmp)
    };
    let caslap = r.best_caslap(Scenario::Multi100);
    let raw = r.best("raw", Scenario::Sequential);
    let rows: Vec<Aim<'_>> = vec![
        (
            format!("get, 32 tasks: ≥ 2.5× ({})", peer_label(Scenario::Get32)),
            Box::new(faster(Scenario::Get32, 2.5)),
        ),
        (
            "get, 32 tasks: ≤ 1.0 µs client CPU per get".into(),
            Box::new(|o: &str| {
                let a = r.best(o, Scenario::Get32)?;
                Some((format!("{:.2} µs", a.cpu_us), a.cpu_us <= 1.0))
            }),
        ),
        (
            format!("get, 256 tasks: ≥ 3× ({})", peer_label(Scenario::Get256)),
            Box::new(faster(Scenario::Get256, 3.0)),
        ),
        (
            format!("sequential: ≥ 1.0× ({})", peer_label(Scenario::Sequential)),
            Box::new(faster(Scenario::Sequential, 1.0)),
        ),
        (
            format!(
                "sequential: within 10% of the raw `Connection` ({})",
                raw.map_or("not run".into(), |b| fmt_rate(b.rate, "req/s"))
            ),
            Box::new(|o: &str| {
                let (a, b) = (r.best(o, Scenario::Sequential)?, raw?);
                Some((ratio(a.rate, b.rate), a.rate >= 0.9 * b.rate))
            }),
        ),
        (
            format!("multi-get: ≥ 1.5× ({})", peer_label(Scenario::Multi100)),
            Box::new(faster(Scenario::Multi100, 1.5)),
        ),
        (
            format!(
                "multi-get: ≥ memcaslap ({})",
                caslap.map_or("not run".into(), |c| fmt_rate(c.rate, "keys/s"))
            ),
            Box::new(|o: &str| {
                let (a, c) = (r.best(o, Scenario::Multi100)?, caslap?);
                Some((ratio(a.rate, c.rate), a.rate >= c.rate))
            }),
        ),
        (
            format!("get 64 KiB: ≥ 1.0× ({})", peer_label(Scenario::Big64k)),
            Box::new(faster(Scenario::Big64k, 1.0)),
        ),
        (
            format!(
                "get 64 KiB: client CPU ≤ the lowest peer's ({})",
                lowest_peer_cpu(Scenario::Big64k)
                    .map_or("no peer".into(), |c| format!("{c:.2} µs"))
            ),
            Box::new(|o: &str| {
                let (a, p) = (
                    r.best(o, Scenario::Big64k)?,
                    lowest_peer_cpu(Scenario::Big64k)?,
                );
                Some((format!("{:.2} µs", a.cpu_us), a.cpu_us <= p))
            }),
        ),
    ];
    for (label, verdict) in &rows {
        let _ = write!(md, "| {label} |");
        for o in &ours {
            let cell = match verdict(o) {
                Some((figure, true)) => format!("{figure}, met"),
                Some((figure, false)) => format!("{figure}, **not met**"),
                None => "—".into(),
            };
            let _ = write!(md, " {cell} |");
        }
        let _ = writeln!(md);
    }
    let _ = write!(md, "| memoized hit ≤ 1.05× a raw get |");
    for _ in &ours {
        let _ = write!(
            md,
            " the registry bench (`cargo bench -p mcache-registry`) |"
        );
    }
    let _ = writeln!(md, "\n");
}
