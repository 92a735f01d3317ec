//! A running node: network, chain store, request handlers, syncer, and (optionally) the block
//! producer, as tasks on the current tokio runtime. `petrel node` runs one; `petrel devnet` runs
//! several in one process.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use futures::StreamExt;
use petrel_blockchain::{Blockchain, ChainEvent, ChainOptions, HeadInfo, LightBlockchain};
use petrel_consensus::handlers::{HandlerConfig, serve_full_chain};
use petrel_consensus::{
    ConsensusEvent, EstablishedConfig, LiveConfig, SyncChain, Syncer, SyncerConfig, block_live_sync,
};
use petrel_network_api::{Counting, Network, NetworkExt, Services, TrafficSnapshot};
use petrel_network_libp2p::{Libp2pConfig, Libp2pNetwork};
use petrel_primitives::{Blake2bHash, Block, GenesisConfig, MacroBlock};
use petrel_producer::{Producer, ProducerConfig};
use petrel_protocol::{BlockHeaders, FullBlocks, RequestBlock};
use petrel_sync_history::driver::HistoryMacroSync;
use petrel_sync_history::machine::HistoryConfig;
use petrel_sync_light::{LightConfig, LightMacroSync, VerifierHandle, ZkpLightConfig};
use petrel_sync_pico::{EitherSyncer, PicoConfig, PicoMacroSync};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};

/// What kind of node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Mode {
    /// Full chain and all history; serves everything.
    History,
    /// Full chain; serves blocks and recent history.
    Full,
    /// Light chain verified from the anchor by Light Macro Sync.
    Light,
    /// Light chain by Pico Macro Sync, falling back to Light on conflict.
    Pico,
}

impl Mode {
    fn services(self) -> Services {
        match self {
            Mode::History => Services::HISTORY_NODE,
            Mode::Full => Services::FULL_NODE,
            Mode::Light | Mode::Pico => Services::NONE,
        }
    }
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mode::History => "history",
            Mode::Full => "full",
            Mode::Light => "light",
            Mode::Pico => "pico",
        }
    }
}

/// Everything a node needs to start.
#[derive(Clone, Debug)]
pub(crate) struct NodeConfig {
    pub(crate) mode: Mode,
    pub(crate) data_dir: PathBuf,
    pub(crate) genesis: GenesisConfig,
    pub(crate) listen: Vec<String>,
    pub(crate) peers: Vec<String>,
    /// Produce blocks (history/full only) with this producer, every `block_interval`.
    pub(crate) produce: Option<ProducerConfig>,
    pub(crate) block_interval: Duration,
    pub(crate) min_peers: usize,
    /// Light/pico anchor: a checkpoint election block (number, hash), fetched from peers.
    pub(crate) checkpoint: Option<(u32, Blake2bHash)>,
    /// Full nodes: epochs of history kept before the head's epoch (ADR 0012).
    pub(crate) max_epochs_stored: u32,
    /// Testing aid (`--crash-after-bytes`): abort once the responses received pass this many bytes.
    pub(crate) crash_after_bytes: Option<u64>,
    /// History nodes: prove the election chain (`--prove`; the genesis must have a `[zkp]`
    /// section with a setup seed).
    pub(crate) prove: bool,
    /// Where proving keys are cached.
    pub(crate) zkp_cache: PathBuf,
}

/// What a running node reports.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct NodeStatus {
    pub(crate) head_number: u32,
    pub(crate) head_hash: Blake2bHash,
    pub(crate) macro_head_number: u32,
    pub(crate) macro_head_hash: Blake2bHash,
    pub(crate) established: bool,
    /// Time from start to the first "established".
    pub(crate) established_after_secs: Option<f64>,
    /// The head when the node started.
    pub(crate) start_head_number: u32,
    /// The head at the first "established" (what macro sync brought it to).
    pub(crate) established_head_number: Option<u32>,
    pub(crate) live_peers: usize,
    pub(crate) connected_peers: usize,
    pub(crate) traffic: TrafficSnapshot,
    pub(crate) fell_back: bool,
    /// The highest block a peer listed that macro sync works towards (history and full nodes).
    pub(crate) sync_target_number: Option<u32>,
    /// Light and pico nodes of a network with proofs: what zero-knowledge light sync did.
    pub(crate) proofs: Option<ProofStatus>,
    /// Proving history nodes: what the prover did.
    pub(crate) prover: Option<crate::prover::ProverStatus>,
    /// Peers in macro sync now.
    pub(crate) macro_sync_peers: usize,
    /// What the node waits for, in words ("nothing" once established).
    pub(crate) waiting_on: String,
    /// The connected peers: id, kind of node, whether in live sync, and macro sync's last verdict
    /// on each (if any).
    pub(crate) peers: Vec<PeerStatus>,
}

