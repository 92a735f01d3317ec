//! Block live sync (protocol-reference §7.3–7.5) as a machine ([`LiveMachine`]) on the one sync
//! driver: it follows gossiped blocks (headers for light and pico nodes, full blocks for history and
//! full nodes), buffers out-of-order blocks inside a bounded window, fetches what the chain lacks
//! (gaps behind a buffered block, and heads the syncer's head rounds found) with a bounded number
//! of missing-block requests, and sends peers that are far behind or ahead back to macro sync.
//! Pushes are jobs, run in order off the executor; a gossip message is judged when its push is done.
//!
//! Classification of an announced block `b` (our head `H` — or the last block queued for a push,
//! if any —, macro head `M`); each rule has a unit test in `live/tests.rs`:
//! 1. from a peer not in live sync: Ignore;
//! 2. body presence differs from what we follow: Reject;
//! 3. known: Accept if it is exactly our copy (justification and body too), else Ignore;
//! 4. `b < H − tolerate_past_max`: Ignore, the sender is Behind;
//! 5. parent is `H`: pushed (Accept, or Reject if invalid, when the push is done) if it is at the
//!    next height (else Reject) and fewer than `window_ahead_max` blocks wait for a push (else
//!    Ignore);
//! 6. `b > H + window_ahead_max`: Ignore, the sender is Ahead;
//! 7. `b ≤ M` or `b ≤ H`: Ignore;
//! 8. otherwise buffer it (bounded in blocks and bytes, in all and per sender; a full buffer makes
//!    room for a sender holding less) and ask its sender for the missing blocks.
//!
//! Gap requests are bounded in all and one per peer at a time; gaps that find no free slot wait in
//! a bounded queue (a few per peer) instead of being dropped, so one peer announcing junk cannot
//! keep an honest peer's gap from being filled. A gap request that times out, or is answered with
//! "not found" or nothing while the gap is still open, costs its peer a minor penalty and drops its
//! buffered blocks.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::marker::PhantomData;

use futures::FutureExt;
use petrel_blockchain::PushResult;
use petrel_network_api::{
    GossipId, GossipMessage, Network, NetworkExt, PeerId, PenaltyReason, Request, RequestError, Services, Severity,
    Verdict,
};
use petrel_primitives::codec::encoded_len;
use petrel_primitives::wire::HeadInfo;
use petrel_primitives::{Blake2bHash, Block};
use petrel_protocol::{AnyResponse, BlockHeaders, FullBlocks, MissingBlocksError, RequestMissingBlocks};
use petrel_sync_api::driver::MachineDriver;
use petrel_sync_api::machine::{Action, Input, JobId, Machine, PeerBook, RequestId, Time};
use petrel_sync_api::{LiveSyncEvent, PeerList};

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
    /// Most bytes (encoded) buffered at once; one sender may hold at most half of them.
    pub buffer_bytes_max: usize,
    /// Missing-block requests in flight at once (at most one per peer).
    pub max_missing_requests: usize,
    /// Gap targets remembered while no request slot is free (at most [`WANTED_PER_PEER`] per
    /// peer).
    pub wanted_max: usize,
}

/// Gap targets remembered per peer: a peer that announces many gaps cannot crowd out the others.
pub const WANTED_PER_PEER: usize = 2;

impl LiveConfig {
    /// Defaults for blocks of `blocks_per_batch`.
    pub fn for_batch(blocks_per_batch: u32) -> Self {
        Self {
            window_ahead_max: 2 * blocks_per_batch,
            tolerate_past_max: blocks_per_batch,
            buffer_max: 4 * blocks_per_batch as usize,
            buffer_bytes_max: 16 << 20,
            max_missing_requests: 4,
            wanted_max: 32,
        }
    }
}

/// Block live sync over a network `N` and a chain `C`: [`LiveMachine`] in the one driver.
pub type BlockLiveSync<N, C> = MachineDriver<LiveMachine<C>, N>;

