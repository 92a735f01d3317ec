//! Shared setup of the workspace scenarios.
#![allow(dead_code, unreachable_pub)]

use petrel_blockchain::LightBlockchain;
use petrel_consensus::{BlockLiveSync, EstablishedConfig, LiveConfig, Syncer, SyncerConfig, block_live_sync};
use petrel_network_mock::MockNetwork;
use petrel_primitives::Policy;
use petrel_sync_light::LightConfig;
use petrel_sync_pico::{EitherSyncer, PicoConfig, PicoMacroSync};
use std::sync::{Arc, Mutex};

/// The syncer of a pico node: pico macro sync with the light fallback, block live sync, and the
/// established rule with `min_peers`.
pub type PicoSyncer = Syncer<
    MockNetwork,
    Arc<Mutex<LightBlockchain>>,
    EitherSyncer<MockNetwork>,
    BlockLiveSync<MockNetwork, Arc<Mutex<LightBlockchain>>>,
>;

/// Builds a pico node's syncer over `node` and `chain`.
pub fn pico_syncer(
    node: &MockNetwork,
    chain: &Arc<Mutex<LightBlockchain>>,
    policy: &Policy,
    min_peers: usize,
) -> PicoSyncer {
    let pico = PicoMacroSync::new(node.clone(), chain.clone(), PicoConfig::default());
    let either = EitherSyncer::new(pico, chain.clone(), node.clone(), LightConfig::default());
    let live = block_live_sync(node.clone(), chain.clone(), LiveConfig::for_batch(policy.blocks_per_batch));
    let mut config = SyncerConfig::for_batch(policy.blocks_per_batch);
    config.established = EstablishedConfig { min_peers, ..Default::default() };
    Syncer::new(node.clone(), chain.clone(), either, live, config)
}
