//! The control plane's REST and websocket types, shared with the web app.

use serde::{Deserialize, Serialize};

/// Lifecycle state of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// Written before the sandbox is started.
    Creating,
    /// The sandbox's agent answers.
    Running,
    /// The sandbox runs but its agent does not answer; the server keeps reconnecting and
    /// `reason` says what failed. Back to `running` once it answers.
    Degraded,
    /// Written before the sandbox is stopped.
    Stopping,
    /// The sandbox is gone; `/workspace` is kept until the session is deleted.
    Stopped,
    /// Something went wrong; `reason` says what.
    Failed,
}

impl SessionState {
    /// Every state, in the order of a session's life.
    pub const ALL: [SessionState; 6] = [
        SessionState::Creating,
        SessionState::Running,
        SessionState::Degraded,
        SessionState::Stopping,
        SessionState::Stopped,
        SessionState::Failed,
    ];

    /// The state's name, as stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::Creating => "creating",
            SessionState::Running => "running",
            SessionState::Degraded => "degraded",
            SessionState::Stopping => "stopping",
            SessionState::Stopped => "stopped",
            SessionState::Failed => "failed",
        }
    }

    /// Its sandbox runs, whether its agent answers now (`running`) or is being reconnected
    /// (`degraded`): what it offers is used and retried, not given up.
    pub fn is_up(self) -> bool {
        matches!(self, SessionState::Running | SessionState::Degraded)
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<SessionState> {
        Some(match text {
            "creating" => SessionState::Creating,
            "running" => SessionState::Running,
            "degraded" => SessionState::Degraded,
            "stopping" => SessionState::Stopping,
            "stopped" => SessionState::Stopped,
            "failed" => SessionState::Failed,
            _ => return None,
        })
    }
}

/// `POST /api/sessions` body; every field has a default.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct CreateSession {
    /// Image spec name (`images/NAME.toml`); default `default`.
    pub image: Option<String>,
    /// A name for people; default the id.
    pub name: Option<String>,
    /// CPUs' worth of time, e.g. `1` or `0.5`; default 1.
    pub cpus: Option<f64>,
    /// Memory in MiB; default 1024.
    pub memory_mb: Option<u32>,
    /// Disk in MiB: `/workspace` and everything written outside it; default 4096.
    pub disk_mb: Option<u32>,
    /// Seconds until the session stops by itself; default 3600.
    pub lifetime_s: Option<u64>,
    /// Network egress (through NAT, never to the host, private ranges or other sessions);
    /// default `true`. `false`: the sandbox has only its loopback.
    pub network: Option<bool>,
    /// Sandbox driver: `gvisor` or `process`; default the server's (`GET /api/server`).
    pub driver: Option<String>,
    /// Environment variables of the session's first shell (a warm sandbox's ready shell
    /// is replaced by a fresh one that has them).
    pub env: Option<std::collections::BTreeMap<String, String>>,
}

/// `GET /api/images`: an image a session can start from (a spec in the server's images
/// directory).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImageInfo {
    /// What `CreateSession.image` names it by (the spec's file name without `.toml`).
    pub name: String,
    /// What is in it, from the spec's `description`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Sessions get it when they name none.
    pub default: bool,
    /// Built and cached: a session starts without building it first (a first use builds it,
    /// which takes a minute or two).
    pub built: bool,
    /// Why the spec cannot be used (it does not parse or is invalid); a session asking for it
    /// gets this error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Resource limits of a session.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionLimits {
    /// CPUs' worth of time.
    pub cpus: f64,
    /// Memory in MiB.
    pub memory_mb: u32,
    /// Disk in MiB: the session's volume, `/workspace` and everything written outside it
    /// (a full disk is `ENOSPC` inside, never the host's problem).
    pub disk_mb: u32,
    /// Processes and threads.
    pub pids: u32,
}

/// A session as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionInfo {
    /// Unguessable, lower-case (it sits in a DNS label).
    pub id: String,
    /// For people.
    pub name: String,
    /// Image spec name.
    pub image: String,
    /// Sandbox driver: `process`, later `gvisor`, `microvm`.
    pub driver: String,
    /// `weak` (process) or `strong`.
    pub isolation: String,
    /// Lifecycle state.
    pub state: SessionState,
    /// Why it failed, readable by a person.
    pub reason: Option<String>,
    /// Limits.
    pub limits: SessionLimits,
    /// Whether the sandbox has network egress.
    pub network: bool,
    /// Creation time (Unix ms).
    pub created_ms: i64,
    /// When it became running.
    pub started_ms: Option<i64>,
    /// How long the start took, in ms.
    pub start_duration_ms: Option<i64>,
    /// When it stopped.
    pub stopped_ms: Option<i64>,
    /// When it stops by itself.
    pub expires_ms: i64,
}

