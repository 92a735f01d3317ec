//! A deterministic network simulation on the mock network (virtual time): many nodes of the four
//! types sync a served chain from genesis through seeds, adversaries and each other, with latency,
//! loss and churn. Shared by the small `tests/tests/sim.rs` and the `sim` bench
//! (`cargo xtask sim`).
//!
//! - **Seeds**: history nodes serving the reference chain (honest, not syncing).
//! - **Adversaries**: scripted nodes advertising a history node's services, in turn: silent,
//!   garbage, `Busy` forever, and liars (a made-up head whose blocks they cannot show).
//! - **Honest syncing nodes**, the rest, in turn pico, light, history and full: each is a
//!   consensus `Syncer` (macro sync of its kind, block live sync, the established rule with 3 live
//!   peers) over its own mock network, serving what its chain can (history and full nodes every
//!   request type, light and pico nodes their head). Each connects to `peers_per_node` random
//!   others (seeds, adversaries, and honest nodes made before it), at least two of them seeds.
//! - **Churn**: every 10 s for the first minute, a share of the honest nodes loses all its
//!   connections and, 10 s later, connects to fresh random peers.
//!
//! Every honest node must become established and end with the reference chain's macro head (and,
//! history and full nodes, its head) before the deadline; the report gives time-to-established
//! percentiles per kind, and requests and bytes per node.

#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::StreamExt;
use petrel_blockchain::{Blockchain, ChainOptions, LightBlockchain};
use petrel_consensus::handlers::{HandlerConfig, serve_full_chain, serve_light_chain};
use petrel_consensus::{ConsensusEvent, EstablishedConfig, LiveConfig, Syncer, SyncerConfig, block_live_sync};
use petrel_network_api::{Network, PeerId, Request, Services};
use petrel_network_mock::{HubConfig, MockHub, MockNetwork, ScriptedReply};
use petrel_primitives::Blake2bHash;
use petrel_protocol::*;
use petrel_sync_history::driver::HistoryMacroSync;
use petrel_sync_history::machine::HistoryConfig;
use petrel_sync_light::{LightConfig, LightMacroSync};
use petrel_sync_pico::{EitherSyncer, PicoConfig, PicoMacroSync};
use petrel_test_utils::{TestChain, serve};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// What to simulate.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Nodes in all: seeds, adversaries and honest syncing nodes.
    pub nodes: usize,
    /// Share of adversaries, in percent of `nodes`.
    pub adversarial_percent: usize,
    /// Seeds (honest history nodes serving the chain).
    pub seeds: usize,
    /// Epochs of the reference chain (plus half a batch).
    pub epochs: usize,
    /// Connections each syncing node opens.
    pub peers_per_node: usize,
    /// Share of honest nodes churned (over the first minute), in percent.
    pub churn_percent: usize,
    /// One-way latency and its jitter, and the loss probability of requests and gossip.
    pub latency: Duration,
    pub jitter: Duration,
    pub loss: f64,
    /// Virtual time by which every honest node must be established on the reference chain.
    pub deadline: Duration,
    /// Seeds every random choice.
    pub seed: u64,
}

impl SimConfig {
    /// The scale: 1,000 nodes, 20 % adversarial.
    pub fn full() -> Self {
        Self {
            nodes: 1000,
            adversarial_percent: 20,
            seeds: 20,
            epochs: 6,
            peers_per_node: 8,
            churn_percent: 10,
            latency: Duration::from_millis(50),
            jitter: Duration::from_millis(30),
            loss: 0.01,
            deadline: Duration::from_secs(1800),
            seed: 7,
        }
    }

    /// A small version for `cargo test`.
    pub fn small() -> Self {
        Self { nodes: 60, seeds: 4, epochs: 3, ..Self::full() }
    }
}

