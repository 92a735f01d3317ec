//! Errors of the network layer.

/// Why an outbound request produced no usable response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// No response within the timeout (the peer may still have processed the request).
    #[error("request timed out")]
    Timeout,
    /// The peer is not connected.
    #[error("peer is not connected")]
    NotConnected,
    /// The connection closed before the response arrived.
    #[error("connection closed")]
    ConnectionClosed,
    /// Our request was larger than the type allows (a bug on our side).
    #[error("request of {0} bytes is over the limit")]
    RequestTooLarge(usize),
    /// The peer's response is larger than the type allows.
    #[error("response of {0} bytes is over the limit")]
    ResponseTooLarge(usize),
    /// The peer's response does not decode.
    #[error("malformed response: {0}")]
    MalformedResponse(String),
    /// The peer refused: we exceeded its rate limit.
    #[error("rate limited by the peer")]
    RateLimited,
    /// The peer does not serve this request type.
    #[error("the peer does not serve this request")]
    Unsupported,
    /// The peer could not decode our request.
    #[error("the peer could not decode the request")]
    RejectedAsMalformed,
    /// The peer is overloaded.
    #[error("the peer is busy")]
    Busy,
    /// The local network is shutting down.
    #[error("network is shutting down")]
    Shutdown,
    /// Our own request could not be encoded (a bug on our side, never the peer's fault).
    #[error("cannot encode the request: {0}")]
    Encode(String),
}

impl RequestError {
    /// Whether the peer is to blame (bad response), as opposed to transport or our own limits.
    pub fn is_peer_fault(&self) -> bool {
        matches!(self, RequestError::ResponseTooLarge(_) | RequestError::MalformedResponse(_))
    }
}

/// Why an inbound request could not be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InboundError {
    /// The requester went away.
    #[error("requester is gone")]
    RequesterGone,
    /// The response could not be encoded within the type's limit.
    #[error("response too large")]
    ResponseTooLarge,
}

/// Errors of gossip and control operations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworkError {
    /// The message is larger than the topic allows.
    #[error("message of {0} bytes is over the topic's limit")]
    MessageTooLarge(usize),
    /// Publishing found no peer subscribed to the topic.
    #[error("no peers subscribed to the topic")]
    NoPeers,
    /// The local network is shutting down.
    #[error("network is shutting down")]
    Shutdown,
    /// Anything else, described.
    #[error("{0}")]
    Other(String),
}
