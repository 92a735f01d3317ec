//! Act → expect tables for live sync's rules: gossip, answers and scripted push outcomes in,
//! actions compared; no runtime, no network, no store.

use petrel_network_api::{Penalty, Services};
use petrel_primitives::MacroBlock;
use petrel_protocol::{AnyRequest, ResponseBlocks};
use petrel_sync_api::testing::{Harness, macro_block};

use super::*;
use crate::SharedLight;

type M = LiveMachine<SharedLight>;
type A = Action<LiveWork, LiveSyncEvent>;

fn p(i: u64) -> PeerId {
    PeerId::from_index(i)
}

/// Blocks 0..=n of one chain, each the parent of the next (`salt` tells chains apart).
fn chain(n: u32, salt: u8) -> Vec<Block> {
    let mut out: Vec<Block> = Vec::new();
    for number in 0..=n {
        let mut b: MacroBlock = macro_block(number, salt);
        if let Some(prev) = out.last() {
            b.header.parent_hash = prev.hash();
        }
        out.push(Block::Macro(b));
    }
    out
}

fn view_at(head: &Block) -> LiveView {
    let h = head.hash();
    LiveView {
        head: HeadInfo { block_number: head.block_number(), block_hash: h, macro_hash: h, election_hash: h },
        macro_number: 0,
        wants_bodies: false,
        known: false,
        same_copy: false,
        locators: vec![h],
    }
}

fn config() -> LiveConfig {
    LiveConfig {
        window_ahead_max: 8,
        tolerate_past_max: 4,
        buffer_max: 6,
        buffer_bytes_max: 1 << 20,
        max_missing_requests: 2,
        wanted_max: 8,
    }
}

struct H {
    h: Harness<M>,
    next_id: u64,
}

impl H {
    fn at(head: &Block) -> Self {
        let mut h = Harness::<M>::new(config(), view_at(head));
        for i in 1..=3 {
            assert!(h.join(p(i), Services::FULL_NODE).is_empty());
        }
        Self { h, next_id: 0 }
    }
    fn gossip(&mut self, block: &Block, source: PeerId) -> (GossipId, Vec<A>) {
        self.next_id += 1;
        let id = GossipId(self.next_id);
        (id, self.h.input(Input::Gossip(GossipMessage { item: block.clone(), source, id })))
    }
    fn applied(&mut self, job: JobId, results: Vec<Pushed>, new_head: &Block) -> Vec<A> {
        self.h.view = view_at(new_head);
        self.h.input(Input::Applied { job, outcome: results })
    }
}

fn job_of(actions: &[A]) -> (JobId, Vec<Block>) {
    actions
        .iter()
        .find_map(|a| match a {
            Action::Apply { job, work } => Some((*job, work.blocks.clone())),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no job in {actions:?}"))
}

fn missing_requests(actions: &[A]) -> Vec<(RequestId, PeerId, Blake2bHash)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Request { id, peer, request: AnyRequest::MissingBlocks(r) } => Some((*id, *peer, r.target_hash)),
            _ => None,
        })
        .collect()
}

#[test]
fn gossip_from_outside_live_sync_or_with_the_wrong_body_or_already_known() {
    let c = chain(3, 1);
    let mut h = H::at(&c[1]);
    let (id, a) = h.gossip(&c[2], p(9));
    assert_eq!(a, vec![Action::Validate { id, verdict: Verdict::Ignore }], "not a live peer");
    let mut with_body = c[2].clone();
    if let Block::Macro(m) = &mut with_body {
        m.body = Some(Default::default());
    }
    let (id, a) = h.gossip(&with_body, p(1));
    assert_eq!(a, vec![Action::Validate { id, verdict: Verdict::Reject }], "headers only");
    h.h.view.known = true;
    h.h.view.same_copy = true;
    let (id, a) = h.gossip(&c[1], p(1));
    assert_eq!(a, vec![Action::Validate { id, verdict: Verdict::Accept }], "known, exactly our copy");
    // The same hash with another justification or body: not relayed (nor blamed on its sender).
    h.h.view.same_copy = false;
    let (id, a) = h.gossip(&c[1], p(1));
    assert_eq!(a, vec![Action::Validate { id, verdict: Verdict::Ignore }], "an altered copy of a known block");
}

