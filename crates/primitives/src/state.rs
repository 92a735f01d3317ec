//! Account state: balances and nonces in an append-ordered Merkle tree, and transaction execution.
//!
//! Accounts are leaves in the order they first appear on the chain (genesis accounts in config
//! order, then recipients as transactions create them), so every node that replays the same chain
//! builds the same tree. The state root is `Blake2b("petrel/state" ‖ count as u64 BE ‖ top)` where
//! `top` is the binary Merkle root over the leaves (an odd last node is promoted unchanged) and
//! the zero hash when empty. Updates recompute only the dirty paths: `O(k · log n)` hashes for `k`
//! touched accounts.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::block::Reward;
use crate::{Address, Blake2bHash, Hasher, NetworkId, Transaction, TransactionError};

/// One account.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Balance.
    pub balance: u64,
    /// Number of transfers sent.
    pub nonce: u64,
}

fn leaf_hash(address: &Address, account: &Account) -> Blake2bHash {
    let mut h = Hasher::new();
    h.u8(0).update(&address.0).u64(account.balance).u64(account.nonce);
    h.finish()
}

fn node_hash(left: &Blake2bHash, right: &Blake2bHash) -> Blake2bHash {
    let mut h = Hasher::new();
    h.u8(1).hash(left).hash(right);
    h.finish()
}

/// All accounts with their Merkle tree, in memory.
#[derive(Clone, Debug, Default)]
pub struct AccountTree {
    index: HashMap<Address, u32>,
    entries: Vec<(Address, Account)>,
    levels: Vec<Vec<Blake2bHash>>,
}

/// What [`AccountTree::apply`] changed, to undo it.
#[derive(Clone, Debug, Default)]
pub struct StateUndo {
    previous_len: usize,
    previous: Vec<(u32, Account)>,
}

impl AccountTree {
    /// A tree from accounts in leaf order.
    pub fn from_entries(entries: impl IntoIterator<Item = (Address, Account)>) -> Self {
        let mut tree = Self::default();
        let changes: Vec<_> = entries.into_iter().collect();
        tree.apply(&changes);
        tree
    }

    /// Number of accounts.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no accounts.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// An account (zero for unknown addresses).
    pub fn get(&self, address: &Address) -> Account {
        self.index.get(address).map(|i| self.entries[*i as usize].1).unwrap_or_default()
    }

    /// Leaf index of an account.
    pub fn index_of(&self, address: &Address) -> Option<u32> {
        self.index.get(address).copied()
    }

    /// Accounts in leaf order.
    pub fn entries(&self) -> &[(Address, Account)] {
        &self.entries
    }

    /// The state root.
    pub fn root(&self) -> Blake2bHash {
        let top = self.levels.last().and_then(|l| l.first()).copied().unwrap_or(Blake2bHash::ZERO);
        let mut h = Hasher::new();
        h.update(b"petrel/state").u64(self.entries.len() as u64).hash(&top);
        h.finish()
    }

    /// Writes accounts (new ones are appended in the given order) and returns the undo record.
    pub fn apply(&mut self, changes: &[(Address, Account)]) -> StateUndo {
        let mut undo = StateUndo { previous_len: self.entries.len(), previous: Vec::new() };
        let mut dirty = Vec::with_capacity(changes.len());
        for (address, account) in changes {
            match self.index.get(address) {
                Some(&i) => {
                    undo.previous.push((i, self.entries[i as usize].1));
                    self.entries[i as usize].1 = *account;
                    dirty.push(i as usize);
                }
                None => {
                    let i = self.entries.len();
                    self.index.insert(*address, i as u32);
                    self.entries.push((*address, *account));
                    dirty.push(i);
                }
            }
        }
        self.rehash(dirty);
        undo
    }

