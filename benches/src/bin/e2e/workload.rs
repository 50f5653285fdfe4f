//! Which keys a scenario touches, in each runtime shape.
//!
//! - `multi` (the first runner's shape): tokio clients on a two-worker multi-thread runtime
//!   (one worker pinned); gets walk 1,000 keys in order, the 64 KiB get reads one key, the
//!   multi-get asks for the same 100 keys every time.
//! - `current`: every tokio client on one current-thread runtime; 10,000 keys of 100 B and 100
//!   keys of 64 KiB, each request picking its key at random (a hash of the task and call
//!   numbers, so no random-number state is shared), the multi-get 100 consecutive keys from a
//!   random start.

use std::sync::OnceLock;

/// The runtime shape and key pattern of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Multi-thread tokio runtime, keys in order.
    Multi,
    /// Current-thread tokio runtime, random keys.
    Current,
}

impl Shape {
    pub(crate) fn id(self) -> &'static str {
        match self {
            Shape::Multi => "multi",
            Shape::Current => "current",
        }
    }

    pub(crate) fn from_id(id: &str) -> Option<Shape> {
        [Shape::Multi, Shape::Current]
            .into_iter()
            .find(|s| s.id() == id)
    }

    /// How many 100-byte keys are loaded.
    pub(crate) fn keys(self) -> u64 {
        match self {
            Shape::Multi => 1_000,
            Shape::Current => 10_000,
        }
    }

    /// How many 64 KiB keys are loaded.
    pub(crate) fn big_keys(self) -> u64 {
        match self {
            Shape::Multi => 1,
            Shape::Current => 100,
        }
    }
}

static SHAPE: OnceLock<Shape> = OnceLock::new();

/// Sets the run's shape (once, from the command line).
pub(crate) fn set_shape(s: Shape) {
    let _ = SHAPE.set(s);
}

/// The run's shape.
pub(crate) fn shape() -> Shape {
    SHAPE.get().copied().unwrap_or(Shape::Multi)
}

/// splitmix64: a well-mixed 64-bit hash of `i`.
fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The index of the key call `i` (as numbered by `run_load`/`run_threads`) reads among `n`.
fn pick(i: u64, n: u64) -> u64 {
    match shape() {
        Shape::Multi => i % n,
        Shape::Current => mix(i) % n,
    }
}

/// The 100-byte key call `i` reads.
pub(crate) fn key(i: u64) -> String {
    format!("key{}", pick(i, shape().keys()))
}

/// Every 100-byte key, for loading.
pub(crate) fn all_keys() -> impl Iterator<Item = String> {
    (0..shape().keys()).map(|i| format!("key{i}"))
}

/// The 64 KiB key call `i` reads.
pub(crate) fn big_key(i: u64) -> String {
    format!("big{}", pick(i, shape().big_keys()))
}

/// Every 64 KiB key, for loading.
pub(crate) fn all_big_keys() -> impl Iterator<Item = String> {
    (0..shape().big_keys()).map(|i| format!("big{i}"))
}

/// Where call `i`'s 100 consecutive multi-get keys start in the list of [`all_keys`].
pub(crate) fn multi_start(i: u64) -> usize {
    let n = shape().keys();
    match shape() {
        Shape::Multi => 0,
        Shape::Current => (mix(i) % (n - 100)) as usize,
    }
}
