//! The one canonical encoding of Petrel: serde with a fixed bincode 2 configuration.
//!
//! Every encode and decode in the workspace goes through this module, so switching the codec is a
//! one-file change (see `docs/adr/0002-codec-bincode.md`). Decoding always takes an explicit size
//! limit that is checked against the input length **before** anything is decoded or allocated, and
//! rejects trailing bytes. Bincode additionally enforces [`HARD_LIMIT`] on every container length it
//! reads, so a forged length prefix can never reserve more memory than the input could hold.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// No single encoded value anywhere in Petrel may be larger than this (64 MiB).
pub const HARD_LIMIT: usize = 64 * 1024 * 1024;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_little_endian().with_variable_int_encoding().with_limit::<HARD_LIMIT>()
}

/// Why a value could not be decoded or encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The input is longer than the limit the caller allows for this type.
    #[error("encoded value is {len} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// Length of the input.
        len: usize,
        /// The caller's limit.
        limit: usize,
    },
    /// The input ended before the value was complete.
    #[error("encoded value is truncated")]
    Truncated,
    /// The value decoded but bytes were left over.
    #[error("{0} trailing bytes after the encoded value")]
    TrailingBytes(usize),
    /// Any other malformation (bad tag, invalid field, limit inside the value).
    #[error("malformed encoding: {0}")]
    Malformed(String),
}

/// Encodes a value canonically.
///
/// Encoding Petrel's own types cannot fail except by exceeding [`HARD_LIMIT`], which callers treat
/// as a bug in their own size accounting; it is still reported as an error, never a panic.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    bincode::serde::encode_to_vec(value, config()).map_err(|e| CodecError::Malformed(e.to_string()))
}

/// Encodes a value that is known to be small and well-formed (an in-memory Petrel type).
///
/// Serialising our own serde types into a `Vec` has no failure mode other than exceeding
/// [`HARD_LIMIT`]; in that impossible case this returns an empty vector, which every decoder rejects.
pub fn encode_infallible<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    encode(value).unwrap_or_default()
}

/// Encodes a value directly after `prefix`, in one allocation of the exact size: `prefix`
/// followed by [`encode`]`(value)`. Used to build frames (a status byte, then the payload) without
/// copying the payload a second time.
///
/// A value whose encoding would exceed [`HARD_LIMIT`] is refused before anything is allocated.
pub fn encode_with_prefix<T: Serialize + ?Sized>(prefix: &[u8], value: &T) -> Result<Vec<u8>, CodecError> {
    let len = exact_len(value)?;
    if len > HARD_LIMIT {
        return Err(CodecError::TooLarge { len, limit: HARD_LIMIT });
    }
    let mut out = VecAppender(Vec::with_capacity(prefix.len() + len));
    out.0.extend_from_slice(prefix);
    bincode::serde::encode_into_writer(value, &mut out, config()).map_err(|e| CodecError::Malformed(e.to_string()))?;
    Ok(out.0)
}

/// The encoded length of a value.
pub fn encoded_len<T: Serialize + ?Sized>(value: &T) -> usize {
    exact_len(value).unwrap_or(usize::MAX)
}

fn exact_len<T: Serialize + ?Sized>(value: &T) -> Result<usize, CodecError> {
    let mut counter = SizeCounter(0);
    bincode::serde::encode_into_writer(value, &mut counter, config())
        .map_err(|e| CodecError::Malformed(e.to_string()))?;
    Ok(counter.0)
}

/// Appends to a vector whose capacity was reserved up front.
struct VecAppender(Vec<u8>);

impl bincode::enc::write::Writer for VecAppender {
    fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
}

struct SizeCounter(usize);

impl bincode::enc::write::Writer for SizeCounter {
    fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
        self.0 += bytes.len();
        Ok(())
    }
}

/// Decodes a value from exactly `bytes`, refusing inputs longer than `limit`.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], limit: usize) -> Result<T, CodecError> {
    let limit = limit.min(HARD_LIMIT);
    if bytes.len() > limit {
        return Err(CodecError::TooLarge { len: bytes.len(), limit });
    }
    let (value, read) = bincode::serde::decode_from_slice(bytes, config()).map_err(|e| match e {
        bincode::error::DecodeError::UnexpectedEnd { .. } => CodecError::Truncated,
        other => CodecError::Malformed(other.to_string()),
    })?;
    if read != bytes.len() {
        return Err(CodecError::TrailingBytes(bytes.len() - read));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_exact_length() {
        let v: (u32, Vec<u8>, String) = (7, vec![1, 2, 3], "petrel".into());
        let bytes = encode(&v).unwrap();
        assert_eq!(bytes.len(), encoded_len(&v));
        assert_eq!(decode::<(u32, Vec<u8>, String)>(&bytes, 1024).unwrap(), v);
    }

    #[test]
    fn encode_with_prefix_is_prefix_then_encoding() {
        let v: (u32, Vec<u8>, String) = (7, vec![1, 2, 3], "petrel".into());
        let framed = encode_with_prefix(&[0xAB, 0xCD], &v).unwrap();
        assert_eq!(&framed[..2], &[0xAB, 0xCD]);
        assert_eq!(&framed[2..], encode(&v).unwrap().as_slice());
        assert_eq!(framed.capacity(), framed.len(), "one allocation of the exact size");
        assert_eq!(decode::<(u32, Vec<u8>, String)>(&framed[2..], 1024).unwrap(), v);
        // Empty prefix and empty encoding.
        assert_eq!(encode_with_prefix(&[], &v).unwrap(), encode(&v).unwrap());
        assert_eq!(encode_with_prefix(&[9], &()).unwrap(), vec![9]);
        // A large value: still exact.
        let big = vec![5u8; 1 << 20];
        let framed = encode_with_prefix(&[0], &big).unwrap();
        assert_eq!(framed.len(), 1 + encoded_len(&big));
        assert_eq!(framed.capacity(), framed.len());
        assert_eq!(decode::<Vec<u8>>(&framed[1..], 2 << 20).unwrap(), big);
    }

    #[test]
    fn limit_is_checked_before_decoding() {
        let bytes = encode(&vec![0u8; 100]).unwrap();
        assert_eq!(decode::<Vec<u8>>(&bytes, 10), Err(CodecError::TooLarge { len: bytes.len(), limit: 10 }));
    }

    #[test]
    fn truncated_and_trailing_are_errors() {
        let bytes = encode(&(1u64, 2u64, vec![9u8; 10])).unwrap();
        assert_eq!(decode::<(u64, u64, Vec<u8>)>(&bytes[..bytes.len() - 1], 1024), Err(CodecError::Truncated));
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode::<(u64, u64, Vec<u8>)>(&longer, 1024), Err(CodecError::TrailingBytes(1)));
    }

    #[test]
    fn forged_length_prefix_does_not_allocate() {
        // A Vec<u64> claiming u32::MAX elements in a 6-byte input: fails without reserving memory.
        let mut bytes = vec![252u8];
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        bytes.push(0);
        assert!(decode::<Vec<u64>>(&bytes, 1024).is_err());
    }
}
