//! Round-trip properties of the codec: every request and every response encodes to bytes that
//! decode back to the same value, whatever the split of those bytes, alone or in a pipeline.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod strategies;

use bytes::{Bytes, BytesMut};
use mcache_proto::meta::request::MetaGet;
use mcache_proto::text::request::{Retrieve, RetrieveCommand, Store, StoreCommand};
use mcache_proto::{
    EncodeError, Expect, Key, KeyError, Limits, Request, Response, ResponseDecoder, Value,
};
use proptest::collection::vec;
use proptest::prelude::*;
use strategies::*;

/// Requests of every text command that takes keys, with a binary key in them.
fn text_request_with_binary_key() -> impl Strategy<Value = Request> {
    (binary_key(), vec(text_key(), 0..3), any::<usize>(), 0..6u8).prop_map(
        |(bin, mut others, at, which)| match which {
            0 => {
                let at = at % (others.len() + 1);
                others.insert(at, bin);
                Request::Retrieve(Retrieve {
                    command: RetrieveCommand::Gets,
                    keys: others,
                })
            }
            1 => Request::Store(Store {
                command: StoreCommand::Set,
                key: bin,
                flags: 0,
                exptime: 0,
                value: Bytes::from_static(b"x"),
                noreply: false,
            }),
            2 => Request::Delete {
                key: bin,
                noreply: true,
            },
            3 => Request::Incr {
                key: bin,
                delta: 1,
                noreply: false,
            },
            4 => Request::Decr {
                key: bin,
                delta: 1,
                noreply: false,
            },
            _ => Request::Touch {
                key: bin,
                exptime: 1,
                noreply: false,
            },
        },
    )
}

proptest! {
    #![proptest_config(config(2000))]

    /// (a) encode, then decode: the same request, every byte consumed.
    #[test]
    fn request_roundtrip(req in request()) {
        let bytes = encode_request(&req);
        let mut buf = BytesMut::from(&bytes[..]);
        let got = Request::decode(&mut buf, &Limits::server());
        prop_assert_eq!(got, Ok(Some(req.clone())), "wire: {:?}", bytes.escape_ascii().to_string());
        prop_assert!(buf.is_empty(), "left over: {:?}", buf);
        // The line of every command but get/gets stays under the server's 2048-byte limit.
        if !matches!(&req, Request::Retrieve(r) if matches!(r.command, RetrieveCommand::Get | RetrieveCommand::Gets)) {
            let line = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
            prop_assert!(line <= 2048, "line of {} bytes", line);
        }
    }

    /// (b) encode, then decode against the expectation: the same response, every byte consumed.
    #[test]
    fn response_roundtrip((resp, expect) in response()) {
        let bytes = resp.to_bytes();
        let mut buf = BytesMut::from(&bytes[..]);
        let got = ResponseDecoder::default().decode(&expect, &mut buf);
        prop_assert_eq!(got, Ok(Some(resp.clone())), "wire: {:?}", bytes.escape_ascii().to_string());
        prop_assert!(buf.is_empty(), "left over: {:?}", buf);
    }
}

