//! Maps keyed by a memoized function's path, and the one thing a cache keeps per function
//! besides its counters: the key of its generation counter, built once instead of on every
//! call.
//!
//! Function paths come from the program (`&'static str`, one per memoized function), so each
//! map holds at most one entry per function of the program.

use crate::key::{self, Function};
use mcache_proto::Key;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::RwLock;

/// FNV-1a over the path: function paths are short and trusted (they come from the program),
/// so a fast hash beats SipHash here.
#[derive(Default)]
pub(crate) struct PathHasher(u64);

impl Hasher for PathHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xCBF2_9CE4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01B3);
        }
        self.0 = h;
    }
}

/// A map from function path to `V`.
pub(crate) type PathMap<V> = HashMap<&'static str, V, BuildHasherDefault<PathHasher>>;

/// The generation counter keys of the functions called through one cache (one namespace).
#[derive(Debug, Default)]
pub(crate) struct GenerationKeys {
    map: RwLock<PathMap<Key>>,
}

impl GenerationKeys {
    /// The key of `function`'s generation counter in `namespace`: built on the function's
    /// first call, then looked up (a hit reads it on every call).
    pub(crate) fn get(&self, namespace: &str, function: &Function) -> Key {
        let path = function.path();
        if let Some(k) = self.map.read().unwrap_or_else(|p| p.into_inner()).get(path) {
            return k.clone();
        }
        let built = key::function_generation_key(namespace, function);
        self.map
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(path)
            .or_insert(built)
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generation_key_is_built_once_and_is_the_one_function_generation_key_builds() {
        let keys = GenerationKeys::default();
        let f = Function::new("app::users::get");
        let g = Function::new("app::users::list").with_version(3);
        let first = keys.get("ns", &f);
        assert_eq!(first, key::function_generation_key("ns", &f));
        assert_eq!(keys.get("ns", &f), first);
        assert_eq!(keys.get("ns", &g), key::function_generation_key("ns", &g));
        assert_eq!(keys.map.read().unwrap().len(), 2);
    }
}
