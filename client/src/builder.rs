//! [`Builder`]: configures a [`Client`]: servers and their placement, connections, timeouts,
//! bounds, reconnect backoff, authentication and TLS.

use crate::client::{Client, ConnectionHandle, Server};
use crate::connect::connect;
use crate::driver::Driver;
use crate::endpoint::Endpoint;
use crate::io::ByteStream;
use crate::join::join_all;
use crate::pool::Pool;
use crate::runtime::Runtime;
use crate::settings::Settings;
use crate::stats::ServerCounters;
use crate::url::{parse_url, ParseError};
use futures_channel::mpsc;
use mcache_proto::{Error, Failover, HashMode, HealthPolicy, ProxyKind, ServerSpec};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

/// Configures a [`Client`]. Get one from an adapter (`mcache_tokio::Client::builder()`) or
/// with [`Builder::new`] and a [`Runtime`].
#[derive(Debug, Clone)]
pub struct Builder {
    runtime: Arc<dyn Runtime>,
    servers: Vec<(Endpoint, ServerSpec)>,
    /// `None`: the default, chosen from the runtime when the client is built.
    connections: Option<usize>,
    settings: Settings,
    request_timeout: Option<Duration>,
    hash_mode: HashMode,
    health: HealthPolicy,
    proxy: Option<ProxyKind>,
    require_reachable: bool,
}

