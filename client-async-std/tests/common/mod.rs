//! The suite's harnesses for mcache-async-std: on async-std's executor, and on smol's.
#![allow(dead_code)] // each test binary uses one of the two harnesses

use mcache_async_std::{AsyncIo, Client, Error, Runtime};
use mcache_testkit::suite::Harness;
use std::future::Future;
use std::sync::Arc;

/// mcache-async-std on async-std: tasks on its executor, blocked on by `task::block_on`.
#[cfg(feature = "async-std")]
pub(crate) struct AsyncStd;

#[cfg(feature = "async-std")]
impl Harness for AsyncStd {
    const NAME: &'static str = "async-std";

    fn runtime() -> Arc<dyn Runtime> {
        AsyncIo::async_std()
    }

    fn connect(server: String) -> impl Future<Output = Result<Client, Error>> {
        <Client as mcache_async_std::Connect>::connect(server)
    }

    fn block_on<T>(case: impl Future<Output = T>) -> T {
        async_std::task::block_on(case)
    }
}

/// mcache-async-std on smol: tasks on smol's global executor, blocked on by `smol::block_on`.
#[cfg(feature = "smol")]
pub(crate) struct Smol;

#[cfg(feature = "smol")]
impl Harness for Smol {
    const NAME: &'static str = "smol";

    fn runtime() -> Arc<dyn Runtime> {
        AsyncIo::smol()
    }

    /// `Client::connect` is smol's without the `async-std` feature.
    #[cfg(not(feature = "async-std"))]
    fn connect(server: String) -> impl Future<Output = Result<Client, Error>> {
        <Client as mcache_async_std::Connect>::connect(server)
    }

    /// With the `async-std` feature, `Client::connect` is async-std's: connect on smol.
    #[cfg(feature = "async-std")]
    fn connect(server: String) -> impl Future<Output = Result<Client, Error>> {
        Client::connect_with(AsyncIo::smol(), server)
    }

    fn block_on<T>(case: impl Future<Output = T>) -> T {
        smol::block_on(case)
    }
}
