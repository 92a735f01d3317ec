//! Request handlers: answer every sync request from the full chain store with the reference's
//! semantics (protocol-reference §2.5) and its holes closed (non-macro locators skipped, locator
//! lists and counts clamped, every miss an error value). Each request type is served by its own
//! loop; queries run on blocking threads, at most [`HandlerConfig::max_concurrent`] at a time per
//! type, so a flood of one type cannot starve the others. Size limits, rate limits and penalties
//! for malformed requests are enforced by the network below (see `petrel-network-api`).

use std::future::Future;
use std::sync::{Arc, RwLock};

use futures::StreamExt;
use petrel_blockchain::{Blockchain, QueryError};
use petrel_network_api::{Network, NetworkExt, Request, TypedInbound};
use petrel_protocol::*;
use tokio::sync::Semaphore;

/// The chain store shared between the node's writer (sync, producer) and the handlers.
pub type SharedChain = Arc<RwLock<Blockchain>>;

/// Handler settings.
#[derive(Clone, Copy, Debug)]
pub struct HandlerConfig {
    /// Queries of one request type running at once (the reference uses 64). More wait in the
    /// network's bounded inbound queue, and beyond it are answered `Busy`.
    pub max_concurrent: usize,
}

impl Default for HandlerConfig {
    fn default() -> Self {
        Self { max_concurrent: 64 }
    }
}

/// Answers a request from the chain (pure function of the store; used by the loops and tests).
pub trait Answer: Request {
    /// Computes the response.
    fn answer(&self, chain: &Blockchain) -> Self::Response;
}

impl Answer for RequestHead {
    fn answer(&self, chain: &Blockchain) -> ResponseHead {
        chain.head()
    }
}

impl Answer for RequestBlock {
    fn answer(&self, chain: &Blockchain) -> Result<petrel_primitives::Block, BlockRequestError> {
        match chain.block_by_hash(&self.hash, self.include_body) {
            Ok(Some(b)) => Ok(b),
            Ok(None) => Err(BlockRequestError::TargetHashNotFound),
            Err(e) => {
                tracing::warn!(target: "net::handlers", error = %e, "block lookup failed");
                Err(BlockRequestError::Other)
            }
        }
    }
}

impl Answer for RequestMacroChain {
    fn answer(&self, chain: &Blockchain) -> Result<MacroChain, MacroChainError> {
        match chain.macro_chain(&self.locators, self.max_epochs.min(MAX_EPOCHS)) {
            Ok(mc) => Ok(mc),
            Err(QueryError::UnknownLocators) => Err(MacroChainError::UnknownLocators),
            Err(e) => {
                tracing::warn!(target: "net::handlers", error = %e, "macro chain failed");
                Err(MacroChainError::Other)
            }
        }
    }
}

impl Answer for RequestBatchSet {
    fn answer(&self, chain: &Blockchain) -> Result<BatchSetInfo, BatchSetError> {
        match chain.batch_set(&self.hash) {
            Ok(info) => Ok(info),
            Err(QueryError::TargetHashNotFound) => Err(BatchSetError::TargetHashNotFound),
            Err(QueryError::MicroBlockGiven) => Err(BatchSetError::MicroBlockGiven),
            Err(QueryError::TargetNotOnMainChain) => Err(BatchSetError::NotOnMainChain),
            Err(QueryError::Chain(petrel_blockchain::ChainError::HistoryPruned(_))) => {
                Err(BatchSetError::HistoryUnavailable)
            }
            Err(e) => {
                tracing::warn!(target: "net::handlers", error = %e, "batch set failed");
                Err(BatchSetError::Other)
            }
        }
    }
}

impl Answer for RequestHistoryChunk {
    fn answer(&self, chain: &Blockchain) -> Result<HistoryChunk, HistoryChunkError> {
        match chain.history_chunk(self.epoch_number, self.block_number, self.chunk_index) {
            Ok(c) => Ok(c),
            Err(QueryError::CouldntProduceProof) => Err(HistoryChunkError::CouldntProduceProof),
            Err(e) => {
                tracing::warn!(target: "net::handlers", error = %e, "history chunk failed");
                Err(HistoryChunkError::Other)
            }
        }
    }
}

