//! Peer events lost to the bounded event channel: the syncer reconciles with the network's peer
//! list instead of forgetting joins and departures.

mod common;

use std::time::Duration;

use futures::StreamExt;
use petrel_network_api::{EVENT_CAPACITY, Network, Services};
use petrel_network_mock::{HubConfig, MockHub};
use petrel_test_utils::TestChain;

#[tokio::test(start_paused = true)]
async fn joins_and_departures_lost_to_a_lagged_channel_are_reconciled() {
    let chain = TestChain::build(1, 8);
    let policy = chain.genesis.policy;
    let light = chain.light_chain();
    let hub = MockHub::new(HubConfig { seed: 9, ..Default::default() });
    let node = hub.node(Services::NONE);
    let mut syncer = common::pico_syncer(&node, &light, &policy, 1);
    let _ = tokio::time::timeout(Duration::from_millis(10), syncer.next()).await;

    // More joins than the channel holds arrive while the syncer is not polled, then some leave.
    let peers: Vec<_> = (0..EVENT_CAPACITY + 50).map(|_| hub.node(Services::NONE)).collect();
    for p in &peers {
        hub.connect(node.peer_id(), p.peer_id()).unwrap();
    }
    for p in &peers[..20] {
        hub.disconnect(node.peer_id(), p.peer_id());
    }
    for _ in 0..5 {
        let _ = tokio::time::timeout(Duration::from_millis(100), syncer.next()).await;
    }
    let mut connected: Vec<_> = node.peers().into_iter().map(|(p, _)| p).collect();
    connected.sort();
    assert_eq!(connected.len(), EVENT_CAPACITY + 30);
    assert_eq!(syncer.connected_peers(), connected);
}
