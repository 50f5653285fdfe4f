//! [`Connection`]: the sans-IO state machine of one memcached connection.
//!
//! Requests go in ([`Connection::send`]) and come out as bytes to write
//! ([`Connection::transmit`]); bytes read go in ([`Connection::receive`]) and come out as
//! replies paired with the id of the request they answer ([`Connection::poll_response`]).
//! It owns pipelining, quiet batches, abandoned requests and poisoning; it never touches a
//! socket or reads a clock (time is passed in).
//!
//! How replies are attributed:
//! - replies come back in request order; a request that expects a reply gets the next one;
//! - every meta request carries an opaque chosen here (a caller's own opaque is restored in the
//!   reply), and the reply must echo it;
//! - quiet meta requests (`q`) and text `noreply` requests answer nothing on success: a reply
//!   carrying a quiet request's opaque is its own; any other reply means the silent requests
//!   before it succeeded. A batch that ends with a silent request is closed with an `mn` (or
//!   `version`) that the connection adds and swallows;
//! - an error line after a silent request cannot be attributed with certainty: the connection
//!   is poisoned rather than risk handing one caller another's reply;
//! - an abandoned request's reply is read and dropped, never handed to anyone;
//! - a malformed reply poisons the connection: every pending request fails, nothing more is
//!   accepted, and the adapter must open a new connection.

use crate::error::{DecodeError, Error, PoisonReason, Snippet};
use crate::key::Key;
use crate::meta::flags::{MetaGetFlags, Opaque};
use crate::meta::request::MetaGet;
use crate::request::Request;
use crate::response::{
    Decoded, ErrorKind, Expect, GetAsMeta, MetaResponse, MetaStatus, Peek, Response,
    ResponseDecoder, Value,
};
use crate::text::request::RetrieveCommand;
use crate::wire::Limits;
use bytes::{BufMut, Bytes, BytesMut};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Identifies a request sent on a [`Connection`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(u64);

impl RequestId {
    /// The id as a number (increasing per connection).
    pub fn get(self) -> u64 {
        self.0
    }
}

/// The request a connection adds to close a batch that ends with silent requests.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncCommand {
    /// `mn` (memcached 1.6+).
    #[default]
    MetaNoop,
    /// `version`: for proxies that do not carry meta commands (twemproxy).
    Version,
}

/// Settings of a [`Connection`].
#[derive(Debug, Clone, Default)]
pub struct ConnectionConfig {
    /// Limits on what is accepted from the server.
    pub limits: Limits,
    /// How long a reply may take to complete once it is due; past it the connection is
    /// poisoned with [`PoisonReason::Timeout`] ([`Connection::poll_timeout`]). `None`: no
    /// deadline.
    ///
    /// The oldest pending request (abandoned or not) is due from the moment its first bytes
    /// are written while nothing is ahead of it, or from the moment the reply ahead of it
    /// completes (a silent request ahead completes when a later reply shows it succeeded, a
    /// batch when its last reply or the hidden `mn`/`version` arrives). Its whole reply must
    /// then arrive within `read_timeout`: bytes that do not complete a reply do not move the
    /// deadline, so a server that drips a reply byte by byte is cut off `read_timeout` after
    /// the reply was due, whatever it sends meanwhile. A pipelined batch may take longer than
    /// `read_timeout` as a whole, as long as each reply completes within it of the one before.
    pub read_timeout: Option<Duration>,
    /// How batches ending in silent requests are closed.
    pub sync: SyncCommand,
    /// Sends a single-key `get` or `gets` as `mg <key> f v` (`c` for `gets`; memcached
    /// 1.6+) and answers it exactly as the `get` would be answered: `Response::Values` with
    /// the one value (its key, flags, data and, for `gets`, cas), or none on a miss. Off by
    /// default: the bytes are then the request's own. Multi-key retrievals, `gat` and
    /// `gats` are sent as they are.
    ///
    /// Why: memcached (1.6.18, checked with `strace`; the benches' `server_cost` measures it)
    /// writes the reply of every text `get` with a `sendmsg` of its own, even when the next
    /// requests are already read, while it answers pipelined meta requests (and `set`,
    /// `delete`, `incr`, `touch`) with a few `sendmsg`s for all. With many callers on a connection that is a system call and a
    /// wake-up per get on the server, and one read per few replies on the client. Leave it
    /// off through a proxy that does not carry meta commands (twemproxy).
    pub single_get_as_meta: bool,
}

