//! The driver, deterministically: an in-memory stream played by the test, a clock moved by
//! hand, and the driver polled by hand. No sockets, no sleeping.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::testing::{Connect, ManualRuntime, MemStream};
use async_lock::Semaphore;
use mcache_proto::text::request::{Retrieve, RetrieveCommand, Store, StoreCommand};
use mcache_proto::{DecodeError, Key};
use std::task::Waker;

type Rx = oneshot::Receiver<Result<Response, Error>>;

const SECOND: Duration = Duration::from_secs(1);

struct Rig {
    rt: ManualRuntime,
    tx: mpsc::UnboundedSender<Command>,
    driver: Driver,
    slots: Arc<Semaphore>,
}

fn settings() -> Settings {
    let mut s = Settings::default();
    // These tests script the text protocol's `get`; the `mg` form has tests of its own.
    s.connection.single_get_as_meta = false;
    s.connection.read_timeout = Some(5 * SECOND);
    s.backoff_min = Duration::from_millis(100);
    s.backoff_max = Duration::from_secs(10);
    s
}

fn rig_with(settings: Settings, stream: Option<MemStream>) -> Rig {
    let rt = ManualRuntime::new();
    let (tx, rx) = mpsc::unbounded();
    let driver = Driver::new(
        Arc::new(rt.clone()),
        Endpoint::Tcp("mem:1".into()),
        Arc::new(settings),
        rx,
        stream.map(|s| Box::new(s) as Box<dyn ByteStream>),
        Arc::new(ServerCounters::new(&Endpoint::Tcp("mem:1".into()), 1 << 20)),
    );
    Rig {
        rt,
        tx,
        driver,
        slots: Arc::new(Semaphore::new(1 << 20)),
    }
}

fn rig(stream: &MemStream) -> Rig {
    rig_with(settings(), Some(stream.clone()))
}

fn get(key: &str) -> Request {
    Request::Retrieve(Retrieve {
        command: RetrieveCommand::Get,
        keys: vec![Key::new(key).unwrap()],
    })
}

fn set(key: &str, value: &'static [u8]) -> Request {
    Request::Store(Store {
        command: StoreCommand::Set,
        key: Key::new(key).unwrap(),
        flags: 0,
        exptime: 0,
        value: Bytes::from_static(value),
        noreply: false,
    })
}

impl Rig {
    fn poll(&mut self) -> Poll<()> {
        let mut cx = Context::from_waker(Waker::noop());
        Pin::new(&mut self.driver).poll(&mut cx)
    }

    /// Queues `request` with a deadline `timeout` from now.
    fn call(&self, request: Request, timeout: Option<Duration>) -> Rx {
        let (reply, rx) = Reply::new(self.slots.try_acquire_arc().unwrap());
        let deadline = timeout.map(|t| self.rt.now() + t);
        self.tx
            .unbounded_send(Command {
                request,
                reply,
                deadline,
            })
            .unwrap();
        rx
    }

    /// Moves the clock and polls.
    fn advance(&mut self, d: Duration) {
        self.rt.advance(d);
        let _ = self.poll();
    }

    fn is_up(&self) -> bool {
        matches!(self.driver.link, Link::Up(_))
    }

    fn is_down(&self) -> bool {
        matches!(self.driver.link, Link::Down { .. })
    }

    fn is_connecting(&self) -> bool {
        matches!(self.driver.link, Link::Connecting(_))
    }
}

/// The reply a caller got, if any yet.
fn reply(rx: &mut Rx) -> Option<Result<Response, Error>> {
    match rx.try_recv() {
        Ok(r) => Some(r),
        Err(oneshot::TryRecvError::Empty) => None,
        Err(e) => panic!("the driver dropped a caller: {e}"),
    }
}

fn value_of(r: Option<Result<Response, Error>>) -> Vec<u8> {
    match r {
        Some(Ok(Response::Values(v))) => v[0].data.to_vec(),
        other => panic!("expected a value, got {other:?}"),
    }
}

#[test]
fn pipelined_requests_go_out_in_one_write_and_replies_split_anywhere_reach_their_callers() {
    let server = MemStream::new();
    let mut r = rig(&server);
    let mut a = r.call(get("a"), Some(SECOND));
    let mut b = r.call(get("b"), Some(SECOND));
    let mut c = r.call(get("c"), Some(SECOND));
    assert!(r.poll().is_pending());
    assert_eq!(server.take_written(), b"get a\r\nget b\r\nget c\r\n");
    assert_eq!(server.writes(), 1, "three requests, one write");
    let replies: &[u8] = b"VALUE a 0 1\r\nA\r\nEND\r\nVALUE b 0 2\r\nBB\r\nEND\r\nEND\r\n";
    // One byte per read: every possible split of every frame.
    server.set_read_chunk(1);
    server.send(replies);
    for _ in 0..replies.len() {
        let _ = r.poll();
    }
    assert_eq!(value_of(reply(&mut a)), b"A");
    assert_eq!(value_of(reply(&mut b)), b"BB");
    assert!(matches!(reply(&mut c), Some(Ok(Response::Values(v))) if v.is_empty()));
}

