//! A synthetic election chain for tests and benchmarks: validator sets rotating through a seeded
//! key pool, one election block per epoch (only what the circuit sees: number, round, hash, the
//! named set and the aggregated justification of the previous set's signers).

use petrel_crypto::{Blake2bHash, SchnorrSecretKey};
use petrel_primitives::validators::macro_signing_message_with;
use petrel_primitives::{Address, MacroJustification, Policy, Validator, Validators};

use crate::circuit::{Handoff, Segment, SegmentWitness};

/// A chain of election blocks `0..=epochs` (block 0 names the genesis set).
#[derive(Clone, Debug)]
pub struct SyntheticChain {
    /// The policy.
    pub policy: Policy,
    /// The set named by election block `n`.
    pub sets: Vec<Validators>,
    /// The hash of election block `n` (block 0's is arbitrary).
    pub hashes: Vec<Blake2bHash>,
    /// `handoffs[n − 1]` is election block `n`.
    pub handoffs: Vec<Handoff>,
}

impl SyntheticChain {
    /// `epochs` handoffs with sets of `validators` keys of a pool of `validators + 2`, derived
    /// from `seed`; each block signed by the smallest run of validators holding 2f+1 slots.
    pub fn new(policy: Policy, validators: usize, epochs: u32, seed: u64) -> Self {
        let pool: Vec<_> = (0..validators + 2)
            .map(|i| {
                let seed = Blake2bHash::digest(format!("petrel/zkp/test/{seed}/{i}").as_bytes());
                SchnorrSecretKey::from_seed(seed.as_bytes())
            })
            .collect();
        let set_of = |n: usize| -> (Validators, Vec<usize>) {
            let per = usize::from(policy.slots) / validators;
            let extra = usize::from(policy.slots) % validators;
            let members: Vec<usize> = (0..validators).map(|j| (n + j) % pool.len()).collect();
            let set = members
                .iter()
                .enumerate()
                .map(|(j, &i)| Validator {
                    public_key: pool[i].public_key(),
                    reward_address: Address([i as u8; 32]),
                    slots: (per + usize::from(j < extra)) as u16,
                    proof_of_possession: pool[i].prove_possession(),
                })
                .collect();
            (Validators(set), members)
        };
        let mut sets = vec![set_of(0).0];
        let mut hashes = vec![Blake2bHash::digest(format!("petrel/zkp/test/{seed}/genesis").as_bytes())];
        let mut handoffs = Vec::new();
        for n in 1..=epochs as usize {
            let (current, members) = set_of(n - 1);
            let (next, _) = set_of(n);
            let hash = Blake2bHash::digest(format!("petrel/zkp/test/{seed}/block/{n}").as_bytes());
            let round = (n % 3) as u32;
            let number = policy.election_block_of(n as u32);
            let message = macro_signing_message_with(&hash, number, round, next.commitment(policy.max_validators));
            let mut signers = Vec::new();
            let mut slots = 0u32;
            for k in 0..validators {
                if slots >= u32::from(policy.two_f_plus_one()) {
                    break;
                }
                let j = (n + k) % validators;
                signers.push((j, &pool[members[j]]));
                slots += u32::from(current.0[j].slots);
            }
            let justification =
                MacroJustification::sign(&current, &policy, &message, &signers).expect("signers are in range");
            debug_assert!(justification.verify(&current, &policy, &message).is_ok());
            let mut bits = vec![false; validators];
            signers.iter().for_each(|(j, _)| bits[*j] = true);
            handoffs.push(Handoff {
                round,
                hash,
                next: next.clone(),
                signers: bits,
                signature: justification.signature,
            });
            sets.push(next);
            hashes.push(hash);
        }
        Self { policy, sets, hashes, handoffs }
    }

    /// The witness of the handoffs `start + 1 ..= start + count`.
    pub fn segment(&self, start: u32, count: usize) -> SegmentWitness {
        let s = start as usize;
        let end = s + count;
        SegmentWitness {
            segment: Segment {
                start_epoch: start,
                start_commitment: self.sets[s].commitment(self.policy.max_validators),
                end_epoch: end as u32,
                end_commitment: self.sets[end].commitment(self.policy.max_validators),
                end_hash: self.hashes[end],
            },
            start_set: self.sets[s].clone(),
            handoffs: self.handoffs[s..end].to_vec(),
        }
    }
}

/// A verifier of the default (all-zero) key, which verifies no real proof: for tests of sync
/// machines whose job outcomes are scripted.
pub fn placeholder_verifier() -> crate::proof::Verifier {
    crate::proof::Verifier::new(&Default::default())
}
