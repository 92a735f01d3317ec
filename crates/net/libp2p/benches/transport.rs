//! Loopback transport benchmarks, all in one run:
//!
//! - `petrel`: Petrel's path, `NetworkExt::request` through two [`Libp2pNetwork`]s (handle →
//!   event loop → swarm → peer's event loop → handler task and back);
//! - `petrel_raw`: the same without the typed layer on either side (`Network::request_raw` and a
//!   `receive_requests_raw` handler answering a pre-built payload), 1 MiB case only;
//! - `libp2p_petrel_behaviours`: a swarm with the same six behaviours as Petrel's but driven
//!   directly, to separate the cost of the behaviour set from that of the handle and event loop;
//! - `bare_libp2p`: a minimal swarm (TCP + Noise + Yamux + request-response with a raw-bytes,
//!   length-prefixed codec), the client swarm driven directly by the measuring future;
//! - `tcp`: raw Tokio TCP moving the same bytes with a length prefix, no encryption.
//!
//! Two cases: the round trip of `RequestHead` (a small request and a ~100-byte answer), and 1 MiB
//! responses. At the end, the ratios Petrel / bare libp2p are printed to stderr.

use std::future::Future;
use std::io;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use futures::{AsyncReadExt as _, AsyncWriteExt as _, StreamExt};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, StreamProtocol, Swarm, SwarmBuilder, noise, tcp, yamux};
use petrel_network_api::{Network, NetworkEvent, NetworkExt, PeerId, Request, RequestLimits, ResponseStatus};
use petrel_network_libp2p::{Libp2pConfig, Libp2pNetwork};
use petrel_primitives::{Blake2bHash, codec};
use petrel_protocol::{RequestHead, ResponseHead};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

const MIB: usize = 1024 * 1024;

/// Every measured run: (case, elapsed, operations), filled by [`timed`].
static RESULTS: Mutex<Vec<(&'static str, Duration, u64)>> = Mutex::new(Vec::new());

fn record(name: &'static str, elapsed: Duration, iters: u64) {
    RESULTS.lock().unwrap_or_else(|e| e.into_inner()).push((name, elapsed, iters));
}

/// Bytes serialised as one length-prefixed blob (one copy each way), as a large Petrel response
/// such as a block body would be.
#[derive(Clone, Debug)]
struct Payload(Vec<u8>);

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Payload;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Payload, E> {
                Ok(Payload(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Payload, E> {
                Ok(Payload(v))
            }
        }
        d.deserialize_byte_buf(V)
    }
}

/// A 1 MiB response, without a rate limit that a benchmark would trip.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct RequestMib;

impl Request for RequestMib {
    const TYPE_ID: u16 = 61_000;
    const MAX_REQUEST_SIZE: usize = 16;
    const MAX_RESPONSE_SIZE: usize = 2 * MIB;
    const MAX_REQUESTS: u32 = u32::MAX;
    type Response = Payload;
}

/// Type id of the raw 1 MiB request (no typed layer on either side).
const RAW_MIB_TYPE: u16 = 61_001;

fn head() -> ResponseHead {
    ResponseHead {
        block_number: 42,
        block_hash: Blake2bHash::digest(b"head"),
        macro_hash: Blake2bHash::digest(b"macro"),
        election_hash: Blake2bHash::digest(b"election"),
    }
}

fn mib_payload() -> Vec<u8> {
    (0..MIB).map(|i| (i % 251) as u8).collect()
}

// ---- Petrel -------------------------------------------------------------------------------

struct Petrel {
    client: Libp2pNetwork,
    server_id: PeerId,
    _server: Libp2pNetwork,
}

async fn start_petrel() -> Petrel {
    let genesis = Blake2bHash::digest(b"bench");
    let server_config = Libp2pConfig {
        genesis_hash: genesis,
        listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
        ..Libp2pConfig::with_seed([1; 32])
    };
    let (server, server_loop) = Libp2pNetwork::new(server_config).expect("server");
    tokio::spawn(server_loop.run());
    let addr = format!("{}/p2p/{}", server.listen_addrs().await[0], server.local_libp2p_peer_id());

    // RequestHead as is, but without its rate limit (50 per 10 s would ban the benchmark).
    let mut heads =
        server.receive_requests_raw(RequestLimits { max_requests: u32::MAX, ..RequestLimits::of::<RequestHead>() });
    tokio::spawn(async move {
        let answer = codec::encode(&head()).expect("encodes");
        while let Some(r) = heads.recv().await {
            match codec::decode::<RequestHead>(&r.payload, RequestHead::MAX_REQUEST_SIZE) {
                Ok(RequestHead) => r.respond(ResponseStatus::Ok, &answer).ok(),
                Err(_) => r.respond(ResponseStatus::Malformed, &[]).ok(),
            };
        }
    });
    // The raw path on both sides: a pre-built answer, copied once into the frame per request.
    let mut raw_mibs =
        server.receive_requests_raw(RequestLimits { type_id: RAW_MIB_TYPE, ..RequestLimits::of::<RequestMib>() });
    tokio::spawn(async move {
        let payload = mib_payload();
        while let Some(r) = raw_mibs.recv().await {
            let _ = r.respond(ResponseStatus::Ok, &payload);
        }
    });
    let mut mibs = server.receive_requests::<RequestMib>();
    tokio::spawn(async move {
        let payload = Payload(mib_payload());
        while let Some(r) = mibs.next().await {
            let _ = r.respond(&payload);
        }
    });

    let client_config =
        Libp2pConfig { genesis_hash: genesis, bootstrap: vec![addr], ..Libp2pConfig::with_seed([2; 32]) };
    let (client, client_loop) = Libp2pNetwork::new(client_config).expect("client");
    let mut events = client.subscribe_events();
    tokio::spawn(client_loop.run());
    let server_id = server.local_peer_id();
    while client.peer_info(&server_id).is_none() {
        match tokio::time::timeout(Duration::from_secs(10), events.recv()).await {
            Ok(Ok(NetworkEvent::PeerJoined(p, _))) if p == server_id => break,
            Ok(_) => {}
            Err(_) => panic!("petrel nodes did not connect"),
        }
    }
    Petrel { client, server_id, _server: server }
}

// ---- bare libp2p --------------------------------------------------------------------------

/// Length-prefixed raw bytes, both directions.
#[derive(Clone, Default)]
struct RawCodec;

async fn read_frame<T: futures::AsyncRead + Unpin + Send>(io: &mut T) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > 4 * MIB {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "too large"));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    Ok(buf)
}

