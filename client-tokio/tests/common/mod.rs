//! The suite's harness for mcache-tokio: a multi-threaded tokio runtime (4 workers) per test.

use mcache_testkit::suite::Harness;
use mcache_tokio::{Client, Connect, Error, Runtime, Tokio as TokioRuntime};
use std::future::Future;
use std::sync::Arc;

/// mcache-tokio on a multi-threaded tokio runtime.
pub(crate) struct Tokio;

impl Harness for Tokio {
    const NAME: &'static str = "tokio";

    fn runtime() -> Arc<dyn Runtime> {
        TokioRuntime::runtime()
    }

    fn connect(server: String) -> impl Future<Output = Result<Client, Error>> {
        Client::connect(server)
    }

    fn block_on<T>(case: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .expect("tokio runtime")
            .block_on(case)
    }
}
