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
    /// Serves segment proofs of the election chain (`RequestZkp`; zero-knowledge light sync).
    pub const ZKP_PROOFS: Self = Self(1 << 4);

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
    /// The kind of node these services describe, for metrics and status: `history`, `full`,
    /// `macro` (serves the macro chain only) or `light` (light and pico nodes serve nothing).
    pub fn class(self) -> &'static str {
        if self.contains(Self::HISTORY) {
            "history"
        } else if self.contains(Self::FULL_BLOCKS) {
            "full"
        } else if self.contains(Self::MACRO_CHAIN) {
            "macro"
        } else {
            "light"
        }
    }
}

impl fmt::Debug for Services {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (Self::FULL_BLOCKS, "FULL_BLOCKS"),
            (Self::HISTORY, "HISTORY"),
            (Self::MACRO_CHAIN, "MACRO_CHAIN"),
            (Self::RECENT_HISTORY, "RECENT_HISTORY"),
            (Self::ZKP_PROOFS, "ZKP_PROOFS"),
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

/// How much a fault says about a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Could be bad luck or load (a slow answer, a refused request): a small penalty; only many
    /// of them ban.
    Minor,
    /// Provably wrong data that an honest but buggy or lagging peer could send (an undecodable
    /// frame, blocks that do not connect): the standard penalty.
    InvalidData,
    /// Provably bad data no honest peer sends (a block that fails verification, an answer
    /// contradicting what the peer itself announced): banned at once.
    Malicious,
}

/// Why a peer is penalised. One variant per rule that penalises; the text is for logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PenaltyReason {
    /// A request to the peer timed out more often than the sync tolerates.
    Unresponsive,
    /// The peer's answer did not decode or was over the type's limit.
    MalformedResponse,
    /// The peer answered with something other than what was asked (another block, too many items).
    WrongAnswer,
    /// A block or proof the peer served does not verify.
    InvalidBlock,
    /// The peer says it lacks an item it announced itself.
    MissingAnnounced,
    /// The peer's macro chain conflicts with the one we verified or adopted.
    ConflictingChain,
    /// The peer announced a block that turned out invalid once its parent arrived.
    InvalidBufferedBlock,
    /// Blocks the peer sent in answer to a missing-blocks request do not connect to our chain.
    DisconnectedBlocks,
    /// A gossip message over the topic's size limit.
    OversizedGossip,
    /// A gossip message our validator rejected.
    RejectedGossip,
    /// A request over its type's size limit, or that does not decode.
    MalformedRequest,
    /// A request of a type we do not serve.
    UnsupportedRequest,
    /// More requests of one type than the per-peer rate limit allows.
    RateLimitExceeded,
}

impl PenaltyReason {
    /// A short description for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            PenaltyReason::Unresponsive => "unresponsive",
            PenaltyReason::MalformedResponse => "malformed response",
            PenaltyReason::WrongAnswer => "answer differs from the request",
            PenaltyReason::InvalidBlock => "served a block that does not verify",
            PenaltyReason::MissingAnnounced => "lacks an item it announced",
            PenaltyReason::ConflictingChain => "conflicting macro chain",
            PenaltyReason::InvalidBufferedBlock => "announced an invalid block",
            PenaltyReason::DisconnectedBlocks => "missing blocks do not connect",
            PenaltyReason::OversizedGossip => "oversized gossip message",
            PenaltyReason::RejectedGossip => "rejected gossip message",
            PenaltyReason::MalformedRequest => "malformed request",
            PenaltyReason::UnsupportedRequest => "unsupported request type",
            PenaltyReason::RateLimitExceeded => "rate limit exceeded",
        }
    }
}

impl std::fmt::Display for PenaltyReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A penalty: a severity and a typed reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Penalty {
    /// How bad.
    pub severity: Severity,
    /// Why.
    pub reason: PenaltyReason,
}

impl Penalty {
    /// A penalty.
    pub const fn new(severity: Severity, reason: PenaltyReason) -> Self {
        Self { severity, reason }
    }

    /// The reputation points it costs, given the standard (invalid-data) penalty; `None` means
    /// "ban at once". A minor fault costs a fifth of the standard penalty (at least one point).
    pub fn points(self, standard: i32) -> Option<i32> {
        match self.severity {
            Severity::Minor => Some((standard / 5).max(1)),
            Severity::InvalidData => Some(standard),
            Severity::Malicious => None,
        }
    }
}

impl std::fmt::Display for Penalty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({:?})", self.reason, self.severity)
    }
}
