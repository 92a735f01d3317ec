//! Command-line types of the `petrel` binary (clap derive). Parsing only: the commands themselves
//! live in [`crate::chain_cmd`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Most validators per epoch the tools accept: the devnet policy's slots (each needs one).
pub(crate) const MAX_VALIDATORS: i64 = 512;
use petrel_primitives::Policy;

/// Petrel: an Albatross-style proof-of-stake chain node.
///
/// Logging goes to stderr and is controlled by RUST_LOG (default: info for petrel, warn for the
/// rest), e.g. `RUST_LOG=petrel=debug`.
#[derive(Debug, Parser)]
#[command(name = "petrel", version, about, long_about)]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Work with a chain store on disk: generate, verify, inspect.
    #[command(subcommand)]
    Chain(ChainCommand),
    /// Run a node: serve and follow the chain over libp2p (history/full), or sync a light chain
    /// (light/pico).
    Node(NodeArgs),
    /// Ask a running node one question (head, block, macro chain) and print the answer as JSON.
    Query(QueryArgs),
    /// Start a local network on loopback: a producing history node, two serving history nodes,
    /// and a pico and a light node that sync from them; show progress and a summary.
    Devnet(DevnetArgs),
    /// Ask a running node (started with `--metrics ADDR`) where it is and what it waits on.
    Status(StatusArgs),
    /// Attack nodes for testing: peers that speak the protocol and misbehave (docs/adversary.md).
    Adversary(AdversaryArgs),
}

