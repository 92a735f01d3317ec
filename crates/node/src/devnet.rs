//! `petrel devnet`: the main job. Builds a chain, starts a producing history node and two serving
//! history nodes (copies of that chain) on loopback, then a pico, a light, a history and a full
//! node that start empty and sync from them over libp2p (the history and full nodes by History
//! Macro Sync); shows progress per syncing node and ends with a summary per syncing node.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use petrel_blockchain::{Blockchain, ChainOptions};
use petrel_primitives::Policy;
use petrel_producer::{Producer, ProducerConfig};
use serde::Serialize;

use crate::cli::DevnetArgs;
use crate::node::{Mode, NodeConfig, NodeHandle, start};

const LOOPBACK: &str = "/ip4/127.0.0.1/tcp/0";

#[derive(Serialize)]
struct Summary {
    mode: &'static str,
    established: bool,
    established_after_secs: Option<f64>,
    requests_sent: u64,
    bytes_received: u64,
    head_number: u32,
    head_hash: String,
    head_matches_producer: bool,
    fell_back: bool,
    /// History and full nodes: epochs their macro sync applied (start to established).
    epochs_applied: Option<u32>,
    /// History and full nodes: MB received by the end over the seconds from start to established.
    mb_per_sec: Option<f64>,
    /// Light and pico nodes of a network with proofs: what zero-knowledge light sync did.
    proofs: Option<crate::node::ProofStatus>,
}

fn producer_config(args: &DevnetArgs) -> ProducerConfig {
    ProducerConfig {
        seed: args.seed,
        validators: 16,
        transactions_per_block: args.tx_per_block,
        ..ProducerConfig::default()
    }
}

