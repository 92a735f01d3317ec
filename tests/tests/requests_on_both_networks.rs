//! Every request kind answered by a serving node, checked against the chain's own data by one test
//! body that runs on the mock network (paused clock) and over libp2p (real TCP on 127.0.0.1).
//!
//! The body ([`check_every_request`]) only knows the [`Network`] trait: if both networks carry
//! the typed requests faithfully, the same assertions hold on both.

use std::future::Future;
use std::time::Duration;

use petrel_consensus::handlers::{HandlerConfig, serve_full_chain};
use petrel_network_api::{Network, NetworkEvent, NetworkExt, PeerId, Request, Services};
use petrel_network_libp2p::{Libp2pConfig, Libp2pNetwork};
use petrel_network_mock::{HubConfig, MockHub};
use petrel_primitives::{Blake2bHash, Block, HistoryItem};
use petrel_protocol::{
    BatchSetError, BlockRequestError, HistoryChunkError, MacroChainError, MissingBlocksError, RequestBatchSet,
    RequestBlock, RequestHead, RequestHistoryChunk, RequestMacroChain, RequestMissingBlocks,
};
use petrel_test_utils::{TestChain, serve};
use tokio::sync::broadcast;

/// Upper bound of every wait (each request, each network event).
const WAIT: Duration = Duration::from_secs(10);

/// Three epochs of the test policy (8 blocks each) and a checkpoint at block 28.
const BLOCKS: usize = 8 * 3 + 4;

async fn within<F: Future>(what: &str, f: F) -> F::Output {
    match tokio::time::timeout(WAIT, f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {WAIT:?}: {what}"),
    }
}

/// Sends `request` and returns the server's answer; a transport failure fails the test.
async fn ask<N: Network, R: Request + std::fmt::Debug>(client: &N, server: PeerId, request: R) -> R::Response {
    let what = format!("{request:?}");
    match within(&what, client.request(server, &request)).await {
        Ok(response) => response,
        Err(e) => panic!("{what}: transport error {e:?}"),
    }
}

/// The main-chain block `number` (1-based, as in `chain.blocks[number - 1]`).
fn block(chain: &TestChain, number: u32) -> &Block {
    let b = &chain.blocks[number as usize - 1];
    assert_eq!(b.block_number(), number);
    b
}

/// A hash no block has.
fn unknown_hash() -> Blake2bHash {
    Blake2bHash::digest(b"no such block")
}

