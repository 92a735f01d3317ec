//! `petrel`: the Petrel node binary. This file only parses the command line, sets up logging and
//! maps errors to exit codes: 0 success, 1 failure (one `error: …` line on stderr with the cause
//! chain), 2 usage error (from clap).

mod adversary;
mod chain_cmd;
mod cli;
mod devnet;
mod errors;
mod metrics;
mod node;
mod node_cmd;
mod progress;
mod prover;
mod query;
mod sync_progress;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, Command};
use crate::errors::{error_line, run_catching_panics};

/// Log filter used when RUST_LOG is unset: info for petrel's crates, warn for dependencies.
const DEFAULT_LOG_FILTER: &str = "warn,petrel=info,petrel_node=info,petrel_blockchain=info,petrel_producer=info,petrel_primitives=info,consensus=info,sync=info,net=warn";

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The devnet runs five nodes in one process: their info lines would drown its progress and
    // summary, so it logs warnings only unless RUST_LOG says otherwise.
    init_tracing(if matches!(cli.command, Command::Devnet(_)) { "warn" } else { DEFAULT_LOG_FILTER });
    let result = run_catching_panics(|| match &cli.command {
        Command::Chain(command) => chain_cmd::run(command),
        Command::Node(args) => node_cmd::run(args),
        Command::Devnet(args) => devnet::run(args),
        Command::Query(args) => query::run(args),
        Command::Status(args) => metrics::run_status(args),
        Command::Adversary(args) => adversary::run(args),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_line(e.chain()));
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(default_filter: &str) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(s) if !s.trim().is_empty() => EnvFilter::try_new(&s).unwrap_or_else(|e| {
            eprintln!("warning: ignoring RUST_LOG={s:?}: {e}");
            EnvFilter::new(default_filter)
        }),
        _ => EnvFilter::new(default_filter),
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter)
        .init();
}
