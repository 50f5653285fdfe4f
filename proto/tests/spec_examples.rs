//! The byte-exact examples of the project's protocol notes (sections 1, 5, 6 and 7; checked
//! against real servers), written out here as a table (nothing outside this file is read): the
//! request bytes, the typed requests they are, the reply bytes memcached sent, and the reply
//! each request must decode to.
//!
//! For every example:
//! - the request bytes decode (server side) to exactly the typed requests;
//! - the typed requests encode to exactly the request bytes when `canonical` (our meta flags
//!   are written in a fixed order, see `meta/flags.rs`), else they encode to other bytes that
//!   decode to the same requests;
//! - the reply bytes decode against the requests, in one piece and one byte at a time, to the
//!   expected replies, consuming every byte; silent requests (`noreply`, quiet hits, `quit`)
//!   get nothing;
//! - each reply re-encodes to its bytes (up to the order of meta return flags);
//! - where no request carries its own opaque or is silent, the [`Connection`] state machine
//!   gives the same replies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod spec_support;

use bytes::{Bytes, BytesMut};
use mcache_proto::text::request::StoreCommand;
use mcache_proto::{
    Error, ErrorKind, Expect, Key, Limits, MetaArithmeticFlags, MetaArithmeticMode,
    MetaDeleteFlags, MetaGetFlags, MetaReturnFlags, MetaSetFlags, MetaSetMode, MetaStatus, Request,
    Response, ResponseDecoder,
};
use spec_support::*;

fn add(k: &str, v: &[u8]) -> Request {
    store(StoreCommand::Add, k, 0, 0, v, false)
}

fn cas(k: &str, v: &[u8], unique: u64) -> Request {
    store(StoreCommand::Cas(unique), k, 0, 0, v, false)
}

fn mgk(k: &str, flags: MetaGetFlags) -> Request {
    mg(key(k), flags)
}

fn msk(k: &str, v: &[u8], flags: MetaSetFlags) -> Request {
    ms(key(k), v, flags)
}

fn mdk(k: &str, flags: MetaDeleteFlags) -> Request {
    md(key(k), flags)
}

fn mak(k: &str, flags: MetaArithmeticFlags) -> Request {
    ma(key(k), flags)
}

fn bin(wire: &'static str) -> Key {
    Key::from_base64(Bytes::from_static(wire.as_bytes())).expect("valid base64 key")
}

fn v(flags: MetaGetFlags) -> MetaGetFlags {
    MetaGetFlags {
        value: true,
        ..flags
    }
}

fn gf() -> MetaGetFlags {
    MetaGetFlags::default()
}

fn sf() -> MetaSetFlags {
    MetaSetFlags::default()
}

fn df() -> MetaDeleteFlags {
    MetaDeleteFlags::default()
}

fn af() -> MetaArithmeticFlags {
    MetaArithmeticFlags::default()
}

fn client_error(m: &str) -> Response {
    error(ErrorKind::Client, m)
}

