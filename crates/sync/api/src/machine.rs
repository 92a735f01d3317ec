//! The one shape of every sync machine: inputs in, actions out, no I/O.
//!
//! A [`Machine`] sees only [`Input`]s (peers joining and leaving, typed answers to its requests,
//! gossip, peers' heads, the outcome of work it asked for, and the time) together with a cheap
//! read-only view of the chain, and only ever emits [`Action`]s: send a request, apply some work,
//! report an event (a macro sync's verdict, a live sync's event), judge a gossip message, penalise
//! or disconnect a peer. It never waits, sleeps, logs, reads a clock or writes the chain;
//! its driver ([`crate::driver::MachineDriver`]) does all of that and logs from the actions. So a
//! rule is tested by feeding inputs and reading actions, with no runtime and no network.
//!
//! CPU-heavy or durable work (verifying justifications, pushing blocks, writing the light-chain
//! file) is an [`Action::Apply`] whose `work` the driver runs with [`Machine::execute`] on the
//! blocking pool, one job at a time per machine and in the order asked, feeding the result back
//! as [`Input::Applied`].

use std::collections::{HashMap, VecDeque};
use std::ops::Add;
use std::time::Duration;

use petrel_network_api::{
    DisconnectReason, GossipId, GossipMessage, PeerId, Penalty, PenaltyReason, RequestError, Services, Severity,
    Verdict,
};
use petrel_primitives::wire::HeadInfo;
use petrel_protocol::{AnyRequest, AnyResponse};

use crate::MacroSyncReturn;

/// Identifies a request issued by a machine.
pub type RequestId = u64;
/// Identifies a job (an [`Action::Apply`]) issued by a machine.
pub type JobId = u64;

/// Time as a machine sees it: a monotonic instant, measured from its driver's start. Machines get
/// it as input; tests make it up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(Duration);

impl Time {
    /// The driver's start.
    pub const ZERO: Time = Time(Duration::ZERO);

    /// `ms` milliseconds after the start.
    pub const fn from_millis(ms: u64) -> Self {
        Time(Duration::from_millis(ms))
    }

    /// The time since the start.
    pub const fn since_start(self) -> Duration {
        self.0
    }

    /// The time from `earlier` to `self` (zero if `earlier` is later).
    pub fn since(self, earlier: Time) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

impl Add<Duration> for Time {
    type Output = Time;
    fn add(self, d: Duration) -> Time {
        Time(self.0.saturating_add(d))
    }
}

impl From<Duration> for Time {
    fn from(d: Duration) -> Self {
        Time(d)
    }
}

/// Everything a machine is ever told. `O` is the machine's job outcome, `G` its gossip item, `R`
/// what the components it coordinates report to it.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // handled one at a time, never stored
pub enum Input<O, G = (), R = ()> {
    /// Start syncing with a peer advertising `services` (`None`: unknown to the network).
    PeerJoined {
        /// The peer.
        peer: PeerId,
        /// What it serves.
        services: Option<Services>,
    },
    /// The peer left or is handed elsewhere: forget it; its outstanding answers are ignored.
    PeerLeft {
        /// The peer.
        peer: PeerId,
    },
    /// The answer to request `id`, or why there is none.
    Response {
        /// The request's id.
        id: RequestId,
        /// The typed answer.
        response: Result<AnyResponse, RequestError>,
    },
    /// A gossip message on the machine's topic; judge it with [`Action::Validate`].
    Gossip(GossipMessage<G>),
    /// A peer's head, as another component learned it (the syncer's head rounds).
    PeerHead {
        /// The peer.
        peer: PeerId,
        /// Its head.
        head: HeadInfo,
    },
    /// Job `job` finished.
    Applied {
        /// The job's id.
        job: JobId,
        /// What [`Machine::execute`] returned.
        outcome: O,
    },
    /// Time passed (the driver sends it at [`Machine::next_wakeup`]).
    Tick,
    /// A report from a component the machine coordinates (the syncer: verdicts of the macro sync,
    /// events of the live sync), handed in by the driver's owner.
    Report(R),
}

/// Where a job runs (see [`Machine::lane`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    /// The machine's main work (verification, applying), in order.
    Main = 0,
    /// Work that must not wait behind the main lane (e.g. keeping downloads), in order.
    Background = 1,
}

/// Everything a machine ever does. `W` is the machine's work, `E` the events it reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action<W, E = MacroSyncReturn> {
    /// Send `request` to `peer`; the answer comes back as [`Input::Response`] with this `id`.
    Request {
        /// Echoed in the response.
        id: RequestId,
        /// To whom.
        peer: PeerId,
        /// What.
        request: AnyRequest,
    },
    /// Run `work` off the async executor; the outcome comes back as [`Input::Applied`].
    Apply {
        /// Echoed in the outcome.
        job: JobId,
        /// The work.
        work: W,
    },
    /// Report an event (a macro sync's verdict about a peer, a live sync's event).
    Emit(E),
    /// The verdict on a gossip message (propagate, drop, or drop and penalise its sender).
    Validate {
        /// The message.
        id: GossipId,
        /// The verdict.
        verdict: Verdict,
    },
    /// Lower a peer's reputation.
    Penalize {
        /// The peer.
        peer: PeerId,
        /// How much and why.
        penalty: Penalty,
    },
    /// Disconnect a peer ([`DisconnectReason::Malicious`] also bans it).
    Disconnect {
        /// The peer.
        peer: PeerId,
        /// Why.
        reason: DisconnectReason,
    },
}

