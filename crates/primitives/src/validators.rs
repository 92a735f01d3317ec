//! Validator sets, slots and macro justifications.
//!
//! A validator set lists validators in slot order: validator `i` owns the `slots` consecutive slots
//! after those of validators `0..i`; all slots of the policy are owned. Every validator carries a
//! **proof of possession** of its key ([`SchnorrSecretKey::prove_possession`]), checked when the key
//! enters a validator set (see [`Validators::verify_possession`]), so that plain sums of keys are
//! safe against rogue keys.
//!
//! A macro block is justified by a signer bitmap over the **slots** and **one aggregated Schnorr
//! signature** under the sum of the signing validators' keys ([`petrel_crypto::sign_aggregate`]).
//! A validator signs with all of its slots or none, and the signers must hold at least `2f+1`
//! slots ([`Policy::two_f_plus_one`]).
//!
//! The signed message is a Poseidon digest that a circuit can recompute cheaply (see
//! [`macro_signing_message`]): a header element packing a tag, the block number and round, the
//! header hash split into two field elements, and for election blocks the commitment to the next
//! validator set ([`Validators::commitment`]), padded to the policy's `max_validators` so that it
//! has one shape per policy.

use petrel_crypto::{
    FieldElement, SchnorrPublicKey, SchnorrSecretKey, SchnorrSignature, aggregate_public_keys, poseidon_hash,
    sign_aggregate,
};
use serde::{Deserialize, Serialize};

use crate::{Address, Blake2bHash, Hasher, Policy};

/// Most validators in one set under any policy (the bound of [`Policy::max_validators`]).
pub const MAX_VALIDATORS: usize = 1024;
/// Bits of one validator's slot count in the commitment.
pub const SLOT_BITS: u32 = 15;
/// Slot counts packed into one field element of the commitment (16 × 15 = 240 bits).
pub const SLOTS_PER_ELEMENT: usize = 16;

/// Domain tag of macro-block signing messages.
const TAG_MACRO: u64 = 0x5045_5452_454c_4d41; // "PETRELMA"
/// Domain tag of micro-block signing messages.
const TAG_MICRO: u64 = 0x5045_5452_454c_4d49; // "PETRELMI"
/// Domain tag of validator-set commitments.
const TAG_VALIDATORS: u64 = 0x5045_5452_454c_5653; // "PETRELVS"

/// One validator of an epoch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validator {
    /// Key that signs blocks.
    pub public_key: SchnorrPublicKey,
    /// Account that receives the validator's batch rewards.
    pub reward_address: Address,
    /// Number of slots the validator owns.
    pub slots: u16,
    /// The key's proof of possession: its signature on
    /// [`petrel_crypto::schnorr::possession_message`].
    pub proof_of_possession: SchnorrSignature,
}

/// A validator set: who may produce and sign blocks during one epoch.
///
/// Decoding refuses more than [`MAX_VALIDATORS`] entries before it decodes any key, and decodes
/// keys with their subgroup checks deferred ([`SchnorrPublicKey::from_bytes_deferred`]): a
/// message costs at most 1,024 decompressions (about 24 ms), never 1,024 scalar multiplications.
/// The keys are checked, in one pass, by [`Validators::check_keys`] once the block carrying them
/// is plausible (in the chain: after its justification by the current set verified), and in any
/// case before they verify a signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Validators(pub Vec<Validator>);

impl<'de> Deserialize<'de> for Validators {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Seq;
        impl<'de> serde::de::Visitor<'de> for Seq {
            type Value = Validators;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "at most {MAX_VALIDATORS} validators")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Validators, A::Error> {
                if seq.size_hint().is_some_and(|n| n > MAX_VALIDATORS) {
                    return Err(serde::de::Error::invalid_length(seq.size_hint().unwrap_or(0), &self));
                }
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX_VALIDATORS));
                while let Some(v) = seq.next_element()? {
                    if out.len() == MAX_VALIDATORS {
                        return Err(serde::de::Error::invalid_length(MAX_VALIDATORS + 1, &self));
                    }
                    out.push(v);
                }
                Ok(Validators(out))
            }
        }
        struct NewType;
        impl<'de> serde::de::Visitor<'de> for NewType {
            type Value = Validators;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "a validator set")
            }
            fn visit_newtype_struct<D: serde::Deserializer<'de>>(self, d: D) -> Result<Validators, D::Error> {
                d.deserialize_seq(Seq)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Validators, A::Error> {
                Seq.visit_seq(seq)
            }
        }
        d.deserialize_newtype_struct("Validators", NewType)
    }
}

