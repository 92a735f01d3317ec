//! Act → expect tables for the light rules: inputs in, actions checked, no runtime, no network, no
//! store (job outcomes are scripted).

use petrel_network_api::{DisconnectReason, Penalty, RequestError, Severity};
use petrel_primitives::Policy;
use petrel_protocol::AnyRequest;
use petrel_sync_api::testing::{Harness, light_view, macro_block, only_request, requests};

use super::*;

type H = Harness<LightMachine>;

fn p(i: u64) -> PeerId {
    PeerId::from_index(i)
}

fn genesis() -> MacroBlock {
    macro_block(0, 0)
}

/// The election blocks of epochs 1..=n of one chain (`salt` tells chains apart).
fn elections(n: u32, salt: u8) -> Vec<MacroBlock> {
    (1..=n).map(|e| macro_block(Policy::TEST.election_block_of(e), salt)).collect()
}

fn hashes(blocks: &[MacroBlock]) -> Vec<Blake2bHash> {
    blocks.iter().map(MacroBlock::hash).collect()
}

fn config(window: usize, per_peer: usize) -> LightConfig {
    let d = LightConfig::default();
    LightConfig { queue: QueueConfig { window, per_peer, ..d.queue }, ..d }
}

fn at_genesis(config: LightConfig) -> H {
    let g = genesis();
    H::new(config, light_view(&g, &g, false))
}

fn chain_answer(epochs: &[MacroBlock]) -> Result<AnyResponse, RequestError> {
    Ok(AnyResponse::MacroChain(Ok(MacroChain { epochs: hashes(epochs), checkpoint: None })))
}

fn block_answer(b: &MacroBlock) -> Result<AnyResponse, RequestError> {
    Ok(AnyResponse::Block(Ok(Block::Macro(b.clone()))))
}

/// (request id, peer, hash) of the block requests among `actions`.
fn block_requests(actions: &[Action<LightWork>]) -> Vec<(RequestId, PeerId, Blake2bHash)> {
    requests(actions)
        .into_iter()
        .filter_map(|(id, peer, r)| match r {
            AnyRequest::Block(b) => Some((id, peer, b.hash)),
            _ => None,
        })
        .collect()
}

fn macro_chain_requests(actions: &[Action<LightWork>]) -> Vec<PeerId> {
    requests(actions)
        .into_iter()
        .filter(|(_, _, r)| matches!(r, AnyRequest::MacroChain(_)))
        .map(|(_, p, _)| p)
        .collect()
}

fn banned(peer: PeerId, reason: PenaltyReason) -> Vec<Action<LightWork>> {
    vec![
        Action::Penalize { peer, penalty: Penalty::new(Severity::Malicious, reason) },
        Action::Disconnect { peer, reason: DisconnectReason::Malicious },
    ]
}

/// Joins `peer` and answers its discovery with `epochs`; returns the actions of the answer.
fn join_with(h: &mut H, peer: PeerId, epochs: &[MacroBlock]) -> Vec<Action<LightWork>> {
    let id = only_request(&h.join(peer, Services::HISTORY_NODE));
    h.respond(id, chain_answer(epochs))
}

#[test]
fn discovery_sends_our_locators_and_judges_the_answer() {
    let mut h = at_genesis(LightConfig::default());
    assert_eq!(h.join(p(9), Services::NONE), vec![Action::Emit(MacroSyncReturn::Incompatible(p(9)))]);
    let a = h.join(p(1), Services::HISTORY_NODE);
    let [(id, _, AnyRequest::MacroChain(r))] = &requests(&a)[..] else { panic!("{a:?}") };
    assert_eq!(r.locators, vec![genesis().hash()]);
    assert_eq!(r.max_epochs, MAX_EPOCHS);
    // Nothing new: Good.
    assert_eq!(h.respond(*id, chain_answer(&[])), vec![Action::Emit(MacroSyncReturn::Good(p(1)))]);
    // Does not know our locators: Outdated.
    let id = only_request(&h.join(p(2), Services::HISTORY_NODE));
    let a = h.respond(id, Ok(AnyResponse::MacroChain(Err(MacroChainError::UnknownLocators))));
    assert_eq!(a, vec![Action::Emit(MacroSyncReturn::Outdated(p(2)))]);
}

