//! The one async driver of the macro-sync state machines (pico and light): it turns a machine's
//! [`Action`]s into network requests and their answers back into [`Incoming`] inputs, and
//! implements [`MacroSync`]. Everything it holds is bounded by what the machine asks for.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, Stream, StreamExt};
use petrel_blockchain::LightBlockchain;
use petrel_network_api::{DisconnectReason, Network, NetworkExt, PeerId, RequestError, Services};
use petrel_primitives::{Blake2bHash, Block};
use petrel_protocol::{
    BlockRequestError, MacroChain, MacroChainError, RequestBlock, RequestHead, RequestMacroChain, ResponseHead,
};

use crate::{MacroSync, MacroSyncReturn};

/// Identifies a request issued by a machine.
pub type RequestId = u64;

/// A request a machine wants sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outgoing {
    /// `RequestHead`.
    Head,
    /// `RequestBlock` without body.
    Block {
        /// Block hash.
        hash: Blake2bHash,
    },
    /// `RequestMacroChain`.
    MacroChain {
        /// Locators, newest first.
        locators: Vec<Blake2bHash>,
        /// Election hashes wanted.
        max_epochs: u16,
    },
}

/// The answer (or failure) to an [`Outgoing`] request.
#[derive(Debug)]
pub enum Incoming {
    /// To `RequestHead`.
    Head(Result<ResponseHead, RequestError>),
    /// To `RequestBlock` (boxed: a block is large).
    Block(Box<Result<Result<Block, BlockRequestError>, RequestError>>),
    /// To `RequestMacroChain`.
    MacroChain(Result<Result<MacroChain, MacroChainError>, RequestError>),
}

/// What a machine asks its driver to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send a request to a peer.
    Request {
        /// Request id, echoed in [`Machine::on_response`].
        id: RequestId,
        /// Peer.
        peer: PeerId,
        /// The request.
        request: Outgoing,
    },
    /// Report a verdict.
    Emit(MacroSyncReturn),
    /// Disconnect (and for `Malicious`, ban) a peer.
    Disconnect {
        /// Peer.
        peer: PeerId,
        /// Reason.
        reason: DisconnectReason,
    },
}

/// A sans-I/O macro-sync machine over the light chain.
pub trait Machine: Send + Unpin + 'static {
    /// Settings.
    type Config;
    /// Counters.
    type Stats: Copy;
    /// A machine with no peers.
    fn new(config: Self::Config) -> Self;
    /// Starts syncing with a peer advertising `services` (`None`: unknown peer).
    fn add_peer(&mut self, peer: PeerId, services: Option<Services>, chain: &LightBlockchain);
    /// Forgets a peer; its outstanding answers are ignored.
    fn remove_peer(&mut self, peer: &PeerId);
    /// Removes and returns every peer.
    fn drain_peers(&mut self) -> Vec<PeerId>;
    /// Peers being synced.
    fn num_peers(&self) -> usize;
    /// An answer (or failure) arrived.
    fn on_response(&mut self, id: RequestId, incoming: Incoming, chain: &mut LightBlockchain);
    /// Called before actions are taken, with the chain (e.g. to resume waiting peers).
    fn resume(&mut self, _chain: &LightBlockchain) {}
    /// The next action.
    fn poll_action(&mut self) -> Option<Action>;
    /// Counters.
    fn stats(&self) -> Self::Stats;
}

enum Outcome {
    Response(RequestId, Incoming),
    Done,
}

/// Drives a [`Machine`] over a [`Network`] and a shared light chain.
pub struct MachineDriver<M: Machine, N: Network> {
    machine: M,
    network: N,
    chain: Arc<Mutex<LightBlockchain>>,
    in_flight: FuturesUnordered<BoxFuture<'static, Outcome>>,
    ready: VecDeque<MacroSyncReturn>,
    waker: Option<Waker>,
    target: &'static str,
}

impl<M: Machine, N: Network> MachineDriver<M, N> {
    /// A driver for a new machine with `config`.
    pub fn new(network: N, chain: Arc<Mutex<LightBlockchain>>, config: M::Config) -> Self {
        Self {
            machine: M::new(config),
            network,
            chain,
            in_flight: FuturesUnordered::new(),
            ready: VecDeque::new(),
            waker: None,
            target: std::any::type_name::<M>(),
        }
    }

    /// The machine's counters.
    pub fn stats(&self) -> M::Stats {
        self.machine.stats()
    }

    /// The machine.
    pub fn machine(&self) -> &M {
        &self.machine
    }

