//! Light sync from a configured checkpoint, and pico's cost that does not grow with the chain.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use petrel_blockchain::LightBlockchain;
use petrel_network_api::Services;
use petrel_network_mock::{HubConfig, MockHub};
use petrel_sync_api::{MacroSync, MacroSyncReturn};
use petrel_sync_light::{LightConfig, LightMacroSync};
use petrel_sync_pico::{PicoConfig, PicoMacroSync};
use petrel_test_utils::{TestChain, serve};

async fn verdict<S: MacroSync>(sync: &mut S) -> MacroSyncReturn {
    tokio::time::timeout(Duration::from_secs(600), sync.next()).await.unwrap().unwrap()
}

#[tokio::test(start_paused = true)]
async fn light_sync_from_a_configured_checkpoint() {
    let server = TestChain::build(1, 8 * 6 + 4);
    let anchor = server.blocks[15].as_macro().unwrap().clone();
    let hub = MockHub::new(HubConfig { latency: Duration::from_millis(20), ..Default::default() });
    let node = hub.node(Services::NONE);
    let peer = serve(&hub, &server, Services::HISTORY_NODE);
    hub.connect(node.peer_id(), peer.peer_id()).unwrap();

    let from_checkpoint = Arc::new(Mutex::new(LightBlockchain::new(&server.genesis, Some(anchor), None).unwrap()));
    let mut sync = LightMacroSync::new(node.clone(), from_checkpoint.clone(), LightConfig::default());
    sync.add_peer(peer.peer_id());
    assert_eq!(verdict(&mut sync).await, MacroSyncReturn::Good(peer.peer_id()));
    assert_eq!(from_checkpoint.lock().unwrap().macro_head().hash(), server.blocks[51].hash());
    // Only the election blocks after the anchor (24, 32, 40, 48) and the checkpoint (52).
    assert_eq!(sync.stats().verified_blocks, 5);

    let from_genesis = server.light_chain();
    let mut sync = LightMacroSync::new(node.clone(), from_genesis.clone(), LightConfig::default());
    sync.add_peer(peer.peer_id());
    assert_eq!(verdict(&mut sync).await, MacroSyncReturn::Good(peer.peer_id()));
    assert_eq!(sync.stats().verified_blocks, 7);
}

/// Requests and bytes of a pico sync from genesis against one peer.
async fn pico_cost(epochs: usize) -> (u64, u64, u64) {
    let server = TestChain::build(5, 8 * epochs + 4);
    let hub = MockHub::new(HubConfig { latency: Duration::from_millis(20), ..Default::default() });
    let node = hub.node(Services::NONE);
    let peer = serve(&hub, &server, Services::HISTORY_NODE);
    hub.connect(node.peer_id(), peer.peer_id()).unwrap();
    let chain = server.light_chain();
    let mut sync = PicoMacroSync::new(node.clone(), chain.clone(), PicoConfig::default());
    sync.add_peer(peer.peer_id());
    let start = tokio::time::Instant::now();
    assert_eq!(verdict(&mut sync).await, MacroSyncReturn::Good(peer.peer_id()));
    assert_eq!(chain.lock().unwrap().macro_head().hash(), server.blocks[8 * epochs + 3].hash());
    let stats = node.stats();
    // Round trips: the virtual time spent, in units of one round trip (2 × 20 ms).
    let round_trips = (start.elapsed().as_millis() / 40) as u64;
    (stats.requests_sent, stats.bytes_received, round_trips)
}

#[tokio::test(start_paused = true)]
async fn pico_cost_does_not_grow_with_the_chain() {
    let short = pico_cost(10).await;
    let long = pico_cost(200).await;
    assert_eq!(short.0, long.0, "same number of requests");
    // Bytes are the same up to the width of varint-encoded block numbers and timestamps (a few
    // bytes per block between 10 and 200 epochs): nothing proportional to the chain.
    assert!(long.1.abs_diff(short.1) <= 32, "bytes received {} vs {}", short.1, long.1);
    // No second head request: the blocks applied are the ones the head named.
    assert_eq!(short.0, 3, "head, election block, checkpoint");
    assert!(long.2 <= 2, "at most 2 round trips from genesis (the head, then the blocks), took {}", long.2);
}
