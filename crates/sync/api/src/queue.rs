//! [`SyncQueue`]: the ordered multi-peer fetch queue every macro sync shares.
//!
//! It takes ids in order, a set of peers and a window, and decides which id to fetch from which
//! peer; it accepts arrivals, failures and timeouts; it retries a failed item on another peer
//! (round robin, at most `max_attempts` tries) and releases results strictly in order. It does no
//! I/O and reads no clock: time comes in as [`Time`] and fetches go out as [`Fetch`] values.
//!
//! Bounds: at most `window` items are in flight or waiting for release at once (the items are
//! what costs memory; the ids queued behind them are small and bounded by the caller), at most
//! `per_peer` in flight per peer.
//!
//! Per peer, the number of fetches in flight adapts (AIMD): it starts at `initial_per_peer`, grows
//! by one with each answer that came back within `slow_after`, and halves with each failure or
//! timeout. When the item that blocks in-order release has been in flight for `hedge_after`, it is
//! also asked of a second peer, and the first answer counts. Verification is the caller's: the queue releases what arrived,
//! tagged with the peer that sent it, so a failed verification can be charged to that peer.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use petrel_network_api::PeerId;

use crate::Time;

/// Settings of a [`SyncQueue`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueConfig {
    /// Most items in flight plus arrived-but-unreleased at once.
    pub window: usize,
    /// Most items in flight to one peer (the adaptive cap's ceiling).
    pub per_peer: usize,
    /// Items in flight to a new peer (the adaptive cap's start).
    pub initial_per_peer: usize,
    /// An answer slower than this does not raise the peer's cap.
    pub slow_after: Duration,
    /// When the item that blocks release has been in flight this long, a second peer is asked too
    /// (`None`: never).
    pub hedge_after: Option<Duration>,
    /// Tries per item (over all peers) before the queue gives up.
    pub max_attempts: u32,
    /// Consecutive failures after which a peer is given no more items.
    pub max_peer_failures: u32,
    /// How long a fetch may take before it is retried elsewhere.
    pub timeout: Duration,
    /// At most this many fetches per peer in any such period (the serving side's rate limit for
    /// the request type, so that a fast peer is not asked more than it will answer); `None`: no
    /// limit.
    pub rate_limit: Option<(u32, Duration)>,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            window: 32,
            per_peer: 16,
            initial_per_peer: 4,
            slow_after: Duration::from_millis(500),
            hedge_after: Some(Duration::from_secs(1)),
            max_attempts: 4,
            max_peer_failures: 3,
            timeout: Duration::from_secs(10),
            rate_limit: None,
        }
    }
}

/// "Fetch `id` (position `seq`) from `peer`; give up at `deadline`."
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetch<Id> {
    /// Position in the queue; echo it in [`SyncQueue::arrived`] / [`SyncQueue::failed`].
    pub seq: u64,
    /// What to fetch.
    pub id: Id,
    /// From whom.
    pub peer: PeerId,
    /// When the fetch counts as timed out.
    pub deadline: Time,
}

/// An item released in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Released<Id, Item> {
    /// Position in the queue.
    pub seq: u64,
    /// Its id.
    pub id: Id,
    /// The item.
    pub item: Item,
    /// The peer that sent it.
    pub peer: PeerId,
}

/// Why the queue cannot finish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueueError<Id> {
    /// An item failed `max_attempts` times.
    ItemFailed {
        /// Its position.
        seq: u64,
        /// Its id.
        id: Id,
    },
    /// Items wait but no peer may be asked (none left, or all failed too often).
    NoPeers,
}

#[derive(Clone, Debug)]
enum State<Item> {
    Waiting,
    /// Asked of `peer` at `sent`; possibly also of `hedge` (a second peer, for the item blocking
    /// release).
    InFlight {
        peer: PeerId,
        sent: Time,
        deadline: Time,
        hedge: Option<PeerId>,
    },
    Done {
        item: Item,
        peer: PeerId,
    },
}

#[derive(Clone, Debug)]
struct Entry<Id, Item> {
    id: Id,
    state: State<Item>,
    attempts: u32,
    /// Peers tried for this item (a retry prefers the others). At most `max_attempts` long.
    tried: Vec<PeerId>,
}

#[derive(Clone, Debug, Default)]
struct PeerSlot {
    in_flight: usize,
    failures: u32,
    /// The adaptive cap on `in_flight`.
    cap: usize,
    /// When the last fetches (at most the rate limit's count) were sent.
    sent: VecDeque<Time>,
}

/// The ordered multi-peer fetch queue. See the module documentation.
#[derive(Clone, Debug)]
pub struct SyncQueue<Id, Item> {
    config: QueueConfig,
    /// Entries from the next one to release on; `entries[i]` has position `released + i`.
    entries: VecDeque<Entry<Id, Item>>,
    released: u64,
    /// In flight plus done (the window's measure).
    active: usize,
    peers: Vec<PeerId>,
    slots: HashMap<PeerId, PeerSlot>,
    cursor: usize,
    error: Option<QueueError<Id>>,
}