/// Options of `petrel adversary`.
#[derive(Debug, Args)]
pub(crate) struct AdversaryArgs {
    /// A node to attack, with its /p2p/ id (repeatable).
    #[arg(long, value_name = "MULTIADDR")]
    pub(crate) peer: Vec<String>,
    /// Genesis TOML of the nodes' network.
    #[arg(long, value_name = "FILE")]
    pub(crate) genesis: PathBuf,
    /// Identities (libp2p nodes), taking the behaviours in turn.
    #[arg(long, value_name = "N", default_value_t = 11, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub(crate) identities: u16,
    /// Behaviours (repeatable or comma-separated) [default: all].
    #[arg(long, value_enum, value_delimiter = ',')]
    pub(crate) behaviour: Vec<crate::adversary::Behaviour>,
    /// Seconds to run (at most a day).
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub(crate) duration_secs: u64,
    /// JSON lines: `started` with the identities, `done` with what each did.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Options of `petrel status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// The node's metrics address (its `--metrics`), e.g. 127.0.0.1:9100.
    #[arg(long, value_name = "ADDR")]
    pub(crate) metrics: String,
    /// Seconds to wait for the answer (at most an hour).
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub(crate) timeout_secs: u64,
    /// One JSON line (or `{"ok": false, "error": ...}` on failure) instead of indented JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Options of `petrel node` (each also settable in the `--config` TOML file; flags win).
#[derive(Debug, Args)]
pub(crate) struct NodeArgs {
    /// history, full, light or pico.
    #[arg(long, value_enum)]
    pub(crate) mode: Option<crate::node::Mode>,
    /// Directory of the node's store, key and genesis.toml.
    #[arg(long, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Genesis TOML [default: DATA_DIR/genesis.toml].
    #[arg(long, value_name = "FILE")]
    pub(crate) genesis: Option<PathBuf>,
    /// Listen multiaddress, e.g. /ip4/127.0.0.1/tcp/4001 (repeatable) [default: /ip4/0.0.0.0/tcp/0].
    #[arg(long, value_name = "MULTIADDR")]
    pub(crate) listen: Vec<String>,
    /// Peer to dial, with its /p2p/ id (repeatable).
    #[arg(long, value_name = "MULTIADDR")]
    pub(crate) peer: Vec<String>,
    /// Produce blocks with the devnet validator keys (history/full).
    #[arg(long)]
    pub(crate) produce: bool,
    /// Milliseconds between produced blocks [default: 1000].
    #[arg(long, value_name = "MS")]
    pub(crate) block_interval_ms: Option<u64>,
    /// Seed of the producer's keys (as given to `chain generate`) [default: 1].
    #[arg(long, value_name = "S")]
    pub(crate) seed: Option<u64>,
    /// Validators per epoch of the producer (as given to `chain generate`) [default: 16].
    #[arg(long, value_name = "V", value_parser = clap::value_parser!(u16).range(1..=MAX_VALIDATORS))]
    pub(crate) validators: Option<u16>,
    /// Live-sync peers needed to be established [default: 3].
    #[arg(long, value_name = "N")]
    pub(crate) min_peers: Option<usize>,
    /// Light/pico: trusted checkpoint election block NUMBER:HASH to sync from instead of genesis.
    #[arg(long, value_name = "NUMBER:HASH")]
    pub(crate) checkpoint: Option<String>,
    /// Full: epochs of history kept before the head's epoch; older history is deleted as the
    /// chain grows [default: 1].
    #[arg(long, value_name = "EPOCHS")]
    pub(crate) max_epochs_stored: Option<u32>,
    /// History: prove the election chain and serve the proofs (the genesis needs a `[zkp]`
    /// section with a setup seed, as `petrel devnet` writes).
    #[arg(long)]
    pub(crate) prove: bool,
    /// Where proving keys are cached [default: $XDG_CACHE_HOME/petrel/zkp or ~/.cache/petrel/zkp].
    #[arg(long, value_name = "DIR")]
    pub(crate) zkp_cache: Option<PathBuf>,
    /// Serve Prometheus metrics on http://ADDR/metrics and the status as JSON on /status
    /// (e.g. 127.0.0.1:9100; port 0 picks a free one, printed at start).
    #[arg(long, value_name = "ADDR")]
    pub(crate) metrics: Option<std::net::SocketAddr>,
    /// TOML file with any of the options above.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Print JSON lines (listening, established/lost, status) on stdout.
    #[arg(long)]
    pub(crate) json: bool,
    /// Testing aid: abort the process (no cleanup, like `kill -9`) as soon as the responses
    /// received pass N bytes, after printing a `crash` JSON line with the exact count. The resume
    /// test chooses its kill points with it.
    #[arg(long, value_name = "BYTES", hide = true)]
    pub(crate) crash_after_bytes: Option<u64>,
}

/// Options of `petrel query`.
#[derive(Debug, Args)]
pub(crate) struct QueryArgs {
    /// The node to ask, with its /p2p/ id (as printed by `petrel node`).
    #[arg(long, value_name = "MULTIADDR")]
    pub(crate) peer: String,
    /// Genesis TOML of the node's network.
    #[arg(long, value_name = "FILE")]
    pub(crate) genesis: PathBuf,
    /// Seconds to wait for the connection and the answer (at most an hour).
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub(crate) timeout_secs: u64,
    /// One JSON line (the answer, or `{"ok": false, "error": ...}` on failure, exit status 1)
    /// instead of indented JSON and an error on stderr.
    #[arg(long)]
    pub(crate) json: bool,
    /// The question.
    #[command(subcommand)]
    pub(crate) what: QueryWhat,
}

/// What `petrel query` asks.
#[derive(Debug, Subcommand)]
pub(crate) enum QueryWhat {
    /// The node's head, macro head and election head.
    Head,
    /// One block by hash.
    Block {
        /// Block hash (64 hex characters).
        hash: String,
        /// Include the body.
        #[arg(long)]
        body: bool,
    },
    /// The election block hashes after genesis (and the latest checkpoint).
    MacroChain,
}

/// Options of `petrel devnet`.
#[derive(Debug, Args)]
pub(crate) struct DevnetArgs {
    /// Epochs of chain built before the syncing nodes start.
    #[arg(long, value_name = "N", default_value_t = 24)]
    pub(crate) epochs: u32,
    /// Transfers per micro block.
    #[arg(long, value_name = "T", default_value_t = 10)]
    pub(crate) tx_per_block: usize,
    /// Milliseconds between blocks produced while the devnet runs.
    #[arg(long, value_name = "MS", default_value_t = 500)]
    pub(crate) block_interval_ms: u64,
    /// Where the nodes keep their stores [default: a temporary directory, removed at exit].
    #[arg(long, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Seed of keys and transactions.
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub(crate) seed: u64,
    /// Exit (0) once every syncing node is established and its head matches the producer's.
    #[arg(long)]
    pub(crate) exit_when_synced: bool,
    /// With --exit-when-synced: give up (exit 1) if the syncing nodes are not synced within this
    /// many seconds (at most a day).
    #[arg(long, value_name = "SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub(crate) timeout_secs: u64,
    /// Print the summary as JSON on stdout (no progress bars).
    #[arg(long)]
    pub(crate) json: bool,
    /// Election handoffs per zero-knowledge proof of the election chain; 0 for a network without
    /// proofs. The producer proves the built chain before the syncing nodes start, then each new
    /// epoch; light and pico nodes verify the proofs.
    #[arg(long, value_name = "K", default_value_t = 8, value_parser = clap::value_parser!(u16).range(0..=64))]
    pub(crate) zkp_handoffs: u16,
    /// Where proving keys are cached [default: $XDG_CACHE_HOME/petrel/zkp or ~/.cache/petrel/zkp].
    #[arg(long, value_name = "DIR")]
    pub(crate) zkp_cache: Option<PathBuf>,
}

/// `petrel chain …`
#[derive(Debug, Subcommand)]
pub(crate) enum ChainCommand {
    /// Generate (or extend) a deterministic devnet chain into DATA_DIR/chain.redb.
    ///
    /// Every block is fully validated and committed durably. If the store already exists, the
    /// generator continues from its head (the same options must be given again: they define the
    /// network). DATA_DIR/genesis.toml is written for reference.
    Generate(GenerateArgs),
    /// Replay DATA_DIR/chain.redb from genesis, re-checking every block, signature and root.
    ///
    /// Exits 1 and names the first bad block if one is found.
    Verify(StoreArgs),
    /// Show the head, heads, validators and sizes of DATA_DIR/chain.redb.
    Info(StoreArgs),
}

/// Options shared by the commands that read an existing store.
#[derive(Debug, Args)]
pub(crate) struct StoreArgs {
    /// Directory holding chain.redb.
    #[arg(long, value_name = "DIR")]
    pub(crate) data_dir: PathBuf,
    /// Print one JSON object on stdout instead of text (no progress output).
    #[arg(long)]
    pub(crate) json: bool,
}

/// Options of `petrel chain generate`.
#[derive(Debug, Args)]
pub(crate) struct GenerateArgs {
    /// Directory of the store (created if missing).
    #[arg(long, value_name = "DIR")]
    pub(crate) data_dir: PathBuf,
    /// Generate until the election block that closes this epoch is the head.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub(crate) epochs: u32,
    /// Transfers per micro block (capped by the policy's max_transactions_per_block).
    #[arg(long, value_name = "T", default_value_t = 50)]
    pub(crate) tx_per_block: usize,
    /// Seed of every key and random choice.
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub(crate) seed: u64,
    /// Validators per epoch (at most the devnet policy's 512 slots: each validator needs one).
    #[arg(long, value_name = "V", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=MAX_VALIDATORS))]
    pub(crate) validators: u16,
    /// Funded accounts that send transfers.
    #[arg(long, value_name = "A", default_value_t = 256)]
    pub(crate) accounts: usize,
    /// Consensus parameters of the generated genesis [default: devnet].
    #[arg(long, value_enum, conflicts_with = "genesis")]
    pub(crate) policy: Option<PolicyArg>,
    /// Use this genesis TOML instead of generating one. Its validators must be keys derived from
    /// --seed (e.g. a genesis.toml written by an earlier `generate` with the same options).
    #[arg(long, value_name = "FILE")]
    pub(crate) genesis: Option<PathBuf>,
    /// Print one JSON object on stdout instead of text (no progress output).
    #[arg(long)]
    pub(crate) json: bool,
    /// Testing aid: abort the process (no cleanup, like a crash) right after the N-th block of
    /// this run is committed. The crash test chooses its kill points with it.
    #[arg(long, value_name = "N", hide = true)]
    pub(crate) crash_after: Option<u64>,
}

/// Named policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum PolicyArg {
    /// 32 blocks per batch, 4 batches per epoch (128 blocks), 512 slots.
    Devnet,
    /// 4 blocks per batch, 2 batches per epoch (8 blocks), 16 slots.
    Test,
}

