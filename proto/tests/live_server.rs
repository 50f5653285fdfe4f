//! Integration tests: a `Connection` driven over a blocking `TcpStream` against a real
//! memcached started by `mcache-testkit` (one private server per test, on a free port).
//!
//! Every command's real replies are decoded and checked with exact values. Timeouts are only
//! hang guards: a bug fails a test after 5 s instead of hanging it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use mcache_proto::commands::{self, Call, Finish};
use mcache_proto::meta::request::{MetaArithmetic, MetaDelete, MetaGet, MetaSet};
use mcache_proto::text::request::{Retrieve, RetrieveCommand, Store, StoreCommand};
use mcache_proto::{
    Connection, ConnectionConfig, EncodeError, Error, Key, KeyError, Limits, MetaArithmeticFlags,
    MetaArithmeticMode, MetaDeleteFlags, MetaGetFlags, MetaResponse, MetaReturnFlags, MetaSetFlags,
    MetaSetMode, MetaStatus, Opaque, PoisonReason, Request, RequestId, Response, Stat, StoreStatus,
    SyncCommand, Value,
};
use mcache_testkit::Memcached;
use std::collections::BTreeSet;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

/// Hang guard for every socket read and write.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

type Reply = Result<Response, Error>;

// ------------------------------------------------------------------------------------------
// The blocking driver
// ------------------------------------------------------------------------------------------

/// A `Connection` and the socket it talks over. Tracks the ids it sent and checks that every
/// reply that surfaces answers one of them, exactly once.
struct Client {
    sock: TcpStream,
    conn: Connection,
    outstanding: BTreeSet<RequestId>,
    /// Every request accepted and every byte read, in order, for replays.
    log: Vec<Request>,
    tap: Vec<u8>,
    /// Read straight into the connection's buffer (`read_buf` + `process`) instead of
    /// `receive`.
    zero_copy: bool,
}

impl Client {
    fn connect(mc: &Memcached) -> Client {
        Client::with_config(mc, ConnectionConfig::default())
    }

    fn with_config(mc: &Memcached, config: ConnectionConfig) -> Client {
        let sock = TcpStream::connect(mc.addr()).expect("connect to memcached");
        sock.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        sock.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        sock.set_nodelay(true).unwrap();
        Client {
            sock,
            conn: Connection::new(config),
            outstanding: BTreeSet::new(),
            log: Vec::new(),
            tap: Vec::new(),
            zero_copy: false,
        }
    }

    /// Queues a request that must be accepted.
    fn send(&mut self, request: Request) -> RequestId {
        self.try_send(request).expect("request refused")
    }

    fn try_send(&mut self, request: Request) -> Result<RequestId, Error> {
        let id = self.conn.send(request.clone())?;
        self.log.push(request);
        self.outstanding.insert(id);
        Ok(id)
    }

    /// Gives up on `id`: it must never surface.
    fn abandon(&mut self, id: RequestId) -> bool {
        self.outstanding.remove(&id);
        self.conn.abandon(id)
    }

    /// Takes everything the connection wants written, marking it written.
    fn take_out(&mut self) -> Vec<u8> {
        let out = self.conn.transmit().to_vec();
        self.conn.advance_transmit(out.len(), Instant::now());
        out
    }

    /// Writes the queued bytes without reading anything.
    fn write_only(&mut self) {
        let out = self.take_out();
        (&self.sock).write_all(&out).expect("write");
    }

    /// Writes the queued bytes (from a second thread, so that a long pipeline whose replies
    /// fill the socket buffers cannot deadlock) and reads until every sent id is answered.
    fn roundtrip(&mut self) -> Vec<(RequestId, Reply)> {
        let out = self.take_out();
        let mut writer = self.sock.try_clone().expect("clone the socket");
        thread::scope(|s| {
            s.spawn(move || {
                // A server that closes (quit, kill) may refuse the rest: the reads report it.
                let _ = writer.write_all(&out);
            });
            self.collect()
        })
    }

    /// Reads until every outstanding id is answered.
    fn collect(&mut self) -> Vec<(RequestId, Reply)> {
        let mut replies = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            self.drain(&mut replies);
            if self.outstanding.is_empty() {
                return replies;
            }
            if self.zero_copy {
                self.read_into_connection();
                continue;
            }
            match (&self.sock).read(&mut buf) {
                Ok(0) => self.conn.receive_eof(),
                Ok(n) => {
                    self.tap.extend_from_slice(&buf[..n]);
                    self.conn.receive(&buf[..n], Instant::now());
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    panic!(
                        "hang guard: no reply within {IO_TIMEOUT:?}; waiting for {:?}",
                        self.outstanding
                    )
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => self.conn.receive_eof(),
            }
        }
    }

    /// One read straight into the connection's read buffer.
    fn read_into_connection(&mut self) {
        let input = self.conn.read_buf();
        let len = input.len();
        input.resize(len + 64 * 1024, 0);
        let got = (&self.sock).read(&mut input[len..]);
        input.truncate(len + *got.as_ref().unwrap_or(&0));
        match got {
            Ok(0) => self.conn.receive_eof(),
            Ok(n) => {
                self.tap
                    .extend_from_slice(&self.conn.read_buf()[len..len + n]);
                self.conn.process(Instant::now());
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("hang guard: no reply within {IO_TIMEOUT:?}")
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => self.conn.receive_eof(),
        }
    }

    /// Moves every ready reply into `replies`, checking that it answers an outstanding id.
    fn drain(&mut self, replies: &mut Vec<(RequestId, Reply)>) {
        while let Some((id, reply)) = self.conn.poll_response() {
            assert!(
                self.outstanding.remove(&id),
                "reply for an id that was not sent, already answered or abandoned: {id:?} {reply:?}"
            );
            replies.push((id, reply));
        }
    }

    /// Sends one request and waits for its reply.
    fn call(&mut self, request: Request) -> Reply {
        let id = self.send(request);
        let mut replies = self.roundtrip();
        assert_eq!(replies.len(), 1);
        let (got, reply) = replies.pop().unwrap();
        assert_eq!(got, id);
        reply
    }

    /// Sends one request whose reply must not be an error.
    fn ok(&mut self, request: Request) -> Response {
        let what = format!("{request:?}");
        self.call(request)
            .unwrap_or_else(|e| panic!("{what} failed: {e}"))
    }

    /// Sends the requests in one pipeline; returns the replies in request order.
    fn batch(&mut self, requests: Vec<Request>) -> Vec<Reply> {
        let ids: Vec<RequestId> = requests.into_iter().map(|r| self.send(r)).collect();
        let replies = self.roundtrip();
        let got: Vec<RequestId> = replies.iter().map(|(id, _)| *id).collect();
        assert_eq!(got, ids, "replies out of request order");
        replies.into_iter().map(|(_, r)| r).collect()
    }

    fn meta(&mut self, request: Request) -> MetaResponse {
        meta_of(self.ok(request))
    }

    fn get_one(&mut self, k: &str) -> Option<Value> {
        let mut v = values_of(self.ok(get(&[k])));
        assert!(v.len() <= 1);
        v.pop()
    }

    fn stats(&mut self, args: Option<&str>) -> Vec<Stat> {
        match self.ok(Request::Stats {
            args: args.map(|a| Bytes::copy_from_slice(a.as_bytes())),
        }) {
            Response::Stats(s) => s,
            other => panic!("expected STAT lines, got {other:?}"),
        }
    }

    fn assert_usable(&mut self) {
        assert_eq!(self.conn.poisoned(), None);
        assert!(matches!(self.ok(Request::Version), Response::Version(_)));
    }
}

// ------------------------------------------------------------------------------------------
// Request builders and reply accessors
// ------------------------------------------------------------------------------------------

fn key(k: &str) -> Key {
    Key::new(k).unwrap()
}

fn retrieve(command: RetrieveCommand, keys: &[&str]) -> Request {
    Request::Retrieve(Retrieve {
        command,
        keys: keys.iter().map(|k| key(k)).collect(),
    })
}

fn get(keys: &[&str]) -> Request {
    retrieve(RetrieveCommand::Get, keys)
}

fn gets(keys: &[&str]) -> Request {
    retrieve(RetrieveCommand::Gets, keys)
}

fn store(
    command: StoreCommand,
    k: &str,
    flags: u32,
    exptime: i32,
    value: impl Into<Bytes>,
) -> Request {
    Request::Store(Store {
        command,
        key: key(k),
        flags,
        exptime,
        value: value.into(),
        noreply: false,
    })
}

fn set(k: &str, value: impl Into<Bytes>) -> Request {
    store(StoreCommand::Set, k, 0, 0, value)
}

/// The same text command with `noreply`.
fn noreply(mut request: Request) -> Request {
    match &mut request {
        Request::Store(s) => s.noreply = true,
        Request::Delete { noreply, .. }
        | Request::Incr { noreply, .. }
        | Request::Decr { noreply, .. }
        | Request::Touch { noreply, .. }
        | Request::FlushAll { noreply, .. }
        | Request::Verbosity { noreply, .. } => *noreply = true,
        other => panic!("{other:?} has no noreply"),
    }
    request
}

fn mg(k: impl Into<KeyArg>, flags: MetaGetFlags) -> Request {
    Request::MetaGet(Box::new(MetaGet {
        key: k.into().0,
        flags,
    }))
}

fn ms(k: impl Into<KeyArg>, value: impl Into<Bytes>, flags: MetaSetFlags) -> Request {
    Request::MetaSet(Box::new(MetaSet {
        key: k.into().0,
        value: value.into(),
        flags,
    }))
}

fn md(k: impl Into<KeyArg>, flags: MetaDeleteFlags) -> Request {
    Request::MetaDelete(Box::new(MetaDelete {
        key: k.into().0,
        flags,
    }))
}

fn ma(k: impl Into<KeyArg>, flags: MetaArithmeticFlags) -> Request {
    Request::MetaArithmetic(Box::new(MetaArithmetic {
        key: k.into().0,
        flags,
    }))
}

/// A text key by name, or any `Key` (binary ones included).
struct KeyArg(Key);

impl From<&str> for KeyArg {
    fn from(k: &str) -> Self {
        KeyArg(key(k))
    }
}

impl From<&String> for KeyArg {
    fn from(k: &String) -> Self {
        KeyArg(key(k))
    }
}

impl From<&Key> for KeyArg {
    fn from(k: &Key) -> Self {
        KeyArg(k.clone())
    }
}

fn value_flag() -> MetaGetFlags {
    MetaGetFlags {
        value: true,
        ..Default::default()
    }
}

fn values_of(r: Response) -> Vec<Value> {
    match r {
        Response::Values(v) => v,
        other => panic!("expected values, got {other:?}"),
    }
}

fn meta_of(r: Response) -> MetaResponse {
    match r {
        Response::Meta(m) => *m,
        other => panic!("expected a meta reply, got {other:?}"),
    }
}

fn value(k: &str, flags: u32, cas: Option<u64>, data: &[u8]) -> Value {
    Value {
        key: key(k),
        flags,
        cas,
        data: Bytes::copy_from_slice(data),
    }
}

/// Compares a `Value` but takes the cas from the reply (only its presence is checked).
fn value_any_cas(k: &str, flags: u32, got: &Value, data: &[u8]) -> Value {
    assert!(got.cas.is_some(), "cas missing from {got:?}");
    value(k, flags, got.cas, data)
}

fn stat<'a>(stats: &'a [Stat], name: &str) -> &'a [u8] {
    stats
        .iter()
        .find(|s| s.name == name.as_bytes())
        .map(|s| &s.value[..])
        .unwrap_or_else(|| panic!("no stat {name}"))
}

fn stat_u64(stats: &[Stat], name: &str) -> u64 {
    std::str::from_utf8(stat(stats, name))
        .unwrap()
        .parse()
        .unwrap()
}

/// A TTL just set to `ttl` seconds, as reported a moment later (memcached's clock ticks once a
/// second, so it may already read one or two less).
fn assert_ttl_near(got: Option<i64>, ttl: i64) {
    let got = got.expect("no ttl returned");
    assert!(
        (ttl - 2..=ttl).contains(&got),
        "ttl {got}, expected about {ttl}"
    );
}

