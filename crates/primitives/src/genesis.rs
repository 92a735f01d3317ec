//! The genesis config: network id, policy, validators and initial accounts, loaded from TOML. The
//! genesis block built from it, and so its hash, identifies the network.
//!
//! ```toml
//! network_id = 1
//! timestamp = 1700000000000
//!
//! [policy]
//! genesis_block_number = 0
//! blocks_per_batch = 32
//! batches_per_epoch = 4
//! slots = 512
//! proof_of_possession = "<128 hex chars: the key's signature on its possession message>"
//! history_chunk_size = 1024
//! max_transactions_per_block = 1000
//! batch_reward = 1000
//!
//! [[validators]]
//! public_key = "<64 hex chars: compressed Schnorr key>"
//! reward_address = "<64 hex chars>"
//! slots = 512
//!
//! [[accounts]]
//! address = "<64 hex chars: Ed25519 key>"
//! balance = 1000000
//! ```

use std::collections::HashSet;
use std::path::Path;

use petrel_crypto::{SchnorrPublicKey, SchnorrSignature};
use serde::{Deserialize, Serialize};

use crate::block::{BLOCK_VERSION, MacroBody, MacroHeader};
use crate::history::empty_history_root;
use crate::state::{Account, AccountTree};
use crate::validators::{Validator, Validators, ValidatorsError};
use crate::{Address, Blake2bHash, MacroBlock, NetworkId, Policy, PolicyError};

/// Most bytes of a genesis file.
pub const MAX_GENESIS_FILE: u64 = 16 * 1024 * 1024;

/// A validator as written in the genesis file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisValidator {
    /// Hex of the compressed Schnorr public key.
    pub public_key: String,
    /// Hex of the reward address.
    pub reward_address: String,
    /// Slots owned.
    pub slots: u16,
    /// Hex of the key's proof of possession (64 bytes).
    pub proof_of_possession: String,
}

/// The zero-knowledge light sync of a network (ADR 0015): the segment circuit's verifying key,
/// whose Blake2b hash the genesis block carries as its `extra_data`, so that every node of the
/// network agrees on it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisZkp {
    /// Election handoffs per segment proof (`K`, 1 to 64).
    pub handoffs: u16,
    /// Hex of the compressed Groth16 verifying key of the segment circuit.
    pub verifying_key: String,
    /// Devnet only: the seed of the deterministic setup, so that provers can make the proving
    /// key again. A real network runs a ceremony and publishes the proving key instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup_seed: Option<u64>,
}

/// Most handoffs per segment proof.
pub const MAX_ZKP_HANDOFFS: u16 = 64;
/// Most bytes of a verifying key in the genesis config.
pub const MAX_ZKP_VERIFYING_KEY: usize = 1024;

impl GenesisZkp {
    /// The verifying key's bytes (checked by [`GenesisConfig::validate`]).
    pub fn verifying_key_bytes(&self) -> Result<Vec<u8>, GenesisError> {
        let bad = |reason: String| GenesisError::BadKey { what: "zkp verifying key", index: 0, reason };
        let bytes = hex::decode(&self.verifying_key).map_err(|e| bad(e.to_string()))?;
        if bytes.is_empty() || bytes.len() > MAX_ZKP_VERIFYING_KEY {
            return Err(bad(format!("{} bytes", bytes.len())));
        }
        if self.handoffs == 0 || self.handoffs > MAX_ZKP_HANDOFFS {
            return Err(bad(format!("handoffs must be in 1..={MAX_ZKP_HANDOFFS}")));
        }
        Ok(bytes)
    }

    /// Blake2b of the verifying key: the genesis block's `extra_data`.
    pub fn verifying_key_hash(&self) -> Result<Blake2bHash, GenesisError> {
        Ok(Blake2bHash::digest(&self.verifying_key_bytes()?))
    }
}

/// An initial account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisAccount {
    /// Hex of the address.
    pub address: String,
    /// Initial balance.
    pub balance: u64,
}

/// The genesis config of a network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisConfig {
    /// Network id carried by every block and transaction.
    pub network_id: NetworkId,
    /// Genesis timestamp in milliseconds.
    pub timestamp: u64,
    /// Consensus parameters.
    pub policy: Policy,
    /// The first epoch's validators.
    pub validators: Vec<GenesisValidator>,
    /// Initial accounts.
    #[serde(default)]
    pub accounts: Vec<GenesisAccount>,
    /// Zero-knowledge light sync, if the network has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zkp: Option<GenesisZkp>,
}