async fn write_frame<T: futures::AsyncWrite + Unpin + Send>(io: &mut T, data: &[u8]) -> io::Result<()> {
    io.write_all(&(data.len() as u32).to_be_bytes()).await?;
    io.write_all(data).await
}

impl request_response::Codec for RawCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T: futures::AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Vec<u8>> {
        read_frame(io).await
    }
    async fn read_response<T: futures::AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Vec<u8>> {
        read_frame(io).await
    }
    async fn write_request<T: futures::AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> io::Result<()> {
        write_frame(io, &req).await
    }
    async fn write_response<T: futures::AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> io::Result<()> {
        write_frame(io, &res).await
    }
}

type RawBehaviour = request_response::Behaviour<RawCodec>;
type RawEvent = request_response::Event<Vec<u8>, Vec<u8>>;

fn raw_behaviour() -> RawBehaviour {
    request_response::Behaviour::with_codec(
        RawCodec,
        [(StreamProtocol::new("/bench/raw/1"), ProtocolSupport::Full)],
        request_response::Config::default().with_request_timeout(Duration::from_secs(30)),
    )
}

/// The same six behaviours as Petrel's swarm (connection limits, block list, identify, ping,
/// request-response, gossipsub), driven directly: what libp2p costs with Petrel's behaviour set
/// but without Petrel's handle, event loop and handler queue.
#[derive(NetworkBehaviour)]
struct FullBehaviour {
    limits: libp2p::connection_limits::Behaviour,
    blocked: libp2p::allow_block_list::Behaviour<libp2p::allow_block_list::BlockedPeers>,
    identify: libp2p::identify::Behaviour,
    ping: libp2p::ping::Behaviour,
    rr: RawBehaviour,
    gossipsub: libp2p::gossipsub::Behaviour,
}

/// A swarm whose request-response part the benchmark drives.
trait RrBehaviour: NetworkBehaviour<ToSwarm: Send> + Send + 'static {
    fn build(key: &libp2p::identity::Keypair) -> Self;
    fn rr(&mut self) -> &mut RawBehaviour;
    fn rr_event(event: Self::ToSwarm) -> Option<RawEvent>;
}

