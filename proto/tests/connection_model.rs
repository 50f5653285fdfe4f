//! The `Connection` state machine against an in-memory model of memcached.
//!
//! Random operation sequences (text, meta, quiet meta, `noreply` text, abandons, partial
//! writes, reads split anywhere) run against a model server that decodes what the connection
//! transmits and answers as memcached would, quiet-mode suppression included. Every request
//! must get exactly its own reply, in order, once; abandoned ones none; the connection's own
//! `mn`/`version` never surfaces. Deterministic tests cover poisoning, timeouts and EOF.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod strategies;

use bytes::{Bytes, BytesMut};
use mcache_proto::meta::request::{MetaArithmetic, MetaDelete, MetaGet, MetaSet};
use mcache_proto::text::request::{Retrieve, RetrieveCommand, Store, StoreCommand};
use mcache_proto::{
    Connection, ConnectionConfig, Error, ErrorKind, Key, Limits, MetaArithmeticFlags,
    MetaArithmeticMode, MetaDeleteFlags, MetaGetFlags, MetaResponse, MetaReturnFlags, MetaSetFlags,
    MetaSetMode, MetaStatus, Opaque, PoisonReason, Request, RequestId, Response, Stat, SyncCommand,
    Value,
};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};
use strategies::{chunks, config, garbage, response};

// ---------------------------------------------------------------------------------------------
// The model server

#[derive(Debug, Clone)]
struct Item {
    value: Vec<u8>,
    flags: u32,
    cas: u64,
}

/// memcached, as far as these tests can tell: items without expiry, quiet modes, `noreply`.
#[derive(Debug, Default)]
struct Model {
    items: HashMap<Vec<u8>, Item>,
    next_cas: u64,
    closed: bool,
}

/// What the server does with one request.
struct Outcome {
    /// The full reply (what memcached would send without `q`/`noreply`).
    reply: Response,
    /// Whether quiet mode or `noreply` hides it.
    hidden: bool,
}

impl Model {
    fn cas(&mut self) -> u64 {
        self.next_cas += 1;
        self.next_cas
    }

    fn put(&mut self, key: &Key, value: Vec<u8>, flags: u32) -> u64 {
        let cas = self.cas();
        self.items.insert(key.decoded(), Item { value, flags, cas });
        cas
    }

    fn handle(&mut self, req: &Request) -> Outcome {
        let shown = |reply| Outcome {
            reply,
            hidden: false,
        };
        match req {
            Request::Retrieve(r) => {
                let values = r
                    .keys
                    .iter()
                    .filter_map(|k| {
                        self.items.get(&k.decoded()).map(|it| Value {
                            key: k.clone(),
                            flags: it.flags,
                            cas: r.command.with_cas().then_some(it.cas),
                            data: Bytes::from(it.value.clone()),
                        })
                    })
                    .collect();
                shown(Response::Values(values))
            }
            Request::Store(s) => {
                let existing = self.items.get(&s.key.decoded()).cloned();
                let reply = match (s.command, existing) {
                    (StoreCommand::Set, _)
                    | (StoreCommand::Add, None)
                    | (StoreCommand::Replace, Some(_)) => {
                        self.put(&s.key, s.value.to_vec(), s.flags);
                        Response::Stored
                    }
                    (StoreCommand::Add, Some(_))
                    | (
                        StoreCommand::Replace | StoreCommand::Append | StoreCommand::Prepend,
                        None,
                    ) => Response::NotStored,
                    (StoreCommand::Append, Some(it)) => {
                        self.put(&s.key, [&it.value[..], &s.value[..]].concat(), it.flags);
                        Response::Stored
                    }
                    (StoreCommand::Prepend, Some(it)) => {
                        self.put(&s.key, [&s.value[..], &it.value[..]].concat(), it.flags);
                        Response::Stored
                    }
                    (StoreCommand::Cas(_), None) => Response::NotFound,
                    (StoreCommand::Cas(c), Some(it)) if c != it.cas => Response::Exists,
                    (StoreCommand::Cas(_), Some(_)) => {
                        self.put(&s.key, s.value.to_vec(), s.flags);
                        Response::Stored
                    }
                    _ => unknown_command(),
                };
                Outcome {
                    reply,
                    hidden: s.noreply,
                }
            }
            Request::Delete { key, noreply } => Outcome {
                reply: match self.items.remove(&key.decoded()) {
                    Some(_) => Response::Deleted,
                    None => Response::NotFound,
                },
                hidden: *noreply,
            },
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
                let incr = matches!(req, Request::Incr { .. });
                let reply = match self.items.get(&key.decoded()).cloned() {
                    None => Response::NotFound,
                    Some(it) => {
                        let n: u64 = std::str::from_utf8(&it.value).unwrap().parse().unwrap();
                        let n = if incr {
                            n.wrapping_add(*delta)
                        } else {
                            n.saturating_sub(*delta)
                        };
                        self.put(key, n.to_string().into_bytes(), it.flags);
                        Response::Number(n)
                    }
                };
                Outcome {
                    reply,
                    hidden: *noreply,
                }
            }
            Request::Touch { key, noreply, .. } => Outcome {
                reply: if self.items.contains_key(&key.decoded()) {
                    Response::Touched
                } else {
                    Response::NotFound
                },
                hidden: *noreply,
            },
            Request::FlushAll { noreply, .. } => {
                self.items.clear();
                Outcome {
                    reply: Response::Ok,
                    hidden: *noreply,
                }
            }
            Request::Version => shown(Response::Version(Bytes::from_static(b"1.6.99-model"))),
            Request::Verbosity { noreply, .. } => Outcome {
                reply: Response::Ok,
                hidden: *noreply,
            },
            Request::Stats { .. } => shown(Response::Stats(vec![Stat {
                name: Bytes::from_static(b"curr_items"),
                value: Bytes::from(self.items.len().to_string()),
            }])),
            Request::Quit => {
                self.closed = true;
                Outcome {
                    reply: Response::NoReply,
                    hidden: true,
                }
            }
            Request::MetaNoop => shown(Response::MetaNoop),
            Request::MetaDebug { key } => shown(match self.items.get(&key.decoded()) {
                Some(it) => Response::MetaDebug {
                    key: key.wire_bytes().clone(),
                    info: Bytes::from(format!(
                        "exp=-1 la=0 cas={} fetch=no cls=1 size={}",
                        it.cas,
                        it.value.len() + 50
                    )),
                },
                None => Response::Meta(Box::new(MetaResponse::status(MetaStatus::En))),
            }),
            Request::MetaGet(m) => self.meta_get(m),
            Request::MetaSet(m) => self.meta_set(m),
            Request::MetaDelete(m) => self.meta_delete(m),
            Request::MetaArithmetic(m) => self.meta_arithmetic(m),
            // A command the model does not know: memcached answers `ERROR`.
            _ => shown(unknown_command()),
        }
    }

    fn meta_get(&mut self, m: &MetaGet) -> Outcome {
        let f = &m.flags;
        let mut r = MetaResponse::status(MetaStatus::En);
        r.flags.opaque = f.opaque;
        r.flags.key = f.key.then(|| m.key.clone());
        let Some(it) = self.items.get(&m.key.decoded()) else {
            // A miss echoes only O and k; q hides it.
            return Outcome {
                reply: Response::Meta(Box::new(r)),
                hidden: f.quiet,
            };
        };
        r.status = if f.value {
            MetaStatus::Va
        } else {
            MetaStatus::Hd
        };
        r.value = f.value.then(|| Bytes::from(it.value.clone()));
        r.flags.cas = f.cas.then_some(it.cas);
        r.flags.client_flags = f.client_flags.then_some(it.flags);
        r.flags.size = f.size.then_some(it.value.len() as u64);
        Outcome {
            reply: Response::Meta(Box::new(r)),
            hidden: false,
        }
    }

    fn meta_set(&mut self, m: &MetaSet) -> Outcome {
        let f = &m.flags;
        let existing = self.items.get(&m.key.decoded()).cloned();
        let mode = f.mode.unwrap_or(MetaSetMode::Set);
        let status = match (&existing, f.compare_cas) {
            (None, Some(_)) => MetaStatus::Nf,
            (Some(it), Some(c)) if c != it.cas => MetaStatus::Ex,
            _ => match (mode, &existing) {
                (MetaSetMode::Set, _)
                | (MetaSetMode::Add, None)
                | (MetaSetMode::Replace, Some(_))
                | (MetaSetMode::Append | MetaSetMode::Prepend, Some(_)) => MetaStatus::Hd,
                _ => MetaStatus::Ns,
            },
        };
        let mut cas = 0;
        if status == MetaStatus::Hd {
            let (value, flags) = match (mode, existing) {
                (MetaSetMode::Append, Some(it)) => {
                    ([&it.value[..], &m.value[..]].concat(), it.flags)
                }
                (MetaSetMode::Prepend, Some(it)) => {
                    ([&m.value[..], &it.value[..]].concat(), it.flags)
                }
                _ => (m.value.to_vec(), f.client_flags.unwrap_or(0)),
            };
            cas = self.put(&m.key, value, flags);
        }
        let mut r = MetaResponse::status(status);
        r.flags.opaque = f.opaque;
        r.flags.key = f.key.then(|| m.key.clone());
        r.flags.cas = f.cas.then_some(cas);
        Outcome {
            reply: Response::Meta(Box::new(r)),
            hidden: f.quiet && status == MetaStatus::Hd,
        }
    }

    fn meta_delete(&mut self, m: &MetaDelete) -> Outcome {
        let f = &m.flags;
        let k = m.key.decoded();
        let status = match (self.items.get(&k), f.compare_cas) {
            (None, _) => MetaStatus::Nf,
            (Some(it), Some(c)) if c != it.cas => MetaStatus::Ex,
            _ => {
                self.items.remove(&k);
                MetaStatus::Hd
            }
        };
        let mut r = MetaResponse::status(status);
        r.flags.opaque = f.opaque;
        r.flags.key = f.key.then(|| m.key.clone());
        Outcome {
            reply: Response::Meta(Box::new(r)),
            hidden: f.quiet && status == MetaStatus::Hd,
        }
    }

    fn meta_arithmetic(&mut self, m: &MetaArithmetic) -> Outcome {
        let f = &m.flags;
        let existing = self.items.get(&m.key.decoded()).cloned();
        let mut r = MetaResponse::status(MetaStatus::Nf);
        r.flags.opaque = f.opaque;
        r.flags.key = f.key.then(|| m.key.clone());
        let result = match existing {
            None if f.vivify.is_some() => {
                let n = f.initial.unwrap_or(0);
                Some((n, self.put(&m.key, n.to_string().into_bytes(), 0)))
            }
            None => None,
            Some(it) => {
                let n: u64 = std::str::from_utf8(&it.value).unwrap().parse().unwrap();
                let d = f.delta.unwrap_or(1);
                let n = match f.mode.unwrap_or(MetaArithmeticMode::Increment) {
                    MetaArithmeticMode::Increment => n.wrapping_add(d),
                    MetaArithmeticMode::Decrement => n.saturating_sub(d),
                    _ => {
                        return Outcome {
                            reply: Response::Error {
                                kind: ErrorKind::Client,
                                message: Bytes::from_static(b"invalid mode for ma M token"),
                            },
                            hidden: false,
                        }
                    }
                };
                Some((n, self.put(&m.key, n.to_string().into_bytes(), it.flags)))
            }
        };
        let Some((n, cas)) = result else {
            return Outcome {
                reply: Response::Meta(Box::new(r)),
                hidden: false,
            };
        };
        r.status = if f.value {
            MetaStatus::Va
        } else {
            MetaStatus::Hd
        };
        r.value = f.value.then(|| Bytes::from(n.to_string()));
        r.flags.cas = f.cas.then_some(cas);
        // q hides the whole success, VA and value included.
        Outcome {
            reply: Response::Meta(Box::new(r)),
            hidden: f.quiet,
        }
    }
}

