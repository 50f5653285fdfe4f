//! Every exchange recorded with memcached 1.6.18 (`tests/data/empirical*.json`), replayed
//! through the codec.
//!
//! Each record is put in exactly one [`Class`]:
//! - the request bytes decode (server side) into requests that re-encode and decode to the same
//!   values, and the recorded reply decodes (client side) against those requests, consuming
//!   every byte, and re-encodes to the recorded bytes (up to the order of meta return flags);
//! - or our decoder refuses a request (invalid key, malformed line, number out of range, ...):
//!   then the typed request cannot be built or encoded where that applies, the replies to the
//!   requests before it still decode, and what the server said instead is classified;
//! - or the request never completes (no line end) and the server closed the connection;
//! - or the recorded reply was truncated in the middle (its two ends are checked apart);
//! - or the record is a description (a binary search) checked by a dedicated function.
//!
//! Decoding never panics: records are processed under `catch_unwind` and any panic fails the
//! test with the record's name.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod spec_support;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::{Bytes, BytesMut};
use mcache_proto::meta::request::MetaSet;
use mcache_proto::text::request::{Retrieve, RetrieveCommand, Store, StoreCommand};
use mcache_proto::{
    Connection, DecodeError, EncodeError, Error, ErrorKind, Expect, Key, KeyError, Limits,
    MetaSetFlags, Opaque, Request, Response,
};
use spec_support::*;
use std::collections::{BTreeMap, BTreeSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Class {
    /// Every request decodes; every reply decodes and re-encodes to the recorded bytes.
    Answered,
    /// The same, and at least one reply is an error line (memcached refused something our
    /// codec accepts: a 1.6.27+ flag, a non-numeric counter, a too-large item, ...).
    AnsweredWithError,
    /// Our decoder refuses a request; memcached answered with an error line.
    RefusedServerError,
    /// Our decoder refuses a request; memcached said nothing (noreply, swallowing, closing).
    RefusedServerSilent,
    /// Our decoder refuses a request that memcached 1.6.18 accepted (we are stricter: flags
    /// 2^32, `+1`, bare `\n`, control bytes in keys, proxy flags `P`/`L`, ...).
    RefusedServerAccepted,
    /// Our decoder refuses a request; memcached answered outside the text protocol (binary
    /// protocol, `lru_crawler`/`watch` log lines).
    RefusedNonProtocol,
    /// The request never completes (no line end); memcached closed the connection.
    Incomplete,
    /// The recorded reply was truncated in the middle; its head and tail are checked apart.
    TruncatedReply,
    /// A description without bytes, checked by a dedicated function.
    Narrative,
}

/// Minimum count per class, as observed (369 records): a regression that moves records out of
/// a class (or makes them fail) lowers one of these. A deliberate change (say, the decoder
/// accepting the proxy hints `P`/`L`) moves records between classes: update the numbers.
const MIN_COUNTS: [(Class, usize); 9] = [
    (Class::Answered, 190),
    (Class::AnsweredWithError, 13),
    (Class::RefusedServerError, 110),
    (Class::RefusedServerSilent, 7),
    (Class::RefusedServerAccepted, 36),
    (Class::RefusedNonProtocol, 3),
    (Class::Incomplete, 4),
    (Class::TruncatedReply, 4),
    (Class::Narrative, 2),
];
/// Requests whose recorded bytes are exactly our encoding, at least (of 292 decoded).
const MIN_CANONICAL: usize = 243;
/// Replies that re-encode to the recorded bytes exactly / up to meta flag order, at least.
const MIN_REPLIES: (usize, usize) = (251, 8);

enum Plan {
    /// The request bytes, in the chunks they were sent in; `pause`: the server waited for
    /// the later chunks (the request is incomplete until the last one).
    Bytes { chunks: Vec<Vec<u8>>, pause: bool },
    /// Checked by a function.
    Narrative(fn(&Record)),
}

fn b64(raw_len: usize) -> String {
    STANDARD.encode(vec![0u8; raw_len])
}

/// Rebuilds the bytes of a request recorded as a description.
fn described(rec: &Record) -> Option<Plan> {
    let one = |b: Vec<u8>| Plan::Bytes {
        chunks: vec![b],
        pause: false,
    };
    let paused = |chunks: Vec<Vec<u8>>| Plan::Bytes {
        chunks,
        pause: true,
    };
    Some(match rec.label.as_str() {
        "get with 100 keys (>24 tokens, re-tokenized)" => {
            let mut s = String::from("get");
            for i in 0..99 {
                s += &format!(" nokey{i}");
            }
            one((s + " foo\r\n").into_bytes())
        }
        "'get ' + ~30KB of keys without newline stays open" => {
            let mut s = String::from("get");
            for i in 0..3000 {
                s += &format!(" nokeyzz{i}");
            }
            paused(vec![s.into_bytes(), b" foo\r\n".to_vec()])
        }
        "line without newline: 2048 bytes then +1 byte" => {
            paused(vec![vec![b'a'; 2048], vec![b'a']])
        }
        "101 leading spaces + 'get ' + 3000 bytes no newline" => {
            one(format!("{}get {}", " ".repeat(101), "x".repeat(3000)).into_bytes())
        }
        "too-large: is the error sent before the data is received?" => Plan::Bytes {
            chunks: vec![
                b"set big3 0 0 2097152\r\n".to_vec(),
                [vec![b'x'; 2_097_152], b"\r\n".to_vec()].concat(),
            ],
            pause: false,
        },
        "largest storable value with key 'mx' (2 bytes), flags 0"
        | "largest storable value with 250-byte key" => Plan::Narrative(largest_value),
        "base64 key longer than 250 encoded chars (252 raw bytes)" => {
            one(format!("mg {} b v\r\n", b64(252)).into_bytes())
        }
        "base64 key 252 chars (187 raw bytes) -> encoded length > 250" => {
            one(format!("mg {} b v\r\n", b64(187)).into_bytes())
        }
        "base64 key 248 chars (186 raw bytes)" => {
            let k = b64(186);
            one(format!("ms {k} 1 b\r\nx\r\nmg {k} b s\r\n").into_bytes())
        }
        "get + 20000 bytes of keys + CRLF (allowed, get is special)" => {
            let mut s = String::from("get");
            for i in 0..200 {
                s += &format!(" {:x<99}", format!("k{i}"));
            }
            one((s + "\r\n").into_bytes())
        }
        "watch fetchers mutations + set/get/mg from another connection" => {
            one(b"watch fetchers mutations\r\n".to_vec())
        }
        "oversized set deletes the existing value (getset.t)" => one([
            b"set ov 0 0 3\r\nMOO\r\nset ov 0 0 2000000\r\n".to_vec(),
            vec![b'x'; 2_000_000],
            b"\r\nget ov\r\n".to_vec(),
        ]
        .concat()),
        "getset.t: 'get '+2048 spaces+' manyspaces' (pause) '\\r\\n'" => paused(vec![
            format!("get {} manyspaces", " ".repeat(2048)).into_bytes(),
            b"\r\n".to_vec(),
        ]),
        "getset.t: 'incr '+2048 spaces+' manyspaces 1' without newline" => {
            one(format!("incr {} manyspaces 1", " ".repeat(2048)).into_bytes())
        }
        _ => return None,
    })
}

fn plan(rec: &Record) -> Plan {
    let source = Source::parse(&rec.request).unwrap_or_else(|e| panic!("request: {e}"));
    let plan = match &source {
        Source::Literal(_) | Source::Truncated { .. } => Plan::Bytes {
            chunks: vec![source
                .full()
                .expect("a truncated request is a run of one byte")],
            pause: false,
        },
        Source::Text(text) => described(rec)
            .or_else(|| {
                expand_placeholders(text)
                    .filter(|b| rec.request_len > 0 && b.len() == rec.request_len)
                    .map(|b| Plan::Bytes {
                        chunks: vec![b],
                        pause: false,
                    })
            })
            .unwrap_or_else(|| panic!("described request with no reconstruction: {text:?}")),
    };
    if let Plan::Bytes { chunks, .. } = &plan {
        if rec.request_len > 0 {
            let len: usize = chunks.iter().map(Vec::len).sum();
            assert_eq!(
                len, rec.request_len,
                "request bytes rebuilt with the wrong length"
            );
        }
    }
    plan
}

enum Recorded {
    Full(Vec<u8>),
    Partial { head: Vec<u8>, tail: Vec<u8> },
}

fn recorded_reply(rec: &Record) -> Recorded {
    let check_len = |b: &[u8]| {
        assert_eq!(
            b.len(),
            rec.response_len,
            "reply bytes parsed with the wrong length"
        );
    };
    match Source::parse(&rec.response).unwrap_or_else(|e| panic!("response: {e}")) {
        Source::Literal(b) => {
            check_len(&b);
            Recorded::Full(b)
        }
        t @ Source::Truncated { .. } => match t.full() {
            Some(b) => {
                check_len(&b);
                Recorded::Full(b)
            }
            None => {
                let Source::Truncated {
                    head,
                    missing,
                    tail,
                } = t
                else {
                    unreachable!()
                };
                assert_eq!(head.len() + missing, rec.response_len);
                assert!(tail.len() <= missing);
                Recorded::Partial { head, tail }
            }
        },
        // Prose: the literals in it are what came back (`closed=True` holds none).
        Source::Text(text) => Recorded::Full(embedded_literals(&text).concat()),
    }
}

#[derive(Debug)]
struct Outcome {
    class: Class,
    requests: Vec<Request>,
    replies: Vec<Reply>,
    refused: Option<DecodeError>,
    canonical: usize,
    total_requests: usize,
    exact_replies: usize,
    reordered_replies: usize,
}

impl Outcome {
    fn new(class: Class) -> Self {
        Outcome {
            class,
            requests: Vec::new(),
            replies: Vec::new(),
            refused: None,
            canonical: 0,
            total_requests: 0,
            exact_replies: 0,
            reordered_replies: 0,
        }
    }
}

fn is_error_line(line: &[u8]) -> bool {
    ["ERROR", "CLIENT_ERROR", "SERVER_ERROR"].iter().any(|p| {
        line.strip_prefix(p.as_bytes())
            .is_some_and(|r| r.is_empty() || r[0] == b' ' || r[0] == b':')
    })
}

fn is_reply_line(line: &[u8]) -> bool {
    let first = line.split(|&b| b == b' ').next().unwrap_or_default();
    matches!(
        first,
        b"STORED"
            | b"NOT_STORED"
            | b"EXISTS"
            | b"NOT_FOUND"
            | b"DELETED"
            | b"TOUCHED"
            | b"OK"
            | b"END"
            | b"VALUE"
            | b"VERSION"
            | b"STAT"
            | b"RESET"
            | b"VA"
            | b"HD"
            | b"EN"
            | b"NS"
            | b"EX"
            | b"NF"
            | b"MN"
            | b"ME"
    ) || (!first.is_empty() && first.iter().all(u8::is_ascii_digit))
}

/// Expectations of every shape, to feed arbitrary server output through the decoder.
fn all_expectations() -> Vec<Expect> {
    let k = key("foo");
    vec![
        Expect::Values {
            keys: vec![k.clone()],
            cas: false,
        },
        Expect::Values {
            keys: vec![k.clone()],
            cas: true,
        },
        Expect::Storage,
        Expect::Delete,
        Expect::Arithmetic,
        Expect::Touch,
        Expect::Ok,
        Expect::Version,
        Expect::Stats,
        Expect::Meta {
            command: "mg",
            key: k.clone(),
            opaque: None,
            value: true,
        },
        Expect::Meta {
            command: "ms",
            key: k,
            opaque: None,
            value: false,
        },
        Expect::MetaNoop,
        Expect::MetaDebug,
    ]
}

/// Decodes `bytes` with every expectation, until it stops: must not panic, whatever it is.
fn never_panics(bytes: &[u8]) {
    for expect in all_expectations() {
        let mut buf = BytesMut::from(bytes);
        let mut dec = mcache_proto::ResponseDecoder::default();
        for _ in 0..64 {
            match dec.decode(&expect, &mut buf) {
                Ok(Some(_)) if !buf.is_empty() => {}
                _ => break,
            }
        }
    }
}

fn process(rec: &Record) -> Outcome {
    let (chunks, pause) = match plan(rec) {
        Plan::Narrative(check) => {
            check(rec);
            return Outcome::new(Class::Narrative);
        }
        Plan::Bytes { chunks, pause } => (chunks, pause),
    };
    let stream = chunks.concat();
    let decoded = decode_requests(&chunks, &Limits::server());
    if pause {
        assert!(
            decoded.waiting_between_chunks.iter().all(|&w| w),
            "the request must stay incomplete (Ok(None), nothing consumed) until its end arrives"
        );
    }
    let mut outcome = Outcome::new(Class::Answered);
    // Semantic round trip of every request decoded.
    for (req, range) in &decoded.requests {
        let enc = req
            .to_bytes(&Limits::server())
            .unwrap_or_else(|e| panic!("decoded request does not encode: {req:?}: {e}"));
        assert!(
            enc[0].is_ascii_lowercase(),
            "a text-protocol request never starts with the binary protocol's 0x80"
        );
        let mut buf = BytesMut::from(&enc[..]);
        assert_eq!(
            Request::decode(&mut buf, &Limits::server()),
            Ok(Some(req.clone())),
            "re-encoded as {:?}",
            enc.escape_ascii().to_string()
        );
        assert!(buf.is_empty());
        if enc == stream[range.clone()] {
            outcome.canonical += 1;
        }
    }
    outcome.total_requests = decoded.requests.len();
    outcome.requests = decoded.requests.iter().map(|(r, _)| r.clone()).collect();
    let recorded = recorded_reply(rec);

    if let Some((err, _)) = decoded.error {
        outcome.refused = Some(err);
        let bytes = match &recorded {
            Recorded::Full(b) => b.clone(),
            Recorded::Partial { head, .. } => head.clone(),
        };
        never_panics(&bytes);
        // The replies to the requests before the refused one.
        let r = replay(&outcome.requests, &bytes).unwrap_or_else(|e| panic!("{e}"));
        assert!(!r.quit);
        outcome.replies = r.replies;
        let rest = r.leftover;
        let line_end = rest.windows(2).position(|w| w == b"\r\n");
        let first_line = &rest[..line_end.unwrap_or(rest.len())];
        outcome.class = if rest.is_empty() {
            Class::RefusedServerSilent
        } else if line_end.is_some() && is_error_line(first_line) {
            // Whatever was expected, the error line decodes as an error reply.
            for expect in all_expectations() {
                match decode_one(&expect, &rest) {
                    Ok(Some(Response::Error { .. })) => {}
                    other => panic!("{expect:?}: error line gave {other:?}"),
                }
            }
            Class::RefusedServerError
        } else if line_end.is_some() && is_reply_line(first_line) {
            Class::RefusedServerAccepted
        } else {
            Class::RefusedNonProtocol
        };
        return outcome;
    }

    if decoded.leftover > 0 {
        assert!(
            rec.closed,
            "an incomplete request the server did not close on"
        );
        let Recorded::Full(bytes) = &recorded else {
            panic!("truncated reply to an incomplete request")
        };
        let r = replay(&outcome.requests, bytes).unwrap_or_else(|e| panic!("{e}"));
        assert!(r.leftover.is_empty());
        outcome.replies = r.replies;
        outcome.class = Class::Incomplete;
        return outcome;
    }

    let bytes = match recorded {
        Recorded::Full(b) => b,
        Recorded::Partial { head, tail } => {
            // A long stats dump: its head (cut at the last whole line) and its tail (from the
            // first whole line) each decode as a stats reply.
            let [req] = outcome.requests.as_slice() else {
                panic!("truncated reply to {} requests", outcome.requests.len())
            };
            let expect = Expect::of(req).expect("expects a reply");
            let cut = head
                .windows(2)
                .rposition(|w| w == b"\r\n")
                .expect("a whole line")
                + 2;
            let head = [&head[..cut], b"END\r\n"].concat();
            let from = tail
                .windows(2)
                .position(|w| w == b"\r\n")
                .expect("a whole line")
                + 2;
            for part in [&head[..], &tail[from..]] {
                let lines = part.windows(2).filter(|w| w == b"\r\n").count();
                let mut buf = BytesMut::from(part);
                match mcache_proto::ResponseDecoder::default().decode(&expect, &mut buf) {
                    Ok(Some(Response::Stats(stats))) => {
                        assert_eq!(stats.len(), lines - 1, "one stat per line");
                        assert!(stats.iter().all(|s| !s.name.is_empty()));
                    }
                    other => panic!("stats fragment gave {other:?}"),
                }
                assert!(buf.is_empty());
            }
            outcome.class = Class::TruncatedReply;
            return outcome;
        }
    };

    let r = replay(&outcome.requests, &bytes).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        r.leftover.is_empty(),
        "bytes left after the last reply: {:?}",
        r.leftover.escape_ascii().to_string()
    );
    if r.quit {
        assert!(rec.closed, "quit, and the server did not close");
    } else {
        assert!(!rec.closed, "every request answered, yet the server closed");
    }
    for reply in &r.replies {
        let enc = reply.response.to_bytes();
        if enc == reply.raw {
            outcome.exact_replies += 1;
        } else if same_reply(&enc, &reply.raw) {
            outcome.reordered_replies += 1;
        } else {
            panic!(
                "reply {:?} re-encodes as {:?}, was {:?}",
                reply.response,
                enc.escape_ascii().to_string(),
                reply.raw.escape_ascii().to_string()
            );
        }
    }
    outcome.class = if r
        .replies
        .iter()
        .any(|r| matches!(r.response, Response::Error { .. }))
    {
        Class::AnsweredWithError
    } else {
        Class::Answered
    };
    outcome.replies = r.replies;
    // The same exchange through the connection state machine (which adds its own opaques:
    // only where no request carries one, and none is silent), fed one byte at a time.
    if outcome.class == Class::Answered && connection_can_replay(&outcome.requests) {
        let (got, conn) = through_connection(&outcome.requests, &bytes);
        let want: Vec<_> = outcome
            .replies
            .iter()
            .map(|r| Ok(r.response.clone()))
            .collect();
        assert_eq!(got, want, "through a connection");
        assert!(conn.poisoned().is_none(), "{:?}", conn.poisoned());
        assert!(conn.is_idle());
    }
    outcome
}