/// A kind of honest syncing node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Pico,
    Light,
    History,
    Full,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Pico, Kind::Light, Kind::History, Kind::Full];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Pico => "pico",
            Kind::Light => "light",
            Kind::History => "history",
            Kind::Full => "full",
        }
    }

    fn services(self) -> Services {
        match self {
            Kind::Pico | Kind::Light => Services::NONE,
            Kind::History => Services::HISTORY_NODE,
            Kind::Full => Services::FULL_NODE,
        }
    }
}

/// What one honest node did.
#[derive(Clone, Debug)]
pub struct NodeResult {
    pub kind: Kind,
    /// Virtual time from the start to its first "established".
    pub established_after: Option<Duration>,
    /// Whether it was established at the end.
    pub established_at_end: bool,
    /// Whether it ended on the reference chain.
    pub correct: bool,
    pub churned: bool,
    pub requests: u64,
    pub bytes_received: u64,
    /// Honest nodes (seeds included) it banned at the end.
    pub honest_banned: usize,
}

/// The outcome of a run.
#[derive(Debug)]
pub struct SimReport {
    pub config: SimConfig,
    pub honest: Vec<NodeResult>,
    pub adversaries: usize,
    /// Virtual time until every honest node was established (or the deadline).
    pub virtual_time: Duration,
}

impl SimReport {
    /// The honest nodes that never became established or ended on another chain.
    ///
    /// (Being established *at the end* is reported, not required: a churned node that
    /// reconnected to peers most of which it then banned may stay below the 3 live peers the rule
    /// asks for, since the mock network has no peer discovery to find others.)
    pub fn failures(&self) -> Vec<&NodeResult> {
        self.honest.iter().filter(|r| r.established_after.is_none() || !r.correct).collect()
    }

    /// Time-to-established percentiles (p50, p90, p99, max) of one kind, in seconds.
    pub fn percentiles(&self, kind: Kind) -> Option<[f64; 4]> {
        let mut t: Vec<f64> = self
            .honest
            .iter()
            .filter(|r| r.kind == kind)
            .filter_map(|r| r.established_after.map(|d| d.as_secs_f64()))
            .collect();
        if t.is_empty() {
            return None;
        }
        t.sort_by(f64::total_cmp);
        let at = |p: f64| t[((p * (t.len() - 1) as f64).round() as usize).min(t.len() - 1)];
        Some([at(0.5), at(0.9), at(0.99), t[t.len() - 1]])
    }

    /// Mean requests and bytes received per node of one kind.
    pub fn traffic(&self, kind: Kind) -> (f64, f64) {
        let of: Vec<_> = self.honest.iter().filter(|r| r.kind == kind).collect();
        let n = of.len().max(1) as f64;
        (
            of.iter().map(|r| r.requests as f64).sum::<f64>() / n,
            of.iter().map(|r| r.bytes_received as f64).sum::<f64>() / n,
        )
    }

