//! The REST client: every `/api` call the app makes, typed with `proto`'s wire types.
//!
//! Calls are same-origin, so the sign-in cookie travels by itself. The server's CSRF rule for
//! cookie-authenticated mutations: a JSON body with `content-type: application/json`, or the
//! header `x-flint-csrf: 1` (used for DELETE and body-less POSTs).

use gloo_net::http::{Request, RequestBuilder, Response};
use proto::api::{
    ActivityEvent, CreateSession, CreateShare, ExtendSession, PreviewPort, SessionInfo, SetPreview,
    ShareLink,
};
use proto::files::{FileList, FileStat, MkdirRequest, MoveRequest};
use proto::terminal::{CreateTerminal, TerminalInfo};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// A failed call, as a person should read it.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    /// HTTP status; 0 when the server could not be reached at all.
    pub status: u16,
    /// The server's `{"error": ...}` message, or what went wrong on the way.
    pub message: String,
    /// The server's `code`, when it sent one.
    pub code: Option<String>,
}

impl ApiError {
    /// The caller has no (valid) sign-in cookie.
    pub fn is_unauthorized(&self) -> bool {
        self.status == 401
    }

    /// A guest's access ended (their invite revoked, they were removed, the session
    /// deleted): the message says which.
    pub fn is_access_ended(&self) -> bool {
        self.status == 401 && self.code.as_deref() == Some("access_ended")
    }

