//! Act → expect tables for the syncer's rules: inputs in, actions compared; no runtime, no network.

use petrel_network_api::{Penalty, Services};
use petrel_primitives::{Blake2bHash, MacroBlock};
use petrel_protocol::AnyRequest;
use petrel_sync_api::testing::{Harness, macro_block, requests};

use super::*;
use crate::SharedLight;

type M = SyncerMachine<SharedLight>;

fn p(i: u64) -> PeerId {
    PeerId::from_index(i)
}

/// Peers in the order the machine lists them (sorted by id).
fn sorted(mut peers: Vec<PeerId>) -> Vec<PeerId> {
    peers.sort();
    peers
}

fn info(b: &MacroBlock) -> HeadInfo {
    HeadInfo { block_number: b.block_number(), block_hash: b.hash(), macro_hash: b.hash(), election_hash: b.hash() }
}

fn view_at(number: u32) -> SyncerView {
    SyncerView { head: info(&macro_block(number, 0)), policy: Policy::TEST, known: false }
}

fn config(min_peers: usize) -> SyncerConfig {
    let mut c = SyncerConfig::for_batch(Policy::TEST.blocks_per_batch);
    c.established = crate::EstablishedConfig { min_peers, min_accepted_announcements: 5 };
    c
}

fn ev(e: SyncerEvent) -> A {
    Action::Emit(e)
}

struct H {
    h: Harness<M>,
}

impl H {
    fn new(min_peers: usize) -> Self {
        let mut h = Harness::<M>::new(config(min_peers), view_at(100));
        let first = h.input(Input::Tick);
        assert_eq!(first.is_empty(), min_peers > 0, "a lone node is established at once: {first:?}");
        Self { h }
    }
    fn input(&mut self, input: Input<(), (), SyncerReport>) -> Vec<A> {
        self.h.input(input)
    }
    fn verdict(&mut self, v: MacroSyncReturn) -> Vec<A> {
        self.input(Input::Report(SyncerReport::Verdict(v)))
    }
    fn live(&mut self, e: LiveSyncEvent) -> Vec<A> {
        self.input(Input::Report(SyncerReport::Live(e)))
    }
    fn joined(&mut self, peers: &[PeerId]) {
        for &peer in peers {
            let a = self.input(Input::PeerJoined { peer, services: Some(Services::NONE) });
            assert_eq!(a, vec![ev(SyncerEvent::AddToMacro(peer))]);
        }
    }
    /// Answers the head requests among `actions`: `answer(peer)` gives the head and whether we
    /// know it. Returns the actions of the last answer.
    fn answer_round(&mut self, actions: &[A], answer: impl Fn(PeerId) -> (HeadInfo, bool)) -> Vec<A> {
        let mut last = Vec::new();
        for (id, peer, request) in requests(actions) {
            assert_eq!(request, AnyRequest::Head(RequestHead));
            let (head, known) = answer(peer);
            self.h.view.known = known;
            last = self.h.respond(id, Ok(AnyResponse::Head(head)));
            self.h.view.known = false;
        }
        last
    }
    /// The peer turns Good and the head round that follows answers "known".
    fn good_and_known(&mut self, peer: PeerId) -> Vec<A> {
        let a = self.verdict(MacroSyncReturn::Good(peer));
        let ours = self.h.view.head;
        let mut out = self.answer_round(&a, |_| (ours, true));
        out.splice(0..0, a);
        out
    }
}

fn round_peers(actions: &[A]) -> Vec<PeerId> {
    requests(actions).into_iter().map(|(_, peer, _)| peer).collect()
}

fn consensus(actions: &[A]) -> Vec<ConsensusEvent> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Emit(SyncerEvent::Consensus(e)) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_good_peer_joins_live_sync_and_a_head_round_starts_at_once() {
    let mut h = H::new(1);
    h.joined(&[p(1)]);
    let a = h.verdict(MacroSyncReturn::Good(p(1)));
    assert_eq!(a[0], ev(SyncerEvent::AddToLive(p(1))));
    assert_eq!(round_peers(&a), vec![p(1)]);
    // The round's answer: our own head. Established with one peer.
    let ours = h.h.view.head;
    let a = h.answer_round(&a, |_| (ours, true));
    assert_eq!(consensus(&a), vec![ConsensusEvent::Established]);
    assert!(h.h.machine.is_established());
}

