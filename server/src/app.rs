//! The HTTP application: state, router and the JSON extractor whose rejection speaks our
//! error shape.

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequest, Request};
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
}

/// The whole router; `main` serves it, tests call it.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/healthz", get(healthz))
        .route("/metrics", get(crate::metrics::metrics))
        .route("/login", get(crate::auth::login))
        .merge(crate::api::router())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::auth::check_host))
        .with_state(state)
}

/// A placeholder home page until the web app arrives: who is signed in, and where the API is.
async fn home(
    axum::extract::State(state): axum::extract::State<AppState>,
    headers: http::HeaderMap,
) -> Result<axum::response::Html<String>, AppError> {
    let body = match crate::auth::cookie_user(&state, &headers).await? {
        Some(user) => format!(
            "<p>Signed in as <b>{}</b>.</p><p>The web workspace is not built yet; the API is \
             live: <a href=\"/api/me\">/api/me</a>, <code>/api/tokens</code>.</p>",
            escape_html(&user.name)
        ),
        None => "<p>Sign in with the single-use link that <code>flint serve</code> printed, \
                 or run <code>flint login-url</code> for a new one.</p>"
            .to_owned(),
    };
    Ok(axum::response::Html(format!(
        "<!doctype html><meta charset=utf-8><title>Flint</title>\
         <body style=\"font-family:sans-serif;background:#111;color:#ddd;padding:3em\">\
         <h1>Flint</h1>{body}</body>"
    )))
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn not_found(uri: http::Uri) -> AppError {
    AppError::not_found(format!("no route {}", uri.path()))
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