/// Binary search records: the largest value the server stores for a key (the item limit
/// counts the item header), and its refusal of one byte more.
fn largest_value(rec: &Record) {
    let max: usize = rec
        .response
        .strip_prefix("max N = ")
        .and_then(|r| r.split(';').next())
        .and_then(|n| n.trim().parse().ok())
        .expect("max N = <n>");
    let k = if rec.label.contains("'mx'") {
        "mx".to_owned()
    } else {
        "k".repeat(250)
    };
    for len in [max, max + 1] {
        let req = set(&k, 0, 0, &vec![b'z'; len]);
        let bytes = encode(&req);
        assert_eq!(decode_all_requests(&bytes), vec![req.clone()]);
        // The server's limit is tighter than the client's 1 MiB: one byte more is refused
        // with SERVER_ERROR after the data block was swallowed, and the connection stays usable.
        let mut conn = Connection::default();
        let id = conn.send(req).expect("within the client's limit");
        let n = conn.transmit().len();
        conn.advance_transmit(n, Instant::now());
        let reply: &[u8] = if len == max {
            b"STORED\r\n"
        } else {
            b"SERVER_ERROR object too large for cache\r\n"
        };
        conn.receive(reply, Instant::now());
        let (got, r) = conn.poll_response().expect("a reply");
        assert_eq!(got, id);
        if len == max {
            assert_eq!(r, Ok(Response::Stored));
        } else {
            assert_eq!(
                r,
                Err(Error::Server(Bytes::from_static(
                    b"object too large for cache"
                )))
            );
        }
        assert!(
            conn.is_open(),
            "SERVER_ERROR after a swallowed block keeps the stream in sync"
        );
    }
    for (what, lit) in embedded_literals(&rec.response)
        .iter()
        .map(|l| ("literal", l))
    {
        assert_eq!(
            decode_one(&Expect::Storage, lit),
            Ok(Some(error(ErrorKind::Server, "object too large for cache"))),
            "{what}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Typed checks for particular records: what a client cannot build or send.
// ---------------------------------------------------------------------------------------------

type Check = fn(&Outcome);

fn key_refused(k: &[u8], want: KeyError) {
    assert_eq!(Key::new(k), Err(want), "{:?}", k.escape_ascii().to_string());
}

fn invalid_byte(k: &[u8]) {
    let offset = k
        .iter()
        .position(|&b| b <= b' ' || b == 0x7f)
        .expect("has a bad byte");
    key_refused(
        k,
        KeyError::InvalidByte {
            byte: k[offset],
            offset,
        },
    );
}

fn refused_with(outcome: &Outcome, f: impl Fn(&DecodeError) -> bool) {
    let e = outcome.refused.as_ref().expect("refused by the decoder");
    assert!(f(e), "unexpected decode error {e:?}");
}

fn too_large_store(outcome: &Outcome) {
    let _ = outcome;
    let value = Bytes::from(vec![b'x'; 2 * 1024 * 1024]);
    let text = Request::Store(Store {
        command: StoreCommand::Set,
        key: key("big2"),
        flags: 0,
        exptime: 0,
        value: value.clone(),
        noreply: true,
    });
    let meta = Request::MetaSet(Box::new(MetaSet {
        key: key("big2"),
        value,
        flags: MetaSetFlags::default(),
    }));
    for req in [text, meta] {
        let mut out = Vec::new();
        assert_eq!(
            req.encode(&mut out, &Limits::default()),
            Err(EncodeError::ValueTooLarge {
                len: 2 * 1024 * 1024,
                max: 1024 * 1024
            })
        );
        assert!(out.is_empty(), "nothing written");
        assert!(Connection::default().send(req).is_err());
    }
}

fn checks() -> Vec<(&'static str, Check)> {
    vec![
        ("key 250 bytes set+get", |o| {
            assert!(Key::new([b'k'; 250]).is_ok());
            assert_eq!(
                o.canonical, 2,
                "set and get of a 250-byte key are canonical"
            );
        }),
        ("key 251 bytes get", |o| {
            key_refused(&[b'k'; 251], KeyError::TooLong { len: 251 });
            refused_with(o, |e| {
                *e == DecodeError::Key(KeyError::TooLong { len: 251 })
            });
        }),
        ("get multi where 2nd key is 251 bytes", |o| {
            key_refused(&[b'k'; 251], KeyError::TooLong { len: 251 });
            refused_with(o, |e| matches!(e, DecodeError::Key(_)));
        }),
        ("key 251 bytes set: NO swallow", |_| {
            key_refused(&[b'k'; 251], KeyError::TooLong { len: 251 })
        }),
        ("key 251 bytes delete", |_| {
            key_refused(&[b'k'; 251], KeyError::TooLong { len: 251 })
        }),
        ("key 251 incr", |_| {
            key_refused(&[b'k'; 251], KeyError::TooLong { len: 251 })
        }),
        ("key 251 touch", |_| {
            key_refused(&[b'k'; 251], KeyError::TooLong { len: 251 })
        }),
        ("key 251 mg", |_| {
            key_refused(&[b'k'; 251], KeyError::TooLong { len: 251 })
        }),
        ("key 251 ms", |_| {
            key_refused(&[b'k'; 251], KeyError::TooLong { len: 251 })
        }),
        ("key 251 md", |_| {
            key_refused(&[b'k'; 251], KeyError::TooLong { len: 251 })
        }),
        ("key 251 ma", |_| {
            key_refused(&[b'k'; 251], KeyError::TooLong { len: 251 })
        }),
        ("key with space in set ('a b')", |_| invalid_byte(b"a b")),
        ("key with space in set where 2nd word numeric", |_| {
            invalid_byte(b"a 1")
        }),
        ("key with space in get: returns other key's VALUE", |o| {
            invalid_byte(b"victim foo");
            // The server answered two keys: decoded against the two keys sent.
            assert!(matches!(&o.replies[0].response, Response::Values(v) if v.len() == 2));
        }),
        ("key containing CRLF in get (INJECTION", |o| {
            invalid_byte(b"x\r\ndelete victim");
            assert_eq!(o.requests.len(), 2, "the bytes hold two commands");
        }),
        ("key containing CRLF in set", |_| invalid_byte(b"a\r\nb")),
        ("key containing bare CR", |_| invalid_byte(b"cr\rkey")),
        ("key containing control char 0x01", |_| {
            invalid_byte(b"ctl\x01key")
        }),
        ("key containing NUL", |_| invalid_byte(b"foo\x00garbage")),
        ("key containing UTF-8 (accepted)", |o| {
            assert!(Key::new("ключ").is_ok());
            assert_eq!(o.canonical, 2);
        }),
        ("key containing tab", |_| invalid_byte(b"tab\tkey")),
        ("key with DEL 0x7f", |_| invalid_byte(b"del\x7fkey")),
        ("tab is NOT a separator", |o| {
            refused_with(o, |e| matches!(e, DecodeError::Unexpected { .. }))
        }),
        ("set 2MB value (too large)", too_large_store),
        ("ms 2MB value", too_large_store),
        ("noreply with 2MB too-large value", too_large_store),
        (
            "too-large: is the error sent before the data is received?",
            |o| {
                // Refused on the line alone, before any of the data block.
                refused_with(o, |e| {
                    *e == DecodeError::ValueTooLarge {
                        len: 2_097_152,
                        max: 1024 * 1024,
                    }
                });
                too_large_store(o);
            },
        ),
        ("exactly 1048576-byte value", |o| {
            // Within the client's limit; the server's item limit is tighter.
            assert!(matches!(
                &o.replies[0].response,
                Response::Error {
                    kind: ErrorKind::Server,
                    ..
                }
            ));
        }),
        ("flags 2^32 (overflow)", |o| {
            refused_with(o, |e| {
                matches!(e, DecodeError::InvalidNumber { field: "flags", .. })
            })
        }),
        ("flags 2^32 is accepted and silently truncated", |o| {
            refused_with(o, |e| {
                matches!(e, DecodeError::InvalidNumber { field: "flags", .. })
            })
        }),
        ("length 4294967297 (wraps to 1 in 1.6.18!)", |o| {
            refused_with(o, |e| {
                *e == DecodeError::ValueTooLarge {
                    len: 4_294_967_297,
                    max: 1024 * 1024,
                }
            })
        }),
        ("ms lowercase mode (invalid)", |o| {
            // Modes are upper case only, as memcached (regression: `Ms` was read as `MS`).
            refused_with(
                o,
                |e| matches!(e, DecodeError::Unexpected { line, .. } if line.as_bytes() == b"Ms"),
            );
        }),
        ("mg opaque 32 bytes ok", |o| {
            assert!(Opaque::new(&[b'o'; 31]).is_ok());
            assert!(matches!(&o.replies[0].response, Response::Meta(m)
                if m.flags.opaque.map(|x| x.as_bytes().len()) == Some(31)));
        }),
        ("mg opaque 33 bytes", |_| {
            assert!(Opaque::new(&[b'o'; 32]).is_err())
        }),
        ("mg invalid base64", |_| {
            assert_eq!(
                Key::from_base64(Bytes::from_static(b"@@@@")),
                Err(KeyError::InvalidBase64)
            )
        }),
        ("mg base64 without padding", |_| {
            assert_eq!(
                Key::from_base64(Bytes::from_static(b"Zm9vYg")),
                Err(KeyError::InvalidBase64)
            )
        }),
        ("base64 key longer than 250 encoded chars", |_| {
            assert_eq!(Key::binary([0u8; 252]), Err(KeyError::TooLong { len: 336 }))
        }),
        ("base64 key 252 chars (187 raw bytes)", |_| {
            assert_eq!(Key::binary([0u8; 187]), Err(KeyError::TooLong { len: 252 }))
        }),
        ("base64 key 248 chars (186 raw bytes)", |o| {
            assert_eq!(Key::binary([0u8; 186]).unwrap().wire().len(), 248);
            assert_eq!(o.canonical, 2);
        }),
        ("line without newline: 2048 bytes then +1 byte", |_| {
            // The client never writes a non-get line over 2048 bytes.
            let stats = |n: usize| Request::Stats {
                args: Some(Bytes::from(vec![b'a'; n])),
            };
            assert!(stats(2048 - 8).check(&Limits::default()).is_ok());
            assert_eq!(
                stats(2048 - 7).check(&Limits::default()),
                Err(EncodeError::LineTooLong {
                    len: 2049,
                    max: 2048
                })
            );
            let keys: Vec<Key> = (0..25).map(|i| key(format!("{i:0>100}"))).collect();
            let gat = Request::Retrieve(Retrieve {
                command: RetrieveCommand::Gat(0),
                keys: keys.clone(),
            });
            assert!(matches!(
                gat.check(&Limits::default()),
                Err(EncodeError::LineTooLong { .. })
            ));
            let get = Request::Retrieve(Retrieve {
                command: RetrieveCommand::Get,
                keys,
            });
            assert!(
                get.check(&Limits::default()).is_ok(),
                "get lines may be long"
            );
        }),
        ("HTTP request line -> server closes silently", |o| {
            refused_with(o, |e| matches!(e, DecodeError::Unexpected { .. }))
        }),
        (
            "first byte 0x80 switches connection to binary protocol",
            |o| refused_with(o, |e| matches!(e, DecodeError::Unexpected { .. })),
        ),
        ("text + meta pipelined in one write", |o| {
            assert_eq!(o.requests.len(), 6);
            let kinds: Vec<&str> = o.requests.iter().map(Request::command_name).collect();
            assert_eq!(kinds, ["get", "mg", "set", "ms", "incr", "mn"]);
            assert_eq!(o.replies.len(), 6);
            assert_eq!(o.canonical, 6);
        }),
        ("pipelined mg q x3 + mn (only hit returned)", |o| {
            // Only the second quiet mg answered; the reply is attributed by its opaque.
            let answered: Vec<usize> = o.replies.iter().map(|r| r.request).collect();
            assert_eq!(answered, [1, 3]);
        }),
        ("mg all return flags", |o| {
            let Response::Meta(m) = &o.replies[0].response else {
                panic!()
            };
            assert_eq!(m.value.as_deref(), Some(&b"bar"[..]));
            assert_eq!(m.flags.size, Some(3));
            assert_eq!(m.flags.client_flags, Some(5));
            assert_eq!(m.flags.ttl, Some(-1));
            assert_eq!(m.flags.key, Some(key("foo")));
            assert_eq!(m.flags.hit, Some(true));
            assert_eq!(m.flags.opaque, Some(opaque("opaque123")));
        }),
        ("mg T-1 (negative)", |o| {
            let Response::Meta(m) = &o.replies[0].response else {
                panic!()
            };
            assert_eq!(m.flags.ttl, Some(4_294_966_879));
        }),
        ("mg, mg, quit, mg pipelined", |o| {
            assert_eq!(o.replies.len(), 3, "nothing after quit");
        }),
        ("pipelined get, quit, get", |o| {
            assert_eq!(o.replies.len(), 1, "nothing after quit");
        }),
    ]
}

#[test]
fn empirical_exchanges() {
    let records = all_records();
    let checks = checks();
    let mut used_checks = BTreeSet::new();
    let mut counts: BTreeMap<Class, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    let (mut canonical, mut requests, mut exact, mut reordered) = (0, 0, 0, 0);
    let verbose = std::env::var_os("SPEC_VERBOSE").is_some();
    for rec in &records {
        let result = catch_unwind(AssertUnwindSafe(|| {
            let outcome = process(rec);
            for (i, (label, check)) in checks.iter().enumerate() {
                if rec.label.starts_with(label) {
                    check(&outcome);
                    used_checks.insert(i);
                }
            }
            outcome
        }));
        match result {
            Ok(o) => {
                if verbose {
                    eprintln!("{:?}: {} {:?}", o.class, rec.id(), o.refused);
                }
                *counts.entry(o.class).or_default() += 1;
                canonical += o.canonical;
                requests += o.total_requests;
                exact += o.exact_replies;
                reordered += o.reordered_replies;
            }
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                failures.push(format!("{}: {msg}", rec.id()));
            }
        }
    }
    eprintln!("empirical records: {}", records.len());
    for (class, n) in &counts {
        eprintln!("  {class:?}: {n}");
    }
    eprintln!(
        "  requests decoded: {requests}, canonical (our encoding, byte for byte): {canonical}"
    );
    eprintln!("  replies re-encoded exactly: {exact}, up to meta flag order: {reordered}");
    assert!(
        failures.is_empty(),
        "{} records failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let unused: Vec<&str> = checks
        .iter()
        .enumerate()
        .filter(|(i, _)| !used_checks.contains(i))
        .map(|(_, (l, _))| *l)
        .collect();
    assert!(unused.is_empty(), "checks matching no record: {unused:?}");
    assert_eq!(
        counts.values().sum::<usize>(),
        records.len(),
        "every record classified"
    );
    for (class, min) in MIN_COUNTS {
        let n = counts.get(&class).copied().unwrap_or(0);
        assert!(n >= min, "{class:?}: {n} records, expected at least {min}");
    }
    assert!(canonical >= MIN_CANONICAL, "{canonical} canonical requests");
    assert!(exact >= MIN_REPLIES.0, "{exact} replies re-encoded exactly");
    assert!(
        exact + reordered >= MIN_REPLIES.0 + MIN_REPLIES.1,
        "{reordered} reordered"
    );
}

#[test]
fn literal_parser() {
    assert_eq!(
        Source::parse(r"b'set foo 5 0 3\r\nbar\r\n'"),
        Ok(Source::Literal(b"set foo 5 0 3\r\nbar\r\n".to_vec()))
    );
    assert_eq!(
        Source::parse(r#"b"it's \"x\" \\ \t\x00\xff""#),
        Ok(Source::Literal(b"it's \"x\" \\ \t\x00\xff".to_vec()))
    );
    assert_eq!(
        Source::parse(r"b'\'q\'\x7f'"),
        Ok(Source::Literal(b"'q'\x7f".to_vec()))
    );
    assert_eq!(
        Source::parse(r"b'aa' ...<7 more bytes>... b'aa\r\n'")
            .unwrap()
            .full(),
        Some(b"aaaaaaa\r\n".to_vec())
    );
    assert!(Source::parse(r"b'STA' ...<3 more bytes>... b'u 1'")
        .unwrap()
        .full()
        .is_none());
    assert!(Source::parse(r"b'unterminated").is_err());
    assert!(Source::parse(r"b'\xZZ'").is_err());
    assert_eq!(
        Source::parse("binary search"),
        Ok(Source::Text("binary search".into()))
    );
    assert_eq!(
        embedded_literals(r"before data: b''; after data: b'OK\r\n'"),
        vec![b"".to_vec(), b"OK\r\n".to_vec()]
    );
    assert_eq!(
        expand_placeholders(r"get <3*k> <2 x>\r\n"),
        Some(b"get kkk xx\r\n".to_vec())
    );
    assert_eq!(expand_placeholders("mg <252 chars> b v"), None);
    assert!(same_reply(
        b"VA 3 c1 kfoo s3\r\nbar\r\n",
        b"VA 3 s3 kfoo c1\r\nbar\r\n"
    ));
    assert!(same_reply(b"HD kZm9v b c1\r\n", b"HD c1 kZm9v b\r\n"));
    assert!(!same_reply(b"HD c1\r\n", b"HD c2\r\n"));
    assert!(!same_reply(b"STORED\r\n", b"NOT_STORED\r\n"));
}
