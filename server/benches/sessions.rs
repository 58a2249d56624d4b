//! `cargo bench -p server --bench sessions`: sessions on the `process` driver, measured over
//! HTTP and websockets against the real `flint serve` (release build, release guest agent,
//! the test image of `images/test.toml`).
//!
//! Prints a table to stdout, progress to stderr, and writes `target/bench/sessions.json`
//! (`{"metrics": [{"name", "unit", "p50", "p95", "p99", "n"} | {"name", "unit", "value"}]}`).
//! An argument that is not a flag runs only the metrics whose name contains it.

#[path = "sessions/mcp.rs"]
mod mcp;
#[path = "sessions/net.rs"]
mod net;
#[path = "sessions/proxy.rs"]
mod proxy;
#[path = "../../guest-agent/benches/report/mod.rs"]
mod report;
#[path = "../tests/support/uplink.rs"]
#[allow(dead_code)]
mod uplink;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use http::{Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use proto::api::TerminalServerMessage;
use report::{Metric, target_dir, workspace};
use tokio::io::AsyncBufReadExt as _;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

/// Sequential creates timed by `session.create_to_prompt.process`.
const CREATES: usize = 20;
/// Sessions created at once by `session.concurrent10_wall.process`.
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
    let server = Server::start(&cache, &agent, &uplink).await?;
    let result = Box::pin(measure(&server, &uplink, &wanted)).await;
    // Sandboxes outlive their server: whatever a failed run left behind is deleted first.
    let cleanup = server.delete_leftovers().await;
    server.stop().await;
    let metrics = result?;
    cleanup?;
    Ok(metrics)
}

async fn measure(
    server: &Server,
    uplink: &uplink::Uplink,
    wanted: &dyn Fn(&str) -> bool,
) -> Result<Vec<Metric>> {
    let mut metrics = Vec::new();
    if wanted("session.create_to_prompt.process") {
        eprintln!("bench: create_to_prompt ({CREATES} sequential creates)");
        let mut samples = Vec::with_capacity(CREATES);
        for _ in 0..CREATES {
            let (id, elapsed) = create_to_prompt(server).await?;
            samples.push(elapsed);
            server.delete_session(&id).await?;
        }
        metrics.push(Metric::ms("session.create_to_prompt.process", &samples));
    }
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
    let concurrent = wanted("session.concurrent10_wall.process");
    let memory = wanted("session.idle_memory.process");
    if concurrent || memory {
        eprintln!("bench: concurrent10_wall ({CONCURRENT} concurrent creates)");
        let (ids, wall) = create_concurrently(server, CONCURRENT).await?;
        if concurrent {
            let value = wall.as_secs_f64() * 1e3;
            metrics.push(Metric::value("session.concurrent10_wall.process", "ms", value));
        }
        if memory {
            eprintln!("bench: idle_memory ({CONCURRENT} sessions idle for {IDLE:?})");
            tokio::time::sleep(IDLE).await;
            let mut total = 0.0;
            for id in &ids {
                let (processes, bytes) = session_rss(id)?;
                eprintln!("bench:   {id}: {:.1} MiB in {}", mib(bytes), processes.join(" "));
                total += mib(bytes);
            }
            let per_session = total / ids.len() as f64;
            metrics.push(Metric::value("session.idle_memory.process", "MiB", per_session));
        }
        for id in &ids {
            server.delete_session(id).await?;
        }
    }
    if wanted("ws.keystroke_rtt") {
        eprintln!("bench: keystroke_rtt ({KEYS} keys)");
        let samples = keystroke_rtt(server).await?;
        metrics.push(Metric::ms("ws.keystroke_rtt", &samples));
    }
    if wanted("mcp.run_command") {
        eprintln!("bench: mcp.run_command ({MCP_CALLS} calls of run_command \"true\")");
        let samples = mcp::run_command(server).await?;
        metrics.push(Metric::ms("mcp.run_command", &samples));
    }
    Ok(metrics)
}

/// Creates a session and a terminal, attaches to it; the time until the shell's prompt.
async fn create_to_prompt(server: &Server) -> Result<(String, Duration)> {
    create_to_prompt_with(server, SESSION_BODY).await
}

