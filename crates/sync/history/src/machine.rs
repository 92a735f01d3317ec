//! The History Macro Sync machine (no I/O).
//!
//! Per peer: `RequestMacroChain` with our locators → the election hashes after our election head
//! and possibly a checkpoint. The first peer with something new opens a *round* (the active
//! cluster): a run of epochs, then possibly a checkpoint. Peers whose own list agrees with it join
//! it as fetchers; a peer that agrees on a run and then differs **cuts** the round there (the
//! part all of them share is fetched by all; what follows is asked again at the end, and the first
//! peer to answer decides the branch); a peer that shares nothing with it waits for it to end. A
//! round fetches, through two ordered fetch queues shared by its peers, each listed block's batch
//! sets (`RequestBatchSet`) and then the history chunks those announce (`RequestHistoryChunk`,
//! against the last block of the answer). When a batch set and all its chunks are in, one job
//! verifies them ([`crate::verify`]: blocks against the validators of our chain, chunks against
//! the verified root) and applies each batch set with `push_history_sync`, strictly in order, off
//! the executor; a blocking read or write lock is held only to read the state and to push.
//!
//! Kept downloads: every answer that arrives is also written to the store's `downloads` table by a
//! job on the background lane, and dropped once applied; at start the machine reads back what a
//! previous run kept and uses it in place of fetches (verified like any answer; bad kept data is
//! dropped and costs no peer).
//!
//! Pipelining: when the round's last listed epochs are in flight and the list was full, its peers
//! are asked what follows the last one, and the round grows, so that download never waits for
//! apply between clusters. What waits for apply is bounded (`max_pending` batch sets, and
//! `max_held_chunks` chunks beyond those of the next job); past that the queues' windows fill and
//! fetching pauses. When the round is done its peers are asked again, until they have nothing new
//! (Good).
//!
//! Rules (each has a unit test or an end-to-end test):
//! - a peer without `HISTORY` and `FULL_BLOCKS` is Incompatible;
//! - while we hold micro blocks past our macro head, a peer with something new is Good (live sync
//!   catches up from there: history cannot be applied on top of micro blocks);
//! - discovery answers are judged as in light sync (absurd answers ban; nothing new Good; a stale
//!   answer is asked again);
//! - a peer that does not know our election head is asked from our election block
//!   [`PROBE_DEPTH`] epochs back: if its election block of our epoch is another one, it is on
//!   another chain (an invalid-data penalty, `ConflictingChain`, and Outdated); else it is behind
//!   (Outdated);
//! - "not found" for a batch set of a block the peer listed bans it; a failed or timed-out fetch
//!   is retried on another peer of the round; a failed chunk fetch never bans (a peer may have
//!   pruned);
//! - a batch set that does not verify bans its sender; a chunk that does not verify bans its
//!   sender; a push that fails for the block bans the batch set's sender; each ends the round (the
//!   others ask again); our own store failing ends it with every peer Outdated.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use petrel_blockchain::{Blockchain, DownloadKey, Downloads, PushResult};
use petrel_network_api::{PeerId, PenaltyReason, Request, RequestError, Services, Severity};
use petrel_primitives::wire::{BatchSetInfo, HeadInfo, HistoryChunk, MAX_EPOCHS, MacroChain};
use petrel_primitives::{Blake2bHash, Policy, codec};
use petrel_protocol::{AnyResponse, RequestBatchSet, RequestHistoryChunk, RequestMacroChain};
use petrel_sync_api::MacroSyncReturn;
use petrel_sync_api::machine::{Action, Input, JobId, Lane, Machine, PeerBook, RequestId, Time};
use petrel_sync_api::queue::{QueueConfig, QueueError, SyncQueue};
use serde::{Deserialize, Serialize};

use crate::verify::{BatchSetVerifier, verify_chunk};

/// The full chain store, shared.
pub type SharedChain = Arc<RwLock<Blockchain>>;

/// What history sync's jobs work on: the chain, and its kept downloads (a handle of their own, so
/// that answers are kept while the chain is locked to apply others).
#[derive(Clone, Debug)]
pub struct HistoryChain {
    /// The chain.
    pub chain: SharedChain,
    /// Its kept downloads.
    pub downloads: Downloads,
}

impl From<SharedChain> for HistoryChain {
    fn from(chain: SharedChain) -> Self {
        let downloads = chain.read().unwrap_or_else(|e| e.into_inner()).downloads();
        Self { chain, downloads }
    }
}

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
    /// Batch sets downloaded and waiting for their chunks or for apply, at most.
    pub max_pending: usize,
    /// Chunks held for batch sets after the next one to apply, at most (the next one's are always
    /// taken: an epoch's history is bounded by the policy).
    pub max_held_chunks: usize,
    /// Keep downloaded answers in the chain store until they are applied, and take them back
    /// after a restart instead of fetching them again.
    pub keep_downloads: bool,
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
            max_pending: 4,
            max_held_chunks: 24,
            keep_downloads: true,
        }
    }
}

/// The work of an apply job: verify one batch-set answer and its chunks, then apply it.
#[derive(Clone, Debug, PartialEq, Eq)]
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

/// A downloaded answer kept in the chain store until it is applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(clippy::large_enum_variant)] // a window's worth at a time; the chunks' items are on the heap
pub enum Download {
    /// The batch-set answer for block `number`, whose hash is `asked`.
    BatchSet {
        /// The block's number.
        number: u32,
        /// Its hash.
        asked: Blake2bHash,
        /// The answer.
        info: BatchSetInfo,
    },
    /// History chunk `index` proven against block `number`, whose hash is `block`.
    Chunk {
        /// The block's number.
        number: u32,
        /// Its hash.
        block: Blake2bHash,
        /// The chunk's index.
        index: u64,
        /// The answer.
        chunk: HistoryChunk,
    },
}

