//! Shared by the scenario benches: serving nodes and a syncing node over libp2p on loopback.

use petrel_network_api::{Counting, Services};
use petrel_network_libp2p::{Libp2pConfig, Libp2pNetwork};
use petrel_test_utils::TestChain;

/// `peers` history nodes serving `server`'s chain and a fresh node (counted) that dials them all.
/// Dropping it stops every task.
pub(crate) struct Loopback {
    /// The syncing node.
    pub(crate) node: Counting<Libp2pNetwork>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _servers: Vec<Libp2pNetwork>,
}

impl Loopback {
    pub(crate) async fn start(server: &TestChain, peers: usize) -> Self {
        let genesis_hash = server.genesis.genesis_hash().unwrap();
        let (mut addrs, mut tasks, mut servers) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..peers as u8 {
            let mut c = Libp2pConfig::with_seed([i + 1; 32]);
            c.listen = vec!["/ip4/127.0.0.1/tcp/0".into()];
            c.genesis_hash = genesis_hash;
            c.services = Services::HISTORY_NODE;
            let (net, ev) = Libp2pNetwork::new(c).unwrap();
            tasks.push(tokio::spawn(ev.run()));
            tasks.push(tokio::spawn(petrel_consensus::handlers::serve_full_chain(
                net.clone(),
                server.chain.clone(),
                Default::default(),
            )));
            let a = net.listen_addrs().await[0].clone();
            addrs.push(format!("{a}/p2p/{}", net.local_libp2p_peer_id()));
            servers.push(net);
        }
        let mut c = Libp2pConfig::with_seed([99; 32]);
        c.bootstrap = addrs;
        c.genesis_hash = genesis_hash;
        let (raw, ev) = Libp2pNetwork::new(c).unwrap();
        tasks.push(tokio::spawn(ev.run()));
        Self { node: Counting::new(raw), tasks, _servers: servers }
    }
}

impl Drop for Loopback {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
