//! Scenario bench: time and bytes until a pico or light node is established, at 10, 100 and 1000
//! epochs of the test policy, on the mock network with 20 ms one-way latency (virtual time, so the
//! figures are deterministic), against three serving peers; and at 100 epochs over libp2p on
//! loopback (wall time). Prints a table and writes `target/scenario-sync.json`. Run by
//! `cargo xtask bench`.

use std::time::{Duration, Instant};

use futures::StreamExt;
use petrel_consensus::{BlockLiveSync, ConsensusEvent, EstablishedConfig, LiveConfig, Syncer, SyncerConfig};
use petrel_network_api::{Counting, Services};
use petrel_network_mock::{HubConfig, MockHub};
use petrel_sync_api::MacroSyncReturn;
use petrel_sync_light::{LightConfig, LightMacroSync};
use petrel_sync_pico::{EitherSyncer, PicoConfig, PicoMacroSync};
use petrel_test_utils::{TestChain, serve};

#[derive(Debug, serde::Serialize)]
struct Row {
    network: &'static str,
    mode: &'static str,
    epochs: usize,
    virtual_ms_to_good: u128,
    virtual_ms_to_established: u128,
    cpu_ms: u128,
    requests: u64,
    bytes_received: u64,
}

async fn run(mode: &'static str, server: &TestChain, epochs: usize) -> Row {
    let policy = server.genesis.policy;
    let hub = MockHub::new(HubConfig { seed: 1, latency: Duration::from_millis(20), ..Default::default() });
    let raw = hub.node(Services::NONE);
    let node = Counting::new(raw.clone());
    let peers: Vec<_> = (0..3).map(|_| serve(&hub, server, Services::HISTORY_NODE)).collect();
    let chain = server.light_chain();
    let live = BlockLiveSync::new(node.clone(), chain.clone(), LiveConfig::for_batch(policy.blocks_per_batch));
    let mut config = SyncerConfig::for_batch(policy.blocks_per_batch);
    config.established = EstablishedConfig { min_peers: 3, ..Default::default() };
    config.head_request_interval = Duration::from_millis(500);
    let start_virtual = tokio::time::Instant::now();
    let start_cpu = Instant::now();
    let (mut good, established);
    macro_rules! drive {
        ($syncer:expr) => {{
            let mut syncer = $syncer;
            for p in &peers {
                hub.connect(raw.peer_id(), p.peer_id()).unwrap();
            }
            good = None;
            loop {
                let ev = tokio::time::timeout(Duration::from_secs(3600), syncer.next()).await.unwrap().unwrap();
                match ev {
                    ConsensusEvent::Verdict(MacroSyncReturn::Good(_)) if good.is_none() => {
                        good = Some(start_virtual.elapsed())
                    }
                    ConsensusEvent::Established => break start_virtual.elapsed(),
                    _ => {}
                }
            }
        }};
    }
    if mode == "pico" {
        let pico = PicoMacroSync::new(node.clone(), chain.clone(), PicoConfig::default());
        let either = EitherSyncer::new(pico, chain.clone(), node.clone(), LightConfig::default());
        established = drive!(Syncer::new(node.clone(), chain.clone(), either, live, config));
    } else {
        let light = LightMacroSync::new(node.clone(), chain.clone(), LightConfig::default());
        established = drive!(Syncer::new(node.clone(), chain.clone(), light, live, config));
    }
    assert_eq!(chain.lock().unwrap().macro_head().hash(), server.chain.read().unwrap().head().macro_hash);
    let traffic = node.traffic();
    Row {
        network: "mock",
        mode,
        epochs,
        virtual_ms_to_good: good.unwrap_or_default().as_millis(),
        virtual_ms_to_established: established.as_millis(),
        cpu_ms: start_cpu.elapsed().as_millis(),
        requests: traffic.requests_sent,
        bytes_received: traffic.bytes_received,
    }
}

