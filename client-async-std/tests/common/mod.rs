//! The suite's harnesses for mcache-async-std: on async-std's runtime, and under smol.
#![allow(dead_code)] // each test binary uses one of the two harnesses

use mcache_async_std::{Client, Error, ServerHandle, Stat, Value};
use mcache_testkit::suite::{ClientOptions, Harness, PoolHarness};
use std::future::Future;
use std::time::Duration;

/// Builds a client through the builder, applying every option.
async fn build(o: ClientOptions) -> Result<Client, Error> {
    let mut b = Client::builder();
    match o.pool {
        Some(pool) => {
            for (addr, spec) in pool.servers {
                b = b.server_as(addr, spec);
            }
            b = b.hash_mode(pool.hash_mode).health(pool.health);
        }
        None => b = b.server(o.server),
    }
    if let Some(proxy) = o.proxy {
        b = b.proxy(proxy);
    }
    let mut b = b
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

/// The pool cases' view of a client, the same under both harnesses.
macro_rules! pool_harness {
    ($h:ty) => {
        impl PoolHarness for $h {
            type Server = ServerHandle;

            fn server(client: &Client, index: usize) -> ServerHandle {
                client.server(index).expect("a server of the pool")
            }

            fn is_available(client: &Client, index: usize) -> bool {
                client.pool().is_available(index, std::time::Instant::now())
            }

            async fn version_all(client: &Client) -> Vec<(String, Result<String, Error>)> {
                let all = client.version_all().await;
                all.into_iter().map(|(e, r)| (e.to_string(), r)).collect()
            }

            async fn stats_all(client: &Client) -> Vec<(String, Result<Vec<Stat>, Error>)> {
                let all = client.stats_all(None).await;
                all.into_iter().map(|(e, r)| (e.to_string(), r)).collect()
            }

            async fn flush_all_servers(client: &Client) -> Vec<(String, Result<(), Error>)> {
                let all = client.flush_all_servers(None).await;
                all.into_iter().map(|(e, r)| (e.to_string(), r)).collect()
            }

            async fn get_multi_each(
                client: &Client,
                keys: Vec<String>,
            ) -> Result<Vec<Result<Option<Value>, Error>>, Error> {
                client.get_multi_each(keys).await
            }
        }
    };
}

pool_harness!(AsyncStd);
pool_harness!(Smol);
