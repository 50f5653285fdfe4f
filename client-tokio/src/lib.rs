//! # mcache-tokio
//!
//! A memcached client for tokio, built on [`mcache_proto`]: the protocol, pipelining, quiet
//! batches and cancellation live in proto's sans-IO `Connection`; this crate only moves bytes.
//!
//! - [`Client::connect`] for one server, [`Client::builder`] for connections, timeouts, unix
//!   sockets, TLS (feature `tls`) and ASCII authentication.
//! - [`Client`] is cheap to clone and `Send + Sync`; callers multiplex over a few connections
//!   and many requests go out in one write.
//! - Pools: [`Builder::servers`] (weights, [`HashMode`], [`Failover`]) places every key where
//!   libmemcached's ketama would, splits multi-key gets per server and merges them in order,
//!   sends keyless commands to every server, and takes dead servers out and back in. Through
//!   twemproxy, [`Builder::proxy`] refuses what the proxy cannot carry.
//! - Every operation comes from the [`Memcache`] trait: `get`, `set`, `get_multi`, `cas`,
//!   `meta_get`, … Bring it into scope with `use mcache_tokio::Memcache`.
//! - Dropping a future at any point is safe: its reply is read and discarded, and the
//!   connection stays in step. A request timeout does the same.
//! - A connection whose server stops answering is closed and reopened with backoff; while it
//!   is down, calls fail fast with [`Error::Io`].

#![forbid(unsafe_code)]

mod client;
mod driver;
#[cfg(feature = "tls")]
pub mod tls;
mod transport;

pub use client::{Builder, Client, ServerHandle};
pub use mcache_proto::{
    self as proto, EncodeError, Error, Failover, HashMode, HealthPolicy, Key, KeyHash, Memcache,
    MetaArithmeticFlags, MetaDeleteFlags, MetaGetFlags, MetaResponse, MetaSetFlags, MetaStatus,
    Pool, ProxyKind, ServerSpec, Stat, StoreStatus, Value,
};
pub use transport::Endpoint;

/// Settings shared by a client's connection tasks.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) connection: mcache_proto::ConnectionConfig,
    pub(crate) connect_timeout: std::time::Duration,
    pub(crate) backoff_min: std::time::Duration,
    pub(crate) backoff_max: std::time::Duration,
    pub(crate) auth: Option<(String, String)>,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<tls::TlsConfig>,
}
