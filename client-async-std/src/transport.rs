//! Where a connection goes (TCP, unix socket, TLS) and how it is opened: connect timeout,
//! `TCP_NODELAY`, memcached's ASCII authentication.

use crate::Settings;
use async_net::unix::UnixStream;
use async_net::TcpStream;
use futures_io::{AsyncRead, AsyncWrite};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use mcache_proto::text::request::{Store, StoreCommand};
use mcache_proto::{Connection, Error, Key, Request, Response, ServerSpec};
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;
use tracing::Instrument;

/// A memcached server address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `host:port` over TCP.
    Tcp(String),
    /// A unix socket path (memcached's `-s`).
    Unix(PathBuf),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp(a) => f.write_str(a),
            Endpoint::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

impl Endpoint {
    /// How a pool's placement names this server: `host:port` as written (a bare host gets
    /// port 11211), or the socket path with port 0. Other clients sharing the pool must name
    /// it the same way ([`Builder::server_as`](crate::Builder::server_as) sets another name).
    pub fn spec(&self) -> ServerSpec {
        match self {
            Endpoint::Tcp(addr) => ServerSpec::parse(addr),
            Endpoint::Unix(path) => ServerSpec::new(path.to_string_lossy(), 0),
        }
    }
}

impl From<&str> for Endpoint {
    /// `unix:/path` or a path starting with `/` is a unix socket; anything else is `host:port`.
    fn from(s: &str) -> Self {
        if let Some(p) = s.strip_prefix("unix:") {
            Endpoint::Unix(PathBuf::from(p))
        } else if s.starts_with('/') {
            Endpoint::Unix(PathBuf::from(s))
        } else {
            Endpoint::Tcp(s.to_string())
        }
    }
}

impl From<String> for Endpoint {
    fn from(s: String) -> Self {
        Endpoint::from(s.as_str())
    }
}

impl From<std::net::SocketAddr> for Endpoint {
    fn from(a: std::net::SocketAddr) -> Self {
        Endpoint::Tcp(a.to_string())
    }
}

/// An open connection's byte stream.
pub(crate) enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
    #[cfg(feature = "tls")]
    Tls(Box<futures_rustls::client::TlsStream<TcpStream>>),
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            Stream::Tcp($s) => {
                let $s = Pin::new($s);
                $e
            }
            Stream::Unix($s) => {
                let $s = Pin::new($s);
                $e
            }
            #[cfg(feature = "tls")]
            Stream::Tls($s) => {
                let $s = Pin::new($s.as_mut());
                $e
            }
        }
    };
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => s.poll_read(cx, buf))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => s.poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_flush(cx))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_close(cx))
    }
}

/// Opens a connection, within the connect timeout, and authenticates if configured.
pub(crate) async fn connect(endpoint: &Endpoint, settings: &Settings) -> Result<Stream, Error> {
    let open = async {
        let mut stream = open(endpoint, settings).await?;
        if let Some((user, pass)) = &settings.auth {
            authenticate(&mut stream, user, pass, settings).await?;
        }
        Ok::<_, Error>(stream)
    };
    let timeout = async {
        async_io::Timer::after(settings.connect_timeout).await;
        Err(Error::Io(format!("connect to {endpoint} timed out")))
    };
    futures_lite::future::or(open, timeout).await
}

fn io_err(endpoint: &Endpoint, e: io::Error) -> Error {
    Error::Io(format!("{endpoint}: {e}"))
}

async fn open(endpoint: &Endpoint, settings: &Settings) -> Result<Stream, Error> {
    let span = tracing::debug_span!("connect", %endpoint);
    open_inner(endpoint, settings).instrument(span).await
}

async fn open_inner(endpoint: &Endpoint, settings: &Settings) -> Result<Stream, Error> {
    match endpoint {
        Endpoint::Tcp(addr) => {
            let tcp = TcpStream::connect(addr.as_str())
                .await
                .map_err(|e| io_err(endpoint, e))?;
            tcp.set_nodelay(true).map_err(|e| io_err(endpoint, e))?;
            #[cfg(feature = "tls")]
            if let Some(tls) = &settings.tls {
                return tls
                    .connect(addr, tcp)
                    .await
                    .map_err(|e| io_err(endpoint, e));
            }
            let _ = settings;
            Ok(Stream::Tcp(tcp))
        }
        Endpoint::Unix(path) => Ok(Stream::Unix(
            UnixStream::connect(path)
                .await
                .map_err(|e| io_err(endpoint, e))?,
        )),
    }
}

/// memcached's ASCII authentication (`-Y`): a `set` whose value is `user pass`.
async fn authenticate(
    stream: &mut Stream,
    user: &str,
    pass: &str,
    settings: &Settings,
) -> Result<(), Error> {
    let mut conn = Connection::new(settings.connection.clone());
    conn.send(Request::Store(Store {
        command: StoreCommand::Set,
        key: Key::new("auth")?,
        flags: 0,
        exptime: 0,
        value: format!("{user} {pass}").into(),
        noreply: false,
    }))?;
    let out = conn.transmit().to_vec();
    conn.advance_transmit(out.len(), Instant::now());
    let io = |e: io::Error| Error::Io(format!("authentication: {e}"));
    stream.write_all(&out).await.map_err(io)?;
    stream.flush().await.map_err(io)?;
    let mut buf = [0u8; 512];
    loop {
        if let Some((_, reply)) = conn.poll_response() {
            return match reply? {
                Response::Stored => Ok(()),
                other => Err(Error::UnexpectedResponse {
                    command: "authentication",
                    response: other.describe(),
                }),
            };
        }
        let n = stream.read(&mut buf).await.map_err(io)?;
        if n == 0 {
            conn.receive_eof();
        } else {
            conn.receive(&buf[..n], Instant::now());
        }
    }
}
