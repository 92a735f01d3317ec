//! The syncer's rules as a pure machine: which peer goes to macro sync, live sync, the outdated or
//! the incompatible set; when a head round starts and what its answers mean; when the node falls
//! back, is established or lost. [`crate::syncer::Syncer`] drives it: it turns network events,
//! verdicts, live-sync events, answers and timer ticks into [`SyncerInput`]s and carries out the
//! [`SyncerAction`]s. No I/O, no clock, no logging here (protocol.md §11.4–§11.5).
//!
//! | Input | Actions |
//! |---|---|
//! | `PeerJoined` | to macro sync |
//! | `PeerLeft` | out of macro sync, live sync (a head round if it was live), the outdated and incompatible sets |
//! | `Good` of a connected peer | to live sync, and a head round; a late `Good` (peer gone) is ignored |
//! | `Outdated` | remembered; back to macro sync at the next `CheckTimer` |
//! | `Incompatible` | a head check now and at every `CheckTimer` |
//! | `Conflicting` | an invalid-data penalty; every live peer out of live sync; live, conflicting and outdated peers to `Fallback` |
//! | live `Behind` | outdated, and a head round |
//! | live `Ahead` | to macro sync, and a head round |
//! | live `AcceptedAnnouncedBlock` | counted; the head timer restarts |
//! | live `AcceptedBufferedBlock` / `ReceivedMissingBlocks` while not established and the last round saw unknown heads | a head round |
//! | head check answer | synced (same batch or the one before, within the acceptance window) → live sync and a head round; else stays |
//! | head round done | heads counted known/unknown; an unknown head above ours goes to live sync, which fetches what lies between (one component fetches what the chain lacks) |
//! | `HeadTimer` | a head round |

use std::collections::{HashSet, VecDeque};

use petrel_blockchain::HeadInfo;
use petrel_network_api::{PeerId, Penalty, PenaltyReason, RequestError, Severity};
use petrel_primitives::Policy;
use petrel_protocol::ResponseHead;
use petrel_sync_api::{LiveSyncEvent, MacroSyncReturn};

use crate::established::{EstablishedInputs, is_established, is_lost};
use crate::syncer::{ConsensusEvent, SyncerConfig, SyncerStats};

/// What the syncer machine sees of the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncerView {
    /// Our head.
    pub head: HeadInfo,
    /// The policy.
    pub policy: Policy,
}

/// One answer of a head round: the head, and whether our chain knows it (`SyncChain::knows`).
pub type HeadAnswer = Result<(ResponseHead, bool), RequestError>;

/// Everything the syncer machine is told.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // handled one at a time, never stored
pub enum SyncerInput {
    /// A peer connected (or was connected when the syncer started).
    PeerJoined(PeerId),
    /// A peer disconnected.
    PeerLeft(PeerId),
    /// A macro-sync verdict.
    Verdict(MacroSyncReturn),
    /// A live-sync event.
    Live(LiveSyncEvent),
    /// The head round started by [`SyncerAction::StartHeadRound`] finished.
    HeadRoundDone(Vec<(PeerId, HeadAnswer)>),
    /// The answer to a [`SyncerAction::CheckHead`].
    Checked(PeerId, Result<ResponseHead, RequestError>),
    /// The check interval passed.
    CheckTimer,
    /// The head-request interval passed.
    HeadTimer,
}

/// Everything the syncer machine does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncerAction {
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
    /// Ask these live peers for their heads, at once; report with [`SyncerInput::HeadRoundDone`].
    StartHeadRound(Vec<PeerId>),
    /// Ask an incompatible peer for its head; report with [`SyncerInput::Checked`].
    CheckHead(PeerId),
    /// Tell live sync a live peer's head that we do not know (it fetches up to it).
    HeadToLive(PeerId, HeadInfo),
    /// Penalise a peer.
    Penalize(PeerId, Penalty),
    /// Restart the head-request interval.
    ResetHeadTimer,
    /// Report an event to the syncer's consumer.
    Emit(ConsensusEvent),
}

/// The syncer machine. See the module documentation.
#[derive(Debug)]
pub struct SyncerMachine {
    config: SyncerConfig,
    connected: HashSet<PeerId>,
    live: HashSet<PeerId>,
    outdated: HashSet<PeerId>,
    incompatible: HashSet<PeerId>,
    round_running: bool,
    /// The live set changed since the last round started: start one as soon as none runs.
    round_wanted: bool,
    last_round: Option<(usize, usize)>,
    established: bool,
    stats: SyncerStats,
    actions: VecDeque<SyncerAction>,
}

impl SyncerMachine {
    /// A machine with no peers.
    pub fn new(config: SyncerConfig) -> Self {
        Self {
            config,
            connected: HashSet::new(),
            live: HashSet::new(),
            outdated: HashSet::new(),
            incompatible: HashSet::new(),
            round_running: false,
            round_wanted: false,
            last_round: None,
            established: false,
            stats: SyncerStats::default(),
            actions: VecDeque::new(),
        }
    }

    /// Whether the node is established.
    pub fn is_established(&self) -> bool {
        self.established
    }

    /// Counters.
    pub fn stats(&self) -> SyncerStats {
        self.stats
    }

    /// Peers in live sync.
    pub fn live_peers(&self) -> usize {
        self.live.len()
    }

    /// The next action.
    pub fn poll_action(&mut self) -> Option<SyncerAction> {
        self.actions.pop_front()
    }

