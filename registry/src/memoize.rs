//! Memoization: single flight within the process, leases across processes, and fills that
//! lose to invalidations.
//!
//! A call's first round trip is pipelined: `mg <key> v c f N<lease>` and `get <ns counter>
//! <function counter>`. A fresh value (stamped with the current generations) is a hit. On a miss the
//! `N` flag creates a stub and hands this caller the win (`W`): it runs the function and
//! stores the result with `ms ... C<cas>` of the stub, so an invalidation meanwhile (which
//! deletes the stub or bumps its cas) makes the fill fail instead of storing a value older
//! than the invalidation. Callers that see `Z` (someone else won) poll briefly, or with
//! stale-while-revalidate are served the stale value. A value whose stamp is outdated is
//! marked stale (`md I C<cas>`) so that exactly one caller wins its recompute.
//!
//! A leased `mg` (one with `N`) whose caller goes away before its reply is read (the caller
//! dropped, the op timeout) is finished in the background: if memcached granted the win, the
//! stub is released at once, so nobody waits out the lease of a caller that is gone.
//!
//! Whatever memcached does, the function runs at most once per call and its result is
//! returned: this module never turns a cache failure into the caller's error. Each call is
//! counted (see `stats.rs`) and runs in a debug-level `memoize` span.

use crate::cache::{exptime_of, Backend, Cache};
use crate::codec::{self, Encoded, Stamp};
use crate::flight::{Leader, Outcome, Role};
use crate::join::join2;
use crate::key::{Args, Function};
use crate::shape::Shape;
use crate::stats::{Events, Served};
use mcache_proto::{
    Error as ProtoError, Key, MetaDeleteFlags, MetaGetFlags, MetaResponse, MetaSetFlags, MetaStatus,
};
use serde::de::DeserializeOwned;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tracing::Instrument;

/// First and longest pause between polls for a value another process is computing.
const POLL_FIRST: Duration = Duration::from_millis(2);
const POLL_MAX: Duration = Duration::from_millis(50);
/// How many times one call marks an outdated value stale before giving up on the cache.
const MAX_MARKS: u32 = 3;
/// The stamp of a value computed without the cache (shared in-process only).
const UNSTAMPED: Stamp = Stamp {
    namespace: 0,
    function: 0,
};

/// A time to live computed from the stored entry (`ttl_fn`; used by `#[memoize]`'s expansion).
pub type TtlRef<'a, E> = &'a (dyn Fn(&E) -> Duration + Sync);

/// An optional [`TtlRef`].
pub type TtlFn<'a, E> = Option<TtlRef<'a, E>>;

/// What the first round trips found.
enum Lookup<T, C: Backend> {
    /// A fresh value.
    Hit(Encoded, T),
    /// A stale value, served while another caller recomputes (stale-while-revalidate).
    Stale(Encoded, T),
    /// This caller recomputes, under a lease.
    Won(Lease<C>),
    /// Run the function, store nothing: the breaker is open (`true`), or memcached failed or
    /// waiting took too long (`false`).
    Bypass(bool),
}

/// The right to fill one key: the cas to fill with. Dropped armed (the caller was cancelled
/// or the function panicked), it is released in the background so nobody waits for it.
pub(crate) struct Lease<C: Backend> {
    cache: Cache<C>,
    key: Key,
    cas: u64,
    stamp: Stamp,
    /// The item was stale (so releasing re-marks it stale rather than deleting it).
    stale: bool,
    /// This caller won the item (a `W`) and must give it back if it does not fill it; an
    /// early recache of a live item (`W` on a live value) and a refresh of a live item did
    /// not take anything that needs giving back.
    won: bool,
    armed: bool,
}

impl<C: Backend> Lease<C> {
    /// The lease a leased `mg`'s reply grants, if it has a cas.
    fn of(cache: &Cache<C>, key: &Key, r: &MetaResponse) -> Option<Lease<C>> {
        let live = r.value.as_ref().is_some_and(|v| !v.is_empty()) && !r.flags.stale;
        r.flags.cas.map(|cas| Lease {
            cache: cache.clone(),
            key: key.clone(),
            cas,
            stamp: UNSTAMPED,
            stale: r.flags.stale,
            won: r.flags.won && !live,
            armed: true,
        })
    }

    fn disarm(mut self) {
        self.armed = false;
    }

