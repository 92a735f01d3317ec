//! End-to-end tests of the libp2p network over real TCP on 127.0.0.1: joining, typed requests,
//! large responses, refusing another chain, the serving side's limits, penalties and bans, and
//! gossip with verdicts. Every wait is for an event or a condition and is bounded by [`WAIT`]; the
//! only timers pace retries (publishing until a subscription is known, republishing until the
//! gossip meshes have formed).

use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use petrel_network_api::{
    DisconnectReason, Network, NetworkError, NetworkEvent, NetworkExt, PeerId, PeerInfo, Request, RequestError,
    RequestLimits, ResponseFrame, ResponseStatus, Services, Topic, Verdict,
};
use petrel_network_libp2p::{ConnectionCounts, Libp2pConfig, Libp2pNetwork};
use petrel_primitives::Blake2bHash;
use petrel_protocol::{RequestHead, ResponseHead};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

/// Upper bound of every wait.
const WAIT: Duration = Duration::from_secs(10);

async fn within<F: Future>(what: &str, f: F) -> F::Output {
    match tokio::time::timeout(WAIT, f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {WAIT:?}: {what}"),
    }
}

fn genesis() -> Blake2bHash {
    Blake2bHash::digest(b"petrel libp2p test genesis")
}

fn head() -> ResponseHead {
    ResponseHead {
        block_number: 42,
        block_hash: Blake2bHash::digest(b"head"),
        macro_hash: Blake2bHash::digest(b"macro"),
        election_hash: Blake2bHash::digest(b"election"),
    }
}

/// A 1 MiB-class response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct RequestBytes {
    len: u32,
}

impl Request for RequestBytes {
    const TYPE_ID: u16 = 60_001;
    const MAX_REQUEST_SIZE: usize = 16;
    const MAX_RESPONSE_SIZE: usize = 2 * 1024 * 1024;
    const MAX_REQUESTS: u32 = 100;
    type Response = Vec<u8>;
}

/// A tightly limited request type: 3 per 10 s, 64 bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Echo(Vec<u8>);

impl Request for Echo {
    const TYPE_ID: u16 = 60_002;
    const MAX_REQUEST_SIZE: usize = 64;
    const MAX_RESPONSE_SIZE: usize = 128;
    const MAX_REQUESTS: u32 = 3;
    type Response = Vec<u8>;
}

#[derive(Debug)]
struct TestTopic;

impl Topic for TestTopic {
    const NAME: &'static str = "petrel/test/1";
    const MAX_SIZE: usize = 1024;
    type Item = String;
}

struct Node {
    net: Libp2pNetwork,
    events: broadcast::Receiver<NetworkEvent>,
    backlog: Vec<NetworkEvent>,
    _task: JoinHandle<()>,
}

impl Node {
    fn id(&self) -> PeerId {
        self.net.local_peer_id()
    }

    async fn dial_addr(&self) -> String {
        let addrs = within("listen address", self.net.listen_addrs()).await;
        format!("{}/p2p/{}", addrs[0], self.net.local_libp2p_peer_id())
    }

    /// The next event matching `f`, searching events set aside earlier first; non-matching
    /// events are set aside, so that waiting for one peer never loses another's event.
    async fn next_event<T>(&mut self, what: &str, mut f: impl FnMut(&NetworkEvent) -> Option<T>) -> T {
        if let Some(i) = self.backlog.iter().position(|e| f(e).is_some()) {
            let event = self.backlog.remove(i);
            return f(&event).unwrap();
        }
        let (events, backlog) = (&mut self.events, &mut self.backlog);
        within(what, async {
            loop {
                match events.recv().await {
                    Ok(event) => match f(&event) {
                        Some(v) => return v,
                        None => backlog.push(event),
                    },
                    Err(broadcast::error::RecvError::Lagged(n)) => panic!("lost {n} events"),
                    Err(broadcast::error::RecvError::Closed) => panic!("event stream closed"),
                }
            }
        })
        .await
    }

