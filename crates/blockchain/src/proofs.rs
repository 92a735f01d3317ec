//! Segment proofs of zero-knowledge light sync kept by a history node (ADR 0015): each keyed by
//! the epoch it starts from. A full segment (`K` handoffs) is final; a trailing partial one is
//! replaced when a longer proof from the same start is stored.

use std::sync::Arc;

use petrel_primitives::codec;
use petrel_primitives::wire::{MAX_ZKP_SEGMENTS, ZkpChain, ZkpSegment};
use redb::{Database, Durability, ReadableDatabase, ReadableTable};

use crate::tables::{MAX_RECORD, ZKP_SEGMENTS, decode};
use crate::{Blockchain, ChainError};

/// The segment proofs of a chain store. A handle of its own (it shares the store's database), so
/// that a prover can store proofs while the chain is locked to apply blocks.
#[derive(Clone)]
pub struct Proofs {
    db: Arc<Database>,
    durable: bool,
}

impl std::fmt::Debug for Proofs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proofs").field("durable", &self.durable).finish_non_exhaustive()
    }
}

impl Blockchain {
    /// The handle of this store's segment proofs.
    pub fn proofs(&self) -> Proofs {
        Proofs { db: self.db_handle(), durable: self.is_durable() }
    }
}

impl Proofs {
    /// Stores a segment (replacing the one from the same start epoch).
    pub fn put(&self, segment: &ZkpSegment) -> Result<(), ChainError> {
        let mut wtx = self.db.begin_write()?;
        if !self.durable {
            wtx.set_durability(Durability::None).map_err(|e| ChainError::Storage(e.to_string()))?;
        }
        wtx.open_table(ZKP_SEGMENTS)?.insert(segment.start_epoch, codec::encode(segment)?.as_slice())?;
        wtx.commit()?;
        Ok(())
    }

    /// The segment starting at `epoch`, if stored.
    pub fn get(&self, epoch: u32) -> Result<Option<ZkpSegment>, ChainError> {
        let rtx = self.db.begin_read()?;
        let table = match rtx.open_table(ZKP_SEGMENTS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let Some(row) = table.get(epoch)? else { return Ok(None) };
        let segment: ZkpSegment = decode("zkp_segments", row.value(), MAX_RECORD)?;
        if segment.start_epoch != epoch || segment.end_epoch <= epoch {
            return Err(ChainError::corrupted(
                "zkp_segments",
                format!("record under epoch {epoch} is another segment"),
            ));
        }
        Ok(Some(segment))
    }

    /// The chain of segments that covers `epoch` and what follows: the stored segment with the
    /// greatest start at or below `epoch` if it ends above it, then the segment starting where
    /// each one ends, at most `max` (clamped to [`MAX_ZKP_SEGMENTS`]).
    pub fn chain_from(&self, epoch: u32, max: u16) -> Result<ZkpChain, ChainError> {
        let max = usize::from(max.clamp(1, MAX_ZKP_SEGMENTS));
        let first = {
            let rtx = self.db.begin_read()?;
            let table = match rtx.open_table(ZKP_SEGMENTS) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(ZkpChain::default()),
                Err(e) => return Err(e.into()),
            };
            let last = table.range(..=epoch)?.next_back().transpose()?;
            last.map(|(k, _)| k.value())
        };
        let mut segments = Vec::new();
        let mut next = first;
        while let Some(start) = next {
            if segments.len() == max {
                break;
            }
            let Some(segment) = self.get(start)? else { break };
            if segment.end_epoch <= epoch {
                break;
            }
            next = Some(segment.end_epoch);
            segments.push(segment);
        }
        Ok(ZkpChain { segments })
    }

    /// The last stored segment (greatest start epoch).
    pub fn last(&self) -> Result<Option<ZkpSegment>, ChainError> {
        let start = {
            let rtx = self.db.begin_read()?;
            let table = match rtx.open_table(ZKP_SEGMENTS) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            let last = table.iter()?.next_back().transpose()?;
            last.map(|(k, _)| k.value())
        };
        match start {
            Some(s) => self.get(s),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use petrel_primitives::{Blake2bHash, FieldElement};

    use super::*;

    fn segment(start: u32, end: u32) -> ZkpSegment {
        ZkpSegment {
            start_epoch: start,
            start_commitment: FieldElement::from_u64(u64::from(start)),
            end_epoch: end,
            end_commitment: FieldElement::from_u64(u64::from(end)),
            end_hash: Blake2bHash::digest(&end.to_le_bytes()),
            proof: [start as u8; 192],
        }
    }

    #[test]
    fn segments_chain_from_the_one_covering_an_epoch_and_a_partial_one_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let producer = petrel_producer::Producer::new(petrel_producer::ProducerConfig {
            validators: 4,
            accounts: 2,
            ..Default::default()
        });
        let genesis = producer.genesis(1, 0, petrel_primitives::Policy::TEST);
        let chain = Blockchain::open(&dir.path().join("c.redb"), &genesis, Default::default()).unwrap();
        let proofs = chain.proofs();
        assert_eq!(proofs.chain_from(0, 10).unwrap(), ZkpChain::default());
        assert_eq!(proofs.last().unwrap(), None);
        proofs.put(&segment(0, 4)).unwrap();
        proofs.put(&segment(4, 8)).unwrap();
        proofs.put(&segment(8, 10)).unwrap();
        let all = |from, max| {
            proofs.chain_from(from, max).unwrap().segments.iter().map(|s| s.start_epoch).collect::<Vec<_>>()
        };
        assert_eq!(all(0, 10), vec![0, 4, 8]);
        assert_eq!(all(5, 10), vec![4, 8], "from the segment covering epoch 5");
        assert_eq!(all(0, 2), vec![0, 4]);
        assert_eq!(all(10, 10), Vec::<u32>::new(), "nothing covers epoch 10 yet");
        // The partial segment grows.
        proofs.put(&segment(8, 12)).unwrap();
        assert_eq!(proofs.last().unwrap().unwrap().end_epoch, 12);
        assert_eq!(all(10, 10), vec![8]);
        // Survives reopening.
        drop((chain, proofs));
        let chain = Blockchain::open(&dir.path().join("c.redb"), &genesis, Default::default()).unwrap();
        assert_eq!(chain.proofs().chain_from(0, 10).unwrap().segments.len(), 3);
    }
}