/// One connected peer, as the node sees it.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct PeerStatus {
    pub(crate) id: String,
    /// `history`, `full`, `macro` or `light` (from its services).
    pub(crate) class: &'static str,
    /// Macro sync's last verdict on it: `good`, `outdated`, `incompatible` or `conflicting`.
    pub(crate) last_verdict: Option<&'static str>,
}

/// What a node waits for, in words.
fn waiting_on(s: &NodeStatus, min_peers: usize) -> String {
    if s.established {
        "nothing (established)".into()
    } else if s.connected_peers == 0 {
        "peers: none connected".into()
    } else if let Some(target) = s.sync_target_number {
        format!("macro sync: block {} of {target}, with {} peers", s.head_number, s.macro_sync_peers)
    } else if s.macro_sync_peers > 0 {
        format!("macro sync with {} peers", s.macro_sync_peers)
    } else {
        format!("live sync: {} of the {min_peers} peers needed to be established", s.live_peers)
    }
}

/// What zero-knowledge light sync did (the light machine's counters).
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub(crate) struct ProofStatus {
    pub(crate) requests: u64,
    pub(crate) segments_verified: u64,
    pub(crate) bytes: u64,
    pub(crate) verify_ms: f64,
    pub(crate) proven_epoch: Option<u32>,
}

/// A started node.
pub(crate) struct NodeHandle {
    pub(crate) mode: Mode,
    pub(crate) peer_id: String,
    /// Our id as statuses and logs show peers (the short form of Petrel's `PeerId`).
    pub(crate) short_id: String,
    pub(crate) listen_addrs: Vec<String>,
    pub(crate) status: watch::Receiver<NodeStatus>,
    /// Pauses (true) or resumes block production.
    pub(crate) production: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _lock: DataDirLock,
}

impl NodeHandle {
    /// Stops every task of the node.
    pub(crate) fn stop(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }
    /// The latest status.
    pub(crate) fn status(&self) -> NodeStatus {
        self.status.borrow().clone()
    }
    /// Addresses with the peer id, for `--peer`.
    pub(crate) fn dial_addrs(&self) -> Vec<String> {
        self.listen_addrs.iter().map(|a| format!("{a}/p2p/{}", self.peer_id)).collect()
    }
    /// Resolves when one of the node's tasks ends, which none does while the node runs: a panic or
    /// a task that gave up. The caller ends the process with this error instead of running on
    /// without the task (or exiting 0).
    pub(crate) async fn task_ended(&mut self) -> String {
        first_task_end(&mut self.tasks).await
    }
}

/// Waits for the first of `tasks` to end and says how it ended (pending forever if there are none).
async fn first_task_end(tasks: &mut [tokio::task::JoinHandle<()>]) -> String {
    if tasks.is_empty() {
        return std::future::pending().await;
    }
    let (ended, index, _) = futures::future::select_all(tasks.iter_mut()).await;
    match ended {
        Err(e) if e.is_panic() => {
            let payload = e.into_panic();
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".into());
            format!("node task {index} panicked: {message}")
        }
        Err(_) => format!("node task {index} was cancelled"),
        Ok(()) => format!("node task {index} ended unexpectedly"),
    }
}

/// Reads the node key from `data_dir/node.key`, creating it from the operating system's random
/// source on first start (readable by the owner only), so the peer id stays the same across
/// restarts.
fn node_key(data_dir: &Path) -> Result<[u8; 32]> {
    let path = data_dir.join("node.key");
    if path.metadata().is_ok_and(|m| m.len() != 32) {
        bail!("{} is not a 32-byte key; delete it to make a new one", path.display());
    }
    if let Ok(bytes) = std::fs::read(&path) {
        return bytes
            .try_into()
            .map_err(|_| anyhow!("{} is not a 32-byte key; delete it to make a new one", path.display()));
    }
    let key: [u8; 32] = rand::random();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path).with_context(|| format!("cannot create {}", path.display()))?;
    std::io::Write::write_all(&mut file, &key).with_context(|| format!("cannot write {}", path.display()))?;
    file.sync_all()?;
    // The new file's entry lives in the directory: sync it too, or a crash may lose the key (and
    // the node's peer id with it).
    #[cfg(unix)]
    std::fs::File::open(data_dir)?.sync_all()?;
    Ok(key)
}