impl PolicyArg {
    /// The policy it names.
    pub(crate) fn policy(self) -> Policy {
        match self {
            PolicyArg::Devnet => Policy::DEVNET,
            PolicyArg::Test => Policy::TEST,
        }
    }
}

/// The name of a well-known policy, or "custom".
pub(crate) fn policy_name(policy: &Policy) -> &'static str {
    if *policy == Policy::DEVNET {
        "devnet"
    } else if *policy == Policy::TEST {
        "test"
    } else {
        "custom"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn generate_defaults() {
        let cli = Cli::try_parse_from(["petrel", "chain", "generate", "--data-dir", "d"]).unwrap();
        let Command::Chain(ChainCommand::Generate(a)) = cli.command else { panic!("not generate") };
        assert_eq!((a.epochs, a.tx_per_block, a.seed, a.validators, a.accounts), (10, 50, 1, 16, 256));
        assert_eq!(a.policy, None);
        assert!(!a.json);
    }

    #[test]
    fn policy_conflicts_with_genesis() {
        let r = Cli::try_parse_from([
            "petrel",
            "chain",
            "generate",
            "--data-dir",
            "d",
            "--policy",
            "test",
            "--genesis",
            "g",
        ]);
        assert!(r.is_err());
        let r = Cli::try_parse_from(["petrel", "chain", "generate", "--data-dir", "d", "--validators", "0"]);
        assert!(r.is_err());
        // Values that would overflow or make no sense are refused with a clear message.
        for argv in [
            &["petrel", "chain", "generate", "--data-dir", "d", "--validators", "513"][..],
            &["petrel", "node", "--data-dir", "d", "--validators", "100000"],
            &["petrel", "devnet", "--timeout-secs", "18446744073709551615"],
            &["petrel", "query", "--peer", "p", "--genesis", "g", "--timeout-secs", "0", "head"],
        ] {
            let err = Cli::try_parse_from(argv).err().unwrap_or_else(|| panic!("{argv:?} accepted")).to_string();
            assert!(err.contains("not in"), "{argv:?}: {err}");
        }
    }
}
