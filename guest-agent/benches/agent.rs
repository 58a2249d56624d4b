//! `cargo bench -p guest-agent --bench agent`: the guest agent's figures, measured against the
//! real `guest-agent` binary on a unix socket, each next to its ceiling where there is one
//! (a bare PTY, a direct TCP connection).
//!
//! Prints a table to stdout, progress to stderr, and writes `target/bench/agent.json`
//! (`{"metrics": [{"name", "unit", "p50", "p95", "p99", "n"} | {"name", "unit", "value"}]}`).
//! An argument that is not a flag runs only the metrics whose name contains it.

#[path = "report/mod.rs"]
mod report;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use bytes::Bytes;
use guest_agent::client::{Client, FrameStream};
use guest_agent::listen::Listen;
use http_body_util::BodyExt as _;
use proto::ports::PortEvent;
use proto::terminal::{AttachDown, AttachQuery, AttachUp, CreateTerminal, Role, TerminalId};
use report::Metric;
use serde_bytes::ByteBuf;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Keystrokes timed by `agent.keystroke_rtt`.
const KEYS: usize = 1000;
/// Keys typed between two unmeasured Ctrl-U that clear the line.
const KEYS_PER_LINE: usize = 100;
/// Rounds of `agent.port_event_latency`.
const PORT_ROUNDS: usize = 30;
/// Samples of each request latency.
const REQUESTS: usize = 300;
/// Bytes the bulk TCP server writes per connection.
const BULK_BYTES: usize = 256 << 20;
/// Output of the PTY throughput command: `head -c 48000000 | base64` is ~65 MB with CRLFs.
const PTY_COMMAND: &str = "head -c 48000000 /dev/zero | base64 -w 76; echo DONE\"\"MARKER";
/// What the command prints last; its own echo (`DONE""MARKER`) does not match.
const MARKER: &[u8] = b"DONEMARKER";
/// Quiet time after which a terminal's output counts as settled.
const SETTLE: Duration = Duration::from_millis(50);
/// Deadline of any single wait on the agent.
const WAIT: Duration = Duration::from_secs(10);
/// Deadline of one bulk transfer.
const BULK_WAIT: Duration = Duration::from_secs(90);

const HTTP_REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
const HTTP_RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";

fn main() -> Result<()> {
    report::main("agent", |filter| async move { run(filter.as_deref()).await })
}

async fn run(filter: Option<&str>) -> Result<Vec<Metric>> {
    let wanted = |name: &str| filter.is_none_or(|f| name.contains(f));
    let agent = Agent::start().await?;
    let client = &agent.client;
    let mut metrics = Vec::new();

    if wanted("agent.keystroke_rtt") {
        eprintln!("bench: keystroke_rtt ({KEYS} keys)");
        metrics.push(Metric::ms("agent.keystroke_rtt", &keystroke_rtt(client).await?));
    }
    if wanted("agent.port_event_latency") {
        eprintln!("bench: port_event_latency ({PORT_ROUNDS} rounds)");
        metrics.push(Metric::ms("agent.port_event_latency", &port_event_latency(client).await?));
    }
    if wanted("agent.pty_raw_throughput") {
        eprintln!("bench: pty_raw_throughput (bare pty, no agent)");
        let (bytes, elapsed) =
            tokio::task::spawn_blocking(raw_pty_throughput).await.context("raw pty thread")??;
        eprintln!("bench:   {bytes} bytes in {elapsed:.2?}");
        metrics.push(Metric::mbps("agent.pty_raw_throughput", bytes, elapsed));
    }
    for (name, attachers) in [("agent.pty_throughput_1", 1), ("agent.pty_throughput_5", 5)] {
        if wanted(name) {
            eprintln!("bench: {} ({attachers} attachers)", &name["agent.".len()..]);
            let (bytes, elapsed) = pty_throughput(client, attachers).await?;
            metrics.push(Metric::mbps(name, bytes, elapsed));
        }
    }
    if wanted("agent.tunnel_throughput") || wanted("agent.direct_throughput") {
        let port = bulk_server().await?;
        wait_for_port(client, port).await?;
        if wanted("agent.tunnel_throughput") {
            eprintln!("bench: tunnel_throughput ({} MiB)", BULK_BYTES >> 20);
            let elapsed = tunnel_download(client, port).await?;
            metrics.push(Metric::mbps("agent.tunnel_throughput", BULK_BYTES as u64, elapsed));
        }
        if wanted("agent.direct_throughput") {
            eprintln!("bench: direct_throughput ({} MiB)", BULK_BYTES >> 20);
            let elapsed = direct_download(port).await?;
            metrics.push(Metric::mbps("agent.direct_throughput", BULK_BYTES as u64, elapsed));
        }
    }
    if wanted("agent.tunnel_request_latency") || wanted("agent.direct_request_latency") {
        let port = http_server().await?;
        wait_for_port(client, port).await?;
        if wanted("agent.tunnel_request_latency") {
            eprintln!("bench: tunnel_request_latency ({REQUESTS} requests)");
            let mut samples = Vec::with_capacity(REQUESTS);
            for _ in 0..REQUESTS {
                samples.push(tunnel_request(client, port).await?);
            }
            metrics.push(Metric::ms("agent.tunnel_request_latency", &samples));
        }
        if wanted("agent.direct_request_latency") {
            eprintln!("bench: direct_request_latency ({REQUESTS} requests)");
            let mut samples = Vec::with_capacity(REQUESTS);
            for _ in 0..REQUESTS {
                samples.push(direct_request(port).await?);
            }
            metrics.push(Metric::ms("agent.direct_request_latency", &samples));
        }
    }

    agent.stop().await?;
    Ok(metrics)
}

