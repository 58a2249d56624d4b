//! The terminal workloads, the same for Flint on each driver D and for terminado
//! (`anchors.rs` runs them on a bare PTY too):
//!
//! - `ws.keystroke_rtt.D`: a key typed over the terminal's websocket to its echo arriving
//!   there ([`KEYS`] keys at a bash prompt, the line cleared every [`KEYS_PER_LINE`]);
//! - `terminal.output_1.D`: one viewer of a shell that `cat`s [`FLOOD_BYTES`] of text (see
//!   [`FLOOD_SETUP`]): the bytes the viewer got from the command's Enter to the end marker
//!   arriving, over that time, in MB/s; the median of [`FLOODS`] runs;
//! - `terminal.output_5.D`: five viewers of the same shell, one of them typing; each must
//!   get every byte (Flint's offsets are checked to be contiguous), and the rate is the
//!   bytes over the time until the **last** of the five saw the marker: what each viewer
//!   got per second.
//!
//! - `terminal.output_1_deflate.D`: `output_1` to a viewer that offers permessage-deflate,
//!   as browsers do; `terminal.wire_ratio.D` the output bytes over the bytes its
//!   connection carried (base64 of random bytes: little to gain);
//! - `terminal.log_1.D` and `terminal.log_1_deflate.D`: the same with a build log's text
//!   ([`LOG_SETUP`]: repetitive, as real logs are) to a plain and a deflating viewer, and
//!   `terminal.log_wire_ratio.D`;
//! - `anchor.sandbox_pty.output_1.D`: the same flood read from a pty inside D's sandbox by
//!   a loop that does nothing else (Python, no Flint), and
//!   `anchor.sandbox_pty.keystroke_rtt.D` the same keys typed there: the sandbox's own
//!   ceilings.
//!
//! Flint's sessions are the test image's, made without network; each workload gets a
//! terminal of its own.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use proto::api::TerminalServerMessage;
use tokio_tungstenite::tungstenite::Message;

use super::report::Metric;
use super::server::Server;
use super::{SETTLE, WAIT, Ws, name};

/// Keystrokes timed per shell.
pub const KEYS: usize = 500;
/// Keys typed between two unmeasured Ctrl-U that clear the line.
pub const KEYS_PER_LINE: usize = 100;
/// The longest a flood may take (64 MiB at 1 MB/s).
const FLOOD_WAIT: Duration = Duration::from_secs(120);
/// Floods per workload; the median rate counts.
pub const FLOODS: usize = 3;
/// Viewers of `output_5`.
pub const VIEWERS: usize = 5;
/// Random bytes behind the flood: base64 makes them 64 MiB of text.
const FLOOD_RANDOM_BYTES: u64 = 48 << 20;
/// The flood's size: 76 base64 characters and a newline per line (the pty adds a `\r`).
pub const FLOOD_BYTES: u64 = FLOOD_RANDOM_BYTES / 3 * 4 * 77 / 76;
/// Makes the flood file `$1`: random bytes as base64 in 76-column lines. Text (what a build
/// log or a test run prints: printable lines, a newline each 77 bytes, nothing for the
/// terminal to interpret), and it cannot be compressed much, so no transport can flatter
/// it; generated before the timing starts, so the timed command is a `cat` and the
/// figure is the terminal's path, not the generator's.
pub const FLOOD_SETUP: &str = "head -c 50331648 /dev/urandom | base64 -w 76 > \"$1\"";
/// Makes the log file `$1`: 900,000 lines as cargo prints them (about 70 MB), text that
/// compresses as real build and test output does.
pub const LOG_SETUP: &str = "seq 900000 | sed 's|.*|   Compiling flint-crate-& v0.1.0 (/workspace/crates/flint-crate-&)|' > \"$1\"";
/// The line the viewers wait for, printed after the flood. The typed command spells it
/// differently (`$((6*7))`) so that its echo does not end the wait, and base64 has no `_`.
pub const MARKER: &[u8] = b"FLOOD_42_END";

