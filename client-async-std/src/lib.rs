//! # mcache-async-std
//!
//! memcached for async-std and smol: the one mcache client ([`mcache_client`]) on the
//! `async-io` reactor, which both executors share. This crate only says how a task is
//! spawned ([`AsyncIo::async_std`] or [`AsyncIo::smol`]), and lends async-io's timers and
//! async-net's sockets; the driver, pools, deadlines, reconnects and TLS are the client
//! core's, the protocol is [`mcache_proto`](proto)'s.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = mcache_testkit::Memcached::start()?;
//! # let addr = server.host_port_string();
//! # async_std::task::block_on(async {
//! use mcache_async_std::{Client, Connect, Memcache};
//!
//! let client = Client::connect(addr.as_str()).await?;
//! client.set("greeting", "hello", 0).await?;
//! let got = client.get("greeting").await?;
//! assert_eq!(got.map(|v| v.data), Some("hello".into()));
//! # Ok::<(), mcache_async_std::Error>(())
//! # })?;
//! # Ok(())
//! # }
//! ```
//!
//! - Features: `async-std` (default) spawns connection tasks on async-std's executor, `smol`
//!   on smol's global executor. [`Connect`] (`Client::connect`, `Client::builder`) uses
//!   async-std's when that feature is on, else smol's; with both on, pick with
//!   `Builder::new(AsyncIo::smol())`.
//! - [`Client`] is the same type as `mcache_client::Client` and `mcache_tokio::Client`.
//! - `tls`: TLS through the client core's rustls layer.

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::future::Future as _;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

pub use mcache_client::*;

/// The shorthands most programs need: `use mcache_async_std::prelude::*;`.
pub mod prelude {
    pub use super::{Client, Connect, Memcache};
}

#[cfg(feature = "async-std")]
mcache_client::adapter_constructors!(Connect, AsyncIo::async_std);

#[cfg(all(feature = "smol", not(feature = "async-std")))]
mcache_client::adapter_constructors!(Connect, AsyncIo::smol);

#[cfg(not(any(feature = "async-std", feature = "smol")))]
compile_error!(
    "mcache-async-std needs the `async-std` or the `smol` feature to spawn its connection tasks"
);

/// The `async-io` reactor as the client's [`Runtime`], with the executor that runs the
/// connection tasks.
#[derive(Clone, Copy)]
pub struct AsyncIo {
    executor: &'static str,
    spawn: fn(BoxFuture<'static, ()>),
}

impl std::fmt::Debug for AsyncIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AsyncIo({})", self.executor)
    }
}

impl AsyncIo {
    /// Connection tasks on async-std's executor.
    #[cfg(feature = "async-std")]
    #[cfg_attr(docsrs, doc(cfg(feature = "async-std")))]
    pub fn async_std() -> Arc<dyn Runtime> {
        Arc::new(AsyncIo {
            executor: "async-std",
            spawn: |f| drop(async_std::task::spawn(f)),
        })
    }

    /// Connection tasks on smol's global executor.
    #[cfg(feature = "smol")]
    #[cfg_attr(docsrs, doc(cfg(feature = "smol")))]
    pub fn smol() -> Arc<dyn Runtime> {
        Arc::new(AsyncIo {
            executor: "smol",
            spawn: |f| smol::spawn(f).detach(),
        })
    }
}

impl Runtime for AsyncIo {
    fn spawn(&self, future: BoxFuture<'static, ()>) {
        (self.spawn)(future);
    }

    fn timer(&self, at: Instant) -> Pin<Box<dyn Timer>> {
        Box::pin(After(async_io::Timer::at(at)))
    }

    fn connect_tcp<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<Box<dyn ByteStream>>> {
        Box::pin(tcp(addr))
    }

    fn connect_unix<'a>(
        &'a self,
        path: &'a Path,
    ) -> BoxFuture<'a, io::Result<Box<dyn ByteStream>>> {
        Box::pin(unix(path.to_path_buf()))
    }
}

/// A TCP connection through async-net, with `TCP_NODELAY`.
async fn tcp(addr: &str) -> io::Result<Box<dyn ByteStream>> {
    let stream = async_net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(Box::new(Io::new(stream)))
}

/// A unix-socket connection through async-net.
async fn unix(path: std::path::PathBuf) -> io::Result<Box<dyn ByteStream>> {
    let stream = async_net::unix::UnixStream::connect(path).await?;
    Ok(Box::new(Io::new(stream)))
}

/// Most bytes a read takes through [`Io`]'s scratch buffer: replies of small values (a large
/// value's block, read into room sized from its header, gains nothing from a copy).
const SCRATCH: usize = 16 * 1024;

/// A futures-io socket as a [`ByteStream`]. Safe code cannot read into uninitialised room, so
/// [`FuturesIo`] zeroes the room it offers on every read; this reads into a scratch buffer
/// zeroed once (at most [`SCRATCH`] bytes per connection, taken on the first read) and copies
/// what arrived: a small reply costs a copy of its bytes, not a 4-16 KiB memset. Larger reads
/// (a large value's block, sized from its header) go the zeroing way.
struct Io<T> {
    io: FuturesIo<T>,
    scratch: Vec<u8>,
}

impl<T> Io<T> {
    fn new(io: T) -> Io<T> {
        Io {
            io: FuturesIo(io),
            scratch: Vec::new(),
        }
    }
}

impl<T> ByteStream for Io<T>
where
    T: futures_io::AsyncRead + futures_io::AsyncWrite + Unpin + Send + 'static,
{
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.io.poll_read(cx, buf)
    }

    fn poll_read_buf(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut bytes::BytesMut,
        max: usize,
    ) -> Poll<io::Result<usize>> {
        if max > SCRATCH {
            return self.io.poll_read_buf(cx, buf, max);
        }
        if self.scratch.is_empty() {
            self.scratch = vec![0; SCRATCH];
        }
        let r = self.io.poll_read(cx, &mut self.scratch[..max]);
        if let Poll::Ready(Ok(n)) = r {
            buf.extend_from_slice(&self.scratch[..n]);
        }
        r
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.io.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.io.poll_write_vectored(cx, bufs)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.poll_flush(cx)
    }
}

/// async-io's timer as a [`Timer`].
struct After(async_io::Timer);

impl Timer for After {
    fn reset(self: Pin<&mut Self>, at: Instant) {
        self.get_mut().0.set_at(at);
    }

    fn poll_fire(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.get_mut().0).poll(cx).map(drop)
    }
}