/// A sans-I/O sync machine. See the module documentation.
pub trait Machine: Send + Unpin + 'static {
    /// Settings.
    type Config;
    /// The shared chain handle the driver reads views from and runs work on.
    type Chain: Clone + Send + Sync + Unpin + 'static;
    /// What the machine may read of the chain: a cheap snapshot.
    type View;
    /// Heavy or durable work, run by [`Machine::execute`] on the blocking pool.
    type Work: std::fmt::Debug + Send + Unpin + 'static;
    /// What a job returns.
    type Outcome: std::fmt::Debug + Send + 'static;
    /// What the driver yields ([`MacroSyncReturn`] for macro syncs).
    type Event: std::fmt::Debug + Send + Unpin + 'static;
    /// The gossip items the machine follows (`()` if none).
    type Gossip: std::fmt::Debug + Send + Unpin + 'static;
    /// What the components it coordinates report to it (`()` if none).
    type Report: std::fmt::Debug + Send + Unpin + 'static;
    /// Counters for progress, tests and benches.
    type Stats: Copy;

    /// A machine with no peers.
    fn new(config: Self::Config) -> Self;
    /// Takes a snapshot of the chain for `input` (under a short lock; no I/O beyond lookups the
    /// input needs, e.g. whether a gossiped block is known).
    fn view(chain: &Self::Chain, input: &Input<Self::Outcome, Self::Gossip, Self::Report>) -> Self::View;
    /// Runs a job: called by the driver on the blocking pool, never on the async executor.
    fn execute(chain: &Self::Chain, work: Self::Work) -> Self::Outcome;
    /// Handles one input at time `now`, queueing actions.
    fn handle(&mut self, input: Input<Self::Outcome, Self::Gossip, Self::Report>, now: Time, view: &Self::View);
    /// The next queued action.
    fn poll_action(&mut self) -> Option<Action<Self::Work, Self::Event>>;
    /// When the machine next wants an [`Input::Tick`], if ever.
    fn next_wakeup(&self) -> Option<Time> {
        None
    }
    /// Removes and returns every peer.
    fn drain_peers(&mut self) -> Vec<PeerId>;
    /// Peers being synced.
    fn num_peers(&self) -> usize;
    /// The peers being synced.
    fn peers(&self) -> Vec<PeerId>;
    /// Counters.
    fn stats(&self) -> Self::Stats;
    /// The lane a job runs on: jobs of one lane run one at a time, in order; the two lanes run
    /// side by side. Everything is on [`Lane::Main`] unless a machine says otherwise.
    fn lane(_work: &Self::Work) -> Lane {
        Lane::Main
    }
    /// The highest block number a peer listed that this machine syncs towards, if it knows one
    /// (for progress reports).
    fn target(&self) -> Option<u32> {
        None
    }
    /// What zero-knowledge light sync did, for machines that use proofs.
    fn proof_stats(&self) -> Option<crate::ProofStats> {
        None
    }
}

/// The bookkeeping every machine needs: per-peer state, which peer each outstanding request went
/// to, job ids, and the queue of actions for the driver.
#[derive(Debug)]
pub struct PeerBook<S, W, E = MacroSyncReturn> {
    /// State per peer being synced.
    pub peers: HashMap<PeerId, S>,
    requests: HashMap<RequestId, PeerId>,
    next_id: u64,
    actions: VecDeque<Action<W, E>>,
}

impl<S, W, E> Default for PeerBook<S, W, E> {
    fn default() -> Self {
        Self { peers: HashMap::new(), requests: HashMap::new(), next_id: 0, actions: VecDeque::new() }
    }
}

impl<S, W, E> PeerBook<S, W, E> {
    fn fresh_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Queues a request to `peer` and returns its id.
    pub fn request(&mut self, peer: PeerId, request: impl Into<AnyRequest>) -> RequestId {
        let id = self.fresh_id();
        self.requests.insert(id, peer);
        self.actions.push_back(Action::Request { id, peer, request: request.into() });
        id
    }

    /// The peer an answered request went to, if it is still outstanding (forgets the request).
    pub fn answered(&mut self, id: RequestId) -> Option<PeerId> {
        self.requests.remove(&id)
    }

    /// Queues a job and returns its id.
    pub fn apply(&mut self, work: W) -> JobId {
        let job = self.fresh_id();
        self.actions.push_back(Action::Apply { job, work });
        job
    }

    /// Queues an event.
    pub fn emit(&mut self, event: E) {
        self.actions.push_back(Action::Emit(event));
    }

    /// Queues the verdict on a gossip message.
    pub fn validate(&mut self, id: GossipId, verdict: Verdict) {
        self.actions.push_back(Action::Validate { id, verdict });
    }