/// The command typed to flood a terminal with `file`.
pub fn flood_command(file: &str) -> String {
    format!("cat {file}; echo FLOOD_$((6*7))_END\r")
}

/// A terminal client: keys in, output out.
pub trait Terminal: Send + 'static {
    /// Types `bytes`.
    fn send(&mut self, bytes: &[u8]) -> impl Future<Output = Result<()>> + Send;
    /// The next piece of output.
    fn output(&mut self) -> impl Future<Output = Result<Bytes>> + Send;
}

/// A Flint terminal websocket; checks that output offsets follow each other.
pub struct FlintTerminal {
    ws: Ws,
    /// The offset the next output must start at, once known.
    next: Option<u64>,
}

impl FlintTerminal {
    pub fn new(ws: Ws) -> FlintTerminal {
        FlintTerminal { ws, next: None }
    }

    /// The websocket back, and the offset the next output must start at.
    pub fn into_parts(self) -> (Ws, Option<u64>) {
        (self.ws, self.next)
    }
}

impl Terminal for FlintTerminal {
    async fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.ws.send(Message::Binary(Bytes::copy_from_slice(bytes))).await.context("sending keys")
    }

    async fn output(&mut self) -> Result<Bytes> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Binary(bytes))) => return output_message(&bytes, &mut self.next),
                Some(Ok(Message::Text(text))) => {
                    match serde_json::from_str(&text).with_context(|| format!("message {text}"))? {
                        TerminalServerMessage::Attached { offset, .. } => self.next = Some(offset),
                        TerminalServerMessage::Resized { .. } => {}
                        TerminalServerMessage::Missed { from, to } => {
                            bail!("missed output {from}..{to}")
                        }
                        TerminalServerMessage::Error { message } => {
                            bail!("terminal error: {message}")
                        }
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
}

/// The output of a binary terminal message (an 8-byte offset, then the bytes), checked to
/// begin where the one before ended (`next`, moved past it).
fn output_message(bytes: &Bytes, next: &mut Option<u64>) -> Result<Bytes> {
    let (head, _) = bytes
        .split_first_chunk::<{ proto::api::OUTPUT_OFFSET_BYTES }>()
        .with_context(|| format!("an output message of {} bytes", bytes.len()))?;
    let offset = u64::from_be_bytes(*head);
    let output = bytes.slice(proto::api::OUTPUT_OFFSET_BYTES..);
    if let Some(next) = *next {
        ensure!(offset == next, "output jumped from offset {next} to {offset}");
    }
    *next = Some(offset + output.len() as u64);
    Ok(output)
}

/// A Flint terminal websocket that offers permessage-deflate; counts the output it got
/// and the bytes its connection carried.
pub struct DeflateTerminal {
    ws: super::client::DeflateWs,
    next: Option<u64>,
    /// Output bytes received.
    output: Arc<AtomicU64>,
}

impl Terminal for DeflateTerminal {
    async fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.ws.send(yawc::Frame::binary(bytes.to_vec())).await.context("sending keys")
    }

    async fn output(&mut self) -> Result<Bytes> {
        loop {
            let frame = self.ws.next().await.context("the websocket ended")?;
            match frame.opcode() {
                yawc::OpCode::Binary => {
                    let output = output_message(&frame.into_payload(), &mut self.next)?;
                    self.output.fetch_add(output.len() as u64, Ordering::Relaxed);
                    return Ok(output);
                }
                yawc::OpCode::Text => {
                    let message = serde_json::from_slice(frame.payload()).context("a message")?;
                    match message {
                        TerminalServerMessage::Attached { offset, .. } => self.next = Some(offset),
                        TerminalServerMessage::Resized { .. } => {}
                        other => bail!("terminal message {other:?}"),
                    }
                }
                yawc::OpCode::Close => bail!("the websocket closed"),
                _ => {}
            }
        }
    }
}

