//! The light chain of pico and light nodes: the latest election block and its validators, the
//! macro head, and the headers of the current batch. Persisted in one small file (written to a
//! temporary file, synced, then renamed over the old one), so a restart keeps it.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};

use petrel_primitives::{
    Blake2bHash, Block, BlockError, GenesisConfig, MacroBlock, NetworkId, Policy, Validators, codec,
};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::events::{ChainEvent, EVENT_CAPACITY};
use crate::queries::HeadInfo;
use crate::{ChainError, PushResult};

/// Largest light-chain file accepted.
pub const MAX_LIGHT_FILE: usize = 4 * 1024 * 1024;
/// Most claimed blocks a light chain keeps to judge ([`LightBlockchain::doubt`]).
pub const MAX_DOUBTS: usize = 64;

/// Why a light-chain push was refused, beyond block errors.
#[derive(Debug, thiserror::Error)]
pub enum LightError {
    /// The block breaks a block rule.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// Pico adoption is allowed only while the chain is at its anchor.
    #[error("the light chain is no longer at its anchor")]
    NotAtAnchor,
    /// Pico adoption needs an election block.
    #[error("block {0} is not an election block")]
    NotElection(u32),
    /// The block is not the one a proof chain proved (hash or named set).
    #[error("block {0} is not the proven election block")]
    NotProven(u32),
    /// The persisted file belongs to another anchor or network.
    #[error("light chain file belongs to another anchor ({0})")]
    AnchorMismatch(Blake2bHash),
}