impl Download {
    /// Its key in the store: slot `u64::MAX` for a batch set, the index for a chunk.
    pub fn key(&self) -> DownloadKey {
        match self {
            Download::BatchSet { number, .. } => (*number, u64::MAX),
            Download::Chunk { number, index, .. } => (*number, *index),
        }
    }
}

/// Largest kept download read back (a batch-set or chunk answer and its key).
const MAX_DOWNLOAD_RECORD: usize = petrel_protocol::MAX_LARGE_RESPONSE + 1024;

/// Kept downloads read back after a restart, at most (more than any look-ahead).
pub const MAX_RECALL_BYTES: usize = 64 * 1024 * 1024;

/// History sync's jobs.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // a few jobs queued at a time
pub enum HistoryJob {
    /// Verify and apply a batch-set answer with its chunks (main lane).
    Apply(HistoryWork),
    /// Keep these downloads in the store (background lane: never behind an apply).
    Keep(Vec<Download>),
    /// Read back the downloads kept above our macro head (main lane, first).
    Recall,
    /// Drop every kept download (some were found wrong before their apply).
    Forget,
}

/// What a [`HistoryJob`] did.
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
    /// The downloads were kept.
    Kept,
    /// The downloads kept above our macro head (those that decode).
    Recalled(Vec<Download>),
}

/// Runs a history job. After an apply, the kept downloads the chain has passed are dropped; after
/// bad data, every kept download is (it may have come from there).
pub fn run_job(chain: &HistoryChain, job: HistoryJob) -> HistoryOutcome {
    let store_error = |e: petrel_blockchain::ChainError| HistoryOutcome::Store(e.to_string());
    match job {
        HistoryJob::Apply(work) => {
            let outcome = execute(&chain.chain, work);
            // The kept downloads are a cache: failing to trim them changes nothing applied (the
            // rows at or below the head are never read back).
            let _ = match &outcome {
                HistoryOutcome::Applied { .. } => {
                    let head = chain.chain.read().unwrap_or_else(|e| e.into_inner()).state().macro_head.block_number();
                    chain.downloads.clear_through(head)
                }
                HistoryOutcome::BadBatchSet(_) | HistoryOutcome::BadChunk(..) | HistoryOutcome::Invalid(_) => {
                    chain.downloads.clear()
                }
                _ => Ok(()),
            };
            outcome
        }
        HistoryJob::Forget => chain.downloads.clear().map_or_else(store_error, |()| HistoryOutcome::Kept),
        HistoryJob::Keep(downloads) => {
            let entries: Vec<_> =
                downloads.iter().filter_map(|d| codec::encode(d).ok().map(|bytes| (d.key(), bytes))).collect();
            chain.downloads.put(&entries).map_or_else(store_error, |()| HistoryOutcome::Kept)
        }
        HistoryJob::Recall => {
            let head = chain.chain.read().unwrap_or_else(|e| e.into_inner()).state().macro_head.block_number();
            match chain.downloads.above(head, MAX_RECALL_BYTES) {
                Ok(rows) => HistoryOutcome::Recalled(
                    rows.iter()
                        .filter_map(|(key, bytes)| {
                            codec::decode::<Download>(bytes, MAX_DOWNLOAD_RECORD).ok().filter(|d| d.key() == *key)
                        })
                        .collect(),
                ),
                Err(e) => store_error(e),
            }
        }
    }
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
    /// Our election block [`PROBE_DEPTH`] epochs back (epoch, hash), read only for the answers
    /// that need it (a peer that did not know our locators).
    pub probe: Option<(u32, Blake2bHash)>,
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
            probe: None,
        }
    }
}

/// How far back (in epochs) the locator lies with which a peer that did not know our election
/// head is asked again, to tell a peer behind us from one on another chain.
pub const PROBE_DEPTH: u32 = 16;

/// Our election block `PROBE_DEPTH` epochs back (genesis if nearer): its epoch and hash.
fn probe_locator(chain: &Blockchain) -> Option<(u32, Blake2bHash)> {
    let s = chain.state();
    let our_epoch = s.policy.epoch_at(s.election_head.block_number());
    let epoch = our_epoch.checked_sub(1)?.saturating_sub(PROBE_DEPTH - 1);
    let block = chain.block_at(s.policy.election_block_of(epoch), false).ok().flatten()?;
    Some((epoch, block.hash()))
}

#[derive(Debug, PartialEq, Eq)]
enum PeerState {
    /// Asked for the epochs after our election head `base`.
    Discovering { base: Blake2bHash, request: RequestId },
    /// It did not know our election head: asked for the epochs after an older election block of
    /// ours, whose answer must hold our election head `base` at `index` unless the peer is on
    /// another chain.
    Probing { base: Blake2bHash, index: usize, request: RequestId },
    /// Waits for the round to end (what it lists is not what the round fetches).
    Waiting,
    /// Fetches for the round.
    Fetching,
}

/// One fetch in flight; `seq` is the item's position in its queue.
#[derive(Clone, Copy, Debug)]
enum Fetching {
    BatchSet { seq: u64, number: u32, asked: Blake2bHash },
    Chunk { seq: u64, number: u32, index: u64, block: Blake2bHash },
}

/// The "sender" of answers taken back from the store (never penalised).
const KEPT: PeerId = PeerId([0; 32]);

/// Downloads read back from the store, waiting for the round to ask for them.
#[derive(Debug, Default)]
struct Recalled {
    batch_sets: HashMap<Blake2bHash, (u32, BatchSetInfo)>,
    chunks: HashMap<(u32, u64), (Blake2bHash, HistoryChunk)>,
}

