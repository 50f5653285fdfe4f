//! # mcache-registry
//!
//! Memoize a function's result in memcached with one attribute, and find, replace or drop
//! any cached call later without ever writing a key by hand: what txcaching was to Twisted,
//! built for many processes sharing one memcached.
//!
// The example runs on tokio: without the `tokio` feature it is only shown.
#![cfg_attr(feature = "tokio", doc = "```")]
#![cfg_attr(not(feature = "tokio"), doc = "```ignore")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = mcache_testkit::Memcached::start()?;
//! # let addr = server.host_port_string();
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! use mcache_registry::tokio::{Client, Connect};
//! use mcache_registry::{memoize, Cache};
//! use std::sync::atomic::{AtomicUsize, Ordering};
//!
//! static QUERIES: AtomicUsize = AtomicUsize::new(0);
//!
//! struct Db {
//!     cache: Cache<Client>,
//! }
//!
//! #[memoize(cache = self.cache)]
//! impl Db {
//!     /// A slow query, cached for a minute per username (`self` is not part of the key).
//!     #[memoize(skip_self, ttl = 60)]
//!     async fn get_email(&self, username: &str) -> Option<String> {
//!         QUERIES.fetch_add(1, Ordering::SeqCst);
//!         Some(format!("{username}@example.com"))
//!     }
//!
//!     async fn set_email(&self, username: &str, email: &str) -> Result<(), mcache_registry::Error> {
//!         // UPDATE users SET email = ... WHERE username = ...;
//!         self.get_email_replace(username, &email.to_string()).await
//!     }
//! }
//!
//! /// A free function; the cache comes from an argument (never part of the key).
//! #[memoize(cache = cache, ttl = 300)]
//! async fn rate(cache: &Cache<Client>, from: &str, to: &str) -> Result<f64, std::io::Error> {
//!     Ok(if (from, to) == ("EUR", "USD") { 1.08 } else { 1.0 })
//! }
//!
//! let cache = Cache::new(Client::connect(addr.as_str()).await?, "app")?;
//! let db = Db { cache: cache.clone() };
//! assert_eq!(db.get_email("bob").await.as_deref(), Some("bob@example.com"));
//! assert_eq!(db.get_email("bob").await.as_deref(), Some("bob@example.com"));
//! assert_eq!(QUERIES.load(Ordering::SeqCst), 1, "the second call came from memcached");
//!
//! db.set_email("bob", "bob@new.example").await?;
//! assert_eq!(db.get_email("bob").await.as_deref(), Some("bob@new.example"));
//! assert_eq!(QUERIES.load(Ordering::SeqCst), 1, "replaced through the key registry");
//!
//! assert_eq!(rate(&cache, "EUR", "USD").await?, 1.08);
//! assert!(rate::is_cached(&cache, "EUR", "USD").await?);
//! assert!(rate::invalidate(&cache, "EUR", "USD").await?);
//! rate::invalidate_all(&cache).await?; // every call of `rate`, in every process
//! cache.invalidate_namespace().await?; // everything under "app"
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok(())
//! # }
//! ```
//!
//! ## `#[memoize]`
//!
//! On an `async fn` or a plain `fn` (which becomes `async`, as in txcaching; to keep it plain,
//! see [synchronous code](#synchronous-code)), or on an inherent `impl` block whose methods
//! are marked `#[memoize(...)]` (the block's attribute is what lets a key include the type's
//! path). Options:
//!
//! | option | meaning |
//! |---|---|
//! | `cache = <expr>` | the [`Cache`]: any expression giving a `Cache`, a reference to one or an `Arc<Cache>` (`self.cache`, `CACHE`, `cache()`, a parameter of type `&Cache`, `Cache` or `Arc<Cache>`). A parameter named this way is never keyed. Without it, the [global](install_global) cache. |
//! | `ttl = 60` | time to live, whole seconds or a constant `Duration` expression (default: the cache's) |
//! | `ttl_fn = f` | time to live computed from the stored entry: a `Fn(&Entry) -> Duration` (`token_ttl`, `\|t: &Token\| t.valid_for`); over `ttl` |
//! | `version = 2` | part of every key and of every value's type fingerprint: bump it when the function's meaning or result type changes |
//! | `key = [a, b]` / `skip = [c]` | which arguments form the key (default: all) |
//! | `key = <expr>` (or `convert = <expr>`, `cached`'s name) | the key is the value of an expression over the arguments, e.g. `key = format!("{}:{lang}", user.to_lowercase())`; the registry's helpers take the arguments it mentions |
//! | `self_key = [self.id, ...]` / `skip_self` | methods must say which fields of `self` form the key, or that `self` does not matter: a receiver is never keyed implicitly |
//! | `result = true` / `option = true` | the return type is a `Result` / an `Option` under another name (a type alias): only `Ok` / `Some` values are cached. `= false`: cache every value as it is |
//! | `cache_none`, `cache_err` | also cache `None` / `Err` (by default only `Some`/`Ok` are cached) |
//! | `negative_ttl = 5` | time to live of cached `None`/`Err` |
//!
//! On an `impl` block, `cache` and `ttl` are defaults for its methods. Keyed arguments and
//! fields must be `Serialize`; the stored *entry* (`T` of `Option<T>`/`Result<T, E>`, the whole
//! `Option`/`Result` with `cache_none`/`cache_err`, else the return type) must be `Serialize +
//! DeserializeOwned`. `E` needs nothing unless errors are cached.
//!
//! An `Err` or a `None` is never cached unless `cache_err`/`cache_none` says so, whatever the
//! return type is called. `Result<..>`/`Option<..>` as written (`io::Result<T>` too) are read
//! as such; a return type written otherwise is checked *by type*, and one that is a `Result`
//! or an `Option` under another name (`type AppResult<T> = Result<T, AppError>`) does not
//! compile until `result = true` / `option = true` says what it is (see [`shape`]).
//!
//! Return [`Cached<T>`](Cached) (also inside `Result`/`Option`) to learn per call whether the
//! value came from the cache (`cached`'s `with_cached_flag`). Each call is counted per function
//! ([`Cache::stats`]; feature `metrics` exports the counts through the `metrics` facade) and
//! runs in a debug-level `tracing` span named `memoize` (fields `function`, `outcome`: `hit`,
//! `stale`, `miss` or `bypass`).
//!
//! ### The key registry it generates
//!
//! For a free function `f(a, b)`, a struct named `f` (it lives in the type namespace, beside
//! the function) holds the registry, typed by `f`'s own keyed arguments:
//!
//! | item | does |
//! |---|---|
//! | `f::FUNCTION` | the [`Function`]: path, version, times to live |
//! | `f::key(&cache, a, b)` | the memcached [`Key`] of that call |
//! | `f::is_cached(&cache, a, b)` | whether it is cached and fresh, without fetching the value (meta `mg` without `v`) |
//! | `f::cached(&cache, a, b)` | its cached entry, if any |
//! | `f::replace(&cache, a, b, &entry)` | stores `entry` as its result (after an update of what `f` reads); a borrowed form will do (`"text"` for a `String`) |
//! | `f::invalidate(&cache, a, b)` | drops it (`Ok(false)` if it was not cached) |
//! | `f::refresh(<f's arguments>)` | runs `f` and stores the result (it takes exactly what `f` takes: `slow::refresh(&cache, 7)`) |
//! | `f::invalidate_all(&cache)` | every call of `f`, in O(1) |
//!
//! For a method `m` taking `self`: methods `m_key`, `m_is_cached`, `m_cached`, `m_replace`,
//! `m_invalidate`, `m_refresh`, `m_invalidate_all` on `&self` (the cache and the keyed fields
//! come from `self`), e.g. `db.get_email_invalidate("bob")`. For an associated function `m`
//! without `self`: the same names, taking the cache first, e.g.
//! `Db::lookup_invalidate(&cache, 7)`. The same operations exist untyped on [`Cache`] for any
//! [`Function`] and [`Args`].
//!
//! ## Keys
//!
//! `<namespace>:<path>:v<version>[:<arg>]*`, for example
//! `app:billing::db::get_email:v1:s3:bob`.
//!
//! - The namespace is the cache's (1 to 64 bytes of `A-Z a-z 0-9 _ . -`).
//! - The path is `module_path!()`, then for methods the `impl`'s type as written, then the
//!   function's name: `billing::db::Db::get_email`. It comes from tokens, never from
//!   `std::any::type_name` (which may change between compilers).
//! - Each keyed argument (the `self_key` fields first) is encoded canonically with serde:
//!
//!   | value | encoding |
//!   |---|---|
//!   | `bool` | `t`, `f` |
//!   | any integer | `i` and its decimal digits (`i-5`, `i42`) |
//!   | `f32`, `f64` | `d` and the 16 hex digits of the `f64` bits |
//!   | `str`, `char`, bytes | `s`, `c`, `b`, then the byte length, `:`, the bytes (`s3:bob`) |
//!   | `None`, `Some(x)` | `n`, `o` followed by `x` |
//!   | `()`, unit struct | `z` |
//!   | sequence, tuple, tuple struct | `[x,y]` |
//!   | map | `{k=v,k=v}` with entries sorted by encoded key: a `HashMap` gives one key whatever its iteration order |
//!   | struct | `(name=x,name=y)` |
//!   | enum variant | `#Name`, `#Name=x`, `#Name[x,y]`, `#Name(f=x)` |
//!
//!   Names that are not `[A-Za-z_][A-Za-z0-9_]*` are written `<len>:<bytes>`. Every encoding
//!   is self-delimiting, so no two different calls share a key: `f("a b")` is `s3:a b`,
//!   `f("ab")` `s2:ab`; `f(1, 23)` is `i1:i23`, `f(12, 3)` `i12:i3`. Never `std::hash`,
//!   `Debug` or an address: the same key in every process, build, platform and Rust version.
//! - Bytes outside `0x21..=0x7E`, and `%`, are written `%XX` (uppercase hex), so every key is
//!   a valid text key: `s3:a%20b`.
//! - A key longer than 250 bytes becomes `<namespace>:<path prefix>:v<version>:!<hash>`, where
//!   the hash is the SHA-256 of the whole escaped key in unpadded base64url (43 characters)
//!   and the path prefix is cut to fit.
//! - Generation counters: `<namespace>:!g` and `<namespace>:<path>:!g` (hashed the same way
//!   when long).
//!
//! The format is pinned by golden tests (`tests/keys.rs`).
//!
//! ## Values
//!
//! Entries are serialized with [`Codec::Postcard`] (compact, the default) or [`Codec::Json`]
//! (readable from other languages), optionally lz4-compressed above a size (feature `lz4`).
//! The codec and compression are recorded in the item's client flags, so a reader decodes what
//! it finds whatever its own setting. The value starts with the 16-byte stamp of the
//! generations it was computed under (two big-endian `u64`), then the 8-byte fingerprint of
//! the stored type (its name and layout as the compiler sees them, the codec and the
//! function's `version`), then the payload. A value stored as another type (the function's
//! return type changed between builds: a `u64` is never read back as an `(u8, u8)`), that no
//! longer decodes, was written by something else, or carries an old stamp is a miss that
//! recomputes and overwrites it, never an error or a reinterpretation. A new compiler may
//! name a type differently; its entries are then recomputed once.
//!
//! ## Invalidation in O(1)
//!
//! Each namespace and each function has a generation counter in memcached, created with meta
//! `ma ... N0 J<random>` at a random 63-bit value and bumped with one `ma`. A value is fresh
//! only while both counters still hold the values it was stamped with; the hit path reads
//! the value (`mg`) and both counters (one `get` of two keys) in one pipelined round trip, so
//! invalidation costs no extra latency. A counter that is evicted and recreated starts at a new random value: old entries
//! never come back.
//!
//! ## Stampede protection
//!
//! - **In one process**, identical concurrent calls share one run (single flight). If the
//!   caller running it is dropped or panics, a waiting caller takes over.
//! - **Across processes**, the first read is `mg <key> v c f N<lease>`: on a miss memcached
//!   creates a stub and hands exactly one caller the win (`W`); it runs the function and
//!   stores the result with `ms ... C<cas>` of the stub. Others see `Z` and poll briefly
//!   ([`CacheBuilder::lease_wait`]), then run uncached if it takes too long. A lease whose
//!   holder is dropped or panics is released at once (the stub is deleted).
//! - **No stale fills**: an invalidation during the recompute deletes the stub or changes its
//!   cas (or bumps a generation), so the fill fails (or is stamped stale): a value older than
//!   an invalidation is never served after it. The caller that computed it still gets it.
//! - **Stale-while-revalidate** ([`CacheBuilder::stale_while_revalidate`]): invalidation marks
//!   entries stale (`md <key> I`) instead of deleting them, and while one caller recomputes,
//!   the others (`X` + `Z`) are served the stale value. Entries outdated by a generation bump
//!   are marked stale the same way, so exactly one caller recomputes them.
//! - **Early recache** ([`CacheBuilder::recache_before`], meta `R`): the first reader of an
//!   entry close to expiry recomputes it while everyone else is still served the live value.
//!
//! ## Failure policy
//!
//! memcached down, slow or answering garbage means the function runs uncached and the call
//! succeeds; the function never runs twice because of a cache error. Failures are logged with
//! `tracing` (warn), and after a few in a row a circuit breaker bypasses memcached for a while
//! ([`CacheBuilder::circuit_breaker`]), so a dead cache costs no timeout per call. A result that
//! cannot be encoded or stored is returned uncached. The key registry's own operations
//! (`invalidate`, `replace`, `invalidate_all`, …) do report errors: the application asked for
//! them; while the breaker is open they return [`Error::Unavailable`] at once.
//!
//! From the first line: a client built with `Client::builder()…build()` is fail-open (it
//! connects in the background, and its calls fail fast until memcached answers), so
//! `Cache::new` works while memcached is down and memoized functions run uncached until it is
//! up. ([`Cache::disabled`] caches nothing at all: for tests, or to turn caching off by
//! configuration.) A caller dropped while its lease request is in flight leaves no lease
//! behind: the request is finished in the background and a win it was granted is released,
//! so nobody waits out `lease_ttl` for a caller that is gone.
//!
//! ## Runtimes
//!
//! [`Cache`] is generic over its client ([`Backend`]: a [`Memcache`] that names its
//! [`Runtime`]); the client is [`mcache_client::Client`], one type whatever the runtime, so
//! `Cache<Client>` and the [global](install_global) cache are the same type on tokio,
//! async-std and smol. Feature `tokio` (default) re-exports the tokio adapter as
//! [`mod@tokio`]; feature `async-std` the futures-io adapter as `async_std` (async-std, smol).
//! The features only add those re-exports: enabling one never changes a type. The registry
//! sleeps (to poll a lease) and spawns (to release one) on the client's own runtime.
//! `Cache` implements `Memcache` itself, so `get`, `set`, `append`, `replace`, `delete`,
//! `flush_all` and the meta commands are on the handle.
//!
//! ## Synchronous code
//!
//! Feature `blocking`: `mcache_registry::blocking::memoize` is the same attribute for plain
//! functions, which stay plain, over the blocking client of `mcache-client` (no async runtime
//! anywhere); its key registry's helpers are plain too (`f::invalidate(&cache, ..)` returns a
//! `Result`). Keys, values, generations, single flight (across threads), leases, the circuit
//! breaker and the counters are the async form's, run by the same code: a sync service and
//! an async service sharing memcached hit each other's entries. See the `blocking` module;
//! `cargo run -p mcache-registry --example sync_memoize --features blocking` runs an example.
//!
//! ## HTTP GET caching
//!
//! Feature `http`: `http::CacheLayer`, a tower layer that caches `GET` responses (axum,
//! hyper, any tower service) under the same key format and generations, with invalidation by
//! URL from any handler (`layer.invalidate("/email/bob")`). See the `http` module.
//!
//! ## Limits
//!
//! - Generic functions, `impl Trait` arguments and generic `impl` blocks are refused: a key
//!   names one concrete function, and instances of different types would share keys.
//! - Methods need `#[memoize]` on their `impl` block too, and trait impls are refused.
//! - Two functions of the same name nested in different function bodies of one module share
//!   a path (`module_path!()` does not see function bodies): give them a `version` or
//!   distinct names.
//!
//! A method must say how `self` is keyed:
//!
//! ```compile_fail
//! use mcache_registry::{memoize, Cache};
//! use mcache_registry::tokio::Client;
//! struct Db { cache: Cache<Client> }
//! #[memoize(cache = self.cache)]
//! impl Db {
//!     #[memoize] // error: `self_key = [...]` or `skip_self`
//!     async fn get(&self, id: u32) -> String { id.to_string() }
//! }
//! ```
//!
//! and generic functions are refused:
//!
//! ```compile_fail
//! use mcache_registry::{memoize, Cache};
//! use mcache_registry::tokio::Client;
//! #[memoize(cache = cache)]
//! async fn show<T: serde::Serialize>(cache: &Cache<Client>, x: T) -> String { String::new() }
//! ```

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "blocking")]
#[cfg_attr(docsrs, doc(cfg(feature = "blocking")))]
pub mod blocking;
mod by_function;
mod cache;
mod canonical;
mod checks;
mod codec;
mod error;
mod flag;
mod flight;
mod health;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod http;
mod invalidate;
mod join;
mod key;
mod memoize;
mod random;
pub mod shape;
mod stats;

