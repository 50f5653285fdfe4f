//! [`Request`]: every command of the text and meta protocols as one type, encoded into a
//! caller's buffer (client side) or decoded from bytes (server side).
//!
//! Encoding validates everything first and writes nothing when it fails: no key, number or
//! token can break the command line or smuggle in a second command.

use crate::error::{DecodeError, EncodeError, Snippet};
use crate::key::Key;
use crate::meta::request::{
    parse_keyed, parse_set_head, MetaArithmetic, MetaDelete, MetaGet, MetaSet,
};
use crate::text::request::{
    check_stats_args, encode_keyed, key_token, parse_store_head, split_noreply, tokens_of,
    Retrieve, RetrieveCommand, Store,
};
use crate::wire::{find_line, parse_i32, parse_u32, parse_u64, put_i64, put_u64, Limits};
use bytes::{Buf, BufMut, Bytes, BytesMut};

/// A request to memcached.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `get`, `gets`, `gat`, `gats`.
    Retrieve(Retrieve),
    /// `set`, `add`, `replace`, `append`, `prepend`, `cas`.
    Store(Store),
    /// `delete <key> [noreply]`.
    Delete {
        /// The key.
        key: Key,
        /// Ask for no reply.
        noreply: bool,
    },
    /// `incr <key> <delta> [noreply]`.
    Incr {
        /// The key.
        key: Key,
        /// The amount (wraps at 2^64).
        delta: u64,
        /// Ask for no reply.
        noreply: bool,
    },
    /// `decr <key> <delta> [noreply]`.
    Decr {
        /// The key.
        key: Key,
        /// The amount (stops at 0).
        delta: u64,
        /// Ask for no reply.
        noreply: bool,
    },
    /// `touch <key> <exptime> [noreply]`.
    Touch {
        /// The key.
        key: Key,
        /// The new expiration.
        exptime: i32,
        /// Ask for no reply.
        noreply: bool,
    },
    /// `flush_all [delay] [noreply]`.
    FlushAll {
        /// Invalidate items after this many seconds (or at this unix time).
        delay: Option<i32>,
        /// Ask for no reply.
        noreply: bool,
    },
    /// `version`.
    Version,
    /// `verbosity <level> [noreply]`.
    Verbosity {
        /// The level.
        level: u32,
        /// Ask for no reply.
        noreply: bool,
    },
    /// `stats [<args>]`: `args` such as `settings`, `items`, `slabs`, `reset`, `detail dump`.
    Stats {
        /// The arguments (printable words separated by single spaces).
        args: Option<Bytes>,
    },
    /// `quit`: the server closes the connection.
    Quit,
    /// `mg`. The meta requests are boxed (120 to 168 bytes each, where every other request
    /// is at most 104): a request is moved a dozen times on its way into a connection, and a
    /// `Request` of at most 128 bytes is moved with a few register copies instead of a call to
    /// `memcpy`. `MetaGet { .. }.into()` makes one.
    MetaGet(Box<MetaGet>),
    /// `ms`.
    MetaSet(Box<MetaSet>),
    /// `md`.
    MetaDelete(Box<MetaDelete>),
    /// `ma`.
    MetaArithmetic(Box<MetaArithmetic>),
    /// `mn`: answers `MN`; ends a batch of quiet requests.
    MetaNoop,
    /// `me <key>`: debug facts about an item.
    MetaDebug {
        /// The key.
        key: Key,
    },
}

macro_rules! boxed_from {
    ($($t:ident),*) => {$(
        impl From<$t> for Request {
            fn from(m: $t) -> Request {
                Request::$t(Box::new(m))
            }
        }
    )*};
}
boxed_from!(MetaGet, MetaSet, MetaDelete, MetaArithmetic);