    /// A table for humans.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{} nodes: {} seeds, {} adversaries, {} honest syncing ({} churned, {} established at the end); virtual time {:.1} s\n",
            self.config.nodes,
            self.config.seeds,
            self.adversaries,
            self.honest.len(),
            self.honest.iter().filter(|r| r.churned).count(),
            self.honest.iter().filter(|r| r.established_at_end).count(),
            self.virtual_time.as_secs_f64()
        );
        out.push_str(&format!("honest nodes banned by honest nodes: {}\n", self.honest_bans()));
        out.push_str("kind     nodes  established  p50 s   p90 s   p99 s   max s   requests/node  KB/node\n");
        for kind in Kind::ALL {
            let n = self.honest.iter().filter(|r| r.kind == kind).count();
            let ok = self.honest.iter().filter(|r| r.kind == kind && r.established_after.is_some()).count();
            let p = self.percentiles(kind).unwrap_or([f64::NAN; 4]);
            let (req, bytes) = self.traffic(kind);
            out.push_str(&format!(
                "{:<8} {n:>5}  {ok:>11}  {:>6.1}  {:>6.1}  {:>6.1}  {:>6.1}  {req:>13.0}  {:>7.1}\n",
                kind.name(),
                p[0],
                p[1],
                p[2],
                p[3],
                bytes / 1e3
            ));
        }
        out
    }

    /// Honest nodes banned by honest nodes at the end (pairs).
    pub fn honest_bans(&self) -> usize {
        self.honest.iter().map(|r| r.honest_banned).sum()
    }

    /// One JSON object.
    pub fn json(&self) -> serde_json::Value {
        let kinds: Vec<_> = Kind::ALL
            .iter()
            .map(|&k| {
                let p = self.percentiles(k);
                let (req, bytes) = self.traffic(k);
                serde_json::json!({
                    "kind": k.name(),
                    "nodes": self.honest.iter().filter(|r| r.kind == k).count(),
                    "established": self.honest.iter().filter(|r| r.kind == k && r.established_after.is_some()).count(),
                    "secs_p50": p.map(|p| p[0]), "secs_p90": p.map(|p| p[1]), "secs_p99": p.map(|p| p[2]), "secs_max": p.map(|p| p[3]),
                    "requests_per_node": req, "bytes_per_node": bytes,
                })
            })
            .collect();
        serde_json::json!({
            "nodes": self.config.nodes, "seeds": self.config.seeds, "adversaries": self.adversaries,
            "honest": self.honest.len(), "virtual_secs": self.virtual_time.as_secs_f64(),
            "failures": self.failures().len(), "kinds": kinds,
            "established_at_end": self.honest.iter().filter(|r| r.established_at_end).count(),
            "churned": self.honest.iter().filter(|r| r.churned).count(),
            "honest_bans": self.honest_bans(),
        })
    }
}

/// An honest node's chain, to check at the end.
enum NodeChain {
    Light(Arc<Mutex<LightBlockchain>>),
    Full(Arc<RwLock<Blockchain>>),
}

struct Honest {
    kind: Kind,
    net: MockNetwork,
    chain: NodeChain,
    established: Arc<AtomicU64>,
    /// Established now (after the last Established or Lost).
    now: Arc<std::sync::atomic::AtomicBool>,
    churned: bool,
}

const NOT_YET: u64 = u64::MAX;

/// Runs `syncer` for good, recording (in ms of virtual time since `start`) its first
/// "established", and whether it is established now.
fn drive<S>(
    mut syncer: S,
    start: tokio::time::Instant,
    established: Arc<AtomicU64>,
    now: Arc<std::sync::atomic::AtomicBool>,
) where
    S: futures::Stream<Item = ConsensusEvent> + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        while let Some(event) = syncer.next().await {
            match event {
                ConsensusEvent::Established => {
                    let ms = start.elapsed().as_millis() as u64;
                    let _ = established.compare_exchange(NOT_YET, ms, Ordering::Relaxed, Ordering::Relaxed);
                    now.store(true, Ordering::Relaxed);
                }
                ConsensusEvent::Lost => now.store(false, Ordering::Relaxed),
                _ => {}
            }
        }
    });
}

fn syncer_config(policy: &petrel_primitives::Policy) -> SyncerConfig {
    let mut c = SyncerConfig::for_batch(policy.blocks_per_batch);
    c.established = EstablishedConfig { min_peers: 3, ..Default::default() };
    c
}

