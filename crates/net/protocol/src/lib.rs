//! Every message Petrel's sync protocols send, with its wire id, response type, size limits and
//! per-peer rate limit (protocol-reference §2.4, with the limits of its 2025 version).
//!
//! Error enums travel as a single code byte, and an unknown code decodes as `Other`, so that a
//! newer peer's new error variants never make an older peer's decode fail.
//!
//! This crate depends only on `petrel-primitives` and the network API's traits.

mod errors;
mod gossip;
mod messages;

pub use errors::{BatchSetError, BlockRequestError, HistoryChunkError, MacroChainError, MissingBlocksError};
pub use gossip::{BlockHeaders, FullBlocks, ZkpSegments};
pub use messages::*;
use petrel_network_api::{Network, NetworkExt, PeerId, Request, RequestError, RequestLimits, Services};

/// Declares the protocol's requests once: the [`AnyRequest`] / [`AnyResponse`] enums every sync
/// machine speaks, and the [`REQUEST_TYPE_IDS`] table (the uniqueness test and dispatch tables use
/// it). A new message is one new line here.
macro_rules! requests {
    ($($variant:ident($req:ty)),* $(,)?) => {
        /// Every request of the protocol, one variant per message type.
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub enum AnyRequest {
            $(
                #[doc = concat!("[`", stringify!($req), "`].")]
                $variant($req),
            )*
        }

        /// The answer to an [`AnyRequest`], in the variant of its request.
        #[derive(Clone, Debug, PartialEq, Eq)]
        #[allow(clippy::large_enum_variant)] // answers are consumed at once, never stored in bulk
        pub enum AnyResponse {
            $(
                #[doc = concat!("Answer to [`", stringify!($req), "`].")]
                $variant(<$req as Request>::Response),
            )*
        }

        /// Every request type id with its type's name.
        pub const REQUEST_TYPE_IDS: &[(u16, &str)] = &[$((<$req as Request>::TYPE_ID, stringify!($req))),*];

        /// The services that promise each request type ([`Request::SERVICES`]), for the
        /// networks' serving rules ([`petrel_network_api::Promises`]).
        pub const PROMISES: petrel_network_api::Promises =
            &[$((<$req as Request>::TYPE_ID, <$req as Request>::SERVICES)),*];

        /// The serving limits of every request type (e.g. to serve every type with one script).
        pub fn request_limits() -> Vec<RequestLimits> {
            vec![$(RequestLimits::of::<$req>()),*]
        }

        impl AnyRequest {
            /// The wire id of this request's type.
            pub fn type_id(&self) -> u16 {
                match self {
                    $(AnyRequest::$variant(_) => <$req as Request>::TYPE_ID,)*
                }
            }

            /// The services a peer must advertise to be sent this request.
            pub fn services(&self) -> Services {
                match self {
                    $(AnyRequest::$variant(_) => <$req as Request>::SERVICES,)*
                }
            }

            /// The request type's name, for logs.
            pub fn name(&self) -> &'static str {
                match self {
                    $(AnyRequest::$variant(_) => stringify!($req),)*
                }
            }

            /// Sends the request to `peer` and waits for its typed answer.
            pub async fn send<N: Network>(self, network: &N, peer: PeerId) -> Result<AnyResponse, RequestError> {
                match self {
                    $(AnyRequest::$variant(r) => network.request(peer, &r).await.map(AnyResponse::$variant),)*
                }
            }
        }

        impl AnyResponse {
            /// The wire id of the request this answers.
            pub fn type_id(&self) -> u16 {
                match self {
                    $(AnyResponse::$variant(_) => <$req as Request>::TYPE_ID,)*
                }
            }
        }

        $(
            impl From<$req> for AnyRequest {
                fn from(r: $req) -> Self {
                    AnyRequest::$variant(r)
                }
            }
        )*
    };
}

requests! {
    MacroChain(RequestMacroChain),
    BatchSet(RequestBatchSet),
    HistoryChunk(RequestHistoryChunk),
    Block(RequestBlock),
    MissingBlocks(RequestMissingBlocks),
    Head(RequestHead),
    Zkp(RequestZkp),
}
