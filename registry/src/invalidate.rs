//! Generations: O(1) invalidation of a whole function or namespace.
//!
//! Each namespace and each function has a counter in memcached (`<ns>:!g`,
//! `<ns>:<path>:!g`). Every stored value carries the two counters it was computed under; a
//! value whose stamp differs from the current counters is stale. Invalidating is one meta
//! `ma` that bumps a counter. A counter is created (autovivified with `N0`) at a random 63-bit
//! value, so one that is evicted and recreated never matches an old stamp again. Both
//! counters are read with one `get <ns counter> <function counter>`. This module never deletes
//! entries: stale ones are replaced when next computed, or age out.

use crate::cache::{Backend, Cache};
use crate::codec::Stamp;
use crate::error::Error;
use crate::join::join2;
use crate::key::Function;
use crate::random::random_u64;
use mcache_proto::{Key, MetaArithmeticFlags, MetaResponse, MetaStatus};

/// What to do to a counter.
#[derive(Clone, Copy)]
enum Step {
    /// Read it, creating it if missing.
    Read,
    /// Add one, creating it if missing.
    Bump,
}

impl<C: Backend> Cache<C> {
    /// Invalidates every cached call of `function` (in every process), in one round trip.
    /// [`Error::Unavailable`] at once while the circuit breaker is open; a no-op on a
    /// [disabled](Cache::disabled) cache.
    pub async fn invalidate_function(&self, function: &Function) -> Result<(), Error> {
        if self.gate()?.is_none() {
            return Ok(());
        }
        self.inner.flights.detach_all();
        let key = self.generation_key(function);
        self.counter(&key, Step::Bump).await.map(drop)
    }

    /// Invalidates every cached call in this cache's namespace (in every process), in one
    /// round trip.
    /// [`Error::Unavailable`] at once while the circuit breaker is open; a no-op on a
    /// [disabled](Cache::disabled) cache.
    pub async fn invalidate_namespace(&self) -> Result<(), Error> {
        if self.gate()?.is_none() {
            return Ok(());
        }
        self.inner.flights.detach_all();
        let key = self.inner.namespace_generation.clone();
        self.counter(&key, Step::Bump).await.map(drop)
    }

    /// The key of `function`'s generation counter in this cache's namespace.
    fn generation_key(&self, function: &Function) -> Key {
        self.inner
            .generation_keys
            .get(&self.inner.namespace, function)
    }

    /// The current generations of `function`: both counters in one request (`get <ns> <fn>`),
    /// plus one round trip to create a counter that does not exist yet.
    pub(crate) async fn stamp(&self, function: &Function) -> Result<Stamp, Error> {
        self.stamp_on(None, function).await
    }

    /// [`stamp`](Self::stamp) through `via` (a pinned handle, so that the counters travel
    /// with the value read beside them).
    pub(crate) async fn stamp_on(
        &self,
        via: Option<&C>,
        function: &Function,
    ) -> Result<Stamp, Error> {
        let fn_key = self.generation_key(function);
        let ns_key = &self.inner.namespace_generation;
        let (ns, f) = match via {
            // Pinned beside the value's `mg`: two single-key gets, which go out as `mg` too
            // (`Builder::single_get_as_meta`), so that memcached answers all three with one
            // write; a text `get` of both would be written on its own. One op, as the text
            // `get` was: one timeout and one report to the circuit breaker.
            Some(c) => {
                self.op("get", async {
                    let (ns, f) = join2(c.get(ns_key.clone()), c.get(fn_key.clone())).await;
                    Ok((ns?, f?))
                })
                .await?
            }
            None => {
                let values = self
                    .op(
                        "get",
                        self.request_on(None, |c| c.get_multi([ns_key.clone(), fn_key.clone()])),
                    )
                    .await?;
                let mut values = values.into_iter();
                (values.next().flatten(), values.next().flatten())
            }
        };
        let parse = |v: Option<mcache_proto::Value>| match v {
            None => Ok(None),
            Some(v) => parse_number(&v.data)
                .map(Some)
                .ok_or_else(|| Error::Unexpected {
                    command: "get",
                    reply: format!("generation counter {:?}", v.data),
                }),
        };
        let (namespace, function) = match (parse(ns)?, parse(f)?) {
            (Some(n), Some(f)) => (n, f),
            (n, f) => {
                // Boxed: a counter is missing only on a function's first call or after an
                // eviction, and this future would otherwise double the size of every hit's.
                let (n, f) = Box::pin(join2(
                    async {
                        match n {
                            Some(n) => Ok(n),
                            None => self.counter(ns_key, Step::Read).await,
                        }
                    },
                    async {
                        match f {
                            Some(f) => Ok(f),
                            None => self.counter(&fn_key, Step::Read).await,
                        }
                    },
                ))
                .await;
                (n?, f?)
            }
        };
        Ok(Stamp {
            namespace,
            function,
        })
    }

    /// `ma <key> N0 J<random> D<0|1> v`: creates the counter at a random value if it is
    /// missing (the delta is not applied then), else adds the delta; returns the value.
    async fn counter(&self, key: &Key, step: Step) -> Result<u64, Error> {
        let flags = MetaArithmeticFlags {
            vivify: Some(0),
            initial: Some(random_u64() >> 1),
            delta: Some(match step {
                Step::Read => 0,
                Step::Bump => 1,
            }),
            value: true,
            ..Default::default()
        };
        let r = self
            .op("ma", self.request(|c| c.meta_arithmetic(key, flags)))
            .await?;
        parse_counter("ma", &r)
    }
}

/// A counter's value: decimal digits, maybe padded with spaces (memcached's `incr` keeps a
/// value's length when the number gets shorter). Read on every memoized hit, so the digits
/// are folded by hand.
fn parse_number(bytes: &[u8]) -> Option<u64> {
    let digits = bytes.trim_ascii();
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        let d = b.checked_sub(b'0').filter(|d| *d < 10)?;
        n.checked_mul(10)?.checked_add(u64::from(d))
    })
}

fn parse_counter(command: &'static str, r: &MetaResponse) -> Result<u64, Error> {
    let unexpected = || Error::Unexpected {
        command,
        reply: format!("{:?} {:?}", r.status, r.value),
    };
    match (&r.status, &r.value) {
        (MetaStatus::Va, Some(v)) => parse_number(v).ok_or_else(unexpected),
        _ => Err(unexpected()),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_number;

    #[test]
    fn a_counter_is_decimal_digits_maybe_padded_with_spaces() {
        assert_eq!(parse_number(b"0"), Some(0));
        assert_eq!(parse_number(b"42"), Some(42));
        assert_eq!(parse_number(b"7   "), Some(7), "incr pads a shorter number");
        assert_eq!(parse_number(b" 7\r\n"), Some(7));
        assert_eq!(parse_number(b"18446744073709551615"), Some(u64::MAX));
        for garbage in [
            &b""[..],
            b"   ",
            b"18446744073709551616",
            b"99999999999999999999",
            b"-1",
            b"+1",
            b"1 2",
            b"12a",
            b"0x10",
            "\u{663}".as_bytes(),
        ] {
            assert_eq!(parse_number(garbage), None, "{garbage:?}");
        }
    }

    #[test]
    fn every_number_reads_back_as_itself() {
        let mut n = 1u64;
        while let Some(next) = n.checked_mul(3) {
            for m in [n - 1, n, n + 1] {
                assert_eq!(parse_number(m.to_string().as_bytes()), Some(m));
                assert_eq!(parse_number(format!("{m}    ").as_bytes()), Some(m));
            }
            n = next;
        }
    }
}
