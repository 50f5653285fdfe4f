//! Server selection: which server of a pool holds a key, and which servers are out.
//!
//! [`Ring`] owns two things:
//!
//! - **Placement.** Given the configured servers (host string as written, port, weight) and a
//!   [`HashMode`], it maps a key to a server index exactly as the client library the mode names
//!   would: libmemcached's weighted ketama ("ketama compat", libketama, PHP
//!   `OPT_LIBKETAMA_COMPATIBLE`, pylibmc `ketama_weighted`), its unweighted ketama and
//!   spymemcached-compatible continuum, its modula distribution, pymemcache's `HashClient`
//!   (rendezvous hashing) and gomemcache's `ServerList`. Applications written against those
//!   libraries and a Rust service sharing the pool agree on where every key lives. The rules are
//!   checked byte for byte against the vectors of `proto/tests/data/ketama_vectors.txt`.
//! - **Health bookkeeping.** Consecutive failures are counted per server; after
//!   [`HealthPolicy::failure_limit`] of them the server is ejected for
//!   [`HealthPolicy::retry_after`], then retried. While a server is out its keys either fail
//!   ([`Failover::FailFast`]) or are placed on the remaining servers ([`Failover::Rehash`]: the
//!   continuum is rebuilt over the live servers, as libmemcached's `AUTO_EJECT_HOSTS` does).
//!
//! What it must never do: open a socket, resolve a host name (servers are identified by the
//! configured host string and port, never by address), read the clock (every time is an
//! [`Instant`] passed in by the caller), or panic on any input (an unknown server index is
//! ignored or reported as unavailable).

use md5::{Digest, Md5};
use std::fmt;
use std::time::{Duration, Instant};

/// memcached's default port. libmemcached leaves it out of the names it hashes for
/// the continuum (`host-N` rather than `host:11211-N`).
pub const DEFAULT_PORT: u16 = 11211;

/// libmemcached's `MEMCACHED_POINTS_PER_SERVER_KETAMA`: points per server in weighted ketama
/// when all weights are equal.
pub const POINTS_PER_SERVER_KETAMA: u32 = 160;

/// libmemcached's `MEMCACHED_POINTS_PER_SERVER`: points per server in unweighted ketama.
pub const POINTS_PER_SERVER: u32 = 100;

/// One configured server.
///
/// The `host` string is used as written (it is part of what is hashed), so every client sharing
/// a pool must spell it the same way: `"10.0.0.1"` and `"cache1.example.com"` place keys
/// differently even when they name the same machine. Port 0 denotes a unix socket whose path
/// is `host` (libmemcached stores unix sockets with port 0; pymemcache names them by path).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerSpec {
    /// Host name or address, exactly as configured (not resolved). Must not be empty.
    pub host: String,
    /// TCP port; 0 for a unix socket.
    pub port: u16,
    /// Relative weight. 0 is treated as 1 (as libmemcached does). Any weight above 1 turns
    /// libmemcached's unweighted ketama into weighted ketama, as libmemcached does.
    pub weight: u32,
}

