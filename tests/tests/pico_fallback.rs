//! Pico's trust on first use, caught: a liar serves an election block signed by validators it
//! invented; pico adopts it, an honest peer conflicts, the node falls back to Light Macro Sync,
//! ends established on the honest chain, and the liar is banned.

mod common;

use std::time::Duration;

use futures::StreamExt;
use petrel_consensus::ConsensusEvent;
use petrel_network_api::{NetworkExt, PeerId, PenaltyReason, Request, Services};
use petrel_network_mock::{HubConfig, MockHub, MockNetwork, ScriptedPeer, ScriptedReply};
use petrel_primitives::{Block, MacroBlock, codec};
use petrel_protocol::*;
use petrel_sync_api::MacroSyncReturn;
use petrel_test_utils::{TestChain, serve, test_producer};

#[tokio::test(start_paused = true)]
async fn a_lying_first_peer_is_caught_and_banned() {
    lying_first_peer(None, false, false).await;
}

/// The liar goes silent once the node falls back, so light sync never sees its blocks: it is
/// banned because verification found another election block where it had served one.
#[tokio::test(start_paused = true)]
async fn a_liar_that_falls_silent_is_banned_by_what_verification_found() {
    lying_first_peer(None, true, false).await;
}

/// The liar's election block claims to be far in the future: honest peers are then "behind" the
/// node, which must still treat them as conflicting (the trusted block is unverified).
#[tokio::test(start_paused = true)]
async fn a_lie_from_the_future_is_caught_too() {
    lying_first_peer(Some(8 * 50), false, false).await;
}

/// A silent liar whose election block claims the next epoch, above everything verification can
/// reach: nothing can be said until the chain gets there. The question stays open, and live sync
/// settles it when it pushes the real election block at that height: the liar is banned then.
#[tokio::test(start_paused = true)]
async fn a_silent_lie_above_the_verified_chain_is_settled_when_the_chain_reaches_it() {
    lying_first_peer(Some(8 * 3), true, true).await;
}

