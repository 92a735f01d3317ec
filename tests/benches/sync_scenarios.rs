//! Scenario bench: time and bytes until a pico or light node reaches Good and is established.
//!
//! - On the mock network, 20 ms one-way latency, three serving peers, at 10, 100 and 1000 epochs
//!   of the test policy: **virtual** time (deterministic; the samples agree).
//! - Over libp2p on loopback: **wall** time, several samples each (min / median / max), with three
//!   serving peers at 100 epochs, and with one serving peer at 200 epochs (the case of the "Sync
//!   core" issue: established within a round trip of Good, light sync near the verification rate).
//! - The single-core rate at which the light chain verifies the same 200 election blocks, with
//!   the validator-key cache cold and warm, for comparison with light sync's end-to-end rate.
//! - `RequestHead` latency to a light node over libp2p, idle and while it verifies 1000 election
//!   blocks (verification runs off the executor; the goal is a median within 2x of idle).
//!
//! Prints a table and writes `target/scenario-sync.json`. Run by `cargo xtask bench`.

mod common;

use std::time::{Duration, Instant};

use futures::StreamExt;
use petrel_consensus::{ConsensusEvent, EstablishedConfig, LiveConfig, Syncer, SyncerConfig, block_live_sync};
use petrel_network_api::{Counting, Network, Services};
use petrel_network_mock::{HubConfig, MockHub};
use petrel_primitives::Block;
use petrel_sync_api::MacroSyncReturn;
use petrel_sync_light::{LightConfig, LightMacroSync};
use petrel_sync_pico::{EitherSyncer, PicoConfig, PicoMacroSync};
use petrel_test_utils::{TestChain, serve};

/// Min, median and max of samples, in milliseconds.
#[derive(Debug, serde::Serialize)]
struct Spread {
    min: f64,
    median: f64,
    max: f64,
}

impl Spread {
    fn of(mut v: Vec<Duration>) -> Self {
        v.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        Self { min: ms(v[0]), median: ms(v[v.len() / 2]), max: ms(v[v.len() - 1]) }
    }
}

#[derive(Debug, serde::Serialize)]
struct Row {
    network: &'static str,
    mode: &'static str,
    epochs: usize,
    serving_peers: usize,
    /// "virtual" (the mock's paused clock) or "wall".
    clock: &'static str,
    samples: usize,
    to_good_ms: Spread,
    to_established_ms: Spread,
    /// Median of (established − Good): what waits on consensus after macro sync is done.
    established_after_good_ms: f64,
    /// Of one sample.
    requests: u64,
    bytes_received: u64,
}

/// One run: time to the first Good, to established, and the traffic.
struct Sample {
    good: Duration,
    established: Duration,
    requests: u64,
    bytes: u64,
}

/// Runs a syncer until established, timing with `clock`.
async fn drive<S>(mut syncer: S, now: impl Fn() -> Duration) -> (Duration, Duration)
where
    S: futures::Stream<Item = ConsensusEvent> + Unpin,
{
    let mut good = None;
    loop {
        match tokio::time::timeout(Duration::from_secs(3600), syncer.next()).await.unwrap().unwrap() {
            ConsensusEvent::Verdict(MacroSyncReturn::Good(_)) if good.is_none() => good = Some(now()),
            ConsensusEvent::Established => return (good.unwrap_or_default(), now()),
            _ => {}
        }
    }
}

