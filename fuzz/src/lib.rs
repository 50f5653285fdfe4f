//! Helpers shared by the fuzz targets in `fuzz_targets/`.
//!
//! The targets read plain byte formats (documented on each target) rather than `arbitrary`
//! structures, so that `scripts/make-fuzz-seeds.py` can turn the byte-exact examples of the
//! protocol notes into seeds.

use mcache_proto::{Expect, Key, Limits, Opaque};

/// Reads an input front to back; every read past the end yields zeros / nothing.
pub struct Cursor<'a> {
    data: &'a [u8],
}

impl<'a> Cursor<'a> {
    /// A cursor over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Cursor { data }
    }

    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next byte, 0 past the end.
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// The next `n` bytes (fewer at the end).
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        self.take(self.data.len())
    }
}

/// Splits `payload` into chunks whose sizes cycle through `sizes` (each `1 + size`); one
/// chunk when `sizes` is empty.
pub fn chunks<'a>(sizes: &'a [u8], payload: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut rest = payload;
    let mut i = 0usize;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let n = if sizes.is_empty() {
            rest.len()
        } else {
            usize::from(sizes[i % sizes.len()]) + 1
        };
        i += 1;
        let (head, tail) = rest.split_at(n.min(rest.len()));
        rest = tail;
        Some(head)
    })
}

/// Reads the common header `<n> <n chunk sizes>` (n taken mod 8) and returns the chunk sizes.
pub fn chunk_header<'a>(c: &mut Cursor<'a>) -> &'a [u8] {
    let n = usize::from(c.byte() % 8);
    c.take(n)
}

/// Small limits, so that the fuzzer reaches them quickly.
pub fn small_limits() -> Limits {
    Limits {
        max_value_len: 1024,
        max_line_len: 256,
        max_entries: 16,
        max_reply_len: 2048,
    }
}

fn key(s: &str) -> Key {
    Key::new(s).expect("valid fixed key")
}

fn opaque(s: &[u8]) -> Opaque {
    Opaque::new(s).expect("valid fixed opaque")
}

/// The expectations `decode_response` picks from with its first byte.
pub const EXPECTS: usize = 24;

/// The `i`-th expectation (mod [`EXPECTS`]). The seed script keeps its own copy of this order.
pub fn expect_for(i: u8) -> Expect {
    let meta = |command: &'static str, k: Key, o: Option<&[u8]>, value: bool| Expect::Meta {
        command,
        key: k,
        opaque: o.map(opaque),
        value,
    };
    match usize::from(i) % EXPECTS {
        0 => Expect::Values {
            keys: vec![key("foo")],
            cas: false,
        },
        1 => Expect::Values {
            keys: vec![key("foo")],
            cas: true,
        },
        2 => Expect::Values {
            keys: vec![key("foo"), key("missing"), key("foo")],
            cas: false,
        },
        3 => Expect::Values {
            keys: vec![key("foo"), key("bar"), key("tk")],
            cas: true,
        },
        4 => Expect::Storage,
        5 => Expect::Delete,
        6 => Expect::Arithmetic,
        7 => Expect::Touch,
        8 => Expect::Ok,
        9 => Expect::Version,
        10 => Expect::Stats,
        11 => meta("mg", key("foo"), None, true),
        12 => meta("mg", key("foo"), Some(b"opaque123"), true),
        13 => meta("ms", key("foo"), None, false),
        14 => meta("ms", key("foo"), Some(b"xyz"), false),
        15 => meta("md", key("foo"), None, false),
        16 => meta("md", key("foo"), Some(b"op"), false),
        17 => meta("ma", key("foo"), None, true),
        18 => meta("ma", key("foo"), Some(b"o1"), true),
        19 => meta(
            "mg",
            Key::binary(b"\x00\xffbin\r\n key").expect("valid binary key"),
            None,
            true,
        ),
        20 => Expect::MetaNoop,
        21 => Expect::MetaDebug,
        22 => Expect::Values {
            keys: vec![key("a"), key("b")],
            cas: false,
        },
        _ => meta("mg", key("nokey_mg"), Some(b"ab"), true),
    }
}
