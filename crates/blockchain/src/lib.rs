//! Petrel's chain stores: the full chain on redb ([`Blockchain`]) and the light chain of pico and
//! light nodes ([`LightBlockchain`]). This is the only crate that touches the database.
//!
//! - [`Blockchain::push`] fully validates a block (intrinsic, successor, justification, execution,
//!   state and history roots) and commits it atomically; a rejected block leaves the store and the
//!   in-memory state untouched.
//! - [`Blockchain::push_history_sync`] adopts a macro block with its history, without micro blocks.
//! - The query methods answer what peers ask (protocol-reference §2.5).
//! - Kept downloads ([`Blockchain::downloads`]): History Macro Sync's answers not applied yet,
//!   so a restart does not fetch them again.
//! - [`verify_store`] replays a stored chain from genesis (`petrel chain verify`).
//! - Chain events go out on a bounded broadcast channel ([`ChainEvent`]).

mod chain;
mod downloads;
mod error;
mod events;
mod light;
mod proofs;
mod queries;
mod state;
mod tables;
mod verify;

pub use chain::{BATCH_SET_MAX_HISTORY_BYTES, Blockchain, ChainOptions, DEFAULT_CACHE_BYTES, PushResult};
pub use downloads::{DownloadKey, Downloads};
pub use error::ChainError;
pub use events::{ChainEvent, EVENT_CAPACITY};
pub use light::{LightBlockchain, LightError, MAX_DOUBTS, MAX_LIGHT_FILE, MacroVerifier};
pub use proofs::Proofs;
pub use queries::{BatchSetInfo, HeadInfo, HistoryChunk, MAX_EPOCHS, MAX_LOCATORS, MacroChain, QueryError};
pub use state::{Applied, ChainState};
pub use verify::{Progress, VerifyError, VerifyReport, verify_store};
