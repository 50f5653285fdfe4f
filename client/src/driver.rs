//! One task per connection: takes callers' requests from its channel, moves bytes between a
//! [`ByteStream`] and a proto [`Connection`], completes each caller through its oneshot, and
//! enforces every deadline in every state (connecting, serving, streaming a reply, waiting to
//! reconnect). Nothing here knows the protocol's grammar or an executor.
//!
//! States of the link to the server:
//! - `Connecting`: a connect (TCP or unix, TLS, authentication) is under way; requests wait in
//!   the task's queue, each until its own deadline.
//! - `Up`: requests go from the queue into the connection (at most `max_in_flight` in it,
//!   abandoned ones included), many per write; replies go to their callers.
//! - `Down`: the last connect failed or the connection was lost (closed, or no reply within
//!   the read timeout): requests fail fast with [`Error::Unavailable`] until the jittered,
//!   exponential backoff delay has passed. The delay starts over only once a connection has
//!   served a reply.
//!
//! A connection closed for safety by a server that did answer (a malformed reply, a rejected
//! storage command, a reply over a limit, `quit`) is replaced at once, and the requests queued
//! behind it wait for the new connection instead of failing.
//!
//! The driver lives in a [`Shared`] lock that its task and callers both use. A caller that
//! finds the connection idle (up, nothing queued, nothing in flight) does not hop to the task:
//! it puts its request into the connection itself ([`Shared::offer`]), and while it waits
//! it writes and reads with its own waker ([`Driver::drive_inline`]), so a lone request costs
//! one wake-up. The task keeps the channel and the timer: it is woken when the timer must
//! cover the inline request's deadline, and an inline caller that leaves hands the stream's
//! read interest back to it ([`Shared::settle`]). Under pipelined load callers put their
//! requests in the task's queue under the same lock (no channel message to allocate and copy),
//! or through the channel when the driver is held right now, and the task writes many requests
//! at once. A connection that the last read left idle after answering several callers counts
//! as loaded: those callers are about to send again, and go to the task together.

use crate::connect::connect;
use crate::endpoint::Endpoint;
use crate::io::ByteStream;
use crate::runtime::{BoxFuture, Runtime, Timer};
use crate::settings::Settings;
use crate::stats::ServerCounters;
use async_lock::SemaphoreGuardArc;
use bytes::{Buf, Bytes};
use futures_channel::mpsc;
use futures_core::Stream as _;
use mcache_proto::{Connection, Error, PoisonReason, Request, Response, Waiters};
use std::collections::VecDeque;
use std::future::Future;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// A caller's request, where its reply goes, and when the caller stops waiting.
pub(crate) struct Command {
    pub(crate) request: Request,
    pub(crate) reply: Reply,
    pub(crate) deadline: Option<Instant>,
}

/// Where one caller's reply goes. It holds the caller's slot of the connection's in-flight
/// bound until the reply is delivered or the caller is failed.
pub(crate) struct Reply {
    tx: oneshot::Sender<Result<Response, Error>>,
    _slot: SemaphoreGuardArc,
    /// Counts the slot in the `mcache_in_flight` gauge.
    #[cfg(feature = "metrics")]
    _gauge: Option<crate::stats::InFlight>,
}

/// Where a caller awaits its reply.
pub(crate) type ReplyReceiver = oneshot::Receiver<Result<Response, Error>>;

impl Reply {
    /// A reply channel holding `slot`; the caller awaits the receiver.
    pub(crate) fn new(slot: SemaphoreGuardArc) -> (Reply, ReplyReceiver) {
        let (tx, rx) = oneshot::channel();
        let reply = Reply {
            tx,
            _slot: slot,
            #[cfg(feature = "metrics")]
            _gauge: None,
        };
        (reply, rx)
    }

    /// Counts this reply's slot in the in-flight gauge until it is delivered or dropped.
    #[cfg(feature = "metrics")]
    pub(crate) fn gauged(mut self, gauge: crate::stats::InFlight) -> Reply {
        self._gauge = Some(gauge);
        self
    }

    fn send(self, result: Result<Response, Error>) {
        // A caller that gave up dropped its receiver: the reply is discarded.
        let _ = self.tx.send(result);
    }

    fn is_canceled(&self) -> bool {
        self.tx.is_closed()
    }
}