impl LightError {
    /// Whether the block's sender is to blame.
    pub fn is_peer_fault(&self) -> bool {
        match self {
            LightError::Chain(e) => e.is_peer_fault(),
            LightError::NotElection(_) | LightError::NotProven(_) => true,
            LightError::NotAtAnchor | LightError::AnchorMismatch(_) => false,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Persisted {
    anchor_hash: Blake2bHash,
    optimistic: bool,
    proven_epoch: Option<u32>,
    election_head: MacroBlock,
    macro_head: MacroBlock,
    head: Block,
}

/// What verifying the next macro block of a light chain needs: its macro head, its validators
/// and its rules. Taken with [`LightBlockchain::macro_verifier`]; verifying with it needs no access
/// to the chain.
#[derive(Clone, Debug)]
pub struct MacroVerifier {
    network: NetworkId,
    policy: Policy,
    macro_head: MacroBlock,
    validators: Validators,
}

impl MacroVerifier {
    /// Checks `block` as the light chain's next macro block: intrinsic checks, the macro-successor
    /// rule and a justification by the current validators.
    pub fn verify(&self, block: &MacroBlock) -> Result<(), LightError> {
        let number = block.block_number();
        let err = |e: BlockError| LightError::Chain(ChainError::block(number, e));
        Block::Macro(header_only(block)).verify_intrinsic(self.network, &self.policy, false).map_err(err)?;
        block.verify_macro_successor(&self.macro_head, &self.policy).map_err(err)?;
        block.verify_justification(&self.validators, &self.policy).map_err(err)?;
        // Signed by the current set: now the next set's keys are worth their subgroup checks.
        block.check_next_keys().map_err(err)?;
        Ok(())
    }

    /// The macro head the verifier extends.
    pub fn macro_head(&self) -> &MacroBlock {
        &self.macro_head
    }

    /// The verifier for the block after `block`, assuming `block` is adopted: `block` becomes the
    /// macro head, and if it is an election block its validators sign what follows. Lets a batch
    /// of consecutive blocks be verified in parallel; each result only counts if the block before
    /// it verified too (adopting in order with [`LightBlockchain::push_macro_verified`] ensures it).
    pub fn after(&self, block: &MacroBlock) -> MacroVerifier {
        let validators = match (&block.header.validators, block.is_election()) {
            (Some(next), true) => next.clone(),
            _ => self.validators.clone(),
        };
        MacroVerifier { network: self.network, policy: self.policy, macro_head: header_only(block), validators }
    }
}

/// The light chain.
pub struct LightBlockchain {
    network: NetworkId,
    policy: Policy,
    genesis_hash: Blake2bHash,
    anchor: MacroBlock,
    election_head: MacroBlock,
    macro_head: MacroBlock,
    head: Block,
    batch: VecDeque<Block>,
    /// Whether an election block was adopted on trust since the anchor (pico).
    optimistic: bool,
    /// The epoch up to which a proof chain proved the election chain (zero-knowledge light sync).
    proven_epoch: Option<u32>,
    /// How many times the chain was reset (in memory; lets work prepared before a reset be
    /// recognised as stale).
    generation: u64,
    /// The election block a reset forgot while it was taken on trust (its number and hash), and,
    /// once verification reached its height, whether the verified chain has it (in memory).
    doubted: Option<(u32, Blake2bHash, Option<bool>)>,
    /// Other blocks to judge the same way ([`LightBlockchain::doubt`]): `(number, hash, verdict)`,
    /// judged only by adoptions after the next reset (at most [`MAX_DOUBTS`]; in memory).
    doubts: Vec<(u32, Blake2bHash, Option<bool>)>,
    /// The generation the doubts were registered in: adoptions in it do not judge them.
    doubts_generation: u64,
    path: Option<PathBuf>,
    events: broadcast::Sender<ChainEvent>,
}

impl std::fmt::Debug for LightBlockchain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LightBlockchain").field("head", &self.head.block_number()).finish_non_exhaustive()
    }
}

fn header_only(b: &MacroBlock) -> MacroBlock {
    MacroBlock { header: b.header.clone(), justification: None, body: None }
}

impl LightBlockchain {
    /// A light chain anchored at genesis, or at `anchor` (a trusted election block), persisted at
    /// `path` if given. An existing file for the same anchor is loaded.
    pub fn new(genesis: &GenesisConfig, anchor: Option<MacroBlock>, path: Option<&Path>) -> Result<Self, LightError> {
        let genesis_block = genesis.genesis_block().map_err(ChainError::from)?;
        let anchor = header_only(&anchor.unwrap_or(genesis_block.clone()));
        let policy = genesis.policy;
        let num = anchor.block_number();
        if !anchor.is_election() || !policy.is_election_block_at(num) {
            return Err(LightError::NotElection(num));
        }
        let mut chain = Self {
            network: genesis.network_id,
            policy,
            genesis_hash: genesis_block.hash(),
            election_head: anchor.clone(),
            macro_head: anchor.clone(),
            head: Block::Macro(anchor.clone()),
            anchor,
            batch: VecDeque::new(),
            optimistic: false,
            proven_epoch: None,
            generation: 0,
            doubted: None,
            doubts: Vec::new(),
            doubts_generation: 0,
            path: path.map(Path::to_path_buf),
            events: broadcast::channel(EVENT_CAPACITY).0,
        };
        if let Some(p) = path
            && p.exists()
        {
            let len = std::fs::metadata(p).map_err(ChainError::from)?.len();
            if len > MAX_LIGHT_FILE as u64 {
                return Err(ChainError::corrupted("light chain file", format!("{len} bytes, over the limit")).into());
            }
            let bytes = std::fs::read(p).map_err(ChainError::from)?;
            let stored: Persisted =
                codec::decode(&bytes, MAX_LIGHT_FILE).map_err(|e| ChainError::corrupted("light chain file", e))?;
            if stored.anchor_hash != chain.anchor.hash() {
                return Err(LightError::AnchorMismatch(stored.anchor_hash));
            }
            if stored.election_head.header.validators.is_none() {
                return Err(ChainError::corrupted("light chain file", "election head without validators").into());
            }
            chain.optimistic = stored.optimistic;
            chain.proven_epoch = stored.proven_epoch;
            chain.election_head = stored.election_head;
            chain.macro_head = stored.macro_head;
            chain.head = stored.head;
        }
        Ok(chain)
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }
    /// The genesis hash of the network.
    pub fn genesis_hash(&self) -> Blake2bHash {
        self.genesis_hash
    }
    /// The trusted anchor.
    pub fn anchor(&self) -> &MacroBlock {
        &self.anchor
    }
    /// Latest election block.
    pub fn election_head(&self) -> &MacroBlock {
        &self.election_head
    }
    /// Latest macro block.
    pub fn macro_head(&self) -> &MacroBlock {
        &self.macro_head
    }
    /// Head block (header only).
    pub fn head_block(&self) -> &Block {
        &self.head
    }
    /// Headers of the current batch after the macro head.
    pub fn batch_headers(&self) -> impl Iterator<Item = &Block> {
        self.batch.iter()
    }
    /// Validators of the current epoch.
    pub fn validators(&self) -> &Validators {
        // Every election head has validators: checked intrinsically on push and on load.
        static EMPTY: Validators = Validators(Vec::new());
        self.election_head.header.validators.as_ref().unwrap_or(&EMPTY)
    }
    /// Head summary.
    pub fn head(&self) -> HeadInfo {
        HeadInfo {
            block_number: self.head.block_number(),
            block_hash: self.head.hash(),
            macro_hash: self.macro_head.hash(),
            election_hash: self.election_head.hash(),
        }
    }
    /// Whether the chain rests on an election block adopted on trust (pico) rather than verified
    /// from the anchor. Survives restarts; cleared by [`Self::reset`].
    pub fn is_optimistic(&self) -> bool {
        self.optimistic
    }

