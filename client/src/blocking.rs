//! A blocking memcached client: no async runtime inside, for synchronous programs (feature
//! `blocking`), in the spirit of `reqwest::blocking`.
//!
//! [`Client`] drives proto's [`Connection`](mcache_proto::Connection) over std sockets (TCP,
//! unix, or TLS through rustls's blocking stream with feature `tls`) on the calling thread.
//! It shares the async client's configuration ([`Endpoint`](crate::Endpoint), URLs,
//! [`TlsConfig`](crate::tls::TlsConfig), limits), its server [`Pool`](crate::Pool) (the same
//! ketama placement, health and failover, twemproxy mode) and its counters
//! ([`Client::client_stats`]); every typed command comes from the same definitions in
//! [`mcache_proto::commands`] through the blocking [`Memcache`] trait.
//!
//! A client is cheap to clone and `Send + Sync`: threads share a small pool of connections
//! per server ([`Builder::connections`]), each lent to one call at a time. A connection goes
//! back to the pool only after a complete exchange: after an error or timeout mid-frame, or
//! a panic while it was lent, it is closed and a later call opens a new one, so no caller
//! ever reads another's reply. Timeouts (connect, request, read) are socket timeouts.
//!
//! `cargo run -p mcache-client --features blocking --example blocking` runs a synchronous CLI
//! on this client (`client/examples/blocking.rs`).
//!
//! ```no_run
//! use mcache_client::blocking::{Client, Memcache};
//! use std::time::Duration;
//!
//! let cache = Client::builder()
//!     .server("127.0.0.1:11211")
//!     .request_timeout(Some(Duration::from_millis(250)))
//!     .build()?;
//! cache.set("greeting", "hello", 60)?;
//! assert_eq!(cache.get("greeting")?.map(|v| v.data), Some("hello".into()));
//! std::thread::scope(|s| {
//!     for t in 0..4 {
//!         let cache = cache.clone();
//!         s.spawn(move || cache.incr("hits", 1).map(|_| t));
//!     }
//! });
//! # Ok::<(), mcache_client::Error>(())
//! ```

mod builder;
mod client;
mod link;
mod memcache;
mod server;
mod transport;

pub use builder::{Builder, DEFAULT_CONNECTIONS};
pub use client::{Client, ServerHandle};
pub use memcache::Memcache;

#[cfg(test)]
mod tests;
