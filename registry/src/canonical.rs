//! The canonical serializer of key arguments: a serde `Serializer` writing the type-tagged,
//! self-delimiting grammar of the crate docs (`s3:bob`, `i42`, `[i1,i2]`, `{k=v}`, …).
//!
//! It owns injectivity: two different values of one type never encode alike, and one value
//! always encodes alike (maps are sorted by encoded key). It must never depend on `std::hash`,
//! `Debug` output, addresses or the platform.

use crate::key::ArgsError;
use serde::ser::{self, Serialize};
use std::fmt;

/// Encodes one value in the canonical form. See the crate docs for the grammar.
pub fn encode_value<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, ArgsError> {
    let mut out = Vec::new();
    encode_into(value, &mut out)?;
    Ok(out)
}

/// Appends the canonical encoding of `value` to `out`.
pub(crate) fn encode_into<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(), ArgsError> {
    value.serialize(&mut Encoder { out })
}

/// The canonical serializer: writes the grammar of the crate docs into `out`.
struct Encoder<'a> {
    out: &'a mut Vec<u8>,
}

impl Encoder<'_> {
    fn tagged_len(&mut self, tag: u8, bytes: &[u8]) {
        self.out.push(tag);
        self.out
            .extend_from_slice(bytes.len().to_string().as_bytes());
        self.out.push(b':');
        self.out.extend_from_slice(bytes);
    }

    /// A struct field or variant name: as is when it is `[A-Za-z0-9_]+`, else `<len>:<bytes>`.
    fn name(&mut self, name: &str) {
        if !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && !name.as_bytes()[0].is_ascii_digit()
        {
            self.out.extend_from_slice(name.as_bytes());
        } else {
            self.out
                .extend_from_slice(name.len().to_string().as_bytes());
            self.out.push(b':');
            self.out.extend_from_slice(name.as_bytes());
        }
    }

    fn int(&mut self, digits: String) {
        self.out.push(b'i');
        self.out.extend_from_slice(digits.as_bytes());
    }
}

/// A compound being written: `[`, `{`, `(` with separators and the closing byte.
struct Compound<'a, 'b> {
    enc: &'b mut Encoder<'a>,
    first: bool,
    close: &'static [u8],
}

impl Compound<'_, '_> {
    fn sep(&mut self) {
        if !self.first {
            self.enc.out.push(b',');
        }
        self.first = false;
    }

    fn element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), ArgsError> {
        self.sep();
        v.serialize(&mut *self.enc)
    }

    fn field<T: Serialize + ?Sized>(&mut self, name: &str, v: &T) -> Result<(), ArgsError> {
        self.sep();
        self.enc.name(name);
        self.enc.out.push(b'=');
        v.serialize(&mut *self.enc)
    }

    fn close(self) -> Result<(), ArgsError> {
        self.enc.out.extend_from_slice(self.close);
        Ok(())
    }
}

impl<'a, 'b> ser::Serializer for &'b mut Encoder<'a> {
    type Ok = ();
    type Error = ArgsError;
    type SerializeSeq = Compound<'a, 'b>;
    type SerializeTuple = Compound<'a, 'b>;
    type SerializeTupleStruct = Compound<'a, 'b>;
    type SerializeTupleVariant = Compound<'a, 'b>;
    type SerializeMap = MapEncoder<'a, 'b>;
    type SerializeStruct = Compound<'a, 'b>;
    type SerializeStructVariant = Compound<'a, 'b>;

