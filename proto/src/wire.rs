//! Shared wire grammar: finding line ends, splitting tokens, reading and writing numbers.
//!
//! Everything here works on byte slices and never allocates; it must never panic on any input.

use crate::error::{DecodeError, Snippet};
use bytes::BufMut;

/// Limits that bound memory against a hostile or broken peer.
///
/// What one connection holds is bounded by them, whatever the server sends: its input buffer
/// holds at most one unfinished frame (a line of at most `max_line_len`, or a value's header
/// line and data, at most `max_line_len + max_value_len + 2`) plus one read, and the part of
/// a multi-entry reply decoded so far holds at most `max_reply_len` bytes of values and lines
/// (and `max_entries` entries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest value accepted in either direction (memcached's `-I`, default 1 MiB). A declared
    /// length over it is an error before any allocation.
    pub max_value_len: usize,
    /// Longest line accepted while decoding, `\r\n` included.
    pub max_line_len: usize,
    /// Most entries (`STAT` lines, values) accepted in one response.
    pub max_entries: usize,
    /// The most bytes of values and lines one reply may hold (a multi-get's values and keys,
    /// a `stats` listing's names and values, a meta reply's value); default 64 MiB. A reply
    /// that would pass it is refused with [`DecodeError::ReplyTooLarge`] before its memory is
    /// taken: a value's declared length is checked against what remains before its data is
    /// buffered, a line before it is kept.
    pub max_reply_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_value_len: 1024 * 1024,
            max_line_len: 8 * 1024,
            max_entries: 100_000,
            max_reply_len: 64 * 1024 * 1024,
        }
    }
}

impl Limits {
    /// Limits for decoding requests on a server: a multi-key `get` line may be long.
    pub fn server() -> Self {
        Limits {
            max_line_len: 1024 * 1024,
            ..Limits::default()
        }
    }
}

/// The longest non-`get` request line memcached buffers before closing the connection.
pub const MAX_REQUEST_LINE: usize = 2048;

/// Finds the first complete line in `buf`.
///
/// Returns `Ok(Some(n))` where `buf[..n]` is the line without its terminator and `n + 2` bytes
/// (line plus `\r\n`) are to be consumed; `Ok(None)` if no line end is there yet.
/// A line must end with `\r\n`; a bare `\n` is an error (memcached never sends one in replies
/// to the commands modelled here).
pub(crate) fn find_line(buf: &[u8], max: usize) -> Result<Option<usize>, DecodeError> {
    match memchr::memchr(b'\n', buf) {
        Some(nl) => {
            if nl + 1 > max {
                return Err(DecodeError::LineTooLong { max });
            }
            if nl == 0 || buf[nl - 1] != b'\r' {
                return Err(DecodeError::Unexpected {
                    expected: "line ending with \\r\\n",
                    line: Snippet::new(&buf[..nl + 1]),
                });
            }
            Ok(Some(nl - 1))
        }
        None if buf.len() >= max => Err(DecodeError::LineTooLong { max }),
        None => Ok(None),
    }
}

/// Splits a line on single spaces, as memcached writes its replies.
pub(crate) struct Tokens<'a> {
    rest: &'a [u8],
}

impl<'a> Tokens<'a> {
    /// Tokens of `line` (which has no line terminator).
    pub(crate) fn new(line: &'a [u8]) -> Self {
        Tokens { rest: line }
    }

    /// What is left after the tokens taken so far, without its leading spaces.
    pub(crate) fn remainder(&self) -> &'a [u8] {
        let start = self
            .rest
            .iter()
            .position(|&b| b != b' ')
            .unwrap_or(self.rest.len());
        &self.rest[start..]
    }
}

impl<'a> Iterator for Tokens<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let start = self.rest.iter().position(|&b| b != b' ')?;
        let rest = &self.rest[start..];
        // A plain loop: tokens are a few bytes, shorter than `memchr`'s set-up.
        let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
        self.rest = &rest[end..];
        Some(&rest[..end])
    }
}

/// Parses a canonical unsigned decimal (digits only, no sign, at most 20 digits).
pub(crate) fn parse_u64(field: &'static str, bytes: &[u8]) -> Result<u64, DecodeError> {
    let bad = || DecodeError::InvalidNumber {
        field,
        found: Snippet::new(bytes),
    };
    if bytes.is_empty() || bytes.len() > 20 {
        return Err(bad());
    }
    let mut n: u64 = 0;
    for &b in bytes {
        if !b.is_ascii_digit() {
            return Err(bad());
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
            .ok_or_else(bad)?;
    }
    Ok(n)
}

/// A decimal of 1 to 19 digits (so it cannot overflow a `u64`), without building an error:
/// `None` for anything else, which [`parse_u64`] then judges. For the hot paths' common case.
#[inline]
pub(crate) fn short_number(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() || bytes.len() > 19 {
        return None;
    }
    bytes.iter().try_fold(0u64, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0'))
    })
}

