//! `EitherSyncer`: Pico Macro Sync that falls back to Light Macro Sync on conflict.
//!
//! On `fallback(peers)` while still pico: a Light Macro Sync is built over the same chain and
//! network whose first job resets the light chain to its anchor (whatever pico adopted on trust is
//! forgotten; the write runs off the executor like every other), and every peer is handed to it
//! (duplicates removed). Nobody is blamed for the conflict itself; verification settles it once it
//! reaches the trusted block's height (`LightBlockchain::doubted`), whether in the fallback or
//! later, as live sync extends the chain: if it finds another block there, the peer whose election
//! block pico took on trust (its optimistic source) is banned; if it finds the same block, the
//! peers whose blocks contradicted the trusted chain (`PicoMachine::contradictors`) are. A
//! doubter's claim (`PicoMachine::claims`) is judged when the chain, after the reset, adopts the
//! election block at its height: another block there bans the doubter. A peer that served invalid
//! blocks is banned by Light Macro Sync when verification fails; an honest peer that was really
//! behind, or is ahead, costs nothing. There is no way back to pico in the
//! same session. See `docs/adr/0009-pico-and-light-sync.md` and `docs/adr/0017`.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::{Stream, StreamExt};
use petrel_network_api::{Network, PeerId, Penalty, PenaltyReason, Severity};
use petrel_sync_api::light_chain::lock;
use petrel_sync_api::{MacroSync, MacroSyncReturn};
use petrel_sync_light::{LightConfig, LightMacroSync};

use crate::machine::Claim;
use crate::{PicoMacroSync, SharedLightChain};

/// Pico, or the Light Macro Sync it fell back to.
#[allow(clippy::large_enum_variant)] // one per node
pub enum EitherSyncer<N: Network> {
    /// Fast optimistic sync.
    Normal(PicoMacroSync<N>, SharedLightChain, N, LightConfig),
    /// Verifying sync after a conflict, and the trust to settle.
    Fallback(LightMacroSync<N>, Option<Suspect<N>>),
}

/// The trust to settle: the peer whose election block pico took on trust, to ban if verification
/// proves it wrong; the peers that contradicted it, to ban if verification proves it right; and
/// the doubters' claims, each to judge when the chain, after its reset, adopts the election block
/// at its height. The chain judges them all as it adopts blocks (`LightBlockchain::doubted` and
/// `doubts`); this reads its verdicts and bans.
pub struct Suspect<N> {
    source: Option<PeerId>,
    contradictors: Vec<PeerId>,
    /// Whether the trusted block is still to be judged (and someone would pay for it).
    trust_open: bool,
    /// The doubters' claims, in the order the chain keeps them (`LightBlockchain::doubts`), and
    /// whether each is still to be judged.
    claims: Vec<(Claim, bool)>,
    /// The chain's generation at the fallback: its election head says nothing about the claims
    /// until the reset.
    generation: u64,
    chain: SharedLightChain,
    network: N,
}

impl<N: Network> Suspect<N> {
    fn new(machine: &crate::PicoMachine, chain: &SharedLightChain, network: &N) -> Option<Self> {
        let mut c = lock(chain);
        if !c.is_optimistic() {
            return None;
        }
        let source = machine.optimistic_source();
        let contradictors = machine.contradictors().to_vec();
        let anchor = (c.anchor().block_number(), c.anchor().hash());
        let mut claims = Vec::new();
        for claim in machine.claims() {
            // The anchor is trusted by configuration: a claim of another block at its height is
            // judged now; claims below it cannot be.
            if claim.number == anchor.0 && claim.hash != anchor.1 {
                ban(network, claim.peer, claim.number, "its election block contradicts our anchor");
            } else if claim.number > anchor.0 && claims.len() < petrel_blockchain::MAX_DOUBTS {
                claims.push((*claim, true));
            }
        }
        // Judged by what the chain adopts after the fallback's reset, not by what a pico job
        // still running adopts before it.
        c.doubt(claims.iter().map(|(claim, _)| (claim.number, claim.hash)));
        let trust_open = source.is_some() || !contradictors.is_empty();
        (trust_open || !claims.is_empty()).then(|| Suspect {
            source,
            contradictors,
            trust_open,
            claims,
            generation: c.generation(),
            chain: chain.clone(),
            network: network.clone(),
        })
    }