/// Why a validator set or a justification is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidatorsError {
    /// No validators.
    #[error("empty validator set")]
    Empty,
    /// More than the policy's `max_validators`.
    #[error("{0} validators, more than the maximum")]
    TooMany(usize),
    /// A key's proof of possession does not verify.
    #[error("validator {0} has no valid proof of possession of its key")]
    BadProofOfPossession(usize),
    /// A validator owns no slots.
    #[error("validator {0} owns no slots")]
    NoSlots(usize),
    /// The slots do not add up to the policy's slot count.
    #[error("validators own {got} slots, the policy has {expected}")]
    SlotCountMismatch {
        /// Policy slots.
        expected: u16,
        /// Sum over validators.
        got: u32,
    },
    /// A key appears twice.
    #[error("validator {0} repeats an earlier key")]
    DuplicateKey(usize),
    /// A key is not in the prime-order subgroup (found by [`Validators::check_keys`]).
    #[error("validator {0} has a key outside the prime-order subgroup")]
    InvalidKey(usize),
}

/// Why a macro justification does not justify a block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JustificationError {
    /// The block carries no justification.
    #[error("missing justification")]
    Missing,
    /// The bitmap has the wrong number of words.
    #[error("signer bitmap has {got} words, expected {expected}")]
    BitmapLength {
        /// Words for the policy's slots.
        expected: usize,
        /// Words given.
        got: usize,
    },
    /// A bit beyond the last slot is set.
    #[error("signer slot {0} is outside the validator set")]
    SignerOutsideValidatorSet(u32),
    /// Only part of a validator's slots are marked.
    #[error("validator {0} signs with only part of its slots")]
    PartialValidator(usize),
    /// Fewer than 2f+1 slots signed.
    #[error("only {got} signer slots, {needed} needed")]
    TooFewSigners {
        /// Slots that signed.
        got: u32,
        /// 2f+1.
        needed: u16,
    },
    /// The aggregated signature does not verify under the signers' summed keys.
    #[error("the aggregated signature is invalid")]
    BadSignature,
}

impl Validators {
    /// Checks the set against the policy.
    pub fn validate(&self, policy: &Policy) -> Result<(), ValidatorsError> {
        if self.0.is_empty() {
            return Err(ValidatorsError::Empty);
        }
        if self.0.len() > usize::from(policy.max_validators).min(MAX_VALIDATORS) {
            return Err(ValidatorsError::TooMany(self.0.len()));
        }
        let mut total = 0u32;
        let mut keys = std::collections::HashSet::with_capacity(self.0.len());
        for (i, v) in self.0.iter().enumerate() {
            if v.slots == 0 {
                return Err(ValidatorsError::NoSlots(i));
            }
            if !keys.insert(v.public_key.to_bytes()) {
                return Err(ValidatorsError::DuplicateKey(i));
            }
            total += u32::from(v.slots);
        }
        if total != u32::from(policy.slots) {
            return Err(ValidatorsError::SlotCountMismatch { expected: policy.slots, got: total });
        }
        Ok(())
    }

    /// Checks every key's subgroup membership (the check decoding deferred; keys already checked
    /// or in the cache cost a lookup): [`ValidatorsError::InvalidKey`] names the first bad one.
    /// Returns the set with every key marked checked, so that later aggregations skip the lookups.
    pub fn check_keys(&self) -> Result<Validators, ValidatorsError> {
        let mut out = self.clone();
        for (i, v) in out.0.iter_mut().enumerate() {
            v.public_key = v.public_key.check().map_err(|_| ValidatorsError::InvalidKey(i))?;
        }
        Ok(out)
    }

    /// Number of validators.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The validator owning `slot`, if any.
    pub fn owner_of_slot(&self, slot: u16) -> Option<(usize, &Validator)> {
        let mut start = 0u32;
        for (i, v) in self.0.iter().enumerate() {
            let end = start + u32::from(v.slots);
            if u32::from(slot) < end {
                return Some((i, v));
            }
            start = end;
        }
        None
    }

    /// The slot ranges `[start, end)` of every validator, in order.
    pub fn slot_ranges(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.0.iter().scan(0u32, |start, v| {
            let s = *start;
            *start += u32::from(v.slots);
            Some((s, *start))
        })
    }

