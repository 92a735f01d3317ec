//! Light Macro Sync (protocol-reference §5): verifies the chain of election blocks from the light
//! chain's trusted anchor (genesis, or a configured checkpoint election block), each by the previous
//! validator set's justification, then the latest checkpoint.
//!
//! # Overview
//! Per peer: `RequestMacroChain` with our locators → the election hashes after our election head
//! and possibly a checkpoint → the blocks are fetched through a bounded ordered window
//! (`RequestBlock`, no body) and applied strictly in order with full verification → ask again until
//! the peer has nothing new (Good). [`machine::LightMachine`] holds the decisions without I/O;
//! [`LightMacroSync`] drives it over a network.
//!
//! The discovery step is the seam for zero-knowledge proofs: a proof that the election chain
//! reaches block `E` moves the anchor to `E` (`LightBlockchain` adopts it), after which this same
//! machine only verifies the few election blocks after `E`.
//!
//! # Security considerations
//! Safety rests on the anchor: every adopted block is justified by 2f+1 slots of the validator set
//! named by the block before it. A peer serving a block that does not verify, a block other than
//! the one asked for, or an absurd macro-chain answer is disconnected as malicious (banned).
//! Long-range attacks by validators of old epochs are out of scope, as for any PoS light client;
//! configure a recent checkpoint anchor to bound them.

mod driver;
pub mod machine;

pub use driver::LightMacroSync;
pub use machine::{LightConfig, LightMachine, LightStats, VerifierHandle, ZkpLightConfig};