/// Builds a pico (with fallback) or light node's syncer over `node` and runs it until established.
async fn sync_node<N: Network>(
    mode: &str,
    node: N,
    server: &TestChain,
    min_peers: usize,
    now: impl Fn() -> Duration,
) -> (Duration, Duration) {
    let policy = server.genesis.policy;
    let chain = server.light_chain();
    let live = block_live_sync(node.clone(), chain.clone(), LiveConfig::for_batch(policy.blocks_per_batch));
    let mut config = SyncerConfig::for_batch(policy.blocks_per_batch);
    config.established = EstablishedConfig { min_peers, ..Default::default() };
    config.head_request_interval = Duration::from_millis(500);
    let times = if mode == "pico" {
        let pico = PicoMacroSync::new(node.clone(), chain.clone(), PicoConfig::default());
        let either = EitherSyncer::new(pico, chain.clone(), node.clone(), LightConfig::default());
        drive(Syncer::new(node.clone(), chain.clone(), either, live, config), now).await
    } else {
        let light = LightMacroSync::new(node.clone(), chain.clone(), LightConfig::default());
        drive(Syncer::new(node.clone(), chain.clone(), light, live, config), now).await
    };
    assert_eq!(chain.lock().unwrap().macro_head().hash(), server.chain.read().unwrap().head().macro_hash);
    times
}

async fn run_mock(mode: &'static str, server: &TestChain) -> Sample {
    let hub = MockHub::new(HubConfig { seed: 1, latency: Duration::from_millis(20), ..Default::default() });
    let raw = hub.node(Services::NONE);
    let node = Counting::new(raw.clone());
    let peers: Vec<_> = (0..3).map(|_| serve(&hub, server, Services::HISTORY_NODE)).collect();
    for p in &peers {
        hub.connect(raw.peer_id(), p.peer_id()).unwrap();
    }
    let start = tokio::time::Instant::now();
    let (good, established) = sync_node(mode, node.clone(), server, 3, || start.elapsed()).await;
    let t = node.traffic();
    Sample { good, established, requests: t.requests_sent, bytes: t.bytes_received }
}

/// The same scenario over libp2p on loopback, in wall time, with `peers` serving nodes.
async fn run_libp2p(mode: &'static str, server: &TestChain, peers: usize) -> Sample {
    let net = common::Loopback::start(server, peers).await;
    let start = Instant::now();
    let (good, established) = sync_node(mode, net.node.clone(), server, peers, || start.elapsed()).await;
    let t = net.node.traffic();
    Sample { good, established, requests: t.requests_sent, bytes: t.bytes_received }
}

fn row(network: &'static str, mode: &'static str, epochs: usize, peers: usize, samples: Vec<Sample>) -> Row {
    let clock = if network == "mock" { "virtual" } else { "wall" };
    let mut gaps: Vec<Duration> = samples.iter().map(|s| s.established.saturating_sub(s.good)).collect();
    gaps.sort();
    let last = samples.last().expect("one sample at least");
    Row {
        network,
        mode,
        epochs,
        serving_peers: peers,
        clock,
        samples: samples.len(),
        established_after_good_ms: gaps[gaps.len() / 2].as_secs_f64() * 1000.0,
        requests: last.requests,
        bytes_received: last.bytes,
        to_good_ms: Spread::of(samples.iter().map(|s| s.good).collect()),
        to_established_ms: Spread::of(samples.iter().map(|s| s.established).collect()),
    }
}

