//! Shared terminals: shells on ptys owned by the agent, with scrollback, a screen model, and
//! the state that attach streams ([`crate::attach`]) read for any number of clients.
//!
//! Per terminal three plain threads do the blocking pty work (portable-pty is blocking): a
//! reader appends output to the ring and the screen model, a writer feeds input, a waiter
//! reaps the shell with `waitpid`. Attachers never receive from the reader directly: each
//! reads the ring at its own offset.
//!
//! Before the reader overwrites bytes an attacher has not sent yet, it waits for that
//! attacher, but at most [`STALL_GRACE`]: a reading attacher that was merely descheduled for
//! a moment loses nothing (the shell just waits, as on a slow terminal), while a stalled one
//! is marked lagging, no longer waited for, and told what it missed when it reads again.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::num::NonZeroU16;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http::Response;
use hyper::body::Incoming;
use nix::sys::signal::{self, Signal, killpg};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;
use portable_pty::{CommandBuilder, MasterPty, PtySize, native_pty_system};
use proto::ExitStatus;
use proto::error::ErrorCode;
use proto::terminal::{
    CreateTerminal, Screen, ShellState, Size, TerminalId, TerminalInfo, TerminalList,
};
use tokio::sync::{mpsc, watch};

use crate::error::{Error, Result};
use crate::http::{Body, json, read_json};
use crate::ring::Ring;
use crate::server::Agent;
use crate::shell::{Marks, Shell, pieces};
use crate::sizing::Sizing;

/// Scrollback kept per terminal: 1 MiB, a long build log's worth of replay.
pub const SCROLLBACK_BYTES: usize = 1 << 20;

/// Bytes read from the pty at once.
const READ_CHUNK_BYTES: usize = 64 << 10;

/// Most bytes fed at once (a quarter of the scrollback, so that waiting for attachers to
/// make room is waiting for a part of the ring, never for more than it holds).
const FEED_BATCH_BYTES: usize = SCROLLBACK_BYTES / 4;

/// Reads queued between the pty's reader and its feeder; beyond it the reader waits, and
/// so does the shell's output (back-pressure, as on a real terminal).
const READ_AHEAD_CHUNKS: usize = 64;

/// Input chunks queued for the pty writer; a flood of input pushes back on its own stream.
const INPUT_QUEUE: usize = 64;

/// After the shell exits, how long the reader may take to drain the pty before the exit is
/// announced (a background job may keep the pty open forever).
const EXIT_DRAIN: Duration = Duration::from_millis(300);

/// How long the reader waits for an attacher before overwriting bytes it has not sent yet.
/// A stalled attacher delays the shell (and so the others) by at most this, once per stall;
/// then it falls behind and resyncs from the ring.
pub const STALL_GRACE: Duration = Duration::from_millis(500);

/// How long `DELETE` waits for the killed shell to be reaped.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// Every terminal of the agent.
pub struct Terminals {
    map: Mutex<BTreeMap<TerminalId, Arc<Terminal>>>,
    next_id: AtomicU64,
    scrollback_bytes: usize,
    /// False while the first shell (`--first-shell`) is being started.
    settled: watch::Sender<bool>,
}

impl Terminals {
    /// No terminals yet.
    pub fn new(scrollback_bytes: usize) -> Terminals {
        Terminals {
            map: Mutex::default(),
            next_id: AtomicU64::new(1),
            scrollback_bytes,
            settled: watch::channel(true).0,
        }
    }

    /// Returns once no first shell is being started: every terminal route waits here, so
    /// none answers as if terminal `1` did not exist while it starts.
    pub async fn settled(&self) {
        let mut settled = self.settled.subscribe();
        let _ = settled.wait_for(|s| *s).await;
    }

