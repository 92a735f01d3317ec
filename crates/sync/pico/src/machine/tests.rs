//! Act → expect tables for the pico rules: inputs in, actions checked, no runtime, no network, no
//! store (job outcomes are scripted).

use petrel_network_api::{DisconnectReason, Penalty, RequestError, Severity};
use petrel_primitives::Policy;
use petrel_protocol::AnyRequest;
use petrel_sync_api::machine::RequestId;
use petrel_sync_api::testing::{Harness, light_view, macro_block, only_request, requests};

use super::*;

fn p(i: u64) -> PeerId {
    PeerId::from_index(i)
}

fn block(number: u32, salt: u8) -> MacroBlock {
    macro_block(number, salt)
}

fn view(election: &MacroBlock, macro_block: &MacroBlock, optimistic: bool) -> LightView {
    light_view(election, macro_block, optimistic)
}

fn head_of(number: u32, election: &MacroBlock, macro_block: &MacroBlock) -> ResponseHead {
    ResponseHead {
        block_number: number,
        block_hash: macro_block.hash(),
        macro_hash: macro_block.hash(),
        election_hash: election.hash(),
    }
}

type H = Harness<PicoMachine>;

trait Join {
    fn join_peer(&mut self, peer: PeerId) -> Vec<Action<PicoWork>>;
    /// `peer` joins, announces `e` as its head and serves it: the job that applies it.
    fn apply_job(&mut self, peer: PeerId, e: &MacroBlock) -> JobId;
}

impl Join for H {
    fn join_peer(&mut self, peer: PeerId) -> Vec<Action<PicoWork>> {
        self.join(peer, Services::MACRO_CHAIN)
    }
    fn apply_job(&mut self, peer: PeerId, e: &MacroBlock) -> JobId {
        let id = only_request(&self.join_peer(peer));
        let id = only_request(&self.respond(id, Ok(AnyResponse::Head(head_of(e.block_number(), e, e)))));
        let a = self.respond(id, Ok(AnyResponse::Block(Ok(Block::Macro(e.clone())))));
        let [Action::Apply { job, .. }] = a[..] else { panic!("{a:?}") };
        job
    }
}

fn request_ids(actions: &[Action<PicoWork>]) -> Vec<(RequestId, AnyRequest)> {
    requests(actions).into_iter().map(|(id, _, r)| (id, r)).collect()
}

fn genesis() -> MacroBlock {
    block(0, 0)
}

#[test]
fn a_peer_without_the_services_is_incompatible() {
    let g = genesis();
    let mut h = H::new(PicoConfig::default(), view(&g, &g, false));
    let a = h.input(Input::PeerJoined { peer: p(1), services: Some(Services::NONE) });
    assert_eq!(a, vec![Action::Emit(MacroSyncReturn::Incompatible(p(1)))]);
    let a = h.input(Input::PeerJoined { peer: p(2), services: None });
    assert_eq!(a, vec![Action::Emit(MacroSyncReturn::Incompatible(p(2)))]);
}

#[test]
fn same_hashes_are_good_and_a_peer_behind_us_is_outdated() {
    let g = genesis();
    let e = block(Policy::TEST.election_block_of(2), 1);
    let mut h = H::new(PicoConfig::default(), view(&e, &e, false));
    let id = only_request(&h.join_peer(p(1)));
    assert_eq!(
        h.respond(id, Ok(AnyResponse::Head(head_of(e.block_number(), &e, &e)))),
        vec![Action::Emit(MacroSyncReturn::Good(p(1)))]
    );
    let id = only_request(&h.join_peer(p(2)));
    assert_eq!(
        h.respond(id, Ok(AnyResponse::Head(head_of(0, &g, &g)))),
        vec![Action::Emit(MacroSyncReturn::Outdated(p(2)))]
    );
    assert_eq!(h.machine.num_peers(), 0);
}

