//! History Macro Sync bench (issue 8's performance table), on a devnet-policy chain of
//! `--epochs N` (default 50) × 128 blocks × 50 transfers, 16 validators:
//!
//! - **local import**: the same verify-then-`push_history_sync` jobs the sync runs
//!   (`machine::execute`), fed from the serving store's own answers with no network; the apply
//!   rate in transfers/s, next to the rate of `push` (block by block, signatures re-checked).
//! - **libp2p**: a fresh store syncs from 1, 2 and 4 serving peers on loopback (wall time, to the
//!   verdict of every peer), as a ratio of the local import.
//! - **mock, 20 ms one-way latency**: three peers with the default queues against window 1 (one
//!   peer, one request in flight, no hedging), in wall time.
//! - the process's peak RSS (VmHWM) after each part; the serving chain lives in the same process.
//!
//! Prints a table and writes `target/scenario-history.json`. Run by `cargo xtask bench` or
//! `cargo bench -p petrel-it --bench history_sync -- --epochs 50`.

mod common;

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use futures::StreamExt;
use petrel_blockchain::{Blockchain, ChainOptions};
use petrel_network_api::{Network, Services};
use petrel_network_mock::{HubConfig, MockHub};
use petrel_primitives::{Block, Policy};
use petrel_producer::{Producer, ProducerConfig};
use petrel_sync_api::queue::QueueConfig;
use petrel_sync_api::{MacroSync, MacroSyncReturn};
use petrel_sync_history::driver::HistoryMacroSync;
use petrel_sync_history::machine::{HistoryConfig, HistoryOutcome, HistoryWork, SharedChain, execute};
use petrel_test_utils::{TestChain, serve};

fn build(epochs: u32) -> TestChain {
    let producer = Producer::new(ProducerConfig {
        seed: 5,
        validators: 16,
        transactions_per_block: 50,
        ..ProducerConfig::default()
    });
    let genesis = producer.genesis(1, 1_700_000_000_000, Policy::DEVNET);
    let blocks = genesis.policy.election_block_of(epochs) as usize;
    TestChain::build_with(producer, genesis, blocks, ChainOptions { durable: false, ..Default::default() })
}

