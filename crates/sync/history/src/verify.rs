//! Verification of History Macro Sync's answers, before any byte is applied.
//!
//! - [`BatchSetVerifier::verify`] checks a `BatchSetInfo` (the macro blocks that end each batch set
//!   of an epoch up to the block asked for, with the epoch's history size at each) in order, from
//!   the last verified macro block and validator set: the last block is the one asked for; the
//!   election block is present exactly when that block is one (and is that block); leading batch
//!   sets at or below our macro head (ours already) are skipped; every other block passes its
//!   intrinsic checks with its body, the macro-successor rule after the previous one and a
//!   justification by the validators in force; their numbers increase within one epoch; each size proof matches its block's history
//!   root, and the history never shrinks. On success the verifier moves to the last block (and to
//!   its validators if it is an election block).
//! - [`verify_chunk`] checks a history chunk against a verified block: the proof is for the size
//!   the block's root proves, the chunk holds exactly the items of its index, and the range proof
//!   verifies against the root.

use petrel_primitives::history::SizeProof;
use petrel_primitives::wire::{BatchSetInfo, HistoryChunk};
use petrel_primitives::{Blake2bHash, Block, BlockError, MacroBlock, NetworkId, Policy, Validators};

/// Why a batch-set answer is refused. Every variant is the sender's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchSetError {
    /// No batch set at all.
    #[error("empty batch-set answer")]
    Empty,
    /// The last block is not the one asked for.
    #[error("asked for {asked}, the answer ends at {got}")]
    Mismatch {
        /// Asked for.
        asked: Blake2bHash,
        /// Last block of the answer.
        got: Blake2bHash,
    },
    /// The election block is missing, superfluous, or not the last block.
    #[error("the election block does not match the last batch set")]
    ElectionBlock,
    /// Block numbers do not increase, or leave the epoch.
    #[error("block {0} is out of order or in another epoch")]
    OutOfOrder(u32),
    /// A block breaks a rule (intrinsic, macro successor, justification).
    #[error("block {number} is invalid: {source}")]
    InvalidBlock {
        /// Its number.
        number: u32,
        /// The rule.
        source: BlockError,
    },
    /// A size proof does not match its block's history root, or the history shrank.
    #[error("the size proof of block {0} does not match its history root")]
    SizeProof(u32),
}

/// A batch set that passed verification: its block and the epoch's history size at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedBatchSet {
    /// The macro block ending the batch set.
    pub block: MacroBlock,
    /// Leaves of the epoch's history tree at that block (its root is the block's history root).
    pub history_len: u64,
}

/// What verifying the next batch sets needs: the last verified macro block and the validators in
/// force. Starts from our own chain's macro head and election validators.
#[derive(Debug, Clone)]
pub struct BatchSetVerifier {
    network: NetworkId,
    policy: Policy,
    macro_head: MacroBlock,
    validators: Validators,
}

impl BatchSetVerifier {
    /// A verifier continuing from `macro_head`, whose signers are `validators` (those of our
    /// election head).
    pub fn new(network: NetworkId, policy: Policy, macro_head: MacroBlock, validators: Validators) -> Self {
        Self { network, policy, macro_head, validators }
    }

    /// The last verified macro block.
    pub fn macro_head(&self) -> &MacroBlock {
        &self.macro_head
    }

