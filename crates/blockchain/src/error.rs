//! Errors of the chain stores.

use petrel_primitives::codec::CodecError;
use petrel_primitives::history::HistoryError;
use petrel_primitives::{Blake2bHash, BlockError, GenesisError, TransactionError};

/// Why a chain operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The block breaks a block rule.
    #[error("invalid block {number}: {source}")]
    InvalidBlock {
        /// Block number.
        number: u32,
        /// Rule broken.
        #[source]
        source: BlockError,
    },
    /// A transaction of the block is invalid.
    #[error("invalid transaction #{index} in block {number}: {source}")]
    InvalidTransaction {
        /// Block number.
        number: u32,
        /// Position in the body.
        index: usize,
        /// Rule broken.
        #[source]
        source: TransactionError,
    },
    /// The state root after executing the block differs from the header's.
    #[error("block {number}: state root mismatch (header {expected}, computed {computed})")]
    WrongStateRoot {
        /// Block number.
        number: u32,
        /// Header value.
        expected: Blake2bHash,
        /// Computed value.
        computed: Blake2bHash,
    },
    /// The history root after the block differs from the header's.
    #[error("block {number}: history root mismatch (header {expected}, computed {computed})")]
    WrongHistoryRoot {
        /// Block number.
        number: u32,
        /// Header value.
        expected: Blake2bHash,
        /// Computed value.
        computed: Blake2bHash,
    },
    /// History items given to history sync do not fit the macro block they close.
    #[error("history item #{index} does not belong between the macro head and block {number}")]
    HistoryOutOfRange {
        /// Macro block number.
        number: u32,
        /// Item position.
        index: usize,
    },
    /// History sync needs the head to be the macro head.
    #[error("history sync needs the head ({head}) to be the macro head ({macro_head})")]
    NotAtMacroHead {
        /// Head number.
        head: u32,
        /// Macro head number.
        macro_head: u32,
    },
    /// The history of that epoch was pruned.
    #[error("history of epoch {0} was pruned")]
    HistoryPruned(u32),
    /// History tree failure.
    #[error("history: {0}")]
    History(#[from] HistoryError),
    /// The stored genesis differs from the configured one.
    #[error("the database holds another network (genesis {stored}, configured {configured})")]
    GenesisMismatch {
        /// Stored genesis hash.
        stored: Blake2bHash,
        /// Configured genesis hash.
        configured: Blake2bHash,
    },
    /// The genesis config is invalid.
    #[error("genesis: {0}")]
    Genesis(#[from] GenesisError),
    /// A stored record does not decode or contradicts the rest of the store.
    #[error("corrupted database record in {table}: {reason}")]
    Corrupted {
        /// Table or record.
        table: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The storage engine failed.
    #[error("storage: {0}")]
    Storage(String),
    /// File I/O failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

impl ChainError {
    /// Whether the error was caused by the data pushed (and so by whoever sent it), not by us.
    pub fn is_peer_fault(&self) -> bool {
        matches!(
            self,
            ChainError::InvalidBlock { .. }
                | ChainError::InvalidTransaction { .. }
                | ChainError::WrongStateRoot { .. }
                | ChainError::WrongHistoryRoot { .. }
                | ChainError::HistoryOutOfRange { .. }
        )
    }

    pub(crate) fn block(number: u32, source: BlockError) -> Self {
        ChainError::InvalidBlock { number, source }
    }

    pub(crate) fn corrupted(table: &'static str, reason: impl std::fmt::Display) -> Self {
        ChainError::Corrupted { table, reason: reason.to_string() }
    }
}

impl From<CodecError> for ChainError {
    fn from(e: CodecError) -> Self {
        ChainError::corrupted("record", e)
    }
}

macro_rules! storage_from {
    ($($t:ty),*) => {$(
        impl From<$t> for ChainError {
            fn from(e: $t) -> Self {
                ChainError::Storage(e.to_string())
            }
        }
    )*};
}
storage_from!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
