//! `petrel node`: runs one node until Ctrl-C. Options come from flags and, with `--config FILE`,
//! from a TOML file with the same keys (flags win).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use petrel_primitives::{Blake2bHash, GenesisConfig};
use petrel_producer::ProducerConfig;
use serde::Deserialize;

use crate::cli::NodeArgs;
use crate::node::{DEFAULT_EPOCHS_STORED, Mode, NodeConfig, start};
use crate::sync_progress::{PROGRESS_INTERVAL, ProgressTracker};

/// The `--config` file: every key optional, same meaning as the flag of the same name.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    mode: Option<Mode>,
    data_dir: Option<PathBuf>,
    genesis: Option<PathBuf>,
    listen: Option<Vec<String>>,
    peer: Option<Vec<String>>,
    produce: Option<bool>,
    block_interval_ms: Option<u64>,
    seed: Option<u64>,
    validators: Option<u16>,
    min_peers: Option<usize>,
    checkpoint: Option<String>,
    max_epochs_stored: Option<u32>,
    prove: Option<bool>,
    zkp_cache: Option<PathBuf>,
    metrics: Option<std::net::SocketAddr>,
}

/// Parses `NUMBER:HASH`.
pub(crate) fn parse_checkpoint(s: &str) -> Result<(u32, Blake2bHash)> {
    let (n, h) = s.split_once(':').ok_or_else(|| anyhow!("checkpoint must be NUMBER:HASH, got {s:?}"))?;
    let number = n.parse().with_context(|| format!("bad checkpoint number {n:?}"))?;
    let hash = Blake2bHash::from_hex(h).with_context(|| format!("bad checkpoint hash {h:?}"))?;
    Ok((number, hash))
}

/// Merges flags over the file and checks the result; also the metrics address, if any.
fn resolve(args: &NodeArgs) -> Result<(NodeConfig, Option<std::net::SocketAddr>)> {
    let file: FileConfig = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            toml::from_str(&text).with_context(|| format!("invalid config {}", path.display()))?
        }
        None => FileConfig::default(),
    };
    let mode = args.mode.or(file.mode).ok_or_else(|| anyhow!("--mode is required (history, full, light or pico)"))?;
    let data_dir = args.data_dir.clone().or(file.data_dir).ok_or_else(|| anyhow!("--data-dir is required"))?;
    let genesis_path = args.genesis.clone().or(file.genesis).unwrap_or_else(|| data_dir.join("genesis.toml"));
    let genesis = GenesisConfig::load(&genesis_path).with_context(|| {
        format!(
            "cannot load the genesis {} (run `petrel chain generate` first, or pass --genesis)",
            genesis_path.display()
        )
    })?;
    let listen = if args.listen.is_empty() { file.listen.unwrap_or_default() } else { args.listen.clone() };
    let listen = if listen.is_empty() { vec!["/ip4/0.0.0.0/tcp/0".to_string()] } else { listen };
    let max_epochs_stored = args.max_epochs_stored.or(file.max_epochs_stored);
    if max_epochs_stored.is_some() && mode != Mode::Full {
        bail!("--max-epochs-stored is for --mode full (history nodes keep all history)");
    }
    let peers = if args.peer.is_empty() { file.peer.unwrap_or_default() } else { args.peer.clone() };
    let produce = args.produce || file.produce.unwrap_or(false);
    if produce && !matches!(mode, Mode::History | Mode::Full) {
        bail!("--produce needs --mode history or full");
    }
    let checkpoint = match args.checkpoint.clone().or(file.checkpoint) {
        Some(s) => Some(parse_checkpoint(&s)?),
        None => None,
    };
    let block_interval =
        Duration::from_millis(args.block_interval_ms.or(file.block_interval_ms).unwrap_or(1000).max(10));
    let validators = args.validators.or(file.validators).unwrap_or(16);
    if validators == 0 || i64::from(validators) > crate::cli::MAX_VALIDATORS {
        bail!("validators must be in 1..={} (one slot each), got {validators}", crate::cli::MAX_VALIDATORS);
    }
    let producer = ProducerConfig {
        seed: args.seed.or(file.seed).unwrap_or(1),
        validators: usize::from(validators),
        transactions_per_block: 10,
        ..ProducerConfig::default()
    };
    let data_dir_for_cache = data_dir.clone();
    let metrics = args.metrics.or(file.metrics);
    let config = NodeConfig {
        mode,
        data_dir,
        genesis,
        listen,
        peers,
        produce: produce.then_some(producer),
        block_interval,
        min_peers: args.min_peers.or(file.min_peers).unwrap_or(3),
        checkpoint,
        crash_after_bytes: args.crash_after_bytes,
        max_epochs_stored: max_epochs_stored.unwrap_or(DEFAULT_EPOCHS_STORED),
        prove: args.prove || file.prove.unwrap_or(false),
        zkp_cache: args
            .zkp_cache
            .clone()
            .or(file.zkp_cache)
            .unwrap_or_else(|| crate::prover::default_cache_dir(&data_dir_for_cache)),
    };
    Ok((config, metrics))
}

