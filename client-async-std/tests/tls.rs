//! The suite's TLS cases against mcache-async-std (feature `tls`), on async-std and under
//! smol.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

mod async_std {
    mcache_testkit::tls_suite_tests!(crate::common::AsyncStd);
}

mod smol {
    mcache_testkit::tls_suite_tests!(crate::common::Smol);
}