/// `output_1` workloads through a deflating viewer and with a build log: each flood's metric
/// and, for the deflating ones, the output over the wire bytes.
async fn deflate_metrics(
    server: &Server,
    id: &str,
    driver: &str,
    wanted: &dyn Fn(&str) -> bool,
) -> Result<Vec<Metric>> {
    let floods_of = [
        ("/tmp/flood.txt", FLOOD_SETUP, "output_1_deflate", Some("wire_ratio")),
        ("/tmp/log.txt", LOG_SETUP, "log_1", None),
        ("/tmp/log.txt", LOG_SETUP, "log_1_deflate", Some("log_wire_ratio")),
    ];
    let mut metrics = Vec::new();
    for (file, setup, rate, ratio) in floods_of {
        let rate = name(format!("terminal.{rate}.{driver}"));
        let ratio = ratio.map(|ratio| name(format!("terminal.{ratio}.{driver}")));
        if !wanted(rate) && !ratio.is_some_and(wanted) {
            continue;
        }
        let test = format!("test -s {file} || {{ {setup}; }}");
        let reply = server.exec(id, &["bash", "-c", &test, "flood", file]).await?;
        ensure!(reply["exit_code"] == 0, "making {file}: {reply}");
        eprintln!("bench: {rate} ({FLOODS} floods of {file})");
        let tid = server.create_terminal(id).await?;
        let command = flood_command(file);
        let Some(ratio) = ratio else {
            let mut term = FlintTerminal::new(server.attach(id, &tid).await?);
            read_until_prompt(&mut term).await?;
            metrics.push(floods(rate, vec![term], &command).await?);
            continue;
        };
        let (ws, wire) = server.attach_deflate(id, &tid).await?;
        let output = Arc::new(AtomicU64::new(0));
        let mut term = DeflateTerminal { ws, next: None, output: output.clone() };
        read_until_prompt(&mut term).await?;
        metrics.push(floods(rate, vec![term], &command).await?);
        let (output, wire) = (output.load(Ordering::Relaxed), wire.load(Ordering::Relaxed));
        eprintln!("bench:   {output} bytes of output took {wire} bytes on the wire");
        metrics.push(Metric::value(ratio, "x", output as f64 / wire.max(1) as f64));
    }
    Ok(metrics)
}

/// Flint's terminal metrics of `driver` that `wanted` asks for, on `server`.
pub async fn measure(
    server: &Server,
    driver: &str,
    wanted: &dyn Fn(&str) -> bool,
) -> Result<Vec<Metric>> {
    let keystroke = name(format!("ws.keystroke_rtt.{driver}"));
    let output_1 = name(format!("terminal.output_1.{driver}"));
    let output_5 = name(format!("terminal.output_5.{driver}"));
    let mut metrics = Vec::new();
    let deflate = ["output_1_deflate", "wire_ratio", "log_1", "log_1_deflate", "log_wire_ratio"]
        .map(|m| format!("terminal.{m}.{driver}"));
    let sandbox_pty = name(sandbox_pty_name(driver));
    let anchors = [sandbox_pty, name(sandbox_keys_name(driver))];
    if ![keystroke, output_1, output_5].iter().chain(&anchors).any(|m| wanted(m))
        && !deflate.iter().any(|m| wanted(m))
    {
        return Ok(metrics);
    }
    let id = server.create_session().await?;
    if wanted(keystroke) {
        eprintln!("bench: {keystroke} ({KEYS} keys)");
        let mut term = FlintTerminal::new(server.open_terminal(&id).await?);
        read_until_prompt(&mut term).await?;
        metrics.push(Metric::ms(keystroke, &keystroke_rtt(&mut term).await?));
    }
    let file = "/tmp/flood.txt";
    if wanted(output_1) || wanted(output_5) || wanted(sandbox_pty) {
        let reply = server.exec(&id, &["bash", "-c", FLOOD_SETUP, "flood", file]).await?;
        ensure!(reply["exit_code"] == 0, "making the flood file: {reply}");
    }
    for (metric, viewers) in [(output_1, 1), (output_5, VIEWERS)] {
        if !wanted(metric) {
            continue;
        }
        eprintln!("bench: {metric} ({FLOODS} floods of {FLOOD_BYTES} bytes, {viewers} viewers)");
        let tid = server.create_terminal(&id).await?;
        let mut terms = Vec::with_capacity(viewers);
        for _ in 0..viewers {
            terms.push(FlintTerminal::new(server.attach(&id, &tid).await?));
        }
        read_until_prompt(&mut terms[0]).await?;
        metrics.push(floods(metric, terms, &flood_command(file)).await?);
    }
    if wanted(sandbox_pty) {
        metrics.push(sandbox_pty_rate(server, &id, sandbox_pty, file).await?);
    }
    if wanted(anchors[1]) {
        metrics.push(sandbox_keys(server, &id, anchors[1]).await?);
    }
    metrics.extend(deflate_metrics(server, &id, driver, wanted).await?);
    server.delete_session(&id).await?;
    Ok(metrics)
}