    fn lock(chain: &Mutex<LightBlockchain>) -> std::sync::MutexGuard<'_, LightBlockchain> {
        // A poisoned lock only means another holder panicked mid-call; the light chain's updates
        // apply fully or not at all, so continue.
        chain.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn run_actions(&mut self) {
        self.machine.resume(&Self::lock(&self.chain));
        while let Some(action) = self.machine.poll_action() {
            let net = self.network.clone();
            match action {
                Action::Request { id, peer, request } => self.in_flight.push(
                    async move {
                        let incoming = match request {
                            Outgoing::Head => Incoming::Head(net.request(peer, &RequestHead).await),
                            Outgoing::Block { hash } => Incoming::Block(Box::new(
                                net.request(peer, &RequestBlock { hash, include_body: false }).await,
                            )),
                            Outgoing::MacroChain { locators, max_epochs } => Incoming::MacroChain(
                                net.request(peer, &RequestMacroChain { locators, max_epochs }).await,
                            ),
                        };
                        Outcome::Response(id, incoming)
                    }
                    .boxed(),
                ),
                Action::Emit(verdict) => self.ready.push_back(verdict),
                Action::Disconnect { peer, reason } => {
                    tracing::debug!(target: "sync", machine = self.target, %peer, ?reason, "disconnecting");
                    self.in_flight.push(
                        async move {
                            net.disconnect(peer, reason).await;
                            Outcome::Done
                        }
                        .boxed(),
                    );
                }
            }
        }
    }
}

impl<M: Machine, N: Network> Stream for MachineDriver<M, N> {
    type Item = MacroSyncReturn;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<MacroSyncReturn>> {
        let this = self.get_mut();
        loop {
            this.run_actions();
            if let Some(v) = this.ready.pop_front() {
                return Poll::Ready(Some(v));
            }
            match this.in_flight.poll_next_unpin(cx) {
                Poll::Ready(Some(Outcome::Response(id, incoming))) => {
                    let chain = this.chain.clone();
                    this.machine.on_response(id, incoming, &mut Self::lock(&chain));
                }
                Poll::Ready(Some(Outcome::Done)) => {}
                Poll::Ready(None) | Poll::Pending => {
                    this.waker = Some(cx.waker().clone());
                    return Poll::Pending;
                }
            }
        }
    }
}

impl<M: Machine, N: Network> MacroSync for MachineDriver<M, N> {
    fn add_peer(&mut self, peer: PeerId) {
        let services = self.network.peer_info(&peer).map(|i| i.services);
        let chain = self.chain.clone();
        self.machine.add_peer(peer, services, &Self::lock(&chain));
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    fn remove_peer(&mut self, peer: &PeerId) {
        self.machine.remove_peer(peer);
    }

    fn drain_peers(&mut self) -> Vec<PeerId> {
        self.machine.drain_peers()
    }

    fn num_peers(&self) -> usize {
        self.machine.num_peers()
    }
}

/// The bookkeeping every machine needs: per-peer state, which peer each outstanding request went
/// to, and the queue of actions for the driver.
#[derive(Debug)]
pub struct PeerBook<S> {
    /// State per peer being synced.
    pub peers: std::collections::HashMap<PeerId, S>,
    requests: std::collections::HashMap<RequestId, PeerId>,
    next_id: RequestId,
    actions: VecDeque<Action>,
}

impl<S> Default for PeerBook<S> {
    fn default() -> Self {
        Self { peers: Default::default(), requests: Default::default(), next_id: 0, actions: VecDeque::new() }
    }
}

impl<S> PeerBook<S> {
    /// Queues a request to `peer` and returns its id.
    pub fn request(&mut self, peer: PeerId, request: Outgoing) -> RequestId {
        self.next_id += 1;
        let id = self.next_id;
        self.requests.insert(id, peer);
        self.actions.push_back(Action::Request { id, peer, request });
        id
    }

    /// The peer an answered request went to, if it is still outstanding (forgets the request).
    pub fn answered(&mut self, id: RequestId) -> Option<PeerId> {
        self.requests.remove(&id)
    }

    /// Queues a verdict.
    pub fn emit(&mut self, verdict: MacroSyncReturn) {
        self.actions.push_back(Action::Emit(verdict));
    }

    /// Forgets a peer and its outstanding requests.
    pub fn remove(&mut self, peer: &PeerId) {
        self.peers.remove(peer);
        self.requests.retain(|_, p| p != peer);
    }

    /// Forgets every peer and returns them.
    pub fn drain(&mut self) -> Vec<PeerId> {
        self.requests.clear();
        self.peers.drain().map(|(p, _)| p).collect()
    }

    /// Forgets a peer and reports its verdict.
    pub fn finish(&mut self, peer: PeerId, verdict: MacroSyncReturn) {
        self.remove(&peer);
        self.emit(verdict);
    }

    /// Forgets a peer and disconnects it.
    pub fn fail(&mut self, peer: PeerId, reason: DisconnectReason) {
        self.remove(&peer);
        self.actions.push_back(Action::Disconnect { peer, reason });
    }

    /// A request to `peer` failed: a bad answer bans it; an overloaded peer is asked again later
    /// (Outdated); anything else (timeout, closed connection) disconnects it.
    pub fn request_failed(&mut self, peer: PeerId, e: &RequestError) {
        if e.is_peer_fault() {
            self.fail(peer, DisconnectReason::Malicious)
        } else if matches!(e, RequestError::Busy | RequestError::RateLimited) {
            self.finish(peer, MacroSyncReturn::Outdated(peer))
        } else {
            self.fail(peer, DisconnectReason::Error)
        }
    }

    /// The next action for the driver.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }
}
