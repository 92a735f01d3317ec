//! Petrel's [`Network`](petrel_network_api::Network) over libp2p: TCP + Noise + Yamux on Tokio,
//! with identify (genesis hash and services), ping, one length-delimited request-response
//! protocol carrying raw frames, and gossipsub with an explicit verdict per message.
//!
//! The crate is a handle plus an event loop, and everything is bounded:
//!
//! - [`Libp2pNetwork`] is the cheap, cloneable handle. It sends commands on a
//!   bounded queue, each carrying a `oneshot` for its reply, and reads the connected peers from
//!   shared state.
//! - [`EventLoop`] owns the swarm, keeps the pending-reply maps, and enforces the serving side's
//!   rules: per-type size limits (`Malformed`), unknown types (`Unsupported`), per-(peer, type) rate
//!   limits (`RateLimited`), full handler queues (`Busy`); faults lower the peer's reputation and
//!   enough of them ban it. The caller spawns [`EventLoop::run`]; the library spawns nothing of
//!   its own.
//!
//! A peer joins ([`NetworkEvent::PeerJoined`](petrel_network_api::NetworkEvent)) only after
//! identify showed it is on the same chain (same genesis hash in the protocol version) and told
//! its services; it leaves when its last connection closes.

mod behaviour;
mod codec;
mod config;
mod event_loop;
mod gossip_ids;
mod network;
mod per_ip;
mod reputation;

pub use codec::{MAX_REQUEST_FRAME, MAX_RESPONSE_FRAME, PROTOCOL_NAME};
pub use config::Libp2pConfig;
pub use event_loop::EventLoop;
pub use libp2p::Multiaddr;
pub use libp2p::identity::Keypair;
pub use network::{COMMAND_QUEUE, ConnectionCounts, Libp2pNetwork, PeerStanding};
pub use reputation::{PENALTY, RECOVERY_PER_SEC};

/// Why a network could not be started.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A listen or bootstrap address does not parse.
    #[error("invalid address {0:?}: {1}")]
    Address(String, String),
    /// The transport could not be built or could not listen.
    #[error("transport: {0}")]
    Transport(String),
}
