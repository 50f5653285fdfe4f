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
//! Whatever memcached does, the function runs at most once per call and its result is
//! returned: this module never turns a cache failure into the caller's error.

use crate::cache::{exptime_of, Backend, Cache};
use crate::codec::{self, Encoded, Stamp};
use crate::flight::{Leader, Outcome, Role};
use crate::join::join2;
use crate::key::{Args, Function};
use crate::shape::Shape;
use mcache_proto::{Key, MetaDeleteFlags, MetaGetFlags, MetaResponse, MetaSetFlags, MetaStatus};
use serde::de::DeserializeOwned;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// First and longest pause between polls for a value another process is computing.
const POLL_FIRST: Duration = Duration::from_millis(2);
const POLL_MAX: Duration = Duration::from_millis(50);
/// How many times one call marks an outdated value stale before giving up on the cache.
const MAX_MARKS: u32 = 3;

/// What the first round trips found.
enum Lookup<T, C: Backend> {
    /// A fresh value.
    Hit(Encoded, T),
    /// A stale value, served while another caller recomputes (stale-while-revalidate).
    Stale(Encoded, T),
    /// This caller recomputes, under a lease.
    Won(Lease<C>),
    /// Run the function, store nothing: memcached failed, or waiting took too long.
    Bypass,
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
    /// This caller won the item (a `W`); a refresh of a live item did not, and must not
    /// release what it did not take.
    won: bool,
    armed: bool,
}

impl<C: Backend> Lease<C> {
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
            let runtime = cache.inner.client.runtime().clone();
            runtime.spawn(Box::pin(async move {
                cache.release(&key, cas, stale).await;
            }));
        }
    }
}