impl ServerSpec {
    /// A server with weight 1.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        ServerSpec {
            host: host.into(),
            port,
            weight: 1,
        }
    }

    /// The same server with another weight.
    #[must_use]
    pub fn with_weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }

    /// The weight placement uses: the configured one, 0 read as 1.
    pub fn effective_weight(&self) -> u32 {
        self.weight.max(1)
    }

    /// A server (weight 1) from an address as written in a configuration: `host:port`,
    /// `[ipv6]:port`, a bare host or IPv6 address (port 11211), or a unix socket path
    /// (starting with `/`; port 0). The host is kept as written, brackets aside, since it is
    /// what the placement hashes (libmemcached and pymemcache drop the brackets too).
    ///
    /// A port that is not a number from 1 to 65535, an empty host, whitespace in the host and
    /// an unclosed `[` are errors ([`AddrError`]), never a host that happens to contain them.
    ///
    /// ```
    /// use mcache_proto::{AddrError, ServerSpec};
    /// assert_eq!(ServerSpec::parse("10.0.0.1:11212"), Ok(ServerSpec::new("10.0.0.1", 11212)));
    /// assert_eq!(ServerSpec::parse("cache1"), Ok(ServerSpec::new("cache1", 11211)));
    /// assert_eq!(ServerSpec::parse("[::1]:11213"), Ok(ServerSpec::new("::1", 11213)));
    /// assert_eq!(ServerSpec::parse("/run/mc.sock"), Ok(ServerSpec::new("/run/mc.sock", 0)));
    /// assert!(matches!(ServerSpec::parse("h:abc"), Err(AddrError::BadPort { .. })));
    /// ```
    pub fn parse(addr: &str) -> Result<ServerSpec, AddrError> {
        if addr.starts_with('/') {
            return Ok(ServerSpec::new(addr, 0));
        }
        let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
            let Some((host, tail)) = rest.split_once(']') else {
                return Err(AddrError::Malformed {
                    input: addr.to_string(),
                    reason: "no ']' closes the IPv6 address".into(),
                });
            };
            if tail.is_empty() {
                (host, None)
            } else if let Some(port) = tail.strip_prefix(':') {
                (host, Some(port))
            } else {
                return Err(AddrError::Malformed {
                    input: addr.to_string(),
                    reason: format!("{tail:?} after ']' (expected ':port')"),
                });
            }
        } else {
            match addr.rsplit_once(':') {
                // A bare IPv6 address: its colons are not a port separator.
                Some((host, _)) if host.contains(':') => (addr, None),
                Some((host, port)) => (host, Some(port)),
                None => (addr, None),
            }
        };
        if host.is_empty() {
            return Err(AddrError::EmptyHost {
                input: addr.to_string(),
            });
        }
        if host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(AddrError::Malformed {
                input: addr.to_string(),
                reason: "whitespace or a control character in the host".into(),
            });
        }
        let port = match port {
            None => DEFAULT_PORT,
            Some(p) => match p.parse::<u16>() {
                Ok(port) if port != 0 && p.bytes().all(|b| b.is_ascii_digit()) => port,
                _ => {
                    return Err(AddrError::BadPort {
                        input: addr.to_string(),
                        port: p.to_string(),
                    })
                }
            },
        };
        Ok(ServerSpec::new(host, port))
    }
}

impl std::str::FromStr for ServerSpec {
    type Err = AddrError;

    /// [`ServerSpec::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ServerSpec::parse(s)
    }
}

/// Why a server address could not be read ([`ServerSpec::parse`]).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    /// Nothing before the port (`":11211"`, `""`, `"[]:1"`).
    #[error("server address {input:?}: empty host")]
    EmptyHost {
        /// The address as given.
        input: String,
    },
    /// The port is not a number from 1 to 65535.
    #[error("server address {input:?}: port {port:?} is not a number from 1 to 65535")]
    BadPort {
        /// The address as given.
        input: String,
        /// The text after the last `:`.
        port: String,
    },
    /// Any other shape that is not an address (an unclosed `[`, text after `]`, whitespace
    /// in the host).
    #[error("server address {input:?}: {reason}")]
    Malformed {
        /// The address as given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl fmt::Display for ServerSpec {
    /// `host:port` (`host` alone for a unix socket).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.port == 0 {
            f.write_str(&self.host)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// A key hash function of libmemcached (`MEMCACHED_BEHAVIOR_HASH`).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum KeyHash {
    /// `MEMCACHED_HASH_DEFAULT`: Jenkins one-at-a-time over signed bytes
    /// ([`hash::one_at_a_time`]).
    #[default]
    OneAtATime,
    /// `MEMCACHED_HASH_MD5`: the first 4 bytes of md5, little-endian ([`hash::md5_u32`]).
    Md5,
    /// `MEMCACHED_HASH_CRC`: `(crc32(key) >> 16) & 0x7fff` ([`hash::libmemcached_crc`]).
    Crc,
}

impl KeyHash {
    /// The hash of `bytes` under this function.
    pub fn hash(self, bytes: &[u8]) -> u32 {
        match self {
            KeyHash::OneAtATime => hash::one_at_a_time(bytes),
            KeyHash::Md5 => hash::md5_u32(bytes),
            KeyHash::Crc => hash::libmemcached_crc(bytes),
        }
    }
}

