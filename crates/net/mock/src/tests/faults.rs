//! Faults: scripted liars, silence and disconnects, partitions, loss, bans, and the determinism of
//! seeded jitter and loss.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::join_all;
use petrel_network_api::{
    DisconnectReason, Network, NetworkEvent, NetworkExt, PeerInfo, Request, RequestError, ResponseFrame,
    ResponseStatus, Services,
};
use petrel_protocol::RequestHead;
use tokio::time::Instant;

use super::{assert_left, drain, head, pair, serve_head};
use crate::{ConnectError, HubConfig, MockHub, MockNetwork, ScriptedReply};

/// A hub with a client connected to a scripted peer that always replies `reply`.
fn scripted(config: HubConfig, reply: ScriptedReply) -> (MockHub, crate::ScriptedPeer, MockNetwork) {
    let hub = MockHub::new(config);
    let liar = hub.scripted_node(Services::FULL_NODE, move |_, _, _| reply.clone());
    let client = hub.node(Services::NONE);
    hub.connect(&liar, &client).expect("connect");
    (hub, liar, client)
}

#[tokio::test(start_paused = true)]
async fn garbage_response_is_malformed() {
    let (_hub, liar, client) = scripted(HubConfig::default(), ScriptedReply::Frame(vec![0, 0xff, 0xff]));

    let response = client.request(liar.peer_id(), &RequestHead).await;

    assert!(matches!(response, Err(RequestError::MalformedResponse(_))), "{response:?}");
    assert!(response.unwrap_err().is_peer_fault());
}

#[tokio::test(start_paused = true)]
async fn unknown_status_byte_is_malformed() {
    let (_hub, liar, client) = scripted(HubConfig::default(), ScriptedReply::Frame(vec![9]));

    let response = client.request(liar.peer_id(), &RequestHead).await;

    assert_eq!(response, Err(RequestError::MalformedResponse("unknown status 9".into())));
}

#[tokio::test(start_paused = true)]
async fn oversized_response_frame_is_too_large() {
    let payload = vec![0; RequestHead::MAX_RESPONSE_SIZE + 1];
    let (_hub, liar, client) = scripted(HubConfig::default(), ScriptedReply::ok_raw(&payload));

    let response = client.request(liar.peer_id(), &RequestHead).await;

    assert_eq!(response, Err(RequestError::ResponseTooLarge(payload.len())));
}