#[derive(Debug)]
struct Pending {
    id: u64,
    /// Where its bytes start in the stream of bytes queued for writing.
    start: u64,
    internal: bool,
    expect: Option<Expect>,
    silent: bool,
    command: &'static str,
    data_block: bool,
    opaque: Option<Opaque>,
    user_opaque: Option<Opaque>,
    abandoned: bool,
    /// A `get` (`Some(false)`) or `gets` (`Some(true)`) sent as `mg`
    /// ([`ConnectionConfig::single_get_as_meta`]): its meta reply is handed out as
    /// `Response::Values`.
    get_as_meta: Option<bool>,
}

impl Pending {
    /// The reply a silent request is taken to have had when the next reply is not its own.
    fn implied(&self) -> Decoded {
        match self.command {
            "mg" => Decoded::Meta(MetaResponse::status(MetaStatus::En)),
            "ms" | "md" | "ma" => Decoded::Meta(MetaResponse::status(MetaStatus::Hd)),
            _ => Decoded::Reply(Response::NoReply),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Open,
    Quitting,
    Poisoned(PoisonReason),
}

/// Values of at least this many bytes are queued as they were given (a `Bytes` clone), not
/// copied into the transmit buffer: [`Connection::take_transmit_chunks`] hands them to a
/// vectored write.
pub const SPLICE_MIN: usize = 8 * 1024;

/// One memcached connection's protocol state. See the module docs.
///
/// ```
/// use mcache_proto::{Connection, Key, Request, Response};
/// use mcache_proto::text::request::{Retrieve, RetrieveCommand};
/// use std::time::Instant;
///
/// let mut conn = Connection::default();
/// let id = conn.send(Request::Retrieve(Retrieve {
///     command: RetrieveCommand::Get,
///     keys: vec![Key::new("foo")?],
/// }))?;
/// assert_eq!(conn.transmit(), b"get foo\r\n");
/// let n = conn.transmit().len();
/// conn.advance_transmit(n, Instant::now());
/// conn.receive(b"VALUE foo 0 3\r\nbar\r\nEND\r\n", Instant::now());
/// let (got, reply) = conn.poll_response().unwrap();
/// assert_eq!(got, id);
/// assert!(matches!(reply?, Response::Values(v) if &v[0].data[..] == b"bar"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Connection {
    config: ConnectionConfig,
    decoder: ResponseDecoder,
    /// Bytes queued ahead of `out`: command lines and large values kept as they were given
    /// (see [`SPLICE_MIN`]).
    chunks: VecDeque<Bytes>,
    out: BytesMut,
    input: BytesMut,
    pending: VecDeque<Pending>,
    ready: VecDeque<(RequestId, Result<Response, Error>)>,
    next_id: u64,
    needs_sync: bool,
    state: State,
    /// Bytes queued for writing since the connection opened.
    queued: u64,
    /// Bytes written since the connection opened.
    written: u64,
    /// When the front pending request became due (its reply must complete within the read
    /// timeout of it); `None` while nothing is pending or its bytes are not written yet.
    due: Option<Instant>,
}

impl Default for Connection {
    fn default() -> Self {
        Connection::new(ConnectionConfig::default())
    }
}

impl Connection {
    /// A new connection.
    pub fn new(config: ConnectionConfig) -> Self {
        Connection {
            decoder: ResponseDecoder::new(config.limits),
            config,
            chunks: VecDeque::new(),
            out: BytesMut::with_capacity(16 * 1024),
            input: BytesMut::with_capacity(16 * 1024),
            pending: VecDeque::new(),
            ready: VecDeque::new(),
            next_id: 0,
            needs_sync: false,
            state: State::Open,
            queued: 0,
            written: 0,
            due: None,
        }
    }

