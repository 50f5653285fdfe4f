//! [`Client`]: cheap to clone, `Send + Sync`, multiplexing callers over a few connections per
//! server; implements [`Memcache`], so the whole typed API is there. Routing, splitting,
//! merging and server health come from the [`Pool`]; this file only queues requests on
//! connection tasks and awaits their replies.

use crate::builder::Builder;
use crate::driver::{Command, Driver, Offer, Reply, ReplyReceiver, Shared};
use crate::endpoint::Endpoint;
use crate::join::join_all;
use crate::memcache::Memcache;
use crate::pool::Pool;
use crate::runtime::{timeout, BoxFuture, Runtime};
use crate::stats::{ClientStats, ServerStats};
use async_lock::{Semaphore, SemaphoreGuardArc};
use futures_channel::mpsc;
use mcache_proto::pool::Plan;
use mcache_proto::text::request::{Retrieve, RetrieveCommand};
use mcache_proto::{AsKey, Error, Request, Response, Stat, Value};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// A memcached client over one server or a pool of them. Clone it freely: clones share the
/// connections. The same type on every runtime: an adapter crate (`mcache-tokio`,
/// `mcache-async-std`) supplies the [`Runtime`] and the `Client::connect` / `Client::builder`
/// shorthands.
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
    /// Set on a [`Client::pinned`] handle: the connection (by index, modulo each server's
    /// count) its requests go to.
    pin: Option<usize>,
}

#[derive(Debug)]
struct Inner {
    runtime: Arc<dyn Runtime>,
    servers: Vec<Server>,
    pool: Pool,
    request_timeout: Option<Duration>,
}

/// One server's connection tasks.
#[derive(Debug)]
pub(crate) struct Server {
    pub(crate) endpoint: Endpoint,
    pub(crate) connections: Vec<ConnectionHandle>,
    pub(crate) next: AtomicUsize,
}

/// The way into one connection: its task's request channel, its in-flight slots, and the
/// shared driver that callers use inline (idle connection) or queue into (busy connection).
#[derive(Debug)]
pub(crate) struct ConnectionHandle {
    tx: mpsc::UnboundedSender<Command>,
    pub(crate) slots: Arc<Semaphore>,
    driver: Arc<Shared>,
}

impl ConnectionHandle {
    /// Spawns `driver`'s task on `rt`; `tx` is the sending end of the driver's channel.
    pub(crate) fn spawn(
        rt: &dyn Runtime,
        driver: Driver,
        tx: mpsc::UnboundedSender<Command>,
        max_in_flight: usize,
    ) -> ConnectionHandle {
        let driver = Shared::new(driver);
        rt.spawn(Box::pin(driver.task()));
        ConnectionHandle {
            tx,
            slots: Arc::new(Semaphore::new(max_in_flight)),
            driver,
        }
    }
}

/// A request handed to a connection, and how its reply comes back.
enum Queued<'a> {
    /// Through the connection task.
    Task(ReplyReceiver),
    /// Written and read by the caller itself (the connection was idle).
    Inline(InlineReply<'a>),
}

/// The reply of a request put straight into an idle connection: while waiting, the caller
/// moves the connection's bytes itself; when done or dropped, it hands the connection back
/// to its task.
struct InlineReply<'a> {
    rx: ReplyReceiver,
    driver: &'a Shared,
    /// A pinned handle's request: let the handle's other requests queue first (yield once),
    /// so that one write carries them all.
    defer: bool,
    /// The connection went back to its task already (the reply came from this caller's own
    /// read).
    settled: bool,
}

impl Future for InlineReply<'_> {
    type Output = Result<Result<Response, Error>, oneshot::RecvError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if std::mem::take(&mut self.defer) && !self.rx.has_message() {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let this = &mut *self;
        this.driver.poll_inline(cx, &mut this.rx, &mut this.settled)
    }
}

impl Drop for InlineReply<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.driver.settle();
        }
    }
}

impl Client {
    pub(crate) fn from_parts(
        runtime: Arc<dyn Runtime>,
        servers: Vec<Server>,
        pool: Pool,
        request_timeout: Option<Duration>,
    ) -> Client {
        Client {
            inner: Arc::new(Inner {
                runtime,
                servers,
                pool,
                request_timeout,
            }),
            pin: None,
        }
    }

