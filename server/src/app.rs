//! The HTTP application: state, router and the JSON extractor whose rejection speaks our
//! error shape.

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use serde::de::DeserializeOwned;

use crate::config::Config;
use crate::error::AppError;
use crate::metrics::Metrics;
use crate::store::Store;

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    /// The configuration.
    pub config: Arc<Config>,
    /// The database.
    pub store: Store,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// The sessions.
    pub sessions: Arc<crate::sessions::Sessions>,
    /// Revocation signals of bearer tokens in use.
    pub revocations: Arc<crate::activity::Revocations>,
    /// Preview tickets and cookies.
    pub previews: Arc<crate::preview::Previews>,
    /// The preview proxy's client.
    pub proxy: crate::preview::proxy::Proxy,
    /// Who drives each session's shared browser.
    pub browsers: Arc<crate::browser::Browsers>,
    /// Who is attached to each session.
    pub people: Arc<crate::people::People>,
}

/// The whole router; `main` serves it, tests call it.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(crate::metrics::metrics))
        .route("/login", get(crate::auth::login))
        .route("/preview/open", get(crate::preview::open))
        .merge(crate::api::router())
        .merge(crate::mcp::router(&state))
        .fallback(fallback)
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::auth::check_host))
        // Outermost: preview hosts never reach the app's routes or its host check.
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::preview::dispatch))
        .with_state(state)
}

/// The router of `--preview-listen`: previews only. Any other host (`localhost` included)
/// gets a 404 there, never the API, the login page or the web app: a listener exposed for
/// previews opens nothing else.
pub fn previews_only(state: AppState) -> Router {
    let origin = state.config.public_origin.to_origin_string();
    Router::new()
        .fallback(move || async move {
            AppError::not_found(format!("this address serves previews only; Flint is at {origin}"))
                .into_response()
        })
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::preview::dispatch))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// The API's unknown routes are JSON 404s; any other `GET` belongs to the web app.
async fn fallback(method: http::Method, uri: http::Uri, headers: http::HeaderMap) -> Response {
    let api = uri.path() == "/api" || uri.path().starts_with("/api/");
    if !api && (method == http::Method::GET || method == http::Method::HEAD) {
        return crate::web::serve(uri, headers).await;
    }
    AppError::not_found(format!("no route {}", uri.path())).into_response()
}

/// `Json` with our error shape on rejection (bad JSON is a 400 `{"error": ...}`, a wrong
/// content type a 415).
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, AppError> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(JsonBody(value)),
            Err(rejection) => {
                Err(AppError::new(rejection.status(), rejection.body_text().to_lowercase()))
            }
        }
    }
}