#[test]
fn a_newer_head_fetches_election_block_and_checkpoint_then_applies_them_in_one_job() {
    let g = genesis();
    let e = block(Policy::TEST.election_block_of(3), 1);
    let c = block(Policy::TEST.election_block_of(3) + Policy::TEST.blocks_per_batch, 2);
    let mut h = H::new(PicoConfig::default(), view(&g, &g, false));
    let id = only_request(&h.join_peer(p(1)));
    let a = h.respond(id, Ok(AnyResponse::Head(head_of(c.block_number() + 3, &e, &c))));
    let r = request_ids(&a);
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].1, AnyRequest::Block(RequestBlock { hash: e.hash(), include_body: false }));
    assert_eq!(r[1].1, AnyRequest::Block(RequestBlock { hash: c.hash(), include_body: false }));
    // The checkpoint arrives first: nothing to do until both are in.
    assert!(h.respond(r[1].0, Ok(AnyResponse::Block(Ok(Block::Macro(c.clone()))))).is_empty());
    let a = h.respond(r[0].0, Ok(AnyResponse::Block(Ok(Block::Macro(e.clone())))));
    let [Action::Apply { job, work }] = &a[..] else { panic!("one job: {a:?}") };
    assert_eq!(work.blocks, vec![e.clone(), c.clone()], "election block first");
    // Applied on trust: the head is asked again (round 1), and the source is remembered.
    let a = h.input(Input::Applied {
        job: *job,
        outcome: PicoOutcome::Applied { optimistic: true, verified: 1, proven: None },
    });
    assert!(matches!(request_ids(&a)[..], [(_, AnyRequest::Head(_))]));
    assert_eq!(h.machine.optimistic_source(), Some(p(1)));
    assert_eq!(
        h.machine.stats(),
        PicoStats {
            head_requests: 2,
            block_requests: 2,
            optimistic_adoptions: 1,
            verified_blocks: 1,
            ..PicoStats::default()
        }
    );
}

#[test]
fn job_outcomes_map_to_verdicts() {
    let g = genesis();
    let e = block(Policy::TEST.election_block_of(3), 1);
    let cases = [
        (PicoOutcome::Conflicting("bad".into()), MacroSyncReturn::Conflicting(p(1))),
        (PicoOutcome::Behind, MacroSyncReturn::Outdated(p(1))),
        // Our store failing is not the peer's fault.
        (PicoOutcome::StoreFailed("disk".into()), MacroSyncReturn::Outdated(p(1))),
    ];
    for (outcome, verdict) in cases {
        let mut h = H::new(PicoConfig::default(), view(&g, &g, false));
        let job = h.apply_job(p(1), &e);
        assert_eq!(h.input(Input::Applied { job, outcome }), vec![Action::Emit(verdict)]);
    }
}

#[test]
fn a_wrong_or_missing_block_bans_the_peer() {
    let g = genesis();
    let e = block(Policy::TEST.election_block_of(3), 1);
    let other = block(Policy::TEST.election_block_of(3), 9);
    let banned = |reason| {
        vec![
            Action::Penalize { peer: p(1), penalty: Penalty::new(Severity::Malicious, reason) },
            Action::Disconnect { peer: p(1), reason: DisconnectReason::Malicious },
        ]
    };
    for (answer, reason) in [
        (Ok(Block::Macro(other.clone())), PenaltyReason::WrongAnswer),
        (Err(petrel_protocol::BlockRequestError::TargetHashNotFound), PenaltyReason::MissingAnnounced),
    ] {
        let mut h = H::new(PicoConfig::default(), view(&g, &g, false));
        let id = only_request(&h.join_peer(p(1)));
        let id = only_request(&h.respond(id, Ok(AnyResponse::Head(head_of(e.block_number(), &e, &e)))));
        assert_eq!(h.respond(id, Ok(AnyResponse::Block(answer))), banned(reason));
        assert_eq!(h.machine.num_peers(), 0);
    }
}

#[test]
fn a_peer_that_keeps_moving_is_good_after_max_rounds() {
    let g = genesis();
    let mut h = H::new(PicoConfig { max_rounds: 0, ..PicoConfig::default() }, view(&g, &g, false));
    let e = block(Policy::TEST.election_block_of(3), 1);
    let id = only_request(&h.join_peer(p(1)));
    assert_eq!(
        h.respond(id, Ok(AnyResponse::Head(head_of(e.block_number(), &e, &e)))),
        vec![Action::Emit(MacroSyncReturn::Good(p(1)))]
    );
}

