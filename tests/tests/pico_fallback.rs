//! Pico's trust on first use, caught: a liar serves an election block signed by validators it
//! invented; pico adopts it, an honest peer conflicts, the node falls back to Light Macro Sync,
//! ends established on the honest chain, and the liar is banned.

mod common;

use std::time::Duration;

use futures::StreamExt;
use petrel_consensus::ConsensusEvent;
use petrel_network_api::{Request, Services};
use petrel_network_mock::{HubConfig, MockHub, ScriptedReply};
use petrel_primitives::{Block, codec};
use petrel_protocol::*;
use petrel_sync_api::MacroSyncReturn;
use petrel_test_utils::{TestChain, serve, test_producer};

#[tokio::test(start_paused = true)]
async fn a_lying_first_peer_is_caught_and_banned() {
    lying_first_peer(None, false).await;
}

/// The liar goes silent once the node falls back, so light sync never sees its blocks: it is
/// banned because verification found another election block where it had served one.
#[tokio::test(start_paused = true)]
async fn a_liar_that_falls_silent_is_banned_by_what_verification_found() {
    lying_first_peer(None, true).await;
}

/// The liar's election block claims to be far in the future: honest peers are then "behind" the
/// node, which must still treat them as conflicting (the trusted block is unverified).
#[tokio::test(start_paused = true)]
async fn a_lie_from_the_future_is_caught_too() {
    lying_first_peer(Some(8 * 50), false).await;
}

async fn lying_first_peer(claimed_number: Option<u32>, silent_after_fallback: bool) {
    let honest = TestChain::build(1, 8 * 2 + 4);
    let policy = honest.genesis.policy;
    // The liar's election block 16: the honest header with validators it invented, signed by them.
    let Block::Macro(mut forged) = honest.blocks[15].clone() else { panic!("16 is an election block") };
    if let Some(n) = claimed_number {
        forged.header.block_number = n;
    }
    let liar_keys = test_producer(666, 0);
    let invented = liar_keys.validators_for_epoch(3, &policy);
    forged.header.validators = Some(liar_keys.validators_for_epoch(4, &policy));
    liar_keys.sign_macro(&mut forged, &invented, &policy).unwrap();
    let forged_hash = forged.hash();
    let fake_head = ResponseHead {
        block_number: forged.block_number(),
        block_hash: forged_hash,
        macro_hash: forged_hash,
        election_hash: forged_hash,
    };

    let hub = MockHub::new(HubConfig { seed: 3, latency: Duration::from_millis(30), ..Default::default() });
    let node = hub.node(Services::NONE);
    let liar = hub.scripted_node(Services::HISTORY_NODE, move |_, type_id, payload| match type_id {
        RequestHead::TYPE_ID => ScriptedReply::ok::<RequestHead>(&fake_head),
        RequestBlock::TYPE_ID => {
            let req: RequestBlock = codec::decode(&payload, 1024).unwrap();
            let answer = if req.hash == forged_hash {
                Ok(Block::Macro(petrel_primitives::MacroBlock { body: None, ..forged.clone() }))
            } else {
                Err(BlockRequestError::TargetHashNotFound)
            };
            ScriptedReply::ok::<RequestBlock>(&answer)
        }
        RequestMacroChain::TYPE_ID if !silent_after_fallback => {
            ScriptedReply::ok::<RequestMacroChain>(&Ok(MacroChain { epochs: vec![forged_hash], checkpoint: None }))
        }
        _ => ScriptedReply::Silence,
    });

    let chain = honest.light_chain();
    let mut syncer = common::pico_syncer(&node, &chain, &policy, 1);

    // The liar answers first: pico adopts its election block on trust.
    hub.connect(node.peer_id(), liar.peer_id()).unwrap();
    let mut next = async || tokio::time::timeout(Duration::from_secs(300), syncer.next()).await.unwrap().unwrap();
    loop {
        if next().await == ConsensusEvent::Verdict(MacroSyncReturn::Good(liar.peer_id())) {
            break;
        }
    }
    assert_eq!(chain.lock().unwrap().election_head().hash(), forged_hash, "adopted on trust");

    // Honest peers arrive: conflict, fallback, and the honest chain wins. (A block from the
    // future makes honest peers look behind; it takes two of them to doubt the trusted block.)
    let good = serve(&hub, &honest, Services::HISTORY_NODE);
    hub.connect(node.peer_id(), good.peer_id()).unwrap();
    let second = serve(&hub, &honest, Services::HISTORY_NODE);
    hub.connect(node.peer_id(), second.peer_id()).unwrap();
    let mut seen = Vec::new();
    // Virtual time: a node that never falls back fails here instead of looping forever.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    loop {
        assert!(tokio::time::Instant::now() < deadline, "no fallback to an honest chain: {seen:?}");
        let e = next().await;
        seen.push(e.clone());
        if e == ConsensusEvent::Established && seen.contains(&ConsensusEvent::FellBack) {
            break;
        }
    }
    // The verdict on the trusted block lands with the verification that reaches its height; give
    // the syncer the turns it takes to act on it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !node.is_banned(&liar.peer_id()) && tokio::time::Instant::now() < deadline {
        let _ = tokio::time::timeout(Duration::from_secs(1), syncer.next()).await;
    }
    let honest_peers = [good.peer_id(), second.peer_id()];
    assert!(
        seen.iter()
            .any(|e| honest_peers.iter().any(|p| *e == ConsensusEvent::Verdict(MacroSyncReturn::Conflicting(*p)))),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|e| honest_peers.iter().any(|p| *e == ConsensusEvent::Verdict(MacroSyncReturn::Good(*p)))),
        "{seen:?}"
    );
    let light = chain.lock().unwrap();
    assert_eq!(light.macro_head().hash(), honest.chain.read().unwrap().head().macro_hash);
    assert!(node.is_banned(&liar.peer_id()), "the liar served blocks that do not verify: banned");
    assert!(
        honest_peers.iter().all(|p| node.score(p) == 0),
        "honest peers that contradicted the lie cost nothing: {:?}",
        honest_peers.iter().map(|p| node.score(p)).collect::<Vec<_>>()
    );
}
