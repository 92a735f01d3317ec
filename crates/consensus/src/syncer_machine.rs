//! The syncer's rules as a pure machine on the one sync driver: which peer goes to macro sync,
//! live sync, the outdated or the incompatible set; when a head round starts and what its answers
//! mean; when the node falls back, is established or lost. Its inputs are the generic ones (peers,
//! answers to its head requests, ticks) plus [`SyncerReport`]s (the macro sync's verdicts and the
//! live sync's events, handed in by [`crate::syncer::Syncer`]); its events tell the syncer how to
//! route peers ([`SyncerEvent`]). No I/O, no clock, no logging (protocol.md §11.4–§11.5).
//!
//! | Input | Outcome |
//! |---|---|
//! | `PeerJoined` | to macro sync |
//! | `PeerLeft` | out of macro sync, live sync (a head round if it was live), the outdated and incompatible sets |
//! | `Good` of a connected peer | to live sync, a head round, and a head check of each incompatible peer not being checked; a late `Good` (peer gone) is ignored |
//! | `Outdated` | remembered; back to macro sync at the next check (`check_interval`) |
//! | `Incompatible` | a head check now and at every check |
//! | `Conflicting` | every live peer out of live sync; live, conflicting and outdated peers to `Fallback` (no penalty: the fallback's verification tells who lied) |
//! | live `Behind` | outdated, and a head round |
//! | live `Ahead` | to macro sync, and a head round |
//! | live `AcceptedAnnouncedBlock` | counted; the next periodic round is one interval away |
//! | live `AcceptedBufferedBlock` / `ReceivedMissingBlocks` while not established and the last round saw unknown heads | a head round |
//! | head check answer | synced (same batch or the one before, within the acceptance window) → live sync and a head round; else stays |
//! | head round done (every answer in) | heads counted known/unknown; an unknown head above ours goes to live sync, which fetches what lies between |
//! | tick at `head_request_interval` after the last round | a head round |

use std::collections::{HashMap, HashSet};

use petrel_network_api::{PeerId, PenaltyReason, RequestError, Severity};
use petrel_primitives::Policy;
use petrel_primitives::wire::HeadInfo;
use petrel_protocol::{AnyResponse, RequestHead, ResponseHead};
use petrel_sync_api::machine::{Action, Input, Machine, PeerBook, RequestId, Time};
use petrel_sync_api::{LiveSyncEvent, MacroSyncReturn};

use crate::chain::SyncChain;
use crate::established::{EstablishedInputs, is_established, is_lost};
use crate::syncer::{ConsensusEvent, SyncerConfig, SyncerStats};

/// What the syncer machine sees of the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncerView {
    /// Our head.
    pub head: HeadInfo,
    /// The policy.
    pub policy: Policy,
    /// For the answer to a head request: whether our chain knows that head.
    pub known: bool,
}

/// What the components the syncer coordinates report to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncerReport {
    /// A macro-sync verdict.
    Verdict(MacroSyncReturn),
    /// A live-sync event.
    Live(LiveSyncEvent),
}

/// What the syncer machine tells its owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncerEvent {
    /// Hand a peer to macro sync.
    AddToMacro(PeerId),
    /// Take a peer from macro sync.
    RemoveFromMacro(PeerId),
    /// Hand a peer to live sync.
    AddToLive(PeerId),
    /// Take a peer from live sync.
    RemoveFromLive(PeerId),
    /// Switch macro sync to its fallback with these peers.
    Fallback(Vec<PeerId>),
    /// Tell live sync a live peer's head that we do not know (it fetches up to it).
    HeadToLive(PeerId, HeadInfo),
    /// Report an event to the syncer's consumer.
    Consensus(ConsensusEvent),
}

type A = Action<(), SyncerEvent>;

/// A head round: the requests still out, and the answers in.
#[derive(Debug, Default)]
struct Round {
    pending: HashMap<RequestId, PeerId>,
    answers: Vec<(PeerId, ResponseHead, bool)>,
}

