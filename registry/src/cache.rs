//! The cache handle ([`Cache`]), its settings ([`CacheBuilder`]) and the key registry's
//! per-call operations: key, is-cached, cached value, replace, invalidate.
//!
//! A `Cache` is an `Arc`: clone it freely. It owns the client (none when disabled), the
//! namespace, the settings, the circuit breaker, the in-process flights and the per-function
//! counters; memoization lives in `memoize.rs` and generations in `invalidate.rs`.

use crate::by_function::GenerationKeys;
use crate::codec::{self, Codec, Encoded, Stamp};
use crate::error::Error;
use crate::flight::Flights;
use crate::health::Breaker;
use crate::join::join2;
use crate::key::{self, Args, Function};
use crate::random::random_u64;
use crate::stats::{CacheStats, Stats};
use mcache_client::{Client, Memcache, Runtime, Timer};
use mcache_proto::{
    Error as ProtoError, Key, MetaDeleteFlags, MetaGetFlags, MetaResponse, MetaSetFlags,
    MetaStatus, Request, Response,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What a [`Cache`] needs from a client: the [`Memcache`] commands, shared across tasks, and
/// the [`Runtime`] they run on, whose timer the cache polls with (a lease held by another
/// process, the op timeout) and on which it spawns small background tasks (releasing the
/// lease of a call that was dropped or panicked).
///
/// Implemented for [`mcache_client::Client`], the one client type of `mcache_tokio`,
/// `mcache_async_std` and every other adapter, and (feature `blocking`) for
/// `mcache_registry::blocking::Blocking`, the blocking client as a backend; implement it for
/// a client of your own by naming its runtime.
pub trait Backend: Memcache + Send + Sync + 'static {
    /// The runtime to sleep and spawn on: the client's own.
    fn runtime(&self) -> &Arc<dyn Runtime>;

    /// Two handles whose requests travel together (one connection, one write, one read), for
    /// a memoized call's first round trip: one reads the value, the other its generation
    /// counters. `None` (the default) uses the backend itself for both.
    fn pinned_pair(&self) -> Option<(Self, Self)>
    where
        Self: Sized,
    {
        None
    }
}

impl Backend for Client {
    fn runtime(&self) -> &Arc<dyn Runtime> {
        Client::runtime(self)
    }

    fn pinned_pair(&self) -> Option<(Client, Client)> {
        let pinned = Client::pinned(self);
        Some((pinned.clone(), pinned))
    }
}

impl Backend for mcache_client::ServerHandle {
    fn runtime(&self) -> &Arc<dyn Runtime> {
        self.client().runtime()
    }

    fn pinned_pair(&self) -> Option<(Self, Self)> {
        let pinned = self.client().pinned();
        Some((pinned.server(self.index())?, pinned.server(self.index())?))
    }
}

/// memcached treats expiration times above 30 days as absolute unix times.
const MAX_RELATIVE_TTL: u64 = 30 * 24 * 3600;

/// A handle to memoization over one memcached client: namespace, default time to live, codec,
/// stampede and failure settings. Cheap to clone (an `Arc`); clones share everything,
/// including the in-process single flight.
///
/// `Cache` implements [`Memcache`] itself, so the plain commands (`get`, `set`, `append`,
/// `replace`, `delete`, `flush_all`, the meta commands) are there too, unprefixed by the
/// namespace.
pub struct Cache<C> {
    pub(crate) inner: Arc<Inner<C>>,
}

impl<C> Clone for Cache<C> {
    fn clone(&self) -> Self {
        Cache {
            inner: self.inner.clone(),
        }
    }
}

impl<C> AsRef<Cache<C>> for Cache<C> {
    fn as_ref(&self) -> &Cache<C> {
        self
    }
}

impl<C> fmt::Debug for Cache<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("namespace", &self.inner.namespace)
            .field("disabled", &self.inner.client.is_none())
            .field("config", &self.inner.config)
            .field("bypassing", &self.inner.breaker.is_open())
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner<C> {
    /// `None`: [`Cache::disabled`].
    pub(crate) client: Option<C>,
    pub(crate) namespace: Box<str>,
    pub(crate) config: Config,
    pub(crate) breaker: Breaker,
    pub(crate) flights: Flights,
    pub(crate) namespace_generation: Key,
    /// The generation counter key of each function called through this cache.
    pub(crate) generation_keys: GenerationKeys,
    pub(crate) stats: Stats,
}