impl Recalled {
    /// Drops what is for blocks at or below `number` (the chain has passed them).
    fn drop_through(&mut self, number: u32) {
        self.batch_sets.retain(|_, (n, _)| *n > number);
        self.chunks.retain(|(n, _), _| *n > number);
    }
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

/// Chunk id: (position of its batch set in the round, epoch, verifier block's number, chunk
/// index, verifier block's hash).
type ChunkId = (usize, u32, u32, u64, Blake2bHash);

/// How a peer's list of epochs fits the round.
#[derive(Debug, PartialEq, Eq)]
enum Fit {
    /// It lists this many of the round's items (possibly after the round grew to its list).
    Listed(usize),
    /// It disagreed after a shared run: the round was cut there and it lists all that is left.
    Cut(usize),
    /// It lists another branch where the round already chose one, or shares nothing with it.
    Apart,
}

/// A peer's answer to "what follows the round's epoch `from - 1`".
#[derive(Debug)]
struct Extension {
    peer: PeerId,
    from: usize,
    epochs: Vec<Blake2bHash>,
    checkpoint: Option<(u32, Blake2bHash)>,
    full: bool,
}

/// The cluster being downloaded: a run of epochs (then possibly a checkpoint) that its peers agree
/// on, fetched through two ordered queues shared by those peers, and grown while it downloads
/// when the peers list more.
#[derive(Debug)]
struct Round {
    /// The election block the first epoch follows, and its epoch.
    base: Blake2bHash,
    base_epoch: u32,
    /// The election blocks to fetch, in order; item `i` of the batch-set queue is `epochs[i]`,
    /// item `epochs.len()` the checkpoint, if any.
    epochs: Vec<Blake2bHash>,
    checkpoint: Option<(u32, Blake2bHash)>,
    /// Per fetching peer, how many of the round's items it listed itself: "not found" for one of
    /// those bans it, for a later one it is a plain failure.
    listed: HashMap<PeerId, usize>,
    /// Positions where the round was cut because its peers disagreed. Never twice at one place:
    /// after a cut, the first peer that lists what follows decides the branch.
    cuts: Vec<usize>,
    /// Whether the peers may list epochs after the last one (the last list was full, or the round
    /// was cut).
    more: bool,
    /// The round's length when its peers were last asked what follows it.
    extended_at: Option<usize>,
    /// Those questions in flight: the peer, the position after which it lists, and the epoch hash
    /// asked from.
    extending: HashMap<RequestId, (PeerId, usize, Blake2bHash)>,
    /// Their answers so far, fitted once all are in ([`HistoryMachine::decide_extension`]).
    answers: Vec<Extension>,
    batch_sets: SyncQueue<(Blake2bHash, u32, usize), BatchSetInfo>,
    chunks: SyncQueue<ChunkId, HistoryChunk>,
    requests: HashMap<RequestId, (PeerId, Fetching)>,
    pending: VecDeque<Pending>,
    /// The job running: its id, the batch set's sender and the chunks' senders.
    applying: Option<(JobId, PeerId, Vec<PeerId>)>,
}

impl Round {
    fn new(base: Blake2bHash, base_epoch: u32, config: &HistoryConfig) -> Self {
        Self {
            base,
            base_epoch,
            epochs: Vec::new(),
            checkpoint: None,
            listed: HashMap::new(),
            cuts: Vec::new(),
            more: false,
            extended_at: None,
            extending: HashMap::new(),
            answers: Vec::new(),
            batch_sets: SyncQueue::new(config.batch_sets),
            chunks: SyncQueue::new(config.chunks),
            requests: HashMap::new(),
            pending: VecDeque::new(),
            applying: None,
        }
    }

    /// Epochs, then the checkpoint.
    fn items(&self) -> usize {
        self.epochs.len() + usize::from(self.checkpoint.is_some())
    }

    /// The position after `hash`: 0 for the base, `i + 1` for epoch `i`.
    fn position_after(&self, hash: &Blake2bHash) -> Option<usize> {
        if *hash == self.base {
            return Some(0);
        }
        self.epochs.iter().position(|h| h == hash).map(|i| i + 1)
    }

    fn push_epochs(&mut self, epochs: &[Blake2bHash], policy: &Policy) {
        for hash in epochs {
            let index = self.epochs.len();
            self.batch_sets.push((*hash, policy.election_block_of(self.base_epoch + index as u32 + 1), index));
            self.epochs.push(*hash);
        }
    }

    fn push_checkpoint(&mut self, checkpoint: (u32, Blake2bHash)) {
        self.batch_sets.push((checkpoint.1, checkpoint.0, self.epochs.len()));
        self.checkpoint = Some(checkpoint);
    }

    /// How a peer's list (`epochs` after position `from`, then `checkpoint`) fits; grows the
    /// round to a longer list if it ends at an election block, and cuts it where the peer
    /// disagrees after a shared run, if nothing from there on was released yet.
    fn fit(
        &mut self,
        from: usize,
        epochs: &[Blake2bHash],
        checkpoint: Option<(u32, Blake2bHash)>,
        full: bool,
        policy: &Policy,
    ) -> Fit {
        let ours = &self.epochs[from.min(self.epochs.len())..];
        let shared = ours.iter().zip(epochs).take_while(|(a, b)| a == b).count();
        if shared < ours.len() && shared < epochs.len() {
            let at = from + shared;
            if shared == 0 || (at as u64) < self.batch_sets.released() || self.cuts.contains(&at) {
                return Fit::Apart;
            }
            self.cut(at);
            return Fit::Cut(at);
        }
        if epochs.len() > ours.len() {
            if self.checkpoint.is_some() {
                // The round ends at a checkpoint of the epoch this peer lists more after: it can
                // fetch every epoch; what follows is asked again when the round ends.
                return Fit::Listed(self.epochs.len());
            }
            self.push_epochs(&epochs[shared..], policy);
            if let Some(c) = checkpoint {
                self.push_checkpoint(c);
            }
            self.more = full;
            return Fit::Listed(self.items());
        }
        let mut listed = from + epochs.len();
        if epochs.len() == ours.len() {
            match (self.checkpoint, checkpoint) {
                (Some(a), Some(b)) if a == b => listed += 1,
                (None, Some(c)) => {
                    self.push_checkpoint(c);
                    listed += 1;
                }
                _ => {}
            }
        }
        Fit::Listed(listed)
    }

