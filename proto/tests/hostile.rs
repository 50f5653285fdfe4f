//! Hostile input: random and mangled bytes, truncated and lying frames, huge declared lengths,
//! endless lines, replies that do not answer the request, and keys or tokens that try to
//! smuggle a second command. Every case ends in `Ok(None)`, a frame, or a typed error: never a
//! panic, never an allocation the limits do not allow.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod strategies;

use bytes::{Bytes, BytesMut};
use mcache_proto::meta::request::{MetaArithmetic, MetaDelete, MetaGet, MetaSet};
use mcache_proto::text::request::{Retrieve, RetrieveCommand, Store, StoreCommand};
use mcache_proto::{
    Connection, ConnectionConfig, DecodeError, EncodeError, Error, Expect, Key, KeyError, Limits,
    MetaGetFlags, Opaque, PoisonReason, Request, Response, ResponseDecoder,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use std::time::Instant;
use strategies::*;

/// A buffer that held a hostile frame may not have grown past this.
const MAX_CAPACITY: usize = 2 * 1024 * 1024;

fn key(s: &str) -> Key {
    Key::new(s).unwrap()
}

fn op(s: &str) -> Option<Opaque> {
    Some(Opaque::new(s.as_bytes()).unwrap())
}

/// Every kind of expectation, with keys and opaques the garbage vocabulary can hit.
fn all_expects() -> Vec<Expect> {
    let mut v = vec![
        Expect::Values {
            keys: vec![key("foo"), key("bar"), key("foo")],
            cas: false,
        },
        Expect::Values {
            keys: vec![key("foo")],
            cas: true,
        },
        Expect::Storage,
        Expect::Delete,
        Expect::Arithmetic,
        Expect::Touch,
        Expect::Ok,
        Expect::Version,
        Expect::Stats,
        Expect::MetaNoop,
        Expect::MetaDebug,
    ];
    for command in ["mg", "ms", "md", "ma"] {
        for opaque in [None, op("1")] {
            v.push(Expect::Meta {
                command,
                key: key("foo"),
                opaque,
                value: matches!(command, "mg" | "ma"),
            });
        }
    }
    v.push(Expect::Meta {
        command: "mg",
        key: Key::binary(b"foo").unwrap(),
        opaque: None,
        value: true,
    });
    v
}

fn expect() -> impl Strategy<Value = Expect> {
    prop_oneof![select(all_expects()), any_expect()]
}

/// Random bytes, protocol-shaped garbage, and valid frames with a byte changed, inserted
/// or removed.
fn hostile_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => vec(any::<u8>(), 0..256),
        4 => garbage(),
        2 => (response(), any::<prop::sample::Index>(), any::<u8>(), 0..3u8)
            .prop_map(|((r, _), at, b, how)| mutate(r.to_bytes(), at, b, how)),
        2 => (request(), any::<prop::sample::Index>(), any::<u8>(), 0..3u8)
            .prop_map(|(r, at, b, how)| mutate(encode_request(&r), at, b, how)),
    ]
}

fn mutate(mut bytes: Vec<u8>, at: prop::sample::Index, b: u8, how: u8) -> Vec<u8> {
    if bytes.is_empty() {
        return vec![b];
    }
    let i = at.index(bytes.len());
    match how {
        0 => bytes[i] = b,
        1 => bytes.insert(i, b),
        _ => {
            bytes.remove(i);
        }
    }
    bytes
}

/// Decodes replies until the decoder needs more bytes or fails. Checks that every reply
/// consumed bytes and re-encodes to bytes that decode to the same reply.
fn drain_responses(expect: &Expect, bytes: &[u8]) -> Result<Vec<Response>, DecodeError> {
    let mut dec = ResponseDecoder::default();
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    loop {
        let before = buf.len();
        let r = dec.decode(expect, &mut buf);
        assert!(buf.capacity() < MAX_CAPACITY, "capacity {}", buf.capacity());
        match r {
            Ok(Some(resp)) => {
                assert!(buf.len() < before, "a reply consumed nothing: {resp:?}");
                let again = resp.to_bytes();
                let mut b2 = BytesMut::from(&again[..]);
                assert_eq!(
                    ResponseDecoder::default().decode(expect, &mut b2),
                    Ok(Some(resp.clone())),
                    "decoded reply does not survive re-encoding as {:?}",
                    again.escape_ascii().to_string()
                );
                assert!(b2.is_empty());
                out.push(resp);
            }
            Ok(None) => return Ok(out),
            Err(e) => return Err(e),
        }
    }
}

