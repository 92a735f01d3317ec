//! End-to-end tests of the `petrel` binary: the real executable on temporary data directories,
//! with the small test policy (8 blocks per epoch).

use std::path::Path;
use std::process::{Command, Output, Stdio};

use petrel_blockchain::{Blockchain, ChainOptions};
use petrel_primitives::{Block, codec};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde_json::Value;

const BLOCKS: TableDefinition<'_, [u8; 32], &[u8]> = TableDefinition::new("blocks");
const MAIN_CHAIN: TableDefinition<'_, u32, [u8; 32]> = TableDefinition::new("main_chain");

fn petrel_cmd(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_petrel"));
    cmd.args(args).env_remove("RUST_LOG").stdin(Stdio::null());
    cmd
}

fn petrel(args: &[&str]) -> Output {
    petrel_cmd(args).output().expect("run petrel")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts a clean failure: exit code 1, one `error:` line, no panic. Returns stderr.
fn assert_fails(out: &Output) -> String {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stdout: {}\nstderr: {stderr}", text(&out.stdout));
    assert!(stderr.contains("error: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// Runs a command that must succeed with `--json` and returns the parsed object.
fn json(args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.push("--json");
    let out = petrel(&args);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{args:?} failed: {stderr}");
    assert!(stderr.is_empty(), "--json must not print anything else: {stderr}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&out.stdout)))
}

fn generate(dir: &Path, epochs: u32, tx: usize) -> Value {
    json(&[
        "chain",
        "generate",
        "--policy",
        "test",
        "--epochs",
        &epochs.to_string(),
        "--tx-per-block",
        &tx.to_string(),
        "--data-dir",
        dir.to_str().unwrap(),
    ])
}

fn verify(dir: &Path) -> Value {
    json(&["chain", "verify", "--data-dir", dir.to_str().unwrap()])
}

fn info(dir: &Path) -> Value {
    json(&["chain", "info", "--data-dir", dir.to_str().unwrap()])
}

#[test]
fn version_and_usage_errors() {
    let out = petrel(&["--version"]);
    assert!(out.status.success());
    assert!(text(&out.stdout).starts_with("petrel "), "{}", text(&out.stdout));
    // A missing required option is a usage error: exit code 2.
    assert_eq!(petrel(&["chain", "generate"]).status.code(), Some(2));
    assert_eq!(petrel(&["chain", "frobnicate"]).status.code(), Some(2));
}

#[test]
fn generate_then_verify_and_info_agree() {
    let dir = tempfile::tempdir().unwrap();
    let g = generate(dir.path(), 3, 5);
    assert_eq!(g["ok"], true);
    assert_eq!(g["head_number"], 24);
    assert_eq!(g["blocks"], 24);
    assert_eq!(g["epochs"], 3);
    assert!(g["transactions"].as_u64().unwrap() > 0);
    assert!(g["db_size_bytes"].as_u64().unwrap() > 0);
    assert!(dir.path().join("genesis.toml").is_file());

    let v = verify(dir.path());
    assert_eq!(v["ok"], true);
    assert_eq!(v["head_number"], 24);
    assert_eq!(v["head_hash"], g["head_hash"]);
    assert_eq!(v["blocks"], 24);
    assert_eq!(v["transactions"], g["transactions"]);

    let i = info(dir.path());
    assert_eq!(i["head"]["number"], 24);
    assert_eq!(i["head"]["hash"], g["head_hash"]);
    assert_eq!(i["election_head"]["number"], 24);
    assert_eq!(i["macro_head"]["number"], 24);
    assert_eq!(i["epoch"], 3);
    assert_eq!(i["network_id"], 1);
    assert_eq!(i["policy_name"], "test");
    assert_eq!(i["genesis_hash"], g["genesis_hash"]);
    assert_eq!(i["validators"], 16);
    assert_eq!(i["history_pruned_before"], 0);
}

#[test]
fn human_output_and_plain_progress_lines() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out =
        petrel(&["chain", "generate", "--policy", "test", "--epochs", "2", "--tx-per-block", "2", "--data-dir", d]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(stdout.contains("head:      #16 "), "{stdout}");
    // stderr is not a terminal here: progress comes as plain log lines, without colours.
    assert!(stderr.contains("generate: 16/16 blocks (100%)"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "{stderr}");

    let out = petrel(&["chain", "verify", "--data-dir", d]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("verified 16 blocks"), "{}", text(&out.stdout));
    let out = petrel(&["chain", "info", "--data-dir", d]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("head:           #16 "), "{}", text(&out.stdout));
}

#[test]
fn generate_continues_from_the_stored_head() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(generate(dir.path(), 2, 5)["head_number"], 16);
    let g = generate(dir.path(), 4, 5);
    assert_eq!(
        (g["start_head"].as_u64(), g["head_number"].as_u64(), g["blocks"].as_u64()),
        (Some(16), Some(32), Some(16))
    );
    let v = verify(dir.path());
    assert_eq!(v["head_number"], 32);

    // The producer is deterministic: a chain generated in one go is the same chain.
    let fresh = tempfile::tempdir().unwrap();
    assert_eq!(generate(fresh.path(), 4, 5)["head_hash"], g["head_hash"]);

    // Already there: nothing to do.
    let again = generate(dir.path(), 4, 5);
    assert_eq!((again["blocks"].as_u64(), again["head_number"].as_u64()), (Some(0), Some(32)));
}

#[test]
fn generate_refuses_a_store_of_another_network() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), 1, 1);
    let d = dir.path().to_str().unwrap();
    let out = petrel(&["chain", "generate", "--policy", "test", "--epochs", "2", "--seed", "9", "--data-dir", d]);
    let stderr = assert_fails(&out);
    assert!(stderr.contains("holds another network"), "{stderr}");
    assert_eq!(info(dir.path())["head"]["number"], 8, "the store is untouched");
}

#[test]
fn generate_with_a_genesis_file() {
    let first = tempfile::tempdir().unwrap();
    let g1 = generate(first.path(), 2, 3);
    let genesis = first.path().join("genesis.toml");
    let genesis = genesis.to_str().unwrap();

    // Same seed: the same chain.
    let second = tempfile::tempdir().unwrap();
    let d2 = second.path().to_str().unwrap();
    let g2 =
        json(&["chain", "generate", "--genesis", genesis, "--epochs", "2", "--tx-per-block", "3", "--data-dir", d2]);
    assert_eq!(g2["head_hash"], g1["head_hash"]);

    // Another seed does not hold the validators' keys.
    let third = tempfile::tempdir().unwrap();
    let d3 = third.path().to_str().unwrap();
    let out = petrel(&["chain", "generate", "--genesis", genesis, "--seed", "2", "--data-dir", d3]);
    let stderr = assert_fails(&out);
    assert!(stderr.contains("not keys derived from --seed 2"), "{stderr}");

    // --policy and --genesis exclude each other (usage error).
    let out = petrel(&["chain", "generate", "--genesis", genesis, "--policy", "test", "--data-dir", d3]);
    assert_eq!(out.status.code(), Some(2));

    // A missing genesis file is a clear error.
    let out = petrel(&["chain", "generate", "--genesis", "/nonexistent/genesis.toml", "--data-dir", d3]);
    let stderr = assert_fails(&out);
    assert!(stderr.contains("/nonexistent/genesis.toml"), "{stderr}");
}

#[test]
fn verify_and_info_on_a_missing_store() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("does-not-exist");
    let m = missing.to_str().unwrap();
    for cmd in ["verify", "info"] {
        let stderr = assert_fails(&petrel(&["chain", cmd, "--data-dir", m]));
        assert!(stderr.contains(m), "{stderr}");
    }
    let out = petrel(&["chain", "verify", "--data-dir", m, "--json"]);
    assert_fails(&out);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert!(v["error"].as_str().unwrap().contains(m));
}

fn corrupt_and_expect_failure(corrupt: impl FnOnce(&Path)) {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), 3, 20);
    let store = dir.path().join("chain.redb");
    corrupt(&store);
    let d = dir.path().to_str().unwrap();
    assert_fails(&petrel(&["chain", "verify", "--data-dir", d]));
    assert_fails(&petrel(&["chain", "info", "--data-dir", d]));
    let out = petrel(&["chain", "verify", "--data-dir", d, "--json"]);
    assert_fails(&out);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
}

