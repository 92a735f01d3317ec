//! Keys, proving and verification of segment proofs (Groth16 over BLS12-377).
//!
//! * **Setup** ([`setup`]): deterministic from a seed and the circuit's identity
//!   ([`circuit_id`]), for the devnet. A real network needs a multi-party ceremony (ADR 0015).
//! * **Key cache** ([`load_or_setup`]): proving keys are kept on disk by circuit id and seed.
//! * **Proofs** ([`SegmentProof`]): 192 bytes, arkworks' compressed `(A, B, C)`. Decoding checks
//!   that the points are on their curves and in the prime-order subgroups.
//! * **Verification** ([`Verifier`]): one proof, or a batch combined with random 128-bit weights
//!   into one multi-pairing.

use std::io::Write;
use std::path::{Path, PathBuf};

use ark_bls12_377::{Bls12_377, Fr, G1Projective};
use ark_ec::pairing::Pairing;
use ark_ec::{CurveGroup, VariableBaseMSM};
use ark_ff::{BigInteger, Field, PrimeField};
use ark_groth16::{Groth16, PreparedVerifyingKey, Proof, ProvingKey, VerifyingKey, prepare_verifying_key};
use ark_relations::gr1cs::{ConstraintSynthesizer, ConstraintSystem, SynthesisMode};
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize};
use ark_snark::SNARK;
use petrel_crypto::{Blake2bHash, Hasher};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use crate::circuit::{Segment, SegmentCircuit, SegmentWitness, Shape};

/// The proving key of the segment circuit.
pub type SegmentProvingKey = ProvingKey<Bls12_377>;

/// Bytes of an encoded proof.
pub const PROOF_BYTES: usize = 192;
/// Most bytes of an encoded verifying key (6 public inputs: 680 bytes).
pub const MAX_VERIFYING_KEY_BYTES: usize = 1024;
/// The version of the circuit's constraints: part of [`circuit_id`], raised whenever a gadget
/// changes the constraint system.
pub const CIRCUIT_VERSION: u32 = 1;

