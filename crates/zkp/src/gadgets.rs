//! R1CS gadgets over the BLS12-377 scalar field, each the twin of a native function of
//! `petrel-crypto` or `petrel-primitives` (tests check that both agree on random inputs and that a
//! wrong witness leaves the system unsatisfied):
//!
//! | gadget | native twin |
//! |---|---|
//! | [`poseidon`] | [`petrel_crypto::poseidon_hash`] |
//! | [`SetVar::commitment`] | [`petrel_primitives::Validators::commitment`] |
//! | [`header_element`] / [`signing_message`] | [`petrel_primitives::validators::macro_signing_message_with`] |
//! | [`aggregate_key`] | [`petrel_crypto::aggregate_public_keys`] |
//! | [`verify_schnorr`] | [`petrel_crypto::SchnorrPublicKey::verify`] |
//! | [`enforce_threshold`] | the 2f+1 rule of [`petrel_primitives::MacroJustification::verify`] |

use std::sync::OnceLock;

use ark_bls12_377::Fr;
use ark_crypto_primitives::sponge::constraints::CryptographicSpongeVar;
use ark_crypto_primitives::sponge::poseidon::constraints::PoseidonSpongeVar;
use ark_ec::{AdditiveGroup, AffineRepr, CurveGroup, PrimeGroup};
use ark_ed_on_bls12_377::constraints::EdwardsVar;
use ark_ed_on_bls12_377::{EdwardsAffine, EdwardsProjective};
use ark_r1cs_std::fields::fp::FpVar;
use ark_r1cs_std::prelude::*;
use ark_relations::gr1cs::{ConstraintSystemRef, SynthesisError};
use petrel_crypto::poseidon::poseidon_length_prefix;
use petrel_crypto::schnorr::CHALLENGE_BITS;
use petrel_crypto::{FieldElement, poseidon_config};
use petrel_primitives::Validators;
use petrel_primitives::validators::{SLOT_BITS, SLOTS_PER_ELEMENT};

/// A field variable of the circuit's field.
pub type Fp = FpVar<Fr>;
/// A boolean variable.
pub type Bit = Boolean<Fr>;

/// Domain tag of validator-set commitments ("PETRELVS"; `petrel_primitives::validators`).
const TAG_VALIDATORS: u64 = 0x5045_5452_454c_5653;
/// Domain tag of macro signing messages ("PETRELMA").
const TAG_MACRO: u64 = 0x5045_5452_454c_4d41;
/// Bits of a macro block's round.
const ROUND_BITS: usize = 32;
/// Bits of the slack of the threshold check: signed slots − 2f+1 lies in `[0, 2^16)`.
const THRESHOLD_BITS: usize = 16;
/// Bits of a Schnorr scalar `s` (`r` < 2^251).
pub const SCALAR_BITS: usize = 251;

/// `poseidon_hash(inputs)` in the circuit: the length prefix, then the inputs, one squeeze.
pub fn poseidon(cs: &ConstraintSystemRef<Fr>, inputs: &[Fp]) -> Result<Fp, SynthesisError> {
    let mut sponge = PoseidonSpongeVar::new(cs.clone(), poseidon_config());
    sponge.absorb(&Fp::constant(poseidon_length_prefix(inputs.len()).inner()))?;
    sponge.absorb(&inputs.to_vec())?;
    let mut out = sponge.squeeze_field_elements(1)?;
    out.pop().ok_or(SynthesisError::Unsatisfiable)
}

/// A field element constant.
pub fn constant(v: u128) -> Fp {
    Fp::constant(FieldElement::from_u128(v).inner())
}

/// The constant `2^bits`.
pub fn pow2(bits: u64) -> Fp {
    use ark_ff::Field;
    Fp::constant(Fr::from(2u8).pow([bits]))
}

/// `n` witness bits of the little-endian integer `value` (all missing when `value` is).
pub fn witness_bits(cs: &ConstraintSystemRef<Fr>, value: Option<u128>, n: usize) -> Result<Vec<Bit>, SynthesisError> {
    (0..n)
        .map(|i| {
            Bit::new_witness(cs.clone(), || {
                value.map(|v| i < 128 && (v >> i) & 1 == 1).ok_or(SynthesisError::AssignmentMissing)
            })
        })
        .collect()
}