/// Parses an unsigned decimal that must fit a `u32`.
pub(crate) fn parse_u32(field: &'static str, bytes: &[u8]) -> Result<u32, DecodeError> {
    let n = parse_u64(field, bytes)?;
    u32::try_from(n).map_err(|_| DecodeError::InvalidNumber {
        field,
        found: Snippet::new(bytes),
    })
}

/// Parses a signed decimal (optional leading `-`) that must fit an `i64`.
pub(crate) fn parse_i64(field: &'static str, bytes: &[u8]) -> Result<i64, DecodeError> {
    let bad = || DecodeError::InvalidNumber {
        field,
        found: Snippet::new(bytes),
    };
    match bytes.split_first() {
        Some((b'-', digits)) => {
            let n = parse_u64(field, digits).map_err(|_| bad())?;
            if n > i64::MAX as u64 + 1 {
                return Err(bad());
            }
            Ok((n as i128).wrapping_neg() as i64)
        }
        _ => {
            let n = parse_u64(field, bytes)?;
            i64::try_from(n).map_err(|_| bad())
        }
    }
}

/// Parses a signed decimal that must fit an `i32` (exptimes, TTLs).
pub(crate) fn parse_i32(field: &'static str, bytes: &[u8]) -> Result<i32, DecodeError> {
    let n = parse_i64(field, bytes)?;
    i32::try_from(n).map_err(|_| DecodeError::InvalidNumber {
        field,
        found: Snippet::new(bytes),
    })
}

/// Parses a length that must be at most `max` (checked before anything is allocated).
pub(crate) fn parse_len(bytes: &[u8], max: usize) -> Result<usize, DecodeError> {
    let n = parse_u64("data length", bytes)?;
    if n > max as u64 {
        return Err(DecodeError::ValueTooLarge { len: n, max });
    }
    // n <= max, which is a usize.
    Ok(n as usize)
}

/// Writes an unsigned decimal.
pub(crate) fn put_u64(buf: &mut impl BufMut, n: u64) {
    let mut b = itoa::Buffer::new();
    buf.put_slice(b.format(n).as_bytes());
}

/// Writes a signed decimal.
pub(crate) fn put_i64(buf: &mut impl BufMut, n: i64) {
    let mut b = itoa::Buffer::new();
    buf.put_slice(b.format(n).as_bytes());
}

/// Number of bytes a signed decimal takes.
pub(crate) fn len_i64(n: i64) -> usize {
    let mut b = itoa::Buffer::new();
    b.format(n).len()
}

/// Whether `b` can appear in a token (a key-like word): printable, not a space or DEL.
pub(crate) fn is_token_byte(b: u8) -> bool {
    b > b' ' && b != 0x7f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        assert_eq!(find_line(b"END\r\n", 100), Ok(Some(3)));
        assert_eq!(find_line(b"END\r", 100), Ok(None));
        assert_eq!(find_line(b"", 100), Ok(None));
        assert!(find_line(b"END\n", 100).is_err());
        assert!(find_line(b"\n", 100).is_err());
        assert_eq!(
            find_line(b"aaaa", 4),
            Err(DecodeError::LineTooLong { max: 4 })
        );
        assert_eq!(find_line(b"aa\r\n", 4), Ok(Some(2)));
        assert!(find_line(b"aaa\r\n", 4).is_err());
    }

    #[test]
    fn tokens() {
        let t: Vec<&[u8]> = Tokens::new(b"VALUE  foo 5 3").collect();
        assert_eq!(t, vec![&b"VALUE"[..], b"foo", b"5", b"3"]);
        let mut t = Tokens::new(b"STAT version 1.6 x  y");
        t.next();
        t.next();
        assert_eq!(t.remainder(), b"1.6 x  y");
        assert_eq!(Tokens::new(b"   ").next(), None);
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_u64("n", b"18446744073709551615"), Ok(u64::MAX));
        assert!(parse_u64("n", b"18446744073709551616").is_err());
        assert!(parse_u64("n", b"+1").is_err());
        assert!(parse_u64("n", b"").is_err());
        assert!(parse_u64("n", b"1a").is_err());
        assert_eq!(parse_u64("n", b"0001"), Ok(1));
        assert_eq!(parse_i64("n", b"-1"), Ok(-1));
        assert_eq!(parse_i64("n", b"-9223372036854775808"), Ok(i64::MIN));
        assert!(parse_i64("n", b"-9223372036854775809").is_err());
        assert!(parse_i64("n", b"-").is_err());
        assert_eq!(parse_i32("n", b"-2147483648"), Ok(i32::MIN));
        assert!(parse_i32("n", b"2147483648").is_err());
        assert!(parse_u32("n", b"4294967296").is_err());
        assert_eq!(parse_len(b"10", 10), Ok(10));
        assert_eq!(
            parse_len(b"4294967297", 10),
            Err(DecodeError::ValueTooLarge {
                len: 4294967297,
                max: 10
            })
        );
    }
}