impl<Id: Clone, Item> SyncQueue<Id, Item> {
    /// An empty queue with no peers.
    pub fn new(config: QueueConfig) -> Self {
        let config = QueueConfig {
            window: config.window.max(1),
            per_peer: config.per_peer.max(1),
            initial_per_peer: config.initial_per_peer.clamp(1, config.per_peer.max(1)),
            max_attempts: config.max_attempts.max(1),
            max_peer_failures: config.max_peer_failures.max(1),
            ..config
        };
        Self {
            config,
            entries: VecDeque::new(),
            released: 0,
            active: 0,
            peers: Vec::new(),
            slots: HashMap::new(),
            cursor: 0,
            error: None,
        }
    }

    /// The settings.
    pub fn config(&self) -> &QueueConfig {
        &self.config
    }

    /// Appends an id to fetch after all others.
    pub fn push(&mut self, id: Id) {
        self.entries.push_back(Entry { id, state: State::Waiting, attempts: 0, tried: Vec::new() });
    }

    /// Adds a peer to fetch from (no-op if present).
    pub fn add_peer(&mut self, peer: PeerId) {
        if !self.slots.contains_key(&peer) {
            self.slots.insert(peer, PeerSlot { cap: self.config.initial_per_peer, ..PeerSlot::default() });
            self.peers.push(peer);
        }
    }

    /// Removes a peer; what it had in flight is asked of others, without counting as an attempt.
    pub fn remove_peer(&mut self, peer: &PeerId) {
        if self.slots.remove(peer).is_none() {
            return;
        }
        if let Some(i) = self.peers.iter().position(|p| p == peer) {
            self.peers.remove(i);
            if i < self.cursor {
                self.cursor -= 1;
            }
        }
        for e in &mut self.entries {
            match &mut e.state {
                // Its hedge carries on alone, or the item waits for another peer.
                State::InFlight { peer: p, hedge, sent, deadline } if p == peer => match hedge.take() {
                    Some(h) => e.state = State::InFlight { peer: h, sent: *sent, deadline: *deadline, hedge: None },
                    None => {
                        e.state = State::Waiting;
                        e.attempts = e.attempts.saturating_sub(1);
                        self.active -= 1;
                    }
                },
                State::InFlight { hedge, .. } if hedge.as_ref() == Some(peer) => *hedge = None,
                _ => {}
            }
        }
    }

    /// Drops every id from position `seq` on (in flight, arrived or waiting; released ones stay
    /// released): their fetches' slots are free again and late answers to them are refused. For a
    /// caller that learns the ids after some point are not the ones to fetch (a fork). Returns the
    /// number of ids dropped.
    pub fn truncate(&mut self, seq: u64) -> usize {
        let keep = usize::try_from(seq.saturating_sub(self.released)).unwrap_or(usize::MAX);
        if keep >= self.entries.len() {
            return 0;
        }
        let dropped: Vec<_> = self.entries.drain(keep..).collect();
        for e in &dropped {
            match &e.state {
                State::InFlight { peer, hedge, .. } => {
                    self.release_slot(peer);
                    if let Some(h) = hedge {
                        self.release_slot(h);
                    }
                    self.active -= 1;
                }
                State::Done { .. } => self.active -= 1,
                State::Waiting => {}
            }
        }
        if matches!(&self.error, Some(QueueError::ItemFailed { seq: s, .. }) if *s >= seq) {
            self.error = None;
        }
        dropped.len()
    }

    /// Fills waiting ids from elsewhere (e.g. answers kept on disk): every waiting id for which
    /// `take` gives an item and a peer to charge it to counts as arrived from that peer, without a
    /// fetch. Such items may take the window past its size until they are released. Returns how
    /// many were filled.
    pub fn fill_with(&mut self, mut take: impl FnMut(&Id) -> Option<(Item, PeerId)>) -> usize {
        let mut filled = 0;
        for e in &mut self.entries {
            if matches!(e.state, State::Waiting)
                && let Some((item, peer)) = take(&e.id)
            {
                e.state = State::Done { item, peer };
                filled += 1;
            }
        }
        self.active += filled;
        filled
    }

    /// Peers fetched from, in round-robin order.
    pub fn peers(&self) -> &[PeerId] {
        &self.peers
    }

    /// Whether `peer` failed `max_peer_failures` times in a row (it is given no more items).
    pub fn is_benched(&self, peer: &PeerId) -> bool {
        self.slots.get(peer).is_some_and(|s| s.failures >= self.config.max_peer_failures)
    }

    fn eligible(&self, peer: &PeerId, now: Time) -> bool {
        self.slots.get(peer).is_some_and(|s| {
            s.in_flight < s.cap && s.failures < self.config.max_peer_failures && self.rate_free_at(s) <= now
        })
    }

    /// When the rate limit lets `slot`'s peer be asked again.
    fn rate_free_at(&self, slot: &PeerSlot) -> Time {
        match self.config.rate_limit {
            Some((max, period)) if slot.sent.len() >= max.max(1) as usize => {
                slot.sent.front().map_or(Time::ZERO, |t| *t + period)
            }
            _ => Time::ZERO,
        }
    }

