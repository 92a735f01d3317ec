//! Benchmarks of Schnorr signing and verification and of the Poseidon hash.

#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use petrel_crypto::{
    FieldElement, SchnorrSecretKey, aggregate_public_keys, poseidon_hash, sign_aggregate, verify_batch,
};

fn seed(i: u8) -> [u8; 32] {
    [i; 32]
}

fn bench(c: &mut Criterion) {
    let sk = SchnorrSecretKey::from_seed(&seed(1));
    let pk = sk.public_key();
    let msg = FieldElement::from_u64(42);
    let sig = sk.sign(&msg);

    c.bench_function("schnorr/sign", |b| b.iter(|| black_box(&sk).sign(black_box(&msg))));
    c.bench_function("schnorr/verify", |b| b.iter(|| black_box(&pk).verify(black_box(&msg), black_box(&sig)).unwrap()));
    let pk_bytes = pk.to_bytes();
    c.bench_function("schnorr/public_key_from_bytes", |b| {
        b.iter(|| petrel_crypto::SchnorrPublicKey::from_bytes(black_box(&pk_bytes)).unwrap())
    });
    let items: Vec<_> = (0..11u8)
        .map(|i| {
            let sk = SchnorrSecretKey::from_seed(&seed(i));
            let m = FieldElement::from_u64(u64::from(i));
            (sk.public_key(), m, sk.sign(&m))
        })
        .collect();
    c.bench_function("schnorr/verify_batch_11", |b| b.iter(|| verify_batch(black_box(&items)).unwrap()));
    // The same 11 signers as one aggregated signature: sum the keys, verify once.
    let signers: Vec<_> = (0..11u8).map(|i| SchnorrSecretKey::from_seed(&seed(i))).collect();
    let refs: Vec<_> = signers.iter().collect();
    let aggregate = sign_aggregate(&refs, &msg).unwrap();
    let publics: Vec<_> = signers.iter().map(SchnorrSecretKey::public_key).collect();
    c.bench_function("schnorr/verify_aggregate_11", |b| {
        b.iter(|| aggregate_public_keys(black_box(&publics)).unwrap().verify(black_box(&msg), &aggregate).unwrap())
    });
    c.bench_function("schnorr/sign_aggregate_11", |b| b.iter(|| sign_aggregate(black_box(&refs), &msg).unwrap()));
    c.bench_function("schnorr/verify_possession", |b| {
        let proof = sk.prove_possession();
        b.iter(|| black_box(&pk).verify_possession(black_box(&proof)).unwrap())
    });
    let inputs: Vec<_> = (1..=5u64).map(FieldElement::from_u64).collect();
    c.bench_function("poseidon/hash_5", |b| b.iter(|| poseidon_hash(black_box(&inputs))));
}

criterion_group!(benches, bench);
criterion_main!(benches);
