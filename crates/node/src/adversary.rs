//! `petrel adversary`: peers that speak the protocol over libp2p and misbehave, for testing nodes
//! against them (docs/adversary.md lists the catalogue and what each node type does about it).
//!
//! Each identity is its own libp2p node (a fresh key) that dials the given peers, advertises a
//! history node's services so that it is asked for things, and follows one behaviour of the
//! catalogue (identities take the behaviours in turn). It runs for `--duration-secs`, then prints
//! a summary. Everything it keeps is bounded: held requests, queued gossip, its own requests.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use petrel_network_api::{
    DisconnectReason, InboundRequest, Network, NetworkExt, PeerId, Request, ResponseStatus, Services, Topic,
};
use petrel_network_libp2p::{Libp2pConfig, Libp2pNetwork};
use petrel_primitives::{Blake2bHash, Block, GenesisConfig, MacroBlock, codec};
use petrel_producer::{Producer, ProducerConfig};
use petrel_protocol::*;
use rand::{Rng, RngCore};

/// Requests held unanswered by a silent identity, at most (the oldest are dropped).
const MAX_HELD: usize = 1024;
/// How often active behaviours act.
const PACE: Duration = Duration::from_millis(250);

/// One entry of the catalogue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Behaviour {
    /// Announces a head far ahead; cannot show its blocks; a macro chain of made-up hashes.
    LieHead,
    /// Serves an election block naming validators it invented, signed by them, as its head.
    ForgedElection,
    /// Serves a real election block under a wrong block number (another epoch), re-signed.
    WrongEpoch,
    /// Publishes undecodable bytes and headers with random parents on the block topics.
    JunkGossip,
    /// Republishes the blocks it receives with their justification or body altered.
    MutatedCopies,
    /// Never answers a request.
    Silent,
    /// Answers every request `Busy`, 9 s late.
    Slow,
    /// Answers frames that do not decode.
    Garbage,
    /// Sends requests of unknown type ids and requests over their type's size limit.
    BadRequests,
    /// Floods its peers with head requests, over their rate limit.
    RequestFlood,
    /// Disconnects from its peers every 2 s (they are redialled).
    ReconnectStorm,
}

impl Behaviour {
    pub(crate) const ALL: [Behaviour; 11] = [
        Behaviour::LieHead,
        Behaviour::ForgedElection,
        Behaviour::WrongEpoch,
        Behaviour::JunkGossip,
        Behaviour::MutatedCopies,
        Behaviour::Silent,
        Behaviour::Slow,
        Behaviour::Garbage,
        Behaviour::BadRequests,
        Behaviour::RequestFlood,
        Behaviour::ReconnectStorm,
    ];

    fn name(self) -> &'static str {
        match self {
            Behaviour::LieHead => "lie-head",
            Behaviour::ForgedElection => "forged-election",
            Behaviour::WrongEpoch => "wrong-epoch",
            Behaviour::JunkGossip => "junk-gossip",
            Behaviour::MutatedCopies => "mutated-copies",
            Behaviour::Silent => "silent",
            Behaviour::Slow => "slow",
            Behaviour::Garbage => "garbage",
            Behaviour::BadRequests => "bad-requests",
            Behaviour::RequestFlood => "request-flood",
            Behaviour::ReconnectStorm => "reconnect-storm",
        }
    }
}

/// What an identity did.
#[derive(Default)]
struct Counts {
    answered: AtomicU64,
    sent: AtomicU64,
    published: AtomicU64,
}

