//! The pico state machine (no I/O).
//!
//! Per peer: `RequestHead` → compare the peer's macro and election hashes with ours → fetch the
//! election block and the checkpoint that differ (`RequestBlock`, no body) → apply them in order
//! (a job, [`apply_blocks`], off the executor) → `RequestHead` again, until the hashes match (Good).
//! Apply rules:
//! - election block equal to ours: skip; while our chain is at its anchor: adopt it optimistically
//!   (intrinsic checks only); when it is the *next* election block after our macro head: verify it
//!   like any macro block (improvement over the reference, which declared Conflicting here);
//!   otherwise Conflicting;
//! - checkpoint equal to our macro head: skip; otherwise verify it by the macro-successor rule and
//!   the current validators' justification; failure is Conflicting.
//!
//! While our chain rests on trust, a peer whose block contradicts it (another block at one of our
//! heights, or one that fails verification) is recorded as a contradictor
//! ([`PicoMachine::contradictors`]): the fallback's verification decides whether it or the trusted
//! block's source lied (`EitherSyncer`).
//!
//! A peer whose macro head is older than ours is Outdated (the reference looped on it).
//!
//! On a network with proofs (`PicoConfig::zkp`), a peer that serves them is asked for the proof
//! chain from our election head together with the blocks (two round trips in all: the head, then
//! blocks and proofs in parallel), while our chain is at its anchor or at its proven head and our
//! election epoch starts a segment. The proofs decide for the offered election block
//! ([`check_offered`], verified before the chain's lock is taken): proving exactly it adopts it
//! (`push_election_proven`); not verifying, or proving another block at its height, bans the peer;
//! ending short of it while more may follow fetches and adopts the block they prove
//! ([`PicoOutcome::ProvenUpTo`]) and starts the next round from there; ending short and stopping
//! (the prover is behind) leaves the old trust-on-first-use. After a job that brought our heads to
//! the ones the peer announced, the peer is Good without a second head request.

use std::collections::{HashMap, HashSet};

use petrel_blockchain::{LightBlockchain, PushResult};
use petrel_network_api::{PeerId, PenaltyReason, Services};
use petrel_primitives::{Blake2bHash, Block, MacroBlock};
use petrel_protocol::{AnyResponse, RequestBlock, RequestHead, RequestZkp, ResponseHead, ZkpSegment};
use petrel_sync_api::MacroSyncReturn;
use petrel_sync_api::light_chain::{LightView, SharedLightChain, lock};
use petrel_sync_api::machine::{Action, Input, JobId, Machine, PeerBook, RequestId, Time};
use petrel_sync_light::{VerifierHandle, ZkpLightConfig};
use petrel_zkp::chain::{ProofChainError, Proven, verify_chain};

/// Settings.
#[derive(Clone, Debug)]
pub struct PicoConfig {
    /// Services a peer must advertise to be synced from.
    pub required_services: Services,
    /// Head rounds per peer before giving up on a peer that keeps moving (it is then emitted
    /// Good: live sync follows the rest).
    pub max_rounds: u32,
    /// Distinct peers that must report being behind an election block we took on trust, on
    /// another election block, before that block is treated as conflicting. Lower falls back on
    /// any lagging peer; higher lets a liar claiming a future block hold out longer.
    pub doubters_for_conflict: usize,
    /// Verify proof chains from peers that serve them before adopting an election block.
    pub zkp: Option<ZkpLightConfig>,
}

impl Default for PicoConfig {
    fn default() -> Self {
        Self { required_services: Services::MACRO_CHAIN, max_rounds: 8, doubters_for_conflict: 2, zkp: None }
    }
}

/// The proof chain asked of a peer along with its blocks.
#[derive(Debug)]
enum ProofsWanted {
    /// Not asked (no proofs on this network, the peer does not serve them, or no new election).
    No,
    /// Asked with this request.
    Asked(RequestId),
    /// Arrived (empty: none, or the request failed).
    Got(Vec<ZkpSegment>),
}

#[derive(Debug)]
enum PeerState {
    AwaitingHead {
        round: u32,
    },
    AwaitingBlocks {
        round: u32,
        head: ResponseHead,
        wanted: Vec<(Blake2bHash, Option<MacroBlock>)>,
        proofs: ProofsWanted,
    },
    Applying {
        job: JobId,
        head: ResponseHead,
    },
}

