//! The soak: [`SESSIONS`] busy gVisor sessions at once on one server for [`SOAK`], or as
//! many as the server's default capacity admits: creates stop at the first 503, and
//! `soak.sessions` says how many ran (on a 2-core host, 24: gVisor's default is 12 sandboxes
//! per CPU, since an idle sandbox takes about 5% of a core). In each session:
//!
//! - a terminal runs [`PRINTER`], numbered lines of text without end ([`LINES_PER_TICK`]
//!   lines every [`TICK`]: about 15 KB/s), watched by two viewers: one that keeps up, whose
//!   offsets must follow each other and whose line numbers must each come once, in order;
//!   and a slow one ([`SLOW_RATE`] through a socket with a small receive buffer: it falls
//!   behind), whose every jump in offsets must have been announced by `missed`;
//! - a second terminal, an idle shell, where a key is typed every [`KEY_EVERY`] and its
//!   echo timed;
//! - a preview of Python's `http.server` in the sandbox, fetched every [`POLL_EVERY`].
//!
//! Metrics: `soak.sessions`; `soak.lost_bytes`, output that a viewer that kept up did not
//! get or that a slow viewer lost unannounced (must be 0: the bench fails otherwise);
//! `soak.output_mb`, what the viewers that kept up got; `soak.slow_missed_mb`, what the slow
//! viewers were told they missed; `soak.server_rss_start_mb` and
//! `soak.server_rss_growth_mb`, the server's resident memory once every session is busy
//! and its growth to the end; `soak.keystroke_rtt`; `soak.preview_latency`; `soak.errors`,
//! failed fetches, keys without an echo and viewers that ended early.
//!
//! `FLINT_SOAK_SESSIONS` and `FLINT_SOAK_S` change the count and the length (for a quick
//! look while changing the bench; the figures of record use the defaults).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use bytes::Bytes;
use futures_util::StreamExt as _;
use http::StatusCode;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::TokioIo;
use proto::api::TerminalServerMessage;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::report::Metric;
use super::server::Server;
use super::terminal::{FlintTerminal, Terminal as _, read_until_prompt, settle, until_echo};
use super::{Ws, mib, uplink, vm_rss_kib};

/// Sessions the soak asks for.
const SESSIONS: usize = 50;
/// How long every session is busy.
const SOAK: Duration = Duration::from_secs(300);
/// From the last session's start to the first memory reading: the server's buffers and
/// caches for all of them are made by then, so what grows after is what the soak adds.
const WARMUP: Duration = Duration::from_secs(15);
/// Between two progress lines.
const PROGRESS_EVERY: Duration = Duration::from_secs(30);
/// Sessions made at once.
const CREATING: usize = 4;
/// Small sessions (half a CPU, 256 MiB), so that the CPUs and memory of the default capacity
/// hold as many as its sandbox count; no network: previews go through the agent.
const SESSION_BODY: &str = r#"{"image":"test","memory_mb":256,"cpus":0.5,"network":false}"#;

/// The printer: `LINES` numbered lines of 77 bytes every `TICK` seconds, forever.
const PRINTER: &str = r#"
import sys, time
lines, tick = int(sys.argv[1]), float(sys.argv[2])
pad, i = "x" * 60, 0
while True:
    chunk = []
    for _ in range(lines):
        i += 1
        chunk.append(f"soak {i:010d} {pad}\n")
    sys.stdout.write("".join(chunk))
    sys.stdout.flush()
    time.sleep(tick)
"#;
const LINES_PER_TICK: u32 = 20;
const TICK: &str = "0.1";
/// What the pty makes of one line (`\n` becomes `\r\n`).
const LINE_BYTES: u64 = 78;
/// The longest text between two newlines the check keeps (the printer's are 78 bytes).
const LINE_MAX: usize = 4096;

/// What the slow viewer reads per second: a quarter of the printer's rate, so that it falls
/// further behind than the scrollback and the buffers on the way hold, and is told it missed.
const SLOW_RATE: f64 = 4_000.0;
/// The slow viewer's socket receive buffer (the kernel doubles it).
const SLOW_SOCKET_BYTES: u32 = 8 << 10;

