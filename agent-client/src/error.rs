//! The crate's one error type: an API error with its wire code, or a transport failure.

use proto::error::{ErrorBody, ErrorCode};

/// What went wrong, in the agent or in a client call to it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An error the API answers with (or answered with, on the client side).
    #[error("{message}")]
    Api {
        /// Its wire code.
        code: ErrorCode,
        /// Lower-case human-readable message.
        message: String,
    },
    /// The connection to the agent failed.
    #[error("agent transport: {0}")]
    Transport(String),
}

impl Error {
    /// An API error.
    pub fn api(code: ErrorCode, message: impl Into<String>) -> Error {
        Error::Api { code, message: message.into() }
    }

    /// A 400.
    pub fn bad_request(message: impl Into<String>) -> Error {
        Error::api(ErrorCode::BadRequest, message)
    }

    /// A 404 for a missing resource.
    pub fn not_found(message: impl Into<String>) -> Error {
        Error::api(ErrorCode::NotFound, message)
    }

    /// The wire code (transport failures count as internal).
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Api { code, .. } => *code,
            Error::Transport(_) => ErrorCode::Internal,
        }
    }

    /// The error as a wire body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody { error: self.to_string(), code: self.code() }
    }

    /// Maps an I/O error about `what` (usually a path) to the closest API error.
    pub fn io(what: &str, err: std::io::Error) -> Error {
        use std::io::ErrorKind as K;
        let code = match err.kind() {
            K::NotFound => ErrorCode::NotFound,
            K::PermissionDenied => ErrorCode::PermissionDenied,
            K::AlreadyExists => ErrorCode::AlreadyExists,
            K::IsADirectory => ErrorCode::IsADirectory,
            K::NotADirectory => ErrorCode::NotADirectory,
            K::DirectoryNotEmpty => ErrorCode::DirectoryNotEmpty,
            K::InvalidInput | K::InvalidFilename => ErrorCode::BadRequest,
            K::ConnectionRefused => ErrorCode::ConnectionRefused,
            _ => ErrorCode::Internal,
        };
        let reason = match code {
            ErrorCode::NotFound => "not found".to_owned(),
            ErrorCode::PermissionDenied => "permission denied".to_owned(),
            ErrorCode::AlreadyExists => "already exists".to_owned(),
            ErrorCode::IsADirectory => "is a directory".to_owned(),
            ErrorCode::NotADirectory => "not a directory".to_owned(),
            ErrorCode::DirectoryNotEmpty => "directory not empty".to_owned(),
            _ => err.to_string().to_lowercase(),
        };
        Error::api(code, format!("{what}: {reason}"))
    }
}

impl From<proto::frame::FrameError> for Error {
    fn from(err: proto::frame::FrameError) -> Error {
        let code = match err {
            proto::frame::FrameError::TooLarge(_) => ErrorCode::TooLarge,
            _ => ErrorCode::BadRequest,
        };
        Error::api(code, err.to_string())
    }
}

/// The crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