#[test]
fn absurd_answers_ban_the_peer() {
    // More epochs than asked.
    let mut h = at_genesis(LightConfig { max_epochs: 2, ..LightConfig::default() });
    assert_eq!(join_with(&mut h, p(1), &elections(3, 1)), banned(p(1), PenaltyReason::WrongAnswer));
    // A checkpoint at an election height, or in the wrong epoch.
    for number in [Policy::TEST.election_block_of(2), Policy::TEST.election_block_of(5) + 4] {
        let mut h = at_genesis(LightConfig::default());
        let id = only_request(&h.join(p(1), Services::HISTORY_NODE));
        let answer = MacroChain { epochs: hashes(&elections(1, 1)), checkpoint: Some((number, Blake2bHash([7; 32]))) };
        assert_eq!(h.respond(id, Ok(AnyResponse::MacroChain(Ok(answer)))), banned(p(1), PenaltyReason::WrongAnswer));
    }
}

#[test]
fn a_round_fetches_within_the_window_and_applies_in_order() {
    let chain = elections(5, 1);
    let mut h = at_genesis(config(3, 3));
    let a = join_with(&mut h, p(1), &chain);
    let r = block_requests(&a);
    assert_eq!(r.iter().map(|(_, _, hash)| *hash).collect::<Vec<_>>(), hashes(&chain[..3]), "window of 3");
    // Blocks 1 and 2 arrive before 0: held back.
    assert!(h.respond(r[2].0, block_answer(&chain[2])).is_empty());
    assert!(h.respond(r[1].0, block_answer(&chain[1])).is_empty());
    let a = h.respond(r[0].0, block_answer(&chain[0]));
    let [Action::Apply { job, work: LightWork::Push(blocks) }] = &a[..] else { panic!("{a:?}") };
    assert_eq!(blocks, &chain[..3], "released in order as one batch");
    // The window is full until the batch is verified.
    assert!(block_requests(&a).is_empty());
    let a = h.input(Input::Applied { job: *job, outcome: LightOutcome::Pushed { extended: 3, failure: None } });
    assert_eq!(block_requests(&a).iter().map(|(_, _, hash)| *hash).collect::<Vec<_>>(), hashes(&chain[3..]));
    assert_eq!(h.machine.stats().verified_blocks, 3);
}

#[test]
fn peers_listing_the_same_chain_share_the_fetching() {
    let chain = elections(6, 1);
    let mut h = at_genesis(config(6, 2));
    let a = join_with(&mut h, p(1), &chain);
    assert_eq!(block_requests(&a).len(), 2, "per-peer cap");
    // A second peer with the same list (and more) joins the round.
    let longer = elections(7, 1);
    let a = join_with(&mut h, p(2), &longer);
    let r = block_requests(&a);
    assert_eq!(r.len(), 2);
    assert!(r.iter().all(|(_, peer, _)| *peer == p(2)));
    assert_eq!(r.iter().map(|(_, _, hash)| *hash).collect::<Vec<_>>(), hashes(&chain[2..4]));
    // A peer on another chain waits for the round to end.
    assert!(join_with(&mut h, p(3), &elections(6, 2)).is_empty());
}

#[test]
fn a_failed_fetch_is_retried_on_another_peer_without_penalty() {
    let chain = elections(1, 1);
    let mut h = at_genesis(config(4, 4));
    let a = join_with(&mut h, p(1), &chain);
    let [(id, _, _)] = block_requests(&a)[..] else { panic!("{a:?}") };
    join_with(&mut h, p(2), &chain);
    let a = h.respond(id, Err(RequestError::Busy));
    assert_eq!(block_requests(&a).iter().map(|(_, peer, _)| *peer).collect::<Vec<_>>(), vec![p(2)]);
    assert!(!a.iter().any(|x| matches!(x, Action::Penalize { .. })));
}

