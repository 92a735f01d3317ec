//! The History Macro Sync machine (no I/O), first version: one download round at a time.
//!
//! Per peer: `RequestMacroChain` with our locators → the election hashes after our election head
//! and possibly a checkpoint. The first peer with something new opens a round; peers whose own
//! answer lists the same election chain join it as fetchers, others wait for it to end (as in
//! light sync). A round fetches, through two ordered fetch queues shared by its peers, each listed
//! block's batch sets (`RequestBatchSet`) and then the history chunks those announce
//! (`RequestHistoryChunk`, against the last block of the answer). When a batch set and all its
//! chunks are in, one job verifies them ([`crate::verify`]: blocks against the validators of our
//! chain, chunks against the verified root) and applies each batch set with `push_history_sync`,
//! strictly in order, off the executor; a blocking read or write lock is held only to read the
//! state and to push. When the round is done its peers are asked again, until they have nothing
//! new (Good).
//!
//! Rules (each has a unit test or an end-to-end test):
//! - a peer without `HISTORY` and `FULL_BLOCKS` is Incompatible;
//! - while we hold micro blocks past our macro head, a peer with something new is Good (live sync
//!   catches up from there: history cannot be applied on top of micro blocks);
//! - discovery answers are judged as in light sync (absurd answers ban; unknown locators Outdated;
//!   nothing new Good; a stale answer is asked again);
//! - "not found" for a batch set of an election block the peer listed bans it; a failed or
//!   timed-out fetch is retried on another peer of the round; a failed chunk fetch never bans (a
//!   peer may have pruned);
//! - a batch set that does not verify bans its sender; a chunk that does not verify bans its
//!   sender; a push that fails for the block bans the batch set's sender; each ends the round (the
//!   others ask again); our own store failing ends it with every peer Outdated.
//!
//! Not yet (issue "History Macro Sync"): clusters across forks, pipelining across rounds,
//! resume-aware download planning beyond the current epoch's known history.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use petrel_blockchain::{Blockchain, PushResult};
use petrel_network_api::{PeerId, PenaltyReason, Request, RequestError, Services, Severity};
use petrel_primitives::wire::{BatchSetInfo, HeadInfo, HistoryChunk, MAX_EPOCHS, MacroChain};
use petrel_primitives::{Blake2bHash, Policy};
use petrel_protocol::{AnyResponse, RequestBatchSet, RequestHistoryChunk, RequestMacroChain};
use petrel_sync_api::MacroSyncReturn;
use petrel_sync_api::machine::{Action, Input, JobId, Machine, PeerBook, RequestId, Time};
use petrel_sync_api::queue::{QueueConfig, QueueError, SyncQueue};

use crate::verify::{BatchSetVerifier, verify_chunk};

/// The full chain store, shared.
pub type SharedChain = Arc<RwLock<Blockchain>>;

/// Settings.
#[derive(Clone, Copy, Debug)]
pub struct HistoryConfig {
    /// Services a peer must advertise.
    pub required_services: Services,
    /// Election hashes asked for per macro-chain request.
    pub max_epochs: u16,
    /// The batch-set queue (a batch set is a few macro blocks; up to a few MiB with its history).
    pub batch_sets: QueueConfig,
    /// The history-chunk queue.
    pub chunks: QueueConfig,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        // Each queue stays below what a server lets one peer ask (protocol.md §10.3).
        let queue = |window, per_peer, (max, period): (u32, Duration)| QueueConfig {
            window,
            per_peer,
            initial_per_peer: per_peer,
            slow_after: Duration::from_secs(2),
            hedge_after: Some(Duration::from_secs(3)),
            max_attempts: 4,
            max_peer_failures: 3,
            timeout: Duration::from_secs(20),
            rate_limit: Some((max * 9 / 10, period)),
        };
        Self {
            required_services: Services(Services::HISTORY.0 | Services::FULL_BLOCKS.0),
            max_epochs: MAX_EPOCHS,
            batch_sets: queue(4, 2, (RequestBatchSet::MAX_REQUESTS, RequestBatchSet::TIME_WINDOW)),
            chunks: queue(12, 6, (RequestHistoryChunk::MAX_REQUESTS, RequestHistoryChunk::TIME_WINDOW)),
        }
    }
}