/// `anchor.sandbox_pty.output_1.D`: the flood `cat` into a fresh pty inside `driver`'s
/// sandbox and read from its master by a loop that does nothing else, without Flint: the
/// ceiling of any terminal in that sandbox (under gVisor, its line discipline's).
pub fn sandbox_pty_name(driver: &str) -> String {
    format!("anchor.sandbox_pty.output_1.{driver}")
}

/// `anchor.sandbox_pty.keystroke_rtt.D`: [`KEYS`] keys written to the master of a pty in
/// the sandbox whose `bash --noprofile --norc -i` echoes them, as at Flint's prompt.
pub fn sandbox_keys_name(driver: &str) -> String {
    format!("anchor.sandbox_pty.keystroke_rtt.{driver}")
}

/// In a fresh pty (the default termios, as a shell's: `OPOST` and `ONLCR` on): with
/// `output FILE N`, reads `cat FILE` from the master N times and prints the median MB/s;
/// with `keys N PER_LINE`, types N keys at bash's prompt (the line cleared every PER_LINE)
/// and prints each echo's round trip in microseconds, one a line.
const SANDBOX_PTY: &str = r#"
import os, pty, select, subprocess, sys, time

def output(path, floods):
    rates = []
    for _ in range(floods):
        master, replica = pty.openpty()
        start = time.monotonic()
        cat = subprocess.Popen(["cat", path], stdin=replica, stdout=replica, stderr=replica)
        os.close(replica)
        got = 0
        while True:
            try:
                piece = os.read(master, 65536)
            except OSError:
                break
            if not piece:
                break
            got += len(piece)
        cat.wait()
        os.close(master)
        rates.append(got / 1e6 / (time.monotonic() - start))
        print(f"{got} bytes: {rates[-1]:.1f} MB/s", file=sys.stderr)
    rates.sort()
    print(rates[len(rates) // 2])

def until(master, needle):
    seen = b""
    while needle not in seen:
        select.select([master], [], [], 10)
        seen += os.read(master, 65536)

def keys(count, per_line):
    pid, master = pty.fork()
    if pid == 0:
        os.environ["PS1"] = "$ "
        os.execvp("bash", ["bash", "--noprofile", "--norc", "-i"])
    until(master, b"$ ")
    for i in range(count):
        if i and i % per_line == 0:
            os.write(master, b"")
            time.sleep(0.05)
            while select.select([master], [], [], 0)[0]:
                os.read(master, 65536)
        key = bytes([ord("a") + i % 26])
        start = time.monotonic()
        os.write(master, key)
        until(master, key)
        print(round((time.monotonic() - start) * 1e6))

if sys.argv[1] == "output":
    output(sys.argv[2], int(sys.argv[3]))
else:
    keys(int(sys.argv[2]), int(sys.argv[3]))
"#;

/// Runs [`SANDBOX_PTY`] with `args` in session `id`; its standard output.
async fn sandbox_pty(server: &Server, id: &str, args: &[&str]) -> Result<String> {
    let argv: Vec<&str> = ["python3", "-c", SANDBOX_PTY].iter().chain(args).copied().collect();
    let reply = server.exec(id, &argv).await?;
    ensure!(reply["exit_code"] == 0, "the sandbox's pty anchor: {reply}");
    Ok(reply["stdout"].as_str().context("the anchor's output")?.to_owned())
}

/// `anchor.sandbox_pty.output_1.D` on the flood `file` in session `id`.
async fn sandbox_pty_rate(
    server: &Server,
    id: &str,
    metric: &'static str,
    file: &str,
) -> Result<Metric> {
    eprintln!("bench: {metric} ({FLOODS} floods of {file} read by python3 inside the sandbox)");
    let stdout = sandbox_pty(server, id, &["output", file, &FLOODS.to_string()]).await?;
    let rate: f64 = stdout.trim().parse().with_context(|| format!("the reader said {stdout:?}"))?;
    Ok(Metric::value(metric, "MB/s", rate))
}

/// `anchor.sandbox_pty.keystroke_rtt.D` in session `id`.
async fn sandbox_keys(server: &Server, id: &str, metric: &'static str) -> Result<Metric> {
    eprintln!("bench: {metric} ({KEYS} keys typed by python3 inside the sandbox)");
    let stdout =
        sandbox_pty(server, id, &["keys", &KEYS.to_string(), &KEYS_PER_LINE.to_string()]).await?;
    let samples = stdout
        .lines()
        .map(|l| l.trim().parse::<u64>().map(Duration::from_micros))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("the typist said {stdout:?}"))?;
    ensure!(samples.len() == KEYS, "{} round trips of {KEYS}", samples.len());
    Ok(Metric::ms(metric, &samples))
}

/// [`FLOODS`] floods of `terms` (the first types); the median rate as `metric`.
pub async fn floods<T: Terminal>(
    metric: &'static str,
    mut terms: Vec<T>,
    command: &str,
) -> Result<Metric> {
    let mut rates = Vec::with_capacity(FLOODS);
    for _ in 0..FLOODS {
        let (back, bytes, elapsed) = flood(terms, command).await?;
        terms = back;
        let rate = bytes as f64 / 1e6 / elapsed.as_secs_f64();
        eprintln!("bench:   {bytes} bytes in {elapsed:.2?} to each viewer: {rate:.1} MB/s");
        ensure!(bytes >= FLOOD_BYTES, "{bytes} bytes arrived, less than the {FLOOD_BYTES} sent");
        rates.push(rate);
    }
    rates.sort_by(f64::total_cmp);
    Ok(Metric::value(metric, "MB/s", rates[rates.len() / 2]))
}

/// Keystroke round trips at a prompt.
pub async fn keystroke_rtt<T: Terminal>(term: &mut T) -> Result<Vec<Duration>> {
    let mut samples = Vec::with_capacity(KEYS);
    for i in 0..KEYS {
        if i > 0 && i % KEYS_PER_LINE == 0 {
            term.send(b"\x15").await?;
            settle(term).await?;
        }
        let key = b'a' + (i % 26) as u8;
        let start = Instant::now();
        term.send(&[key]).await?;
        tokio::time::timeout(WAIT, until_echo(term, key))
            .await
            .with_context(|| format!("no echo of key {i} within {WAIT:?}"))??;
        samples.push(start.elapsed());
    }
    term.send(b"\x15").await?;
    settle(term).await?;
    Ok(samples)
}

/// Reads output until it holds `key` (its echo).
pub async fn until_echo<T: Terminal>(term: &mut T, key: u8) -> Result<()> {
    loop {
        if term.output().await?.contains(&key) {
            return Ok(());
        }
    }
}

/// One flood: every terminal quiet first, then the first types `command` while all read
/// until the marker. The terminals back, the bytes the slowest viewer got, and the time
/// from the Enter until the last viewer saw the marker.
async fn flood<T: Terminal>(mut terms: Vec<T>, command: &str) -> Result<(Vec<T>, u64, Duration)> {
    for term in &mut terms {
        settle(term).await?;
    }
    let (started, start) = tokio::sync::oneshot::channel();
    let mut started = Some(started);
    let mut tasks = Vec::with_capacity(terms.len());
    for mut term in terms {
        let typist = started.take().map(|started| (started, command.as_bytes().to_vec()));
        tasks.push(tokio::spawn(async move {
            if let Some((started, command)) = typist {
                let _ = started.send(Instant::now());
                term.send(&command).await?;
            }
            let read = async {
                let mut scan = MarkerScan::default();
                let mut bytes = 0u64;
                loop {
                    let output = term.output().await?;
                    bytes += output.len() as u64;
                    if scan.feed(&output) {
                        return anyhow::Ok((term, bytes, Instant::now()));
                    }
                }
            };
            tokio::time::timeout(FLOOD_WAIT, read)
                .await
                .with_context(|| format!("the flood did not end within {FLOOD_WAIT:?}"))?
        }));
    }
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await.context("a viewer's task"));
    }
    let start = start.await.context("the typist did not start")?;
    let mut back = Vec::with_capacity(results.len());
    let (mut least, mut slowest) = (u64::MAX, Duration::ZERO);
    for result in results {
        let (term, bytes, end) = result??;
        least = least.min(bytes);
        slowest = slowest.max(end - start);
        back.push(term);
    }
    Ok((back, least, slowest))
}

