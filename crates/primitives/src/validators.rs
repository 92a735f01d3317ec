//! Validator sets, slots and macro justifications.
//!
//! A validator set lists validators in slot order: validator `i` owns the `slots` consecutive slots
//! after those of validators `0..i`; all slots of the policy are owned. A macro block is justified by
//! a signer bitmap over the **slots** and one Schnorr signature per signing validator, in validator
//! order. A validator signs with all of its slots or none, and the signers must hold at least
//! `2f+1` slots ([`Policy::two_f_plus_one`]).
//!
//! The signed message is a Poseidon digest that a circuit can recompute cheaply (see
//! [`macro_signing_message`]): the header hash split into two field elements, the block number and
//! round, and for election blocks a Poseidon commitment to the next validator set's keys and slots.

use petrel_crypto::{FieldElement, SchnorrPublicKey, SchnorrSecretKey, SchnorrSignature, poseidon_hash};
use serde::{Deserialize, Serialize};

use crate::{Address, Blake2bHash, Hasher, Policy};

/// Most validators in one set.
pub const MAX_VALIDATORS: usize = 1024;

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
}

/// A validator set: who may produce and sign blocks during one epoch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validators(pub Vec<Validator>);

/// Why a validator set or a justification is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidatorsError {
    /// No validators.
    #[error("empty validator set")]
    Empty,
    /// More than [`MAX_VALIDATORS`].
    #[error("{0} validators, more than the maximum")]
    TooMany(usize),
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
    /// Number of signatures differs from the number of signing validators.
    #[error("{signers} signing validators but {signatures} signatures")]
    SignatureCount {
        /// Validators marked in the bitmap.
        signers: usize,
        /// Signatures given.
        signatures: usize,
    },
    /// Fewer than 2f+1 slots signed.
    #[error("only {got} signer slots, {needed} needed")]
    TooFewSigners {
        /// Slots that signed.
        got: u32,
        /// 2f+1.
        needed: u16,
    },
    /// A signature does not verify.
    #[error("signature of validator {0} is invalid")]
    BadSignature(usize),
}

impl Validators {
    /// Checks the set against the policy.
    pub fn validate(&self, policy: &Policy) -> Result<(), ValidatorsError> {
        if self.0.is_empty() {
            return Err(ValidatorsError::Empty);
        }
        if self.0.len() > MAX_VALIDATORS {
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

    /// Poseidon commitment to the keys and slot counts, as signed in election blocks.
    pub fn commitment(&self) -> FieldElement {
        let mut inputs = Vec::with_capacity(2 + 3 * self.0.len());
        inputs.push(FieldElement::from_u64(TAG_VALIDATORS));
        inputs.push(FieldElement::from_u64(self.0.len() as u64));
        for v in &self.0 {
            inputs.extend(v.public_key.to_field_elements());
            inputs.push(FieldElement::from_u64(u64::from(v.slots)));
        }
        poseidon_hash(&inputs)
    }

    /// Blake2b of the set in a fixed layout, as committed by election block headers.
    pub fn hash(&self) -> Blake2bHash {
        let mut h = Hasher::new();
        h.u32(self.0.len() as u32);
        for v in &self.0 {
            h.update(&v.public_key.to_bytes()).update(&v.reward_address.0).u16(v.slots);
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
    /// One signature per signing validator, in validator order.
    pub signatures: Vec<SchnorrSignature>,
}

/// The message validators sign for a macro block.
pub fn macro_signing_message(
    block_hash: &Blake2bHash,
    block_number: u32,
    round: u32,
    next_validators: Option<&Validators>,
) -> FieldElement {
    let [lo, hi] = FieldElement::from_hash(block_hash);
    let commitment = next_validators.map_or(FieldElement::from_u64(0), Validators::commitment);
    poseidon_hash(&[
        FieldElement::from_u64(TAG_MACRO),
        FieldElement::from_u64(u64::from(block_number)),
        FieldElement::from_u64(u64::from(round)),
        lo,
        hi,
        commitment,
    ])
}

/// The message the producer of a micro block signs.
pub fn micro_signing_message(block_hash: &Blake2bHash, block_number: u32) -> FieldElement {
    let [lo, hi] = FieldElement::from_hash(block_hash);
    poseidon_hash(&[FieldElement::from_u64(TAG_MICRO), FieldElement::from_u64(u64::from(block_number)), lo, hi])
}

impl MacroJustification {
    /// Signs `message` with every key in `signers` (pairs of validator index and secret key).
    /// Indices must be distinct and in range; validators not listed do not sign.
    pub fn sign(
        validators: &Validators,
        policy: &Policy,
        message: &FieldElement,
        signers: &[(usize, &SchnorrSecretKey)],
    ) -> Self {
        let mut sorted: Vec<_> = signers.to_vec();
        sorted.sort_by_key(|(i, _)| *i);
        let ranges: Vec<_> = validators.slot_ranges().collect();
        let mut bitmap = SlotBitmap::new(policy.slots);
        let mut signatures = Vec::with_capacity(sorted.len());
        for (i, key) in sorted {
            if let Some(&(start, end)) = ranges.get(i) {
                (start..end).for_each(|s| bitmap.set(s));
                signatures.push(key.sign(message));
            }
        }
        Self { signers: bitmap, signatures }
    }

    /// Checks that the signers hold at least 2f+1 slots of `validators` and that every signature
    /// verifies over `message`.
    pub fn verify(
        &self,
        validators: &Validators,
        policy: &Policy,
        message: &FieldElement,
    ) -> Result<(), JustificationError> {
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
        if signing.len() != self.signatures.len() {
            return Err(JustificationError::SignatureCount {
                signers: signing.len(),
                signatures: self.signatures.len(),
            });
        }
        if signed_slots < u32::from(policy.two_f_plus_one()) {
            return Err(JustificationError::TooFewSigners { got: signed_slots, needed: policy.two_f_plus_one() });
        }
        for (i, sig) in signing.iter().zip(&self.signatures) {
            validators.0[*i].public_key.verify(message, sig).map_err(|_| JustificationError::BadSignature(*i))?;
        }
        Ok(())
    }
}
