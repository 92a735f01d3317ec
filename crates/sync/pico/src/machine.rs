//! The pico state machine (no I/O).
//!
//! Per peer: `RequestHead` → compare the peer's macro and election hashes with ours → fetch the
//! election block and the checkpoint that differ (`RequestBlock`, no body) → apply them in order →
//! `RequestHead` again, until the hashes match (Good). Apply rules:
//! - election block equal to ours: skip; while our chain is at its anchor: adopt it optimistically
//!   (intrinsic checks only); when it is the *next* election block after our macro head: verify it
//!   like any macro block (improvement over the reference, which declared Conflicting here);
//!   otherwise Conflicting;
//! - checkpoint equal to our macro head: skip; otherwise verify it by the macro-successor rule and
//!   the current validators' justification; failure is Conflicting.
//!
//! A peer whose macro head is older than ours is Outdated (the reference looped on it).

use petrel_blockchain::{LightBlockchain, PushResult};
use petrel_network_api::{DisconnectReason, PeerId, RequestError, Services};
use petrel_primitives::{Blake2bHash, Block, MacroBlock};
use petrel_protocol::{BlockRequestError, ResponseHead};
use petrel_sync_api::MacroSyncReturn;
use petrel_sync_api::driver::{Action, Incoming, Machine, Outgoing, PeerBook, RequestId};

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
    book: PeerBook<PeerState>,
    /// The peer whose election block we adopted optimistically, if any.
    optimistic_source: Option<PeerId>,
    /// Peers that stand behind our trusted election block on another one (bounded by the peers).
    doubters: std::collections::HashSet<PeerId>,
    stats: PicoStats,
}

impl Machine for PicoMachine {
    type Config = PicoConfig;
    type Stats = PicoStats;
    fn new(config: PicoConfig) -> Self {
        Self { config, ..Default::default() }
    }
    fn add_peer(&mut self, peer: PeerId, services: Option<Services>, _chain: &LightBlockchain) {
        PicoMachine::add_peer(self, peer, services);
    }
    fn remove_peer(&mut self, peer: &PeerId) {
        self.book.remove(peer);
    }
    fn drain_peers(&mut self) -> Vec<PeerId> {
        self.book.drain()
    }
    fn num_peers(&self) -> usize {
        self.book.peers.len()
    }
    fn poll_action(&mut self) -> Option<Action> {
        self.book.poll_action()
    }
    fn on_response(&mut self, id: RequestId, incoming: Incoming, chain: &mut LightBlockchain) {
        match incoming {
            Incoming::Head(r) => self.on_head(id, r, chain),
            Incoming::Block(r) => self.on_block(id, *r, chain),
            // Pico never asks for the macro chain.
            Incoming::MacroChain(_) => {}
        }
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
        self.book.request(peer, Outgoing::Head);
    }

    /// Starts syncing with a peer that advertises `services` (`None`: unknown peer).
    pub fn add_peer(&mut self, peer: PeerId, services: Option<Services>) {
        if self.book.peers.contains_key(&peer) {
            return;
        }
        if !services.is_some_and(|s| s.contains(self.config.required_services)) {
            self.book.emit(MacroSyncReturn::Incompatible(peer));
            return;
        }
        self.request_head(peer, 0);
    }

