//! The light-sync state machine (no I/O).

use std::collections::{BTreeMap, HashMap, VecDeque};

use petrel_blockchain::{LightBlockchain, PushResult};
use petrel_network_api::{DisconnectReason, PeerId, RequestError, Services};
use petrel_primitives::{Blake2bHash, Block, MacroBlock};
use petrel_protocol::{BlockRequestError, MAX_EPOCHS, MacroChain, MacroChainError};
use petrel_sync_api::MacroSyncReturn;
use petrel_sync_api::driver::{Action, Incoming, Machine, Outgoing, PeerBook, RequestId};

/// Settings.
#[derive(Clone, Copy, Debug)]
pub struct LightConfig {
    /// Services a peer must advertise.
    pub required_services: Services,
    /// Election hashes asked for per macro-chain request (at most [`MAX_EPOCHS`]).
    pub max_epochs: u16,
    /// Block requests in flight per peer. Higher hides latency; each costs one block of memory
    /// (a few KiB of header and justification) while it waits to be applied in order.
    pub window: usize,
}

impl Default for LightConfig {
    fn default() -> Self {
        Self { required_services: Services::MACRO_CHAIN, max_epochs: MAX_EPOCHS, window: 16 }
    }
}

#[derive(Debug)]
enum PeerState {
    Discovering,
    /// Has blocks for us, but another peer is fetching: asked again when that one is done, so the
    /// election chain is downloaded once, not once per peer.
    Parked,
    Fetching(Fetch),
}

#[derive(Debug, Default)]
struct Fetch {
    /// Hashes not yet requested, with their sequence and block numbers.
    queue: VecDeque<(usize, Blake2bHash, u32)>,
    /// Requests in flight: id → (sequence, hash).
    in_flight: HashMap<RequestId, (usize, Blake2bHash)>,
    /// Received blocks waiting for their turn; `None` for a block skipped because another peer's
    /// sync already adopted its height.
    received: BTreeMap<usize, Option<MacroBlock>>,
    /// Next sequence number to apply.
    next: usize,
    /// Number of blocks in this round.
    total: usize,
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LightStats {
    /// Macro-chain requests sent.
    pub macro_chain_requests: u64,
    /// Block requests sent.
    pub block_requests: u64,
    /// Blocks verified and adopted.
    pub verified_blocks: u64,
}

/// The light machine.
#[derive(Debug, Default)]
pub struct LightMachine {
    config: LightConfig,
    book: PeerBook<PeerState>,
    stats: LightStats,
}

impl Machine for LightMachine {
    type Config = LightConfig;
    type Stats = LightStats;
    fn new(config: LightConfig) -> Self {
        Self { config, ..Default::default() }
    }
    fn add_peer(&mut self, peer: PeerId, services: Option<Services>, chain: &LightBlockchain) {
        LightMachine::add_peer(self, peer, services, chain);
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
            Incoming::MacroChain(r) => self.on_macro_chain(id, r, chain),
            Incoming::Block(r) => self.on_block(id, *r, chain),
            // Light sync never asks for heads.
            Incoming::Head(_) => {}
        }
    }
    fn resume(&mut self, chain: &LightBlockchain) {
        LightMachine::resume(self, chain);
    }
    fn stats(&self) -> LightStats {
        self.stats
    }
}

impl LightMachine {
    fn discover(&mut self, peer: PeerId, chain: &LightBlockchain) {
        let mut locators = Vec::with_capacity(2);
        let macro_hash = chain.macro_head().hash();
        let election_hash = chain.election_head().hash();
        if macro_hash != election_hash {
            locators.push(macro_hash);
        }
        locators.push(election_hash);
        self.book.peers.insert(peer, PeerState::Discovering);
        self.stats.macro_chain_requests += 1;
        let max_epochs = self.config.max_epochs.clamp(1, MAX_EPOCHS);
        self.book.request(peer, Outgoing::MacroChain { locators, max_epochs });
    }