/// The syncer machine. See the module documentation.
#[derive(Debug)]
pub struct SyncerMachine<C> {
    config: SyncerConfig,
    book: PeerBook<(), (), SyncerEvent>,
    connected: HashSet<PeerId>,
    live: HashSet<PeerId>,
    outdated: HashSet<PeerId>,
    incompatible: HashSet<PeerId>,
    /// Head checks of incompatible peers in flight.
    checks: HashMap<RequestId, PeerId>,
    round: Option<Round>,
    /// The live set changed since the last round started: start one as soon as none runs.
    round_wanted: bool,
    /// When the next periodic check and head round are due (set on the first input).
    next_check: Option<Time>,
    next_round: Option<Time>,
    last_round: Option<(usize, usize)>,
    established: bool,
    stats: SyncerStats,
    _chain: std::marker::PhantomData<fn() -> C>,
}

impl<C: SyncChain> Machine for SyncerMachine<C> {
    type Config = SyncerConfig;
    type Chain = C;
    type View = SyncerView;
    type Work = ();
    type Outcome = ();
    type Event = SyncerEvent;
    type Gossip = ();
    type Report = SyncerReport;
    type Stats = SyncerStats;

    fn new(config: SyncerConfig) -> Self {
        Self {
            config,
            book: PeerBook::default(),
            connected: HashSet::new(),
            live: HashSet::new(),
            outdated: HashSet::new(),
            incompatible: HashSet::new(),
            checks: HashMap::new(),
            round: None,
            round_wanted: false,
            next_check: None,
            next_round: None,
            last_round: None,
            established: false,
            stats: SyncerStats::default(),
            _chain: std::marker::PhantomData,
        }
    }

    fn view(chain: &C, input: &Input<(), (), SyncerReport>) -> SyncerView {
        let known = match input {
            Input::Response { response: Ok(AnyResponse::Head(head)), .. } => chain.knows(&head.block_hash),
            _ => false,
        };
        SyncerView { head: chain.head(), policy: chain.policy(), known }
    }

    fn execute(_chain: &C, (): ()) {}

    fn handle(&mut self, input: Input<(), (), SyncerReport>, now: Time, view: &SyncerView) {
        let next_check = *self.next_check.get_or_insert(now + self.config.check_interval);
        let next_round = *self.next_round.get_or_insert(now + self.config.head_request_interval);
        match input {
            Input::PeerJoined { peer, .. } => {
                if self.connected.insert(peer) {
                    self.book.emit(SyncerEvent::AddToMacro(peer));
                }
            }
            Input::PeerLeft { peer } => self.peer_left(peer),
            Input::Report(SyncerReport::Verdict(verdict)) => self.on_verdict(verdict),
            Input::Report(SyncerReport::Live(event)) => self.on_live(event, now),
            Input::Response { id, response } => self.on_response(id, response, view),
            Input::Tick => {
                if now >= next_check {
                    self.next_check = Some(now + self.config.check_interval);
                    self.check();
                }
                if now >= next_round {
                    self.next_round = Some(now + self.config.head_request_interval);
                    self.round_wanted = true;
                }
            }
            // No gossip, no peer heads, no jobs.
            Input::Gossip(_) | Input::PeerHead { .. } | Input::Applied { .. } => {}
        }
        self.maybe_start_round(now);
        self.update_established();
    }

    fn poll_action(&mut self) -> Option<A> {
        self.book.poll_action()
    }
    fn next_wakeup(&self) -> Option<Time> {
        match (self.next_check, self.next_round) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
    fn drain_peers(&mut self) -> Vec<PeerId> {
        self.live.clear();
        self.outdated.clear();
        self.incompatible.clear();
        self.connected.drain().collect()
    }
    fn num_peers(&self) -> usize {
        self.connected.len()
    }
    fn peers(&self) -> Vec<PeerId> {
        self.connected.iter().copied().collect()
    }
    fn stats(&self) -> SyncerStats {
        self.stats
    }
}

impl<C> SyncerMachine<C> {
    /// Whether the node is established.
    pub fn is_established(&self) -> bool {
        self.established
    }

    /// Peers in live sync.
    pub fn live_peers(&self) -> usize {
        self.live.len()
    }

