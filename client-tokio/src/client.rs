//! [`Client`] and its [`Builder`]: cheap to clone, `Send + Sync`, multiplexing callers over a
//! few connections per server; implements [`Memcache`], so the whole typed API is there.
//! Routing, splitting, merging and server health come from proto's [`Pool`]; this file only
//! queues requests on connections and awaits their replies.

use crate::driver::{self, Command};
use crate::transport::{connect, Endpoint, Stream};
use crate::Settings;
use mcache_proto::pool::join_all;
use mcache_proto::text::request::{Retrieve, RetrieveCommand};
use mcache_proto::{
    AsKey, ConnectionConfig, Error, Failover, HashMode, HealthPolicy, Key, KeyError, Limits,
    Memcache, Plan, Pool, ProxyKind, Request, Response, ServerSpec, Stat, Value,
};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// A memcached client over one server or a pool of them. Clone it freely: clones share the
/// connections.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let server = mcache_testkit::Memcached::start()?;
/// # let addr = server.host_port_string();
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// use mcache_tokio::{Client, Memcache};
/// let client = Client::connect(addr.as_str()).await?;
/// client.set("greeting", "hello", 0).await?;
/// let got = client.get("greeting").await?;
/// assert_eq!(got.map(|v| v.data), Some("hello".into()));
/// # Ok::<(), mcache_tokio::Error>(())
/// # })?;
/// # Ok(())
/// # }
/// ```
///
/// With several servers ([`Builder::servers`]) every keyed request goes to the server its key
/// is placed on (libmemcached-compatible ketama by default), a multi-key retrieval is split
/// per server, sent at once and merged in the caller's key order, and a command without a
/// key (`flush_all`, `version`, `stats`, `verbosity`, `mn`, `quit`) goes to every server:
/// [`Memcache::execute`] then returns the first error (by server index) or else the first
/// server's reply. For one result per server use [`Client::version_all`],
/// [`Client::stats_all`], [`Client::flush_all_servers`], or any command through
/// [`Client::server`].
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    servers: Vec<Server>,
    pool: Pool,
    request_timeout: Option<Duration>,
}

/// One server's connection tasks.
#[derive(Debug)]
struct Server {
    endpoint: Endpoint,
    connections: Vec<mpsc::UnboundedSender<Command>>,
    next: AtomicUsize,
}

type Reply = oneshot::Receiver<Result<Response, Error>>;

/// Configures a [`Client`].
#[derive(Debug, Clone)]
pub struct Builder {
    servers: Vec<(Endpoint, ServerSpec)>,
    connections: usize,
    settings: Settings,
    request_timeout: Option<Duration>,
    hash_mode: HashMode,
    health: HealthPolicy,
    proxy: Option<ProxyKind>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            servers: Vec::new(),
            connections: 2,
            settings: Settings::default(),
            request_timeout: Some(Duration::from_secs(1)),
            hash_mode: HashMode::default(),
            health: HealthPolicy::default(),
            proxy: None,
        }
    }
}

impl Builder {
    /// Adds a server: `host:port`, or `unix:/path` (or an absolute path) for a unix socket.
    /// Once for a single server; several times (or [`Builder::servers`]) for a pool.
    pub fn server(self, endpoint: impl Into<Endpoint>) -> Self {
        self.server_weighted(endpoint, 1)
    }

    /// Adds servers, each with weight 1, in order (the order is part of the placement for
    /// some [`HashMode`]s; ketama only looks at the names).
    pub fn servers<E: Into<Endpoint>>(mut self, endpoints: impl IntoIterator<Item = E>) -> Self {
        for e in endpoints {
            self = self.server(e);
        }
        self
    }

    /// Adds a server with a relative weight: in weighted ketama it gets
    /// `weight / total` of the keys (libmemcached's weights).
    pub fn server_weighted(mut self, endpoint: impl Into<Endpoint>, weight: u32) -> Self {
        let endpoint = endpoint.into();
        let spec = endpoint.spec().with_weight(weight);
        self.servers.push((endpoint, spec));
        self
    }

    /// Adds a server reached at `endpoint` but placed as `spec` names it: for when other
    /// clients sharing the pool know it by another name or port (port mapping, tunnels,
    /// containers). Keys are placed by the name, so every client must use the same one.
    pub fn server_as(mut self, endpoint: impl Into<Endpoint>, spec: ServerSpec) -> Self {
        self.servers.push((endpoint.into(), spec));
        self
    }

    /// How keys are placed on the servers (default: libmemcached's weighted ketama).
    pub fn hash_mode(mut self, mode: HashMode) -> Self {
        self.hash_mode = mode;
        self
    }

    /// What the keys of a server that is down do (default [`Failover::FailFast`]).
    pub fn failover(mut self, failover: Failover) -> Self {
        self.health.failover = failover;
        self
    }

