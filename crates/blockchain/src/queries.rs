//! The queries peers ask of a full chain store (protocol-reference §2.5), with the reference's
//! known holes closed: non-macro locators are skipped, locator lists and counts are clamped, and
//! every lookup miss is an error value.

use petrel_primitives::history::prove_range;
use petrel_primitives::{Blake2bHash, Block};
use redb::{ReadableDatabase, ReadableTable};

use crate::tables::*;
use crate::{Blockchain, ChainError};

pub use petrel_primitives::wire::{BatchSetInfo, HeadInfo, HistoryChunk, MAX_EPOCHS, MAX_LOCATORS, MacroChain};

/// Why a query has no answer.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// No locator is a known macro block on the main chain.
    #[error("no locator is known")]
    UnknownLocators,
    /// The target block is not stored.
    #[error("target block not found")]
    TargetHashNotFound,
    /// The target block is not on the main chain.
    #[error("target block is not on the main chain")]
    TargetNotOnMainChain,
    /// A macro block was required.
    #[error("a micro block was given")]
    MicroBlockGiven,
    /// No history (or proof) for that epoch, block and index.
    #[error("cannot produce that history chunk")]
    CouldntProduceProof,
    /// The store failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
}

macro_rules! query_from_storage {
    ($($t:ty),*) => {$(
        impl From<$t> for QueryError {
            fn from(e: $t) -> Self {
                QueryError::Chain(e.into())
            }
        }
    )*};
}
query_from_storage!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    petrel_primitives::history::HistoryError
);

impl Blockchain {
    /// The block with `hash`, with or without its body.
    pub fn block_by_hash(&self, hash: &Blake2bHash, include_body: bool) -> Result<Option<Block>, ChainError> {
        let rtx = self.db().begin_read()?;
        let block = read_block(&rtx.open_table(BLOCKS)?, hash)?;
        Ok(block.map(|b| if include_body { b } else { b.without_body() }))
    }

    /// The main-chain block at `number`.
    pub fn block_at(&self, number: u32, include_body: bool) -> Result<Option<Block>, ChainError> {
        let rtx = self.db().begin_read()?;
        let Some(hash) = rtx.open_table(MAIN_CHAIN)?.get(number)?.map(|v| Blake2bHash(v.value())) else {
            return Ok(None);
        };
        let block = read_block(&rtx.open_table(BLOCKS)?, &hash)?;
        Ok(block.map(|b| if include_body { b } else { b.without_body() }))
    }

    /// Whether `hash` is the main-chain block at `number`.
    fn on_main_chain<T: ReadableTable<u32, [u8; 32]>>(
        main: &T,
        number: u32,
        hash: &Blake2bHash,
    ) -> Result<bool, ChainError> {
        Ok(main.get(number)?.is_some_and(|v| v.value() == hash.0))
    }

    /// Election blocks after the first locator that is a known main-chain macro block, and the
    /// checkpoint if the requester is then caught up (protocol-reference §2.5.1).
    pub fn macro_chain(&self, locators: &[Blake2bHash], max_epochs: u16) -> Result<MacroChain, QueryError> {
        let policy = *self.policy();
        let rtx = self.db().begin_read()?;
        let main = rtx.open_table(MAIN_CHAIN)?;
        let blocks = rtx.open_table(BLOCKS)?;
        let mut start = None;
        for locator in locators.iter().take(MAX_LOCATORS) {
            let Some(Block::Macro(block)) = read_block(&blocks, locator)? else { continue };
            if Self::on_main_chain(&main, block.block_number(), locator)? {
                start = Some(block);
                break;
            }
        }
        let start_block = start.ok_or(QueryError::UnknownLocators)?;
        let (start, locator) = (start_block.block_number(), start_block.hash());
        let max = max_epochs.min(MAX_EPOCHS) as usize;
        let mut epochs = Vec::new();
        let mut next = policy.election_block_after(start);
        while epochs.len() < max && next > start {
            match main.get(next)? {
                Some(h) => epochs.push(Blake2bHash(h.value())),
                None => break,
            }
            let after = policy.election_block_after(next);
            if after <= next {
                break;
            }
            next = after;
        }
        let macro_head = &self.state().macro_head;
        let macro_hash = macro_head.hash();
        // Caught up: after the returned epochs (or already at the locator) the requester's latest
        // election block is the one the checkpoint builds on.
        let caught_up = match epochs.last() {
            Some(last) => *last == macro_head.header.parent_election_hash,
            None => start_block.election_hash_after() == macro_head.header.parent_election_hash,
        };
        let checkpoint =
            (!macro_head.is_election() && macro_hash != locator && caught_up && macro_head.block_number() > start)
                .then(|| (macro_head.block_number(), macro_hash));
        Ok(MacroChain { epochs, checkpoint })
    }