    /// The settings.
    pub fn config(&self) -> &ConnectionConfig {
        &self.config
    }

    /// Why the connection is unusable, if it is.
    pub fn poisoned(&self) -> Option<&PoisonReason> {
        match &self.state {
            State::Poisoned(r) => Some(r),
            _ => None,
        }
    }

    /// Whether new requests are accepted.
    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// Requests sent and not yet answered (abandoned ones included, internal ones not).
    /// Counts them: O(n); see [`Connection::in_flight`] for a bound checked per request.
    pub fn pending(&self) -> usize {
        self.pending.iter().filter(|p| !p.internal).count()
    }

    /// Entries awaiting a reply: the requests of [`Connection::pending`] plus the sync
    /// requests the connection added to close quiet batches. O(1), for bounding what a
    /// connection carries.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Whether anything is waiting for a reply.
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty() && self.ready.is_empty()
    }

    /// Queues a request: checks and encodes it, or fails with nothing queued.
    pub fn send(&mut self, mut request: Request) -> Result<RequestId, Error> {
        match &self.state {
            State::Open => {}
            State::Quitting => return Err(Error::Poisoned(PoisonReason::Quit)),
            State::Poisoned(r) => return Err(Error::Poisoned(r.clone())),
        }
        request.check(&self.config.limits)?;
        let get_as_meta = if self.config.single_get_as_meta {
            single_get(&request)
        } else {
            None
        };
        let id = self.next_id;
        // Every meta request carries the connection's opaque, checked in its reply.
        let opaque = Opaque::from_u32(id as u32);
        let user_opaque = match &mut request {
            Request::MetaGet(m) => m.flags.opaque.replace(opaque),
            Request::MetaSet(m) => m.flags.opaque.replace(opaque),
            Request::MetaDelete(m) => m.flags.opaque.replace(opaque),
            Request::MetaArithmetic(m) => m.flags.opaque.replace(opaque),
            _ => None,
        };
        let start = self.queued;
        let before = self.out.len();
        // Bytes moved from `out` into `chunks`: what was queued before, this command line and
        // its value.
        let mut spliced = 0;
        if let Some(cas) = get_as_meta {
            encode_get_as_meta(&request, cas, opaque, &mut self.out);
        } else if let Some(value) = request.large_value(SPLICE_MIN) {
            // The value goes out as given, between its command line and `\r\n`: written
            // with the rest by a vectored write, never copied.
            let value = value.clone();
            request.encode_head(&mut self.out);
            let head = self.out.split().freeze();
            spliced = head.len() + value.len();
            self.chunks.push_back(head);
            self.chunks.push_back(value);
            self.out.put_slice(b"\r\n");
        } else {
            request.encode_unchecked(&mut self.out);
        }
        self.queued += (self.out.len() + spliced - before) as u64;
        self.next_id += 1;
        let silent = request.is_silent();
        let quit = request == Request::Quit;
        if quit {
            self.state = State::Quitting;
        }
        self.needs_sync = silent && !quit;
        let command = match get_as_meta {
            Some(_) => "mg",
            None => request.command_name(),
        };
        let data_block = request.has_data_block();
        let expect = match get_as_meta {
            Some(_) => get_as_meta_expect(request, opaque),
            None => Expect::take(request),
        };
        // A meta reply (to a meta request, or to a get sent as `mg`) must carry the opaque.
        let opaque = match &expect {
            Some(Expect::Meta { opaque, .. }) => *opaque,
            _ => None,
        };
        self.pending.push_back(Pending {
            id,
            start,
            internal: false,
            expect,
            silent,
            command,
            data_block,
            opaque,
            user_opaque,
            abandoned: false,
            get_as_meta,
        });
        Ok(RequestId(id))
    }

