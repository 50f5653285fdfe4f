//! Replies where memcached 1.6.45 differs from 1.6.18 (the same bytes recorded against both
//! servers; the replies are written out below) and that a client can meet with requests it can
//! build: the parser must accept both.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod spec_support;

use bytes::{Bytes, BytesMut};
use mcache_proto::{
    Connection, Error, ErrorKind, Expect, Key, MetaDeleteFlags, MetaGetFlags, MetaReturnFlags,
    MetaSetFlags, MetaSetMode, MetaStatus, Request, Response, ResponseDecoder,
};
use spec_support::*;
use std::time::Instant;

const BAD_LINE: &[u8] = b"CLIENT_ERROR bad command line format\r\n";

fn bad_line() -> Response {
    error(ErrorKind::Client, "bad command line format")
}

fn foo_bar() -> Response {
    values(vec![value("foo", 0, None, b"bar")])
}

/// Decodes `response` against `requests` in one piece, byte by byte, and in every split in
/// two: always the same replies, every byte consumed.
fn decode_every_way(requests: &[Request], response: &[u8]) -> Vec<(usize, Response)> {
    let flat = |r: Vec<Reply>| -> Vec<(usize, Response)> {
        r.into_iter().map(|r| (r.request, r.response)).collect()
    };
    let want = flat(replay_all(requests, response));
    let bytes: Vec<&[u8]> = response.chunks(1).collect();
    let split = replay_split(requests, &bytes).unwrap();
    assert!(split.leftover.is_empty(), "byte by byte: left over");
    assert_eq!(flat(split.replies), want, "byte by byte");
    for cut in 0..=response.len() {
        let split = replay_split(requests, &[&response[..cut], &response[cut..]]).unwrap();
        assert!(split.leftover.is_empty(), "cut at {cut}: left over");
        assert_eq!(flat(split.replies), want, "cut at {cut}");
    }
    want
}

/// Sends `requests` on a [`Connection`] and feeds it `response` in the given chunks.
fn connection_chunks(
    requests: &[Request],
    chunks: &[&[u8]],
) -> (Vec<Result<Response, Error>>, Connection) {
    let now = Instant::now();
    let mut conn = Connection::default();
    let ids: Vec<_> = requests
        .iter()
        .map(|r| conn.send(r.clone()).unwrap())
        .collect();
    let n = conn.transmit().len();
    conn.advance_transmit(n, now);
    let mut out = Vec::new();
    for c in chunks {
        conn.receive(c, now);
        while let Some((id, r)) = conn.poll_response() {
            assert_eq!(Some(id), ids.get(out.len()).copied(), "replies in order");
            out.push(r);
        }
    }
    (out, conn)
}

/// Every way to split `response` in two, and byte by byte: the connection gives `want` and
/// stays usable.
fn connection_every_way(requests: &[Request], response: &[u8], want: &[Result<Response, Error>]) {
    let mut ways: Vec<Vec<&[u8]>> = vec![response.chunks(1).collect()];
    for cut in 0..=response.len() {
        ways.push(vec![&response[..cut], &response[cut..]]);
    }
    for chunks in ways {
        let (got, conn) = connection_chunks(requests, &chunks);
        assert_eq!(got, want, "chunks {chunks:?}");
        assert!(
            conn.poisoned().is_none(),
            "poisoned ({:?}) with chunks {chunks:?}",
            conn.poisoned()
        );
        assert!(conn.is_idle(), "nothing left pending");
    }
}