/// Why a genesis config is unusable.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    /// The file could not be read.
    #[error("cannot read genesis file: {0}")]
    Io(#[from] std::io::Error),
    /// The file is larger than [`MAX_GENESIS_FILE`].
    #[error("genesis file is {0} bytes, over the limit")]
    TooLarge(u64),
    /// Not valid TOML or wrong fields.
    #[error("invalid genesis TOML: {0}")]
    Toml(String),
    /// Bad policy.
    #[error("invalid policy: {0}")]
    Policy(#[from] PolicyError),
    /// Bad validator set.
    #[error("invalid validators: {0}")]
    Validators(#[from] ValidatorsError),
    /// A key or address that does not parse.
    #[error("invalid {what} #{index}: {reason}")]
    BadKey {
        /// Which list.
        what: &'static str,
        /// Position.
        index: usize,
        /// Why.
        reason: String,
    },
    /// An address listed twice.
    #[error("account #{0} repeats an earlier address")]
    DuplicateAccount(usize),
}

impl GenesisConfig {
    /// Parses TOML text and validates it.
    pub fn from_toml(text: &str) -> Result<Self, GenesisError> {
        let config: Self = toml::from_str(text).map_err(|e| GenesisError::Toml(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Reads and validates a TOML file.
    pub fn load(path: &Path) -> Result<Self, GenesisError> {
        let len = std::fs::metadata(path)?.len();
        if len > MAX_GENESIS_FILE {
            return Err(GenesisError::TooLarge(len));
        }
        Self::from_toml(&std::fs::read_to_string(path)?)
    }

    /// The config as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<(), GenesisError> {
        self.policy.validate()?;
        let validators = self.validator_set()?;
        validators.validate(&self.policy)?;
        validators.verify_possession(|_| false)?;
        self.accounts_tree()?;
        if let Some(zkp) = &self.zkp {
            zkp.verifying_key_bytes()?;
        }
        Ok(())
    }

    /// The genesis validator set.
    pub fn validator_set(&self) -> Result<Validators, GenesisError> {
        let mut out = Vec::with_capacity(self.validators.len());
        for (index, v) in self.validators.iter().enumerate() {
            let bad = |reason: String| GenesisError::BadKey { what: "validator", index, reason };
            let mut pk = [0u8; 32];
            hex::decode_to_slice(&v.public_key, &mut pk).map_err(|e| bad(e.to_string()))?;
            let public_key = SchnorrPublicKey::from_bytes(&pk).map_err(|e| bad(e.to_string()))?;
            let reward_address = Address::from_hex(&v.reward_address).map_err(|e| bad(e.to_string()))?;
            let mut pop = [0u8; 64];
            hex::decode_to_slice(&v.proof_of_possession, &mut pop)
                .map_err(|e| bad(format!("proof of possession: {e}")))?;
            let proof_of_possession = SchnorrSignature::from_bytes(&pop);
            out.push(Validator { public_key, reward_address, slots: v.slots, proof_of_possession });
        }
        Ok(Validators(out))
    }

    /// The initial account tree.
    pub fn accounts_tree(&self) -> Result<AccountTree, GenesisError> {
        let mut seen = HashSet::new();
        let mut entries = Vec::with_capacity(self.accounts.len());
        for (index, a) in self.accounts.iter().enumerate() {
            let address = Address::from_hex(&a.address).map_err(|e| GenesisError::BadKey {
                what: "account",
                index,
                reason: e.to_string(),
            })?;
            if !seen.insert(address) {
                return Err(GenesisError::DuplicateAccount(index));
            }
            entries.push((address, Account { balance: a.balance, nonce: 0 }));
        }
        Ok(AccountTree::from_entries(entries))
    }

    /// The genesis block: an election block at the genesis number without justification.
    pub fn genesis_block(&self) -> Result<MacroBlock, GenesisError> {
        let validators = self.validator_set()?;
        let state_root = self.accounts_tree()?.root();
        let body = MacroBody::default();
        let header = MacroHeader {
            network: self.network_id,
            version: BLOCK_VERSION,
            block_number: self.policy.genesis_block_number,
            round: 0,
            timestamp: self.timestamp,
            parent_hash: Blake2bHash::ZERO,
            parent_election_hash: Blake2bHash::ZERO,
            extra_data: match &self.zkp {
                Some(zkp) => zkp.verifying_key_hash()?.0.to_vec(),
                None => Vec::new(),
            },
            state_root,
            body_root: body.root(),
            history_root: empty_history_root(),
            validators: Some(validators),
        };
        Ok(MacroBlock { header, justification: None, body: Some(body) })
    }

    /// The genesis hash, which identifies the network.
    pub fn genesis_hash(&self) -> Result<Blake2bHash, GenesisError> {
        Ok(self.genesis_block()?.hash())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use petrel_crypto::SchnorrSecretKey;

    fn config() -> GenesisConfig {
        let key = SchnorrSecretKey::from_seed(&[3; 32]);
        GenesisConfig {
            network_id: 5,
            timestamp: 1_000,
            policy: Policy::TEST,
            validators: vec![GenesisValidator {
                public_key: key.public_key().to_hex(),
                reward_address: hex::encode([9u8; 32]),
                slots: Policy::TEST.slots,
                proof_of_possession: key.prove_possession().to_hex(),
            }],
            accounts: vec![GenesisAccount { address: hex::encode([1u8; 32]), balance: 100 }],
            zkp: None,
        }
    }

    #[test]
    fn toml_round_trip_keeps_the_genesis_hash() {
        let c = config();
        let text = c.to_toml();
        let back = GenesisConfig::from_toml(&text).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.genesis_hash().unwrap(), c.genesis_hash().unwrap());
        let block = c.genesis_block().unwrap();
        assert!(block.is_election() && block.justification.is_none());
        assert_eq!(block.header.state_root, c.accounts_tree().unwrap().root());
        // Any field change makes another network.
        let mut other = c.clone();
        other.timestamp += 1;
        assert_ne!(other.genesis_hash().unwrap(), c.genesis_hash().unwrap());
        // The zkp verifying key is part of the network: its hash is the genesis extra data.
        let mut zkp = c.clone();
        zkp.zkp = Some(GenesisZkp { handoffs: 4, verifying_key: "ab".repeat(40), setup_seed: Some(7) });
        let back = GenesisConfig::from_toml(&zkp.to_toml()).unwrap();
        assert_eq!(back, zkp);
        assert_eq!(zkp.genesis_block().unwrap().header.extra_data, Blake2bHash::digest(&[0xab; 40]).0.to_vec());
        assert_ne!(zkp.genesis_hash().unwrap(), c.genesis_hash().unwrap());
    }

    #[test]
    fn bad_configs_are_clear_errors() {
        assert!(matches!(GenesisConfig::from_toml("network_id = "), Err(GenesisError::Toml(_))));
        let text = config().to_toml().replace("network_id = 5", "network_id = 5\nsurprise = 1");
        assert!(matches!(GenesisConfig::from_toml(&text), Err(GenesisError::Toml(_))));
        let mut c = config();
        c.validators[0].slots -= 1;
        assert!(matches!(c.validate(), Err(GenesisError::Validators(ValidatorsError::SlotCountMismatch { .. }))));
        let mut c = config();
        c.validators[0].public_key = "ff".repeat(32);
        assert!(matches!(c.validate(), Err(GenesisError::BadKey { what: "validator", .. })));
        // A proof of possession by another key, or not hex: refused.
        let mut c = config();
        c.validators[0].proof_of_possession = SchnorrSecretKey::from_seed(&[4; 32]).prove_possession().to_hex();
        assert!(matches!(c.validate(), Err(GenesisError::Validators(ValidatorsError::BadProofOfPossession(0)))));
        let mut c = config();
        c.validators[0].proof_of_possession = "zz".into();
        assert!(matches!(c.validate(), Err(GenesisError::BadKey { what: "validator", .. })));
        // A verifying key that is not hex, empty or too large, or K out of range.
        for (key, handoffs) in [("zz", 4), ("", 4), (&*"00".repeat(2000), 4), ("00", 0), ("00", 65)] {
            let mut c = config();
            c.zkp = Some(GenesisZkp { handoffs, verifying_key: key.into(), setup_seed: None });
            assert!(matches!(c.validate(), Err(GenesisError::BadKey { what: "zkp verifying key", .. })), "{handoffs}");
        }
        let mut c = config();
        c.accounts.push(c.accounts[0].clone());
        assert!(matches!(c.validate(), Err(GenesisError::DuplicateAccount(1))));
        let mut c = config();
        c.policy.blocks_per_batch = 1;
        assert!(matches!(c.validate(), Err(GenesisError::Policy(_))));
        let missing = GenesisConfig::load(Path::new("/nonexistent/genesis.toml"));
        assert!(matches!(missing, Err(GenesisError::Io(_))));
    }
}