proptest! {
    #![proptest_config(config(512))]

    /// Text commands refuse binary keys, and write nothing.
    #[test]
    fn text_commands_refuse_binary_keys(req in text_request_with_binary_key()) {
        let mut out = b"untouched".to_vec();
        let r = req.encode(&mut out, &Limits::default());
        prop_assert_eq!(r, Err(EncodeError::Key(KeyError::BinaryInTextCommand)));
        prop_assert_eq!(&out[..], b"untouched");
        prop_assert!(req.check(&Limits::default()).is_err());
    }

    /// (c) a request split in two anywhere: `None` (nothing consumed) until the last byte.
    #[test]
    fn request_every_split(req in request()) {
        let bytes = encode_request(&req);
        for cut in 0..bytes.len() {
            let mut buf = BytesMut::from(&bytes[..cut]);
            prop_assert_eq!(Request::decode(&mut buf, &Limits::server()), Ok(None), "cut at {}", cut);
            prop_assert_eq!(buf.len(), cut, "nothing consumed before the request is whole");
            buf.extend_from_slice(&bytes[cut..]);
            prop_assert_eq!(Request::decode(&mut buf, &Limits::server()), Ok(Some(req.clone())), "cut at {}", cut);
            prop_assert!(buf.is_empty());
        }
    }

    /// (c) a response split in two anywhere: `None` until the last byte, then the response.
    #[test]
    fn response_every_split((resp, expect) in response()) {
        let bytes = resp.to_bytes();
        for cut in 0..bytes.len() {
            let mut dec = ResponseDecoder::default();
            let mut buf = BytesMut::from(&bytes[..cut]);
            prop_assert_eq!(dec.decode(&expect, &mut buf), Ok(None), "cut at {}", cut);
            buf.extend_from_slice(&bytes[cut..]);
            prop_assert_eq!(dec.decode(&expect, &mut buf), Ok(Some(resp.clone())), "cut at {}", cut);
            prop_assert!(buf.is_empty());
        }
    }

    /// (c) one byte at a time, and in random chunks.
    #[test]
    fn request_byte_by_byte_and_chunks(req in request(), sizes in vec(1usize..64, 1..8)) {
        let bytes = encode_request(&req);
        let (got, rest) = decode_requests(&chunks(&bytes, &[1])).unwrap();
        prop_assert_eq!(got, vec![req.clone()]);
        prop_assert!(rest.is_empty());
        let (got, rest) = decode_requests(&chunks(&bytes, &sizes)).unwrap();
        prop_assert_eq!(got, vec![req]);
        prop_assert!(rest.is_empty());
    }

    /// (c) one byte at a time, and in random chunks.
    #[test]
    fn response_byte_by_byte_and_chunks((resp, expect) in response(), sizes in vec(1usize..64, 1..8)) {
        let bytes = resp.to_bytes();
        let expects = [expect];
        let (got, rest) = decode_responses(&chunks(&bytes, &[1]), &expects).unwrap();
        prop_assert_eq!(got, vec![resp.clone()]);
        prop_assert!(rest.is_empty());
        let (got, rest) = decode_responses(&chunks(&bytes, &sizes), &expects).unwrap();
        prop_assert_eq!(got, vec![resp]);
        prop_assert!(rest.is_empty());
    }

    /// (c) a pipeline of requests, in one buffer and in random chunks.
    #[test]
    fn request_pipeline(reqs in vec(request(), 1..=6), sizes in vec(1usize..200, 1..8)) {
        let bytes: Vec<u8> = reqs.iter().flat_map(encode_request).collect();
        let (got, rest) = decode_requests(&[&bytes]).unwrap();
        prop_assert_eq!(&got, &reqs);
        prop_assert!(rest.is_empty());
        let (got, rest) = decode_requests(&chunks(&bytes, &sizes)).unwrap();
        prop_assert_eq!(&got, &reqs);
        prop_assert!(rest.is_empty());
    }

    /// (c) a pipeline of responses, each decoded against its own expectation.
    #[test]
    fn response_pipeline(pairs in vec(response(), 1..=6), sizes in vec(1usize..200, 1..8)) {
        let bytes: Vec<u8> = pairs.iter().flat_map(|(r, _)| r.to_bytes()).collect();
        let (resps, expects): (Vec<Response>, Vec<Expect>) = pairs.into_iter().unzip();
        let (got, rest) = decode_responses(&[&bytes], &expects).unwrap();
        prop_assert_eq!(&got, &resps);
        prop_assert!(rest.is_empty());
        let (got, rest) = decode_responses(&chunks(&bytes, &sizes), &expects).unwrap();
        prop_assert_eq!(&got, &resps);
        prop_assert!(rest.is_empty());
        let (got, rest) = decode_responses(&chunks(&bytes, &[1]), &expects).unwrap();
        prop_assert_eq!(&got, &resps);
        prop_assert!(rest.is_empty());
    }
}

// ---------------------------------------------------------------------------------------------
// Regressions and fixed examples

fn key(s: &str) -> Key {
    Key::new(s).unwrap()
}

/// A `VALUE` line whose data block arrives in a later read used to advance the key cursor
/// twice: the retry failed with `Mismatch`.
#[test]
fn value_split_inside_data_block() {
    let expect = Expect::Values {
        keys: vec![key("foo"), key("bar")],
        cas: false,
    };
    let mut dec = ResponseDecoder::default();
    let mut buf = BytesMut::from(&b"VALUE foo 5 3\r\nba"[..]);
    assert_eq!(dec.decode(&expect, &mut buf), Ok(None));
    buf.extend_from_slice(b"r\r\nVALUE bar 0 1\r\n");
    assert_eq!(dec.decode(&expect, &mut buf), Ok(None));
    buf.extend_from_slice(b"x\r\nEND\r\n");
    let want = Response::Values(vec![
        Value {
            key: key("foo"),
            flags: 5,
            cas: None,
            data: Bytes::from_static(b"bar"),
        },
        Value {
            key: key("bar"),
            flags: 0,
            cas: None,
            data: Bytes::from_static(b"x"),
        },
    ]);
    assert_eq!(dec.decode(&expect, &mut buf), Ok(Some(want)));
    assert!(buf.is_empty());
}

