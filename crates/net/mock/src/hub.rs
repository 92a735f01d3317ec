//! The hub: configuration, the shared state of all nodes, topology (connect, disconnect, partition,
//! heal) and reputation (penalties and bans).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use petrel_network_api::{
    EVENT_CAPACITY, GossipId, InboundRequest, NetworkEvent, PeerId, PeerInfo, Penalty, Promises, RequestLimits,
    Services,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::Instant;

use crate::TRACE_TARGET;
use crate::node::{MockNetwork, NodeStats};
use crate::scripted::ScriptFn;

/// Settings of a [`MockHub`]. `Default` is an ideal network (no latency, no loss) with the
/// production request timeout and reputation rules.
#[derive(Clone, Debug, PartialEq)]
pub struct HubConfig {
    /// Seeds the one RNG behind jitter and loss; the same seed replays the same run.
    pub seed: u64,
    /// One-way delay of every message.
    pub latency: Duration,
    /// Extra one-way delay, uniform in `0..=jitter`, drawn per message.
    pub jitter: Duration,
    /// Bandwidth of each direction of each link; messages on a link queue behind each other.
    /// `None`: unlimited.
    pub bandwidth_bytes_per_sec: Option<u64>,
    /// Probability in `0.0..=1.0` that a request or gossip message is dropped (responses are not).
    /// A requester whose request was dropped sees [`RequestError::Timeout`] after
    /// [`Self::request_timeout`].
    ///
    /// [`RequestError::Timeout`]: petrel_network_api::RequestError::Timeout
    pub loss: f64,
    /// How long a requester waits for a response, from sending the request.
    pub request_timeout: Duration,
    /// Score a node subtracts from a peer per invalid-data fault (oversized, unsupported or
    /// rate-limited request, oversized or rejected gossip, `Network::penalize` with
    /// `Severity::InvalidData`); a minor fault costs a fifth of it, a malicious one bans.
    pub penalty: i32,
    /// A peer whose score falls to this value or below is banned: disconnected, and
    /// [`MockHub::connect`] refuses it afterwards. Scores start at 0.
    pub ban_score: i32,
    /// Which services promise each request type (`petrel_protocol::PROMISES`): a node refusing a
    /// type its services promise does not penalise the requester. Default: none.
    pub promises: Promises,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            bandwidth_bytes_per_sec: None,
            loss: 0.0,
            request_timeout: Duration::from_secs(10),
            penalty: 10,
            ban_score: -100,
            promises: &[],
        }
    }
}

/// Why a [`HubConfig`] is unusable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid hub config: {0}")]
pub struct ConfigError(pub &'static str);

impl HubConfig {
    /// Checks the ranges documented on each field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(0.0..=1.0).contains(&self.loss) {
            return Err(ConfigError("loss must be a probability in 0.0..=1.0"));
        }
        if self.bandwidth_bytes_per_sec == Some(0) {
            return Err(ConfigError("bandwidth must be positive (None for unlimited)"));
        }
        if self.request_timeout.is_zero() {
            return Err(ConfigError("request timeout must be positive"));
        }
        if self.penalty <= 0 {
            return Err(ConfigError("penalty must be positive"));
        }
        if self.ban_score >= 0 {
            return Err(ConfigError("ban score must be negative (scores start at 0)"));
        }
        Ok(())
    }
}

/// Why [`MockHub::connect`] refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// The peer id is not a node of this hub.
    #[error("{0} is not a node of this hub")]
    UnknownNode(PeerId),
    /// A node cannot connect to itself.
    #[error("a node cannot connect to itself")]
    SelfConnection,
    /// The two nodes are already connected.
    #[error("already connected")]
    AlreadyConnected,
    /// One of the nodes has banned the other.
    #[error("one side has banned the other")]
    Banned,
}

/// Anything that names a node of the hub: a [`PeerId`], a [`MockNetwork`], a
/// [`ScriptedPeer`](crate::ScriptedPeer), or a reference to one.
pub trait AsPeerId {
    /// The node's peer id.
    fn as_peer_id(&self) -> PeerId;
}

impl AsPeerId for PeerId {
    fn as_peer_id(&self) -> PeerId {
        *self
    }
}