fn fresh(server: &TestChain, dir: &tempfile::TempDir) -> SharedChain {
    // Durable like a node's store: each applied unit is one fsynced transaction.
    let chain = Blockchain::open(&dir.path().join("chain.redb"), &server.genesis, ChainOptions::default()).unwrap();
    Arc::new(RwLock::new(chain))
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

/// The sync's jobs, answered by the serving store: (time in `execute` only, wall time with the
/// reads, history items applied).
fn local_import(server: &TestChain, epochs: u32) -> (Duration, Duration, u64) {
    let dir = tempfile::tempdir().unwrap();
    let chain = fresh(server, &dir);
    let served = server.chain.read().unwrap();
    let policy = *served.policy();
    let size = u64::from(policy.history_chunk_size);
    let (mut in_execute, started, mut items) = (Duration::ZERO, Instant::now(), 0u64);
    for epoch in 1..=epochs {
        let Some(Block::Macro(election)) = served.block_at(policy.election_block_of(epoch), false).unwrap() else {
            panic!("no election block for epoch {epoch}");
        };
        let asked = election.hash();
        let info = served.batch_set(&asked).unwrap();
        let (last, proof) = info.batch_sets.last().unwrap();
        let number = last.block_number();
        let chunks: Vec<_> =
            (0..proof.leaves.div_ceil(size)).map(|i| served.history_chunk(epoch, number, i).unwrap()).collect();
        items += chunks.iter().map(|c| c.items.len() as u64).sum::<u64>();
        let work = HistoryWork { asked, info, chunks, first_chunk: 0, known: 0 };
        let t = Instant::now();
        let outcome = execute(&chain, work);
        in_execute += t.elapsed();
        assert!(matches!(outcome, HistoryOutcome::Applied { .. }), "epoch {epoch}: {outcome:?}");
    }
    assert_eq!(chain.read().unwrap().head().macro_hash, served.head().macro_hash);
    (in_execute, started.elapsed(), items)
}

/// Drives a history sync until every peer has given its verdict (all Good).
async fn until_all_good<N: Network>(sync: &mut HistoryMacroSync<N>, peers: usize) {
    let mut good = 0;
    while good < peers {
        match tokio::time::timeout(Duration::from_secs(3600), sync.next()).await.unwrap().unwrap() {
            MacroSyncReturn::Good(_) => good += 1,
            other => panic!("unexpected verdict {other:?}"),
        }
    }
}

/// A fresh store syncs over the mock network (20 ms one way, wall time: the jobs are real work, so
/// a paused clock would run the request timeouts out while they compute): from three peers with
/// the default queues, or (`window_one`) from one peer with one request in flight and no hedging.
async fn run_mock(server: &TestChain, window_one: bool) -> Duration {
    let hub = MockHub::new(HubConfig { seed: 1, latency: Duration::from_millis(20), ..Default::default() });
    let node = hub.node(Services::NONE);
    let dir = tempfile::tempdir().unwrap();
    let chain = fresh(server, &dir);
    let mut config = HistoryConfig::default();
    let peers = if window_one {
        let one = |q: QueueConfig| QueueConfig { window: 1, per_peer: 1, initial_per_peer: 1, hedge_after: None, ..q };
        config.batch_sets = one(config.batch_sets);
        config.chunks = one(config.chunks);
        1
    } else {
        3
    };
    let mut sync = HistoryMacroSync::new(node.clone(), chain.clone().into(), config);
    let servers: Vec<_> = (0..peers).map(|_| serve(&hub, server, Services::HISTORY_NODE)).collect();
    for s in &servers {
        hub.connect(node.peer_id(), s.peer_id()).unwrap();
        sync.add_peer(s.peer_id());
    }
    let start = Instant::now();
    until_all_good(&mut sync, peers).await;
    assert_eq!(chain.read().unwrap().head().macro_hash, server.chain.read().unwrap().head().macro_hash);
    start.elapsed()
}

/// A fresh store syncs from `peers` serving nodes over libp2p on loopback: (wall time, bytes).
async fn run_libp2p(server: &TestChain, peers: usize) -> (Duration, u64) {
    let net = common::Loopback::start(server, peers).await;
    let node = net.node.clone();
    let dir = tempfile::tempdir().unwrap();
    let chain = fresh(server, &dir);
    let start = Instant::now();
    while node.peers().len() < peers {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut sync = HistoryMacroSync::new(node.clone(), chain.clone().into(), HistoryConfig::default());
    for (peer, _) in node.peers() {
        sync.add_peer(peer);
    }
    until_all_good(&mut sync, peers).await;
    let elapsed = start.elapsed();
    assert_eq!(chain.read().unwrap().head().macro_hash, server.chain.read().unwrap().head().macro_hash);
    (elapsed, node.traffic().bytes_received)
}

#[derive(serde::Serialize)]
struct Report {
    epochs: u32,
    history_items: u64,
    build_secs: f64,
    produce_and_push_items_per_sec: f64,
    import_secs: f64,
    import_with_reads_secs: f64,
    apply_items_per_sec: f64,
    libp2p: Vec<(usize, f64, u64, f64)>,
    mock_three_peers_secs: f64,
    mock_window_one_secs: f64,
    peak_rss_mb: Vec<(String, f64)>,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let epochs = args
        .iter()
        .position(|a| a == "--epochs")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 10 } else { 50 });
    let mut rss = Vec::new();
    let built = Instant::now();
    let server = build(epochs);
    let build_secs = built.elapsed().as_secs_f64();
    rss.push(("built".to_string(), peak_rss_mb()));
    eprintln!("built {epochs} epochs in {build_secs:.1} s (produce + push)");
    let (import, with_reads, items) = local_import(&server, epochs);
    eprintln!("local import: {:.2} s", with_reads.as_secs_f64());
    rss.push(("local import".to_string(), peak_rss_mb()));
    let real = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut libp2p = Vec::new();
    for peers in [1, 2, 4] {
        let (t, bytes) = real.block_on(run_libp2p(&server, peers));
        eprintln!("libp2p {peers}: {:.2} s", t.as_secs_f64());
        libp2p.push((peers, t.as_secs_f64(), bytes, t.as_secs_f64() / with_reads.as_secs_f64()));
        rss.push((format!("libp2p {peers} peers"), peak_rss_mb()));
    }
    let mock_default = real.block_on(run_mock(&server, false));
    let mock_one = real.block_on(run_mock(&server, true));
    rss.push(("mock".to_string(), peak_rss_mb()));
    let report = Report {
        epochs,
        history_items: items,
        build_secs,
        produce_and_push_items_per_sec: items as f64 / build_secs,
        import_secs: import.as_secs_f64(),
        import_with_reads_secs: with_reads.as_secs_f64(),
        apply_items_per_sec: items as f64 / import.as_secs_f64(),
        libp2p,
        mock_three_peers_secs: mock_default.as_secs_f64(),
        mock_window_one_secs: mock_one.as_secs_f64(),
        peak_rss_mb: rss,
    };
    println!("history sync, {epochs} epochs × 128 blocks × 50 transfers ({} history items)", report.history_items);
    println!(
        "local import: {:.2} s in verify+apply ({:.0} items/s), {:.2} s with the store reads; build (produce+push): {:.1} s ({:.0} items/s)",
        report.import_secs,
        report.apply_items_per_sec,
        report.import_with_reads_secs,
        report.build_secs,
        report.produce_and_push_items_per_sec
    );
    for (peers, secs, bytes, ratio) in &report.libp2p {
        println!("libp2p {peers} peer(s): {secs:.2} s, {:.1} MB, {ratio:.2}x the local import", *bytes as f64 / 1e6);
    }
    println!(
        "mock 20 ms: three peers {:.2} s, window 1 {:.2} s ({:.1}x slower)",
        report.mock_three_peers_secs,
        report.mock_window_one_secs,
        report.mock_window_one_secs / report.mock_three_peers_secs
    );
    for (at, mb) in &report.peak_rss_mb {
        println!("peak RSS after {at}: {mb:.0} MB");
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/scenario-history.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
}