    /// Checks every key's proof of possession; keys for which `known` holds (members of the
    /// current set, already checked when they entered) are skipped.
    pub fn verify_possession(&self, known: impl Fn(&SchnorrPublicKey) -> bool) -> Result<(), ValidatorsError> {
        for (i, v) in self.0.iter().enumerate() {
            if !known(&v.public_key) && v.public_key.verify_possession(&v.proof_of_possession).is_err() {
                return Err(ValidatorsError::BadProofOfPossession(i));
            }
        }
        Ok(())
    }

    /// Poseidon commitment to the keys and slot counts, as signed in election blocks:
    /// [`poseidon_hash`] of [`Validators::commitment_inputs`].
    pub fn commitment(&self, max_validators: u16) -> FieldElement {
        poseidon_hash(&self.commitment_inputs(max_validators))
    }

    /// The commitment's inputs, of a fixed shape for a given `max_validators` (`M`; a larger set,
    /// which never validates, is committed whole):
    ///
    /// * `TAG_VALIDATORS` ("PETRELVS" as a big-endian `u64`);
    /// * the affine `x` coordinate of each key in set order, then `0` for every missing validator
    ///   up to `M` (the `x` of the identity; `x` determines a point of the prime-order subgroup);
    /// * the slot counts in set order, padded with `0` up to `M`, packed [`SLOTS_PER_ELEMENT`]
    ///   per element, count `k` of a group at bits `15k..15k+15` (little-endian), `⌈M/16⌉`
    ///   elements.
    pub fn commitment_inputs(&self, max_validators: u16) -> Vec<FieldElement> {
        let m = usize::from(max_validators).max(self.0.len());
        let words = m.div_ceil(SLOTS_PER_ELEMENT);
        let mut inputs = Vec::with_capacity(1 + m + words);
        inputs.push(FieldElement::from_u64(TAG_VALIDATORS));
        inputs.extend(self.0.iter().map(|v| v.public_key.to_field_elements()[0]));
        inputs.resize(1 + m, FieldElement::ZERO);
        for w in 0..words {
            let mut bytes = [0u8; 32];
            let mut acc = 0u64;
            let mut bits = 0u32;
            let mut at = 0usize;
            for k in 0..SLOTS_PER_ELEMENT {
                let slots = self.0.get(w * SLOTS_PER_ELEMENT + k).map_or(0, |v| v.slots) & ((1 << SLOT_BITS) - 1);
                acc |= u64::from(slots) << bits;
                bits += SLOT_BITS;
                while bits >= 8 {
                    bytes[at] = acc as u8;
                    acc >>= 8;
                    bits -= 8;
                    at += 1;
                }
            }
            bytes[at] = acc as u8;
            inputs.push(FieldElement::from_bytes_mod_order(&bytes));
        }
        inputs
    }

    /// Blake2b of the set in a fixed layout, as committed by election block headers.
    pub fn hash(&self) -> Blake2bHash {
        let mut h = Hasher::new();
        h.u32(self.0.len() as u32);
        for v in &self.0 {
            h.update(&v.public_key.to_bytes())
                .update(&v.reward_address.0)
                .u16(v.slots)
                .update(&v.proof_of_possession.to_bytes());
        }
        h.finish()
    }
}

/// A set of slots as a bitmap of 64-bit words.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SlotBitmap(pub Vec<u64>);

impl SlotBitmap {
    /// An empty bitmap sized for `slots`.
    pub fn new(slots: u16) -> Self {
        Self(vec![0; usize::from(slots).div_ceil(64)])
    }
    /// Marks a slot (ignored when out of range).
    pub fn set(&mut self, slot: u32) {
        if let Some(w) = self.0.get_mut((slot / 64) as usize) {
            *w |= 1 << (slot % 64);
        }
    }
    /// Whether a slot is marked.
    pub fn get(&self, slot: u32) -> bool {
        self.0.get((slot / 64) as usize).is_some_and(|w| w & (1 << (slot % 64)) != 0)
    }
    /// Number of marked slots in `[start, end)`.
    pub fn count_range(&self, start: u32, end: u32) -> u32 {
        (start..end).filter(|s| self.get(*s)).count() as u32
    }
    /// Number of marked slots.
    pub fn count(&self) -> u32 {
        self.0.iter().map(|w| w.count_ones()).sum()
    }
}