    /// Queues a penalty.
    pub fn penalize(&mut self, peer: PeerId, severity: Severity, reason: PenaltyReason) {
        self.actions.push_back(Action::Penalize { peer, penalty: Penalty::new(severity, reason) });
    }

    /// The peers whose state satisfies `pred`, in id order (so that what a machine does to each
    /// does not depend on the map's iteration order).
    pub fn peers_in(&self, pred: impl Fn(&S) -> bool) -> Vec<PeerId> {
        let mut peers: Vec<_> = self.peers.iter().filter(|(_, s)| pred(s)).map(|(p, _)| *p).collect();
        peers.sort();
        peers
    }

    /// Forgets a peer and its outstanding requests.
    pub fn remove(&mut self, peer: &PeerId) {
        self.peers.remove(peer);
        self.requests.retain(|_, p| p != peer);
    }

    /// Forgets every peer and returns them.
    pub fn drain(&mut self) -> Vec<PeerId> {
        self.requests.clear();
        self.peers.drain().map(|(p, _)| p).collect()
    }

    /// Forgets a peer that sent provably bad data: banned (disconnected as malicious).
    pub fn ban(&mut self, peer: PeerId, reason: PenaltyReason) {
        self.remove(&peer);
        self.penalize(peer, Severity::Malicious, reason);
        self.actions.push_back(Action::Disconnect { peer, reason: DisconnectReason::Malicious });
    }

    /// The next action for the driver.
    pub fn poll_action(&mut self) -> Option<Action<W, E>> {
        self.actions.pop_front()
    }
}

impl<S, W> PeerBook<S, W, MacroSyncReturn> {
    /// Forgets a peer and reports its verdict.
    pub fn finish(&mut self, peer: PeerId, verdict: MacroSyncReturn) {
        self.remove(&peer);
        self.emit(verdict);
    }

    /// A request to `peer` failed. The rule, shared by every machine whose request has no other
    /// peer to go to:
    /// - a malformed or oversized answer: an invalid-data penalty, then Outdated (asked again
    ///   later; repeated faults ban it through its reputation);
    /// - a timeout: a minor penalty, then Outdated;
    /// - busy or rate-limited: Outdated, no penalty;
    /// - the peer does not serve the request: Incompatible;
    /// - the peer is gone (not connected, connection closed, shutting down): forgotten without a
    ///   verdict (the network reports its departure);
    /// - our own request failed (too large, could not encode, refused as malformed): Outdated,
    ///   no penalty.
    pub fn request_failed(&mut self, peer: PeerId, e: &RequestError) {
        match e {
            RequestError::MalformedResponse(_) | RequestError::ResponseTooLarge(_) => {
                self.penalize(peer, Severity::InvalidData, PenaltyReason::MalformedResponse);
                self.finish(peer, MacroSyncReturn::Outdated(peer));
            }
            RequestError::Timeout => {
                self.penalize(peer, Severity::Minor, PenaltyReason::Unresponsive);
                self.finish(peer, MacroSyncReturn::Outdated(peer));
            }
            RequestError::Unsupported => self.finish(peer, MacroSyncReturn::Incompatible(peer)),
            RequestError::NotConnected | RequestError::ConnectionClosed | RequestError::Shutdown => self.remove(&peer),
            RequestError::Busy
            | RequestError::RateLimited
            | RequestError::RequestTooLarge(_)
            | RequestError::RejectedAsMalformed
            | RequestError::Encode(_) => self.finish(peer, MacroSyncReturn::Outdated(peer)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_failures_are_judged_by_kind() {
        let p = PeerId::from_index(1);
        let cases: Vec<(RequestError, Vec<Action<()>>)> = vec![
            (
                RequestError::MalformedResponse("x".into()),
                vec![
                    Action::Penalize {
                        peer: p,
                        penalty: Penalty::new(Severity::InvalidData, PenaltyReason::MalformedResponse),
                    },
                    Action::Emit(MacroSyncReturn::Outdated(p)),
                ],
            ),
            (
                RequestError::Timeout,
                vec![
                    Action::Penalize { peer: p, penalty: Penalty::new(Severity::Minor, PenaltyReason::Unresponsive) },
                    Action::Emit(MacroSyncReturn::Outdated(p)),
                ],
            ),
            (RequestError::Busy, vec![Action::Emit(MacroSyncReturn::Outdated(p))]),
            (RequestError::RateLimited, vec![Action::Emit(MacroSyncReturn::Outdated(p))]),
            (RequestError::Unsupported, vec![Action::Emit(MacroSyncReturn::Incompatible(p))]),
            (RequestError::ConnectionClosed, vec![]),
            (RequestError::Encode("bug".into()), vec![Action::Emit(MacroSyncReturn::Outdated(p))]),
        ];
        for (error, expected) in cases {
            let mut book = PeerBook::<(), ()>::default();
            book.peers.insert(p, ());
            book.request_failed(p, &error);
            let actions: Vec<_> = std::iter::from_fn(|| book.poll_action()).collect();
            assert_eq!(actions, expected, "{error:?}");
            assert!(book.peers.is_empty(), "{error:?}: the peer is forgotten");
        }
    }
}
