//! The pico state machine (no I/O).
//!
//! Per peer: `RequestHead` → compare the peer's macro and election hashes with ours → fetch the
//! election block and the checkpoint that differ (`RequestBlock`, no body) → apply them in order
//! (a job, [`apply_blocks`], off the executor) → `RequestHead` again, until the hashes match (Good).
//! Apply rules:
//! - election block equal to ours: skip; while our chain is at its anchor: adopt it optimistically
//!   (intrinsic checks only); when it is the *next* election block after our macro head: verify it
//!   like any macro block (improvement over the reference, which declared Conflicting here);
//!   otherwise Conflicting;
//! - checkpoint equal to our macro head: skip; otherwise verify it by the macro-successor rule and
//!   the current validators' justification; failure is Conflicting.
//!
//! A peer whose macro head is older than ours is Outdated (the reference looped on it).

use std::collections::{HashMap, HashSet};

use petrel_blockchain::{LightBlockchain, PushResult};
use petrel_network_api::{PeerId, PenaltyReason, Services};
use petrel_primitives::{Blake2bHash, Block, MacroBlock};
use petrel_protocol::{AnyResponse, RequestBlock, RequestHead, ResponseHead};
use petrel_sync_api::MacroSyncReturn;
use petrel_sync_api::light_chain::{LightView, SharedLightChain, lock};
use petrel_sync_api::machine::{Action, Input, JobId, Machine, PeerBook, Time};

/// Settings.
#[derive(Clone, Copy, Debug)]
pub struct PicoConfig {
    /// Services a peer must advertise to be synced from.
    pub required_services: Services,
    /// Head rounds per peer before giving up on a peer that keeps moving (it is then emitted
    /// Good: live sync follows the rest).
    pub max_rounds: u32,
    /// Distinct peers that must report being behind an election block we took on trust, on
    /// another election block, before that block is treated as conflicting. Lower falls back on
    /// any lagging peer; higher lets a liar claiming a future block hold out longer.
    pub doubters_for_conflict: usize,
}

impl Default for PicoConfig {
    fn default() -> Self {
        Self { required_services: Services::MACRO_CHAIN, max_rounds: 8, doubters_for_conflict: 2 }
    }
}

#[derive(Debug)]
enum PeerState {
    AwaitingHead { round: u32 },
    AwaitingBlocks { round: u32, wanted: Vec<(Blake2bHash, Option<MacroBlock>)> },
    Applying { job: JobId },
}

/// Pico's job: apply the blocks one peer served, in order, deciding against the chain as it is
/// when the job runs.
#[derive(Debug, PartialEq, Eq)]
pub struct PicoWork {
    /// The blocks: the peer's election block and/or checkpoint, in this order.
    pub blocks: Vec<MacroBlock>,
    /// The chain generation they were fetched for: after a reset (the fallback to light sync)
    /// they are not applied.
    pub generation: u64,
}

/// What [`apply_blocks`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum PicoOutcome {
    /// Every block applied (or was already known); `optimistic`: an election block was adopted on
    /// trust; `verified`: macro blocks verified and adopted.
    Applied {
        /// An election block was adopted on trust.
        optimistic: bool,
        /// Macro blocks verified and adopted.
        verified: u64,
    },
    /// A block is at the height of one of ours with another hash, cannot be verified from our
    /// chain, or fails verification: the peer's chain does not reconcile with ours.
    Conflicting(String),
    /// A block is older than our macro head: the peer is behind on this part.
    Behind,
    /// Our own light-chain store failed: not the peer's doing.
    StoreFailed(String),
    /// The chain was reset since the blocks were fetched: nothing applied.
    Stale,
}

/// Applies a peer's blocks to the light chain (the pico rules of the module documentation), unless
/// the chain was reset since they were fetched.
pub fn apply_blocks(chain: &mut LightBlockchain, work: PicoWork) -> PicoOutcome {
    if chain.generation() != work.generation {
        return PicoOutcome::Stale;
    }
    let blocks = work.blocks;
    let (mut optimistic, mut verified) = (false, 0);
    for block in blocks {
        let hash = block.hash();
        if hash == chain.election_head().hash() || hash == chain.macro_head().hash() {
            continue;
        }
        let number = block.block_number();
        if number == chain.election_head().block_number() || number == chain.macro_head().block_number() {
            return PicoOutcome::Conflicting(format!("block {number} differs from ours"));
        }
        if number < chain.macro_head().block_number() {
            return PicoOutcome::Behind;
        }
        let next_election = chain.policy().election_block_after(chain.macro_head().block_number());
        let result = if block.is_election() && chain.at_anchor() && number > next_election {
            let r = chain.push_election_pico(block);
            optimistic |= r.is_ok();
            r
        } else if block.is_election() && number > next_election {
            return PicoOutcome::Conflicting(format!("election block {number} cannot be verified from our chain"));
        } else {
            let r = chain.push_macro(block);
            verified += u64::from(matches!(r, Ok(PushResult::Extended)));
            r
        };
        match result {
            Ok(_) => {}
            Err(e) if e.is_peer_fault() => return PicoOutcome::Conflicting(e.to_string()),
            Err(e) => return PicoOutcome::StoreFailed(e.to_string()),
        }
    }
    PicoOutcome::Applied { optimistic, verified }
}