/// Section 1 (framing) and 5 (text commands).
fn text_examples() -> Vec<Example> {
    let stored = || Some(Response::Stored);
    let not_stored = || Some(Response::NotStored);
    let nothing = || None;
    vec![
        ex(
            "1: mixed text + meta pipeline",
            b"get foo\r\nmg foo v\r\nset p1 0 0 1\r\nx\r\nms p2 1\r\ny\r\nincr nokey 1\r\nmn\r\n",
            b"VALUE foo 5 3\r\nbar\r\nEND\r\nVA 3\r\nbar\r\nSTORED\r\nHD\r\nNOT_FOUND\r\nMN\r\n",
            true,
            vec![
                (get(&["foo"]), Some(values(vec![value("foo", 5, None, b"bar")]))),
                (mgk("foo", v(gf())), Some(va(b"bar", rf()))),
                (set("p1", 0, 0, b"x"), stored()),
                (msk("p2", b"y", sf()), Some(hd(rf()))),
                (incr("nokey", 1, false), Some(Response::NotFound)),
                (Request::MetaNoop, Some(Response::MetaNoop)),
            ],
        ),
        ex(
            "1: leading, double and trailing spaces",
            b"   get  foo   \r\n",
            b"VALUE foo 5 3\r\nbar\r\nEND\r\n",
            false,
            vec![(get(&["foo"]), Some(values(vec![value("foo", 5, None, b"bar")])))],
        ),
        ex(
            "5.1: set",
            b"set foo 5 0 3\r\nbar\r\n",
            b"STORED\r\n",
            true,
            vec![(set("foo", 5, 0, b"bar"), stored())],
        ),
        ex(
            "5.1: add existing, replace/append/prepend missing",
            b"add foo 0 0 1\r\nx\r\nreplace repk 0 0 1\r\nx\r\nappend appk 0 0 1\r\nx\r\nprepend appk 0 0 1\r\nx\r\n",
            b"NOT_STORED\r\nNOT_STORED\r\nNOT_STORED\r\nNOT_STORED\r\n",
            true,
            vec![
                (add("foo", b"x"), not_stored()),
                (store(StoreCommand::Replace, "repk", 0, 0, b"x", false), not_stored()),
                (store(StoreCommand::Append, "appk", 0, 0, b"x", false), not_stored()),
                (store(StoreCommand::Prepend, "appk", 0, 0, b"x", false), not_stored()),
            ],
        ),
        ex(
            "5.1: add new",
            b"add addk 0 0 1\r\nx\r\n",
            b"STORED\r\n",
            true,
            vec![(add("addk", b"x"), stored())],
        ),
        ex(
            "5.1: append + prepend existing keep the flags",
            b"append appk 99 0 4\r\n_end\r\nprepend appk 99 0 4\r\nbeg_\r\nget appk\r\n",
            b"STORED\r\nSTORED\r\nVALUE appk 7 11\r\nbeg_mid_end\r\nEND\r\n",
            true,
            vec![
                (store(StoreCommand::Append, "appk", 99, 0, b"_end", false), stored()),
                (store(StoreCommand::Prepend, "appk", 99, 0, b"beg_", false), stored()),
                (get(&["appk"]), Some(values(vec![value("appk", 7, None, b"beg_mid_end")]))),
            ],
        ),
        ex(
            "5.1: cas outcomes",
            b"cas casme 0 0 1 1010\r\nb\r\ncas casme 0 0 1 10\r\nc\r\ncas nokey_cas 0 0 1 1\r\nc\r\ncas casme 0 0 1 0\r\nc\r\ncas casme 0 0 1 18446744073709551615\r\nc\r\n",
            b"EXISTS\r\nSTORED\r\nNOT_FOUND\r\nEXISTS\r\nEXISTS\r\n",
            true,
            vec![
                (cas("casme", b"b", 1010), Some(Response::Exists)),
                (cas("casme", b"c", 10), stored()),
                (cas("nokey_cas", b"c", 1), Some(Response::NotFound)),
                (cas("casme", b"c", 0), Some(Response::Exists)),
                (cas("casme", b"c", u64::MAX), Some(Response::Exists)),
            ],
        ),
        ex(
            "5.1: zero-length value",
            b"set empty 0 0 0\r\n\r\nget empty\r\n",
            b"STORED\r\nVALUE empty 0 0\r\n\r\nEND\r\n",
            true,
            vec![
                (set("empty", 0, 0, b""), stored()),
                (get(&["empty"]), Some(values(vec![value("empty", 0, None, b"")]))),
            ],
        ),
        ex(
            "5.1: binary-safe value with \\r\\n inside",
            b"set crlf 0 0 8\r\na\r\nb\r\nc\r\r\nget crlf\r\n",
            b"STORED\r\nVALUE crlf 0 8\r\na\r\nb\r\nc\r\r\nEND\r\n",
            true,
            vec![
                (set("crlf", 0, 0, b"a\r\nb\r\nc\r"), stored()),
                (get(&["crlf"]), Some(values(vec![value("crlf", 0, None, b"a\r\nb\r\nc\r")]))),
            ],
        ),
        ex(
            "5.1: flags max u32",
            b"set fl 4294967295 0 1\r\nx\r\nget fl\r\n",
            b"STORED\r\nVALUE fl 4294967295 1\r\nx\r\nEND\r\n",
            true,
            vec![
                (set("fl", u32::MAX, 0, b"x"), stored()),
                (get(&["fl"]), Some(values(vec![value("fl", u32::MAX, None, b"x")]))),
            ],
        ),
        ex(
            "5.2: get hit",
            b"get foo\r\n",
            b"VALUE foo 5 3\r\nbar\r\nEND\r\n",
            true,
            vec![(get(&["foo"]), Some(values(vec![value("foo", 5, None, b"bar")])))],
        ),
        ex(
            "5.2: get miss",
            b"get missing\r\n",
            b"END\r\n",
            true,
            vec![(get(&["missing"]), Some(values(vec![])))],
        ),
        ex(
            "5.2: get multi with a miss and a duplicate",
            b"get foo missing foo\r\n",
            b"VALUE foo 5 3\r\nbar\r\nVALUE foo 5 3\r\nbar\r\nEND\r\n",
            true,
            vec![(
                get(&["foo", "missing", "foo"]),
                Some(values(vec![
                    value("foo", 5, None, b"bar"),
                    value("foo", 5, None, b"bar"),
                ])),
            )],
        ),
        ex(
            "5.2: gets",
            b"gets foo\r\n",
            b"VALUE foo 5 3 1\r\nbar\r\nEND\r\n",
            true,
            vec![(gets(&["foo"]), Some(values(vec![value("foo", 5, Some(1), b"bar")])))],
        ),
        ex(
            "5.2: gat",
            b"gat 100 tk\r\n",
            b"VALUE tk 3 2\r\nhi\r\nEND\r\n",
            true,
            vec![(gat(100, &["tk"]), Some(values(vec![value("tk", 3, None, b"hi")])))],
        ),
        ex(
            "5.2: gats with a miss",
            b"gats 100 tk nokey_t\r\n",
            b"VALUE tk 3 2 37\r\nhi\r\nEND\r\n",
            true,
            vec![(
                gats(100, &["tk", "nokey_t"]),
                Some(values(vec![value("tk", 3, Some(37), b"hi")])),
            )],
        ),
        ex(
            "5.2: gat -1 returns the value, then it is gone",
            b"set ga 0 0 1\r\nx\r\ngat -1 ga\r\nget ga\r\n",
            b"STORED\r\nVALUE ga 0 1\r\nx\r\nEND\r\nEND\r\n",
            true,
            vec![
                (set("ga", 0, 0, b"x"), stored()),
                (gat(-1, &["ga"]), Some(values(vec![value("ga", 0, None, b"x")]))),
                (get(&["ga"]), Some(values(vec![]))),
            ],
        ),
        ex(
            "5.2: `get foo noreply`: noreply is a key",
            b"get foo noreply\r\n",
            b"VALUE foo 5 3\r\nbar\r\nEND\r\n",
            true,
            vec![(
                get(&["foo", "noreply"]),
                Some(values(vec![value("foo", 5, None, b"bar")])),
            )],
        ),
        ex(
            "5.3: delete hit and miss",
            b"delete foo\r\ndelete foo\r\n",
            b"DELETED\r\nNOT_FOUND\r\n",
            true,
            vec![
                (delete("foo", false), Some(Response::Deleted)),
                (delete("foo", false), Some(Response::NotFound)),
            ],
        ),
        ex(
            "5.3: legacy `delete <key> 0`",
            b"delete nr 0\r\n",
            b"NOT_FOUND\r\n",
            false,
            vec![(delete("nr", false), Some(Response::NotFound))],
        ),
        ex(
            "5.4: incr, decr clamps at 0, miss",
            b"incr n 5\r\ndecr n 100\r\nincr nokey_incr 1\r\n",
            b"15\r\n0\r\nNOT_FOUND\r\n",
            true,
            vec![
                (incr("n", 5, false), Some(number(15))),
                (decr("n", 100, false), Some(number(0))),
                (incr("nokey_incr", 1, false), Some(Response::NotFound)),
            ],
        ),
        ex(
            "5.4: decr shrinks in place, space padded",
            b"decr n 1\r\nget n\r\n",
            b"9\r\nVALUE n 0 2\r\n9 \r\nEND\r\n",
            true,
            vec![
                (decr("n", 1, false), Some(number(9))),
                (get(&["n"]), Some(values(vec![value("n", 0, None, b"9 ")]))),
            ],
        ),
        ex(
            "5.4: incr wraps at 2^64",
            b"incr big 1\r\nincr big 18446744073709551615\r\n",
            b"0\r\n18446744073709551614\r\n",
            true,
            vec![
                (incr("big", 1, false), Some(number(0))),
                (incr("big", u64::MAX, false), Some(number(u64::MAX - 1))),
            ],
        ),
        ex(
            "5.4: incr grows the value",
            b"incr grow 1\r\nget grow\r\n",
            b"10\r\nVALUE grow 0 2\r\n10\r\nEND\r\n",
            true,
            vec![
                (incr("grow", 1, false), Some(number(10))),
                (get(&["grow"]), Some(values(vec![value("grow", 0, None, b"10")]))),
            ],
        ),
        ex(
            "5.4/7: incr of a non-numeric value",
            b"incr txt 1\r\n",
            b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
            true,
            vec![(
                incr("txt", 1, false),
                Some(client_error("cannot increment or decrement non-numeric value")),
            )],
        ),
        ex(
            "5.5: touch hit and miss",
            b"touch tk 100\r\ntouch nokey_t 100\r\n",
            b"TOUCHED\r\nNOT_FOUND\r\n",
            true,
            vec![
                (touch("tk", 100, false), Some(Response::Touched)),
                (touch("nokey_t", 100, false), Some(Response::NotFound)),
            ],
        ),
        ex(
            "5.6: flush_all, flush_all 0, flush_all -1",
            b"flush_all\r\nflush_all 0\r\nflush_all -1\r\nget a\r\n",
            b"OK\r\nOK\r\nOK\r\nEND\r\n",
            true,
            vec![
                (Request::FlushAll { delay: None, noreply: false }, Some(Response::Ok)),
                (Request::FlushAll { delay: Some(0), noreply: false }, Some(Response::Ok)),
                (Request::FlushAll { delay: Some(-1), noreply: false }, Some(Response::Ok)),
                (get(&["a"]), Some(values(vec![]))),
            ],
        ),
        ex(
            "5.6: flush_all noreply, flush_all 0 noreply",
            b"flush_all noreply\r\nflush_all 0 noreply\r\nget a\r\n",
            b"END\r\n",
            true,
            vec![
                (Request::FlushAll { delay: None, noreply: true }, nothing()),
                (Request::FlushAll { delay: Some(0), noreply: true }, nothing()),
                (get(&["a"]), Some(values(vec![]))),
            ],
        ),
        ex(
            "5.6: delayed flush_all",
            b"flush_all 2\r\nget b\r\n",
            b"OK\r\nVALUE b 0 1\r\nx\r\nEND\r\n",
            true,
            vec![
                (Request::FlushAll { delay: Some(2), noreply: false }, Some(Response::Ok)),
                (get(&["b"]), Some(values(vec![value("b", 0, None, b"x")]))),
            ],
        ),
        ex(
            "5.7: version",
            b"version\r\n",
            b"VERSION 1.6.18\r\n",
            true,
            vec![(Request::Version, Some(Response::Version(Bytes::from_static(b"1.6.18"))))],
        ),
        ex(
            "5.7: verbosity, verbosity noreply",
            b"verbosity 1\r\nverbosity 0 noreply\r\nverbosity 0\r\n",
            b"OK\r\nOK\r\n",
            true,
            vec![
                (Request::Verbosity { level: 1, noreply: false }, Some(Response::Ok)),
                (Request::Verbosity { level: 0, noreply: true }, nothing()),
                (Request::Verbosity { level: 0, noreply: false }, Some(Response::Ok)),
            ],
        ),
        ex(
            "5.7: get, quit, get: nothing after quit",
            b"get foo\r\nquit\r\nget foo\r\n",
            b"VALUE foo 5 3\r\nbar\r\nEND\r\n",
            true,
            vec![
                (get(&["foo"]), Some(values(vec![value("foo", 5, None, b"bar")]))),
                (Request::Quit, nothing()),
                (get(&["foo"]), nothing()),
            ],
        ),
        ex(
            "5.8: stats",
            b"stats\r\n",
            b"STAT pid 17606\r\nSTAT uptime 414\r\nSTAT time 1795575790\r\nSTAT version 1.6.18\r\nSTAT libevent 2.1.12-stable\r\nEND\r\n",
            true,
            vec![(
                stats(None),
                Some(stat_lines(&[
                    ("pid", "17606"),
                    ("uptime", "414"),
                    ("time", "1795575790"),
                    ("version", "1.6.18"),
                    ("libevent", "2.1.12-stable"),
                ])),
            )],
        ),
        ex(
            "5.8: stats settings (values with dots, NULL, (null))",
            b"stats settings\r\n",
            b"STAT maxbytes 67108864\r\nSTAT inter 127.0.0.1\r\nSTAT domain_socket NULL\r\nSTAT item_size_max 1048576\r\nSTAT growth_factor 1.25\r\nSTAT memory_file (null)\r\nEND\r\n",
            true,
            vec![(
                stats(Some("settings")),
                Some(stat_lines(&[
                    ("maxbytes", "67108864"),
                    ("inter", "127.0.0.1"),
                    ("domain_socket", "NULL"),
                    ("item_size_max", "1048576"),
                    ("growth_factor", "1.25"),
                    ("memory_file", "(null)"),
                ])),
            )],
        ),
        ex(
            "5.8: stats items / slabs / sizes / conns",
            b"stats items\r\nstats slabs\r\nstats sizes\r\nstats conns\r\n",
            b"STAT items:1:number 35\r\nSTAT items:1:number_hot 6\r\nEND\r\nSTAT 1:chunk_size 96\r\nSTAT active_slabs 5\r\nSTAT total_malloced 6291456\r\nEND\r\nSTAT sizes_status disabled\r\nEND\r\nSTAT 23:addr tcp:127.0.0.1:22122\r\nSTAT 23:state conn_listening\r\nEND\r\n",
            true,
            vec![
                (
                    stats(Some("items")),
                    Some(stat_lines(&[("items:1:number", "35"), ("items:1:number_hot", "6")])),
                ),
                (
                    stats(Some("slabs")),
                    Some(stat_lines(&[
                        ("1:chunk_size", "96"),
                        ("active_slabs", "5"),
                        ("total_malloced", "6291456"),
                    ])),
                ),
                (stats(Some("sizes")), Some(stat_lines(&[("sizes_status", "disabled")]))),
                (
                    stats(Some("conns")),
                    Some(stat_lines(&[
                        ("23:addr", "tcp:127.0.0.1:22122"),
                        ("23:state", "conn_listening"),
                    ])),
                ),
            ],
        ),
        ex(
            "5.8: stats detail on / dump (PREFIX lines) / off",
            b"stats detail on\r\nstats detail dump\r\nstats detail off\r\n",
            b"OK\r\nPREFIX pfx get 2 hit 1 set 1 del 1\r\nEND\r\nOK\r\n",
            true,
            vec![
                (stats(Some("detail on")), Some(Response::Ok)),
                (
                    stats(Some("detail dump")),
                    Some(Response::Lines(vec![Bytes::from_static(
                        b"PREFIX pfx get 2 hit 1 set 1 del 1",
                    )])),
                ),
                (stats(Some("detail off")), Some(Response::Ok)),
            ],
        ),
        ex(
            "5.8: empty stats detail dump, stats extstore",
            b"stats detail dump\r\nstats extstore\r\n",
            b"END\r\nEND\r\n",
            true,
            vec![
                (stats(Some("detail dump")), Some(Response::Stats(vec![]))),
                (stats(Some("extstore")), Some(Response::Stats(vec![]))),
            ],
        ),
        ex(
            "5.8: stats cachedump (ITEM lines)",
            b"stats cachedump 1 1\r\n",
            b"ITEM mz [0 b; 0 s]\r\nEND\r\n",
            true,
            vec![(
                stats(Some("cachedump 1 1")),
                Some(Response::Lines(vec![Bytes::from_static(b"ITEM mz [0 b; 0 s]")])),
            )],
        ),
        ex(
            "5.8: stats reset (RESET, no END)",
            b"stats reset\r\nversion\r\n",
            b"RESET\r\nVERSION 1.6.18\r\n",
            true,
            vec![
                (stats(Some("reset")), Some(Response::Reset)),
                (Request::Version, Some(Response::Version(Bytes::from_static(b"1.6.18")))),
            ],
        ),
        ex(
            "5.8/7: stats detail (usage), stats bogus, stats proxy",
            b"stats detail\r\nstats bogus\r\nstats proxy\r\n",
            b"CLIENT_ERROR usage: stats detail on|off|dump\r\nERROR\r\nERROR\r\n",
            true,
            vec![
                (stats(Some("detail")), Some(client_error("usage: stats detail on|off|dump"))),
                (stats(Some("bogus")), Some(error(ErrorKind::Error, ""))),
                (stats(Some("proxy")), Some(error(ErrorKind::Error, ""))),
            ],
        ),
        ex(
            "5.10: noreply storage, then get",
            b"set nr 0 0 1 noreply\r\nx\r\nadd nr 0 0 1 noreply\r\ny\r\nget nr\r\n",
            b"VALUE nr 0 1\r\nx\r\nEND\r\n",
            true,
            vec![
                (store(StoreCommand::Set, "nr", 0, 0, b"x", true), nothing()),
                (store(StoreCommand::Add, "nr", 0, 0, b"y", true), nothing()),
                (get(&["nr"]), Some(values(vec![value("nr", 0, None, b"x")]))),
            ],
        ),
        ex(
            "5.10: noreply replace/append/prepend/cas, then get",
            b"replace nr 0 0 1 noreply\r\nz\r\nappend nr 0 0 1 noreply\r\na\r\nprepend nr 0 0 1 noreply\r\np\r\ncas nr 0 0 1 1 noreply\r\nq\r\nget nr\r\n",
            b"VALUE nr 0 3\r\npza\r\nEND\r\n",
            true,
            vec![
                (store(StoreCommand::Replace, "nr", 0, 0, b"z", true), nothing()),
                (store(StoreCommand::Append, "nr", 0, 0, b"a", true), nothing()),
                (store(StoreCommand::Prepend, "nr", 0, 0, b"p", true), nothing()),
                (store(StoreCommand::Cas(1), "nr", 0, 0, b"q", true), nothing()),
                (get(&["nr"]), Some(values(vec![value("nr", 0, None, b"pza")]))),
            ],
        ),
        ex(
            "5.10: noreply incr/decr/touch/delete",
            b"incr nrc 5 noreply\r\ndecr nrc 3 noreply\r\nget nrc\r\ntouch nr 100 noreply\r\ndelete nr noreply\r\nget nr\r\n",
            b"VALUE nrc 0 2\r\n7 \r\nEND\r\nEND\r\n",
            true,
            vec![
                (incr("nrc", 5, true), nothing()),
                (decr("nrc", 3, true), nothing()),
                (get(&["nrc"]), Some(values(vec![value("nrc", 0, None, b"7 ")]))),
                (touch("nr", 100, true), nothing()),
                (delete("nr", true), nothing()),
                (get(&["nr"]), Some(values(vec![]))),
            ],
        ),
    ]
}

