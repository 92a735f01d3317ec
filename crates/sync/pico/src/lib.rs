//! Pico Macro Sync (seed `pico-macro-sync.md`, protocol-reference §4): a light node asks each peer
//! for its head, takes the peer's latest election block optimistically (only while its chain is at
//! the anchor) and the checkpoint after it (verified by the adopted validators), and marks each peer
//! Good, Outdated, Incompatible or Conflicting.
//!
//! # Overview
//! - [`machine::PicoMachine`] holds every decision and no I/O: inputs are peers and responses,
//!   outputs are `petrel_sync_api::driver::Action`s (send a request, emit a verdict, disconnect a
//!   peer).
//! - [`PicoMacroSync`] is the machine in the shared async driver (`petrel_sync_api::driver`),
//!   which turns actions into network requests and responses back into inputs, and implements
//!   `MacroSync`.
//!
//! # Security considerations
//! The first election block is trusted on first use: a peer that answers first can make the node
//! adopt validators it invented. That is caught when any honest peer's head does not reconcile with
//! it (its checkpoint fails the invented validators' justification, or its election hash differs):
//! the peer is then `Conflicting` and the node falls back to Light Macro Sync, which verifies the
//! election chain from the trusted anchor and bans whoever served invalid blocks. An eclipsed pico
//! node (all peers lying consistently) is not protected; that is the price of pico's speed.

mod driver;
mod either;
pub mod machine;

pub use driver::{PicoMacroSync, SharedLightChain};
pub use either::EitherSyncer;
pub use machine::{PicoConfig, PicoMachine, PicoStats};