/// How keys are placed on servers: which client library's rules to follow.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HashMode {
    /// libmemcached `MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED` ("ketama compat", libketama, PHP
    /// `Memcached::OPT_LIBKETAMA_COMPATIBLE`, pylibmc `ketama_weighted`). Key hash: md5.
    /// Each server gets `floor(w/W * 160/4 * n) * 4` points (single-precision float, as
    /// libmemcached computes it; 160 for equal weights), 4 per md5 of `host-k` (or
    /// `host:port-k` when the port is not 11211). The default.
    #[default]
    KetamaWeighted,
    /// libmemcached `MEMCACHED_DISTRIBUTION_CONSISTENT_KETAMA_SPY` with weighted md5 points,
    /// compatible with spymemcached: like [`HashMode::KetamaWeighted`] but the hashed names are
    /// `/host:port-k` (port always, leading slash).
    KetamaSpy,
    /// libmemcached `MEMCACHED_BEHAVIOR_KETAMA` alone (pylibmc `"ketama": True`): unweighted,
    /// 100 points per server, each point the given hash of `host-k` / `host:port-k`, keys
    /// hashed with the same function. As in libmemcached, any server weight above 1 switches
    /// the point layout to the weighted one (md5, 4 points per name); the key hash stays.
    Ketama(KeyHash),
    /// libmemcached `MEMCACHED_DISTRIBUTION_MODULA` (its default): `hash(key) % n`. Weights
    /// are ignored. Any change of the server set moves almost every key.
    Modula(KeyHash),
    /// pymemcache `HashClient`'s default: rendezvous hashing, score =
    /// `murmur3_32("host:port-key")` over the string's characters (each code point's low
    /// byte), highest score wins, ties to the greater node name. A key that is valid UTF-8 is
    /// taken as the Python `str` it spells; other bytes stand for themselves. Weights are
    /// ignored (pymemcache has none).
    Rendezvous,
    /// gomemcache `ServerList.PickServer`: `crc32_ieee(key[..256]) % n` over the server list
    /// in order, each server listed `weight` times in a row (gomemcache weights a server by
    /// listing it repeatedly).
    Crc32Modulo,
}

/// What happens to the keys of a server that is out.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Failover {
    /// Its keys fail with [`RingError::ServerDown`] until it is retried; no key ever moves.
    #[default]
    FailFast,
    /// Its keys are placed on the live servers while it is out: the placement is rebuilt over
    /// the live servers only (libmemcached `MEMCACHED_BEHAVIOR_AUTO_EJECT_HOSTS`). In weighted
    /// ketama the rebuilt continuum also recomputes the other servers' point counts, exactly
    /// as libmemcached does, so a few of their keys may move too. A value written while a
    /// server was out may be shadowed by a stale one when it returns: use with short TTLs.
    Rehash,
}

/// When a server is ejected and retried, and what its keys do meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HealthPolicy {
    /// Consecutive failures that eject a server (0 is read as 1). libmemcached's default:
    /// 5 (`MEMCACHED_SERVER_FAILURE_LIMIT`).
    pub failure_limit: u32,
    /// How long an ejected server stays out before it is tried again. libmemcached's default:
    /// 2 s (`MEMCACHED_SERVER_FAILURE_RETRY_TIMEOUT`).
    pub retry_after: Duration,
    /// What the keys of a server that is out do.
    pub failover: Failover,
}

impl Default for HealthPolicy {
    /// 5 failures, retry after 2 s, fail fast.
    fn default() -> Self {
        HealthPolicy {
            failure_limit: 5,
            retry_after: Duration::from_secs(2),
            failover: Failover::FailFast,
        }
    }
}

/// Why a ring could not be built or a key could not be routed.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RingError {
    /// A ring needs at least one server.
    #[error("no servers configured")]
    NoServers,
    /// The server at this position has an empty host.
    #[error("server #{index} has an empty host")]
    EmptyHost {
        /// Position in the configured list.
        index: usize,
    },
    /// The key's server is out ([`Failover::FailFast`]).
    #[error("server #{server} is down until it is retried")]
    ServerDown {
        /// Index of the key's server.
        server: usize,
        /// When it will be tried again.
        retry_at: Instant,
    },
    /// Every server is out ([`Failover::Rehash`]).
    #[error("every server is down")]
    AllServersDown {
        /// When the first of them will be tried again.
        retry_at: Instant,
    },
}

/// One point of a ketama continuum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Point {
    /// Position on the circle (`0..=u32::MAX`).
    pub value: u32,
    /// Index of the server owning the arc that ends at this point.
    pub server: usize,
}

/// Keys of a multi-key request split per server, by [`Ring::route_many`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Routed {
    /// `(server, positions of its keys in the caller's list)`, servers in order of their
    /// first key, positions ascending.
    pub groups: Vec<(usize, Vec<usize>)>,
    /// Keys that cannot be routed now: `(position in the caller's list, why)`.
    pub failed: Vec<(usize, RingError)>,
}

