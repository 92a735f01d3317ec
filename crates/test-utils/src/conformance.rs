//! The MacroSync conformance suite: the same scenarios against every macro-sync implementation on
//! the mock network, with a paused clock (call from `#[tokio::test(start_paused = true)]`).
//!
//! An implementation supplies a [`Runner`]: how to build it, and its expected verdict where
//! strategies legitimately differ (a peer on a fork is `Conflicting` for pico, `Outdated` for
//! light).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use petrel_blockchain::LightBlockchain;
use petrel_network_api::{PeerId, Services};
use petrel_network_mock::{HubConfig, MockHub, MockNetwork, ScriptedReply};
use petrel_sync_api::{MacroSync, MacroSyncReturn};

use crate::{TestChain, serve};

/// How to build the implementation under test.
pub trait Runner {
    /// The implementation.
    type Sync: MacroSync;
    /// Builds it over a node's network and light chain.
    fn make(network: MockNetwork, chain: Arc<Mutex<LightBlockchain>>) -> Self::Sync;
    /// The verdict for a peer on another fork of the same genesis, after syncing from an honest
    /// peer.
    fn fork_verdict(peer: PeerId) -> MacroSyncReturn;
}

/// The syncing node of a scenario.
pub struct Harness<R: Runner> {
    /// The hub.
    pub hub: MockHub,
    /// The syncing node's network.
    pub node: MockNetwork,
    /// Its light chain.
    pub chain: Arc<Mutex<LightBlockchain>>,
    /// The implementation under test.
    pub sync: R::Sync,
}

/// Latency of every scenario's links.
pub const LATENCY: Duration = Duration::from_millis(20);
/// How long a scenario waits for a verdict (virtual time).
pub const WAIT: Duration = Duration::from_secs(120);

impl<R: Runner> Harness<R> {
    /// A syncing node for `reference`'s network (its genesis anchors the light chain).
    pub fn new(reference: &TestChain) -> Self {
        let hub = MockHub::new(HubConfig { seed: 7, latency: LATENCY, ..Default::default() });
        let node = hub.node(Services::NONE);
        let chain = reference.light_chain();
        let sync = R::make(node.clone(), chain.clone());
        Self { hub, node, chain, sync }
    }

    /// Connects a peer and hands it to the sync.
    pub fn add(&mut self, peer: PeerId) {
        self.hub.connect(self.node.peer_id(), peer).expect("connect");
        self.sync.add_peer(peer);
    }

    /// The next verdict within [`WAIT`], or `None`.
    pub async fn next(&mut self) -> Option<MacroSyncReturn> {
        tokio::time::timeout(WAIT, self.sync.next()).await.ok().flatten()
    }

    /// The light chain's macro head hash.
    pub fn macro_head(&self) -> petrel_primitives::Blake2bHash {
        self.chain.lock().expect("lock").macro_head().hash()
    }
}

fn head_of(chain: &TestChain) -> petrel_primitives::Blake2bHash {
    chain.chain.read().expect("lock").head().macro_hash
}

/// The peer and we are both at genesis: Good, nothing adopted.
pub async fn empty_chain<R: Runner>() {
    let server = TestChain::build(1, 0);
    let mut h = Harness::<R>::new(&server);
    let peer = serve(&h.hub, &server, Services::HISTORY_NODE);
    h.add(peer.peer_id());
    assert_eq!(h.next().await, Some(MacroSyncReturn::Good(peer.peer_id())));
    assert_eq!(h.macro_head(), server.genesis.genesis_hash().expect("genesis"));
}

/// The peer is many epochs ahead, its macro head a checkpoint: Good, and we reach its macro head.
pub async fn peer_ahead<R: Runner>() {
    let server = TestChain::build(1, 8 * 12 + 5);
    let mut h = Harness::<R>::new(&server);
    let peer = serve(&h.hub, &server, Services::HISTORY_NODE);
    h.add(peer.peer_id());
    assert_eq!(h.next().await, Some(MacroSyncReturn::Good(peer.peer_id())));
    assert_eq!(h.macro_head(), head_of(&server));
}

/// After syncing from a peer ahead, a peer on an earlier part of the same chain is Outdated.
pub async fn peer_behind<R: Runner>() {
    let ahead = TestChain::build(1, 8 * 6 + 4);
    let behind = TestChain::build(1, 8 * 3);
    let mut h = Harness::<R>::new(&ahead);
    let a = serve(&h.hub, &ahead, Services::HISTORY_NODE);
    h.add(a.peer_id());
    assert_eq!(h.next().await, Some(MacroSyncReturn::Good(a.peer_id())));
    let b = serve(&h.hub, &behind, Services::HISTORY_NODE);
    h.add(b.peer_id());
    assert_eq!(h.next().await, Some(MacroSyncReturn::Outdated(b.peer_id())));
    assert_eq!(h.macro_head(), head_of(&ahead), "a peer behind does not move us back");
}

/// After syncing from one fork, a peer on another fork of the same genesis gets the runner's
/// fork verdict and does not change our chain by itself.
pub async fn peer_on_fork<R: Runner>() {
    let main = TestChain::build(1, 8 * 4 + 4);
    let fork = main.fork(1, 8 * 4 + 4);
    assert_ne!(head_of(&main), head_of(&fork));
    let mut h = Harness::<R>::new(&main);
    let a = serve(&h.hub, &main, Services::HISTORY_NODE);
    h.add(a.peer_id());
    assert_eq!(h.next().await, Some(MacroSyncReturn::Good(a.peer_id())));
    let b = serve(&h.hub, &fork, Services::HISTORY_NODE);
    h.add(b.peer_id());
    assert_eq!(h.next().await, Some(R::fork_verdict(b.peer_id())));
}

