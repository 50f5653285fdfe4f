//! The shared integration suite (`mcache_testkit::suite`) against mcache-async-std under
//! `smol::block_on`, with the suite's tasks spawned on smol.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

mcache_testkit::suite_tests!(common::Smol);
mcache_testkit::pool_suite_tests!(common::Smol);