    /// Starts the first shell (terminal `1`) in the background; the terminal routes wait
    /// for it meanwhile ([`Terminals::settled`]).
    pub fn start_first_shell(agent: &Arc<Agent>) {
        agent.terminals.settled.send_replace(false);
        let agent = agent.clone();
        tokio::spawn(async move {
            if let Err(e) = open(&agent, CreateTerminal::default()).await {
                // A session without its first shell, not without an agent: a client opens one.
                tracing::warn!("starting the first shell: {e}");
            }
            agent.terminals.settled.send_replace(true);
        });
    }

    fn map(&self) -> MutexGuard<'_, BTreeMap<TerminalId, Arc<Terminal>>> {
        self.map.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn get(&self, id: &TerminalId) -> Result<Arc<Terminal>> {
        self.map().get(id).cloned().ok_or_else(|| Error::not_found(format!("no terminal {id}")))
    }
}

pub(crate) struct State {
    pub(crate) ring: Ring,
    pub(crate) screen: vt100::Parser<Marks>,
    /// What the shell is doing, from its OSC 133 marks.
    pub(crate) shell: Shell,
    pub(crate) exit: Option<ExitStatus>,
    /// Where each attacher is; the reader waits (a little) for the ones not lagging.
    pub(crate) cursors: Vec<Arc<Cursor>>,
}

impl State {
    /// Appends output to the ring and the screen model, and follows the shell's marks at
    /// their exact offsets (see [`crate::shell`]).
    fn feed(&mut self, bytes: &[u8]) {
        let mut end = self.ring.end();
        self.ring.push(bytes);
        for piece in pieces(bytes) {
            self.screen.process(piece);
            end += piece.len() as u64;
            if self.screen.callbacks().seen.is_empty() {
                continue;
            }
            let bel = piece.last() == Some(&0x07);
            for mark in std::mem::take(&mut self.screen.callbacks_mut().seen) {
                self.shell.apply(mark, end, bel, self.screen.screen());
            }
        }
    }

    /// What the shell is doing now.
    pub(crate) fn shell_state(&self) -> ShellState {
        self.shell.state(self.screen.screen())
    }
}

/// One attacher's position in the output.
#[derive(Debug)]
pub(crate) struct Cursor {
    /// Offset of the next byte it will send.
    pub(crate) next: AtomicU64,
    /// It held the reader up past [`STALL_GRACE`]; it is not waited for until it catches up.
    pub(crate) lagging: std::sync::atomic::AtomicBool,
}

/// One shell on a pty.
pub struct Terminal {
    pub(crate) id: TerminalId,
    pub(crate) command: Vec<String>,
    pub(crate) pid: u32,
    /// When the shell started (a shell gets a moment to draw its first prompt).
    pub(crate) created: std::time::Instant,
    pub(crate) state: Mutex<State>,
    /// Signalled when an attacher moves on, for a reader waiting to overwrite.
    pub(crate) advanced: std::sync::Condvar,
    /// Bumped whenever output arrives or the shell exits.
    pub(crate) output: watch::Sender<u64>,
    pub(crate) sizes: watch::Sender<Size>,
    /// Who sizes the pty; held while a size it chose is applied, so two writers' decisions
    /// never interleave.
    sizing: Mutex<Sizing>,
    /// To the pty's writer; only through [`Terminal::send_input`].
    input: mpsc::Sender<Bytes>,
    pub(crate) master: Mutex<Box<dyn MasterPty + Send>>,
    pub(crate) attached: AtomicU32,
    pub(crate) next_attacher: AtomicU64,
    /// Send `SIGWINCH` after a resize ([`crate::server::Config::signal_resize`]).
    signal_resize: bool,
}

impl Terminal {
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues `bytes` for the pty as typed input, noting them for the shell integration first
    /// (see [`Shell::typed`]). Err: the shell is gone.
    pub(crate) async fn send_input(&self, bytes: Bytes) -> std::result::Result<(), ()> {
        {
            let state = &mut *self.state();
            state.shell.typed(&bytes, state.screen.screen());
        }
        self.input.send(bytes).await.map_err(|_| ())
    }