/// The justification of a macro block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MacroJustification {
    /// Slots whose owners signed.
    pub signers: SlotBitmap,
    /// One signature under the sum of the signing validators' keys.
    pub signature: SchnorrSignature,
}

/// The header element of [`macro_signing_message`]: `TAG_MACRO · 2^64 + number · 2^32 + round`.
pub fn macro_header_element(block_number: u32, round: u32) -> FieldElement {
    FieldElement::from_u128((u128::from(TAG_MACRO) << 64) | (u128::from(block_number) << 32) | u128::from(round))
}

/// The message validators sign for a macro block: `poseidon_hash([header, lo, hi, commitment])`
/// with `header` = [`macro_header_element`], `lo`/`hi` the block hash split by
/// [`FieldElement::from_hash`], and `commitment` the next validator set's
/// [`Validators::commitment`] for election blocks, else `0`.
pub fn macro_signing_message(
    block_hash: &Blake2bHash,
    block_number: u32,
    round: u32,
    next_validators: Option<(&Validators, u16)>,
) -> FieldElement {
    let commitment = next_validators.map_or(FieldElement::ZERO, |(v, max)| v.commitment(max));
    macro_signing_message_with(block_hash, block_number, round, commitment)
}

/// [`macro_signing_message`] from an already computed commitment.
pub fn macro_signing_message_with(
    block_hash: &Blake2bHash,
    block_number: u32,
    round: u32,
    commitment: FieldElement,
) -> FieldElement {
    let [lo, hi] = FieldElement::from_hash(block_hash);
    poseidon_hash(&[macro_header_element(block_number, round), lo, hi, commitment])
}

/// The message the producer of a micro block signs.
pub fn micro_signing_message(block_hash: &Blake2bHash, block_number: u32) -> FieldElement {
    let [lo, hi] = FieldElement::from_hash(block_hash);
    poseidon_hash(&[FieldElement::from_u64(TAG_MICRO), FieldElement::from_u64(u64::from(block_number)), lo, hi])
}

impl MacroJustification {
    /// Signs `message` with every key in `signers` (pairs of validator index and secret key) as
    /// one aggregated signature. Indices out of range are ignored; `None` if no key is left (or
    /// the keys sum to the identity).
    pub fn sign(
        validators: &Validators,
        policy: &Policy,
        message: &FieldElement,
        signers: &[(usize, &SchnorrSecretKey)],
    ) -> Option<Self> {
        let ranges: Vec<_> = validators.slot_ranges().collect();
        let mut bitmap = SlotBitmap::new(policy.slots);
        let mut keys = Vec::with_capacity(signers.len());
        let mut seen = std::collections::HashSet::new();
        for &(i, key) in signers {
            if let Some(&(start, end)) = ranges.get(i)
                && seen.insert(i)
            {
                (start..end).for_each(|s| bitmap.set(s));
                keys.push(key);
            }
        }
        let signature = sign_aggregate(&keys, message).ok()?;
        Some(Self { signers: bitmap, signature })
    }

    /// The validators marked in the bitmap and their slot count, after the shape checks (bitmap
    /// length, no bit beyond the last slot, every validator all or nothing).
    pub fn signing_validators(
        &self,
        validators: &Validators,
        policy: &Policy,
    ) -> Result<(Vec<usize>, u32), JustificationError> {
        let words = usize::from(policy.slots).div_ceil(64);
        if self.signers.0.len() != words {
            return Err(JustificationError::BitmapLength { expected: words, got: self.signers.0.len() });
        }
        // Bits beyond the last slot.
        let total = u32::from(policy.slots);
        for slot in total..(words as u32 * 64) {
            if self.signers.get(slot) {
                return Err(JustificationError::SignerOutsideValidatorSet(slot));
            }
        }
        let mut signing = Vec::new();
        let mut signed_slots = 0u32;
        for (i, (start, end)) in validators.slot_ranges().enumerate() {
            let marked = self.signers.count_range(start, end);
            if marked == 0 {
                continue;
            }
            if marked != end - start {
                return Err(JustificationError::PartialValidator(i));
            }
            signed_slots += marked;
            signing.push(i);
        }
        Ok((signing, signed_slots))
    }