/// The same, creating the session with `body`.
async fn create_to_prompt_with(server: &Server, body: &str) -> Result<(String, Duration)> {
    let start = Instant::now();
    let id = server.create_session_with(body).await?;
    let mut ws = server.open_terminal(&id).await?;
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

/// The release guest-agent binary, built (or brought up to date: a stale agent would measure
/// old code) by `cargo build --release -p guest-agent`, since `cargo bench -p server` does not
/// build other packages' binaries.
fn agent_bin() -> Result<PathBuf> {
    let bin = target_dir().join("release/guest-agent");
    {
        eprintln!("bench: cargo build --release -p guest-agent");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = std::process::Command::new(cargo)
            .args(["build", "--release", "-p", "guest-agent"])
            .current_dir(workspace())
            .status()
            .context("running cargo build --release -p guest-agent")?;
        ensure!(status.success(), "building the release guest-agent failed: {status}");
    }
    Ok(bin)
}

/// A data directory holding the built test image, built unless cached: each run links its
/// `images/` into a fresh data directory.
async fn image_cache() -> Result<PathBuf> {
    let cache = target_dir().join("flint-bench-data");
    let spec = workspace().join("images/test.toml");
    let start = Instant::now();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_flint"))
        .args(["image", "build"])
        .arg(&spec)
        .arg("--data-dir")
        .arg(&cache)
        .env("FLINT_LOG", "warn")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .await
        .context("running flint image build")?;
    ensure!(output.status.success(), "building {} failed: {}", spec.display(), output.status);
    eprintln!(
        "bench: test image {} ({:.1?})",
        String::from_utf8_lossy(&output.stdout).trim(),
        start.elapsed()
    );
    Ok(cache)
}

/// `flint serve` on a free port with a fresh data directory, and a user-wide token.
#[derive(Clone)]
struct Server {
    inner: Arc<Inner>,
}

struct Inner {
    child: tokio::sync::Mutex<tokio::process::Child>,
    addr: String,
    bearer: String,
    /// Sessions created and not deleted yet.
    sessions: Mutex<Vec<String>>,
    _dir: tempfile::TempDir,
}

/// A response, read whole.
struct Reply {
    status: StatusCode,
    /// The name=value pair of its `Set-Cookie`, if any.
    cookie: Option<String>,
    body: String,
}

impl Reply {
    fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_str(&self.body).with_context(|| format!("not json: {}", self.body))
    }
}

impl Server {
    async fn start(cache: &Path, agent: &Path, uplink: &uplink::Uplink) -> Result<Server> {
        let dir = tempfile::tempdir().context("temporary directory")?;
        std::os::unix::fs::symlink(cache.join("images"), dir.path().join("images"))
            .context("linking the image cache")?;
        let binary = env!("CARGO_BIN_EXE_flint");
        let mut child = tokio::process::Command::new(binary)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .args(["--uplink-netns", &uplink.name, "--dns-upstream", &uplink::DNS.to_string()])
            .env("FLINT_LOG", std::env::var("FLINT_LOG").unwrap_or_else(|_| "warn".into()))
            .env("FLINT_IMAGES_DIR", workspace().join("images"))
            .env("FLINT_AGENT_BIN", agent)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {binary} serve"))?;
        let stdout = child.stdout.take().context("the server's stdout")?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let (mut addr, mut login_url) = (None, None);
        let started = async {
            while addr.is_none() || login_url.is_none() {
                let Some(line) = lines.next_line().await.context("reading the server's stdout")?
                else {
                    bail!("flint serve exited before printing its address and login url");
                };
                if let Some(rest) = line.strip_prefix("Flint is listening on http://") {
                    addr = Some(rest.to_owned());
                } else if let Some(rest) = line.strip_prefix("Sign in: ") {
                    login_url = Some(rest.to_owned());
                }
            }
            anyhow::Ok(())
        };
        tokio::time::timeout(WAIT, started).await.context("flint serve did not start")??;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let (addr, login_url) = (addr.unwrap_or_default(), login_url.unwrap_or_default());
        eprintln!("bench: flint serve on http://{addr} ({binary}, agent {})", agent.display());
        let bearer = token(&addr, &login_url).await?;
        Ok(Server {
            inner: Arc::new(Inner {
                child: tokio::sync::Mutex::new(child),
                addr,
                bearer,
                sessions: Mutex::default(),
                _dir: dir,
            }),
        })
    }

    async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Result<Reply> {
        request(&self.inner.addr, method, path, headers, body).await
    }