/// `DATA_DIR/LOCK`, held (an advisory lock) for the life of a node: a second process on the same
/// directory is refused at start instead of sharing the node key and the light chain's file.
pub(crate) struct DataDirLock {
    _file: std::fs::File,
}

impl DataDirLock {
    /// Takes the lock of `data_dir`, or says who holds it.
    pub(crate) fn acquire(data_dir: &Path) -> Result<Self> {
        let path = data_dir.join("LOCK");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => bail!(
                "another petrel process is using {} (it holds {}); stop it or use another --data-dir",
                data_dir.display(),
                path.display()
            ),
            Err(std::fs::TryLockError::Error(e)) => Err(e).with_context(|| format!("cannot lock {}", path.display())),
        }
    }
}

/// Opens the light chain of a light or pico node. A light node does not trust what a pico node
/// adopted on trust in the same directory: an optimistic election block is dropped (back to the
/// anchor, from where Light Macro Sync verifies every step).
fn open_light_chain(
    mode: Mode,
    genesis: &petrel_primitives::GenesisConfig,
    anchor: Option<MacroBlock>,
    path: &Path,
) -> Result<LightBlockchain> {
    let mut light = LightBlockchain::new(genesis, anchor, Some(path)).context("cannot open the light chain")?;
    if mode == Mode::Light && light.is_optimistic() {
        tracing::warn!(
            target: "petrel",
            head = light.head().block_number,
            "{} holds an election block a pico node adopted on trust; light sync verifies from the anchor again",
            path.display()
        );
        light.reset().context("cannot reset the light chain")?;
    }
    Ok(light)
}

/// Epochs of history a full node keeps before its head's epoch unless told otherwise (the
/// reference's `MIN_EPOCHS_STORED`).
pub(crate) const DEFAULT_EPOCHS_STORED: u32 = 1;

/// A full node's disk stays bounded: once at start and after every epoch or adopted macro block,
/// the history of epochs before `epoch(head) − keep` is deleted (one redb transaction, off the
/// executor). Macro blocks and the state stay.
async fn prune_as_it_goes(chain: Arc<RwLock<Blockchain>>, keep: u32) {
    let mut events = chain.read().unwrap_or_else(|e| e.into_inner()).subscribe();
    loop {
        let pruned = {
            let chain = chain.clone();
            tokio::task::spawn_blocking(move || chain.write().unwrap_or_else(|e| e.into_inner()).prune_history(keep))
                .await
        };
        match pruned {
            Ok(Ok(first_kept)) => tracing::debug!(target: "petrel", first_kept, "history pruned"),
            Ok(Err(e)) => tracing::warn!(target: "petrel", error = %e, "cannot prune history"),
            Err(e) => tracing::warn!(target: "petrel", error = %e, "the prune task failed"),
        }
        // Wait for the next epoch (by push) or adopted macro block (by history sync).
        if !next_epoch_or_adoption(&mut events).await {
            return;
        }
    }
}

/// Waits for the next election block pushed or macro block adopted by history sync (or events
/// lost to a lagging receiver, which may have been one); `false` once the chain's events end.
pub(crate) async fn next_epoch_or_adoption(events: &mut broadcast::Receiver<ChainEvent>) -> bool {
    loop {
        match events.recv().await {
            Ok(ChainEvent::EpochFinalized { .. } | ChainEvent::HistoryAdopted { .. })
            | Err(broadcast::error::RecvError::Lagged(_)) => return true,
            Ok(_) => {}
            Err(broadcast::error::RecvError::Closed) => return false,
        }
    }
}