    async fn release(mut self) {
        self.armed = false;
        if self.won {
            self.cache.release(&self.key, self.cas, self.stale).await;
        }
    }
}

impl<C: Backend> Drop for Lease<C> {
    fn drop(&mut self) {
        if self.armed && self.won {
            let (cache, key, cas, stale) =
                (self.cache.clone(), self.key.clone(), self.cas, self.stale);
            if let Some(client) = cache.client() {
                let runtime = client.runtime().clone();
                runtime.spawn(Box::pin(async move {
                    cache.release(&key, cas, stale).await;
                }));
            }
        }
    }
}

type Reply = Pin<Box<dyn Future<Output = Result<MetaResponse, ProtoError>> + Send>>;

/// A leased `mg` (`N`): its reply with the lease it grants. If it is dropped before the reply
/// is read (its caller went away, or the op timeout fired), the request is finished in the
/// background and a lease it was granted is released: memcached hands the win to whoever
/// sent the request, and a win nobody holds would stall every other caller for `lease_ttl`.
struct LeasedGet<C: Backend> {
    cache: Cache<C>,
    key: Key,
    reply: Option<Reply>,
}

impl<C: Backend> LeasedGet<C> {
    /// The `mg` of `key`, through `via` (a pinned handle of the client) if given.
    fn new(cache: &Cache<C>, via: Option<C>, key: &Key, flags: MetaGetFlags) -> LeasedGet<C> {
        let (owner, k) = (cache.clone(), key.clone());
        let reply: Reply = Box::pin(async move {
            owner
                .request_on(via.as_ref(), |c| c.meta_get(&k, flags))
                .await
        });
        LeasedGet {
            cache: cache.clone(),
            key: key.clone(),
            reply: Some(reply),
        }
    }
}

impl<C: Backend> Future for LeasedGet<C> {
    type Output = Result<(MetaResponse, Option<Lease<C>>), ProtoError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(reply) = self.reply.as_mut() else {
            return Poll::Ready(Err(ProtoError::Unavailable(
                "polled after completion".into(),
            )));
        };
        let r = match reply.as_mut().poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(r) => r,
        };
        self.reply = None;
        Poll::Ready(r.map(|r| {
            let lease = Lease::of(&self.cache, &self.key, &r);
            (r, lease)
        }))
    }
}

impl<C: Backend> Drop for LeasedGet<C> {
    fn drop(&mut self) {
        let (Some(reply), Some(client)) = (self.reply.take(), self.cache.client()) else {
            return;
        };
        let (cache, key) = (self.cache.clone(), self.key.clone());
        client.runtime().spawn(Box::pin(async move {
            if let Ok(r) = reply.await {
                if let Some(lease) = Lease::of(&cache, &key, &r) {
                    tracing::debug!(%key, "releasing the lease of a call that went away");
                    lease.release().await;
                }
            }
        }));
    }
}

/// The debug-level span a memoized call runs in.
pub(crate) fn call_span(function: &Function) -> tracing::Span {
    tracing::debug_span!(
        "memoize",
        function = function.path(),
        outcome = tracing::field::Empty
    )
}

impl<C: Backend> Cache<C> {
    /// Memoizes one call: returns the cached result of `function` for `args`, or runs
    /// `compute`, caches what the [`Shape`] says to cache, and returns it. What `#[memoize]`
    /// generates calls this.
    ///
    /// Identical concurrent calls in this process share one run; across processes, one caller
    /// recomputes while the others wait (or are served the stale value). memcached failing,
    /// slow or answering garbage only means `compute` runs uncached. The call is counted in
    /// [`Cache::stats`] and runs in a debug-level `memoize` span (fields `function`, `outcome`).
    pub async fn memoize<S, F, Fut>(
        &self,
        function: &Function,
        args: &Args,
        compute: F,
    ) -> S::Output
    where
        S: Shape,
        F: FnOnce() -> Fut,
        Fut: Future<Output = S::Output>,
    {
        self.memoize_with::<S, F, Fut>(function, args, None, compute)
            .await
    }

    /// [`Cache::memoize`] with a time to live computed from the entry to store.
    pub(crate) async fn memoize_with<S, F, Fut>(
        &self,
        function: &Function,
        args: &Args,
        ttl_fn: TtlFn<'_, S::Entry>,
        compute: F,
    ) -> S::Output
    where
        S: Shape,
        F: FnOnce() -> Fut,
        Fut: Future<Output = S::Output>,
    {
        let span = call_span(function);
        let mut events = Events::default();
        let (out, served) = self
            .memoize_counted::<S, F, Fut>(function, args, ttl_fn, compute, &mut events)
            .instrument(span.clone())
            .await;
        self.count_call(function, &span, served, events);
        out
    }

