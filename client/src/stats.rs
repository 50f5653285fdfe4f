//! What a [`Client`](crate::Client) has done, per server: [`Client::client_stats`](crate::Client::client_stats)
//! returns a [`ClientStats`] snapshot, always available (no feature needed). The counters are
//! relaxed atomics, one set per server: a request costs two `fetch_add`s (submitted, and its
//! result by kind), with no lock, no allocation and no clock read.
//!
//! With the `metrics` feature the same events also go to the [`metrics`](https://docs.rs/metrics)
//! facade (0.24), each with a `server` label (the endpoint as written, `host:port` or
//! `unix:/path`). The handles are registered once per server when the client is built, with
//! the recorder in force then (the global one, or a local one around `build`):
//!
//! | metric | kind | what |
//! |---|---|---|
//! | `mcache_requests_total` | counter | requests submitted to the server |
//! | `mcache_errors_total` | counter | failed requests, with a `kind` label: `timeout`, `unavailable`, `io`, `poisoned`, `server_reply`, `encode`, `unexpected_response`, `config`, `other` (see [`ErrorKind`]) |
//! | `mcache_timeouts_total` | counter | failed requests whose error [`is_timeout`](crate::Error::is_timeout) (the caller's deadline, a read timeout, a transport timeout) |
//! | `mcache_reconnects_total` | counter | connections opened by a connection task after its first |
//! | `mcache_connect_failures_total` | counter | connect attempts of a connection task that failed |
//! | `mcache_ejections_total` | counter | times the pool ejected the server |
//! | `mcache_in_flight` | gauge | requests holding an in-flight slot of one of the server's connections (queued, written, or abandoned and not yet answered) |
//! | `mcache_request_duration_seconds` | histogram | from submitting a request to its result reaching the caller, ok or not, measured with [`Runtime::now`](crate::Runtime::now) (only with the feature on) |
//!
//! Every command also runs in a `tracing` span `memcache` at trace level, with the fields
//! `command` (the command's name on the wire, such as `get` or `mg`) and `server` (its index):
//! when trace level is off for this crate the span costs a level check and nothing is
//! formatted.

use crate::endpoint::Endpoint;
use mcache_proto::Error;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// What each server of a client has done since the client was built; from
/// [`Client::client_stats`](crate::Client::client_stats).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientStats {
    /// One entry per server, by index.
    pub servers: Vec<ServerStats>,
}

impl ClientStats {
    /// Everything added up over the servers (its `endpoint` is the first server's).
    pub fn total(&self) -> Option<ServerStats> {
        let mut servers = self.servers.iter();
        let mut total = servers.next()?.clone();
        for s in servers {
            total.requests += s.requests;
            total.ok += s.ok;
            total.errors.add(&s.errors);
            total.timeouts += s.timeouts;
            total.reconnects += s.reconnects;
            total.connect_failures += s.connect_failures;
            total.ejections += s.ejections;
            total.in_flight += s.in_flight;
        }
        Some(total)
    }
}

/// One server's counts. `requests` = `ok` + `errors.total()` + the requests still on their
/// way or whose caller dropped the call before its result (a snapshot is not atomic across
/// fields, so under load they may be a few apart).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerStats {
    /// The server's address.
    pub endpoint: Endpoint,
    /// Requests submitted to this server (each part of a multi-key request split over
    /// servers counts once for its server).
    pub requests: u64,
    /// Requests that succeeded (a miss is a success).
    pub ok: u64,
    /// Requests that failed, by kind.
    pub errors: ErrorCounts,
    /// Failed requests whose error [`is_timeout`](crate::Error::is_timeout): the caller's own
    /// deadline (also counted in `errors.timeout`), a read timeout (`errors.poisoned`) or a
    /// transport timeout (`errors.io`).
    pub timeouts: u64,
    /// Connections opened by the server's connection tasks after their first one (after a
    /// lost connection or a safety close).
    pub reconnects: u64,
    /// Connect attempts of the server's connection tasks that failed (TCP, TLS or
    /// authentication, or the connect timeout).
    pub connect_failures: u64,
    /// Times the pool ejected the server (never with a single server).
    pub ejections: u64,
    /// Requests holding an in-flight slot now: waiting in a connection task, written, or
    /// abandoned by their caller and not yet answered (at most
    /// [`Builder::max_in_flight`](crate::Builder::max_in_flight) per connection).
    pub in_flight: u64,
}

