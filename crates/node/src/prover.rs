//! The prover of a history node (`petrel node --mode history --prove`): after every election
//! block it proves the next segment of the election chain (or extends the trailing partial one),
//! stores the proof, which the node then serves with `RequestZkp`, and publishes it on the
//! `ZkpSegments` topic. One proof at a time, on a thread of its own, never holding the chain's lock
//! while proving. Every history node of a network with proofs keeps the segments it receives by
//! gossip once it has checked them against its own chain and verified them ([`check_gossiped`]).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::{Context, Result, anyhow, bail};
use futures::StreamExt;
use petrel_blockchain::{Blockchain, Proofs};
use petrel_network_api::{Network, NetworkExt, Verdict};
use petrel_primitives::genesis::GenesisZkp;
use petrel_primitives::wire::ZkpSegment;
use petrel_primitives::{Block, GenesisConfig, MacroBlock, Policy};
use petrel_protocol::ZkpSegments;
use petrel_zkp::chain::{from_wire, to_wire, witness_from_blocks};
use petrel_zkp::circuit::Shape;
use petrel_zkp::proof::Verifier;
use petrel_zkp::proof::{SegmentProvingKey as ProvingKey, load_or_setup, prove};
use tokio::sync::watch;

/// What the prover has done, for the node's status.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub(crate) struct ProverStatus {
    /// Proofs made since start.
    pub(crate) proofs: u64,
    /// The epoch the stored proof chain reaches.
    pub(crate) proven_epoch: u32,
    /// Milliseconds the last proof took.
    pub(crate) last_proof_ms: u64,
}

/// The network's proving key: made again from the genesis config's devnet seed (cached in
/// `cache_dir`), and checked against the verifying key the genesis names.
pub(crate) fn proving_key(genesis: &GenesisConfig, cache_dir: &Path) -> Result<(Shape, Arc<ProvingKey>)> {
    let zkp = genesis.zkp.as_ref().ok_or_else(|| anyhow!("this network's genesis has no [zkp] section"))?;
    let Some(seed) = zkp.setup_seed else {
        bail!("this network's proving key comes from a ceremony, not a seed: --prove needs it (not supported yet)");
    };
    let shape = Shape::new(&genesis.policy, usize::from(zkp.handoffs));
    let expected = zkp.verifying_key_hash()?;
    let pk = load_or_setup(cache_dir, &shape, seed, Some(&expected))
        .with_context(|| format!("cannot make the proving key (cache {})", cache_dir.display()))?;
    Ok((shape, Arc::new(pk)))
}

/// The devnet's `[zkp]` section: a deterministic setup from `seed` for `handoffs` per segment.
pub(crate) fn devnet_zkp(policy: &Policy, handoffs: u16, seed: u64, cache_dir: &Path) -> Result<GenesisZkp> {
    let shape = Shape::new(policy, usize::from(handoffs));
    let pk = load_or_setup(cache_dir, &shape, seed, None)
        .with_context(|| format!("cannot make the proving key (cache {})", cache_dir.display()))?;
    Ok(GenesisZkp {
        handoffs,
        verifying_key: hex::encode(petrel_zkp::proof::verifying_key_bytes(&pk.vk)),
        setup_seed: Some(seed),
    })
}

/// The default cache of proving keys: `$XDG_CACHE_HOME/petrel/zkp`, else `~/.cache/petrel/zkp`,
/// else `DATA_DIR/zkp-keys`.
pub(crate) fn default_cache_dir(data_dir: &Path) -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|c| c.join("petrel").join("zkp"))
        .unwrap_or_else(|| data_dir.join("zkp-keys"))
}

