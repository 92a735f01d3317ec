//! The event loop: owns the swarm, executes the handles' commands, dispatches inbound requests
//! and gossip, and keeps peers, reputation and bans.
//!
//! One `select!` drives everything, local work first: commands from the handles, then answers
//! from local request handlers, then swarm events, then the redial timer. Every map it keeps is
//! bounded (see each field).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use libp2p::core::ConnectedPoint;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundFailure, OutboundRequestId, ResponseChannel};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, ListenError, SwarmEvent};
use libp2p::{Multiaddr, Swarm, gossipsub, identify, ping};
use petrel_network_api::{
    DisconnectReason, GOSSIP_QUEUE, GossipId, InboundRequest, NetworkError, NetworkEvent, PeerId, PeerInfo, Penalty,
    PenaltyReason, Promises, RequestError, ResponseStatus, Services, Severity, Verdict, promised,
};
use tokio::sync::{mpsc, oneshot};

use crate::behaviour::{self, Behaviour, BehaviourEvent};
use crate::codec::{FrameTooLarge, WireRequest, WireResponse};
use crate::config::Libp2pConfig;
use crate::gossip_ids::{GossipIds, MAX_PENDING_VERDICTS};
use crate::network::{Command, GossipItem, PeerEntry, PeerStanding, Shared, read, write};
use crate::reputation::{BanList, MAX_BANNED_PEERS, MAX_SCORED_PEERS, PENALTY, RateLimiter, Reputation};

/// Most requests kept per peer while it has connected but not yet been identified; more are
/// answered `Busy`.
const MAX_PARKED_PER_PEER: usize = 16;
/// How often the bootstrap list is checked for peers to redial.
const REDIAL_TICK: Duration = Duration::from_millis(250);

/// A handler's answer (or its absence) to an inbound request.
type PendingResponse = BoxFuture<'static, (ResponseChannel<WireResponse>, Option<Vec<u8>>, usize)>;

/// An inbound request that arrived before its peer was identified.
#[derive(Debug)]
struct Parked {
    request: WireRequest,
    channel: ResponseChannel<WireResponse>,
}

/// A peer with at least one open connection.
#[derive(Debug)]
struct Connected {
    /// Our id for it.
    id: PeerId,
    /// Remote address of its first connection, for display.
    address: String,
    /// Whether `PeerJoined` was sent (and `PeerLeft` is owed).
    joined: bool,
    /// Whether we are closing it (disconnected, banned, or of another chain): it cannot join
    /// again on these connections and its requests are dropped.
    closing: bool,
    /// Requests waiting for identify (at most [`MAX_PARKED_PER_PEER`]).
    parked: Vec<Parked>,
}

/// A configured bootstrap peer.
#[derive(Debug)]
struct Bootstrap {
    addr: Multiaddr,
    peer: Option<libp2p::PeerId>,
    dialing: Option<ConnectionId>,
    backoff: Duration,
    next_attempt: Instant,
}

/// A gossip subscription.
#[derive(Debug)]
struct Subscription {
    max_size: usize,
    queue: mpsc::Sender<GossipItem>,
}

/// Owns the swarm; run it with [`EventLoop::run`]. See the module documentation.
pub struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    shared: Arc<Shared>,
    protocol_version: String,
    request_timeout: Duration,
    ban_threshold: f64,
    redial_initial_backoff: Duration,
    redial_max_backoff: Duration,
    /// Peers with an open connection (bounded by the connection limit).
    connected: HashMap<libp2p::PeerId, Connected>,
    /// Our id → transport id, for connected peers and peers with a reputation (bounded by both).
    ids: HashMap<PeerId, libp2p::PeerId>,
    /// Outbound requests awaiting their response (bounded by the handles' command queue and the
    /// request timeout).
    pending_outbound: HashMap<OutboundRequestId, oneshot::Sender<Result<WireResponse, RequestError>>>,
    /// Inbound requests awaiting the local handler (bounded by streams per connection × connections,
    /// and each by the request timeout).
    pending_responses: FuturesUnordered<PendingResponse>,
    rate_limits: RateLimiter<libp2p::PeerId>,
    reputation: Reputation<libp2p::PeerId>,
    bans: BanList<libp2p::PeerId>,
    subscriptions: HashMap<gossipsub::TopicHash, Subscription>,
    gossip_ids: GossipIds<(gossipsub::MessageId, libp2p::PeerId)>,
    bootstrap: Vec<Bootstrap>,
    /// The services we advertise, and which request types they promise.
    services: Services,
    promises: Promises,
    /// State of the redial jitter (seeded from our identity, so runs are reproducible while two
    /// nodes that bootstrap from each other still drift apart instead of dialling in lockstep).
    jitter: u64,
}

