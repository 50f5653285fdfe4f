//! Keys: validated once, at construction, so that no key can break a command line.
//!
//! A text key is 1 to 250 bytes, none of them a space, a control byte (`<= 0x20`) or DEL
//! (`0x7F`): memcached itself checks only the length, so a key such as `a\r\nflush_all` would
//! otherwise run a second command. Arbitrary bytes go through the meta protocol's base64 form
//! ([`Key::binary`]), at most 186 raw bytes (248 once encoded with padding).

use crate::error::KeyError;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use std::fmt;

/// The longest key memcached accepts, in wire bytes.
pub const MAX_KEY_LEN: usize = 250;

/// The longest raw binary key: its base64 form is at most [`MAX_KEY_LEN`] bytes.
pub const MAX_BINARY_KEY_LEN: usize = 186;

/// A key, valid on the wire.
///
/// Cloning is cheap (`Bytes`). For a binary key the stored bytes are its base64 text, which is
/// what goes on the wire, with the meta `b` flag.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    wire: Bytes,
    binary: bool,
}

/// Checks that `bytes` can be a text key.
pub fn validate_text_key(bytes: &[u8]) -> Result<(), KeyError> {
    if bytes.is_empty() {
        return Err(KeyError::Empty);
    }
    if bytes.len() > MAX_KEY_LEN {
        return Err(KeyError::TooLong { len: bytes.len() });
    }
    if let Some(offset) = bytes.iter().position(|&b| b <= b' ' || b == 0x7f) {
        return Err(KeyError::InvalidByte {
            byte: bytes[offset],
            offset,
        });
    }
    Ok(())
}

impl Key {
    /// A text key. Fails on an empty key, more than 250 bytes, or a space, control byte or DEL.
    ///
    /// ```
    /// use mcache_proto::Key;
    /// assert!(Key::new("user:42").is_ok());
    /// assert!(Key::new("a\r\nflush_all").is_err());
    /// ```
    pub fn new(key: impl AsRef<[u8]>) -> Result<Key, KeyError> {
        let bytes = key.as_ref();
        validate_text_key(bytes)?;
        Ok(Key {
            wire: Bytes::copy_from_slice(bytes),
            binary: false,
        })
    }

    /// A text key from `Bytes`, without copying.
    pub fn from_bytes(bytes: Bytes) -> Result<Key, KeyError> {
        validate_text_key(&bytes)?;
        Ok(Key {
            wire: bytes,
            binary: false,
        })
    }

    /// An empty key, for a value whose key is filled in later (never sent).
    pub(crate) fn placeholder() -> Key {
        Key {
            wire: Bytes::new(),
            binary: false,
        }
    }

    /// A text key from bytes [`validate_text_key`] accepted.
    pub(crate) fn from_validated_text(wire: Bytes) -> Key {
        Key {
            wire,
            binary: false,
        }
    }

    /// A binary key: any bytes (1 to 186), sent base64-encoded with the meta `b` flag.
    /// Only meta commands can carry it.
    ///
    /// ```
    /// use mcache_proto::Key;
    /// let k = Key::binary(b"\x00\x01 \r\n").unwrap();
    /// assert_eq!(k.wire(), b"AAEgDQo=");
    /// assert_eq!(k.decoded(), b"\x00\x01 \r\n");
    /// ```
    pub fn binary(raw: impl AsRef<[u8]>) -> Result<Key, KeyError> {
        let raw = raw.as_ref();
        if raw.is_empty() {
            return Err(KeyError::Empty);
        }
        let encoded_len = raw.len().div_ceil(3) * 4;
        if encoded_len > MAX_KEY_LEN {
            return Err(KeyError::TooLong { len: encoded_len });
        }
        Ok(Key {
            wire: Bytes::from(STANDARD.encode(raw)),
            binary: true,
        })
    }

    /// A binary key from its base64 wire form (as received with a `b` flag).
    pub fn from_base64(wire: Bytes) -> Result<Key, KeyError> {
        if wire.is_empty() {
            return Err(KeyError::Empty);
        }
        if wire.len() > MAX_KEY_LEN {
            return Err(KeyError::TooLong { len: wire.len() });
        }
        let decoded = STANDARD
            .decode(&wire)
            .map_err(|_| KeyError::InvalidBase64)?;
        if decoded.is_empty() {
            return Err(KeyError::InvalidBase64);
        }
        Ok(Key { wire, binary: true })
    }

