//! Fuzzes the decoder of `RequestZkp` requests.
#![no_main]

use libfuzzer_sys::fuzz_target;
use petrel_network_api::Request;
use petrel_primitives::codec;

fuzz_target!(|data: &[u8]| {
    let _ = codec::decode::<petrel_protocol::RequestZkp>(data, <petrel_protocol::RequestZkp as Request>::MAX_REQUEST_SIZE);
});
