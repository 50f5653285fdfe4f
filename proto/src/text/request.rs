//! Text protocol requests: their types, encoding (client side) and decoding (server side).

use crate::error::{DecodeError, EncodeError, Snippet};
use crate::key::Key;
use crate::wire::{
    is_token_byte, len_i64, parse_i32, parse_len, parse_u32, parse_u64, put_i64, put_u64, Limits,
    Tokens, MAX_REQUEST_LINE,
};
use bytes::{BufMut, Bytes};

/// Which retrieval command.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetrieveCommand {
    /// `get <key>*`
    Get,
    /// `gets <key>*`: values with their cas.
    Gets,
    /// `gat <exptime> <key>*`: get and touch.
    Gat(i32),
    /// `gats <exptime> <key>*`: get and touch, with cas.
    Gats(i32),
}

impl RetrieveCommand {
    /// The command's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            RetrieveCommand::Get => "get",
            RetrieveCommand::Gets => "gets",
            RetrieveCommand::Gat(_) => "gat",
            RetrieveCommand::Gats(_) => "gats",
        }
    }

    /// Whether replies carry a cas.
    pub fn with_cas(self) -> bool {
        matches!(self, RetrieveCommand::Gets | RetrieveCommand::Gats(_))
    }
}

/// A retrieval request: `get`, `gets`, `gat` or `gats` of one or more keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retrieve {
    /// The command.
    pub command: RetrieveCommand,
    /// The keys, in the order their values come back.
    pub keys: Vec<Key>,
}

/// Which storage command.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreCommand {
    /// `set`: store.
    Set,
    /// `add`: store only if absent.
    Add,
    /// `replace`: store only if present.
    Replace,
    /// `append`: add after the existing value (flags and exptime ignored).
    Append,
    /// `prepend`: add before the existing value (flags and exptime ignored).
    Prepend,
    /// `cas <unique>`: store only if the item's cas is still this.
    Cas(u64),
}

impl StoreCommand {
    /// The command's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            StoreCommand::Set => "set",
            StoreCommand::Add => "add",
            StoreCommand::Replace => "replace",
            StoreCommand::Append => "append",
            StoreCommand::Prepend => "prepend",
            StoreCommand::Cas(_) => "cas",
        }
    }
}

/// A storage request: `set`, `add`, `replace`, `append`, `prepend` or `cas`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    /// The command.
    pub command: StoreCommand,
    /// The key.
    pub key: Key,
    /// Client flags, stored with the value.
    pub flags: u32,
    /// Expiration: 0 never, up to 30 days relative seconds, above that a unix time, negative
    /// already expired.
    pub exptime: i32,
    /// The value.
    pub value: Bytes,
    /// Ask the server not to reply.
    pub noreply: bool,
}

fn put_key(buf: &mut impl BufMut, key: &Key) {
    buf.put_u8(b' ');
    buf.put_slice(key.wire());
}

fn put_noreply(buf: &mut impl BufMut, noreply: bool) {
    if noreply {
        buf.put_slice(b" noreply");
    }
}

/// Checks that `keys` can go on a text line.
pub(crate) fn check_text_keys(keys: &[Key]) -> Result<(), EncodeError> {
    for k in keys {
        k.require_text()?;
    }
    Ok(())
}

impl Retrieve {
    pub(crate) fn check(&self) -> Result<(), EncodeError> {
        if self.keys.is_empty() {
            return Err(EncodeError::NoKeys {
                command: self.command.name(),
            });
        }
        check_text_keys(&self.keys)?;
        if let RetrieveCommand::Gat(t) | RetrieveCommand::Gats(t) = self.command {
            // Only get/gets lines may pass 2048 bytes: the server closes the connection otherwise.
            let len = self.command.name().len()
                + 1
                + len_i64(i64::from(t))
                + self.keys.iter().map(|k| k.wire().len() + 1).sum::<usize>()
                + 2;
            if len > MAX_REQUEST_LINE {
                return Err(EncodeError::LineTooLong {
                    len,
                    max: MAX_REQUEST_LINE,
                });
            }
        }
        Ok(())
    }

    pub(crate) fn encode(&self, buf: &mut impl BufMut) {
        buf.put_slice(self.command.name().as_bytes());
        if let RetrieveCommand::Gat(t) | RetrieveCommand::Gats(t) = self.command {
            buf.put_u8(b' ');
            put_i64(buf, i64::from(t));
        }
        for k in &self.keys {
            put_key(buf, k);
        }
        buf.put_slice(b"\r\n");
    }
}