/// Finds [`MARKER`] in a stream of pieces, also across two pieces.
#[derive(Default)]
pub struct MarkerScan {
    /// The end of what came so far, shorter than the marker.
    tail: Vec<u8>,
}

impl MarkerScan {
    /// Whether the marker has come, `piece` included.
    pub fn feed(&mut self, piece: &[u8]) -> bool {
        let keep = MARKER.len() - 1;
        let mut seam = std::mem::take(&mut self.tail);
        let seam_len = seam.len();
        seam.extend_from_slice(&piece[..piece.len().min(keep)]);
        if contains(&seam, MARKER) || contains(piece, MARKER) {
            return true;
        }
        // What the next piece may complete: the last `keep` bytes of all so far.
        if piece.len() >= keep {
            seam.clear();
            seam.extend_from_slice(&piece[piece.len() - keep..]);
        } else {
            seam.truncate(seam_len);
            seam.extend_from_slice(piece);
            seam.drain(..seam.len().saturating_sub(keep));
        }
        self.tail = seam;
        false
    }
}

/// Whether `needle` occurs in `haystack`: a scan for its first byte, then a compare.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, _)) = needle.split_first() else { return true };
    haystack.iter().enumerate().any(|(at, &b)| {
        b == first && haystack.get(at..at + needle.len()).is_some_and(|w| w == needle)
    })
}

/// Reads output until it ends in a shell prompt (`# ` as root, `$ ` otherwise, then, in
/// Flint's images, the invisible input-start mark OSC 133 `B`); returns it.
pub async fn read_until_prompt<T: Terminal>(term: &mut T) -> Result<String> {
    let mut text = String::new();
    let read = async {
        loop {
            let shown = text.trim_end_matches("\x1b]133;B\x07");
            if shown.ends_with("# ") || shown.ends_with("$ ") {
                break;
            }
            text.push_str(&String::from_utf8_lossy(&term.output().await?));
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
pub async fn settle<T: Terminal>(term: &mut T) -> Result<()> {
    let deadline = Instant::now() + WAIT;
    loop {
        ensure!(Instant::now() < deadline, "output did not settle within {WAIT:?}");
        match tokio::time::timeout(SETTLE, term.output()).await {
            Err(_) => return Ok(()),
            Ok(result) => drop(result?),
        }
    }
}
