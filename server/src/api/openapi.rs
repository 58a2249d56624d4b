//! The OpenAPI document of `/api`, served at `/api/openapi.json`. Schemas come from the types
//! themselves (`proto`'s `openapi` feature, `utoipa::ToSchema` here), never written by hand;
//! a test checks real responses against it.

use axum::Json;
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;

use crate::auth::Caller;

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(title = "Flint", description = "Sessions, terminals, files, exec and ports of Flint"),
    paths(
        crate::api::tokens::me,
        crate::api::tokens::server,
        crate::api::tokens::create,
        crate::api::tokens::list,
        crate::api::tokens::revoke,
        crate::auth::logout,
        crate::api::sessions::images,
        crate::api::sessions::create,
        crate::api::sessions::list,
        crate::api::sessions::get,
        crate::api::sessions::delete,
        crate::api::sessions::extend,
        crate::api::sessions::events,
        crate::api::sessions::terminals,
        crate::api::sessions::create_terminal,
        crate::api::sessions::kill_terminal,
        crate::api::terminal_ws::terminal_ws,
        crate::api::events_ws::events_ws,
        crate::api::files::list,
        crate::api::files::remove,
        crate::api::files::mkdir,
        crate::api::files::rename,
        crate::api::files::stat,
        crate::api::files::read,
        crate::api::files::write,
        crate::api::files::workspace_tar,
        crate::api::files::exec,
        crate::api::files::ports,
        crate::api::previews::list,
        crate::api::previews::set,
        crate::api::previews::share,
        crate::api::previews::unshare,
        crate::api::people::create,
        crate::api::people::list,
        crate::api::people::revoke,
        crate::api::people::remove,
        crate::api::people::presence,
        crate::api::people::accept,
        crate::api::browser::status,
        crate::api::browser::navigate,
        crate::api::browser::screenshot,
        crate::api::browser::browser_ws,
    ),
    // Websocket messages: no route returns them as a body, so they are listed here.
    components(schemas(
        proto::api::EventsMessage,
        proto::api::TerminalServerMessage,
        proto::api::TerminalClientMessage,
        proto::browser::BrowserServerMessage,
        proto::browser::BrowserClientMessage
    ))
)]
pub struct ApiDoc;

/// `GET /api/openapi.json`
#[allow(clippy::unused_async)]
pub async fn openapi(_caller: Caller) -> Response {
    Json(ApiDoc::openapi()).into_response()
}