    /// The bytes to write now (all queued requests, in one buffer). Adds the synchronising
    /// request a batch that ends with silent requests needs. Large values queued as they
    /// were given are copied into the buffer here; a driver that can write several buffers
    /// at once uses [`take_transmit_chunks`](Connection::take_transmit_chunks) instead.
    pub fn transmit(&mut self) -> &[u8] {
        self.add_sync();
        if !self.chunks.is_empty() {
            let mut all = BytesMut::with_capacity(self.chunks_len() + self.out.len());
            for chunk in self.chunks.drain(..) {
                all.extend_from_slice(&chunk);
            }
            all.extend_from_slice(&self.out);
            self.out = all;
        }
        &self.out
    }

    /// Takes every byte to write now as a list of buffers, without copying any (large values
    /// stay the `Bytes` they were given): for a vectored write. Counts as written for the
    /// read timeout. Returns whether anything was added to `into`.
    pub fn take_transmit_chunks(&mut self, now: Instant, into: &mut VecDeque<Bytes>) -> bool {
        if !self.needs_sync && self.chunks.is_empty() && self.out.is_empty() {
            // Nothing to send: the common answer, asked once more after every write.
            return false;
        }
        self.add_sync();
        let n = self.chunks_len() + self.out.len();
        if n == 0 {
            return false;
        }
        into.extend(self.chunks.drain(..));
        if !self.out.is_empty() {
            into.push_back(self.out.split().freeze());
        }
        self.written += n as u64;
        self.start_clock(now);
        true
    }

    fn chunks_len(&self) -> usize {
        self.chunks.iter().map(Bytes::len).sum()
    }

    /// Queues the synchronising request a batch that ends with silent requests needs.
    fn add_sync(&mut self) {
        if self.needs_sync && self.state == State::Open {
            self.needs_sync = false;
            let sync = match self.config.sync {
                SyncCommand::MetaNoop => Request::MetaNoop,
                SyncCommand::Version => Request::Version,
            };
            let start = self.queued;
            let before = self.out.len();
            sync.encode_unchecked(&mut self.out);
            self.queued += (self.out.len() - before) as u64;
            self.pending.push_back(Pending {
                id: self.next_id,
                start,
                internal: true,
                expect: Expect::of(&sync),
                silent: false,
                command: sync.command_name(),
                data_block: false,
                opaque: None,
                user_opaque: None,
                abandoned: false,
                get_as_meta: None,
            });
            self.next_id += 1;
        }
    }

    /// Whether there are bytes to write.
    pub fn wants_write(&self) -> bool {
        !self.out.is_empty()
            || !self.chunks.is_empty()
            || (self.needs_sync && self.state == State::Open)
    }

    /// Records that the first `n` bytes of [`transmit`](Connection::transmit) were written.
    pub fn advance_transmit(&mut self, n: usize, now: Instant) {
        let n = n.min(self.out.len());
        let _ = self.out.split_to(n);
        self.written += n as u64;
        self.start_clock(now);
    }

    /// Takes all the bytes to write now, without copying (for drivers that write from their
    /// own buffer, possibly in several calls). Counts as written for the read timeout.
    pub fn take_transmit(&mut self, now: Instant) -> Option<bytes::Bytes> {
        if !self.wants_write() {
            return None;
        }
        let n = self.transmit().len();
        let chunk = self.out.split_to(n).freeze();
        self.written += n as u64;
        self.start_clock(now);
        Some(chunk)
    }

    /// Bytes read into a driver's own buffer: moves them in (without copying when nothing
    /// is buffered yet, leaving `data` empty) and decodes every reply they complete.
    pub fn receive_buf(&mut self, data: &mut BytesMut, now: Instant) {
        if self.input.is_empty() {
            std::mem::swap(&mut self.input, data);
        } else {
            self.input.extend_from_slice(data);
            data.clear();
        }
        self.process(now);
    }

