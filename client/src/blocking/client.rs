//! [`Client`]: the blocking client. Cheap to clone, `Send + Sync`; every call routes its
//! request through the [`Pool`] (the same placement, health and failover as the async
//! client), borrows a connection of the server it goes to, does one round trip on the
//! calling thread and gives the connection back.

use super::server::{Lease, Server};
use super::{Builder, Memcache};
use crate::endpoint::Endpoint;
use crate::pool::Pool;
use crate::settings::Settings;
use crate::stats::{ClientStats, ServerStats};
use mcache_proto::pool::Plan;
use mcache_proto::{Error, Request, Response};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A blocking memcached client over one server or a pool of them: the typed API is the
/// [`Memcache`] trait (`use mcache_client::blocking::Memcache`). Clone it freely: clones
/// share the connections, and any number of threads may use one at once.
///
/// With several servers, requests are placed, split and merged as by the async
/// [`Client`](crate::Client): a keyed request goes to the server of its key, a multi-key
/// retrieval is split per server (every part written before any reply is read) and merged
/// in the caller's key order, and a command without a key goes to every server (the first
/// error by server index, else the first server's reply).
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    servers: Vec<Server>,
    pool: Pool,
    settings: Settings,
    request_timeout: Option<Duration>,
}

impl Client {
    /// Connects to one server with the default settings (see [`Builder`]): fails if the
    /// first connection cannot be opened.
    pub fn connect(endpoint: impl Into<Endpoint>) -> Result<Client, Error> {
        Builder::new().server(endpoint).build()
    }

    /// A builder for a client with more than the defaults.
    pub fn builder() -> Builder {
        Builder::new()
    }

    pub(crate) fn from_parts(
        servers: Vec<Server>,
        pool: Pool,
        settings: Settings,
        request_timeout: Option<Duration>,
    ) -> Client {
        let inner = Inner {
            servers,
            pool,
            settings,
            request_timeout,
        };
        Client {
            inner: Arc::new(inner),
        }
    }

    /// The pool: placement ([`Pool::server_for`]) and health of the servers, by index.
    pub fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// The servers' addresses, by index.
    pub fn endpoints(&self) -> impl ExactSizeIterator<Item = &Endpoint> {
        self.inner.servers.iter().map(|s| &s.endpoint)
    }

    /// What each server has done since the client was built, as for the async
    /// [`Client::client_stats`](crate::Client::client_stats); `in_flight` counts the
    /// connections lent to callers now.
    pub fn client_stats(&self) -> ClientStats {
        ClientStats {
            servers: self.inner.servers.iter().map(Server::stats).collect(),
        }
    }

    /// The server at `index`, to send commands to it alone (whatever the keys' placement
    /// and the server's health).
    pub fn server(&self, index: usize) -> Option<ServerHandle> {
        let inner = self.inner.clone();
        (index < inner.servers.len()).then_some(ServerHandle { inner, index })
    }

    /// Opens (or finds idle) one connection per server, within the connect timeout, so that
    /// the first calls do not pay for it: one result per server, by index.
    pub(crate) fn warm_up(&self) -> Vec<Result<(), Error>> {
        let servers = self.inner.servers.iter();
        let deadline = Instant::now() + self.inner.settings.connect_timeout;
        let opened = servers.map(|s| s.lease(&self.inner.settings, Some(deadline)).map(drop));
        opened.collect()
    }
}

impl Inner {
    fn deadline(&self) -> Option<Instant> {
        self.request_timeout.map(|d| Instant::now() + d)
    }

    /// Sends `request` to server `index` and waits for its reply; counts it, and tells the
    /// pool how the server did.
    fn exchange(&self, index: usize, request: Request, deadline: Option<Instant>) -> Reply {
        let Some(server) = self.servers.get(index) else {
            return Err(Error::Config(format!("no server #{index}")));
        };
        server.counters().request();
        let sent = Instant::now();
        let reply = server
            .lease(&self.settings, deadline)
            .and_then(|mut lease| lease.link()?.round_trip(request, deadline));
        self.observe(index, &reply, sent);
        reply
    }

