//! # mcache-tokio
//!
//! memcached for tokio: the one mcache client ([`mcache_client`]) on tokio's runtime. This
//! crate only says how tokio spawns a task, keeps a timer and opens a socket ([`Tokio`]);
//! the driver, pools, deadlines, reconnects and TLS are the client core's, the protocol is
//! [`mcache_proto`](proto)'s.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = mcache_testkit::Memcached::start()?;
//! # let addr = server.host_port_string();
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! use mcache_tokio::{Client, Connect, Memcache};
//!
//! let client = Client::connect(addr.as_str()).await?;
//! client.set("greeting", "hello", 0).await?;
//! let got = client.get("greeting").await?;
//! assert_eq!(got.map(|v| v.data), Some("hello".into()));
//! # Ok::<(), mcache_tokio::Error>(())
//! # })?;
//! # Ok(())
//! # }
//! ```
//!
//! - [`Client::connect`](Connect::connect) for one server, [`Client::builder`](Connect::builder)
//!   for connections, timeouts, bounds, unix sockets, TLS (feature `tls`), ASCII
//!   authentication, pools of servers and twemproxy. [`Connect`] (also in [`prelude`]) puts
//!   both on [`Client`].
//! - [`Client`] is the same type as `mcache_client::Client` and `mcache_async_std::Client`:
//!   enabling another runtime's crate never changes a type.
//! - Every operation comes from the [`Memcache`] trait: `get`, `set`, `get_multi`, `cas`,
//!   `meta_get`, … Dropping a future at any point is safe: its reply is read and discarded,
//!   and the connection stays in step.
//! - Connection tasks are spawned on the tokio runtime that is current when the client is
//!   built (`Client::connect` and `Builder::build` must run inside one).

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

use bytes::BytesMut;
use std::future::Future as _;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub use mcache_client::*;

/// The shorthands most programs need: `use mcache_tokio::prelude::*;`.
pub mod prelude {
    pub use super::{Client, Connect, Memcache};
}

mcache_client::adapter_constructors!(Connect, Tokio::runtime);

/// tokio as the client's [`Runtime`]: tasks on the runtime that was current when it was made,
/// tokio's timers, tokio's TCP and unix sockets.
#[derive(Debug, Clone)]
pub struct Tokio {
    handle: Option<tokio::runtime::Handle>,
}

impl Tokio {
    /// The runtime for the tokio runtime current on this thread (or, outside one, whichever
    /// is current when a task is spawned).
    pub fn runtime() -> Arc<dyn Runtime> {
        Arc::new(Tokio {
            handle: tokio::runtime::Handle::try_current().ok(),
        })
    }
}

impl Runtime for Tokio {
    fn spawn(&self, future: BoxFuture<'static, ()>) {
        match &self.handle {
            Some(handle) => drop(handle.spawn(future)),
            None => drop(tokio::spawn(future)),
        }
    }

    fn timer(&self, at: Instant) -> Pin<Box<dyn Timer>> {
        // A timer belongs to a runtime's time driver: enter the client's, wherever this runs.
        let _entered = self.handle.as_ref().map(tokio::runtime::Handle::enter);
        Box::pin(Sleep(Box::pin(tokio::time::sleep_until(at.into()))))
    }

    fn single_threaded(&self) -> bool {
        let flavor = match &self.handle {
            Some(handle) => handle.runtime_flavor(),
            None => match tokio::runtime::Handle::try_current() {
                Ok(handle) => handle.runtime_flavor(),
                Err(_) => return false,
            },
        };
        flavor == tokio::runtime::RuntimeFlavor::CurrentThread
    }

    fn connect_tcp<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<Box<dyn ByteStream>>> {
        Box::pin(async move {
            let tcp = tokio::net::TcpStream::connect(addr).await?;
            tcp.set_nodelay(true)?;
            Ok(Box::new(Io(tcp)) as Box<dyn ByteStream>)
        })
    }

    fn connect_unix<'a>(
        &'a self,
        path: &'a Path,
    ) -> BoxFuture<'a, io::Result<Box<dyn ByteStream>>> {
        Box::pin(async move {
            let unix = tokio::net::UnixStream::connect(path).await?;
            Ok(Box::new(Io(unix)) as Box<dyn ByteStream>)
        })
    }
}

/// tokio's `Sleep` as a [`Timer`].
struct Sleep(Pin<Box<tokio::time::Sleep>>);

impl Timer for Sleep {
    fn reset(self: Pin<&mut Self>, at: Instant) {
        self.get_mut().0.as_mut().reset(at.into());
    }

    fn poll_fire(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.get_mut().0.as_mut().poll(cx)
    }
}

/// A tokio socket as a [`ByteStream`]: reads go straight into the driver's buffer, without
/// zeroing it first.
struct Io<T>(T);

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> ByteStream for Io<T> {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut buf = ReadBuf::new(buf);
        Pin::new(&mut self.0)
            .poll_read(cx, &mut buf)
            .map_ok(|()| buf.filled().len())
    }

    fn poll_read_buf(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
        max: usize,
    ) -> Poll<io::Result<usize>> {
        // Into uninitialised room (which costs nothing), at most `max` bytes.
        let mut room = bytes::BufMut::limit(buf, max);
        tokio_util::io::poll_read_buf(Pin::new(&mut self.0), cx, &mut room)
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
}