impl Store {
    pub(crate) fn check(&self, limits: &Limits) -> Result<(), EncodeError> {
        self.key.require_text()?;
        if self.value.len() > limits.max_value_len {
            return Err(EncodeError::ValueTooLarge {
                len: self.value.len(),
                max: limits.max_value_len,
            });
        }
        Ok(())
    }

    pub(crate) fn encode(&self, buf: &mut impl BufMut) {
        self.encode_head(buf);
        buf.put_slice(&self.value);
        buf.put_slice(b"\r\n");
    }

    /// The command line, up to the data block.
    pub(crate) fn encode_head(&self, buf: &mut impl BufMut) {
        buf.put_slice(self.command.name().as_bytes());
        put_key(buf, &self.key);
        buf.put_u8(b' ');
        put_u64(buf, u64::from(self.flags));
        buf.put_u8(b' ');
        put_i64(buf, i64::from(self.exptime));
        buf.put_u8(b' ');
        put_u64(buf, self.value.len() as u64);
        if let StoreCommand::Cas(unique) = self.command {
            buf.put_u8(b' ');
            put_u64(buf, unique);
        }
        put_noreply(buf, self.noreply);
        buf.put_slice(b"\r\n");
    }
}

/// Encodes a simple one-key command: `<name> <key>[ <num>][ noreply]\r\n`.
pub(crate) fn encode_keyed(
    buf: &mut impl BufMut,
    name: &[u8],
    key: &Key,
    num: Option<i64>,
    unsigned: Option<u64>,
    noreply: bool,
) {
    buf.put_slice(name);
    put_key(buf, key);
    if let Some(n) = num {
        buf.put_u8(b' ');
        put_i64(buf, n);
    }
    if let Some(n) = unsigned {
        buf.put_u8(b' ');
        put_u64(buf, n);
    }
    put_noreply(buf, noreply);
    buf.put_slice(b"\r\n");
}

/// Checks the argument of `stats`: printable words separated by single spaces.
pub(crate) fn check_stats_args(args: &[u8]) -> Result<(), EncodeError> {
    let ok = !args.is_empty()
        && args
            .split(|&b| b == b' ')
            .all(|w| !w.is_empty() && w.iter().all(|&b| is_token_byte(b)));
    if !ok {
        return Err(EncodeError::InvalidToken {
            what: "stats argument",
            bytes: Snippet::new(args),
        });
    }
    let len = b"stats ".len() + args.len() + 2;
    if len > MAX_REQUEST_LINE {
        return Err(EncodeError::LineTooLong {
            len,
            max: MAX_REQUEST_LINE,
        });
    }
    Ok(())
}

/// Splits a trailing `noreply` off the tokens of a line.
pub(crate) fn split_noreply(tokens: &mut Vec<&[u8]>) -> bool {
    if tokens.last() == Some(&&b"noreply"[..]) {
        tokens.pop();
        true
    } else {
        false
    }
}

/// Reads a key token.
pub(crate) fn key_token(t: &[u8]) -> Result<Key, DecodeError> {
    Ok(Key::from_bytes(Bytes::copy_from_slice(t))?)
}

/// A storage line parsed, waiting for its data block.
pub(crate) struct StoreHead {
    pub(crate) command: StoreCommand,
    pub(crate) key: Key,
    pub(crate) flags: u32,
    pub(crate) exptime: i32,
    pub(crate) len: usize,
    pub(crate) noreply: bool,
}

/// Parses the line of a storage command (after its name).
pub(crate) fn parse_store_head(
    name: &[u8],
    mut args: Vec<&[u8]>,
    line: &[u8],
    limits: &Limits,
) -> Result<StoreHead, DecodeError> {
    let noreply = split_noreply(&mut args);
    let want = if name == b"cas" { 5 } else { 4 };
    if args.len() != want {
        return Err(DecodeError::Unexpected {
            expected: "<key> <flags> <exptime> <bytes> [<cas>] [noreply]",
            line: Snippet::new(line),
        });
    }
    let command = match name {
        b"set" => StoreCommand::Set,
        b"add" => StoreCommand::Add,
        b"replace" => StoreCommand::Replace,
        b"append" => StoreCommand::Append,
        b"prepend" => StoreCommand::Prepend,
        _ => StoreCommand::Cas(parse_u64("cas unique", args[4])?),
    };
    Ok(StoreHead {
        command,
        key: key_token(args[0])?,
        flags: parse_u32("flags", args[1])?,
        exptime: parse_i32("exptime", args[2])?,
        len: parse_len(args[3], limits.max_value_len)?,
        noreply,
    })
}

/// Collects the tokens of a line (bounded by the line's length).
pub(crate) fn tokens_of(line: &[u8]) -> Vec<&[u8]> {
    Tokens::new(line).collect()
}
