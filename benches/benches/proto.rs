//! criterion benches for mcache-proto: encoding requests, decoding reply streams, and the
//! `Connection` state machine's cost per request. No sockets: bytes in, bytes out.
//!
//! `cargo bench -p mcache-benches --bench proto -- --warm-up-time 1 --measurement-time 3`
//!
//! Each bench reports frames per second (requests encoded, replies decoded; a 100-key multi-get
//! is one frame) and bytes per second (the wire bytes written or read).

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use mcache_proto::meta::request::{MetaGet, MetaSet};
use mcache_proto::text::request::{Retrieve, RetrieveCommand, Store, StoreCommand};
use mcache_proto::{
    Connection, Expect, Key, Limits, MetaGetFlags, MetaResponse, MetaReturnFlags, MetaSetFlags,
    MetaStatus, Opaque, Request, Response, ResponseDecoder, Value,
};
use std::hint::black_box;
use std::time::Instant;

const KIB_64: usize = 64 * 1024;

fn key(s: &str) -> Key {
    Key::new(s).expect("benchmark keys are valid")
}

fn get(keys: Vec<Key>) -> Request {
    Request::Retrieve(Retrieve {
        command: RetrieveCommand::Get,
        keys,
    })
}

fn set(k: &str, len: usize) -> Request {
    Request::Store(Store {
        command: StoreCommand::Set,
        key: key(k),
        flags: 0,
        exptime: 0,
        value: Bytes::from(vec![b'v'; len]),
        noreply: false,
    })
}

fn throughput(frames: u64, bytes: usize) -> Throughput {
    Throughput::ElementsAndBytes {
        elements: frames,
        bytes: bytes as u64,
    }
}

fn encode(c: &mut Criterion) {
    let limits = Limits::default();
    let keys100: Vec<Key> = (0..100)
        .map(|i| key(&format!("user:profile:{i}")))
        .collect();
    let cases = [
        ("get", get(vec![key("user:profile:42")])),
        ("set 100 B", set("user:profile:42", 100)),
        ("set 64 KiB", set("user:profile:42", KIB_64)),
        ("get_multi 100 keys", get(keys100)),
    ];
    let mut g = c.benchmark_group("encode");
    for (name, req) in &cases {
        let len = req.to_bytes(&limits).expect("encodes").len();
        g.throughput(throughput(1, len));
        let mut buf = BytesMut::with_capacity(len);
        g.bench_function(*name, |b| {
            b.iter(|| {
                buf.clear();
                black_box(req).encode(&mut buf, &limits).expect("encodes");
                black_box(&buf);
            })
        });
    }
    g.finish();
}

/// A stream of `frames` replies and the `Expect` of each.
struct Stream {
    bytes: Vec<u8>,
    expects: Vec<Expect>,
}

impl Stream {
    fn new(replies: impl IntoIterator<Item = (Response, Expect)>) -> Stream {
        let mut bytes = BytesMut::new();
        let mut expects = Vec::new();
        for (r, e) in replies {
            r.encode(&mut bytes);
            expects.push(e);
        }
        Stream {
            bytes: bytes.to_vec(),
            expects,
        }
    }
}

fn value(k: &Key, len: usize) -> Value {
    Value {
        key: k.clone(),
        flags: 0,
        cas: None,
        data: Bytes::from(vec![b'v'; len]),
    }
}

fn get_hits(frames: usize, len: usize) -> Stream {
    Stream::new((0..frames).map(|i| {
        let k = key(&format!("user:profile:{i}"));
        (
            Response::Values(vec![value(&k, len)]),
            Expect::Values {
                keys: vec![k],
                cas: false,
            },
        )
    }))
}

