//! Peer bookkeeping that decides refusals and bans: reputation with recovery, per-(peer, type)
//! rate limits, and the ban list. Pure data structures: time is passed in, nothing here does I/O,
//! and every map is bounded.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::time::{Duration, Instant};

/// What one fault costs (a rejected gossip message, an unsupported, oversized or rate-limited
/// request, or a [`petrel_network_api::Network::penalize`] call).
pub const PENALTY: i32 = 10;
/// Reputation points a peer regains per second, up to 0 (the default of
/// `Libp2pConfig::reputation_recovery_per_sec`).
pub const RECOVERY_PER_SEC: f64 = 0.1;

/// Most peers whose reputation is remembered.
pub(crate) const MAX_SCORED_PEERS: usize = 4096;
/// Most banned peers remembered; the oldest ban is lifted first.
pub(crate) const MAX_BANNED_PEERS: usize = 4096;

#[derive(Clone, Copy, Debug)]
struct Score {
    value: f64,
    updated: Instant,
}

impl Score {
    fn at(self, now: Instant, recovery_per_sec: f64) -> f64 {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        (self.value + elapsed * recovery_per_sec).min(0.0)
    }
}

/// Reputation of peers: starts at 0, each penalty subtracts, recovers linearly towards 0.
#[derive(Debug)]
pub(crate) struct Reputation<K> {
    scores: HashMap<K, Score>,
    cap: usize,
    recovery_per_sec: f64,
}

impl<K: Hash + Eq + Copy> Reputation<K> {
    /// An empty book remembering at most `cap` peers, whose scores recover by
    /// [`RECOVERY_PER_SEC`].
    #[cfg(test)]
    pub(crate) fn new(cap: usize) -> Self {
        Self::with_recovery(cap, RECOVERY_PER_SEC)
    }

    /// An empty book whose scores recover by `recovery_per_sec` (0: never).
    pub(crate) fn with_recovery(cap: usize, recovery_per_sec: f64) -> Self {
        Self { scores: HashMap::new(), cap: cap.max(1), recovery_per_sec: recovery_per_sec.max(0.0) }
    }

    /// Current score of a peer (0 when unknown).
    pub(crate) fn score(&self, peer: &K, now: Instant) -> f64 {
        self.scores.get(peer).map_or(0.0, |s| s.at(now, self.recovery_per_sec))
    }

    /// Subtracts `amount` and returns the new score. When the book is full, the peer with the best
    /// score that `keep` does not protect is forgotten first.
    pub(crate) fn penalize(&mut self, peer: K, amount: i32, now: Instant, keep: impl Fn(&K) -> bool) -> f64 {
        if !self.scores.contains_key(&peer) && self.scores.len() >= self.cap {
            let victim = self
                .scores
                .iter()
                .filter(|(k, _)| !keep(k))
                .max_by(|a, b| a.1.at(now, self.recovery_per_sec).total_cmp(&b.1.at(now, self.recovery_per_sec)))
                .or_else(|| {
                    self.scores.iter().max_by(|a, b| {
                        a.1.at(now, self.recovery_per_sec).total_cmp(&b.1.at(now, self.recovery_per_sec))
                    })
                })
                .map(|(k, _)| *k);
            if let Some(victim) = victim {
                self.scores.remove(&victim);
            }
        }
        let current = self.score(&peer, now);
        let value = current - f64::from(amount);
        self.scores.insert(peer, Score { value, updated: now });
        value
    }

    /// Forgets a peer.
    pub(crate) fn forget(&mut self, peer: &K) {
        self.scores.remove(peer);
    }

    /// Whether the book remembers this peer.
    pub(crate) fn contains(&self, peer: &K) -> bool {
        self.scores.contains_key(peer)
    }
}

#[derive(Clone, Copy, Debug)]
struct Window {
    start: Instant,
    /// When it ends (`start` + the type's time window).
    end: Instant,
    count: u32,
}

/// Fixed-window rate limits per (peer, request type). A window outlives its peer's connection
/// until it ends, so reconnecting does not reset a peer's count; ended windows are dropped when a
/// peer disconnects ([`RateLimiter::expire`]), so the map is bounded by the peers seen within one
/// time window × registered types.
#[derive(Debug)]
pub(crate) struct RateLimiter<K> {
    windows: HashMap<(K, u16), Window>,
}

impl<K: Hash + Eq + Copy> RateLimiter<K> {
    /// No windows yet.
    pub(crate) fn new() -> Self {
        Self { windows: HashMap::new() }
    }

