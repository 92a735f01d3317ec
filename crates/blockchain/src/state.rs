//! The in-memory chain state and the block rules that change it, shared by [`crate::Blockchain`]
//! (which persists each change) and by `chain verify` (which only replays).
//!
//! Every `apply_*` either succeeds and returns an [`Applied`] record, or fails and leaves the state
//! exactly as it was. [`ChainState::revert`] undoes an `Applied` (used when persisting it fails).

use petrel_primitives::history::{HistoryItem, HistoryKind, HistoryTree};
use petrel_primitives::state::{AccountTree, Overlay, StateUndo, execute_transactions};
use petrel_primitives::{
    Account, Address, Blake2bHash, Block, BlockError, GenesisConfig, MacroBlock, MacroBody, NetworkId, Policy,
    Validators,
};

use crate::ChainError;

/// Heads, validators, accounts and the current epoch's history tree.
#[derive(Clone, Debug)]
pub struct ChainState {
    /// Network id.
    pub network: NetworkId,
    /// Policy.
    pub policy: Policy,
    /// Genesis hash.
    pub genesis_hash: Blake2bHash,
    /// Head block (without body).
    pub head: Block,
    /// Hash of the head.
    pub head_hash: Blake2bHash,
    /// Latest macro block (without body).
    pub macro_head: MacroBlock,
    /// Latest election block (without body).
    pub election_head: MacroBlock,
    /// Validators of the current epoch (named by the election head).
    pub validators: Validators,
    /// All accounts.
    pub accounts: AccountTree,
    /// History tree of `history_epoch`.
    pub history: HistoryTree,
    /// Epoch whose history `history` holds.
    pub history_epoch: u32,
}

/// What one successful apply changed.
#[derive(Debug)]
pub struct Applied {
    /// Block hash.
    pub hash: Blake2bHash,
    /// The block as pushed (with body).
    pub block: Block,
    /// Accounts written, with their new values, and their leaf indices.
    pub accounts: Vec<(u32, Address, Account)>,
    /// History items appended, in order.
    pub history: Vec<HistoryItem>,
    /// Epoch of those items.
    pub epoch: u32,
    /// Leaf index of the first appended item.
    pub first_leaf: u64,
    /// MMR size before the append (new nodes start here).
    pub first_node: u64,
    undo: Undo,
}

#[derive(Debug)]
struct Undo {
    state: StateUndo,
    history_leaves: u64,
    previous_history: Option<(HistoryTree, u32)>,
    head: Block,
    head_hash: Blake2bHash,
    macro_head: Option<MacroBlock>,
    election: Option<(MacroBlock, Validators)>,
}

impl ChainState {
    /// The state at genesis.
    pub fn genesis(config: &GenesisConfig) -> Result<Self, ChainError> {
        config.validate()?;
        let genesis = config.genesis_block()?;
        let validators = config.validator_set()?;
        let header_only = MacroBlock { body: None, ..genesis.clone() };
        Ok(Self {
            network: config.network_id,
            policy: config.policy,
            genesis_hash: genesis.hash(),
            head: Block::Macro(header_only.clone()),
            head_hash: genesis.hash(),
            macro_head: header_only.clone(),
            election_head: header_only,
            validators,
            accounts: config.accounts_tree()?,
            history: HistoryTree::new(),
            history_epoch: 0,
        })
    }

    /// Head block number.
    pub fn head_number(&self) -> u32 {
        self.head.block_number()
    }