    /// Cuts the round at position `at`, where its peers disagree (once per position).
    fn cut(&mut self, at: usize) {
        self.drop_from(at);
        for listed in self.listed.values_mut() {
            *listed = (*listed).min(at);
        }
        self.cuts.push(at);
    }

    /// Drops every item from position `at` on, with the fetches and questions about them; what
    /// follows is to be asked again.
    fn drop_from(&mut self, at: usize) {
        self.batch_sets.truncate(at as u64);
        self.epochs.truncate(at);
        self.checkpoint = None;
        self.requests.retain(|_, (_, f)| !matches!(f, Fetching::BatchSet { seq, .. } if *seq >= at as u64));
        self.extending.retain(|_, (_, from, _)| *from <= at);
        self.answers.retain(|a| a.from <= at);
        self.more = true;
        self.extended_at = None;
    }

    /// Drops the items no peer of the round lists any more (their only lister left or was
    /// banned), if none of them was released yet: nobody could serve them. What follows is asked
    /// again.
    fn trim(&mut self) {
        let listed = self.listed.values().copied().max().unwrap_or(0);
        if listed < self.items() && listed as u64 >= self.batch_sets.released() {
            self.drop_from(listed);
        }
    }

    fn join(&mut self, peer: PeerId, listed: usize) {
        self.batch_sets.add_peer(peer);
        self.chunks.add_peer(peer);
        self.listed.insert(peer, listed);
    }

    fn leave(&mut self, peer: &PeerId) {
        self.batch_sets.remove_peer(peer);
        self.chunks.remove_peer(peer);
        self.listed.remove(peer);
        self.requests.retain(|_, (p, _)| p != peer);
        self.extending.retain(|_, (p, ..)| p != peer);
        self.answers.retain(|a| a.peer != *peer);
    }
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HistoryStats {
    /// Rounds started.
    pub rounds: u64,
    /// Times a round's peers were asked what follows it while it downloads.
    pub extensions: u64,
    /// Times a round was cut where its peers disagreed.
    pub splits: u64,
    /// Peers found on another chain than ours.
    pub other_chain: u64,
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
    book: PeerBook<PeerState, HistoryJob>,
    round: Option<Round>,
    stats: HistoryStats,
    /// The highest block a round listed.
    target: Option<u32>,
    /// Answers to write to the store, and the job writing the previous ones.
    to_keep: Vec<Download>,
    /// Keeping failed (the store cannot hold them): no more kept downloads this run.
    keep_off: bool,
    keeping: Option<JobId>,
    /// The job reading kept answers back (at start), and what it read.
    recalling: Option<JobId>,
    recalled: Recalled,
}

impl Machine for HistoryMachine {
    type Config = HistoryConfig;
    type Chain = HistoryChain;
    type View = HistoryView;
    type Work = HistoryJob;
    type Outcome = HistoryOutcome;
    type Event = MacroSyncReturn;
    type Gossip = ();
    type Report = ();
    type Stats = HistoryStats;

    fn new(config: HistoryConfig) -> Self {
        let mut machine = Self { config, ..Default::default() };
        if config.keep_downloads {
            // What a previous run downloaded and did not apply.
            machine.recalling = Some(machine.book.apply(HistoryJob::Recall));
        }
        machine
    }
    fn view(chain: &HistoryChain, input: &Input<HistoryOutcome>) -> HistoryView {
        let chain = chain.chain.read().unwrap_or_else(|e| e.into_inner());
        let mut view = HistoryView::of(&chain);
        // Only a peer that did not know our locators needs the older one (a store read).
        if matches!(input, Input::Response { response: Ok(AnyResponse::MacroChain(Err(_))), .. }) {
            view.probe = probe_locator(&chain);
        }
        view
    }
    fn execute(chain: &HistoryChain, job: HistoryJob) -> HistoryOutcome {
        run_job(chain, job)
    }
    fn lane(job: &HistoryJob) -> Lane {
        match job {
            HistoryJob::Keep(_) => Lane::Background,
            HistoryJob::Apply(_) | HistoryJob::Recall | HistoryJob::Forget => Lane::Main,
        }
    }
    fn handle(&mut self, input: Input<HistoryOutcome>, now: Time, view: &HistoryView) {
        match input {
            Input::PeerJoined { peer, services } => self.add_peer(peer, services, view),
            Input::PeerLeft { peer } => self.remove_peer(&peer),
            Input::Response { id, response } => self.on_response(id, response, now, view),
            Input::Applied { job, outcome } => self.on_applied(job, outcome, view),
            Input::Tick => {
                if let Some(round) = &mut self.round {
                    let late_sets = round.batch_sets.time_out(now);
                    let late_chunks = round.chunks.time_out(now);
                    round.requests.retain(|_, (p, f)| match f {
                        Fetching::BatchSet { seq, .. } => !late_sets.contains(&(*seq, *p)),
                        Fetching::Chunk { seq, .. } => !late_chunks.contains(&(*seq, *p)),
                    });
                }
            }
            Input::Gossip(_) | Input::PeerHead { .. } | Input::Report(()) => {}
        }
        self.pump(now, view);
    }
    fn poll_action(&mut self) -> Option<Action<HistoryJob>> {
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
    fn target(&self) -> Option<u32> {
        self.target
    }
}

impl HistoryMachine {
    fn max_epochs(&self) -> u16 {
        self.config.max_epochs.clamp(1, MAX_EPOCHS)
    }