    async fn joined(&mut self, peer: PeerId) -> PeerInfo {
        self.next_event("PeerJoined", |e| match e {
            NetworkEvent::PeerJoined(p, info) if *p == peer => Some(info.clone()),
            _ => None,
        })
        .await
    }

    async fn left(&mut self, peer: PeerId) {
        self.next_event("PeerLeft", |e| matches!(e, NetworkEvent::PeerLeft(p) if *p == peer).then_some(())).await
    }

    /// Whether any event arrived that was not consumed.
    fn no_events(&mut self) -> bool {
        self.backlog.is_empty() && matches!(self.events.try_recv(), Err(broadcast::error::TryRecvError::Empty))
    }

    async fn wait_counts(&self, what: &str, f: impl FnMut(&ConnectionCounts) -> bool) {
        let mut counts = self.net.connection_counts();
        within(what, counts.wait_for(f)).await.expect("network running");
    }

    /// Serves `RequestHead` with [`head`].
    fn serve_head(&self) {
        let mut requests = self.net.receive_requests::<RequestHead>();
        tokio::spawn(async move {
            while let Some(r) = requests.next().await {
                let _ = r.respond(&head());
            }
        });
    }
}

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

fn config(seed: u8, genesis: Blake2bHash, services: Services, bootstrap: Vec<String>) -> Libp2pConfig {
    Libp2pConfig {
        genesis_hash: genesis,
        services,
        listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
        bootstrap,
        gossip_heartbeat: Duration::from_millis(100),
        ..Libp2pConfig::with_seed([seed; 32])
    }
}

fn start(config: Libp2pConfig) -> Node {
    init_tracing();
    let (net, event_loop) = Libp2pNetwork::new(config).expect("network starts");
    let events = net.subscribe_events();
    let task = tokio::spawn(event_loop.run());
    Node { net, events, backlog: Vec::new(), _task: task }
}

