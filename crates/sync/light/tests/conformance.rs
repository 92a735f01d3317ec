//! Light Macro Sync against the shared conformance suite.

use std::sync::{Arc, Mutex};

use petrel_blockchain::LightBlockchain;
use petrel_network_api::PeerId;
use petrel_network_mock::MockNetwork;
use petrel_sync_api::MacroSyncReturn;
use petrel_sync_light::{LightConfig, LightMacroSync};

struct Light;

impl petrel_test_utils::conformance::Runner for Light {
    type Sync = LightMacroSync<MockNetwork>;
    fn make(network: MockNetwork, chain: Arc<Mutex<LightBlockchain>>) -> Self::Sync {
        LightMacroSync::new(network, chain, LightConfig::default())
    }
    fn fork_verdict(peer: PeerId) -> MacroSyncReturn {
        MacroSyncReturn::Outdated(peer)
    }
}

petrel_test_utils::macro_sync_conformance!(Light);