/// The little-endian integer of `bits` (a linear combination: no constraint).
pub fn from_bits(bits: &[Bit]) -> Result<Fp, SynthesisError> {
    Bit::le_bits_to_fp(bits)
}

/// A point witness in the prime-order subgroup (arkworks allocates `P/4`'s coordinates, checks
/// them on the curve and multiplies by the cofactor: a dozen constraints).
pub fn point_witness(cs: &ConstraintSystemRef<Fr>, point: Option<EdwardsAffine>) -> Result<EdwardsVar, SynthesisError> {
    EdwardsVar::new_witness(cs.clone(), || point.map(EdwardsProjective::from).ok_or(SynthesisError::AssignmentMissing))
}

/// A validator set of `max_validators` entries in the circuit: keys (padding: the identity) and
/// slot counts of 15 bits each.
#[derive(Clone)]
pub struct SetVar {
    /// Keys, padded with the identity.
    pub keys: Vec<EdwardsVar>,
    /// Slot counts, padded with zero.
    pub slots: Vec<Fp>,
    /// The slot counts packed as in the commitment.
    pub packed: Vec<Fp>,
}

impl SetVar {
    /// Allocates `set` (or, without values, the shape for setup) padded to `max_validators`.
    pub fn witness(
        cs: &ConstraintSystemRef<Fr>,
        set: Option<&Validators>,
        max_validators: usize,
    ) -> Result<Self, SynthesisError> {
        let mut keys = Vec::with_capacity(max_validators);
        let mut slots = Vec::with_capacity(max_validators);
        for i in 0..max_validators {
            let v = set.map(|s| s.0.get(i));
            let point = v.map(|v| v.map_or(EdwardsAffine::zero(), |v| v.public_key.to_affine()));
            keys.push(point_witness(cs, point)?);
            let count = v.map(|v| v.map_or(0, |v| u128::from(v.slots)));
            slots.push(from_bits(&witness_bits(cs, count, SLOT_BITS as usize)?)?);
        }
        let packed = slots
            .chunks(SLOTS_PER_ELEMENT)
            .map(|group| {
                group.iter().enumerate().fold(Fp::zero(), |acc, (k, s)| acc + s * pow2(SLOT_BITS as u64 * k as u64))
            })
            .collect();
        Ok(Self { keys, slots, packed })
    }

    /// `Validators::commitment(max_validators)` of the set.
    pub fn commitment(&self, cs: &ConstraintSystemRef<Fr>) -> Result<Fp, SynthesisError> {
        let mut inputs = Vec::with_capacity(1 + self.keys.len() + self.packed.len());
        inputs.push(constant(u128::from(TAG_VALIDATORS)));
        inputs.extend(self.keys.iter().map(|k| k.x.clone()));
        inputs.extend(self.packed.iter().cloned());
        poseidon(cs, &inputs)
    }

    /// Enforces, when `condition` holds, that `other` is the same set (keys by their x, which
    /// determines a subgroup point; slots by the packed elements).
    pub fn conditional_enforce_equal(&self, other: &Self, condition: &Bit) -> Result<(), SynthesisError> {
        for (a, b) in self.keys.iter().zip(&other.keys) {
            a.x.conditional_enforce_equal(&b.x, condition)?;
        }
        for (a, b) in self.packed.iter().zip(&other.packed) {
            a.conditional_enforce_equal(b, condition)?;
        }
        Ok(())
    }
}

/// `TAG_MACRO · 2^64 + number · 2^32 + round` (`number` and `round` must be < 2^32).
pub fn header_element(number: &Fp, round: &Fp) -> Fp {
    constant(u128::from(TAG_MACRO) << 64) + number * constant(1 << 32) + round
}

