//! [`Builder`]: configures a blocking [`Client`], with the async
//! [`Builder`](crate::Builder)'s options where they mean the same, and the same
//! configuration types underneath ([`Endpoint`], `Settings`, [`TlsConfig`](crate::tls::TlsConfig),
//! URLs).

use super::server::Server;
use super::Client;
use crate::endpoint::Endpoint;
use crate::settings::{Placement, Settings};
use crate::url::{parse_url, ParseError, UrlTarget};
use mcache_proto::{Error, Failover, HashMode, HealthPolicy, ProxyKind, ServerSpec};
use std::time::Duration;

/// Configures a blocking [`Client`]; from [`Client::builder`] or [`Builder::new`].
///
/// Each option does what the async [`Builder`](crate::Builder)'s option of the same name
/// does, except where said here: there is no runtime, and every timeout is enforced with
/// socket timeouts on the calling thread.
#[derive(Debug, Clone)]
pub struct Builder {
    placement: Placement,
    settings: Settings,
    request_timeout: Option<Duration>,
    connections: usize,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

/// Default for [`Builder::connections`].
pub const DEFAULT_CONNECTIONS: usize = 8;

impl Builder {
    /// A builder with the defaults: at most 8 connections per server, 1 s request and
    /// connect timeouts, 5 s read timeout, reconnects after 50 ms doubling to 2 s.
    pub fn new() -> Builder {
        Builder {
            placement: Placement::default(),
            settings: Settings::default(),
            request_timeout: Some(Duration::from_secs(1)),
            connections: DEFAULT_CONNECTIONS,
        }
    }

    fn with(mut self, set: impl FnOnce(&mut Builder)) -> Self {
        set(&mut self);
        self
    }

    /// Adds a server ([`crate::Builder::server`]): `host:port`, or `unix:/path`.
    pub fn server(self, endpoint: impl Into<Endpoint>) -> Self {
        self.server_weighted(endpoint, 1)
    }

    /// Adds servers, each with weight 1, in order ([`crate::Builder::servers`]).
    pub fn servers<E: Into<Endpoint>>(self, endpoints: impl IntoIterator<Item = E>) -> Self {
        endpoints.into_iter().fold(self, Builder::server)
    }

    /// Adds a server with a relative weight ([`crate::Builder::server_weighted`]).
    pub fn server_weighted(self, endpoint: impl Into<Endpoint>, weight: u32) -> Self {
        let endpoint = endpoint.into();
        let spec = endpoint.spec().with_weight(weight);
        self.server_as(endpoint, spec)
    }

    /// Adds a server reached at `endpoint` but placed as `spec` names it
    /// ([`crate::Builder::server_as`]).
    pub fn server_as(self, endpoint: impl Into<Endpoint>, spec: ServerSpec) -> Self {
        let server = (endpoint.into(), spec);
        self.with(|b| b.placement.servers.push(server))
    }

    /// How keys are placed on the servers ([`crate::Builder::hash_mode`]).
    pub fn hash_mode(self, mode: HashMode) -> Self {
        self.with(|b| b.placement.hash_mode = mode)
    }

    /// What the keys of a server that is down do ([`crate::Builder::failover`]).
    pub fn failover(self, failover: Failover) -> Self {
        self.with(|b| b.placement.health.failover = failover)
    }

    /// When a server is ejected and retried ([`crate::Builder::health`]).
    pub fn health(self, policy: HealthPolicy) -> Self {
        self.with(|b| b.placement.health = policy)
    }

    /// The servers are reached through a proxy ([`crate::Builder::proxy`]).
    pub fn proxy(self, proxy: ProxyKind) -> Self {
        self.with(|b| {
            b.placement.proxy = Some(proxy);
            b.settings.for_proxy(proxy);
        })
    }

    /// Whether a single-key `get` or `gets` goes out as `mg <key> f v`
    /// ([`crate::Builder::single_get_as_meta`]; default: yes, unless through twemproxy).
    pub fn single_get_as_meta(self, on: bool) -> Self {
        self.with(|b| b.settings.single_get_as_meta(on, b.placement.proxy))
    }

