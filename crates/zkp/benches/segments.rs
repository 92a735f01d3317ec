//! Segment proofs: constraints, setup, proving (time and the prover's peak memory), verification
//! alone and in a batch of 64, for K = 1, 4, 8, 16 handoffs per proof at 16 validators.
//!
//! `cargo bench -p petrel-zkp --bench segments [-- --handoffs 1,4 --validators 16 --batch 64]`.
//! Each K runs in a child process of its own so that its peak RSS (`VmHWM`) is the prover's.
//! Part of `cargo xtask bench` (a bench target without criterion: one run each is minutes).

use std::process::Command;
use std::time::{Duration, Instant};

use ark_relations::gr1cs::{ConstraintSynthesizer, ConstraintSystem, SynthesisMode};
use petrel_primitives::Policy;
use petrel_zkp::circuit::{SegmentCircuit, Shape};
use petrel_zkp::proof::{Verifier, prove, setup, verifying_key_bytes};
use petrel_zkp::testing::SyntheticChain;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn policy(validators: u16) -> Policy {
    Policy { max_validators: validators, ..Policy::DEVNET }
}

fn constraints(shape: Shape) -> usize {
    let cs = ConstraintSystem::new_ref();
    cs.set_mode(SynthesisMode::Setup);
    SegmentCircuit { shape, witness: None }.generate_constraints(cs.clone()).expect("synthesis");
    cs.num_constraints()
}

/// One K in this process: prints one line of results.
fn one(k: usize, validators: u16) {
    let policy = policy(validators);
    let shape = Shape::new(&policy, k);
    let n = constraints(shape);
    let chain = SyntheticChain::new(policy, usize::from(validators), k as u32, 1);
    let start = Instant::now();
    let pk = setup(&shape, 1).expect("setup");
    let setup_time = start.elapsed();
    let start = Instant::now();
    let witness = chain.segment(0, k);
    let segment = witness.segment;
    let proof = prove(&pk, &shape, witness).expect("prove");
    let prove_time = start.elapsed();
    let verifier = Verifier::new(&pk.vk);
    let times: Vec<_> = (0..20)
        .map(|_| {
            let t = Instant::now();
            verifier.verify(&segment, &proof).expect("verify");
            t.elapsed()
        })
        .collect();
    let domain = (n + 7).next_power_of_two();
    println!(
        "K={k:>2}  constraints {n:>7} ({:.0} per handoff, domain 2^{} {:.0} % full)  setup {:.2} s  prove {:.2} s ({:.2} s per handoff)  verify {:.2} ms  proving key {:.1} MB  peak RSS {:.0} MB",
        n as f64 / k as f64,
        domain.trailing_zeros(),
        100.0 * (n + 7) as f64 / domain as f64,
        setup_time.as_secs_f64(),
        prove_time.as_secs_f64(),
        prove_time.as_secs_f64() / k as f64,
        median(times).as_secs_f64() * 1e3,
        ark_serialize::CanonicalSerialize::uncompressed_size(&pk) as f64 / 1e6,
        peak_rss_mb(),
    );
}

/// A batch of `count` single-handoff proofs: verification one by one and together.
fn batch(count: usize, validators: u16) {
    let policy = policy(validators);
    let shape = Shape::new(&policy, 1);
    let chain = SyntheticChain::new(policy, usize::from(validators), count as u32, 2);
    let pk = setup(&shape, 1).expect("setup");
    let items: Vec<_> = (0..count)
        .map(|i| {
            let w = chain.segment(i as u32, 1);
            (w.segment, prove(&pk, &shape, w).expect("prove"))
        })
        .collect();
    let verifier = Verifier::from_bytes(&verifying_key_bytes(&pk.vk)).expect("vk");
    let one_by_one: Vec<_> = (0..5)
        .map(|_| {
            let t = Instant::now();
            for (s, p) in &items {
                verifier.verify(s, p).expect("verify");
            }
            t.elapsed()
        })
        .collect();
    let together: Vec<_> = (0..5)
        .map(|_| {
            let t = Instant::now();
            verifier.verify_batch(&items).expect("batch");
            t.elapsed()
        })
        .collect();
    let decode: Vec<_> = (0..5)
        .map(|_| {
            let t = Instant::now();
            for (_, p) in &items {
                p.decode().expect("decode");
            }
            t.elapsed()
        })
        .collect();
    let prepare: Vec<_> = (0..5)
        .map(|_| {
            let t = Instant::now();
            for (s, _) in &items {
                let _ = std::hint::black_box(verifier.prepare_inputs(s));
            }
            t.elapsed()
        })
        .collect();
    {
        use ark_bls12_377::{Bls12_377, G1Affine, G2Affine};
        use ark_ec::pairing::Pairing;
        use ark_serialize::CanonicalDeserialize;
        let t = |f: &dyn Fn()| {
            let s = Instant::now();
            for _ in 0..20 {
                f();
            }
            s.elapsed().as_secs_f64() * 1e3 / 20.0
        };
        let bytes = items[0].1.0;
        let p = items[0].1.decode().unwrap();
        println!(
            "  decode unchecked {:.3} ms",
            t(&|| {
                ark_groth16::Proof::<Bls12_377>::deserialize_compressed_unchecked(&bytes[..]).unwrap();
            })
        );
        println!(
            "  g1 decode checked {:.3} ms",
            t(&|| {
                let _ = std::hint::black_box(G1Affine::deserialize_compressed(&bytes[..48]).unwrap());
            })
        );
        println!(
            "  g2 decode checked {:.3} ms",
            t(&|| {
                let _ = std::hint::black_box(G2Affine::deserialize_compressed(&bytes[48..144]).unwrap());
            })
        );
        println!(
            "  g2 prepare {:.3} ms",
            t(&|| {
                let _: <Bls12_377 as Pairing>::G2Prepared = p.b.into();
            })
        );
        println!(
            "  miller 3 {:.3} ms",
            t(&|| {
                let _ = Bls12_377::multi_miller_loop([p.a, p.a, p.c], [p.b, p.b, p.b]);
            })
        );
        let m = Bls12_377::multi_miller_loop([p.a], [p.b]);
        println!(
            "  final exp {:.3} ms",
            t(&|| {
                let _ = Bls12_377::final_exponentiation(m).unwrap();
            })
        );
    }
    println!("  preparing the inputs of {count}: {:.1} ms", median(prepare).as_secs_f64() * 1e3);
    let (a, b, d) = (median(one_by_one), median(together), median(decode));
    println!(
        "batch of {count}: one by one {:.1} ms ({:.2} ms each), batched {:.1} ms ({:.3} ms each), of which decoding the proofs {:.1} ms",
        a.as_secs_f64() * 1e3,
        a.as_secs_f64() * 1e3 / count as f64,
        b.as_secs_f64() * 1e3,
        b.as_secs_f64() * 1e3 / count as f64,
        d.as_secs_f64() * 1e3,
    );
}