pub use cache::{Backend, Cache, CacheBuilder};
pub use codec::Codec;
pub use error::Error;
pub use flag::Cached;
pub use key::{encode_value, Args, ArgsError, Function, MAX_NAMESPACE_LEN};
pub use mcache_client::{Client, Memcache, Runtime};
pub use mcache_proto::{self as proto, Key};
pub use mcache_registry_macros::memoize;
pub use shape::Shape;
pub use stats::{CacheStats, FunctionStats};

/// The tokio adapter (feature `tokio`, on by default): `mcache_registry::tokio::Client` is
/// [`mcache_client::Client`], with `Connect` for `Client::connect` on tokio.
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub use mcache_tokio as tokio;

/// The futures-io adapter for async-std and smol (feature `async-std`):
/// `mcache_registry::async_std::Client` is [`mcache_client::Client`] too.
#[cfg(feature = "async-std")]
#[cfg_attr(docsrs, doc(cfg(feature = "async-std")))]
pub use mcache_async_std as async_std;

/// The code blocks of the workspace README and of this crate's README, compiled as doc tests
/// (`cargo test --doc`): what a user copies from them compiles. (`tests/readme.rs` also runs
/// the README's tour against a real memcached.)
#[cfg(all(doctest, feature = "tokio", feature = "http", feature = "blocking"))]
#[doc = include_str!("../../README.md")]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

