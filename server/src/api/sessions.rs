//! `/api/sessions`: sessions and their terminals.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use proto::api::{CreateSession, ExtendSession};
use proto::terminal::{CreateTerminal, TerminalId};

use crate::app::{AppState, JsonBody};
use crate::auth::Caller;
use crate::core::{Action, perform};
use crate::error::{AppError, Result};

async fn respond(
    state: &AppState,
    caller: &Caller,
    action: Action,
    status: StatusCode,
) -> Result<Response> {
    let outcome = perform(state, caller, action).await?;
    if status == StatusCode::NO_CONTENT {
        return Ok(status.into_response());
    }
    Ok((status, Json(outcome.to_json()?)).into_response())
}

/// `POST /api/sessions`
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<CreateSession>,
) -> Result<Response> {
    respond(&state, &caller, Action::CreateSession(request), StatusCode::CREATED).await
}

/// `GET /api/sessions`
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Response> {
    respond(&state, &caller, Action::ListSessions, StatusCode::OK).await
}

/// `GET /api/sessions/{id}`
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    respond(&state, &caller, Action::GetSession { id }, StatusCode::OK).await
}

/// `DELETE /api/sessions/{id}`
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    respond(&state, &caller, Action::DeleteSession { id }, StatusCode::NO_CONTENT).await
}

/// `POST /api/sessions/{id}/extend`
pub async fn extend(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ExtendSession>,
) -> Result<Response> {
    respond(
        &state,
        &caller,
        Action::ExtendSession { id, lifetime_s: body.lifetime_s },
        StatusCode::OK,
    )
    .await
}

/// `GET /api/sessions/{id}/terminals`
pub async fn terminals(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    respond(&state, &caller, Action::ListTerminals { id }, StatusCode::OK).await
}

/// `POST /api/sessions/{id}/terminals`
pub async fn create_terminal(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<CreateTerminal>,
) -> Result<Response> {
    respond(&state, &caller, Action::CreateTerminal { id, request }, StatusCode::CREATED).await
}

/// `DELETE /api/sessions/{id}/terminals/{tid}`
pub async fn kill_terminal(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, tid)): Path<(String, String)>,
) -> Result<Response> {
    let terminal =
        TerminalId::parse(&tid).ok_or_else(|| AppError::not_found(format!("no terminal {tid}")))?;
    respond(&state, &caller, Action::KillTerminal { id, terminal }, StatusCode::NO_CONTENT).await
}

/// `GET /api/sessions/{id}/events`
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    respond(&state, &caller, Action::SessionEvents { id }, StatusCode::OK).await
}