/// The agent binary under test, serving on a unix socket in a temporary directory.
struct Agent {
    child: tokio::process::Child,
    client: Client,
    _dir: tempfile::TempDir,
}

impl Agent {
    async fn start() -> Result<Agent> {
        let dir = tempfile::tempdir().context("temporary directory")?;
        let socket = dir.path().join("agent.sock");
        let secret_file = dir.path().join("secret");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let secret = format!("bench-{}-{nanos}", std::process::id());
        std::fs::write(&secret_file, &secret).context("writing the secret")?;
        let binary = env!("CARGO_BIN_EXE_guest-agent");
        let mut child = tokio::process::Command::new(binary)
            .arg("serve")
            .arg("--listen")
            .arg(format!("unix:{}", socket.display()))
            .arg("--secret-file")
            .arg(&secret_file)
            .arg("--workdir")
            .arg(dir.path())
            .env(
                "FLINT_AGENT_LOG",
                std::env::var("FLINT_AGENT_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {binary}"))?;
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = child.try_wait().context("waiting on the agent")? {
                bail!("the agent exited before listening: {status}");
            }
            if tokio::net::UnixStream::connect(&socket).await.is_ok() {
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "the agent did not listen on {} within {WAIT:?}",
                socket.display()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let client = Client::connect(&Listen::Unix(socket), &secret)
            .await
            .context("connecting to the agent")?;
        let info = client.info().await.context("agent info")?;
        eprintln!("bench: agent {} api {} ({binary})", info.agent_version, info.api_version);
        Ok(Agent { child, client, _dir: dir })
    }

    async fn stop(mut self) -> Result<()> {
        self.child.kill().await.context("stopping the agent")
    }
}

/// A terminal running `bash --norc -i` with a fixed prompt, settled after its first prompt,
/// and its writer attach.
struct Shell {
    id: TerminalId,
    input: guest_agent::client::FrameSender<AttachUp>,
    output: FrameStream<AttachDown>,
}

impl Shell {
    async fn start(client: &Client) -> Result<Shell> {
        let env = BTreeMap::from([
            ("PS1".to_owned(), "$ ".to_owned()),
            ("HISTFILE".to_owned(), "/dev/null".to_owned()),
        ]);
        let request = CreateTerminal {
            command: ["bash", "--norc", "-i"].map(str::to_owned).to_vec(),
            cols: 250,
            rows: 50,
            cwd: None,
            env,
        };
        let info = client.create_terminal(&request).await.context("creating a terminal")?;
        let (input, mut output) =
            client.attach(&info.id, AttachQuery::default()).await.context("attaching")?;
        settle(&mut output, true).await.context("waiting for the first prompt")?;
        Ok(Shell { id: info.id, input, output })
    }

    async fn type_bytes(&self, bytes: &[u8]) -> Result<()> {
        let frame = AttachUp::Input(ByteBuf::from(bytes.to_vec()));
        self.input.send(&frame).await.context("sending input")
    }

    async fn kill(self, client: &Client) -> Result<()> {
        drop(self.input);
        client.kill_terminal(&self.id).await.context("killing the terminal")?;
        Ok(())
    }
}

/// Reads output until none came for [`SETTLE`] (after at least one output frame when
/// `first_output`).
async fn settle(output: &mut FrameStream<AttachDown>, first_output: bool) -> Result<()> {
    let deadline = Instant::now() + WAIT;
    let mut seen = !first_output;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        ensure!(!left.is_zero(), "output did not settle within {WAIT:?}");
        let wait = if seen { SETTLE.min(left) } else { left };
        match tokio::time::timeout(wait, output.next()).await {
            Err(_) if seen => return Ok(()),
            Err(_) => bail!("no output within {WAIT:?}"),
            Ok(frame) => match frame.context("reading the attach stream")? {
                Some(AttachDown::Output { .. }) => seen = true,
                Some(AttachDown::Exit(status)) => bail!("the shell exited: {status:?}"),
                Some(AttachDown::Error(message)) => bail!("attach error: {message}"),
                None => bail!("the attach stream ended"),
                Some(_) => {}
            },
        }
    }
}

