//! The handle: [`Libp2pNetwork`], the commands it sends to the event loop, and the read-mostly
//! state the two share.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use libp2p::Multiaddr;
use petrel_network_api::{
    DisconnectReason, EVENT_CAPACITY, GossipId, INBOUND_QUEUE, InboundRequest, Network, NetworkError, NetworkEvent,
    PeerId, PeerInfo, Penalty, RequestError, RequestLimits, ResponseFrame, Verdict, decode_response_frame,
};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::codec::{MAX_REQUEST_FRAME, WireResponse};
use crate::config::Libp2pConfig;
use crate::event_loop::EventLoop;
use crate::{Error, behaviour};

/// Capacity of the command queue from the handles to the event loop. Async operations wait for
/// room; the fire-and-forget ones ([`Network::validate`], [`Network::penalize`]) are dropped, with
/// a warning, when it is full.
pub const COMMAND_QUEUE: usize = 1024;

/// A gossip message handed to a subscriber.
pub(crate) type GossipItem = (Vec<u8>, PeerId, GossipId);

/// What the handle asks of the event loop. Every variant that expects an answer carries its
/// `oneshot`.
#[derive(Debug)]
pub(crate) enum Command {
    /// Send a request to a connected peer.
    Request {
        peer: libp2p::PeerId,
        type_id: u16,
        payload: Vec<u8>,
        max_response: usize,
        reply: oneshot::Sender<Result<WireResponse, RequestError>>,
    },
    /// Publish on a topic.
    Publish { topic: &'static str, data: Vec<u8>, reply: oneshot::Sender<Result<(), NetworkError>> },
    /// Subscribe to a topic (replacing an earlier subscription's queue).
    Subscribe {
        topic: &'static str,
        max_size: usize,
        reply: oneshot::Sender<Result<mpsc::Receiver<GossipItem>, NetworkError>>,
    },
    /// The verdict on a gossip message.
    Validate { id: GossipId, verdict: Verdict },
    /// Lower a peer's reputation.
    Penalize { peer: PeerId, penalty: Penalty },
    /// Disconnect (and, for `Malicious`, ban) a peer.
    Disconnect { peer: PeerId, reason: DisconnectReason, done: oneshot::Sender<()> },
    /// What we hold against a peer.
    Standing { peer: PeerId, reply: oneshot::Sender<Option<PeerStanding>> },
}

/// What a node holds against a peer it has seen: its reputation (0 is clean; at the ban
/// threshold it is banned) and whether it is banned.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PeerStanding {
    /// Current reputation, after recovery.
    pub reputation: f64,
    /// Whether the peer is banned.
    pub banned: bool,
}

/// A joined peer as the handle sees it.
#[derive(Debug, Clone)]
pub(crate) struct PeerEntry {
    pub(crate) info: PeerInfo,
    pub(crate) transport: libp2p::PeerId,
}

/// A registered request handler.
#[derive(Debug, Clone)]
pub(crate) struct Handler {
    pub(crate) limits: RequestLimits,
    pub(crate) queue: mpsc::Sender<InboundRequest>,
}

/// Transport connection counters, for diagnostics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnectionCounts {
    /// Connections open now (identified or not).
    pub open: usize,
    /// Connections established since start.
    pub established: u64,
    /// Inbound connections refused since start (banned peer or a limit).
    pub denied: u64,
}

/// State written by the event loop and read by the handles. Locks are held only for a map
/// operation, never across an await.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) peers: RwLock<HashMap<PeerId, PeerEntry>>,
    pub(crate) handlers: RwLock<HashMap<u16, Handler>>,
    pub(crate) events: broadcast::Sender<NetworkEvent>,
    pub(crate) listen_addrs: watch::Sender<Vec<Multiaddr>>,
    pub(crate) counts: watch::Sender<ConnectionCounts>,
}

/// Reads a lock, ignoring poisoning (every writer leaves the maps consistent).
pub(crate) fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

/// Writes a lock, ignoring poisoning.
pub(crate) fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

/// The cloneable handle to a libp2p network; see the crate documentation.
#[derive(Clone, Debug)]
pub struct Libp2pNetwork {
    commands: mpsc::Sender<Command>,
    shared: Arc<Shared>,
    local_peer_id: PeerId,
    local_transport_id: libp2p::PeerId,
    listens: bool,
}

impl Libp2pNetwork {
    /// Builds the swarm, starts listening, and returns the handle and the event loop. Spawn
    /// [`EventLoop::run`] on a Tokio runtime; nothing happens on the network until it runs. The
    /// loop ends when every handle (including those held by request and gossip streams) is
    /// dropped.
    ///
    /// Must be called within a Tokio runtime (listening binds sockets).
    pub fn new(config: Libp2pConfig) -> Result<(Libp2pNetwork, EventLoop), Error> {
        config.check()?;
        let listen = parse_addrs(&config.listen)?;
        let bootstrap = parse_addrs(&config.bootstrap)?;
        let mut swarm = behaviour::build_swarm(&config)?;
        for addr in &listen {
            swarm.listen_on(addr.clone()).map_err(|e| Error::Transport(format!("listen on {addr}: {e}")))?;
        }
        let local_transport_id = *swarm.local_peer_id();
        let shared = Arc::new(Shared {
            peers: RwLock::new(HashMap::new()),
            handlers: RwLock::new(HashMap::new()),
            events: broadcast::channel(EVENT_CAPACITY).0,
            listen_addrs: watch::channel(Vec::new()).0,
            counts: watch::channel(ConnectionCounts::default()).0,
        });
        let (commands, command_rx) = mpsc::channel(COMMAND_QUEUE);
        let event_loop = EventLoop::new(swarm, command_rx, shared.clone(), &config, bootstrap);
        let network = Libp2pNetwork {
            commands,
            shared,
            local_peer_id: PeerId::from_transport_bytes(&local_transport_id.to_bytes()),
            local_transport_id,
            listens: !listen.is_empty(),
        };
        Ok((network, event_loop))
    }

