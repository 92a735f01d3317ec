//! Zero-knowledge light sync: Groth16 proofs over BLS12-377 that a chain of election blocks
//! hands the validator set on from one commitment to the next, each block signed by 2f+1 slots of
//! the previous set (ADR 0015).
//!
//! * [`gadgets`]: R1CS gadgets beside their native twins (Poseidon, the validator-set commitment,
//!   the signing message, the aggregate key, Schnorr verification, the slot threshold).
//! * [`circuit`]: the segment statement ([`circuit::SegmentCircuit`]) and its public inputs.
//!
//! Like `petrel-crypto`, this crate instantiates arkworks' generic curve and constraint code and
//! is compiled with optimisations in dev and test builds (`[profile.dev.package.petrel-zkp]`).

pub mod chain;
pub mod circuit;
pub mod gadgets;
pub mod proof;
pub mod subgroup;
pub mod testing;