/// Pico's job: apply the blocks one peer served, in order, deciding against the chain as it is
/// when the job runs.
#[derive(Debug, PartialEq, Eq)]
pub struct PicoWork {
    /// The blocks: the peer's election block and/or checkpoint, in this order.
    pub blocks: Vec<MacroBlock>,
    /// The chain generation they were fetched for: after a reset (the fallback to light sync)
    /// they are not applied.
    pub generation: u64,
    /// The proof chain the peer served from our election head.
    pub proofs: Option<ServedProofs>,
}

/// A proof chain a peer served, with what it needs to be judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedProofs {
    /// The network's verifier.
    pub verifier: VerifierHandle,
    /// The segments, from our election head.
    pub segments: Vec<ZkpSegment>,
    /// The most segments we asked for (`RequestZkp::max_segments`): a chain this long that ends
    /// below the offered block may go on, so what it proves is progress, not a dead end.
    pub asked: usize,
}

/// What [`apply_blocks`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum PicoOutcome {
    /// Every block applied (or was already known); `optimistic`: an election block was adopted on
    /// trust; `verified`: macro blocks verified and adopted.
    Applied {
        /// An election block was adopted on trust.
        optimistic: bool,
        /// Macro blocks verified and adopted.
        verified: u64,
        /// An election block was adopted as proven by the peer's proof chain (segments checked).
        proven: Option<u64>,
    },
    /// The peer's proof chain does not verify, or proves another block than it offered: nothing
    /// was adopted.
    BadProofs(String),
    /// The peer's proof chain proves an election block short of the offered one (and more may
    /// follow): that block is to be fetched and adopted with these segments, then the peer asked
    /// again.
    ProvenUpTo(Proven, Vec<ZkpSegment>),
    /// An election block pico cannot place: beyond the next one while our chain rests on trust, or
    /// on a verified chain not at its anchor (pico cannot verify the jump; light sync can). The
    /// peer may simply be ahead: a conflict to hand to verification (the fallback), charging
    /// nobody.
    Conflicting(String),
    /// A block at the height of one of ours with another hash, or one that fails verification,
    /// while our chain rests on a block taken on trust: the peer contradicts our chain, and only
    /// verification (the fallback) can tell who lied. If it proves the trusted block right, this
    /// peer served a block that is not on the chain and pays for the fallback (ADR 0017).
    Contradicts(String),
    /// A block at the height of one of ours with another hash, or one that fails verification,
    /// against a chain verified from its anchor (no trust involved): the peer lies. It is banned;
    /// there is no fallback.
    Lied(String),
    /// A block is older than our macro head: the peer is behind on this part.
    Behind,
    /// Our own light-chain store failed: not the peer's doing.
    StoreFailed(String),
    /// The chain was reset since the blocks were fetched: nothing applied.
    Stale,
}

/// What a peer's proof chain says about the election block it offered.
#[derive(Debug, PartialEq, Eq)]
pub enum ProofCheck {
    /// It proves exactly that block (segments checked).
    Exact(Proven, u64),
    /// It proves an election block between ours and the offered one, and more may follow (the
    /// chain was as long as asked, or went on past the offered block's epoch).
    Partial(Proven, Vec<ZkpSegment>),
    /// Nothing usable: no chain, another start, or it ends below the block and stops there.
    Unusable,
}

/// Checks `segments` (from our election head `from`) against the offered election block of
/// `epoch` with `hash`. Segments past that epoch are dropped unverified. `Err` if the kept chain is
/// bad or proves another block at that epoch.
pub fn check_offered(
    verifier: &VerifierHandle,
    from: (u32, petrel_primitives::FieldElement),
    segments: &[ZkpSegment],
    max: usize,
    epoch: u32,
    hash: Blake2bHash,
) -> Result<ProofCheck, String> {
    let kept: Vec<ZkpSegment> = segments.iter().take_while(|s| s.end_epoch <= epoch).copied().collect();
    let cut = kept.len() < segments.len();
    if kept.is_empty() {
        return Ok(ProofCheck::Unusable);
    }
    match verify_chain(&verifier.0, from, &kept, max) {
        Ok(Some(p)) if p.epoch == epoch && p.hash == hash => Ok(ProofCheck::Exact(p, kept.len() as u64)),
        Ok(Some(p)) if p.epoch == epoch => Err(format!("the proofs prove another election block at epoch {epoch}")),
        Ok(Some(p)) if cut || segments.len() >= max => Ok(ProofCheck::Partial(p, kept)),
        Ok(_) | Err(ProofChainError::WrongStart(_)) => Ok(ProofCheck::Unusable),
        Err(e) => Err(e.to_string()),
    }
}