/// Between two timed keys in the idle shell.
const KEY_EVERY: Duration = Duration::from_secs(2);
/// Keys typed before the line is cleared.
const KEYS_PER_LINE: usize = 20;
/// The longest a key's echo may take before it counts as an error.
const ECHO_WAIT: Duration = Duration::from_secs(10);

/// Between two fetches of a session's preview.
const POLL_EVERY: Duration = Duration::from_secs(1);
/// The longest a fetch may take before it counts as an error.
const POLL_WAIT: Duration = Duration::from_secs(10);
/// The app's port in the sandbox.
const APP_PORT: u16 = 8000;
/// The app's file: 1 KiB.
const APP_FILE: &str = "/1k";
/// Makes the app's file and the printer (`$1`), starts the app, waits until it listens.
const SETUP: &str = "mkdir -p /tmp/www && head -c 1024 /dev/zero | tr '\\0' x > /tmp/www/1k && \
     printf '%s' \"$1\" > /tmp/soak.py && \
     setsid -f python3 -m http.server 8000 -d /tmp/www >/dev/null 2>&1; \
     for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/8000) 2>/dev/null && exit 0; \
     sleep 0.1; done; exit 1";

/// Error messages kept for the report.
const SHOWN_ERRORS: usize = 5;

/// What every session's tasks add to while the soak runs.
#[derive(Default)]
struct Totals {
    /// Output the viewers that kept up got.
    output: AtomicU64,
    /// Output lost: missing for a viewer that kept up, or jumped over unannounced.
    lost: AtomicU64,
    /// What the slow viewers read, and what they were told they missed.
    slow_read: AtomicU64,
    slow_missed: AtomicU64,
    errors: AtomicU64,
    /// The first few errors, said.
    shown: std::sync::Mutex<Vec<String>>,
    keystrokes: std::sync::Mutex<Vec<Duration>>,
    fetches: std::sync::Mutex<Vec<Duration>>,
}

impl Totals {
    fn error(&self, what: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut shown = self.shown.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if shown.len() < SHOWN_ERRORS {
            eprintln!("bench:   soak error: {what}");
            shown.push(what);
        }
    }
}

/// The soak's metrics, if `wanted` asks for any, on a gVisor server of its own.
pub async fn measure(
    cache: &std::path::Path,
    agent: &std::path::Path,
    uplink: &uplink::Uplink,
    wanted: &dyn Fn(&str) -> bool,
) -> Result<Vec<Metric>> {
    if !wanted("soak.") {
        return Ok(Vec::new());
    }
    let sessions = env_number("FLINT_SOAK_SESSIONS", SESSIONS as u64)? as usize;
    let soak = Duration::from_secs(env_number("FLINT_SOAK_S", SOAK.as_secs())?);
    let args = ["--driver", "gvisor", "--pool-size", "0"];
    let server = Server::start(cache, agent, uplink, &args).await?;
    let result = Box::pin(run(&server, sessions, soak)).await;
    let cleanup = server.delete_leftovers().await;
    let stopped = server.stop().await;
    let metrics = result?;
    cleanup?;
    stopped?;
    Ok(metrics)
}

fn env_number(name: &str, default: u64) -> Result<u64> {
    match std::env::var(name) {
        Ok(text) => text.parse().with_context(|| format!("{name}={text:?}: not a number")),
        Err(_) => Ok(default),
    }
}

