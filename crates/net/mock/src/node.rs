//! [`MockNetwork`]: one node's handle, implementing the `Network` trait over the hub.
//!
//! A request runs entirely inside the requester's future: the request's transit (a sleep), the
//! serving rules at the server, the handler's answer, the response's transit, and the checks at
//! arrival. A timeout wraps the whole exchange and a disconnect of the link cuts it short.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use petrel_network_api::{
    DisconnectReason, GOSSIP_QUEUE, GossipId, INBOUND_QUEUE, InboundRequest, Network, NetworkError, NetworkEvent,
    PeerId, PeerInfo, Penalty, PenaltyReason, RequestError, RequestLimits, ResponseFrame, Severity, Verdict,
    decode_response_frame,
};
use tokio::sync::{broadcast, mpsc};

use crate::TRACE_TARGET;
use crate::hub::{AsPeerId, Handler, MockHub, Shared, Subscription};
use crate::scripted::ScriptedReply;
use crate::serve::Served;

/// The outcome of one hop of a message.
enum Hop<T> {
    /// It arrived (or left).
    Go(T),
    /// A partition cut the link: the message is gone and the requester waits for its timeout.
    Dropped,
    /// The link was disconnected.
    Closed,
}

impl<T> Hop<T> {
    /// The value, or the requester's fate: waiting forever (the timeout ends it) or a closed
    /// connection.
    async fn pass(self) -> Result<T, RequestError> {
        match self {
            Hop::Go(value) => Ok(value),
            Hop::Dropped => std::future::pending().await,
            Hop::Closed => Err(RequestError::ConnectionClosed),
        }
    }
}

/// Traffic counters of one node, for tests and benches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Requests this node sent (including those refused, lost or timed out).
    pub requests_sent: u64,
    /// Requests that reached this node (including those it refused).
    pub requests_received: u64,
    /// Bytes this node put on links: request payloads, response frames, gossip (once per recipient).
    pub bytes_sent: u64,
    /// Bytes that arrived at this node: request payloads, response frames, gossip.
    pub bytes_received: u64,
    /// Successful `publish_raw` calls.
    pub gossip_published: u64,
    /// Gossip messages queued to this node's subscriptions.
    pub gossip_received: u64,
}

/// One node of a [`MockHub`]: a cheap, cloneable handle implementing [`Network`].
#[derive(Clone)]
pub struct MockNetwork {
    id: PeerId,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for MockNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockNetwork").field("id", &self.id).finish_non_exhaustive()
    }
}

impl AsPeerId for MockNetwork {
    fn as_peer_id(&self) -> PeerId {
        self.id
    }
}

impl MockNetwork {
    pub(crate) fn new(id: PeerId, shared: Arc<Shared>) -> Self {
        Self { id, shared }
    }

    /// This node's id (the same as [`Network::local_peer_id`]).
    pub fn peer_id(&self) -> PeerId {
        self.id
    }

    /// The hub this node belongs to.
    pub fn hub(&self) -> MockHub {
        MockHub::from_shared(self.shared.clone())
    }

    /// This node's address and services, as its peers see them.
    pub fn info(&self) -> PeerInfo {
        self.shared.lock().node(self.id).info.clone()
    }

    /// Whether this node has banned `peer`.
    pub fn is_banned(&self, peer: &PeerId) -> bool {
        self.shared.lock().node(self.id).banned.contains_key(peer)
    }