/// Where a proof chain must start on `chain`: its election head's epoch and set commitment.
fn proof_start(chain: &LightBlockchain) -> (u32, petrel_primitives::FieldElement) {
    let policy = *chain.policy();
    (policy.epoch_at(chain.election_head().block_number()), chain.validators().commitment(policy.max_validators))
}

/// Whether a proof chain may move `chain` on: it is at its anchor or at a proven election head.
fn may_prove(chain: &LightBlockchain) -> bool {
    chain.at_anchor() || chain.at_proven()
}

/// The offered election block of `work` (its epoch and hash), if any.
fn offered_election(policy: &petrel_primitives::Policy, work: &PicoWork) -> Option<(u32, Blake2bHash)> {
    work.blocks.iter().find(|b| b.is_election()).map(|b| (policy.epoch_at(b.block_number()), b.hash()))
}

/// Runs a pico job on the shared chain: the proof chain (if any) is verified without holding the
/// chain's lock (from a snapshot of where it must start), then the blocks are applied under it;
/// if the chain moved meanwhile, the proofs are checked again under the lock.
pub fn execute(chain: &SharedLightChain, work: PicoWork) -> PicoOutcome {
    let pre = match &work.proofs {
        Some(served) => {
            let (from, policy) = {
                let c = lock(chain);
                (proof_start(&c), *c.policy())
            };
            offered_election(&policy, &work).map(|(epoch, hash)| {
                (from, check_offered(&served.verifier, from, &served.segments, served.asked, epoch, hash))
            })
        }
        None => None,
    };
    apply_blocks_checked(&mut lock(chain), work, pre)
}

/// Applies a peer's blocks to the light chain (the pico rules of the module documentation), unless
/// the chain was reset since they were fetched; proofs are checked under the caller's lock.
pub fn apply_blocks(chain: &mut LightBlockchain, work: PicoWork) -> PicoOutcome {
    apply_blocks_checked(chain, work, None)
}

type PreChecked = ((u32, petrel_primitives::FieldElement), Result<ProofCheck, String>);

fn apply_blocks_checked(chain: &mut LightBlockchain, work: PicoWork, pre: Option<PreChecked>) -> PicoOutcome {
    if chain.generation() != work.generation {
        return PicoOutcome::Stale;
    }
    let policy = *chain.policy();
    let mut pre = pre;
    let blocks = work.blocks;
    let (mut optimistic, mut verified, mut proven) = (false, 0, None);
    for block in blocks {
        let hash = block.hash();
        if hash == chain.election_head().hash() || hash == chain.macro_head().hash() {
            continue;
        }
        let number = block.block_number();
        if number == chain.election_head().block_number() || number == chain.macro_head().block_number() {
            return conflict(chain, format!("block {number} differs from ours"));
        }
        if number < chain.macro_head().block_number() {
            return PicoOutcome::Behind;
        }
        let next_election = policy.election_block_after(chain.macro_head().block_number());
        // A proof chain decides for an election block beyond the next one, and for the next one
        // too when one was served (so the chain stays at a proven head the next chain starts from).
        let proofs_decide = block.is_election()
            && may_prove(chain)
            && (number > next_election || (number == next_election && work.proofs.is_some()));
        let result = if proofs_decide {
            let from = proof_start(chain);
            let check = match (pre.take(), &work.proofs) {
                (Some((checked_from, check)), _) if checked_from == from => check,
                (_, Some(served)) => {
                    check_offered(&served.verifier, from, &served.segments, served.asked, policy.epoch_at(number), hash)
                }
                (_, None) => Ok(ProofCheck::Unusable),
            };
            match check {
                Err(e) => return PicoOutcome::BadProofs(e),
                Ok(ProofCheck::Exact(p, segments)) => {
                    let r = chain.push_election_proven(block, p.epoch, p.hash, p.commitment);
                    if r.is_ok() {
                        proven = Some(segments);
                    }
                    r
                }
                // The proven block must be fetched first; what the job had applied stands.
                Ok(ProofCheck::Partial(p, segments)) => return PicoOutcome::ProvenUpTo(p, segments),
                Ok(ProofCheck::Unusable) if number == next_election => {
                    let r = chain.push_macro(block);
                    verified += u64::from(matches!(r, Ok(PushResult::Extended)));
                    r
                }
                Ok(ProofCheck::Unusable) if chain.at_anchor() => {
                    let r = chain.push_election_pico(block);
                    optimistic |= r.is_ok();
                    r
                }
                Ok(ProofCheck::Unusable) => {
                    return PicoOutcome::Conflicting(format!(
                        "election block {number} cannot be verified from our chain"
                    ));
                }
            }
        } else if block.is_election() && number > next_election {
            return PicoOutcome::Conflicting(format!("election block {number} cannot be verified from our chain"));
        } else {
            let r = chain.push_macro(block);
            verified += u64::from(matches!(r, Ok(PushResult::Extended)));
            r
        };
        match result {
            Ok(_) => {}
            Err(e) if e.is_peer_fault() => return conflict(chain, e.to_string()),
            Err(e) => return PicoOutcome::StoreFailed(e.to_string()),
        }
    }
    PicoOutcome::Applied { optimistic, verified, proven }
}

