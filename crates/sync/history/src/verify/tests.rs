//! Batch sets and history chunks served by a real chain store verify; every kind of tampering is
//! refused with its own error.

use petrel_primitives::validators::JustificationError;
use petrel_test_utils::TestChain;

use super::*;

/// A chain of `epochs` epochs plus a few blocks (so the last epoch has a checkpoint), with 3
/// transfers per micro block (several history chunks per batch at the test policy's chunk size 8).
fn chain(epochs: u32) -> TestChain {
    let producer = petrel_test_utils::test_producer(4, 3);
    let genesis = producer.genesis(1, 1_700_000_000_000, Policy::TEST);
    TestChain::build_on(producer, genesis, (8 * epochs + 4) as usize)
}

fn verifier(t: &TestChain) -> BatchSetVerifier {
    let g = &t.genesis;
    BatchSetVerifier::new(
        g.network_id,
        g.policy,
        g.genesis_block().expect("genesis"),
        g.validator_set().expect("validators"),
    )
}

fn hash_at(t: &TestChain, number: u32) -> Blake2bHash {
    t.blocks[number as usize - 1].hash()
}

fn batch_set(t: &TestChain, number: u32) -> BatchSetInfo {
    t.chain.read().unwrap().batch_set(&hash_at(t, number)).expect("batch set")
}

fn chunk(t: &TestChain, block: &VerifiedBatchSet, index: u64) -> HistoryChunk {
    let number = block.block.block_number();
    t.chain.read().unwrap().history_chunk(Policy::TEST.epoch_at(number), number, index).expect("chunk")
}

#[test]
fn an_honest_chain_verifies_epoch_by_epoch_then_its_checkpoint() {
    let t = chain(3);
    let mut v = verifier(&t);
    for epoch in 1..=3 {
        let number = Policy::TEST.election_block_of(epoch);
        let info = batch_set(&t, number);
        let verified = v.verify(&hash_at(&t, number), &info).expect("verifies");
        assert_eq!(verified.last().map(|b| b.block.block_number()), Some(number));
        assert_eq!(v.macro_head().hash(), hash_at(&t, number));
    }
    // The checkpoint of the unfinished epoch 4.
    let number = Policy::TEST.election_block_of(3) + 4;
    let verified = v.verify(&hash_at(&t, number), &batch_set(&t, number)).expect("checkpoint verifies");
    assert!(verified.iter().all(|b| b.history_len > 0));
}

#[test]
fn an_answer_that_is_empty_for_another_block_or_with_a_wrong_election_flag_is_refused() {
    let t = chain(2);
    let mut v = verifier(&t);
    let e1 = Policy::TEST.election_block_of(1);
    let info = batch_set(&t, e1);
    assert_eq!(
        v.verify(&hash_at(&t, e1), &BatchSetInfo { election_macro_block: None, batch_sets: vec![] }),
        Err(BatchSetError::Empty)
    );
    let other = hash_at(&t, 4);
    assert!(matches!(v.verify(&other, &info), Err(BatchSetError::Mismatch { .. })));
    let no_election = BatchSetInfo { election_macro_block: None, ..info.clone() };
    assert_eq!(v.verify(&hash_at(&t, e1), &no_election), Err(BatchSetError::ElectionBlock));
    // Nothing moved on failure: the honest answer still verifies.
    assert!(v.verify(&hash_at(&t, e1), &info).is_ok());
}

#[test]
fn a_wrong_justification_or_a_skipped_epoch_is_an_invalid_block() {
    let t = chain(3);
    let (e1, e2) = (Policy::TEST.election_block_of(1), Policy::TEST.election_block_of(2));
    // Epoch 2 straight from genesis: not a macro successor (its signers are not known yet).
    let mut v = verifier(&t);
    let err = v.verify(&hash_at(&t, e2), &batch_set(&t, e2)).unwrap_err();
    assert!(matches!(err, BatchSetError::InvalidBlock { source: BlockError::NotMacroSuccessor { .. }, .. }), "{err}");
    // Epoch 1 with the signatures of epoch 2's election block.
    let mut info = batch_set(&t, e1);
    let stolen = batch_set(&t, e2).batch_sets.last().unwrap().0.justification.clone();
    info.batch_sets.last_mut().unwrap().0.justification = stolen.clone();
    info.election_macro_block.as_mut().unwrap().justification = stolen;
    let err = v.verify(&hash_at(&t, e1), &info).unwrap_err();
    assert!(
        matches!(err, BatchSetError::InvalidBlock { source: BlockError::InvalidJustification(ref j), .. } if *j != JustificationError::Missing),
        "{err}"
    );
}

#[test]
fn a_size_proof_that_disagrees_with_the_history_root_is_refused() {
    let t = chain(1);
    let e1 = Policy::TEST.election_block_of(1);
    let mut info = batch_set(&t, e1);
    info.batch_sets.last_mut().unwrap().1.leaves += 1;
    assert_eq!(verifier(&t).verify(&hash_at(&t, e1), &info), Err(BatchSetError::SizeProof(e1)));
}