    /// The batch sets of the macro block `hash`'s epoch up to it (protocol-reference §2.5.3).
    pub fn batch_set(&self, hash: &Blake2bHash) -> Result<BatchSetInfo, QueryError> {
        let policy = *self.policy();
        let rtx = self.db().begin_read()?;
        let blocks = rtx.open_table(BLOCKS)?;
        let block = read_block(&blocks, hash)?.ok_or(QueryError::TargetHashNotFound)?;
        let Block::Macro(block) = block else { return Err(QueryError::MicroBlockGiven) };
        let number = block.block_number();
        let epoch = policy.epoch_at(number);
        if epoch < self.history_pruned_before() {
            return Err(ChainError::HistoryPruned(epoch).into());
        }
        let main = rtx.open_table(MAIN_CHAIN)?;
        if !Self::on_main_chain(&main, number, hash)? {
            return Err(QueryError::TargetNotOnMainChain);
        }
        let nodes = rtx.open_table(HISTORY_NODES)?;
        let lens = rtx.open_table(HISTORY_LEN)?;
        let mut batch_sets = Vec::new();
        for row in rtx.open_table(BATCH_SET_ENDS)?.range((epoch, 0)..(epoch, number))? {
            let end = row?.0.value().1;
            let h = main.get(end)?.map(|v| Blake2bHash(v.value()));
            let b = match h {
                Some(h) => read_block(&blocks, &h)?.and_then(Block::into_macro),
                None => None,
            };
            let b = b.ok_or_else(|| ChainError::corrupted("batch_set_ends", format!("block {end} missing")))?;
            batch_sets.push((b, self.size_proof(&nodes, &lens, epoch, end)?));
        }
        batch_sets.push((block.clone(), self.size_proof(&nodes, &lens, epoch, number)?));
        Ok(BatchSetInfo { election_macro_block: block.is_election().then_some(block), batch_sets })
    }

    /// Items `[i·C, min((i+1)·C, L))` of `epoch`'s history, where `L` is the history length at
    /// `block_number` (the verifier block), with a range proof against that block's history root.
    pub fn history_chunk(&self, epoch: u32, block_number: u32, chunk_index: u64) -> Result<HistoryChunk, QueryError> {
        let policy = *self.policy();
        if policy.epoch_at(block_number) != epoch
            || epoch < self.history_pruned_before()
            || epoch == 0
            || !policy.is_macro_block_at(block_number)
        {
            return Err(QueryError::CouldntProduceProof);
        }
        let rtx = self.db().begin_read()?;
        let Some(leaves) = rtx.open_table(HISTORY_LEN)?.get(block_number)?.map(|v| v.value()) else {
            return Err(QueryError::CouldntProduceProof);
        };
        let size = u64::from(policy.history_chunk_size);
        let start = chunk_index.checked_mul(size).ok_or(QueryError::CouldntProduceProof)?;
        if start >= leaves {
            return Err(QueryError::CouldntProduceProof);
        }
        let end = (start + size).min(leaves);
        let table = rtx.open_table(HISTORY_ITEMS)?;
        let mut items = Vec::with_capacity((end - start) as usize);
        for row in table.range((epoch, start)..(epoch, end))? {
            items.push(decode("history_items", row?.1.value(), MAX_RECORD)?);
        }
        if items.len() as u64 != end - start {
            return Err(
                ChainError::corrupted("history_items", format!("epoch {epoch} lacks items {start}..{end}")).into()
            );
        }
        let nodes = rtx.open_table(HISTORY_NODES)?;
        let proof = prove_range(&TableNodes { table: &nodes, epoch }, leaves, start, end - start)
            .map_err(|e| ChainError::corrupted("history_nodes", e))?;
        Ok(HistoryChunk { items, proof })
    }

    /// Main-chain blocks after the first locator on the main chain, up to the target and never past
    /// the next macro block after that locator (at most one batch per answer).
    pub fn missing_blocks(
        &self,
        target: &Blake2bHash,
        locators: &[Blake2bHash],
        include_body: bool,
    ) -> Result<Vec<Block>, QueryError> {
        let policy = *self.policy();
        let rtx = self.db().begin_read()?;
        let blocks = rtx.open_table(BLOCKS)?;
        let main = rtx.open_table(MAIN_CHAIN)?;
        let target_block = read_block(&blocks, target)?.ok_or(QueryError::TargetHashNotFound)?;
        let target_number = target_block.block_number();
        if !Self::on_main_chain(&main, target_number, target)? {
            return Err(QueryError::TargetNotOnMainChain);
        }
        let mut start = None;
        for locator in locators.iter().take(MAX_LOCATORS) {
            if let Some(b) = read_block(&blocks, locator)?
                && Self::on_main_chain(&main, b.block_number(), locator)?
            {
                start = Some(b.block_number());
                break;
            }
        }
        let start = start.ok_or(QueryError::UnknownLocators)?;
        let end = target_number.min(policy.macro_block_after(start));
        let mut out = Vec::new();
        for number in start.saturating_add(1)..=end {
            let Some(hash) = main.get(number)?.map(|v| Blake2bHash(v.value())) else { break };
            let Some(block) = read_block(&blocks, &hash)? else { break };
            out.push(if include_body { block } else { block.without_body() });
        }
        Ok(out)
    }
}
