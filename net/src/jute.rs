//! Jute primitives: ZooKeeper's `BinaryInputArchive`/`BinaryOutputArchive`.
//!
//! Every integer is big-endian; `ustring` and `buffer` are an `int32` length followed by that many bytes,
//! with `-1` meaning null; `vector` is an `int32` count followed by the elements (`-1` = null). Records are
//! their fields concatenated with no tags or padding (reference/client-wire.md §2).
//!
//! The reader is bounds-checked on every access and never allocates more than the bytes actually present,
//! so no byte sequence can make it panic or reserve a huge vector from a forged count.

use thiserror::Error;

/// Why a jute record could not be decoded. Carries the byte offset inside the record being decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("record ends early: needed {needed} more bytes at offset {offset}")]
    UnexpectedEof { offset: usize, needed: usize },
    #[error("negative length {length} at offset {offset}")]
    NegativeLength { offset: usize, length: i32 },
    #[error("length {length} at offset {offset} exceeds the remaining {remaining} bytes")]
    LengthTooLarge { offset: usize, length: i32, remaining: usize },
    #[error("string at offset {offset} is not valid UTF-8")]
    InvalidUtf8 { offset: usize },
    #[error("unknown {what} {value} at offset {offset}")]
    UnknownValue { what: &'static str, value: i32, offset: usize },
    #[error("{count} trailing bytes after the record")]
    TrailingBytes { count: usize },
}

pub type DecodeResult<T> = Result<T, DecodeError>;

/// A cursor over one jute record.
#[derive(Debug, Clone)]
pub struct JuteReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> JuteReader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        JuteReader { buf, pos: 0 }
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Fails unless every byte was consumed; used where ZooKeeper's records have no optional tail.
    pub fn finish(&self) -> DecodeResult<()> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes { count }),
        }
    }

    pub fn take(&mut self, len: usize) -> DecodeResult<&'a [u8]> {
        if self.remaining() < len {
            return Err(DecodeError::UnexpectedEof { offset: self.pos, needed: len - self.remaining() });
        }
        let bytes = &self.buf[self.pos..self.pos + len];
        self.pos += len;
        Ok(bytes)
    }

    fn take_array<const N: usize>(&mut self) -> DecodeResult<[u8; N]> {
        let bytes = self.take(N)?;
        Ok(bytes.try_into().expect("take returned N bytes"))
    }

    pub fn read_u8(&mut self) -> DecodeResult<u8> {
        Ok(self.take_array::<1>()?[0])
    }

    /// Any non-zero byte is true, as Java's `DataInput.readBoolean`.
    pub fn read_bool(&mut self) -> DecodeResult<bool> {
        Ok(self.read_u8()? != 0)
    }

    pub fn read_i32(&mut self) -> DecodeResult<i32> {
        Ok(i32::from_be_bytes(self.take_array()?))
    }

    pub fn read_i64(&mut self) -> DecodeResult<i64> {
        Ok(i64::from_be_bytes(self.take_array()?))
    }

    /// Reads a length prefix; `None` for the null marker -1.
    fn read_len(&mut self) -> DecodeResult<Option<usize>> {
        let offset = self.pos;
        let length = self.read_i32()?;
        match length {
            -1 => Ok(None),
            l if l < 0 => Err(DecodeError::NegativeLength { offset, length }),
            l => {
                let len = l as usize;
                if len > self.remaining() {
                    return Err(DecodeError::LengthTooLarge { offset, length, remaining: self.remaining() });
                }
                Ok(Some(len))
            }
        }
    }

    /// A jute `buffer`; `None` for null.
    pub fn read_buffer(&mut self) -> DecodeResult<Option<&'a [u8]>> {
        match self.read_len()? {
            None => Ok(None),
            Some(len) => self.take(len).map(Some),
        }
    }

    /// A jute `ustring`; `None` for null.
    pub fn read_ustring(&mut self) -> DecodeResult<Option<&'a str>> {
        let offset = self.pos;
        match self.read_buffer()? {
            None => Ok(None),
            Some(bytes) => std::str::from_utf8(bytes).map(Some).map_err(|_| DecodeError::InvalidUtf8 { offset }),
        }
    }

    /// A `vector` count; `None` for null. The count is bounded by the bytes left (each element takes at
    /// least `min_element_len` bytes), so a forged count cannot make the caller reserve a huge vector.
    pub fn read_count(&mut self, min_element_len: usize) -> DecodeResult<Option<usize>> {
        let offset = self.pos;
        let length = self.read_i32()?;
        match length {
            -1 => Ok(None),
            l if l < 0 => Err(DecodeError::NegativeLength { offset, length }),
            l => {
                let count = l as usize;
                if count.saturating_mul(min_element_len.max(1)) > self.remaining() && min_element_len > 0 {
                    return Err(DecodeError::LengthTooLarge { offset, length, remaining: self.remaining() });
                }
                Ok(Some(count))
            }
        }
    }
}

/// Appends jute primitives to a byte vector.
pub trait JuteWriter {
    fn put_u8(&mut self, v: u8);
    fn put_bool(&mut self, v: bool);
    fn put_i32(&mut self, v: i32);
    fn put_i64(&mut self, v: i64);
    fn put_buffer(&mut self, v: Option<&[u8]>);
    fn put_ustring(&mut self, v: Option<&str>);
}