    fn network(error: gloo_net::Error) -> ApiError {
        ApiError {
            status: 0,
            message: format!("cannot reach the Flint server: {error}"),
            code: None,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Result of an API call.
pub type ApiResult<T> = Result<T, ApiError>;

pub use proto::api::Me;

/// The server's error body.
#[derive(Deserialize)]
struct ErrorBody {
    error: String,
    #[serde(default)]
    code: Option<String>,
}

/// One path segment, escaped (ids are URL-safe already; this keeps it so for anything else).
fn segment(text: &str) -> String {
    String::from(js_sys::encode_uri_component(text))
}

async fn send(request: Result<Request, gloo_net::Error>) -> ApiResult<Response> {
    let request = request.map_err(ApiError::network)?;
    let response = request.send().await.map_err(ApiError::network)?;
    if response.ok() {
        return Ok(response);
    }
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let (message, code) = match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) => (body.error, body.code),
        Err(_) if status == 401 => ("you are signed out".to_owned(), None),
        Err(_) => {
            let status_text = response.status_text();
            (format!("the server answered {status} {status_text}"), None)
        }
    };
    Err(ApiError { status, message, code })
}

async fn json<T: DeserializeOwned>(response: Response) -> ApiResult<T> {
    response.json::<T>().await.map_err(|error| ApiError {
        code: None,
        status: response.status(),
        message: format!("unexpected answer from the server: {error}"),
    })
}

fn csrf(builder: RequestBuilder) -> Result<Request, gloo_net::Error> {
    builder.header("x-flint-csrf", "1").build()
}

async fn get<T: DeserializeOwned>(path: &str) -> ApiResult<T> {
    json(send(Request::get(path).build()).await?).await
}

async fn post<B: serde::Serialize, T: DeserializeOwned>(path: &str, body: &B) -> ApiResult<T> {
    json(send(Request::post(path).json(body)).await?).await
}

async fn put<B: serde::Serialize, T: DeserializeOwned>(path: &str, body: &B) -> ApiResult<T> {
    json(send(Request::put(path).json(body)).await?).await
}

async fn delete(path: &str) -> ApiResult<()> {
    send(csrf(Request::delete(path))).await.map(drop)
}

/// `GET /api/me`
pub async fn me() -> ApiResult<Me> {
    get("/api/me").await
}

/// `GET /api/server`
pub async fn server() -> ApiResult<proto::api::ServerInfo> {
    get("/api/server").await
}

/// `GET /api/images`
pub async fn images() -> ApiResult<Vec<proto::api::ImageInfo>> {
    get("/api/images").await
}

/// `POST /api/logout`
pub async fn logout() -> ApiResult<()> {
    send(csrf(Request::post("/api/logout"))).await.map(drop)
}

/// `GET /api/sessions`
pub async fn sessions() -> ApiResult<Vec<SessionInfo>> {
    get("/api/sessions").await
}

/// `GET /api/sessions/{id}`
pub async fn session(id: &str) -> ApiResult<SessionInfo> {
    get(&format!("/api/sessions/{}", segment(id))).await
}

/// `POST /api/sessions`: answers once the sandbox runs (or failed).
pub async fn create_session(request: &CreateSession) -> ApiResult<SessionInfo> {
    post("/api/sessions", request).await
}

/// `POST /api/sessions/{id}/extend`: the session stops `lifetime_s` from now.
pub async fn extend_session(id: &str, lifetime_s: u64) -> ApiResult<SessionInfo> {
    post(&format!("/api/sessions/{}/extend", segment(id)), &ExtendSession { lifetime_s }).await
}

/// `DELETE /api/sessions/{id}`
pub async fn destroy_session(id: &str) -> ApiResult<()> {
    delete(&format!("/api/sessions/{}", segment(id))).await
}

/// `GET /api/sessions/{id}/terminals`
pub async fn terminals(session: &str) -> ApiResult<Vec<TerminalInfo>> {
    get(&format!("/api/sessions/{}/terminals", segment(session))).await
}

/// `POST /api/sessions/{id}/terminals`: a login shell of the given size.
pub async fn create_terminal(session: &str, cols: u16, rows: u16) -> ApiResult<TerminalInfo> {
    let request = CreateTerminal { cols, rows, ..CreateTerminal::default() };
    post(&format!("/api/sessions/{}/terminals", segment(session)), &request).await
}

/// `DELETE /api/sessions/{id}/terminals/{tid}`: kills the shell.
pub async fn kill_terminal(session: &str, terminal: &str) -> ApiResult<()> {
    delete(&format!("/api/sessions/{}/terminals/{}", segment(session), segment(terminal))).await
}

/// The websocket path of a terminal, resuming at `offset` when given.
pub fn terminal_ws_path(session: &str, terminal: &str, offset: Option<u64>) -> String {
    let mut path = format!("/api/sessions/{}/terminals/{}/ws", segment(session), segment(terminal));
    if let Some(offset) = offset {
        path.push_str(&format!("?offset={offset}"));
    }
    path
}

/// `GET /api/sessions/{id}/events`: the session's activity feed, oldest first.
pub async fn session_events(session: &str) -> ApiResult<Vec<ActivityEvent>> {
    get(&format!("/api/sessions/{}/events", segment(session))).await
}

/// `POST /api/sessions/{id}/browser/navigate`: loads `url` in the shared browser's active
/// tab (starting the browser) and waits for the page.
pub async fn browser_navigate(session: &str, url: &str) -> ApiResult<proto::browser::PageInfo> {
    let request = proto::browser::Navigate { url: url.to_owned(), wait_ms: None };
    post(&format!("/api/sessions/{}/browser/navigate", segment(session)), &request).await
}

/// `POST /api/sessions/{id}/invites`: an invite link giving `role` (its URL only here).
pub async fn create_invite(
    session: &str,
    role: proto::people::Role,
    expires_s: u64,
) -> ApiResult<proto::people::Invite> {
    let request = proto::people::CreateInvite { role, expires_s: Some(expires_s) };
    post(&format!("/api/sessions/{}/invites", segment(session)), &request).await
}

/// `GET /api/sessions/{id}/invites`: live invites with the guests who joined.
pub async fn invites(session: &str) -> ApiResult<Vec<proto::people::Invite>> {
    get(&format!("/api/sessions/{}/invites", segment(session))).await
}

/// `DELETE /api/sessions/{id}/invites/{invite}`: the link dies, its guests are out.
pub async fn revoke_invite(session: &str, invite: &str) -> ApiResult<()> {
    delete(&format!("/api/sessions/{}/invites/{}", segment(session), segment(invite))).await
}

/// `DELETE /api/sessions/{id}/people/{guest}`: a guest is out.
pub async fn remove_guest(session: &str, guest: &str) -> ApiResult<()> {
    delete(&format!("/api/sessions/{}/people/{}", segment(session), segment(guest))).await
}

/// `GET /api/sessions/{id}/people`: who is attached now.
pub async fn people(session: &str) -> ApiResult<proto::people::Presence> {
    get(&format!("/api/sessions/{}/people", segment(session))).await
}

/// `POST /api/invites/accept`: joins through an invite link's secret under `name` (the
/// answer sets a guest cookie).
pub async fn accept_invite(token: &str, name: &str) -> ApiResult<proto::people::Joined> {
    let request = proto::people::AcceptInvite { token: token.to_owned(), name: name.to_owned() };
    post("/api/invites/accept", &request).await
}

/// `GET /api/sessions/{id}/previews`: the session's listening ports, by port.
pub async fn previews(session: &str) -> ApiResult<Vec<PreviewPort>> {
    get(&format!("/api/sessions/{}/previews", segment(session))).await
}

/// `PUT /api/sessions/{id}/previews/{port}`: makes a port's preview public or private.
pub async fn set_preview_public(session: &str, port: u16, public: bool) -> ApiResult<PreviewPort> {
    put(&format!("/api/sessions/{}/previews/{port}", segment(session)), &SetPreview { public })
        .await
}

/// `POST /api/sessions/{id}/previews/{port}/shares`: a share link, its `url` only in this
/// answer; `None` takes the server's default lifetime (a day).
pub async fn create_share(
    session: &str,
    port: u16,
    expires_s: Option<u64>,
) -> ApiResult<ShareLink> {
    let path = format!("/api/sessions/{}/previews/{port}/shares", segment(session));
    post(&path, &CreateShare { expires_s }).await
}

/// `DELETE /api/sessions/{id}/previews/{port}/shares/{share}`: the link stops working at once.
pub async fn revoke_share(session: &str, port: u16, share: &str) -> ApiResult<()> {
    let session = segment(session);
    delete(&format!("/api/sessions/{session}/previews/{port}/shares/{}", segment(share))).await
}

/// A file's query string: `?path=...`, escaped.
fn file_query(path: &str) -> String {
    format!("?path={}", segment(path))
}

/// `GET /api/sessions/{id}/files?path=`: a directory's entries (one level).
pub async fn list_files(session: &str, dir: &str) -> ApiResult<FileList> {
    get(&format!("/api/sessions/{}/files{}", segment(session), file_query(dir))).await
}

/// `GET /api/sessions/{id}/files/stat?path=`: size and modification time.
pub async fn stat_file(session: &str, path: &str) -> ApiResult<FileStat> {
    get(&format!("/api/sessions/{}/files/stat{}", segment(session), file_query(path))).await
}

/// `GET /api/sessions/{id}/workspace.tar`: `/workspace` as a tarball, for download links
/// (a running session's, or a stopped one's while it is retained).
pub fn workspace_tar_url(session: &str) -> String {
    format!("/api/sessions/{}/workspace.tar", segment(session))
}

/// The URL of a file's bytes (`GET`), for reading and for download links.
pub fn file_content_url(session: &str, path: &str) -> String {
    format!("/api/sessions/{}/files/content{}", segment(session), file_query(path))
}

/// `GET /api/sessions/{id}/files/content?path=`: the file's bytes.
pub async fn read_file(session: &str, path: &str) -> ApiResult<Vec<u8>> {
    let response = send(Request::get(&file_content_url(session, path)).build()).await?;
    response.binary().await.map_err(ApiError::network)
}

/// When a file write may go ahead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteIf {
    /// Whatever is there (an upload replaces a file of the same name).
    Always,
    /// The file is still as it was at this `modified_ms` (a save; else 409).
    Unmodified(i64),
    /// Nothing is there yet (a new file; else 409).
    Absent,
}

