//! `/api/sessions`: sessions and their terminals.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use proto::api::ActivityEvent;
use proto::api::SessionInfo;
use proto::api::{CreateSession, ExtendSession};
use proto::terminal::TerminalInfo;
use proto::terminal::{CreateTerminal, TerminalId};

use crate::app::{AppState, JsonBody};
use crate::auth::Caller;
use crate::core::{Action, Outcome, perform};
use crate::error::ErrorBody;
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

/// `GET /api/images`
#[utoipa::path(get, path = "/api/images", tag = "sessions", responses((status = 200, body = Vec<proto::api::ImageInfo>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn images(State(state): State<AppState>, caller: Caller) -> Result<Response> {
    respond(&state, &caller, Action::ListImages, StatusCode::OK).await
}

/// `POST /api/sessions`
#[utoipa::path(post, path = "/api/sessions", tag = "sessions", request_body = CreateSession, responses((status = 201, body = SessionInfo), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<CreateSession>,
) -> Result<Response> {
    respond(&state, &caller, Action::CreateSession(request), StatusCode::CREATED).await
}

/// `GET /api/sessions`
#[utoipa::path(get, path = "/api/sessions", tag = "sessions", responses((status = 200, body = Vec<SessionInfo>), (status = 401, body = ErrorBody)))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Response> {
    respond(&state, &caller, Action::ListSessions, StatusCode::OK).await
}

/// `GET /api/sessions/{id}`
#[utoipa::path(get, path = "/api/sessions/{id}", tag = "sessions", params(("id" = String, Path, description = "session id")), responses((status = 200, body = SessionInfo), (status = 401, description = "no credential", body = ErrorBody), (status = 404, description = "no such session", body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    respond(&state, &caller, Action::GetSession { id }, StatusCode::OK).await
}

/// `DELETE /api/sessions/{id}`
#[utoipa::path(delete, path = "/api/sessions/{id}", tag = "sessions", params(("id" = String, Path, description = "session id")), responses((status = 204), (status = 401, description = "no credential", body = ErrorBody), (status = 404, description = "no such session", body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    respond(&state, &caller, Action::DeleteSession { id }, StatusCode::NO_CONTENT).await
}

/// `POST /api/sessions/{id}/extend`
#[utoipa::path(post, path = "/api/sessions/{id}/extend", tag = "sessions", params(("id" = String, Path, description = "session id")), request_body = ExtendSession, responses((status = 200, body = SessionInfo), (status = 401, description = "no credential", body = ErrorBody), (status = 404, description = "no such session", body = ErrorBody)))]
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
#[utoipa::path(get, path = "/api/sessions/{id}/terminals", tag = "terminals", params(("id" = String, Path, description = "session id")), responses((status = 200, body = Vec<TerminalInfo>), (status = 401, description = "no credential", body = ErrorBody), (status = 404, description = "no such session", body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn terminals(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    respond(&state, &caller, Action::ListTerminals { id }, StatusCode::OK).await
}

/// `POST /api/sessions/{id}/terminals`
#[utoipa::path(post, path = "/api/sessions/{id}/terminals", tag = "terminals", params(("id" = String, Path, description = "session id")), request_body = CreateTerminal, responses((status = 201, body = TerminalInfo), (status = 401, description = "no credential", body = ErrorBody), (status = 404, description = "no such session", body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_terminal(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<CreateTerminal>,
) -> Result<Response> {
    respond(&state, &caller, Action::CreateTerminal { id, request }, StatusCode::CREATED).await
}

/// `DELETE /api/sessions/{id}/terminals/{tid}`
#[utoipa::path(delete, path = "/api/sessions/{id}/terminals/{tid}", tag = "terminals", params(("id" = String, Path, description = "session id"), ("tid" = String, Path, description = "terminal id")), responses((status = 204), (status = 401, description = "no credential", body = ErrorBody), (status = 404, description = "no such session", body = ErrorBody)))]
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
#[utoipa::path(get, path = "/api/sessions/{id}/events", tag = "sessions", params(("id" = String, Path, description = "session id"), ("limit" = Option<i64>, Query, description = "at most this many, the newest (1 to 1000, the default)"), ("before" = Option<i64>, Query, description = "only entries older than this id: the first id of the page before")), responses((status = 200, body = Vec<ActivityEvent>, description = "oldest first; with a `Link: <...>; rel=\"next\"` header when older entries remain"), (status = 401, description = "no credential", body = ErrorBody), (status = 404, description = "no such session", body = ErrorBody)))]
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(page): Query<EventsPage>,
) -> Result<Response> {
    let limit = page.limit.unwrap_or(crate::store::EVENTS_PAGE_MAX);
    let action = Action::SessionEvents { id: id.clone(), limit: Some(limit), before: page.before };
    let Outcome::Events(events) = perform(&state, &caller, action).await? else {
        return Err(AppError::internal("session events gave no events"));
    };
    // A full page may have older entries behind it: say where they are.
    let next = events
        .first()
        .filter(|_| i64::try_from(events.len()).is_ok_and(|n| n >= limit.max(1)))
        .map(|first| {
            format!("</api/sessions/{id}/events?before={}&limit={limit}>; rel=\"next\"", first.id)
        });
    let mut response = Json(events).into_response();
    if let Some(link) = next.and_then(|l: String| http::HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(http::header::LINK, link);
    }
    Ok(response)
}

/// `GET /api/sessions/{id}/events` query: a page of the feed.
#[derive(serde::Deserialize)]
pub struct EventsPage {
    limit: Option<i64>,
    before: Option<i64>,
}
