//! Values: the serde codecs, the client-flags layout, and the generation stamp and type
//! fingerprint stored in front of every value.
//!
//! This module owns the stored format of a value. It must never guess: a value whose flags do
//! not say this format, whose codec is unknown or which does not decode is reported as such,
//! and the caller treats it as a miss.
//!
//! Client flags (32 bits):
//!
//! | bits   | meaning                                                        |
//! |--------|----------------------------------------------------------------|
//! | 0..=3  | codec: 1 postcard, 2 JSON                                      |
//! | 4      | the payload is lz4-compressed (block format, size-prefixed)    |
//! | 5..=7  | format version: 2 (1 had no type fingerprint: read as foreign) |
//! | 8..=31 | fingerprint of the generations (so `is_cached` needs no value) |
//!
//! Value bytes: the namespace generation and the function generation (8 bytes each, big
//! endian), the fingerprint of the stored type (8 bytes, see [`type_fingerprint`]), then the
//! payload.

use bytes::{BufMut, Bytes, BytesMut};
use serde::de::DeserializeOwned;
use serde::Serialize;

const CODEC_MASK: u32 = 0xF;
const LZ4_BIT: u32 = 1 << 4;
const FORMAT_SHIFT: u32 = 5;
const FORMAT_MASK: u32 = 0b111 << FORMAT_SHIFT;
const FORMAT_V2: u32 = 2 << FORMAT_SHIFT;
const STAMP_LEN: usize = 16;
/// Stamp and type fingerprint.
pub(crate) const HEADER_LEN: usize = STAMP_LEN + 8;

/// How values are serialized. Whatever the cache is configured with, a reader decodes a value
/// with the codec recorded in its client flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Codec {
    /// [postcard](https://docs.rs/postcard): compact and fast (the default). Not
    /// self-describing: types that need `deserialize_any` (untagged enums,
    /// `serde_json::Value`) need [`Codec::Json`].
    #[default]
    Postcard,
    /// JSON ([serde_json]): larger, readable from any language (skip the 24-byte header).
    Json,
}

impl Codec {
    fn id(self) -> u32 {
        match self {
            Codec::Postcard => 1,
            Codec::Json => 2,
        }
    }

    fn from_id(id: u32) -> Option<Codec> {
        match id {
            1 => Some(Codec::Postcard),
            2 => Some(Codec::Json),
            _ => None,
        }
    }
}

/// The generations a value was computed under: it is fresh only while both counters still
/// hold these values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) namespace: u64,
    pub(crate) function: u64,
}

impl Stamp {
    /// 24 bits mixed from both generations (splitmix64's finalizer).
    pub(crate) fn fingerprint(&self) -> u32 {
        let mut z = self.namespace ^ self.function.rotate_left(29) ^ 0x9E37_79B9_7F4A_7C15;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 40) as u32
    }
}

/// A value as stored: client flags and bytes (stamp and payload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Encoded {
    pub(crate) flags: u32,
    pub(crate) bytes: Bytes,
}

/// Why a stored value could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DecodeError {
    #[error("not a value of this format (client flags {0:#x})")]
    Foreign(u32),
    #[error("value shorter than its stamp")]
    Truncated,
    #[error("unknown codec {0}")]
    UnknownCodec(u32),
    #[cfg(not(feature = "lz4"))]
    #[error("value is lz4-compressed and the `lz4` feature is off")]
    Compressed,
    #[error("payload does not decode: {0}")]
    Payload(String),
    #[error("stored as another type, codec or version")]
    OtherType,
}

/// What identifies the type of a stored value: its name and layout as this build's compiler
/// sees them, the codec and the function's version (FNV-1a, 64 bits). A value read as a type
/// with another fingerprint is a miss, never a reinterpretation of its bytes (a `u64` read as
/// `(u8, u8)`). A new compiler may name a type differently: its values are then recomputed
/// once. A struct changed without changing its name or size is not seen: that is what a
/// function's `version` is for.
pub(crate) fn type_fingerprint<T>(codec: Codec, version: u32) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01B3;
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h = (h ^ u64::from(*b)).wrapping_mul(PRIME);
        }
    };
    eat(std::any::type_name::<T>().as_bytes());
    eat(&(std::mem::size_of::<T>() as u64).to_be_bytes());
    eat(&(std::mem::align_of::<T>() as u64).to_be_bytes());
    eat(&codec.id().to_be_bytes());
    eat(&version.to_be_bytes());
    h
}

