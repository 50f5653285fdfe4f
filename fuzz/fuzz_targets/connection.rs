//! The `Connection` state machine under an arbitrary sequence of operations.
//!
//! Input: `<config> <op>*`. `config` bit 0: a read timeout of 1 s; bit 1: `version` instead of
//! `mn` to close quiet batches; bit 2: single-key `get`s sent as `mg`
//! (`ConnectionConfig::single_get_as_meta`). Each op is an opcode byte (mod 10) and its operands:
//!
//! | op | operands | does |
//! |----|----------|------|
//! | 0 send template | `t k m` | sends request template `t` with key `k` and modifiers `m` (noreply, quiet, opaque) |
//! | 1 send bytes | `n <n bytes>` | decodes the bytes as requests (`Request::decode`) and sends them |
//! | 2 abandon | `i` | abandons the `i`-th id sent (counting from the last one) |
//! | 3 receive | `n <n bytes>` | feeds server bytes |
//! | 4 canned reply | `r a` | feeds a well-formed reply `r` (with argument `a`, e.g. an opaque) |
//! | 5 transmit | `n` | writes `n` bytes of `transmit()` (0: all) |
//! | 6 eof | | `receive_eof()` |
//! | 7 tick | `ms` | advances the clock by `ms * 20` ms, then `handle_timeout(now)` |
//! | 8 poll | `n` | takes up to `n % 4 + 1` replies from `poll_response()` |
//! | 9 poll all | | takes every reply |
//!
//! Checks: no panic; a reply is only ever for an id that `send` returned, at most once per id,
//! in increasing id order, never for an id after `abandon(id)` was called; a successful reply
//! fits its request (a meta reply carries the caller's own opaque and key); a poisoned or
//! quitting connection refuses requests; and at the end, after `receive_eof`, every request
//! sent and not abandoned has had exactly one reply.

#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use mcache_fuzz::Cursor;
use mcache_proto::meta::request::{MetaArithmetic, MetaDelete, MetaGet, MetaSet};
use mcache_proto::text::request::{Retrieve, RetrieveCommand, Store, StoreCommand};
use mcache_proto::{
    Connection, ConnectionConfig, Error, Key, Limits, Opaque, Request, RequestId, Response,
    SyncCommand,
};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

fn key(k: u8) -> Key {
    match k % 6 {
        0 => Key::new("foo"),
        1 => Key::new("bar"),
        2 => Key::new("a"),
        3 => Key::new("k:1"),
        4 => Key::new("nokey_mg"),
        // Only meta templates use it (`key_text` maps it back for text commands).
        _ => Key::binary(b"\x00\xffbin\r\n key"),
    }
    .expect("valid fixed key")
}

fn key_text(k: u8) -> Key {
    key(k % 5)
}

/// Request templates, by `t % 20`. `m` bit 0: noreply / quiet; bit 1: a caller opaque.
fn template(t: u8, k: u8, m: u8) -> Request {
    let quiet = m & 1 != 0;
    let opaque = (m & 2 != 0).then(|| Opaque::new(b"user-op").expect("valid opaque"));
    let value = Bytes::from_static(b"bar");
    match t % 20 {
        0 => Request::Retrieve(Retrieve {
            command: RetrieveCommand::Get,
            keys: vec![key_text(k)],
        }),
        1 => Request::Retrieve(Retrieve {
            command: RetrieveCommand::Gets,
            keys: vec![key_text(k), key_text(k.wrapping_add(1))],
        }),
        2 | 3 => Request::Store(Store {
            command: if t % 20 == 2 {
                StoreCommand::Set
            } else {
                StoreCommand::Cas(u64::from(m))
            },
            key: key_text(k),
            flags: 5,
            exptime: 0,
            value,
            noreply: quiet,
        }),
        4 => Request::Delete {
            key: key_text(k),
            noreply: quiet,
        },
        5 => Request::Incr {
            key: key_text(k),
            delta: u64::from(m),
            noreply: quiet,
        },
        6 => Request::Touch {
            key: key_text(k),
            exptime: 100,
            noreply: quiet,
        },
        7 | 8 => {
            let mut r = MetaGet::new(key(k));
            r.flags.value = t % 20 == 7;
            r.flags.key = m & 4 != 0;
            r.flags.cas = m & 8 != 0;
            r.flags.quiet = quiet;
            r.flags.opaque = opaque;
            Request::MetaGet(Box::new(r))
        }
        9 => {
            let mut r = MetaSet::new(key(k), value);
            r.flags.key = m & 4 != 0;
            r.flags.quiet = quiet;
            r.flags.opaque = opaque;
            Request::MetaSet(Box::new(r))
        }
        10 => {
            let mut r = MetaDelete::new(key(k));
            r.flags.key = m & 4 != 0;
            r.flags.quiet = quiet;
            r.flags.opaque = opaque;
            Request::MetaDelete(Box::new(r))
        }
        11 => {
            let mut r = MetaArithmetic::new(key(k));
            r.flags.value = m & 8 != 0;
            r.flags.key = m & 4 != 0;
            r.flags.quiet = quiet;
            r.flags.opaque = opaque;
            Request::MetaArithmetic(Box::new(r))
        }
        12 => Request::MetaNoop,
        13 => Request::Version,
        14 => Request::Stats { args: None },
        15 => Request::FlushAll {
            delay: None,
            noreply: quiet,
        },
        16 => Request::MetaDebug { key: key(k) },
        17 => Request::Verbosity {
            level: 1,
            noreply: quiet,
        },
        18 => Request::Quit,
        _ => Request::Decr {
            key: key_text(k),
            delta: 1,
            noreply: quiet,
        },
    }
}