/// `grow_to_claim`: once established, the honest chain grows to the claimed height and announces
/// its blocks.
async fn lying_first_peer(claimed_number: Option<u32>, silent_after_fallback: bool, grow_to_claim: bool) {
    let mut honest = TestChain::build(1, 8 * 2 + 4);
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
    let liar = lying_server(&hub, fake_head, forged, !silent_after_fallback);

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
    if grow_to_claim {
        let claimed = claimed_number.expect("a claimed height to grow to");
        assert_eq!(chain.lock().unwrap().doubted().map(|(n, _, verdict)| (n, verdict)), Some((claimed, None)));
        assert!(!node.is_banned(&liar.peer_id()), "nothing proves the lie yet");
        for block in honest.extend(claimed as usize - honest.blocks.len()) {
            good.publish::<BlockHeaders>(&block.without_body()).await.unwrap();
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
    if silent_after_fallback {
        // Light sync never saw its blocks: the ban is the verdict on the trusted block, not the
        // sum of its silences.
        assert_eq!(node.ban_reason(&liar.peer_id()), Some(PenaltyReason::ConflictingChain.as_str()));
    }
    assert!(
        honest_peers.iter().all(|p| node.score(p) == 0),
        "honest peers that contradicted the lie cost nothing: {:?}",
        honest_peers.iter().map(|p| node.score(p)).collect::<Vec<_>>()
    );
}

/// The other way round: pico takes an honest election block on trust, and a liar answers with
/// another block at that height. That conflict forces the fallback (verification must tell), and
/// when verification reaches the height with the trusted block, the liar pays for it; the honest
/// source does not.
#[tokio::test(start_paused = true)]
async fn a_peer_that_contradicts_a_trusted_block_that_proves_right_is_banned() {
    let honest = TestChain::build(1, 8 * 2 + 4);
    let Block::Macro(mut forged) = honest.blocks[15].clone() else { panic!("16 is an election block") };
    forged.header.timestamp += 1;
    let forged_hash = forged.hash();
    // At our head's height (not behind us), with its own election block 16.
    let liar_head = ResponseHead {
        block_number: 8 * 2 + 4,
        block_hash: forged_hash,
        macro_hash: forged_hash,
        election_hash: forged_hash,
    };

    let mut t = Trusting::new(&honest, 5).await;
    let (node, chain, good) = (t.node.clone(), t.chain.clone(), t.good.peer_id());
    let trusted = chain.lock().unwrap().election_head().hash();
    assert_eq!(trusted, honest.blocks[15].hash());

    // The liar serves another block at that height (and nothing else).
    let liar = lying_server(&t.hub, liar_head, forged, false);
    t.hub.connect(node.peer_id(), liar.peer_id()).unwrap();
    let seen = t.until_fallen_back_and_banned(liar.peer_id()).await;
    assert!(seen.contains(&ConsensusEvent::Verdict(MacroSyncReturn::Conflicting(liar.peer_id()))), "{seen:?}");
    assert_eq!(
        chain.lock().unwrap().doubted(),
        Some((16, trusted, Some(true))),
        "verification found the trusted block"
    );
    let target = honest.chain.read().unwrap().head().macro_hash;
    t.until("the honest head", |_| chain.lock().unwrap().macro_head().hash() == target).await;
    assert_eq!(node.ban_reason(&liar.peer_id()), Some(PenaltyReason::ConflictingChain.as_str()), "banned for the lie");
    assert!(!node.is_banned(&good) && node.score(&good) == 0, "the honest source pays nothing");
}

/// A pico node that took an honest election block on trust from the one peer it had.
struct Trusting {
    hub: MockHub,
    node: MockNetwork,
    chain: std::sync::Arc<std::sync::Mutex<petrel_blockchain::LightBlockchain>>,
    syncer: common::PicoSyncer,
    good: MockNetwork,
}

impl Trusting {
    async fn new(honest: &TestChain, seed: u64) -> Self {
        let hub = MockHub::new(HubConfig { seed, latency: Duration::from_millis(30), ..Default::default() });
        let node = hub.node(Services::NONE);
        let chain = honest.light_chain();
        let mut syncer = common::pico_syncer(&node, &chain, &honest.genesis.policy, 1);
        let good = serve(&hub, honest, Services::HISTORY_NODE);
        hub.connect(node.peer_id(), good.peer_id()).unwrap();
        let good_verdict = ConsensusEvent::Verdict(MacroSyncReturn::Good(good.peer_id()));
        while tokio::time::timeout(Duration::from_secs(300), syncer.next()).await.unwrap().unwrap() != good_verdict {}
        assert!(chain.lock().unwrap().is_optimistic(), "adopted on trust");
        Trusting { hub, node, chain, syncer, good }
    }

    /// Drives the syncer until it fell back and `peer` is banned; the events seen.
    async fn until_fallen_back_and_banned(&mut self, peer: PeerId) -> Vec<ConsensusEvent> {
        let node = self.node.clone();
        self.until("a fallback and a ban", |seen| seen.contains(&ConsensusEvent::FellBack) && node.is_banned(&peer))
            .await
    }

    /// Drives the syncer (in virtual time) until `done(events seen)`; the events seen.
    async fn until(&mut self, what: &str, mut done: impl FnMut(&[ConsensusEvent]) -> bool) -> Vec<ConsensusEvent> {
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
        while !done(&seen) {
            assert!(tokio::time::Instant::now() < deadline, "never reached {what}: {seen:?}");
            if let Ok(Some(e)) = tokio::time::timeout(Duration::from_secs(1), self.syncer.next()).await {
                seen.push(e);
            }
        }
        seen
    }
}

/// A scripted peer that announces `head`, serves `forged` (and only it) by hash, and, if
/// `macro_chain`, a macro chain made of it; silent to everything else.
fn lying_server(hub: &MockHub, head: ResponseHead, forged: MacroBlock, macro_chain: bool) -> ScriptedPeer {
    let forged_hash = forged.hash();
    hub.scripted_node(Services::HISTORY_NODE, move |_, type_id, payload| match type_id {
        RequestHead::TYPE_ID => ScriptedReply::ok::<RequestHead>(&head),
        RequestBlock::TYPE_ID => {
            let req: RequestBlock = codec::decode(&payload, 1024).unwrap();
            let answer = if req.hash == forged_hash {
                Ok(Block::Macro(MacroBlock { body: None, ..forged.clone() }))
            } else {
                Err(BlockRequestError::TargetHashNotFound)
            };
            ScriptedReply::ok::<RequestBlock>(&answer)
        }
        RequestMacroChain::TYPE_ID if macro_chain => {
            ScriptedReply::ok::<RequestMacroChain>(&Ok(MacroChain { epochs: vec![forged_hash], checkpoint: None }))
        }
        _ => ScriptedReply::Silence,
    })
}

/// Doubt is judged too: a sybil that claims to stand behind our trusted election block, on an
/// election block of its own, helps force the fallback; verification then adopts the real
/// election block at the height it claimed, and the sybil is banned. An honest peer that is
/// really behind (on the real election block) costs nothing, and neither does the trusted source.
#[tokio::test(start_paused = true)]
async fn a_doubter_whose_claimed_election_block_is_not_on_the_verified_chain_is_banned() {
    let honest = TestChain::build(1, 8 * 2 + 4);
    let behind = TestChain::build(1, 8 + 4);
    assert_eq!(behind.blocks[7].hash(), honest.blocks[7].hash(), "the same chain, shorter");
    let mut t = Trusting::new(&honest, 9).await;
    let (hub, node, chain, good) = (t.hub.clone(), t.node.clone(), t.chain.clone(), t.good.peer_id());

    // A sybil "behind us" at block 10, on a made-up election block 8; an honest peer behind at 12.
    let fake = petrel_primitives::Blake2bHash::digest(b"made-up election block 8");
    let head = ResponseHead { block_number: 10, block_hash: fake, macro_hash: fake, election_hash: fake };
    let sybil = hub.scripted_node(Services::HISTORY_NODE, move |_, type_id, _| match type_id {
        RequestHead::TYPE_ID => ScriptedReply::ok::<RequestHead>(&head),
        _ => ScriptedReply::Silence,
    });
    let slow = serve(&hub, &behind, Services::HISTORY_NODE);
    hub.connect(node.peer_id(), sybil.peer_id()).unwrap();
    hub.connect(node.peer_id(), slow.peer_id()).unwrap();
    t.until_fallen_back_and_banned(sybil.peer_id()).await;
    assert_eq!(node.ban_reason(&sybil.peer_id()), Some(PenaltyReason::ConflictingChain.as_str()), "banned for the lie");
    // Judged at election block 8: verification goes on to the honest head.
    let target = honest.chain.read().unwrap().head().macro_hash;
    t.until("the honest head", |_| chain.lock().unwrap().macro_head().hash() == target).await;
    for honest_peer in [good, slow.peer_id()] {
        assert!(!node.is_banned(&honest_peer) && node.score(&honest_peer) == 0, "{honest_peer} pays nothing");
    }
}
