//! The history tree: one Merkle Mountain Range per epoch over the epoch's history items.
//!
//! - A leaf is `Blake2b(0x00 ‖ item layout)`, an inner node `Blake2b(0x01 ‖ left ‖ right)`; peaks are
//!   bagged right to left (ckb-merkle-mountain-range's construction, see `docs/adr/0003-history-mmr.md`).
//! - The **history root** is `Blake2b("petrel/history" ‖ leaf count as u64 BE ‖ MMR root)`; the empty
//!   tree's MMR root is the zero hash. The root therefore commits to the number of leaves, so a
//!   size proof is just the MMR root (see [`SizeProof`]).
//! - A chunk of consecutive leaves is proven against a root by a [`RangeProof`] built for the tree
//!   as it was at a given leaf count (the verifier block's), so every chunk verifies on its own.

use ckb_merkle_mountain_range::{MMR, MMRStoreReadOps, MMRStoreWriteOps, Merge, MerkleProof};
use serde::{Deserialize, Serialize};

use crate::block::Reward;
use crate::{Blake2bHash, Hasher, Transaction};

/// Most nodes a range proof may carry (a contiguous range needs at most about 2·64 + 64).
pub const MAX_PROOF_NODES: usize = 256;
/// Most leaves an epoch's history tree may have (2^40); larger claimed sizes are rejected before
/// any MMR arithmetic, which would overflow near 2^63.
pub const MAX_LEAVES: u64 = 1 << 40;

/// What a history item records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HistoryKind {
    /// An executed transfer.
    Transfer(Transaction),
    /// A batch reward paid by a macro block.
    Reward(Reward),
}

/// One leaf of the history tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryItem {
    /// Block that executed it.
    pub block_number: u32,
    /// That block's timestamp.
    pub block_time: u64,
    /// What happened.
    pub kind: HistoryKind,
}

impl HistoryItem {
    /// The MMR leaf hash of this item (fixed layout, see `docs/protocol.md`).
    pub fn leaf_hash(&self) -> Blake2bHash {
        let mut h = Hasher::new();
        h.u8(0).u32(self.block_number).u64(self.block_time);
        match &self.kind {
            HistoryKind::Transfer(tx) => h.u8(0).hash(&tx.hash()),
            HistoryKind::Reward(r) => h.u8(1).update(&r.recipient.0).u64(r.value),
        };
        h.finish()
    }
}

/// Why a history operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistoryError {
    /// The range is empty or reaches past the tree.
    #[error("range {start}+{count} is outside a tree of {total} leaves")]
    BadRange {
        /// First leaf.
        start: u64,
        /// Number of leaves.
        count: u64,
        /// Leaves in the tree.
        total: u64,
    },
    /// The proof carries too many nodes.
    #[error("proof has {0} nodes, more than allowed")]
    ProofTooLarge(usize),
    /// The proof is malformed or does not lead to the root.
    #[error("range proof does not verify against the root")]
    InvalidProof,
    /// The node store lacks a node the tree needs.
    #[error("history tree store is inconsistent: {0}")]
    Store(String),
}

/// A source of MMR nodes by position (in memory, or a database table).
pub trait NodeSource {
    /// The node at `pos`, if stored.
    fn node(&self, pos: u64) -> Result<Option<Blake2bHash>, HistoryError>;
}

impl NodeSource for [Blake2bHash] {
    fn node(&self, pos: u64) -> Result<Option<Blake2bHash>, HistoryError> {
        Ok(usize::try_from(pos).ok().and_then(|p| self.get(p)).copied())
    }
}

impl NodeSource for Vec<Blake2bHash> {
    fn node(&self, pos: u64) -> Result<Option<Blake2bHash>, HistoryError> {
        self.as_slice().node(pos)
    }
}

struct Blake2bMerge;

impl Merge for Blake2bMerge {
    type Item = Blake2bHash;
    fn merge(left: &Blake2bHash, right: &Blake2bHash) -> ckb_merkle_mountain_range::Result<Blake2bHash> {
        let mut h = Hasher::new();
        h.u8(1).hash(left).hash(right);
        Ok(h.finish())
    }
}

