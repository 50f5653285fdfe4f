//! Typed meta-command flags: what the client asks for (`mg`, `ms`, `md`, `ma`) and what the
//! server returns.
//!
//! Flags are encoded in a fixed canonical order: flags that change the item first (`N`, `R`,
//! `T`, `E`, `C`, `F`, `I`, `M`, `J`, `D`, `x`), then the flags that ask for a value back, then
//! `O` and `q`. So `t` always reports the TTL *after* a `T` update, as memcached evaluates flags
//! in the order they are written. Decoding accepts any order and rejects unknown or repeated
//! letters, as the server does.

use crate::error::{DecodeError, EncodeError, Snippet};
use crate::key::Key;
use crate::wire::{is_token_byte, parse_i32, parse_i64, parse_u32, parse_u64, put_i64, put_u64};
use bytes::{BufMut, Bytes};
use std::fmt;

/// An opaque token (`O` flag): up to 31 printable bytes, echoed back verbatim by the server.
/// Stored inline: copying it allocates nothing.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Opaque {
    len: u8,
    bytes: [u8; Opaque::MAX_LEN],
}

impl Opaque {
    /// Longest opaque memcached accepts (the `O` token is at most 32 bytes).
    pub const MAX_LEN: usize = 31;

    /// An opaque from bytes: at most 31, none a space, control byte or DEL.
    pub fn new(token: &[u8]) -> Result<Opaque, EncodeError> {
        if token.len() > Self::MAX_LEN || !token.iter().all(|&b| is_token_byte(b)) {
            return Err(EncodeError::InvalidToken {
                what: "opaque",
                bytes: Snippet::new(token),
            });
        }
        let mut bytes = [0u8; Self::MAX_LEN];
        bytes[..token.len()].copy_from_slice(token);
        Ok(Opaque {
            // token.len() <= 31.
            len: token.len() as u8,
            bytes,
        })
    }

    /// An opaque holding the decimal form of `n` (what [`Connection`](crate::Connection) uses).
    pub fn from_u32(n: u32) -> Opaque {
        let mut b = itoa::Buffer::new();
        let s = b.format(n).as_bytes();
        let mut bytes = [0u8; Self::MAX_LEN];
        bytes[..s.len()].copy_from_slice(s);
        Opaque {
            len: s.len() as u8,
            bytes,
        }
    }

    /// The token's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl fmt::Debug for Opaque {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Opaque({})", self.as_bytes().escape_ascii())
    }
}

/// Most flag tokens memcached 1.6.18 accepts on one meta request (1.6.40+ accepts 18).
pub const MAX_META_FLAGS: usize = 17;

/// Flags of a meta get (`mg`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetaGetFlags {
    /// `N<ttl>`: on a miss, create an empty item with this TTL and win the right to fill it.
    pub vivify: Option<i32>,
    /// `R<ttl>`: win the right to recache if the remaining TTL is below this.
    pub recache: Option<i32>,
    /// `T<ttl>`: update the TTL.
    pub touch: Option<i32>,
    /// `E<cas>`: the cas to give an item created by `N` (memcached 1.6.27+).
    pub new_cas: Option<u64>,
    /// `C<cas>`: with `v`, omit the value when the cas matches (memcached 1.6.40+).
    pub compare_cas: Option<u64>,
    /// `c`: return the cas.
    pub cas: bool,
    /// `f`: return the client flags.
    pub client_flags: bool,
    /// `h`: return whether the item was hit before.
    pub hit: bool,
    /// `k`: return the key.
    pub key: bool,
    /// `l`: return the seconds since the last access.
    pub last_access: bool,
    /// `s`: return the item's value size.
    pub size: bool,
    /// `t`: return the remaining TTL (`-1` for none).
    pub ttl: bool,
    /// `u`: do not bump the item in the LRU.
    pub no_lru_bump: bool,
    /// `v`: return the value.
    pub value: bool,
    /// `O<token>`: echoed back.
    pub opaque: Option<Opaque>,
    /// `q`: quiet: hide a miss (`EN`).
    pub quiet: bool,
}

/// The mode of a meta set (`M` flag).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaSetMode {
    /// `MS`: store (the default).
    Set,
    /// `ME`: store only if absent ("add").
    Add,
    /// `MR`: store only if present.
    Replace,
    /// `MA`: append to the value.
    Append,
    /// `MP`: prepend to the value.
    Prepend,
}