    /// Counts one request; `false` when it is over `max` within `window`.
    pub(crate) fn allow(&mut self, peer: K, type_id: u16, max: u32, window: Duration, now: Instant) -> bool {
        let fresh = Window { start: now, end: now + window, count: 0 };
        let w = self.windows.entry((peer, type_id)).or_insert(fresh);
        if now.saturating_duration_since(w.start) >= window {
            *w = fresh;
        }
        w.count = w.count.saturating_add(1);
        w.count <= max
    }

    /// Drops the windows that ended by `now` (of any peer).
    pub(crate) fn expire(&mut self, now: Instant) {
        self.windows.retain(|_, w| w.end > now);
    }
}

/// Banned peers, bounded: banning one more than the capacity lifts the oldest ban.
#[derive(Debug)]
pub(crate) struct BanList<K> {
    set: HashSet<K>,
    order: VecDeque<K>,
    cap: usize,
}

impl<K: Hash + Eq + Copy> BanList<K> {
    /// Nobody banned.
    pub(crate) fn new(cap: usize) -> Self {
        Self { set: HashSet::new(), order: VecDeque::new(), cap: cap.max(1) }
    }

    /// Bans a peer; returns whether it is newly banned and the peer whose ban was lifted to make
    /// room.
    pub(crate) fn ban(&mut self, peer: K) -> (bool, Option<K>) {
        if !self.set.insert(peer) {
            return (false, None);
        }
        self.order.push_back(peer);
        let mut lifted = None;
        if self.order.len() > self.cap {
            lifted = self.order.pop_front();
            if let Some(old) = &lifted {
                self.set.remove(old);
            }
        }
        (true, lifted)
    }

    /// Whether a peer is banned.
    pub(crate) fn contains(&self, peer: &K) -> bool {
        self.set.contains(peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn penalties_accumulate_and_recover() {
        let t0 = Instant::now();
        let mut r = Reputation::new(8);
        assert_eq!(r.penalize(1u8, PENALTY, t0, |_| false), -10.0);
        assert_eq!(r.penalize(1u8, PENALTY, t0, |_| false), -20.0);
        let later = t0 + Duration::from_secs(100);
        assert!((r.score(&1, later) - (-10.0)).abs() < 1e-9);
        assert_eq!(r.score(&1, t0 + Duration::from_secs(10_000)), 0.0);
        assert_eq!(r.score(&2, t0), 0.0);
    }

    #[test]
    fn reputation_is_bounded_and_evicts_the_best_unprotected() {
        let t0 = Instant::now();
        let mut r = Reputation::new(2);
        r.penalize(1u8, 50, t0, |_| false);
        r.penalize(2u8, 10, t0, |_| false);
        // Peer 2 has the best score but is protected: peer 1 goes.
        r.penalize(3u8, 10, t0, |k| *k == 2);
        assert!(!r.contains(&1) && r.contains(&2) && r.contains(&3));
    }

    #[test]
    fn rate_limit_window() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new();
        let w = Duration::from_secs(10);
        assert!(l.allow(1u8, 7, 2, w, t0));
        assert!(l.allow(1u8, 7, 2, w, t0));
        assert!(!l.allow(1u8, 7, 2, w, t0));
        assert!(l.allow(1u8, 8, 2, w, t0), "types are counted separately");
        assert!(l.allow(2u8, 7, 2, w, t0), "peers are counted separately");
        assert!(l.allow(1u8, 7, 2, w, t0 + w), "a new window starts");
    }

    /// A peer that reconnects within its window finds its count where it left it; windows that
    /// ended are dropped.
    #[test]
    fn a_reconnect_does_not_reset_the_rate_limit() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new();
        let w = Duration::from_secs(10);
        assert!(l.allow(1u8, 7, 2, w, t0));
        assert!(l.allow(1u8, 7, 2, w, t0));
        // Disconnect and come back a second later: still over the limit.
        l.expire(t0 + Duration::from_secs(1));
        assert!(!l.allow(1u8, 7, 2, w, t0 + Duration::from_secs(1)));
        // Once the window ended, it is dropped on the next expiry.
        l.expire(t0 + w);
        assert!(l.windows.is_empty());
        assert!(l.allow(1u8, 7, 2, w, t0 + w));
    }

    #[test]
    fn ban_list_lifts_the_oldest() {
        let mut b = BanList::new(2);
        assert_eq!(b.ban(1u8), (true, None));
        assert_eq!(b.ban(1u8), (false, None));
        assert_eq!(b.ban(2u8), (true, None));
        assert_eq!(b.ban(3u8), (true, Some(1)));
        assert!(!b.contains(&1) && b.contains(&2) && b.contains(&3));
    }
}
