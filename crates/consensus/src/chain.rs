//! What consensus and live sync need from a chain, for both the light chain (pico and light
//! nodes) and the full chain store (history and full nodes).

use std::sync::{Arc, Mutex, RwLock};

use petrel_blockchain::{Blockchain, HeadInfo, LightBlockchain, PushResult};
use petrel_primitives::{Blake2bHash, Block, Policy};

/// Why a pushed block was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushError {
    /// Whether the block is invalid (its sender is to blame) rather than our store failing.
    pub peer_fault: bool,
    /// Description.
    pub message: String,
}

/// Records a push for the metrics (`chain.blocks.pushed` by chain and result,
/// `chain.push.duration`; docs/metrics.md).
fn record_push(chain: &'static str, started: std::time::Instant, result: &Result<PushResult, PushError>) {
    let outcome = match result {
        Ok(PushResult::Extended) => "extended",
        Ok(PushResult::Known) => "known",
        Ok(PushResult::Ignored) => "ignored",
        Err(e) if e.peer_fault => "invalid",
        Err(_) => "store_failed",
    };
    metrics::counter!("chain.blocks.pushed", "chain" => chain, "result" => outcome).increment(1);
    metrics::histogram!("chain.push.duration", "chain" => chain).record(started.elapsed().as_secs_f64());
}

/// A chain consensus can follow.
pub trait SyncChain: Clone + Send + Sync + Unpin + 'static {
    /// Head summary.
    fn head(&self) -> HeadInfo;
    /// Number of the macro head.
    fn macro_head_number(&self) -> u32;
    /// The policy.
    fn policy(&self) -> Policy;
    /// Whether a block with this hash is part of our chain (or its current batch).
    fn knows(&self, hash: &Blake2bHash) -> bool;
    /// Whether we hold exactly this block: same hash and the same justification and body (a block
    /// is named by its header, so a copy with the same hash may carry altered parts). `false` when
    /// we cannot tell (the light chain keeps macro blocks without their justification).
    fn holds_exactly(&self, block: &Block) -> bool;
    /// Locators for missing-block requests: the head, then back to the macro head.
    fn locators(&self) -> Vec<Blake2bHash>;
    /// Whether blocks are followed with bodies.
    fn wants_bodies(&self) -> bool;
    /// Pushes a block that extends the head.
    fn push(&self, block: Block) -> Result<PushResult, PushError>;
}

/// The light chain, shared.
pub type SharedLight = Arc<Mutex<LightBlockchain>>;

impl SyncChain for SharedLight {
    fn head(&self) -> HeadInfo {
        self.lock().unwrap_or_else(|e| e.into_inner()).head()
    }
    fn macro_head_number(&self) -> u32 {
        self.lock().unwrap_or_else(|e| e.into_inner()).macro_head().block_number()
    }
    fn policy(&self) -> Policy {
        *self.lock().unwrap_or_else(|e| e.into_inner()).policy()
    }
    fn knows(&self, hash: &Blake2bHash) -> bool {
        let c = self.lock().unwrap_or_else(|e| e.into_inner());
        c.head().block_hash == *hash
            || c.macro_head().hash() == *hash
            || c.election_head().hash() == *hash
            || c.batch_headers().any(|b| b.hash() == *hash)
    }
    fn holds_exactly(&self, block: &Block) -> bool {
        let c = self.lock().unwrap_or_else(|e| e.into_inner());
        let header = block.clone().without_body();
        *c.head_block() == header || c.batch_headers().any(|b| *b == header)
    }
    fn locators(&self) -> Vec<Blake2bHash> {
        let c = self.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<_> = c.batch_headers().map(Block::hash).collect();
        out.reverse();
        out.push(c.macro_head().hash());
        out.dedup();
        out
    }
    fn wants_bodies(&self) -> bool {
        false
    }
    fn push(&self, block: Block) -> Result<PushResult, PushError> {
        let started = std::time::Instant::now();
        let mut c = self.lock().unwrap_or_else(|e| e.into_inner());
        let result = c
            .push(block.without_body())
            .map_err(|e| PushError { peer_fault: e.is_peer_fault(), message: e.to_string() });
        record_push("light", started, &result);
        result
    }
}

/// The full chain store, shared.
pub type SharedFull = Arc<RwLock<Blockchain>>;

impl SyncChain for SharedFull {
    fn head(&self) -> HeadInfo {
        self.read().unwrap_or_else(|e| e.into_inner()).head()
    }
    fn macro_head_number(&self) -> u32 {
        self.read().unwrap_or_else(|e| e.into_inner()).state().macro_head.block_number()
    }
    fn policy(&self) -> Policy {
        *self.read().unwrap_or_else(|e| e.into_inner()).policy()
    }
    fn knows(&self, hash: &Blake2bHash) -> bool {
        self.read().unwrap_or_else(|e| e.into_inner()).contains(hash).unwrap_or(false)
    }
    fn holds_exactly(&self, block: &Block) -> bool {
        let c = self.read().unwrap_or_else(|e| e.into_inner());
        c.block_by_hash(&block.hash(), block.has_body()).ok().flatten().is_some_and(|b| b == *block)
    }
    fn locators(&self) -> Vec<Blake2bHash> {
        let c = self.read().unwrap_or_else(|e| e.into_inner());
        let head = c.head().block_number;
        let macro_head = c.state().macro_head.block_number();
        (macro_head..=head).rev().filter_map(|n| c.block_at(n, false).ok().flatten().map(|b| b.hash())).collect()
    }
    fn wants_bodies(&self) -> bool {
        true
    }
    fn push(&self, block: Block) -> Result<PushResult, PushError> {
        let started = std::time::Instant::now();
        let mut c = self.write().unwrap_or_else(|e| e.into_inner());
        let result = c.push(block).map_err(|e| PushError { peer_fault: e.is_peer_fault(), message: e.to_string() });
        record_push("full", started, &result);
        result
    }
}