/// Runs `petrel adversary`.
pub(crate) fn run(args: &crate::cli::AdversaryArgs) -> Result<()> {
    if args.peer.is_empty() {
        bail!("--peer is required (the nodes to attack)");
    }
    let genesis = GenesisConfig::load(&args.genesis)
        .with_context(|| format!("cannot load the genesis {}", args.genesis.display()))?;
    let behaviours: Vec<Behaviour> =
        if args.behaviour.is_empty() { Behaviour::ALL.to_vec() } else { args.behaviour.clone() };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let mut identities = Vec::new();
        for i in 0..usize::from(args.identities) {
            let behaviour = behaviours[i % behaviours.len()];
            let mut config = Libp2pConfig::random();
            config.genesis_hash = genesis.genesis_hash()?;
            config.services = Services::HISTORY_NODE;
            config.bootstrap = args.peer.clone();
            config.listen = vec!["/ip4/127.0.0.1/tcp/0".into()];
            config.redial_max_backoff = Duration::from_secs(5);
            let (net, event_loop) = Libp2pNetwork::new(config).context("cannot start an identity's network")?;
            tokio::spawn(event_loop.run());
            let counts = Arc::new(Counts::default());
            tokio::spawn(act(net.clone(), behaviour, genesis.clone(), counts.clone()));
            identities.push((behaviour, net, counts));
        }
        let ids: Vec<_> = identities.iter().map(|(b, n, _)| (b.name(), n.local_peer_id().to_string())).collect();
        if args.json {
            println!("{}", serde_json::json!({ "event": "started", "identities": ids }));
        } else {
            for (b, id) in &ids {
                println!("{id}: {b}");
            }
        }
        tokio::time::sleep(Duration::from_secs(args.duration_secs)).await;
        let summary: Vec<_> = identities
            .iter()
            .map(|(b, n, c)| {
                serde_json::json!({
                    "behaviour": b.name(),
                    "peers": n.peers().len(),
                    "answered": c.answered.load(Ordering::Relaxed),
                    "sent": c.sent.load(Ordering::Relaxed),
                    "published": c.published.load(Ordering::Relaxed),
                })
            })
            .collect();
        println!("{}", serde_json::json!({ "event": "done", "identities": summary }));
        Ok::<_, anyhow::Error>(())
    })
}

/// What a lying identity shows as its head, and the blocks behind it.
struct Lie {
    head: ResponseHead,
    blocks: Vec<MacroBlock>,
}