#[test]
fn timeouts_retry_elsewhere_and_only_repeated_ones_cost_the_peer() {
    let chain = elections(1, 1);
    let mut h = at_genesis(config(4, 4));
    let timeout = LightConfig::default().queue.timeout;
    let a = join_with(&mut h, p(1), &chain);
    assert_eq!(block_requests(&a).len(), 1);
    assert_eq!(h.machine.next_wakeup(), Some(Time::ZERO + timeout));
    join_with(&mut h, p(2), &chain);
    // p(1) never answers: at the deadline the block goes to p(2), p(1) is not penalised.
    h.now = Time::ZERO + timeout;
    let a = h.input(Input::Tick);
    assert_eq!(block_requests(&a).iter().map(|(_, peer, _)| *peer).collect::<Vec<_>>(), vec![p(2)]);
    assert!(!a.iter().any(|x| matches!(x, Action::Penalize { .. })), "{a:?}");
    // With only a silent peer left, three timeouts in a row bench it: a minor penalty, Outdated.
    let mut h = at_genesis(config(4, 4));
    join_with(&mut h, p(1), &chain);
    let mut last = vec![];
    for k in 1..=3 {
        h.now = Time::ZERO + timeout * k;
        last = h.input(Input::Tick);
    }
    assert!(last.contains(&Action::Penalize {
        peer: p(1),
        penalty: Penalty::new(Severity::Minor, PenaltyReason::Unresponsive)
    }));
    assert!(last.contains(&Action::Emit(MacroSyncReturn::Outdated(p(1)))));
    assert_eq!(h.machine.num_peers(), 0);
}

#[test]
fn wrong_or_missing_blocks_ban_the_sender() {
    let chain = elections(2, 1);
    let mut h = at_genesis(config(4, 4));
    let a = join_with(&mut h, p(1), &chain);
    let r = block_requests(&a);
    assert_eq!(h.respond(r[0].0, block_answer(&chain[1])), banned(p(1), PenaltyReason::WrongAnswer));
    let mut h = at_genesis(config(4, 4));
    let a = join_with(&mut h, p(1), &chain);
    let r = block_requests(&a);
    let not_found = Ok(AnyResponse::Block(Err(BlockRequestError::TargetHashNotFound)));
    assert_eq!(h.respond(r[0].0, not_found), banned(p(1), PenaltyReason::MissingAnnounced));
}

#[test]
fn an_invalid_block_bans_its_sender_and_the_others_ask_again() {
    let chain = elections(2, 1);
    let mut h = at_genesis(config(2, 1));
    // p(1) fetches block 0; p(2) joins and fetches block 1.
    let a = join_with(&mut h, p(1), &chain);
    assert_eq!(block_requests(&join_with(&mut h, p(2), &chain)).len(), 1);
    let id0 = block_requests(&a)[0].0;
    let a = h.respond(id0, block_answer(&chain[0]));
    let [Action::Apply { job, .. }] = a[..] else { panic!("{a:?}") };
    let failure = Some((0, PushFailure::BadJustification("bad justification".into())));
    let a = h.input(Input::Applied { job, outcome: LightOutcome::Pushed { extended: 0, failure } });
    assert_eq!(a[..2], banned(p(1), PenaltyReason::InvalidBlock)[..]);
    assert_eq!(macro_chain_requests(&a), vec![p(2)], "the round ends; the other peer is asked again");
}

#[test]
fn our_store_failing_makes_peers_outdated_not_guilty() {
    let chain = elections(1, 1);
    let mut h = at_genesis(config(2, 2));
    let a = join_with(&mut h, p(1), &chain);
    let a = h.respond(block_requests(&a)[0].0, block_answer(&chain[0]));
    let [Action::Apply { job, .. }] = a[..] else { panic!("{a:?}") };
    let failure = Some((0, PushFailure::Store("disk full".into())));
    let a = h.input(Input::Applied { job, outcome: LightOutcome::Pushed { extended: 0, failure } });
    assert_eq!(a, vec![Action::Emit(MacroSyncReturn::Outdated(p(1)))]);
}

