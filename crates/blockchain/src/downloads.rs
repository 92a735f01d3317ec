//! Downloads kept across restarts: answers that History Macro Sync fetched but has not applied yet
//! (batch sets and history chunks), so that a node that dies in the middle of a sync does not
//! fetch them again. The store only keeps the bytes: they are a cache, verified like a fresh
//! answer before anything in them is applied, and deleted as the chain passes their blocks.

use std::sync::Arc;

use redb::{Database, Durability, ReadableDatabase, ReadableTable};

use crate::tables::DOWNLOADS;
use crate::{Blockchain, ChainError};

/// Key of a kept download: (block number, slot). By convention of its user, slot [`u64::MAX`] is
/// the batch-set answer for that block and any other slot the history chunk of that index proven
/// against it.
pub type DownloadKey = (u32, u64);

/// The kept downloads of a chain store. A handle of its own (it shares the store's database, not
/// the `Blockchain`), so that a sync can keep answers while the chain is locked to apply others.
#[derive(Clone)]
pub struct Downloads {
    db: Arc<Database>,
    durable: bool,
}

impl std::fmt::Debug for Downloads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Downloads").field("durable", &self.durable).finish_non_exhaustive()
    }
}

impl Blockchain {
    /// The handle of this store's kept downloads.
    pub fn downloads(&self) -> Downloads {
        Downloads { db: self.db_handle(), durable: self.is_durable() }
    }
}

impl Downloads {
    fn db(&self) -> &Database {
        &self.db
    }

    fn is_durable(&self) -> bool {
        self.durable
    }

    /// Stores downloads (replacing entries with the same keys) in one transaction, durable like
    /// the chain's own commits.
    pub fn put(&self, entries: &[(DownloadKey, Vec<u8>)]) -> Result<(), ChainError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut wtx = self.db().begin_write()?;
        if !self.is_durable() {
            wtx.set_durability(Durability::None).map_err(|e| ChainError::Storage(e.to_string()))?;
        }
        {
            let mut table = wtx.open_table(DOWNLOADS)?;
            for (key, bytes) in entries {
                table.insert(*key, bytes.as_slice())?;
            }
        }
        wtx.commit()?;
        Ok(())
    }

    /// Downloads for blocks above `number`, in key order, at most `max_bytes` in all.
    pub fn above(&self, number: u32, max_bytes: usize) -> Result<Vec<(DownloadKey, Vec<u8>)>, ChainError> {
        let rtx = self.db().begin_read()?;
        let table = match rtx.open_table(DOWNLOADS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let Some(start) = number.checked_add(1) else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        let mut total = 0usize;
        for row in table.range((start, 0)..)? {
            let (key, value) = row?;
            let bytes = value.value();
            total = total.saturating_add(bytes.len());
            if total > max_bytes {
                break;
            }
            out.push((key.value(), bytes.to_vec()));
        }
        Ok(out)
    }

    /// How many downloads are kept and their bytes in all (read without copying them).
    pub fn summary(&self) -> Result<(usize, usize), ChainError> {
        let rtx = self.db().begin_read()?;
        let table = match rtx.open_table(DOWNLOADS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok((0, 0)),
            Err(e) => return Err(e.into()),
        };
        let (mut count, mut bytes) = (0, 0);
        for row in table.iter()? {
            count += 1;
            bytes += row?.1.value().len();
        }
        Ok((count, bytes))
    }

    /// Deletes the downloads for blocks at or below `number`.
    pub fn clear_through(&self, number: u32) -> Result<(), ChainError> {
        self.retain(|key| key.0 > number)
    }

    /// Deletes every kept download.
    pub fn clear(&self) -> Result<(), ChainError> {
        self.retain(|_| false)
    }

    fn retain(&self, keep: impl Fn(DownloadKey) -> bool) -> Result<(), ChainError> {
        // Only write when there is something to delete (an empty commit still costs a sync).
        {
            let rtx = self.db().begin_read()?;
            let table = match rtx.open_table(DOWNLOADS) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
                Err(e) => return Err(e.into()),
            };
            let mut doomed = false;
            for row in table.iter()? {
                if !keep(row?.0.value()) {
                    doomed = true;
                    break;
                }
            }
            if !doomed {
                return Ok(());
            }
        }
        let mut wtx = self.db().begin_write()?;
        if !self.is_durable() {
            wtx.set_durability(Durability::None).map_err(|e| ChainError::Storage(e.to_string()))?;
        }
        wtx.open_table(DOWNLOADS)?.retain(|k, _| keep(k))?;
        wtx.commit()?;
        Ok(())
    }
}
