//! Server pools, sans IO: where each request of a multi-server client goes, how a multi-key
//! retrieval is split per server and its replies merged back in the caller's order, the
//! dead-server bookkeeping every caller of a client shares, and what a proxy in front of the
//! servers can carry.
//!
//! An adapter owns one [`Pool`] and, per server, a few connections. For each call it asks
//! [`Pool::plan`] what to send:
//!
//! - [`Plan::One`]: one request to one server; its reply is the answer.
//! - [`Plan::Split`]: a multi-key retrieval whose keys live on several servers: send every
//!   part at once, then [`Split::merge`] the replies (in the order of the parts) into one
//!   [`Response::Values`] in the caller's key order.
//! - [`Plan::Broadcast`]: a command without a key (`flush_all`, `version`, `stats`,
//!   `verbosity`, `mn`, `quit`): it goes to every server; [`Broadcast::merge`] returns the
//!   first error (by server index) or else server 0's reply.
//! - [`Plan::Refused`]: nothing is sent; this error is the answer (the key's server is down
//!   under [`Failover::FailFast`](crate::Failover::FailFast), or the proxy cannot carry the
//!   command).
//!
//! Each reply goes back through [`Pool::observe`]: a connection-level failure
//! ([`is_server_failure`]) counts against its server, any reply from the server clears the
//! count. After [`HealthPolicy::failure_limit`] failures in a row the server is out for
//! [`HealthPolicy::retry_after`]; then its keys are tried on it again, and the first reply
//! re-admits it.
//!
//! Keys are placed by their bytes on the wire ([`Key::wire`]: the text key, or the base64
//! form of a binary key), which is what other clients hash.
//!
//! A `Pool` is a plain value: routing with health and the bookkeeping take `&mut self`, and
//! time is an `Instant` passed in. The client core keeps the pool behind its own lock, and a
//! lock-free copy for the all-up case: while [`Pool::ejected`] is 0,
//! [`Pool::plan_all_up`] and [`Pool::plan_split_all_up`] (placement only, on `&self`, without
//! a clock) give exactly what [`Pool::plan`] and [`Pool::plan_split`] give.
//!
//! A pool of one server routes everything to it without hashing and keeps no health: there
//! is nothing to fail over to, and the client's reconnect backoff already fails calls fast
//! while it is down.

use crate::connection::SyncCommand;
use crate::error::{EncodeError, Error};
use crate::key::Key;
use crate::request::Request;
use crate::response::{Response, Value};
use crate::ring::{HashMode, HealthPolicy, Ring, RingError, Routed, ServerSpec};
use crate::text::request::{Retrieve, RetrieveCommand};
use std::time::Instant;

/// A proxy between the client and the servers, whose limits the client must respect.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProxyKind {
    /// twemproxy (Debian's `nutcracker`, 0.5.0). It carries `get`/`gets` (multi-key: fanned
    /// out and merged by the proxy), `set`, `add`, `replace`, `append`, `prepend`, `cas`,
    /// `delete`, `incr`, `decr`, `touch` (with `noreply`), `version` and `quit`. It closes the
    /// connection without a word on `gat`, `gats`, `flush_all`, `stats`, `verbosity`, every
    /// meta command (`mg`, `ms`, `md`, `ma`, `mn`, `me`), and storage commands with a
    /// negative exptime: those are refused before sending.
    /// Batches ending in `noreply` requests are closed with `version` instead of `mn`, and a
    /// multi-key retrieval is sent one key per request, since twemproxy may answer a
    /// multi-key `get` out of order ([`ProxyKind::reorders_multi_get`]).
    Twemproxy,
}