struct Reader<'a, S: ?Sized>(&'a S);

impl<S: NodeSource + ?Sized> MMRStoreReadOps<Blake2bHash> for Reader<'_, S> {
    fn get_elem(&self, pos: u64) -> ckb_merkle_mountain_range::Result<Option<Blake2bHash>> {
        self.0.node(pos).map_err(|_| ckb_merkle_mountain_range::Error::InconsistentStore)
    }
}

/// In-memory node vector that the MMR appends to.
struct VecStore<'a>(&'a mut Vec<Blake2bHash>);

impl MMRStoreReadOps<Blake2bHash> for VecStore<'_> {
    fn get_elem(&self, pos: u64) -> ckb_merkle_mountain_range::Result<Option<Blake2bHash>> {
        Ok(usize::try_from(pos).ok().and_then(|p| self.0.get(p)).copied())
    }
}

impl MMRStoreWriteOps<Blake2bHash> for VecStore<'_> {
    fn append(&mut self, pos: u64, elems: Vec<Blake2bHash>) -> ckb_merkle_mountain_range::Result<()> {
        if pos != self.0.len() as u64 {
            return Err(ckb_merkle_mountain_range::Error::InconsistentStore);
        }
        self.0.extend(elems);
        Ok(())
    }
}

/// Number of MMR nodes of a tree with `leaves` leaves.
pub fn mmr_size(leaves: u64) -> u64 {
    if leaves == 0 { 0 } else { ckb_merkle_mountain_range::leaf_index_to_mmr_size(leaves - 1) }
}

/// The history root for a leaf count and an MMR root.
pub fn history_root(leaves: u64, mmr_root: &Blake2bHash) -> Blake2bHash {
    let mut h = Hasher::new();
    h.update(b"petrel/history").u64(leaves).hash(mmr_root);
    h.finish()
}

/// The root of an empty epoch history.
pub fn empty_history_root() -> Blake2bHash {
    history_root(0, &Blake2bHash::ZERO)
}

/// The history tree of one epoch, held in memory (all nodes, `2n` hashes for `n` leaves).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistoryTree {
    nodes: Vec<Blake2bHash>,
    leaves: u64,
}

impl HistoryTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// A tree from stored nodes; the node count must be the MMR size of `leaves`.
    pub fn from_nodes(nodes: Vec<Blake2bHash>, leaves: u64) -> Result<Self, HistoryError> {
        if nodes.len() as u64 != mmr_size(leaves) {
            return Err(HistoryError::Store(format!("{} nodes for {leaves} leaves", nodes.len())));
        }
        Ok(Self { nodes, leaves })
    }

    /// Number of leaves.
    pub fn len(&self) -> u64 {
        self.leaves
    }

    /// Whether the tree has no leaves.
    pub fn is_empty(&self) -> bool {
        self.leaves == 0
    }

    /// All nodes, by position.
    pub fn nodes(&self) -> &[Blake2bHash] {
        &self.nodes
    }

    /// Appends leaves (already hashed with [`HistoryItem::leaf_hash`]).
    pub fn append(&mut self, leaf_hashes: impl IntoIterator<Item = Blake2bHash>) -> Result<(), HistoryError> {
        let mut size = self.nodes.len() as u64;
        let mut added = 0u64;
        {
            let mut mmr = MMR::<Blake2bHash, Blake2bMerge, _>::new(size, VecStore(&mut self.nodes));
            for leaf in leaf_hashes {
                mmr.push(leaf).map_err(|e| HistoryError::Store(e.to_string()))?;
                added += 1;
            }
            size = mmr.mmr_size();
            mmr.commit().map_err(|e| HistoryError::Store(e.to_string()))?;
        }
        self.leaves += added;
        debug_assert_eq!(size, self.nodes.len() as u64);
        Ok(())
    }

    /// Removes leaves back to `leaves` (undo of a failed append).
    pub fn truncate(&mut self, leaves: u64) {
        if leaves < self.leaves {
            self.nodes.truncate(mmr_size(leaves) as usize);
            self.leaves = leaves;
        }
    }

    /// The history root.
    pub fn root(&self) -> Blake2bHash {
        root_of(self.nodes.as_slice(), self.leaves).unwrap_or_else(|_| empty_history_root())
    }

    /// The MMR root without the leaf count.
    pub fn mmr_root(&self) -> Blake2bHash {
        mmr_root_of(self.nodes.as_slice(), self.leaves).unwrap_or(Blake2bHash::ZERO)
    }
}