/// `GET /api/server`: how this server runs sessions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServerInfo {
    /// The driver sessions get unless they ask: `gvisor` or `process`.
    pub driver: String,
    /// Its isolation: `strong` (a kernel of its own) or `weak` (the host's kernel).
    pub isolation: String,
    /// What the operator should know (weak isolation, and why).
    pub warnings: Vec<String>,
    /// Warm sandboxes per pool image.
    pub pool: Vec<PoolStatus>,
    /// What all sessions and warm sandboxes may use together.
    pub capacity: Resources,
    /// What they use now.
    pub used: Resources,
}

/// A pool image's warm sandboxes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PoolStatus {
    /// The image.
    pub image: String,
    /// Ready now.
    pub ready: u32,
    /// Kept ready.
    pub size: u32,
}

/// CPUs, memory and sandboxes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Resources {
    /// CPUs' worth of time.
    pub cpus: f64,
    /// MiB.
    pub memory_mb: u64,
    /// Sandboxes.
    pub sandboxes: u32,
}

/// `GET /api/me`: the caller.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Me {
    /// User id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Admin?
    pub is_admin: bool,
    /// `cookie`, `token` or `guest` (an invite's cookie).
    pub via: String,
    /// The session a scoped token or a guest is confined to.
    pub session_scope: Option<String>,
    /// A guest's role in that session (`None` for users).
    #[serde(default)]
    pub role: Option<crate::people::Role>,
}

/// `POST /api/tokens` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// What it is for (1 to 100 characters), e.g. the agent's name.
    pub name: String,
    /// Confine it to this session.
    #[serde(default)]
    pub session_id: Option<String>,
}

/// An API token as listed (never with its secret).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiToken {
    /// Id, for revoking.
    pub id: String,
    /// What it is for.
    pub name: String,
    /// When set, the token works for this session only.
    pub session_id: Option<String>,
    /// Creation time (Unix ms).
    pub created_ms: i64,
    /// Last use, if any.
    pub last_used_ms: Option<i64>,
}

/// `POST /api/tokens` answer: the record and its secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewToken {
    /// The secret (`flint_...`), shown this once.
    pub token: String,
    /// Its record.
    #[serde(flatten)]
    pub record: ApiToken,
}

/// `POST /api/sessions/{id}/extend` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ExtendSession {
    /// Seconds from now until the session stops by itself.
    pub lifetime_s: u64,
}

/// Server → browser text messages on a terminal websocket. Output travels as binary
/// messages: an 8-byte big-endian offset, then the bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TerminalServerMessage {
    /// First message: the offset of the first output byte to come, and the pty's size. The
    /// client shows exactly this size (letterboxed in a larger window, scrolled in a smaller
    /// one), whatever its own window's.
    Attached {
        /// Offset.
        offset: u64,
        /// Columns.
        cols: u16,
        /// Rows.
        rows: u16,
    },
    /// Bytes `from..to` were lost (the client fell too far behind); output resumes at `to`.
    Missed {
        /// First lost offset.
        from: u64,
        /// Where output resumes.
        to: u64,
    },
    /// The pty's size changed (see [`TerminalClientMessage::Resize`] for who sizes it).
    Resized {
        /// Columns.
        cols: u16,
        /// Rows.
        rows: u16,
    },
    /// A recoverable problem with something the client sent.
    Error {
        /// What.
        message: String,
    },
    /// The shell exited; last message.
    Exit {
        /// Exit code.
        code: Option<i32>,
        /// Killing signal.
        signal: Option<i32>,
    },
}

/// Browser → server text messages on a terminal websocket. Keystrokes travel as binary
/// messages of raw bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum TerminalClientMessage {
    /// The size the client's window has room for. The pty takes it while this client is the
    /// **typist** (the writer who typed last) or nobody has typed yet; typing brings it
    /// along. A viewer's is ignored.
    Resize {
        /// Columns.
        cols: u16,
        /// Rows.
        rows: u16,
    },
}

