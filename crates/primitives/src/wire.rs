//! The answers a node serves to its peers that are also the results of its chain store's queries,
//! defined once: the store (`petrel-blockchain`) returns them and the protocol (`petrel-protocol`)
//! sends them as they are, so no handler copies one into the other. The limits on the matching
//! requests live here too.

use serde::{Deserialize, Serialize};

use crate::history::{HistoryItem, RangeProof, SizeProof};
use crate::{Blake2bHash, MacroBlock};

/// Most locators a request may carry (longer lists are refused by size, and the server considers
/// only this many).
pub const MAX_LOCATORS: usize = 100;
/// Most election hashes one macro-chain answer carries.
pub const MAX_EPOCHS: u16 = 1000;

/// A node's head: the answer to `RequestHead` (as `ResponseHead`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadInfo {
    /// Head number.
    pub block_number: u32,
    /// Head hash.
    pub block_hash: Blake2bHash,
    /// Macro head hash.
    pub macro_hash: Blake2bHash,
    /// Election head hash.
    pub election_hash: Blake2bHash,
}

/// Election blocks after the first known locator, and the latest checkpoint when caught up: the
/// answer to `RequestMacroChain`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MacroChain {
    /// Election block hashes after the locator, oldest first.
    pub epochs: Vec<Blake2bHash>,
    /// The latest checkpoint (number, hash), when the requester is caught up to its epoch.
    pub checkpoint: Option<(u32, Blake2bHash)>,
}

/// The batch sets of a macro block's epoch up to it: the answer to `RequestBatchSet`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchSetInfo {
    /// The requested block if it is an election block.
    pub election_macro_block: Option<MacroBlock>,
    /// Batch-set boundaries of the epoch up to the requested block, each with the epoch's history
    /// size at it; the last one is the requested block.
    pub batch_sets: Vec<(MacroBlock, SizeProof)>,
}

/// A chunk of an epoch's history with its proof: the answer to `RequestHistoryChunk`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryChunk {
    /// Consecutive items from `chunk_index · chunk_size`.
    pub items: Vec<HistoryItem>,
    /// Proof against the verifier block's history root.
    pub proof: RangeProof,
}

/// Most segment proofs one `RequestZkp` answer carries.
pub const MAX_ZKP_SEGMENTS: u16 = 64;
/// Bytes of a Groth16 segment proof (compressed `A`, `B`, `C` on BLS12-377).
pub const ZKP_PROOF_BYTES: usize = 192;

/// A proof that election blocks `start_epoch + 1 ..= end_epoch` hand the validator set on from
/// `start_commitment` to `end_commitment`, each signed by 2f+1 slots of the set before it, the
/// last one with hash `end_hash` (protocol.md §12; verified by `petrel-zkp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZkpSegment {
    /// Epoch of the election block the segment starts from.
    pub start_epoch: u32,
    /// Commitment of the set that block names.
    pub start_commitment: crate::FieldElement,
    /// Epoch of the last election block.
    pub end_epoch: u32,
    /// Commitment of the set the last block names.
    pub end_commitment: crate::FieldElement,
    /// Hash of the last block.
    pub end_hash: Blake2bHash,
    /// The Groth16 proof.
    #[serde(with = "crate::serde_bytes")]
    pub proof: [u8; ZKP_PROOF_BYTES],
}

/// The chain of segment proofs from an epoch: the answer to `RequestZkp`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ZkpChain {
    /// Consecutive segments (each starts where the one before ends), oldest first.
    pub segments: Vec<ZkpSegment>,
}