    fn serialize_bool(self, v: bool) -> Result<(), ArgsError> {
        self.out.push(if v { b't' } else { b'f' });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), ArgsError> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i16(self, v: i16) -> Result<(), ArgsError> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i32(self, v: i32) -> Result<(), ArgsError> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i64(self, v: i64) -> Result<(), ArgsError> {
        self.int(v.to_string());
        Ok(())
    }
    fn serialize_i128(self, v: i128) -> Result<(), ArgsError> {
        self.int(v.to_string());
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<(), ArgsError> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u16(self, v: u16) -> Result<(), ArgsError> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u32(self, v: u32) -> Result<(), ArgsError> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u64(self, v: u64) -> Result<(), ArgsError> {
        self.int(v.to_string());
        Ok(())
    }
    fn serialize_u128(self, v: u128) -> Result<(), ArgsError> {
        self.int(v.to_string());
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), ArgsError> {
        self.serialize_f64(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<(), ArgsError> {
        self.out.push(b'd');
        self.out
            .extend_from_slice(format!("{:016x}", v.to_bits()).as_bytes());
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), ArgsError> {
        let mut buf = [0u8; 4];
        self.tagged_len(b'c', v.encode_utf8(&mut buf).as_bytes());
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), ArgsError> {
        self.tagged_len(b's', v.as_bytes());
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), ArgsError> {
        self.tagged_len(b'b', v);
        Ok(())
    }
    fn serialize_none(self) -> Result<(), ArgsError> {
        self.out.push(b'n');
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), ArgsError> {
        self.out.push(b'o');
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), ArgsError> {
        self.out.push(b'z');
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), ArgsError> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), ArgsError> {
        self.out.push(b'#');
        self.name(variant);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), ArgsError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), ArgsError> {
        self.out.push(b'#');
        self.name(variant);
        self.out.push(b'=');
        value.serialize(self)
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'a, 'b>, ArgsError> {
        self.out.push(b'[');
        Ok(Compound {
            enc: self,
            first: true,
            close: b"]",
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Compound<'a, 'b>, ArgsError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Compound<'a, 'b>, ArgsError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a, 'b>, ArgsError> {
        self.out.push(b'#');
        self.name(variant);
        self.out.push(b'[');
        Ok(Compound {
            enc: self,
            first: true,
            close: b"]",
        })
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<MapEncoder<'a, 'b>, ArgsError> {
        Ok(MapEncoder {
            enc: self,
            entries: Vec::new(),
            pending: None,
        })
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Compound<'a, 'b>, ArgsError> {
        self.out.push(b'(');
        Ok(Compound {
            enc: self,
            first: true,
            close: b")",
        })
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a, 'b>, ArgsError> {
        self.out.push(b'#');
        self.name(variant);
        self.out.push(b'(');
        Ok(Compound {
            enc: self,
            first: true,
            close: b")",
        })
    }
    fn collect_str<T: fmt::Display + ?Sized>(self, value: &T) -> Result<(), ArgsError> {
        self.serialize_str(&value.to_string())
    }
    fn is_human_readable(&self) -> bool {
        // Types with two forms (IP addresses, timestamps) pick the stable, readable one.
        true
    }
}

impl ser::SerializeSeq for Compound<'_, '_> {
    type Ok = ();
    type Error = ArgsError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), ArgsError> {
        self.element(v)
    }
    fn end(self) -> Result<(), ArgsError> {
        self.close()
    }
}

impl ser::SerializeTuple for Compound<'_, '_> {
    type Ok = ();
    type Error = ArgsError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), ArgsError> {
        self.element(v)
    }
    fn end(self) -> Result<(), ArgsError> {
        self.close()
    }
}

impl ser::SerializeTupleStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = ArgsError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), ArgsError> {
        self.element(v)
    }
    fn end(self) -> Result<(), ArgsError> {
        self.close()
    }
}

impl ser::SerializeTupleVariant for Compound<'_, '_> {
    type Ok = ();
    type Error = ArgsError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), ArgsError> {
        self.element(v)
    }
    fn end(self) -> Result<(), ArgsError> {
        self.close()
    }
}

impl ser::SerializeStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = ArgsError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), ArgsError> {
        self.field(key, v)
    }
    fn end(self) -> Result<(), ArgsError> {
        self.close()
    }
}