/// Server → browser messages on the events websocket (`GET /api/events/ws`): the caller's
/// sessions, live. JSON text messages.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventsMessage {
    /// Every session the caller may see, now: the first message, and again whenever the
    /// server could not keep up with this client (replace the whole list).
    Snapshot {
        /// The sessions, newest first.
        sessions: Vec<SessionInfo>,
    },
    /// A session was created or changed (state, lifetime): replace it by id.
    Session {
        /// Its new state.
        session: Box<SessionInfo>,
    },
    /// A session was deleted.
    Deleted {
        /// Its id.
        id: String,
    },
    /// Something happened in one of the caller's sessions (an agent's tool call starting or
    /// ending, a token made or revoked): append it to the session's activity feed, replacing
    /// an entry with the same `id` (a call's `started` entry is replaced by its end).
    Activity {
        /// The event.
        event: Box<ActivityEvent>,
    },
    /// Who is attached to one of the caller's sessions changed (someone came or went, or typed
    /// into a terminal another typed into last): replace that session's presence.
    Presence {
        /// The session.
        session_id: String,
        /// Its people now.
        presence: crate::people::Presence,
    },
    /// A session's listening ports changed (one opened or closed, made public or private, a
    /// share link made or revoked): replace that session's whole list.
    Ports {
        /// The session.
        session_id: String,
        /// Its ports now, sorted by port.
        ports: Vec<PreviewPort>,
    },
}

/// A listening port of a session and its preview (`GET /api/sessions/{id}/previews`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PreviewPort {
    /// The port in the sandbox.
    pub port: u16,
    /// The process listening, when known (`python3`).
    pub process: Option<String>,
    /// The preview URL, `http://{port}-{session}.{preview domain}[:port]/`. Private ports
    /// ask a browser to sign in through Flint; scripts send `X-Flint-Token`.
    pub url: String,
    /// App-relative link that opens the preview in a browser already signed in to Flint
    /// (it mints a single-use ticket): `/preview/open?session=...&port=...`.
    pub open_path: String,
    /// Anyone with the URL may open it.
    pub public: bool,
    /// Share links that are still valid.
    pub shares: Vec<ShareLink>,
}

/// An expiring, revocable link to one port that works without a Flint account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ShareLink {
    /// Its id (for revoking).
    pub id: String,
    /// The link itself: only in the answer that created it (the server keeps a hash).
    pub url: Option<String>,
    /// When it stops working (ms since the Unix epoch).
    pub expires_ms: i64,
}

/// `PUT /api/sessions/{id}/previews/{port}` request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SetPreview {
    /// Public (anyone with the URL) or private (the owner; tickets, tokens, share links).
    pub public: bool,
}

/// `POST /api/sessions/{id}/previews/{port}/shares` request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateShare {
    /// Seconds until the link stops working; default 86400 (a day), at most 30 days.
    pub expires_s: Option<u64>,
}

/// One entry of a session's activity feed and audit log (`GET /api/sessions/{id}/events`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActivityEvent {
    /// Increasing; a tool call keeps its id from `started` to its end.
    pub id: i64,
    /// When it started (Unix ms).
    pub at_ms: i64,
    /// The session.
    pub session_id: Option<String>,
    /// Who: a user's name, `agent: <token name>`, or `in-sandbox agent`.
    pub actor: String,
    /// The token it came through, if any (the activity panel offers to revoke it).
    pub token_id: Option<String>,
    /// What: `mcp.run_command`, `token.create`, `exec`, ...
    pub kind: String,
    /// Its arguments in a line, secrets redacted.
    pub summary: String,
    /// How it went.
    pub status: crate::audit::ToolStatus,
    /// The error, when it failed.
    pub error: Option<String>,
    /// How long it took, once it ended.
    pub duration_ms: Option<u64>,
    /// True when the sandbox reported it (`guest-agent mcp`) rather than the server seeing
    /// it happen.
    pub guest_reported: bool,
    /// The terminal it typed into (`run_command`, `send_keys`): the UI shows "agent is
    /// typing" there while it runs.
    pub terminal: Option<String>,
}

/// Bytes of the offset that starts every binary output message.
pub const OUTPUT_OFFSET_BYTES: usize = 8;

/// `POST /api/sessions/{id}/exec` body: a command without a pty, its output collected.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct ExecCommand {
    /// Program and arguments (no shell; use `["sh", "-c", "..."]` for one).
    pub argv: Vec<String>,
    /// Working directory; default `/workspace`.
    pub cwd: Option<String>,
    /// Extra environment variables.
    pub env: std::collections::BTreeMap<String, String>,
    /// Kill the command (and its process group) after this long; default 60 s.
    pub timeout_ms: Option<u64>,
}

/// `POST /api/sessions/{id}/exec` response. Output is text (invalid UTF-8 replaced); use the
/// file routes for binary data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExecResult {
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Exit code, when it exited normally.
    pub exit_code: Option<i32>,
    /// Killing signal, when it was killed.
    pub signal: Option<i32>,
    /// True when the timeout killed it.
    pub timed_out: bool,
    /// True when output beyond the collect limit was dropped.
    pub truncated: bool,
}
