//! Pico Macro Sync over a network: the pico machine in the shared driver.

use petrel_sync_api::driver::MachineDriver;
pub use petrel_sync_api::light_chain::SharedLightChain;

use crate::machine::PicoMachine;

/// Pico Macro Sync over a network `N`: `PicoMacroSync::new(network, chain, PicoConfig)`.
pub type PicoMacroSync<N> = MachineDriver<PicoMachine, N>;
