//! The terminal anchors: Flint's terminal workloads (`terminal.rs`) on the host, without
//! Flint, in the same run, so that ratios come from one machine at one time. Each runs
//! `bash --noprofile --norc -i` with `PS1='$ '` in a pty, flooding it with a file made by
//! the same [`FLOOD_SETUP`].
//!
//! - `anchor.pty.*`: a bare PTY (`portable-pty`), read by one thread. Keystrokes are
//!   written to the master and read back from it; `output_1` counts what that thread reads;
//!   `output_5` has it copy each read into five bounded channels (a `Vec` per reader, as a
//!   server copies into each client's socket), each drained by a reader thread of its own:
//!   the least a terminal server with five viewers must do.
//! - `anchor.terminado.*`: terminado (the Jupyter terminal server; Python, tornado) serving
//!   one shared terminal (`SingleTermManager`) at `/websocket`, driven over its JSON
//!   protocol (`["stdin", "…"]` up, `["stdout", "…"]` down) with tokio-tungstenite. It is
//!   installed from PyPI into a venv under the cache (`~/.cache/flint/tools/terminado-*`,
//!   pinned in [`TERMINADO_REQUIREMENTS`]) the first time.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::AsyncBufReadExt as _;
use tokio_tungstenite::tungstenite::Message;

use super::report::Metric;
use super::terminal::{
    self, FLOOD_BYTES, FLOOD_SETUP, FLOODS, KEYS, KEYS_PER_LINE, Terminal, VIEWERS, flood_command,
};
use super::{SETTLE, WAIT};

/// terminado and what it runs on, pinned.
const TERMINADO_REQUIREMENTS: &str = "terminado==0.18.1\ntornado==6.5.2\nptyprocess==0.7.0\n";

/// terminado on one shared terminal, on a free loopback port it prints.
const TERMINADO_SERVER: &str = r#"
import asyncio, sys
import terminado, tornado.httpserver, tornado.netutil, tornado.web