/// How many rounds one poll may do before yielding to other tasks.
const ROUNDS_PER_POLL: usize = 32;
/// Smallest and largest read: a read that fills the room offered doubles the next one; after
/// `SHRINK_AFTER` reads in a row that use under a quarter of it, the room is halved. (A stream
/// that must zero the room before reading pays for it; bursts of large replies keep large
/// reads.)
const MIN_READ: usize = 4 * 1024;
const MAX_READ: usize = 64 * 1024;
const SHRINK_AFTER: u8 = 16;
/// Most buffers one vectored write takes (command lines and large values between them).
const MAX_WRITE_SLICES: usize = 64;
/// Largest read sized from a value's declared length: a reply starting after one of that
/// size is read whole into one buffer (no copy of its first bytes when its block turns out
/// to be large). Larger values are still read into room reserved at their length, only their
/// first read is copied.
const MAX_SIZED_READ: usize = 1024 * 1024;
/// What follows a retrieval's last value (`END\r\n`): sized reads include it, so that the
/// next reply starts a read of its own.
const VALUES_TRAILER: usize = b"END\r\n".len();

/// The connection task of one connection slot of a server.
pub(crate) struct Driver {
    rt: Arc<dyn Runtime>,
    endpoint: Endpoint,
    settings: Arc<Settings>,
    rx: mpsc::UnboundedReceiver<Command>,
    rx_closed: bool,
    /// Requests taken from the channel and not yet in a connection (bounded by the
    /// connection's in-flight slots, which every request holds).
    queue: VecDeque<Command>,
    link: Link,
    backoff: Backoff,
    timer: Pin<Box<dyn Timer>>,
    timer_at: Option<Instant>,
    /// A deadline an inline caller woke the task to arm the timer for: armed even if that
    /// request is done by the time the task runs, so that the requests after it (whose
    /// deadlines are later) find the timer armed and need not wake the task.
    timer_wanted: Option<Instant>,
    /// The server's counters (reconnects, connect failures).
    counters: Arc<ServerCounters>,
    /// A connection was opened before: the next one is a reconnect.
    connected_once: bool,
    /// The task's waker, from its last poll: inline callers wake it to hand work back.
    task: Option<Waker>,
    /// Return and be polled again after the tasks woken meanwhile (a deferred write).
    yield_now: bool,
}

enum Link {
    Connecting(BoxFuture<'static, Result<Box<dyn ByteStream>, Error>>),
    Up(Box<Session>),
    Down { until: Instant, reason: String },
}

impl Link {
    /// A connect to `endpoint` under way.
    fn connecting(rt: &Arc<dyn Runtime>, endpoint: &Endpoint, settings: &Arc<Settings>) -> Link {
        let (rt, endpoint, settings) = (rt.clone(), endpoint.clone(), settings.clone());
        Link::Connecting(Box::pin(async move {
            connect(&*rt, &endpoint, &settings).await
        }))
    }
}

impl Driver {
    /// A task for `endpoint`, serving `stream` if one is open already, else connecting.
    pub(crate) fn new(
        rt: Arc<dyn Runtime>,
        endpoint: Endpoint,
        settings: Arc<Settings>,
        rx: mpsc::UnboundedReceiver<Command>,
        stream: Option<Box<dyn ByteStream>>,
        counters: Arc<ServerCounters>,
    ) -> Driver {
        let now = rt.now();
        let timer = rt.timer(now);
        let backoff = Backoff::new(settings.backoff_min, settings.backoff_max);
        let connected_once = stream.is_some();
        let link = match stream {
            Some(s) => Link::Up(Box::new(Session::new(s, &settings))),
            None => Link::connecting(&rt, &endpoint, &settings),
        };
        Driver {
            rt,
            endpoint,
            settings,
            rx,
            rx_closed: false,
            queue: VecDeque::new(),
            link,
            backoff,
            timer,
            timer_at: None,
            timer_wanted: None,
            counters,
            connected_once,
            task: None,
            yield_now: false,
        }
    }

    fn connecting(&self) -> Link {
        Link::connecting(&self.rt, &self.endpoint, &self.settings)
    }

    /// Whether every client handle is gone and nothing is left to answer.
    fn finished(&self) -> bool {
        self.rx_closed
            && self.queue.is_empty()
            && match &self.link {
                Link::Up(s) => s.conn.is_idle() && s.out.is_empty(),
                Link::Connecting(_) | Link::Down { .. } => true,
            }
    }

