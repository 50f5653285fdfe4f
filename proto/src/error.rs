//! Error types: one enum per concern.
//!
//! - [`KeyError`]: a key the protocol cannot carry (checked before anything is written).
//! - [`EncodeError`]: a request or response that cannot be put on the wire as asked.
//! - [`DecodeError`]: bytes that are not a frame of the protocol (the stream is then unusable).
//! - [`Error`]: what a caller of [`Connection`](crate::Connection) or a client sees: one of
//!   the above, a reply from the server that means failure, the loss of the connection, a
//!   server that cannot be reached ([`IoError`]) or is out, or a configuration that cannot
//!   work.

use bytes::Bytes;
use std::fmt;
use std::sync::Arc;

/// How many bytes of offending input an error keeps, at most.
pub const ERROR_CONTEXT_LEN: usize = 64;

/// A short copy of offending bytes, printed escaped (`\r`, `\n`, `\xNN`).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Snippet(Bytes);

impl Snippet {
    /// Copies at most [`ERROR_CONTEXT_LEN`] bytes of `bytes`.
    pub fn new(bytes: &[u8]) -> Self {
        let end = bytes.len().min(ERROR_CONTEXT_LEN);
        Snippet(Bytes::copy_from_slice(&bytes[..end]))
    }

    /// The bytes kept.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Snippet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0.escape_ascii())
    }
}

impl fmt::Display for Snippet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.escape_ascii())
    }
}

/// Why a key was refused.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Keys have at least one byte.
    #[error("key is empty")]
    Empty,
    /// Keys have at most 250 bytes on the wire (for binary keys: 186 raw bytes, 248 in base64).
    #[error("key is {len} bytes on the wire, the limit is 250")]
    TooLong {
        /// Length on the wire (after base64 for binary keys).
        len: usize,
    },
    /// A text key may not hold whitespace, control bytes or DEL: they would split the command
    /// line, or inject a second command. Use a binary key for arbitrary bytes.
    #[error("key byte {byte:#04x} at offset {offset} is not allowed (space, control or DEL); use a binary key")]
    InvalidByte {
        /// The offending byte.
        byte: u8,
        /// Where it is in the key.
        offset: usize,
    },
    /// A binary key (meta `b` flag) was not valid padded base64.
    #[error("binary key is not valid base64")]
    InvalidBase64,
    /// Text commands cannot carry binary keys; only the meta commands can (`b` flag).
    #[error("binary keys can only be sent with meta commands")]
    BinaryInTextCommand,
}

