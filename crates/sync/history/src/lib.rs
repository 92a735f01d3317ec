//! History Macro Sync (seed `history-macro-sync.md`, protocol-reference §6): history and full nodes
//! rebuild the chain from genesis by fetching, per epoch, its macro blocks with their history
//! ("batch sets") and the history itself in chunks, each proven against a signed macro block.
//!
//! # Overview
//! This crate is being built (issue "History Macro Sync"). What exists:
//! - [`verify`]: the checks every answer passes before any byte is applied — a batch set's blocks
//!   by their intrinsic rules, the macro-successor rule and the justification of the validators
//!   verified so far, their size proofs against their history roots; a history chunk by its range
//!   proof against a verified block's history root, at the size that root proves.
//! - [`machine::HistoryMachine`], in the one sync driver as [`driver::HistoryMacroSync`]: a first
//!   version that syncs a fresh store from peers (one round at a time); `petrel node --mode
//!   history|full` uses it.
//!
//! Not yet: clusters across forks, pipelining across rounds, resume planning, full nodes' pruning
//! and the devnet's nodes that start empty.
//!
//! # Security considerations
//! Nothing a peer sends is trusted: blocks are verified from the validators of our own election
//! head onwards, and history is accepted only with a proof against a root those blocks sign. A
//! peer that sends anything else is identified by the error, for its penalty.

pub mod driver;
pub mod machine;
pub mod verify;