    /// When a server is ejected and retried, and what its keys do meanwhile (default: out
    /// after 5 failures in a row, retried after 2 s, fail fast).
    pub fn health(mut self, policy: HealthPolicy) -> Self {
        self.health = policy;
        self
    }

    /// The servers are reached through a proxy: adapt to what it carries. With
    /// [`ProxyKind::Twemproxy`], batches ending in `noreply` requests are closed with `version`
    /// instead of `mn`, and the commands twemproxy cannot carry (meta commands, `gat`, `gats`,
    /// `flush_all`, `stats`, `verbosity`) fail with
    /// [`EncodeError::NotCarriedByProxy`](mcache_proto::EncodeError::NotCarriedByProxy)
    /// before anything is sent.
    pub fn proxy(mut self, proxy: ProxyKind) -> Self {
        self.proxy = Some(proxy);
        self.settings.connection.sync = proxy.sync_command();
        self
    }

    /// Connections to open per server (default 2); callers are spread over them.
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

    /// Opens the connections, to every server at once. With one server, fails if its first
    /// connection cannot be opened; with several, fails only if no server can be reached (a
    /// server that cannot is counted as failing once, and its connections are retried in
    /// the background). Later connections of a server that fail are retried in the
    /// background.
    pub async fn build(self) -> Result<Client, Error> {
        if self.servers.is_empty() {
            return Err(Error::Io("no server configured".into()));
        }
        let pool = Pool::new(
            self.servers.iter().map(|(_, spec)| spec.clone()),
            self.hash_mode,
            self.health,
        )
        .map_err(|e| Error::Io(format!("server pool: {e}")))?
        .with_proxy(self.proxy);
        let settings = Arc::new(self.settings);
        let n = self.connections;
        let opened = join_all(
            self.servers
                .iter()
                .map(|(endpoint, _)| open_server(endpoint, &settings, n)),
        )
        .await;
        if !opened.iter().any(Result::is_ok) {
            let first = opened.into_iter().find_map(Result::err);
            return Err(first.unwrap_or_else(|| Error::Io("no server reachable".into())));
        }
        let mut servers = Vec::with_capacity(opened.len());
        for (i, ((endpoint, _), streams)) in self.servers.into_iter().zip(opened).enumerate() {
            let streams = streams.unwrap_or_else(|e| {
                tracing::warn!(%endpoint, error = %e, "server unreachable at start");
                pool.record_failure(i, Instant::now());
                (0..n).map(|_| None).collect()
            });
            let connections = streams
                .into_iter()
                .map(|stream| {
                    let (tx, rx) = mpsc::unbounded_channel();
                    tokio::spawn(driver::run(endpoint.clone(), settings.clone(), rx, stream));
                    tx
                })
                .collect();
            servers.push(Server {
                endpoint,
                connections,
                next: AtomicUsize::new(0),
            });
        }
        tracing::debug!(servers = servers.len(), connections = n, "client ready");
        Ok(Client {
            inner: Arc::new(Inner {
                servers,
                pool,
                request_timeout: self.request_timeout,
            }),
        })
    }
}