    /// Records a fetch sent to `peer` at `now` (for the rate limit).
    fn record_sent(&mut self, peer: &PeerId, now: Time) {
        let Some((max, _)) = self.config.rate_limit else { return };
        if let Some(s) = self.slots.get_mut(peer) {
            s.sent.push_back(now);
            while s.sent.len() > max.max(1) as usize {
                s.sent.pop_front();
            }
        }
    }

    /// The current adaptive cap of `peer` (items it may have in flight).
    pub fn cap_of(&self, peer: &PeerId) -> usize {
        self.slots.get(peer).map_or(0, |s| s.cap)
    }

    /// The next peer for an item that was tried on `tried`: round robin over eligible peers,
    /// preferring one not tried yet.
    fn pick_peer(&mut self, tried: &[PeerId], now: Time) -> Option<PeerId> {
        let n = self.peers.len();
        let mut fallback = None;
        for k in 0..n {
            let i = (self.cursor + k) % n;
            let p = self.peers[i];
            if !self.eligible(&p, now) {
                continue;
            }
            if !tried.contains(&p) {
                self.cursor = (i + 1) % n;
                return Some(p);
            }
            fallback.get_or_insert(i);
        }
        let i = fallback?;
        self.cursor = (i + 1) % n;
        Some(self.peers[i])
    }

    /// A second fetch of the item blocking release, if it is due at `now` and a peer is free.
    fn next_hedge(&mut self, now: Time) -> Option<Fetch<Id>> {
        let after = self.config.hedge_after?;
        let front = self.entries.front()?;
        if !matches!(front.state, State::InFlight { sent, hedge: None, .. } if now >= sent + after) {
            return None;
        }
        // Only a peer not asked for this item yet.
        let tried = front.tried.clone();
        let hedge = self.pick_peer(&tried, now).filter(|h| !tried.contains(h))?;
        let timeout = self.config.timeout;
        let e = self.entries.front_mut()?;
        let mut deadline = now + timeout;
        if let State::InFlight { hedge: slot, deadline: d, .. } = &mut e.state {
            *slot = Some(hedge);
            // Both fetches run until the second one's deadline.
            *d = (*d).max(deadline);
            deadline = *d;
        }
        if !e.tried.contains(&hedge) {
            e.tried.push(hedge);
        }
        let id = e.id.clone();
        if let Some(s) = self.slots.get_mut(&hedge) {
            s.in_flight += 1;
        }
        self.record_sent(&hedge, now);
        Some(Fetch { seq: self.released, id, peer: hedge, deadline })
    }

    /// The next fetch to issue at `now`, if the window, the peers and the queue allow one (a
    /// second fetch of the item blocking release when its first is slow comes first).
    pub fn next_fetch(&mut self, now: Time) -> Option<Fetch<Id>> {
        if self.error.is_some() {
            return None;
        }
        if let Some(hedge) = self.next_hedge(now) {
            return Some(hedge);
        }
        let index = if self.active >= self.config.window {
            // The window is full. Items filled from elsewhere can fill it while the item that
            // blocks release still waits: that one is always asked, or the queue would stall.
            match self.entries.front() {
                Some(e) if matches!(e.state, State::Waiting) => 0,
                _ => return None,
            }
        } else {
            self.entries.iter().position(|e| matches!(e.state, State::Waiting))?
        };
        let peer = self.pick_peer(&self.entries[index].tried.clone(), now)?;
        let deadline = now + self.config.timeout;
        let e = &mut self.entries[index];
        e.state = State::InFlight { peer, sent: now, deadline, hedge: None };
        e.attempts += 1;
        if !e.tried.contains(&peer) {
            e.tried.push(peer);
        }
        self.active += 1;
        let fetch = Fetch { seq: self.released + index as u64, id: e.id.clone(), peer, deadline };
        if let Some(s) = self.slots.get_mut(&peer) {
            s.in_flight += 1;
        }
        self.record_sent(&peer, now);
        Some(fetch)
    }

    fn entry_mut(&mut self, seq: u64) -> Option<&mut Entry<Id, Item>> {
        let index = usize::try_from(seq.checked_sub(self.released)?).ok()?;
        self.entries.get_mut(index)
    }

    fn release_slot(&mut self, peer: &PeerId) -> Option<&mut PeerSlot> {
        let slot = self.slots.get_mut(peer)?;
        slot.in_flight = slot.in_flight.saturating_sub(1);
        Some(slot)
    }

    /// A fetch from `peer` failed: its slot is free again, it counts a failure, and its cap halves
    /// (multiplicative decrease).
    fn penalise_slot(&mut self, peer: &PeerId) {
        if let Some(s) = self.release_slot(peer) {
            s.failures += 1;
            s.cap = (s.cap / 2).max(1);
        }
    }

