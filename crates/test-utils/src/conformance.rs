//! The MacroSync conformance suite: the same scenarios against every macro-sync implementation,
//! on the mock network (paused clock, `#[tokio::test(start_paused = true)]`) and over libp2p on
//! loopback (real time), through one [`Fabric`] trait.
//!
//! An implementation supplies a [`Runner`]: how to build it over any network, the chain it syncs,
//! the services it needs, the request types it sends (the invalid-answer scenario tampers with each
//! in turn) and its expected verdict where strategies legitimately differ (a peer on a fork is
//! `Conflicting` for pico, `Outdated` for light). [`crate::macro_sync_conformance!`] generates one test per
//! scenario and fabric.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use petrel_blockchain::Blockchain;
use petrel_consensus::handlers::Answer;
use petrel_network_api::{
    DisconnectReason, InboundRequest, Network, NetworkExt, PeerId, Request, ResponseStatus, Services,
};
use petrel_network_libp2p::{Libp2pConfig, Libp2pNetwork};
use petrel_network_mock::{HubConfig, MockHub, MockNetwork, ScriptedReply};
use petrel_primitives::Blake2bHash;
use petrel_protocol::{
    RequestBatchSet, RequestBlock, RequestHead, RequestHistoryChunk, RequestMacroChain, RequestMissingBlocks,
    request_limits,
};
use petrel_sync_api::{MacroSync, MacroSyncReturn};

use crate::TestChain;

/// How to build the implementation under test.
pub trait Runner {
    /// The implementation over a network `N`.
    type Sync<N: Network>: MacroSync;
    /// The chain it syncs.
    type Chain: Clone;
    /// A chain for `reference`'s network, at its anchor.
    fn chain(reference: &TestChain) -> Self::Chain;
    /// The chain's macro head hash.
    fn macro_head(chain: &Self::Chain) -> Blake2bHash;
    /// Builds it over a node's network and chain.
    fn make<N: Network>(network: N, chain: Self::Chain) -> Self::Sync<N>;
    /// Services a peer must advertise to be synced from.
    fn required_services() -> Services;
    /// The request types it sends (their wire ids).
    fn requests() -> &'static [u16];
    /// The verdict for a peer on another fork of the same genesis, after syncing from an honest
    /// peer.
    fn fork_verdict(peer: PeerId) -> MacroSyncReturn;
}

/// A well-formed but wrong answer, per request type: what a lying server sends instead of the
/// truth (everything else it serves honestly).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tamper {
    /// Honest.
    None,
    /// `RequestHead`: its head's macro and election hashes are made up.
    Head,
    /// `RequestMacroChain`: its last election hash is made up.
    MacroChain,
    /// `RequestBlock`: answered with another block (a real one, with another hash).
    Block,
    /// `RequestBatchSet`: the last block's justification is taken away (a block that no longer
    /// proves itself).
    BatchSet,
    /// `RequestBatchSet`, as [`Tamper::BatchSet`] but only for blocks above this number (a fork
    /// whose blocks after the common prefix prove nothing).
    BatchSetAbove(u32),
    /// `RequestHistoryChunk`: two items swapped (or one altered), so the proof no longer holds.
    HistoryChunk,
}

impl Tamper {
    /// The tampering for request type `type_id`.
    pub fn of(type_id: u16) -> Tamper {
        match type_id {
            RequestHead::TYPE_ID => Tamper::Head,
            RequestMacroChain::TYPE_ID => Tamper::MacroChain,
            RequestBlock::TYPE_ID => Tamper::Block,
            RequestBatchSet::TYPE_ID => Tamper::BatchSet,
            RequestHistoryChunk::TYPE_ID => Tamper::HistoryChunk,
            _ => Tamper::None,
        }
    }
}

const MADE_UP: Blake2bHash = Blake2bHash([0xee; 32]);