impl MetaSetMode {
    fn letter(self) -> u8 {
        match self {
            MetaSetMode::Set => b'S',
            MetaSetMode::Add => b'E',
            MetaSetMode::Replace => b'R',
            MetaSetMode::Append => b'A',
            MetaSetMode::Prepend => b'P',
        }
    }

    fn from_token(t: &[u8]) -> Option<Self> {
        match t {
            // Upper case only, as memcached (`Ms` -> `CLIENT_ERROR invalid mode for ms M token`).
            b"S" => Some(MetaSetMode::Set),
            b"E" => Some(MetaSetMode::Add),
            b"R" => Some(MetaSetMode::Replace),
            b"A" => Some(MetaSetMode::Append),
            b"P" => Some(MetaSetMode::Prepend),
            _ => None,
        }
    }
}

/// Flags of a meta set (`ms`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetaSetFlags {
    /// `M<mode>`; `None` means set.
    pub mode: Option<MetaSetMode>,
    /// `T<ttl>`: the TTL (default 0, never expires).
    pub ttl: Option<i32>,
    /// `F<flags>`: client flags.
    pub client_flags: Option<u32>,
    /// `C<cas>`: store only if the item's cas matches.
    pub compare_cas: Option<u64>,
    /// `E<cas>`: the cas the stored item gets (memcached 1.6.27+).
    pub new_cas: Option<u64>,
    /// `I`: with `C`, an older cas stores the item but marks it stale.
    pub invalidate: bool,
    /// `N<ttl>`: in append/prepend mode, create the item on a miss (memcached 1.6.20+).
    pub vivify: Option<i32>,
    /// `c`: return the cas after storing.
    pub cas: bool,
    /// `k`: return the key.
    pub key: bool,
    /// `s`: return the stored size (memcached 1.6.20+).
    pub size: bool,
    /// `O<token>`: echoed back.
    pub opaque: Option<Opaque>,
    /// `q`: quiet: hide success (`HD`).
    pub quiet: bool,
}

/// Flags of a meta delete (`md`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetaDeleteFlags {
    /// `C<cas>`: delete only if the cas matches.
    pub compare_cas: Option<u64>,
    /// `E<cas>`: the new cas when invalidating (memcached 1.6.27+).
    pub new_cas: Option<u64>,
    /// `I`: mark the item stale instead of deleting it.
    pub invalidate: bool,
    /// `T<ttl>`: with `I`, update the TTL.
    pub ttl: Option<i32>,
    /// `x`: drop the value but keep the item (memcached 1.6.27+).
    pub remove_value: bool,
    /// `k`: return the key.
    pub key: bool,
    /// `O<token>`: echoed back.
    pub opaque: Option<Opaque>,
    /// `q`: quiet: hide success (`HD`).
    pub quiet: bool,
}

/// The mode of a meta arithmetic (`M` flag).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaArithmeticMode {
    /// `MI`: increment (the default).
    Increment,
    /// `MD`: decrement (stops at 0).
    Decrement,
}

/// Flags of a meta arithmetic (`ma`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetaArithmeticFlags {
    /// `M<mode>`; `None` means increment.
    pub mode: Option<MetaArithmeticMode>,
    /// `D<delta>` (default 1).
    pub delta: Option<u64>,
    /// `N<ttl>`: create the item on a miss.
    pub vivify: Option<i32>,
    /// `J<initial>`: the value of an item created by `N` (default 0).
    pub initial: Option<u64>,
    /// `T<ttl>`: update the TTL on success.
    pub ttl: Option<i32>,
    /// `C<cas>`: apply only if the cas matches.
    pub compare_cas: Option<u64>,
    /// `E<cas>`: the new cas (memcached 1.6.27+).
    pub new_cas: Option<u64>,
    /// `c`: return the cas.
    pub cas: bool,
    /// `k`: return the key.
    pub key: bool,
    /// `t`: return the remaining TTL.
    pub return_ttl: bool,
    /// `v`: return the new value.
    pub value: bool,
    /// `O<token>`: echoed back.
    pub opaque: Option<Opaque>,
    /// `q`: quiet: hide success.
    pub quiet: bool,
}

