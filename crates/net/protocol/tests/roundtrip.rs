//! Every message type: unique ids, and round-trip property tests through the canonical codec
//! within each type's size limits.

use std::collections::HashSet;
use std::sync::OnceLock;

use petrel_network_api::Request;
use petrel_primitives::codec;
use petrel_primitives::history::{RangeProof, SizeProof};
use petrel_primitives::{Blake2bHash, Block, Policy};
use petrel_protocol::*;
use proptest::prelude::*;

#[test]
fn request_type_ids_are_unique() {
    let ids: HashSet<u16> = REQUEST_TYPE_IDS.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids.len(), REQUEST_TYPE_IDS.len());
    assert_eq!(RequestHead::TYPE_ID, 210);
}

/// A small pool of real blocks (micro, checkpoint, election) made by the producer.
fn blocks() -> &'static Vec<Block> {
    static BLOCKS: OnceLock<Vec<Block>> = OnceLock::new();
    BLOCKS.get_or_init(|| {
        let p = petrel_producer::Producer::new(petrel_producer::ProducerConfig {
            validators: 4,
            spare_validators: 1,
            accounts: 8,
            transactions_per_block: 3,
            ..Default::default()
        });
        let g = p.genesis(1, 0, Policy::TEST);
        let mut state = petrel_blockchain::ChainState::genesis(&g).unwrap();
        (0..8)
            .map(|_| {
                let b = p.produce(&mut state).unwrap();
                state.apply_block(b.clone()).unwrap();
                b
            })
            .collect()
    })
}

fn hash() -> impl Strategy<Value = Blake2bHash> {
    any::<[u8; 32]>().prop_map(Blake2bHash)
}
fn block() -> impl Strategy<Value = Block> {
    (0..8usize, any::<bool>()).prop_map(|(i, body)| if body { blocks()[i].clone() } else { blocks()[i].without_body() })
}
fn macro_block() -> impl Strategy<Value = petrel_primitives::MacroBlock> {
    prop_oneof![Just(3usize), Just(7usize)].prop_map(|i| blocks()[i].as_macro().cloned().unwrap())
}

fn round_trip<T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(v: &T, limit: usize) {
    let bytes = codec::encode(v).unwrap();
    assert!(bytes.len() <= limit, "{} bytes over the limit {limit}", bytes.len());
    assert_eq!(&codec::decode::<T>(&bytes, limit).unwrap(), v);
}

fn check<R: Request + PartialEq>(req: &R, resp: &R::Response)
where
    R::Response: PartialEq,
{
    round_trip(req, R::MAX_REQUEST_SIZE);
    round_trip(resp, R::MAX_RESPONSE_SIZE);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn macro_chain(locators in prop::collection::vec(hash(), 0..=MAX_LOCATORS), max in any::<u16>(),
                   epochs in prop::collection::vec(hash(), 0..=MAX_EPOCHS as usize), cp in proptest::option::of((any::<u32>(), hash())), err in any::<u8>()) {
        let req = RequestMacroChain { locators, max_epochs: max };
        check(&req, &Ok(MacroChain { epochs, checkpoint: cp }));
        let e: Result<MacroChain, MacroChainError> = Err(MacroChainError::from(err));
        check(&req, &e);
    }

    #[test]
    fn batch_set(h in hash(), sets in prop::collection::vec((macro_block(), any::<u64>(), hash()), 0..4), election in proptest::option::of(macro_block()), err in any::<u8>()) {
        let info = BatchSetInfo {
            election_macro_block: election,
            batch_sets: sets.into_iter().map(|(b, leaves, mmr_root)| (b, SizeProof { leaves, mmr_root })).collect(),
        };
        check(&RequestBatchSet { hash: h }, &Ok(info));
        let e: Result<BatchSetInfo, BatchSetError> = Err(BatchSetError::from(err));
        check(&RequestBatchSet { hash: h }, &e);
    }

    #[test]
    fn history_chunk(epoch in any::<u32>(), number in any::<u32>(), index in any::<u64>(), total in any::<u64>(), nodes in prop::collection::vec(hash(), 0..64), pick in prop::collection::vec(0..8usize, 0..20)) {
        let items = pick.into_iter().filter_map(|i| match &blocks()[i] {
            Block::Micro(m) => m.body.as_ref().and_then(|b| b.transactions.first()).map(|tx| petrel_primitives::HistoryItem {
                block_number: m.header.block_number, block_time: m.header.timestamp, kind: petrel_primitives::HistoryKind::Transfer(tx.clone()),
            }),
            Block::Macro(_) => None,
        }).collect();
        let req = RequestHistoryChunk { epoch_number: epoch, block_number: number, chunk_index: index };
        check(&req, &Ok(HistoryChunk { items, proof: RangeProof { total_leaves: total, nodes } }));
    }

    #[test]
    fn block_request(h in hash(), body in any::<bool>(), b in block(), err in any::<u8>()) {
        check(&RequestBlock { hash: h, include_body: body }, &Ok(b));
        let e: Result<Block, BlockRequestError> = Err(BlockRequestError::from(err));
        check(&RequestBlock { hash: h, include_body: body }, &e);
    }

    #[test]
    fn missing_blocks(t in hash(), body in any::<bool>(), locators in prop::collection::vec(hash(), 0..=MAX_LOCATORS), blocks in prop::collection::vec(block(), 0..8)) {
        check(&RequestMissingBlocks { target_hash: t, include_body: body, locators }, &Ok(ResponseBlocks { blocks }));
    }

    #[test]
    fn head(n in any::<u32>(), a in hash(), b in hash(), c in hash()) {
        check(&RequestHead, &ResponseHead { block_number: n, block_hash: a, macro_hash: b, election_hash: c });
    }

    #[test]
    fn gossip_items(b in block()) {
        round_trip(&b.without_body(), <BlockHeaders as petrel_network_api::Topic>::MAX_SIZE);
        round_trip(&b, <FullBlocks as petrel_network_api::Topic>::MAX_SIZE);
    }

    #[test]
    fn decoders_never_panic_on_garbage(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = codec::decode::<RequestMacroChain>(&bytes, RequestMacroChain::MAX_REQUEST_SIZE);
        let _ = codec::decode::<<RequestMacroChain as Request>::Response>(&bytes, RequestMacroChain::MAX_RESPONSE_SIZE);
        let _ = codec::decode::<<RequestBatchSet as Request>::Response>(&bytes, RequestBatchSet::MAX_RESPONSE_SIZE);
        let _ = codec::decode::<<RequestHistoryChunk as Request>::Response>(&bytes, RequestHistoryChunk::MAX_RESPONSE_SIZE);
        let _ = codec::decode::<<RequestBlock as Request>::Response>(&bytes, RequestBlock::MAX_RESPONSE_SIZE);
        let _ = codec::decode::<<RequestMissingBlocks as Request>::Response>(&bytes, RequestMissingBlocks::MAX_RESPONSE_SIZE);
        let _ = codec::decode::<ResponseHead>(&bytes, RequestHead::MAX_RESPONSE_SIZE);
    }
}

#[test]
fn unknown_error_codes_decode_as_other() {
    let bytes = codec::encode(&200u8).unwrap();
    assert_eq!(codec::decode::<MacroChainError>(&bytes, 8).unwrap(), MacroChainError::Other);
    let bytes = codec::encode(&MissingBlocksError::UnknownLocators).unwrap();
    assert_eq!(codec::decode::<MissingBlocksError>(&bytes, 8).unwrap(), MissingBlocksError::UnknownLocators);
}
