//! Fast prime-order subgroup checks for BLS12-377 points of a proof, by endomorphisms (Scott,
//! "A note on group membership tests for G1, G2 and GT on BLS pairing-friendly curves", IACR
//! ePrint 2021/1130), instead of arkworks' multiplication by the 253-bit group order:
//!
//! * G1: `P ∈ G1 ⟺ φ(P) = −[u²]P` with `φ(x, y) = (βx, y)` for the cube root of unity `β` on whose
//!   endomorphism G1 has the eigenvalue `−u²`; points with `[u]P = P ≠ O` are refused first.
//! * G2: `Q ∈ G2 ⟺ ψ(Q) = [u]Q` with `ψ` the untwist-Frobenius-twist endomorphism
//!   `ψ(x, y) = (x^p · w^((p−1)/3), y^p · w^((p−1)/2))`, `w` the generator of `Fq2 = Fq[w]/(w² + 5)`.
//!
//! `u = 0x8508c00000000001` is the curve's parameter. The constants are derived here, not
//! copied, and checked against the generators once; if a check failed (it cannot, unless arkworks
//! changed its curve), every test falls back to arkworks' own. Tests compare both methods on points
//! in and out of the subgroups.

use std::sync::OnceLock;

use ark_bls12_377::{Fq, Fq2, G1Affine, G1Projective, G2Affine, G2Projective};
use ark_ec::bls12::Bls12Config;
use ark_ec::scalar_mul::glv::GLVConfig;
use ark_ec::{AffineRepr, CurveGroup};
use ark_ff::{BigInteger, Field, PrimeField};

/// The curve parameter `u` (positive for BLS12-377).
fn u() -> &'static [u64] {
    ark_bls12_377::Config::X
}

struct Constants {
    /// The cube root of unity of the G1 endomorphism with eigenvalue `−u²`.
    beta: Fq,
    /// `w^((p−1)/3)` and `w^((p−1)/2)`.
    psi: (Fq2, Fq2),
    /// Whether the constants passed their checks on the generators.
    ok: bool,
}

/// `(p − 1) / d` for the base field modulus `p`, as little-endian limbs (`d` divides `p − 1`).
fn modulus_minus_one_over(d: u64) -> Vec<u64> {
    let mut limbs = Fq::MODULUS;
    limbs.sub_with_borrow(&<Fq as PrimeField>::BigInt::from(1u64));
    let mut out = limbs.0.to_vec();
    let mut rem: u128 = 0;
    for limb in out.iter_mut().rev() {
        let cur = (rem << 64) | u128::from(*limb);
        *limb = (cur / u128::from(d)) as u64;
        rem = cur % u128::from(d);
    }
    out
}

fn psi(q: &G2Affine, (cx, cy): (Fq2, Fq2)) -> G2Affine {
    if q.is_zero() {
        return *q;
    }
    let mut x = q.x;
    let mut y = q.y;
    x.frobenius_map_in_place(1);
    y.frobenius_map_in_place(1);
    G2Affine::new_unchecked(x * cx, y * cy)
}

fn phi(p: &G1Affine, beta: Fq) -> G1Affine {
    if p.is_zero() {
        return *p;
    }
    G1Affine::new_unchecked(p.x * beta, p.y)
}

fn constants() -> &'static Constants {
    static C: OnceLock<Constants> = OnceLock::new();
    C.get_or_init(|| {
        let w = Fq2::new(Fq::from(0u8), Fq::from(1u8));
        let psi_c = (w.pow(modulus_minus_one_over(3)), w.pow(modulus_minus_one_over(2)));
        let g1 = G1Affine::generator();
        let minus_u2_g1 = -(g1.mul_bigint(u()).into_affine().mul_bigint(u())).into_affine();
        let b = <ark_bls12_377::g1::Config as GLVConfig>::ENDO_COEFFS[0];
        let beta = if phi(&g1, b) == minus_u2_g1 { b } else { b.square() };
        let g2 = G2Affine::generator();
        let ok = phi(&g1, beta) == minus_u2_g1 && psi(&g2, psi_c) == g2.mul_bigint(u()).into_affine();
        Constants { beta, psi: psi_c, ok }
    })
}