    fn discover(&mut self, peer: PeerId, view: &HistoryView) {
        let mut locators = Vec::with_capacity(2);
        if view.head.macro_hash != view.head.election_hash {
            locators.push(view.head.macro_hash);
        }
        locators.push(view.head.election_hash);
        let request = self.book.request(peer, RequestMacroChain { locators, max_epochs: self.max_epochs() });
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
            round.leave(peer);
        }
    }

    fn ban(&mut self, peer: PeerId, reason: PenaltyReason) {
        self.remove_peer(&peer);
        self.book.ban(peer, reason);
    }

    /// Out of the round's fetchers, to be asked again when it ends.
    fn wait(&mut self, peer: PeerId) {
        if let Some(round) = &mut self.round {
            round.leave(&peer);
        }
        self.book.peers.insert(peer, PeerState::Waiting);
    }

    fn on_response(
        &mut self,
        id: RequestId,
        response: Result<AnyResponse, RequestError>,
        now: Time,
        view: &HistoryView,
    ) {
        let Some(peer) = self.book.answered(id) else { return };
        if let Some(round) = &mut self.round {
            if let Some((_, fetch)) = round.requests.remove(&id) {
                return self.on_fetched(peer, fetch, response, now);
            }
            if let Some((_, from, base)) = round.extending.remove(&id) {
                return self.on_extension(peer, from, base, response, view);
            }
        }
        match (self.book.peers.get(&peer), response) {
            (Some(PeerState::Discovering { request, .. }), Ok(AnyResponse::MacroChain(answer))) if *request == id => {
                self.on_macro_chain(peer, answer, view)
            }
            (Some(PeerState::Probing { request, .. }), Ok(AnyResponse::MacroChain(answer))) if *request == id => {
                self.on_probe(peer, answer.ok(), view)
            }
            (Some(PeerState::Discovering { request, .. } | PeerState::Probing { request, .. }), Err(e))
                if *request == id =>
            {
                self.book.request_failed(peer, &e)
            }
            _ => {}
        }
    }

    /// A checkpoint that a list of `len` epochs after epoch `base_epoch` may end with: a
    /// non-election macro block of the epoch after them (`Err` otherwise); `None` if we hold it.
    fn check_checkpoint(
        checkpoint: Option<(u32, Blake2bHash)>,
        base_epoch: u32,
        len: usize,
        view: &HistoryView,
    ) -> Result<Option<(u32, Blake2bHash)>, ()> {
        let Some((number, hash)) = checkpoint else { return Ok(None) };
        let policy = view.policy;
        if !policy.is_macro_block_at(number)
            || policy.is_election_block_at(number)
            || policy.epoch_at(number) != base_epoch + len as u32 + 1
        {
            return Err(());
        }
        Ok((number > view.macro_number).then_some((number, hash)))
    }

    fn on_macro_chain(
        &mut self,
        peer: PeerId,
        answer: Result<MacroChain, petrel_protocol::MacroChainError>,
        view: &HistoryView,
    ) {
        let Some(PeerState::Discovering { base, .. }) = self.book.peers.get(&peer) else { return };
        let base = *base;
        if base != view.head.election_hash {
            return self.discover(peer, view);
        }
        let Ok(answer) = answer else { return self.probe(peer, view) };
        let max = usize::from(self.max_epochs());
        if answer.epochs.len() > max {
            return self.ban(peer, PenaltyReason::WrongAnswer);
        }
        let policy = view.policy;
        let our_epoch = policy.epoch_at(view.election_number);
        let Ok(checkpoint) = Self::check_checkpoint(answer.checkpoint, our_epoch, answer.epochs.len(), view) else {
            return self.ban(peer, PenaltyReason::WrongAnswer);
        };
        if answer.epochs.is_empty() && checkpoint.is_none() {
            return self.book.finish(peer, MacroSyncReturn::Good(peer));
        }
        if view.head.block_hash != view.head.macro_hash {
            // We hold micro blocks past our macro head (e.g. a restart after following live):
            // history cannot be applied on top of them (push_history_sync needs the macro head as
            // head), so live sync catches up from here, block by block.
            return self.book.finish(peer, MacroSyncReturn::Good(peer));
        }
        let full = answer.epochs.len() == max;
        if let Some(round) = &mut self.round {
            let Some(from) = round.position_after(&base) else { return self.wait(peer) };
            return self.fitted(peer, from, &answer.epochs, checkpoint, full, view);
        }
        let mut round = Round::new(base, our_epoch, &self.config);
        round.push_epochs(&answer.epochs, &policy);
        if let Some(c) = checkpoint {
            round.push_checkpoint(c);
        }
        round.more = full;
        let items = round.items();
        round.join(peer, items);
        self.stats.rounds += 1;
        self.round = Some(round);
        self.book.peers.insert(peer, PeerState::Fetching);
    }

