//! Preview URLs of a session's ports over REST: list, public/private, share links.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use proto::api::{CreateShare, PreviewPort, SetPreview, ShareLink};

use crate::app::{AppState, JsonBody};
use crate::auth::Caller;
use crate::core::{Action, Outcome, perform};
use crate::error::{ErrorBody, Result};

async fn answer(
    state: &AppState,
    caller: &Caller,
    action: Action,
    status: StatusCode,
) -> Result<Response> {
    match perform(state, caller, action).await? {
        Outcome::Done => Ok(StatusCode::NO_CONTENT.into_response()),
        outcome => Ok((status, Json(outcome.to_json()?)).into_response()),
    }
}

/// `GET /api/sessions/{id}/previews`
#[utoipa::path(get, path = "/api/sessions/{id}/previews", tag = "previews", params(("id" = String, Path, description = "session id")), responses((status = 200, body = Vec<PreviewPort>), (status = 401, description = "no credential", body = ErrorBody), (status = 404, description = "no such session", body = ErrorBody), (status = 409, description = "the session is not running", body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    answer(&state, &caller, Action::ListPreviews { id }, StatusCode::OK).await
}

/// `PUT /api/sessions/{id}/previews/{port}`
#[utoipa::path(put, path = "/api/sessions/{id}/previews/{port}", tag = "previews", params(("id" = String, Path, description = "session id"), ("port" = u16, Path, description = "port in the sandbox")), request_body = SetPreview, responses((status = 200, body = PreviewPort), (status = 400, body = ErrorBody), (status = 401, description = "no credential", body = ErrorBody), (status = 404, description = "no such session", body = ErrorBody)))]
pub async fn set(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, port)): Path<(String, u16)>,
    JsonBody(request): JsonBody<SetPreview>,
) -> Result<Response> {
    let action = Action::SetPreview { id, port, public: request.public };
    answer(&state, &caller, action, StatusCode::OK).await
}

/// `POST /api/sessions/{id}/previews/{port}/shares`
#[utoipa::path(post, path = "/api/sessions/{id}/previews/{port}/shares", tag = "previews", params(("id" = String, Path, description = "session id"), ("port" = u16, Path, description = "port in the sandbox")), request_body = CreateShare, responses((status = 201, body = ShareLink), (status = 400, body = ErrorBody), (status = 401, description = "no credential", body = ErrorBody), (status = 404, description = "no such session", body = ErrorBody)))]
pub async fn share(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, port)): Path<(String, u16)>,
    JsonBody(request): JsonBody<CreateShare>,
) -> Result<Response> {
    let action = Action::CreateShare { id, port, expires_s: request.expires_s };
    answer(&state, &caller, action, StatusCode::CREATED).await
}

/// `DELETE /api/sessions/{id}/previews/{port}/shares/{share}`
#[utoipa::path(delete, path = "/api/sessions/{id}/previews/{port}/shares/{share}", tag = "previews", params(("id" = String, Path, description = "session id"), ("port" = u16, Path, description = "port in the sandbox"), ("share" = String, Path, description = "share link id")), responses((status = 204), (status = 401, description = "no credential", body = ErrorBody), (status = 404, description = "no such session or share link", body = ErrorBody)))]
pub async fn unshare(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, port, share)): Path<(String, u16, String)>,
) -> Result<Response> {
    answer(&state, &caller, Action::RevokeShare { id, port, share }, StatusCode::OK).await
}
