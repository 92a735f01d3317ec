//! Pushing blocks: the happy path, reopening, and every kind of bad block.

mod common;

use common::*;
use petrel_blockchain::{ChainError, PushResult};
use petrel_primitives::block::BlockError;
use petrel_primitives::validators::{JustificationError, ValidatorsError};
use petrel_primitives::{Blake2bHash, Block, TransactionError};

#[test]
fn pushes_three_epochs_and_reopens_at_the_head() {
    let dir = tempfile::tempdir().unwrap();
    let p = producer(5);
    let g = genesis(&p);
    let blocks = {
        let mut chain = open(&dir, &g);
        let blocks = extend(&mut chain, &p, 24);
        assert_eq!(chain.head().block_number, 24);
        assert!(chain.state().election_head.is_election());
        assert_eq!(chain.push(blocks[3].clone()).unwrap(), PushResult::Known);
        blocks
    };
    let chain = open(&dir, &g);
    let head = chain.head();
    assert_eq!(head.block_number, 24);
    assert_eq!(head.block_hash, blocks[23].hash());
    assert_eq!(head.election_hash, blocks[23].hash());
    assert_eq!(chain.block_at(10, true).unwrap().unwrap(), blocks[9]);
    // Validators rotate at every election block.
    assert_ne!(chain.state().validators, g.validator_set().unwrap());
}

#[test]
fn another_network_is_refused_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let p = producer(0);
    let g = genesis(&p);
    drop(open(&dir, &g));
    let mut other = g.clone();
    other.network_id = 8;
    let err =
        petrel_blockchain::Blockchain::open(&dir.path().join("chain.redb"), &other, Default::default()).unwrap_err();
    assert!(matches!(err, ChainError::GenesisMismatch { .. }), "{err}");
}

fn rejects(chain: &mut petrel_blockchain::Blockchain, block: Block) -> ChainError {
    let head = chain.head();
    let root = *chain.state().head.state_root();
    let err = chain.push(block).unwrap_err();
    assert_eq!(chain.head(), head, "a rejected block must not move the head");
    assert_eq!(chain.state().accounts.root(), root, "a rejected block must not change the state");
    assert!(err.is_peer_fault());
    err
}

fn block_err(e: ChainError) -> BlockError {
    match e {
        ChainError::InvalidBlock { source, .. } => source,
        other => panic!("expected a block error, got {other}"),
    }
}