    /// Connections per server at most (default 8). Each carries one caller at a time; they
    /// are opened when needed and kept open. A caller that finds them all busy waits for one
    /// within its request timeout, then gets [`Error::Timeout`]. Give as many as threads
    /// that call at once.
    pub fn connections(self, n: usize) -> Self {
        self.with(|b| b.connections = n.max(1))
    }

    /// How long opening a connection (TCP, TLS handshake, authentication) may take
    /// (default 1 s): a connect timeout, then socket timeouts for the rest.
    pub fn connect_timeout(self, d: Duration) -> Self {
        self.with(|b| b.settings.connect_timeout = d)
    }

    /// How long a call may take in all (default 1 s; `None`: no limit): waiting for a free
    /// connection, opening one, writing and reading. Past it the call fails with
    /// [`Error::Timeout`] and its connection is closed.
    pub fn request_timeout(self, d: Option<Duration>) -> Self {
        self.with(|b| b.request_timeout = d)
    }

    /// Each reply must be complete within this long of being due
    /// ([`crate::Builder::read_timeout`]; default 5 s): otherwise the call fails with
    /// `Error::Poisoned(PoisonReason::Timeout)` and the connection is closed.
    pub fn read_timeout(self, d: Option<Duration>) -> Self {
        self.with(|b| b.settings.connection.read_timeout = d)
    }

    /// Largest value sent or accepted (default 1 MiB; [`crate::Builder::max_value_len`]).
    pub fn max_value_len(self, n: usize) -> Self {
        self.with(|b| b.settings.connection.limits.max_value_len = n)
    }

    /// Most bytes one reply may hold ([`crate::Builder::max_reply_len`]; default 64 MiB).
    pub fn max_reply_len(self, n: usize) -> Self {
        self.with(|b| b.settings.connection.limits.max_reply_len = n)
    }

    /// Reconnect delays ([`crate::Builder::backoff`]): after a failed connect, calls that
    /// need a new connection to that server fail at once with [`Error::Unavailable`] until
    /// the delay has passed.
    pub fn backoff(self, min: Duration, max: Duration) -> Self {
        self.with(|b| {
            b.settings.backoff_min = min;
            b.settings.backoff_max = max.max(min);
        })
    }

    /// memcached's ASCII authentication (server started with `-Y`).
    pub fn auth(self, user: impl Into<String>, pass: impl Into<String>) -> Self {
        let credentials = (user.into(), pass.into());
        self.with(|b| b.settings.auth = Some(credentials))
    }

    /// TLS (server started with `-Z`) through rustls's blocking stream; certificates are
    /// verified as for [`crate::Builder::tls`].
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls(self, tls: crate::tls::TlsConfig) -> Self {
        self.with(|b| b.settings.tls = Some(tls))
    }

    /// Adds the servers of a URL and applies its settings, read as by
    /// [`crate::Builder::url`] (`max_in_flight` is accepted and means nothing here: a
    /// connection carries one caller at a time).
    ///
    /// ```
    /// use mcache_client::blocking::Client;
    ///
    /// let builder = Client::builder().url("memcache://10.0.0.1,10.0.0.2?timeout=250ms")?;
    /// # Ok::<(), mcache_client::ParseError>(())
    /// ```
    pub fn url(mut self, url: &str) -> Result<Builder, ParseError> {
        let target = UrlTarget {
            settings: &mut self.settings,
            request_timeout: &mut self.request_timeout,
            connections: &mut self.connections,
        };
        let endpoints = parse_url(url)?.apply(url, target)?;
        Ok(self.servers(endpoints))
    }

