//! [`Response`]: every reply memcached sends, decoded incrementally against the request it
//! answers ([`ResponseDecoder`]), and encoded (server side).
//!
//! The protocol has no request ids, so the grammar of a reply depends on the request: a
//! decoder is told what it expects ([`Expect`]) and checks that the reply fits it (the keys of
//! `VALUE` lines, the opaque and key of meta replies). Values are split off the read buffer as
//! `Bytes`, without copying.

use crate::error::{DecodeError, Snippet};
use crate::key::Key;
use crate::meta::flags::{MetaReturnFlags, Opaque};
use crate::request::{take_block, Request};
use crate::wire::{
    find_line, parse_len, parse_u32, parse_u64, put_u64, short_number, Limits, Tokens,
};
use bytes::{Buf, BufMut, Bytes, BytesMut};

/// One item of a retrieval reply (`VALUE <key> <flags> <bytes> [<cas>]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    /// The key.
    pub key: Key,
    /// The client flags stored with the item.
    pub flags: u32,
    /// The cas unique (`gets`, `gats`).
    pub cas: Option<u64>,
    /// The value.
    pub data: Bytes,
}

/// One `STAT <name> <value>` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// The statistic's name.
    pub name: Bytes,
    /// Its value: the rest of the line.
    pub value: Bytes,
}

/// The status code of a meta reply.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaStatus {
    /// `VA`: a value follows.
    Va,
    /// `HD`: success, no value.
    Hd,
    /// `EN`: miss.
    En,
    /// `NS`: not stored.
    Ns,
    /// `EX`: the cas did not match.
    Ex,
    /// `NF`: not found.
    Nf,
}

impl MetaStatus {
    fn code(self) -> &'static [u8] {
        match self {
            MetaStatus::Va => b"VA",
            MetaStatus::Hd => b"HD",
            MetaStatus::En => b"EN",
            MetaStatus::Ns => b"NS",
            MetaStatus::Ex => b"EX",
            MetaStatus::Nf => b"NF",
        }
    }
}

/// A reply to `mg`, `ms`, `md` or `ma`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaResponse {
    /// The status code.
    pub status: MetaStatus,
    /// The returned flags.
    pub flags: MetaReturnFlags,
    /// The value (with `VA`).
    pub value: Option<Bytes>,
}

impl MetaResponse {
    /// A reply with a status and nothing else.
    pub fn status(status: MetaStatus) -> Self {
        MetaResponse {
            status,
            flags: MetaReturnFlags::default(),
            value: None,
        }
    }
}

/// Which error line.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// `ERROR`: unknown command.
    Error,
    /// `CLIENT_ERROR <message>`.
    Client,
    /// `SERVER_ERROR <message>`.
    Server,
}

/// A whole reply to one request.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// Values of a retrieval, then `END` (misses are absent).
    Values(Vec<Value>),
    /// `STORED`.
    Stored,
    /// `NOT_STORED`.
    NotStored,
    /// `EXISTS`.
    Exists,
    /// `NOT_FOUND`.
    NotFound,
    /// `DELETED`.
    Deleted,
    /// `TOUCHED`.
    Touched,
    /// `OK`.
    Ok,
    /// The new value after `incr`/`decr`.
    Number(u64),
    /// `VERSION <version>`.
    Version(Bytes),
    /// `STAT` lines, then `END`.
    Stats(Vec<Stat>),
    /// Other lines of a `stats` reply, then `END` (`stats cachedump`, `stats detail dump`).
    Lines(Vec<Bytes>),
    /// `RESET` (`stats reset`).
    Reset,
    /// A meta reply. Boxed: a [`MetaResponse`] is about 190 bytes and every other reply at
    /// most 64, and a reply (as `Result<Response, Error>`) is moved a dozen times between the
    /// socket and its caller; unboxed, each move of any reply copied the meta reply's size.
    Meta(Box<MetaResponse>),
    /// `MN`.
    MetaNoop,
    /// `ME <key> <k=v>*`: free-form debug facts.
    MetaDebug {
        /// The key, as printed.
        key: Bytes,
        /// The rest of the line.
        info: Bytes,
    },
    /// An error line.
    Error {
        /// Which one.
        kind: ErrorKind,
        /// The message (may be empty; for `ERROR` it holds any text after it).
        message: Bytes,
    },
    /// Nothing came back, as asked (`noreply`, quiet mode, `quit`): the outcome is unknown
    /// for text commands. Never decoded; produced by [`Connection`](crate::Connection).
    NoReply,
}

/// What [`ResponseDecoder::get_as_meta`] made of the front of the input.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum GetAsMeta {
    /// More bytes are needed.
    Incomplete,
    /// `VA`: the value's client flags, its cas (for a `gets`) and its data.
    Hit {
        flags: u32,
        cas: Option<u64>,
        data: Bytes,
    },
    /// `EN`: a miss.
    Miss,
    /// Another reply: decode it the general way.
    Other,
}

/// `VA <len> f<flags> [c<cas>] O<opaque>` with single spaces, numbers of at most 19 digits
/// (flags within a `u32`), the cas exactly when `with_cas`, and `opaque`: the value's length,
/// flags and cas. Split as [`ResponseDecoder::next_value_line`] splits a `VALUE` line.
fn va_line(line: &[u8], opaque: &Opaque, with_cas: bool) -> Option<(usize, u32, Option<u64>)> {
    let mut fields = line.strip_prefix(b"VA ")?.split(|&b| b == b' ');
    let len = usize::try_from(short_number(fields.next()?)?).ok()?;
    let flags = u32::try_from(short_number(fields.next()?.strip_prefix(b"f")?)?).ok()?;
    let cas = match with_cas {
        true => Some(short_number(fields.next()?.strip_prefix(b"c")?)?),
        false => None,
    };
    if fields.next()?.strip_prefix(b"O")? != opaque.as_bytes() || fields.next().is_some() {
        return None;
    }
    Some((len, flags, cas))
}