/// Serves `chain` on `network` for every request type, lying as `tamper` says; runs until the
/// network shuts down. Handlers are registered before the future first runs.
pub fn serve_tampered<N: Network>(
    network: N,
    chain: Arc<std::sync::RwLock<Blockchain>>,
    tamper: Tamper,
) -> impl Future<Output = ()> + Send {
    fn answer_loop<R: Answer, N: Network>(
        network: N,
        chain: Arc<std::sync::RwLock<Blockchain>>,
        lie: impl Fn(&R, R::Response, &Blockchain) -> R::Response + Send + 'static,
    ) -> impl Future<Output = ()> + Send + 'static {
        let mut requests = network.receive_requests::<R>();
        async move {
            while let Some(inbound) = requests.next().await {
                let response = {
                    let chain = chain.read().unwrap_or_else(|e| e.into_inner());
                    let truth = inbound.request.answer(&chain);
                    lie(&inbound.request, truth, &chain)
                };
                let _ = inbound.respond(&response);
            }
        }
    }
    let head = answer_loop::<RequestHead, N>(network.clone(), chain.clone(), move |_, mut head, _| {
        if tamper == Tamper::Head {
            head.macro_hash = MADE_UP;
            head.election_hash = Blake2bHash([0xef; 32]);
        }
        head
    });
    let macro_chain = answer_loop::<RequestMacroChain, N>(network.clone(), chain.clone(), move |_, mut answer, _| {
        if tamper == Tamper::MacroChain
            && let Ok(mc) = &mut answer
            && let Some(last) = mc.epochs.last_mut()
        {
            *last = MADE_UP;
        }
        answer
    });
    let block = answer_loop::<RequestBlock, N>(network.clone(), chain.clone(), move |_, answer, chain| {
        match (tamper, answer) {
            // Block 1 is never one a macro sync asks for.
            (Tamper::Block, Ok(_)) => {
                chain.block_at(1, false).ok().flatten().ok_or(petrel_protocol::BlockRequestError::Other)
            }
            (_, answer) => answer,
        }
    });
    let missing = answer_loop::<RequestMissingBlocks, N>(network.clone(), chain.clone(), |_, a, _| a);
    let batch_set = answer_loop::<RequestBatchSet, N>(network.clone(), chain.clone(), move |_, mut answer, _| {
        let tampered = |number: u32| match tamper {
            Tamper::BatchSet => true,
            Tamper::BatchSetAbove(n) => number > n,
            _ => false,
        };
        if let Ok(info) = &mut answer
            && let Some((last, _)) = info.batch_sets.last_mut()
            && tampered(last.block_number())
        {
            last.justification = None;
            if let Some(e) = &mut info.election_macro_block {
                e.justification = None;
            }
        }
        answer
    });
    let chunk = answer_loop::<RequestHistoryChunk, N>(network, chain, move |_, mut answer, _| {
        if tamper == Tamper::HistoryChunk
            && let Ok(chunk) = &mut answer
        {
            match chunk.items.len() {
                0 => {}
                1 => chunk.items[0].block_time ^= 1,
                _ => chunk.items.swap(0, 1),
            }
        }
        answer
    });
    async move {
        futures::join!(head, macro_chain, block, missing, batch_set, chunk);
    }
}

/// How a scripted peer misbehaves on every request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Misbehaviour {
    /// Answers with a frame that does not decode.
    Garbage,
    /// Never answers.
    Silence,
    /// Drops the connection.
    Disconnect,
    /// Answers `Busy` to everything, forever.
    Busy,
}

const GARBAGE: [u8; 5] = [0, 0xff, 0xfe, 0xfd, 0x07];

/// What the syncing node holds against a peer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Standing {
    /// Penalty points (0: clean).
    pub penalty_points: f64,
    /// Banned.
    pub banned: bool,
    /// Connected.
    pub connected: bool,
}

