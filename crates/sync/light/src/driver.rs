//! The async driver of the light machine.

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
use petrel_protocol::{BlockRequestError, MacroChain, MacroChainError, RequestBlock, RequestMacroChain};
use petrel_sync_api::{MacroSync, MacroSyncReturn};

use crate::machine::{Action, LightConfig, LightMachine, LightStats, RequestId};

enum Outcome {
    MacroChain(RequestId, Result<Result<MacroChain, MacroChainError>, RequestError>),
    Block(RequestId, Box<Result<Result<Block, BlockRequestError>, RequestError>>),
    Done,
}

/// Light Macro Sync over a [`Network`].
pub struct LightMacroSync<N: Network> {
    machine: LightMachine,
    network: N,
    chain: Arc<Mutex<LightBlockchain>>,
    in_flight: FuturesUnordered<BoxFuture<'static, Outcome>>,
    ready: VecDeque<MacroSyncReturn>,
    waker: Option<Waker>,
}

impl<N: Network> LightMacroSync<N> {
    /// A light sync over `chain`.
    pub fn new(network: N, chain: Arc<Mutex<LightBlockchain>>, config: LightConfig) -> Self {
        Self {
            machine: LightMachine::new(config),
            network,
            chain,
            in_flight: FuturesUnordered::new(),
            ready: VecDeque::new(),
            waker: None,
        }
    }

    /// Counters.
    pub fn stats(&self) -> LightStats {
        self.machine.stats()
    }

    fn run_actions(&mut self) {
        {
            let chain = self.chain.lock().unwrap_or_else(|e| e.into_inner());
            self.machine.resume(&chain);
        }
        while let Some(action) = self.machine.poll_action() {
            let net = self.network.clone();
            match action {
                Action::RequestMacroChain { id, peer, locators, max_epochs } => {
                    let req = RequestMacroChain { locators, max_epochs };
                    self.in_flight.push(async move { Outcome::MacroChain(id, net.request(peer, &req).await) }.boxed());
                }
                Action::RequestBlock { id, peer, hash } => {
                    let req = RequestBlock { hash, include_body: false };
                    self.in_flight
                        .push(async move { Outcome::Block(id, Box::new(net.request(peer, &req).await)) }.boxed());
                }
                Action::Emit(v) => self.ready.push_back(v),
                Action::Disconnect { peer, reason } => {
                    tracing::debug!(target: "sync::light", %peer, ?reason, "disconnecting");
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

impl<N: Network> Stream for LightMacroSync<N> {
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
                        Outcome::MacroChain(id, r) => this.machine.on_macro_chain(id, r, &guard),
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

impl<N: Network> MacroSync for LightMacroSync<N> {
    fn add_peer(&mut self, peer: PeerId) {
        let services = self.network.peer_info(&peer).map(|i| i.services);
        {
            let chain = self.chain.lock().unwrap_or_else(|e| e.into_inner());
            self.machine.add_peer(peer, services, &chain);
        }
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