/// A block that contradicts our chain: a conflict to settle by verification if our chain rests on
/// trust, else the peer's lie (a verified chain has one block per height).
fn conflict(chain: &LightBlockchain, why: String) -> PicoOutcome {
    if chain.is_optimistic() { PicoOutcome::Contradicts(why) } else { PicoOutcome::Lied(why) }
}

/// Counters for tests, benches and progress.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PicoStats {
    /// Head requests sent.
    pub head_requests: u64,
    /// Block requests sent.
    pub block_requests: u64,
    /// Election blocks adopted optimistically.
    pub optimistic_adoptions: u64,
    /// Macro blocks verified and adopted.
    pub verified_blocks: u64,
    /// Proof-chain requests sent.
    pub proof_requests: u64,
    /// Election blocks adopted as proven.
    pub proven_adoptions: u64,
    /// Segment proofs verified (in chains that proved the adopted block).
    pub proofs_verified: u64,
    /// Bytes of the proof chains received (encoded).
    pub proof_bytes: u64,
    /// The epoch of the election block adopted as proven.
    pub proven_epoch: Option<u32>,
}

/// Most contradicting peers (and, apart, doubters' claims) remembered until verification settles
/// the trust (one fallback needs only the first; the rest are kept so that each pays).
pub const MAX_CONTRADICTORS: usize = 64;

/// A doubter's claim: its head's election block is `hash`, at height `number`. Honest nodes that
/// announce `MACRO_CHAIN` verify their chains, so a claim the verified chain contradicts is a lie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    /// Who claimed it.
    pub peer: PeerId,
    /// The election block's number (the last election block at or before the peer's head).
    pub number: u32,
    /// Its hash.
    pub hash: Blake2bHash,
}

/// The pico machine.
#[derive(Debug, Default)]
pub struct PicoMachine {
    config: PicoConfig,
    book: PeerBook<PeerState, PicoWork>,
    /// The peer whose election block we adopted optimistically, if any.
    optimistic_source: Option<PeerId>,
    /// Whether the chain rested on trust as of the last input (jobs finish one at a time, so a
    /// job after which it does, and before which it did not, adopted on trust).
    was_optimistic: Option<bool>,
    /// Peers that stand behind our trusted election block on another one (bounded by the peers).
    doubters: HashSet<PeerId>,
    /// Peers that served a block contradicting our chain while it rested on trust (at most
    /// [`MAX_CONTRADICTORS`]): they pay if verification proves the trusted block right.
    contradictors: Vec<PeerId>,
    /// What the doubters claimed, kept for the fallback to judge (at most [`MAX_CONTRADICTORS`]).
    claims: Vec<Claim>,
    /// Jobs running: job → (peer, round). At most one per peer.
    jobs: HashMap<JobId, (PeerId, u32)>,
    /// The services of the peers being synced.
    services: HashMap<PeerId, Services>,
    stats: PicoStats,
}

impl Machine for PicoMachine {
    type Config = PicoConfig;
    type Chain = SharedLightChain;
    type View = LightView;
    type Work = PicoWork;
    type Outcome = PicoOutcome;
    type Event = MacroSyncReturn;
    type Gossip = ();
    type Report = ();
    type Stats = PicoStats;