/// 1.6.40+ sends an empty line after the `CLIENT_ERROR` of a retrieval
/// (`process_get_command_err`): `CLIENT_ERROR bad command line format\r\n\r\n`. The next
/// reply must still decode, whichever request it answers; 1.6.18 sends no empty line.
#[test]
fn stray_empty_line_after_a_retrieval_client_error() {
    let one_six_45 = [BAD_LINE, b"\r\n"].concat();
    for error in [&one_six_45[..], BAD_LINE] {
        // Followed by a retrieval, a storage reply, a number, a meta reply, MN, a stats reply.
        let cases: Vec<(Request, &[u8], Response)> = vec![
            (get(&["foo"]), b"VALUE foo 0 3\r\nbar\r\nEND\r\n", foo_bar()),
            (get(&["foo"]), b"END\r\n", values(vec![])),
            (set("foo", 0, 0, b"bar"), b"STORED\r\n", Response::Stored),
            (incr("n", 1, false), b"5\r\n", number(5)),
            (
                mg(
                    key("foo"),
                    MetaGetFlags {
                        value: true,
                        ..Default::default()
                    },
                ),
                b"VA 3\r\nbar\r\n",
                va(b"bar", rf()),
            ),
            (Request::MetaNoop, b"MN\r\n", Response::MetaNoop),
            (
                Request::Version,
                b"VERSION 1.6.45\r\n",
                Response::Version(Bytes::from_static(b"1.6.45")),
            ),
            (
                stats(Some("sizes")),
                b"STAT sizes_status disabled\r\nEND\r\n",
                stat_lines(&[("sizes_status", "disabled")]),
            ),
        ];
        for first in [
            get(&["foo"]),
            gets(&["foo"]),
            gat(10, &["foo"]),
            gats(10, &["foo"]),
        ] {
            for (next, reply, want) in &cases {
                let requests = [first.clone(), next.clone()];
                let response = [error, reply].concat();
                assert_eq!(
                    decode_every_way(&requests, &response),
                    vec![(0, bad_line()), (1, want.clone())],
                    "{}",
                    response.escape_ascii()
                );
                connection_every_way(
                    &requests,
                    &response,
                    &[
                        Err(Error::Client(Bytes::from_static(
                            b"bad command line format",
                        ))),
                        Ok(want.clone()),
                    ],
                );
            }
        }
    }
}

/// The stray line also reaches a connection with nothing else pending (the error was the
/// last reply), in the same read or a later one: it is not a reply to anything, and the
/// connection must stay usable.
#[test]
fn stray_empty_line_with_nothing_else_pending() {
    let response = [BAD_LINE, b"\r\n"].concat();
    connection_every_way(
        &[get(&["foo"])],
        &response,
        &[Err(Error::Client(Bytes::from_static(
            b"bad command line format",
        )))],
    );
    // And the next request on the same connection is answered normally.
    let now = Instant::now();
    let mut conn = Connection::default();
    conn.send(get(&["foo"])).unwrap();
    let n = conn.transmit().len();
    conn.advance_transmit(n, now);
    conn.receive(BAD_LINE, now);
    assert!(conn.poll_response().unwrap().1.is_err());
    conn.receive(b"\r\n", now);
    assert!(conn.poisoned().is_none(), "{:?}", conn.poisoned());
    let id = conn.send(get(&["foo"])).unwrap();
    let n = conn.transmit().len();
    conn.advance_transmit(n, now);
    conn.receive(b"VALUE foo 0 3\r\nbar\r\nEND\r\n", now);
    assert_eq!(conn.poll_response(), Some((id, Ok(foo_bar()))));
}

/// After the stray line, a quiet request's reply is still told apart from the next one.
#[test]
fn stray_empty_line_then_a_quiet_batch() {
    let quiet = mg(
        key("nokey"),
        MetaGetFlags {
            value: true,
            quiet: true,
            ..Default::default()
        },
    );
    let requests = [get(&["foo"]), quiet.clone(), Request::MetaNoop];
    let response = [BAD_LINE, b"\r\nMN\r\n"].concat();
    assert_eq!(
        decode_every_way(&requests, &response),
        vec![(0, bad_line()), (2, Response::MetaNoop)]
    );
    connection_every_way(
        &requests,
        &response,
        &[
            Err(Error::Client(Bytes::from_static(
                b"bad command line format",
            ))),
            Ok(meta_status(MetaStatus::En)),
            Ok(Response::MetaNoop),
        ],
    );
}

/// An empty line anywhere else is not a reply: decoding fails (typed error, no panic).
#[test]
fn empty_line_elsewhere_is_malformed() {
    for (req, bytes) in [
        (get(&["foo"]), &b"\r\nEND\r\n"[..]),
        (
            set("foo", 0, 0, b"x"),
            b"CLIENT_ERROR bad data chunk\r\n\r\nSTORED\r\n",
        ),
    ] {
        let requests = [req.clone(), req];
        assert!(
            replay(&requests, bytes).is_err(),
            "{}",
            bytes.escape_ascii()
        );
    }
}

/// A name, requests, reply bytes, and the reply each answered request gets.
type Case = (
    &'static str,
    Vec<Request>,
    &'static [u8],
    Vec<(usize, Response)>,
);

