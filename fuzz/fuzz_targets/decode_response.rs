//! `ResponseDecoder::decode` over arbitrary server bytes.
//!
//! Input: `<expect selector> <n> <n chunk sizes> <server bytes>`. The selector picks an
//! `Expect` (`mcache_fuzz::expect_for(sel & 0x7f)`) and, with its high bit, the default limits
//! instead of small ones. The server bytes are fed in chunks; after each chunk, replies are
//! decoded until `None` or an error.
//!
//! Checks: no panic; every reply consumes bytes; the read buffer never holds more than the input
//! and never reserves more than the limits allow (a declared length is checked before anything
//! is allocated).

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use mcache_fuzz::{chunk_header, chunks, expect_for, small_limits, Cursor};
use mcache_proto::{Limits, ResponseDecoder};

fuzz_target!(|data: &[u8]| {
    let mut c = Cursor::new(data);
    let sel = c.byte();
    let sizes = chunk_header(&mut c);
    let payload = c.rest();
    let expect = expect_for(sel & 0x7f);
    let limits = if sel & 0x80 != 0 {
        Limits::default()
    } else {
        small_limits()
    };
    // Vec-style doubling may double what was needed at most: the bytes not yet consumed (at
    // most the input) plus one frame head and one maximal value.
    let bound = 2 * (payload.len() + limits.max_line_len + limits.max_value_len + 2);
    let mut dec = ResponseDecoder::new(limits);
    let mut buf = BytesMut::new();
    'feed: for chunk in chunks(sizes, payload) {
        buf.extend_from_slice(chunk);
        loop {
            let before = buf.len();
            let r = dec.decode(&expect, &mut buf);
            assert!(buf.len() <= payload.len());
            assert!(
                buf.capacity() <= bound,
                "read buffer reserved {} bytes (bound {bound})",
                buf.capacity()
            );
            match r {
                Ok(Some(_)) => assert!(buf.len() < before, "a reply must consume bytes"),
                Ok(None) => break,
                // The connection would be poisoned here: nothing more is read.
                Err(_) => break 'feed,
            }
        }
    }
});