    fn new(config: PicoConfig) -> Self {
        Self { config, ..Default::default() }
    }
    fn view(chain: &SharedLightChain, _input: &Input<PicoOutcome>) -> LightView {
        LightView::of_shared(chain)
    }
    fn execute(chain: &SharedLightChain, work: PicoWork) -> PicoOutcome {
        execute(chain, work)
    }
    fn handle(&mut self, input: Input<PicoOutcome>, _now: Time, view: &LightView) {
        if !matches!(input, Input::Applied { .. }) {
            self.was_optimistic.get_or_insert(view.optimistic);
        }
        match input {
            Input::PeerJoined { peer, services } => self.add_peer(peer, services),
            Input::PeerLeft { peer } => {
                self.book.remove(&peer);
                self.doubters.remove(&peer);
                self.services.remove(&peer);
            }
            Input::Response { id, response } => {
                let Some(peer) = self.book.answered(id) else { return };
                let proof_request = matches!(
                    self.book.peers.get(&peer),
                    Some(PeerState::AwaitingBlocks { proofs: ProofsWanted::Asked(r), .. }) if *r == id
                );
                match response {
                    Ok(AnyResponse::Head(head)) => self.on_head(peer, head, view),
                    Ok(AnyResponse::Block(block)) => self.on_block(peer, block, view.generation),
                    Ok(AnyResponse::Zkp(chain)) if proof_request => {
                        self.on_proofs(peer, chain.segments, view.generation)
                    }
                    // A failed proof request is a peer without proofs: the blocks still count.
                    Err(e) if proof_request => {
                        if e.is_peer_fault() {
                            self.book.penalize(
                                peer,
                                petrel_network_api::Severity::InvalidData,
                                PenaltyReason::MalformedResponse,
                            );
                        }
                        self.on_proofs(peer, Vec::new(), view.generation)
                    }
                    // Pico asks for nothing else: an answer of another type is the driver's bug.
                    Ok(_) => {}
                    Err(e) => self.book.request_failed(peer, &e),
                }
            }
            Input::Applied { job, outcome } => self.on_applied(job, outcome, view),
            // Pico follows no gossip and asks heads itself.
            Input::Gossip(_) | Input::PeerHead { .. } | Input::Report(()) | Input::Tick => {}
        }
    }
    fn poll_action(&mut self) -> Option<Action<PicoWork>> {
        self.book.poll_action()
    }
    fn drain_peers(&mut self) -> Vec<PeerId> {
        self.doubters.clear();
        self.book.drain()
    }
    fn num_peers(&self) -> usize {
        self.book.peers.len()
    }
    fn peers(&self) -> Vec<PeerId> {
        self.book.peers.keys().copied().collect()
    }
    fn stats(&self) -> PicoStats {
        self.stats
    }
    fn proof_stats(&self) -> Option<petrel_sync_api::ProofStats> {
        self.config.zkp.as_ref().map(|_| petrel_sync_api::ProofStats {
            requests: self.stats.proof_requests,
            segments_verified: self.stats.proofs_verified,
            bytes: self.stats.proof_bytes,
            // Verified inside the apply job with the blocks; not timed separately.
            verify_micros: 0,
            proven_epoch: self.stats.proven_epoch,
        })
    }
}

impl PicoMachine {
    /// The peer whose election block was adopted on trust.
    pub fn optimistic_source(&self) -> Option<PeerId> {
        self.optimistic_source
    }

    /// The peers that served blocks contradicting our chain while it rested on trust, oldest
    /// first: to charge if verification proves the trusted block right.
    pub fn contradictors(&self) -> &[PeerId] {
        &self.contradictors
    }

    /// What the doubters (peers behind our trusted election block on another one) claimed: the
    /// election block of their head. Each is judged when verification adopts the election block
    /// at that height.
    pub fn claims(&self) -> &[Claim] {
        &self.claims
    }

    fn request_head(&mut self, peer: PeerId, round: u32) {
        self.book.peers.insert(peer, PeerState::AwaitingHead { round });
        self.stats.head_requests += 1;
        self.book.request(peer, RequestHead);
    }

    fn add_peer(&mut self, peer: PeerId, services: Option<Services>) {
        if self.book.peers.contains_key(&peer) {
            return;
        }
        let Some(services) = services.filter(|s| s.contains(self.config.required_services)) else {
            self.book.emit(MacroSyncReturn::Incompatible(peer));
            return;
        };
        self.services.insert(peer, services);
        self.request_head(peer, 0);
    }