impl ser::SerializeStructVariant for Compound<'_, '_> {
    type Ok = ();
    type Error = ArgsError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), ArgsError> {
        self.field(key, v)
    }
    fn end(self) -> Result<(), ArgsError> {
        self.close()
    }
}

/// Maps are buffered, then written sorted by encoded key (then value), so that a `HashMap`'s
/// iteration order never reaches the key.
struct MapEncoder<'a, 'b> {
    enc: &'b mut Encoder<'a>,
    entries: Vec<(Vec<u8>, Vec<u8>)>,
    pending: Option<Vec<u8>>,
}

impl ser::SerializeMap for MapEncoder<'_, '_> {
    type Ok = ();
    type Error = ArgsError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), ArgsError> {
        self.pending = Some(encode_value(key)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ArgsError> {
        let key = self
            .pending
            .take()
            .ok_or_else(|| ArgsError("map value without a key".into()))?;
        self.entries.push((key, encode_value(value)?));
        Ok(())
    }
    fn end(mut self) -> Result<(), ArgsError> {
        if self.pending.is_some() {
            return Err(ArgsError("map key without a value".into()));
        }
        self.entries.sort();
        let out = &mut *self.enc.out;
        out.push(b'{');
        for (i, (k, v)) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(k);
            out.push(b'=');
            out.extend_from_slice(v);
        }
        out.push(b'}');
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;
    use std::collections::{BTreeMap, HashMap};

    fn enc<T: Serialize + ?Sized>(v: &T) -> String {
        String::from_utf8(encode_value(v).unwrap()).unwrap()
    }

    #[derive(Serialize)]
    struct User {
        id: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        nick: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        mail: Option<String>,
    }

    #[derive(Serialize)]
    enum Shape {
        Unit,
        New(i32),
        Pair(u8, u8),
        Named {
            w: u32,
        },
        #[serde(rename = "odd name")]
        Odd,
    }

    #[test]
    fn scalars() {
        assert_eq!(enc(&true), "t");
        assert_eq!(enc(&-5i8), "i-5");
        assert_eq!(enc(&u128::MAX), "i340282366920938463463374607431768211455");
        assert_eq!(enc(&1.5f64), "d3ff8000000000000");
        assert_eq!(enc(&1.5f32), "d3ff8000000000000");
        assert_eq!(enc(&'é'), "c2:é");
        assert_eq!(enc("a b"), "s3:a b");
        assert_eq!(enc(&None::<u8>), "n");
        assert_eq!(enc(&Some(3u8)), "oi3");
        assert_eq!(enc(&()), "z");
    }

    #[test]
    fn compounds() {
        assert_eq!(enc(&vec![1u8, 23]), "[i1,i23]");
        assert_eq!(enc(&(1u8, "x")), "[i1,s1:x]");
        let u = User {
            id: 7,
            nick: None,
            mail: Some("m".into()),
        };
        assert_eq!(enc(&u), "(id=i7,mail=os1:m)");
        assert_eq!(enc(&Shape::Unit), "#Unit");
        assert_eq!(enc(&Shape::New(-1)), "#New=i-1");
        assert_eq!(enc(&Shape::Pair(1, 2)), "#Pair[i1,i2]");
        assert_eq!(enc(&Shape::Named { w: 3 }), "#Named(w=i3)");
        assert_eq!(enc(&Shape::Odd), "#8:odd name");
    }

    #[test]
    fn maps_are_sorted_whatever_the_iteration_order() {
        let mut h = HashMap::new();
        let mut b = BTreeMap::new();
        for i in 0..50u32 {
            h.insert(format!("k{i}"), i);
            b.insert(format!("k{i}"), i);
        }
        let from_hash = enc(&h);
        assert_eq!(from_hash, enc(&b));
        assert!(
            from_hash.starts_with("{s2:k0=i0,s2:k1=i1,s2:k2=i2,"),
            "{from_hash}"
        );
    }
}
