//! Hostile servers (`mcache_testkit::faulty`) against mcache-async-std on smol
//! (feature `smol`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

mcache_testkit::hostile_suite_tests!(common::Smol);