    /// A handle (a clone) whose requests to each server all go to one of that server's
    /// connections, while it has room: requests sent together through it (futures joined in
    /// one task) go out in one write and come back in one read, like one batch. Each call
    /// picks the next connection in turn, so different handles spread over the connections.
    ///
    /// ```no_run
    /// # async fn f(client: mcache_client::Client) -> Result<(), mcache_client::Error> {
    /// use mcache_client::{join_all, Memcache};
    /// let batch = client.pinned();
    /// let (a, b) = (batch.get("a"), batch.get("b"));
    /// let both = join_all([a, b]).await;
    /// # Ok(()) }
    /// ```
    pub fn pinned(&self) -> Client {
        let next = self
            .inner
            .servers
            .first()
            .map_or(0, |s| s.next.fetch_add(1, Ordering::Relaxed));
        Client {
            inner: self.inner.clone(),
            pin: Some(next),
        }
    }

    /// Connects to one server with the default settings, on `runtime`; fails if it cannot be
    /// reached (strict, as the adapters' `Client::connect`; a builder's `build` is fail-open
    /// unless [`Builder::require_reachable`]).
    pub fn connect_with(
        runtime: Arc<dyn Runtime>,
        endpoint: impl Into<Endpoint>,
    ) -> impl Future<Output = Result<Client, Error>> + Send {
        Builder::new(runtime)
            .server(endpoint)
            .require_reachable(true)
            .build()
    }

    /// The runtime the client's tasks and timers run on.
    pub fn runtime(&self) -> &Arc<dyn Runtime> {
        &self.inner.runtime
    }

    /// The pool: placement ([`Pool::server_for`]) and health ([`Pool::is_available`],
    /// [`Pool::retry_at`], [`Pool::failures`]) of the servers, by index.
    pub fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// What each server has done since the client was built, counted by this client, by
    /// index: requests submitted, results by kind, timeouts, reconnects, connect failures,
    /// ejections, and the requests in flight now (see [`ServerStats`]). A few relaxed atomic
    /// loads per server; counting costs two relaxed `fetch_add`s per request, with or without
    /// the `metrics` feature (which exports the same events: see [`crate::stats`]). Not to be
    /// confused with memcached's own `stats` command ([`Memcache::stats`],
    /// [`Client::stats_all`]).
    pub fn client_stats(&self) -> ClientStats {
        ClientStats {
            servers: (0..self.inner.servers.len())
                .filter_map(|i| self.server_stats(i))
                .collect(),
        }
    }

    fn server_stats(&self, index: usize) -> Option<ServerStats> {
        let server = self.inner.servers.get(index)?;
        let counters = self.inner.pool.counters(index)?;
        let max = counters.max_in_flight();
        let in_flight = server
            .connections
            .iter()
            .map(|c| max.saturating_sub(c.slots.available_permits()) as u64)
            .sum();
        Some(counters.snapshot(in_flight))
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

    /// Runs `call` on every server concurrently: one result per server, by index.
    async fn on_every_server<'a, T, F, Fut>(&'a self, call: F) -> Vec<(Endpoint, T)>
    where
        F: Fn(ServerHandle) -> Fut,
        Fut: Future<Output = T> + 'a,
    {
        join_all(self.servers().map(|s| {
            let endpoint = s.endpoint().clone();
            let reply = call(s);
            async move { (endpoint, reply.await) }
        }))
        .await
    }

    /// `version` of every server, concurrently.
    pub async fn version_all(&self) -> Vec<(Endpoint, Result<String, Error>)> {
        self.on_every_server(|s| async move { s.version().await })
            .await
    }

    /// `stats [<args>]` of every server, concurrently.
    pub async fn stats_all(&self, args: Option<&str>) -> Vec<(Endpoint, Result<Vec<Stat>, Error>)> {
        self.on_every_server(|s| async move { s.stats(args).await })
            .await
    }