/// Constraints of the parts of one chained handoff at `validators` (counted gadget by gadget).
fn breakdown(validators: u16) {
    use ark_bls12_377::Fr;
    use ark_r1cs_std::alloc::AllocVar;
    use ark_r1cs_std::prelude::Boolean;
    use petrel_zkp::gadgets::{self, Fp, SetVar, SignatureVar};
    let cs = ConstraintSystem::<Fr>::new_ref();
    cs.set_mode(SynthesisMode::Setup);
    let m = usize::from(validators);
    let mut last = 0;
    let mut step = |name: &str| {
        let n = cs.num_constraints();
        println!("  {name:<48} {:>6}", n - last);
        last = n;
    };
    let current = SetVar::witness(&cs, None, m).unwrap();
    step("(the current set: the previous step's next set)");
    let next = SetVar::witness(&cs, None, m).unwrap();
    step("next set: keys in the subgroup, 15-bit slots");
    let commitment = next.commitment(&cs).unwrap();
    step("next set's commitment (Poseidon)");
    let w = || Fp::new_witness(cs.clone(), || Ok(Fr::from(0u8))).unwrap();
    let round = gadgets::round_witness(&cs, None).unwrap();
    let header = gadgets::header_element(&w(), &round);
    step("round (32 bits)");
    let message = gadgets::signing_message(&cs, header, w(), w(), commitment).unwrap();
    step("signing message (Poseidon)");
    let signers: Vec<_> = (0..m).map(|_| Boolean::new_witness(cs.clone(), || Ok(false)).unwrap()).collect();
    step("signer bits");
    let active = Boolean::new_witness(cs.clone(), || Ok(true)).unwrap();
    gadgets::enforce_threshold(&cs, &current.slots, &signers, 11, &active).unwrap();
    step("slot threshold");
    let key = gadgets::aggregate_key(&current.keys, &signers).unwrap();
    step("aggregate key");
    let sig = SignatureVar::witness(&cs, None).unwrap();
    step("signature witness: R in the subgroup, 251 bits of s");
    gadgets::verify_schnorr(&cs, &key, &message, &sig, &active).unwrap();
    step("Schnorr: challenge, its bits, s·G, e·PK, equality");
    println!("  {:<48} {:>6}", "total of the parts", cs.num_constraints());
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let validators: u16 = arg(&args, "--validators").and_then(|v| v.parse().ok()).unwrap_or(16);
    if args.iter().any(|a| a == "--breakdown") {
        return breakdown(validators);
    }
    if let Some(k) = arg(&args, "--one").and_then(|k| k.parse().ok()) {
        return one(k, validators);
    }
    if let Some(n) = arg(&args, "--one-batch").and_then(|k| k.parse().ok()) {
        return batch(n, validators);
    }
    let ks: Vec<usize> = arg(&args, "--handoffs")
        .unwrap_or_else(|| "1,4,8,16".into())
        .split(',')
        .filter_map(|k| k.parse().ok())
        .collect();
    let batch_size = arg(&args, "--batch").and_then(|v| v.parse().ok()).unwrap_or(64usize);
    let exe = std::env::current_exe().expect("own path");
    println!(
        "segment proofs, {validators} validators (threads: {})",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("constraints of one chained handoff, part by part:");
    breakdown(validators);
    for k in ks {
        let status =
            Command::new(&exe).args(["--one", &k.to_string(), "--validators", &validators.to_string()]).status();
        if !status.is_ok_and(|s| s.success()) {
            eprintln!("K={k} failed");
            std::process::exit(1);
        }
    }
    if batch_size > 0 {
        let status = Command::new(&exe)
            .args(["--one-batch", &batch_size.to_string(), "--validators", &validators.to_string()])
            .status();
        if !status.is_ok_and(|s| s.success()) {
            eprintln!("batch failed");
            std::process::exit(1);
        }
    }
}