/// Why a key, a proof or a verification failed.
#[derive(Debug, thiserror::Error)]
pub enum ZkpError {
    /// The proof's bytes are not three valid curve points.
    #[error("proof does not decode: {0}")]
    BadProofEncoding(String),
    /// The proof does not verify for these public inputs.
    #[error("proof does not verify")]
    InvalidProof,
    /// A verifying key that does not decode.
    #[error("verifying key does not decode: {0}")]
    BadVerifyingKey(String),
    /// The witness does not satisfy the circuit, or synthesis failed.
    #[error("cannot prove: {0}")]
    Synthesis(String),
    /// A cached proving key that does not belong to the expected circuit.
    #[error("cached proving key {0} is corrupt or for another circuit")]
    KeyMismatch(PathBuf),
    /// Reading or writing the key cache failed.
    #[error("key cache: {0}")]
    Io(#[from] std::io::Error),
}

/// The identity of a circuit: Blake2b over the version, the shape and the size of its constraint
/// system. Keys are cached under it.
pub fn circuit_id(shape: &Shape) -> Blake2bHash {
    let cs = ConstraintSystem::<Fr>::new_ref();
    cs.set_mode(SynthesisMode::Setup);
    let counts = SegmentCircuit { shape: *shape, witness: None }
        .generate_constraints(cs.clone())
        .map(|()| (cs.num_constraints(), cs.num_witness_variables(), cs.num_instance_variables()))
        .unwrap_or_default();
    let mut h = Hasher::new();
    h.update(b"petrel/zkp/segment")
        .u32(CIRCUIT_VERSION)
        .u64(shape.handoffs as u64)
        .u64(shape.max_validators as u64)
        .u32(shape.genesis_block_number)
        .u32(shape.blocks_per_epoch)
        .u16(shape.threshold)
        .u64(counts.0 as u64)
        .u64(counts.1 as u64)
        .u64(counts.2 as u64);
    h.finish()
}

fn setup_rng(shape: &Shape, seed: u64) -> ChaCha20Rng {
    let mut h = Hasher::new();
    h.update(b"petrel/zkp/setup").u64(seed).update(circuit_id(shape).as_bytes());
    ChaCha20Rng::from_seed(h.finish().0)
}

/// The Groth16 keys of `shape`, generated from `seed` (deterministic: the same seed and circuit
/// give the same keys on every machine). Devnet only: whoever knows the seed can forge proofs.
pub fn setup(shape: &Shape, seed: u64) -> Result<ProvingKey<Bls12_377>, ZkpError> {
    let circuit = SegmentCircuit { shape: *shape, witness: None };
    let (pk, _vk) = Groth16::<Bls12_377>::circuit_specific_setup(circuit, &mut setup_rng(shape, seed))
        .map_err(|e| ZkpError::Synthesis(e.to_string()))?;
    Ok(pk)
}

/// The proving key of `shape` and `seed` from `dir` (`segment-<circuit id>-<seed>.pk`), or a new
/// setup written there (through a temporary file and a rename). A cached key whose verifying key
/// differs from `expected_vk` (when given) is refused.
pub fn load_or_setup(
    dir: &Path,
    shape: &Shape,
    seed: u64,
    expected_vk: Option<&Blake2bHash>,
) -> Result<ProvingKey<Bls12_377>, ZkpError> {
    let path = dir.join(format!("segment-{}-{seed}.pk", &circuit_id(shape).to_hex()[..16]));
    // The hash of the verifying key the setup made, written beside the key: a cached key is
    // checked against the expected hash, or without one against this record (no setup is run
    // again to check a cache hit).
    let recorded = path.with_extension("vk");
    let expected = expected_vk
        .copied()
        .or_else(|| std::fs::read_to_string(&recorded).ok().and_then(|h| Blake2bHash::from_hex(h.trim()).ok()));
    if let (Ok(bytes), Some(expected)) = (std::fs::read(&path), expected) {
        let pk = ProvingKey::<Bls12_377>::deserialize_uncompressed_unchecked(bytes.as_slice())
            .map_err(|_| ZkpError::KeyMismatch(path.clone()))?;
        if verifying_key_hash(&pk.vk) != expected {
            return Err(ZkpError::KeyMismatch(path));
        }
        return Ok(pk);
    }
    let pk = setup(shape, seed)?;
    if let Some(expected) = expected_vk
        && verifying_key_hash(&pk.vk) != *expected
    {
        return Err(ZkpError::KeyMismatch(path));
    }
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("tmp");
    let mut bytes = Vec::new();
    pk.serialize_uncompressed(&mut bytes).map_err(|e| ZkpError::Synthesis(e.to_string()))?;
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(&bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    std::fs::write(&recorded, verifying_key_hash(&pk.vk).to_hex())?;
    Ok(pk)
}

/// The compressed encoding of a verifying key.
pub fn verifying_key_bytes(vk: &VerifyingKey<Bls12_377>) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = vk.serialize_compressed(&mut out);
    out
}

/// Blake2b of [`verifying_key_bytes`]: what a genesis config names.
pub fn verifying_key_hash(vk: &VerifyingKey<Bls12_377>) -> Blake2bHash {
    Blake2bHash::digest(&verifying_key_bytes(vk))
}

/// A segment proof: 192 bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SegmentProof(pub [u8; PROOF_BYTES]);

impl std::fmt::Debug for SegmentProof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SegmentProof({}…)", hex::encode(&self.0[..8]))
    }
}

impl SegmentProof {
    /// Decodes and validates the three points: decompression puts them on their curves (or
    /// fails), and [`crate::subgroup`] checks they are in the prime-order subgroups (by
    /// endomorphisms, several times faster than arkworks' own check).
    pub fn decode(&self) -> Result<Proof<Bls12_377>, ZkpError> {
        Ok(Proof { a: decode_g1(&self.0[..48])?, b: decode_g2(&self.0[48..144])?, c: decode_g1(&self.0[144..])? })
    }