    /// How many times [`Self::reset`] ran since the chain was opened: work decided on the chain
    /// of an earlier generation is stale.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The election block taken on trust that the last reset forgot, as `(number, hash, verdict)`:
    /// `verdict` is `Some(true)` once the chain adopted that very block again (so the trust was
    /// right), `Some(false)` once it adopted another election block at its height (the block was a
    /// lie), `None` until then (or if a proof jumped past its height).
    pub fn doubted(&self) -> Option<(u32, Blake2bHash, Option<bool>)> {
        self.doubted
    }

    /// Registers election blocks others claimed, `(number, hash)`, to be judged like
    /// [`Self::doubted`] but only by adoptions after the next reset (what the chain adopts before
    /// it may rest on trust): replaces earlier ones; at most [`MAX_DOUBTS`] are kept.
    pub fn doubt(&mut self, claims: impl IntoIterator<Item = (u32, Blake2bHash)>) {
        self.doubts = claims.into_iter().take(MAX_DOUBTS).map(|(n, h)| (n, h, None)).collect();
        self.doubts_generation = self.generation;
    }

    /// The registered claims in order, as `(number, hash, verdict)`: `Some(true)` once the chain
    /// adopted that block after the reset, `Some(false)` once it adopted another at its height.
    pub fn doubts(&self) -> &[(u32, Blake2bHash, Option<bool>)] {
        &self.doubts
    }

    /// Whether the chain is still at its anchor.
    pub fn at_anchor(&self) -> bool {
        self.head.hash() == self.anchor.hash()
    }
    /// Subscribes to chain events (bounded; see [`EVENT_CAPACITY`]).
    pub fn subscribe(&self) -> broadcast::Receiver<ChainEvent> {
        self.events.subscribe()
    }

    /// Pico's trust-on-first-use: adopts an election block with intrinsic checks only, and only
    /// while the chain is at its anchor.
    pub fn push_election_pico(&mut self, block: MacroBlock) -> Result<PushResult, LightError> {
        let number = block.block_number();
        if block.hash() == self.election_head.hash() {
            return Ok(PushResult::Known);
        }
        if number <= self.macro_head.block_number() {
            return Ok(PushResult::Ignored);
        }
        if !self.at_anchor() {
            return Err(LightError::NotAtAnchor);
        }
        if !block.is_election() {
            return Err(LightError::NotElection(number));
        }
        let block = header_only(&block);
        Block::Macro(block.clone())
            .verify_intrinsic(self.network, &self.policy, false)
            .map_err(|e| ChainError::block(number, e))?;
        self.optimistic = true;
        if let Err(e) = self.adopt_macro(block) {
            self.optimistic = false;
            return Err(e.into());
        }
        Ok(PushResult::Extended)
    }