    fn poll_drive(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        for _ in 0..ROUNDS_PER_POLL {
            let now = self.rt.now();
            let mut progress = self.accept(cx);
            progress |= self.advance(cx, now);
            progress |= self.on_deadlines(now);
            if self.finished() {
                return Poll::Ready(());
            }
            if std::mem::take(&mut self.yield_now) {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            if !progress {
                if self.arm_timer(cx) {
                    // The timer fired while being armed: go round again soon.
                    cx.waker().wake_by_ref();
                }
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Takes every request callers queued (each holds an in-flight slot, so this is bounded).
    fn accept(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        while !self.rx_closed {
            match Pin::new(&mut self.rx).poll_next(cx) {
                Poll::Ready(Some(cmd)) => {
                    progress = true;
                    // A caller that gave up before anything was written costs nothing.
                    if !cmd.reply.is_canceled() {
                        self.queue.push_back(cmd);
                    }
                }
                Poll::Ready(None) => self.rx_closed = true,
                Poll::Pending => break,
            }
        }
        progress
    }

    /// Moves the link forward: connects, serves, or waits out the backoff.
    fn advance(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        match &mut self.link {
            Link::Connecting(connecting) => match connecting.as_mut().poll(cx) {
                Poll::Ready(Ok(stream)) => {
                    tracing::debug!(endpoint = %self.endpoint, "connected");
                    if self.connected_once {
                        self.counters.reconnect();
                    }
                    self.connected_once = true;
                    self.link = Link::Up(Box::new(Session::new(stream, &self.settings)));
                    true
                }
                Poll::Ready(Err(e)) => {
                    tracing::warn!(endpoint = %self.endpoint, error = %e, "connect failed");
                    self.counters.connect_failure();
                    self.go_down(now, e.to_string());
                    true
                }
                Poll::Pending => false,
            },
            Link::Down { until, reason } => {
                let mut progress = false;
                // Fail fast while the server is unreachable: a cache that is down must not stall.
                while let Some(cmd) = self.queue.pop_front() {
                    let what = format!("{} is unavailable: {reason}", self.endpoint);
                    cmd.reply.send(Err(Error::Unavailable(what)));
                    progress = true;
                }
                if now >= *until && !self.rx_closed {
                    self.link = self.connecting();
                    progress = true;
                }
                progress
            }
            Link::Up(session) => {
                let mut progress = session.dispatch(&mut self.queue, self.settings.max_in_flight);
                if session.defer_write() {
                    // Let the callers woken with these run first: one write then carries all.
                    self.yield_now = true;
                    return true;
                }
                progress |= session.write(cx, now);
                progress |= session.read(cx, now);
                progress |= session.deliver();
                if let Some(reason) = session.conn.poisoned().cloned() {
                    session.fail_all(&reason);
                    let served = session.served;
                    self.lost(now, reason, served);
                    return true;
                }
                progress
            }
        }
    }

    /// The connection failed: replace it at once after a safety close by a server that
    /// answered, else wait out the backoff.
    fn lost(&mut self, now: Instant, reason: PoisonReason, served: bool) {
        if served {
            self.backoff.reset();
        }
        match reason {
            PoisonReason::Closed | PoisonReason::Timeout => {
                tracing::warn!(endpoint = %self.endpoint, %reason, "connection lost");
                self.go_down(now, reason.to_string());
            }
            _ => {
                tracing::info!(endpoint = %self.endpoint, %reason, "connection closed for safety; reconnecting");
                self.link = self.connecting();
            }
        }
    }

    fn go_down(&mut self, now: Instant, reason: String) {
        let delay = self.backoff.next_delay();
        tracing::debug!(endpoint = %self.endpoint, ?delay, "reconnecting after a delay");
        self.link = Link::Down {
            until: now + delay,
            reason,
        };
    }

    /// The earliest moment something must happen without any IO: a caller's deadline, the
    /// connection's read timeout, the end of the backoff.
    fn next_deadline(&self) -> Option<Instant> {
        let queued = self.queue.iter().find_map(|c| c.deadline);
        let link = match &self.link {
            Link::Up(s) => min_opt(s.conn.poll_timeout(), s.waiters.next_deadline()),
            Link::Down { until, .. } => Some(*until),
            Link::Connecting(_) => None,
        };
        min_opt(queued, link)
    }

    /// Handles every deadline that passed; whether anything changed.
    fn on_deadlines(&mut self, now: Instant) -> bool {
        if self.next_deadline().is_none_or(|at| at > now) {
            return false;
        }
        let mut changed = false;
        // Queued requests are failed in place: deadlines need not be in queue order.
        let before = self.queue.len();
        let mut kept = VecDeque::with_capacity(before);
        for cmd in self.queue.drain(..) {
            if cmd.deadline.is_some_and(|d| d <= now) {
                cmd.reply.send(Err(Error::Timeout));
            } else {
                kept.push_back(cmd);
            }
        }
        changed |= kept.len() != before;
        self.queue = kept;
        if let Link::Up(s) = &mut self.link {
            for reply in s.waiters.expire(now, &mut s.conn) {
                reply.send(Err(Error::Timeout));
                changed = true;
            }
            s.conn.handle_timeout(now);
            changed |= s.conn.poisoned().is_some();
        }
        changed |= matches!(self.link, Link::Down { until, .. } if until <= now);
        changed
    }

    /// Sets the timer to the next deadline; whether it has already fired.
    ///
    /// With nothing due, a timer still armed is left running: it fires at most once for
    /// nothing, where disarming it would make the next request (whose deadline is later
    /// than the old one) wake the task to arm it again, once per request on an idle
    /// connection's inline path.
    fn arm_timer(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(at) = min_opt(self.next_deadline(), self.timer_wanted.take()) else {
            if self.timer_at.is_some() && self.timer.as_mut().poll_fire(cx).is_ready() {
                self.timer_at = None;
            }
            return false;
        };
        if self.timer_at != Some(at) {
            self.timer_at = Some(at);
            self.timer.as_mut().reset(at);
        }
        self.timer.as_mut().poll_fire(cx).is_ready()
    }
}

impl Future for Driver {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if !this.task.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            this.task = Some(cx.waker().clone());
        }
        this.poll_drive(cx)
    }
}

/// The inline path (see the module docs).
impl Driver {
    /// Wakes the task, if it has been polled yet.
    fn wake_task(&self) {
        if let Some(w) = &self.task {
            w.wake_by_ref();
        }
    }

    /// Puts `cmd` into the connection if it is idle (up, nothing queued, nothing in flight,
    /// nothing left to write) and the task has run, else into the task's queue
    /// ([`Driver::queue_for_task`]).
    ///
    /// Also into the task's queue when the last read completed several replies (unless `cmd`
    /// opens a pinned handle's `batch`, whose caller waits for its own requests): their
    /// callers are about to send again, and the task writes after them, one write for all;
    /// the first of them, driving inline, would write its request alone, ahead of the others
    /// (on async-std's executor that split each round of 32 callers into several writes).
    fn offer(&mut self, cmd: Command, batch: bool) -> Offer {
        let Link::Up(s) = &mut self.link else {
            return self.queue_for_task(cmd);
        };
        let idle = self.queue.is_empty() && s.conn.in_flight() == 0 && s.out.is_empty();
        let answered_together = s.last_delivered > 1 && !batch;
        if !idle || answered_together || self.task.is_none() || s.conn.poisoned().is_some() {
            return self.queue_for_task(cmd);
        }
        match s.conn.send(cmd.request) {
            Ok(id) => s.waiters.push(id, cmd.deadline, cmd.reply),
            Err(e) => cmd.reply.send(Err(e)),
        }
        self.ensure_timer();
        Offer::Inline
    }

    /// Puts `cmd` in the task's queue and wakes the task, as the channel would, minus the
    /// channel's allocation and copies per message: the caller holds the driver, so the task is
    /// not running it. Bounded as the channel is, by the in-flight slot each command holds.
    /// Declined once the channel is closed (the task is finishing and takes no more).
    fn queue_for_task(&mut self, cmd: Command) -> Offer {
        if self.rx_closed {
            return Offer::Declined(cmd);
        }
        self.queue.push_back(cmd);
        self.wake_task();
        Offer::Queued
    }

    /// Takes what callers queued on the channel meanwhile, without registering for it (the
    /// channel's wake-ups stay the task's).
    fn accept_now(&mut self) {
        while let Ok(cmd) = self.rx.try_recv() {
            if !cmd.reply.is_canceled() {
                self.queue.push_back(cmd);
            }
        }
    }

    /// Wakes the task if its timer would fire after the next deadline (a request's timeout,
    /// or the read timeout of bytes just written inline), so that it re-arms it.
    fn ensure_timer(&mut self) {
        if let Some(at) = self.next_deadline() {
            self.want_timer(at);
        }
    }

    /// Wakes the task to arm its timer for `at`, unless the armed timer fires by then.
    fn want_timer(&mut self, at: Instant) {
        if self.timer_at.is_none_or(|armed| armed > at) {
            self.timer_wanted = min_opt(self.timer_wanted, Some(at));
            self.wake_task();
        }
    }

    /// Writes and reads with the caller's waker, delivering what arrives, until the stream
    /// has nothing more to read (the caller's waker is then registered for it) or `done`
    /// (the caller's reply has come: the read interest goes back to the task when the caller
    /// settles). The channel and the timer stay the task's; a failed connection is left to
    /// the task.
    ///
    /// A write always runs to its end or to `Pending` (its waker registered), so a round only
    /// repeats after a read that got bytes.
    fn drive_inline(&mut self, cx: &mut Context<'_>, now: Instant, done: &dyn Fn() -> bool) {
        for _ in 0..ROUNDS_PER_POLL {
            self.accept_now();
            let Link::Up(s) = &mut self.link else {
                return;
            };
            s.dispatch(&mut self.queue, self.settings.max_in_flight);
            let wrote = s.write(cx, now);
            let read = s.read(cx, now);
            s.deliver();
            if s.conn.poisoned().is_some() {
                // The task fails the callers and replaces the connection.
                self.wake_task();
                return;
            }
            if wrote {
                // Written bytes start the read timeout: the one deadline a write can bring
                // forward (the request's own was covered when it was put in).
                if let Some(at) = s.conn.poll_timeout() {
                    self.want_timer(at);
                }
            }
            if !read || done() {
                return;
            }
        }
        cx.waker().wake_by_ref();
    }

    /// An inline caller is leaving: the task's waker takes over the stream's read interest (a
    /// read that finds nothing only registers it), and the task is woken if anything is left
    /// to write or to handle.
    fn settle(&mut self, now: Instant) {
        let Driver { task, link, .. } = self;
        let Some(task) = task.as_ref() else {
            return;
        };
        let Link::Up(s) = link else {
            return;
        };
        let mut cx = Context::from_waker(task);
        while s.read(&mut cx, now) {
            s.deliver();
            if s.conn.poisoned().is_some() {
                break;
            }
        }
        if !s.out.is_empty() || s.unflushed || s.conn.poisoned().is_some() {
            task.wake_by_ref();
        }
    }
}

/// What became of a request offered to a connection for the inline path.
#[allow(
    clippy::large_enum_variant,
    reason = "returned once per request and moved on at once; boxing would allocate per request \
              (large only with some features, so not an `expect`)"
)]
pub(crate) enum Offer {
    /// It is in the connection; the caller drives it.
    Inline,
    /// The connection is busy or not up: it is in the task's queue, and the task was woken.
    Queued,
    /// The driver is held right now (or the task is finishing): send it through the task's
    /// channel.
    Declined(Command),
}

/// A connection's driver, shared by its task ([`DriverTask`]) and inline callers.
pub(crate) struct Shared {
    driver: Mutex<Driver>,
    /// A caller found the driver held and left its bytes to be moved by others: whoever
    /// releases the driver next wakes the task (see [`DriverGuard`]).
    kicked: AtomicBool,
    /// The task's waker, for waking it without the driver's lock.
    task_waker: Mutex<Option<Waker>>,
}

impl Shared {
    /// Shares `driver`; run [`Shared::task`] on the runtime.
    pub(crate) fn new(driver: Driver) -> Arc<Shared> {
        Arc::new(Shared {
            driver: Mutex::new(driver),
            kicked: AtomicBool::new(false),
            task_waker: Mutex::new(None),
        })
    }