/// Starts a node on the current runtime.
pub(crate) async fn start(config: NodeConfig) -> Result<NodeHandle> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
    let lock = DataDirLock::acquire(&config.data_dir)?;
    let genesis_hash = config.genesis.genesis_hash()?;
    let mut net_config = Libp2pConfig::with_seed(node_key(&config.data_dir)?);
    net_config.listen = config.listen.clone();
    net_config.bootstrap = config.peers.clone();
    net_config.genesis_hash = genesis_hash;
    net_config.services = config.mode.services();
    net_config.promises = petrel_protocol::PROMISES;
    if config.genesis.zkp.is_some() && config.mode == Mode::History {
        // Serves whatever proofs its store holds (its own if it proves, or a copied store's).
        net_config.services = net_config.services.union(Services::ZKP_PROOFS);
    }
    let light_config = light_config(&config.genesis)?;
    let (network, event_loop) = Libp2pNetwork::new(net_config).context("cannot start the network")?;
    let mut tasks = vec![tokio::spawn(event_loop.run())];
    let listen_addrs: Vec<String> = network.listen_addrs().await.iter().map(ToString::to_string).collect();
    let peer_id = network.local_libp2p_peer_id();
    let short_id = network.local_peer_id().to_string();
    let mut net = Counting::new(network);
    if let Some(limit) = config.crash_after_bytes {
        net = net.with_received_hook(std::sync::Arc::new(move |total| {
            if total >= limit {
                use std::io::Write as _;
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{}", serde_json::json!({ "event": "crash", "bytes_received": total }));
                let _ = out.flush();
                std::process::abort();
            }
        }));
    }
    let (status_tx, status) = watch::channel(NodeStatus::default());
    let (production, production_rx) = watch::channel(false);
    let policy = config.genesis.policy;
    let mut syncer_config = SyncerConfig::for_batch(policy.blocks_per_batch);
    syncer_config.established = EstablishedConfig { min_peers: config.min_peers, ..Default::default() };
    let live_config = LiveConfig::for_batch(policy.blocks_per_batch);
    let started = Instant::now();

    match config.mode {
        Mode::History | Mode::Full => {
            let path = config.data_dir.join("chain.redb");
            let chain = Blockchain::open(&path, &config.genesis, ChainOptions::default())
                .with_context(|| format!("cannot open {}", path.display()))?;
            let chain = Arc::new(RwLock::new(chain));
            if config.mode == Mode::Full {
                tasks.push(tokio::spawn(prune_as_it_goes(chain.clone(), config.max_epochs_stored)));
            }
            tasks.push(tokio::spawn(serve_full_chain(net.clone(), chain.clone(), HandlerConfig::default())));
            let mut prover_status = None;
            if config.prove {
                if config.mode != Mode::History {
                    bail!("--prove needs --mode history");
                }
                let (shape, pk) = crate::prover::proving_key(&config.genesis, &config.zkp_cache)?;
                let (tx, rx) = watch::channel(crate::prover::ProverStatus::default());
                prover_status = Some(rx);
                tasks.push(tokio::spawn(crate::prover::run(net.clone(), chain.clone(), shape, pk, tx)));
            }
            if config.mode == Mode::History
                && let Some((zkp, verifier)) = config.genesis.zkp.as_ref().zip(light_config.zkp.as_ref())
            {
                tasks.push(tokio::spawn(crate::prover::receive(
                    net.clone(),
                    chain.clone(),
                    verifier.verifier.0.clone(),
                    u32::from(zkp.handoffs),
                )));
            }
            if let Some(producer) = config.produce.clone() {
                tasks.push(tokio::spawn(produce(
                    net.clone(),
                    chain.clone(),
                    Producer::new(producer),
                    config.block_interval,
                    production_rx,
                )));
            }
            // History Macro Sync: a node behind (or empty) rebuilds the chain and its history from
            // history peers; one that is synced finds nothing new and goes live at once.
            let macro_sync = HistoryMacroSync::new(net.clone(), chain.clone().into(), HistoryConfig::default());
            let live = block_live_sync(net.clone(), chain.clone(), live_config);
            let syncer = Syncer::new(net.clone(), chain.clone(), macro_sync, live, syncer_config);
            tasks.push(tokio::spawn(drive(syncer, chain, net, status_tx, started, prover_status, config.min_peers)));
        }
        Mode::Light | Mode::Pico => {
            let anchor = match config.checkpoint {
                Some((number, hash)) => Some(fetch_anchor(&net, number, hash).await?),
                None => None,
            };
            let light = open_light_chain(config.mode, &config.genesis, anchor, &config.data_dir.join("light.bin"))?;
            let chain = Arc::new(Mutex::new(light));
            tasks.push(tokio::spawn(petrel_consensus::handlers::serve_light_chain(net.clone(), chain.clone())));
            let live = block_live_sync(net.clone(), chain.clone(), live_config);
            if config.mode == Mode::Pico {
                let pico_config = PicoConfig { zkp: light_config.zkp.clone(), ..PicoConfig::default() };
                let pico = PicoMacroSync::new(net.clone(), chain.clone(), pico_config);
                let either = EitherSyncer::new(pico, chain.clone(), net.clone(), light_config);
                let syncer = Syncer::new(net.clone(), chain.clone(), either, live, syncer_config);
                tasks.push(tokio::spawn(drive(syncer, chain, net, status_tx, started, None, config.min_peers)));
            } else {
                let light = LightMacroSync::new(net.clone(), chain.clone(), light_config);
                let syncer = Syncer::new(net.clone(), chain.clone(), light, live, syncer_config);
                tasks.push(tokio::spawn(drive(syncer, chain, net, status_tx, started, None, config.min_peers)));
            }
        }
    }
    Ok(NodeHandle { mode: config.mode, peer_id, short_id, listen_addrs, status, production, tasks, _lock: lock })
}