#[test]
fn a_late_good_for_a_peer_that_left_is_ignored() {
    let mut h = H::new(1);
    h.joined(&[p(1)]);
    assert_eq!(h.input(Input::PeerLeft { peer: p(1) }), vec![ev(SyncerEvent::RemoveFromMacro(p(1)))]);
    let a = h.verdict(MacroSyncReturn::Good(p(1)));
    assert_eq!(a, vec![ev(SyncerEvent::Consensus(ConsensusEvent::Verdict(MacroSyncReturn::Good(p(1)))))]);
    assert_eq!(h.h.machine.live_peers(), 0);
}

#[test]
fn a_live_set_change_during_a_round_starts_the_next_round_when_it_ends() {
    let mut h = H::new(3);
    h.joined(&[p(1), p(2)]);
    let first = h.verdict(MacroSyncReturn::Good(p(1)));
    assert_eq!(round_peers(&first), vec![p(1)]);
    let a = h.verdict(MacroSyncReturn::Good(p(2)));
    assert!(round_peers(&a).is_empty(), "one round at a time");
    let ours = h.h.view.head;
    let a = h.answer_round(&first, |_| (ours, true));
    assert_eq!(sorted(round_peers(&a)), sorted(vec![p(1), p(2)]));
    assert!(consensus(&a).is_empty(), "two live peers of three: not established");
}

#[test]
fn outdated_peers_go_back_to_macro_sync_at_the_check_interval() {
    let mut h = H::new(1);
    h.joined(&[p(1), p(2)]);
    h.verdict(MacroSyncReturn::Outdated(p(2)));
    h.verdict(MacroSyncReturn::Outdated(p(1)));
    let interval = config(1).check_interval;
    assert_eq!(h.h.machine.next_wakeup(), Some(Time::ZERO + interval.min(config(1).head_request_interval)));
    h.h.now = Time::ZERO + interval;
    let a = h.input(Input::Tick);
    let expected: Vec<_> = sorted(vec![p(1), p(2)]).into_iter().map(|q| ev(SyncerEvent::AddToMacro(q))).collect();
    assert_eq!(a, expected);
    h.h.now = Time::ZERO + interval * 2;
    assert!(h.input(Input::Tick).is_empty(), "handed over once");
}

#[test]
fn incompatible_peers_are_checked_and_join_live_sync_when_synced() {
    let mut h = H::new(5);
    h.joined(&[p(1), p(2), p(3)]);
    let mut checks = Vec::new();
    for q in [p(1), p(2), p(3)] {
        let a = h.verdict(MacroSyncReturn::Incompatible(q));
        let r = requests(&a);
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].1, &r[0].2), (q, &AnyRequest::Head(RequestHead)));
        checks.push(r[0].0);
    }
    // Same batch as ours: live. Far ahead: stays. Unsupported: stays.
    let a = h.h.respond(checks[0], Ok(AnyResponse::Head(info(&macro_block(101, 1)))));
    assert_eq!(a[0], ev(SyncerEvent::AddToLive(p(1))));
    let far = info(&macro_block(100 + 3 * Policy::TEST.blocks_per_batch, 1));
    assert!(h.h.respond(checks[1], Ok(AnyResponse::Head(far))).is_empty());
    assert!(h.h.respond(checks[2], Err(RequestError::Unsupported)).is_empty());
    // At the check interval both are asked again; a timeout costs a minor penalty, no disconnect.
    h.h.now = Time::ZERO + config(5).check_interval;
    let a = h.input(Input::Tick);
    let again = requests(&a);
    assert_eq!(sorted(again.iter().map(|r| r.1).collect()), sorted(vec![p(2), p(3)]));
    let to_p3 = again.iter().find(|r| r.1 == p(3)).map(|r| r.0).unwrap();
    assert_eq!(
        h.h.respond(to_p3, Err(RequestError::Timeout)),
        vec![Action::Penalize { peer: p(3), penalty: Penalty::new(Severity::Minor, PenaltyReason::Unresponsive) }]
    );
}