    /// The item at `seq` arrived from `peer`. Taken while it is in flight (from whichever peer
    /// answers first), or after its fetch from `peer` timed out if the window has room. Returns
    /// false if it was not wanted any more (already arrived or released, never asked of `peer`
    /// while waiting, or `peer` was removed): drop it.
    ///
    /// An item that timed out is still taken from the first peer that answers (if the window has
    /// room for it); the other answer is then refused.
    pub fn arrived(&mut self, seq: u64, peer: PeerId, item: Item, now: Time) -> bool {
        if !self.slots.contains_key(&peer) {
            // A removed peer's answer: its items were handed to others.
            return false;
        }
        let room = self.active < self.config.window;
        let Some(e) = self.entry_mut(seq) else { return false };
        let (in_flight, sent) = match e.state {
            // From either peer asking it now, or from one asked before (a late answer).
            State::InFlight { peer: p, hedge, sent, .. }
                if p == peer || hedge == Some(peer) || e.tried.contains(&peer) =>
            {
                ((Some(p), hedge), Some(sent))
            }
            // A late answer to a fetch that timed out, taken only if the window has room.
            State::Waiting if room && e.tried.contains(&peer) => ((None, None), None),
            _ => return false,
        };
        e.state = State::Done { item, peer };
        match in_flight {
            (Some(p), hedge) => {
                self.release_slot(&p);
                if let Some(h) = hedge {
                    self.release_slot(&h);
                }
            }
            (None, _) => self.active += 1,
        }
        let (max, slow) = (self.config.per_peer, self.config.slow_after);
        if let Some(s) = self.slots.get_mut(&peer) {
            s.failures = 0;
            // Additive increase for an answer that came back in time.
            if sent.is_some_and(|sent| now.since(sent) <= slow) {
                s.cap = (s.cap + 1).min(max);
            }
        }
        true
    }

    /// The fetch of `seq` from `peer` failed (an error, a wrong answer, a timeout). The item is
    /// asked of another peer, up to `max_attempts` tries in all. Returns false if that fetch was
    /// not outstanding (already answered, reassigned, or the peer was removed).
    pub fn failed(&mut self, seq: u64, peer: PeerId) -> bool {
        let max_attempts = self.config.max_attempts;
        let Some(e) = self.entry_mut(seq) else { return false };
        match &mut e.state {
            // The second peer failed: the first carries on.
            State::InFlight { hedge, .. } if *hedge == Some(peer) => {
                *hedge = None;
                self.penalise_slot(&peer);
                return true;
            }
            // The first failed while a second was asked: the second carries on.
            State::InFlight { peer: p, hedge: Some(h), sent, deadline } if *p == peer => {
                e.state = State::InFlight { peer: *h, sent: *sent, deadline: *deadline, hedge: None };
                self.penalise_slot(&peer);
                return true;
            }
            State::InFlight { peer: p, .. } if *p == peer => {}
            _ => return false,
        }
        e.state = State::Waiting;
        let exhausted = e.attempts >= max_attempts;
        let id = e.id.clone();
        self.active -= 1;
        self.penalise_slot(&peer);
        if exhausted && self.error.is_none() {
            self.error = Some(QueueError::ItemFailed { seq, id });
        }
        true
    }