/// Builds the lie of `behaviour` from an honest peer's election block, if it needs one.
async fn lie<N: Network>(net: &N, behaviour: Behaviour, genesis: &GenesisConfig) -> Option<Lie> {
    let fake = Blake2bHash::digest(&rand::thread_rng().r#gen::<[u8; 32]>());
    match behaviour {
        Behaviour::LieHead => Some(Lie {
            head: ResponseHead { block_number: 10_000_000, block_hash: fake, macro_hash: fake, election_hash: fake },
            blocks: Vec::new(),
        }),
        Behaviour::ForgedElection | Behaviour::WrongEpoch => {
            // An honest election block to forge from: the first peer that shows one.
            let template = 'found: loop {
                for (peer, info) in net.peers() {
                    if !info.services.contains(Services::MACRO_CHAIN) {
                        continue;
                    }
                    let Ok(head) = net.request(peer, &RequestHead).await else { continue };
                    if let Ok(Ok(Block::Macro(b))) =
                        net.request(peer, &RequestBlock { hash: head.election_hash, include_body: false }).await
                        && b.block_number() > 0
                    {
                        break 'found b;
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            };
            let policy = genesis.policy;
            let keys = Producer::new(ProducerConfig {
                seed: rand::thread_rng().r#gen(),
                validators: usize::from(policy.max_validators.clamp(1, 16)),
                ..ProducerConfig::default()
            });
            let mut forged = template.clone();
            let epoch = policy.epoch_at(forged.block_number());
            if behaviour == Behaviour::WrongEpoch {
                forged.header.block_number = policy.election_block_of(epoch + 3);
            }
            forged.header.validators = Some(keys.validators_for_epoch(epoch + 1, &policy));
            let invented = keys.validators_for_epoch(epoch, &policy);
            keys.sign_macro(&mut forged, &invented, &policy).ok()?;
            let hash = forged.hash();
            Some(Lie {
                head: ResponseHead {
                    block_number: forged.block_number(),
                    block_hash: hash,
                    macro_hash: hash,
                    election_hash: hash,
                },
                blocks: vec![forged],
            })
        }
        _ => None,
    }
}

/// Serves and acts as `behaviour`, for good.
async fn act<N: Network>(net: N, behaviour: Behaviour, genesis: GenesisConfig, counts: Arc<Counts>) {
    let lie = Arc::new(tokio::sync::OnceCell::new());
    {
        let (net, lie, genesis) = (net.clone(), lie.clone(), genesis.clone());
        tokio::spawn(async move {
            if let Some(l) = self::lie(&net, behaviour, &genesis).await {
                let _ = lie.set(l);
            }
        });
    }
    let held: Arc<std::sync::Mutex<VecDeque<InboundRequest>>> = Arc::default();
    for limits in request_limits() {
        let mut rx = net.receive_requests_raw(limits);
        let (lie, held, counts) = (lie.clone(), held.clone(), counts.clone());
        tokio::spawn(async move {
            while let Some(request) = rx.recv().await {
                counts.answered.fetch_add(1, Ordering::Relaxed);
                answer(behaviour, limits.type_id, request, lie.get(), &held);
            }
        });
    }
    active(net, behaviour, counts).await;
}

/// Answers (or holds) one request as `behaviour`.
fn answer(
    behaviour: Behaviour,
    type_id: u16,
    request: InboundRequest,
    lie: Option<&Lie>,
    held: &std::sync::Mutex<VecDeque<InboundRequest>>,
) {
    match behaviour {
        Behaviour::Silent => {
            let mut held = held.lock().unwrap_or_else(|e| e.into_inner());
            if held.len() >= MAX_HELD {
                held.pop_front();
            }
            held.push_back(request);
        }
        Behaviour::Slow => {
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(9)).await;
                let _ = request.respond(ResponseStatus::Busy, &[]);
            });
        }
        Behaviour::Garbage => drop(request.respond_frame(vec![0, 0xff, 0xfe, 0xfd])),
        Behaviour::LieHead | Behaviour::ForgedElection | Behaviour::WrongEpoch => {
            let _ = match lie.and_then(|l| lie_answer(l, type_id, &request.payload)) {
                Some(frame) => request.respond_frame(frame),
                None => request.respond(ResponseStatus::Busy, &[]),
            };
        }
        _ => drop(request.respond(ResponseStatus::Busy, &[])),
    }
}