/// Decodes requests until more bytes are needed or decoding fails; checks as above.
fn drain_requests(bytes: &[u8], limits: &Limits) -> Result<Vec<Request>, DecodeError> {
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    loop {
        let before = buf.len();
        let r = Request::decode(&mut buf, limits);
        assert!(buf.capacity() < MAX_CAPACITY, "capacity {}", buf.capacity());
        match r {
            Ok(Some(req)) => {
                assert!(buf.len() < before, "a request consumed nothing: {req:?}");
                if let Ok(again) = req.to_bytes(&Limits::default()) {
                    let mut b2 = BytesMut::from(&again[..]);
                    assert_eq!(
                        Request::decode(&mut b2, &Limits::server()),
                        Ok(Some(req.clone())),
                        "decoded request does not survive re-encoding as {:?}",
                        again.escape_ascii().to_string()
                    );
                    assert!(b2.is_empty());
                }
                out.push(req);
            }
            Ok(None) => {
                assert_eq!(buf.len(), before, "bytes consumed without a request");
                return Ok(out);
            }
            Err(e) => return Err(e),
        }
    }
}

proptest! {
    #![proptest_config(config(2000))]

    /// No input makes the response decoder panic, loop, or over-allocate; what it accepts is
    /// canonical.
    #[test]
    fn responses_from_hostile_bytes(bytes in hostile_bytes(), expect in expect()) {
        let _ = drain_responses(&expect, &bytes);
    }

    /// Same for the request decoder, with the client's and the server's limits.
    #[test]
    fn requests_from_hostile_bytes(bytes in hostile_bytes()) {
        let _ = drain_requests(&bytes, &Limits::server());
        let _ = drain_requests(&bytes, &Limits { max_line_len: 64, max_value_len: 16, max_entries: 4, max_reply_len: 32 });
    }

    /// The same, fed in random chunks to one decoder (state kept between calls).
    #[test]
    fn responses_from_hostile_chunks(bytes in hostile_bytes(), expect in expect(), sizes in vec(1usize..16, 1..6)) {
        let mut dec = ResponseDecoder::default();
        let mut buf = BytesMut::new();
        'feed: for c in chunks(&bytes, &sizes) {
            buf.extend_from_slice(c);
            loop {
                let before = buf.len();
                match dec.decode(&expect, &mut buf) {
                    Ok(Some(_)) => prop_assert!(buf.len() < before),
                    Ok(None) => break,
                    Err(_) => break 'feed,
                }
            }
            prop_assert!(buf.capacity() < MAX_CAPACITY);
        }
    }

    /// A valid frame cut short and followed by garbage: a frame, `None` or a typed error.
    #[test]
    fn truncated_frames_then_garbage(
        (resp, expect) in response(),
        req in request(),
        cut in any::<prop::sample::Index>(),
        tail in garbage(),
    ) {
        let bytes = resp.to_bytes();
        let mut b = bytes[..cut.index(bytes.len())].to_vec();
        prop_assert_eq!(drain_responses(&expect, &b), Ok(vec![]));
        b.extend_from_slice(&tail);
        let _ = drain_responses(&expect, &b);

        let bytes = encode_request(&req);
        let mut b = bytes[..cut.index(bytes.len())].to_vec();
        prop_assert_eq!(drain_requests(&b, &Limits::server()), Ok(vec![]));
        b.extend_from_slice(&tail);
        let _ = drain_requests(&b, &Limits::server());
    }

    /// A data block longer or shorter than declared is a typed error, for `VALUE`, `VA`,
    /// `set` and `ms`.
    #[test]
    fn wrong_data_lengths(data in vec(b'a'..=b'z', 0..40), declared in 0usize..48) {
        prop_assume!(declared != data.len());
        let padding = vec![b'x'; declared + 2];
        let frame = |head: &str| {
            let mut f = head.replace("LEN", &declared.to_string()).into_bytes();
            f.extend_from_slice(&data);
            f.extend_from_slice(b"\r\n");
            f.extend_from_slice(&padding);
            f
        };
        let values = Expect::Values { keys: vec![key("foo")], cas: false };
        prop_assert!(bad(drain_responses(&values, &frame("VALUE foo 0 LEN\r\n"))));
        let mg = Expect::Meta { command: "mg", key: key("foo"), opaque: None, value: true };
        prop_assert!(bad(drain_responses(&mg, &frame("VA LEN f1\r\n"))));
        prop_assert!(bad(drain_requests(&frame("set foo 0 0 LEN\r\n"), &Limits::server())));
        prop_assert!(bad(drain_requests(&frame("ms foo LEN T0\r\n"), &Limits::server())));
    }

    /// No key given by a user can add a command: `Key::new` refuses it, or every command
    /// carrying it decodes back to exactly that one command.
    #[test]
    fn keys_cannot_inject(raw in prop_oneof![
        vec(any::<u8>(), 0..300),
        vec(select(vec![b'a', b' ', b'\r', b'\n', b'\t', 0, 0x7f, 0x80, b'0']), 0..20),
        garbage(),
    ]) {
        let valid = !raw.is_empty()
            && raw.len() <= 250
            && raw.iter().all(|&b| b > b' ' && b != 0x7f);
        let k = Key::new(&raw);
        prop_assert_eq!(k.is_ok(), valid, "{:?}", raw.escape_ascii().to_string());
        prop_assert_eq!(Key::from_bytes(Bytes::from(raw.clone())).is_ok(), valid);
        if let Ok(k) = k {
            for req in carrying(&k) {
                assert_single(&req);
            }
        }
        if let Ok(b) = Key::binary(&raw) {
            prop_assert_eq!(b.decoded(), raw.clone());
            prop_assert!(b.wire().len() <= 250);
            for req in carrying(&b).into_iter().filter(|r| r.command_name().starts_with('m')) {
                assert_single(&req);
            }
        } else {
            prop_assert!(raw.is_empty() || raw.len() > 186);
        }
    }

    /// Nor can an opaque, or `stats` arguments.
    #[test]
    fn tokens_cannot_inject(raw in prop_oneof![vec(any::<u8>(), 0..40), garbage()]) {
        if let Ok(o) = Opaque::new(&raw) {
            let flags = MetaGetFlags { opaque: Some(o), value: true, ..Default::default() };
            assert_single(&Request::MetaGet(Box::new(MetaGet { key: key("foo"), flags })));
        }
        let stats = Request::Stats { args: Some(Bytes::from(raw.clone())) };
        let mut out = Vec::new();
        match stats.encode(&mut out, &Limits::default()) {
            Ok(()) => assert_single(&stats),
            Err(e) => {
                prop_assert!(out.is_empty());
                assert!(matches!(e, EncodeError::InvalidToken { .. } | EncodeError::LineTooLong { .. }), "{e:?}");
            }
        }
    }
}

