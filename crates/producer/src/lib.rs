//! Deterministic chain producer: from a seed and a genesis config it holds the validator and
//! account keys and builds valid blocks on top of a [`ChainState`]: micro blocks with random valid
//! transfers signed by the slot owner, macro blocks paying the batch rewards and signed by a
//! rotating 2f+1 quorum. Every block depends only on the seed and the chain it extends, so a
//! producer restarted on a stored chain continues exactly where it stopped.
//!
//! Shared by tests, benchmarks and the devnet.

use std::collections::HashMap;

use petrel_blockchain::{ChainError, ChainState};
use petrel_primitives::block::{BLOCK_VERSION, producer_slot};
use petrel_primitives::genesis::{GenesisAccount, GenesisValidator};
use petrel_primitives::history::{HistoryItem, HistoryKind};
use petrel_primitives::state::Overlay;
use petrel_primitives::validators::micro_signing_message;
use petrel_primitives::{
    AccountKey, Address, Blake2bHash, Block, GenesisConfig, Hasher, MacroBlock, MacroBody, MacroHeader,
    MacroJustification, MicroBlock, MicroBody, MicroHeader, Policy, SchnorrSecretKey, SchnorrSignature, Transaction,
    Validator, Validators,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// Balance of every generated genesis account.
pub const GENESIS_BALANCE: u64 = 1_000_000_000_000;

/// The keys of a generated network, all derived from one seed.
#[derive(Clone, Debug)]
pub struct DevnetKeys {
    /// The seed everything derives from.
    pub seed: u64,
    /// Validator key pool; each epoch's set is a window of it.
    pub validators: Vec<SchnorrSecretKey>,
    /// Funded accounts.
    pub accounts: Vec<AccountKey>,
}

fn derive(seed: u64, what: &str, i: usize) -> [u8; 32] {
    let mut h = Hasher::new();
    h.update(b"petrel/devnet/").update(what.as_bytes()).u64(seed).u64(i as u64);
    h.finish().0
}

impl DevnetKeys {
    /// Derives `validators` validator keys and `accounts` account keys from `seed`.
    pub fn derive(seed: u64, validators: usize, accounts: usize) -> Self {
        Self {
            seed,
            validators: (0..validators).map(|i| SchnorrSecretKey::from_seed(&derive(seed, "validator", i))).collect(),
            accounts: (0..accounts).map(|i| AccountKey::from_seed(derive(seed, "account", i))).collect(),
        }
    }

    /// The reward address of validator key `i` of the pool.
    pub fn reward_address(&self, i: usize) -> Address {
        AccountKey::from_seed(derive(self.seed, "reward", i)).address()
    }
}

/// How blocks are produced.
#[derive(Clone, Debug)]
pub struct ProducerConfig {
    /// Seed of the keys and of every random choice.
    pub seed: u64,
    /// Validators per epoch.
    pub validators: usize,
    /// Extra validator keys in the pool; each epoch's set is the window shifted by one key.
    pub spare_validators: usize,
    /// Funded accounts that send transfers.
    pub accounts: usize,
    /// Transfers per micro block.
    pub transactions_per_block: usize,
    /// Milliseconds between blocks (timestamps only).
    pub block_interval_ms: u64,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            validators: 16,
            spare_validators: 4,
            accounts: 256,
            transactions_per_block: 10,
            block_interval_ms: 1000,
        }
    }
}

/// Why a block could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    /// The chain's current validators are not keys this producer holds.
    #[error("validator {0} of the current epoch is not a devnet key")]
    UnknownValidator(usize),
    /// Computing the roots failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
}

/// The deterministic producer.
#[derive(Clone, Debug)]
pub struct Producer {
    config: ProducerConfig,
    keys: DevnetKeys,
    by_public_key: HashMap<[u8; 32], usize>,
    /// Each pool key's proof of possession.
    possession: Vec<SchnorrSignature>,
}

