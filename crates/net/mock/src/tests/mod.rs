//! Deterministic tests of the mock network. Every test runs on a current-thread runtime with paused
//! time, so delays and timeouts cost nothing and virtual instants are exact.

mod faults;
mod gossip;
mod requests;

use std::time::Duration;

use futures::StreamExt;
use petrel_network_api::{Network, NetworkEvent, NetworkExt, Services};
use petrel_primitives::Blake2bHash;
use petrel_protocol::{RequestHead, ResponseHead};
use tokio::sync::broadcast;

use crate::{HubConfig, MockHub, MockNetwork};

/// Every wait in these tests ends after this much virtual time.
const WAIT: Duration = Duration::from_secs(60);

/// A hub with `config` and two connected nodes (a full node and a client).
fn pair(config: HubConfig) -> (MockHub, MockNetwork, MockNetwork) {
    let hub = MockHub::new(config);
    let server = hub.node(Services::FULL_NODE);
    let client = hub.node(Services::NONE);
    hub.connect(&server, &client).expect("fresh nodes connect");
    (hub, server, client)
}

/// The head every test server reports.
fn head() -> ResponseHead {
    ResponseHead {
        block_number: 42,
        block_hash: Blake2bHash::digest(b"head"),
        macro_hash: Blake2bHash::digest(b"macro"),
        election_hash: Blake2bHash::digest(b"election"),
    }
}

/// Serves `RequestHead` on `net` with [`head`] from a spawned task, through the typed layer.
fn serve_head(net: &MockNetwork) {
    let mut requests = net.receive_requests::<RequestHead>();
    tokio::spawn(async move {
        while let Some(inbound) = requests.next().await {
            let _ = inbound.respond(&head());
        }
    });
}

/// The events already received, without waiting.
fn drain(events: &mut broadcast::Receiver<NetworkEvent>) -> Vec<NetworkEvent> {
    std::iter::from_fn(|| events.try_recv().ok()).collect()
}

/// Asserts that `net` lost its connection to `peer` and was told so.
#[track_caller]
fn assert_left(net: &MockNetwork, events: &mut broadcast::Receiver<NetworkEvent>, peer: &MockNetwork) {
    assert!(drain(events).contains(&NetworkEvent::PeerLeft(peer.peer_id())), "{net:?} was not told {peer:?} left");
    assert!(net.peer_info(&peer.peer_id()).is_none());
}