fn bad<T>(r: Result<T, DecodeError>) -> bool {
    matches!(r, Err(DecodeError::BadDataTerminator { .. }))
}

/// Every command that can carry `k`.
fn carrying(k: &Key) -> Vec<Request> {
    let v = Bytes::from_static(b"v\r\nmn\r\n");
    vec![
        Request::Retrieve(Retrieve {
            command: RetrieveCommand::Get,
            keys: vec![k.clone(), k.clone()],
        }),
        Request::Retrieve(Retrieve {
            command: RetrieveCommand::Gat(5),
            keys: vec![k.clone()],
        }),
        Request::Store(Store {
            command: StoreCommand::Cas(3),
            key: k.clone(),
            flags: 1,
            exptime: 2,
            value: v.clone(),
            noreply: true,
        }),
        Request::Delete {
            key: k.clone(),
            noreply: false,
        },
        Request::Incr {
            key: k.clone(),
            delta: 1,
            noreply: true,
        },
        Request::Touch {
            key: k.clone(),
            exptime: 1,
            noreply: false,
        },
        Request::MetaGet(Box::new(MetaGet::new(k.clone()))),
        Request::MetaSet(Box::new(MetaSet::new(k.clone(), v))),
        Request::MetaDelete(Box::new(MetaDelete::new(k.clone()))),
        Request::MetaArithmetic(Box::new(MetaArithmetic::new(k.clone()))),
        Request::MetaDebug { key: k.clone() },
    ]
}

/// `req` encodes to exactly one request line (plus its data block) that decodes back to it.
fn assert_single(req: &Request) {
    let bytes = encode_request(req);
    let mut buf = BytesMut::from(&bytes[..]);
    assert_eq!(
        Request::decode(&mut buf, &Limits::server()),
        Ok(Some(req.clone())),
        "{:?}",
        bytes.escape_ascii().to_string()
    );
    assert!(buf.is_empty(), "a second command: {buf:?}");
    let line_end = bytes.iter().position(|&b| b == b'\n').unwrap();
    assert_eq!(bytes[line_end - 1], b'\r');
    assert!(
        !bytes[..line_end - 1].contains(&b'\r'),
        "a CR inside the line"
    );
}

// ---------------------------------------------------------------------------------------------
// Fixed cases

fn decode_one(expect: &Expect, bytes: &[u8]) -> (Result<Option<Response>, DecodeError>, usize) {
    let mut buf = BytesMut::from(bytes);
    let r = ResponseDecoder::default().decode(expect, &mut buf);
    (r, buf.capacity())
}

fn decode_request(bytes: &[u8]) -> (Result<Option<Request>, DecodeError>, usize) {
    let mut buf = BytesMut::from(bytes);
    let r = Request::decode(&mut buf, &Limits::server());
    (r, buf.capacity())
}