    /// Sends each `(server, request)` part, every one written before any reply is read;
    /// the replies in the parts' order. Parts for the same server are pipelined on one of
    /// its connections (one write); connections are borrowed in server order, so that two
    /// callers never wait for each other's.
    fn exchange_all(&self, parts: Vec<(usize, Request)>, deadline: Option<Instant>) -> Vec<Reply> {
        let mut servers: Vec<usize> = parts.iter().map(|(server, _)| *server).collect();
        servers.sort_unstable();
        servers.dedup();
        let settings = &self.settings;
        let mut leases: Vec<(usize, Result<Lease<'_>, Error>)> = servers
            .into_iter()
            .map(|index| match self.servers.get(index) {
                Some(server) => (index, server.lease(settings, deadline)),
                None => (index, Err(Error::Config(format!("no server #{index}")))),
            })
            .collect();
        let mut queued = Vec::with_capacity(parts.len());
        let sent = Instant::now();
        for (index, request) in parts {
            if let Some(server) = self.servers.get(index) {
                server.counters().request();
            }
            let id = match lease_of(&mut leases, index) {
                Some(Ok(lease)) => lease.link().and_then(|link| link.queue(request)),
                Some(Err(e)) => Err(e.clone()),
                None => Err(Error::Config(format!("no server #{index}"))),
            };
            queued.push((index, id));
        }
        for (_, lease) in leases.iter_mut() {
            let flushed = match lease {
                Ok(lease) => lease.link().and_then(|link| link.flush(deadline)),
                Err(_) => Ok(()),
            };
            if let Err(e) = flushed {
                *lease = Err(e);
            }
        }
        let mut replies = Vec::with_capacity(queued.len());
        for (index, id) in queued {
            let reply = id.and_then(|id| match lease_of(&mut leases, index) {
                Some(Ok(lease)) => lease.link().and_then(|link| link.receive(id, deadline)),
                Some(Err(e)) => Err(e.clone()),
                None => Err(Error::Config(format!("no server #{index}"))),
            });
            self.observe(index, &reply, sent);
            replies.push(reply);
        }
        replies
    }

    /// Counts `reply` to a request sent at `sent`, and tells the pool how the server did.
    fn observe(&self, index: usize, reply: &Reply, sent: Instant) {
        if let Some(s) = self.servers.get(index) {
            s.counters().result(reply);
        }
        let pool = &self.pool;
        if pool.len() > 1 {
            pool.observe(index, reply, sent, Instant::now());
        }
    }
}

/// The connection borrowed for server `index`, or why there is none.
fn lease_of<'l, 'a>(
    leases: &'l mut [(usize, Result<Lease<'a>, Error>)],
    index: usize,
) -> Option<&'l mut Result<Lease<'a>, Error>> {
    leases
        .iter_mut()
        .find(|(i, _)| *i == index)
        .map(|(_, lease)| lease)
}

/// A reply, or why there is none.
type Reply = Result<Response, Error>;

impl Memcache for Client {
    fn execute(&self, request: Request) -> Result<Response, Error> {
        let inner = &self.inner;
        let deadline = inner.deadline();
        let (parts, merge) = match inner.pool.plan(request, Instant::now()) {
            Plan::One { server, request } => return inner.exchange(server, request, deadline),
            Plan::Refused(e) => return Err(e),
            Plan::Split(mut split) => (std::mem::take(&mut split.parts), Merge::Split(split)),
            Plan::Broadcast(mut all) => (std::mem::take(&mut all.parts), Merge::Broadcast(all)),
            other => return Err(Error::Config(format!("unsupported plan: {other:?}"))),
        };
        let replies = inner.exchange_all(parts, deadline);
        match merge {
            Merge::Split(split) => split.merge(replies),
            Merge::Broadcast(all) => all.merge(replies),
        }
    }
}

/// How the replies of a request sent in parts become one.
enum Merge {
    Split(mcache_proto::pool::Split),
    Broadcast(mcache_proto::pool::Broadcast),
}

/// One server of a blocking [`Client`], from [`Client::server`]: commands sent through it
/// go to that server alone, whatever the placement of their keys or the server's health
/// (its replies still count for its health). Requests the client's proxy cannot carry are
/// refused as usual.
#[derive(Clone, Debug)]
pub struct ServerHandle {
    inner: Arc<Inner>,
    index: usize,
}

impl ServerHandle {
    /// The server's index in the pool.
    pub fn index(&self) -> usize {
        self.index
    }

    fn server(&self) -> &Server {
        // A handle is made only for an index of its client's servers.
        &self.inner.servers[self.index]
    }

    /// The server's address.
    pub fn endpoint(&self) -> &Endpoint {
        &self.server().endpoint
    }

    /// What the client has counted for this server (see [`Client::client_stats`]).
    pub fn client_stats(&self) -> ServerStats {
        self.server().stats()
    }
}

impl Memcache for ServerHandle {
    fn execute(&self, request: Request) -> Result<Response, Error> {
        self.inner.pool.check(&request)?;
        let deadline = self.inner.deadline();
        self.inner.exchange(self.index, request, deadline)
    }
}
