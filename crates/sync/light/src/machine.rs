//! The light-sync state machine (no I/O).
//!
//! Per peer: `RequestMacroChain` with our locators → the election hashes after our election head
//! and possibly a checkpoint. The first peer with something new opens a *round*: its hashes go
//! into an ordered fetch queue ([`SyncQueue`]) and every peer whose own answer lists the same
//! election chain joins the round as a fetcher, so several peers serve one download at once (a
//! peer on another chain waits for the round to end). Blocks are released strictly in order and
//! verified in batches by a job off the executor ([`LightWork::Push`]); when the round is done,
//! its peers are asked again until they have nothing new (Good).
//!
//! Rules (each has a unit test in `tests.rs`):
//! - a peer without the required services is Incompatible;
//! - an answer longer than asked, or a checkpoint at a height that cannot be one, bans the peer;
//! - a peer that does not know our locators is Outdated; a peer with nothing new is Good;
//! - an answer to a locator we have moved past is asked again;
//! - a block other than the one asked for, or at another height than its list gave, bans whoever
//!   listed it (the sender for an election block, which every fetcher listed; the round's first
//!   peer for the checkpoint, which only it listed); "not found" likewise, except that for the
//!   checkpoint of another peer's list it is only a failed fetch;
//! - a failed or timed-out fetch is retried on another peer of the round; a peer that fails
//!   `max_peer_failures` times in a row gets a minor penalty and is Outdated;
//! - a block whose justification fails bans its sender; a header that cannot follow ours bans
//!   whoever listed it; either ends the round (the others ask again);
//! - our own store failing ends the round with every peer Outdated (not their fault);
//! - an item no peer could deliver after `max_attempts` ends the round with its peers Outdated.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use petrel_blockchain::{LightError, MacroVerifier, PushResult};
use petrel_network_api::{PeerId, PenaltyReason, Request, RequestError, Services, Severity};
use petrel_primitives::{Blake2bHash, Block, MacroBlock};
use petrel_protocol::{
    AnyResponse, BlockRequestError, MAX_EPOCHS, MAX_ZKP_SEGMENTS, MacroChain, MacroChainError, RequestBlock,
    RequestMacroChain, RequestZkp, ZkpChain, ZkpSegment,
};
use petrel_sync_api::MacroSyncReturn;
use petrel_sync_api::light_chain::{LightView, SharedLightChain, lock};
use petrel_sync_api::machine::{Action, Input, JobId, Machine, PeerBook, RequestId, Time};
use petrel_sync_api::queue::{QueueConfig, QueueError, SyncQueue};
use petrel_zkp::chain::{ProofChainError, Proven, verify_chain};
use petrel_zkp::proof::Verifier;

/// Zero-knowledge light sync: the verifier of the network's segment proofs (from the genesis
/// config) and how many segments to ask for at once.
#[derive(Clone, Debug)]
pub struct ZkpLightConfig {
    /// The verifier.
    pub verifier: VerifierHandle,
    /// Most segments per `RequestZkp` (at most [`MAX_ZKP_SEGMENTS`]).
    pub max_segments: u16,
    /// Handoffs per segment (the genesis `K`): segments start at multiples of it, so proofs are
    /// asked for only from such an epoch.
    pub handoffs: u16,
}

impl ZkpLightConfig {
    /// Whether a proof chain can start at our election head (segments are cut every K epochs).
    pub fn can_start_at(&self, epoch: u32) -> bool {
        epoch.is_multiple_of(u32::from(self.handoffs.max(1)))
    }

    /// The segments asked per request.
    pub fn max(&self) -> u16 {
        self.max_segments.clamp(1, MAX_ZKP_SEGMENTS)
    }
}

/// A shared [`Verifier`], compared by its key's hash.
#[derive(Clone, Debug)]
pub struct VerifierHandle(pub Arc<Verifier>);

impl PartialEq for VerifierHandle {
    fn eq(&self, other: &Self) -> bool {
        self.0.key_hash() == other.0.key_hash()
    }
}

impl Eq for VerifierHandle {}

/// Settings.
#[derive(Clone, Debug)]
pub struct LightConfig {
    /// Services a peer must advertise.
    pub required_services: Services,
    /// Election hashes asked for per macro-chain request (at most [`MAX_EPOCHS`]).
    pub max_epochs: u16,
    /// The block fetch queue. Its window bounds memory: each block is a few KiB (header and
    /// justification) while it waits to be verified in order.
    pub queue: QueueConfig,
    /// Reset the light chain to its anchor before syncing if it rests on an election block taken
    /// on trust (the fallback from pico, which forgets what it adopted on trust; a verified chain
    /// is kept and synced on from).
    pub reset_first: bool,
    /// Ask peers that serve proofs for the proof chain first (zero-knowledge light sync).
    pub zkp: Option<ZkpLightConfig>,
}

