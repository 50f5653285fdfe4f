//! # mcache-proto
//!
//! memcached's text and meta protocols, sans IO: a parser and serializer for every command and
//! reply, a connection state machine, and the command API as a trait. No sockets, no
//! executor, no clock: bytes and `Instant`s go in, bytes and typed replies come out, so the
//! same code serves the tokio and async-std adapters, fuzzers, proxies and test servers.
//!
//! - [`Request`] / [`Response`]: every command and reply, encoded into a `BufMut` and decoded
//!   incrementally from a `BytesMut` (both directions: server side too).
//! - [`Key`]: validated keys; no key can break a command line.
//! - [`Connection`]: pipelining, quiet batches, abandoned requests, poisoning.
//! - [`commands`]: every typed operation defined once, as data: a [`Call`] is the request to
//!   send and how its reply becomes the typed result. mcache-client's async `Memcache` trait
//!   and any blocking client are built from these definitions.
//! - [`Ring`] and [`Pool`]: where each key lives on a pool of servers (libmemcached-compatible
//!   ketama and other clients' rules), how a request is split or broadcast over the pool, and
//!   which servers are out.
//!
//! ## Driving a connection over a blocking socket
//!
//! ```no_run
//! use mcache_proto::{Connection, Key, MetaGetFlags, Response};
//! use mcache_proto::meta::request::MetaGet;
//! use std::io::{Read, Write};
//! use std::net::TcpStream;
//! use std::time::Instant;
//!
//! let mut sock = TcpStream::connect("127.0.0.1:11211")?;
//! let mut conn = Connection::default();
//! let flags = MetaGetFlags { value: true, ..Default::default() };
//! let id = conn.send(MetaGet { key: Key::new("foo")?, flags }.into())?;
//! sock.write_all(conn.transmit())?;
//! let n = conn.transmit().len();
//! conn.advance_transmit(n, Instant::now());
//! let mut buf = [0u8; 4096];
//! let reply = loop {
//!     if let Some((got, reply)) = conn.poll_response() {
//!         assert_eq!(got, id);
//!         break reply?;
//!     }
//!     let n = sock.read(&mut buf)?;
//!     if n == 0 { conn.receive_eof() } else { conn.receive(&buf[..n], Instant::now()) }
//! };
//! if let Response::Meta(m) = reply {
//!     println!("{:?} {:?}", m.status, m.value);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod commands;
pub mod connection;
pub mod error;
pub mod key;
pub mod meta;
pub mod pool;
pub mod request;
pub mod response;
pub mod ring;
pub mod text;
pub mod waiters;
pub mod wire;

pub use commands::{AsKey, Call, Finish, StoreStatus};
pub use connection::{Connection, ConnectionConfig, RequestId, SyncCommand, SPLICE_MIN};
pub use error::{DecodeError, EncodeError, Error, IoError, KeyError, PoisonReason};
pub use key::{Key, MAX_BINARY_KEY_LEN, MAX_KEY_LEN};
pub use meta::flags::{
    MetaArithmeticFlags, MetaArithmeticMode, MetaDeleteFlags, MetaGetFlags, MetaReturnFlags,
    MetaSetFlags, MetaSetMode, Opaque, MAX_META_FLAGS,
};
pub use pool::{Plan, Pool, ProxyKind};
pub use request::Request;
pub use response::{
    ErrorKind, Expect, MetaResponse, MetaStatus, Response, ResponseDecoder, Stat, Value,
};
pub use ring::{
    AddrError, Failover, HashMode, HealthPolicy, KeyHash, Ring, RingError, Routed, ServerSpec,
};
pub use waiters::Waiters;
pub use wire::Limits;
