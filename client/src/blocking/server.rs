//! [`Server`]: the connections of the blocking client to one server. At most `max` are
//! open; each carries one caller at a time, lent as a [`Lease`]. A lease goes back to the
//! idle list only if its connection is in step ([`Link::is_reusable`]) and the thread is not
//! panicking; otherwise the connection is closed and a later caller opens a new one. After a
//! failed connect, new connections wait for a backoff (jittered, doubling) while callers fail
//! fast with [`Error::Unavailable`].

use super::link::Link;
use crate::endpoint::Endpoint;
use crate::settings::Settings;
use crate::stats::ServerCounters;
use mcache_proto::Error;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// One server's connections.
#[derive(Debug)]
pub(crate) struct Server {
    pub(crate) endpoint: Endpoint,
    max: usize,
    state: Mutex<State>,
    /// Signalled when a connection goes back or a slot frees up.
    freed: Condvar,
    counters: Arc<ServerCounters>,
}

#[derive(Debug)]
struct State {
    idle: Vec<Link>,
    /// Connections open or being opened, lent or idle.
    open: usize,
    /// A connection was ever opened (later ones count as reconnects).
    connected: bool,
    /// No new connection before this, after a failed connect.
    retry_at: Option<Instant>,
    /// The next backoff step.
    backoff: Duration,
    /// Callers waiting for a connection (signalled only when there are some: a signal is a
    /// system call).
    waiting: usize,
}

impl Server {
    pub(crate) fn new(
        endpoint: Endpoint,
        max: usize,
        settings: &Settings,
        counters: Arc<ServerCounters>,
    ) -> Server {
        Server {
            endpoint,
            max: max.max(1),
            state: Mutex::new(State {
                idle: Vec::with_capacity(max),
                open: 0,
                connected: false,
                retry_at: None,
                backoff: settings.backoff_min,
                waiting: 0,
            }),
            freed: Condvar::new(),
            counters,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What the client has counted for this server; `in_flight`: connections lent now.
    pub(crate) fn stats(&self) -> crate::ServerStats {
        self.counters.snapshot(self.lent() as u64)
    }

    /// Connections lent out now.
    pub(crate) fn lent(&self) -> usize {
        let s = self.state();
        s.open - s.idle.len()
    }

    /// The counters of this server.
    pub(crate) fn counters(&self) -> &ServerCounters {
        &self.counters
    }

    /// An idle connection, or a new one if fewer than `max` are open; otherwise waits for
    /// one until `deadline` ([`Error::Timeout`]).
    pub(crate) fn lease(
        &self,
        settings: &Settings,
        deadline: Option<Instant>,
    ) -> Result<Lease<'_>, Error> {
        let mut state = self.state();
        loop {
            if let Some(link) = state.idle.pop() {
                return Ok(Lease {
                    server: self,
                    link: Some(link),
                });
            }
            if state.open < self.max {
                let now = Instant::now();
                if let Some(at) = state.retry_at.filter(|at| *at > now) {
                    return Err(Error::Unavailable(format!(
                        "{}: reconnecting (next attempt in {:?})",
                        self.endpoint,
                        at - now
                    )));
                }
                state.open += 1;
                drop(state);
                return self.connect(settings);
            }
            let left = deadline.map(|at| at.saturating_duration_since(Instant::now()));
            if left.is_some_and(|left| left.is_zero()) {
                return Err(Error::Timeout);
            }
            state.waiting += 1;
            state = match left {
                None => self
                    .freed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(left) => {
                    let waited = self.freed.wait_timeout(state, left);
                    waited.unwrap_or_else(PoisonError::into_inner).0
                }
            };
            state.waiting -= 1;
        }
    }

    /// Opens a connection in a slot already counted in `open`.
    fn connect(&self, settings: &Settings) -> Result<Lease<'_>, Error> {
        let opened = Link::open(&self.endpoint, settings);
        let mut state = self.state();
        match opened {
            Ok(link) => {
                if std::mem::replace(&mut state.connected, true) {
                    self.counters.reconnect();
                }
                state.retry_at = None;
                state.backoff = settings.backoff_min;
                Ok(Lease {
                    server: self,
                    link: Some(link),
                })
            }
            Err(e) => {
                self.counters.connect_failure();
                state.open -= 1;
                // Drawn from the upper half of the step, so that clients spread out.
                let step = state.backoff;
                let wait = step / 2 + step.mul_f64(fastrand::f64() / 2.0);
                state.retry_at = Some(Instant::now() + wait);
                state.backoff = (step * 2).min(settings.backoff_max);
                self.wake_one(state);
                tracing::debug!(endpoint = %self.endpoint, error = %e, "connect failed");
                Err(e)
            }
        }
    }

    /// Takes back a connection (idle again if reusable, closed otherwise).
    fn give_back(&self, link: Link) {
        let keep = link.is_reusable() && !std::thread::panicking();
        let mut state = self.state();
        if keep {
            state.idle.push(link);
        } else {
            state.open -= 1;
        }
        self.wake_one(state);
    }

    /// Wakes a waiting caller, if there is one, after releasing the lock.
    fn wake_one(&self, state: MutexGuard<'_, State>) {
        let waiting = state.waiting > 0;
        drop(state);
        if waiting {
            self.freed.notify_one();
        }
    }
}

/// A connection lent to one caller; dropping it gives it back (see [`Server`]).
#[derive(Debug)]
pub(crate) struct Lease<'a> {
    server: &'a Server,
    link: Option<Link>,
}

impl Lease<'_> {
    /// The connection (always there until the lease is dropped).
    pub(crate) fn link(&mut self) -> Result<&mut Link, Error> {
        let endpoint = &self.server.endpoint;
        let gone = || Error::Unavailable(format!("{endpoint}: connection already given back"));
        self.link.as_mut().ok_or_else(gone)
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(link) = self.link.take() {
            self.server.give_back(link);
        }
    }
}