/// Duplicate keys: the same key asked twice comes back twice, even split in its data block.
#[test]
fn duplicate_keys_split() {
    let expect = Expect::Values {
        keys: vec![key("foo"), key("missing"), key("foo")],
        cas: true,
    };
    let bytes = b"VALUE foo 5 3 1\r\nbar\r\nVALUE foo 5 3 1\r\nbar\r\nEND\r\n";
    let (got, _) = decode_responses(&chunks(bytes, &[1]), &[expect]).unwrap();
    let Response::Values(v) = &got[0] else {
        panic!("{got:?}")
    };
    assert_eq!(v.len(), 2);
    assert!(v.iter().all(|v| v.key == key("foo") && v.cas == Some(1)));
}

/// `delete noreply` deletes the key `noreply` and expects a reply (memcached only reads a
/// trailing `noreply` after the key); it used to be refused by the decoder.
#[test]
fn delete_of_key_named_noreply() {
    for noreply in [false, true] {
        let req = Request::Delete {
            key: key("noreply"),
            noreply,
        };
        let bytes = encode_request(&req);
        let mut buf = BytesMut::from(&bytes[..]);
        assert_eq!(
            Request::decode(&mut buf, &Limits::server()),
            Ok(Some(req)),
            "{}",
            bytes.escape_ascii()
        );
    }
}

/// Leading spaces before `stats` used to be sliced into its arguments (`  stats` read as
/// `stats ts`).
#[test]
fn stats_with_leading_spaces() {
    let mut buf = BytesMut::from(&b"  stats\r\n"[..]);
    assert_eq!(
        Request::decode(&mut buf, &Limits::server()),
        Ok(Some(Request::Stats { args: None }))
    );
    let mut buf = BytesMut::from(&b" stats  items\r\n"[..]);
    assert_eq!(
        Request::decode(&mut buf, &Limits::server()),
        Ok(Some(Request::Stats {
            args: Some(Bytes::from_static(b"items"))
        }))
    );
}

/// Fixed wire forms, as memcached writes and reads them.
#[test]
fn wire_examples() {
    let mg = Request::MetaGet(Box::new(MetaGet::new(Key::binary(b"foo").unwrap())));
    assert_eq!(encode_request(&mg), b"mg Zm9v b\r\n");
    let store = Request::Store(Store {
        command: StoreCommand::Cas(7),
        key: key("k"),
        flags: 1,
        exptime: -1,
        value: Bytes::from_static(b"a\r\nb"),
        noreply: true,
    });
    assert_eq!(
        encode_request(&store),
        b"cas k 1 -1 4 7 noreply\r\na\r\nb\r\n"
    );
    assert_eq!(
        encode_request(&Request::FlushAll {
            delay: Some(0),
            noreply: true
        }),
        b"flush_all 0 noreply\r\n"
    );
}

/// memcached 1.6.40+ follows a retrieval's `CLIENT_ERROR` with a stray empty line: it is
/// skipped, whatever the split, and only there.
#[test]
fn stray_empty_line_after_retrieval_client_error() {
    let values = Expect::Values {
        keys: vec![key("foo")],
        cas: false,
    };
    let client_error = Response::Error {
        kind: mcache_proto::ErrorKind::Client,
        message: Bytes::from_static(b"bad command line format"),
    };
    let bytes = b"CLIENT_ERROR bad command line format\r\n\r\nSTORED\r\n";
    let expects = [values.clone(), Expect::Storage];
    for size in 1..bytes.len() {
        let (got, rest) = decode_responses(&chunks(bytes, &[size]), &expects).unwrap();
        assert_eq!(
            got,
            vec![client_error.clone(), Response::Stored],
            "chunks of {size}"
        );
        assert!(rest.is_empty());
    }
    // Without the stray line (memcached 1.6.18) the next reply decodes the same.
    let bytes = b"CLIENT_ERROR bad command line format\r\nSTORED\r\n";
    let (got, _) = decode_responses(&chunks(bytes, &[1]), &expects).unwrap();
    assert_eq!(got, vec![client_error.clone(), Response::Stored]);
    // After any other reply an empty line is an error.
    let bytes = b"SERVER_ERROR x\r\n\r\nSTORED\r\n";
    assert!(decode_responses(&[bytes], &expects).is_err());
    let bytes = b"CLIENT_ERROR x\r\n\r\nSTORED\r\n";
    assert!(decode_responses(&[bytes], &[Expect::Storage, Expect::Storage]).is_err());
}
