//! Meta protocol requests: `mg`, `ms`, `md`, `ma` (`mn` and `me` need no struct).

use crate::error::{DecodeError, EncodeError, Snippet};
use crate::key::Key;
use crate::meta::flags::{
    parse_request_flags, MetaArithmeticFlags, MetaDeleteFlags, MetaGetFlags, MetaSetFlags,
};
use crate::wire::{parse_len, put_u64, Limits};
use bytes::{BufMut, Bytes};

/// `mg <key> <flags>*`: fetch an item, or facts about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaGet {
    /// The key (a binary key adds the `b` flag).
    pub key: Key,
    /// The flags.
    pub flags: MetaGetFlags,
}

/// `ms <key> <datalen> <flags>*`: store an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaSet {
    /// The key.
    pub key: Key,
    /// The value.
    pub value: Bytes,
    /// The flags.
    pub flags: MetaSetFlags,
}

/// `md <key> <flags>*`: delete or invalidate an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaDelete {
    /// The key.
    pub key: Key,
    /// The flags.
    pub flags: MetaDeleteFlags,
}

/// `ma <key> <flags>*`: increment or decrement a counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaArithmetic {
    /// The key.
    pub key: Key,
    /// The flags.
    pub flags: MetaArithmeticFlags,
}

fn put_head(buf: &mut impl BufMut, cmd: &[u8], key: &Key) {
    buf.put_slice(cmd);
    buf.put_u8(b' ');
    buf.put_slice(key.wire());
}

fn put_binary(buf: &mut impl BufMut, key: &Key) {
    if key.is_binary() {
        buf.put_slice(b" b");
    }
}

impl MetaGet {
    /// An `mg` with no flags (answers `HD` on a hit, `EN` on a miss).
    pub fn new(key: Key) -> Self {
        MetaGet {
            key,
            flags: MetaGetFlags::default(),
        }
    }

    pub(crate) fn encode(&self, buf: &mut impl BufMut) {
        MetaGet::encode_parts(buf, &self.key, &self.flags);
    }

    /// `mg <key> <flags>*` from its parts (a connection sends a single-key `get` as one
    /// without making a request of it).
    pub(crate) fn encode_parts(buf: &mut impl BufMut, key: &Key, flags: &MetaGetFlags) {
        put_head(buf, b"mg", key);
        put_binary(buf, key);
        flags.encode(buf);
        buf.put_slice(b"\r\n");
    }
}

impl MetaSet {
    /// An `ms` with no flags (a plain set).
    pub fn new(key: Key, value: impl Into<Bytes>) -> Self {
        MetaSet {
            key,
            value: value.into(),
            flags: MetaSetFlags::default(),
        }
    }

    pub(crate) fn check(&self, limits: &Limits) -> Result<(), EncodeError> {
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
        put_head(buf, b"ms", &self.key);
        buf.put_u8(b' ');
        put_u64(buf, self.value.len() as u64);
        put_binary(buf, &self.key);
        self.flags.encode(buf);
        buf.put_slice(b"\r\n");
    }
}

impl MetaDelete {
    /// An `md` with no flags (a plain delete).
    pub fn new(key: Key) -> Self {
        MetaDelete {
            key,
            flags: MetaDeleteFlags::default(),
        }
    }

    pub(crate) fn encode(&self, buf: &mut impl BufMut) {
        put_head(buf, b"md", &self.key);
        put_binary(buf, &self.key);
        self.flags.encode(buf);
        buf.put_slice(b"\r\n");
    }
}

impl MetaArithmetic {
    /// An `ma` with no flags (increment by one).
    pub fn new(key: Key) -> Self {
        MetaArithmetic {
            key,
            flags: MetaArithmeticFlags::default(),
        }
    }

    pub(crate) fn encode(&self, buf: &mut impl BufMut) {
        put_head(buf, b"ma", &self.key);
        put_binary(buf, &self.key);
        self.flags.encode(buf);
        buf.put_slice(b"\r\n");
    }
}

/// Reads a key token, base64 when the flags hold `b`.
fn meta_key(token: &[u8], binary: bool) -> Result<Key, DecodeError> {
    let t = Bytes::copy_from_slice(token);
    Ok(if binary {
        Key::from_base64(t)?
    } else {
        Key::from_bytes(t)?
    })
}

fn missing_key(line: &[u8]) -> DecodeError {
    DecodeError::Unexpected {
        expected: "a key",
        line: Snippet::new(line),
    }
}

/// Parses `mg`, `md` or `ma` (the name already read) from the rest of its tokens.
pub(crate) fn parse_keyed<'a>(
    name: &[u8],
    mut tokens: impl Iterator<Item = &'a [u8]>,
    line: &[u8],
) -> Result<crate::Request, DecodeError> {
    let key_token = tokens.next().ok_or_else(|| missing_key(line))?;
    Ok(match name {
        b"mg" => {
            let mut flags = MetaGetFlags::default();
            let binary = parse_request_flags(tokens, |l, a| flags.parse(l, a))?;
            MetaGet {
                key: meta_key(key_token, binary)?,
                flags,
            }
            .into()
        }
        b"md" => {
            let mut flags = MetaDeleteFlags::default();
            let binary = parse_request_flags(tokens, |l, a| flags.parse(l, a))?;
            MetaDelete {
                key: meta_key(key_token, binary)?,
                flags,
            }
            .into()
        }
        _ => {
            let mut flags = MetaArithmeticFlags::default();
            let binary = parse_request_flags(tokens, |l, a| flags.parse(l, a))?;
            MetaArithmetic {
                key: meta_key(key_token, binary)?,
                flags,
            }
            .into()
        }
    })
}

/// Parses the line of an `ms` (after its name); the data block is read by the caller.
pub(crate) fn parse_set_head<'a>(
    mut tokens: impl Iterator<Item = &'a [u8]>,
    line: &[u8],
    limits: &Limits,
) -> Result<(Key, usize, MetaSetFlags), DecodeError> {
    let key_token = tokens.next().ok_or_else(|| missing_key(line))?;
    let len_token = tokens.next().ok_or_else(|| DecodeError::Unexpected {
        expected: "ms <key> <datalen> <flags>*",
        line: Snippet::new(line),
    })?;
    let len = parse_len(len_token, limits.max_value_len)?;
    let mut flags = MetaSetFlags::default();
    let binary = parse_request_flags(tokens, |l, a| flags.parse(l, a))?;
    Ok((meta_key(key_token, binary)?, len, flags))
}