/// History sync's job: verify one batch-set answer and its chunks, then apply it.
#[derive(Debug, PartialEq, Eq)]
pub struct HistoryWork {
    /// The block the batch sets were asked for.
    pub asked: Blake2bHash,
    /// The answer.
    pub info: BatchSetInfo,
    /// Its chunks, in index order from `first_chunk`.
    pub chunks: Vec<HistoryChunk>,
    /// Index of the first chunk.
    pub first_chunk: u64,
    /// Items of that epoch's history we held when the chunks were planned.
    pub known: u64,
}

/// What a [`HistoryWork`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum HistoryOutcome {
    /// `extended` batch sets were applied.
    Applied {
        /// Batch sets applied.
        extended: u64,
    },
    /// The batch sets do not verify.
    BadBatchSet(String),
    /// Chunk `position` (in the work) does not verify.
    BadChunk(usize, String),
    /// A verified batch set's history did not apply (its sender's fault).
    Invalid(String),
    /// Our store failed.
    Store(String),
    /// The chain changed since the chunks were planned.
    Stale,
}

/// Runs a history job (see [`HistoryWork`]).
pub fn execute(chain: &SharedChain, work: HistoryWork) -> HistoryOutcome {
    let (mut verifier, known, policy) = {
        let c = chain.read().unwrap_or_else(|e| e.into_inner());
        let s = c.state();
        let epoch = work.info.batch_sets.last().map(|(b, _)| s.policy.epoch_at(b.block_number()));
        let known = if epoch == Some(s.history_epoch) { s.history.len() } else { 0 };
        let verifier = BatchSetVerifier::new(s.network, s.policy, s.macro_head.clone(), s.validators.clone());
        (verifier, known, s.policy)
    };
    if known != work.known {
        return HistoryOutcome::Stale;
    }
    let verified = match verifier.verify(&work.asked, &work.info) {
        Ok(v) => v,
        Err(e) => return HistoryOutcome::BadBatchSet(e.to_string()),
    };
    let Some(last) = verified.last() else { return HistoryOutcome::Applied { extended: 0 } };
    let size = u64::from(policy.history_chunk_size);
    let mut items = Vec::new();
    for (k, chunk) in work.chunks.iter().enumerate() {
        if let Err(e) = verify_chunk(last, size, work.first_chunk + k as u64, chunk) {
            return HistoryOutcome::BadChunk(k, e.to_string());
        }
        items.extend(chunk.items.iter().cloned());
    }
    let skip = known.saturating_sub(work.first_chunk * size) as usize;
    let items = items.get(skip..).unwrap_or_default();
    if (items.len() as u64) != last.history_len.saturating_sub(known) {
        return HistoryOutcome::BadBatchSet("the chunks do not cover the announced history".into());
    }
    let mut extended = 0;
    let mut from = known;
    let mut c = chain.write().unwrap_or_else(|e| e.into_inner());
    for vb in verified {
        if vb.history_len < from {
            return HistoryOutcome::BadBatchSet("the history shrinks".into());
        }
        let slice = items[(from - known) as usize..(vb.history_len - known) as usize].to_vec();
        from = vb.history_len;
        match c.push_history_sync(vb.block, slice) {
            Ok(PushResult::Extended) => extended += 1,
            Ok(_) => {}
            Err(e) if e.is_peer_fault() => return HistoryOutcome::Invalid(e.to_string()),
            Err(e) => return HistoryOutcome::Store(e.to_string()),
        }
    }
    HistoryOutcome::Applied { extended }
}

/// What the machine reads of the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryView {
    /// Our head.
    pub head: HeadInfo,
    /// Number of our macro head.
    pub macro_number: u32,
    /// Number of our election head.
    pub election_number: u32,
    /// Epoch of the history tree we hold, and its length.
    pub history_epoch: u32,
    /// Items in it.
    pub history_len: u64,
    /// The policy.
    pub policy: Policy,
}