/// memcached's reply to a command it does not know.
fn unknown_command() -> Response {
    Response::Error {
        kind: ErrorKind::Error,
        message: Bytes::new(),
    }
}

/// What the connection hands its caller for a reply the server hid.
fn implied(req: &Request) -> Response {
    let meta = |status, opaque: Option<Opaque>| {
        let mut m = MetaResponse::status(status);
        m.flags.opaque = opaque;
        Response::Meta(Box::new(m))
    };
    match req {
        Request::MetaGet(m) => meta(MetaStatus::En, m.flags.opaque),
        Request::MetaSet(m) => meta(MetaStatus::Hd, m.flags.opaque),
        Request::MetaDelete(m) => meta(MetaStatus::Hd, m.flags.opaque),
        Request::MetaArithmetic(m) => meta(MetaStatus::Hd, m.flags.opaque),
        _ => Response::NoReply,
    }
}

/// The request as the connection puts it on the wire: its own opaque on meta requests.
/// A single-key `get` (`Some(false)`) or `gets` (`Some(true)`), which a connection with
/// `single_get_as_meta` sends as `mg <key> f v [c]`.
fn meta_get_of(req: &Request) -> Option<bool> {
    match req {
        Request::Retrieve(r) if r.keys.len() == 1 => match r.command {
            RetrieveCommand::Get => Some(false),
            RetrieveCommand::Gets => Some(true),
            _ => None,
        },
        _ => None,
    }
}

fn on_wire(req: &Request, id: RequestId, meta_get: bool) -> Request {
    let mut r = req.clone();
    if let (true, Some(cas), Request::Retrieve(get)) = (meta_get, meta_get_of(req), req) {
        r = Request::MetaGet(Box::new(MetaGet {
            key: get.keys[0].clone(),
            flags: MetaGetFlags {
                value: true,
                client_flags: true,
                cas,
                ..MetaGetFlags::default()
            },
        }));
    }
    let o = Some(Opaque::from_u32(id.get() as u32));
    match &mut r {
        Request::MetaGet(m) => m.flags.opaque = o,
        Request::MetaSet(m) => m.flags.opaque = o,
        Request::MetaDelete(m) => m.flags.opaque = o,
        Request::MetaArithmetic(m) => m.flags.opaque = o,
        _ => {}
    }
    r
}

// ---------------------------------------------------------------------------------------------
// Requests the model can answer without an error (errors are tested deterministically: after
// a quiet request they poison the connection by design).

const VALUE_KEYS: [&str; 5] = ["k0", "k1", "k2", "noreply", "mn"];
const COUNTER_KEYS: [&str; 2] = ["c0", "c1"];
const BINARY_KEYS: [&[u8]; 3] = [b"\x00a", b"\x00\xff b", b"\r\n\x00"];

fn value_key() -> impl Strategy<Value = Key> {
    select(VALUE_KEYS.to_vec()).prop_map(|k| Key::new(k).unwrap())
}

fn counter_key() -> impl Strategy<Value = Key> {
    select(COUNTER_KEYS.to_vec()).prop_map(|k| Key::new(k).unwrap())
}

fn binary_value_key() -> impl Strategy<Value = Key> {
    select(BINARY_KEYS.to_vec()).prop_map(|k| Key::binary(k).unwrap())
}

fn text_key() -> impl Strategy<Value = Key> {
    prop_oneof![3 => value_key(), 1 => counter_key()]
}

fn meta_value_key() -> impl Strategy<Value = Key> {
    prop_oneof![3 => value_key(), 1 => binary_value_key()]
}

/// A value that names its key, so a value delivered to the wrong caller shows.
fn value_for(key: Key) -> impl Strategy<Value = (Key, Bytes)> {
    (
        any::<u16>(),
        select(vec![&b""[..], b"\r\n", b"\r\nEND\r\n", b" "]),
    )
        .prop_map(move |(n, junk)| {
            let mut v = key.wire().to_vec();
            v.extend_from_slice(junk);
            v.extend_from_slice(format!("#{n}").as_bytes());
            (key.clone(), Bytes::from(v))
        })
}

