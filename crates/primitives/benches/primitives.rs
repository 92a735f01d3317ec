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

criterion_group!(benches, justification, history);
criterion_main!(benches);