    /// `flush_all [delay]` on every server, concurrently.
    pub async fn flush_all_servers(
        &self,
        delay: Option<i32>,
    ) -> Vec<(Endpoint, Result<(), Error>)> {
        self.on_every_server(|s| async move { s.flush_all(delay).await })
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
        let keys = mcache_proto::commands::many_keys(keys);
        async move {
            let keys = keys?;
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            let now = self.inner.runtime.now();
            let retrieve = Retrieve {
                command: RetrieveCommand::Get,
                keys,
            };
            let mut split = self.inner.pool.plan_split(retrieve, now)?;
            let parts = std::mem::take(&mut split.parts);
            Ok(split.merge_each(self.send_all(parts, self.deadline(now), now).await))
        }
    }

    fn deadline(&self, now: Instant) -> Option<Instant> {
        // The connection task enforces it in every state: it fails the caller with `Timeout`
        // and abandons the request, whose reply is then read and dropped.
        self.inner.request_timeout.map(|d| now + d)
    }

    /// Queues `request` on one of `server`'s connections: the first with a free in-flight
    /// slot, starting from the next in turn; if none has one, the returned future waits for
    /// a slot of that one until `deadline`. Counts it as a request to `server`.
    fn submit(&self, server: usize, request: Request, deadline: Option<Instant>) -> Submit<'_> {
        if let Some(c) = self.inner.pool.counters(server) {
            c.request();
        }
        let Some(s) = self.inner.servers.get(server) else {
            return Submit::Done(Err(Error::Config(format!("no server #{server}"))));
        };
        let n = s.connections.len();
        let first = match self.pin {
            Some(pin) => pin % n,
            None => s.next.fetch_add(1, Ordering::Relaxed) % n,
        };
        let free = (0..n).find_map(|i| {
            let c = &s.connections[(first + i) % n];
            c.slots.try_acquire_arc().map(|slot| (c, slot))
        });
        match free {
            Some((conn, slot)) => {
                Submit::Done(self.enqueue(server, s, conn, slot, request, deadline))
            }
            None => {
                // Every connection is full: wait for room. Boxed, so that the common path's
                // future does not carry the wait's state.
                let conn = &s.connections[first];
                Submit::Wait(Box::pin(async move {
                    let slot = self.wait_for_slot(conn, deadline).await?;
                    self.enqueue(server, s, conn, slot, request, deadline)
                }))
            }
        }
    }

    /// Hands `request` to `conn`, whose in-flight `slot` it holds: written by the caller
    /// itself when the connection is idle, else queued on the connection's task.
    fn enqueue<'a>(
        &'a self,
        server: usize,
        s: &Server,
        conn: &'a ConnectionHandle,
        slot: SemaphoreGuardArc,
        request: Request,
        deadline: Option<Instant>,
    ) -> Result<Queued<'a>, Error> {
        let (reply, rx) = Reply::new(slot);
        #[cfg(feature = "metrics")]
        let reply = match self.inner.pool.counters(server) {
            Some(c) => reply.gauged(c.in_flight()),
            None => reply,
        };
        #[cfg(not(feature = "metrics"))]
        let _ = server;
        let cmd = Command {
            request,
            reply,
            deadline,
        };
        let cmd = match conn.driver.offer(cmd, self.pin.is_some()) {
            Offer::Inline => {
                return Ok(Queued::Inline(InlineReply {
                    rx,
                    driver: &conn.driver,
                    defer: self.pin.is_some(),
                    settled: false,
                }));
            }
            Offer::Queued => return Ok(Queued::Task(rx)),
            Offer::Declined(cmd) => cmd,
        };
        conn.tx
            .unbounded_send(cmd)
            .map_err(|_| Error::Unavailable(format!("{}: client shut down", s.endpoint)))?;
        Ok(Queued::Task(rx))
    }

    /// Waits for an in-flight slot of `conn` until `deadline`.
    async fn wait_for_slot(
        &self,
        conn: &ConnectionHandle,
        deadline: Option<Instant>,
    ) -> Result<SemaphoreGuardArc, Error> {
        let wait = conn.slots.acquire_arc();
        match deadline {
            Some(at) => timeout(&*self.inner.runtime, at, wait)
                .await
                .ok_or(Error::Timeout),
            None => Ok(wait.await),
        }
    }

    /// Counts a request's result and tells the pool how the server did. `started`: when the
    /// call began (before its request was sent), for `mcache_request_duration_seconds` and for
    /// the pool, which ignores replies to requests sent before the server's last failure.
    fn count_reply(
        &self,
        server: usize,
        r: Result<Response, Error>,
        started: Instant,
    ) -> Result<Response, Error> {
        let pool = &self.inner.pool;
        if let Some(c) = pool.counters(server) {
            c.result(&r);
            #[cfg(feature = "metrics")]
            c.duration(self.inner.runtime.now().saturating_duration_since(started));
        }
        if pool.len() > 1 {
            pool.observe(server, &r, started, self.inner.runtime.now());
        }
        r
    }

    /// Queues every part before awaiting any, so that they travel concurrently; the replies
    /// in the parts' order.
    async fn send_all(
        &self,
        parts: Vec<(usize, Request)>,
        deadline: Option<Instant>,
        started: Instant,
    ) -> Vec<Result<Response, Error>> {
        let mut queued = Vec::with_capacity(parts.len());
        for (server, request) in parts {
            let span = command_span(server, &request);
            let q = match self.submit(server, request, deadline) {
                Submit::Done(q) => q,
                Submit::Wait(wait) => wait.await,
            };
            queued.push((server, q, span));
        }
        let mut replies = Vec::with_capacity(queued.len());
        for (server, q, span) in queued {
            replies.push(match q {
                Ok(q) => self.awaiting(server, span, started, Step::Reply(q)).await,
                Err(e) => self.count_reply(server, Err(e), started),
            });
        }
        replies
    }

    /// The reply of a request queued (or being queued, `step`) for `server`, counted when it
    /// comes; `span` is the command's trace span, `started` when the call began.
    fn awaiting<'a>(
        &'a self,
        server: usize,
        span: tracing::Span,
        started: Instant,
        step: Step<'a>,
    ) -> Awaiting<'a> {
        Awaiting {
            client: self,
            server,
            span,
            started,
            step,
        }
    }

    /// The future of one call: `to` a server (`Some`), or where the pool places the request.
    fn call(&self, request: Request, to: Option<usize>) -> Call<'_> {
        Call {
            client: self,
            state: CallState::Start { request, to },
        }
    }

    /// A call's first step, on its first poll: plans `request` (or checks it, for a request
    /// to one server) and queues it.
    fn start(&self, request: Request, to: Option<usize>) -> CallState<'_> {
        let now = self.inner.runtime.now();
        let deadline = self.deadline(now);
        let (server, request) = match to {
            Some(index) => match self.inner.pool.check(&request) {
                Ok(()) => (index, request),
                Err(e) => return CallState::Ready(Err(e)),
            },
            None => match self.inner.pool.plan(request, now) {
                Plan::One { server, request } => (server, request),
                // Boxed: a request for several servers is the rare case.
                Plan::Split(mut split) => {
                    let parts = std::mem::take(&mut split.parts);
                    return CallState::Many(Box::pin(async move {
                        split.merge(self.send_all(parts, deadline, now).await)
                    }));
                }
                Plan::Broadcast(mut all) => {
                    let parts = std::mem::take(&mut all.parts);
                    return CallState::Many(Box::pin(async move {
                        all.merge(self.send_all(parts, deadline, now).await)
                    }));
                }
                Plan::Refused(e) => return CallState::Ready(Err(e)),
                other => {
                    let e = Error::Config(format!("unsupported plan: {other:?}"));
                    return CallState::Ready(Err(e));
                }
            },
        };
        let span = command_span(server, &request);
        let step = match self.submit(server, request, deadline) {
            Submit::Done(Ok(queued)) => Step::Reply(queued),
            Submit::Done(Err(e)) => return CallState::Ready(self.count_reply(server, Err(e), now)),
            Submit::Wait(wait) => Step::Queue(wait),
        };
        CallState::Pending(self.awaiting(server, span, now, step))
    }
}

