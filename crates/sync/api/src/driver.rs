//! [`MachineDriver`]: the one async driver of every sync machine. It turns a machine's
//! [`Action`]s into network requests, jobs on the blocking pool, gossip verdicts, penalties and
//! events, and feeds answers, gossip, job outcomes and the time back as [`Input`]s. It implements
//! [`MacroSync`] for machines whose events are macro-sync verdicts and [`LiveSync`] for machines
//! whose events are live-sync events.
//!
//! Bounds: requests in flight are what the machine asked for (each machine bounds its own);
//! jobs run one at a time per lane, in the order asked, on tokio's blocking pool, so the network
//! event loop and request handlers never wait for verification or fsync (a machine puts jobs that
//! must not wait behind its main work, such as keeping downloads, on the background lane:
//! [`Machine::lane`]); events are handed to the
//! consumer before any more input is taken (so at most the events of one input wait), and gossip
//! is left unread meanwhile (its queue in the network is bounded).

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use futures::future::BoxFuture;
use futures::stream::{BoxStream, FuturesUnordered};
use futures::{FutureExt, Stream, StreamExt};
use petrel_network_api::{GossipMessage, Network, NetworkError, PeerId, RequestError};
use petrel_primitives::wire::HeadInfo;
use petrel_protocol::AnyResponse;
use tokio::time::{Instant, Sleep};

use crate::machine::{Action, Input, JobId, Machine, RequestId, Time};
use crate::{LiveSync, LiveSyncEvent, MacroSync, MacroSyncReturn};

/// Log target of the driver.
const TARGET: &str = "sync";

/// The least time between a tick and a wakeup already due when it is asked for.
const MIN_TICK_GAP: std::time::Duration = std::time::Duration::from_millis(1);

/// A subscription being set up, then its stream.
type Subscribing<G> = BoxFuture<'static, Result<BoxStream<'static, GossipMessage<G>>, NetworkError>>;

enum Gossip<G> {
    None,
    Subscribing(Subscribing<G>),
    Stream(BoxStream<'static, GossipMessage<G>>),
}

#[allow(clippy::large_enum_variant)] // one per request in flight, consumed at once
enum Done {
    Response(RequestId, Result<AnyResponse, RequestError>),
    Other,
}

/// A job running on the blocking pool: its id and outcome when done.
type Running<O> = BoxFuture<'static, (JobId, O)>;

/// Drives a [`Machine`] over a [`Network`] and its chain.
pub struct MachineDriver<M: Machine, N: Network> {
    machine: M,
    network: N,
    chain: M::Chain,
    in_flight: FuturesUnordered<BoxFuture<'static, Done>>,
    /// Per lane ([`Lane`] as index): jobs waiting, and the one running.
    jobs: [VecDeque<(JobId, M::Work)>; 2],
    running: [Option<Running<M::Outcome>>; 2],
    gossip: Gossip<M::Gossip>,
    ready: VecDeque<M::Event>,
    start: Instant,
    wakeup: Option<(Time, Pin<Box<Sleep>>)>,
    started: bool,
    waker: Option<Waker>,
    name: &'static str,
}

impl<M: Machine, N: Network> MachineDriver<M, N> {
    /// A driver for a new machine with `config`.
    pub fn new(network: N, chain: M::Chain, config: M::Config) -> Self {
        let name = std::any::type_name::<M>();
        Self {
            machine: M::new(config),
            network,
            chain,
            in_flight: FuturesUnordered::new(),
            jobs: [VecDeque::new(), VecDeque::new()],
            running: [None, None],
            gossip: Gossip::None,
            ready: VecDeque::new(),
            // The driver is the one place of the sync crates that reads the clock (tokio's, so a
            // paused test clock applies); machines get `Time` from it.
            #[allow(clippy::disallowed_methods)]
            start: Instant::now(),
            wakeup: None,
            started: false,
            waker: None,
            name: name.rsplit("::").next().unwrap_or(name),
        }
    }

    /// Follows a gossip topic: `subscribe` is the network's subscription (e.g.
    /// `network.subscribe::<BlockHeaders>()`); its messages reach the machine as
    /// [`Input::Gossip`].
    pub fn with_gossip(mut self, subscribe: Subscribing<M::Gossip>) -> Self {
        self.gossip = Gossip::Subscribing(subscribe);
        self
    }