impl Request {
    /// The command's name on the wire.
    pub fn command_name(&self) -> &'static str {
        match self {
            Request::Retrieve(r) => r.command.name(),
            Request::Store(s) => s.command.name(),
            Request::Delete { .. } => "delete",
            Request::Incr { .. } => "incr",
            Request::Decr { .. } => "decr",
            Request::Touch { .. } => "touch",
            Request::FlushAll { .. } => "flush_all",
            Request::Version => "version",
            Request::Verbosity { .. } => "verbosity",
            Request::Stats { .. } => "stats",
            Request::Quit => "quit",
            Request::MetaGet(_) => "mg",
            Request::MetaSet(_) => "ms",
            Request::MetaDelete(_) => "md",
            Request::MetaArithmetic(_) => "ma",
            Request::MetaNoop => "mn",
            Request::MetaDebug { .. } => "me",
        }
    }

    /// Whether the server sends nothing back on success: text `noreply`, meta `q`, `quit`.
    pub fn is_silent(&self) -> bool {
        match self {
            Request::Store(s) => s.noreply,
            Request::Delete { noreply, .. }
            | Request::Incr { noreply, .. }
            | Request::Decr { noreply, .. }
            | Request::Touch { noreply, .. }
            | Request::FlushAll { noreply, .. }
            | Request::Verbosity { noreply, .. } => *noreply,
            Request::Quit => true,
            Request::MetaGet(m) => m.flags.quiet,
            Request::MetaSet(m) => m.flags.quiet,
            Request::MetaDelete(m) => m.flags.quiet,
            Request::MetaArithmetic(m) => m.flags.quiet,
            _ => false,
        }
    }

    /// Whether the request carries a data block (a rejected one may be run as a command by
    /// memcached 1.6.18, so an `ERROR`/`CLIENT_ERROR` reply to it poisons the connection).
    pub fn has_data_block(&self) -> bool {
        matches!(self, Request::Store(_) | Request::MetaSet(_))
    }

    /// Checks that the request can be encoded, without writing anything.
    pub fn check(&self, limits: &Limits) -> Result<(), EncodeError> {
        match self {
            Request::Retrieve(r) => r.check(),
            Request::Store(s) => s.check(limits),
            Request::Delete { key, .. }
            | Request::Incr { key, .. }
            | Request::Decr { key, .. }
            | Request::Touch { key, .. } => {
                key.require_text()?;
                Ok(())
            }
            Request::Stats { args: Some(a) } => check_stats_args(a),
            Request::MetaSet(m) => m.check(limits),
            _ => Ok(()),
        }
    }

    /// Encodes the request into `buf`, after checking it: on error nothing is written.
    ///
    /// ```
    /// use mcache_proto::{Key, Limits, Request};
    /// let req = Request::Delete { key: Key::new("foo")?, noreply: false };
    /// let mut buf = Vec::new();
    /// req.encode(&mut buf, &Limits::default())?;
    /// assert_eq!(buf, b"delete foo\r\n");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn encode(&self, buf: &mut impl BufMut, limits: &Limits) -> Result<(), EncodeError> {
        self.check(limits)?;
        self.encode_unchecked(buf);
        Ok(())
    }

    /// Encodes a request that [`check`](Request::check) accepted.
    /// The data block of a storage request, when it is at least `min` bytes: such a request
    /// is queued as its command line, the value itself (not copied) and `\r\n`.
    pub(crate) fn large_value(&self, min: usize) -> Option<&Bytes> {
        let value = match self {
            Request::Store(s) => &s.value,
            Request::MetaSet(m) => &m.value,
            _ => return None,
        };
        (value.len() >= min).then_some(value)
    }

    /// The command line of a request with a data block, up to the block.
    pub(crate) fn encode_head(&self, buf: &mut impl BufMut) {
        match self {
            Request::Store(s) => s.encode_head(buf),
            Request::MetaSet(m) => m.encode_head(buf),
            other => other.encode_unchecked(buf),
        }
    }

    pub(crate) fn encode_unchecked(&self, buf: &mut impl BufMut) {
        match self {
            Request::Retrieve(r) => r.encode(buf),
            Request::Store(s) => s.encode(buf),
            Request::Delete { key, noreply } => {
                encode_keyed(buf, b"delete", key, None, None, *noreply)
            }
            Request::Incr {
                key,
                delta,
                noreply,
            } => encode_keyed(buf, b"incr", key, None, Some(*delta), *noreply),
            Request::Decr {
                key,
                delta,
                noreply,
            } => encode_keyed(buf, b"decr", key, None, Some(*delta), *noreply),
            Request::Touch {
                key,
                exptime,
                noreply,
            } => encode_keyed(
                buf,
                b"touch",
                key,
                Some(i64::from(*exptime)),
                None,
                *noreply,
            ),
            Request::FlushAll { delay, noreply } => {
                buf.put_slice(b"flush_all");
                if let Some(d) = delay {
                    buf.put_u8(b' ');
                    put_i64(buf, i64::from(*d));
                }
                if *noreply {
                    buf.put_slice(b" noreply");
                }
                buf.put_slice(b"\r\n");
            }
            Request::Version => buf.put_slice(b"version\r\n"),
            Request::Verbosity { level, noreply } => {
                buf.put_slice(b"verbosity ");
                put_u64(buf, u64::from(*level));
                if *noreply {
                    buf.put_slice(b" noreply");
                }
                buf.put_slice(b"\r\n");
            }
            Request::Stats { args } => {
                buf.put_slice(b"stats");
                if let Some(a) = args {
                    buf.put_u8(b' ');
                    buf.put_slice(a);
                }
                buf.put_slice(b"\r\n");
            }
            Request::Quit => buf.put_slice(b"quit\r\n"),
            Request::MetaGet(m) => m.encode(buf),
            Request::MetaSet(m) => m.encode(buf),
            Request::MetaDelete(m) => m.encode(buf),
            Request::MetaArithmetic(m) => m.encode(buf),
            Request::MetaNoop => buf.put_slice(b"mn\r\n"),
            Request::MetaDebug { key } => {
                buf.put_slice(b"me ");
                buf.put_slice(key.wire());
                if key.is_binary() {
                    buf.put_slice(b" b");
                }
                buf.put_slice(b"\r\n");
            }
        }
    }

    /// Encodes into a new `Vec` (convenient in tests and examples).
    pub fn to_bytes(&self, limits: &Limits) -> Result<Vec<u8>, EncodeError> {
        let mut v = Vec::new();
        self.encode(&mut v, limits)?;
        Ok(v)
    }

    /// Decodes one request from `buf` (server side): `Ok(None)` until a whole request (with its
    /// data block) is there; the bytes are consumed only when a request is returned.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use mcache_proto::{Limits, Request};
    /// let mut buf = BytesMut::from(&b"set foo 5 0 3\r\nba"[..]);
    /// assert_eq!(Request::decode(&mut buf, &Limits::server())?, None);
    /// buf.extend_from_slice(b"r\r\n");
    /// let req = Request::decode(&mut buf, &Limits::server())?.unwrap();
    /// assert_eq!(req.command_name(), "set");
    /// assert!(buf.is_empty());
    /// # Ok::<(), mcache_proto::DecodeError>(())
    /// ```
    pub fn decode(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Request>, DecodeError> {
        let Some(line_len) = find_line(buf, limits.max_line_len)? else {
            return Ok(None);
        };
        let line = &buf[..line_len];
        let tokens = tokens_of(line);
        let Some((&name, args)) = tokens.split_first() else {
            return Err(unexpected("a command", line));
        };
        let head = line_len + 2;
        let request = match name {
            b"set" | b"add" | b"replace" | b"append" | b"prepend" | b"cas" => {
                let h = parse_store_head(name, args.to_vec(), line, limits)?;
                let Some(value) = take_block(buf, head, h.len)? else {
                    return Ok(None);
                };
                return Ok(Some(Request::Store(Store {
                    command: h.command,
                    key: h.key,
                    flags: h.flags,
                    exptime: h.exptime,
                    value,
                    noreply: h.noreply,
                })));
            }
            b"ms" => {
                let (key, len, flags) = parse_set_head(args.iter().copied(), line, limits)?;
                let Some(value) = take_block(buf, head, len)? else {
                    return Ok(None);
                };
                return Ok(Some(MetaSet { key, value, flags }.into()));
            }
            b"get" | b"gets" | b"gat" | b"gats" => {
                let (command, keys) = match name {
                    b"get" => (RetrieveCommand::Get, args),
                    b"gets" => (RetrieveCommand::Gets, args),
                    _ => {
                        let (t, keys) = args
                            .split_first()
                            .ok_or_else(|| unexpected("<exptime> <key>+", line))?;
                        let t = parse_i32("exptime", t)?;
                        let c = if name == b"gat" {
                            RetrieveCommand::Gat(t)
                        } else {
                            RetrieveCommand::Gats(t)
                        };
                        (c, keys)
                    }
                };
                if keys.is_empty() {
                    return Err(unexpected("at least one key", line));
                }
                let keys = keys
                    .iter()
                    .map(|k| key_token(k))
                    .collect::<Result<_, _>>()?;
                Request::Retrieve(Retrieve { command, keys })
            }
            b"delete" | b"incr" | b"decr" | b"touch" => parse_keyed_text(name, args, line)?,
            b"flush_all" => {
                let mut args = args.to_vec();
                let noreply = split_noreply(&mut args);
                let delay = match args.as_slice() {
                    [] => None,
                    [d] => Some(parse_i32("delay", d)?),
                    _ => return Err(unexpected("flush_all [delay] [noreply]", line)),
                };
                Request::FlushAll { delay, noreply }
            }
            b"version" if args.is_empty() => Request::Version,
            b"quit" if args.is_empty() => Request::Quit,
            b"mn" if args.is_empty() => Request::MetaNoop,
            b"verbosity" => {
                let mut args = args.to_vec();
                let noreply = split_noreply(&mut args);
                match args.as_slice() {
                    [l] => Request::Verbosity {
                        level: parse_u32("verbosity level", l)?,
                        noreply,
                    },
                    _ => return Err(unexpected("verbosity <level> [noreply]", line)),
                }
            }
            b"stats" => {
                // After the name's token (the line may start with spaces).
                let mut rest = crate::wire::Tokens::new(line);
                rest.next();
                let rest = rest.remainder();
                let args = if rest.is_empty() {
                    None
                } else {
                    check_stats_args(rest).map_err(|_| unexpected("stats [<args>]", line))?;
                    Some(Bytes::copy_from_slice(rest))
                };
                Request::Stats { args }
            }
            b"mg" | b"md" | b"ma" => parse_keyed(name, args.iter().copied(), line)?,
            b"me" => match args {
                [k] => Request::MetaDebug { key: key_token(k)? },
                [k, b"b"] => Request::MetaDebug {
                    key: Key::from_base64(Bytes::copy_from_slice(k))?,
                },
                _ => return Err(unexpected("me <key> [b]", line)),
            },
            _ => return Err(unexpected("a memcached command", line)),
        };
        buf.advance(head);
        Ok(Some(request))
    }
}

