//! Scenario bench: Light Macro Sync from genesis with and without segment proofs, at 10, 100 and
//! 1000 epochs of the test policy (its circuit pads sets to 16 validators, the devnet's size), on
//! the mock network (three serving peers, 20 ms one-way latency, virtual time): bytes received,
//! requests, and the CPU time of verification (the proof chain's batch verification with proofs;
//! every election block's justification without).
//!
//! Proofs take minutes to make (`K` = 16 handoffs per proof, ~0.6 s per handoff on two cores), so
//! they are kept in `target/bench-chains/zkp-<chain>-<K>.bin` and made only once per chain; the
//! keys are cached in `target/bench-chains/zkp-keys`.
//!
//! `cargo bench -p petrel-it --bench zkp_light [-- --quick]` (quick: 10 and 100 epochs). Run by
//! `cargo xtask bench`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::StreamExt;
use petrel_consensus::{ConsensusEvent, EstablishedConfig, LiveConfig, Syncer, SyncerConfig, block_live_sync};
use petrel_network_api::{Counting, Services};
use petrel_network_mock::{HubConfig, MockHub};
use petrel_primitives::wire::ZkpSegment;
use petrel_primitives::{Block, MacroBlock, codec};
use petrel_sync_api::MacroSync;
use petrel_sync_light::{LightConfig, LightMacroSync, VerifierHandle, ZkpLightConfig};
use petrel_test_utils::{TestChain, serve};
use petrel_zkp::chain::{to_wire, witness_from_blocks};
use petrel_zkp::circuit::Shape;
use petrel_zkp::proof::{Verifier, load_or_setup, prove};

const K: usize = 16;

fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-chains")
}

fn election(server: &TestChain, epoch: u32) -> MacroBlock {
    let chain = server.chain.read().unwrap();
    match chain.block_at(server.genesis.policy.election_block_of(epoch), false).unwrap().unwrap() {
        Block::Macro(m) => m,
        Block::Micro(_) => unreachable!("election heights hold macro blocks"),
    }
}

/// The proof chain of `server` from genesis (cached on disk), and the verifier.
fn proofs(server: &TestChain, epochs: u32) -> (Vec<ZkpSegment>, Verifier) {
    let shape = Shape::new(&server.genesis.policy, K);
    let pk = load_or_setup(&cache_dir().join("zkp-keys"), &shape, 1, None).expect("keys");
    let verifier = Verifier::new(&pk.vk);
    let genesis_hash = server.genesis.genesis_hash().unwrap();
    let path = cache_dir().join(format!("zkp-{}-{epochs}-{K}.bin", &genesis_hash.to_hex()[..16]));
    if let Ok(bytes) = std::fs::read(&path)
        && let Ok(segments) = codec::decode::<Vec<ZkpSegment>>(&bytes, 1 << 20)
        && segments.last().is_some_and(|s| s.end_epoch == epochs)
    {
        return (segments, verifier);
    }
    let started = Instant::now();
    let mut segments = Vec::new();
    let mut start = 0u32;
    while start < epochs {
        let end = epochs.min(start + K as u32);
        let blocks: Vec<_> = (start + 1..=end).map(|e| election(server, e)).collect();
        let w = witness_from_blocks(&server.genesis.policy, start, &election(server, start), &blocks).unwrap();
        let segment = w.segment;
        segments.push(to_wire(&segment, &prove(&pk, &shape, w).unwrap()));
        start = end;
    }
    eprintln!("proved {epochs} epochs ({} proofs) in {:.0} s", segments.len(), started.elapsed().as_secs_f64());
    std::fs::create_dir_all(cache_dir()).unwrap();
    std::fs::write(&path, codec::encode(&segments).unwrap()).unwrap();
    (segments, verifier)
}

struct Sample {
    bytes: u64,
    requests: u64,
    virtual_secs: f64,
    proofs_verified: u64,
    proof_ms: f64,
}

