//! The light chain as the pico and light machines share it: a handle for the driver, and the
//! cheap snapshot a machine reads.

use std::sync::{Arc, Mutex, MutexGuard};

use petrel_blockchain::{HeadInfo, LightBlockchain};
use petrel_primitives::Policy;

/// The light chain shared by a node's sync components.
pub type SharedLightChain = Arc<Mutex<LightBlockchain>>;

/// Locks the shared light chain. A poisoned lock only means another holder panicked mid-call; the
/// light chain's updates apply fully or not at all, so its state is still consistent.
pub fn lock(chain: &SharedLightChain) -> MutexGuard<'_, LightBlockchain> {
    chain.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a light-chain machine may read: a snapshot taken under a short lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LightView {
    /// Head summary (hashes of the head, macro head and election head).
    pub head: HeadInfo,
    /// Number of the macro head.
    pub macro_number: u32,
    /// Number of the election head.
    pub election_number: u32,
    /// Whether the chain is still at its anchor.
    pub at_anchor: bool,
    /// Whether the chain rests on an election block taken on trust (pico).
    pub optimistic: bool,
    /// The policy.
    pub policy: Policy,
    /// The chain's reset count ([`LightBlockchain::generation`]).
    pub generation: u64,
    /// Whether the election head is the election block a proof chain proved (zero-knowledge light
    /// sync), so that a further proof chain may start from it.
    pub at_proven: bool,
}

impl LightView {
    /// A snapshot of `chain`.
    pub fn of(chain: &LightBlockchain) -> Self {
        Self {
            head: chain.head(),
            macro_number: chain.macro_head().block_number(),
            election_number: chain.election_head().block_number(),
            at_anchor: chain.at_anchor(),
            optimistic: chain.is_optimistic(),
            policy: *chain.policy(),
            generation: chain.generation(),
            at_proven: chain.at_proven(),
        }
    }

    /// A snapshot of the shared chain.
    pub fn of_shared(chain: &SharedLightChain) -> Self {
        Self::of(&lock(chain))
    }
}
