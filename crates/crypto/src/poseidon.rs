//! Poseidon over the BLS12-377 scalar field, the field that SNARK circuits over BLS12-377 compute
//! in natively, and which is also the base field of the embedded Edwards curve
//! (`ark_ed_on_bls12_377::Fq` is the very same type as `ark_bls12_377::Fr`).
//!
//! # The construction (frozen: a circuit reproduces it with `PoseidonSpongeVar`)
//!
//! * Field: `Fr` of BLS12-377, `p = 0x12ab655e9a2ca55660b44d1e5c37b00159aa76fed00000010a11800000000001`
//!   (253 bits).
//! * Permutation: arkworks' `PoseidonSponge` (ark-crypto-primitives 0.6) with state width 3,
//!   **rate 2, capacity 1**, S-box `x^17` (**alpha = 17**), **8 full rounds** (4 before and 4
//!   after the partial rounds), **31 partial rounds**. Round constants and MDS matrix are
//!   `find_poseidon_ark_and_mds::<Fr>(253, 2, 8, 31, 0)` (prime_bits = 253, rate = 2,
//!   full_rounds = 8, partial_rounds = 31, skip_matrices = 0), the Grain-LFSR generation that
//!   arkworks uses for its default BLS12-377 rate-2 parameters. [`poseidon_config`] returns that
//!   exact `PoseidonConfig` so a circuit can build its `PoseidonSpongeVar` from it.
//! * Sponge layout (arkworks' convention): the state starts all zero, state\[0\] is the capacity
//!   element, inputs are added into state\[1\], state\[2\], the permutation runs whenever both rate
//!   slots have been used and more input follows, and squeezing permutes once, then reads state\[1\].
//! * Hash of `n` inputs `m_1..m_n`: absorb, in one stream, the length prefix
//!   `L = 2^64 · T + n` with `T = `[`POSEIDON_LENGTH_TAG`]` = 0x5065_7472_656c_5031`
//!   (ASCII `"PetrelP1"` read big-endian), then `m_1, …, m_n`; squeeze one field element.
//!   The prefix makes hashes of different lengths (including trailing zeros) independent and
//!   separates Petrel's uses from other users of the same permutation.
//!
//! With 5 inputs (a Schnorr challenge) that is 6 absorbed elements and 3 permutations.

use std::fmt;
use std::sync::OnceLock;

use ark_bls12_377::Fr;
use ark_crypto_primitives::sponge::CryptographicSponge;
use ark_crypto_primitives::sponge::FieldBasedCryptographicSponge;
use ark_crypto_primitives::sponge::poseidon::{PoseidonConfig, PoseidonSponge, find_poseidon_ark_and_mds};
use ark_ff::{AdditiveGroup, BigInt, BigInteger, Field, PrimeField};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::CryptoError;
use crate::hash::Blake2bHash;

// `ark_ed_on_bls12_377::Fq` (the Edwards curve's base field) is `ark_bls12_377::Fr`: this only
// compiles if the two are the same type.
const _: fn(ark_ed_on_bls12_377::Fq) -> Fr = |x| x;

/// The Poseidon S-box exponent.
pub const POSEIDON_ALPHA: u64 = 17;
/// The sponge rate (field elements absorbed per permutation).
pub const POSEIDON_RATE: usize = 2;
/// The sponge capacity (field elements).
pub const POSEIDON_CAPACITY: usize = 1;
/// Full rounds of the permutation (half before, half after the partial rounds).
pub const POSEIDON_FULL_ROUNDS: usize = 8;
/// Partial rounds of the permutation.
pub const POSEIDON_PARTIAL_ROUNDS: usize = 31;
/// The domain tag of the length prefix: ASCII `"PetrelP1"` read as a big-endian `u64`.
pub const POSEIDON_LENGTH_TAG: u64 = u64::from_be_bytes(*b"PetrelP1");