/// A peer that drops the connection in the middle of a request yields no verdict and does not
/// stop the sync with an honest peer.
pub async fn disconnect_mid_request<R: Runner>() {
    let server = TestChain::build(1, 8 * 5 + 4);
    let mut h = Harness::<R>::new(&server);
    let quitter = h.hub.scripted_node(Services::HISTORY_NODE, |_, _, _| ScriptedReply::Disconnect);
    h.add(quitter.peer_id());
    let honest = serve(&h.hub, &server, Services::HISTORY_NODE);
    h.add(honest.peer_id());
    assert_eq!(h.next().await, Some(MacroSyncReturn::Good(honest.peer_id())));
    assert_eq!(h.macro_head(), head_of(&server));
    assert!(!h.hub.is_connected(h.node.peer_id(), quitter.peer_id()));
}

/// A peer answering garbage is penalised for invalid data (not banned at once: repeated faults
/// ban it through its reputation) and set aside as Outdated; an honest peer still gets us synced.
pub async fn garbage_answers<R: Runner>() {
    let server = TestChain::build(1, 8 * 5 + 4);
    let mut h = Harness::<R>::new(&server);
    let liar =
        h.hub.scripted_node(Services::HISTORY_NODE, |_, _, _| ScriptedReply::Frame(vec![0, 0xff, 0xfe, 0xfd, 0x07]));
    h.add(liar.peer_id());
    let honest = serve(&h.hub, &server, Services::HISTORY_NODE);
    h.add(honest.peer_id());
    let mut verdicts = vec![h.next().await, h.next().await];
    verdicts.sort_by_key(|v| v.map(|v| v.peer()));
    let mut expected =
        vec![Some(MacroSyncReturn::Outdated(liar.peer_id())), Some(MacroSyncReturn::Good(honest.peer_id()))];
    expected.sort_by_key(|v| v.map(|v| v.peer()));
    assert_eq!(verdicts, expected);
    assert_eq!(h.node.score(&liar.peer_id()), -h.hub.config().penalty, "one invalid-data penalty");
    assert!(!h.node.is_banned(&liar.peer_id()));
    assert_eq!(h.node.score(&honest.peer_id()), 0);
    assert_eq!(h.macro_head(), head_of(&server));
}

/// Every peer fails by timing out: each is Outdated (asked again later) with a minor penalty, none
/// is disconnected, and the chain is untouched.
pub async fn every_peer_failing<R: Runner>() {
    let server = TestChain::build(1, 8);
    let mut h = Harness::<R>::new(&server);
    let a = h.hub.scripted_node(Services::HISTORY_NODE, |_, _, _| ScriptedReply::Silence);
    let b = h.hub.scripted_node(Services::HISTORY_NODE, |_, _, _| ScriptedReply::Silence);
    h.add(a.peer_id());
    h.add(b.peer_id());
    let mut verdicts = vec![h.next().await, h.next().await];
    verdicts.sort_by_key(|v| v.map(|v| v.peer()));
    let mut expected = vec![Some(MacroSyncReturn::Outdated(a.peer_id())), Some(MacroSyncReturn::Outdated(b.peer_id()))];
    expected.sort_by_key(|v| v.map(|v| v.peer()));
    assert_eq!(verdicts, expected);
    assert_eq!(h.sync.num_peers(), 0);
    let minor = -(h.hub.config().penalty / 5).max(1);
    for peer in [a.peer_id(), b.peer_id()] {
        assert_eq!(h.node.score(&peer), minor, "a timeout costs a minor penalty");
        assert!(h.hub.is_connected(h.node.peer_id(), peer), "a timeout does not disconnect");
    }
    assert!(h.chain.lock().expect("lock").at_anchor());
}

/// A peer without the required services is Incompatible and never asked anything.
pub async fn peer_without_services<R: Runner>() {
    let server = TestChain::build(1, 8);
    let mut h = Harness::<R>::new(&server);
    let asked = Arc::new(Mutex::new(0u32));
    let counter = asked.clone();
    let pico = h.hub.scripted_node(Services::NONE, move |_, _, _| {
        *counter.lock().expect("lock") += 1;
        ScriptedReply::Silence
    });
    h.add(pico.peer_id());
    assert_eq!(h.next().await, Some(MacroSyncReturn::Incompatible(pico.peer_id())));
    assert_eq!(*asked.lock().expect("lock"), 0);
}

/// Generates one `#[tokio::test]` per scenario for a runner.
#[macro_export]
macro_rules! macro_sync_conformance {
    ($runner:ty) => {
        mod conformance {
            use super::*;
            use $crate::conformance as c;
            #[tokio::test(start_paused = true)]
            async fn empty_chain() {
                c::empty_chain::<$runner>().await
            }
            #[tokio::test(start_paused = true)]
            async fn peer_ahead() {
                c::peer_ahead::<$runner>().await
            }
            #[tokio::test(start_paused = true)]
            async fn peer_behind() {
                c::peer_behind::<$runner>().await
            }
            #[tokio::test(start_paused = true)]
            async fn peer_on_fork() {
                c::peer_on_fork::<$runner>().await
            }
            #[tokio::test(start_paused = true)]
            async fn disconnect_mid_request() {
                c::disconnect_mid_request::<$runner>().await
            }
            #[tokio::test(start_paused = true)]
            async fn garbage_answers() {
                c::garbage_answers::<$runner>().await
            }
            #[tokio::test(start_paused = true)]
            async fn every_peer_failing() {
                c::every_peer_failing::<$runner>().await
            }
            #[tokio::test(start_paused = true)]
            async fn peer_without_services() {
                c::peer_without_services::<$runner>().await
            }
        }
    };
}