    /// A head response (or its failure) arrived.
    pub fn on_head(&mut self, id: RequestId, result: Result<ResponseHead, RequestError>, chain: &mut LightBlockchain) {
        let Some(peer) = self.book.answered(id) else { return };
        let Some(PeerState::AwaitingHead { round }) = self.book.peers.get(&peer) else { return };
        let round = *round;
        let head = match result {
            Ok(h) => h,
            Err(e) => return self.book.request_failed(peer, &e),
        };
        let ours = chain.head();
        if head.macro_hash == ours.macro_hash && head.election_hash == ours.election_hash {
            return self.book.finish(peer, MacroSyncReturn::Good(peer));
        }
        if head.block_number < chain.macro_head().block_number() {
            // Behind us. One lagging peer is normal; but if our chain rests on an election block
            // taken on trust and several other peers all stand behind it on other election
            // blocks, the trusted block may be a fabrication from the future: only verification
            // (the fallback) can tell.
            if chain.is_optimistic() && head.election_hash != ours.election_hash && self.optimistic_source != Some(peer)
            {
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
            self.book.request(peer, Outgoing::Block { hash: *hash });
        }
        self.book.peers.insert(peer, PeerState::AwaitingBlocks { round, wanted });
    }

    /// A block response (or its failure) arrived.
    pub fn on_block(
        &mut self,
        id: RequestId,
        result: Result<Result<Block, BlockRequestError>, RequestError>,
        chain: &mut LightBlockchain,
    ) {
        let Some(peer) = self.book.answered(id) else { return };
        let block = match result {
            Ok(Ok(block)) => block,
            // It announced this macro block in its head; macro blocks are never pruned.
            Ok(Err(_)) => return self.book.fail(peer, DisconnectReason::Malicious),
            Err(e) => return self.book.request_failed(peer, &e),
        };
        let Some(PeerState::AwaitingBlocks { wanted, .. }) = self.book.peers.get_mut(&peer) else { return };
        let hash = block.hash();
        let slot = wanted.iter_mut().find(|(h, got)| *h == hash && got.is_none());
        match (slot, block) {
            (Some(slot), Block::Macro(m)) => slot.1 = Some(m),
            // Not what we asked for, or not a macro block: provably bad.
            _ => return self.book.fail(peer, DisconnectReason::Malicious),
        }
        if wanted.iter().any(|(_, got)| got.is_none()) {
            return;
        }
        let Some(PeerState::AwaitingBlocks { round, wanted }) = self.book.peers.remove(&peer) else { return };
        for (_, block) in wanted {
            let Some(block) = block else { continue };
            if let Err(verdict) = self.apply(peer, block, chain) {
                return self.book.finish(peer, verdict);
            }
        }
        self.request_head(peer, round + 1);
    }

    fn apply(&mut self, peer: PeerId, block: MacroBlock, chain: &mut LightBlockchain) -> Result<(), MacroSyncReturn> {
        let hash = block.hash();
        if hash == chain.election_head().hash() || hash == chain.macro_head().hash() {
            return Ok(());
        }
        let number = block.block_number();
        if number == chain.election_head().block_number() || number == chain.macro_head().block_number() {
            // Same height as one of our heads but another hash: another fork.
            return Err(MacroSyncReturn::Conflicting(peer));
        }
        if number < chain.macro_head().block_number() {
            // Older than what we have: the peer is behind on this part.
            return Err(MacroSyncReturn::Outdated(peer));
        }
        let policy = *chain.policy();
        let next_election = policy.election_block_after(chain.macro_head().block_number());
        let result = if block.is_election() && chain.at_anchor() && block.block_number() > next_election {
            let r = chain.push_election_pico(block);
            if r.is_ok() {
                self.optimistic_source = Some(peer);
                self.stats.optimistic_adoptions += 1;
            }
            r
        } else if block.is_election() && block.block_number() > next_election {
            // An election block we cannot verify from here.
            return Err(MacroSyncReturn::Conflicting(peer));
        } else {
            let r = chain.push_macro(block);
            if matches!(r, Ok(PushResult::Extended)) {
                self.stats.verified_blocks += 1;
            }
            r
        };
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.is_peer_fault() => {
                tracing::debug!(target: "sync::pico", %peer, error = %e, "block does not apply");
                Err(MacroSyncReturn::Conflicting(peer))
            }
            Err(e) => {
                // Our own store failed (e.g. the light-chain file): not the peer's doing.
                tracing::warn!(target: "sync::pico", %peer, error = %e, "cannot store the light chain");
                Err(MacroSyncReturn::Outdated(peer))
            }
        }
    }
}