/// SIGSTOPs the server and waits until the kernel reports it stopped (signals are
/// asynchronous: without the wait it could still answer what is written next).
fn freeze(mc: &Memcached) {
    mc.stop().unwrap();
    let stat = format!("/proc/{}/stat", mc.pid());
    let deadline = Instant::now() + IO_TIMEOUT;
    loop {
        let s = std::fs::read_to_string(&stat).unwrap();
        // `pid (comm) state ...`: the state follows the last `)`.
        let state = s.rsplit(')').next().unwrap().trim_start().chars().next();
        if state == Some('T') {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "hang guard: memcached never stopped"
        );
        thread::sleep(Duration::from_millis(1));
    }
}

fn start() -> Memcached {
    Memcached::start().expect("start memcached (see the testkit error for how to install it)")
}

// ------------------------------------------------------------------------------------------
// Text protocol
// ------------------------------------------------------------------------------------------

#[test]
fn get_gets_gat_gats() {
    let mc = start();
    let mut c = Client::connect(&mc);
    assert_eq!(
        c.ok(store(StoreCommand::Set, "foo", 5, 0, "bar")),
        Response::Stored
    );
    assert_eq!(c.ok(set("baz", "quux")), Response::Stored);

    // Hit, miss.
    assert_eq!(
        values_of(c.ok(get(&["foo"]))),
        vec![value("foo", 5, None, b"bar")]
    );
    assert_eq!(values_of(c.ok(get(&["missing"]))), vec![]);

    // Multi-key with misses and duplicates: hits in the order asked, misses absent.
    assert_eq!(
        values_of(c.ok(get(&["foo", "missing", "foo", "baz", "nope"]))),
        vec![
            value("foo", 5, None, b"bar"),
            value("foo", 5, None, b"bar"),
            value("baz", 0, None, b"quux"),
        ]
    );

    // gets: a cas with every value, the same for the same item, distinct between items.
    let v = values_of(c.ok(gets(&["foo", "missing", "baz", "foo"])));
    assert_eq!(v.len(), 3);
    let (cas_foo, cas_baz) = (v[0].cas.unwrap(), v[1].cas.unwrap());
    assert_ne!(cas_foo, cas_baz);
    assert_eq!(
        v,
        vec![
            value("foo", 5, Some(cas_foo), b"bar"),
            value("baz", 0, Some(cas_baz), b"quux"),
            value("foo", 5, Some(cas_foo), b"bar"),
        ]
    );
    // mg agrees on the cas.
    let m = c.meta(mg(
        "foo",
        MetaGetFlags {
            cas: true,
            ..Default::default()
        },
    ));
    assert_eq!(m.flags.cas, Some(cas_foo));

    // gat: value without cas, and the new TTL is in force.
    assert_eq!(
        values_of(c.ok(retrieve(RetrieveCommand::Gat(100), &["foo", "missing"]))),
        vec![value("foo", 5, None, b"bar")]
    );
    let ttl = MetaGetFlags {
        ttl: true,
        ..Default::default()
    };
    assert_ttl_near(c.meta(mg("foo", ttl)).flags.ttl, 100);
    // gats: with cas (touching does not change it), and back to no expiry.
    assert_eq!(
        values_of(c.ok(retrieve(RetrieveCommand::Gats(0), &["missing", "foo"]))),
        vec![value("foo", 5, Some(cas_foo), b"bar")]
    );
    assert_eq!(c.meta(mg("foo", ttl)).flags.ttl, Some(-1));
    assert_eq!(
        values_of(c.ok(retrieve(RetrieveCommand::Gat(0), &["missing"]))),
        vec![]
    );
    // gat with a negative exptime returns the value, then it is gone.
    assert_eq!(
        values_of(c.ok(retrieve(RetrieveCommand::Gat(-1), &["baz"]))),
        vec![value("baz", 0, None, b"quux")]
    );
    assert_eq!(c.get_one("baz"), None);
}

#[test]
fn single_key_gets_sent_as_mg_answer_as_the_text_gets_do() {
    let mc = start();
    let mut text = Client::connect(&mc);
    let mut meta = Client::with_config(
        &mc,
        ConnectionConfig {
            single_get_as_meta: true,
            ..ConnectionConfig::default()
        },
    );
    assert_eq!(
        text.ok(store(StoreCommand::Set, "foo", 5, 0, "bar")),
        Response::Stored
    );
    assert_eq!(text.ok(set("empty", "")), Response::Stored);
    assert_eq!(text.ok(set("big", vec![b'x'; 100_000])), Response::Stored);
    // Pipelined, hits and misses mixed, as text and as meta: the same replies.
    let requests = || {
        vec![
            get(&["foo"]),
            get(&["missing"]),
            gets(&["foo"]),
            get(&["empty"]),
            get(&["big"]),
            gets(&["missing"]),
            get(&["foo", "missing", "big"]),
        ]
    };
    let want = text.batch(requests());
    let got = meta.batch(requests());
    assert_eq!(got, want);
    assert_eq!(
        values_of(got[0].clone().unwrap()),
        vec![value("foo", 5, None, b"bar")]
    );
    assert!(values_of(got[2].clone().unwrap())[0].cas.is_some());
    // What went out: `mg` for the single-key ones only.
    let meta_conn = |c: &mut Client| {
        c.send(get(&["foo"]));
        c.send(get(&["foo", "empty"]));
        let out = c.take_out();
        (&c.sock).write_all(&out).expect("write");
        c.collect();
        out
    };
    assert_eq!(meta_conn(&mut meta), b"mg foo f v O7\r\nget foo empty\r\n");
}

#[test]
fn storage_commands() {
    let mc = start();
    let mut c = Client::connect(&mc);
    use StoreCommand::*;
    assert_eq!(c.ok(store(Set, "k", 7, 0, "b")), Response::Stored);
    assert_eq!(c.ok(store(Add, "k", 0, 0, "x")), Response::NotStored);
    assert_eq!(c.ok(store(Add, "new", 3, 0, "n")), Response::Stored);
    assert_eq!(
        c.ok(store(Replace, "absent", 0, 0, "x")),
        Response::NotStored
    );
    assert_eq!(
        c.ok(store(Append, "absent", 0, 0, "x")),
        Response::NotStored
    );
    assert_eq!(
        c.ok(store(Prepend, "absent", 0, 0, "x")),
        Response::NotStored
    );
    assert_eq!(c.get_one("absent"), None);
    assert_eq!(c.ok(store(Replace, "k", 7, 0, "c")), Response::Stored);
    // append/prepend ignore their flags and exptime.
    assert_eq!(c.ok(store(Append, "k", 99, 0, "de")), Response::Stored);
    assert_eq!(c.ok(store(Prepend, "k", 99, 0, "ab")), Response::Stored);
    assert_eq!(c.get_one("k"), Some(value("k", 7, None, b"abcde")));
    assert_eq!(c.get_one("new"), Some(value("new", 3, None, b"n")));

    // cas: EXISTS with a stale or zero cas, STORED with the current one, NOT_FOUND if absent.
    let cas = values_of(c.ok(gets(&["k"])))[0].cas.unwrap();
    assert_eq!(
        c.ok(store(Cas(cas + 1000), "k", 0, 0, "x")),
        Response::Exists
    );
    assert_eq!(c.ok(store(Cas(0), "k", 0, 0, "x")), Response::Exists);
    assert_eq!(c.ok(store(Cas(cas), "k", 1, 0, "won")), Response::Stored);
    assert_eq!(c.ok(store(Cas(cas), "k", 1, 0, "late")), Response::Exists);
    assert_eq!(
        c.ok(store(Cas(cas), "absent", 0, 0, "x")),
        Response::NotFound
    );
    let v = values_of(c.ok(gets(&["k"]))).pop().unwrap();
    assert_ne!(v.cas, Some(cas));
    assert_eq!(v, value_any_cas("k", 1, &v, b"won"));

    // The largest client flags.
    assert_eq!(
        c.ok(store(Set, "maxflags", u32::MAX, 0, "f")),
        Response::Stored
    );
    assert_eq!(
        c.get_one("maxflags"),
        Some(value("maxflags", u32::MAX, None, b"f"))
    );
    // Keys are bytes: UTF-8 is fine.
    assert_eq!(
        c.ok(store(Set, "ключ:日本", 0, 0, "utf8")),
        Response::Stored
    );
    assert_eq!(
        c.get_one("ключ:日本"),
        Some(value("ключ:日本", 0, None, b"utf8"))
    );
    // A negative exptime stores an already expired item.
    assert_eq!(c.ok(store(Set, "expired", 0, -1, "x")), Response::Stored);
    assert_eq!(c.get_one("expired"), None);
}

#[test]
fn zero_length_and_binary_safe_values() {
    let mc = start();
    let mut c = Client::connect(&mc);
    let nasty: &[u8] = b"a\r\nb\r\nEND\r\nVALUE x 0 1\r\nc\r\r\n\n\0HD\r\n";
    let all_bytes: Vec<u8> = (0..=255u8).collect();
    assert_eq!(
        c.batch(vec![
            set("empty", ""),
            set("nasty", nasty),
            set("all", all_bytes.clone())
        ]),
        vec![
            Ok(Response::Stored),
            Ok(Response::Stored),
            Ok(Response::Stored)
        ]
    );
    assert_eq!(
        values_of(c.ok(get(&["empty", "nasty", "all"]))),
        vec![
            value("empty", 0, None, b""),
            value("nasty", 0, None, nasty),
            value("all", 0, None, &all_bytes),
        ]
    );
    // The same through meta.
    let m = c.meta(mg("empty", value_flag()));
    assert_eq!(m.status, MetaStatus::Va);
    assert_eq!(m.value.as_deref(), Some(&b""[..]));
    assert_eq!(
        c.meta(mg("nasty", value_flag())).value.as_deref(),
        Some(nasty)
    );
    assert_eq!(
        c.meta(ms("mnasty", nasty, MetaSetFlags::default())).status,
        MetaStatus::Hd
    );
    assert_eq!(c.get_one("mnasty"), Some(value("mnasty", 0, None, nasty)));
    assert_eq!(
        c.meta(ms("mempty", "", MetaSetFlags::default())).status,
        MetaStatus::Hd
    );
    assert_eq!(c.get_one("mempty"), Some(value("mempty", 0, None, b"")));
}

/// Largest value memcached stores for a key with flags 0 (64-bit, cas on):
/// `item_size_max - 59 - key length` (see the protocol notes, section 4).
fn max_value_len(item_size_max: usize, key: &str) -> usize {
    item_size_max - 59 - key.len()
}

#[test]
fn value_size_limits_default_server() {
    let mc = start();
    let mut c = Client::connect(&mc);
    let settings = c.stats(Some("settings"));
    assert_eq!(stat(&settings, "item_size_max"), b"1048576");
    let max = max_value_len(1 << 20, "mx");

    // The largest value that fits is stored and read back whole.
    let big: Vec<u8> = (0..max).map(|i| (i % 251) as u8).collect();
    assert_eq!(c.ok(set("mx", big.clone())), Response::Stored);
    let v = c.get_one("mx").unwrap();
    assert_eq!(v.data.len(), max);
    assert!(v.data == big);
    let m = c.meta(mg("mx", value_flag()));
    assert_eq!(m.value.as_deref(), Some(&big[..]));

    // One byte more: the server refuses it, swallows the block, and the connection is fine.
    // A too-large set also drops the old item.
    let r = c.call(set("mx", vec![b'x'; max + 1]));
    assert_eq!(
        r,
        Err(Error::Server(Bytes::from_static(
            b"object too large for cache"
        )))
    );
    c.assert_usable();
    assert_eq!(c.get_one("mx"), None);
    // The whole 1 MiB (the client's limit) is still over the server's.
    let r = c.call(ms("m1", vec![b'y'; 1 << 20], MetaSetFlags::default()));
    assert_eq!(
        r,
        Err(Error::Server(Bytes::from_static(
            b"object too large for cache"
        )))
    );
    c.assert_usable();

    // Over the client's own limit: refused before anything is queued.
    let before = stat_u64(&c.stats(None), "cmd_set");
    for request in [
        set("toolarge", vec![0u8; (1 << 20) + 1]),
        ms(
            "toolarge",
            vec![0u8; (1 << 20) + 1],
            MetaSetFlags::default(),
        ),
    ] {
        assert_eq!(
            c.try_send(request),
            Err(Error::Encode(EncodeError::ValueTooLarge {
                len: (1 << 20) + 1,
                max: 1 << 20
            }))
        );
        assert!(c.conn.transmit().is_empty());
        assert_eq!(c.conn.pending(), 0);
    }
    assert_eq!(stat_u64(&c.stats(None), "cmd_set"), before);
    c.assert_usable();
}