/// Starts an honest node of `kind` on `net`.
fn start_honest(
    kind: Kind,
    net: &MockNetwork,
    reference: &TestChain,
    dir: &std::path::Path,
    start: tokio::time::Instant,
) -> Honest {
    let policy = reference.genesis.policy;
    let live_config = LiveConfig::for_batch(policy.blocks_per_batch);
    let established = Arc::new(AtomicU64::new(NOT_YET));
    let now = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let chain = match kind {
        Kind::Pico | Kind::Light => {
            let chain =
                Arc::new(Mutex::new(LightBlockchain::new(&reference.genesis, None, None).expect("light chain")));
            tokio::spawn(serve_light_chain(net.clone(), chain.clone()));
            let live = block_live_sync(net.clone(), chain.clone(), live_config);
            if kind == Kind::Pico {
                let pico = PicoMacroSync::new(net.clone(), chain.clone(), PicoConfig::default());
                let either = EitherSyncer::new(pico, chain.clone(), net.clone(), LightConfig::default());
                let syncer = Syncer::new(net.clone(), chain.clone(), either, live, syncer_config(&policy));
                drive(syncer, start, established.clone(), now.clone());
            } else {
                let light = LightMacroSync::new(net.clone(), chain.clone(), LightConfig::default());
                let syncer = Syncer::new(net.clone(), chain.clone(), light, live, syncer_config(&policy));
                drive(syncer, start, established.clone(), now.clone());
            }
            NodeChain::Light(chain)
        }
        Kind::History | Kind::Full => {
            let options = ChainOptions { durable: false, cache_bytes: 1 << 20, ..ChainOptions::default() };
            let chain = Blockchain::open(&dir.join(format!("{}.redb", net.peer_id())), &reference.genesis, options)
                .expect("a fresh store");
            let chain = Arc::new(RwLock::new(chain));
            tokio::spawn(serve_full_chain(net.clone(), chain.clone(), HandlerConfig::default()));
            let macro_sync = HistoryMacroSync::new(net.clone(), chain.clone().into(), HistoryConfig::default());
            let live = block_live_sync(net.clone(), chain.clone(), live_config);
            let syncer = Syncer::new(net.clone(), chain.clone(), macro_sync, live, syncer_config(&policy));
            drive(syncer, start, established.clone(), now.clone());
            NodeChain::Full(chain)
        }
    };
    Honest { kind, net: net.clone(), chain, established, now, churned: false }
}

/// An adversary's script, by its number.
fn adversary(hub: &MockHub, i: usize) -> MockNetwork {
    let fake = Blake2bHash::digest(&i.to_le_bytes());
    let head = ResponseHead { block_number: 1_000_000, block_hash: fake, macro_hash: fake, election_hash: fake };
    let script = move |_: PeerId, type_id: u16, _: Vec<u8>| match i % 4 {
        0 => ScriptedReply::Silence,
        1 => ScriptedReply::Frame(vec![0, 0xff, 0xfe, 0xfd]),
        2 => ScriptedReply::Frame(vec![petrel_network_api::ResponseStatus::Busy as u8]),
        // A liar: a head far ahead whose blocks it cannot show.
        _ => match type_id {
            RequestHead::TYPE_ID => ScriptedReply::ok::<RequestHead>(&head),
            RequestBlock::TYPE_ID => ScriptedReply::ok::<RequestBlock>(&Err(BlockRequestError::TargetHashNotFound)),
            RequestMacroChain::TYPE_ID => {
                ScriptedReply::ok::<RequestMacroChain>(&Ok(MacroChain { epochs: vec![fake], checkpoint: None }))
            }
            _ => ScriptedReply::Silence,
        },
    };
    hub.scripted_node(Services::HISTORY_NODE, script).network().clone()
}

/// Connects `node` to `count` distinct random peers of `pool` (at least two seeds).
fn connect_randomly(
    hub: &MockHub,
    rng: &mut ChaCha8Rng,
    node: PeerId,
    seeds: &[PeerId],
    pool: &[PeerId],
    count: usize,
) {
    let mut chosen: Vec<PeerId> = seeds.choose_multiple(rng, 2.min(seeds.len())).copied().collect();
    let mut candidates: Vec<PeerId> = pool.iter().copied().filter(|p| *p != node && !chosen.contains(p)).collect();
    candidates.shuffle(rng);
    chosen.extend(candidates.into_iter().take(count.saturating_sub(chosen.len())));
    for p in chosen {
        let _ = hub.connect(node, p);
    }
}

