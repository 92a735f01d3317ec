//! The queries peers ask, history sync from served chunks, pruning and chain events.

mod common;

use common::*;
use petrel_blockchain::{ChainError, ChainEvent, PushResult, QueryError, verify_store};
use petrel_primitives::history::HistoryItem;
use petrel_primitives::{Blake2bHash, Block};

#[test]
fn head_block_and_macro_chain_queries() {
    let dir = tempfile::tempdir().unwrap();
    let p = producer(2);
    let g = genesis(&p);
    let mut chain = open(&dir, &g);
    let blocks = extend(&mut chain, &p, 8 * 3 + 4); // three epochs and one checkpoint
    let genesis_hash = g.genesis_hash().unwrap();
    let hash = |n: u32| blocks[n as usize - 1].hash();

    let head = chain.head();
    assert_eq!(
        (head.block_number, head.block_hash, head.macro_hash, head.election_hash),
        (28, hash(28), hash(28), hash(24))
    );

    // Block by hash, with and without body; unknown hash.
    let b = chain.block_by_hash(&hash(5), true).unwrap().unwrap();
    assert!(b.has_body());
    assert!(!chain.block_by_hash(&hash(5), false).unwrap().unwrap().has_body());
    assert!(chain.block_by_hash(&Blake2bHash::digest(b"nope"), true).unwrap().is_none());

    // Macro chain from genesis: every election block, then no checkpoint (not caught up)...
    let mc = chain.macro_chain(&[genesis_hash], 100).unwrap();
    assert_eq!(mc.epochs, vec![hash(8), hash(16), hash(24)]);
    assert_eq!(mc.checkpoint, Some((28, hash(28))), "caught up after the last epoch: checkpoint attached");
    // ...clamped by max_epochs, and then the checkpoint is withheld.
    let mc = chain.macro_chain(&[genesis_hash], 2).unwrap();
    assert_eq!(mc.epochs, vec![hash(8), hash(16)]);
    assert_eq!(mc.checkpoint, None);
    // Non-macro and unknown locators are skipped; none known is an error.
    let mc = chain.macro_chain(&[hash(5), Blake2bHash::digest(b"x"), hash(16)], 100).unwrap();
    assert_eq!(mc.epochs, vec![hash(24)]);
    assert!(matches!(chain.macro_chain(&[hash(5)], 100), Err(QueryError::UnknownLocators)));
    assert!(matches!(chain.macro_chain(&[], 100), Err(QueryError::UnknownLocators)));
    // Locator lists are clamped: a known locator beyond the first MAX_LOCATORS is not considered.
    let mut many = vec![Blake2bHash::digest(b"unknown"); petrel_blockchain::MAX_LOCATORS];
    many.push(genesis_hash);
    assert!(matches!(chain.macro_chain(&many, 100), Err(QueryError::UnknownLocators)));
    // At the macro head: nothing new.
    let mc = chain.macro_chain(&[hash(28)], 100).unwrap();
    assert!(mc.epochs.is_empty() && mc.checkpoint.is_none());

    // Missing blocks: at most up to the next macro block after the locator, and up to the target.
    let got = chain.missing_blocks(&hash(27), &[hash(17)], false).unwrap();
    assert_eq!(got.iter().map(Block::block_number).collect::<Vec<_>>(), vec![18, 19, 20]);
    let got = chain.missing_blocks(&hash(19), &[hash(17)], true).unwrap();
    assert_eq!(got.iter().map(Block::block_number).collect::<Vec<_>>(), vec![18, 19]);
    assert!(got.iter().all(Block::has_body));
    assert!(matches!(
        chain.missing_blocks(&Blake2bHash::ZERO, &[hash(17)], false),
        Err(QueryError::TargetHashNotFound)
    ));
    assert!(matches!(chain.missing_blocks(&hash(19), &[Blake2bHash::ZERO], false), Err(QueryError::UnknownLocators)));

    // Batch set of a checkpoint and of an election block; a micro block is refused.
    let bs = chain.batch_set(&hash(20)).unwrap();
    assert!(bs.election_macro_block.is_none());
    assert_eq!(bs.batch_sets.len(), 1);
    let (block, size) = &bs.batch_sets[0];
    assert!(size.verify(&block.header.history_root));
    let bs = chain.batch_set(&hash(24)).unwrap();
    assert_eq!(bs.election_macro_block.as_ref().map(|b| b.hash()), Some(hash(24)));
    assert!(matches!(chain.batch_set(&hash(21)), Err(QueryError::MicroBlockGiven)));
    assert!(matches!(chain.batch_set(&Blake2bHash::ZERO), Err(QueryError::TargetHashNotFound)));
}