#[test]
fn a_finished_round_asks_its_peers_and_the_waiting_ones_again() {
    let chain = elections(1, 1);
    let mut h = at_genesis(config(2, 2));
    let a = join_with(&mut h, p(1), &chain);
    assert!(join_with(&mut h, p(3), &elections(2, 2)).is_empty(), "another chain waits");
    let a = h.respond(block_requests(&a)[0].0, block_answer(&chain[0]));
    let [Action::Apply { job, .. }] = a[..] else { panic!("{a:?}") };
    // The view moves on with the adopted block.
    h.view = light_view(&chain[0], &chain[0], false);
    let a = h.input(Input::Applied { job, outcome: LightOutcome::Pushed { extended: 1, failure: None } });
    let mut asked = macro_chain_requests(&a);
    asked.sort();
    assert_eq!(asked, vec![p(1), p(3)]);
    let [(_, _, AnyRequest::MacroChain(r)), ..] = &requests(&a)[..] else { panic!("{a:?}") };
    assert_eq!(r.locators, vec![chain[0].hash()], "from the new election head");
}

#[test]
fn an_answer_to_an_old_locator_is_asked_again() {
    let mut h = at_genesis(LightConfig::default());
    let id = only_request(&h.join(p(1), Services::HISTORY_NODE));
    let e = elections(1, 1);
    h.view = light_view(&e[0], &e[0], false);
    let a = h.respond(id, chain_answer(&elections(3, 1)));
    assert_eq!(macro_chain_requests(&a), vec![p(1)]);
}

#[test]
fn the_fallback_resets_the_chain_before_discovering() {
    let mut h = at_genesis(LightConfig { reset_first: true, ..LightConfig::default() });
    let [Action::Apply { job, work: LightWork::Reset }] = h.actions()[..] else { panic!("reset first") };
    assert!(h.join(p(1), Services::HISTORY_NODE).is_empty(), "waits for the reset");
    let a = h.input(Input::Applied { job, outcome: LightOutcome::Reset(Ok(())) });
    assert_eq!(macro_chain_requests(&a), vec![p(1)]);
}

#[test]
fn peers_leaving_mid_round_hand_their_fetches_to_the_others() {
    let chain = elections(2, 1);
    let mut h = at_genesis(config(4, 1));
    let a = join_with(&mut h, p(1), &chain);
    assert_eq!(block_requests(&a).len(), 1);
    let b = join_with(&mut h, p(2), &chain);
    assert_eq!(block_requests(&b).len(), 1);
    let a = h.input(Input::PeerLeft { peer: p(1) });
    assert!(a.is_empty(), "p(2) is at its cap: {a:?}");
    // p(2) delivers its block; p(1)'s is asked of p(2) next.
    let a = h.respond(block_requests(&b)[0].0, block_answer(&chain[1]));
    let r = block_requests(&a);
    assert_eq!(r.iter().map(|(_, peer, hash)| (*peer, *hash)).collect::<Vec<_>>(), vec![(p(2), chain[0].hash())]);
}

/// The election blocks of a real chain of `epochs` epochs, and its light chain at genesis.
fn real_elections(epochs: u32) -> (Vec<MacroBlock>, SharedLightChain) {
    let t = petrel_test_utils::TestChain::build(5, (8 * epochs) as usize);
    let blocks = (1..=epochs)
        .map(|e| match &t.blocks[Policy::TEST.election_block_of(e) as usize - 1] {
            Block::Macro(m) => MacroBlock { body: None, ..m.clone() },
            Block::Micro(_) => panic!("an election height holds a macro block"),
        })
        .collect();
    (blocks, t.light_chain())
}

#[test]
fn a_batch_is_verified_in_parallel_and_adopted_in_order_up_to_the_first_bad_block() {
    let (blocks, chain) = real_elections(6);
    assert_eq!(
        execute(&chain, LightWork::Push(blocks[..3].to_vec())),
        LightOutcome::Pushed { extended: 3, failure: None }
    );
    // Blocks 4..6 with the fifth's signatures taken from the sixth: 4 is adopted, 5 fails, 6 is
    // never adopted (its check against 5's validators does not count once 5 failed).
    let mut bad = blocks[3..].to_vec();
    bad[1].justification = bad[2].justification.clone();
    let LightOutcome::Pushed { extended, failure: Some((1, PushFailure::BadJustification(_))) } =
        execute(&chain, LightWork::Push(bad))
    else {
        panic!("the fifth block must fail")
    };
    assert_eq!(extended, 1);
    assert_eq!(lock(&chain).macro_head().hash(), blocks[3].hash());
    // Already adopted blocks in a batch are skipped, not verified again.
    assert_eq!(
        execute(&chain, LightWork::Push(blocks[2..].to_vec())),
        LightOutcome::Pushed { extended: 2, failure: None }
    );
    assert_eq!(lock(&chain).macro_head().hash(), blocks[5].hash());
}

