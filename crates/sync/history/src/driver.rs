//! History Macro Sync over a network: the history machine in the one sync driver.

use petrel_sync_api::driver::MachineDriver;

use crate::machine::HistoryMachine;

/// History Macro Sync over a network `N`: `HistoryMacroSync::new(network, shared_chain.into(), HistoryConfig)`
/// (a [`crate::machine::HistoryChain`]: the chain and its kept downloads).
pub type HistoryMacroSync<N> = MachineDriver<HistoryMachine, N>;
