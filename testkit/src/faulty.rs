//! A fault-injection memcached on loopback (feature `suite`): a small in-memory server built on
//! mcache-proto's server side ([`Request::decode`], [`Response::encode`]) that answers either
//! correctly or with a chosen [`Fault`].
//!
//! The server runs on std threads (one per connection) on a free `127.0.0.1` port. What it does
//! with each reply is decided by a *plan*: a function of the connection's index (0 for the first
//! connection accepted) and the request's index on that connection, so faults can be global
//! ([`FaultyServer::set_fault`]), per connection or per request ([`FaultyServer::set_plan`]).
//! The plan can be changed at any time; a connection consults it for every reply.
//!
//! ```
//! use mcache_testkit::faulty::{Fault, FaultyServer};
//! use std::io::{Read, Write};
//!
//! let server = FaultyServer::start()?;
//! let mut s = std::net::TcpStream::connect(server.addr())?;
//! s.write_all(b"set k 0 0 2\r\nhi\r\nget k\r\n")?;
//! let mut reply = vec![0; 64];
//! let mut n = 0;
//! while !reply[..n].ends_with(b"END\r\n") {
//!     n += s.read(&mut reply[n..])?;
//! }
//! assert_eq!(&reply[..n], b"STORED\r\nVALUE k 0 2\r\nhi\r\nEND\r\n");
//!
//! // From now on every connection answers with a value declared 4 GiB long.
//! server.set_fault(Fault::DeclareHuge);
//! # Ok::<(), std::io::Error>(())
//! ```

use bytes::{Bytes, BytesMut};
use mcache_proto::meta::request::{MetaArithmetic, MetaDelete, MetaGet, MetaSet};
use mcache_proto::text::request::{Retrieve, Store, StoreCommand};
use mcache_proto::{
    ErrorKind, Key, Limits, MetaArithmeticMode, MetaResponse, MetaReturnFlags, MetaSetMode,
    MetaStatus, Request, Response, Stat, Value,
};
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// What the server does with one reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer correctly from the in-memory store.
    Correct,
    /// Send random bytes (a line that is never a valid reply) instead of the reply.
    Garbage,
    /// Send the first half of the reply, then nothing more on this connection; with `close`,
    /// close the connection after the half.
    Truncate {
        /// Close the connection after the half frame (else keep it open and silent).
        close: bool,
    },
    /// Answer with a value declared 4 GiB long (`VALUE <key> 0 4294967296` for text requests,
    /// `VA 4000000000` for meta ones), then stream up to 128 MiB of its bytes (while the client
    /// reads), then stay silent.
    DeclareHuge,
    /// Send half the reply, sleep this long, then send the rest.
    StallMidFrame(Duration),
    /// Send the reply's first line, then the rest one byte at a time, this long apart: a
    /// server that always makes progress and never completes a reply.
    Drip(Duration),
    /// Hold each reply until the next one is ready, and send the two swapped (a held reply is
    /// sent alone after 200 ms with nothing to swap it with).
    OutOfOrder,
    /// Send the reply up to the middle of its value (or half of it when it has no value), then
    /// reset the connection (`SO_LINGER` 0: the peer sees RST).
    ResetMidValue,
    /// Read requests and never answer anything again on this connection.
    AcceptNeverAnswer,
    /// Close the connection once it has sent this many bytes in all (counted from its first
    /// reply): the reply that crosses the limit is cut there.
    CloseAfterNBytes(usize),
}

/// Decides the fault for a reply: `(connection index, request index on it) -> Fault`.
pub type Plan = Arc<dyn Fn(usize, u64) -> Fault + Send + Sync>;

#[derive(Debug, Clone)]
struct Item {
    flags: u32,
    data: Bytes,
    cas: u64,
}

#[derive(Default)]
struct Db {
    items: HashMap<Key, Item>,
    next_cas: u64,
}

struct Shared {
    plan: RwLock<Plan>,
    store: Mutex<Db>,
    shutdown: AtomicBool,
    accepted: AtomicUsize,
    requests: AtomicU64,
    open: AtomicUsize,
}