/// Flags the server returns on a meta response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetaReturnFlags {
    /// `c`: the item's cas.
    pub cas: Option<u64>,
    /// `f`: client flags.
    pub client_flags: Option<u32>,
    /// `h`: whether the item was hit before.
    pub hit: Option<bool>,
    /// `k`: the key (binary when followed by ` b`).
    pub key: Option<Key>,
    /// `l`: seconds since the last access.
    pub last_access: Option<u64>,
    /// `O`: the opaque token sent.
    pub opaque: Option<Opaque>,
    /// `s`: the value's size.
    pub size: Option<u64>,
    /// `t`: the remaining TTL in seconds, `-1` for none. A negative TTL set by the client shows
    /// as a large number (memcached prints it as an unsigned 32-bit value).
    pub ttl: Option<i64>,
    /// `W`: this client won the right to recache.
    pub won: bool,
    /// `X`: the item is stale.
    pub stale: bool,
    /// `Z`: a win was already handed to another client.
    pub win_sent: bool,
}

/// Writes ` <letter><n>`.
fn put_num(buf: &mut impl BufMut, letter: u8, n: Option<u64>) {
    if let Some(n) = n {
        buf.put_slice(&[b' ', letter]);
        put_u64(buf, n);
    }
}

fn put_signed(buf: &mut impl BufMut, letter: u8, n: Option<i32>) {
    if let Some(n) = n {
        buf.put_slice(&[b' ', letter]);
        put_i64(buf, i64::from(n));
    }
}

fn put_bool(buf: &mut impl BufMut, letter: u8, on: bool) {
    if on {
        buf.put_slice(&[b' ', letter]);
    }
}

fn put_opaque(buf: &mut impl BufMut, opaque: &Option<Opaque>) {
    if let Some(o) = opaque {
        buf.put_slice(b" O");
        buf.put_slice(o.as_bytes());
    }
}

impl MetaGetFlags {
    /// How many flag tokens these flags take (the `b` of a binary key not included).
    pub fn token_count(&self) -> usize {
        usize::from(self.vivify.is_some())
            + usize::from(self.recache.is_some())
            + usize::from(self.touch.is_some())
            + usize::from(self.new_cas.is_some())
            + usize::from(self.compare_cas.is_some())
            + usize::from(self.opaque.is_some())
            + usize::from(self.cas)
            + usize::from(self.client_flags)
            + usize::from(self.hit)
            + usize::from(self.key)
            + usize::from(self.last_access)
            + usize::from(self.size)
            + usize::from(self.ttl)
            + usize::from(self.no_lru_bump)
            + usize::from(self.value)
            + usize::from(self.quiet)
    }

    pub(crate) fn encode(&self, buf: &mut impl BufMut) {
        put_signed(buf, b'N', self.vivify);
        put_signed(buf, b'R', self.recache);
        put_signed(buf, b'T', self.touch);
        put_num(buf, b'E', self.new_cas);
        put_num(buf, b'C', self.compare_cas);
        put_bool(buf, b'c', self.cas);
        put_bool(buf, b'f', self.client_flags);
        put_bool(buf, b'h', self.hit);
        put_bool(buf, b'k', self.key);
        put_bool(buf, b'l', self.last_access);
        put_bool(buf, b's', self.size);
        put_bool(buf, b't', self.ttl);
        put_bool(buf, b'u', self.no_lru_bump);
        put_bool(buf, b'v', self.value);
        put_opaque(buf, &self.opaque);
        put_bool(buf, b'q', self.quiet);
    }

    pub(crate) fn parse(&mut self, letter: u8, arg: &[u8]) -> Result<(), FlagError> {
        match letter {
            b'N' => set_once(&mut self.vivify, parse_i32("N", arg)?),
            b'R' => set_once(&mut self.recache, parse_i32("R", arg)?),
            b'T' => set_once(&mut self.touch, parse_i32("T", arg)?),
            b'E' => set_once(&mut self.new_cas, parse_u64("E", arg)?),
            b'C' => set_once(&mut self.compare_cas, parse_u64("C", arg)?),
            b'c' => set_bool(&mut self.cas),
            b'f' => set_bool(&mut self.client_flags),
            b'h' => set_bool(&mut self.hit),
            b'k' => set_bool(&mut self.key),
            b'l' => set_bool(&mut self.last_access),
            b's' => set_bool(&mut self.size),
            b't' => set_bool(&mut self.ttl),
            b'u' => set_bool(&mut self.no_lru_bump),
            b'v' => set_bool(&mut self.value),
            b'O' => set_once(&mut self.opaque, parse_opaque(arg)?),
            b'q' => set_bool(&mut self.quiet),
            _ => Err(FlagError::Invalid),
        }
    }
}

