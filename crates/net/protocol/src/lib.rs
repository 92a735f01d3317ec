//! Every message Petrel's sync protocols send, with its wire id, response type, size limits and
//! per-peer rate limit (protocol-reference §2.4, with the limits of its 2025 version).
//!
//! Error enums travel as a single code byte, and an unknown code decodes as `Other`, so that a
//! newer peer's new error variants never make an older peer's decode fail.
//!
//! This crate depends only on `petrel-primitives` and the network API's traits.

mod errors;
mod gossip;
mod messages;

pub use errors::{BatchSetError, BlockRequestError, HistoryChunkError, MacroChainError, MissingBlocksError};
pub use gossip::{BlockHeaders, FullBlocks};
pub use messages::*;

/// Every request type id, for the uniqueness test and for dispatch tables.
pub const REQUEST_TYPE_IDS: [(u16, &str); 6] = [
    (RequestMacroChain::TYPE_ID_CONST, "RequestMacroChain"),
    (RequestBatchSet::TYPE_ID_CONST, "RequestBatchSet"),
    (RequestHistoryChunk::TYPE_ID_CONST, "RequestHistoryChunk"),
    (RequestBlock::TYPE_ID_CONST, "RequestBlock"),
    (RequestMissingBlocks::TYPE_ID_CONST, "RequestMissingBlocks"),
    (RequestHead::TYPE_ID_CONST, "RequestHead"),
];