impl ProxyKind {
    /// The proxy's name, as errors print it.
    pub fn name(self) -> &'static str {
        match self {
            ProxyKind::Twemproxy => "twemproxy",
        }
    }

    /// How a connection through the proxy closes a batch of silent requests
    /// ([`ConnectionConfig::sync`](crate::ConnectionConfig::sync)).
    pub fn sync_command(self) -> SyncCommand {
        match self {
            ProxyKind::Twemproxy => SyncCommand::Version,
        }
    }

    /// Whether the proxy carries meta commands (`mg`, `ms`, …): a connection through it
    /// sends single-key `get`s as they are
    /// ([`ConnectionConfig::single_get_as_meta`](crate::ConnectionConfig::single_get_as_meta)).
    pub fn carries_meta(self) -> bool {
        match self {
            ProxyKind::Twemproxy => false,
        }
    }

    /// Whether the proxy carries `request` (and answers it as memcached would).
    pub fn carries(self, request: &Request) -> bool {
        self.refusal(request).is_none()
    }

    /// Why the proxy cannot carry `request`; `None` when it can.
    fn refusal(self, request: &Request) -> Option<&'static str> {
        match self {
            ProxyKind::Twemproxy => match request {
                Request::Retrieve(r) => match r.command {
                    RetrieveCommand::Get | RetrieveCommand::Gets => None,
                    RetrieveCommand::Gat(_) | RetrieveCommand::Gats(_) => Some("not supported"),
                },
                // Its parser takes the exptime of a storage command as unsigned.
                Request::Store(s) if s.exptime < 0 => Some("negative exptime"),
                Request::Store(_)
                | Request::Delete { .. }
                | Request::Incr { .. }
                | Request::Decr { .. }
                | Request::Touch { .. }
                | Request::Version
                | Request::Quit => None,
                Request::FlushAll { .. } | Request::Verbosity { .. } | Request::Stats { .. } => {
                    Some("not supported")
                }
                Request::MetaGet(_)
                | Request::MetaSet(_)
                | Request::MetaDelete(_)
                | Request::MetaArithmetic(_)
                | Request::MetaNoop
                | Request::MetaDebug { .. } => Some("no meta commands"),
            },
        }
    }

    /// Whether the proxy may return the values of a multi-key `get`/`gets` out of the
    /// order asked: twemproxy 0.5.0 does when the keys live on several backends (observed:
    /// `get` of keys 0..20 over two backends answers 0, 2, 8, 4, 6, ...). A pool behind such
    /// a proxy sends each key of a multi-key retrieval as its own request (pipelined on the
    /// connection) and merges the replies in the caller's order.
    pub fn reorders_multi_get(self) -> bool {
        match self {
            ProxyKind::Twemproxy => true,
        }
    }

    /// [`EncodeError::NotCarriedByProxy`] for a request the proxy cannot carry.
    pub fn check(self, request: &Request) -> Result<(), EncodeError> {
        match self.refusal(request) {
            None => Ok(()),
            Some(why) => Err(EncodeError::NotCarriedByProxy {
                command: request.command_name(),
                proxy: self.name(),
                why,
            }),
        }
    }
}

/// Whether an error says the server could not be reached or stopped answering
/// ([`Error::is_connection_failure`]): the transport failed (`Io`), the server is unavailable
/// (`Unavailable`), the connection was closed (`Poisoned(Closed)`), the reply did not come
/// within the read timeout (`Poisoned(Timeout)`), or the caller's request timeout passed
/// (`Timeout`). These count against the server's health; a reply from the server (even
/// `SERVER_ERROR`) clears them; errors of the request itself (encoding, malformed reply, a
/// connection closed for safety after the server answered) count neither way.
pub fn is_server_failure(error: &Error) -> bool {
    error.is_connection_failure()
}

/// What to send for one call. See the [module documentation](self).
#[non_exhaustive]
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    /// Send `request` to `server`; its reply is the answer.
    One {
        /// Index of the server.
        server: usize,
        /// The request (unchanged).
        request: Request,
    },
    /// Send every part at once, then [`Split::merge`] the replies.
    Split(Split),
    /// Send every part at once, then [`Broadcast::merge`] the replies.
    Broadcast(Broadcast),
    /// Send nothing: this is the answer.
    Refused(Error),
}