/// Block live sync subscribed to the topic `chain` follows (full blocks or headers).
pub fn block_live_sync<N: Network, C: SyncChain>(network: N, chain: C, config: LiveConfig) -> BlockLiveSync<N, C> {
    let net = network.clone();
    let bodies = chain.wants_bodies();
    let subscribe =
        async move { if bodies { net.subscribe::<FullBlocks>().await } else { net.subscribe::<BlockHeaders>().await } }
            .boxed();
    MachineDriver::new(network, chain, config).with_gossip(subscribe)
}

/// Where a block to push came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Announced on gossip: the message to judge, and who forwarded it.
    Announced {
        /// The message.
        id: GossipId,
        /// Its sender.
        source: PeerId,
    },
    /// Announced earlier and buffered until its parent arrived.
    Buffered {
        /// Who announced it.
        source: PeerId,
    },
    /// Sent in answer to a missing-blocks request.
    Missing {
        /// Who sent it.
        peer: PeerId,
    },
}

/// Live sync's job: push these blocks in order, stopping at the first that fails.
#[derive(Debug, PartialEq, Eq)]
pub struct LiveWork {
    /// The blocks.
    pub blocks: Vec<Block>,
}

/// What happened to one block of a [`LiveWork`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pushed {
    /// It extended the chain.
    Extended,
    /// Already part of the chain.
    Known,
    /// Not applicable (e.g. at or below the head on another branch).
    Ignored,
    /// It does not verify: its sender is to blame.
    Invalid(String),
    /// Our store failed.
    StoreFailed(String),
    /// Not tried, because a block before it failed.
    NotTried,
}

/// Runs a live-sync job: pushes each block in order, until one fails.
pub fn execute<C: SyncChain>(chain: &C, work: LiveWork) -> Vec<Pushed> {
    let mut out = Vec::with_capacity(work.blocks.len());
    let mut failed = false;
    for block in work.blocks {
        if failed {
            out.push(Pushed::NotTried);
            continue;
        }
        let result = match chain.push(block) {
            Ok(PushResult::Extended) => Pushed::Extended,
            Ok(PushResult::Known) => Pushed::Known,
            Ok(PushResult::Ignored) => Pushed::Ignored,
            Err(e) if e.peer_fault => Pushed::Invalid(e.message),
            Err(e) => Pushed::StoreFailed(e.message),
        };
        failed = matches!(result, Pushed::Invalid(_) | Pushed::StoreFailed(_));
        out.push(result);
    }
    out
}

/// What live sync reads of the chain for one input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveView {
    /// Our head.
    pub head: HeadInfo,
    /// Number of our macro head.
    pub macro_number: u32,
    /// Whether we follow full blocks (else headers).
    pub wants_bodies: bool,
    /// For a gossip input, whether its block is known; for a peer's head, whether that head is.
    pub known: bool,
    /// For a gossip input whose block is known: whether we hold exactly that copy (justification
    /// and body too).
    pub same_copy: bool,
    /// Our locators (head first), when the input may lead to a missing-blocks request; else empty.
    pub locators: Vec<Blake2bHash>,
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LiveStats {
    /// Push jobs run.
    pub push_jobs: u64,
    /// Blocks extended the chain.
    pub extended: u64,
    /// Missing-block requests sent.
    pub missing_requests: u64,
}

/// A push job in progress: its id, each block's hash and origin, and the gaps whose answers it
/// carries.
#[derive(Debug)]
struct Pushing {
    job: JobId,
    blocks: Vec<(Blake2bHash, Origin)>,
    targets: Vec<(Gap, PeerId)>,
}

/// A gap to fill: the block `target` at height `number`, which `peer` announced (a child of it on
/// gossip, or its head).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Gap {
    target: Blake2bHash,
    number: u32,
    peer: PeerId,
    /// A server that already failed this gap (it is asked of another one, once).
    avoid: Option<PeerId>,
}