/// Whether a G1 point (on the curve) is in the prime-order subgroup.
pub fn g1_in_subgroup(p: &G1Affine) -> bool {
    let c = constants();
    if !c.ok {
        return p.is_in_correct_subgroup_assuming_on_curve();
    }
    if p.is_zero() {
        return true;
    }
    let up: G1Projective = p.mul_bigint(u());
    if up == p.into_group() {
        return false;
    }
    let minus_u2p = -(up.into_affine().mul_bigint(u()));
    minus_u2p.into_affine() == phi(p, c.beta)
}

/// Whether a G2 point (on the curve) is in the prime-order subgroup.
pub fn g2_in_subgroup(q: &G2Affine) -> bool {
    let c = constants();
    if !c.ok {
        return q.is_in_correct_subgroup_assuming_on_curve();
    }
    if q.is_zero() {
        return true;
    }
    let uq: G2Projective = q.mul_bigint(u());
    uq.into_affine() == psi(q, c.psi)
}

/// Whether the constants passed their checks (for tests).
pub fn endomorphisms_checked() -> bool {
    constants().ok
}

#[cfg(test)]
mod tests {
    use ark_ff::UniformRand;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    use super::*;

    /// A point on the curve with a random x, not projected into the subgroup.
    fn g1_on_curve(rng: &mut ChaCha20Rng) -> G1Affine {
        loop {
            if let Some(p) = G1Affine::get_point_from_x_unchecked(Fq::rand(rng), bool::rand(rng)) {
                return p;
            }
        }
    }

    fn g2_on_curve(rng: &mut ChaCha20Rng) -> G2Affine {
        loop {
            if let Some(p) = G2Affine::get_point_from_x_unchecked(Fq2::rand(rng), bool::rand(rng)) {
                return p;
            }
        }
    }

    #[test]
    fn the_fast_checks_agree_with_multiplying_by_the_group_order() {
        assert!(endomorphisms_checked(), "the derived constants must pass on the generators");
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let r = ark_bls12_377::Fr::rand(&mut rng);
        for i in 0..40 {
            // In the subgroup.
            let s = ark_bls12_377::Fr::rand(&mut rng);
            let p = (G1Affine::generator() * s).into_affine();
            let q = (G2Affine::generator() * s).into_affine();
            assert!(g1_in_subgroup(&p) && g2_in_subgroup(&q), "{i}");
            // Random points of the whole curve: almost never in the subgroup; both methods agree.
            let p = g1_on_curve(&mut rng);
            let q = g2_on_curve(&mut rng);
            assert_eq!(g1_in_subgroup(&p), p.is_in_correct_subgroup_assuming_on_curve(), "G1 {i}");
            assert_eq!(g2_in_subgroup(&q), q.is_in_correct_subgroup_assuming_on_curve(), "G2 {i}");
            assert!(!p.is_in_correct_subgroup_assuming_on_curve() && !q.is_in_correct_subgroup_assuming_on_curve());
            // A subgroup point plus a torsion point (the order-r part of a random point removed).
            let t1 = p.mul_bigint(ark_bls12_377::Fr::MODULUS).into_affine();
            let t2 = q.mul_bigint(ark_bls12_377::Fr::MODULUS).into_affine();
            let mixed1 = (G1Affine::generator() * r + t1).into_affine();
            let mixed2 = (G2Affine::generator() * r + t2).into_affine();
            assert_eq!(g1_in_subgroup(&mixed1), mixed1.is_in_correct_subgroup_assuming_on_curve());
            assert_eq!(g2_in_subgroup(&mixed2), mixed2.is_in_correct_subgroup_assuming_on_curve());
            assert!(!g1_in_subgroup(&t1) || t1.is_zero());
            assert!(!g2_in_subgroup(&t2) || t2.is_zero());
        }
    }
}