#[test]
fn two_doubters_of_a_trusted_election_block_make_it_conflicting() {
    // Our chain rests on an election block from p(1), taken on trust.
    let trusted = block(Policy::TEST.election_block_of(9), 1);
    let honest = block(Policy::TEST.election_block_of(2), 2);
    let mut h = H::new(PicoConfig::default(), view(&trusted, &trusted, true));
    // The source itself being behind is no evidence.
    h.machine.optimistic_source = Some(p(1));
    let behind = head_of(honest.block_number(), &honest, &honest);
    let id = only_request(&h.join_peer(p(1)));
    assert_eq!(h.respond(id, Ok(AnyResponse::Head(behind))), vec![Action::Emit(MacroSyncReturn::Outdated(p(1)))]);
    let id = only_request(&h.join_peer(p(2)));
    assert_eq!(h.respond(id, Ok(AnyResponse::Head(behind))), vec![Action::Emit(MacroSyncReturn::Outdated(p(2)))]);
    let id = only_request(&h.join_peer(p(3)));
    assert_eq!(h.respond(id, Ok(AnyResponse::Head(behind))), vec![Action::Emit(MacroSyncReturn::Conflicting(p(3)))]);
    // What each doubter claimed is kept for the fallback to judge (the election block of its
    // head), also after the peers are drained.
    h.machine.drain_peers();
    let claim = |peer| Claim { peer, number: honest.block_number(), hash: honest.hash() };
    assert_eq!(h.machine.claims(), &[claim(p(2)), claim(p(3))]);
}

#[test]
fn a_lagging_peer_is_no_doubter_when_our_chain_is_verified() {
    let ours = block(Policy::TEST.election_block_of(9), 1);
    let old = block(Policy::TEST.election_block_of(2), 2);
    let mut h = H::new(PicoConfig { doubters_for_conflict: 1, ..PicoConfig::default() }, view(&ours, &ours, false));
    let id = only_request(&h.join_peer(p(2)));
    assert_eq!(
        h.respond(id, Ok(AnyResponse::Head(head_of(old.block_number(), &old, &old)))),
        vec![Action::Emit(MacroSyncReturn::Outdated(p(2)))]
    );
}

#[test]
fn request_failures_follow_the_shared_rule() {
    let g = genesis();
    let mut h = H::new(PicoConfig::default(), view(&g, &g, false));
    let id = only_request(&h.join_peer(p(1)));
    assert_eq!(h.respond(id, Err(RequestError::Busy)), vec![Action::Emit(MacroSyncReturn::Outdated(p(1)))]);
    let id = only_request(&h.join_peer(p(2)));
    assert_eq!(
        h.respond(id, Err(RequestError::Timeout)),
        vec![
            Action::Penalize { peer: p(2), penalty: Penalty::new(Severity::Minor, PenaltyReason::Unresponsive) },
            Action::Emit(MacroSyncReturn::Outdated(p(2))),
        ]
    );
}

#[test]
fn answers_after_a_peer_left_are_ignored_but_a_finished_job_still_counts() {
    let g = genesis();
    let e = block(Policy::TEST.election_block_of(3), 1);
    let mut h = H::new(PicoConfig::default(), view(&g, &g, false));
    let id = only_request(&h.join_peer(p(1)));
    let id = only_request(&h.respond(id, Ok(AnyResponse::Head(head_of(e.block_number(), &e, &e)))));
    let a = h.respond(id, Ok(AnyResponse::Block(Ok(Block::Macro(e.clone())))));
    let [Action::Apply { job, .. }] = a[..] else { panic!("{a:?}") };
    assert!(h.input(Input::PeerLeft { peer: p(1) }).is_empty());
    // The job adopted the block: the source is remembered, but nothing is asked of a gone peer.
    assert!(
        h.input(Input::Applied { job, outcome: PicoOutcome::Applied { optimistic: true, verified: 0, proven: None } })
            .is_empty()
    );
    assert_eq!(h.machine.optimistic_source(), Some(p(1)));
    // A late answer to an old request is dropped.
    assert!(h.respond(id, Ok(AnyResponse::Head(head_of(0, &g, &g)))).is_empty());
}

