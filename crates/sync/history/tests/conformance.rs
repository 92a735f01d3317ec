//! History Macro Sync against the shared conformance suite, on the mock network and over libp2p.

use std::sync::{Arc, RwLock};

use petrel_blockchain::{Blockchain, ChainOptions};
use petrel_network_api::{Network, PeerId, Request, Services};
use petrel_primitives::Blake2bHash;
use petrel_protocol::{RequestBatchSet, RequestHistoryChunk, RequestMacroChain};
use petrel_sync_api::MacroSyncReturn;
use petrel_sync_history::driver::HistoryMacroSync;
use petrel_sync_history::machine::{HistoryConfig, SharedChain};
use petrel_test_utils::TestChain;

struct History;

/// A fresh chain store for the syncing node, and the directory it lives in.
#[derive(Clone)]
struct FreshStore {
    chain: SharedChain,
    _dir: Arc<tempfile::TempDir>,
}

impl petrel_test_utils::conformance::Runner for History {
    type Sync<N: Network> = HistoryMacroSync<N>;
    type Chain = FreshStore;
    fn chain(reference: &TestChain) -> FreshStore {
        let dir = tempfile::tempdir().expect("temporary directory");
        let options = ChainOptions { durable: false, ..Default::default() };
        let chain = Blockchain::open(&dir.path().join("chain.redb"), &reference.genesis, options).expect("open");
        FreshStore { chain: Arc::new(RwLock::new(chain)), _dir: Arc::new(dir) }
    }
    fn macro_head(store: &FreshStore) -> Blake2bHash {
        store.chain.read().expect("lock").head().macro_hash
    }
    fn make<N: Network>(network: N, store: FreshStore) -> Self::Sync<N> {
        HistoryMacroSync::new(network, store.chain.into(), HistoryConfig::default())
    }
    fn required_services() -> Services {
        HistoryConfig::default().required_services
    }
    fn requests() -> &'static [u16] {
        &[RequestMacroChain::TYPE_ID, RequestBatchSet::TYPE_ID, RequestHistoryChunk::TYPE_ID]
    }
    fn fork_verdict(peer: PeerId) -> MacroSyncReturn {
        MacroSyncReturn::Outdated(peer)
    }
}

petrel_test_utils::macro_sync_conformance!(History);