    /// Joins `peer` to the round (or lets it wait) by how its list fits.
    fn fitted(
        &mut self,
        peer: PeerId,
        from: usize,
        epochs: &[Blake2bHash],
        checkpoint: Option<(u32, Blake2bHash)>,
        full: bool,
        view: &HistoryView,
    ) {
        let max_epochs = self.max_epochs();
        let Some(round) = &mut self.round else { return };
        let listed = match round.fit(from, epochs, checkpoint, full, &view.policy) {
            Fit::Listed(n) if n >= round.epochs.len() => n,
            Fit::Cut(at) => {
                self.stats.splits += 1;
                at
            }
            Fit::Listed(_) | Fit::Apart => return self.wait(peer),
        };
        round.join(peer, listed);
        self.book.peers.insert(peer, PeerState::Fetching);
        // A question about what follows the round is open: this peer gets a vote too.
        let open = round.extending.values().map(|(_, from, base)| (*from, *base)).next();
        if let Some((from, base)) = open
            && listed >= from
            && !round.extending.values().any(|(p, ..)| *p == peer)
            && !round.answers.iter().any(|a| a.peer == peer)
        {
            let id = self.book.request(peer, RequestMacroChain { locators: vec![base], max_epochs });
            round.extending.insert(id, (peer, from, base));
        }
    }

    /// The peer did not know our election head: ask from an older one of ours.
    fn probe(&mut self, peer: PeerId, view: &HistoryView) {
        let our_epoch = view.policy.epoch_at(view.election_number);
        match view.probe {
            Some((epoch, hash)) if epoch < our_epoch => {
                let index = (our_epoch - epoch - 1) as usize;
                let request = self.book.request(
                    peer,
                    RequestMacroChain {
                        locators: vec![hash],
                        max_epochs: u16::try_from(index + 1).unwrap_or(MAX_EPOCHS),
                    },
                );
                self.book.peers.insert(peer, PeerState::Probing { base: view.head.election_hash, index, request });
            }
            _ => self.book.finish(peer, MacroSyncReturn::Outdated(peer)),
        }
    }

    fn on_probe(&mut self, peer: PeerId, answer: Option<MacroChain>, view: &HistoryView) {
        let Some(PeerState::Probing { base, index, .. }) = self.book.peers.get(&peer) else { return };
        let (base, index) = (*base, *index);
        if base != view.head.election_hash {
            return self.discover(peer, view);
        }
        match answer {
            Some(a) if a.epochs.len() > index + 1 => self.ban(peer, PenaltyReason::WrongAnswer),
            Some(a) if a.epochs.get(index).is_some_and(|h| *h != base) => {
                // Its election block of our epoch is another one: it is on another chain.
                self.stats.other_chain += 1;
                self.book.penalize(peer, Severity::InvalidData, PenaltyReason::ConflictingChain);
                self.book.finish(peer, MacroSyncReturn::Outdated(peer));
            }
            // Behind us (or it knows our election block after all, having just switched to it).
            _ => self.book.finish(peer, MacroSyncReturn::Outdated(peer)),
        }
    }

    /// A fetching peer's answer to "what follows the round's epoch `from - 1`".
    fn on_extension(
        &mut self,
        peer: PeerId,
        from: usize,
        base: Blake2bHash,
        response: Result<AnyResponse, RequestError>,
        view: &HistoryView,
    ) {
        let max = usize::from(self.max_epochs());
        let Some(round) = &mut self.round else { return };
        let answer = match response {
            Ok(AnyResponse::MacroChain(Ok(a))) => a,
            // It does not know the election block it listed itself (final: an honest peer never
            // forgets one): a lie, or the cover of one.
            Ok(AnyResponse::MacroChain(Err(_))) => return self.ban(peer, PenaltyReason::MissingAnnounced),
            Err(e) if e.is_peer_fault() => {
                self.book.penalize(peer, Severity::InvalidData, PenaltyReason::MalformedResponse);
                return self.wait(peer);
            }
            Err(_) | Ok(_) => return,
        };
        if answer.epochs.len() > max {
            return self.ban(peer, PenaltyReason::WrongAnswer);
        }
        if from == 0 || round.epochs.get(from - 1) != Some(&base) {
            // The round was cut below what was asked (and may have grown another way since).
            return;
        }
        let Ok(checkpoint) =
            Self::check_checkpoint(answer.checkpoint, round.base_epoch + from as u32, answer.epochs.len(), view)
        else {
            return self.ban(peer, PenaltyReason::WrongAnswer);
        };
        if answer.epochs.is_empty() && checkpoint.is_none() {
            // Nothing after what it listed: if the round grows, it cannot fetch the rest.
            round.answers.push(Extension { peer, from, epochs: Vec::new(), checkpoint: None, full: false });
            return;
        }
        let full = answer.epochs.len() == max;
        round.answers.push(Extension { peer, from, epochs: answer.epochs, checkpoint, full });
    }

    /// Once every peer asked what follows position `from` has answered (or failed), fits the
    /// answers, the branch most of them list first: one fast peer cannot choose the branch for
    /// the others.
    fn decide_extension(&mut self, view: &HistoryView) {
        let Some(round) = &mut self.round else { return };
        if round.answers.is_empty() || !round.extending.is_empty() {
            return;
        }
        let mut answers = std::mem::take(&mut round.answers);
        let votes: Vec<usize> = answers
            .iter()
            .map(|a| answers.iter().filter(|b| b.from == a.from && b.epochs.first() == a.epochs.first()).count())
            .collect();
        let mut order: Vec<usize> = (0..answers.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(votes[i]));
        let mut answers: Vec<Option<Extension>> = answers.drain(..).map(Some).collect();
        for i in order {
            let Some(a) = answers[i].take() else { continue };
            // Gone or out of the round since it answered.
            if self.book.peers.get(&a.peer) != Some(&PeerState::Fetching) {
                continue;
            }
            self.fitted(a.peer, a.from, &a.epochs, a.checkpoint, a.full, view);
        }
    }