#[derive(Debug, Clone, Default)]
struct Slot {
    failures: u32,
    down_until: Option<Instant>,
    /// When the last failure that counted was recorded: replies to requests sent before it
    /// are news from before the failure.
    last_failure: Option<Instant>,
}

impl Slot {
    fn is_available(&self, now: Instant) -> bool {
        self.down_until.is_none_or(|until| now >= until)
    }
}

/// A placement over a set of servers (all of them, or the live ones).
#[derive(Debug, Clone)]
enum Selector {
    /// One server: every key goes there, nothing is hashed (libmemcached, gomemcache).
    Single(usize),
    Continuum {
        key_hash: KeyHash,
        points: Vec<Point>,
        /// Where keys go if no server got a point (cannot happen with sane weights).
        first: usize,
    },
    Modula {
        key_hash: KeyHash,
        members: Vec<usize>,
    },
    Rendezvous {
        nodes: Vec<Node>,
    },
    Crc32 {
        slots: Vec<usize>,
    },
}

impl Selector {
    /// Builds the placement of `mode` over `members` (indices into `specs`, ascending).
    fn build(mode: HashMode, specs: &[ServerSpec], members: &[usize]) -> Option<Selector> {
        match members {
            [] => return None,
            [only] => return Some(Selector::Single(*only)),
            _ => {}
        }
        let any_heavy = specs.iter().any(|s| s.weight > 1);
        Some(match mode {
            HashMode::KetamaWeighted => Selector::Continuum {
                key_hash: KeyHash::Md5,
                points: weighted_continuum(specs, members, Naming::Libmemcached),
                first: members[0],
            },
            HashMode::KetamaSpy => Selector::Continuum {
                key_hash: KeyHash::Md5,
                points: weighted_continuum(specs, members, Naming::Spy),
                first: members[0],
            },
            HashMode::Ketama(key_hash) if any_heavy => Selector::Continuum {
                key_hash,
                points: weighted_continuum(specs, members, Naming::Libmemcached),
                first: members[0],
            },
            HashMode::Ketama(key_hash) => Selector::Continuum {
                key_hash,
                points: unweighted_continuum(specs, members, key_hash),
                first: members[0],
            },
            HashMode::Modula(key_hash) => Selector::Modula {
                key_hash,
                members: members.to_vec(),
            },
            HashMode::Rendezvous => Selector::Rendezvous {
                nodes: members
                    .iter()
                    .map(|&i| {
                        let name = specs[i].to_string();
                        let hashed = hash::python_str_bytes(name.as_bytes());
                        Node {
                            server: i,
                            name,
                            hashed,
                        }
                    })
                    .collect(),
            },
            HashMode::Crc32Modulo => Selector::Crc32 {
                slots: members
                    .iter()
                    .flat_map(|&i| std::iter::repeat_n(i, specs[i].effective_weight() as usize))
                    .collect(),
            },
        })
    }

    fn select(&self, key: &[u8]) -> usize {
        match self {
            Selector::Single(i) => *i,
            Selector::Continuum {
                key_hash,
                points,
                first,
            } => lookup(points, key_hash.hash(key)).map_or(*first, |p| p.server),
            Selector::Modula { key_hash, members } => {
                members[key_hash.hash(key) as usize % members.len()]
            }
            Selector::Rendezvous { nodes } => rendezvous(nodes, key),
            Selector::Crc32 { slots } => {
                let key = &key[..key.len().min(256)];
                slots[hash::crc32(key) as usize % slots.len()]
            }
        }
    }

    fn point_for(&self, key: &[u8]) -> Option<Point> {
        match self {
            Selector::Continuum {
                key_hash, points, ..
            } => lookup(points, key_hash.hash(key)),
            _ => None,
        }
    }