    /// The peers the machine counts as connected, in id order.
    pub fn connected_peers(&self) -> Vec<PeerId> {
        let mut peers: Vec<_> = self.connected.iter().copied().collect();
        peers.sort();
        peers
    }

    fn add_live(&mut self, peer: PeerId) {
        if self.live.insert(peer) {
            self.book.emit(SyncerEvent::AddToLive(peer));
        }
        self.round_wanted = true;
    }

    fn peer_left(&mut self, peer: PeerId) {
        if !self.connected.remove(&peer) {
            return;
        }
        self.book.emit(SyncerEvent::RemoveFromMacro(peer));
        if self.live.remove(&peer) {
            self.book.emit(SyncerEvent::RemoveFromLive(peer));
            self.round_wanted = true;
        }
        self.outdated.remove(&peer);
        self.incompatible.remove(&peer);
    }

    fn check(&mut self) {
        let mut outdated: Vec<_> = self.outdated.drain().collect();
        outdated.sort();
        for peer in outdated {
            self.book.emit(SyncerEvent::AddToMacro(peer));
        }
        let mut incompatible: Vec<_> = self.incompatible.iter().copied().collect();
        incompatible.sort();
        for peer in incompatible {
            self.check_head(peer);
        }
    }

    fn check_head(&mut self, peer: PeerId) {
        let id = self.book.request(peer, RequestHead);
        self.checks.insert(id, peer);
    }

    fn on_verdict(&mut self, verdict: MacroSyncReturn) {
        match verdict {
            // A verdict can arrive after its peer left: only connected peers join live sync.
            MacroSyncReturn::Good(p) if self.connected.contains(&p) => {
                self.outdated.remove(&p);
                self.add_live(p);
                // Macro sync brought us to a peer's state: incompatible peers (e.g. full nodes
                // for a history node) that were ahead may be level with us now; check them at
                // once rather than at the next check.
                let mut incompatible: Vec<_> = self.incompatible.iter().copied().collect();
                incompatible.sort();
                for q in incompatible {
                    if !self.checks.values().any(|c| *c == q) {
                        self.check_head(q);
                    }
                }
            }
            MacroSyncReturn::Good(_) => {}
            MacroSyncReturn::Outdated(p) => {
                if self.connected.contains(&p) {
                    self.outdated.insert(p);
                }
            }
            MacroSyncReturn::Incompatible(p) => {
                if self.connected.contains(&p) {
                    self.incompatible.insert(p);
                    self.check_head(p);
                }
            }
            MacroSyncReturn::Conflicting(p) => {
                // No penalty here: our chain rests on trust, and the conflicting peer may be the
                // honest one. Macro sync's fallback blames whoever verification proves wrong.
                let mut peers: Vec<_> = self.live.drain().collect();
                peers.sort();
                for q in &peers {
                    self.book.emit(SyncerEvent::RemoveFromLive(*q));
                }
                peers.push(p);
                let mut outdated: Vec<_> = self.outdated.drain().collect();
                outdated.sort();
                peers.extend(outdated);
                self.book.emit(SyncerEvent::Fallback(peers));
                self.book.emit(SyncerEvent::Consensus(ConsensusEvent::FellBack));
            }
        }
        self.book.emit(SyncerEvent::Consensus(ConsensusEvent::Verdict(verdict)));
    }

    fn on_live(&mut self, event: LiveSyncEvent, now: Time) {
        match &event {
            LiveSyncEvent::AcceptedAnnouncedBlock(_) => {
                self.stats.accepted_announcements += 1;
                // Announcements are evidence enough: the next periodic round can wait.
                self.next_round = Some(now + self.config.head_request_interval);
            }
            // Live sync dropped the peer itself.
            LiveSyncEvent::Behind(p) => {
                if self.live.remove(p) {
                    self.round_wanted = true;
                }
                if self.connected.contains(p) {
                    self.outdated.insert(*p);
                }
            }
            LiveSyncEvent::Ahead(p) => {
                if self.live.remove(p) {
                    self.round_wanted = true;
                }
                if self.connected.contains(p) {
                    self.book.emit(SyncerEvent::AddToMacro(*p));
                }
            }
            // We caught up on blocks the last round did not know: ask again, so that the evidence
            // for "established" follows the chain instead of waiting for the interval.
            LiveSyncEvent::AcceptedBufferedBlock(_) | LiveSyncEvent::ReceivedMissingBlocks(_)
                if !self.established && self.last_round.is_some_and(|(_, unknown)| unknown > 0) =>
            {
                self.round_wanted = true;
            }
            _ => {}
        }
        self.book.emit(SyncerEvent::Consensus(ConsensusEvent::Live(event)));
    }

