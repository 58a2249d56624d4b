//! The web app (`web/dist`, built by Trunk): served at every path that is not the API's. A
//! release binary embeds the files, so it runs alone; a debug build reads them from
//! `web/dist` on each request (rebuild the app, reload the page).
//!
//! Paths without a file are the app's own routes (`/s/{id}`) and get `index.html`; a missing
//! file with an extension is a 404. Every response has an `ETag` (the file's SHA-256), so a
//! browser revalidates cheaply and never runs a stale app after an upgrade.

use axum::body::Body;
use axum::response::{Html, IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, Uri, header};

use crate::error::AppError;

#[derive(rust_embed::Embed)]
// Relative to this crate's manifest (rust-embed does not expand `$VARS` without a feature).
#[folder = "../web/dist"]
#[allow_missing = true]
struct Dist;

/// True when the app is there to serve (built before this binary, or on disk in debug).
pub fn available() -> bool {
    Dist::get("index.html").is_some()
}

/// `GET` of any non-API path.
pub async fn serve(uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path().trim_start_matches('/');
    let (file, name) = match Dist::get(path).filter(|_| !path.is_empty()) {
        Some(file) => (file, path),
        None => {
            let last = path.rsplit('/').next().unwrap_or_default();
            if last.contains('.') {
                return AppError::not_found(format!("no file /{path}")).into_response();
            }
            match Dist::get("index.html") {
                Some(file) => (file, "index.html"),
                None => return not_built(),
            }
        }
    };
    let etag = format!("\"{}\"", hex(&file.metadata.sha256_hash()));
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = Response::new(Body::from(file.data.into_owned()));
        if let Ok(mime) = HeaderValue::from_str(file.metadata.mimetype()) {
            response.headers_mut().insert(header::CONTENT_TYPE, mime);
        }
        response
    };
    let headers = response.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, etag);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Monaco (the editor) makes its language workers from `blob:` URLs of its own scripts
    // and ships its icon font as a `data:` URL: hence worker-src and font-src.
    if name == "index.html" {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; script-src 'self' 'wasm-unsafe-eval' 'unsafe-inline'; \
                 style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data: blob:; \
                 font-src 'self' data:; worker-src 'self' blob:; frame-ancestors 'none'",
            ),
        );
    }
    response
}

/// Without a built app: say how to get one (the API works regardless).
fn not_built() -> Response {
    Html(
        "<!doctype html><meta charset=utf-8><title>Flint</title>\
         <body style=\"font-family:sans-serif;background:#111;color:#ddd;padding:3em\">\
         <h1>Flint</h1><p>The web app is not built into this binary. Run <code>cargo xtask \
         run</code>, which builds it, or use the API (<code>/api/openapi.json</code>).</p>\
         <p>Sign in with the single-use link that <code>flint serve</code> printed, or run \
         <code>flint login-url</code> for a new one.</p></body>",
    )
    .into_response()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