/// A reply as the decoder hands it to a [`Connection`](crate::Connection), a meta reply not
/// yet boxed: the reply of a single-key `get` sent as `mg` is handed out as `Values`, and needs
/// no box.
#[derive(Debug)]
pub(crate) enum Decoded {
    /// Any reply but a meta one.
    Reply(Response),
    /// A meta reply.
    Meta(MetaResponse),
}

impl Decoded {
    /// The reply, a meta one boxed.
    pub(crate) fn into_response(self) -> Response {
        match self {
            Decoded::Reply(r) => r,
            Decoded::Meta(m) => Response::Meta(Box::new(m)),
        }
    }
}

/// What reply a request expects: the decoder's context.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// `VALUE` lines for these keys (in order, some absent), then `END`.
    Values {
        /// The keys asked for.
        keys: Vec<Key>,
        /// Whether `VALUE` lines carry a cas.
        cas: bool,
    },
    /// `STORED`, `NOT_STORED`, `EXISTS`, `NOT_FOUND`.
    Storage,
    /// `DELETED`, `NOT_FOUND`.
    Delete,
    /// A number, `NOT_FOUND`.
    Arithmetic,
    /// `TOUCHED`, `NOT_FOUND`.
    Touch,
    /// `OK`.
    Ok,
    /// `VERSION <x>`.
    Version,
    /// A `stats` reply.
    Stats,
    /// A meta reply for this key and opaque.
    Meta {
        /// The command (`mg`, `ms`, `md`, `ma`).
        command: &'static str,
        /// The key, to check a returned `k` flag against.
        key: Key,
        /// The opaque sent, which the reply must echo.
        opaque: Option<Opaque>,
        /// Whether a `VA` reply is possible (`mg`, `ma`).
        value: bool,
    },
    /// `MN`.
    MetaNoop,
    /// `ME ...` or `EN`.
    MetaDebug,
}

impl Expect {
    /// Like [`Expect::of`], moving the keys out of the request instead of cloning them.
    pub fn take(request: Request) -> Option<Expect> {
        match request {
            Request::Retrieve(r) => Some(Expect::Values {
                cas: r.command.with_cas(),
                keys: r.keys,
            }),
            mut other => {
                // A key made from a `Vec` would allocate to be cloned (`Bytes` promotes it).
                let key = match &mut other {
                    Request::MetaGet(m) => Some(&mut m.key),
                    Request::MetaSet(m) => Some(&mut m.key),
                    Request::MetaDelete(m) => Some(&mut m.key),
                    Request::MetaArithmetic(m) => Some(&mut m.key),
                    _ => None,
                };
                match key.map(|k| std::mem::replace(k, Key::placeholder())) {
                    Some(key) => Expect::meta(&other, key),
                    None => Expect::of(&other),
                }
            }
        }
    }

    /// What `request` expects back, or `None` if it expects nothing (`noreply`, `quit`).
    /// Quiet meta requests have an expectation: they answer on a miss or an error.
    pub fn of(request: &Request) -> Option<Expect> {
        Some(match request {
            Request::Retrieve(r) => Expect::Values {
                keys: r.keys.clone(),
                cas: r.command.with_cas(),
            },
            Request::Quit => return None,
            Request::MetaGet(m) => return Expect::meta(request, m.key.clone()),
            Request::MetaSet(m) => return Expect::meta(request, m.key.clone()),
            Request::MetaDelete(m) => return Expect::meta(request, m.key.clone()),
            Request::MetaArithmetic(m) => return Expect::meta(request, m.key.clone()),
            r if r.is_silent() => return None,
            Request::Store(_) => Expect::Storage,
            Request::Delete { .. } => Expect::Delete,
            Request::Incr { .. } | Request::Decr { .. } => Expect::Arithmetic,
            Request::Touch { .. } => Expect::Touch,
            Request::FlushAll { .. } | Request::Verbosity { .. } => Expect::Ok,
            Request::Version => Expect::Version,
            Request::Stats { .. } => Expect::Stats,
            Request::MetaNoop => Expect::MetaNoop,
            Request::MetaDebug { .. } => Expect::MetaDebug,
        })
    }

    /// A meta request's expectation, naming `key` (the request's own, moved or cloned by the
    /// caller); `None` for any other request. Quiet ones have one too: they answer on a miss
    /// or an error.
    fn meta(request: &Request, key: Key) -> Option<Expect> {
        let (opaque, value) = match request {
            Request::MetaGet(m) => (m.flags.opaque, true),
            Request::MetaSet(m) => (m.flags.opaque, false),
            Request::MetaDelete(m) => (m.flags.opaque, false),
            Request::MetaArithmetic(m) => (m.flags.opaque, true),
            _ => return None,
        };
        Some(Expect::Meta {
            command: request.command_name(),
            key,
            opaque,
            value,
        })
    }
}

/// Classification of the next line, used to attribute replies after quiet requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Peek {
    /// `ERROR`, `CLIENT_ERROR`, `SERVER_ERROR`.
    Error,
    /// A meta reply line carrying this opaque.
    Meta(Option<Opaque>),
    /// Anything else.
    Other,
}

/// Decodes replies one at a time, keeping the part of a multi-line reply already read.
#[derive(Debug, Default)]
pub struct ResponseDecoder {
    limits: Limits,
    values: Vec<Value>,
    next_key: usize,
    stats: Vec<Stat>,
    lines: Vec<Bytes>,
    /// Bytes of values and lines in the part of the reply decoded so far
    /// ([`Limits::max_reply_len`]).
    reply_len: usize,
    skip_empty_line: bool,
    /// While a data block is incomplete: how many bytes the buffer must hold to complete it
    /// (its header, the declared length and `\r\n`); 0 otherwise.
    block_end: usize,
    /// For each value decoded so far, the index of its key among the keys asked for.
    value_keys: Vec<usize>,
}

fn error_line(line: &[u8]) -> Option<(ErrorKind, &[u8])> {
    let (kind, rest) = if let Some(r) = line.strip_prefix(b"CLIENT_ERROR") {
        (ErrorKind::Client, r)
    } else if let Some(r) = line.strip_prefix(b"SERVER_ERROR") {
        (ErrorKind::Server, r)
    } else if let Some(r) = line.strip_prefix(b"ERROR") {
        (ErrorKind::Error, r)
    } else {
        return None;
    };
    match rest.first() {
        None => Some((kind, rest)),
        Some(b' ') => Some((kind, &rest[1..])),
        // `ERROR: shutdown not enabled`, `SERVER_ERROR: ...`
        Some(b':') => Some((kind, rest)),
        Some(_) => None,
    }
}

