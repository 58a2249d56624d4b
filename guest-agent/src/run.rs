//! Typing into a shared terminal from the API: `run` types one command line at the shell's
//! empty prompt, as a person would, and waits for its end mark; `input` writes raw keys.
//!
//! A run is refused unless the shell is at a prompt with an empty input line (a person in the
//! middle of a line, or a running command, must not get a command line typed into it), and
//! only one run is in flight per terminal. The check and the claim happen under the
//! terminal's state lock, so two callers cannot both see an idle shell.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Response;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use proto::error::ErrorCode;
use proto::terminal::{InputWritten, RunCommand, RunResult, ShellState, TerminalId};
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::http::{Body, json, read_json};
use crate::ring::Read;
use crate::server::Agent;
use crate::shell::{RunWatch, clean_output, keep_tail};
use crate::terminal::Terminal;

/// How long a run waits for its command's end by default; the command keeps running after.
pub const DEFAULT_RUN_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest wait a run may ask for: an hour, far past any tool call's patience.
const MAX_RUN_TIMEOUT: Duration = Duration::from_secs(3600);

/// Output a run returns by default: 64 KiB, the tail of a long log is what matters.
pub const DEFAULT_RUN_OUTPUT_BYTES: usize = 64 << 10;

/// A new shell's time to draw its first prompt (a login shell reads its profile first)
/// before a run on it counts as having no shell integration.
const FIRST_PROMPT_GRACE: Duration = Duration::from_secs(3);

/// How long a run waits for a prompt being drawn to finish (between `D`/`A` and `B`), before
/// starting and after its command ended, so that the next run finds the prompt ready.
const PROMPT_SETTLE: Duration = Duration::from_secs(2);

/// Largest `input` body: 64 KiB of keys is a big paste; more belongs in a file.
const MAX_INPUT_BYTES: usize = 64 << 10;

/// `POST /v1/terminals/{id}/input`: raw bytes, written to the pty as if typed.
pub async fn input(agent: &Agent, id: &TerminalId, body: Incoming) -> Result<Response<Body>> {
    let terminal = agent.terminals.get(id)?;
    let bytes = Limited::new(body, MAX_INPUT_BYTES)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                Error::api(
                    ErrorCode::TooLarge,
                    "input is over the limit of 64 KiB; write larger text to a file",
                )
            } else {
                Error::bad_request(format!("reading body: {e}"))
            }
        })?
        .to_bytes();
    let written = bytes.len() as u64;
    if !bytes.is_empty() {
        write(&terminal, bytes).await?;
    }
    json(&InputWritten { bytes: written })
}

async fn write(terminal: &Terminal, bytes: Bytes) -> Result<()> {
    terminal.send_input(bytes).await.map_err(|()| exited(&terminal.id))
}

fn exited(id: &TerminalId) -> Error {
    Error::not_found(format!("the shell of terminal {id} has exited"))
}

/// `POST /v1/terminals/{id}/run`
pub async fn run(agent: &Agent, id: &TerminalId, body: Incoming) -> Result<Response<Body>> {
    let terminal = agent.terminals.get(id)?;
    let request: RunCommand = read_json(body).await?;
    if request.command.trim().is_empty() {
        return Err(Error::bad_request("the command is empty"));
    }
    if request.command.contains(['\n', '\r']) {
        return Err(Error::bad_request(
            "the command must be one line: join commands with ; or &&, or write a script file \
             and run it",
        ));
    }
    let timeout = request.timeout_ms.map_or(DEFAULT_RUN_TIMEOUT, Duration::from_millis);
    if timeout > MAX_RUN_TIMEOUT {
        return Err(Error::bad_request(format!(
            "timeout_ms is at most {}",
            MAX_RUN_TIMEOUT.as_millis()
        )));
    }
    let max_output = request
        .max_output_bytes
        .map_or(DEFAULT_RUN_OUTPUT_BYTES, |max| usize::try_from(max).unwrap_or(usize::MAX));
    let deadline = Instant::now() + timeout;

    let claim = Claim::take(terminal, deadline).await?;
    let line = format!("{}\r", request.command);
    write(&claim.terminal, Bytes::from(line)).await?;
    let ended = claim.wait_for_end(deadline).await;
    let result = claim.result(ended, max_output);
    json(&result)
}

/// How a run's wait ended.
#[derive(Clone, Copy, Debug)]
enum Ended {
    /// The `D` mark came.
    Marked,
    /// The shell exited before it did, with this code.
    ShellExited(Option<i32>),
    /// The timeout passed first.
    TimedOut,
}

/// The one run in flight on a terminal; dropping it (also when the caller goes away) frees
/// the terminal for the next.
struct Claim {
    terminal: Arc<Terminal>,
    from: u64,
}

