//! [`Client`] and its [`Builder`]: cheap to clone, `Send + Sync`, multiplexing callers over a
//! few connections; implements [`Memcache`], so the whole typed API is there.

use crate::driver::{self, Command};
use crate::transport::{connect, Endpoint};
use crate::Settings;
use futures_channel::{mpsc, oneshot};
use mcache_proto::{ConnectionConfig, Error, Limits, Memcache, Request, Response};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A memcached client. Clone it freely: clones share the connections.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let server = mcache_testkit::Memcached::start()?;
/// # let addr = server.host_port_string();
/// # async_std::task::block_on(async {
/// use mcache_async_std::{Client, Memcache};
/// let client = Client::connect(addr.as_str()).await?;
/// client.set("greeting", "hello", 0).await?;
/// let got = client.get("greeting").await?;
/// assert_eq!(got.map(|v| v.data), Some("hello".into()));
/// # Ok::<(), mcache_async_std::Error>(())
/// # })?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    connections: Vec<mpsc::UnboundedSender<Command>>,
    next: AtomicUsize,
    request_timeout: Option<Duration>,
}

/// Configures a [`Client`].
#[derive(Debug, Clone)]
pub struct Builder {
    endpoint: Option<Endpoint>,
    connections: usize,
    settings: Settings,
    request_timeout: Option<Duration>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            endpoint: None,
            connections: 2,
            settings: Settings::default(),
            request_timeout: Some(Duration::from_secs(1)),
        }
    }
}

impl Builder {
    /// The server: `host:port`, or `unix:/path` (or an absolute path) for a unix socket.
    pub fn server(mut self, endpoint: impl Into<Endpoint>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Connections to open (default 2); callers are spread over them.
    pub fn connections(mut self, n: usize) -> Self {
        self.connections = n.max(1);
        self
    }

    /// How long a connect (with TLS and authentication) may take (default 1 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.settings.connect_timeout = d;
        self
    }

    /// How long a caller waits for a reply before getting [`Error::Timeout`] (default 1 s;
    /// `None` waits as long as the connection lives).
    pub fn request_timeout(mut self, d: Option<Duration>) -> Self {
        self.request_timeout = d;
        self
    }

    /// A connection whose server sends nothing for this long while requests are outstanding
    /// is closed, its callers fail, and it is reopened (default 5 s).
    pub fn read_timeout(mut self, d: Option<Duration>) -> Self {
        self.settings.connection.read_timeout = d;
        self
    }

    /// Largest value sent or accepted (default 1 MiB, memcached's default `-I`).
    pub fn max_value_len(mut self, n: usize) -> Self {
        self.settings.connection.limits.max_value_len = n;
        self
    }

    /// Reconnect delays: the first retry after `min`, doubling up to `max`.
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.settings.backoff_min = min;
        self.settings.backoff_max = max.max(min);
        self
    }

    /// memcached's ASCII authentication (server started with `-Y`).
    pub fn auth(mut self, user: impl Into<String>, pass: impl Into<String>) -> Self {
        self.settings.auth = Some((user.into(), pass.into()));
        self
    }

    /// TLS (server started with `-Z`); certificates are verified against `tls`'s roots.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: crate::tls::TlsConfig) -> Self {
        self.settings.tls = Some(tls);
        self
    }

    /// Opens the connections. Fails if the first cannot be opened; later ones that fail are
    /// retried in the background.
    pub async fn build(self) -> Result<Client, Error> {
        let endpoint = self
            .endpoint
            .ok_or_else(|| Error::Io("no server configured".into()))?;
        let settings = Arc::new(self.settings);
        let mut connections = Vec::with_capacity(self.connections);
        for i in 0..self.connections {
            let stream = match connect(&endpoint, &settings).await {
                Ok(s) => Some(s),
                Err(e) if i == 0 => return Err(e),
                Err(_) => None,
            };
            let (tx, rx) = mpsc::unbounded();
            crate::spawn(driver::run(endpoint.clone(), settings.clone(), rx, stream));
            connections.push(tx);
        }
        tracing::debug!(%endpoint, connections = connections.len(), "client ready");
        Ok(Client {
            inner: Arc::new(Inner {
                connections,
                next: AtomicUsize::new(0),
                request_timeout: self.request_timeout,
            }),
        })
    }
}

impl Client {
    /// Connects to one server with the default settings.
    pub async fn connect(endpoint: impl Into<Endpoint>) -> Result<Client, Error> {
        Client::builder().server(endpoint).build().await
    }

    /// A builder.
    pub fn builder() -> Builder {
        Builder::default()
    }

    async fn call(&self, request: Request) -> Result<Response, Error> {
        let conns = &self.inner.connections;
        let i = self.inner.next.fetch_add(1, Ordering::Relaxed) % conns.len();
        let (tx, rx) = oneshot::channel();
        // The connection task enforces the deadline: it fails the caller with `Timeout` and
        // abandons the request, whose reply is then read and dropped.
        let deadline = self
            .inner
            .request_timeout
            .map(|d| std::time::Instant::now() + d);
        conns[i]
            .unbounded_send(Command {
                request,
                reply: tx,
                deadline,
            })
            .map_err(|_| Error::Io("client shut down".into()))?;
        rx.await
            .unwrap_or_else(|_| Err(Error::Io("connection task ended".into())))
    }
}

impl Memcache for Client {
    fn execute(
        &self,
        request: Request,
    ) -> impl std::future::Future<Output = Result<Response, Error>> + Send {
        self.call(request)
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            connection: ConnectionConfig {
                limits: Limits::default(),
                read_timeout: Some(Duration::from_secs(5)),
                ..ConnectionConfig::default()
            },
            connect_timeout: Duration::from_secs(1),
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(2),
            auth: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}