#[test]
fn a_block_on_our_head_is_pushed_and_judged_when_the_push_is_done() {
    let c = chain(3, 1);
    let mut h = H::at(&c[1]);
    let (id, a) = h.gossip(&c[2], p(1));
    let (job, blocks) = job_of(&a);
    assert_eq!(blocks, vec![c[2].clone()]);
    assert!(!a.iter().any(|x| matches!(x, Action::Validate { .. })), "judged after the push");
    assert_eq!(
        h.applied(job, vec![Pushed::Extended], &c[2]),
        vec![
            Action::Validate { id, verdict: Verdict::Accept },
            Action::Emit(LiveSyncEvent::AcceptedAnnouncedBlock(c[2].hash())),
        ]
    );
    // An invalid one is rejected; our store failing is nobody's fault.
    let (id, a) = h.gossip(&c[3], p(1));
    let (job, _) = job_of(&a);
    assert_eq!(
        h.applied(job, vec![Pushed::Invalid("bad".into())], &c[2]),
        vec![
            Action::Validate { id, verdict: Verdict::Reject },
            Action::Emit(LiveSyncEvent::RejectedBlock(c[3].hash())),
        ]
    );
    let (id, a) = h.gossip(&c[3], p(2));
    let (job, _) = job_of(&a);
    assert_eq!(
        h.applied(job, vec![Pushed::StoreFailed("disk".into())], &c[2]),
        vec![Action::Validate { id, verdict: Verdict::Ignore }]
    );
}

#[test]
fn blocks_arriving_during_a_push_extend_it_instead_of_looking_like_a_gap() {
    let c = chain(4, 1);
    let mut h = H::at(&c[1]);
    let (_, a) = h.gossip(&c[2], p(1));
    let (job, _) = job_of(&a);
    // Block 3 arrives while 2 is being pushed: queued behind it, no missing-blocks request.
    let (_, a) = h.gossip(&c[3], p(1));
    assert!(a.is_empty(), "{a:?}");
    let a = h.applied(job, vec![Pushed::Extended], &c[2]);
    let (_, blocks) = job_of(&a);
    assert_eq!(blocks, vec![c[3].clone()]);
    // If the first push fails, what was queued behind it is dropped (Ignore), not blamed.
    let mut h = H::at(&c[1]);
    let (_, a) = h.gossip(&c[2], p(1));
    let (job, _) = job_of(&a);
    let (id3, _) = h.gossip(&c[3], p(2));
    let a = h.applied(job, vec![Pushed::Invalid("bad".into())], &c[1]);
    assert!(a.contains(&Action::Validate { id: id3, verdict: Verdict::Ignore }));
    assert!(!a.iter().any(|x| matches!(x, Action::Apply { .. })));
}

#[test]
fn peers_far_behind_or_ahead_leave_live_sync() {
    let c = chain(30, 1);
    let mut h = H::at(&c[20]);
    let (id, a) = h.gossip(&c[10], p(1));
    assert_eq!(a, vec![Action::Emit(LiveSyncEvent::Behind(p(1))), Action::Validate { id, verdict: Verdict::Ignore }]);
    let (id, a) = h.gossip(&c[29], p(2));
    assert_eq!(a, vec![Action::Emit(LiveSyncEvent::Ahead(p(2))), Action::Validate { id, verdict: Verdict::Ignore }]);
    assert_eq!(h.h.machine.peers(), vec![p(3)]);
    // Within the tolerated past, at or below our head: ignored, the peer stays.
    let (id, a) = h.gossip(&c[18], p(3));
    assert_eq!(a, vec![Action::Validate { id, verdict: Verdict::Ignore }]);
}

