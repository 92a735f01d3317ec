//! The full chain store on redb: blocks by hash, the main chain by number, heads, accounts and
//! per-epoch history. Every write is one redb transaction, so a crash leaves the store at its last
//! committed block; on open the in-memory state is rebuilt and checked against the head's roots.

use std::path::Path;
use std::sync::Arc;

use petrel_primitives::history::{HistoryItem, HistoryTree, SizeProof, mmr_root_of, mmr_size};
use petrel_primitives::{Blake2bHash, Block, GenesisConfig, MacroBlock, Policy, codec};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::ChainError;
use crate::events::{ChainEvent, EVENT_CAPACITY};
use crate::queries::HeadInfo;
use crate::state::{Applied, ChainState};
use crate::tables::*;

/// Serialized history bytes after which a checkpoint closes a batch set (protocol-reference §1.7).
pub const BATCH_SET_MAX_HISTORY_BYTES: u64 = 25 * 1024 * 1024;

/// Result of a successful push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushResult {
    /// The block became the new head.
    Extended,
    /// The block is already stored.
    Known,
    /// The block is at or below the head and not ours (forks are not followed).
    Ignored,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ChainInfo {
    pub(crate) genesis_hash: Blake2bHash,
    pub(crate) head_hash: Blake2bHash,
    pub(crate) macro_head_hash: Blake2bHash,
    pub(crate) election_head_hash: Blake2bHash,
    /// Epochs below this have no history any more.
    pub(crate) history_pruned_before: u32,
    /// History bytes since the last batch-set boundary of the head's epoch.
    pub(crate) history_bytes_in_set: u64,
}

/// Options of the full chain store.
#[derive(Debug, Clone, Copy)]
pub struct ChainOptions {
    /// fsync every commit (`true` in production). `false` is for throwaway test and benchmark
    /// stores only: a crash may then lose recent blocks (never corrupt the store).
    pub durable: bool,
    /// History bytes after which a checkpoint ends a batch set (what one `RequestBatchSet` answer
    /// and its chunks carry at most, roughly); [`BATCH_SET_MAX_HISTORY_BYTES`] by default. Small
    /// values let tests reach several batch sets per epoch.
    pub batch_set_max_history_bytes: u64,
    /// Memory for redb's page cache, at most ([`DEFAULT_CACHE_BYTES`] by default). redb's own
    /// default (1 GiB) lets a node's memory grow with its store.
    pub cache_bytes: usize,
}

/// Default ceiling of the store's page cache: holds the B-trees' inner pages many times over.
pub const DEFAULT_CACHE_BYTES: usize = 64 * 1024 * 1024;

impl Default for ChainOptions {
    fn default() -> Self {
        Self {
            durable: true,
            batch_set_max_history_bytes: BATCH_SET_MAX_HISTORY_BYTES,
            cache_bytes: DEFAULT_CACHE_BYTES,
        }
    }
}

/// The full chain (history and full nodes).
pub struct Blockchain {
    db: Arc<Database>,
    state: ChainState,
    info: ChainInfo,
    genesis: GenesisConfig,
    events: broadcast::Sender<ChainEvent>,
    options: ChainOptions,
}

impl std::fmt::Debug for Blockchain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blockchain").field("head", &self.state.head_number()).finish_non_exhaustive()
    }
}

impl Blockchain {
    /// Opens the store at `path`, creating it with `genesis` if it does not exist. An existing store
    /// must hold the same network.
    pub fn open(path: &Path, genesis: &GenesisConfig, options: ChainOptions) -> Result<Self, ChainError> {
        guard_corruption(|| Self::open_inner(path, genesis, options))
    }

