//! [`Settings`]: what every connection task of a client is configured with.

use mcache_proto::{ConnectionConfig, Limits, ProxyKind};
use std::time::Duration;

/// Settings shared by a client's connection tasks (set through the [`Builder`](crate::Builder)).
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// proto's per-connection settings: limits, read timeout, batch sync command.
    pub(crate) connection: ConnectionConfig,
    /// Bound on opening a connection (TCP, TLS and authentication together).
    pub(crate) connect_timeout: Duration,
    /// First reconnect delay; doubles (with jitter) up to `backoff_max`.
    pub(crate) backoff_min: Duration,
    /// Longest reconnect delay.
    pub(crate) backoff_max: Duration,
    /// memcached's ASCII authentication.
    pub(crate) auth: Option<(String, String)>,
    /// Requests one connection carries at once (queued in its task plus written and not yet
    /// answered, abandoned ones included).
    pub(crate) max_in_flight: usize,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<crate::tls::TlsConfig>,
}

/// Default for [`Settings::max_in_flight`].
pub(crate) const DEFAULT_MAX_IN_FLIGHT: usize = 1024;

impl Default for Settings {
    fn default() -> Self {
        Settings {
            connection: ConnectionConfig {
                limits: Limits::default(),
                read_timeout: Some(Duration::from_secs(5)),
                single_get_as_meta: true,
                ..ConnectionConfig::default()
            },
            connect_timeout: Duration::from_secs(1),
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(2),
            auth: None,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

impl Settings {
    /// Adapts the connections to `proxy`: the command that closes a batch of silent requests,
    /// and single-key gets sent as they are if it does not carry meta commands.
    pub(crate) fn for_proxy(&mut self, proxy: ProxyKind) {
        self.connection.sync = proxy.sync_command();
        self.connection.single_get_as_meta &= proxy.carries_meta();
    }

    /// Sends single-key gets as `mg` if `on`, unless through a `proxy` that does not carry
    /// meta commands (whichever of the two was set first).
    pub(crate) fn single_get_as_meta(&mut self, on: bool, proxy: Option<ProxyKind>) {
        self.connection.single_get_as_meta = on && proxy.is_none_or(ProxyKind::carries_meta);
    }
}

/// The servers of a client and how keys are placed on them: what
/// [`blocking::Builder`](crate::blocking::Builder) collects, checked and turned into a
/// [`Pool`](crate::Pool) here (the async [`Builder`](crate::Builder) does the same checks).
#[cfg(feature = "blocking")]
use {crate::stats::ServerCounters, mcache_proto::Error, std::sync::Arc};

/// Per server, by index: its counters.
#[cfg(feature = "blocking")]
pub(crate) type Counters = Vec<Arc<ServerCounters>>;

#[cfg(feature = "blocking")]
#[derive(Debug, Clone, Default)]
pub(crate) struct Placement {
    /// Where each server is, and the name its keys are placed by.
    pub(crate) servers: Vec<(crate::Endpoint, mcache_proto::ServerSpec)>,
    pub(crate) hash_mode: mcache_proto::HashMode,
    pub(crate) health: mcache_proto::HealthPolicy,
    pub(crate) proxy: Option<mcache_proto::ProxyKind>,
}

#[cfg(feature = "blocking")]
impl Placement {
    /// Refuses what cannot work, before connecting: no server, an address that does not
    /// parse, TLS to a server without a name to verify its certificate against.
    pub(crate) fn check(&self, settings: &Settings) -> Result<(), Error> {
        if self.servers.is_empty() {
            return Err(Error::Config("no server configured".into()));
        }
        for (endpoint, _) in &self.servers {
            let refused = |why: String| Error::Config(format!("server {endpoint}: {why}"));
            endpoint.validate().map_err(|e| refused(e.to_string()))?;
            #[cfg(feature = "tls")]
            if settings
                .tls
                .as_ref()
                .is_some_and(|t| t.name_for(endpoint.host()).is_none())
            {
                return Err(refused(
                    "TLS over a unix socket has no host name to verify the certificate \
                     against; set TlsConfig::server_name"
                        .into(),
                ));
            }
        }
        let _ = settings;
        Ok(())
    }

    /// The placement and health of these servers, and their counters (one set per server,
    /// by index, shared with the pool).
    pub(crate) fn pool(&self, max_in_flight: usize) -> Result<(crate::Pool, Counters), Error> {
        let specs = self.servers.iter().map(|(_, spec)| spec.clone());
        let placement = mcache_proto::Pool::new(specs, self.hash_mode, self.health)
            .map_err(|e| Error::Config(format!("server pool: {e}")))?
            .with_proxy(self.proxy);
        let counters: Counters = self
            .servers
            .iter()
            .map(|(endpoint, _)| Arc::new(ServerCounters::new(endpoint, max_in_flight)))
            .collect();
        Ok((crate::Pool::new(placement, counters.clone()), counters))
    }
}
