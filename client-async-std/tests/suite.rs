//! The shared integration suite (`mcache_testkit::suite`) against mcache-async-std on
//! async-std.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

mcache_testkit::suite_tests!(common::AsyncStd);
mcache_testkit::pool_suite_tests!(common::AsyncStd);
