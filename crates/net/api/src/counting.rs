//! A network wrapper that counts its user's outbound requests: requests sent and failed, request
//! and response payload bytes. Used for summaries, progress and benchmarks; it adds
//! two atomic increments per request. The same counts go to the `metrics` facade by request type
//! and peer class (`net.requests.sent`, `net.requests.failed`, `net.bytes.sent`,
//! `net.bytes.received`; docs/metrics.md), a no-op unless the process installed a recorder.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{broadcast, mpsc};

use crate::{
    DisconnectReason, GossipId, InboundRequest, Network, NetworkError, NetworkEvent, PeerId, PeerInfo, Penalty,
    RequestError, RequestLimits, ResponseFrame, Verdict,
};

/// Counters of a [`Counting`] network.
#[derive(Debug, Default)]
pub struct Traffic {
    requests_sent: AtomicU64,
    requests_failed: AtomicU64,
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
}

/// A snapshot of [`Traffic`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TrafficSnapshot {
    /// Requests sent.
    pub requests_sent: u64,
    /// Requests that failed (timeouts, errors, refusals).
    pub requests_failed: u64,
    /// Request payload bytes sent.
    pub bytes_sent: u64,
    /// Response payload bytes received.
    pub bytes_received: u64,
}

impl Traffic {
    /// The current values.
    pub fn snapshot(&self) -> TrafficSnapshot {
        TrafficSnapshot {
            requests_sent: self.requests_sent.load(Ordering::Relaxed),
            requests_failed: self.requests_failed.load(Ordering::Relaxed),
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
            bytes_received: self.bytes_received.load(Ordering::Relaxed),
        }
    }
}

/// Called after each answered request with the total response bytes received so far.
pub type ReceivedHook = Arc<dyn Fn(u64) + Send + Sync>;

/// Wraps a network and counts its outbound requests.
#[derive(Clone)]
pub struct Counting<N> {
    inner: N,
    traffic: Arc<Traffic>,
    on_received: Option<ReceivedHook>,
}

impl<N: std::fmt::Debug> std::fmt::Debug for Counting<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counting").field("inner", &self.inner).field("traffic", &self.traffic).finish_non_exhaustive()
    }
}

impl<N: Network> Counting<N> {
    /// Wraps `inner`.
    pub fn new(inner: N) -> Self {
        Self { inner, traffic: Arc::default(), on_received: None }
    }
    /// Calls `hook` after each answered request with the total response bytes received so far
    /// (the node's crash test stops the process at a chosen byte count with it).
    #[must_use]
    pub fn with_received_hook(mut self, hook: ReceivedHook) -> Self {
        self.on_received = Some(hook);
        self
    }
    /// The counters.
    pub fn traffic(&self) -> TrafficSnapshot {
        self.traffic.snapshot()
    }
    /// The wrapped network.
    pub fn inner(&self) -> &N {
        &self.inner
    }
}

impl<N: Network> Network for Counting<N> {
    fn local_peer_id(&self) -> PeerId {
        self.inner.local_peer_id()
    }
    fn subscribe_events(&self) -> broadcast::Receiver<NetworkEvent> {
        self.inner.subscribe_events()
    }
    fn peers(&self) -> Vec<(PeerId, PeerInfo)> {
        self.inner.peers()
    }
    fn peer_info(&self, peer: &PeerId) -> Option<PeerInfo> {
        self.inner.peer_info(peer)
    }
    fn request_raw(
        &self,
        peer: PeerId,
        type_id: u16,
        payload: Vec<u8>,
        max_response: usize,
    ) -> impl Future<Output = Result<ResponseFrame, RequestError>> + Send {
        let traffic = self.traffic.clone();
        let hook = self.on_received.clone();
        traffic.requests_sent.fetch_add(1, Ordering::Relaxed);
        traffic.bytes_sent.fetch_add(payload.len() as u64, Ordering::Relaxed);
        let class = self.inner.peer_info(&peer).map_or("unknown", |i| i.services.class());
        let kind = type_id.to_string();
        metrics::counter!("net.requests.sent", "type" => kind.clone(), "class" => class).increment(1);
        metrics::counter!("net.bytes.sent", "type" => kind.clone(), "class" => class).increment(payload.len() as u64);
        let fut = self.inner.request_raw(peer, type_id, payload, max_response);
        async move {
            let result = fut.await;
            match &result {
                Ok(frame) => {
                    let len = frame.payload().len() as u64;
                    let total = traffic.bytes_received.fetch_add(len, Ordering::Relaxed) + len;
                    metrics::counter!("net.bytes.received", "type" => kind, "class" => class).increment(len);
                    if let Some(hook) = &hook {
                        hook(total);
                    }
                }
                Err(_) => {
                    traffic.requests_failed.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("net.requests.failed", "type" => kind, "class" => class).increment(1);
                }
            }
            result
        }
    }
    fn receive_requests_raw(&self, limits: RequestLimits) -> mpsc::Receiver<InboundRequest> {
        self.inner.receive_requests_raw(limits)
    }
    fn publish_raw(&self, topic: &'static str, data: Vec<u8>) -> impl Future<Output = Result<(), NetworkError>> + Send {
        self.inner.publish_raw(topic, data)
    }
    fn subscribe_raw(
        &self,
        topic: &'static str,
        max_size: usize,
    ) -> impl Future<Output = Result<mpsc::Receiver<(Vec<u8>, PeerId, GossipId)>, NetworkError>> + Send {
        self.inner.subscribe_raw(topic, max_size)
    }
    fn validate(&self, id: GossipId, verdict: Verdict) {
        self.inner.validate(id, verdict)
    }
    fn penalize(&self, peer: PeerId, penalty: Penalty) {
        self.inner.penalize(peer, penalty)
    }
    fn disconnect(&self, peer: PeerId, reason: DisconnectReason) -> impl Future<Output = ()> + Send {
        self.inner.disconnect(peer, reason)
    }
}