/// Settings of a [`Cache`]; see [`CacheBuilder`] for each.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) ttl: Duration,
    pub(crate) negative_ttl: Option<Duration>,
    pub(crate) ttl_jitter: Duration,
    pub(crate) codec: Codec,
    pub(crate) compress_above: Option<usize>,
    pub(crate) stale_while_revalidate: bool,
    pub(crate) stale_ttl: Option<Duration>,
    pub(crate) recache_before: Option<Duration>,
    pub(crate) lease_ttl: Duration,
    pub(crate) lease_wait: Duration,
    pub(crate) op_timeout: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            ttl: Duration::from_secs(3600),
            negative_ttl: None,
            ttl_jitter: Duration::ZERO,
            codec: Codec::Postcard,
            compress_above: None,
            stale_while_revalidate: false,
            stale_ttl: None,
            recache_before: None,
            lease_ttl: Duration::from_secs(5),
            lease_wait: Duration::from_secs(5),
            op_timeout: None,
        }
    }
}

/// Configures a [`Cache`]. Every setting has a default; only the namespace is required.
#[derive(Debug)]
pub struct CacheBuilder<C> {
    client: C,
    namespace: String,
    config: Config,
    breaker_threshold: u32,
    breaker_cooldown: Duration,
}

impl<C: Backend> CacheBuilder<C> {
    /// The namespace: the first part of every key, and the scope of
    /// [`Cache::invalidate_namespace`]. 1 to 64 bytes of `A-Z a-z 0-9 _ . -`.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Default time to live of cached results (default one hour; zero: no expiry). Values
    /// over 30 days are sent as absolute times, as memcached requires.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.config.ttl = ttl;
        self
    }

    /// Default time to live of negative results (`None` with `cache_none`, `Err` with
    /// `cache_err`); default: the positive one.
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.config.negative_ttl = Some(ttl);
        self
    }

    /// Adds a random 0 to `jitter` to every time to live, so that entries filled together do
    /// not expire together (default none).
    pub fn ttl_jitter(mut self, jitter: Duration) -> Self {
        self.config.ttl_jitter = jitter;
        self
    }

    /// The codec new values are written with (default [`Codec::Postcard`]).
    pub fn codec(mut self, codec: Codec) -> Self {
        self.config.codec = codec;
        self
    }

    /// Compresses payloads larger than `bytes` with lz4 (default: never).
    #[cfg(feature = "lz4")]
    #[cfg_attr(docsrs, doc(cfg(feature = "lz4")))]
    pub fn compress_above(mut self, bytes: usize) -> Self {
        self.config.compress_above = Some(bytes);
        self
    }

    /// Stale-while-revalidate (default off): [`Cache::invalidate`] marks an entry stale
    /// instead of deleting it, and while one caller (in any process) recomputes a stale entry,
    /// the others are served the stale value instead of waiting.
    pub fn stale_while_revalidate(mut self, on: bool) -> Self {
        self.config.stale_while_revalidate = on;
        self
    }

    /// With stale-while-revalidate: how long an invalidated entry stays servable (default:
    /// its remaining time to live).
    pub fn stale_ttl(mut self, ttl: Duration) -> Self {
        self.config.stale_ttl = Some(ttl);
        self
    }

    /// Early recache (meta `R`; default off): the first reader of an entry with less than
    /// `window` left to live recomputes it while everyone else keeps being served the current
    /// value, so a popular entry is renewed before it expires instead of being missed by all
    /// at once. Keep `window` below the time to live.
    pub fn recache_before(mut self, window: Duration) -> Self {
        self.config.recache_before = Some(window);
        self
    }

    /// How long the right to recompute an entry is held (default 5 s): if its holder dies,
    /// another caller gets it after this long. Keep it above the function's usual run time.
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.config.lease_ttl = ttl;
        self
    }

    /// How long a caller waits for another process's recompute before running the function
    /// itself, uncached (default 5 s).
    pub fn lease_wait(mut self, wait: Duration) -> Self {
        self.config.lease_wait = wait;
        self
    }

    /// A deadline for each round trip to memcached, on top of the client's own (default none:
    /// the client's request timeout applies). A blocking backend (feature `blocking`) finishes
    /// each round trip before it could be checked: its client's request timeout bounds it.
    pub fn op_timeout(mut self, timeout: Duration) -> Self {
        self.config.op_timeout = Some(timeout);
        self
    }

    /// The circuit breaker: after `failures` consecutive transport failures, the cache is
    /// bypassed for `cooldown` (doubling while it keeps failing). Default 3 and 1 s.
    pub fn circuit_breaker(mut self, failures: u32, cooldown: Duration) -> Self {
        self.breaker_threshold = failures;
        self.breaker_cooldown = cooldown;
        self
    }

    /// The handle. Fails only on an invalid namespace.
    pub fn build(self) -> Result<Cache<C>, Error> {
        if !key::valid_namespace(&self.namespace) {
            return Err(Error::InvalidNamespace(self.namespace));
        }
        Ok(Cache::from_parts(
            Some(self.client),
            self.namespace,
            self.config,
            Breaker::new(self.breaker_threshold, self.breaker_cooldown),
        ))
    }
}