fn number() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..20, (u64::MAX - 5)..=u64::MAX]
}

fn maybe_opaque() -> impl Strategy<Value = Option<Opaque>> {
    option::of(
        select(vec![&b"a"[..], b"", b"7", b"O1", b"x-y:z"]).prop_map(|o| Opaque::new(o).unwrap()),
    )
}

fn model_request() -> BoxedStrategy<Request> {
    let retrieve = (
        select(vec![
            RetrieveCommand::Get,
            RetrieveCommand::Gets,
            RetrieveCommand::Gat(100),
            RetrieveCommand::Gats(0),
        ]),
        vec(text_key(), 1..=4),
    )
        .prop_map(|(command, keys)| Request::Retrieve(Retrieve { command, keys }));
    let store_value = (
        select(vec![
            StoreCommand::Set,
            StoreCommand::Add,
            StoreCommand::Replace,
            StoreCommand::Append,
            StoreCommand::Prepend,
            StoreCommand::Cas(3),
        ]),
        (0u64..12).prop_map(StoreCommand::Cas),
        value_key().prop_flat_map(value_for),
        0u32..4,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(command, cas, (key, value), flags, use_cas, noreply)| {
            Request::Store(Store {
                command: if use_cas { cas } else { command },
                key,
                flags,
                exptime: 0,
                value,
                noreply,
            })
        });
    let store_counter = (
        select(vec![
            StoreCommand::Set,
            StoreCommand::Add,
            StoreCommand::Replace,
            StoreCommand::Cas(2),
        ]),
        counter_key(),
        number(),
        any::<bool>(),
    )
        .prop_map(|(command, key, n, noreply)| {
            Request::Store(Store {
                command,
                key,
                flags: 0,
                exptime: 0,
                value: Bytes::from(n.to_string()),
                noreply,
            })
        });
    let arith = (counter_key(), number(), any::<bool>(), any::<bool>()).prop_map(
        |(key, delta, incr, noreply)| {
            if incr {
                Request::Incr {
                    key,
                    delta,
                    noreply,
                }
            } else {
                Request::Decr {
                    key,
                    delta,
                    noreply,
                }
            }
        },
    );
    let mg = (
        prop_oneof![meta_value_key(), counter_key()],
        (
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
        ),
        option::of(1i32..1000),
        maybe_opaque(),
    )
        .prop_map(
            |(
                key,
                (cas, client_flags, key_flag, size, no_lru_bump, value, quiet),
                touch,
                opaque,
            )| {
                Request::MetaGet(Box::new(MetaGet {
                    key,
                    flags: MetaGetFlags {
                        touch,
                        cas,
                        client_flags,
                        key: key_flag,
                        size,
                        no_lru_bump,
                        value,
                        opaque,
                        quiet,
                        ..Default::default()
                    },
                }))
            },
        );
    let ms_value = (
        meta_value_key().prop_flat_map(value_for),
        option::of(select(vec![
            MetaSetMode::Set,
            MetaSetMode::Add,
            MetaSetMode::Replace,
            MetaSetMode::Append,
            MetaSetMode::Prepend,
        ])),
        option::of(0u32..4),
        option::of(0u64..12),
        (any::<bool>(), any::<bool>(), any::<bool>()),
        maybe_opaque(),
    )
        .prop_map(
            |((key, value), mode, client_flags, compare_cas, (cas, key_flag, quiet), opaque)| {
                Request::MetaSet(Box::new(MetaSet {
                    key,
                    value,
                    flags: MetaSetFlags {
                        mode,
                        client_flags,
                        compare_cas,
                        cas,
                        key: key_flag,
                        opaque,
                        quiet,
                        ..Default::default()
                    },
                }))
            },
        );
    let ms_counter = (
        counter_key(),
        number(),
        option::of(select(vec![
            MetaSetMode::Set,
            MetaSetMode::Add,
            MetaSetMode::Replace,
        ])),
        (any::<bool>(), any::<bool>()),
        maybe_opaque(),
    )
        .prop_map(|(key, n, mode, (key_flag, quiet), opaque)| {
            Request::MetaSet(Box::new(MetaSet {
                key,
                value: Bytes::from(n.to_string()),
                flags: MetaSetFlags {
                    mode,
                    key: key_flag,
                    quiet,
                    opaque,
                    ..Default::default()
                },
            }))
        });
    let md = (
        prop_oneof![meta_value_key(), counter_key()],
        option::of(0u64..12),
        (any::<bool>(), any::<bool>()),
        maybe_opaque(),
    )
        .prop_map(|(key, compare_cas, (key_flag, quiet), opaque)| {
            Request::MetaDelete(Box::new(MetaDelete {
                key,
                flags: MetaDeleteFlags {
                    compare_cas,
                    key: key_flag,
                    opaque,
                    quiet,
                    ..Default::default()
                },
            }))
        });
    let ma = (
        counter_key(),
        option::of(select(vec![
            MetaArithmeticMode::Increment,
            MetaArithmeticMode::Decrement,
        ])),
        option::of(number()),
        option::of(0i32..100),
        option::of(number()),
        (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()),
        maybe_opaque(),
    )
        .prop_map(
            |(key, mode, delta, vivify, initial, (cas, key_flag, value, quiet), opaque)| {
                Request::MetaArithmetic(Box::new(MetaArithmetic {
                    key,
                    flags: MetaArithmeticFlags {
                        mode,
                        delta,
                        vivify,
                        initial,
                        cas,
                        key: key_flag,
                        value,
                        opaque,
                        quiet,
                        ..Default::default()
                    },
                }))
            },
        );
    prop_oneof![
        3 => retrieve,
        3 => store_value,
        1 => store_counter,
        1 => (text_key(), any::<bool>()).prop_map(|(key, noreply)| Request::Delete { key, noreply }),
        2 => arith,
        1 => (text_key(), any::<bool>())
            .prop_map(|(key, noreply)| Request::Touch { key, exptime: 100, noreply }),
        4 => mg,
        3 => ms_value,
        1 => ms_counter,
        2 => md,
        2 => ma,
        1 => Just(Request::MetaNoop),
        1 => value_key().prop_map(|key| Request::MetaDebug { key }),
        1 => Just(Request::Version),
        1 => (0u32..3, any::<bool>()).prop_map(|(level, noreply)| Request::Verbosity { level, noreply }),
        1 => Just(Request::Stats { args: None }),
        1 => (select(vec![None, Some(0)]), any::<bool>())
            .prop_map(|(delay, noreply)| Request::FlushAll { delay, noreply }),
    ]
    .boxed()
}

#[derive(Debug, Clone)]
enum Op {
    Send(Request),
    /// Abandon one of the requests sent so far.
    Abandon(Index),
    /// Write part of what the connection has to send (the server answers what it read).
    Write(Index),
    /// Write everything, with `take_transmit`.
    TakeAll,
    /// Deliver up to this many bytes of the server's replies.
    Read(usize),
    /// Deliver up to this many bytes through `receive_buf`.
    ReadBuf(usize),
    /// Collect the replies that are ready.
    Poll,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => model_request().prop_map(Op::Send),
        1 => any::<Index>().prop_map(Op::Abandon),
        3 => any::<Index>().prop_map(Op::Write),
        1 => Just(Op::TakeAll),
        3 => (1usize..64).prop_map(Op::Read),
        1 => (1usize..64).prop_map(Op::ReadBuf),
        2 => Just(Op::Poll),
    ]
}

// ---------------------------------------------------------------------------------------------
// The harness