/// `PUT /api/sessions/{id}/files/content?path=`: `body` (a string, a `Blob` or a `File`)
/// replaces the file, if `precondition` holds (else a 409 and nothing is written).
pub async fn write_file(
    session: &str,
    path: &str,
    body: wasm_bindgen::JsValue,
    precondition: WriteIf,
) -> ApiResult<FileStat> {
    let mut url = file_content_url(session, path);
    match precondition {
        WriteIf::Always => {}
        WriteIf::Unmodified(ms) => url.push_str(&format!("&if_modified_ms={ms}")),
        WriteIf::Absent => url.push_str("&if_absent=true"),
    }
    let request = Request::put(&url)
        .header("x-flint-csrf", "1")
        .header("content-type", "application/octet-stream")
        .body(body);
    json(send(request).await?).await
}

/// `POST /api/sessions/{id}/files/mkdir`: a directory and its parents.
pub async fn make_dir(session: &str, path: &str) -> ApiResult<()> {
    let body = MkdirRequest { path: path.to_owned() };
    let url = format!("/api/sessions/{}/files/mkdir", segment(session));
    send(Request::post(&url).json(&body)).await.map(drop)
}

/// `POST /api/sessions/{id}/files/move`: renames `from` to `to`, never over an existing path.
pub async fn move_path(session: &str, from: &str, to: &str) -> ApiResult<()> {
    let body = MoveRequest { from: from.to_owned(), to: to.to_owned(), overwrite: false };
    let url = format!("/api/sessions/{}/files/move", segment(session));
    send(Request::post(&url).json(&body)).await.map(drop)
}

/// `DELETE /api/sessions/{id}/files?path=&recursive=`: a file, or a directory with all below.
pub async fn remove_path(session: &str, path: &str, recursive: bool) -> ApiResult<()> {
    let query = file_query(path);
    delete(&format!("/api/sessions/{}/files{query}&recursive={recursive}", segment(session))).await
}

use proto::api::CreateToken;
pub use proto::api::{ApiToken, NewToken};

/// `GET /api/tokens`: the caller's tokens.
pub async fn tokens() -> ApiResult<Vec<ApiToken>> {
    get("/api/tokens").await
}

/// `POST /api/tokens`: a token that works for `session` only.
pub async fn create_session_token(name: &str, session: &str) -> ApiResult<NewToken> {
    let body = CreateToken { name: name.to_owned(), session_id: Some(session.to_owned()) };
    post("/api/tokens", &body).await
}

/// `DELETE /api/tokens/{id}`: the token stops working at once.
pub async fn revoke_token(id: &str) -> ApiResult<()> {
    delete(&format!("/api/tokens/{}", segment(id))).await
}

/// The events websocket's path.
pub const EVENTS_WS_PATH: &str = "/api/events/ws";