    fn info(&self) -> TerminalInfo {
        let (end_offset, exit, shell) = {
            let state = self.state();
            (state.ring.end(), state.exit, state.shell_state())
        };
        let size = *self.sizes.borrow();
        TerminalInfo {
            id: self.id.clone(),
            command: self.command.clone(),
            pid: self.pid,
            cols: size.cols,
            rows: size.rows,
            end_offset,
            attached: self.attached.load(Ordering::Relaxed),
            exit,
            shell,
        }
    }

    fn resize(&self, size: Size) -> Result<()> {
        if *self.sizes.borrow() == size {
            return Ok(());
        }
        {
            let master = self.master.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            master
                .resize(pty_size(size))
                .map_err(|e| Error::api(ErrorCode::Internal, format!("resizing pty: {e}")))?;
        }
        if let (Some(rows), Some(cols)) = (NonZeroU16::new(size.rows), NonZeroU16::new(size.cols)) {
            self.state().screen.set_size(rows, cols);
        }
        self.sizes.send_replace(size);
        if self.signal_resize {
            self.signal_process_groups(Signal::SIGWINCH);
        }
        Ok(())
    }

    /// Sends `signal` to every process group of the shell's session. Linux sends `SIGWINCH`
    /// to the foreground group alone, but gVisor's pty sends none and will not name the
    /// foreground group to a process outside the session (`TIOCGPGRP` is ENOTTY there, and
    /// `tpgid` in `/proc/PID/stat` is 0): background jobs get one too, which programs
    /// answer by reading the size again.
    fn signal_process_groups(&self, signal: Signal) {
        let groups: std::collections::BTreeSet<i32> =
            self.session_members().into_iter().map(|(_, group)| group).collect();
        for group in groups {
            let _ = killpg(Pid::from_raw(group), signal);
        }
    }

