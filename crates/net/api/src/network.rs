//! The `Network` trait (raw frames) and the typed layer on top of it.

use std::future::Future;
use std::time::Duration;

use futures::stream::{BoxStream, StreamExt};
use petrel_primitives::codec;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::request::{Request, ResponseStatus};
use crate::{
    DisconnectReason, GossipId, GossipMessage, InboundError, NetworkError, NetworkEvent, PeerId, PeerInfo,
    RequestError, Services, Topic, Verdict,
};

/// Limits of one request type, enforced by the serving side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestLimits {
    /// Wire id.
    pub type_id: u16,
    /// Largest request payload accepted.
    pub max_request_size: usize,
    /// Largest response payload sent.
    pub max_response_size: usize,
    /// Requests one peer may send per window.
    pub max_requests: u32,
    /// The window.
    pub time_window: Duration,
}

impl RequestLimits {
    /// The limits declared by a request type.
    pub fn of<R: Request>() -> Self {
        Self {
            type_id: R::TYPE_ID,
            max_request_size: R::MAX_REQUEST_SIZE,
            max_response_size: R::MAX_RESPONSE_SIZE,
            max_requests: R::MAX_REQUESTS,
            time_window: R::TIME_WINDOW,
        }
    }
}

/// A raw inbound request: the payload and a one-shot way to answer.
#[derive(Debug)]
pub struct InboundRequest {
    /// Who asked.
    pub peer: PeerId,
    /// The request payload (already checked against the type's size limit).
    pub payload: Vec<u8>,
    /// Receives the response frame (status byte, then payload).
    pub responder: oneshot::Sender<Vec<u8>>,
}

impl InboundRequest {
    /// Answers with a status and payload.
    pub fn respond(self, status: ResponseStatus, payload: &[u8]) -> Result<(), InboundError> {
        let mut frame = Vec::with_capacity(1 + payload.len());
        frame.push(status as u8);
        frame.extend_from_slice(payload);
        self.responder.send(frame).map_err(|_| InboundError::RequesterGone)
    }
}

/// Splits a response frame, mapping non-OK statuses to errors.
pub fn decode_response_frame(mut frame: Vec<u8>) -> Result<Vec<u8>, RequestError> {
    if frame.is_empty() {
        return Err(RequestError::MalformedResponse("empty response frame".into()));
    }
    match ResponseStatus::from_byte(frame[0]) {
        Some(ResponseStatus::Ok) => {
            frame.remove(0);
            Ok(frame)
        }
        Some(ResponseStatus::RateLimited) => Err(RequestError::RateLimited),
        Some(ResponseStatus::Malformed) => Err(RequestError::RejectedAsMalformed),
        Some(ResponseStatus::Unsupported) => Err(RequestError::Unsupported),
        Some(ResponseStatus::Busy) => Err(RequestError::Busy),
        None => Err(RequestError::MalformedResponse(format!("unknown status {}", frame[0]))),
    }
}