#[test]
fn value_size_limits_raised() {
    let mc = Memcached::builder()
        .arg("-I")
        .arg("2m")
        .start()
        .expect("start memcached");
    let limits = Limits {
        max_value_len: 2 << 20,
        ..Limits::default()
    };
    let mut c = Client::with_config(
        &mc,
        ConnectionConfig {
            limits,
            ..Default::default()
        },
    );
    assert_eq!(
        stat(&c.stats(Some("settings")), "item_size_max"),
        b"2097152"
    );
    let big: Vec<u8> = (0..1_500_000u32).map(|i| (i % 253) as u8).collect();
    assert_eq!(c.ok(set("big", big.clone())), Response::Stored);
    assert!(c.get_one("big").unwrap().data == big);

    // A client whose limit is below the server's: the encoder refuses such a value...
    let mut small = Client::with_config(&mc, ConnectionConfig::default());
    assert_eq!(
        small.try_send(set("big2", big)),
        Err(Error::Encode(EncodeError::ValueTooLarge {
            len: 1_500_000,
            max: 1 << 20
        }))
    );
    small.assert_usable();
    // ...and the decoder refuses its declared length before buffering it: the stream cannot
    // be resynchronised, so the connection is poisoned.
    let r = small.call(get(&["big"]));
    assert_eq!(
        r,
        Err(Error::Poisoned(PoisonReason::Malformed(
            mcache_proto::DecodeError::ValueTooLarge {
                len: 1_500_000,
                max: 1 << 20
            }
        )))
    );
    assert!(small.conn.poisoned().is_some());
}

#[test]
fn delete_incr_decr_touch() {
    let mc = start();
    let mut c = Client::connect(&mc);
    let delete = |k: &str| Request::Delete {
        key: key(k),
        noreply: false,
    };
    let incr = |k: &str, delta| Request::Incr {
        key: key(k),
        delta,
        noreply: false,
    };
    let decr = |k: &str, delta| Request::Decr {
        key: key(k),
        delta,
        noreply: false,
    };
    let touch = |k: &str, exptime| Request::Touch {
        key: key(k),
        exptime,
        noreply: false,
    };

    c.ok(set("d", "x"));
    assert_eq!(c.ok(delete("d")), Response::Deleted);
    assert_eq!(c.ok(delete("d")), Response::NotFound);
    assert_eq!(c.get_one("d"), None);

    c.ok(store(StoreCommand::Set, "n", 3, 0, "10"));
    assert_eq!(c.ok(incr("n", 5)), Response::Number(15));
    assert_eq!(c.ok(decr("n", 6)), Response::Number(9));
    // The shrink is done in place and padded with a space; flags are kept.
    assert_eq!(c.get_one("n"), Some(value("n", 3, None, b"9 ")));
    assert_eq!(c.ok(incr("n", 1)), Response::Number(10));
    assert_eq!(c.ok(decr("n", 100)), Response::Number(0));
    assert_eq!(c.ok(incr("missing", 1)), Response::NotFound);
    assert_eq!(c.ok(decr("missing", 1)), Response::NotFound);
    assert_eq!(c.get_one("missing"), None);

    // Wrap at 2^64.
    c.ok(set("max", u64::MAX.to_string()));
    assert_eq!(c.ok(incr("max", 1)), Response::Number(0));
    c.ok(set("max", u64::MAX.to_string()));
    assert_eq!(c.ok(incr("max", u64::MAX)), Response::Number(u64::MAX - 1));
    assert_eq!(c.ok(decr("max", u64::MAX)), Response::Number(0));

    // Non-numeric value: a client error for this request only (incr has no data block).
    c.ok(set("text", "abc"));
    assert_eq!(
        c.call(incr("text", 1)),
        Err(Error::Client(Bytes::from_static(
            b"cannot increment or decrement non-numeric value"
        )))
    );
    assert_eq!(
        c.call(decr("text", 1)),
        Err(Error::Client(Bytes::from_static(
            b"cannot increment or decrement non-numeric value"
        )))
    );
    // The same inside a pipeline: neighbours get their own replies.
    assert_eq!(
        c.batch(vec![
            incr("n", 2),
            incr("text", 1),
            get(&["text"]),
            incr("n", 2)
        ]),
        vec![
            Ok(Response::Number(2)),
            Err(Error::Client(Bytes::from_static(
                b"cannot increment or decrement non-numeric value"
            ))),
            Ok(Response::Values(vec![value("text", 0, None, b"abc")])),
            Ok(Response::Number(4)),
        ]
    );
    c.assert_usable();

    // touch
    c.ok(set("t", "x"));
    assert_eq!(c.ok(touch("t", 300)), Response::Touched);
    let ttl = MetaGetFlags {
        ttl: true,
        ..Default::default()
    };
    assert_ttl_near(c.meta(mg("t", ttl)).flags.ttl, 300);
    assert_eq!(c.ok(touch("t", 0)), Response::Touched);
    assert_eq!(c.meta(mg("t", ttl)).flags.ttl, Some(-1));
    assert_eq!(c.ok(touch("absent", 10)), Response::NotFound);
    assert_eq!(c.ok(touch("t", -1)), Response::Touched);
    assert_eq!(c.get_one("t"), None);
}

#[test]
fn flush_all_version_verbosity() {
    let mc = start();
    let mut c = Client::connect(&mc);
    c.batch(vec![set("a", "1"), set("b", "2")]);
    assert_eq!(
        c.ok(Request::FlushAll {
            delay: Some(0),
            noreply: false
        }),
        Response::Ok
    );
    assert_eq!(values_of(c.ok(get(&["a", "b"]))), vec![]);
    c.ok(set("a", "1"));
    assert_eq!(
        c.ok(Request::FlushAll {
            delay: None,
            noreply: false
        }),
        Response::Ok
    );
    assert_eq!(c.get_one("a"), None);
    // A delay far away: nothing is invalidated now.
    c.ok(set("a", "1"));
    assert_eq!(
        c.ok(Request::FlushAll {
            delay: Some(1000),
            noreply: false
        }),
        Response::Ok
    );
    assert_eq!(c.get_one("a"), Some(value("a", 0, None, b"1")));

    let Response::Version(v) = c.ok(Request::Version) else {
        panic!("no version")
    };
    assert_eq!(stat(&c.stats(None), "version"), &v[..]);
    assert!(v.first().is_some_and(u8::is_ascii_digit), "{v:?}");

    for level in [1, 0] {
        assert_eq!(
            c.ok(Request::Verbosity {
                level,
                noreply: false
            }),
            Response::Ok
        );
    }
    assert_eq!(stat(&c.stats(Some("settings")), "verbosity"), b"0");
}

#[test]
fn stats_variants() {
    let mc = start();
    let mut c = Client::connect(&mc);
    c.batch(vec![set("a", "1"), set("b", "2"), get(&["a", "zz"])]);

    let general = c.stats(None);
    assert_eq!(stat_u64(&general, "pid"), u64::from(mc.pid()));
    assert_eq!(stat_u64(&general, "curr_items"), 2);
    assert_eq!(stat_u64(&general, "cmd_set"), 2);
    assert_eq!(stat_u64(&general, "get_hits"), 1);
    assert_eq!(stat_u64(&general, "get_misses"), 1);
    assert!(general.iter().all(|s| !s.name.is_empty()));

    let settings = c.stats(Some("settings"));
    assert_eq!(stat(&settings, "item_size_max"), b"1048576");
    assert_eq!(stat(&settings, "tcpport"), mc.port().to_string().as_bytes());
    assert_eq!(stat(&settings, "domain_socket"), b"NULL");
    assert_eq!(stat(&settings, "ssl_chain_cert"), b"(null)");

    let items = c.stats(Some("items"));
    assert_eq!(stat_u64(&items, "items:1:number"), 2);

    let slabs = c.stats(Some("slabs"));
    assert_eq!(stat_u64(&slabs, "active_slabs"), 1);
    assert!(stat_u64(&slabs, "1:chunk_size") > 0);

    assert_eq!(
        c.ok(Request::Stats {
            args: Some(Bytes::from_static(b"reset"))
        }),
        Response::Reset
    );
    let general = c.stats(None);
    assert_eq!(stat_u64(&general, "get_hits"), 0);
    assert_eq!(stat_u64(&general, "cmd_set"), 0);
    assert_eq!(stat_u64(&general, "curr_items"), 2);

    // `stats detail`: OK, then free-form lines.
    assert_eq!(
        c.ok(Request::Stats {
            args: Some(Bytes::from_static(b"detail on"))
        }),
        Response::Ok
    );
    c.batch(vec![set("pfx:k", "v"), get(&["pfx:k"])]);
    assert_eq!(
        c.ok(Request::Stats {
            args: Some(Bytes::from_static(b"detail dump"))
        }),
        Response::Lines(vec![Bytes::from_static(
            b"PREFIX pfx get 1 hit 1 set 1 del 0"
        )])
    );
    // `stats cachedump`: free-form `ITEM` lines (which items it lists depends on the LRU
    // maintainer's timing: it dumps the cold LRU only).
    match c.ok(Request::Stats {
        args: Some(Bytes::from_static(b"cachedump 1 100")),
    }) {
        Response::Lines(items) => {
            for line in items {
                let rest = line.strip_prefix(b"ITEM ").expect("ITEM line");
                let name = rest.split(|&b| b == b' ').next().unwrap();
                assert!([&b"a"[..], b"b", b"pfx:k"].contains(&name), "{line:?}");
            }
        }
        Response::Stats(s) => assert_eq!(s, vec![], "an empty dump is a bare END"),
        other => panic!("{other:?}"),
    }
    // An unknown stats group is a protocol error for that request only.
    assert_eq!(
        c.call(Request::Stats {
            args: Some(Bytes::from_static(b"bogus"))
        }),
        Err(Error::Protocol(Bytes::new()))
    );
    c.assert_usable();
}

#[test]
fn quit_then_eof() {
    let mc = start();
    let mut c = Client::connect(&mc);
    c.ok(set("a", "1"));
    let got = c.send(get(&["a"]));
    let quit = c.send(Request::Quit);
    // Nothing more is accepted once quit is queued.
    assert_eq!(
        c.try_send(Request::Version),
        Err(Error::Poisoned(PoisonReason::Quit))
    );
    let replies = c.roundtrip();
    assert_eq!(
        replies,
        vec![
            (got, Ok(Response::Values(vec![value("a", 0, None, b"1")]))),
            (quit, Ok(Response::NoReply)),
        ]
    );
    assert_eq!(c.conn.poisoned(), Some(&PoisonReason::Quit));
    assert!(!c.conn.is_open());
    assert!(c.conn.is_idle());
    assert_eq!(
        c.try_send(get(&["a"])),
        Err(Error::Poisoned(PoisonReason::Quit))
    );
    // The server did close the connection.
    let mut buf = [0u8; 16];
    assert_eq!((&c.sock).read(&mut buf).unwrap(), 0);
}

// ------------------------------------------------------------------------------------------
// Meta protocol
// ------------------------------------------------------------------------------------------