/// The plain commands go to the client; on a [disabled](Cache::disabled) cache they fail with
/// [`ProtoError::Unavailable`].
impl<C: Backend> Memcache for Cache<C> {
    fn execute(
        &self,
        request: Request,
    ) -> impl Future<Output = Result<Response, ProtoError>> + Send {
        let client = self.inner.client.as_ref();
        async move {
            match client {
                Some(client) => client.execute(request).await,
                None => Err(ProtoError::Unavailable("caching is disabled".into())),
            }
        }
    }
}

/// A call's entry as read by the key registry.
pub(crate) enum Read {
    /// Stored under the current generations, not stale.
    Fresh(Encoded),
    /// Missing, stale, a stub, outdated or foreign.
    Missing,
}

impl<C: Backend> Cache<C> {
    /// A cache with the default settings.
    pub fn new(client: C, namespace: impl Into<String>) -> Result<Cache<C>, Error> {
        Cache::builder(client).namespace(namespace).build()
    }

    /// A cache that caches nothing: every memoized call runs its function, and key-registry
    /// operations are no-ops (`invalidate` gives `Ok(false)`, `cached` `Ok(None)`, `replace`
    /// `Ok(())`). For tests, and for turning caching off by configuration without changing
    /// the code that uses it (txcaching's `disable`). Its plain commands fail with
    /// [`ProtoError::Unavailable`], and [`Cache::client`] is `None`.
    ///
    /// ```
    /// use mcache_registry::{memoize, Cache};
    /// # use mcache_registry::Client;
    /// #[memoize(cache = cache)]
    /// fn double(cache: &Cache<Client>, x: u32) -> u32 {
    ///     x * 2
    /// }
    /// # futures_lite_block_on(async {
    /// let cache = Cache::disabled();
    /// assert_eq!(double(&cache, 21).await, 42);
    /// assert!(!double::invalidate(&cache, 21).await.unwrap());
    /// # });
    /// # fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let mut f = std::pin::pin!(f);
    /// #     let waker = std::task::Waker::noop();
    /// #     loop {
    /// #         if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut std::task::Context::from_waker(waker)) {
    /// #             return v;
    /// #         }
    /// #     }
    /// # }
    /// ```
    pub fn disabled() -> Cache<C> {
        Cache::from_parts(
            None,
            "disabled".into(),
            Config::default(),
            Breaker::new(1, Duration::ZERO),
        )
    }

    fn from_parts(client: Option<C>, namespace: String, config: Config, breaker: Breaker) -> Self {
        Cache {
            inner: Arc::new(Inner {
                client,
                namespace_generation: key::namespace_generation_key(&namespace),
                namespace: namespace.into_boxed_str(),
                config,
                breaker,
                flights: Flights::default(),
                generation_keys: GenerationKeys::default(),
                stats: Stats::default(),
            }),
        }
    }

    /// A builder; the namespace defaults to `mcache`.
    pub fn builder(client: C) -> CacheBuilder<C> {
        CacheBuilder {
            client,
            namespace: "mcache".into(),
            config: Config::default(),
            breaker_threshold: 3,
            breaker_cooldown: Duration::from_secs(1),
        }
    }

    /// The client, for anything the registry does not wrap; `None` for a
    /// [disabled](Cache::disabled) cache.
    pub fn client(&self) -> Option<&C> {
        self.inner.client.as_ref()
    }

    /// What each memoized function's calls did through this cache since it was made: hits,
    /// stale serves, misses, bypasses (circuit breaker open, or disabled), lease waits and
    /// cache errors (see [`FunctionStats`](crate::FunctionStats)). Counting costs a few
    /// relaxed atomic adds per call; feature `metrics` also exports the same counts through
    /// the `metrics` facade.
    pub fn stats(&self) -> CacheStats {
        self.inner.stats.snapshot()
    }