impl std::fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoop")
            .field("local_peer_id", self.swarm.local_peer_id())
            .field("connected", &self.connected.len())
            .field("pending_outbound", &self.pending_outbound.len())
            .field("pending_responses", &self.pending_responses.len())
            .finish_non_exhaustive()
    }
}

fn peer_id_of(transport: &libp2p::PeerId) -> PeerId {
    PeerId::from_transport_bytes(&transport.to_bytes())
}

fn status_frame(status: ResponseStatus) -> WireResponse {
    WireResponse(vec![status as u8])
}

impl EventLoop {
    pub(crate) fn new(
        swarm: Swarm<Behaviour>,
        commands: mpsc::Receiver<Command>,
        shared: Arc<Shared>,
        config: &Libp2pConfig,
        bootstrap: Vec<Multiaddr>,
    ) -> Self {
        let now = Instant::now();
        let local_peer = *swarm.local_peer_id();
        let bootstrap = bootstrap
            .into_iter()
            .map(|addr| {
                let peer = match addr.iter().last() {
                    Some(Protocol::P2p(peer)) => Some(peer),
                    _ => None,
                };
                Bootstrap { addr, peer, dialing: None, backoff: config.redial_initial_backoff, next_attempt: now }
            })
            .collect();
        Self {
            swarm,
            commands,
            shared,
            protocol_version: behaviour::protocol_version(&config.genesis_hash),
            request_timeout: config.request_timeout,
            ban_threshold: f64::from(config.ban_threshold),
            redial_initial_backoff: config.redial_initial_backoff,
            redial_max_backoff: config.redial_max_backoff,
            connected: HashMap::new(),
            ids: HashMap::new(),
            pending_outbound: HashMap::new(),
            pending_responses: FuturesUnordered::new(),
            rate_limits: RateLimiter::new(),
            reputation: Reputation::with_recovery(MAX_SCORED_PEERS, config.reputation_recovery_per_sec),
            bans: BanList::new(MAX_BANNED_PEERS),
            subscriptions: HashMap::new(),
            gossip_ids: GossipIds::new(MAX_PENDING_VERDICTS),
            bootstrap,
            services: config.services,
            promises: config.promises,
            jitter: {
                let seed = petrel_primitives::Blake2bHash::digest(&local_peer.to_bytes());
                u64::from_be_bytes(seed.0[..8].try_into().unwrap_or_default()) | 1
            },
        }
    }

    /// A delay in `[0, max / 2)`, from a xorshift generator.
    fn jitter(&mut self, max: Duration) -> Duration {
        self.jitter ^= self.jitter << 13;
        self.jitter ^= self.jitter >> 7;
        self.jitter ^= self.jitter << 17;
        max.mul_f64((self.jitter >> 11) as f64 / (1u64 << 53) as f64 / 2.0)
    }

