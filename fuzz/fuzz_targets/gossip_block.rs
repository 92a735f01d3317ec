//! Fuzzes the decoder of gossiped blocks (both topics) and the response-frame splitter.
#![no_main]

use libfuzzer_sys::fuzz_target;
use petrel_network_api::Topic;
use petrel_primitives::{Block, codec};
use petrel_protocol::{BlockHeaders, FullBlocks};

fuzz_target!(|data: &[u8]| {
    let _ = codec::decode::<Block>(data, <BlockHeaders as Topic>::MAX_SIZE);
    let _ = codec::decode::<Block>(data, <FullBlocks as Topic>::MAX_SIZE);
    let _ = petrel_network_api::decode_response_frame(data.to_vec());
});