    /// Whether this cache was made with [`Cache::disabled`].
    pub fn is_disabled(&self) -> bool {
        self.inner.client.is_none()
    }

    /// The client to use for a key-registry operation: `Ok(None)` when the cache is disabled
    /// (the operation is a no-op), [`Error::Unavailable`] at once while the circuit breaker is
    /// open (no request timeout is waited out).
    pub(crate) fn gate(&self) -> Result<Option<&C>, Error> {
        match &self.inner.client {
            None => Ok(None),
            Some(_) if !self.inner.breaker.allow() => Err(Error::Unavailable),
            Some(client) => Ok(Some(client)),
        }
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.inner.namespace
    }

    /// Whether the circuit breaker is open (memcached is being bypassed).
    pub fn is_bypassing(&self) -> bool {
        self.inner.breaker.is_open()
    }

    /// The memcached key of one call (see the crate docs for the format).
    pub fn key(&self, function: &Function, args: &Args) -> Key {
        key::item_key(&self.inner.namespace, function, args)
    }

    /// Whether the call is cached and fresh, without fetching its value (meta `mg` without
    /// `v`; the generations are compared through a 24-bit fingerprint in the client flags, so
    /// an entry invalidated with its whole function or namespace is reported cached with a
    /// probability of 2⁻²⁴; the stored type is not checked).
    pub async fn is_cached(&self, function: &Function, args: &Args) -> Result<bool, Error> {
        let Some(client) = self.gate()? else {
            return Ok(false);
        };
        let key = self.key(function, args);
        let flags = MetaGetFlags {
            client_flags: true,
            size: true,
            cas: true,
            ..Default::default()
        };
        let (item, stamp) = join2(
            self.op("mg", client.meta_get(&key, flags)),
            self.stamp(function),
        )
        .await;
        let item = item?;
        self.give_back(&key, &item).await;
        let stamp = stamp?;
        Ok(item.status == MetaStatus::Hd
            && !item.flags.stale
            && item.flags.size.unwrap_or(0) > 0
            && item.flags.client_flags.and_then(codec::fingerprint) == Some(stamp.fingerprint()))
    }

    /// The cached entry of a call, if it is cached and fresh (`None` for a miss, a stale
    /// entry, or one stored as another type than `T`).
    pub async fn cached<T: DeserializeOwned>(
        &self,
        function: &Function,
        args: &Args,
    ) -> Result<Option<T>, Error> {
        if self.gate()?.is_none() {
            return Ok(None);
        }
        let key = self.key(function, args);
        match self.read(function, &key).await? {
            Read::Fresh(e) => Ok(codec::decode(e.flags, &e.bytes, function.version()).ok()),
            Read::Missing => Ok(None),
        }
    }

    /// Stores `entry` as the cached result of a call (txcaching's `replace` after an update):
    /// the next call returns it without running the function. `negative` picks the negative
    /// time to live. `T` must be the type the function's readers ask for (it is part of the
    /// value's fingerprint: an entry stored as `u64` is a miss for a reader of `i64`).
    pub async fn set_cached<T: Serialize>(
        &self,
        function: &Function,
        args: &Args,
        entry: &T,
        negative: bool,
    ) -> Result<(), Error> {
        let ttl = self.exptime(function, negative);
        self.store::<T, T>(function, args, entry, ttl).await
    }

    /// Stores `value`, a borrowed form of an entry `E` (`str` for `String`), with `exptime`.
    pub(crate) async fn store<E, V: Serialize + ?Sized>(
        &self,
        function: &Function,
        args: &Args,
        value: &V,
        exptime: i32,
    ) -> Result<(), Error> {
        let Some(client) = self.gate()? else {
            return Ok(());
        };
        let key = self.key(function, args);
        self.inner.flights.detach(&key);
        let stamp = self.stamp(function).await?;
        let encoded = self.encode::<E, V>(function, value, stamp)?;
        let flags = MetaSetFlags {
            ttl: Some(exptime),
            client_flags: Some(encoded.flags),
            ..Default::default()
        };
        let r = self
            .op("ms", client.meta_set(&key, encoded.bytes, flags))
            .await?;
        expect_status("ms", &r, &[MetaStatus::Hd])?;
        Ok(())
    }

