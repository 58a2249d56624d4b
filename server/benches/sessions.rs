//! `cargo bench -p server --bench sessions`: sessions on the `process` driver, measured over
//! HTTP and websockets against the real `flint serve` (release build, release guest agent,
//! the test image of `images/test.toml`; the default image for the shared browser).
//!
//! Prints a table to stdout, progress to stderr, and writes `target/bench/sessions.json`
//! (`{"metrics": [{"name", "unit", "p50", "p95", "p99", "n"} | {"name", "unit", "value"}]}`).
//! An argument that is not a flag runs only the metrics whose name contains it.

#[path = "sessions/browser.rs"]
mod browser;
#[path = "../tests/support/client.rs"]
mod client;
#[path = "sessions/drivers.rs"]
mod drivers;
#[path = "sessions/mcp.rs"]
mod mcp;
#[path = "sessions/net.rs"]
mod net;
#[path = "sessions/proxy.rs"]
mod proxy;
#[path = "../../guest-agent/benches/report/mod.rs"]
mod report;
#[path = "sessions/server.rs"]
mod server;
#[path = "../tests/support/uplink.rs"]
#[allow(dead_code)]
mod uplink;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use proto::api::TerminalServerMessage;
use report::Metric;
use server::{Server, agent_bin, image_cache};
use tokio_tungstenite::tungstenite::Message;

/// Sequential creates timed by `session.create_to_prompt.D`.
const CREATES: usize = 20;
/// Sessions created at once by `session.concurrent10_wall.D`.
const CONCURRENT: usize = 10;
/// How long the concurrent sessions sit idle before their memory is read.
const IDLE: Duration = Duration::from_secs(2);
/// Keystrokes timed by `ws.keystroke_rtt`.
const KEYS: usize = 500;
/// Keys typed between two unmeasured Ctrl-U that clear the line.
const KEYS_PER_LINE: usize = 100;
/// `run_command "true"` calls timed by `mcp.run_command`.
const MCP_CALLS: usize = 200;
/// Quiet time after which a terminal's output counts as settled.
const SETTLE: Duration = Duration::from_millis(50);
/// Deadline of any single wait on the server.
const WAIT: Duration = Duration::from_secs(30);
/// What every session is created with: no network, so that the sandbox's own start is
/// measured (`session.create_to_prompt_net.process` adds the network).
const SESSION_BODY: &str = r#"{"image":"test","memory_mb":512,"network":false}"#;
/// The same with networking.
const SESSION_BODY_NET: &str = r#"{"image":"test","memory_mb":512}"#;

fn main() -> Result<()> {
    report::main("sessions", |filter| async move { run(filter.as_deref()).await })
}

async fn run(filter: Option<&str>) -> Result<Vec<Metric>> {
    let wanted = |name: &str| filter.is_none_or(|f| name.contains(f));
    let agent = agent_bin()?;
    let cache = image_cache().await?;
    // Sandboxes egress through a namespace built here: nothing the bench sends leaves the
    // machine (MACHINE.md, "Network").
    let uplink = tokio::task::spawn_blocking(uplink::Uplink::build).await?;
    let mut metrics = Vec::new();
    for driver in ["process", "gvisor"] {
        metrics.extend(drivers::measure(&cache, &agent, &uplink, driver, &wanted).await?);
    }
    let browser_metrics = ["browser.fps", "browser.input_to_frame"];
    if browser_metrics.iter().any(|m| wanted(m)) {
        // Its Chromium (about 100 s to build the first time).
        server::build_image("default").await?;
    }
    let args = ["--driver", "process", "--pool-size", "0"];
    let server = Server::start(&cache, &agent, &uplink, &args).await?;
    let result = Box::pin(measure(&server, &uplink, &wanted)).await;
    // Sandboxes outlive their server: whatever a failed run left behind is deleted first.
    let cleanup = server.delete_leftovers().await;
    server.stop().await;
    metrics.extend(result?);
    cleanup?;
    Ok(metrics)
}