/// The network the scenarios run on: a syncing node and the peers they add.
#[allow(async_fn_in_trait)] // used by tests only, on the test's own runtime
pub trait Fabric: Sized {
    /// The node's network.
    type Net: Network;
    /// Whether time is virtual (the mock's paused clock).
    const VIRTUAL_TIME: bool;
    /// A fabric for `reference`'s network, with its syncing node.
    async fn new(reference: &TestChain) -> Self;
    /// The syncing node's network.
    fn node(&self) -> Self::Net;
    /// A peer serving `chain` (lying as `tamper` says), connected to the node.
    async fn serve(&mut self, chain: &TestChain, services: Services, tamper: Tamper) -> PeerId;
    /// A peer that misbehaves on every request, connected to the node.
    async fn scripted(&mut self, services: Services, misbehaviour: Misbehaviour) -> PeerId;
    /// What the node holds against `peer`.
    async fn standing(&self, peer: &PeerId) -> Standing;
    /// The points one invalid-data penalty costs.
    fn penalty(&self) -> f64;
}

/// The mock network: deterministic, virtual time.
pub struct MockFabric {
    hub: MockHub,
    node: MockNetwork,
    keep: Vec<Box<dyn std::any::Any>>,
}

impl Fabric for MockFabric {
    type Net = MockNetwork;
    const VIRTUAL_TIME: bool = true;

    async fn new(_reference: &TestChain) -> Self {
        let hub = MockHub::new(HubConfig {
            seed: 7,
            latency: LATENCY,
            promises: petrel_protocol::PROMISES,
            ..Default::default()
        });
        let node = hub.node(Services::NONE);
        Self { hub, node, keep: Vec::new() }
    }
    fn node(&self) -> MockNetwork {
        self.node.clone()
    }
    async fn serve(&mut self, chain: &TestChain, services: Services, tamper: Tamper) -> PeerId {
        let net = self.hub.node(services);
        tokio::spawn(serve_tampered(net.clone(), chain.chain.clone(), tamper));
        self.hub.connect(self.node.peer_id(), net.peer_id()).expect("connect");
        let id = net.peer_id();
        self.keep.push(Box::new(net));
        id
    }
    async fn scripted(&mut self, services: Services, misbehaviour: Misbehaviour) -> PeerId {
        let reply = match misbehaviour {
            Misbehaviour::Garbage => ScriptedReply::Frame(GARBAGE.to_vec()),
            Misbehaviour::Silence => ScriptedReply::Silence,
            Misbehaviour::Disconnect => ScriptedReply::Disconnect,
            Misbehaviour::Busy => ScriptedReply::Frame(vec![ResponseStatus::Busy as u8]),
        };
        let peer = self.hub.scripted_node(services, move |_, _, _| reply.clone());
        self.hub.connect(self.node.peer_id(), peer.peer_id()).expect("connect");
        let id = peer.peer_id();
        self.keep.push(Box::new(peer));
        id
    }
    async fn standing(&self, peer: &PeerId) -> Standing {
        Standing {
            penalty_points: -f64::from(self.node.score(peer)),
            banned: self.node.is_banned(peer),
            connected: self.hub.is_connected(self.node.peer_id(), *peer),
        }
    }
    fn penalty(&self) -> f64 {
        f64::from(self.hub.config().penalty)
    }
}

/// Real libp2p nodes on loopback: real time.
pub struct Libp2pFabric {
    genesis_hash: Blake2bHash,
    node: Libp2pNetwork,
    addr: String,
    next_seed: u8,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    keep: Vec<Libp2pNetwork>,
    silenced: Arc<Mutex<Vec<InboundRequest>>>,
}

impl Drop for Libp2pFabric {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Libp2pFabric {
    fn config(&mut self, services: Services, bootstrap: Vec<String>) -> Libp2pConfig {
        self.next_seed += 1;
        Libp2pConfig {
            genesis_hash: self.genesis_hash,
            services,
            promises: petrel_protocol::PROMISES,
            listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
            bootstrap,
            ..Libp2pConfig::with_seed([self.next_seed; 32])
        }
    }