    /// Bytes read from the socket: decodes every reply they complete.
    pub fn receive(&mut self, data: &[u8], now: Instant) {
        self.input.extend_from_slice(data);
        self.process(now);
    }

    /// The read buffer, for reading into it without a copy; call
    /// [`process`](Connection::process) after adding bytes.
    pub fn read_buf(&mut self) -> &mut BytesMut {
        &mut self.input
    }

    /// How many more bytes complete the value being read, when the reply in progress has
    /// declared a data block not yet whole; `None` otherwise. A driver reads exactly that
    /// much into [`read_buf`](Connection::read_buf) (where room for the whole block is
    /// already reserved), so that the value is handed out without a copy.
    pub fn read_hint(&self) -> Option<usize> {
        self.decoder.block_remaining(&self.input)
    }

    /// Decodes every reply the read buffer completes. Only a completed reply moves the read
    /// deadline ([`ConnectionConfig::read_timeout`]).
    pub fn process(&mut self, now: Instant) {
        while let Some(progress) = self.step(now) {
            if !progress {
                break;
            }
        }
    }

    /// The front request is due from `now` if nothing was due and its first bytes are
    /// written.
    fn start_clock(&mut self, now: Instant) {
        if self.due.is_none()
            && self
                .pending
                .front()
                .is_some_and(|front| self.written > front.start)
        {
            self.due = Some(now);
        }
    }

    /// Takes the front request, whose reply completed at `now`: the next one is due from now
    /// (once written).
    fn complete_front(&mut self, now: Instant) -> Option<Pending> {
        let p = self.pending.pop_front()?;
        self.due = None;
        self.start_clock(now);
        Some(p)
    }

    /// One decoding step: `Some(true)` if something was completed, `Some(false)`/`None` to stop.
    fn step(&mut self, now: Instant) -> Option<bool> {
        if matches!(self.state, State::Poisoned(_)) {
            self.input.clear();
            return None;
        }
        let Some(front) = self.pending.front() else {
            // Only the stray empty line 1.6.40+ sends after a retrieval's `CLIENT_ERROR` may
            // come when nothing is waiting (false: too few bytes yet to tell).
            if !self.decoder.skip_stray(&mut self.input) {
                return None;
            }
            if !self.input.is_empty() {
                let line = Snippet::new(&self.input);
                self.poison(PoisonReason::Malformed(DecodeError::Unexpected {
                    expected: "nothing (no request is waiting)",
                    line,
                }));
            }
            return None;
        };
        if self.input.is_empty() {
            return None;
        }
        if front.silent {
            let peek = match self.decoder.peek(&mut self.input) {
                Ok(Some(p)) => p,
                Ok(None) => return None,
                Err(e) => {
                    self.poison(PoisonReason::Malformed(e));
                    return None;
                }
            };
            match peek {
                Peek::Error => {
                    // Only when the sole silent request is followed by the connection's own
                    // sync (which never errs) is the error line certainly its own.
                    if !self.pending.get(1).is_some_and(|p| p.internal) {
                        self.poison(PoisonReason::AmbiguousError);
                        return None;
                    }
                }
                Peek::Meta(op) if front.expect.is_some() && op.is_some() && op == front.opaque => {}
                _ => {
                    // The silent request succeeded: the reply is a later request's.
                    let p = self.complete_front(now)?;
                    let implied = p.implied();
                    self.deliver(p, implied);
                    return Some(true);
                }
            }
        }
        let front = self.pending.front_mut()?;
        if let (
            Some(with_cas),
            Some(Expect::Meta {
                opaque: Some(op), ..
            }),
        ) = (front.get_as_meta, &front.expect)
        {
            match self.decoder.get_as_meta(op, with_cas, &mut self.input) {
                Ok(GetAsMeta::Incomplete) => return None,
                Ok(GetAsMeta::Other) => {}
                Ok(fast) => {
                    let mut p = self.complete_front(now)?;
                    // The expectation matched above: its key is the value's.
                    let key = match p.expect.take() {
                        Some(Expect::Meta { key, .. }) => key,
                        _ => Key::placeholder(),
                    };
                    let values = match fast {
                        GetAsMeta::Hit { flags, cas, data } => vec![Value {
                            key,
                            flags,
                            cas,
                            data,
                        }],
                        _ => Vec::new(),
                    };
                    self.deliver(p, Decoded::Reply(Response::Values(values)));
                    return Some(true);
                }
                Err(e) => {
                    self.poison(PoisonReason::Malformed(e));
                    return None;
                }
            }
        }
        let front = self.pending.front_mut()?;
        // A `noreply` request expects nothing; here it is its error line: any expectation
        // decodes an error line.
        let mut neutral = Expect::Ok;
        let expect = front.expect.as_mut().unwrap_or(&mut neutral);
        match self.decoder.decode_owned(expect, &mut self.input) {
            Ok(None) => None,
            Ok(Some(r)) => {
                let p = self.complete_front(now)?;
                self.deliver(p, r);
                Some(true)
            }
            Err(e) => {
                self.poison(PoisonReason::Malformed(e));
                None
            }
        }
    }

