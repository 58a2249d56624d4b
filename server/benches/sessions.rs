//! `cargo bench -p server --bench sessions`: sessions measured over HTTP and websockets
//! against the real `flint serve` (release build, release guest agent, the test image of
//! `images/test.toml`; the default image for the shared browser): per sandbox driver
//! (`drivers.rs`: creates, memory, the terminal (`terminal.rs`) and the preview proxy
//! (`proxy.rs`)), the anchors the same workloads run against without Flint (`anchors.rs`:
//! a bare PTY and terminado; `proxy.rs`: the app reached directly and through nginx), the
//! soak (`soak.rs`: 50 busy gVisor sessions for 5 minutes), then, on the `process` driver,
//! networking, the shared browser and MCP.
//!
//! Prints a table to stdout, progress to stderr, and writes `target/bench/sessions.json`
//! (`{"metrics": [{"name", "unit", "p50", "p95", "p99", "n"} | {"name", "unit", "value"}]}`).
//! An argument that is not a flag runs only the metrics whose name contains it. It leaves
//! nothing behind: every server is stopped and what it left removed (`server.rs`), and the
//! run fails if anything of its servers or namespaces is still there at the end
//! (`leftovers.rs`).

#[path = "sessions/anchors.rs"]
mod anchors;
#[path = "sessions/browser.rs"]
mod browser;
#[path = "../tests/support/client.rs"]
mod client;
#[path = "sessions/drivers.rs"]
mod drivers;
#[path = "sessions/leftovers.rs"]
#[allow(dead_code, reason = "`cargo xtask bench` reads the manifest; this writes it")]
mod leftovers;
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
#[path = "sessions/soak.rs"]
mod soak;
#[path = "sessions/terminal.rs"]
mod terminal;
#[path = "../tests/support/uplink.rs"]
#[allow(dead_code)]
mod uplink;
#[path = "sessions/upstream.rs"]
mod upstream;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use report::Metric;
use server::{Server, agent_bin, image_cache};
use terminal::FlintTerminal;

/// Sequential creates timed by `session.create_to_prompt.D`.
const CREATES: usize = 20;
/// Sessions created at once by `session.concurrent10_wall.D`.
const CONCURRENT: usize = 10;
/// How long the concurrent sessions sit idle before their memory is read.
const IDLE: Duration = Duration::from_secs(2);
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
    // Inside a sandbox, the bench binary is the preview's upstream app.
    if let Some(port) = upstream::requested() {
        return upstream::serve(port?);
    }
    report::main("sessions", |filter| async move {
        let result = Box::pin(run(filter.as_deref())).await;
        // Whatever happened, nothing of the run may stay.
        let left = tokio::task::spawn_blocking(check_leftovers).await?;
        let metrics = result?;
        left?;
        Ok(metrics)
    })
}

async fn run(filter: Option<&str>) -> Result<Vec<Metric>> {
    let wanted = |name: &str| filter.is_none_or(|f| name.contains(f));
    let agent = agent_bin()?;
    let cache = image_cache().await?;
    // Sandboxes egress through a namespace built here: nothing the bench sends leaves the
    // machine (MACHINE.md, "Network").
    let uplink = tokio::task::spawn_blocking(uplink::Uplink::build).await?;
    // Its world namespace is named after it (`uplink.rs`).
    server::record_netns(&uplink.name)?;
    server::record_netns(&uplink.name.replacen("flt-up-", "flt-w-", 1))?;
    let mut metrics = Vec::new();
    for driver in ["process", "gvisor"] {
        metrics.extend(Box::pin(drivers::measure(&cache, &agent, &uplink, driver, &wanted)).await?);
    }
    metrics.extend(Box::pin(soak::measure(&cache, &agent, &uplink, &wanted)).await?);
    metrics.extend(anchors::measure(&wanted).await?);
    let browser_metrics = ["browser.fps", "browser.input_to_frame"];
    if browser_metrics.iter().any(|m| wanted(m)) {
        // Its Chromium (about 100 s to build the first time).
        server::build_image("default").await?;
    }
    let rest = [
        "session.create_to_prompt_net.process",
        "net.egress_throughput",
        "net.host_throughput",
        "browser.fps",
        "browser.input_to_frame",
        "mcp.run_command",
    ];
    if rest.iter().any(|m| wanted(m)) {
        let args = ["--driver", "process", "--pool-size", "0"];
        let server = Server::start(&cache, &agent, &uplink, &args).await?;
        let result = Box::pin(measure(&server, &uplink, &wanted)).await;
        // Sandboxes outlive their server: whatever a failed run left behind is deleted first.
        let cleanup = server.delete_leftovers().await;
        let stopped = server.stop().await;
        metrics.extend(result?);
        cleanup?;
        stopped?;
    }
    Ok(metrics)
}

/// Fails, saying what, if anything of this run's servers or namespaces is still there.
fn check_leftovers() -> Result<()> {
    let started = server::started();
    let mut left: Vec<String> = Vec::new();
    for record in &started.servers {
        left.extend(leftovers::find(record, None, true).iter().map(ToString::to_string));
    }
    left.extend(leftovers::find_netns(&started).iter().map(ToString::to_string));
    if left.is_empty() {
        eprintln!("bench: nothing left behind");
        return Ok(());
    }
    // Said here too: a failed run returns its own error first.
    let left = left.join("\n  ");
    eprintln!("bench: left behind:\n  {left}");
    bail!("the bench left behind:\n  {left}")
}

/// A metric's name for the report (which takes `'static` names; a handful per run).
fn name(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
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
    let ws = server.open_first_shell(&id).await?;
    let text = read_until_prompt(ws).await?;
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

/// A terminal websocket.
type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Reads output until it ends in a shell prompt; returns it.
async fn read_until_prompt(ws: Ws) -> Result<String> {
    terminal::read_until_prompt(&mut FlintTerminal::new(ws)).await
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
        let kib = vm_rss_kib(&status).unwrap_or(0);
        bytes += kib * 1024;
        let name = status.lines().find_map(|line| line.strip_prefix("Name:")).unwrap_or("?");
        names.push(format!("{}={:.1}", name.trim(), kib as f64 / 1024.0));
    }
    Ok((names, bytes))
}

/// The resident memory (KiB) in a `/proc/PID/status`.
fn vm_rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse().ok())
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