    /// Reverts an [`apply`](Self::apply); undo records must be reverted newest first.
    pub fn revert(&mut self, undo: StateUndo) {
        let mut dirty = Vec::new();
        for (address, _) in self.entries.drain(undo.previous_len..) {
            self.index.remove(&address);
        }
        for (i, account) in undo.previous.into_iter().rev() {
            // Accounts created by the undone apply are already gone.
            if let Some(entry) = self.entries.get_mut(i as usize) {
                entry.1 = account;
                dirty.push(i as usize);
            }
        }
        self.rehash(dirty);
    }

    fn rehash(&mut self, mut dirty: Vec<usize>) {
        let n = self.entries.len();
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        self.levels[0].resize(n, Blake2bHash::ZERO);
        if n > 0 {
            dirty.push(n - 1);
        }
        dirty.sort_unstable();
        dirty.dedup();
        dirty.retain(|i| *i < n);
        for &i in &dirty {
            let (a, acc) = &self.entries[i];
            self.levels[0][i] = leaf_hash(a, acc);
        }
        let mut level = 0;
        let mut len = n;
        while len > 1 {
            let parent_len = len.div_ceil(2);
            if self.levels.len() <= level + 1 {
                self.levels.push(Vec::new());
            }
            self.levels[level + 1].resize(parent_len, Blake2bHash::ZERO);
            let mut parents: Vec<usize> = dirty.iter().map(|i| i / 2).collect();
            parents.push(parent_len - 1);
            parents.dedup();
            parents.sort_unstable();
            parents.dedup();
            for &p in &parents {
                let (lower, upper) = self.levels.split_at_mut(level + 1);
                let children = &lower[level];
                upper[0][p] = match children.get(2 * p + 1) {
                    Some(right) => node_hash(&children[2 * p], right),
                    None => children[2 * p],
                };
            }
            dirty = parents;
            len = parent_len;
            level += 1;
        }
        self.levels.truncate(level + 1);
    }
}

/// Accounts changed by executing transactions, in first-touch order.
#[derive(Debug, Default)]
pub struct Overlay<'a> {
    base: Option<&'a AccountTree>,
    touched: HashMap<Address, usize>,
    changes: Vec<(Address, Account)>,
}

impl<'a> Overlay<'a> {
    /// An overlay over `base`.
    pub fn new(base: &'a AccountTree) -> Self {
        Self { base: Some(base), touched: HashMap::new(), changes: Vec::new() }
    }

    /// The account as changed so far.
    pub fn get(&self, address: &Address) -> Account {
        match self.touched.get(address) {
            Some(i) => self.changes[*i].1,
            None => self.base.map(|b| b.get(address)).unwrap_or_default(),
        }
    }

    fn set(&mut self, address: Address, account: Account) {
        match self.touched.get(&address) {
            Some(i) => self.changes[*i].1 = account,
            None => {
                self.touched.insert(address, self.changes.len());
                self.changes.push((address, account));
            }
        }
    }

    /// Executes a transfer whose signature was already verified.
    pub fn execute(&mut self, tx: &Transaction) -> Result<(), TransactionError> {
        let mut sender = self.get(&tx.sender);
        if sender.nonce != tx.nonce {
            return Err(TransactionError::WrongNonce { expected: sender.nonce, got: tx.nonce });
        }
        if sender.balance < tx.value {
            return Err(TransactionError::InsufficientFunds { balance: sender.balance, needed: tx.value });
        }
        let mut recipient = self.get(&tx.recipient);
        recipient.balance = recipient.balance.checked_add(tx.value).ok_or(TransactionError::Overflow)?;
        sender.balance -= tx.value;
        sender.nonce += 1;
        self.set(tx.sender, sender);
        self.set(tx.recipient, recipient);
        Ok(())
    }

    /// Pays a reward (saturating: a reward can never make a block invalid by overflow).
    pub fn reward(&mut self, reward: &Reward) {
        let mut acc = self.get(&reward.recipient);
        acc.balance = acc.balance.saturating_add(reward.value);
        self.set(reward.recipient, acc);
    }

