//! The byte streams of the blocking client: a TCP or unix socket from std, with TLS through
//! rustls's blocking [`StreamOwned`](rustls::StreamOwned) over it when configured. Opening one
//! (connect, TLS handshake, authentication) is bounded by the connect timeout, enforced with
//! socket timeouts. This file knows sockets, never the protocol (authentication is one
//! [`Link`](super::link::Link) round trip).

use crate::endpoint::Endpoint;
use crate::settings::Settings;
use mcache_proto::{Error, IoError};
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

#[cfg(feature = "tls")]
use futures_rustls::rustls;

/// A connected socket.
#[derive(Debug)]
pub(crate) enum Socket {
    /// TCP, with `TCP_NODELAY`.
    Tcp(TcpStream),
    /// A unix stream socket.
    Unix(UnixStream),
}

impl Socket {
    /// Sets how long one read may block (`None`: forever).
    pub(crate) fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.set_read_timeout(d),
            Socket::Unix(s) => s.set_read_timeout(d),
        }
    }

    /// Sets how long one write may block (`None`: forever).
    pub(crate) fn set_write_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.set_write_timeout(d),
            Socket::Unix(s) => s.set_write_timeout(d),
        }
    }
}

/// A byte stream of std.
trait Io: Read + Write {}

impl<T: Read + Write> Io for T {}

impl Socket {
    fn io(&mut self) -> &mut dyn Io {
        match self {
            Socket::Tcp(s) => s,
            Socket::Unix(s) => s,
        }
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.io().read(buf)
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.io().write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What a connection reads and writes: the socket itself, or TLS over it.
#[derive(Debug)]
pub(crate) enum Stream {
    /// Plain bytes.
    Plain(Socket),
    /// TLS (boxed: rustls's session is large).
    #[cfg(feature = "tls")]
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, Socket>>),
}

impl Stream {
    /// The socket under the stream (where timeouts are set).
    pub(crate) fn socket(&self) -> &Socket {
        match self {
            Stream::Plain(s) => s,
            #[cfg(feature = "tls")]
            Stream::Tls(t) => &t.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(t) => t.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(t) => t.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(_) => Ok(()),
            #[cfg(feature = "tls")]
            Stream::Tls(t) => t.flush(),
        }
    }
}

/// Whether an IO error is a socket timeout (std reports an expired `SO_RCVTIMEO` /
/// `SO_SNDTIMEO` as `WouldBlock` on unix, `TimedOut` elsewhere).
pub(crate) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// The time left until `deadline`, or a `TimedOut` error naming `what`.
pub(crate) fn left(deadline: Instant, what: &dyn Fn() -> String) -> Result<Duration, Error> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(Error::Io(IoError::from_kind(
            what(),
            io::ErrorKind::TimedOut,
        )));
    }
    Ok(left)
}

/// Opens a socket to `endpoint` (and TLS over it if configured) before `deadline`; the
/// socket's timeouts are left at the time remaining, for the handshake and authentication.
pub(crate) fn open(
    endpoint: &Endpoint,
    settings: &Settings,
    deadline: Instant,
) -> Result<Stream, Error> {
    let what = || {
        format!(
            "connect to {endpoint}: no connection within {:?}",
            settings.connect_timeout
        )
    };
    let io_err = |e: io::Error| match is_timeout(&e) {
        true => Error::Io(IoError::from_kind(what(), io::ErrorKind::TimedOut)),
        false => Error::Io(IoError::new(format!("connect to {endpoint}"), e)),
    };
    let socket = match endpoint {
        Endpoint::Tcp(addr) => Socket::Tcp(tcp(addr, deadline, &what).map_err(io_err)?),
        Endpoint::Unix(path) => Socket::Unix(UnixStream::connect(path).map_err(io_err)?),
    };
    let budget = Some(left(deadline, &what)?);
    socket.set_read_timeout(budget).map_err(io_err)?;
    socket.set_write_timeout(budget).map_err(io_err)?;
    #[cfg(feature = "tls")]
    if let Some(tls) = &settings.tls {
        // The builder refused TLS without a name to check the certificate against.
        let name = tls.name_for(endpoint.host()).unwrap_or_default();
        let tls_err = |e: io::Error| match is_timeout(&e) {
            true => io_err(e),
            false => Error::Io(IoError::new(format!("TLS with {endpoint}"), e)),
        };
        let mut stream = rustls::StreamOwned::new(tls.session(name).map_err(tls_err)?, socket);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock).map_err(tls_err)?;
        }
        return Ok(Stream::Tls(Box::new(stream)));
    }
    Ok(Stream::Plain(socket))
}

/// Connects to the first address of `addr` that answers, each attempt within the time left.
fn tcp(addr: &str, deadline: Instant, what: &dyn Fn() -> String) -> io::Result<TcpStream> {
    let mut last = None;
    for a in addr.to_socket_addrs()? {
        let Ok(budget) = left(deadline, what) else {
            break;
        };
        match TcpStream::connect_timeout(&a, budget) {
            Ok(s) => {
                s.set_nodelay(true)?;
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| match Instant::now() < deadline {
        true => io::Error::new(io::ErrorKind::NotFound, "the name has no address"),
        false => io::Error::from(io::ErrorKind::TimedOut),
    }))
}