/// An element of the BLS12-377 scalar field (= the base field of `ed-on-bls12-377`), the native
/// field of Petrel's circuits and the input/output type of [`poseidon_hash`].
///
/// Bytes are 32, little-endian, canonical (below the modulus).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FieldElement(pub Fr);

impl FieldElement {
    /// Zero.
    pub const ZERO: Self = Self(<Fr as AdditiveGroup>::ZERO);
    /// One.
    pub const ONE: Self = Self(<Fr as Field>::ONE);

    /// The element `v`.
    pub fn from_u64(v: u64) -> Self {
        Self(Fr::from(v))
    }

    /// The element `v`.
    pub fn from_u128(v: u128) -> Self {
        Self(Fr::from(v))
    }

    /// Interprets `bytes` as a little-endian integer (any length) and reduces it mod p.
    pub fn from_bytes_mod_order(bytes: &[u8]) -> Self {
        Self(Fr::from_le_bytes_mod_order(bytes))
    }

    /// The canonical 32-byte little-endian encoding.
    pub fn to_bytes(&self) -> [u8; 32] {
        bigint_to_bytes(self.0.into_bigint())
    }

    /// Decodes 32 little-endian bytes, rejecting values that are not below the modulus.
    pub fn from_canonical_bytes(bytes: &[u8; 32]) -> Result<Self, CryptoError> {
        Fr::from_bigint(bytes_to_bigint(bytes)).map(Self).ok_or(CryptoError::NonCanonicalField)
    }

    /// Splits a Blake2b-256 digest into two field elements: bytes 0..16 and bytes 16..32, each
    /// read as a little-endian 128-bit integer (so each is below 2^128 and a circuit can
    /// recompose it from 128 bits without any reduction).
    pub fn from_hash(hash: &Blake2bHash) -> [FieldElement; 2] {
        let b = hash.as_bytes();
        let mut lo = [0u8; 16];
        let mut hi = [0u8; 16];
        lo.copy_from_slice(&b[..16]);
        hi.copy_from_slice(&b[16..]);
        [Self::from_u128(u128::from_le_bytes(lo)), Self::from_u128(u128::from_le_bytes(hi))]
    }

    /// The arkworks field element.
    pub fn inner(&self) -> Fr {
        self.0
    }

    /// Lower-case hex of [`Self::to_bytes`] (little-endian).
    pub fn to_hex(&self) -> String {
        hex::encode(self.to_bytes())
    }
}

impl From<Fr> for FieldElement {
    fn from(v: Fr) -> Self {
        Self(v)
    }
}

impl From<FieldElement> for Fr {
    fn from(v: FieldElement) -> Self {
        v.0
    }
}

impl fmt::Debug for FieldElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FieldElement(0x{})", self.to_hex())
    }
}

impl Serialize for FieldElement {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        crate::serde_bytes::serialize(&self.to_bytes(), serializer)
    }
}

impl<'de> Deserialize<'de> for FieldElement {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let bytes = crate::serde_bytes::deserialize::<D, 32>(deserializer)?;
        Self::from_canonical_bytes(&bytes).map_err(serde::de::Error::custom)
    }
}

/// 32 little-endian bytes of a 4-limb integer.
pub(crate) fn bigint_to_bytes(v: BigInt<4>) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&v.to_bytes_le());
    out
}

/// The 4-limb integer of 32 little-endian bytes.
pub(crate) fn bytes_to_bigint(bytes: &[u8; 32]) -> BigInt<4> {
    let mut limbs = [0u64; 4];
    for (limb, chunk) in limbs.iter_mut().zip(bytes.chunks_exact(8)) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        *limb = u64::from_le_bytes(word);
    }
    BigInt::new(limbs)
}