impl ServerStats {
    /// Requests that completed, ok or not.
    pub fn completed(&self) -> u64 {
        self.ok + self.errors.total()
    }
}

/// How a request failed, one kind per [`Error`] variant (server error lines together).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// [`Error::Timeout`]: the caller's own deadline passed.
    Timeout,
    /// [`Error::Unavailable`]: the server is down, reconnecting or ejected; nothing was sent.
    Unavailable,
    /// [`Error::Io`]: the transport failed.
    Io,
    /// [`Error::Poisoned`]: the connection became unusable (closed, malformed reply, read
    /// timeout).
    Poisoned,
    /// [`Error::Protocol`], [`Error::Client`], [`Error::Server`]: the server's own
    /// `ERROR` / `CLIENT_ERROR` / `SERVER_ERROR` for this request.
    ServerReply,
    /// [`Error::Encode`]: the request could not be encoded; nothing was sent.
    Encode,
    /// [`Error::UnexpectedResponse`]: a valid reply this command cannot have.
    UnexpectedResponse,
    /// [`Error::Config`].
    Config,
    /// An error variant added after this list.
    Other,
}

impl ErrorKind {
    /// Every kind, in the order of [`ErrorKind::index`].
    pub const ALL: [ErrorKind; 9] = [
        ErrorKind::Timeout,
        ErrorKind::Unavailable,
        ErrorKind::Io,
        ErrorKind::Poisoned,
        ErrorKind::ServerReply,
        ErrorKind::Encode,
        ErrorKind::UnexpectedResponse,
        ErrorKind::Config,
        ErrorKind::Other,
    ];

    /// The kind of `error`.
    pub fn of(error: &Error) -> ErrorKind {
        match error {
            Error::Timeout => ErrorKind::Timeout,
            Error::Unavailable(_) => ErrorKind::Unavailable,
            Error::Io(_) => ErrorKind::Io,
            Error::Poisoned(_) => ErrorKind::Poisoned,
            Error::Protocol(_) | Error::Client(_) | Error::Server(_) => ErrorKind::ServerReply,
            Error::Encode(_) => ErrorKind::Encode,
            Error::UnexpectedResponse { .. } => ErrorKind::UnexpectedResponse,
            Error::Config(_) => ErrorKind::Config,
            _ => ErrorKind::Other,
        }
    }

    /// The kind's name: the `kind` label of `mcache_errors_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Io => "io",
            ErrorKind::Poisoned => "poisoned",
            ErrorKind::ServerReply => "server_reply",
            ErrorKind::Encode => "encode",
            ErrorKind::UnexpectedResponse => "unexpected_response",
            ErrorKind::Config => "config",
            ErrorKind::Other => "other",
        }
    }

    /// The kind's place in [`ErrorKind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Failed requests of one server, by [`ErrorKind`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ErrorCounts {
    /// [`ErrorKind::Timeout`].
    pub timeout: u64,
    /// [`ErrorKind::Unavailable`].
    pub unavailable: u64,
    /// [`ErrorKind::Io`].
    pub io: u64,
    /// [`ErrorKind::Poisoned`].
    pub poisoned: u64,
    /// [`ErrorKind::ServerReply`].
    pub server_reply: u64,
    /// [`ErrorKind::Encode`].
    pub encode: u64,
    /// [`ErrorKind::UnexpectedResponse`].
    pub unexpected_response: u64,
    /// [`ErrorKind::Config`].
    pub config: u64,
    /// [`ErrorKind::Other`].
    pub other: u64,
}

