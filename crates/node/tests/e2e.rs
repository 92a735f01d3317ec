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
    /// The `--metrics` address, if the node serves metrics.
    metrics: Option<String>,
    /// Its id as other nodes' statuses show it.
    id: String,
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
        let metrics = v["metrics"].as_str().map(str::to_string);
        let id = v["id"].as_str().expect("an id").to_string();
        Node { child, lines, addr, metrics, id }
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

/// Starts a history node producing a block every `interval_ms` on the store in `data`
/// (`--min-peers 0`), with `extra` arguments.
fn producer(data: &Path, interval_ms: &str, extra: &[&str]) -> Node {
    let mut args = vec!["--mode", "history", "--produce", "--block-interval-ms", interval_ms, "--min-peers", "0"];
    args.extend(["--data-dir", data.to_str().unwrap()]);
    args.extend_from_slice(extra);
    Node::start(&args)
}

/// Starts a node of `mode` that syncs from `peer` (`--min-peers 1`), with `extra` arguments.
fn follower(mode: &str, peer: &str, genesis: &Path, data: &Path, extra: &[&str]) -> Node {
    let mut args = vec!["--mode", mode, "--min-peers", "1", "--peer", peer, "--genesis"];
    args.push(genesis.to_str().unwrap());
    args.extend(["--data-dir", data.to_str().unwrap()]);
    args.extend_from_slice(extra);
    Node::start(&args)
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
    // `--json`: one line for scripts, the answer or the error.
    let json_query = |what: &[&str]| {
        petrel()
            .args(["query", "--json", "--peer", &node.addr, "--genesis"])
            .arg(&genesis)
            .args(what)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run petrel query --json")
    };
    let out = json_query(&["head"]);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert_eq!(serde_json::from_str::<Value>(&stdout).unwrap()["block_number"], 16);
    let out = json_query(&["block", &"00".repeat(32)]);
    assert!(!out.status.success());
    let line: Value = serde_json::from_slice(&out.stdout).expect("a JSON error line");
    assert_eq!(line["ok"], false);
    assert!(line["error"].as_str().unwrap().contains("no such block"), "{line}");
}

#[test]
fn pico_and_light_processes_establish_and_follow_new_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("history");
    generate(&served, "3");
    let genesis = served.join("genesis.toml");
    let producer = producer(&served, "150", &[]);
    let mut followers = Vec::new();
    for mode in ["pico", "light"] {
        let node = follower(mode, &producer.addr, &genesis, &dir.path().join(mode), &[]);
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
            "--zkp-handoffs",
            "2",
        ])
        .args(["--timeout-secs", "120", "--zkp-cache"])
        .arg(dir.path().join("zkp-cache"))
        .arg("--data-dir")
        .arg(dir.path().join("nodes"))
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
        if n["mode"] == "light" || n["mode"] == "pico" {
            // The producer proved the two built epochs in one segment; the light and pico nodes
            // verified it and adopted the proven election block (pico: not on trust).
            assert_eq!(n["proofs"]["segments_verified"], 1, "{n}");
            assert!(n["proofs"]["proven_epoch"].as_u64().unwrap() >= 2, "{n}");
            assert_eq!(n["fell_back"], false, "{n}");
        }
        if n["mode"] == "history" || n["mode"] == "full" {
            // Both start empty: their macro sync applies the two built epochs (or one more, if
            // the producer finished an epoch meanwhile).
            assert!(n["epochs_applied"].as_u64().unwrap() >= 2, "{n}");
            assert!(n["mb_per_sec"].as_f64().unwrap() > 0.0, "{n}");
        } else {
            assert!(n["epochs_applied"].is_null() && n["mb_per_sec"].is_null(), "{n}");
        }
    }
}

/// What a store holds, from `petrel chain verify` (which replays and re-checks it) and `info`.
fn committed_state(dir: &Path) -> (u64, bool) {
    let out = petrel().args(["chain", "verify", "--json", "--data-dir"]).arg(dir).output().expect("verify");
    assert!(out.status.success(), "the store must open and verify: {}", String::from_utf8_lossy(&out.stdout));
    let verify: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(verify["ok"], true, "{verify}");
    let out = petrel().args(["chain", "info", "--json", "--data-dir"]).arg(dir).output().expect("info");
    let info: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let at_macro = info["head"]["hash"] == info["macro_head"]["hash"];
    eprintln!("  kept downloads: {}", info["kept_downloads"]);
    (verify["head_number"].as_u64().expect("head number"), at_macro)
}