#[test]
fn a_gap_is_buffered_and_fetched_from_the_announcer_then_the_buffer_is_applied() {
    let c = chain(6, 1);
    let mut h = H::at(&c[1]);
    let (id, a) = h.gossip(&c[4], p(2));
    let req = missing_requests(&a);
    assert_eq!(req.iter().map(|(_, peer, target)| (*peer, *target)).collect::<Vec<_>>(), vec![(p(2), c[3].hash())]);
    assert!(a.contains(&Action::Validate { id, verdict: Verdict::Ignore }));
    assert_eq!(h.h.machine.buffered(), 1);
    // The answer: blocks 2 and 3 (what the peer has after our locator, up to the target).
    let answer = Ok(AnyResponse::MissingBlocks(Ok(ResponseBlocks { blocks: c[2..=3].to_vec() })));
    let a = h.h.respond(req[0].0, answer);
    let (job, blocks) = job_of(&a);
    assert_eq!(blocks, c[2..=3].to_vec());
    let a = h.applied(job, vec![Pushed::Extended, Pushed::Extended], &c[3]);
    assert!(a.contains(&Action::Emit(LiveSyncEvent::ReceivedMissingBlocks(2))));
    // The buffered block 4 now extends the head.
    let (job, blocks) = job_of(&a);
    assert_eq!(blocks, vec![c[4].clone()]);
    assert_eq!(h.h.machine.buffered(), 0);
    let a = h.applied(job, vec![Pushed::Extended], &c[4]);
    assert_eq!(a, vec![Action::Emit(LiveSyncEvent::AcceptedBufferedBlock(c[4].hash()))]);
}

#[test]
fn the_buffer_is_bounded_in_all_and_per_announcer() {
    let c = chain(12, 1);
    let mut h = H::at(&c[1]);
    for b in &c[3..=9] {
        h.gossip(b, p(1));
    }
    assert_eq!(h.h.machine.buffered(), 6, "buffer_max");
    let mut h = H::at(&c[1]);
    let config = LiveConfig { buffer_max: 100, window_ahead_max: 3, ..config() };
    h.h.machine = M::new(config);
    for i in 1..=2 {
        h.h.join(p(i), Services::FULL_NODE);
    }
    for b in &c[3..=4] {
        h.gossip(b, p(1));
    }
    assert_eq!(h.h.machine.buffered(), 2);
    h.gossip(&c[5], p(1)); // Ahead of the 3-block window: p(1) leaves.
    h.gossip(&c[4], p(2));
    assert_eq!(h.h.machine.buffered(), 1, "p(1)'s blocks went with it; p(2) buffered its own");
}

#[test]
fn missing_blocks_that_do_not_link_or_do_not_reach_us_are_penalised() {
    let c = chain(6, 1);
    let other = chain(6, 2);
    let mut h = H::at(&c[1]);
    let (_, a) = h.gossip(&c[5], p(1));
    let id = missing_requests(&a)[0].0;
    // 2 then a block of another chain: the answer is cut there and the sender penalised.
    let answer = Ok(AnyResponse::MissingBlocks(Ok(ResponseBlocks { blocks: vec![c[2].clone(), other[3].clone()] })));
    let a = h.h.respond(id, answer);
    assert_eq!(
        a[0],
        Action::Penalize {
            peer: p(1),
            penalty: Penalty::new(Severity::InvalidData, PenaltyReason::DisconnectedBlocks)
        }
    );
    assert_eq!(job_of(&a).1, vec![c[2].clone()]);
    // An answer that does not start at our chain at all.
    let mut h = H::at(&c[1]);
    let (_, a) = h.gossip(&c[5], p(1));
    let id = missing_requests(&a)[0].0;
    let answer = Ok(AnyResponse::MissingBlocks(Ok(ResponseBlocks { blocks: other[3..=4].to_vec() })));
    let a = h.h.respond(id, answer);
    assert_eq!(
        a,
        vec![Action::Penalize {
            peer: p(1),
            penalty: Penalty::new(Severity::InvalidData, PenaltyReason::DisconnectedBlocks)
        }]
    );
}

#[test]
fn an_answer_that_advances_nothing_is_not_asked_again_one_that_does_continues() {
    let c = chain(8, 1);
    let mut h = H::at(&c[1]);
    let head =
        HeadInfo { block_number: 8, block_hash: c[8].hash(), macro_hash: c[8].hash(), election_hash: c[8].hash() };
    let a = h.h.input(Input::PeerHead { peer: p(3), head });
    let req = missing_requests(&a);
    assert_eq!(req.iter().map(|(_, peer, t)| (*peer, *t)).collect::<Vec<_>>(), vec![(p(3), c[8].hash())]);
    // A partial answer (one batch): pushed, then the rest is asked for.
    let answer = Ok(AnyResponse::MissingBlocks(Ok(ResponseBlocks { blocks: c[2..=4].to_vec() })));
    let (job, _) = job_of(&h.h.respond(req[0].0, answer));
    let a = h.applied(job, vec![Pushed::Extended; 3], &c[4]);
    let again = missing_requests(&a);
    assert_eq!(again.iter().map(|(_, peer, t)| (*peer, *t)).collect::<Vec<_>>(), vec![(p(3), c[8].hash())]);
    // An answer whose blocks we already had advances nothing: not asked again.
    let answer = Ok(AnyResponse::MissingBlocks(Ok(ResponseBlocks { blocks: c[5..=6].to_vec() })));
    let (job, _) = job_of(&h.h.respond(again[0].0, answer));
    let a = h.applied(job, vec![Pushed::Known, Pushed::Known], &c[6]);
    assert!(missing_requests(&a).is_empty(), "{a:?}");
}