/// The next segment to prove, from the stored proofs and the chain's election head: `(start,
/// end)`, or `None` when the stored chain reaches the head. It follows the chain of segments from
/// genesis (not the last stored one: a gossiped segment further on must not leave a gap).
fn next_segment(proofs: &Proofs, head_epoch: u32, k: u32) -> Result<Option<(u32, u32)>> {
    let (mut start, mut proven_to) = (0, 0);
    loop {
        let chain = proofs.chain_from(start, petrel_primitives::wire::MAX_ZKP_SEGMENTS)?;
        let Some(last) = chain.segments.last() else { break };
        if last.end_epoch - last.start_epoch < k {
            // The trailing partial segment: prove it longer.
            (start, proven_to) = (last.start_epoch, last.end_epoch);
            break;
        }
        (start, proven_to) = (last.end_epoch, last.end_epoch);
        if chain.segments.len() < usize::from(petrel_primitives::wire::MAX_ZKP_SEGMENTS) {
            break;
        }
    }
    let end = head_epoch.min(start.saturating_add(k));
    Ok((end > proven_to).then_some((start, end)))
}

fn election_block(chain: &Blockchain, policy: &Policy, epoch: u32) -> Result<MacroBlock> {
    match chain.block_at(policy.election_block_of(epoch), false)? {
        Some(Block::Macro(m)) => Ok(m),
        _ => bail!("election block of epoch {epoch} is not in the store"),
    }
}

/// Proves and stores the next segment, if any; returns it and the milliseconds it took.
pub(crate) fn prove_next(
    chain: &RwLock<Blockchain>,
    shape: &Shape,
    pk: &ProvingKey,
) -> Result<Option<(ZkpSegment, u64)>> {
    let (proofs, witness) = {
        let chain = chain.read().map_err(|_| anyhow!("chain lock poisoned"))?;
        let policy = *chain.policy();
        let head_epoch = policy.epoch_at(chain.state().election_head.block_number());
        let proofs = chain.proofs();
        let Some((start, end)) = next_segment(&proofs, head_epoch, shape.handoffs as u32)? else { return Ok(None) };
        let first = election_block(&chain, &policy, start)?;
        let blocks = (start + 1..=end).map(|e| election_block(&chain, &policy, e)).collect::<Result<Vec<_>>>()?;
        (proofs, witness_from_blocks(&policy, start, &first, &blocks)?)
    };
    let started = std::time::Instant::now();
    let segment = witness.segment;
    let proof = prove(pk, shape, witness)?;
    let ms = started.elapsed().as_millis() as u64;
    let wire = to_wire(&segment, &proof);
    proofs.put(&wire)?;
    tracing::info!(
        target: "petrel::prover",
        start = segment.start_epoch,
        end = segment.end_epoch,
        ms,
        "proved the election chain"
    );
    Ok(Some((wire, ms)))
}

/// What a history node does with a segment received by gossip: [`Verdict::Ignore`] if it holds
/// the same or a longer one, or cannot check it against its own chain (it lacks the start or end
/// election block, or they differ: another chain, or one it has not reached); [`Verdict::Reject`]
/// if it is not cut where segments are (every `handoffs` epochs from genesis, at most `handoffs`
/// long) or its proof does not verify; else it is stored and [`Verdict::Accept`]ed.
pub(crate) fn check_gossiped(chain: &Blockchain, verifier: &Verifier, handoffs: u32, segment: &ZkpSegment) -> Verdict {
    let policy = *chain.policy();
    let (start, end) = (segment.start_epoch, segment.end_epoch);
    if end <= start || end - start > handoffs || start % handoffs != 0 {
        return Verdict::Reject;
    }
    let proofs = chain.proofs();
    match proofs.get(start) {
        Ok(Some(held)) if held.end_epoch >= end => return Verdict::Ignore,
        Ok(_) => {}
        Err(_) => return Verdict::Ignore,
    }
    let (Ok(first), Ok(last)) = (election_block(chain, &policy, start), election_block(chain, &policy, end)) else {
        return Verdict::Ignore;
    };
    let named = first.header.validators.as_ref().map(|v| v.commitment(policy.max_validators));
    if named != Some(segment.start_commitment) || last.hash() != segment.end_hash {
        return Verdict::Ignore;
    }
    let (statement, proof) = from_wire(segment);
    if verifier.verify(&statement, &proof).is_err() {
        return Verdict::Reject;
    }
    match proofs.put(segment) {
        Ok(()) => Verdict::Accept,
        Err(e) => {
            tracing::warn!(target: "petrel::prover", error = %e, "cannot store a gossiped proof");
            Verdict::Ignore
        }
    }
}

