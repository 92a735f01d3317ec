//! The statement: a segment of election handoffs.
//!
//! Public inputs, in this order: `start_epoch`, `start_commitment`, `end_epoch`, `end_commitment`,
//! `end_hash_lo`, `end_hash_hi`. The circuit holds the witness that there are election blocks
//! `start_epoch + 1 ..= end_epoch` (between 1 and `K` of them), where each block `n`:
//!
//! * is signed, by an aggregated Schnorr signature, by validators of the set committed by block
//!   `n − 1` (the start commitment for the first) holding at least 2f+1 slots;
//! * over the message `poseidon([TAG_MACRO·2^64 + number·2^32 + round, lo, hi, commitment])` with
//!   `number = G + n·E` (the election block of epoch `n`), a 32-bit round, its hash `(lo, hi)` and
//!   the commitment of the set it names;
//!
//! and the last one has the end commitment and hash. Steps after the last block are padding: they
//! pass the set through unchanged and check nothing else. The shape (`K`, `max_validators`, the
//! policy's `G`, `E` and 2f+1) is fixed per circuit ([`Shape`]).

use ark_bls12_377::Fr;
use ark_r1cs_std::prelude::*;
use ark_relations::gr1cs::{ConstraintSynthesizer, ConstraintSystemRef, SynthesisError};
use petrel_crypto::{Blake2bHash, FieldElement, SchnorrSignature};
use petrel_primitives::{Policy, Validators};

use crate::gadgets::{self, Bit, Fp, SetVar, SignatureVar};

/// The fixed shape of a segment circuit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Shape {
    /// Handoffs per segment (`K`).
    pub handoffs: usize,
    /// Validators per set (the policy's `max_validators`).
    pub max_validators: usize,
    /// The genesis block number (`G`).
    pub genesis_block_number: u32,
    /// Blocks per epoch (`E`).
    pub blocks_per_epoch: u32,
    /// Slots that must sign (2f+1).
    pub threshold: u16,
}

impl Shape {
    /// The shape for `policy` with `handoffs` per segment.
    pub fn new(policy: &Policy, handoffs: usize) -> Self {
        Self {
            handoffs: handoffs.max(1),
            max_validators: usize::from(policy.max_validators),
            genesis_block_number: policy.genesis_block_number,
            blocks_per_epoch: policy.blocks_per_epoch(),
            threshold: policy.two_f_plus_one(),
        }
    }
}

/// The witness of one handoff: the election block's round, hash, the set it names, the signers
/// (by index into the signing set) and the aggregated signature.
#[derive(Clone, Debug)]
pub struct Handoff {
    /// The block's round.
    pub round: u32,
    /// The block's hash.
    pub hash: Blake2bHash,
    /// The validator set the block names.
    pub next: Validators,
    /// Which validators of the signing set signed (true at their index).
    pub signers: Vec<bool>,
    /// The aggregated signature.
    pub signature: SchnorrSignature,
}

/// The public inputs of a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// The epoch of the election block the segment starts from.
    pub start_epoch: u32,
    /// The commitment of the set that block names.
    pub start_commitment: FieldElement,
    /// The epoch of the last election block of the segment.
    pub end_epoch: u32,
    /// The commitment of the set it names.
    pub end_commitment: FieldElement,
    /// Its hash.
    pub end_hash: Blake2bHash,
}

impl Segment {
    /// The public inputs in the circuit's order.
    pub fn public_inputs(&self) -> Vec<Fr> {
        let [lo, hi] = FieldElement::from_hash(&self.end_hash);
        vec![
            Fr::from(self.start_epoch),
            self.start_commitment.inner(),
            Fr::from(self.end_epoch),
            self.end_commitment.inner(),
            lo.inner(),
            hi.inner(),
        ]
    }
}

/// The witness of a segment.
#[derive(Clone, Debug)]
pub struct SegmentWitness {
    /// The segment's public inputs.
    pub segment: Segment,
    /// The set named by the start block.
    pub start_set: Validators,
    /// One to `K` handoffs.
    pub handoffs: Vec<Handoff>,
}

/// The circuit: a shape, and a witness when proving (none for the setup).
#[derive(Clone, Debug)]
pub struct SegmentCircuit {
    /// The shape.
    pub shape: Shape,
    /// The witness.
    pub witness: Option<SegmentWitness>,
}

impl ConstraintSynthesizer<Fr> for SegmentCircuit {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> Result<(), SynthesisError> {
        let shape = self.shape;
        let w = self.witness.as_ref();
        if w.is_some_and(|w| w.handoffs.is_empty() || w.handoffs.len() > shape.handoffs) {
            return Err(SynthesisError::Unsatisfiable);
        }
        let inputs = w.map(|w| w.segment.public_inputs());
        let input = |i: usize| {
            Fp::new_input(cs.clone(), || inputs.as_ref().map(|v| v[i]).ok_or(SynthesisError::AssignmentMissing))
        };
        let start_epoch = input(0)?;
        let start_commitment = input(1)?;
        let end_epoch = input(2)?;
        let end_commitment = input(3)?;
        let end_lo = input(4)?;
        let end_hi = input(5)?;