/// The 1.6.45 replies to meta requests that 1.6.18 answers differently.
#[test]
fn meta_replies_of_1_6_45() {
    let gf = MetaGetFlags::default;
    let sf = MetaSetFlags::default;
    let table: Vec<Case> = vec![
        (
            // 1.6.40+: C with v omits the value when the cas matches.
            "mg foo v c C<matching cas>",
            vec![mg(
                key("foo"),
                MetaGetFlags {
                    value: true,
                    cas: true,
                    compare_cas: Some(140),
                    ..gf()
                },
            )],
            b"HD c140\r\n",
            vec![(
                0,
                hd(MetaReturnFlags {
                    cas: Some(140),
                    ..rf()
                }),
            )],
        ),
        (
            "mg foo v c C<other cas>: the value",
            vec![mg(
                key("foo"),
                MetaGetFlags {
                    value: true,
                    cas: true,
                    compare_cas: Some(99999),
                    ..gf()
                },
            )],
            b"VA 3 c140\r\nbar\r\n",
            vec![(
                0,
                va(
                    b"bar",
                    MetaReturnFlags {
                        cas: Some(140),
                        ..rf()
                    },
                ),
            )],
        ),
        (
            // 1.6.20+: ms s returns the size.
            "ms ms1 3 T100 F77 c k Oxyz s, mg ms1 f t v",
            vec![
                ms(
                    key("ms1"),
                    b"abc",
                    MetaSetFlags {
                        ttl: Some(100),
                        client_flags: Some(77),
                        cas: true,
                        key: true,
                        opaque: Some(opaque("xyz")),
                        size: true,
                        ..sf()
                    },
                ),
                mg(
                    key("ms1"),
                    MetaGetFlags {
                        client_flags: true,
                        ttl: true,
                        value: true,
                        ..gf()
                    },
                ),
            ],
            b"HD c95 kms1 Oxyz s3\r\nVA 3 f77 t100\r\nabc\r\n",
            vec![
                (
                    0,
                    hd(MetaReturnFlags {
                        cas: Some(95),
                        key: Some(key("ms1")),
                        opaque: Some(opaque("xyz")),
                        size: Some(3),
                        ..rf()
                    }),
                ),
                (
                    1,
                    va(
                        b"abc",
                        MetaReturnFlags {
                            client_flags: Some(77),
                            ttl: Some(100),
                            ..rf()
                        },
                    ),
                ),
            ],
        ),
        (
            "ms msq4 3 s",
            vec![ms(key("msq4"), b"abc", MetaSetFlags { size: true, ..sf() })],
            b"HD s3\r\n",
            vec![(
                0,
                hd(MetaReturnFlags {
                    size: Some(3),
                    ..rf()
                }),
            )],
        ),
        (
            // 1.6.20+: append with N vivifies.
            "ms nokey_app 3 MA N0",
            vec![ms(
                key("nokey_app"),
                b"abc",
                MetaSetFlags {
                    mode: Some(MetaSetMode::Append),
                    vivify: Some(0),
                    ..sf()
                },
            )],
            b"HD\r\n",
            vec![(0, hd(rf()))],
        ),
        (
            // 1.6.27+: E.
            "mg foo E123 c",
            vec![mg(
                key("foo"),
                MetaGetFlags {
                    new_cas: Some(123),
                    cas: true,
                    ..gf()
                },
            )],
            b"HD c91\r\n",
            vec![(
                0,
                hd(MetaReturnFlags {
                    cas: Some(91),
                    ..rf()
                }),
            )],
        ),
        (
            "ms ms1 3 E999",
            vec![ms(
                key("ms1"),
                b"abc",
                MetaSetFlags {
                    new_cas: Some(999),
                    ..sf()
                },
            )],
            b"HD\r\n",
            vec![(0, hd(rf()))],
        ),
        (
            // 1.6.27+: md x.
            "md md4 x",
            vec![md(
                key("md4"),
                MetaDeleteFlags {
                    remove_value: true,
                    ..Default::default()
                },
            )],
            b"HD\r\n",
            vec![(0, hd(rf()))],
        ),
        (
            // 1.6.45 allows 18 flags.
            "mg with many flags",
            vec![mg(
                key("foo"),
                MetaGetFlags {
                    size: true,
                    value: true,
                    client_flags: true,
                    ttl: true,
                    cas: true,
                    key: true,
                    hit: true,
                    last_access: true,
                    no_lru_bump: true,
                    opaque: Some(opaque("1")),
                    quiet: true,
                    touch: Some(100),
                    vivify: Some(100),
                    recache: Some(10),
                    compare_cas: Some(1),
                    ..gf()
                },
            )],
            b"VA 3 s3 f5 t99 c140 kfoo h1 l1 O1\r\nbar\r\n",
            vec![(
                0,
                va(
                    b"bar",
                    MetaReturnFlags {
                        size: Some(3),
                        client_flags: Some(5),
                        ttl: Some(99),
                        cas: Some(140),
                        key: Some(key("foo")),
                        hit: Some(true),
                        last_access: Some(1),
                        opaque: Some(opaque("1")),
                        ..rf()
                    },
                ),
            )],
        ),
        (
            // 1.6.45 breaks `me <key> b`: EN.
            "me Zm9v b, me AP9iaW4NCiBrZXk= b",
            vec![
                Request::MetaDebug {
                    key: Key::binary(b"foo").unwrap(),
                },
                Request::MetaDebug {
                    key: Key::binary(b"\x00\xffbin\r\n key").unwrap(),
                },
            ],
            b"EN\r\nEN\r\n",
            vec![
                (0, meta_status(MetaStatus::En)),
                (1, meta_status(MetaStatus::En)),
            ],
        ),
        (
            "me foo",
            vec![Request::MetaDebug { key: key("foo") }],
            b"ME foo exp=-1 la=24 cas=15 fetch=yes cls=1 size=65\r\n",
            vec![(
                0,
                Response::MetaDebug {
                    key: Bytes::from_static(b"foo"),
                    info: Bytes::from_static(b"exp=-1 la=24 cas=15 fetch=yes cls=1 size=65"),
                },
            )],
        ),
        (
            // 1.6.45 hides a quiet ma vivify; 1.6.18 shows it.
            "ma k N0 q v, mn",
            vec![
                ma(
                    key("k"),
                    mcache_proto::MetaArithmeticFlags {
                        vivify: Some(0),
                        quiet: true,
                        value: true,
                        ..Default::default()
                    },
                ),
                Request::MetaNoop,
            ],
            b"MN\r\n",
            vec![(1, Response::MetaNoop)],
        ),
        (
            "the same on 1.6.18",
            vec![
                ma(
                    key("k"),
                    mcache_proto::MetaArithmeticFlags {
                        vivify: Some(0),
                        quiet: true,
                        value: true,
                        ..Default::default()
                    },
                ),
                Request::MetaNoop,
            ],
            b"VA 1\r\n0\r\nMN\r\n",
            vec![(0, va(b"0", rf())), (1, Response::MetaNoop)],
        ),
    ];
    for (name, requests, response, want) in table {
        assert_eq!(decode_every_way(&requests, response), want, "{name}");
        if connection_can_replay(&requests) {
            let (got, conn) = through_connection(&requests, response);
            let want: Vec<_> = want.into_iter().map(|(_, r)| Ok(r)).collect();
            assert_eq!(got, want, "{name}: through a connection");
            assert!(conn.poisoned().is_none(), "{name}");
        }
    }
}