#[test]
fn bad_micro_blocks_are_rejected_without_side_effects() {
    let dir = tempfile::tempdir().unwrap();
    let p = producer(3);
    let g = genesis(&p);
    let mut chain = open(&dir, &g);
    extend(&mut chain, &p, 1);
    let good = next(&chain, &p);
    let Block::Micro(good) = good else { panic!("block 2 is micro") };
    let validators = chain.state().validators.clone();
    let policy = *chain.policy();
    let resign = |mut b: petrel_primitives::MicroBlock| {
        p.sign_micro(&mut b, &validators, &policy).unwrap();
        Block::Micro(b)
    };

    // Missing and bad producer signature.
    let mut b = good.clone();
    b.justification = None;
    assert_eq!(block_err(rejects(&mut chain, Block::Micro(b))), BlockError::MissingProducerSignature);
    let mut b = good.clone();
    b.header.timestamp += 1; // signature no longer matches
    assert_eq!(block_err(rejects(&mut chain, Block::Micro(b))), BlockError::InvalidProducerSignature);
    // Wrong parent.
    let mut b = good.clone();
    b.header.parent_hash = Blake2bHash::digest(b"elsewhere");
    assert_eq!(block_err(rejects(&mut chain, resign(b))), BlockError::WrongParentHash);
    // Wrong state root, history root, body root.
    let mut b = good.clone();
    b.header.state_root = Blake2bHash::ZERO;
    assert!(matches!(rejects(&mut chain, resign(b)), ChainError::WrongStateRoot { .. }));
    let mut b = good.clone();
    b.header.history_root = Blake2bHash::ZERO;
    assert!(matches!(rejects(&mut chain, resign(b)), ChainError::WrongHistoryRoot { .. }));
    let mut b = good.clone();
    b.body.as_mut().unwrap().transactions.pop();
    assert_eq!(block_err(rejects(&mut chain, resign(b))), BlockError::BodyRootMismatch);
    // A bad transaction signature, with a consistent body root.
    let mut b = good.clone();
    b.body.as_mut().unwrap().transactions[0].value += 1;
    b.header.body_root = b.body.as_ref().unwrap().root();
    let err = rejects(&mut chain, resign(b));
    assert!(
        matches!(err, ChainError::InvalidTransaction { index: 0, source: TransactionError::InvalidSignature, .. }),
        "{err}"
    );
    // Missing body.
    let mut b = good.clone();
    b.body = None;
    assert_eq!(block_err(rejects(&mut chain, Block::Micro(b))), BlockError::MissingBody);
    // Block number ahead of the head (orphan).
    let mut b = good.clone();
    b.header.block_number += 1;
    assert!(matches!(block_err(rejects(&mut chain, resign(b))), BlockError::WrongBlockNumber { .. }));
    // A macro-position block number given to a micro block: wrong type.
    let mut b = good.clone();
    b.header.block_number = 4;
    b.header.parent_hash = chain.head().block_hash;
    assert!(matches!(block_err(rejects(&mut chain, resign(b))), BlockError::WrongBlockType { .. }));
    // Wrong network and version.
    let mut b = good.clone();
    b.header.network = 99;
    assert_eq!(block_err(rejects(&mut chain, resign(b))), BlockError::WrongNetwork(99));
    let mut b = good.clone();
    b.header.version = 2;
    assert_eq!(block_err(rejects(&mut chain, resign(b))), BlockError::WrongVersion(2));

    // And the good block still goes in afterwards.
    assert_eq!(chain.push(Block::Micro(good)).unwrap(), PushResult::Extended);
}

/// The aggregated signature of `block` as if it had another number.
fn resign_number(
    p: &petrel_producer::Producer,
    block: &petrel_primitives::MacroBlock,
    validators: &petrel_primitives::Validators,
    policy: &petrel_primitives::Policy,
) -> petrel_primitives::SchnorrSignature {
    let mut other = block.clone();
    other.header.block_number += 1;
    p.sign_macro(&mut other, validators, policy).unwrap();
    other.justification.unwrap().signature
}

