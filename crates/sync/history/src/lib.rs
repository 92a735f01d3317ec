//! History Macro Sync (seed `history-macro-sync.md`, protocol-reference §6): history and full nodes
//! rebuild the chain from genesis by fetching, per epoch, its macro blocks with their history
//! ("batch sets") and the history itself in chunks, each proven against a signed macro block.
//!
//! # Overview
//! - [`verify`]: the checks every answer passes before any byte is applied — a batch set's blocks
//!   by their intrinsic rules, the macro-successor rule and the justification of the validators
//!   verified so far, their size proofs against their history roots; a history chunk by its range
//!   proof against a verified block's history root, at the size that root proves.
//! - [`machine::HistoryMachine`], in the one sync driver as [`driver::HistoryMacroSync`]: discovery
//!   (telling a peer on another chain from one behind), the active round shared by the peers that
//!   agree on a run of epochs (cut where they differ, grown while it downloads), bounded
//!   look-ahead, and one verify-then-apply job at a time; `petrel node --mode history|full` uses
//!   it. ADR 0013 says where it differs from the reference.
//!
//! # Security considerations
//! Nothing a peer sends is trusted: blocks are verified from the validators of our own election
//! head onwards, and history is accepted only with a proof against a root those blocks sign. A
//! peer that sends anything else is identified by the error, for its penalty.

pub mod driver;
pub mod machine;
pub mod verify;