async fn light_sync(server: &TestChain, zkp: Option<&Verifier>) -> Sample {
    let hub = MockHub::new(HubConfig { seed: 1, latency: Duration::from_millis(20), ..Default::default() });
    let raw = hub.node(Services::NONE);
    let node = Counting::new(raw.clone());
    let services = Services::HISTORY_NODE.union(Services::ZKP_PROOFS);
    let peers: Vec<_> = (0..3).map(|_| serve(&hub, server, services)).collect();
    for p in &peers {
        hub.connect(raw.peer_id(), p.peer_id()).unwrap();
    }
    let policy = server.genesis.policy;
    let chain = server.light_chain();
    let live = block_live_sync(node.clone(), chain.clone(), LiveConfig::for_batch(policy.blocks_per_batch));
    let mut config = SyncerConfig::for_batch(policy.blocks_per_batch);
    config.established = EstablishedConfig { min_peers: 3, ..Default::default() };
    let light_config = LightConfig {
        zkp: zkp.map(|v| ZkpLightConfig {
            verifier: VerifierHandle(std::sync::Arc::new(v.clone())),
            max_segments: 64,
            handoffs: K as u16,
        }),
        ..LightConfig::default()
    };
    let light = LightMacroSync::new(node.clone(), chain.clone(), light_config);
    let start = tokio::time::Instant::now();
    let mut syncer = Syncer::new(node.clone(), chain.clone(), light, live, config);
    loop {
        let event = tokio::time::timeout(Duration::from_secs(3600), syncer.next()).await.unwrap().unwrap();
        if matches!(event, ConsensusEvent::Established) {
            break;
        }
    }
    assert_eq!(chain.lock().unwrap().macro_head().hash(), server.chain.read().unwrap().head().macro_hash);
    let stats = syncer.macro_sync().proof_stats().unwrap_or_default();
    let t = node.traffic();
    Sample {
        bytes: t.bytes_received,
        requests: t.requests_sent,
        virtual_secs: start.elapsed().as_secs_f64(),
        proofs_verified: stats.segments_verified,
        proof_ms: stats.verify_micros as f64 / 1e3,
    }
}

/// CPU time of verifying every election block's justification on one core (what light sync
/// without proofs spends), in ms.
fn signature_ms(server: &TestChain, epochs: u32) -> f64 {
    let blocks: Vec<_> = (1..=epochs).map(|e| election(server, e)).collect();
    let light = server.light_chain();
    let mut light = light.lock().unwrap();
    let start = Instant::now();
    for b in &blocks {
        light.push_macro(b.clone()).unwrap();
    }
    start.elapsed().as_secs_f64() * 1e3
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let sizes: &[u32] = if quick { &[10, 100] } else { &[10, 100, 1000] };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap();
    println!("light sync from genesis, mock network (3 peers, 20 ms), test policy, K = {K}");
    println!(
        "{:>6} {:>8} {:>10} {:>9} {:>11} {:>8} {:>14}",
        "epochs", "proofs", "bytes", "requests", "virtual s", "proofs", "verify ms"
    );
    for &epochs in sizes {
        // Two blocks past the last election block: the checkpoint follows by signature.
        let server = TestChain::build(3, 8 * epochs as usize + 4);
        let (segments, verifier) = proofs(&server, epochs);
        for s in &segments {
            server.chain.read().unwrap().proofs().put(s).unwrap();
        }
        let without = rt.block_on(light_sync(&server, None));
        let sig_ms = signature_ms(&server, epochs);
        let with = rt.block_on(light_sync(&server, Some(&verifier)));
        for (label, s, ms) in [("no", &without, sig_ms), ("yes", &with, with.proof_ms)] {
            println!(
                "{:>6} {:>8} {:>10} {:>9} {:>11.2} {:>8} {:>14.1}",
                epochs, label, s.bytes, s.requests, s.virtual_secs, s.proofs_verified, ms
            );
        }
    }
}