static GLOBAL: std::sync::OnceLock<Cache<mcache_client::Client>> = std::sync::OnceLock::new();

/// Installs the process-wide cache that `#[memoize]` uses when it is given no `cache = ...`.
/// Once only: a second call gives the cache back. The client may run on any runtime.
pub fn install_global(
    cache: Cache<mcache_client::Client>,
) -> Result<(), Cache<mcache_client::Client>> {
    GLOBAL.set(cache)
}

/// The process-wide cache, if [`install_global`] was called.
pub fn global() -> Option<&'static Cache<mcache_client::Client>> {
    GLOBAL.get()
}

/// The key of a call as a string, for golden tests of the key format.
#[doc(hidden)]
pub fn __golden_key(namespace: &str, function: &Function, args: &Args) -> String {
    __item_key(namespace, function, args).to_string()
}

/// The key of a call, exactly as [`Cache::key`] builds it, without a client (for the fuzz
/// target of the key builder).
#[doc(hidden)]
pub fn __item_key(namespace: &str, function: &Function, args: &Args) -> Key {
    key::item_key(namespace, function, args)
}

/// What `#[memoize]` expands to calls these. Not a public API: it changes without notice.
#[doc(hidden)]
pub mod __private {
    use crate::{Args, ArgsError, Backend, Cache, Error, Function, Shape};
    use std::future::Future;