    /// Runs until every [`crate::Libp2pNetwork`] handle is dropped. Cancelling it (dropping the
    /// future) closes every connection; pending requests then fail with `Shutdown`.
    pub async fn run(mut self) {
        let mut redial = tokio::time::interval(REDIAL_TICK);
        redial.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tracing::info!(target: "net", peer = %self.swarm.local_peer_id(), "network event loop started");
        loop {
            tokio::select! {
                biased;
                command = self.commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => break,
                },
                Some((channel, frame, max)) = self.pending_responses.next(), if !self.pending_responses.is_empty() => {
                    self.on_handler_answer(channel, frame, max);
                }
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                _ = redial.tick() => self.redial(Instant::now()),
            }
        }
        tracing::info!(target: "net", "network event loop stopped: every handle was dropped");
    }

    // ---- commands -------------------------------------------------------------------------

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Request { peer, type_id, payload, max_response, reply } => {
                if !self.connected.get(&peer).is_some_and(|c| c.joined) {
                    let _ = reply.send(Err(RequestError::NotConnected));
                    return;
                }
                let request = WireRequest::new(type_id, payload, max_response);
                let id = self.swarm.behaviour_mut().request_response.send_request(&peer, request);
                self.pending_outbound.insert(id, reply);
            }
            Command::Publish { topic, data, reply } => {
                let len = data.len();
                let result = match self.swarm.behaviour_mut().gossipsub.publish(gossipsub::IdentTopic::new(topic), data)
                {
                    Ok(_) => Ok(()),
                    // Content-addressed ids: the same bytes are already out there.
                    Err(gossipsub::PublishError::Duplicate) => Ok(()),
                    Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => Err(NetworkError::NoPeers),
                    Err(gossipsub::PublishError::MessageTooLarge) => Err(NetworkError::MessageTooLarge(len)),
                    Err(e) => Err(NetworkError::Other(e.to_string())),
                };
                let _ = reply.send(result);
            }
            Command::Subscribe { topic, max_size, reply } => {
                let topic = gossipsub::IdentTopic::new(topic);
                let result = match self.swarm.behaviour_mut().gossipsub.subscribe(&topic) {
                    Ok(_) => {
                        let (queue, rx) = mpsc::channel(GOSSIP_QUEUE);
                        self.subscriptions.insert(topic.hash(), Subscription { max_size, queue });
                        Ok(rx)
                    }
                    Err(e) => Err(NetworkError::Other(format!("cannot subscribe to {topic}: {e}"))),
                };
                let _ = reply.send(result);
            }
            Command::Validate { id, verdict } => self.report_verdict(id, verdict),
            Command::Penalize { peer, penalty } => match self.ids.get(&peer).copied() {
                Some(transport) => self.penalize(transport, penalty),
                None => tracing::debug!(target: "net", %peer, %penalty, "penalty for an unknown peer ignored"),
            },
            Command::Standing { peer, reply } => {
                let standing = self.ids.get(&peer).map(|t| PeerStanding {
                    reputation: self.reputation.score(t, Instant::now()),
                    banned: self.bans.contains(t),
                });
                let _ = reply.send(standing);
            }
            Command::Disconnect { peer, reason, done } => {
                if let Some(transport) = self.ids.get(&peer).copied() {
                    if reason == DisconnectReason::Malicious {
                        self.ban(transport, "disconnected as malicious");
                    } else {
                        tracing::debug!(target: "net", %peer, ?reason, "disconnecting");
                        let _ = self.swarm.disconnect_peer_id(transport);
                        self.leave(&transport);
                    }
                }
                let _ = done.send(());
            }
        }
    }

    // ---- reputation and bans -------------------------------------------------------------

    fn penalize(&mut self, peer: libp2p::PeerId, penalty: Penalty) {
        if self.bans.contains(&peer) {
            return;
        }
        let reason = penalty.reason.as_str();
        let severity = match penalty.severity {
            Severity::Minor => "minor",
            Severity::InvalidData => "invalid_data",
            Severity::Malicious => "malicious",
        };
        metrics::counter!("net.penalties", "reason" => reason, "severity" => severity).increment(1);
        let Some(points) = penalty.points(PENALTY) else {
            return self.ban(peer, reason);
        };
        let connected = &self.connected;
        let score = self.reputation.penalize(peer, points, Instant::now(), |p| connected.contains_key(p));
        tracing::debug!(target: "net", %peer, %penalty, score, "peer penalized");
        self.ids.insert(peer_id_of(&peer), peer);
        self.forget_stale_ids();
        if score <= self.ban_threshold {
            self.ban(peer, reason);
        }
    }

    fn ban(&mut self, peer: libp2p::PeerId, reason: &'static str) {
        let (new, lifted) = self.bans.ban(peer);
        if new {
            tracing::info!(target: "net", %peer, reason, "banning peer");
            metrics::counter!("net.bans").increment(1);
        }
        if let Some(old) = lifted {
            self.swarm.behaviour_mut().blocked.unblock_peer(old);
        }
        // Closes every connection to the peer and refuses new ones, in both directions.
        self.swarm.behaviour_mut().blocked.block_peer(peer);
        self.reputation.forget(&peer);
        self.leave(&peer);
    }

    /// Drops id mappings of peers that are neither connected nor scored.
    fn forget_stale_ids(&mut self) {
        if self.ids.len() > self.connected.len() + MAX_SCORED_PEERS + MAX_BANNED_PEERS {
            let (connected, reputation, bans) = (&self.connected, &self.reputation, &self.bans);
            self.ids.retain(|_, t| connected.contains_key(t) || reputation.contains(t) || bans.contains(t));
        }
    }

    /// Marks a peer as gone for the handles: unlists it and sends `PeerLeft` if it had joined.
    fn leave(&mut self, peer: &libp2p::PeerId) {
        let Some(state) = self.connected.get_mut(peer) else { return };
        state.closing = true;
        state.parked.clear();
        if state.joined {
            state.joined = false;
            let id = state.id;
            write(&self.shared.peers).remove(&id);
            let _ = self.shared.events.send(NetworkEvent::PeerLeft(id));
            tracing::debug!(target: "net", peer = %id, "peer left");
        }
    }

    // ---- inbound requests ----------------------------------------------------------------

    fn respond(&mut self, channel: ResponseChannel<WireResponse>, response: WireResponse) {
        if self.swarm.behaviour_mut().request_response.send_response(channel, response).is_err() {
            tracing::debug!(target: "net", "response dropped: the requester is gone or timed out");
        }
    }

    fn refuse(
        &mut self,
        peer: libp2p::PeerId,
        channel: ResponseChannel<WireResponse>,
        status: ResponseStatus,
        penalty: Penalty,
    ) {
        metrics::counter!("net.requests.refused", "status" => format!("{status:?}").to_lowercase()).increment(1);
        self.respond(channel, status_frame(status));
        self.penalize(peer, penalty);
    }

    fn on_inbound_request(
        &mut self,
        peer: libp2p::PeerId,
        request: WireRequest,
        channel: ResponseChannel<WireResponse>,
    ) {
        if request.undecodable {
            // No type id, or over the frame limit: not answered (dropping the channel closes the
            // stream), and the sender could have known.
            tracing::debug!(target: "net", %peer, "undecodable request frame");
            drop(channel);
            return self.penalize(peer, Penalty::new(Severity::InvalidData, PenaltyReason::MalformedRequest));
        }
        let Some(state) = self.connected.get_mut(&peer) else { return };
        if state.closing {
            // Dropping the channel fails the request on the requester's side.
            return;
        }
        if !state.joined {
            if state.parked.len() < MAX_PARKED_PER_PEER {
                state.parked.push(Parked { request, channel });
            } else {
                self.respond(channel, status_frame(ResponseStatus::Busy));
            }
            return;
        }
        let id = state.id;
        let type_id = request.type_id;
        // Labelled only by the protocol's own types: a peer cannot create label values.
        let kind =
            if self.promises.iter().any(|(id, _)| *id == type_id) { type_id.to_string() } else { "unknown".into() };
        metrics::counter!("net.requests.received", "type" => kind).increment(1);
        // The handler is used under the read lock (every step below is non-blocking), which spares
        // cloning its queue's sender for every request.
        let handlers = read(&self.shared.handlers);
        let Some(handler) = handlers.get(&type_id) else {
            drop(handlers);
            tracing::debug!(target: "net", peer = %id, type_id, "request of an unserved type");
            if promised(self.promises, self.services, type_id) {
                // Our services promised it (a handler not registered yet, or gone): not its fault.
                return self.respond(channel, status_frame(ResponseStatus::Unsupported));
            }
            return self.refuse(
                peer,
                channel,
                ResponseStatus::Unsupported,
                Penalty::new(Severity::InvalidData, PenaltyReason::UnsupportedRequest),
            );
        };
        let limits = handler.limits;
        if request.payload.len() > limits.max_request_size {
            drop(handlers);
            tracing::debug!(target: "net", peer = %id, type_id, len = request.payload.len(), "oversized request");
            return self.refuse(
                peer,
                channel,
                ResponseStatus::Malformed,
                Penalty::new(Severity::InvalidData, PenaltyReason::MalformedRequest),
            );
        }
        if !self.rate_limits.allow(peer, limits.type_id, limits.max_requests, limits.time_window, Instant::now()) {
            drop(handlers);
            tracing::debug!(target: "net", peer = %id, type_id, "request over the rate limit");
            return self.refuse(
                peer,
                channel,
                ResponseStatus::RateLimited,
                Penalty::new(Severity::InvalidData, PenaltyReason::RateLimitExceeded),
            );
        }
        let (responder, answer) = oneshot::channel();
        let sent = handler.queue.try_send(InboundRequest { peer: id, payload: request.payload, responder });
        drop(handlers);
        match sent {
            Ok(()) => {
                let timeout = self.request_timeout;
                let max = limits.max_response_size;
                self.pending_responses.push(Box::pin(async move {
                    let frame = tokio::time::timeout(timeout, answer).await.ok().and_then(Result::ok);
                    (channel, frame, max)
                }));
                metrics::gauge!("net.requests.inbound_pending").set(self.pending_responses.len() as f64);
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::debug!(target: "net", type_id, "handler queue full");
                metrics::counter!("net.requests.refused", "status" => "busy").increment(1);
                self.respond(channel, status_frame(ResponseStatus::Busy));
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                // The handler went away: stop advertising the type (unless it was re-registered
                // with a live queue meanwhile).
                let mut handlers = write(&self.shared.handlers);
                if handlers.get(&type_id).is_some_and(|h| h.queue.is_closed()) {
                    handlers.remove(&type_id);
                }
                drop(handlers);
                self.respond(channel, status_frame(ResponseStatus::Unsupported));
            }
        }
    }

    fn on_handler_answer(&mut self, channel: ResponseChannel<WireResponse>, frame: Option<Vec<u8>>, max: usize) {
        metrics::gauge!("net.requests.inbound_pending").set(self.pending_responses.len() as f64);
        let response = match frame {
            Some(frame) if !frame.is_empty() && frame.len() <= max.saturating_add(1) => WireResponse(frame),
            Some(frame) => {
                tracing::warn!(target: "net", len = frame.len(), max, "handler answer over the type's limit; sending Busy");
                status_frame(ResponseStatus::Busy)
            }
            None => status_frame(ResponseStatus::Busy),
        };
        self.respond(channel, response);
    }

    // ---- gossip --------------------------------------------------------------------------

    fn on_gossip_message(
        &mut self,
        source: libp2p::PeerId,
        message_id: gossipsub::MessageId,
        message: gossipsub::Message,
    ) {
        let verdict = |this: &mut Self, acceptance| {
            this.swarm.behaviour_mut().gossipsub.report_message_validation_result(&message_id, &source, acceptance);
        };
        if !self.connected.get(&source).is_some_and(|c| c.joined) {
            return verdict(self, gossipsub::MessageAcceptance::Ignore);
        }
        let Some(sub) = self.subscriptions.get(&message.topic) else {
            return verdict(self, gossipsub::MessageAcceptance::Ignore);
        };
        if message.data.len() > sub.max_size {
            tracing::debug!(target: "net", %source, len = message.data.len(), "oversized gossip message");
            verdict(self, gossipsub::MessageAcceptance::Reject);
            return self.penalize(source, Penalty::new(Severity::InvalidData, PenaltyReason::OversizedGossip));
        }
        let queue = sub.queue.clone();
        let id = self.gossip_ids.insert((message_id.clone(), source));
        match queue.try_send((message.data, peer_id_of(&source), id)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::debug!(target: "net", topic = %message.topic, "gossip queue full, ignoring message");
                self.gossip_ids.take(id);
                verdict(self, gossipsub::MessageAcceptance::Ignore);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.gossip_ids.take(id);
                verdict(self, gossipsub::MessageAcceptance::Ignore);
                if self.subscriptions.get(&message.topic).is_some_and(|s| s.queue.same_channel(&queue)) {
                    self.subscriptions.remove(&message.topic);
                    self.swarm
                        .behaviour_mut()
                        .gossipsub
                        .unsubscribe(&gossipsub::IdentTopic::new(message.topic.as_str()));
                }
            }
        }
    }

    fn report_verdict(&mut self, id: GossipId, verdict: Verdict) {
        let Some((message_id, source)) = self.gossip_ids.take(id) else {
            tracing::debug!(target: "net", ?id, "verdict for an unknown or expired gossip message");
            return;
        };
        let (acceptance, name) = match verdict {
            Verdict::Accept => (gossipsub::MessageAcceptance::Accept, "accept"),
            Verdict::Reject => (gossipsub::MessageAcceptance::Reject, "reject"),
            Verdict::Ignore => (gossipsub::MessageAcceptance::Ignore, "ignore"),
        };
        metrics::counter!("net.gossip.verdicts", "verdict" => name).increment(1);
        self.swarm.behaviour_mut().gossipsub.report_message_validation_result(&message_id, &source, acceptance);
        if verdict == Verdict::Reject {
            self.penalize(source, Penalty::new(Severity::InvalidData, PenaltyReason::RejectedGossip));
        }
    }

    // ---- identify ------------------------------------------------------------------------

    fn on_identified(&mut self, peer: libp2p::PeerId, info: identify::Info) {
        if info.protocol_version != self.protocol_version {
            tracing::info!(
                target: "net", %peer, theirs = %info.protocol_version, ours = %self.protocol_version,
                "refusing peer of another chain"
            );
            self.leave(&peer);
            let _ = self.swarm.disconnect_peer_id(peer);
            return;
        }
        let services = behaviour::parse_services(&info.agent_version).unwrap_or(Services::NONE);
        let Some(state) = self.connected.get_mut(&peer) else { return };
        if state.closing {
            return;
        }
        let info = PeerInfo { services, address: state.address.clone() };
        let id = state.id;
        if state.joined {
            // A repeated identify (periodic or pushed): refresh the services silently.
            if let Some(entry) = write(&self.shared.peers).get_mut(&id) {
                entry.info = info;
            }
            return;
        }
        state.joined = true;
        let parked = std::mem::take(&mut state.parked);
        write(&self.shared.peers).insert(id, PeerEntry { info: info.clone(), transport: peer });
        tracing::debug!(target: "net", peer = %id, ?services, "peer joined");
        let _ = self.shared.events.send(NetworkEvent::PeerJoined(id, info));
        for b in self.bootstrap.iter_mut().filter(|b| b.peer == Some(peer)) {
            b.backoff = self.redial_initial_backoff;
        }
        for p in parked {
            self.on_inbound_request(peer, p.request, p.channel);
        }
    }

    // ---- swarm events --------------------------------------------------------------------

    fn update_counts(&self, f: impl FnOnce(&mut crate::ConnectionCounts)) {
        self.shared.counts.send_modify(f);
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(event),
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(target: "net", %address, "listening");
                self.shared.listen_addrs.send_modify(|addrs| addrs.push(address));
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.shared.listen_addrs.send_modify(|addrs| addrs.retain(|a| *a != address));
            }
            SwarmEvent::ConnectionEstablished { peer_id, connection_id, endpoint, .. } => {
                self.update_counts(|c| {
                    c.open += 1;
                    c.established += 1;
                });
                for b in self.bootstrap.iter_mut().filter(|b| b.dialing == Some(connection_id)) {
                    b.dialing = None;
                    b.peer = Some(peer_id);
                }
                if self.bans.contains(&peer_id) {
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return;
                }
                let address = match &endpoint {
                    ConnectedPoint::Dialer { address, .. } => address.clone(),
                    ConnectedPoint::Listener { send_back_addr, .. } => send_back_addr.clone(),
                };
                let id = peer_id_of(&peer_id);
                self.ids.insert(id, peer_id);
                self.connected.entry(peer_id).or_insert_with(|| Connected {
                    id,
                    address: address.to_string(),
                    joined: false,
                    closing: false,
                    parked: Vec::new(),
                });
                tracing::debug!(target: "net", peer = %peer_id, %address, "connection established");
            }
            SwarmEvent::ConnectionClosed { peer_id, num_established, cause, .. } => {
                self.update_counts(|c| c.open = c.open.saturating_sub(1));
                tracing::debug!(target: "net", peer = %peer_id, ?cause, "connection closed");
                if num_established == 0 {
                    self.leave(&peer_id);
                    self.connected.remove(&peer_id);
                    // Its windows stay until they end: reconnecting does not reset its counts.
                    self.rate_limits.expire(Instant::now());
                    // Keep the id of a peer we remember (scored or banned), so that later calls
                    // about it (penalties, `standing`) still find it.
                    if !self.reputation.contains(&peer_id) && !self.bans.contains(&peer_id) {
                        self.ids.remove(&peer_id_of(&peer_id));
                    }
                }
            }
            SwarmEvent::OutgoingConnectionError { connection_id, peer_id, error } => {
                tracing::debug!(target: "net", peer = ?peer_id, "dial failed: {error}");
                for b in self.bootstrap.iter_mut().filter(|b| b.dialing == Some(connection_id)) {
                    b.dialing = None;
                }
            }
            SwarmEvent::IncomingConnectionError { send_back_addr, error, .. } => {
                if let ListenError::Denied { cause } = &error {
                    self.update_counts(|c| c.denied += 1);
                    // The per-IP refusals count themselves (`per_ip`); these are libp2p's limits
                    // (the inbound share kept below the total for the peers we dial, per peer,
                    // pending).
                    if cause.downcast_ref::<libp2p::connection_limits::Exceeded>().is_some() {
                        metrics::counter!("net.connections.refused", "why" => "limits").increment(1);
                    }
                }
                tracing::debug!(target: "net", %send_back_addr, "incoming connection failed: {error}");
            }
            _ => {}
        }
    }

    fn on_behaviour_event(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Limits(never) | BehaviourEvent::Blocked(never) => match never {},
            BehaviourEvent::PerIp(never) => match never {},
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                self.on_identified(peer_id, info)
            }
            BehaviourEvent::Identify(identify::Event::Error { peer_id, error, .. }) => {
                if !self.connected.get(&peer_id).is_some_and(|c| c.joined) {
                    tracing::debug!(target: "net", peer = %peer_id, "identify failed, disconnecting: {error}");
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                }
            }
            BehaviourEvent::Identify(_) => {}
            BehaviourEvent::Ping(ping::Event { peer, result: Err(ping::Failure::Timeout), .. }) => {
                tracing::debug!(target: "net", %peer, "ping timed out, disconnecting");
                let _ = self.swarm.disconnect_peer_id(peer);
            }
            BehaviourEvent::Ping(_) => {}
            BehaviourEvent::RequestResponse(event) => self.on_request_response(event),
            BehaviourEvent::Gossipsub(gossipsub::Event::Message { propagation_source, message_id, message }) => {
                self.on_gossip_message(propagation_source, message_id, message);
            }
            BehaviourEvent::Gossipsub(_) => {}
        }
    }

    fn on_request_response(&mut self, event: request_response::Event<WireRequest, WireResponse>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request { request, channel, .. } => {
                    self.on_inbound_request(peer, request, channel);
                }
                request_response::Message::Response { request_id, response } => {
                    if let Some(reply) = self.pending_outbound.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure { peer, request_id, error, .. } => {
                let Some(reply) = self.pending_outbound.remove(&request_id) else { return };
                tracing::debug!(target: "net", %peer, "outbound request failed: {error}");
                let error = match error {
                    OutboundFailure::Timeout => RequestError::Timeout,
                    OutboundFailure::ConnectionClosed => RequestError::ConnectionClosed,
                    OutboundFailure::DialFailure => RequestError::NotConnected,
                    OutboundFailure::UnsupportedProtocols => RequestError::Unsupported,
                    OutboundFailure::Io(e) => match FrameTooLarge::find(&e) {
                        Some(too_large) => RequestError::ResponseTooLarge(too_large.len),
                        None if e.kind() == std::io::ErrorKind::InvalidData => {
                            RequestError::MalformedResponse(e.to_string())
                        }
                        None => RequestError::ConnectionClosed,
                    },
                };
                let _ = reply.send(Err(error));
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                // Transport failures (a truncated frame, a reset stream): nobody is blamed.
                // Undecodable frames arrive as requests (`WireRequest::undecodable`).
                tracing::debug!(target: "net", %peer, "inbound request failed: {error}");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    // ---- bootstrap -----------------------------------------------------------------------

    fn redial(&mut self, now: Instant) {
        for i in 0..self.bootstrap.len() {
            let jitter = self.jitter(self.bootstrap[i].backoff);
            let b = &mut self.bootstrap[i];
            if b.dialing.is_some() || now < b.next_attempt {
                continue;
            }
            if let Some(peer) = b.peer
                && (self.swarm.is_connected(&peer) || self.bans.contains(&peer))
            {
                continue;
            }
            let opts = match b.peer {
                Some(peer) => DialOpts::peer_id(peer)
                    .addresses(vec![b.addr.clone()])
                    .condition(PeerCondition::DisconnectedAndNotDialing)
                    .build(),
                None => DialOpts::unknown_peer_id().address(b.addr.clone()).build(),
            };
            let connection_id = opts.connection_id();
            match self.swarm.dial(opts) {
                Ok(()) => {
                    tracing::debug!(target: "net", addr = %b.addr, "dialling bootstrap peer");
                    b.dialing = Some(connection_id);
                }
                Err(e) => tracing::debug!(target: "net", addr = %b.addr, "cannot dial bootstrap peer: {e}"),
            }
            b.next_attempt = now + b.backoff + jitter;
            b.backoff = (b.backoff * 2).min(self.redial_max_backoff);
        }
    }
}