/// A running fault-injection server; stopped when dropped.
pub struct FaultyServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FaultyServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultyServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl FaultyServer {
    /// Starts a server answering [`Fault::Correct`] on a free loopback port.
    pub fn start() -> io::Result<FaultyServer> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            plan: RwLock::new(Arc::new(|_, _| Fault::Correct)),
            store: Mutex::new(Db::default()),
            shutdown: AtomicBool::new(false),
            accepted: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            open: AtomicUsize::new(0),
        });
        let s = shared.clone();
        let accept = thread::Builder::new()
            .name(format!("faulty-accept-{}", addr.port()))
            .spawn(move || accept_loop(listener, s))?;
        Ok(FaultyServer {
            addr,
            shared,
            accept: Some(accept),
        })
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `127.0.0.1:<port>`, as the clients' builders take it.
    pub fn host_port_string(&self) -> String {
        self.addr.to_string()
    }

    /// Applies `fault` to every reply from now on, on every connection.
    pub fn set_fault(&self, fault: Fault) {
        self.set_plan(move |_, _| fault.clone());
    }

    /// Decides each reply's fault with `plan(connection index, request index)`.
    pub fn set_plan(&self, plan: impl Fn(usize, u64) -> Fault + Send + Sync + 'static) {
        *self
            .shared
            .plan
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(plan);
    }

    /// How many connections were accepted so far.
    pub fn connections_accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// How many connections are open now.
    pub fn connections_open(&self) -> usize {
        self.shared.open.load(Ordering::SeqCst)
    }

    /// How many requests were decoded so far.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Stores an item directly (test setup, whatever the fault).
    pub fn insert(&self, key: &str, value: impl Into<Bytes>) {
        let Ok(key) = Key::new(key) else { return };
        let mut st = self.shared.lock_store();
        st.next_cas += 1;
        let cas = st.next_cas;
        st.items.insert(
            key,
            Item {
                flags: 0,
                data: value.into(),
                cas,
            },
        );
    }

    /// The value stored under `key`, if any.
    pub fn stored(&self, key: &str) -> Option<Bytes> {
        let key = Key::new(key).ok()?;
        self.shared
            .lock_store()
            .items
            .get(&key)
            .map(|i| i.data.clone())
    }
}

impl Drop for FaultyServer {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(500));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

