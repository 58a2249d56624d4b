//! The server's one error type: a status and `{"error": "...", "code": "..."}`; internals are
//! logged, not sent.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;

/// An error answered to an API client.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    /// The HTTP status.
    pub status: StatusCode,
    /// Lower-case, no trailing dot; safe to show to a person.
    pub message: String,
    /// Machine-readable reason, when the status alone does not say it (else the status's
    /// own: `not_found`, `forbidden`, ...).
    pub code: Option<&'static str>,
}

impl AppError {
    /// Any status with a message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> AppError {
        AppError { status, message: message.into(), code: None }
    }

    /// The same error with a code of its own.
    pub fn with_code(self, code: &'static str) -> AppError {
        AppError { code: Some(code), ..self }
    }

    /// 401 `access_ended`: a guest's cookie that was good once (an invite's) no longer is;
    /// `why` says what happened, for the page the guest lands on.
    pub fn access_ended(why: &str) -> AppError {
        AppError::new(StatusCode::UNAUTHORIZED, format!("your access to this session ended: {why}"))
            .with_code(ACCESS_ENDED)
    }

    /// The code the body carries.
    pub fn code(&self) -> &'static str {
        self.code.unwrap_or(match self.status.as_u16() {
            400 => "bad_request",
            401 => "unauthorized",
            403 => "forbidden",
            404 => "not_found",
            409 => "conflict",
            410 => "gone",
            413 => "too_large",
            421 => "misdirected",
            429 => "too_many_requests",
            502 => "bad_gateway",
            503 => "unavailable",
            504 => "timeout",
            _ => "internal",
        })
    }

    /// 400
    pub fn bad_request(message: impl Into<String>) -> AppError {
        AppError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 401
    pub fn unauthorized() -> AppError {
        AppError::new(StatusCode::UNAUTHORIZED, "sign in or send a bearer token")
    }

    /// 403
    pub fn forbidden(message: impl Into<String>) -> AppError {
        AppError::new(StatusCode::FORBIDDEN, message)
    }

    /// 404
    pub fn not_found(message: impl Into<String>) -> AppError {
        AppError::new(StatusCode::NOT_FOUND, message)
    }

    /// 500; the cause is logged, the client gets a generic message.
    pub fn internal(cause: impl std::fmt::Display) -> AppError {
        tracing::error!("internal error: {cause}");
        AppError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error (see the server log)")
    }
}

impl From<sqlx::Error> for AppError {
    fn from(err: sqlx::Error) -> AppError {
        AppError::internal(format!("store: {err}"))
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let code = self.code();
        (self.status, Json(serde_json::json!({ "error": self.message, "code": code })))
            .into_response()
    }
}

/// The body of every error response (for the OpenAPI document).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong, readable by a person.
    pub error: String,
    /// Machine-readable: the status's (`not_found`, `forbidden`, ...) or one of its own, as
    /// `access_ended` (a guest's invite was revoked, they were removed, or the session was
    /// deleted).
    pub code: String,
}

/// Code of [`AppError::access_ended`].
pub const ACCESS_ENDED: &str = "access_ended";

/// The server's result.
pub type Result<T, E = AppError> = std::result::Result<T, E>;