    fn on_fetched(&mut self, peer: PeerId, fetch: Fetching, response: Result<AnyResponse, RequestError>, now: Time) {
        let Some(round) = &mut self.round else { return };
        let listed = round.listed.get(&peer).copied().unwrap_or(0) as u64;
        let keep = self.config.keep_downloads && !self.keep_off;
        match (fetch, response) {
            (Fetching::BatchSet { seq, number, asked }, Ok(AnyResponse::BatchSet(Ok(info)))) => {
                let copy = keep.then(|| info.clone());
                if round.batch_sets.arrived(seq, peer, info, now)
                    && let Some(info) = copy
                {
                    self.to_keep.push(Download::BatchSet { number, asked, info });
                }
            }
            // "Not found" for a block it listed itself.
            (Fetching::BatchSet { seq, .. }, Ok(AnyResponse::BatchSet(Err(_)))) if seq < listed => {
                self.ban(peer, PenaltyReason::MissingAnnounced)
            }
            (Fetching::Chunk { seq, number, index, block }, Ok(AnyResponse::HistoryChunk(Ok(chunk)))) => {
                let copy = keep.then(|| chunk.clone());
                if round.chunks.arrived(seq, peer, chunk, now)
                    && let Some(chunk) = copy
                {
                    self.to_keep.push(Download::Chunk { number, block, index, chunk });
                }
            }
            (Fetching::BatchSet { seq, .. }, Err(e)) | (Fetching::Chunk { seq, .. }, Err(e)) if e.is_peer_fault() => {
                self.book.penalize(peer, Severity::InvalidData, PenaltyReason::MalformedResponse);
                Self::failed(round, fetch, seq, peer);
            }
            (Fetching::BatchSet { seq, .. }, _) | (Fetching::Chunk { seq, .. }, _) => {
                Self::failed(round, fetch, seq, peer)
            }
        }
    }

    fn failed(round: &mut Round, fetch: Fetching, seq: u64, peer: PeerId) {
        match fetch {
            Fetching::BatchSet { .. } => round.batch_sets.failed(seq, peer),
            Fetching::Chunk { .. } => round.chunks.failed(seq, peer),
        };
    }

    fn on_applied(&mut self, job: JobId, outcome: HistoryOutcome, view: &HistoryView) {
        if self.keeping == Some(job) || self.recalling == Some(job) {
            self.keeping.take_if(|j| *j == job);
            self.recalling.take_if(|j| *j == job);
            match outcome {
                HistoryOutcome::Recalled(downloads) => {
                    for d in downloads {
                        match d {
                            Download::BatchSet { number, asked, info } => {
                                self.recalled.batch_sets.insert(asked, (number, info));
                            }
                            Download::Chunk { number, block, index, chunk } => {
                                self.recalled.chunks.insert((number, index), (block, chunk));
                            }
                        }
                    }
                }
                // The kept downloads are a cache: if they cannot be written or read, sync on
                // without them.
                HistoryOutcome::Store(_) => {
                    self.keep_off = true;
                    self.to_keep.clear();
                }
                _ => {}
            }
            return;
        }
        let Some(round) = &mut self.round else { return };
        let Some((_, sender, chunk_senders)) = round.applying.take_if(|(j, ..)| *j == job) else { return };
        match outcome {
            HistoryOutcome::Applied { extended } => self.stats.applied += extended,
            HistoryOutcome::BadBatchSet(_) | HistoryOutcome::Invalid(_) => {
                // The job dropped every kept download; what waits to be kept may hold the bad data.
                self.to_keep.clear();
                if sender != KEPT {
                    self.ban(sender, PenaltyReason::InvalidBlock);
                }
                self.end_round(view, None);
            }
            HistoryOutcome::BadChunk(k, _) => {
                self.to_keep.clear();
                if let Some(&culprit) = chunk_senders.get(k).filter(|p| **p != KEPT) {
                    self.ban(culprit, PenaltyReason::InvalidBlock);
                }
                self.end_round(view, None);
            }
            HistoryOutcome::Stale | HistoryOutcome::Kept | HistoryOutcome::Recalled(_) => self.end_round(view, None),
            HistoryOutcome::Store(_) => self.end_round(view, Some(MacroSyncReturn::Outdated)),
        }
    }

    fn end_round(&mut self, view: &HistoryView, verdict: Option<fn(PeerId) -> MacroSyncReturn>) {
        if let Some(round) = self.round.take() {
            for id in round.requests.keys().chain(round.extending.keys()) {
                self.book.answered(*id);
            }
        }
        self.recalled.drop_through(view.macro_number);
        for peer in self.book.peers_in(|s| matches!(s, PeerState::Fetching | PeerState::Waiting)) {
            match verdict {
                Some(v) => self.book.finish(peer, v(peer)),
                None => self.discover(peer, view),
            }
        }
    }