/// The MMR root of the first `leaves` leaves of a stored tree.
pub fn mmr_root_of<S: NodeSource + ?Sized>(source: &S, leaves: u64) -> Result<Blake2bHash, HistoryError> {
    if leaves == 0 {
        return Ok(Blake2bHash::ZERO);
    }
    MMR::<Blake2bHash, Blake2bMerge, _>::new(mmr_size(leaves), Reader(source))
        .get_root()
        .map_err(|e| HistoryError::Store(e.to_string()))
}

/// The history root of the first `leaves` leaves of a stored tree.
pub fn root_of<S: NodeSource + ?Sized>(source: &S, leaves: u64) -> Result<Blake2bHash, HistoryError> {
    Ok(history_root(leaves, &mmr_root_of(source, leaves)?))
}

/// Proof that a tree of `leaves` leaves has the given history root: its MMR root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SizeProof {
    /// Number of leaves claimed.
    pub leaves: u64,
    /// MMR root of those leaves.
    pub mmr_root: Blake2bHash,
}

impl SizeProof {
    /// Whether the proof matches `root`.
    pub fn verify(&self, root: &Blake2bHash) -> bool {
        history_root(self.leaves, &self.mmr_root) == *root
    }
}

/// Proof that leaves `start .. start+n` belong to a tree of `total_leaves` leaves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeProof {
    /// Leaves of the tree the proof was built for (the verifier block's count).
    pub total_leaves: u64,
    /// Sibling and peak hashes.
    pub nodes: Vec<Blake2bHash>,
}

/// Builds a range proof for `count` leaves from `start` in the tree as it was at `total_leaves`.
pub fn prove_range<S: NodeSource + ?Sized>(
    source: &S,
    total_leaves: u64,
    start: u64,
    count: u64,
) -> Result<RangeProof, HistoryError> {
    let end = start.checked_add(count).filter(|e| *e <= total_leaves && count > 0 && total_leaves <= MAX_LEAVES);
    if end.is_none() {
        return Err(HistoryError::BadRange { start, count, total: total_leaves });
    }
    let positions = (start..start + count).map(ckb_merkle_mountain_range::leaf_index_to_pos).collect();
    let proof = MMR::<Blake2bHash, Blake2bMerge, _>::new(mmr_size(total_leaves), Reader(source))
        .gen_proof(positions)
        .map_err(|e| HistoryError::Store(e.to_string()))?;
    Ok(RangeProof { total_leaves, nodes: proof.proof_items().to_vec() })
}

