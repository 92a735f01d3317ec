//! The receiving side: the rules a node applies to an arriving request (handler lookup, size limit,
//! rate limit, bounded queue) and to an arriving gossip message (subscription, size limit, bounded
//! queue), with the penalties the real network gives.

use petrel_network_api::{
    GossipId, InboundRequest, PeerId, Penalty, PenaltyReason, ResponseStatus, Severity, promised,
};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::TRACE_TARGET;
use crate::hub::{MAX_PENDING_VERDICTS, State};
use crate::scripted::ScriptFn;

/// What became of a request that reached its server.
pub(crate) enum Served {
    /// Refused by the serving rules: the response frame is this status alone.
    Refused(ResponseStatus),
    /// Queued to the handler; its answer comes on this channel (dropped: no answer).
    Queued(oneshot::Receiver<Vec<u8>>),
    /// The server is scripted: run the script on the payload, outside the hub's lock.
    Script(ScriptFn, Vec<u8>),
}

impl State {
    /// `server` receives `payload` of `type_id` from `from` (the two are connected and not cut).
    ///
    /// In order: no handler for the type → `Unsupported`, penalised unless the server's services
    /// promise the type; payload over the type's
    /// `max_request_size` → `Malformed`, penalised; more than `max_requests` accepted in the last
    /// `time_window` (sliding window) → `RateLimited`, penalised; handler queue full → `Busy`. A
    /// handler whose receiver was dropped is forgotten and answered `Unsupported` without penalty
    /// (the peer could not know we stopped serving).
    pub(crate) fn serve_request(&mut self, server: PeerId, from: PeerId, type_id: u16, payload: Vec<u8>) -> Served {
        let promises = self.config.promises;
        let node = self.node_mut(server);
        node.stats.requests_received += 1;
        node.stats.bytes_received += payload.len() as u64;
        if let Some(script) = &node.script {
            return Served::Script(script.clone(), payload);
        }
        let Some(handler) = node.handlers.get(&type_id) else {
            // Penalised only if our services did not promise the type (the requester could know).
            let promised = promised(promises, node.info.services, type_id);
            let penalty = (!promised).then(|| Penalty::new(Severity::InvalidData, PenaltyReason::UnsupportedRequest));
            return self.refuse(server, from, type_id, ResponseStatus::Unsupported, penalty);
        };
        if handler.queue.is_closed() {
            node.handlers.remove(&type_id);
            return self.refuse(server, from, type_id, ResponseStatus::Unsupported, None);
        }
        let limits = handler.limits;
        if payload.len() > limits.max_request_size {
            return self.refuse(
                server,
                from,
                type_id,
                ResponseStatus::Malformed,
                Some(Penalty::new(Severity::InvalidData, PenaltyReason::MalformedRequest)),
            );
        }
        let now = Instant::now();
        let window = node.windows.entry((from, type_id)).or_default();
        while window.front().is_some_and(|&t| now.duration_since(t) >= limits.time_window) {
            window.pop_front();
        }
        if window.len() >= limits.max_requests as usize {
            return self.refuse(
                server,
                from,
                type_id,
                ResponseStatus::RateLimited,
                Some(Penalty::new(Severity::InvalidData, PenaltyReason::RateLimitExceeded)),
            );
        }
        window.push_back(now);
        let (responder, answer) = oneshot::channel();
        let queue = node.handlers.get(&type_id).map(|h| h.queue.clone());
        match queue.map(|q| q.try_send(InboundRequest { peer: from, payload, responder })) {
            Some(Ok(())) => Served::Queued(answer),
            Some(Err(mpsc::error::TrySendError::Full(_))) => {
                self.refuse(server, from, type_id, ResponseStatus::Busy, None)
            }
            Some(Err(mpsc::error::TrySendError::Closed(_))) | None => {
                self.node_mut(server).handlers.remove(&type_id);
                self.refuse(server, from, type_id, ResponseStatus::Unsupported, None)
            }
        }
    }

    fn refuse(
        &mut self,
        server: PeerId,
        from: PeerId,
        type_id: u16,
        status: ResponseStatus,
        penalty: Option<Penalty>,
    ) -> Served {
        tracing::trace!(target: TRACE_TARGET, %server, %from, type_id, ?status, "request refused");
        if let Some(penalty) = penalty {
            self.penalize(server, from, penalty);
        }
        Served::Refused(status)
    }

    /// A gossip message from `from` arrives at `to`. Dropped unless the two are still connected and
    /// not cut, and `to` subscribes to the topic; an oversized message is dropped and its sender
    /// penalised; a full queue drops the message.
    pub(crate) fn deliver_gossip(&mut self, to: PeerId, from: PeerId, topic: &'static str, data: Vec<u8>) {
        if self.link(to, from).is_none() || self.partitioned(to, from) {
            tracing::trace!(target: TRACE_TARGET, %to, %from, topic, "gossip dropped in transit");
            return;
        }
        let node = self.node_mut(to);
        node.stats.bytes_received += data.len() as u64;
        let Some(sub) = node.topics.get(topic) else { return };
        if sub.queue.is_closed() {
            node.topics.remove(topic);
            return;
        }
        if data.len() > sub.max_size {
            self.penalize(to, from, Penalty::new(Severity::InvalidData, PenaltyReason::OversizedGossip));
            return;
        }
        let queue = sub.queue.clone();
        let id = node.next_gossip_id;
        node.next_gossip_id += 1;
        match queue.try_send((data, from, GossipId(id))) {
            Ok(()) => {
                node.stats.gossip_received += 1;
                node.verdicts.insert(id, from);
                if node.verdicts.len() > MAX_PENDING_VERDICTS {
                    node.verdicts.pop_first();
                }
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::trace!(target: TRACE_TARGET, %to, %from, topic, "gossip queue full, message dropped");
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                node.topics.remove(topic);
            }
        }
    }
}
