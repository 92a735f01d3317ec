//! `petrel node --metrics ADDR`: Prometheus text on `GET /metrics` and the node's status as JSON on
//! `GET /status`, from one small HTTP/1.1 server; and `petrel status`, its client. Metric names
//! are in docs/metrics.md (dots become underscores in the Prometheus text).
//!
//! The server is bounded: at most [`MAX_CONNECTIONS`] connections at once (more are closed at
//! once), a request head of at most [`MAX_REQUEST_HEAD`] bytes read within [`IO_TIMEOUT`], one
//! request per connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use crate::node::{Mode, NodeStatus};

/// Connections served at once.
pub(crate) const MAX_CONNECTIONS: usize = 16;
/// Largest request head read.
pub(crate) const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// Time to read a request and write its answer.
pub(crate) const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest `/status` answer `petrel status` reads.
const MAX_STATUS_BYTES: usize = 4 << 20;

/// Installs the process-wide metrics recorder (once; a second call fails).
pub(crate) fn install() -> Result<PrometheusHandle> {
    PrometheusBuilder::new().install_recorder().map_err(|e| anyhow!("cannot install the metrics recorder: {e}"))
}

/// Sets the gauges that mirror the node's status (called on every status update).
pub(crate) fn record_status(mode: Mode, s: &NodeStatus) {
    metrics::gauge!("chain.head.number").set(f64::from(s.head_number));
    metrics::gauge!("chain.macro_head.number").set(f64::from(s.macro_head_number));
    metrics::gauge!("sync.established").set(if s.established { 1.0 } else { 0.0 });
    metrics::gauge!("sync.mode", "mode" => mode.name()).set(1.0);
    metrics::gauge!("sync.fell_back").set(if s.fell_back { 1.0 } else { 0.0 });
    metrics::gauge!("sync.macro.peers").set(s.macro_sync_peers as f64);
    metrics::gauge!("sync.live.peers").set(s.live_peers as f64);
    if let Some(target) = s.sync_target_number {
        metrics::gauge!("sync.target.number").set(f64::from(target));
    }
    metrics::gauge!("net.peers.connected").set(s.connected_peers as f64);
    for class in ["history", "full", "macro", "light"] {
        let n = s.peers.iter().filter(|p| p.class == class).count();
        metrics::gauge!("net.peers", "class" => class).set(n as f64);
    }
    if let Some(p) = &s.proofs {
        metrics::counter!("sync.proofs.verified").absolute(p.segments_verified);
    }
}

/// The `/status` document: the mode and the node's status.
fn status_json(mode: Mode, s: &NodeStatus) -> serde_json::Value {
    serde_json::json!({ "mode": mode.name(), "status": s })
}

/// Binds `addr` and serves `/metrics` and `/status` until the runtime stops. Returns the bound
/// address (port 0 picks a free one).
pub(crate) async fn serve(
    addr: SocketAddr,
    handle: PrometheusHandle,
    mode: Mode,
    status: watch::Receiver<NodeStatus>,
) -> Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await.with_context(|| format!("cannot listen for metrics on {addr}"))?;
    let bound = listener.local_addr()?;
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                // Out of descriptors or the like: back off rather than spin.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            // Over the limit: closed at once (dropped).
            let Ok(permit) = slots.clone().try_acquire_owned() else { continue };
            let (handle, status) = (handle.clone(), status.clone());
            tokio::spawn(async move {
                let _permit = permit;
                let _ = tokio::time::timeout(IO_TIMEOUT, answer(stream, &handle, mode, &status)).await;
            });
        }
    });
    Ok(bound)
}

/// Reads one request head and answers it.
async fn answer(
    mut stream: TcpStream,
    handle: &PrometheusHandle,
    mode: Mode,
    status: &watch::Receiver<NodeStatus>,
) -> std::io::Result<()> {
    // A client must send its request head within a second (a slow one does not hold a slot).
    let head = tokio::time::timeout(Duration::from_secs(1), read_head(&mut stream))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "slow request head"))??;
    let current = status.borrow().clone();
    let (code, content_type, body) = route(&head, || handle.render(), mode, &current);
    let response = format!(
        "HTTP/1.1 {code}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

/// Reads up to the end of the request head (`\r\n\r\n`), at most [`MAX_REQUEST_HEAD`] bytes.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        if buf.len() >= MAX_REQUEST_HEAD {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "request head too large"));
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n.min(MAX_REQUEST_HEAD - buf.len())]);
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// The answer to a request head: status line, content type, body.
fn route(
    head: &str,
    metrics: impl FnOnce() -> String,
    mode: Mode,
    status: &NodeStatus,
) -> (&'static str, &'static str, String) {
    let mut parts = head.lines().next().unwrap_or_default().split_whitespace();
    let (method, path) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    match (method, path) {
        ("GET", "/metrics") => ("200 OK", "text/plain; version=0.0.4", metrics()),
        ("GET", "/status") => ("200 OK", "application/json", status_json(mode, status).to_string()),
        ("GET", _) => ("404 Not Found", "text/plain", "not found: try /metrics or /status\n".into()),
        _ => ("405 Method Not Allowed", "text/plain", "only GET\n".into()),
    }
}

/// `petrel status`: asks a node's metrics address for `/status`.
pub(crate) fn run_status(args: &crate::cli::StatusArgs) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let result = runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(args.timeout_secs), get(&args.metrics, "/status"))
            .await
            .map_err(|_| anyhow!("no answer from {} within {} s", args.metrics, args.timeout_secs))?
    });
    let answer = result.and_then(|body| {
        serde_json::from_str::<serde_json::Value>(&body).context("the node's /status answer is not JSON")
    });
    crate::errors::print_answer(args.json, answer)
}

/// A minimal HTTP/1.1 GET: the body of a 200 answer, at most [`MAX_STATUS_BYTES`].
pub(crate) async fn get(addr: &str, path: &str) -> Result<String> {
    let mut stream = TcpStream::connect(addr).await.with_context(|| format!("cannot connect to {addr}"))?;
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes()).await?;
    let mut bytes = Vec::new();
    (&mut stream).take(MAX_STATUS_BYTES as u64 + 1).read_to_end(&mut bytes).await?;
    if bytes.len() > MAX_STATUS_BYTES {
        bail!("the answer from {addr} is over {MAX_STATUS_BYTES} bytes");
    }
    let text = String::from_utf8(bytes).context("the answer is not UTF-8")?;
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| anyhow!("not an HTTP answer from {addr}"))?;
    let status_line = head.lines().next().unwrap_or_default();
    if !status_line.contains(" 200 ") {
        bail!("{addr}{path} answered {status_line:?}");
    }
    Ok(body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_metrics_status_and_errors() {
        let s = NodeStatus { head_number: 7, ..NodeStatus::default() };
        let (code, kind, body) = route("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", || "m 1\n".into(), Mode::Light, &s);
        assert_eq!((code, kind, body.as_str()), ("200 OK", "text/plain; version=0.0.4", "m 1\n"));
        let (code, _, body) = route("GET /status HTTP/1.1\r\n\r\n", String::new, Mode::Light, &s);
        assert_eq!(code, "200 OK");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!((v["mode"].as_str(), v["status"]["head_number"].as_u64()), (Some("light"), Some(7)));
        assert_eq!(route("GET /x HTTP/1.1\r\n\r\n", String::new, Mode::Light, &s).0, "404 Not Found");
        assert_eq!(route("POST /status HTTP/1.1\r\n\r\n", String::new, Mode::Light, &s).0, "405 Method Not Allowed");
        assert_eq!(route("", String::new, Mode::Light, &s).0, "405 Method Not Allowed");
    }
}
