//! Running a command without a pty: `POST /v1/exec` streams [`ExecUp`] up and [`ExecDown`]
//! down.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::ExitStatus;

/// What to run; the first frame of the request stream.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecRequest {
    /// Program and arguments (no shell; use `["sh", "-c", ...]` for one).
    pub argv: Vec<String>,
    /// Working directory.
    pub cwd: Option<String>,
    /// Extra environment variables.
    pub env: BTreeMap<String, String>,
    /// Kill the command's whole process group after this long.
    pub timeout_ms: Option<u64>,
    /// Collect output into one [`ExecDown::Finished`] frame instead of streaming it.
    pub collect: bool,
    /// When false stdin is closed at once; when true [`ExecUp::Stdin`] frames follow, ended by
    /// [`ExecUp::StdinEnd`].
    pub stdin: bool,
}

/// Frames a client sends up an exec stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExecUp {
    /// The first frame, and only the first.
    Start(ExecRequest),
    /// Bytes for stdin.
    Stdin(ByteBuf),
    /// Close stdin.
    StdinEnd,
}

/// Frames the agent sends down an exec stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExecDown {
    /// The command started.
    Started {
        /// Its process id (and process group id).
        pid: u32,
    },
    /// Bytes from stdout (streaming mode).
    Stdout(ByteBuf),
    /// Bytes from stderr (streaming mode).
    Stderr(ByteBuf),
    /// The command ended (streaming mode). Last frame.
    Exit(ExitStatus),
    /// The command ended (collect mode). Last frame.
    Finished {
        /// All of stdout, up to the collect limit.
        stdout: ByteBuf,
        /// All of stderr, up to the collect limit.
        stderr: ByteBuf,
        /// True when output beyond the collect limit was dropped.
        truncated: bool,
        /// How it ended.
        status: ExitStatus,
    },
    /// The command could not be started, or stdin frames were malformed. Last frame.
    Error(String),
}