    /// Fails every fetch whose deadline passed at `now`; returns them (peer and position). A
    /// second fetch of the same item still running is given up with it.
    pub fn time_out(&mut self, now: Time) -> Vec<(u64, PeerId)> {
        let late: Vec<(u64, PeerId, Option<PeerId>)> = self
            .entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| match e.state {
                State::InFlight { peer, deadline, hedge, .. } if deadline <= now => {
                    Some((self.released + i as u64, peer, hedge))
                }
                _ => None,
            })
            .collect();
        let mut out = Vec::with_capacity(late.len());
        for (seq, peer, hedge) in late {
            if let Some(h) = hedge {
                self.failed(seq, h);
                out.push((seq, h));
            }
            self.failed(seq, peer);
            out.push((seq, peer));
        }
        out
    }

    /// When [`SyncQueue::time_out`], a second fetch, or a fetch held back by a peer's rate limit
    /// ([`SyncQueue::next_fetch`]) is next due.
    pub fn next_deadline(&self) -> Option<Time> {
        let deadlines = self.entries.iter().filter_map(|e| match e.state {
            State::InFlight { deadline, .. } => Some(deadline),
            _ => None,
        });
        // A second fetch is due only if some peer not yet asked for the item could take it (else
        // waking up for it would find nothing to do, again and again).
        let hedge = self.config.hedge_after.filter(|_| self.error.is_none()).and_then(|after| {
            let front = self.entries.front()?;
            let State::InFlight { sent, hedge: None, .. } = front.state else { return None };
            let at = sent + after;
            let free = self.peers.iter().any(|p| !front.tried.contains(p) && self.eligible(p, at));
            free.then_some(at)
        });
        // Items wait with room in the window, but every usable peer is at its rate limit: when
        // the first of them may be asked again.
        let waiting = self.error.is_none()
            && self.active < self.config.window
            && self.entries.iter().any(|e| matches!(e.state, State::Waiting));
        let rate = waiting
            .then(|| {
                self.slots
                    .values()
                    .filter(|s| s.in_flight < s.cap && s.failures < self.config.max_peer_failures)
                    .map(|s| self.rate_free_at(s))
                    .filter(|t| *t > Time::ZERO)
                    .min()
            })
            .flatten();
        deadlines.chain(hedge).chain(rate).min()
    }

    /// The next item in order, if it has arrived.
    pub fn pop_ready(&mut self) -> Option<Released<Id, Item>> {
        if !matches!(self.entries.front()?.state, State::Done { .. }) {
            return None;
        }
        let e = self.entries.pop_front()?;
        let State::Done { item, peer } = e.state else { return None };
        let seq = self.released;
        self.released += 1;
        self.active -= 1;
        Some(Released { seq, id: e.id, item, peer })
    }

    /// Why the queue cannot finish, if it cannot: an item failed too often, or items wait and no
    /// peer may be asked while nothing is in flight.
    pub fn error(&self) -> Option<QueueError<Id>> {
        if let Some(e) = &self.error {
            return Some(e.clone());
        }
        let waiting = self.entries.iter().any(|e| matches!(e.state, State::Waiting));
        let in_flight = self.entries.iter().any(|e| matches!(e.state, State::InFlight { .. }));
        let any_peer = self.peers.iter().any(|p| !self.is_benched(p));
        (waiting && !in_flight && !any_peer).then_some(QueueError::NoPeers)
    }

    /// Whether every id pushed has been released.
    pub fn is_finished(&self) -> bool {
        self.entries.is_empty()
    }

    /// Ids not yet released.
    pub fn remaining(&self) -> usize {
        self.entries.len()
    }

    /// Items in flight plus arrived-but-unreleased (at most the window).
    pub fn active(&self) -> usize {
        self.active
    }

    /// Items in flight to `peer`.
    pub fn in_flight_to(&self, peer: &PeerId) -> usize {
        self.slots.get(peer).map_or(0, |s| s.in_flight)
    }

    /// Positions released so far.
    pub fn released(&self) -> u64 {
        self.released
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(i: u64) -> PeerId {
        PeerId::from_index(i)
    }

    fn cfg(window: usize, per_peer: usize) -> QueueConfig {
        QueueConfig {
            window,
            per_peer,
            initial_per_peer: per_peer,
            slow_after: Duration::from_millis(100),
            hedge_after: None,
            max_attempts: 3,
            max_peer_failures: 2,
            timeout: Duration::from_secs(1),
            rate_limit: None,
        }
    }

    #[test]
    fn fetches_round_robin_within_the_window_and_releases_in_order() {
        let mut q = SyncQueue::<u32, u32>::new(cfg(3, 2));
        (0..5).for_each(|i| q.push(i));
        q.add_peer(p(1));
        q.add_peer(p(2));
        let t = Time::ZERO;
        let f: Vec<_> = std::iter::from_fn(|| q.next_fetch(t)).collect();
        assert_eq!(f.iter().map(|f| (f.id, f.peer)).collect::<Vec<_>>(), [(0, p(1)), (1, p(2)), (2, p(1))]);
        // Out of order arrival: nothing released until 0 is in.
        assert!(q.arrived(2, p(1), 20, t));
        assert!(q.arrived(1, p(2), 10, t));
        assert_eq!(q.pop_ready(), None);
        assert_eq!(q.next_fetch(t), None, "window of 3 is full");
        assert!(q.arrived(0, p(1), 0, t));
        let out: Vec<_> = std::iter::from_fn(|| q.pop_ready()).map(|r| (r.id, r.item, r.peer)).collect();
        assert_eq!(out, [(0, 0, p(1)), (1, 10, p(2)), (2, 20, p(1))]);
        assert_eq!(q.active(), 0);
        assert_eq!(q.next_fetch(t).map(|f| f.id), Some(3));
    }

    #[test]
    fn a_failed_item_is_retried_on_another_peer_and_gives_up_after_max_attempts() {
        let mut q = SyncQueue::<u32, ()>::new(cfg(4, 4));
        q.push(7);
        q.add_peer(p(1));
        q.add_peer(p(2));
        let t = Time::ZERO;
        let f = q.next_fetch(t).unwrap();
        assert_eq!(f.peer, p(1));
        assert!(q.failed(f.seq, p(1)));
        assert!(!q.failed(f.seq, p(1)), "not outstanding any more");
        let f = q.next_fetch(t).unwrap();
        assert_eq!(f.peer, p(2), "retry goes elsewhere");
        assert!(q.failed(f.seq, p(2)));
        let f = q.next_fetch(t).unwrap();
        assert!(q.failed(f.seq, f.peer));
        assert_eq!(q.error(), Some(QueueError::ItemFailed { seq: 0, id: 7 }));
        assert_eq!(q.next_fetch(t), None);
    }

    #[test]
    fn a_timeout_retries_elsewhere_and_the_late_answer_still_counts_once() {
        let mut q = SyncQueue::<u32, &str>::new(cfg(4, 4));
        q.push(1);
        q.add_peer(p(1));
        q.add_peer(p(2));
        let f = q.next_fetch(Time::ZERO).unwrap();
        assert_eq!(q.next_deadline(), Some(f.deadline));
        assert!(q.time_out(Time::from_millis(999)).is_empty());
        assert_eq!(q.time_out(Time::from_millis(1000)), vec![(0, p(1))]);
        assert!(!q.is_benched(&p(1)), "one timeout costs the peer nothing yet");
        let g = q.next_fetch(Time::from_millis(1000)).unwrap();
        assert_eq!(g.peer, p(2));
        // The first peer answers late: taken; the second answer is refused.
        assert!(q.arrived(0, p(1), "late", Time::from_millis(1000)));
        assert!(!q.arrived(0, p(2), "second", Time::from_millis(1000)));
        assert_eq!(q.pop_ready().map(|r| r.item), Some("late"));
        assert_eq!(q.in_flight_to(&p(2)), 0);
        assert!(q.is_finished());
    }

    #[test]
    fn repeated_failures_bench_a_peer_and_no_peer_left_is_an_error() {
        let mut q = SyncQueue::<u32, ()>::new(QueueConfig { max_attempts: 10, ..cfg(4, 1) });
        (0..3).for_each(|i| q.push(i));
        q.add_peer(p(1));
        for _ in 0..2 {
            let f = q.next_fetch(Time::ZERO).unwrap();
            q.failed(f.seq, f.peer);
        }
        assert!(q.is_benched(&p(1)));
        assert_eq!(q.next_fetch(Time::ZERO), None);
        assert_eq!(q.error(), Some(QueueError::NoPeers));
        q.add_peer(p(2));
        assert_eq!(q.error(), None);
        assert_eq!(q.next_fetch(Time::ZERO).map(|f| f.peer), Some(p(2)));
    }

    #[test]
    fn a_removed_peer_hands_its_items_back_without_charging_attempts() {
        let mut q = SyncQueue::<u32, ()>::new(QueueConfig { max_attempts: 1, ..cfg(4, 4) });
        q.push(0);
        q.add_peer(p(1));
        let f = q.next_fetch(Time::ZERO).unwrap();
        q.remove_peer(&p(1));
        assert!(!q.arrived(f.seq, p(1), (), Time::ZERO), "answers of removed peers are dropped");
        assert_eq!(q.active(), 0);
        q.add_peer(p(2));
        let g = q.next_fetch(Time::ZERO).unwrap();
        assert_eq!(g.peer, p(2));
        assert!(q.failed(g.seq, p(2)));
        // One real attempt (max 1): now it fails.
        assert!(matches!(q.error(), Some(QueueError::ItemFailed { .. })));
    }

    #[derive(Clone, Debug)]
    enum Op {
        Fetch,
        Answer(usize),
        Fail(usize),
        Tick(u64),
        Join(u64),
        Leave(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => Just(Op::Fetch),
            4 => (0usize..64).prop_map(Op::Answer),
            1 => (0usize..64).prop_map(Op::Fail),
            1 => (0u64..1500).prop_map(Op::Tick),
            1 => (0u64..5).prop_map(Op::Join),
            1 => (0u64..5).prop_map(Op::Leave),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

        /// Under random answers, failures, timeouts and peer churn: every id is released at most
        /// once and in order, the window and per-peer caps always hold, and once the churn ends a
        /// reliable peer finishes the queue.
        #[test]
        fn every_id_is_delivered_once_in_order(
            n in 1usize..40,
            window in 1usize..8,
            per_peer in 1usize..4,
            ops in proptest::collection::vec(op(), 0..300),
        ) {
            let config = QueueConfig { window, per_peer, initial_per_peer: 1, slow_after: Duration::from_millis(100),
                hedge_after: Some(Duration::from_millis(200)), max_attempts: u32::MAX, max_peer_failures: u32::MAX,
                timeout: Duration::from_millis(500), rate_limit: Some((5, Duration::from_millis(300))) };
            let mut q = SyncQueue::<usize, usize>::new(config);
            (0..n).for_each(|i| q.push(i));
            q.add_peer(p(0));
            let mut now = Time::ZERO;
            let mut outstanding: Vec<Fetch<usize>> = Vec::new();
            let mut released = Vec::new();
            for op in ops {
                match op {
                    Op::Fetch => outstanding.extend(q.next_fetch(now)),
                    Op::Answer(k) if !outstanding.is_empty() => {
                        let f = outstanding.swap_remove(k % outstanding.len());
                        q.arrived(f.seq, f.peer, f.id * 10, now);
                    }
                    Op::Fail(k) if !outstanding.is_empty() => {
                        let f = outstanding.swap_remove(k % outstanding.len());
                        q.failed(f.seq, f.peer);
                    }
                    Op::Tick(ms) => {
                        now = now + Duration::from_millis(ms);
                        q.time_out(now);
                    }
                    Op::Join(i) => q.add_peer(p(i)),
                    Op::Leave(i) => q.remove_peer(&p(i)),
                    _ => {}
                }
                prop_assert!(q.active() <= window);
                for peer in q.peers() {
                    prop_assert!(q.in_flight_to(peer) <= per_peer);
                }
                while let Some(r) = q.pop_ready() {
                    prop_assert_eq!(r.item, r.id * 10);
                    released.push(r.id);
                }
            }
            // The churn is over: one reliable peer answers everything.
            q.add_peer(p(9));
            for _ in 0..10 * n + 10 {
                let late = q.time_out(now);
                // At most two fetches (a first and a second) per item in the window.
                prop_assert!(late.len() <= 2 * window);
                while let Some(f) = q.next_fetch(now) {
                    q.arrived(f.seq, f.peer, f.id * 10, now);
                }
                now = now + Duration::from_secs(1);
                while let Some(r) = q.pop_ready() {
                    released.push(r.id);
                }
                if q.is_finished() { break; }
            }
            prop_assert!(q.is_finished());
            prop_assert_eq!(released, (0..n).collect::<Vec<_>>());
        }
    }

    #[test]
    fn a_peer_cap_grows_with_fast_answers_and_halves_on_failure() {
        let config = QueueConfig { initial_per_peer: 2, per_peer: 4, ..cfg(16, 4) };
        let mut q = SyncQueue::<u32, ()>::new(config);
        (0..16).for_each(|i| q.push(i));
        q.add_peer(p(1));
        let t = Time::ZERO;
        let f: Vec<_> = std::iter::from_fn(|| q.next_fetch(t)).collect();
        assert_eq!(f.len(), 2, "starts at the initial cap");
        // A fast answer raises the cap; a slow one does not.
        assert!(q.arrived(f[0].seq, p(1), (), Time::from_millis(50)));
        assert_eq!(q.cap_of(&p(1)), 3);
        assert!(q.arrived(f[1].seq, p(1), (), Time::from_millis(500)));
        assert_eq!(q.cap_of(&p(1)), 3);
        let f: Vec<_> = std::iter::from_fn(|| q.next_fetch(t)).collect();
        assert_eq!(f.len(), 3);
        q.failed(f[0].seq, p(1));
        assert_eq!(q.cap_of(&p(1)), 1, "halved");
    }

    #[test]
    fn a_slow_item_blocking_release_is_also_asked_of_a_second_peer_and_the_first_answer_counts() {
        let config = QueueConfig { hedge_after: Some(Duration::from_millis(300)), ..cfg(4, 4) };
        let mut q = SyncQueue::<u32, &str>::new(config);
        q.push(0);
        q.push(1);
        q.add_peer(p(1));
        q.add_peer(p(2));
        let first = q.next_fetch(Time::ZERO).unwrap();
        let second = q.next_fetch(Time::ZERO).unwrap();
        assert_eq!((first.peer, second.peer), (p(1), p(2)));
        assert_eq!(q.next_deadline(), Some(Time::from_millis(300)), "the hedge is due before any timeout");
        assert_eq!(q.next_fetch(Time::from_millis(299)), None);
        // Item 0 blocks release and p(1) is slow: p(2) is asked too.
        let hedge = q.next_fetch(Time::from_millis(300)).unwrap();
        assert_eq!((hedge.seq, hedge.peer), (0, p(2)));
        assert_eq!(q.next_fetch(Time::from_millis(400)), None, "one hedge per item");
        assert_eq!(q.active(), 2, "a hedge takes no room in the window");
        assert!(q.arrived(0, p(2), "from the hedge", Time::from_millis(350)));
        assert!(!q.arrived(0, p(1), "too late", Time::from_millis(360)));
        assert_eq!((q.in_flight_to(&p(1)), q.in_flight_to(&p(2))), (0, 1));
        assert_eq!(q.pop_ready().map(|r| (r.item, r.peer)), Some(("from the hedge", p(2))));
    }

    #[test]
    fn a_peer_is_asked_no_more_often_than_its_rate_limit_and_the_queue_says_when_it_may_be_again() {
        let config = QueueConfig { rate_limit: Some((3, Duration::from_secs(1))), ..cfg(10, 10) };
        let mut q = SyncQueue::<u32, ()>::new(config);
        (0..10).for_each(|i| q.push(i));
        q.add_peer(p(1));
        let sent: Vec<_> = std::iter::from_fn(|| q.next_fetch(Time::ZERO)).collect();
        assert_eq!(sent.len(), 3, "three per second");
        for f in &sent {
            assert!(q.arrived(f.seq, p(1), (), Time::from_millis(10)));
        }
        assert_eq!(q.next_fetch(Time::from_millis(999)), None);
        assert_eq!(q.next_deadline(), Some(Time::from_millis(1000)), "when the first of the three leaves the period");
        let more: Vec<_> = std::iter::from_fn(|| q.next_fetch(Time::from_millis(1000))).collect();
        assert_eq!(more.len(), 3);
    }

    #[test]
    fn a_queue_that_failed_asks_for_no_second_fetch_and_no_wakeup_for_one() {
        let config = QueueConfig { hedge_after: Some(Duration::from_millis(100)), max_attempts: 1, ..cfg(4, 4) };
        let mut q = SyncQueue::<u32, ()>::new(config);
        (0..2).for_each(|i| q.push(i));
        q.add_peer(p(1));
        q.add_peer(p(2));
        let first = q.next_fetch(Time::ZERO).unwrap();
        let second = q.next_fetch(Time::ZERO).unwrap();
        assert!(q.failed(second.seq, second.peer));
        assert!(q.error().is_some());
        // Item 0 is still in flight and slow, but the queue has failed: only its deadline is due.
        assert_eq!(q.next_fetch(Time::from_millis(500)), None);
        assert_eq!(q.next_deadline(), Some(first.deadline));
    }

    #[test]
    fn when_one_of_two_fetches_of_an_item_fails_the_other_carries_on() {
        let config = QueueConfig { hedge_after: Some(Duration::from_millis(100)), ..cfg(4, 4) };
        let mut q = SyncQueue::<u32, ()>::new(config);
        q.push(0);
        q.add_peer(p(1));
        q.add_peer(p(2));
        let first = q.next_fetch(Time::ZERO).unwrap();
        let hedge = q.next_fetch(Time::from_millis(100)).unwrap();
        assert!(q.failed(first.seq, p(1)));
        assert_eq!(q.next_fetch(Time::from_millis(150)), None, "still in flight to p(2)");
        // Only p(2)'s deadline is due: no further fetch, as every peer was asked.
        assert_eq!(q.next_deadline(), Some(hedge.deadline));
        assert!(q.arrived(hedge.seq, p(2), (), Time::from_millis(200)));
        assert!(q.pop_ready().is_some() && q.is_finished());
    }

    #[test]
    fn truncating_frees_the_window_and_refuses_late_answers() {
        let mut q = SyncQueue::<u32, u32>::new(cfg(3, 3));
        (0..6).for_each(|i| q.push(i));
        q.add_peer(p(1));
        let t = Time::ZERO;
        let f: Vec<_> = std::iter::from_fn(|| q.next_fetch(t)).collect();
        assert_eq!(f.len(), 3);
        assert!(q.arrived(0, p(1), 0, t));
        assert!(q.arrived(2, p(1), 20, t));
        assert_eq!(q.pop_ready().map(|r| r.id), Some(0));
        // Keep positions 0 and 1 (1 in flight), drop 2 (arrived) and 3..6 (waiting).
        assert_eq!(q.truncate(2), 4);
        assert_eq!((q.remaining(), q.active(), q.in_flight_to(&p(1))), (1, 1, 1));
        assert!(!q.arrived(2, p(1), 20, t), "a dropped position is not wanted");
        assert_eq!(q.next_fetch(t), None, "nothing left to ask");
        assert!(q.arrived(1, p(1), 10, t));
        assert_eq!(q.pop_ready().map(|r| r.id), Some(1));
        assert!(q.is_finished());
        // New ids continue at the next position.
        q.push(7);
        let next = q.next_fetch(t).unwrap();
        assert_eq!((next.seq, next.id), (2, 7));
        assert_eq!(q.truncate(5), 0, "nothing beyond the end");
    }

    #[test]
    fn filled_items_that_fill_the_window_do_not_stall_the_item_blocking_release() {
        let mut q = SyncQueue::<u32, u32>::new(cfg(2, 2));
        (0..4).for_each(|i| q.push(i));
        q.add_peer(p(1));
        assert_eq!(q.fill_with(|id| (*id > 0).then_some((*id, p(9)))), 3);
        assert!(q.active() > 2, "past the window");
        let f = q.next_fetch(Time::ZERO).expect("the blocking item is still asked");
        assert_eq!(f.id, 0);
        assert_eq!(q.next_fetch(Time::ZERO), None);
        assert!(q.arrived(f.seq, p(1), 0, Time::ZERO));
        assert_eq!(std::iter::from_fn(|| q.pop_ready()).count(), 4);
        assert!(q.is_finished());
    }

    #[test]
    fn ids_filled_from_elsewhere_are_released_in_order_without_a_fetch() {
        let mut q = SyncQueue::<u32, u32>::new(cfg(2, 2));
        (0..4).for_each(|i| q.push(i));
        q.add_peer(p(1));
        let first = q.next_fetch(Time::ZERO).unwrap();
        assert_eq!(first.id, 0);
        // 1 and 3 come from elsewhere; 0 is in flight and not replaced.
        let filled = q.fill_with(|id| [0, 1, 3].contains(id).then_some((id * 10, p(9))));
        assert_eq!(filled, 2);
        assert_eq!(q.next_fetch(Time::ZERO), None, "the window is full");
        assert!(q.arrived(first.seq, p(1), 0, Time::ZERO));
        let out: Vec<_> = std::iter::from_fn(|| q.pop_ready()).map(|r| (r.id, r.item, r.peer)).collect();
        assert_eq!(out, [(0, 0, p(1)), (1, 10, p(9))]);
        assert_eq!(q.next_fetch(Time::ZERO).map(|f| f.id), Some(2), "only 2 is fetched");
    }
}