/// Light sync's settings: with the network's proof verifier when the genesis has a `[zkp]`
/// section.
fn light_config(genesis: &GenesisConfig) -> Result<LightConfig> {
    let Some(zkp) = &genesis.zkp else { return Ok(LightConfig::default()) };
    let verifier = petrel_zkp::proof::Verifier::from_bytes(&zkp.verifying_key_bytes()?)
        .context("the genesis config's zkp verifying key does not decode")?;
    Ok(LightConfig {
        zkp: Some(ZkpLightConfig {
            verifier: VerifierHandle(Arc::new(verifier)),
            max_segments: petrel_protocol::MAX_ZKP_SEGMENTS,
            handoffs: zkp.handoffs,
        }),
        ..LightConfig::default()
    })
}

/// Fetches the configured checkpoint election block from the first peer that has it.
async fn fetch_anchor<N: Network>(net: &N, number: u32, hash: Blake2bHash) -> Result<MacroBlock> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        // Only peers that serve macro blocks (asking a light peer would cost us a penalty).
        for (peer, _) in net
            .peers()
            .into_iter()
            .filter(|(_, i)| i.services.contains(<RequestBlock as petrel_network_api::Request>::SERVICES))
        {
            if let Ok(Ok(Block::Macro(b))) = net.request(peer, &RequestBlock { hash, include_body: false }).await
                && b.hash() == hash
            {
                if b.block_number() != number || !b.is_election() {
                    bail!(
                        "checkpoint {hash} is block {} (election: {}), not election block {number}",
                        b.block_number(),
                        b.is_election()
                    );
                }
                return Ok(b);
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    bail!("no peer served the checkpoint block {number} ({hash}) within 60 s")
}

async fn drive<N, C, M, L>(
    mut syncer: Syncer<Counting<N>, C, M, L>,
    chain: C,
    net: Counting<N>,
    status: watch::Sender<NodeStatus>,
    started: Instant,
    prover: Option<watch::Receiver<crate::prover::ProverStatus>>,
    min_peers: usize,
) where
    N: Network,
    C: SyncChain,
    M: petrel_sync_api::MacroSync,
    L: petrel_sync_api::LiveSync,
{
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut fell_back = false;
    let mut established_after = None;
    let mut established_head = None;
    let start_head = chain.head().block_number;
    // Macro sync's last verdict per peer (pruned to the connected peers at each status).
    let mut verdicts: std::collections::HashMap<petrel_network_api::PeerId, &'static str> = Default::default();
    loop {
        tokio::select! {
            event = syncer.next() => {
                let Some(event) = event else { return };
                match &event {
                    ConsensusEvent::Established => {
                        established_after.get_or_insert(started.elapsed().as_secs_f64());
                        established_head.get_or_insert(chain.head().block_number);
                    }
                    ConsensusEvent::FellBack => fell_back = true,
                    ConsensusEvent::Verdict(v) => {
                        tracing::debug!(target: "consensus", ?v, "macro sync verdict");
                        verdicts.insert(v.peer(), v.name());
                    }
                    ConsensusEvent::Lost => tracing::warn!(target: "consensus", "consensus lost"),
                    ConsensusEvent::Live(_) => {}
                }
            }
            _ = tick.tick() => {}
        }
        let head: HeadInfo = chain.head();
        let connected = net.peers();
        verdicts.retain(|p, _| connected.iter().any(|(c, _)| c == p));
        let mut peers: Vec<PeerStatus> = connected
            .iter()
            .map(|(p, info)| PeerStatus {
                id: p.to_string(),
                class: info.services.class(),
                last_verdict: verdicts.get(p).copied(),
            })
            .collect();
        peers.sort_by(|a, b| a.id.cmp(&b.id));
        let mut next = NodeStatus {
            head_number: head.block_number,
            head_hash: head.block_hash,
            macro_head_number: chain.macro_head_number(),
            macro_head_hash: head.macro_hash,
            established: syncer.is_established(),
            established_after_secs: established_after,
            start_head_number: start_head,
            established_head_number: established_head,
            live_peers: petrel_sync_api::LiveSync::num_peers(syncer.live()),
            connected_peers: connected.len(),
            traffic: net.traffic(),
            fell_back,
            sync_target_number: petrel_sync_api::MacroSync::target(syncer.macro_sync()),
            proofs: petrel_sync_api::MacroSync::proof_stats(syncer.macro_sync()).map(|p| ProofStatus {
                requests: p.requests,
                segments_verified: p.segments_verified,
                bytes: p.bytes,
                verify_ms: p.verify_micros as f64 / 1e3,
                proven_epoch: p.proven_epoch,
            }),
            prover: prover.as_ref().map(|p| *p.borrow()),
            macro_sync_peers: petrel_sync_api::MacroSync::num_peers(syncer.macro_sync()),
            waiting_on: String::new(),
            peers,
        };
        next.waiting_on = waiting_on(&next, min_peers);
        status.send_replace(next);
    }
}

/// Produces a block every `interval` on top of the store and gossips it on both block topics.
async fn produce<N: Network>(
    net: N,
    chain: Arc<RwLock<Blockchain>>,
    producer: Producer,
    interval: Duration,
    mut paused: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if *paused.borrow_and_update() {
            continue;
        }
        let block = {
            let mut guard = chain.write().unwrap_or_else(|e| e.into_inner());
            let mut scratch = guard.state().clone();
            let block = match producer.produce(&mut scratch) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(target: "producer", error = %e, "cannot produce; stopping production");
                    return;
                }
            };
            if let Err(e) = guard.push(block.clone()) {
                tracing::error!(target: "producer", error = %e, "own block refused; stopping production");
                return;
            }
            block
        };
        tracing::debug!(target: "producer", number = block.block_number(), "produced");
        // Nobody subscribed yet is not an error for a producer.
        let _ = net.publish::<FullBlocks>(&block).await;
        let _ = net.publish::<BlockHeaders>(&block.without_body()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_task_is_reported_not_swallowed() {
        let mut tasks = vec![tokio::spawn(std::future::pending::<()>()), tokio::spawn(async { panic!("boom") })];
        let ended = first_task_end(&mut tasks).await;
        assert_eq!(ended, "node task 1 panicked: boom");
        tasks[0].abort();
    }

    /// What a pico node adopted on trust is not trusted by a light node on the same directory;
    /// a pico node keeps it.
    #[test]
    fn light_mode_drops_an_election_block_pico_adopted_on_trust() {
        let producer = petrel_producer::Producer::new(petrel_producer::ProducerConfig {
            validators: 4,
            accounts: 8,
            ..Default::default()
        });
        let genesis = producer.genesis(9, 1_700_000_000_000, petrel_primitives::Policy::TEST);
        let mut state = Blockchain::open(
            &tempfile::tempdir().unwrap().path().join("c.redb"),
            &genesis,
            ChainOptions { durable: false, ..Default::default() },
        )
        .unwrap()
        .state()
        .clone();
        let mut election = None;
        while election.is_none() {
            let block = producer.produce(&mut state.clone()).unwrap();
            state.apply_block(block.clone()).unwrap();
            if let petrel_primitives::Block::Macro(m) = block
                && m.is_election()
            {
                election = Some(m);
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("light.bin");
        {
            let mut pico = open_light_chain(Mode::Pico, &genesis, None, &path).unwrap();
            pico.push_election_pico(election.clone().unwrap()).unwrap();
            assert!(pico.is_optimistic());
        }
        let pico = open_light_chain(Mode::Pico, &genesis, None, &path).unwrap();
        assert!(pico.is_optimistic(), "a pico node keeps its own trust");
        drop(pico);
        let light = open_light_chain(Mode::Light, &genesis, None, &path).unwrap();
        assert!(!light.is_optimistic());
        assert_eq!(light.head().block_number, 0, "back to the anchor");
        drop(light);
        let again = open_light_chain(Mode::Light, &genesis, None, &path).unwrap();
        assert_eq!(again.head().block_number, 0, "and saved so");
    }

    #[test]
    fn a_data_dir_is_held_by_one_node_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path()).expect("free");
        let err = DataDirLock::acquire(dir.path()).err().expect("held").to_string();
        assert!(err.contains("another petrel process is using"), "{err}");
        drop(first);
        DataDirLock::acquire(dir.path()).expect("free again once the first is gone");
    }
}