#[test]
fn a_listed_hash_served_at_another_height_bans_whoever_listed_it() {
    // p(1) lists, as the next election block, the hash of a block that is really older.
    let mut h = at_genesis(config(4, 4));
    let old = macro_block(Policy::TEST.election_block_of(2), 1);
    let id = only_request(&h.join(p(1), Services::HISTORY_NODE));
    let listed = vec![old.hash()];
    let a = h.respond(id, Ok(AnyResponse::MacroChain(Ok(MacroChain { epochs: listed, checkpoint: None }))));
    let r = block_requests(&a);
    assert_eq!(h.respond(r[0].0, block_answer(&old)), banned(p(1), PenaltyReason::WrongAnswer));
}

#[test]
fn answers_to_fetches_of_an_ended_round_are_stale_and_ignored() {
    let chain = elections(3, 1);
    let mut h = at_genesis(config(4, 4));
    let a = join_with(&mut h, p(1), &chain);
    let r = block_requests(&a);
    // Block 0 arrives and fails its justification: p(1) is banned, the round ends...
    let (job, _) = match &h.respond(r[0].0, block_answer(&chain[0]))[..] {
        [Action::Apply { job, work }] => (*job, work),
        other => panic!("{other:?}"),
    };
    let failure = Some((0, PushFailure::BadJustification("bad".into())));
    h.input(Input::Applied { job, outcome: LightOutcome::Pushed { extended: 0, failure } });
    // ...and the fetches still in flight then fail: nothing happens (no penalty, no verdict).
    for (id, ..) in &r[1..] {
        assert!(h.respond(*id, Err(RequestError::Timeout)).is_empty());
    }
}

#[test]
fn a_checkpoint_whose_header_cannot_follow_ours_bans_the_peer_that_listed_it() {
    let chain = elections(1, 1);
    let checkpoint = macro_block(Policy::TEST.election_block_of(1) + 4, 1);
    let mut h = at_genesis(config(4, 1));
    let id = only_request(&h.join(p(1), Services::HISTORY_NODE));
    let answer =
        MacroChain { epochs: hashes(&chain), checkpoint: Some((checkpoint.block_number(), checkpoint.hash())) };
    let a = h.respond(id, Ok(AnyResponse::MacroChain(Ok(answer.clone()))));
    let first = block_requests(&a)[0].0;
    // p(2) lists the same election chain (and no checkpoint) and joins: it fetches the checkpoint.
    let id = only_request(&h.join(p(2), Services::HISTORY_NODE));
    let a = h.respond(id, chain_answer(&chain));
    let [(second, peer, hash)] = block_requests(&a)[..] else { panic!("{a:?}") };
    assert_eq!((peer, hash), (p(2), checkpoint.hash()));
    h.respond(second, block_answer(&checkpoint));
    let a = h.respond(first, block_answer(&chain[0]));
    let [Action::Apply { job, .. }] = a[..] else { panic!("{a:?}") };
    let failure = Some((1, PushFailure::Invalid("not a macro successor".into())));
    let a = h.input(Input::Applied { job, outcome: LightOutcome::Pushed { extended: 1, failure } });
    assert_eq!(a[..2], banned(p(1), PenaltyReason::InvalidBlock)[..], "the lister, not the fetcher");
    assert_eq!(macro_chain_requests(&a), vec![p(2)]);
}