impl ErrorCounts {
    /// Failed requests of every kind.
    pub fn total(&self) -> u64 {
        ErrorKind::ALL.iter().map(|&k| self.get(k)).sum()
    }

    /// Failed requests of `kind`.
    pub fn get(&self, kind: ErrorKind) -> u64 {
        *self.field(kind)
    }

    fn field(&self, kind: ErrorKind) -> &u64 {
        match kind {
            ErrorKind::Timeout => &self.timeout,
            ErrorKind::Unavailable => &self.unavailable,
            ErrorKind::Io => &self.io,
            ErrorKind::Poisoned => &self.poisoned,
            ErrorKind::ServerReply => &self.server_reply,
            ErrorKind::Encode => &self.encode,
            ErrorKind::UnexpectedResponse => &self.unexpected_response,
            ErrorKind::Config => &self.config,
            ErrorKind::Other => &self.other,
        }
    }

    fn field_mut(&mut self, kind: ErrorKind) -> &mut u64 {
        match kind {
            ErrorKind::Timeout => &mut self.timeout,
            ErrorKind::Unavailable => &mut self.unavailable,
            ErrorKind::Io => &mut self.io,
            ErrorKind::Poisoned => &mut self.poisoned,
            ErrorKind::ServerReply => &mut self.server_reply,
            ErrorKind::Encode => &mut self.encode,
            ErrorKind::UnexpectedResponse => &mut self.unexpected_response,
            ErrorKind::Config => &mut self.config,
            ErrorKind::Other => &mut self.other,
        }
    }

    fn add(&mut self, other: &ErrorCounts) {
        for k in ErrorKind::ALL {
            *self.field_mut(k) += other.get(k);
        }
    }
}

const KINDS: usize = ErrorKind::ALL.len();

/// The live counters of one server, shared by the client, its pool and its connection tasks.
#[derive(Debug)]
pub(crate) struct ServerCounters {
    endpoint: Endpoint,
    max_in_flight: usize,
    requests: AtomicU64,
    ok: AtomicU64,
    errors: [AtomicU64; KINDS],
    timeouts: AtomicU64,
    reconnects: AtomicU64,
    connect_failures: AtomicU64,
    ejections: AtomicU64,
    #[cfg(feature = "metrics")]
    exported: Exported,
}

impl ServerCounters {
    /// Counters for `endpoint` (and, with `metrics`, its handles, registered with the
    /// recorder in force now).
    pub(crate) fn new(endpoint: &Endpoint, max_in_flight: usize) -> ServerCounters {
        ServerCounters {
            #[cfg(feature = "metrics")]
            exported: Exported::register(endpoint),
            endpoint: endpoint.clone(),
            max_in_flight,
            requests: AtomicU64::new(0),
            ok: AtomicU64::new(0),
            errors: std::array::from_fn(|_| AtomicU64::new(0)),
            timeouts: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            connect_failures: AtomicU64::new(0),
            ejections: AtomicU64::new(0),
        }
    }

    /// Each connection's in-flight slots.
    pub(crate) fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    /// A request is being submitted.
    #[inline]
    pub(crate) fn request(&self) {
        self.requests.fetch_add(1, Relaxed);
        #[cfg(feature = "metrics")]
        self.exported.requests.increment(1);
    }

    /// A request's result reached its caller.
    #[inline]
    pub(crate) fn result<T>(&self, result: &Result<T, Error>) {
        match result {
            Ok(_) => {
                self.ok.fetch_add(1, Relaxed);
            }
            Err(e) => self.error(e),
        }
    }

