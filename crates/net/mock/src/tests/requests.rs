//! Request/response: the typed round trip, timing (latency, bandwidth) and the serving rules (size
//! limit, unknown type, rate limit, full queue, dropped responder).

use std::time::Duration;

use futures::future::join_all;
use petrel_network_api::{
    INBOUND_QUEUE, Network, NetworkExt, Request, RequestError, RequestLimits, ResponseFrame, ResponseStatus,
};
use petrel_protocol::RequestHead;
use tokio::time::Instant;

use super::{head, pair, serve_head};
use crate::{HubConfig, NodeStats};

/// Limits of a made-up request type that tests serve through the raw API.
fn raw_limits(type_id: u16) -> RequestLimits {
    RequestLimits {
        type_id,
        max_request_size: 1024,
        max_response_size: 1024,
        max_requests: 10_000,
        time_window: Duration::from_secs(10),
    }
}

#[tokio::test(start_paused = true)]
async fn typed_request_head_round_trip() {
    let (_hub, server, client) = pair(HubConfig::default());
    serve_head(&server);

    let response = client.request(server.peer_id(), &RequestHead).await;

    assert_eq!(response, Ok(head()));
    let sent = client.stats();
    assert_eq!((sent.requests_sent, sent.requests_received), (1, 0));
    let served = server.stats();
    assert_eq!((served.requests_sent, served.requests_received), (0, 1));
    assert_eq!(sent.bytes_received, served.bytes_sent, "the response frame is counted on both sides");
    assert!(sent.bytes_received > 1, "an OK frame carries the encoded head");
}

#[tokio::test(start_paused = true)]
async fn latency_applies_to_request_and_response() {
    let config = HubConfig { latency: Duration::from_millis(50), ..HubConfig::default() };
    let (_hub, server, client) = pair(config);
    serve_head(&server);
    let start = Instant::now();

    let response = client.request(server.peer_id(), &RequestHead).await;

    assert_eq!(response, Ok(head()));
    assert_eq!(start.elapsed(), Duration::from_millis(100));
}

#[tokio::test(start_paused = true)]
async fn bandwidth_delays_by_size_and_messages_queue_on_a_link() {
    let config = HubConfig { bandwidth_bytes_per_sec: Some(1000), ..HubConfig::default() };
    let (_hub, server, client) = pair(config);
    let mut inbound = server.receive_requests_raw(raw_limits(7));
    tokio::spawn(async move {
        while let Some(request) = inbound.recv().await {
            let _ = request.respond(ResponseStatus::Ok, &[]);
        }
    });
    let start = Instant::now();

    // 500 bytes at 1000 B/s: 500 ms out; the 1-byte OK frame: 1 ms back.
    let one = client.request_raw(server.peer_id(), 7, vec![0; 500], 16).await;
    assert_eq!(one.map(ResponseFrame::into_payload), Ok(vec![]));
    assert_eq!(start.elapsed(), Duration::from_millis(501));

    // Two at once: the second waits for the first to leave the link.
    let start = Instant::now();
    let both = join_all([
        client.request_raw(server.peer_id(), 7, vec![0; 500], 16),
        client.request_raw(server.peer_id(), 7, vec![0; 500], 16),
    ])
    .await;
    let both: Vec<_> = both.into_iter().map(|r| r.map(ResponseFrame::into_payload)).collect();
    assert_eq!(both, vec![Ok(vec![]), Ok(vec![])]);
    assert_eq!(start.elapsed(), Duration::from_millis(1001));
}

#[tokio::test(start_paused = true)]
async fn not_connected_fails_at_once() {
    let (hub, server, _client) = pair(HubConfig::default());
    let stranger = hub.node(petrel_network_api::Services::NONE);
    let start = Instant::now();

    let response = stranger.request(server.peer_id(), &RequestHead).await;

    assert_eq!(response, Err(RequestError::NotConnected));
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(stranger.stats(), NodeStats::default(), "nothing was sent");
}

#[tokio::test(start_paused = true)]
async fn oversized_or_undecodable_request_is_malformed_and_penalized() {
    let (hub, server, client) = pair(HubConfig::default());
    serve_head(&server);
    let penalty = hub.config().penalty;

    // Over RequestHead's 16-byte limit: refused by the serving rules before any handler sees it.
    let oversized = vec![0; RequestHead::MAX_REQUEST_SIZE + 1];
    let response = client.request_raw(server.peer_id(), RequestHead::TYPE_ID, oversized, 256).await;
    assert_eq!(response, Err(RequestError::RejectedAsMalformed));
    assert_eq!(server.score(&client.peer_id()), -penalty);

    // Within the limit but not a RequestHead: the typed layer refuses it and penalises.
    let garbage = vec![0xff; 3];
    let response = client.request_raw(server.peer_id(), RequestHead::TYPE_ID, garbage, 256).await;
    assert_eq!(response, Err(RequestError::RejectedAsMalformed));
    assert_eq!(server.score(&client.peer_id()), -2 * penalty);
    assert_eq!(client.score(&server.peer_id()), 0, "the requester blames nobody");
}

