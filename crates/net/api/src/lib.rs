//! The network seen by sync and consensus: peers with their services, typed request/response with
//! size limits and per-peer rate limits, gossip with an Accept/Reject/Ignore verdict per message,
//! peer events, and disconnects with a reason ("malicious" bans the peer).
//!
//! No libp2p types appear here. Implementations (`petrel-network-mock`, `petrel-network-libp2p`)
//! move raw frames; this crate's [`NetworkExt`] adds the typed layer on top, so encoding, size
//! checks and error mapping are written once. Every decode checks the message type's size limit
//! before allocating.

mod counting;
mod error;
mod gossip;
mod network;
mod peer;
mod request;

pub use counting::{Counting, ReceivedHook, Traffic, TrafficSnapshot};
pub use error::{InboundError, NetworkError, RequestError};
pub use gossip::{GossipId, GossipMessage, Topic, Verdict};
pub use network::{
    InboundRequest, Network, NetworkExt, RequestLimits, ResponseFrame, TypedInbound, TypedRequests,
    decode_response_frame,
};
pub use peer::{DisconnectReason, NetworkEvent, PeerId, PeerInfo, Penalty, PenaltyReason, Services, Severity};
pub use request::{Promises, Request, ResponseStatus, promised};

/// Capacity of every peer-event subscription; a subscriber that falls behind loses the oldest
/// events and is told how many (`Lagged`).
pub const EVENT_CAPACITY: usize = 1024;
/// Capacity of each inbound-request queue per request type; when full, new requests are refused
/// with [`ResponseStatus::Busy`].
pub const INBOUND_QUEUE: usize = 256;
/// Capacity of each gossip subscription queue; when full, new messages are ignored.
pub const GOSSIP_QUEUE: usize = 256;
