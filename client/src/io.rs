//! [`ByteStream`]: one open connection's bytes, whatever the runtime and transport (TCP, unix
//! socket, TLS over either). The driver reads and writes through it and nothing else.

use bytes::BytesMut;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A connected byte stream. Implemented by the adapters for their sockets (directly, or
/// through [`FuturesIo`] for any `futures-io` type), by this crate's TLS layer, and by
/// in-memory streams in tests.
pub trait ByteStream: Send + 'static {
    /// Reads into `buf`, as `std::io::Read::read`; `Ok(0)` is the end of the stream.
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>>;

    /// Reads, appending to `buf`; `Ok(0)` is the end of the stream. `max` is the room the
    /// caller offers (it reserved at least that much).
    ///
    /// The provided method zeroes `max` bytes of room first and calls
    /// [`ByteStream::poll_read`], so the caller keeps `max` small while reads are small. A
    /// stream that can read into uninitialised capacity overrides it and may fill all of
    /// `buf`'s spare capacity, which costs it nothing.
    fn poll_read_buf(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
        max: usize,
    ) -> Poll<io::Result<usize>> {
        let start = buf.len();
        buf.resize(start + max, 0);
        let r = self.poll_read(cx, &mut buf[start..]);
        let n = match &r {
            Poll::Ready(Ok(n)) => *n,
            _ => 0,
        };
        buf.truncate(start + n);
        r
    }

    /// Writes from `buf`, as `std::io::Write::write`.
    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>>;

    /// Writes from several buffers in order, as `std::io::Write::write_vectored`; returns how
    /// many bytes were written. The default writes the first non-empty buffer only; streams
    /// over sockets override it with one `writev`.
    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match bufs.iter().find(|b| !b.is_empty()) {
            Some(buf) => self.poll_write(cx, buf),
            None => Poll::Ready(Ok(0)),
        }
    }

    /// Sends what the stream buffers (a TLS record); a no-op for plain sockets.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
}

/// Any `futures-io` stream (async-io, async-net, futures-rustls, …) as a [`ByteStream`],
/// and any [`ByteStream`] as a `futures-io` stream (for layering TLS over it).
#[derive(Debug)]
pub struct FuturesIo<T>(pub T);

impl<T> ByteStream for FuturesIo<T>
where
    T: futures_io::AsyncRead + futures_io::AsyncWrite + Unpin + Send + 'static,
{
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
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

/// A [`ByteStream`] seen through `futures-io`'s traits.
#[cfg_attr(not(feature = "tls"), allow(dead_code))]
pub(crate) struct AsFuturesIo(pub(crate) Box<dyn ByteStream>);

impl futures_io::AsyncRead for AsFuturesIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().0.poll_read(cx, buf)
    }
}

impl futures_io::AsyncWrite for AsFuturesIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().0.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().0.poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().0.poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().0.poll_flush(cx)
    }
}
