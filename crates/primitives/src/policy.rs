//! Batch and epoch arithmetic (protocol-reference §1.2), as data carried by the genesis config.
//!
//! With `G` the genesis block number, `B` blocks per batch and `E = B · batches_per_epoch` blocks
//! per epoch, and `d = b − G`:
//! - epoch 0 is the genesis block alone; epoch `n ≥ 1` is blocks `G+(n−1)E+1 ..= G+nE`;
//! - a macro block closes every batch, an election block (also a macro block) closes every epoch;
//! - the genesis block counts as both.
//!
//! All arithmetic is done in `u64` and saturates, so no input can overflow or panic.

use serde::{Deserialize, Serialize};

/// Consensus parameters of a network. Never a process global: every component receives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Number of the genesis block; earlier numbers do not exist.
    pub genesis_block_number: u32,
    /// Blocks per batch, including the closing macro block.
    pub blocks_per_batch: u32,
    /// Batches per epoch.
    pub batches_per_epoch: u32,
    /// Validator slots per epoch (at most [`MAX_SLOTS`]).
    pub slots: u16,
    /// Most validators in one set (at most [`crate::validators::MAX_VALIDATORS`]). It fixes the
    /// shape of the validator-set commitment: sets are padded to this size (see
    /// [`crate::Validators::commitment`]), so a circuit over the commitment depends on it.
    pub max_validators: u16,
    /// Historic items per history chunk.
    pub history_chunk_size: u32,
    /// Most transactions in one micro block.
    pub max_transactions_per_block: u32,
    /// Reward paid to each validator's reward address by every macro block.
    pub batch_reward: u64,
}

/// Why a policy is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A batch needs at least one micro block and its macro block.
    #[error("blocks_per_batch must be at least 2")]
    BatchTooSmall,
    /// An epoch needs at least one batch.
    #[error("batches_per_epoch must be at least 1")]
    NoBatches,
    /// An epoch of more than 2^31 blocks is not supported.
    #[error("blocks per epoch overflow")]
    EpochTooLarge,
    /// At least one slot is needed, and at most [`MAX_SLOTS`].
    #[error("slots must be in 1..={MAX_SLOTS}")]
    NoSlots,
    /// The validator-set size must be in `1..=MAX_VALIDATORS`.
    #[error("max_validators must be in 1..={}", crate::validators::MAX_VALIDATORS)]
    BadMaxValidators,
    /// History chunks must hold at least one item and at most 65 536.
    #[error("history_chunk_size must be in 1..=65536")]
    BadChunkSize,
    /// Blocks must fit the network's block size limit.
    #[error("max_transactions_per_block must be at most {MAX_TRANSACTIONS_PER_BLOCK}")]
    TooManyTransactions,
}

/// Most slots of a policy: a validator's slot count is packed in 15 bits of the validator-set
/// commitment.
pub const MAX_SLOTS: u16 = (1 << 15) - 1;

/// Upper bound of `max_transactions_per_block`, so that a full block (about 200 bytes per
/// transfer) stays under the 2 MiB block limit of the protocol.
pub const MAX_TRANSACTIONS_PER_BLOCK: u32 = 8_000;

impl Policy {
    /// The devnet defaults: 32 blocks per batch, 4 batches per epoch, 512 slots, at most 16
    /// validators.
    pub const DEVNET: Policy = Policy {
        genesis_block_number: 0,
        blocks_per_batch: 32,
        batches_per_epoch: 4,
        slots: 512,
        max_validators: 16,
        history_chunk_size: 1024,
        max_transactions_per_block: 1000,
        batch_reward: 1_000,
    };

    /// A small policy for unit tests: 4 blocks per batch, 2 batches per epoch, 16 slots, at most
    /// 16 validators.
    pub const TEST: Policy = Policy {
        genesis_block_number: 0,
        blocks_per_batch: 4,
        batches_per_epoch: 2,
        slots: 16,
        max_validators: 16,
        history_chunk_size: 8,
        max_transactions_per_block: 100,
        batch_reward: 10,
    };

