//! The suite's TLS cases against mcache-async-std (feature `tls`), on async-std and on smol.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

#[cfg(feature = "async-std")]
mod async_std {
    mcache_testkit::tls_suite_tests!(crate::common::AsyncStd);
}

#[cfg(feature = "smol")]
mod smol {
    mcache_testkit::tls_suite_tests!(crate::common::Smol);
}