/// Runs `petrel node`.
pub(crate) fn run(args: &NodeArgs) -> Result<()> {
    let (config, metrics_addr) = resolve(args)?;
    let policy = config.genesis.policy;
    let mode = config.mode;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the runtime")?;
    runtime.block_on(async move {
        let mut node = start(config).await?;
        let metrics = match metrics_addr {
            Some(addr) => {
                let handle = crate::metrics::install()?;
                Some(crate::metrics::serve(addr, handle, mode, node.status.clone()).await?)
            }
            None => None,
        };
        if args.json {
            println!(
                "{}",
                serde_json::json!({ "event": "listening", "mode": node.mode.name(), "peer_id": node.peer_id, "id": node.short_id, "addrs": node.dial_addrs(), "metrics": metrics.map(|a| a.to_string()) })
            );
        } else {
            println!("peer id: {}", node.peer_id);
            for a in node.dial_addrs() {
                println!("listening on {a}");
            }
            if let Some(a) = metrics {
                println!("metrics on http://{a}/metrics, status on http://{a}/status");
            }
        }
        let mut status = node.status.clone();
        let mut was_established = false;
        let mut report = tokio::time::interval(Duration::from_secs(10));
        let mut progress = tokio::time::interval(PROGRESS_INTERVAL);
        let mut tracker = ProgressTracker::default();
        loop {
            tokio::select! {
                _ = progress.tick() => {
                    let s = status.borrow().clone();
                    if let Some(p) = tracker.update(std::time::Instant::now(), &s, &policy) {
                        if args.json {
                            println!("{}", serde_json::json!({ "event": "progress", "progress": p }));
                        } else {
                            tracing::info!(target: "petrel", "{}", p.line());
                        }
                    }
                }
                _ = tokio::signal::ctrl_c() => break,
                ended = node.task_ended() => {
                    node.stop();
                    bail!("{ended}; the node stops");
                }
                changed = status.changed() => {
                    if changed.is_err() { break; }
                    let s = status.borrow().clone();
                    if metrics.is_some() {
                        crate::metrics::record_status(mode, &s);
                    }
                    if s.established != was_established {
                        was_established = s.established;
                        if args.json {
                            println!("{}", serde_json::json!({ "event": if s.established { "established" } else { "lost" }, "status": s }));
                        } else {
                            tracing::info!(target: "petrel", head = s.head_number, peers = s.live_peers, "consensus {}", if s.established { "established" } else { "lost" });
                        }
                    }
                }
                _ = report.tick() => {
                    let s = status.borrow().clone();
                    if args.json {
                        println!("{}", serde_json::json!({ "event": "status", "status": s }));
                    } else {
                        tracing::info!(target: "petrel", head = s.head_number, hash = %s.head_hash.short(), established = s.established, live_peers = s.live_peers, connected = s.connected_peers, "status");
                    }
                }
            }
        }
        node.stop();
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn node_args(argv: &[&str]) -> NodeArgs {
        let mut full = vec!["petrel", "node"];
        full.extend_from_slice(argv);
        match Cli::try_parse_from(full).unwrap().command {
            Command::Node(a) => a,
            _ => panic!("not node"),
        }
    }

    #[test]
    fn the_config_file_is_read_and_flags_win() {
        let dir = tempfile::tempdir().unwrap();
        let producer =
            petrel_producer::Producer::new(ProducerConfig { validators: 4, accounts: 2, ..Default::default() });
        let genesis = producer.genesis(1, 0, petrel_primitives::Policy::TEST);
        std::fs::write(dir.path().join("genesis.toml"), genesis.to_toml()).unwrap();
        let config = dir.path().join("node.toml");
        std::fs::write(
            &config,
            format!(
                "mode = \"history\"\ndata_dir = {:?}\nlisten = [\"/ip4/127.0.0.1/tcp/4001\"]\nproduce = true\nblock_interval_ms = 250\nmin_peers = 1\n",
                dir.path()
            ),
        )
        .unwrap();
        let from_file = resolve(&node_args(&["--config", config.to_str().unwrap()])).unwrap().0;
        assert_eq!(from_file.mode, Mode::History);
        assert_eq!(from_file.listen, vec!["/ip4/127.0.0.1/tcp/4001".to_string()]);
        assert!(from_file.produce.is_some());
        assert_eq!(from_file.block_interval, Duration::from_millis(250));
        assert_eq!(from_file.min_peers, 1);
        let flags = resolve(&node_args(&[
            "--config",
            config.to_str().unwrap(),
            "--listen",
            "/ip4/127.0.0.1/tcp/5001",
            "--min-peers",
            "3",
            "--block-interval-ms",
            "900",
            "--metrics",
            "127.0.0.1:9100",
        ]))
        .unwrap();
        assert_eq!(flags.1, Some("127.0.0.1:9100".parse().unwrap()));
        let flags = flags.0;
        assert_eq!(flags.listen, vec!["/ip4/127.0.0.1/tcp/5001".to_string()]);
        assert_eq!((flags.min_peers, flags.block_interval), (3, Duration::from_millis(900)));
        // Errors are clear values.
        std::fs::write(&config, "mode = \"history\"\nsurprise = 1\n").unwrap();
        assert!(resolve(&node_args(&["--config", config.to_str().unwrap()])).is_err());
        let err = resolve(&node_args(&["--data-dir", dir.path().to_str().unwrap()])).unwrap_err();
        assert!(err.to_string().contains("--mode"), "{err}");
        let err = resolve(&node_args(&["--mode", "pico", "--produce", "--data-dir", dir.path().to_str().unwrap()]))
            .unwrap_err();
        assert!(err.to_string().contains("--produce"), "{err}");
        let d = dir.path().to_str().unwrap();
        let err = resolve(&node_args(&["--mode", "history", "--max-epochs-stored", "2", "--data-dir", d])).unwrap_err();
        assert!(err.to_string().contains("--mode full"), "{err}");
        let full = resolve(&node_args(&["--mode", "full", "--data-dir", d])).unwrap().0;
        assert_eq!(full.max_epochs_stored, DEFAULT_EPOCHS_STORED);
        let full = resolve(&node_args(&["--mode", "full", "--max-epochs-stored", "4", "--data-dir", d])).unwrap().0;
        assert_eq!(full.max_epochs_stored, 4);
        assert!(parse_checkpoint("16:zz").is_err());
        let (n, h) = parse_checkpoint(&format!("16:{}", "ab".repeat(32))).unwrap();
        assert_eq!((n, h), (16, Blake2bHash([0xab; 32])));
    }
}