#[test]
fn huge_declared_lengths_fail_before_allocating() {
    let values = Expect::Values {
        keys: vec![key("foo")],
        cas: false,
    };
    let mg = Expect::Meta {
        command: "mg",
        key: key("foo"),
        opaque: None,
        value: true,
    };
    let cases: [(&Expect, &[u8]); 6] = [
        (&values, b"VALUE foo 0 4294967296\r\n"),
        (&values, b"VALUE foo 0 1048577\r\n"),
        (&values, b"VALUE foo 0 18446744073709551615\r\n"),
        (&mg, b"VA 999999999999\r\n"),
        (&mg, b"VA 1048577 f1\r\n"),
        (&mg, b"VA 18446744073709551615\r\n"),
    ];
    for (expect, bytes) in cases {
        let (r, cap) = decode_one(expect, bytes);
        assert!(
            matches!(r, Err(DecodeError::ValueTooLarge { .. })),
            "{}: {r:?}",
            bytes.escape_ascii()
        );
        assert!(
            cap < MAX_CAPACITY,
            "{}: capacity {cap}",
            bytes.escape_ascii()
        );
    }
    for bytes in [
        &b"set foo 0 0 4294967296\r\n"[..],
        b"cas foo 0 0 99999999999 1\r\n",
        b"ms foo 999999999999\r\n",
        b"ms foo 1048577 T0\r\n",
    ] {
        let (r, cap) = decode_request(bytes);
        assert!(
            matches!(r, Err(DecodeError::ValueTooLarge { .. })),
            "{}: {r:?}",
            bytes.escape_ascii()
        );
        assert!(cap < MAX_CAPACITY);
    }
    // At the limit: waits for the block, with room reserved for no more than it.
    let (r, cap) = decode_one(&values, b"VALUE foo 0 1048576\r\n");
    assert_eq!(r, Ok(None));
    assert!(cap < MAX_CAPACITY);
    // A number too long to be a length is a number error, not an allocation.
    let (r, _) = decode_one(&mg, b"VA 99999999999999999999999\r\n");
    assert!(matches!(r, Err(DecodeError::InvalidNumber { .. })), "{r:?}");
}

#[test]
fn endless_lines_fail_at_the_limit() {
    let limits = Limits::default();
    let long = vec![b'a'; limits.max_line_len];
    for expect in all_expects() {
        // Just under the limit: more bytes may still end the line.
        let (r, _) = decode_one(&expect, &long[..limits.max_line_len - 1]);
        assert_eq!(r, Ok(None), "{expect:?}");
        let (r, _) = decode_one(&expect, &long);
        assert_eq!(
            r,
            Err(DecodeError::LineTooLong {
                max: limits.max_line_len
            }),
            "{expect:?}"
        );
        // A line that ends, but too late.
        let mut ended = long.clone();
        ended.extend_from_slice(b"\r\n");
        let (r, _) = decode_one(&expect, &ended);
        assert!(
            matches!(r, Err(DecodeError::LineTooLong { .. })),
            "{expect:?}"
        );
    }
    let small = Limits {
        max_line_len: 64,
        ..Limits::default()
    };
    let mut buf = BytesMut::from(&[b'g'; 64][..]);
    assert_eq!(
        Request::decode(&mut buf, &small),
        Err(DecodeError::LineTooLong { max: 64 })
    );
    let mut buf = BytesMut::from(&vec![b' '; Limits::server().max_line_len][..]);
    assert!(matches!(
        Request::decode(&mut buf, &Limits::server()),
        Err(DecodeError::LineTooLong { .. })
    ));
}

/// A data block may be far longer than a line: only lines are bounded by `max_line_len`.
#[test]
fn long_values_are_not_long_lines() {
    let data = vec![b'v'; 100_000];
    let mut bytes = b"VALUE foo 0 100000\r\n".to_vec();
    bytes.extend_from_slice(&data);
    bytes.extend_from_slice(b"\r\nEND\r\n");
    let expect = Expect::Values {
        keys: vec![key("foo")],
        cas: false,
    };
    let (got, rest) = decode_responses(&chunks(&bytes, &[4096]), &[expect]).unwrap();
    assert!(rest.is_empty());
    assert!(matches!(&got[..], [Response::Values(v)] if v[0].data.len() == 100_000));
    let mut req = b"set foo 0 0 100000\r\n".to_vec();
    req.extend_from_slice(&data);
    req.extend_from_slice(b"\r\n");
    let (got, rest) = decode_requests(&chunks(&req, &[4096])).unwrap();
    assert!(rest.is_empty());
    assert_eq!(got.len(), 1);
}

