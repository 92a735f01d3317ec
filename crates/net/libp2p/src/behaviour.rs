//! The composed libp2p behaviour and the swarm around it.
//!
//! Order matters: behaviours are asked in field order whether to accept a connection, so the
//! cheap refusals come first.
//!
//! 1. `limits`: connection limits (total, per peer, pending) — refuses before anything else runs.
//! 2. `per_ip`: inbound connections per remote IP address, counted from TCP accept and refused
//!    before the handshake ([`crate::per_ip`]).
//! 3. `blocked`: the ban list — refuses banned peers and closes their open connections.
//! 4. `identify`: exchanges genesis hash (protocol version) and services (agent version); a peer
//!    joins only after this succeeds.
//! 5. `ping`: liveness; a timed-out ping closes the connection.
//! 6. `request_response`: the one protocol [`crate::codec::PROTOCOL_NAME`].
//! 7. `gossipsub`: signed messages, strict validation, content-addressed message ids, and an
//!    explicit verdict per message.

use libp2p::identity::Keypair;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{
    StreamProtocol, Swarm, SwarmBuilder, allow_block_list, connection_limits, gossipsub, identify, noise, ping,
    request_response, tcp, yamux,
};
use petrel_network_api::Services;
use petrel_primitives::{Blake2bHash, Hasher};

use crate::Error;
use crate::codec::{PROTOCOL_NAME, WireCodec};
use crate::config::Libp2pConfig;

/// See the module documentation for the order.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub(crate) limits: connection_limits::Behaviour,
    pub(crate) per_ip: crate::per_ip::Behaviour,
    pub(crate) blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    pub(crate) identify: identify::Behaviour,
    pub(crate) ping: ping::Behaviour,
    pub(crate) request_response: request_response::Behaviour<WireCodec>,
    pub(crate) gossipsub: gossipsub::Behaviour,
}

/// The identify protocol version: names the chain by its genesis hash.
pub(crate) fn protocol_version(genesis: &Blake2bHash) -> String {
    format!("/petrel/{}/1", genesis.to_hex())
}

/// The identify agent version: our version and advertised services.
pub(crate) fn agent_version(services: Services) -> String {
    format!("petrel/{} services={}", env!("CARGO_PKG_VERSION"), services.0)
}

/// Reads the services from an agent version; `None` if it carries none.
pub(crate) fn parse_services(agent_version: &str) -> Option<Services> {
    agent_version
        .split_whitespace()
        .find_map(|part| part.strip_prefix("services="))
        .and_then(|s| s.parse::<u32>().ok())
        .map(Services)
}

/// Content-addressed gossip message id: Blake2b over the topic and the data.
fn message_id(message: &gossipsub::Message) -> gossipsub::MessageId {
    let mut h = Hasher::new();
    h.update(message.topic.as_str().as_bytes());
    h.update(&[0]);
    h.update(&message.data);
    gossipsub::MessageId::new(&h.finish().0)
}

fn behaviour(key: &Keypair, config: &Libp2pConfig) -> Result<Behaviour, Error> {
    let limits = connection_limits::ConnectionLimits::default()
        .with_max_established(Some(config.max_connections))
        .with_max_established_per_peer(Some(config.max_connections_per_peer))
        // Inbound connections never take the slots kept for the peers we dial (refused once the
        // handshake names the peer, before they count; the per-IP cap refuses before it).
        .with_max_established_incoming(Some(config.max_connections.saturating_sub(config.reserved_outbound)))
        .with_max_pending_incoming(Some(config.max_pending_connections))
        .with_max_pending_outgoing(Some(config.max_pending_connections));

    let identify = identify::Behaviour::new(
        identify::Config::new(protocol_version(&config.genesis_hash), key.public())
            .with_agent_version(agent_version(config.services))
            .with_cache_size(0),
    );

    let request_response = request_response::Behaviour::with_codec(
        WireCodec::default(),
        [(StreamProtocol::new(PROTOCOL_NAME), request_response::ProtocolSupport::Full)],
        request_response::Config::default()
            .with_request_timeout(config.request_timeout)
            .with_max_concurrent_streams(config.max_concurrent_streams),
    );

    let gossip_config = gossipsub::ConfigBuilder::default()
        .heartbeat_interval(config.gossip_heartbeat)
        .validation_mode(gossipsub::ValidationMode::Strict)
        .validate_messages()
        .message_id_fn(message_id)
        .max_transmit_size(config.gossip_max_transmit_size)
        .build()
        .map_err(|e| Error::Config(format!("gossipsub: {e}")))?;
    let gossipsub = gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Signed(key.clone()), gossip_config)
        .map_err(|e| Error::Config(format!("gossipsub: {e}")))?;

    Ok(Behaviour {
        limits: connection_limits::Behaviour::new(limits),
        per_ip: crate::per_ip::Behaviour::new(config.max_inbound_per_ip as usize),
        blocked: allow_block_list::Behaviour::default(),
        identify,
        ping: ping::Behaviour::new(ping::Config::new()),
        request_response,
        gossipsub,
    })
}

/// Builds the swarm: TCP (no Nagle) + Noise + Yamux on Tokio.
pub(crate) fn build_swarm(config: &Libp2pConfig) -> Result<Swarm<Behaviour>, Error> {
    let behaviour = behaviour(&config.keypair, config)?;
    let builder = SwarmBuilder::with_existing_identity(config.keypair.clone())
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .map_err(|e| Error::Transport(e.to_string()))?;
    let builder = match builder.with_behaviour(|_| behaviour) {
        Ok(b) => b,
        Err(never) => match never {},
    };
    Ok(builder.with_swarm_config(|c| c.with_idle_connection_timeout(config.idle_connection_timeout)).build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identify_strings_round_trip() {
        let g = Blake2bHash::digest(b"genesis");
        assert_eq!(protocol_version(&g), format!("/petrel/{}/1", g.to_hex()));
        assert_eq!(parse_services(&agent_version(Services::FULL_NODE)), Some(Services::FULL_NODE));
        assert_eq!(parse_services("rust-libp2p/0.1"), None);
        assert_eq!(parse_services("petrel/0.1 services=x"), None);
    }
}
