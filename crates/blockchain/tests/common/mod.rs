//! Shared helpers for the chain-store tests.
#![allow(dead_code, unreachable_pub)]

use petrel_blockchain::{Blockchain, ChainOptions};
use petrel_primitives::{Block, GenesisConfig, Policy};
use petrel_producer::{Producer, ProducerConfig};

pub const NETWORK: u8 = 7;

pub fn producer(tx: usize) -> Producer {
    Producer::new(ProducerConfig {
        seed: 42,
        validators: 4,
        spare_validators: 2,
        accounts: 16,
        transactions_per_block: tx,
        block_interval_ms: 1000,
    })
}

pub fn genesis(p: &Producer) -> GenesisConfig {
    p.genesis(NETWORK, 1_700_000_000_000, Policy::TEST)
}

pub fn open(dir: &tempfile::TempDir, g: &GenesisConfig) -> Blockchain {
    Blockchain::open(&dir.path().join("chain.redb"), g, ChainOptions { durable: false, ..Default::default() }).unwrap()
}

/// Produces and pushes `n` blocks, returning them.
pub fn extend(chain: &mut Blockchain, p: &Producer, n: usize) -> Vec<Block> {
    let mut out = Vec::new();
    let mut scratch = chain.state().clone();
    for _ in 0..n {
        let block = p.produce(&mut scratch).unwrap();
        chain.push(block.clone()).unwrap();
        scratch.apply_block(block.clone()).unwrap();
        out.push(block);
    }
    out
}

/// The next block the producer would make on `chain`.
pub fn next(chain: &Blockchain, p: &Producer) -> Block {
    let mut scratch = chain.state().clone();
    p.produce(&mut scratch).unwrap()
}

/// `(0, -1)`, the point of order 2: its encoding is `p - 1` little-endian (`x = 0`, sign bit
/// clear), `p` the BLS12-377 scalar field's modulus. On the curve, not the identity, outside the
/// prime-order subgroup.
pub fn order_two_key() -> petrel_primitives::SchnorrPublicKey {
    let p_minus_1 = [
        0x12ab_655e_9a2c_a556u64.to_be_bytes(),
        0x60b4_4d1e_5c37_b001u64.to_be_bytes(),
        0x59aa_76fe_d000_0001u64.to_be_bytes(),
        0x0a11_8000_0000_0000u64.to_be_bytes(),
    ];
    let mut le: [u8; 32] = p_minus_1.concat().try_into().unwrap();
    le.reverse();
    petrel_primitives::SchnorrPublicKey::from_bytes_deferred(&le).unwrap()
}
