//! Test utilities shared by the sync crates and the workspace tests (dev-dependency only):
//! seeded chain builders ([`TestChain`]), serving nodes on the mock network ([`serve`]), and the
//! MacroSync conformance suite ([`conformance`]) that runs the same scenarios against every
//! macro-sync implementation.

pub mod conformance;

use std::sync::{Arc, Mutex, RwLock};

use petrel_blockchain::{Blockchain, ChainOptions, LightBlockchain};
use petrel_consensus::handlers::{HandlerConfig, SharedChain, serve_full_chain};
use petrel_network_api::Services;
use petrel_network_mock::{MockHub, MockNetwork};
use petrel_primitives::{Block, GenesisConfig, Policy};
use petrel_producer::{Producer, ProducerConfig};

/// Network id of test chains.
pub const TEST_NETWORK: u8 = 9;

/// The producer of test chains: `seed` picks keys and transactions.
pub fn test_producer(seed: u64, transactions_per_block: usize) -> Producer {
    Producer::new(ProducerConfig {
        seed,
        validators: 4,
        spare_validators: 2,
        accounts: 16,
        transactions_per_block,
        block_interval_ms: 1000,
    })
}

/// A chain store built by a producer, in a temporary directory.
pub struct TestChain {
    /// Keeps the directory alive.
    pub dir: tempfile::TempDir,
    /// The store.
    pub chain: SharedChain,
    /// Its genesis.
    pub genesis: GenesisConfig,
    /// Its producer.
    pub producer: Producer,
    /// Every block after genesis.
    pub blocks: Vec<Block>,
}

impl TestChain {
    /// A chain of the test policy, `blocks` blocks long, by `producer` on `genesis`.
    pub fn build_on(producer: Producer, genesis: GenesisConfig, blocks: usize) -> Self {
        Self::build_with(producer, genesis, blocks, ChainOptions { durable: false, ..Default::default() })
    }

    /// Like [`TestChain::build_on`], with the store's `options` (e.g. a small batch-set size).
    pub fn build_with(producer: Producer, genesis: GenesisConfig, blocks: usize, options: ChainOptions) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut chain = Blockchain::open(&dir.path().join("chain.redb"), &genesis, options).expect("open test chain");
        let mut scratch = chain.state().clone();
        let mut out = Vec::with_capacity(blocks);
        for _ in 0..blocks {
            let b = producer.produce(&mut scratch).expect("produce");
            chain.push(b.clone()).expect("push");
            scratch.apply_block(b.clone()).expect("apply");
            out.push(b);
        }
        Self { dir, chain: Arc::new(RwLock::new(chain)), genesis, producer, blocks: out }
    }

    /// A chain of `blocks` blocks from the producer with `seed` (keys and genesis derive from it).
    pub fn build(seed: u64, blocks: usize) -> Self {
        let producer = test_producer(seed, 2);
        let genesis = producer.genesis(TEST_NETWORK, 1_700_000_000_000, Policy::TEST);
        Self::build_on(producer, genesis, blocks)
    }

    /// The same genesis and keys as `self` but other transactions from block 1: a fork.
    pub fn fork(&self, tx_seed_offset: u64, blocks: usize) -> Self {
        let mut config = self.producer.config().clone();
        config.transactions_per_block += 1 + tx_seed_offset as usize;
        Self::build_on(Producer::new(config), self.genesis.clone(), blocks)
    }

    /// A fork that shares the first `shared` blocks of `self` and then goes on with other
    /// transactions (same keys: both branches are signed by the same validators) to `blocks`
    /// blocks in all.
    pub fn fork_after(&self, shared: usize, tx_seed_offset: u64, blocks: usize) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let options = ChainOptions { durable: false, ..Default::default() };
        let mut chain = Blockchain::open(&dir.path().join("chain.redb"), &self.genesis, options).expect("open fork");
        let mut out: Vec<Block> = self.blocks[..shared.min(self.blocks.len())].to_vec();
        for b in &out {
            chain.push(b.clone()).expect("push shared block");
        }
        let mut config = self.producer.config().clone();
        config.transactions_per_block += 1 + tx_seed_offset as usize;
        let producer = Producer::new(config);
        let mut scratch = chain.state().clone();
        while out.len() < blocks {
            let b = producer.produce(&mut scratch).expect("produce");
            chain.push(b.clone()).expect("push");
            scratch.apply_block(b.clone()).expect("apply");
            out.push(b);
        }
        Self { dir, chain: Arc::new(RwLock::new(chain)), genesis: self.genesis.clone(), producer, blocks: out }
    }

    /// Blocks per epoch of the test policy.
    pub fn epoch_len(&self) -> usize {
        self.genesis.policy.blocks_per_epoch() as usize
    }

    /// Extends the chain by `n` blocks.
    pub fn extend(&mut self, n: usize) -> Vec<Block> {
        let mut chain = self.chain.write().expect("lock");
        let mut scratch = chain.state().clone();
        let mut out = Vec::new();
        for _ in 0..n {
            let b = self.producer.produce(&mut scratch).expect("produce");
            chain.push(b.clone()).expect("push");
            scratch.apply_block(b.clone()).expect("apply");
            out.push(b);
        }
        self.blocks.extend(out.iter().cloned());
        out
    }

    /// A fresh light chain (anchored at genesis) for this network.
    pub fn light_chain(&self) -> Arc<Mutex<LightBlockchain>> {
        Arc::new(Mutex::new(LightBlockchain::new(&self.genesis, None, None).expect("light chain")))
    }
}

/// A node on `hub` serving `chain` and lying as `tamper` says (see
/// [`conformance::serve_tampered`]); the handler task runs on the current tokio runtime.
pub fn serve_tampered(
    hub: &MockHub,
    chain: &TestChain,
    services: Services,
    tamper: conformance::Tamper,
) -> MockNetwork {
    let net = hub.node(services);
    tokio::spawn(conformance::serve_tampered(net.clone(), chain.chain.clone(), tamper));
    net
}

/// A node on `hub` serving `chain` with every request handler; the handler task runs on the
/// current tokio runtime.
pub fn serve(hub: &MockHub, chain: &TestChain, services: Services) -> MockNetwork {
    let net = hub.node(services);
    tokio::spawn(serve_full_chain(net.clone(), chain.chain.clone(), HandlerConfig::default()));
    net
}
