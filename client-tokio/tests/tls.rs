//! The suite's TLS cases against mcache-tokio (feature `tls`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

mcache_testkit::tls_suite_tests!(common::Tokio);
