//! Petrel's chain model: hashes, [`Policy`] arithmetic, blocks and their checks, transactions,
//! validator sets and macro justifications, the per-epoch history tree with range proofs, account
//! state, the genesis config and the canonical codec.
//!
//! No async and no I/O beyond reading a genesis file. Curve code lives in `petrel-crypto`.

pub mod block;
pub mod codec;
pub mod genesis;
pub mod history;
pub mod policy;
mod serde_bytes;
pub mod state;
pub mod transaction;
pub mod validators;
pub mod wire;

pub use block::{Block, BlockError, MacroBlock, MacroBody, MacroHeader, MicroBlock, MicroBody, MicroHeader, Reward};
pub use genesis::{GenesisConfig, GenesisError};
pub use history::{HistoryItem, HistoryKind, HistoryTree, RangeProof, SizeProof};
pub use petrel_crypto::{
    Blake2bHash, FieldElement, Hasher, SchnorrPublicKey, SchnorrSecretKey, SchnorrSignature, clear_key_cache,
};
pub use policy::{Policy, PolicyError};
pub use state::{Account, AccountTree};
pub use transaction::{AccountKey, Address, Ed25519Signature, Transaction, TransactionError};
pub use validators::{MacroJustification, Validator, Validators};

/// Identifies a network inside blocks and transactions.
pub type NetworkId = u8;