impl MetaSetFlags {
    /// How many flag tokens these flags take (the `b` of a binary key not included).
    pub fn token_count(&self) -> usize {
        usize::from(self.mode.is_some())
            + usize::from(self.ttl.is_some())
            + usize::from(self.client_flags.is_some())
            + usize::from(self.compare_cas.is_some())
            + usize::from(self.new_cas.is_some())
            + usize::from(self.vivify.is_some())
            + usize::from(self.opaque.is_some())
            + usize::from(self.invalidate)
            + usize::from(self.cas)
            + usize::from(self.key)
            + usize::from(self.size)
            + usize::from(self.quiet)
    }

    pub(crate) fn encode(&self, buf: &mut impl BufMut) {
        if let Some(m) = self.mode {
            buf.put_slice(&[b' ', b'M', m.letter()]);
        }
        put_signed(buf, b'T', self.ttl);
        put_num(buf, b'F', self.client_flags.map(u64::from));
        put_num(buf, b'C', self.compare_cas);
        put_num(buf, b'E', self.new_cas);
        put_bool(buf, b'I', self.invalidate);
        put_signed(buf, b'N', self.vivify);
        put_bool(buf, b'c', self.cas);
        put_bool(buf, b'k', self.key);
        put_bool(buf, b's', self.size);
        put_opaque(buf, &self.opaque);
        put_bool(buf, b'q', self.quiet);
    }

    pub(crate) fn parse(&mut self, letter: u8, arg: &[u8]) -> Result<(), FlagError> {
        match letter {
            b'M' => set_once(
                &mut self.mode,
                MetaSetMode::from_token(arg).ok_or(FlagError::Invalid)?,
            ),
            b'T' => set_once(&mut self.ttl, parse_i32("T", arg)?),
            b'F' => set_once(&mut self.client_flags, parse_u32("F", arg)?),
            b'C' => set_once(&mut self.compare_cas, parse_u64("C", arg)?),
            b'E' => set_once(&mut self.new_cas, parse_u64("E", arg)?),
            b'I' => set_bool(&mut self.invalidate),
            b'N' => set_once(&mut self.vivify, parse_i32("N", arg)?),
            b'c' => set_bool(&mut self.cas),
            b'k' => set_bool(&mut self.key),
            b's' => set_bool(&mut self.size),
            b'O' => set_once(&mut self.opaque, parse_opaque(arg)?),
            b'q' => set_bool(&mut self.quiet),
            _ => Err(FlagError::Invalid),
        }
    }
}

impl MetaDeleteFlags {
    /// How many flag tokens these flags take (the `b` of a binary key not included).
    pub fn token_count(&self) -> usize {
        usize::from(self.compare_cas.is_some())
            + usize::from(self.new_cas.is_some())
            + usize::from(self.ttl.is_some())
            + usize::from(self.opaque.is_some())
            + usize::from(self.invalidate)
            + usize::from(self.remove_value)
            + usize::from(self.key)
            + usize::from(self.quiet)
    }

    pub(crate) fn encode(&self, buf: &mut impl BufMut) {
        put_num(buf, b'C', self.compare_cas);
        put_num(buf, b'E', self.new_cas);
        put_bool(buf, b'I', self.invalidate);
        put_signed(buf, b'T', self.ttl);
        put_bool(buf, b'x', self.remove_value);
        put_bool(buf, b'k', self.key);
        put_opaque(buf, &self.opaque);
        put_bool(buf, b'q', self.quiet);
    }

    pub(crate) fn parse(&mut self, letter: u8, arg: &[u8]) -> Result<(), FlagError> {
        match letter {
            b'C' => set_once(&mut self.compare_cas, parse_u64("C", arg)?),
            b'E' => set_once(&mut self.new_cas, parse_u64("E", arg)?),
            b'I' => set_bool(&mut self.invalidate),
            b'T' => set_once(&mut self.ttl, parse_i32("T", arg)?),
            b'x' => set_bool(&mut self.remove_value),
            b'k' => set_bool(&mut self.key),
            b'O' => set_once(&mut self.opaque, parse_opaque(arg)?),
            b'q' => set_bool(&mut self.quiet),
            _ => Err(FlagError::Invalid),
        }
    }
}