/// A multi-key retrieval split per server.
#[derive(Debug, PartialEq, Eq)]
pub struct Split {
    /// `(server, request)`: one retrieval per server holding some of the keys, servers in
    /// the order of their first key. Take them (`std::mem::take`) to send them; pass the
    /// replies to [`Split::merge`] in the same order.
    pub parts: Vec<(usize, Request)>,
    command: &'static str,
    /// The caller's keys.
    keys: Vec<Key>,
    /// Per part: the positions of its keys in `keys`, ascending.
    positions: Vec<Vec<usize>>,
    /// Keys that could not be routed: (position, why), ascending.
    failed: Vec<(usize, Error)>,
}

impl Split {
    /// The answer to the whole retrieval: the values found, in the caller's key order (a key
    /// asked twice is answered twice), or the error of the first key (in the caller's order)
    /// whose server failed or could not be reached. `replies` follow the order of
    /// [`parts`](Split::parts); a missing reply counts as a failure.
    pub fn merge(self, replies: Vec<Result<Response, Error>>) -> Result<Response, Error> {
        let mut first_error: Option<(usize, Error)> = self.failed.into_iter().next();
        let mut slots: Vec<Option<Value>> = (0..self.keys.len()).map(|_| None).collect();
        let mut replies = replies.into_iter();
        for positions in &self.positions {
            let Some(&first) = positions.first() else {
                continue;
            };
            match values_of(self.command, replies.next()) {
                Ok(values) => place(&self.keys, positions, values, &mut slots),
                Err(e) => {
                    if first_error.as_ref().is_none_or(|(p, _)| first < *p) {
                        first_error = Some((first, e));
                    }
                }
            }
        }
        match first_error {
            Some((_, e)) => Err(e),
            None => Ok(Response::Values(slots.into_iter().flatten().collect())),
        }
    }

    /// One entry per key, in the caller's order: its value (`None` on a miss), or the error
    /// of the server that holds it. `replies` as for [`Split::merge`].
    pub fn merge_each(
        self,
        replies: Vec<Result<Response, Error>>,
    ) -> Vec<Result<Option<Value>, Error>> {
        let mut out: Vec<Result<Option<Value>, Error>> =
            (0..self.keys.len()).map(|_| Ok(None)).collect();
        for (p, e) in self.failed {
            out[p] = Err(e);
        }
        let mut slots: Vec<Option<Value>> = (0..self.keys.len()).map(|_| None).collect();
        let mut replies = replies.into_iter();
        for positions in &self.positions {
            match values_of(self.command, replies.next()) {
                Ok(values) => place(&self.keys, positions, values, &mut slots),
                Err(e) => {
                    for &p in positions {
                        out[p] = Err(e.clone());
                    }
                }
            }
        }
        for (entry, slot) in out.iter_mut().zip(slots) {
            if let (Ok(v), Some(value)) = (entry, slot) {
                *v = Some(value);
            }
        }
        out
    }
}

fn values_of(
    command: &'static str,
    reply: Option<Result<Response, Error>>,
) -> Result<Vec<Value>, Error> {
    match reply {
        Some(Ok(Response::Values(values))) => Ok(values),
        Some(Ok(other)) => Err(Error::UnexpectedResponse {
            command,
            response: other.describe(),
        }),
        Some(Err(e)) => Err(e),
        None => Err(no_reply(command)),
    }
}

/// What a part without a reply (the caller passed too few) answers.
fn no_reply(command: &'static str) -> Error {
    Error::UnexpectedResponse {
        command,
        response: "no reply (fewer replies than parts)".into(),
    }
}

/// Puts a part's values (the hits among its keys, in the order asked) at their keys'
/// positions.
fn place(keys: &[Key], positions: &[usize], values: Vec<Value>, slots: &mut [Option<Value>]) {
    let mut values = values.into_iter().peekable();
    for &p in positions {
        if values.peek().is_some_and(|v| v.key == keys[p]) {
            slots[p] = values.next();
        }
    }
}

/// A command without a key, sent to every server.
#[derive(Debug, PartialEq, Eq)]
pub struct Broadcast {
    /// `(server, request)` for every server that is not out, in index order. Take them to
    /// send them; pass the replies to [`Broadcast::merge`] in the same order.
    pub parts: Vec<(usize, Request)>,
    /// The servers of `parts`, in order.
    sent_to: Vec<usize>,
    command: &'static str,
    /// Servers that are out: (server, why).
    failed: Vec<(usize, Error)>,
}