#[test]
fn mg_every_return_flag() {
    let mc = start();
    let mut c = Client::connect(&mc);
    assert_eq!(
        c.ok(store(StoreCommand::Set, "foo", 5, 0, "bar")),
        Response::Stored
    );
    let cas = values_of(c.ok(gets(&["foo"])))[0].cas.unwrap();
    let opaque = Opaque::new(b"opaque123").unwrap();
    let all = MetaGetFlags {
        cas: true,
        client_flags: true,
        hit: true,
        key: true,
        last_access: true,
        size: true,
        ttl: true,
        value: true,
        opaque: Some(opaque),
        ..Default::default()
    };
    // `gets` above fetched it: h1.
    let m = c.meta(mg("foo", all));
    let la = m.flags.last_access.expect("l");
    assert!(la <= 2, "seconds since last access: {la}");
    assert_eq!(
        m,
        MetaResponse {
            status: MetaStatus::Va,
            flags: MetaReturnFlags {
                cas: Some(cas),
                client_flags: Some(5),
                hit: Some(true),
                key: Some(key("foo")),
                last_access: Some(la),
                opaque: Some(opaque),
                size: Some(3),
                ttl: Some(-1),
                ..Default::default()
            },
            value: Some(Bytes::from_static(b"bar")),
        }
    );

    // h and l report the state before this fetch; u leaves them alone.
    c.ok(set("fresh", "x"));
    let hl = MetaGetFlags {
        hit: true,
        ..Default::default()
    };
    assert_eq!(c.meta(mg("fresh", hl)).flags.hit, Some(false));
    assert_eq!(c.meta(mg("fresh", hl)).flags.hit, Some(true));
    c.ok(set("fresh2", "x"));
    let no_bump = MetaGetFlags {
        hit: true,
        no_lru_bump: true,
        ..Default::default()
    };
    assert_eq!(c.meta(mg("fresh2", no_bump)).flags.hit, Some(false));
    assert_eq!(c.meta(mg("fresh2", no_bump)).flags.hit, Some(false));

    // Without v: HD with the flags; with no flags at all: a bare HD / EN.
    let m = c.meta(mg(
        "foo",
        MetaGetFlags {
            value: false,
            ..all
        },
    ));
    assert_eq!(m.status, MetaStatus::Hd);
    assert_eq!(m.value, None);
    assert_eq!(m.flags.size, Some(3));
    assert_eq!(
        c.meta(mg("foo", MetaGetFlags::default())),
        MetaResponse::status(MetaStatus::Hd)
    );
    assert_eq!(
        c.meta(mg("nokey", MetaGetFlags::default())),
        MetaResponse::status(MetaStatus::En)
    );

    // A miss echoes only k and O.
    let m = c.meta(mg("nokey", all));
    assert_eq!(
        m,
        MetaResponse {
            status: MetaStatus::En,
            flags: MetaReturnFlags {
                key: Some(key("nokey")),
                opaque: Some(opaque),
                ..Default::default()
            },
            value: None,
        }
    );

    // q: a hit is answered as usual, a miss is implied.
    let quiet = MetaGetFlags { quiet: true, ..all };
    let m = c.meta(mg("foo", quiet));
    assert_eq!(m.status, MetaStatus::Va);
    assert_eq!(m.value.as_deref(), Some(&b"bar"[..]));
    assert_eq!(m.flags.opaque, Some(opaque));
    assert_eq!(m.flags.key, Some(key("foo")));
    let m = c.meta(mg("nokey", quiet));
    assert_eq!(
        m,
        MetaResponse {
            status: MetaStatus::En,
            flags: MetaReturnFlags {
                opaque: Some(opaque),
                ..Default::default()
            },
            value: None,
        }
    );
    c.assert_usable();
}

#[test]
fn mg_vivify_recache_touch() {
    let mc = start();
    let mut c = Client::connect(&mc);
    let viv = MetaGetFlags {
        vivify: Some(30),
        value: true,
        cas: true,
        ttl: true,
        size: true,
        ..Default::default()
    };
    // First miss wins (W) and gets an empty item; the next one sees Z.
    let m = c.meta(mg("viv", viv));
    assert_eq!(m.status, MetaStatus::Va);
    assert_eq!(m.value.as_deref(), Some(&b""[..]));
    assert!(m.flags.won && !m.flags.win_sent && !m.flags.stale);
    assert_eq!(m.flags.size, Some(0));
    assert_ttl_near(m.flags.ttl, 30);
    let cas = m.flags.cas.unwrap();
    let m = c.meta(mg("viv", viv));
    assert!(!m.flags.won && m.flags.win_sent);
    assert_eq!(m.flags.cas, Some(cas));
    // Quiet never hides a vivify answer.
    let m = c.meta(mg("viv2", MetaGetFlags { quiet: true, ..viv }));
    assert_eq!(m.status, MetaStatus::Va);
    assert!(m.flags.won);
    // A new ms clears W/Z.
    assert_eq!(
        c.meta(ms("viv", "filled", MetaSetFlags::default())).status,
        MetaStatus::Hd
    );
    let m = c.meta(mg("viv", viv));
    assert_eq!(m.value.as_deref(), Some(&b"filled"[..]));
    assert!(!m.flags.won && !m.flags.win_sent);

    // R: win the recache when the remaining TTL is below the token.
    let ttl10 = MetaSetFlags {
        ttl: Some(10),
        ..Default::default()
    };
    c.meta(ms("rc", "r", ttl10));
    let rc = MetaGetFlags {
        recache: Some(30),
        value: true,
        ttl: true,
        ..Default::default()
    };
    let m = c.meta(mg("rc", rc));
    assert_eq!(m.value.as_deref(), Some(&b"r"[..]));
    assert!(m.flags.won && !m.flags.win_sent);
    assert_ttl_near(m.flags.ttl, 10);
    let m = c.meta(mg("rc", rc));
    assert!(!m.flags.won && m.flags.win_sent);
    c.meta(ms(
        "rc_long",
        "r",
        MetaSetFlags {
            ttl: Some(100),
            ..Default::default()
        },
    ));
    let m = c.meta(mg("rc_long", rc));
    assert!(!m.flags.won && !m.flags.win_sent);

    // T: update the TTL (t reports the new one), T0 makes it permanent, T-1 expires it.
    let touch = |t| MetaGetFlags {
        touch: Some(t),
        ttl: true,
        ..Default::default()
    };
    let m = c.meta(mg("rc_long", touch(300)));
    assert_eq!(m.status, MetaStatus::Hd);
    assert_ttl_near(m.flags.ttl, 300);
    assert_eq!(c.meta(mg("rc_long", touch(0))).flags.ttl, Some(-1));
    // memcached prints a negative TTL as a wrapped u32.
    let m = c.meta(mg("rc_long", touch(-1)));
    let t = m.flags.ttl.unwrap();
    assert!(t > i64::from(i32::MAX), "wrapped negative ttl: {t}");
    assert_eq!(
        c.meta(mg("rc_long", value_flag())),
        MetaResponse::status(MetaStatus::En)
    );
}

#[test]
fn ms_modes_and_flags() {
    let mc = start();
    let mut c = Client::connect(&mc);
    let mode = |m| MetaSetFlags {
        mode: Some(m),
        ..Default::default()
    };
    use MetaSetMode::*;
    let status = |c: &mut Client, r| c.meta(r).status;
    assert_eq!(status(&mut c, ms("k", "a", mode(Add))), MetaStatus::Hd);
    assert_eq!(status(&mut c, ms("k", "x", mode(Add))), MetaStatus::Ns);
    assert_eq!(
        status(&mut c, ms("nope", "x", mode(Replace))),
        MetaStatus::Ns
    );
    assert_eq!(
        status(&mut c, ms("nope", "x", mode(Append))),
        MetaStatus::Ns
    );
    assert_eq!(
        status(&mut c, ms("nope", "x", mode(Prepend))),
        MetaStatus::Ns
    );
    assert_eq!(status(&mut c, ms("k", "b", mode(Append))), MetaStatus::Hd);
    assert_eq!(status(&mut c, ms("k", "_", mode(Prepend))), MetaStatus::Hd);
    assert_eq!(c.get_one("k"), Some(value("k", 0, None, b"_ab")));
    assert_eq!(status(&mut c, ms("k", "r", mode(Replace))), MetaStatus::Hd);
    assert_eq!(status(&mut c, ms("k", "s", mode(Set))), MetaStatus::Hd);
    assert_eq!(c.get_one("k"), Some(value("k", 0, None, b"s")));
    assert_eq!(c.get_one("nope"), None);
    // ME on an existing item with c: NS and c0.
    let m = c.meta(ms(
        "k",
        "x",
        MetaSetFlags {
            mode: Some(Add),
            cas: true,
            ..Default::default()
        },
    ));
    assert_eq!(m.status, MetaStatus::Ns);
    assert_eq!(m.flags.cas, Some(0));

    // T, F, c, k, O.
    let opaque = Opaque::new(b"xyz").unwrap();
    let m = c.meta(ms(
        "ms1",
        "abc",
        MetaSetFlags {
            ttl: Some(100),
            client_flags: Some(77),
            cas: true,
            key: true,
            opaque: Some(opaque),
            ..Default::default()
        },
    ));
    assert_eq!(m.status, MetaStatus::Hd);
    assert_eq!(m.flags.key, Some(key("ms1")));
    assert_eq!(m.flags.opaque, Some(opaque));
    let cas = m.flags.cas.expect("c");
    let m = c.meta(mg(
        "ms1",
        MetaGetFlags {
            client_flags: true,
            ttl: true,
            cas: true,
            value: true,
            ..Default::default()
        },
    ));
    assert_eq!(m.flags.client_flags, Some(77));
    assert_eq!(m.flags.cas, Some(cas));
    assert_ttl_near(m.flags.ttl, 100);
    assert_eq!(m.value.as_deref(), Some(&b"abc"[..]));
    assert_eq!(c.get_one("ms1"), Some(value("ms1", 77, None, b"abc")));

    // C: compare and swap.
    let cmp = |cas| MetaSetFlags {
        compare_cas: Some(cas),
        cas: true,
        ..Default::default()
    };
    assert_eq!(c.meta(ms("ms1", "no", cmp(cas + 1))).status, MetaStatus::Ex);
    let m = c.meta(ms("ms1", "yes", cmp(cas)));
    assert_eq!(m.status, MetaStatus::Hd);
    let new_cas = m.flags.cas.unwrap();
    assert_ne!(new_cas, cas);
    assert_eq!(c.meta(ms("ms1", "late", cmp(cas))).status, MetaStatus::Ex);
    assert_eq!(c.meta(ms("absent", "x", cmp(cas))).status, MetaStatus::Nf);
    assert_eq!(c.get_one("ms1"), Some(value("ms1", 0, None, b"yes")));

    // I: an older cas with invalidate stores the value but marks it stale.
    let m = c.meta(ms(
        "ms1",
        "stale",
        MetaSetFlags {
            compare_cas: Some(new_cas - 1),
            invalidate: true,
            ..Default::default()
        },
    ));
    assert_eq!(m.status, MetaStatus::Hd);
    let m = c.meta(mg(
        "ms1",
        MetaGetFlags {
            value: true,
            ..Default::default()
        },
    ));
    assert_eq!(m.value.as_deref(), Some(&b"stale"[..]));
    assert!(m.flags.stale && m.flags.won);

    // T-1: stored already expired.
    assert_eq!(
        c.meta(ms(
            "gone",
            "x",
            MetaSetFlags {
                ttl: Some(-1),
                ..Default::default()
            }
        ))
        .status,
        MetaStatus::Hd
    );
    assert_eq!(c.get_one("gone"), None);
}