/// A buffered block, its announcer and its encoded size.
#[derive(Debug)]
struct Buffered {
    block: Block,
    source: PeerId,
    bytes: usize,
}

/// The live-sync machine. See the module documentation.
#[derive(Debug)]
pub struct LiveMachine<C> {
    config: LiveConfig,
    book: PeerBook<(), LiveWork, LiveSyncEvent>,
    peers: PeerList,
    buffer: BTreeMap<u32, Vec<Buffered>>,
    buffered: usize,
    buffered_bytes: usize,
    /// Buffered blocks and bytes per source peer (each peer may fill at most one window of heights
    /// and half the bytes).
    buffered_by: HashMap<PeerId, (usize, usize)>,
    /// Missing-block requests in flight: the gap, and the peer asked (its announcer if that serves
    /// blocks, else another peer that does).
    missing: HashMap<RequestId, (Gap, PeerId)>,
    /// What each live peer advertises: only peers with `FULL_BLOCKS` are asked for blocks.
    services: HashMap<PeerId, Services>,
    /// Round-robin position among the servers asked for other peers' gaps.
    next_server: usize,
    requested_targets: HashSet<Blake2bHash>,
    /// Gaps waiting for a free request slot (or for their peer's request to end), oldest first.
    wanted: VecDeque<Gap>,
    /// Blocks waiting for the next push job.
    queued: Vec<(Block, Origin)>,
    /// The push job running.
    pushing: Option<Pushing>,
    /// Targets of answers waiting in `queued`.
    queued_targets: Vec<(Gap, PeerId)>,
    /// The last block queued or being pushed, while there is one: new blocks extend it.
    tip: Option<(Blake2bHash, u32)>,
    stats: LiveStats,
    _chain: PhantomData<fn() -> C>,
}

impl<C: SyncChain> Machine for LiveMachine<C> {
    type Config = LiveConfig;
    type Chain = C;
    type View = LiveView;
    type Work = LiveWork;
    type Outcome = Vec<Pushed>;
    type Event = LiveSyncEvent;
    type Gossip = Block;
    type Report = ();
    type Stats = LiveStats;

    fn new(config: LiveConfig) -> Self {
        Self {
            config,
            book: PeerBook::default(),
            peers: PeerList::default(),
            buffer: BTreeMap::new(),
            buffered: 0,
            buffered_bytes: 0,
            buffered_by: HashMap::new(),
            missing: HashMap::new(),
            requested_targets: HashSet::new(),
            wanted: VecDeque::new(),
            services: HashMap::new(),
            next_server: 0,
            queued: Vec::new(),
            pushing: None,
            queued_targets: Vec::new(),
            tip: None,
            stats: LiveStats::default(),
            _chain: PhantomData,
        }
    }

    fn view(chain: &C, input: &Input<Vec<Pushed>, Block>) -> LiveView {
        let head = chain.head();
        let mut same_copy = false;
        let (known, wants_locators) = match input {
            Input::Gossip(m) => {
                let known = chain.knows(&m.item.hash());
                same_copy = known && chain.holds_exactly(&m.item);
                (known, m.item.block_number() > head.block_number.saturating_add(1))
            }
            Input::PeerHead { head: theirs, .. } => (chain.knows(&theirs.block_hash), true),
            Input::Applied { .. } | Input::Response { .. } | Input::Tick | Input::PeerLeft { .. } => (false, true),
            _ => (false, false),
        };
        LiveView {
            head,
            macro_number: chain.macro_head_number(),
            wants_bodies: chain.wants_bodies(),
            known,
            same_copy,
            locators: if wants_locators { chain.locators() } else { Vec::new() },
        }
    }

    fn execute(chain: &C, work: LiveWork) -> Vec<Pushed> {
        execute(chain, work)
    }