impl Broadcast {
    /// The first error, by server index (a server that is out counts, with the error that
    /// says so), or else the reply of the first server. A missing reply counts as a failure.
    pub fn merge(self, replies: Vec<Result<Response, Error>>) -> Result<Response, Error> {
        let mut all: Vec<(usize, Result<Response, Error>)> =
            self.failed.into_iter().map(|(s, e)| (s, Err(e))).collect();
        let mut replies = replies.into_iter();
        for server in self.sent_to {
            let reply = replies
                .next()
                .unwrap_or_else(|| Err(no_reply(self.command)));
            all.push((server, reply));
        }
        all.sort_by_key(|(s, _)| *s);
        let mut first_ok = None;
        for (_, reply) in all {
            match reply {
                Err(e) => return Err(e),
                Ok(r) if first_ok.is_none() => first_ok = Some(r),
                Ok(_) => {}
            }
        }
        first_ok.ok_or_else(|| Error::Config("no server in the pool".into()))
    }
}

/// The servers of a client, their placement and their health. See the
/// [module documentation](self).
#[derive(Debug, Clone)]
pub struct Pool {
    /// The placement with every server up; never changes.
    placement: Ring,
    /// Placement and health: for routing while some server has an ejection on record, and
    /// the bookkeeping.
    health: Ring,
    /// How many servers have an ejection on record (`health.retry_at(i).is_some()`): while
    /// 0, routing is the placement's.
    ejected: usize,
    proxy: Option<ProxyKind>,
}

impl Pool {
    /// A pool over `servers` (indices in iteration order), placing keys as `mode` says and
    /// ejecting servers as `policy` says.
    ///
    /// Fails when there is no server or a host is empty.
    pub fn new(
        servers: impl IntoIterator<Item = ServerSpec>,
        mode: HashMode,
        policy: HealthPolicy,
    ) -> Result<Pool, RingError> {
        let ring = Ring::new(servers, mode)?.with_policy(policy);
        Ok(Pool {
            placement: ring.clone(),
            health: ring,
            ejected: 0,
            proxy: None,
        })
    }

    /// The same pool behind a proxy: requests it cannot carry are refused by
    /// [`Pool::plan`] and [`Pool::check`].
    #[must_use]
    pub fn with_proxy(mut self, proxy: Option<ProxyKind>) -> Pool {
        self.proxy = proxy;
        self
    }

    /// The proxy in front of the servers, if any.
    pub fn proxy(&self) -> Option<ProxyKind> {
        self.proxy
    }

    /// Number of servers (at least 1).
    pub fn len(&self) -> usize {
        self.placement.len()
    }

    /// Always `false`: a pool has at least one server.
    pub fn is_empty(&self) -> bool {
        self.placement.is_empty()
    }

    /// The servers as configured, by index.
    pub fn servers(&self) -> &[ServerSpec] {
        self.placement.servers()
    }

    /// The placement rules.
    pub fn mode(&self) -> HashMode {
        self.placement.mode()
    }

    /// The health policy.
    pub fn policy(&self) -> HealthPolicy {
        *self.placement.policy()
    }

    /// The server that holds `key` (its wire bytes) while every server is up.
    pub fn server_for(&self, key: &[u8]) -> usize {
        self.placement.server_for(key)
    }

    /// How many servers have an ejection on record (their [`retry_at`](Pool::retry_at) is
    /// set: out, or due to be retried and not yet answering). While it is 0,
    /// [`Pool::plan_all_up`] gives what [`Pool::plan`] gives.
    pub fn ejected(&self) -> usize {
        self.ejected
    }

