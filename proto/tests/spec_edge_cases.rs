//! Client-relevant edge cases from memcached's own test suite (the numbers below are those of
//! the project's edge-case notes; the bytes are written out here), as example tables checked
//! like `spec_examples.rs`, and a few programmatic checks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod spec_support;

use bytes::{Bytes, BytesMut};
use mcache_proto::text::request::StoreCommand;
use mcache_proto::{
    Connection, EncodeError, Error, ErrorKind, Expect, Key, KeyError, Limits, MetaArithmeticFlags,
    MetaDeleteFlags, MetaGetFlags, MetaReturnFlags, MetaSetFlags, MetaSetMode, MetaStatus,
    PoisonReason, Request, Response,
};
use spec_support::*;
use std::time::Instant;

fn gf() -> MetaGetFlags {
    MetaGetFlags::default()
}

fn sf() -> MetaSetFlags {
    MetaSetFlags::default()
}

fn af() -> MetaArithmeticFlags {
    MetaArithmeticFlags::default()
}

fn non_numeric() -> Response {
    error(
        ErrorKind::Client,
        "cannot increment or decrement non-numeric value",
    )
}

fn table() -> Vec<Example> {
    vec![
        ex(
            "3: md miss is exactly NF, md hit exactly HD (no trailing space)",
            b"md deltest\r\nmd foo\r\n",
            b"NF\r\nHD\r\n",
            true,
            vec![
                (md(key("deltest"), MetaDeleteFlags::default()), Some(meta_status(MetaStatus::Nf))),
                (md(key("foo"), MetaDeleteFlags::default()), Some(hd(rf()))),
            ],
        ),
        ex(
            "4: mg s v",
            b"mg foo2 s v\r\n",
            b"VA 2 s2\r\nho\r\n",
            true,
            vec![(
                mg(key("foo2"), MetaGetFlags { size: true, value: true, ..gf() }),
                Some(va(b"ho", MetaReturnFlags { size: Some(2), ..rf() })),
            )],
        ),
        ex(
            "5: ms return flags do not bleed into each other",
            b"ms a 1\r\nx\r\nms a 1 c\r\nx\r\nms a 1 Otest\r\nx\r\nms a 1 s\r\nx\r\nms a 1 k\r\nx\r\n",
            b"HD\r\nHD c7\r\nHD Otest\r\nHD s1\r\nHD ka\r\n",
            true,
            vec![
                (ms(key("a"), b"x", sf()), Some(hd(rf()))),
                (ms(key("a"), b"x", MetaSetFlags { cas: true, ..sf() }), Some(hd(MetaReturnFlags { cas: Some(7), ..rf() }))),
                (
                    ms(key("a"), b"x", MetaSetFlags { opaque: Some(opaque("test")), ..sf() }),
                    Some(hd(MetaReturnFlags { opaque: Some(opaque("test")), ..rf() })),
                ),
                (ms(key("a"), b"x", MetaSetFlags { size: true, ..sf() }), Some(hd(MetaReturnFlags { size: Some(1), ..rf() }))),
                (ms(key("a"), b"x", MetaSetFlags { key: true, ..sf() }), Some(hd(MetaReturnFlags { key: Some(key("a")), ..rf() }))),
            ],
        ),
        ex(
            "6: client flags round trip through ms F / mg f",
            b"ms f 1 F0\r\nx\r\nmg f f\r\nms f 1 F123\r\nx\r\nmg f f\r\nms f 1 F65535\r\nx\r\nmg f f\r\nms f 1 F2147483648\r\nx\r\nmg f f\r\nms f 1 F4294967295\r\nx\r\nmg f f\r\n",
            b"HD\r\nHD f0\r\nHD\r\nHD f123\r\nHD\r\nHD f65535\r\nHD\r\nHD f2147483648\r\nHD\r\nHD f4294967295\r\n",
            true,
            [0u32, 123, 65535, 1 << 31, u32::MAX]
                .into_iter()
                .flat_map(|f| {
                    [
                        (ms(key("f"), b"x", MetaSetFlags { client_flags: Some(f), ..sf() }), Some(hd(rf()))),
                        (
                            mg(key("f"), MetaGetFlags { client_flags: true, ..gf() }),
                            Some(hd(MetaReturnFlags { client_flags: Some(f), ..rf() })),
                        ),
                    ]
                })
                .collect(),
        ),
        ex(
            "7: ms wrong C -> EX c0, right C -> HD c<new>",
            b"ms k 1 C1 c\r\nx\r\nms k 1 C5 c\r\nx\r\n",
            b"EX c0\r\nHD c6\r\n",
            true,
            vec![
                (
                    ms(key("k"), b"x", MetaSetFlags { compare_cas: Some(1), cas: true, ..sf() }),
                    Some(meta(MetaStatus::Ex, MetaReturnFlags { cas: Some(0), ..rf() }, None)),
                ),
                (
                    ms(key("k"), b"x", MetaSetFlags { compare_cas: Some(5), cas: true, ..sf() }),
                    Some(hd(MetaReturnFlags { cas: Some(6), ..rf() })),
                ),
            ],
        ),
        ex(
            "8: ms E sets the cas (1.6.27+)",
            b"ms k 2 C6 E9000 c\r\nhi\r\n",
            b"HD c9000\r\n",
            true,
            vec![(
                ms(key("k"), b"hi", MetaSetFlags { compare_cas: Some(6), new_cas: Some(9000), cas: true, ..sf() }),
                Some(hd(MetaReturnFlags { cas: Some(9000), ..rf() })),
            )],
        ),
        ex(
            "9: mg vivify with E: W, cas E, no Z",
            b"mg k N30 E9876 c s t v\r\n",
            b"VA 0 s0 c9876 t30 W\r\n\r\n",
            true,
            vec![(
                mg(
                    key("k"),
                    MetaGetFlags { size: true, cas: true, value: true, vivify: Some(30), ttl: true, new_cas: Some(9876), ..gf() },
                ),
                Some(va(b"", MetaReturnFlags { size: Some(0), cas: Some(9876), ttl: Some(30), won: true, ..rf() })),
            )],
        ),
        ex(
            "10/12: md C E I; md with a wrong C",
            b"md k C9876 E5555 I\r\nmd k C1\r\n",
            b"HD\r\nEX\r\n",
            true,
            vec![
                (
                    md(key("k"), MetaDeleteFlags { compare_cas: Some(9876), new_cas: Some(5555), invalidate: true, ..Default::default() }),
                    Some(hd(rf())),
                ),
                (md(key("k"), MetaDeleteFlags { compare_cas: Some(1), ..Default::default() }), Some(meta_status(MetaStatus::Ex))),
            ],
        ),
        ex(
            "11: ma with E",
            b"ma n N0 J5 E4321 c v\r\nma n C4321 c v\r\nma n E8765 c v\r\n",
            b"VA 1 c4321\r\n5\r\nVA 1 c4322\r\n6\r\nVA 1 c8765\r\n7\r\n",
            true,
            vec![
                (
                    ma(key("n"), MetaArithmeticFlags { vivify: Some(0), initial: Some(5), new_cas: Some(4321), cas: true, value: true, ..af() }),
                    Some(va(b"5", MetaReturnFlags { cas: Some(4321), ..rf() })),
                ),
                (
                    ma(key("n"), MetaArithmeticFlags { compare_cas: Some(4321), cas: true, value: true, ..af() }),
                    Some(va(b"6", MetaReturnFlags { cas: Some(4322), ..rf() })),
                ),
                (
                    ma(key("n"), MetaArithmeticFlags { new_cas: Some(8765), cas: true, value: true, ..af() }),
                    Some(va(b"7", MetaReturnFlags { cas: Some(8765), ..rf() })),
                ),
            ],
        ),
        ex(
            "13: base64 keys: stored with b, missed as text, hit with b k",
            b"ms 44OG44K544OI 2 b\r\nhi\r\nmg 44OG44K544OI v\r\nmg 44OG44K544OI b k v\r\n",
            b"HD\r\nEN\r\nVA 2 k44OG44K544OI b\r\nhi\r\n",
            true,
            vec![
                (ms(Key::binary("テスト").unwrap(), b"hi", sf()), Some(hd(rf()))),
                (mg(key("44OG44K544OI"), MetaGetFlags { value: true, ..gf() }), Some(meta_status(MetaStatus::En))),
                (
                    mg(Key::binary("テスト").unwrap(), MetaGetFlags { key: true, value: true, ..gf() }),
                    Some(va(b"hi", MetaReturnFlags { key: Some(Key::binary("テスト").unwrap()), ..rf() })),
                ),
            ],
        ),
        ex(
            "14: ma basics",
            b"ma mi\r\nma mi D1\r\nset mi 0 0 1\r\n1\r\nma mi\r\nset mi 0 0 1\r\nq\r\nma mi\r\nma mo N90\r\n",
            b"NF\r\nNF\r\nSTORED\r\nHD\r\nSTORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\nHD\r\n",
            true,
            vec![
                (ma(key("mi"), af()), Some(meta_status(MetaStatus::Nf))),
                (ma(key("mi"), MetaArithmeticFlags { delta: Some(1), ..af() }), Some(meta_status(MetaStatus::Nf))),
                (set("mi", 0, 0, b"1"), Some(Response::Stored)),
                (ma(key("mi"), af()), Some(hd(rf()))),
                (set("mi", 0, 0, b"q"), Some(Response::Stored)),
                (ma(key("mi"), af()), Some(non_numeric())),
                (ma(key("mo"), MetaArithmeticFlags { vivify: Some(90), ..af() }), Some(hd(rf()))),
            ],
        ),
        ex(
            "15: quiet ma success, then mn; vivify with a wrong C",
            b"ma mi D1 q\r\nmn\r\nma mc N0 C99999 v\r\n",
            b"MN\r\nEX\r\n",
            true,
            vec![
                (ma(key("mi"), MetaArithmeticFlags { delta: Some(1), quiet: true, ..af() }), None),
                (Request::MetaNoop, Some(Response::MetaNoop)),
                (
                    ma(key("mc"), MetaArithmeticFlags { vivify: Some(0), compare_cas: Some(99999), value: true, ..af() }),
                    Some(meta_status(MetaStatus::Ex)),
                ),
            ],
        ),
        ex(
            "17/18: append with C on a miss is NS; append autovivify with s",
            b"ms k 2 MA T30 C5000\r\nhi\r\nms appendviv 2 MA N30\r\nhi\r\nms appendviv 2 MA N30 s\r\nhi\r\n",
            b"NS\r\nHD\r\nHD s4\r\n",
            true,
            vec![
                (
                    ms(key("k"), b"hi", MetaSetFlags { mode: Some(MetaSetMode::Append), compare_cas: Some(5000), ttl: Some(30), ..sf() }),
                    Some(meta_status(MetaStatus::Ns)),
                ),
                (
                    ms(key("appendviv"), b"hi", MetaSetFlags { mode: Some(MetaSetMode::Append), vivify: Some(30), ..sf() }),
                    Some(hd(rf())),
                ),
                (
                    ms(key("appendviv"), b"hi", MetaSetFlags { mode: Some(MetaSetMode::Append), vivify: Some(30), size: true, ..sf() }),
                    Some(hd(MetaReturnFlags { size: Some(4), ..rf() })),
                ),
            ],
        ),
        ex(
            "19: lease flow: W, Z, wrong C EX, right C HD, then no W/Z",
            b"mg k N30 c s t v\r\nmg k N30 c s t v\r\nms k 2 T120 C5000\r\nhi\r\nms k 2 T120 C8\r\nhi\r\nmg k c s t v\r\n",
            b"VA 0 c8 s0 t30 W\r\n\r\nVA 0 c8 s0 t30 Z\r\n\r\nEX\r\nHD\r\nVA 2 c9 s2 t120\r\nhi\r\n",
            true,
            vec![
                (
                    mg(key("k"), MetaGetFlags { vivify: Some(30), cas: true, size: true, ttl: true, value: true, ..gf() }),
                    Some(va(b"", MetaReturnFlags { cas: Some(8), size: Some(0), ttl: Some(30), won: true, ..rf() })),
                ),
                (
                    mg(key("k"), MetaGetFlags { vivify: Some(30), cas: true, size: true, ttl: true, value: true, ..gf() }),
                    Some(va(b"", MetaReturnFlags { cas: Some(8), size: Some(0), ttl: Some(30), win_sent: true, ..rf() })),
                ),
                (ms(key("k"), b"hi", MetaSetFlags { ttl: Some(120), compare_cas: Some(5000), ..sf() }), Some(meta_status(MetaStatus::Ex))),
                (ms(key("k"), b"hi", MetaSetFlags { ttl: Some(120), compare_cas: Some(8), ..sf() }), Some(hd(rf()))),
                (
                    mg(key("k"), MetaGetFlags { cas: true, size: true, ttl: true, value: true, ..gf() }),
                    Some(va(b"hi", MetaReturnFlags { cas: Some(9), size: Some(2), ttl: Some(120), ..rf() })),
                ),
            ],
        ),
        ex(
            "22/23: no value without v; h stays 0 with u",
            b"mg k s\r\nmg k h u\r\nmg k h\r\nmg k h\r\n",
            b"HD s2\r\nHD h0\r\nHD h0\r\nHD h1\r\n",
            true,
            vec![
                (mg(key("k"), MetaGetFlags { size: true, ..gf() }), Some(hd(MetaReturnFlags { size: Some(2), ..rf() }))),
                (
                    mg(key("k"), MetaGetFlags { hit: true, no_lru_bump: true, ..gf() }),
                    Some(hd(MetaReturnFlags { hit: Some(false), ..rf() })),
                ),
                (mg(key("k"), MetaGetFlags { hit: true, ..gf() }), Some(hd(MetaReturnFlags { hit: Some(false), ..rf() }))),
                (mg(key("k"), MetaGetFlags { hit: true, ..gf() }), Some(hd(MetaReturnFlags { hit: Some(true), ..rf() }))),
            ],
        ),
        ex(
            "25: invalidation: md I T30, mg X W, stale ms, ms with the current cas clears X/W/Z",
            b"md toinv I T30\r\nmg toinv s c v\r\nms toinv 1 T90 C0\r\nx\r\nms toinv 1 T90 C1 I\r\nx\r\nmg toinv s v\r\nms toinv 1 T90 C12\r\ny\r\nmg toinv s v\r\n",
            b"HD\r\nVA 2 s2 c12 W X\r\nhi\r\nEX\r\nHD\r\nVA 1 s1 Z X\r\nx\r\nHD\r\nVA 1 s1\r\ny\r\n",
            false,
            vec![
                (md(key("toinv"), MetaDeleteFlags { invalidate: true, ttl: Some(30), ..Default::default() }), Some(hd(rf()))),
                (
                    mg(key("toinv"), MetaGetFlags { size: true, cas: true, value: true, ..gf() }),
                    Some(va(b"hi", MetaReturnFlags { size: Some(2), cas: Some(12), won: true, stale: true, ..rf() })),
                ),
                (ms(key("toinv"), b"x", MetaSetFlags { ttl: Some(90), compare_cas: Some(0), ..sf() }), Some(meta_status(MetaStatus::Ex))),
                (
                    ms(key("toinv"), b"x", MetaSetFlags { ttl: Some(90), compare_cas: Some(1), invalidate: true, ..sf() }),
                    Some(hd(rf())),
                ),
                (
                    mg(key("toinv"), MetaGetFlags { size: true, value: true, ..gf() }),
                    Some(va(b"x", MetaReturnFlags { size: Some(1), win_sent: true, stale: true, ..rf() })),
                ),
                (ms(key("toinv"), b"y", MetaSetFlags { ttl: Some(90), compare_cas: Some(12), ..sf() }), Some(hd(rf()))),
                (
                    mg(key("toinv"), MetaGetFlags { size: true, value: true, ..gf() }),
                    Some(va(b"y", MetaReturnFlags { size: Some(1), ..rf() })),
                ),
            ],
        ),
        ex(
            "26/27: quiet batch: silent successes and miss, quiet hits answered (told apart by O), then MN",
            b"ms quiet 2 q\r\nbo\r\nmd quiet q\r\nmg quiet s v Oa q\r\nms quiet 2 q\r\nbo\r\nmg quiet v Ob q\r\nmg quiet v Oc q\r\nmg quietmiss v Od q\r\nmn\r\n",
            b"VA 2 Ob\r\nbo\r\nVA 2 Oc\r\nbo\r\nMN\r\n",
            true,
            vec![
                (ms(key("quiet"), b"bo", MetaSetFlags { quiet: true, ..sf() }), None),
                (md(key("quiet"), MetaDeleteFlags { quiet: true, ..Default::default() }), None),
                (
                    mg(key("quiet"), MetaGetFlags { size: true, value: true, quiet: true, opaque: Some(opaque("a")), ..gf() }),
                    None,
                ),
                (ms(key("quiet"), b"bo", MetaSetFlags { quiet: true, ..sf() }), None),
                (
                    mg(key("quiet"), MetaGetFlags { value: true, quiet: true, opaque: Some(opaque("b")), ..gf() }),
                    Some(va(b"bo", MetaReturnFlags { opaque: Some(opaque("b")), ..rf() })),
                ),
                (
                    mg(key("quiet"), MetaGetFlags { value: true, quiet: true, opaque: Some(opaque("c")), ..gf() }),
                    Some(va(b"bo", MetaReturnFlags { opaque: Some(opaque("c")), ..rf() })),
                ),
                (
                    mg(key("quietmiss"), MetaGetFlags { value: true, quiet: true, opaque: Some(opaque("d")), ..gf() }),
                    None,
                ),
                (Request::MetaNoop, Some(Response::MetaNoop)),
            ],
        ),
        ex(
            "31: mg, mg, quit, mg: two replies, nothing after quit",
            b"mg foo s\r\nmg foo s\r\nquit\r\nmg foo s\r\n",
            b"HD s2\r\nHD s2\r\n",
            true,
            vec![
                (mg(key("foo"), MetaGetFlags { size: true, ..gf() }), Some(hd(MetaReturnFlags { size: Some(2), ..rf() }))),
                (mg(key("foo"), MetaGetFlags { size: true, ..gf() }), Some(hd(MetaReturnFlags { size: Some(2), ..rf() }))),
                (Request::Quit, None),
                (mg(key("foo"), MetaGetFlags { size: true, ..gf() }), None),
            ],
        ),
        ex(
            "32: md x keeps the item without its value (1.6.27+)",
            b"md k x\r\nmg k s v\r\n",
            b"HD\r\nVA 0 s0\r\n\r\n",
            true,
            vec![
                (md(key("k"), MetaDeleteFlags { remove_value: true, ..Default::default() }), Some(hd(rf()))),
                (mg(key("k"), MetaGetFlags { size: true, value: true, ..gf() }), Some(va(b"", MetaReturnFlags { size: Some(0), ..rf() }))),
            ],
        ),
        ex(
            "35: pipelined set/delete/set/delete",
            b"set foo 0 0 3\r\nbar\r\ndelete foo\r\nset foo 0 0 3\r\nbar\r\ndelete foo\r\n",
            b"STORED\r\nDELETED\r\nSTORED\r\nDELETED\r\n",
            true,
            vec![
                (set("foo", 0, 0, b"bar"), Some(Response::Stored)),
                (delete("foo", false), Some(Response::Deleted)),
                (set("foo", 0, 0, b"bar"), Some(Response::Stored)),
                (delete("foo", false), Some(Response::Deleted)),
            ],
        ),
        ex(
            "38/40: cas with 0 EXISTS, gets then cas STORED, stale cas EXISTS, deleted NOT_FOUND",
            b"cas moo 0 0 6 0\r\nMOOVAL\r\ngets moo\r\ncas moo 0 0 6 11\r\nMOOVAL\r\ncas moo 0 0 6 11\r\nMOOVAL\r\ndelete moo\r\ncas moo 0 0 6 12\r\nMOOVAL\r\n",
            b"EXISTS\r\nVALUE moo 0 6 11\r\nMOOVAL\r\nEND\r\nSTORED\r\nEXISTS\r\nDELETED\r\nNOT_FOUND\r\n",
            true,
            vec![
                (store(StoreCommand::Cas(0), "moo", 0, 0, b"MOOVAL", false), Some(Response::Exists)),
                (gets(&["moo"]), Some(values(vec![value("moo", 0, Some(11), b"MOOVAL")]))),
                (store(StoreCommand::Cas(11), "moo", 0, 0, b"MOOVAL", false), Some(Response::Stored)),
                (store(StoreCommand::Cas(11), "moo", 0, 0, b"MOOVAL", false), Some(Response::Exists)),
                (delete("moo", false), Some(Response::Deleted)),
                (store(StoreCommand::Cas(12), "moo", 0, 0, b"MOOVAL", false), Some(Response::NotFound)),
            ],
        ),
        ex(
            "43: incr past i64::MAX is unsigned, decr back",
            b"set bug21 0 0 19\r\n9223372036854775807\r\nincr bug21 1\r\ndecr bug21 1\r\n",
            b"STORED\r\n9223372036854775808\r\n9223372036854775807\r\n",
            true,
            vec![
                (set("bug21", 0, 0, b"9223372036854775807"), Some(Response::Stored)),
                (incr("bug21", 1, false), Some(number(9_223_372_036_854_775_808))),
                (decr("bug21", 1, false), Some(number(9_223_372_036_854_775_807))),
            ],
        ),
        ex(
            "44: 2^32 + 1, 2^64-1 + 1 wraps to 0, decr below 0 stops at 0",
            b"set num 0 0 10\r\n4294967296\r\nincr num 1\r\nset num 0 0 20\r\n18446744073709551615\r\nincr num 1\r\ndecr num 5\r\n",
            b"STORED\r\n4294967297\r\nSTORED\r\n0\r\n0\r\n",
            true,
            vec![
                (set("num", 0, 0, b"4294967296"), Some(Response::Stored)),
                (incr("num", 1, false), Some(number(4_294_967_297))),
                (set("num", 0, 0, b"18446744073709551615"), Some(Response::Stored)),
                (incr("num", 1, false), Some(number(0))),
                (decr("num", 5, false), Some(number(0))),
            ],
        ),
        ex(
            "45: incr/decr on a miss; a big delta",
            b"incr nokey 1\r\ndecr nokey 1\r\nset bigincr 0 0 1\r\n0\r\nincr bigincr 18446744073709551610\r\n",
            b"NOT_FOUND\r\nNOT_FOUND\r\nSTORED\r\n18446744073709551610\r\n",
            true,
            vec![
                (incr("nokey", 1, false), Some(Response::NotFound)),
                (decr("nokey", 1, false), Some(Response::NotFound)),
                (set("bigincr", 0, 0, b"0"), Some(Response::Stored)),
                (incr("bigincr", 18_446_744_073_709_551_610, false), Some(number(18_446_744_073_709_551_610))),
            ],
        ),
        ex(
            "46: incr of text",
            b"set text 0 0 2\r\nhi\r\nincr text 1\r\ndecr text 1\r\n",
            b"STORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
            true,
            vec![
                (set("text", 0, 0, b"hi"), Some(Response::Stored)),
                (incr("text", 1, false), Some(non_numeric())),
                (decr("text", 1, false), Some(non_numeric())),
            ],
        ),
        ex(
            "47: noreply everywhere, effects seen by the following get",
            b"flush_all noreply\r\nflush_all 0 noreply\r\nverbosity 0 noreply\r\nadd noreply:foo 0 0 1 noreply\r\n1\r\nset noreply:foo 0 0 1 noreply\r\n2\r\nreplace noreply:foo 0 0 1 noreply\r\n3\r\nappend noreply:foo 0 0 1 noreply\r\n4\r\nprepend noreply:foo 0 0 1 noreply\r\n5\r\ncas noreply:foo 0 0 1 9 noreply\r\n6\r\nget noreply:foo\r\nincr noreply:foo 3 noreply\r\ndecr noreply:foo 2 noreply\r\nget noreply:foo\r\ndelete noreply:foo noreply\r\nget noreply:foo\r\n",
            b"VALUE noreply:foo 0 3\r\n534\r\nEND\r\nVALUE noreply:foo 0 3\r\n535\r\nEND\r\nEND\r\n",
            true,
            vec![
                (Request::FlushAll { delay: None, noreply: true }, None),
                (Request::FlushAll { delay: Some(0), noreply: true }, None),
                (Request::Verbosity { level: 0, noreply: true }, None),
                (store(StoreCommand::Add, "noreply:foo", 0, 0, b"1", true), None),
                (store(StoreCommand::Set, "noreply:foo", 0, 0, b"2", true), None),
                (store(StoreCommand::Replace, "noreply:foo", 0, 0, b"3", true), None),
                (store(StoreCommand::Append, "noreply:foo", 0, 0, b"4", true), None),
                (store(StoreCommand::Prepend, "noreply:foo", 0, 0, b"5", true), None),
                (store(StoreCommand::Cas(9), "noreply:foo", 0, 0, b"6", true), None),
                (get(&["noreply:foo"]), Some(values(vec![value("noreply:foo", 0, None, b"534")]))),
                (incr("noreply:foo", 3, true), None),
                (decr("noreply:foo", 2, true), None),
                (get(&["noreply:foo"]), Some(values(vec![value("noreply:foo", 0, None, b"535")]))),
                (delete("noreply:foo", true), None),
                (get(&["noreply:foo"]), Some(values(vec![]))),
            ],
        ),
        ex(
            "48: legacy delete <key> 0 and 0 noreply",
            b"delete key 0\r\ndelete key 0 noreply\r\nget key\r\n",
            b"DELETED\r\nEND\r\n",
            false,
            vec![
                (delete("key", false), Some(Response::Deleted)),
                (delete("key", true), None),
                (get(&["key"]), Some(values(vec![]))),
            ],
        ),
        ex(
            "49: zero-length value",
            b"set k 0 0 0\r\n\r\nget k\r\n",
            b"STORED\r\nVALUE k 0 0\r\n\r\nEND\r\n",
            true,
            vec![
                (set("k", 0, 0, b""), Some(Response::Stored)),
                (get(&["k"]), Some(values(vec![value("k", 0, None, b"")]))),
            ],
        ),
        ex(
            "52: 9 + 1 grows to 10",
            b"set num 0 0 1\r\n9\r\nincr num 1\r\nget num\r\n",
            b"STORED\r\n10\r\nVALUE num 0 2\r\n10\r\nEND\r\n",
            true,
            vec![
                (set("num", 0, 0, b"9"), Some(Response::Stored)),
                (incr("num", 1, false), Some(number(10))),
                (get(&["num"]), Some(values(vec![value("num", 0, None, b"10")]))),
            ],
        ),
        ex(
            "53: six sets in one write, six STORED",
            b"set a1 0 0 1\r\n1\r\nset a2 0 0 1\r\n2\r\nset a3 0 0 1\r\n3\r\nset a4 0 0 1\r\n4\r\nset a5 0 0 1\r\n5\r\nset a6 0 0 1\r\n6\r\n",
            b"STORED\r\nSTORED\r\nSTORED\r\nSTORED\r\nSTORED\r\nSTORED\r\n",
            true,
            (1..=6)
                .map(|i| (set(&format!("a{i}"), 0, 0, i.to_string().as_bytes()), Some(Response::Stored)))
                .collect(),
        ),
        ex(
            "55/58: unknown command ERROR; flush_all not allowed",
            b"flush_all\r\nflush_all 86400\r\n",
            b"CLIENT_ERROR flush_all not allowed\r\nOK\r\n",
            true,
            vec![
                (Request::FlushAll { delay: None, noreply: false }, Some(error(ErrorKind::Client, "flush_all not allowed"))),
                (Request::FlushAll { delay: Some(86400), noreply: false }, Some(Response::Ok)),
            ],
        ),
        ex(
            "60: gat miss, gats of two keys",
            b"gat 10 nokey\r\ngats 10 foo1 foo2\r\n",
            b"END\r\nVALUE foo1 0 2 31\r\nfu\r\nVALUE foo2 0 2 32\r\nfu\r\nEND\r\n",
            true,
            vec![
                (gat(10, &["nokey"]), Some(values(vec![]))),
                (
                    gats(10, &["foo1", "foo2"]),
                    Some(values(vec![value("foo1", 0, Some(31), b"fu"), value("foo2", 0, Some(32), b"fu")])),
                ),
            ],
        ),
        ex(
            "61: flags round trip through set/get",
            b"set f 0 0 1\r\nx\r\nget f\r\nset f 123 0 1\r\nx\r\nget f\r\nset f 65535 0 1\r\nx\r\nget f\r\nset f 2147483648 0 1\r\nx\r\nget f\r\n",
            b"STORED\r\nVALUE f 0 1\r\nx\r\nEND\r\nSTORED\r\nVALUE f 123 1\r\nx\r\nEND\r\nSTORED\r\nVALUE f 65535 1\r\nx\r\nEND\r\nSTORED\r\nVALUE f 2147483648 1\r\nx\r\nEND\r\n",
            true,
            [0u32, 123, 65535, 1 << 31]
                .into_iter()
                .flat_map(|f| {
                    [
                        (set("f", f, 0, b"x"), Some(Response::Stored)),
                        (get(&["f"]), Some(values(vec![value("f", f, None, b"x")]))),
                    ]
                })
                .collect(),
        ),
    ]
}