/// Well-formed replies, by `r % 26`; `a` is the opaque (the connection's own opaque for a
/// request is its id in decimal) or a number.
fn canned(r: u8, a: u8) -> Vec<u8> {
    let s: &[u8] = match r % 26 {
        0 => b"VALUE foo 5 3\r\nbar\r\nEND\r\n",
        1 => b"VALUE foo 5 3 76\r\nbar\r\nEND\r\n",
        2 => b"END\r\n",
        3 => b"STORED\r\n",
        4 => b"NOT_STORED\r\n",
        5 => b"EXISTS\r\n",
        6 => b"NOT_FOUND\r\n",
        7 => b"DELETED\r\n",
        8 => b"TOUCHED\r\n",
        9 => b"OK\r\n",
        10 => return format!("{a}\r\n").into_bytes(),
        11 => b"VERSION 1.6.18\r\n",
        12 => b"STAT pid 1\r\nSTAT uptime 2\r\nEND\r\n",
        13 => b"MN\r\n",
        14 => b"ME foo exp=-1 la=31 cas=1 fetch=yes cls=1 size=69\r\n",
        15 => b"ERROR\r\n",
        16 => b"CLIENT_ERROR bad command line format\r\n",
        17 => b"SERVER_ERROR out of memory\r\n",
        18 => return format!("HD O{a}\r\n").into_bytes(),
        19 => return format!("EN O{a}\r\n").into_bytes(),
        20 => return format!("VA 3 O{a} kfoo\r\nbar\r\n").into_bytes(),
        21 => return format!("NF O{a}\r\n").into_bytes(),
        22 => return format!("NS O{a}\r\n").into_bytes(),
        // A get or gets sent as `mg`, answered as memcached answers one.
        23 => return format!("VA 3 f5 O{a}\r\nbar\r\n").into_bytes(),
        24 => return format!("VA 3 f5 c76 O{a}\r\nbar\r\n").into_bytes(),
        _ => b"HD\r\n",
    };
    s.to_vec()
}

/// Whether a successful reply can answer `req` (the connection restored the caller's opaque).
fn fits(req: &Request, resp: &Response) -> bool {
    use Response as R;
    let silent = req.is_silent();
    let meta = |key: &Key, opaque: Option<Opaque>, value_ok: bool| match resp {
        R::Meta(m) => {
            m.flags.opaque == opaque
                && m.flags
                    .key
                    .as_ref()
                    .is_none_or(|k| k.decoded() == key.decoded())
                && (value_ok || m.value.is_none())
        }
        _ => false,
    };
    match req {
        Request::Retrieve(r) => match resp {
            R::Values(vs) => vs
                .iter()
                .all(|v| r.keys.contains(&v.key) && v.cas.is_some() == r.command.with_cas()),
            _ => false,
        },
        Request::Store(_) => {
            matches!(resp, R::Stored | R::NotStored | R::Exists | R::NotFound)
                || (silent && *resp == R::NoReply)
        }
        Request::Delete { .. } => {
            matches!(resp, R::Deleted | R::NotFound) || (silent && *resp == R::NoReply)
        }
        Request::Incr { .. } | Request::Decr { .. } => {
            matches!(resp, R::Number(_) | R::NotFound) || (silent && *resp == R::NoReply)
        }
        Request::Touch { .. } => {
            matches!(resp, R::Touched | R::NotFound) || (silent && *resp == R::NoReply)
        }
        Request::FlushAll { .. } | Request::Verbosity { .. } => {
            *resp == R::Ok || (silent && *resp == R::NoReply)
        }
        Request::Version => matches!(resp, R::Version(_)),
        Request::Stats { .. } => matches!(resp, R::Stats(_) | R::Lines(_) | R::Reset | R::Ok),
        Request::Quit => *resp == R::NoReply,
        Request::MetaGet(m) => meta(&m.key, m.flags.opaque, true),
        Request::MetaSet(m) => meta(&m.key, m.flags.opaque, false),
        Request::MetaDelete(m) => meta(&m.key, m.flags.opaque, false),
        Request::MetaArithmetic(m) => meta(&m.key, m.flags.opaque, true),
        Request::MetaNoop => *resp == R::MetaNoop,
        Request::MetaDebug { .. } => matches!(resp, R::MetaDebug { .. } | R::Meta(_)),
        // A request this target does not build: no reply is known to fit it.
        _ => false,
    }
}