        let mut current = SetVar::witness(&cs, w.map(|w| &w.start_set), shape.max_validators)?;
        current.commitment(&cs)?.enforce_equal(&start_commitment)?;
        let mut epoch = start_epoch;
        let mut commitment = start_commitment;
        let (mut lo, mut hi) = (Fp::zero(), Fp::zero());
        let mut previous_active = Bit::TRUE;
        // Padding steps pass the last set through: their witness repeats it.
        let mut last_set = w.map(|w| &w.start_set);
        for step in 0..shape.handoffs {
            let handoff = w.map(|w| w.handoffs.get(step));
            let active =
                Bit::new_witness(cs.clone(), || handoff.map(|h| h.is_some()).ok_or(SynthesisError::AssignmentMissing))?;
            if step == 0 {
                active.enforce_equal(&Bit::TRUE)?;
            } else {
                // Active steps come first.
                (&active & &!&previous_active).enforce_equal(&Bit::FALSE)?;
            }
            if let Some(Some(h)) = handoff {
                last_set = Some(&h.next);
            }
            let next = SetVar::witness(&cs, last_set, shape.max_validators)?;
            next.conditional_enforce_equal(&current, &!&active)?;
            let next_commitment = next.commitment(&cs)?;

            let number = gadgets::constant(u128::from(shape.genesis_block_number))
                + (&epoch + gadgets::constant(1)) * gadgets::constant(u128::from(shape.blocks_per_epoch));
            let round = gadgets::round_witness(&cs, handoff.map(|h| h.map_or(0, |h| h.round)))?;
            let hash = handoff.map(|h| h.map(|h| FieldElement::from_hash(&h.hash)));
            let part = |i: usize| {
                Fp::new_witness(cs.clone(), || {
                    hash.map(|h| h.map_or(Fr::from(0u8), |h| h[i].inner())).ok_or(SynthesisError::AssignmentMissing)
                })
            };
            let (block_lo, block_hi) = (part(0)?, part(1)?);
            let message = gadgets::signing_message(
                &cs,
                gadgets::header_element(&number, &round),
                block_lo.clone(),
                block_hi.clone(),
                next_commitment.clone(),
            )?;

            let signers = (0..shape.max_validators)
                .map(|i| {
                    Bit::new_witness(cs.clone(), || {
                        handoff
                            .map(|h| h.is_some_and(|h| h.signers.get(i).copied().unwrap_or(false)))
                            .ok_or(SynthesisError::AssignmentMissing)
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            gadgets::enforce_threshold(&cs, &current.slots, &signers, shape.threshold, &active)?;
            let key = gadgets::aggregate_key(&current.keys, &signers)?;
            let parts = match handoff {
                None => None,
                Some(None) => Some((ark_ed_on_bls12_377::EdwardsAffine::default(), Default::default())),
                Some(Some(h)) => Some(h.signature.to_parts().map_err(|_| SynthesisError::Unsatisfiable)?),
            };
            let signature = SignatureVar::witness(&cs, parts)?;
            gadgets::verify_schnorr(&cs, &key, &message, &signature, &active)?;

            epoch += Fp::from(active.clone());
            commitment = next_commitment;
            lo = active.select(&block_lo, &lo)?;
            hi = active.select(&block_hi, &hi)?;
            current = next;
            previous_active = active;
        }
        epoch.enforce_equal(&end_epoch)?;
        commitment.enforce_equal(&end_commitment)?;
        lo.enforce_equal(&end_lo)?;
        hi.enforce_equal(&end_hi)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::SyntheticChain;
    use ark_relations::gr1cs::ConstraintSystem;

    /// 4 validators of 4 slots (2f+1 = 11: three sign).
    fn policy() -> Policy {
        Policy { slots: 16, max_validators: 4, ..Policy::TEST }
    }

    fn count(shape: Shape) -> usize {
        let cs = ConstraintSystem::<Fr>::new_ref();
        cs.set_mode(ark_relations::gr1cs::SynthesisMode::Setup);
        SegmentCircuit { shape, witness: None }.generate_constraints(cs.clone()).unwrap();
        cs.num_constraints()
    }

    fn satisfied(shape: Shape, witness: SegmentWitness) -> bool {
        let cs = ConstraintSystem::<Fr>::new_ref();
        match (SegmentCircuit { shape, witness: Some(witness) }).generate_constraints(cs.clone()) {
            Ok(()) => cs.is_satisfied().unwrap(),
            Err(_) => false,
        }
    }

    #[test]
    fn a_segment_of_real_handoffs_satisfies_the_circuit_padded_or_full() {
        let chain = SyntheticChain::new(policy(), 4, 4, 1);
        let shape = Shape::new(&policy(), 2);
        assert!(satisfied(shape, chain.segment(0, 2)));
        assert!(satisfied(shape, chain.segment(2, 2)), "segments chain: one's end is the next one's start");
        assert!(satisfied(shape, chain.segment(3, 1)), "a trailing partial segment is padded");
        // Three sets of three validators under a policy of four: padded keys and slots.
        let chain = SyntheticChain::new(policy(), 3, 2, 2);
        assert!(satisfied(shape, chain.segment(0, 2)));
    }

    #[test]
    fn wrong_witnesses_and_public_inputs_are_unsatisfied() {
        let chain = SyntheticChain::new(policy(), 4, 4, 3);
        let shape = Shape::new(&policy(), 2);
        let good = chain.segment(0, 2);
        let bad = |f: &dyn Fn(&mut SegmentWitness)| {
            let mut w = good.clone();
            f(&mut w);
            !satisfied(shape, w)
        };
        // A forged signature: another block's.
        assert!(bad(&|w| w.handoffs[1].signature = chain.handoffs[2].signature));
        // A signer claimed who did not sign, or a signer dropped from the bitmap.
        assert!(bad(&|w| w.handoffs[0].signers = vec![true; 4]));
        assert!(bad(&|w| {
            let i = w.handoffs[0].signers.iter().position(|s| *s).unwrap();
            w.handoffs[0].signers[i] = false;
        }));
        // Another named set, round or hash than signed.
        assert!(bad(&|w| w.handoffs[0].next = chain.sets[3].clone()));
        assert!(bad(&|w| w.handoffs[1].round += 1));
        assert!(bad(&|w| w.handoffs[1].hash = chain.hashes[3]));
        // A gap: the second step is the block of epoch 3, not 2.
        assert!(bad(&|w| w.handoffs[1] = chain.handoffs[2].clone()));
        // A start set that is not the committed one.
        assert!(bad(&|w| w.start_set = chain.sets[1].clone()));
        // Public inputs: another start or end, swapped, another end hash or epoch.
        assert!(bad(&|w| w.segment.start_epoch = 1));
        assert!(bad(&|w| w.segment.end_epoch = 3));
        assert!(bad(&|w| w.segment.end_commitment = w.segment.start_commitment));
        assert!(bad(&|w| std::mem::swap(&mut w.segment.start_commitment, &mut w.segment.end_commitment)));
        assert!(bad(&|w| w.segment.end_hash = chain.hashes[1]));
        // A padded segment may not claim the padding's epoch.
        let mut short = chain.segment(0, 1);
        short.segment.end_epoch = 2;
        assert!(!satisfied(shape, short));
        // No handoff at all, or more than K: refused before any constraint.
        assert!(!satisfied(shape, chain.segment(0, 0)));
        assert!(!satisfied(shape, chain.segment(0, 3)));
    }

    /// Too few signers: an aggregate by two validators (8 of 16 slots) is a valid signature, but
    /// not a justification.
    #[test]
    fn a_valid_aggregate_of_too_few_slots_is_unsatisfied() {
        use petrel_primitives::MacroJustification;
        let chain = SyntheticChain::new(policy(), 4, 1, 4);
        let mut w = chain.segment(0, 1);
        let h = &chain.handoffs[0];
        let message = petrel_primitives::validators::macro_signing_message_with(
            &h.hash,
            policy().election_block_of(1),
            h.round,
            h.next.commitment(4),
        );
        // Re-sign with two of the pool keys that are members 0 and 1 of the start set.
        let keys: Vec<_> = (0..2)
            .map(|i| {
                let seed = petrel_crypto::Blake2bHash::digest(format!("petrel/zkp/test/4/{i}").as_bytes());
                petrel_crypto::SchnorrSecretKey::from_seed(seed.as_bytes())
            })
            .collect();
        let j = MacroJustification::sign(&chain.sets[0], &policy(), &message, &[(0, &keys[0]), (1, &keys[1])]).unwrap();
        assert!(matches!(
            j.verify(&chain.sets[0], &policy(), &message),
            Err(petrel_primitives::validators::JustificationError::TooFewSigners { .. })
        ));
        w.handoffs[0].signature = j.signature;
        w.handoffs[0].signers = vec![true, true, false, false];
        assert!(!satisfied(Shape::new(&policy(), 1), w));
    }

    /// The constraint counts, frozen: a change to any gadget shows here. At 16 validators a
    /// chained handoff costs 9 982 constraints (goal: at most 10 000).
    #[test]
    fn constraint_counts_are_frozen() {
        let devnet = Policy::DEVNET;
        let one = count(Shape::new(&devnet, 1));
        let two = count(Shape::new(&devnet, 2));
        assert_eq!((one, two - one), (12_952, 9_982));
        assert_eq!(count(Shape::new(&policy(), 1)), 8_776);
    }
}