    /// Routing as if every server were up.
    fn all_up(&self) -> Planner<'_> {
        Planner {
            servers: self.placement.servers(),
            proxy: self.proxy,
            router: Router::AllUp(&self.placement),
        }
    }

    /// Routing with health at `now` (the placement's while nothing is ejected).
    fn with_health(&mut self, now: Instant) -> Planner<'_> {
        let router = if self.ejected == 0 {
            Router::AllUp(&self.placement)
        } else {
            Router::Health {
                ring: &mut self.health,
                now,
            }
        };
        Planner {
            servers: self.placement.servers(),
            proxy: self.proxy,
            router,
        }
    }

    /// The server that serves `key` at `now`, after failover; [`Error::Unavailable`] naming
    /// the server when it is down ([`Failover::FailFast`](crate::Failover::FailFast)) or when
    /// every server is.
    pub fn route(&mut self, key: &[u8], now: Instant) -> Result<usize, Error> {
        self.with_health(now).route(key)
    }

    /// Whether `server` may be used at `now` (it is not out, or its retry time has come).
    pub fn is_available(&self, server: usize, now: Instant) -> bool {
        server < self.len() && (self.ejected == 0 || self.health.is_available(server, now))
    }

    /// When `server` is (or was) due to be retried after its last ejection; `None` if it has
    /// answered since, or was never ejected.
    pub fn retry_at(&self, server: usize) -> Option<Instant> {
        self.health.retry_at(server)
    }

    /// Consecutive failures on record for `server`.
    pub fn failures(&self, server: usize) -> u32 {
        self.health.failures(server)
    }

    /// Refuses, before sending, a request the proxy cannot carry.
    pub fn check(&self, request: &Request) -> Result<(), Error> {
        proxy_check(self.proxy, request)
    }

    /// What to send for `request` at `now`, after failover. See the
    /// [module documentation](self).
    pub fn plan(&mut self, request: Request, now: Instant) -> Plan {
        self.with_health(now).plan(request)
    }

    /// What to send for `request` if every server were up: [`Pool::plan`] with the placement
    /// only (no health, no clock). The same plan as [`Pool::plan`] while
    /// [`Pool::ejected`] is 0.
    pub fn plan_all_up(&self, request: Request) -> Plan {
        self.all_up().plan(request)
    }

    /// Splits a retrieval per server even when its keys all live on one server (or there
    /// is only one): for callers that want one result per key ([`Split::merge_each`]).
    /// Fails when the request cannot be sent at all (invalid, or refused by the proxy).
    pub fn plan_split(&mut self, retrieve: Retrieve, now: Instant) -> Result<Split, Error> {
        self.with_health(now).plan_split(retrieve)
    }

    /// [`Pool::plan_split`] if every server were up (placement only); the same split while
    /// [`Pool::ejected`] is 0.
    pub fn plan_split_all_up(&self, retrieve: Retrieve) -> Result<Split, Error> {
        self.all_up().plan_split(retrieve)
    }

    /// Takes note of `server`'s reply (or failure) to a request sent to it at `sent`; `now`
    /// is when the result came. A reply to a request sent before the server's last failure
    /// is not news of the server ([`Ring::record_reply`]).
    pub fn observe(
        &mut self,
        server: usize,
        result: &Result<Response, Error>,
        sent: Instant,
        now: Instant,
    ) {
        if self.len() == 1 {
            return;
        }
        match result {
            Ok(_) => self.record_reply(server, sent),
            Err(e) if e.is_server_reply() => self.record_reply(server, sent),
            Err(e) if is_server_failure(e) => {
                self.record_failure(server, now);
            }
            Err(_) => {}
        }
    }

    /// Counts a failure against `server`; returns whether this ejected it. See
    /// [`Ring::record_failure`]. An unknown index is ignored.
    pub fn record_failure(&mut self, server: usize, now: Instant) -> bool {
        let ejected = self.health.record_failure(server, now);
        if ejected {
            self.count_ejected();
            tracing::warn!(server = %self.health.servers()[server], "server ejected from the pool");
        }
        ejected
    }

    /// Clears `server`'s failures and re-admits it if it was out. An unknown index is
    /// ignored.
    pub fn record_success(&mut self, server: usize) {
        self.record_answer(server, |health| {
            health.record_success(server);
            true
        });
    }

    /// [`Pool::record_success`] for a reply to a request sent at `sent`, unless it was sent
    /// before the server's last failure (see [`Ring::record_reply`]).
    pub fn record_reply(&mut self, server: usize, sent: Instant) {
        self.record_answer(server, |health| health.record_reply(server, sent));
    }

    /// An answer from `server`, recorded in the ring by `record` (which says whether it
    /// counted): nothing to do while the server has nothing on record; a server that was out
    /// and is re-admitted is counted and logged.
    fn record_answer(&mut self, server: usize, record: impl FnOnce(&mut Ring) -> bool) {
        let was_out = self.health.retry_at(server).is_some();
        if !was_out && self.health.failures(server) == 0 {
            return;
        }
        if record(&mut self.health) && was_out {
            self.count_ejected();
            tracing::info!(server = %self.health.servers()[server], "server re-admitted to the pool");
        }
    }

    fn count_ejected(&mut self) {
        self.ejected = (0..self.health.len())
            .filter(|&i| self.health.retry_at(i).is_some())
            .count();
    }
}