struct Model {
    /// Every id `send` returned, with its request.
    sent: BTreeMap<RequestId, Request>,
    /// Ids in the order `send` returned them.
    order: Vec<RequestId>,
    /// Ids `abandon` was called for.
    abandoned: BTreeSet<RequestId>,
    /// Ids `poll_response` returned.
    answered: BTreeSet<RequestId>,
    last_answered: Option<RequestId>,
}

impl Model {
    fn poll(&mut self, conn: &mut Connection, max: usize) {
        for _ in 0..max {
            let Some((id, result)) = conn.poll_response() else {
                return;
            };
            let req = self
                .sent
                .get(&id)
                .unwrap_or_else(|| panic!("reply for {id:?}, which was never sent"));
            assert!(!self.abandoned.contains(&id), "reply for abandoned {id:?}");
            assert!(self.answered.insert(id), "second reply for {id:?}");
            assert!(
                self.last_answered < Some(id),
                "reply for {id:?} after one for {:?}",
                self.last_answered
            );
            self.last_answered = Some(id);
            if let Ok(resp) = &result {
                assert!(fits(req, resp), "{resp:?} handed to {req:?}");
            }
        }
    }

    fn send(&mut self, conn: &mut Connection, req: Request) {
        let refused = !conn.is_open();
        match conn.send(req.clone()) {
            Ok(id) => {
                assert!(!refused, "a closed connection accepted {req:?}");
                assert!(
                    self.order.last() < Some(&id),
                    "ids must increase: {id:?} after {:?}",
                    self.order.last()
                );
                self.sent.insert(id, req);
                self.order.push(id);
            }
            Err(Error::Poisoned(_)) => assert!(refused, "an open connection refused {req:?}"),
            // Encoding errors (a binary key in a text command cannot happen here, but a decoded
            // request may be too long for the 2048-byte line limit).
            Err(_) => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut c = Cursor::new(data);
    let config = c.byte();
    let mut conn = Connection::new(ConnectionConfig {
        limits: Limits {
            max_value_len: 4096,
            max_line_len: 512,
            max_entries: 32,
            max_reply_len: 8192,
        },
        read_timeout: (config & 1 != 0).then_some(Duration::from_secs(1)),
        sync: if config & 2 != 0 {
            SyncCommand::Version
        } else {
            SyncCommand::MetaNoop
        },
        single_get_as_meta: config & 4 != 0,
    });
    let mut model = Model {
        sent: BTreeMap::new(),
        order: Vec::new(),
        abandoned: BTreeSet::new(),
        answered: BTreeSet::new(),
        last_answered: None,
    };
    let start = Instant::now();
    let mut now = start;
    let mut ops = 0;
    while !c.is_empty() && ops < 512 {
        ops += 1;
        match c.byte() % 10 {
            0 => {
                let (t, k, m) = (c.byte(), c.byte(), c.byte());
                model.send(&mut conn, template(t, k, m));
            }
            1 => {
                let n = usize::from(c.byte());
                let mut buf = BytesMut::from(c.take(n));
                while let Ok(Some(req)) = Request::decode(&mut buf, &Limits::server()) {
                    model.send(&mut conn, req);
                }
            }
            2 => {
                let i = usize::from(c.byte());
                if let Some(&id) = model.order.iter().rev().nth(i % model.order.len().max(1)) {
                    conn.abandon(id);
                    model.abandoned.insert(id);
                }
            }
            3 => {
                let n = usize::from(c.byte());
                conn.receive(c.take(n), now);
            }
            4 => {
                let (r, a) = (c.byte(), c.byte());
                conn.receive(&canned(r, a), now);
            }
            5 => {
                let n = usize::from(c.byte());
                let len = conn.transmit().len();
                conn.advance_transmit(if n == 0 { len } else { n.min(len) }, now);
            }
            6 => conn.receive_eof(),
            7 => {
                now += Duration::from_millis(u64::from(c.byte()) * 20);
                if let Some(deadline) = conn.poll_timeout() {
                    assert!(deadline >= start);
                }
                conn.handle_timeout(now);
            }
            8 => {
                let n = usize::from(c.byte() % 4) + 1;
                model.poll(&mut conn, n);
            }
            _ => model.poll(&mut conn, usize::MAX),
        }
        if conn.poisoned().is_some() {
            assert!(!conn.is_open());
        }
    }

    // The end: the peer goes away; every request has had its one reply.
    conn.receive_eof();
    model.poll(&mut conn, usize::MAX);
    assert!(conn.is_idle(), "replies left after the end of the stream");
    assert_eq!(conn.pending(), 0);
    for id in &model.order {
        assert!(
            model.answered.contains(id) || model.abandoned.contains(id),
            "{id:?} ({:?}) never had a reply",
            model.sent[id]
        );
    }
});