/// A history node's full-node peers are incompatible with its macro sync and far ahead while it
/// syncs; once macro sync reports a peer Good (we reached its state), they are checked at once
/// and join live sync, without waiting for the check interval.
#[test]
fn a_good_verdict_checks_incompatible_peers_again_at_once() {
    let mut h = H::new(2);
    h.joined(&[p(1), p(2)]);
    let a = h.verdict(MacroSyncReturn::Incompatible(p(2)));
    let first = requests(&a)[0].0;
    let far = info(&macro_block(100 + 3 * Policy::TEST.blocks_per_batch, 1));
    assert!(h.h.respond(first, Ok(AnyResponse::Head(far))).is_empty(), "ahead of us: stays incompatible");
    // Macro sync brings us to p(1)'s state, which is p(2)'s too.
    h.h.view = view_at(100 + 3 * Policy::TEST.blocks_per_batch);
    let a = h.verdict(MacroSyncReturn::Good(p(1)));
    let check = requests(&a).into_iter().find(|r| r.1 == p(2)).expect("p(2) is checked again at once");
    assert_eq!(check.2, AnyRequest::Head(RequestHead));
    let a = h.h.respond(check.0, Ok(AnyResponse::Head(far)));
    assert!(a.contains(&ev(SyncerEvent::AddToLive(p(2)))), "{a:?}");
    // A second Good while a check is in flight asks nothing twice.
    let again = h.verdict(MacroSyncReturn::Good(p(1)));
    assert!(requests(&again).iter().all(|r| r.1 != p(2)), "{again:?}");
}

#[test]
fn a_conflict_empties_live_sync_and_falls_back_with_everyone_without_blaming_anyone_yet() {
    let mut h = H::new(1);
    h.joined(&[p(1), p(2), p(3)]);
    h.good_and_known(p(1));
    h.verdict(MacroSyncReturn::Outdated(p(3)));
    let a = h.verdict(MacroSyncReturn::Conflicting(p(2)));
    // Who lied (the conflicting peer or the one our trust came from) is for verification to say.
    assert!(!a.iter().any(|x| matches!(x, Action::Penalize { .. })), "{a:?}");
    assert_eq!(
        a[..3],
        [
            ev(SyncerEvent::RemoveFromLive(p(1))),
            ev(SyncerEvent::Fallback(vec![p(1), p(2), p(3)])),
            ev(SyncerEvent::Consensus(ConsensusEvent::FellBack)),
        ]
    );
    assert!(consensus(&a).contains(&ConsensusEvent::Lost), "no live peer left");
    assert_eq!(h.h.machine.live_peers(), 0);
}

#[test]
fn live_behind_and_ahead_send_the_peer_back() {
    let mut h = H::new(1);
    h.joined(&[p(1), p(2)]);
    h.good_and_known(p(1));
    h.good_and_known(p(2));
    let a = h.live(LiveSyncEvent::Behind(p(1)));
    assert_eq!(round_peers(&a), vec![p(2)], "a round with who is left");
    h.h.now = Time::ZERO + config(1).check_interval;
    let a = h.input(Input::Tick);
    assert!(a.contains(&ev(SyncerEvent::AddToMacro(p(1)))), "behind: outdated, back to macro sync: {a:?}");
    let a = h.live(LiveSyncEvent::Ahead(p(2)));
    assert_eq!(a[0], ev(SyncerEvent::AddToMacro(p(2))));
    assert_eq!(h.h.machine.live_peers(), 0);
}

#[test]
fn unknown_heads_above_ours_go_to_live_sync_to_be_fetched() {
    let mut h = H::new(3);
    h.joined(&[p(1), p(2), p(3)]);
    let first = h.verdict(MacroSyncReturn::Good(p(1)));
    h.verdict(MacroSyncReturn::Good(p(2)));
    h.verdict(MacroSyncReturn::Good(p(3)));
    // The first round ends; the next one, with all three, starts at once.
    let ours = h.h.view.head;
    let second = h.answer_round(&first, |_| (ours, true));
    assert_eq!(sorted(round_peers(&second)), sorted(vec![p(1), p(2), p(3)]));
    let ahead = info(&macro_block(104, 1));
    let behind = info(&macro_block(96, 1));
    let mut events = Vec::new();
    for (id, peer, _) in requests(&second) {
        let head = if peer == p(3) { behind } else { ahead };
        events.extend(h.h.respond(id, Ok(AnyResponse::Head(head))));
    }
    // Live sync owns fetching: each unknown head above ours goes there; the one below ours does not.
    let to_live: Vec<_> = events
        .into_iter()
        .filter_map(|a| match a {
            Action::Emit(SyncerEvent::HeadToLive(q, head)) => Some((q, head)),
            _ => None,
        })
        .collect();
    let mut expected = vec![(p(1), ahead), (p(2), ahead)];
    expected.sort_by_key(|(q, _)| *q);
    let mut to_live = to_live;
    to_live.sort_by_key(|(q, _)| *q);
    assert_eq!(to_live, expected);
    assert_eq!(h.h.machine.stats().heads_to_live, 2);
}