    /// Fully validates `block` as the head's successor and applies it.
    pub fn apply_block(&mut self, block: Block) -> Result<Applied, ChainError> {
        let number = block.block_number();
        let err = |e: BlockError| ChainError::block(number, e);
        block.verify_intrinsic(self.network, &self.policy, true).map_err(err)?;
        block.verify_immediate_successor(&self.head, &self.macro_head.election_hash_after()).map_err(err)?;
        let mut items = Vec::new();
        let changes = match &block {
            Block::Micro(micro) => {
                micro.verify_producer(&self.validators, &self.policy).map_err(err)?;
                let body = micro.body.as_ref().ok_or_else(|| err(BlockError::MissingBody))?;
                let changes = execute_transactions(&self.accounts, &body.transactions, self.network)
                    .map_err(|(index, source)| ChainError::InvalidTransaction { number, index, source })?;
                items.extend(body.transactions.iter().map(|tx| HistoryItem {
                    block_number: number,
                    block_time: micro.header.timestamp,
                    kind: HistoryKind::Transfer(tx.clone()),
                }));
                changes
            }
            Block::Macro(mac) => {
                mac.verify_justification(&self.validators, &self.policy).map_err(err)?;
                mac.verify_entering_keys(&self.validators).map_err(err)?;
                let body = mac.body.as_ref().ok_or_else(|| err(BlockError::MissingBody))?;
                if *body != MacroBody::expected(&self.validators, &self.policy) {
                    return Err(err(BlockError::WrongMacroBody));
                }
                let mut overlay = Overlay::new(&self.accounts);
                for reward in &body.rewards {
                    overlay.reward(reward);
                    items.push(HistoryItem {
                        block_number: number,
                        block_time: mac.header.timestamp,
                        kind: HistoryKind::Reward(reward.clone()),
                    });
                }
                overlay.into_changes()
            }
        };
        self.commit_changes(block, changes, items)
    }

    /// Applies a macro block together with the history since the macro head, without the micro
    /// blocks: checks the macro-successor rule and the justification, replays the history (transfers
    /// and rewards) and requires the resulting history and state roots to match the block.
    ///
    /// Transfer signatures are not re-checked: the items are authenticated by the history root that
    /// 2f+1 validators signed. Execution rules (nonces, balances) still apply.
    pub fn apply_history(&mut self, block: MacroBlock, items: Vec<HistoryItem>) -> Result<Applied, ChainError> {
        let number = block.block_number();
        let err = |e: BlockError| ChainError::block(number, e);
        if self.head_hash != self.macro_head.hash() {
            return Err(ChainError::NotAtMacroHead {
                head: self.head_number(),
                macro_head: self.macro_head.block_number(),
            });
        }
        let as_block = Block::Macro(block);
        as_block.verify_intrinsic(self.network, &self.policy, true).map_err(err)?;
        let Block::Macro(block) = as_block else { return Err(err(BlockError::WrongBlockType { number })) };
        block.verify_macro_successor(&self.macro_head, &self.policy).map_err(err)?;
        block.verify_justification(&self.validators, &self.policy).map_err(err)?;
        block.verify_entering_keys(&self.validators).map_err(err)?;
        let expected_rewards = MacroBody::expected(&self.validators, &self.policy);
        if block.body.as_ref() != Some(&expected_rewards) {
            return Err(err(BlockError::WrongMacroBody));
        }
        let low = self.macro_head.block_number();
        let mut overlay = Overlay::new(&self.accounts);
        let mut last = low;
        for (index, item) in items.iter().enumerate() {
            let out_of_range = ChainError::HistoryOutOfRange { number, index };
            if item.block_number <= low || item.block_number > number || item.block_number < last {
                return Err(out_of_range);
            }
            last = item.block_number;
            match &item.kind {
                HistoryKind::Transfer(tx) => {
                    if tx.network != self.network || self.policy.is_macro_block_at(item.block_number) {
                        return Err(out_of_range);
                    }
                    overlay.execute(tx).map_err(|source| ChainError::InvalidTransaction {
                        number: item.block_number,
                        index,
                        source,
                    })?;
                }
                HistoryKind::Reward(r) => {
                    if !self.policy.is_macro_block_at(item.block_number) {
                        return Err(out_of_range);
                    }
                    overlay.reward(r);
                }
            }
        }
        let changes = overlay.into_changes();
        self.commit_changes(Block::Macro(block), changes, items)
    }