async fn measure(
    server: &Server,
    uplink: &uplink::Uplink,
    wanted: &dyn Fn(&str) -> bool,
) -> Result<Vec<Metric>> {
    let mut metrics = Vec::new();
    if wanted("session.create_to_prompt_net.process") {
        eprintln!("bench: create_to_prompt_net ({CREATES} sequential creates, with network)");
        let mut samples = Vec::with_capacity(CREATES);
        for _ in 0..CREATES {
            let (id, elapsed) = create_to_prompt_with(server, SESSION_BODY_NET).await?;
            samples.push(elapsed);
            server.delete_session(&id).await?;
        }
        metrics.push(Metric::ms("session.create_to_prompt_net.process", &samples));
    }
    if wanted("net.egress_throughput") || wanted("net.host_throughput") {
        metrics.extend(net::throughput(server, uplink, wanted).await?);
    }
    let proxy_metrics = [
        "proxy.rps",
        "proxy.direct_rps",
        "proxy.latency",
        "proxy.direct_latency",
        "proxy.stream_throughput",
        "proxy.direct_stream_throughput",
    ];
    if proxy_metrics.iter().any(|m| wanted(m)) {
        metrics.extend(proxy::proxy(server, uplink, wanted).await?);
    }
    if wanted("ws.keystroke_rtt") {
        eprintln!("bench: keystroke_rtt ({KEYS} keys)");
        let samples = keystroke_rtt(server).await?;
        metrics.push(Metric::ms("ws.keystroke_rtt", &samples));
    }
    if wanted("browser.fps") || wanted("browser.input_to_frame") {
        eprintln!("bench: the shared browser (browser.fps, browser.input_to_frame)");
        metrics.extend(browser::measure(server, wanted).await?);
    }
    if wanted("mcp.run_command") {
        eprintln!("bench: mcp.run_command ({MCP_CALLS} calls of run_command \"true\")");
        let samples = mcp::run_command(server).await?;
        metrics.push(Metric::ms("mcp.run_command", &samples));
    }
    Ok(metrics)
}

/// Creates a session, attaches to its first shell (made if there is none, as the web app
/// does); the time until the shell's prompt.
async fn create_to_prompt(server: &Server) -> Result<(String, Duration)> {
    create_to_prompt_with(server, SESSION_BODY).await
}

/// The same, creating the session with `body`.
async fn create_to_prompt_with(server: &Server, body: &str) -> Result<(String, Duration)> {
    let start = Instant::now();
    let id = server.create_session_with(body).await?;
    let mut ws = server.open_first_shell(&id).await?;
    let text = read_until_prompt(&mut ws).await?;
    let elapsed = start.elapsed();
    eprintln!("bench:   {elapsed:.0?} to {:?}", tail(&text, 40));
    Ok((id, elapsed))
}

/// Creates `count` sessions at once; their ids and the time until all are running.
async fn create_concurrently(server: &Server, count: usize) -> Result<(Vec<String>, Duration)> {
    let start = Instant::now();
    let creates: Vec<_> = (0..count)
        .map(|_| {
            let server = server.clone();
            tokio::spawn(async move { server.create_session().await })
        })
        .collect();
    let mut ids = Vec::with_capacity(count);
    let mut failure = None;
    for create in creates {
        match create.await.context("create task") {
            Ok(Ok(id)) => ids.push(id),
            Ok(Err(e)) | Err(e) => failure = failure.or(Some(e)),
        }
    }
    let wall = start.elapsed();
    if let Some(e) = failure {
        return Err(e);
    }
    eprintln!("bench:   {count} sessions running after {wall:.0?}");
    Ok((ids, wall))
}

async fn keystroke_rtt(server: &Server) -> Result<Vec<Duration>> {
    let id = server.create_session().await?;
    let mut ws = server.open_terminal(&id).await?;
    read_until_prompt(&mut ws).await?;
    let mut samples = Vec::with_capacity(KEYS);
    for i in 0..KEYS {
        if i > 0 && i % KEYS_PER_LINE == 0 {
            send(&mut ws, b"\x15").await?;
            settle(&mut ws).await?;
        }
        let key = b'a' + (i % 26) as u8;
        let start = Instant::now();
        send(&mut ws, &[key]).await?;
        let echoed = async {
            loop {
                if output(&mut ws).await?.contains(&key) {
                    return anyhow::Ok(());
                }
            }
        };
        tokio::time::timeout(WAIT, echoed)
            .await
            .with_context(|| format!("no echo of key {i} within {WAIT:?}"))??;
        samples.push(start.elapsed());
    }
    drop(ws);
    server.delete_session(&id).await?;
    Ok(samples)
}

/// A terminal websocket.
type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn send(ws: &mut Ws, bytes: &[u8]) -> Result<()> {
    ws.send(Message::Binary(Bytes::copy_from_slice(bytes))).await.context("sending keys")
}