impl Default for LightConfig {
    fn default() -> Self {
        Self {
            required_services: Services::MACRO_CHAIN,
            max_epochs: MAX_EPOCHS,
            queue: QueueConfig {
                window: 32,
                per_peer: 16,
                initial_per_peer: 16,
                slow_after: Duration::from_millis(500),
                hedge_after: Some(Duration::from_secs(1)),
                max_attempts: 4,
                max_peer_failures: 3,
                timeout: Duration::from_secs(10),
                // Below what a server lets one peer ask (protocol.md §10.3).
                rate_limit: Some((RequestBlock::MAX_REQUESTS * 9 / 10, RequestBlock::TIME_WINDOW)),
            },
            reset_first: false,
            zkp: None,
        }
    }
}

/// Light sync's jobs.
#[derive(Debug, PartialEq, Eq)]
pub enum LightWork {
    /// Return the light chain to its anchor.
    Reset,
    /// Verify and adopt these macro blocks, in order, stopping at the first failure.
    Push(Vec<MacroBlock>),
    /// Check a proof chain from our election head (joins, then one batch verification).
    CheckProofs(VerifierHandle, Vec<ZkpSegment>),
    /// Adopt the election block a checked proof chain proved.
    AdoptProven(Box<MacroBlock>, Proven),
}

/// Why a pushed block was not adopted.
#[derive(Debug, PartialEq, Eq)]
pub enum PushFailure {
    /// The block's justification does not verify: whoever sent it attached a bad one.
    BadJustification(String),
    /// The block's header breaks a rule (intrinsic checks, macro successor): whoever named its
    /// hash named a block that cannot follow ours.
    Invalid(String),
    /// Our own store failed.
    Store(String),
}

/// What a [`LightWork`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum LightOutcome {
    /// The chain is at its anchor again (`Err`: in memory, but the file could not be written; the
    /// next save writes it).
    Reset(Result<(), String>),
    /// `extended` blocks were adopted; `failure`: the index of the block that stopped the batch.
    Pushed {
        /// Blocks verified and adopted.
        extended: u64,
        /// The failing block's index in the batch, and why.
        failure: Option<(usize, PushFailure)>,
    },
    /// A proof chain was checked: `Ok(None)` when it proves nothing beyond our election head, else
    /// what it proves and how many segments were verified.
    ProofsChecked {
        /// The result.
        result: Result<Option<(Proven, u64)>, ProofFault>,
        /// Verification time in microseconds (for the statistics).
        micros: u64,
    },
    /// The proven election block was (or was not) adopted.
    Proven(Result<(), PushFailure>),
}

/// Why a proof chain was not used.
#[derive(Debug, PartialEq, Eq)]
pub enum ProofFault {
    /// It does not start at our election head (the peer's segments are cut elsewhere): not a fault.
    NotOurs,
    /// A gap, more segments than asked, or a proof that does not verify: the sender's fault.
    Bad(String),
}

/// Most threads one batch is verified on.
const MAX_VERIFY_THREADS: usize = 4;