    /// Starts a peer dialling the node and waits until the node has it.
    async fn start_peer(&mut self, services: Services) -> Libp2pNetwork {
        let config = self.config(services, vec![self.addr.clone()]);
        let (net, event_loop) = Libp2pNetwork::new(config).expect("peer starts");
        self.tasks.push(tokio::spawn(event_loop.run()));
        let id = net.local_peer_id();
        tokio::time::timeout(Duration::from_secs(20), async {
            while self.node.peer_info(&id).is_none() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the peer connects to the node");
        net
    }
}

impl Fabric for Libp2pFabric {
    type Net = Libp2pNetwork;
    const VIRTUAL_TIME: bool = false;

    async fn new(reference: &TestChain) -> Self {
        let genesis_hash = reference.genesis.genesis_hash().expect("genesis");
        let mut config = Libp2pConfig {
            genesis_hash,
            promises: petrel_protocol::PROMISES,
            listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
            request_timeout: Duration::from_secs(2),
            // Penalties do not wear off, so scenarios can count them exactly.
            reputation_recovery_per_sec: 0.0,
            ..Libp2pConfig::with_seed([200; 32])
        };
        config.services = Services::NONE;
        let (node, event_loop) = Libp2pNetwork::new(config).expect("node starts");
        let task = tokio::spawn(event_loop.run());
        let addr = format!("{}/p2p/{}", node.listen_addrs().await[0], node.local_libp2p_peer_id());
        Self {
            genesis_hash,
            node,
            addr,
            next_seed: 0,
            tasks: vec![task],
            keep: Vec::new(),
            silenced: Arc::new(Mutex::new(Vec::new())),
        }
    }
    fn node(&self) -> Libp2pNetwork {
        self.node.clone()
    }
    async fn serve(&mut self, chain: &TestChain, services: Services, tamper: Tamper) -> PeerId {
        let net = self.start_peer(services).await;
        self.tasks.push(tokio::spawn(serve_tampered(net.clone(), chain.chain.clone(), tamper)));
        let id = net.local_peer_id();
        self.keep.push(net);
        id
    }
    async fn scripted(&mut self, services: Services, misbehaviour: Misbehaviour) -> PeerId {
        let net = self.start_peer(services).await;
        for limits in request_limits() {
            let mut rx = net.receive_requests_raw(limits);
            let (net, misbehaviour, silenced) = (net.clone(), misbehaviour.clone(), self.silenced.clone());
            self.tasks.push(tokio::spawn(async move {
                while let Some(inbound) = rx.recv().await {
                    match misbehaviour {
                        Misbehaviour::Garbage => drop(inbound.respond_frame(GARBAGE.to_vec())),
                        // Held, never answered: the requester times out.
                        Misbehaviour::Silence => silenced.lock().unwrap_or_else(|e| e.into_inner()).push(inbound),
                        Misbehaviour::Disconnect => net.disconnect(inbound.peer, DisconnectReason::Other).await,
                        Misbehaviour::Busy => drop(inbound.respond_frame(vec![ResponseStatus::Busy as u8])),
                    }
                }
            }));
        }
        let id = net.local_peer_id();
        self.keep.push(net);
        id
    }
    async fn standing(&self, peer: &PeerId) -> Standing {
        let s = self.node.standing(peer).await;
        Standing {
            penalty_points: s.map_or(0.0, |s| -s.reputation),
            banned: s.is_some_and(|s| s.banned),
            connected: self.node.peer_info(peer).is_some(),
        }
    }
    fn penalty(&self) -> f64 {
        f64::from(petrel_network_libp2p::PENALTY)
    }
}

/// The syncing node of a scenario.
pub struct Harness<R: Runner, F: Fabric> {
    /// The network fabric.
    pub fabric: F,
    /// The syncing node's chain.
    pub chain: R::Chain,
    /// The implementation under test.
    pub sync: R::Sync<F::Net>,
}

/// Latency of the mock's links.
pub const LATENCY: Duration = Duration::from_millis(20);
/// How long a scenario waits for a verdict (virtual time on the mock, real time over libp2p).
pub const WAIT: Duration = Duration::from_secs(120);

impl<R: Runner, F: Fabric> Harness<R, F> {
    /// A syncing node for `reference`'s network (its genesis anchors the chain).
    pub async fn new(reference: &TestChain) -> Self {
        let fabric = F::new(reference).await;
        let chain = R::chain(reference);
        let sync = R::make(fabric.node(), chain.clone());
        Self { fabric, chain, sync }
    }

    /// A peer serving `chain` honestly, handed to the sync.
    pub async fn honest(&mut self, chain: &TestChain) -> PeerId {
        self.peer(chain, Tamper::None).await
    }

    /// A peer serving `chain` as `tamper` says, handed to the sync.
    pub async fn peer(&mut self, chain: &TestChain, tamper: Tamper) -> PeerId {
        let peer = self.fabric.serve(chain, Services::HISTORY_NODE, tamper).await;
        self.sync.add_peer(peer);
        peer
    }

    /// A misbehaving peer, handed to the sync.
    pub async fn misbehaving(&mut self, services: Services, misbehaviour: Misbehaviour) -> PeerId {
        let peer = self.fabric.scripted(services, misbehaviour).await;
        self.sync.add_peer(peer);
        peer
    }

    /// The next verdict within [`WAIT`], or `None`.
    pub async fn next(&mut self) -> Option<MacroSyncReturn> {
        tokio::time::timeout(WAIT, self.sync.next()).await.ok().flatten()
    }

    /// The next `n` verdicts, sorted by peer.
    pub async fn next_n(&mut self, n: usize) -> Vec<Option<MacroSyncReturn>> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.next().await);
        }
        out.sort_by_key(|v| v.map(|v| v.peer()));
        out
    }

