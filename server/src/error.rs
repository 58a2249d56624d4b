//! The server's one error type: a status and `{"error": "..."}`; internals are logged, not
//! sent.

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
}

impl AppError {
    /// Any status with a message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> AppError {
        AppError { status, message: message.into() }
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
        (self.status, Json(serde_json::json!({ "error": self.message }))).into_response()
    }
}

/// The body of every error response (for the OpenAPI document).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong, readable by a person.
    pub error: String,
}

/// The server's result.
pub type Result<T, E = AppError> = std::result::Result<T, E>;