    /// Releases what arrived in order (as far as the bounds on what waits for apply allow), asks
    /// the round's peers what follows it when its end is in flight, issues fetches, starts the next
    /// job when a batch set and its chunks are in, and ends the round when it is done or cannot
    /// finish.
    fn pump(&mut self, now: Time, view: &HistoryView) {
        self.decide_extension(view);
        let max_epochs = self.max_epochs();
        // Keep what arrived, one write at a time (the next one takes what arrives meanwhile).
        if self.keeping.is_none() && !self.to_keep.is_empty() {
            let mut downloads = std::mem::take(&mut self.to_keep);
            // Already applied: nothing to keep.
            downloads.retain(|d| d.key().0 > view.macro_number);
            if !downloads.is_empty() {
                self.keeping = Some(self.book.apply(HistoryJob::Keep(downloads)));
            }
        }
        let Some(round) = &mut self.round else { return };
        if !round.listed.is_empty() {
            round.trim();
        }
        // Answers a previous run kept stand in for fetches.
        if !self.recalled.batch_sets.is_empty() {
            let kept = &mut self.recalled.batch_sets;
            round.batch_sets.fill_with(|(hash, _, _)| kept.remove(hash).map(|(_, info)| (info, KEPT)));
        }
        let last = match round.checkpoint {
            Some((number, _)) => number,
            None => view.policy.election_block_of(round.base_epoch + round.epochs.len() as u32),
        };
        self.target = self.target.max(Some(last));
        // Batch sets in order: plan their chunks (against the answer's last block).
        let size = u64::from(view.policy.history_chunk_size).max(1);
        // Most history items an epoch can hold: a larger announced size is a lie, refused before
        // chunks are planned for it (the answer is verified in full only by its job).
        let policy = view.policy;
        let max_leaves = u64::from(policy.blocks_per_epoch()) * u64::from(policy.max_transactions_per_block)
            + u64::from(policy.batches_per_epoch) * u64::from(policy.slots);
        let mut liar = None;
        while round.pending.len() < self.config.max_pending.max(1)
            && let Some(r) = round.batch_sets.pop_ready()
        {
            let item = r.id.2;
            let (number, leaves) = match r.item.batch_sets.last() {
                Some((block, proof)) => (block.block_number(), proof.leaves),
                None => (r.id.1, 0),
            };
            if leaves > max_leaves {
                liar = Some(r.peer);
                break;
            }
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
                round.chunks.push((item, epoch, number, index, r.id.0));
            }
            if !self.recalled.chunks.is_empty() {
                let kept = &mut self.recalled.chunks;
                round.chunks.fill_with(|(_, _, number, index, block)| {
                    kept.remove(&(*number, *index)).filter(|(b, _)| b == block).map(|(_, chunk)| (chunk, KEPT))
                });
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
        if let Some(peer) = liar {
            if peer == KEPT {
                // Our own kept data is wrong: forget all of it.
                self.recalled = Recalled::default();
                self.book.apply(HistoryJob::Forget);
            } else {
                self.ban(peer, PenaltyReason::InvalidBlock);
            }
            return self.end_round(view, None);
        }
        // Chunks in order, to the first batch set still missing some. Those of later batch sets
        // than the next job's are held only up to a bound: the queue's window then fills and
        // fetching waits for apply (memory stays bounded however far download runs ahead).
        while let Some(to) = round.pending.iter().position(|p| (p.chunks.len() as u64) < p.needed) {
            let held: usize = round.pending.iter().skip(1).map(|p| p.chunks.len()).sum();
            if to > 0 && held >= self.config.max_held_chunks {
                break;
            }
            let Some(r) = round.chunks.pop_ready() else { break };
            round.pending[to].chunks.push((r.item, r.peer));
        }
        // Pipelining: when the round's last items are in flight, ask its peers what follows, so
        // that the next epochs download while these apply.
        if round.more
            && round.checkpoint.is_none()
            && round.extended_at != Some(round.epochs.len())
            && round.batch_sets.remaining() <= round.batch_sets.config().window
            && let Some(last) = round.epochs.last().copied()
        {
            let from = round.epochs.len();
            round.extended_at = Some(from);
            let mut askers: Vec<_> = round.listed.iter().filter(|(_, l)| **l >= from).map(|(p, _)| *p).collect();
            askers.sort();
            for peer in askers {
                let id = self.book.request(peer, RequestMacroChain { locators: vec![last], max_epochs });
                round.extending.insert(id, (peer, from, last));
            }
            self.stats.extensions += 1;
        }
        // Fetch after releasing: a release frees room in its window, and with nothing else in flight
        // no later input would come to use it (a window of 1 stalled before this order). Not before
        // the answers kept by a previous run are back: they stand in for fetches.
        while self.recalling.is_none()
            && let Some(f) = round.batch_sets.next_fetch(now)
        {
            let (hash, number, _) = f.id;
            let id = self.book.request(f.peer, RequestBatchSet { hash });
            round.requests.insert(id, (f.peer, Fetching::BatchSet { seq: f.seq, number, asked: hash }));
            self.stats.batch_set_requests += 1;
        }
        while self.recalling.is_none()
            && let Some(f) = round.chunks.next_fetch(now)
        {
            let (_, epoch, number, index, block) = f.id;
            let request = RequestHistoryChunk { epoch_number: epoch, block_number: number, chunk_index: index };
            let id = self.book.request(f.peer, request);
            round.requests.insert(id, (f.peer, Fetching::Chunk { seq: f.seq, number, index, block }));
            self.stats.chunk_requests += 1;
        }
        if round.applying.is_none()
            && let Some(front) = round.pending.front()
            && front.chunks.len() as u64 == front.needed
            && let Some(p) = round.pending.pop_front()
        {
            let (chunks, senders): (Vec<_>, Vec<_>) = p.chunks.into_iter().unzip();
            let work = HistoryWork { asked: p.asked, info: p.info, chunks, first_chunk: p.first_chunk, known: p.known };
            let job = self.book.apply(HistoryJob::Apply(work));
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
            round.leave(&peer);
            self.book.penalize(peer, Severity::Minor, PenaltyReason::Unresponsive);
            self.book.finish(peer, MacroSyncReturn::Outdated(peer));
        }
        if round.applying.is_some() {
            // Wait for the job before deciding anything about the round.
            return;
        }
        if round.batch_sets.is_finished()
            && round.chunks.is_finished()
            && round.pending.is_empty()
            && round.extending.is_empty()
        {
            // Done: ask everyone again (the peers may have more, or report nothing new: Good).
            // Kept answers this round did not use are for another branch.
            self.recalled = Recalled::default();
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