    fn on_response(&mut self, id: RequestId, response: Result<AnyResponse, RequestError>, view: &SyncerView) {
        let Some(_) = self.book.answered(id) else { return };
        if let Some(peer) = self.checks.remove(&id) {
            let result = match response {
                Ok(AnyResponse::Head(head)) => Ok(head),
                Ok(_) => return,
                Err(e) => Err(e),
            };
            return self.on_check(peer, result, view);
        }
        let Some(round) = &mut self.round else { return };
        let Some(peer) = round.pending.remove(&id) else { return };
        // Failed requests are not counted.
        if let Ok(AnyResponse::Head(head)) = response {
            round.answers.push((peer, head, view.known));
        }
        if round.pending.is_empty() {
            let Some(round) = self.round.take() else { return };
            self.on_head_round(round.answers, view);
        }
    }

    fn on_check(&mut self, peer: PeerId, result: Result<ResponseHead, RequestError>, view: &SyncerView) {
        if !self.incompatible.contains(&peer) {
            return;
        }
        let head = match result {
            Ok(head) => head,
            Err(RequestError::Timeout) => {
                return self.book.penalize(peer, Severity::Minor, PenaltyReason::Unresponsive);
            }
            Err(e) if e.is_peer_fault() => {
                return self.book.penalize(peer, Severity::InvalidData, PenaltyReason::MalformedResponse);
            }
            // Does not serve heads, is busy, or is gone: it stays incompatible (checked again
            // later, or forgotten when it leaves).
            Err(_) => return,
        };
        let policy = view.policy;
        let ours = view.head.block_number;
        let synced = policy.batch_at(head.block_number) + 1 >= policy.batch_at(ours)
            && head.block_number <= ours.saturating_add(self.config.acceptance_window);
        if synced {
            self.incompatible.remove(&peer);
            self.add_live(peer);
        }
    }

    fn maybe_start_round(&mut self, now: Time) {
        if !self.round_wanted || self.round.is_some() {
            return;
        }
        self.round_wanted = false;
        if self.live.is_empty() {
            return;
        }
        let mut peers: Vec<_> = self.live.iter().copied().collect();
        peers.sort();
        let mut round = Round::default();
        for peer in peers {
            round.pending.insert(self.book.request(peer, RequestHead), peer);
        }
        self.round = Some(round);
        // The next periodic round comes one interval after this one.
        self.next_round = Some(now + self.config.head_request_interval);
    }

    fn on_head_round(&mut self, answers: Vec<(PeerId, ResponseHead, bool)>, view: &SyncerView) {
        let (mut known, mut unknown) = (0, 0);
        for (peer, head, knows) in answers {
            if knows {
                known += 1;
                continue;
            }
            unknown += 1;
            if head.block_number > view.head.block_number {
                self.stats.heads_to_live += 1;
                self.book.emit(SyncerEvent::HeadToLive(peer, head));
            }
        }
        self.stats.head_rounds += 1;
        self.last_round = Some((known, unknown));
    }

    fn update_established(&mut self) {
        let inputs = EstablishedInputs {
            live_peers: self.live.len(),
            accepted_announcements: self.stats.accepted_announcements,
            head_round: self.last_round,
        };
        if !self.established && is_established(&inputs, &self.config.established) {
            self.established = true;
            self.book.emit(SyncerEvent::Consensus(ConsensusEvent::Established));
        } else if self.established && is_lost(&inputs, &self.config.established) {
            self.established = false;
            self.last_round = None;
            self.book.emit(SyncerEvent::Consensus(ConsensusEvent::Lost));
        }
    }
}

#[cfg(test)]
mod tests;