    /// Zero-knowledge light sync: adopts the election block of `epoch` that a verified proof chain
    /// (starting at this chain's election head) proved to have `hash` and to name the set with
    /// `commitment`. The block must be exactly that (intrinsic checks, number, hash, the
    /// commitment of its validators); the anchor does not move, and the chain records that it is
    /// proven up to `epoch` ([`Self::proven_epoch`]; survives restarts, cleared by a reset).
    pub fn push_election_proven(
        &mut self,
        block: MacroBlock,
        epoch: u32,
        hash: Blake2bHash,
        commitment: petrel_primitives::FieldElement,
    ) -> Result<PushResult, LightError> {
        let number = block.block_number();
        if block.hash() == self.election_head.hash() {
            return Ok(PushResult::Known);
        }
        if number <= self.macro_head.block_number() {
            return Ok(PushResult::Ignored);
        }
        if number != self.policy.election_block_of(epoch) || !block.is_election() {
            return Err(LightError::NotElection(number));
        }
        if block.hash() != hash {
            return Err(LightError::NotProven(number));
        }
        let block = header_only(&block);
        Block::Macro(block.clone())
            .verify_intrinsic(self.network, &self.policy, false)
            .map_err(|e| ChainError::block(number, e))?;
        let named = block.header.validators.as_ref().map(|v| v.commitment(self.policy.max_validators));
        if named != Some(commitment) {
            return Err(LightError::NotProven(number));
        }
        // A proof extends our election head; a head adopted on trust stays on trust.
        let previous = self.proven_epoch;
        self.proven_epoch = Some(epoch);
        if let Err(e) = self.adopt_macro(block) {
            self.proven_epoch = previous;
            return Err(e.into());
        }
        Ok(PushResult::Extended)
    }

    /// The epoch up to which a proof chain proved the election chain, if any.
    pub fn proven_epoch(&self) -> Option<u32> {
        self.proven_epoch
    }

    /// Whether the election head is the election block a proof chain proved, so that a further
    /// proof chain may start from it.
    pub fn at_proven(&self) -> bool {
        self.proven_epoch == Some(self.policy.epoch_at(self.election_head.block_number()))
    }

    /// Verifies a macro block by the macro-successor rule and the current validators'
    /// justification, and adopts it.
    pub fn push_macro(&mut self, block: MacroBlock) -> Result<PushResult, LightError> {
        let verifier = self.macro_verifier();
        self.push_macro_with(block, &verifier, false)
    }

    /// What verifying the next macro block needs, detached from the chain: verify with it without
    /// holding the chain (e.g. outside the lock that shares it), then adopt with
    /// [`Self::push_macro_verified`].
    pub fn macro_verifier(&self) -> MacroVerifier {
        MacroVerifier {
            network: self.network,
            policy: self.policy,
            macro_head: self.macro_head.clone(),
            validators: self.validators().clone(),
        }
    }

    /// Adopts a block that `verifier` (taken from this chain) accepted. If the chain moved since
    /// the verifier was taken, the block is verified again against the chain as it is now.
    pub fn push_macro_verified(
        &mut self,
        block: MacroBlock,
        verifier: &MacroVerifier,
    ) -> Result<PushResult, LightError> {
        let fresh = verifier.macro_head.hash() == self.macro_head.hash();
        if fresh { self.push_macro_with(block, verifier, true) } else { self.push_macro(block) }
    }

    fn push_macro_with(
        &mut self,
        block: MacroBlock,
        verifier: &MacroVerifier,
        verified: bool,
    ) -> Result<PushResult, LightError> {
        let hash = block.hash();
        if hash == self.macro_head.hash() || hash == self.election_head.hash() {
            return Ok(PushResult::Known);
        }
        if block.block_number() <= self.macro_head.block_number() {
            return Ok(PushResult::Ignored);
        }
        if !verified {
            verifier.verify(&block)?;
        }
        self.adopt_macro(header_only(&block))?;
        Ok(PushResult::Extended)
    }