/// What [`Client::submit`] came to: queued (or refused) at once, or a wait for a slot.
enum Submit<'a> {
    Done(Result<Queued<'a>, Error>),
    Wait(BoxFuture<'a, Result<Queued<'a>, Error>>),
}

/// The reply of a request whose connection task is gone.
fn task_ended(_: oneshot::RecvError) -> Result<Response, Error> {
    Err(Error::Unavailable("the connection task ended".into()))
}

/// One call to [`Client`]: nothing is sent before its first poll; the request is kept only
/// until it is queued. Written by hand rather than as nested `async fn`s, each of which kept
/// its own copy of the 168-byte request for the whole call: the future of a `get` was
/// 1.6 KB, moved (copied) twice by every caller.
pub(crate) struct Call<'a> {
    client: &'a Client,
    state: CallState<'a>,
}

enum CallState<'a> {
    /// Not polled yet.
    Start { request: Request, to: Option<usize> },
    /// Queued, or waiting to be.
    Pending(Awaiting<'a>),
    /// A request for several servers (boxed: rare).
    Many(BoxFuture<'a, Result<Response, Error>>),
    /// Known before anything was sent.
    Ready(Result<Response, Error>),
    /// The result was returned.
    Done,
}

impl Future for Call<'_> {
    type Output = Result<Response, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if let CallState::Start { .. } = this.state {
            if let CallState::Start { request, to } =
                std::mem::replace(&mut this.state, CallState::Done)
            {
                this.state = this.client.start(request, to);
            }
        }
        let r = match &mut this.state {
            // Returned straight from the reply (which remembers that it is done): no copy of
            // the result on the way.
            CallState::Pending(reply) => return Pin::new(reply).poll(cx),
            CallState::Many(all) => std::task::ready!(all.as_mut().poll(cx)),
            CallState::Ready(_) | CallState::Start { .. } | CallState::Done => {
                match std::mem::replace(&mut this.state, CallState::Done) {
                    CallState::Ready(r) => r,
                    _ => Err(crate::memcache::polled_after_finished()),
                }
            }
        };
        this.state = CallState::Done;
        Poll::Ready(r)
    }
}