    fn handle(&mut self, input: Input<Vec<Pushed>, Block>, _now: Time, view: &LiveView) {
        match input {
            Input::PeerJoined { peer, services } => {
                self.peers.add(peer);
                self.services.insert(peer, services.unwrap_or(Services::NONE));
            }
            Input::PeerLeft { peer } => {
                self.peers.remove(&peer);
                self.services.remove(&peer);
                self.unbuffer_peer(&peer);
            }
            Input::Gossip(message) => self.on_gossip(message, view),
            Input::PeerHead { peer, head } => {
                if self.peers.contains(&peer) && !view.known && head.block_number > self.tip_or_head(view).1 {
                    self.want(Gap { target: head.block_hash, number: head.block_number, peer, avoid: None });
                }
            }
            Input::Response { id, response } => self.on_missing(id, response, view),
            Input::Applied { job, outcome } => self.on_pushed(job, outcome, view),
            Input::Tick | Input::Report(()) => {}
        }
        self.fill_gaps(view);
        self.start_job();
    }

    fn poll_action(&mut self) -> Option<Action<LiveWork, LiveSyncEvent>> {
        self.book.poll_action()
    }
    fn drain_peers(&mut self) -> Vec<PeerId> {
        let peers = self.peers.drain();
        for p in &peers {
            self.unbuffer_peer(p);
        }
        self.wanted.clear();
        self.services.clear();
        peers
    }
    fn num_peers(&self) -> usize {
        self.peers.len()
    }
    fn peers(&self) -> Vec<PeerId> {
        self.peers.iter().copied().collect()
    }
    fn stats(&self) -> LiveStats {
        self.stats
    }
}

impl<C> LiveMachine<C> {
    /// Blocks currently buffered.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// Bytes currently buffered (encoded blocks).
    pub fn buffered_bytes(&self) -> usize {
        self.buffered_bytes
    }

    /// Gaps waiting for a request slot.
    pub fn wanted(&self) -> usize {
        self.wanted.len()
    }

    /// The block new blocks must extend: the last one queued for a push, else our head.
    fn tip_or_head(&self, view: &LiveView) -> (Blake2bHash, u32) {
        self.tip.unwrap_or((view.head.block_hash, view.head.block_number))
    }

    fn queue(&mut self, block: Block, origin: Origin) {
        self.tip = Some((block.hash(), block.block_number()));
        self.queued.push((block, origin));
    }

    fn start_job(&mut self) {
        if self.pushing.is_some() || self.queued.is_empty() {
            return;
        }
        let (blocks, metas): (Vec<_>, Vec<_>) = std::mem::take(&mut self.queued)
            .into_iter()
            .map(|(b, o)| {
                let h = b.hash();
                (b, (h, o))
            })
            .unzip();
        let job = self.book.apply(LiveWork { blocks });
        self.stats.push_jobs += 1;
        self.pushing = Some(Pushing { job, blocks: metas, targets: std::mem::take(&mut self.queued_targets) });
    }

    fn unbuffer(&mut self, entries: &[Buffered]) {
        for e in entries {
            self.buffered -= 1;
            self.buffered_bytes -= e.bytes;
            if let Some((n, bytes)) = self.buffered_by.get_mut(&e.source) {
                *n -= 1;
                *bytes -= e.bytes;
                if *n == 0 {
                    self.buffered_by.remove(&e.source);
                }
            }
        }
    }

    fn unbuffer_peer(&mut self, peer: &PeerId) {
        let mut removed = Vec::new();
        for entries in self.buffer.values_mut() {
            let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(entries).into_iter().partition(|e| e.source == *peer);
            *entries = kept;
            removed.extend(gone);
        }
        self.buffer.retain(|_, v| !v.is_empty());
        self.unbuffer(&removed);
        self.wanted.retain(|g| g.peer != *peer);
    }

    fn drop_peer(&mut self, peer: PeerId, event: LiveSyncEvent) {
        self.unbuffer_peer(&peer);
        self.services.remove(&peer);
        if self.peers.remove(&peer) {
            self.book.emit(event);
        }
    }