    /// Records how a call was served: in its span and in the function's counters.
    pub(crate) fn count_call(
        &self,
        function: &Function,
        span: &tracing::Span,
        served: Served,
        events: Events,
    ) {
        span.record("outcome", served.as_str());
        self.inner.stats.record(function, served, events);
    }

    /// Counts a call that ran uncached before reaching memcached (its key could not be made).
    pub(crate) fn count_uncached(&self, function: &Function) {
        let events = Events {
            lease_wait: false,
            errors: 1,
        };
        self.inner.stats.record(function, Served::Miss, events);
    }

    async fn memoize_counted<S, F, Fut>(
        &self,
        function: &Function,
        args: &Args,
        ttl_fn: TtlFn<'_, S::Entry>,
        compute: F,
        events: &mut Events,
    ) -> (S::Output, Served)
    where
        S: Shape,
        F: FnOnce() -> Fut,
        Fut: Future<Output = S::Output>,
    {
        if self.is_disabled() {
            return (compute().await, Served::Bypass);
        }
        let key = self.key(function, args);
        let take_stale = self.inner.config.stale_while_revalidate;
        loop {
            match self.inner.flights.join(&key) {
                Role::Leader(leader) => {
                    return self
                        .lead::<S, _, _>(function, &key, leader, ttl_fn, compute, events)
                        .await
                }
                Role::Follower(flight) => {
                    let (e, served) = match flight.wait(take_stale).await {
                        Outcome::Done(Some(e)) => (e, Served::Hit),
                        Outcome::Stale(e) if take_stale => (e, Served::Stale),
                        Outcome::Stale(e) => (e, Served::Hit),
                        // The leader's result cannot be shared (say, an error not cached).
                        Outcome::Done(None) => return (compute().await, Served::Miss),
                        Outcome::Abandoned => continue,
                    };
                    return match codec::decode::<S::Entry>(e.flags, &e.bytes, function.version()) {
                        Ok(entry) => (S::output(entry), served),
                        Err(err) => {
                            tracing::warn!(%key, error = %err, "shared result does not decode");
                            events.errors += 1;
                            (compute().await, Served::Miss)
                        }
                    };
                }
            }
        }
    }

    /// Recomputes one call and stores the result, whatever is cached (a refresh that races an
    /// invalidation or a newer fill loses: nothing older than either is stored).
    pub async fn refresh<S, F, Fut>(
        &self,
        function: &Function,
        args: &Args,
        compute: F,
    ) -> S::Output
    where
        S: Shape,
        F: FnOnce() -> Fut,
        Fut: Future<Output = S::Output>,
    {
        self.refresh_with::<S, F, Fut>(function, args, None, compute)
            .await
    }

    /// [`Cache::refresh`] with a time to live computed from the entry to store.
    pub(crate) async fn refresh_with<S, F, Fut>(
        &self,
        function: &Function,
        args: &Args,
        ttl_fn: TtlFn<'_, S::Entry>,
        compute: F,
    ) -> S::Output
    where
        S: Shape,
        F: FnOnce() -> Fut,
        Fut: Future<Output = S::Output>,
    {
        if self.is_disabled() {
            return compute().await;
        }
        let key = self.key(function, args);
        self.inner.flights.detach(&key);
        let lease = if self.inner.breaker.allow() {
            let flags = MetaGetFlags {
                cas: true,
                vivify: Some(self.lease_secs()),
                ..Default::default()
            };
            let (for_value, for_stamp) = self.pinned_pair();
            let (item, stamp) = join2(
                self.op("mg", LeasedGet::new(self, for_value, &key, flags)),
                self.stamp_on(for_stamp.as_ref(), function),
            )
            .await;
            match (item, stamp) {
                (Ok((_, Some(mut lease))), Ok(stamp)) => {
                    lease.stamp = stamp;
                    Some(lease)
                }
                _ => None,
            }
        } else {
            None
        };
        let out = compute().await;
        if let Some(lease) = lease {
            self.fill::<S>(function, &out, lease, ttl_fn).await;
        }
        out
    }