    /// Drives the sync until the node has banned `peer`; panics on a verdict meanwhile or after
    /// [`WAIT`].
    pub async fn run_until_banned(&mut self, peer: PeerId) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !self.fabric.standing(&peer).await.banned {
            assert!(tokio::time::Instant::now() < deadline, "{peer} was not banned");
            if let Ok(verdict) = tokio::time::timeout(Duration::from_millis(50), self.sync.next()).await {
                panic!("unexpected verdict {verdict:?} while waiting for {peer} to be banned");
            }
        }
    }

    /// The chain's macro head hash.
    pub fn macro_head(&self) -> Blake2bHash {
        R::macro_head(&self.chain)
    }
}

fn head_of(chain: &TestChain) -> Blake2bHash {
    chain.chain.read().expect("lock").head().macro_hash
}

fn sorted(mut v: Vec<Option<MacroSyncReturn>>) -> Vec<Option<MacroSyncReturn>> {
    v.sort_by_key(|v| v.map(|v| v.peer()));
    v
}

/// The peer and we are both at genesis: Good, nothing adopted.
pub async fn empty_chain<R: Runner, F: Fabric>() {
    let server = TestChain::build(1, 0);
    let mut h = Harness::<R, F>::new(&server).await;
    let peer = h.honest(&server).await;
    assert_eq!(h.next().await, Some(MacroSyncReturn::Good(peer)));
    assert_eq!(h.macro_head(), server.genesis.genesis_hash().expect("genesis"));
}

/// The peer is many epochs ahead, its macro head a checkpoint: Good, and we reach its macro head.
pub async fn peer_ahead<R: Runner, F: Fabric>() {
    let server = TestChain::build(1, 8 * 12 + 5);
    let mut h = Harness::<R, F>::new(&server).await;
    let peer = h.honest(&server).await;
    assert_eq!(h.next().await, Some(MacroSyncReturn::Good(peer)));
    assert_eq!(h.macro_head(), head_of(&server));
}

/// After syncing from a peer ahead, a peer on an earlier part of the same chain is Outdated.
pub async fn peer_behind<R: Runner, F: Fabric>() {
    let ahead = TestChain::build(1, 8 * 6 + 4);
    let behind = TestChain::build(1, 8 * 3);
    let mut h = Harness::<R, F>::new(&ahead).await;
    let a = h.honest(&ahead).await;
    assert_eq!(h.next().await, Some(MacroSyncReturn::Good(a)));
    let b = h.honest(&behind).await;
    assert_eq!(h.next().await, Some(MacroSyncReturn::Outdated(b)));
    assert_eq!(h.macro_head(), head_of(&ahead), "a peer behind does not move us back");
}