impl RrBehaviour for RawBehaviour {
    fn build(_: &libp2p::identity::Keypair) -> Self {
        raw_behaviour()
    }
    fn rr(&mut self) -> &mut RawBehaviour {
        self
    }
    fn rr_event(event: RawEvent) -> Option<RawEvent> {
        Some(event)
    }
}

impl RrBehaviour for FullBehaviour {
    fn build(key: &libp2p::identity::Keypair) -> Self {
        let gossip = libp2p::gossipsub::ConfigBuilder::default()
            .validation_mode(libp2p::gossipsub::ValidationMode::Strict)
            .validate_messages()
            .max_transmit_size(MIB + 64 * 1024)
            .build()
            .expect("gossipsub config");
        let mut gossipsub =
            libp2p::gossipsub::Behaviour::new(libp2p::gossipsub::MessageAuthenticity::Signed(key.clone()), gossip)
                .expect("gossipsub");
        gossipsub.subscribe(&libp2p::gossipsub::IdentTopic::new("bench")).expect("subscribe");
        FullBehaviour {
            limits: libp2p::connection_limits::Behaviour::new(
                libp2p::connection_limits::ConnectionLimits::default()
                    .with_max_established(Some(64))
                    .with_max_established_per_peer(Some(1)),
            ),
            blocked: Default::default(),
            identify: libp2p::identify::Behaviour::new(libp2p::identify::Config::new("/bench/1".into(), key.public())),
            ping: libp2p::ping::Behaviour::new(libp2p::ping::Config::new()),
            rr: raw_behaviour(),
            gossipsub,
        }
    }
    fn rr(&mut self) -> &mut RawBehaviour {
        &mut self.rr
    }
    fn rr_event(event: FullBehaviourEvent) -> Option<RawEvent> {
        match event {
            FullBehaviourEvent::Rr(e) => Some(e),
            _ => None,
        }
    }
}

fn bare_swarm<B: RrBehaviour>(seed: u8) -> Swarm<B> {
    let mut secret = [seed; 32];
    let key = libp2p::identity::Keypair::ed25519_from_bytes(&mut secret).expect("key");
    SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .expect("transport")
        .with_behaviour(|key| B::build(key))
        .expect("behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
        .build()
}

/// Starts the bare server (answers `[0]` with a head-sized answer and `[1]` with 1 MiB) and
/// returns a client swarm connected to it.
async fn start_bare<B: RrBehaviour>(seeds: (u8, u8)) -> (Swarm<B>, libp2p::PeerId) {
    let mut server = bare_swarm::<B>(seeds.0);
    server.listen_on("/ip4/127.0.0.1/tcp/0".parse().expect("addr")).expect("listen");
    let addr: Multiaddr = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = server.select_next_some().await {
            break address;
        }
    };
    let server_id = *server.local_peer_id();
    tokio::spawn(async move {
        let small = codec::encode(&head()).expect("encodes");
        let big = mib_payload();
        loop {
            if let SwarmEvent::Behaviour(event) = server.select_next_some().await
                && let Some(request_response::Event::Message {
                    message: request_response::Message::Request { request, channel, .. },
                    ..
                }) = B::rr_event(event)
            {
                let answer = if request.first() == Some(&1) { big.clone() } else { small.clone() };
                let _ = server.behaviour_mut().rr().send_response(channel, answer);
            }
        }
    });
    let mut client = bare_swarm::<B>(seeds.1);
    client.dial(addr.with(libp2p::multiaddr::Protocol::P2p(server_id))).expect("dial");
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let SwarmEvent::ConnectionEstablished { .. } = client.select_next_some().await {
                break;
            }
        }
    })
    .await
    .expect("bare swarms connect");
    (client, server_id)
}

/// One request on the bare client swarm, driving it until the response arrives.
async fn bare_request<B: RrBehaviour>(client: &mut Swarm<B>, server: &libp2p::PeerId, request: Vec<u8>) -> Vec<u8> {
    let id = client.behaviour_mut().rr().send_request(server, request);
    loop {
        if let SwarmEvent::Behaviour(event) = client.select_next_some().await {
            match B::rr_event(event) {
                Some(request_response::Event::Message {
                    message: request_response::Message::Response { request_id, response },
                    ..
                }) if request_id == id => return response,
                Some(request_response::Event::OutboundFailure { error, .. }) => panic!("bare request failed: {error}"),
                _ => {}
            }
        }
    }
}

