//! The history machine end to end on the mock network (paused clock): a fresh store syncs an
//! honest chain from two peers; a peer without the services is Incompatible.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use petrel_blockchain::{Blockchain, ChainOptions};
use petrel_network_api::Services;
use petrel_network_mock::{HubConfig, MockHub};
use petrel_sync_api::MacroSync;
use petrel_test_utils::{TestChain, serve};

use super::*;
use crate::driver::HistoryMacroSync;

fn fresh_chain(reference: &TestChain, dir: &tempfile::TempDir) -> SharedChain {
    let options = ChainOptions { durable: false, ..Default::default() };
    Arc::new(RwLock::new(Blockchain::open(&dir.path().join("chain.redb"), &reference.genesis, options).expect("open")))
}

#[tokio::test(start_paused = true)]
async fn a_fresh_store_syncs_every_epoch_and_the_checkpoint_from_two_peers() {
    let server = TestChain::build(1, 8 * 5 + 4);
    let hub = MockHub::new(HubConfig { seed: 3, latency: Duration::from_millis(20), ..Default::default() });
    let node = hub.node(Services::NONE);
    let dir = tempfile::tempdir().unwrap();
    let chain = fresh_chain(&server, &dir);
    let mut sync = HistoryMacroSync::new(node.clone(), chain.clone(), HistoryConfig::default());
    let peers: Vec<_> = (0..2).map(|_| serve(&hub, &server, Services::HISTORY_NODE)).collect();
    for p in &peers {
        hub.connect(node.peer_id(), p.peer_id()).unwrap();
        sync.add_peer(p.peer_id());
    }
    let mut verdicts = Vec::new();
    while verdicts.len() < 2 {
        let v = tokio::time::timeout(Duration::from_secs(600), sync.next()).await.expect("a verdict in time");
        verdicts.push(v.expect("the stream goes on"));
    }
    assert!(verdicts.iter().all(|v| matches!(v, MacroSyncReturn::Good(_))), "{verdicts:?}");
    let theirs = server.chain.read().unwrap().head();
    let ours = chain.read().unwrap().head();
    assert_eq!(ours.macro_hash, theirs.macro_hash, "our macro head is theirs (the checkpoint)");
    assert_eq!(ours.block_hash, ours.macro_hash, "history sync applies macro blocks only");
    assert_eq!(ours.election_hash, theirs.election_hash);
    let stats = sync.stats();
    assert_eq!(stats.applied, 6, "five epochs and the checkpoint: {stats:?}");
    assert!(stats.chunk_requests >= 6, "{stats:?}");
    // Every peer took part: nothing was fetched twice per item beyond retries.
    assert!(stats.batch_set_requests >= 6, "{stats:?}");
}

#[tokio::test(start_paused = true)]
async fn a_peer_without_history_is_incompatible() {
    let server = TestChain::build(1, 8);
    let hub = MockHub::new(HubConfig::default());
    let node = hub.node(Services::NONE);
    let dir = tempfile::tempdir().unwrap();
    let mut sync = HistoryMacroSync::new(node.clone(), fresh_chain(&server, &dir), HistoryConfig::default());
    let full = serve(&hub, &server, Services::FULL_NODE);
    hub.connect(node.peer_id(), full.peer_id()).unwrap();
    sync.add_peer(full.peer_id());
    let v = tokio::time::timeout(Duration::from_secs(60), sync.next()).await.unwrap();
    assert_eq!(v, Some(MacroSyncReturn::Incompatible(full.peer_id())));
}

#[tokio::test(start_paused = true)]
async fn epochs_of_several_batch_sets_and_chunks_sync_too() {
    // Every checkpoint ends a batch set; 3 transfers per block: several chunks per batch set.
    let producer = petrel_test_utils::test_producer(2, 3);
    let genesis = producer.genesis(1, 1_700_000_000_000, petrel_primitives::Policy::TEST);
    let options = ChainOptions { durable: false, batch_set_max_history_bytes: 64 };
    let server = TestChain::build_with(producer, genesis, 8 * 3 + 4, options);
    let hub = MockHub::new(HubConfig { seed: 5, latency: Duration::from_millis(10), ..Default::default() });
    let node = hub.node(Services::NONE);
    let dir = tempfile::tempdir().unwrap();
    let chain = fresh_chain(&server, &dir);
    let mut sync = HistoryMacroSync::new(node.clone(), chain.clone(), HistoryConfig::default());
    let peer = serve(&hub, &server, Services::HISTORY_NODE);
    hub.connect(node.peer_id(), peer.peer_id()).unwrap();
    sync.add_peer(peer.peer_id());
    let v = tokio::time::timeout(Duration::from_secs(600), sync.next()).await.unwrap();
    assert_eq!(v, Some(MacroSyncReturn::Good(peer.peer_id())));
    let theirs = server.chain.read().unwrap().head();
    assert_eq!(chain.read().unwrap().head().macro_hash, theirs.macro_hash);
    // Three epochs of two batch sets each, then the checkpoint of the fourth.
    assert_eq!(sync.stats().applied, 7, "{:?}", sync.stats());
}

/// Both windows at 1 (the window-1 baseline of the bench): each release must issue the next fetch
/// itself, as no other answer is in flight to do it.
#[tokio::test(start_paused = true)]
async fn one_request_in_flight_still_syncs() {
    let server = TestChain::build(1, 8 * 3 + 4);
    let hub = MockHub::new(HubConfig { seed: 3, latency: Duration::from_millis(20), ..Default::default() });
    let node = hub.node(Services::NONE);
    let dir = tempfile::tempdir().unwrap();
    let chain = fresh_chain(&server, &dir);
    let mut config = HistoryConfig::default();
    let one = |q: petrel_sync_api::queue::QueueConfig| petrel_sync_api::queue::QueueConfig {
        window: 1,
        per_peer: 1,
        initial_per_peer: 1,
        ..q
    };
    config.batch_sets = one(config.batch_sets);
    config.chunks = one(config.chunks);
    let mut sync = HistoryMacroSync::new(node.clone(), chain.clone(), config);
    let peer = serve(&hub, &server, Services::HISTORY_NODE);
    hub.connect(node.peer_id(), peer.peer_id()).unwrap();
    sync.add_peer(peer.peer_id());
    let v = tokio::time::timeout(Duration::from_secs(600), sync.next()).await.expect("a verdict in time");
    assert!(matches!(v, Some(MacroSyncReturn::Good(_))), "{v:?}");
    assert_eq!(chain.read().unwrap().head().macro_hash, server.chain.read().unwrap().head().macro_hash);
}
