//! Pico Macro Sync over a network: the pico machine in the shared macro-sync driver.

use std::sync::{Arc, Mutex};

use petrel_blockchain::LightBlockchain;
use petrel_sync_api::driver::MachineDriver;

use crate::machine::PicoMachine;

/// The light chain shared by the node's sync components.
pub type SharedLightChain = Arc<Mutex<LightBlockchain>>;

/// Pico Macro Sync over a network `N`: `PicoMacroSync::new(network, chain, PicoConfig)`.
pub type PicoMacroSync<N> = MachineDriver<PicoMachine, N>;