#[test]
fn bad_macro_blocks_are_rejected_without_side_effects() {
    let dir = tempfile::tempdir().unwrap();
    let p = producer(2);
    let g = genesis(&p);
    let mut chain = open(&dir, &g);
    extend(&mut chain, &p, 7); // next is 8: the first election block
    let Block::Macro(good) = next(&chain, &p) else { panic!("block 8 is macro") };
    assert!(good.is_election());
    let validators = chain.state().validators.clone();
    let policy = *chain.policy();
    let resign = |mut b: petrel_primitives::MacroBlock| {
        p.sign_macro(&mut b, &validators, &policy).unwrap();
        Block::Macro(b)
    };
    let justification_err = |e: ChainError| match block_err(e) {
        BlockError::InvalidJustification(j) => j,
        other => panic!("expected a justification error, got {other}"),
    };

    // Missing justification.
    let mut b = good.clone();
    b.justification = None;
    assert_eq!(justification_err(rejects(&mut chain, Block::Macro(b))), JustificationError::Missing);
    // Too few signer slots: drop the last signer.
    let mut b = good.clone();
    let j = b.justification.as_mut().unwrap();
    let signing: Vec<usize> =
        validators.slot_ranges().enumerate().filter(|(_, (s, _))| j.signers.get(*s)).map(|(i, _)| i).collect();
    let last = *signing.last().unwrap();
    let (s, e) = validators.slot_ranges().nth(last).unwrap();
    for slot in s..e {
        j.signers.0[(slot / 64) as usize] &= !(1 << (slot % 64));
    }
    assert!(matches!(
        justification_err(rejects(&mut chain, Block::Macro(b))),
        JustificationError::TooFewSigners { .. }
    ));
    // A signer bit beyond the validator set.
    let mut b = good.clone();
    let j = b.justification.as_mut().unwrap();
    j.signers.0.push(1);
    assert!(matches!(justification_err(rejects(&mut chain, Block::Macro(b))), JustificationError::BitmapLength { .. }));
    let mut b = good.clone();
    let slots = u32::from(policy.slots);
    if slots % 64 != 0 {
        b.justification.as_mut().unwrap().signers.set(slots);
        assert_eq!(
            justification_err(rejects(&mut chain, Block::Macro(b))),
            JustificationError::SignerOutsideValidatorSet(slots)
        );
    }
    // A wrong aggregate: the bitmap names one validator more than signed.
    let mut b = good.clone();
    let j = b.justification.as_mut().unwrap();
    let (s, e) = validators.slot_ranges().find(|(s, _)| !j.signers.get(*s)).unwrap();
    (s..e).for_each(|slot| j.signers.set(slot));
    assert_eq!(justification_err(rejects(&mut chain, Block::Macro(b))), JustificationError::BadSignature);
    // The aggregate of another block.
    let mut b = good.clone();
    b.justification.as_mut().unwrap().signature = resign_number(&p, &good, &validators, &policy);
    assert_eq!(justification_err(rejects(&mut chain, Block::Macro(b))), JustificationError::BadSignature);
    // A key entering the set without a valid proof of possession, even when signed.
    let mut b = good.clone();
    let set = b.header.validators.as_mut().unwrap();
    let entering = set.0.iter().position(|v| !validators.0.iter().any(|c| c.public_key == v.public_key)).unwrap();
    let staying = set.0.iter().position(|v| validators.0.iter().any(|c| c.public_key == v.public_key)).unwrap();
    set.0[entering].proof_of_possession = set.0[staying].proof_of_possession;
    assert_eq!(
        block_err(rejects(&mut chain, resign(b))),
        BlockError::InvalidValidators(ValidatorsError::BadProofOfPossession(entering))
    );
    // A staying key's proof is not checked again (it was when the key entered).
    let mut b = good.clone();
    let set = b.header.validators.as_mut().unwrap();
    set.0[staying].proof_of_possession = set.0[entering].proof_of_possession;
    let Block::Macro(b) = resign(b) else { unreachable!() };
    assert_eq!(b.verify_entering_keys(&validators), Ok(()));
    // A key outside the prime-order subgroup in the next set. Decoding does not check it (the
    // check is deferred until the block is plausible): the block decodes; unsigned it is refused
    // for its justification before any key is checked; signed, for the key.
    let mut b = good.clone();
    b.header.validators.as_mut().unwrap().0[entering].public_key = order_two_key();
    let decoded: Block = petrel_primitives::codec::decode(
        &petrel_primitives::codec::encode_infallible(&Block::Macro(b.clone())),
        1 << 20,
    )
    .expect("a small-order key is not checked at decode");
    assert_eq!(justification_err(rejects(&mut chain, decoded)), JustificationError::BadSignature);
    assert_eq!(
        block_err(rejects(&mut chain, resign(b))),
        BlockError::InvalidValidators(ValidatorsError::InvalidKey(entering))
    );
    // Wrong parent election hash.
    let mut b = good.clone();
    b.header.parent_election_hash = Blake2bHash::digest(b"other epoch");
    assert_eq!(block_err(rejects(&mut chain, resign(b))), BlockError::WrongParentElectionHash);
    // Validators replaced after signing: the signatures no longer match.
    let mut b = good.clone();
    b.header.validators = Some(p.validators_for_epoch(5, &policy));
    assert_eq!(justification_err(rejects(&mut chain, Block::Macro(b))), JustificationError::BadSignature);
    // A malformed validator set, even when signed.
    let mut b = good.clone();
    b.header.validators.as_mut().unwrap().0[0].slots += 1;
    assert!(matches!(block_err(rejects(&mut chain, resign(b))), BlockError::InvalidValidators(_)));
    // An election block without validators.
    let mut b = good.clone();
    b.header.validators = None;
    assert_eq!(block_err(rejects(&mut chain, resign(b))), BlockError::ValidatorsPresence);
    // A body that pays the wrong rewards.
    let mut b = good.clone();
    b.body.as_mut().unwrap().rewards[0].value += 1;
    b.header.body_root = b.body.as_ref().unwrap().root();
    assert_eq!(block_err(rejects(&mut chain, resign(b))), BlockError::WrongMacroBody);

    assert_eq!(chain.push(Block::Macro(good)).unwrap(), PushResult::Extended);
}