#[test]
fn a_job_of_a_peer_that_left_and_came_back_does_not_count_for_its_new_round() {
    let g = genesis();
    let e = block(Policy::TEST.election_block_of(3), 1);
    let mut h = H::new(PicoConfig::default(), view(&g, &g, false));
    let old = h.apply_job(p(1), &e);
    h.input(Input::PeerLeft { peer: p(1) });
    let new = h.apply_job(p(1), &e);
    // The old job's "conflicting" is not the new round's.
    assert!(h.input(Input::Applied { job: old, outcome: PicoOutcome::Conflicting("old".into()) }).is_empty());
    let a = h.input(Input::Applied {
        job: new,
        outcome: PicoOutcome::Applied { optimistic: false, verified: 1, proven: None },
    });
    assert!(matches!(request_ids(&a)[..], [(_, AnyRequest::Head(_))]));
}

#[test]
fn blocks_fetched_before_a_reset_are_not_applied_after_it() {
    let server = petrel_test_utils::TestChain::build(1, 8 * 3 + 4);
    let light = server.light_chain();
    let election = match &server.blocks[Policy::TEST.election_block_of(3) as usize - 1] {
        Block::Macro(m) => m.clone(),
        Block::Micro(_) => panic!("an election height holds a macro block"),
    };
    let generation = lock(&light).generation();
    // The fallback resets the chain (a new generation) while pico's job waits its turn.
    lock(&light).reset().unwrap();
    let work = PicoWork { blocks: vec![election.clone()], generation, proofs: None };
    assert_eq!(apply_blocks(&mut lock(&light), work), PicoOutcome::Stale);
    assert!(lock(&light).at_anchor(), "nothing adopted on trust after the reset");
    let work = PicoWork { blocks: vec![election], generation: generation + 1, proofs: None };
    assert!(matches!(apply_blocks(&mut lock(&light), work), PicoOutcome::Applied { optimistic: true, .. }));
}

#[test]
fn a_block_contradicting_a_verified_chain_is_a_lie_one_contradicting_trust_a_conflict() {
    let server = petrel_test_utils::TestChain::build(1, 8 * 3 + 4);
    let at = |n: u32| match &server.blocks[n as usize - 1] {
        Block::Macro(m) => m.clone(),
        Block::Micro(_) => panic!("{n} is a macro block"),
    };
    let e1 = Policy::TEST.election_block_of(1);
    // Verified from genesis: election block 1 by signatures.
    let light = server.light_chain();
    let generation = lock(&light).generation();
    let work = PicoWork { blocks: vec![at(e1)], generation, proofs: None };
    assert!(matches!(apply_blocks(&mut lock(&light), work), PicoOutcome::Applied { optimistic: false, .. }));
    // Another block at that height: no verified chain has two, so the peer lies (banned, no
    // fallback).
    let mut forged = at(e1);
    forged.header.timestamp += 1;
    let work = PicoWork { blocks: vec![forged.clone()], generation, proofs: None };
    assert!(matches!(apply_blocks(&mut lock(&light), work), PicoOutcome::Lied(_)));
    let mut h = H::new(PicoConfig::default(), view(&at(e1), &at(e1), false));
    let job = h.apply_job(p(1), &forged);
    let a = h.input(Input::Applied { job, outcome: PicoOutcome::Lied("differs".into()) });
    assert_eq!(
        a,
        vec![
            Action::Penalize {
                peer: p(1),
                penalty: Penalty::new(Severity::Malicious, PenaltyReason::ConflictingChain)
            },
            Action::Disconnect { peer: p(1), reason: DisconnectReason::Malicious },
        ]
    );
    // On a chain taken on trust the same block contradicts it: verification must tell who lied.
    let light = server.light_chain();
    let e3 = Policy::TEST.election_block_of(3);
    let work = PicoWork { blocks: vec![at(e3)], generation, proofs: None };
    assert!(matches!(apply_blocks(&mut lock(&light), work), PicoOutcome::Applied { optimistic: true, .. }));
    let mut forged = at(e3);
    forged.header.timestamp += 1;
    let work = PicoWork { blocks: vec![forged.clone()], generation, proofs: None };
    assert!(matches!(apply_blocks(&mut lock(&light), work), PicoOutcome::Contradicts(_)));
    // The machine makes the peer Conflicting (no penalty yet) and remembers it, once, as a
    // contradictor for the fallback to charge if the trusted block proves right; a peer that is
    // merely ahead (Conflicting) is not remembered.
    let mut h = H::new(PicoConfig::default(), view(&at(e3), &at(e3), true));
    for _ in 0..2 {
        let job = h.apply_job(p(1), &forged);
        let a = h.input(Input::Applied { job, outcome: PicoOutcome::Contradicts("differs".into()) });
        assert_eq!(a, vec![Action::Emit(MacroSyncReturn::Conflicting(p(1)))]);
    }
    let job = h.apply_job(p(2), &forged);
    let a = h.input(Input::Applied { job, outcome: PicoOutcome::Conflicting("ahead".into()) });
    assert_eq!(a, vec![Action::Emit(MacroSyncReturn::Conflicting(p(2)))]);
    assert_eq!(h.machine.contradictors(), &[p(1)]);
}