/// Runs the simulation (call on a runtime with a paused clock).
pub async fn run(config: SimConfig) -> SimReport {
    let reference = TestChain::build(3, 8 * config.epochs + 4);
    let served_macro = reference.chain.read().expect("lock").head().macro_hash;
    let served_head = reference.chain.read().expect("lock").head().block_hash;
    let hub = MockHub::new(HubConfig {
        seed: config.seed,
        latency: config.latency,
        jitter: config.jitter,
        loss: config.loss,
        promises: petrel_protocol::PROMISES,
        ..Default::default()
    });
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let start = tokio::time::Instant::now();

    let seeds: Vec<MockNetwork> = (0..config.seeds).map(|_| serve(&hub, &reference, Services::HISTORY_NODE)).collect();
    let seed_ids: Vec<PeerId> = seeds.iter().map(|s| s.peer_id()).collect();
    let adversaries: Vec<MockNetwork> =
        (0..config.nodes * config.adversarial_percent / 100).map(|i| adversary(&hub, i)).collect();
    let mut pool: Vec<PeerId> = seed_ids.clone();
    pool.extend(adversaries.iter().map(|a| a.peer_id()));
    let honest_count = config.nodes.saturating_sub(config.seeds + adversaries.len());
    let mut honest: Vec<Honest> = Vec::with_capacity(honest_count);
    for i in 0..honest_count {
        let kind = Kind::ALL[i % 4];
        let net = hub.node(kind.services());
        let node = start_honest(kind, &net, &reference, dir.path(), start);
        connect_randomly(&hub, &mut rng, net.peer_id(), &seed_ids, &pool, config.peers_per_node);
        pool.push(net.peer_id());
        honest.push(node);
        // Nodes arrive over time (100 per virtual second), not all in the same instant.
        if i % 100 == 99 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    // Churn: six waves, 10 s apart; each node out for 10 s, then back with fresh peers.
    let per_wave = (honest_count * config.churn_percent).div_ceil(600);
    for _wave in 0..6 {
        tokio::time::sleep(Duration::from_secs(10)).await;
        let victims: Vec<usize> =
            (0..honest.len()).collect::<Vec<_>>().choose_multiple(&mut rng, per_wave).copied().collect();
        for &v in &victims {
            let id = honest[v].net.peer_id();
            for (p, _) in honest[v].net.peers() {
                hub.disconnect(id, p);
            }
            honest[v].churned = true;
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
        for &v in &victims {
            let id = honest[v].net.peer_id();
            connect_randomly(&hub, &mut rng, id, &seed_ids, &pool, config.peers_per_node);
        }
    }

    // Until every honest node is established on the reference chain, or the deadline.
    let correct = |h: &Honest| match &h.chain {
        NodeChain::Light(c) => c.lock().expect("lock").macro_head().hash() == served_macro,
        NodeChain::Full(c) => {
            let c = c.read().expect("lock");
            c.head().macro_hash == served_macro && c.head().block_hash == served_head
        }
    };
    loop {
        // Every node established (at least once) on the reference chain.
        let done = honest.iter().all(|h| h.established.load(Ordering::Relaxed) != NOT_YET && correct(h));
        if done || start.elapsed() >= config.deadline {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let virtual_time = start.elapsed();
    let honest_ids: Vec<PeerId> =
        honest.iter().map(|h| h.net.peer_id()).chain(seeds.iter().map(|s| s.peer_id())).collect();
    let results = honest
        .iter()
        .map(|h| {
            let ms = h.established.load(Ordering::Relaxed);
            let stats = h.net.stats();
            NodeResult {
                kind: h.kind,
                established_after: (ms != NOT_YET).then(|| Duration::from_millis(ms)),
                established_at_end: h.now.load(Ordering::Relaxed),
                correct: correct(h),
                churned: h.churned,
                requests: stats.requests_sent,
                bytes_received: stats.bytes_received,
                honest_banned: honest_ids.iter().filter(|p| h.net.is_banned(p)).count(),
            }
        })
        .collect();
    let adversary_count = adversaries.len();
    drop((seeds, adversaries));
    SimReport { config, honest: results, adversaries: adversary_count, virtual_time }
}