/// After syncing from one fork, a peer on another fork of the same genesis gets the runner's
/// fork verdict and does not change our chain by itself.
pub async fn peer_on_fork<R: Runner, F: Fabric>() {
    let main = TestChain::build(1, 8 * 4 + 4);
    let fork = main.fork(1, 8 * 4 + 4);
    assert_ne!(head_of(&main), head_of(&fork));
    let mut h = Harness::<R, F>::new(&main).await;
    let a = h.honest(&main).await;
    assert_eq!(h.next().await, Some(MacroSyncReturn::Good(a)));
    let b = h.honest(&fork).await;
    assert_eq!(h.next().await, Some(R::fork_verdict(b)));
}

/// A peer that drops the connection in the middle of a request yields no verdict and does not
/// stop the sync with an honest peer.
pub async fn disconnect_mid_request<R: Runner, F: Fabric>() {
    let server = TestChain::build(1, 8 * 5 + 4);
    let mut h = Harness::<R, F>::new(&server).await;
    let quitter = h.misbehaving(Services::HISTORY_NODE, Misbehaviour::Disconnect).await;
    let honest = h.honest(&server).await;
    assert_eq!(h.next().await, Some(MacroSyncReturn::Good(honest)));
    assert_eq!(h.macro_head(), head_of(&server));
    let s = h.fabric.standing(&quitter).await;
    assert!(!s.banned, "leaving is no offence");
}

/// A peer answering garbage is penalised for invalid data (not banned at once: repeated faults
/// ban it through its reputation) and set aside as Outdated; an honest peer still gets us synced.
pub async fn garbage_answers<R: Runner, F: Fabric>() {
    let server = TestChain::build(1, 8 * 5 + 4);
    let mut h = Harness::<R, F>::new(&server).await;
    let liar = h.misbehaving(Services::HISTORY_NODE, Misbehaviour::Garbage).await;
    let honest = h.honest(&server).await;
    let expected = sorted(vec![Some(MacroSyncReturn::Outdated(liar)), Some(MacroSyncReturn::Good(honest))]);
    assert_eq!(h.next_n(2).await, expected);
    let s = h.fabric.standing(&liar).await;
    let penalty = h.fabric.penalty();
    assert_eq!(s.penalty_points, penalty, "one invalid-data penalty: {s:?}");
    assert!(!s.banned && s.connected, "{s:?}");
    assert_eq!(h.fabric.standing(&honest).await.penalty_points, 0.0);
    assert_eq!(h.macro_head(), head_of(&server));
}

/// Every peer fails by timing out: each is Outdated (asked again later) with a minor penalty, none
/// is disconnected, and the chain is untouched.
pub async fn every_peer_failing<R: Runner, F: Fabric>() {
    let server = TestChain::build(1, 8);
    let mut h = Harness::<R, F>::new(&server).await;
    let a = h.misbehaving(Services::HISTORY_NODE, Misbehaviour::Silence).await;
    let b = h.misbehaving(Services::HISTORY_NODE, Misbehaviour::Silence).await;
    let expected = sorted(vec![Some(MacroSyncReturn::Outdated(a)), Some(MacroSyncReturn::Outdated(b))]);
    assert_eq!(h.next_n(2).await, expected);
    assert_eq!(h.sync.num_peers(), 0);
    let minor = (h.fabric.penalty() / 5.0).max(1.0);
    for peer in [a, b] {
        let s = h.fabric.standing(&peer).await;
        assert_eq!(s.penalty_points, minor, "a timeout costs a minor penalty: {s:?}");
        assert!(s.connected && !s.banned, "a timeout does not disconnect: {s:?}");
    }
    assert_eq!(h.macro_head(), server.genesis.genesis_hash().expect("genesis"));
}