impl JuteWriter for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }

    fn put_bool(&mut self, v: bool) {
        self.push(u8::from(v));
    }

    fn put_i32(&mut self, v: i32) {
        self.extend_from_slice(&v.to_be_bytes());
    }

    fn put_i64(&mut self, v: i64) {
        self.extend_from_slice(&v.to_be_bytes());
    }

    fn put_buffer(&mut self, v: Option<&[u8]>) {
        match v {
            None => self.put_i32(-1),
            Some(bytes) => {
                let len = i32::try_from(bytes.len()).expect("jute buffer longer than i32::MAX");
                self.put_i32(len);
                self.extend_from_slice(bytes);
            }
        }
    }

    fn put_ustring(&mut self, v: Option<&str>) {
        self.put_buffer(v.map(str::as_bytes));
    }
}

/// A value with a jute encoding. Records implement it field by field, in declaration order.
pub trait Jute: Sized {
    fn encode(&self, out: &mut Vec<u8>);
    fn decode(r: &mut JuteReader<'_>) -> DecodeResult<Self>;

    /// Decodes a whole buffer, rejecting trailing bytes.
    fn decode_exact(bytes: &[u8]) -> DecodeResult<Self> {
        let mut r = JuteReader::new(bytes);
        let value = Self::decode(&mut r)?;
        r.finish()?;
        Ok(value)
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

impl Jute for i32 {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_i32(*self);
    }
    fn decode(r: &mut JuteReader<'_>) -> DecodeResult<Self> {
        r.read_i32()
    }
}

impl Jute for i64 {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_i64(*self);
    }
    fn decode(r: &mut JuteReader<'_>) -> DecodeResult<Self> {
        r.read_i64()
    }
}

impl Jute for bool {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_bool(*self);
    }
    fn decode(r: &mut JuteReader<'_>) -> DecodeResult<Self> {
        r.read_bool()
    }
}

/// A `ustring`. Null decodes as the empty string: every place ZooKeeper accepts a string treats null and
/// empty alike (both fail path or id validation with the same code). Malformed UTF-8 is decoded lossily,
/// as Java's decoder does, so a bad path fails path validation (U+FFFD is a forbidden path character)
/// rather than the whole request.
impl Jute for String {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_ustring(Some(self));
    }
    fn decode(r: &mut JuteReader<'_>) -> DecodeResult<Self> {
        Ok(r.read_buffer()?.map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default())
    }
}

/// A `buffer`, keeping null apart from empty: ZooKeeper stores and returns null data as null.
impl Jute for Option<Vec<u8>> {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_buffer(self.as_deref());
    }
    fn decode(r: &mut JuteReader<'_>) -> DecodeResult<Self> {
        Ok(r.read_buffer()?.map(<[u8]>::to_vec))
    }
}

/// A `vector`. Null decodes as empty (ZooKeeper's records treat a null list like an empty one, except
/// ACL lists, which the caller validates separately).
impl<T: Jute> Jute for Vec<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        let count = i32::try_from(self.len()).expect("jute vector longer than i32::MAX");
        out.put_i32(count);
        for item in self {
            item.encode(out);
        }
    }
    fn decode(r: &mut JuteReader<'_>) -> DecodeResult<Self> {
        // Every jute element is at least one byte, so the count cannot exceed the bytes left.
        let count = r.read_count(1)?.unwrap_or(0);
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            items.push(T::decode(r)?);
        }
        Ok(items)
    }
}

/// Declares a jute record: a struct whose fields are encoded in declaration order.
#[macro_export]
macro_rules! jute_record {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$fmeta:meta])* pub $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
        pub struct $name { $($(#[$fmeta])* pub $field: $ty),* }

        impl $crate::jute::Jute for $name {
            fn encode(&self, _out: &mut Vec<u8>) {
                $($crate::jute::Jute::encode(&self.$field, _out);)*
            }
            fn decode(_r: &mut $crate::jute::JuteReader<'_>) -> $crate::jute::DecodeResult<Self> {
                Ok($name { $($field: <$ty as $crate::jute::Jute>::decode(_r)?),* })
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives_round_trip() {
        let mut out = Vec::new();
        out.put_i32(-5);
        out.put_i64(1 << 40);
        out.put_bool(true);
        out.put_buffer(None);
        out.put_ustring(Some("zoé"));
        let mut r = JuteReader::new(&out);
        assert_eq!(r.read_i32().unwrap(), -5);
        assert_eq!(r.read_i64().unwrap(), 1 << 40);
        assert!(r.read_bool().unwrap());
        assert_eq!(r.read_buffer().unwrap(), None);
        assert_eq!(r.read_ustring().unwrap(), Some("zoé"));
        r.finish().unwrap();
    }

    #[test]
    fn lengths_are_checked_against_the_bytes_present() {
        let mut out = Vec::new();
        out.put_i32(1000);
        out.extend_from_slice(b"abc");
        let err = JuteReader::new(&out).read_buffer().unwrap_err();
        assert_eq!(err, DecodeError::LengthTooLarge { offset: 0, length: 1000, remaining: 3 });
        let mut neg = Vec::new();
        neg.put_i32(-2);
        assert_eq!(
            JuteReader::new(&neg).read_buffer().unwrap_err(),
            DecodeError::NegativeLength { offset: 0, length: -2 }
        );
        let mut count = Vec::new();
        count.put_i32(i32::MAX);
        assert!(Vec::<i64>::decode(&mut JuteReader::new(&count)).is_err());
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        let mut out = Vec::new();
        out.put_buffer(Some(&[0xff, 0xfe]));
        assert_eq!(JuteReader::new(&out).read_ustring().unwrap_err(), DecodeError::InvalidUtf8 { offset: 0 });
    }
}
