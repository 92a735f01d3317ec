//! Gossip topics: block announcements, and segment proofs of the election chain.
//!
//! Two topics instead of the reference's header + body pair that had to be reassembled: light and
//! pico nodes subscribe to headers (with justifications), history and full nodes to full blocks.
//! Producers publish every block on both (see `docs/adr/0008-protocol.md`).

use petrel_network_api::Topic;
use petrel_primitives::Block;

/// Headers with justifications, bodies stripped.
#[derive(Debug)]
pub struct BlockHeaders;

impl Topic for BlockHeaders {
    const NAME: &'static str = "petrel/block-headers/1";
    const MAX_SIZE: usize = 256 * 1024;
    type Item = Block;
}

/// Complete blocks with bodies.
#[derive(Debug)]
pub struct FullBlocks;

impl Topic for FullBlocks {
    const NAME: &'static str = "petrel/blocks/1";
    const MAX_SIZE: usize = crate::MAX_BLOCK_SIZE;
    type Item = Block;
}

/// Segment proofs of the election chain, published by provers as they make them (history nodes
/// verify and keep them; protocol.md §12).
#[derive(Debug)]
pub struct ZkpSegments;

impl Topic for ZkpSegments {
    const NAME: &'static str = "petrel/zkp-segments/1";
    const MAX_SIZE: usize = 1024;
    type Item = petrel_primitives::wire::ZkpSegment;
}