    async fn lead<S, F, Fut>(
        &self,
        function: &Function,
        key: &Key,
        leader: Leader<'_>,
        ttl_fn: TtlFn<'_, S::Entry>,
        compute: F,
        events: &mut Events,
    ) -> (S::Output, Served)
    where
        S: Shape,
        F: FnOnce() -> Fut,
        Fut: Future<Output = S::Output>,
    {
        match self
            .lookup::<S::Entry>(function, key, &leader, events)
            .await
        {
            Lookup::Hit(e, entry) => {
                leader.finish(Some(e));
                (S::output(entry), Served::Hit)
            }
            Lookup::Stale(e, entry) => {
                leader.finish(Some(e));
                (S::output(entry), Served::Stale)
            }
            Lookup::Won(lease) => {
                let out = compute().await;
                let shared = self.fill::<S>(function, &out, lease, ttl_fn).await;
                if shared.as_ref().is_some_and(|(_, stored)| !stored) {
                    events.errors += 1;
                }
                leader.finish(shared.map(|(e, _)| e));
                (out, Served::Miss)
            }
            Lookup::Bypass(breaker) => {
                let out = compute().await;
                let shared = S::entry(&out).and_then(|(entry, _)| {
                    self.encode::<S::Entry, S::Entry>(function, entry, UNSTAMPED)
                        .ok()
                });
                leader.finish(shared);
                (
                    out,
                    if breaker {
                        Served::Bypass
                    } else {
                        Served::Miss
                    },
                )
            }
        }
    }

    fn lease_secs(&self) -> i32 {
        exptime_of(self.inner.config.lease_ttl, std::time::SystemTime::now()).max(1)
    }

    async fn lookup<T: DeserializeOwned>(
        &self,
        function: &Function,
        key: &Key,
        leader: &Leader<'_>,
        events: &mut Events,
    ) -> Lookup<T, C> {
        if !self.inner.breaker.allow() {
            return Lookup::Bypass(true);
        }
        let cfg = &self.inner.config;
        let flags = MetaGetFlags {
            value: true,
            cas: true,
            client_flags: true,
            vivify: Some(self.lease_secs()),
            recache: cfg
                .recache_before
                .map(|d| exptime_of(d, std::time::SystemTime::now())),
            ..Default::default()
        };
        // The value and its generation counters in one write and one read.
        let (for_value, for_stamp) = self.pinned_pair();
        let (item, stamp) = join2(
            self.op("mg", LeasedGet::new(self, for_value, key, flags)),
            self.stamp_on(for_stamp.as_ref(), function),
        )
        .await;
        let ((mut item, mut lease), stamp) = match (item, stamp) {
            (Ok(item), Ok(stamp)) => (item, stamp),
            _ => {
                events.errors += 1;
                return Lookup::Bypass(false);
            }
        };
        let mut marks = 0;
        let mut waited = Duration::ZERO;
        let mut pause = POLL_FIRST;
        loop {
            let MetaResponse {
                status,
                flags: got,
                value,
            } = item;
            let value = value.filter(|v| !v.is_empty());
            let client_flags = got.client_flags.unwrap_or(0);
            let (Some(cas), MetaStatus::Va | MetaStatus::Hd) = (got.cas, status) else {
                // EN: the stub could not be created (memcached out of memory).
                tracing::debug!(%key, ?status, "no lease to be had: running uncached");
                return Lookup::Bypass(false);
            };
            // A value not marked stale is live; with `Z` someone recaches it early (`R`), and
            // it is still valid.
            let live = value.as_ref().filter(|_| !got.stale);
            if got.won {
                let early = live.is_some();
                if let Some(bytes) = &value {
                    // Followers get the value meanwhile: always when it is live, with
                    // stale-while-revalidate when it is stale.
                    if early || cfg.stale_while_revalidate {
                        leader.publish_interim(
                            Arc::new(Encoded {
                                flags: client_flags,
                                bytes: bytes.clone(),
                            }),
                            early,
                        );
                    }
                }
                if let Some(mut lease) = lease.take() {
                    lease.stamp = stamp;
                    return Lookup::Won(lease);
                }
            }
            // Not won: nothing to give back.
            if let Some(lease) = lease.take() {
                lease.disarm();
            }
            if let Some(bytes) = live {
                if codec::stamp(client_flags, bytes) == Ok(stamp) {
                    match codec::decode::<T>(client_flags, bytes, function.version()) {
                        Ok(entry) => {
                            let e = Encoded {
                                flags: client_flags,
                                bytes: bytes.clone(),
                            };
                            return Lookup::Hit(e, entry);
                        }
                        Err(err) => {
                            tracing::debug!(%key, error = %err, "cached value is not this call's type: recomputing")
                        }
                    }
                }
            }
            if live.is_none() && (got.win_sent || got.stale) {
                // A stub or a stale value: someone else is recomputing.
                if let (Some(bytes), true) = (&value, cfg.stale_while_revalidate) {
                    if let Ok(entry) = codec::decode::<T>(client_flags, bytes, function.version()) {
                        let e = Encoded {
                            flags: client_flags,
                            bytes: bytes.clone(),
                        };
                        return Lookup::Stale(e, entry);
                    }
                }
                if waited >= cfg.lease_wait {
                    tracing::debug!(%key, ?waited, "recompute elsewhere takes too long: running uncached");
                    return Lookup::Bypass(false);
                }
                events.lease_wait = true;
                match self.client() {
                    Some(client) => mcache_client::sleep(&**client.runtime(), pause).await,
                    None => return Lookup::Bypass(true),
                }
                waited += pause;
                pause = (pause * 2).min(POLL_MAX);
            } else {
                // Outdated generations, another type, undecodable or foreign: mark it stale,
                // so that the next read hands exactly one caller the recompute.
                if marks == MAX_MARKS {
                    return Lookup::Bypass(false);
                }
                marks += 1;
                let flags = MetaDeleteFlags {
                    invalidate: true,
                    compare_cas: Some(cas),
                    ..Default::default()
                };
                if self
                    .op("md", self.request(|c| c.meta_delete(key, flags)))
                    .await
                    .is_err()
                {
                    events.errors += 1;
                    return Lookup::Bypass(false);
                }
            }
            (item, lease) = match self.op("mg", LeasedGet::new(self, None, key, flags)).await {
                Ok(r) => r,
                Err(_) => {
                    events.errors += 1;
                    return Lookup::Bypass(false);
                }
            };
        }
    }