impl Shared {
    fn lock_store(&self) -> std::sync::MutexGuard<'_, Db> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn plan(&self) -> Plan {
        self.plan
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.shutdown.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let index = shared.accepted.fetch_add(1, Ordering::SeqCst);
        let s = shared.clone();
        s.open.fetch_add(1, Ordering::SeqCst);
        let spawned = thread::Builder::new()
            .name(format!("faulty-conn-{index}"))
            .spawn(move || {
                let _ = serve(stream, index, &s);
                s.open.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            shared.open.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// What a connection does after a reply.
enum After {
    Continue,
    /// Never answer again on this connection.
    Mute,
    /// Close (FIN).
    Close,
    /// Reset (RST).
    Reset,
}

struct Conn {
    stream: TcpStream,
    requests: u64,
    written: usize,
    held: Option<(Vec<u8>, Instant)>,
    rng: rand::rngs::StdRng,
}

fn serve(stream: TcpStream, index: usize, shared: &Shared) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_millis(20)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    stream.set_nodelay(true)?;
    let mut conn = Conn {
        stream,
        requests: 0,
        written: 0,
        held: None,
        rng: rand::rngs::StdRng::seed_from_u64(index as u64),
    };
    let limits = Limits::server();
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut mute = false;
    loop {
        if shared.shutdown.load(Ordering::SeqCst) {
            return Ok(());
        }
        // A reply held for a swap goes out alone when nothing came to swap it with.
        if let Some((_, since)) = &conn.held {
            if since.elapsed() >= Duration::from_millis(200) {
                if let Some((reply, _)) = conn.held.take() {
                    conn.stream.write_all(&reply)?;
                }
            }
        }
        match conn.stream.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) if mute => {
                let _ = n;
                continue;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        loop {
            let request = match Request::decode(&mut buf, &limits) {
                Ok(Some(r)) => r,
                Ok(None) => break,
                Err(_) => {
                    // As memcached does with a line it cannot parse: say so and hang up.
                    conn.stream
                        .write_all(b"CLIENT_ERROR bad command line format\r\n")?;
                    return Ok(());
                }
            };
            shared.requests.fetch_add(1, Ordering::SeqCst);
            if matches!(request, Request::Quit) {
                return Ok(());
            }
            let fault = (shared.plan())(index, conn.requests);
            conn.requests += 1;
            let reply = {
                let mut store = shared.lock_store();
                execute(&mut store, &request)
            };
            let Some(reply) = reply else { continue };
            let mut out = Vec::new();
            reply.encode(&mut out);
            match conn.deliver(fault, &request, out)? {
                After::Continue => {}
                After::Mute => {
                    mute = true;
                    buf.clear();
                    break;
                }
                After::Close => return Ok(()),
                After::Reset => {
                    set_linger_zero(&conn.stream);
                    return Ok(());
                }
            }
        }
    }
}

impl Conn {
    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.written += bytes.len();
        Ok(())
    }

    fn deliver(&mut self, fault: Fault, request: &Request, reply: Vec<u8>) -> io::Result<After> {
        match fault {
            Fault::Correct => {
                self.write(&reply)?;
                Ok(After::Continue)
            }
            Fault::Garbage => {
                let len = self.rng.random_range(8..256);
                let mut g = vec![0u8; len];
                self.rng.fill(&mut g[..]);
                // A byte no reply starts with, then a line end: never a valid reply.
                g[0] = 0xfe;
                g.extend_from_slice(b"\r\n");
                self.write(&g)?;
                Ok(After::Continue)
            }
            Fault::Truncate { close } => {
                let half = reply.len() / 2;
                self.write(&reply[..half])?;
                Ok(if close { After::Close } else { After::Mute })
            }
            Fault::DeclareHuge => {
                let head = huge_header(request);
                self.write(&head)?;
                // Stream a good part of it while the client keeps reading.
                let chunk = vec![b'x'; 64 * 1024];
                let started = Instant::now();
                for _ in 0..(128 * 1024 * 1024 / chunk.len()) {
                    if self.write(&chunk).is_err() || started.elapsed() > Duration::from_secs(5) {
                        break;
                    }
                }
                Ok(After::Mute)
            }
            Fault::StallMidFrame(d) => {
                let half = reply.len() / 2;
                self.write(&reply[..half])?;
                thread::sleep(d);
                self.write(&reply[half..])?;
                Ok(After::Continue)
            }
            Fault::Drip(every) => {
                let head = memchr_crlf(&reply).map_or(0, |line| line + 2);
                self.write(&reply[..head])?;
                for byte in &reply[head..] {
                    thread::sleep(every);
                    self.write(std::slice::from_ref(byte))?;
                }
                Ok(After::Continue)
            }
            Fault::OutOfOrder => {
                match self.held.take() {
                    Some((first, _)) => {
                        self.write(&reply)?;
                        self.write(&first)?;
                    }
                    None => self.held = Some((reply, Instant::now())),
                }
                Ok(After::Continue)
            }
            Fault::ResetMidValue => {
                let cut = match memchr_crlf(&reply) {
                    Some(line) if line + 2 < reply.len() => line + 2 + (reply.len() - line - 2) / 2,
                    _ => reply.len() / 2,
                };
                self.write(&reply[..cut])?;
                Ok(After::Reset)
            }
            Fault::AcceptNeverAnswer => Ok(After::Mute),
            Fault::CloseAfterNBytes(n) => {
                let room = n.saturating_sub(self.written);
                if room >= reply.len() {
                    self.write(&reply)?;
                    Ok(if self.written >= n {
                        After::Close
                    } else {
                        After::Continue
                    })
                } else {
                    self.write(&reply[..room])?;
                    Ok(After::Close)
                }
            }
        }
    }
}

fn memchr_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

/// The head of a reply declaring a 4 GiB value, in the grammar the request expects.
fn huge_header(request: &Request) -> Vec<u8> {
    let mut h = Vec::new();
    match request {
        Request::Retrieve(r) => {
            h.extend_from_slice(b"VALUE ");
            h.extend_from_slice(r.keys.first().map(Key::wire).unwrap_or(b"k"));
            h.extend_from_slice(b" 0 4294967296");
            if r.command.with_cas() {
                h.extend_from_slice(b" 1");
            }
            h.extend_from_slice(b"\r\n");
        }
        Request::MetaGet(m) => {
            h.extend_from_slice(b"VA 4000000000");
            if let Some(o) = m.flags.opaque {
                h.extend_from_slice(b" O");
                h.extend_from_slice(o.as_bytes());
            }
            h.extend_from_slice(b"\r\n");
        }
        Request::MetaArithmetic(m) => {
            h.extend_from_slice(b"VA 4000000000");
            if let Some(o) = m.flags.opaque {
                h.extend_from_slice(b" O");
                h.extend_from_slice(o.as_bytes());
            }
            h.extend_from_slice(b"\r\n");
        }
        _ => h.extend_from_slice(b"VALUE k 0 4294967296\r\n"),
    }
    h
}

/// SO_LINGER 0, so that closing sends RST.
fn set_linger_zero(stream: &TcpStream) {
    use nix::sys::socket::{setsockopt, sockopt::Linger};
    let l = nix::libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    let _ = setsockopt(stream, Linger, &l);
}

fn client_error(msg: &'static str) -> Response {
    Response::Error {
        kind: ErrorKind::Client,
        message: Bytes::from_static(msg.as_bytes()),
    }
}

fn parse_number(data: &[u8]) -> Option<u64> {
    std::str::from_utf8(data).ok()?.trim_end().parse().ok()
}

impl Db {
    fn put(&mut self, key: Key, flags: u32, data: Bytes) -> u64 {
        self.next_cas += 1;
        let cas = self.next_cas;
        self.items.insert(key, Item { flags, data, cas });
        cas
    }
}

/// Runs `request` against the store: the reply, or `None` when the server sends nothing.
fn execute(st: &mut Db, request: &Request) -> Option<Response> {
    let reply = match request {
        Request::Retrieve(Retrieve { command, keys }) => Response::Values(
            keys.iter()
                .filter_map(|k| {
                    st.items.get(k).map(|i| Value {
                        key: k.clone(),
                        flags: i.flags,
                        cas: command.with_cas().then_some(i.cas),
                        data: i.data.clone(),
                    })
                })
                .collect(),
        ),
        Request::Store(s) => {
            let r = store(st, s);
            if s.noreply {
                return None;
            }
            r
        }
        Request::Delete { key, noreply } => {
            let r = if st.items.remove(key).is_some() {
                Response::Deleted
            } else {
                Response::NotFound
            };
            if *noreply {
                return None;
            }
            r
        }
        Request::Incr {
            key,
            delta,
            noreply,
        }
        | Request::Decr {
            key,
            delta,
            noreply,
        } => {
            let incr = matches!(request, Request::Incr { .. });
            let r = match arith(st, key, *delta, incr) {
                Some(Ok(n)) => Response::Number(n),
                Some(Err(e)) => e,
                None => Response::NotFound,
            };
            if *noreply {
                return None;
            }
            r
        }
        Request::Touch { key, noreply, .. } => {
            let r = if st.items.contains_key(key) {
                Response::Touched
            } else {
                Response::NotFound
            };
            if *noreply {
                return None;
            }
            r
        }
        Request::FlushAll { noreply, .. } => {
            st.items.clear();
            if *noreply {
                return None;
            }
            Response::Ok
        }
        Request::Version => Response::Version(Bytes::from_static(b"1.6.18-faulty")),
        Request::Verbosity { noreply, .. } => {
            if *noreply {
                return None;
            }
            Response::Ok
        }
        Request::Stats { args } => match args.as_deref() {
            Some(b"reset") => Response::Reset,
            _ => Response::Stats(vec![
                Stat {
                    name: Bytes::from_static(b"pid"),
                    value: Bytes::from(std::process::id().to_string()),
                },
                Stat {
                    name: Bytes::from_static(b"curr_items"),
                    value: Bytes::from(st.items.len().to_string()),
                },
            ]),
        },
        Request::Quit => return None,
        Request::MetaGet(m) => return meta_get(st, m),
        Request::MetaSet(m) => return meta_set(st, m),
        Request::MetaDelete(m) => return meta_delete(st, m),
        Request::MetaArithmetic(m) => return meta_arith(st, m),
        Request::MetaNoop => Response::MetaNoop,
        Request::MetaDebug { key } => match st.items.get(key) {
            Some(i) => Response::MetaDebug {
                key: key.wire_bytes().clone(),
                info: Bytes::from(format!(
                    "exp=-1 la=0 cas={} fetch=no cls=1 size={}",
                    i.cas,
                    i.data.len()
                )),
            },
            None => Response::Meta(Box::new(MetaResponse::status(MetaStatus::En))),
        },
        // A command this server does not know: memcached answers `ERROR`.
        _ => Response::Error {
            kind: ErrorKind::Error,
            message: Bytes::new(),
        },
    };
    Some(reply)
}

fn store(st: &mut Db, s: &Store) -> Response {
    let exists = st.items.get(&s.key).cloned();
    match (s.command, exists) {
        (StoreCommand::Set, _) => {
            st.put(s.key.clone(), s.flags, s.value.clone());
            Response::Stored
        }
        (StoreCommand::Add, Some(_)) => Response::NotStored,
        (StoreCommand::Add, None) | (StoreCommand::Replace, Some(_)) => {
            st.put(s.key.clone(), s.flags, s.value.clone());
            Response::Stored
        }
        (StoreCommand::Replace | StoreCommand::Append | StoreCommand::Prepend, None) => {
            Response::NotStored
        }
        (StoreCommand::Append, Some(i)) => {
            let data = [&i.data[..], &s.value[..]].concat();
            st.put(s.key.clone(), i.flags, data.into());
            Response::Stored
        }
        (StoreCommand::Prepend, Some(i)) => {
            let data = [&s.value[..], &i.data[..]].concat();
            st.put(s.key.clone(), i.flags, data.into());
            Response::Stored
        }
        (StoreCommand::Cas(_), None) => Response::NotFound,
        (StoreCommand::Cas(c), Some(i)) if c != i.cas => Response::Exists,
        (StoreCommand::Cas(_), Some(_)) => {
            st.put(s.key.clone(), s.flags, s.value.clone());
            Response::Stored
        }
        _ => client_error("unsupported storage command"),
    }
}

/// incr/decr: `None` on a miss, `Some(Err(reply))` on a non-numeric value.
fn arith(st: &mut Db, key: &Key, delta: u64, incr: bool) -> Option<Result<u64, Response>> {
    let item = st.items.get(key)?.clone();
    let Some(n) = parse_number(&item.data) else {
        return Some(Err(client_error(
            "cannot increment or decrement non-numeric value",
        )));
    };
    let n = if incr {
        n.wrapping_add(delta)
    } else {
        n.saturating_sub(delta)
    };
    st.put(key.clone(), item.flags, Bytes::from(n.to_string()));
    Some(Ok(n))
}

fn meta_get(st: &mut Db, m: &MetaGet) -> Option<Response> {
    let f = &m.flags;
    let Some(i) = st.items.get(&m.key) else {
        if f.quiet {
            return None;
        }
        let mut r = MetaResponse::status(MetaStatus::En);
        r.flags.opaque = f.opaque;
        return Some(Response::Meta(Box::new(r)));
    };
    let flags = MetaReturnFlags {
        cas: f.cas.then_some(i.cas),
        client_flags: f.client_flags.then_some(i.flags),
        hit: f.hit.then_some(false),
        key: f.key.then(|| m.key.clone()),
        last_access: f.last_access.then_some(0),
        opaque: f.opaque,
        size: f.size.then_some(i.data.len() as u64),
        ttl: f.ttl.then_some(-1),
        ..MetaReturnFlags::default()
    };
    Some(Response::Meta(Box::new(MetaResponse {
        status: if f.value {
            MetaStatus::Va
        } else {
            MetaStatus::Hd
        },
        flags,
        value: f.value.then(|| i.data.clone()),
    })))
}

fn meta_reply(
    status: MetaStatus,
    key: Option<Key>,
    opaque: Option<mcache_proto::Opaque>,
) -> Response {
    let mut r = MetaResponse::status(status);
    r.flags.key = key;
    r.flags.opaque = opaque;
    Response::Meta(Box::new(r))
}

fn meta_set(st: &mut Db, m: &MetaSet) -> Option<Response> {
    let f = &m.flags;
    let key = f.key.then(|| m.key.clone());
    let existing = st.items.get(&m.key).cloned();
    if let Some(c) = f.compare_cas {
        match &existing {
            None => return Some(meta_reply(MetaStatus::Nf, key, f.opaque)),
            Some(i) if i.cas != c => return Some(meta_reply(MetaStatus::Ex, key, f.opaque)),
            Some(_) => {}
        }
    }
    let mode = f.mode.unwrap_or(MetaSetMode::Set);
    let flags = f.client_flags.unwrap_or(0);
    let cas = match (mode, existing) {
        (MetaSetMode::Set, _) | (MetaSetMode::Add, None) | (MetaSetMode::Replace, Some(_)) => {
            st.put(m.key.clone(), flags, m.value.clone())
        }
        (MetaSetMode::Append, Some(i)) => {
            let data = [&i.data[..], &m.value[..]].concat();
            st.put(m.key.clone(), i.flags, data.into())
        }
        (MetaSetMode::Prepend, Some(i)) => {
            let data = [&m.value[..], &i.data[..]].concat();
            st.put(m.key.clone(), i.flags, data.into())
        }
        _ => return Some(meta_reply(MetaStatus::Ns, key, f.opaque)),
    };
    if f.quiet {
        return None;
    }
    let mut r = MetaResponse::status(MetaStatus::Hd);
    r.flags.key = key;
    r.flags.opaque = f.opaque;
    r.flags.cas = f.cas.then_some(cas);
    r.flags.size = f.size.then_some(m.value.len() as u64);
    Some(Response::Meta(Box::new(r)))
}

fn meta_delete(st: &mut Db, m: &MetaDelete) -> Option<Response> {
    let f = &m.flags;
    let key = f.key.then(|| m.key.clone());
    let status = match (st.items.get(&m.key), f.compare_cas) {
        (None, _) => MetaStatus::Nf,
        (Some(i), Some(c)) if i.cas != c => MetaStatus::Ex,
        (Some(_), _) => {
            st.items.remove(&m.key);
            if f.quiet {
                return None;
            }
            MetaStatus::Hd
        }
    };
    Some(meta_reply(status, key, f.opaque))
}

fn meta_arith(st: &mut Db, m: &MetaArithmetic) -> Option<Response> {
    let f = &m.flags;
    let key = f.key.then(|| m.key.clone());
    let existing = st.items.get(&m.key).cloned();
    let (n, cas) = match existing {
        None => match f.vivify {
            Some(_) => {
                let n = f.initial.unwrap_or(0);
                (n, st.put(m.key.clone(), 0, Bytes::from(n.to_string())))
            }
            None => return Some(meta_reply(MetaStatus::Nf, key, f.opaque)),
        },
        Some(i) => {
            if let Some(c) = f.compare_cas {
                if c != i.cas {
                    return Some(meta_reply(MetaStatus::Ex, key, f.opaque));
                }
            }
            let Some(n) = parse_number(&i.data) else {
                return Some(client_error(
                    "cannot increment or decrement non-numeric value",
                ));
            };
            let delta = f.delta.unwrap_or(1);
            let n = match f.mode.unwrap_or(MetaArithmeticMode::Increment) {
                MetaArithmeticMode::Increment => n.wrapping_add(delta),
                MetaArithmeticMode::Decrement => n.saturating_sub(delta),
                _ => return Some(client_error("invalid mode for ma M token")),
            };
            (
                n,
                st.put(m.key.clone(), i.flags, Bytes::from(n.to_string())),
            )
        }
    };
    if f.quiet {
        return None;
    }
    let mut r = MetaResponse::status(if f.value {
        MetaStatus::Va
    } else {
        MetaStatus::Hd
    });
    r.flags.key = key;
    r.flags.opaque = f.opaque;
    r.flags.cas = f.cas.then_some(cas);
    r.flags.ttl = f.return_ttl.then_some(-1);
    r.value = f.value.then(|| Bytes::from(n.to_string()));
    Some(Response::Meta(Box::new(r)))
}

/// The resident set size of this process in bytes (from `/proc/self/statm`; `None` elsewhere).
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