#[test]
fn md_flags() {
    let mc = start();
    let mut c = Client::connect(&mc);
    c.batch(vec![
        set("d1", "x"),
        set("d2", "x"),
        set("d3", "x"),
        set("d4", "x"),
    ]);
    assert_eq!(
        c.meta(md("d1", MetaDeleteFlags::default())).status,
        MetaStatus::Hd
    );
    assert_eq!(
        c.meta(md("d1", MetaDeleteFlags::default())).status,
        MetaStatus::Nf
    );
    // q: success implied, a miss answered.
    let q = MetaDeleteFlags {
        quiet: true,
        ..Default::default()
    };
    assert_eq!(c.meta(md("d2", q)), MetaResponse::status(MetaStatus::Hd));
    assert_eq!(c.get_one("d2"), None);
    assert_eq!(c.meta(md("d2", q)), MetaResponse::status(MetaStatus::Nf));
    // C
    let m = c.meta(md(
        "d3",
        MetaDeleteFlags {
            compare_cas: Some(1),
            ..q
        },
    ));
    assert_eq!(m.status, MetaStatus::Ex);
    let cas = values_of(c.ok(gets(&["d3"])))[0].cas.unwrap();
    let m = c.meta(md(
        "d3",
        MetaDeleteFlags {
            compare_cas: Some(cas),
            ..Default::default()
        },
    ));
    assert_eq!(m.status, MetaStatus::Hd);
    // k, O
    let opaque = Opaque::new(b"op").unwrap();
    c.ok(set("d3", "x"));
    let m = c.meta(md(
        "d3",
        MetaDeleteFlags {
            key: true,
            opaque: Some(opaque),
            ..Default::default()
        },
    ));
    assert_eq!(
        m,
        MetaResponse {
            status: MetaStatus::Hd,
            flags: MetaReturnFlags {
                key: Some(key("d3")),
                opaque: Some(opaque),
                ..Default::default()
            },
            value: None,
        }
    );
    // I with T: the item stays, stale, with the new TTL; the next mg wins the recache.
    let m = c.meta(md(
        "d4",
        MetaDeleteFlags {
            invalidate: true,
            ttl: Some(30),
            ..Default::default()
        },
    ));
    assert_eq!(m.status, MetaStatus::Hd);
    let f = MetaGetFlags {
        value: true,
        ttl: true,
        ..Default::default()
    };
    let m = c.meta(mg("d4", f));
    assert_eq!(m.value.as_deref(), Some(&b"x"[..]));
    assert!(m.flags.stale && m.flags.won && !m.flags.win_sent);
    assert_ttl_near(m.flags.ttl, 30);
    let m = c.meta(mg("d4", f));
    assert!(m.flags.stale && !m.flags.won && m.flags.win_sent);
}

#[test]
fn ma_flags() {
    let mc = start();
    let mut c = Client::connect(&mc);
    let v = MetaArithmeticFlags {
        value: true,
        ..Default::default()
    };
    let num = |m: &MetaResponse| m.value.clone().unwrap();
    assert_eq!(
        c.meta(ma("ctr", MetaArithmeticFlags::default())),
        MetaResponse::status(MetaStatus::Nf)
    );
    // J without N on a miss: NF.
    assert_eq!(
        c.meta(ma(
            "ctr",
            MetaArithmeticFlags {
                initial: Some(5),
                ..v
            }
        ))
        .status,
        MetaStatus::Nf
    );
    // N + J: created with the initial value.
    let m = c.meta(ma(
        "ctr",
        MetaArithmeticFlags {
            vivify: Some(0),
            initial: Some(10),
            ..v
        },
    ));
    assert_eq!(
        (m.status, num(&m)),
        (MetaStatus::Va, Bytes::from_static(b"10"))
    );
    let m = c.meta(ma("ctr", v));
    assert_eq!(num(&m), "11");
    // Without v: HD.
    assert_eq!(
        c.meta(ma("ctr", MetaArithmeticFlags::default())),
        MetaResponse::status(MetaStatus::Hd)
    );
    // MD with D, t and c.
    let m = c.meta(ma(
        "ctr",
        MetaArithmeticFlags {
            mode: Some(MetaArithmeticMode::Decrement),
            delta: Some(6),
            return_ttl: true,
            cas: true,
            ..v
        },
    ));
    assert_eq!(num(&m), "6");
    assert_eq!(m.flags.ttl, Some(-1));
    let cas = m.flags.cas.unwrap();
    assert_eq!(
        values_of(c.ok(gets(&["ctr"])))[0].cas,
        Some(cas),
        "ma's c is the item's cas"
    );
    // Decrement clamps at 0.
    let m = c.meta(ma(
        "ctr",
        MetaArithmeticFlags {
            mode: Some(MetaArithmeticMode::Decrement),
            delta: Some(100),
            ..v
        },
    ));
    assert_eq!(num(&m), "0");
    // Increment wraps at 2^64.
    c.ok(set("wrap", u64::MAX.to_string()));
    assert_eq!(num(&c.meta(ma("wrap", v))), "0");
    // T updates the TTL; k and O come back.
    let opaque = Opaque::new(b"xx").unwrap();
    let m = c.meta(ma(
        "ctr",
        MetaArithmeticFlags {
            ttl: Some(100),
            return_ttl: true,
            key: true,
            opaque: Some(opaque),
            ..v
        },
    ));
    assert_eq!(num(&m), "1");
    assert_ttl_near(m.flags.ttl, 100);
    assert_eq!(m.flags.key, Some(key("ctr")));
    assert_eq!(m.flags.opaque, Some(opaque));
    // C: a wrong cas is EX.
    let m = c.meta(ma(
        "ctr",
        MetaArithmeticFlags {
            compare_cas: Some(1),
            ..v
        },
    ));
    assert_eq!(m.status, MetaStatus::Ex);
    // q hides success (even the value); a miss is answered.
    let q = MetaArithmeticFlags { quiet: true, ..v };
    assert_eq!(c.meta(ma("ctr", q)), MetaResponse::status(MetaStatus::Hd));
    assert_eq!(num(&c.meta(ma("ctr", v))), "3");
    assert_eq!(
        c.meta(ma("absent", q)),
        MetaResponse::status(MetaStatus::Nf)
    );
    // Non-numeric: a client error, and the connection is fine (ma has no data block).
    c.ok(set("text", "abc"));
    assert_eq!(
        c.call(ma("text", v)),
        Err(Error::Client(Bytes::from_static(
            b"cannot increment or decrement non-numeric value"
        )))
    );
    c.assert_usable();
}

#[test]
fn mn_and_me() {
    let mc = start();
    let mut c = Client::connect(&mc);
    assert_eq!(c.ok(Request::MetaNoop), Response::MetaNoop);
    c.ok(set("foo", "bar"));
    let Response::MetaDebug { key: k, info } = c.ok(Request::MetaDebug { key: key("foo") }) else {
        panic!("expected ME")
    };
    assert_eq!(k, "foo");
    let info = String::from_utf8(info.to_vec()).unwrap();
    let fields: Vec<&str> = info.split(' ').collect();
    assert!(fields.contains(&"exp=-1"), "{info}");
    assert!(fields.contains(&"fetch=no"), "{info}");
    assert!(fields.iter().all(|f| f.contains('=')), "{info}");
    assert_eq!(
        c.ok(Request::MetaDebug {
            key: key("missing")
        }),
        Response::Meta(Box::new(MetaResponse::status(MetaStatus::En)))
    );
}

#[test]
fn binary_keys() {
    let mc = start();
    let mut c = Client::connect(&mc);
    let raw: &[u8] = b"a key with spaces\r\nand\nnewlines\0";
    let bk = Key::binary(raw).unwrap();
    let m = c.meta(ms(
        &bk,
        "bin-value",
        MetaSetFlags {
            key: true,
            ..Default::default()
        },
    ));
    assert_eq!(m.status, MetaStatus::Hd);
    assert_eq!(m.flags.key, Some(bk.clone()));
    let m = c.meta(mg(
        &bk,
        MetaGetFlags {
            key: true,
            value: true,
            ..Default::default()
        },
    ));
    assert_eq!(m.value.as_deref(), Some(&b"bin-value"[..]));
    let returned = m.flags.key.unwrap();
    assert!(returned.is_binary());
    assert_eq!(returned.decoded(), raw);
    assert_eq!(returned, bk);
    // me prints the base64 form.
    let Response::MetaDebug { key: printed, .. } = c.ok(Request::MetaDebug { key: bk.clone() })
    else {
        panic!("expected ME")
    };
    assert_eq!(&printed[..], bk.wire());
    // Arithmetic and delete on binary keys.
    let ctr = Key::binary([0xff, 0x00, 0x20]).unwrap();
    let m = c.meta(ma(
        &ctr,
        MetaArithmeticFlags {
            vivify: Some(0),
            initial: Some(41),
            value: true,
            key: true,
            ..Default::default()
        },
    ));
    assert_eq!(m.value.as_deref(), Some(&b"41"[..]));
    assert_eq!(m.flags.key, Some(ctr.clone()));
    assert_eq!(
        c.meta(md(&bk, MetaDeleteFlags::default())).status,
        MetaStatus::Hd
    );
    // A miss echoes the binary key.
    let m = c.meta(mg(
        &bk,
        MetaGetFlags {
            key: true,
            value: true,
            ..Default::default()
        },
    ));
    assert_eq!(m.status, MetaStatus::En);
    assert_eq!(m.flags.key, Some(bk.clone()));

    // An item stored under a binary key comes back as binary (`k<b64> b`) even when fetched
    // with the text form of the same bytes.
    let printable = Key::binary(b"foobin").unwrap();
    c.meta(ms(&printable, "hi", MetaSetFlags::default()));
    let m = c.meta(mg(
        "foobin",
        MetaGetFlags {
            key: true,
            value: true,
            ..Default::default()
        },
    ));
    assert_eq!(m.value.as_deref(), Some(&b"hi"[..]));
    assert_eq!(m.flags.key, Some(printable));

    // Text commands cannot carry binary keys: refused, nothing sent.
    assert_eq!(
        c.try_send(Request::Delete {
            key: bk,
            noreply: false
        }),
        Err(Error::Encode(EncodeError::Key(
            KeyError::BinaryInTextCommand
        )))
    );
    assert!(c.conn.transmit().is_empty());
    c.assert_usable();
}

#[test]
fn invalid_keys_are_refused_and_nothing_is_sent() {
    assert_eq!(
        Key::new("a b"),
        Err(KeyError::InvalidByte {
            byte: b' ',
            offset: 1
        })
    );
    assert_eq!(
        Key::new("a\r\nflush_all"),
        Err(KeyError::InvalidByte {
            byte: b'\r',
            offset: 1
        })
    );
    assert_eq!(
        Key::new("a\nb"),
        Err(KeyError::InvalidByte {
            byte: b'\n',
            offset: 1
        })
    );
    assert_eq!(Key::new([b'k'; 251]), Err(KeyError::TooLong { len: 251 }));
    assert_eq!(Key::new(""), Err(KeyError::Empty));
    assert!(Key::new([b'k'; 250]).is_ok());
    assert_eq!(Key::binary([]), Err(KeyError::Empty));
    assert_eq!(Key::binary([0u8; 187]), Err(KeyError::TooLong { len: 252 }));

    // The longest keys do round-trip.
    let mc = start();
    let mut c = Client::connect(&mc);
    let long = "k".repeat(250);
    assert_eq!(c.ok(set(&long, "v")), Response::Stored);
    assert_eq!(c.get_one(&long), Some(value(&long, 0, None, b"v")));
    let long_bin = Key::binary([7u8; 186]).unwrap();
    assert_eq!(
        c.meta(ms(&long_bin, "w", MetaSetFlags::default())).status,
        MetaStatus::Hd
    );
    assert_eq!(
        c.meta(mg(&long_bin, value_flag())).value.as_deref(),
        Some(&b"w"[..])
    );

    // Through the definitions, a bad key fails before anything is written.
    let cache = Blocking::connect(&mc);
    let before = cache.run(commands::stats(None)).unwrap();
    for bad in ["a b", "a\r\nflush_all", "", &"x".repeat(251)] {
        let r = cache.run(commands::get(bad));
        assert!(
            matches!(r, Err(Error::Encode(EncodeError::Key(_)))),
            "{bad:?}: {r:?}"
        );
        let r = cache.run(commands::set(bad, "v", 0));
        assert!(matches!(r, Err(Error::Encode(EncodeError::Key(_)))));
    }
    assert!(cache.run(commands::get_multi(["ok", "not ok"])).is_err());
    let after = cache.run(commands::stats(None)).unwrap();
    for counter in ["cmd_get", "cmd_set", "cmd_flush", "cmd_touch"] {
        assert_eq!(
            stat_u64(&after, counter),
            stat_u64(&before, counter),
            "{counter}: nothing reached the server"
        );
    }
    // No smuggled flush_all ran.
    assert_eq!(
        cache.run(commands::get(long.as_str())).unwrap(),
        Some(value(&long, 0, None, b"v"))
    );
}