/// Builds the chain in `dir` (or continues one already there), and with `zkp` proves its election
/// chain into the store.
fn build_chain(
    dir: &Path,
    args: &DevnetArgs,
    quiet: bool,
    zkp: Option<&Path>,
) -> Result<petrel_primitives::GenesisConfig> {
    let producer = Producer::new(producer_config(args));
    let mut genesis = producer.genesis(1, 1_700_000_000_000, Policy::DEVNET);
    if let Some(cache) = zkp {
        let started = Instant::now();
        genesis.zkp = Some(crate::prover::devnet_zkp(&genesis.policy, args.zkp_handoffs, args.seed, cache)?);
        if !quiet {
            eprintln!(
                "zkp: keys for {} handoffs per proof ready in {:.1} s (cache {})",
                args.zkp_handoffs,
                started.elapsed().as_secs_f64(),
                cache.display()
            );
        }
    }
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("genesis.toml"), genesis.to_toml())?;
    let mut chain =
        Blockchain::open(&dir.join("chain.redb"), &genesis, ChainOptions { durable: false, ..Default::default() })
            .with_context(|| format!("cannot open {}", dir.display()))?;
    let target = genesis.policy.election_block_of(args.epochs);
    let bar = if quiet || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(u64::from(target))
    };
    bar.set_style(
        ProgressStyle::with_template("building chain {bar:40} {pos}/{len} blocks ({per_sec}, eta {eta})")
            .unwrap_or(ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    while chain.head().block_number < target {
        let mut scratch = chain.state().clone();
        let block = producer.produce(&mut scratch)?;
        chain.push(block)?;
        bar.set_position(u64::from(chain.head().block_number));
    }
    bar.finish_and_clear();
    if !quiet {
        eprintln!("built {} epochs ({} blocks) in {:.1} s", args.epochs, target, started.elapsed().as_secs_f64());
    }
    if let Some(cache) = zkp {
        let started = Instant::now();
        let (shape, pk) = crate::prover::proving_key(&genesis, cache)?;
        let chain = std::sync::RwLock::new(chain);
        let mut proofs = 0;
        while let Some((segment, ms)) = crate::prover::prove_next(&chain, &shape, &pk)? {
            proofs += 1;
            if !quiet {
                eprintln!("zkp: proved the election chain to epoch {} ({ms} ms)", segment.end_epoch);
            }
        }
        if !quiet {
            eprintln!("zkp: {proofs} proofs in {:.1} s", started.elapsed().as_secs_f64());
        }
    }
    Ok(genesis)
}

fn copy_node_dir(from: &Path, to: &Path, with_chain: bool) -> Result<()> {
    std::fs::create_dir_all(to)?;
    std::fs::copy(from.join("genesis.toml"), to.join("genesis.toml"))?;
    if with_chain {
        std::fs::copy(from.join("chain.redb"), to.join("chain.redb"))?;
    }
    Ok(())
}

/// Runs `petrel devnet`.
pub(crate) fn run(args: &DevnetArgs) -> Result<()> {
    let temp;
    let root: PathBuf = match &args.data_dir {
        Some(d) => d.clone(),
        None => {
            temp = tempfile::Builder::new().prefix("petrel-devnet-").tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let quiet = args.json;
    let zkp_cache = (args.zkp_handoffs > 0)
        .then(|| args.zkp_cache.clone().unwrap_or_else(|| crate::prover::default_cache_dir(&root)));
    let genesis = build_chain(&root.join("producer"), args, quiet, zkp_cache.as_deref())?;
    for name in ["serve-1", "serve-2"] {
        copy_node_dir(&root.join("producer"), &root.join(name), true)?;
    }
    for name in ["pico", "light", "history", "full"] {
        copy_node_dir(&root.join("producer"), &root.join(name), false)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run_nodes(args, &root, genesis, zkp_cache))
}

async fn run_nodes(
    args: &DevnetArgs,
    root: &Path,
    genesis: petrel_primitives::GenesisConfig,
    zkp_cache: Option<PathBuf>,
) -> Result<()> {
    let interval = Duration::from_millis(args.block_interval_ms.max(10));
    let base = |mode, dir: &str, peers: Vec<String>| NodeConfig {
        mode,
        data_dir: root.join(dir),
        genesis: genesis.clone(),
        listen: vec![LOOPBACK.to_string()],
        peers,
        produce: None,
        block_interval: interval,
        min_peers: 0,
        checkpoint: None,
        crash_after_bytes: None,
        max_epochs_stored: crate::node::DEFAULT_EPOCHS_STORED,
        prove: false,
        zkp_cache: zkp_cache.clone().unwrap_or_else(|| root.join("zkp-keys")),
    };
    let producer = start(NodeConfig {
        produce: Some(producer_config(args)),
        prove: zkp_cache.is_some(),
        ..base(Mode::History, "producer", vec![])
    })
    .await?;
    let mut servers = vec![producer.dial_addrs()];
    let mut serving = Vec::new();
    for name in ["serve-1", "serve-2"] {
        let node = start(base(Mode::History, name, producer.dial_addrs())).await?;
        servers.push(node.dial_addrs());
        serving.push(node);
    }
    let all_servers: Vec<String> = servers.into_iter().flatten().collect();
    let started = Instant::now();
    let mut syncing: Vec<NodeHandle> = Vec::new();
    for (mode, name) in [(Mode::Pico, "pico"), (Mode::Light, "light"), (Mode::History, "history"), (Mode::Full, "full")]
    {
        syncing.push(start(NodeConfig { min_peers: 3, ..base(mode, name, all_servers.clone()) }).await?);
    }

    let show_bars = !args.json && std::io::stderr().is_terminal();
    let multi = MultiProgress::new();
    let style =
        ProgressStyle::with_template("{prefix:>7} {bar:40} {pos}/{len} {msg}").unwrap_or(ProgressStyle::default_bar());
    let bars: Vec<ProgressBar> = syncing
        .iter()
        .map(|n| {
            let bar = if show_bars { multi.add(ProgressBar::new(1)) } else { ProgressBar::hidden() };
            bar.set_style(style.clone());
            bar.set_prefix(n.mode.name());
            bar
        })
        .collect();
    let deadline = started + Duration::from_secs(args.timeout_secs);
    let mut last_line = Instant::now();
    let mut paused = false;
    let mut converged_at: Option<Instant> = None;
    let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
    let outcome: Result<()> = loop {
        tokio::select! {
            _ = &mut ctrl_c => {
                // Ctrl-C: stop and summarise. Without --exit-when-synced that is the normal end.
                let _ = producer.production.send(true);
                break if args.exit_when_synced { Err(anyhow::anyhow!("interrupted")) } else { Ok(()) };
            }
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        // The nodes first, then the producer: every block a node has came from the producer, so
        // read in this order no head shows above the target.
        let statuses: Vec<_> = syncing.iter().map(NodeHandle::status).collect();
        let target = producer.status();
        for (bar, s) in bars.iter().zip(&statuses) {
            bar.set_length(u64::from(target.head_number.max(1)));
            bar.set_position(u64::from(s.head_number));
            bar.set_message(format!(
                "{} peers {}",
                s.live_peers,
                if s.established { "established" } else { "syncing" }
            ));
        }
        if !show_bars && !args.json && last_line.elapsed() >= Duration::from_secs(2) {
            last_line = Instant::now();
            for (n, s) in syncing.iter().zip(&statuses) {
                eprintln!(
                    "{:>7}: head {}/{} live peers {} {}",
                    n.mode.name(),
                    s.head_number,
                    target.head_number,
                    s.live_peers,
                    if s.established { "established" } else { "syncing" }
                );
            }
        }
        let all_established = statuses.iter().all(|s| s.established);
        if all_established && args.exit_when_synced && !paused {
            // Stop producing so the heads can be compared at rest.
            let _ = producer.production.send(true);
            paused = true;
        }
        let matches = statuses.iter().all(|s| s.head_hash == producer.status().head_hash);
        if paused && all_established && matches {
            converged_at.get_or_insert_with(Instant::now);
            break Ok(());
        }
        if args.exit_when_synced && Instant::now() > deadline {
            break Err(anyhow::anyhow!("the syncing nodes were not synced after {} s", args.timeout_secs));
        }
    };
    for bar in &bars {
        bar.finish_and_clear();
    }
    if outcome.is_ok() && !paused {
        // Ended by Ctrl-C while producing: production is paused; let the heads settle (≤ 10 s).
        let settle = Instant::now() + Duration::from_secs(10);
        while Instant::now() < settle && syncing.iter().any(|n| n.status().head_hash != producer.status().head_hash) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let producer_head = producer.status();
    let summaries: Vec<Summary> = syncing
        .iter()
        .map(|n| {
            let s = n.status();
            let history = matches!(n.mode, Mode::History | Mode::Full);
            let policy = genesis.policy;
            let completed_epochs = |head: u32| policy.epoch_at(policy.last_election_block(head));
            let epochs_applied = s
                .established_head_number
                .filter(|_| history)
                .map(|h| completed_epochs(h).saturating_sub(completed_epochs(s.start_head_number)));
            let mb_per_sec = s
                .established_after_secs
                .filter(|t| history && *t > 0.0)
                .map(|t| s.traffic.bytes_received as f64 / 1e6 / t);
            Summary {
                epochs_applied,
                mb_per_sec,
                mode: n.mode.name(),
                established: s.established,
                established_after_secs: s.established_after_secs,
                requests_sent: s.traffic.requests_sent,
                bytes_received: s.traffic.bytes_received,
                head_number: s.head_number,
                head_hash: s.head_hash.to_hex(),
                head_matches_producer: s.head_hash == producer_head.head_hash,
                fell_back: s.fell_back,
                proofs: s.proofs,
            }
        })
        .collect();
    let ok = outcome.is_ok() && summaries.iter().all(|s| s.established && s.head_matches_producer);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "ok": ok,
                "epochs": args.epochs,
                "producer_head": { "number": producer_head.head_number, "hash": producer_head.head_hash.to_hex() },
                "prover": producer_head.prover,
                "nodes": summaries,
            }))?
        );
    } else {
        println!("producer head: #{} {}", producer_head.head_number, producer_head.head_hash);
        println!(
            "{:<7} {:>12} {:>10} {:>12} {:>8} {:>13} {:>7} {:>7}",
            "mode", "established", "requests", "bytes in", "head", "matches head", "epochs", "MB/s"
        );
        for s in &summaries {
            println!(
                "{:<7} {:>12} {:>10} {:>12} {:>8} {:>13} {:>7} {:>7}",
                s.mode,
                s.established_after_secs.map_or("no".to_string(), |t| format!("{t:.2} s")),
                s.requests_sent,
                s.bytes_received,
                s.head_number,
                if s.head_matches_producer { "yes" } else { "no" },
                s.epochs_applied.map_or("-".to_string(), |e| e.to_string()),
                s.mb_per_sec.map_or("-".to_string(), |r| format!("{r:.1}")),
            );
        }
        if let Some(p) = producer_head.prover {
            let running = if p.proofs == 0 {
                "none made while running".to_string()
            } else {
                format!("{} made while running, the last in {} ms", p.proofs, p.last_proof_ms)
            };
            println!("zkp: the producer's proofs reach epoch {} ({running})", p.proven_epoch);
        }
        for s in &summaries {
            if let Some(p) = s.proofs {
                println!(
                    "zkp: {} node verified {} segment proofs ({} bytes{}){}",
                    s.mode,
                    p.segments_verified,
                    p.bytes,
                    if p.verify_ms > 0.0 { format!(", {:.1} ms", p.verify_ms) } else { String::new() },
                    p.proven_epoch.map_or(", adopted none".to_string(), |e| format!(", proven to epoch {e}")),
                );
            }
        }
    }
    for n in syncing.iter().chain(&serving).chain(std::iter::once(&producer)) {
        n.stop();
    }
    outcome?;
    if !ok {
        bail!("a syncing node's head does not match the producer's");
    }
    Ok(())
}