/// Asks `server` for every request kind and checks each answer against `chain`, the data it
/// serves.
async fn check_every_request<N: Network>(client: N, server_peer: PeerId, chain: &TestChain) {
    let c = &client;
    let s = server_peer;
    let policy = chain.genesis.policy;
    let genesis_hash = chain.genesis.genesis_hash().expect("genesis hash");
    let head_number = chain.blocks.len() as u32;
    // The chain shape this body relies on: three epochs and a checkpoint after them.
    assert_eq!(policy.blocks_per_epoch(), 8);
    assert!(policy.is_election_block_at(24) && policy.is_macro_block_at(28) && !policy.is_election_block_at(28));
    assert_eq!(head_number, 28);

    // RequestHead: the store's head.
    let head = chain.chain.read().unwrap().head();
    let answer = ask(c, s, RequestHead).await;
    assert_eq!(
        (answer.block_number, answer.block_hash, answer.macro_hash, answer.election_hash),
        (head.block_number, head.block_hash, head.macro_hash, head.election_hash),
    );
    assert_eq!(answer.block_number, head_number);
    assert_eq!(answer.block_hash, block(chain, 28).hash());
    assert_eq!(answer.macro_hash, block(chain, 28).hash());
    assert_eq!(answer.election_hash, block(chain, 24).hash());

    // RequestBlock: micro, macro, election and checkpoint blocks, with and without body.
    for number in [1, 3, 4, 8, 13, 16, 27, 28] {
        let b = block(chain, number);
        let full = ask(c, s, RequestBlock { hash: b.hash(), include_body: true }).await;
        assert_eq!(full.as_ref(), Ok(b), "block {number} with body");
        assert!(b.has_body(), "block {number} was produced with a body");
        let header = ask(c, s, RequestBlock { hash: b.hash(), include_body: false }).await;
        assert_eq!(header, Ok(b.without_body()), "block {number} without body");
        assert!(!header.unwrap().has_body());
    }
    let genesis = ask(c, s, RequestBlock { hash: genesis_hash, include_body: false }).await;
    assert_eq!(genesis.map(|b| b.hash()), Ok(genesis_hash));
    let missing = ask(c, s, RequestBlock { hash: unknown_hash(), include_body: true }).await;
    assert_eq!(missing, Err(BlockRequestError::TargetHashNotFound));

    // RequestMacroChain: from genesis, every election block and the checkpoint (caught up).
    let elections: Vec<_> = [8, 16, 24].map(|n| block(chain, n).hash()).to_vec();
    let store_macro_chain = |locators: &[Blake2bHash], max_epochs: u16| {
        chain.chain.read().unwrap().macro_chain(locators, max_epochs).expect("store answers")
    };
    let from_genesis = ask(c, s, RequestMacroChain { locators: vec![genesis_hash], max_epochs: 1000 }).await;
    let expected = store_macro_chain(&[genesis_hash], 1000);
    let answer = from_genesis.expect("macro chain from genesis");
    assert_eq!((&answer.epochs, answer.checkpoint), (&expected.epochs, expected.checkpoint));
    assert_eq!(answer.epochs, elections);
    assert_eq!(answer.checkpoint, Some((28, block(chain, 28).hash())));
    // Limited to two epochs: not caught up, so no checkpoint.
    let two = ask(c, s, RequestMacroChain { locators: vec![genesis_hash], max_epochs: 2 }).await;
    let expected = store_macro_chain(&[genesis_hash], 2);
    let answer = two.expect("macro chain of two epochs");
    assert_eq!((&answer.epochs, answer.checkpoint), (&expected.epochs, expected.checkpoint));
    assert_eq!((answer.epochs.as_slice(), answer.checkpoint), (&elections[..2], None));
    // From the election head: no epochs, the checkpoint. Unknown and micro locators are skipped.
    let locators = vec![unknown_hash(), block(chain, 27).hash(), elections[2]];
    let from_head = ask(c, s, RequestMacroChain { locators: locators.clone(), max_epochs: 1000 }).await;
    let expected = store_macro_chain(&locators, 1000);
    let answer = from_head.expect("macro chain from the election head");
    assert_eq!((&answer.epochs, answer.checkpoint), (&expected.epochs, expected.checkpoint));
    assert_eq!((answer.epochs.as_slice(), answer.checkpoint), (&[][..], Some((28, block(chain, 28).hash()))));
    // A micro-block locator alone is no locator.
    let micro_only = ask(c, s, RequestMacroChain { locators: vec![block(chain, 9).hash()], max_epochs: 1000 }).await;
    assert_eq!(micro_only, Err(MacroChainError::UnknownLocators));

    // RequestBatchSet: an election block and the checkpoint, as the store has them.
    for number in [16, 28] {
        let b = block(chain, number);
        let answer = ask(c, s, RequestBatchSet { hash: b.hash() }).await.expect("batch set");
        let expected = chain.chain.read().unwrap().batch_set(&b.hash()).expect("store answers");
        assert_eq!(answer.election_macro_block, expected.election_macro_block, "block {number}");
        assert_eq!(answer.batch_sets, expected.batch_sets, "block {number}");
        let election = b.is_election().then(|| b.as_macro().unwrap().clone());
        assert_eq!(answer.election_macro_block, election, "block {number}");
        let (last, size) = answer.batch_sets.last().expect("the requested block closes the list");
        assert_eq!(last.hash(), b.hash());
        for (m, size) in &answer.batch_sets {
            assert!(size.verify(&m.header.history_root), "size proof of block {}", m.block_number());
        }
        assert!(size.leaves > 0, "block {number}'s epoch has history");
    }
    let micro = ask(c, s, RequestBatchSet { hash: block(chain, 10).hash() }).await;
    assert_eq!(micro, Err(BatchSetError::MicroBlockGiven));
    let missing = ask(c, s, RequestBatchSet { hash: unknown_hash() }).await;
    assert_eq!(missing, Err(BatchSetError::TargetHashNotFound));

    // RequestHistoryChunk: every chunk of epoch 2 (verifier: its election block 16) and of epoch 4
    // (verifier: the checkpoint 28), each proven against the verifier's history root.
    let chunk_size = u64::from(policy.history_chunk_size);
    for (epoch, verifier) in [(2u32, 16u32), (4, 28)] {
        let root = *block(chain, verifier).history_root();
        let leaves = chain.chain.read().unwrap().batch_set(&block(chain, verifier).hash()).unwrap();
        let leaves = leaves.batch_sets.last().unwrap().1.leaves;
        if epoch == 2 {
            assert!(leaves > chunk_size, "epoch 2 has {leaves} items: too few for a second chunk");
        }
        let mut items = Vec::new();
        for chunk_index in 0..leaves.div_ceil(chunk_size) {
            let request = RequestHistoryChunk { epoch_number: epoch, block_number: verifier, chunk_index };
            let answer = ask(c, s, request.clone()).await.expect("history chunk");
            let expected = chain.chain.read().unwrap().history_chunk(epoch, verifier, chunk_index).expect("store");
            assert_eq!((&answer.items, &answer.proof), (&expected.items, &expected.proof), "{request:?}");
            let start = chunk_index * chunk_size;
            assert_eq!(answer.items.len() as u64, chunk_size.min(leaves - start), "{request:?}");
            assert_eq!(answer.proof.total_leaves, leaves);
            let hashes: Vec<_> = answer.items.iter().map(HistoryItem::leaf_hash).collect();
            answer.proof.verify(&root, start, &hashes).unwrap_or_else(|e| panic!("{request:?}: {e}"));
            // The proof does not hold for another leaf.
            let mut forged = hashes.clone();
            forged[0] = unknown_hash();
            assert!(answer.proof.verify(&root, start, &forged).is_err(), "{request:?} proves a forged leaf");
            items.extend(answer.items);
        }
        assert_eq!(items.len() as u64, leaves);
        assert!(items.iter().all(|i| policy.epoch_at(i.block_number) == epoch && i.block_number <= verifier));
        assert!(items.windows(2).all(|w| w[0].block_number <= w[1].block_number), "items in block order");
    }
    for (epoch, verifier, chunk_index) in [
        (2, 16, 1000),     // past the epoch's history
        (2, 16, u64::MAX), // start index overflows
        (3, 16, 0),        // verifier not in the epoch
        (2, 13, 0),        // verifier is a micro block
        (0, 0, 0),         // genesis has no history
        (5, 40, 0),        // beyond the head
    ] {
        let request = RequestHistoryChunk { epoch_number: epoch, block_number: verifier, chunk_index };
        let answer = ask(c, s, request.clone()).await;
        assert_eq!(answer, Err(HistoryChunkError::CouldntProduceProof), "{request:?}");
    }

    // RequestMissingBlocks: after the first known locator, up to the target, at most one batch.
    let numbers = |blocks: &[Block]| blocks.iter().map(Block::block_number).collect::<Vec<_>>();
    let cases: [(u32, Vec<Blake2bHash>, Vec<u32>); 5] = [
        // From a micro block: up to the next macro block.
        (28, vec![block(chain, 10).hash()], vec![11, 12]),
        // Unknown locators are skipped; from genesis up to the target inside the first batch.
        (3, vec![unknown_hash(), genesis_hash], vec![1, 2, 3]),
        // From a macro block: the whole next batch.
        (28, vec![block(chain, 16).hash(), genesis_hash], vec![17, 18, 19, 20]),
        // The last batch, ending at the checkpoint.
        (28, vec![block(chain, 24).hash()], vec![25, 26, 27, 28]),
        // Already at the target.
        (28, vec![block(chain, 28).hash()], vec![]),
    ];
    for (target, locators, expected) in cases {
        for include_body in [true, false] {
            let target_hash = block(chain, target).hash();
            let request = RequestMissingBlocks { target_hash, include_body, locators: locators.clone() };
            let answer = ask(c, s, request.clone()).await.unwrap_or_else(|e| panic!("{request:?}: {e}"));
            assert_eq!(numbers(&answer.blocks), expected, "{request:?}");
            for b in &answer.blocks {
                let ours = block(chain, b.block_number());
                let ours = if include_body { ours.clone() } else { ours.without_body() };
                assert_eq!(*b, ours, "block {} of {request:?}", b.block_number());
            }
        }
    }
    let target_hash = block(chain, 28).hash();
    let unknown_target =
        RequestMissingBlocks { target_hash: unknown_hash(), include_body: false, locators: vec![genesis_hash] };
    assert_eq!(ask(c, s, unknown_target).await, Err(MissingBlocksError::TargetHashNotFound));
    let unknown_locators = RequestMissingBlocks { target_hash, include_body: false, locators: vec![unknown_hash()] };
    assert_eq!(ask(c, s, unknown_locators).await, Err(MissingBlocksError::UnknownLocators));
}