    fn deliver(&mut self, p: Pending, response: Decoded) {
        let mut poison = None;
        let result = match response {
            Decoded::Reply(Response::Error { kind, message }) => {
                if p.data_block && kind != ErrorKind::Server {
                    poison = Some(PoisonReason::StorageRejected);
                }
                Err(match kind {
                    ErrorKind::Error => Error::Protocol(message),
                    ErrorKind::Client => Error::Client(message),
                    ErrorKind::Server => Error::Server(message),
                })
            }
            Decoded::Meta(m) if p.get_as_meta.is_some() => {
                meta_as_values(m, p.expect, p.get_as_meta == Some(true))
            }
            Decoded::Meta(mut m) => {
                m.flags.opaque = p.user_opaque;
                Ok(Response::Meta(Box::new(m)))
            }
            Decoded::Reply(other) => Ok(other),
        };
        if !p.internal && !p.abandoned {
            self.ready.push_back((RequestId(p.id), result));
        } else {
            tracing::trace!(command = p.command, "dropped reply to an abandoned request");
        }
        if let Some(reason) = poison {
            self.poison(reason);
        }
    }

    /// The next reply, paired with the id of the request it answers.
    pub fn poll_response(&mut self) -> Option<(RequestId, Result<Response, Error>)> {
        self.ready.pop_front()
    }

    /// The caller of `id` gave up: its reply will be read and dropped. Returns whether the
    /// request was still pending.
    pub fn abandon(&mut self, id: RequestId) -> bool {
        if let Ok(i) = self.pending.binary_search_by_key(&id.0, |p| p.id) {
            self.pending[i].abandoned = true;
            return true;
        }
        let before = self.ready.len();
        self.ready.retain(|(r, _)| *r != id);
        before != self.ready.len()
    }

    /// The peer closed the connection (end of stream) or the transport failed.
    pub fn receive_eof(&mut self) {
        if self.state == State::Quitting
            && self.input.is_empty()
            && self.pending.iter().all(|p| p.silent)
        {
            while let Some(p) = self.pending.pop_front() {
                let implied = p.implied();
                self.deliver(p, implied);
            }
            self.state = State::Poisoned(PoisonReason::Quit);
            self.due = None;
            return;
        }
        if !matches!(self.state, State::Poisoned(_)) {
            self.poison(PoisonReason::Closed);
        }
    }

