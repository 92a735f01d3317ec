//! Gossip topics and per-message verdicts.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::PeerId;

/// A gossip topic with its item type and size limit.
pub trait Topic: Send + Sync + 'static {
    /// Topic name on the wire.
    const NAME: &'static str;
    /// Largest encoded item.
    const MAX_SIZE: usize;
    /// The item.
    type Item: Serialize + DeserializeOwned + Send + Sync + Clone + std::fmt::Debug + 'static;
}

/// Identifies a received gossip message for its verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GossipId(pub u64);

/// What to do with a received gossip message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Valid: propagate it.
    Accept,
    /// Invalid: drop it and penalise the sender.
    Reject,
    /// Not useful (old, duplicate): drop it without penalty.
    Ignore,
}

/// A received gossip message.
#[derive(Clone, Debug)]
pub struct GossipMessage<T> {
    /// The decoded item.
    pub item: T,
    /// Who forwarded it to us.
    pub source: PeerId,
    /// Pass to [`crate::Network::validate`].
    pub id: GossipId,
}