    fn open_inner(path: &Path, genesis: &GenesisConfig, options: ChainOptions) -> Result<Self, ChainError> {
        let db = redb::Builder::new().set_cache_size(options.cache_bytes).create(path)?;
        let configured = genesis.genesis_hash()?;
        let stored = {
            let rtx = db.begin_read()?;
            match rtx.open_table(META) {
                Ok(meta) => match meta.get(META_CHAIN_INFO)? {
                    Some(v) => Some(decode::<ChainInfo>("meta", v.value(), MAX_RECORD)?),
                    None => None,
                },
                Err(redb::TableError::TableDoesNotExist(_)) => None,
                Err(e) => return Err(e.into()),
            }
        };
        match stored {
            None => Self::create(db, genesis, options),
            Some(info) if info.genesis_hash != configured => {
                Err(ChainError::GenesisMismatch { stored: info.genesis_hash, configured })
            }
            Some(info) => Self::load(db, genesis.clone(), info, options),
        }
    }

    /// Opens an existing store using the genesis config stored inside it.
    pub fn open_existing(path: &Path, options: ChainOptions) -> Result<Self, ChainError> {
        if !path.exists() {
            return Err(ChainError::Io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{} does not exist", path.display()),
            )));
        }
        let genesis = guard_corruption(|| read_genesis(&Database::open(path)?))?;
        Self::open(path, &genesis, options)
    }

    fn create(db: Database, genesis: &GenesisConfig, options: ChainOptions) -> Result<Self, ChainError> {
        let state = ChainState::genesis(genesis)?;
        let block = Block::Macro(genesis.genesis_block()?);
        let hash = block.hash();
        let info = ChainInfo {
            genesis_hash: hash,
            head_hash: hash,
            macro_head_hash: hash,
            election_head_hash: hash,
            history_pruned_before: 0,
            history_bytes_in_set: 0,
        };
        let wtx = db.begin_write()?;
        {
            let mut blocks = wtx.open_table(BLOCKS)?;
            blocks.insert(hash.0, codec::encode(&block)?.as_slice())?;
            wtx.open_table(MAIN_CHAIN)?.insert(block.block_number(), hash.0)?;
            wtx.open_table(HISTORY_LEN)?.insert(block.block_number(), 0)?;
            let mut accounts = wtx.open_table(ACCOUNTS)?;
            for (i, entry) in state.accounts.entries().iter().enumerate() {
                accounts.insert(i as u32, codec::encode(entry)?.as_slice())?;
            }
            let mut meta = wtx.open_table(META)?;
            meta.insert(META_GENESIS, genesis.to_toml().as_bytes())?;
            meta.insert(META_CHAIN_INFO, codec::encode(&info)?.as_slice())?;
            // Create the remaining tables so read transactions can open them.
            wtx.open_table(HISTORY_ITEMS)?;
            wtx.open_table(HISTORY_NODES)?;
            wtx.open_table(BATCH_SET_ENDS)?;
        }
        wtx.commit()?;
        let db = Arc::new(db);
        Ok(Self { db, state, info, genesis: genesis.clone(), events: broadcast::channel(EVENT_CAPACITY).0, options })
    }

    fn load(db: Database, genesis: GenesisConfig, info: ChainInfo, options: ChainOptions) -> Result<Self, ChainError> {
        let mut state = ChainState::genesis(&genesis)?;
        {
            let rtx = db.begin_read()?;
            let blocks = rtx.open_table(BLOCKS)?;
            let get_macro = |hash: &Blake2bHash, what: &'static str| -> Result<MacroBlock, ChainError> {
                read_block(&blocks, hash)?
                    .and_then(Block::into_macro)
                    .ok_or_else(|| ChainError::corrupted("meta", format!("{what} {hash} is not a stored macro block")))
            };
            let head = read_block(&blocks, &info.head_hash)?
                .ok_or_else(|| ChainError::corrupted("meta", format!("head {} is not stored", info.head_hash)))?;
            state.macro_head = MacroBlock { body: None, ..get_macro(&info.macro_head_hash, "macro head")? };
            state.election_head = MacroBlock { body: None, ..get_macro(&info.election_head_hash, "election head")? };
            state.validators = state
                .election_head
                .header
                .validators
                .as_ref()
                .ok_or_else(|| ChainError::corrupted("meta", "election head without validators"))?
                .check_keys()
                .map_err(|e| ChainError::corrupted("blocks", format!("election head: {e}")))?;
            state.head = head.without_body();
            state.head_hash = info.head_hash;

            let mut entries = Vec::new();
            for (i, row) in rtx.open_table(ACCOUNTS)?.iter()?.enumerate() {
                let (k, v) = row?;
                if k.value() as usize != i {
                    return Err(ChainError::corrupted("accounts", format!("gap at leaf {i}")));
                }
                entries.push(decode("accounts", v.value(), MAX_RECORD)?);
            }
            state.accounts = petrel_primitives::AccountTree::from_entries(entries);
            if state.accounts.root() != *state.head.state_root() {
                return Err(ChainError::corrupted("accounts", "accounts do not match the head's state root"));
            }

            let head_number = state.head_number();
            let epoch = state.policy.epoch_at(head_number);
            let leaves = rtx
                .open_table(HISTORY_LEN)?
                .get(head_number)?
                .map(|v| v.value())
                .ok_or_else(|| ChainError::corrupted("history_len", format!("no entry for head {head_number}")))?;
            let nodes_table = rtx.open_table(HISTORY_NODES)?;
            let mut nodes = Vec::with_capacity(mmr_size(leaves) as usize);
            for row in nodes_table.range((epoch, 0)..(epoch, mmr_size(leaves)))? {
                nodes.push(Blake2bHash(row?.1.value()));
            }
            state.history =
                HistoryTree::from_nodes(nodes, leaves).map_err(|e| ChainError::corrupted("history_nodes", e))?;
            state.history_epoch = epoch;
            if state.history.root() != *state.head.history_root() {
                return Err(ChainError::corrupted("history_nodes", "history does not match the head's history root"));
            }
        }
        let db = Arc::new(db);
        Ok(Self { db, state, info, genesis, events: broadcast::channel(EVENT_CAPACITY).0, options })
    }

    /// The chain's policy.
    pub fn policy(&self) -> &Policy {
        &self.state.policy
    }

    /// The genesis config of the stored network.
    pub fn genesis(&self) -> &GenesisConfig {
        &self.genesis
    }

    /// The in-memory state (heads, validators, accounts, current history).
    pub fn state(&self) -> &ChainState {
        &self.state
    }

    /// Head number, hash, macro head hash and election head hash.
    pub fn head(&self) -> HeadInfo {
        HeadInfo {
            block_number: self.state.head_number(),
            block_hash: self.state.head_hash,
            macro_hash: self.info.macro_head_hash,
            election_hash: self.info.election_head_hash,
        }
    }

    /// Subscribes to chain events. The channel is bounded: a receiver that falls more than
    /// [`EVENT_CAPACITY`] events behind loses the oldest ones (and is told so by `Lagged`).
    pub fn subscribe(&self) -> broadcast::Receiver<ChainEvent> {
        self.events.subscribe()
    }

    /// Validates `block` fully and makes it the new head.
    pub fn push(&mut self, block: Block) -> Result<PushResult, ChainError> {
        let hash = block.hash();
        if self.contains(&hash)? {
            return Ok(PushResult::Known);
        }
        if block.block_number() <= self.state.head_number() {
            return Ok(PushResult::Ignored);
        }
        let applied = self.state.apply_block(block)?;
        self.persist(applied, false)?;
        Ok(PushResult::Extended)
    }

    /// Applies a macro block with the history since the macro head (history sync).
    pub fn push_history_sync(
        &mut self,
        block: MacroBlock,
        history: Vec<HistoryItem>,
    ) -> Result<PushResult, ChainError> {
        let hash = block.hash();
        if self.contains(&hash)? {
            return Ok(PushResult::Known);
        }
        if block.block_number() <= self.state.macro_head.block_number() {
            return Ok(PushResult::Ignored);
        }
        let applied = self.state.apply_history(block, history)?;
        self.persist(applied, true)?;
        Ok(PushResult::Extended)
    }

    fn persist(&mut self, applied: Applied, from_history: bool) -> Result<(), ChainError> {
        match self.write(&applied) {
            Ok(info) => {
                self.info = info;
                let number = applied.block.block_number();
                let hash = applied.hash;
                // Sending fails only when nobody listens, which is fine.
                let _ = self.events.send(ChainEvent::Extended { number, hash });
                if from_history {
                    let _ = self.events.send(ChainEvent::HistoryAdopted { number, hash });
                }
                if applied.block.is_election() {
                    let _ = self.events.send(ChainEvent::EpochFinalized { number, hash });
                } else if applied.block.is_macro() {
                    let _ = self.events.send(ChainEvent::Finalized { number, hash });
                }
                Ok(())
            }
            Err(e) => {
                self.state.revert(applied);
                Err(e)
            }
        }
    }

    fn write(&self, applied: &Applied) -> Result<ChainInfo, ChainError> {
        let block = &applied.block;
        let number = block.block_number();
        let mut info = self.info.clone();
        info.head_hash = applied.hash;
        let mut wtx = self.db.begin_write()?;
        if !self.options.durable {
            wtx.set_durability(Durability::None).map_err(|e| ChainError::Storage(e.to_string()))?;
        }
        {
            wtx.open_table(BLOCKS)?.insert(applied.hash.0, codec::encode(block)?.as_slice())?;
            wtx.open_table(MAIN_CHAIN)?.insert(number, applied.hash.0)?;
            wtx.open_table(HISTORY_LEN)?.insert(number, applied.first_leaf + applied.history.len() as u64)?;
            let mut accounts = wtx.open_table(ACCOUNTS)?;
            for (index, address, account) in &applied.accounts {
                accounts.insert(*index, codec::encode(&(address, account))?.as_slice())?;
            }
            let mut items = wtx.open_table(HISTORY_ITEMS)?;
            let mut bytes = 0u64;
            for (i, item) in applied.history.iter().enumerate() {
                let encoded = codec::encode(item)?;
                bytes += encoded.len() as u64;
                items.insert((applied.epoch, applied.first_leaf + i as u64), encoded.as_slice())?;
            }
            let mut nodes = wtx.open_table(HISTORY_NODES)?;
            for (pos, node) in self.state.history.nodes().iter().enumerate().skip(applied.first_node as usize) {
                nodes.insert((applied.epoch, pos as u64), node.0)?;
            }
            if let Block::Macro(m) = block {
                info.macro_head_hash = applied.hash;
                if m.is_election() {
                    info.election_head_hash = applied.hash;
                    info.history_bytes_in_set = 0;
                } else {
                    info.history_bytes_in_set += bytes;
                    if info.history_bytes_in_set > self.options.batch_set_max_history_bytes {
                        wtx.open_table(BATCH_SET_ENDS)?.insert((applied.epoch, number), ())?;
                        info.history_bytes_in_set = 0;
                    }
                }
            } else {
                info.history_bytes_in_set += bytes;
            }
            wtx.open_table(META)?.insert(META_CHAIN_INFO, codec::encode(&info)?.as_slice())?;
        }
        Self::commit(wtx)?;
        Ok(info)
    }

    fn commit(wtx: WriteTransaction) -> Result<(), ChainError> {
        wtx.commit()?;
        Ok(())
    }

    /// Whether a block with this hash is stored.
    pub fn contains(&self, hash: &Blake2bHash) -> Result<bool, ChainError> {
        Ok(self.db.begin_read()?.open_table(BLOCKS)?.get(hash.0)?.is_some())
    }

    /// Deletes the history (items, tree nodes, lengths, batch-set boundaries and micro blocks) of
    /// every epoch before `epoch_at(head) − keep_epochs`; the head's epoch and the `keep_epochs`
    /// epochs before it stay. Macro blocks stay. Returns the first epoch kept.
    pub fn prune_history(&mut self, keep_epochs: u32) -> Result<u32, ChainError> {
        let current = self.state.policy.epoch_at(self.state.head_number());
        let keep_from = current.saturating_sub(keep_epochs).max(self.info.history_pruned_before);
        if keep_from <= self.info.history_pruned_before {
            return Ok(self.info.history_pruned_before);
        }
        let policy = self.state.policy;
        let mut info = self.info.clone();
        info.history_pruned_before = keep_from;
        let wtx = self.db.begin_write()?;
        {
            let from = self.info.history_pruned_before;
            wtx.open_table(HISTORY_ITEMS)?.retain_in((from, 0)..(keep_from, 0), |_, _| false)?;
            wtx.open_table(HISTORY_NODES)?.retain_in((from, 0)..(keep_from, 0), |_, _| false)?;
            wtx.open_table(BATCH_SET_ENDS)?.retain_in((from, 0)..(keep_from, 0), |_, _| false)?;
            let first_kept_block = policy.first_block_of(keep_from);
            wtx.open_table(HISTORY_LEN)?.retain_in(policy.genesis_block_number + 1..first_kept_block, |_, _| false)?;
            let mut main = wtx.open_table(MAIN_CHAIN)?;
            let mut blocks = wtx.open_table(BLOCKS)?;
            let first = policy.first_block_of(from.max(1));
            let last = policy.election_block_of(keep_from.saturating_sub(1));
            let mut micro = Vec::new();
            for row in main.range(first..=last)? {
                let (k, v) = row?;
                if policy.is_micro_block_at(k.value()) {
                    micro.push((k.value(), v.value()));
                }
            }
            for (number, hash) in micro {
                main.remove(number)?;
                blocks.remove(hash)?;
            }
            wtx.open_table(META)?.insert(META_CHAIN_INFO, codec::encode(&info)?.as_slice())?;
        }
        wtx.commit()?;
        self.info = info;
        Ok(keep_from)
    }

    /// First epoch whose history is still stored.
    pub fn history_pruned_before(&self) -> u32 {
        self.info.history_pruned_before
    }

    pub(crate) fn db(&self) -> &Database {
        &self.db
    }

    /// A shared handle of the database.
    pub(crate) fn db_handle(&self) -> Arc<Database> {
        self.db.clone()
    }

    /// Whether commits are fsynced ([`ChainOptions::durable`]).
    pub(crate) fn is_durable(&self) -> bool {
        self.options.durable
    }

    /// Size proof of the history of `epoch` after block `number`.
    pub(crate) fn size_proof<T: ReadableTable<(u32, u64), [u8; 32]>, L: ReadableTable<u32, u64>>(
        &self,
        nodes: &T,
        lens: &L,
        epoch: u32,
        number: u32,
    ) -> Result<SizeProof, ChainError> {
        let leaves = lens
            .get(number)?
            .map(|v| v.value())
            .ok_or_else(|| ChainError::corrupted("history_len", format!("no entry for block {number}")))?;
        let mmr_root = mmr_root_of(&TableNodes { table: nodes, epoch }, leaves)?;
        Ok(SizeProof { leaves, mmr_root })
    }
}

