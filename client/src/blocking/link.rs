//! [`Link`]: one open connection of the blocking client, a proto
//! [`Connection`](mcache_proto::Connection) over a [`Stream`], and the blocking round trip
//! over it. Deadlines (the caller's request timeout, the connection's read timeout) are
//! enforced with socket timeouts, set only when the time left would be passed: a round trip
//! that is quick costs no extra system call.
//!
//! A link is fit for reuse only when every request it carried got its whole reply and
//! nothing failed ([`Link::is_reusable`]); anything else (an error mid-frame, a timeout, a
//! panic while it was out) means it is closed, never handed to another caller.

use super::transport::{self, is_timeout, Socket, Stream};
use crate::endpoint::Endpoint;
use crate::settings::Settings;
use mcache_proto::commands::{Call, Finish};
use mcache_proto::{Connection, Error, IoError, Request, RequestId, Response};
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

/// Bytes read from the socket at once at most (the read buffer of a link).
const READ_CHUNK: usize = 32 * 1024;

/// One connection: its stream, its protocol state and the socket timeouts in force.
#[derive(Debug)]
pub(crate) struct Link {
    stream: Stream,
    conn: Connection,
    scratch: Box<[u8]>,
    /// The socket's read timeout now (`None`: blocks forever).
    read_timeout: Option<Duration>,
    /// The socket's write timeout now.
    write_timeout: Option<Duration>,
    /// Set by a transport failure: bytes may be half written or half read.
    broken: bool,
    /// The server, for errors.
    endpoint: Endpoint,
}

impl Link {
    /// Opens a connection to `endpoint` and authenticates if configured, all within the
    /// connect timeout.
    pub(crate) fn open(endpoint: &Endpoint, settings: &Settings) -> Result<Link, Error> {
        let deadline = Instant::now() + settings.connect_timeout;
        let stream = transport::open(endpoint, settings, deadline)?;
        let budget = Some(settings.connect_timeout);
        let mut link = Link {
            stream,
            conn: Connection::new(settings.connection.clone()),
            scratch: vec![0; READ_CHUNK].into_boxed_slice(),
            read_timeout: budget,
            write_timeout: budget,
            broken: false,
            endpoint: endpoint.clone(),
        };
        if let Some((user, pass)) = &settings.auth {
            if let Call::Send { request, finish } = mcache_proto::commands::auth(user, pass)? {
                let reply = link.round_trip(request, Some(deadline));
                finish.finish(reply.map_err(|e| match e {
                    Error::Timeout => Error::Io(IoError::from_kind(
                        format!("authentication with {endpoint}"),
                        io::ErrorKind::TimedOut,
                    )),
                    other => other,
                })?)?;
            }
        }
        Ok(link)
    }

    /// The socket's read and write timeouts in force.
    #[cfg(test)]
    pub(crate) fn socket_timeouts(&self) -> (Option<Duration>, Option<Duration>) {
        (self.read_timeout, self.write_timeout)
    }

    /// Whether the link can carry another caller's request: open, nothing pending, no
    /// transport failure.
    pub(crate) fn is_reusable(&self) -> bool {
        !self.broken && self.conn.is_open() && self.conn.is_idle()
    }

    /// Sends `request` and waits for its reply, until `deadline` (`Error::Timeout` then).
    pub(crate) fn round_trip(
        &mut self,
        request: Request,
        deadline: Option<Instant>,
    ) -> Result<Response, Error> {
        let id = self.send(request, deadline)?;
        self.receive(id, deadline)
    }

    /// Queues `request` and writes it (with anything else queued) before `deadline`.
    pub(crate) fn send(
        &mut self,
        request: Request,
        deadline: Option<Instant>,
    ) -> Result<RequestId, Error> {
        let id = self.queue(request)?;
        self.flush(deadline)?;
        Ok(id)
    }

    /// Queues `request` without writing it: an invalid request fails here, with nothing
    /// queued.
    pub(crate) fn queue(&mut self, request: Request) -> Result<RequestId, Error> {
        self.conn.send(request)
    }

