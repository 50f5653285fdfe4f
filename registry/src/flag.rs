//! [`Cached`]: a memoized function's result together with whether it came from the cache
//! (`cached`'s `with_cached_flag`).
//!
//! It owns only the wrapper and its serde form (exactly the value's): nothing here knows
//! memcached. Deserializing is what makes a value "cached": the function's own result is made
//! with [`Cached::new`] and says `false`.

use serde::de::{Deserialize, Deserializer};
use serde::ser::{Serialize, Serializer};
use std::ops::{Deref, DerefMut};

/// A result and whether it was served from the cache. Return it from a memoized function
/// (also inside `Result`/`Option`: `Result<Cached<T>, E>`) to learn, per call, whether the
/// function ran:
///
/// ```
/// use mcache_registry::{memoize, Cache, Cached, Client};
///
/// #[memoize(cache = cache)]
/// async fn price(cache: &Cache<Client>, sku: u32) -> Cached<u64> {
///     Cached::new(u64::from(sku) * 100)
/// }
/// ```
///
/// It is stored as `T` alone (`Cached<T>` serializes as `T`), so it derefs to `T` and adds
/// nothing to the stored value. A result shared by an identical call running at the same time
/// in this process counts as cached: this call did not run the function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Cached<T> {
    /// The result.
    pub value: T,
    /// Whether it was served from the cache (or shared by a concurrent identical call) rather
    /// than computed by this call.
    pub was_cached: bool,
}

impl<T> Cached<T> {
    /// A freshly computed result (`was_cached` is `false`).
    pub fn new(value: T) -> Cached<T> {
        Cached {
            value,
            was_cached: false,
        }
    }

    /// The result.
    pub fn into_inner(self) -> T {
        self.value
    }
}

impl<T> From<T> for Cached<T> {
    fn from(value: T) -> Self {
        Cached::new(value)
    }
}

impl<T> Deref for Cached<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> DerefMut for Cached<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

impl<T: Serialize> Serialize for Cached<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Cached<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(|value| Cached {
            value,
            was_cached: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialized_as_the_value_and_read_back_as_cached() {
        let fresh = Cached::new(vec![1u8, 2]);
        assert!(!fresh.was_cached);
        let json = serde_json::to_string(&fresh).unwrap();
        assert_eq!(json, "[1,2]");
        let back: Cached<Vec<u8>> = serde_json::from_str(&json).unwrap();
        assert!(back.was_cached);
        assert_eq!(*back, [1, 2]);
        assert_eq!(back.into_inner(), vec![1, 2]);
    }
}
