//! Segment proofs of a real chain (made by the devnet producer and stored by the chain store):
//! witnesses from election blocks, proofs, and the checks a light node runs on a proof chain.

use ark_relations::gr1cs::{ConstraintSynthesizer, ConstraintSystem};
use petrel_blockchain::{Blockchain, ChainOptions};
use petrel_primitives::{Block, MacroBlock, Policy};
use petrel_producer::{Producer, ProducerConfig};
use petrel_zkp::chain::{ProofChainError, Proven, WitnessError, to_wire, verify_chain, witness_from_blocks};
use petrel_zkp::circuit::{SegmentCircuit, Shape};
use petrel_zkp::proof::{Verifier, ZkpError, prove, setup};

/// 4 validators of 4 slots, 8 blocks per epoch.
fn policy() -> Policy {
    Policy { max_validators: 4, ..Policy::TEST }
}

/// The election blocks of epochs 0..=epochs of a produced chain.
fn elections(epochs: u32) -> Vec<MacroBlock> {
    let producer =
        Producer::new(ProducerConfig { validators: 4, spare_validators: 2, accounts: 4, ..Default::default() });
    let genesis = producer.genesis(1, 0, policy());
    let dir = tempfile::tempdir().unwrap();
    let mut chain = Blockchain::open(&dir.path().join("c.redb"), &genesis, ChainOptions::default()).unwrap();
    while chain.head().block_number < policy().election_block_of(epochs) {
        let mut scratch = chain.state().clone();
        chain.push(producer.produce(&mut scratch).unwrap()).unwrap();
    }
    (0..=epochs)
        .map(|e| match chain.block_at(policy().election_block_of(e), false).unwrap().unwrap() {
            Block::Macro(m) => m,
            Block::Micro(_) => unreachable!("election blocks are macro blocks"),
        })
        .collect()
}

#[test]
fn a_produced_chain_is_proven_segment_by_segment_and_the_chain_of_proofs_checks() {
    let blocks = elections(5);
    let shape = Shape::new(&policy(), 2);
    // Witnesses of every segment satisfy the circuit, the trailing partial one too.
    let witnesses: Vec<_> = [(0, 2), (2, 2), (4, 1)]
        .iter()
        .map(|&(start, n)| {
            witness_from_blocks(&policy(), start, &blocks[start as usize], &blocks[start as usize + 1..][..n]).unwrap()
        })
        .collect();
    for w in &witnesses {
        let cs = ConstraintSystem::new_ref();
        SegmentCircuit { shape, witness: Some(w.clone()) }.generate_constraints(cs.clone()).unwrap();
        assert!(cs.is_satisfied().unwrap(), "segment from {}", w.segment.start_epoch);
    }
    assert_eq!(witnesses[2].segment.end_hash, blocks[5].hash());

    let pk = setup(&shape, 3).unwrap();
    let verifier = Verifier::new(&pk.vk);
    let wire: Vec<_> = witnesses
        .iter()
        .map(|w| {
            let proof = prove(&pk, &shape, w.clone()).unwrap();
            to_wire(&w.segment, &proof)
        })
        .collect();
    let genesis_commitment = blocks[0].header.validators.as_ref().unwrap().commitment(policy().max_validators);
    let proven = verify_chain(&verifier, (0, genesis_commitment), &wire, 8).unwrap().unwrap();
    assert_eq!(
        proven,
        Proven {
            epoch: 5,
            commitment: blocks[5].header.validators.as_ref().unwrap().commitment(4),
            hash: blocks[5].hash()
        }
    );
    // From a later epoch: the chain must start there.
    assert!(verify_chain(&verifier, (2, wire[1].start_commitment), &wire[1..], 8).unwrap().is_some());
    assert!(matches!(
        verify_chain(&verifier, (0, genesis_commitment), &wire[1..], 8),
        Err(ProofChainError::WrongStart(2))
    ));
    // A gap, a chain longer than asked, a bad proof.
    let gap = [wire[0], wire[2]];
    assert!(matches!(verify_chain(&verifier, (0, genesis_commitment), &gap, 8), Err(ProofChainError::Gap(2))));
    assert!(matches!(verify_chain(&verifier, (0, genesis_commitment), &wire, 2), Err(ProofChainError::TooLong(3))));
    let mut forged = wire.clone();
    forged[1].end_hash = blocks[3].hash();
    assert!(matches!(
        verify_chain(&verifier, (0, genesis_commitment), &forged, 8),
        Err(ProofChainError::Proof(ZkpError::InvalidProof))
    ));
    // A proof chain of another network's keys.
    let other = Verifier::new(&setup(&shape, 4).unwrap().vk);
    assert!(verify_chain(&other, (0, genesis_commitment), &wire, 8).is_err());
    // Nothing to check: nothing proven.
    assert_eq!(verify_chain(&verifier, (0, genesis_commitment), &[], 8).unwrap(), None);
}

#[test]
fn blocks_that_are_not_a_handoff_make_no_witness() {
    let blocks = elections(2);
    // Not consecutive election blocks (a gap), or the start is not epoch 0's block.
    assert!(matches!(
        witness_from_blocks(&policy(), 0, &blocks[0], &blocks[2..]),
        Err(WitnessError::NotElection { epoch: 1, .. })
    ));
    assert!(matches!(
        witness_from_blocks(&policy(), 1, &blocks[0], &blocks[1..]),
        Err(WitnessError::NotElection { epoch: 1, .. })
    ));
    // Without or with a broken justification.
    let mut stripped = blocks[1].clone();
    stripped.justification = None;
    assert!(matches!(
        witness_from_blocks(&policy(), 0, &blocks[0], &[stripped]),
        Err(WitnessError::NoJustification(8))
    ));
    let mut broken = blocks[1].clone();
    broken.justification.as_mut().unwrap().signature = blocks[2].justification.as_ref().unwrap().signature;
    assert!(matches!(
        witness_from_blocks(&policy(), 0, &blocks[0], &[broken]),
        Err(WitnessError::BadJustification(8, _))
    ));
}

/// The full-size circuit (16 validators, the devnet policy) proves and verifies one handoff of a
/// synthetic chain (the crate is optimised in test builds, so this takes about two seconds).
#[test]
fn the_full_size_circuit_proves_one_handoff() {
    use petrel_zkp::testing::SyntheticChain;
    let policy = Policy::DEVNET;
    let chain = SyntheticChain::new(policy, 16, 1, 7);
    let shape = Shape::new(&policy, 1);
    let pk = setup(&shape, 5).unwrap();
    let w = chain.segment(0, 1);
    let segment = w.segment;
    let proof = prove(&pk, &shape, w).unwrap();
    let verifier = Verifier::new(&pk.vk);
    assert!(verifier.verify(&segment, &proof).is_ok());
    let mut wrong = segment;
    wrong.end_epoch = 2;
    assert!(verifier.verify(&wrong, &proof).is_err());
}
