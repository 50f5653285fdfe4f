//! [`Settings`]: what every connection task of a client is configured with.

use mcache_proto::{ConnectionConfig, Limits};
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
