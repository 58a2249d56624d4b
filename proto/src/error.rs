//! The one error body every agent route answers with: `{"error": "...", "code": "..."}`.

use serde::{Deserialize, Serialize};

/// Machine-readable reason for an error; [`ErrorCode::status`] maps it to an HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// No route is declared for this method and path.
    UnknownRoute,
    /// The secret is missing or wrong.
    Unauthorized,
    /// The body, query or a frame is malformed.
    BadRequest,
    /// The named terminal, file or port does not exist.
    NotFound,
    /// A file operation met a directory.
    IsADirectory,
    /// A path component is not a directory.
    NotADirectory,
    /// The operating system refused the operation.
    PermissionDenied,
    /// The target already exists.
    AlreadyExists,
    /// A directory is not empty and the removal was not recursive.
    DirectoryNotEmpty,
    /// A write's precondition failed: the file changed (or went) since the time it named.
    FileChanged,
    /// A body or frame is larger than allowed.
    TooLarge,
    /// A per-agent limit (for example concurrent tunnels) is reached; try again later.
    Busy,
    /// The shell is not at an empty prompt (a command runs, or a person is mid-line).
    ShellBusy,
    /// The terminal's shell prints no shell integration marks (OSC 133).
    NoShellIntegration,
    /// A wait ran out of time.
    Timeout,
    /// The port refused the connection.
    ConnectionRefused,
    /// The shared browser cannot run here (no Chromium in the image, or it failed to start).
    BrowserUnavailable,
    /// The browser could not load the page (DNS, refused connection, TLS...).
    NavigationFailed,
    /// Anything else; details are in the agent's log.
    Internal,
}

impl ErrorCode {
    /// The HTTP status this error is answered with.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::UnknownRoute | ErrorCode::NotFound => 404,
            ErrorCode::Unauthorized => 401,
            ErrorCode::BadRequest | ErrorCode::NotADirectory => 400,
            ErrorCode::IsADirectory
            | ErrorCode::AlreadyExists
            | ErrorCode::DirectoryNotEmpty
            | ErrorCode::FileChanged
            | ErrorCode::ShellBusy
            | ErrorCode::NoShellIntegration => 409,
            ErrorCode::Timeout => 504,
            ErrorCode::PermissionDenied => 403,
            ErrorCode::TooLarge => 413,
            ErrorCode::Busy | ErrorCode::BrowserUnavailable => 503,
            ErrorCode::ConnectionRefused | ErrorCode::NavigationFailed => 502,
            ErrorCode::Internal => 500,
        }
    }
}

/// JSON body of every error response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Human-readable, lower-case, no trailing dot.
    pub error: String,
    /// Machine-readable reason.
    pub code: ErrorCode,
}
