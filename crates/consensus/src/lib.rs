//! The consensus layer: the [`syncer::Syncer`] that aggregates macro-sync verdicts per peer, runs
//! block live sync ([`live::BlockLiveSync`]) and head requests, and decides "established" and "lost"
//! with the pure rule in [`established`]; and the request [`handlers`] through which a node serves
//! its chain to peers.

pub mod chain;
pub mod direct;
pub mod established;
pub mod handlers;
pub mod live;
pub mod syncer;
pub mod syncer_machine;

pub use chain::{PushError, SharedFull, SharedLight, SyncChain};
pub use direct::DirectToLive;
pub use established::{EstablishedConfig, EstablishedInputs, is_established, is_lost};
pub use live::{BlockLiveSync, LiveConfig, LiveMachine, block_live_sync};
pub use syncer::{ConsensusEvent, Syncer, SyncerConfig, SyncerStats};
