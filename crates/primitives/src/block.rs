//! Blocks: micro blocks, macro checkpoint blocks and macro election blocks.
//!
//! Body and justification are optional so that header-only blocks (light nodes, header gossip) use
//! the same types. A block is identified by the Blake2b hash of its header in the fixed layout
//! documented in `docs/protocol.md` ("Hashed layouts"), never by whatever the codec emits.

use petrel_crypto::SchnorrSignature;
use serde::{Deserialize, Serialize};

use crate::validators::{
    JustificationError, MacroJustification, Validators, ValidatorsError, macro_signing_message, micro_signing_message,
};
use crate::{Address, Blake2bHash, Hasher, NetworkId, Policy, Transaction};

/// Block header version; any other is invalid.
pub const BLOCK_VERSION: u16 = 1;
/// Most bytes of `extra_data`.
pub const MAX_EXTRA_DATA: usize = 32;

/// Header of a micro block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MicroHeader {
    /// Network id.
    pub network: NetworkId,
    /// [`BLOCK_VERSION`].
    pub version: u16,
    /// Height.
    pub block_number: u32,
    /// Milliseconds since the Unix epoch; never decreasing.
    pub timestamp: u64,
    /// Hash of the preceding block.
    pub parent_hash: Blake2bHash,
    /// Up to [`MAX_EXTRA_DATA`] free bytes.
    pub extra_data: Vec<u8>,
    /// Account-tree root after this block.
    pub state_root: Blake2bHash,
    /// Commitment to the body.
    pub body_root: Blake2bHash,
    /// Root of the epoch's history tree after this block.
    pub history_root: Blake2bHash,
}

/// Body of a micro block.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MicroBody {
    /// Transfers, executed in order.
    pub transactions: Vec<Transaction>,
}

/// A micro block: produced by one slot owner, holding transactions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MicroBlock {
    /// Header.
    pub header: MicroHeader,
    /// The producer's signature of [`micro_signing_message`].
    pub justification: Option<SchnorrSignature>,
    /// Body, if carried.
    pub body: Option<MicroBody>,
}

/// Header of a macro block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MacroHeader {
    /// Network id.
    pub network: NetworkId,
    /// [`BLOCK_VERSION`].
    pub version: u16,
    /// Height.
    pub block_number: u32,
    /// Consensus round in which the block was agreed.
    pub round: u32,
    /// Milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// Hash of the preceding block.
    pub parent_hash: Blake2bHash,
    /// Hash of the preceding election block.
    pub parent_election_hash: Blake2bHash,
    /// Up to [`MAX_EXTRA_DATA`] free bytes.
    pub extra_data: Vec<u8>,
    /// Account-tree root after this block.
    pub state_root: Blake2bHash,
    /// Commitment to the body.
    pub body_root: Blake2bHash,
    /// Root of the epoch's history tree after this block.
    pub history_root: Blake2bHash,
    /// Present iff this is an election block: the next epoch's validators.
    pub validators: Option<Validators>,
}

/// One batch reward paid by a macro block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reward {
    /// Receiving account.
    pub recipient: Address,
    /// Amount.
    pub value: u64,
}

/// Body of a macro block: the batch rewards.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MacroBody {
    /// One reward per validator of the current epoch, in validator order.
    pub rewards: Vec<Reward>,
}

impl MacroBody {
    /// The only valid body of a macro block closing a batch of the epoch run by `validators`.
    pub fn expected(validators: &Validators, policy: &Policy) -> Self {
        Self {
            rewards: validators
                .0
                .iter()
                .map(|v| Reward { recipient: v.reward_address, value: policy.batch_reward })
                .collect(),
        }
    }

    /// Commitment to the body.
    pub fn root(&self) -> Blake2bHash {
        let mut h = Hasher::new();
        h.update(b"petrel/macro-body").u32(self.rewards.len() as u32);
        for r in &self.rewards {
            h.update(&r.recipient.0).u64(r.value);
        }
        h.finish()
    }
}

impl MicroBody {
    /// Commitment to the body: the transaction hashes in order.
    pub fn root(&self) -> Blake2bHash {
        let mut h = Hasher::new();
        h.update(b"petrel/micro-body").u32(self.transactions.len() as u32);
        for tx in &self.transactions {
            h.hash(&tx.hash());
        }
        h.finish()
    }
}

/// A macro block: closes a batch; an election block also closes an epoch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MacroBlock {
    /// Header.
    pub header: MacroHeader,
    /// Signatures of at least 2f+1 slots.
    pub justification: Option<MacroJustification>,
    /// Body, if carried.
    pub body: Option<MacroBody>,
}

/// Any block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Block {
    /// A micro block.
    Micro(MicroBlock),
    /// A macro block.
    Macro(MacroBlock),
}

