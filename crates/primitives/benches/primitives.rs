//! Criterion benches of the chain model: justification verification (one aggregated signature), history-tree append and
//! chunk proofs.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use petrel_primitives::history::{HistoryTree, prove_range, root_of};
use petrel_primitives::validators::macro_signing_message;
use petrel_primitives::{Address, Blake2bHash, MacroJustification, Policy, SchnorrSecretKey, Validator, Validators};

fn validators(n: usize, policy: &Policy) -> (Vec<SchnorrSecretKey>, Validators) {
    let keys: Vec<_> = (0..n).map(|i| SchnorrSecretKey::from_seed(&[i as u8 + 1; 32])).collect();
    let per = policy.slots as usize / n;
    let set = Validators(
        keys.iter()
            .enumerate()
            .map(|(i, k)| Validator {
                public_key: k.public_key(),
                reward_address: Address([i as u8; 32]),
                slots: (per + usize::from(i < policy.slots as usize % n)) as u16,
                proof_of_possession: k.prove_possession(),
            })
            .collect(),
    );
    (keys, set)
}

fn justification(c: &mut Criterion) {
    let policy = Policy::DEVNET;
    let (keys, set) = validators(16, &policy);
    let message = macro_signing_message(&Blake2bHash::digest(b"block"), 128, 0, None);
    let signers: Vec<_> = keys.iter().enumerate().take(11).collect();
    let j = MacroJustification::sign(&set, &policy, &message, &signers).unwrap();
    j.verify(&set, &policy, &message).unwrap();
    c.bench_function("justification_verify_16_validators_11_signers", |b| {
        b.iter(|| j.verify(&set, &policy, &message).unwrap())
    });
    c.bench_function("macro_signing_message_election", |b| {
        b.iter(|| macro_signing_message(&Blake2bHash::digest(b"block"), 128, 0, Some((&set, 16))))
    });
}

/// A validator list at the cap, cold cache: decoding costs decompressions only; the deferred
/// subgroup checks are paid by `check_keys`, once the block carrying the list is plausible.
fn validator_keys(c: &mut Criterion) {
    let set = Validators(
        (0..petrel_primitives::validators::MAX_VALIDATORS as u64)
            .map(|i| {
                let k = SchnorrSecretKey::from_seed(Blake2bHash::digest(&i.to_be_bytes()).as_bytes());
                Validator {
                    public_key: k.public_key(),
                    reward_address: Address([0; 32]),
                    slots: 1,
                    proof_of_possession: k.prove_possession(),
                }
            })
            .collect(),
    );
    let bytes = petrel_primitives::codec::encode_infallible(&set);
    let decode = || petrel_primitives::codec::decode::<Validators>(&bytes, 1 << 20).unwrap();
    let mut g = c.benchmark_group("validators_1024_cold_cache");
    g.sample_size(10);
    g.bench_function("decode", |b| {
        b.iter_batched(petrel_primitives::clear_key_cache, |()| decode(), BatchSize::SmallInput)
    });
    g.bench_function("check_keys", |b| {
        b.iter_batched(
            || {
                petrel_primitives::clear_key_cache();
                decode()
            },
            |set| set.check_keys().unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn leaves(n: u64) -> Vec<Blake2bHash> {
    (0..n).map(|i| Blake2bHash::digest(&i.to_be_bytes())).collect()
}

fn history(c: &mut Criterion) {
    let mut g = c.benchmark_group("history_tree");
    let batch = leaves(10_000);
    g.throughput(Throughput::Elements(batch.len() as u64));
    g.bench_function("append_10k_leaves", |b| {
        b.iter_batched(HistoryTree::new, |mut t| t.append(batch.iter().copied()).unwrap(), BatchSize::SmallInput)
    });
    let mut tree = HistoryTree::new();
    tree.append(leaves(100_000)).unwrap();
    let total = 100_000;
    let root = root_of(tree.nodes(), total).unwrap();
    let chunk: Vec<_> = leaves(100_000)[50_176..51_200].to_vec();
    g.throughput(Throughput::Elements(1024));
    g.bench_function("chunk_proof_build_1024", |b| b.iter(|| prove_range(tree.nodes(), total, 50_176, 1024).unwrap()));
    let proof = prove_range(tree.nodes(), total, 50_176, 1024).unwrap();
    g.bench_function("chunk_proof_verify_1024", |b| b.iter(|| proof.verify(&root, 50_176, &chunk).unwrap()));
    g.finish();
}

criterion_group!(benches, justification, validator_keys, history);
criterion_main!(benches);