#[test]
fn partial_writes_resume_where_they_stopped() {
    let server = MemStream::new();
    server.set_write_chunk(3);
    let mut r = rig(&server);
    let mut a = r.call(set("k", b"value"), Some(SECOND));
    let mut b = r.call(get("k"), Some(SECOND));
    let _ = r.poll();
    assert_eq!(server.take_written(), b"set k 0 0 5\r\nvalue\r\nget k\r\n");
    server.send(b"STORED\r\nVALUE k 0 5\r\nvalue\r\nEND\r\n");
    let _ = r.poll();
    assert!(matches!(reply(&mut a), Some(Ok(Response::Stored))));
    assert_eq!(value_of(reply(&mut b)), b"value");
}

#[test]
fn a_blocked_writer_does_not_stop_deadlines() {
    let server = MemStream::new();
    server.set_write_blocked(true);
    let mut r = rig(&server);
    let mut a = r.call(get("a"), Some(SECOND));
    let _ = r.poll();
    assert!(reply(&mut a).is_none());
    r.advance(SECOND);
    assert_eq!(reply(&mut a), Some(Err(Error::Timeout)));
}

#[test]
fn a_stalled_peer_times_callers_out_then_loses_the_connection_at_the_read_timeout() {
    let server = MemStream::new();
    let mut r = rig(&server);
    let mut a = r.call(get("a"), Some(SECOND));
    let _ = r.poll();
    r.advance(SECOND);
    assert_eq!(reply(&mut a), Some(Err(Error::Timeout)));
    assert!(
        r.is_up(),
        "an abandoned request alone does not close the connection yet"
    );
    r.advance(4 * SECOND);
    assert!(
        r.is_down(),
        "no reply within the read timeout of being due: replaced"
    );
    let mut b = r.call(get("b"), Some(SECOND));
    let _ = r.poll();
    assert!(matches!(reply(&mut b), Some(Err(e)) if e.is_unavailable()));
}

#[test]
fn a_slow_drip_cannot_keep_a_connection_alive() {
    // Defect 1: a reply header, then one byte every 2 s. Before, each byte counted as
    // progress and the connection lived forever while every caller timed out.
    let server = MemStream::new();
    let mut r = rig(&server);
    let mut a = r.call(get("a"), Some(SECOND));
    let _ = r.poll();
    server.send(b"VALUE a 0 100\r\n");
    let _ = r.poll();
    for _ in 0..2 {
        r.advance(2 * SECOND);
        server.send(b"x");
        let _ = r.poll();
        assert!(r.is_up());
    }
    assert_eq!(reply(&mut a), Some(Err(Error::Timeout)));
    r.advance(SECOND);
    assert!(
        r.is_down(),
        "5 s after the reply was due, bytes or not, the connection goes"
    );
    r.rt.on_connect(Connect::Open(MemStream::new()));
    r.advance(SECOND);
    assert!(r.is_up(), "and it is replaced after the backoff");
}

#[test]
fn a_close_mid_reply_fails_the_callers_and_the_connection_is_reopened() {
    let server = MemStream::new();
    let mut r = rig(&server);
    let mut a = r.call(get("a"), Some(10 * SECOND));
    let mut b = r.call(get("b"), Some(10 * SECOND));
    let _ = r.poll();
    server.send(b"VALUE a 0 10\r\nabc");
    server.close();
    let _ = r.poll();
    assert_eq!(
        reply(&mut a),
        Some(Err(Error::Poisoned(PoisonReason::Closed)))
    );
    assert_eq!(
        reply(&mut b),
        Some(Err(Error::Poisoned(PoisonReason::Closed)))
    );
    assert!(r.is_down());
    let next = MemStream::new();
    r.rt.on_connect(Connect::Open(next.clone()));
    r.advance(SECOND);
    assert!(r.is_up());
    let mut c = r.call(get("c"), Some(SECOND));
    let _ = r.poll();
    assert_eq!(next.take_written(), b"get c\r\n");
    next.send(b"VALUE c 0 1\r\nC\r\nEND\r\n");
    let _ = r.poll();
    assert_eq!(value_of(reply(&mut c)), b"C");
}

#[test]
fn in_flight_requests_per_connection_are_bounded() {
    // Defect 3: the connection carries at most `max_in_flight`, abandoned ones included.
    let server = MemStream::new();
    let mut s = settings();
    s.max_in_flight = 2;
    let mut r = rig_with(s, Some(server.clone()));
    let mut rxs: Vec<Rx> = (0..5)
        .map(|i| r.call(get(&format!("k{i}")), None))
        .collect();
    let _ = r.poll();
    assert_eq!(server.take_written(), b"get k0\r\nget k1\r\n");
    server.send(b"END\r\n");
    let _ = r.poll();
    assert_eq!(server.take_written(), b"get k2\r\n");
    server.send(b"END\r\nEND\r\n");
    let _ = r.poll();
    assert_eq!(server.take_written(), b"get k3\r\nget k4\r\n");
    server.send(b"END\r\nEND\r\n");
    let _ = r.poll();
    for rx in &mut rxs {
        assert!(matches!(reply(rx), Some(Ok(Response::Values(v))) if v.is_empty()));
    }
}