impl HistoryView {
    /// A snapshot of `chain`.
    pub fn of(chain: &Blockchain) -> Self {
        let s = chain.state();
        Self {
            head: chain.head(),
            macro_number: s.macro_head.block_number(),
            election_number: s.election_head.block_number(),
            history_epoch: s.history_epoch,
            history_len: s.history.len(),
            policy: s.policy,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum PeerState {
    Discovering { base: Blake2bHash, request: RequestId },
    Waiting,
    Fetching,
}

/// One fetch in flight.
#[derive(Clone, Copy, Debug)]
enum Fetching {
    BatchSet { seq: u64, index: usize },
    Chunk { seq: u64 },
}

/// A batch-set answer waiting for its chunks.
#[derive(Debug)]
struct Pending {
    asked: Blake2bHash,
    info: BatchSetInfo,
    sender: PeerId,
    known: u64,
    first_chunk: u64,
    needed: u64,
    chunks: Vec<(HistoryChunk, PeerId)>,
}

/// Chunk id: (position of its batch set in the round, epoch, verifier block, chunk index).
type ChunkId = (usize, u32, u32, u64);

#[derive(Debug)]
struct Round {
    base: Blake2bHash,
    epochs: Vec<Blake2bHash>,
    source: PeerId,
    batch_sets: SyncQueue<(Blake2bHash, u32, usize), BatchSetInfo>,
    chunks: SyncQueue<ChunkId, HistoryChunk>,
    requests: HashMap<RequestId, (PeerId, Fetching)>,
    pending: VecDeque<Pending>,
    /// The job running: its id, the batch set's sender and the chunks' senders.
    applying: Option<(JobId, PeerId, Vec<PeerId>)>,
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HistoryStats {
    /// Rounds started.
    pub rounds: u64,
    /// Batch-set requests sent.
    pub batch_set_requests: u64,
    /// Chunk requests sent.
    pub chunk_requests: u64,
    /// Batch sets applied.
    pub applied: u64,
}

/// The History Macro Sync machine. See the module documentation.
#[derive(Debug, Default)]
pub struct HistoryMachine {
    config: HistoryConfig,
    book: PeerBook<PeerState, HistoryWork>,
    round: Option<Round>,
    stats: HistoryStats,
}

impl Machine for HistoryMachine {
    type Config = HistoryConfig;
    type Chain = SharedChain;
    type View = HistoryView;
    type Work = HistoryWork;
    type Outcome = HistoryOutcome;
    type Event = MacroSyncReturn;
    type Gossip = ();
    type Report = ();
    type Stats = HistoryStats;

    fn new(config: HistoryConfig) -> Self {
        Self { config, ..Default::default() }
    }
    fn view(chain: &SharedChain, _input: &Input<HistoryOutcome>) -> HistoryView {
        HistoryView::of(&chain.read().unwrap_or_else(|e| e.into_inner()))
    }
    fn execute(chain: &SharedChain, work: HistoryWork) -> HistoryOutcome {
        execute(chain, work)
    }
    fn handle(&mut self, input: Input<HistoryOutcome>, now: Time, view: &HistoryView) {
        match input {
            Input::PeerJoined { peer, services } => self.add_peer(peer, services, view),
            Input::PeerLeft { peer } => self.remove_peer(&peer),
            Input::Response { id, response } => self.on_response(id, response, now, view),
            Input::Applied { job, outcome } => self.on_applied(job, outcome, view),
            Input::Tick => {
                if let Some(round) = &mut self.round {
                    let late: Vec<_> =
                        round.batch_sets.time_out(now).into_iter().chain(round.chunks.time_out(now)).collect();
                    round.requests.retain(|_, (p, f)| {
                        let seq = match f {
                            Fetching::BatchSet { seq, .. } | Fetching::Chunk { seq } => *seq,
                        };
                        !late.contains(&(seq, *p))
                    });
                }
            }
            Input::Gossip(_) | Input::PeerHead { .. } | Input::Report(()) => {}
        }
        self.pump(now, view);
    }
    fn poll_action(&mut self) -> Option<Action<HistoryWork>> {
        self.book.poll_action()
    }
    fn next_wakeup(&self) -> Option<Time> {
        let r = self.round.as_ref()?;
        match (r.batch_sets.next_deadline(), r.chunks.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
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
    fn stats(&self) -> HistoryStats {
        self.stats
    }
}

impl HistoryMachine {
    fn discover(&mut self, peer: PeerId, view: &HistoryView) {
        let mut locators = Vec::with_capacity(2);
        if view.head.macro_hash != view.head.election_hash {
            locators.push(view.head.macro_hash);
        }
        locators.push(view.head.election_hash);
        let max_epochs = self.config.max_epochs.clamp(1, MAX_EPOCHS);
        let request = self.book.request(peer, RequestMacroChain { locators, max_epochs });
        self.book.peers.insert(peer, PeerState::Discovering { base: view.head.election_hash, request });
    }

    fn add_peer(&mut self, peer: PeerId, services: Option<Services>, view: &HistoryView) {
        if self.book.peers.contains_key(&peer) {
            return;
        }
        if !services.is_some_and(|s| s.contains(self.config.required_services)) {
            return self.book.emit(MacroSyncReturn::Incompatible(peer));
        }
        self.discover(peer, view);
    }

    fn remove_peer(&mut self, peer: &PeerId) {
        self.book.remove(peer);
        if let Some(round) = &mut self.round {
            round.batch_sets.remove_peer(peer);
            round.chunks.remove_peer(peer);
            round.requests.retain(|_, (p, _)| p != peer);
        }
    }

    fn ban(&mut self, peer: PeerId, reason: PenaltyReason) {
        self.remove_peer(&peer);
        self.book.ban(peer, reason);
    }

    fn on_response(
        &mut self,
        id: RequestId,
        response: Result<AnyResponse, RequestError>,
        now: Time,
        view: &HistoryView,
    ) {
        let Some(peer) = self.book.answered(id) else { return };
        if let Some((_, fetch)) = self.round.as_mut().and_then(|r| r.requests.remove(&id)) {
            return self.on_fetched(peer, fetch, response, now);
        }
        if !matches!(self.book.peers.get(&peer), Some(PeerState::Discovering { request, .. }) if *request == id) {
            return;
        }
        match response {
            Ok(AnyResponse::MacroChain(answer)) => self.on_macro_chain(peer, answer, view),
            Err(e) => self.book.request_failed(peer, &e),
            Ok(_) => {}
        }
    }

    fn on_macro_chain(
        &mut self,
        peer: PeerId,
        answer: Result<MacroChain, petrel_protocol::MacroChainError>,
        view: &HistoryView,
    ) {
        let Some(PeerState::Discovering { base, .. }) = self.book.peers.get(&peer) else { return };
        let base = *base;
        let Ok(answer) = answer else { return self.book.finish(peer, MacroSyncReturn::Outdated(peer)) };
        if answer.epochs.len() > usize::from(self.config.max_epochs.clamp(1, MAX_EPOCHS)) {
            return self.ban(peer, PenaltyReason::WrongAnswer);
        }
        if base != view.head.election_hash {
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
        if view.head.block_hash != view.head.macro_hash {
            // We hold micro blocks past our macro head (e.g. a restart after following live):
            // history cannot be applied on top of them (push_history_sync needs the macro head as
            // head), so live sync catches up from here, block by block.
            return self.book.finish(peer, MacroSyncReturn::Good(peer));
        }
        if let Some(round) = &mut self.round {
            let shares = round.base == base
                && answer.epochs.len() >= round.epochs.len()
                && answer.epochs[..round.epochs.len()] == round.epochs[..];
            let state = if shares {
                round.batch_sets.add_peer(peer);
                round.chunks.add_peer(peer);
                PeerState::Fetching
            } else {
                PeerState::Waiting
            };
            self.book.peers.insert(peer, state);
            return;
        }
        let mut batch_sets = SyncQueue::new(self.config.batch_sets);
        for (index, hash) in answer.epochs.iter().enumerate() {
            batch_sets.push((*hash, policy.election_block_of(our_epoch + index as u32 + 1), index));
        }
        if let Some((number, hash)) = checkpoint {
            batch_sets.push((hash, number, answer.epochs.len()));
        }
        let mut chunks = SyncQueue::new(self.config.chunks);
        batch_sets.add_peer(peer);
        chunks.add_peer(peer);
        self.stats.rounds += 1;
        self.round = Some(Round {
            base,
            epochs: answer.epochs,
            source: peer,
            batch_sets,
            chunks,
            requests: HashMap::new(),
            pending: VecDeque::new(),
            applying: None,
        });
        self.book.peers.insert(peer, PeerState::Fetching);
    }

    fn on_fetched(&mut self, peer: PeerId, fetch: Fetching, response: Result<AnyResponse, RequestError>, now: Time) {
        let Some(round) = &mut self.round else { return };
        match (fetch, response) {
            (Fetching::BatchSet { seq, .. }, Ok(AnyResponse::BatchSet(Ok(info)))) => {
                round.batch_sets.arrived(seq, peer, info, now);
            }
            // Every fetcher listed the round's election blocks itself; only the source the checkpoint.
            (Fetching::BatchSet { index, .. }, Ok(AnyResponse::BatchSet(Err(_))))
                if index < round.epochs.len() || peer == round.source =>
            {
                self.ban(peer, PenaltyReason::MissingAnnounced)
            }
            (Fetching::Chunk { seq }, Ok(AnyResponse::HistoryChunk(Ok(chunk)))) => {
                round.chunks.arrived(seq, peer, chunk, now);
            }
            (Fetching::BatchSet { seq, .. }, Err(e)) | (Fetching::Chunk { seq }, Err(e)) if e.is_peer_fault() => {
                self.book.penalize(peer, Severity::InvalidData, PenaltyReason::MalformedResponse);
                Self::failed(round, fetch, seq, peer);
            }
            (Fetching::BatchSet { seq, .. }, _) | (Fetching::Chunk { seq }, _) => Self::failed(round, fetch, seq, peer),
        }
    }

    fn failed(round: &mut Round, fetch: Fetching, seq: u64, peer: PeerId) {
        match fetch {
            Fetching::BatchSet { .. } => round.batch_sets.failed(seq, peer),
            Fetching::Chunk { .. } => round.chunks.failed(seq, peer),
        };
    }

    fn on_applied(&mut self, job: JobId, outcome: HistoryOutcome, view: &HistoryView) {
        let Some(round) = &mut self.round else { return };
        let Some((_, sender, chunk_senders)) = round.applying.take_if(|(j, ..)| *j == job) else { return };
        match outcome {
            HistoryOutcome::Applied { extended } => self.stats.applied += extended,
            HistoryOutcome::BadBatchSet(_) | HistoryOutcome::Invalid(_) => {
                self.ban(sender, PenaltyReason::InvalidBlock);
                self.end_round(view, None);
            }
            HistoryOutcome::BadChunk(k, _) => {
                if let Some(&culprit) = chunk_senders.get(k) {
                    self.ban(culprit, PenaltyReason::InvalidBlock);
                }
                self.end_round(view, None);
            }
            HistoryOutcome::Stale => self.end_round(view, None),
            HistoryOutcome::Store(_) => self.end_round(view, Some(MacroSyncReturn::Outdated)),
        }
    }

    fn end_round(&mut self, view: &HistoryView, verdict: Option<fn(PeerId) -> MacroSyncReturn>) {
        if let Some(round) = self.round.take() {
            for id in round.requests.keys() {
                self.book.answered(*id);
            }
        }
        let peers: Vec<_> = self
            .book
            .peers
            .iter()
            .filter(|(_, s)| matches!(s, PeerState::Fetching | PeerState::Waiting))
            .map(|(p, _)| *p)
            .collect();
        for peer in peers {
            match verdict {
                Some(v) => self.book.finish(peer, v(peer)),
                None => self.discover(peer, view),
            }
        }
    }

    /// Issues fetches, plans the chunks of batch sets released in order, starts the next job when
    /// a batch set and its chunks are in, and ends the round when it is done or cannot finish.
    fn pump(&mut self, now: Time, view: &HistoryView) {
        let Some(round) = &mut self.round else { return };
        // Batch sets in order: plan their chunks (against the answer's last block).
        let size = u64::from(view.policy.history_chunk_size).max(1);
        while let Some(r) = round.batch_sets.pop_ready() {
            let item = r.id.2;
            let (number, leaves) = match r.item.batch_sets.last() {
                Some((block, proof)) => (block.block_number(), proof.leaves),
                None => (r.id.1, 0),
            };
            let epoch = view.policy.epoch_at(number);
            // Only the current epoch can be partly ours, and only the first batch set of a round
            // can be in it (the others are later epochs).
            let known = if epoch == view.history_epoch && round.pending.is_empty() && round.applying.is_none() {
                view.history_len
            } else {
                0
            };
            let first_chunk = known / size;
            let needed = leaves.div_ceil(size).saturating_sub(first_chunk);
            for index in first_chunk..first_chunk + needed {
                round.chunks.push((item, epoch, number, index));
            }
            round.pending.push_back(Pending {
                asked: r.id.0,
                info: r.item,
                sender: r.peer,
                known,
                first_chunk,
                needed,
                chunks: Vec::with_capacity(needed as usize),
            });
        }
        while let Some(r) = round.chunks.pop_ready() {
            if let Some(p) = round.pending.iter_mut().find(|p| (p.chunks.len() as u64) < p.needed) {
                p.chunks.push((r.item, r.peer));
            }
        }
        // Fetch after releasing: a release frees room in its window, and with nothing else in flight
        // no later input would come to use it (a window of 1 stalled before this order).
        while let Some(f) = round.batch_sets.next_fetch(now) {
            let (hash, _, index) = f.id;
            let id = self.book.request(f.peer, RequestBatchSet { hash });
            round.requests.insert(id, (f.peer, Fetching::BatchSet { seq: f.seq, index }));
            self.stats.batch_set_requests += 1;
        }
        while let Some(f) = round.chunks.next_fetch(now) {
            let (_, epoch, number, index) = f.id;
            let request = RequestHistoryChunk { epoch_number: epoch, block_number: number, chunk_index: index };
            let id = self.book.request(f.peer, request);
            round.requests.insert(id, (f.peer, Fetching::Chunk { seq: f.seq }));
            self.stats.chunk_requests += 1;
        }
        if round.applying.is_none()
            && let Some(front) = round.pending.front()
            && front.chunks.len() as u64 == front.needed
            && let Some(p) = round.pending.pop_front()
        {
            let (chunks, senders): (Vec<_>, Vec<_>) = p.chunks.into_iter().unzip();
            let work = HistoryWork { asked: p.asked, info: p.info, chunks, first_chunk: p.first_chunk, known: p.known };
            let job = self.book.apply(work);
            round.applying = Some((job, p.sender, senders));
        }
        let benched: Vec<_> = round
            .batch_sets
            .peers()
            .iter()
            .copied()
            .filter(|p| round.batch_sets.is_benched(p) || round.chunks.is_benched(p))
            .collect();
        for peer in benched {
            round.batch_sets.remove_peer(&peer);
            round.chunks.remove_peer(&peer);
            round.requests.retain(|_, (p, _)| *p != peer);
            self.book.penalize(peer, Severity::Minor, PenaltyReason::Unresponsive);
            self.book.finish(peer, MacroSyncReturn::Outdated(peer));
        }
        if round.applying.is_some() {
            // Wait for the job before deciding anything about the round.
            return;
        }
        if round.batch_sets.is_finished() && round.chunks.is_finished() && round.pending.is_empty() {
            // Done: ask everyone again (the peers may have more, or report nothing new: Good).
            return self.end_round(view, None);
        }
        let item_failed = |e: &QueueError<_>| matches!(e, QueueError::ItemFailed { .. });
        let batch_set_error = round.batch_sets.error().map(|e| item_failed(&e));
        let chunk_error = round.chunks.error().map(|e| matches!(e, QueueError::ItemFailed { .. }));
        match (batch_set_error, chunk_error) {
            (None, None) => {}
            (Some(true), _) | (_, Some(true)) => self.end_round(view, Some(MacroSyncReturn::Outdated)),
            // Every fetcher is gone (what is half downloaded is dropped); waiting peers may serve
            // another chain.
            _ => self.end_round(view, None),
        }
    }
}

#[cfg(test)]
mod tests;
