//! The syncer: turns per-peer macro-sync verdicts into actions, runs live sync, head requests and
//! the established/lost decision (protocol-reference §3.3, §7.1–7.2).
//!
//! | Input | Action |
//! |---|---|
//! | PeerJoined | macro sync `add_peer` |
//! | PeerLeft | dropped everywhere |
//! | Good | live sync `add_peer` |
//! | Outdated | remembered; handed to macro sync again every `check_interval` |
//! | Incompatible | head check: within a batch of us and not too far ahead → live sync; else re-checked every `check_interval` |
//! | Conflicting | the peer is penalised; live-sync peers are **removed** from live sync (the reference left them there while the chain reset) and, with every drained macro-sync peer and the conflicting one, handed to `fallback` |
//! | live Behind | outdated |
//! | live Ahead | macro sync |
//!
//! Head requests go to every live peer as soon as the live set changes (a peer turned Good, joined
//! from the incompatible set, fell Behind/Ahead or left) and otherwise every `head_request_interval`
//! after the last round, so a node is established within a round trip of finishing macro sync
//! instead of at the next interval. A head we do not know is
//! fetched (once per hash) and pushed into live sync, which is how a quiet chain is caught up; a
//! block whose hash differs from the one asked for bans the peer.

use std::collections::{HashSet, VecDeque};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{BoxStream, FuturesUnordered};
use futures::{FutureExt, Stream, StreamExt};
use petrel_network_api::{
    DisconnectReason, Network, NetworkEvent, NetworkExt, PeerId, Penalty, PenaltyReason, RequestError, Severity,
};
use petrel_primitives::{Blake2bHash, Block};
use petrel_protocol::{BlockRequestError, RequestBlock, RequestHead, ResponseHead};
use petrel_sync_api::{LiveSync, LiveSyncEvent, MacroSync, MacroSyncReturn};
use tokio::time::{Interval, MissedTickBehavior};

use crate::chain::SyncChain;
use crate::established::{EstablishedConfig, EstablishedInputs, is_established, is_lost};

/// Syncer settings.
#[derive(Clone, Copy, Debug)]
pub struct SyncerConfig {
    /// The established rule's thresholds.
    pub established: EstablishedConfig,
    /// How often outdated and incompatible peers are checked again (reference: 60 s).
    pub check_interval: Duration,
    /// How often live peers are asked for their heads (reference: 5 s).
    pub head_request_interval: Duration,
    /// Blocks ahead of us an incompatible peer may be and still join live sync.
    pub acceptance_window: u32,
}

impl SyncerConfig {
    /// Defaults for blocks of `blocks_per_batch`.
    pub fn for_batch(blocks_per_batch: u32) -> Self {
        Self {
            established: EstablishedConfig::default(),
            check_interval: Duration::from_secs(60),
            head_request_interval: Duration::from_secs(5),
            acceptance_window: 2 * blocks_per_batch,
        }
    }
}

/// What the syncer reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConsensusEvent {
    /// The node is in consensus with the network.
    Established,
    /// The node lost consensus (too few live peers).
    Lost,
    /// A macro-sync verdict.
    Verdict(MacroSyncReturn),
    /// A live-sync event.
    Live(LiveSyncEvent),
    /// Pico fell back to Light Macro Sync.
    FellBack,
}

type HeadRound = BoxFuture<'static, Vec<(PeerId, Result<ResponseHead, RequestError>)>>;
type Fetch = BoxFuture<'static, (PeerId, Blake2bHash, Result<Result<Block, BlockRequestError>, RequestError>)>;
type Check = BoxFuture<'static, (PeerId, Result<ResponseHead, RequestError>)>;

/// Counters for progress and summaries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncerStats {
    /// Accepted announced blocks.
    pub accepted_announcements: u64,
    /// Head-request rounds finished.
    pub head_rounds: u64,
    /// Heads fetched because unknown.
    pub fetched_heads: u64,
}

/// The syncer.
pub struct Syncer<N: Network, C: SyncChain, M: MacroSync, L: LiveSync> {
    network: N,
    chain: C,
    macro_sync: M,
    live: L,
    config: SyncerConfig,
    net_events: BoxStream<'static, NetworkEvent>,
    outdated: HashSet<PeerId>,
    incompatible: HashSet<PeerId>,
    check_timer: Interval,
    head_timer: Interval,
    head_round: Option<HeadRound>,
    fetching: HashSet<Blake2bHash>,
    fetches: FuturesUnordered<Fetch>,
    checks: FuturesUnordered<Check>,
    misc: FuturesUnordered<BoxFuture<'static, ()>>,
    last_round: Option<(usize, usize)>,
    established: bool,
    stats: SyncerStats,
    out: VecDeque<ConsensusEvent>,
    started: bool,
    /// The live set changed since the last head round started: start one as soon as none runs.
    round_wanted: bool,
}

