//! Scenario bench `history-rss`: the peak memory of a history and a full node that sync a generated
//! chain from genesis, each as its own process, from one serving `petrel node` over loopback.
//!
//! For each chain length (50 and 200 epochs of 128 blocks x 50 transfers; `--rss-epochs A,B` picks
//! others) it generates the chain once into `target/bench-chains/` (kept between runs), serves it,
//! starts a fresh `--mode history` and a fresh `--mode full` node that sync from it, and samples
//! their peak resident set (`VmHWM` in `/proc/PID/status`, Linux) until they report established.
//! It fails if a syncing node exceeds [`RSS_BUDGET_KB`]. Then it syncs a history node of the
//! shortest chain from 1, 2 and 4 serving processes (copies of the store), each its own process,
//! the headline of the history sync bench without the in-process shortcut.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use crate::{cargo_cmd, run, workspace_root};

/// The budget for a syncing node's peak RSS, whatever the chain length.
const RSS_BUDGET_KB: u64 = 256 * 1024;

const DEFAULT_EPOCHS: &[u32] = &[50, 200];

/// A `petrel node --json` process, killed on drop.
struct Node {
    child: Child,
    lines: Receiver<String>,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    fn start(petrel: &Path, args: &[&str]) -> Result<(Node, String), String> {
        let mut child = Command::new(petrel)
            .args(["node", "--json", "--listen", "/ip4/127.0.0.1/tcp/0"])
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("could not start {}: {e}", petrel.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let node = Node { child, lines };
        let first = node.lines.recv_timeout(Duration::from_secs(60)).map_err(|_| "the node printed no address")?;
        let addr = string_field(&first, "addrs\":[").ok_or_else(|| format!("no address in {first}"))?;
        Ok((node, addr))
    }

    /// Peak resident set in KiB so far.
    fn peak_kb(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }
}

/// The string value after `key` in a JSON line (e.g. `addrs":[` → its first element).
fn string_field(line: &str, key: &str) -> Option<String> {
    let rest = &line[line.find(key)? + key.len()..];
    let rest = rest.strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_owned())
}

