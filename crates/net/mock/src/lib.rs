//! An in-process [`Network`](petrel_network_api::Network) for tests, simulations and benches.
//!
//! # Overview
//!
//! A [`MockHub`] holds any number of nodes. Each node is a [`MockNetwork`], a cheap cloneable
//! handle implementing the `Network` trait, so sync and consensus code runs on it unchanged. The
//! hub simulates, per message and from one seeded ChaCha RNG:
//!
//! * latency plus uniform jitter, and a per-link bandwidth (messages on a link queue behind each
//!   other);
//! * loss: a dropped request leaves the requester waiting for its timeout, a dropped gossip message
//!   never arrives;
//! * partitions between groups of nodes, and healing them; a message that departs or arrives while
//!   its link is cut is dropped;
//! * the serving side's rules as the real network applies them: request size limits, per-peer and
//!   per-type rate limits, bounded handler queues, reputation with penalties and bans. Differences
//!   from `petrel-network-libp2p`: the rate limit is a sliding window (libp2p: fixed), reputation
//!   does not recover over time, and a dropped responder yields `ConnectionClosed` (libp2p: `Busy`).
//!
//! A [`ScriptedPeer`] is a node whose answers come from a test closure ([`ScriptedReply`]): garbage
//! frames, silence, disconnects, delays. That is how tests script lying or broken peers.
//!
//! # Determinism
//!
//! Every delay is a `tokio::time::sleep` and every timeout a `tokio::time::timeout`; nothing reads
//! the wall clock or sleeps for real. Under `#[tokio::test(start_paused = true)]` (a current-thread
//! runtime with paused time) a scenario runs instantly and, for a given [`HubConfig::seed`], always
//! the same way: the same messages are lost and every message arrives at the same virtual instant.
//!
//! # Usage
//!
//! ```
//! use petrel_network_api::{Network, Services};
//! use petrel_network_mock::{HubConfig, MockHub};
//!
//! let hub = MockHub::new(HubConfig { seed: 7, ..HubConfig::default() });
//! let a = hub.node(Services::FULL_NODE);
//! let b = hub.node(Services::NONE);
//! hub.connect(&a, &b).expect("fresh nodes connect");
//! assert!(a.peer_provides(&b.local_peer_id(), Services::NONE));
//! ```
//!
//! Gossip is delivered directly to connected subscribers (gossipsub's forwarding is not simulated)
//! by a spawned task per recipient, so `publish_raw` must run inside a tokio runtime. Requests spawn
//! nothing: the whole exchange runs inside the requester's future.

mod hub;
mod node;
mod scripted;
mod serve;

#[cfg(test)]
mod tests;

pub use hub::{AsPeerId, ConfigError, ConnectError, HubConfig, MockHub};
pub use node::{MockNetwork, NodeStats};
pub use scripted::{ScriptedPeer, ScriptedReply};

/// Tracing target of every event this crate logs.
pub const TRACE_TARGET: &str = "net::mock";