#[test]
fn verify_reports_a_truncated_store() {
    corrupt_and_expect_failure(|store| {
        let len = std::fs::metadata(store).unwrap().len();
        std::fs::OpenOptions::new().write(true).open(store).unwrap().set_len(len / 2).unwrap();
    });
}

#[test]
fn verify_reports_overwritten_pages_without_panicking() {
    corrupt_and_expect_failure(|store| {
        let mut bytes = std::fs::read(store).unwrap();
        let n = bytes.len();
        bytes[n / 4..3 * n / 4].fill(0xa5);
        std::fs::write(store, bytes).unwrap();
    });
}

/// Rewrites main-chain block `number` with another timestamp. With `rekey` the altered block is
/// stored under its own (new) hash and the main chain points at it; otherwise it replaces the
/// record under the old hash. Returns the hash the main chain names.
fn tamper_with_block(store: &Path, number: u32, rekey: bool) -> String {
    let db = redb::Database::open(store).unwrap();
    let old_hash = db.begin_read().unwrap().open_table(MAIN_CHAIN).unwrap().get(number).unwrap().unwrap().value();
    let wtx = db.begin_write().unwrap();
    let named = {
        let mut blocks = wtx.open_table(BLOCKS).unwrap();
        let mut block: Block = codec::decode(blocks.get(old_hash).unwrap().unwrap().value(), 1 << 24).unwrap();
        match &mut block {
            Block::Micro(m) => m.header.timestamp += 1,
            Block::Macro(m) => m.header.timestamp += 1,
        }
        let encoded = codec::encode(&block).unwrap();
        if rekey {
            let new_hash = block.hash();
            blocks.insert(new_hash.0, encoded.as_slice()).unwrap();
            wtx.open_table(MAIN_CHAIN).unwrap().insert(number, new_hash.0).unwrap();
            new_hash.to_hex()
        } else {
            blocks.insert(old_hash, encoded.as_slice()).unwrap();
            petrel_primitives::Blake2bHash(old_hash).to_hex()
        }
    };
    wtx.commit().unwrap();
    named
}

