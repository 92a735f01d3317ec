//! The `Network` trait (raw frames) and the typed layer on top of it.

use std::future::Future;
use std::time::Duration;

use futures::stream::{BoxStream, StreamExt};
use petrel_primitives::codec;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::request::{Request, ResponseStatus};
use crate::{
    DisconnectReason, GossipId, GossipMessage, InboundError, NetworkError, NetworkEvent, PeerId, PeerInfo, Penalty,
    PenaltyReason, RequestError, Services, Severity, Topic, Verdict,
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
    /// Answers with a status and payload (copied into a new frame; see
    /// [`InboundRequest::respond_frame`] to send a frame built in place).
    pub fn respond(self, status: ResponseStatus, payload: &[u8]) -> Result<(), InboundError> {
        let mut frame = Vec::with_capacity(1 + payload.len());
        frame.push(status as u8);
        frame.extend_from_slice(payload);
        self.respond_frame(frame)
    }

    /// Answers with a complete response frame, moved as is: one status byte
    /// ([`ResponseStatus`]), then the payload. The network applies the type's response size limit
    /// to it exactly as to [`InboundRequest::respond`]; an empty frame reaches the requester as a
    /// malformed response.
    pub fn respond_frame(self, frame: Vec<u8>) -> Result<(), InboundError> {
        self.responder.send(frame).map_err(|_| InboundError::RequesterGone)
    }
}

/// A response frame whose status is OK: the status byte, then the payload, kept in the buffer it
/// arrived in so that the payload is never moved. Only [`decode_response_frame`] makes one.
#[derive(Clone, PartialEq, Eq)]
pub struct ResponseFrame {
    /// Never empty; the first byte is [`ResponseStatus::Ok`].
    bytes: Vec<u8>,
}

impl ResponseFrame {
    /// The response payload (the frame after its status byte).
    pub fn payload(&self) -> &[u8] {
        &self.bytes[1..]
    }

    /// The whole frame, status byte included.
    pub fn as_frame(&self) -> &[u8] {
        &self.bytes
    }

    /// Length of the payload.
    pub fn len(&self) -> usize {
        self.bytes.len() - 1
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.bytes.len() == 1
    }

    /// The payload as its own vector. This moves the payload down by one byte (O(n)); prefer
    /// [`ResponseFrame::payload`].
    pub fn into_payload(mut self) -> Vec<u8> {
        self.bytes.remove(0);
        self.bytes
    }
}

impl std::fmt::Debug for ResponseFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFrame").field("payload_len", &self.len()).finish()
    }
}