impl<T: AsPeerId + ?Sized> AsPeerId for &T {
    fn as_peer_id(&self) -> PeerId {
        (**self).as_peer_id()
    }
}

/// Most gossip messages per node awaiting a verdict; beyond it the oldest are forgotten (a verdict
/// on a forgotten message has no effect).
pub(crate) const MAX_PENDING_VERDICTS: usize = 4 * petrel_network_api::GOSSIP_QUEUE;

/// The in-process network: creates nodes and controls who can reach whom. Cloning is cheap and
/// every clone controls the same hub.
#[derive(Clone)]
pub struct MockHub {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for MockHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockHub").field("config", &self.shared.lock().config).finish_non_exhaustive()
    }
}

impl MockHub {
    /// A hub with no nodes.
    ///
    /// # Panics
    ///
    /// If the config is invalid (see [`HubConfig::validate`]); [`MockHub::try_new`] returns the error.
    pub fn new(config: HubConfig) -> Self {
        match Self::try_new(config) {
            Ok(hub) => hub,
            Err(e) => panic!("{e}"),
        }
    }

    /// A hub with no nodes, or why the config is invalid.
    pub fn try_new(config: HubConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let state = State {
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            config,
            nodes: BTreeMap::new(),
            next_index: 0,
            cuts: Vec::new(),
        };
        Ok(Self { shared: Arc::new(Shared { state: Mutex::new(state) }) })
    }

