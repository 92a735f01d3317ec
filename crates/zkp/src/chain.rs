//! Segment proofs on a chain: witnesses from election blocks, the wire form, and checking a proof
//! chain from a known election block.

use petrel_crypto::{Blake2bHash, FieldElement};
use petrel_primitives::wire::ZkpSegment;
use petrel_primitives::{MacroBlock, Policy};

use crate::circuit::{Handoff, Segment, SegmentWitness};
use crate::proof::{SegmentProof, Verifier, ZkpError};

/// The wire form of a proven segment.
pub fn to_wire(segment: &Segment, proof: &SegmentProof) -> ZkpSegment {
    ZkpSegment {
        start_epoch: segment.start_epoch,
        start_commitment: segment.start_commitment,
        end_epoch: segment.end_epoch,
        end_commitment: segment.end_commitment,
        end_hash: segment.end_hash,
        proof: proof.0,
    }
}

/// The statement and proof of a wire segment.
pub fn from_wire(s: &ZkpSegment) -> (Segment, SegmentProof) {
    (
        Segment {
            start_epoch: s.start_epoch,
            start_commitment: s.start_commitment,
            end_epoch: s.end_epoch,
            end_commitment: s.end_commitment,
            end_hash: s.end_hash,
        },
        SegmentProof(s.proof),
    )
}

/// Why election blocks do not make a witness.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WitnessError {
    /// A block that is not the election block of the epoch it stands for.
    #[error("block {number} is not the election block of epoch {epoch}")]
    NotElection {
        /// Its number.
        number: u32,
        /// The epoch it should close.
        epoch: u32,
    },
    /// A block without its justification.
    #[error("election block {0} has no justification")]
    NoJustification(u32),
    /// A justification that does not verify against the set before it.
    #[error("election block {0}: {1}")]
    BadJustification(u32, String),
}

/// The witness of the handoffs `blocks` (the election blocks of epochs `start_epoch + 1 ..`, with
/// justifications) after `start`, the election block of `start_epoch`. Every justification is
/// verified, so a witness that comes back satisfies the circuit.
pub fn witness_from_blocks(
    policy: &Policy,
    start_epoch: u32,
    start: &MacroBlock,
    blocks: &[MacroBlock],
) -> Result<SegmentWitness, WitnessError> {
    let not_election = |b: &MacroBlock, epoch| WitnessError::NotElection { number: b.block_number(), epoch };
    if start.block_number() != policy.election_block_of(start_epoch) {
        return Err(not_election(start, start_epoch));
    }
    let start_set = start.header.validators.clone().ok_or_else(|| not_election(start, start_epoch))?;
    let mut current = start_set.clone();
    let mut handoffs = Vec::with_capacity(blocks.len());
    for (i, block) in blocks.iter().enumerate() {
        let epoch = start_epoch + 1 + i as u32;
        let number = block.block_number();
        let next = match &block.header.validators {
            Some(v) if number == policy.election_block_of(epoch) => v.clone(),
            _ => return Err(not_election(block, epoch)),
        };
        let justification = block.justification.as_ref().ok_or(WitnessError::NoJustification(number))?;
        justification
            .verify(&current, policy, &block.signing_message(policy))
            .map_err(|e| WitnessError::BadJustification(number, e.to_string()))?;
        let (signing, _) = justification
            .signing_validators(&current, policy)
            .map_err(|e| WitnessError::BadJustification(number, e.to_string()))?;
        let mut signers = vec![false; current.len()];
        signing.iter().for_each(|i| signers[*i] = true);
        handoffs.push(Handoff {
            round: block.header.round,
            hash: block.hash(),
            next: next.clone(),
            signers,
            signature: justification.signature,
        });
        current = next;
    }
    let last = blocks.last().unwrap_or(start);
    let commitment = |v: &petrel_primitives::Validators| v.commitment(policy.max_validators);
    Ok(SegmentWitness {
        segment: Segment {
            start_epoch,
            start_commitment: commitment(&start_set),
            end_epoch: start_epoch + blocks.len() as u32,
            end_commitment: commitment(&current),
            end_hash: last.hash(),
        },
        start_set,
        handoffs,
    })
}

/// What a verified proof chain proves: the election block of `epoch` has hash `hash` and names
/// the set with commitment `commitment`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proven {
    /// The epoch.
    pub epoch: u32,
    /// The commitment of the set its election block names.
    pub commitment: FieldElement,
    /// Its hash.
    pub hash: Blake2bHash,
}

/// Why a proof chain was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum ProofChainError {
    /// The chain does not start at the requester's election block (epoch and commitment).
    #[error("the proof chain starts at epoch {0}, not at ours")]
    WrongStart(u32),
    /// Two segments do not join, or a segment ends where it starts.
    #[error("the proof chain has a gap after epoch {0}")]
    Gap(u32),
    /// Longer than asked.
    #[error("{0} segments, more than asked")]
    TooLong(usize),
    /// A proof that does not verify (or does not decode).
    #[error(transparent)]
    Proof(#[from] ZkpError),
}

/// Checks a proof chain that starts at `from` (our election block: epoch and the commitment of
/// the set it names): the segments join, then all proofs are verified in one batch. Returns the
/// last proven election block.
pub fn verify_chain(
    verifier: &Verifier,
    from: (u32, FieldElement),
    segments: &[ZkpSegment],
    max: usize,
) -> Result<Option<Proven>, ProofChainError> {
    if segments.len() > max {
        return Err(ProofChainError::TooLong(segments.len()));
    }
    let Some(first) = segments.first() else { return Ok(None) };
    if (first.start_epoch, first.start_commitment) != from {
        return Err(ProofChainError::WrongStart(first.start_epoch));
    }
    for pair in segments.windows(2) {
        if (pair[1].start_epoch, pair[1].start_commitment) != (pair[0].end_epoch, pair[0].end_commitment) {
            return Err(ProofChainError::Gap(pair[0].end_epoch));
        }
    }
    if let Some(s) = segments.iter().find(|s| s.end_epoch <= s.start_epoch) {
        return Err(ProofChainError::Gap(s.start_epoch));
    }
    let items: Vec<_> = segments.iter().map(from_wire).collect();
    verifier.verify_batch(&items)?;
    let last = segments.last().unwrap_or(first);
    Ok(Some(Proven { epoch: last.end_epoch, commitment: last.end_commitment, hash: last.end_hash }))
}