impl Claim {
    /// Waits (briefly) for an empty prompt, then claims the terminal's run slot at the
    /// current end of its output.
    async fn take(terminal: Arc<Terminal>, deadline: Instant) -> Result<Claim> {
        let mut changes = terminal.output.subscribe();
        let first_prompt_until = Instant::from_std(terminal.created + FIRST_PROMPT_GRACE);
        let mut settle_until: Option<Instant> = None;
        loop {
            changes.borrow_and_update();
            let wait_until = {
                let mut state = terminal.state();
                if state.exit.is_some() {
                    return Err(exited(&terminal.id));
                }
                if state.shell.run.is_some() {
                    return Err(busy("another command sent with run is still running in it"));
                }
                match state.shell_state() {
                    ShellState::Prompt => {
                        let from = state.ring.end();
                        state.shell.run = Some(RunWatch::new(from));
                        drop(state);
                        return Ok(Claim { terminal, from });
                    }
                    ShellState::Unknown if Instant::now() < first_prompt_until => {
                        first_prompt_until
                    }
                    ShellState::Unknown => return Err(no_integration()),
                    ShellState::Running if state.shell.drawing() => {
                        let until =
                            *settle_until.get_or_insert_with(|| Instant::now() + PROMPT_SETTLE);
                        if Instant::now() >= until {
                            return Err(busy("its prompt is still being drawn"));
                        }
                        until
                    }
                    ShellState::Running => return Err(busy("a command is running in it")),
                    ShellState::Typing => {
                        return Err(busy(
                            "someone is typing at the prompt (its input line is not empty)",
                        ));
                    }
                }
            };
            let waited = tokio::time::timeout_at(wait_until.min(deadline), changes.changed()).await;
            if waited.is_err() && Instant::now() >= deadline {
                return Err(Error::api(
                    ErrorCode::Timeout,
                    "the shell's prompt did not become ready within the timeout",
                ));
            }
        }
    }

    /// Waits for the command's `D` mark (and then, briefly, for the next prompt), the
    /// shell's exit, or the deadline.
    async fn wait_for_end(&self, deadline: Instant) -> Ended {
        let mut changes = self.terminal.output.subscribe();
        let mut settle_until: Option<Instant> = None;
        loop {
            changes.borrow_and_update();
            {
                let state = self.terminal.state();
                let run = state.shell.run;
                if let Some(status) = state.exit {
                    return match run.and_then(|run| run.end) {
                        Some(_) => Ended::Marked,
                        None => Ended::ShellExited(status.code),
                    };
                }
                if let Some(run) = run.filter(|run| run.end.is_some()) {
                    if run.prompt_again {
                        return Ended::Marked;
                    }
                    settle_until.get_or_insert_with(|| Instant::now() + PROMPT_SETTLE);
                }
            }
            let wait_until = settle_until.unwrap_or(deadline);
            match tokio::time::timeout_at(wait_until, changes.changed()).await {
                Ok(Ok(())) => {}
                // The terminal is gone (the sender lives in it): nothing more will come.
                Ok(Err(_)) => return Ended::ShellExited(None),
                Err(_) if settle_until.is_some() => return Ended::Marked,
                Err(_) => return Ended::TimedOut,
            }
        }
    }

    /// The run's output, from the scrollback: between its `C` and `D` marks (from the end
    /// of the echoed line when no `C` came, e.g. after a syntax error).
    fn result(&self, ended: Ended, max_output: usize) -> RunResult {
        let state = self.terminal.state();
        let run = state.shell.run.unwrap_or(RunWatch::new(self.from));
        let (to, exit_code) = match (ended, run.end) {
            (Ended::Marked, Some((at, code))) => (at, code),
            (Ended::ShellExited(code), _) => (state.ring.end(), code),
            _ => (state.ring.end(), None),
        };
        let start = run.output_start.unwrap_or_else(|| end_of_line(&state.ring, self.from, to));
        let (raw, mut truncated) = read_range(&state.ring, start, to);
        drop(state);
        let (output, cut) = keep_tail(clean_output(&raw), max_output);
        truncated |= cut;
        RunResult {
            output,
            exit_code,
            timed_out: matches!(ended, Ended::TimedOut),
            truncated,
            from: self.from,
            to,
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut state = self.terminal.state();
        if state.shell.run.is_some_and(|run| run.from == self.from) {
            state.shell.run = None;
        }
    }
}

fn busy(what: &str) -> Error {
    Error::api(
        ErrorCode::ShellBusy,
        format!(
            "the shell is busy: {what}; wait and try again, or use exec for a command of its own"
        ),
    )
}

fn no_integration() -> Error {
    Error::api(
        ErrorCode::NoShellIntegration,
        "this terminal's shell prints no shell integration marks (OSC 133), so a prompt \
         cannot be told from a running command; use exec, or a terminal running the image's \
         login shell",
    )
}

/// Offset just past the first newline in `from..to` (the end of the echoed command line),
/// or `to` when there is none.
fn end_of_line(ring: &crate::ring::Ring, from: u64, to: u64) -> u64 {
    let (bytes, _) = read_range(ring, from, to);
    let start = from.max(ring.start());
    bytes.iter().position(|b| *b == b'\n').map_or(to, |i| start + i as u64 + 1)
}

/// The bytes of `from..to` still in the ring, and whether its start was already gone.
fn read_range(ring: &crate::ring::Ring, from: u64, to: u64) -> (Vec<u8>, bool) {
    let missed = from < ring.start();
    let from = from.max(ring.start());
    let len = usize::try_from(to.saturating_sub(from)).unwrap_or(usize::MAX);
    match ring.read(from, len) {
        Read::Bytes(bytes) => (bytes, missed),
        Read::Missed { .. } | Read::Nothing => (Vec::new(), missed),
    }
}