    /// Drops the cached result of one call; `Ok(false)` if there was none. With
    /// stale-while-revalidate the entry is marked stale instead, and served to waiting callers
    /// while one recomputes it.
    pub async fn invalidate(&self, function: &Function, args: &Args) -> Result<bool, Error> {
        let Some(client) = self.gate()? else {
            return Ok(false);
        };
        let key = self.key(function, args);
        self.inner.flights.detach(&key);
        let cfg = &self.inner.config;
        let flags = if cfg.stale_while_revalidate {
            MetaDeleteFlags {
                invalidate: true,
                ttl: cfg.stale_ttl.map(|t| self.exptime_of(t)),
                ..Default::default()
            }
        } else {
            MetaDeleteFlags::default()
        };
        let r = self.op("md", client.meta_delete(&key, flags)).await?;
        expect_status("md", &r, &[MetaStatus::Hd, MetaStatus::Nf])?;
        Ok(r.status == MetaStatus::Hd)
    }

    /// Reads a call's entry and the current generations in one round trip; only an entry
    /// stamped with the current generations is fresh.
    pub(crate) async fn read(&self, function: &Function, key: &Key) -> Result<Read, Error> {
        let flags = MetaGetFlags {
            value: true,
            client_flags: true,
            cas: true,
            ..Default::default()
        };
        let (item, stamp) = join2(
            self.op("mg", self.request(|c| c.meta_get(key, flags))),
            self.stamp(function),
        )
        .await;
        let item = item?;
        self.give_back(key, &item).await;
        let stamp = stamp?;
        match (item.status, item.value) {
            (MetaStatus::Va, Some(bytes)) if !item.flags.stale && !bytes.is_empty() => {
                let flags = item.flags.client_flags.unwrap_or(0);
                if codec::stamp(flags, &bytes).is_ok_and(|s| s == stamp) {
                    Ok(Read::Fresh(Encoded { flags, bytes }))
                } else {
                    Ok(Read::Missing)
                }
            }
            _ => Ok(Read::Missing),
        }
    }

    /// A request on the client; on a disabled cache, [`ProtoError::Unavailable`].
    pub(crate) async fn request<'a, T, F, Fut>(&'a self, f: F) -> Result<T, ProtoError>
    where
        F: FnOnce(&'a C) -> Fut,
        Fut: Future<Output = Result<T, ProtoError>>,
    {
        self.request_on(None, f).await
    }

    /// [`request`](Self::request) through `via` (a pinned handle of the client) if given.
    pub(crate) async fn request_on<'a, T, F, Fut>(
        &'a self,
        via: Option<&'a C>,
        f: F,
    ) -> Result<T, ProtoError>
    where
        F: FnOnce(&'a C) -> Fut,
        Fut: Future<Output = Result<T, ProtoError>>,
    {
        match via.or(self.inner.client.as_ref()) {
            Some(client) => f(client).await,
            None => Err(ProtoError::Unavailable("caching is disabled".into())),
        }
    }

    /// Two handles of the client pinned to one connection (see [`Backend::pinned_pair`]),
    /// for requests sent together.
    pub(crate) fn pinned_pair(&self) -> (Option<C>, Option<C>) {
        match self.inner.client.as_ref().and_then(Backend::pinned_pair) {
            Some((a, b)) => (Some(a), Some(b)),
            None => (None, None),
        }
    }

    /// A plain `mg` of a stale item wins the right to recompute it (memcached hands the win
    /// to the first reader of a stale item, whatever its flags). The key registry only looks:
    /// it gives the win back at once, so that a memoized call can take it.
    async fn give_back(&self, key: &Key, item: &MetaResponse) {
        if let (true, Some(cas)) = (item.flags.won, item.flags.cas) {
            self.release(key, cas, true).await;
        }
    }

    /// Encodes `value`, a borrowed form of an entry `E` of `function`, with this cache's
    /// codec and `E`'s type fingerprint.
    pub(crate) fn encode<E, V: Serialize + ?Sized>(
        &self,
        function: &Function,
        value: &V,
        stamp: Stamp,
    ) -> Result<Encoded, Error> {
        let cfg = &self.inner.config;
        let fingerprint = codec::type_fingerprint::<E>(cfg.codec, function.version());
        codec::encode(value, cfg.codec, cfg.compress_above, stamp, fingerprint)
            .map_err(Error::Encode)
    }

    /// The `T` token for a function's result.
    pub(crate) fn exptime(&self, function: &Function, negative: bool) -> i32 {
        self.exptime_with(function, negative, None)
    }

    /// The `T` token for a function's result, `ttl` (from the value: `ttl_fn`) over the
    /// function's and the cache's positive time to live.
    pub(crate) fn exptime_with(
        &self,
        function: &Function,
        negative: bool,
        ttl: Option<Duration>,
    ) -> i32 {
        let cfg = &self.inner.config;
        let positive = ttl.or(function.ttl()).unwrap_or(cfg.ttl);
        let ttl = if negative {
            function
                .negative_ttl()
                .or(cfg.negative_ttl)
                .unwrap_or(positive)
        } else {
            positive
        };
        let jitter = cfg.ttl_jitter.as_millis() as u64;
        let ttl = if ttl.is_zero() || jitter == 0 {
            ttl
        } else {
            ttl.saturating_add(Duration::from_millis(random_u64() % (jitter + 1)))
        };
        self.exptime_of(ttl)
    }

    /// memcached's expiration for a duration: 0 for none, whole seconds rounded up, an
    /// absolute unix time beyond 30 days.
    pub(crate) fn exptime_of(&self, ttl: Duration) -> i32 {
        exptime_of(ttl, SystemTime::now())
    }

    /// One round trip under the op timeout and the circuit breaker's accounting.
    pub(crate) fn op<T, F>(&self, what: &'static str, f: F) -> Op<'_, C, F>
    where
        F: Future<Output = Result<T, ProtoError>>,
    {
        Op {
            inner: &self.inner,
            what,
            fut: f,
            timer: None,
        }
    }
}

pin_project_lite::pin_project! {
    /// A round trip under the op timeout, reported to the circuit breaker. A struct rather than
    /// an `async fn`, so that it adds a few bytes to the request's future, not a copy of it.
    pub(crate) struct Op<'a, C, F> {
        inner: &'a Inner<C>,
        what: &'static str,
        #[pin]
        fut: F,
        timer: Option<Pin<Box<dyn Timer>>>,
    }
}