#[tokio::test(start_paused = true)]
async fn scripted_statuses_and_typed_answers() {
    let (_hub, liar, client) = scripted(HubConfig::default(), ScriptedReply::status(ResponseStatus::Busy));
    assert_eq!(client.request(liar.peer_id(), &RequestHead).await, Err(RequestError::Busy));

    liar.set_script(|_, _, _| ScriptedReply::ok::<RequestHead>(&head()).after(Duration::from_secs(3)));
    let start = Instant::now();
    assert_eq!(client.request(liar.peer_id(), &RequestHead).await, Ok(head()));
    assert_eq!(start.elapsed(), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn script_sees_requester_type_and_payload() {
    let hub = MockHub::new(HubConfig::default());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let liar = hub.scripted_node(Services::FULL_NODE, move |peer, type_id, payload| {
        log.lock().expect("log").push((peer, type_id, payload));
        ScriptedReply::ok_raw(&[])
    });
    let client = hub.node(Services::NONE);
    hub.connect(&liar, &client).expect("connect");

    let response = client.request_raw(liar.peer_id(), 77, vec![1, 2], 8).await;
    assert_eq!(response.map(ResponseFrame::into_payload), Ok(vec![]));

    assert_eq!(*seen.lock().expect("log"), vec![(client.peer_id(), 77, vec![1, 2])]);
}

#[tokio::test(start_paused = true)]
async fn silence_times_out_after_the_request_timeout() {
    let config = HubConfig { request_timeout: Duration::from_secs(7), ..HubConfig::default() };
    let (_hub, liar, client) = scripted(config, ScriptedReply::Silence);
    let start = Instant::now();

    let response = client.request(liar.peer_id(), &RequestHead).await;

    assert_eq!(response, Err(RequestError::Timeout));
    assert_eq!(start.elapsed(), Duration::from_secs(7));
}

#[tokio::test(start_paused = true)]
async fn scripted_disconnect_closes_the_connection() {
    let (_hub, liar, client) = scripted(HubConfig::default(), ScriptedReply::Disconnect);
    let mut client_events = client.subscribe_events();
    let mut liar_events = liar.network().subscribe_events();

    let response = client.request(liar.peer_id(), &RequestHead).await;

    assert_eq!(response, Err(RequestError::ConnectionClosed));
    assert_left(&client, &mut client_events, liar.network());
    assert_left(liar.network(), &mut liar_events, &client);
}

#[tokio::test(start_paused = true)]
async fn disconnect_mid_request_is_connection_closed() {
    let (hub, liar, client) = scripted(HubConfig::default(), ScriptedReply::Silence);
    let (from, to) = (liar.peer_id(), client.peer_id());
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        hub.disconnect(from, to);
    });
    let start = Instant::now();

    let response = client.request(liar.peer_id(), &RequestHead).await;

    assert_eq!(response, Err(RequestError::ConnectionClosed));
    assert_eq!(start.elapsed(), Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn connect_announces_services_and_address() {
    let hub = MockHub::new(HubConfig::default());
    let a = hub.node(Services::HISTORY_NODE);
    let b = hub.node(Services::NONE);
    let mut a_events = a.subscribe_events();
    let mut b_events = b.subscribe_events();

    hub.connect(&a, &b).expect("connect");

    let b_info = PeerInfo { services: Services::NONE, address: "mock://1".into() };
    let a_info = PeerInfo { services: Services::HISTORY_NODE, address: "mock://0".into() };
    assert_eq!(drain(&mut a_events), vec![NetworkEvent::PeerJoined(b.peer_id(), b_info.clone())]);
    assert_eq!(drain(&mut b_events), vec![NetworkEvent::PeerJoined(a.peer_id(), a_info)]);
    assert_eq!(a.peers(), vec![(b.peer_id(), b_info)]);
    assert!(b.peer_provides(&a.peer_id(), Services::HISTORY));
    assert_eq!(hub.connect(&b, &a), Err(ConnectError::AlreadyConnected));
    assert_eq!(hub.connect(&a, &a), Err(ConnectError::SelfConnection));
    assert_eq!(hub.node_ids(), vec![a.peer_id(), b.peer_id()]);
}

#[tokio::test(start_paused = true)]
async fn partition_drops_traffic_until_healed() {
    let (hub, server, client) = pair(HubConfig::default());
    serve_head(&server);
    hub.partition(&[server.peer_id()], &[client.peer_id()]);
    let start = Instant::now();

    assert_eq!(client.request(server.peer_id(), &RequestHead).await, Err(RequestError::Timeout));
    assert_eq!(start.elapsed(), hub.config().request_timeout);
    assert!(hub.is_connected(&server, &client), "a partition does not disconnect");

    hub.heal();
    assert_eq!(client.request(server.peer_id(), &RequestHead).await, Ok(head()));
}

#[tokio::test(start_paused = true)]
async fn partition_drops_a_response_in_flight() {
    let config = HubConfig { latency: Duration::from_millis(50), ..HubConfig::default() };
    let (hub, server, client) = pair(config);
    serve_head(&server);
    let groups = ([server.peer_id()], [client.peer_id()]);
    let cutter = hub.clone();
    tokio::spawn(async move {
        // The request arrived at 50 ms; its response is on the wire until 100 ms.
        tokio::time::sleep(Duration::from_millis(60)).await;
        cutter.partition(&groups.0, &groups.1);
    });

    assert_eq!(client.request(server.peer_id(), &RequestHead).await, Err(RequestError::Timeout));
    assert_eq!(server.stats().requests_received, 1, "the request itself got through");
}

#[tokio::test(start_paused = true)]
async fn total_loss_times_out() {
    let (_hub, server, client) = pair(HubConfig { loss: 1.0, ..HubConfig::default() });
    serve_head(&server);
    let start = Instant::now();

    assert_eq!(client.request(server.peer_id(), &RequestHead).await, Err(RequestError::Timeout));
    assert_eq!(start.elapsed(), HubConfig::default().request_timeout);
    assert_eq!(server.stats().requests_received, 0);
}

#[test]
fn invalid_configs_are_refused() {
    let invalid = [
        HubConfig { loss: 1.5, ..HubConfig::default() },
        HubConfig { loss: f64::NAN, ..HubConfig::default() },
        HubConfig { bandwidth_bytes_per_sec: Some(0), ..HubConfig::default() },
        HubConfig { request_timeout: Duration::ZERO, ..HubConfig::default() },
        HubConfig { penalty: 0, ..HubConfig::default() },
        HubConfig { ban_score: 0, ..HubConfig::default() },
    ];
    for config in invalid {
        assert!(MockHub::try_new(config.clone()).is_err(), "{config:?}");
    }
    assert!(MockHub::try_new(HubConfig::default()).is_ok());
}

#[tokio::test(start_paused = true)]
async fn repeated_penalties_ban_the_peer() {
    let (hub, server, client) = pair(HubConfig::default());
    let mut server_events = server.subscribe_events();
    let mut client_events = client.subscribe_events();
    let faults_to_ban = hub.config().ban_score / -hub.config().penalty;

    for _ in 1..faults_to_ban {
        assert_eq!(client.request_raw(server.peer_id(), 999, vec![], 8).await, Err(RequestError::Unsupported));
    }
    assert!(!server.is_banned(&client.peer_id()));
    // The last fault bans: the connection closes before the refusal travels back.
    assert_eq!(client.request_raw(server.peer_id(), 999, vec![], 8).await, Err(RequestError::ConnectionClosed));

    assert!(server.is_banned(&client.peer_id()));
    assert_left(&server, &mut server_events, &client);
    assert_left(&client, &mut client_events, &server);
    assert_eq!(hub.connect(&client, &server), Err(ConnectError::Banned));
    assert_eq!(client.request(server.peer_id(), &RequestHead).await, Err(RequestError::NotConnected));
}

#[tokio::test(start_paused = true)]
async fn malicious_disconnect_bans_and_other_does_not() {
    let (hub, server, client) = pair(HubConfig::default());
    let mut client_events = client.subscribe_events();

    server.disconnect(client.peer_id(), DisconnectReason::Other).await;
    assert_left(&client, &mut client_events, &server);
    assert!(!server.is_banned(&client.peer_id()));
    hub.connect(&client, &server).expect("an ordinary disconnect allows reconnecting");

    server.disconnect(client.peer_id(), DisconnectReason::Malicious).await;
    assert_left(&client, &mut client_events, &server);
    assert!(server.is_banned(&client.peer_id()));
    assert!(!client.is_banned(&server.peer_id()), "only the side that judged bans");
    assert_eq!(hub.connect(&client, &server), Err(ConnectError::Banned));
}

/// Arrival times (from the start) of requests and gossip under jitter and loss, or `None` if lost.
async fn arrival_times(seed: u64) -> Vec<Option<Duration>> {
    let config = HubConfig {
        seed,
        latency: Duration::from_millis(20),
        jitter: Duration::from_millis(30),
        loss: 0.2,
        ..HubConfig::default()
    };
    let hub = MockHub::new(config);
    let server = hub.node(Services::FULL_NODE);
    let clients: Vec<_> = (0..4).map(|_| hub.node(Services::NONE)).collect();
    for client in &clients {
        hub.connect(&server, client).expect("connect");
        serve_head(client);
    }
    serve_head(&server);
    let start = Instant::now();
    let requests = clients.iter().flat_map(|client| {
        let (client, server) = (client.clone(), server.peer_id());
        (0..5).map(move |_| {
            let client = client.clone();
            async move { client.request(server, &RequestHead).await.ok().map(|_| start.elapsed()) }
        })
    });
    join_all(requests).await
}

#[tokio::test(start_paused = true)]
async fn same_seed_same_arrivals() {
    let first = arrival_times(7).await;
    let second = arrival_times(7).await;
    let other = arrival_times(8).await;

    assert_eq!(first, second);
    assert_ne!(first, other, "another seed draws other delays");
    assert!(first.iter().any(Option::is_none), "some requests are lost");
    assert!(first.iter().flatten().collect::<std::collections::BTreeSet<_>>().len() > 5, "jitter varies arrivals");
}