    /// Buffers `block` from `source` within the bounds: at most `buffer_max` blocks and
    /// `buffer_bytes_max` bytes in all, one window of heights and half the bytes per sender. When
    /// the buffer is full, the sender holding the most gives way to one holding less, so one
    /// peer's junk cannot keep another's blocks out.
    fn buffer_block(&mut self, block: Block, source: PeerId) {
        let hash = block.hash();
        let number = block.block_number();
        if self.buffer.get(&number).is_some_and(|slot| slot.iter().any(|e| e.block.hash() == hash)) {
            return;
        }
        let bytes = encoded_len(&block);
        let (own, own_bytes) = self.buffered_by.get(&source).copied().unwrap_or((0, 0));
        if own >= self.config.window_ahead_max as usize || own_bytes + bytes > self.config.buffer_bytes_max / 2 {
            return;
        }
        while self.buffered >= self.config.buffer_max || self.buffered_bytes + bytes > self.config.buffer_bytes_max {
            let largest = self
                .buffered_by
                .iter()
                .filter(|(p, _)| **p != source)
                .max_by_key(|(p, (n, b))| (*n, *b, **p))
                .map(|(p, (n, _))| (*p, *n));
            match largest {
                Some((peer, n)) if n > own + 1 => self.evict_highest(peer),
                _ => return,
            }
        }
        self.buffer.entry(number).or_default().push(Buffered { block, source, bytes });
        self.buffered += 1;
        self.buffered_bytes += bytes;
        let entry = self.buffered_by.entry(source).or_default();
        entry.0 += 1;
        entry.1 += bytes;
    }

    /// Drops `peer`'s highest buffered block.
    fn evict_highest(&mut self, peer: PeerId) {
        let Some(number) = self.buffer.iter().rev().find(|(_, v)| v.iter().any(|e| e.source == peer)).map(|(n, _)| *n)
        else {
            return;
        };
        let Some(slot) = self.buffer.get_mut(&number) else { return };
        let Some(i) = slot.iter().position(|e| e.source == peer) else { return };
        let gone = slot.remove(i);
        if slot.is_empty() {
            self.buffer.remove(&number);
        }
        self.unbuffer(&[gone]);
    }

    /// Asks for `gap` now if a slot is free and its peer has no request in flight; else remembers
    /// it (bounded: [`WANTED_PER_PEER`] per peer, `wanted_max` in all, oldest dropped first).
    fn want(&mut self, gap: Gap) {
        if self.wanted.iter().any(|g| g.target == gap.target && g.peer == gap.peer)
            || self.missing.values().any(|(g, _)| g.target == gap.target && g.peer == gap.peer)
        {
            return;
        }
        if self.wanted.iter().filter(|g| g.peer == gap.peer).count() >= WANTED_PER_PEER
            && let Some(i) = self.wanted.iter().position(|g| g.peer == gap.peer)
        {
            self.wanted.remove(i);
        }
        if self.wanted.len() >= self.config.wanted_max.max(1) {
            self.wanted.pop_front();
        }
        self.wanted.push_back(gap);
    }

    /// Whether `peer` promises to serve missing blocks.
    fn serves(&self, peer: &PeerId) -> bool {
        self.services.get(peer).is_some_and(|s| s.contains(RequestMissingBlocks::SERVICES))
    }

    fn busy(&self, peer: &PeerId) -> bool {
        self.missing.values().any(|(_, server)| server == peer)
    }

    /// Who is asked for `gap`: its announcer if it serves blocks (when it is free); else the next
    /// free live peer that does, round robin. `None`: wait.
    fn server_for(&mut self, gap: &Gap) -> Option<PeerId> {
        if self.serves(&gap.peer) && gap.avoid != Some(gap.peer) {
            return (!self.busy(&gap.peer)).then_some(gap.peer);
        }
        let mut servers: Vec<PeerId> =
            self.peers.iter().copied().filter(|p| self.serves(p) && !self.busy(p) && gap.avoid != Some(*p)).collect();
        if servers.is_empty() {
            return None;
        }
        servers.sort();
        self.next_server = self.next_server.wrapping_add(1);
        Some(servers[self.next_server % servers.len()])
    }