    /// When [`handle_timeout`](Connection::handle_timeout) should be called next: the read
    /// timeout after the oldest pending reply became due ([`ConnectionConfig::read_timeout`]);
    /// `None` without a read timeout, while nothing written waits for a reply, or once the
    /// connection is poisoned.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let timeout = self.config.read_timeout?;
        if self.pending.is_empty() || !matches!(self.state, State::Open | State::Quitting) {
            return None;
        }
        self.due?.checked_add(timeout)
    }

    /// Poisons the connection with [`PoisonReason::Timeout`] if the oldest pending reply has
    /// not completed within the read timeout of becoming due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(deadline) = self.poll_timeout() {
            if now >= deadline {
                self.poison(PoisonReason::Timeout);
            }
        }
    }

    /// Makes the connection unusable: every pending request fails with `reason`.
    pub fn poison(&mut self, reason: PoisonReason) {
        if matches!(self.state, State::Poisoned(_)) {
            return;
        }
        tracing::debug!(%reason, pending = self.pending.len(), "connection poisoned");
        for p in self.pending.drain(..) {
            if !p.internal && !p.abandoned {
                self.ready
                    .push_back((RequestId(p.id), Err(Error::Poisoned(reason.clone()))));
            }
        }
        self.state = State::Poisoned(reason);
        self.out.clear();
        self.input.clear();
        self.decoder.reset();
        self.needs_sync = false;
        self.due = None;
    }
}

/// Whether `request` is a single-key `get` (`Some(false)`) or `gets` (`Some(true)`), which a
/// connection may send as `mg <key> f v [c]` ([`ConnectionConfig::single_get_as_meta`]).
fn single_get(request: &Request) -> Option<bool> {
    let Request::Retrieve(r) = request else {
        return None;
    };
    if r.keys.len() != 1 {
        return None;
    }
    match r.command {
        RetrieveCommand::Get => Some(false),
        RetrieveCommand::Gets => Some(true),
        RetrieveCommand::Gat(_) | RetrieveCommand::Gats(_) => None,
    }
}

/// The flags of a single-key `get` sent as `mg` (a cas for `gets`), with the connection's
/// `opaque`.
fn get_as_meta_flags(cas: bool, opaque: Opaque) -> MetaGetFlags {
    MetaGetFlags {
        value: true,
        client_flags: true,
        cas,
        opaque: Some(opaque),
        ..MetaGetFlags::default()
    }
}

/// Encodes the single-key get `request` ([`single_get`]) as `mg <key> f v [c] O<opaque>`,
/// without making an `mg` request of it. The key is a text key (the request was checked).
fn encode_get_as_meta(request: &Request, cas: bool, opaque: Opaque, out: &mut BytesMut) {
    if let Request::Retrieve(r) = request {
        if let [key] = r.keys.as_slice() {
            MetaGet::encode_parts(out, key, &get_as_meta_flags(cas, opaque));
        }
    }
}

/// What a single-key get sent as `mg` expects: the `mg`'s reply, for its one key.
fn get_as_meta_expect(request: Request, opaque: Opaque) -> Option<Expect> {
    let Request::Retrieve(mut r) = request else {
        return None;
    };
    Some(Expect::Meta {
        command: "mg",
        key: r.keys.pop()?,
        opaque: Some(opaque),
        value: true,
    })
}

/// The reply of a `get` sent as `mg`, as the `get` would have had it: `VA` is the one value
/// (its key taken from the request's expectation; a cas only for `gets`, which must have one),
/// `EN` none. Any other status, or a `gets` value without its cas, cannot answer the request
/// and is an error for this request alone (the reply itself was well framed).
fn meta_as_values(
    m: MetaResponse,
    expect: Option<Expect>,
    with_cas: bool,
) -> Result<Response, Error> {
    let command = if with_cas { "gets" } else { "get" };
    match (m.status, m.value, expect) {
        (MetaStatus::En, _, _) => Ok(Response::Values(Vec::new())),
        (MetaStatus::Va, Some(data), Some(Expect::Meta { key, .. }))
            if !with_cas || m.flags.cas.is_some() =>
        {
            Ok(Response::Values(vec![Value {
                key,
                flags: m.flags.client_flags.unwrap_or(0),
                cas: m.flags.cas.filter(|_| with_cas),
                data,
            }]))
        }
        (status, ..) => Err(Error::UnexpectedResponse {
            command,
            response: format!("{status:?} to mg <key> v (a cas asked for: {with_cas})"),
        }),
    }
}