/// A network: raw frames in and out. Implementations enforce, on the serving side, the size limit
/// and per-peer rate limit of each request type, penalise and eventually ban misbehaving peers, and
/// time out outbound requests.
pub trait Network: Clone + Send + Sync + Unpin + 'static {
    /// Our own peer id.
    fn local_peer_id(&self) -> PeerId;

    /// Subscribes to peer events (bounded, see [`crate::EVENT_CAPACITY`]). Peers already connected
    /// are not replayed: call [`Network::peers`] after subscribing.
    fn subscribe_events(&self) -> broadcast::Receiver<NetworkEvent>;

    /// Connected peers.
    fn peers(&self) -> Vec<(PeerId, PeerInfo)>;

    /// Information about a connected peer.
    fn peer_info(&self, peer: &PeerId) -> Option<PeerInfo>;

    /// Whether a connected peer advertises all of `services` (unknown peers do not).
    fn peer_provides(&self, peer: &PeerId, services: Services) -> bool {
        self.peer_info(peer).is_some_and(|i| i.services.contains(services))
    }

    /// Sends a request payload and returns the response payload (status OK), at most
    /// `max_response` bytes.
    fn request_raw(
        &self,
        peer: PeerId,
        type_id: u16,
        payload: Vec<u8>,
        max_response: usize,
    ) -> impl Future<Output = Result<Vec<u8>, RequestError>> + Send;

    /// Starts serving one request type; inbound requests of that type arrive on the returned
    /// bounded queue. Registering the same type again replaces the previous queue.
    fn receive_requests_raw(&self, limits: RequestLimits) -> mpsc::Receiver<InboundRequest>;

    /// Publishes a gossip message.
    fn publish_raw(&self, topic: &'static str, data: Vec<u8>) -> impl Future<Output = Result<(), NetworkError>> + Send;

    /// Subscribes to a topic; messages over `max_size` are rejected before they reach the queue.
    fn subscribe_raw(
        &self,
        topic: &'static str,
        max_size: usize,
    ) -> impl Future<Output = Result<mpsc::Receiver<(Vec<u8>, PeerId, GossipId)>, NetworkError>> + Send;

    /// Reports the verdict on a received gossip message.
    fn validate(&self, id: GossipId, verdict: Verdict);

    /// Lowers a peer's reputation for a protocol fault; repeated faults ban it.
    fn penalize(&self, peer: PeerId, reason: &'static str);

    /// Disconnects a peer; [`DisconnectReason::Malicious`] also bans it.
    fn disconnect(&self, peer: PeerId, reason: DisconnectReason) -> impl Future<Output = ()> + Send;
}

/// A decoded inbound request with its responder.
#[derive(Debug)]
pub struct TypedInbound<R: Request> {
    /// Who asked.
    pub peer: PeerId,
    /// The request.
    pub request: R,
    responder: InboundRequest,
}

impl<R: Request> TypedInbound<R> {
    /// Sends the response, refusing to send one larger than the type allows (the requester then
    /// sees `Busy`).
    pub fn respond(self, response: &R::Response) -> Result<(), InboundError> {
        match codec::encode(response) {
            Ok(bytes) if bytes.len() <= R::MAX_RESPONSE_SIZE => self.responder.respond(ResponseStatus::Ok, &bytes),
            _ => {
                let _ = self.responder.respond(ResponseStatus::Busy, &[]);
                Err(InboundError::ResponseTooLarge)
            }
        }
    }
}

/// Stream of decoded inbound requests of one type.
pub type TypedRequests<R> = BoxStream<'static, TypedInbound<R>>;

/// The typed layer: encoding, size checks and error mapping, written once for every network.
pub trait NetworkExt: Network {
    /// Sends a typed request and decodes the response within the type's size limit.
    fn request<R: Request>(
        &self,
        peer: PeerId,
        request: &R,
    ) -> impl Future<Output = Result<R::Response, RequestError>> + Send {
        let encoded = codec::encode(request);
        let this = self.clone();
        async move {
            let bytes = encoded.map_err(|e| RequestError::MalformedResponse(e.to_string()))?;
            if bytes.len() > R::MAX_REQUEST_SIZE {
                return Err(RequestError::RequestTooLarge(bytes.len()));
            }
            let response = this.request_raw(peer, R::TYPE_ID, bytes, R::MAX_RESPONSE_SIZE).await?;
            if response.len() > R::MAX_RESPONSE_SIZE {
                return Err(RequestError::ResponseTooLarge(response.len()));
            }
            codec::decode(&response, R::MAX_RESPONSE_SIZE).map_err(|e| RequestError::MalformedResponse(e.to_string()))
        }
    }

    /// Serves a request type: decoded requests arrive on the stream; requests that do not decode
    /// are answered `Malformed` and their sender penalised.
    fn receive_requests<R: Request>(&self) -> TypedRequests<R> {
        let rx = self.receive_requests_raw(RequestLimits::of::<R>());
        let net = self.clone();
        futures::stream::unfold((rx, net), |(mut rx, net)| async move {
            loop {
                let raw = rx.recv().await?;
                match codec::decode::<R>(&raw.payload, R::MAX_REQUEST_SIZE) {
                    Ok(request) => return Some((TypedInbound { peer: raw.peer, request, responder: raw }, (rx, net))),
                    Err(_) => {
                        net.penalize(raw.peer, "malformed request");
                        let _ = raw.respond(ResponseStatus::Malformed, &[]);
                    }
                }
            }
        })
        .boxed()
    }

    /// Publishes a typed gossip item.
    fn publish<T: Topic>(&self, item: &T::Item) -> impl Future<Output = Result<(), NetworkError>> + Send {
        let encoded = codec::encode(item);
        let this = self.clone();
        async move {
            let bytes = encoded.map_err(|e| NetworkError::Other(e.to_string()))?;
            if bytes.len() > T::MAX_SIZE {
                return Err(NetworkError::MessageTooLarge(bytes.len()));
            }
            this.publish_raw(T::NAME, bytes).await
        }
    }

    /// Subscribes to a typed topic; items that do not decode are rejected automatically.
    fn subscribe<T: Topic>(
        &self,
    ) -> impl Future<Output = Result<BoxStream<'static, GossipMessage<T::Item>>, NetworkError>> + Send {
        let this = self.clone();
        async move {
            let rx = this.subscribe_raw(T::NAME, T::MAX_SIZE).await?;
            Ok(futures::stream::unfold((rx, this), |(mut rx, net)| async move {
                loop {
                    let (data, source, id) = rx.recv().await?;
                    match codec::decode::<T::Item>(&data, T::MAX_SIZE) {
                        Ok(item) => return Some((GossipMessage { item, source, id }, (rx, net))),
                        Err(_) => net.validate(id, Verdict::Reject),
                    }
                }
            })
            .boxed())
        }
    }
}

impl<N: Network> NetworkExt for N {}