    /// Sends requests for remembered gaps while slots are free: oldest first, one request per peer
    /// and per target; gaps at or below the tip, or of peers that left, are dropped, and so are
    /// gaps no live peer can serve.
    fn fill_gaps(&mut self, view: &LiveView) {
        if view.locators.is_empty() {
            return;
        }
        let tip = self.tip_or_head(view).1;
        let peers = &self.peers;
        self.wanted.retain(|g| g.number > tip && peers.contains(&g.peer));
        if !self.peers.iter().any(|p| self.serves(p)) {
            // Nobody to ask (only light and pico peers): announcements are all we get.
            self.wanted.clear();
            return;
        }
        let mut i = 0;
        while i < self.wanted.len() && self.missing.len() < self.config.max_missing_requests {
            let g = self.wanted[i];
            let server = if self.requested_targets.contains(&g.target) { None } else { self.server_for(&g) };
            let Some(server) = server else {
                i += 1;
                continue;
            };
            self.wanted.remove(i);
            self.request_missing(g, server, view);
        }
    }

    fn request_missing(&mut self, gap: Gap, server: PeerId, view: &LiveView) {
        self.requested_targets.insert(gap.target);
        let request = RequestMissingBlocks {
            target_hash: gap.target,
            include_body: view.wants_bodies,
            locators: view.locators.clone(),
        };
        let id = self.book.request(server, request);
        self.missing.insert(id, (gap, server));
        self.stats.missing_requests += 1;
    }

    /// A gap request that brought nothing while the gap is still open. If the peer asked announced
    /// the gap itself, it announced a block it cannot connect to our chain: a minor penalty, and
    /// its buffered blocks (which hang on that gap) are dropped to make room for others'. Silence
    /// costs whoever was asked.
    fn gap_failed(&mut self, gap: Gap, server: PeerId, reason: PenaltyReason, view: &LiveView) {
        if gap.number <= self.tip_or_head(view).1 {
            return;
        }
        if server == gap.peer || reason == PenaltyReason::Unresponsive {
            self.book.penalize(server, Severity::Minor, reason);
            self.unbuffer_peer(&server);
        }
        // Asked of another server once (a silent relay of honest blocks must not stall the gap).
        if gap.avoid.is_none() && self.peers.contains(&gap.peer) {
            self.want(Gap { avoid: Some(server), ..gap });
        }
    }

    fn on_gossip(&mut self, message: GossipMessage<Block>, view: &LiveView) {
        let GossipMessage { item: block, source, id } = message;
        if !self.peers.contains(&source) {
            return self.book.validate(id, Verdict::Ignore);
        }
        if block.has_body() != view.wants_bodies {
            return self.book.validate(id, Verdict::Reject);
        }
        if view.known {
            // Relayed only if it is exactly our copy: a block is named by its header, so a copy
            // with an altered justification or body must not be amplified (nor get us, its relay,
            // blamed). Not rejected: an honest peer may hold another valid justification.
            let verdict = if view.same_copy { Verdict::Accept } else { Verdict::Ignore };
            return self.book.validate(id, verdict);
        }
        let (tip_hash, tip_number) = self.tip_or_head(view);
        let number = block.block_number();
        if number.saturating_add(self.config.tolerate_past_max) < view.head.block_number {
            self.drop_peer(source, LiveSyncEvent::Behind(source));
            return self.book.validate(id, Verdict::Ignore);
        }
        if *block.parent_hash() == tip_hash {
            if number != tip_number.saturating_add(1) {
                // It names our tip as parent but not the next height: it cannot be valid.
                return self.book.validate(id, Verdict::Reject);
            }
            if self.queued.len() >= self.config.window_ahead_max as usize {
                // Bounded: what waits for the next push is at most a window of blocks.
                return self.book.validate(id, Verdict::Ignore);
            }
            // Judged when its push is done.
            return self.queue(block, Origin::Announced { id, source });
        }
        if number > tip_number.saturating_add(self.config.window_ahead_max) {
            self.drop_peer(source, LiveSyncEvent::Ahead(source));
            return self.book.validate(id, Verdict::Ignore);
        }
        if number <= view.macro_number || number <= tip_number {
            return self.book.validate(id, Verdict::Ignore);
        }
        let parent = *block.parent_hash();
        self.buffer_block(block, source);
        // Even with a full buffer the gap is worth fetching: the next announcement then connects.
        self.want(Gap { target: parent, number: number - 1, peer: source, avoid: None });
        self.book.validate(id, Verdict::Ignore);
    }