    /// The connection's task.
    pub(crate) fn task(self: &Arc<Self>) -> DriverTask {
        DriverTask(self.clone())
    }

    fn lock(&self) -> DriverGuard<'_> {
        // The driver's state stays consistent at every step; a panic elsewhere (a waker) does
        // not make it unusable.
        let guard = self.driver.lock().unwrap_or_else(PoisonError::into_inner);
        DriverGuard {
            shared: self,
            guard: Some(guard),
        }
    }

    fn try_lock(&self) -> Option<DriverGuard<'_>> {
        let guard = match self.driver.try_lock() {
            Ok(d) => d,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        Some(DriverGuard {
            shared: self,
            guard: Some(guard),
        })
    }

    /// After the driver was released: wakes the task if a caller found the driver held
    /// meanwhile. (A caller sets `kicked` before trying the lock once more, and the holder
    /// looks at it after releasing: one of the two always sees the other.)
    fn after_release(&self) {
        if self.kicked.load(Ordering::SeqCst) && self.kicked.swap(false, Ordering::SeqCst) {
            let waker = self
                .task_waker
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            if let Some(w) = waker {
                w.wake();
            }
        }
    }

    /// Puts `cmd` straight into an idle connection (see [`Driver::offer`]), or else into
    /// the task's queue; gives it back when the driver is held right now. `batch`: `cmd` is a
    /// pinned handle's, sent together with others of the same caller.
    pub(crate) fn offer(&self, cmd: Command, batch: bool) -> Offer {
        match self.try_lock() {
            Some(mut d) => d.offer(cmd, batch),
            None => Offer::Declined(cmd),
        }
    }