impl MetaArithmeticFlags {
    /// How many flag tokens these flags take (the `b` of a binary key not included).
    pub fn token_count(&self) -> usize {
        usize::from(self.mode.is_some())
            + usize::from(self.delta.is_some())
            + usize::from(self.vivify.is_some())
            + usize::from(self.initial.is_some())
            + usize::from(self.ttl.is_some())
            + usize::from(self.compare_cas.is_some())
            + usize::from(self.new_cas.is_some())
            + usize::from(self.opaque.is_some())
            + usize::from(self.cas)
            + usize::from(self.key)
            + usize::from(self.return_ttl)
            + usize::from(self.value)
            + usize::from(self.quiet)
    }

    pub(crate) fn encode(&self, buf: &mut impl BufMut) {
        if let Some(m) = self.mode {
            buf.put_slice(match m {
                MetaArithmeticMode::Increment => b" MI",
                MetaArithmeticMode::Decrement => b" MD",
            });
        }
        put_num(buf, b'D', self.delta);
        put_signed(buf, b'N', self.vivify);
        put_num(buf, b'J', self.initial);
        put_signed(buf, b'T', self.ttl);
        put_num(buf, b'C', self.compare_cas);
        put_num(buf, b'E', self.new_cas);
        put_bool(buf, b'c', self.cas);
        put_bool(buf, b'k', self.key);
        put_bool(buf, b't', self.return_ttl);
        put_bool(buf, b'v', self.value);
        put_opaque(buf, &self.opaque);
        put_bool(buf, b'q', self.quiet);
    }

    pub(crate) fn parse(&mut self, letter: u8, arg: &[u8]) -> Result<(), FlagError> {
        match letter {
            b'M' => {
                let mode = match arg {
                    // Upper case only, as memcached.
                    b"I" | b"+" => MetaArithmeticMode::Increment,
                    b"D" | b"-" => MetaArithmeticMode::Decrement,
                    _ => return Err(FlagError::Invalid),
                };
                set_once(&mut self.mode, mode)
            }
            b'D' => set_once(&mut self.delta, parse_u64("D", arg)?),
            b'N' => set_once(&mut self.vivify, parse_i32("N", arg)?),
            b'J' => set_once(&mut self.initial, parse_u64("J", arg)?),
            b'T' => set_once(&mut self.ttl, parse_i32("T", arg)?),
            b'C' => set_once(&mut self.compare_cas, parse_u64("C", arg)?),
            b'E' => set_once(&mut self.new_cas, parse_u64("E", arg)?),
            b'c' => set_bool(&mut self.cas),
            b'k' => set_bool(&mut self.key),
            b't' => set_bool(&mut self.return_ttl),
            b'v' => set_bool(&mut self.value),
            b'O' => set_once(&mut self.opaque, parse_opaque(arg)?),
            b'q' => set_bool(&mut self.quiet),
            _ => Err(FlagError::Invalid),
        }
    }
}

impl MetaReturnFlags {
    /// Encodes the flags, server side, in canonical order (`Z X W` last, as memcached does).
    pub(crate) fn encode(&self, buf: &mut impl BufMut) {
        put_num(buf, b'c', self.cas);
        put_num(buf, b'f', self.client_flags.map(u64::from));
        if let Some(h) = self.hit {
            buf.put_slice(if h { b" h1" } else { b" h0" });
        }
        if let Some(k) = &self.key {
            buf.put_slice(b" k");
            buf.put_slice(k.wire());
            if k.is_binary() {
                buf.put_slice(b" b");
            }
        }
        put_num(buf, b'l', self.last_access);
        put_opaque(buf, &self.opaque);
        put_num(buf, b's', self.size);
        if let Some(t) = self.ttl {
            buf.put_slice(b" t");
            put_i64(buf, t);
        }
        put_bool(buf, b'Z', self.win_sent);
        put_bool(buf, b'X', self.stale);
        put_bool(buf, b'W', self.won);
    }

