//! The consensus layer. For now: the request handlers through which a node serves its chain to
//! peers ([`handlers`]). The syncer (macro sync → live sync, "established") comes with the sync
//! crates.

pub mod handlers;