impl<C: Backend> Cache<C> {
    /// Memoizes one call: returns the cached result of `function` for `args`, or runs
    /// `compute`, caches what the [`Shape`] says to cache, and returns it. What `#[memoize]`
    /// generates calls this.
    ///
    /// Identical concurrent calls in this process share one run; across processes, one caller
    /// recomputes while the others wait (or are served the stale value). memcached failing,
    /// slow or answering garbage only means `compute` runs uncached.
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
        let key = self.key(function, args);
        let take_stale = self.inner.config.stale_while_revalidate;
        loop {
            match self.inner.flights.join(&key) {
                Role::Leader(leader) => {
                    return self.lead::<S, _, _>(function, &key, leader, compute).await
                }
                Role::Follower(flight) => match flight.wait(take_stale).await {
                    Outcome::Done(Some(e)) | Outcome::Stale(e) => {
                        match codec::decode::<S::Entry>(e.flags, &e.bytes) {
                            Ok(entry) => return S::output(entry),
                            Err(err) => {
                                tracing::warn!(%key, error = %err, "shared result does not decode");
                                return compute().await;
                            }
                        }
                    }
                    // The leader's result cannot be shared (say, an error not cached).
                    Outcome::Done(None) => return compute().await,
                    Outcome::Abandoned => continue,
                },
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
        let key = self.key(function, args);
        self.inner.flights.detach(&key);
        let lease = if self.inner.breaker.allow() {
            let flags = MetaGetFlags {
                cas: true,
                vivify: Some(self.lease_secs()),
                ..Default::default()
            };
            let (item, stamp) = join2(
                self.op("mg", self.inner.client.meta_get(&key, flags)),
                self.stamp(function),
            )
            .await;
            match (item, stamp) {
                (Ok(r), Ok(stamp)) => r.flags.cas.map(|cas| Lease {
                    cache: self.clone(),
                    key: key.clone(),
                    cas,
                    stamp,
                    stale: r.flags.stale,
                    won: r.flags.won,
                    armed: true,
                }),
                _ => None,
            }
        } else {
            None
        };
        let out = compute().await;
        if let Some(lease) = lease {
            self.fill::<S>(function, &out, lease).await;
        }
        out
    }

    async fn lead<S, F, Fut>(
        &self,
        function: &Function,
        key: &Key,
        leader: Leader<'_>,
        compute: F,
    ) -> S::Output
    where
        S: Shape,
        F: FnOnce() -> Fut,
        Fut: Future<Output = S::Output>,
    {
        match self.lookup::<S::Entry>(function, key, &leader).await {
            Lookup::Hit(e, entry) | Lookup::Stale(e, entry) => {
                leader.finish(Some(Arc::new(e)));
                S::output(entry)
            }
            Lookup::Won(lease) => {
                let out = compute().await;
                let shared = self.fill::<S>(function, &out, lease).await;
                leader.finish(shared.map(Arc::new));
                out
            }
            Lookup::Bypass => {
                let out = compute().await;
                let unstamped = Stamp {
                    namespace: 0,
                    function: 0,
                };
                let shared =
                    S::entry(&out).and_then(|(entry, _)| self.encode(entry, unstamped).ok());
                leader.finish(shared.map(Arc::new));
                out
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
    ) -> Lookup<T, C> {
        if !self.inner.breaker.allow() {
            return Lookup::Bypass;
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
        let (item, stamp) = join2(
            self.op("mg", self.inner.client.meta_get(key, flags)),
            self.stamp(function),
        )
        .await;
        let (Ok(mut item), Ok(stamp)) = (item, stamp) else {
            return Lookup::Bypass;
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
                return Lookup::Bypass;
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
                return Lookup::Won(Lease {
                    cache: self.clone(),
                    key: key.clone(),
                    cas,
                    stamp,
                    stale: got.stale,
                    // An early recache that fails leaves the live value alone.
                    won: !early,
                    armed: true,
                });
            }
            if let Some(bytes) = live {
                if codec::stamp(client_flags, bytes) == Ok(stamp) {
                    match codec::decode::<T>(client_flags, bytes) {
                        Ok(entry) => {
                            let e = Encoded {
                                flags: client_flags,
                                bytes: bytes.clone(),
                            };
                            return Lookup::Hit(e, entry);
                        }
                        Err(err) => {
                            tracing::warn!(%key, error = %err, "cached value does not decode: recomputing")
                        }
                    }
                }
            }
            if live.is_none() && (got.win_sent || got.stale) {
                // A stub or a stale value: someone else is recomputing.
                if let (Some(bytes), true) = (&value, cfg.stale_while_revalidate) {
                    if let Ok(entry) = codec::decode::<T>(client_flags, bytes) {
                        let e = Encoded {
                            flags: client_flags,
                            bytes: bytes.clone(),
                        };
                        return Lookup::Stale(e, entry);
                    }
                }
                if waited >= cfg.lease_wait {
                    tracing::debug!(%key, ?waited, "recompute elsewhere takes too long: running uncached");
                    return Lookup::Bypass;
                }
                mcache_client::sleep(&**self.inner.client.runtime(), pause).await;
                waited += pause;
                pause = (pause * 2).min(POLL_MAX);
            } else {
                // Outdated generations, undecodable or foreign: mark it stale, so that the
                // next read hands exactly one caller the recompute.
                if marks == MAX_MARKS {
                    return Lookup::Bypass;
                }
                marks += 1;
                let flags = MetaDeleteFlags {
                    invalidate: true,
                    compare_cas: Some(cas),
                    ..Default::default()
                };
                if self
                    .op("md", self.inner.client.meta_delete(key, flags))
                    .await
                    .is_err()
                {
                    return Lookup::Bypass;
                }
            }
            item = match self.op("mg", self.inner.client.meta_get(key, flags)).await {
                Ok(r) => r,
                Err(_) => return Lookup::Bypass,
            };
        }
    }

    /// Stores `out` under `lease`; returns its encoding for in-process followers.
    async fn fill<S: Shape>(
        &self,
        function: &Function,
        out: &S::Output,
        lease: Lease<C>,
    ) -> Option<Encoded> {
        let Some((entry, negative)) = S::entry(out) else {
            lease.release().await;
            return None;
        };
        let encoded = match self.encode(entry, lease.stamp) {
            Ok(e) => e,
            Err(err) => {
                tracing::warn!(key = %lease.key, error = %err, "result cannot be encoded: not cached");
                lease.release().await;
                return None;
            }
        };
        let flags = MetaSetFlags {
            ttl: Some(self.exptime(function, negative)),
            client_flags: Some(encoded.flags),
            compare_cas: Some(lease.cas),
            ..Default::default()
        };
        match self
            .op(
                "ms",
                self.inner
                    .client
                    .meta_set(&lease.key, encoded.bytes.clone(), flags),
            )
            .await
        {
            Ok(r) if r.status == MetaStatus::Hd => lease.disarm(),
            Ok(r) => {
                // EX or NF: invalidated or replaced while computing. Storing would bring back
                // data older than that: the result goes to this caller only.
                tracing::debug!(key = %lease.key, status = ?r.status, "fill lost to an invalidation: not stored");
                lease.disarm();
            }
            Err(_) => lease.release().await,
        }
        Some(encoded)
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
            .op("md", self.inner.client.meta_delete(key, flags))
            .await
        {
            tracing::debug!(%key, error = %e, "lease not released; it expires on its own");
        }
    }
}