#[tokio::test(start_paused = true)]
async fn on_the_mock_network() {
    let chain = TestChain::build(1, BLOCKS);
    let hub = MockHub::new(HubConfig::default());
    let client = hub.node(Services::NONE);
    let server = serve(&hub, &chain, Services::HISTORY_NODE);
    hub.connect(client.peer_id(), server.peer_id()).unwrap();
    // `serve_full_chain` registers every handler before it returns, so a request sent at once (zero
    // latency) is queued, not refused.
    check_every_request(client, server.peer_id(), &chain).await;
}

fn libp2p_config(seed: u8, genesis_hash: Blake2bHash, services: Services, bootstrap: Vec<String>) -> Libp2pConfig {
    Libp2pConfig {
        genesis_hash,
        services,
        listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
        bootstrap,
        ..Libp2pConfig::with_seed([seed; 32])
    }
}

/// Waits for `peer`'s `PeerJoined`, returning its services.
async fn joined(events: &mut broadcast::Receiver<NetworkEvent>, peer: PeerId) -> Services {
    within("PeerJoined", async {
        loop {
            match events.recv().await {
                Ok(NetworkEvent::PeerJoined(p, info)) if p == peer => return info.services,
                Ok(_) => {}
                Err(e) => panic!("event stream: {e}"),
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_libp2p() {
    let chain = TestChain::build(1, BLOCKS);
    let genesis_hash = chain.genesis.genesis_hash().expect("genesis hash");

    let (server, server_loop) =
        Libp2pNetwork::new(libp2p_config(11, genesis_hash, Services::HISTORY_NODE, vec![])).expect("server starts");
    let mut server_events = server.subscribe_events();
    let _server_loop = tokio::spawn(server_loop.run());
    let _handlers = tokio::spawn(serve_full_chain(server.clone(), chain.chain.clone(), HandlerConfig::default()));
    let addrs = within("server listen address", server.listen_addrs()).await;
    let bootstrap = format!("{}/p2p/{}", addrs[0], server.local_libp2p_peer_id());

    let (client, client_loop) =
        Libp2pNetwork::new(libp2p_config(12, genesis_hash, Services::NONE, vec![bootstrap])).expect("client starts");
    let mut client_events = client.subscribe_events();
    let _client_loop = tokio::spawn(client_loop.run());

    assert_eq!(joined(&mut client_events, server.local_peer_id()).await, Services::HISTORY_NODE);
    assert_eq!(joined(&mut server_events, client.local_peer_id()).await, Services::NONE);
    check_every_request(client, server.local_peer_id(), &chain).await;
}