    #[cold]
    fn error(&self, e: &Error) {
        let kind = ErrorKind::of(e);
        self.errors[kind.index()].fetch_add(1, Relaxed);
        let timeout = e.is_timeout();
        if timeout {
            self.timeouts.fetch_add(1, Relaxed);
        }
        #[cfg(feature = "metrics")]
        {
            self.exported.errors[kind.index()].increment(1);
            if timeout {
                self.exported.timeouts.increment(1);
            }
        }
    }

    /// A connection task opened a connection after its first.
    pub(crate) fn reconnect(&self) {
        self.reconnects.fetch_add(1, Relaxed);
        #[cfg(feature = "metrics")]
        self.exported.reconnects.increment(1);
    }

    /// A connection task's connect attempt failed.
    pub(crate) fn connect_failure(&self) {
        self.connect_failures.fetch_add(1, Relaxed);
        #[cfg(feature = "metrics")]
        self.exported.connect_failures.increment(1);
    }

    /// The pool ejected the server.
    pub(crate) fn ejection(&self) {
        self.ejections.fetch_add(1, Relaxed);
        #[cfg(feature = "metrics")]
        self.exported.ejections.increment(1);
    }

    /// A request's latency, from submit to result (with `metrics` only).
    #[cfg(feature = "metrics")]
    pub(crate) fn duration(&self, d: std::time::Duration) {
        self.exported.duration.record(d.as_secs_f64());
    }

    /// Counts one request in the `mcache_in_flight` gauge until the guard is dropped.
    #[cfg(feature = "metrics")]
    pub(crate) fn in_flight(&self) -> InFlight {
        self.exported.in_flight.increment(1.0);
        InFlight(self.exported.in_flight.clone())
    }

    /// A snapshot, with `in_flight` slots in use now.
    pub(crate) fn snapshot(&self, in_flight: u64) -> ServerStats {
        let mut errors = ErrorCounts::default();
        for k in ErrorKind::ALL {
            *errors.field_mut(k) = self.errors[k.index()].load(Relaxed);
        }
        ServerStats {
            endpoint: self.endpoint.clone(),
            requests: self.requests.load(Relaxed),
            ok: self.ok.load(Relaxed),
            errors,
            timeouts: self.timeouts.load(Relaxed),
            reconnects: self.reconnects.load(Relaxed),
            connect_failures: self.connect_failures.load(Relaxed),
            ejections: self.ejections.load(Relaxed),
            in_flight,
        }
    }
}

/// The `metrics` handles of one server.
#[cfg(feature = "metrics")]
#[derive(Debug)]
struct Exported {
    requests: metrics::Counter,
    errors: [metrics::Counter; KINDS],
    timeouts: metrics::Counter,
    reconnects: metrics::Counter,
    connect_failures: metrics::Counter,
    ejections: metrics::Counter,
    in_flight: metrics::Gauge,
    duration: metrics::Histogram,
}

#[cfg(feature = "metrics")]
impl Exported {
    fn register(endpoint: &Endpoint) -> Exported {
        use metrics::{counter, gauge, histogram};
        let server = endpoint.to_string();
        Exported {
            requests: counter!("mcache_requests_total", "server" => server.clone()),
            errors: ErrorKind::ALL.map(|k| {
                counter!("mcache_errors_total", "server" => server.clone(), "kind" => k.as_str())
            }),
            timeouts: counter!("mcache_timeouts_total", "server" => server.clone()),
            reconnects: counter!("mcache_reconnects_total", "server" => server.clone()),
            connect_failures: counter!("mcache_connect_failures_total", "server" => server.clone()),
            ejections: counter!("mcache_ejections_total", "server" => server.clone()),
            in_flight: gauge!("mcache_in_flight", "server" => server.clone()),
            duration: histogram!("mcache_request_duration_seconds", "server" => server),
        }
    }
}

/// One request counted in `mcache_in_flight` while this lives (held with its in-flight slot).
#[cfg(feature = "metrics")]
pub(crate) struct InFlight(metrics::Gauge);

#[cfg(feature = "metrics")]
impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

#[cfg(test)]
mod tests;