    /// Why this node banned `peer` (the reason of the penalty that did it), if it did.
    pub fn ban_reason(&self, peer: &PeerId) -> Option<&'static str> {
        self.shared.lock().node(self.id).banned.get(peer).copied()
    }

    /// This node's reputation score of `peer`: 0 at first, lowered by each penalty.
    pub fn score(&self, peer: &PeerId) -> i32 {
        self.shared.lock().node(self.id).scores.get(peer).copied().unwrap_or(0)
    }

    /// This node's traffic counters.
    pub fn stats(&self) -> NodeStats {
        self.shared.lock().node(self.id).stats
    }

    async fn request(
        &self,
        peer: PeerId,
        type_id: u16,
        payload: Vec<u8>,
        max_response: usize,
    ) -> Result<ResponseFrame, RequestError> {
        let (timeout, mut closed, delay) = {
            let mut state = self.shared.lock();
            let Some(link) = state.link(self.id, peer) else { return Err(RequestError::NotConnected) };
            let closed = link.closed.subscribe();
            let stats = &mut state.node_mut(self.id).stats;
            stats.requests_sent += 1;
            stats.bytes_sent += payload.len() as u64;
            let delay = state.transit(self.id, peer, payload.len()).unwrap_or_default();
            // Always draw, so a partition does not shift the RNG sequence of later messages.
            let lost = state.lost();
            let delivered = !lost && !state.partitioned(self.id, peer);
            if !delivered {
                tracing::trace!(target: TRACE_TARGET, from = %self.id, to = %peer, type_id, "request dropped");
            }
            (state.config.request_timeout, closed, delivered.then_some(delay))
        };
        let exchange = self.exchange(peer, type_id, payload, max_response, delay);
        let guarded = async {
            tokio::select! {
                biased;
                result = exchange => result,
                _ = closed.changed() => Err(RequestError::ConnectionClosed),
            }
        };
        tokio::time::timeout(timeout, guarded).await.unwrap_or(Err(RequestError::Timeout))
    }

    /// The request's journey after it left: `delay` is its transit time, `None` if it was dropped.
    async fn exchange(
        &self,
        peer: PeerId,
        type_id: u16,
        payload: Vec<u8>,
        max_response: usize,
        delay: Option<Duration>,
    ) -> Result<ResponseFrame, RequestError> {
        let Some(delay) = delay else { return std::future::pending().await };
        tokio::time::sleep(delay).await;
        let served = self.arrive_request(peer, type_id, payload).pass().await?;
        let frame = match served {
            Served::Refused(status) => vec![status as u8],
            // A handler that drops the request without answering: the stream closes without a
            // response frame, which the requester sees as a closed connection.
            Served::Queued(answer) => answer.await.map_err(|_| RequestError::ConnectionClosed)?,
            Served::Script(script, payload) => self.run_script(peer, script(self.id, type_id, payload)).await?,
        };
        let delay = self.depart_response(peer, frame.len()).pass().await?;
        tokio::time::sleep(delay).await;
        self.arrive_response(peer, frame.len()).pass().await?;
        if frame.len() > max_response.saturating_add(1) {
            return Err(RequestError::ResponseTooLarge(frame.len() - 1));
        }
        decode_response_frame(frame)
    }

    /// The request reaches `peer`, which applies its serving rules.
    fn arrive_request(&self, peer: PeerId, type_id: u16, payload: Vec<u8>) -> Hop<Served> {
        let mut state = self.shared.lock();
        if state.link(peer, self.id).is_none() {
            Hop::Closed
        } else if state.partitioned(self.id, peer) {
            Hop::Dropped
        } else {
            Hop::Go(state.serve_request(peer, self.id, type_id, payload))
        }
    }

    /// `peer` sends a response frame of `len` bytes back; returns its transit time.
    fn depart_response(&self, peer: PeerId, len: usize) -> Hop<Duration> {
        let mut state = self.shared.lock();
        if state.partitioned(self.id, peer) {
            return Hop::Dropped;
        }
        match state.transit(peer, self.id, len) {
            Some(delay) => {
                state.node_mut(peer).stats.bytes_sent += len as u64;
                Hop::Go(delay)
            }
            None => Hop::Closed,
        }
    }

    /// The response frame of `len` bytes reaches this node.
    fn arrive_response(&self, peer: PeerId, len: usize) -> Hop<()> {
        let mut state = self.shared.lock();
        if state.link(self.id, peer).is_none() {
            Hop::Closed
        } else if state.partitioned(self.id, peer) {
            Hop::Dropped
        } else {
            state.node_mut(self.id).stats.bytes_received += len as u64;
            Hop::Go(())
        }
    }

    /// Plays a scripted server's reply.
    async fn run_script(&self, server: PeerId, mut reply: ScriptedReply) -> Result<Vec<u8>, RequestError> {
        loop {
            match reply {
                ScriptedReply::Frame(frame) => return Ok(frame),
                ScriptedReply::Silence => return std::future::pending().await,
                ScriptedReply::Disconnect => {
                    self.shared.lock().unlink(server, self.id);
                    return Err(RequestError::ConnectionClosed);
                }
                ScriptedReply::Delay(delay, next) => {
                    tokio::time::sleep(delay).await;
                    reply = *next;
                }
            }
        }
    }

    async fn publish(&self, topic: &'static str, data: Vec<u8>) -> Result<(), NetworkError> {
        let deliveries = {
            let mut state = self.shared.lock();
            let recipients: Vec<PeerId> = state
                .node(self.id)
                .links
                .keys()
                .copied()
                .filter(|peer| state.node(*peer).topics.get(topic).is_some_and(|s| !s.queue.is_closed()))
                .collect();
            if recipients.is_empty() {
                return Err(NetworkError::NoPeers);
            }
            let stats = &mut state.node_mut(self.id).stats;
            stats.gossip_published += 1;
            stats.bytes_sent += (data.len() * recipients.len()) as u64;
            let mut deliveries = Vec::with_capacity(recipients.len());
            for peer in recipients {
                let delay = state.transit(self.id, peer, data.len()).unwrap_or_default();
                let lost = state.lost();
                if !lost && !state.partitioned(self.id, peer) {
                    deliveries.push((peer, delay));
                } else {
                    tracing::trace!(target: TRACE_TARGET, from = %self.id, to = %peer, topic, "gossip dropped");
                }
            }
            deliveries
        };
        for (peer, delay) in deliveries {
            let shared = self.shared.clone();
            let (from, data) = (self.id, data.clone());
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                shared.lock().deliver_gossip(peer, from, topic, data);
            });
        }
        Ok(())
    }
}

