//! The interfaces between sync strategies and the consensus layer.
//!
//! A macro sync brings the node to a peer's macro state and reports one [`MacroSyncReturn`] per peer;
//! a live sync then follows new blocks. Consensus moves peers between the two (see
//! `petrel-consensus`).
//!
//! # Overview
//! - [`machine`]: the one shape of every sync machine ([`machine::Machine`], its
//!   [`machine::Input`]s and [`machine::Action`]s) and the [`machine::PeerBook`] they share.
//! - [`driver::MachineDriver`]: the one async driver that runs any machine over a network, with
//!   its heavy work on the blocking pool.
//! - [`queue::SyncQueue`]: the ordered multi-peer fetch queue.
//! - [`light_chain`]: the light chain as the pico and light machines see it.
//! - [`testing`]: made-up blocks and views, and a harness, for act → expect tests of machines.

pub mod driver;
pub mod light_chain;
pub mod machine;
pub mod queue;
pub mod testing;

pub use machine::Time;

use std::collections::HashSet;

use futures::Stream;
use petrel_network_api::PeerId;

/// The verdict of a macro sync about one peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MacroSyncReturn {
    /// We reached this peer's macro state: it can join live sync.
    Good(PeerId),
    /// The peer is behind us (or has nothing for us): check it again later.
    Outdated(PeerId),
    /// The peer lacks the services we need; it may still serve live sync.
    Incompatible(PeerId),
    /// The peer's chain cannot be reconciled optimistically (pico only): fall back.
    Conflicting(PeerId),
}

impl MacroSyncReturn {
    /// The peer concerned.
    pub fn peer(&self) -> PeerId {
        match *self {
            Self::Good(p) | Self::Outdated(p) | Self::Incompatible(p) | Self::Conflicting(p) => p,
        }
    }

    /// The verdict's name for metrics and status: `good`, `outdated`, `incompatible` or
    /// `conflicting`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Good(_) => "good",
            Self::Outdated(_) => "outdated",
            Self::Incompatible(_) => "incompatible",
            Self::Conflicting(_) => "conflicting",
        }
    }
}

/// A macro sync strategy: a stream of per-peer verdicts.
///
/// The stream ends only when the strategy is shut down; "nothing to report" is `Pending`.
pub trait MacroSync: Stream<Item = MacroSyncReturn> + Unpin + Send {
    /// Starts syncing with a peer (again).
    fn add_peer(&mut self, peer: PeerId);
    /// Stops syncing with a peer (it left); its outstanding responses are ignored.
    fn remove_peer(&mut self, peer: &PeerId);
    /// Stops syncing with every peer and returns them.
    fn drain_peers(&mut self) -> Vec<PeerId>;
    /// Switches to the fallback strategy with these peers. Only meaningful for strategies that have
    /// one (pico → light); others ignore it.
    fn fallback(&mut self, _peers: Vec<PeerId>) {}
    /// Number of peers being synced.
    fn num_peers(&self) -> usize;
    /// The highest block number a peer listed that the sync works towards, if it knows one (for
    /// progress reports).
    fn target(&self) -> Option<u32> {
        None
    }
    /// What zero-knowledge light sync did, for strategies that use proofs.
    fn proof_stats(&self) -> Option<ProofStats> {
        None
    }
}

/// What zero-knowledge light sync did (for status and the devnet summary).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProofStats {
    /// Proof-chain requests sent.
    pub requests: u64,
    /// Segment proofs verified.
    pub segments_verified: u64,
    /// Bytes of proof chains received.
    pub bytes: u64,
    /// Microseconds spent verifying them.
    pub verify_micros: u64,
    /// The epoch the proofs brought the chain to.
    pub proven_epoch: Option<u32>,
}

/// What a live sync reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LiveSyncEvent {
    /// A gossiped block extended our chain.
    AcceptedAnnouncedBlock(petrel_primitives::Blake2bHash),
    /// A buffered block was applied after its parent arrived.
    AcceptedBufferedBlock(petrel_primitives::Blake2bHash),
    /// Missing blocks were fetched and applied.
    ReceivedMissingBlocks(usize),
    /// A block was rejected.
    RejectedBlock(petrel_primitives::Blake2bHash),
    /// The peer is too far behind: back to macro sync's outdated set.
    Behind(PeerId),
    /// The peer is too far ahead: back to macro sync.
    Ahead(PeerId),
}

/// A live sync strategy: follows gossiped blocks with a set of peers.
pub trait LiveSync: Stream<Item = LiveSyncEvent> + Unpin + Send {
    /// Adds a peer to follow.
    fn add_peer(&mut self, peer: PeerId);
    /// Removes a peer.
    fn remove_peer(&mut self, peer: &PeerId);
    /// Peers followed.
    fn peers(&self) -> Vec<PeerId>;
    /// A live peer's head, learned by consensus (a head round found a head we did not know):
    /// live sync fetches what lies between our head and it.
    fn peer_head(&mut self, peer: PeerId, head: petrel_primitives::wire::HeadInfo);
    /// Number of peers followed.
    fn num_peers(&self) -> usize {
        self.peers().len()
    }
}

/// An ordered set of peers with a round-robin cursor (protocol-reference §6.9).
#[derive(Clone, Debug, Default)]
pub struct PeerList {
    order: Vec<PeerId>,
    set: HashSet<PeerId>,
    cursor: usize,
}

impl PeerList {
    /// Adds a peer at the end; returns false if it was present.
    pub fn add(&mut self, peer: PeerId) -> bool {
        if self.set.insert(peer) {
            self.order.push(peer);
            true
        } else {
            false
        }
    }
    /// Removes a peer; returns false if it was absent.
    pub fn remove(&mut self, peer: &PeerId) -> bool {
        if !self.set.remove(peer) {
            return false;
        }
        if let Some(i) = self.order.iter().position(|p| p == peer) {
            self.order.remove(i);
            if i < self.cursor {
                self.cursor -= 1;
            }
        }
        true
    }
    /// Whether the peer is listed.
    pub fn contains(&self, peer: &PeerId) -> bool {
        self.set.contains(peer)
    }
    /// Number of peers.
    pub fn len(&self) -> usize {
        self.order.len()
    }
    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
    /// The next peer in round-robin order.
    pub fn next_peer(&mut self) -> Option<PeerId> {
        if self.order.is_empty() {
            return None;
        }
        if self.cursor >= self.order.len() {
            self.cursor = 0;
        }
        let p = self.order[self.cursor];
        self.cursor += 1;
        Some(p)
    }
    /// The peers in order.
    pub fn iter(&self) -> impl Iterator<Item = &PeerId> {
        self.order.iter()
    }
    /// Removes and returns all peers.
    pub fn drain(&mut self) -> Vec<PeerId> {
        self.set.clear();
        self.cursor = 0;
        std::mem::take(&mut self.order)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_list_round_robin_survives_removal() {
        let p: Vec<_> = (0..4).map(PeerId::from_index).collect();
        let mut list = PeerList::default();
        for x in &p {
            assert!(list.add(*x));
        }
        assert!(!list.add(p[0]));
        assert_eq!(list.next_peer(), Some(p[0]));
        assert_eq!(list.next_peer(), Some(p[1]));
        assert!(list.remove(&p[0]));
        assert_eq!(list.next_peer(), Some(p[2]));
        assert_eq!(list.next_peer(), Some(p[3]));
        assert_eq!(list.next_peer(), Some(p[1]));
        assert_eq!(list.drain().len(), 3);
        assert_eq!(list.next_peer(), None);
    }
}