// ------------------------------------------------------------------------------------------
// Connection behaviour: pipelining, quiet batches, noreply, abandon, loss of the server
// ------------------------------------------------------------------------------------------

#[test]
fn pipeline_of_1000_mixed_requests() {
    let mc = start();
    let mut c = Client::connect(&mc);
    c.zero_copy = true;
    c.ok(set("ctr", "0"));
    let mut requests = Vec::new();
    let mut expected: Vec<Reply> = Vec::new();
    let mut incrs = 0;
    for i in 0..1000usize {
        let ki = |j: usize| format!("k{j}");
        let vi = |j: usize| format!("val-{j}").into_bytes();
        match i % 10 {
            0 => {
                requests.push(store(StoreCommand::Set, &ki(i), i as u32, 0, vi(i)));
                expected.push(Ok(Response::Stored));
            }
            1 => {
                // A duplicate key and a miss in between.
                requests.push(get(&[&ki(i - 1), "absent", &ki(i - 1)]));
                let v = value(&ki(i - 1), (i - 1) as u32, None, &vi(i - 1));
                expected.push(Ok(Response::Values(vec![v.clone(), v])));
            }
            2 => {
                let f = MetaGetFlags {
                    value: true,
                    client_flags: true,
                    key: true,
                    ..Default::default()
                };
                requests.push(mg(&ki(i - 2), f));
                expected.push(Ok(Response::Meta(Box::new(MetaResponse {
                    status: MetaStatus::Va,
                    flags: MetaReturnFlags {
                        client_flags: Some((i - 2) as u32),
                        key: Some(key(&ki(i - 2))),
                        ..Default::default()
                    },
                    value: Some(vi(i - 2).into()),
                }))));
            }
            3 => {
                requests.push(ms(
                    &format!("m{i}"),
                    format!("meta-{i}"),
                    MetaSetFlags::default(),
                ));
                expected.push(Ok(Response::Meta(Box::new(MetaResponse::status(
                    MetaStatus::Hd,
                )))));
            }
            4 => {
                requests.push(get(&[&format!("m{}", i - 1), "absent", &ki(i - 4)]));
                expected.push(Ok(Response::Values(vec![
                    value(
                        &format!("m{}", i - 1),
                        0,
                        None,
                        format!("meta-{}", i - 1).as_bytes(),
                    ),
                    value(&ki(i - 4), (i - 4) as u32, None, &vi(i - 4)),
                ])));
            }
            5 => {
                incrs += 1;
                requests.push(Request::Incr {
                    key: key("ctr"),
                    delta: 1,
                    noreply: false,
                });
                expected.push(Ok(Response::Number(incrs)));
            }
            6 => {
                requests.push(Request::Delete {
                    key: key(&ki(i - 6)),
                    noreply: false,
                });
                expected.push(Ok(Response::Deleted));
            }
            7 => {
                requests.push(get(&[&ki(i - 7)]));
                expected.push(Ok(Response::Values(vec![])));
            }
            8 => {
                requests.push(Request::MetaDebug {
                    key: key(&format!("absent{i}")),
                });
                expected.push(Ok(Response::Meta(Box::new(MetaResponse::status(
                    MetaStatus::En,
                )))));
            }
            _ => {
                requests.push(mg(&format!("absent{i}"), value_flag()));
                expected.push(Ok(Response::Meta(Box::new(MetaResponse::status(
                    MetaStatus::En,
                )))));
            }
        }
    }
    for r in requests {
        c.send(r);
    }
    // All in one transmit, no sync added (the last request is not silent).
    let out = c.conn.transmit().to_vec();
    assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1000 + 200);
    assert!(!out.ends_with(b"mn\r\n"));
    let replies = c.roundtrip();
    assert_eq!(replies.len(), 1000);
    let ids: Vec<u64> = replies.iter().map(|(id, _)| id.get()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in request order");
    for (i, ((_, got), want)) in replies.iter().zip(expected).enumerate() {
        assert_eq!(got, &want, "request {i}");
    }
    assert!(c.conn.is_idle());

    // Replay the server's exact bytes into a fresh connection that sent the same requests,
    // cut at every size from 1 byte up: the same replies come out, whatever the split.
    for chunk in [1, 2, 3, 7, 64, 1000, 1 << 20] {
        let mut replay = Connection::default();
        for r in &c.log {
            replay.send(r.clone()).unwrap();
        }
        let n = replay.transmit().len();
        replay.advance_transmit(n, Instant::now());
        let mut got = Vec::new();
        for piece in c.tap.chunks(chunk) {
            replay.receive(piece, Instant::now());
            while let Some(r) = replay.poll_response() {
                got.push(r);
            }
        }
        assert_eq!(got.len(), 1001, "chunks of {chunk}");
        for (i, (g, want)) in got[1..].iter().zip(&replies).enumerate() {
            assert_eq!(g, want, "request {i}, replayed in chunks of {chunk}");
        }
        assert!(replay.is_idle());
    }
    c.assert_usable();
}

#[test]
fn multi_get_of_2000_keys_in_one_line() {
    let mc = start();
    let mut c = Client::connect(&mc);
    let keys: Vec<String> = (0..2000)
        .map(|i| format!("multi:{i:04}:{}", "x".repeat(i % 40)))
        .collect();
    let sets = keys
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 != 0)
        .map(|(_, k)| set(k, k.clone()))
        .collect();
    assert!(c.batch(sets).iter().all(|r| r == &Ok(Response::Stored)));
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let request = get(&refs);
    let line_len = request.to_bytes(&Limits::default()).unwrap().len();
    assert!(line_len > 50_000, "{line_len}");
    let got = values_of(c.ok(request));
    let want: Vec<Value> = keys
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 != 0)
        .map(|(_, k)| value(k, 0, None, k.as_bytes()))
        .collect();
    assert_eq!(got, want);
    // Through the definition: one entry per key, misses aligned.
    let cache = Blocking::connect(&mc);
    let aligned = cache
        .run(commands::get_multi(refs.iter().copied()))
        .unwrap();
    assert_eq!(aligned.len(), 2000);
    for (i, (k, v)) in keys.iter().zip(aligned).enumerate() {
        if i % 3 == 0 {
            assert_eq!(v, None, "{k}");
        } else {
            assert_eq!(v, Some(value(k, 0, None, k.as_bytes())));
        }
    }
}

#[test]
fn gat_line_length_limit() {
    let mc = start();
    let mut c = Client::connect(&mc);
    // 13 keys of 156 bytes: `gat 0` plus 13 * (1 + 156) plus `\r\n` is exactly 2048 bytes,
    // the longest non-get line memcached buffers.
    let keys: Vec<String> = (0..13)
        .map(|i| format!("{i:02}{}", "g".repeat(154)))
        .collect();
    c.ok(set(&keys[3], "three"));
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let request = retrieve(RetrieveCommand::Gat(0), &refs);
    assert_eq!(request.to_bytes(&Limits::default()).unwrap().len(), 2048);
    assert_eq!(
        values_of(c.ok(request)),
        vec![value(&keys[3], 0, None, b"three")]
    );
    // One byte more is refused before anything is queued (the server would close).
    let mut longer = refs.clone();
    let long_key = format!("{}x", keys[12]);
    longer[12] = &long_key;
    for (command, len) in [
        (RetrieveCommand::Gat(0), 2049),
        (RetrieveCommand::Gats(0), 2050),
    ] {
        assert_eq!(
            c.try_send(retrieve(command, &longer)),
            Err(Error::Encode(EncodeError::LineTooLong { len, max: 2048 }))
        );
    }
    assert!(c.conn.transmit().is_empty());
    // get and gets lines have no such limit.
    let v = values_of(c.ok(gets(&longer)));
    assert_eq!(v.len(), 1);
    c.assert_usable();
}

#[test]
fn read_timeout_poisons_when_the_server_freezes() {
    let mc = start();
    let timeout = Duration::from_secs(1);
    let mut c = Client::with_config(
        &mc,
        ConnectionConfig {
            read_timeout: Some(timeout),
            ..Default::default()
        },
    );
    c.assert_usable();
    assert_eq!(c.conn.poll_timeout(), None, "nothing outstanding");
    freeze(&mc);
    let ids = [c.send(get(&["a"])), c.send(mg("a", value_flag()))];
    let t0 = Instant::now();
    let out = c.conn.transmit().to_vec();
    c.conn.advance_transmit(out.len(), t0);
    (&c.sock).write_all(&out).unwrap();
    // Time is passed in: no waiting here.
    assert_eq!(c.conn.poll_timeout(), Some(t0 + timeout));
    c.conn.handle_timeout(t0 + timeout / 2);
    assert_eq!(c.conn.poisoned(), None);
    c.conn.handle_timeout(t0 + timeout);
    assert_eq!(c.conn.poisoned(), Some(&PoisonReason::Timeout));
    let mut replies = Vec::new();
    c.drain(&mut replies);
    assert_eq!(
        replies,
        vec![
            (ids[0], Err(Error::Poisoned(PoisonReason::Timeout))),
            (ids[1], Err(Error::Poisoned(PoisonReason::Timeout))),
        ]
    );
    // Late replies to a poisoned connection are dropped, never delivered.
    mc.cont().unwrap();
    let mut buf = [0u8; 1024];
    let n = (&c.sock).read(&mut buf).unwrap();
    c.conn.receive(&buf[..n], Instant::now());
    assert!(c.conn.poll_response().is_none());
    assert!(c.conn.is_idle());
    Client::connect(&mc).assert_usable();
}

#[test]
fn error_after_a_quiet_request_poisons_rather_than_guess() {
    let mc = start();
    let mut c = Client::connect(&mc);
    c.ok(set("a", "1"));
    // A quiet ms that fails (too large) followed by a normal request: the SERVER_ERROR line
    // could answer either, so the connection gives up on both.
    let quiet = c.send(ms(
        "big",
        vec![0u8; 1 << 20],
        MetaSetFlags {
            quiet: true,
            ..Default::default()
        },
    ));
    let next = c.send(get(&["a"]));
    let replies = c.roundtrip();
    assert_eq!(
        replies,
        vec![
            (quiet, Err(Error::Poisoned(PoisonReason::AmbiguousError))),
            (next, Err(Error::Poisoned(PoisonReason::AmbiguousError))),
        ]
    );
    assert_eq!(c.conn.poisoned(), Some(&PoisonReason::AmbiguousError));
}