/// `RequestHead` latency from a probe to a light node over libp2p on loopback: while idle, and
/// while the node light-syncs (verifies) `server`'s election chain. Returns (idle, during) samples.
async fn latency_under_verification(server: &TestChain) -> (Vec<Duration>, Vec<Duration>) {
    use petrel_network_api::NetworkExt;
    use petrel_network_libp2p::{Libp2pConfig, Libp2pNetwork};
    use petrel_protocol::RequestHead;
    use petrel_sync_api::MacroSync;
    let genesis_hash = server.genesis.genesis_hash().unwrap();
    let node = |seed: u8, services: Services, bootstrap: Vec<String>| {
        let mut c = Libp2pConfig::with_seed([seed; 32]);
        c.listen = vec!["/ip4/127.0.0.1/tcp/0".into()];
        c.genesis_hash = genesis_hash;
        c.services = services;
        c.bootstrap = bootstrap;
        Libp2pNetwork::new(c).unwrap()
    };
    let mut tasks = Vec::new();
    let (s, ev) = node(41, Services::HISTORY_NODE, vec![]);
    tasks.push(tokio::spawn(ev.run()));
    tasks.push(tokio::spawn(petrel_consensus::handlers::serve_full_chain(
        s.clone(),
        server.chain.clone(),
        Default::default(),
    )));
    let s_addr = format!("{}/p2p/{}", s.listen_addrs().await[0], s.local_libp2p_peer_id());
    let (l, ev) = node(42, Services::NONE, vec![s_addr]);
    tasks.push(tokio::spawn(ev.run()));
    let chain = server.light_chain();
    tasks.push(tokio::spawn(petrel_consensus::handlers::serve_light_chain(l.clone(), chain.clone())));
    let l_addr = format!("{}/p2p/{}", l.listen_addrs().await[0], l.local_libp2p_peer_id());
    // `RequestHead` is rate-limited to 50 per 10 s per peer: several probes, at most
    // `PER_PROBE` requests each, paced by `PACE`.
    const PROBES: u8 = 10;
    const PER_PROBE: usize = 45;
    const PACE: Duration = Duration::from_millis(2);
    let mut probes = Vec::new();
    for i in 0..PROBES {
        let (probe, ev) = node(50 + i, Services::NONE, vec![l_addr.clone()]);
        tasks.push(tokio::spawn(ev.run()));
        probes.push(probe);
    }
    while l.peers().len() < 1 + PROBES as usize || probes.iter().any(|p| p.peers().is_empty()) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let s_id = l.peers().into_iter().find(|(_, i)| i.services.contains(Services::HISTORY)).unwrap().0;
    let l_id = probes[0].peers()[0].0;
    let ask = |probe: Libp2pNetwork| async move {
        let t = Instant::now();
        probe.request(l_id, &RequestHead).await.unwrap();
        let took = t.elapsed();
        tokio::time::sleep(PACE).await;
        took
    };
    let (idle_probes, busy_probes) = probes.split_at(2);
    let mut idle = Vec::new();
    for probe in idle_probes {
        for _ in 0..PER_PROBE {
            idle.push(ask(probe.clone()).await);
        }
    }
    let mut sync = LightMacroSync::new(l.clone(), chain.clone(), LightConfig::default());
    sync.add_peer(s_id);
    let syncing = tokio::spawn(async move {
        while let Some(v) = sync.next().await {
            if v == MacroSyncReturn::Good(s_id) {
                return;
            }
        }
    });
    let mut during = Vec::new();
    let mut turns = busy_probes.iter().cycle().take(busy_probes.len() * PER_PROBE);
    while !syncing.is_finished() {
        let Some(probe) = turns.next() else { break };
        during.push(ask(probe.clone()).await);
    }
    syncing.await.unwrap();
    for t in tasks {
        t.abort();
    }
    (idle, during)
}

/// The light chain's single-core verification rate (blocks/s) of `server`'s election blocks:
/// (cold key cache, warm key cache).
fn verification_rate(server: &TestChain, epochs: usize) -> (f64, f64) {
    let policy = server.genesis.policy;
    let blocks: Vec<_> = (1..=epochs as u32)
        .map(|e| {
            let chain = server.chain.read().unwrap();
            match chain.block_at(policy.election_block_of(e), false).unwrap().unwrap() {
                Block::Macro(m) => m,
                Block::Micro(_) => unreachable!("election heights hold macro blocks"),
            }
        })
        .collect();
    let rate = |cold: bool| {
        let light = server.light_chain();
        let mut light = light.lock().unwrap();
        if cold {
            petrel_primitives::clear_key_cache();
        }
        let start = Instant::now();
        for b in &blocks {
            light.push_macro(b.clone()).unwrap();
        }
        blocks.len() as f64 / start.elapsed().as_secs_f64()
    };
    let cold = rate(true);
    let warm = rate(false);
    (cold, warm)
}

