//! Opening a connection: TCP or unix socket through the [`Runtime`], TLS over it if
//! configured, then memcached's ASCII authentication, all within the connect timeout.

use crate::endpoint::Endpoint;
use crate::io::ByteStream;
use crate::runtime::{timeout, Runtime};
use crate::settings::Settings;
use mcache_proto::commands::{Call, Finish};
use mcache_proto::{Connection, Error, IoError};
use std::future::poll_fn;
use std::io;
use tracing::Instrument;

/// Opens a connection to `endpoint`, within the connect timeout, and authenticates if
/// configured.
pub(crate) async fn connect(
    rt: &dyn Runtime,
    endpoint: &Endpoint,
    settings: &Settings,
) -> Result<Box<dyn ByteStream>, Error> {
    let deadline = rt.now() + settings.connect_timeout;
    let open = async {
        let mut stream = open(rt, endpoint, settings).await?;
        if let Some((user, pass)) = &settings.auth {
            authenticate(&mut stream, user, pass, settings).await?;
        }
        Ok(stream)
    };
    let span = tracing::debug_span!("connect", %endpoint);
    match timeout(rt, deadline, open.instrument(span)).await {
        Some(r) => r,
        None => Err(Error::Io(IoError::from_kind(
            format!(
                "connect to {endpoint}: no connection within {:?}",
                settings.connect_timeout
            ),
            io::ErrorKind::TimedOut,
        ))),
    }
}

async fn open(
    rt: &dyn Runtime,
    endpoint: &Endpoint,
    settings: &Settings,
) -> Result<Box<dyn ByteStream>, Error> {
    let io_err = |e: io::Error| Error::Io(IoError::new(format!("connect to {endpoint}"), e));
    let stream = match endpoint {
        Endpoint::Tcp(addr) => rt.connect_tcp(addr).await.map_err(io_err)?,
        Endpoint::Unix(path) => rt.connect_unix(path).await.map_err(io_err)?,
    };
    #[cfg(feature = "tls")]
    if let Some(tls) = &settings.tls {
        // The builder refused TLS without a name to check the certificate against.
        let name = tls.name_for(endpoint.host()).unwrap_or_default();
        let tls_err = |e: io::Error| Error::Io(IoError::new(format!("TLS with {endpoint}"), e));
        return tls.handshake(name, stream).await.map_err(tls_err);
    }
    let _ = settings;
    Ok(stream)
}

/// memcached's ASCII authentication (`-Y`), as proto defines it.
async fn authenticate(
    stream: &mut Box<dyn ByteStream>,
    user: &str,
    pass: &str,
    settings: &Settings,
) -> Result<(), Error> {
    let Call::Send { request, finish } = mcache_proto::commands::auth(user, pass)? else {
        return Ok(());
    };
    let mut conn = Connection::new(settings.connection.clone());
    conn.send(request)?;
    let io_err = |e: io::Error| Error::Io(IoError::new("authentication", e));
    let now = std::time::Instant::now();
    while let Some(out) = conn.take_transmit(now) {
        let mut out = &out[..];
        while !out.is_empty() {
            let n = poll_fn(|cx| stream.poll_write(cx, out))
                .await
                .map_err(io_err)?;
            if n == 0 {
                return Err(io_err(io::ErrorKind::WriteZero.into()));
            }
            out = &out[n..];
        }
    }
    poll_fn(|cx| stream.poll_flush(cx)).await.map_err(io_err)?;
    let mut buf = [0u8; 512];
    loop {
        if let Some((_, reply)) = conn.poll_response() {
            return finish.finish(reply?);
        }
        let n = poll_fn(|cx| stream.poll_read(cx, &mut buf))
            .await
            .map_err(io_err)?;
        if n == 0 {
            conn.receive_eof();
        } else {
            conn.receive(&buf[..n], now);
        }
    }
}