/// The bytes of the next output message (after its offset), skipping control messages.
async fn output(ws: &mut Ws) -> Result<Bytes> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Binary(bytes))) => {
                ensure!(
                    bytes.len() >= proto::api::OUTPUT_OFFSET_BYTES,
                    "an output message of {} bytes",
                    bytes.len()
                );
                return Ok(bytes.slice(proto::api::OUTPUT_OFFSET_BYTES..));
            }
            Some(Ok(Message::Text(text))) => {
                match serde_json::from_str(&text).with_context(|| format!("message {text}"))? {
                    TerminalServerMessage::Attached { .. }
                    | TerminalServerMessage::Resized { .. } => {}
                    TerminalServerMessage::Missed { from, to } => {
                        bail!("missed output {from}..{to}")
                    }
                    TerminalServerMessage::Error { message } => bail!("terminal error: {message}"),
                    TerminalServerMessage::Exit { code, signal } => {
                        bail!("the shell exited: code {code:?}, signal {signal:?}")
                    }
                }
            }
            Some(Ok(Message::Close(close))) => bail!("the websocket closed: {close:?}"),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e).context("reading the websocket"),
            None => bail!("the websocket ended"),
        }
    }
}

/// Reads output until it ends in a shell prompt (`# ` as root, `$ ` otherwise, then the
/// images' invisible input-start mark, OSC 133 `B`); returns it.
async fn read_until_prompt(ws: &mut Ws) -> Result<String> {
    let mut text = String::new();
    let read = async {
        loop {
            let shown = text.trim_end_matches("\x1b]133;B\x07");
            if shown.ends_with("# ") || shown.ends_with("$ ") {
                break;
            }
            text.push_str(&String::from_utf8_lossy(&output(ws).await?));
        }
        anyhow::Ok(())
    };
    match tokio::time::timeout(WAIT, read).await {
        Ok(result) => result.with_context(|| format!("waiting for a prompt; saw {text:?}"))?,
        Err(_) => bail!("no prompt within {WAIT:?}; saw {text:?}"),
    }
    Ok(text)
}

/// Reads output until none came for [`SETTLE`].
async fn settle(ws: &mut Ws) -> Result<()> {
    let deadline = Instant::now() + WAIT;
    loop {
        ensure!(Instant::now() < deadline, "output did not settle within {WAIT:?}");
        match tokio::time::timeout(SETTLE, output(ws)).await {
            Err(_) => return Ok(()),
            Ok(result) => drop(result?),
        }
    }
}

/// The last `chars` characters of `text`.
fn tail(text: &str, chars: usize) -> &str {
    let skip = text.chars().count().saturating_sub(chars);
    text.char_indices().nth(skip).map_or("", |(at, _)| &text[at..])
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// The names of the processes of a session's cgroup and the sum of their resident memory in
/// bytes.
fn session_rss(id: &str) -> Result<(Vec<String>, u64)> {
    let procs = session_procs_file(id)?;
    let text =
        std::fs::read_to_string(&procs).with_context(|| format!("reading {}", procs.display()))?;
    let pids: Vec<&str> = text.split_whitespace().collect();
    ensure!(!pids.is_empty(), "no process in {}", procs.display());
    let mut names = Vec::with_capacity(pids.len());
    let mut bytes = 0;
    for pid in &pids {
        // A process may exit between the two reads; it holds no memory then.
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            continue;
        };
        let kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().strip_suffix("kB"))
            .and_then(|kib| kib.trim().parse().ok())
            .unwrap_or(0);
        bytes += kib * 1024;
        let name = status.lines().find_map(|line| line.strip_prefix("Name:")).unwrap_or("?");
        names.push(format!("{}={:.1}", name.trim(), kib as f64 / 1024.0));
    }
    Ok((names, bytes))
}

/// `cgroup.procs` of a session: `flint/<instance>/<id>` under the pids hierarchy (cgroup v1)
/// or the unified one (v2).
fn session_procs_file(id: &str) -> Result<PathBuf> {
    for root in ["/sys/fs/cgroup/pids/flint", "/sys/fs/cgroup/flint"] {
        let Ok(instances) = std::fs::read_dir(root) else {
            continue;
        };
        for instance in instances.flatten() {
            let procs = instance.path().join(id).join("cgroup.procs");
            if procs.exists() {
                return Ok(procs);
            }
        }
    }
    bail!("no cgroup of session {id} under /sys/fs/cgroup/{{pids/,}}flint/*/")
}