async def main():
    manager = terminado.SingleTermManager(shell_command=["bash", "--noprofile", "--norc", "-i"])
    app = tornado.web.Application([(r"/websocket", terminado.TermSocket, {"term_manager": manager})])
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    tornado.httpserver.HTTPServer(app).add_sockets(sockets)
    print(sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"#;

/// The anchors' metrics that `wanted` asks for.
pub async fn measure(wanted: &dyn Fn(&str) -> bool) -> Result<Vec<Metric>> {
    let pty = ["anchor.pty.keystroke_rtt", "anchor.pty.output_1", "anchor.pty.output_5"];
    let terminado = [
        "anchor.terminado.keystroke_rtt",
        "anchor.terminado.output_1",
        "anchor.terminado.output_5",
    ];
    let mut metrics = Vec::new();
    if !pty.iter().chain(&terminado).any(|m| wanted(m)) {
        return Ok(metrics);
    }
    let dir = tempfile::tempdir().context("temporary directory")?;
    let file = dir.path().join("flood.txt");
    let made = tokio::process::Command::new("bash")
        .args(["-c", FLOOD_SETUP, "flood"])
        .arg(&file)
        .status()
        .await
        .context("making the flood file")?;
    ensure!(made.success(), "making the flood file: {made}");
    let file = file.to_string_lossy().into_owned();
    if pty.iter().any(|m| wanted(m)) {
        let (dir, file) = (dir.path().to_owned(), file.clone());
        let wanted: Vec<bool> = pty.iter().map(|m| wanted(m)).collect();
        let found = tokio::task::spawn_blocking(move || pty_metrics(&dir, &file, &wanted))
            .await
            .context("the pty anchor's thread")??;
        metrics.extend(found);
    }
    if terminado.iter().any(|m| wanted(m)) {
        metrics.extend(terminado_metrics(dir.path(), &file, wanted).await?);
    }
    Ok(metrics)
}

/// `anchor.pty.*`, each asked for in `wanted` (keystroke, output_1, output_5).
fn pty_metrics(dir: &Path, file: &str, wanted: &[bool]) -> Result<Vec<Metric>> {
    let mut metrics = Vec::new();
    if wanted[0] {
        eprintln!("bench: anchor.pty.keystroke_rtt ({KEYS} keys)");
        let mut shell = PtyShell::start(dir, 1)?;
        let output = shell.outputs.remove(0);
        wait_for_prompt(&output)?;
        let mut samples = Vec::with_capacity(KEYS);
        for i in 0..KEYS {
            if i > 0 && i % KEYS_PER_LINE == 0 {
                shell.send(b"\x15")?;
                drain(&output)?;
            }
            let key = b'a' + (i % 26) as u8;
            let start = Instant::now();
            shell.send(&[key])?;
            loop {
                let piece = output.recv_timeout(WAIT).context("no echo")?;
                if piece.contains(&key) {
                    break;
                }
            }
            samples.push(start.elapsed());
        }
        metrics.push(Metric::ms("anchor.pty.keystroke_rtt", &samples));
    }
    for (metric, viewers, asked) in
        [("anchor.pty.output_1", 1, wanted[1]), ("anchor.pty.output_5", VIEWERS, wanted[2])]
    {
        if !asked {
            continue;
        }
        eprintln!("bench: {metric} ({FLOODS} floods of {FLOOD_BYTES} bytes, {viewers} readers)");
        let mut rates = Vec::with_capacity(FLOODS);
        for _ in 0..FLOODS {
            let mut shell = PtyShell::start(dir, viewers)?;
            for output in &shell.outputs {
                wait_for_prompt(output)?;
            }
            let readers: Vec<_> = std::mem::take(&mut shell.outputs)
                .into_iter()
                .map(|output| std::thread::spawn(move || read_to_marker(&output)))
                .collect();
            let start = Instant::now();
            shell.send(flood_command(file).as_bytes())?;
            let (mut least, mut slowest) = (u64::MAX, Duration::ZERO);
            for reader in readers {
                let joined = reader.join().map_err(|_| anyhow::anyhow!("a reader panicked"));
                let (bytes, end) = joined??;
                least = least.min(bytes);
                slowest = slowest.max(end - start);
            }
            let rate = least as f64 / 1e6 / slowest.as_secs_f64();
            eprintln!("bench:   {least} bytes in {slowest:.2?} to each reader: {rate:.1} MB/s");
            ensure!(least >= FLOOD_BYTES, "{least} bytes arrived, less than {FLOOD_BYTES}");
            rates.push(rate);
        }
        rates.sort_by(f64::total_cmp);
        metrics.push(Metric::value(metric, "MB/s", rates[rates.len() / 2]));
    }
    Ok(metrics)
}

/// A bash in a bare pty; one thread reads the master and copies each read to every output.
struct PtyShell {
    writer: Box<dyn std::io::Write + Send>,
    outputs: Vec<Receiver<Vec<u8>>>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
    _master: Box<dyn portable_pty::MasterPty + Send>,
}

/// Reads a reader may be behind by before the pty's reader waits for it.
const PTY_QUEUE: usize = 64;

impl PtyShell {
    fn start(dir: &Path, outputs: usize) -> Result<PtyShell> {
        let size = portable_pty::PtySize { rows: 24, cols: 80, pixel_width: 0, pixel_height: 0 };
        let pair = portable_pty::native_pty_system().openpty(size).context("openpty")?;
        let mut command = portable_pty::CommandBuilder::new("bash");
        command.args(["--noprofile", "--norc", "-i"]);
        command.env("PS1", "$ ");
        command.env("TERM", "xterm-256color");
        command.cwd(dir);
        let child = pair.slave.spawn_command(command).context("starting bash in a pty")?;
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().context("the pty's reader")?;
        let writer = pair.master.take_writer().context("the pty's writer")?;
        let (senders, outputs): (Vec<SyncSender<Vec<u8>>>, Vec<_>) =
            (0..outputs).map(|_| sync_channel(PTY_QUEUE)).unzip();
        std::thread::spawn(move || {
            let mut buf = vec![0; 64 << 10];
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                for sender in &senders {
                    if sender.send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
            }
        });
        Ok(PtyShell { writer, outputs, child, _master: pair.master })
    }

    fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.writer.write_all(bytes).context("writing to the pty")?;
        self.writer.flush().context("writing to the pty")
    }
}

impl Drop for PtyShell {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads until the output ends in `$ `, then until it is quiet.
fn wait_for_prompt(output: &Receiver<Vec<u8>>) -> Result<()> {
    let mut text = Vec::new();
    let deadline = Instant::now() + WAIT;
    while !text.ends_with(b"$ ") {
        let left = deadline.saturating_duration_since(Instant::now());
        let piece = output.recv_timeout(left).with_context(|| {
            format!("no prompt within {WAIT:?}; saw {:?}", String::from_utf8_lossy(&text))
        })?;
        text.extend_from_slice(&piece);
    }
    drain(output)
}

/// Reads until nothing came for [`SETTLE`].
fn drain(output: &Receiver<Vec<u8>>) -> Result<()> {
    loop {
        match output.recv_timeout(SETTLE) {
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout) => return Ok(()),
            Err(RecvTimeoutError::Disconnected) => bail!("the pty closed"),
        }
    }
}

/// Counts bytes until the marker; the count and when the marker came.
fn read_to_marker(output: &Receiver<Vec<u8>>) -> Result<(u64, Instant)> {
    let mut scan = terminal::MarkerScan::default();
    let mut bytes = 0;
    loop {
        let piece = output.recv_timeout(WAIT).context("the flood stalled")?;
        bytes += piece.len() as u64;
        if scan.feed(&piece) {
            return Ok((bytes, Instant::now()));
        }
    }
}

