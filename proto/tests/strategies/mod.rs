//! Proptest strategies and decoding harnesses shared by the property tests (`roundtrip.rs`,
//! `hostile.rs`, `connection_model.rs`). Each test binary uses only part of it.
#![allow(dead_code, unreachable_pub)]

use bytes::{Bytes, BytesMut};
use mcache_proto::meta::request::{MetaArithmetic, MetaDelete, MetaGet, MetaSet};
use mcache_proto::text::request::{Retrieve, RetrieveCommand, Store, StoreCommand};
use mcache_proto::{
    DecodeError, ErrorKind, Expect, Key, Limits, MetaArithmeticFlags, MetaArithmeticMode,
    MetaDeleteFlags, MetaGetFlags, MetaResponse, MetaReturnFlags, MetaSetFlags, MetaSetMode,
    MetaStatus, Opaque, Request, Response, ResponseDecoder, Stat, Value,
};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;

/// A fixed number of cases, and no regression files written on failure (failures are turned
/// into named regression tests instead).
pub fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Bytes

/// A byte allowed in a text key: printable ASCII, or a byte >= 0x80 now and then.
pub fn key_byte() -> impl Strategy<Value = u8> {
    prop_oneof![8 => 0x21u8..=0x7E, 1 => 0x80u8..=0xFF]
}

/// A non-empty token (no space, control byte or DEL).
pub fn token(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(key_byte(), 1..=max)
}

/// Bytes of a line (anything but `\n`), possibly empty.
pub fn line_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>().prop_filter("no LF", |&b| b != b'\n'), 0..=max)
}

/// A value: random bytes mixed with line ends and protocol-looking fragments.
pub fn value_bytes() -> impl Strategy<Value = Bytes> {
    let piece = prop_oneof![
        4 => vec(any::<u8>(), 0..16),
        1 => Just(b"\r\n".to_vec()),
        1 => Just(b"\n".to_vec()),
        1 => Just(b"\r".to_vec()),
        1 => Just(b"END\r\n".to_vec()),
        1 => Just(b"VALUE foo 0 1\r\n".to_vec()),
        1 => Just(b"mn\r\n".to_vec()),
        1 => Just(b"HD O1\r\n".to_vec()),
    ];
    prop_oneof![
        1 => Just(Bytes::new()),
        6 => vec(piece, 0..5).prop_map(|p| Bytes::from(p.concat())),
    ]
}

// ---------------------------------------------------------------------------------------------
// Keys, opaques

/// A valid text key: 1..=250 bytes from 0x21..=0x7E and >= 0x80, with some protocol words.
pub fn text_key() -> impl Strategy<Value = Key> {
    prop_oneof![
        8 => vec(key_byte(), 1..=12),
        1 => vec(key_byte(), 200..=250),
        1 => select(vec![
            b"noreply".to_vec(),
            b"0".to_vec(),
            b"END".to_vec(),
            b"VALUE".to_vec(),
            b"mn".to_vec(),
            b"b".to_vec(),
            b"q".to_vec(),
            b"O1".to_vec(),
            b"STORED".to_vec(),
        ]),
    ]
    .prop_map(|b| Key::new(b).expect("valid text key"))
}

/// A binary key: 1..=186 arbitrary bytes.
pub fn binary_key() -> impl Strategy<Value = Key> {
    prop_oneof![
        6 => vec(any::<u8>(), 1..=12),
        1 => vec(any::<u8>(), 1..=186),
    ]
    .prop_map(|b| Key::binary(b).expect("valid binary key"))
}

/// A text or binary key.
pub fn any_key() -> impl Strategy<Value = Key> {
    prop_oneof![3 => text_key(), 1 => binary_key()]
}

/// A valid opaque token (0..=31 bytes).
pub fn opaque() -> impl Strategy<Value = Opaque> {
    vec(key_byte(), 0..=Opaque::MAX_LEN).prop_map(|b| Opaque::new(&b).expect("valid opaque"))
}

// ---------------------------------------------------------------------------------------------
// Requests

