//! Criterion benches of the full chain store: pushing a micro block of 100 transfers, and the
//! producer's block throughput.

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use petrel_blockchain::{Blockchain, ChainOptions};
use petrel_primitives::Policy;
use petrel_producer::{Producer, ProducerConfig};

fn setup(tx: usize, durable: bool) -> (tempfile::TempDir, Blockchain, Producer) {
    let producer = Producer::new(ProducerConfig { transactions_per_block: tx, accounts: 1024, ..Default::default() });
    let genesis = producer.genesis(1, 1_700_000_000_000, Policy::DEVNET);
    let dir = tempfile::tempdir().unwrap();
    let chain =
        Blockchain::open(&dir.path().join("chain.redb"), &genesis, ChainOptions { durable, ..Default::default() })
            .unwrap();
    (dir, chain, producer)
}

fn push(c: &mut Criterion) {
    let mut g = c.benchmark_group("push");
    g.sample_size(20).measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Elements(100));
    for durable in [false, true] {
        let name = if durable { "micro_block_100_transfers_fsync" } else { "micro_block_100_transfers" };
        g.bench_function(name, |b| {
            let (_dir, mut chain, producer) = setup(100, durable);
            let mut scratch = chain.state().clone();
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    let block = producer.produce(&mut scratch).unwrap();
                    let start = Instant::now();
                    chain.push(block.clone()).unwrap();
                    spent += start.elapsed();
                    scratch.apply_block(block).unwrap();
                }
                spent
            })
        });
    }
    g.finish();
}

fn produce(c: &mut Criterion) {
    let mut g = c.benchmark_group("producer");
    g.sample_size(20).measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Elements(50));
    g.bench_function("produce_micro_block_50_transfers", |b| {
        let (_dir, chain, producer) = setup(50, false);
        let mut scratch = chain.state().clone();
        b.iter(|| producer.produce(&mut scratch).unwrap())
    });
    g.finish();
}

criterion_group!(benches, push, produce);
criterion_main!(benches);