    pub use crate::checks::*;
    pub use crate::memoize::{TtlFn, TtlRef};
    pub use serde::Serialize;
    pub use std::time::Duration;

    pub use crate::global as global_cache;

    #[cfg(feature = "blocking")]
    pub use crate::blocking::{block_on, global as global_blocking_cache};

    /// The cache of a plain `fn` under `blocking::memoize`: a blocking one, or a compile
    /// error that says so.
    #[cfg(feature = "blocking")]
    pub fn blocking_form<C: crate::blocking::BlockingBackend>(
        cache: Option<&Cache<C>>,
    ) -> Option<&Cache<C>> {
        cache
    }

    /// `cache = <expr>`: a `Cache`, a reference to one, an `Arc<Cache>`, or anything that is
    /// `AsRef<Cache>`.
    pub fn as_cache<C, T: AsRef<Cache<C>> + ?Sized>(t: &T) -> &Cache<C> {
        t.as_ref()
    }

    /// Encodes keyed arguments.
    pub fn args(f: impl FnOnce(&mut Args) -> Result<(), ArgsError>) -> Result<Args, ArgsError> {
        let mut args = Args::new();
        f(&mut args)?;
        Ok(args)
    }

    /// The cache, or [`Error::NoCache`].
    pub fn require<C>(cache: Option<&Cache<C>>) -> Result<&Cache<C>, Error> {
        cache.ok_or(Error::NoCache)
    }