pub fn meta_get_flags() -> BoxedStrategy<MetaGetFlags> {
    (
        (
            option::of(any::<i32>()),
            option::of(any::<i32>()),
            option::of(any::<i32>()),
            option::of(any::<u64>()),
            option::of(any::<u64>()),
            option::of(opaque()),
        ),
        (
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
        ),
    )
        .prop_map(
            |(
                (vivify, recache, touch, new_cas, compare_cas, opaque),
                (cas, client_flags, hit, key, last_access, size, ttl, no_lru_bump, value, quiet),
            )| MetaGetFlags {
                vivify,
                recache,
                touch,
                new_cas,
                compare_cas,
                cas,
                client_flags,
                hit,
                key,
                last_access,
                size,
                ttl,
                no_lru_bump,
                value,
                opaque,
                quiet,
            },
        )
        .boxed()
}

pub fn meta_set_mode() -> impl Strategy<Value = MetaSetMode> {
    select(vec![
        MetaSetMode::Set,
        MetaSetMode::Add,
        MetaSetMode::Replace,
        MetaSetMode::Append,
        MetaSetMode::Prepend,
    ])
}

pub fn meta_set_flags() -> BoxedStrategy<MetaSetFlags> {
    (
        (
            option::of(meta_set_mode()),
            option::of(any::<i32>()),
            option::of(any::<u32>()),
            option::of(any::<u64>()),
            option::of(any::<u64>()),
            option::of(any::<i32>()),
            option::of(opaque()),
        ),
        (
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
        ),
    )
        .prop_map(
            |(
                (mode, ttl, client_flags, compare_cas, new_cas, vivify, opaque),
                (invalidate, cas, key, size, quiet),
            )| MetaSetFlags {
                mode,
                ttl,
                client_flags,
                compare_cas,
                new_cas,
                invalidate,
                vivify,
                cas,
                key,
                size,
                opaque,
                quiet,
            },
        )
        .boxed()
}

pub fn meta_delete_flags() -> BoxedStrategy<MetaDeleteFlags> {
    (
        option::of(any::<u64>()),
        option::of(any::<u64>()),
        any::<bool>(),
        option::of(any::<i32>()),
        any::<bool>(),
        any::<bool>(),
        option::of(opaque()),
        any::<bool>(),
    )
        .prop_map(
            |(compare_cas, new_cas, invalidate, ttl, remove_value, key, opaque, quiet)| {
                MetaDeleteFlags {
                    compare_cas,
                    new_cas,
                    invalidate,
                    ttl,
                    remove_value,
                    key,
                    opaque,
                    quiet,
                }
            },
        )
        .boxed()
}

pub fn meta_arithmetic_flags() -> BoxedStrategy<MetaArithmeticFlags> {
    (
        (
            option::of(select(vec![
                MetaArithmeticMode::Increment,
                MetaArithmeticMode::Decrement,
            ])),
            option::of(any::<u64>()),
            option::of(any::<i32>()),
            option::of(any::<u64>()),
            option::of(any::<i32>()),
            option::of(any::<u64>()),
            option::of(any::<u64>()),
            option::of(opaque()),
        ),
        (
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
        ),
    )
        .prop_map(
            |(
                (mode, delta, vivify, initial, ttl, compare_cas, new_cas, opaque),
                (cas, key, return_ttl, value, quiet),
            )| MetaArithmeticFlags {
                mode,
                delta,
                vivify,
                initial,
                ttl,
                compare_cas,
                new_cas,
                cas,
                key,
                return_ttl,
                value,
                opaque,
                quiet,
            },
        )
        .boxed()
}

pub fn retrieve_command() -> impl Strategy<Value = RetrieveCommand> {
    prop_oneof![
        Just(RetrieveCommand::Get),
        Just(RetrieveCommand::Gets),
        any::<i32>().prop_map(RetrieveCommand::Gat),
        any::<i32>().prop_map(RetrieveCommand::Gats),
    ]
}

