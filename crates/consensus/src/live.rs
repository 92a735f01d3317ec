//! Block live sync (protocol-reference §7.3–7.5): follows gossiped blocks (headers for light and
//! pico nodes, full blocks for history and full nodes), buffers out-of-order blocks inside a
//! bounded window, fetches missing blocks through a bounded number of requests, and sends peers that
//! are far behind or ahead back to macro sync.
//!
//! Classification of an announced block `b` (our head `H`, macro head `M`):
//! 1. from a peer not in live sync: Ignore;
//! 2. body presence differs from what we follow: Reject;
//! 3. known: Accept;
//! 4. `b < H − tolerate_past_max`: Ignore, the sender is Behind;
//! 5. parent is our head: push (Accept, or Reject if invalid);
//! 6. `b > H + window_ahead_max`: Ignore, the sender is Ahead;
//! 7. `b ≤ M`: Ignore;
//! 8. otherwise buffer it (bounded) and request the missing blocks from its sender.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use futures::future::BoxFuture;
use futures::stream::{BoxStream, FuturesUnordered};
use futures::{FutureExt, Stream, StreamExt};
use petrel_blockchain::PushResult;
use petrel_network_api::{
    GossipMessage, Network, NetworkError, NetworkExt, PeerId, Penalty, PenaltyReason, RequestError, Severity, Verdict,
};
use petrel_primitives::{Blake2bHash, Block};
use petrel_protocol::{BlockHeaders, FullBlocks, MissingBlocksError, RequestMissingBlocks, ResponseBlocks};
use petrel_sync_api::{LiveSync, LiveSyncEvent, PeerList};

use crate::chain::SyncChain;

/// Live-sync bounds.
#[derive(Clone, Copy, Debug)]
pub struct LiveConfig {
    /// Blocks ahead of our head that are buffered; a peer announcing beyond is Ahead (default two
    /// batches).
    pub window_ahead_max: u32,
    /// Blocks behind our head tolerated; a peer announcing older is Behind (default one batch).
    pub tolerate_past_max: u32,
    /// Most blocks buffered at once.
    pub buffer_max: usize,
    /// Missing-block requests in flight at once.
    pub max_missing_requests: usize,
    /// Events queued for the consumer before new gossip is left unread.
    pub max_events: usize,
}

impl LiveConfig {
    /// Defaults for blocks of `blocks_per_batch`.
    pub fn for_batch(blocks_per_batch: u32) -> Self {
        Self {
            window_ahead_max: 2 * blocks_per_batch,
            tolerate_past_max: blocks_per_batch,
            buffer_max: 4 * blocks_per_batch as usize,
            max_missing_requests: 2,
            max_events: 256,
        }
    }
}

type MissingResult = (PeerId, Blake2bHash, Result<Result<ResponseBlocks, MissingBlocksError>, RequestError>);

/// Block live sync over a network and a chain.
pub struct BlockLiveSync<N: Network, C: SyncChain> {
    network: N,
    chain: C,
    config: LiveConfig,
    peers: PeerList,
    subscribing: Option<BoxFuture<'static, Result<BoxStream<'static, GossipMessage<Block>>, NetworkError>>>,
    gossip: Option<BoxStream<'static, GossipMessage<Block>>>,
    buffer: BTreeMap<u32, Vec<(Block, PeerId)>>,
    buffered: usize,
    /// Buffered blocks per source peer (each peer may fill at most one window of heights).
    buffered_by: std::collections::HashMap<PeerId, usize>,
    missing: FuturesUnordered<BoxFuture<'static, MissingResult>>,
    requested_targets: HashSet<Blake2bHash>,
    events: VecDeque<LiveSyncEvent>,
    waker: Option<Waker>,
}

impl<N: Network, C: SyncChain> BlockLiveSync<N, C> {
    /// A live sync; it subscribes to the block topic on first poll.
    pub fn new(network: N, chain: C, config: LiveConfig) -> Self {
        let net = network.clone();
        let bodies = chain.wants_bodies();
        let subscribing = async move {
            if bodies { net.subscribe::<FullBlocks>().await } else { net.subscribe::<BlockHeaders>().await }
        }
        .boxed();
        Self {
            network,
            chain,
            config,
            peers: PeerList::default(),
            subscribing: Some(subscribing),
            gossip: None,
            buffer: BTreeMap::new(),
            buffered: 0,
            buffered_by: std::collections::HashMap::new(),
            missing: FuturesUnordered::new(),
            requested_targets: HashSet::new(),
            events: VecDeque::new(),
            waker: None,
        }
    }

