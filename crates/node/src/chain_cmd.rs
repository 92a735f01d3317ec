//! The `petrel chain` subcommands: `generate` (deterministic devnet chain into a durable store),
//! `verify` (replay from genesis) and `info` (heads and sizes).
//!
//! Every command prints a human summary on stdout, or with `--json` exactly one JSON object.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use petrel_blockchain::{Blockchain, ChainError, ChainOptions, PushResult, VerifyError, verify_store};
use petrel_primitives::{Block, GenesisConfig, Validators};
use petrel_producer::{Producer, ProducerConfig};
use serde_json::json;

use crate::cli::{ChainCommand, GenerateArgs, PolicyArg, StoreArgs, policy_name};
use crate::progress::{Mode, Progress};

/// File name of the chain store inside the data directory.
pub(crate) const STORE_FILE: &str = "chain.redb";
/// File name of the genesis config written next to the store.
pub(crate) const GENESIS_FILE: &str = "genesis.toml";
/// Network id of generated chains.
pub(crate) const NETWORK_ID: u8 = 1;
/// Genesis timestamp of generated chains (fixed, so the genesis depends only on the options).
pub(crate) const GENESIS_TIMESTAMP: u64 = 1_700_000_000_000;

/// Runs one `petrel chain` subcommand.
pub(crate) fn run(command: &ChainCommand) -> Result<()> {
    match command {
        ChainCommand::Generate(args) => generate(args),
        ChainCommand::Verify(args) => verify(args),
        ChainCommand::Info(args) => info(args),
    }
}

fn store_path(data_dir: &Path) -> PathBuf {
    data_dir.join(STORE_FILE)
}

/// The store of `data_dir`, which must exist.
fn existing_store(data_dir: &Path) -> Result<PathBuf> {
    let path = store_path(data_dir);
    match fs::metadata(&path) {
        Ok(m) if m.is_file() => Ok(path),
        Ok(_) => bail!("{} is not a file", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!(
                "no chain store at {} (create one with `petrel chain generate --data-dir {}`)",
                path.display(),
                data_dir.display()
            )
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!("cannot access {}", path.display()))),
    }
}

