//! `DirectToLive`: the macro sync of a node that already holds the chain (the devnet's serving
//! nodes, built by the producer): every peer that serves full blocks is Good at once and goes
//! straight to live sync; others are Incompatible. History and full nodes use it until History
//! Macro Sync exists.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use futures::Stream;
use petrel_network_api::{Network, PeerId, Services};
use petrel_sync_api::{MacroSync, MacroSyncReturn};

/// Every capable peer straight to live sync.
pub struct DirectToLive<N: Network> {
    network: N,
    required: Services,
    ready: VecDeque<MacroSyncReturn>,
    waker: Option<Waker>,
}

impl<N: Network> DirectToLive<N> {
    /// Peers must provide `required`.
    pub fn new(network: N, required: Services) -> Self {
        Self { network, required, ready: VecDeque::new(), waker: None }
    }
}

impl<N: Network> Stream for DirectToLive<N> {
    type Item = MacroSyncReturn;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<MacroSyncReturn>> {
        let this = self.get_mut();
        match this.ready.pop_front() {
            Some(v) => Poll::Ready(Some(v)),
            None => {
                this.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl<N: Network> MacroSync for DirectToLive<N> {
    fn add_peer(&mut self, peer: PeerId) {
        let verdict = if self.network.peer_provides(&peer, self.required) {
            MacroSyncReturn::Good(peer)
        } else {
            MacroSyncReturn::Incompatible(peer)
        };
        self.ready.push_back(verdict);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
    fn remove_peer(&mut self, peer: &PeerId) {
        self.ready.retain(|v| v.peer() != *peer);
    }
    fn drain_peers(&mut self) -> Vec<PeerId> {
        self.ready.drain(..).map(|v| v.peer()).collect()
    }
    fn num_peers(&self) -> usize {
        self.ready.len()
    }
}