/// The fixed Poseidon parameters (see the module documentation), generated once.
pub fn poseidon_config() -> &'static PoseidonConfig<Fr> {
    static CONFIG: OnceLock<PoseidonConfig<Fr>> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let (ark, mds) = find_poseidon_ark_and_mds::<Fr>(
            u64::from(Fr::MODULUS_BIT_SIZE),
            POSEIDON_RATE,
            POSEIDON_FULL_ROUNDS as u64,
            POSEIDON_PARTIAL_ROUNDS as u64,
            0,
        );
        PoseidonConfig::new(
            POSEIDON_FULL_ROUNDS,
            POSEIDON_PARTIAL_ROUNDS,
            POSEIDON_ALPHA,
            mds,
            ark,
            POSEIDON_RATE,
            POSEIDON_CAPACITY,
        )
    })
}

/// The length prefix absorbed before `n` inputs: `2^64 · POSEIDON_LENGTH_TAG + n`.
pub fn poseidon_length_prefix(n: usize) -> FieldElement {
    FieldElement::from_u128((u128::from(POSEIDON_LENGTH_TAG) << 64) | n as u128)
}

/// The round constants and MDS matrix of [`poseidon_config`] in fixed-size form.
struct Permutation {
    ark: Vec<[Fr; 3]>,
    mds: [[Fr; 3]; 3],
}

fn permutation() -> &'static Permutation {
    static P: OnceLock<Permutation> = OnceLock::new();
    P.get_or_init(|| {
        let c = poseidon_config();
        let row = |v: &Vec<Fr>| [v[0], v[1], v[2]];
        Permutation { ark: c.ark.iter().map(row).collect(), mds: [row(&c.mds[0]), row(&c.mds[1]), row(&c.mds[2])] }
    })
}

#[inline]
fn sbox(x: &mut Fr) {
    // x^17 = x^16 · x
    let mut y = x.square();
    y.square_in_place();
    y.square_in_place();
    y.square_in_place();
    *x *= y;
}

/// The Poseidon permutation of width 3: the same rounds as arkworks' `PoseidonSponge::permute`
/// (half the full rounds, the partial rounds on the first element, the other full rounds; each
/// round adds its constants, applies the S-box and multiplies by the MDS matrix), on a fixed-size
/// state without allocation. Checked against the arkworks sponge by tests.
fn permute(state: &mut [Fr; 3]) {
    let p = permutation();
    let half = POSEIDON_FULL_ROUNDS / 2;
    for (round, ark) in p.ark.iter().enumerate() {
        for (s, a) in state.iter_mut().zip(ark) {
            *s += a;
        }
        if round < half || round >= half + POSEIDON_PARTIAL_ROUNDS {
            state.iter_mut().for_each(sbox);
        } else {
            sbox(&mut state[0]);
        }
        let m = &p.mds;
        *state = [
            state[0] * m[0][0] + state[1] * m[0][1] + state[2] * m[0][2],
            state[0] * m[1][0] + state[1] * m[1][1] + state[2] * m[1][2],
            state[0] * m[2][0] + state[1] * m[2][1] + state[2] * m[2][2],
        ];
    }
}

/// Poseidon hash of a sequence of field elements (length-prefixed, see the module docs).
///
/// A duplex sponge with capacity 1 and rate 2 exactly as arkworks' `PoseidonSponge` absorbs and
/// squeezes (rate elements are added into state positions 1 and 2; the state is permuted only when
/// more input remains, and once before squeezing), with the allocation-free `permute` above.
pub fn poseidon_hash(inputs: &[FieldElement]) -> FieldElement {
    let mut state = [Fr::ZERO; 3];
    let mut next = 0usize;
    let prefix = poseidon_length_prefix(inputs.len()).0;
    for x in std::iter::once(prefix).chain(inputs.iter().map(|e| e.0)) {
        if next == POSEIDON_RATE {
            permute(&mut state);
            next = 0;
        }
        state[POSEIDON_CAPACITY + next] += x;
        next += 1;
    }
    permute(&mut state);
    FieldElement(state[POSEIDON_CAPACITY])
}