/// Generates a devnet-policy chain in `root/served` and serves it from a history node process.
fn serve_devnet_chain(root: &Path, epochs: &str, tx_per_block: &str) -> (std::path::PathBuf, Node) {
    let served = root.join("served");
    let out = petrel()
        .args(["chain", "generate", "--epochs", epochs, "--tx-per-block", tx_per_block, "--json", "--data-dir"])
        .arg(&served)
        .output()
        .expect("generate");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let server = Node::start(&["--mode", "history", "--min-peers", "0", "--data-dir", served.to_str().unwrap()]);
    (served, server)
}

/// Starts a node of `mode` on `data` that syncs from `server` (serving `served`) alone.
fn sync_from(server: &Node, served: &Path, data: &Path, mode: &str, extra: &[&str]) -> Node {
    let genesis = served.join("genesis.toml");
    let mut args = vec![
        "--mode",
        mode,
        "--min-peers",
        "1",
        "--peer",
        &server.addr,
        "--genesis",
        genesis.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    Node::start(&args)
}

fn bytes_received(event: &Value) -> u64 {
    event["status"]["traffic"]["bytes_received"].as_u64().expect("traffic")
}

#[test]
fn a_history_node_killed_many_times_resumes_from_its_last_commit() {
    use rand::{Rng, SeedableRng};

    // 40 epochs of 128 blocks x 50 transfers (37 MB of answers, about 250 history chunks of 145 KB):
    // a kill loses what was in transit and not yet kept, one to three answers, so the chain must
    // hold many answers for the bound below to mean something.
    let dir = tempfile::tempdir().unwrap();
    let (served, server) = serve_devnet_chain(dir.path(), "40", "50");
    let syncer = |data: &Path, extra: &[&str]| sync_from(&server, &served, data, "history", extra);

    // One clean sync: the reference byte count.
    let clean = syncer(&dir.path().join("clean"), &[]).wait_event("established", Duration::from_secs(300));
    let clean_bytes = bytes_received(&clean);
    let target = clean["status"]["head_number"].as_u64().unwrap();
    let mean_answer = clean_bytes / clean["status"]["traffic"]["requests_sent"].as_u64().unwrap().max(1);
    // What one restart may lose: the answers in transit or not yet kept when it died (at most the
    // chunk and batch-set windows, 12 + 4 answers); what was kept is taken back, not fetched.
    let window = 16 * mean_answer;

    // Abort the syncing process again and again at seeded points (a byte count between 5 % and
    // 8 % of a clean sync per run, so runs die mid-download and mid-apply alike).
    let data = dir.path().join("killed");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let (mut total, mut kills, mut last_head) = (0u64, 0u32, 0u64);
    let mut finished = None;
    while kills < 6 {
        let limit = rng.gen_range(clean_bytes * 5 / 100..clean_bytes * 8 / 100).to_string();
        let node = syncer(&data, &["--crash-after-bytes", &limit]);
        let deadline = Instant::now() + Duration::from_secs(300);
        let event = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = node.lines.recv_timeout(left).expect("the run ends in a crash or gets established");
            let v: Value = serde_json::from_str(&line).unwrap_or_default();
            if v["event"] == "crash" || v["event"] == "established" {
                break v;
            }
        };
        if event["event"] == "established" {
            finished = Some(event);
            break;
        }
        total += event["bytes_received"].as_u64().unwrap();
        kills += 1;
        let mut node = node;
        let status = node.child.wait().unwrap();
        assert!(!status.success(), "the run was meant to abort ({status})");
        let (head, at_macro) = committed_state(&data);
        assert!(at_macro, "history sync commits whole macro blocks; the store holds micro blocks past one");
        assert!(head >= last_head, "the committed head went back: {last_head} -> {head}");
        eprintln!("kill {kills}: at {} bytes, committed head {head}", event["bytes_received"]);
        last_head = head;
    }
    // The last run resumes from the last commit and finishes.
    let finished = match finished {
        Some(event) => event,
        None => syncer(&data, &[]).wait_event("established", Duration::from_secs(300)),
    };
    let last_run = bytes_received(&finished);
    total += last_run;
    assert_eq!(finished["status"]["head_number"].as_u64(), Some(target), "{finished}");
    assert_eq!(finished["status"]["head_hash"], clean["status"]["head_hash"]);
    assert!(kills >= 5, "only {kills} kills happened");
    // Nothing committed is downloaded again: the last run fetches the rest of the chain (blocks
    // carry the same load) plus at most a window, never the committed part.
    let rest = clean_bytes * (target - last_head) / target;
    assert!(last_run <= rest + window, "the last run fetched {last_run} bytes for {rest} bytes of history left");
    eprintln!(
        "{kills} kills: {total} bytes received in all, {:.3}x one clean sync ({clean_bytes})",
        total as f64 / clean_bytes as f64
    );
    // Each restart costs at most what was in transit when it died, and all of them together less
    // than a tenth of a clean sync.
    assert!(
        total <= clean_bytes + u64::from(kills) * window,
        "{kills} kills: {total} bytes against {clean_bytes} for one clean sync (window {window})"
    );
    assert!(total * 10 < clean_bytes * 11, "{kills} kills: {total} bytes, not below 1.1x {clean_bytes}");
    drop(server);
}