    /// Writes everything queued, in one buffer, before `deadline`.
    pub(crate) fn flush(&mut self, deadline: Option<Instant>) -> Result<(), Error> {
        let Some(out) = self.conn.take_transmit(Instant::now()) else {
            return Ok(());
        };
        let mut out = &out[..];
        while !out.is_empty() {
            self.arm(deadline, Direction::Write)?;
            match self.stream.write(out) {
                Ok(0) => return Err(self.fail("write to", io::ErrorKind::WriteZero.into())),
                Ok(n) => out = &out[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // Nothing written by this call; the next `arm` says if a deadline passed.
                Err(e) if is_timeout(&e) => {}
                Err(e) => return Err(self.fail("write to", e)),
            }
        }
        loop {
            self.arm(deadline, Direction::Write)?;
            match self.stream.flush() {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) => {}
                Err(e) => return Err(self.fail("write to", e)),
            }
        }
    }

    /// Reads until the reply to `id` is complete, before `deadline`. Pipelined requests are
    /// received in the order they were queued; a reply to an earlier request not received
    /// is dropped.
    pub(crate) fn receive(
        &mut self,
        id: RequestId,
        deadline: Option<Instant>,
    ) -> Result<Response, Error> {
        loop {
            while let Some((got, reply)) = self.conn.poll_response() {
                if got == id {
                    return reply;
                }
            }
            if let Some(reason) = self.conn.poisoned() {
                return Err(Error::Poisoned(reason.clone()));
            }
            self.arm(deadline, Direction::Read)?;
            if self.conn.poisoned().is_some() {
                // The read deadline passed: the pending reply is now an error.
                continue;
            }
            match self.stream.read(&mut self.scratch) {
                Ok(0) => self.conn.receive_eof(),
                Ok(n) => self.conn.receive(&self.scratch[..n], Instant::now()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // The socket timeout is never past a deadline: the next `arm` says which
                // one passed, if any.
                Err(e) if is_timeout(&e) => {}
                Err(e) => {
                    self.broken = true;
                    self.conn.receive_eof();
                    return Err(self.fail("read from", e));
                }
            }
        }
    }

    /// Sets the socket's timeout for the next read or write so that it cannot block past
    /// the caller's deadline or (reads) the connection's read deadline. Fails if the
    /// caller's deadline passed (`Error::Timeout`); if the read deadline did, the connection
    /// is poisoned and its pending request fails with `Poisoned(Timeout)`.
    fn arm(&mut self, deadline: Option<Instant>, direction: Direction) -> Result<(), Error> {
        let now = Instant::now();
        let mut until = deadline;
        if direction == Direction::Read {
            self.conn.handle_timeout(now);
            if let Some(at) = self.conn.poll_timeout() {
                until = Some(until.map_or(at, |d| d.min(at)));
            }
        }
        let Some(until) = until else {
            return self.set_timeout(direction, None);
        };
        if now >= until {
            // A deadline passed with the request pending: the link is never reused.
            self.broken = true;
            if deadline.is_some_and(|d| now >= d) {
                return Err(Error::Timeout);
            }
            self.conn.handle_timeout(now);
            return Ok(());
        }
        let left = until - now;
        let set = match direction {
            Direction::Read => self.read_timeout,
            Direction::Write => self.write_timeout,
        };
        // Keep the timeout in force while it does not pass the deadline and is not far
        // shorter than the time left; otherwise set a little less than the time left, so
        // that the next round trips find it still good.
        if set.is_some_and(|s| s <= left && s >= left / 2) {
            return Ok(());
        }
        let next = if left > Duration::from_millis(8) {
            left - left / 8
        } else {
            left
        };
        self.set_timeout(direction, Some(next))
    }

    fn set_timeout(&mut self, direction: Direction, d: Option<Duration>) -> Result<(), Error> {
        let (socket, slot): (&Socket, &mut Option<Duration>) = match direction {
            Direction::Read => (self.stream.socket(), &mut self.read_timeout),
            Direction::Write => (self.stream.socket(), &mut self.write_timeout),
        };
        if *slot == d {
            return Ok(());
        }
        let r = match direction {
            Direction::Read => socket.set_read_timeout(d),
            Direction::Write => socket.set_write_timeout(d),
        };
        match r {
            Ok(()) => {
                *slot = d;
                Ok(())
            }
            Err(e) => Err(self.fail("set a socket timeout with", e)),
        }
    }

    /// A transport failure while doing `what` (`"read from"`): the link is broken for good.
    fn fail(&mut self, what: &str, e: io::Error) -> Error {
        self.broken = true;
        Error::Io(IoError::new(format!("{what} {}", self.endpoint), e))
    }
}

/// Which way bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Read,
    Write,
}