/// Refuses, before sending, a request `proxy` cannot carry.
fn proxy_check(proxy: Option<ProxyKind>, request: &Request) -> Result<(), Error> {
    match proxy {
        Some(proxy) => proxy.check(request).map_err(Error::Encode),
        None => Ok(()),
    }
}

/// Where keys go: the placement with every server up, or the placement after failover at a
/// given time.
enum Router<'a> {
    /// Every server up: placement only.
    AllUp(&'a Ring),
    /// Health consulted at `now`.
    Health {
        /// Placement and health.
        ring: &'a mut Ring,
        /// The time of the call.
        now: Instant,
    },
}

impl Router<'_> {
    fn route(&mut self, key: &[u8]) -> Result<usize, RingError> {
        match self {
            Router::AllUp(ring) => Ok(ring.server_for(key)),
            Router::Health { ring, now } => ring.route(key, *now),
        }
    }

    fn route_many<'k>(&mut self, keys: impl IntoIterator<Item = &'k [u8]>) -> Routed {
        match self {
            Router::AllUp(ring) => Routed {
                groups: ring.group_by_server(keys),
                failed: Vec::new(),
            },
            Router::Health { ring, now } => ring.route_many(keys, *now),
        }
    }

    /// Why `server` cannot be sent to now; `None` when it can.
    fn down(&self, server: usize) -> Option<RingError> {
        match self {
            Router::AllUp(_) => None,
            Router::Health { ring, now } => {
                (!ring.is_available(server, *now)).then(|| RingError::ServerDown {
                    server,
                    retry_at: ring.retry_at(server).unwrap_or(*now),
                })
            }
        }
    }

    fn now(&self) -> Option<Instant> {
        match self {
            Router::AllUp(_) => None,
            Router::Health { now, .. } => Some(*now),
        }
    }
}

/// The planning of one call, over a [`Router`].
struct Planner<'a> {
    servers: &'a [ServerSpec],
    proxy: Option<ProxyKind>,
    router: Router<'a>,
}