#[test]
fn missing_or_bare_line_ends() {
    for expect in all_expects() {
        for bytes in [&b"STORED"[..], b"END", b"VALUE foo 0 1", b"HD", b"MN\r"] {
            assert_eq!(decode_one(&expect, bytes).0, Ok(None), "{expect:?}");
        }
        for bytes in [
            &b"STORED\n"[..],
            b"END\n",
            b"\n",
            b"HD\n",
            b"MN\n",
            b"VERSION 1\n",
            b"ERROR\n",
        ] {
            assert!(
                matches!(
                    decode_one(&expect, bytes).0,
                    Err(DecodeError::Unexpected { .. })
                ),
                "{expect:?} {}",
                bytes.escape_ascii()
            );
        }
    }
    // A data block ended by a bare LF, or by nothing.
    let values = Expect::Values {
        keys: vec![key("foo")],
        cas: false,
    };
    assert!(matches!(
        decode_one(&values, b"VALUE foo 0 3\r\nabc\nEND\r\n").0,
        Err(DecodeError::BadDataTerminator { .. })
    ));
    assert!(matches!(
        decode_one(&values, b"VALUE foo 0 3\r\nabcEND\r\n").0,
        Err(DecodeError::BadDataTerminator { .. })
    ));
    for bytes in [&b"get foo\n"[..], b"set foo 0 0 1\nx\r\n", b"\n"] {
        assert!(
            matches!(decode_request(bytes).0, Err(DecodeError::Unexpected { .. })),
            "{}",
            bytes.escape_ascii()
        );
    }
    assert!(matches!(
        decode_request(b"set foo 0 0 1\r\nx\n\r\n").0,
        Err(DecodeError::BadDataTerminator { .. })
    ));
}

#[test]
fn bad_numbers() {
    let values = Expect::Values {
        keys: vec![key("foo")],
        cas: false,
    };
    let gets = Expect::Values {
        keys: vec![key("foo")],
        cas: true,
    };
    let mg = Expect::Meta {
        command: "mg",
        key: key("foo"),
        opaque: None,
        value: true,
    };
    let cases: Vec<(&Expect, &[u8])> = vec![
        (&values, b"VALUE foo abc 3\r\nbar\r\nEND\r\n"),
        (&values, b"VALUE foo -1 3\r\nbar\r\nEND\r\n"),
        (&values, b"VALUE foo 4294967296 3\r\nbar\r\nEND\r\n"),
        (&values, b"VALUE foo 0 -3\r\nbar\r\nEND\r\n"),
        (&values, b"VALUE foo 0 +3\r\nbar\r\nEND\r\n"),
        (&values, b"VALUE foo 0 0x3\r\nbar\r\nEND\r\n"),
        (&gets, b"VALUE foo 0 3 -1\r\nbar\r\nEND\r\n"),
        (
            &gets,
            b"VALUE foo 0 3 18446744073709551616\r\nbar\r\nEND\r\n",
        ),
        (&Expect::Arithmetic, b"-5\r\n"),
        (&Expect::Arithmetic, b"18446744073709551616\r\n"),
        (&Expect::Arithmetic, b"12ab\r\n"),
        (&Expect::Arithmetic, b"\r\n"),
        (&Expect::Arithmetic, b" 1\r\n"),
        (&mg, b"VA abc\r\nbar\r\n"),
        (&mg, b"VA -1\r\n"),
        (&mg, b"HD c-1\r\n"),
        (&mg, b"HD f4294967296\r\n"),
        (&mg, b"HD t9223372036854775808\r\n"),
        (&mg, b"HD t-9223372036854775809\r\n"),
        (&mg, b"HD l\r\n"),
        (&mg, b"HD s1x\r\n"),
    ];
    for (expect, bytes) in cases {
        let r = decode_one(expect, bytes).0;
        assert!(
            matches!(r, Err(DecodeError::InvalidNumber { .. })),
            "{}: {r:?}",
            bytes.escape_ascii()
        );
    }
    for bytes in [
        &b"set foo abc 0 1\r\nx\r\n"[..],
        b"set foo 0 0 -1\r\n",
        b"set foo 4294967296 0 1\r\nx\r\n",
        b"set foo 0 2147483648 1\r\nx\r\n",
        b"cas foo 0 0 1 -1\r\nx\r\n",
        b"incr foo -1\r\n",
        b"incr foo 18446744073709551616\r\n",
        b"touch foo abc\r\n",
        b"gat abc foo\r\n",
        b"flush_all abc\r\n",
        b"verbosity -1\r\n",
        b"mg foo T2147483648\r\n",
        b"ma foo Dabc\r\n",
        b"ms foo 1 F4294967296\r\nx\r\n",
    ] {
        let r = decode_request(bytes).0;
        assert!(
            matches!(r, Err(DecodeError::InvalidNumber { .. })),
            "{}: {r:?}",
            bytes.escape_ascii()
        );
    }
}