#[tokio::test(start_paused = true)]
async fn unknown_type_is_unsupported_and_penalized() {
    let (hub, server, client) = pair(HubConfig::default());
    serve_head(&server);

    let response = client.request_raw(server.peer_id(), 999, vec![], 256).await;

    assert_eq!(response, Err(RequestError::Unsupported));
    assert_eq!(server.score(&client.peer_id()), -hub.config().penalty);
}

#[tokio::test(start_paused = true)]
async fn a_type_our_services_promise_but_we_do_not_serve_costs_the_requester_nothing() {
    // The server advertises a full node (which promises missing blocks) but serves only heads;
    // the requester could not know, so only the types the services do not promise are its fault.
    let (hub, server, client) = pair(HubConfig { promises: petrel_protocol::PROMISES, ..HubConfig::default() });
    serve_head(&server);
    let promised = petrel_protocol::RequestMissingBlocks::TYPE_ID;
    let response = client.request_raw(server.peer_id(), promised, vec![], 256).await;
    assert_eq!(response, Err(RequestError::Unsupported));
    assert_eq!(server.score(&client.peer_id()), 0);
    let not_promised = petrel_protocol::RequestHistoryChunk::TYPE_ID;
    let response = client.request_raw(server.peer_id(), not_promised, vec![], 256).await;
    assert_eq!(response, Err(RequestError::Unsupported));
    assert_eq!(server.score(&client.peer_id()), -hub.config().penalty);
}

#[tokio::test(start_paused = true)]
async fn dropped_handler_is_unsupported_without_penalty() {
    let (_hub, server, client) = pair(HubConfig::default());
    drop(server.receive_requests_raw(raw_limits(7)));

    let response = client.request_raw(server.peer_id(), 7, vec![], 16).await;

    assert_eq!(response, Err(RequestError::Unsupported));
    assert_eq!(server.score(&client.peer_id()), 0);
}

#[tokio::test(start_paused = true)]
async fn rate_limit_refuses_the_excess_request_until_the_window_passes() {
    let (hub, server, client) = pair(HubConfig::default());
    let other = hub.node(petrel_network_api::Services::NONE);
    hub.connect(&server, &other).expect("connect");
    serve_head(&server);

    for n in 0..RequestHead::MAX_REQUESTS {
        assert_eq!(client.request(server.peer_id(), &RequestHead).await, Ok(head()), "request {n}");
    }
    assert_eq!(client.request(server.peer_id(), &RequestHead).await, Err(RequestError::RateLimited));
    assert_eq!(server.score(&client.peer_id()), -hub.config().penalty);

    // The limit is per peer: another peer is served meanwhile.
    assert_eq!(other.request(server.peer_id(), &RequestHead).await, Ok(head()));

    // Just before the window ends the client is still limited; at its end it is served again.
    tokio::time::sleep(RequestHead::TIME_WINDOW - Duration::from_millis(1)).await;
    assert_eq!(client.request(server.peer_id(), &RequestHead).await, Err(RequestError::RateLimited));
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(client.request(server.peer_id(), &RequestHead).await, Ok(head()));
}

#[tokio::test(start_paused = true)]
async fn full_handler_queue_answers_busy() {
    let (_hub, server, client) = pair(HubConfig::default());
    // Registered but never read: the queue fills up.
    let _inbound = server.receive_requests_raw(raw_limits(7));

    let results = join_all((0..=INBOUND_QUEUE).map(|_| client.request_raw(server.peer_id(), 7, vec![], 16))).await;

    let busy = results.iter().filter(|r| **r == Err(RequestError::Busy)).count();
    let timed_out = results.iter().filter(|r| **r == Err(RequestError::Timeout)).count();
    assert_eq!((busy, timed_out), (1, INBOUND_QUEUE));
    assert_eq!(server.score(&client.peer_id()), 0, "being busy is not the requester's fault");
}

#[tokio::test(start_paused = true)]
async fn dropped_responder_is_connection_closed() {
    let (_hub, server, client) = pair(HubConfig::default());
    let mut inbound = server.receive_requests_raw(raw_limits(7));
    tokio::spawn(async move {
        while let Some(request) = inbound.recv().await {
            drop(request);
        }
    });

    let response = client.request_raw(server.peer_id(), 7, vec![1, 2, 3], 16).await;

    assert_eq!(response, Err(RequestError::ConnectionClosed));
    assert!(server.peer_info(&client.peer_id()).is_some(), "the connection itself stays up");
}