/// A request or response that cannot be encoded.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The key is not valid.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The value is larger than the configured maximum.
    #[error("value of {len} bytes is over the {max}-byte limit")]
    ValueTooLarge {
        /// The value's length.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// A request line would exceed the server's 2048-byte limit (only `get`/`gets` lines may).
    #[error("request line of {len} bytes is over the server's {max}-byte limit")]
    LineTooLong {
        /// Length of the line, with its `\r\n`.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A retrieval command needs at least one key.
    #[error("{command} needs at least one key")]
    NoKeys {
        /// The command.
        command: &'static str,
    },
    /// A token (stats argument, opaque, message) holds bytes that would break the line.
    #[error("invalid {what}: {bytes}")]
    InvalidToken {
        /// What the token is.
        what: &'static str,
        /// The offending bytes.
        bytes: Snippet,
    },
    /// The proxy the client talks through cannot carry this command (twemproxy closes the
    /// connection on meta commands, `gat`, `stats`, ...); it was refused before sending.
    #[error("{command} cannot go through {proxy} ({why}): refused before sending")]
    NotCarriedByProxy {
        /// The command.
        command: &'static str,
        /// The proxy ([`ProxyKind::name`](crate::pool::ProxyKind::name)).
        proxy: &'static str,
        /// Why: the command is not supported, or one of its arguments is not.
        why: &'static str,
    },
}

/// What went wrong while decoding bytes from the wire.
///
/// After a decode error the byte stream cannot be trusted: the connection is poisoned.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A line longer than the configured limit, without its end in sight.
    #[error("line longer than {max} bytes")]
    LineTooLong {
        /// The limit.
        max: usize,
    },
    /// A declared data length over the configured value limit (checked before any allocation).
    #[error("declared value length {len} is over the {max}-byte limit")]
    ValueTooLarge {
        /// The declared length.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// A data block not followed by `\r\n`.
    #[error("data block not terminated by \\r\\n: {found}")]
    BadDataTerminator {
        /// The bytes found where `\r\n` was expected.
        found: Snippet,
    },
    /// A line that is not what the protocol allows here.
    #[error("unexpected line{}: {line}", if expected.is_empty() { String::new() } else { format!(" (expected {expected})") })]
    Unexpected {
        /// What would have been valid.
        expected: &'static str,
        /// The offending line, truncated.
        line: Snippet,
    },
    /// A numeric field that does not parse or is out of range.
    #[error("invalid number in {field}: {found}")]
    InvalidNumber {
        /// The field.
        field: &'static str,
        /// The bytes found.
        found: Snippet,
    },
    /// A key that is not valid.
    #[error("invalid key in frame: {0}")]
    Key(#[from] KeyError),
    /// A reply that does not answer the request it must answer (a key or opaque that
    /// does not match, more values than keys).
    #[error("response does not match its request: {reason}")]
    Mismatch {
        /// What did not match.
        reason: &'static str,
    },
    /// Too many lines or values in one response.
    #[error("response has more than {max} entries")]
    TooManyEntries {
        /// The limit.
        max: usize,
    },
    /// A reply whose values and lines would pass the configured total
    /// ([`Limits::max_reply_len`](crate::Limits::max_reply_len)); refused before the bytes
    /// over the limit are buffered.
    #[error("response holds more than {max} bytes of values and lines")]
    ReplyTooLarge {
        /// The limit.
        max: usize,
    },
}

/// Why a connection can no longer be used.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoisonReason {
    /// The server sent bytes that are not a valid response.
    #[error("malformed response: {0}")]
    Malformed(DecodeError),
    /// The server answered a command that carries a data block with `ERROR` or `CLIENT_ERROR`:
    /// the data block may have been executed as a command, so the stream is out of step.
    #[error("server rejected a storage command: the stream may be out of step")]
    StorageRejected,
    /// A quiet or `noreply` request was followed by an error line that could belong to it or to a
    /// later request.
    #[error("an error line could not be attributed to a single request")]
    AmbiguousError,
    /// The peer closed the connection, or the transport failed.
    #[error("connection closed")]
    Closed,
    /// The server did not answer within the read timeout.
    #[error("server did not answer within the read timeout")]
    Timeout,
    /// The request `quit` was sent.
    #[error("connection was told to quit")]
    Quit,
}

/// The errors a caller sees.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The request could not be encoded; nothing was sent.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The server replied `ERROR` (unknown command or malformed line).
    #[error("server replied ERROR{}", fmt_msg(.0))]
    Protocol(Bytes),
    /// The server replied `CLIENT_ERROR <message>`.
    #[error("server replied CLIENT_ERROR{}", fmt_msg(.0))]
    Client(Bytes),
    /// The server replied `SERVER_ERROR <message>`.
    #[error("server replied SERVER_ERROR{}", fmt_msg(.0))]
    Server(Bytes),
    /// The reply was valid but not one this operation can have (for example `STORED` to a get).
    #[error("unexpected response to {command}: {response}")]
    UnexpectedResponse {
        /// The command sent.
        command: &'static str,
        /// A description of the response.
        response: String,
    },
    /// The connection is unusable; every pending request fails with this.
    #[error("connection poisoned: {0}")]
    Poisoned(PoisonReason),
    /// The caller's own deadline passed (set by a client).
    #[error("request timed out")]
    Timeout,
    /// The transport failed: connect, read or write (set by a client).
    #[error("io error: {0}")]
    Io(IoError),
    /// The server is unavailable (down, reconnecting or ejected); nothing was sent. The
    /// message names the server and why.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The client's configuration cannot work (no server, TLS over a unix socket, ...).
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// A transport failure: what was being done, the [`std::io::ErrorKind`], and the
/// [`std::io::Error`] itself when there is one (shared, so the error stays `Clone`).
///
/// Two `IoError`s are equal when their kind, context and source's message are.
///
/// ```
/// use mcache_proto::IoError;
/// use std::io::ErrorKind;
/// let e = IoError::new("connect 10.0.0.1:11211", std::io::Error::from(ErrorKind::ConnectionRefused));
/// assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
/// assert!(e.to_string().starts_with("connect 10.0.0.1:11211: "));
/// let t = IoError::from_kind("connect 10.0.0.1:11211", ErrorKind::TimedOut);
/// assert_eq!(t.to_string(), "connect 10.0.0.1:11211: timed out");
/// ```
#[derive(Debug, Clone)]
pub struct IoError {
    context: String,
    kind: std::io::ErrorKind,
    source: Option<Arc<std::io::Error>>,
}

impl IoError {
    /// `source` happened while doing `context` (for example `"connect 10.0.0.1:11211"`).
    pub fn new(context: impl Into<String>, source: std::io::Error) -> IoError {
        IoError {
            context: context.into(),
            kind: source.kind(),
            source: Some(Arc::new(source)),
        }
    }

    /// A failure of this kind without an underlying error (for example
    /// [`TimedOut`](std::io::ErrorKind::TimedOut) when a connect takes too long).
    pub fn from_kind(context: impl Into<String>, kind: std::io::ErrorKind) -> IoError {
        IoError {
            context: context.into(),
            kind,
            source: None,
        }
    }

    /// The kind of failure.
    pub fn kind(&self) -> std::io::ErrorKind {
        self.kind
    }

    /// What was being done.
    pub fn context(&self) -> &str {
        &self.context
    }
}

impl From<std::io::Error> for IoError {
    /// Context `"io"`.
    fn from(source: std::io::Error) -> IoError {
        IoError::new("io", source)
    }
}

impl PartialEq for IoError {
    fn eq(&self, other: &IoError) -> bool {
        self.kind == other.kind
            && self.context == other.context
            && match (&self.source, &other.source) {
                (None, None) => true,
                (Some(a), Some(b)) => a.to_string() == b.to_string(),
                _ => false,
            }
    }
}

impl Eq for IoError {}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(source) => write!(f, "{}: {source}", self.context),
            None => write!(f, "{}: {}", self.context, self.kind),
        }
    }
}