/// The reference computation with arkworks' sponge, which the circuit's `PoseidonSpongeVar`
/// mirrors; [`poseidon_hash`] must always equal it.
pub fn poseidon_hash_reference(inputs: &[FieldElement]) -> FieldElement {
    let mut elems = Vec::with_capacity(inputs.len() + 1);
    elems.push(poseidon_length_prefix(inputs.len()).0);
    elems.extend(inputs.iter().map(|e| e.0));
    let mut sponge = PoseidonSponge::<Fr>::new(poseidon_config());
    sponge.absorb(&elems);
    FieldElement(sponge.squeeze_native_field_elements(1)[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elems(vals: &[u64]) -> Vec<FieldElement> {
        vals.iter().copied().map(FieldElement::from_u64).collect()
    }

    #[test]
    fn fast_permutation_equals_the_arkworks_sponge() {
        let mut x = FieldElement::from_u64(0x5eed);
        for n in 0..24u64 {
            let inputs: Vec<_> = (0..n)
                .map(|i| {
                    x = poseidon_hash_reference(&[x, FieldElement::from_u64(i)]);
                    x
                })
                .collect();
            assert_eq!(poseidon_hash(&inputs), poseidon_hash_reference(&inputs), "{n} inputs");
        }
    }

    #[test]
    fn modulus_is_the_documented_one() {
        assert_eq!(Fr::MODULUS_BIT_SIZE, 253);
        assert_eq!(
            hex::encode(Fr::MODULUS.to_bytes_be()),
            "12ab655e9a2ca55660b44d1e5c37b00159aa76fed00000010a11800000000001"
        );
    }

    #[test]
    fn sbox_is_a_permutation() {
        // x^17 is a bijection iff gcd(17, p - 1) = 1, i.e. (p - 1) mod 17 != 0.
        let p_minus_1 = -FieldElement::ONE.0;
        let r = p_minus_1.into_bigint();
        let mut rem = 0u128;
        for limb in r.0.iter().rev() {
            rem = ((rem << 64) | u128::from(*limb)) % 17;
        }
        assert_ne!(rem, 0);
    }

    #[test]
    fn config_shape() {
        let c = poseidon_config();
        assert_eq!(c.alpha, 17);
        assert_eq!(c.rate, 2);
        assert_eq!(c.capacity, 1);
        assert_eq!(c.full_rounds, 8);
        assert_eq!(c.partial_rounds, 31);
        assert_eq!(c.ark.len(), 39);
        assert_eq!(c.mds.len(), 3);
    }

    #[test]
    fn length_prefix_is_the_documented_one() {
        assert_eq!(POSEIDON_LENGTH_TAG, 0x5065_7472_656c_5031);
        let expected = Fr::from(0x5065_7472_656c_5031u64) * Fr::from(2u64).pow([64]) + Fr::from(5u64);
        assert_eq!(poseidon_length_prefix(5).0, expected);
    }

    #[test]
    fn length_prefix_separates_lengths() {
        let a = poseidon_hash(&elems(&[1, 2]));
        let b = poseidon_hash(&elems(&[1, 2, 0]));
        let c = poseidon_hash(&elems(&[1, 2, 0, 0]));
        assert_ne!(a, b);
        assert_ne!(b, c);
        assert_ne!(poseidon_hash(&[]), poseidon_hash(&elems(&[0])));
        assert_eq!(a, poseidon_hash(&elems(&[1, 2])));
    }

    #[test]
    fn construction_matches_a_plain_sponge() {
        // Re-derive the documented construction step by step with a fresh sponge.
        let inputs = elems(&[7, 8, 9]);
        let mut sponge = PoseidonSponge::<Fr>::new(poseidon_config());
        let prefix = Fr::from(u128::from(POSEIDON_LENGTH_TAG) * (1u128 << 64) + 3);
        sponge.absorb(&prefix);
        for i in &inputs {
            sponge.absorb(&i.0);
        }
        let out = sponge.squeeze_native_field_elements(1)[0];
        assert_eq!(poseidon_hash(&inputs).0, out);
    }

    #[test]
    fn known_answers() {
        let cases: [(&[u64], &str); 4] = [
            (&[], "5ca21cb3ba06863814965cc36af09bc05fbb1a278e60a8f7f9f40e4e77fd2411"),
            (&[0], "9e5151752ef2384df8e6743ec400dcea14082d15836254d9236427016561b302"),
            (&[1, 2], "0de3ed31e61888133f0595699e0c50a967477f8780f294e7b891e58622ca660a"),
            (&[1, 2, 3, 4, 5], "0752e0c8f86cc4edf30071b7024c7c70bf2bce9fdbb71bf98b8ce636fbd92903"),
        ];
        let got: Vec<_> = cases.iter().map(|(inputs, _)| poseidon_hash(&elems(inputs)).to_hex()).collect();
        for ((inputs, expected), got) in cases.iter().zip(&got) {
            assert_eq!(got, expected, "poseidon_hash({inputs:?})");
        }
    }

    #[test]
    fn bytes_round_trip_and_canonicity() {
        for v in [0u64, 1, 42, u64::MAX] {
            let e = FieldElement::from_u64(v);
            assert_eq!(FieldElement::from_canonical_bytes(&e.to_bytes()).unwrap(), e);
        }
        let minus_one = FieldElement(-Fr::ONE);
        let bytes = minus_one.to_bytes();
        assert_eq!(FieldElement::from_canonical_bytes(&bytes).unwrap(), minus_one);

        // p itself, p + 1 and 2^256 - 1 are rejected.
        let p = bigint_to_bytes(Fr::MODULUS);
        assert_eq!(FieldElement::from_canonical_bytes(&p), Err(CryptoError::NonCanonicalField));
        let mut p1 = p;
        p1[0] += 1;
        assert_eq!(FieldElement::from_canonical_bytes(&p1), Err(CryptoError::NonCanonicalField));
        assert_eq!(FieldElement::from_canonical_bytes(&[0xff; 32]), Err(CryptoError::NonCanonicalField));
        // ...while reduction mod p maps p to zero.
        assert_eq!(FieldElement::from_bytes_mod_order(&p), FieldElement::ZERO);
        assert_eq!(FieldElement::from_bytes_mod_order(&[5, 1]), FieldElement::from_u64(261));
    }

    #[test]
    fn from_hash_splits_little_endian_halves() {
        let mut b = [0u8; 32];
        b[0] = 1;
        b[15] = 0x80;
        b[16] = 2;
        let [lo, hi] = FieldElement::from_hash(&Blake2bHash(b));
        assert_eq!(lo, FieldElement::from_u128(1 | (0x80u128 << 120)));
        assert_eq!(hi, FieldElement::from_u64(2));
        let [lo, hi] = FieldElement::from_hash(&Blake2bHash([0xff; 32]));
        assert_eq!(lo, FieldElement::from_u128(u128::MAX));
        assert_eq!(hi, FieldElement::from_u128(u128::MAX));
    }

    #[test]
    fn serde_round_trip() {
        let e = FieldElement::from_u64(0x0102);
        let cfg = bincode::config::standard();
        let bin = bincode::serde::encode_to_vec(e, cfg).unwrap();
        assert_eq!(bin, e.to_bytes());
        let (back, _): (FieldElement, usize) = bincode::serde::decode_from_slice(&bin, cfg).unwrap();
        assert_eq!(back, e);

        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(json, format!("\"{}\"", e.to_hex()));
        assert_eq!(serde_json::from_str::<FieldElement>(&json).unwrap(), e);

        let p = bigint_to_bytes(Fr::MODULUS);
        assert!(bincode::serde::decode_from_slice::<FieldElement, _>(&p, cfg).is_err());
        assert!(serde_json::from_str::<FieldElement>(&format!("\"{}\"", hex::encode(p))).is_err());
    }
}