/// The macro signing message `poseidon([header, lo, hi, commitment])`.
pub fn signing_message(
    cs: &ConstraintSystemRef<Fr>,
    header: Fp,
    lo: Fp,
    hi: Fp,
    commitment: Fp,
) -> Result<Fp, SynthesisError> {
    poseidon(cs, &[header, lo, hi, commitment])
}

/// A round witness of 32 bits.
pub fn round_witness(cs: &ConstraintSystemRef<Fr>, round: Option<u32>) -> Result<Fp, SynthesisError> {
    from_bits(&witness_bits(cs, round.map(u128::from), ROUND_BITS)?)
}

/// The sum of the keys whose signer bit is set.
pub fn aggregate_key(keys: &[EdwardsVar], signers: &[Bit]) -> Result<EdwardsVar, SynthesisError> {
    let mut sum = EdwardsVar::zero();
    for (key, bit) in keys.iter().zip(signers) {
        sum += bit.select(key, &EdwardsVar::zero())?;
    }
    Ok(sum)
}

/// Enforces, when `condition` holds, that the slots of the signers add up to at least
/// `threshold` (the sum minus the threshold is a 16-bit number).
pub fn enforce_threshold(
    cs: &ConstraintSystemRef<Fr>,
    slots: &[Fp],
    signers: &[Bit],
    threshold: u16,
    condition: &Bit,
) -> Result<(), SynthesisError> {
    let mut signed = Fp::zero();
    for (s, bit) in slots.iter().zip(signers) {
        signed += bit.select(s, &Fp::zero())?;
    }
    let slack = condition.select(&(signed - constant(u128::from(threshold))), &Fp::zero())?;
    let value = slack.value().ok().map(|v| {
        let bytes = FieldElement(v).to_bytes();
        // Out of range (negative) values cannot be represented: the bits are then wrong and
        // the equality below fails, as it must.
        u128::from(u16::from_le_bytes([bytes[0], bytes[1]]))
    });
    let bits = witness_bits(cs, value, THRESHOLD_BITS)?;
    from_bits(&bits)?.enforce_equal(&slack)
}

/// `2^i · G` for `i < 251`.
fn generator_powers() -> &'static [EdwardsProjective] {
    static POWERS: OnceLock<Vec<EdwardsProjective>> = OnceLock::new();
    POWERS.get_or_init(|| {
        let mut p = EdwardsProjective::generator();
        (0..SCALAR_BITS)
            .map(|_| {
                let out = p;
                p = p.double();
                out
            })
            .collect()
    })
}

/// A Schnorr signature's witnesses: `R` (in the subgroup) and the bits of `s`.
pub struct SignatureVar {
    /// The nonce point.
    pub r: EdwardsVar,
    /// `s`, little-endian, 251 bits.
    pub s: Vec<Bit>,
}

