//! Request types and the wire status of a response.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A request type with its response type, id, size limits and per-peer rate limit.
pub trait Request: Serialize + DeserializeOwned + Send + Sync + Clone + std::fmt::Debug + 'static {
    /// Unique id on the wire.
    const TYPE_ID: u16;
    /// Largest encoded request accepted.
    const MAX_REQUEST_SIZE: usize;
    /// Largest encoded response accepted.
    const MAX_RESPONSE_SIZE: usize;
    /// Most requests of this type one peer may send per [`Self::TIME_WINDOW`].
    const MAX_REQUESTS: u32;
    /// The rate-limit window.
    const TIME_WINDOW: Duration = Duration::from_secs(10);
    /// The services a peer must advertise to promise it serves this type: requesters send it only
    /// to such peers, and a server refusing it penalises only a requester it had not promised it.
    const SERVICES: crate::Services = crate::Services::NONE;
    /// The response.
    type Response: Serialize + DeserializeOwned + Send + Sync + Clone + std::fmt::Debug + 'static;
}

/// Which services promise each request type of a protocol: `(type id, services)`. A network given
/// this table (e.g. `petrel_protocol::PROMISES`) penalises a requester for a type it does not serve
/// only if its own advertised services do not promise that type (the requester could have known);
/// an empty table makes every unserved type the requester's fault.
pub type Promises = &'static [(u16, crate::Services)];

/// Whether advertising `services` promises to serve `type_id` according to `promises`.
pub fn promised(promises: Promises, services: crate::Services, type_id: u16) -> bool {
    promises.iter().any(|(id, needed)| *id == type_id && services.contains(*needed))
}

/// First byte of every response frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ResponseStatus {
    /// The payload is the encoded response.
    Ok = 0,
    /// The requester exceeded the rate limit for this type.
    RateLimited = 1,
    /// The request did not decode or was over its size limit.
    Malformed = 2,
    /// No handler for this type.
    Unsupported = 3,
    /// The handler queue is full or the handler failed.
    Busy = 4,
}

impl ResponseStatus {
    /// Decodes a status byte; unknown values are `None` (treated as a malformed response).
    pub fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            0 => Self::Ok,
            1 => Self::RateLimited,
            2 => Self::Malformed,
            3 => Self::Unsupported,
            4 => Self::Busy,
            _ => return None,
        })
    }
}