#[test]
fn blocks_decode_only_within_limits() {
    use petrel_primitives::codec::{self, CodecError};
    let dir = tempfile::tempdir().unwrap();
    let p = producer(5);
    let g = genesis(&p);
    let mut chain = open(&dir, &g);
    let block = extend(&mut chain, &p, 1).remove(0);
    let bytes = codec::encode(&block).unwrap();
    assert_eq!(codec::decode::<Block>(&bytes, bytes.len()).unwrap(), block);
    assert_eq!(codec::decode::<Block>(&bytes[..bytes.len() - 3], bytes.len()), Err(CodecError::Truncated));
    assert!(matches!(codec::decode::<Block>(&bytes, bytes.len() - 1), Err(CodecError::TooLarge { .. })));
    let mut garbage = bytes.clone();
    garbage[0] = 7; // no such enum variant
    assert!(matches!(codec::decode::<Block>(&garbage, bytes.len()), Err(CodecError::Malformed(_))));
}

#[test]
fn a_corrupted_record_is_an_error_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let p = producer(2);
    let g = genesis(&p);
    let head = {
        let mut chain = open(&dir, &g);
        extend(&mut chain, &p, 3);
        chain.head().block_hash
    };
    // Overwrite the head block's record with garbage, directly in the database.
    {
        let db = redb::Database::open(dir.path().join("chain.redb")).unwrap();
        let wtx = db.begin_write().unwrap();
        {
            let def: redb::TableDefinition<'_, [u8; 32], &[u8]> = redb::TableDefinition::new("blocks");
            let mut t = wtx.open_table(def).unwrap();
            t.insert(head.0, &[1u8, 2, 3][..]).unwrap();
        }
        wtx.commit().unwrap();
    }
    let err = petrel_blockchain::Blockchain::open(&dir.path().join("chain.redb"), &g, Default::default()).unwrap_err();
    assert!(matches!(err, ChainError::Corrupted { table: "blocks", .. }), "{err}");
    // And an account that no longer matches the state root.
    let dir = tempfile::tempdir().unwrap();
    drop({
        let mut chain = open(&dir, &g);
        extend(&mut chain, &p, 3);
        chain
    });
    {
        let db = redb::Database::open(dir.path().join("chain.redb")).unwrap();
        let wtx = db.begin_write().unwrap();
        {
            let def: redb::TableDefinition<'_, u32, &[u8]> = redb::TableDefinition::new("accounts");
            let mut t = wtx.open_table(def).unwrap();
            let entry = (petrel_primitives::Address([0; 32]), petrel_primitives::Account { balance: 1, nonce: 0 });
            t.insert(0, petrel_primitives::codec::encode(&entry).unwrap().as_slice()).unwrap();
        }
        wtx.commit().unwrap();
    }
    let err = petrel_blockchain::Blockchain::open(&dir.path().join("chain.redb"), &g, Default::default()).unwrap_err();
    assert!(matches!(err, ChainError::Corrupted { table: "accounts", .. }), "{err}");
}