    /// The changes, in first-touch order.
    pub fn into_changes(self) -> Vec<(Address, Account)> {
        self.changes
    }
}

/// Verifies and executes transactions against `tree`; returns the changes or the index and error of
/// the first bad transaction.
pub fn execute_transactions(
    tree: &AccountTree,
    txs: &[Transaction],
    network: NetworkId,
) -> Result<Vec<(Address, Account)>, (usize, TransactionError)> {
    let mut overlay = Overlay::new(tree);
    for (i, tx) in txs.iter().enumerate() {
        tx.verify(network).map_err(|e| (i, e))?;
        overlay.execute(tx).map_err(|e| (i, e))?;
    }
    Ok(overlay.into_changes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AccountKey;

    fn addr(i: u8) -> Address {
        Address([i; 32])
    }

    fn naive_root(entries: &[(Address, Account)]) -> Blake2bHash {
        let mut level: Vec<_> = entries.iter().map(|(a, acc)| leaf_hash(a, acc)).collect();
        while level.len() > 1 {
            level = level.chunks(2).map(|c| if c.len() == 2 { node_hash(&c[0], &c[1]) } else { c[0] }).collect();
        }
        let mut h = Hasher::new();
        h.update(b"petrel/state").u64(entries.len() as u64).hash(&level.first().copied().unwrap_or(Blake2bHash::ZERO));
        h.finish()
    }

    #[test]
    fn incremental_root_equals_naive_root_and_undo_restores() {
        let mut tree = AccountTree::default();
        assert_eq!(tree.root(), naive_root(&[]));
        let mut undos = Vec::new();
        let mut roots = vec![tree.root()];
        for step in 0u8..40 {
            let changes: Vec<_> = (0..(step % 5 + 1))
                .map(|k| {
                    (
                        addr(step.wrapping_mul(7).wrapping_add(k) % 23),
                        Account { balance: u64::from(step) * 10 + u64::from(k), nonce: 1 },
                    )
                })
                .collect();
            undos.push(tree.apply(&changes));
            assert_eq!(tree.root(), naive_root(tree.entries()), "step {step}");
            roots.push(tree.root());
        }
        while let Some(undo) = undos.pop() {
            roots.pop();
            tree.revert(undo);
            assert_eq!(tree.root(), *roots.last().unwrap());
            assert_eq!(tree.root(), naive_root(tree.entries()));
        }
        assert!(tree.is_empty());
    }

    #[test]
    fn execution_checks_nonce_and_balance() {
        let k1 = AccountKey::from_seed([1; 32]);
        let k2 = AccountKey::from_seed([2; 32]);
        let tree = AccountTree::from_entries([(k1.address(), Account { balance: 100, nonce: 0 })]);
        let ok = Transaction::transfer(&k1, k2.address(), 60, 0, 1);
        let changes = execute_transactions(&tree, std::slice::from_ref(&ok), 1).unwrap();
        assert_eq!(
            changes,
            vec![(k1.address(), Account { balance: 40, nonce: 1 }), (k2.address(), Account { balance: 60, nonce: 0 })]
        );
        let replay = vec![ok.clone(), ok.clone()];
        assert_eq!(
            execute_transactions(&tree, &replay, 1),
            Err((1, TransactionError::WrongNonce { expected: 1, got: 0 }))
        );
        let second = Transaction::transfer(&k1, k2.address(), 60, 1, 1);
        assert_eq!(
            execute_transactions(&tree, &[ok, second], 1),
            Err((1, TransactionError::InsufficientFunds { balance: 40, needed: 60 }))
        );
        let from_empty = Transaction::transfer(&k2, k1.address(), 1, 0, 1);
        assert!(matches!(
            execute_transactions(&tree, &[from_empty], 1),
            Err((0, TransactionError::InsufficientFunds { .. }))
        ));
    }
}
