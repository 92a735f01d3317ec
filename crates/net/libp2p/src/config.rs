//! Configuration of a libp2p network node, with its defaults.

use std::time::Duration;

use libp2p::identity::Keypair;
use petrel_network_api::{Promises, Services};
use petrel_primitives::Blake2bHash;

use crate::Error;

/// Everything a [`crate::Libp2pNetwork`] needs to start.
///
/// Build one with [`Libp2pConfig::with_seed`] (deterministic identity) or
/// [`Libp2pConfig::random`], then set the public fields, e.g.
/// `Libp2pConfig { genesis_hash, services, listen: vec![..], ..Libp2pConfig::with_seed(seed) }`.
#[derive(Debug, Clone)]
pub struct Libp2pConfig {
    /// The node's identity (an ed25519 key pair).
    pub keypair: Keypair,
    /// Multiaddrs to listen on, e.g. `/ip4/0.0.0.0/tcp/8443` (`/tcp/0` picks a free port; see
    /// [`crate::Libp2pNetwork::listen_addrs`]).
    pub listen: Vec<String>,
    /// Multiaddrs of peers to dial at start and to redial, with a bounded backoff, while they are
    /// not connected. A trailing `/p2p/<peer id>` is optional.
    pub bootstrap: Vec<String>,
    /// The genesis hash of our chain: peers on another chain are refused.
    pub genesis_hash: Blake2bHash,
    /// The services we advertise.
    pub services: Services,
    /// Which services promise each request type (`petrel_protocol::PROMISES`): an unserved type we
    /// promised costs the requester nothing. Default: none.
    pub promises: Promises,
    /// Timeout of an outbound request, and of the local handler answering an inbound one.
    pub request_timeout: Duration,
    /// Most established connections in total.
    pub max_connections: u32,
    /// Most established connections to one peer.
    pub max_connections_per_peer: u32,
    /// Connections of `max_connections` that inbound connections may not take: kept for the
    /// peers we dial (bootstrap peers), so that inbound connections alone cannot fill the node
    /// (eclipse).
    pub reserved_outbound: u32,
    /// Most inbound connections from one IP address.
    pub max_inbound_per_ip: u32,
    /// Most connections being set up (each direction).
    pub max_pending_connections: u32,
    /// Most request-response streams open at once on one connection (both directions).
    pub max_concurrent_streams: usize,
    /// A peer whose reputation falls to this value or below is banned. An invalid-data fault
    /// costs [`crate::PENALTY`], a minor one a fifth of it, a malicious one bans at once.
    pub ban_threshold: i32,
    /// Reputation points a peer regains per second, up to 0 (default [`crate::RECOVERY_PER_SEC`];
    /// 0: penalties never wear off, which tests use to count faults exactly).
    pub reputation_recovery_per_sec: f64,
    /// A connection without any open stream is closed after this long.
    pub idle_connection_timeout: Duration,
    /// First delay before redialling a bootstrap peer; doubles on each failure.
    pub redial_initial_backoff: Duration,
    /// Longest delay between two dials of a bootstrap peer.
    pub redial_max_backoff: Duration,
    /// Gossipsub heartbeat (mesh maintenance) interval.
    pub gossip_heartbeat: Duration,
    /// Largest gossipsub RPC, including framing and signature (must exceed the largest topic's
    /// `MAX_SIZE`).
    pub gossip_max_transmit_size: usize,
}

impl Libp2pConfig {
    /// Defaults around a given key pair: genesis `ZERO`, no services, no addresses.
    pub fn with_keypair(keypair: Keypair) -> Self {
        Self {
            keypair,
            listen: Vec::new(),
            bootstrap: Vec::new(),
            genesis_hash: Blake2bHash::ZERO,
            services: Services::NONE,
            promises: &[],
            request_timeout: Duration::from_secs(10),
            max_connections: 64,
            max_connections_per_peer: 1,
            reserved_outbound: 8,
            max_inbound_per_ip: 8,
            max_pending_connections: 32,
            max_concurrent_streams: 64,
            ban_threshold: -100,
            reputation_recovery_per_sec: crate::RECOVERY_PER_SEC,
            idle_connection_timeout: Duration::from_secs(3600),
            redial_initial_backoff: Duration::from_secs(1),
            redial_max_backoff: Duration::from_secs(60),
            gossip_heartbeat: Duration::from_secs(1),
            gossip_max_transmit_size: 2 * 1024 * 1024 + 64 * 1024,
        }
    }

    /// Defaults with a deterministic ed25519 identity derived from `seed` (the secret key bytes).
    pub fn with_seed(seed: [u8; 32]) -> Self {
        let mut seed = seed;
        // A 32-byte ed25519 secret key always decodes; the fallback is unreachable.
        let keypair = Keypair::ed25519_from_bytes(&mut seed).unwrap_or_else(|_| Keypair::generate_ed25519());
        Self::with_keypair(keypair)
    }

    /// Defaults with a fresh random identity.
    pub fn random() -> Self {
        Self::with_keypair(Keypair::generate_ed25519())
    }

    /// Checks the values that libp2p would otherwise reject later or misbehave with.
    pub(crate) fn check(&self) -> Result<(), Error> {
        let bad = |what: &str| Err(Error::Config(what.to_string()));
        if self.max_connections == 0 || self.max_connections_per_peer == 0 || self.max_inbound_per_ip == 0 {
            return bad("connection limits must be at least 1");
        }
        if self.reserved_outbound >= self.max_connections {
            return bad("reserved_outbound must leave room for inbound connections (below max_connections)");
        }
        if self.max_concurrent_streams == 0 {
            return bad("max_concurrent_streams must be at least 1");
        }
        if self.request_timeout.is_zero() || self.gossip_heartbeat.is_zero() {
            return bad("timeouts and the gossip heartbeat must be positive");
        }
        if self.redial_initial_backoff.is_zero() || self.redial_max_backoff < self.redial_initial_backoff {
            return bad("redial backoff must be positive and max >= initial");
        }
        if self.ban_threshold >= 0 {
            return bad("ban_threshold must be negative");
        }
        Ok(())
    }
}

impl Default for Libp2pConfig {
    /// Same as [`Libp2pConfig::random`].
    fn default() -> Self {
        Self::random()
    }
}