    fn on_head(&mut self, peer: PeerId, head: ResponseHead, view: &LightView) {
        let Some(PeerState::AwaitingHead { round }) = self.book.peers.get(&peer) else { return };
        let round = *round;
        let ours = view.head;
        if head.macro_hash == ours.macro_hash && head.election_hash == ours.election_hash {
            return self.book.finish(peer, MacroSyncReturn::Good(peer));
        }
        if head.block_number < view.macro_number {
            // Behind us. One lagging peer is normal; but if our chain rests on an election block
            // taken on trust and several other peers all stand behind it on other election
            // blocks, the trusted block may be a fabrication from the future: only verification
            // (the fallback) can tell.
            if view.optimistic && head.election_hash != ours.election_hash && self.optimistic_source != Some(peer) {
                self.doubters.insert(peer);
                if !self.claims.iter().any(|c| c.peer == peer) && self.claims.len() < MAX_CONTRADICTORS {
                    let number = view.policy.last_election_block(head.block_number);
                    self.claims.push(Claim { peer, number, hash: head.election_hash });
                }
                if self.doubters.len() >= self.config.doubters_for_conflict {
                    return self.book.finish(peer, MacroSyncReturn::Conflicting(peer));
                }
            }
            return self.book.finish(peer, MacroSyncReturn::Outdated(peer));
        }
        if round >= self.config.max_rounds {
            // The peer keeps moving; live sync follows from here.
            return self.book.finish(peer, MacroSyncReturn::Good(peer));
        }
        let mut wanted = Vec::with_capacity(2);
        if head.election_hash != ours.election_hash {
            wanted.push((head.election_hash, None));
        }
        if head.macro_hash != head.election_hash && head.macro_hash != ours.macro_hash {
            wanted.push((head.macro_hash, None));
        }
        if wanted.is_empty() {
            // Same election block, peer's macro head is its election block and ours is newer.
            return self.book.finish(peer, MacroSyncReturn::Outdated(peer));
        }
        for (hash, _) in &wanted {
            self.stats.block_requests += 1;
            self.book.request(peer, RequestBlock { hash: *hash, include_body: false });
        }
        // A new election block taken on trust unless proven: ask for the proofs at once.
        let serves_proofs = self.services.get(&peer).is_some_and(|s| s.contains(Services::ZKP_PROOFS));
        let proofs = match &self.config.zkp {
            Some(zkp)
                if serves_proofs
                    && (view.at_anchor || view.at_proven)
                    && zkp.can_start_at(view.policy.epoch_at(view.election_number))
                    && head.election_hash != ours.election_hash =>
            {
                self.stats.proof_requests += 1;
                let from_epoch = view.policy.epoch_at(view.election_number);
                ProofsWanted::Asked(self.book.request(peer, RequestZkp { from_epoch, max_segments: zkp.max() }))
            }
            _ => ProofsWanted::No,
        };
        self.book.peers.insert(peer, PeerState::AwaitingBlocks { round, head, wanted, proofs });
    }

    fn on_proofs(&mut self, peer: PeerId, segments: Vec<ZkpSegment>, generation: u64) {
        let max = self.config.zkp.as_ref().map_or(0, |z| usize::from(z.max()));
        if segments.len() > max {
            return self.book.ban(peer, PenaltyReason::WrongAnswer);
        }
        let Some(PeerState::AwaitingBlocks { proofs, .. }) = self.book.peers.get_mut(&peer) else { return };
        self.stats.proof_bytes += petrel_primitives::codec::encoded_len(&segments) as u64;
        *proofs = ProofsWanted::Got(segments);
        self.start_job_if_complete(peer, generation);
    }

    fn on_block(&mut self, peer: PeerId, result: Result<Block, petrel_protocol::BlockRequestError>, generation: u64) {
        let block = match result {
            Ok(block) => block,
            // It announced this macro block in its head; macro blocks are never pruned.
            Err(_) => return self.book.ban(peer, PenaltyReason::MissingAnnounced),
        };
        let Some(PeerState::AwaitingBlocks { wanted, .. }) = self.book.peers.get_mut(&peer) else { return };
        let hash = block.hash();
        let slot = wanted.iter_mut().find(|(h, got)| *h == hash && got.is_none());
        match (slot, block) {
            (Some(slot), Block::Macro(m)) => slot.1 = Some(m),
            // Not what we asked for, or not a macro block: provably bad.
            _ => return self.book.ban(peer, PenaltyReason::WrongAnswer),
        }
        self.start_job_if_complete(peer, generation);
    }