impl Answer for RequestMissingBlocks {
    fn answer(&self, chain: &Blockchain) -> Result<ResponseBlocks, MissingBlocksError> {
        match chain.missing_blocks(&self.target_hash, &self.locators, self.include_body) {
            Ok(blocks) => Ok(ResponseBlocks { blocks }),
            Err(QueryError::TargetHashNotFound) => Err(MissingBlocksError::TargetHashNotFound),
            Err(QueryError::TargetNotOnMainChain) => Err(MissingBlocksError::TargetBlockNotOnMainChain),
            Err(QueryError::UnknownLocators) => Err(MissingBlocksError::UnknownLocators),
            Err(e) => {
                tracing::warn!(target: "net::handlers", error = %e, "missing blocks failed");
                Err(MissingBlocksError::Other)
            }
        }
    }
}

impl Answer for RequestZkp {
    fn answer(&self, chain: &Blockchain) -> ZkpChain {
        match chain.proofs().chain_from(self.from_epoch, self.max_segments.min(MAX_ZKP_SEGMENTS)) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(target: "net::handlers", error = %e, "zkp chain failed");
                ZkpChain::default()
            }
        }
    }
}

/// Registers the handler for `R` now (requests arriving before the first poll are queued, not
/// refused) and returns the loop that answers them.
fn serve<R: Answer, N: Network>(network: N, chain: SharedChain, config: HandlerConfig) -> impl Future<Output = ()> {
    let permits = Arc::new(Semaphore::new(config.max_concurrent.max(1)));
    let mut requests = network.receive_requests::<R>();
    async move {
        while let Some(inbound) = requests.next().await {
            let Ok(permit) = permits.clone().acquire_owned().await else { return };
            let chain = chain.clone();
            // The task is detached: it answers through the request's own responder.
            drop(tokio::task::spawn_blocking(move || {
                let _permit = permit;
                answer_one(inbound, &chain);
            }));
        }
    }
}

fn answer_one<R: Answer>(inbound: TypedInbound<R>, chain: &SharedChain) {
    let response = match chain.read() {
        Ok(guard) => inbound.request.answer(&guard),
        // A poisoned lock means a writer panicked; answering from a half-written state is unsafe.
        Err(_) => return,
    };
    if let Err(e) = inbound.respond(&response) {
        tracing::debug!(target: "net::handlers", error = %e, "response not delivered");
    }
}

/// Serves what a light or pico node can answer: its head (so that full nodes can check whether it
/// is synced and let it follow their blocks). Every other request type is `Unsupported`. The
/// handler is registered when this is called, before the returned future first runs.
pub fn serve_light_chain<N: Network>(
    network: N,
    chain: Arc<std::sync::Mutex<petrel_blockchain::LightBlockchain>>,
) -> impl Future<Output = ()> {
    let mut requests = network.receive_requests::<RequestHead>();
    async move {
        while let Some(inbound) = requests.next().await {
            let response: ResponseHead = chain.lock().unwrap_or_else(|e| e.into_inner()).head();
            if let Err(e) = inbound.respond(&response) {
                tracing::debug!(target: "net::handlers", error = %e, "response not delivered");
            }
        }
    }
}

/// Serves every sync request type from `chain` until the network shuts down. Every handler is
/// registered when this is called, before the returned future first runs.
pub fn serve_full_chain<N: Network>(network: N, chain: SharedChain, config: HandlerConfig) -> impl Future<Output = ()> {
    let first = futures::future::join3(
        serve::<RequestHead, N>(network.clone(), chain.clone(), config),
        serve::<RequestBlock, N>(network.clone(), chain.clone(), config),
        serve::<RequestMacroChain, N>(network.clone(), chain.clone(), config),
    );
    let second = futures::future::join3(
        serve::<RequestBatchSet, N>(network.clone(), chain.clone(), config),
        serve::<RequestHistoryChunk, N>(network.clone(), chain.clone(), config),
        serve::<RequestMissingBlocks, N>(network.clone(), chain.clone(), config),
    );
    let third = serve::<RequestZkp, N>(network, chain, config);
    async move {
        futures::future::join3(first, second, third).await;
    }
}