    fn commit_changes(
        &mut self,
        block: Block,
        changes: Vec<(Address, Account)>,
        items: Vec<HistoryItem>,
    ) -> Result<Applied, ChainError> {
        let number = block.block_number();
        let hash = block.hash();
        let epoch = self.policy.epoch_at(number);
        let previous_history = if epoch != self.history_epoch {
            Some((std::mem::take(&mut self.history), std::mem::replace(&mut self.history_epoch, epoch)))
        } else {
            None
        };
        let history_leaves = self.history.len();
        let first_node = self.history.nodes().len() as u64;
        let state = self.accounts.apply(&changes);
        let mut undo = Undo {
            state,
            history_leaves,
            previous_history,
            head: self.head.clone(),
            head_hash: self.head_hash,
            macro_head: None,
            election: None,
        };
        let result =
            self.history.append(items.iter().map(HistoryItem::leaf_hash)).map_err(ChainError::from).and_then(|()| {
                let computed = self.accounts.root();
                if computed != *block.state_root() {
                    return Err(ChainError::WrongStateRoot { number, expected: *block.state_root(), computed });
                }
                let computed = self.history.root();
                if computed != *block.history_root() {
                    return Err(ChainError::WrongHistoryRoot { number, expected: *block.history_root(), computed });
                }
                Ok(())
            });
        if let Err(e) = result {
            self.undo(undo);
            return Err(e);
        }
        let header_only = block.without_body();
        if let Block::Macro(m) = &header_only {
            undo.macro_head = Some(std::mem::replace(&mut self.macro_head, m.clone()));
            if let Some(v) = &m.header.validators {
                // The keys passed their subgroup checks when the block was verified; the copy kept
                // for the epoch carries that, so its justifications aggregate without cache
                // lookups. (A key that failed would only be checked, and refused, again on use.)
                let v = v.check_keys().unwrap_or_else(|_| v.clone());
                let old_validators = std::mem::replace(&mut self.validators, v);
                undo.election = Some((std::mem::replace(&mut self.election_head, m.clone()), old_validators));
            }
        }
        self.head = header_only;
        self.head_hash = hash;
        let accounts =
            changes.into_iter().map(|(a, acc)| (self.accounts.index_of(&a).unwrap_or(u32::MAX), a, acc)).collect();
        Ok(Applied { hash, block, accounts, history: items, epoch, first_leaf: history_leaves, first_node, undo })
    }

    /// The state and history roots that a block `number` with these account changes and history
    /// items would produce on top of the head. Leaves the state unchanged (used by block producers).
    pub fn preview_roots(
        &mut self,
        number: u32,
        changes: &[(Address, Account)],
        items: &[HistoryItem],
    ) -> Result<(Blake2bHash, Blake2bHash), ChainError> {
        let undo = self.accounts.apply(changes);
        let state_root = self.accounts.root();
        self.accounts.revert(undo);
        let history_root = if self.policy.epoch_at(number) == self.history_epoch {
            let before = self.history.len();
            let appended = self.history.append(items.iter().map(HistoryItem::leaf_hash));
            let root = self.history.root();
            self.history.truncate(before);
            appended?;
            root
        } else {
            let mut fresh = HistoryTree::new();
            fresh.append(items.iter().map(HistoryItem::leaf_hash))?;
            fresh.root()
        };
        Ok((state_root, history_root))
    }

    /// Undoes the last [`Applied`] (must be the most recent one).
    pub fn revert(&mut self, applied: Applied) {
        self.undo(applied.undo);
    }

    fn undo(&mut self, undo: Undo) {
        self.accounts.revert(undo.state);
        self.history.truncate(undo.history_leaves);
        if let Some((tree, epoch)) = undo.previous_history {
            self.history = tree;
            self.history_epoch = epoch;
        }
        self.head = undo.head;
        self.head_hash = undo.head_hash;
        if let Some(m) = undo.macro_head {
            self.macro_head = m;
        }
        if let Some((e, v)) = undo.election {
            self.election_head = e;
            self.validators = v;
        }
    }
}