    fn on_missing(&mut self, id: RequestId, response: Result<AnyResponse, RequestError>, view: &LiveView) {
        let Some(peer) = self.book.answered(id) else { return };
        let Some((gap, server)) = self.missing.remove(&id) else { return };
        let target = gap.target;
        self.requested_targets.remove(&target);
        if !self.peers.contains(&peer) {
            // It left live sync: its outstanding answers are ignored.
            return;
        }
        let blocks = match response {
            Ok(AnyResponse::MissingBlocks(Ok(answer))) if !answer.blocks.is_empty() => answer.blocks,
            // It does not have what it announced (or nothing after our locators): useless. A
            // store failure or a target now off its main chain is not a lie: no penalty.
            Ok(AnyResponse::MissingBlocks(Ok(_) | Err(MissingBlocksError::TargetHashNotFound))) => {
                return self.gap_failed(gap, server, PenaltyReason::MissingAnnounced, view);
            }
            Ok(AnyResponse::MissingBlocks(Err(_))) => return,
            Ok(_) => return self.book.penalize(peer, Severity::InvalidData, PenaltyReason::WrongAnswer),
            Err(e) => {
                if e.is_peer_fault() {
                    self.book.penalize(peer, Severity::InvalidData, PenaltyReason::MalformedResponse);
                    self.unbuffer_peer(&peer);
                } else if matches!(e, RequestError::Timeout) {
                    self.gap_failed(gap, server, PenaltyReason::Unresponsive, view);
                } else if matches!(e, RequestError::Unsupported) {
                    // It advertised blocks but does not serve them: not asked again; another
                    // server takes the gap.
                    self.services.insert(peer, Services::NONE);
                    self.want(gap);
                }
                return;
            }
        };
        // The blocks must follow each other and carry bodies as we follow them; the first that
        // does not ends the answer.
        let mut previous: Option<Blake2bHash> = None;
        let mut taken = Vec::with_capacity(blocks.len());
        let total = blocks.len();
        for block in blocks {
            let links = previous.is_none_or(|p| *block.parent_hash() == p);
            if !links || block.has_body() != view.wants_bodies {
                break;
            }
            previous = Some(block.hash());
            taken.push(block);
        }
        if taken.len() < total {
            self.book.penalize(peer, Severity::InvalidData, PenaltyReason::DisconnectedBlocks);
        }
        let (tip_hash, tip_number) = self.tip_or_head(view);
        // Blocks at or below the tip are either known (pushed as Known, harmless) or on another
        // branch; only a run that starts right after the tip can extend us.
        let start = taken.iter().position(|b| *b.parent_hash() == tip_hash);
        let Some(start) = start else {
            if taken.last().is_some_and(|b| b.block_number() > tip_number) {
                // Its blocks do not reach back to our chain.
                self.book.penalize(peer, Severity::InvalidData, PenaltyReason::DisconnectedBlocks);
            }
            return;
        };
        for block in taken.into_iter().skip(start) {
            self.queue(block, Origin::Missing { peer });
        }
        self.queued_targets.push((gap, server));
    }