impl SignatureVar {
    /// Allocates `(R, s)` (or the shape without values).
    pub fn witness(
        cs: &ConstraintSystemRef<Fr>,
        parts: Option<(EdwardsAffine, ark_ed_on_bls12_377::Fr)>,
    ) -> Result<Self, SynthesisError> {
        use ark_ff::{BigInteger, PrimeField};
        let r = point_witness(cs, parts.map(|p| p.0))?;
        let bits = parts.map(|p| p.1.into_bigint().to_bits_le());
        let s = (0..SCALAR_BITS)
            .map(|i| {
                Bit::new_witness(cs.clone(), || {
                    bits.as_ref().map(|b| b.get(i).copied().unwrap_or(false)).ok_or(SynthesisError::AssignmentMissing)
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { r, s })
    }
}

/// Enforces, when `condition` holds, `s·G == R + e·PK` with
/// `e` = the low 248 bits of `poseidon([R.x, R.y, PK.x, PK.y, m])`.
pub fn verify_schnorr(
    cs: &ConstraintSystemRef<Fr>,
    key: &EdwardsVar,
    message: &Fp,
    signature: &SignatureVar,
    condition: &Bit,
) -> Result<(), SynthesisError> {
    let h =
        poseidon(cs, &[signature.r.x.clone(), signature.r.y.clone(), key.x.clone(), key.y.clone(), message.clone()])?;
    let h_bits = h.to_bits_le()?;
    let e_key = key.scalar_mul_le(h_bits[..CHALLENGE_BITS as usize].iter())?;
    let mut s_g = EdwardsVar::zero();
    s_g.precomputed_base_scalar_mul_le(signature.s.iter().zip(generator_powers()))?;
    s_g.conditional_enforce_equal(&(signature.r.clone() + e_key), condition)
}

/// The affine coordinates of a point as field elements (native, for tests and witnesses).
pub fn xy(p: &EdwardsAffine) -> (Fr, Fr) {
    let p = p.into_group().into_affine();
    (p.x, p.y)
}

#[cfg(test)]
mod tests {
    use ark_relations::gr1cs::ConstraintSystem;
    use petrel_crypto::{SchnorrSecretKey, aggregate_public_keys, poseidon_hash, sign_aggregate};
    use petrel_primitives::{Address, Policy, Validator};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    use super::*;

    fn cs() -> ConstraintSystemRef<Fr> {
        ConstraintSystem::<Fr>::new_ref()
    }

    fn random_element(rng: &mut ChaCha20Rng) -> FieldElement {
        FieldElement::from_bytes_mod_order(&rng.r#gen::<[u8; 32]>())
    }

    fn witness(cs: &ConstraintSystemRef<Fr>, v: FieldElement) -> Fp {
        Fp::new_witness(cs.clone(), || Ok(v.inner())).unwrap()
    }

    fn key(rng: &mut ChaCha20Rng) -> SchnorrSecretKey {
        SchnorrSecretKey::from_seed(&rng.r#gen())
    }

    fn set(rng: &mut ChaCha20Rng, n: usize, slots: u16) -> (Vec<SchnorrSecretKey>, Validators) {
        let keys: Vec<_> = (0..n).map(|_| key(rng)).collect();
        let per = usize::from(slots) / n;
        let set = keys
            .iter()
            .enumerate()
            .map(|(i, k)| Validator {
                public_key: k.public_key(),
                reward_address: Address([i as u8; 32]),
                slots: (per + usize::from(i < usize::from(slots) % n)) as u16,
                proof_of_possession: k.prove_possession(),
            })
            .collect();
        (keys, Validators(set))
    }

    #[test]
    fn poseidon_agrees_with_the_native_hash_and_a_wrong_output_is_unsatisfied() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        for n in [0, 1, 2, 4, 5, 7] {
            let inputs: Vec<_> = (0..n).map(|_| random_element(&mut rng)).collect();
            let cs = cs();
            let vars: Vec<_> = inputs.iter().map(|x| witness(&cs, *x)).collect();
            let out = poseidon(&cs, &vars).unwrap();
            assert_eq!(out.value().unwrap(), poseidon_hash(&inputs).inner(), "{n} inputs");
            let claimed = witness(&cs, poseidon_hash(&inputs));
            out.enforce_equal(&claimed).unwrap();
            assert!(cs.is_satisfied().unwrap());
            let wrong = witness(&cs, FieldElement::ONE);
            out.enforce_equal(&wrong).unwrap();
            assert!(!cs.is_satisfied().unwrap());
        }
    }

    #[test]
    fn the_commitment_agrees_with_the_native_one_for_padded_sets() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        for (n, max) in [(1, 4), (3, 4), (4, 4), (5, 17)] {
            let (_, v) = set(&mut rng, n, 512);
            let cs = cs();
            let var = SetVar::witness(&cs, Some(&v), max).unwrap();
            let c = var.commitment(&cs).unwrap();
            assert_eq!(c.value().unwrap(), v.commitment(max as u16).inner(), "{n} of {max}");
            assert!(cs.is_satisfied().unwrap());
        }
    }

    #[test]
    fn the_signing_message_agrees_with_the_native_one() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let hash = petrel_crypto::Blake2bHash::digest(b"block");
        let commitment = random_element(&mut rng);
        let native = petrel_primitives::validators::macro_signing_message_with(&hash, 1280, 7, commitment);
        let cs = cs();
        let [lo, hi] = FieldElement::from_hash(&hash);
        let number = witness(&cs, FieldElement::from_u64(1280));
        let round = round_witness(&cs, Some(7)).unwrap();
        let m = signing_message(
            &cs,
            header_element(&number, &round),
            witness(&cs, lo),
            witness(&cs, hi),
            witness(&cs, commitment),
        )
        .unwrap();
        assert_eq!(m.value().unwrap(), native.inner());
        assert!(cs.is_satisfied().unwrap());
    }

    /// Aggregates the keys of `signers`, verifies `sig` on `msg` under it, and returns whether the
    /// system is satisfied.
    fn check(keys: &Validators, signers: &[bool], msg: FieldElement, sig: &petrel_crypto::SchnorrSignature) -> bool {
        let cs = cs();
        let set = SetVar::witness(&cs, Some(keys), keys.len()).unwrap();
        let bits: Vec<_> = signers.iter().map(|b| Bit::new_witness(cs.clone(), || Ok(*b)).unwrap()).collect();
        let key = aggregate_key(&set.keys, &bits).unwrap();
        let m = witness(&cs, msg);
        let sig = SignatureVar::witness(&cs, Some(sig.to_parts().unwrap())).unwrap();
        verify_schnorr(&cs, &key, &m, &sig, &Bit::TRUE).unwrap();
        cs.is_satisfied().unwrap()
    }

    #[test]
    fn schnorr_verification_of_an_aggregate_agrees_with_the_native_one() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let (keys, v) = set(&mut rng, 4, 16);
        for trial in 0..3 {
            let msg = random_element(&mut rng);
            let signers: Vec<bool> = (0..4).map(|i| i != trial).collect();
            let signing: Vec<_> = keys.iter().zip(&signers).filter(|(_, s)| **s).map(|(k, _)| k).collect();
            let sig = sign_aggregate(&signing, &msg).unwrap();
            let sum = aggregate_public_keys(&signing.iter().map(|k| k.public_key()).collect::<Vec<_>>()).unwrap();
            assert_eq!(sum.verify(&msg, &sig), Ok(()));
            assert!(check(&v, &signers, msg, &sig), "trial {trial}");
            // Another message, one signer more or fewer in the bitmap: unsatisfied, as natively.
            let other = random_element(&mut rng);
            assert!(sum.verify(&other, &sig).is_err());
            assert!(!check(&v, &signers, other, &sig));
            let mut more = signers.clone();
            more[trial] = true;
            assert!(!check(&v, &more, msg, &sig));
            let mut fewer = signers.clone();
            fewer[(trial + 1) % 4] = false;
            assert!(!check(&v, &fewer, msg, &sig));
        }
        // A single key's ordinary signature.
        let msg = random_element(&mut rng);
        assert!(check(&v, &[true, false, false, false], msg, &keys[0].sign(&msg)));
    }

    #[test]
    fn the_threshold_counts_the_signers_slots() {
        let policy = Policy { slots: 16, max_validators: 4, ..Policy::TEST }; // 2f+1 = 11
        let run = |signers: [bool; 4], condition: bool| {
            let cs = cs();
            let mut rng = ChaCha20Rng::seed_from_u64(5);
            let (_, v) = set(&mut rng, 4, policy.slots); // 4 slots each
            let set = SetVar::witness(&cs, Some(&v), 4).unwrap();
            let bits: Vec<_> = signers.iter().map(|b| Bit::new_witness(cs.clone(), || Ok(*b)).unwrap()).collect();
            let cond = Bit::new_witness(cs.clone(), || Ok(condition)).unwrap();
            enforce_threshold(&cs, &set.slots, &bits, policy.two_f_plus_one(), &cond).unwrap();
            cs.is_satisfied().unwrap()
        };
        assert!(run([true, true, true, false], true)); // 12 ≥ 11
        assert!(run([true, true, true, true], true));
        assert!(!run([true, true, false, false], true)); // 8 < 11
        assert!(run([true, true, false, false], false), "a padding step checks nothing");
    }
}