impl std::error::Error for IoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

fn fmt_msg(msg: &Bytes) -> String {
    if msg.is_empty() {
        String::new()
    } else {
        format!(" {}", msg.escape_ascii())
    }
}

impl From<KeyError> for Error {
    fn from(e: KeyError) -> Self {
        Error::Encode(EncodeError::Key(e))
    }
}

impl From<IoError> for Error {
    fn from(e: IoError) -> Self {
        Error::Io(e)
    }
}

impl Error {
    /// Whether the error says the server reported a failure for this request only (the
    /// connection is fine and other requests are unaffected).
    pub fn is_server_reply(&self) -> bool {
        matches!(
            self,
            Error::Protocol(_) | Error::Client(_) | Error::Server(_)
        )
    }

    /// Whether a deadline passed: the caller's ([`Error::Timeout`]), the connection's read
    /// timeout ([`PoisonReason::Timeout`]), or the transport's
    /// ([`std::io::ErrorKind::TimedOut`], for example a connect timeout).
    pub fn is_timeout(&self) -> bool {
        match self {
            Error::Timeout | Error::Poisoned(PoisonReason::Timeout) => true,
            Error::Io(e) => e.kind() == std::io::ErrorKind::TimedOut,
            _ => false,
        }
    }

    /// Whether the server could not serve the request: it is out or unreachable
    /// ([`Error::Unavailable`], [`Error::Io`]), or the connection was closed or stopped
    /// answering ([`PoisonReason::Closed`], [`PoisonReason::Timeout`]). The same request may
    /// succeed later, or on another server.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Error::Unavailable(_)
                | Error::Io(_)
                | Error::Poisoned(PoisonReason::Closed | PoisonReason::Timeout)
        )
    }

    /// Whether the error counts against the server's health
    /// ([`pool::is_server_failure`](crate::pool::is_server_failure)): the transport failed
    /// ([`Error::Io`]), the server is unavailable ([`Error::Unavailable`]), a deadline passed
    /// ([`Error::Timeout`], [`PoisonReason::Timeout`]) or the connection was closed
    /// ([`PoisonReason::Closed`]).
    ///
    /// Not: replies from the server (`ERROR`, `CLIENT_ERROR`, `SERVER_ERROR`, unexpected
    /// replies), requests that could not be encoded, configuration errors, and connections
    /// closed for safety after the server did answer ([`PoisonReason::Malformed`],
    /// [`PoisonReason::StorageRejected`], [`PoisonReason::AmbiguousError`],
    /// [`PoisonReason::Quit`]).
    pub fn is_connection_failure(&self) -> bool {
        matches!(
            self,
            Error::Io(_)
                | Error::Unavailable(_)
                | Error::Timeout
                | Error::Poisoned(PoisonReason::Closed | PoisonReason::Timeout)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;
    use std::io;

    #[test]
    fn io_errors_keep_kind_context_and_source() {
        let e = IoError::new(
            "connect 10.0.0.1:11211",
            io::Error::new(io::ErrorKind::ConnectionRefused, "refused"),
        );
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
        assert_eq!(e.context(), "connect 10.0.0.1:11211");
        assert_eq!(e.to_string(), "connect 10.0.0.1:11211: refused");
        assert_eq!(
            e.source().map(ToString::to_string).as_deref(),
            Some("refused")
        );
        assert_eq!(e.clone(), e);
        assert_ne!(
            e,
            IoError::new(
                "connect 10.0.0.1:11211",
                io::Error::new(io::ErrorKind::ConnectionRefused, "other")
            )
        );
        let t = IoError::from_kind("connect", io::ErrorKind::TimedOut);
        assert!(t.source().is_none());
        assert_eq!(t.to_string(), "connect: timed out");
        assert_ne!(t, IoError::from_kind("read", io::ErrorKind::TimedOut));
        let f = IoError::from(io::Error::from(io::ErrorKind::BrokenPipe));
        assert_eq!((f.context(), f.kind()), ("io", io::ErrorKind::BrokenPipe));
        let e = Error::from(t);
        assert_eq!(e.to_string(), "io error: connect: timed out");
    }

    #[test]
    fn classification() {
        let io = |kind| Error::Io(IoError::from_kind("x", kind));
        let poisoned = Error::Poisoned;
        let all = [
            // (error, timeout, unavailable, connection failure)
            (Error::Timeout, true, false, true),
            (poisoned(PoisonReason::Timeout), true, true, true),
            (io(io::ErrorKind::TimedOut), true, true, true),
            (io(io::ErrorKind::ConnectionRefused), false, true, true),
            (Error::Unavailable("down".into()), false, true, true),
            (poisoned(PoisonReason::Closed), false, true, true),
            (poisoned(PoisonReason::Quit), false, false, false),
            (poisoned(PoisonReason::AmbiguousError), false, false, false),
            (poisoned(PoisonReason::StorageRejected), false, false, false),
            (
                poisoned(PoisonReason::Malformed(DecodeError::ReplyTooLarge {
                    max: 1,
                })),
                false,
                false,
                false,
            ),
            (Error::Server(Bytes::new()), false, false, false),
            (Error::Config("no server".into()), false, false, false),
            (Error::from(KeyError::Empty), false, false, false),
        ];
        for (e, timeout, unavailable, failure) in all {
            assert_eq!(e.is_timeout(), timeout, "{e:?}");
            assert_eq!(e.is_unavailable(), unavailable, "{e:?}");
            assert_eq!(e.is_connection_failure(), failure, "{e:?}");
            assert_eq!(crate::pool::is_server_failure(&e), failure, "{e:?}");
        }
    }
}