impl<C: Backend, T, F: Future<Output = Result<T, ProtoError>>> Future for Op<'_, C, F> {
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let r = match this.fut.poll(cx) {
            Poll::Ready(r) => r,
            Poll::Pending => {
                let Some(limit) = this.inner.config.op_timeout else {
                    return Poll::Pending;
                };
                let Some(client) = &this.inner.client else {
                    return Poll::Pending;
                };
                let timer = this.timer.get_or_insert_with(|| {
                    let rt = client.runtime();
                    rt.timer(rt.now() + limit)
                });
                if timer.as_mut().poll_fire(cx).is_pending() {
                    return Poll::Pending;
                }
                Err(ProtoError::Timeout)
            }
        };
        Poll::Ready(match r {
            Ok(v) => {
                this.inner.breaker.success();
                Ok(v)
            }
            Err(e) => {
                this.inner.breaker.failure(this.what, &e);
                Err(Error::Memcached(e))
            }
        })
    }
}

pub(crate) fn exptime_of(ttl: Duration, now: SystemTime) -> i32 {
    if ttl.is_zero() {
        return 0;
    }
    let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    let secs = if secs > MAX_RELATIVE_TTL {
        now.duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
            .saturating_add(secs)
    } else {
        secs
    };
    i32::try_from(secs).unwrap_or(i32::MAX)
}

/// Fails unless the reply has one of `ok`.
pub(crate) fn expect_status(
    command: &'static str,
    r: &MetaResponse,
    ok: &[MetaStatus],
) -> Result<(), Error> {
    if ok.contains(&r.status) {
        Ok(())
    } else {
        Err(Error::Unexpected {
            command,
            reply: format!("{:?}", r.status),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exptimes() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(exptime_of(Duration::ZERO, now), 0);
        assert_eq!(exptime_of(Duration::from_millis(1), now), 1);
        assert_eq!(exptime_of(Duration::from_secs(60), now), 60);
        assert_eq!(
            exptime_of(Duration::from_secs(MAX_RELATIVE_TTL), now),
            2_592_000
        );
        assert_eq!(
            exptime_of(Duration::from_secs(MAX_RELATIVE_TTL + 1), now),
            1_700_000_000 + 2_592_001
        );
        assert_eq!(exptime_of(Duration::from_secs(u64::MAX / 2), now), i32::MAX);
    }
}