impl Network for MockNetwork {
    fn local_peer_id(&self) -> PeerId {
        self.id
    }

    fn subscribe_events(&self) -> broadcast::Receiver<NetworkEvent> {
        self.shared.lock().node(self.id).events.subscribe()
    }

    fn peers(&self) -> Vec<(PeerId, PeerInfo)> {
        let state = self.shared.lock();
        state.node(self.id).links.keys().map(|peer| (*peer, state.node(*peer).info.clone())).collect()
    }

    fn peer_info(&self, peer: &PeerId) -> Option<PeerInfo> {
        let state = self.shared.lock();
        state.link(self.id, *peer)?;
        Some(state.node(*peer).info.clone())
    }

    fn request_raw(
        &self,
        peer: PeerId,
        type_id: u16,
        payload: Vec<u8>,
        max_response: usize,
    ) -> impl Future<Output = Result<ResponseFrame, RequestError>> + Send {
        let this = self.clone();
        async move { this.request(peer, type_id, payload, max_response).await }
    }

    fn receive_requests_raw(&self, limits: RequestLimits) -> mpsc::Receiver<InboundRequest> {
        let (queue, rx) = mpsc::channel(INBOUND_QUEUE);
        self.shared.lock().node_mut(self.id).handlers.insert(limits.type_id, Handler { limits, queue });
        rx
    }

    fn publish_raw(&self, topic: &'static str, data: Vec<u8>) -> impl Future<Output = Result<(), NetworkError>> + Send {
        let this = self.clone();
        async move { this.publish(topic, data).await }
    }

    fn subscribe_raw(
        &self,
        topic: &'static str,
        max_size: usize,
    ) -> impl Future<Output = Result<mpsc::Receiver<(Vec<u8>, PeerId, GossipId)>, NetworkError>> + Send {
        let this = self.clone();
        async move {
            let (queue, rx) = mpsc::channel(GOSSIP_QUEUE);
            this.shared.lock().node_mut(this.id).topics.insert(topic, Subscription { queue, max_size });
            Ok(rx)
        }
    }

    fn validate(&self, id: GossipId, verdict: Verdict) {
        let mut state = self.shared.lock();
        let Some(source) = state.node_mut(self.id).verdicts.remove(&id.0) else { return };
        if verdict == Verdict::Reject {
            state.penalize(self.id, source, Penalty::new(Severity::InvalidData, PenaltyReason::RejectedGossip));
        }
    }

    fn penalize(&self, peer: PeerId, penalty: Penalty) {
        self.shared.lock().penalize(self.id, peer, penalty);
    }

    fn disconnect(&self, peer: PeerId, reason: DisconnectReason) -> impl Future<Output = ()> + Send {
        let this = self.clone();
        async move {
            let mut state = this.shared.lock();
            if reason == DisconnectReason::Malicious {
                state.ban(this.id, peer, "disconnected as malicious");
            } else {
                state.unlink(this.id, peer);
            }
        }
    }
}
