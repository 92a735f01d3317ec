//! The redb tables of the full chain store and the typed helpers that read them. Every record is
//! decoded through `petrel_primitives::codec` with a size limit; a record that does not decode is
//! reported as [`ChainError::Corrupted`], never a panic.

use petrel_primitives::codec;
use petrel_primitives::history::{HistoryError, NodeSource};
use petrel_primitives::{Blake2bHash, Block};
use redb::{ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;

use crate::ChainError;

/// Block hash → encoded block (with body and justification).
pub(crate) const BLOCKS: TableDefinition<'_, [u8; 32], &[u8]> = TableDefinition::new("blocks");
/// Block number → hash, for the main chain.
pub(crate) const MAIN_CHAIN: TableDefinition<'_, u32, [u8; 32]> = TableDefinition::new("main_chain");
/// Named singleton records ([`META_CHAIN_INFO`], [`META_GENESIS`]).
pub(crate) const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");
/// Account leaf index → encoded `(Address, Account)`.
pub(crate) const ACCOUNTS: TableDefinition<'_, u32, &[u8]> = TableDefinition::new("accounts");
/// (epoch, leaf index) → encoded history item.
pub(crate) const HISTORY_ITEMS: TableDefinition<'_, (u32, u64), &[u8]> = TableDefinition::new("history_items");
/// (epoch, MMR position) → node hash.
pub(crate) const HISTORY_NODES: TableDefinition<'_, (u32, u64), [u8; 32]> = TableDefinition::new("history_nodes");
/// Block number → number of history leaves of its epoch after it.
pub(crate) const HISTORY_LEN: TableDefinition<'_, u32, u64> = TableDefinition::new("history_len");
/// (epoch, block number) of checkpoints that start a new batch set (see `Blockchain::batch_set`).
pub(crate) const BATCH_SET_ENDS: TableDefinition<'_, (u32, u32), ()> = TableDefinition::new("batch_set_ends");

/// (block number, slot) → a kept download of History Macro Sync (see `Downloads`).
pub(crate) const DOWNLOADS: TableDefinition<'_, (u32, u64), &[u8]> = TableDefinition::new("downloads");

/// Start epoch → encoded `ZkpSegment` (see `Proofs`).
pub(crate) const ZKP_SEGMENTS: TableDefinition<'_, u32, &[u8]> = TableDefinition::new("zkp_segments");

/// Key of the chain info record.
pub(crate) const META_CHAIN_INFO: &str = "chain_info";
/// Key of the genesis config (TOML text).
pub(crate) const META_GENESIS: &str = "genesis";

/// Largest encoded block accepted from disk.
pub(crate) const MAX_BLOCK_RECORD: usize = 8 * 1024 * 1024;
/// Largest other record.
pub(crate) const MAX_RECORD: usize = 1024 * 1024;

pub(crate) fn decode<T: DeserializeOwned>(table: &'static str, bytes: &[u8], limit: usize) -> Result<T, ChainError> {
    codec::decode(bytes, limit).map_err(|e| ChainError::corrupted(table, e))
}

pub(crate) fn read_block<T: ReadableTable<[u8; 32], &'static [u8]>>(
    blocks: &T,
    hash: &Blake2bHash,
) -> Result<Option<Block>, ChainError> {
    match blocks.get(hash.0)? {
        None => Ok(None),
        Some(guard) => {
            let block: Block = decode("blocks", guard.value(), MAX_BLOCK_RECORD)?;
            if block.hash() != *hash {
                return Err(ChainError::corrupted("blocks", format!("record under {hash} hashes differently")));
            }
            Ok(Some(block))
        }
    }
}

/// History nodes of one epoch read straight from the table.
pub(crate) struct TableNodes<'a, T> {
    pub(crate) table: &'a T,
    pub(crate) epoch: u32,
}

impl<T: ReadableTable<(u32, u64), [u8; 32]>> NodeSource for TableNodes<'_, T> {
    fn node(&self, pos: u64) -> Result<Option<Blake2bHash>, HistoryError> {
        self.table
            .get((self.epoch, pos))
            .map(|g| g.map(|v| Blake2bHash(v.value())))
            .map_err(|e| HistoryError::Store(e.to_string()))
    }
}
