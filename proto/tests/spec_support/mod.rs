//! Helpers shared by the spec tests: loading the recorded exchanges of `tests/data`,
//! parsing Python bytes literals, replaying requests and replies through the codec, and small
//! builders for typed requests and replies.
//!
//! Included by each `spec_*` test binary (`mod spec_support;`); none uses all of it.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use bytes::{Bytes, BytesMut};
use mcache_proto::meta::request::{MetaArithmetic, MetaDelete, MetaGet, MetaSet};
use mcache_proto::text::request::{Retrieve, RetrieveCommand, Store, StoreCommand};
use mcache_proto::{
    DecodeError, Error, ErrorKind, Expect, Key, Limits, MetaGetFlags, MetaResponse,
    MetaReturnFlags, MetaStatus, Request, Response, ResponseDecoder, Value,
};
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The test data directory (`proto/tests/data`): the recorded exchanges, as recorded.
pub const DATA_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

/// The recorded exchanges with memcached 1.6.18, and how many records each holds.
pub const EMPIRICAL_FILES: [(&str, usize); 5] = [
    ("empirical-1.6.18.json", 270),
    ("empirical2-1.6.18.json", 64),
    ("empirical2-1.6.18-flush.json", 10),
    ("empirical3-1.6.18.json", 8),
    ("empirical4-1.6.18.json", 17),
];

/// One recorded exchange.
#[derive(Debug, Clone)]
pub struct Record {
    pub file: &'static str,
    pub index: usize,
    pub section: String,
    pub label: String,
    /// A Python bytes literal, a truncated literal, or a description.
    pub request: String,
    pub request_len: usize,
    pub response: String,
    pub response_len: usize,
    pub closed: bool,
    pub probe: Option<String>,
    pub note: String,
}

impl Record {
    /// `file#index section / label`, for messages.
    pub fn id(&self) -> String {
        format!(
            "{}#{} [{} / {}]",
            self.file, self.index, self.section, self.label
        )
    }
}

fn json_str(v: &serde_json::Value, field: &str) -> String {
    match &v[field] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => panic!("field {field}: expected a string, got {other}"),
    }
}

fn json_usize(v: &serde_json::Value, field: &str) -> usize {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("field {field}: expected a number"))
        .try_into()
        .expect("length fits usize")
}

/// Loads one of the empirical files.
pub fn load_records(file: &'static str) -> Vec<Record> {
    let path = format!("{DATA_DIR}/{file}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    let json: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: invalid JSON: {e}"));
    let list = json
        .as_array()
        .unwrap_or_else(|| panic!("{path}: not a list"));
    list.iter()
        .enumerate()
        .map(|(index, v)| Record {
            file,
            index,
            section: json_str(v, "section"),
            label: json_str(v, "label"),
            request: json_str(v, "request"),
            request_len: json_usize(v, "request_len"),
            response: json_str(v, "response"),
            response_len: json_usize(v, "response_len"),
            closed: v["closed"]
                .as_bool()
                .unwrap_or_else(|| panic!("{path}#{index}: closed is not a bool")),
            probe: v["probe"].as_str().map(str::to_owned),
            note: json_str(v, "note"),
        })
        .collect()
}

/// Every record of every empirical file, in file order.
pub fn all_records() -> Vec<Record> {
    let mut all = Vec::new();
    for (file, count) in EMPIRICAL_FILES {
        let records = load_records(file);
        assert_eq!(records.len(), count, "{file}: number of records changed");
        all.extend(records);
    }
    all
}

// ---------------------------------------------------------------------------------------------
// Python bytes literals
// ---------------------------------------------------------------------------------------------

