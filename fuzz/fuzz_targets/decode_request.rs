//! `Request::decode` (server side) over arbitrary client bytes, with round trips.
//!
//! Input: `<mode> <n> <n chunk sizes> <client bytes>`. Bit 0 of `mode` picks small limits
//! instead of `Limits::server()`. The bytes are decoded once fed in chunks and once whole.
//!
//! Checks:
//! - no panic; the chunked and the whole decoding yield the same requests (and both stop on an
//!   error or both do not);
//! - every decoded request re-encodes (unless the encoder's stricter 2048-byte line limit refuses
//!   it) and its bytes decode to exactly one request, equal to it, consuming them all: encoded
//!   bytes can never carry a second command;
//! - any strict prefix of those bytes decodes to nothing and consumes nothing.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use mcache_fuzz::{chunk_header, chunks, small_limits, Cursor};
use mcache_proto::{EncodeError, Limits, Request};

/// Decodes requests until `None` or an error; returns them and whether it stopped on an error.
fn decode_all<'a>(pieces: impl Iterator<Item = &'a [u8]>, limits: &Limits) -> (Vec<Request>, bool) {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            let before = buf.len();
            match Request::decode(&mut buf, limits) {
                Ok(Some(r)) => {
                    assert!(buf.len() < before, "a request must consume bytes");
                    out.push(r);
                }
                Ok(None) => {
                    assert_eq!(buf.len(), before, "nothing is consumed without a request");
                    break;
                }
                Err(_) => return (out, true),
            }
        }
    }
    (out, false)
}

fn round_trip(req: &Request, limits: &Limits) {
    let mut wire = Vec::new();
    match req.encode(&mut wire, limits) {
        Ok(()) => {}
        // Decoding accepts long gat/stats lines that the encoder refuses to send.
        Err(EncodeError::LineTooLong { .. }) => return,
        Err(e) => panic!("decoded request {req:?} does not encode: {e}"),
    }
    let mut buf = BytesMut::from(&wire[..]);
    let again = Request::decode(&mut buf, limits).unwrap_or_else(|e| {
        panic!(
            "{:?} from {req:?} does not decode: {e}",
            wire.escape_ascii()
        )
    });
    assert_eq!(again.as_ref(), Some(req), "{:?}", wire.escape_ascii());
    assert!(
        buf.is_empty(),
        "encoded bytes hold more than one request: {:?}",
        wire.escape_ascii()
    );
    // A prefix is incomplete: nothing decoded, nothing consumed.
    for cut in [1, 2, wire.len() / 2] {
        if cut == 0 || cut >= wire.len() {
            continue;
        }
        let mut buf = BytesMut::from(&wire[..wire.len() - cut]);
        let len = buf.len();
        assert_eq!(
            Request::decode(&mut buf, limits),
            Ok(None),
            "prefix of {:?}",
            wire.escape_ascii()
        );
        assert_eq!(buf.len(), len);
    }
}

fuzz_target!(|data: &[u8]| {
    let mut c = Cursor::new(data);
    let mode = c.byte();
    let sizes = chunk_header(&mut c);
    let payload = c.rest();
    let limits = if mode & 1 != 0 {
        small_limits()
    } else {
        Limits::server()
    };
    let (chunked, chunked_err) = decode_all(chunks(sizes, payload), &limits);
    let (whole, whole_err) = decode_all(std::iter::once(payload), &limits);
    assert_eq!(
        chunked, whole,
        "decoding depends on how the bytes are split"
    );
    assert_eq!(
        chunked_err, whole_err,
        "decoding depends on how the bytes are split"
    );
    for req in &whole {
        round_trip(req, &limits);
    }
});