fn event_stream(rx: tokio::sync::broadcast::Receiver<NetworkEvent>) -> BoxStream<'static, NetworkEvent> {
    futures::stream::unfold(rx, |mut r| async move {
        loop {
            match r.recv().await {
                Ok(e) => return Some((e, r)),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(target: "consensus", missed = n, "peer events lagged");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
    .boxed()
}

impl<N: Network, C: SyncChain, M: MacroSync, L: LiveSync> Syncer<N, C, M, L> {
    /// A syncer; it picks up the peers already connected on first poll.
    pub fn new(network: N, chain: C, macro_sync: M, live: L, config: SyncerConfig) -> Self {
        let net_events = event_stream(network.subscribe_events());
        let mut check_timer = tokio::time::interval(config.check_interval);
        check_timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut head_timer = tokio::time::interval(config.head_request_interval);
        head_timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Self {
            network,
            chain,
            macro_sync,
            live,
            config,
            net_events,
            outdated: HashSet::new(),
            incompatible: HashSet::new(),
            check_timer,
            head_timer,
            head_round: None,
            fetching: HashSet::new(),
            fetches: FuturesUnordered::new(),
            checks: FuturesUnordered::new(),
            misc: FuturesUnordered::new(),
            last_round: None,
            established: false,
            stats: SyncerStats::default(),
            out: VecDeque::new(),
            started: false,
            round_wanted: false,
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

    /// The macro sync.
    pub fn macro_sync(&self) -> &M {
        &self.macro_sync
    }

    /// The live sync.
    pub fn live(&self) -> &L {
        &self.live
    }

    fn peer_left(&mut self, peer: &PeerId) {
        self.macro_sync.remove_peer(peer);
        if self.live.peers().contains(peer) {
            self.round_wanted = true;
        }
        self.live.remove_peer(peer);
        self.outdated.remove(peer);
        self.incompatible.remove(peer);
    }

    fn on_verdict(&mut self, verdict: MacroSyncReturn) {
        match verdict {
            // A verdict can arrive after its peer left: only connected peers join live sync.
            MacroSyncReturn::Good(p) if self.network.peer_info(&p).is_some() => {
                self.outdated.remove(&p);
                self.live.add_peer(p);
                self.round_wanted = true;
            }
            MacroSyncReturn::Good(_) => {}
            MacroSyncReturn::Outdated(p) => {
                self.outdated.insert(p);
            }
            MacroSyncReturn::Incompatible(p) => {
                self.incompatible.insert(p);
                self.check_incompatible(p);
            }
            MacroSyncReturn::Conflicting(p) => {
                self.network.penalize(p, Penalty::new(Severity::InvalidData, PenaltyReason::ConflictingChain));
                let mut peers = self.live.peers();
                for q in &peers {
                    self.live.remove_peer(q);
                }
                peers.push(p);
                peers.extend(self.outdated.drain());
                self.macro_sync.fallback(peers);
                self.out.push_back(ConsensusEvent::FellBack);
            }
        }
        self.out.push_back(ConsensusEvent::Verdict(verdict));
    }

    fn check_incompatible(&mut self, peer: PeerId) {
        let net = self.network.clone();
        self.checks.push(async move { (peer, net.request(peer, &RequestHead).await) }.boxed());
    }

    fn on_check(&mut self, peer: PeerId, result: Result<ResponseHead, RequestError>) {
        if !self.incompatible.contains(&peer) {
            return;
        }
        let head = match result {
            Ok(head) => head,
            // It does not serve heads: it stays incompatible (checked again later).
            Err(RequestError::Unsupported) => return,
            Err(_) => {
                let net = self.network.clone();
                self.misc.push(async move { net.disconnect(peer, DisconnectReason::Error).await }.boxed());
                self.incompatible.remove(&peer);
                return;
            }
        };
        let policy = self.chain.policy();
        let ours = self.chain.head().block_number;
        let synced = policy.batch_at(head.block_number) + 1 >= policy.batch_at(ours)
            && head.block_number <= ours.saturating_add(self.config.acceptance_window);
        if synced {
            self.incompatible.remove(&peer);
            self.live.add_peer(peer);
            self.round_wanted = true;
        }
    }

    fn on_live(&mut self, event: LiveSyncEvent) {
        match &event {
            LiveSyncEvent::AcceptedAnnouncedBlock(_) => {
                self.stats.accepted_announcements += 1;
                self.head_timer.reset();
            }
            LiveSyncEvent::Behind(p) => {
                self.outdated.insert(*p);
                self.round_wanted = true;
            }
            LiveSyncEvent::Ahead(p) => {
                self.macro_sync.add_peer(*p);
                self.round_wanted = true;
            }
            _ => {}
        }
        self.out.push_back(ConsensusEvent::Live(event));
    }

    fn start_head_round(&mut self) {
        let peers = self.live.peers();
        if peers.is_empty() || self.head_round.is_some() {
            return;
        }
        let net = self.network.clone();
        self.head_round = Some(
            async move {
                let requests = peers.into_iter().map(|p| {
                    let net = net.clone();
                    async move { (p, net.request(p, &RequestHead).await) }
                });
                futures::future::join_all(requests).await
            }
            .boxed(),
        );
    }

    fn on_head_round(&mut self, results: Vec<(PeerId, Result<ResponseHead, RequestError>)>) {
        let (mut known, mut unknown) = (0, 0);
        for (peer, result) in results {
            let Ok(head) = result else { continue };
            if self.chain.knows(&head.block_hash) {
                known += 1;
                continue;
            }
            unknown += 1;
            if head.block_number > self.chain.head().block_number && self.fetching.insert(head.block_hash) {
                let net = self.network.clone();
                let req = RequestBlock { hash: head.block_hash, include_body: self.chain.wants_bodies() };
                let hash = head.block_hash;
                self.fetches.push(async move { (peer, hash, net.request(peer, &req).await) }.boxed());
            }
        }
        self.stats.head_rounds += 1;
        self.last_round = Some((known, unknown));
    }

    fn on_fetch(
        &mut self,
        peer: PeerId,
        hash: Blake2bHash,
        result: Result<Result<Block, BlockRequestError>, RequestError>,
    ) {
        self.fetching.remove(&hash);
        match result {
            Ok(Ok(block)) if block.hash() == hash => {
                self.stats.fetched_heads += 1;
                self.live.push_requested(block, peer);
            }
            Ok(Ok(_)) => {
                let net = self.network.clone();
                self.misc.push(async move { net.disconnect(peer, DisconnectReason::Malicious).await }.boxed());
            }
            _ => {}
        }
    }

    fn update_established(&mut self) {
        let inputs = EstablishedInputs {
            live_peers: self.live.num_peers(),
            accepted_announcements: self.stats.accepted_announcements,
            head_round: self.last_round,
        };
        if !self.established && is_established(&inputs, &self.config.established) {
            self.established = true;
            tracing::info!(target: "consensus", live_peers = inputs.live_peers, "consensus established");
            self.out.push_back(ConsensusEvent::Established);
        } else if self.established && is_lost(&inputs, &self.config.established) {
            self.established = false;
            self.last_round = None;
            tracing::info!(target: "consensus", live_peers = inputs.live_peers, "consensus lost");
            self.out.push_back(ConsensusEvent::Lost);
        }
    }
}

impl<N: Network, C: SyncChain, M: MacroSync, L: LiveSync> Stream for Syncer<N, C, M, L> {
    type Item = ConsensusEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ConsensusEvent>> {
        let this = self.get_mut();
        if !this.started {
            this.started = true;
            for (peer, _) in this.network.peers() {
                this.macro_sync.add_peer(peer);
            }
        }
        loop {
            if let Some(e) = this.out.pop_front() {
                return Poll::Ready(Some(e));
            }
            let mut progressed = false;
            while let Poll::Ready(Some(event)) = this.net_events.poll_next_unpin(cx) {
                progressed = true;
                match event {
                    NetworkEvent::PeerJoined(peer, _) => this.macro_sync.add_peer(peer),
                    NetworkEvent::PeerLeft(peer) => this.peer_left(&peer),
                }
            }
            if let Poll::Ready(Some(v)) = this.macro_sync.poll_next_unpin(cx) {
                this.on_verdict(v);
                progressed = true;
            }
            if let Poll::Ready(Some(e)) = this.live.poll_next_unpin(cx) {
                this.on_live(e);
                progressed = true;
            }
            if this.check_timer.poll_tick(cx).is_ready() {
                for p in this.outdated.drain().collect::<Vec<_>>() {
                    this.macro_sync.add_peer(p);
                }
                for p in this.incompatible.iter().copied().collect::<Vec<_>>() {
                    this.check_incompatible(p);
                }
                progressed = true;
            }
            if this.head_timer.poll_tick(cx).is_ready() {
                this.start_head_round();
                progressed = true;
            }
            if this.round_wanted && this.head_round.is_none() {
                this.round_wanted = false;
                this.start_head_round();
                // The next periodic round comes one interval after this one.
                this.head_timer.reset();
                progressed = true;
            }
            if let Some(round) = this.head_round.as_mut()
                && let Poll::Ready(results) = round.poll_unpin(cx)
            {
                this.head_round = None;
                this.on_head_round(results);
                progressed = true;
            }
            while let Poll::Ready(Some((peer, hash, r))) = this.fetches.poll_next_unpin(cx) {
                this.on_fetch(peer, hash, r);
                progressed = true;
            }
            while let Poll::Ready(Some((peer, r))) = this.checks.poll_next_unpin(cx) {
                this.on_check(peer, r);
                progressed = true;
            }
            while let Poll::Ready(Some(())) = this.misc.poll_next_unpin(cx) {}
            this.update_established();
            if !progressed && this.out.is_empty() {
                return Poll::Pending;
            }
        }
    }
}
