//! The REST API under `/api`: handlers only translate to [`crate::core::Action`].

use axum::Router;
use axum::routing::{delete, get, post};

use crate::app::AppState;

mod tokens;

/// Every `/api` route.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/me", get(tokens::me))
        .route("/api/logout", post(crate::auth::logout))
        .route("/api/tokens", get(tokens::list).post(tokens::create))
        .route("/api/tokens/{id}", delete(tokens::revoke))
}