    /// Judges what the chain has judged; `true` once nothing is left. Never waits for the chain's
    /// lock: if it is busy, the next poll looks again.
    fn settled(&mut self) -> bool {
        let read = |chain: &petrel_blockchain::LightBlockchain| {
            let reset = chain.generation() > self.generation;
            (chain.doubted(), chain.doubts().to_vec(), reset.then(|| chain.election_head().block_number()))
        };
        // `verified_to`: the election head once the chain was reset (what verification reached).
        let (doubted, doubts, verified_to) = match self.chain.try_lock() {
            Ok(chain) => read(&chain),
            Err(std::sync::TryLockError::Poisoned(e)) => read(&e.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => return false,
        };
        if self.trust_open {
            let judged = match doubted {
                Some((number, _, Some(false))) => Some((
                    self.source.iter().copied().collect::<Vec<_>>(),
                    number,
                    "the election block taken on trust was a lie",
                )),
                Some((number, _, Some(true))) => Some((
                    self.contradictors.clone(),
                    number,
                    "it contradicted the election block taken on trust, which proved right",
                )),
                // A proof carried the chain past that height: the question stays open, nobody pays.
                Some((number, _, None)) if verified_to.is_some_and(|n| n > number) => Some((Vec::new(), number, "")),
                // Not reached yet (or not reset yet).
                _ => None,
            };
            if let Some((liars, number, why)) = judged {
                liars.into_iter().for_each(|peer| ban(&self.network, peer, number, why));
                self.trust_open = false;
            }
        }
        for ((claim, open), (_, _, verdict)) in self.claims.iter_mut().zip(&doubts) {
            match verdict {
                Some(false) if *open => {
                    ban(
                        &self.network,
                        claim.peer,
                        claim.number,
                        "its head's election block is not on the verified chain",
                    );
                    *open = false;
                }
                // Judged true, or skipped by a proof (not judged: nobody pays).
                Some(true) => *open = false,
                None if verified_to.is_some_and(|n| n > claim.number) => *open = false,
                _ => {}
            }
        }
        !self.trust_open && self.claims.iter().all(|(_, open)| !open)
    }
}

fn ban<N: Network>(network: &N, peer: PeerId, number: u32, why: &str) {
    tracing::warn!(target: "sync::pico", %peer, number, "banning a peer that lied: {why}");
    network.penalize(peer, Penalty::new(Severity::Malicious, PenaltyReason::ConflictingChain));
}

impl<N: Network> EitherSyncer<N> {
    /// Starts in pico mode.
    pub fn new(pico: PicoMacroSync<N>, chain: SharedLightChain, network: N, light_config: LightConfig) -> Self {
        EitherSyncer::Normal(pico, chain, network, light_config)
    }

    /// Whether the fallback happened.
    pub fn is_fallback(&self) -> bool {
        matches!(self, EitherSyncer::Fallback(..))
    }

    fn inner(&mut self) -> &mut dyn MacroSync {
        match self {
            EitherSyncer::Normal(p, ..) => p,
            EitherSyncer::Fallback(l, _) => l,
        }
    }
}

impl<N: Network> Stream for EitherSyncer<N> {
    type Item = MacroSyncReturn;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<MacroSyncReturn>> {
        match self.get_mut() {
            EitherSyncer::Normal(p, ..) => p.poll_next_unpin(cx),
            EitherSyncer::Fallback(l, suspect) => {
                let next = l.poll_next_unpin(cx);
                if suspect.as_mut().is_some_and(Suspect::settled) {
                    *suspect = None;
                }
                next
            }
        }
    }
}

impl<N: Network> MacroSync for EitherSyncer<N> {
    fn add_peer(&mut self, peer: PeerId) {
        self.inner().add_peer(peer);
    }

    fn remove_peer(&mut self, peer: &PeerId) {
        self.inner().remove_peer(peer);
    }

    fn drain_peers(&mut self) -> Vec<PeerId> {
        self.inner().drain_peers()
    }

    fn num_peers(&self) -> usize {
        match self {
            EitherSyncer::Normal(p, ..) => p.num_peers(),
            EitherSyncer::Fallback(l, _) => l.num_peers(),
        }
    }

    fn proof_stats(&self) -> Option<petrel_sync_api::ProofStats> {
        match self {
            EitherSyncer::Normal(p, ..) => p.proof_stats(),
            EitherSyncer::Fallback(l, _) => l.proof_stats(),
        }
    }