    fn encode(proof: &Proof<Bls12_377>) -> Result<Self, ZkpError> {
        let mut out = [0u8; PROOF_BYTES];
        proof.serialize_compressed(&mut out[..]).map_err(|e| ZkpError::Synthesis(e.to_string()))?;
        Ok(Self(out))
    }
}

/// Proves a segment with `pk`. The randomness derives from the public inputs (the statement is
/// public; zero knowledge is not needed), so proofs are reproducible.
pub fn prove(pk: &ProvingKey<Bls12_377>, shape: &Shape, witness: SegmentWitness) -> Result<SegmentProof, ZkpError> {
    let mut h = Hasher::new();
    h.update(b"petrel/zkp/prove");
    for x in witness.segment.public_inputs() {
        h.update(&petrel_crypto::FieldElement(x).to_bytes());
    }
    let mut rng = ChaCha20Rng::from_seed(h.finish().0);
    let segment = witness.segment;
    let circuit = SegmentCircuit { shape: *shape, witness: Some(witness) };
    // arkworks asserts satisfaction in builds with debug assertions: check first there, for a
    // clear error instead of a panic.
    if cfg!(debug_assertions) {
        let cs = ConstraintSystem::<Fr>::new_ref();
        circuit.clone().generate_constraints(cs.clone()).map_err(|e| ZkpError::Synthesis(e.to_string()))?;
        if !cs.is_satisfied().unwrap_or(false) {
            return Err(ZkpError::Synthesis("the witness does not satisfy the segment circuit".into()));
        }
    }
    let proof = Groth16::<Bls12_377>::prove(pk, circuit, &mut rng).map_err(|e| ZkpError::Synthesis(e.to_string()))?;
    let proof = SegmentProof::encode(&proof)?;
    // Without the check above an unsatisfied witness gives a proof that does not verify: never
    // hand one out (a peer would be penalised for serving it). Costs one verification.
    Verifier::new(&pk.vk)
        .verify(&segment, &proof)
        .map_err(|_| ZkpError::Synthesis("the witness does not satisfy the segment circuit".into()))?;
    Ok(proof)
}

/// Multiples of one G1 point for fixed-base multiplication: `table[w][j] = j · 16^w · B` for 64
/// windows of 4 bits (1024 points, 96 KiB).
struct FixedBase {
    table: Vec<[ark_bls12_377::G1Affine; 16]>,
}

impl FixedBase {
    fn new(base: ark_bls12_377::G1Affine) -> Self {
        let mut table = Vec::with_capacity(64);
        let mut b = G1Projective::from(base);
        for _ in 0..64 {
            let mut row = [G1Projective::default(); 16];
            for j in 1..16 {
                row[j] = row[j - 1] + b;
            }
            let affine = G1Projective::normalize_batch(&row);
            let mut out = [ark_bls12_377::G1Affine::default(); 16];
            out.copy_from_slice(&affine);
            table.push(out);
            for _ in 0..4 {
                b = ark_ec::AdditiveGroup::double(&b);
            }
        }
        Self { table }
    }

    fn mul(&self, s: &Fr) -> G1Projective {
        let bytes = s.into_bigint().to_bytes_le();
        let mut acc = G1Projective::default();
        for (w, row) in self.table.iter().enumerate() {
            let byte = bytes.get(w / 2).copied().unwrap_or(0);
            let digit = if w % 2 == 0 { byte & 0x0f } else { byte >> 4 };
            if digit != 0 {
                acc += row[usize::from(digit)];
            }
        }
        acc
    }
}

/// Verifies segment proofs under one verifying key.
#[derive(Clone)]
pub struct Verifier {
    pvk: PreparedVerifyingKey<Bls12_377>,
    hash: Blake2bHash,
    /// Fixed-base tables of the input bases `IC_1..IC_6`.
    inputs: std::sync::Arc<Vec<FixedBase>>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Verifier({})", self.hash)
    }
}

impl Verifier {
    /// A verifier for `vk`.
    pub fn new(vk: &VerifyingKey<Bls12_377>) -> Self {
        let inputs = vk.gamma_abc_g1.iter().skip(1).map(|b| FixedBase::new(*b)).collect();
        Self { pvk: prepare_verifying_key(vk), hash: verifying_key_hash(vk), inputs: std::sync::Arc::new(inputs) }
    }