    /// Blocks currently buffered.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// Accounts for blocks leaving the buffer.
    fn unbuffer(&mut self, entries: &[(Block, PeerId)]) {
        self.buffered -= entries.len();
        for (_, source) in entries {
            if let Some(n) = self.buffered_by.get_mut(source) {
                *n -= 1;
                if *n == 0 {
                    self.buffered_by.remove(source);
                }
            }
        }
    }

    /// Forgets the blocks a peer buffered.
    fn unbuffer_peer(&mut self, peer: &PeerId) {
        let mut removed = Vec::new();
        for entries in self.buffer.values_mut() {
            let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(entries).into_iter().partition(|(_, s)| s == peer);
            *entries = kept;
            removed.extend(gone);
        }
        self.buffer.retain(|_, v| !v.is_empty());
        self.unbuffer(&removed);
    }

    fn drop_peer(&mut self, peer: PeerId, event: LiveSyncEvent) {
        self.unbuffer_peer(&peer);
        if self.peers.remove(&peer) {
            self.events.push_back(event);
        }
    }

    /// Pushes `block` if it extends the head; returns the verdict for its gossip message.
    fn try_push(&mut self, block: Block, announced: bool) -> Verdict {
        let hash = block.hash();
        match self.chain.push(block) {
            Ok(PushResult::Extended) => {
                self.events.push_back(if announced {
                    LiveSyncEvent::AcceptedAnnouncedBlock(hash)
                } else {
                    LiveSyncEvent::AcceptedBufferedBlock(hash)
                });
                Verdict::Accept
            }
            Ok(_) => Verdict::Ignore,
            Err(e) if e.peer_fault => {
                tracing::debug!(target: "sync::live", %hash, error = %e.message, "rejected block");
                self.events.push_back(LiveSyncEvent::RejectedBlock(hash));
                Verdict::Reject
            }
            Err(e) => {
                tracing::warn!(target: "sync::live", %hash, error = %e.message, "could not store block");
                Verdict::Ignore
            }
        }
    }

    fn release_buffer(&mut self) {
        loop {
            let head = self.chain.head();
            // Drop what is now old.
            let old: Vec<u32> = self.buffer.range(..=head.block_number).map(|(n, _)| *n).collect();
            for n in old {
                if let Some(v) = self.buffer.remove(&n) {
                    self.unbuffer(&v);
                }
            }
            let Some(candidates) = self.buffer.remove(&head.block_number.saturating_add(1)) else { return };
            self.unbuffer(&candidates);
            let mut progressed = false;
            for (block, source) in candidates {
                if *block.parent_hash() != head.block_hash {
                    continue;
                }
                match self.try_push(block, false) {
                    Verdict::Accept => {
                        progressed = true;
                        break;
                    }
                    // Its announcer buffered a block that does not verify.
                    Verdict::Reject => self
                        .network
                        .penalize(source, Penalty::new(Severity::InvalidData, PenaltyReason::InvalidBufferedBlock)),
                    Verdict::Ignore => {}
                }
            }
            if !progressed {
                return;
            }
        }
    }

    fn request_missing(&mut self, target: Blake2bHash, from: PeerId) {
        if self.missing.len() >= self.config.max_missing_requests || !self.requested_targets.insert(target) {
            return;
        }
        let req = RequestMissingBlocks {
            target_hash: target,
            include_body: self.chain.wants_bodies(),
            locators: self.chain.locators(),
        };
        let net = self.network.clone();
        self.missing.push(async move { (from, target, net.request(from, &req).await) }.boxed());
    }

    fn on_gossip(&mut self, msg: GossipMessage<Block>) {
        let GossipMessage { item: block, source, id } = msg;
        let verdict = self.classify(block, source);
        self.network.validate(id, verdict);
    }