    /// Checks the configuration and opens a first connection to every server. With one
    /// server, fails if it cannot be reached; with several, only if none can (the others
    /// count one failure each and are retried by later calls).
    pub fn build(self) -> Result<Client, Error> {
        self.placement.check(&self.settings)?;
        let (pool, counters) = self.placement.pool(self.connections)?;
        let servers = self.placement.servers.into_iter().zip(counters);
        let servers = servers.map(|((endpoint, _), counters)| {
            Server::new(endpoint, self.connections, &self.settings, counters)
        });
        let client =
            Client::from_parts(servers.collect(), pool, self.settings, self.request_timeout);
        let mut first_error = None;
        let mut reached = 0;
        for (i, opened) in client.warm_up().into_iter().enumerate() {
            match opened {
                Ok(()) => reached += 1,
                Err(e) => {
                    tracing::warn!(server = i, error = %e, "server unreachable at start");
                    client.pool().record_failure(i, std::time::Instant::now());
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) if reached == 0 => Err(e),
            _ => Ok(client),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_options_reach_the_settings() {
        let url = "memcache://u%3Ax:p%40ss@h1:1,h2?timeout=250ms&connect_timeout=2s\
                   &read_timeout=none&connections=3&max_value_len=2m&max_reply_len=8m\
                   &backoff_min=10ms&backoff_max=1s";
        let b = Builder::new().url(url).unwrap();
        assert_eq!(b.request_timeout, Some(Duration::from_millis(250)));
        assert_eq!(b.connections, 3);
        let s = &b.settings;
        assert_eq!(s.connect_timeout, Duration::from_secs(2));
        assert_eq!(s.connection.read_timeout, None);
        assert_eq!(s.connection.limits.max_value_len, 2 * 1024 * 1024);
        assert_eq!(s.connection.limits.max_reply_len, 8 * 1024 * 1024);
        assert_eq!(
            (s.backoff_min, s.backoff_max),
            (Duration::from_millis(10), Duration::from_secs(1))
        );
        assert_eq!(s.auth, Some(("u:x".into(), "p@ss".into())));
        let servers: Vec<_> = b
            .placement
            .servers
            .iter()
            .map(|(e, _)| e.to_string())
            .collect();
        assert_eq!(servers, ["h1:1", "h2:11211"]);

        // Options not given keep what the builder had; later calls override the URL's.
        let b = Builder::new()
            .connections(5)
            .url("memcache://h?timeout=none")
            .unwrap();
        assert_eq!((b.connections, b.request_timeout), (5, None));
        let b = b.request_timeout(Some(Duration::from_secs(3)));
        assert_eq!(b.request_timeout, Some(Duration::from_secs(3)));
        // A backoff_max below the minimum is raised to it.
        let b = Builder::new()
            .url("memcache://h?backoff_min=3s&backoff_max=1s")
            .unwrap();
        assert_eq!(b.settings.backoff_max, Duration::from_secs(3));
    }

    #[test]
    fn bad_urls_and_configurations_are_typed_errors() {
        assert!(matches!(
            Builder::new().url("memcache://h?bogus=1"),
            Err(ParseError::UnknownOption { .. })
        ));
        #[cfg(not(feature = "tls"))]
        assert!(matches!(
            Builder::new().url("memcaches://h"),
            Err(ParseError::TlsDisabled { .. })
        ));
        #[cfg(all(
            feature = "tls",
            not(any(feature = "webpki-roots", feature = "native-roots"))
        ))]
        assert!(matches!(
            Builder::new().url("memcaches://h"),
            Err(ParseError::NoTlsRoots { .. })
        ));
        for b in [Builder::new(), Builder::new().server("h:abc")] {
            assert!(matches!(b.build(), Err(Error::Config(_))));
        }
    }

    #[cfg(feature = "tls")]
    #[test]
    fn memcaches_keeps_a_given_tls_config_and_sets_its_server_name() {
        let pem = b"";
        let tls = crate::tls::TlsConfig::with_root_certificates_pem(pem).unwrap();
        let b = Builder::new()
            .tls(tls)
            .url("memcaches:///?server_name=cache.test")
            .map(drop);
        assert!(b.is_err(), "memcaches:// needs a host");
        let tls = crate::tls::TlsConfig::with_root_certificates_pem(pem).unwrap();
        let b = Builder::new()
            .tls(tls)
            .url("memcaches://10.0.0.1?server_name=cache.test")
            .unwrap();
        let name = b.settings.tls.as_ref().and_then(|t| t.name_for(None));
        assert_eq!(name, Some("cache.test"));
    }
}