/// The same scenario over libp2p on loopback, in wall time.
async fn run_libp2p(mode: &'static str, server: &TestChain, epochs: usize) -> Row {
    use petrel_network_libp2p::{Libp2pConfig, Libp2pNetwork};
    let policy = server.genesis.policy;
    let genesis_hash = server.genesis.genesis_hash().unwrap();
    let mut addrs = Vec::new();
    let mut loops = Vec::new();
    for i in 0..3u8 {
        let mut c = Libp2pConfig::with_seed([i + 1; 32]);
        c.listen = vec!["/ip4/127.0.0.1/tcp/0".into()];
        c.genesis_hash = genesis_hash;
        c.services = Services::HISTORY_NODE;
        let (net, ev) = Libp2pNetwork::new(c).unwrap();
        loops.push(tokio::spawn(ev.run()));
        loops.push(tokio::spawn(petrel_consensus::handlers::serve_full_chain(
            net.clone(),
            server.chain.clone(),
            Default::default(),
        )));
        let a = net.listen_addrs().await[0].clone();
        addrs.push(format!("{a}/p2p/{}", net.local_libp2p_peer_id()));
        std::mem::forget(net);
    }
    let mut c = Libp2pConfig::with_seed([9; 32]);
    c.bootstrap = addrs;
    c.genesis_hash = genesis_hash;
    let (raw, ev) = Libp2pNetwork::new(c).unwrap();
    loops.push(tokio::spawn(ev.run()));
    let node = Counting::new(raw);
    let chain = server.light_chain();
    let live = BlockLiveSync::new(node.clone(), chain.clone(), LiveConfig::for_batch(policy.blocks_per_batch));
    let mut config = SyncerConfig::for_batch(policy.blocks_per_batch);
    config.established = EstablishedConfig { min_peers: 3, ..Default::default() };
    config.head_request_interval = Duration::from_millis(500);
    let start = Instant::now();
    let mut good = None;
    macro_rules! drive {
        ($syncer:expr) => {{
            let mut syncer = $syncer;
            loop {
                match tokio::time::timeout(Duration::from_secs(120), syncer.next()).await.unwrap().unwrap() {
                    ConsensusEvent::Verdict(MacroSyncReturn::Good(_)) if good.is_none() => good = Some(start.elapsed()),
                    ConsensusEvent::Established => break start.elapsed(),
                    _ => {}
                }
            }
        }};
    }
    let established = if mode == "pico" {
        let pico = PicoMacroSync::new(node.clone(), chain.clone(), PicoConfig::default());
        let either = EitherSyncer::new(pico, chain.clone(), node.clone(), LightConfig::default());
        drive!(Syncer::new(node.clone(), chain.clone(), either, live, config))
    } else {
        let light = LightMacroSync::new(node.clone(), chain.clone(), LightConfig::default());
        drive!(Syncer::new(node.clone(), chain.clone(), light, live, config))
    };
    assert_eq!(chain.lock().unwrap().macro_head().hash(), server.chain.read().unwrap().head().macro_hash);
    for l in loops {
        l.abort();
    }
    let traffic = node.traffic();
    Row {
        network: "libp2p",
        mode,
        epochs,
        virtual_ms_to_good: good.unwrap_or_default().as_millis(),
        virtual_ms_to_established: established.as_millis(),
        cpu_ms: start.elapsed().as_millis(),
        requests: traffic.requests_sent,
        bytes_received: traffic.bytes_received,
    }
}

fn main() {
    // `cargo bench` passes criterion-style flags; this bench takes none.
    let quick = std::env::args().any(|a| a == "--quick");
    let sizes: &[usize] = if quick { &[10, 100] } else { &[10, 100, 1000] };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap();
    let mut rows = Vec::new();
    for &epochs in sizes {
        let built = Instant::now();
        let server = TestChain::build(3, 8 * epochs + 4);
        eprintln!("built {epochs} epochs in {:.1} s", built.elapsed().as_secs_f64());
        for mode in ["pico", "light"] {
            let row = rt.block_on(async { run(mode, &server, epochs).await });
            rows.push(row);
        }
    }
    let server = TestChain::build(3, 8 * 100 + 4);
    let real = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    for mode in ["pico", "light"] {
        rows.push(real.block_on(run_libp2p(mode, &server, 100)));
    }
    println!("(mock: virtual time at 20 ms one-way latency; libp2p: wall time on loopback)");
    println!(
        "{:<7} {:<6} {:>7} {:>12} {:>18} {:>8} {:>9} {:>10}",
        "network", "mode", "epochs", "to Good ms", "to established ms", "cpu ms", "requests", "bytes in"
    );
    for r in &rows {
        println!(
            "{:<7} {:<6} {:>7} {:>12} {:>18} {:>8} {:>9} {:>10}",
            r.network,
            r.mode,
            r.epochs,
            r.virtual_ms_to_good,
            r.virtual_ms_to_established,
            r.cpu_ms,
            r.requests,
            r.bytes_received
        );
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/scenario-sync.json");
    std::fs::write(&path, serde_json::to_string_pretty(&rows).unwrap()).unwrap();
    eprintln!("wrote {}", path.display());
}