// ---- proofs ----

fn zkp_config() -> PicoConfig {
    PicoConfig {
        zkp: Some(ZkpLightConfig {
            verifier: VerifierHandle(std::sync::Arc::new(petrel_zkp::testing::placeholder_verifier())),
            max_segments: 8,
            handoffs: 1,
        }),
        ..PicoConfig::default()
    }
}

/// Two round trips from genesis: the head, then the block and the proofs together; the job waits
/// for both; after it the peer is Good without another head request.
#[test]
fn blocks_and_proofs_are_asked_together_and_a_proven_adoption_needs_no_second_head() {
    let g = genesis();
    let e = block(Policy::TEST.election_block_of(3), 1);
    let mut h = H::new(zkp_config(), view(&g, &g, false));
    let id = only_request(&h.join(p(1), Services::HISTORY_NODE.union(Services::ZKP_PROOFS)));
    let a = h.respond(id, Ok(AnyResponse::Head(head_of(e.block_number(), &e, &e))));
    let r = request_ids(&a);
    assert_eq!(r.len(), 2, "{a:?}");
    assert_eq!(r[0].1, AnyRequest::Block(RequestBlock { hash: e.hash(), include_body: false }));
    assert_eq!(r[1].1, AnyRequest::Zkp(RequestZkp { from_epoch: 0, max_segments: 8 }));
    assert!(h.respond(r[0].0, Ok(AnyResponse::Block(Ok(Block::Macro(e.clone()))))).is_empty(), "waits for the proofs");
    let segment = ZkpSegment {
        start_epoch: 0,
        start_commitment: petrel_primitives::FieldElement::ZERO,
        end_epoch: 3,
        end_commitment: petrel_primitives::FieldElement::ZERO,
        end_hash: e.hash(),
        proof: [0; 192],
    };
    let a = h.respond(r[1].0, Ok(AnyResponse::Zkp(petrel_protocol::ZkpChain { segments: vec![segment] })));
    let [Action::Apply { job, work }] = &a[..] else { panic!("one job: {a:?}") };
    assert_eq!(work.blocks, vec![e.clone()]);
    assert_eq!(work.proofs.as_ref().map(|s| s.segments.len()), Some(1));
    assert_eq!(work.proofs.as_ref().map(|s| s.asked), Some(8), "judged against what was asked");
    let job = *job;
    h.view = view(&e, &e, false);
    let a = h.input(Input::Applied {
        job,
        outcome: PicoOutcome::Applied { optimistic: false, verified: 0, proven: Some(1) },
    });
    assert_eq!(a, vec![Action::Emit(MacroSyncReturn::Good(p(1)))]);
    let stats = h.machine.stats();
    assert_eq!((stats.head_requests, stats.proof_requests, stats.proven_adoptions), (1, 1, 1));
}