#[test]
fn a_slow_block_that_blocks_verification_is_also_asked_of_another_peer() {
    let chain = elections(1, 1);
    let mut h = at_genesis(config(4, 4));
    let a = join_with(&mut h, p(1), &chain);
    let [(slow, _, _)] = block_requests(&a)[..] else { panic!("{a:?}") };
    assert!(block_requests(&join_with(&mut h, p(2), &chain)).is_empty(), "nothing else to fetch");
    let hedge_at = Time::ZERO + LightConfig::default().queue.hedge_after.unwrap();
    assert_eq!(h.machine.next_wakeup(), Some(hedge_at));
    h.now = hedge_at;
    let a = h.input(Input::Tick);
    let [(fast, peer, hash)] = block_requests(&a)[..] else { panic!("{a:?}") };
    assert_eq!((peer, hash), (p(2), chain[0].hash()));
    // p(2) answers first: verification starts; p(1)'s late answer is dropped, no penalty.
    let a = h.respond(fast, block_answer(&chain[0]));
    assert!(matches!(a[..], [Action::Apply { .. }]), "{a:?}");
    assert!(h.respond(slow, block_answer(&chain[0])).is_empty());
}

// ---- zero-knowledge light sync ----

fn zkp_config() -> LightConfig {
    LightConfig {
        zkp: Some(ZkpLightConfig {
            verifier: VerifierHandle(Arc::new(petrel_zkp::testing::placeholder_verifier())),
            max_segments: 8,
            handoffs: 1,
        }),
        ..LightConfig::default()
    }
}

fn with_proofs() -> Services {
    Services::HISTORY_NODE.union(Services::ZKP_PROOFS)
}

fn segment(start: u32, end: &MacroBlock) -> ZkpSegment {
    ZkpSegment {
        start_epoch: start,
        start_commitment: petrel_primitives::FieldElement::ZERO,
        end_epoch: Policy::TEST.epoch_at(end.block_number()),
        end_commitment: petrel_primitives::FieldElement::ONE,
        end_hash: end.hash(),
        proof: [0; 192],
    }
}

fn proven(end: &MacroBlock) -> Proven {
    Proven {
        epoch: Policy::TEST.epoch_at(end.block_number()),
        commitment: petrel_primitives::FieldElement::ONE,
        hash: end.hash(),
    }
}

/// `p(1)`, serving proofs, joins; its one-segment chain to `end` checks out: the request for the
/// proven block.
fn proven_block_request(h: &mut H, end: &MacroBlock) -> RequestId {
    let (id, _, _) = zkp_request(&h.join(p(1), with_proofs())).unwrap();
    let (job, _) = applied_job(&h.respond(id, zkp_answer(vec![segment(0, end)])));
    let a = h.input(Input::Applied {
        job,
        outcome: LightOutcome::ProofsChecked { result: Ok(Some((proven(end), 1))), micros: 1 },
    });
    let [(id, _, _)] = block_requests(&a)[..] else { panic!("{a:?}") };
    id
}

fn zkp_request(actions: &[Action<LightWork>]) -> Option<(RequestId, PeerId, u32)> {
    requests(actions).into_iter().find_map(|(id, peer, r)| match r {
        AnyRequest::Zkp(z) => Some((id, peer, z.from_epoch)),
        _ => None,
    })
}

fn zkp_answer(segments: Vec<ZkpSegment>) -> Result<AnyResponse, RequestError> {
    Ok(AnyResponse::Zkp(ZkpChain { segments }))
}