/// The active part of a behaviour (gossip, requests, disconnects), every [`PACE`].
async fn active<N: Network>(net: N, behaviour: Behaviour, counts: Arc<Counts>) {
    // Received blocks to mutate (bounded) and a template for random-parent headers.
    let mut received = match behaviour {
        Behaviour::MutatedCopies | Behaviour::JunkGossip => {
            let headers = net.subscribe_raw(BlockHeaders::NAME, BlockHeaders::MAX_SIZE).await.ok();
            let full = net.subscribe_raw(FullBlocks::NAME, FullBlocks::MAX_SIZE).await.ok();
            Some((headers, full))
        }
        _ => None,
    };
    let mut last_block: Option<Block> = None;
    let mut tick = tokio::time::interval(PACE);
    let mut round = 0u64;
    loop {
        tick.tick().await;
        round += 1;
        // Drain what was gossiped to us (verdict Ignore: we judge nothing).
        let mut fresh = Vec::new();
        if let Some((headers, full)) = &mut received {
            for rx in [headers.as_mut(), full.as_mut()].into_iter().flatten() {
                while let Ok((data, _, id)) = rx.try_recv() {
                    net.validate(id, petrel_network_api::Verdict::Ignore);
                    if fresh.len() < 16
                        && let Ok(block) = codec::decode::<Block>(&data, FullBlocks::MAX_SIZE)
                    {
                        fresh.push(block);
                    }
                }
            }
        }
        if let Some(b) = fresh.last() {
            last_block = Some(b.clone());
        }
        let peers: Vec<PeerId> = net.peers().into_iter().map(|(p, _)| p).collect();
        match behaviour {
            Behaviour::JunkGossip => {
                let mut junk = vec![0u8; 200];
                rand::thread_rng().fill_bytes(&mut junk);
                for topic in [BlockHeaders::NAME, FullBlocks::NAME] {
                    if net.publish_raw(topic, junk.clone()).await.is_ok() {
                        counts.published.fetch_add(1, Ordering::Relaxed);
                    }
                }
                // A real block's header under a random parent: decodes, cannot connect.
                if let Some(mut b) = last_block.clone() {
                    let parent = Blake2bHash::digest(&rand::thread_rng().r#gen::<[u8; 32]>());
                    match &mut b {
                        Block::Macro(m) => {
                            m.header.parent_hash = parent;
                            m.header.block_number += 2;
                        }
                        Block::Micro(m) => {
                            m.header.parent_hash = parent;
                            m.header.block_number += 2;
                        }
                    }
                    publish_block(&net, &b, &counts).await;
                }
            }
            Behaviour::MutatedCopies => {
                for mut b in fresh {
                    match &mut b {
                        Block::Macro(m) => m.justification = None,
                        Block::Micro(m) => {
                            if m.body.is_some() {
                                m.body = Some(Default::default());
                            } else {
                                m.justification = None;
                            }
                        }
                    }
                    publish_block(&net, &b, &counts).await;
                }
            }
            Behaviour::BadRequests => {
                for &peer in &peers {
                    counts.sent.fetch_add(2, Ordering::Relaxed);
                    let _ = net.request_raw(peer, 60_999, vec![1, 2, 3], 64).await;
                    let _ = net.request_raw(peer, RequestHead::TYPE_ID, vec![0; 100], 256).await;
                }
            }
            Behaviour::RequestFlood => {
                let sends = peers.iter().flat_map(|&p| (0..25).map(move |_| p)).map(|p| {
                    counts.sent.fetch_add(1, Ordering::Relaxed);
                    net.request_raw(p, RequestHead::TYPE_ID, Vec::new(), 256)
                });
                futures::future::join_all(sends).await;
            }
            Behaviour::ReconnectStorm if round.is_multiple_of(8) => {
                for &peer in &peers {
                    net.disconnect(peer, DisconnectReason::Other).await;
                }
            }
            _ => {}
        }
    }
}

async fn publish_block<N: Network>(net: &N, block: &Block, counts: &Counts) {
    let Ok(bytes) = codec::encode(block) else { return };
    let topic = if block.has_body() { FullBlocks::NAME } else { BlockHeaders::NAME };
    if net.publish_raw(topic, bytes).await.is_ok() {
        counts.published.fetch_add(1, Ordering::Relaxed);
    }
}

/// The lie's answer to a request of `type_id` (an OK frame), if it has one.
fn lie_answer(lie: &Lie, type_id: u16, payload: &[u8]) -> Option<Vec<u8>> {
    let ok = |bytes: Vec<u8>| {
        let mut frame = vec![ResponseStatus::Ok as u8];
        frame.extend(bytes);
        frame
    };
    match type_id {
        RequestHead::TYPE_ID => codec::encode(&lie.head).ok().map(ok),
        RequestBlock::TYPE_ID => {
            let asked: RequestBlock = codec::decode(payload, RequestBlock::MAX_REQUEST_SIZE).ok()?;
            let answer: Result<Block, BlockRequestError> = lie
                .blocks
                .iter()
                .find(|b| b.hash() == asked.hash)
                .map(|b| Block::Macro(b.clone()))
                .ok_or(BlockRequestError::TargetHashNotFound);
            codec::encode(&answer).ok().map(ok)
        }
        RequestMacroChain::TYPE_ID => {
            let answer: Result<MacroChain, MacroChainError> =
                Ok(MacroChain { epochs: vec![lie.head.election_hash], checkpoint: None });
            codec::encode(&answer).ok().map(ok)
        }
        _ => None,
    }
}