// ---- raw TCP ------------------------------------------------------------------------------

async fn start_tcp() -> TcpStream {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        socket.set_nodelay(true).expect("nodelay");
        let small = codec::encode(&head()).expect("encodes");
        let big = mib_payload();
        let mut kind = [0u8; 1];
        while socket.read_exact(&mut kind).await.is_ok() {
            let answer = if kind[0] == 1 { &big } else { &small };
            if socket.write_all(&(answer.len() as u32).to_be_bytes()).await.is_err()
                || socket.write_all(answer).await.is_err()
            {
                break;
            }
        }
    });
    let socket = TcpStream::connect(addr).await.expect("connect");
    socket.set_nodelay(true).expect("nodelay");
    socket
}

async fn tcp_request(socket: &mut TcpStream, kind: u8) -> Vec<u8> {
    socket.write_all(&[kind]).await.expect("write");
    let mut len = [0u8; 4];
    socket.read_exact(&mut len).await.expect("read");
    let mut buf = vec![0u8; u32::from_be_bytes(len) as usize];
    socket.read_exact(&mut buf).await.expect("read");
    buf
}

// ---- the run ------------------------------------------------------------------------------

/// Runs `iters` operations as a task on the runtime (where Petrel's callers run), moving the
/// state in and back out, and records the elapsed time under `name`.
fn timed<S, F, Fut>(rt: &Runtime, name: &'static str, slot: &mut Option<S>, iters: u64, f: F) -> Duration
where
    S: Send + 'static,
    F: FnOnce(S, u64) -> Fut,
    Fut: Future<Output = (S, Duration)> + Send + 'static,
{
    let state = slot.take().expect("benchmark state");
    let (state, elapsed) = rt.block_on(rt.spawn(f(state, iters))).expect("benchmark task");
    *slot = Some(state);
    record(name, elapsed, iters);
    elapsed
}

type PetrelState = (Libp2pNetwork, PeerId);
type BareState<B> = (Swarm<B>, libp2p::PeerId);

async fn petrel_heads((net, server): PetrelState, n: u64) -> (PetrelState, Duration) {
    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(net.request(server, &RequestHead).await.expect("head"));
    }
    ((net, server), start.elapsed())
}

async fn petrel_mibs((net, server): PetrelState, n: u64) -> (PetrelState, Duration) {
    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(net.request(server, &RequestMib).await.expect("1 MiB"));
    }
    ((net, server), start.elapsed())
}

async fn petrel_raw_mibs((net, server): PetrelState, n: u64) -> (PetrelState, Duration) {
    let request = codec::encode(&RequestMib).expect("encodes");
    let start = Instant::now();
    for _ in 0..n {
        let payload = net.request_raw(server, RAW_MIB_TYPE, request.clone(), 2 * MIB).await;
        std::hint::black_box(payload.expect("1 MiB"));
    }
    ((net, server), start.elapsed())
}

async fn bare_heads<B: RrBehaviour>((mut swarm, server): BareState<B>, n: u64) -> (BareState<B>, Duration) {
    let start = Instant::now();
    for _ in 0..n {
        let answer = bare_request(&mut swarm, &server, vec![0]).await;
        std::hint::black_box(codec::decode::<ResponseHead>(&answer, 256).expect("decodes"));
    }
    ((swarm, server), start.elapsed())
}

async fn bare_mibs<B: RrBehaviour>((mut swarm, server): BareState<B>, n: u64) -> (BareState<B>, Duration) {
    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(bare_request(&mut swarm, &server, vec![1]).await);
    }
    ((swarm, server), start.elapsed())
}

async fn tcp_heads(mut socket: TcpStream, n: u64) -> (TcpStream, Duration) {
    let start = Instant::now();
    for _ in 0..n {
        let answer = tcp_request(&mut socket, 0).await;
        std::hint::black_box(codec::decode::<ResponseHead>(&answer, 256).expect("decodes"));
    }
    (socket, start.elapsed())
}

async fn tcp_mibs(mut socket: TcpStream, n: u64) -> (TcpStream, Duration) {
    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(tcp_request(&mut socket, 1).await);
    }
    (socket, start.elapsed())
}