    /// Starts syncing with a peer advertising `services` (`None`: unknown peer).
    pub fn add_peer(&mut self, peer: PeerId, services: Option<Services>, chain: &LightBlockchain) {
        if self.book.peers.contains_key(&peer) {
            return;
        }
        if !services.is_some_and(|s| s.contains(self.config.required_services)) {
            self.book.emit(MacroSyncReturn::Incompatible(peer));
            return;
        }
        self.discover(peer, chain);
    }

    /// Asks parked peers again once nobody is fetching. The driver calls it before handling
    /// actions.
    pub fn resume(&mut self, chain: &LightBlockchain) {
        if self.book.peers.values().any(|s| matches!(s, PeerState::Fetching(_))) {
            return;
        }
        let parked: Vec<_> =
            self.book.peers.iter().filter(|(_, s)| matches!(s, PeerState::Parked)).map(|(p, _)| *p).collect();
        for peer in parked {
            self.discover(peer, chain);
        }
    }

    /// A macro-chain answer (or its failure) arrived.
    pub fn on_macro_chain(
        &mut self,
        id: RequestId,
        result: Result<Result<MacroChain, MacroChainError>, RequestError>,
        chain: &LightBlockchain,
    ) {
        let Some(peer) = self.book.answered(id) else { return };
        if !matches!(self.book.peers.get(&peer), Some(PeerState::Discovering)) {
            return;
        }
        let answer = match result {
            Ok(Ok(answer)) => answer,
            // The peer does not know our locators: it is behind or on another chain.
            Ok(Err(_)) => return self.book.finish(peer, MacroSyncReturn::Outdated(peer)),
            Err(e) => return self.book.request_failed(peer, &e),
        };
        if answer.epochs.len() > usize::from(self.config.max_epochs.clamp(1, MAX_EPOCHS)) {
            return self.book.fail(peer, DisconnectReason::Malicious);
        }
        let policy = *chain.policy();
        let our_epoch = policy.epoch_at(chain.election_head().block_number());
        let mut checkpoint = answer.checkpoint;
        if let Some((number, _)) = checkpoint {
            let expected_epoch = our_epoch + answer.epochs.len() as u32 + 1;
            if !policy.is_macro_block_at(number)
                || policy.is_election_block_at(number)
                || policy.epoch_at(number) != expected_epoch
            {
                return self.book.fail(peer, DisconnectReason::Malicious);
            }
            if number <= chain.macro_head().block_number() {
                checkpoint = None;
            }
        }
        if answer.epochs.is_empty() && checkpoint.is_none() {
            return self.book.finish(peer, MacroSyncReturn::Good(peer));
        }
        if self.book.peers.values().any(|s| matches!(s, PeerState::Fetching(_))) {
            self.book.peers.insert(peer, PeerState::Parked);
            return;
        }
        let mut items: Vec<(Blake2bHash, u32)> = answer
            .epochs
            .into_iter()
            .enumerate()
            .map(|(i, h)| (h, policy.election_block_of(our_epoch + i as u32 + 1)))
            .collect();
        items.extend(checkpoint.map(|(n, h)| (h, n)));
        let queue = items.into_iter().enumerate().map(|(seq, (h, n))| (seq, h, n)).collect::<VecDeque<_>>();
        let fetch = Fetch { total: queue.len(), queue, ..Default::default() };
        self.book.peers.insert(peer, PeerState::Fetching(fetch));
        self.fill_window(peer, chain.macro_head().block_number());
    }

    fn fill_window(&mut self, peer: PeerId, adopted_up_to: u32) {
        let window = self.config.window.max(1);
        let mut issue = Vec::new();
        if let Some(PeerState::Fetching(f)) = self.book.peers.get_mut(&peer) {
            while f.in_flight.len() + f.received.len() + issue.len() < window {
                let Some((seq, hash, number)) = f.queue.pop_front() else { break };
                if number <= adopted_up_to {
                    // Another peer's sync already took us past it: nothing to fetch.
                    f.received.insert(seq, None);
                } else {
                    issue.push((seq, hash));
                }
            }
        }
        for (seq, hash) in issue {
            let id = self.book.request(peer, Outgoing::Block { hash });
            if let Some(PeerState::Fetching(f)) = self.book.peers.get_mut(&peer) {
                f.in_flight.insert(id, (seq, hash));
            }
            self.stats.block_requests += 1;
        }
    }

