//! [`Pool`]: proto's sans-IO server pool shared by every caller of a client. The placement
//! with every server up is read without a lock; health bookkeeping (failures, ejections,
//! failover routing) sits behind a mutex that is taken only while some server has failures on
//! record, and never across an await.

use crate::stats::ServerCounters;
use mcache_proto::pool::{Plan, Split};
use mcache_proto::text::request::Retrieve;
use mcache_proto::{Error, HashMode, HealthPolicy, ProxyKind, Request, Response, ServerSpec};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

/// The servers of a client: their placement and their health, by index.
#[derive(Debug)]
pub struct Pool {
    /// Never changed: plans while no server is ejected.
    all_up: mcache_proto::Pool,
    /// Health and failover, for routing while some server is out, and bookkeeping.
    health: Mutex<mcache_proto::Pool>,
    /// How many servers are ejected (written under the lock, read without it).
    ejected: AtomicUsize,
    /// Per server: failures were recorded since its last reply.
    suspect: Vec<AtomicBool>,
    /// Per server: what it has done ([`crate::Client::client_stats`]).
    counters: Vec<Arc<ServerCounters>>,
}

impl Pool {
    pub(crate) fn new(pool: mcache_proto::Pool, counters: Vec<Arc<ServerCounters>>) -> Pool {
        debug_assert_eq!(counters.len(), pool.len());
        Pool {
            counters,
            suspect: (0..pool.len()).map(|_| AtomicBool::new(false)).collect(),
            all_up: pool.clone(),
            health: Mutex::new(pool),
            ejected: AtomicUsize::new(0),
        }
    }

    fn health(&self) -> MutexGuard<'_, mcache_proto::Pool> {
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn all_up(&self) -> bool {
        self.all_up.len() == 1 || self.ejected.load(Ordering::Acquire) == 0
    }

    /// The counters of `server`.
    pub(crate) fn counters(&self, server: usize) -> Option<&Arc<ServerCounters>> {
        self.counters.get(server)
    }

    /// Number of servers (at least 1).
    pub fn len(&self) -> usize {
        self.all_up.len()
    }

    /// Always `false`: a pool has at least one server.
    pub fn is_empty(&self) -> bool {
        self.all_up.is_empty()
    }

    /// The servers as configured, by index.
    pub fn servers(&self) -> &[ServerSpec] {
        self.all_up.servers()
    }

    /// The placement rules.
    pub fn mode(&self) -> HashMode {
        self.all_up.mode()
    }

    /// The health policy.
    pub fn policy(&self) -> HealthPolicy {
        self.all_up.policy()
    }

    /// The proxy in front of the servers, if any.
    pub fn proxy(&self) -> Option<ProxyKind> {
        self.all_up.proxy()
    }

    /// The server that holds `key` (its wire bytes) while every server is up.
    pub fn server_for(&self, key: &[u8]) -> usize {
        self.all_up.server_for(key)
    }

    /// Whether `server` may be used at `now` (it is not out, or its retry time has come).
    pub fn is_available(&self, server: usize, now: Instant) -> bool {
        server < self.len() && (self.all_up() || self.health().is_available(server, now))
    }

    /// When `server` is (or was) due to be retried after its last ejection; `None` if it has
    /// answered since, or was never ejected.
    pub fn retry_at(&self, server: usize) -> Option<Instant> {
        self.health().retry_at(server)
    }

    /// Consecutive failures on record for `server`.
    pub fn failures(&self, server: usize) -> u32 {
        self.health().failures(server)
    }

    /// Refuses, before sending, a request the proxy cannot carry.
    pub(crate) fn check(&self, request: &Request) -> Result<(), Error> {
        self.all_up.check(request)
    }

    /// What to send for `request` at `now`.
    pub(crate) fn plan(&self, request: Request, now: Instant) -> Plan {
        if self.all_up() {
            self.all_up.plan_all_up(request)
        } else {
            self.health().plan(request, now)
        }
    }

    /// A retrieval split per server, one result per key.
    pub(crate) fn plan_split(&self, retrieve: Retrieve, now: Instant) -> Result<Split, Error> {
        if self.all_up() {
            self.all_up.plan_split_all_up(retrieve)
        } else {
            self.health().plan_split(retrieve, now)
        }
    }

    /// Takes note of `server`'s reply (or failure) to a request sent at `sent`; `now` is when
    /// the result came. Takes no lock while the server has no failures on record and the reply
    /// is not a connection-level failure. A reply to a request sent before the server's last
    /// failure does not count: callers on other threads may count a reply read just before
    /// the server died after the failures that ejected it, and it must not re-admit it.
    pub(crate) fn observe(
        &self,
        server: usize,
        result: &Result<Response, Error>,
        sent: Instant,
        now: Instant,
    ) {
        if self.len() == 1 {
            return;
        }
        match result {
            Err(e) if e.is_connection_failure() => {
                self.record_failure(server, now);
            }
            Err(e) if !e.is_server_reply() => {}
            _ => self.record_reply(server, sent),
        }
    }

    /// Counts a failure against `server`; whether this ejected it.
    pub(crate) fn record_failure(&self, server: usize, now: Instant) -> bool {
        let Some(suspect) = self.suspect.get(server) else {
            return false;
        };
        let mut health = self.health();
        let ejected = health.record_failure(server, now);
        suspect.store(true, Ordering::Release);
        self.ejected.store(health.ejected(), Ordering::Release);
        if let Some(c) = self.counters.get(server).filter(|_| ejected) {
            c.ejection();
        }
        ejected
    }

    fn record_reply(&self, server: usize, sent: Instant) {
        let Some(suspect) = self.suspect.get(server) else {
            return;
        };
        if !suspect.load(Ordering::Acquire) {
            return;
        }
        let mut health = self.health();
        health.record_reply(server, sent);
        if health.failures(server) > 0 || health.retry_at(server).is_some() {
            // A reply from before the last failure: the server stays suspect.
            return;
        }
        suspect.store(false, Ordering::Release);
        self.ejected.store(health.ejected(), Ordering::Release);
    }
}