/// Decodes the Python escapes of a bytes literal's body (without the quotes). Unknown escapes
/// keep their backslash, as Python does.
pub fn unescape(body: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if !c.is_ascii() {
            return Err(format!("non-ASCII character {c:?} in a bytes literal"));
        }
        if c != '\\' {
            out.push(c as u8);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push(b'\\'),
            Some('\'') => out.push(b'\''),
            Some('"') => out.push(b'"'),
            Some('n') => out.push(b'\n'),
            Some('r') => out.push(b'\r'),
            Some('t') => out.push(b'\t'),
            Some('a') => out.push(0x07),
            Some('b') => out.push(0x08),
            Some('f') => out.push(0x0c),
            Some('v') => out.push(0x0b),
            Some('0') => out.push(0),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                let byte = u8::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == 2)
                    .ok_or_else(|| format!("bad \\x escape: \\x{hex}"))?;
                out.push(byte);
            }
            Some(other) => {
                if !other.is_ascii() {
                    return Err(format!("non-ASCII character {other:?} after a backslash"));
                }
                out.push(b'\\');
                out.push(other as u8);
            }
            None => return Err("dangling backslash".into()),
        }
    }
    Ok(out)
}

/// Parses a Python bytes literal (`b'...'` or `b"..."`) at the start of `s`: its bytes and the
/// rest of `s`. `None` if `s` does not start with one.
pub fn parse_literal(s: &str) -> Option<Result<(Vec<u8>, &str), String>> {
    let quote = match s.as_bytes() {
        [b'b', q @ (b'\'' | b'"'), ..] => *q,
        _ => return None,
    };
    let body_start = 2;
    let bytes = s.as_bytes();
    let mut i = body_start;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b if b == quote => {
                return Some(unescape(&s[body_start..i]).map(|v| (v, &s[i + 1..])));
            }
            _ => i += 1,
        }
    }
    Some(Err(format!("unterminated bytes literal: {s:.60}")))
}

/// What a record's request or response field holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A whole bytes literal.
    Literal(Vec<u8>),
    /// `b'<head>' ...<N more bytes>... b'<tail>'`: `N` bytes follow the head, the tail's
    /// included.
    Truncated {
        head: Vec<u8>,
        missing: usize,
        tail: Vec<u8>,
    },
    /// Prose (a description, or prose around literals).
    Text(String),
}

impl Source {
    /// Classifies a field. A field that starts like a literal but is not one is an error.
    pub fn parse(s: &str) -> Result<Source, String> {
        let Some(first) = parse_literal(s) else {
            return Ok(Source::Text(s.to_owned()));
        };
        let (head, rest) = first?;
        if rest.is_empty() {
            return Ok(Source::Literal(head));
        }
        let Some(rest) = rest.strip_prefix(" ...<") else {
            // Prose that starts with a literal.
            return Ok(Source::Text(s.to_owned()));
        };
        let (n, rest) = rest
            .split_once(" more bytes>... ")
            .ok_or_else(|| format!("bad truncation marker: {rest:.40}"))?;
        let missing: usize = n
            .parse()
            .map_err(|_| format!("bad truncation count {n:?}"))?;
        let (tail, end) = parse_literal(rest).ok_or("no literal after truncation")??;
        if !end.is_empty() {
            return Err(format!("text after the truncated literal: {end:.40}"));
        }
        Ok(Source::Truncated {
            head,
            missing,
            tail,
        })
    }

    /// The whole bytes: a literal, or a truncated literal whose missing middle repeats the
    /// byte that ends the head and starts the tail (long runs of one character).
    pub fn full(&self) -> Option<Vec<u8>> {
        match self {
            Source::Literal(b) => Some(b.clone()),
            Source::Truncated {
                head,
                missing,
                tail,
            } => {
                let fill = *head.last()?;
                if tail.first() != Some(&fill) {
                    return None;
                }
                let mut v = head.clone();
                v.resize(head.len() + missing.checked_sub(tail.len())?, fill);
                v.extend_from_slice(tail);
                Some(v)
            }
            Source::Text(_) => None,
        }
    }
}