/// Receives segments by gossip and keeps those that check ([`check_gossiped`]), one at a time.
pub(crate) async fn receive<N: Network>(
    net: N,
    chain: Arc<RwLock<Blockchain>>,
    verifier: Arc<Verifier>,
    handoffs: u32,
) {
    let mut segments = match net.subscribe::<ZkpSegments>().await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(target: "petrel::prover", error = %e, "cannot subscribe to proofs");
            return;
        }
    };
    while let Some(message) = segments.next().await {
        let (chain, verifier) = (chain.clone(), verifier.clone());
        let item = message.item;
        let verdict = tokio::task::spawn_blocking(move || {
            let chain = chain.read().unwrap_or_else(|e| e.into_inner());
            check_gossiped(&chain, &verifier, handoffs, &item)
        })
        .await
        .unwrap_or(Verdict::Ignore);
        net.validate(message.id, verdict);
    }
}

/// Runs the prover until the chain's events end, publishing each proof on `net`.
pub(crate) async fn run<N: Network>(
    net: N,
    chain: Arc<RwLock<Blockchain>>,
    shape: Shape,
    pk: Arc<ProvingKey>,
    status: watch::Sender<ProverStatus>,
) {
    let (mut events, stored) = {
        let chain = chain.read().unwrap_or_else(|e| e.into_inner());
        (chain.subscribe(), chain.proofs().last().ok().flatten())
    };
    status.send_modify(|s| s.proven_epoch = stored.map_or(0, |s| s.end_epoch));
    loop {
        // Prove until the stored chain reaches the head, one segment at a time.
        loop {
            let (chain, pk) = (chain.clone(), pk.clone());
            let (tx, rx) = tokio::sync::oneshot::channel();
            // A thread of its own: proving takes seconds of both cores and must not occupy the
            // runtime's blocking pool, which serves requests.
            let spawned = std::thread::Builder::new().name("petrel-prover".into()).spawn(move || {
                let _ = tx.send(prove_next(&chain, &shape, &pk));
            });
            if spawned.is_err() {
                tracing::warn!(target: "petrel::prover", "cannot start the prover thread");
                return;
            }
            match rx.await {
                Ok(Ok(Some((segment, ms)))) => {
                    status.send_modify(|s| {
                        s.proofs += 1;
                        s.proven_epoch = segment.end_epoch;
                        s.last_proof_ms = ms;
                    });
                    if let Err(e) = net.publish::<ZkpSegments>(&segment).await {
                        tracing::debug!(target: "petrel::prover", error = %e, "proof not published");
                    }
                }
                Ok(Ok(None)) => break,
                Ok(Err(e)) => {
                    tracing::warn!(target: "petrel::prover", error = %e, "cannot prove");
                    break;
                }
                Err(_) => return,
            }
        }
        if !crate::node::next_epoch_or_adoption(&mut events).await {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use petrel_primitives::wire::ZkpSegment;
    use petrel_primitives::{Blake2bHash, FieldElement};

    use super::*;

    #[test]
    fn the_next_segment_extends_a_partial_one_and_follows_a_full_one() {
        let dir = tempfile::tempdir().unwrap();
        let producer = petrel_producer::Producer::new(petrel_producer::ProducerConfig {
            validators: 4,
            accounts: 2,
            ..Default::default()
        });
        let genesis = producer.genesis(1, 0, Policy::TEST);
        let chain = Blockchain::open(&dir.path().join("c.redb"), &genesis, Default::default()).unwrap();
        let proofs = chain.proofs();
        let put = |start, end| {
            proofs
                .put(&ZkpSegment {
                    start_epoch: start,
                    start_commitment: FieldElement::ZERO,
                    end_epoch: end,
                    end_commitment: FieldElement::ZERO,
                    end_hash: Blake2bHash::ZERO,
                    proof: [0; 192],
                })
                .unwrap()
        };
        assert_eq!(next_segment(&proofs, 0, 4).unwrap(), None, "nothing to prove at genesis");
        assert_eq!(next_segment(&proofs, 3, 4).unwrap(), Some((0, 3)));
        assert_eq!(next_segment(&proofs, 9, 4).unwrap(), Some((0, 4)));
        put(0, 3);
        assert_eq!(next_segment(&proofs, 3, 4).unwrap(), None);
        assert_eq!(next_segment(&proofs, 5, 4).unwrap(), Some((0, 4)), "the partial segment grows");
        put(0, 4);
        assert_eq!(next_segment(&proofs, 5, 4).unwrap(), Some((4, 5)), "a full one is followed");
        // A segment further on (gossiped) leaves no gap: the chain from genesis is followed.
        put(12, 16);
        assert_eq!(next_segment(&proofs, 20, 4).unwrap(), Some((4, 8)));
        put(4, 8);
        put(8, 12);
        assert_eq!(next_segment(&proofs, 20, 4).unwrap(), Some((16, 20)));
    }

    /// Gossiped segments are kept only when they check against the node's own chain and verify.
    #[test]
    fn a_gossiped_segment_is_kept_only_if_it_is_ours_and_verifies() {
        let policy = Policy { max_validators: 4, ..Policy::TEST };
        let producer = petrel_producer::Producer::new(petrel_producer::ProducerConfig {
            validators: 4,
            accounts: 2,
            ..Default::default()
        });
        let genesis = producer.genesis(1, 0, policy);
        let dir = tempfile::tempdir().unwrap();
        let mut chain = Blockchain::open(&dir.path().join("c.redb"), &genesis, Default::default()).unwrap();
        while chain.head().block_number < policy.election_block_of(3) {
            let mut scratch = chain.state().clone();
            chain.push(producer.produce(&mut scratch).unwrap()).unwrap();
        }
        let shape = Shape::new(&policy, 2);
        let pk = petrel_zkp::proof::setup(&shape, 1).unwrap();
        let verifier = Verifier::new(&pk.vk);
        let segment = |start: u32, end: u32| {
            let first = election_block(&chain, &policy, start).unwrap();
            let blocks: Vec<_> = (start + 1..=end).map(|e| election_block(&chain, &policy, e).unwrap()).collect();
            let w = witness_from_blocks(&policy, start, &first, &blocks).unwrap();
            to_wire(&w.segment, &prove(&pk, &shape, w.clone()).unwrap())
        };
        let good = segment(0, 2);
        // Another segment's proof under this one's statement: rejected, nothing stored.
        let mut forged = good;
        forged.proof = segment(0, 1).proof;
        assert_eq!(check_gossiped(&chain, &verifier, 2, &forged), Verdict::Reject);
        assert_eq!(chain.proofs().last().unwrap(), None);
        // Not cut at a multiple of K, or longer than K.
        assert_eq!(check_gossiped(&chain, &verifier, 2, &segment(1, 2)), Verdict::Reject);
        assert_eq!(check_gossiped(&chain, &verifier, 1, &good), Verdict::Reject);
        // Another end block than ours: not ours to keep (another chain, or beyond our head).
        let mut elsewhere = good;
        elsewhere.end_hash = Blake2bHash::digest(b"another chain");
        assert_eq!(check_gossiped(&chain, &verifier, 2, &elsewhere), Verdict::Ignore);
        let mut beyond = good;
        beyond.start_epoch = 4;
        beyond.end_epoch = 6;
        assert_eq!(check_gossiped(&chain, &verifier, 2, &beyond), Verdict::Ignore);
        // The real one: kept; again: ignored (held already).
        assert_eq!(check_gossiped(&chain, &verifier, 2, &good), Verdict::Accept);
        assert_eq!(chain.proofs().get(0).unwrap(), Some(good));
        assert_eq!(check_gossiped(&chain, &verifier, 2, &good), Verdict::Ignore);
    }
}