#[test]
fn a_known_head_or_one_not_above_ours_fetches_nothing_and_requests_are_bounded() {
    let c = chain(8, 1);
    let info = |b: &Block| HeadInfo {
        block_number: b.block_number(),
        block_hash: b.hash(),
        macro_hash: b.hash(),
        election_hash: b.hash(),
    };
    let mut h = H::at(&c[4]);
    assert!(h.h.input(Input::PeerHead { peer: p(1), head: info(&c[3]) }).is_empty(), "below ours");
    h.h.view.known = true;
    assert!(h.h.input(Input::PeerHead { peer: p(1), head: info(&c[8]) }).is_empty(), "known");
    h.h.view.known = false;
    let other = chain(8, 2);
    let mut asked = 0;
    for (i, b) in [&c[8], &c[7], &other[8]].into_iter().enumerate() {
        asked += missing_requests(&h.h.input(Input::PeerHead { peer: p(1 + i as u64), head: info(b) })).len();
    }
    assert_eq!(asked, 2, "max_missing_requests");
}

#[test]
fn an_invalid_buffered_block_costs_its_announcer() {
    let c = chain(4, 1);
    let mut h = H::at(&c[1]);
    let (_, a) = h.gossip(&c[3], p(2));
    let id = missing_requests(&a)[0].0;
    let answer = Ok(AnyResponse::MissingBlocks(Ok(ResponseBlocks { blocks: vec![c[2].clone()] })));
    let (job, _) = job_of(&h.h.respond(id, answer));
    let a = h.applied(job, vec![Pushed::Extended], &c[2]);
    let (job, blocks) = job_of(&a);
    assert_eq!(blocks, vec![c[3].clone()]);
    let a = h.applied(job, vec![Pushed::Invalid("bad".into())], &c[2]);
    assert_eq!(
        a,
        vec![
            Action::Penalize {
                peer: p(2),
                penalty: Penalty::new(Severity::InvalidData, PenaltyReason::InvalidBufferedBlock)
            },
            Action::Emit(LiveSyncEvent::RejectedBlock(c[3].hash())),
        ]
    );
}

#[test]
fn a_block_on_our_tip_at_the_wrong_height_is_rejected_and_the_push_queue_is_bounded() {
    let c = chain(12, 1);
    let mut h = H::at(&c[1]);
    let mut wrong = c[2].clone();
    if let Block::Macro(m) = &mut wrong {
        m.header.block_number = 5;
    }
    let (id, a) = h.gossip(&wrong, p(1));
    assert_eq!(a, vec![Action::Validate { id, verdict: Verdict::Reject }]);
    // While block 2 is being pushed, at most `window_ahead_max` (8) more wait for the next push.
    let (_, a) = h.gossip(&c[2], p(1));
    job_of(&a);
    let mut ignored = 0;
    for b in &c[3..=11] {
        let (id, a) = h.gossip(b, p(1));
        ignored += usize::from(a == vec![Action::Validate { id, verdict: Verdict::Ignore }]);
    }
    assert_eq!(ignored, 1, "the ninth waiting block is not queued");
}

fn penalties(actions: &[A]) -> Vec<(PeerId, Penalty)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Penalize { peer, penalty } => Some((*peer, *penalty)),
            _ => None,
        })
        .collect()
}

