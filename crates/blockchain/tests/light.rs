//! The light chain: pico adoption, verified macro pushes, live headers, reset and persistence.

mod common;

use common::*;
use petrel_blockchain::{ChainError, LightBlockchain, LightError, PushResult};
use petrel_primitives::block::BlockError;
use petrel_primitives::validators::{JustificationError, ValidatorsError};
use petrel_primitives::{Block, MacroBlock};
use petrel_producer::{Producer, ProducerConfig};

fn macro_at(blocks: &[Block], n: u32) -> MacroBlock {
    blocks[n as usize - 1].as_macro().cloned().unwrap()
}

#[test]
fn light_chain_follows_election_blocks_and_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let p = producer(1);
    let g = genesis(&p);
    let mut full = open(&dir, &g);
    let blocks = extend(&mut full, &p, 8 * 3 + 6);
    let mut light = LightBlockchain::new(&g, None, None).unwrap();
    assert!(light.at_anchor());
    // Election blocks in order, each verified by the previous set; then the checkpoint.
    for n in [8, 16, 24, 28] {
        assert_eq!(light.push_macro(macro_at(&blocks, n)).unwrap(), PushResult::Extended);
    }
    assert_eq!(light.push_macro(macro_at(&blocks, 28)).unwrap(), PushResult::Known);
    assert_eq!(light.push_macro(macro_at(&blocks, 20)).unwrap(), PushResult::Ignored);
    assert_eq!(light.election_head().hash(), blocks[23].hash());
    assert_eq!(light.validators(), &full.state().validators);
    // Live headers: micro blocks 29 and 30 without bodies.
    for n in [29usize, 30] {
        assert_eq!(light.push(blocks[n - 1].without_body()).unwrap(), PushResult::Extended);
    }
    assert_eq!(light.head().block_hash, full.head().block_hash);
    assert_eq!(light.batch_headers().count(), 2);
}

#[test]
fn skipping_an_epoch_fails_the_justification() {
    let dir = tempfile::tempdir().unwrap();
    let p = producer(0);
    let g = genesis(&p);
    let mut full = open(&dir, &g);
    let blocks = extend(&mut full, &p, 16);
    let mut light = LightBlockchain::new(&g, None, None).unwrap();
    // Block 16 is not a macro successor of genesis (beyond the next election block).
    let err = light.push_macro(macro_at(&blocks, 16)).unwrap_err();
    assert!(
        matches!(err, LightError::Chain(ChainError::InvalidBlock { source: BlockError::NotMacroSuccessor { .. }, .. })),
        "{err}"
    );
    // A checkpoint of epoch 1 verifies with the genesis set.
    assert_eq!(light.push_macro(macro_at(&blocks, 4)).unwrap(), PushResult::Extended);
}

#[test]
fn a_block_verified_outside_the_chain_is_checked_again_if_the_chain_moved() {
    let dir = tempfile::tempdir().unwrap();
    let p = producer(1);
    let g = genesis(&p);
    let mut full = open(&dir, &g);
    let blocks = extend(&mut full, &p, 16);
    let mut light = LightBlockchain::new(&g, None, None).unwrap();
    // Verified against genesis, outside the chain: adopted as is.
    let verifier = light.macro_verifier();
    let first = macro_at(&blocks, 8);
    verifier.verify(&first).unwrap();
    assert_eq!(light.push_macro_verified(first, &verifier).unwrap(), PushResult::Extended);
    // A stale verifier (taken at genesis) "accepts" a checkpoint of epoch 1, but the chain has moved
    // on to block 8: it is verified again, and is now below the macro head.
    let stale_ok = macro_at(&blocks, 4);
    verifier.verify(&stale_ok).unwrap();
    assert_eq!(light.push_macro_verified(stale_ok, &verifier).unwrap(), PushResult::Ignored);
    // And a block the stale verifier never checked is verified against the chain as it is now.
    let next = macro_at(&blocks, 16);
    assert_eq!(light.push_macro_verified(next, &verifier).unwrap(), PushResult::Extended);
    assert_eq!(light.election_head().hash(), blocks[15].hash());
}