#[test]
fn reconnect_backoff_is_jittered_exponential_and_resets_only_after_a_reply() {
    // Defect 4: a server that accepts and then closes at once got ~32 connects a second
    // forever, because a successful TCP connect reset the backoff.
    let mut r = rig_with(settings(), None);
    for _ in 0..8 {
        let s = MemStream::new();
        s.close();
        r.rt.on_connect(Connect::Open(s));
    }
    let _ = r.poll();
    for _ in 0..2000 {
        r.advance(Duration::from_millis(10));
        if r.rt.attempts().len() >= 7 {
            break;
        }
    }
    let at = r.rt.attempts();
    assert!(at.len() >= 7, "{at:?}");
    let gaps: Vec<Duration> = at.windows(2).map(|w| w[1] - w[0]).collect();
    for (i, gap) in gaps.iter().enumerate().take(6) {
        // Step i is min(100 ms * 2^i, 10 s); each delay lies in its upper half (within the
        // 10 ms resolution of this clock).
        let step = Duration::from_millis(100 * (1 << i)).min(10 * SECOND);
        assert!(
            *gap >= step / 2 && *gap <= step + Duration::from_millis(20),
            "gap {i} = {gap:?}, step {step:?}: {gaps:?}"
        );
    }
}

#[test]
fn backoff_jitter_spreads_clients_that_restart_together() {
    let delays: Vec<Duration> = (0..64)
        .map(|_| Backoff::new(Duration::from_millis(200), SECOND).next_delay())
        .collect();
    let distinct: std::collections::HashSet<_> = delays.iter().collect();
    assert!(distinct.len() > 32, "{delays:?}");
    assert!(delays
        .iter()
        .all(|d| *d >= Duration::from_millis(100) && *d <= Duration::from_millis(200)));
}

#[test]
fn a_served_reply_starts_the_backoff_over() {
    let mut b = Backoff::new(Duration::from_millis(100), 10 * SECOND);
    for _ in 0..5 {
        b.next_delay();
    }
    assert_eq!(b.step, Duration::from_millis(3200));
    b.reset();
    assert!(b.next_delay() <= Duration::from_millis(100));
}

#[test]
fn deadlines_hold_while_connecting() {
    // Defect 5: a get with a 1 s timeout returned after 9.7 s while an authentication
    // handshake hung under a 10 s connect timeout.
    let mut s = settings();
    s.connect_timeout = 10 * SECOND;
    let mut r = rig_with(s, None);
    r.rt.on_connect(Connect::Hang);
    let mut a = r.call(get("a"), Some(SECOND));
    let _ = r.poll();
    assert!(r.is_connecting());
    r.advance(Duration::from_millis(999));
    assert!(reply(&mut a).is_none());
    r.advance(Duration::from_millis(1));
    assert_eq!(reply(&mut a), Some(Err(Error::Timeout)));
}

#[test]
fn deadlines_hold_while_a_long_reply_streams_in() {
    // Defect 5: bytes arriving all the time must not keep a caller past its deadline.
    let server = MemStream::new();
    let mut r = rig(&server);
    let mut a = r.call(get("a"), Some(SECOND));
    let _ = r.poll();
    server.send(b"VALUE a 0 1000000\r\n");
    for _ in 0..10 {
        r.advance(Duration::from_millis(100));
        server.send(&[b'x'; 1000]);
        let _ = r.poll();
    }
    assert_eq!(reply(&mut a), Some(Err(Error::Timeout)));
}

#[test]
fn a_safety_close_reconnects_at_once_and_queued_calls_wait_for_the_new_connection() {
    // Defect 7: after a safety close the calls queued behind it failed with an IO error
    // during the reconnect delay, and the pool counted them against a healthy server.
    let server = MemStream::new();
    let mut r = rig(&server);
    let mut a = r.call(set("k", b"v"), Some(5 * SECOND));
    let mut b = r.call(get("k"), Some(5 * SECOND));
    let _ = r.poll();
    server.take_written();
    let next = MemStream::new();
    r.rt.on_connect(Connect::OpenAfter(Duration::from_millis(10), next.clone()));
    // A rejected storage command: the data block may have run as a command.
    server.send(b"CLIENT_ERROR bad data chunk\r\n");
    let _ = r.poll();
    // Its own caller hears the server's words; the request written behind it fails with
    // the reason, which is not a connection failure (the server answered).
    assert_eq!(
        reply(&mut a),
        Some(Err(Error::Client("bad data chunk".into())))
    );
    let got = reply(&mut b);
    assert!(
        matches!(&got, Some(Err(e @ Error::Poisoned(PoisonReason::StorageRejected))) if !e.is_connection_failure()),
        "{got:?}"
    );
    assert!(r.is_connecting(), "reconnecting at once, no backoff");
    assert_eq!(r.rt.attempts(), vec![Duration::ZERO]);
    let mut c = r.call(get("k"), Some(5 * SECOND));
    let _ = r.poll();
    assert!(
        reply(&mut c).is_none(),
        "a call queued meanwhile waits instead of failing"
    );
    r.advance(Duration::from_millis(10));
    assert!(r.is_up());
    assert_eq!(next.take_written(), b"get k\r\n");
    next.send(b"END\r\n");
    let _ = r.poll();
    assert!(matches!(reply(&mut c), Some(Ok(Response::Values(_)))));
}