    pub(crate) fn from_shared(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// The hub's settings.
    pub fn config(&self) -> HubConfig {
        self.shared.lock().config.clone()
    }

    /// Creates a node advertising `services`, connected to nobody. Its address is `mock://<n>`,
    /// `n` counting nodes from 0, and its id `PeerId::from_index(n)`.
    pub fn node(&self, services: Services) -> MockNetwork {
        let id = self.shared.lock().add_node(services, None);
        MockNetwork::new(id, self.shared.clone())
    }

    pub(crate) fn add_scripted(&self, services: Services, script: ScriptFn) -> MockNetwork {
        let id = self.shared.lock().add_node(services, Some(script));
        MockNetwork::new(id, self.shared.clone())
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Connects two nodes; both receive [`NetworkEvent::PeerJoined`] with the other's services and
    /// address.
    pub fn connect(&self, a: impl AsPeerId, b: impl AsPeerId) -> Result<(), ConnectError> {
        self.shared.lock().connect(a.as_peer_id(), b.as_peer_id())
    }

    /// Disconnects two nodes; both receive [`NetworkEvent::PeerLeft`] and their requests in flight
    /// on that link fail with `ConnectionClosed`. Returns whether they were connected.
    pub fn disconnect(&self, a: impl AsPeerId, b: impl AsPeerId) -> bool {
        self.shared.lock().unlink(a.as_peer_id(), b.as_peer_id())
    }

    /// Whether two nodes are connected (a partition does not disconnect).
    pub fn is_connected(&self, a: impl AsPeerId, b: impl AsPeerId) -> bool {
        self.shared.lock().link(a.as_peer_id(), b.as_peer_id()).is_some()
    }

    /// Cuts every link between a node of `group_a` and a node of `group_b`, in both directions,
    /// without disconnecting: messages are dropped (requests in flight time out) until
    /// [`MockHub::heal`]. Several partitions add up.
    pub fn partition(&self, group_a: &[PeerId], group_b: &[PeerId]) {
        let cut = (group_a.iter().copied().collect(), group_b.iter().copied().collect());
        tracing::debug!(target: TRACE_TARGET, ?group_a, ?group_b, "partition");
        self.shared.lock().cuts.push(cut);
    }

    /// Removes every partition.
    pub fn heal(&self) {
        tracing::debug!(target: TRACE_TARGET, "heal");
        self.shared.lock().cuts.clear();
    }

    /// Every node's id, in creation order.
    pub fn node_ids(&self) -> Vec<PeerId> {
        let state = self.shared.lock();
        let mut nodes: Vec<_> = state.nodes.iter().map(|(id, n)| (n.index, *id)).collect();
        nodes.sort_unstable();
        nodes.into_iter().map(|(_, id)| id).collect()
    }
}

/// What every handle shares: the state behind one lock. The lock is never held across an await.
pub(crate) struct Shared {
    state: Mutex<State>,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock must not turn every other test thread's use
        // into a second panic; the state itself stays consistent (no await, no partial updates
        // that a panic could interrupt besides user assertions).
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One direction of a connection, kept by the node at its start.
pub(crate) struct Link {
    /// Dropped on disconnect, which wakes every request in flight on the link.
    pub(crate) closed: watch::Sender<()>,
    /// When the link finishes sending what is already queued on it (bandwidth model).
    busy_until: Option<Instant>,
}

/// A registered request type.
pub(crate) struct Handler {
    pub(crate) limits: RequestLimits,
    pub(crate) queue: mpsc::Sender<InboundRequest>,
}

/// A gossip subscription.
pub(crate) struct Subscription {
    pub(crate) queue: mpsc::Sender<(Vec<u8>, PeerId, GossipId)>,
    pub(crate) max_size: usize,
}

/// One node's state.
pub(crate) struct Node {
    index: u64,
    pub(crate) info: PeerInfo,
    pub(crate) events: broadcast::Sender<NetworkEvent>,
    /// Connected peers.
    pub(crate) links: BTreeMap<PeerId, Link>,
    pub(crate) handlers: HashMap<u16, Handler>,
    /// A scripted node answers every request with this instead of its handlers.
    pub(crate) script: Option<ScriptFn>,
    /// Accepted requests' arrival times per (peer, type), at most `max_requests` each.
    pub(crate) windows: HashMap<(PeerId, u16), VecDeque<Instant>>,
    pub(crate) scores: HashMap<PeerId, i32>,
    /// Banned peers and the reason of the penalty that banned each.
    pub(crate) banned: BTreeMap<PeerId, &'static str>,
    pub(crate) topics: HashMap<&'static str, Subscription>,
    /// Gossip messages awaiting a verdict, by id, with their source.
    pub(crate) verdicts: BTreeMap<u64, PeerId>,
    pub(crate) next_gossip_id: u64,
    pub(crate) stats: NodeStats,
}

/// Everything the hub knows.
pub(crate) struct State {
    pub(crate) config: HubConfig,
    rng: ChaCha8Rng,
    pub(crate) nodes: BTreeMap<PeerId, Node>,
    next_index: u64,
    cuts: Vec<(BTreeSet<PeerId>, BTreeSet<PeerId>)>,
}

impl State {
    fn add_node(&mut self, services: Services, script: Option<ScriptFn>) -> PeerId {
        let index = self.next_index;
        self.next_index += 1;
        let id = PeerId::from_index(index);
        let node = Node {
            index,
            info: PeerInfo { services, address: format!("mock://{index}") },
            events: broadcast::channel(EVENT_CAPACITY).0,
            links: BTreeMap::new(),
            handlers: HashMap::new(),
            script,
            windows: HashMap::new(),
            scores: HashMap::new(),
            banned: BTreeMap::new(),
            topics: HashMap::new(),
            verdicts: BTreeMap::new(),
            next_gossip_id: 0,
            stats: NodeStats::default(),
        };
        self.nodes.insert(id, node);
        id
    }

    /// The node.
    ///
    /// # Panics
    ///
    /// If `id` is not a node of this hub: handles only exist for nodes, so this is a bug here.
    pub(crate) fn node_mut(&mut self, id: PeerId) -> &mut Node {
        self.nodes.get_mut(&id).expect("every handle names a node of its hub")
    }

    /// The node (see [`State::node_mut`]).
    pub(crate) fn node(&self, id: PeerId) -> &Node {
        self.nodes.get(&id).expect("every handle names a node of its hub")
    }

    /// `from`'s link to `to`, if connected.
    pub(crate) fn link(&self, from: PeerId, to: PeerId) -> Option<&Link> {
        self.nodes.get(&from)?.links.get(&to)
    }

    fn connect(&mut self, a: PeerId, b: PeerId) -> Result<(), ConnectError> {
        for id in [a, b] {
            if !self.nodes.contains_key(&id) {
                return Err(ConnectError::UnknownNode(id));
            }
        }
        if a == b {
            return Err(ConnectError::SelfConnection);
        }
        if self.node(a).banned.contains_key(&b) || self.node(b).banned.contains_key(&a) {
            return Err(ConnectError::Banned);
        }
        if self.link(a, b).is_some() {
            return Err(ConnectError::AlreadyConnected);
        }
        for (from, to) in [(a, b), (b, a)] {
            let info = self.node(to).info.clone();
            let node = self.node_mut(from);
            node.links.insert(to, Link { closed: watch::channel(()).0, busy_until: None });
            let _ = node.events.send(NetworkEvent::PeerJoined(to, info));
        }
        tracing::debug!(target: TRACE_TARGET, %a, %b, "connected");
        Ok(())
    }

    /// Removes the connection between `a` and `b`; both get `PeerLeft`. Returns whether they were
    /// connected.
    pub(crate) fn unlink(&mut self, a: PeerId, b: PeerId) -> bool {
        let mut was_connected = false;
        for (from, to) in [(a, b), (b, a)] {
            if let Some(node) = self.nodes.get_mut(&from)
                && node.links.remove(&to).is_some()
            {
                was_connected = true;
                let _ = node.events.send(NetworkEvent::PeerLeft(to));
            }
        }
        if was_connected {
            tracing::debug!(target: TRACE_TARGET, %a, %b, "disconnected");
        }
        was_connected
    }

    /// Whether a partition cuts the link between `a` and `b`.
    pub(crate) fn partitioned(&self, a: PeerId, b: PeerId) -> bool {
        self.cuts.iter().any(|(x, y)| (x.contains(&a) && y.contains(&b)) || (x.contains(&b) && y.contains(&a)))
    }

    /// Draws whether the next request or gossip message is lost.
    pub(crate) fn lost(&mut self) -> bool {
        let loss = self.config.loss;
        if loss <= 0.0 { false } else { self.rng.gen_bool(loss) }
    }

    /// Puts a message of `len` bytes on `from`'s link to `to` now and returns when it arrives,
    /// relative to now: queueing behind earlier messages and transmission (bandwidth), latency and
    /// jitter. `None` if the two are not connected.
    pub(crate) fn transit(&mut self, from: PeerId, to: PeerId, len: usize) -> Option<Duration> {
        let now = Instant::now();
        let jitter = match u64::try_from(self.config.jitter.as_nanos()).unwrap_or(u64::MAX) {
            0 => Duration::ZERO,
            max => Duration::from_nanos(self.rng.gen_range(0..=max)),
        };
        let latency = self.config.latency;
        let bandwidth = self.config.bandwidth_bytes_per_sec;
        let link = self.nodes.get_mut(&from)?.links.get_mut(&to)?;
        let sent = match bandwidth {
            None => now,
            Some(bytes_per_sec) => {
                let nanos = (len as u128 * 1_000_000_000).div_ceil(u128::from(bytes_per_sec));
                let start = link.busy_until.map_or(now, |busy| busy.max(now));
                let done = start + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
                link.busy_until = Some(done);
                done
            }
        };
        Some(sent.duration_since(now) + latency + jitter)
    }

    /// `node` lowers `peer`'s score by the configured penalty and bans it at the threshold.
    pub(crate) fn penalize(&mut self, node: PeerId, peer: PeerId, penalty: Penalty) {
        let ban_score = self.config.ban_score;
        let points = penalty.points(self.config.penalty);
        let reason = penalty.reason.as_str();
        let Some(n) = self.nodes.get_mut(&node) else { return };
        let score = n.scores.entry(peer).or_insert(0);
        *score = match points {
            Some(points) => score.saturating_sub(points),
            None => ban_score,
        };
        let score = *score;
        tracing::debug!(target: TRACE_TARGET, %node, %peer, reason, severity = ?penalty.severity, score, "penalized");
        if score <= ban_score && !n.banned.contains_key(&peer) {
            self.ban(node, peer, reason);
        }
    }

    /// `node` bans `peer`: disconnects it and refuses it from now on.
    pub(crate) fn ban(&mut self, node: PeerId, peer: PeerId, reason: &'static str) {
        if let Some(n) = self.nodes.get_mut(&node) {
            n.banned.entry(peer).or_insert(reason);
        }
        tracing::debug!(target: TRACE_TARGET, %node, %peer, reason, "banned");
        self.unlink(node, peer);
    }
}