struct Harness {
    conn: Connection,
    model: Model,
    now: Instant,
    /// Bytes written by the connection, not yet decoded by the server.
    server_in: BytesMut,
    /// Bytes the server wrote, not yet delivered to the connection.
    server_out: Vec<u8>,
    /// Requests sent and not yet seen by the server, with their ids.
    unseen: VecDeque<(RequestId, Request)>,
    /// Every request sent, in order.
    sent: Vec<(RequestId, Request)>,
    /// What the caller of each id must get, once the server has answered it.
    expected: HashMap<RequestId, Response>,
    abandoned: HashSet<RequestId>,
    delivered: Vec<(RequestId, Result<Response, Error>)>,
    quit: bool,
}

impl Harness {
    fn new(sync: SyncCommand, single_get_as_meta: bool) -> Self {
        Harness {
            conn: Connection::new(ConnectionConfig {
                sync,
                single_get_as_meta,
                ..ConnectionConfig::default()
            }),
            model: Model::default(),
            now: Instant::now(),
            server_in: BytesMut::new(),
            server_out: Vec::new(),
            unseen: VecDeque::new(),
            sent: Vec::new(),
            expected: HashMap::new(),
            abandoned: HashSet::new(),
            delivered: Vec::new(),
            quit: false,
        }
    }

    fn send(&mut self, req: Request) {
        match self.conn.send(req.clone()) {
            Ok(id) => {
                assert!(!self.quit, "send accepted after quit");
                if req == Request::Quit {
                    self.quit = true;
                }
                self.unseen.push_back((id, req.clone()));
                self.sent.push((id, req));
            }
            Err(e) => {
                assert!(self.quit, "send refused: {e}");
                assert_eq!(e, Error::Poisoned(PoisonReason::Quit));
            }
        }
    }

    /// The server reads `bytes` and answers every request they complete.
    fn serve(&mut self, bytes: &[u8]) {
        self.server_in.extend_from_slice(bytes);
        while !self.model.closed {
            let Some(req) = Request::decode(&mut self.server_in, &Limits::server())
                .unwrap_or_else(|e| panic!("the server cannot read the connection's bytes: {e}"))
            else {
                break;
            };
            let user = match self.unseen.front() {
                Some((id, r)) if on_wire(r, *id, self.conn.config().single_get_as_meta) == req => {
                    self.unseen.pop_front()
                }
                _ => None,
            };
            let sync = matches!(req, Request::MetaNoop | Request::Version);
            assert!(user.is_some() || sync, "not what was sent: {req:?}");
            let out = self.model.handle(&req);
            if !out.hidden {
                out.reply.encode(&mut self.server_out);
            }
            if let Some((id, user_req)) = user {
                let seen = if out.hidden {
                    implied(&user_req)
                } else {
                    let as_get =
                        meta_get_of(&user_req).filter(|_| self.conn.config().single_get_as_meta);
                    match (out.reply, as_get) {
                        // A get sent as `mg`: its reply as the get's.
                        (Response::Meta(m), Some(cas)) => Response::Values(
                            m.value
                                .map(|data| Value {
                                    key: match &user_req {
                                        Request::Retrieve(r) => r.keys[0].clone(),
                                        _ => unreachable!("a get"),
                                    },
                                    flags: m.flags.client_flags.unwrap_or(0),
                                    cas: m.flags.cas.filter(|_| cas),
                                    data,
                                })
                                .into_iter()
                                .collect(),
                        ),
                        // The caller's own opaque comes back, not the connection's.
                        (Response::Meta(mut m), None) => {
                            m.flags.opaque = match &user_req {
                                Request::MetaGet(r) => r.flags.opaque,
                                Request::MetaSet(r) => r.flags.opaque,
                                Request::MetaDelete(r) => r.flags.opaque,
                                Request::MetaArithmetic(r) => r.flags.opaque,
                                _ => None,
                            };
                            Response::Meta(m)
                        }
                        (other, _) => other,
                    }
                };
                self.expected.insert(id, seen);
            }
        }
        if self.model.closed {
            assert!(self.server_in.is_empty(), "bytes after quit");
        }
    }

    fn write(&mut self, pick: Option<Index>) {
        let out = self.conn.transmit().to_vec();
        let n = pick.map_or(out.len(), |i| i.index(out.len() + 1));
        self.conn.advance_transmit(n, self.now);
        self.serve(&out[..n]);
    }

    fn take_all(&mut self) {
        if let Some(b) = self.conn.take_transmit(self.now) {
            self.serve(&b);
        }
    }

    fn read(&mut self, n: usize, via_buf: bool) {
        let n = n.min(self.server_out.len());
        let chunk: Vec<u8> = self.server_out.drain(..n).collect();
        self.now += Duration::from_millis(1);
        if via_buf {
            let mut b = BytesMut::from(&chunk[..]);
            self.conn.receive_buf(&mut b, self.now);
            assert!(b.is_empty());
        } else {
            self.conn.receive(&chunk, self.now);
        }
    }

    fn poll(&mut self) {
        while let Some(r) = self.conn.poll_response() {
            self.delivered.push(r);
        }
    }

    fn abandon(&mut self, pick: Index) {
        if self.sent.is_empty() {
            return;
        }
        let id = self.sent[pick.index(self.sent.len())].0;
        let polled = self.delivered.iter().any(|(d, _)| *d == id);
        let was_abandoned = self.abandoned.contains(&id);
        let pending = self.conn.abandon(id);
        if polled {
            assert!(!pending, "abandon of {id:?} after its reply was taken");
        } else if !was_abandoned {
            assert!(
                pending,
                "abandon of {id:?}, not yet answered, found nothing"
            );
        }
        if pending {
            self.abandoned.insert(id);
        }
    }

    fn run(&mut self, op: Op) {
        match op {
            Op::Send(r) => self.send(r),
            Op::Abandon(i) => self.abandon(i),
            Op::Write(i) => self.write(Some(i)),
            Op::TakeAll => self.take_all(),
            Op::Read(n) => self.read(n, false),
            Op::ReadBuf(n) => self.read(n, true),
            Op::Poll => self.poll(),
        }
        assert_eq!(
            self.conn.poisoned(),
            None,
            "a correct server poisoned the connection"
        );
    }

    /// Writes and reads everything, then checks every invariant.
    fn finish(&mut self, read_chunk: usize) {
        for _ in 0..3 {
            self.write(None);
            while !self.server_out.is_empty() {
                self.read(read_chunk, false);
            }
            self.poll();
        }
        assert_eq!(self.conn.poisoned(), None);
        assert!(
            self.unseen.is_empty(),
            "requests never written: {:?}",
            self.unseen
        );
        if self.quit {
            self.conn.receive_eof();
            self.poll();
            assert_eq!(self.conn.poisoned(), Some(&PoisonReason::Quit));
        }
        assert!(self.conn.is_idle(), "still waiting after every reply came");
        assert_eq!(self.conn.pending(), 0);

        let ids: Vec<RequestId> = self.delivered.iter().map(|(id, _)| *id).collect();
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "replies out of order or repeated: {ids:?}"
        );
        let delivered: HashMap<RequestId, &Result<Response, Error>> =
            self.delivered.iter().map(|(id, r)| (*id, r)).collect();
        for (id, req) in &self.sent {
            let got = delivered.get(id);
            if self.abandoned.contains(id) {
                assert!(got.is_none(), "abandoned {id:?} ({req:?}) got {got:?}");
                continue;
            }
            let want = self
                .expected
                .get(id)
                .unwrap_or_else(|| panic!("{id:?} ({req:?}) never reached the server"));
            match got {
                Some(Ok(r)) => assert_eq!(r, want, "reply to {id:?}: {req:?}"),
                other => panic!("{id:?} ({req:?}): want {want:?}, got {other:?}"),
            }
        }
        assert_eq!(
            self.delivered.len(),
            self.sent.len() - self.abandoned.len(),
            "replies to requests never sent (the connection's own sync?)"
        );
    }
}