fn meta_status(code: &[u8]) -> Option<MetaStatus> {
    Some(match code {
        b"VA" => MetaStatus::Va,
        b"HD" => MetaStatus::Hd,
        b"EN" => MetaStatus::En,
        b"NS" => MetaStatus::Ns,
        b"EX" => MetaStatus::Ex,
        b"NF" => MetaStatus::Nf,
        _ => return None,
    })
}

fn unexpected(expected: &'static str, line: &[u8]) -> DecodeError {
    DecodeError::Unexpected {
        expected,
        line: Snippet::new(line),
    }
}

impl ResponseDecoder {
    /// A decoder with these limits.
    pub fn new(limits: Limits) -> Self {
        ResponseDecoder {
            limits,
            ..Default::default()
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Drops any partly decoded reply (after an error).
    pub fn reset(&mut self) {
        self.reset_partial();
        self.skip_empty_line = false;
    }

    /// Skips the stray empty line memcached 1.6.40+ sends after a retrieval's
    /// `CLIENT_ERROR`. Returns false if more bytes are needed to tell.
    pub(crate) fn skip_stray(&mut self, buf: &mut BytesMut) -> bool {
        if self.skip_empty_line {
            if buf.len() < 2 {
                if buf.first().is_none_or(|&b| b == b'\r') {
                    return false;
                }
            } else if buf.starts_with(b"\r\n") {
                buf.advance(2);
            }
            self.skip_empty_line = false;
        }
        true
    }

    /// Looks at the next line without consuming it.
    pub(crate) fn peek(&mut self, buf: &mut BytesMut) -> Result<Option<Peek>, DecodeError> {
        if !self.skip_stray(buf) {
            return Ok(None);
        }
        let Some(n) = find_line(buf, self.limits.max_line_len)? else {
            return Ok(None);
        };
        let line = &buf[..n];
        if error_line(line).is_some() {
            return Ok(Some(Peek::Error));
        }
        let mut tokens = Tokens::new(line);
        if tokens.next().and_then(meta_status).is_some() {
            let opaque = tokens
                .find_map(|t| t.strip_prefix(b"O"))
                .and_then(|o| Opaque::new(o).ok());
            return Ok(Some(Peek::Meta(opaque)));
        }
        Ok(Some(Peek::Other))
    }

    /// Decodes the reply to a request that expects `expect`. Returns `Ok(None)` until the
    /// whole reply is there, whatever the split of the bytes; consumed bytes are removed from
    /// `buf` (parts of a long reply are kept inside the decoder meanwhile).
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use mcache_proto::{Expect, Key, Response, ResponseDecoder};
    /// let mut dec = ResponseDecoder::default();
    /// let expect = Expect::Values { keys: vec![Key::new("foo")?], cas: false };
    /// let mut buf = BytesMut::from(&b"VALUE foo 5 3\r\nbar\r\nEN"[..]);
    /// assert_eq!(dec.decode(&expect, &mut buf)?, None);
    /// buf.extend_from_slice(b"D\r\n");
    /// let Some(Response::Values(v)) = dec.decode(&expect, &mut buf)? else { panic!() };
    /// assert_eq!(&v[0].data[..], b"bar");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn decode(
        &mut self,
        expect: &Expect,
        buf: &mut BytesMut,
    ) -> Result<Option<Response>, DecodeError> {
        let r = self.decode_inner(expect, buf);
        let r = match expect {
            Expect::Values { keys, .. } => self.finish(r, |i| keys[i].clone()),
            _ => self.finish(r, |_| Key::placeholder()),
        };
        Ok(r?.map(Decoded::into_response))
    }

    /// [`decode`](Self::decode) for a caller that owns the expectation and is done with it
    /// once the reply is complete (a connection): the values take their keys from it instead
    /// of counting another reference to each.
    pub(crate) fn decode_owned(
        &mut self,
        expect: &mut Expect,
        buf: &mut BytesMut,
    ) -> Result<Option<Decoded>, DecodeError> {
        let r = self.decode_inner(expect, buf);
        match expect {
            Expect::Values { keys, .. } => {
                self.finish(r, |i| std::mem::replace(&mut keys[i], Key::placeholder()))
            }
            _ => self.finish(r, |_| Key::placeholder()),
        }
    }

    /// Gives a complete `Values` reply its keys (`key_at`: the key asked for at an index),
    /// or resets after an error.
    fn finish(
        &mut self,
        mut r: Result<Option<Decoded>, DecodeError>,
        mut key_at: impl FnMut(usize) -> Key,
    ) -> Result<Option<Decoded>, DecodeError> {
        match &mut r {
            Ok(Some(Decoded::Reply(Response::Values(values)))) => {
                for (value, &i) in values.iter_mut().zip(&self.value_keys) {
                    value.key = key_at(i);
                }
                self.value_keys.clear();
            }
            Err(_) => self.reset(),
            _ => {}
        }
        r
    }

    fn decode_inner(
        &mut self,
        expect: &Expect,
        buf: &mut BytesMut,
    ) -> Result<Option<Decoded>, DecodeError> {
        loop {
            if !self.skip_stray(buf) {
                return Ok(None);
            }
            let Some(n) = find_line(buf, self.limits.max_line_len)? else {
                return Ok(None);
            };
            let line = &buf[..n];
            let head = n + 2;
            if let Some((kind, message)) = error_line(line) {
                let message = Bytes::copy_from_slice(message);
                buf.advance(head);
                if kind == ErrorKind::Client && matches!(expect, Expect::Values { .. }) {
                    self.skip_empty_line = true;
                }
                self.reset_partial();
                return Ok(Some(Decoded::Reply(Response::Error { kind, message })));
            }
            let simple = |r: Response, buf: &mut BytesMut| {
                buf.advance(head);
                Ok(Some(Decoded::Reply(r)))
            };
            match expect {
                Expect::Values { keys, cas } => {
                    if line == b"END" {
                        buf.advance(head);
                        self.next_key = 0;
                        self.reply_len = 0;
                        return Ok(Some(Decoded::Reply(Response::Values(std::mem::take(
                            &mut self.values,
                        )))));
                    }
                    let value_head = self.value_line(line, keys, *cas)?;
                    // Checked at the header, before the data is buffered.
                    let size = keys[value_head.2].wire().len().saturating_add(value_head.1);
                    self.check_reply_len(size)?;
                    let Some(data) = self.take_block(buf, head, value_head.1)? else {
                        return Ok(None);
                    };
                    // Only now is the VALUE line consumed: an incomplete block re-reads it.
                    self.reply_len += size;
                    self.next_key = value_head.2 + 1;
                    // One allocation for the reply's values: room for every key not yet
                    // answered (bounded by the request), instead of growing by doubling.
                    if self.values.capacity() == 0 {
                        self.values.reserve_exact(keys.len() - value_head.2);
                    }
                    // The key is filled in when the reply is complete (see `fill_keys`).
                    self.values.push(Value {
                        key: value_head.0.key,
                        flags: value_head.0.flags,
                        cas: value_head.0.cas,
                        data,
                    });
                    self.value_keys.push(value_head.2);
                }
                Expect::Storage => {
                    let r = match line {
                        b"STORED" => Response::Stored,
                        b"NOT_STORED" => Response::NotStored,
                        b"EXISTS" => Response::Exists,
                        b"NOT_FOUND" => Response::NotFound,
                        _ => return Err(unexpected("a storage reply", line)),
                    };
                    return simple(r, buf);
                }
                Expect::Delete => {
                    let r = match line {
                        b"DELETED" => Response::Deleted,
                        b"NOT_FOUND" => Response::NotFound,
                        _ => return Err(unexpected("DELETED or NOT_FOUND", line)),
                    };
                    return simple(r, buf);
                }
                Expect::Touch => {
                    let r = match line {
                        b"TOUCHED" => Response::Touched,
                        b"NOT_FOUND" => Response::NotFound,
                        _ => return Err(unexpected("TOUCHED or NOT_FOUND", line)),
                    };
                    return simple(r, buf);
                }
                Expect::Arithmetic => {
                    let r = match line {
                        b"NOT_FOUND" => Response::NotFound,
                        _ => Response::Number(parse_u64("incr/decr value", line)?),
                    };
                    return simple(r, buf);
                }
                Expect::Ok => {
                    if line != b"OK" {
                        return Err(unexpected("OK", line));
                    }
                    return simple(Response::Ok, buf);
                }
                Expect::Version => {
                    let v = line
                        .strip_prefix(b"VERSION ")
                        .ok_or_else(|| unexpected("VERSION <version>", line))?;
                    let v = Bytes::copy_from_slice(v);
                    return simple(Response::Version(v), buf);
                }
                Expect::Stats => {
                    if let Some(r) = self.stats_line(line)? {
                        buf.advance(head);
                        return Ok(Some(Decoded::Reply(r)));
                    }
                    buf.advance(head);
                }
                Expect::Meta {
                    command,
                    key,
                    opaque,
                    value,
                } => return self.meta(buf, n, key, *opaque, *value, command),
                Expect::MetaNoop => {
                    if line != b"MN" {
                        return Err(unexpected("MN", line));
                    }
                    return simple(Response::MetaNoop, buf);
                }
                Expect::MetaDebug => {
                    if line == b"EN" {
                        buf.advance(head);
                        return Ok(Some(Decoded::Meta(MetaResponse::status(MetaStatus::En))));
                    }
                    let rest = line
                        .strip_prefix(b"ME ")
                        .ok_or_else(|| unexpected("ME or EN", line))?;
                    let mut t = Tokens::new(rest);
                    let key = Bytes::copy_from_slice(t.next().unwrap_or_default());
                    let info = Bytes::copy_from_slice(t.remainder());
                    return simple(Response::MetaDebug { key, info }, buf);
                }
            }
        }
    }

    /// How many more bytes complete the data block being read, when one is incomplete: a
    /// reader can size its next read (and its buffer) from it.
    pub fn block_remaining(&self, buf: &BytesMut) -> Option<usize> {
        (self.block_end > buf.len()).then(|| self.block_end - buf.len())
    }

    /// [`take_block`], remembering where an incomplete block ends.
    fn take_block(
        &mut self,
        buf: &mut BytesMut,
        head: usize,
        len: usize,
    ) -> Result<Option<Bytes>, DecodeError> {
        let block = take_block(buf, head, len)?;
        self.block_end = match block {
            Some(_) => 0,
            None => head + len + 2,
        };
        Ok(block)
    }

    /// Drops the part of a multi-line reply read so far (keeps the stray-line state).
    fn reset_partial(&mut self) {
        self.block_end = 0;
        self.value_keys.clear();
        self.values.clear();
        self.next_key = 0;
        self.stats.clear();
        self.lines.clear();
        self.reply_len = 0;
    }

    /// Refuses an entry of `size` bytes that would take the reply past
    /// [`Limits::max_reply_len`].
    fn check_reply_len(&self, size: usize) -> Result<(), DecodeError> {
        if self.reply_len.saturating_add(size) > self.limits.max_reply_len {
            return Err(DecodeError::ReplyTooLarge {
                max: self.limits.max_reply_len,
            });
        }
        Ok(())
    }

    /// Parses a `VALUE` line and checks it against the keys asked for: the value (without
    /// its data), the data's length and the index of its key in `keys`.
    fn value_line(
        &self,
        line: &[u8],
        keys: &[Key],
        with_cas: bool,
    ) -> Result<(Value, usize, usize), DecodeError> {
        match self.next_value_line(line, keys, with_cas) {
            Some(head) => Ok(head),
            None => self.any_value_line(line, keys, with_cas),
        }
    }

    /// [`value_line`](Self::value_line) for any line: tokenized, the key looked for among
    /// those not answered yet.
    fn any_value_line(
        &self,
        line: &[u8],
        keys: &[Key],
        with_cas: bool,
    ) -> Result<(Value, usize, usize), DecodeError> {
        let mut t = Tokens::new(line);
        if t.next() != Some(b"VALUE") {
            return Err(unexpected("VALUE or END", line));
        }
        let (Some(key), Some(flags), Some(len)) = (t.next(), t.next(), t.next()) else {
            return Err(unexpected("VALUE <key> <flags> <bytes> [<cas>]", line));
        };
        let cas = match (t.next(), with_cas) {
            (Some(c), true) => Some(parse_u64("cas unique", c)?),
            (None, false) => None,
            _ => return Err(unexpected("a cas with gets/gats only", line)),
        };
        if t.next().is_some() {
            return Err(unexpected("VALUE <key> <flags> <bytes> [<cas>]", line));
        }
        // Hits come back in the order asked; misses are skipped.
        let offset = keys[self.next_key.min(keys.len())..]
            .iter()
            .position(|k| k.wire() == key)
            .ok_or(DecodeError::Mismatch {
                reason: "VALUE for a key not asked for (or out of order)",
            })?;
        let index = self.next_key + offset;
        let len = parse_len(len, self.limits.max_value_len)?;
        Ok((
            Value {
                key: Key::placeholder(),
                flags: parse_u32("flags", flags)?,
                cas,
                data: Bytes::new(),
            },
            len,
            index,
        ))
    }

    /// [`value_line`](Self::value_line) for the common line: the next key asked for, single
    /// spaces, every number short enough not to overflow. `None` for any other line, which the
    /// general path then parses (to the same result, or to its error): a miss before this hit,
    /// a number to check for overflow, extra spaces. A 100-key reply is mostly such lines, and
    /// this path neither tokenizes nor searches the keys.
    fn next_value_line(
        &self,
        line: &[u8],
        keys: &[Key],
        with_cas: bool,
    ) -> Option<(Value, usize, usize)> {
        let key = keys.get(self.next_key)?.wire();
        let rest = line
            .strip_prefix(b"VALUE ")?
            .strip_prefix(key.as_ref())?
            .strip_prefix(b" ")?;
        let mut fields = rest.split(|&b| b == b' ');
        let flags = u32::try_from(short_number(fields.next()?)?).ok()?;
        let len = usize::try_from(short_number(fields.next()?)?).ok()?;
        let cas = match (fields.next(), with_cas) {
            (Some(c), true) => Some(short_number(c)?),
            (None, false) => None,
            _ => return None,
        };
        if fields.next().is_some() || len > self.limits.max_value_len {
            return None;
        }
        let value = Value {
            key: Key::placeholder(),
            flags,
            cas,
            data: Bytes::new(),
        };
        Some((value, len, self.next_key))
    }

    /// One line of a stats reply: `Some` when the reply is complete.
    fn stats_line(&mut self, line: &[u8]) -> Result<Option<Response>, DecodeError> {
        let first = self.stats.is_empty() && self.lines.is_empty();
        if line == b"END" {
            self.reply_len = 0;
            return Ok(Some(if self.lines.is_empty() {
                Response::Stats(std::mem::take(&mut self.stats))
            } else {
                Response::Lines(std::mem::take(&mut self.lines))
            }));
        }
        if first && line == b"RESET" {
            return Ok(Some(Response::Reset));
        }
        if first && line == b"OK" {
            return Ok(Some(Response::Ok));
        }
        if self.stats.len() + self.lines.len() >= self.limits.max_entries {
            return Err(DecodeError::TooManyEntries {
                max: self.limits.max_entries,
            });
        }
        if let Some(rest) = line.strip_prefix(b"STAT ") {
            if !self.lines.is_empty() {
                return Err(unexpected("one kind of stats line", line));
            }
            let mut t = Tokens::new(rest);
            let name = t
                .next()
                .ok_or_else(|| unexpected("STAT <name> <value>", line))?;
            let value = t.remainder();
            let size = name.len() + value.len();
            self.check_reply_len(size)?;
            self.stats.push(Stat {
                name: Bytes::copy_from_slice(name),
                value: Bytes::copy_from_slice(value),
            });
            self.reply_len += size;
        } else {
            if !self.stats.is_empty() || line.is_empty() {
                return Err(unexpected("STAT <name> <value> or END", line));
            }
            self.check_reply_len(line.len())?;
            self.lines.push(Bytes::copy_from_slice(line));
            self.reply_len += line.len();
        }
        Ok(None)
    }

    /// The reply to a single-key `get` or `gets` sent as `mg <key> f v [c] O<opaque>`, when it
    /// is the line memcached writes for one (`VA <len> f<flags> [c<cas>] O<opaque>` and its
    /// block, or `EN O<opaque>`): decoded without tokenizing the flags or building a
    /// [`MetaResponse`]. Anything else is [`GetAsMeta::Other`], for the general decoder, which
    /// answers or errs on it as on any `mg` reply. What this decodes, the general decoder
    /// decodes to the same value (a property test holds the two together).
    pub(crate) fn get_as_meta(
        &mut self,
        opaque: &Opaque,
        with_cas: bool,
        buf: &mut BytesMut,
    ) -> Result<GetAsMeta, DecodeError> {
        if self.skip_empty_line {
            return Ok(GetAsMeta::Other);
        }
        let n = match find_line(buf, self.limits.max_line_len) {
            Ok(Some(n)) => n,
            Ok(None) => return Ok(GetAsMeta::Incomplete),
            Err(_) => return Ok(GetAsMeta::Other),
        };
        let line = &buf[..n];
        if line.strip_prefix(b"EN O") == Some(opaque.as_bytes()) {
            buf.advance(n + 2);
            return Ok(GetAsMeta::Miss);
        }
        let Some((len, flags, cas)) = va_line(line, opaque, with_cas) else {
            return Ok(GetAsMeta::Other);
        };
        if len > self.limits.max_value_len || self.check_reply_len(len).is_err() {
            return Ok(GetAsMeta::Other);
        }
        match self.take_block(buf, n + 2, len) {
            Ok(Some(data)) => Ok(GetAsMeta::Hit { flags, cas, data }),
            Ok(None) => Ok(GetAsMeta::Incomplete),
            Err(e) => {
                self.reset();
                Err(e)
            }
        }
    }

    fn meta(
        &mut self,
        buf: &mut BytesMut,
        n: usize,
        key: &Key,
        opaque: Option<Opaque>,
        value_allowed: bool,
        command: &'static str,
    ) -> Result<Option<Decoded>, DecodeError> {
        let line = &buf[..n];
        let mut t = Tokens::new(line);
        let status = t
            .next()
            .and_then(meta_status)
            .ok_or_else(|| unexpected("a meta reply (VA HD EN NS EX NF)", line))?;
        let len = if status == MetaStatus::Va {
            if !value_allowed {
                return Err(unexpected("no value in a reply to ms/md", line));
            }
            let len = t.next().ok_or_else(|| unexpected("VA <size>", line))?;
            let len = parse_len(len, self.limits.max_value_len)?;
            self.check_reply_len(len)?;
            Some(len)
        } else {
            None
        };
        if status == MetaStatus::En && command != "mg" {
            return Err(unexpected("EN only in reply to mg", line));
        }
        let flags = MetaReturnFlags::parse(t)?;
        if flags.opaque.is_some() && flags.opaque != opaque {
            return Err(DecodeError::Mismatch {
                reason: "meta reply opaque differs from the request's",
            });
        }
        if let Some(k) = &flags.key {
            if k.decoded() != key.decoded() {
                return Err(DecodeError::Mismatch {
                    reason: "meta reply key differs from the request's",
                });
            }
        }
        let value = match len {
            Some(len) => match self.take_block(buf, n + 2, len)? {
                Some(v) => Some(v),
                None => return Ok(None),
            },
            None => {
                buf.advance(n + 2);
                None
            }
        };
        Ok(Some(Decoded::Meta(MetaResponse {
            status,
            flags,
            value,
        })))
    }
}

impl Response {
    /// Encodes the reply (server side).
    ///
    /// ```
    /// use mcache_proto::Response;
    /// let mut buf = Vec::new();
    /// Response::Number(42).encode(&mut buf);
    /// assert_eq!(buf, b"42\r\n");
    /// ```
    pub fn encode(&self, buf: &mut impl BufMut) {
        match self {
            Response::Values(values) => {
                for v in values {
                    buf.put_slice(b"VALUE ");
                    buf.put_slice(v.key.wire());
                    buf.put_u8(b' ');
                    put_u64(buf, u64::from(v.flags));
                    buf.put_u8(b' ');
                    put_u64(buf, v.data.len() as u64);
                    if let Some(c) = v.cas {
                        buf.put_u8(b' ');
                        put_u64(buf, c);
                    }
                    buf.put_slice(b"\r\n");
                    buf.put_slice(&v.data);
                    buf.put_slice(b"\r\n");
                }
                buf.put_slice(b"END\r\n");
            }
            Response::Stored => buf.put_slice(b"STORED\r\n"),
            Response::NotStored => buf.put_slice(b"NOT_STORED\r\n"),
            Response::Exists => buf.put_slice(b"EXISTS\r\n"),
            Response::NotFound => buf.put_slice(b"NOT_FOUND\r\n"),
            Response::Deleted => buf.put_slice(b"DELETED\r\n"),
            Response::Touched => buf.put_slice(b"TOUCHED\r\n"),
            Response::Ok => buf.put_slice(b"OK\r\n"),
            Response::Number(n) => {
                put_u64(buf, *n);
                buf.put_slice(b"\r\n");
            }
            Response::Version(v) => {
                buf.put_slice(b"VERSION ");
                buf.put_slice(v);
                buf.put_slice(b"\r\n");
            }
            Response::Stats(stats) => {
                for s in stats {
                    buf.put_slice(b"STAT ");
                    buf.put_slice(&s.name);
                    buf.put_u8(b' ');
                    buf.put_slice(&s.value);
                    buf.put_slice(b"\r\n");
                }
                buf.put_slice(b"END\r\n");
            }
            Response::Lines(lines) => {
                for l in lines {
                    buf.put_slice(l);
                    buf.put_slice(b"\r\n");
                }
                buf.put_slice(b"END\r\n");
            }
            Response::Reset => buf.put_slice(b"RESET\r\n"),
            Response::Meta(m) => {
                buf.put_slice(m.status.code());
                if let (MetaStatus::Va, Some(v)) = (m.status, &m.value) {
                    buf.put_u8(b' ');
                    put_u64(buf, v.len() as u64);
                }
                m.flags.encode(buf);
                buf.put_slice(b"\r\n");
                if let (MetaStatus::Va, Some(v)) = (m.status, &m.value) {
                    buf.put_slice(v);
                    buf.put_slice(b"\r\n");
                }
            }
            Response::MetaNoop => buf.put_slice(b"MN\r\n"),
            Response::MetaDebug { key, info } => {
                buf.put_slice(b"ME ");
                buf.put_slice(key);
                if !info.is_empty() {
                    buf.put_u8(b' ');
                    buf.put_slice(info);
                }
                buf.put_slice(b"\r\n");
            }
            Response::Error { kind, message } => {
                buf.put_slice(match kind {
                    ErrorKind::Error => b"ERROR".as_slice(),
                    ErrorKind::Client => b"CLIENT_ERROR".as_slice(),
                    ErrorKind::Server => b"SERVER_ERROR".as_slice(),
                });
                if !message.is_empty() {
                    if !message.starts_with(b":") {
                        buf.put_u8(b' ');
                    }
                    buf.put_slice(message);
                }
                buf.put_slice(b"\r\n");
            }
            Response::NoReply => {}
        }
    }