    fn points(&self) -> &[Point] {
        match self {
            Selector::Continuum { points, .. } => points,
            _ => &[],
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Naming {
    /// `host-k`, or `host:port-k` when the port is not 11211.
    Libmemcached,
    /// `/host:port-k`.
    Spy,
}

fn point_name(spec: &ServerSpec, k: u32, naming: Naming) -> String {
    match naming {
        Naming::Spy => format!("/{}:{}-{}", spec.host, spec.port, k),
        Naming::Libmemcached if spec.port == DEFAULT_PORT => format!("{}-{}", spec.host, k),
        Naming::Libmemcached => format!("{}:{}-{}", spec.host, spec.port, k),
    }
}

/// libmemcached `update_continuum` with `ketama.weighted_` set.
fn weighted_continuum(specs: &[ServerSpec], members: &[usize], naming: Naming) -> Vec<Point> {
    let total: u64 = members
        .iter()
        .map(|&i| u64::from(specs[i].effective_weight()))
        .sum();
    let live = members.len() as f32;
    let mut points = Vec::with_capacity(members.len() * POINTS_PER_SERVER_KETAMA as usize);
    for &i in members {
        let spec = &specs[i];
        // Single precision, in libmemcached's order of operations:
        // floor((float)(pct * 160 / 4 * (float)live + 1e-10f)) * 4.
        let pct = spec.effective_weight() as f32 / total as f32;
        let per_server =
            (pct * POINTS_PER_SERVER_KETAMA as f32 / 4.0 * live + 0.000_000_000_1_f32).floor();
        let hashes = per_server as u32; // saturating float-to-int; per_server >= 0
        for k in 0..hashes {
            let digest = Md5::digest(point_name(spec, k, naming).as_bytes());
            for quarter in digest.chunks_exact(4) {
                let value = u32::from_le_bytes([quarter[0], quarter[1], quarter[2], quarter[3]]);
                points.push(Point { value, server: i });
            }
        }
    }
    points.sort_unstable();
    points
}

/// libmemcached `update_continuum` without `ketama.weighted_`: 100 points, one per name.
fn unweighted_continuum(specs: &[ServerSpec], members: &[usize], key_hash: KeyHash) -> Vec<Point> {
    let mut points = Vec::with_capacity(members.len() * POINTS_PER_SERVER as usize);
    for &i in members {
        for k in 0..POINTS_PER_SERVER {
            let name = point_name(&specs[i], k, Naming::Libmemcached);
            points.push(Point {
                value: key_hash.hash(name.as_bytes()),
                server: i,
            });
        }
    }
    points.sort_unstable();
    points
}

/// The first point at or after `hash`, wrapping past the end to the first point.
fn lookup(points: &[Point], hash: u32) -> Option<Point> {
    let at = points.partition_point(|p| p.value < hash);
    points.get(at).or_else(|| points.first()).copied()
}

/// A pymemcache rendezvous node.
#[derive(Debug, Clone)]
struct Node {
    server: usize,
    /// `host:port` (or the socket path), as the Python `str` compared on ties.
    name: String,
    /// The bytes of `name` that `murmur3_32` reads.
    hashed: Vec<u8>,
}

/// pymemcache `RendezvousHash.get_node`: highest score wins, ties to the greater name.
fn rendezvous(nodes: &[Node], key: &[u8]) -> usize {
    let key = hash::python_str_bytes(key);
    let mut buf = Vec::new();
    let mut winner: Option<(u32, &Node)> = None;
    for node in nodes {
        buf.clear();
        buf.extend_from_slice(&node.hashed);
        buf.push(b'-');
        buf.extend_from_slice(&key);
        let score = hash::murmur3_32(&buf, 0);
        winner = match winner {
            Some((high, _)) if score < high => winner,
            Some((high, best)) if score == high && best.name >= node.name => winner,
            _ => Some((score, node)),
        };
    }
    winner.map_or(0, |(_, node)| node.server)
}

/// The servers' placement and health. See the [module documentation](self).
///
/// Routing with failover ([`Ring::route`], [`Ring::route_many`]) takes `&mut self`: under
/// [`Failover::Rehash`] it rebuilds the placement when a server leaves or comes back (as
/// libmemcached does lazily on lookup). Adapters share a ring behind a lock; a lookup is a
/// hash and a binary search.
#[derive(Debug, Clone)]
pub struct Ring {
    mode: HashMode,
    policy: HealthPolicy,
    specs: Vec<ServerSpec>,
    /// Health of each server, by index.
    slots: Vec<Slot>,
    /// Placement over every configured server.
    full: Selector,
    /// Placement over the live servers, while some are out ([`Failover::Rehash`] only).
    live: Option<Live>,
    /// A server left or came back since `live` was built.
    dirty: bool,
}

#[derive(Debug, Clone)]
struct Live {
    members: Vec<usize>,
    /// `None`: every server is out.
    selector: Option<Selector>,
    /// The earliest retry time among the servers left out: `live` is stale from then on.
    next_change: Option<Instant>,
}

impl Ring {
    /// A ring over `servers` (indices follow the iteration order) placing keys as `mode` says,
    /// with the default [`HealthPolicy`].
    ///
    /// Fails when there is no server or a host is empty.
    pub fn new(
        servers: impl IntoIterator<Item = ServerSpec>,
        mode: HashMode,
    ) -> Result<Ring, RingError> {
        let specs: Vec<ServerSpec> = servers.into_iter().collect();
        if let Some(index) = specs.iter().position(|s| s.host.is_empty()) {
            return Err(RingError::EmptyHost { index });
        }
        let all: Vec<usize> = (0..specs.len()).collect();
        let full = Selector::build(mode, &specs, &all).ok_or(RingError::NoServers)?;
        Ok(Ring {
            mode,
            policy: HealthPolicy::default(),
            slots: vec![Slot::default(); specs.len()],
            specs,
            full,
            live: None,
            dirty: false,
        })
    }

    /// The same ring with another health policy.
    #[must_use]
    pub fn with_policy(mut self, policy: HealthPolicy) -> Ring {
        self.set_policy(policy);
        self
    }

    /// Replaces the health policy. Failure counts and ejections already recorded stay.
    pub fn set_policy(&mut self, policy: HealthPolicy) {
        self.policy = policy;
        self.live = None;
        self.dirty = true;
    }

    /// The health policy.
    pub fn policy(&self) -> &HealthPolicy {
        &self.policy
    }

    /// The placement rules.
    pub fn mode(&self) -> HashMode {
        self.mode
    }

    /// Number of configured servers (at least 1).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Always `false`: a ring has at least one server.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The server at index `i`, as configured.
    pub fn server(&self, i: usize) -> Option<&ServerSpec> {
        self.specs.get(i)
    }

    /// Every configured server, in index order.
    pub fn servers(&self) -> &[ServerSpec] {
        &self.specs
    }

    /// The index of the server that holds `key` when every server is up: the placement the
    /// mode's client library computes. Health is not consulted.
    ///
    /// `key` is the key as it appears on the wire in the text protocol (what other clients
    /// hash), without any namespace prefix the caller does not also send.
    pub fn server_for(&self, key: &[u8]) -> usize {
        self.full.select(key)
    }

    /// The continuum point that selects `key`'s server when every server is up (ketama modes
    /// only).
    pub fn point_for(&self, key: &[u8]) -> Option<Point> {
        match self.full {
            Selector::Single(_) => None,
            ref selector => selector.point_for(key),
        }
    }

    /// The ketama continuum over every server, sorted by (value, server); empty in the other
    /// modes and with a single server (which needs none).
    pub fn continuum(&self) -> &[Point] {
        self.full.points()
    }

    /// The server that should serve `key` at `now`, after failover.
    ///
    /// With [`Failover::FailFast`] this is [`Ring::server_for`], or
    /// [`RingError::ServerDown`] while that server is out. With [`Failover::Rehash`] the key is
    /// placed over the servers live at `now` ([`RingError::AllServersDown`] when none is).
    pub fn route(&mut self, key: &[u8], now: Instant) -> Result<usize, RingError> {
        match self.policy.failover {
            Failover::FailFast => {
                let server = self.full.select(key);
                match self.slots[server].down_until {
                    Some(retry_at) if now < retry_at => {
                        Err(RingError::ServerDown { server, retry_at })
                    }
                    _ => Ok(server),
                }
            }
            Failover::Rehash => {
                self.refresh(now);
                match &self.live {
                    None => Ok(self.full.select(key)),
                    Some(Live {
                        selector: Some(selector),
                        ..
                    }) => Ok(selector.select(key)),
                    Some(Live {
                        selector: None,
                        next_change,
                        ..
                    }) => Err(RingError::AllServersDown {
                        retry_at: next_change.unwrap_or(now),
                    }),
                }
            }
        }
    }

    /// Splits the keys of a multi-key request per server when every server is up:
    /// `(server, positions of its keys in keys)`, servers in order of their first key.
    /// Send each group to its server and put the answers back by position.
    pub fn group_by_server<K: AsRef<[u8]>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Vec<(usize, Vec<usize>)> {
        let mut grouper = Grouper::new(self.slots.len());
        for (pos, key) in keys.into_iter().enumerate() {
            grouper.push(self.full.select(key.as_ref()), pos);
        }
        grouper.groups
    }

    /// [`Ring::group_by_server`] with failover at `now`: each key goes where
    /// [`Ring::route`] sends it, keys that cannot be routed are listed apart.
    pub fn route_many<K: AsRef<[u8]>>(
        &mut self,
        keys: impl IntoIterator<Item = K>,
        now: Instant,
    ) -> Routed {
        let mut grouper = Grouper::new(self.slots.len());
        let mut failed = Vec::new();
        for (pos, key) in keys.into_iter().enumerate() {
            match self.route(key.as_ref(), now) {
                Ok(server) => grouper.push(server, pos),
                Err(e) => failed.push((pos, e)),
            }
        }
        Routed {
            groups: grouper.groups,
            failed,
        }
    }

    /// Whether `server` may be used at `now`: it is not ejected, or its retry time has come.
    /// `false` for an unknown index.
    pub fn is_available(&self, server: usize, now: Instant) -> bool {
        self.slots.get(server).is_some_and(|s| s.is_available(now))
    }

    /// Records a failed exchange with `server` (connect error, timeout, connection lost).
    ///
    /// After [`HealthPolicy::failure_limit`] consecutive failures the server is ejected until
    /// `now + retry_after`. A server on trial after its retry time is ejected again by its
    /// first failure (libmemcached retries a dead server once before giving up on it again).
    /// Failures reported while the server is already out change nothing. Returns `true` when
    /// this call ejected the server. An unknown index is ignored.
    pub fn record_failure(&mut self, server: usize, now: Instant) -> bool {
        let limit = self.policy.failure_limit.max(1);
        let retry_after = self.policy.retry_after;
        let Some(slot) = self.slots.get_mut(server) else {
            return false;
        };
        if !slot.is_available(now) {
            return false;
        }
        slot.failures = slot.failures.saturating_add(1);
        slot.last_failure = Some(now);
        if slot.failures < limit {
            return false;
        }
        slot.down_until = Some(saturating_add(now, retry_after));
        self.dirty = true;
        true
    }

    /// Records a successful exchange with `server`: its failure count is cleared and, if it
    /// was out, it is re-admitted at once. An unknown index is ignored. Where the request's
    /// send time is known, [`Ring::record_reply`] also ignores replies from before a failure.
    pub fn record_success(&mut self, server: usize) {
        if let Some(slot) = self.slots.get_mut(server) {
            slot.failures = 0;
            if slot.down_until.take().is_some() {
                self.dirty = true;
            }
        }
    }

    /// Records a reply from `server` to a request sent at `sent`: [`Ring::record_success`],
    /// unless the request was sent before the server's last recorded failure. Such a reply
    /// was under way when the server failed (or was read before the failure and is counted
    /// late, as concurrent callers do): it says nothing about the server now, and must neither
    /// re-admit an ejected server nor clear failures that came after it. Returns whether the
    /// reply counted. An unknown index is ignored.
    pub fn record_reply(&mut self, server: usize, sent: Instant) -> bool {
        let Some(slot) = self.slots.get(server) else {
            return false;
        };
        if slot.last_failure.is_some_and(|failed| sent < failed) {
            return false;
        }
        self.record_success(server);
        true
    }

    /// Consecutive failures recorded for `server` (0 for an unknown index).
    pub fn failures(&self, server: usize) -> u32 {
        self.slots.get(server).map_or(0, |s| s.failures)
    }

    /// When `server` will be (or was) retried after its last ejection, until a success clears
    /// it. `None` when it was never ejected since its last success, or the index is unknown.
    pub fn retry_at(&self, server: usize) -> Option<Instant> {
        self.slots.get(server).and_then(|s| s.down_until)
    }

    /// The servers that keys are placed on at `now` under [`Failover::Rehash`]: every server
    /// that is available.
    pub fn live_servers(&self, now: Instant) -> impl Iterator<Item = usize> + '_ {
        (0..self.slots.len()).filter(move |&i| self.slots[i].is_available(now))
    }

    /// Rebuilds the live placement if a server left or came back since it was built.
    fn refresh(&mut self, now: Instant) {
        let stale = self.dirty
            || self
                .live
                .as_ref()
                .is_some_and(|l| l.next_change.is_some_and(|t| now >= t));
        if !stale {
            return;
        }
        self.dirty = false;
        let members: Vec<usize> = self.live_servers(now).collect();
        let next_change = self
            .slots
            .iter()
            .filter_map(|s| s.down_until.filter(|&t| now < t))
            .min();
        if members.len() == self.slots.len() {
            self.live = None;
            return;
        }
        if let Some(live) = &mut self.live {
            if live.members == members {
                live.next_change = next_change;
                return;
            }
        }
        let selector = Selector::build(self.mode, &self.specs, &members);
        self.live = Some(Live {
            members,
            selector,
            next_change,
        });
    }
}

/// `now + d`, or the latest representable instant short of it.
fn saturating_add(now: Instant, mut d: Duration) -> Instant {
    loop {
        if let Some(t) = now.checked_add(d) {
            return t;
        }
        d /= 2;
    }
}

struct Grouper {
    /// Server index -> position in `groups`.
    slot_of: Vec<Option<usize>>,
    groups: Vec<(usize, Vec<usize>)>,
}

impl Grouper {
    fn new(servers: usize) -> Self {
        Grouper {
            slot_of: vec![None; servers],
            groups: Vec::new(),
        }
    }

    fn push(&mut self, server: usize, pos: usize) {
        let at = *self.slot_of[server].get_or_insert_with(|| {
            self.groups.push((server, Vec::new()));
            self.groups.len() - 1
        });
        self.groups[at].1.push(pos);
    }
}

/// The hash functions the placement rules use, exposed for tests and tools.
pub mod hash {
    use md5::{Digest, Md5};

    /// libhashkit `hashkit_md5`: the first 4 bytes of md5(bytes) as a little-endian `u32`
    /// (`d[3]<<24 | d[2]<<16 | d[1]<<8 | d[0]`). Also libmemcached's ketama key hash.
    pub fn md5_u32(bytes: &[u8]) -> u32 {
        let d = Md5::digest(bytes);
        u32::from_le_bytes([d[0], d[1], d[2], d[3]])
    }

    /// libhashkit `hashkit_one_at_a_time`: Jenkins one-at-a-time, each byte read as a C
    /// `char` (signed on x86: bytes >= 0x80 are sign-extended).
    pub fn one_at_a_time(bytes: &[u8]) -> u32 {
        let mut value: u32 = 0;
        for &b in bytes {
            value = value.wrapping_add(b as i8 as i32 as u32);
            value = value.wrapping_add(value << 10);
            value ^= value >> 6;
        }
        value = value.wrapping_add(value << 3);
        value ^= value >> 11;
        value.wrapping_add(value << 15)
    }

    const CRC32_TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };

    /// The IEEE CRC-32 (zlib's `crc32`, Go's `crc32.ChecksumIEEE`).
    pub fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = u32::MAX;
        for &b in bytes {
            crc = (crc >> 8) ^ CRC32_TABLE[((crc ^ u32::from(b)) & 0xff) as usize];
        }
        !crc
    }