    /// Live sync: a header-only block that directly extends the head (micro blocks by their
    /// producer signature, macro blocks by their justification).
    pub fn push(&mut self, block: Block) -> Result<PushResult, LightError> {
        let number = block.block_number();
        if block.hash() == self.head.hash() || self.batch.iter().any(|b| b.hash() == block.hash()) {
            return Ok(PushResult::Known);
        }
        if number <= self.head.block_number() {
            return Ok(PushResult::Ignored);
        }
        let err = |e: BlockError| LightError::Chain(ChainError::block(number, e));
        block.verify_immediate_successor(&self.head, &self.macro_head.election_hash_after()).map_err(err)?;
        match block {
            Block::Macro(m) => self.push_macro(m),
            Block::Micro(micro) => {
                Block::Micro(micro.clone()).verify_intrinsic(self.network, &self.policy, false).map_err(err)?;
                micro.verify_producer(self.validators(), &self.policy).map_err(err)?;
                let header = Block::Micro(petrel_primitives::MicroBlock { body: None, ..micro });
                let previous = std::mem::replace(&mut self.head, header.clone());
                if let Err(e) = self.save() {
                    self.head = previous;
                    return Err(e.into());
                }
                if self.batch.len() >= self.policy.blocks_per_batch as usize {
                    self.batch.pop_front();
                }
                self.batch.push_back(header);
                let _ = self.events.send(ChainEvent::Extended { number, hash: self.head.hash() });
                Ok(PushResult::Extended)
            }
        }
    }

    fn adopt_macro(&mut self, block: MacroBlock) -> Result<(), ChainError> {
        let previous = (self.election_head.clone(), self.macro_head.clone(), self.head.clone());
        let number = block.block_number();
        let hash = block.hash();
        if block.is_election() {
            self.election_head = block.clone();
        }
        self.macro_head = block.clone();
        self.head = Block::Macro(block);
        if let Err(e) = self.save() {
            (self.election_head, self.macro_head, self.head) = previous;
            return Err(e);
        }
        self.batch.clear();
        if let Some((doubted, doubted_hash, verdict @ None)) = &mut self.doubted
            && *doubted == number
        {
            *verdict = Some(*doubted_hash == hash);
        }
        if self.generation > self.doubts_generation {
            for (_, claimed, verdict) in self.doubts.iter_mut().filter(|d| d.0 == number && d.2.is_none()) {
                *verdict = Some(*claimed == hash);
            }
        }
        let _ = self.events.send(ChainEvent::Extended { number, hash });
        let event = if self.election_head.hash() == hash {
            ChainEvent::EpochFinalized { number, hash }
        } else {
            ChainEvent::Finalized { number, hash }
        };
        let _ = self.events.send(event);
        Ok(())
    }

    /// Returns to the anchor, forgetting everything adopted since.
    pub fn reset(&mut self) -> Result<(), ChainError> {
        self.generation += 1;
        if self.optimistic {
            self.doubted = Some((self.election_head.block_number(), self.election_head.hash(), None));
        }
        self.election_head = self.anchor.clone();
        self.macro_head = self.anchor.clone();
        self.head = Block::Macro(self.anchor.clone());
        self.batch.clear();
        self.optimistic = false;
        self.proven_epoch = None;
        self.save()
    }

    fn save(&self) -> Result<(), ChainError> {
        let Some(path) = &self.path else { return Ok(()) };
        let persisted = Persisted {
            anchor_hash: self.anchor.hash(),
            optimistic: self.optimistic,
            proven_epoch: self.proven_epoch,
            election_head: self.election_head.clone(),
            macro_head: self.macro_head.clone(),
            head: self.head.clone(),
        };
        let bytes = codec::encode(&persisted)?;
        let tmp = path.with_extension("tmp");
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        // The rename lives in the directory: sync it too, or a crash may bring the old file back.
        #[cfg(unix)]
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}