#[test]
fn pico_adoption_only_at_the_anchor_and_reset() {
    let dir = tempfile::tempdir().unwrap();
    let p = producer(0);
    let g = genesis(&p);
    let mut full = open(&dir, &g);
    let blocks = extend(&mut full, &p, 24);
    let path = dir.path().join("light.bin");
    let mut light = LightBlockchain::new(&g, None, Some(&path)).unwrap();
    // Pico trusts the latest election block without justification while at genesis...
    let mut unsigned = macro_at(&blocks, 16);
    unsigned.justification = None;
    assert_eq!(light.push_election_pico(unsigned).unwrap(), PushResult::Extended);
    // ...but only then.
    assert!(matches!(light.push_election_pico(macro_at(&blocks, 24)), Err(LightError::NotAtAnchor)));
    assert!(matches!(light.push_election_pico(macro_at(&blocks, 8)), Ok(PushResult::Ignored)));
    // A checkpoint that is not an election block cannot be adopted by pico.
    let mut fresh = LightBlockchain::new(&g, None, None).unwrap();
    assert!(matches!(fresh.push_election_pico(macro_at(&blocks, 12)), Err(LightError::NotElection(12))));
    // The next election block verifies against the adopted set.
    assert_eq!(light.push_macro(macro_at(&blocks, 24)).unwrap(), PushResult::Extended);
    // A restart keeps the chain...
    drop(light);
    let mut light = LightBlockchain::new(&g, None, Some(&path)).unwrap();
    assert_eq!(light.election_head().hash(), blocks[23].hash());
    // ...and reset returns to the anchor, persistently.
    light.reset().unwrap();
    assert!(light.at_anchor());
    let light = LightBlockchain::new(&g, None, Some(&path)).unwrap();
    assert!(light.at_anchor());
}

#[test]
fn a_reset_remembers_the_block_taken_on_trust_and_verification_judges_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = producer(0);
    let g = genesis(&p);
    let mut full = open(&dir, &g);
    let blocks = extend(&mut full, &p, 24);
    let mut light = LightBlockchain::new(&g, None, None).unwrap();
    // A reset of a verified chain doubts nothing.
    light.reset().unwrap();
    assert_eq!(light.doubted(), None);
    light.push_election_pico(macro_at(&blocks, 16)).unwrap();
    light.reset().unwrap();
    assert_eq!(light.doubted(), Some((16, blocks[15].hash(), None)));
    light.push_macro(macro_at(&blocks, 8)).unwrap();
    assert_eq!(light.doubted(), Some((16, blocks[15].hash(), None)), "not at its height yet");
    light.push_macro(macro_at(&blocks, 16)).unwrap();
    assert_eq!(light.doubted(), Some((16, blocks[15].hash(), Some(true))), "verification found the same block");
    light.push_macro(macro_at(&blocks, 24)).unwrap();
    assert_eq!(light.doubted(), Some((16, blocks[15].hash(), Some(true))), "judged once");
}

#[test]
fn a_checkpoint_anchor_and_invented_validators() {
    let dir = tempfile::tempdir().unwrap();
    let p = producer(0);
    let g = genesis(&p);
    let mut full = open(&dir, &g);
    let blocks = extend(&mut full, &p, 28);
    // Anchored at the election block of epoch 2.
    let mut light = LightBlockchain::new(&g, Some(macro_at(&blocks, 16)), None).unwrap();
    assert_eq!(light.push_macro(macro_at(&blocks, 24)).unwrap(), PushResult::Extended);
    assert_eq!(light.push_macro(macro_at(&blocks, 28)).unwrap(), PushResult::Extended);
    // A liar signs block 8's successor with validators it invented: rejected by justification.
    let liar = Producer::new(ProducerConfig {
        seed: 666,
        validators: 4,
        spare_validators: 2,
        accounts: 4,
        ..Default::default()
    });
    let mut light = LightBlockchain::new(&g, None, None).unwrap();
    let mut forged = macro_at(&blocks, 8);
    let invented = liar.validators_for_epoch(0, &g.policy);
    forged.header.validators = Some(liar.validators_for_epoch(1, &g.policy));
    liar.sign_macro(&mut forged, &invented, &g.policy).unwrap();
    let err = light.push_macro(forged).unwrap_err();
    assert!(
        matches!(
            err,
            LightError::Chain(ChainError::InvalidBlock {
                source: BlockError::InvalidJustification(JustificationError::BadSignature),
                ..
            })
        ),
        "{err}"
    );
    // Signed by the real validators but naming a key outside the prime-order subgroup: refused for
    // the key, checked once the justification verified.
    let mut light = LightBlockchain::new(&g, None, None).unwrap();
    let mut bad = macro_at(&blocks, 8);
    bad.header.validators.as_mut().unwrap().0[1].public_key = order_two_key();
    p.sign_macro(&mut bad, &g.validator_set().unwrap(), &g.policy).unwrap();
    let err = light.push_macro(bad).unwrap_err();
    assert!(
        matches!(
            err,
            LightError::Chain(ChainError::InvalidBlock {
                source: BlockError::InvalidValidators(ValidatorsError::InvalidKey(1)),
                ..
            })
        ),
        "{err}"
    );
    // An anchor that is not an election block is refused.
    assert!(matches!(LightBlockchain::new(&g, Some(macro_at(&blocks, 12)), None), Err(LightError::NotElection(12))));
}