    /// Parses return flags from the tokens after a response code.
    pub(crate) fn parse<'a>(tokens: impl Iterator<Item = &'a [u8]>) -> Result<Self, DecodeError> {
        let mut f = MetaReturnFlags::default();
        let mut key_token: Option<&[u8]> = None;
        let mut binary = false;
        for token in tokens {
            let (letter, arg) = match token.split_first() {
                Some((&l, a)) => (l, a),
                None => continue,
            };
            let r = match letter {
                b'c' => set_once(&mut f.cas, parse_u64("c", arg)?),
                b'f' => set_once(&mut f.client_flags, parse_u32("f", arg)?),
                b'h' => match arg {
                    b"0" => set_once(&mut f.hit, false),
                    b"1" => set_once(&mut f.hit, true),
                    _ => Err(FlagError::Invalid),
                },
                b'k' => set_once(&mut key_token, arg),
                b'b' => set_bool(&mut binary),
                b'l' => set_once(&mut f.last_access, parse_u64("l", arg)?),
                b'O' => match parse_opaque(arg) {
                    Ok(o) => set_once(&mut f.opaque, o),
                    Err(e) => Err(e),
                },
                b's' => set_once(&mut f.size, parse_u64("s", arg)?),
                b't' => set_once(&mut f.ttl, parse_i64("t", arg)?),
                b'W' => set_bool(&mut f.won),
                b'X' => set_bool(&mut f.stale),
                b'Z' => set_bool(&mut f.win_sent),
                _ => Err(FlagError::Invalid),
            };
            r.map_err(|e| e.into_decode(token))?;
        }
        if let Some(k) = key_token {
            let k = Bytes::copy_from_slice(k);
            f.key = Some(if binary {
                Key::from_base64(k)?
            } else {
                Key::from_bytes(k)?
            });
        } else if binary {
            return Err(DecodeError::Unexpected {
                expected: "b only after a k flag",
                line: Snippet::new(b"b"),
            });
        }
        Ok(f)
    }
}

/// Why a flag token was refused while decoding.
#[derive(Debug)]
pub(crate) enum FlagError {
    /// Unknown letter or bad argument.
    Invalid,
    /// The letter was already given.
    Duplicate,
    /// A numeric argument did not parse.
    Number(DecodeError),
}

impl From<DecodeError> for FlagError {
    fn from(e: DecodeError) -> Self {
        FlagError::Number(e)
    }
}

impl FlagError {
    pub(crate) fn into_decode(self, token: &[u8]) -> DecodeError {
        match self {
            FlagError::Number(e) => e,
            FlagError::Invalid => DecodeError::Unexpected {
                expected: "a valid meta flag",
                line: Snippet::new(token),
            },
            FlagError::Duplicate => DecodeError::Unexpected {
                expected: "each meta flag at most once",
                line: Snippet::new(token),
            },
        }
    }
}

fn set_once<T>(slot: &mut Option<T>, value: T) -> Result<(), FlagError> {
    if slot.is_some() {
        return Err(FlagError::Duplicate);
    }
    *slot = Some(value);
    Ok(())
}

fn set_bool(slot: &mut bool) -> Result<(), FlagError> {
    if *slot {
        return Err(FlagError::Duplicate);
    }
    *slot = true;
    Ok(())
}

fn parse_opaque(arg: &[u8]) -> Result<Opaque, FlagError> {
    Opaque::new(arg).map_err(|_| FlagError::Invalid)
}