    /// Starts syncing with a peer (its services are looked up on the network).
    pub fn peer_joined(&mut self, peer: PeerId) {
        let services = self.network.peer_info(&peer).map(|i| i.services);
        self.feed(Input::PeerJoined { peer, services });
    }

    /// Forgets a peer.
    pub fn peer_left(&mut self, peer: PeerId) {
        self.feed(Input::PeerLeft { peer });
    }

    /// Hands the machine a report from a component it coordinates.
    pub fn report(&mut self, report: M::Report) {
        self.feed(Input::Report(report));
    }

    /// The machine's counters.
    pub fn stats(&self) -> M::Stats {
        self.machine.stats()
    }

    /// The machine.
    pub fn machine(&self) -> &M {
        &self.machine
    }

    /// The chain handle.
    pub fn chain(&self) -> &M::Chain {
        &self.chain
    }

    fn now(&self) -> Time {
        Time::from(self.start.elapsed())
    }

    /// Feeds one input to the machine, then carries out what it asked.
    fn feed(&mut self, input: Input<M::Outcome, M::Gossip, M::Report>) {
        let view = M::view(&self.chain, &input);
        let now = self.now();
        self.machine.handle(input, now, &view);
        self.run_actions();
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    fn run_actions(&mut self) {
        while let Some(action) = self.machine.poll_action() {
            match action {
                Action::Request { id, peer, request } => {
                    tracing::trace!(target: TARGET, machine = self.name, %peer, request = request.name(), id, "request");
                    let promised =
                        self.network.peer_info(&peer).is_none_or(|i| i.services.contains(request.services()));
                    if !promised {
                        // Never sent to a peer whose services do not promise the type (it would
                        // penalise us for asking): the machine sees it refused.
                        tracing::debug!(target: TARGET, machine = self.name, %peer, request = request.name(), "not promised by the peer's services");
                        self.in_flight.push(async move { Done::Response(id, Err(RequestError::Unsupported)) }.boxed());
                        continue;
                    }
                    let net = self.network.clone();
                    self.in_flight.push(async move { Done::Response(id, request.send(&net, peer).await) }.boxed());
                }
                Action::Apply { job, work } => {
                    tracing::trace!(target: TARGET, machine = self.name, job, ?work, "job queued");
                    self.jobs[M::lane(&work) as usize].push_back((job, work));
                }
                Action::Emit(event) => {
                    tracing::debug!(target: TARGET, machine = self.name, ?event, "event");
                    self.ready.push_back(event);
                }
                Action::Validate { id, verdict } => {
                    tracing::trace!(target: TARGET, machine = self.name, ?id, ?verdict, "gossip verdict");
                    self.network.validate(id, verdict);
                }
                Action::Penalize { peer, penalty } => {
                    tracing::debug!(target: TARGET, machine = self.name, %peer, %penalty, "penalizing peer");
                    self.network.penalize(peer, penalty);
                }
                Action::Disconnect { peer, reason } => {
                    tracing::debug!(target: TARGET, machine = self.name, %peer, ?reason, "disconnecting peer");
                    let net = self.network.clone();
                    self.in_flight.push(
                        async move {
                            net.disconnect(peer, reason).await;
                            Done::Other
                        }
                        .boxed(),
                    );
                }
            }
        }
        self.start_jobs();
        self.schedule_wakeup();
    }

    fn start_jobs(&mut self) {
        for lane in 0..self.jobs.len() {
            self.start_job(lane);
        }
    }

    fn start_job(&mut self, lane: usize) {
        if self.running[lane].is_some() {
            return;
        }
        let Some((job, work)) = self.jobs[lane].pop_front() else { return };
        let chain = self.chain.clone();
        // Jobs are the machines' only heavy or durable work; the driver runs them off the executor.
        #[allow(clippy::disallowed_methods)]
        let handle = tokio::task::spawn_blocking(move || M::execute(&chain, work));
        self.running[lane] = Some(
            async move {
                match handle.await {
                    Ok(outcome) => (job, outcome),
                    // A job panicked: a bug in chain code, not something to recover from here.
                    Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                    // Cancelled: the runtime is shutting down, and this driver with it.
                    Err(_) => futures::future::pending().await,
                }
            }
            .boxed(),
        );
    }

    fn schedule_wakeup(&mut self) {
        match self.machine.next_wakeup() {
            Some(at) if self.wakeup.as_ref().map(|(t, _)| *t) != Some(at) => {
                // A wakeup already due is deferred by a millisecond: a machine that keeps asking
                // for the same past instant costs at most a tick per millisecond, never a busy loop.
                #[allow(clippy::disallowed_methods)] // the driver reads the clock
                let deadline = (self.start + at.since_start()).max(Instant::now() + MIN_TICK_GAP);
                self.wakeup = Some((at, Box::pin(tokio::time::sleep_until(deadline))));
            }
            Some(_) => {}
            None => self.wakeup = None,
        }
    }
}

impl<M: Machine, N: Network> Stream for MachineDriver<M, N> {
    type Item = M::Event;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<M::Event>> {
        let this = self.get_mut();
        if !this.started {
            // Time starts: a first tick lets the machine set its timers and decide on nothing.
            this.started = true;
            this.feed(Input::Tick);
        }
        if let Gossip::Subscribing(sub) = &mut this.gossip
            && let Poll::Ready(result) = sub.poll_unpin(cx)
        {
            this.gossip = match result {
                Ok(stream) => Gossip::Stream(stream),
                Err(e) => {
                    tracing::error!(target: TARGET, machine = this.name, error = %e, "cannot subscribe to gossip");
                    Gossip::None
                }
            };
        }
        loop {
            if let Some(v) = this.ready.pop_front() {
                return Poll::Ready(Some(v));
            }
            let done = this.running.iter_mut().enumerate().find_map(|(lane, running)| match running.as_mut() {
                Some(job) => match job.poll_unpin(cx) {
                    Poll::Ready(done) => Some((lane, done)),
                    Poll::Pending => None,
                },
                None => None,
            });
            if let Some((lane, (job, outcome))) = done {
                this.running[lane] = None;
                tracing::trace!(target: TARGET, machine = this.name, job, ?outcome, "job done");
                this.feed(Input::Applied { job, outcome });
                continue;
            }
            if let Some((_, sleep)) = this.wakeup.as_mut()
                && sleep.as_mut().poll(cx).is_ready()
            {
                this.wakeup = None;
                this.feed(Input::Tick);
                continue;
            }
            // Here no event waits for the consumer (they are handed out first).
            if let Gossip::Stream(stream) = &mut this.gossip
                && let Poll::Ready(message) = stream.poll_next_unpin(cx)
            {
                match message {
                    Some(message) => this.feed(Input::Gossip(message)),
                    None => this.gossip = Gossip::None,
                }
                continue;
            }
            match this.in_flight.poll_next_unpin(cx) {
                Poll::Ready(Some(Done::Response(id, response))) => this.feed(Input::Response { id, response }),
                Poll::Ready(Some(Done::Other)) => {}
                Poll::Ready(None) | Poll::Pending => {
                    this.waker = Some(cx.waker().clone());
                    return Poll::Pending;
                }
            }
        }
    }
}

impl<M: Machine<Event = LiveSyncEvent>, N: Network> LiveSync for MachineDriver<M, N> {
    fn add_peer(&mut self, peer: PeerId) {
        self.peer_joined(peer);
    }

    fn remove_peer(&mut self, peer: &PeerId) {
        self.peer_left(*peer);
    }

    fn peers(&self) -> Vec<PeerId> {
        self.machine.peers()
    }

    fn peer_head(&mut self, peer: PeerId, head: HeadInfo) {
        self.feed(Input::PeerHead { peer, head });
    }

    fn num_peers(&self) -> usize {
        self.machine.num_peers()
    }
}

impl<M: Machine<Event = MacroSyncReturn>, N: Network> MacroSync for MachineDriver<M, N> {
    fn add_peer(&mut self, peer: PeerId) {
        self.peer_joined(peer);
    }

    fn remove_peer(&mut self, peer: &PeerId) {
        self.peer_left(*peer);
    }

    fn drain_peers(&mut self) -> Vec<PeerId> {
        self.machine.drain_peers()
    }

    fn num_peers(&self) -> usize {
        self.machine.num_peers()
    }

    fn target(&self) -> Option<u32> {
        self.machine.target()
    }

    fn proof_stats(&self) -> Option<crate::ProofStats> {
        self.machine.proof_stats()
    }
}
