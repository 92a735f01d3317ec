//! Block live sync on the mock network: after pico sync, a node follows gossiped headers in order,
//! out of order (buffered, gaps fetched with missing-block requests), and after falling far
//! behind (the peer is Ahead: back to macro sync, then live again).

mod common;

use std::time::Duration;

use futures::StreamExt;
use petrel_consensus::ConsensusEvent;
use petrel_network_api::{NetworkExt, Services};
use petrel_network_mock::{HubConfig, MockHub};
use petrel_protocol::BlockHeaders;
use petrel_sync_api::LiveSyncEvent;
use petrel_test_utils::{TestChain, serve};

#[tokio::test(start_paused = true)]
async fn follows_in_order_out_of_order_and_after_a_gap() {
    let mut server = TestChain::build(1, 8 * 2 + 4);
    let policy = server.genesis.policy;
    let hub = MockHub::new(HubConfig { seed: 11, latency: Duration::from_millis(25), ..Default::default() });
    let node = hub.node(Services::NONE);
    let peer = serve(&hub, &server, Services::HISTORY_NODE);
    let chain = server.light_chain();
    let mut syncer = common::pico_syncer(&node, &chain, &policy, 1);
    hub.connect(node.peer_id(), peer.peer_id()).unwrap();

    // Drives the syncer until `cond(events so far)` holds, collecting events. Pushes run as jobs
    // off the executor, so the chain can be ahead of the events reporting it: conditions name
    // the events they wait for.
    let server_head = |s: &TestChain| s.chain.read().unwrap().head().block_hash;
    macro_rules! run_until {
        (|$events:ident| $cond:expr) => {{
            let mut $events: Vec<ConsensusEvent> = Vec::new();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
            while !$cond {
                match tokio::time::timeout_at(deadline, syncer.next()).await {
                    Ok(Some(e)) => $events.push(e),
                    _ => panic!("condition not reached; events: {:?}", $events),
                }
            }
            $events
        }};
    }
    let has = |events: &[ConsensusEvent], f: fn(&ConsensusEvent) -> bool| events.iter().any(f);
    let events = run_until!(|events| syncer.is_established());
    assert!(events.contains(&ConsensusEvent::Established));

    // In order: each of three announced blocks is accepted.
    for block in server.extend(3) {
        peer.publish::<BlockHeaders>(&block.without_body()).await.unwrap();
    }
    let announced = |events: &[ConsensusEvent]| {
        events.iter().filter(|e| matches!(e, ConsensusEvent::Live(LiveSyncEvent::AcceptedAnnouncedBlock(_)))).count()
    };
    let events = run_until!(|events| announced(&events) == 3);
    assert_eq!(chain.lock().unwrap().head().block_hash, server_head(&server), "{events:?}");

    // Out of order: only the third of three new blocks is announced; the gap is fetched.
    let new = server.extend(3);
    peer.publish::<BlockHeaders>(&new[2].without_body()).await.unwrap();
    let events = run_until!(|events| has(&events, |e| matches!(
        e,
        ConsensusEvent::Live(LiveSyncEvent::ReceivedMissingBlocks(_))
    )) && chain.lock().unwrap().head().block_hash == server_head(&server));
    assert_eq!(announced(&events), 0, "{events:?}");

    // Far ahead: more than the window of two batches; the peer goes back to macro sync, and head
    // requests then catch the node up to the tip. Its only live peer left live sync, so consensus
    // was lost; the next head round with the peer back in live sync establishes it again.
    let new = server.extend(3 * policy.blocks_per_batch as usize + 1);
    peer.publish::<BlockHeaders>(&new.last().unwrap().without_body()).await.unwrap();
    run_until!(|events| has(&events, |e| matches!(e, ConsensusEvent::Live(LiveSyncEvent::Ahead(_))))
        && events.contains(&ConsensusEvent::Lost)
        && chain.lock().unwrap().head().block_hash == server_head(&server));
    run_until!(|events| syncer.is_established());
}

/// Live sync relays a known block only if it is exactly our copy: the same hash (a header) with
/// another justification or body is not.
#[test]
fn a_known_block_is_held_exactly_only_with_the_same_justification_and_body() {
    use petrel_consensus::SyncChain;
    use petrel_primitives::Block;
    let server = TestChain::build(1, 8 * 2 + 4);
    let full = server.chain.clone();
    let last = server.blocks.len() - 1;
    let (macro_block, micro_block) = (server.blocks[15].clone(), server.blocks[last - 1].clone());
    assert!(full.holds_exactly(&macro_block) && full.holds_exactly(&micro_block));
    let Block::Macro(mut altered) = macro_block.clone() else { panic!("16 is a macro block") };
    altered.justification = None;
    let altered = Block::Macro(altered);
    assert_eq!(altered.hash(), macro_block.hash(), "a block is named by its header");
    assert!(!full.holds_exactly(&altered));
    let Block::Micro(mut altered) = micro_block.clone() else { panic!("the block before the last is a micro block") };
    assert!(full.holds_exactly(&Block::Micro(altered.clone()).without_body()), "headers compare as headers");
    altered.body = Some(Default::default());
    assert_ne!(Block::Micro(altered.clone()), micro_block, "the test chain's blocks carry transactions");
    assert!(!full.holds_exactly(&Block::Micro(altered)), "another body under the same header");
}
