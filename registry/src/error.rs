//! The registry's error type: what the key registry's operations can report.
//!
//! A memoized call never returns one of these: whatever goes wrong with the cache, the function
//! runs and its result is returned (see the crate docs' failure policy).

use crate::key::ArgsError;

/// What a key-registry operation ([`Cache::invalidate`](crate::Cache::invalidate), a generated
/// `invalidate`, `replace`, `cached`, …) can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// memcached or the connection to it failed.
    #[error("memcached: {0}")]
    Memcached(#[from] mcache_proto::Error),
    /// memcached answered something this operation cannot have.
    #[error("unexpected reply to {command}: {reply}")]
    Unexpected {
        /// The command sent.
        command: &'static str,
        /// What came back.
        reply: String,
    },
    /// An argument could not be encoded into a key.
    #[error(transparent)]
    Args(#[from] ArgsError),
    /// A value could not be serialized.
    #[error("value cannot be encoded: {0}")]
    Encode(String),
    /// The circuit breaker is open: memcached failed recently and is being left alone.
    #[error("memcached is marked unavailable after repeated failures")]
    Unavailable,
    /// A namespace must be 1 to 64 bytes of `A-Z a-z 0-9 _ . -`.
    #[error("invalid namespace {0:?}: use 1 to 64 bytes of A-Z a-z 0-9 _ . -")]
    InvalidNamespace(String),
    /// `#[memoize]` without `cache = ...` uses the global cache, and none is installed.
    #[error("no cache: pass `cache = ...` to #[memoize] or call mcache_registry::install_global")]
    NoCache,
    /// A URI given to the HTTP layer's invalidation could not be parsed.
    #[error("invalid URI {0}")]
    InvalidUri(String),
}
