//! Aggregated Schnorr signatures under a sum of public keys, and proofs of possession
//! (groundwork for the aggregated macro-block justification of issue "Zero-knowledge light
//! sync": one signature per block instead of one per signer).
//!
//! # The scheme (frozen: the known-answer tests pin it)
//!
//! * **Aggregate key** of a signer set: `X = Σ X_i`, the sum of the signers' public keys
//!   ([`aggregate_public_keys`]); the identity (an empty set, or keys that cancel) is refused.
//! * **Aggregate signature** on `m`: an ordinary signature under `X` ([`SchnorrPublicKey::verify`]
//!   with the aggregate key): `s·G == R + e·X` with `e = challenge(R, X, m)`. Signers produce it
//!   with summed nonces and partial signatures, `R = Σ k_i·G`, `s = Σ (k_i + e·x_i)`. A party
//!   holding every key (the devnet producer) does that alone ([`sign_aggregate`]); its nonces are
//!   `k_i = Blake2b-512(len32(D_a) ‖ D_a ‖ c ‖ LE32(x_i) ‖ LE32(m) ‖ enc(X)) mod r` with
//!   `D_a = "petrel/schnorr/aggregate-nonce/v1"`, so that they never repeat a nonce of an
//!   individual signature on the same message (which would reveal `x_i`).
//! * **Rogue keys**: with plain key sums, a party can announce `X' = a·G − X_honest` and sign for
//!   `{honest, X'}` alone. Every key therefore carries a **proof of possession**, a signature by
//!   the key on `m_pop(X) = poseidon([TAG_POSSESSION, X.x, X.y])` ([`SchnorrSecretKey::prove_possession`],
//!   [`SchnorrPublicKey::verify_possession`]), checked before the key may take part in a sum: a
//!   party that does not know the discrete log of its key cannot produce one. The tag differs from
//!   every other signing tag, so no block signature doubles as a proof.

use ark_ec::{AdditiveGroup, CurveGroup};
use ark_ed_on_bls12_377::EdwardsProjective;
use ark_ff::Zero;

use super::{
    SchnorrPublicKey, SchnorrSecretKey, SchnorrSignature, challenge, encode_point, hash_to_nonzero_scalar,
    mul_generator, scalar_to_bytes,
};
use crate::error::CryptoError;
use crate::poseidon::{FieldElement, poseidon_hash};

/// Domain tag of the nonces of [`sign_aggregate`].
const AGGREGATE_NONCE_DOMAIN: &[u8] = b"petrel/schnorr/aggregate-nonce/v1";

/// Poseidon domain tag of proof-of-possession messages ("PETRELPO").
pub const TAG_POSSESSION: u64 = 0x5045_5452_454c_504f;

/// The sum of `keys`: the key a set of signers signs under together. [`CryptoError::IdentityKey`]
/// for an empty set or keys that sum to the identity, [`CryptoError::SmallSubgroupPoint`] if a
/// key is outside the prime-order subgroup (keys decoded with the check deferred are checked here).
pub fn aggregate_public_keys<'a>(
    keys: impl IntoIterator<Item = &'a SchnorrPublicKey>,
) -> Result<SchnorrPublicKey, CryptoError> {
    let mut sum = EdwardsProjective::ZERO;
    for key in keys {
        sum += key.check()?.point;
    }
    if sum.is_zero() {
        return Err(CryptoError::IdentityKey);
    }
    // A sum of subgroup points stays in the subgroup.
    Ok(SchnorrPublicKey::from_point_unchecked(sum.into_affine()))
}

/// Signs `msg` under the sum of `keys`' public keys, for a party that holds every key (see the
/// module documentation). [`CryptoError::IdentityKey`] if the keys sum to the identity.
pub fn sign_aggregate(keys: &[&SchnorrSecretKey], msg: &FieldElement) -> Result<SchnorrSignature, CryptoError> {
    let aggregate = aggregate_public_keys(keys.iter().map(|k| &k.public))?;
    let nonces: Vec<_> = keys
        .iter()
        .map(|k| {
            hash_to_nonzero_scalar(
                AGGREGATE_NONCE_DOMAIN,
                &[&scalar_to_bytes(&k.scalar), &msg.to_bytes(), aggregate.as_bytes()],
            )
        })
        .collect();
    let r = nonces.iter().fold(EdwardsProjective::ZERO, |acc, k| acc + mul_generator(k)).into_affine();
    let e = challenge(&r, &aggregate, msg);
    let s = keys.iter().zip(&nonces).fold(ark_ed_on_bls12_377::Fr::ZERO, |acc, (key, k)| acc + k + e * key.scalar);
    Ok(SchnorrSignature { r: encode_point(&r), s: scalar_to_bytes(&s) })
}

/// The message a key signs to prove it knows its secret.
pub fn possession_message(key: &SchnorrPublicKey) -> FieldElement {
    let [x, y] = key.to_field_elements();
    poseidon_hash(&[FieldElement::from_u64(TAG_POSSESSION), x, y])
}

impl SchnorrSecretKey {
    /// This key's proof of possession: its signature on [`possession_message`].
    pub fn prove_possession(&self) -> SchnorrSignature {
        self.sign(&possession_message(&self.public))
    }
}

impl SchnorrPublicKey {
    /// Checks this key's proof of possession (errors as [`SchnorrPublicKey::verify`]).
    pub fn verify_possession(&self, proof: &SchnorrSignature) -> Result<(), CryptoError> {
        self.verify(&possession_message(self), proof)
    }
}

#[cfg(test)]
mod tests {
    use ark_ec::AffineRepr;

    use super::*;
    use crate::hash::Blake2bHash;

    fn key(i: u64) -> SchnorrSecretKey {
        SchnorrSecretKey::from_seed(Blake2bHash::digest(&i.to_be_bytes()).as_bytes())
    }