/// Serializes `value` with `codec`, compressing payloads over `compress_above` bytes when the
/// `lz4` feature is on. `fingerprint` is the [`type_fingerprint`] of the type readers will ask
/// for (`value` may be a borrowed form of it, serialized the same: `str` for `String`).
pub(crate) fn encode<T: Serialize + ?Sized>(
    value: &T,
    codec: Codec,
    compress_above: Option<usize>,
    stamp: Stamp,
    fingerprint: u64,
) -> Result<Encoded, String> {
    let payload = match codec {
        Codec::Postcard => postcard::to_stdvec(value).map_err(|e| e.to_string())?,
        Codec::Json => serde_json::to_vec(value).map_err(|e| e.to_string())?,
    };
    let mut flags = FORMAT_V2 | codec.id() | (stamp.fingerprint() << 8);
    let payload = match compress_above {
        Some(limit) if payload.len() > limit => match compress(&payload) {
            Some(c) => {
                flags |= LZ4_BIT;
                c
            }
            None => payload,
        },
        _ => payload,
    };
    let mut bytes = BytesMut::with_capacity(HEADER_LEN + payload.len());
    bytes.put_u64(stamp.namespace);
    bytes.put_u64(stamp.function);
    bytes.put_u64(fingerprint);
    bytes.put_slice(&payload);
    Ok(Encoded {
        flags,
        bytes: bytes.freeze(),
    })
}

#[cfg(feature = "lz4")]
fn compress(payload: &[u8]) -> Option<Vec<u8>> {
    Some(lz4_flex::block::compress_prepend_size(payload))
}

#[cfg(not(feature = "lz4"))]
fn compress(_payload: &[u8]) -> Option<Vec<u8>> {
    None
}

/// Whether the flags say this format; the fingerprint they carry.
pub(crate) fn fingerprint(flags: u32) -> Option<u32> {
    (flags & FORMAT_MASK == FORMAT_V2).then_some(flags >> 8)
}

/// The stamp of a stored value, checking the format first.
pub(crate) fn stamp(flags: u32, bytes: &[u8]) -> Result<Stamp, DecodeError> {
    if fingerprint(flags).is_none() {
        return Err(DecodeError::Foreign(flags));
    }
    if bytes.len() < HEADER_LEN {
        return Err(DecodeError::Truncated);
    }
    let (ns, f) = bytes.split_at(8);
    Ok(Stamp {
        namespace: u64::from_be_bytes(ns.try_into().map_err(|_| DecodeError::Truncated)?),
        function: u64::from_be_bytes(f[..8].try_into().map_err(|_| DecodeError::Truncated)?),
    })
}

/// Decodes the payload of a stored value as a `T` of a function at `version` (its stamp is
/// not checked here: see [`stamp`]). A value stored as another type is
/// [`DecodeError::OtherType`], whatever its bytes would decode to.
pub(crate) fn decode<T: DeserializeOwned>(
    flags: u32,
    bytes: &[u8],
    version: u32,
) -> Result<T, DecodeError> {
    stamp(flags, bytes)?;
    let codec =
        Codec::from_id(flags & CODEC_MASK).ok_or(DecodeError::UnknownCodec(flags & CODEC_MASK))?;
    let (fingerprint, payload) = bytes[STAMP_LEN..].split_at(8);
    if fingerprint != type_fingerprint::<T>(codec, version).to_be_bytes() {
        return Err(DecodeError::OtherType);
    }
    let decompressed;
    let payload = if flags & LZ4_BIT != 0 {
        decompressed = decompress(payload)?;
        &decompressed[..]
    } else {
        payload
    };
    match codec {
        Codec::Postcard => {
            postcard::from_bytes(payload).map_err(|e| DecodeError::Payload(e.to_string()))
        }
        Codec::Json => {
            serde_json::from_slice(payload).map_err(|e| DecodeError::Payload(e.to_string()))
        }
    }
}

#[cfg(feature = "lz4")]
fn decompress(payload: &[u8]) -> Result<Vec<u8>, DecodeError> {
    lz4_flex::block::decompress_size_prepended(payload)
        .map_err(|e| DecodeError::Payload(e.to_string()))
}