/// Why a block is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// Micro block at a macro position or the reverse.
    #[error("block {number} has the wrong type for its position")]
    WrongBlockType {
        /// Block number.
        number: u32,
    },
    /// Other network.
    #[error("block of network {0}")]
    WrongNetwork(NetworkId),
    /// Unsupported version.
    #[error("unsupported block version {0}")]
    WrongVersion(u16),
    /// Extra data too long.
    #[error("extra data of {0} bytes")]
    ExtraDataTooLarge(usize),
    /// A body is required here.
    #[error("missing body")]
    MissingBody,
    /// The body does not match the header's body root.
    #[error("body does not match the body root")]
    BodyRootMismatch,
    /// Too many transactions.
    #[error("{0} transactions, more than the policy allows")]
    TooManyTransactions(usize),
    /// Election block without validators, or checkpoint/micro with.
    #[error("validators present on a non-election block or missing on an election block")]
    ValidatorsPresence,
    /// The election block's validator set is malformed.
    #[error("invalid validator set: {0}")]
    InvalidValidators(#[from] ValidatorsError),
    /// The election block names a different validator set than expected.
    #[error("election block names the wrong validator set")]
    WrongValidators,
    /// The macro body is not the expected rewards.
    #[error("macro body does not pay the expected rewards")]
    WrongMacroBody,
    /// Not the next block number.
    #[error("expected block number {expected}, got {got}")]
    WrongBlockNumber {
        /// Expected.
        expected: u32,
        /// Got.
        got: u32,
    },
    /// The parent hash is not the predecessor's hash.
    #[error("wrong parent hash")]
    WrongParentHash,
    /// The parent election hash is not the preceding election block.
    #[error("wrong parent election hash")]
    WrongParentElectionHash,
    /// The timestamp went backwards.
    #[error("timestamp decreases")]
    TimestampDecreased,
    /// A macro successor outside `(pred, next election]`.
    #[error("macro block {got} is not a valid successor of {pred}")]
    NotMacroSuccessor {
        /// Predecessor number.
        pred: u32,
        /// Block number.
        got: u32,
    },
    /// Micro block without a producer signature.
    #[error("missing producer signature")]
    MissingProducerSignature,
    /// The producer signature does not verify.
    #[error("invalid producer signature")]
    InvalidProducerSignature,
    /// The macro justification does not hold.
    #[error("invalid justification: {0}")]
    InvalidJustification(#[from] JustificationError),
}

impl BlockError {
    /// Every block error is the fault of whoever sent the block.
    pub fn is_peer_fault(&self) -> bool {
        true
    }
}

impl MicroHeader {
    /// The block hash (fixed layout, see `docs/protocol.md`).
    pub fn hash(&self) -> Blake2bHash {
        let mut h = Hasher::new();
        h.update(b"petrel/micro/v1")
            .u8(self.network)
            .u16(self.version)
            .u32(self.block_number)
            .u64(self.timestamp)
            .hash(&self.parent_hash)
            .var_bytes(&self.extra_data)
            .hash(&self.state_root)
            .hash(&self.body_root)
            .hash(&self.history_root);
        h.finish()
    }
}

impl MacroHeader {
    /// The block hash (fixed layout, see `docs/protocol.md`).
    pub fn hash(&self) -> Blake2bHash {
        let mut h = Hasher::new();
        h.update(b"petrel/macro/v1")
            .u8(self.network)
            .u16(self.version)
            .u32(self.block_number)
            .u32(self.round)
            .u64(self.timestamp)
            .hash(&self.parent_hash)
            .hash(&self.parent_election_hash)
            .var_bytes(&self.extra_data)
            .hash(&self.state_root)
            .hash(&self.body_root)
            .hash(&self.history_root);
        match &self.validators {
            Some(v) => h.u8(1).hash(&v.hash()),
            None => h.u8(0),
        };
        h.finish()
    }

    /// Whether this header is an election block header.
    pub fn is_election(&self) -> bool {
        self.validators.is_some()
    }
}

impl MacroBlock {
    /// The block hash.
    pub fn hash(&self) -> Blake2bHash {
        self.header.hash()
    }
    /// Whether this is an election block.
    pub fn is_election(&self) -> bool {
        self.header.is_election()
    }
    /// Number.
    pub fn block_number(&self) -> u32 {
        self.header.block_number
    }
    /// The message its validators sign (the next set's commitment padded to the policy's
    /// `max_validators`).
    pub fn signing_message(&self, policy: &Policy) -> petrel_crypto::FieldElement {
        macro_signing_message(
            &self.hash(),
            self.header.block_number,
            self.header.round,
            self.header.validators.as_ref().map(|v| (v, policy.max_validators)),
        )
    }

    /// The hash of the election block this block belongs after: itself if it is one, else its
    /// parent election hash.
    pub fn election_hash_after(&self) -> Blake2bHash {
        if self.is_election() { self.hash() } else { self.header.parent_election_hash }
    }

    /// Checks the justification against the validators of the current epoch.
    pub fn verify_justification(&self, validators: &Validators, policy: &Policy) -> Result<(), BlockError> {
        let j = self.justification.as_ref().ok_or(JustificationError::Missing)?;
        j.verify(validators, policy, &self.signing_message(policy))?;
        Ok(())
    }

    /// For an election block, checks that every key of the next set is in the prime-order
    /// subgroup ([`Validators::check_keys`], deferred from decoding) and the proof of possession
    /// of every key that is not in `current` (the keys entering the validator set; members of
    /// `current` were checked when they entered). Nodes that verify full election blocks call this
    /// after the justification; light nodes check only the keys ([`Self::check_next_keys`]) and
    /// rely on the 2f+1 signers for the proofs (see `docs/adr/0014-aggregated-justification.md`).
    pub fn verify_entering_keys(&self, current: &Validators) -> Result<(), BlockError> {
        self.check_next_keys()?;
        if let Some(next) = &self.header.validators {
            let known: std::collections::HashSet<_> = current.0.iter().map(|v| v.public_key).collect();
            next.verify_possession(|k| known.contains(k))?;
        }
        Ok(())
    }

    /// For an election block, checks that every key of the next set is in the prime-order
    /// subgroup. Call it once the block is plausible (its justification verified), so that an
    /// implausible block never costs the scalar multiplications; see `docs/adr/0017`.
    pub fn check_next_keys(&self) -> Result<(), BlockError> {
        if let Some(next) = &self.header.validators {
            next.check_keys()?;
        }
        Ok(())
    }

    /// Macro-successor rule: `self` may follow macro block `pred` when skipping the micro blocks in
    /// between. The parent hash is not checked (it names a skipped block); the parent election hash
    /// must be `pred`'s election lineage and the number must lie in `(pred, next election of pred]`.
    pub fn verify_macro_successor(&self, pred: &MacroBlock, policy: &Policy) -> Result<(), BlockError> {
        let pred_n = pred.header.block_number;
        let n = self.header.block_number;
        if n <= pred_n || n > policy.election_block_after(pred_n) {
            return Err(BlockError::NotMacroSuccessor { pred: pred_n, got: n });
        }
        if self.header.parent_election_hash != pred.election_hash_after() {
            return Err(BlockError::WrongParentElectionHash);
        }
        if self.header.timestamp < pred.header.timestamp {
            return Err(BlockError::TimestampDecreased);
        }
        Ok(())
    }
}

impl MicroBlock {
    /// The block hash.
    pub fn hash(&self) -> Blake2bHash {
        self.header.hash()
    }
    /// The producer's signature check against the current validator set.
    pub fn verify_producer(&self, validators: &Validators, policy: &Policy) -> Result<(), BlockError> {
        let sig = self.justification.as_ref().ok_or(BlockError::MissingProducerSignature)?;
        let (_, producer) = validators
            .owner_of_slot(producer_slot(self.header.block_number, policy))
            .ok_or(BlockError::InvalidProducerSignature)?;
        let msg = micro_signing_message(&self.hash(), self.header.block_number);
        producer.public_key.verify(&msg, sig).map_err(|_| BlockError::InvalidProducerSignature)
    }
}

/// The slot whose owner produces micro block `number` (a fixed rotation; see ADR 0006).
pub fn producer_slot(number: u32, policy: &Policy) -> u16 {
    (number % u32::from(policy.slots.max(1))) as u16
}

impl Block {
    /// The block hash.
    pub fn hash(&self) -> Blake2bHash {
        match self {
            Block::Micro(b) => b.hash(),
            Block::Macro(b) => b.hash(),
        }
    }
    /// Height.
    pub fn block_number(&self) -> u32 {
        match self {
            Block::Micro(b) => b.header.block_number,
            Block::Macro(b) => b.header.block_number,
        }
    }
    /// Timestamp.
    pub fn timestamp(&self) -> u64 {
        match self {
            Block::Micro(b) => b.header.timestamp,
            Block::Macro(b) => b.header.timestamp,
        }
    }
    /// Parent hash.
    pub fn parent_hash(&self) -> &Blake2bHash {
        match self {
            Block::Micro(b) => &b.header.parent_hash,
            Block::Macro(b) => &b.header.parent_hash,
        }
    }
    /// State root.
    pub fn state_root(&self) -> &Blake2bHash {
        match self {
            Block::Micro(b) => &b.header.state_root,
            Block::Macro(b) => &b.header.state_root,
        }
    }
    /// History root.
    pub fn history_root(&self) -> &Blake2bHash {
        match self {
            Block::Micro(b) => &b.header.history_root,
            Block::Macro(b) => &b.header.history_root,
        }
    }
    /// Whether this is a macro block.
    pub fn is_macro(&self) -> bool {
        matches!(self, Block::Macro(_))
    }
    /// Whether this is an election block.
    pub fn is_election(&self) -> bool {
        matches!(self, Block::Macro(b) if b.is_election())
    }
    /// The macro block, if this is one.
    pub fn as_macro(&self) -> Option<&MacroBlock> {
        match self {
            Block::Macro(b) => Some(b),
            Block::Micro(_) => None,
        }
    }
    /// The macro block, if this is one.
    pub fn into_macro(self) -> Option<MacroBlock> {
        match self {
            Block::Macro(b) => Some(b),
            Block::Micro(_) => None,
        }
    }
    /// Whether a body is carried.
    pub fn has_body(&self) -> bool {
        match self {
            Block::Micro(b) => b.body.is_some(),
            Block::Macro(b) => b.body.is_some(),
        }
    }
    /// The same block without its body.
    pub fn without_body(&self) -> Block {
        match self {
            Block::Micro(b) => Block::Micro(MicroBlock { body: None, ..b.clone() }),
            Block::Macro(b) => Block::Macro(MacroBlock { body: None, ..b.clone() }),
        }
    }

    /// Intrinsic checks: type at its position, network, version, extra data, validators present iff
    /// election (and well-formed), body matching its root (and required if `require_body`).
    pub fn verify_intrinsic(&self, network: NetworkId, policy: &Policy, require_body: bool) -> Result<(), BlockError> {
        let number = self.block_number();
        if self.is_macro() != policy.is_macro_block_at(number) || number < policy.genesis_block_number {
            return Err(BlockError::WrongBlockType { number });
        }
        let (net, version, extra) = match self {
            Block::Micro(b) => (b.header.network, b.header.version, b.header.extra_data.len()),
            Block::Macro(b) => (b.header.network, b.header.version, b.header.extra_data.len()),
        };
        if net != network {
            return Err(BlockError::WrongNetwork(net));
        }
        if version != BLOCK_VERSION {
            return Err(BlockError::WrongVersion(version));
        }
        if extra > MAX_EXTRA_DATA {
            return Err(BlockError::ExtraDataTooLarge(extra));
        }
        match self {
            Block::Micro(b) => {
                if b.justification.is_none() {
                    return Err(BlockError::MissingProducerSignature);
                }
                match &b.body {
                    Some(body) => {
                        if body.transactions.len() > policy.max_transactions_per_block as usize {
                            return Err(BlockError::TooManyTransactions(body.transactions.len()));
                        }
                        if body.root() != b.header.body_root {
                            return Err(BlockError::BodyRootMismatch);
                        }
                    }
                    None if require_body => return Err(BlockError::MissingBody),
                    None => {}
                }
            }
            Block::Macro(b) => {
                if b.header.validators.is_some() != policy.is_election_block_at(number) {
                    return Err(BlockError::ValidatorsPresence);
                }
                if let Some(v) = &b.header.validators {
                    v.validate(policy)?;
                }
                match &b.body {
                    Some(body) if body.root() != b.header.body_root => return Err(BlockError::BodyRootMismatch),
                    None if require_body => return Err(BlockError::MissingBody),
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// Immediate-successor rule: number, parent hash, timestamp and (for macro blocks) the parent
    /// election hash against the predecessor `pred` and the latest election block hash before it.
    pub fn verify_immediate_successor(
        &self,
        pred: &Block,
        pred_election_hash_after: &Blake2bHash,
    ) -> Result<(), BlockError> {
        let expected = pred.block_number().saturating_add(1);
        if self.block_number() != expected {
            return Err(BlockError::WrongBlockNumber { expected, got: self.block_number() });
        }
        if *self.parent_hash() != pred.hash() {
            return Err(BlockError::WrongParentHash);
        }
        if self.timestamp() < pred.timestamp() {
            return Err(BlockError::TimestampDecreased);
        }
        if let Block::Macro(b) = self
            && b.header.parent_election_hash != *pred_election_hash_after
        {
            return Err(BlockError::WrongParentElectionHash);
        }
        Ok(())
    }
}

impl From<MacroBlock> for Block {
    fn from(b: MacroBlock) -> Self {
        Block::Macro(b)
    }
}

impl From<MicroBlock> for Block {
    fn from(b: MicroBlock) -> Self {
        Block::Micro(b)
    }
}
