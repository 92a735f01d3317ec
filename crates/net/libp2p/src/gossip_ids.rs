//! The bounded map from the [`GossipId`]s handed to subscribers to what gossipsub needs for the
//! verdict (its message id and the propagation source). The oldest entries are evicted first; a
//! verdict for an evicted id is dropped, and gossipsub forgets the message on its own.

use std::collections::{HashMap, VecDeque};

use petrel_network_api::GossipId;

/// Most messages awaiting a verdict.
pub(crate) const MAX_PENDING_VERDICTS: usize = 8192;

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct GossipIds<V> {
    next: u64,
    entries: HashMap<u64, V>,
    order: VecDeque<u64>,
    cap: usize,
}

impl<V> GossipIds<V> {
    /// Empty, holding at most `cap` entries.
    pub(crate) fn new(cap: usize) -> Self {
        Self { next: 0, entries: HashMap::new(), order: VecDeque::new(), cap: cap.max(1) }
    }

    /// Stores a value under a fresh id, evicting the oldest entries beyond the capacity.
    pub(crate) fn insert(&mut self, value: V) -> GossipId {
        let id = self.next;
        self.next = self.next.wrapping_add(1);
        self.entries.insert(id, value);
        self.order.push_back(id);
        while self.entries.len() > self.cap {
            match self.order.pop_front() {
                Some(old) => {
                    self.entries.remove(&old);
                }
                None => break,
            }
        }
        // Ids taken out of order leave stale entries in `order`; drop them when they pile up.
        if self.order.len() > 2 * self.cap {
            let entries = &self.entries;
            self.order.retain(|id| entries.contains_key(id));
        }
        GossipId(id)
    }

    /// Takes the value of an id (once).
    pub(crate) fn take(&mut self, id: GossipId) -> Option<V> {
        self.entries.remove(&id.0)
    }

    /// Number of entries.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_taken_once_and_bounded() {
        let mut ids = GossipIds::new(3);
        let a = ids.insert("a");
        let b = ids.insert("b");
        assert_ne!(a, b);
        assert_eq!(ids.take(a), Some("a"));
        assert_eq!(ids.take(a), None);
        let _c = ids.insert("c");
        let _d = ids.insert("d");
        let _e = ids.insert("e");
        assert_eq!(ids.len(), 3);
        assert_eq!(ids.take(b), None, "the oldest was evicted");
        for _ in 0..100 {
            let id = ids.insert("x");
            ids.take(id);
        }
        assert!(ids.order.len() <= 6);
    }
}