#[test]
fn a_proof_chain_short_of_the_offered_block_fetches_the_proven_block_first() {
    let g = genesis();
    let e = block(Policy::TEST.election_block_of(3), 1);
    let e1 = block(Policy::TEST.election_block_of(1), 1);
    let mut h = H::new(zkp_config(), view(&g, &g, false));
    let id = only_request(&h.join(p(1), Services::HISTORY_NODE.union(Services::ZKP_PROOFS)));
    let r = request_ids(&h.respond(id, Ok(AnyResponse::Head(head_of(e.block_number(), &e, &e)))));
    h.respond(r[0].0, Ok(AnyResponse::Block(Ok(Block::Macro(e.clone())))));
    let a = h.respond(r[1].0, Ok(AnyResponse::Zkp(petrel_protocol::ZkpChain { segments: vec![] })));
    let [Action::Apply { job, .. }] = &a[..] else { panic!("{a:?}") };
    let proven = Proven { epoch: 1, commitment: petrel_primitives::FieldElement::ONE, hash: e1.hash() };
    let segment = ZkpSegment {
        start_epoch: 0,
        start_commitment: petrel_primitives::FieldElement::ZERO,
        end_epoch: 1,
        end_commitment: petrel_primitives::FieldElement::ONE,
        end_hash: e1.hash(),
        proof: [0; 192],
    };
    let a = h.input(Input::Applied { job: *job, outcome: PicoOutcome::ProvenUpTo(proven, vec![segment]) });
    let r = request_ids(&a);
    assert_eq!(r.len(), 1, "{a:?}");
    assert_eq!(r[0].1, AnyRequest::Block(RequestBlock { hash: e1.hash(), include_body: false }));
    let a = h.respond(r[0].0, Ok(AnyResponse::Block(Ok(Block::Macro(e1.clone())))));
    let [Action::Apply { work, .. }] = &a[..] else { panic!("{a:?}") };
    assert_eq!(work.blocks, vec![e1]);
    assert_eq!(work.proofs.as_ref().map(|s| s.segments.clone()), Some(vec![segment]));
}

#[test]
fn bad_proofs_ban_the_peer_and_a_peer_without_proofs_is_not_asked() {
    let g = genesis();
    let e = block(Policy::TEST.election_block_of(3), 1);
    let mut h = H::new(zkp_config(), view(&g, &g, false));
    let id = only_request(&h.join(p(1), Services::HISTORY_NODE.union(Services::ZKP_PROOFS)));
    let r = request_ids(&h.respond(id, Ok(AnyResponse::Head(head_of(e.block_number(), &e, &e)))));
    h.respond(r[0].0, Ok(AnyResponse::Block(Ok(Block::Macro(e.clone())))));
    // A failed proof request counts as no proofs: the job runs with the block alone.
    let a = h.respond(r[1].0, Err(RequestError::Timeout));
    let [Action::Apply { job, work }] = &a[..] else { panic!("{a:?}") };
    assert!(work.proofs.is_none());
    let a = h.input(Input::Applied { job: *job, outcome: PicoOutcome::BadProofs("forged".into()) });
    assert_eq!(
        a,
        vec![
            Action::Penalize { peer: p(1), penalty: Penalty::new(Severity::Malicious, PenaltyReason::InvalidBlock) },
            Action::Disconnect { peer: p(1), reason: DisconnectReason::Malicious },
        ]
    );
    // No ZKP_PROOFS: the block alone.
    let id = only_request(&h.join(p(2), Services::HISTORY_NODE));
    let a = h.respond(id, Ok(AnyResponse::Head(head_of(e.block_number(), &e, &e))));
    assert_eq!(request_ids(&a).len(), 1);
}

