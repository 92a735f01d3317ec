//! End to end with real `petrel` processes over libp2p on loopback: a history node answers
//! another process's requests; pico and light node processes become established and follow new
//! blocks; `petrel devnet --exit-when-synced --json` exits 0 with every head matching.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::Value;

fn petrel() -> Command {
    Command::new(env!("CARGO_BIN_EXE_petrel"))
}

/// A child process killed on drop, with its stdout lines on a channel.
struct Node {
    child: Child,
    lines: Receiver<String>,
    addr: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    fn start(args: &[&str]) -> Node {
        let mut child = petrel()
            .args(["node", "--json", "--listen", "/ip4/127.0.0.1/tcp/0"])
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn petrel node");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let first = lines.recv_timeout(Duration::from_secs(30)).expect("the node prints its addresses");
        let v: Value = serde_json::from_str(&first).expect("JSON line");
        assert_eq!(v["event"], "listening", "{v}");
        let addr = v["addrs"][0].as_str().expect("an address").to_string();
        Node { child, lines, addr }
    }

    /// Waits for an event line of this kind.
    fn wait_event(&self, event: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| panic!("no {event:?} event within {within:?}"));
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && v["event"] == event
            {
                return v;
            }
        }
    }
}

fn query(peer: &str, genesis: &Path, what: &[&str]) -> Value {
    let out = petrel()
        .args(["query", "--peer", peer, "--genesis"])
        .arg(genesis)
        .args(what)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run petrel query");
    assert!(out.status.success(), "query {what:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON answer")
}

fn generate(dir: &Path, epochs: &str) {
    let out = petrel()
        .args([
            "chain",
            "generate",
            "--policy",
            "test",
            "--epochs",
            epochs,
            "--tx-per-block",
            "3",
            "--json",
            "--data-dir",
        ])
        .arg(dir)
        .output()
        .expect("generate");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_process_asks_a_node_process_for_its_head_and_a_block() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), "2");
    let node = Node::start(&["--mode", "history", "--min-peers", "0", "--data-dir", dir.path().to_str().unwrap()]);
    let genesis = dir.path().join("genesis.toml");
    let head = query(&node.addr, &genesis, &["head"]);
    assert_eq!(head["block_number"], 16);
    let hash = head["block_hash"].as_str().unwrap();
    let block = query(&node.addr, &genesis, &["block", hash, "--body"]);
    assert_eq!(block["number"], 16);
    assert_eq!(block["hash"], hash);
    let mc = query(&node.addr, &genesis, &["macro-chain"]);
    assert_eq!(mc["epochs"].as_array().unwrap().len(), 2);
}

#[test]
fn pico_and_light_processes_establish_and_follow_new_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("history");
    generate(&served, "3");
    let genesis = served.join("genesis.toml");
    let producer = Node::start(&[
        "--mode",
        "history",
        "--produce",
        "--block-interval-ms",
        "150",
        "--min-peers",
        "0",
        "--data-dir",
        served.to_str().unwrap(),
    ]);
    let mut followers = Vec::new();
    for mode in ["pico", "light"] {
        let data = dir.path().join(mode);
        let node = Node::start(&[
            "--mode",
            mode,
            "--min-peers",
            "1",
            "--peer",
            &producer.addr,
            "--genesis",
            genesis.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ]);
        node.wait_event("established", Duration::from_secs(60));
        followers.push(node);
    }
    // Both follow the producer: their heads pass a block produced after they were established.
    let target = query(&producer.addr, &genesis, &["head"])["block_number"].as_u64().unwrap() + 5;
    for node in &followers {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let head = query(&node.addr, &genesis, &["head"])["block_number"].as_u64().unwrap();
            if head >= target {
                break;
            }
            assert!(Instant::now() < deadline, "stuck at {head}, expected {target}");
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

#[test]
fn devnet_exit_when_synced_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = petrel()
        .args([
            "devnet",
            "--epochs",
            "2",
            "--tx-per-block",
            "2",
            "--block-interval-ms",
            "200",
            "--exit-when-synced",
            "--json",
        ])
        .args(["--timeout-secs", "120", "--data-dir"])
        .arg(dir.path())
        .env("RUST_LOG", "warn")
        .output()
        .expect("devnet");
    assert!(out.status.success(), "devnet failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON summary");
    assert_eq!(v["ok"], true, "{v}");
    let nodes = v["nodes"].as_array().unwrap();
    let modes: Vec<_> = nodes.iter().map(|n| n["mode"].as_str().unwrap()).collect();
    assert_eq!(modes, ["pico", "light", "history", "full"]);
    for n in nodes {
        assert_eq!(n["established"], true, "{n}");
        assert_eq!(n["head_matches_producer"], true, "{n}");
        assert!(n["requests_sent"].as_u64().unwrap() > 0);
    }
}