async fn keystroke_rtt(client: &Client) -> Result<Vec<Duration>> {
    let mut shell = Shell::start(client).await?;
    let mut samples = Vec::with_capacity(KEYS);
    for i in 0..KEYS {
        if i > 0 && i % KEYS_PER_LINE == 0 {
            shell.type_bytes(b"\x15").await?;
            settle(&mut shell.output, false).await?;
        }
        let key = b'a' + (i % 26) as u8;
        let start = Instant::now();
        shell.type_bytes(&[key]).await?;
        let echoed = async {
            loop {
                match shell.output.next().await.context("reading the attach stream")? {
                    Some(AttachDown::Output { data, .. }) if data.contains(&key) => return Ok(()),
                    Some(AttachDown::Output { .. } | AttachDown::Resized(_)) => {}
                    Some(AttachDown::Missed { from, to }) => bail!("missed output {from}..{to}"),
                    Some(other) => bail!("unexpected frame {other:?}"),
                    None => bail!("the attach stream ended"),
                }
            }
        };
        tokio::time::timeout(WAIT, echoed)
            .await
            .with_context(|| format!("no echo of key {i} within {WAIT:?}"))??;
        samples.push(start.elapsed());
    }
    shell.kill(client).await?;
    Ok(samples)
}

async fn port_event_latency(client: &Client) -> Result<Vec<Duration>> {
    let mut events = client.port_events().await.context("subscribing to port events")?;
    match tokio::time::timeout(WAIT, events.next()).await.context("no port snapshot")?? {
        Some(PortEvent::Snapshot(_)) => {}
        other => bail!("expected a snapshot first, got {other:?}"),
    }
    let mut samples = Vec::with_capacity(PORT_ROUNDS);
    for round in 0..PORT_ROUNDS {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding a port")?;
        let start = Instant::now();
        let port = listener.local_addr()?.port();
        wait_port_event(&mut events, port, true).await?;
        samples.push(start.elapsed());
        drop(listener);
        wait_port_event(&mut events, port, false).await?;
        // The closed event comes right after a poll of the watcher: without a pause every
        // round would bind at the same phase of the poll and measure one point of it.
        tokio::time::sleep(Duration::from_millis((round as u64 * 37) % 100)).await;
    }
    Ok(samples)
}

/// Waits until `port` is reported open (`open`) or closed.
async fn wait_port_event(events: &mut FrameStream<PortEvent>, port: u16, open: bool) -> Result<()> {
    let wait = async {
        loop {
            let event = events.next().await.context("reading port events")?;
            let done = match event {
                Some(PortEvent::Opened(listener)) => open && listener.port == port,
                Some(PortEvent::Closed { port: closed, .. }) => !open && closed == port,
                Some(PortEvent::Snapshot(listeners)) => {
                    eprintln!("bench:   port events fell behind (fresh snapshot)");
                    listeners.iter().any(|l| l.port == port) == open
                }
                None => bail!("the port event stream ended"),
            };
            if done {
                return Ok(());
            }
        }
    };
    let what = if open { "opened" } else { "closed" };
    tokio::time::timeout(WAIT, wait)
        .await
        .with_context(|| format!("port {port} not reported {what} within {WAIT:?}"))?
}

/// Finds [`MARKER`] in a byte stream fed in chunks.
#[derive(Default)]
struct MarkerScan {
    tail: Vec<u8>,
}

impl MarkerScan {
    fn feed(&mut self, data: &[u8]) -> bool {
        let keep = MARKER.len() - 1;
        let mut joint = std::mem::take(&mut self.tail);
        joint.extend_from_slice(&data[..data.len().min(keep)]);
        if contains_marker(&joint) || contains_marker(data) {
            return true;
        }
        if data.len() >= keep {
            joint.clear();
            joint.extend_from_slice(&data[data.len() - keep..]);
        } else {
            joint.drain(..joint.len().saturating_sub(keep));
        }
        self.tail = joint;
        false
    }
}

fn contains_marker(haystack: &[u8]) -> bool {
    haystack.iter().enumerate().any(|(i, &b)| b == MARKER[0] && haystack[i..].starts_with(MARKER))
}

