//! Act → expect tables for the syncer's rules: inputs in, actions compared; no runtime, no network.

use petrel_primitives::{Blake2bHash, MacroBlock};
use petrel_sync_api::testing::macro_block;

use super::*;

fn p(i: u64) -> PeerId {
    PeerId::from_index(i)
}

/// Peers in the order the machine lists them (sorted by id).
fn sorted(mut peers: Vec<PeerId>) -> Vec<PeerId> {
    peers.sort();
    peers
}

fn view_at(number: u32) -> SyncerView {
    let b = macro_block(number, 0);
    SyncerView {
        head: HeadInfo { block_number: number, block_hash: b.hash(), macro_hash: b.hash(), election_hash: b.hash() },
        policy: Policy::TEST,
    }
}

fn config(min_peers: usize) -> SyncerConfig {
    let mut c = SyncerConfig::for_batch(Policy::TEST.blocks_per_batch);
    c.established = crate::EstablishedConfig { min_peers, min_accepted_announcements: 5 };
    c
}

struct H {
    m: SyncerMachine,
    view: SyncerView,
}

impl H {
    fn new(min_peers: usize) -> Self {
        Self { m: SyncerMachine::new(config(min_peers)), view: view_at(100) }
    }
    fn input(&mut self, input: SyncerInput) -> Vec<SyncerAction> {
        self.m.handle(input, &self.view);
        std::iter::from_fn(|| self.m.poll_action()).collect()
    }
    fn joined(&mut self, peers: &[PeerId]) {
        for &peer in peers {
            assert_eq!(self.input(SyncerInput::PeerJoined(peer)), vec![SyncerAction::AddToMacro(peer)]);
        }
    }
    /// The peer turns Good and its head round answers "known".
    fn good_and_known(&mut self, peer: PeerId) -> Vec<SyncerAction> {
        let mut a = self.input(SyncerInput::Verdict(MacroSyncReturn::Good(peer)));
        if a.iter().any(|x| matches!(x, SyncerAction::StartHeadRound(_))) {
            let head = response_head(&macro_block(100, 0));
            let live: Vec<_> = a
                .iter()
                .find_map(|x| match x {
                    SyncerAction::StartHeadRound(peers) => Some(peers.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            a.extend(self.input(SyncerInput::HeadRoundDone(live.into_iter().map(|q| (q, Ok((head, true)))).collect())));
        }
        a
    }
}

fn response_head(b: &MacroBlock) -> ResponseHead {
    ResponseHead { block_number: b.block_number(), block_hash: b.hash(), macro_hash: b.hash(), election_hash: b.hash() }
}

fn emitted(actions: &[SyncerAction]) -> Vec<ConsensusEvent> {
    actions
        .iter()
        .filter_map(|a| match a {
            SyncerAction::Emit(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

fn without_emits(actions: Vec<SyncerAction>) -> Vec<SyncerAction> {
    actions.into_iter().filter(|a| !matches!(a, SyncerAction::Emit(_))).collect()
}

#[test]
fn a_good_peer_joins_live_sync_and_a_head_round_starts_at_once() {
    let mut h = H::new(1);
    h.joined(&[p(1)]);
    let a = h.input(SyncerInput::Verdict(MacroSyncReturn::Good(p(1))));
    assert_eq!(
        without_emits(a),
        vec![SyncerAction::AddToLive(p(1)), SyncerAction::StartHeadRound(vec![p(1)]), SyncerAction::ResetHeadTimer,]
    );
    // The round's answer: our own head. Established with one peer.
    let head = response_head(&macro_block(100, 0));
    let a = h.input(SyncerInput::HeadRoundDone(vec![(p(1), Ok((head, true)))]));
    assert_eq!(emitted(&a), vec![ConsensusEvent::Established]);
    assert!(h.m.is_established());
}

#[test]
fn a_late_good_for_a_peer_that_left_is_ignored() {
    let mut h = H::new(1);
    h.joined(&[p(1)]);
    h.input(SyncerInput::PeerLeft(p(1)));
    let a = h.input(SyncerInput::Verdict(MacroSyncReturn::Good(p(1))));
    assert_eq!(a, vec![SyncerAction::Emit(ConsensusEvent::Verdict(MacroSyncReturn::Good(p(1))))]);
    assert_eq!(h.m.live_peers(), 0);
}

#[test]
fn a_live_set_change_during_a_round_starts_the_next_round_when_it_ends() {
    let mut h = H::new(3);
    h.joined(&[p(1), p(2)]);
    let a = h.input(SyncerInput::Verdict(MacroSyncReturn::Good(p(1))));
    assert!(a.contains(&SyncerAction::StartHeadRound(vec![p(1)])));
    let a = h.input(SyncerInput::Verdict(MacroSyncReturn::Good(p(2))));
    assert!(!a.iter().any(|x| matches!(x, SyncerAction::StartHeadRound(_))), "one round at a time");
    let head = response_head(&macro_block(100, 0));
    let a = h.input(SyncerInput::HeadRoundDone(vec![(p(1), Ok((head, true)))]));
    assert!(a.contains(&SyncerAction::StartHeadRound(sorted(vec![p(1), p(2)]))));
    assert!(emitted(&a).is_empty(), "two live peers of three: not established");
}

#[test]
fn outdated_peers_go_back_to_macro_sync_at_the_check_interval() {
    let mut h = H::new(1);
    h.joined(&[p(1), p(2)]);
    h.input(SyncerInput::Verdict(MacroSyncReturn::Outdated(p(2))));
    h.input(SyncerInput::Verdict(MacroSyncReturn::Outdated(p(1))));
    let expected: Vec<_> = sorted(vec![p(1), p(2)]).into_iter().map(SyncerAction::AddToMacro).collect();
    assert_eq!(h.input(SyncerInput::CheckTimer), expected);
    assert!(h.input(SyncerInput::CheckTimer).is_empty(), "handed over once");
}

#[test]
fn incompatible_peers_are_checked_and_join_live_sync_when_synced() {
    let mut h = H::new(5);
    h.joined(&[p(1), p(2), p(3)]);
    for q in [p(1), p(2), p(3)] {
        let a = h.input(SyncerInput::Verdict(MacroSyncReturn::Incompatible(q)));
        assert_eq!(without_emits(a), vec![SyncerAction::CheckHead(q)]);
    }
    // Same batch as ours: live. Far ahead: stays. Unsupported: stays.
    let near = response_head(&macro_block(101, 1));
    let a = h.input(SyncerInput::Checked(p(1), Ok(near)));
    assert_eq!(a[0], SyncerAction::AddToLive(p(1)));
    let far = response_head(&macro_block(100 + 3 * Policy::TEST.blocks_per_batch, 1));
    assert!(h.input(SyncerInput::Checked(p(2), Ok(far))).is_empty());
    assert!(h.input(SyncerInput::Checked(p(3), Err(RequestError::Unsupported))).is_empty());
    // A timeout costs a minor penalty and no disconnect.
    assert_eq!(
        h.input(SyncerInput::Checked(p(3), Err(RequestError::Timeout))),
        vec![SyncerAction::Penalize(p(3), Penalty::new(Severity::Minor, PenaltyReason::Unresponsive))]
    );
    // Both remaining ones are checked again at the interval.
    let expected: Vec<_> = sorted(vec![p(2), p(3)]).into_iter().map(SyncerAction::CheckHead).collect();
    assert_eq!(h.input(SyncerInput::CheckTimer), expected);
}

#[test]
fn a_conflict_penalises_empties_live_sync_and_falls_back_with_everyone() {
    let mut h = H::new(1);
    h.joined(&[p(1), p(2), p(3)]);
    h.good_and_known(p(1));
    h.input(SyncerInput::Verdict(MacroSyncReturn::Outdated(p(3))));
    let a = h.input(SyncerInput::Verdict(MacroSyncReturn::Conflicting(p(2))));
    assert_eq!(
        a[..4],
        [
            SyncerAction::Penalize(p(2), Penalty::new(Severity::InvalidData, PenaltyReason::ConflictingChain)),
            SyncerAction::RemoveFromLive(p(1)),
            SyncerAction::Fallback(vec![p(1), p(2), p(3)]),
            SyncerAction::Emit(ConsensusEvent::FellBack),
        ]
    );
    assert!(emitted(&a).contains(&ConsensusEvent::Lost), "no live peer left");
    assert_eq!(h.m.live_peers(), 0);
}

#[test]
fn live_behind_and_ahead_send_the_peer_back() {
    let mut h = H::new(1);
    h.joined(&[p(1), p(2)]);
    h.good_and_known(p(1));
    h.good_and_known(p(2));
    let a = h.input(SyncerInput::Live(LiveSyncEvent::Behind(p(1))));
    assert!(a.iter().any(|x| matches!(x, SyncerAction::StartHeadRound(peers) if peers == &vec![p(2)])));
    assert_eq!(h.input(SyncerInput::CheckTimer), vec![SyncerAction::AddToMacro(p(1))], "behind: outdated");
    let a = h.input(SyncerInput::Live(LiveSyncEvent::Ahead(p(2))));
    assert_eq!(a[0], SyncerAction::AddToMacro(p(2)));
    assert_eq!(h.m.live_peers(), 0);
}

#[test]
fn unknown_heads_above_ours_go_to_live_sync_to_be_fetched() {
    let mut h = H::new(3);
    h.joined(&[p(1), p(2), p(3)]);
    for q in [p(1), p(2), p(3)] {
        h.input(SyncerInput::Verdict(MacroSyncReturn::Good(q)));
    }
    let ahead = response_head(&macro_block(104, 1));
    let behind = response_head(&macro_block(96, 1));
    let a = h.input(SyncerInput::HeadRoundDone(vec![
        (p(1), Ok((ahead, false))),
        (p(2), Ok((ahead, false))),
        (p(3), Ok((behind, false))),
    ]));
    // Live sync owns fetching: each unknown head above ours goes there; one below ours does not.
    let to_live: Vec<_> = a.into_iter().filter(|x| matches!(x, SyncerAction::HeadToLive(..))).collect();
    assert_eq!(to_live, vec![SyncerAction::HeadToLive(p(1), ahead), SyncerAction::HeadToLive(p(2), ahead)]);
    assert!(!h.m.is_established(), "no head known: not established");
    assert_eq!(h.m.stats().heads_to_live, 2);
}

#[test]
fn established_on_two_thirds_of_heads_known_or_five_announcements_and_lost_below_min_peers() {
    let mut h = H::new(3);
    h.joined(&[p(1), p(2), p(3)]);
    for q in [p(1), p(2), p(3)] {
        h.input(SyncerInput::Verdict(MacroSyncReturn::Good(q)));
    }
    let known = response_head(&macro_block(100, 0));
    let unknown = response_head(&macro_block(99, 7));
    let a = h.input(SyncerInput::HeadRoundDone(vec![
        (p(1), Ok((known, true))),
        (p(2), Ok((known, true))),
        (p(3), Ok((unknown, false))),
    ]));
    assert!(emitted(&a).contains(&ConsensusEvent::Established));
    let a = h.input(SyncerInput::PeerLeft(p(3)));
    assert!(emitted(&a).contains(&ConsensusEvent::Lost));
    // Announcements alone establish again once a third peer is back.
    h.joined(&[p(4)]);
    for _ in 0..5 {
        let a = h.input(SyncerInput::Live(LiveSyncEvent::AcceptedAnnouncedBlock(Blake2bHash::default())));
        assert!(a.contains(&SyncerAction::ResetHeadTimer));
    }
    assert!(!h.m.is_established(), "two live peers");
    let a = h.input(SyncerInput::Verdict(MacroSyncReturn::Good(p(4))));
    assert!(emitted(&a).contains(&ConsensusEvent::Established));
}

#[test]
fn the_head_timer_starts_a_round_only_with_live_peers() {
    let mut h = H::new(1);
    assert!(h.input(SyncerInput::HeadTimer).is_empty());
    h.joined(&[p(1)]);
    h.good_and_known(p(1));
    let a = h.input(SyncerInput::HeadTimer);
    assert_eq!(a, vec![SyncerAction::StartHeadRound(vec![p(1)]), SyncerAction::ResetHeadTimer]);
}

#[test]
fn catching_up_on_heads_the_last_round_did_not_know_starts_another_round() {
    let mut h = H::new(1);
    h.joined(&[p(1)]);
    let a = h.input(SyncerInput::Verdict(MacroSyncReturn::Good(p(1))));
    assert!(a.contains(&SyncerAction::StartHeadRound(vec![p(1)])));
    let ahead = macro_block(104, 1);
    let a = h.input(SyncerInput::HeadRoundDone(vec![(p(1), Ok((response_head(&ahead), false)))]));
    assert!(emitted(&a).is_empty(), "an unknown head: not established");
    // Live sync applies the fetched block: a new round checks at once.
    let a = h.input(SyncerInput::Live(LiveSyncEvent::AcceptedBufferedBlock(ahead.hash())));
    assert!(a.contains(&SyncerAction::StartHeadRound(vec![p(1)])));
    h.view = view_at(104);
    let a = h.input(SyncerInput::HeadRoundDone(vec![(p(1), Ok((response_head(&ahead), true)))]));
    assert_eq!(emitted(&a), vec![ConsensusEvent::Established]);
    // Once established, catching up starts no extra rounds.
    let a = h.input(SyncerInput::Live(LiveSyncEvent::ReceivedMissingBlocks(3)));
    assert!(!a.iter().any(|x| matches!(x, SyncerAction::StartHeadRound(_))));
}