    /// Encodes into a new `Vec`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode(&mut v);
        v
    }

    /// A short description, for errors and logs.
    pub fn describe(&self) -> String {
        match self {
            Response::Values(v) => format!("{} value(s)", v.len()),
            Response::Meta(m) => format!("meta {:?}", m.status),
            Response::Error { kind, message } => {
                format!("{kind:?} {}", message.escape_ascii())
            }
            other => format!("{other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::mem::size_of;

    /// A reply is moved a dozen times on its way to its caller: it stays small (a meta reply,
    /// about 190 bytes, is boxed), so that each move is a few register copies, not a call to
    /// `memcpy`.
    #[test]
    fn a_reply_stays_small() {
        assert!(size_of::<Response>() <= 72, "{}", size_of::<Response>());
        let result = size_of::<Result<Response, crate::Error>>();
        assert!(result <= 72, "{result}");
        assert!(size_of::<MetaResponse>() > 128, "the box is needed");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]
        /// The fast path for a `VALUE` line agrees with the general one wherever it answers,
        /// and answers exactly for the lines memcached writes (about one case in ten here).
        #[test]
        fn the_common_value_line_parses_as_any_other(
            next in 0usize..4,
            key_after_next in prop_oneof![3 => Just(0usize), 1 => 1usize..4],
            flags in prop_oneof![
                6 => (0u64..100).prop_map(|n| n.to_string()),
                1 => Just("0000000000000000000042".to_string()),
                1 => Just("4294967296".to_string()),
                1 => Just("x1".to_string()),
                1 => Just(String::new()),
            ],
            len in prop_oneof![
                6 => (0u64..1_500_000).prop_map(|n| n.to_string()),
                1 => Just("18446744073709551616".to_string()),
            ],
            cas in proptest::option::of(prop_oneof![
                any::<u64>().prop_map(|n| n.to_string()),
                Just("007".to_string()),
            ]),
            with_cas: bool,
            spaces in prop_oneof![4 => Just(1usize), 1 => Just(2usize)],
            tail in prop_oneof![4 => Just(""), 1 => Just(" "), 1 => Just(" x")],
        ) {
            let names = ["foo", "foobar", "fo", "bar"];
            let keys: Vec<Key> = names.iter().map(|k| Key::new(k).unwrap()).collect();
            let key = (next + key_after_next) % names.len();
            let gap = " ".repeat(spaces);
            let mut line = format!("VALUE{gap}{} {flags} {len}", names[key]);
            if let Some(cas) = &cas {
                line = format!("{line} {cas}");
            }
            line.push_str(tail);
            let dec = ResponseDecoder {
                next_key: next,
                ..Default::default()
            };
            let fast = dec.next_value_line(line.as_bytes(), &keys, with_cas);
            let any = dec.any_value_line(line.as_bytes(), &keys, with_cas);
            if let Some((v, len, index)) = &fast {
                let (w, any_len, any_index) = any.expect("the general path accepts it too");
                prop_assert_eq!(
                    (v.flags, v.cas, *len, *index),
                    (w.flags, w.cas, any_len, any_index)
                );
            }
            let common = spaces == 1
                && tail.is_empty()
                && key == next
                && flags.len() < 20
                && flags.parse::<u32>().is_ok()
                && len
                    .parse::<usize>()
                    .is_ok_and(|n| n <= Limits::default().max_value_len)
                && match &cas {
                    Some(c) => with_cas && c.len() < 20,
                    None => !with_cas,
                };
            prop_assert_eq!(fast.is_some(), common, "{}", line);
        }
    }

    #[test]
    fn a_value_line_as_memcached_writes_it_takes_the_fast_path() {
        let keys = vec![Key::new("foo").unwrap(), Key::new("bar").unwrap()];
        let mut dec = ResponseDecoder::default();
        let (v, len, index) = dec.next_value_line(b"VALUE foo 5 3", &keys, false).unwrap();
        assert_eq!((v.flags, v.cas, len, index), (5, None, 3, 0));
        dec.next_key = 1;
        let (v, len, index) = dec
            .next_value_line(b"VALUE bar 0 10 77", &keys, true)
            .unwrap();
        assert_eq!((v.flags, v.cas, len, index), (0, Some(77), 10, 1));
        // A miss before this hit is left to the general path.
        dec.next_key = 0;
        assert!(dec
            .next_value_line(b"VALUE bar 0 10", &keys, false)
            .is_none());
        assert_eq!(
            dec.value_line(b"VALUE bar 0 10", &keys, false).unwrap().2,
            1
        );
    }

    /// As a reply, a request is moved a dozen times on its way into a connection: at most
    /// 128 bytes, it is moved with register copies (the meta requests are boxed).
    #[test]
    fn a_request_stays_small() {
        assert!(size_of::<Request>() <= 128, "{}", size_of::<Request>());
        let meta = size_of::<crate::meta::request::MetaSet>();
        assert!(meta > 128, "the box is needed: {meta}");
    }

    /// A decoder whose values may be at most `max_value_len` bytes.
    fn decoder_for(max_value_len: usize) -> ResponseDecoder {
        ResponseDecoder::new(Limits {
            max_value_len,
            ..Limits::default()
        })
    }

    /// The general decoder's reply to a single-key get sent as `mg` (opaque `op`).
    fn general_mg(
        dec: &mut ResponseDecoder,
        op: Opaque,
        buf: &mut BytesMut,
    ) -> Result<Option<MetaResponse>, String> {
        let mut expect = Expect::Meta {
            command: "mg",
            key: Key::new("k").unwrap(),
            opaque: Some(op),
            value: true,
        };
        match dec.decode_owned(&mut expect, buf) {
            Ok(None) => Ok(None),
            Ok(Some(Decoded::Meta(m))) => Ok(Some(m)),
            Ok(Some(Decoded::Reply(r))) => Err(format!("not a meta reply: {r:?}")),
            Err(e) => Err(format!("{e:?}")),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]
        /// The fast path for a get sent as `mg` agrees with the general decoder wherever it
        /// answers (a hit, a miss, more bytes needed, an error), and answers for the replies
        /// memcached writes (about one case in five here).
        #[test]
        fn a_get_as_meta_reply_decodes_as_any_other(
            status in prop_oneof![6 => Just("VA"), 2 => Just("EN"), 1 => Just("HD"), 1 => Just("VA  ")],
            len in prop_oneof![
                6 => (0usize..300).prop_map(|n| n.to_string()),
                1 => Just("18446744073709551616".to_string()),
                1 => Just("0x1".to_string()),
                1 => Just(String::new()),
            ],
            flags in prop_oneof![
                6 => (0u64..100).prop_map(|n| format!(" f{n}")),
                1 => Just(" f4294967296".to_string()),
                1 => Just(" f00042".to_string()),
                1 => Just(" f".to_string()),
                1 => Just(String::new()),
            ],
            cas in proptest::option::of(prop_oneof![
                4 => any::<u64>().prop_map(|n| format!(" c{n}")),
                1 => Just(" c".to_string()),
                1 => Just(" c99999999999999999999".to_string()),
            ]),
            with_cas: bool,
            opaque in prop_oneof![6 => Just(" O17"), 1 => Just(" O18"), 1 => Just(" O"), 1 => Just("")],
            tail in prop_oneof![6 => Just(""), 1 => Just(" "), 1 => Just(" t5"), 1 => Just(" O17")],
            block in prop_oneof![6 => Just("ok"), 1 => Just("short"), 1 => Just("bad end")],
            max_value_len in prop_oneof![3 => Just(1usize << 20), 1 => 0usize..300],
            next in prop_oneof![Just(""), Just("EN O19\r\n")],
        ) {
            let op = Opaque::from_u32(17);
            let line = if status == "EN" {
                format!("EN{opaque}{tail}")
            } else {
                format!("{status} {len}{flags}{}{opaque}{tail}", cas.clone().unwrap_or_default())
            };
            let mut input = format!("{line}\r\n").into_bytes();
            if status != "EN" {
                let n: usize = len.parse().unwrap_or(3).min(300);
                input.extend(std::iter::repeat_n(b'x', n));
                match block {
                    "ok" => input.extend_from_slice(b"\r\n"),
                    "short" => input.truncate(input.len() - n / 2),
                    _ => input.extend_from_slice(b"\n\r"),
                }
            }
            input.extend_from_slice(next.as_bytes());
            let canonical = tail.is_empty()
                && opaque == " O17"
                && block == "ok"
                && if status == "EN" {
                    true
                } else {
                    let len_ok = len.parse::<usize>().is_ok_and(|n| n <= max_value_len);
                    let flags_ok = flags
                        .strip_prefix(" f")
                        .is_some_and(|f| f.parse::<u32>().is_ok_and(|n| n.to_string() == f));
                    let cas_ok = match &cas {
                        Some(c) => with_cas && c.strip_prefix(" c").is_some_and(|c| c.parse::<u64>().is_ok() && c.len() <= 19),
                        None => !with_cas,
                    };
                    status == "VA" && len_ok && flags_ok && cas_ok
                };

            let mut fast_buf = BytesMut::from(&input[..]);
            let mut fast_dec = decoder_for(max_value_len);
            let fast = fast_dec.get_as_meta(&op, with_cas, &mut fast_buf);
            let mut general_buf = BytesMut::from(&input[..]);
            let mut general_dec = decoder_for(max_value_len);
            let general = general_mg(&mut general_dec, op, &mut general_buf);
            if canonical {
                prop_assert!(
                    matches!(fast, Ok(GetAsMeta::Hit { .. } | GetAsMeta::Miss)),
                    "memcached's own reply {line:?} took {fast:?}"
                );
            }
            match fast {
                Ok(GetAsMeta::Other) => {}
                Ok(GetAsMeta::Incomplete) => {
                    prop_assert_eq!(general, Ok(None));
                    prop_assert_eq!(&fast_buf[..], &input[..]);
                }
                Ok(GetAsMeta::Miss) => {
                    let Ok(Some(m)) = general else {
                        return Err(TestCaseError::fail(format!("general: {general:?}")));
                    };
                    prop_assert_eq!(m.status, MetaStatus::En);
                    prop_assert_eq!(m.value, None);
                    prop_assert_eq!(&fast_buf[..], &general_buf[..]);
                }
                Ok(GetAsMeta::Hit { flags, cas, data }) => {
                    // A `get`'s value has no cas: the general path drops one memcached sent.
                    prop_assert!(with_cas || cas.is_none(), "a cas for a get: {cas:?}");
                    let expected = MetaResponse {
                        status: MetaStatus::Va,
                        flags: MetaReturnFlags {
                            client_flags: Some(flags),
                            cas,
                            opaque: Some(op),
                            ..MetaReturnFlags::default()
                        },
                        value: Some(data),
                    };
                    prop_assert_eq!(general, Ok(Some(expected)));
                    prop_assert_eq!(&fast_buf[..], &general_buf[..]);
                }
                Err(e) => prop_assert_eq!(general, Err(format!("{e:?}"))),
            }
        }
    }

    #[test]
    fn a_get_as_meta_reply_as_memcached_writes_it_takes_the_fast_path() {
        // memcached 1.6.18's replies to `mg k1 f v O12`, `mg nokey f v O13`, `mg k1 f v c O14`.
        let op = |n| Opaque::from_u32(n);
        let mut dec = ResponseDecoder::default();
        let mut buf =
            BytesMut::from(&b"VA 3 f5 O12\r\nabc\r\nEN O13\r\nVA 3 f5 c1 O14\r\nabc\r\n"[..]);
        assert_eq!(
            dec.get_as_meta(&op(12), false, &mut buf).unwrap(),
            GetAsMeta::Hit {
                flags: 5,
                cas: None,
                data: Bytes::from_static(b"abc")
            }
        );
        assert_eq!(
            dec.get_as_meta(&op(13), false, &mut buf).unwrap(),
            GetAsMeta::Miss
        );
        assert_eq!(
            dec.get_as_meta(&op(14), true, &mut buf).unwrap(),
            GetAsMeta::Hit {
                flags: 5,
                cas: Some(1),
                data: Bytes::from_static(b"abc")
            }
        );
        assert!(buf.is_empty());
        // Another client's opaque is not this request's reply: the general path judges it.
        let mut buf = BytesMut::from(&b"VA 3 f5 O99\r\nabc\r\n"[..]);
        assert_eq!(
            dec.get_as_meta(&op(12), false, &mut buf).unwrap(),
            GetAsMeta::Other
        );
        assert_eq!(buf.len(), 18);
    }
}