/// `anchor.terminado.*`, on one terminado server and its one terminal.
async fn terminado_metrics(
    dir: &Path,
    file: &str,
    wanted: &dyn Fn(&str) -> bool,
) -> Result<Vec<Metric>> {
    let python = terminado_python().await?;
    let mut server = tokio::process::Command::new(&python)
        .args(["-c", TERMINADO_SERVER])
        .current_dir(dir)
        .env("PS1", "$ ")
        .env("TERM", "xterm-256color")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting terminado")?;
    let stdout = server.stdout.take().context("terminado's stdout")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let port = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .context("terminado did not start")??
        .context("terminado exited before printing its port")?;
    let url = format!("ws://127.0.0.1:{}/websocket", port.trim());
    eprintln!("bench: terminado on {url}");
    let result = Box::pin(terminado_workloads(&url, file, wanted)).await;
    // SIGTERM ends tornado and its terminal (terminado hangs the shell up on exit).
    if let Some(pid) = server.id() {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).context("a pid")?);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    }
    if tokio::time::timeout(WAIT, server.wait()).await.is_err() {
        let _ = server.kill().await;
    }
    result
}

async fn terminado_workloads(
    url: &str,
    file: &str,
    wanted: &dyn Fn(&str) -> bool,
) -> Result<Vec<Metric>> {
    let mut metrics = Vec::new();
    if wanted("anchor.terminado.keystroke_rtt") {
        eprintln!("bench: anchor.terminado.keystroke_rtt ({KEYS} keys)");
        let mut term = Terminado::connect(url).await?;
        terminal::settle(&mut term).await?;
        term.send(b"\r").await?;
        terminal::read_until_prompt(&mut term).await?;
        let samples = terminal::keystroke_rtt(&mut term).await?;
        metrics.push(Metric::ms("anchor.terminado.keystroke_rtt", &samples));
    }
    for (metric, viewers) in
        [("anchor.terminado.output_1", 1), ("anchor.terminado.output_5", VIEWERS)]
    {
        if !wanted(metric) {
            continue;
        }
        eprintln!("bench: {metric} ({FLOODS} floods of {FLOOD_BYTES} bytes, {viewers} viewers)");
        let mut terms = Vec::with_capacity(viewers);
        for _ in 0..viewers {
            terms.push(Terminado::connect(url).await?);
        }
        metrics.push(terminal::floods(metric, terms, &flood_command(file)).await?);
    }
    Ok(metrics)
}

/// A terminado websocket.
struct Terminado {
    ws: super::Ws,
}

impl Terminado {
    async fn connect(url: &str) -> Result<Terminado> {
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .with_context(|| format!("opening {url} timed out"))?
            .with_context(|| format!("opening {url}"))?;
        Ok(Terminado { ws })
    }
}

impl Terminal for Terminado {
    async fn send(&mut self, bytes: &[u8]) -> Result<()> {
        let text = std::str::from_utf8(bytes).context("keys that are not UTF-8")?;
        let message = serde_json::json!(["stdin", text]).to_string();
        self.ws.send(Message::text(message)).await.context("sending keys")
    }

    async fn output(&mut self) -> Result<Bytes> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    let message: serde_json::Value = serde_json::from_str(&text)
                        .with_context(|| format!("message {}", text.as_str()))?;
                    match message[0].as_str() {
                        Some("stdout") => {
                            let output = message[1].as_str().context("stdout without text")?;
                            return Ok(Bytes::copy_from_slice(output.as_bytes()));
                        }
                        Some("disconnect") => bail!("terminado disconnected: {message}"),
                        _ => {}
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

/// A Python with terminado: a venv in the cache keyed by [`TERMINADO_REQUIREMENTS`], made
/// (from PyPI) the first time.
async fn terminado_python() -> Result<PathBuf> {
    let key: u64 = TERMINADO_REQUIREMENTS
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    let venv = cache_dir()?.join("tools").join(format!("terminado-{:012x}", key >> 16));
    let python = venv.join("bin/python");
    let stamp = venv.join(".installed");
    if stamp.exists() && python.exists() {
        return Ok(python);
    }
    let _ = std::fs::remove_dir_all(&venv);
    eprintln!("bench: installing terminado from PyPI into {}", venv.display());
    run(tokio::process::Command::new("python3").arg("-m").arg("venv").arg(&venv)).await?;
    let requirements = venv.join("requirements.txt");
    std::fs::write(&requirements, TERMINADO_REQUIREMENTS)?;
    run(tokio::process::Command::new(&python)
        .args(["-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off"])
        .arg("-r")
        .arg(&requirements))
    .await?;
    std::fs::write(&stamp, TERMINADO_REQUIREMENTS)?;
    Ok(python)
}

async fn run(command: &mut tokio::process::Command) -> Result<()> {
    let status = command.status().await.with_context(|| format!("running {command:?}"))?;
    ensure!(status.success(), "{command:?}: {status}");
    Ok(())
}

/// `$FLINT_CACHE_DIR`, else `~/.cache/flint` (as `xtask`'s `setup::cache_dir`).
fn cache_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("FLINT_CACHE_DIR").filter(|dir| !dir.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let home = std::env::var_os("HOME").filter(|home| !home.is_empty());
    Ok(Path::new(&home.context("neither FLINT_CACHE_DIR nor HOME is set")?).join(".cache/flint"))
}