/// All the connected pairs.
struct States {
    petrel: Option<PetrelState>,
    bare: Option<BareState<RawBehaviour>>,
    full: Option<BareState<FullBehaviour>>,
    tcp: Option<TcpStream>,
}

/// Rounds of the interleaved comparison, and operations per variant and round.
const ROUNDS: usize = 15;
const HEADS_PER_ROUND: u64 = 100;
const MIBS_PER_ROUND: u64 = 8;

fn bench(c: &mut Criterion, rt: &Runtime, interleave: bool) {
    let petrel = rt.block_on(start_petrel());
    let mut st = States {
        petrel: Some((petrel.client.clone(), petrel.server_id)),
        bare: Some(rt.block_on(start_bare((11, 12)))),
        full: Some(rt.block_on(start_bare((13, 14)))),
        tcp: Some(rt.block_on(start_tcp())),
    };

    // Sanity: every path moves the right bytes.
    timed(rt, "sanity/petrel", &mut st.petrel, 1, |(net, server), _| async move {
        assert_eq!(net.request(server, &RequestHead).await, Ok(head()));
        assert_eq!(net.request(server, &RequestMib).await.map(|p| p.0.len()), Ok(MIB));
        ((net, server), Duration::ZERO)
    });
    timed(rt, "sanity/bare", &mut st.bare, 1, |(mut swarm, server), _| async move {
        assert_eq!(bare_request(&mut swarm, &server, vec![1]).await.len(), MIB);
        ((swarm, server), Duration::ZERO)
    });
    timed(rt, "sanity/full", &mut st.full, 1, |(mut swarm, server), _| async move {
        assert_eq!(bare_request(&mut swarm, &server, vec![1]).await.len(), MIB);
        ((swarm, server), Duration::ZERO)
    });
    timed(rt, "sanity/tcp", &mut st.tcp, 1, |mut socket, _| async move {
        assert_eq!(tcp_request(&mut socket, 1).await.len(), MIB);
        (socket, Duration::ZERO)
    });

    let mut group = c.benchmark_group("request_head");
    group.bench_function("petrel", |b| b.iter_custom(|n| timed(rt, "head/petrel", &mut st.petrel, n, petrel_heads)));
    group.bench_function("bare_libp2p", |b| b.iter_custom(|n| timed(rt, "head/bare", &mut st.bare, n, bare_heads)));
    group.bench_function("libp2p_petrel_behaviours", |b| {
        b.iter_custom(|n| timed(rt, "head/full", &mut st.full, n, bare_heads))
    });
    group.bench_function("tcp", |b| b.iter_custom(|n| timed(rt, "head/tcp", &mut st.tcp, n, tcp_heads)));
    group.finish();

    let mut group = c.benchmark_group("response_1mib");
    group.throughput(Throughput::Bytes(MIB as u64));
    group.sample_size(20);
    group.bench_function("petrel", |b| b.iter_custom(|n| timed(rt, "mib/petrel", &mut st.petrel, n, petrel_mibs)));
    group.bench_function("petrel_raw", |b| {
        b.iter_custom(|n| timed(rt, "mib/petrel_raw", &mut st.petrel, n, petrel_raw_mibs))
    });
    group.bench_function("bare_libp2p", |b| b.iter_custom(|n| timed(rt, "mib/bare", &mut st.bare, n, bare_mibs)));
    group.bench_function("libp2p_petrel_behaviours", |b| {
        b.iter_custom(|n| timed(rt, "mib/full", &mut st.full, n, bare_mibs))
    });
    group.bench_function("tcp", |b| b.iter_custom(|n| timed(rt, "mib/tcp", &mut st.tcp, n, tcp_mibs)));
    group.finish();

    if interleave {
        // Criterion measures one variant after the other, so load from other processes on a
        // shared machine skews the ratios; these rounds alternate the variants instead.
        for _ in 0..ROUNDS {
            timed(rt, "i/head/petrel", &mut st.petrel, HEADS_PER_ROUND, petrel_heads);
            timed(rt, "i/head/bare", &mut st.bare, HEADS_PER_ROUND, bare_heads);
            timed(rt, "i/head/full", &mut st.full, HEADS_PER_ROUND, bare_heads);
            timed(rt, "i/head/tcp", &mut st.tcp, HEADS_PER_ROUND, tcp_heads);
            timed(rt, "i/mib/petrel", &mut st.petrel, MIBS_PER_ROUND, petrel_mibs);
            timed(rt, "i/mib/petrel_raw", &mut st.petrel, MIBS_PER_ROUND, petrel_raw_mibs);
            timed(rt, "i/mib/bare", &mut st.bare, MIBS_PER_ROUND, bare_mibs);
            timed(rt, "i/mib/full", &mut st.full, MIBS_PER_ROUND, bare_mibs);
            timed(rt, "i/mib/tcp", &mut st.tcp, MIBS_PER_ROUND, tcp_mibs);
        }
    }
    drop(petrel);
}