#[test]
fn established_on_two_thirds_of_heads_known_or_five_announcements_and_lost_below_min_peers() {
    let mut h = H::new(3);
    h.joined(&[p(1), p(2), p(3)]);
    let first = h.verdict(MacroSyncReturn::Good(p(1)));
    h.verdict(MacroSyncReturn::Good(p(2)));
    h.verdict(MacroSyncReturn::Good(p(3)));
    let known = info(&macro_block(100, 0));
    let unknown = info(&macro_block(99, 7));
    // The first round (p(1) alone) saw an unknown head: not established; the next round asks all.
    let second = h.answer_round(&first, |_| (unknown, false));
    assert!(consensus(&second).is_empty());
    assert_eq!(sorted(round_peers(&second)), sorted(vec![p(1), p(2), p(3)]));
    // Two of three heads known: established.
    let a = h.answer_round(&second, |peer| if peer == p(3) { (unknown, false) } else { (known, true) });
    assert!(consensus(&a).contains(&ConsensusEvent::Established), "{a:?}");
    let a = h.input(Input::PeerLeft { peer: p(3) });
    assert!(consensus(&a).contains(&ConsensusEvent::Lost));
    // Announcements alone establish again once a third peer is back.
    h.joined(&[p(4)]);
    for _ in 0..5 {
        h.live(LiveSyncEvent::AcceptedAnnouncedBlock(Blake2bHash::default()));
    }
    assert!(!h.h.machine.is_established(), "two live peers");
    let a = h.verdict(MacroSyncReturn::Good(p(4)));
    assert!(consensus(&a).contains(&ConsensusEvent::Established));
}

#[test]
fn the_head_interval_starts_a_round_only_with_live_peers_and_announcements_push_it_back() {
    let mut h = H::new(1);
    let interval = config(1).head_request_interval;
    h.h.now = Time::ZERO + interval;
    assert!(h.input(Input::Tick).is_empty());
    h.joined(&[p(1)]);
    h.good_and_known(p(1));
    // An announcement moves the next periodic round one interval away.
    h.h.now = Time::ZERO + (interval * 2 - std::time::Duration::from_millis(1));
    h.live(LiveSyncEvent::AcceptedAnnouncedBlock(Blake2bHash::default()));
    h.h.now = Time::ZERO + interval * 2;
    assert!(round_peers(&h.input(Input::Tick)).is_empty());
    h.h.now = Time::ZERO + interval * 3;
    assert_eq!(round_peers(&h.input(Input::Tick)), vec![p(1)]);
}

#[test]
fn catching_up_on_heads_the_last_round_did_not_know_starts_another_round() {
    let mut h = H::new(1);
    h.joined(&[p(1)]);
    let a = h.verdict(MacroSyncReturn::Good(p(1)));
    let ahead = info(&macro_block(104, 1));
    let a = h.answer_round(&a, |_| (ahead, false));
    assert_eq!(a.last(), Some(&ev(SyncerEvent::HeadToLive(p(1), ahead))));
    assert!(consensus(&a).is_empty(), "an unknown head: not established");
    // Live sync applies the fetched block: a new round checks at once.
    let a = h.live(LiveSyncEvent::AcceptedBufferedBlock(ahead.block_hash));
    assert_eq!(round_peers(&a), vec![p(1)]);
    h.h.view = SyncerView { head: ahead, ..h.h.view };
    let a = h.answer_round(&a, |_| (ahead, true));
    assert_eq!(consensus(&a), vec![ConsensusEvent::Established]);
    // Once established, catching up starts no extra rounds.
    let a = h.live(LiveSyncEvent::ReceivedMissingBlocks(3));
    assert!(round_peers(&a).is_empty());
}