    /// Stores `out` under `lease`; returns its encoding for in-process followers, and whether
    /// it was stored (or lost to an invalidation, which is no failure).
    async fn fill<S: Shape>(
        &self,
        function: &Function,
        out: &S::Output,
        lease: Lease<C>,
        ttl_fn: TtlFn<'_, S::Entry>,
    ) -> Option<(Encoded, bool)> {
        let Some((entry, negative)) = S::entry(out) else {
            lease.release().await;
            return None;
        };
        let encoded = match self.encode::<S::Entry, S::Entry>(function, entry, lease.stamp) {
            Ok(e) => e,
            Err(err) => {
                tracing::warn!(key = %lease.key, error = %err, "result cannot be encoded: not cached");
                lease.release().await;
                return None;
            }
        };
        let ttl = ttl_fn.map(|f| f(entry));
        let flags = MetaSetFlags {
            ttl: Some(self.exptime_with(function, negative, ttl)),
            client_flags: Some(encoded.flags),
            compare_cas: Some(lease.cas),
            ..Default::default()
        };
        let bytes = encoded.bytes.clone();
        match self
            .op("ms", self.request(|c| c.meta_set(&lease.key, bytes, flags)))
            .await
        {
            Ok(r) if r.status == MetaStatus::Hd => lease.disarm(),
            Ok(r) => {
                // EX or NF: invalidated or replaced while computing. Storing would bring back
                // data older than that: the result goes to this caller only.
                tracing::debug!(key = %lease.key, status = ?r.status, "fill lost to an invalidation: not stored");
                lease.disarm();
            }
            Err(_) => {
                lease.release().await;
                return Some((encoded, false));
            }
        }
        Some((encoded, true))
    }

    /// Gives up a lease: deletes the stub, or re-marks a stale item (which hands the win to the
    /// next reader), if its cas is still ours.
    pub(crate) async fn release(&self, key: &Key, cas: u64, stale: bool) {
        let flags = MetaDeleteFlags {
            compare_cas: Some(cas),
            invalidate: stale,
            ..Default::default()
        };
        if let Err(e) = self
            .op("md", self.request(|c| c.meta_delete(key, flags)))
            .await
        {
            tracing::debug!(%key, error = %e, "lease not released; it expires on its own");
        }
    }
}
