//! The shared integration suite (`mcache_testkit::suite`) against mcache-tokio.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

mcache_testkit::suite_tests!(common::Tokio);
mcache_testkit::pool_suite_tests!(common::Tokio);
