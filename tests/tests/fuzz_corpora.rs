//! The fuzz corpora (`fuzz/corpus/<target>/`, grown by `cargo xtask fuzz`) replayed as regression
//! tests on the stable toolchain: every input goes through the decoder its target fuzzes, with the
//! same limit; nothing panics, and whatever decodes encodes to bytes that decode to the same value.

use std::fmt::Debug;
use std::path::{Path, PathBuf};

use petrel_network_api::{Request, Topic};
use petrel_primitives::{Block, codec};
use petrel_protocol::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target);
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("no corpus at {}: {e}", dir.display()))
        .map(|e| e.expect("a corpus entry").path())
        .map(|p| {
            let bytes = std::fs::read(&p).expect("a corpus file");
            (p, bytes)
        })
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "the corpus of {target} is empty");
    inputs
}

/// Replays `target`'s corpus through `decode::<T>` with `limit`; returns how many inputs decoded.
fn replay<T: Serialize + DeserializeOwned + PartialEq + Debug>(target: &str, limit: usize) -> usize {
    let mut decoded = 0;
    for (path, data) in corpus(target) {
        if let Ok(value) = codec::decode::<T>(&data, limit) {
            decoded += 1;
            let bytes = codec::encode(&value).expect("a decoded value encodes");
            let again = codec::decode::<T>(&bytes, limit)
                .unwrap_or_else(|e| panic!("{}: re-encoded value does not decode: {e}", path.display()));
            assert_eq!(again, value, "{}", path.display());
        }
    }
    decoded
}

fn request<R: Request + PartialEq>(target: &str) -> usize {
    replay::<R>(target, R::MAX_REQUEST_SIZE)
}

fn response<R: Request>(target: &str) -> usize
where
    R::Response: PartialEq,
{
    replay::<R::Response>(target, R::MAX_RESPONSE_SIZE)
}

#[test]
fn request_corpora_replay() {
    request::<RequestMacroChain>("request_macro_chain");
    request::<RequestBatchSet>("request_batch_set");
    request::<RequestHistoryChunk>("request_history_chunk");
    request::<RequestBlock>("request_block");
    request::<RequestMissingBlocks>("request_missing_blocks");
    request::<RequestHead>("request_head");
    request::<RequestZkp>("request_zkp");
}

#[test]
fn response_corpora_replay() {
    response::<RequestMacroChain>("response_macro_chain");
    response::<RequestBatchSet>("response_batch_set");
    response::<RequestHistoryChunk>("response_history_chunk");
    response::<RequestBlock>("response_block");
    response::<RequestMissingBlocks>("response_missing_blocks");
    response::<RequestHead>("response_head");
    response::<RequestZkp>("response_zkp");
}

#[test]
fn gossip_corpus_replays() {
    replay::<Block>("gossip_block", <BlockHeaders as Topic>::MAX_SIZE);
    replay::<Block>("gossip_block", <FullBlocks as Topic>::MAX_SIZE);
    for (_, data) in corpus("gossip_block") {
        let _ = petrel_network_api::decode_response_frame(data);
    }
}
