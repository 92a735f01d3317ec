//! Light Macro Sync's verification speed: election blocks adopted per second by the light chain
//! (macro-successor rule + justification by the previous set), with 16 validators of which 11 sign,
//! one core. Cold: the process-wide cache of validated keys is emptied before each run, so every
//! validator key pays its subgroup check once; warm: every key is already cached. And with each
//! block decoded from its wire encoding first (warm).

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use petrel_blockchain::{ChainState, LightBlockchain};
use petrel_primitives::{Block, MacroBlock, Policy, codec};
use petrel_producer::{Producer, ProducerConfig};

const ELECTIONS: usize = 200;

fn elections() -> (petrel_primitives::GenesisConfig, Vec<MacroBlock>) {
    // One micro block and one election block per epoch, 512 slots over 16 validators.
    let policy = Policy { blocks_per_batch: 2, batches_per_epoch: 1, ..Policy::DEVNET };
    let producer = Producer::new(ProducerConfig {
        validators: 16,
        spare_validators: 4,
        accounts: 8,
        transactions_per_block: 0,
        ..Default::default()
    });
    let genesis = producer.genesis(1, 0, policy);
    let mut state = ChainState::genesis(&genesis).unwrap();
    let mut out = Vec::new();
    while out.len() < ELECTIONS {
        let b = producer.produce(&mut state).unwrap();
        state.apply_block(b.clone()).unwrap();
        if let Block::Macro(m) = b {
            out.push(MacroBlock { body: None, ..m });
        }
    }
    (genesis, out)
}

fn verify(c: &mut Criterion) {
    let (genesis, blocks) = elections();
    // 16 validators with 32 slots each: 2f+1 = 342 slots takes 11 of them.
    let signers = blocks[0].justification.as_ref().unwrap().signers.count() / 32;
    assert_eq!(signers, 11, "16 validators, 11 signers");
    let encoded: Vec<Vec<u8>> = blocks.iter().map(|b| codec::encode(b).unwrap()).collect();
    let mut g = c.benchmark_group("light_verify");
    g.sample_size(10);
    g.throughput(Throughput::Elements(ELECTIONS as u64));
    g.bench_function("election_blocks_16_validators_11_signers_cold", |b| {
        b.iter_batched(
            || {
                petrel_crypto::clear_key_cache();
                LightBlockchain::new(&genesis, None, None).unwrap()
            },
            |mut light| {
                for block in &blocks {
                    light.push_macro(block.clone()).unwrap();
                }
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("election_blocks_16_validators_11_signers_warm", |b| {
        b.iter_batched(
            || LightBlockchain::new(&genesis, None, None).unwrap(),
            |mut light| {
                for block in &blocks {
                    light.push_macro(block.clone()).unwrap();
                }
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("election_blocks_decode_and_verify", |b| {
        b.iter_batched(
            || LightBlockchain::new(&genesis, None, None).unwrap(),
            |mut light| {
                for bytes in &encoded {
                    let block: MacroBlock = codec::decode(bytes, 1 << 20).unwrap();
                    light.push_macro(block).unwrap();
                }
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, verify);
criterion_main!(benches);
