//! `/api/me` and `/api/tokens`.

use proto::api::Me;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use proto::api::{ApiToken, CreateToken, NewToken};

use crate::app::{AppState, JsonBody};
use crate::auth::Caller;
use crate::core::{Action, perform};
use crate::error::ErrorBody;
use crate::error::Result;

/// `GET /api/me`
#[utoipa::path(get, path = "/api/me", tag = "auth", responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
pub async fn me(State(state): State<AppState>, caller: Caller) -> Result<Response> {
    Ok(Json(perform(&state, &caller, Action::WhoAmI).await?.to_json()?).into_response())
}

/// `GET /api/server`
#[utoipa::path(get, path = "/api/server", tag = "auth", responses((status = 200, body = proto::api::ServerInfo), (status = 401, body = ErrorBody)))]
pub async fn server(State(state): State<AppState>, caller: Caller) -> Result<Response> {
    Ok(Json(perform(&state, &caller, Action::ServerInfo).await?.to_json()?).into_response())
}

/// `POST /api/tokens`
#[utoipa::path(post, path = "/api/tokens", tag = "auth", request_body = CreateToken, responses((status = 201, body = NewToken), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateToken>,
) -> Result<Response> {
    let action = Action::CreateToken { name: body.name, session_id: body.session_id };
    Ok((StatusCode::CREATED, Json(perform(&state, &caller, action).await?.to_json()?))
        .into_response())
}

/// `GET /api/tokens`
#[utoipa::path(get, path = "/api/tokens", tag = "auth", responses((status = 200, body = Vec<ApiToken>), (status = 401, body = ErrorBody)))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Response> {
    Ok(Json(perform(&state, &caller, Action::ListTokens).await?.to_json()?).into_response())
}

/// `DELETE /api/tokens/{id}`
#[utoipa::path(delete, path = "/api/tokens/{id}", tag = "auth", params(("id" = String, Path, description = "token id")), responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    perform(&state, &caller, Action::RevokeToken { id }).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
