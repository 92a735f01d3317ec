//! Request and response messages.

use petrel_network_api::{Request, Services};
pub use petrel_primitives::wire::{
    BatchSetInfo, HistoryChunk, MAX_EPOCHS, MAX_LOCATORS, MAX_ZKP_SEGMENTS, MacroChain, ZKP_PROOF_BYTES, ZkpChain,
    ZkpSegment,
};
use petrel_primitives::{Blake2bHash, Block};
use serde::{Deserialize, Serialize};

use crate::errors::*;

/// Largest block on the wire.
pub const MAX_BLOCK_SIZE: usize = 2 * 1024 * 1024;
/// Largest batch-set or history-chunk answer.
pub const MAX_LARGE_RESPONSE: usize = 10 * 1024 * 1024;

macro_rules! request {
    ($req:ty, $id:literal, $resp:ty, $max_req:expr, $max_resp:expr, $rate:literal, $services:expr) => {
        impl Request for $req {
            const TYPE_ID: u16 = $id;
            const MAX_REQUEST_SIZE: usize = $max_req;
            const MAX_RESPONSE_SIZE: usize = $max_resp;
            const MAX_REQUESTS: u32 = $rate;
            const SERVICES: Services = $services;
            type Response = $resp;
        }
    };
}

/// Election blocks after the first known locator, and the latest checkpoint when caught up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestMacroChain {
    /// Newest first: our macro head (if not an election block), then our election head.
    pub locators: Vec<Blake2bHash>,
    /// Most election hashes wanted (the server clamps to [`MAX_EPOCHS`]).
    pub max_epochs: u16,
}

request!(
    RequestMacroChain,
    200,
    Result<MacroChain, MacroChainError>,
    16 + 33 * MAX_LOCATORS,
    64 + 33 * MAX_EPOCHS as usize,
    20,
    Services::MACRO_CHAIN
);

/// The batch sets of a macro block's epoch up to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestBatchSet {
    /// Hash of the macro block.
    pub hash: Blake2bHash,
}

request!(RequestBatchSet, 202, Result<BatchSetInfo, BatchSetError>, 64, MAX_LARGE_RESPONSE, 100, Services::HISTORY);

/// A chunk of an epoch's history, proven against a verifier block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestHistoryChunk {
    /// Epoch.
    pub epoch_number: u32,
    /// The verifier macro block whose history root proves the chunk.
    pub block_number: u32,
    /// Chunk index (chunk size from the policy).
    pub chunk_index: u64,
}

request!(RequestHistoryChunk, 204, Result<HistoryChunk, HistoryChunkError>, 64, MAX_LARGE_RESPONSE, 500, Services::HISTORY);

/// One block by hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestBlock {
    /// Block hash.
    pub hash: Blake2bHash,
    /// Whether to include the body.
    pub include_body: bool,
}

// 2000 per 10 s (the reference allows 200 since 2025): light sync without a proof fetches every
// election block, and one peer serving a window of 16 at loopback speed reaches ~1000 in 10 s.
request!(RequestBlock, 207, Result<Block, BlockRequestError>, 64, MAX_BLOCK_SIZE, 2000, Services::MACRO_CHAIN);

/// Main-chain blocks after the first known locator, up to the target, at most one batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestMissingBlocks {
    /// The block we want to reach.
    pub target_hash: Blake2bHash,
    /// Whether to include bodies.
    pub include_body: bool,
    /// Newest first.
    pub locators: Vec<Blake2bHash>,
}

/// Answer to [`RequestMissingBlocks`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseBlocks {
    /// Blocks, oldest first.
    pub blocks: Vec<Block>,
}

request!(
    RequestMissingBlocks,
    209,
    Result<ResponseBlocks, MissingBlocksError>,
    64 + 33 * MAX_LOCATORS,
    8 * MAX_BLOCK_SIZE,
    200,
    Services::FULL_BLOCKS
);

/// The peer's head.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RequestHead;

/// Answer to [`RequestHead`]: the store's head summary, sent as it is.
pub type ResponseHead = petrel_primitives::wire::HeadInfo;

request!(RequestHead, 210, ResponseHead, 16, 256, 50, Services::NONE);

/// The chain of segment proofs that covers an epoch (zero-knowledge light sync, protocol.md §12).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestZkp {
    /// The epoch of the requester's election head: the answer starts with the stored segment that
    /// covers it (greatest start at or below it, ending above it).
    pub from_epoch: u32,
    /// Most segments wanted (the server clamps to [`MAX_ZKP_SEGMENTS`]).
    pub max_segments: u16,
}

// A segment is 304 bytes encoded; 64 of them fit in 20 KiB.
request!(RequestZkp, 212, ZkpChain, 16, 32 * 1024, 20, Services::ZKP_PROOFS);