/// The number after `key` in a JSON line.
fn number_field(line: &str, key: &str) -> Option<u64> {
    let rest = &line[line.find(key)? + key.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

struct Measured {
    seconds: f64,
    bytes: u64,
    node_kb: u64,
    server_kb: u64,
}

/// Syncs a fresh `mode` node from one serving process per directory of `served` (copies of one
/// chain store).
fn sync_once(petrel: &Path, served: &[PathBuf], mode: &str, scratch: &Path) -> Result<Measured, String> {
    let _ = std::fs::remove_dir_all(scratch);
    let mut servers = Vec::new();
    let mut args: Vec<String> = vec!["--mode".into(), mode.into(), "--min-peers".into(), "1".into()];
    for dir in served {
        let dir_str = dir.to_str().ok_or("path")?;
        let (server, addr) = Node::start(petrel, &["--mode", "history", "--min-peers", "0", "--data-dir", dir_str])?;
        servers.push(server);
        args.extend(["--peer".into(), addr]);
    }
    let genesis = served.first().ok_or("no server")?.join("genesis.toml");
    args.extend(["--genesis".into(), genesis.to_str().ok_or("path")?.into()]);
    args.extend(["--data-dir".into(), scratch.to_str().ok_or("path")?.into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let start = Instant::now();
    let (node, _) = Node::start(petrel, &args)?;
    let deadline = start + Duration::from_secs(1800);
    let mut peak = 0;
    loop {
        peak = peak.max(node.peak_kb().unwrap_or(0));
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("the {mode} node did not establish within 30 minutes"));
        }
        match node.lines.recv_timeout(left.min(Duration::from_millis(200))) {
            Ok(line) if line.contains("\"event\":\"established\"") => {
                let seconds = start.elapsed().as_secs_f64();
                let bytes = number_field(&line, "\"bytes_received\":").unwrap_or(0);
                let node_kb = peak.max(node.peak_kb().unwrap_or(0));
                let server_kb = servers.iter().filter_map(Node::peak_kb).max().unwrap_or(0);
                let _ = std::fs::remove_dir_all(scratch);
                return Ok(Measured { seconds, bytes, node_kb, server_kb });
            }
            Ok(_) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Err(format!("the {mode} node exited before it was established"));
            }
        }
    }
}

fn epochs_from(extra: &[String]) -> Result<Vec<u32>, String> {
    let Some(i) = extra.iter().position(|a| a == "--rss-epochs") else { return Ok(DEFAULT_EPOCHS.to_vec()) };
    let list = extra.get(i + 1).ok_or("--rss-epochs needs a list, e.g. 50,200")?;
    list.split(',').map(|s| s.trim().parse().map_err(|_| format!("not a number of epochs: {s}"))).collect()
}

/// The scenario (see the module documentation).
pub(crate) fn history_rss(extra: &[String]) -> Result<(), String> {
    if !Path::new("/proc/self/status").exists() {
        println!("history-rss: needs /proc (Linux); skipped");
        return Ok(());
    }
    let epochs = epochs_from(extra)?;
    run(&mut cargo_cmd(["build", "--release", "--locked", "-p", "petrel-node"]))?;
    let root = workspace_root();
    let petrel = root.join("target/release/petrel");
    let chains = root.join("target/bench-chains");
    let mut rows = Vec::new();
    let mut over = Vec::new();
    for e in epochs {
        let served: PathBuf = chains.join(format!("devnet-{e}-epochs-50-tx"));
        if !served.join("chain.redb").exists() || !served.join(".complete").exists() {
            println!("history-rss: generating {e} epochs x 128 blocks x 50 transfers into {}", served.display());
            let epochs = e.to_string();
            run(Command::new(&petrel)
                .args(["chain", "generate", "--epochs", &epochs, "--tx-per-block", "50", "--data-dir"])
                .arg(&served)
                .stdout(Stdio::null()))?;
            std::fs::write(served.join(".complete"), b"").map_err(|err| err.to_string())?;
        }
        for mode in ["history", "full"] {
            let m = sync_once(&petrel, std::slice::from_ref(&served), mode, &chains.join(format!("sync-{mode}")))?;
            if m.node_kb > RSS_BUDGET_KB {
                over.push(format!("{mode} at {e} epochs: {} MB", m.node_kb / 1024));
            }
            rows.push((e, mode, m));
        }
    }
    // The headline of the history sync bench with every serving peer in its own process: the
    // shortest chain from 1, 2 and 4 servers (copies of the store, each with its own key).
    let mut peers_rows = Vec::new();
    if let Some(e) = rows.first().map(|(e, ..)| *e) {
        let served = chains.join(format!("devnet-{e}-epochs-50-tx"));
        let mut dirs = vec![served.clone()];
        for k in 1..4 {
            let copy = chains.join(format!("devnet-{e}-epochs-50-tx-copy{k}"));
            if !copy.join("chain.redb").exists() {
                std::fs::create_dir_all(&copy).map_err(|err| err.to_string())?;
                for name in ["chain.redb", "genesis.toml"] {
                    std::fs::copy(served.join(name), copy.join(name)).map_err(|err| err.to_string())?;
                }
            }
            dirs.push(copy);
        }
        for n in [1, 2, 4] {
            let m = sync_once(&petrel, &dirs[..n], "history", &chains.join("sync-peers"))?;
            peers_rows.push((e, n, m));
        }
    }
    println!("\nepochs  mode     established  received     node peak RSS  server peak RSS");
    for (e, mode, m) in &rows {
        println!(
            "{e:>6}  {mode:<7}  {:>9.2} s  {:>8.1} MB  {:>10} MB  {:>12} MB",
            m.seconds,
            m.bytes as f64 / 1e6,
            m.node_kb / 1024,
            m.server_kb / 1024
        );
    }
    println!("\nepochs  serving processes  history node established  received");
    for (e, n, m) in &peers_rows {
        println!("{e:>6}  {n:>17}  {:>22.2} s  {:>8.1} MB", m.seconds, m.bytes as f64 / 1e6);
    }
    if over.is_empty() {
        Ok(())
    } else {
        Err(format!("over the {} MB budget: {}", RSS_BUDGET_KB / 1024, over.join("; ")))
    }
}