impl RangeProof {
    /// Verifies that `leaves` (hashes) are the leaves from `start` of the tree with `root`.
    pub fn verify(&self, root: &Blake2bHash, start: u64, leaves: &[Blake2bHash]) -> Result<(), HistoryError> {
        let count = leaves.len() as u64;
        if count == 0
            || self.total_leaves > MAX_LEAVES
            || start.checked_add(count).is_none_or(|e| e > self.total_leaves)
        {
            return Err(HistoryError::BadRange { start, count, total: self.total_leaves });
        }
        if self.nodes.len() > MAX_PROOF_NODES {
            return Err(HistoryError::ProofTooLarge(self.nodes.len()));
        }
        let positioned = leaves
            .iter()
            .enumerate()
            .map(|(i, h)| (ckb_merkle_mountain_range::leaf_index_to_pos(start + i as u64), *h))
            .collect();
        let mmr_root = MerkleProof::<Blake2bHash, Blake2bMerge>::new(mmr_size(self.total_leaves), self.nodes.clone())
            .calculate_root(positioned)
            .map_err(|_| HistoryError::InvalidProof)?;
        if history_root(self.total_leaves, &mmr_root) == *root { Ok(()) } else { Err(HistoryError::InvalidProof) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn leaf(i: u64) -> Blake2bHash {
        Blake2bHash::digest(&i.to_be_bytes())
    }

    fn tree(n: u64) -> HistoryTree {
        let mut t = HistoryTree::new();
        t.append((0..n).map(leaf)).unwrap();
        t
    }

    #[test]
    fn root_commits_to_the_leaf_count() {
        assert_eq!(HistoryTree::new().root(), empty_history_root());
        let t = tree(5);
        let proof = SizeProof { leaves: 5, mmr_root: t.mmr_root() };
        assert!(proof.verify(&t.root()));
        assert!(!SizeProof { leaves: 4, ..proof.clone() }.verify(&t.root()));
    }

    #[test]
    fn truncate_restores_the_earlier_root() {
        let mut t = tree(10);
        let r10 = t.root();
        t.append((10..17).map(leaf)).unwrap();
        assert_ne!(t.root(), r10);
        t.truncate(10);
        assert_eq!(t.root(), r10);
        assert_eq!(t, tree(10));
    }

    #[test]
    fn proofs_against_an_earlier_size() {
        let t = tree(3000);
        // The verifier block saw 2500 leaves; the tree has grown since.
        let root_2500 = root_of(t.nodes(), 2500).unwrap();
        assert_eq!(root_2500, tree(2500).root());
        let leaves: Vec<_> = (2048..2500).map(leaf).collect();
        let proof = prove_range(t.nodes(), 2500, 2048, leaves.len() as u64).unwrap();
        proof.verify(&root_2500, 2048, &leaves).unwrap();
    }

    #[test]
    fn bad_proofs_are_rejected() {
        let t = tree(100);
        let leaves: Vec<_> = (10..30).map(leaf).collect();
        let proof = prove_range(t.nodes(), 100, 10, 20).unwrap();
        proof.verify(&t.root(), 10, &leaves).unwrap();
        // Wrong start, wrong leaf, wrong root, shifted count, dropped node, too large, bad range.
        assert!(proof.verify(&t.root(), 11, &leaves).is_err());
        let mut bad = leaves.clone();
        bad[3] = leaf(999);
        assert!(proof.verify(&t.root(), 10, &bad).is_err());
        assert!(proof.verify(&tree(99).root(), 10, &leaves).is_err());
        assert!(RangeProof { total_leaves: 101, ..proof.clone() }.verify(&t.root(), 10, &leaves).is_err());
        let mut short = proof.clone();
        short.nodes.pop();
        assert!(short.verify(&t.root(), 10, &leaves).is_err());
        let huge = RangeProof { total_leaves: 100, nodes: vec![Blake2bHash::ZERO; MAX_PROOF_NODES + 1] };
        assert_eq!(huge.verify(&t.root(), 10, &leaves), Err(HistoryError::ProofTooLarge(MAX_PROOF_NODES + 1)));
        assert!(matches!(proof.verify(&t.root(), 95, &leaves), Err(HistoryError::BadRange { .. })));
        assert!(proof.verify(&t.root(), 10, &[]).is_err());
        assert!(prove_range(t.nodes(), 100, 90, 20).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn any_range_of_any_prefix_verifies(total in 1u64..400, a in 0u64..400, b in 0u64..400, extra in 0u64..50) {
            let t = tree(total + extra);
            let start = a % total;
            let count = 1 + b % (total - start);
            let root = root_of(t.nodes(), total).unwrap();
            let leaves: Vec<_> = (start..start + count).map(leaf).collect();
            let proof = prove_range(t.nodes(), total, start, count).unwrap();
            prop_assert!(proof.nodes.len() <= MAX_PROOF_NODES);
            prop_assert!(proof.verify(&root, start, &leaves).is_ok());
        }

        #[test]
        fn garbage_proofs_never_panic(total in prop_oneof![1u64..300, any::<u64>()], start in 0u64..300, n in 1usize..40, nodes in proptest::collection::vec(any::<[u8; 32]>(), 0..40)) {
            let proof = RangeProof { total_leaves: total, nodes: nodes.into_iter().map(Blake2bHash).collect() };
            let leaves: Vec<_> = (0..n as u64).map(leaf).collect();
            let _ = proof.verify(&Blake2bHash::ZERO, start, &leaves);
        }
    }
}
