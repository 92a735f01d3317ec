//! The syncer: runs the macro sync, the live sync and the syncer's rules
//! ([`crate::syncer_machine::SyncerMachine`], where every decision lives and is unit-tested) over a
//! network and a chain (protocol-reference §3.3, §7.1–7.2; protocol.md §11.4–§11.5).
//!
//! [`Syncer`] runs the machine in the one sync driver (which sends its head requests, applies its
//! penalties and ticks its timers) and routes between it and the syncs it coordinates: peer
//! events and the syncs' verdicts and events go in as inputs and reports, and the machine's
//! events come out as calls on the syncs (hand a peer to macro or live sync, fall back) and as
//! [`ConsensusEvent`]s.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use petrel_network_api::{Network, NetworkEvent, PeerId};
use petrel_sync_api::driver::MachineDriver;
use petrel_sync_api::{LiveSync, LiveSyncEvent, MacroSync, MacroSyncReturn};

use crate::chain::SyncChain;
use crate::established::EstablishedConfig;
use crate::syncer_machine::{SyncerEvent, SyncerMachine, SyncerReport};

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

/// Counters for progress and summaries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncerStats {
    /// Accepted announced blocks.
    pub accepted_announcements: u64,
    /// Head-request rounds finished.
    pub head_rounds: u64,
    /// Unknown heads above ours handed to live sync to fetch.
    pub heads_to_live: u64,
}

/// The syncer: [`SyncerMachine`] in the one sync driver, with the macro sync and the live sync it
/// coordinates.
pub struct Syncer<N: Network, C: SyncChain, M: MacroSync, L: LiveSync> {
    network: N,
    driver: MachineDriver<SyncerMachine<C>, N>,
    macro_sync: M,
    live: L,
    net_events: BoxStream<'static, PeerEvent>,
    out: VecDeque<ConsensusEvent>,
    started: bool,
}

/// A network event, or word that some were lost (the channel is bounded).
enum PeerEvent {
    Event(NetworkEvent),
    Lagged(u64),
}

fn event_stream(rx: tokio::sync::broadcast::Receiver<NetworkEvent>) -> BoxStream<'static, PeerEvent> {
    futures::stream::unfold(rx, |mut r| async move {
        match r.recv().await {
            Ok(e) => Some((PeerEvent::Event(e), r)),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => Some((PeerEvent::Lagged(n), r)),
            Err(tokio::sync::broadcast::error::RecvError::Closed) => None,
        }
    })
    .boxed()
}

/// What to tell the machine after events were lost: the peers it counts as connected that are
/// gone, and the connected ones it does not know, in id order.
pub fn reconcile(known: &[PeerId], connected: &[PeerId]) -> (Vec<PeerId>, Vec<PeerId>) {
    let connected_set: std::collections::HashSet<_> = connected.iter().collect();
    let known_set: std::collections::HashSet<_> = known.iter().collect();
    let mut left: Vec<PeerId> = known.iter().copied().filter(|p| !connected_set.contains(p)).collect();
    let mut joined: Vec<PeerId> = connected.iter().copied().filter(|p| !known_set.contains(p)).collect();
    left.sort();
    joined.sort();
    (left, joined)
}

impl<N: Network, C: SyncChain, M: MacroSync, L: LiveSync> Syncer<N, C, M, L> {
    /// A syncer; it picks up the peers already connected on first poll.
    pub fn new(network: N, chain: C, macro_sync: M, live: L, config: SyncerConfig) -> Self {
        let net_events = event_stream(network.subscribe_events());
        Self {
            driver: MachineDriver::new(network.clone(), chain, config),
            network,
            macro_sync,
            live,
            net_events,
            out: VecDeque::new(),
            started: false,
        }
    }

    /// Whether the node is established.
    pub fn is_established(&self) -> bool {
        self.driver.machine().is_established()
    }

    /// The peers the syncer counts as connected, in id order.
    pub fn connected_peers(&self) -> Vec<PeerId> {
        self.driver.machine().connected_peers()
    }

    /// Counters.
    pub fn stats(&self) -> SyncerStats {
        self.driver.stats()
    }

    /// The macro sync.
    pub fn macro_sync(&self) -> &M {
        &self.macro_sync
    }

    /// The live sync.
    pub fn live(&self) -> &L {
        &self.live
    }

    /// Carries out one of the machine's events.
    fn route(&mut self, event: SyncerEvent) {
        match event {
            SyncerEvent::AddToMacro(p) => self.macro_sync.add_peer(p),
            SyncerEvent::RemoveFromMacro(p) => self.macro_sync.remove_peer(&p),
            SyncerEvent::AddToLive(p) => self.live.add_peer(p),
            SyncerEvent::RemoveFromLive(p) => self.live.remove_peer(&p),
            SyncerEvent::Fallback(peers) => {
                tracing::info!(target: "consensus", peers = peers.len(), "conflicting macro chain: falling back");
                self.macro_sync.fallback(peers);
            }
            SyncerEvent::HeadToLive(p, head) => self.live.peer_head(p, head),
            SyncerEvent::Consensus(event) => {
                let live_peers = self.driver.machine().live_peers();
                match &event {
                    ConsensusEvent::Established => {
                        tracing::info!(target: "consensus", live_peers, "consensus established")
                    }
                    ConsensusEvent::Lost => tracing::info!(target: "consensus", live_peers, "consensus lost"),
                    _ => {}
                }
                self.out.push_back(event);
            }
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
                this.driver.peer_joined(peer);
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
                    PeerEvent::Event(NetworkEvent::PeerJoined(peer, _)) => this.driver.peer_joined(peer),
                    PeerEvent::Event(NetworkEvent::PeerLeft(peer)) => this.driver.peer_left(peer),
                    PeerEvent::Lagged(missed) => {
                        // Joins and departures were lost: compare with the network's peer list.
                        let connected: Vec<PeerId> = this.network.peers().into_iter().map(|(p, _)| p).collect();
                        let (left, joined) = reconcile(&this.driver.machine().connected_peers(), &connected);
                        tracing::warn!(target: "consensus", missed, left = left.len(), joined = joined.len(), "peer events lagged: reconciled with the network");
                        for peer in left {
                            this.driver.peer_left(peer);
                        }
                        for peer in joined {
                            this.driver.peer_joined(peer);
                        }
                    }
                }
            }
            if let Poll::Ready(Some(v)) = this.macro_sync.poll_next_unpin(cx) {
                metrics::counter!("sync.verdicts", "verdict" => v.name()).increment(1);
                this.driver.report(SyncerReport::Verdict(v));
                progressed = true;
            }
            if let Poll::Ready(Some(e)) = this.live.poll_next_unpin(cx) {
                this.driver.report(SyncerReport::Live(e));
                progressed = true;
            }
            while let Poll::Ready(Some(event)) = this.driver.poll_next_unpin(cx) {
                this.route(event);
                progressed = true;
            }
            if !progressed && this.out.is_empty() {
                return Poll::Pending;
            }
        }
    }
}