pub fn store_command() -> impl Strategy<Value = StoreCommand> {
    prop_oneof![
        Just(StoreCommand::Set),
        Just(StoreCommand::Add),
        Just(StoreCommand::Replace),
        Just(StoreCommand::Append),
        Just(StoreCommand::Prepend),
        any::<u64>().prop_map(StoreCommand::Cas),
    ]
}

/// `stats` arguments: printable words separated by single spaces.
pub fn stats_args() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        select(vec![
            &b"settings"[..],
            b"items",
            b"slabs",
            b"reset",
            b"detail dump",
            b"cachedump 1 1",
            b"noreply",
        ])
        .prop_map(Bytes::from_static),
        vec(token(10), 1..=4).prop_map(|w| Bytes::from(w.join(&b' '))),
    ]
}

/// Every text-protocol request, with text keys.
pub fn text_request() -> BoxedStrategy<Request> {
    prop_oneof![
        4 => (retrieve_command(), vec(text_key(), 1..=8))
            .prop_map(|(command, keys)| Request::Retrieve(Retrieve { command, keys })),
        4 => (store_command(), text_key(), any::<u32>(), any::<i32>(), value_bytes(), any::<bool>())
            .prop_map(|(command, key, flags, exptime, value, noreply)| {
                Request::Store(Store { command, key, flags, exptime, value, noreply })
            }),
        1 => (text_key(), any::<bool>()).prop_map(|(key, noreply)| Request::Delete { key, noreply }),
        1 => (text_key(), any::<u64>(), any::<bool>())
            .prop_map(|(key, delta, noreply)| Request::Incr { key, delta, noreply }),
        1 => (text_key(), any::<u64>(), any::<bool>())
            .prop_map(|(key, delta, noreply)| Request::Decr { key, delta, noreply }),
        1 => (text_key(), any::<i32>(), any::<bool>())
            .prop_map(|(key, exptime, noreply)| Request::Touch { key, exptime, noreply }),
        1 => (option::of(any::<i32>()), any::<bool>())
            .prop_map(|(delay, noreply)| Request::FlushAll { delay, noreply }),
        1 => Just(Request::Version),
        1 => (any::<u32>(), any::<bool>())
            .prop_map(|(level, noreply)| Request::Verbosity { level, noreply }),
        1 => option::of(stats_args()).prop_map(|args| Request::Stats { args }),
        1 => Just(Request::Quit),
    ]
    .boxed()
}

/// Every meta-protocol request, with text and binary keys.
pub fn meta_request() -> BoxedStrategy<Request> {
    prop_oneof![
        3 => (any_key(), meta_get_flags())
            .prop_map(|(key, flags)| Request::MetaGet(Box::new(MetaGet { key, flags }))),
        3 => (any_key(), value_bytes(), meta_set_flags())
            .prop_map(|(key, value, flags)| Request::MetaSet(Box::new(MetaSet { key, value, flags }))),
        2 => (any_key(), meta_delete_flags())
            .prop_map(|(key, flags)| Request::MetaDelete(Box::new(MetaDelete { key, flags }))),
        2 => (any_key(), meta_arithmetic_flags())
            .prop_map(|(key, flags)| Request::MetaArithmetic(Box::new(MetaArithmetic { key, flags }))),
        1 => Just(Request::MetaNoop),
        1 => any_key().prop_map(|key| Request::MetaDebug { key }),
    ]
    .boxed()
}

/// Any request.
pub fn request() -> BoxedStrategy<Request> {
    prop_oneof![text_request(), meta_request()].boxed()
}