#[test]
fn values_that_do_not_answer_the_keys() {
    let mismatch = |keys: &[&str], bytes: &[u8]| {
        let expect = Expect::Values {
            keys: keys.iter().map(|k| key(k)).collect(),
            cas: false,
        };
        let r = decode_one(&expect, bytes).0;
        assert!(
            matches!(r, Err(DecodeError::Mismatch { .. })),
            "{keys:?} {}: {r:?}",
            bytes.escape_ascii()
        );
    };
    // More VALUE lines than keys.
    mismatch(
        &["foo"],
        b"VALUE foo 0 1\r\na\r\nVALUE foo 0 1\r\na\r\nEND\r\n",
    );
    // A key not asked for.
    mismatch(&["foo"], b"VALUE bar 0 1\r\na\r\nEND\r\n");
    mismatch(&["foo"], b"VALUE fo 0 1\r\na\r\nEND\r\n");
    mismatch(&["foo"], b"VALUE Zm9v 0 1\r\na\r\nEND\r\n");
    // Out of order.
    mismatch(
        &["foo", "bar"],
        b"VALUE bar 0 1\r\na\r\nVALUE foo 0 1\r\na\r\nEND\r\n",
    );
    // Split inside the second block: still detected, still not a panic.
    let expect = Expect::Values {
        keys: vec![key("foo"), key("bar")],
        cas: false,
    };
    let bytes = b"VALUE bar 0 1\r\na\r\nVALUE foo 0 1\r\na\r\nEND\r\n";
    assert!(matches!(
        decode_responses(&chunks(bytes, &[1]), &[expect]),
        Err(DecodeError::Mismatch { .. })
    ));
    // A cas where none was asked for, or none where one was.
    let r = decode_one(
        &Expect::Values {
            keys: vec![key("foo")],
            cas: false,
        },
        b"VALUE foo 0 1 5\r\na\r\nEND\r\n",
    )
    .0;
    assert!(matches!(r, Err(DecodeError::Unexpected { .. })), "{r:?}");
    let r = decode_one(
        &Expect::Values {
            keys: vec![key("foo")],
            cas: true,
        },
        b"VALUE foo 0 1\r\na\r\nEND\r\n",
    )
    .0;
    assert!(matches!(r, Err(DecodeError::Unexpected { .. })), "{r:?}");
}

#[test]
fn meta_replies_that_do_not_answer_the_request() {
    let expect = |command, opaque: Option<Opaque>| Expect::Meta {
        command,
        key: key("foo"),
        opaque,
        value: matches!(command, "mg" | "ma"),
    };
    let mismatch: [(Expect, &[u8]); 7] = [
        (expect("mg", op("1")), b"HD O2\r\n"),
        (expect("mg", op("1")), b"VA 1 O12\r\nx\r\n"),
        (expect("mg", None), b"HD O1\r\n"),
        (expect("mg", op("1")), b"EN O1 kbar\r\n"),
        (expect("ms", None), b"HD kfo\r\n"),
        (expect("md", None), b"NF kYmFy b\r\n"),
        (expect("ma", op("7")), b"VA 1 kfoo O8\r\n1\r\n"),
    ];
    for (e, bytes) in mismatch {
        let r = decode_one(&e, bytes).0;
        assert!(
            matches!(r, Err(DecodeError::Mismatch { .. })),
            "{}: {r:?}",
            bytes.escape_ascii()
        );
    }
    // The same key in its binary form matches.
    assert!(matches!(
        decode_one(&expect("mg", None), b"HD kZm9v b\r\n").0,
        Ok(Some(_))
    ));
    let unexpected: [(Expect, &[u8]); 6] = [
        (expect("ms", None), b"VA 1\r\nx\r\n"),
        (expect("md", None), b"VA 1\r\nx\r\n"),
        (expect("md", None), b"EN\r\n"),
        (expect("mg", None), b"XX\r\n"),
        (expect("mg", None), b"HD c1 c2\r\n"),
        (expect("mg", None), b"HD b\r\n"),
    ];
    for (e, bytes) in unexpected {
        let r = decode_one(&e, bytes).0;
        assert!(
            matches!(r, Err(DecodeError::Unexpected { .. })),
            "{}: {r:?}",
            bytes.escape_ascii()
        );
    }
}

#[test]
fn too_many_stats_lines() {
    let limits = Limits {
        max_entries: 8,
        ..Limits::default()
    };
    let stats = |n: usize, line: &str| {
        let mut b = Vec::new();
        for i in 0..n {
            b.extend_from_slice(line.replace("{}", &i.to_string()).as_bytes());
        }
        b.extend_from_slice(b"END\r\n");
        b
    };
    for line in ["STAT s{} 1\r\n", "ITEM k{} [1 b; 0 s]\r\n"] {
        let mut dec = ResponseDecoder::new(limits);
        let mut buf = BytesMut::from(&stats(8, line)[..]);
        assert!(matches!(
            dec.decode(&Expect::Stats, &mut buf),
            Ok(Some(Response::Stats(_) | Response::Lines(_)))
        ));
        let mut dec = ResponseDecoder::new(limits);
        let mut buf = BytesMut::from(&stats(9, line)[..]);
        assert_eq!(
            dec.decode(&Expect::Stats, &mut buf),
            Err(DecodeError::TooManyEntries { max: 8 })
        );
        // Fed a line at a time, too: the count is kept across calls.
        let mut dec = ResponseDecoder::new(limits);
        let all = stats(9, line);
        let mut buf = BytesMut::new();
        let mut result = Ok(None);
        for c in chunks(&all, &[3]) {
            buf.extend_from_slice(c);
            result = dec.decode(&Expect::Stats, &mut buf);
            if result != Ok(None) {
                break;
            }
        }
        assert_eq!(result, Err(DecodeError::TooManyEntries { max: 8 }));
    }
    // Mixed kinds of lines are refused.
    let r = decode_one(&Expect::Stats, b"STAT a 1\r\nITEM x\r\nEND\r\n").0;
    assert!(matches!(r, Err(DecodeError::Unexpected { .. })), "{r:?}");
}

