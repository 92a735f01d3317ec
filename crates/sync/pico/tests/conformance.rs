//! Pico Macro Sync against the shared conformance suite.

use std::sync::{Arc, Mutex};

use petrel_blockchain::LightBlockchain;
use petrel_network_api::PeerId;
use petrel_network_mock::MockNetwork;
use petrel_sync_api::MacroSyncReturn;
use petrel_sync_pico::{PicoConfig, PicoMacroSync};

struct Pico;

impl petrel_test_utils::conformance::Runner for Pico {
    type Sync = PicoMacroSync<MockNetwork>;
    fn make(network: MockNetwork, chain: Arc<Mutex<LightBlockchain>>) -> Self::Sync {
        PicoMacroSync::new(network, chain, PicoConfig::default())
    }
    fn fork_verdict(peer: PeerId) -> MacroSyncReturn {
        MacroSyncReturn::Conflicting(peer)
    }
}

petrel_test_utils::macro_sync_conformance!(Pico);