proptest! {
    #![proptest_config(config(1000))]

    /// Random traffic against the model: every request gets exactly its own reply, once.
    #[test]
    fn connection_against_model(
        ops in vec(op(), 1..60),
        quit in prop::bool::weighted(0.1),
        version_sync in prop::bool::weighted(0.2),
        meta_get in any::<bool>(),
        read_chunk in 1usize..200,
    ) {
        let sync = if version_sync { SyncCommand::Version } else { SyncCommand::MetaNoop };
        let mut h = Harness::new(sync, meta_get);
        for op in ops {
            h.run(op);
        }
        if quit {
            h.send(Request::Quit);
            h.send(Request::Version);
        }
        h.finish(read_chunk);
    }
}

proptest! {
    #![proptest_config(config(512))]

    /// Garbage from the server: whatever it is, every pending caller gets exactly one
    /// result, in order, and the connection ends poisoned and idle after EOF.
    #[test]
    fn connection_survives_garbage(
        reqs in vec(model_request(), 1..12),
        abandon in vec(any::<bool>(), 12),
        garbage in prop_oneof![
            garbage(),
            vec(any::<u8>(), 0..200),
            vec(response(), 1..6).prop_map(|rs| rs.iter().flat_map(|(r, _)| r.to_bytes()).collect()),
        ],
        sizes in vec(1usize..32, 1..6),
    ) {
        let mut conn = Connection::default();
        let now = Instant::now();
        let mut ids = Vec::new();
        for r in reqs {
            ids.push(conn.send(r).unwrap());
        }
        let out = conn.transmit().len();
        conn.advance_transmit(out, now);
        let mut abandoned = HashSet::new();
        for (id, a) in ids.iter().zip(&abandon) {
            if *a {
                prop_assert!(conn.abandon(*id));
                abandoned.insert(*id);
            }
        }
        let mut got = Vec::new();
        for c in chunks(&garbage, &sizes) {
            conn.receive(c, now);
            while let Some(r) = conn.poll_response() {
                got.push(r);
            }
        }
        conn.receive_eof();
        while let Some(r) = conn.poll_response() {
            got.push(r);
        }
        prop_assert!(conn.poisoned().is_some());
        prop_assert!(conn.is_idle());
        prop_assert!(conn.send(Request::Version).is_err());
        let got_ids: Vec<RequestId> = got.iter().map(|(id, _)| *id).collect();
        let want: Vec<RequestId> = ids.iter().copied().filter(|id| !abandoned.contains(id)).collect();
        prop_assert_eq!(got_ids, want);
    }
}

// ---------------------------------------------------------------------------------------------
// Deterministic cases

fn key(s: &str) -> Key {
    Key::new(s).unwrap()
}

fn get(k: &str) -> Request {
    Request::Retrieve(Retrieve {
        command: RetrieveCommand::Get,
        keys: vec![key(k)],
    })
}

fn set(k: &str, v: &'static [u8], noreply: bool) -> Request {
    Request::Store(Store {
        command: StoreCommand::Set,
        key: key(k),
        flags: 0,
        exptime: 0,
        value: Bytes::from_static(v),
        noreply,
    })
}

fn mg_quiet(k: &str) -> Request {
    Request::MetaGet(Box::new(MetaGet {
        key: key(k),
        flags: MetaGetFlags {
            value: true,
            quiet: true,
            ..Default::default()
        },
    }))
}

/// Writes everything the connection has to send; returns it.
fn flush(conn: &mut Connection, now: Instant) -> Vec<u8> {
    let out = conn.transmit().to_vec();
    conn.advance_transmit(out.len(), now);
    out
}

fn drain(conn: &mut Connection) -> Vec<(RequestId, Result<Response, Error>)> {
    std::iter::from_fn(|| conn.poll_response()).collect()
}

fn poisoned(r: &Result<Response, Error>, reason: &PoisonReason) -> bool {
    matches!(r, Err(Error::Poisoned(p)) if p == reason)
}

#[test]
fn garbage_poisons_every_pending_request() {
    let now = Instant::now();
    let mut conn = Connection::default();
    let a = conn.send(get("a")).unwrap();
    let b = conn.send(set("b", b"x", false)).unwrap();
    let c = conn.send(mg_quiet("c")).unwrap();
    flush(&mut conn, now);
    conn.receive(b"VALUE a 0 1\r\nx\r\nEND\r\nbogus\r\n", now);
    let got = drain(&mut conn);
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].0, a);
    assert!(matches!(&got[0].1, Ok(Response::Values(v)) if v.len() == 1));
    assert_eq!(got[1].0, b);
    assert!(matches!(
        &got[1].1,
        Err(Error::Poisoned(PoisonReason::Malformed(_)))
    ));
    assert_eq!(got[2].0, c);
    assert!(matches!(
        &got[2].1,
        Err(Error::Poisoned(PoisonReason::Malformed(_)))
    ));
    assert!(matches!(conn.poisoned(), Some(PoisonReason::Malformed(_))));
    assert!(matches!(
        conn.send(get("a")),
        Err(Error::Poisoned(PoisonReason::Malformed(_)))
    ));
    assert!(!conn.wants_write());
    assert!(conn.transmit().is_empty());
    // Later bytes are ignored.
    conn.receive(b"END\r\n", now);
    assert!(conn.poll_response().is_none());
    assert!(conn.is_idle());
}

#[test]
fn rejected_storage_command_fails_its_caller_and_poisons_the_rest() {
    let now = Instant::now();
    for store in [
        set("a", b"xyz", false),
        Request::MetaSet(Box::new(MetaSet::new(key("a"), &b"xyz"[..]))),
    ] {
        for (line, err) in [
            (
                &b"CLIENT_ERROR bad data chunk\r\n"[..],
                Error::Client(Bytes::from_static(b"bad data chunk")),
            ),
            (b"ERROR\r\n", Error::Protocol(Bytes::new())),
        ] {
            let mut conn = Connection::default();
            let a = conn.send(store.clone()).unwrap();
            let b = conn.send(get("b")).unwrap();
            let c = conn.send(Request::MetaNoop).unwrap();
            flush(&mut conn, now);
            conn.receive(line, now);
            let got = drain(&mut conn);
            assert_eq!(got.len(), 3, "{got:?}");
            assert_eq!(got[0], (a, Err(err.clone())));
            assert_eq!(got[1].0, b);
            assert!(poisoned(&got[1].1, &PoisonReason::StorageRejected));
            assert_eq!(got[2].0, c);
            assert!(poisoned(&got[2].1, &PoisonReason::StorageRejected));
            assert_eq!(conn.poisoned(), Some(&PoisonReason::StorageRejected));
        }
    }
    // A SERVER_ERROR (the block was read and dropped) fails only its caller.
    let mut conn = Connection::default();
    let a = conn.send(set("a", b"xyz", false)).unwrap();
    let b = conn.send(get("b")).unwrap();
    flush(&mut conn, now);
    conn.receive(b"SERVER_ERROR object too large for cache\r\nEND\r\n", now);
    let got = drain(&mut conn);
    assert_eq!(
        got[0],
        (
            a,
            Err(Error::Server(Bytes::from_static(
                b"object too large for cache"
            )))
        )
    );
    assert_eq!(got[1], (b, Ok(Response::Values(vec![]))));
    assert_eq!(conn.poisoned(), None);
    // And a CLIENT_ERROR to a command without a data block, too.
    let mut conn = Connection::default();
    let a = conn
        .send(Request::Incr {
            key: key("a"),
            delta: 1,
            noreply: false,
        })
        .unwrap();
    let b = conn.send(get("b")).unwrap();
    flush(&mut conn, now);
    conn.receive(
        b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\nEND\r\n",
        now,
    );
    let got = drain(&mut conn);
    assert!(matches!(&got[0], (id, Err(Error::Client(_))) if *id == a));
    assert_eq!(got[1], (b, Ok(Response::Values(vec![]))));
    assert_eq!(conn.poisoned(), None);
}

