//! The suite's harnesses for mcache-async-std: on async-std's runtime, and under smol.
#![allow(dead_code)] // each test binary uses one of the two harnesses

use mcache_async_std::{Client, Error};
use mcache_testkit::suite::{ClientOptions, Harness};
use std::future::Future;
use std::time::Duration;

/// Builds a client through the builder, applying every option.
async fn build(o: ClientOptions) -> Result<Client, Error> {
    let mut b = Client::builder()
        .server(o.server)
        .connections(o.connections)
        .request_timeout(o.request_timeout)
        .read_timeout(o.read_timeout)
        .connect_timeout(o.connect_timeout)
        .backoff(o.backoff.0, o.backoff.1);
    if let Some(n) = o.max_value_len {
        b = b.max_value_len(n);
    }
    if let Some((user, pass)) = o.auth {
        b = b.auth(user, pass);
    }
    if let Some(tls) = o.tls {
        #[cfg(feature = "tls")]
        {
            let mut config =
                mcache_async_std::tls::TlsConfig::with_root_certificates_pem(&tls.root_pem)
                    .map_err(|e| Error::Io(format!("root certificates: {e}")))?;
            if let Some(name) = tls.server_name {
                config = config.server_name(name);
            }
            b = b.tls(config);
        }
        #[cfg(not(feature = "tls"))]
        panic!("TLS asked of mcache-async-std built without the `tls` feature: {tls:?}");
    }
    b.build().await
}

/// mcache-async-std on async-std's executor.
pub(crate) struct AsyncStd;

impl Harness for AsyncStd {
    type Client = Client;
    const NAME: &'static str = "async-std";

    async fn build(o: ClientOptions) -> Result<Client, Error> {
        build(o).await
    }

    async fn connect(server: String) -> Result<Client, Error> {
        Client::connect(server).await
    }

    fn spawn<T: Send + 'static>(
        task: impl Future<Output = T> + Send + 'static,
    ) -> impl Future<Output = T> + Send + 'static {
        async_std::task::spawn(task)
    }

    fn sleep(d: Duration) -> impl Future<Output = ()> + Send + 'static {
        async_std::task::sleep(d)
    }

    fn block_on<T>(case: impl Future<Output = T>) -> T {
        async_std::task::block_on(case)
    }
}

/// mcache-async-std polled by `smol::block_on`, its test tasks on smol's executor (the
/// client's connection tasks go to async-std's or smol's, as the crate's features say).
pub(crate) struct Smol;

impl Harness for Smol {
    type Client = Client;
    const NAME: &'static str = "smol";

    async fn build(o: ClientOptions) -> Result<Client, Error> {
        build(o).await
    }

    async fn connect(server: String) -> Result<Client, Error> {
        Client::connect(server).await
    }

    fn spawn<T: Send + 'static>(
        task: impl Future<Output = T> + Send + 'static,
    ) -> impl Future<Output = T> + Send + 'static {
        smol::spawn(task)
    }

    async fn sleep(d: Duration) {
        smol::Timer::after(d).await;
    }

    fn block_on<T>(case: impl Future<Output = T>) -> T {
        smol::block_on(case)
    }
}