#[test]
fn every_chunk_of_a_verified_block_verifies_and_tampered_ones_do_not() {
    let t = chain(1);
    let e1 = Policy::TEST.election_block_of(1);
    let verified = verifier(&t).verify(&hash_at(&t, e1), &batch_set(&t, e1)).unwrap();
    let block = verified.last().unwrap();
    let size = u64::from(Policy::TEST.history_chunk_size);
    let chunks = block.history_len.div_ceil(size);
    assert!(chunks >= 2, "the test chain spans several chunks per epoch ({} items)", block.history_len);
    for index in 0..chunks {
        assert_eq!(verify_chunk(block, size, index, &chunk(&t, block, index)), Ok(()));
    }
    let good = chunk(&t, block, 0);
    // Short.
    let mut short = good.clone();
    short.items.pop();
    assert!(matches!(verify_chunk(block, size, 0, &short), Err(ChunkError::WrongLength { .. })));
    // Items swapped: the proof fails.
    let mut swapped = good.clone();
    swapped.items.swap(0, 1);
    assert_eq!(verify_chunk(block, size, 0, &swapped), Err(ChunkError::InvalidProof(0)));
    // The right items under another index.
    assert!(verify_chunk(block, size, 1, &good).is_err());
    // A proof for another history size.
    let mut other_size = good.clone();
    other_size.proof.total_leaves -= 1;
    assert!(matches!(verify_chunk(block, size, 0, &other_size), Err(ChunkError::SizeMismatch { .. })));
    // Past the end.
    assert!(matches!(verify_chunk(block, size, chunks, &good), Err(ChunkError::WrongLength { expected: 0, .. })));
}

#[test]
fn a_body_that_does_not_match_its_root_is_refused_and_the_election_block_must_be_the_last() {
    let t = chain(1);
    let e1 = Policy::TEST.election_block_of(1);
    let honest = batch_set(&t, e1);
    // Rewards paid to someone else: the body no longer matches the signed body root.
    let mut info = honest.clone();
    let block = &mut info.batch_sets.last_mut().unwrap().0;
    let body = block.body.as_mut().expect("macro blocks carry their rewards");
    body.rewards[0].value += 1;
    info.election_macro_block = Some(block.clone());
    let err = verifier(&t).verify(&hash_at(&t, e1), &info).unwrap_err();
    assert!(matches!(err, BatchSetError::InvalidBlock { source: BlockError::BodyRootMismatch, .. }), "{err}");
    // An election block that is not exactly the last batch set's block.
    let mut info = honest;
    info.election_macro_block.as_mut().unwrap().justification = None;
    assert_eq!(verifier(&t).verify(&hash_at(&t, e1), &info), Err(BatchSetError::ElectionBlock));
}

#[test]
fn an_epoch_of_several_batch_sets_verifies_in_one_answer_and_after_its_checkpoint() {
    // Small batch sets: every checkpoint ends one.
    let producer = petrel_test_utils::test_producer(4, 3);
    let genesis = producer.genesis(1, 1_700_000_000_000, Policy::TEST);
    let options =
        petrel_blockchain::ChainOptions { durable: false, batch_set_max_history_bytes: 64, ..Default::default() };
    let t = TestChain::build_with(producer, genesis, 8 * 2 + 4, options);
    let (e1, c2, e2) =
        (Policy::TEST.election_block_of(1), Policy::TEST.election_block_of(1) + 4, Policy::TEST.election_block_of(2));
    let mut v = verifier(&t);
    let first = batch_set(&t, e1);
    assert_eq!(first.batch_sets.len(), 2, "the checkpoint of epoch 1 ends a batch set");
    let verified = v.verify(&hash_at(&t, e1), &first).unwrap();
    assert_eq!(verified.iter().map(|b| b.block.block_number()).collect::<Vec<_>>(), vec![4, e1]);
    assert!(verified[0].history_len < verified[1].history_len);
    // Epoch 2: its checkpoint first, then the answer for its election block, whose first batch
    // set (that checkpoint) we hold already.
    v.verify(&hash_at(&t, c2), &batch_set(&t, c2)).unwrap();
    let verified = v.verify(&hash_at(&t, e2), &batch_set(&t, e2)).unwrap();
    assert_eq!(verified.iter().map(|b| b.block.block_number()).collect::<Vec<_>>(), vec![e2]);
    // Batch sets out of order are refused: [election, checkpoint, election].
    let mut reordered = first.clone();
    let election = reordered.batch_sets[1].clone();
    reordered.batch_sets.insert(0, election);
    assert_eq!(verifier(&t).verify(&hash_at(&t, e1), &reordered), Err(BatchSetError::OutOfOrder(4)));
}
