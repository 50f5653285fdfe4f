//! The shared integration suite (`mcache_testkit::suite`) against mcache-async-std on smol
//! (feature `smol`): connection tasks and the suite's tasks on smol's executor, cases under
//! `smol::block_on`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

mcache_testkit::suite_tests!(common::Smol);
mcache_testkit::pool_suite_tests!(common::Smol);
