//! The handlers' answers, computed straight from a chain store (no network): every request kind,
//! and arbitrary requests never panic.

use std::sync::OnceLock;

use petrel_blockchain::{Blockchain, ChainOptions};
use petrel_consensus::handlers::Answer;
use petrel_primitives::history::HistoryItem;
use petrel_primitives::{Blake2bHash, Block, Policy};
use petrel_producer::{Producer, ProducerConfig};
use petrel_protocol::*;

struct Fixture {
    _dir: tempfile::TempDir,
    chain: Blockchain,
    blocks: Vec<Block>,
    genesis: Blake2bHash,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let p = Producer::new(ProducerConfig {
            validators: 4,
            spare_validators: 2,
            accounts: 16,
            transactions_per_block: 3,
            ..Default::default()
        });
        let g = p.genesis(3, 0, Policy::TEST);
        let dir = tempfile::tempdir().unwrap();
        let mut chain =
            Blockchain::open(&dir.path().join("c.redb"), &g, ChainOptions { durable: false, ..Default::default() })
                .unwrap();
        let mut scratch = chain.state().clone();
        let mut blocks = Vec::new();
        for _ in 0..30 {
            let b = p.produce(&mut scratch).unwrap();
            chain.push(b.clone()).unwrap();
            scratch.apply_block(b.clone()).unwrap();
            blocks.push(b);
        }
        Fixture { _dir: dir, chain, blocks, genesis: g.genesis_hash().unwrap() }
    })
}

fn h(n: usize) -> Blake2bHash {
    fixture().blocks[n - 1].hash()
}

#[test]
fn every_request_kind_is_answered() {
    let f = fixture();
    let head = RequestHead.answer(&f.chain);
    assert_eq!((head.block_number, head.block_hash, head.macro_hash, head.election_hash), (30, h(30), h(28), h(24)));

    assert_eq!(RequestBlock { hash: h(7), include_body: true }.answer(&f.chain), Ok(f.blocks[6].clone()));
    assert_eq!(RequestBlock { hash: h(7), include_body: false }.answer(&f.chain), Ok(f.blocks[6].without_body()));
    assert_eq!(
        RequestBlock { hash: Blake2bHash::ZERO, include_body: false }.answer(&f.chain),
        Err(BlockRequestError::TargetHashNotFound)
    );

    let mc = RequestMacroChain { locators: vec![f.genesis], max_epochs: u16::MAX }.answer(&f.chain).unwrap();
    assert_eq!(mc.epochs, vec![h(8), h(16), h(24)]);
    assert_eq!(mc.checkpoint, Some((28, h(28))));
    // A micro-block locator is skipped rather than panicking (the reference's 2026 bug).
    let mc = RequestMacroChain { locators: vec![h(9), h(16)], max_epochs: 10 }.answer(&f.chain).unwrap();
    assert_eq!(mc.epochs, vec![h(24)]);
    assert_eq!(
        RequestMacroChain { locators: vec![h(9)], max_epochs: 10 }.answer(&f.chain),
        Err(MacroChainError::UnknownLocators)
    );

    let bs = RequestBatchSet { hash: h(24) }.answer(&f.chain).unwrap();
    assert_eq!(bs.election_macro_block.map(|b| b.hash()), Some(h(24)));
    assert_eq!(RequestBatchSet { hash: h(23) }.answer(&f.chain), Err(BatchSetError::MicroBlockGiven));
    assert_eq!(RequestBatchSet { hash: Blake2bHash::ZERO }.answer(&f.chain), Err(BatchSetError::TargetHashNotFound));

    let chunk = RequestHistoryChunk { epoch_number: 2, block_number: 16, chunk_index: 0 }.answer(&f.chain).unwrap();
    let Block::Macro(verifier) = &f.blocks[15] else { panic!() };
    let leaves: Vec<_> = chunk.items.iter().map(HistoryItem::leaf_hash).collect();
    chunk.proof.verify(&verifier.header.history_root, 0, &leaves).unwrap();
    assert_eq!(
        RequestHistoryChunk { epoch_number: 2, block_number: 24, chunk_index: 0 }.answer(&f.chain),
        Err(HistoryChunkError::CouldntProduceProof)
    );

    let mb = RequestMissingBlocks { target_hash: h(30), include_body: false, locators: vec![h(25)] }
        .answer(&f.chain)
        .unwrap();
    assert_eq!(mb.blocks.iter().map(Block::block_number).collect::<Vec<_>>(), vec![26, 27, 28]);
    assert_eq!(
        RequestMissingBlocks { target_hash: h(30), include_body: false, locators: vec![] }.answer(&f.chain),
        Err(MissingBlocksError::UnknownLocators)
    );
}

#[test]
fn arbitrary_requests_never_panic() {
    use proptest::prelude::*;
    let f = fixture();
    let hash = || prop_oneof![any::<[u8; 32]>().prop_map(Blake2bHash), (1usize..=30).prop_map(h), Just(f.genesis)];
    let mut runner =
        proptest::test_runner::TestRunner::new(proptest::test_runner::Config { cases: 200, ..Default::default() });
    runner
        .run(
            &(
                prop::collection::vec(hash(), 0..200),
                any::<u16>(),
                any::<u32>(),
                any::<u32>(),
                any::<u64>(),
                hash(),
                any::<bool>(),
            ),
            |(locs, max, e, b, i, t, body)| {
                let _ = RequestMacroChain { locators: locs.clone(), max_epochs: max }.answer(&f.chain);
                let _ = RequestHistoryChunk { epoch_number: e % 6, block_number: b % 40, chunk_index: i % 4 }
                    .answer(&f.chain);
                let _ = RequestHistoryChunk { epoch_number: e, block_number: b, chunk_index: i }.answer(&f.chain);
                let _ = RequestMissingBlocks { target_hash: t, include_body: body, locators: locs }.answer(&f.chain);
                let _ = RequestBatchSet { hash: t }.answer(&f.chain);
                let _ = RequestBlock { hash: t, include_body: body }.answer(&f.chain);
                Ok(())
            },
        )
        .unwrap();
}