    /// Our libp2p peer id (base58), as used in `/p2p/...` multiaddr components.
    pub fn local_libp2p_peer_id(&self) -> String {
        self.local_transport_id.to_base58()
    }

    /// The addresses we actually listen on (with the real port when configured with `/tcp/0`).
    /// Waits until the event loop has bound at least one; returns at once, empty, when no listen
    /// address was configured. Safe to cancel.
    pub async fn listen_addrs(&self) -> Vec<Multiaddr> {
        let mut rx = self.shared.listen_addrs.subscribe();
        if !self.listens {
            return rx.borrow().clone();
        }
        match rx.wait_for(|addrs| !addrs.is_empty()).await {
            Ok(addrs) => addrs.clone(),
            Err(_) => Vec::new(),
        }
    }

    /// What this node holds against `peer` (`None`: never seen, or forgotten). For diagnostics and
    /// tests.
    pub async fn standing(&self, peer: &PeerId) -> Option<PeerStanding> {
        let (reply, rx) = oneshot::channel();
        self.commands.send(Command::Standing { peer: *peer, reply }).await.ok()?;
        rx.await.ok().flatten()
    }

    /// The transport connection counters, updated by the event loop.
    pub fn connection_counts(&self) -> watch::Receiver<ConnectionCounts> {
        self.shared.counts.subscribe()
    }

    fn try_command(&self, command: Command, what: &str) {
        if let Err(e) = self.commands.try_send(command) {
            match e {
                mpsc::error::TrySendError::Full(_) => {
                    tracing::warn!(target: "net", "command queue full, dropping {what}")
                }
                mpsc::error::TrySendError::Closed(_) => {
                    tracing::debug!(target: "net", "network stopped, dropping {what}")
                }
            }
        }
    }
}

fn parse_addrs(addrs: &[String]) -> Result<Vec<Multiaddr>, Error> {
    addrs.iter().map(|a| a.parse::<Multiaddr>().map_err(|e| Error::Address(a.clone(), e.to_string()))).collect()
}

impl Network for Libp2pNetwork {
    fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    fn subscribe_events(&self) -> broadcast::Receiver<NetworkEvent> {
        self.shared.events.subscribe()
    }

    fn peers(&self) -> Vec<(PeerId, PeerInfo)> {
        read(&self.shared.peers).iter().map(|(id, e)| (*id, e.info.clone())).collect()
    }

    fn peer_info(&self, peer: &PeerId) -> Option<PeerInfo> {
        read(&self.shared.peers).get(peer).map(|e| e.info.clone())
    }

    /// Safe to cancel: a cancelled request's response is discarded.
    async fn request_raw(
        &self,
        peer: PeerId,
        type_id: u16,
        payload: Vec<u8>,
        max_response: usize,
    ) -> Result<ResponseFrame, RequestError> {
        if payload.len() + 2 > MAX_REQUEST_FRAME {
            return Err(RequestError::RequestTooLarge(payload.len()));
        }
        let Some(transport) = read(&self.shared.peers).get(&peer).map(|e| e.transport) else {
            return Err(RequestError::NotConnected);
        };
        let (reply, rx) = oneshot::channel();
        let command = Command::Request { peer: transport, type_id, payload, max_response, reply };
        self.commands.send(command).await.map_err(|_| RequestError::Shutdown)?;
        let WireResponse(frame) = rx.await.map_err(|_| RequestError::Shutdown)??;
        // The codec refused frames over `max_response` before reading them; checked again here so
        // that the bound holds whatever the codec does.
        let frame = decode_response_frame(frame)?;
        if frame.len() > max_response {
            return Err(RequestError::ResponseTooLarge(frame.len()));
        }
        Ok(frame)
    }

    fn receive_requests_raw(&self, limits: RequestLimits) -> mpsc::Receiver<InboundRequest> {
        let (queue, rx) = mpsc::channel(INBOUND_QUEUE);
        write(&self.shared.handlers).insert(limits.type_id, Handler { limits, queue });
        rx
    }

    /// Safe to cancel before the command is queued; afterwards the message is published anyway.
    async fn publish_raw(&self, topic: &'static str, data: Vec<u8>) -> Result<(), NetworkError> {
        let (reply, rx) = oneshot::channel();
        self.commands.send(Command::Publish { topic, data, reply }).await.map_err(|_| NetworkError::Shutdown)?;
        rx.await.map_err(|_| NetworkError::Shutdown)?
    }

    async fn subscribe_raw(
        &self,
        topic: &'static str,
        max_size: usize,
    ) -> Result<mpsc::Receiver<GossipItem>, NetworkError> {
        let (reply, rx) = oneshot::channel();
        self.commands.send(Command::Subscribe { topic, max_size, reply }).await.map_err(|_| NetworkError::Shutdown)?;
        rx.await.map_err(|_| NetworkError::Shutdown)?
    }

    fn validate(&self, id: GossipId, verdict: Verdict) {
        self.try_command(Command::Validate { id, verdict }, "a gossip verdict");
    }

    fn penalize(&self, peer: PeerId, penalty: Penalty) {
        self.try_command(Command::Penalize { peer, penalty }, "a penalty");
    }

    /// When this returns, the peer is no longer listed (and `PeerLeft` was sent if it had joined).
    async fn disconnect(&self, peer: PeerId, reason: DisconnectReason) {
        let (done, rx) = oneshot::channel();
        if self.commands.send(Command::Disconnect { peer, reason, done }).await.is_ok() {
            let _ = rx.await;
        }
    }
}