    /// Starts the apply job of `peer` once its blocks (and proofs, if asked) are all in.
    fn start_job_if_complete(&mut self, peer: PeerId, generation: u64) {
        let Some(PeerState::AwaitingBlocks { wanted, proofs, .. }) = self.book.peers.get(&peer) else { return };
        if wanted.iter().any(|(_, got)| got.is_none()) || matches!(proofs, ProofsWanted::Asked(_)) {
            return;
        }
        let Some(PeerState::AwaitingBlocks { round, head, wanted, proofs }) = self.book.peers.remove(&peer) else {
            return;
        };
        let blocks = wanted.into_iter().filter_map(|(_, b)| b).collect();
        let proofs = match (proofs, &self.config.zkp) {
            (ProofsWanted::Got(segments), Some(zkp)) if !segments.is_empty() => {
                Some(ServedProofs { verifier: zkp.verifier.clone(), segments, asked: usize::from(zkp.max()) })
            }
            _ => None,
        };
        let job = self.book.apply(PicoWork { blocks, generation, proofs });
        self.jobs.insert(job, (peer, round));
        self.book.peers.insert(peer, PeerState::Applying { job, head });
    }

    fn on_applied(&mut self, job: JobId, outcome: PicoOutcome, view: &LightView) {
        let Some((peer, round)) = self.jobs.remove(&job) else { return };
        // A job that adopted on trust and then failed on a later block of the same peer (a head
        // below it, a conflict, our store) still made this peer the source of the trust.
        if view.optimistic && self.was_optimistic == Some(false) && self.optimistic_source.is_none() {
            self.optimistic_source = Some(peer);
        }
        self.was_optimistic = Some(view.optimistic);
        if let PicoOutcome::Applied { optimistic, verified, proven } = outcome {
            // The chain changed whether or not the peer is still here.
            if optimistic {
                self.optimistic_source = Some(peer);
                self.stats.optimistic_adoptions += 1;
            }
            if let Some(segments) = proven {
                self.stats.proven_adoptions += 1;
                self.stats.proofs_verified += segments;
                self.stats.proven_epoch = Some(view.policy.epoch_at(view.election_number));
            }
            self.stats.verified_blocks += verified;
        }
        // The outcome of this peer's current job only (it may have left and come back meanwhile).
        let Some(PeerState::Applying { job: j, head }) = self.book.peers.get(&peer) else { return };
        if *j != job {
            return;
        }
        let head = *head;
        match outcome {
            // Our heads are the ones it announced: nothing more to ask.
            PicoOutcome::Applied { .. }
                if view.head.macro_hash == head.macro_hash && view.head.election_hash == head.election_hash =>
            {
                self.book.finish(peer, MacroSyncReturn::Good(peer))
            }
            PicoOutcome::Applied { .. } => self.request_head(peer, round + 1),
            PicoOutcome::BadProofs(_) => self.book.ban(peer, PenaltyReason::InvalidBlock),
            PicoOutcome::ProvenUpTo(proven, segments) => {
                // Fetch the proven block and adopt it with the same segments (its own job), then
                // ask the head again: the next proof chain starts there.
                self.stats.block_requests += 1;
                self.book.request(peer, RequestBlock { hash: proven.hash, include_body: false });
                let wanted = vec![(proven.hash, None)];
                let proofs = ProofsWanted::Got(segments);
                self.book.peers.insert(peer, PeerState::AwaitingBlocks { round, head, wanted, proofs });
            }
            PicoOutcome::Conflicting(_) => self.book.finish(peer, MacroSyncReturn::Conflicting(peer)),
            PicoOutcome::Contradicts(_) => {
                if !self.contradictors.contains(&peer) && self.contradictors.len() < MAX_CONTRADICTORS {
                    self.contradictors.push(peer);
                }
                self.book.finish(peer, MacroSyncReturn::Conflicting(peer))
            }
            PicoOutcome::Lied(_) => self.book.ban(peer, PenaltyReason::ConflictingChain),
            PicoOutcome::Behind | PicoOutcome::StoreFailed(_) | PicoOutcome::Stale => {
                self.book.finish(peer, MacroSyncReturn::Outdated(peer))
            }
        }
    }
}

#[cfg(test)]
mod tests;