impl Producer {
    /// A producer with keys derived from `config.seed`.
    pub fn new(config: ProducerConfig) -> Self {
        let keys = DevnetKeys::derive(config.seed, config.validators + config.spare_validators, config.accounts);
        let by_public_key = keys.validators.iter().enumerate().map(|(i, k)| (k.public_key().to_bytes(), i)).collect();
        let possession = keys.validators.iter().map(SchnorrSecretKey::prove_possession).collect();
        Self { config, keys, by_public_key, possession }
    }

    /// The keys.
    pub fn keys(&self) -> &DevnetKeys {
        &self.keys
    }

    /// The configuration.
    pub fn config(&self) -> &ProducerConfig {
        &self.config
    }

    /// The validator set of `epoch`: a window of `validators` keys of the pool shifted by the epoch,
    /// slots split evenly (the remainder to the first validators).
    pub fn validators_for_epoch(&self, epoch: u32, policy: &Policy) -> Validators {
        let n = self.config.validators.max(1);
        let pool = self.keys.validators.len().max(1);
        let per = policy.slots as usize / n;
        let extra = policy.slots as usize % n;
        Validators(
            (0..n)
                .map(|j| {
                    let i = (epoch as usize + j) % pool;
                    Validator {
                        public_key: self.keys.validators[i].public_key(),
                        reward_address: self.keys.reward_address(i),
                        slots: (per + usize::from(j < extra)) as u16,
                        proof_of_possession: self.possession[i],
                    }
                })
                .collect(),
        )
    }

    /// A genesis config for this producer's keys. The policy's `max_validators` is raised to the
    /// producer's set size if that is larger.
    pub fn genesis(&self, network_id: u8, timestamp: u64, mut policy: Policy) -> GenesisConfig {
        let size = u16::try_from(self.config.validators.max(1)).unwrap_or(u16::MAX);
        policy.max_validators = policy.max_validators.max(size);
        GenesisConfig {
            network_id,
            timestamp,
            policy,
            validators: self
                .validators_for_epoch(0, &policy)
                .0
                .iter()
                .map(|v| GenesisValidator {
                    public_key: v.public_key.to_hex(),
                    reward_address: v.reward_address.to_string(),
                    slots: v.slots,
                    proof_of_possession: v.proof_of_possession.to_hex(),
                })
                .collect(),
            accounts: self
                .keys
                .accounts
                .iter()
                .map(|k| GenesisAccount { address: k.address().to_string(), balance: GENESIS_BALANCE })
                .collect(),
            zkp: None,
        }
    }

    fn secret_of(&self, validators: &Validators, index: usize) -> Result<&SchnorrSecretKey, ProduceError> {
        validators
            .0
            .get(index)
            .and_then(|v| self.by_public_key.get(&v.public_key.to_bytes()))
            .map(|i| &self.keys.validators[*i])
            .ok_or(ProduceError::UnknownValidator(index))
    }

    /// Signs a micro block as the owner of its producer slot.
    pub fn sign_micro(
        &self,
        block: &mut MicroBlock,
        validators: &Validators,
        policy: &Policy,
    ) -> Result<(), ProduceError> {
        let number = block.header.block_number;
        let (index, _) =
            validators.owner_of_slot(producer_slot(number, policy)).ok_or(ProduceError::UnknownValidator(0))?;
        let key = self.secret_of(validators, index)?;
        block.justification = Some(key.sign(&micro_signing_message(&block.hash(), number)));
        Ok(())
    }

    /// Signs a macro block with the smallest rotating set of validators that holds 2f+1 slots.
    pub fn sign_macro(
        &self,
        block: &mut MacroBlock,
        validators: &Validators,
        policy: &Policy,
    ) -> Result<(), ProduceError> {
        let n = validators.len();
        let start = block.header.block_number as usize % n.max(1);
        let mut signers = Vec::new();
        let mut slots = 0u32;
        for k in 0..n {
            if slots >= u32::from(policy.two_f_plus_one()) {
                break;
            }
            let i = (start + k) % n;
            signers.push((i, self.secret_of(validators, i)?));
            slots += u32::from(validators.0[i].slots);
        }
        let message = block.signing_message(policy);
        block.justification = Some(
            MacroJustification::sign(validators, policy, &message, &signers)
                .ok_or(ProduceError::UnknownValidator(0))?,
        );
        Ok(())
    }