#[test]
fn errors_from_the_decoder_leave_it_reusable() {
    let mut dec = ResponseDecoder::default();
    let expect = Expect::Values {
        keys: vec![key("foo"), key("bar")],
        cas: false,
    };
    let mut buf = BytesMut::from(&b"VALUE foo 0 1\r\na\r\nVALUE zzz 0 1\r\n"[..]);
    assert!(dec.decode(&expect, &mut buf).is_err());
    // After the error the partial reply is gone: a fresh reply decodes from scratch.
    let mut buf = BytesMut::from(&b"VALUE bar 0 1\r\nb\r\nEND\r\n"[..]);
    let Ok(Some(Response::Values(v))) = dec.decode(&expect, &mut buf) else {
        panic!()
    };
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].key, key("bar"));
}

#[test]
fn keys_that_would_inject() {
    for raw in [
        &b"a\r\nflush_all"[..],
        b"x\r\ndelete victim",
        b"victim foo",
        b"a 1",
        b"a\nb",
        b"a\rb",
        b"a\tb",
        b"\x00",
        b"\x7f",
        b"",
    ] {
        assert!(Key::new(raw).is_err(), "{}", raw.escape_ascii());
    }
    assert_eq!(Key::new([b'k'; 251]), Err(KeyError::TooLong { len: 251 }));
    // Tokens that would break a line are refused too.
    assert!(Opaque::new(b"a b").is_err());
    assert!(Opaque::new(b"a\r\nmn").is_err());
    assert!(Request::Stats {
        args: Some(Bytes::from_static(b"items\r\nflush_all"))
    }
    .to_bytes(&Limits::default())
    .is_err());
    assert!(Request::Stats {
        args: Some(Bytes::from_static(b""))
    }
    .to_bytes(&Limits::default())
    .is_err());
}

// ---------------------------------------------------------------------------------------------
// Bytes per reply (`Limits::max_reply_len`)

const MIB: usize = 1024 * 1024;

/// `STAT s{i} vvv...` lines of exactly `len` bytes, `\r\n` included.
fn stat_line(i: usize, len: usize) -> Vec<u8> {
    let mut line = format!("STAT s{i:06} ").into_bytes();
    line.resize(len - 2, b'v');
    line.extend_from_slice(b"\r\n");
    line
}