/// Counters for tests, benches and progress.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PicoStats {
    /// Head requests sent.
    pub head_requests: u64,
    /// Block requests sent.
    pub block_requests: u64,
    /// Election blocks adopted optimistically.
    pub optimistic_adoptions: u64,
    /// Macro blocks verified and adopted.
    pub verified_blocks: u64,
}

/// The pico machine.
#[derive(Debug, Default)]
pub struct PicoMachine {
    config: PicoConfig,
    book: PeerBook<PeerState, PicoWork>,
    /// The peer whose election block we adopted optimistically, if any.
    optimistic_source: Option<PeerId>,
    /// Peers that stand behind our trusted election block on another one (bounded by the peers).
    doubters: HashSet<PeerId>,
    /// Jobs running: job → (peer, round). At most one per peer.
    jobs: HashMap<JobId, (PeerId, u32)>,
    stats: PicoStats,
}

impl Machine for PicoMachine {
    type Config = PicoConfig;
    type Chain = SharedLightChain;
    type View = LightView;
    type Work = PicoWork;
    type Outcome = PicoOutcome;
    type Event = MacroSyncReturn;
    type Gossip = ();
    type Report = ();
    type Stats = PicoStats;

    fn new(config: PicoConfig) -> Self {
        Self { config, ..Default::default() }
    }
    fn view(chain: &SharedLightChain, _input: &Input<PicoOutcome>) -> LightView {
        LightView::of_shared(chain)
    }
    fn execute(chain: &SharedLightChain, work: PicoWork) -> PicoOutcome {
        apply_blocks(&mut lock(chain), work)
    }
    fn handle(&mut self, input: Input<PicoOutcome>, _now: Time, view: &LightView) {
        match input {
            Input::PeerJoined { peer, services } => self.add_peer(peer, services),
            Input::PeerLeft { peer } => {
                self.book.remove(&peer);
                self.doubters.remove(&peer);
            }
            Input::Response { id, response } => {
                let Some(peer) = self.book.answered(id) else { return };
                match response {
                    Ok(AnyResponse::Head(head)) => self.on_head(peer, head, view),
                    Ok(AnyResponse::Block(block)) => self.on_block(peer, block, view.generation),
                    // Pico asks for nothing else: an answer of another type is the driver's bug.
                    Ok(_) => {}
                    Err(e) => self.book.request_failed(peer, &e),
                }
            }
            Input::Applied { job, outcome } => self.on_applied(job, outcome),
            // Pico follows no gossip and asks heads itself.
            Input::Gossip(_) | Input::PeerHead { .. } | Input::Report(()) | Input::Tick => {}
        }
    }
    fn poll_action(&mut self) -> Option<Action<PicoWork>> {
        self.book.poll_action()
    }
    fn drain_peers(&mut self) -> Vec<PeerId> {
        self.doubters.clear();
        self.book.drain()
    }
    fn num_peers(&self) -> usize {
        self.book.peers.len()
    }
    fn peers(&self) -> Vec<PeerId> {
        self.book.peers.keys().copied().collect()
    }
    fn stats(&self) -> PicoStats {
        self.stats
    }
}

impl PicoMachine {
    /// The peer whose election block was adopted on trust.
    pub fn optimistic_source(&self) -> Option<PeerId> {
        self.optimistic_source
    }

    fn request_head(&mut self, peer: PeerId, round: u32) {
        self.book.peers.insert(peer, PeerState::AwaitingHead { round });
        self.stats.head_requests += 1;
        self.book.request(peer, RequestHead);
    }

    fn add_peer(&mut self, peer: PeerId, services: Option<Services>) {
        if self.book.peers.contains_key(&peer) {
            return;
        }
        if !services.is_some_and(|s| s.contains(self.config.required_services)) {
            self.book.emit(MacroSyncReturn::Incompatible(peer));
            return;
        }
        self.request_head(peer, 0);
    }