    /// Checks the parameters.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.blocks_per_batch < 2 {
            return Err(PolicyError::BatchTooSmall);
        }
        if self.batches_per_epoch < 1 {
            return Err(PolicyError::NoBatches);
        }
        if u64::from(self.blocks_per_batch) * u64::from(self.batches_per_epoch) > (1 << 31) {
            return Err(PolicyError::EpochTooLarge);
        }
        if self.slots == 0 || self.slots > MAX_SLOTS {
            return Err(PolicyError::NoSlots);
        }
        if self.max_validators == 0 || usize::from(self.max_validators) > crate::validators::MAX_VALIDATORS {
            return Err(PolicyError::BadMaxValidators);
        }
        if self.history_chunk_size == 0 || self.history_chunk_size > 65_536 {
            return Err(PolicyError::BadChunkSize);
        }
        if self.max_transactions_per_block > MAX_TRANSACTIONS_PER_BLOCK {
            return Err(PolicyError::TooManyTransactions);
        }
        Ok(())
    }

    /// Blocks per epoch.
    pub fn blocks_per_epoch(&self) -> u32 {
        self.blocks_per_batch.saturating_mul(self.batches_per_epoch)
    }

    /// Slots that must sign a macro block: `slots − ⌊(slots − 1)/3⌋`, i.e. 2f+1 (342 of 512).
    pub fn two_f_plus_one(&self) -> u16 {
        self.slots - (self.slots.saturating_sub(1)) / 3
    }

    fn g(&self) -> u64 {
        u64::from(self.genesis_block_number)
    }
    fn b(&self) -> u64 {
        u64::from(self.blocks_per_batch).max(1)
    }
    fn e(&self) -> u64 {
        u64::from(self.blocks_per_epoch()).max(1)
    }
    fn clamp(v: u64) -> u32 {
        u32::try_from(v).unwrap_or(u32::MAX)
    }

    /// Epoch of block `b` (0 for the genesis block and anything before it).
    pub fn epoch_at(&self, b: u32) -> u32 {
        let b = u64::from(b);
        if b <= self.g() { 0 } else { Self::clamp((b - self.g()).div_ceil(self.e())) }
    }

    /// Batch of block `b` (0 for the genesis block and anything before it).
    pub fn batch_at(&self, b: u32) -> u32 {
        let b = u64::from(b);
        if b <= self.g() { 0 } else { Self::clamp((b - self.g()).div_ceil(self.b())) }
    }

    /// Index of `b` inside its epoch: 0 for the first block, `E−1` for the election block.
    pub fn epoch_index_at(&self, b: u32) -> u32 {
        let d = u64::from(b).saturating_sub(self.g());
        Self::clamp((d + self.e() - 1) % self.e())
    }

    /// Index of `b` inside its batch: 0 for the first block, `B−1` for the macro block.
    pub fn batch_index_at(&self, b: u32) -> u32 {
        let d = u64::from(b).saturating_sub(self.g());
        Self::clamp((d + self.b() - 1) % self.b())
    }

    /// Whether `b` is a macro block (closes a batch; genesis included).
    pub fn is_macro_block_at(&self, b: u32) -> bool {
        u64::from(b) >= self.g() && u64::from(self.batch_index_at(b)) == self.b() - 1
    }

    /// Whether `b` is an election block (closes an epoch; genesis included).
    pub fn is_election_block_at(&self, b: u32) -> bool {
        u64::from(b) >= self.g() && u64::from(self.epoch_index_at(b)) == self.e() - 1
    }

    /// Whether `b` is a micro block.
    pub fn is_micro_block_at(&self, b: u32) -> bool {
        u64::from(b) >= self.g() && !self.is_macro_block_at(b)
    }

    /// Number of the macro block that closes `batch`.
    pub fn macro_block_of(&self, batch: u32) -> u32 {
        Self::clamp(u64::from(batch) * self.b() + self.g())
    }

    /// Number of the election block that closes `epoch`.
    pub fn election_block_of(&self, epoch: u32) -> u32 {
        Self::clamp(u64::from(epoch) * self.e() + self.g())
    }

    /// First block of `epoch` (`epoch ≥ 1`; for 0 this is the genesis block).
    pub fn first_block_of(&self, epoch: u32) -> u32 {
        if epoch == 0 {
            return self.genesis_block_number;
        }
        Self::clamp((u64::from(epoch) - 1) * self.e() + 1 + self.g())
    }

    /// First block of `batch` (`batch ≥ 1`; for 0 this is the genesis block).
    pub fn first_block_of_batch(&self, batch: u32) -> u32 {
        if batch == 0 {
            return self.genesis_block_number;
        }
        Self::clamp((u64::from(batch) - 1) * self.b() + 1 + self.g())
    }

    /// The next macro block strictly after `b`.
    pub fn macro_block_after(&self, b: u32) -> u32 {
        let b = u64::from(b);
        if b < self.g() {
            return self.genesis_block_number;
        }
        Self::clamp(((b - self.g()) / self.b() + 1) * self.b() + self.g())
    }

    /// The previous macro block strictly before `b`, or `None` for `b ≤ G`.
    pub fn macro_block_before(&self, b: u32) -> Option<u32> {
        let b = u64::from(b);
        (b > self.g()).then(|| Self::clamp((b - self.g() - 1) / self.b() * self.b() + self.g()))
    }

    /// The latest macro block `≤ b` (the genesis block for `b ≤ G`).
    pub fn last_macro_block(&self, b: u32) -> u32 {
        let d = u64::from(b).saturating_sub(self.g());
        Self::clamp(d / self.b() * self.b() + self.g())
    }

    /// The next election block strictly after `b`.
    pub fn election_block_after(&self, b: u32) -> u32 {
        let b = u64::from(b);
        if b < self.g() {
            return self.genesis_block_number;
        }
        Self::clamp(((b - self.g()) / self.e() + 1) * self.e() + self.g())
    }

    /// The previous election block strictly before `b`, or `None` for `b ≤ G`.
    pub fn election_block_before(&self, b: u32) -> Option<u32> {
        let b = u64::from(b);
        (b > self.g()).then(|| Self::clamp((b - self.g() - 1) / self.e() * self.e() + self.g()))
    }

    /// The latest election block `≤ b` (the genesis block for `b ≤ G`).
    pub fn last_election_block(&self, b: u32) -> u32 {
        let d = u64::from(b).saturating_sub(self.g());
        Self::clamp(d / self.e() * self.e() + self.g())
    }

    /// Whether `b` lies in the first batch of its epoch.
    pub fn first_batch_of_epoch(&self, b: u32) -> bool {
        u64::from(self.epoch_index_at(b)) < self.b()
    }

    /// Index of the history chunk holding leaf `leaf`.
    pub fn chunk_of_leaf(&self, leaf: u64) -> u64 {
        leaf / u64::from(self.history_chunk_size.max(1))
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self::DEVNET
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn policies() -> impl Strategy<Value = Policy> {
        (0u32..10_000, 2u32..70, 1u32..12).prop_map(|(g, b, n)| Policy {
            genesis_block_number: g,
            blocks_per_batch: b,
            batches_per_epoch: n,
            ..Policy::TEST
        })
    }

    #[test]
    fn worked_example_mainnet_sizes() {
        let p = Policy { blocks_per_batch: 60, batches_per_epoch: 720, ..Policy::DEVNET };
        assert!(p.is_election_block_at(0) && p.is_macro_block_at(0));
        assert_eq!((p.epoch_at(1), p.batch_at(1), p.epoch_index_at(1), p.batch_index_at(1)), (1, 1, 0, 0));
        assert!(p.is_macro_block_at(60) && !p.is_election_block_at(60));
        assert!(p.is_election_block_at(43_200));
        assert_eq!(p.batch_at(43_200), 720);
        assert_eq!(p.epoch_at(43_201), 2);
        assert_eq!(p.two_f_plus_one(), 342);
        assert_eq!(p.election_block_before(0), None);
    }

    #[test]
    fn validate_rejects_degenerate_policies() {
        assert_eq!(Policy { blocks_per_batch: 1, ..Policy::TEST }.validate(), Err(PolicyError::BatchTooSmall));
        assert_eq!(Policy { batches_per_epoch: 0, ..Policy::TEST }.validate(), Err(PolicyError::NoBatches));
        assert_eq!(Policy { slots: 0, ..Policy::TEST }.validate(), Err(PolicyError::NoSlots));
        assert_eq!(Policy { slots: MAX_SLOTS + 1, ..Policy::TEST }.validate(), Err(PolicyError::NoSlots));
        assert_eq!(Policy { max_validators: 0, ..Policy::TEST }.validate(), Err(PolicyError::BadMaxValidators));
        assert_eq!(Policy { max_validators: 1025, ..Policy::TEST }.validate(), Err(PolicyError::BadMaxValidators));
        assert_eq!(Policy { history_chunk_size: 0, ..Policy::TEST }.validate(), Err(PolicyError::BadChunkSize));
        assert!(Policy::DEVNET.validate().is_ok() && Policy::TEST.validate().is_ok());
    }

    proptest! {
        #[test]
        fn every_block_is_in_exactly_one_batch_and_epoch(p in policies(), off in 1u32..5_000) {
            let b = p.genesis_block_number + off;
            let batch = p.batch_at(b);
            let epoch = p.epoch_at(b);
            prop_assert!(p.first_block_of_batch(batch) <= b && b <= p.macro_block_of(batch));
            prop_assert!(p.first_block_of(epoch) <= b && b <= p.election_block_of(epoch));
            // The batch lies inside the epoch.
            prop_assert!(p.first_block_of(epoch) <= p.first_block_of_batch(batch));
            prop_assert!(p.macro_block_of(batch) <= p.election_block_of(epoch));
        }

        #[test]
        fn election_blocks_are_macro_blocks(p in policies(), off in 0u32..5_000) {
            let b = p.genesis_block_number + off;
            if p.is_election_block_at(b) { prop_assert!(p.is_macro_block_at(b)); }
            prop_assert_ne!(p.is_macro_block_at(b), p.is_micro_block_at(b));
        }

        #[test]
        fn before_after_last_agree(p in policies(), off in 1u32..5_000) {
            let b = p.genesis_block_number + off;
            let after = p.macro_block_after(b);
            let before = p.macro_block_before(b).unwrap();
            let last = p.last_macro_block(b);
            prop_assert!(before < b && b < after);
            prop_assert!(p.is_macro_block_at(after) && p.is_macro_block_at(before) && p.is_macro_block_at(last));
            prop_assert!((b + 1..after).all(|x| !p.is_macro_block_at(x)));
            prop_assert!((before + 1..b).all(|x| !p.is_macro_block_at(x)));
            prop_assert_eq!(last == b, p.is_macro_block_at(b));
            prop_assert_eq!(if p.is_macro_block_at(b) { b } else { before }, last);
            let e_after = p.election_block_after(b);
            let e_before = p.election_block_before(b).unwrap();
            prop_assert!(e_before < b && b < e_after);
            prop_assert!(p.is_election_block_at(e_after) && p.is_election_block_at(e_before));
            prop_assert_eq!(p.last_election_block(b), if p.is_election_block_at(b) { b } else { e_before });
            prop_assert_eq!(p.epoch_at(e_after), p.epoch_at(b) + u32::from(p.is_election_block_at(b)));
            prop_assert_eq!(p.first_batch_of_epoch(b), p.epoch_index_at(b) < p.blocks_per_batch);
        }

        #[test]
        fn indices_match_positions(p in policies(), off in 1u32..5_000) {
            let b = p.genesis_block_number + off;
            prop_assert_eq!(p.batch_index_at(b), b - p.first_block_of_batch(p.batch_at(b)));
            prop_assert_eq!(p.epoch_index_at(b), b - p.first_block_of(p.epoch_at(b)));
        }
    }
}