    fn rng(&self, number: u32) -> ChaCha20Rng {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&self.config.seed.to_le_bytes());
        seed[8..12].copy_from_slice(&number.to_le_bytes());
        ChaCha20Rng::from_seed(seed)
    }

    /// Random valid transfers among the funded accounts, for block `number` on `state`.
    pub fn transactions(&self, state: &ChainState, number: u32) -> Vec<Transaction> {
        let count = self.config.transactions_per_block.min(state.policy.max_transactions_per_block as usize);
        let n = self.keys.accounts.len();
        if n < 2 {
            return Vec::new();
        }
        let mut rng = self.rng(number);
        let mut overlay = Overlay::new(&state.accounts);
        let mut txs = Vec::with_capacity(count);
        for _ in 0..count {
            let from = rng.gen_range(0..n);
            let to = (from + rng.gen_range(1..n)) % n;
            let sender = &self.keys.accounts[from];
            let account = overlay.get(&sender.address());
            let value = rng.gen_range(1..=100u64);
            if account.balance < value {
                continue;
            }
            let tx =
                Transaction::transfer(sender, self.keys.accounts[to].address(), value, account.nonce, state.network);
            if overlay.execute(&tx).is_ok() {
                txs.push(tx);
            }
        }
        txs
    }

    /// Builds the next block on `state`'s head. `state` is left unchanged.
    pub fn produce(&self, state: &mut ChainState) -> Result<Block, ProduceError> {
        let policy = state.policy;
        let number = state.head_number() + 1;
        let parent_hash = state.head_hash;
        let timestamp = state.head.timestamp() + self.config.block_interval_ms;
        let validators = state.validators.clone();
        if policy.is_macro_block_at(number) {
            let body = MacroBody::expected(&validators, &policy);
            let mut overlay = Overlay::new(&state.accounts);
            let items: Vec<_> = body
                .rewards
                .iter()
                .map(|r| {
                    overlay.reward(r);
                    HistoryItem { block_number: number, block_time: timestamp, kind: HistoryKind::Reward(r.clone()) }
                })
                .collect();
            let (state_root, history_root) = state.preview_roots(number, &overlay.into_changes(), &items)?;
            let next = policy
                .is_election_block_at(number)
                .then(|| self.validators_for_epoch(policy.epoch_at(number), &policy));
            let mut block = MacroBlock {
                header: MacroHeader {
                    network: state.network,
                    version: BLOCK_VERSION,
                    block_number: number,
                    round: 0,
                    timestamp,
                    parent_hash,
                    parent_election_hash: state.macro_head.election_hash_after(),
                    extra_data: Vec::new(),
                    state_root,
                    body_root: body.root(),
                    history_root,
                    validators: next,
                },
                justification: None,
                body: Some(body),
            };
            self.sign_macro(&mut block, &validators, &policy)?;
            Ok(Block::Macro(block))
        } else {
            let txs = self.transactions(state, number);
            let mut overlay = Overlay::new(&state.accounts);
            for tx in &txs {
                // The transactions were built against this state; execution cannot fail here.
                let _ = overlay.execute(tx);
            }
            let items: Vec<_> = txs
                .iter()
                .map(|tx| HistoryItem {
                    block_number: number,
                    block_time: timestamp,
                    kind: HistoryKind::Transfer(tx.clone()),
                })
                .collect();
            let (state_root, history_root) = state.preview_roots(number, &overlay.into_changes(), &items)?;
            let body = MicroBody { transactions: txs };
            let mut block = MicroBlock {
                header: MicroHeader {
                    network: state.network,
                    version: BLOCK_VERSION,
                    block_number: number,
                    timestamp,
                    parent_hash,
                    extra_data: Vec::new(),
                    state_root,
                    body_root: body.root(),
                    history_root,
                },
                justification: None,
                body: Some(body),
            };
            self.sign_micro(&mut block, &validators, &policy)?;
            Ok(Block::Micro(block))
        }
    }
}

/// A convenient hash for tests: Blake2b of a label.
pub fn test_hash(label: &str) -> Blake2bHash {
    Blake2bHash::digest(label.as_bytes())
}
