//! Petrel's cryptography: Blake2b hashing, Poseidon over the BLS12-377 scalar field, and Schnorr
//! validator signatures over the Edwards curve embedded in BLS12-377 (`ark-ed-on-bls12-377`).
//!
//! This crate instantiates the generic arkworks code once and exposes concrete, non-generic types
//! and functions, so that crates above it never monomorphise curve code themselves. It is compiled
//! with optimisations even in dev and test builds (see `docs/adr/0004-build-profiles.md`).
//!
//! * Module [`hash`]: Blake2b-256 ([`Blake2bHash`], [`Hasher`]).
//! * Module [`poseidon`]: [`FieldElement`] and [`poseidon_hash`], a fixed, documented Poseidon sponge
//!   that circuits reproduce.
//! * Module [`schnorr`]: [`SchnorrSecretKey`], [`SchnorrPublicKey`], [`SchnorrSignature`] with a
//!   Poseidon challenge, deterministic nonces and strict (non-malleable) verification; aggregated
//!   signatures under a sum of keys ([`aggregate_public_keys`], [`sign_aggregate`]) and proofs of
//!   possession against rogue keys.
//! * Module [`error`]: [`CryptoError`].

pub mod error;
pub mod hash;
pub mod poseidon;
pub mod schnorr;
mod serde_bytes;

pub use error::CryptoError;
pub use hash::{Blake2bHash, Hasher};
pub use poseidon::{FieldElement, poseidon_config, poseidon_hash};
pub use schnorr::{
    SchnorrPublicKey, SchnorrSecretKey, SchnorrSignature, aggregate_public_keys, clear_key_cache, sign_aggregate,
    verify_batch,
};
