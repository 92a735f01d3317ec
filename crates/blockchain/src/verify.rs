//! `chain verify`: replays a stored chain from genesis, re-checking every block, signature and
//! root, and compares the replayed state with what the store holds. It streams: memory is bounded
//! by the account set and one epoch's history tree, whatever the chain length.

use std::path::Path;

use petrel_primitives::history::HistoryItem;
use petrel_primitives::{Blake2bHash, Block};
use redb::{ReadableDatabase, ReadableTable};

use crate::ChainError;
use crate::chain::read_genesis;
use crate::state::ChainState;
use crate::tables::*;

/// What a successful verification covered.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    /// Blocks replayed (without genesis).
    pub blocks: u64,
    /// Macro blocks applied from stored history (history-synced ranges).
    pub history_synced_blocks: u64,
    /// Transactions re-executed.
    pub transactions: u64,
    /// Final head number.
    pub head_number: u32,
    /// Final head hash.
    pub head_hash: Blake2bHash,
    /// Accounts in the final state.
    pub accounts: usize,
}

/// The first problem found.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// A block fails its checks.
    #[error("block {number} ({hash}) is invalid: {source}")]
    BadBlock {
        /// Number.
        number: u32,
        /// Hash.
        hash: Blake2bHash,
        /// Why.
        #[source]
        source: ChainError,
    },
    /// The store was pruned: its early history is gone, so state cannot be replayed from genesis.
    #[error("the store is pruned before epoch {0}: a full replay from genesis is impossible")]
    Pruned(u32),
    /// The store is unreadable or inconsistent outside a block.
    #[error(transparent)]
    Store(#[from] ChainError),
}

/// Progress callback: (blocks done, blocks to check in all).
pub type Progress<'a> = &'a mut dyn FnMut(u64, u32);

/// Verifies the store at `path` from genesis.
pub fn verify_store(path: &Path, progress: Progress<'_>) -> Result<VerifyReport, VerifyError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| verify_inner(path, progress))) {
        Ok(result) => result,
        Err(_) => Err(ChainError::corrupted("database", "storage engine failure while reading").into()),
    }
}

fn verify_inner(path: &Path, progress: Progress<'_>) -> Result<VerifyReport, VerifyError> {
    if !path.exists() {
        return Err(ChainError::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{} does not exist", path.display()),
        ))
        .into());
    }
    let db = redb::Builder::new().set_cache_size(crate::DEFAULT_CACHE_BYTES).open(path).map_err(ChainError::from)?;
    let genesis = read_genesis(&db)?;
    let mut state = ChainState::genesis(&genesis)?;
    let policy = state.policy;
    let rtx = db.begin_read().map_err(ChainError::from)?;
    let meta = rtx.open_table(META).map_err(ChainError::from)?;
    let info = meta
        .get(META_CHAIN_INFO)
        .map_err(ChainError::from)?
        .ok_or_else(|| ChainError::corrupted("meta", "no chain info"))?;
    let info: crate::chain::ChainInfo = decode("meta", info.value(), MAX_RECORD)?;
    if info.history_pruned_before > 0 {
        return Err(VerifyError::Pruned(info.history_pruned_before));
    }
    let main = rtx.open_table(MAIN_CHAIN).map_err(ChainError::from)?;
    let blocks = rtx.open_table(BLOCKS).map_err(ChainError::from)?;
    let items = rtx.open_table(HISTORY_ITEMS).map_err(ChainError::from)?;
    let lens = rtx.open_table(HISTORY_LEN).map_err(ChainError::from)?;
    let last = main.last().map_err(ChainError::from)?.map(|(k, _)| k.value()).unwrap_or(policy.genesis_block_number);
    let g = main.get(policy.genesis_block_number).map_err(ChainError::from)?.map(|v| Blake2bHash(v.value()));
    if g != Some(state.genesis_hash) {
        return Err(
            ChainError::corrupted("main_chain", "genesis entry does not match the stored genesis config").into()
        );
    }
    let mut report = VerifyReport {
        blocks: 0,
        history_synced_blocks: 0,
        transactions: 0,
        head_number: policy.genesis_block_number,
        head_hash: state.genesis_hash,
        accounts: 0,
    };
    for row in main.range(policy.genesis_block_number + 1..).map_err(ChainError::from)? {
        let (k, v) = row.map_err(ChainError::from)?;
        let (number, hash) = (k.value(), Blake2bHash(v.value()));
        let bad = |source: ChainError| VerifyError::BadBlock { number, hash, source };
        let block = read_block(&blocks, &hash)
            .map_err(bad)?
            .ok_or_else(|| bad(ChainError::corrupted("blocks", "main-chain block missing")))?;
        if block.block_number() != number {
            return Err(bad(ChainError::corrupted("main_chain", "block stored under another number")));
        }
        if number == state.head_number() + 1 {
            if let Block::Micro(m) = &block {
                report.transactions += m.body.as_ref().map_or(0, |b| b.transactions.len() as u64);
            }
            state.apply_block(block).map_err(bad)?;
        } else {
            // A gap: the range was adopted by history sync; replay the stored history.
            let Block::Macro(mac) = block else {
                return Err(bad(ChainError::corrupted("main_chain", "gap before a micro block")));
            };
            let epoch = policy.epoch_at(number);
            let from = if state.history_epoch == epoch { state.history.len() } else { 0 };
            let to = lens.get(number).map_err(|e| bad(e.into()))?.map(|v| v.value()).unwrap_or(0);
            let mut hist: Vec<HistoryItem> = Vec::with_capacity(to.saturating_sub(from) as usize);
            for row in items.range((epoch, from)..(epoch, to)).map_err(|e| bad(e.into()))? {
                hist.push(decode("history_items", row.map_err(|e| bad(e.into()))?.1.value(), MAX_RECORD).map_err(bad)?);
            }
            report.transactions +=
                hist.iter().filter(|i| matches!(i.kind, petrel_primitives::HistoryKind::Transfer(_))).count() as u64;
            state.apply_history(mac, hist).map_err(bad)?;
            report.history_synced_blocks += 1;
        }
        report.blocks += 1;
        report.head_number = number;
        report.head_hash = hash;
        progress(report.blocks, last.saturating_sub(policy.genesis_block_number));
    }
    // The stored accounts must be the replayed ones.
    let accounts = rtx.open_table(ACCOUNTS).map_err(ChainError::from)?;
    let mut stored = 0usize;
    for (i, row) in accounts.iter().map_err(ChainError::from)?.enumerate() {
        let (_, v) = row.map_err(ChainError::from)?;
        let entry: (petrel_primitives::Address, petrel_primitives::Account) =
            decode("accounts", v.value(), MAX_RECORD)?;
        if state.accounts.entries().get(i) != Some(&entry) {
            return Err(ChainError::corrupted("accounts", format!("leaf {i} differs from the replayed state")).into());
        }
        stored += 1;
    }
    if stored != state.accounts.len() {
        return Err(ChainError::corrupted("accounts", "account count differs from the replayed state").into());
    }
    report.accounts = stored;
    Ok(report)
}
