//! Shared terminals: creation, listing, the attach stream's frames and the screen model.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::ExitStatus;

/// A terminal's id: short, lower-case ascii, safe in a URL path segment.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct TerminalId(String);

impl TerminalId {
    /// Longest id accepted.
    pub const MAX_LEN: usize = 64;

    /// Accepts `[a-z0-9-]{1,64}`.
    pub fn parse(text: &str) -> Option<TerminalId> {
        let ok = !text.is_empty()
            && text.len() <= Self::MAX_LEN
            && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        ok.then(|| TerminalId(text.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TerminalId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `POST /v1/terminals` body. Every field has a default, so `{}` is a login shell.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct CreateTerminal {
    /// Program and arguments; empty means the agent's default shell (`bash -l`).
    pub command: Vec<String>,
    /// Columns; 0 means 80.
    pub cols: u16,
    /// Rows; 0 means 24.
    pub rows: u16,
    /// Working directory; `None` means the agent's working directory.
    pub cwd: Option<String>,
    /// Extra environment variables.
    pub env: BTreeMap<String, String>,
}

/// A terminal as listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TerminalInfo {
    /// Its id.
    pub id: TerminalId,
    /// What it runs.
    pub command: Vec<String>,
    /// Process id of the shell.
    pub pid: u32,
    /// Current columns.
    pub cols: u16,
    /// Current rows.
    pub rows: u16,
    /// Byte offset one past the last output byte so far.
    pub end_offset: u64,
    /// Clients attached right now.
    pub attached: u32,
    /// Set once the shell has exited.
    pub exit: Option<ExitStatus>,
    /// What the shell is doing, from its shell integration (OSC 133 marks).
    #[serde(default)]
    pub shell: ShellState,
}

/// What a terminal's shell is doing, as its shell integration (the OSC 133 marks the image's
/// bash prompt prints) tells: `A` prompt start, `B` input start, `C` command start,
/// `D;<exit>` command end.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ShellState {
    /// No mark seen yet: the shell has no integration (or has not drawn a prompt).
    #[default]
    Unknown,
    /// At a prompt with an empty input line.
    Prompt,
    /// At a prompt with something typed on the input line (a person is mid-line).
    Typing,
    /// A command is running.
    Running,
}

/// `POST /v1/terminals/{id}/run` body: type a command line into the shell, as a person would,
/// and wait for it to finish. Refused with `shell_busy` unless the shell is at a prompt with
/// an empty input line, and with `no_shell_integration` when the shell prints no OSC 133
/// marks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunCommand {
    /// One command line (no newline; join commands with `;` or `&&`).
    pub command: String,
    /// Stop waiting after this long (the command keeps running); default 30 s, at most an
    /// hour.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Keep at most the last this-many bytes of output; default 64 KiB.
    #[serde(default)]
    pub max_output_bytes: Option<u32>,
}

/// `POST /v1/terminals/{id}/run` response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunResult {
    /// What the command printed (between its `C` and `D` marks), escape sequences removed,
    /// `\r\n` as `\n`.
    pub output: String,
    /// The exit code from the `D` mark; `None` when it timed out. When the shell itself
    /// exited instead (the command line was `exit`), the shell's exit code.
    pub exit_code: Option<i32>,
    /// True when the timeout passed first; the command is still running in the shell.
    pub timed_out: bool,
    /// True when output was cut to its last `max_output_bytes` (or left the scrollback).
    pub truncated: bool,
    /// Output offset where the typed command line starts.
    pub from: u64,
    /// Output offset where its output ends (the `D` mark, or the end so far on timeout).
    pub to: u64,
}

/// `POST /v1/terminals/{id}/input` response; the body of the request is raw bytes (keys),
/// written to the pty as if typed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputWritten {
    /// Bytes queued for the pty.
    pub bytes: u64,
}

/// `GET /v1/terminals` response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminalList {
    /// Every terminal, exited ones included until killed.
    pub terminals: Vec<TerminalInfo>,
}

/// A terminal size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Size {
    /// Columns, 1..=1000.
    pub cols: u16,
    /// Rows, 1..=1000.
    pub rows: u16,
}

impl Size {
    /// Largest accepted columns or rows.
    pub const MAX: u16 = 1000;

    /// True when both sides are within 1..=[`Size::MAX`].
    pub fn is_valid(&self) -> bool {
        (1..=Self::MAX).contains(&self.cols) && (1..=Self::MAX).contains(&self.rows)
    }
}

/// May this attacher type?
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Input is applied; its window sizes the terminal while it is the typist.
    #[default]
    Writer,
    /// Input is refused with an error frame; resizes are ignored (a viewer's window never
    /// sizes the terminal).
    Viewer,
}

/// Query of `POST /v1/terminals/{id}/attach`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AttachQuery {
    /// Writer (default) or viewer.
    pub role: Role,
    /// Resume from this byte offset; `None` replays all the scrollback still held.
    pub offset: Option<u64>,
}

/// Query of `GET /v1/terminals/{id}/output`: a range of output offsets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputQuery {
    /// First offset wanted.
    pub from: u64,
    /// One past the last offset wanted.
    pub to: u64,
}

/// Frames a client sends up an attach stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttachUp {
    /// Keystrokes, as bytes.
    Input(ByteBuf),
    /// The size of the client's window. The pty takes it when this writer is the **typist**
    /// (the writer who typed last) or nobody has typed yet; a writer's keystrokes bring its
    /// last window size along. Ignored from a viewer.
    Resize(Size),
}

/// Frames the agent sends down an attach stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttachDown {
    /// First frame: where the replay starts and the pty's size now.
    Attached {
        /// Offset of the first byte this stream will send.
        offset: u64,
        /// Current size.
        size: Size,
    },
    /// Output bytes starting at `offset`. Offsets of consecutive chunks are contiguous unless
    /// a [`AttachDown::Missed`] sits between them.
    Output {
        /// Offset of the first byte of `data`.
        offset: u64,
        /// The bytes.
        data: ByteBuf,
    },
    /// The client fell behind by more than the scrollback; bytes `from..to` are gone and the
    /// stream goes on at `to`.
    Missed {
        /// First missed offset.
        from: u64,
        /// Offset the stream resumes at.
        to: u64,
    },
    /// The pty's size changed (the typist's window, or a resize through the API). Sent to
    /// every attacher: each shows exactly this size, whatever its own window's.
    Resized(Size),
    /// A recoverable problem with a frame this client sent (the stream goes on).
    Error(String),
    /// The shell exited; all output was sent before this frame. Last frame.
    Exit(ExitStatus),
}

/// `GET /v1/terminals/{id}/screen` response: what a person would see now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Screen {
    /// Size of the screen.
    pub size: Size,
    /// Cursor row, 0-based.
    pub cursor_row: u16,
    /// Cursor column, 0-based.
    pub cursor_col: u16,
    /// One string per row, trailing blanks trimmed.
    pub lines: Vec<String>,
}