/// Starts `a`, then `b` bootstrapping to `a`, and waits until both have joined each other.
async fn pair(a_services: Services, b_services: Services) -> (Node, Node) {
    let mut a = start(config(1, genesis(), a_services, vec![]));
    let mut b = start(config(2, genesis(), b_services, vec![a.dial_addr().await]));
    let info = a.joined(b.id()).await;
    assert_eq!(info.services, b_services);
    let info = b.joined(a.id()).await;
    assert_eq!(info.services, a_services);
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_join_and_round_trip_request_head() {
    let (a, b) = pair(Services::FULL_NODE, Services::HISTORY_NODE).await;
    assert!(b.net.peer_provides(&a.id(), Services::FULL_BLOCKS.union(Services::MACRO_CHAIN)));
    assert!(!b.net.peer_provides(&a.id(), Services::HISTORY));
    assert_eq!(a.net.peers().len(), 1);
    assert_eq!(a.net.peer_info(&b.id()).map(|i| i.services), Some(Services::HISTORY_NODE));
    assert!(b.net.peer_info(&a.id()).is_some_and(|i| i.address.starts_with("/ip4/127.0.0.1/tcp/")));
    // Our PeerId is Blake2b of the libp2p peer id bytes, on both sides.
    let libp2p_id: libp2p::PeerId = a.net.local_libp2p_peer_id().parse().unwrap();
    assert_eq!(a.id(), PeerId::from_transport_bytes(&libp2p_id.to_bytes()));

    a.serve_head();
    for _ in 0..3 {
        let response = within("RequestHead", b.net.request(a.id(), &RequestHead)).await;
        assert_eq!(response, Ok(head()));
    }
    // Nobody serves RequestHead on b.
    let response = within("RequestHead to b", a.net.request(b.id(), &RequestHead)).await;
    assert_eq!(response, Err(RequestError::Unsupported));
    // Unknown peers fail at once.
    let response = within("unknown peer", b.net.request(PeerId::from_index(7), &RequestHead)).await;
    assert_eq!(response, Err(RequestError::NotConnected));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_mebibyte_response_and_response_limits() {
    let (a, b) = pair(Services::FULL_NODE, Services::NONE).await;
    let mut requests = a.net.receive_requests::<RequestBytes>();
    tokio::spawn(async move {
        while let Some(r) = requests.next().await {
            let len = r.request.len as usize;
            let body: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let _ = r.respond(&body);
        }
    });
    let response = within("1 MiB response", b.net.request(a.id(), &RequestBytes { len: 1 << 20 })).await.unwrap();
    assert_eq!(response.len(), 1 << 20);
    assert!(response.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));

    // Over the type's limit on the serving side: the typed responder refuses to send it.
    let response = within("3 MiB response", b.net.request(a.id(), &RequestBytes { len: 3 << 20 })).await;
    assert_eq!(response, Err(RequestError::Busy));

    // A raw server that sends more than the requester accepts: refused from the length prefix.
    let mut raw = a.net.receive_requests_raw(RequestLimits {
        type_id: 60_003,
        max_request_size: 16,
        max_response_size: 1 << 20,
        max_requests: 10,
        time_window: Duration::from_secs(10),
    });
    tokio::spawn(async move {
        while let Some(r) = raw.recv().await {
            let _ = r.respond(ResponseStatus::Ok, &[7u8; 1000]);
        }
    });
    let response = within("raw oversized", b.net.request_raw(a.id(), 60_003, vec![], 999)).await;
    assert_eq!(response, Err(RequestError::ResponseTooLarge(1000)));
    let response = within("raw fitting", b.net.request_raw(a.id(), 60_003, vec![], 1000)).await;
    assert_eq!(response.as_ref().map(ResponseFrame::payload), Ok(&[7u8; 1000][..]));
    assert_eq!(response.map(|f| f.as_frame()[0]), Ok(ResponseStatus::Ok as u8));

    // Our own request over the protocol's frame limit never leaves.
    let response = within("huge request", b.net.request_raw(a.id(), 60_003, vec![0; 70_000], 10)).await;
    assert_eq!(response, Err(RequestError::RequestTooLarge(70_000)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_of_another_chain_is_refused() {
    let mut a = start(config(1, genesis(), Services::FULL_NODE, vec![]));
    let other = Blake2bHash::digest(b"another chain");
    let mut c = start(config(3, other, Services::FULL_NODE, vec![a.dial_addr().await]));
    // The connection is made (so identify ran) and closed again.
    a.wait_counts("connection made and closed", |n| n.established >= 1 && n.open == 0).await;
    c.wait_counts("connection closed on c", |n| n.established >= 1 && n.open == 0).await;
    assert!(a.net.peers().is_empty() && c.net.peers().is_empty());
    // Identify has completed on both sides, so a join would have been sent by now.
    assert!(a.no_events() && c.no_events());
    let response = within("request to a refused node", c.net.request(a.id(), &RequestHead)).await;
    assert_eq!(response, Err(RequestError::NotConnected));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serving_side_limits_penalties_and_ban() {
    // Penalties do not wear off on `a`, so the count of faults to a ban does not depend on timing.
    let mut a = start(Libp2pConfig {
        reputation_recovery_per_sec: 0.0,
        promises: petrel_protocol::PROMISES,
        ..config(1, genesis(), Services::FULL_NODE, vec![])
    });
    let addr = a.dial_addr().await;
    let mut b = start(config(2, genesis(), Services::NONE, vec![addr.clone()]));
    let mut c = start(config(3, genesis(), Services::NONE, vec![addr]));
    a.joined(b.id()).await;
    a.joined(c.id()).await;
    b.joined(a.id()).await;
    c.joined(a.id()).await;
    a.serve_head();
    let mut echo = a.net.receive_requests::<Echo>();
    tokio::spawn(async move {
        while let Some(r) = echo.next().await {
            let reply = r.request.0.clone();
            let _ = r.respond(&reply);
        }
    });

    // Oversized for its type (the frame itself is fine): Malformed.
    let big = petrel_primitives::codec::encode(&Echo(vec![1; 100])).unwrap();
    let response = within("oversized", b.net.request_raw(a.id(), Echo::TYPE_ID, big, 128)).await;
    assert_eq!(response, Err(RequestError::RejectedAsMalformed));
    // A type nobody serves: Unsupported.
    let response = within("unknown type", b.net.request_raw(a.id(), 9_999, vec![1, 2, 3], 128)).await;
    assert_eq!(response, Err(RequestError::Unsupported));
    // Undecodable for the typed handler: Malformed (penalised by the typed layer).
    let response = within("undecodable", b.net.request_raw(a.id(), Echo::TYPE_ID, vec![0xff; 10], 128)).await;
    assert_eq!(response, Err(RequestError::RejectedAsMalformed));

    // The third request above counted against the rate limit (it passed the size check), so two
    // more are served, then the limit refuses until the penalties add up to a ban.
    for i in 0..2u8 {
        let response = within("echo", b.net.request(a.id(), &Echo(vec![i]))).await;
        assert_eq!(response, Ok(vec![i]));
    }
    let mut rate_limited = 0;
    let banned_with = loop {
        match within("echo over the limit", b.net.request(a.id(), &Echo(vec![9]))).await {
            Err(RequestError::RateLimited) => rate_limited += 1,
            Err(e @ (RequestError::NotConnected | RequestError::ConnectionClosed)) => break e,
            other => panic!("unexpected {other:?}"),
        }
        assert!(rate_limited <= 20, "never banned");
    };
    // 3 faults before the loop, then 7 refusals reach -100 (PENALTY 10, threshold -100, no
    // recovery): the 7th bans the peer, and its answer may be lost with the connection.
    assert!((6..=7).contains(&rate_limited), "rate limited {rate_limited} times before {banned_with:?}");

    b.left(a.id()).await;
    a.left(b.id()).await;
    assert_eq!(within("after ban", b.net.request(a.id(), &RequestHead)).await, Err(RequestError::NotConnected));
    assert!(a.net.peer_info(&b.id()).is_none());
    // b's redial is refused.
    a.wait_counts("b's redial refused", |n| n.denied >= 1).await;
    assert!(a.net.peer_info(&b.id()).is_none() && b.net.peer_info(&a.id()).is_none());
    // The well-behaved node is still served.
    assert_eq!(within("c's request", c.net.request(a.id(), &RequestHead)).await, Ok(head()));
    // A type a's services promise but a does not serve: refused, and c is not blamed for asking.
    let promised = petrel_protocol::RequestMissingBlocks::TYPE_ID;
    let response = within("promised type", c.net.request_raw(a.id(), promised, vec![0; 8], 256)).await;
    assert_eq!(response, Err(RequestError::Unsupported));
    assert_eq!(a.net.standing(&c.id()).await.map(|s| s.reputation), Some(0.0));
    assert!(c.net.peer_info(&a.id()).is_some());
    let _ = &mut c;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_malicious_bans_and_other_lets_the_peer_return() {
    let (mut a, mut b) = pair(Services::FULL_NODE, Services::NONE).await;

    // A plain disconnect: the peer leaves, then its bootstrap redial brings it back.
    within("disconnect", a.net.disconnect(b.id(), DisconnectReason::Other)).await;
    assert!(a.net.peer_info(&b.id()).is_none());
    a.left(b.id()).await;
    b.left(a.id()).await;
    a.joined(b.id()).await;
    b.joined(a.id()).await;

    // Malicious: banned, and the redial is refused.
    let denied_before = a.net.connection_counts().borrow().denied;
    within("disconnect malicious", a.net.disconnect(b.id(), DisconnectReason::Malicious)).await;
    assert!(a.net.peer_info(&b.id()).is_none());
    a.left(b.id()).await;
    b.left(a.id()).await;
    a.wait_counts("redial refused", |n| n.denied > denied_before).await;
    assert!(a.net.peers().is_empty());
    assert_eq!(within("request after ban", b.net.request(a.id(), &RequestHead)).await, Err(RequestError::NotConnected));
}

/// Publishes, retrying while no peer is known to be subscribed yet.
async fn publish_when_subscribed(net: &Libp2pNetwork, item: &str) {
    within("publish", async {
        loop {
            match net.publish::<TestTopic>(&item.to_string()).await {
                Ok(()) => return,
                Err(NetworkError::NoPeers) => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(e) => panic!("publish failed: {e}"),
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_between_three_nodes_with_verdicts() {
    let mut a = start(config(1, genesis(), Services::FULL_NODE, vec![]));
    let addr = a.dial_addr().await;
    let mut b = start(config(2, genesis(), Services::NONE, vec![addr.clone()]));
    let mut c = start(config(3, genesis(), Services::NONE, vec![addr]));
    a.joined(b.id()).await;
    a.joined(c.id()).await;
    b.joined(a.id()).await;
    c.joined(a.id()).await;

    // a and c validate with Accept and report what they saw; b only publishes. c is connected to
    // a only, so it gets b's messages only because a accepted and forwarded them.
    let (seen_tx, mut seen) = mpsc::channel::<(char, String, PeerId)>(16);
    for (name, node) in [('a', &a), ('c', &c)] {
        let mut stream = within("subscribe", node.net.subscribe::<TestTopic>()).await.unwrap();
        let net = node.net.clone();
        let seen_tx = seen_tx.clone();
        tokio::spawn(async move {
            while let Some(m) = stream.next().await {
                net.validate(m.id, Verdict::Accept);
                let _ = seen_tx.send((name, m.item, m.source)).await;
            }
        });
    }
    let mut small = within("subscribe raw", a.net.subscribe_raw("petrel/test-small/1", 8)).await.unwrap();

    // A message forwarded before the meshes have formed can miss a late mesh member, so b
    // publishes fresh items until both a and c have seen one (each wait bounded).
    publish_when_subscribed(&b.net, "hello 0").await;
    let publisher = {
        let net = b.net.clone();
        tokio::spawn(async move {
            let mut pace = tokio::time::interval(Duration::from_millis(100));
            pace.tick().await;
            for n in 1.. {
                pace.tick().await;
                let _ = net.publish::<TestTopic>(&format!("hello {n}")).await;
            }
        })
    };
    let (mut from_a, mut from_c) = (None, None);
    while from_a.is_none() || from_c.is_none() {
        let (name, item, source) = within("gossip delivery to a and c", seen.recv()).await.unwrap();
        assert!(item.starts_with("hello "), "unexpected item {item:?}");
        match name {
            'a' => from_a = Some(source),
            _ => from_c = Some(source),
        }
    }
    publisher.abort();
    assert_eq!(from_a, Some(b.id()), "a hears b directly");
    assert_eq!(from_c, Some(a.id()), "c hears it from a, who accepted and forwarded it");

    // Publishing the same bytes again is not an error (content-addressed ids).
    within("republish", b.net.publish::<TestTopic>(&"hello 0".to_string())).await.unwrap();
    // Over the subscriber's size limit: rejected before the queue; the next fitting one arrives.
    within("oversized gossip", async {
        loop {
            match b.net.publish_raw("petrel/test-small/1", vec![1; 100]).await {
                Ok(()) => return,
                Err(NetworkError::NoPeers) => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(e) => panic!("publish failed: {e}"),
            }
        }
    })
    .await;
    within("small gossip", b.net.publish_raw("petrel/test-small/1", vec![2; 8])).await.unwrap();
    let (data, source, id) = within("small delivery", small.recv()).await.unwrap();
    assert_eq!((data, source), (vec![2; 8], b.id()));
    a.net.validate(id, Verdict::Ignore);
    let _ = (&mut a, &mut b, &mut c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_bootstrap_ends_with_one_connection() {
    // Both nodes list each other, so they dial each other at the same moment; with one connection
    // allowed per peer, they must still end up joined over exactly one connection.
    let ports: Vec<u16> =
        (0..2).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()).collect();
    let ids: Vec<String> =
        [1u8, 2].iter().map(|s| Libp2pConfig::with_seed([*s; 32]).keypair.public().to_peer_id().to_base58()).collect();
    let addr = |i: usize| format!("/ip4/127.0.0.1/tcp/{}/p2p/{}", ports[i], ids[i]);
    let with_port = |mut c: Libp2pConfig, port: u16| {
        c.listen = vec![format!("/ip4/127.0.0.1/tcp/{port}")];
        c
    };
    let mut a = start(with_port(config(1, genesis(), Services::FULL_NODE, vec![addr(1)]), ports[0]));
    let mut b = start(with_port(config(2, genesis(), Services::FULL_NODE, vec![addr(0)]), ports[1]));
    a.joined(b.id()).await;
    b.joined(a.id()).await;
    a.wait_counts("one connection on a", |n| n.open == 1).await;
    b.wait_counts("one connection on b", |n| n.open == 1).await;
    assert_eq!(within("request", b.net.request(a.id(), &RequestHead)).await, Err(RequestError::Unsupported));
}

/// Raw TCP connections that never start their handshake count towards the per-IP limit from the
/// moment they are accepted, so one more from the same address is refused before any Noise work
/// (a limit checked once the handshake is done would never see these at all).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_ip_limit_counts_connections_still_in_their_handshake() {
    let a = start(Libp2pConfig { max_inbound_per_ip: 2, ..config(1, genesis(), Services::NONE, vec![]) });
    let listen = within("listen address", a.net.listen_addrs()).await[0].to_string();
    let port: u16 = listen.rsplit('/').next().and_then(|p| p.parse().ok()).expect("a tcp listen address");
    let mut raw = Vec::new();
    for _ in 0..3 {
        raw.push(within("tcp connect", tokio::net::TcpStream::connect(("127.0.0.1", port))).await.unwrap());
    }
    a.wait_counts("a connection over the per-IP limit, still before its handshake", |n| n.denied >= 1).await;
    assert!(a.net.peers().is_empty(), "no handshake was ever completed");
    drop(raw);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_connections_are_capped_per_ip_and_leave_room_for_the_peers_we_dial() {
    // Per IP: every client dials from 127.0.0.1; the third is refused at TCP accept.
    let mut a = start(Libp2pConfig { max_inbound_per_ip: 2, ..config(1, genesis(), Services::NONE, vec![]) });
    let addr = a.dial_addr().await;
    let clients: Vec<Node> = (2..=4).map(|i| start(config(i, genesis(), Services::NONE, vec![addr.clone()]))).collect();
    a.wait_counts("an inbound connection over the per-IP limit", |n| n.denied >= 1).await;
    // Which two got in depends on timing; two did.
    let mut joined = 0;
    while joined < 2 {
        a.next_event("a client joining", |e| matches!(e, NetworkEvent::PeerJoined(..)).then_some(())).await;
        joined += 1;
    }
    assert_eq!(a.net.peers().len(), 2);

    // Reserved outbound: 3 connections, 1 kept for the peers we dial. Inbound fills 2; the
    // bootstrap peer still gets in.
    let mut e = start(config(10, genesis(), Services::FULL_NODE, vec![]));
    let e_addr = e.dial_addr().await;
    let mut f = start(Libp2pConfig {
        max_connections: 3,
        reserved_outbound: 1,
        ..config(11, genesis(), Services::NONE, vec![e_addr])
    });
    let f_addr = f.dial_addr().await;
    let others: Vec<Node> =
        (12..=14).map(|i| start(config(i, genesis(), Services::NONE, vec![f_addr.clone()]))).collect();
    f.joined(e.id()).await;
    e.joined(f.id()).await;
    f.wait_counts("an inbound connection over the inbound share", |n| n.denied >= 1).await;
    let peers: Vec<PeerId> = f.net.peers().into_iter().map(|(p, _)| p).collect();
    assert!(peers.contains(&e.id()), "the dialled peer keeps its slot: {peers:?}");
    assert!(peers.len() <= 3);
    drop((clients, others));
}