    fn on_pushed(&mut self, job: JobId, results: Vec<Pushed>, view: &LiveView) {
        let Some(Pushing { blocks: metas, targets, .. }) = self.pushing.take_if(|p| p.job == job) else { return };
        let mut received = 0;
        let mut all_applied = true;
        let mut reached: HashSet<Blake2bHash> = HashSet::new();
        let mut from_peer: HashMap<PeerId, usize> = HashMap::new();
        for ((hash, origin), result) in metas.into_iter().zip(results) {
            let applied = matches!(result, Pushed::Extended | Pushed::Known);
            all_applied &= applied;
            if applied {
                reached.insert(hash);
            }
            if result == Pushed::Extended {
                self.stats.extended += 1;
            }
            match origin {
                Origin::Announced { id, .. } => match result {
                    Pushed::Extended => {
                        self.book.validate(id, Verdict::Accept);
                        self.book.emit(LiveSyncEvent::AcceptedAnnouncedBlock(hash));
                    }
                    Pushed::Invalid(_) => {
                        self.book.validate(id, Verdict::Reject);
                        self.book.emit(LiveSyncEvent::RejectedBlock(hash));
                    }
                    _ => self.book.validate(id, Verdict::Ignore),
                },
                Origin::Buffered { source } => match result {
                    Pushed::Extended => self.book.emit(LiveSyncEvent::AcceptedBufferedBlock(hash)),
                    Pushed::Invalid(_) => {
                        // Its announcer buffered a block that does not verify.
                        self.book.penalize(source, Severity::InvalidData, PenaltyReason::InvalidBufferedBlock);
                        self.book.emit(LiveSyncEvent::RejectedBlock(hash));
                    }
                    _ => {}
                },
                Origin::Missing { peer } => match result {
                    Pushed::Extended => {
                        received += 1;
                        *from_peer.entry(peer).or_default() += 1;
                    }
                    Pushed::Invalid(_) => self.book.penalize(peer, Severity::InvalidData, PenaltyReason::InvalidBlock),
                    _ => {}
                },
            }
        }
        if received > 0 {
            self.book.emit(LiveSyncEvent::ReceivedMissingBlocks(received));
        }
        if !all_applied {
            // What was queued meanwhile extends a block that did not apply.
            for (_, origin) in std::mem::take(&mut self.queued) {
                if let Origin::Announced { id, .. } = origin {
                    self.book.validate(id, Verdict::Ignore);
                }
            }
            self.queued_targets.clear();
        }
        if self.queued.is_empty() {
            self.tip = None;
        }
        // One answer covers at most a batch: continue towards the target if this answer made
        // progress and did not reach it (an answer that advances nothing is not asked again).
        // Progress is the server's (the peer asked, which may not be the announcer).
        for (gap, server) in targets {
            if from_peer.get(&server).copied().unwrap_or(0) > 0
                && !reached.contains(&gap.target)
                && self.peers.contains(&gap.peer)
            {
                self.want(gap);
            }
        }
        self.release_buffer(view);
    }

    /// Queues buffered blocks that now extend the tip, in order; drops what is at or below it.
    fn release_buffer(&mut self, view: &LiveView) {
        loop {
            let (tip_hash, tip_number) = self.tip_or_head(view);
            let old: Vec<u32> = self.buffer.range(..=tip_number).map(|(n, _)| *n).collect();
            for n in old {
                if let Some(v) = self.buffer.remove(&n) {
                    self.unbuffer(&v);
                }
            }
            let Some(candidates) = self.buffer.remove(&tip_number.saturating_add(1)) else { return };
            self.unbuffer(&candidates);
            let Some(e) = candidates.into_iter().find(|e| *e.block.parent_hash() == tip_hash) else {
                return;
            };
            self.queue(e.block, Origin::Buffered { source: e.source });
        }
    }
}

#[cfg(test)]
mod tests;