#[test]
fn test_suite_edge_cases() {
    run(table());
}

/// 21: memcached evaluates flags in the order written (`t T30` reports the old TTL); our
/// encoder always writes `T` before `t`, so `t` reports the TTL after the update.
#[test]
fn t_after_t_update() {
    let req = mg(
        key("k"),
        MetaGetFlags {
            ttl: true,
            touch: Some(30),
            ..gf()
        },
    );
    assert_eq!(encode(&req), b"mg k T30 t\r\n");
    // A server-side decode of the other order gives the same flags.
    assert_eq!(decode_all_requests(b"mg k t T30\r\n"), vec![req]);
}

/// 26: an error after quiet requests cannot be attributed: the connection is poisoned (every
/// pending request fails) rather than risk handing an error to the wrong caller.
#[test]
fn error_after_a_quiet_batch_poisons() {
    let requests = [
        ms(
            key("quiet"),
            b"bo",
            MetaSetFlags {
                quiet: true,
                ..sf()
            },
        ),
        md(
            key("quiet"),
            MetaDeleteFlags {
                quiet: true,
                ..Default::default()
            },
        ),
        get(&["k"]),
    ];
    let now = Instant::now();
    let mut conn = Connection::default();
    let ids: Vec<_> = requests
        .iter()
        .map(|r| conn.send(r.clone()).unwrap())
        .collect();
    let n = conn.transmit().len();
    conn.advance_transmit(n, now);
    conn.receive(b"CLIENT_ERROR bad command line format\r\n", now);
    assert_eq!(conn.poisoned(), Some(&PoisonReason::AmbiguousError));
    let mut failed = Vec::new();
    while let Some((id, r)) = conn.poll_response() {
        assert!(matches!(r, Err(Error::Poisoned(_))), "{r:?}");
        failed.push(id);
    }
    assert_eq!(failed, ids);
}