    /// A block answer (or its failure) arrived.
    pub fn on_block(
        &mut self,
        id: RequestId,
        result: Result<Result<Block, BlockRequestError>, RequestError>,
        chain: &mut LightBlockchain,
    ) {
        let Some(peer) = self.book.answered(id) else { return };
        let Some(PeerState::Fetching(fetch)) = self.book.peers.get_mut(&peer) else { return };
        let Some((seq, hash)) = fetch.in_flight.remove(&id) else { return };
        match result {
            Ok(Ok(Block::Macro(block))) if block.hash() == hash => {
                fetch.received.insert(seq, Some(block));
            }
            // It listed this election block itself; macro blocks are never pruned.
            Ok(Err(_)) => return self.book.fail(peer, DisconnectReason::Malicious),
            Err(e) => return self.book.request_failed(peer, &e),
            // Not the block we asked for.
            Ok(Ok(_)) => return self.book.fail(peer, DisconnectReason::Malicious),
        }
        // Apply in order.
        loop {
            let Some(PeerState::Fetching(fetch)) = self.book.peers.get_mut(&peer) else { return };
            let Some(entry) = fetch.received.remove(&fetch.next) else { break };
            fetch.next += 1;
            let done = fetch.next == fetch.total;
            let result = match entry {
                Some(block) => chain.push_macro(block),
                None => Ok(PushResult::Known),
            };
            match result {
                Ok(PushResult::Extended) => self.stats.verified_blocks += 1,
                Ok(PushResult::Known | PushResult::Ignored) => {}
                Err(e) if e.is_peer_fault() => {
                    tracing::info!(target: "sync::light", %peer, error = %e, "peer served a block that does not verify");
                    return self.book.fail(peer, DisconnectReason::Malicious);
                }
                Err(e) => {
                    // Our own store failed (e.g. the light-chain file): not the peer's doing.
                    tracing::warn!(target: "sync::light", %peer, error = %e, "cannot store the light chain");
                    return self.book.finish(peer, MacroSyncReturn::Outdated(peer));
                }
            }
            if done {
                // Ask again: the peer may have more, or reports nothing new (Good).
                self.discover(peer, chain);
                return;
            }
        }
        self.fill_window(peer, chain.macro_head().block_number());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use petrel_protocol::MacroChain;

    #[test]
    fn block_requests_stay_within_the_window() {
        let genesis = {
            let key = petrel_primitives::SchnorrSecretKey::from_seed(&[1; 32]);
            petrel_primitives::GenesisConfig {
                network_id: 1,
                timestamp: 0,
                policy: petrel_primitives::Policy::TEST,
                validators: vec![petrel_primitives::genesis::GenesisValidator {
                    public_key: key.public_key().to_hex(),
                    reward_address: "00".repeat(32),
                    slots: petrel_primitives::Policy::TEST.slots,
                }],
                accounts: vec![],
            }
        };
        let chain = LightBlockchain::new(&genesis, None, None).unwrap();
        let mut m = LightMachine::new(LightConfig { window: 4, ..Default::default() });
        let peer = PeerId::from_index(1);
        m.add_peer(peer, Some(Services::HISTORY_NODE), &chain);
        let Some(Action::Request { id, request: Outgoing::MacroChain { .. }, .. }) = m.poll_action() else {
            panic!("macro chain first")
        };
        let epochs = (0..10u8).map(|i| Blake2bHash([i; 32])).collect();
        m.on_macro_chain(id, Ok(Ok(MacroChain { epochs, checkpoint: None })), &chain);
        let mut requested = 0;
        while let Some(a) = m.poll_action() {
            assert!(matches!(a, Action::Request { request: Outgoing::Block { .. }, .. }));
            requested += 1;
        }
        assert_eq!(requested, 4);
        assert_eq!(m.stats().block_requests, 4);
    }
}