/// The bytes literals embedded in prose (`before data: b''; after data: b'SERVER_ERROR ...'`).
pub fn embedded_literals(text: &str) -> Vec<Vec<u8>> {
    let mut found = Vec::new();
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        let at_word_start = i == 0 || !text.as_bytes()[i - 1].is_ascii_alphanumeric();
        if at_word_start {
            if let Some(Ok((bytes, after))) = parse_literal(rest) {
                found.push(bytes);
                i = text.len() - after.len();
                continue;
            }
        }
        i += rest.chars().next().map_or(1, char::len_utf8);
    }
    found
}

/// Expands the placeholders of a described request (`<250*k>`, `<2097152 x>`: a run of one
/// character) and its escapes. `None` if it holds any other kind of placeholder.
pub fn expand_placeholders(text: &str) -> Option<Vec<u8>> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let end = after.find('>')?;
        let inner = &after[..end];
        let (count, ch) = inner.split_once('*').or_else(|| inner.split_once(' '))?;
        let count: usize = count.parse().ok()?;
        let mut ch = ch.chars();
        let c = ch.next()?;
        if ch.next().is_some() {
            return None;
        }
        out.extend(std::iter::repeat_n(c, count));
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    unescape(&out).ok()
}

// ---------------------------------------------------------------------------------------------
// Decoding requests (server side) and replies (client side)
// ---------------------------------------------------------------------------------------------

/// The result of decoding a request stream delivered in chunks.
#[derive(Debug, Default)]
pub struct DecodedRequests {
    /// Each request, with its byte range in the concatenated stream.
    pub requests: Vec<(Request, Range<usize>)>,
    /// The error that stopped decoding, with the offset of the refused request.
    pub error: Option<(DecodeError, usize)>,
    /// Bytes left undecoded at the end (an incomplete request).
    pub leftover: usize,
    /// After each chunk but the last: whether an incomplete request was waiting.
    pub waiting_between_chunks: Vec<bool>,
}

/// Decodes requests from `chunks` (fed one after the other) with `Request::decode`.
pub fn decode_requests(chunks: &[Vec<u8>], limits: &Limits) -> DecodedRequests {
    let mut out = DecodedRequests::default();
    let mut buf = BytesMut::new();
    let mut fed = 0;
    for (i, chunk) in chunks.iter().enumerate() {
        buf.extend_from_slice(chunk);
        fed += chunk.len();
        loop {
            let start = fed - buf.len();
            match Request::decode(&mut buf, limits) {
                Ok(Some(r)) => out.requests.push((r, start..fed - buf.len())),
                Ok(None) => break,
                Err(e) => {
                    out.error = Some((e, start));
                    out.leftover = buf.len();
                    return out;
                }
            }
        }
        if i + 1 < chunks.len() {
            out.waiting_between_chunks.push(!buf.is_empty());
        }
    }
    out.leftover = buf.len();
    out
}

/// One decoded reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The request it answers.
    pub request: usize,
    pub response: Response,
    /// The bytes it was decoded from.
    pub raw: Vec<u8>,
}

/// What replaying replies against requests gave.
#[derive(Debug, Default)]
pub struct Replayed {
    pub replies: Vec<Reply>,
    /// Bytes left after the last expected reply.
    pub leftover: Vec<u8>,
    /// Whether a `quit` ended the exchange (later requests get no reply).
    pub quit: bool,
}

/// Decodes `response` as the replies to `requests`, in order, with one [`ResponseDecoder`]:
/// text `noreply` requests expect nothing; a quiet meta request (`q`) takes the next reply
/// only if that reply decodes as its own (else it succeeded silently); nothing is expected
/// after `quit`. Fails on a decode error or a reply cut short.
pub fn replay(requests: &[Request], response: &[u8]) -> Result<Replayed, String> {
    replay_split(requests, &[response])
}