#[cfg(not(feature = "lz4"))]
fn decompress(_payload: &[u8]) -> Result<Vec<u8>, DecodeError> {
    Err(DecodeError::Compressed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAMP: Stamp = Stamp {
        namespace: 7,
        function: 9,
    };

    fn fp<T>(codec: Codec) -> u64 {
        type_fingerprint::<T>(codec, 1)
    }

    #[test]
    fn roundtrip_both_codecs() {
        type V = (String, Vec<u32>, Option<i64>);
        for codec in [Codec::Postcard, Codec::Json] {
            let v: V = (String::from("bob"), vec![1u32, 2], Some(-3i64));
            let e = encode(&v, codec, None, STAMP, fp::<V>(codec)).unwrap();
            assert_eq!(stamp(e.flags, &e.bytes).unwrap(), STAMP);
            assert_eq!(fingerprint(e.flags), Some(STAMP.fingerprint()));
            let back: V = decode(e.flags, &e.bytes, 1).unwrap();
            assert_eq!(back, v);
        }
        let e = encode("x", Codec::Json, None, STAMP, fp::<String>(Codec::Json)).unwrap();
        assert_eq!(
            &e.bytes[HEADER_LEN..],
            b"\"x\"",
            "JSON payload is plain JSON after the header"
        );
        assert_eq!(e.flags & 0xFF, 0x42);
        assert_eq!(decode::<String>(e.flags, &e.bytes, 1).unwrap(), "x");
    }

    #[test]
    fn foreign_and_broken_values_are_errors() {
        assert_eq!(stamp(0, b"0123456789abcdefx"), Err(DecodeError::Foreign(0)));
        assert_eq!(stamp(FORMAT_V2 | 1, b"short"), Err(DecodeError::Truncated));
        assert!(matches!(
            decode::<String>(FORMAT_V2 | 9, &[0; 25], 1),
            Err(DecodeError::UnknownCodec(9))
        ));
        let v1 = (1 << FORMAT_SHIFT) | 1;
        assert_eq!(
            fingerprint(v1),
            None,
            "format 1 (no type fingerprint) is foreign"
        );
        let e = encode(
            &5u64,
            Codec::Postcard,
            None,
            STAMP,
            fp::<String>(Codec::Postcard),
        );
        assert!(matches!(
            decode::<String>(e.as_ref().unwrap().flags, &e.unwrap().bytes, 1),
            Err(DecodeError::Payload(_))
        ));
    }

    #[test]
    fn another_type_or_version_is_not_reinterpreted() {
        let e = encode(
            &7000u64,
            Codec::Postcard,
            None,
            STAMP,
            fp::<u64>(Codec::Postcard),
        )
        .unwrap();
        assert_eq!(decode::<u64>(e.flags, &e.bytes, 1), Ok(7000));
        assert_eq!(
            decode::<(u8, u8)>(e.flags, &e.bytes, 1),
            Err(DecodeError::OtherType)
        );
        assert_eq!(
            decode::<i64>(e.flags, &e.bytes, 1),
            Err(DecodeError::OtherType)
        );
        assert_eq!(
            decode::<u64>(e.flags, &e.bytes, 2),
            Err(DecodeError::OtherType)
        );
        assert_ne!(fp::<u64>(Codec::Postcard), fp::<u64>(Codec::Json));
        assert_ne!(
            fp::<Vec<u8>>(Codec::Postcard),
            fp::<String>(Codec::Postcard)
        );
    }

    #[test]
    fn fingerprints_differ_between_generations() {
        let a = STAMP.fingerprint();
        let b = Stamp {
            namespace: 7,
            function: 10,
        }
        .fingerprint();
        assert_ne!(a, b);
        assert!(a < 1 << 24);
    }

    #[cfg(feature = "lz4")]
    #[test]
    fn large_values_compress() {
        let f = fp::<String>(Codec::Postcard);
        let v = "abc".repeat(1000);
        let e = encode(&v, Codec::Postcard, Some(100), STAMP, f).unwrap();
        assert_ne!(e.flags & LZ4_BIT, 0);
        assert!(e.bytes.len() < 500);
        assert_eq!(decode::<String>(e.flags, &e.bytes, 1).unwrap(), v);
        let small = encode("abc", Codec::Postcard, Some(100), STAMP, f).unwrap();
        assert_eq!(small.flags & LZ4_BIT, 0);
    }

    #[cfg(not(feature = "lz4"))]
    #[test]
    fn compressed_values_need_the_feature() {
        let flags = FORMAT_V2 | LZ4_BIT | 1;
        let mut bytes = vec![0; 28];
        bytes[STAMP_LEN..HEADER_LEN].copy_from_slice(&fp::<String>(Codec::Postcard).to_be_bytes());
        assert_eq!(
            decode::<String>(flags, &bytes, 1),
            Err(DecodeError::Compressed)
        );
    }
}