#[test]
fn one_silent_junk_announcer_cannot_stop_an_honest_peer_filling_its_gap() {
    let c = chain(6, 1);
    // Headers whose parents no one can show (another chain's).
    let junk = chain(6, 9);
    let mut h = H::at(&c[1]);
    let mut asked = Vec::new();
    for b in &junk[3..=5] {
        asked.extend(missing_requests(&h.gossip(b, p(1)).1));
    }
    assert_eq!(asked.len(), 1, "one request in flight per peer: {asked:?}");
    // The honest peer's gap is asked at once: the junk announcer holds one slot, not all.
    let (_, a) = h.gossip(&c[4], p(2));
    let honest = missing_requests(&a);
    assert_eq!(honest.iter().map(|(_, peer, t)| (*peer, *t)).collect::<Vec<_>>(), vec![(p(2), c[3].hash())]);
    let answer = Ok(AnyResponse::MissingBlocks(Ok(ResponseBlocks { blocks: c[2..=3].to_vec() })));
    let (job, blocks) = job_of(&h.h.respond(honest[0].0, answer));
    assert_eq!(blocks, c[2..=3].to_vec());
    let a = h.applied(job, vec![Pushed::Extended; 2], &c[3]);
    assert_eq!(job_of(&a).1, vec![c[4].clone()], "the honest buffered block follows");
}

#[test]
fn silent_or_useless_gap_answers_cost_the_announcer_and_free_the_slot_for_others() {
    let c = chain(6, 1);
    let junk = chain(8, 9);
    let mut h = H::at(&c[1]);
    // Two junk announcers take both slots (gaps at heights 4 and 2).
    let mut junk_requests = Vec::new();
    for (peer, b) in [(p(1), &junk[5]), (p(3), &junk[3])] {
        junk_requests.extend(missing_requests(&h.gossip(b, peer).1));
    }
    assert_eq!(junk_requests.len(), 2);
    // The honest gap waits for a slot instead of being dropped.
    let (_, a) = h.gossip(&c[4], p(2));
    assert!(missing_requests(&a).is_empty());
    assert_eq!(h.h.machine.wanted(), 1);
    // The first junk announcer never answers: it costs it, its junk leaves the buffer, and the
    // honest gap is asked.
    let buffered = h.h.machine.buffered();
    let a = h.h.respond(junk_requests[0].0, Err(RequestError::Timeout));
    assert_eq!(penalties(&a), vec![(p(1), Penalty::new(Severity::Minor, PenaltyReason::Unresponsive))]);
    assert_eq!(h.h.machine.buffered(), buffered - 1);
    let honest = missing_requests(&a);
    assert_eq!(honest.iter().map(|(_, peer, t)| (*peer, *t)).collect::<Vec<_>>(), vec![(p(2), c[3].hash())]);
    let answer = Ok(AnyResponse::MissingBlocks(Ok(ResponseBlocks { blocks: c[2..=3].to_vec() })));
    let (job, _) = job_of(&h.h.respond(honest[0].0, answer));
    h.applied(job, vec![Pushed::Extended; 2], &c[3]);
    // An empty answer for a gap we closed meanwhile (height 2, our head is 3) is no fault.
    let empty = Ok(AnyResponse::MissingBlocks(Ok(ResponseBlocks { blocks: Vec::new() })));
    assert!(penalties(&h.h.respond(junk_requests[1].0, empty)).is_empty());
    // "Not found" for the parent of a block it announced above our head: useless, it costs.
    let req = missing_requests(&h.gossip(&junk[6], p(3)).1);
    assert_eq!(req.len(), 1);
    let not_found = Ok(AnyResponse::MissingBlocks(Err(petrel_protocol::MissingBlocksError::TargetHashNotFound)));
    let a = h.h.respond(req[0].0, not_found);
    assert_eq!(penalties(&a), vec![(p(3), Penalty::new(Severity::Minor, PenaltyReason::MissingAnnounced))]);
}

