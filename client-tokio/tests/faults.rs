//! Hostile servers (`mcache_testkit::faulty`) against mcache-tokio: garbage, truncated and
//! stalled frames, 4 GiB declared values, swapped replies, resets, silence, cut connections.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

mcache_testkit::hostile_suite_tests!(common::Tokio);
