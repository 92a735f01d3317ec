//! Accounts' transactions: value transfers signed with Ed25519.

use std::fmt;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::{Blake2bHash, Hasher, NetworkId};

/// An account address: the account's Ed25519 verifying key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Address(pub [u8; 32]);

impl Address {
    /// Parses 64 hex characters.
    pub fn from_hex(s: &str) -> Result<Self, hex::FromHexError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out)?;
        Ok(Self(out))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({})", hex::encode(&self.0[..4]))
    }
}

/// A 64-byte Ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Ed25519Signature(#[serde(with = "crate::serde_bytes")] pub [u8; 64]);

impl fmt::Debug for Ed25519Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ed25519Signature({}..)", hex::encode(&self.0[..4]))
    }
}

/// A key pair that owns an account.
#[derive(Clone)]
pub struct AccountKey(SigningKey);

impl AccountKey {
    /// Derives a key from a 32-byte seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self(SigningKey::from_bytes(&seed))
    }
    /// The account's address.
    pub fn address(&self) -> Address {
        Address(self.0.verifying_key().to_bytes())
    }
}

impl fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountKey({:?})", self.address())
    }
}

/// A transfer of `value` from `sender` to `recipient`; `nonce` must equal the sender's nonce.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    /// Network the transaction is valid on.
    pub network: NetworkId,
    /// Paying account.
    pub sender: Address,
    /// Receiving account.
    pub recipient: Address,
    /// Amount moved.
    pub value: u64,
    /// The sender's transaction counter; replay protection.
    pub nonce: u64,
    /// Ed25519 signature of [`Transaction::signing_hash`] by the sender.
    pub signature: Ed25519Signature,
}

/// Why a transaction is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransactionError {
    /// The transaction names another network.
    #[error("transaction for network {0}")]
    WrongNetwork(NetworkId),
    /// The signature does not verify or the sender is not a valid key.
    #[error("invalid transaction signature")]
    InvalidSignature,
    /// Zero-value transfers are not allowed.
    #[error("zero-value transfer")]
    ZeroValue,
    /// Sender and recipient are the same account.
    #[error("sender is the recipient")]
    SelfTransfer,
    /// The sender's account does not exist or holds too little.
    #[error("insufficient funds: balance {balance}, needed {needed}")]
    InsufficientFunds {
        /// Sender balance.
        balance: u64,
        /// Value of the transfer.
        needed: u64,
    },
    /// The nonce is not the sender's next nonce.
    #[error("wrong nonce: expected {expected}, got {got}")]
    WrongNonce {
        /// The account's nonce.
        expected: u64,
        /// The transaction's nonce.
        got: u64,
    },
    /// A balance would overflow.
    #[error("balance overflow")]
    Overflow,
}

impl Transaction {
    /// Builds and signs a transfer.
    pub fn transfer(key: &AccountKey, recipient: Address, value: u64, nonce: u64, network: NetworkId) -> Self {
        let mut tx = Transaction {
            network,
            sender: key.address(),
            recipient,
            value,
            nonce,
            signature: Ed25519Signature([0; 64]),
        };
        tx.signature = Ed25519Signature(key.0.sign(tx.signing_hash().as_bytes()).to_bytes());
        tx
    }

    /// The hash the sender signs: every field but the signature, in a fixed layout.
    pub fn signing_hash(&self) -> Blake2bHash {
        let mut h = Hasher::new();
        h.update(b"petrel/tx/v1")
            .u8(self.network)
            .update(&self.sender.0)
            .update(&self.recipient.0)
            .u64(self.value)
            .u64(self.nonce);
        h.finish()
    }

    /// The transaction's identity: the signing hash and the signature.
    pub fn hash(&self) -> Blake2bHash {
        let mut h = Hasher::new();
        h.hash(&self.signing_hash()).update(&self.signature.0);
        h.finish()
    }

    /// Stateless checks: network, value, parties and the signature (strict Ed25519 verification,
    /// which rejects malleable signatures and small-order keys).
    pub fn verify(&self, network: NetworkId) -> Result<(), TransactionError> {
        if self.network != network {
            return Err(TransactionError::WrongNetwork(self.network));
        }
        if self.value == 0 {
            return Err(TransactionError::ZeroValue);
        }
        if self.sender == self.recipient {
            return Err(TransactionError::SelfTransfer);
        }
        let key = sender_key(&self.sender)?;
        let sig = ed25519_dalek::Signature::from_bytes(&self.signature.0);
        key.verify_strict(self.signing_hash().as_bytes(), &sig).map_err(|_| TransactionError::InvalidSignature)
    }
}

/// Most decompressed sender keys remembered by the cache of `Transaction::verify`.
pub const SENDER_KEY_CACHE: usize = 65_536;

/// The sender's verifying key. Decompressing an Ed25519 key costs about a tenth of a verification
/// and the same accounts send again and again, so keys that decode are remembered in a
/// process-wide cache of at most [`SENDER_KEY_CACHE`] entries (cleared when full). Decoding is a
/// pure function of the bytes, so the cache cannot change any verdict.
fn sender_key(sender: &Address) -> Result<VerifyingKey, TransactionError> {
    type Cache = std::sync::Mutex<std::collections::HashMap<[u8; 32], VerifyingKey>>;
    static CACHE: std::sync::OnceLock<Cache> = std::sync::OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(key) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&sender.0) {
        return Ok(*key);
    }
    let key = VerifyingKey::from_bytes(&sender.0).map_err(|_| TransactionError::InvalidSignature)?;
    let mut map = cache.lock().unwrap_or_else(|e| e.into_inner());
    if map.len() >= SENDER_KEY_CACHE {
        map.clear();
    }
    map.insert(sender.0, key);
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u8) -> AccountKey {
        AccountKey::from_seed([i; 32])
    }

    #[test]
    fn signed_transfer_verifies() {
        let tx = Transaction::transfer(&key(1), key(2).address(), 5, 0, 7);
        assert_eq!(tx.verify(7), Ok(()));
        assert_eq!(tx.verify(8), Err(TransactionError::WrongNetwork(7)));
    }

    #[test]
    fn tampering_breaks_the_signature() {
        let tx = Transaction::transfer(&key(1), key(2).address(), 5, 0, 7);
        let mut t = tx.clone();
        t.value = 6;
        assert_eq!(t.verify(7), Err(TransactionError::InvalidSignature));
        let mut t = tx.clone();
        t.sender = key(3).address();
        assert_eq!(t.verify(7), Err(TransactionError::InvalidSignature));
        let mut t = tx.clone();
        t.signature.0[10] ^= 1;
        assert_eq!(t.verify(7), Err(TransactionError::InvalidSignature));
        let mut t = tx;
        t.sender = Address([0xff; 32]); // not a curve point
        assert_eq!(t.verify(7), Err(TransactionError::InvalidSignature));
    }

    #[test]
    fn degenerate_transfers_are_rejected() {
        assert_eq!(
            Transaction::transfer(&key(1), key(2).address(), 0, 0, 7).verify(7),
            Err(TransactionError::ZeroValue)
        );
        assert_eq!(
            Transaction::transfer(&key(1), key(1).address(), 1, 0, 7).verify(7),
            Err(TransactionError::SelfTransfer)
        );
    }

    #[test]
    fn codec_round_trip() {
        let tx = Transaction::transfer(&key(1), key(2).address(), 5, 3, 7);
        let bytes = crate::codec::encode(&tx).unwrap();
        assert_eq!(crate::codec::decode::<Transaction>(&bytes, 1024).unwrap(), tx);
    }
}