/// Text replies that differ in 1.6.45 for requests a client can build.
#[test]
fn text_replies_of_1_6_45() {
    // `SERVER_ERROR: shutdown not enabled` (1.6.18: `ERROR: shutdown not enabled`).
    for (bytes, kind) in [
        (
            &b"SERVER_ERROR: shutdown not enabled\r\n"[..],
            ErrorKind::Server,
        ),
        (b"ERROR: shutdown not enabled\r\n", ErrorKind::Error),
    ] {
        let mut buf = BytesMut::from(bytes);
        assert_eq!(
            ResponseDecoder::default().decode(&Expect::Ok, &mut buf),
            Ok(Some(error(kind, ": shutdown not enabled")))
        );
        assert!(buf.is_empty());
    }
    // `version` of a source build.
    assert_eq!(
        replay_all(&[Request::Version], b"VERSION UNKNOWN\r\n")[0].response,
        Response::Version(Bytes::from_static(b"UNKNOWN"))
    );
    // Client flags differ (0 on 1.6.45 where 1.6.18 kept 5): only the flags field changes.
    assert_eq!(
        decode_every_way(
            &[get(&["foo", "noreply"])],
            b"VALUE foo 0 3\r\nbar\r\nEND\r\n"
        ),
        vec![(0, foo_bar())]
    );
    // A get of many keys, one too long, behind the proxy: `CLIENT_ERROR key too long` in the
    // stream, then the other keys and END, is not a whole reply to the get: a typed error.
    let requests = [get(&["foo", "bar"])];
    let e = replay(
        &requests,
        b"CLIENT_ERROR key too long\r\nVALUE bar 0 1\r\nx\r\nEND\r\n",
    )
    .unwrap();
    assert_eq!(
        e.replies[0].response,
        error(ErrorKind::Client, "key too long")
    );
}