    /// The bytes written on the wire (base64 text for a binary key).
    pub fn wire(&self) -> &[u8] {
        &self.wire
    }

    /// The wire bytes as `Bytes`.
    pub fn wire_bytes(&self) -> &Bytes {
        &self.wire
    }

    /// Whether this is a binary key (meta `b` flag).
    pub fn is_binary(&self) -> bool {
        self.binary
    }

    /// The key's own bytes: the wire bytes for a text key, decoded for a binary one.
    pub fn decoded(&self) -> Vec<u8> {
        if self.binary {
            // Validated as base64 at construction.
            STANDARD.decode(&self.wire).unwrap_or_default()
        } else {
            self.wire.to_vec()
        }
    }

    /// Ensures the key can be sent by a text command.
    pub(crate) fn require_text(&self) -> Result<&Key, KeyError> {
        if self.binary {
            Err(KeyError::BinaryInTextCommand)
        } else {
            Ok(self)
        }
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.binary {
            write!(f, "Key(b64:{})", self.wire.escape_ascii())
        } else {
            write!(f, "Key({})", self.wire.escape_ascii())
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.wire.escape_ascii())
    }
}

impl TryFrom<&str> for Key {
    type Error = KeyError;
    fn try_from(s: &str) -> Result<Key, KeyError> {
        Key::new(s)
    }
}

impl TryFrom<&[u8]> for Key {
    type Error = KeyError;
    fn try_from(s: &[u8]) -> Result<Key, KeyError> {
        Key::new(s)
    }
}

impl TryFrom<String> for Key {
    type Error = KeyError;
    fn try_from(s: String) -> Result<Key, KeyError> {
        Key::from_bytes(Bytes::from(s))
    }
}

impl TryFrom<&String> for Key {
    type Error = KeyError;
    fn try_from(s: &String) -> Result<Key, KeyError> {
        Key::new(s)
    }
}

impl TryFrom<Bytes> for Key {
    type Error = KeyError;
    fn try_from(s: Bytes) -> Result<Key, KeyError> {
        Key::from_bytes(s)
    }
}

impl TryFrom<&Key> for Key {
    type Error = KeyError;
    fn try_from(k: &Key) -> Result<Key, KeyError> {
        Ok(k.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_key_bounds() {
        assert_eq!(Key::new(""), Err(KeyError::Empty));
        assert!(Key::new([b'a'; 250]).is_ok());
        assert_eq!(Key::new([b'a'; 251]), Err(KeyError::TooLong { len: 251 }));
        for bad in [b' ', b'\r', b'\n', b'\t', 0u8, 0x7f] {
            let k = [b'a', bad, b'b'];
            assert_eq!(
                Key::new(k),
                Err(KeyError::InvalidByte {
                    byte: bad,
                    offset: 1
                })
            );
        }
        assert!(Key::new("ключ").is_ok(), "UTF-8 bytes are allowed");
        assert!(Key::new("x\r\ndelete victim").is_err());
    }

    #[test]
    fn binary_key_bounds() {
        assert!(
            Key::binary([0u8; 186]).is_ok(),
            "186 bytes are 248 base64 characters"
        );
        assert_eq!(Key::binary([0u8; 187]), Err(KeyError::TooLong { len: 252 }));
        assert_eq!(Key::binary([]), Err(KeyError::Empty));
        let k = Key::binary(b"foo").unwrap();
        assert_eq!(k.wire(), b"Zm9v");
        assert!(k.is_binary());
        assert_eq!(k.require_text(), Err(KeyError::BinaryInTextCommand));
        assert_eq!(
            Key::from_base64(Bytes::from_static(b"Zm9vYg")),
            Err(KeyError::InvalidBase64),
            "padding is required, as the server requires it"
        );
        assert_eq!(Key::from_base64(Bytes::from_static(b"Zm9v")).unwrap(), k);
    }
}