    /// libhashkit `hashkit_crc32` (`MEMCACHED_HASH_CRC`): `(crc32(bytes) >> 16) & 0x7fff`.
    pub fn libmemcached_crc(bytes: &[u8]) -> u32 {
        (crc32(bytes) >> 16) & 0x7fff
    }

    /// MurmurHash3 x86 32-bit (pymemcache's `murmur3_32`, over bytes).
    pub fn murmur3_32(bytes: &[u8], seed: u32) -> u32 {
        const C1: u32 = 0xcc9e_2d51;
        const C2: u32 = 0x1b87_3593;
        let mut h = seed;
        let mut blocks = bytes.chunks_exact(4);
        for block in &mut blocks {
            let mut k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
            k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
            h ^= k;
            h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
        }
        let tail = blocks.remainder();
        if !tail.is_empty() {
            let mut k = 0u32;
            for (i, &b) in tail.iter().enumerate() {
                k |= u32::from(b) << (8 * i);
            }
            h ^= k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        }
        h ^= bytes.len() as u32;
        h ^= h >> 16;
        h = h.wrapping_mul(0x85eb_ca6b);
        h ^= h >> 13;
        h = h.wrapping_mul(0xc2b2_ae35);
        h ^ (h >> 16)
    }

    /// The bytes pymemcache's `murmur3_32` reads from the Python `str` these bytes spell:
    /// valid UTF-8 is decoded and each character contributes its code point's low byte;
    /// anything else is taken byte for byte.
    pub(super) fn python_str_bytes(bytes: &[u8]) -> Vec<u8> {
        match std::str::from_utf8(bytes) {
            Ok(s) if !s.is_ascii() => s.chars().map(|c| (u32::from(c) & 0xff) as u8).collect(),
            _ => bytes.to_vec(),
        }
    }
}
