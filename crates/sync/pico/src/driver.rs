//! The async driver of the pico machine: actions become network requests, responses become
//! inputs. Everything it holds is bounded by the number of peers (at most two block requests and
//! one head request per peer in flight).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, Stream, StreamExt};
use petrel_blockchain::LightBlockchain;
use petrel_network_api::{Network, NetworkExt, PeerId, RequestError};
use petrel_primitives::Block;
use petrel_protocol::{BlockRequestError, RequestBlock, RequestHead, ResponseHead};
use petrel_sync_api::{MacroSync, MacroSyncReturn};

use crate::machine::{Action, PicoConfig, PicoMachine, PicoStats, RequestId};

/// The light chain shared by the node's sync components.
pub type SharedLightChain = Arc<Mutex<LightBlockchain>>;

enum Outcome {
    Head(RequestId, Result<ResponseHead, RequestError>),
    Block(RequestId, Box<Result<Result<Block, BlockRequestError>, RequestError>>),
    Done,
}

/// Pico Macro Sync over a [`Network`].
pub struct PicoMacroSync<N: Network> {
    machine: PicoMachine,
    network: N,
    chain: SharedLightChain,
    in_flight: FuturesUnordered<BoxFuture<'static, Outcome>>,
    ready: VecDeque<MacroSyncReturn>,
    waker: Option<Waker>,
}

impl<N: Network> PicoMacroSync<N> {
    /// A pico sync over `chain`.
    pub fn new(network: N, chain: SharedLightChain, config: PicoConfig) -> Self {
        Self {
            machine: PicoMachine::new(config),
            network,
            chain,
            in_flight: FuturesUnordered::new(),
            ready: VecDeque::new(),
            waker: None,
        }
    }

    /// Counters of the machine.
    pub fn stats(&self) -> PicoStats {
        self.machine.stats()
    }

    /// The peer whose election block was adopted on trust, if any.
    pub fn optimistic_source(&self) -> Option<PeerId> {
        self.machine.optimistic_source()
    }

    fn wake(&mut self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    fn run_actions(&mut self) {
        while let Some(action) = self.machine.poll_action() {
            match action {
                Action::RequestHead { id, peer } => {
                    let net = self.network.clone();
                    self.in_flight
                        .push(async move { Outcome::Head(id, net.request(peer, &RequestHead).await) }.boxed());
                }
                Action::RequestBlock { id, peer, hash } => {
                    let net = self.network.clone();
                    let req = RequestBlock { hash, include_body: false };
                    self.in_flight
                        .push(async move { Outcome::Block(id, Box::new(net.request(peer, &req).await)) }.boxed());
                }
                Action::Emit(verdict) => self.ready.push_back(verdict),
                Action::Disconnect { peer, reason } => {
                    tracing::debug!(target: "sync::pico", %peer, ?reason, "disconnecting");
                    let net = self.network.clone();
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

    fn lock_chain(&self) -> std::sync::MutexGuard<'_, LightBlockchain> {
        // A poisoned lock only means another holder panicked mid-call; the light chain's own
        // updates are atomic (each push either applies fully or not at all), so continue.
        self.chain.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<N: Network> Stream for PicoMacroSync<N> {
    type Item = MacroSyncReturn;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<MacroSyncReturn>> {
        let this = self.get_mut();
        loop {
            this.run_actions();
            if let Some(v) = this.ready.pop_front() {
                return Poll::Ready(Some(v));
            }
            match this.in_flight.poll_next_unpin(cx) {
                Poll::Ready(Some(outcome)) => {
                    let chain = this.chain.clone();
                    let mut guard = chain.lock().unwrap_or_else(|e| e.into_inner());
                    match outcome {
                        Outcome::Head(id, r) => this.machine.on_head(id, r, &mut guard),
                        Outcome::Block(id, r) => this.machine.on_block(id, *r, &mut guard),
                        Outcome::Done => {}
                    }
                }
                Poll::Ready(None) | Poll::Pending => {
                    this.waker = Some(cx.waker().clone());
                    return Poll::Pending;
                }
            }
        }
    }
}

impl<N: Network> MacroSync for PicoMacroSync<N> {
    fn add_peer(&mut self, peer: PeerId) {
        let services = self.network.peer_info(&peer).map(|i| i.services);
        self.machine.add_peer(peer, services);
        self.wake();
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

impl<N: Network> PicoMacroSync<N> {
    /// Whether the light chain is still at its anchor (for tests and progress).
    pub fn at_anchor(&self) -> bool {
        self.lock_chain().at_anchor()
    }
}