/// Parses request flag tokens into `flags` with `parse_one`, and returns whether `b` was given.
pub(crate) fn parse_request_flags<'a, F>(
    tokens: impl Iterator<Item = &'a [u8]>,
    mut parse_one: F,
) -> Result<bool, DecodeError>
where
    F: FnMut(u8, &[u8]) -> Result<(), FlagError>,
{
    let mut binary = false;
    for token in tokens {
        let Some((&letter, arg)) = token.split_first() else {
            continue;
        };
        let r = if letter == b'b' {
            set_bool(&mut binary)
        } else {
            parse_one(letter, arg)
        };
        r.map_err(|e| e.into_decode(token))?;
    }
    Ok(binary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_flag_at_once_fits_the_servers_limit() {
        // With every flag set, an opaque and the `b` of a binary key, no request passes the
        // 17 tokens memcached 1.6.18 accepts: the typed flags cannot build a refused request.
        let o = Some(Opaque::from_u32(1));
        let mg = MetaGetFlags {
            vivify: Some(1),
            recache: Some(1),
            touch: Some(1),
            new_cas: Some(1),
            compare_cas: Some(1),
            cas: true,
            client_flags: true,
            hit: true,
            key: true,
            last_access: true,
            size: true,
            ttl: true,
            no_lru_bump: true,
            value: true,
            opaque: o,
            quiet: true,
        };
        let ms = MetaSetFlags {
            mode: Some(MetaSetMode::Append),
            ttl: Some(1),
            client_flags: Some(1),
            compare_cas: Some(1),
            new_cas: Some(1),
            invalidate: true,
            vivify: Some(1),
            cas: true,
            key: true,
            size: true,
            opaque: o,
            quiet: true,
        };
        let md = MetaDeleteFlags {
            compare_cas: Some(1),
            new_cas: Some(1),
            invalidate: true,
            ttl: Some(1),
            remove_value: true,
            key: true,
            opaque: o,
            quiet: true,
        };
        let ma = MetaArithmeticFlags {
            mode: Some(MetaArithmeticMode::Decrement),
            delta: Some(1),
            vivify: Some(1),
            initial: Some(1),
            ttl: Some(1),
            compare_cas: Some(1),
            new_cas: Some(1),
            cas: true,
            key: true,
            return_ttl: true,
            value: true,
            opaque: o,
            quiet: true,
        };
        for (name, count, encoded) in [
            ("mg", mg.token_count(), {
                let mut b = Vec::new();
                mg.encode(&mut b);
                b
            }),
            ("ms", ms.token_count(), {
                let mut b = Vec::new();
                ms.encode(&mut b);
                b
            }),
            ("md", md.token_count(), {
                let mut b = Vec::new();
                md.encode(&mut b);
                b
            }),
            ("ma", ma.token_count(), {
                let mut b = Vec::new();
                ma.encode(&mut b);
                b
            }),
        ] {
            let tokens = encoded.iter().filter(|&&c| c == b' ').count();
            assert_eq!(count, tokens, "{name}: token_count matches the encoding");
            assert!(count < MAX_META_FLAGS, "{name}: {count} flags + b");
        }
    }

    #[test]
    fn opaque_limits() {
        assert!(Opaque::new(&[b'a'; 31]).is_ok());
        assert!(Opaque::new(&[b'a'; 32]).is_err());
        assert!(Opaque::new(b"a b").is_err());
        assert_eq!(Opaque::from_u32(4_294_967_295).as_bytes(), b"4294967295");
    }

    #[test]
    fn canonical_order_puts_updates_before_returns() {
        let f = MetaGetFlags {
            touch: Some(300),
            ttl: true,
            value: true,
            opaque: Some(Opaque::new(b"x").unwrap()),
            quiet: true,
            ..Default::default()
        };
        let mut buf = Vec::new();
        f.encode(&mut buf);
        assert_eq!(buf, b" T300 t v Ox q");
    }

    #[test]
    fn return_flags_parse() {
        let line: &[u8] = b"s3 f5 t-1 c76 kfoo h1 l0 Oopaque123";
        let f = MetaReturnFlags::parse(line.split(|&b| b == b' ')).unwrap();
        assert_eq!(f.size, Some(3));
        assert_eq!(f.client_flags, Some(5));
        assert_eq!(f.ttl, Some(-1));
        assert_eq!(f.cas, Some(76));
        assert_eq!(f.key, Some(Key::new("foo").unwrap()));
        assert_eq!(f.hit, Some(true));
        assert_eq!(f.last_access, Some(0));
        assert_eq!(f.opaque, Some(Opaque::new(b"opaque123").unwrap()));
        let b: &[u8] = b"kZm9vYmlu b";
        let f = MetaReturnFlags::parse(b.split(|&b| b == b' ')).unwrap();
        assert_eq!(f.key, Some(Key::binary(b"foobin").unwrap()));
        let wrapped: &[u8] = b"t4294966879";
        let f = MetaReturnFlags::parse(wrapped.split(|&b| b == b' ')).unwrap();
        assert_eq!(f.ttl, Some(4294966879));
        let dup: &[u8] = b"c1 c2";
        assert!(MetaReturnFlags::parse(dup.split(|&b| b == b' ')).is_err());
    }
}
