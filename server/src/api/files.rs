//! Per-session files, exec and ports over REST: the surface E2B's SDK users know. Paths are
//! absolute, or relative to `/workspace`.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use http_body_util::BodyExt as _;
use proto::api::ExecCommand;
use proto::api::ExecResult;
use proto::files::{FileList, FileStat};
use proto::files::{MkdirRequest, MoveRequest, ReadQuery, RemoveRequest, WriteQuery};
use proto::ports::PortList;
use serde::Deserialize;

use crate::app::{AppState, JsonBody};
use crate::auth::Caller;
use crate::core::{Action, Need, Outcome, agent_error, perform};
use crate::error::ErrorBody;
use crate::error::{AppError, Result};

/// Resolves a path against `/workspace`.
fn resolve(path: &str) -> String {
    if path.starts_with('/') { path.to_owned() } else { format!("/workspace/{path}") }
}

async fn json(state: &AppState, caller: &Caller, action: Action) -> Result<Response> {
    let outcome = perform(state, caller, action).await?;
    match outcome {
        Outcome::Done => Ok(StatusCode::NO_CONTENT.into_response()),
        outcome => Ok(Json(outcome.to_json()?).into_response()),
    }
}

async fn agent(
    state: &AppState,
    caller: &Caller,
    id: String,
    need: Need,
) -> Result<agent_client::client::Client> {
    match perform(state, caller, Action::ConnectAgent { id, need }).await? {
        Outcome::Agent(client) => Ok(client),
        _ => Err(AppError::internal("connect-agent gave no agent")),
    }
}

/// Query of the listing and removal routes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathQuery {
    path: String,
    depth: Option<u32>,
    #[serde(default)]
    recursive: bool,
}

/// `GET /api/sessions/{id}/files?path=&depth=`
#[utoipa::path(get, path = "/api/sessions/{id}/files", tag = "files", params(("id" = String, Path, description = "session id"), ("path" = String, Query, description = "absolute, or relative to /workspace"), ("depth" = Option<u32>, Query, description = "levels, default 1")), responses((status = 200, body = FileList), (status = 401, description = "no credential", body = ErrorBody), (status = 404, description = "no such session", body = ErrorBody), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<PathQuery>,
) -> Result<Response> {
    json(&state, &caller, Action::ListFiles { id, path: resolve(&q.path), depth: q.depth }).await
}

/// `DELETE /api/sessions/{id}/files?path=&recursive=`
#[utoipa::path(delete, path = "/api/sessions/{id}/files", tag = "files", params(("id" = String, Path, description = "session id"), ("path" = String, Query, description = "absolute, or relative to /workspace"), ("recursive" = Option<bool>, Query, description = "remove a non-empty directory")), responses((status = 204), (status = 401, description = "no credential", body = ErrorBody), (status = 404, description = "no such session", body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<PathQuery>,
) -> Result<Response> {
    let request = RemoveRequest { path: resolve(&q.path), recursive: q.recursive };
    json(&state, &caller, Action::RemovePath { id, request }).await
}

/// `POST /api/sessions/{id}/files/mkdir`
#[utoipa::path(post, path = "/api/sessions/{id}/files/mkdir", tag = "files", params(("id" = String, Path, description = "session id")), request_body = MkdirRequest, responses((status = 204), (status = 401, description = "no credential", body = ErrorBody), (status = 404, description = "no such session", body = ErrorBody)))]
pub async fn mkdir(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<MkdirRequest>,
) -> Result<Response> {
    json(&state, &caller, Action::MakeDir { id, path: resolve(&body.path) }).await
}

/// `POST /api/sessions/{id}/files/move`
#[utoipa::path(post, path = "/api/sessions/{id}/files/move", tag = "files", params(("id" = String, Path, description = "session id")), request_body = MoveRequest, responses((status = 204), (status = 401, description = "no credential", body = ErrorBody), (status = 404, description = "no such session", body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn rename(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<MoveRequest>,
) -> Result<Response> {
    let request =
        MoveRequest { from: resolve(&body.from), to: resolve(&body.to), overwrite: body.overwrite };
    json(&state, &caller, Action::MovePath { id, request }).await
}

