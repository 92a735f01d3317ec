//! The history machine end to end on the mock network (paused clock): a fresh store syncs an
//! honest chain from two peers; a peer without the services is Incompatible.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use petrel_blockchain::{Blockchain, ChainOptions};
use petrel_network_api::Services;
use petrel_network_mock::{HubConfig, MockHub};
use petrel_sync_api::MacroSync;
use petrel_test_utils::{TestChain, serve};

use super::*;
use crate::driver::HistoryMacroSync;

fn fresh_chain(reference: &TestChain, dir: &tempfile::TempDir) -> SharedChain {
    let options = ChainOptions { durable: false, ..Default::default() };
    Arc::new(RwLock::new(Blockchain::open(&dir.path().join("chain.redb"), &reference.genesis, options).expect("open")))
}

/// The serving store's answer to a history request.
fn answer(request: &petrel_protocol::AnyRequest, chain: &Blockchain) -> AnyResponse {
    use petrel_consensus::handlers::Answer;
    use petrel_protocol::AnyRequest;
    match request {
        AnyRequest::MacroChain(r) => AnyResponse::MacroChain(r.answer(chain)),
        AnyRequest::BatchSet(r) => AnyResponse::BatchSet(r.answer(chain)),
        AnyRequest::HistoryChunk(r) => AnyResponse::HistoryChunk(r.answer(chain)),
        other => panic!("history sync asked {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_fresh_store_syncs_every_epoch_and_the_checkpoint_from_two_peers() {
    let server = TestChain::build(1, 8 * 5 + 4);
    let hub = MockHub::new(HubConfig { seed: 3, latency: Duration::from_millis(20), ..Default::default() });
    let node = hub.node(Services::NONE);
    let dir = tempfile::tempdir().unwrap();
    let chain = fresh_chain(&server, &dir);
    let mut sync = HistoryMacroSync::new(node.clone(), chain.clone().into(), HistoryConfig::default());
    let peers: Vec<_> = (0..2).map(|_| serve(&hub, &server, Services::HISTORY_NODE)).collect();
    for p in &peers {
        hub.connect(node.peer_id(), p.peer_id()).unwrap();
        sync.add_peer(p.peer_id());
    }
    let mut verdicts = Vec::new();
    while verdicts.len() < 2 {
        let v = tokio::time::timeout(Duration::from_secs(600), sync.next()).await.expect("a verdict in time");
        verdicts.push(v.expect("the stream goes on"));
    }
    assert!(verdicts.iter().all(|v| matches!(v, MacroSyncReturn::Good(_))), "{verdicts:?}");
    let theirs = server.chain.read().unwrap().head();
    let ours = chain.read().unwrap().head();
    assert_eq!(ours.macro_hash, theirs.macro_hash, "our macro head is theirs (the checkpoint)");
    assert_eq!(ours.block_hash, ours.macro_hash, "history sync applies macro blocks only");
    assert_eq!(ours.election_hash, theirs.election_hash);
    let stats = sync.stats();
    assert_eq!(stats.applied, 6, "five epochs and the checkpoint: {stats:?}");
    assert!(stats.chunk_requests >= 6, "{stats:?}");
    // Every peer took part: nothing was fetched twice per item beyond retries.
    assert!(stats.batch_set_requests >= 6, "{stats:?}");
}

#[tokio::test(start_paused = true)]
async fn a_peer_without_history_is_incompatible() {
    let server = TestChain::build(1, 8);
    let hub = MockHub::new(HubConfig::default());
    let node = hub.node(Services::NONE);
    let dir = tempfile::tempdir().unwrap();
    let mut sync = HistoryMacroSync::new(node.clone(), fresh_chain(&server, &dir).into(), HistoryConfig::default());
    let full = serve(&hub, &server, Services::FULL_NODE);
    hub.connect(node.peer_id(), full.peer_id()).unwrap();
    sync.add_peer(full.peer_id());
    let v = tokio::time::timeout(Duration::from_secs(60), sync.next()).await.unwrap();
    assert_eq!(v, Some(MacroSyncReturn::Incompatible(full.peer_id())));
}

#[tokio::test(start_paused = true)]
async fn epochs_of_several_batch_sets_and_chunks_sync_too() {
    // Every checkpoint ends a batch set; 3 transfers per block: several chunks per batch set.
    let producer = petrel_test_utils::test_producer(2, 3);
    let genesis = producer.genesis(1, 1_700_000_000_000, petrel_primitives::Policy::TEST);
    let options = ChainOptions { durable: false, batch_set_max_history_bytes: 64, ..Default::default() };
    let server = TestChain::build_with(producer, genesis, 8 * 3 + 4, options);
    let hub = MockHub::new(HubConfig { seed: 5, latency: Duration::from_millis(10), ..Default::default() });
    let node = hub.node(Services::NONE);
    let dir = tempfile::tempdir().unwrap();
    let chain = fresh_chain(&server, &dir);
    let mut sync = HistoryMacroSync::new(node.clone(), chain.clone().into(), HistoryConfig::default());
    let peer = serve(&hub, &server, Services::HISTORY_NODE);
    hub.connect(node.peer_id(), peer.peer_id()).unwrap();
    sync.add_peer(peer.peer_id());
    let v = tokio::time::timeout(Duration::from_secs(600), sync.next()).await.unwrap();
    assert_eq!(v, Some(MacroSyncReturn::Good(peer.peer_id())));
    let theirs = server.chain.read().unwrap().head();
    assert_eq!(chain.read().unwrap().head().macro_hash, theirs.macro_hash);
    // Three epochs of two batch sets each, then the checkpoint of the fourth.
    assert_eq!(sync.stats().applied, 7, "{:?}", sync.stats());
}

/// Both windows at 1 (the window-1 baseline of the bench): each release must issue the next fetch
/// itself, as no other answer is in flight to do it.
#[tokio::test(start_paused = true)]
async fn one_request_in_flight_still_syncs() {
    let server = TestChain::build(1, 8 * 3 + 4);
    let hub = MockHub::new(HubConfig { seed: 3, latency: Duration::from_millis(20), ..Default::default() });
    let node = hub.node(Services::NONE);
    let dir = tempfile::tempdir().unwrap();
    let chain = fresh_chain(&server, &dir);
    let mut config = HistoryConfig::default();
    let one = |q: petrel_sync_api::queue::QueueConfig| petrel_sync_api::queue::QueueConfig {
        window: 1,
        per_peer: 1,
        initial_per_peer: 1,
        ..q
    };
    config.batch_sets = one(config.batch_sets);
    config.chunks = one(config.chunks);
    let mut sync = HistoryMacroSync::new(node.clone(), chain.clone().into(), config);
    let peer = serve(&hub, &server, Services::HISTORY_NODE);
    hub.connect(node.peer_id(), peer.peer_id()).unwrap();
    sync.add_peer(peer.peer_id());
    let v = tokio::time::timeout(Duration::from_secs(600), sync.next()).await.expect("a verdict in time");
    assert!(matches!(v, Some(MacroSyncReturn::Good(_))), "{v:?}");
    assert_eq!(chain.read().unwrap().head().macro_hash, server.chain.read().unwrap().head().macro_hash);
}

/// Collects verdicts until `done` holds for them (or the virtual deadline passes).
async fn verdicts_until<N: petrel_network_api::Network>(
    sync: &mut HistoryMacroSync<N>,
    mut done: impl FnMut(&[MacroSyncReturn]) -> bool,
) -> Vec<MacroSyncReturn> {
    let mut verdicts = Vec::new();
    while !done(&verdicts) {
        let v = tokio::time::timeout(Duration::from_secs(600), sync.next()).await;
        match v {
            Ok(Some(v)) => verdicts.push(v),
            _ => panic!("no further verdict; so far {verdicts:?}"),
        }
    }
    verdicts
}

/// Two groups of peers on forks that share two epochs: the round is cut where they differ (the
/// shared part is fetched from all four), the branch whose blocks after the fork carry no valid
/// justification fails and costs the peers that served it, and the node ends on the branch its
/// justifications prove.
#[tokio::test(start_paused = true)]
async fn two_groups_on_forks_split_the_round_and_the_node_ends_on_the_proven_chain() {
    let honest = TestChain::build(1, 8 * 6 + 4);
    let fork = honest.fork_after(8 * 2, 1, 8 * 6 + 4);
    assert_eq!(honest.blocks[8 * 2 - 1].hash(), fork.blocks[8 * 2 - 1].hash(), "two epochs shared");
    assert_ne!(honest.blocks[8 * 2].hash(), fork.blocks[8 * 2].hash());
    let hub = MockHub::new(HubConfig { seed: 11, latency: Duration::from_millis(20), ..Default::default() });
    let node = hub.node(Services::NONE);
    let dir = tempfile::tempdir().unwrap();
    let chain = fresh_chain(&honest, &dir);
    let mut sync = HistoryMacroSync::new(node.clone(), chain.clone().into(), HistoryConfig::default());
    // Three peers serve the fork, whose blocks after block 16 prove nothing; one serves the
    // honest chain.
    let tamper = petrel_test_utils::conformance::Tamper::BatchSetAbove(16);
    let forked: Vec<_> =
        (0..3).map(|_| petrel_test_utils::serve_tampered(&hub, &fork, Services::HISTORY_NODE, tamper)).collect();
    let good = serve(&hub, &honest, Services::HISTORY_NODE);
    for p in forked.iter().chain([&good]) {
        hub.connect(node.peer_id(), p.peer_id()).unwrap();
        sync.add_peer(p.peer_id());
    }
    let forked_ids: Vec<_> = forked.iter().map(|n| n.peer_id()).collect();
    let verdicts = verdicts_until(&mut sync, |v| {
        v.contains(&MacroSyncReturn::Good(good.peer_id()))
            && forked_ids.iter().all(|p| node.is_banned(p) || v.contains(&MacroSyncReturn::Outdated(*p)))
    })
    .await;
    let theirs = honest.chain.read().unwrap().head();
    assert_eq!(chain.read().unwrap().head().macro_hash, theirs.macro_hash, "{verdicts:?}");
    let stats = sync.stats();
    assert!(stats.splits >= 1, "the round was cut at the fork: {stats:?}");
    assert!(forked_ids.iter().any(|p| node.is_banned(p)), "a peer that served an unproven block is banned");
    for p in &forked_ids {
        assert!(node.score(p) < 0 || node.is_banned(p), "every peer of the fork pays: {p:?}");
    }
    assert!(!node.is_banned(&good.peer_id()) && node.score(&good.peer_id()) == 0);
}

/// Two groups on forks that are both signed (the validators signed both): the node ends on one
/// whole branch, and the peers of the other are found on another chain (penalised, Outdated).
#[tokio::test(start_paused = true)]
async fn peers_of_the_branch_not_taken_are_found_on_another_chain() {
    let a = TestChain::build(1, 8 * 5 + 4);
    let b = a.fork_after(8 * 2, 1, 8 * 5 + 4);
    let hub = MockHub::new(HubConfig { seed: 12, latency: Duration::from_millis(20), ..Default::default() });
    let node = hub.node(Services::NONE);
    let dir = tempfile::tempdir().unwrap();
    let chain = fresh_chain(&a, &dir);
    let mut sync = HistoryMacroSync::new(node.clone(), chain.clone().into(), HistoryConfig::default());
    let group_a: Vec<_> = (0..2).map(|_| serve(&hub, &a, Services::HISTORY_NODE)).collect();
    let group_b: Vec<_> = (0..2).map(|_| serve(&hub, &b, Services::HISTORY_NODE)).collect();
    for p in group_a.iter().chain(&group_b) {
        hub.connect(node.peer_id(), p.peer_id()).unwrap();
        sync.add_peer(p.peer_id());
    }
    let verdicts = verdicts_until(&mut sync, |v| v.len() == 4).await;
    let ours = chain.read().unwrap().head().macro_hash;
    let (winners, losers) = if ours == a.chain.read().unwrap().head().macro_hash {
        (&group_a, &group_b)
    } else {
        assert_eq!(ours, b.chain.read().unwrap().head().macro_hash, "one whole branch");
        (&group_b, &group_a)
    };
    for w in winners {
        assert!(verdicts.contains(&MacroSyncReturn::Good(w.peer_id())), "{verdicts:?}");
    }
    for l in losers {
        assert!(verdicts.contains(&MacroSyncReturn::Outdated(l.peer_id())), "{verdicts:?}");
        assert!(node.score(&l.peer_id()) < 0 && !node.is_banned(&l.peer_id()), "penalised, not banned");
    }
    let stats = sync.stats();
    assert!(stats.splits >= 1 && stats.other_chain == 2, "{stats:?}");
}

mod manual {
    //! The machine driven by hand: answers come from a serving store at once, jobs run only when
    //! the test says so.

    use petrel_protocol::AnyRequest;
    use petrel_sync_api::testing::{Harness, requests};

    use super::*;

    /// Answers every request at once (recording them and the verdicts) and returns the jobs
    /// asked for.
    fn run(
        h: &mut Harness<HistoryMachine>,
        mut actions: Vec<Action<HistoryJob>>,
        server: &TestChain,
        asked: &mut Vec<AnyRequest>,
        verdicts: &mut Vec<MacroSyncReturn>,
    ) -> Vec<(JobId, HistoryJob)> {
        let mut jobs = Vec::new();
        while !actions.is_empty() {
            let mut next = Vec::new();
            for (id, _, request) in requests(&actions) {
                let response = answer(&request, &server.chain.read().unwrap());
                asked.push(request);
                next.extend(h.respond(id, Ok(response)));
            }
            for a in actions {
                match a {
                    Action::Apply { job, work } => jobs.push((job, work)),
                    Action::Emit(v) => verdicts.push(v),
                    _ => {}
                }
            }
            actions = next;
        }
        jobs
    }

    fn batch_sets_asked(asked: &[AnyRequest]) -> Vec<Blake2bHash> {
        asked
            .iter()
            .filter_map(|r| match r {
                AnyRequest::BatchSet(b) => Some(b.hash),
                _ => None,
            })
            .collect()
    }

    /// Lists of two epochs from a chain of six: while the first job has not run, the round's
    /// peers are asked what follows and the later epochs download (the reference waits for an
    /// empty job queue before it takes the next cluster); when the jobs run, one round syncs all.
    #[test]
    fn the_next_epochs_download_while_the_first_job_waits() {
        let server = TestChain::build(1, 8 * 6 + 4);
        let dir = tempfile::tempdir().unwrap();
        let chain = fresh_chain(&server, &dir);
        let config = HistoryConfig { max_epochs: 2, keep_downloads: false, ..HistoryConfig::default() };
        let mut h = Harness::<HistoryMachine>::new(config, HistoryView::of(&chain.read().unwrap()));
        let peer = PeerId::from_index(1);
        let (mut asked, mut verdicts) = (Vec::new(), Vec::new());
        let first = h.join(peer, Services::HISTORY_NODE);
        let mut jobs = run(&mut h, first, &server, &mut asked, &mut verdicts);
        assert_eq!(jobs.len(), 1, "one job at a time");
        let epoch_hash = |e: u32| server.blocks[(8 * e - 1) as usize].hash();
        let fetched = batch_sets_asked(&asked);
        assert!(fetched.contains(&epoch_hash(3)), "epoch 3 (after the first list) is fetched: {fetched:?}");
        let extension = asked.iter().any(|r| matches!(r, AnyRequest::MacroChain(m) if m.locators == [epoch_hash(2)]));
        assert!(extension, "the peer was asked what follows epoch 2");
        assert!(h.machine.stats().extensions >= 1);
        // Run the jobs one by one, answering what they cause.
        while let Some((job, work)) = jobs.pop() {
            let outcome = run_job(&chain.clone().into(), work);
            assert!(matches!(outcome, HistoryOutcome::Applied { .. }), "{outcome:?}");
            h.view = HistoryView::of(&chain.read().unwrap());
            let actions = h.input(Input::Applied { job, outcome });
            jobs.extend(run(&mut h, actions, &server, &mut asked, &mut verdicts));
        }
        assert_eq!(verdicts, [MacroSyncReturn::Good(peer)]);
        assert_eq!(chain.read().unwrap().head().macro_hash, server.chain.read().unwrap().head().macro_hash);
        let stats = h.machine.stats();
        assert_eq!((stats.rounds, stats.applied), (1, 7), "one round, six epochs and the checkpoint: {stats:?}");
    }

    /// With one batch set allowed to wait, download stops a window ahead of the job that has not
    /// run: what waits for apply stays bounded however long the chain.
    #[test]
    fn download_waits_for_apply_beyond_the_bounds() {
        let server = TestChain::build(1, 8 * 12);
        let dir = tempfile::tempdir().unwrap();
        let chain = fresh_chain(&server, &dir);
        let config =
            HistoryConfig { max_pending: 1, max_held_chunks: 2, keep_downloads: false, ..HistoryConfig::default() };
        let window = config.batch_sets.window;
        let mut h = Harness::<HistoryMachine>::new(config, HistoryView::of(&chain.read().unwrap()));
        let (mut asked, mut verdicts) = (Vec::new(), Vec::new());
        let first = h.join(PeerId::from_index(1), Services::HISTORY_NODE);
        let jobs = run(&mut h, first, &server, &mut asked, &mut verdicts);
        assert_eq!(jobs.len(), 1);
        let fetched = batch_sets_asked(&asked).len();
        // The job's batch set, one pending, a full window: the other epochs wait.
        assert_eq!(fetched, 1 + 1 + window, "{asked:?}");
        let chunks = asked.iter().filter(|r| matches!(r, AnyRequest::HistoryChunk(_))).count();
        assert!(chunks < 12 * 2, "chunks stop too: {chunks}");
    }
}

mod adversarial {
    //! Bad answers, stalls and departures, the machine driven by hand: every answer comes from a
    //! serving store at once unless the test replaces or holds it; jobs run in order.

    use petrel_consensus::handlers::Answer;
    use petrel_network_api::{Penalty, RequestError};
    use petrel_protocol::AnyRequest;
    use petrel_sync_api::testing::Harness;

    use super::*;

    /// Replaces an answer: `None` keeps the honest one; `Some(None)` holds the request (never
    /// answered); `Some(Some(r))` answers `r`.
    type Tamper<'a> =
        &'a mut dyn FnMut(PeerId, &AnyRequest, &AnyResponse) -> Option<Option<Result<AnyResponse, RequestError>>>;

    struct Run {
        h: Harness<HistoryMachine>,
        chain: SharedChain,
        server: TestChain,
        _dir: tempfile::TempDir,
        /// Every action seen.
        seen: Vec<Action<HistoryJob>>,
        /// Requests held unanswered: (id, peer, request).
        held: Vec<(RequestId, PeerId, AnyRequest)>,
        /// Drop apply jobs instead of running them (a process that dies before it applies).
        skip_apply: bool,
    }

    impl Run {
        fn new(server: TestChain, config: HistoryConfig) -> Self {
            let dir = tempfile::tempdir().unwrap();
            let chain = fresh_chain(&server, &dir);
            let h = Harness::<HistoryMachine>::new(config, HistoryView::of(&chain.read().unwrap()));
            Self { h, chain, server, _dir: dir, seen: Vec::new(), held: Vec::new(), skip_apply: false }
        }

        /// A new machine on the same store (a restarted process).
        fn restart(self, config: HistoryConfig) -> Self {
            let h = Harness::<HistoryMachine>::new(config, HistoryView::of(&self.chain.read().unwrap()));
            Self { h, seen: Vec::new(), held: Vec::new(), skip_apply: false, ..self }
        }

        fn kept(&self) -> Vec<(petrel_blockchain::DownloadKey, Vec<u8>)> {
            self.chain.read().unwrap().downloads().above(0, usize::MAX).unwrap()
        }

        fn asked(&self, type_id: u16) -> usize {
            self.seen
                .iter()
                .filter(|a| matches!(a, Action::Request { request, .. } if request.type_id() == type_id))
                .count()
        }

        fn input(&mut self, input: Input<HistoryOutcome>) -> Vec<Action<HistoryJob>> {
            self.h.view = HistoryMachine::view(&self.chain.clone().into(), &input);
            let actions = self.h.input(input);
            self.seen.extend(actions.iter().cloned());
            actions
        }

        /// Feeds `first` and everything it causes: answers (through `tamper`), then jobs one at a
        /// time, until nothing is left but held requests.
        fn drive(&mut self, first: Vec<Action<HistoryJob>>, tamper: Tamper<'_>) {
            let mut actions: VecDeque<_> = first.into();
            let mut jobs = VecDeque::new();
            loop {
                while let Some(a) = actions.pop_front() {
                    match a {
                        Action::Request { id, peer, request } => {
                            let truth = answer(&request, &self.server.chain.read().unwrap());
                            let response = match tamper(peer, &request, &truth) {
                                None => Ok(truth),
                                Some(Some(r)) => r,
                                Some(None) => {
                                    self.held.push((id, peer, request));
                                    continue;
                                }
                            };
                            actions.extend(self.input(Input::Response { id, response }));
                        }
                        Action::Apply { job, work } => jobs.push_back((job, work)),
                        _ => {}
                    }
                }
                let Some((job, work)) = jobs.pop_front() else { return };
                if self.skip_apply && matches!(work, HistoryJob::Apply(_)) {
                    continue;
                }
                let outcome = run_job(&self.chain.clone().into(), work);
                actions.extend(self.input(Input::Applied { job, outcome }));
            }
        }

        fn join(&mut self, peer: PeerId, tamper: Tamper<'_>) {
            let first = self.input(Input::PeerJoined { peer, services: Some(Services::HISTORY_NODE) });
            self.drive(first, tamper);
        }

        fn penalties(&self, of: PeerId) -> Vec<Penalty> {
            self.seen
                .iter()
                .filter_map(|a| match a {
                    Action::Penalize { peer, penalty } if *peer == of => Some(*penalty),
                    _ => None,
                })
                .collect()
        }

        fn verdicts(&self) -> Vec<MacroSyncReturn> {
            self.seen
                .iter()
                .filter_map(|a| match a {
                    Action::Emit(v) => Some(*v),
                    _ => None,
                })
                .collect()
        }

        fn synced(&self) -> bool {
            self.chain.read().unwrap().head().macro_hash == self.server.chain.read().unwrap().head().macro_hash
        }
    }

    /// Two epochs of two batch sets each (small batch-set threshold), then a checkpoint.
    fn server() -> TestChain {
        let producer = petrel_test_utils::test_producer(2, 3);
        let genesis = producer.genesis(1, 1_700_000_000_000, petrel_primitives::Policy::TEST);
        let options = ChainOptions { durable: false, batch_set_max_history_bytes: 64, ..Default::default() };
        TestChain::build_with(producer, genesis, 8 * 2 + 4, options)
    }

    /// Every kind of bad answer the issue lists, sent once by one of two peers: a typed refusal,
    /// the right penalty for that peer, and the other peer finishes the sync.
    #[test]
    fn each_bad_answer_costs_its_sender_and_the_other_peer_finishes() {
        type Edit = fn(&mut AnyResponse, &Blockchain);
        fn info(r: &mut AnyResponse) -> &mut BatchSetInfo {
            match r {
                AnyResponse::BatchSet(Ok(i)) => i,
                other => panic!("not a batch set: {other:?}"),
            }
        }
        fn chunk(r: &mut AnyResponse) -> &mut HistoryChunk {
            match r {
                AnyResponse::HistoryChunk(Ok(c)) => c,
                other => panic!("not a chunk: {other:?}"),
            }
        }
        let ban = Severity::Malicious;
        // (name, request type it replaces, the edit, expected severity of the sender's penalty)
        let cases: Vec<(&str, u16, Edit, Severity)> = vec![
            ("empty batch set", RequestBatchSet::TYPE_ID, |r, _| info(r).batch_sets.clear(), ban),
            (
                "batch set of another block",
                RequestBatchSet::TYPE_ID,
                |r, c| *r = AnyResponse::BatchSet(RequestBatchSet { hash: c.head().macro_hash }.answer(c)),
                ban,
            ),
            (
                "batch sets out of order",
                RequestBatchSet::TYPE_ID,
                |r, _| {
                    let i = info(r);
                    let first = i.batch_sets[0].clone();
                    i.batch_sets.insert(1, first);
                },
                ban,
            ),
            (
                "no justification",
                RequestBatchSet::TYPE_ID,
                |r, _| {
                    let i = info(r);
                    i.batch_sets.last_mut().unwrap().0.justification = None;
                    if let Some(e) = &mut i.election_macro_block {
                        e.justification = None;
                    }
                },
                ban,
            ),
            ("election block missing", RequestBatchSet::TYPE_ID, |r, _| info(r).election_macro_block = None, ban),
            (
                "size proof against another root",
                RequestBatchSet::TYPE_ID,
                |r, _| info(r).batch_sets.last_mut().unwrap().1.leaves += 1,
                ban,
            ),
            (
                "history larger than an epoch can hold (refused before any chunk is planned)",
                RequestBatchSet::TYPE_ID,
                |r, _| info(r).batch_sets.last_mut().unwrap().1.leaves = u64::MAX,
                ban,
            ),
            ("chunk with a wrong proof", RequestHistoryChunk::TYPE_ID, |r, _| chunk(r).items.swap(0, 1), ban),
            (
                "short chunk",
                RequestHistoryChunk::TYPE_ID,
                |r, _| {
                    chunk(r).items.pop();
                },
                ban,
            ),
            (
                "chunk of an epoch not asked",
                RequestHistoryChunk::TYPE_ID,
                |r, c| {
                    let policy = *c.policy();
                    let number = policy.election_block_of(2);
                    let other = RequestHistoryChunk { epoch_number: 2, block_number: number, chunk_index: 0 };
                    *r = AnyResponse::HistoryChunk(other.answer(c));
                },
                ban,
            ),
        ];
        for (name, type_id, edit, severity) in cases {
            let mut run = Run::new(server(), HistoryConfig::default());
            let (a, b) = (PeerId::from_index(1), PeerId::from_index(2));
            let mut culprit = None;
            let server_chain = run.server.chain.clone();
            let mut tamper = |peer: PeerId, request: &AnyRequest, truth: &AnyResponse| {
                if culprit.is_some() || request.type_id() != type_id {
                    return None;
                }
                culprit = Some(peer);
                let mut bad = truth.clone();
                edit(&mut bad, &server_chain.read().unwrap());
                Some(Some(Ok(bad)))
            };
            let first = run.input(Input::PeerJoined { peer: a, services: Some(Services::HISTORY_NODE) });
            let second = run.input(Input::PeerJoined { peer: b, services: Some(Services::HISTORY_NODE) });
            run.drive(first.into_iter().chain(second).collect(), &mut tamper);
            let culprit = culprit.unwrap_or_else(|| panic!("{name}: no request of that type was sent"));
            let other = if culprit == a { b } else { a };
            let penalties = run.penalties(culprit);
            assert!(penalties.iter().any(|p| p.severity == severity), "{name}: {culprit:?} got {penalties:?}");
            assert!(run.penalties(other).is_empty(), "{name}: the honest peer was penalised");
            assert!(run.synced(), "{name}: the other peer finishes the sync");
            assert!(run.verdicts().contains(&MacroSyncReturn::Good(other)), "{name}: {:?}", run.verdicts());
        }
    }

    /// An answer over the size limit (the network refuses it) costs an invalid-data penalty and is
    /// asked of the other peer; nobody is banned. A peer without the history service gets no
    /// history request at all.
    #[test]
    fn an_oversized_answer_is_retried_elsewhere_and_a_peer_without_the_service_is_not_asked() {
        let mut run = Run::new(server(), HistoryConfig::default());
        let (a, b, full) = (PeerId::from_index(1), PeerId::from_index(2), PeerId::from_index(3));
        let mut culprit = None;
        let mut tamper = |peer: PeerId, request: &AnyRequest, _: &AnyResponse| {
            if culprit.is_some() || request.type_id() != RequestHistoryChunk::TYPE_ID {
                return None;
            }
            culprit = Some(peer);
            Some(Some(Err(RequestError::ResponseTooLarge(11 << 20))))
        };
        let incompatible = run.input(Input::PeerJoined { peer: full, services: Some(Services::FULL_NODE) });
        assert!(incompatible.contains(&Action::Emit(MacroSyncReturn::Incompatible(full))), "{incompatible:?}");
        let first = run.input(Input::PeerJoined { peer: a, services: Some(Services::HISTORY_NODE) });
        let second = run.input(Input::PeerJoined { peer: b, services: Some(Services::HISTORY_NODE) });
        run.drive(incompatible.into_iter().chain(first).chain(second).collect(), &mut tamper);
        let culprit = culprit.expect("a chunk was asked");
        assert_eq!(run.penalties(culprit).iter().map(|p| p.severity).collect::<Vec<_>>(), [Severity::InvalidData]);
        assert!(run.synced());
        assert!(!run.seen.iter().any(|a| matches!(a, Action::Request { peer, .. } if *peer == full)));
        assert!(!run.seen.iter().any(|a| matches!(a, Action::Disconnect { .. })), "nobody is banned");
    }

    /// A peer that stops answering in the middle of the chunks: the chunk that blocks release is
    /// asked of the other peer once it has been in flight `hedge_after` (3 s), long before the
    /// 20 s timeout, and the sync completes.
    #[test]
    fn a_peer_that_stalls_mid_chunk_is_bypassed_before_the_timeout() {
        let config = HistoryConfig::default();
        let hedge = config.chunks.hedge_after.expect("hedging is on");
        assert!(hedge < config.chunks.timeout);
        let mut run = Run::new(server(), config);
        let (a, b) = (PeerId::from_index(1), PeerId::from_index(2));
        // b answers discovery and batch sets, then holds every chunk request.
        let mut stall = |peer: PeerId, request: &AnyRequest, _: &AnyResponse| {
            (peer == b && request.type_id() == RequestHistoryChunk::TYPE_ID).then_some(None)
        };
        let first = run.input(Input::PeerJoined { peer: a, services: Some(Services::HISTORY_NODE) });
        let second = run.input(Input::PeerJoined { peer: b, services: Some(Services::HISTORY_NODE) });
        run.drive(first.into_iter().chain(second).collect(), &mut stall);
        assert!(!run.held.is_empty(), "b holds chunk requests");
        assert!(!run.synced(), "a chunk blocks release");
        // Just before hedge_after nothing new is asked; at it, the blocking chunk goes to a.
        run.h.now = Time::ZERO + (hedge - Duration::from_millis(1));
        assert!(run.input(Input::Tick).iter().all(|a| !matches!(a, Action::Request { .. })));
        let mut rounds = 0;
        while !run.synced() {
            rounds += 1;
            assert!(rounds < 20, "the sync does not get past the stalled chunks");
            run.h.now = run.h.now + hedge;
            assert!(run.h.now < Time::ZERO + run.h.machine.config.chunks.timeout * 3);
            let tick = run.input(Input::Tick);
            run.drive(tick, &mut stall);
        }
        let asked_a_for_held = run.held.iter().all(|(_, _, held)| {
            run.seen.iter().any(|x| matches!(x, Action::Request { peer, request, .. } if *peer == a && request == held))
        });
        assert!(asked_a_for_held, "every chunk b held was fetched from a");
        assert!(run.penalties(a).is_empty());
    }

    /// Every peer leaves in the middle of the sync: nothing is lost, nothing is banned, and the
    /// sync goes on from our head when a peer comes back.
    #[test]
    fn when_every_peer_leaves_mid_sync_it_resumes_when_one_returns() {
        let mut run = Run::new(server(), HistoryConfig::default());
        let a = PeerId::from_index(1);
        // a answers until the first chunk, then leaves.
        let mut answered = 0;
        let mut cut = |_: PeerId, request: &AnyRequest, _: &AnyResponse| {
            if request.type_id() == RequestHistoryChunk::TYPE_ID {
                answered += 1;
            }
            (answered > 1).then_some(None)
        };
        run.join(a, &mut cut);
        assert!(!run.synced());
        let left = run.input(Input::PeerLeft { peer: a });
        assert!(left.iter().all(|x| !matches!(x, Action::Request { .. } | Action::Penalize { .. })), "{left:?}");
        run.held.clear();
        // It comes back (or another peer arrives): discovery from our head, and the rest.
        run.join(a, &mut |_, _, _| None);
        assert!(run.synced());
        assert_eq!(run.verdicts(), [MacroSyncReturn::Good(a)]);
        assert!(run.penalties(a).is_empty());
    }

    /// A process that downloaded answers and died before applying them: the next one takes them
    /// back from the store instead of fetching them again, and the sync completes.
    #[test]
    fn a_restarted_machine_takes_back_what_it_downloaded_instead_of_fetching_it() {
        let mut run = Run::new(server(), HistoryConfig::default());
        run.skip_apply = true;
        let a = PeerId::from_index(1);
        run.join(a, &mut |_, _, _| None);
        let (sets, chunks) = (run.asked(RequestBatchSet::TYPE_ID), run.asked(RequestHistoryChunk::TYPE_ID));
        assert!(sets >= 3 && chunks >= 3, "everything was downloaded: {sets} batch sets, {chunks} chunks");
        assert!(!run.synced(), "nothing was applied");
        assert_eq!(run.kept().len(), sets + chunks, "and everything kept");
        let mut run = run.restart(HistoryConfig::default());
        run.join(a, &mut |_, _, _| None);
        assert!(run.synced());
        assert_eq!(run.verdicts(), [MacroSyncReturn::Good(a)]);
        assert_eq!(
            (run.asked(RequestBatchSet::TYPE_ID), run.asked(RequestHistoryChunk::TYPE_ID)),
            (0, 0),
            "nothing kept is fetched again"
        );
        assert!(run.kept().is_empty(), "applied, then dropped");
    }

    /// A kept answer is verified like a fresh one: a bad one is dropped (with everything kept), costs
    /// no peer anything, and is fetched again.
    #[test]
    fn a_bad_kept_answer_is_dropped_and_fetched_again() {
        let mut run = Run::new(server(), HistoryConfig::default());
        run.skip_apply = true;
        let a = PeerId::from_index(1);
        run.join(a, &mut |_, _, _| None);
        let (key, mut bad) = run
            .kept()
            .iter()
            .find_map(|(k, bytes)| {
                let d = codec::decode::<Download>(bytes, usize::MAX).unwrap();
                matches!(d, Download::Chunk { .. }).then_some((*k, d))
            })
            .expect("a kept chunk");
        if let Download::Chunk { chunk, .. } = &mut bad {
            chunk.items.swap(0, 1);
        }
        run.chain.read().unwrap().downloads().put(&[(key, codec::encode(&bad).unwrap())]).unwrap();
        let mut run = run.restart(HistoryConfig::default());
        run.join(a, &mut |_, _, _| None);
        assert!(run.synced());
        assert!(run.penalties(a).is_empty(), "the peer did not send the bad chunk");
        assert!(run.asked(RequestHistoryChunk::TYPE_ID) > 0, "fetched again");
    }

    /// The round's peers are asked what follows it; the branch most of them list is taken, however
    /// fast a lone peer answers with another one, and nothing of the lone branch is fetched.
    #[test]
    fn the_branch_most_peers_list_decides_how_the_round_grows() {
        let config = HistoryConfig { max_epochs: 1, ..HistoryConfig::default() };
        let mut run = Run::new(server(), config);
        // The round asks its peers in id order: the liar is the first asked and the first to answer.
        let mut ids = [PeerId::from_index(1), PeerId::from_index(2), PeerId::from_index(3)];
        ids.sort();
        let [liar, a, b] = ids;
        let made_up = Blake2bHash([0xee; 32]);
        let epoch_1 = run.server.blocks[8 - 1].hash();
        // The liar answers "what follows epoch 1" with a made-up epoch, the others honestly.
        let mut lie = |peer: PeerId, request: &AnyRequest, truth: &AnyResponse| match (request, truth) {
            (AnyRequest::MacroChain(m), AnyResponse::MacroChain(Ok(honest)))
                if peer == liar && m.locators == [epoch_1] && !honest.epochs.is_empty() =>
            {
                let mut bad = honest.clone();
                bad.epochs = vec![made_up];
                bad.checkpoint = None;
                Some(Some(Ok(AnyResponse::MacroChain(Ok(bad)))))
            }
            // And it keeps its story: nothing follows its made-up epoch.
            (AnyRequest::MacroChain(m), _) if peer == liar && m.locators == [made_up] => {
                Some(Some(Ok(AnyResponse::MacroChain(Ok(MacroChain { epochs: vec![], checkpoint: None })))))
            }
            _ => None,
        };
        let mut first = Vec::new();
        for peer in [liar, a, b] {
            first.extend(run.input(Input::PeerJoined { peer, services: Some(Services::HISTORY_NODE) }));
        }
        run.drive(first, &mut lie);
        assert!(run.synced(), "{:?}", run.verdicts());
        assert!(run.h.machine.stats().extensions >= 1);
        let fetched_made_up = run
            .seen
            .iter()
            .any(|x| matches!(x, Action::Request { request: AnyRequest::BatchSet(r), .. } if r.hash == made_up));
        assert!(!fetched_made_up, "the lone branch was not fetched");
        let lied = run.seen.iter().any(|x| matches!(x, Action::Request { peer, request: AnyRequest::MacroChain(m), .. } if *peer == liar && m.locators == [epoch_1]));
        assert!(lied, "the liar was asked what follows epoch 1");
        assert!(run.penalties(a).is_empty() && run.penalties(b).is_empty());
    }
}