    /// Decodes a compressed verifying key (at most [`MAX_VERIFYING_KEY_BYTES`], validated) and
    /// checks it has the segment circuit's 6 public inputs.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ZkpError> {
        if bytes.len() > MAX_VERIFYING_KEY_BYTES {
            return Err(ZkpError::BadVerifyingKey(format!("{} bytes", bytes.len())));
        }
        let vk = VerifyingKey::<Bls12_377>::deserialize_compressed(bytes)
            .map_err(|e| ZkpError::BadVerifyingKey(e.to_string()))?;
        if vk.gamma_abc_g1.len() != 7 {
            return Err(ZkpError::BadVerifyingKey(format!("{} public inputs, expected 6", vk.gamma_abc_g1.len() - 1)));
        }
        Ok(Self::new(&vk))
    }

    /// The hash of the verifying key.
    pub fn key_hash(&self) -> Blake2bHash {
        self.hash
    }

    /// `IC_0 + Σ x_j·IC_j` for the segment's inputs (the pairing input of the public inputs).
    pub fn prepare_inputs(&self, segment: &Segment) -> G1Projective {
        let ic0 = self.pvk.vk.gamma_abc_g1.first().copied().unwrap_or_default();
        segment
            .public_inputs()
            .iter()
            .zip(self.inputs.iter())
            .fold(G1Projective::from(ic0), |acc, (x, t)| acc + t.mul(x))
    }

    /// Verifies one proof of `segment`. The proof's `B` is decoded and its Miller loop run on a
    /// second thread while this one decodes `A` and `C`, prepares the inputs and runs the other two
    /// Miller loops; one final exponentiation.
    pub fn verify(&self, segment: &Segment, proof: &SegmentProof) -> Result<(), ZkpError> {
        let (ab, rest) = std::thread::scope(|s| {
            let ab = s.spawn(|| -> Result<_, ZkpError> {
                let b = decode_g2(&proof.0[48..144])?;
                let a = decode_g1(&proof.0[..48])?;
                Ok(Bls12_377::multi_miller_loop([a], [b]))
            });
            let rest = (|| -> Result<_, ZkpError> {
                let c = decode_g1(&proof.0[144..])?;
                let inputs = self.prepare_inputs(segment).into_affine();
                Ok(Bls12_377::multi_miller_loop(
                    [<Bls12_377 as Pairing>::G1Prepared::from(inputs), c.into()],
                    [self.pvk.gamma_g2_neg_pc.clone(), self.pvk.delta_g2_neg_pc.clone()],
                ))
            })();
            (ab.join().unwrap_or_else(|e| std::panic::resume_unwind(e)), rest)
        });
        let product = ark_ec::pairing::MillerLoopOutput(ab?.0 * rest?.0);
        match Bls12_377::final_exponentiation(product) {
            Some(out) if out.0 == self.pvk.alpha_g1_beta_g2 => Ok(()),
            _ => Err(ZkpError::InvalidProof),
        }
    }

    /// Verifies many proofs at once: with weights `r_i` (128 bits, derived from all proofs and
    /// inputs), `Π e(r_i·A_i, B_i) · e(−Σ r_i·IC_i, γ) · e(−Σ r_i·C_i, δ) = e(α, β)^(Σ r_i)`, one
    /// final exponentiation. The proofs are decoded and their Miller loops run on up to 4 threads
    /// (no more than the cores). A batch that fails says only that some proof is bad (its sender
    /// is blamed for the whole chain).
    pub fn verify_batch(&self, items: &[(Segment, SegmentProof)]) -> Result<(), ZkpError> {
        if items.is_empty() {
            return Ok(());
        }
        if items.len() == 1 {
            return self.verify(&items[0].0, &items[0].1);
        }
        let mut h = Hasher::new();
        h.update(b"petrel/zkp/batch").update(self.hash.as_bytes());
        for (segment, proof) in items {
            h.update(&proof.0);
            for x in segment.public_inputs() {
                h.update(&petrel_crypto::FieldElement(x).to_bytes());
            }
        }
        let mut rng = ChaCha20Rng::from_seed(h.finish().0);
        let weights: Vec<Fr> = (0..items.len()).map(|_| Fr::from(rand::Rng::r#gen::<u128>(&mut rng))).collect();
        // Σ r_i·IC_i = (Σ r_i)·γ_0 + Σ_j (Σ_i r_i·x_ij)·γ_j: the inputs combine in the field.
        let ic = &self.pvk.vk.gamma_abc_g1;
        let mut scalars = vec![Fr::from(0u8); ic.len()];
        for ((segment, _), r) in items.iter().zip(&weights) {
            scalars[0] += r;
            for (j, x) in segment.public_inputs().iter().enumerate() {
                scalars[j + 1] += *r * x;
            }
        }
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 4);
        let chunk = items.len().div_ceil(threads);
        // Each thread: decode its proofs, Π e(r_i·A_i, B_i) over them, and Σ r_i·C_i.
        let parts: Vec<Result<(<Bls12_377 as Pairing>::TargetField, G1Projective), ZkpError>> =
            std::thread::scope(|s| {
                let handles: Vec<_> = items
                    .chunks(chunk)
                    .zip(weights.chunks(chunk))
                    .map(|(items, weights)| {
                        s.spawn(move || {
                            let proofs = items.iter().map(|(_, p)| p.decode()).collect::<Result<Vec<_>, _>>()?;
                            let a: Vec<_> = proofs.iter().zip(weights).map(|(p, r)| (p.a * r).into_affine()).collect();
                            let b: Vec<_> = proofs.iter().map(|p| p.b).collect();
                            let ml = Bls12_377::multi_miller_loop(a, b);
                            let cs: Vec<_> = proofs.iter().map(|p| p.c).collect();
                            let c = G1Projective::msm(&cs, weights).map_err(|_| ZkpError::InvalidProof)?;
                            Ok((ml.0, c))
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
            });
        let inputs = G1Projective::msm(ic, &scalars).map_err(|_| ZkpError::InvalidProof)?;
        let mut product = <Bls12_377 as Pairing>::TargetField::ONE;
        let mut c = G1Projective::default();
        for part in parts {
            let (ml, sum) = part?;
            product *= ml;
            c += sum;
        }
        let rest = Bls12_377::multi_miller_loop(
            [<Bls12_377 as Pairing>::G1Prepared::from(inputs.into_affine()), c.into_affine().into()],
            [self.pvk.gamma_g2_neg_pc.clone(), self.pvk.delta_g2_neg_pc.clone()],
        );
        product *= rest.0;
        let lhs = Bls12_377::final_exponentiation(ark_ec::pairing::MillerLoopOutput(product))
            .ok_or(ZkpError::InvalidProof)?;
        let total: Fr = weights.iter().sum();
        if lhs.0 == self.pvk.alpha_g1_beta_g2.pow(total.into_bigint()) { Ok(()) } else { Err(ZkpError::InvalidProof) }
    }
}

/// A compressed G1 point of a proof: decompressed (on the curve) and in the subgroup.
fn decode_g1(bytes: &[u8]) -> Result<ark_bls12_377::G1Affine, ZkpError> {
    let p = ark_bls12_377::G1Affine::deserialize_compressed_unchecked(bytes)
        .map_err(|e| ZkpError::BadProofEncoding(e.to_string()))?;
    if crate::subgroup::g1_in_subgroup(&p) {
        Ok(p)
    } else {
        Err(ZkpError::BadProofEncoding("a point outside the prime-order subgroup".into()))
    }
}

/// A compressed G2 point of a proof: decompressed and in the subgroup.
fn decode_g2(bytes: &[u8]) -> Result<ark_bls12_377::G2Affine, ZkpError> {
    let p = ark_bls12_377::G2Affine::deserialize_compressed_unchecked(bytes)
        .map_err(|e| ZkpError::BadProofEncoding(e.to_string()))?;
    if crate::subgroup::g2_in_subgroup(&p) {
        Ok(p)
    } else {
        Err(ZkpError::BadProofEncoding("a point outside the prime-order subgroup".into()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use petrel_primitives::Policy;

    use super::*;
    use crate::testing::SyntheticChain;

    fn policy() -> Policy {
        Policy { slots: 16, max_validators: 4, ..Policy::TEST }
    }

    fn shape() -> Shape {
        Shape::new(&policy(), 1)
    }

    /// Keys of the small circuit, generated once for the module, and a 4-epoch chain.
    fn fixture() -> &'static (ProvingKey<Bls12_377>, SyntheticChain) {
        static F: OnceLock<(ProvingKey<Bls12_377>, SyntheticChain)> = OnceLock::new();
        F.get_or_init(|| (setup(&shape(), 1).unwrap(), SyntheticChain::new(policy(), 4, 4, 9)))
    }

    fn proof(start: u32) -> (Segment, SegmentProof) {
        let (pk, chain) = fixture();
        let w = chain.segment(start, 1);
        (w.segment, prove(pk, &shape(), w).unwrap())
    }

    #[test]
    fn a_proof_verifies_alone_and_in_a_batch_and_only_for_its_statement() {
        let (pk, _) = fixture();
        let verifier = Verifier::from_bytes(&verifying_key_bytes(&pk.vk)).unwrap();
        let items: Vec<_> = (0..3).map(proof).collect();
        for (segment, p) in &items {
            assert!(verifier.verify(segment, p).is_ok());
        }
        assert!(verifier.verify_batch(&items).is_ok());
        assert!(verifier.verify_batch(&items[..1]).is_ok());
        assert!(verifier.verify_batch(&[]).is_ok());
        // Another segment's proof, swapped or altered public inputs.
        let (s0, p0) = items[0];
        let (s1, _) = items[1];
        assert!(matches!(verifier.verify(&s1, &p0), Err(ZkpError::InvalidProof)));
        let mut swapped = s0;
        std::mem::swap(&mut swapped.start_commitment, &mut swapped.end_commitment);
        assert!(matches!(verifier.verify(&swapped, &p0), Err(ZkpError::InvalidProof)));
        let mut later = s0;
        later.end_epoch += 1;
        assert!(matches!(verifier.verify(&later, &p0), Err(ZkpError::InvalidProof)));
        // One bad item fails the batch.
        let mut bad = items.clone();
        bad[2].0 = later;
        assert!(matches!(verifier.verify_batch(&bad), Err(ZkpError::InvalidProof)));
        // A forged proof: bytes that are not points, or points of another proof mixed in.
        let mut garbage = p0;
        garbage.0[10] ^= 0xff;
        assert!(verifier.verify(&s0, &garbage).is_err());
        let mut mixed = p0;
        mixed.0[..48].copy_from_slice(&items[1].1.0[..48]);
        assert!(matches!(verifier.verify(&s0, &mixed), Err(ZkpError::InvalidProof)));
        // A proof under another setup (another genesis' keys).
        let other = Verifier::new(&setup(&shape(), 2).unwrap().vk);
        assert_ne!(other.key_hash(), verifier.key_hash());
        assert!(matches!(other.verify(&s0, &p0), Err(ZkpError::InvalidProof)));
        assert!(matches!(other.verify_batch(&items), Err(ZkpError::InvalidProof)));
    }

    #[test]
    fn setup_is_deterministic_and_keys_are_cached_by_circuit() {
        let (pk, chain) = fixture();
        let dir = tempfile::tempdir().unwrap();
        let expected = verifying_key_hash(&pk.vk);
        let cached = load_or_setup(dir.path(), &shape(), 1, Some(&expected)).unwrap();
        assert_eq!(verifying_key_hash(&cached.vk), expected, "the same seed gives the same keys");
        let mut files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        assert_eq!(files.len(), 2, "the key and its verifying key's hash");
        assert!(files[0].extension().is_some_and(|e| e == "pk"));
        // Read back from the cache: proves like the fresh key.
        let again = load_or_setup(dir.path(), &shape(), 1, Some(&expected)).unwrap();
        let w = chain.segment(0, 1);
        let segment = w.segment;
        let p = prove(&again, &shape(), w).unwrap();
        assert!(Verifier::new(&pk.vk).verify(&segment, &p).is_ok());
        // A cached key for another verifying key, or a corrupt file: refused.
        assert!(matches!(
            load_or_setup(dir.path(), &shape(), 1, Some(&Blake2bHash::digest(b"other"))),
            Err(ZkpError::KeyMismatch(_))
        ));
        // Without an expected key, the recorded hash checks the cached key (no second setup).
        let again = load_or_setup(dir.path(), &shape(), 1, None).unwrap();
        assert_eq!(verifying_key_hash(&again.vk), expected);
        std::fs::write(&files[0], b"not a key").unwrap();
        assert!(matches!(load_or_setup(dir.path(), &shape(), 1, Some(&expected)), Err(ZkpError::KeyMismatch(_))));
        // Other shapes have other ids.
        assert_ne!(circuit_id(&shape()), circuit_id(&Shape::new(&policy(), 2)));
    }

    #[test]
    fn a_witness_that_does_not_satisfy_the_circuit_is_refused_before_proving() {
        let (pk, chain) = fixture();
        let mut w = chain.segment(0, 1);
        w.segment.end_epoch = 7;
        assert!(matches!(prove(pk, &shape(), w), Err(ZkpError::Synthesis(_))));
    }

    /// A proof whose `A` is a curve point outside the subgroup (the order-r part of a random point
    /// removed, plus the real `A`) is refused at decoding, as arkworks' own check refuses it.
    #[test]
    fn a_proof_point_outside_the_subgroup_is_refused() {
        use ark_bls12_377::{Fq, G1Affine};
        use ark_ec::{AffineRepr, CurveGroup};
        use ark_ff::{PrimeField, UniformRand};
        let (segment, good) = proof(0);
        let mut proof = good.decode().unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let torsion = loop {
            if let Some(p) = G1Affine::get_point_from_x_unchecked(Fq::rand(&mut rng), true) {
                let t = p.mul_bigint(ark_bls12_377::Fr::MODULUS).into_affine();
                if !t.is_zero() {
                    break t;
                }
            }
        };
        proof.a = (proof.a + torsion).into_affine();
        let mut bytes = [0u8; PROOF_BYTES];
        proof.serialize_compressed(&mut bytes[..]).unwrap();
        let bad = SegmentProof(bytes);
        assert!(matches!(bad.decode(), Err(ZkpError::BadProofEncoding(_))));
        assert!(Proof::<Bls12_377>::deserialize_compressed(&bytes[..]).is_err(), "arkworks agrees");
        let (pk, _) = fixture();
        assert!(Verifier::new(&pk.vk).verify(&segment, &bad).is_err());
    }

    #[test]
    fn fixed_base_inputs_agree_with_arkworks() {
        let (pk, chain) = fixture();
        let verifier = Verifier::new(&pk.vk);
        let pvk = prepare_verifying_key(&pk.vk);
        for start in 0..3 {
            let segment = chain.segment(start, 1).segment;
            let ours = verifier.prepare_inputs(&segment);
            let theirs = Groth16::<Bls12_377>::prepare_inputs(&pvk, &segment.public_inputs()).unwrap();
            assert_eq!(ours, theirs);
        }
    }

    #[test]
    fn verifying_keys_decode_with_limits() {
        assert!(matches!(Verifier::from_bytes(&[0u8; 2000]), Err(ZkpError::BadVerifyingKey(_))));
        assert!(matches!(Verifier::from_bytes(&[1u8; 100]), Err(ZkpError::BadVerifyingKey(_))));
        let (pk, _) = fixture();
        let bytes = verifying_key_bytes(&pk.vk);
        assert_eq!(bytes.len(), 680);
        assert_eq!(Verifier::from_bytes(&bytes).unwrap().key_hash(), verifying_key_hash(&pk.vk));
    }
}