/// `GET /api/sessions/{id}/files/stat?path=`: what a path is, its size and modification
/// time (an editor polls it to see a change made on disk).
#[utoipa::path(get, path = "/api/sessions/{id}/files/stat", tag = "files", params(("id" = String, Path, description = "session id"), ("path" = String, Query, description = "absolute, or relative to /workspace")), responses((status = 200, body = FileStat), (status = 401, description = "no credential", body = ErrorBody), (status = 404, description = "no such session or path", body = ErrorBody)))]
pub async fn stat(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<StatQuery>,
) -> Result<Response> {
    json(&state, &caller, Action::StatPath { id, path: resolve(&q.path) }).await
}

/// Query of the stat route.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatQuery {
    path: String,
}

/// Query of the content routes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentQuery {
    path: String,
    offset: Option<u64>,
    length: Option<u64>,
    mode: Option<u32>,
    if_modified_ms: Option<i64>,
    if_absent: Option<bool>,
}

/// `GET /api/sessions/{id}/files/content?path=&offset=&length=`: the bytes, streamed.
#[utoipa::path(get, path = "/api/sessions/{id}/files/content", tag = "files", params(("id" = String, Path, description = "session id"), ("path" = String, Query, description = "absolute, or relative to /workspace"), ("offset" = Option<u64>, Query), ("length" = Option<u64>, Query)), responses((status = 200, description = "the bytes", content_type = "application/octet-stream"), (status = 401, description = "no credential", body = ErrorBody), (status = 404, description = "no such session", body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<ContentQuery>,
) -> Result<Response> {
    let client = agent(&state, &caller, id, Need::Read).await?;
    let query = ReadQuery { path: resolve(&q.path), offset: q.offset, length: q.length };
    let name = query.path.rsplit('/').next().unwrap_or_default().to_owned();
    let body = client.read_stream(&query).await.map_err(agent_error)?;
    let mut response = Response::new(Body::new(body));
    let headers = response.headers_mut();
    // Bytes from the sandbox, never a page of the app's origin: a browser opening this URL
    // saves the file instead of rendering it (an `.html` written by anyone in the session
    // would otherwise run as Flint).
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert(header::CONTENT_DISPOSITION, attachment(&name));
    Ok(response)
}

