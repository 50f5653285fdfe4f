//! Synchronous code (feature `blocking`): `#[memoize]` on plain functions, over
//! [`mcache_client::blocking::Client`], with no async runtime anywhere.
//!
//! [`memoize`] is the attribute of the same name for plain `fn`s: the function stays a plain
//! `fn`, and so do the key registry's helpers (`f::invalidate(&cache, ..)` returns a
//! `Result`, no future). Everything else is the async form's, run by the same code: the same
//! keys (a value memoized by an async service is a hit for a sync one, and back), generations,
//! single flight (identical calls on concurrent threads share one run), leases across
//! processes, stale-while-revalidate, circuit breaker, counters and failure policy.
//!
//! How: [`Blocking`] makes a blocking client a [`Backend`] whose round trips happen on the
//! thread that polls them, and the sync form runs the registry's async memoization under
//! [`block_on`], which parks the thread while a call waits (for a flight's leader on another
//! thread, or between polls of a lease held elsewhere).
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = mcache_testkit::Memcached::start()?;
//! # let addr = server.host_port_string();
//! use mcache_registry::blocking::{block_on, memoize, Blocking, Client};
//! use mcache_registry::Cache;
//!
//! /// A slow lookup, cached for five minutes per pair (the cache is never part of the key).
//! #[memoize(cache = cache, ttl = 300)]
//! fn rate(cache: &Cache<Blocking>, from: &str, to: &str) -> Result<f64, std::io::Error> {
//!     Ok(if (from, to) == ("EUR", "USD") { 1.08 } else { 1.0 })
//! }
//!
//! let cache = Cache::new(Blocking::new(Client::connect(addr.as_str())?), "app")?;
//! assert_eq!(rate(&cache, "EUR", "USD")?, 1.08); // miss: runs and stores
//! assert_eq!(rate(&cache, "EUR", "USD")?, 1.08); // hit
//! assert!(rate::is_cached(&cache, "EUR", "USD")?);
//! assert!(rate::invalidate(&cache, "EUR", "USD")?);
//! rate::invalidate_all(&cache)?; // every call of `rate`, in every process
//! block_on(cache.invalidate_namespace())?; // `Cache`'s own methods, through `block_on`
//! # Ok(())
//! # }
//! ```
//!
//! A `Cache<Blocking>` is the `Cache` of the async form with another client: every
//! `CacheBuilder` setting means the same, except `op_timeout` (the blocking client's own
//! request timeout bounds each round trip). A memoized call's value and generation counters
//! are two round trips here (one pipelined round trip on the async client).
//!
//! The forms do not mix: a plain `fn` under [`memoize`] with an async client's cache, or
//! [`crate::memoize`] (which makes a function `async`) with a `Cache<Blocking>`, does not
//! compile, and the error says which to use.

mod block_on;
mod runtime;

use crate::{Backend, Cache};
use mcache_client::Runtime;
use mcache_proto::{Error as ProtoError, Request, Response};
use std::future::Future;
use std::sync::{Arc, OnceLock};

pub use self::block_on::block_on;
pub use mcache_client::blocking::{Builder, Client, Memcache};
/// `#[memoize]` for plain functions, which stay plain: see the [module](self) and
/// [`crate::memoize`] for its options and the key registry it generates.
pub use mcache_registry_macros::memoize_blocking as memoize;

/// A blocking client ([`Client`] by default, or any [`Memcache`] of
/// `mcache_client::blocking`, such as a [`ServerHandle`](mcache_client::blocking::ServerHandle))
/// as a [`Backend`] of a [`Cache`]: `Cache::new(Blocking::new(client), "app")`.
///
/// Its futures do their round trip on the thread that polls them and are ready at once: run
/// them with [`block_on`] (the sync form of `#[memoize]` does), never on an async executor,
/// whose thread they would block.
#[derive(Debug, Clone)]
pub struct Blocking<C = Client> {
    client: C,
    runtime: Arc<dyn Runtime>,
}

impl<C> Blocking<C> {
    /// The backend over `client`.
    pub fn new(client: C) -> Blocking<C> {
        Blocking {
            client,
            runtime: runtime::BlockingRuntime::shared(),
        }
    }

    /// The blocking client, for commands the registry does not wrap.
    pub fn get_ref(&self) -> &C {
        &self.client
    }

    /// The blocking client back.
    pub fn into_inner(self) -> C {
        self.client
    }
}

/// Each request is one blocking round trip, made when the future is first polled.
impl<C: Memcache + Send + Sync> crate::Memcache for Blocking<C> {
    fn execute(
        &self,
        request: Request,
    ) -> impl Future<Output = Result<Response, ProtoError>> + Send {
        let client = &self.client;
        async move { client.execute(request) }
    }
}

impl<C: Memcache + Send + Sync + 'static> Backend for Blocking<C> {
    /// Threads and parking: a spawned task runs on a thread of its own, and a timer polled
    /// in [`block_on`] parks the caller's thread until it is due. It opens no connections.
    fn runtime(&self) -> &Arc<dyn Runtime> {
        &self.runtime
    }
}

mod sealed {
    /// Only [`Blocking`](super::Blocking) is a blocking backend.
    #[allow(unreachable_pub)]
    pub trait Sealed {}
    impl<C> Sealed for super::Blocking<C> {}
}

/// A backend whose futures complete on the thread that polls them: what the sync form of
/// `#[memoize]` needs, since it runs them with [`block_on`]. Implemented by [`Blocking`]
/// only (an async client's futures would wait for a reactor that never runs).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is an async client: a plain `fn` under `mcache_registry::blocking::memoize` needs a `Cache<Blocking>`",
    label = "not a blocking backend",
    note = "wrap a blocking client: `Cache::new(mcache_registry::blocking::Blocking::new(mcache_registry::blocking::Client::connect(addr)?), \"app\")`",
    note = "or, with an async client, make the function `async` and use `mcache_registry::memoize`"
)]
pub trait BlockingBackend: Backend + sealed::Sealed {}

impl<C: Memcache + Send + Sync + 'static> BlockingBackend for Blocking<C> {}

static GLOBAL: OnceLock<Cache<Blocking>> = OnceLock::new();

/// Installs the process-wide blocking cache, which [`memoize`] uses when it is given no
/// `cache = ...` (as [`crate::install_global`] is for the async form). Once only: a second
/// call gives the cache back.
pub fn install_global(cache: Cache<Blocking>) -> Result<(), Cache<Blocking>> {
    GLOBAL.set(cache)
}

/// The process-wide blocking cache, if [`install_global`] was called.
pub fn global() -> Option<&'static Cache<Blocking>> {
    GLOBAL.get()
}