/// 36: values around the limit: the client refuses more than its limit before writing
/// anything; a `SERVER_ERROR` for a too-large item keeps the connection (the block is
/// swallowed), and the item is gone afterwards.
#[test]
fn value_sizes_around_item_size_max() {
    let max = Limits::default().max_value_len;
    assert_eq!(max, 1024 * 1024);
    let at_limit = set("big", 0, 0, &vec![b'x'; max]);
    assert!(at_limit.check(&Limits::default()).is_ok());
    let over = set("big", 0, 0, &vec![b'x'; max + 1]);
    assert_eq!(
        over.to_bytes(&Limits::default()),
        Err(EncodeError::ValueTooLarge { len: max + 1, max })
    );
    let (got, conn) = through_connection(
        &[set("ov", 0, 0, b"MOO"), at_limit, get(&["ov"])],
        b"STORED\r\nSERVER_ERROR object too large for cache\r\nEND\r\n",
    );
    assert_eq!(got[0], Ok(Response::Stored));
    assert_eq!(
        got[1],
        Err(Error::Server(Bytes::from_static(
            b"object too large for cache"
        )))
    );
    assert_eq!(got[2], Ok(values(vec![])));
    assert!(conn.poisoned().is_none());
}

/// 37: a multiget of hundreds of keys: hits in order, misses skipped, then END.
#[test]
fn large_multiget() {
    let keys: Vec<String> = (0..500).map(|i| format!("key{i}")).collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let req = get(&refs);
    let bytes = encode(&req);
    assert!(bytes.len() > 2048, "get lines may pass the 2048-byte limit");
    assert_eq!(decode_all_requests(&bytes), vec![req.clone()]);
    let mut response = Vec::new();
    let mut want = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        if i % 3 != 1 {
            let data = format!("value{i}");
            response.extend_from_slice(
                format!("VALUE {k} {i} {}\r\n{data}\r\n", data.len()).as_bytes(),
            );
            want.push(value(k, i as u32, None, data.as_bytes()));
        }
    }
    response.extend_from_slice(b"END\r\n");
    let replies = replay_all(std::slice::from_ref(&req), &response);
    assert_eq!(replies[0].response, values(want.clone()));
    let chunks: Vec<&[u8]> = response.chunks(7).collect();
    let split = replay_split(std::slice::from_ref(&req), &chunks).unwrap();
    assert_eq!(split.replies[0].response, values(want));
    // A VALUE for a key not asked for (or out of order) is a typed error.
    let bad = b"VALUE key2 0 1\r\nx\r\nVALUE key0 0 1\r\nx\r\nEND\r\n";
    assert!(replay(std::slice::from_ref(&req), bad).is_err());
}