fn main() {
    // `cargo bench` passes criterion-style flags; this bench takes none but `--quick`.
    let quick = std::env::args().any(|a| a == "--quick");
    let sizes: &[usize] = if quick { &[10, 100] } else { &[10, 100, 1000] };
    let (mock_samples, wall_samples) = if quick { (1, 3) } else { (3, 7) };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap();
    let mut rows = Vec::new();
    for &epochs in sizes {
        let built = Instant::now();
        let server = TestChain::build(3, 8 * epochs + 4);
        eprintln!("built {epochs} epochs in {:.1} s", built.elapsed().as_secs_f64());
        for mode in ["pico", "light"] {
            let samples = (0..mock_samples).map(|_| rt.block_on(run_mock(mode, &server))).collect();
            rows.push(row("mock", mode, epochs, 3, samples));
        }
    }
    let real = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    for (epochs, peers) in [(100, 3), (200, 1)] {
        let server = TestChain::build(3, 8 * epochs + 4);
        for mode in ["pico", "light"] {
            let samples = (0..wall_samples).map(|_| real.block_on(run_libp2p(mode, &server, peers))).collect();
            rows.push(row("libp2p", mode, epochs, peers, samples));
        }
    }
    let server = TestChain::build(3, 8 * 200 + 4);
    let (cold, warm) = verification_rate(&server, 200);
    let long = TestChain::build(3, 8 * 1000 + 4);
    let (idle, during) = real.block_on(latency_under_verification(&long));
    let (during_n, idle_s, during_s) = (during.len(), Spread::of(idle), Spread::of(during));
    println!("(mock: virtual time at 20 ms one-way latency; libp2p: wall time on loopback; min/median/max)");
    println!(
        "{:<7} {:<6} {:>6} {:>5} {:>8} {:>22} {:>22} {:>10} {:>9} {:>10}",
        "network",
        "mode",
        "epochs",
        "peers",
        "clock",
        "to Good ms",
        "to established ms",
        "est-Good",
        "requests",
        "bytes in"
    );
    let spread = |s: &Spread| format!("{:.0}/{:.0}/{:.0}", s.min, s.median, s.max);
    for r in &rows {
        println!(
            "{:<7} {:<6} {:>6} {:>5} {:>8} {:>22} {:>22} {:>10.1} {:>9} {:>10}",
            r.network,
            r.mode,
            r.epochs,
            r.serving_peers,
            r.clock,
            spread(&r.to_good_ms),
            spread(&r.to_established_ms),
            r.established_after_good_ms,
            r.requests,
            r.bytes_received
        );
    }
    println!(
        "light-chain verification of the same 200 election blocks, one core: {cold:.0} blocks/s cold, {warm:.0} warm"
    );
    for r in rows.iter().filter(|r| r.network == "libp2p" && r.mode == "light" && r.epochs == 200) {
        let end_to_end = 200.0 / (r.to_good_ms.median / 1000.0);
        println!(
            "light sync over libp2p, 200 epochs, one peer: {end_to_end:.0} blocks/s end to end = {:.0} % of cold verification",
            100.0 * end_to_end / cold
        );
    }
    println!(
        "RequestHead to a light node over libp2p, ms min/median/max: idle {:.3}/{:.3}/{:.3}; while it verifies 1000 election blocks ({during_n} requests) {:.3}/{:.3}/{:.3}: median {:.2}x idle",
        idle_s.min,
        idle_s.median,
        idle_s.max,
        during_s.min,
        during_s.median,
        during_s.max,
        during_s.median / idle_s.median
    );
    #[derive(serde::Serialize)]
    struct Out<'a> {
        rows: &'a [Row],
        verify_blocks_per_s_cold: f64,
        verify_blocks_per_s_warm: f64,
        head_latency_idle_ms: Spread,
        head_latency_while_verifying_ms: Spread,
    }
    let out = Out {
        rows: &rows,
        verify_blocks_per_s_cold: cold,
        verify_blocks_per_s_warm: warm,
        head_latency_idle_ms: idle_s,
        head_latency_while_verifying_ms: during_s,
    };
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/scenario-sync.json");
    std::fs::write(&path, serde_json::to_string_pretty(&out).unwrap()).unwrap();
    eprintln!("wrote {}", path.display());
}