/// `apply_blocks` with real proofs of a produced chain (4 validators under a policy of 4, so the
/// circuit stays small): adopted as proven, not on trust; a forged chain or proofs of another
/// block ban the peer with nothing adopted; proofs that end below the offered block leave trust on
/// first use.
#[test]
fn an_election_block_offered_with_proofs_is_adopted_only_as_proven() {
    use petrel_zkp::chain::{to_wire, witness_from_blocks};
    use petrel_zkp::circuit::Shape;
    use petrel_zkp::proof::{Verifier, prove, setup};
    let policy = Policy { max_validators: 4, ..Policy::TEST };
    let producer = petrel_test_utils::test_producer(5, 1);
    let genesis = producer.genesis(petrel_test_utils::TEST_NETWORK, 1_700_000_000_000, policy);
    let server = petrel_test_utils::TestChain::build_on(producer, genesis, 8 * 2 + 2);
    let election = |e: u32| match &server.blocks[policy.election_block_of(e) as usize - 1] {
        Block::Macro(m) => m.clone(),
        Block::Micro(_) => panic!("an election height holds a macro block"),
    };
    let g = server.genesis.genesis_block().unwrap();
    let shape = Shape::new(&policy, 2);
    let pk = setup(&shape, 1).unwrap();
    let verifier = VerifierHandle(std::sync::Arc::new(Verifier::new(&pk.vk)));
    let segment = |end: u32| {
        let blocks: Vec<_> = (1..=end).map(election).collect();
        let w = witness_from_blocks(&policy, 0, &g, &blocks).unwrap();
        to_wire(&w.segment, &prove(&pk, &shape, w.clone()).unwrap())
    };
    let (to_one, to_two) = (segment(1), segment(2));
    let served =
        |segments: Vec<ZkpSegment>, asked: usize| Some(ServedProofs { verifier: verifier.clone(), segments, asked });
    let run_asking = |block: MacroBlock, segments: Vec<ZkpSegment>, asked: usize| {
        let light = server.light_chain();
        let generation = lock(&light).generation();
        let outcome = apply_blocks(
            &mut lock(&light),
            PicoWork { blocks: vec![block], generation, proofs: served(segments, asked) },
        );
        let chain = lock(&light);
        (outcome, chain.proven_epoch(), chain.is_optimistic(), chain.at_anchor())
    };
    let run = |block: MacroBlock, segments: Vec<ZkpSegment>| run_asking(block, segments, 64);
    // Proven: adopted, not on trust.
    assert_eq!(
        run(election(2), vec![to_two]),
        (PicoOutcome::Applied { optimistic: false, verified: 0, proven: Some(1) }, Some(2), false, false)
    );
    // A forged proof, or proofs of epoch 2 offered with another block of that height: banned, nothing adopted.
    let mut forged = to_two;
    forged.end_hash = election(1).hash();
    assert!(matches!(run(election(2), vec![forged]), (PicoOutcome::BadProofs(_), None, false, true)));
    let mut other = election(2);
    other.header.timestamp += 1;
    assert!(matches!(run(other, vec![to_two]), (PicoOutcome::BadProofs(_), None, false, true)));
    // Proofs that end below the offered block: trust on first use, as without proofs.
    assert!(matches!(
        run(election(2), vec![to_one]),
        (PicoOutcome::Applied { optimistic: true, .. }, None, true, false)
    ));
    // Unless the chain is as long as we asked (one segment): more may follow, so what it proves is
    // progress, judged against what we asked, not against the protocol's maximum.
    let (outcome, ..) = run_asking(election(2), vec![to_one], 1);
    assert!(matches!(outcome, PicoOutcome::ProvenUpTo(p, _) if p.epoch == 1), "{outcome:?}");
    // Proofs that go on past the offered block's epoch (a segment to epoch 3, dropped unverified):
    // what they prove below it (epoch 1) is to be fetched and adopted first.
    let mut past = to_two;
    past.start_epoch = 1;
    past.end_epoch = 3;
    let (outcome, proven_epoch, optimistic, at_anchor) = run(election(2), vec![to_one, past]);
    let PicoOutcome::ProvenUpTo(p, segments) = outcome else { panic!("{outcome:?}") };
    assert_eq!((p.epoch, p.hash, segments), (1, election(1).hash(), vec![to_one]));
    assert_eq!((proven_epoch, optimistic, at_anchor), (None, false, true), "nothing adopted yet");
    // That block with those segments: adopted as proven; from there, the next chain may start.
    let light = server.light_chain();
    let generation = lock(&light).generation();
    let work = PicoWork { blocks: vec![election(1)], generation, proofs: served(vec![to_one], 64) };
    assert!(matches!(execute(&light, work), PicoOutcome::Applied { proven: Some(1), .. }));
    assert_eq!(lock(&light).proven_epoch(), Some(1));
    assert!(LightView::of_shared(&light).at_proven);
}

#[test]
fn a_job_that_adopts_on_trust_and_then_fails_still_names_its_peer_as_the_source() {
    let g = genesis();
    let e = block(Policy::TEST.election_block_of(3), 1);
    let mut h = H::new(PicoConfig::default(), view(&g, &g, false));
    let job = h.apply_job(p(1), &e);
    // The job took the election block on trust, then found the peer's next block behind it.
    h.view = view(&e, &e, true);
    h.input(Input::Applied { job, outcome: PicoOutcome::Behind });
    assert_eq!(h.machine.optimistic_source(), Some(p(1)));
}