#[test]
fn verify_names_the_bad_block() {
    for rekey in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        generate(dir.path(), 2, 5);
        let hash = tamper_with_block(&dir.path().join("chain.redb"), 5, rekey);
        let d = dir.path().to_str().unwrap();

        let stderr = assert_fails(&petrel(&["chain", "verify", "--data-dir", d]));
        eprintln!("rekey={rekey}: {}", stderr.lines().last().unwrap_or_default());
        assert!(stderr.contains(&format!("error: block 5 ({hash}) is invalid: ")), "{stderr}");

        let out = petrel(&["chain", "verify", "--data-dir", d, "--json"]);
        assert_fails(&out);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["ok"], false);
        assert_eq!(v["bad_block"], 5);
        assert_eq!(v["hash"], hash.as_str());
        assert!(!v["error"].as_str().unwrap().is_empty());
    }
}

/// The head of the store, or `None` if generate was killed before the store existed.
fn stored_head(store: &Path) -> Option<u32> {
    if !store.exists() {
        return None;
    }
    let chain = Blockchain::open_existing(store, ChainOptions::default())
        .unwrap_or_else(|e| panic!("the store must open after a kill: {e}"));
    Some(chain.head().block_number)
}

#[test]
fn crash_during_generate_never_loses_committed_blocks() {
    // Fixed seed; kill points chosen by committed block count (the hidden `--crash-after N` aborts
    // the process right after its N-th commit), so every run crashes at the same blocks.
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let store = dir.path().join("chain.redb");
    let args = ["chain", "generate", "--policy", "test", "--epochs", "40", "--tx-per-block", "20", "--data-dir", d];
    let mut head = 0u32;
    for round in 0..15 {
        let n: u32 = rng.gen_range(1..=30);
        let crash_after = n.to_string();
        let mut with_crash = args.to_vec();
        with_crash.extend(["--crash-after", &crash_after]);
        let status = petrel_cmd(&with_crash).stdout(Stdio::null()).stderr(Stdio::null()).status().unwrap();
        assert!(!status.success(), "round {round}: the generator was meant to crash ({status})");
        let now = stored_head(&store).expect("the store exists after the first commit");
        eprintln!("round {round}: crashed after {n} blocks, head {head} -> {now}");
        assert_eq!(now, head + n, "round {round}: every committed block is kept, and no other");
        head = now;
    }
    let g = json(&args);
    assert_eq!(g["head_number"], 320);
    assert_eq!(g["start_head"].as_u64(), Some(u64::from(head)));
    let v = verify(dir.path());
    assert_eq!((v["ok"].as_bool(), v["head_number"].as_u64()), (Some(true), Some(320)));
}