#[test]
fn a_damaged_light_chain_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = producer(0);
    let g = genesis(&p);
    let path = dir.path().join("light.bin");
    std::fs::write(&path, [7u8; 100]).unwrap();
    assert!(matches!(
        LightBlockchain::new(&g, None, Some(&path)),
        Err(LightError::Chain(ChainError::Corrupted { .. }))
    ));
    std::fs::write(&path, vec![0u8; petrel_blockchain::MAX_LIGHT_FILE + 1]).unwrap();
    assert!(matches!(
        LightBlockchain::new(&g, None, Some(&path)),
        Err(LightError::Chain(ChainError::Corrupted { .. }))
    ));
}

/// Zero-knowledge light sync's adoption: exactly the proven block (number, hash, named set), the
/// anchor stays, the proven epoch is recorded and survives a restart; a reset forgets it.
#[test]
fn a_proven_election_block_is_adopted_only_as_proven() {
    let dir = tempfile::tempdir().unwrap();
    let p = producer(0);
    let g = genesis(&p);
    let mut full = open(&dir, &g);
    let blocks = extend(&mut full, &p, 8 * 3);
    let path = dir.path().join("light.bin");
    let mut light = LightBlockchain::new(&g, None, Some(&path)).unwrap();
    let block = macro_at(&blocks, 16); // the election block of epoch 2
    let commitment = block.header.validators.as_ref().unwrap().commitment(g.policy.max_validators);
    let other = macro_at(&blocks, 24);
    // Another hash, another named set, another epoch, a block that is not an election block.
    assert!(matches!(
        light.push_election_proven(block.clone(), 2, other.hash(), commitment),
        Err(LightError::NotProven(16))
    ));
    assert!(matches!(
        light.push_election_proven(block.clone(), 2, block.hash(), petrel_primitives::FieldElement::ONE),
        Err(LightError::NotProven(16))
    ));
    assert!(matches!(
        light.push_election_proven(block.clone(), 3, block.hash(), commitment),
        Err(LightError::NotElection(16))
    ));
    let checkpoint = macro_at(&blocks, 20);
    assert!(matches!(
        light.push_election_proven(checkpoint.clone(), 2, checkpoint.hash(), commitment),
        Err(LightError::NotElection(20))
    ));
    assert!(light.at_anchor() && light.proven_epoch().is_none());
    // The proven block.
    assert_eq!(light.push_election_proven(block.clone(), 2, block.hash(), commitment).unwrap(), PushResult::Extended);
    assert_eq!(light.election_head().hash(), block.hash());
    assert_eq!(light.proven_epoch(), Some(2));
    assert_eq!(light.anchor().hash(), g.genesis_hash().unwrap(), "the anchor does not move");
    // Signatures from there on.
    assert_eq!(light.push_macro(other.clone()).unwrap(), PushResult::Extended);
    drop(light);
    let mut light = LightBlockchain::new(&g, None, Some(&path)).unwrap();
    assert_eq!((light.proven_epoch(), light.election_head().hash()), (Some(2), other.hash()));
    light.reset().unwrap();
    assert_eq!(light.proven_epoch(), None);
}
