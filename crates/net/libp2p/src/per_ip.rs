//! Inbound connections per IP address, refused before the handshake.
//!
//! libp2p's connection limits count per peer id, which costs an attacker nothing to change, and
//! only once the Noise handshake has named the peer. This behaviour counts inbound connections
//! by the remote address from the moment TCP accepts them, so a connection over
//! [`crate::Libp2pConfig::max_inbound_per_ip`] is dropped before any Noise or Yamux work, and
//! connections still in their handshake count towards the limit (one host holds at most that
//! many of the listener's pending slots). An IPv4 address is one host; so is an IPv6 /64 (the
//! usual allocation to one host or link, whose addresses cost nothing to vary), and an
//! IPv4-mapped IPv6 address counts as its IPv4 address.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::task::{Context, Poll};

use libp2p::core::Endpoint;
use libp2p::core::multiaddr::Protocol;
use libp2p::core::transport::PortUse;
use libp2p::swarm::{
    ConnectionClosed, ConnectionDenied, ConnectionId, FromSwarm, ListenFailure, NetworkBehaviour, THandler,
    THandlerInEvent, THandlerOutEvent, ToSwarm, dummy,
};
use libp2p::{Multiaddr, PeerId};

/// Refused: this address already holds its share of inbound connections.
#[derive(Debug, thiserror::Error)]
#[error("{ip} already holds {limit} inbound connections")]
pub(crate) struct TooManyFromIp {
    ip: IpAddr,
    limit: usize,
}

/// Counts inbound connections (pending and established) per remote IP address.
pub(crate) struct Behaviour {
    limit: usize,
    /// Every inbound connection we accepted and have not seen end, with its address.
    connections: HashMap<ConnectionId, IpAddr>,
    /// Connections per address (entries with a count of zero are removed).
    per_ip: HashMap<IpAddr, usize>,
}

/// The host a multiaddr comes from, as counted (see the module documentation): its first `/ip4`
/// address, or the /64 prefix of its first `/ip6` one (an IPv4-mapped one as IPv4).
pub(crate) fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(match ip.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(ip) & !u128::from(u64::MAX))),
        }),
        _ => None,
    })
}

impl Behaviour {
    pub(crate) fn new(limit: usize) -> Self {
        Self { limit, connections: HashMap::new(), per_ip: HashMap::new() }
    }

    /// Inbound connections from `ip` now (pending and established).
    #[cfg(test)]
    fn count(&self, ip: &IpAddr) -> usize {
        self.per_ip.get(ip).copied().unwrap_or(0)
    }

    fn release(&mut self, connection_id: &ConnectionId) {
        if let Some(ip) = self.connections.remove(connection_id)
            && let Some(n) = self.per_ip.get_mut(&ip)
        {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        _local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        // An address without an IP (e.g. a relay or memory transport) is not limited here.
        let Some(ip) = ip_of(remote_addr) else { return Ok(()) };
        let n = self.per_ip.entry(ip).or_default();
        if *n >= self.limit {
            metrics::counter!("net.connections.refused", "why" => "per_ip").increment(1);
            tracing::debug!(target: "net", %remote_addr, limit = self.limit, "inbound connection over the per-IP limit: refused before the handshake");
            return Err(ConnectionDenied::new(TooManyFromIp { ip, limit: self.limit }));
        }
        *n += 1;
        self.connections.insert(connection_id, ip);
        Ok(())
    }

    fn handle_established_inbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        _peer: PeerId,
        _local_addr: &Multiaddr,
        _remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        _peer: PeerId,
        _addr: &Multiaddr,
        _role_override: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm<'_>) {
        match event {
            // Ended after it was established, or failed (or was refused) before: either way the
            // address gets its slot back.
            FromSwarm::ConnectionClosed(ConnectionClosed { connection_id, .. })
            | FromSwarm::ListenFailure(ListenFailure { connection_id, .. }) => self.release(&connection_id),
            _ => {}
        }
    }

    fn on_connection_handler_event(&mut self, _peer: PeerId, _connection: ConnectionId, event: THandlerOutEvent<Self>) {
        match event {}
    }

    fn poll(&mut self, _cx: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(ip: &str, port: u16) -> Multiaddr {
        format!("/ip4/{ip}/tcp/{port}").parse().unwrap()
    }

    /// The slots of one address are taken from TCP accept on and given back when a connection
    /// ends, whether it failed during its handshake or closed after it; other addresses are not
    /// affected.
    #[test]
    fn pending_connections_count_and_end_with_their_connection() {
        let mut b = Behaviour::new(2);
        let local = addr("127.0.0.1", 1);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let ids: Vec<ConnectionId> = (0..4).map(|_| ConnectionId::new_unchecked(rand_id())).collect();
        assert!(b.handle_pending_inbound_connection(ids[0], &local, &addr("10.0.0.1", 5000)).is_ok());
        assert!(b.handle_pending_inbound_connection(ids[1], &local, &addr("10.0.0.1", 5001)).is_ok());
        // A third from the same address, still in its handshake or not, is refused.
        assert!(b.handle_pending_inbound_connection(ids[2], &local, &addr("10.0.0.1", 5002)).is_err());
        assert_eq!(b.count(&ip), 2);
        // Another address is not limited by it.
        assert!(b.handle_pending_inbound_connection(ids[3], &local, &addr("10.0.0.2", 5000)).is_ok());
        // The refused one's failure does not free a slot it never took.
        b.release(&ids[2]);
        assert_eq!(b.count(&ip), 2);
        // One fails its handshake: a slot is free again.
        b.release(&ids[0]);
        assert_eq!(b.count(&ip), 1);
        assert!(b.handle_pending_inbound_connection(ids[2], &local, &addr("10.0.0.1", 5003)).is_ok());
        assert_eq!(b.count(&ip), 2);
        b.release(&ids[1]);
        b.release(&ids[2]);
        assert_eq!(b.count(&ip), 0);
        assert!(b.per_ip.len() == 1 && b.connections.len() == 1, "only 10.0.0.2's connection is left");
    }

    /// IPv6 addresses of one /64 share its slots; another /64 does not; an IPv4-mapped address
    /// counts as its IPv4 address.
    #[test]
    fn an_ipv6_host_is_its_64_prefix() {
        let at = |a: &str| ip_of(&format!("{a}/tcp/1").parse().unwrap()).unwrap();
        assert_eq!(at("/ip6/2001:db8:1:2::1"), at("/ip6/2001:db8:1:2:ffff:ffff:ffff:ffff"));
        assert_ne!(at("/ip6/2001:db8:1:2::1"), at("/ip6/2001:db8:1:3::1"));
        assert_eq!(at("/ip6/::ffff:10.0.0.1"), at("/ip4/10.0.0.1"));
        let mut b = Behaviour::new(1);
        let local = addr("127.0.0.1", 1);
        let (one, two) = (ConnectionId::new_unchecked(rand_id()), ConnectionId::new_unchecked(rand_id()));
        assert!(b.handle_pending_inbound_connection(one, &local, &"/ip6/2001:db8::1/tcp/5".parse().unwrap()).is_ok());
        assert!(b.handle_pending_inbound_connection(two, &local, &"/ip6/2001:db8::2/tcp/5".parse().unwrap()).is_err());
    }

    fn rand_id() -> usize {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(1 << 40);
        NEXT.fetch_add(1, Ordering::Relaxed)
    }
}