/// Checks a response frame's status byte, mapping non-OK statuses to errors. The frame is kept
/// as it is (no copy, no move of the payload).
pub fn decode_response_frame(frame: Vec<u8>) -> Result<ResponseFrame, RequestError> {
    let Some(&status) = frame.first() else {
        return Err(RequestError::MalformedResponse("empty response frame".into()));
    };
    match ResponseStatus::from_byte(status) {
        Some(ResponseStatus::Ok) => Ok(ResponseFrame { bytes: frame }),
        Some(ResponseStatus::RateLimited) => Err(RequestError::RateLimited),
        Some(ResponseStatus::Malformed) => Err(RequestError::RejectedAsMalformed),
        Some(ResponseStatus::Unsupported) => Err(RequestError::Unsupported),
        Some(ResponseStatus::Busy) => Err(RequestError::Busy),
        None => Err(RequestError::MalformedResponse(format!("unknown status {status}"))),
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

    /// Sends a request payload and returns the response frame, whose status implementations
    /// have checked with [`decode_response_frame`] (non-OK statuses are errors) and whose payload
    /// ([`ResponseFrame::payload`]) is at most `max_response` bytes (larger ones are
    /// [`RequestError::ResponseTooLarge`], refused before they are read when the transport can).
    fn request_raw(
        &self,
        peer: PeerId,
        type_id: u16,
        payload: Vec<u8>,
        max_response: usize,
    ) -> impl Future<Output = Result<ResponseFrame, RequestError>> + Send;

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

    /// Lowers a peer's reputation for a protocol fault by the penalty's severity; repeated faults
    /// ban it, and a [`crate::Severity::Malicious`] one bans it at once.
    fn penalize(&self, peer: PeerId, penalty: Penalty);

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
        // The frame is built in place: the status byte, then the encoding, in one allocation.
        match codec::encode_with_prefix(&[ResponseStatus::Ok as u8], response) {
            Ok(frame) if frame.len() - 1 <= R::MAX_RESPONSE_SIZE => self.responder.respond_frame(frame),
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
        async move {
            let bytes = encoded.map_err(|e| RequestError::Encode(e.to_string()))?;
            if bytes.len() > R::MAX_REQUEST_SIZE {
                return Err(RequestError::RequestTooLarge(bytes.len()));
            }
            let response = self.request_raw(peer, R::TYPE_ID, bytes, R::MAX_RESPONSE_SIZE).await?;
            let payload = response.payload();
            if payload.len() > R::MAX_RESPONSE_SIZE {
                return Err(RequestError::ResponseTooLarge(payload.len()));
            }
            codec::decode(payload, R::MAX_RESPONSE_SIZE).map_err(|e| RequestError::MalformedResponse(e.to_string()))
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
                        net.penalize(raw.peer, Penalty::new(Severity::InvalidData, PenaltyReason::MalformedRequest));
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

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Clone, Debug, Serialize, Deserialize)]
    struct Ask;

    impl Request for Ask {
        const TYPE_ID: u16 = 1;
        const MAX_REQUEST_SIZE: usize = 8;
        const MAX_RESPONSE_SIZE: usize = 64;
        const MAX_REQUESTS: u32 = 1;
        type Response = Vec<u8>;
    }

    fn inbound() -> (InboundRequest, oneshot::Receiver<Vec<u8>>) {
        let (responder, rx) = oneshot::channel();
        (InboundRequest { peer: PeerId::from_transport_bytes(b"peer"), payload: Vec::new(), responder }, rx)
    }

    #[test]
    fn response_frame_keeps_the_payload_in_place() {
        let frame = vec![ResponseStatus::Ok as u8, 1, 2, 3];
        let at = frame.as_ptr();
        let decoded = decode_response_frame(frame).unwrap();
        assert_eq!(decoded.payload(), &[1, 2, 3]);
        assert_eq!(decoded.payload().as_ptr(), at.wrapping_add(1), "not moved");
        assert_eq!((decoded.len(), decoded.is_empty()), (3, false));
        assert_eq!(decoded.as_frame(), &[0, 1, 2, 3]);
        assert_eq!(decoded.into_payload(), vec![1, 2, 3]);
        let empty = decode_response_frame(vec![ResponseStatus::Ok as u8]).unwrap();
        assert!(empty.is_empty() && empty.payload().is_empty());
    }

    #[test]
    fn response_frame_statuses_map_to_errors() {
        let status = |b: u8| decode_response_frame(vec![b, 9]).map(ResponseFrame::into_payload);
        assert_eq!(status(ResponseStatus::RateLimited as u8), Err(RequestError::RateLimited));
        assert_eq!(status(ResponseStatus::Malformed as u8), Err(RequestError::RejectedAsMalformed));
        assert_eq!(status(ResponseStatus::Unsupported as u8), Err(RequestError::Unsupported));
        assert_eq!(status(ResponseStatus::Busy as u8), Err(RequestError::Busy));
        assert!(matches!(status(200), Err(RequestError::MalformedResponse(_))));
        assert!(matches!(decode_response_frame(Vec::new()), Err(RequestError::MalformedResponse(_))));
    }

    #[test]
    fn respond_and_respond_frame_send_the_same_frame() {
        let (a, rx_a) = inbound();
        a.respond(ResponseStatus::Ok, &[4, 5]).unwrap();
        let (b, rx_b) = inbound();
        b.respond_frame(vec![0, 4, 5]).unwrap();
        assert_eq!(rx_a.blocking_recv().unwrap(), rx_b.blocking_recv().unwrap());
        let (c, rx_c) = inbound();
        drop(rx_c);
        assert_eq!(c.respond_frame(vec![0]), Err(InboundError::RequesterGone));
    }

    #[test]
    fn typed_respond_builds_the_frame_in_place_within_the_limit() {
        let (raw, rx) = inbound();
        let typed = TypedInbound::<Ask> { peer: raw.peer, request: Ask, responder: raw };
        typed.respond(&vec![7u8; 10]).unwrap();
        let frame = rx.blocking_recv().unwrap();
        assert_eq!(frame[0], ResponseStatus::Ok as u8);
        assert_eq!(&frame[1..], codec::encode(&vec![7u8; 10]).unwrap().as_slice());
        assert_eq!(frame.capacity(), frame.len(), "one exact allocation");

        // Encoded size 65 > 64: refused, the requester sees Busy.
        let (raw, rx) = inbound();
        let typed = TypedInbound::<Ask> { peer: raw.peer, request: Ask, responder: raw };
        assert_eq!(typed.respond(&vec![7u8; 64]), Err(InboundError::ResponseTooLarge));
        assert_eq!(rx.blocking_recv().unwrap(), vec![ResponseStatus::Busy as u8]);
        // Exactly at the limit: sent.
        let (raw, rx) = inbound();
        let typed = TypedInbound::<Ask> { peer: raw.peer, request: Ask, responder: raw };
        typed.respond(&vec![7u8; 63]).unwrap();
        assert_eq!(rx.blocking_recv().unwrap().len(), 1 + 64);
    }
}