    /// Moves bytes with the caller's waker, unless the task holds the driver right now (it
    /// then does the same work, and delivers through the caller's reply channel), and polls
    /// the caller's reply `rx`.
    ///
    /// While the caller drives, its waker is out of `rx` (replaced by a no-op waker under the
    /// lock, which every delivery needs): a reply it delivers itself must not wake it, which
    /// would poll its task once more for nothing. It is registered again after.
    ///
    /// A caller whose reply came from its own drive hands the connection back to the task at
    /// once, under the same lock, and `settled` is set: its [`Shared::settle`] is then not
    /// needed.
    pub(crate) fn poll_inline(
        &self,
        cx: &mut Context<'_>,
        rx: &mut ReplyReceiver,
        settled: &mut bool,
    ) -> Poll<Result<Result<Response, Error>, oneshot::RecvError>> {
        let held = self.try_lock().or_else(|| {
            // The task or another caller holds the driver, maybe past the step that would
            // write or read this caller's bytes (the task is not woken for an inline
            // request): ask the holder to wake the task when it releases, unless it has
            // released already.
            self.kicked.store(true, Ordering::SeqCst);
            self.try_lock()
        });
        if let Some(mut d) = held {
            let mut quiet = Context::from_waker(Waker::noop());
            if let Poll::Ready(r) = Pin::new(&mut *rx).poll(&mut quiet) {
                return Poll::Ready(r);
            }
            // This caller moves every queued byte itself (a kick left by others is answered).
            self.kicked.store(false, Ordering::SeqCst);
            let now = d.rt.now();
            let rx = &*rx;
            d.drive_inline(cx, now, &|| rx.has_message());
            if rx.has_message() {
                d.settle(now);
                *settled = true;
            }
        }
        Pin::new(rx).poll(cx)
    }