    fn fallback(&mut self, peers: Vec<PeerId>) {
        let EitherSyncer::Normal(pico, chain, network, config) = self else { return };
        let mut all = pico.drain_peers();
        all.extend(peers);
        all.sort();
        all.dedup();
        tracing::info!(target: "sync::pico", peers = all.len(), "conflict: falling back to light macro sync");
        // Before the light sync exists: its first job resets the chain (on another thread).
        let suspect = Suspect::new(pico.machine(), chain, network);
        let config = LightConfig { reset_first: true, ..config.clone() };
        let mut light = LightMacroSync::new(network.clone(), chain.clone(), config);
        for peer in all {
            light.add_peer(peer);
        }
        *self = EitherSyncer::Fallback(light, suspect);
    }
}

#[cfg(test)]
mod tests {
    use petrel_network_api::Services;
    use petrel_network_mock::{HubConfig, MockHub};
    use petrel_primitives::Block;

    use super::*;

    /// Settling is asked on every poll, on the runtime's thread: it must never wait for the
    /// chain's lock (a job may hold it for a whole push), only look again at the next poll.
    #[tokio::test]
    async fn settling_never_waits_for_the_chain() {
        let server = petrel_test_utils::TestChain::build(1, 8 * 2 + 4);
        let chain = server.light_chain();
        let hub = MockHub::new(HubConfig::default());
        let (node, liar) = (hub.node(Services::NONE), hub.node(Services::HISTORY_NODE));
        let mut suspect = Suspect {
            source: Some(liar.peer_id()),
            contradictors: vec![],
            trust_open: true,
            claims: vec![],
            generation: 0,
            chain: chain.clone(),
            network: node,
        };
        let held = lock(&chain);
        let (tx, rx) = std::sync::mpsc::channel();
        // The test's own thread (so that a settlement that waited would hang it, not the test).
        #[allow(clippy::disallowed_methods)]
        let settling = std::thread::spawn(move || {
            let _ = tx.send(suspect.settled());
            suspect
        });
        // A guard against a hang, not a timing assertion: the answer comes at once or never.
        let settled = rx.recv_timeout(std::time::Duration::from_secs(60)).expect("settling waited for the lock");
        assert!(!settled, "busy chain: not settled yet");
        drop(held);
        let mut suspect = settling.join().unwrap();
        assert!(!suspect.settled(), "nothing doubted yet");
    }

    /// A doubter's claim is judged by the chain's adoption at its height after the reset: an
    /// adoption before it (a pico job finishing late) does not count; another block there bans
    /// the doubter, the same block clears it.
    #[tokio::test]
    async fn claims_are_judged_by_adoptions_after_the_reset_only() {
        let server = petrel_test_utils::TestChain::build(1, 8 * 2 + 4);
        let Block::Macro(e8) = server.blocks[7].clone() else { panic!("8 is an election block") };
        let chain = server.light_chain();
        let hub = MockHub::new(HubConfig::default());
        let node = hub.node(Services::NONE);
        let (sybil, honest) = (hub.node(Services::HISTORY_NODE).peer_id(), hub.node(Services::HISTORY_NODE).peer_id());
        let fake = petrel_primitives::Blake2bHash::digest(b"made up");
        let claims = [Claim { peer: sybil, number: 8, hash: fake }, Claim { peer: honest, number: 8, hash: e8.hash() }];
        lock(&chain).doubt(claims.iter().map(|c| (c.number, c.hash)));
        let mut suspect = Suspect {
            source: None,
            contradictors: vec![],
            trust_open: false,
            claims: claims.iter().map(|c| (*c, true)).collect(),
            generation: lock(&chain).generation(),
            chain: chain.clone(),
            network: node.clone(),
        };
        lock(&chain).push_macro(e8.clone()).unwrap();
        assert!(!suspect.settled() && !node.is_banned(&sybil), "an adoption before the reset is not judged");
        lock(&chain).reset().unwrap();
        assert!(!suspect.settled());
        lock(&chain).push_macro(e8).unwrap();
        assert!(suspect.settled(), "both claims judged");
        assert_eq!(node.ban_reason(&sybil), Some(PenaltyReason::ConflictingChain.as_str()));
        assert!(!node.is_banned(&honest) && node.score(&honest) == 0);
    }
}