#[test]
fn a_full_node_syncs_by_history_and_keeps_only_recent_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let (served, server) = serve_devnet_chain(dir.path(), "6", "5");
    let data = dir.path().join("full");
    let full = sync_from(&server, &served, &data, "full", &["--max-epochs-stored", "2"]);
    let established = full.wait_event("established", Duration::from_secs(120));
    assert_eq!(established["status"]["head_number"], 768, "{established}");
    // The prune after the last adopted block runs right after it; give it the moment it takes.
    std::thread::sleep(Duration::from_millis(500));
    drop(full);
    drop(server);
    let info = |dir: &Path| -> Value {
        let out = petrel().args(["chain", "info", "--json", "--data-dir"]).arg(dir).output().expect("info");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let (full_info, served_info) = (info(&data), info(&served));
    assert_eq!(full_info["head"], served_info["head"]);
    // Head 768 ends epoch 6; with 2 epochs kept, the history of epochs 1 to 3 is gone.
    assert_eq!(full_info["history_pruned_before"], 4, "{full_info}");
    assert_eq!(served_info["history_pruned_before"], 0);
}

/// A full node does not serve history (it lacks the service), so a history node syncs its history
/// from history peers only, but follows the chain with both: with `--min-peers 2` it is
/// established only once the full node is one of its live peers.
#[test]
fn a_history_node_follows_full_nodes_live_but_takes_history_from_history_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let (served, server) = serve_devnet_chain(dir.path(), "4", "5");
    let full = sync_from(&server, &served, &dir.path().join("full"), "full", &[]);
    let full_ready = full.wait_event("established", Duration::from_secs(120));
    let genesis = served.join("genesis.toml");
    let data = dir.path().join("history");
    let history = Node::start(&[
        "--mode",
        "history",
        "--min-peers",
        "2",
        "--peer",
        &server.addr,
        "--peer",
        &full.addr,
        "--genesis",
        genesis.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    let established = history.wait_event("established", Duration::from_secs(120));
    assert_eq!(established["status"]["live_peers"], 2, "the full node is a live peer: {established}");
    assert_eq!(established["status"]["head_hash"], full_ready["status"]["head_hash"], "{established}");
    drop(history);
    drop(full);
    drop(server);
}

/// Two nodes on one data directory would share its key and files: the second is refused at
/// start with a clear error, and the first keeps running.
#[test]
fn a_second_node_on_the_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let genesis_dir = dir.path().join("chain");
    generate(&genesis_dir, "1");
    let genesis = genesis_dir.join("genesis.toml");
    let args = ["--mode", "light", "--min-peers", "0", "--genesis", genesis.to_str().unwrap(), "--data-dir"];
    let first = Node::start(&[&args[..], &[data.to_str().unwrap()]].concat());
    let second = petrel()
        .args(["node", "--json", "--listen", "/ip4/127.0.0.1/tcp/0"])
        .args(args)
        .arg(&data)
        .output()
        .expect("run petrel node");
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("another petrel process is using"), "{stderr}");
    drop(first);
}

/// A minimal HTTP GET on loopback: the body of the answer.
fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to the metrics address");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_string()
}