/// Sybils that never answer, or answer `Busy` forever, do not stall the sync: an honest peer that
/// joins after them gets us synced, and each sybil ends Outdated (asked again only at the next
/// check); silence costs a minor penalty.
pub async fn sybils_do_not_stall_an_honest_peer<R: Runner, F: Fabric>() {
    let server = TestChain::build(1, 8 * 5 + 4);
    let mut h = Harness::<R, F>::new(&server).await;
    let silent = h.misbehaving(Services::HISTORY_NODE, Misbehaviour::Silence).await;
    let busy = h.misbehaving(Services::HISTORY_NODE, Misbehaviour::Busy).await;
    let honest = h.honest(&server).await;
    let verdicts = h.next_n(3).await;
    for expected in [MacroSyncReturn::Good(honest), MacroSyncReturn::Outdated(silent), MacroSyncReturn::Outdated(busy)]
    {
        assert!(verdicts.contains(&Some(expected)), "no {expected:?} in {verdicts:?}");
    }
    assert_eq!(h.macro_head(), head_of(&server));
    assert!(h.fabric.standing(&silent).await.penalty_points > 0.0, "silence costs");
    assert_eq!(h.fabric.standing(&honest).await.penalty_points, 0.0);
}

/// A peer without the required services is Incompatible and never asked anything.
pub async fn peer_without_services<R: Runner, F: Fabric>() {
    let server = TestChain::build(1, 8);
    let mut h = Harness::<R, F>::new(&server).await;
    let lacking = Services(Services::HISTORY_NODE.0 & !R::required_services().0);
    // It would answer garbage to anything, so a request would cost it a penalty.
    let peer = h.misbehaving(lacking, Misbehaviour::Garbage).await;
    assert_eq!(h.next().await, Some(MacroSyncReturn::Incompatible(peer)));
    assert_eq!(h.fabric.standing(&peer).await.penalty_points, 0.0, "never asked");
}

/// For each request type the sync sends: a peer that answers it with a well-formed but wrong
/// answer (a made-up head or election hash, another block than asked for) is banned without a
/// verdict and without moving our chain past what verifies; an honest peer then gets us synced.
pub async fn invalid_answers<R: Runner, F: Fabric>() {
    for &type_id in R::requests() {
        let tamper = Tamper::of(type_id);
        assert_ne!(tamper, Tamper::None, "the suite has no lie for request type {type_id}");
        let server = TestChain::build(1, 8 * 5 + 4);
        let mut h = Harness::<R, F>::new(&server).await;
        let liar = h.peer(&server, tamper).await;
        h.run_until_banned(liar).await;
        let honest = h.honest(&server).await;
        assert_eq!(h.next().await, Some(MacroSyncReturn::Good(honest)), "{tamper:?}");
        assert_eq!(h.macro_head(), head_of(&server), "{tamper:?}");
    }
}

/// Generates one test per scenario for a runner, on the mock network and over libp2p.
#[macro_export]
macro_rules! macro_sync_conformance {
    ($runner:ty) => {
        $crate::macro_sync_conformance!(@fabric $runner, mock, $crate::conformance::MockFabric, (start_paused = true));
        $crate::macro_sync_conformance!(@fabric $runner, libp2p, $crate::conformance::Libp2pFabric, (flavor = "multi_thread", worker_threads = 2));
    };
    (@fabric $runner:ty, $name:ident, $fabric:ty, $flavor:tt) => {
        mod $name {
            use super::*;
            use $crate::conformance as c;
            $crate::macro_sync_conformance!(@tests $runner, $fabric, $flavor,
                empty_chain, peer_ahead, peer_behind, peer_on_fork, disconnect_mid_request,
                garbage_answers, every_peer_failing, peer_without_services, invalid_answers,
                sybils_do_not_stall_an_honest_peer);
        }
    };
    (@tests $runner:ty, $fabric:ty, $flavor:tt, $($scenario:ident),*) => {
        $(
            #[tokio::test $flavor]
            async fn $scenario() {
                c::$scenario::<$runner, $fabric>().await
            }
        )*
    };
}