/// Verifies consecutive blocks in parallel: block `i` against the verifier that `first` becomes
/// after blocks `0..i` (each result counts only if the blocks before it verified). At most
/// [`MAX_VERIFY_THREADS`] threads, no more than the machine's cores.
fn verify_batch(first: &MacroVerifier, blocks: &[MacroBlock]) -> Vec<(MacroVerifier, Result<(), LightError>)> {
    let mut verifiers = Vec::with_capacity(blocks.len());
    let mut v = first.clone();
    for block in blocks {
        let next = v.after(block);
        verifiers.push(v);
        v = next;
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, MAX_VERIFY_THREADS);
    let chunk = blocks.len().div_ceil(threads).max(1);
    let mut results: Vec<Result<(), LightError>> = Vec::with_capacity(blocks.len());
    std::thread::scope(|s| {
        let handles: Vec<_> = blocks
            .chunks(chunk)
            .zip(verifiers.chunks(chunk))
            .map(|(bs, vs)| s.spawn(move || bs.iter().zip(vs).map(|(b, v)| v.verify(b)).collect::<Vec<_>>()))
            .collect();
        for h in handles {
            // A verification that panicked is a bug in chain code; surface it.
            results.extend(h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
        }
    });
    verifiers.into_iter().zip(results).collect()
}

/// Runs a light-sync job on the shared chain. The batch is verified *outside* the chain's lock, in
/// parallel (each block against what its predecessor makes of the chain, starting from a
/// [`MacroVerifier`] taken under the lock), then adopted in
/// order under it, so that readers of the chain (the head handler, the drivers' views) wait for
/// an adoption, not for a verification (unless another component moved the chain meanwhile: a
/// block is then verified again under the lock).
pub fn execute(chain: &SharedLightChain, work: LightWork) -> LightOutcome {
    match work {
        LightWork::CheckProofs(verifier, segments) => {
            let (epoch, commitment) = {
                let c = lock(chain);
                let policy = *c.policy();
                (policy.epoch_at(c.election_head().block_number()), c.validators().commitment(policy.max_validators))
            };
            // Statistics only (no decision depends on it), measured on the job's worker thread.
            #[allow(clippy::disallowed_methods)]
            let started = std::time::Instant::now();
            let result = match verify_chain(&verifier.0, (epoch, commitment), &segments, usize::from(MAX_ZKP_SEGMENTS))
            {
                Ok(Some(p)) if p.epoch > epoch => Ok(Some((p, segments.len() as u64))),
                Ok(_) => Ok(None),
                Err(ProofChainError::WrongStart(_)) => Err(ProofFault::NotOurs),
                Err(e) => Err(ProofFault::Bad(e.to_string())),
            };
            LightOutcome::ProofsChecked { result, micros: started.elapsed().as_micros() as u64 }
        }
        LightWork::AdoptProven(block, proven) => {
            let result = lock(chain).push_election_proven(*block, proven.epoch, proven.hash, proven.commitment);
            LightOutcome::Proven(match result {
                Ok(_) => Ok(()),
                Err(e) if e.is_peer_fault() => Err(PushFailure::Invalid(e.to_string())),
                Err(e) => Err(PushFailure::Store(e.to_string())),
            })
        }
        LightWork::Reset => {
            let mut chain = lock(chain);
            let result = if chain.is_optimistic() { chain.reset() } else { Ok(()) };
            LightOutcome::Reset(result.map_err(|e| e.to_string()))
        }
        LightWork::Push(blocks) => {
            let first = lock(chain).macro_verifier();
            // Blocks adopted already (by another round or live sync) need no verification.
            let skip = blocks.iter().take_while(|b| b.block_number() <= first.macro_head().block_number()).count();
            let verified = verify_batch(&first, &blocks[skip..]);
            let mut extended = 0;
            let results = std::iter::repeat_with(|| None).take(skip).chain(verified.into_iter().map(Some));
            for (i, (block, checked)) in blocks.into_iter().zip(results).enumerate() {
                let result = match checked {
                    None => Ok(PushResult::Ignored),
                    Some((verifier, verdict)) => {
                        verdict.and_then(|()| lock(chain).push_macro_verified(block, &verifier))
                    }
                };
                match result {
                    Ok(PushResult::Extended) => extended += 1,
                    Ok(PushResult::Known | PushResult::Ignored) => {}
                    Err(e) if e.is_peer_fault() => {
                        let justification = matches!(
                            e,
                            LightError::Chain(petrel_blockchain::ChainError::InvalidBlock {
                                source: petrel_primitives::BlockError::InvalidJustification(_),
                                ..
                            })
                        );
                        let failure = if justification {
                            PushFailure::BadJustification(e.to_string())
                        } else {
                            PushFailure::Invalid(e.to_string())
                        };
                        return LightOutcome::Pushed { extended, failure: Some((i, failure)) };
                    }
                    Err(e) => {
                        return LightOutcome::Pushed {
                            extended,
                            failure: Some((i, PushFailure::Store(e.to_string()))),
                        };
                    }
                }
            }
            LightOutcome::Pushed { extended, failure: None }
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum PeerState {
    /// Waits for the chain reset before discovery.
    Pending,
    /// `RequestMacroChain` `request` sent while our election head was `base`.
    Discovering { base: Blake2bHash, request: RequestId },
    /// Has blocks for us on a chain the current round does not share: asked again when it ends.
    Waiting,
    /// Fetches for the current round.
    Fetching,
    /// Asked for its proof chain, or serving the block it proved.
    Proving,
}

/// Where zero-knowledge light sync stands (one proof chain at a time, before signature sync).
#[derive(Debug, Default, PartialEq, Eq)]
enum ProofPhase {
    /// No proof chain being asked for: the next peer that serves proofs and was not asked yet is
    /// asked (peers that do not serve proofs sync by signatures meanwhile).
    #[default]
    Idle,
    /// `RequestZkp` sent to `peer`.
    Asking { peer: PeerId, request: RequestId },
    /// Its answer being checked.
    Checking { peer: PeerId, job: JobId },
    /// The proven election block asked of `peer`.
    Fetching { peer: PeerId, request: RequestId, proven: Proven, full: bool },
    /// The proven block being adopted (`full`: the chain had as many segments as asked, so more
    /// may follow).
    Adopting { peer: PeerId, job: JobId, full: bool },
    /// A proof chain was adopted (one that did not fill its request): signatures from here on.
    Done,
}

/// One download of an election chain.
#[derive(Debug)]
struct Round {
    /// Our election head when the round's list was made.
    base: Blake2bHash,
    /// The election hashes of the round, oldest first (without the checkpoint).
    epochs: Vec<Blake2bHash>,
    /// The peer whose answer opened the round.
    source: PeerId,
    /// Ids: (hash, block number, index in the round's list).
    queue: SyncQueue<(Blake2bHash, u32, usize), MacroBlock>,
    /// Block requests in flight.
    requests: HashMap<RequestId, BlockFetch>,
    /// The batch being verified, with the sender and list index of each block.
    applying: Option<(JobId, Vec<(PeerId, usize)>)>,
}

/// A block request of a round: what was asked of whom.
#[derive(Clone, Copy, Debug)]
struct BlockFetch {
    seq: u64,
    peer: PeerId,
    hash: Blake2bHash,
    number: u32,
    /// Index in the round's list (the election blocks, then the checkpoint).
    index: usize,
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LightStats {
    /// Macro-chain requests sent.
    pub macro_chain_requests: u64,
    /// Block requests sent.
    pub block_requests: u64,
    /// Blocks verified and adopted.
    pub verified_blocks: u64,
    /// Rounds started.
    pub rounds: u64,
    /// Proof-chain requests sent.
    pub proof_requests: u64,
    /// Segment proofs verified (in chains that verified).
    pub proofs_verified: u64,
    /// Bytes of the proof chains received (encoded).
    pub proof_bytes: u64,
    /// Microseconds spent verifying proof chains.
    pub proof_verify_micros: u64,
    /// The epoch proofs brought the chain to.
    pub proven_epoch: Option<u32>,
}

/// The light machine.
#[derive(Debug, Default)]
pub struct LightMachine {
    config: LightConfig,
    book: PeerBook<PeerState, LightWork>,
    round: Option<Round>,
    reset_job: Option<JobId>,
    stats: LightStats,
    proof: ProofPhase,
    /// Peers that serve proofs, in the order they joined, and those asked already.
    proof_peers: Vec<PeerId>,
    proof_tried: HashSet<PeerId>,
}

impl Machine for LightMachine {
    type Config = LightConfig;
    type Chain = SharedLightChain;
    type View = LightView;
    type Work = LightWork;
    type Outcome = LightOutcome;
    type Event = MacroSyncReturn;
    type Gossip = ();
    type Report = ();
    type Stats = LightStats;

    fn new(config: LightConfig) -> Self {
        let reset_first = config.reset_first;
        let mut m = Self { config, ..Default::default() };
        if reset_first {
            m.reset_job = Some(m.book.apply(LightWork::Reset));
        }
        m
    }
    fn view(chain: &SharedLightChain, _input: &Input<LightOutcome>) -> LightView {
        LightView::of_shared(chain)
    }
    fn execute(chain: &SharedLightChain, work: LightWork) -> LightOutcome {
        execute(chain, work)
    }
    fn handle(&mut self, input: Input<LightOutcome>, now: Time, view: &LightView) {
        match input {
            Input::PeerJoined { peer, services } => self.add_peer(peer, services, view),
            Input::PeerLeft { peer } => {
                self.remove_peer(&peer);
                self.release_pending(view);
            }
            Input::Response { id, response } => self.on_response(id, response, now, view),
            Input::Applied { job, outcome } => self.on_applied(job, outcome, view),
            Input::Tick => {
                if let Some(round) = &mut self.round {
                    // A timed-out fetch is asked again (maybe of the same peer); its late answer,
                    // or the network's own timeout after ours, must not count against the retry.
                    let late = round.queue.time_out(now);
                    round.requests.retain(|_, f| !late.contains(&(f.seq, f.peer)));
                }
            }
            // Light sync follows no gossip and discovers through macro-chain requests.
            Input::Gossip(_) | Input::PeerHead { .. } | Input::Report(()) => {}
        }
        self.pump(now, view);
    }
    fn poll_action(&mut self) -> Option<Action<LightWork>> {
        self.book.poll_action()
    }
    fn next_wakeup(&self) -> Option<Time> {
        self.round.as_ref().and_then(|r| r.queue.next_deadline())
    }
    fn drain_peers(&mut self) -> Vec<PeerId> {
        self.round = None;
        self.book.drain()
    }
    fn num_peers(&self) -> usize {
        self.book.peers.len()
    }
    fn peers(&self) -> Vec<PeerId> {
        self.book.peers.keys().copied().collect()
    }
    fn stats(&self) -> LightStats {
        self.stats
    }
    fn proof_stats(&self) -> Option<petrel_sync_api::ProofStats> {
        self.config.zkp.as_ref().map(|_| petrel_sync_api::ProofStats {
            requests: self.stats.proof_requests,
            segments_verified: self.stats.proofs_verified,
            bytes: self.stats.proof_bytes,
            verify_micros: self.stats.proof_verify_micros,
            proven_epoch: self.stats.proven_epoch,
        })
    }
}

impl LightMachine {
    fn discover(&mut self, peer: PeerId, view: &LightView) {
        let mut locators = Vec::with_capacity(2);
        if view.head.macro_hash != view.head.election_hash {
            locators.push(view.head.macro_hash);
        }
        locators.push(view.head.election_hash);
        self.stats.macro_chain_requests += 1;
        let max_epochs = self.config.max_epochs.clamp(1, MAX_EPOCHS);
        let request = self.book.request(peer, RequestMacroChain { locators, max_epochs });
        self.book.peers.insert(peer, PeerState::Discovering { base: view.head.election_hash, request });
    }

    fn add_peer(&mut self, peer: PeerId, services: Option<Services>, view: &LightView) {
        if self.book.peers.contains_key(&peer) {
            return;
        }
        if !services.is_some_and(|s| s.contains(self.config.required_services)) {
            return self.book.emit(MacroSyncReturn::Incompatible(peer));
        }
        if self.config.zkp.is_some() && services.is_some_and(|s| s.contains(Services::ZKP_PROOFS)) {
            // A candidate for the proof chain: it waits for its turn (or for the proofs to end).
            self.proof_peers.retain(|p| *p != peer);
            self.proof_peers.push(peer);
            self.book.peers.insert(peer, PeerState::Pending);
            self.release_pending(view);
        } else if self.reset_job.is_some() {
            self.book.peers.insert(peer, PeerState::Pending);
        } else {
            // A peer without proofs syncs by signatures at once (a proof chain adopted later ends
            // its round and everyone is asked again from the proven block).
            self.discover(peer, view);
        }
    }

    /// Starts what waiting peers wait for: nothing during a reset or a proof check; else the
    /// next proof chain if one may help, else discovery for every waiting peer.
    fn release_pending(&mut self, view: &LightView) {
        if self.reset_job.is_some() || !matches!(self.proof, ProofPhase::Idle | ProofPhase::Done) {
            return;
        }
        if self.proof == ProofPhase::Idle
            && let Some(zkp) = &self.config.zkp
            && (view.at_anchor || view.at_proven)
            && zkp.can_start_at(view.policy.epoch_at(view.election_number))
            && let Some(peer) = self
                .proof_peers
                .iter()
                .copied()
                .find(|p| !self.proof_tried.contains(p) && self.book.peers.contains_key(p))
        {
            self.proof_tried.insert(peer);
            self.stats.proof_requests += 1;
            let from_epoch = view.policy.epoch_at(view.election_number);
            let request = self.book.request(peer, RequestZkp { from_epoch, max_segments: zkp.max() });
            self.book.peers.insert(peer, PeerState::Proving);
            self.proof = ProofPhase::Asking { peer, request };
            return;
        }
        for peer in self.book.peers_in(|s| matches!(s, PeerState::Pending | PeerState::Proving)) {
            self.discover(peer, view);
        }
    }

    /// The proof chain of `peer` is done with (used or not): the next peer with proofs is asked,
    /// or signature sync starts (`done`: a proof chain was adopted, no more are needed).
    fn proof_finished(&mut self, peer: PeerId, done: bool, view: &LightView) {
        self.proof = if done { ProofPhase::Done } else { ProofPhase::Idle };
        if let Some(state) = self.book.peers.get_mut(&peer) {
            *state = PeerState::Pending;
        }
        self.release_pending(view);
    }

    fn on_zkp(&mut self, peer: PeerId, response: Result<AnyResponse, RequestError>, view: &LightView) {
        let chain = match response {
            Ok(AnyResponse::Zkp(chain)) => chain,
            Err(e) => {
                self.proof_request_failed(peer, &e);
                return self.proof_finished(peer, false, view);
            }
            Ok(_) => return self.proof_finished(peer, false, view),
        };
        let max = self.config.zkp.as_ref().map_or(0, |z| usize::from(z.max()));
        if chain.segments.len() > max {
            self.ban(peer, PenaltyReason::WrongAnswer);
            return self.proof_finished(peer, false, view);
        }
        if chain.segments.is_empty() {
            return self.proof_finished(peer, false, view);
        }
        self.stats.proof_bytes += petrel_primitives::codec::encoded_len(&chain) as u64;
        let Some(zkp) = &self.config.zkp else { return self.proof_finished(peer, false, view) };
        let ZkpChain { segments } = chain;
        let job = self.book.apply(LightWork::CheckProofs(zkp.verifier.clone(), segments));
        self.proof = ProofPhase::Checking { peer, job };
    }

    /// Forgets a peer everywhere (the book, the round's queue and its requests).
    fn remove_peer(&mut self, peer: &PeerId) {
        self.book.remove(peer);
        self.proof_peers.retain(|p| p != peer);
        self.proof_tried.remove(peer);
        let proving = match self.proof {
            ProofPhase::Asking { peer: p, .. }
            | ProofPhase::Checking { peer: p, .. }
            | ProofPhase::Fetching { peer: p, .. }
            | ProofPhase::Adopting { peer: p, .. } => p == *peer,
            ProofPhase::Idle | ProofPhase::Done => false,
        };
        if proving {
            // Its job's outcome (if any) is ignored; the next peer with proofs is asked when one
            // joins or the waiting peers are released.
            self.proof = ProofPhase::Idle;
        }
        if let Some(round) = &mut self.round {
            round.queue.remove_peer(peer);
            round.requests.retain(|_, f| f.peer != *peer);
        }
    }

    fn ban(&mut self, peer: PeerId, reason: PenaltyReason) {
        self.remove_peer(&peer);
        self.book.ban(peer, reason);
    }

    fn on_response(&mut self, id: RequestId, response: Result<AnyResponse, RequestError>, now: Time, view: &LightView) {
        let Some(peer) = self.book.answered(id) else { return };
        match self.proof {
            ProofPhase::Asking { request, .. } if request == id => return self.on_zkp(peer, response, view),
            ProofPhase::Fetching { request, proven, full, .. } if request == id => {
                return self.on_proven_block(peer, proven, full, response, view);
            }
            _ => {}
        }
        if let Some(fetch) = self.round.as_mut().and_then(|r| r.requests.remove(&id)) {
            match response {
                Ok(AnyResponse::Block(block)) => self.on_block(peer, fetch, block, now),
                Err(e) => {
                    if e.is_peer_fault() {
                        self.book.penalize(peer, Severity::InvalidData, PenaltyReason::MalformedResponse);
                    }
                    if let Some(round) = &mut self.round {
                        round.queue.failed(fetch.seq, peer);
                    }
                }
                // An answer of a type we did not ask for: the driver's bug, not the peer's.
                Ok(_) => {}
            }
            return;
        }
        // Only the peer's current discovery request counts; anything else is a stale answer (a
        // fetch of a round that ended, or one that timed out and was asked again).
        if !matches!(self.book.peers.get(&peer), Some(PeerState::Discovering { request, .. }) if *request == id) {
            return;
        }
        match response {
            Ok(AnyResponse::MacroChain(answer)) => self.on_macro_chain(peer, answer, view),
            Err(e) => self.book.request_failed(peer, &e),
            Ok(_) => {}
        }
    }

    fn on_macro_chain(&mut self, peer: PeerId, answer: Result<MacroChain, MacroChainError>, view: &LightView) {
        let Some(PeerState::Discovering { base, .. }) = self.book.peers.get(&peer) else { return };
        let base = *base;
        let answer = match answer {
            Ok(answer) => answer,
            // The peer does not know our locators: it is behind or on another chain.
            Err(_) => return self.book.finish(peer, MacroSyncReturn::Outdated(peer)),
        };
        if answer.epochs.len() > usize::from(self.config.max_epochs.clamp(1, MAX_EPOCHS)) {
            return self.ban(peer, PenaltyReason::WrongAnswer);
        }
        if base != view.head.election_hash {
            // We moved on while it answered: its list starts at an old locator. Ask again.
            return self.discover(peer, view);
        }
        let policy = view.policy;
        let our_epoch = policy.epoch_at(view.election_number);
        let mut checkpoint = answer.checkpoint;
        if let Some((number, _)) = checkpoint {
            let expected_epoch = our_epoch + answer.epochs.len() as u32 + 1;
            if !policy.is_macro_block_at(number)
                || policy.is_election_block_at(number)
                || policy.epoch_at(number) != expected_epoch
            {
                return self.ban(peer, PenaltyReason::WrongAnswer);
            }
            if number <= view.macro_number {
                checkpoint = None;
            }
        }
        if answer.epochs.is_empty() && checkpoint.is_none() {
            return self.book.finish(peer, MacroSyncReturn::Good(peer));
        }
        if let Some(round) = &mut self.round {
            let shares = round.base == base
                && answer.epochs.len() >= round.epochs.len()
                && answer.epochs[..round.epochs.len()] == round.epochs[..];
            let state = if shares {
                round.queue.add_peer(peer);
                PeerState::Fetching
            } else {
                PeerState::Waiting
            };
            self.book.peers.insert(peer, state);
            return;
        }
        let mut queue = SyncQueue::new(self.config.queue);
        let numbers = (0..answer.epochs.len()).map(|i| policy.election_block_of(our_epoch + i as u32 + 1));
        for (index, (hash, number)) in answer.epochs.iter().copied().zip(numbers).enumerate() {
            queue.push((hash, number, index));
        }
        if let Some((number, hash)) = checkpoint {
            queue.push((hash, number, answer.epochs.len()));
        }
        queue.add_peer(peer);
        self.stats.rounds += 1;
        self.round =
            Some(Round { base, epochs: answer.epochs, source: peer, queue, requests: HashMap::new(), applying: None });
        self.book.peers.insert(peer, PeerState::Fetching);
    }

    fn on_block(&mut self, peer: PeerId, fetch: BlockFetch, block: Result<Block, BlockRequestError>, now: Time) {
        let Some(round) = &mut self.round else { return };
        // Every fetcher listed the round's election blocks itself, at their heights (macro blocks
        // are never pruned); only the source listed the checkpoint and its height.
        let listed_by_sender = fetch.index < round.epochs.len() || peer == round.source;
        let source = round.source;
        match block {
            Ok(Block::Macro(block)) if block.hash() == fetch.hash && block.block_number() == fetch.number => {
                round.queue.arrived(fetch.seq, peer, block, now);
            }
            // The hash asked for, but not at the height its list gave (an old block, which would
            // be skipped as adopted and end the round without progress): whoever listed it lied.
            Ok(Block::Macro(block)) if block.hash() == fetch.hash => {
                if listed_by_sender {
                    self.ban(peer, PenaltyReason::WrongAnswer);
                } else {
                    round.queue.failed(fetch.seq, peer);
                    self.ban(source, PenaltyReason::WrongAnswer);
                }
            }
            // Not the block we asked for.
            Ok(_) => self.ban(peer, PenaltyReason::WrongAnswer),
            Err(_) if listed_by_sender => self.ban(peer, PenaltyReason::MissingAnnounced),
            Err(_) => {
                round.queue.failed(fetch.seq, peer);
            }
        }
    }

    /// A failed proof request or proven-block fetch: a malformed answer costs as usual; silence
    /// (a timeout) costs a minor penalty, since everyone else with proofs waited for it.
    fn proof_request_failed(&mut self, peer: PeerId, e: &RequestError) {
        if e.is_peer_fault() {
            self.book.penalize(peer, Severity::InvalidData, PenaltyReason::MalformedResponse);
        } else if matches!(e, RequestError::Timeout) {
            self.book.penalize(peer, Severity::Minor, PenaltyReason::Unresponsive);
        }
    }

    fn on_proven_block(
        &mut self,
        peer: PeerId,
        proven: Proven,
        full: bool,
        response: Result<AnyResponse, RequestError>,
        view: &LightView,
    ) {
        match response {
            Ok(AnyResponse::Block(Ok(Block::Macro(block)))) if block.hash() == proven.hash => {
                let job = self.book.apply(LightWork::AdoptProven(Box::new(block), proven));
                self.proof = ProofPhase::Adopting { peer, job, full };
            }
            // It proved a block it cannot show, or showed another.
            Ok(AnyResponse::Block(Err(_))) => {
                self.ban(peer, PenaltyReason::MissingAnnounced);
                self.proof_finished(peer, false, view);
            }
            Ok(AnyResponse::Block(Ok(_))) => {
                self.ban(peer, PenaltyReason::WrongAnswer);
                self.proof_finished(peer, false, view);
            }
            Err(e) => {
                self.proof_request_failed(peer, &e);
                self.proof_finished(peer, false, view);
            }
            Ok(_) => self.proof_finished(peer, false, view),
        }
    }

    fn on_applied(&mut self, job: JobId, outcome: LightOutcome, view: &LightView) {
        match outcome {
            LightOutcome::ProofsChecked { result, micros } => {
                let ProofPhase::Checking { peer, job: expected } = self.proof else { return };
                if expected != job {
                    return;
                }
                self.stats.proof_verify_micros += micros;
                match result {
                    Ok(Some((proven, segments))) => {
                        self.stats.proofs_verified += segments;
                        let full = self.config.zkp.as_ref().is_some_and(|z| segments >= u64::from(z.max()));
                        let request = self.book.request(peer, RequestBlock { hash: proven.hash, include_body: false });
                        self.proof = ProofPhase::Fetching { peer, request, proven, full };
                    }
                    Ok(None) | Err(ProofFault::NotOurs) => self.proof_finished(peer, false, view),
                    Err(ProofFault::Bad(_)) => {
                        self.ban(peer, PenaltyReason::InvalidBlock);
                        self.proof_finished(peer, false, view);
                    }
                }
            }
            LightOutcome::Proven(result) => {
                let ProofPhase::Adopting { peer, job: expected, full } = self.proof else { return };
                if expected != job {
                    return;
                }
                match result {
                    Ok(()) => {
                        self.stats.proven_epoch = Some(view.policy.epoch_at(view.election_number));
                        // A signature round below the proven block is moot: everyone is asked
                        // again from it.
                        self.end_round(view, None);
                        if full {
                            // As many segments as asked: more may follow; the peers with proofs
                            // are asked again from the proven block.
                            self.proof_tried.clear();
                        }
                        self.proof_finished(peer, !full, view);
                    }
                    Err(PushFailure::Store(_)) => self.proof_finished(peer, true, view),
                    Err(_) => {
                        self.ban(peer, PenaltyReason::InvalidBlock);
                        self.proof_finished(peer, false, view);
                    }
                }
            }
            LightOutcome::Reset(_) => {
                if self.reset_job == Some(job) {
                    self.reset_job = None;
                    self.release_pending(view);
                }
            }
            LightOutcome::Pushed { extended, failure } => {
                self.stats.verified_blocks += extended;
                let Some(round) = &mut self.round else { return };
                let Some((_, senders)) = round.applying.take_if(|(j, _)| *j == job) else { return };
                let (epochs, source) = (round.epochs.len(), round.source);
                match failure {
                    None => {}
                    Some((i, failure @ (PushFailure::Invalid(_) | PushFailure::BadJustification(_)))) => {
                        if let Some(&(sender, index)) = senders.get(i) {
                            // A bad justification is whoever attached it; a header that cannot
                            // follow ours is whoever named its hash (every fetcher listed the
                            // election blocks, only the source the checkpoint).
                            let blamed = match failure {
                                PushFailure::Invalid(_) if index >= epochs => source,
                                _ => sender,
                            };
                            self.ban(blamed, PenaltyReason::InvalidBlock);
                        }
                        // What follows the bad block cannot be verified: ask everyone again.
                        self.end_round(view, None);
                    }
                    Some((_, PushFailure::Store(_))) => self.end_round(view, Some(MacroSyncReturn::Outdated)),
                }
            }
        }
    }

    /// Ends the round: its fetchers and the peers waiting for it are asked again, or given
    /// `verdict` if set.
    fn end_round(&mut self, view: &LightView, verdict: Option<fn(PeerId) -> MacroSyncReturn>) {
        if let Some(round) = self.round.take() {
            // Its fetches still in flight are forgotten: their answers are stale.
            for id in round.requests.keys() {
                self.book.answered(*id);
            }
        }
        for peer in self.book.peers_in(|s| matches!(s, PeerState::Fetching | PeerState::Waiting)) {
            match verdict {
                Some(v) => self.book.finish(peer, v(peer)),
                None => self.discover(peer, view),
            }
        }
    }

    /// Issues fetches, starts verification of what arrived in order, and ends the round when it
    /// is done or cannot finish.
    fn pump(&mut self, now: Time, view: &LightView) {
        let Some(round) = &mut self.round else { return };
        while let Some(fetch) = round.queue.next_fetch(now) {
            let (hash, number, index) = fetch.id;
            let id = self.book.request(fetch.peer, RequestBlock { hash, include_body: false });
            round.requests.insert(id, BlockFetch { seq: fetch.seq, peer: fetch.peer, hash, number, index });
            self.stats.block_requests += 1;
        }
        if round.applying.is_none() {
            let (blocks, senders): (Vec<_>, Vec<_>) =
                std::iter::from_fn(|| round.queue.pop_ready()).map(|r| (r.item, (r.peer, r.id.2))).unzip();
            if !blocks.is_empty() {
                let job = self.book.apply(LightWork::Push(blocks));
                round.applying = Some((job, senders));
            }
        }
        let benched: Vec<_> = round.queue.peers().iter().copied().filter(|p| round.queue.is_benched(p)).collect();
        for peer in benched {
            round.queue.remove_peer(&peer);
            round.requests.retain(|_, f| f.peer != peer);
            self.book.penalize(peer, Severity::Minor, PenaltyReason::Unresponsive);
            self.book.finish(peer, MacroSyncReturn::Outdated(peer));
        }
        if round.applying.is_some() {
            return;
        }
        if round.queue.is_finished() {
            // Done: ask everyone again (the peers may have more, or report nothing new: Good).
            self.end_round(view, None);
        } else if let Some(error) = round.queue.error() {
            match error {
                QueueError::ItemFailed { .. } => self.end_round(view, Some(MacroSyncReturn::Outdated)),
                // Every fetcher is gone; waiting peers may serve another chain.
                QueueError::NoPeers => self.end_round(view, None),
            }
        }
    }
}

#[cfg(test)]
mod tests;