    fn on_head(&mut self, peer: PeerId, head: ResponseHead, view: &LightView) {
        let Some(PeerState::AwaitingHead { round }) = self.book.peers.get(&peer) else { return };
        let round = *round;
        let ours = view.head;
        if head.macro_hash == ours.macro_hash && head.election_hash == ours.election_hash {
            return self.book.finish(peer, MacroSyncReturn::Good(peer));
        }
        if head.block_number < view.macro_number {
            // Behind us. One lagging peer is normal; but if our chain rests on an election block
            // taken on trust and several other peers all stand behind it on other election
            // blocks, the trusted block may be a fabrication from the future: only verification
            // (the fallback) can tell.
            if view.optimistic && head.election_hash != ours.election_hash && self.optimistic_source != Some(peer) {
                self.doubters.insert(peer);
                if self.doubters.len() >= self.config.doubters_for_conflict {
                    return self.book.finish(peer, MacroSyncReturn::Conflicting(peer));
                }
            }
            return self.book.finish(peer, MacroSyncReturn::Outdated(peer));
        }
        if round >= self.config.max_rounds {
            // The peer keeps moving; live sync follows from here.
            return self.book.finish(peer, MacroSyncReturn::Good(peer));
        }
        let mut wanted = Vec::with_capacity(2);
        if head.election_hash != ours.election_hash {
            wanted.push((head.election_hash, None));
        }
        if head.macro_hash != head.election_hash && head.macro_hash != ours.macro_hash {
            wanted.push((head.macro_hash, None));
        }
        if wanted.is_empty() {
            // Same election block, peer's macro head is its election block and ours is newer.
            return self.book.finish(peer, MacroSyncReturn::Outdated(peer));
        }
        for (hash, _) in &wanted {
            self.stats.block_requests += 1;
            self.book.request(peer, RequestBlock { hash: *hash, include_body: false });
        }
        self.book.peers.insert(peer, PeerState::AwaitingBlocks { round, wanted });
    }

    fn on_block(&mut self, peer: PeerId, result: Result<Block, petrel_protocol::BlockRequestError>, generation: u64) {
        let block = match result {
            Ok(block) => block,
            // It announced this macro block in its head; macro blocks are never pruned.
            Err(_) => return self.book.ban(peer, PenaltyReason::MissingAnnounced),
        };
        let Some(PeerState::AwaitingBlocks { wanted, .. }) = self.book.peers.get_mut(&peer) else { return };
        let hash = block.hash();
        let slot = wanted.iter_mut().find(|(h, got)| *h == hash && got.is_none());
        match (slot, block) {
            (Some(slot), Block::Macro(m)) => slot.1 = Some(m),
            // Not what we asked for, or not a macro block: provably bad.
            _ => return self.book.ban(peer, PenaltyReason::WrongAnswer),
        }
        if wanted.iter().any(|(_, got)| got.is_none()) {
            return;
        }
        let Some(PeerState::AwaitingBlocks { round, wanted }) = self.book.peers.remove(&peer) else { return };
        let blocks = wanted.into_iter().filter_map(|(_, b)| b).collect();
        let job = self.book.apply(PicoWork { blocks, generation });
        self.jobs.insert(job, (peer, round));
        self.book.peers.insert(peer, PeerState::Applying { job });
    }

    fn on_applied(&mut self, job: JobId, outcome: PicoOutcome) {
        let Some((peer, round)) = self.jobs.remove(&job) else { return };
        if let PicoOutcome::Applied { optimistic, verified } = outcome {
            // The chain changed whether or not the peer is still here.
            if optimistic {
                self.optimistic_source = Some(peer);
                self.stats.optimistic_adoptions += 1;
            }
            self.stats.verified_blocks += verified;
        }
        // The outcome of this peer's current job only (it may have left and come back meanwhile).
        if !matches!(self.book.peers.get(&peer), Some(PeerState::Applying { job: j }) if *j == job) {
            return;
        }
        match outcome {
            PicoOutcome::Applied { .. } => self.request_head(peer, round + 1),
            PicoOutcome::Conflicting(_) => self.book.finish(peer, MacroSyncReturn::Conflicting(peer)),
            PicoOutcome::Behind | PicoOutcome::StoreFailed(_) | PicoOutcome::Stale => {
                self.book.finish(peer, MacroSyncReturn::Outdated(peer))
            }
        }
    }
}

#[cfg(test)]
mod tests;