/// Runs `f`, turning a panic inside the storage engine into [`ChainError::Corrupted`]: redb 4
/// asserts on some kinds of damaged pages instead of returning an error, and a damaged file must
/// be an error value for our callers.
pub(crate) fn guard_corruption<T>(f: impl FnOnce() -> Result<T, ChainError>) -> Result<T, ChainError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(panic) => {
            let reason = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "storage engine failure".to_string());
            Err(ChainError::corrupted("database", reason))
        }
    }
}

/// Reads the genesis config stored in a database.
pub(crate) fn read_genesis(db: &Database) -> Result<GenesisConfig, ChainError> {
    let rtx = db.begin_read()?;
    let meta = match rtx.open_table(META) {
        Ok(meta) => meta,
        Err(redb::TableError::TableDoesNotExist(_)) => {
            return Err(ChainError::corrupted("meta", "the store was never initialised (no genesis)"));
        }
        Err(e) => return Err(e.into()),
    };
    let text = meta.get(META_GENESIS)?.ok_or_else(|| ChainError::corrupted("meta", "no genesis record"))?;
    let text = std::str::from_utf8(text.value()).map_err(|e| ChainError::corrupted("meta", e))?;
    GenesisConfig::from_toml(text).map_err(|e| ChainError::corrupted("meta", e))
}