#[test]
fn error_after_a_silent_request_is_ambiguous() {
    let now = Instant::now();
    let quiet_ms = Request::MetaSet(Box::new(MetaSet {
        key: key("a"),
        value: Bytes::from_static(b"x"),
        flags: MetaSetFlags {
            quiet: true,
            ..Default::default()
        },
    }));
    for silent in [quiet_ms, set("a", b"x", true), mg_quiet("a")] {
        for line in [
            &b"SERVER_ERROR out of memory storing object\r\n"[..],
            b"CLIENT_ERROR bad command line format\r\n",
            b"ERROR\r\n",
        ] {
            let mut conn = Connection::default();
            let a = conn.send(silent.clone()).unwrap();
            let b = conn.send(get("b")).unwrap();
            flush(&mut conn, now);
            conn.receive(line, now);
            let got = drain(&mut conn);
            assert_eq!(got.len(), 2);
            assert_eq!(got[0].0, a);
            assert!(poisoned(&got[0].1, &PoisonReason::AmbiguousError));
            assert_eq!(got[1].0, b);
            assert!(poisoned(&got[1].1, &PoisonReason::AmbiguousError));
        }
    }
}

#[test]
fn error_after_a_sole_silent_request_before_the_sync_is_its_own() {
    let now = Instant::now();
    let quiet_ms = Request::MetaSet(Box::new(MetaSet {
        key: key("a"),
        value: Bytes::from_static(b"x"),
        flags: MetaSetFlags {
            quiet: true,
            ..Default::default()
        },
    }));
    // The connection's own `mn` never errs: the error line belongs to the quiet request.
    for (silent, line, still_open) in [
        (
            quiet_ms.clone(),
            &b"SERVER_ERROR object too large for cache\r\n"[..],
            true,
        ),
        (quiet_ms, b"CLIENT_ERROR bad data chunk\r\n", false),
        (
            mg_quiet("a"),
            b"CLIENT_ERROR bad command line format\r\n",
            true,
        ),
    ] {
        let mut conn = Connection::default();
        let a = conn.send(silent).unwrap();
        flush(&mut conn, now);
        conn.receive(line, now);
        conn.receive(b"MN\r\n", now);
        let got = drain(&mut conn);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, a);
        assert!(matches!(
            got[0].1,
            Err(Error::Server(_)) | Err(Error::Client(_))
        ));
        assert_eq!(conn.poisoned().is_none(), still_open, "{line:?}");
        if still_open {
            let b = conn.send(get("b")).unwrap();
            flush(&mut conn, now);
            conn.receive(b"END\r\n", now);
            assert_eq!(drain(&mut conn), vec![(b, Ok(Response::Values(vec![])))]);
        }
    }
}

#[test]
fn quiet_batch_is_closed_by_a_hidden_mn() {
    let now = Instant::now();
    let mut conn = Connection::default();
    let user = Opaque::new(b"mine").unwrap();
    let a = conn
        .send(Request::MetaDelete(Box::new(MetaDelete {
            key: key("a"),
            flags: MetaDeleteFlags {
                quiet: true,
                opaque: Some(user),
                ..Default::default()
            },
        })))
        .unwrap();
    let b = conn.send(mg_quiet("b")).unwrap();
    let c = conn.send(mg_quiet("c")).unwrap();
    let wire = flush(&mut conn, now);
    let o = |id: RequestId| id.get().to_string();
    assert_eq!(
        wire,
        format!(
            "md a O{} q\r\nmg b v O{} q\r\nmg c v O{} q\r\nmn\r\n",
            o(a),
            o(b),
            o(c)
        )
        .into_bytes()
    );
    // md hit (hidden), b hit (shown), c miss (hidden), then MN.
    conn.receive(format!("VA 2 O{}\r\nbb\r\nMN\r\n", o(b)).as_bytes(), now);
    let got = drain(&mut conn);
    let mut hd = MetaResponse::status(MetaStatus::Hd);
    hd.flags.opaque = Some(user);
    assert_eq!(
        got,
        vec![
            (a, Ok(Response::Meta(Box::new(hd)))),
            (
                b,
                Ok(Response::Meta(Box::new(MetaResponse {
                    status: MetaStatus::Va,
                    flags: MetaReturnFlags::default(),
                    value: Some(Bytes::from_static(b"bb")),
                })))
            ),
            (
                c,
                Ok(Response::Meta(Box::new(MetaResponse::status(
                    MetaStatus::En
                ))))
            ),
        ]
    );
    assert!(conn.is_idle());
    assert_eq!(conn.pending(), 0);
}

#[test]
fn eof_without_quit_poisons() {
    let now = Instant::now();
    let mut conn = Connection::default();
    let a = conn.send(get("a")).unwrap();
    let b = conn.send(set("b", b"x", true)).unwrap();
    flush(&mut conn, now);
    conn.receive(b"END\r\n", now);
    conn.receive_eof();
    let got = drain(&mut conn);
    assert_eq!(got[0], (a, Ok(Response::Values(vec![]))));
    assert_eq!(got[1].0, b);
    assert!(poisoned(&got[1].1, &PoisonReason::Closed));
    assert_eq!(conn.poisoned(), Some(&PoisonReason::Closed));
    assert_eq!(
        conn.send(get("a")),
        Err(Error::Poisoned(PoisonReason::Closed))
    );
    // EOF on an idle connection poisons it too, with nobody to tell.
    let mut conn = Connection::default();
    conn.receive_eof();
    assert!(conn.poll_response().is_none());
    assert_eq!(conn.poisoned(), Some(&PoisonReason::Closed));
}

#[test]
fn eof_after_quit() {
    let now = Instant::now();
    let mut conn = Connection::default();
    let a = conn.send(get("a")).unwrap();
    let b = conn.send(mg_quiet("b")).unwrap();
    let q = conn.send(Request::Quit).unwrap();
    assert_eq!(
        conn.send(get("a")),
        Err(Error::Poisoned(PoisonReason::Quit))
    );
    let wire = flush(&mut conn, now);
    assert!(wire.ends_with(b"quit\r\n"), "no sync after quit");
    conn.receive(b"END\r\n", now);
    conn.receive_eof();
    let got = drain(&mut conn);
    assert_eq!(
        got,
        vec![
            (a, Ok(Response::Values(vec![]))),
            (
                b,
                Ok(Response::Meta(Box::new(MetaResponse::status(
                    MetaStatus::En
                ))))
            ),
            (q, Ok(Response::NoReply)),
        ]
    );
    assert_eq!(conn.poisoned(), Some(&PoisonReason::Quit));
    assert!(conn.is_idle());
    // Quit with an unanswered request before it: that request lost its reply.
    let mut conn = Connection::default();
    let a = conn.send(get("a")).unwrap();
    let q = conn.send(Request::Quit).unwrap();
    flush(&mut conn, now);
    conn.receive_eof();
    let got = drain(&mut conn);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].0, a);
    assert!(poisoned(&got[0].1, &PoisonReason::Closed));
    assert_eq!(got[1].0, q);
    assert!(poisoned(&got[1].1, &PoisonReason::Closed));
}