    /// Every process of the shell's session, as (pid, process group), from `/proc`.
    fn session_members(&self) -> Vec<(i32, i32)> {
        let Ok(sid) = i32::try_from(self.pid) else {
            return Vec::new();
        };
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
            .filter_map(|pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                let (group, session) = group_and_session(&stat)?;
                (session == sid).then_some((pid, group))
            })
            .collect()
    }

    /// Waits until `incoming` more bytes overwrite nothing an attacher still has to send, or
    /// until [`STALL_GRACE`] passed; attachers still in the way then are marked lagging.
    fn wait_for_attachers(&self, incoming: usize) -> MutexGuard<'_, State> {
        let deadline = std::time::Instant::now() + STALL_GRACE;
        let mut state = self.state();
        loop {
            let oldest_kept =
                (state.ring.end() + incoming as u64).saturating_sub(state.ring.capacity() as u64);
            let in_the_way = |c: &&Arc<Cursor>| {
                !c.lagging.load(Ordering::Relaxed) && c.next.load(Ordering::Relaxed) < oldest_kept
            };
            if !state.cursors.iter().any(|c| in_the_way(&c)) {
                return state;
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                for cursor in state.cursors.iter().filter(in_the_way) {
                    cursor.lagging.store(true, Ordering::Relaxed);
                }
                return state;
            }
            state = match self.advanced.wait_timeout(state, deadline - now) {
                Ok((state, _)) => state,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    fn sizing(&self) -> MutexGuard<'_, Sizing> {
        self.sizing.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Writer `attacher` typed: they size the terminal from now on, and it takes their
    /// window's size (`window`, the last they sent) at once. See [`crate::sizing`].
    pub(crate) fn typed_by(&self, attacher: u64, window: Option<Size>) -> Result<()> {
        let mut sizing = self.sizing();
        match sizing.typed(attacher, window) {
            Some(size) => self.resize(size),
            None => Ok(()),
        }
    }

    /// Writer `attacher`'s window is now `window`: applied when they are the typist, or
    /// nobody is.
    pub(crate) fn window_resized(&self, attacher: u64, window: Size) -> Result<()> {
        let mut sizing = self.sizing();
        match sizing.window(attacher, window) {
            Some(size) => self.resize(size),
            None => Ok(()),
        }
    }

    /// `attacher` stopped sending: when they were the typist, nobody is.
    pub(crate) fn detached(&self, attacher: u64) {
        self.sizing().left(attacher);
    }

    /// SIGKILLs every process in the shell's session: the shell made itself session leader,
    /// and its jobs sit in process groups of their own.
    fn kill(&self) {
        let Ok(sid) = i32::try_from(self.pid) else {
            return;
        };
        let _ = killpg(Pid::from_raw(sid), Signal::SIGKILL);
        for (pid, _) in self.session_members() {
            let _ = signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// The process group and session id fields of a `/proc/PID/stat` line (after the
/// parenthesised command name, which may itself hold spaces and parentheses).
fn group_and_session(stat: &str) -> Option<(i32, i32)> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    // state ppid pgrp session
    let mut fields = after_comm.split_whitespace().skip(2);
    Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
}

fn pty_size(size: Size) -> PtySize {
    PtySize { rows: size.rows, cols: size.cols, pixel_width: 0, pixel_height: 0 }
}

fn spawn(id: TerminalId, request: CreateTerminal, agent: &Agent) -> Result<Arc<Terminal>> {
    let size = Size {
        cols: if request.cols == 0 { 80 } else { request.cols },
        rows: if request.rows == 0 { 24 } else { request.rows },
    };
    if !size.is_valid() {
        return Err(Error::bad_request(format!("size must be 1..={} each way", Size::MAX)));
    }
    let command =
        if request.command.is_empty() { agent.config.shell.clone() } else { request.command };
    let cwd =
        request.cwd.map(std::path::PathBuf::from).unwrap_or_else(|| agent.config.workdir.clone());
    if !cwd.is_dir() {
        return Err(Error::bad_request(format!(
            "working directory {} is not a directory",
            cwd.display()
        )));
    }
    let internal =
        |what: &str, e: anyhow::Error| Error::api(ErrorCode::Internal, format!("{what}: {e}"));
    let pair =
        native_pty_system().openpty(pty_size(size)).map_err(|e| internal("opening pty", e))?;
    let mut builder = CommandBuilder::new(&command[0]);
    builder.args(&command[1..]);
    builder.cwd(&cwd);
    builder.env("TERM", "xterm-256color");
    for (key, value) in agent.config.env.iter().chain(&request.env) {
        builder.env(key, value);
    }
    let child = pair
        .slave
        .spawn_command(builder)
        .map_err(|e| Error::bad_request(format!("cannot start {}: {e}", command[0])))?;
    // The child holds the slave now; ours must close or the reader never sees the end.
    drop(pair.slave);
    let pid =
        child.process_id().ok_or_else(|| Error::api(ErrorCode::Internal, "shell has no pid"))?;
    // Reaped by our own waitpid below, never through `child`.
    drop(child);
    let reader = pair.master.try_clone_reader().map_err(|e| internal("pty reader", e))?;
    let writer = pair.master.take_writer().map_err(|e| internal("pty writer", e))?;

    let rows = NonZeroU16::new(size.rows).unwrap_or(NonZeroU16::MIN);
    let cols = NonZeroU16::new(size.cols).unwrap_or(NonZeroU16::MIN);
    let (input, input_rx) = mpsc::channel(INPUT_QUEUE);
    let terminal = Arc::new(Terminal {
        id,
        command,
        pid,
        created: std::time::Instant::now(),
        state: Mutex::new(State {
            ring: Ring::new(agent.terminals.scrollback_bytes),
            screen: vt100::Parser::new_with_callbacks(rows, cols, 0, Marks::default()),
            shell: Shell::new(),
            exit: None,
            cursors: Vec::new(),
        }),
        advanced: std::sync::Condvar::new(),
        output: watch::channel(0).0,
        sizes: watch::channel(size).0,
        sizing: Mutex::default(),
        input,
        master: Mutex::new(pair.master),
        attached: AtomicU32::new(0),
        next_attacher: AtomicU64::new(1),
        signal_resize: agent.config.signal_resize,
    });
    start_threads(&terminal, reader, writer, input_rx)?;
    Ok(terminal)
}

fn start_threads(
    terminal: &Arc<Terminal>,
    mut reader: Box<dyn std::io::Read + Send>,
    mut writer: Box<dyn std::io::Write + Send>,
    mut input_rx: mpsc::Receiver<Bytes>,
) -> Result<()> {
    let thread_error = |e: std::io::Error| Error::api(ErrorCode::Internal, format!("thread: {e}"));
    let (drained_tx, drained_rx) = std::sync::mpsc::channel::<()>();
    // Two threads: one only reads, so the next read is under way while the other feeds the
    // ring and the screen model with what came (gVisor's pty hands out at most 4095 bytes a
    // read, each read costing ~130 µs there; fed in line, the reads waited on the feeding
    // and output stalled at ~10 MB/s).
    let (chunks_tx, chunks_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(READ_AHEAD_CHUNKS);
    std::thread::Builder::new()
        .name(format!("pty-read-{}", terminal.id))
        .spawn(move || {
            loop {
                let mut buf = vec![0u8; READ_CHUNK_BYTES];
                let n = match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                buf.truncate(n);
                if chunks_tx.send(buf).is_err() {
                    break;
                }
            }
        })
        .map_err(thread_error)?;
    let term = terminal.clone();
    std::thread::Builder::new()
        .name(format!("pty-feed-{}", terminal.id))
        .spawn(move || {
            while let Ok(first) = chunks_rx.recv() {
                // Whatever else was read meanwhile goes in under the same lock and wakes
                // the attachers once.
                let mut incoming = first.len();
                let mut chunks = vec![first];
                while incoming < FEED_BATCH_BYTES
                    && let Ok(chunk) = chunks_rx.try_recv()
                {
                    incoming += chunk.len();
                    chunks.push(chunk);
                }
                let end = {
                    let mut state = term.wait_for_attachers(incoming);
                    for chunk in &chunks {
                        state.feed(chunk);
                    }
                    state.ring.end()
                };
                term.output.send_replace(end);
            }
            let _ = drained_tx.send(());
        })
        .map_err(thread_error)?;

    std::thread::Builder::new()
        .name(format!("pty-write-{}", terminal.id))
        .spawn(move || {
            while let Some(bytes) = input_rx.blocking_recv() {
                if writer.write_all(&bytes).and_then(|()| writer.flush()).is_err() {
                    // The shell is gone; keep draining so senders never wait on us.
                    continue;
                }
            }
        })
        .map_err(thread_error)?;

    let term = terminal.clone();
    std::thread::Builder::new()
        .name(format!("pty-wait-{}", terminal.id))
        .spawn(move || {
            let status = wait_for(term.pid);
            let _ = drained_rx.recv_timeout(EXIT_DRAIN);
            term.state().exit = Some(status);
            term.output.send_modify(|_| {});
            tracing::info!(terminal = %term.id, ?status, "shell exited");
        })
        .map_err(thread_error)?;
    Ok(())
}

fn wait_for(pid: u32) -> ExitStatus {
    let Ok(raw) = i32::try_from(pid) else {
        return ExitStatus::default();
    };
    loop {
        match waitpid(Pid::from_raw(raw), None) {
            Ok(WaitStatus::Exited(_, code)) => {
                return ExitStatus { code: Some(code), signal: None, timed_out: false };
            }
            Ok(WaitStatus::Signaled(_, signal, _)) => {
                return ExitStatus { code: None, signal: Some(signal as i32), timed_out: false };
            }
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return ExitStatus::default(),
        }
    }
}

/// `GET /v1/terminals`
pub fn list(agent: &Agent) -> Result<Response<Body>> {
    let terminals = agent.terminals.map().values().map(|t| t.info()).collect();
    json(&TerminalList { terminals })
}

/// `POST /v1/terminals`
pub async fn create(agent: &Arc<Agent>, body: Incoming) -> Result<Response<Body>> {
    let request: CreateTerminal = read_json(body).await?;
    json(&open(agent, request).await?.info())
}

/// Starts a terminal as `request` asks and makes it one of the agent's.
pub async fn open(agent: &Arc<Agent>, request: CreateTerminal) -> Result<Arc<Terminal>> {
    let number = agent.terminals.next_id.fetch_add(1, Ordering::Relaxed);
    let id = TerminalId::parse(&number.to_string())
        .ok_or_else(|| Error::api(ErrorCode::Internal, "terminal id"))?;
    let owned = agent.clone();
    let terminal = tokio::task::spawn_blocking(move || spawn(id, request, &owned))
        .await
        .map_err(|e| Error::api(ErrorCode::Internal, format!("spawning shell: {e}")))??;
    agent.terminals.map().insert(terminal.id.clone(), terminal.clone());
    tracing::info!(terminal = %terminal.id, pid = terminal.pid, command = ?terminal.command, "terminal created");
    Ok(terminal)
}

/// `GET /v1/terminals/{id}`
pub fn get(agent: &Agent, id: &TerminalId) -> Result<Response<Body>> {
    json(&agent.terminals.get(id)?.info())
}

/// `DELETE /v1/terminals/{id}`: kills the shell's whole session, waits for it to be reaped,
/// and forgets the terminal.
pub async fn kill(agent: &Agent, id: &TerminalId) -> Result<Response<Body>> {
    let terminal = agent.terminals.get(id)?;
    terminal.kill();
    let mut changes = terminal.output.subscribe();
    let reaped = tokio::time::timeout(KILL_WAIT, async {
        loop {
            if terminal.state().exit.is_some() {
                return;
            }
            if changes.changed().await.is_err() {
                return;
            }
        }
    })
    .await;
    if reaped.is_err() {
        tracing::warn!(terminal = %id, "shell not reaped after kill");
    }
    agent.terminals.map().remove(id);
    json(&terminal.info())
}

/// `POST /v1/terminals/{id}/resize`
pub async fn resize(agent: &Agent, id: &TerminalId, body: Incoming) -> Result<Response<Body>> {
    let terminal = agent.terminals.get(id)?;
    let size: Size = read_json(body).await?;
    if !size.is_valid() {
        return Err(Error::bad_request(format!("size must be 1..={} each way", Size::MAX)));
    }
    {
        // A writer's size chosen meanwhile is applied before or after this, never half-way.
        let _sizing = terminal.sizing();
        terminal.resize(size)?;
    }
    json(&terminal.info())
}

/// `GET /v1/terminals/{id}/screen`
pub fn screen(agent: &Agent, id: &TerminalId) -> Result<Response<Body>> {
    let terminal = agent.terminals.get(id)?;
    let screen = {
        let state = terminal.state();
        let screen = state.screen.screen();
        let (rows, cols) = screen.size();
        let (cursor_row, cursor_col) = screen.cursor_position();
        Screen {
            size: Size { cols: cols.get(), rows: rows.get() },
            cursor_row,
            cursor_col,
            lines: screen.rows(0, cols.get()).map(|row| row.trim_end().to_owned()).collect(),
        }
    };
    json(&screen)
}

#[cfg(test)]
mod tests {
    use super::group_and_session;

    #[test]
    fn session_is_read_after_a_command_name_with_spaces_and_parentheses() {
        let stat = "4242 (my (odd) cmd) S 1 4242 4100 34816 4242 4194560 113 0";
        assert_eq!(group_and_session(stat), Some((4242, 4100)));
        assert_eq!(group_and_session("garbage"), None);
    }
}