/// The ceiling: the command's output read straight from a pty in this process.
fn raw_pty_throughput() -> Result<(u64, Duration)> {
    use portable_pty::{CommandBuilder, PtySize, native_pty_system};
    let pair = native_pty_system()
        .openpty(PtySize { rows: 50, cols: 250, pixel_width: 0, pixel_height: 0 })
        .context("opening a pty")?;
    let mut command = CommandBuilder::new("bash");
    command.args(["--norc", "-c", PTY_COMMAND]);
    let mut reader = pair.master.try_clone_reader().context("pty reader")?;
    let start = Instant::now();
    let mut child = pair.slave.spawn_command(command).context("starting bash")?;
    drop(pair.slave);
    let mut buf = vec![0u8; 64 << 10];
    let mut scan = MarkerScan::default();
    let mut bytes = 0u64;
    loop {
        let n = std::io::Read::read(&mut reader, &mut buf).context("reading the pty")?;
        ensure!(n > 0, "the pty closed before the marker ({bytes} bytes)");
        bytes += n as u64;
        if scan.feed(&buf[..n]) {
            break;
        }
    }
    let elapsed = start.elapsed();
    child.wait().context("waiting for bash")?;
    drop(pair.master);
    Ok((bytes, elapsed))
}

/// What one attacher saw of the command's output.
struct Seen {
    bytes: u64,
    missed: u64,
    missed_frames: u64,
    at: Instant,
}

async fn watch_output(mut output: FrameStream<AttachDown>, start_offset: u64) -> Result<Seen> {
    let mut scan = MarkerScan::default();
    let (mut bytes, mut missed, mut missed_frames) = (0u64, 0u64, 0u64);
    let read = async {
        loop {
            match output.next().await.context("reading the attach stream")? {
                Some(AttachDown::Output { offset, data }) => {
                    if offset < start_offset {
                        continue;
                    }
                    bytes += data.len() as u64;
                    if scan.feed(&data) {
                        return Ok(Instant::now());
                    }
                }
                Some(AttachDown::Missed { from, to }) => {
                    missed += to - from;
                    missed_frames += 1;
                }
                Some(AttachDown::Attached { .. } | AttachDown::Resized(_)) => {}
                Some(other) => bail!("unexpected frame {other:?}"),
                None => bail!("the attach stream ended"),
            }
        }
    };
    let at = tokio::time::timeout(BULK_WAIT, read).await.with_context(|| {
        format!("no marker within {BULK_WAIT:?} ({bytes} bytes, {missed} missed)")
    })??;
    Ok(Seen { bytes, missed, missed_frames, at })
}

/// Types the command in a shell watched by `attachers` (one writer, the rest viewers): mean
/// bytes an attacher received, and the time until the last one saw the marker.
async fn pty_throughput(client: &Client, attachers: usize) -> Result<(u64, Duration)> {
    let Shell { id, input, output } = Shell::start(client).await?;
    let start_offset = client.terminal(&id).await.context("terminal info")?.end_offset;
    let mut tasks = vec![tokio::spawn(watch_output(output, start_offset))];
    // Viewers keep their (unused) input streams open for as long as the writer's.
    let mut viewer_inputs = Vec::new();
    for _ in 1..attachers {
        let query = AttachQuery { role: Role::Viewer, offset: Some(start_offset) };
        let (viewer_input, viewer_output) =
            client.attach(&id, query).await.context("attaching a viewer")?;
        viewer_inputs.push(viewer_input);
        tasks.push(tokio::spawn(watch_output(viewer_output, start_offset)));
    }
    let command = format!("{PTY_COMMAND}\r");
    let start = Instant::now();
    input
        .send(&AttachUp::Input(ByteBuf::from(command.into_bytes())))
        .await
        .context("typing the command")?;
    let mut seen = Vec::new();
    for task in tasks {
        seen.push(task.await.context("attacher task")??);
    }
    let last = seen.iter().map(|s| s.at).max().unwrap_or(start);
    let elapsed = last.duration_since(start);
    let total: u64 = seen.iter().map(|s| s.bytes).sum();
    let mean = total / seen.len().max(1) as u64;
    for (i, s) in seen.iter().enumerate() {
        let role = if i == 0 { "writer" } else { "viewer" };
        let missed = if s.missed > 0 {
            format!(", MISSED {} bytes in {} Missed frames", s.missed, s.missed_frames)
        } else {
            String::new()
        };
        eprintln!(
            "bench:   attacher {i} ({role}): {} bytes, marker after {:.2?}{missed}",
            s.bytes,
            s.at.duration_since(start)
        );
    }
    drop((input, viewer_inputs));
    client.kill_terminal(&id).await.context("killing the terminal")?;
    Ok((mean, elapsed))
}