#[test]
fn read_timeout_with_instants_passed_in() {
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let mut conn = Connection::new(ConnectionConfig {
        read_timeout: Some(s(5)),
        ..ConnectionConfig::default()
    });
    assert_eq!(conn.poll_timeout(), None, "nothing pending");
    let a = conn.send(get("a")).unwrap();
    assert_eq!(conn.poll_timeout(), None, "nothing written yet");
    flush(&mut conn, t0);
    assert_eq!(conn.poll_timeout(), Some(t0 + s(5)));
    conn.handle_timeout(t0 + s(4));
    assert_eq!(conn.poisoned(), None);
    // Part of a reply does not move the deadline: the whole reply is due by t0 + 5 s.
    conn.receive(b"VALUE a 0 1\r\n", t0 + s(3));
    assert_eq!(conn.poll_timeout(), Some(t0 + s(5)));
    conn.handle_timeout(t0 + s(4));
    assert_eq!(conn.poisoned(), None);
    assert!(conn.poll_response().is_none());
    conn.handle_timeout(t0 + s(5));
    assert_eq!(conn.poisoned(), Some(&PoisonReason::Timeout));
    let got = drain(&mut conn);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, a);
    assert!(poisoned(&got[0].1, &PoisonReason::Timeout));
    assert_eq!(conn.poll_timeout(), None);

    // Once everything is answered there is no deadline.
    let mut conn = Connection::new(ConnectionConfig {
        read_timeout: Some(s(5)),
        ..ConnectionConfig::default()
    });
    conn.send(get("a")).unwrap();
    flush(&mut conn, t0);
    conn.receive(b"END\r\n", t0 + s(1));
    assert_eq!(conn.poll_timeout(), None);
    conn.handle_timeout(t0 + s(100));
    assert_eq!(conn.poisoned(), None);
    // And without a read timeout there is never one.
    let mut conn = Connection::default();
    conn.send(get("a")).unwrap();
    flush(&mut conn, t0);
    assert_eq!(conn.poll_timeout(), None);
    conn.handle_timeout(t0 + s(1_000_000));
    assert_eq!(conn.poisoned(), None);
}

#[test]
fn abandon_pending_and_ready_replies() {
    let now = Instant::now();
    let mut conn = Connection::default();
    let a = conn.send(get("a")).unwrap();
    let b = conn.send(get("b")).unwrap();
    let c = conn.send(get("c")).unwrap();
    flush(&mut conn, now);
    // b abandoned while pending: its reply is read and dropped, c still gets its own.
    assert!(conn.abandon(b));
    conn.receive(
        b"VALUE a 0 1\r\nA\r\nEND\r\nVALUE b 0 1\r\nB\r\nEND\r\n",
        now,
    );
    // a's reply is ready but not taken: abandoning it drops it.
    assert!(conn.abandon(a));
    assert!(!conn.abandon(a), "already gone");
    assert!(!conn.abandon(b), "already gone");
    assert!(conn.poll_response().is_none());
    conn.receive(b"VALUE c 0 1\r\nC\r\nEND\r\n", now);
    let got = drain(&mut conn);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, c);
    assert!(matches!(&got[0].1, Ok(Response::Values(v)) if v[0].data == "C"));
    assert!(!conn.abandon(c), "taken already");
    assert!(conn.is_idle());
}

#[test]
fn bytes_with_nothing_pending_poison() {
    let now = Instant::now();
    let mut conn = Connection::default();
    conn.receive(b"END\r\n", now);
    assert!(matches!(conn.poisoned(), Some(PoisonReason::Malformed(_))));
    assert!(conn.send(get("a")).is_err());
    // After the last reply: a surplus reply poisons; the earlier reply stays delivered.
    let mut conn = Connection::default();
    let a = conn.send(get("a")).unwrap();
    flush(&mut conn, now);
    conn.receive(b"END\r\nEND\r\n", now);
    assert_eq!(drain(&mut conn), vec![(a, Ok(Response::Values(vec![])))]);
    assert!(conn.poisoned().is_some());
}

#[test]
fn user_opaque_is_restored_and_connection_opaque_checked() {
    let now = Instant::now();
    let mut conn = Connection::default();
    let mine = Opaque::new(b"mine").unwrap();
    let a = conn
        .send(Request::MetaGet(Box::new(MetaGet {
            key: key("a"),
            flags: MetaGetFlags {
                opaque: Some(mine),
                key: true,
                ..Default::default()
            },
        })))
        .unwrap();
    let wire = flush(&mut conn, now);
    assert_eq!(wire, format!("mg a k O{}\r\n", a.get()).into_bytes());
    // The caller's opaque on the wire is not the connection's: refused.
    let mut other = Connection::default();
    let _ = other
        .send(Request::MetaGet(Box::new(MetaGet {
            key: key("a"),
            flags: MetaGetFlags {
                opaque: Some(mine),
                ..Default::default()
            },
        })))
        .unwrap();
    flush(&mut other, now);
    other.receive(b"HD Omine\r\n", now);
    assert!(matches!(other.poisoned(), Some(PoisonReason::Malformed(_))));
    conn.receive(format!("HD ka O{}\r\n", a.get()).as_bytes(), now);
    let (id, r) = conn.poll_response().unwrap();
    assert_eq!(id, a);
    let Ok(Response::Meta(m)) = r else { panic!() };
    assert_eq!(m.flags.opaque, Some(mine));
    assert_eq!(m.flags.key, Some(key("a")));
}

/// Replies split at every byte reach the same callers (the connection keeps partial frames).
#[test]
fn replies_split_at_every_byte() {
    let now = Instant::now();
    let reply: &[u8] =
        b"VALUE a 0 3\r\na\r\n\r\nEND\r\nSTORED\r\nVA 3 O2\r\nb\r\n\r\nVERSION 1\r\n";
    for cut in 0..=reply.len() {
        let mut conn = Connection::default();
        let ids = [
            conn.send(get("a")).unwrap(),
            conn.send(set("a", b"x", false)).unwrap(),
            conn.send(mg_quiet("b")).unwrap(),
            conn.send(mg_quiet("c")).unwrap(),
            conn.send(Request::Version).unwrap(),
        ];
        flush(&mut conn, now);
        conn.receive(&reply[..cut], now);
        conn.receive(&reply[cut..], now);
        let got = drain(&mut conn);
        assert_eq!(got.iter().map(|(id, _)| *id).collect::<Vec<_>>(), ids);
        assert!(got.iter().all(|(_, r)| r.is_ok()), "cut {cut}: {got:?}");
        assert_eq!(conn.poisoned(), None);
    }
}

// ---------------------------------------------------------------------------------------------
// The read timeout: a reply must complete within the read timeout of becoming due.

fn timed(read_timeout: Duration) -> Connection {
    Connection::new(ConnectionConfig {
        read_timeout: Some(read_timeout),
        ..ConnectionConfig::default()
    })
}

#[test]
fn dripping_reply_times_out_although_bytes_keep_coming() {
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let mut conn = timed(s(5));
    let a = conn.send(get("a")).unwrap();
    flush(&mut conn, t0);
    // Due at t0 (written with nothing ahead): the reply must be whole by t0 + 5 s.
    assert_eq!(conn.poll_timeout(), Some(t0 + s(5)));
    conn.receive(b"VALUE a 0 100\r\n", t0 + s(1));
    assert_eq!(conn.poll_timeout(), Some(t0 + s(5)), "a header is no reply");
    // One byte every 2 s: none of them completes the reply, none moves the deadline.
    let mut t = t0 + s(1);
    for _ in 0..10 {
        t += s(2);
        conn.handle_timeout(t);
        if conn.poisoned().is_some() {
            break;
        }
        conn.receive(b"x", t);
        assert_eq!(conn.poll_timeout(), Some(t0 + s(5)));
    }
    assert_eq!(conn.poisoned(), Some(&PoisonReason::Timeout));
    assert!(t <= t0 + s(7), "poisoned at the first check past due + 5 s");
    let got = drain(&mut conn);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, a);
    assert!(poisoned(&got[0].1, &PoisonReason::Timeout));
    // Exactly at the deadline, not a moment before.
    let mut conn = timed(s(5));
    conn.send(get("a")).unwrap();
    flush(&mut conn, t0);
    conn.receive(b"VALUE a 0 100\r\nxx", t0 + s(4));
    conn.handle_timeout(t0 + s(5) - Duration::from_millis(1));
    assert_eq!(conn.poisoned(), None);
    conn.receive(b"x", t0 + s(5) - Duration::from_millis(1));
    conn.handle_timeout(t0 + s(5));
    assert_eq!(conn.poisoned(), Some(&PoisonReason::Timeout));
}

