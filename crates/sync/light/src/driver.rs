//! Light Macro Sync over a network: the light machine in the shared macro-sync driver.

use petrel_sync_api::driver::MachineDriver;

use crate::machine::LightMachine;

/// Light Macro Sync over a network `N`: `LightMacroSync::new(network, chain, LightConfig)`.
pub type LightMacroSync<N> = MachineDriver<LightMachine, N>;
