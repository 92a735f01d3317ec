//! Light Macro Sync against the shared conformance suite, on the mock network and over libp2p.

use petrel_network_api::{Network, PeerId, Request, Services};
use petrel_primitives::Blake2bHash;
use petrel_protocol::{RequestBlock, RequestMacroChain};
use petrel_sync_api::MacroSyncReturn;
use petrel_sync_api::light_chain::{SharedLightChain, lock};
use petrel_sync_light::{LightConfig, LightMacroSync};
use petrel_test_utils::TestChain;

struct Light;

impl petrel_test_utils::conformance::Runner for Light {
    type Sync<N: Network> = LightMacroSync<N>;
    type Chain = SharedLightChain;
    fn chain(reference: &TestChain) -> SharedLightChain {
        reference.light_chain()
    }
    fn macro_head(chain: &SharedLightChain) -> Blake2bHash {
        lock(chain).macro_head().hash()
    }
    fn make<N: Network>(network: N, chain: SharedLightChain) -> Self::Sync<N> {
        LightMacroSync::new(network, chain, LightConfig::default())
    }
    fn required_services() -> Services {
        LightConfig::default().required_services
    }
    fn requests() -> &'static [u16] {
        &[RequestMacroChain::TYPE_ID, RequestBlock::TYPE_ID]
    }
    fn fork_verdict(peer: PeerId) -> MacroSyncReturn {
        MacroSyncReturn::Outdated(peer)
    }
}

petrel_test_utils::macro_sync_conformance!(Light);
