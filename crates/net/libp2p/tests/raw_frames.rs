//! Raw bytes on a real libp2p stream: a bare libp2p client (identify with the right genesis, and
//! request-response on `/petrel/req/1` with a codec that writes whatever bytes it is given) sends
//! frames Petrel's own codec refuses to write, and the node's penalties are read back.

use std::io;
use std::time::Duration;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::request_response::{self, Codec, OutboundRequestId, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, StreamProtocol, Swarm, SwarmBuilder, identify, noise, tcp, yamux};
use petrel_network_api::{Network, NetworkEvent, PeerId};
use petrel_network_libp2p::{Libp2pConfig, Libp2pNetwork};
use petrel_primitives::Blake2bHash;

const WAIT: Duration = Duration::from_secs(10);

/// Writes a request's bytes as they are; reads a response to its end (at most 1 KiB).
#[derive(Clone, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Vec<u8>> {
        read_all(io).await
    }
    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Vec<u8>> {
        let buf = read_all(io).await?;
        if buf.is_empty() {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "no response"));
        }
        Ok(buf)
    }
    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        bytes: Vec<u8>,
    ) -> io::Result<()> {
        write_and_close(io, &bytes).await
    }
    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        bytes: Vec<u8>,
    ) -> io::Result<()> {
        write_and_close(io, &bytes).await
    }
}

async fn read_all<T: AsyncRead + Unpin + Send>(io: &mut T) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    io.take(1024).read_to_end(&mut buf).await?;
    Ok(buf)
}

async fn write_and_close<T: AsyncWrite + Unpin + Send>(io: &mut T, bytes: &[u8]) -> io::Result<()> {
    io.write_all(bytes).await?;
    io.close().await
}

#[derive(NetworkBehaviour)]
struct Raw {
    identify: identify::Behaviour,
    rr: request_response::Behaviour<RawCodec>,
}

fn raw_client(genesis: &Blake2bHash) -> Swarm<Raw> {
    let swarm = SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(tcp::Config::default(), noise::Config::new, yamux::Config::default)
        .expect("transport")
        .with_behaviour(|key| Raw {
            identify: identify::Behaviour::new(
                identify::Config::new(format!("/petrel/{}/1", genesis.to_hex()), key.public())
                    .with_agent_version("raw-test services=0".into()),
            ),
            rr: request_response::Behaviour::with_codec(
                RawCodec,
                [(StreamProtocol::new("/petrel/req/1"), ProtocolSupport::Outbound)],
                request_response::Config::default().with_request_timeout(Duration::from_secs(5)),
            ),
        })
        .expect("behaviour");
    swarm.with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60))).build()
}

/// Sends `bytes` as one request and waits for its outcome: the response bytes or the failure.
async fn send_raw(swarm: &mut Swarm<Raw>, peer: libp2p::PeerId, bytes: Vec<u8>) -> Result<Vec<u8>, String> {
    let id: OutboundRequestId = swarm.behaviour_mut().rr.send_request(&peer, bytes);
    tokio::time::timeout(WAIT, async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::Behaviour(RawEvent::Rr(request_response::Event::Message {
                    message: request_response::Message::Response { request_id, response },
                    ..
                })) if request_id == id => return Ok(response),
                SwarmEvent::Behaviour(RawEvent::Rr(request_response::Event::OutboundFailure {
                    request_id,
                    error,
                    ..
                })) if request_id == id => return Err(error.to_string()),
                _ => {}
            }
        }
    })
    .await
    .expect("an outcome in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_request_frames_cost_their_sender_and_get_no_answer() {
    let genesis = Blake2bHash::digest(b"raw frames genesis");
    let config = Libp2pConfig {
        genesis_hash: genesis,
        listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
        reputation_recovery_per_sec: 0.0,
        ..Libp2pConfig::with_seed([41; 32])
    };
    let (node, event_loop) = Libp2pNetwork::new(config).expect("node");
    tokio::spawn(event_loop.run());
    let mut events = node.subscribe_events();
    let addrs = tokio::time::timeout(WAIT, node.listen_addrs()).await.expect("listen address");
    let addr: Multiaddr = format!("{}/p2p/{}", addrs[0], node.local_libp2p_peer_id()).parse().expect("addr");
    let node_peer: libp2p::PeerId = node.local_libp2p_peer_id().parse().expect("peer id");

    let mut client = raw_client(&genesis);
    let client_id = PeerId::from_transport_bytes(&client.local_peer_id().to_bytes());
    client.dial(addr).expect("dial");
    // Drive the client until the node has identified it.
    tokio::time::timeout(WAIT, async {
        loop {
            tokio::select! {
                _ = client.select_next_some() => {}
                event = events.recv() => {
                    if matches!(event, Ok(NetworkEvent::PeerJoined(p, _)) if p == client_id) {
                        return;
                    }
                }
            }
        }
    })
    .await
    .expect("the raw client joins");

    let reputation = |n: &Libp2pNetwork| {
        let n = n.clone();
        async move { n.standing(&client_id).await.map(|s| s.reputation) }
    };
    assert_eq!(reputation(&node).await, Some(0.0));

    // A well-formed frame of an unserved type from a client that could not know: refused with
    // the status byte (3, Unsupported) and penalised, since nothing promises type 60 000.
    let answer = send_raw(&mut client, node_peer, vec![0, 0, 0, 2, 0xEA, 0x60]).await;
    assert_eq!(answer, Ok(vec![0, 0, 0, 1, 3]));
    assert_eq!(reputation(&node).await, Some(-10.0));

    // A frame too short to hold a type id: no answer, and a penalty.
    let answer = send_raw(&mut client, node_peer, vec![0, 0, 0, 1, 0xAA]).await;
    assert!(answer.is_err(), "no response to an undecodable frame: {answer:?}");
    assert_eq!(reputation(&node).await, Some(-20.0));

    // A frame announcing more than 64 KiB: refused from its prefix, and a penalty.
    let mut oversized = (1u32 << 20).to_be_bytes().to_vec();
    oversized.extend([0u8; 16]);
    let answer = send_raw(&mut client, node_peer, oversized).await;
    assert!(answer.is_err(), "no response to an oversized frame: {answer:?}");
    assert_eq!(reputation(&node).await, Some(-30.0));

    // A frame that ends before its announced length is a transport failure: no penalty.
    let answer = send_raw(&mut client, node_peer, vec![0, 0, 0, 10, 0, 210]).await;
    assert!(answer.is_err(), "{answer:?}");
    assert_eq!(reputation(&node).await, Some(-30.0));
    assert!(node.peer_info(&client_id).is_some(), "still connected");
}