    /// Handles one input.
    pub fn handle(&mut self, input: SyncerInput, view: &SyncerView) {
        match input {
            SyncerInput::PeerJoined(peer) => {
                if self.connected.insert(peer) {
                    self.actions.push_back(SyncerAction::AddToMacro(peer));
                }
            }
            SyncerInput::PeerLeft(peer) => self.peer_left(peer),
            SyncerInput::Verdict(verdict) => self.on_verdict(verdict),
            SyncerInput::Live(event) => self.on_live(event),
            SyncerInput::HeadRoundDone(answers) => self.on_head_round(answers, view),
            SyncerInput::Checked(peer, result) => self.on_check(peer, result, view),
            SyncerInput::CheckTimer => {
                let mut outdated: Vec<_> = self.outdated.drain().collect();
                outdated.sort();
                self.actions.extend(outdated.into_iter().map(SyncerAction::AddToMacro));
                let mut incompatible: Vec<_> = self.incompatible.iter().copied().collect();
                incompatible.sort();
                self.actions.extend(incompatible.into_iter().map(SyncerAction::CheckHead));
            }
            SyncerInput::HeadTimer => self.round_wanted = true,
        }
        self.maybe_start_round();
        self.update_established();
    }

    fn add_live(&mut self, peer: PeerId) {
        if self.live.insert(peer) {
            self.actions.push_back(SyncerAction::AddToLive(peer));
        }
        self.round_wanted = true;
    }

    fn peer_left(&mut self, peer: PeerId) {
        if !self.connected.remove(&peer) {
            return;
        }
        self.actions.push_back(SyncerAction::RemoveFromMacro(peer));
        if self.live.remove(&peer) {
            self.actions.push_back(SyncerAction::RemoveFromLive(peer));
            self.round_wanted = true;
        }
        self.outdated.remove(&peer);
        self.incompatible.remove(&peer);
    }

    fn on_verdict(&mut self, verdict: MacroSyncReturn) {
        match verdict {
            // A verdict can arrive after its peer left: only connected peers join live sync.
            MacroSyncReturn::Good(p) if self.connected.contains(&p) => {
                self.outdated.remove(&p);
                self.add_live(p);
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
                    self.actions.push_back(SyncerAction::CheckHead(p));
                }
            }
            MacroSyncReturn::Conflicting(p) => {
                let penalty = Penalty::new(Severity::InvalidData, PenaltyReason::ConflictingChain);
                self.actions.push_back(SyncerAction::Penalize(p, penalty));
                let mut peers: Vec<_> = self.live.drain().collect();
                peers.sort();
                self.actions.extend(peers.iter().copied().map(SyncerAction::RemoveFromLive));
                peers.push(p);
                let mut outdated: Vec<_> = self.outdated.drain().collect();
                outdated.sort();
                peers.extend(outdated);
                self.actions.push_back(SyncerAction::Fallback(peers));
                self.actions.push_back(SyncerAction::Emit(ConsensusEvent::FellBack));
            }
        }
        self.actions.push_back(SyncerAction::Emit(ConsensusEvent::Verdict(verdict)));
    }

    fn on_live(&mut self, event: LiveSyncEvent) {
        match &event {
            LiveSyncEvent::AcceptedAnnouncedBlock(_) => {
                self.stats.accepted_announcements += 1;
                self.actions.push_back(SyncerAction::ResetHeadTimer);
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
                    self.actions.push_back(SyncerAction::AddToMacro(*p));
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
        self.actions.push_back(SyncerAction::Emit(ConsensusEvent::Live(event)));
    }

    fn on_check(&mut self, peer: PeerId, result: Result<ResponseHead, RequestError>, view: &SyncerView) {
        if !self.incompatible.contains(&peer) {
            return;
        }
        let head = match result {
            Ok(head) => head,
            Err(RequestError::Timeout) => {
                let penalty = Penalty::new(Severity::Minor, PenaltyReason::Unresponsive);
                return self.actions.push_back(SyncerAction::Penalize(peer, penalty));
            }
            Err(e) if e.is_peer_fault() => {
                let penalty = Penalty::new(Severity::InvalidData, PenaltyReason::MalformedResponse);
                return self.actions.push_back(SyncerAction::Penalize(peer, penalty));
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

    fn maybe_start_round(&mut self) {
        if !self.round_wanted || self.round_running {
            return;
        }
        self.round_wanted = false;
        if self.live.is_empty() {
            return;
        }
        let mut peers: Vec<_> = self.live.iter().copied().collect();
        peers.sort();
        self.round_running = true;
        self.actions.push_back(SyncerAction::StartHeadRound(peers));
        // The next periodic round comes one interval after this one.
        self.actions.push_back(SyncerAction::ResetHeadTimer);
    }

    fn on_head_round(&mut self, answers: Vec<(PeerId, HeadAnswer)>, view: &SyncerView) {
        self.round_running = false;
        let (mut known, mut unknown) = (0, 0);
        for (peer, answer) in answers {
            let Ok((head, knows)) = answer else { continue };
            if knows {
                known += 1;
                continue;
            }
            unknown += 1;
            if head.block_number > view.head.block_number {
                self.stats.heads_to_live += 1;
                self.actions.push_back(SyncerAction::HeadToLive(peer, head));
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
            self.actions.push_back(SyncerAction::Emit(ConsensusEvent::Established));
        } else if self.established && is_lost(&inputs, &self.config.established) {
            self.established = false;
            self.last_round = None;
            self.actions.push_back(SyncerAction::Emit(ConsensusEvent::Lost));
        }
    }
}

#[cfg(test)]
mod tests;
