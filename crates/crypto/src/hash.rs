//! Blake2b-256, the hash that identifies blocks, transactions and history nodes.

use std::fmt;

use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};
use serde::{Deserialize, Serialize};

type Blake2b256 = Blake2b<U32>;

/// A 32-byte Blake2b-256 digest.
///
/// Serialises as 32 raw bytes in binary formats and as 64 hex characters in human-readable ones
/// (JSON, TOML).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Blake2bHash(pub [u8; 32]);

impl Serialize for Blake2bHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() { s.serialize_str(&self.to_hex()) } else { self.0.serialize(s) }
    }
}

impl<'de> Deserialize<'de> for Blake2bHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            Self::from_hex(&s).map_err(serde::de::Error::custom)
        } else {
            <[u8; 32]>::deserialize(d).map(Self)
        }
    }
}

impl Blake2bHash {
    /// The all-zero hash, used as "no parent" by the genesis block.
    pub const ZERO: Self = Self([0u8; 32]);

    /// Hashes one byte string.
    pub fn digest(data: &[u8]) -> Self {
        let mut h = Hasher::new();
        h.update(data);
        h.finish()
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parses 64 hex characters.
    pub fn from_hex(s: &str) -> Result<Self, hex::FromHexError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out)?;
        Ok(Self(out))
    }

    /// Lower-case hex, 64 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The first 8 hex characters, for logs.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }
}

impl fmt::Display for Blake2bHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Blake2bHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Blake2bHash({})", self.short())
    }
}

impl AsRef<[u8]> for Blake2bHash {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// An incremental Blake2b-256 hasher with helpers for the fixed big-endian layouts that Petrel
/// hashes (see `docs/protocol.md`, "Hashed layouts").
#[derive(Clone, Default)]
pub struct Hasher(Blake2b256);

impl Hasher {
    /// A fresh hasher.
    pub fn new() -> Self {
        Self(Blake2b256::new())
    }
    /// Appends raw bytes.
    pub fn update(&mut self, data: &[u8]) -> &mut Self {
        self.0.update(data);
        self
    }
    /// Appends a `u8`.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.update(&[v])
    }
    /// Appends a big-endian `u16`.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.update(&v.to_be_bytes())
    }
    /// Appends a big-endian `u32`.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.update(&v.to_be_bytes())
    }
    /// Appends a big-endian `u64`.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.update(&v.to_be_bytes())
    }
    /// Appends a hash.
    pub fn hash(&mut self, h: &Blake2bHash) -> &mut Self {
        self.update(&h.0)
    }
    /// Appends a length-prefixed (u32 BE) byte string.
    pub fn var_bytes(&mut self, data: &[u8]) -> &mut Self {
        // Lengths are bounded far below u32::MAX by every caller's own limits.
        self.u32(u32::try_from(data.len()).unwrap_or(u32::MAX));
        self.update(data)
    }
    /// Finishes the digest.
    pub fn finish(self) -> Blake2bHash {
        Blake2bHash(self.0.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answer_empty_input() {
        // Blake2b-256 of the empty string (RFC 7693 parameters, 32-byte output).
        assert_eq!(
            Blake2bHash::digest(b"").to_hex(),
            "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"
        );
    }

    #[test]
    fn hex_round_trip_and_errors() {
        let h = Blake2bHash::digest(b"petrel");
        assert_eq!(Blake2bHash::from_hex(&h.to_hex()).unwrap(), h);
        assert!(Blake2bHash::from_hex("zz").is_err());
        assert!(Blake2bHash::from_hex(&"00".repeat(31)).is_err());
    }

    #[test]
    fn incremental_equals_one_shot() {
        let mut h = Hasher::new();
        h.update(b"pet").update(b"rel");
        assert_eq!(h.finish(), Blake2bHash::digest(b"petrel"));
    }
}