async fn run(server: &Server, wanted: usize, soak: Duration) -> Result<Vec<Metric>> {
    let pid = server.inner.child.lock().await.id().context("the server has exited")?;
    let before = rss(pid)?;
    eprintln!("bench: soak ({wanted} gVisor sessions for {soak:?}; server at {before:.0} MiB)");
    let ids = create_sessions(server, wanted).await?;
    let count = ids.len();
    let totals = Arc::new(Totals::default());
    let until = Instant::now() + WARMUP + soak;
    let mut tasks = Vec::with_capacity(count);
    for (at, id) in ids.iter().enumerate() {
        // Spread over one key's interval so that the keys do not all come at once.
        let phase = KEY_EVERY * u32::try_from(at).unwrap_or(0) / u32::try_from(count)?;
        let (server, id, totals) = (server.clone(), id.clone(), totals.clone());
        tasks.push(tokio::spawn(async move {
            if let Err(e) = session(&server, &id, phase, until, &totals).await {
                totals.error(format!("{id}: {e:#}"));
            }
        }));
    }
    tokio::time::sleep(WARMUP).await;
    let start = rss(pid)?;
    eprintln!("bench:   all {count} sessions busy; server at {start:.0} MiB");
    let soak_start = Instant::now();
    let mut end = start;
    while Instant::now() + PROGRESS_EVERY <= until {
        tokio::time::sleep(PROGRESS_EVERY).await;
        end = rss(pid)?;
        eprintln!(
            "bench:   soak {:.0?} of {soak:?}: server at {end:.0} MiB, {:.1} MB shown ({:.1} MB \
             to slow viewers, {:.1} MB missed by them), {} lost, {} errors",
            soak_start.elapsed(),
            totals.output.load(Ordering::Relaxed) as f64 / 1e6,
            totals.slow_read.load(Ordering::Relaxed) as f64 / 1e6,
            totals.slow_missed.load(Ordering::Relaxed) as f64 / 1e6,
            totals.lost.load(Ordering::Relaxed),
            totals.errors.load(Ordering::Relaxed),
        );
    }
    for task in tasks {
        task.await.context("a session's task")?;
    }
    // Read once every session is still there and its viewers are done.
    end = rss(pid).unwrap_or(end);
    for id in &ids {
        server.delete_session(id).await?;
    }
    let lost = totals.lost.load(Ordering::Relaxed);
    let take = |samples: &std::sync::Mutex<Vec<Duration>>| {
        std::mem::take(&mut *samples.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    };
    let (keystrokes, fetches) = (take(&totals.keystrokes), take(&totals.fetches));
    ensure!(!keystrokes.is_empty(), "no key was echoed in the soak");
    ensure!(!fetches.is_empty(), "no preview answered in the soak");
    let metrics = vec![
        Metric::value("soak.sessions", "sessions", count as f64),
        Metric::value("soak.lost_bytes", "bytes", lost as f64),
        Metric::value("soak.output_mb", "MB", totals.output.load(Ordering::Relaxed) as f64 / 1e6),
        Metric::value(
            "soak.slow_missed_mb",
            "MB",
            totals.slow_missed.load(Ordering::Relaxed) as f64 / 1e6,
        ),
        Metric::value("soak.server_rss_start_mb", "MiB", start),
        Metric::value("soak.server_rss_growth_mb", "MiB", end - start),
        Metric::ms("soak.keystroke_rtt", &keystrokes),
        Metric::ms("soak.preview_latency", &fetches),
        Metric::value("soak.errors", "errors", totals.errors.load(Ordering::Relaxed) as f64),
    ];
    if lost > 0 {
        let shown = totals.shown.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        bail!("the soak lost {lost} bytes of output; errors: {shown:?}");
    }
    Ok(metrics)
}

/// Creates up to `wanted` sessions, [`CREATING`] at a time, until one is refused for
/// capacity (503); their ids.
async fn create_sessions(server: &Server, wanted: usize) -> Result<Vec<String>> {
    let started = Instant::now();
    let mut ids = Vec::with_capacity(wanted);
    let mut full = None;
    while ids.len() < wanted && full.is_none() {
        let batch = CREATING.min(wanted - ids.len());
        eprintln!("bench:   {} sessions running, making {batch} more", ids.len());
        let creates: Vec<_> = (0..batch)
            .map(|_| {
                let server = server.clone();
                tokio::spawn(async move { create_busy_session(&server).await })
            })
            .collect();
        for create in creates {
            match create.await.context("a create's task")?? {
                Created::Running(id) => ids.push(id),
                Created::Full(reason) => full = Some(reason),
                Created::Failed(reason) => bail!("a session failed to start: {reason}"),
            }
        }
    }
    match full {
        Some(reason) => {
            eprintln!("bench:   the server's capacity admitted {}: {reason}", ids.len());
        }
        None => {
            eprintln!("bench:   {} sessions running after {:.1?}", ids.len(), started.elapsed())
        }
    }
    ensure!(!ids.is_empty(), "no session fit the server's capacity");
    Ok(ids)
}

enum Created {
    Running(String),
    /// Refused for capacity, with the server's reason.
    Full(String),
    /// Made, but it did not start: why.
    Failed(String),
}

/// A session with the printer written and the app listening.
async fn create_busy_session(server: &Server) -> Result<Created> {
    let headers = [("authorization", server.bearer()), ("content-type", "application/json")];
    let reply = server.request("POST", "/api/sessions", &headers, SESSION_BODY).await?;
    if reply.status == StatusCode::SERVICE_UNAVAILABLE {
        return Ok(Created::Full(reply.body));
    }
    ensure!(
        reply.status == StatusCode::CREATED,
        "creating a session: {} {}",
        reply.status,
        reply.body
    );
    let session = reply.json()?;
    let id = session["id"].as_str().context("no session id")?.to_owned();
    server.sessions().push(id.clone());
    if session["state"] != "running" {
        return Ok(Created::Failed(format!("{id}: {}", session["reason"])));
    }
    let reply = server.exec(&id, &["bash", "-c", SETUP, "setup", PRINTER]).await?;
    ensure!(reply["exit_code"] == 0, "setting up session {id}: {reply}");
    Ok(Created::Running(id))
}

/// One session's workload until `until`.
async fn session(
    server: &Server,
    id: &str,
    phase: Duration,
    until: Instant,
    totals: &Totals,
) -> Result<()> {
    let printer = server.create_terminal(id).await?;
    let path = format!("/api/sessions/{id}/terminals/{printer}/ws");
    let mut viewer = FlintTerminal::new(server.websocket(&path).await?);
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(SLOW_SOCKET_BYTES)?;
    let addr: SocketAddr = server.inner.addr.parse().context("the server's address")?;
    let slow = server.websocket_on(&path, socket.connect(addr).await?).await?;
    let mut shell = FlintTerminal::new(server.open_terminal(id).await?);
    read_until_prompt(&mut shell).await?;
    read_until_prompt(&mut viewer).await?;
    let command = format!("python3 /tmp/soak.py {LINES_PER_TICK} {TICK}\r");
    viewer.send(command.as_bytes()).await.context("starting the printer")?;
    let (viewer, next) = viewer.into_parts();
    let (kept, slowed, typed, fetched) = tokio::join!(
        keep_up(viewer, next, until, totals),
        read_slowly(slow, until, totals),
        type_keys(shell, phase, until, totals),
        poll_preview(server, id, until, totals),
    );
    for (what, result) in [("viewer", kept), ("slow viewer", slowed), ("typist", typed)] {
        if let Err(e) = result {
            totals.error(format!("{id}: the {what}: {e:#}"));
        }
    }
    fetched
}

/// The viewer that keeps up: reads as fast as output comes, checks that offsets follow each
/// other and line numbers come once each, in order; counts what is missing as lost.
async fn keep_up(mut ws: Ws, mut next: Option<u64>, until: Instant, totals: &Totals) -> Result<()> {
    let mut lines = LineCheck::default();
    loop {
        let Some(message) = next_message(&mut ws, until).await? else { break };
        match message {
            Message::Binary(bytes) => {
                let (offset, output) = split_output(&bytes)?;
                if let Some(expected) = follow(&mut next, offset, output.len()) {
                    totals.lost.fetch_add(offset.abs_diff(expected), Ordering::Relaxed);
                    totals.error(format!("output jumped from {expected} to {offset}"));
                }
                totals.output.fetch_add(output.len() as u64, Ordering::Relaxed);
                lines.feed(output);
            }
            Message::Text(text) => match control(&text)? {
                TerminalServerMessage::Attached { offset, .. } => next = Some(offset),
                TerminalServerMessage::Missed { from, to } => {
                    totals.lost.fetch_add(to.saturating_sub(from), Ordering::Relaxed);
                    totals.error(format!("a viewer that kept up missed {from}..{to}"));
                    next = Some(to);
                }
                other => bail!("{other:?}"),
            },
            Message::Close(close) => bail!("closed: {close:?}"),
            _ => {}
        }
    }
    if lines.missing > 0 || lines.repeated > 0 {
        totals.lost.fetch_add(lines.missing * LINE_BYTES, Ordering::Relaxed);
        totals.error(format!(
            "{} lines missing and {} repeated or out of order",
            lines.missing, lines.repeated
        ));
    }
    ensure!(lines.last.is_some(), "no numbered line came");
    let _ = ws.close(None).await;
    Ok(())
}

/// Checks the printer's numbered lines as they come.
#[derive(Default)]
struct LineCheck {
    /// What came after the last newline.
    partial: Vec<u8>,
    last: Option<u64>,
    missing: u64,
    repeated: u64,
}

impl LineCheck {
    fn feed(&mut self, mut output: &[u8]) {
        while let Some(end) = output.iter().position(|&b| b == b'\n') {
            if self.partial.is_empty() {
                self.line(&output[..end]);
            } else {
                self.partial.extend_from_slice(&output[..end]);
                let line = std::mem::take(&mut self.partial);
                self.line(&line);
            }
            output = &output[end + 1..];
        }
        self.partial.extend_from_slice(output);
        if self.partial.len() > LINE_MAX {
            self.partial.clear();
        }
    }

    /// `soak NNNNNNNNNN x…\r`: the number must follow the last one; other lines (the
    /// command's echo, a prompt) are not the printer's.
    fn line(&mut self, line: &[u8]) {
        let number = line
            .strip_prefix(b"soak ")
            .and_then(|rest| rest.get(..10))
            .filter(|digits| digits.iter().all(u8::is_ascii_digit))
            .and_then(|digits| std::str::from_utf8(digits).ok()?.parse::<u64>().ok());
        let Some(number) = number else { return };
        match self.last {
            Some(last) if number == last + 1 => {}
            Some(last) if number > last => self.missing += number - last - 1,
            Some(_) => self.repeated += 1,
            None => {}
        }
        self.last = Some(number);
    }
}

/// The slow viewer: reads at [`SLOW_RATE`]; every jump in offsets must have been announced
/// by `missed` (then it counts as missed, not lost).
async fn read_slowly(mut ws: Ws, until: Instant, totals: &Totals) -> Result<()> {
    let mut next: Option<u64> = None;
    loop {
        let Some(message) = next_message(&mut ws, until).await? else { break };
        match message {
            Message::Binary(bytes) => {
                let (offset, output) = split_output(&bytes)?;
                if let Some(expected) = follow(&mut next, offset, output.len()) {
                    totals.lost.fetch_add(offset.abs_diff(expected), Ordering::Relaxed);
                    totals.error(format!(
                        "a slow viewer's output jumped from {expected} to {offset}"
                    ));
                }
                totals.slow_read.fetch_add(output.len() as u64, Ordering::Relaxed);
                let pause = Duration::from_secs_f64(output.len() as f64 / SLOW_RATE);
                tokio::time::sleep_until(until.min(Instant::now() + pause)).await;
            }
            Message::Text(text) => match control(&text)? {
                TerminalServerMessage::Attached { offset, .. } => next = Some(offset),
                TerminalServerMessage::Missed { from, to } => {
                    if let Some(next) = next
                        && from != next
                    {
                        totals.lost.fetch_add(from.abs_diff(next), Ordering::Relaxed);
                        totals.error(format!("missed from {from}, but output stopped at {next}"));
                    }
                    totals.slow_missed.fetch_add(to.saturating_sub(from), Ordering::Relaxed);
                    next = Some(to);
                }
                other => bail!("{other:?}"),
            },
            Message::Close(close) => bail!("closed: {close:?}"),
            _ => {}
        }
    }
    let _ = ws.close(None).await;
    Ok(())
}

/// Types a key every [`KEY_EVERY`] (the first after `phase`) into the idle shell and times
/// its echo.
async fn type_keys(
    mut shell: FlintTerminal,
    phase: Duration,
    until: Instant,
    totals: &Totals,
) -> Result<()> {
    let mut due = Instant::now() + phase;
    let mut typed = 0usize;
    while due < until {
        tokio::time::sleep_until(due).await;
        due += KEY_EVERY;
        if typed > 0 && typed.is_multiple_of(KEYS_PER_LINE) {
            shell.send(b"\x15").await?;
            settle(&mut shell).await?;
        }
        let key = b'a' + (typed % 26) as u8;
        typed += 1;
        let sent = Instant::now();
        shell.send(&[key]).await?;
        match tokio::time::timeout(ECHO_WAIT, until_echo(&mut shell, key)).await {
            Ok(result) => result?,
            Err(_) => {
                totals.error(format!("no echo within {ECHO_WAIT:?}"));
                continue;
            }
        }
        let rtt = sent.elapsed();
        totals.keystrokes.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(rtt);
    }
    Ok(())
}

/// Fetches the preview every [`POLL_EVERY`] on a fresh connection (the app answers HTTP/1.0
/// and closes), as a browser's reload does.
async fn poll_preview(server: &Server, id: &str, until: Instant, totals: &Totals) -> Result<()> {
    let addr: SocketAddr = server.inner.addr.parse().context("the server's address")?;
    let host = format!("{APP_PORT}-{id}.preview.localhost:{}", addr.port());
    let token = server.bearer().trim_start_matches("Bearer ").to_owned();
    let mut due = Instant::now();
    while due < until {
        tokio::time::sleep_until(due).await;
        due += POLL_EVERY;
        let started = Instant::now();
        match tokio::time::timeout(POLL_WAIT, fetch(addr, &host, &token)).await {
            Ok(Ok(())) => totals
                .fetches
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(started.elapsed()),
            Ok(Err(e)) => totals.error(format!("{id}: a preview fetch: {e:#}")),
            Err(_) => totals.error(format!("{id}: a preview fetch took over {POLL_WAIT:?}")),
        }
    }
    Ok(())
}

/// One `GET` of the app's file through the preview: it must answer 200 with the whole file.
async fn fetch(addr: SocketAddr, host: &str, token: &str) -> Result<()> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = http::Request::builder()
        .uri(APP_FILE)
        .header("host", host)
        .header("x-flint-token", token)
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    ensure!(status == StatusCode::OK, "{status}: {}", String::from_utf8_lossy(&body));
    ensure!(body.len() == 1024, "{} bytes of 1024", body.len());
    Ok(())
}