#[test]
fn quiet_batch_with_hits_and_misses() {
    let mc = start();
    let mut c = Client::connect(&mc);
    c.zero_copy = true;
    let sets = (0..100)
        .map(|i| set(&format!("p{i}"), format!("pv{i}")))
        .collect();
    assert!(c.batch(sets).iter().all(|r| r == &Ok(Response::Stored)));

    let opaque = Opaque::new(b"mine").unwrap();
    let mut ids = Vec::new();
    for i in 0..300 {
        let present = i % 3 == 0;
        let k = if present {
            format!("p{}", i / 3)
        } else {
            format!("absent{i}")
        };
        let flags = MetaGetFlags {
            value: true,
            quiet: true,
            key: i % 2 == 0,
            opaque: (i % 5 == 0).then_some(opaque),
            ..Default::default()
        };
        ids.push((c.send(mg(&k, flags)), present, k, flags));
    }
    // The connection closes the batch with its own mn, once.
    let out = c.conn.transmit().to_vec();
    assert!(out.ends_with(b" q\r\nmn\r\n"));
    assert_eq!(out.windows(4).filter(|w| w == b"mn\r\n").count(), 1);

    let replies = c.roundtrip();
    assert_eq!(
        replies.len(),
        300,
        "exactly one reply per request; mn never surfaces"
    );
    for ((id, reply), (want_id, present, k, flags)) in replies.into_iter().zip(ids) {
        assert_eq!(id, want_id);
        let m = meta_of(reply.unwrap());
        assert_eq!(
            m.flags.opaque, flags.opaque,
            "{k}: the caller's opaque is restored"
        );
        if present {
            assert_eq!(m.status, MetaStatus::Va, "{k}");
            let n = &k[1..];
            assert_eq!(m.value.unwrap(), format!("pv{n}"));
            assert_eq!(m.flags.key, flags.key.then(|| key(&k)));
        } else {
            assert_eq!(
                m,
                MetaResponse {
                    status: MetaStatus::En,
                    flags: MetaReturnFlags {
                        opaque: flags.opaque,
                        ..Default::default()
                    },
                    value: None
                },
                "{k}"
            );
        }
    }
    assert!(c.conn.is_idle());

    // A batch of misses only: the server sends nothing but MN, which is swallowed.
    let misses: Vec<Request> = (0..50)
        .map(|i| {
            mg(
                &format!("none{i}"),
                MetaGetFlags {
                    quiet: true,
                    ..value_flag()
                },
            )
        })
        .collect();
    let replies = c.batch(misses);
    assert!(replies.iter().all(|r| r
        == &Ok(Response::Meta(Box::new(MetaResponse::status(
            MetaStatus::En
        ))))));

    // Quiet writes: successes are implied, failures answered, effects visible afterwards.
    let q = MetaSetFlags {
        quiet: true,
        ..Default::default()
    };
    let replies = c.batch(vec![
        ms("q1", "one", q),
        ms(
            "p0",
            "no",
            MetaSetFlags {
                mode: Some(MetaSetMode::Add),
                ..q
            },
        ),
        md(
            "p1",
            MetaDeleteFlags {
                quiet: true,
                ..Default::default()
            },
        ),
        md(
            "absent",
            MetaDeleteFlags {
                quiet: true,
                ..Default::default()
            },
        ),
        ma(
            "cnt",
            MetaArithmeticFlags {
                vivify: Some(0),
                initial: Some(7),
                quiet: true,
                ..Default::default()
            },
        ),
        ma(
            "cnt",
            MetaArithmeticFlags {
                quiet: true,
                value: true,
                ..Default::default()
            },
        ),
        ma(
            "nocnt",
            MetaArithmeticFlags {
                quiet: true,
                ..Default::default()
            },
        ),
    ]);
    let st = |s| Ok(Response::Meta(Box::new(MetaResponse::status(s))));
    assert_eq!(
        replies,
        vec![
            st(MetaStatus::Hd),
            st(MetaStatus::Ns),
            st(MetaStatus::Hd),
            st(MetaStatus::Nf),
            st(MetaStatus::Hd),
            st(MetaStatus::Hd),
            st(MetaStatus::Nf),
        ]
    );
    assert_eq!(
        values_of(c.ok(get(&["q1", "p0", "p1", "cnt"]))),
        vec![
            value("q1", 0, None, b"one"),
            value("p0", 0, None, b"pv0"),
            value("cnt", 0, None, b"8"),
        ]
    );

    // Quiet requests followed by a normal one: that one ends the batch, no mn is added.
    let a = c.send(mg(
        "absent",
        MetaGetFlags {
            quiet: true,
            ..value_flag()
        },
    ));
    let v = c.send(Request::Version);
    assert!(c.conn.transmit().ends_with(b"version\r\n"));
    let replies = c.roundtrip();
    assert_eq!(replies.len(), 2);
    assert_eq!(
        replies[0],
        (
            a,
            Ok(Response::Meta(Box::new(MetaResponse::status(
                MetaStatus::En
            ))))
        )
    );
    assert_eq!(replies[1].0, v);
    c.assert_usable();
}

#[test]
fn noreply_text_commands() {
    let mc = start();
    let mut c = Client::connect(&mc);
    use StoreCommand::*;
    c.ok(set("cas", "c"));
    let cas = values_of(c.ok(gets(&["cas"])))[0].cas.unwrap();
    let requests = vec![
        noreply(store(Set, "a", 1, 0, "1")),
        noreply(store(Add, "a", 2, 0, "x")), // not stored, silently
        noreply(store(Add, "b", 2, 0, "2")),
        noreply(store(Replace, "a", 3, 0, "3")),
        noreply(store(Append, "a", 0, 0, "4")),
        noreply(store(Prepend, "a", 0, 0, "0")),
        noreply(store(Replace, "absent", 0, 0, "x")),
        noreply(store(Cas(cas + 1), "cas", 0, 0, "stale")), // EXISTS, silently
        noreply(store(Cas(cas), "cas", 0, 0, "swapped")),
        noreply(set("n", "10")),
        noreply(Request::Incr {
            key: key("n"),
            delta: 5,
            noreply: false,
        }),
        noreply(Request::Decr {
            key: key("n"),
            delta: 3,
            noreply: false,
        }),
        noreply(Request::Incr {
            key: key("absent"),
            delta: 1,
            noreply: false,
        }),
        noreply(Request::Touch {
            key: key("a"),
            exptime: 1000,
            noreply: false,
        }),
        noreply(set("del", "x")),
        noreply(Request::Delete {
            key: key("del"),
            noreply: false,
        }),
        noreply(Request::Delete {
            key: key("absent"),
            noreply: false,
        }),
        noreply(Request::Verbosity {
            level: 0,
            noreply: false,
        }),
    ];
    let n = requests.len();
    for r in requests {
        c.send(r);
    }
    assert!(c.conn.transmit().ends_with(b"noreply\r\nmn\r\n"));
    let replies = c.roundtrip();
    assert_eq!(replies.len(), n);
    assert!(replies.iter().all(|(_, r)| r == &Ok(Response::NoReply)));

    assert_eq!(
        values_of(c.ok(get(&["a", "b", "absent", "cas", "n", "del"]))),
        vec![
            value("a", 3, None, b"034"),
            value("b", 2, None, b"2"),
            value("cas", 0, None, b"swapped"),
            value("n", 0, None, b"12"),
        ]
    );
    assert_ttl_near(
        c.meta(mg(
            "a",
            MetaGetFlags {
                ttl: true,
                ..Default::default()
            },
        ))
        .flags
        .ttl,
        1000,
    );

    // noreply in the middle of a pipeline: the next reply closes it, no mn needed.
    let ids = [
        c.send(noreply(set("mid", "m"))),
        c.send(get(&["mid"])),
        c.send(noreply(Request::FlushAll {
            delay: None,
            noreply: false,
        })),
    ];
    let replies = c.roundtrip();
    assert_eq!(
        replies,
        vec![
            (ids[0], Ok(Response::NoReply)),
            (
                ids[1],
                Ok(Response::Values(vec![value("mid", 0, None, b"m")]))
            ),
            (ids[2], Ok(Response::NoReply)),
        ]
    );
    assert_eq!(values_of(c.ok(get(&["a", "b", "mid"]))), vec![]);
    c.assert_usable();
}

#[test]
fn noreply_batch_closed_with_version() {
    let mc = start();
    let mut c = Client::with_config(
        &mc,
        ConnectionConfig {
            sync: SyncCommand::Version,
            ..Default::default()
        },
    );
    let replies = c.batch(vec![
        noreply(set("a", "1")),
        mg(
            "absent",
            MetaGetFlags {
                quiet: true,
                ..value_flag()
            },
        ),
        noreply(set("b", "2")),
    ]);
    assert_eq!(
        replies,
        vec![
            Ok(Response::NoReply),
            Ok(Response::Meta(Box::new(MetaResponse::status(
                MetaStatus::En
            )))),
            Ok(Response::NoReply),
        ]
    );
    assert_eq!(values_of(c.ok(get(&["a", "b"]))).len(), 2);
}

#[test]
fn abandoned_requests_never_get_anyone_elses_reply() {
    let mc = start();
    let mut c = Client::connect(&mc);
    let n = 300;
    let k = |i: usize| format!("key{i}");
    // Values that name their own key, so a misdelivered reply is caught.
    let v = |i: usize| format!("value-of-key{i}");
    let sets = (0..n).map(|i| set(&k(i), v(i))).collect();
    assert!(c.batch(sets).iter().all(|r| r == &Ok(Response::Stored)));

    let mut sent = Vec::new();
    for i in 0..n {
        let request = match i % 4 {
            0 | 1 => get(&[&k(i)]),
            2 => mg(
                &k(i),
                MetaGetFlags {
                    value: true,
                    key: true,
                    ..Default::default()
                },
            ),
            // Quiet misses in between: they must not shift anything.
            _ => mg(
                &format!("absent{i}"),
                MetaGetFlags {
                    quiet: true,
                    ..value_flag()
                },
            ),
        };
        sent.push(c.send(request));
    }
    // Abandoned before anything was written.
    let mut abandoned = BTreeSet::new();
    for i in (0..n).step_by(7) {
        assert!(c.abandon(sent[i]));
        abandoned.insert(i);
    }
    let out = c.take_out();
    (&c.sock).write_all(&out).unwrap();

    // Read the whole reply stream raw, then feed it to the connection a few bytes at a time,
    // abandoning more requests half way: some still pending, some decoded but not yet polled.
    let mut stream = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while !stream.ends_with(b"MN\r\n") {
        let got = (&c.sock).read(&mut buf).expect("read (hang guard)");
        assert_ne!(got, 0, "server closed");
        stream.extend_from_slice(&buf[..got]);
    }
    let half = stream.len() / 2;
    for chunk in stream[..half].chunks(7) {
        c.conn.receive(chunk, Instant::now());
    }
    let mut decoded_not_polled = 0;
    for i in (1..n).step_by(5) {
        if abandoned.insert(i) {
            assert!(c.abandon(sent[i]), "{i} was neither pending nor ready");
            decoded_not_polled += usize::from(i < n / 4);
        }
    }
    assert!(decoded_not_polled > 0);
    for chunk in stream[half..].chunks(7) {
        c.conn.receive(chunk, Instant::now());
    }
    let mut replies = Vec::new();
    c.drain(&mut replies);
    assert!(c.outstanding.is_empty(), "unanswered: {:?}", c.outstanding);
    assert!(c.conn.is_idle());
    let expected_ids: Vec<RequestId> = (0..n)
        .filter(|i| !abandoned.contains(i))
        .map(|i| sent[i])
        .collect();
    let got_ids: Vec<RequestId> = replies.iter().map(|(id, _)| *id).collect();
    assert_eq!(got_ids, expected_ids);
    for (id, reply) in replies {
        let i = sent.iter().position(|s| *s == id).unwrap();
        match (i % 4, reply.unwrap()) {
            (0 | 1, Response::Values(vals)) => {
                assert_eq!(vals, vec![value(&k(i), 0, None, v(i).as_bytes())])
            }
            (2, Response::Meta(m)) => {
                assert_eq!(m.value.unwrap(), v(i));
                assert_eq!(m.flags.key, Some(key(&k(i))));
            }
            (3, r) => assert_eq!(
                r,
                Response::Meta(Box::new(MetaResponse::status(MetaStatus::En)))
            ),
            (_, r) => panic!("request {i} got {r:?}"),
        }
    }
    // Abandoning an id that is gone does nothing.
    assert!(!c.conn.abandon(sent[1]));
    c.assert_usable();
}

#[test]
fn server_killed_mid_pipeline_fails_every_pending_request() {
    let mc = start();
    let mut c = Client::connect(&mc);
    // A first batch is answered normally.
    let first = c.batch(vec![set("a", "1"), get(&["a"])]);
    assert_eq!(first[0], Ok(Response::Stored));

    // Freeze the server, pipeline more (text, meta, quiet, noreply), then kill it.
    freeze(&mc);
    let mut ids = Vec::new();
    for i in 0..50 {
        ids.push(c.send(get(&[&format!("k{i}")])));
        ids.push(c.send(mg("a", value_flag())));
        ids.push(c.send(noreply(set("b", "2"))));
        ids.push(c.send(mg(
            "a",
            MetaGetFlags {
                quiet: true,
                ..value_flag()
            },
        )));
    }
    c.write_only();
    mc.kill().unwrap();
    let replies = c.collect();
    assert_eq!(replies.len(), ids.len());
    for ((id, reply), want) in replies.into_iter().zip(ids) {
        assert_eq!(id, want);
        assert_eq!(reply, Err(Error::Poisoned(PoisonReason::Closed)));
    }
    assert_eq!(c.conn.poisoned(), Some(&PoisonReason::Closed));
    assert!(c.conn.is_idle());
    assert_eq!(
        c.try_send(Request::Version),
        Err(Error::Poisoned(PoisonReason::Closed))
    );
    assert!(c.conn.transmit().is_empty());

    // After a restart, a new connection works.
    mc.restart().unwrap();
    let mut c = Client::connect(&mc);
    assert_eq!(c.get_one("a"), None);
}