fn file_size(path: &Path) -> u64 {
    fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn per_sec(count: u64, d: Duration) -> f64 {
    let s = d.as_secs_f64();
    if s > 0.0 { count as f64 / s } else { 0.0 }
}

fn print_json(value: &serde_json::Value) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// generate

/// Fails unless every validator of `validators` is a key the producer holds.
fn check_producer_keys(producer: &Producer, validators: &Validators, what: &str) -> Result<()> {
    let known: HashSet<[u8; 32]> = producer.keys().validators.iter().map(|k| k.public_key().to_bytes()).collect();
    let unknown = validators.0.iter().filter(|v| !known.contains(&v.public_key.to_bytes())).count();
    if unknown > 0 {
        let c = producer.config();
        bail!(
            "{unknown} of the {} validators of {what} are not keys derived from --seed {} --validators {}; \
             the generator can only extend a chain whose validators it holds",
            validators.len(),
            c.seed,
            c.validators
        );
    }
    Ok(())
}

/// Opens the store at `path` for `genesis`, creating it if missing. Creation is atomic: the store
/// is built as `chain.redb.tmp` and renamed once the genesis is committed, so `chain.redb` never
/// exists without a genesis, whenever the process is killed.
fn open_or_create(path: &Path, genesis: &GenesisConfig) -> Result<Blockchain> {
    if !path.exists() {
        let tmp = path.with_extension("redb.tmp");
        match fs::remove_file(&tmp) {
            Ok(()) => tracing::debug!("removed the leftover {}", tmp.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(anyhow::Error::new(e).context(format!("cannot remove {}", tmp.display()))),
        }
        let created = Blockchain::open(&tmp, genesis, ChainOptions::default())
            .with_context(|| format!("cannot create the chain store {}", tmp.display()))?;
        drop(created);
        fs::rename(&tmp, path).with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))?;
        if let Some(dir) = path.parent() {
            // Make the rename itself durable (best effort: not every platform can fsync a directory).
            if let Ok(d) = fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
    }
    Blockchain::open(path, genesis, ChainOptions::default()).map_err(|e| match e {
        ChainError::GenesisMismatch { stored, configured } => anyhow!(
            "{} holds another network (stored genesis {stored}, these options give {configured}); \
             rerun with the options it was generated with (see {}) or use another --data-dir",
            path.display(),
            path.with_file_name(GENESIS_FILE).display()
        ),
        e => anyhow::Error::new(e).context(format!("cannot open the chain store {}", path.display())),
    })
}

fn generate(args: &GenerateArgs) -> Result<()> {
    let mode = Mode::detect(args.json);
    let producer = Producer::new(ProducerConfig {
        seed: args.seed,
        validators: usize::from(args.validators),
        accounts: args.accounts,
        transactions_per_block: args.tx_per_block,
        ..ProducerConfig::default()
    });
    let genesis = match &args.genesis {
        Some(file) => {
            let g = GenesisConfig::load(file).with_context(|| format!("cannot load the genesis {}", file.display()))?;
            let validators = g.validator_set().with_context(|| format!("invalid genesis {}", file.display()))?;
            check_producer_keys(&producer, &validators, &format!("the genesis {}", file.display()))?;
            g
        }
        None => {
            let policy = args.policy.unwrap_or(PolicyArg::Devnet).policy();
            let g = producer.genesis(NETWORK_ID, GENESIS_TIMESTAMP, policy);
            g.validate().context("these options give an invalid genesis")?;
            g
        }
    };
    let policy = genesis.policy;
    fs::create_dir_all(&args.data_dir).with_context(|| format!("cannot create {}", args.data_dir.display()))?;
    let path = store_path(&args.data_dir);
    let mut chain = open_or_create(&path, &genesis)?;
    let genesis_file = args.data_dir.join(GENESIS_FILE);
    fs::write(&genesis_file, genesis.to_toml()).with_context(|| format!("cannot write {}", genesis_file.display()))?;
    check_producer_keys(&producer, &chain.state().validators, "the chain's current epoch")?;

    let target = policy.election_block_of(args.epochs);
    let start_head = chain.head().block_number;
    let to_do = u64::from(target.saturating_sub(start_head));
    let mut progress = Progress::new("generate", to_do, mode);
    if start_head > policy.genesis_block_number {
        progress.note(&format!("continuing {} from head {start_head}", path.display()));
    }
    if to_do == 0 {
        progress.note(&format!(
            "head {start_head} is already at or past epoch {} (block {target}); nothing to do",
            args.epochs
        ));
    }

    let (mut t_clone, mut t_produce, mut t_push) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let (mut blocks, mut transactions) = (0u64, 0u64);
    let started = Instant::now();
    while chain.head().block_number < target {
        // The producer needs a mutable state to preview roots; a clone costs the account tree and
        // one epoch's history tree, far less than re-validating the block on a second state.
        let t = Instant::now();
        let mut scratch = chain.state().clone();
        t_clone += t.elapsed();

        let t = Instant::now();
        let block = producer
            .produce(&mut scratch)
            .with_context(|| format!("cannot produce block {}", chain.head().block_number.saturating_add(1)))?;
        t_produce += t.elapsed();
        let number = block.block_number();
        let txs = match &block {
            Block::Micro(m) => m.body.as_ref().map_or(0, |b| b.transactions.len() as u64),
            Block::Macro(_) => 0,
        };

        let t = Instant::now();
        let result = chain.push(block).with_context(|| format!("block {number} was rejected"))?;
        t_push += t.elapsed();
        if result != PushResult::Extended {
            bail!("block {number} did not extend the chain ({result:?})");
        }
        blocks += 1;
        transactions += txs;
        progress.set(blocks);
        if args.crash_after == Some(blocks) {
            // A crash right after a commit, chosen by block count (the crash test).
            std::process::abort();
        }
    }
    let elapsed = started.elapsed();
    progress.finish();

    let head = chain.head();
    let genesis_hash = chain.state().genesis_hash;
    drop(chain);
    let db_size = file_size(&path);
    let epochs = policy.epoch_at(head.block_number);
    tracing::debug!(clone = secs(t_clone), produce = secs(t_produce), push = secs(t_push), "generate phases (seconds)");
    if args.json {
        print_json(&json!({
            "ok": true,
            "database": path.display().to_string(),
            "genesis_hash": genesis_hash.to_hex(),
            "policy": policy_name(&policy),
            "epochs": epochs,
            "start_head": start_head,
            "blocks": blocks,
            "transactions": transactions,
            "head_number": head.block_number,
            "head_hash": head.block_hash.to_hex(),
            "elapsed_secs": secs(elapsed),
            "blocks_per_sec": per_sec(blocks, elapsed),
            "transfers_per_sec": per_sec(transactions, elapsed),
            "db_size_bytes": db_size,
            "phase_secs": { "clone_state": secs(t_clone), "produce": secs(t_produce), "push": secs(t_push) },
        }))
    } else {
        println!(
            "generated {blocks} blocks with {transactions} transfers in {:.2} s ({:.1} blocks/s, {:.0} transfers/s)",
            secs(elapsed),
            per_sec(blocks, elapsed),
            per_sec(transactions, elapsed)
        );
        println!("epochs:    {epochs} ({} policy)", policy_name(&policy));
        println!("head:      #{} {}", head.block_number, head.block_hash);
        println!("database:  {} ({db_size} bytes)", path.display());
        println!(
            "phases:    clone state {:.2} s, produce {:.2} s, push {:.2} s",
            secs(t_clone),
            secs(t_produce),
            secs(t_push)
        );
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// verify

fn verify(args: &StoreArgs) -> Result<()> {
    let path = match existing_store(&args.data_dir) {
        Ok(p) => p,
        Err(e) => {
            if args.json {
                print_json(&crate::errors::failure_json(&e))?;
            }
            return Err(e);
        }
    };
    let mut progress = Progress::new("verify", 0, Mode::detect(args.json));
    let started = Instant::now();
    let result = crate::errors::run_catching_panics(|| {
        Ok(verify_store(&path, &mut |done, last| {
            progress.set_total(u64::from(last));
            progress.set(done);
        }))
    });
    let elapsed = started.elapsed();
    progress.finish();
    let result = match result {
        Ok(r) => r,
        Err(e) => {
            let e = e.context(format!("cannot verify {}", path.display()));
            if args.json {
                print_json(&crate::errors::failure_json(&e))?;
            }
            return Err(e);
        }
    };
    match result {
        Ok(r) => {
            if args.json {
                print_json(&json!({
                    "ok": true,
                    "database": path.display().to_string(),
                    "blocks": r.blocks,
                    "history_synced_blocks": r.history_synced_blocks,
                    "transactions": r.transactions,
                    "head_number": r.head_number,
                    "head_hash": r.head_hash.to_hex(),
                    "accounts": r.accounts,
                    "elapsed_secs": secs(elapsed),
                    "blocks_per_sec": per_sec(r.blocks, elapsed),
                }))
            } else {
                println!(
                    "verified {} blocks ({} via history) and {} transactions in {:.2} s ({:.1} blocks/s)",
                    r.blocks,
                    r.history_synced_blocks,
                    r.transactions,
                    secs(elapsed),
                    per_sec(r.blocks, elapsed)
                );
                println!("head:      #{} {}", r.head_number, r.head_hash);
                println!("accounts:  {}", r.accounts);
                Ok(())
            }
        }
        Err(VerifyError::BadBlock { number, hash, source }) => {
            let reason = crate::errors::error_line(std::iter::successors(
                Some(&source as &(dyn std::error::Error + 'static)),
                |e| e.source(),
            ));
            if args.json {
                print_json(&json!({ "ok": false, "bad_block": number, "hash": hash.to_hex(), "error": reason }))?;
            }
            Err(anyhow!("block {number} ({hash}) is invalid: {reason}"))
        }
        Err(e @ VerifyError::Pruned(_)) => {
            let e = anyhow::Error::new(e).context(format!("cannot verify {}", path.display()));
            if args.json {
                print_json(&crate::errors::failure_json(&e))?;
            }
            Err(e)
        }
        Err(VerifyError::Store(e)) => {
            let e = anyhow::Error::new(e).context(format!("cannot verify {}", path.display()));
            if args.json {
                print_json(&crate::errors::failure_json(&e))?;
            }
            Err(e)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// info

fn info(args: &StoreArgs) -> Result<()> {
    let path = existing_store(&args.data_dir)?;
    let chain = Blockchain::open_existing(&path, ChainOptions::default())
        .with_context(|| format!("cannot open the chain store {}", path.display()))?;
    let state = chain.state();
    let policy = *chain.policy();
    let head = chain.head();
    let epoch = policy.epoch_at(head.block_number);
    let db_size = file_size(&path);
    let macro_number = state.macro_head.block_number();
    let election_number = state.election_head.block_number();
    // History Macro Sync's answers kept until applied (a sync that died keeps them for the next).
    let (kept, kept_bytes) = chain.downloads().summary().context("cannot read the kept downloads")?;
    if args.json {
        return print_json(&json!({
            "database": path.display().to_string(),
            "network_id": chain.genesis().network_id,
            "genesis_hash": state.genesis_hash.to_hex(),
            "policy_name": policy_name(&policy),
            "policy": policy,
            "head": { "number": head.block_number, "hash": head.block_hash.to_hex() },
            "macro_head": { "number": macro_number, "hash": head.macro_hash.to_hex() },
            "election_head": { "number": election_number, "hash": head.election_hash.to_hex() },
            "epoch": epoch,
            "validators": state.validators.len(),
            "accounts": state.accounts.len(),
            "history_items_in_epoch": state.history.len(),
            "history_pruned_before": chain.history_pruned_before(),
            "db_size_bytes": db_size,
            "kept_downloads": { "count": kept, "bytes": kept_bytes },
        }));
    }
    println!("database:       {} ({db_size} bytes)", path.display());
    println!("network id:     {}", chain.genesis().network_id);
    println!("genesis:        {}", state.genesis_hash);
    println!(
        "policy:         {} ({} blocks/batch, {} batches/epoch, {} slots)",
        policy_name(&policy),
        policy.blocks_per_batch,
        policy.batches_per_epoch,
        policy.slots
    );
    println!("head:           #{} {}", head.block_number, head.block_hash);
    println!("macro head:     #{macro_number} {}", head.macro_hash);
    println!("election head:  #{election_number} {}", head.election_hash);
    println!("epoch:          {epoch}");
    println!("validators:     {}", state.validators.len());
    println!("accounts:       {}", state.accounts.len());
    println!(
        "history:        {} items in epoch {}, pruned before epoch {}",
        state.history.len(),
        state.history_epoch,
        chain.history_pruned_before()
    );
    println!("kept downloads: {kept} answers, {kept_bytes} bytes (History Macro Sync, not applied yet)");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use petrel_primitives::Policy;

    fn producer(seed: u64) -> Producer {
        Producer::new(ProducerConfig { seed, validators: 4, accounts: 8, ..ProducerConfig::default() })
    }

    #[test]
    fn producer_keys_are_checked() {
        let p = producer(1);
        let g = p.genesis(NETWORK_ID, GENESIS_TIMESTAMP, Policy::TEST);
        check_producer_keys(&p, &g.validator_set().unwrap(), "g").unwrap();
        let err = check_producer_keys(&producer(2), &g.validator_set().unwrap(), "g").unwrap_err();
        assert!(err.to_string().contains("4 of the 4 validators of g"), "{err}");
    }

    #[test]
    fn store_creation_is_atomic_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = store_path(dir.path());
        let p = producer(1);
        let g = p.genesis(NETWORK_ID, GENESIS_TIMESTAMP, Policy::TEST);
        // A leftover of an interrupted creation is replaced.
        fs::write(path.with_extension("redb.tmp"), b"garbage").unwrap();
        drop(open_or_create(&path, &g).unwrap());
        assert!(!path.with_extension("redb.tmp").exists());
        assert_eq!(Blockchain::open_existing(&path, ChainOptions::default()).unwrap().head().block_number, 0);
        let other = producer(2).genesis(NETWORK_ID, GENESIS_TIMESTAMP, Policy::TEST);
        let err = open_or_create(&path, &other).unwrap_err();
        assert!(err.to_string().contains("holds another network"), "{err}");
    }

    #[test]
    fn missing_store_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let err = existing_store(&dir.path().join("nope")).unwrap_err();
        assert!(err.to_string().contains("nope/chain.redb"), "{err}");
    }
}