/// The next message, or `None` once `until` has come.
async fn next_message(ws: &mut Ws, until: Instant) -> Result<Option<Message>> {
    match tokio::time::timeout_at(until, ws.next()).await {
        Err(_) => Ok(None),
        Ok(None) => bail!("the websocket ended"),
        Ok(Some(message)) => Ok(Some(message.context("reading")?)),
    }
}

/// Moves `next` past output of `len` bytes at `offset`; the offset it expected instead, if
/// the output did not start there.
fn follow(next: &mut Option<u64>, offset: u64, len: usize) -> Option<u64> {
    let expected = next.filter(|&expected| expected != offset);
    *next = Some(offset + len as u64);
    expected
}

/// An output message's offset and bytes.
fn split_output(bytes: &[u8]) -> Result<(u64, &[u8])> {
    let (head, output) = bytes
        .split_first_chunk::<{ proto::api::OUTPUT_OFFSET_BYTES }>()
        .with_context(|| format!("an output message of {} bytes", bytes.len()))?;
    Ok((u64::from_be_bytes(*head), output))
}

fn control(text: &str) -> Result<TerminalServerMessage> {
    serde_json::from_str(text).with_context(|| format!("message {text}"))
}

/// A process's resident memory in MiB.
fn rss(pid: u32) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let kib = vm_rss_kib(&status).with_context(|| format!("no VmRSS in /proc/{pid}/status"))?;
    Ok(mib(kib * 1024))
}