fn unexpected(expected: &'static str, line: &[u8]) -> DecodeError {
    DecodeError::Unexpected {
        expected,
        line: Snippet::new(line),
    }
}

fn parse_keyed_text(name: &[u8], args: &[&[u8]], line: &[u8]) -> Result<Request, DecodeError> {
    let mut args = args.to_vec();
    // A `noreply` only counts after the key: `delete noreply` deletes the key `noreply`.
    let noreply = args.len() > 1 && split_noreply(&mut args);
    Ok(match (name, args.as_slice()) {
        // `delete <key> 0` is the legacy form, still accepted by memcached.
        (b"delete", [k]) | (b"delete", [k, b"0"]) => Request::Delete {
            key: key_token(k)?,
            noreply,
        },
        (b"incr", [k, d]) => Request::Incr {
            key: key_token(k)?,
            delta: parse_u64("delta", d)?,
            noreply,
        },
        (b"decr", [k, d]) => Request::Decr {
            key: key_token(k)?,
            delta: parse_u64("delta", d)?,
            noreply,
        },
        (b"touch", [k, t]) => Request::Touch {
            key: key_token(k)?,
            exptime: parse_i32("exptime", t)?,
            noreply,
        },
        _ => return Err(unexpected("<key> and the command's arguments", line)),
    })
}

/// Takes a data block of `len` bytes after a line of `head` bytes, with its `\r\n`; `None`
/// while incomplete (then reserves room for it: `len` was checked against the limit).
pub(crate) fn take_block(
    buf: &mut BytesMut,
    head: usize,
    len: usize,
) -> Result<Option<Bytes>, DecodeError> {
    let total = head + len + 2;
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    if &buf[head + len..total] != b"\r\n" {
        return Err(DecodeError::BadDataTerminator {
            found: Snippet::new(&buf[head + len..total]),
        });
    }
    let mut value = buf.split_to(total);
    value.advance(head);
    value.truncate(len);
    Ok(Some(value.freeze()))
}