/// Median time per operation over the recorded runs of `name`.
fn median(name: &str) -> Option<Duration> {
    let results = RESULTS.lock().unwrap_or_else(|e| e.into_inner());
    let mut per_op: Vec<f64> =
        results.iter().filter(|(n, _, i)| *n == name && *i > 0).map(|(_, e, i)| e.as_secs_f64() / *i as f64).collect();
    if per_op.is_empty() {
        return None;
    }
    per_op.sort_by(f64::total_cmp);
    Some(Duration::from_secs_f64(per_op[per_op.len() / 2]))
}

fn report(prefix: &str, title: &str) {
    let get = |name: &str| median(&format!("{prefix}{name}"));
    if get("head/petrel").is_none() {
        return;
    }
    let show = |name: &str| get(name).map_or("-".to_string(), |d| format!("{:.1} µs", d.as_secs_f64() * 1e6));
    let ratio = |petrel: &str, base: &str| match (get(petrel), get(base)) {
        (Some(p), Some(b)) if !p.is_zero() => format!(
            "{:.1} % of the baseline's rate (time Petrel / baseline = {:.2})",
            100.0 * b.as_secs_f64() / p.as_secs_f64(),
            p.as_secs_f64() / b.as_secs_f64()
        ),
        _ => "-".to_string(),
    };
    eprintln!();
    eprintln!("== {title} (median time per request) ==");
    eprintln!(
        "RequestHead round trip: petrel {}, bare libp2p {}, libp2p with Petrel's behaviours {}, tcp {}",
        show("head/petrel"),
        show("head/bare"),
        show("head/full"),
        show("head/tcp")
    );
    eprintln!(
        "1 MiB response: petrel {}, petrel raw {}, bare libp2p {}, libp2p with Petrel's behaviours {}, tcp {}",
        show("mib/petrel"),
        show("mib/petrel_raw"),
        show("mib/bare"),
        show("mib/full"),
        show("mib/tcp")
    );
    eprintln!("Petrel / bare libp2p:");
    eprintln!("  RequestHead:  Petrel at {}", ratio("head/petrel", "head/bare"));
    eprintln!("  1 MiB:        Petrel at {}", ratio("mib/petrel", "mib/bare"));
    eprintln!("  1 MiB raw:    Petrel at {}", ratio("mib/petrel_raw", "mib/bare"));
    eprintln!("Petrel / libp2p with the same behaviours (cost of handle, event loop, handler queue, typed layer):");
    eprintln!("  RequestHead:  Petrel at {}", ratio("head/petrel", "head/full"));
    eprintln!("  1 MiB:        Petrel at {}", ratio("mib/petrel", "mib/full"));
    eprintln!("  1 MiB raw:    Petrel at {}", ratio("mib/petrel_raw", "mib/full"));
}

fn main() {
    // PETREL_BENCH_THREADS=1 runs everything on a current-thread runtime (no cross-thread wake-ups),
    // which isolates CPU cost from scheduling cost; the default is 2 worker threads.
    let threads: usize = std::env::var("PETREL_BENCH_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    let rt = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()
    }
    .expect("runtime");
    eprintln!(
        "runtime: {}",
        if threads <= 1 { "current thread".to_string() } else { format!("{threads} worker threads") }
    );
    let args: Vec<String> = std::env::args().collect();
    let benchmarking = args.iter().any(|a| a == "--bench")
        && !args.iter().any(|a| a == "--test" || a == "--list" || a.starts_with("--profile-time"));
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c, &rt, benchmarking);
    c.final_summary();
    if benchmarking {
        report("", "criterion samples");
        report(
            "i/",
            &format!("interleaved, {ROUNDS} rounds of {HEADS_PER_ROUND} heads and {MIBS_PER_ROUND} MiB per variant"),
        );
    }
}