    /// Checks that the signers hold at least 2f+1 slots of `validators` and that the aggregated
    /// signature verifies over `message` under the sum of their keys.
    pub fn verify(
        &self,
        validators: &Validators,
        policy: &Policy,
        message: &FieldElement,
    ) -> Result<(), JustificationError> {
        let (signing, signed_slots) = self.signing_validators(validators, policy)?;
        if signed_slots < u32::from(policy.two_f_plus_one()) {
            return Err(JustificationError::TooFewSigners { got: signed_slots, needed: policy.two_f_plus_one() });
        }
        let aggregate = aggregate_public_keys(signing.iter().map(|i| &validators.0[*i].public_key))
            .map_err(|_| JustificationError::BadSignature)?;
        aggregate.verify(message, &self.signature).map_err(|_| JustificationError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;

    fn keys(n: usize) -> Vec<SchnorrSecretKey> {
        (0..n).map(|i| SchnorrSecretKey::from_seed(&crate::Blake2bHash::digest(&(i as u64).to_le_bytes()).0)).collect()
    }

    fn set(keys: &[SchnorrSecretKey], slots: u16) -> Validators {
        let n = keys.len();
        Validators(
            keys.iter()
                .enumerate()
                .map(|(i, k)| Validator {
                    public_key: k.public_key(),
                    reward_address: Address([i as u8; 32]),
                    slots: (usize::from(slots) / n + usize::from(i < usize::from(slots) % n)) as u16,
                    proof_of_possession: k.prove_possession(),
                })
                .collect(),
        )
    }

    #[test]
    fn the_commitment_has_one_shape_per_max_validators() {
        let k = keys(3);
        let v = set(&k, 16); // 6, 5, 5 slots
        let inputs = v.commitment_inputs(16);
        assert_eq!(inputs.len(), 1 + 16 + 1);
        assert_eq!(inputs[0], FieldElement::from_u64(TAG_VALIDATORS));
        for (i, key) in k.iter().enumerate() {
            assert_eq!(inputs[1 + i], key.public_key().to_field_elements()[0]);
        }
        assert!(inputs[4..17].iter().all(|x| *x == FieldElement::ZERO), "padding keys are x = 0");
        assert_eq!(inputs[17], FieldElement::from_u64(6 | (5 << 15) | (5 << 30)));
        // 17 validators take a second slot element; a count beyond 15 bits cannot alias another.
        assert_eq!(v.commitment_inputs(17).len(), 1 + 17 + 2);
        assert_ne!(v.commitment(16), v.commitment(17));
        let mut moved = v.clone();
        moved.0[0].slots += 1;
        moved.0[1].slots -= 1;
        assert_ne!(moved.commitment(16), v.commitment(16));
        // Reward addresses and proofs of possession are not committed (the circuit needs neither).
        let mut other = v.clone();
        other.0[0].reward_address = Address([9; 32]);
        assert_eq!(other.commitment(16), v.commitment(16));
        assert_ne!(other.hash(), v.hash());
    }

    #[test]
    fn an_aggregated_justification_verifies_and_its_bad_shapes_are_named() {
        let policy = Policy::TEST; // 16 slots, 2f+1 = 11
        let k = keys(4); // 4 slots each
        let v = set(&k, policy.slots);
        let msg = macro_signing_message(&crate::Blake2bHash::digest(b"b"), 8, 0, Some((&v, policy.max_validators)));
        let signers: Vec<_> = k.iter().enumerate().take(3).collect();
        let j = MacroJustification::sign(&v, &policy, &msg, &signers).unwrap();
        assert_eq!(j.verify(&v, &policy, &msg), Ok(()));
        assert_eq!(j.signers.count(), 12);
        // Another message.
        assert_eq!(j.verify(&v, &policy, &FieldElement::ONE), Err(JustificationError::BadSignature));
        // Too few slots: two validators sign (8 < 11), even with a valid aggregate.
        let two = MacroJustification::sign(&v, &policy, &msg, &signers[..2]).unwrap();
        assert_eq!(two.verify(&v, &policy, &msg), Err(JustificationError::TooFewSigners { got: 8, needed: 11 }));
        // The bitmap claims a fourth signer: the aggregate no longer matches.
        let mut more = j.clone();
        (12..16).for_each(|s| more.signers.set(s));
        assert_eq!(more.verify(&v, &policy, &msg), Err(JustificationError::BadSignature));
        // Part of a validator's slots.
        let mut part = j.clone();
        part.signers.set(12);
        assert_eq!(part.verify(&v, &policy, &msg), Err(JustificationError::PartialValidator(3)));
        // A bitmap of the wrong length, or a bit beyond the last slot.
        let mut long = j.clone();
        long.signers.0.push(0);
        assert_eq!(long.verify(&v, &policy, &msg), Err(JustificationError::BitmapLength { expected: 1, got: 2 }));
        let mut beyond = j.clone();
        beyond.signers.0[0] |= 1 << 20;
        assert_eq!(beyond.verify(&v, &policy, &msg), Err(JustificationError::SignerOutsideValidatorSet(20)));
        // Duplicate or out-of-range signers are ignored by `sign`; no signer at all gives nothing.
        let dup = MacroJustification::sign(&v, &policy, &msg, &[signers[0], signers[0], (9, &k[0])]).unwrap();
        assert_eq!(dup.signers.count(), 4);
        assert!(MacroJustification::sign(&v, &policy, &msg, &[]).is_none());
    }

    #[test]
    fn proofs_of_possession_are_checked_for_entering_keys_only() {
        let k = keys(3);
        let mut v = set(&k, 16);
        assert_eq!(v.verify_possession(|_| false), Ok(()));
        v.0[2].proof_of_possession = v.0[1].proof_of_possession;
        assert_eq!(v.verify_possession(|_| false), Err(ValidatorsError::BadProofOfPossession(2)));
        let staying = k[2].public_key();
        assert_eq!(v.verify_possession(|key| *key == staying), Ok(()));
    }

    #[test]
    fn decoding_refuses_more_validators_than_any_policy_allows_before_reading_keys() {
        let k = keys(1);
        let one = set(&k, 16).0.remove(0);
        let at_cap = Validators(vec![one.clone(); MAX_VALIDATORS]);
        let bytes = codec::encode(&at_cap).unwrap();
        assert_eq!(codec::decode::<Validators>(&bytes, 1 << 20).unwrap(), at_cap);
        let over = Validators(vec![one; MAX_VALIDATORS + 1]);
        let bytes = codec::encode(&over).unwrap();
        assert!(codec::decode::<Validators>(&bytes, 1 << 20).is_err());
        // A length prefix announcing a million entries with no bytes behind it: refused at once.
        let mut lie = codec::encode(&Validators(Vec::new())).unwrap();
        lie.clear();
        lie.extend(codec::encode(&1_000_000u64).unwrap());
        assert!(codec::decode::<Validators>(&lie, 1 << 20).is_err());
    }

    /// Pinned values of the commitment, the signing message and the aggregated justification
    /// (regression values; a change here is a change of the chain model).
    #[test]
    fn known_answers() {
        let policy = Policy::TEST;
        let k = keys(4);
        let v = set(&k, policy.slots);
        let commitment = v.commitment(policy.max_validators);
        let hash = crate::Blake2bHash::digest(b"petrel");
        let msg = macro_signing_message(&hash, 8, 1, Some((&v, policy.max_validators)));
        assert_eq!(msg, macro_signing_message_with(&hash, 8, 1, commitment));
        let plain = macro_signing_message(&hash, 4, 0, None);
        let signers: Vec<_> = k.iter().enumerate().take(3).collect();
        let j = MacroJustification::sign(&v, &policy, &msg, &signers).unwrap();
        assert_eq!(commitment.to_hex(), KAT_COMMITMENT);
        assert_eq!(msg.to_hex(), KAT_MESSAGE);
        assert_eq!(plain.to_hex(), KAT_PLAIN);
        assert_eq!(j.signature.to_hex(), KAT_SIGNATURE);
        assert_eq!(j.signers.0, vec![0x0fff]);
    }

    const KAT_COMMITMENT: &str = "bff3ec9a2fd6e9371fcc2181a0c2ba6b76a98913459ea42cb41cf02097895007";
    const KAT_MESSAGE: &str = "80df8e9150b74120fee40021b69845e003c57485918c36f365e33261380ef707";
    const KAT_PLAIN: &str = "a62e1876e7f6faab7489cacd6cd492c7d5ac73c55440d549a9d3193c73639105";
    const KAT_SIGNATURE: &str = "94860aa3e49f9aca3b8e084f7ecb45054833ba6857cbe3dc1919f831a587100f\
                                 6b2b5811c311a5f808a7aaa6bc1d92b00c6311298c2815bd39dba14be74aef02";
}