#[test]
fn history_chunks_verify_and_history_sync_rebuilds_the_chain() {
    let server_dir = tempfile::tempdir().unwrap();
    let p = producer(3);
    let g = genesis(&p);
    let mut server = open(&server_dir, &g);
    extend(&mut server, &p, 8 * 3 + 4);
    let policy = *server.policy();

    // A fresh node adopts every macro block with the history served in chunks.
    let client_dir = tempfile::tempdir().unwrap();
    let mut client = open(&client_dir, &g);
    let mut events = client.subscribe();
    for number in (4..=28).step_by(4) {
        let Some(Block::Macro(mac)) = server.block_at(number, true).unwrap() else { panic!("macro block {number}") };
        let epoch = policy.epoch_at(number);
        let info = server.batch_set(&mac.hash()).unwrap();
        let leaves = info.batch_sets.last().unwrap().1.leaves;
        // Items already applied in this epoch (from the previous macro block of the same epoch).
        let have = if client.state().history_epoch == epoch { client.state().history.len() } else { 0 };
        let mut items: Vec<HistoryItem> = Vec::new();
        let chunk_size = u64::from(policy.history_chunk_size);
        for index in have / chunk_size..leaves.div_ceil(chunk_size) {
            let chunk = server.history_chunk(epoch, number, index).unwrap();
            let hashes: Vec<_> = chunk.items.iter().map(HistoryItem::leaf_hash).collect();
            chunk.proof.verify(&mac.header.history_root, index * chunk_size, &hashes).unwrap();
            // A tampered chunk does not verify.
            let mut bad = hashes.clone();
            bad[0] = Blake2bHash::ZERO;
            assert!(chunk.proof.verify(&mac.header.history_root, index * chunk_size, &bad).is_err());
            for (i, item) in chunk.items.into_iter().enumerate() {
                if index * chunk_size + i as u64 >= have {
                    items.push(item);
                }
            }
        }
        // Wrong history: the roots do not match and nothing changes.
        if items.len() > 1 {
            let mut wrong = items.clone();
            wrong.swap(0, 1);
            let before = client.head();
            let err = client.push_history_sync(mac.clone(), wrong).unwrap_err();
            assert!(err.is_peer_fault(), "{err}");
            assert_eq!(client.head(), before);
        }
        assert_eq!(client.push_history_sync(mac.clone(), items).unwrap(), PushResult::Extended);
        assert_eq!(client.head().block_hash, mac.hash());
    }
    assert_eq!(client.state().accounts.root(), server.state().accounts.root());
    let mut adopted = 0;
    while let Ok(e) = events.try_recv() {
        if matches!(e, ChainEvent::HistoryAdopted { .. }) {
            adopted += 1;
        }
    }
    assert_eq!(adopted, 7);
    // The history-synced store replays cleanly, and serves the same chunks.
    assert_eq!(client.history_chunk(3, 24, 0).unwrap(), server.history_chunk(3, 24, 0).unwrap());
    drop(client);
    let report = verify_store(&client_dir.path().join("chain.redb"), &mut |_, _| {}).unwrap();
    assert_eq!((report.head_number, report.history_synced_blocks), (28, 7));
}

#[test]
fn chunk_queries_reject_bad_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let p = producer(3);
    let g = genesis(&p);
    let mut chain = open(&dir, &g);
    extend(&mut chain, &p, 16);
    for (epoch, block, index) in [(1, 16, 0), (2, 4, 0), (1, 8, 1_000), (1, 8, u64::MAX), (0, 0, 0), (9, 72, 0)] {
        assert!(
            matches!(chain.history_chunk(epoch, block, index), Err(QueryError::CouldntProduceProof)),
            "{epoch} {block} {index}"
        );
    }
}

#[test]
fn pruning_drops_old_history_but_keeps_macro_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let p = producer(2);
    let g = genesis(&p);
    let mut chain = open(&dir, &g);
    let blocks = extend(&mut chain, &p, 8 * 4);
    assert_eq!(chain.prune_history(1).unwrap(), 3);
    assert!(matches!(chain.history_chunk(1, 8, 0), Err(QueryError::CouldntProduceProof)));
    assert!(matches!(chain.batch_set(&blocks[7].hash()), Err(QueryError::Chain(ChainError::HistoryPruned(1)))));
    assert!(chain.block_at(3, false).unwrap().is_none(), "micro blocks of pruned epochs are gone");
    assert!(chain.block_at(8, false).unwrap().is_some(), "macro blocks stay");
    assert!(chain.history_chunk(3, 24, 0).is_ok());
    // Still opens and keeps extending.
    drop(chain);
    let mut chain = open(&dir, &g);
    assert_eq!(chain.history_pruned_before(), 3);
    extend(&mut chain, &p, 2);
}

#[test]
fn verify_refuses_a_pruned_store_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let p = producer(1);
    let g = genesis(&p);
    let mut chain = open(&dir, &g);
    extend(&mut chain, &p, 8 * 3);
    chain.prune_history(1).unwrap();
    drop(chain);
    let err = verify_store(&dir.path().join("chain.redb"), &mut |_, _| {}).unwrap_err();
    assert!(matches!(err, petrel_blockchain::VerifyError::Pruned(2)), "{err}");
}

#[test]
fn checkpoint_is_attached_only_when_caught_up() {
    let dir = tempfile::tempdir().unwrap();
    let p = producer(0);
    let g = genesis(&p);
    let mut chain = open(&dir, &g);
    let blocks = extend(&mut chain, &p, 8 * 2 + 4);
    let hash = |n: usize| blocks[n - 1].hash();
    // max_epochs = 0 from genesis: not caught up (epoch 2's checkpoint builds on block 16).
    let mc = chain.macro_chain(&[g.genesis_hash().unwrap()], 0).unwrap();
    assert_eq!((mc.epochs.len(), mc.checkpoint), (0, None));
    // From block 16, the checkpoint 20 builds on it.
    let mc = chain.macro_chain(&[hash(16)], 0).unwrap();
    assert_eq!(mc.checkpoint, Some((20, hash(20))));
    let mc = chain.macro_chain(&[hash(12)], 5).unwrap();
    assert_eq!((mc.epochs, mc.checkpoint), (vec![hash(16)], Some((20, hash(20)))));
}