#[test]
fn a_reply_over_the_byte_bound_is_refused_before_it_is_buffered() {
    // Defect 2: one `stats` reply of 99,990 lines of 8 KiB drove RSS to 788 MiB.
    let server = MemStream::new();
    let mut s = settings();
    s.connection.limits.max_reply_len = 1024 * 1024;
    let mut r = rig_with(s, Some(server.clone()));
    r.rt.on_connect(Connect::Hang);
    let mut a = r.call(Request::Stats { args: None }, Some(60 * SECOND));
    let _ = r.poll();
    let line = format!("STAT {} {}\r\n", "k".repeat(16), "v".repeat(8000));
    let mut sent = 0;
    let mut got = None;
    while got.is_none() {
        got = reply(&mut a);
        if got.is_some() {
            break;
        }
        server.send(line.as_bytes());
        sent += line.len();
        let _ = r.poll();
        assert!(sent < 2 * 1024 * 1024, "still buffering after {sent} bytes");
    }
    assert!(
        matches!(
            got,
            Some(Err(Error::Poisoned(PoisonReason::Malformed(
                DecodeError::ReplyTooLarge { .. }
            ))))
        ),
        "{got:?}"
    );
    assert!(r.is_connecting(), "a safety close: replaced at once");
}

#[test]
fn dropped_callers_cost_nothing_and_their_replies_are_read_and_discarded() {
    let server = MemStream::new();
    let mut r = rig(&server);
    drop(r.call(get("gone"), Some(SECOND)));
    let mut a = r.call(get("a"), Some(SECOND));
    let _ = r.poll();
    assert_eq!(
        server.take_written(),
        b"get a\r\n",
        "a dropped call is never sent"
    );
    let b_dropped_after_send = r.call(get("b"), Some(SECOND));
    let mut c = r.call(get("c"), Some(SECOND));
    let _ = r.poll();
    drop(b_dropped_after_send);
    server
        .send(b"VALUE a 0 1\r\nA\r\nEND\r\nVALUE b 0 1\r\nB\r\nEND\r\nVALUE c 0 1\r\nC\r\nEND\r\n");
    let _ = r.poll();
    assert_eq!(value_of(reply(&mut a)), b"A");
    assert_eq!(value_of(reply(&mut c)), b"C");
}

#[test]
fn the_task_ends_when_every_handle_is_gone_and_replies_are_delivered() {
    let server = MemStream::new();
    let mut r = rig(&server);
    let mut a = r.call(get("a"), Some(SECOND));
    let (tx, _) = mpsc::unbounded();
    drop(std::mem::replace(&mut r.tx, tx));
    assert!(r.poll().is_pending(), "a reply is still owed");
    server.send(b"END\r\n");
    assert!(r.poll().is_ready());
    assert!(matches!(reply(&mut a), Some(Ok(_))));
}

#[test]
fn unavailable_while_down_is_a_typed_error() {
    let mut r = rig_with(settings(), None);
    r.rt.on_connect(Connect::Refuse);
    let _ = r.poll();
    assert!(r.is_down());
    let mut a = r.call(get("a"), Some(SECOND));
    let _ = r.poll();
    match reply(&mut a) {
        Some(Err(e @ Error::Unavailable(_))) => {
            assert!(e.is_unavailable() && e.is_connection_failure());
        }
        other => panic!("{other:?}"),
    }
    let _ = DecodeError::ReplyTooLarge { max: 0 };
}

/// A waker that counts its wake-ups.
#[derive(Default)]
struct Counting(std::sync::atomic::AtomicUsize);