#[test]
fn a_full_buffer_makes_room_for_a_peer_holding_less_and_is_bounded_in_bytes() {
    let c = chain(6, 1);
    let junk = chain(12, 9);
    let mut h = H::at(&c[1]);
    for b in &junk[3..=9] {
        h.gossip(b, p(1));
    }
    assert_eq!(h.h.machine.buffered(), 6, "buffer_max");
    // The honest block takes the junk announcer's highest place.
    h.gossip(&c[4], p(2));
    assert_eq!(h.h.machine.buffered(), 6);
    let answer = Ok(AnyResponse::MissingBlocks(Ok(ResponseBlocks { blocks: c[2..=3].to_vec() })));
    let req = missing_requests(&h.gossip(&c[5], p(2)).1);
    assert!(req.is_empty(), "p(2) already has its gap in flight");
    let honest = h.h.machine.missing.iter().find(|(_, (_, server))| *server == p(2)).map(|(id, _)| *id);
    let (job, _) = job_of(&h.h.respond(honest.expect("honest request"), answer));
    let a = h.applied(job, vec![Pushed::Extended; 2], &c[3]);
    assert_eq!(job_of(&a).1, vec![c[4].clone(), c[5].clone()], "both honest blocks were kept");
    // Bytes: a sender may hold half of `buffer_bytes_max`.
    let size = encoded_len(&junk[3]);
    let mut h = H::at(&c[1]);
    h.h.machine = M::new(LiveConfig { buffer_bytes_max: 5 * size, ..config() });
    for i in 1..=2 {
        h.h.join(p(i), Services::FULL_NODE);
    }
    for b in &junk[3..=9] {
        h.gossip(b, p(1));
    }
    assert_eq!(h.h.machine.buffered(), 2, "half of five blocks' bytes");
    assert!(h.h.machine.buffered_bytes() <= 5 * size / 2);
}

#[test]
fn gaps_are_asked_only_of_peers_that_serve_blocks_and_unsupported_goes_elsewhere() {
    let c = chain(6, 1);
    let mut h = H::at(&c[1]);
    let light = p(7);
    h.h.join(light, Services::NONE);
    // A light peer relays a header after a gap: a peer that serves blocks is asked, not the relay.
    let a = h.gossip(&c[4], light).1;
    let asked = missing_requests(&a);
    assert_eq!(asked.len(), 1);
    let (id, server, target) = asked[0];
    assert_ne!(server, light);
    assert_eq!(target, c[3].hash());
    // "Not found" from a third party is no fault of its (it did not announce the block).
    let not_found = Ok(AnyResponse::MissingBlocks(Err(petrel_protocol::MissingBlocksError::TargetHashNotFound)));
    assert!(penalties(&h.h.respond(id, not_found)).is_empty());
    // A server that advertised blocks but answers Unsupported is not asked again; another is.
    let a = h.gossip(&c[5], light).1;
    let (id, first, _) = missing_requests(&a)[0];
    let a = h.h.respond(id, Err(RequestError::Unsupported));
    let again = missing_requests(&a);
    assert_eq!(again.len(), 1);
    assert_ne!(again[0].1, first);
    assert_ne!(again[0].1, light);
    // Among light and pico peers only, nobody is asked.
    let mut h = H::at(&c[1]);
    for i in 1..=3 {
        h.h.input(Input::PeerLeft { peer: p(i) });
    }
    h.h.join(light, Services::NONE);
    assert!(missing_requests(&h.gossip(&c[4], light).1).is_empty());
    assert_eq!(h.h.machine.wanted(), 0);
}

#[test]
fn a_gap_its_silent_announcer_fails_goes_to_another_server_and_continues_there() {
    let c = chain(12, 1);
    let mut h = H::at(&c[1]);
    // p(1) relays an honest block after a gap first, then never answers.
    let (id, who, _) = missing_requests(&h.gossip(&c[9], p(1)).1)[0];
    assert_eq!(who, p(1));
    let a = h.h.respond(id, Err(RequestError::Timeout));
    let retry = missing_requests(&a);
    assert_eq!(retry.len(), 1, "{a:?}");
    let (id, server, target) = retry[0];
    assert_ne!(server, p(1));
    assert_eq!(target, c[8].hash());
    // The other server answers one batch; the rest is asked of a server again, not of the silent
    // announcer.
    let answer = Ok(AnyResponse::MissingBlocks(Ok(ResponseBlocks { blocks: c[2..=4].to_vec() })));
    let (job, _) = job_of(&h.h.respond(id, answer));
    let a = h.applied(job, vec![Pushed::Extended; 3], &c[4]);
    let next = missing_requests(&a);
    assert_eq!(next.len(), 1, "{a:?}");
    assert_eq!(next[0].2, c[8].hash());
    assert_ne!(next[0].1, p(1), "not the silent announcer");
}