enum Step<'a> {
    /// Every connection was full: waiting for a slot (boxed: rare).
    Queue(BoxFuture<'a, Result<Queued<'a>, Error>>),
    /// Queued: waiting for the reply.
    Reply(Queued<'a>),
    /// The reply was returned.
    Done,
}

/// The reply of one request to `server` ([`Client::awaiting`]): awaited in the command's
/// span, then [counted](Client::count_reply).
struct Awaiting<'a> {
    client: &'a Client,
    server: usize,
    span: tracing::Span,
    started: Instant,
    step: Step<'a>,
}

impl Future for Awaiting<'_> {
    type Output = Result<Response, Error>;

    // Into `Call::poll`, every call's path: as a call of its own it cost about 80 more
    // instructions per get (callgrind, `load current 1 20000`).
    #[inline(always)]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let entered = this.span.enter();
        let r = loop {
            match &mut this.step {
                Step::Queue(wait) => match std::task::ready!(wait.as_mut().poll(cx)) {
                    Ok(queued) => this.step = Step::Reply(queued),
                    Err(e) => break Err(e),
                },
                Step::Reply(Queued::Task(rx)) => {
                    break std::task::ready!(Pin::new(rx).poll(cx)).unwrap_or_else(task_ended)
                }
                Step::Reply(Queued::Inline(inline)) => {
                    break std::task::ready!(Pin::new(inline).poll(cx)).unwrap_or_else(task_ended)
                }
                Step::Done => return Poll::Ready(Err(crate::memcache::polled_after_finished())),
            }
        };
        drop(entered);
        this.step = Step::Done;
        Poll::Ready(this.client.count_reply(this.server, r, this.started))
    }
}

/// The span a command runs in, from submit to reply: `memcache` at trace level (when that
/// level is off, a level check and nothing else: no field is recorded or formatted).
#[inline]
fn command_span(server: usize, request: &Request) -> tracing::Span {
    tracing::trace_span!("memcache", command = request.command_name(), server)
}

impl Memcache for Client {
    fn execute(&self, request: Request) -> impl Future<Output = Result<Response, Error>> + Send {
        self.call(request, None)
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

    /// What this client has counted for this server (see [`Client::client_stats`]; not
    /// memcached's `stats` command, which is [`Memcache::stats`]).
    pub fn client_stats(&self) -> ServerStats {
        self.client
            .server_stats(self.index)
            .expect("a handle's index names one of its client's servers")
    }

    /// The client this server belongs to.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

impl Memcache for ServerHandle {
    fn execute(&self, request: Request) -> impl Future<Output = Result<Response, Error>> + Send {
        self.client.call(request, Some(self.index))
    }
}