impl Planner<'_> {
    fn single(&self) -> bool {
        self.servers.len() == 1
    }

    fn route(&mut self, key: &[u8]) -> Result<usize, Error> {
        if self.single() {
            return Ok(0);
        }
        self.router.route(key).map_err(|e| self.down_error(e))
    }

    fn down_error(&self, e: RingError) -> Error {
        let wait = |at: Instant| match self.router.now() {
            Some(now) => format!(" in {} ms", at.saturating_duration_since(now).as_millis()),
            None => String::new(),
        };
        match e {
            RingError::ServerDown { server, retry_at } => {
                let name = self
                    .servers
                    .get(server)
                    .map_or_else(|| format!("#{server}"), ToString::to_string);
                Error::Unavailable(format!("server {name} is down (retried{})", wait(retry_at)))
            }
            RingError::AllServersDown { retry_at } => Error::Unavailable(format!(
                "every server is down (next retry{})",
                wait(retry_at)
            )),
            other => Error::Config(other.to_string()),
        }
    }

    fn plan(mut self, request: Request) -> Plan {
        if let Err(e) = proxy_check(self.proxy, &request) {
            return Plan::Refused(e);
        }
        let one_key_per_part = self.proxy.is_some_and(ProxyKind::reorders_multi_get);
        if self.single() && !one_key_per_part {
            return Plan::One { server: 0, request };
        }
        let request = match request {
            Request::Retrieve(r) if r.keys.len() > 1 => {
                let command = r.command;
                return match self.split(r) {
                    Ok(s) if s.parts.len() == 1 && s.failed.is_empty() => {
                        // Every key on one server: send the request as it was.
                        let server = s.parts.first().map_or(0, |(server, _)| *server);
                        Plan::One {
                            server,
                            request: Request::Retrieve(Retrieve {
                                command,
                                keys: s.keys,
                            }),
                        }
                    }
                    Ok(s) => Plan::Split(s),
                    Err(e) => Plan::Refused(e),
                };
            }
            other => other,
        };
        if self.single() {
            return Plan::One { server: 0, request };
        }
        match key_of(&request) {
            Some(key) => match self.route(key.wire()) {
                Ok(server) => Plan::One { server, request },
                Err(e) => Plan::Refused(e),
            },
            // A retrieval without keys: the connection refuses it without sending.
            None if matches!(request, Request::Retrieve(_)) => Plan::One { server: 0, request },
            None => self.broadcast(request),
        }
    }

    fn plan_split(mut self, retrieve: Retrieve) -> Result<Split, Error> {
        // The proxy's verdict depends on the command only.
        proxy_check(
            self.proxy,
            &Request::Retrieve(Retrieve {
                command: retrieve.command,
                keys: Vec::new(),
            }),
        )?;
        self.split(retrieve)
    }

    fn split(&mut self, r: Retrieve) -> Result<Split, Error> {
        r.check()?;
        let routed = if self.single() {
            Routed {
                groups: vec![(0, (0..r.keys.len()).collect())],
                failed: Vec::new(),
            }
        } else {
            self.router.route_many(r.keys.iter().map(Key::wire))
        };
        let mut groups = routed.groups;
        if self.proxy.is_some_and(ProxyKind::reorders_multi_get) {
            groups = groups
                .into_iter()
                .flat_map(|(server, group)| group.into_iter().map(move |p| (server, vec![p])))
                .collect();
        }
        let mut parts = Vec::with_capacity(groups.len());
        let mut positions = Vec::with_capacity(groups.len());
        for (server, group) in groups {
            let keys = group.iter().map(|&p| r.keys[p].clone()).collect();
            parts.push((
                server,
                Request::Retrieve(Retrieve {
                    command: r.command,
                    keys,
                }),
            ));
            positions.push(group);
        }
        let failed = routed
            .failed
            .into_iter()
            .map(|(p, e)| (p, self.down_error(e)))
            .collect();
        Ok(Split {
            parts,
            command: r.command.name(),
            keys: r.keys,
            positions,
            failed,
        })
    }

    fn broadcast(&self, request: Request) -> Plan {
        let mut parts = Vec::with_capacity(self.servers.len());
        let mut failed = Vec::new();
        let command = request.command_name();
        for server in 0..self.servers.len() {
            match self.router.down(server) {
                Some(e) => failed.push((server, self.down_error(e))),
                None => parts.push((server, request.clone())),
            }
        }
        Plan::Broadcast(Broadcast {
            sent_to: parts.iter().map(|(s, _)| *s).collect(),
            parts,
            command,
            failed,
        })
    }
}

/// The key a request is routed by; `None` for commands without a key.
fn key_of(request: &Request) -> Option<&Key> {
    match request {
        Request::Retrieve(r) => r.keys.first(),
        Request::Store(s) => Some(&s.key),
        Request::Delete { key, .. }
        | Request::Incr { key, .. }
        | Request::Decr { key, .. }
        | Request::Touch { key, .. }
        | Request::MetaDebug { key } => Some(key),
        Request::MetaGet(m) => Some(&m.key),
        Request::MetaSet(m) => Some(&m.key),
        Request::MetaDelete(m) => Some(&m.key),
        Request::MetaArithmetic(m) => Some(&m.key),
        Request::FlushAll { .. }
        | Request::Version
        | Request::Verbosity { .. }
        | Request::Stats { .. }
        | Request::Quit
        | Request::MetaNoop => None,
    }
}
