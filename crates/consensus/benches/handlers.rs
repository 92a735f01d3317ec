//! Handler throughput: `RequestBlock` and `RequestHistoryChunk` answered from a 50-epoch chain of
//! the devnet policy (the query path a serving node runs per request, without the network).

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use petrel_blockchain::{Blockchain, ChainOptions};
use petrel_consensus::handlers::Answer;
use petrel_primitives::{Block, Policy};
use petrel_producer::{Producer, ProducerConfig};
use petrel_protocol::{RequestBlock, RequestHistoryChunk};

fn chain() -> (tempfile::TempDir, Blockchain, Vec<Block>) {
    let producer = Producer::new(ProducerConfig { transactions_per_block: 50, ..Default::default() });
    let genesis = producer.genesis(1, 1_700_000_000_000, Policy::DEVNET);
    let dir = tempfile::tempdir().unwrap();
    let mut chain =
        Blockchain::open(&dir.path().join("c.redb"), &genesis, ChainOptions { durable: false, ..Default::default() })
            .unwrap();
    let target = Policy::DEVNET.election_block_of(50) as usize;
    let mut blocks = Vec::with_capacity(target);
    for _ in 0..target {
        let mut scratch = chain.state().clone();
        let b = producer.produce(&mut scratch).unwrap();
        chain.push(b.clone()).unwrap();
        blocks.push(b);
    }
    (dir, chain, blocks)
}

fn handlers(c: &mut Criterion) {
    let (_dir, chain, blocks) = chain();
    let mut g = c.benchmark_group("handlers_50_epochs");
    g.measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    g.bench_function("request_block_with_body", |b| {
        b.iter(|| {
            i = (i * 7919 + 13) % blocks.len();
            RequestBlock { hash: blocks[i].hash(), include_body: true }.answer(&chain).unwrap()
        })
    });
    let policy = Policy::DEVNET;
    let mut e = 0u32;
    g.bench_function("request_history_chunk_1024", |b| {
        b.iter(|| {
            e = e % 50 + 1;
            // Chunk 1 of the epoch against its election block (items 1024..2048).
            RequestHistoryChunk { epoch_number: e, block_number: policy.election_block_of(e), chunk_index: 1 }
                .answer(&chain)
                .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, handlers);
criterion_main!(benches);
