//! # mcache-client
//!
//! The one memcached client of mcache, written once for every executor. Everything a client
//! does beyond the protocol lives here: one driver task per connection over proto's sans-IO
//! [`Connection`](mcache_proto::Connection), server pools with routing, health and failover,
//! request deadlines, bounded queues, reconnect with jittered backoff, ASCII authentication
//! and TLS. What differs between executors (spawning a task, a timer, opening a socket) sits
//! behind the small [`Runtime`] trait; the adapter crates implement it (`mcache-tokio`,
//! `mcache-async-std` for async-std and smol) and re-export this crate, so there is exactly
//! one [`Client`] type whatever the runtime.
//!
//! Most applications depend on an adapter, not on this crate: `mcache_tokio::Client::connect`
//! is this crate's [`Client`] on tokio's runtime. Depend on this crate directly to write a
//! runtime of your own (see [`Runtime`]) or a library that works on any of them.
//!
//! Synchronous programs use `mcache_client::blocking::Client` (feature `blocking`): the same
//! commands, configuration and server pools, on the calling thread, with no runtime at all.

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "blocking")]
#[cfg_attr(docsrs, doc(cfg(feature = "blocking")))]
pub mod blocking;
mod builder;
mod client;
mod connect;
mod driver;
mod endpoint;
mod io;
mod join;
mod memcache;
mod pool;
mod runtime;
mod settings;
pub mod stats;
#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub mod tls;
mod url;

pub use builder::Builder;
pub use client::{Client, ServerHandle};
pub use endpoint::Endpoint;
pub use io::{ByteStream, FuturesIo};
pub use join::join_all;
pub use memcache::Memcache;
pub use pool::Pool;
pub use runtime::{sleep, timeout, BoxFuture, Runtime, Timer};
pub use stats::{ClientStats, ServerStats};
pub use url::ParseError;

pub use mcache_proto::{
    self as proto, AsKey, EncodeError, Error, Failover, HashMode, HealthPolicy, IoError, Key,
    KeyHash, MetaArithmeticFlags, MetaDeleteFlags, MetaGetFlags, MetaResponse, MetaSetFlags,
    MetaStatus, ProxyKind, ServerSpec, Stat, StoreStatus, Value,
};