    /// Verifies `info`, the answer to a batch-set request for `asked`; on success moves past it.
    /// Nothing changes on failure.
    pub fn verify(&mut self, asked: &Blake2bHash, info: &BatchSetInfo) -> Result<Vec<VerifiedBatchSet>, BatchSetError> {
        let (last, _) = info.batch_sets.last().ok_or(BatchSetError::Empty)?;
        if last.hash() != *asked {
            return Err(BatchSetError::Mismatch { asked: *asked, got: last.hash() });
        }
        match &info.election_macro_block {
            Some(e) if e == last && last.is_election() => {}
            None if !last.is_election() => {}
            _ => return Err(BatchSetError::ElectionBlock),
        }
        let epoch = self.policy.epoch_at(last.block_number());
        let mut prev = self.macro_head.clone();
        let mut validators = self.validators.clone();
        let mut prev_len = 0;
        let mut out = Vec::with_capacity(info.batch_sets.len());
        for (i, (block, size)) in info.batch_sets.iter().enumerate() {
            let number = block.block_number();
            if out.is_empty() && i + 1 < info.batch_sets.len() && number <= self.macro_head.block_number() {
                // A batch set of our own epoch that we hold already (our macro head is a
                // checkpoint after it): skipped, not verified.
                continue;
            }
            if number <= prev.block_number() || self.policy.epoch_at(number) != epoch {
                return Err(BatchSetError::OutOfOrder(number));
            }
            let invalid = |source| BatchSetError::InvalidBlock { number, source };
            // With its body: the rewards it pays are applied with it, so they must match its root.
            Block::Macro(block.clone()).verify_intrinsic(self.network, &self.policy, true).map_err(invalid)?;
            block.verify_macro_successor(&prev, &self.policy).map_err(invalid)?;
            block.verify_justification(&validators, &self.policy).map_err(invalid)?;
            if !verify_size(size, block) || size.leaves < prev_len {
                return Err(BatchSetError::SizeProof(number));
            }
            prev_len = size.leaves;
            if let (true, Some(next)) = (block.is_election(), &block.header.validators) {
                // Signed by the current set: plausible, so now its keys are worth checking.
                validators = next.check_keys().map_err(|e| invalid(e.into()))?;
            }
            prev = without_body(block);
            out.push(VerifiedBatchSet { block: block.clone(), history_len: size.leaves });
        }
        self.macro_head = prev;
        self.validators = validators;
        Ok(out)
    }
}

/// The block without its body (the rewards it pays are part of the history).
fn without_body(b: &MacroBlock) -> MacroBlock {
    MacroBlock { header: b.header.clone(), justification: b.justification.clone(), body: None }
}

fn verify_size(size: &SizeProof, block: &MacroBlock) -> bool {
    size.verify(&block.header.history_root)
}

/// Why a history chunk is refused. Every variant is the sender's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// The proof is for another history size than the verified block's.
    #[error("the proof is for {got} leaves, the block's history has {expected}")]
    SizeMismatch {
        /// The verified size.
        expected: u64,
        /// The proof's.
        got: u64,
    },
    /// Not the number of items this index holds.
    #[error("chunk {index} holds {got} items, expected {expected}")]
    WrongLength {
        /// The chunk index.
        index: u64,
        /// Items it must hold.
        expected: u64,
        /// Items it holds.
        got: u64,
    },
    /// The range proof does not verify against the block's history root.
    #[error("the range proof of chunk {0} does not verify")]
    InvalidProof(u64),
}

/// Verifies chunk `index` (of `chunk_size` items) of the history of `block`, whose history holds
/// `history_len` items (from its verified size proof).
pub fn verify_chunk(
    block: &VerifiedBatchSet,
    chunk_size: u64,
    index: u64,
    chunk: &HistoryChunk,
) -> Result<(), ChunkError> {
    let total = block.history_len;
    if chunk.proof.total_leaves != total {
        return Err(ChunkError::SizeMismatch { expected: total, got: chunk.proof.total_leaves });
    }
    let start = index.saturating_mul(chunk_size);
    let expected = total.saturating_sub(start).min(chunk_size);
    let got = chunk.items.len() as u64;
    if expected == 0 || got != expected {
        return Err(ChunkError::WrongLength { index, expected, got });
    }
    let leaves: Vec<Blake2bHash> = chunk.items.iter().map(|i| i.leaf_hash()).collect();
    chunk.proof.verify(&block.block.header.history_root, start, &leaves).map_err(|_| ChunkError::InvalidProof(index))
}

#[cfg(test)]
mod tests;