#[test]
fn pipelined_batch_longer_than_the_timeout_stays_healthy() {
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let mut conn = timed(s(5));
    let ids: Vec<RequestId> = (0..6)
        .map(|i| conn.send(get(&format!("k{i}"))).unwrap())
        .collect();
    flush(&mut conn, t0);
    assert_eq!(conn.poll_timeout(), Some(t0 + s(5)));
    // Each reply completes 4 s after the one before it (the whole batch takes 24 s); the
    // next reply's first bytes come early and do not move its deadline.
    let mut t = t0;
    for i in 0..6 {
        let due = t;
        t += s(2);
        conn.handle_timeout(t);
        conn.receive(format!("VALUE k{i} 0 2\r\n").as_bytes(), t);
        assert_eq!(conn.poll_timeout(), Some(due + s(5)), "reply {i}: partial");
        t += s(2);
        conn.handle_timeout(t);
        assert_eq!(conn.poisoned(), None, "reply {i}");
        conn.receive(b"ab\r\nEND\r\n", t);
        let next = (i < 5).then(|| t + s(5));
        assert_eq!(conn.poll_timeout(), next, "reply {i}: complete");
    }
    assert_eq!(conn.poisoned(), None);
    let got = drain(&mut conn);
    assert_eq!(got.iter().map(|(id, _)| *id).collect::<Vec<_>>(), ids);
    assert!(got.iter().all(|(_, r)| r.is_ok()));
}

#[test]
fn abandoned_front_request_that_never_completes_poisons() {
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let mut conn = timed(s(5));
    let a = conn.send(get("a")).unwrap();
    let b = conn.send(get("b")).unwrap();
    flush(&mut conn, t0);
    assert!(conn.abandon(a));
    // The abandoned reply trickles in and never ends.
    conn.receive(b"VALUE a 0 1000\r\n", t0 + s(1));
    let mut t = t0 + s(1);
    while conn.poisoned().is_none() && t < t0 + s(60) {
        t += s(1);
        conn.handle_timeout(t);
        conn.receive(b"zz", t);
    }
    assert_eq!(conn.poisoned(), Some(&PoisonReason::Timeout));
    assert_eq!(t, t0 + s(5));
    // Only the caller still waiting hears of it.
    let got = drain(&mut conn);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, b);
    assert!(poisoned(&got[0].1, &PoisonReason::Timeout));
}

#[test]
fn quiet_and_noreply_batches_keep_their_deadlines() {
    let t0 = Instant::now();
    let s = Duration::from_secs;
    // A quiet hit answers nothing; the hidden `mn` completes the batch.
    let mut conn = timed(s(5));
    let q = conn.send(mg_quiet("a")).unwrap();
    flush(&mut conn, t0);
    assert_eq!(conn.poll_timeout(), Some(t0 + s(5)));
    conn.receive(b"MN\r\n", t0 + s(4));
    assert_eq!(conn.poll_timeout(), None);
    assert_eq!(conn.poisoned(), None);
    let got = drain(&mut conn);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, q);
    // `noreply` then a get: the get's reply completes the batch.
    let mut conn = timed(s(5));
    let n = conn.send(set("a", b"x", true)).unwrap();
    let g = conn.send(get("a")).unwrap();
    flush(&mut conn, t0);
    conn.receive(b"VALUE a 0 1\r\nx\r\nEND\r\n", t0 + s(4));
    assert_eq!(conn.poll_timeout(), None);
    let got = drain(&mut conn);
    assert_eq!(
        got.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        vec![n, g]
    );
    // A quiet batch that never answers times out.
    let mut conn = timed(s(5));
    conn.send(mg_quiet("a")).unwrap();
    flush(&mut conn, t0);
    conn.handle_timeout(t0 + s(5));
    assert_eq!(conn.poisoned(), Some(&PoisonReason::Timeout));
}

#[test]
fn request_written_later_is_due_when_written() {
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let mut conn = timed(s(5));
    conn.send(get("a")).unwrap();
    flush(&mut conn, t0);
    conn.receive(b"END\r\n", t0 + s(1));
    assert_eq!(conn.poll_timeout(), None);
    // Sent on an idle connection later: due when its bytes go out, not before.
    conn.send(get("b")).unwrap();
    assert_eq!(conn.poll_timeout(), None, "not written yet");
    flush(&mut conn, t0 + s(30));
    assert_eq!(conn.poll_timeout(), Some(t0 + s(35)));
    // Queued behind a pending request and written after the reply ahead completed: due when
    // written.
    conn.receive(b"VALUE b 0 1\r\n", t0 + s(31));
    conn.send(get("c")).unwrap();
    conn.receive(b"b\r\nEND\r\n", t0 + s(32));
    assert_eq!(conn.poll_timeout(), None, "c not written yet");
    flush(&mut conn, t0 + s(40));
    assert_eq!(conn.poll_timeout(), Some(t0 + s(45)));
}

/// `read_hint` tells a reader exactly how many bytes complete the value being read, split
/// anywhere after its header; nothing before the header is whole or after the block is.
#[test]
fn read_hint_is_the_rest_of_the_declared_block() {
    let now = Instant::now();
    let value = vec![b'v'; 10_000];
    let mut wire = b"VALUE k 0 10000\r\n".to_vec();
    let head = wire.len();
    wire.extend_from_slice(&value);
    wire.extend_from_slice(b"\r\nEND\r\n");
    for cut in [5, head, head + 1, head + 4_000] {
        let mut conn = Connection::default();
        conn.send(Request::Retrieve(Retrieve {
            command: RetrieveCommand::Get,
            keys: vec![Key::new("k").unwrap()],
        }))
        .unwrap();
        let n = conn.transmit().len();
        conn.advance_transmit(n, now);
        conn.receive(&wire[..cut], now);
        if cut < head {
            assert_eq!(conn.read_hint(), None, "no whole header yet");
        } else {
            assert_eq!(conn.read_hint(), Some(head + 10_002 - cut), "cut at {cut}");
            let input = conn.read_buf();
            assert!(
                input.capacity() >= head + 10_002,
                "room for the block reserved"
            );
        }
        conn.receive(&wire[cut..], now);
        assert_eq!(conn.read_hint(), None);
        match conn.poll_response() {
            Some((_, Ok(Response::Values(v)))) => assert_eq!(v[0].data, value),
            other => panic!("{other:?}"),
        }
    }
}

/// A large value is queued as the `Bytes` it was given (no copy) between its command line and
/// `\r\n`; `transmit` (one buffer) and `take_transmit_chunks` (several) put the same bytes
/// on the wire.
#[test]
fn large_values_are_queued_without_a_copy() {
    let now = Instant::now();
    let value = Bytes::from(vec![b'x'; mcache_proto::SPLICE_MIN]);
    let small = Bytes::from_static(b"tiny");
    let store = |key: &str, value: &Bytes| {
        Request::Store(Store {
            command: StoreCommand::Set,
            key: Key::new(key).unwrap(),
            flags: 0,
            exptime: 0,
            value: value.clone(),
            noreply: false,
        })
    };
    let mut expected = b"set big 0 0 8192\r\n".to_vec();
    expected.extend_from_slice(&value);
    expected.extend_from_slice(b"\r\nset small 0 0 4\r\ntiny\r\n");

    let mut chunked = Connection::default();
    chunked.send(store("big", &value)).unwrap();
    chunked.send(store("small", &small)).unwrap();
    let mut chunks = VecDeque::new();
    assert!(chunked.take_transmit_chunks(now, &mut chunks));
    assert_eq!(chunks.len(), 3, "command line, the value, then the rest");
    assert_eq!(
        chunks[1].as_ptr(),
        value.as_ptr(),
        "the value itself, not a copy"
    );
    assert_eq!(
        chunks
            .iter()
            .flat_map(|c| c.iter().copied())
            .collect::<Vec<u8>>(),
        expected
    );
    assert!(!chunked.wants_write());

    let mut flat = Connection::default();
    flat.send(store("big", &value)).unwrap();
    flat.send(store("small", &small)).unwrap();
    assert_eq!(flat.transmit(), &expected[..]);
}