/// 39/41/48/50/54/62: request lines memcached refuses: our server-side decoder refuses them
/// too (a typed error, no panic), and the typed API cannot produce them.
#[test]
fn malformed_requests_are_refused() {
    for line in [
        &b"cas bad blah 0 0 0\r\n\r\n"[..],
        b"cas bad 0 blah 0 0\r\n\r\n",
        b"cas bad 0 0 blah 0\r\n\r\n",
        b"cas bad 0 0 0 blah\r\n\r\n",
        b"cas foo 0 0 6 \r\nbarva2\r\n",
        b"delete key 10 noreply\r\n",
        b"set k 0 0 -1\r\n",
        b"set k 0 0 4294967295\r\n",
        b"set k 0 0 2147483647\r\n",
        b"GET / HTTP/1.0\r\n",
        b"PUT /asdf/asd/fasdfasdf/sadf HTTP/1.1\r\n",
        b"DELETE HTTP/1.1\r\n",
        b"boguscommand slkdsldkfjsd\r\n",
        b"verbosity invalid\r\n",
        b"flush_all invalid\r\n",
        b"mg foo m o o o o o o o o o\r\n",
    ] {
        let mut buf = BytesMut::from(line);
        assert!(
            Request::decode(&mut buf, &Limits::server()).is_err(),
            "{}",
            line.escape_ascii()
        );
    }
    // 51: a key over 250 bytes cannot be built, so `get a <251 bytes>` is never sent; the
    // server's answer (1.6.18, and 1.6.45 with its stray line) still decodes.
    assert_eq!(Key::new([b'k'; 251]), Err(KeyError::TooLong { len: 251 }));
    for bytes in [
        &b"CLIENT_ERROR bad command line format\r\nMN\r\n"[..],
        b"CLIENT_ERROR bad command line format\r\n\r\nMN\r\n",
    ] {
        let replies = replay_all(&[get(&["a"]), Request::MetaNoop], bytes);
        assert_eq!(
            replies[0].response,
            error(ErrorKind::Client, "bad command line format")
        );
        assert_eq!(replies[1].response, Response::MetaNoop);
    }
    // 55: ERROR for an unknown command, whatever was expected.
    assert_eq!(
        decode_one(&Expect::Storage, b"ERROR\r\n"),
        Ok(Some(error(ErrorKind::Error, "")))
    );
}

