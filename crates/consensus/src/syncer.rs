//! The syncer: runs the macro sync, the live sync and the syncer's rules
//! ([`crate::syncer_machine::SyncerMachine`], where every decision lives and is unit-tested) over a
//! network and a chain (protocol-reference §3.3, §7.1–7.2; protocol.md §11.4–§11.5).
//!
//! [`Syncer`] is the machine's driver: it turns peer events, verdicts, live-sync events, head
//! answers and timer ticks into inputs, and carries out the actions (hand peers to macro or live
//! sync, send head requests and block fetches, penalise, fall back, report events).

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{BoxStream, FuturesUnordered};
use futures::{FutureExt, Stream, StreamExt};
use petrel_network_api::{Network, NetworkEvent, NetworkExt, PeerId, RequestError};
use petrel_protocol::{RequestHead, ResponseHead};
use petrel_sync_api::{LiveSync, LiveSyncEvent, MacroSync, MacroSyncReturn};
use tokio::time::{Interval, MissedTickBehavior};

use crate::chain::SyncChain;
use crate::established::EstablishedConfig;
use crate::syncer_machine::{SyncerAction, SyncerInput, SyncerMachine, SyncerView};

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
type Check = BoxFuture<'static, (PeerId, Result<ResponseHead, RequestError>)>;

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

/// The syncer: [`SyncerMachine`] over a network, a chain, a macro sync and a live sync.
pub struct Syncer<N: Network, C: SyncChain, M: MacroSync, L: LiveSync> {
    network: N,
    chain: C,
    macro_sync: M,
    live: L,
    machine: SyncerMachine,
    net_events: BoxStream<'static, NetworkEvent>,
    check_timer: Interval,
    head_timer: Interval,
    head_round: Option<HeadRound>,
    checks: FuturesUnordered<Check>,
    out: VecDeque<ConsensusEvent>,
    started: bool,
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
            machine: SyncerMachine::new(config),
            net_events,
            check_timer,
            head_timer,
            head_round: None,
            checks: FuturesUnordered::new(),
            out: VecDeque::new(),
            started: false,
        }
    }

    /// Whether the node is established.
    pub fn is_established(&self) -> bool {
        self.machine.is_established()
    }

    /// Counters.
    pub fn stats(&self) -> SyncerStats {
        self.machine.stats()
    }

    /// The macro sync.
    pub fn macro_sync(&self) -> &M {
        &self.macro_sync
    }

    /// The live sync.
    pub fn live(&self) -> &L {
        &self.live
    }

    fn view(&self) -> SyncerView {
        SyncerView { head: self.chain.head(), policy: self.chain.policy() }
    }

    /// Feeds one input to the machine and carries out its actions.
    fn feed(&mut self, input: SyncerInput) {
        let view = self.view();
        self.machine.handle(input, &view);
        while let Some(action) = self.machine.poll_action() {
            self.act(action);
        }
    }

    fn act(&mut self, action: SyncerAction) {
        let net = self.network.clone();
        match action {
            SyncerAction::AddToMacro(p) => self.macro_sync.add_peer(p),
            SyncerAction::RemoveFromMacro(p) => self.macro_sync.remove_peer(&p),
            SyncerAction::AddToLive(p) => self.live.add_peer(p),
            SyncerAction::RemoveFromLive(p) => self.live.remove_peer(&p),
            SyncerAction::Fallback(peers) => {
                tracing::info!(target: "consensus", peers = peers.len(), "conflicting macro chain: falling back");
                self.macro_sync.fallback(peers);
            }
            SyncerAction::StartHeadRound(peers) => {
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
            SyncerAction::CheckHead(p) => {
                self.checks.push(async move { (p, net.request(p, &RequestHead).await) }.boxed());
            }
            SyncerAction::HeadToLive(p, head) => self.live.peer_head(p, head),
            SyncerAction::Penalize(p, penalty) => {
                tracing::debug!(target: "consensus", peer = %p, %penalty, "penalizing peer");
                self.network.penalize(p, penalty);
            }
            SyncerAction::ResetHeadTimer => self.head_timer.reset(),
            SyncerAction::Emit(event) => {
                match &event {
                    ConsensusEvent::Established => {
                        tracing::info!(target: "consensus", live_peers = self.machine.live_peers(), "consensus established")
                    }
                    ConsensusEvent::Lost => {
                        tracing::info!(target: "consensus", live_peers = self.machine.live_peers(), "consensus lost")
                    }
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
                this.feed(SyncerInput::PeerJoined(peer));
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
                    NetworkEvent::PeerJoined(peer, _) => this.feed(SyncerInput::PeerJoined(peer)),
                    NetworkEvent::PeerLeft(peer) => this.feed(SyncerInput::PeerLeft(peer)),
                }
            }
            if let Poll::Ready(Some(v)) = this.macro_sync.poll_next_unpin(cx) {
                this.feed(SyncerInput::Verdict(v));
                progressed = true;
            }
            if let Poll::Ready(Some(e)) = this.live.poll_next_unpin(cx) {
                this.feed(SyncerInput::Live(e));
                progressed = true;
            }
            if this.check_timer.poll_tick(cx).is_ready() {
                this.feed(SyncerInput::CheckTimer);
                progressed = true;
            }
            if this.head_timer.poll_tick(cx).is_ready() {
                this.feed(SyncerInput::HeadTimer);
                progressed = true;
            }
            if let Some(round) = this.head_round.as_mut()
                && let Poll::Ready(results) = round.poll_unpin(cx)
            {
                this.head_round = None;
                let answers = results
                    .into_iter()
                    .map(|(p, r)| (p, r.map(|head| (head, this.chain.knows(&head.block_hash)))))
                    .collect();
                this.feed(SyncerInput::HeadRoundDone(answers));
                progressed = true;
            }
            while let Poll::Ready(Some((peer, r))) = this.checks.poll_next_unpin(cx) {
                this.feed(SyncerInput::Checked(peer, r));
                progressed = true;
            }
            if !progressed && this.out.is_empty() {
                return Poll::Pending;
            }
        }
    }
}