/// Section 6: the meta protocol.
fn meta_examples() -> Vec<Example> {
    let q = |f: MetaGetFlags| MetaGetFlags { quiet: true, ..f };
    let mn = || (Request::MetaNoop, Some(Response::MetaNoop));
    vec![
        ex(
            "6.2: mg hit without flags, with v",
            b"mg foo\r\nmg foo v\r\n",
            b"HD\r\nVA 3\r\nbar\r\n",
            true,
            vec![
                (mgk("foo", gf()), Some(hd(rf()))),
                (mgk("foo", v(gf())), Some(va(b"bar", rf()))),
            ],
        ),
        ex(
            "6.2: mg with every return flag",
            b"mg foo s v f t c k h l Oopaque123\r\n",
            b"VA 3 s3 f5 t-1 c76 kfoo h1 l0 Oopaque123\r\nbar\r\n",
            false,
            vec![(
                mgk(
                    "foo",
                    MetaGetFlags {
                        size: true,
                        value: true,
                        client_flags: true,
                        ttl: true,
                        cas: true,
                        key: true,
                        hit: true,
                        last_access: true,
                        opaque: Some(opaque("opaque123")),
                        ..gf()
                    },
                ),
                Some(va(
                    b"bar",
                    MetaReturnFlags {
                        size: Some(3),
                        client_flags: Some(5),
                        ttl: Some(-1),
                        cas: Some(76),
                        key: Some(key("foo")),
                        hit: Some(true),
                        last_access: Some(0),
                        opaque: Some(opaque("opaque123")),
                        ..rf()
                    },
                )),
            )],
        ),
        ex(
            "6.2: h and l before and after a fetch",
            b"set hl 0 0 1\r\nx\r\nmg hl h l\r\nmg hl h l\r\n",
            b"STORED\r\nHD h0 l0\r\nHD h1 l0\r\n",
            true,
            vec![
                (set("hl", 0, 0, b"x"), Some(Response::Stored)),
                (
                    mgk("hl", MetaGetFlags { hit: true, last_access: true, ..gf() }),
                    Some(hd(MetaReturnFlags { hit: Some(false), last_access: Some(0), ..rf() })),
                ),
                (
                    mgk("hl", MetaGetFlags { hit: true, last_access: true, ..gf() }),
                    Some(hd(MetaReturnFlags { hit: Some(true), last_access: Some(0), ..rf() })),
                ),
            ],
        ),
        ex(
            "6.2: mg miss",
            b"mg nokey_mg v\r\n",
            b"EN\r\n",
            true,
            vec![(mgk("nokey_mg", v(gf())), Some(meta_status(MetaStatus::En)))],
        ),
        ex(
            "6.2: mg miss echoes only k and O",
            b"mg nokey_mg v k Oab s t c f\r\n",
            b"EN knokey_mg Oab\r\n",
            false,
            vec![(
                mgk(
                    "nokey_mg",
                    MetaGetFlags {
                        value: true,
                        key: true,
                        opaque: Some(opaque("ab")),
                        size: true,
                        ttl: true,
                        cas: true,
                        client_flags: true,
                        ..gf()
                    },
                ),
                Some(meta(
                    MetaStatus::En,
                    MetaReturnFlags { key: Some(key("nokey_mg")), opaque: Some(opaque("ab")), ..rf() },
                    None,
                )),
            )],
        ),
        ex(
            "6.2: quiet miss answers nothing",
            b"mg nokey_mg v q\r\nmn\r\n",
            b"MN\r\n",
            true,
            vec![(mgk("nokey_mg", q(v(gf()))), None), mn()],
        ),
        ex(
            "6.2: quiet hit with v is not hidden",
            b"mg foo v q\r\nmn\r\n",
            b"VA 3\r\nbar\r\nMN\r\n",
            true,
            vec![(mgk("foo", q(v(gf()))), Some(va(b"bar", rf()))), mn()],
        ),
        ex(
            "6.2: quiet hit without v: HD (1.6.18)",
            b"mg foo q\r\nmn\r\n",
            b"HD\r\nMN\r\n",
            true,
            vec![(mgk("foo", q(gf())), Some(hd(rf()))), mn()],
        ),
        ex(
            "6.2: pipelined quiet mg, only the hit answers",
            b"mg pa v q Oa k\r\nmg pb v q Ob k\r\nmg pc v q Oc k\r\nmn\r\n",
            b"VA 1 Ob kpb\r\nB\r\nMN\r\n",
            false,
            vec![
                (
                    mgk("pa", MetaGetFlags { opaque: Some(opaque("a")), key: true, ..q(v(gf())) }),
                    None,
                ),
                (
                    mgk("pb", MetaGetFlags { opaque: Some(opaque("b")), key: true, ..q(v(gf())) }),
                    Some(va(b"B", MetaReturnFlags { opaque: Some(opaque("b")), key: Some(key("pb")), ..rf() })),
                ),
                (
                    mgk("pc", MetaGetFlags { opaque: Some(opaque("c")), key: true, ..q(v(gf())) }),
                    None,
                ),
                mn(),
            ],
        ),
        ex(
            "6.2: T then t reports the new TTL",
            b"mg foo T300 t\r\n",
            b"HD t300\r\n",
            true,
            vec![(
                mgk("foo", MetaGetFlags { touch: Some(300), ttl: true, ..gf() }),
                Some(hd(MetaReturnFlags { ttl: Some(300), ..rf() })),
            )],
        ),
        ex(
            "6.2: T-1: t prints a u32-wrapped TTL, item then expired",
            b"mg foo T-1 t\r\nmg foo v\r\n",
            b"HD t4294966879\r\nEN\r\n",
            true,
            vec![
                (
                    mgk("foo", MetaGetFlags { touch: Some(-1), ttl: true, ..gf() }),
                    Some(hd(MetaReturnFlags { ttl: Some(4_294_966_879), ..rf() })),
                ),
                (mgk("foo", v(gf())), Some(meta_status(MetaStatus::En))),
            ],
        ),
        ex(
            "6.2: T0 makes the item permanent",
            b"mg rc2 T0 t\r\n",
            b"HD t-1\r\n",
            true,
            vec![(
                mgk("rc2", MetaGetFlags { touch: Some(0), ttl: true, ..gf() }),
                Some(hd(MetaReturnFlags { ttl: Some(-1), ..rf() })),
            )],
        ),
        ex(
            "6.2: vivify: W, then Z, then quiet HD Z",
            b"mg viv N30 v c t s\r\nmg viv N30 v c t s\r\nmg viv N30 q\r\nmn\r\n",
            b"VA 0 c120 t30 s0 W\r\n\r\nVA 0 c120 t30 s0 Z\r\n\r\nHD Z\r\nMN\r\n",
            false,
            vec![
                (
                    mgk("viv", MetaGetFlags { vivify: Some(30), cas: true, ttl: true, size: true, ..v(gf()) }),
                    Some(va(b"", MetaReturnFlags { cas: Some(120), ttl: Some(30), size: Some(0), won: true, ..rf() })),
                ),
                (
                    mgk("viv", MetaGetFlags { vivify: Some(30), cas: true, ttl: true, size: true, ..v(gf()) }),
                    Some(va(b"", MetaReturnFlags { cas: Some(120), ttl: Some(30), size: Some(0), win_sent: true, ..rf() })),
                ),
                (
                    mgk("viv", MetaGetFlags { vivify: Some(30), ..q(gf()) }),
                    Some(hd(MetaReturnFlags { win_sent: true, ..rf() })),
                ),
                mn(),
            ],
        ),
        ex(
            "6.2: q never hides a vivify",
            b"mg quietautov s N30 t q\r\nmn\r\n",
            b"HD s0 t30 W\r\nMN\r\n",
            false,
            vec![
                (
                    mgk("quietautov", MetaGetFlags { size: true, vivify: Some(30), ttl: true, ..q(gf()) }),
                    Some(hd(MetaReturnFlags { size: Some(0), ttl: Some(30), won: true, ..rf() })),
                ),
                mn(),
            ],
        ),
        ex(
            "6.2: recache: W, then Z, then none above the threshold",
            b"mg rc R30 v t\r\nmg rc R30 v t\r\nmg rc2 R30 v t\r\n",
            b"VA 1 t9 W\r\nr\r\nVA 1 t9 Z\r\nr\r\nVA 1 t100\r\nr\r\n",
            false,
            vec![
                (
                    mgk("rc", MetaGetFlags { recache: Some(30), ttl: true, ..v(gf()) }),
                    Some(va(b"r", MetaReturnFlags { ttl: Some(9), won: true, ..rf() })),
                ),
                (
                    mgk("rc", MetaGetFlags { recache: Some(30), ttl: true, ..v(gf()) }),
                    Some(va(b"r", MetaReturnFlags { ttl: Some(9), win_sent: true, ..rf() })),
                ),
                (
                    mgk("rc2", MetaGetFlags { recache: Some(30), ttl: true, ..v(gf()) }),
                    Some(va(b"r", MetaReturnFlags { ttl: Some(100), ..rf() })),
                ),
            ],
        ),
        ex(
            "6.2: mg C<matching cas> v c (1.6.18 ignores C)",
            b"mg foo v c C119\r\n",
            b"VA 3 c119\r\nbar\r\n",
            false,
            vec![(
                mgk("foo", MetaGetFlags { compare_cas: Some(119), cas: true, ..v(gf()) }),
                Some(va(b"bar", MetaReturnFlags { cas: Some(119), ..rf() })),
            )],
        ),
        ex(
            "6.2: empty opaque, odd opaque bytes",
            b"mg foo O v\r\nmg foo O-_:/+=.!\r\n",
            b"VA 3 O\r\nbar\r\nHD O-_:/+=.!\r\n",
            false,
            vec![
                (
                    mgk("foo", MetaGetFlags { opaque: Some(opaque("")), ..v(gf()) }),
                    Some(va(b"bar", MetaReturnFlags { opaque: Some(opaque("")), ..rf() })),
                ),
                (
                    mgk("foo", MetaGetFlags { opaque: Some(opaque("-_:/+=.!")), ..gf() }),
                    Some(hd(MetaReturnFlags { opaque: Some(opaque("-_:/+=.!")), ..rf() })),
                ),
            ],
        ),
        ex(
            "2/6.2: base64 keys: stored with b, fetched by text key, k answers base64 + b",
            b"ms Zm9vYmlu 2 b\r\nhi\r\nmg foobin k v\r\n",
            b"HD\r\nVA 2 kZm9vYmlu b\r\nhi\r\n",
            true,
            vec![
                (ms(Key::binary(b"foobin").unwrap(), b"hi", sf()), Some(hd(rf()))),
                (
                    mgk("foobin", MetaGetFlags { key: true, ..v(gf()) }),
                    Some(va(b"hi", MetaReturnFlags { key: Some(bin("Zm9vYmlu")), ..rf() })),
                ),
            ],
        ),
        ex(
            "2/6.2: base64 key of a text item: k answers the text key",
            b"mg Zm9v b v k\r\n",
            b"VA 3 kfoo\r\nbar\r\n",
            false,
            vec![(
                mg(bin("Zm9v"), MetaGetFlags { key: true, ..v(gf()) }),
                Some(va(b"bar", MetaReturnFlags { key: Some(key("foo")), ..rf() })),
            )],
        ),
        ex(
            "2/6.2: base64 key miss echoes k and b",
            b"mg AQI= b k v\r\nmg Zm9vbWlzcw== b k\r\n",
            b"EN kAQI= b\r\nEN kZm9vbWlzcw== b\r\n",
            true,
            vec![
                (
                    mg(bin("AQI="), MetaGetFlags { key: true, ..v(gf()) }),
                    Some(meta(MetaStatus::En, MetaReturnFlags { key: Some(bin("AQI=")), ..rf() }, None)),
                ),
                (
                    mg(bin("Zm9vbWlzcw=="), MetaGetFlags { key: true, ..gf() }),
                    Some(meta(MetaStatus::En, MetaReturnFlags { key: Some(bin("Zm9vbWlzcw==")), ..rf() }, None)),
                ),
            ],
        ),
        ex(
            "2/6.3: binary key with CR LF and space inside",
            b"ms AP9iaW4NCiBrZXk= 2 b k c\r\nhi\r\nmg AP9iaW4NCiBrZXk= b k v\r\n",
            b"HD kAP9iaW4NCiBrZXk= b c79\r\nVA 2 kAP9iaW4NCiBrZXk= b\r\nhi\r\n",
            false,
            vec![
                (
                    ms(Key::binary(b"\x00\xffbin\r\n key").unwrap(), b"hi", MetaSetFlags { key: true, cas: true, ..sf() }),
                    Some(hd(MetaReturnFlags { key: Some(bin("AP9iaW4NCiBrZXk=")), cas: Some(79), ..rf() })),
                ),
                (
                    mg(bin("AP9iaW4NCiBrZXk="), MetaGetFlags { key: true, ..v(gf()) }),
                    Some(va(b"hi", MetaReturnFlags { key: Some(bin("AP9iaW4NCiBrZXk=")), ..rf() })),
                ),
            ],
        ),
        ex(
            "6.3: ms basic",
            b"ms ms1 3\r\nabc\r\n",
            b"HD\r\n",
            true,
            vec![(msk("ms1", b"abc", sf()), Some(hd(rf())))],
        ),
        ex(
            "6.3: ms with T F c k O s, then mg f t v",
            b"ms ms1 3 T100 F77 c k Oxyz s\r\nabc\r\nmg ms1 f t v\r\n",
            b"HD c82 kms1 Oxyz\r\nVA 3 f77 t100\r\nabc\r\n",
            false,
            vec![
                (
                    msk(
                        "ms1",
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
                    Some(hd(MetaReturnFlags { cas: Some(82), key: Some(key("ms1")), opaque: Some(opaque("xyz")), ..rf() })),
                ),
                (
                    mgk("ms1", MetaGetFlags { client_flags: true, ttl: true, ..v(gf()) }),
                    Some(va(b"abc", MetaReturnFlags { client_flags: Some(77), ttl: Some(100), ..rf() })),
                ),
            ],
        ),
        ex(
            "6.3: ms q: success hidden, NS shown",
            b"ms msq 1 q\r\nx\r\nmn\r\nms msq 1 q ME\r\nx\r\nmn\r\n",
            b"MN\r\nNS\r\nMN\r\n",
            false,
            vec![
                (msk("msq", b"x", MetaSetFlags { quiet: true, ..sf() }), None),
                mn(),
                (
                    msk("msq", b"x", MetaSetFlags { quiet: true, mode: Some(MetaSetMode::Add), ..sf() }),
                    Some(meta_status(MetaStatus::Ns)),
                ),
                mn(),
            ],
        ),
        ex(
            "6.3: ms q c k success answers nothing at all",
            b"ms msq2 1 q c k\r\nx\r\nmn\r\n",
            b"MN\r\n",
            false,
            vec![
                (msk("msq2", b"x", MetaSetFlags { quiet: true, cas: true, key: true, ..sf() }), None),
                mn(),
            ],
        ),
        ex(
            "6.3: ms modes",
            b"ms msm 1 ME\r\na\r\nms msm 1 ME\r\na\r\nms nokey_msr 1 MR\r\na\r\nms msm 1 MA\r\nb\r\nms msm 1 MP\r\nc\r\nmg msm v\r\nms nokey_msa 1 MA\r\nb\r\nms msm 1 MS\r\nd\r\n",
            b"HD\r\nNS\r\nNS\r\nHD\r\nHD\r\nVA 3\r\ncab\r\nNS\r\nHD\r\n",
            true,
            vec![
                (msk("msm", b"a", MetaSetFlags { mode: Some(MetaSetMode::Add), ..sf() }), Some(hd(rf()))),
                (msk("msm", b"a", MetaSetFlags { mode: Some(MetaSetMode::Add), ..sf() }), Some(meta_status(MetaStatus::Ns))),
                (msk("nokey_msr", b"a", MetaSetFlags { mode: Some(MetaSetMode::Replace), ..sf() }), Some(meta_status(MetaStatus::Ns))),
                (msk("msm", b"b", MetaSetFlags { mode: Some(MetaSetMode::Append), ..sf() }), Some(hd(rf()))),
                (msk("msm", b"c", MetaSetFlags { mode: Some(MetaSetMode::Prepend), ..sf() }), Some(hd(rf()))),
                (mgk("msm", v(gf())), Some(va(b"cab", rf()))),
                (msk("nokey_msa", b"b", MetaSetFlags { mode: Some(MetaSetMode::Append), ..sf() }), Some(meta_status(MetaStatus::Ns))),
                (msk("msm", b"d", MetaSetFlags { mode: Some(MetaSetMode::Set), ..sf() }), Some(hd(rf()))),
            ],
        ),
        ex(
            "6.3: ms cas: EX, HD c, NF, EX with q, NS c0",
            b"ms msm 1 C188\r\ne\r\nms msm 1 C88 c\r\ne\r\nms nokey_msc 1 C123\r\ne\r\nms msm 1 C1 q\r\ne\r\nmn\r\nms msm 1 ME c\r\nz\r\n",
            b"EX\r\nHD c89\r\nNF\r\nEX\r\nMN\r\nNS c0\r\n",
            true,
            vec![
                (msk("msm", b"e", MetaSetFlags { compare_cas: Some(188), ..sf() }), Some(meta_status(MetaStatus::Ex))),
                (
                    msk("msm", b"e", MetaSetFlags { compare_cas: Some(88), cas: true, ..sf() }),
                    Some(hd(MetaReturnFlags { cas: Some(89), ..rf() })),
                ),
                (msk("nokey_msc", b"e", MetaSetFlags { compare_cas: Some(123), ..sf() }), Some(meta_status(MetaStatus::Nf))),
                (
                    msk("msm", b"e", MetaSetFlags { compare_cas: Some(1), quiet: true, ..sf() }),
                    Some(meta_status(MetaStatus::Ex)),
                ),
                mn(),
                (
                    msk("msm", b"z", MetaSetFlags { mode: Some(MetaSetMode::Add), cas: true, ..sf() }),
                    Some(meta(MetaStatus::Ns, MetaReturnFlags { cas: Some(0), ..rf() }, None)),
                ),
            ],
        ),
        ex(
            "6.3: ms I with an older C: stored stale, mg shows X W",
            b"ms msm 1 I C88\r\nS\r\nmg msm v c\r\n",
            b"HD\r\nVA 1 c90 X W\r\nS\r\n",
            false,
            vec![
                (msk("msm", b"S", MetaSetFlags { invalidate: true, compare_cas: Some(88), ..sf() }), Some(hd(rf()))),
                (
                    mgk("msm", MetaGetFlags { cas: true, ..v(gf()) }),
                    Some(va(b"S", MetaReturnFlags { cas: Some(90), stale: true, won: true, ..rf() })),
                ),
            ],
        ),
        ex(
            "6.3: ms zero length",
            b"ms mz 0\r\n\r\nmg mz v s\r\n",
            b"HD\r\nVA 0 s0\r\n\r\n",
            false,
            vec![
                (msk("mz", b"", sf()), Some(hd(rf()))),
                (mgk("mz", MetaGetFlags { size: true, ..v(gf()) }), Some(va(b"", MetaReturnFlags { size: Some(0), ..rf() }))),
            ],
        ),
        ex(
            "6.4: md hit, miss, quiet miss, quiet hit",
            b"md md1\r\nmd md1\r\nmd md1 q\r\nmn\r\nmd md2 q\r\nmn\r\n",
            b"HD\r\nNF\r\nNF\r\nMN\r\nMN\r\n",
            true,
            vec![
                (mdk("md1", df()), Some(hd(rf()))),
                (mdk("md1", df()), Some(meta_status(MetaStatus::Nf))),
                (mdk("md1", MetaDeleteFlags { quiet: true, ..df() }), Some(meta_status(MetaStatus::Nf))),
                mn(),
                (mdk("md2", MetaDeleteFlags { quiet: true, ..df() }), None),
                mn(),
            ],
        ),
        ex(
            "6.4: md k O, C mismatch, quiet C mismatch",
            b"md md3 k Oop\r\nmd md4 C1\r\nmd mdq q C1\r\nmn\r\n",
            b"HD kmd3 Oop\r\nEX\r\nEX\r\nMN\r\n",
            false,
            vec![
                (
                    mdk("md3", MetaDeleteFlags { key: true, opaque: Some(opaque("op")), ..df() }),
                    Some(hd(MetaReturnFlags { key: Some(key("md3")), opaque: Some(opaque("op")), ..rf() })),
                ),
                (mdk("md4", MetaDeleteFlags { compare_cas: Some(1), ..df() }), Some(meta_status(MetaStatus::Ex))),
                (
                    mdk("mdq", MetaDeleteFlags { compare_cas: Some(1), quiet: true, ..df() }),
                    Some(meta_status(MetaStatus::Ex)),
                ),
                mn(),
            ],
        ),
        ex(
            "6.4: md I T30 then mg: X W, then Z X (server order Z X W)",
            b"md md4 I T30\r\nmg md4 v c t\r\nmg md4 v c t\r\n",
            b"HD\r\nVA 1 c96 t30 X W\r\nx\r\nVA 1 c96 t30 Z X\r\nx\r\n",
            false,
            vec![
                (mdk("md4", MetaDeleteFlags { invalidate: true, ttl: Some(30), ..df() }), Some(hd(rf()))),
                (
                    mgk("md4", MetaGetFlags { cas: true, ttl: true, ..v(gf()) }),
                    Some(va(b"x", MetaReturnFlags { cas: Some(96), ttl: Some(30), stale: true, won: true, ..rf() })),
                ),
                (
                    mgk("md4", MetaGetFlags { cas: true, ttl: true, ..v(gf()) }),
                    Some(va(b"x", MetaReturnFlags { cas: Some(96), ttl: Some(30), stale: true, win_sent: true, ..rf() })),
                ),
            ],
        ),
        ex(
            "6.4: md of a binary key with k",
            b"md AAEC b k\r\n",
            b"HD kAAEC b\r\n",
            true,
            vec![(
                md(bin("AAEC"), MetaDeleteFlags { key: true, ..df() }),
                Some(hd(MetaReturnFlags { key: Some(bin("AAEC")), ..rf() })),
            )],
        ),
        ex(
            "6.5: ma miss, miss with O k",
            b"ma ma1\r\nma ma1 Oo1 k\r\n",
            b"NF\r\nNF Oo1 kma1\r\n",
            false,
            vec![
                (mak("ma1", af()), Some(meta_status(MetaStatus::Nf))),
                (
                    mak("ma1", MetaArithmeticFlags { opaque: Some(opaque("o1")), key: true, ..af() }),
                    Some(meta(MetaStatus::Nf, MetaReturnFlags { opaque: Some(opaque("o1")), key: Some(key("ma1")), ..rf() }, None)),
                ),
            ],
        ),
        ex(
            "6.5: ma autovivify, incr, decr with t c",
            b"ma ma1 N0 J10 v\r\nma ma1 v\r\nma ma1 D5 MD v t c\r\n",
            b"VA 2\r\n10\r\nVA 2\r\n11\r\nVA 1 t-1 c101\r\n6\r\n",
            false,
            vec![
                (mak("ma1", MetaArithmeticFlags { vivify: Some(0), initial: Some(10), value: true, ..af() }), Some(va(b"10", rf()))),
                (mak("ma1", MetaArithmeticFlags { value: true, ..af() }), Some(va(b"11", rf()))),
                (
                    mak(
                        "ma1",
                        MetaArithmeticFlags {
                            delta: Some(5),
                            mode: Some(MetaArithmeticMode::Decrement),
                            value: true,
                            return_ttl: true,
                            cas: true,
                            ..af()
                        },
                    ),
                    Some(va(b"6", MetaReturnFlags { ttl: Some(-1), cas: Some(101), ..rf() })),
                ),
            ],
        ),
        ex(
            "6.5: ma M- clamps at 0, M+",
            b"ma ma1 M- D100 v\r\nma ma1 M+ v\r\n",
            b"VA 1\r\n0\r\nVA 1\r\n1\r\n",
            false,
            vec![
                (
                    mak("ma1", MetaArithmeticFlags { mode: Some(MetaArithmeticMode::Decrement), delta: Some(100), value: true, ..af() }),
                    Some(va(b"0", rf())),
                ),
                (
                    mak("ma1", MetaArithmeticFlags { mode: Some(MetaArithmeticMode::Increment), value: true, ..af() }),
                    Some(va(b"1", rf())),
                ),
            ],
        ),
        ex(
            "6.5: ma q: success hidden, NF shown",
            b"ma ma1 q\r\nmn\r\nma nokey_ma q\r\nmn\r\n",
            b"MN\r\nNF\r\nMN\r\n",
            true,
            vec![
                (mak("ma1", MetaArithmeticFlags { quiet: true, ..af() }), None),
                mn(),
                (mak("nokey_ma", MetaArithmeticFlags { quiet: true, ..af() }), Some(meta_status(MetaStatus::Nf))),
                mn(),
            ],
        ),
        ex(
            "6.5: ma non-numeric, C mismatch",
            b"ma matxt\r\nma ma1 C1\r\n",
            b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\nEX\r\n",
            true,
            vec![
                (mak("matxt", af()), Some(client_error("cannot increment or decrement non-numeric value"))),
                (mak("ma1", MetaArithmeticFlags { compare_cas: Some(1), ..af() }), Some(meta_status(MetaStatus::Ex))),
            ],
        ),
        ex(
            "6.5: ma T t v, k O v, overflow wraps",
            b"ma ma1 T100 t v\r\nma ma1 k Oxx v\r\nma mabig v\r\n",
            b"VA 1 t100\r\n3\r\nVA 1 kma1 Oxx\r\n4\r\nVA 1\r\n0\r\n",
            false,
            vec![
                (
                    mak("ma1", MetaArithmeticFlags { ttl: Some(100), return_ttl: true, value: true, ..af() }),
                    Some(va(b"3", MetaReturnFlags { ttl: Some(100), ..rf() })),
                ),
                (
                    mak("ma1", MetaArithmeticFlags { key: true, opaque: Some(opaque("xx")), value: true, ..af() }),
                    Some(va(b"4", MetaReturnFlags { key: Some(key("ma1")), opaque: Some(opaque("xx")), ..rf() })),
                ),
                (mak("mabig", MetaArithmeticFlags { value: true, ..af() }), Some(va(b"0", rf()))),
            ],
        ),
        ex(
            "6.5: ma of a binary key, vivified",
            b"ma bWFi N0 J1 b v k\r\n",
            b"VA 1 kbWFi b\r\n1\r\n",
            false,
            vec![(
                ma(bin("bWFi"), MetaArithmeticFlags { vivify: Some(0), initial: Some(1), value: true, key: true, ..af() }),
                Some(va(b"1", MetaReturnFlags { key: Some(bin("bWFi")), ..rf() })),
            )],
        ),
        ex(
            "6.6: mn, me hit, me miss, me of a base64 key",
            b"mn\r\nme foo\r\nme nokey_me\r\nme Zm9v b\r\n",
            b"MN\r\nME foo exp=-1 la=31 cas=1 fetch=yes cls=1 size=69\r\nEN\r\nME foo exp=-1 la=33 cas=1 fetch=yes cls=1 size=69\r\n",
            true,
            vec![
                mn(),
                (
                    Request::MetaDebug { key: key("foo") },
                    Some(Response::MetaDebug {
                        key: Bytes::from_static(b"foo"),
                        info: Bytes::from_static(b"exp=-1 la=31 cas=1 fetch=yes cls=1 size=69"),
                    }),
                ),
                (Request::MetaDebug { key: key("nokey_me") }, Some(meta_status(MetaStatus::En))),
                (
                    Request::MetaDebug { key: bin("Zm9v") },
                    Some(Response::MetaDebug {
                        key: Bytes::from_static(b"foo"),
                        info: Bytes::from_static(b"exp=-1 la=33 cas=1 fetch=yes cls=1 size=69"),
                    }),
                ),
            ],
        ),
        ex(
            "6.x: errors reported for valid-looking meta requests (1.6.27+ flags on 1.6.18)",
            b"mg foo E123 c\r\nmd md4 x\r\n",
            b"CLIENT_ERROR invalid flag\r\nCLIENT_ERROR invalid or duplicate flag\r\n",
            true,
            vec![
                (
                    mgk("foo", MetaGetFlags { new_cas: Some(123), cas: true, ..gf() }),
                    Some(client_error("invalid flag")),
                ),
                (
                    mdk("md4", MetaDeleteFlags { remove_value: true, ..df() }),
                    Some(client_error("invalid or duplicate flag")),
                ),
            ],
        ),
    ]
}

#[test]
fn text_protocol_examples() {
    run(text_examples());
}

#[test]
fn meta_protocol_examples() {
    run(meta_examples());
}

/// Section 1: an error line in the middle of a pipeline does not desync what follows
/// (`bogus` is no request a client can build; decode against what each line answers).
#[test]
fn error_in_the_middle_of_a_pipeline() {
    let mut dec = ResponseDecoder::default();
    let mut buf = BytesMut::from(&b"VA 3\r\nbar\r\nERROR\r\nHD s3\r\n"[..]);
    let mgv = Expect::of(&mgk("foo", v(gf()))).unwrap();
    let mgs = Expect::of(&mgk("foo", MetaGetFlags { size: true, ..gf() })).unwrap();
    assert_eq!(dec.decode(&mgv, &mut buf), Ok(Some(va(b"bar", rf()))));
    assert_eq!(
        dec.decode(&Expect::Ok, &mut buf),
        Ok(Some(error(ErrorKind::Error, "")))
    );
    assert_eq!(
        dec.decode(&mgs, &mut buf),
        Ok(Some(hd(MetaReturnFlags {
            size: Some(3),
            ..rf()
        })))
    );
    assert!(buf.is_empty());
}

/// Section 7: every error line, whatever the request expected: its kind and message, and the
/// same bytes when encoded back.
#[test]
fn error_lines() {
    let table: &[(&[u8], ErrorKind, &str)] = &[
        (b"ERROR\r\n", ErrorKind::Error, ""),
        (
            b"ERROR: shutdown not enabled\r\n",
            ErrorKind::Error,
            ": shutdown not enabled",
        ),
        (
            b"SERVER_ERROR: shutdown not enabled\r\n",
            ErrorKind::Server,
            ": shutdown not enabled",
        ),
        (
            b"CLIENT_ERROR bad command line format\r\n",
            ErrorKind::Client,
            "bad command line format",
        ),
        (
            b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n",
            ErrorKind::Client,
            "bad command line format.  Usage: delete <key> [noreply]",
        ),
        (
            b"CLIENT_ERROR bad data chunk\r\n",
            ErrorKind::Client,
            "bad data chunk",
        ),
        (
            b"CLIENT_ERROR invalid exptime argument\r\n",
            ErrorKind::Client,
            "invalid exptime argument",
        ),
        (
            b"CLIENT_ERROR invalid numeric delta argument\r\n",
            ErrorKind::Client,
            "invalid numeric delta argument",
        ),
        (
            b"CLIENT_ERROR invalid flag\r\n",
            ErrorKind::Client,
            "invalid flag",
        ),
        (
            b"CLIENT_ERROR duplicate flag\r\n",
            ErrorKind::Client,
            "duplicate flag",
        ),
        (
            b"CLIENT_ERROR opaque token too long\r\n",
            ErrorKind::Client,
            "opaque token too long",
        ),
        (
            b"CLIENT_ERROR options flags are too long\r\n",
            ErrorKind::Client,
            "options flags are too long",
        ),
        (
            b"CLIENT_ERROR error decoding key\r\n",
            ErrorKind::Client,
            "error decoding key",
        ),
        (
            b"CLIENT_ERROR usage: stats detail on|off|dump\r\n",
            ErrorKind::Client,
            "usage: stats detail on|off|dump",
        ),
        (
            b"SERVER_ERROR object too large for cache\r\n",
            ErrorKind::Server,
            "object too large for cache",
        ),
        (
            b"SERVER_ERROR out of memory storing object\r\n",
            ErrorKind::Server,
            "out of memory storing object",
        ),
        (
            b"SERVER_ERROR backend failure\r\n",
            ErrorKind::Server,
            "backend failure",
        ),
        (b"CLIENT_ERROR\r\n", ErrorKind::Client, ""),
        (b"SERVER_ERROR\r\n", ErrorKind::Server, ""),
    ];
    let k = key("foo");
    let expectations = [
        Expect::Values {
            keys: vec![k.clone()],
            cas: false,
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
            opaque: Some(opaque("1")),
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
    ];
    for (bytes, kind, message) in table {
        let want = error(*kind, message);
        for expect in &expectations {
            assert_eq!(
                decode_one(expect, bytes),
                Ok(Some(want.clone())),
                "{expect:?}"
            );
        }
        assert_eq!(&want.to_bytes()[..], *bytes);
    }
    // Lines that only start like an error line are not one.
    for not_error in [
        &b"ERRORS\r\n"[..],
        b"CLIENT_ERRORx\r\n",
        b"SERVER_ERROR_\r\n",
    ] {
        assert!(decode_one(&Expect::Ok, not_error).is_err());
    }
}

/// Section 7: a storage command refused with `ERROR`/`CLIENT_ERROR` may have had its data block
/// run as a command: the connection is poisoned. `SERVER_ERROR` (the block is swallowed) is
/// not.
#[test]
fn storage_errors_and_the_connection() {
    for (reply, poisoned) in [
        (&b"CLIENT_ERROR bad data chunk\r\n"[..], true),
        (b"ERROR\r\n", true),
        (b"SERVER_ERROR object too large for cache\r\n", false),
        (b"SERVER_ERROR out of memory storing object\r\n", false),
    ] {
        for req in [set("k", 0, 0, b"v"), msk("k", b"v", sf())] {
            let (got, conn) = through_connection(std::slice::from_ref(&req), reply);
            assert!(got[0].is_err());
            assert_eq!(conn.poisoned().is_some(), poisoned, "{req:?} / {reply:?}");
        }
    }
    // Not a storage command: the error is the caller's, the connection goes on.
    let (got, conn) = through_connection(
        &[incr("txt", 1, false), get(&["foo"])],
        b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\nEND\r\n",
    );
    assert_eq!(
        got[0],
        Err(Error::Client(Bytes::from_static(
            b"cannot increment or decrement non-numeric value"
        )))
    );
    assert_eq!(got[1], Ok(values(vec![])));
    assert!(conn.poisoned().is_none());
}

/// Section 6.3: modes are single upper-case letters (`Ms` is refused by memcached, and by our
/// decoder); section 6.5 likewise for `ma` (`I + D -`).
#[test]
fn meta_modes_are_upper_case() {
    for line in [
        &b"ms msm 1 Ms\r\nd\r\n"[..],
        b"ms msm 1 Me\r\nd\r\n",
        b"ms msm 1 MEE\r\nd\r\n",
        b"ms msm 1 MX\r\nd\r\n",
        b"ma ma1 Mi\r\n",
        b"ma ma1 Md\r\n",
        b"ma ma1 MX\r\n",
    ] {
        let mut buf = BytesMut::from(line);
        assert!(
            Request::decode(&mut buf, &Limits::server()).is_err(),
            "{}",
            line.escape_ascii()
        );
    }
    for (line, mode) in [
        (&b"ma ma1 MI\r\n"[..], MetaArithmeticMode::Increment),
        (b"ma ma1 M+\r\n", MetaArithmeticMode::Increment),
        (b"ma ma1 MD\r\n", MetaArithmeticMode::Decrement),
        (b"ma ma1 M-\r\n", MetaArithmeticMode::Decrement),
    ] {
        assert_eq!(
            decode_all_requests(line),
            vec![mak(
                "ma1",
                MetaArithmeticFlags {
                    mode: Some(mode),
                    ..af()
                }
            )]
        );
    }
}