/// A TCP server that writes [`BULK_BYTES`] on every connection, then closes it.
async fn bulk_server() -> Result<u16> {
    let listener =
        tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding the bulk server")?;
    let port = listener.local_addr()?.port();
    let chunk = Bytes::from(vec![0x5au8; 1 << 20]);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let chunk = chunk.clone();
            tokio::spawn(async move {
                for _ in 0..BULK_BYTES / chunk.len() {
                    if socket.write_all(&chunk).await.is_err() {
                        return;
                    }
                }
                let _ = socket.shutdown().await;
            });
        }
    });
    Ok(port)
}

/// A minimal HTTP/1.1 server: reads a request head, answers `ok`, closes.
async fn http_server() -> Result<u16> {
    let listener =
        tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding the http server")?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = socket.set_nodelay(true);
                let mut head = Vec::with_capacity(1024);
                let mut buf = vec![0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                if socket.write_all(HTTP_RESPONSE).await.is_ok() {
                    let _ = socket.shutdown().await;
                }
            });
        }
    });
    Ok(port)
}

/// Waits until the agent lists `port`.
async fn wait_for_port(client: &Client, port: u16) -> Result<()> {
    let deadline = Instant::now() + WAIT;
    loop {
        let list = client.ports().await.context("listing ports")?;
        if list.listeners.iter().any(|l| l.port == port) {
            return Ok(());
        }
        ensure!(Instant::now() < deadline, "the agent did not list port {port} within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn tunnel_download(client: &Client, port: u16) -> Result<Duration> {
    let start = Instant::now();
    let (_to_port, mut body) = client.tunnel(port).await.context("opening a tunnel")?;
    let mut bytes = 0usize;
    let read = async {
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.context("reading the tunnel")?.into_data() {
                bytes += data.len();
            }
        }
        anyhow::Ok(())
    };
    tokio::time::timeout(BULK_WAIT, read).await.with_context(|| {
        format!("tunnel download not done within {BULK_WAIT:?} ({bytes} bytes)")
    })??;
    let elapsed = start.elapsed();
    ensure!(bytes == BULK_BYTES, "the tunnel delivered {bytes} of {BULK_BYTES} bytes");
    Ok(elapsed)
}

async fn direct_download(port: u16) -> Result<Duration> {
    let start = Instant::now();
    let mut socket =
        tokio::net::TcpStream::connect(("127.0.0.1", port)).await.context("connecting")?;
    let mut buf = vec![0u8; 256 << 10];
    let mut bytes = 0usize;
    loop {
        let n = socket.read(&mut buf).await.context("reading")?;
        if n == 0 {
            break;
        }
        bytes += n;
    }
    let elapsed = start.elapsed();
    ensure!(bytes == BULK_BYTES, "the direct connection delivered {bytes} of {BULK_BYTES} bytes");
    Ok(elapsed)
}

fn check_response(response: &[u8]) -> Result<()> {
    ensure!(
        response == HTTP_RESPONSE,
        "unexpected response {:?}",
        String::from_utf8_lossy(response)
    );
    Ok(())
}

async fn tunnel_request(client: &Client, port: u16) -> Result<Duration> {
    let start = Instant::now();
    let exchange = async {
        let (to_port, body) = client.tunnel(port).await.context("opening a tunnel")?;
        to_port
            .send(Bytes::from_static(HTTP_REQUEST))
            .await
            .map_err(|_| anyhow::anyhow!("the tunnel's request stream closed"))?;
        let response = body.collect().await.context("reading the tunnel")?.to_bytes();
        drop(to_port);
        anyhow::Ok(response)
    };
    let response =
        tokio::time::timeout(WAIT, exchange).await.context("tunnel request timed out")??;
    let elapsed = start.elapsed();
    check_response(&response)?;
    Ok(elapsed)
}

async fn direct_request(port: u16) -> Result<Duration> {
    let start = Instant::now();
    let exchange = async {
        let mut socket =
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.context("connecting")?;
        socket.set_nodelay(true)?;
        socket.write_all(HTTP_REQUEST).await.context("sending the request")?;
        let mut response = Vec::new();
        socket.read_to_end(&mut response).await.context("reading the response")?;
        anyhow::Ok(response)
    };
    let response =
        tokio::time::timeout(WAIT, exchange).await.context("direct request timed out")??;
    let elapsed = start.elapsed();
    check_response(&response)?;
    Ok(elapsed)
}