/// Opens `n` connections to one server: an error if the first fails, `None` for later ones
/// that fail (their tasks retry in the background).
async fn open_server(
    endpoint: &Endpoint,
    settings: &Settings,
    n: usize,
) -> Result<Vec<Option<Stream>>, Error> {
    let mut streams = Vec::with_capacity(n);
    streams.push(Some(connect(endpoint, settings).await?));
    for _ in 1..n {
        streams.push(connect(endpoint, settings).await.ok());
    }
    Ok(streams)
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

    /// The pool: placement ([`Pool::server_for`]) and health ([`Pool::is_available`],
    /// [`Pool::retry_at`], [`Pool::failures`]) of the servers, by index.
    pub fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// The servers' addresses, by index.
    pub fn endpoints(&self) -> impl ExactSizeIterator<Item = &Endpoint> {
        self.inner.servers.iter().map(|s| &s.endpoint)
    }

    /// The server at `index`, to send commands to it alone (whatever the keys' placement and
    /// the server's health).
    pub fn server(&self, index: usize) -> Option<ServerHandle> {
        (index < self.inner.servers.len()).then(|| ServerHandle {
            client: self.clone(),
            index,
        })
    }

    /// Every server, by index (see [`Client::server`]).
    pub fn servers(&self) -> impl ExactSizeIterator<Item = ServerHandle> + '_ {
        (0..self.inner.servers.len()).map(|index| ServerHandle {
            client: self.clone(),
            index,
        })
    }

    /// `version` of every server, concurrently.
    pub async fn version_all(&self) -> Vec<(Endpoint, Result<String, Error>)> {
        join_all(self.servers().map(|s| async move {
            let r = s.version().await;
            (s.endpoint().clone(), r)
        }))
        .await
    }

    /// `stats [<args>]` of every server, concurrently.
    pub async fn stats_all(&self, args: Option<&str>) -> Vec<(Endpoint, Result<Vec<Stat>, Error>)> {
        join_all(self.servers().map(|s| async move {
            let r = s.stats(args).await;
            (s.endpoint().clone(), r)
        }))
        .await
    }

    /// `flush_all [delay]` on every server, concurrently.
    pub async fn flush_all_servers(
        &self,
        delay: Option<i32>,
    ) -> Vec<(Endpoint, Result<(), Error>)> {
        join_all(self.servers().map(|s| async move {
            let r = s.flush_all(delay).await;
            (s.endpoint().clone(), r)
        }))
        .await
    }

    /// `get` of many keys, one result per key in the order given: the value (`None` on a
    /// miss) or the error of the server holding that key. Unlike [`Memcache::get_multi`],
    /// a server that is down fails only its own keys. Fails as a whole only when the
    /// request cannot be sent at all (an invalid key).
    pub fn get_multi_each<K: AsKey>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> impl Future<Output = Result<Vec<Result<Option<Value>, Error>>, Error>> + Send + '_ {
        let keys: Result<Vec<Key>, KeyError> = keys.into_iter().map(AsKey::into_key).collect();
        async move {
            let keys = keys?;
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            let now = Instant::now();
            let retrieve = Retrieve {
                command: RetrieveCommand::Get,
                keys,
            };
            let mut split = self.inner.pool.plan_split(retrieve, now)?;
            let parts = std::mem::take(&mut split.parts);
            Ok(split.merge_each(self.send_all(parts, self.deadline(now)).await))
        }
    }

    fn deadline(&self, now: Instant) -> Option<Instant> {
        // The connection task enforces it: it fails the caller with `Timeout` and abandons
        // the request, whose reply is then read and dropped.
        self.inner.request_timeout.map(|d| now + d)
    }

    /// Queues `request` on one of `server`'s connections.
    fn submit(
        &self,
        server: usize,
        request: Request,
        deadline: Option<Instant>,
    ) -> Result<Reply, Error> {
        let s = self
            .inner
            .servers
            .get(server)
            .ok_or_else(|| Error::Io(format!("no server #{server}")))?;
        let i = s.next.fetch_add(1, Ordering::Relaxed) % s.connections.len();
        let (tx, rx) = oneshot::channel();
        s.connections[i]
            .send(Command {
                request,
                reply: tx,
                deadline,
            })
            .map_err(|_| Error::Io("client shut down".into()))?;
        Ok(rx)
    }

    /// Awaits a queued request's reply and tells the pool how the server did.
    async fn reply(&self, server: usize, queued: Result<Reply, Error>) -> Result<Response, Error> {
        let r = match queued {
            Ok(rx) => rx
                .await
                .unwrap_or_else(|_| Err(Error::Io("connection task ended".into()))),
            Err(e) => Err(e),
        };
        if self.inner.servers.len() > 1 {
            self.inner.pool.observe(server, &r, Instant::now());
        }
        r
    }

    /// Queues every part before awaiting any, so that they travel concurrently; the replies
    /// in the parts' order.
    async fn send_all(
        &self,
        parts: Vec<(usize, Request)>,
        deadline: Option<Instant>,
    ) -> Vec<Result<Response, Error>> {
        let queued: Vec<_> = parts
            .into_iter()
            .map(|(server, request)| (server, self.submit(server, request, deadline)))
            .collect();
        let mut replies = Vec::with_capacity(queued.len());
        for (server, q) in queued {
            replies.push(self.reply(server, q).await);
        }
        replies
    }

    async fn call(&self, request: Request) -> Result<Response, Error> {
        let now = Instant::now();
        let deadline = self.deadline(now);
        match self.inner.pool.plan(request, now) {
            Plan::One { server, request } => {
                let queued = self.submit(server, request, deadline);
                self.reply(server, queued).await
            }
            Plan::Split(mut split) => {
                let parts = std::mem::take(&mut split.parts);
                split.merge(self.send_all(parts, deadline).await)
            }
            Plan::Broadcast(mut all) => {
                let parts = std::mem::take(&mut all.parts);
                all.merge(self.send_all(parts, deadline).await)
            }
            Plan::Refused(e) => Err(e),
        }
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

/// One server of a [`Client`]: commands sent through it go to that server alone, whatever
/// the placement of their keys or the server's health (its replies still count for its
/// health). Requests the client's proxy cannot carry are refused as usual.
#[derive(Clone, Debug)]
pub struct ServerHandle {
    client: Client,
    index: usize,
}

impl ServerHandle {
    /// The server's index in the pool.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The server's address.
    pub fn endpoint(&self) -> &Endpoint {
        &self.client.inner.servers[self.index].endpoint
    }

    async fn call(&self, request: Request) -> Result<Response, Error> {
        self.client.inner.pool.check(&request)?;
        let deadline = self.client.deadline(Instant::now());
        let queued = self.client.submit(self.index, request, deadline);
        self.client.reply(self.index, queued).await
    }
}

impl Memcache for ServerHandle {
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