/// [`replay`] with the response bytes delivered in chunks.
pub fn replay_split(requests: &[Request], chunks: &[&[u8]]) -> Result<Replayed, String> {
    let mut dec = ResponseDecoder::new(Limits::default());
    let mut out = Replayed::default();
    let mut buf = BytesMut::new();
    let mut chunks = chunks.iter();
    let mut all: Vec<u8> = Vec::new();
    let mut consumed = 0usize;
    let mut feed = |buf: &mut BytesMut, all: &mut Vec<u8>| -> bool {
        match chunks.next() {
            Some(c) => {
                buf.extend_from_slice(c);
                all.extend_from_slice(c);
                true
            }
            None => false,
        }
    };
    feed(&mut buf, &mut all);
    for (i, req) in requests.iter().enumerate() {
        if *req == Request::Quit {
            out.quit = true;
            break;
        }
        let Some(expect) = Expect::of(req) else {
            continue;
        };
        if req.is_silent() {
            // Quiet meta request: its reply, if any, must be its own. Try on a copy; with
            // chunked input, wait for enough bytes to tell.
            loop {
                let mut trial = buf.clone();
                let mut trial_dec = ResponseDecoder::new(Limits::default());
                match trial_dec.decode(&expect, &mut trial) {
                    Ok(Some(r)) => {
                        let used = buf.len() - trial.len();
                        out.replies.push(Reply {
                            request: i,
                            response: r,
                            raw: all[consumed..consumed + used].to_vec(),
                        });
                        consumed += used;
                        buf = trial;
                        break;
                    }
                    Ok(None) => {
                        if !feed(&mut buf, &mut all) {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
            continue;
        }
        let start = consumed;
        loop {
            let before = buf.len();
            let result = dec.decode(&expect, &mut buf);
            // The decoder consumes the parts of a long reply as they come.
            consumed += before - buf.len();
            match result {
                Ok(Some(r)) => {
                    out.replies.push(Reply {
                        request: i,
                        response: r,
                        raw: all[start..consumed].to_vec(),
                    });
                    break;
                }
                Ok(None) => {
                    if !feed(&mut buf, &mut all) {
                        return Err(format!(
                            "reply to request {i} ({}) is incomplete: {:?}",
                            req.command_name(),
                            buf.escape_ascii().to_string()
                        ));
                    }
                }
                Err(e) => {
                    return Err(format!(
                        "reply to request {i} ({}) does not decode: {e} (at {:?})",
                        req.command_name(),
                        String::from_utf8_lossy(&buf[..buf.len().min(60)])
                    ))
                }
            }
        }
    }
    while feed(&mut buf, &mut all) {}
    out.leftover = buf.to_vec();
    Ok(out)
}

/// Replay that must consume every byte.
pub fn replay_all(requests: &[Request], response: &[u8]) -> Vec<Reply> {
    let r = replay(requests, response).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        r.leftover.is_empty(),
        "bytes left after the last reply: {:?}",
        r.leftover.escape_ascii().to_string()
    );
    r.replies
}

/// Whether `encoded` and `raw` are the same reply, up to the order of meta return flags
/// (memcached writes them in request order; our encoder writes them in canonical order).
pub fn same_reply(encoded: &[u8], raw: &[u8]) -> bool {
    if encoded == raw {
        return true;
    }
    let split = |b: &[u8]| -> Option<(Vec<Vec<u8>>, Vec<u8>)> {
        let nl = b.windows(2).position(|w| w == b"\r\n")?;
        let mut tokens: Vec<Vec<u8>> = b[..nl].split(|&c| c == b' ').map(<[u8]>::to_vec).collect();
        if tokens.len() < 2 {
            return None;
        }
        // Keep the status (and a VA size) in place; sort the flags. `b` follows its `k`.
        let fixed = if tokens[0] == b"VA" { 2 } else { 1 };
        let mut flags: Vec<Vec<u8>> = Vec::new();
        for t in tokens.drain(fixed..) {
            if t == b"b" {
                if let Some(last) = flags.iter_mut().rev().find(|f| f.first() == Some(&b'k')) {
                    last.extend_from_slice(b" b");
                    continue;
                }
            }
            flags.push(t);
        }
        flags.sort();
        tokens.extend(flags);
        Some((tokens, b[nl..].to_vec()))
    };
    match (split(encoded), split(raw)) {
        (Some(a), Some(b)) => {
            let meta = |t: &[Vec<u8>]| {
                matches!(
                    t[0].as_slice(),
                    b"VA" | b"HD" | b"EN" | b"NS" | b"EX" | b"NF"
                )
            };
            meta(&a.0) && a == b
        }
        _ => false,
    }
}

/// Decodes the first reply of `bytes` with a fresh decoder, expecting `expect`.
pub fn decode_one(expect: &Expect, bytes: &[u8]) -> Result<Option<Response>, DecodeError> {
    let mut buf = BytesMut::from(bytes);
    ResponseDecoder::new(Limits::default()).decode(expect, &mut buf)
}

// ---------------------------------------------------------------------------------------------
// Builders
// ---------------------------------------------------------------------------------------------

pub fn key(k: impl AsRef<[u8]>) -> Key {
    Key::new(k).expect("valid key")
}

pub fn retrieve(command: RetrieveCommand, keys: &[&str]) -> Request {
    Request::Retrieve(Retrieve {
        command,
        keys: keys.iter().map(key).collect(),
    })
}

pub fn get(keys: &[&str]) -> Request {
    retrieve(RetrieveCommand::Get, keys)
}

pub fn store(
    command: StoreCommand,
    k: &str,
    flags: u32,
    exptime: i32,
    value: &[u8],
    noreply: bool,
) -> Request {
    Request::Store(Store {
        command,
        key: key(k),
        flags,
        exptime,
        value: Bytes::copy_from_slice(value),
        noreply,
    })
}

pub fn set(k: &str, flags: u32, exptime: i32, value: &[u8]) -> Request {
    store(StoreCommand::Set, k, flags, exptime, value, false)
}

pub fn mg(k: Key, flags: MetaGetFlags) -> Request {
    Request::MetaGet(Box::new(MetaGet { key: k, flags }))
}

pub fn ms(k: Key, value: &[u8], flags: mcache_proto::MetaSetFlags) -> Request {
    Request::MetaSet(Box::new(MetaSet {
        key: k,
        value: Bytes::copy_from_slice(value),
        flags,
    }))
}

pub fn md(k: Key, flags: mcache_proto::MetaDeleteFlags) -> Request {
    Request::MetaDelete(Box::new(MetaDelete { key: k, flags }))
}

pub fn ma(k: Key, flags: mcache_proto::MetaArithmeticFlags) -> Request {
    Request::MetaArithmetic(Box::new(MetaArithmetic { key: k, flags }))
}

pub fn value(k: &str, flags: u32, cas: Option<u64>, data: &[u8]) -> Value {
    Value {
        key: key(k),
        flags,
        cas,
        data: Bytes::copy_from_slice(data),
    }
}

pub fn values(v: Vec<Value>) -> Response {
    Response::Values(v)
}

pub fn meta(status: MetaStatus, flags: MetaReturnFlags, data: Option<&[u8]>) -> Response {
    Response::Meta(Box::new(MetaResponse {
        status,
        flags,
        value: data.map(Bytes::copy_from_slice),
    }))
}

pub fn meta_status(status: MetaStatus) -> Response {
    Response::Meta(Box::new(MetaResponse::status(status)))
}

pub fn error(kind: ErrorKind, message: &str) -> Response {
    Response::Error {
        kind,
        message: Bytes::copy_from_slice(message.as_bytes()),
    }
}

pub fn opaque(o: &str) -> mcache_proto::Opaque {
    mcache_proto::Opaque::new(o.as_bytes()).expect("valid opaque")
}

/// Encodes a request with default limits.
pub fn encode(r: &Request) -> Vec<u8> {
    r.to_bytes(&Limits::default())
        .unwrap_or_else(|e| panic!("cannot encode {r:?}: {e}"))
}

/// Decodes every request of `bytes`, which must hold whole requests only.
pub fn decode_all_requests(bytes: &[u8]) -> Vec<Request> {
    let d = decode_requests(&[bytes.to_vec()], &Limits::server());
    if let Some((e, at)) = d.error {
        panic!("request at offset {at} does not decode: {e}");
    }
    assert_eq!(d.leftover, 0, "incomplete request at the end");
    d.requests.into_iter().map(|(r, _)| r).collect()
}

pub fn gets(keys: &[&str]) -> Request {
    retrieve(RetrieveCommand::Gets, keys)
}

pub fn gat(t: i32, keys: &[&str]) -> Request {
    retrieve(RetrieveCommand::Gat(t), keys)
}

pub fn gats(t: i32, keys: &[&str]) -> Request {
    retrieve(RetrieveCommand::Gats(t), keys)
}

pub fn delete(k: &str, noreply: bool) -> Request {
    Request::Delete {
        key: key(k),
        noreply,
    }
}

pub fn incr(k: &str, delta: u64, noreply: bool) -> Request {
    Request::Incr {
        key: key(k),
        delta,
        noreply,
    }
}

pub fn decr(k: &str, delta: u64, noreply: bool) -> Request {
    Request::Decr {
        key: key(k),
        delta,
        noreply,
    }
}

pub fn touch(k: &str, exptime: i32, noreply: bool) -> Request {
    Request::Touch {
        key: key(k),
        exptime,
        noreply,
    }
}

pub fn stats(args: Option<&'static str>) -> Request {
    Request::Stats {
        args: args.map(|a| Bytes::from_static(a.as_bytes())),
    }
}

pub fn number(n: u64) -> Response {
    Response::Number(n)
}

/// Return flags with nothing set.
pub fn rf() -> MetaReturnFlags {
    MetaReturnFlags::default()
}

pub fn hd(flags: MetaReturnFlags) -> Response {
    meta(MetaStatus::Hd, flags, None)
}

pub fn va(data: &[u8], flags: MetaReturnFlags) -> Response {
    meta(MetaStatus::Va, flags, Some(data))
}

pub fn stat_lines(pairs: &[(&str, &str)]) -> Response {
    Response::Stats(
        pairs
            .iter()
            .map(|(n, v)| mcache_proto::Stat {
                name: Bytes::copy_from_slice(n.as_bytes()),
                value: Bytes::copy_from_slice(v.as_bytes()),
            })
            .collect(),
    )
}

/// Whether the Connection can replay an exchange recorded without its opaques: no request
/// carries an opaque of its own, and none is silent.
pub fn connection_can_replay(requests: &[Request]) -> bool {
    !requests.iter().any(|r| {
        r.is_silent()
            || matches!(r, Request::MetaGet(m) if m.flags.opaque.is_some())
            || matches!(r, Request::MetaSet(m) if m.flags.opaque.is_some())
            || matches!(r, Request::MetaDelete(m) if m.flags.opaque.is_some())
            || matches!(r, Request::MetaArithmetic(m) if m.flags.opaque.is_some())
    })
}

/// Sends `requests` on a fresh [`Connection`], feeds it `response` one byte at a time, and
/// returns what it answered for each request.
pub fn through_connection(
    requests: &[Request],
    response: &[u8],
) -> (
    Vec<Result<Response, mcache_proto::Error>>,
    mcache_proto::Connection,
) {
    let now = std::time::Instant::now();
    let mut conn = mcache_proto::Connection::default();
    let ids: Vec<_> = requests
        .iter()
        .map(|r| conn.send(r.clone()).expect("send"))
        .collect();
    let n = conn.transmit().len();
    conn.advance_transmit(n, now);
    for b in response {
        conn.receive(std::slice::from_ref(b), now);
    }
    let mut out = Vec::new();
    for id in ids {
        let (got, r) = conn.poll_response().expect("a reply for every request");
        assert_eq!(got, id, "replies in request order");
        out.push(r);
    }
    (out, conn)
}

// ---------------------------------------------------------------------------------------------
// Example tables
// ---------------------------------------------------------------------------------------------

/// One exchange of an example table (see `spec_examples.rs` for what is checked).
pub struct Example {
    pub name: &'static str,
    pub request: &'static [u8],
    pub response: &'static [u8],
    /// Our encoding of the typed requests is byte for byte the request.
    pub canonical: bool,
    /// Each typed request and the reply it gets (`None`: nothing comes back).
    pub exchange: Vec<(Request, Option<Response>)>,
}

pub fn ex(
    name: &'static str,
    request: &'static [u8],
    response: &'static [u8],
    canonical: bool,
    exchange: Vec<(Request, Option<Response>)>,
) -> Example {
    Example {
        name,
        request,
        response,
        canonical,
        exchange,
    }
}

/// Checks one example (see the docs of `spec_examples.rs`).
pub fn check_example(e: &Example) {
    let typed: Vec<Request> = e.exchange.iter().map(|(r, _)| r.clone()).collect();
    // Server side: the bytes are these requests.
    assert_eq!(
        decode_all_requests(e.request),
        typed,
        "request bytes decode"
    );
    // Client side: our bytes for them.
    let ours: Vec<u8> = typed.iter().flat_map(encode).collect();
    if e.canonical {
        assert_eq!(
            ours.escape_ascii().to_string(),
            e.request.escape_ascii().to_string(),
            "canonical encoding"
        );
    } else {
        assert_ne!(
            ours, e.request,
            "marked non-canonical, yet encodes the same"
        );
        assert_eq!(
            decode_all_requests(&ours),
            typed,
            "our encoding decodes back"
        );
    }
    // The replies, in one piece and byte by byte.
    let want: Vec<(usize, Response)> = e
        .exchange
        .iter()
        .enumerate()
        .filter_map(|(i, (_, r))| r.clone().map(|r| (i, r)))
        .collect();
    let replies = replay_all(&typed, e.response);
    let got: Vec<(usize, Response)> = replies
        .iter()
        .map(|r| (r.request, r.response.clone()))
        .collect();
    assert_eq!(got, want, "decoded replies");
    let bytes: Vec<&[u8]> = e.response.chunks(1).collect();
    let split = replay_split(&typed, &bytes).unwrap_or_else(|err| panic!("byte by byte: {err}"));
    assert!(split.leftover.is_empty());
    assert_eq!(
        split
            .replies
            .iter()
            .map(|r| (r.request, r.response.clone()))
            .collect::<Vec<_>>(),
        want,
        "byte by byte"
    );
    // Server side: the replies encode back to the recorded bytes.
    for r in &replies {
        let enc = r.response.to_bytes();
        assert!(
            same_reply(&enc, &r.raw),
            "{:?} encodes as {:?}, memcached sent {:?}",
            r.response,
            enc.escape_ascii().to_string(),
            r.raw.escape_ascii().to_string()
        );
    }
    // The connection state machine agrees.
    if connection_can_replay(&typed) {
        let (got, conn) = through_connection(&typed, e.response);
        for ((_, want), got) in e.exchange.iter().zip(got) {
            let want = want.clone().expect("not silent");
            match (&want, got) {
                (Response::Error { kind, message }, Err(err)) => {
                    let expected = match kind {
                        ErrorKind::Error => Error::Protocol(message.clone()),
                        ErrorKind::Client => Error::Client(message.clone()),
                        ErrorKind::Server => Error::Server(message.clone()),
                        other => panic!("an error line of an unknown kind: {other:?}"),
                    };
                    assert_eq!(err, expected);
                }
                (want, got) => assert_eq!(got.as_ref(), Ok(want)),
            }
        }
        assert!(conn.poisoned().is_none(), "{:?}", conn.poisoned());
    }
}

/// Checks every example, and fails with the list of those that failed.
pub fn run(examples: Vec<Example>) {
    let mut failures = Vec::new();
    let (mut canonical, n) = (
        examples.iter().filter(|e| e.canonical).count(),
        examples.len(),
    );
    for e in &examples {
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| check_example(e))) {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            failures.push(format!("{}: {msg}", e.name));
            canonical = canonical.saturating_sub(usize::from(e.canonical));
        }
    }
    eprintln!("{n} examples, {canonical} with canonical request bytes");
    assert!(
        failures.is_empty(),
        "{} failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