impl std::task::Wake for Counting {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Counting {
    fn count(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A shared driver whose task is polled by hand with a counting waker, and callers that use
/// the inline path.
struct InlineRig {
    rt: ManualRuntime,
    // Kept so that the driver's channel stays open.
    _tx: mpsc::UnboundedSender<Command>,
    shared: Arc<Shared>,
    task: DriverTask,
    task_wakes: Arc<Counting>,
    slots: Arc<Semaphore>,
}

impl InlineRig {
    fn new(stream: &MemStream) -> InlineRig {
        let r = rig(stream);
        let shared = Shared::new(r.driver);
        let task = shared.task();
        let mut rig = InlineRig {
            rt: r.rt,
            _tx: r.tx,
            shared,
            task,
            task_wakes: Arc::default(),
            slots: r.slots,
        };
        assert!(rig.poll_task().is_pending());
        rig
    }

    fn poll_task(&mut self) -> Poll<()> {
        let waker = Waker::from(self.task_wakes.clone());
        Pin::new(&mut self.task).poll(&mut Context::from_waker(&waker))
    }

    /// A `get` of `key` with a slot and no deadline, and its reply channel.
    fn command(&self, key: &str) -> (Command, Rx) {
        let (reply, rx) = Reply::new(self.slots.try_acquire_arc().unwrap());
        let cmd = Command {
            request: get(key),
            reply,
            deadline: None,
        };
        (cmd, rx)
    }

    /// Puts `request` into the connection inline (it must be idle); its reply channel.
    fn inline(&self, request: Request, timeout: Duration) -> Rx {
        let (reply, rx) = Reply::new(self.slots.try_acquire_arc().unwrap());
        let deadline = Some(self.rt.now() + timeout);
        let cmd = Command {
            request,
            reply,
            deadline,
        };
        assert!(
            matches!(self.shared.offer(cmd, false), Offer::Inline),
            "the connection was idle"
        );
        rx
    }

    /// One poll of the inline caller waiting on `rx`, with `waker`: its reply, if it came.
    /// A reply the caller read itself leaves the connection settled (handed back to the
    /// task); one the task delivered is settled here, as the caller's drop would.
    fn drive(&self, waker: &Arc<Counting>, rx: &mut Rx) -> Option<Result<Response, Error>> {
        let waker = Waker::from(waker.clone());
        let mut settled = false;
        let poll = self
            .shared
            .poll_inline(&mut Context::from_waker(&waker), rx, &mut settled);
        match poll {
            Poll::Ready(Ok(r)) => {
                if !settled {
                    self.shared.settle();
                }
                Some(r)
            }
            Poll::Ready(Err(e)) => panic!("the driver dropped a caller: {e}"),
            Poll::Pending => {
                assert!(!settled, "settled while still waiting");
                None
            }
        }
    }
}

#[test]
fn a_caller_on_an_idle_connection_writes_and_reads_itself_without_waking_the_task() {
    let server = MemStream::new();
    let mut r = InlineRig::new(&server);
    let caller = Arc::new(Counting::default());

    // The first request wakes the task, to arm its timer for the request's deadline.
    let mut rx = r.inline(get("a"), SECOND);
    assert!(r.drive(&caller, &mut rx).is_none());
    assert_eq!(server.take_written(), b"get a\r\n", "written by the caller");
    assert!(r.task_wakes.count() >= 1);
    assert!(r.poll_task().is_pending());
    let wakes = r.task_wakes.count();
    server.send(b"VALUE a 0 1\r\nA\r\nEND\r\n");
    let got = r.drive(&caller, &mut rx);
    assert_eq!(value_of(got), b"A");

    // From then on the armed timer covers later deadlines: no wake-up of the task at all.
    for i in 0..5 {
        r.rt.advance(Duration::from_millis(1));
        let mut rx = r.inline(get("b"), SECOND);
        assert!(r.drive(&caller, &mut rx).is_none());
        assert_eq!(server.take_written(), b"get b\r\n");
        server.send(b"VALUE b 0 1\r\nB\r\nEND\r\n");
        let got = r.drive(&caller, &mut rx);
        assert_eq!(value_of(got), b"B", "request {i}");
    }
    assert_eq!(r.task_wakes.count(), wakes, "no hop per request");
}

#[test]
fn an_idle_task_keeps_its_timer_armed_so_the_next_inline_request_does_not_wake_it() {
    let server = MemStream::new();
    let mut r = InlineRig::new(&server);
    let caller = Arc::new(Counting::default());
    for key in ["a", "b", "c"] {
        let mut rx = r.inline(get(key), SECOND);
        assert!(r.drive(&caller, &mut rx).is_none());
        server.take_written();
        server.send(format!("VALUE {key} 0 1\r\nX\r\nEND\r\n").as_bytes());
        assert_eq!(value_of(r.drive(&caller, &mut rx)), b"X");
        // The task runs with nothing due (woken for the first request's timer, or for any
        // other reason): it must not forget the timer it armed.
        assert!(r.poll_task().is_pending());
        r.rt.advance(Duration::from_millis(10));
    }
    let wakes = r.task_wakes.count();
    let mut rx = r.inline(get("d"), SECOND);
    assert!(r.drive(&caller, &mut rx).is_none());
    assert_eq!(
        r.task_wakes.count(),
        wakes,
        "the armed timer fires before this deadline: no wake-up needed"
    );
    // The deadline still holds: the old timer fires, the task re-arms for this request, and
    // fails it when its own deadline passes.
    r.rt.advance(SECOND - Duration::from_millis(25));
    assert!(r.poll_task().is_pending());
    assert!(reply_is_pending(&mut rx), "not yet due");
    r.rt.advance(Duration::from_millis(30));
    assert!(r.poll_task().is_pending());
    assert_eq!(reply(&mut rx), Some(Err(Error::Timeout)));
}

#[test]
fn a_caller_that_finds_the_driver_held_has_the_holder_wake_the_task_on_release() {
    let server = MemStream::new();
    let mut r = InlineRig::new(&server);
    let caller = Arc::new(Counting::default());
    // Arm the task's timer, so that the next inline request does not wake the task.
    let mut rx = r.inline(get("a"), SECOND);
    assert!(r.drive(&caller, &mut rx).is_none());
    server.send(b"VALUE a 0 1\r\nA\r\nEND\r\n");
    assert!(r.poll_task().is_pending());
    assert_eq!(value_of(reply(&mut rx)), b"A");
    server.take_written();

    let mut rx = r.inline(get("b"), SECOND);
    let (task_wakes, caller_wakes) = (r.task_wakes.count(), caller.count());
    {
        // The task (or another caller) holds the driver while this caller is polled: the
        // request is in the connection but not written, and the holder may be past its
        // write. The caller does not spin: it leaves a word for the holder.
        let _held = r.shared.lock();
        assert!(r.drive(&caller, &mut rx).is_none());
        assert_eq!(r.task_wakes.count(), task_wakes, "not yet");
    }
    assert_eq!(r.task_wakes.count(), task_wakes + 1, "woken on release");
    assert_eq!(
        caller.count(),
        caller_wakes,
        "the caller does not poll itself again"
    );
    // The task writes the request and delivers its reply through the reply channel.
    assert!(r.poll_task().is_pending());
    assert_eq!(server.take_written(), b"get b\r\n");
    server.send(b"VALUE b 0 1\r\nB\r\nEND\r\n");
    assert!(r.poll_task().is_pending());
    assert!(caller.count() > caller_wakes, "the reply wakes the caller");
    assert_eq!(value_of(r.drive(&caller, &mut rx)), b"B");
}

#[test]
fn a_stalled_inline_request_times_out_through_the_task_timer() {
    let server = MemStream::new();
    let mut r = InlineRig::new(&server);
    let caller = Arc::new(Counting::default());
    let mut rx = r.inline(get("a"), SECOND);
    assert!(r.drive(&caller, &mut rx).is_none());
    assert_eq!(server.take_written(), b"get a\r\n");
    assert!(r.task_wakes.count() >= 1, "the task must arm its timer");
    assert!(r.poll_task().is_pending());
    r.rt.advance(SECOND);
    assert!(r.poll_task().is_pending());
    assert_eq!(reply(&mut rx), Some(Err(Error::Timeout)));
    // The abandoned request's late reply is read and dropped (until then the connection is
    // not idle); the next caller gets its own.
    server.send(b"VALUE a 0 1\r\nA\r\nEND\r\n");
    assert!(r.poll_task().is_pending());
    let mut rx = r.inline(get("b"), SECOND);
    assert!(r.drive(&caller, &mut rx).is_none());
    server.send(b"VALUE b 0 1\r\nB\r\nEND\r\n");
    let got = r.drive(&caller, &mut rx);
    assert!(r.poll_task().is_pending());
    assert_eq!(value_of(got), b"B");
}

#[test]
fn a_busy_connection_queues_for_the_task_and_a_held_one_declines() {
    let server = MemStream::new();
    let mut r = InlineRig::new(&server);
    let caller = Arc::new(Counting::default());
    let mut first = r.inline(get("a"), SECOND);
    // A request is in flight: the next goes to the task's queue, not the channel, and the
    // task is woken to write it.
    let (b, mut b_rx) = r.command("b");
    let wakes = r.task_wakes.count();
    assert!(matches!(r.shared.offer(b, false), Offer::Queued));
    assert_eq!(r.task_wakes.count(), wakes + 1, "the task is woken");
    // The driver held (by the task, or another caller): the caller is told to use the channel.
    let (c, _c_rx) = r.command("c");
    let held = r.shared.try_lock().unwrap();
    assert!(matches!(r.shared.offer(c, false), Offer::Declined(_)));
    drop(held);
    // Whoever drives next writes the queue: here the inline caller, in the same write.
    assert!(r.drive(&caller, &mut first).is_none());
    assert_eq!(server.take_written(), b"get a\r\nget b\r\n");
    assert_eq!(server.writes(), 1);
    assert!(r.poll_task().is_pending());
    assert_eq!(server.take_written(), b"");
    server.send(b"VALUE a 0 1\r\nA\r\nEND\r\nVALUE b 0 1\r\nB\r\nEND\r\n");
    assert_eq!(value_of(r.drive(&caller, &mut first)), b"A");
    let mut cx = Context::from_waker(Waker::noop());
    match Pin::new(&mut b_rx).poll(&mut cx) {
        Poll::Ready(Ok(got)) => assert_eq!(value_of(Some(got)), b"B"),
        other => panic!("the queued request's reply: {other:?}"),
    }
}

#[test]
fn a_caller_dropped_mid_write_hands_the_rest_to_the_task() {
    let server = MemStream::new();
    let mut r = InlineRig::new(&server);
    let caller = Arc::new(Counting::default());
    assert!(r.poll_task().is_pending());
    let wakes_before = r.task_wakes.count();
    server.set_write_chunk(3);
    server.set_write_blocked(true);
    let mut rx = r.inline(set("k", b"value"), SECOND);
    assert!(r.drive(&caller, &mut rx).is_none());
    assert!(server.take_written().is_empty());
    // The caller gives up: the request is abandoned, but its bytes must still go out whole,
    // or the connection would be left mid-frame.
    drop(rx);
    r.shared.settle();
    assert!(
        r.task_wakes.count() > wakes_before,
        "the task was handed the write"
    );
    server.set_write_blocked(false);
    assert!(r.poll_task().is_pending());
    assert_eq!(server.take_written(), b"set k 0 0 5\r\nvalue\r\n");
}

#[test]
fn an_inline_caller_sees_a_closed_connection_fail_and_the_task_replace_it() {
    let server = MemStream::new();
    let mut r = InlineRig::new(&server);
    let caller = Arc::new(Counting::default());
    let mut rx = r.inline(get("a"), SECOND);
    assert!(r.drive(&caller, &mut rx).is_none());
    let wakes = r.task_wakes.count();
    server.close();
    let got = r.drive(&caller, &mut rx);
    assert!(matches!(got, Some(Err(Error::Poisoned(_)))), "{got:?}");
    assert!(
        r.task_wakes.count() > wakes,
        "the task replaces the connection"
    );
    assert!(r.poll_task().is_pending());
    assert!(
        matches!(r.shared.lock().link, Link::Down { .. }),
        "the closed connection is gone"
    );
}

#[test]
fn a_large_value_is_read_into_room_sized_from_its_header_in_one_read() {
    let server = MemStream::new();
    let mut r = rig(&server);
    let mut rx = r.call(get("big"), Some(SECOND));
    assert!(r.poll().is_pending());
    server.take_written();
    let value = vec![b'x'; 256 * 1024];
    let mut wire = b"VALUE big 0 262144\r\n".to_vec();
    wire.extend_from_slice(&value);
    wire.extend_from_slice(b"\r\nEND\r\n");
    // The header and a little data first: the driver learns the declared length.
    server.send(&wire[..100]);
    assert!(r.poll().is_pending());
    assert!(reply_is_pending(&mut rx));
    server.take_offered();
    // The rest arrives at once: one read takes all of it, into room reserved for the block.
    server.send(&wire[100..]);
    assert!(r.poll().is_pending());
    let offered = server.take_offered();
    assert!(
        offered[0] >= wire.len() - 100 - b"END\r\n".len(),
        "the first read after the header offered {offered:?}"
    );
    assert_eq!(value_of(reply(&mut rx)), value);

    // The next reply of that size is read whole, in one read, into one buffer.
    let mut rx = r.call(get("big"), Some(SECOND));
    assert!(r.poll().is_pending());
    server.take_written();
    server.take_offered();
    server.send(&wire);
    assert!(r.poll().is_pending());
    let offered = server.take_offered();
    assert!(offered[0] >= wire.len(), "offered {offered:?}");
    assert_eq!(value_of(reply(&mut rx)), value);
}

/// An inline rig whose last read answered three callers: the first inline, two queued behind
/// it and written with it.
fn three_answered_at_once(server: &MemStream) -> InlineRig {
    let r = InlineRig::new(server);
    let caller = Arc::new(Counting::default());
    let mut a = r.inline(get("a"), SECOND);
    let mut queued: Vec<Rx> = ["b", "c"]
        .iter()
        .map(|k| {
            let (cmd, rx) = r.command(k);
            assert!(matches!(r.shared.offer(cmd, false), Offer::Queued));
            rx
        })
        .collect();
    assert!(r.drive(&caller, &mut a).is_none());
    assert_eq!(server.take_written(), b"get a\r\nget b\r\nget c\r\n");
    server.send(b"END\r\nEND\r\nEND\r\n");
    assert!(matches!(
        r.drive(&caller, &mut a),
        Some(Ok(Response::Values(_)))
    ));
    for rx in &mut queued {
        assert!(matches!(reply(rx), Some(Ok(Response::Values(_)))));
    }
    r
}

#[test]
fn after_a_read_that_answered_several_callers_the_next_request_goes_to_the_task_not_inline() {
    let server = MemStream::new();
    let mut r = three_answered_at_once(&server);
    // The connection is idle, but its three callers are about to send again: the first of
    // them does not write alone ahead of the others, it queues for the task...
    let (d, _d) = r.command("d");
    assert!(matches!(r.shared.offer(d, false), Offer::Queued));
    assert!(r.poll_task().is_pending());
    assert!(server.take_written().is_empty(), "the task waits one turn");
    let (e, _e) = r.command("e");
    assert!(matches!(r.shared.offer(e, false), Offer::Queued));
    let (f, _f) = r.command("f");
    assert!(matches!(r.shared.offer(f, false), Offer::Queued));
    // ...whose one write carries all three.
    let writes = server.writes();
    assert!(r.poll_task().is_pending());
    assert_eq!(server.take_written(), b"get d\r\nget e\r\nget f\r\n");
    assert_eq!(server.writes(), writes + 1);

    // A read that answers one caller makes the connection a lone caller's again: inline.
    server.send(b"END\r\nEND\r\n");
    assert!(r.poll_task().is_pending());
    server.send(b"END\r\n");
    assert!(r.poll_task().is_pending());
    let caller = Arc::new(Counting::default());
    let mut g = r.inline(get("g"), SECOND);
    assert!(r.drive(&caller, &mut g).is_none());
    assert_eq!(server.take_written(), b"get g\r\n", "written by the caller");
}

#[test]
fn a_pinned_batch_goes_inline_even_after_a_read_that_answered_several_callers() {
    let server = MemStream::new();
    let r = three_answered_at_once(&server);
    // A pinned handle's caller waits for its own requests (it yields once before driving).
    let (d, _d) = r.command("d");
    assert!(matches!(r.shared.offer(d, true), Offer::Inline));
}

fn reply_is_pending(rx: &mut Rx) -> bool {
    matches!(rx.try_recv(), Err(oneshot::TryRecvError::Empty))
}

#[test]
fn after_a_read_that_completed_several_replies_the_next_write_waits_one_turn_for_their_callers() {
    let server = MemStream::new();
    let mut r = rig(&server);
    let mut rxs: Vec<Rx> = ["a", "b", "c"]
        .iter()
        .map(|k| r.call(get(k), Some(SECOND)))
        .collect();
    assert!(r.poll().is_pending());
    assert_eq!(server.take_written(), b"get a\r\nget b\r\nget c\r\n");
    server.send(b"END\r\nEND\r\nEND\r\n");
    assert!(r.poll().is_pending());
    for rx in &mut rxs {
        assert!(matches!(reply(rx), Some(Ok(Response::Values(_)))));
    }
    let writes = server.writes();

    // Three callers were answered at once: the first to send again waits one turn...
    let _d = r.call(get("d"), Some(SECOND));
    assert!(r.poll().is_pending());
    assert!(server.take_written().is_empty(), "deferred once");
    // ...in which the others send too: one write carries all three.
    let _e = r.call(get("e"), Some(SECOND));
    let _f = r.call(get("f"), Some(SECOND));
    assert!(r.poll().is_pending());
    assert_eq!(server.take_written(), b"get d\r\nget e\r\nget f\r\n");
    assert_eq!(server.writes(), writes + 1);

    // Never more than one turn: a lone caller's request goes out at the next poll.
    server.send(b"END\r\nEND\r\nEND\r\n");
    assert!(r.poll().is_pending());
    let _g = r.call(get("g"), Some(SECOND));
    assert!(r.poll().is_pending());
    assert!(server.take_written().is_empty());
    assert!(r.poll().is_pending());
    assert_eq!(server.take_written(), b"get g\r\n");
}

#[test]
fn a_large_set_goes_out_in_one_vectored_write_even_when_split_by_the_peer() {
    let server = MemStream::new();
    let mut r = rig(&server);
    let value: &'static [u8] = Box::leak(vec![b'z'; 64 * 1024].into_boxed_slice());
    let mut rx = r.call(set("big", value), Some(SECOND));
    let _g = r.call(get("after"), Some(SECOND));
    assert!(r.poll().is_pending());
    let mut expected = b"set big 0 0 65536\r\n".to_vec();
    expected.extend_from_slice(value);
    expected.extend_from_slice(b"\r\nget after\r\n");
    assert_eq!(server.take_written(), expected);
    assert_eq!(
        server.writes(),
        1,
        "command line, value and the next request: one write"
    );

    // A peer that takes a few bytes at a time: partial writes resume mid-buffer.
    server.set_write_chunk(1000);
    let _again = r.call(set("big", value), Some(SECOND));
    assert!(r.poll().is_pending());
    let mut expected = b"set big 0 0 65536\r\n".to_vec();
    expected.extend_from_slice(value);
    expected.extend_from_slice(b"\r\n");
    assert_eq!(server.take_written(), expected);
    server.send(b"STORED\r\nEND\r\nSTORED\r\n");
    assert!(r.poll().is_pending());
    assert!(matches!(reply(&mut rx), Some(Ok(Response::Stored))));
}
