//! `petrel query`: ask a running node one question over libp2p and print the answer as JSON.
//! Meant for scripts and for checking a node from the outside.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use petrel_network_api::{Network, NetworkEvent, NetworkExt, Services};
use petrel_network_libp2p::{Libp2pConfig, Libp2pNetwork};
use petrel_primitives::{Blake2bHash, GenesisConfig};
use petrel_protocol::{RequestBlock, RequestHead, RequestMacroChain};

use crate::cli::{QueryArgs, QueryWhat};

/// Runs `petrel query`: the answer on stdout, indented, or as one line with `--json` (where a
/// failure is also a JSON line on stdout, besides the `error:` line on stderr and exit status 1).
pub(crate) fn run(args: &QueryArgs) -> Result<()> {
    crate::errors::print_answer(args.json, ask(args))
}

fn ask(args: &QueryArgs) -> Result<serde_json::Value> {
    let genesis = GenesisConfig::load(&args.genesis)
        .with_context(|| format!("cannot load the genesis {}", args.genesis.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let mut config = Libp2pConfig::random();
        config.bootstrap = vec![args.peer.clone()];
        config.genesis_hash = genesis.genesis_hash()?;
        config.services = Services::NONE;
        config.request_timeout = Duration::from_secs(args.timeout_secs);
        let (net, event_loop) = Libp2pNetwork::new(config).context("cannot start the network")?;
        let task = tokio::spawn(event_loop.run());
        let mut events = net.subscribe_events();
        let wait = async {
            loop {
                if let Some((peer, _)) = net.peers().into_iter().next() {
                    return Ok(peer);
                }
                match events.recv().await {
                    Ok(NetworkEvent::PeerJoined(peer, _)) => return Ok(peer),
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(e) => return Err(anyhow!("network stopped: {e}")),
                }
            }
        };
        let peer = tokio::time::timeout(Duration::from_secs(args.timeout_secs), wait).await.map_err(|_| {
            anyhow!("could not join {} within {} s (wrong address or another network?)", args.peer, args.timeout_secs)
        })??;
        let answer = match &args.what {
            QueryWhat::Head => serde_json::to_value(net.request(peer, &RequestHead).await?)?,
            QueryWhat::Block { hash, body } => {
                let hash = Blake2bHash::from_hex(hash).with_context(|| format!("bad block hash {hash:?}"))?;
                match net.request(peer, &RequestBlock { hash, include_body: *body }).await? {
                    Ok(block) => {
                        serde_json::json!({ "number": block.block_number(), "hash": block.hash(), "block": block })
                    }
                    Err(e) => bail!("the peer has no such block: {e}"),
                }
            }
            QueryWhat::MacroChain => {
                let locators = vec![genesis.genesis_hash()?];
                match net.request(peer, &RequestMacroChain { locators, max_epochs: 1000 }).await? {
                    Ok(mc) => serde_json::json!({ "epochs": mc.epochs, "checkpoint": mc.checkpoint }),
                    Err(e) => bail!("macro chain request refused: {e}"),
                }
            }
        };
        task.abort();
        Ok(answer)
    })
}