    /// An inline caller is done or gone: hands the stream back to the task.
    pub(crate) fn settle(&self) {
        let mut d = self.lock();
        let now = d.rt.now();
        d.settle(now);
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

/// The task of one connection: drives the shared driver until every client handle is gone.
pub(crate) struct DriverTask(Arc<Shared>);

impl Future for DriverTask {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        {
            let mut w = self
                .0
                .task_waker
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *w = Some(cx.waker().clone());
            }
        }
        let mut driver = self.0.lock();
        Pin::new(&mut *driver).poll(cx)
    }
}

/// The driver, locked; on release, wakes the task if a caller asked for it
/// ([`Shared::after_release`]).
struct DriverGuard<'a> {
    shared: &'a Shared,
    guard: Option<MutexGuard<'a, Driver>>,
}

impl std::ops::Deref for DriverGuard<'_> {
    type Target = Driver;

    fn deref(&self) -> &Driver {
        self.guard.as_deref().expect("held until dropped")
    }
}

impl std::ops::DerefMut for DriverGuard<'_> {
    fn deref_mut(&mut self) -> &mut Driver {
        self.guard.as_deref_mut().expect("held until dropped")
    }
}

impl Drop for DriverGuard<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        self.shared.after_release();
    }
}

fn min_opt(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// One open connection: its stream, proto state, and the callers waiting on it.
struct Session {
    stream: Box<dyn ByteStream>,
    conn: Connection,
    waiters: Waiters<Reply>,
    /// Bytes taken from the connection and not yet written: command lines and large values
    /// as they were given, written together by vectored writes.
    out: VecDeque<Bytes>,
    /// Bytes went to the stream and no flush has completed since: a TLS stream may hold some.
    unflushed: bool,
    read_size: usize,
    /// Reads in a row that used under a quarter of `read_size`.
    small_reads: u8,
    /// The server answered at least one request on this connection.
    served: bool,
    /// How many replies the last read that completed any completed.
    last_delivered: usize,
    /// Requests put into the connection since its last write began.
    unsent: usize,
    /// The write of `unsent` was put off once already.
    deferred: bool,
}

impl Session {
    fn new(stream: Box<dyn ByteStream>, settings: &Settings) -> Session {
        Session {
            stream,
            conn: Connection::new(settings.connection.clone()),
            waiters: Waiters::default(),
            out: VecDeque::new(),
            unflushed: false,
            read_size: MIN_READ,
            small_reads: 0,
            served: false,
            last_delivered: 0,
            unsent: 0,
            deferred: false,
        }
    }

    /// Moves queued requests into the connection while it has room.
    fn dispatch(&mut self, queue: &mut VecDeque<Command>, max_in_flight: usize) -> bool {
        let mut progress = false;
        while self.conn.in_flight() < max_in_flight {
            let Some(cmd) = queue.pop_front() else { break };
            progress = true;
            if cmd.reply.is_canceled() {
                continue;
            }
            match self.conn.send(cmd.request) {
                Ok(id) => {
                    self.waiters.push(id, cmd.deadline, cmd.reply);
                    self.unsent += 1;
                }
                Err(e) => cmd.reply.send(Err(e)),
            }
        }
        progress
    }

    /// Whether to put off writing the requests just put in, once: when fewer came than the
    /// last read completed, the other callers of those replies are likely running or about to
    /// (on a multi-thread runtime the task is often polled right after the first of them), and
    /// waiting one turn lets one write carry all their requests.
    fn defer_write(&mut self) -> bool {
        let defer = !self.deferred
            && self.out.is_empty()
            && self.unsent > 0
            && self.unsent < self.last_delivered;
        if defer {
            self.deferred = true;
        }
        defer
    }

    /// Writes queued bytes: many requests per syscall.
    fn write(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        let mut progress = false;
        loop {
            if self.out.is_empty() {
                if !self.conn.take_transmit_chunks(now, &mut self.out) {
                    if self.unflushed && self.flush(cx) {
                        return true;
                    }
                    return progress;
                }
                self.unsent = 0;
                self.deferred = false;
            }
            let written = if self.out.len() == 1 {
                self.stream.poll_write(cx, &self.out[0])
            } else {
                let mut slices = [IoSlice::new(&[]); MAX_WRITE_SLICES];
                let n = self.out.len().min(MAX_WRITE_SLICES);
                for (slice, chunk) in slices.iter_mut().zip(&self.out) {
                    *slice = IoSlice::new(chunk);
                }
                self.stream.poll_write_vectored(cx, &slices[..n])
            };
            match written {
                Poll::Ready(Ok(0)) => {
                    self.conn.poison(PoisonReason::Closed);
                    return true;
                }
                Poll::Ready(Ok(n)) => {
                    self.consume(n);
                    progress = true;
                }
                Poll::Ready(Err(e)) => {
                    tracing::debug!(error = %e, "write failed");
                    self.conn.poison(PoisonReason::Closed);
                    return true;
                }
                Poll::Pending => {
                    // A TLS stream may hold bytes until flushed; plain sockets ignore this.
                    let _ = self.stream.poll_flush(cx);
                    return progress;
                }
            }
            if self.out.is_empty() {
                self.unflushed = true;
                if self.flush(cx) {
                    return true;
                }
            }
        }
    }

    /// Drops the first `n` written bytes of the queued buffers.
    fn consume(&mut self, mut n: usize) {
        while n > 0 {
            let Some(front) = self.out.front_mut() else {
                return;
            };
            if n < front.len() {
                front.advance(n);
                return;
            }
            n -= front.len();
            self.out.pop_front();
        }
    }

    /// Flushes the stream. A TLS stream takes bytes into its own buffer even when the socket
    /// is full, and sends them only on a flush or a later write: a flush that returned
    /// `Pending` is retried when the socket drains. Returns whether the connection failed.
    fn flush(&mut self, cx: &mut Context<'_>) -> bool {
        match self.stream.poll_flush(cx) {
            Poll::Ready(Ok(())) => self.unflushed = false,
            Poll::Ready(Err(e)) => {
                tracing::debug!(error = %e, "flush failed");
                self.conn.poison(PoisonReason::Closed);
                return true;
            }
            Poll::Pending => {}
        }
        false
    }

    /// Reads what the stream has straight into the connection's read buffer, and decodes.
    ///
    /// Reads are sized from what the decoder knows: when a reply's data block is partly read,
    /// the decoder has reserved room for all of it (at the length the header declared, once),
    /// and the read may fill that room; the value is then handed out as a slice of that one
    /// buffer, never copied.
    fn read(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        let hint = self.conn.read_hint();
        let input = self.conn.read_buf();
        let max = match hint {
            // The rest of the block (and the reply's end): the value then ends its buffer,
            // and the next reply starts in a buffer of its own. Later replies are read in
            // reads of the whole block's size, so that one of the same size is read whole.
            Some(rest) => {
                let whole = input.len() + rest + VALUES_TRAILER;
                self.read_size = self.read_size.max(whole.min(MAX_SIZED_READ));
                // The decoder reserved room for the block: the reply's end only if it fits.
                let spare = input.capacity() - input.len();
                (rest + VALUES_TRAILER).min(spare).max(rest)
            }
            None => self.read_size,
        };
        input.reserve(max);
        match self.stream.poll_read_buf(cx, input, max) {
            Poll::Ready(Ok(0)) => {
                self.conn.receive_eof();
                true
            }
            Poll::Ready(Ok(n)) => {
                if hint.is_none() {
                    self.size_next_read(n, max);
                }
                self.conn.process(now);
                true
            }
            Poll::Ready(Err(e)) => {
                tracing::debug!(error = %e, "read failed");
                self.conn.poison(PoisonReason::Closed);
                true
            }
            Poll::Pending => false,
        }
    }

    /// Sizes the next read from how much of `max` this one used.
    fn size_next_read(&mut self, n: usize, max: usize) {
        if n >= max {
            self.read_size = (max * 2).min(MAX_READ).max(max);
            self.small_reads = 0;
        } else if n < max / 4 {
            self.small_reads += 1;
            if self.small_reads == SHRINK_AFTER {
                self.read_size = (max / 2).max(MIN_READ);
                self.small_reads = 0;
            }
        } else {
            self.small_reads = 0;
        }
    }

    /// Hands each reply to the caller of the request it answers.
    fn deliver(&mut self) -> bool {
        let mut delivered = 0;
        while let Some((id, result)) = self.conn.poll_response() {
            delivered += 1;
            if result.is_ok() || result.as_ref().is_err_and(Error::is_server_reply) {
                self.served = true;
            }
            if let Some(reply) = self.waiters.take(id) {
                reply.send(result);
            }
        }
        if delivered > 0 {
            self.last_delivered = delivered;
        }
        delivered > 0
    }

    /// The connection is lost: every caller still waiting fails with `reason`.
    fn fail_all(&mut self, reason: &PoisonReason) {
        self.deliver();
        for reply in self.waiters.drain() {
            reply.send(Err(Error::Poisoned(reason.clone())));
        }
    }
}

/// Reconnect delays: exponential from `min` to `max`, each drawn uniformly from the upper
/// half of its step (so clients restarting together spread out), and starting over only
/// once a connection has served a reply.
#[derive(Debug)]
struct Backoff {
    min: Duration,
    max: Duration,
    step: Duration,
}

impl Backoff {
    fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max: max.max(min),
            step: min,
        }
    }

    fn next_delay(&mut self) -> Duration {
        let step = self.step;
        self.step = (step * 2).min(self.max);
        let half = step / 2;
        let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(fastrand::u64(0..=nanos))
    }

    fn reset(&mut self) {
        self.step = self.min;
    }
}

#[cfg(test)]
mod tests;