    fn msg(i: u64) -> FieldElement {
        FieldElement::from_u64(i)
    }

    #[test]
    fn an_aggregate_signature_verifies_under_the_sum_of_exactly_its_signers() {
        let keys: Vec<_> = (0..11).map(key).collect();
        let refs: Vec<_> = keys.iter().collect();
        let sig = sign_aggregate(&refs, &msg(7)).unwrap();
        let publics: Vec<_> = keys.iter().map(SchnorrSecretKey::public_key).collect();
        let sum = aggregate_public_keys(&publics).unwrap();
        assert_eq!(sum.verify(&msg(7), &sig), Ok(()));
        // The order of the signers does not matter.
        let reversed: Vec<_> = publics.iter().rev().copied().collect();
        assert_eq!(aggregate_public_keys(&reversed).unwrap(), sum);
        // Another message, one signer fewer or one more, or a key counted twice: refused.
        assert_eq!(sum.verify(&msg(8), &sig), Err(CryptoError::InvalidSignature));
        let fewer = aggregate_public_keys(&publics[1..]).unwrap();
        assert_eq!(fewer.verify(&msg(7), &sig), Err(CryptoError::InvalidSignature));
        let more = aggregate_public_keys(publics.iter().chain([&key(99).public_key()])).unwrap();
        assert_eq!(more.verify(&msg(7), &sig), Err(CryptoError::InvalidSignature));
        let twice = aggregate_public_keys(publics.iter().chain([&publics[0]])).unwrap();
        assert_eq!(twice.verify(&msg(7), &sig), Err(CryptoError::InvalidSignature));
        // One signer alone is an ordinary key, but its aggregate nonce is not its individual one.
        let alone = sign_aggregate(&[&keys[0]], &msg(7)).unwrap();
        assert_eq!(publics[0].verify(&msg(7), &alone), Ok(()));
        assert_ne!(alone, keys[0].sign(&msg(7)));
    }

    #[test]
    fn keys_that_cancel_or_no_keys_have_no_aggregate() {
        assert_eq!(aggregate_public_keys([]), Err(CryptoError::IdentityKey));
        let x = key(1).public_key();
        let minus_x = SchnorrPublicKey::from_point_unchecked((-x.point.into_group()).into_affine());
        assert_eq!(aggregate_public_keys([&x, &minus_x]), Err(CryptoError::IdentityKey));
        // The negated key decodes as a valid key: nothing but the sum rule catches it.
        assert!(SchnorrPublicKey::from_bytes(&minus_x.to_bytes()).is_ok());
    }

    /// The rogue-key attack on plain key sums, and how proofs of possession stop it.
    #[test]
    fn a_rogue_key_forges_an_aggregate_but_has_no_proof_of_possession() {
        let honest = key(1).public_key();
        // The attacker knows `a` and announces X' = a·G − X_honest, whose discrete log it does not
        // know.
        let attacker = key(2);
        let rogue_point = (attacker.public_key().point.into_group() - honest.point.into_group()).into_affine();
        let rogue = SchnorrPublicKey::from_bytes(&encode_point(&rogue_point)).expect("a valid-looking key");
        // The sum is the attacker's own key: it "signs for both" alone.
        let sum = aggregate_public_keys([&honest, &rogue]).unwrap();
        assert_eq!(sum, attacker.public_key());
        assert_eq!(sum.verify(&msg(5), &attacker.sign(&msg(5))), Ok(()), "the attack works on plain sums");
        // But no proof it can make verifies for the rogue key: not its own key's proof, not a
        // signature on the rogue key's message by its own key.
        assert!(rogue.verify_possession(&attacker.prove_possession()).is_err());
        assert!(rogue.verify_possession(&attacker.sign(&possession_message(&rogue))).is_err());
        // Honest keys prove possession; a proof is bound to its key.
        assert_eq!(key(1).public_key().verify_possession(&key(1).prove_possession()), Ok(()));
        assert!(key(1).public_key().verify_possession(&key(3).prove_possession()).is_err());
        // A proof is no block signature: the possession message is tagged.
        assert!(key(1).public_key().verify(&msg(0), &key(1).prove_possession()).is_err());
    }

    #[test]
    fn known_answers() {
        let keys: Vec<_> = (0..3).map(key).collect();
        let refs: Vec<_> = keys.iter().collect();
        let sum = aggregate_public_keys(keys.iter().map(|k| &k.public)).unwrap();
        let sig = sign_aggregate(&refs, &msg(42)).unwrap();
        let pop = keys[0].prove_possession();
        // Pinned (regression values: the scheme is checked above against plain point sums and the
        // single-signature verification, whose own known answers are pinned in `schnorr`).
        assert_eq!(sum.verify(&msg(42), &sig), Ok(()));
        assert_eq!(keys[0].public_key().verify_possession(&pop), Ok(()));
        assert_eq!(sum.to_hex(), KAT_SUM);
        assert_eq!(sig.to_hex(), KAT_SIG);
        assert_eq!(pop.to_hex(), KAT_POP);
    }

    const KAT_SUM: &str = "2733be44e5f424de53496d3b6adeefbb4e9ba66b67be8838fd1caf2ce1ecd38e";
    const KAT_SIG: &str = "f27f48ca04400bf128871c076a5810bfb3f83ea719eb8efb5fdb607de363f580\
                           f7c8c286e2e1195886713d9dc3c521177ac705b8628822ba8e2c0ae1284bdc01";
    const KAT_POP: &str = "07ebaf662ef1193d0462b1d7ccfe51ed1c22b0755157ab6294f56d0e0ce5d30e\
                           7bf146445e1abd19d965bcb1585a43a71d71b69349dc527b731e9b25368b7600";
}