fn meta_va(frames: usize) -> Stream {
    Stream::new((0..frames).map(|i| {
        let opaque = Some(Opaque::from_u32(i as u32));
        let req = Request::MetaGet(Box::new(MetaGet {
            key: key(&format!("user:profile:{i}")),
            flags: MetaGetFlags {
                value: true,
                client_flags: true,
                cas: true,
                opaque,
                ..Default::default()
            },
        }));
        let reply = Response::Meta(Box::new(MetaResponse {
            status: MetaStatus::Va,
            flags: MetaReturnFlags {
                client_flags: Some(0),
                cas: Some(1_000_000 + i as u64),
                opaque,
                ..Default::default()
            },
            value: Some(Bytes::from(vec![b'v'; 100])),
        }));
        (reply, Expect::of(&req).expect("mg expects a reply"))
    }))
}

fn meta_hd(frames: usize) -> Stream {
    Stream::new((0..frames).map(|i| {
        let opaque = Some(Opaque::from_u32(i as u32));
        let req = Request::MetaSet(Box::new(MetaSet {
            key: key(&format!("user:profile:{i}")),
            value: Bytes::from_static(&[b'v'; 100]),
            flags: MetaSetFlags {
                opaque,
                ..Default::default()
            },
        }));
        let reply = Response::Meta(Box::new(MetaResponse {
            status: MetaStatus::Hd,
            flags: MetaReturnFlags {
                opaque,
                ..Default::default()
            },
            value: None,
        }));
        (reply, Expect::of(&req).expect("ms expects a reply"))
    }))
}

fn multi_get_reply(replies: usize) -> Stream {
    Stream::new((0..replies).map(|_| {
        let keys: Vec<Key> = (0..100)
            .map(|i| key(&format!("user:profile:{i}")))
            .collect();
        (
            Response::Values(keys.iter().map(|k| value(k, 100)).collect()),
            Expect::Values { keys, cas: false },
        )
    }))
}

fn decode(c: &mut Criterion) {
    let cases = [
        ("get hit 100 B", get_hits(256, 100)),
        ("get hit 64 KiB", get_hits(16, KIB_64)),
        ("meta VA 100 B (f c O)", meta_va(256)),
        ("meta HD (O)", meta_hd(256)),
        ("get_multi reply 100 keys", multi_get_reply(8)),
    ];
    let mut g = c.benchmark_group("decode");
    for (name, stream) in &cases {
        g.throughput(throughput(stream.expects.len() as u64, stream.bytes.len()));
        let mut dec = ResponseDecoder::default();
        g.bench_function(*name, |b| {
            b.iter_batched_ref(
                || BytesMut::from(&stream.bytes[..]),
                |buf| {
                    for e in &stream.expects {
                        let r = dec.decode(e, buf).expect("decodes");
                        black_box(r.expect("whole frame"));
                    }
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

/// `send` N gets, `transmit` + `advance_transmit`, `receive` the N replies, `poll_response`
/// them all: the state machine's whole cost per request, minus the socket.
fn connection(c: &mut Criterion) {
    let mut g = c.benchmark_group("connection");
    for (name, n, len) in [
        ("get hit 100 B, batch of 1", 1usize, 100usize),
        ("get hit 100 B, batch of 16", 16, 100),
        ("get hit 100 B, batch of 128", 128, 100),
        ("get hit 64 KiB, batch of 1", 1, KIB_64),
    ] {
        let keys: Vec<Key> = (0..n).map(|i| key(&format!("user:profile:{i}"))).collect();
        let replies = get_hits(n, len);
        let out_len: usize = keys.iter().map(|k| k.wire().len() + 6).sum();
        g.throughput(throughput(n as u64, out_len + replies.bytes.len()));
        let mut conn = Connection::default();
        let now = Instant::now();
        g.bench_function(name, |b| {
            b.iter(|| {
                for k in &keys {
                    conn.send(get(vec![k.clone()])).expect("sends");
                }
                let n_out = black_box(conn.transmit()).len();
                conn.advance_transmit(n_out, now);
                conn.receive(&replies.bytes, now);
                let mut got = 0;
                while let Some((_, r)) = conn.poll_response() {
                    black_box(r.expect("a hit"));
                    got += 1;
                }
                assert_eq!(got, n, "every request answered");
            })
        });
    }
    g.finish();
}

criterion_group!(benches, encode, decode, connection);
criterion_main!(benches);