/// Encodes a request that must be valid.
pub fn encode_request(r: &Request) -> Vec<u8> {
    r.to_bytes(&Limits::default())
        .unwrap_or_else(|e| panic!("encoding {r:?}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Responses, with the expectation a decoder is given

pub fn meta_status() -> impl Strategy<Value = MetaStatus> {
    select(vec![
        MetaStatus::Va,
        MetaStatus::Hd,
        MetaStatus::En,
        MetaStatus::Ns,
        MetaStatus::Ex,
        MetaStatus::Nf,
    ])
}

pub fn meta_return_flags() -> BoxedStrategy<MetaReturnFlags> {
    (
        option::of(any::<u64>()),
        option::of(any::<u32>()),
        option::of(any::<bool>()),
        option::of(any_key()),
        option::of(any::<u64>()),
        option::of(opaque()),
        option::of(any::<u64>()),
        option::of(any::<i64>()),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(
                cas,
                client_flags,
                hit,
                key,
                last_access,
                opaque,
                size,
                ttl,
                won,
                stale,
                win_sent,
            )| {
                MetaReturnFlags {
                    cas,
                    client_flags,
                    hit,
                    key,
                    last_access,
                    opaque,
                    size,
                    ttl,
                    won,
                    stale,
                    win_sent,
                }
            },
        )
        .boxed()
}

/// A meta reply and an expectation it satisfies (the command allows its status, the key and
/// opaque match the returned `k` and `O`).
pub fn meta_response() -> BoxedStrategy<(Response, Expect)> {
    (
        meta_status(),
        meta_return_flags(),
        value_bytes(),
        any_key(),
        option::of(opaque()),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(status, flags, value, other_key, other_opaque, pick)| {
            let commands: &[&'static str] = match status {
                MetaStatus::En => &["mg"],
                MetaStatus::Va => &["mg", "ma"],
                _ => &["mg", "ms", "md", "ma"],
            };
            let command = commands[pick.index(commands.len())];
            let expect = Expect::Meta {
                command,
                key: flags.key.clone().unwrap_or(other_key),
                opaque: if flags.opaque.is_some() {
                    flags.opaque
                } else {
                    other_opaque
                },
                value: matches!(command, "mg" | "ma"),
            };
            let value = (status == MetaStatus::Va).then_some(value);
            (
                Response::Meta(Box::new(MetaResponse {
                    status,
                    flags,
                    value,
                })),
                expect,
            )
        })
        .boxed()
}

/// A retrieval reply: the keys asked (some repeated), a subsequence of them answered.
pub fn values_response() -> BoxedStrategy<(Response, Expect)> {
    let key_pool = vec(text_key(), 1..=4);
    (
        key_pool,
        vec(any::<prop::sample::Index>(), 1..=6),
        any::<bool>(),
    )
        .prop_flat_map(|(pool, picks, cas)| {
            let keys: Vec<Key> = picks
                .iter()
                .map(|i| pool[i.index(pool.len())].clone())
                .collect();
            let n = keys.len();
            (
                Just(keys),
                Just(cas),
                vec(
                    (any::<bool>(), any::<u32>(), any::<u64>(), value_bytes()),
                    n..=n,
                ),
            )
        })
        .prop_map(|(keys, cas, items)| {
            let values = keys
                .iter()
                .zip(items)
                .filter(|(_, (hit, ..))| *hit)
                .map(|(k, (_, flags, c, data))| Value {
                    key: k.clone(),
                    flags,
                    cas: cas.then_some(c),
                    data,
                })
                .collect();
            (Response::Values(values), Expect::Values { keys, cas })
        })
        .boxed()
}

fn is_error_line(l: &[u8]) -> bool {
    l.starts_with(b"ERROR") || l.starts_with(b"CLIENT_ERROR") || l.starts_with(b"SERVER_ERROR")
}

/// A `STAT <name> <value>` line (the value may be empty, never starts with a space).
pub fn stat() -> impl Strategy<Value = Stat> {
    (
        token(16),
        prop_oneof![
            Just(Vec::new()),
            (key_byte(), line_bytes(24)).prop_map(|(b, mut rest)| {
                rest.insert(0, b);
                rest
            }),
        ],
    )
        .prop_map(|(name, value)| Stat {
            name: Bytes::from(name),
            value: Bytes::from(value),
        })
}

/// Lines of a `stats detail dump` / `stats cachedump` reply.
pub fn stats_lines() -> BoxedStrategy<Vec<Bytes>> {
    let line = prop_oneof![
        line_bytes(30),
        Just(b"ITEM mz [0 b; 0 s]".to_vec()),
        Just(b"PREFIX pfx get 2 hit 1 set 1 del 1".to_vec()),
        Just(b"STAT".to_vec()),
        Just(b"RESET".to_vec()),
        Just(b"OK".to_vec()),
    ]
    .prop_filter("a free-form line", |l| {
        !l.is_empty() && !l.starts_with(b"STAT ") && l != b"END" && !is_error_line(l)
    });
    vec(line, 1..=6)
        .prop_filter("first line is not RESET/OK", |ls| {
            ls[0] != b"RESET"[..] && ls[0] != b"OK"[..]
        })
        .prop_map(|ls| ls.into_iter().map(Bytes::from).collect())
        .boxed()
}

/// `ERROR`, `CLIENT_ERROR`, `SERVER_ERROR` with a message.
pub fn error_response() -> BoxedStrategy<Response> {
    (
        select(vec![ErrorKind::Error, ErrorKind::Client, ErrorKind::Server]),
        prop_oneof![
            select(vec![
                &b""[..],
                b"bad command line format",
                b"bad data chunk",
                b"object too large for cache",
                b": shutdown not enabled",
                b" two leading",
            ])
            .prop_map(|m| m.to_vec()),
            line_bytes(40),
        ],
    )
        .prop_map(|(kind, message)| Response::Error {
            kind,
            message: Bytes::from(message),
        })
        .boxed()
}

/// Every expectation, for error replies (which fit any of them).
pub fn any_expect() -> BoxedStrategy<Expect> {
    prop_oneof![
        values_response().prop_map(|(_, e)| e),
        meta_response().prop_map(|(_, e)| e),
        select(vec![
            Expect::Storage,
            Expect::Delete,
            Expect::Arithmetic,
            Expect::Touch,
            Expect::Ok,
            Expect::Version,
            Expect::Stats,
            Expect::MetaNoop,
            Expect::MetaDebug,
        ]),
    ]
    .boxed()
}

/// Every response variant with an expectation it satisfies.
pub fn response() -> BoxedStrategy<(Response, Expect)> {
    prop_oneof![
        4 => values_response(),
        4 => meta_response(),
        1 => select(vec![
            (Response::Stored, Expect::Storage),
            (Response::NotStored, Expect::Storage),
            (Response::Exists, Expect::Storage),
            (Response::NotFound, Expect::Storage),
            (Response::Deleted, Expect::Delete),
            (Response::NotFound, Expect::Delete),
            (Response::Touched, Expect::Touch),
            (Response::NotFound, Expect::Touch),
            (Response::NotFound, Expect::Arithmetic),
            (Response::Ok, Expect::Ok),
            (Response::Ok, Expect::Stats),
            (Response::Reset, Expect::Stats),
            (Response::MetaNoop, Expect::MetaNoop),
            (Response::Meta(Box::new(MetaResponse::status(MetaStatus::En))), Expect::MetaDebug),
        ]),
        1 => any::<u64>().prop_map(|n| (Response::Number(n), Expect::Arithmetic)),
        1 => line_bytes(30).prop_map(|v| (Response::Version(Bytes::from(v)), Expect::Version)),
        2 => vec(stat(), 0..=8).prop_map(|s| (Response::Stats(s), Expect::Stats)),
        1 => stats_lines().prop_map(|l| (Response::Lines(l), Expect::Stats)),
        1 => (token(20), prop_oneof![
                Just(Vec::new()),
                (key_byte(), line_bytes(40)).prop_map(|(b, mut rest)| { rest.insert(0, b); rest }),
            ])
            .prop_map(|(key, info)| (
                Response::MetaDebug { key: Bytes::from(key), info: Bytes::from(info) },
                Expect::MetaDebug,
            )),
        2 => (error_response(), any_expect()),
    ]
    .boxed()
}

/// Tokens that mean something somewhere in the protocol, and numbers at their edges.
pub fn garbage() -> impl Strategy<Value = Vec<u8>> {
    let vocab: Vec<&'static [u8]> = vec![
        b"VALUE",
        b"END",
        b"STAT",
        b"VA",
        b"HD",
        b"EN",
        b"NS",
        b"EX",
        b"NF",
        b"MN",
        b"ME",
        b"STORED",
        b"NOT_STORED",
        b"EXISTS",
        b"NOT_FOUND",
        b"DELETED",
        b"TOUCHED",
        b"OK",
        b"RESET",
        b"VERSION",
        b"ERROR",
        b"CLIENT_ERROR",
        b"SERVER_ERROR",
        b"ERROR:",
        b"get",
        b"gets",
        b"gat",
        b"gats",
        b"set",
        b"add",
        b"replace",
        b"append",
        b"prepend",
        b"cas",
        b"delete",
        b"incr",
        b"decr",
        b"touch",
        b"flush_all",
        b"version",
        b"verbosity",
        b"stats",
        b"quit",
        b"mg",
        b"ms",
        b"md",
        b"ma",
        b"mn",
        b"me",
        b"noreply",
        b"b",
        b"q",
        b"k",
        b"v",
        b"O1",
        b"Oabc",
        b"O",
        b"c",
        b"f",
        b"s",
        b"t",
        b"T-1",
        b"N30",
        b"MS",
        b"ME",
        b"Ma",
        b"MI",
        b"MD",
        b"M+",
        b"MX",
        b"D5",
        b"J1",
        b"C1",
        b"E1",
        b"h0",
        b"h1",
        b"h2",
        b"t-1",
        b"kfoo",
        b"kZm9v",
        b"kbar",
        b"W",
        b"X",
        b"Z",
        b"0",
        b"1",
        b"3",
        b"-1",
        b"00",
        b"+1",
        b"18446744073709551615",
        b"18446744073709551616",
        b"4294967295",
        b"4294967296",
        b"2147483648",
        b"-2147483649",
        b"99999999999999999999999",
        b"Zm9v",
        b"Zm9vYg",
        b"foo",
        b"bar",
    ];
    let tok = prop_oneof![
        6 => select(vocab).prop_map(|t| t.to_vec()),
        1 => any::<u64>().prop_map(|n| n.to_string().into_bytes()),
        1 => any::<i64>().prop_map(|n| n.to_string().into_bytes()),
        1 => token(8),
        1 => vec(any::<u8>(), 0..6),
    ];
    let sep = select(vec![
        &b" "[..],
        b" ",
        b" ",
        b"  ",
        b"\r\n",
        b"\r\n",
        b"\n",
        b"\r",
        b"",
    ]);
    vec((tok, sep), 0..24).prop_map(|parts| {
        parts
            .into_iter()
            .flat_map(|(t, s)| t.into_iter().chain(s.iter().copied()))
            .collect()
    })
}

// ---------------------------------------------------------------------------------------------
// Harnesses

/// Splits `bytes` into chunks of the given sizes (cycled; a size of 0 counts as 1).
pub fn chunks<'a>(bytes: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = bytes;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes
            .get(i % sizes.len().max(1))
            .copied()
            .unwrap_or(1)
            .clamp(1, rest.len());
        let (a, b) = rest.split_at(n);
        out.push(a);
        rest = b;
        i += 1;
    }
    out
}

/// Feeds `chunks` to `Request::decode`, decoding every complete request after each chunk.
/// Returns the requests and the bytes left over.
pub fn decode_requests(chunks: &[&[u8]]) -> Result<(Vec<Request>, BytesMut), DecodeError> {
    let limits = Limits::server();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for c in chunks {
        buf.extend_from_slice(c);
        while let Some(r) = Request::decode(&mut buf, &limits)? {
            out.push(r);
        }
    }
    Ok((out, buf))
}

/// Feeds `chunks` to one `ResponseDecoder`, decoding the replies to `expects` in order.
/// Returns the replies and the bytes left over.
pub fn decode_responses(
    chunks: &[&[u8]],
    expects: &[Expect],
) -> Result<(Vec<Response>, BytesMut), DecodeError> {
    let mut dec = ResponseDecoder::default();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for c in chunks {
        buf.extend_from_slice(c);
        while let Some(e) = expects.get(out.len()) {
            match dec.decode(e, &mut buf)? {
                Some(r) => out.push(r),
                None => break,
            }
        }
    }
    Ok((out, buf))
}
