//! Scripted peers: nodes whose answers to requests come from a test closure, so that tests can
//! play liars, garbage senders, silent and disconnecting peers.

use std::sync::Arc;
use std::time::Duration;

use petrel_network_api::{PeerId, Request, ResponseStatus, Services};
use petrel_primitives::codec;

use crate::hub::{AsPeerId, MockHub};
use crate::node::MockNetwork;

/// A script: `(requester, type id, request payload) -> reply`.
pub(crate) type ScriptFn = Arc<dyn Fn(PeerId, u16, Vec<u8>) -> ScriptedReply + Send + Sync>;

/// How a [`ScriptedPeer`] answers one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScriptedReply {
    /// Send this raw response frame (status byte, then payload): anything, including garbage.
    /// It travels back like any response, so the requester's size limit and decoding apply.
    Frame(Vec<u8>),
    /// Never answer: the requester times out.
    Silence,
    /// Close the connection: the requester gets `ConnectionClosed`, both sides `PeerLeft`.
    Disconnect,
    /// Wait (virtual time), then reply.
    Delay(Duration, Box<ScriptedReply>),
}

impl ScriptedReply {
    /// Status OK with the encoded response of request type `R`.
    pub fn ok<R: Request>(response: &R::Response) -> Self {
        // Built in place; an encoding failure (impossible for in-memory values) gives an empty
        // frame, which every requester rejects as malformed.
        Self::Frame(codec::encode_with_prefix(&[ResponseStatus::Ok as u8], response).unwrap_or_default())
    }

    /// Status OK with an arbitrary payload.
    pub fn ok_raw(payload: &[u8]) -> Self {
        let mut frame = Vec::with_capacity(1 + payload.len());
        frame.push(ResponseStatus::Ok as u8);
        frame.extend_from_slice(payload);
        Self::Frame(frame)
    }

    /// A refusal with this status and no payload (`Busy`, `RateLimited`, ...).
    pub fn status(status: ResponseStatus) -> Self {
        Self::Frame(vec![status as u8])
    }

    /// This reply, sent after `delay` of virtual time.
    pub fn after(self, delay: Duration) -> Self {
        Self::Delay(delay, Box::new(self))
    }
}

/// A node whose requests are answered by a script instead of handlers. No serving rule applies to
/// it (no size or rate limit, no penalties for requests): the script decides everything. For
/// everything else (events, gossip, penalties it gives) it is an ordinary node, reachable through
/// [`ScriptedPeer::network`].
#[derive(Clone, Debug)]
pub struct ScriptedPeer {
    network: MockNetwork,
}

impl ScriptedPeer {
    /// The node's id.
    pub fn peer_id(&self) -> PeerId {
        self.network.peer_id()
    }

    /// The node's network handle, to publish gossip, watch events or disconnect peers.
    pub fn network(&self) -> &MockNetwork {
        &self.network
    }

    /// Replaces the script, for example to turn an honest peer into a liar mid-test.
    pub fn set_script<F>(&self, script: F)
    where
        F: Fn(PeerId, u16, Vec<u8>) -> ScriptedReply + Send + Sync + 'static,
    {
        let shared = self.network.hub();
        shared.shared().lock().node_mut(self.peer_id()).script = Some(Arc::new(script));
    }
}

impl AsPeerId for ScriptedPeer {
    fn as_peer_id(&self) -> PeerId {
        self.peer_id()
    }
}

impl MockHub {
    /// Creates a scripted node advertising `services`, connected to nobody. `script` is called,
    /// outside the hub's lock, for every request that reaches it.
    pub fn scripted_node<F>(&self, services: Services, script: F) -> ScriptedPeer
    where
        F: Fn(PeerId, u16, Vec<u8>) -> ScriptedReply + Send + Sync + 'static,
    {
        ScriptedPeer { network: self.add_scripted(services, Arc::new(script)) }
    }
}