    /// Creates a session and checks it is running; its id.
    async fn create_session(&self) -> Result<String> {
        self.create_session_with(SESSION_BODY).await
    }

    async fn create_session_with(&self, body: &str) -> Result<String> {
        let headers = [("authorization", self.bearer()), ("content-type", "application/json")];
        let reply = self.request("POST", "/api/sessions", &headers, body).await?;
        ensure!(
            reply.status == StatusCode::CREATED,
            "creating a session: {} {}",
            reply.status,
            reply.body
        );
        let session = reply.json()?;
        let id = session["id"].as_str().context("no session id")?.to_owned();
        self.sessions().push(id.clone());
        ensure!(session["state"] == "running", "a session that is not running: {session}");
        Ok(id)
    }

    /// Creates a terminal in the session and opens its websocket.
    async fn open_terminal(&self, id: &str) -> Result<Ws> {
        let headers = [("authorization", self.bearer()), ("content-type", "application/json")];
        let reply =
            self.request("POST", &format!("/api/sessions/{id}/terminals"), &headers, "{}").await?;
        ensure!(
            reply.status == StatusCode::CREATED,
            "creating a terminal: {} {}",
            reply.status,
            reply.body
        );
        let tid = reply.json()?["id"].as_str().context("no terminal id")?.to_owned();
        let url = format!("ws://{}/api/sessions/{id}/terminals/{tid}/ws", self.inner.addr);
        let mut request = url.into_client_request().context("websocket request")?;
        let origin = format!("http://{}", self.inner.addr);
        for (name, value) in [("authorization", self.bearer()), ("origin", origin.as_str())] {
            request.headers_mut().insert(name, value.parse().context("header value")?);
        }
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
            .await
            .context("opening the terminal websocket timed out")?
            .context("opening the terminal websocket")?;
        Ok(ws)
    }

    async fn delete_session(&self, id: &str) -> Result<()> {
        let headers = [("authorization", self.bearer())];
        let reply = self.request("DELETE", &format!("/api/sessions/{id}"), &headers, "").await?;
        ensure!(
            reply.status == StatusCode::NO_CONTENT,
            "deleting session {id}: {} {}",
            reply.status,
            reply.body
        );
        self.sessions().retain(|s| s != id);
        Ok(())
    }

    /// Deletes every session a failed measurement left behind.
    async fn delete_leftovers(&self) -> Result<()> {
        let leftovers = self.sessions().clone();
        let mut result = Ok(());
        for id in leftovers {
            eprintln!("bench: deleting leftover session {id}");
            if let Err(e) = self.delete_session(&id).await {
                eprintln!("bench: {e:#}");
                result = Err(e);
            }
        }
        result
    }

    async fn stop(&self) {
        let mut child = self.inner.child.lock().await;
        let _ = child.kill().await;
    }

    fn bearer(&self) -> &str {
        &self.inner.bearer
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.inner.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Signs in with the login link and creates a user-wide token: `Bearer <token>`.
async fn token(addr: &str, login_url: &str) -> Result<String> {
    let login = &login_url[login_url.find("/login").context("a /login url")?..];
    let reply = request(addr, "GET", login, &[], "").await?;
    ensure!(reply.status == StatusCode::SEE_OTHER, "sign-in: {} {}", reply.status, reply.body);
    let cookie = reply.cookie.context("no cookie from the sign-in")?;
    let headers = [("cookie", cookie.as_str()), ("content-type", "application/json")];
    let reply = request(addr, "POST", "/api/tokens", &headers, r#"{"name":"bench"}"#).await?;
    ensure!(reply.status.is_success(), "creating a token: {} {}", reply.status, reply.body);
    let token = reply.json()?["token"].as_str().map(str::to_owned);
    Ok(format!("Bearer {}", token.context("no token in the reply")?))
}

/// One request to the server at `addr` on a fresh connection.
async fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<Reply> {
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let mut request = Request::builder().method(method).uri(path).header("host", addr);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(Bytes::from(body.to_owned())))?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let cookie = response
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(str::to_owned);
        let body = response.into_body().collect().await?.to_bytes();
        let body = String::from_utf8_lossy(&body).into_owned();
        anyhow::Ok(Reply { status, cookie, body })
    };
    tokio::time::timeout(WAIT, exchange)
        .await
        .with_context(|| format!("{method} {path}: no answer within {WAIT:?}"))?
        .with_context(|| format!("{method} {path}"))
}