    fn classify(&mut self, block: Block, source: PeerId) -> Verdict {
        if !self.peers.contains(&source) {
            return Verdict::Ignore;
        }
        if block.has_body() != self.chain.wants_bodies() {
            return Verdict::Reject;
        }
        let hash = block.hash();
        if self.chain.knows(&hash) {
            return Verdict::Accept;
        }
        let head = self.chain.head();
        let number = block.block_number();
        if number.saturating_add(self.config.tolerate_past_max) < head.block_number {
            self.drop_peer(source, LiveSyncEvent::Behind(source));
            return Verdict::Ignore;
        }
        if *block.parent_hash() == head.block_hash {
            let verdict = self.try_push(block, true);
            self.release_buffer();
            return verdict;
        }
        if number > head.block_number.saturating_add(self.config.window_ahead_max) {
            self.drop_peer(source, LiveSyncEvent::Ahead(source));
            return Verdict::Ignore;
        }
        if number <= self.chain.macro_head_number() || number <= head.block_number {
            return Verdict::Ignore;
        }
        let parent = *block.parent_hash();
        let by_source = self.buffered_by.get(&source).copied().unwrap_or(0);
        if self.buffered < self.config.buffer_max && by_source < self.config.window_ahead_max as usize {
            let slot = self.buffer.entry(number).or_default();
            if !slot.iter().any(|(b, _)| b.hash() == hash) {
                slot.push((block, source));
                self.buffered += 1;
                *self.buffered_by.entry(source).or_default() += 1;
            }
        }
        // Even with a full buffer the gap is worth fetching: the next announcement then connects.
        self.request_missing(parent, source);
        Verdict::Ignore
    }

    fn on_missing(&mut self, result: MissingResult) {
        let (peer, target, result) = result;
        self.requested_targets.remove(&target);
        let blocks = match result {
            Ok(Ok(r)) => r.blocks,
            Ok(Err(_)) => return,
            Err(e) => {
                if e.is_peer_fault() {
                    self.network.penalize(peer, Penalty::new(Severity::InvalidData, PenaltyReason::MalformedResponse));
                }
                return;
            }
        };
        let mut count = 0;
        let mut last = None;
        for block in blocks {
            let head = self.chain.head();
            if self.chain.knows(&block.hash()) {
                continue;
            }
            if *block.parent_hash() != head.block_hash || block.has_body() != self.chain.wants_bodies() {
                self.network.penalize(peer, Penalty::new(Severity::InvalidData, PenaltyReason::DisconnectedBlocks));
                break;
            }
            last = Some(block.hash());
            match self.try_push(block, false) {
                Verdict::Accept => count += 1,
                Verdict::Reject => {
                    self.network.penalize(peer, Penalty::new(Severity::InvalidData, PenaltyReason::InvalidBlock));
                    break;
                }
                Verdict::Ignore => break,
            }
        }
        if count > 0 {
            self.events.push_back(LiveSyncEvent::ReceivedMissingBlocks(count));
        }
        self.release_buffer();
        // One answer covers at most a batch: continue towards the target if still missing, but
        // only if this answer made progress (an answer that advances nothing is not asked again).
        if count > 0 && last != Some(target) && !self.chain.knows(&target) && self.peers.contains(&peer) {
            self.request_missing(target, peer);
        }
    }
}

impl<N: Network, C: SyncChain> Stream for BlockLiveSync<N, C> {
    type Item = LiveSyncEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<LiveSyncEvent>> {
        let this = self.get_mut();
        if let Some(sub) = this.subscribing.as_mut() {
            match sub.poll_unpin(cx) {
                Poll::Ready(Ok(stream)) => {
                    this.subscribing = None;
                    this.gossip = Some(stream);
                }
                Poll::Ready(Err(e)) => {
                    tracing::error!(target: "sync::live", error = %e, "cannot subscribe to blocks");
                    this.subscribing = None;
                }
                Poll::Pending => {}
            }
        }
        loop {
            if let Some(e) = this.events.pop_front() {
                return Poll::Ready(Some(e));
            }
            let mut progressed = false;
            while let Poll::Ready(Some(r)) = this.missing.poll_next_unpin(cx) {
                this.on_missing(r);
                progressed = true;
            }
            if let Some(gossip) = this.gossip.as_mut()
                && this.events.len() < this.config.max_events
                && let Poll::Ready(item) = gossip.poll_next_unpin(cx)
            {
                match item {
                    Some(msg) => this.on_gossip(msg),
                    None => this.gossip = None,
                }
                progressed = true;
            }
            if !progressed && this.events.is_empty() {
                this.waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
        }
    }
}

impl<N: Network, C: SyncChain> LiveSync for BlockLiveSync<N, C> {
    fn add_peer(&mut self, peer: PeerId) {
        self.peers.add(peer);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    fn remove_peer(&mut self, peer: &PeerId) {
        self.peers.remove(peer);
        self.unbuffer_peer(peer);
    }

    fn peers(&self) -> Vec<PeerId> {
        self.peers.iter().copied().collect()
    }

    fn push_requested(&mut self, block: Block, source: PeerId) {
        let head = self.chain.head();
        if *block.parent_hash() == head.block_hash {
            self.try_push(block, false);
            self.release_buffer();
        } else if block.block_number() > head.block_number {
            // Fetch what lies between.
            self.request_missing(block.hash(), source);
        }
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}