fn applied_job(actions: &[Action<LightWork>]) -> (JobId, &LightWork) {
    actions
        .iter()
        .find_map(|a| match a {
            Action::Apply { job, work } => Some((*job, work)),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no job in {actions:?}"))
}

/// The whole path: proofs asked of the peer that serves them (the others wait), checked by a
/// job, the proven block fetched and adopted, then signature sync from it with every peer.
#[test]
fn a_proof_chain_is_checked_and_its_block_adopted_before_signature_sync() {
    let chain = elections(6, 1);
    let mut h = at_genesis(zkp_config());
    let a = h.join(p(1), with_proofs());
    let (id, peer, from) = zkp_request(&a).expect("proofs asked");
    assert_eq!((peer, from), (p(1), 0));
    let a = h.join(p(2), Services::HISTORY_NODE);
    assert_eq!(macro_chain_requests(&a), vec![p(2)], "no proofs: signatures at once");
    let p2_discovery = only_request(&a);
    let a = h.respond(id, zkp_answer(vec![segment(0, &chain[3])]));
    let (job, work) = applied_job(&a);
    assert!(matches!(work, LightWork::CheckProofs(_, s) if s.len() == 1));
    let a = h.input(Input::Applied {
        job,
        outcome: LightOutcome::ProofsChecked { result: Ok(Some((proven(&chain[3]), 1))), micros: 900 },
    });
    let [(id, peer, hash)] = block_requests(&a)[..] else { panic!("{a:?}") };
    assert_eq!((peer, hash), (p(1), chain[3].hash()));
    let a = h.respond(id, block_answer(&chain[3]));
    let (job, work) = applied_job(&a);
    assert_eq!(*work, LightWork::AdoptProven(Box::new(chain[3].clone()), proven(&chain[3])));
    h.view = light_view(&chain[3], &chain[3], false);
    let a = h.input(Input::Applied { job, outcome: LightOutcome::Proven(Ok(())) });
    assert_eq!(macro_chain_requests(&a), vec![p(1)], "signatures from the proven block on");
    let [(_, _, AnyRequest::MacroChain(r)), ..] = &requests(&a)[..] else { panic!("{a:?}") };
    assert_eq!(r.locators, vec![chain[3].hash()]);
    // p2's answer from genesis is stale now: it is asked again from the proven block.
    let a = h.respond(p2_discovery, chain_answer(&chain));
    let [(_, peer, AnyRequest::MacroChain(r))] = &requests(&a)[..] else { panic!("{a:?}") };
    assert_eq!((*peer, r.locators.clone()), (p(2), vec![chain[3].hash()]));
    let stats = h.machine.stats();
    assert_eq!((stats.proof_requests, stats.proofs_verified, stats.proof_verify_micros), (1, 1, 900));
    assert_eq!(stats.proven_epoch, Some(4));
    assert!(stats.proof_bytes > 192);
    // A peer that serves proofs joining later is not asked again: the proofs are done.
    assert_eq!(macro_chain_requests(&h.join(p(3), with_proofs())), vec![p(3)]);
}

/// A chain of as many segments as asked may go on: after adopting its end, the peers with proofs
/// are asked again from the proven block; a silent peer with proofs costs a minor penalty.
#[test]
fn a_full_proof_chain_is_followed_by_another_request_and_silence_costs() {
    let chain = elections(4, 1);
    let mut config = zkp_config();
    if let Some(z) = &mut config.zkp {
        z.max_segments = 1;
    }
    let mut h = at_genesis(config);
    let id = proven_block_request(&mut h, &chain[1]);
    let (job, _) = applied_job(&h.respond(id, block_answer(&chain[1])));
    h.view = light_view(&chain[1], &chain[1], false);
    h.view.at_proven = true;
    let a = h.input(Input::Applied { job, outcome: LightOutcome::Proven(Ok(())) });
    let (id, peer, from) = zkp_request(&a).expect("asked again from the proven block");
    assert_eq!((peer, from), (p(1), 2));
    // It stays silent this time: a minor penalty, then signatures.
    let a = h.respond(id, Err(RequestError::Timeout));
    assert!(a.contains(&Action::Penalize {
        peer: p(1),
        penalty: Penalty::new(Severity::Minor, PenaltyReason::Unresponsive)
    }));
    assert_eq!(macro_chain_requests(&a), vec![p(1)]);
}

/// Segments start every K epochs: from an election head elsewhere, no proofs are asked.
#[test]
fn no_proofs_are_asked_from_an_epoch_where_no_segment_starts() {
    let e = elections(3, 1);
    let mut config = zkp_config();
    if let Some(z) = &mut config.zkp {
        z.handoffs = 2;
    }
    let mut h = H::new(config, light_view(&e[2], &e[2], false));
    h.view.at_proven = true;
    assert_eq!(macro_chain_requests(&h.join(p(1), with_proofs())), vec![p(1)], "epoch 3 is not a multiple of 2");
}

#[test]
fn a_bad_proof_chain_bans_its_sender_and_the_next_peer_with_proofs_is_asked() {
    let chain = elections(4, 1);
    let mut h = at_genesis(zkp_config());
    let (id, _, _) = zkp_request(&h.join(p(1), with_proofs())).unwrap();
    assert!(h.join(p(2), with_proofs()).is_empty());
    let (job, _) = applied_job(&h.respond(id, zkp_answer(vec![segment(0, &chain[1])]))).to_owned();
    let a = h.input(Input::Applied {
        job,
        outcome: LightOutcome::ProofsChecked { result: Err(ProofFault::Bad("forged".into())), micros: 1 },
    });
    assert!(banned(p(1), PenaltyReason::InvalidBlock).iter().all(|b| a.contains(b)), "{a:?}");
    let (_, peer, _) = zkp_request(&a).expect("the next peer with proofs");
    assert_eq!(peer, p(2));
}

#[test]
fn peers_without_proofs_or_with_proofs_from_elsewhere_lead_to_signature_sync() {
    let chain = elections(4, 1);
    // No proofs stored: an empty chain, no penalty, discovery.
    let mut h = at_genesis(zkp_config());
    let (id, _, _) = zkp_request(&h.join(p(1), with_proofs())).unwrap();
    let a = h.respond(id, zkp_answer(vec![]));
    assert_eq!(macro_chain_requests(&a), vec![p(1)]);
    assert!(!a.iter().any(|x| matches!(x, Action::Penalize { .. })));
    // A chain that does not start at our election head (not a fault), or that proves nothing new.
    for outcome in [Err(ProofFault::NotOurs), Ok(None)] {
        let mut h = at_genesis(zkp_config());
        let (id, _, _) = zkp_request(&h.join(p(1), with_proofs())).unwrap();
        let (job, _) = applied_job(&h.respond(id, zkp_answer(vec![segment(0, &chain[1])])));
        let a = h.input(Input::Applied { job, outcome: LightOutcome::ProofsChecked { result: outcome, micros: 1 } });
        assert_eq!(macro_chain_requests(&a), vec![p(1)]);
        assert!(!a.iter().any(|x| matches!(x, Action::Penalize { .. })));
    }
    // A peer without proofs that comes first syncs by signatures; a peer with proofs that comes
    // later is still asked for them.
    let mut h = at_genesis(zkp_config());
    assert_eq!(macro_chain_requests(&h.join(p(1), Services::HISTORY_NODE)), vec![p(1)]);
    assert_eq!(zkp_request(&h.join(p(2), with_proofs())).map(|r| r.1), Some(p(2)));
    // Without zkp configured, a peer with proofs is never asked for them.
    let mut h = at_genesis(LightConfig::default());
    assert_eq!(macro_chain_requests(&h.join(p(1), with_proofs())), vec![p(1)]);
}

#[test]
fn a_proof_that_ends_at_a_block_the_peer_cannot_show_costs_it() {
    let chain = elections(4, 1);
    let mut h = at_genesis(zkp_config());
    let id = proven_block_request(&mut h, &chain[2]);
    let a = h.respond(id, Ok(AnyResponse::Block(Err(BlockRequestError::TargetHashNotFound))));
    assert!(banned(p(1), PenaltyReason::MissingAnnounced).iter().all(|b| a.contains(b)), "{a:?}");
    // Another block than proven: banned too.
    let mut h = at_genesis(zkp_config());
    let id = proven_block_request(&mut h, &chain[2]);
    let a = h.respond(id, block_answer(&chain[1]));
    assert!(banned(p(1), PenaltyReason::WrongAnswer).iter().all(|b| a.contains(b)), "{a:?}");
    // More segments than asked.
    let mut h = at_genesis(zkp_config());
    let (id, _, _) = zkp_request(&h.join(p(1), with_proofs())).unwrap();
    let a = h.respond(id, zkp_answer(vec![segment(0, &chain[0]); 9]));
    assert!(banned(p(1), PenaltyReason::WrongAnswer).iter().all(|b| a.contains(b)), "{a:?}");
}