/// `attachment` with the file's name: an ASCII fallback and the exact name (RFC 6266).
fn attachment(name: &str) -> HeaderValue {
    let ascii: String = name
        .chars()
        .map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' { c } else { '_' })
        .collect();
    let mut exact = String::new();
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            exact.push(byte as char);
        } else {
            exact.push_str(&format!("%{byte:02X}"));
        }
    }
    let ascii = if ascii.is_empty() { "file".to_owned() } else { ascii };
    HeaderValue::from_str(&format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{exact}"))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// `PUT /api/sessions/{id}/files/content?path=&mode=&if_modified_ms=&if_absent=`: the body
/// replaces the file atomically. With `if_modified_ms` (the `modified_ms` the file was read
/// at) a file changed or deleted since is left alone and the answer is 409; with
/// `if_absent=true` only a new file is made, and one that exists is a 409.
#[utoipa::path(put, path = "/api/sessions/{id}/files/content", tag = "files", params(("id" = String, Path, description = "session id"), ("path" = String, Query, description = "absolute, or relative to /workspace"), ("mode" = Option<u32>, Query), ("if_modified_ms" = Option<i64>, Query, description = "write only if the file's modified_ms is still this (else 409: it changed or was deleted since)"), ("if_absent" = Option<bool>, Query, description = "make a new file only (else 409: something is at the path)")), request_body(content = Vec<u8>, content_type = "application/octet-stream"), responses((status = 200, body = FileStat), (status = 401, description = "no credential", body = ErrorBody), (status = 403, description = "a viewer of the session", body = ErrorBody), (status = 404, description = "no such session", body = ErrorBody), (status = 409, description = "the path is a directory, the file changed since if_modified_ms, or it exists and if_absent was asked", body = ErrorBody)))]
pub async fn write(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<ContentQuery>,
    body: Body,
) -> Result<Response> {
    let client = agent(&state, &caller, id, Need::Edit).await?;
    let query = WriteQuery {
        path: resolve(&q.path),
        mode: q.mode,
        if_modified_ms: q.if_modified_ms,
        if_absent: q.if_absent.unwrap_or(false),
    };
    // axum's body is not `Sync`; a task pumps it into the agent's request body.
    let (tx, upload) = agent_client::client::fallible_channel_body();
    tokio::spawn(async move {
        let mut body = body;
        while let Some(frame) = body.frame().await {
            let chunk = match frame {
                Ok(frame) => match frame.into_data() {
                    Ok(data) => Ok(data),
                    Err(_) => continue,
                },
                Err(e) => Err(std::io::Error::other(e)),
            };
            let failed = chunk.is_err();
            if tx.send(chunk).await.is_err() || failed {
                return;
            }
        }
    });
    let stat = client.write_body(&query, upload).await.map_err(agent_error)?;
    Ok(Json(stat).into_response())
}

/// `GET /api/sessions/{id}/workspace.tar`: `/workspace` as a tarball, running or stopped.
#[utoipa::path(get, path = "/api/sessions/{id}/workspace.tar", tag = "files", params(("id" = String, Path, description = "session id")), responses((status = 200, description = "a tarball of /workspace", content_type = "application/x-tar"), (status = 401, description = "no credential", body = ErrorBody), (status = 404, description = "no such session", body = ErrorBody)))]
pub async fn workspace_tar(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    let Outcome::Tarball(tar) =
        perform(&state, &caller, Action::ExportWorkspace { id: id.clone() }).await?
    else {
        return Err(AppError::internal("export-workspace gave no tarball"));
    };
    let mut response = Response::new(Body::from_stream(tar));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-tar"));
    let disposition = format!("attachment; filename=\"workspace-{id}.tar\"");
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&disposition).map_err(AppError::internal)?,
    );
    Ok(response)
}

/// `POST /api/sessions/{id}/exec`
#[utoipa::path(post, path = "/api/sessions/{id}/exec", tag = "exec", params(("id" = String, Path, description = "session id")), request_body = ExecCommand, responses((status = 200, body = ExecResult), (status = 401, description = "no credential", body = ErrorBody), (status = 404, description = "no such session", body = ErrorBody), (status = 400, body = ErrorBody)))]
pub async fn exec(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(command): JsonBody<ExecCommand>,
) -> Result<Response> {
    if command.argv.is_empty() {
        return Err(AppError::bad_request("argv must name a program"));
    }
    json(&state, &caller, Action::Exec { id, command }).await
}

/// `GET /api/sessions/{id}/ports`
#[utoipa::path(get, path = "/api/sessions/{id}/ports", tag = "ports", params(("id" = String, Path, description = "session id")), responses((status = 200, body = PortList), (status = 401, description = "no credential", body = ErrorBody), (status = 404, description = "no such session", body = ErrorBody)))]
pub async fn ports(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    json(&state, &caller, Action::ListPorts { id }).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_files_name_goes_into_its_attachment_safely() {
        let value = |name: &str| attachment(name).to_str().map(str::to_owned).unwrap_or_default();
        assert_eq!(value("a.html"), "attachment; filename=\"a.html\"; filename*=UTF-8''a.html");
        assert_eq!(
            value("x\" y\\.txt"),
            "attachment; filename=\"x__y_.txt\"; filename*=UTF-8''x%22%20y%5C.txt"
        );
        assert_eq!(value("é\r\n"), "attachment; filename=\"___\"; filename*=UTF-8''%C3%A9%0D%0A");
        assert_eq!(value(""), "attachment; filename=\"file\"; filename*=UTF-8''");
    }
}
