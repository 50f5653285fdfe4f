//! Error types: one enum per concern.
//!
//! - [`KeyError`]: a key the protocol cannot carry (checked before anything is written).
//! - [`EncodeError`]: a request or response that cannot be put on the wire as asked.
//! - [`DecodeError`]: bytes that are not a frame of the protocol (the stream is then unusable).
//! - [`Error`]: what a caller of [`Connection`](crate::Connection) or the
//!   [`Memcache`](crate::Memcache) trait sees: one of the above, a reply from the server that
//!   means failure, or the loss of the connection.

use bytes::Bytes;
use std::fmt;

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
}

/// Why a connection can no longer be used.
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
    /// The caller's own deadline passed (set by an adapter).
    #[error("request timed out")]
    Timeout,
    /// The transport failed (set by an adapter).
    #[error("io error: {0}")]
    Io(String),
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

impl Error {
    /// Whether the error says the server reported a failure for this request only (the
    /// connection is fine and other requests are unaffected).
    pub fn is_server_reply(&self) -> bool {
        matches!(
            self,
            Error::Protocol(_) | Error::Client(_) | Error::Server(_)
        )
    }
}
