//! Peers, their services and the events about them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A peer's identity: Blake2b-256 of the transport's own peer id, so that it is `Copy` and
/// collision-resistant whatever the transport.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PeerId(pub [u8; 32]);

impl PeerId {
    /// Derives a peer id from a transport identity's bytes.
    pub fn from_transport_bytes(bytes: &[u8]) -> Self {
        Self(petrel_primitives::Blake2bHash::digest(bytes).0)
    }
    /// A peer id for tests and the mock network.
    pub fn from_index(i: u64) -> Self {
        Self::from_transport_bytes(&i.to_be_bytes())
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0[..6] {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({self})")
    }
}

/// Services a node provides (bit flags, protocol-reference §2.2).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Services(pub u32);

impl Services {
    /// No services.
    pub const NONE: Self = Self(0);
    /// Serves full blocks (bodies).
    pub const FULL_BLOCKS: Self = Self(1 << 0);
    /// Serves all history since genesis.
    pub const HISTORY: Self = Self(1 << 1);
    /// Serves macro blocks and justifications (the macro chain).
    pub const MACRO_CHAIN: Self = Self(1 << 2);
    /// Serves recent history (a full node's last epochs).
    pub const RECENT_HISTORY: Self = Self(1 << 3);

    /// What a history node provides.
    pub const HISTORY_NODE: Self =
        Self(Self::FULL_BLOCKS.0 | Self::HISTORY.0 | Self::MACRO_CHAIN.0 | Self::RECENT_HISTORY.0);
    /// What a full node provides.
    pub const FULL_NODE: Self = Self(Self::FULL_BLOCKS.0 | Self::MACRO_CHAIN.0 | Self::RECENT_HISTORY.0);

    /// Whether every flag of `other` is set.
    pub fn contains(self, other: Services) -> bool {
        self.0 & other.0 == other.0
    }
    /// Union.
    pub fn union(self, other: Services) -> Services {
        Services(self.0 | other.0)
    }
}

impl fmt::Debug for Services {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (Self::FULL_BLOCKS, "FULL_BLOCKS"),
            (Self::HISTORY, "HISTORY"),
            (Self::MACRO_CHAIN, "MACRO_CHAIN"),
            (Self::RECENT_HISTORY, "RECENT_HISTORY"),
        ];
        let set: Vec<_> = names.iter().filter(|(s, _)| self.contains(*s)).map(|(_, n)| *n).collect();
        write!(f, "Services({})", if set.is_empty() { "NONE".to_string() } else { set.join("|") })
    }
}

/// What we know about a connected peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// Services it advertised.
    pub services: Services,
    /// Its address, for display.
    pub address: String,
}

/// Peer events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetworkEvent {
    /// A peer connected and was accepted (same network, known services).
    PeerJoined(PeerId, PeerInfo),
    /// A peer disconnected.
    PeerLeft(PeerId),
}

/// Why we disconnect a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DisconnectReason {
    /// No particular reason.
    Other,
    /// The peer's requests failed (transport errors, timeouts).
    Error,
    /// We are shutting down.
    GoingOffline,
    /// The peer sent provably bad data: it is banned.
    Malicious,
}