/// 57: `quit` answers nothing; the end of stream completes it, and the connection takes no
/// more requests.
#[test]
fn quit_then_eof() {
    let now = Instant::now();
    let mut conn = Connection::default();
    let get_id = conn.send(get(&["foo"])).unwrap();
    let quit_id = conn.send(Request::Quit).unwrap();
    assert!(matches!(
        conn.send(get(&["foo"])),
        Err(Error::Poisoned(PoisonReason::Quit))
    ));
    let n = conn.transmit().len();
    assert_eq!(&conn.transmit()[..n], b"get foo\r\nquit\r\n");
    conn.advance_transmit(n, now);
    conn.receive(b"VALUE foo 5 3\r\nbar\r\nEND\r\n", now);
    assert_eq!(
        conn.poll_response(),
        Some((get_id, Ok(values(vec![value("foo", 5, None, b"bar")]))))
    );
    conn.receive_eof();
    assert_eq!(conn.poll_response(), Some((quit_id, Ok(Response::NoReply))));
    assert!(!conn.is_open());
}

/// 26/27 through the connection: it tags every meta request with its own opaque (the request
/// id), so quiet replies are attributed by opaque, and quiet requests with no reply before a
/// later one succeeded silently (a quiet mg: a miss).
#[test]
fn quiet_batch_through_the_connection() {
    let requests = [
        ms(
            key("quiet"),
            b"bo",
            MetaSetFlags {
                quiet: true,
                ..sf()
            },
        ),
        md(
            key("quiet"),
            MetaDeleteFlags {
                quiet: true,
                ..Default::default()
            },
        ),
        mg(
            key("quiet"),
            MetaGetFlags {
                size: true,
                value: true,
                quiet: true,
                ..gf()
            },
        ),
        ms(
            key("quiet"),
            b"bo",
            MetaSetFlags {
                quiet: true,
                ..sf()
            },
        ),
        mg(
            key("quiet"),
            MetaGetFlags {
                value: true,
                quiet: true,
                ..gf()
            },
        ),
        mg(
            key("quiet"),
            MetaGetFlags {
                value: true,
                quiet: true,
                opaque: Some(opaque("mine")),
                ..gf()
            },
        ),
        mg(
            key("quietmiss"),
            MetaGetFlags {
                value: true,
                quiet: true,
                ..gf()
            },
        ),
        Request::MetaNoop,
    ];
    let now = Instant::now();
    let mut conn = Connection::default();
    let ids: Vec<_> = requests
        .iter()
        .map(|r| conn.send(r.clone()).unwrap())
        .collect();
    assert_eq!(
        conn.transmit().escape_ascii().to_string(),
        b"ms quiet 2 O0 q\r\nbo\r\nmd quiet O1 q\r\nmg quiet s v O2 q\r\nms quiet 2 O3 q\r\nbo\r\n\
          mg quiet v O4 q\r\nmg quiet v O5 q\r\nmg quietmiss v O6 q\r\nmn\r\n"
            .escape_ascii()
            .to_string()
    );
    let n = conn.transmit().len();
    conn.advance_transmit(n, now);
    for b in b"VA 2 O4\r\nbo\r\nVA 2 O5\r\nbo\r\nMN\r\n" {
        conn.receive(std::slice::from_ref(b), now);
    }
    let hit = |o: Option<&str>| {
        va(
            b"bo",
            MetaReturnFlags {
                opaque: o.map(opaque),
                ..rf()
            },
        )
    };
    let want = [
        Ok(hd(rf())),
        Ok(hd(rf())),
        Ok(meta_status(MetaStatus::En)),
        Ok(hd(rf())),
        Ok(hit(None)),
        // The caller's own opaque is given back, not the connection's.
        Ok(hit(Some("mine"))),
        Ok(meta_status(MetaStatus::En)),
        Ok(Response::MetaNoop),
    ];
    for (id, want) in ids.iter().zip(want) {
        assert_eq!(conn.poll_response(), Some((*id, want)));
    }
    assert!(conn.poll_response().is_none());
    assert!(conn.poisoned().is_none());
    assert!(conn.is_idle());
}