    fn warn_uncached(function: &Function, why: &dyn std::fmt::Display) {
        tracing::warn!(function = function.path(), %why, "running uncached");
    }

    /// No cache at all is said once per process, then quietly.
    fn warn_no_cache(function: &Function) {
        use std::sync::atomic::{AtomicBool, Ordering};
        static SAID: AtomicBool = AtomicBool::new(false);
        if SAID.swap(true, Ordering::Relaxed) {
            tracing::debug!(function = function.path(), "no cache: running uncached");
        } else {
            warn_uncached(function, &Error::NoCache);
        }
    }

    /// The cache and keyed arguments of a call, or why it runs uncached (said here).
    fn usable<'c, C: Backend>(
        cache: Option<&'c Cache<C>>,
        function: &Function,
        args: Result<Args, ArgsError>,
    ) -> Option<(&'c Cache<C>, Args)> {
        match (cache, args) {
            (Some(cache), Ok(args)) => Some((cache, args)),
            (None, _) => {
                warn_no_cache(function);
                None
            }
            (Some(cache), Err(e)) => {
                warn_uncached(function, &e);
                cache.count_uncached(function);
                None
            }
        }
    }

    /// A memoized call: never fails because of the cache.
    pub async fn memoize<S, C, F, Fut>(
        cache: Option<&Cache<C>>,
        function: &Function,
        args: Result<Args, ArgsError>,
        ttl_fn: TtlFn<'_, S::Entry>,
        compute: F,
    ) -> S::Output
    where
        S: Shape,
        C: Backend,
        F: FnOnce() -> Fut,
        Fut: Future<Output = S::Output>,
    {
        match usable(cache, function, args) {
            Some((cache, args)) => {
                cache
                    .memoize_with::<S, F, Fut>(function, &args, ttl_fn, compute)
                    .await
            }
            None => compute().await,
        }
    }

    /// A refresh: recompute and store.
    pub async fn refresh<S, C, F, Fut>(
        cache: Option<&Cache<C>>,
        function: &Function,
        args: Result<Args, ArgsError>,
        ttl_fn: TtlFn<'_, S::Entry>,
        compute: F,
    ) -> S::Output
    where
        S: Shape,
        C: Backend,
        F: FnOnce() -> Fut,
        Fut: Future<Output = S::Output>,
    {
        match usable(cache, function, args) {
            Some((cache, args)) => {
                cache
                    .refresh_with::<S, F, Fut>(function, &args, ttl_fn, compute)
                    .await
            }
            None => compute().await,
        }
    }

    /// What a memoized hit spends on being observed (its span, entered once, and its
    /// counters), alone: for the benchmark that compares it with the hit itself.
    pub fn observe_hit<C: Backend>(cache: &Cache<C>, function: &Function) {
        let span = crate::memoize::call_span(function);
        drop(span.enter());
        cache.count_call(
            function,
            &span,
            crate::stats::Served::Hit,
            crate::stats::Events::default(),
        );
    }

    /// `replace`: stores `value`, the entry of shape `S` or a borrowed form of it (`&str` for
    /// a `String`), with the time to live `ttl_fn` gives the entry, if there is one.
    pub async fn replace<S: Shape, C: Backend, V: Serialize + ?Sized>(
        cache: &Cache<C>,
        function: &Function,
        args: &Args,
        value: &V,
        negative: bool,
        ttl: Option<Duration>,
    ) -> Result<(), Error> {
        let exptime = cache.exptime_with(function, negative, ttl);
        cache
            .store::<S::Entry, V>(function, args, value, exptime)
            .await
    }
}
