//! Meta command flags: `mg|ms|md|ma <key> [<datalen>] <fuzzed tokens>\r\n[<data>\r\n]`.
//!
//! Input: `<command> <datalen> <flag bytes>`. Bits 0-1 of `command` pick mg/ms/md/ma, bits 2-4
//! one of a few keys (text keys, or base64 ones sent with a `b` flag); the flag bytes make the
//! rest of the line (a `\n` in them becomes a space, so the line stays one line); `ms` carries a
//! data block of `datalen` bytes.
//!
//! Checks: no panic; a decoded request is the command asked for with the key given, consumes
//! the whole line (and block), re-encodes, and decodes back to itself.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use mcache_fuzz::Cursor;
use mcache_proto::{Key, Limits, Request};

const KEYS: [(&[u8], bool); 8] = [
    (b"foo", false),
    (b"k:1", false),
    (b"a", false),
    (b"AP9iaW4NCiBrZXk=", true),
    (b"Zm9v", true),
    (b"nokey_mg", false),
    // A text key that looks like base64 but is sent without `b`.
    (b"Zm9v", false),
    (b"AQI=", true),
];

fuzz_target!(|data: &[u8]| {
    let mut c = Cursor::new(data);
    let command = c.byte();
    let datalen = usize::from(c.byte());
    let flags: Vec<u8> = c
        .rest()
        .iter()
        .map(|&b| if b == b'\n' { b' ' } else { b })
        .collect();
    let name: &[u8] = [b"mg", b"ms", b"md", b"ma"][usize::from(command & 3)];
    let (key_wire, binary) = KEYS[usize::from(command >> 2) % KEYS.len()];
    let mut line = Vec::with_capacity(flags.len() + 32);
    line.extend_from_slice(name);
    line.push(b' ');
    line.extend_from_slice(key_wire);
    if name == b"ms" {
        line.extend_from_slice(format!(" {datalen}").as_bytes());
    }
    if binary {
        line.extend_from_slice(b" b");
    }
    if !flags.is_empty() {
        line.push(b' ');
        line.extend_from_slice(&flags);
    }
    line.extend_from_slice(b"\r\n");
    if name == b"ms" {
        line.extend(std::iter::repeat_n(b'v', datalen));
        line.extend_from_slice(b"\r\n");
    }

    let limits = Limits::server();
    let mut buf = BytesMut::from(&line[..]);
    let Ok(decoded) = Request::decode(&mut buf, &limits) else {
        return;
    };
    // A `b` in the fuzzed flags is a duplicate or turns a text key binary: both are fine, but
    // then the key differs from the one given.
    let Some(req) = decoded else {
        panic!("a whole line decoded to nothing: {:?}", line.escape_ascii());
    };
    assert!(
        buf.is_empty(),
        "one line, one request: {:?}",
        line.escape_ascii()
    );
    assert_eq!(req.command_name().as_bytes(), name);
    let key = match &req {
        Request::MetaGet(m) => &m.key,
        Request::MetaSet(m) => {
            assert_eq!(m.value.len(), datalen);
            &m.key
        }
        Request::MetaDelete(m) => &m.key,
        Request::MetaArithmetic(m) => &m.key,
        other => panic!("{:?} decoded to {other:?}", line.escape_ascii()),
    };
    assert_eq!(key.wire(), key_wire);
    if binary {
        assert!(key.is_binary());
        let raw = key.decoded();
        assert_eq!(Key::binary(&raw).ok().as_ref(), Some(key));
    }

    let mut wire = Vec::new();
    req.encode(&mut wire, &limits)
        .unwrap_or_else(|e| panic!("{req:?} does not encode: {e}"));
    let mut buf = BytesMut::from(&wire[..]);
    let again = Request::decode(&mut buf, &limits)
        .unwrap_or_else(|e| panic!("{:?} does not decode: {e}", wire.escape_ascii()));
    assert_eq!(again.as_ref(), Some(&req), "{:?}", wire.escape_ascii());
    assert!(buf.is_empty());
});