impl Builder {
    /// A builder whose client runs on `runtime`, with the defaults: 2 connections per server
    /// (1 on a [single-threaded](Runtime::single_threaded) runtime),
    /// 1 s request and connect timeouts, 5 s read timeout, 1024 requests in flight per
    /// connection, reconnects after 50 ms doubling to 2 s.
    pub fn new(runtime: Arc<dyn Runtime>) -> Builder {
        Builder {
            runtime,
            servers: Vec::new(),
            connections: None,
            settings: Settings::default(),
            request_timeout: Some(Duration::from_secs(1)),
            hash_mode: HashMode::default(),
            health: HealthPolicy::default(),
            proxy: None,
            require_reachable: false,
        }
    }

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
    /// after 5 failures in a row, retried after 2 s, fail fast). Only connection-level
    /// failures count ([`Error::is_connection_failure`]): a server that answers, even with an
    /// error or a reply the client refuses, is never counted as down.
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
        self.settings.for_proxy(proxy);
        self
    }

    /// Whether a single-key `get` or `gets` goes out as the meta command `mg <key> f v`
    /// (default: yes, unless the proxy set with [`Builder::proxy`] does not carry meta
    /// commands, which this cannot override). The caller sees no difference: the same
    /// [`Value`](mcache_proto::Value), or `None` on a miss. memcached answers pipelined meta
    /// requests with one write for all, but a text `get` with a write of its own, so with
    /// many callers on a connection this is several times the throughput
    /// ([`ConnectionConfig::single_get_as_meta`](mcache_proto::ConnectionConfig::single_get_as_meta)).
    /// Turn it off for a server that speaks only the text protocol (memcached before 1.6).
    pub fn single_get_as_meta(mut self, on: bool) -> Self {
        self.settings.single_get_as_meta(on, self.proxy);
        self
    }

    /// Connections to open per server; callers are spread over them. The default is 2, or 1
    /// when the runtime runs every task on one thread ([`Runtime::single_threaded`], e.g.
    /// tokio's current-thread runtime), where one connection carries bigger batches for the
    /// same work (measured: 256 concurrent gets 1.5× the throughput of two connections).
    pub fn connections(mut self, n: usize) -> Self {
        self.connections = Some(n.max(1));
        self
    }

    /// How long a connect (with TLS and authentication) may take (default 1 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.settings.connect_timeout = d;
        self
    }

    /// How long a caller waits for a reply before getting [`Error::Timeout`] (default 1 s;
    /// `None` waits as long as the connection lives). It holds in every state: while the
    /// request waits for room, while its connection is being opened, and while a long reply
    /// streams in.
    pub fn request_timeout(mut self, d: Option<Duration>) -> Self {
        self.request_timeout = d;
        self
    }

    /// Each reply must be complete within this long of being due (its request written and
    /// every reply ahead of it complete); otherwise the connection is closed, its callers
    /// fail, and it is reopened (default 5 s). A server that drips bytes cannot hold a
    /// connection: progress that does not complete a reply does not count.
    pub fn read_timeout(mut self, d: Option<Duration>) -> Self {
        self.settings.connection.read_timeout = d;
        self
    }

    /// Largest value sent or accepted (default 1 MiB, memcached's default `-I`).
    pub fn max_value_len(mut self, n: usize) -> Self {
        self.settings.connection.limits.max_value_len = n;
        self
    }

    /// Most bytes one reply may hold (values of a multi-get, lines of `stats`; default
    /// 64 MiB). A reply that would pass it is refused before its memory is taken: the
    /// caller gets a malformed-reply error and the connection is replaced.
    pub fn max_reply_len(mut self, n: usize) -> Self {
        self.settings.connection.limits.max_reply_len = n;
        self
    }

    /// Most requests one connection carries at once (default 1024): queued in its task plus
    /// written and not yet answered. Callers beyond it wait for room within their own
    /// request timeout, then get [`Error::Timeout`]; memory is bounded by this, not by load.
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.settings.max_in_flight = n.max(1);
        self
    }

    /// Reconnect delays: the first retry after `min` (each delay drawn from the upper half
    /// of its step, so clients restarting together spread out), doubling up to `max`; the
    /// steps start over once a new connection has served a reply.
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
    /// Over a unix socket, [`TlsConfig::server_name`](crate::tls::TlsConfig::server_name)
    /// must say which name to verify.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls(mut self, tls: crate::tls::TlsConfig) -> Self {
        self.settings.tls = Some(tls);
        self
    }

    /// Whether [`Builder::build`] fails when no server can be reached (default `false`: the
    /// client is built anyway and connects in the background).
    ///
    /// Off, an application starts while memcached is down: `build` succeeds, every
    /// connection is retried with [`Builder::backoff`], and calls fail fast with
    /// [`Error::Unavailable`] until a server answers (a cache in front of a database keeps
    /// serving, uncached). On, `build` returns the first connect error when no server
    /// accepts a connection, as `Client::connect` (an adapter's strict shorthand for one
    /// server) does: for scripts and tools that should stop at once when memcached is not
    /// there.
    pub fn require_reachable(mut self, on: bool) -> Self {
        self.require_reachable = on;
        self
    }

    /// Adds the servers of a URL and applies its settings:
    ///
    /// - `memcache://host:port` (TCP), `memcaches://host:port` (TLS), `unix:///path/to/sock`,
    ///   or a plain address (`host:port`, `unix:/path`, `/path`; no options). A bare host
    ///   gets port 11211; `memcache(s)://` may list several servers (`h1:1,h2:2`), each with
    ///   weight 1, and carry `user:password@` for ASCII authentication ([`Builder::auth`];
    ///   percent-encode `:`, `@`, `/`, `?` in them).
    /// - Query options, each at most once: `timeout` ([`Builder::request_timeout`]; `none`
    ///   for no limit), `connect_timeout`, `read_timeout` (`none` too), `connections`,
    ///   `max_in_flight`, `max_value_len`, `max_reply_len` (bytes, `k`/`m` suffixes),
    ///   `backoff_min`, `backoff_max` ([`Builder::backoff`]), and with `memcaches://`
    ///   `server_name` (`TlsConfig::server_name`). Durations are `250us`, `500ms`, `2s`,
    ///   `1m`; a bare number is milliseconds.
    /// - `memcaches://` turns TLS on for the client (every server): with the `TlsConfig`
    ///   already given to `Builder::tls` if there is one, else with the platform's roots
    ///   (feature `native-roots`), else with Mozilla's (feature `webpki-roots`). Without
    ///   feature `tls` it is [`ParseError::TlsDisabled`]; with neither roots feature nor a
    ///   `Builder::tls` first, [`ParseError::NoTlsRoots`].
    ///
    /// Anything else (an unknown option, a bad port or duration, an empty host) is a
    /// [`ParseError`] naming the input and what is wrong; `?` turns it into
    /// [`Error::Config`]. Settings given by later builder calls override the URL's.
    ///
    /// ```
    /// use mcache_client::{Builder, Client, Error, Runtime};
    /// use std::sync::Arc;
    ///
    /// async fn pool(runtime: Arc<dyn Runtime>) -> Result<Client, Error> {
    ///     Builder::new(runtime)
    ///         .url("memcache://10.0.0.1:11211,10.0.0.2:11211?timeout=500ms&connections=4")?
    ///         .build()
    ///         .await
    /// }
    /// ```
    pub fn url(mut self, url: &str) -> Result<Builder, ParseError> {
        let parsed = parse_url(url)?;
        if parsed.tls {
            #[cfg(not(feature = "tls"))]
            return Err(ParseError::TlsDisabled { input: url.into() });
            #[cfg(feature = "tls")]
            {
                let tls = match self.settings.tls.take() {
                    Some(tls) => tls,
                    None => default_tls_roots(url)?,
                };
                self.settings.tls = Some(match &parsed.options.server_name {
                    Some(name) => tls.server_name(name.clone()),
                    None => tls,
                });
            }
        }
        let o = parsed.options;
        if let Some(d) = o.request_timeout {
            self = self.request_timeout(d);
        }
        if let Some(d) = o.connect_timeout {
            self = self.connect_timeout(d);
        }
        if let Some(d) = o.read_timeout {
            self = self.read_timeout(d);
        }
        if let Some(n) = o.connections {
            self = self.connections(n);
        }
        if let Some(n) = o.max_in_flight {
            self = self.max_in_flight(n);
        }
        if let Some(n) = o.max_value_len {
            self = self.max_value_len(n);
        }
        if let Some(n) = o.max_reply_len {
            self = self.max_reply_len(n);
        }
        if o.backoff_min.is_some() || o.backoff_max.is_some() {
            let min = o.backoff_min.unwrap_or(self.settings.backoff_min);
            let max = o.backoff_max.unwrap_or(self.settings.backoff_max);
            self = self.backoff(min, max);
        }
        if let Some((user, pass)) = parsed.auth {
            self = self.auth(user, pass);
        }
        Ok(self.servers(parsed.endpoints))
    }

    /// Refuses what cannot work, before connecting.
    fn validate(&self) -> Result<(), Error> {
        if self.servers.is_empty() {
            return Err(Error::Config("no server configured".into()));
        }
        for (endpoint, _) in &self.servers {
            endpoint
                .validate()
                .map_err(|e| Error::Config(format!("server {endpoint}: {e}")))?;
        }
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.settings.tls {
            for (endpoint, _) in &self.servers {
                if tls.name_for(endpoint.host()).is_none() {
                    return Err(Error::Config(format!(
                        "TLS to {endpoint}: a unix socket has no host name to verify the \
                         certificate against; set TlsConfig::server_name"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Opens the connections, to every server at once, and returns the client.
    ///
    /// Fail-open by default: a server that cannot be reached is counted as failing once and
    /// its connections are retried in the background (with [`Builder::backoff`]); calls to it
    /// fail fast with [`Error::Unavailable`] until it answers. So `build` succeeds while
    /// memcached is down, and the application starts uncached. With
    /// [`Builder::require_reachable`] it fails instead when no server can be reached.
    /// Configuration errors (no server, an address that does not parse, TLS over a unix
    /// socket without a name) fail either way, before anything is opened.
    pub async fn build(self) -> Result<Client, Error> {
        self.validate()?;
        let proto_pool = mcache_proto::Pool::new(
            self.servers.iter().map(|(_, spec)| spec.clone()),
            self.hash_mode,
            self.health,
        )
        .map_err(|e| Error::Config(format!("server pool: {e}")))?
        .with_proxy(self.proxy);
        let counters = self.servers.iter();
        let counters = counters.map(|(e, _)| ServerCounters::new(e, self.settings.max_in_flight));
        let pool = Pool::new(proto_pool, counters.map(Arc::new).collect());
        let rt = self.runtime;
        let settings = Arc::new(self.settings);
        let n = self
            .connections
            .unwrap_or(if rt.single_threaded() { 1 } else { 2 });
        let opened = join_all(
            self.servers
                .iter()
                .map(|(endpoint, _)| open_server(&*rt, endpoint, &settings, n)),
        )
        .await;
        if self.require_reachable && !opened.iter().any(Result::is_ok) {
            let first = opened.into_iter().find_map(Result::err);
            return Err(first.unwrap_or_else(|| Error::Config("no server reachable".into())));
        }
        let mut servers = Vec::with_capacity(opened.len());
        for (i, ((endpoint, _), streams)) in self.servers.into_iter().zip(opened).enumerate() {
            let streams = streams.unwrap_or_else(|e| {
                tracing::warn!(%endpoint, error = %e, "unreachable at start: retrying in the background");
                pool.record_failure(i, rt.now());
                (0..n).map(|_| None).collect()
            });
            let connections = streams
                .into_iter()
                .map(|stream| {
                    let (tx, rx) = mpsc::unbounded();
                    let counters = pool.counters(i).cloned();
                    let counters = counters.unwrap_or_else(|| {
                        Arc::new(ServerCounters::new(&endpoint, settings.max_in_flight))
                    });
                    let driver = Driver::new(
                        rt.clone(),
                        endpoint.clone(),
                        settings.clone(),
                        rx,
                        stream,
                        counters,
                    );
                    ConnectionHandle::spawn(&*rt, driver, tx, settings.max_in_flight)
                })
                .collect();
            servers.push(Server {
                endpoint,
                connections,
                next: AtomicUsize::new(0),
            });
        }
        tracing::debug!(servers = servers.len(), connections = n, "client ready");
        Ok(Client::from_parts(rt, servers, pool, self.request_timeout))
    }
}

/// The roots `memcaches://` uses when no [`Builder::tls`] came first: the platform's
/// (feature `native-roots`), else Mozilla's (feature `webpki-roots`).
#[cfg(feature = "tls")]
fn default_tls_roots(url: &str) -> Result<crate::tls::TlsConfig, ParseError> {
    let roots_error = |e: std::io::Error| ParseError::TlsRoots {
        input: url.into(),
        reason: e.to_string(),
    };
    #[cfg(feature = "native-roots")]
    return crate::tls::TlsConfig::native_roots().map_err(roots_error);
    #[cfg(all(feature = "webpki-roots", not(feature = "native-roots")))]
    return crate::tls::TlsConfig::webpki_roots().map_err(roots_error);
    #[cfg(not(any(feature = "webpki-roots", feature = "native-roots")))]
    {
        let _ = roots_error;
        Err(ParseError::NoTlsRoots { input: url.into() })
    }
}

#[cfg(test)]
#[path = "url/builder_tests.rs"]
mod url_tests;

/// Opens `n` connections to one server: an error if the first fails, `None` for later ones
/// that fail (their tasks retry in the background).
async fn open_server(
    rt: &dyn Runtime,
    endpoint: &Endpoint,
    settings: &Settings,
    n: usize,
) -> Result<Vec<Option<Box<dyn ByteStream>>>, Error> {
    let mut streams = Vec::with_capacity(n);
    streams.push(Some(connect(rt, endpoint, settings).await?));
    for _ in 1..n {
        streams.push(connect(rt, endpoint, settings).await.ok());
    }
    Ok(streams)
}

/// Defines, in an adapter crate, the trait that gives the one [`Client`] type the
/// `Client::connect(endpoint)` and `Client::builder()` shorthands on that adapter's runtime:
/// `adapter_constructors!(Connect, make_runtime)` where `make_runtime()` returns an
/// `Arc<dyn Runtime>` (see `mcache-tokio`'s `lib.rs`, which is one such line and a
/// [`Runtime`] implementation).
#[macro_export]
macro_rules! adapter_constructors {
    ($name:ident, $runtime:expr) => {
        /// `Client::connect` and `Client::builder` on this crate's runtime. In scope with
        /// `use` of this trait (or of the crate's `prelude`).
        pub trait $name: Sized {
            /// Connects to one server with the default settings; fails if it cannot be
            /// reached (strict, for scripts; a builder's `build` is fail-open unless
            /// `require_reachable(true)`).
            fn connect(
                endpoint: impl Into<$crate::Endpoint>,
            ) -> impl ::std::future::Future<Output = Result<$crate::Client, $crate::Error>> + Send;
            /// A builder for a client on this crate's runtime.
            fn builder() -> $crate::Builder;
        }

        impl $name for $crate::Client {
            fn connect(
                endpoint: impl Into<$crate::Endpoint>,
            ) -> impl ::std::future::Future<Output = Result<$crate::Client, $crate::Error>> + Send
            {
                $crate::Builder::new(($runtime)())
                    .server(endpoint)
                    .require_reachable(true)
                    .build()
            }

            fn builder() -> $crate::Builder {
                $crate::Builder::new(($runtime)())
            }
        }
    };
}
