//! `/api/me` and `/api/tokens`.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::Deserialize;

use crate::app::{AppState, JsonBody};
use crate::auth::Caller;
use crate::core::{Action, perform};
use crate::error::Result;

/// `GET /api/me`
pub async fn me(State(state): State<AppState>, caller: Caller) -> Result<Response> {
    Ok(Json(perform(&state, &caller, Action::WhoAmI).await?.to_json()?).into_response())
}

/// `POST /api/tokens` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    name: String,
    #[serde(default)]
    session_id: Option<String>,
}

/// `POST /api/tokens`
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
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Response> {
    Ok(Json(perform(&state, &caller, Action::ListTokens).await?.to_json()?).into_response())
}

/// `DELETE /api/tokens/{id}`
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    perform(&state, &caller, Action::RevokeToken { id }).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