#[test]
fn a_huge_stats_reply_is_refused_once_past_max_reply_len() {
    let limits = Limits {
        max_reply_len: MIB,
        ..Limits::default()
    };
    let line_len = 8 * 1024;
    // What one line adds to the reply: its name and value.
    let entry = line_len - "STAT ".len() - " ".len() - "\r\n".len();
    let fits = MIB / entry;
    // The decoder alone, fed a line at a time: it fails on the line that would pass the
    // limit, having kept no more than the limit.
    let mut dec = ResponseDecoder::new(limits);
    let mut buf = BytesMut::new();
    let mut fed = 0;
    let mut result = Ok(None);
    for i in 0..99_990 {
        let line = stat_line(i, line_len);
        fed += line.len();
        buf.extend_from_slice(&line);
        result = dec.decode(&Expect::Stats, &mut buf);
        if result != Ok(None) {
            break;
        }
    }
    assert_eq!(result, Err(DecodeError::ReplyTooLarge { max: MIB }));
    assert_eq!(
        fed,
        (fits + 1) * line_len,
        "refused at the first line past the limit"
    );
    // The same through a connection, fed in 64 KiB reads: poisoned with the typed error
    // within a read of the limit, every caller told.
    let mut conn = Connection::new(ConnectionConfig {
        limits,
        ..ConnectionConfig::default()
    });
    let id = conn.send(Request::Stats { args: None }).unwrap();
    let out = conn.transmit().len();
    conn.advance_transmit(out, Instant::now());
    let reply: Vec<u8> = (0..200).flat_map(|i| stat_line(i, line_len)).collect();
    let mut fed = 0;
    for chunk in reply.chunks(64 * 1024) {
        fed += chunk.len();
        conn.receive(chunk, Instant::now());
        if conn.poisoned().is_some() {
            break;
        }
    }
    let reason = PoisonReason::Malformed(DecodeError::ReplyTooLarge { max: MIB });
    assert_eq!(conn.poisoned(), Some(&reason));
    assert!(fed <= MIB + line_len + 64 * 1024, "fed {fed} bytes");
    assert_eq!(
        conn.poll_response(),
        Some((id, Err(Error::Poisoned(reason))))
    );
    // Under the limit (exactly at it), the reply decodes as before.
    let exact = Limits {
        max_reply_len: fits * entry,
        ..Limits::default()
    };
    let mut dec = ResponseDecoder::new(exact);
    let mut buf = BytesMut::new();
    for i in 0..fits {
        buf.extend_from_slice(&stat_line(i, line_len));
    }
    buf.extend_from_slice(b"END\r\n");
    match dec.decode(&Expect::Stats, &mut buf) {
        Ok(Some(Response::Stats(stats))) => assert_eq!(stats.len(), fits),
        other => panic!("{other:?}"),
    }
    // Other stats listings (`stats cachedump`) count their lines the same way.
    let lines = Limits {
        max_reply_len: 100,
        ..Limits::default()
    };
    let mut dec = ResponseDecoder::new(lines);
    let item = format!("ITEM {} [1 b; 0 s]\r\n", "k".repeat(30)); // 46 bytes a line
    let mut buf = BytesMut::from(item.repeat(2).as_bytes());
    assert_eq!(dec.decode(&Expect::Stats, &mut buf), Ok(None));
    buf.extend_from_slice(item.as_bytes());
    assert_eq!(
        dec.decode(&Expect::Stats, &mut buf),
        Err(DecodeError::ReplyTooLarge { max: 100 })
    );
}

#[test]
fn a_multi_get_past_max_reply_len_is_refused_at_the_header_of_the_value_that_passes_it() {
    // Each value: 1-byte key + 40 bytes of data = 41; two fit in 100, the third does not.
    let limits = Limits {
        max_reply_len: 100,
        ..Limits::default()
    };
    let expect = Expect::Values {
        keys: vec![key("a"), key("b"), key("c")],
        cas: false,
    };
    let data = "x".repeat(40);
    let frame = |k: &str| format!("VALUE {k} 0 40\r\n{data}\r\n");
    let mut dec = ResponseDecoder::new(limits);
    let mut buf = BytesMut::from(format!("{}{}", frame("a"), frame("b")).as_bytes());
    assert_eq!(dec.decode(&expect, &mut buf), Ok(None));
    assert!(buf.is_empty(), "two values taken");
    // The third header alone is refused: its data is never waited for.
    buf.extend_from_slice(b"VALUE c 0 40\r\n");
    assert_eq!(
        dec.decode(&expect, &mut buf),
        Err(DecodeError::ReplyTooLarge { max: 100 })
    );
    // A value whose declared length alone passes the limit (though under max_value_len)
    // fails at its header.
    let mut dec = ResponseDecoder::new(limits);
    let mut buf = BytesMut::from(&b"VALUE a 0 100\r\n"[..]);
    assert_eq!(
        dec.decode(&expect, &mut buf),
        Err(DecodeError::ReplyTooLarge { max: 100 })
    );
    // So does a meta value.
    let mg = Expect::Meta {
        command: "mg",
        key: key("a"),
        opaque: None,
        value: true,
    };
    let mut dec = ResponseDecoder::new(limits);
    let mut buf = BytesMut::from(&b"VA 101\r\n"[..]);
    assert_eq!(
        dec.decode(&mg, &mut buf),
        Err(DecodeError::ReplyTooLarge { max: 100 })
    );
    // Under the limit: decoded as before, and the count starts again with the next reply.
    let fits = Limits {
        max_reply_len: 82,
        ..Limits::default()
    };
    let mut dec = ResponseDecoder::new(fits);
    for _ in 0..3 {
        let mut buf = BytesMut::from(format!("{}{}END\r\n", frame("a"), frame("c")).as_bytes());
        match dec.decode(&expect, &mut buf) {
            Ok(Some(Response::Values(v))) => {
                assert_eq!(v.len(), 2);
                assert!(v.iter().all(|v| v.data == data.as_bytes()));
            }
            other => panic!("{other:?}"),
        }
    }
    let mut dec = ResponseDecoder::new(fits);
    let mut buf = BytesMut::from(&b"VA 82\r\n"[..]);
    buf.extend_from_slice(&[b'v'; 82]);
    buf.extend_from_slice(b"\r\n");
    assert!(matches!(
        dec.decode(&mg, &mut buf),
        Ok(Some(Response::Meta(_)))
    ));
}