/// The value of the first sample of `name` (with any labels) in Prometheus text.
fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.split(['{', ' ']).next() == Some(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn a_node_serves_metrics_and_status_that_move() {
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("history");
    generate(&served, "2");
    let genesis = served.join("genesis.toml");
    let producer = producer(&served, "100", &[]);
    let light = follower("light", &producer.addr, &genesis, &dir.path().join("light"), &["--metrics", "127.0.0.1:0"]);
    let addr = light.metrics.clone().expect("the listening line names the metrics address");
    light.wait_event("established", Duration::from_secs(60));
    let first = http_get(&addr, "/metrics");
    for name in [
        "chain_head_number",
        "chain_macro_head_number",
        "sync_established",
        "sync_mode",
        "sync_live_peers",
        "net_peers_connected",
        "net_peers",
        "net_requests_sent",
        "net_bytes_received",
        "sync_verdicts",
    ] {
        assert!(sample(&first, name).is_some(), "no {name} in:\n{first}");
    }
    assert_eq!(sample(&first, "sync_established"), Some(1.0));
    // The producer keeps producing: the light node's head and its pushes move.
    let head = sample(&first, "chain_head_number").unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let later = loop {
        let now = http_get(&addr, "/metrics");
        if sample(&now, "chain_head_number").unwrap() >= head + 3.0 {
            break now;
        }
        assert!(Instant::now() < deadline, "the head stayed at {head}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(sample(&later, "chain_blocks_pushed").is_some_and(|n| n >= 1.0), "{later}");
    // `petrel status`: where the node is and what it waits on.
    let out = petrel().args(["status", "--json", "--metrics", &addr]).output().expect("run petrel status");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let status: Value = serde_json::from_slice(&out.stdout).expect("JSON status");
    assert_eq!(status["mode"], "light");
    assert_eq!(status["status"]["established"], true);
    assert_eq!(status["status"]["waiting_on"], "nothing (established)");
    let peers = status["status"]["peers"].as_array().expect("peers");
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0]["class"], "history");
    assert_eq!(peers[0]["last_verdict"], "good");
    // A node that is not running: a clear error.
    let out = petrel().args(["status", "--json", "--metrics", "127.0.0.1:1"]).output().unwrap();
    assert!(!out.status.success());
    let line: Value = serde_json::from_slice(&out.stdout).expect("a JSON error line");
    assert_eq!(line["ok"], false);
}

/// Peak resident memory of a process, in KiB (Linux `VmHWM`).
fn peak_rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The `/status` of a node, once `cond` holds (within 60 s).
fn status_when(node: &Node, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
    let addr = node.metrics.as_deref().expect("started with --metrics");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status: Value = serde_json::from_str(&http_get(addr, "/status")).expect("JSON status");
        if cond(&status["status"]) {
            return status["status"].clone();
        }
        assert!(Instant::now() < deadline, "{what}: {status}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn honest_nodes_of_every_type_withstand_the_adversary_catalogue() {
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("producer");
    generate(&served, "3");
    let genesis = served.join("genesis.toml");
    let mut producer = producer(&served, "200", &["--metrics", "127.0.0.1:0"]);
    let mut followers = Vec::new();
    for mode in ["history", "full", "light", "pico"] {
        let node = follower(mode, &producer.addr, &genesis, &dir.path().join(mode), &["--metrics", "127.0.0.1:0"]);
        node.wait_event("established", Duration::from_secs(60));
        followers.push((mode, node));
    }
    // Every behaviour of the catalogue, one identity each, against all five nodes.
    let mut adversary = petrel();
    adversary.args(["adversary", "--json", "--identities", "11", "--duration-secs", "20", "--genesis"]).arg(&genesis);
    for node in std::iter::once(&producer).chain(followers.iter().map(|(_, n)| n)) {
        adversary.args(["--peer", &node.addr]);
    }
    let out = adversary.env("RUST_LOG", "warn").output().expect("run petrel adversary");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let done: Value = serde_json::from_str(stdout.lines().last().expect("a summary")).expect("JSON summary");
    assert_eq!(done["event"], "done", "{stdout}");
    println!("adversary: {done}");
    let acted = done["identities"].as_array().unwrap();
    assert_eq!(acted.len(), 11);
    assert!(
        acted.iter().any(|i| i["answered"].as_u64() > Some(0))
            && acted.iter().any(|i| i["published"].as_u64() > Some(0)),
        "the adversary was asked things and published gossip: {done}"
    );

    // No crash; every honest node established on the producer's chain, still connected to the
    // producer (nobody banned an honest peer), in bounded memory.
    assert!(producer.child.try_wait().unwrap().is_none(), "the producer is running");
    for (mode, node) in &mut followers {
        assert!(node.child.try_wait().unwrap().is_none(), "{mode} crashed");
        let status = status_when(node, mode, |s| {
            s["established"] == true
                && s["peers"].as_array().is_some_and(|p| p.iter().any(|p| p["id"] == producer.id.as_str()))
        });
        let head = status["head_hash"].as_str().unwrap();
        let on_chain = query(&producer.addr, &genesis, &["block", head]);
        assert_eq!(on_chain["hash"], head, "{mode} is on the producer's chain");
        let rss = peak_rss_kb(node.child.id());
        assert!(rss < 256 * 1024, "{mode}: peak RSS {rss} KiB");
    }
    let status = status_when(&producer, "producer", |s| {
        let peers = s["peers"].as_array().cloned().unwrap_or_default();
        followers.iter().all(|(_, n)| peers.iter().any(|p| p["id"] == n.id.as_str()))
    });
    assert!(status["connected_peers"].as_u64().unwrap() >= 4);
    assert!(peak_rss_kb(producer.child.id()) < 256 * 1024);
}
