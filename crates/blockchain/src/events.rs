//! Chain events, broadcast on a bounded channel.

use petrel_primitives::Blake2bHash;

/// Events buffered per receiver before the oldest are dropped (`Lagged`).
pub const EVENT_CAPACITY: usize = 1024;

/// What changed in a chain store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainEvent {
    /// A new head.
    Extended {
        /// Number.
        number: u32,
        /// Hash.
        hash: Blake2bHash,
    },
    /// A checkpoint macro block was accepted.
    Finalized {
        /// Number.
        number: u32,
        /// Hash.
        hash: Blake2bHash,
    },
    /// An election block was accepted.
    EpochFinalized {
        /// Number.
        number: u32,
        /// Hash.
        hash: Blake2bHash,
    },
    /// A macro block was adopted with its history (history sync).
    HistoryAdopted {
        /// Number.
        number: u32,
        /// Hash.
        hash: Blake2bHash,
    },
}
