//! The REST API under `/api`: handlers only translate to [`crate::core::Action`].

use axum::Router;
use axum::routing::{delete, get, post};

use crate::app::AppState;

pub(crate) mod browser;
pub(crate) mod events_ws;
pub(crate) mod files;
pub mod openapi;
pub(crate) mod people;
pub(crate) mod previews;
pub(crate) mod sessions;
mod terminal_outbox;
pub(crate) mod terminal_ws;
pub(crate) mod tokens;

/// Every `/api` route.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/openapi.json", get(openapi::openapi))
        .route("/api/me", get(tokens::me))
        .route("/api/server", get(tokens::server))
        .route("/api/logout", post(crate::auth::logout))
        .route("/api/tokens", get(tokens::list).post(tokens::create))
        .route("/api/tokens/{id}", delete(tokens::revoke))
        .route("/api/events/ws", get(events_ws::events_ws))
        .route("/api/images", get(sessions::images))
        .route("/api/sessions", get(sessions::list).post(sessions::create))
        .route("/api/sessions/{id}", get(sessions::get).delete(sessions::delete))
        .route("/api/sessions/{id}/extend", post(sessions::extend))
        .route("/api/sessions/{id}/events", get(sessions::events))
        .route(
            "/api/sessions/{id}/terminals",
            get(sessions::terminals).post(sessions::create_terminal),
        )
        .route("/api/sessions/{id}/terminals/{tid}", delete(sessions::kill_terminal))
        .route("/api/sessions/{id}/files", get(files::list).delete(files::remove))
        .route("/api/sessions/{id}/files/content", get(files::read).put(files::write))
        .route("/api/sessions/{id}/files/stat", get(files::stat))
        .route("/api/sessions/{id}/files/mkdir", post(files::mkdir))
        .route("/api/sessions/{id}/files/move", post(files::rename))
        .route("/api/sessions/{id}/workspace.tar", get(files::workspace_tar))
        .route("/api/sessions/{id}/exec", post(files::exec))
        .route("/api/sessions/{id}/ports", get(files::ports))
        .route("/api/sessions/{id}/previews", get(previews::list))
        .route("/api/sessions/{id}/previews/{port}", axum::routing::put(previews::set))
        .route("/api/sessions/{id}/previews/{port}/shares", post(previews::share))
        .route("/api/sessions/{id}/previews/{port}/shares/{share}", delete(previews::unshare))
        .route("/api/sessions/{id}/terminals/{tid}/ws", get(crate::api::terminal_ws::terminal_ws))
        .route("/api/sessions/{id}/invites", get(people::list).post(people::create))
        .route("/api/sessions/{id}/invites/{invite}", delete(people::revoke))
        .route("/api/sessions/{id}/people", get(people::presence))
        .route("/api/sessions/{id}/people/{guest}", delete(people::remove))
        .route("/api/invites/accept", post(people::accept))
        .route("/api/sessions/{id}/browser", get(browser::status))
        .route("/api/sessions/{id}/browser/navigate", post(browser::navigate))
        .route("/api/sessions/{id}/browser/screenshot", get(browser::screenshot))
        .route("/api/sessions/{id}/browser/ws", get(browser::browser_ws))
}