#[test]
fn server_killed_while_a_large_reply_is_in_flight() {
    let mc = start();
    let mut c = Client::connect(&mc);
    let big: Vec<u8> = (0..900_000u32).map(|i| (i % 241) as u8).collect();
    c.ok(set("big", big.clone()));
    let first = [
        c.send(get(&["big"])),
        c.send(mg("big", value_flag())),
        c.send(get(&["big"])),
    ];
    c.write_only();
    // Take in only the start of the replies.
    let mut buf = [0u8; 4096];
    let n = (&c.sock).read(&mut buf).unwrap();
    c.conn.receive(&buf[..n], Instant::now());
    assert!(
        c.conn.poll_response().is_none(),
        "900 kB are not in {n} bytes"
    );
    // Freeze the server, queue more, then kill it.
    freeze(&mc);
    let second = [c.send(Request::Version), c.send(get(&["big"]))];
    c.write_only();
    mc.kill().unwrap();
    let replies = c.collect();
    assert_eq!(replies.len(), 5);
    // Each reply is either whole and right or Closed; never a truncated value.
    let mut closed = false;
    for ((id, reply), want) in replies.into_iter().zip(first.iter().chain(&second)) {
        assert_eq!(id, *want);
        match reply {
            Err(Error::Poisoned(PoisonReason::Closed)) => closed = true,
            Ok(r) => {
                assert!(!closed, "a reply after the connection was closed");
                assert!(first.contains(&id), "the frozen server answered");
                let data = match r {
                    Response::Values(mut v) => v.pop().unwrap().data,
                    Response::Meta(m) => m.value.unwrap(),
                    other => panic!("{other:?}"),
                };
                assert!(data == big, "truncated or altered value");
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(closed);
    assert_eq!(c.conn.poisoned(), Some(&PoisonReason::Closed));
}

// ------------------------------------------------------------------------------------------
// The command definitions (`mcache_proto::commands`) over a blocking round trip
// ------------------------------------------------------------------------------------------

/// The simplest blocking client: one connection behind a mutex; each command is its
/// definition in `mcache_proto::commands`, run with `Call::run` over one round trip.
struct Blocking(Mutex<Client>);

impl Blocking {
    fn connect(mc: &Memcached) -> Blocking {
        Blocking(Mutex::new(Client::connect(mc)))
    }

    /// Runs a definition's call (keyed definitions return a `Result`: an invalid key is an
    /// error before any request exists).
    fn run<T, F: Finish<T>>(&self, call: impl IntoCall<T, F>) -> Result<T, Error> {
        call.into_call()?
            .run(|request| self.0.lock().unwrap().call(request))
    }
}

/// What the definitions return: a `Call`, or (with keys) a `Result` of one.
trait IntoCall<T, F> {
    fn into_call(self) -> Result<Call<T, F>, Error>;
}

impl<T, F> IntoCall<T, F> for Call<T, F> {
    fn into_call(self) -> Result<Call<T, F>, Error> {
        Ok(self)
    }
}

impl<T, F> IntoCall<T, F> for Result<Call<T, F>, Error> {
    fn into_call(self) -> Result<Call<T, F>, Error> {
        self
    }
}

#[test]
fn every_command_definition() {
    let mc = start();
    let cache = Blocking::connect(&mc);
    let cache = &cache;
    let b = |s: &'static str| Bytes::from_static(s.as_bytes());

    // Storage.
    cache.run(commands::set("a", "1", 0)).unwrap();
    assert!(!cache.run(commands::add("a", "x", 0)).unwrap());
    assert!(cache.run(commands::add("b", "2", 0)).unwrap());
    assert!(!cache.run(commands::replace("absent", "x", 0)).unwrap());
    assert!(cache.run(commands::replace("a", "3", 0)).unwrap());
    assert!(cache.run(commands::append("a", "4")).unwrap());
    assert!(cache.run(commands::prepend("a", "0")).unwrap());
    assert!(!cache.run(commands::append("absent", "x")).unwrap());
    assert!(!cache.run(commands::prepend("absent", "x")).unwrap());
    assert_eq!(
        cache
            .run(commands::store(Store {
                command: StoreCommand::Set,
                key: key("flagged"),
                flags: 42,
                exptime: 0,
                value: b("f"),
                noreply: false,
            }))
            .unwrap(),
        StoreStatus::Stored
    );
    assert_eq!(
        cache
            .run(commands::store(Store {
                command: StoreCommand::Set,
                key: key("quiet"),
                flags: 0,
                exptime: 0,
                value: b("q"),
                noreply: true,
            }))
            .unwrap(),
        StoreStatus::NoReply
    );

    // Retrieval.
    assert_eq!(
        cache.run(commands::get("a")).unwrap(),
        Some(value("a", 0, None, b"034"))
    );
    assert_eq!(cache.run(commands::get("absent")).unwrap(), None);
    assert_eq!(
        cache.run(commands::get(key("flagged"))).unwrap(),
        Some(value("flagged", 42, None, b"f"))
    );
    let g = cache.run(commands::gets("a")).unwrap().unwrap();
    let cas_a = g.cas.unwrap();
    assert_eq!(g, value("a", 0, Some(cas_a), b"034"));
    assert_eq!(cache.run(commands::gets("absent")).unwrap(), None);
    assert_eq!(
        cache
            .run(commands::get_multi([
                "a", "absent", "b", "a", "quiet", "gone"
            ]))
            .unwrap(),
        vec![
            Some(value("a", 0, None, b"034")),
            None,
            Some(value("b", 0, None, b"2")),
            Some(value("a", 0, None, b"034")),
            Some(value("quiet", 0, None, b"q")),
            None,
        ]
    );
    assert_eq!(
        cache.run(commands::get_multi(Vec::<&str>::new())).unwrap(),
        vec![]
    );
    let gm = cache
        .run(commands::gets_multi(vec![
            "absent".to_string(),
            "b".to_string(),
            "a".to_string(),
        ]))
        .unwrap();
    assert_eq!(gm[0], None);
    let cas_b = gm[1].as_ref().unwrap().cas.unwrap();
    assert_eq!(gm[1], Some(value("b", 0, Some(cas_b), b"2")));
    assert_eq!(gm[2], Some(value("a", 0, Some(cas_a), b"034")));
    assert_eq!(
        cache.run(commands::gat(100, "b")).unwrap(),
        Some(value("b", 0, None, b"2"))
    );
    assert_eq!(cache.run(commands::gat(100, "absent")).unwrap(), None);
    assert_eq!(
        cache.run(commands::gats(0, "b")).unwrap(),
        Some(value("b", 0, Some(cas_b), b"2"))
    );
    assert_eq!(cache.run(commands::gats(0, "absent")).unwrap(), None);

    // cas.
    assert_eq!(
        cache.run(commands::cas("a", "new", 0, cas_a + 1)).unwrap(),
        StoreStatus::Exists
    );
    assert_eq!(
        cache.run(commands::cas("a", "new", 0, cas_a)).unwrap(),
        StoreStatus::Stored
    );
    assert_eq!(
        cache.run(commands::cas("absent", "x", 0, cas_a)).unwrap(),
        StoreStatus::NotFound
    );
    assert_eq!(
        cache.run(commands::get("a")).unwrap(),
        Some(value("a", 0, None, b"new"))
    );

    // delete, incr, decr, touch.
    assert!(cache.run(commands::delete("a")).unwrap());
    assert!(!cache.run(commands::delete("a")).unwrap());
    cache.run(commands::set("n", "10", 0)).unwrap();
    assert_eq!(cache.run(commands::incr("n", 5)).unwrap(), Some(15));
    assert_eq!(cache.run(commands::decr("n", 20)).unwrap(), Some(0));
    assert_eq!(cache.run(commands::incr("absent", 1)).unwrap(), None);
    assert_eq!(cache.run(commands::decr("absent", 1)).unwrap(), None);
    assert_eq!(
        cache.run(commands::incr("b", u64::MAX)).unwrap(),
        Some(1),
        "2 + (2^64 - 1) wraps to 1"
    );
    cache.run(commands::set("text", "abc", 0)).unwrap();
    assert_eq!(
        cache.run(commands::incr("text", 1)),
        Err(Error::Client(b(
            "cannot increment or decrement non-numeric value"
        )))
    );
    assert!(cache.run(commands::touch("n", 100)).unwrap());
    assert!(!cache.run(commands::touch("absent", 100)).unwrap());

    // Admin.
    let version = cache.run(commands::version()).unwrap();
    let stats = cache.run(commands::stats(None)).unwrap();
    assert_eq!(stat(&stats, "version"), version.as_bytes());
    let settings = cache.run(commands::stats(Some("settings"))).unwrap();
    assert_eq!(stat(&settings, "item_size_max"), b"1048576");
    assert_eq!(cache.run(commands::stats(Some("reset"))).unwrap(), vec![]);
    assert_eq!(
        stat_u64(&cache.run(commands::stats(None)).unwrap(), "cmd_get"),
        0
    );
    cache.run(commands::verbosity(1)).unwrap();
    cache.run(commands::verbosity(0)).unwrap();

    // Meta.
    let m = cache
        .run(commands::meta_set(
            "m",
            "meta",
            MetaSetFlags {
                client_flags: Some(9),
                cas: true,
                ..Default::default()
            },
        ))
        .unwrap();
    assert_eq!(m.status, MetaStatus::Hd);
    let cas_m = m.flags.cas.unwrap();
    let m = cache
        .run(commands::meta_get(
            "m",
            MetaGetFlags {
                value: true,
                client_flags: true,
                cas: true,
                ..Default::default()
            },
        ))
        .unwrap();
    assert_eq!(
        m,
        MetaResponse {
            status: MetaStatus::Va,
            flags: MetaReturnFlags {
                cas: Some(cas_m),
                client_flags: Some(9),
                ..Default::default()
            },
            value: Some(b("meta")),
        }
    );
    assert_eq!(
        cache
            .run(commands::meta_get("absent", value_flag()))
            .unwrap(),
        MetaResponse::status(MetaStatus::En)
    );
    let m = cache
        .run(commands::meta_arithmetic(
            "mctr",
            MetaArithmeticFlags {
                vivify: Some(0),
                initial: Some(5),
                value: true,
                ..Default::default()
            },
        ))
        .unwrap();
    assert_eq!(m.value, Some(b("5")));
    let m = cache
        .run(commands::meta_arithmetic(
            "mctr",
            MetaArithmeticFlags {
                mode: Some(MetaArithmeticMode::Decrement),
                delta: Some(2),
                value: true,
                ..Default::default()
            },
        ))
        .unwrap();
    assert_eq!(m.value, Some(b("3")));
    assert_eq!(
        cache
            .run(commands::meta_delete("m", MetaDeleteFlags::default()))
            .unwrap()
            .status,
        MetaStatus::Hd
    );
    assert_eq!(
        cache
            .run(commands::meta_delete("m", MetaDeleteFlags::default()))
            .unwrap()
            .status,
        MetaStatus::Nf
    );
    cache.run(commands::meta_noop()).unwrap();
    let info = cache.run(commands::meta_debug("mctr")).unwrap().unwrap();
    assert!(info.starts_with(b"exp=-1 "), "{info:?}");
    assert_eq!(cache.run(commands::meta_debug("m")).unwrap(), None);

    // flush_all last.
    cache.run(commands::flush_all(Some(0))).unwrap();
    assert_eq!(cache.run(commands::get("b")).unwrap(), None);
    cache.run(commands::flush_all(None)).unwrap();

    // Calls can be run from another thread.
    let from_thread = thread::scope(|s| {
        s.spawn(|| cache.run(commands::meta_get("mctr", value_flag())))
            .join()
            .unwrap()
    });
    assert_eq!(
        from_thread.unwrap(),
        MetaResponse::status(MetaStatus::En),
        "flushed"
    );
    assert_eq!(cache.0.lock().unwrap().conn.poisoned(), None);
}
