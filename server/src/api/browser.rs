//! The session's shared browser over REST (`/api/sessions/{id}/browser...`: status,
//! navigate, screenshot) and the Browser panel's websocket
//! (`/api/sessions/{id}/browser/ws`).
//!
//! The websocket relays the agent's screencast as binary messages (a
//! [`WsFrameHeader`] then the JPEG), the browser's tabs and who drives it as
//! [`BrowserServerMessage`] text, and a person's input and navigation
//! ([`BrowserClientMessage`]) back to the agent. Frames are pulled one at a time and sent
//! before the next is read: a slow browser pushes back on its own screencast stream, and the
//! agent then sends it only the newest frame (never a queue, never slowing another viewer).
//!
//! When the browser goes away (it crashed, the agent restarted it) the viewer gets `ended`
//! and the relay asks for frames again a second later, which starts it anew.

use std::sync::Arc;
use std::time::Duration;

use agent_client::client::Client;
use axum::Json;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt as _, StreamExt as _};
use http::{HeaderMap, HeaderValue, header};
use proto::browser::{
    BrowserClientMessage, BrowserServerMessage, BrowserStatus, Driver, DriverKind, InputEvent,
    Navigate, NewTab, PageInfo, ScreencastEvent, ScreencastQuery, WsFrameHeader,
};
use tokio::sync::mpsc;

use crate::app::{AppState, JsonBody};
use crate::auth::{Caller, origin_allowed};
use crate::browser::Browsers;
use crate::core::{Action, Need, Outcome, agent_error, perform};
use crate::error::{AppError, ErrorBody, Result};

/// How often a viewer's tab list is read again (titles change as pages load).
const STATE_EVERY: Duration = Duration::from_secs(1);

/// Wait before asking again for frames after the browser went away.
const RESUBSCRIBE_AFTER: Duration = Duration::from_secs(1);

/// Largest message a viewer may send (an input event, a URL).
const MAX_CLIENT_MESSAGE: usize = 64 << 10;

/// Input events queued for the agent before a viewer's reading waits.
const INPUT_QUEUE: usize = 64;

async fn agent(state: &AppState, caller: &Caller, id: String, need: Need) -> Result<Client> {
    match perform(state, caller, Action::ConnectAgent { id, need }).await? {
        Outcome::Agent(client) => Ok(client),
        _ => Err(AppError::internal("connect-agent gave no agent")),
    }
}

/// `GET /api/sessions/{id}/browser`: whether the shared browser runs, its tabs and viewport
/// (never starts it).
#[utoipa::path(get, path = "/api/sessions/{id}/browser", tag = "browser", params(("id" = String, Path, description = "session id")), responses((status = 200, body = BrowserStatus), (status = 401, description = "no credential", body = ErrorBody), (status = 404, description = "no such session", body = ErrorBody)))]
pub async fn status(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
) -> Result<Json<BrowserStatus>> {
    let client = agent(&state, &caller, id, Need::Read).await?;
    Ok(Json(client.browser_status().await.map_err(agent_error)?))
}

/// `POST /api/sessions/{id}/browser/navigate`: loads a URL in the active tab (starting the
/// browser if needed) and waits for its `load` event. Servers of the sandbox are at
/// `http://127.0.0.1:PORT` there.
#[utoipa::path(post, path = "/api/sessions/{id}/browser/navigate", tag = "browser", params(("id" = String, Path, description = "session id")), request_body = Navigate, responses((status = 200, body = PageInfo), (status = 400, description = "not a URL the browser opens", body = ErrorBody), (status = 422, description = "not a navigation request", body = ErrorBody), (status = 401, description = "no credential", body = ErrorBody), (status = 404, description = "no such session", body = ErrorBody), (status = 502, description = "the page did not load", body = ErrorBody), (status = 503, description = "the browser could not start", body = ErrorBody)))]
pub async fn navigate(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    JsonBody(request): JsonBody<Navigate>,
) -> Result<Json<PageInfo>> {
    let client = agent(&state, &caller, id.clone(), Need::Edit).await?;
    state.browsers.drove(&id, DriverKind::Person, &caller.user.name);
    Ok(Json(client.browser_navigate(&request).await.map_err(agent_error)?))
}

/// `GET /api/sessions/{id}/browser/screenshot`: a PNG of the active tab's viewport.
#[utoipa::path(get, path = "/api/sessions/{id}/browser/screenshot", tag = "browser", params(("id" = String, Path, description = "session id")), responses((status = 200, description = "PNG", content_type = "image/png"), (status = 401, description = "no credential", body = ErrorBody), (status = 404, description = "no such session", body = ErrorBody), (status = 503, description = "the browser could not start", body = ErrorBody)))]
pub async fn screenshot(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
) -> Result<Response> {
    let client = agent(&state, &caller, id, Need::Read).await?;
    let png = client.browser_screenshot().await.map_err(agent_error)?;
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("image/png"))], png).into_response())
}

/// The upgrade: `Origin` must be ours, the caller must own the session. The query sets the
/// screencast's JPEG quality and largest frame size.
#[utoipa::path(get, path = "/api/sessions/{id}/browser/ws", tag = "browser", params(("id" = String, Path, description = "session id"), ("quality" = Option<u8>, Query, description = "JPEG quality 1..=100"), ("max_width" = Option<u32>, Query, description = "largest frame width"), ("max_height" = Option<u32>, Query, description = "largest frame height")), responses((status = 101, description = "websocket: binary frames (20-byte header + JPEG), JSON `BrowserServerMessage` text; JSON `BrowserClientMessage` from the client"), (status = 403, description = "foreign Origin", body = ErrorBody), (status = 401, description = "no credential", body = ErrorBody), (status = 404, description = "no such session", body = ErrorBody)))]
pub async fn browser_ws(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<ScreencastQuery>,
    caller: Caller,
    upgrade: WebSocketUpgrade,
) -> Result<Response> {
    if !origin_allowed(&headers, &state) {
        return Err(AppError::forbidden("websocket origin is not this server's public origin"));
    }
    let client = agent(&state, &caller, id.clone(), Need::Read).await?;
    // Authorized above: the caller has a role in the session.
    let owner = state.sessions.record(&id).await?.owner_id;
    let role = caller.role_in(&id, &owner).unwrap_or(proto::people::Role::Viewer);
    let attachment = state.people.attach(&id, caller.person(role), true);
    let credential = caller.credential_end(&state);
    let viewer = Viewer {
        client,
        session_id: id,
        person: caller.user.name,
        may_drive: role.may_edit(),
        browsers: state.browsers.clone(),
        query,
        loads: Arc::new(tokio::sync::Semaphore::new(LOADS_IN_FLIGHT)),
    };
    Ok(upgrade
        .max_message_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| async move {
            state.metrics.websocket_clients.inc();
            state.sessions.attached(&viewer.session_id, true).await;
            let session_id = viewer.session_id.clone();
            tokio::select! {
                () = viewer.relay(socket) => {}
                // Access or the credential ended: dropping the relay closes the socket.
                () = attachment.cut.cancelled() => {}
                _ = credential.ended() => {}
            }
            state.sessions.attached(&session_id, false).await;
            state.metrics.websocket_clients.dec();
        })
        .into_response())
}

/// One Browser panel's connection.
struct Viewer {
    client: Client,
    session_id: String,
    person: String,
    /// An editor or the owner (a viewer watches only).
    may_drive: bool,
    browsers: Arc<Browsers>,
    query: ScreencastQuery,
    /// Navigations and new tabs this socket has in flight, at most [`LOADS_IN_FLIGHT`].
    loads: Arc<tokio::sync::Semaphore>,
}

/// Navigations and new tabs one browser websocket may have loading at once: each holds a
/// task and an agent stream until its page loads or times out, so a client that sends them
/// in a loop is answered "too many" beyond this instead of growing the server.
pub const LOADS_IN_FLIGHT: usize = 4;

impl Viewer {
    async fn relay(self, socket: WebSocket) {
        let (mut to_browser, mut from_browser) = socket.split();
        let this = Arc::new(self);
        // Text messages (state, errors) and frames meet at one sender; a frame is read from
        // the agent only once the previous one is on its way.
        let (text_tx, mut text_rx) = mpsc::channel::<BrowserServerMessage>(16);
        let (frame_tx, mut frame_rx) = mpsc::channel::<Message>(1);
        let (input_tx, input_rx) = mpsc::channel::<BrowserClientMessage>(INPUT_QUEUE);
        let refresh = Arc::new(tokio::sync::Notify::new());
        let tasks = [
            tokio::spawn(this.clone().frames(frame_tx, text_tx.clone())),
            tokio::spawn(this.clone().state(text_tx.clone(), refresh.clone())),
            tokio::spawn(this.clone().input(input_rx, text_tx.clone(), refresh)),
        ];
        loop {
            let outgoing = tokio::select! {
                Some(frame) = frame_rx.recv() => frame,
                Some(message) = text_rx.recv() => match serde_json::to_string(&message) {
                    Ok(text) => Message::Text(text.into()),
                    Err(e) => {
                        tracing::warn!("browser message not encoded: {e}");
                        continue;
                    }
                },
                incoming = from_browser.next() => match incoming {
                    Some(Ok(Message::Text(text))) => {
                        match serde_json::from_str::<BrowserClientMessage>(&text) {
                            Ok(message) => {
                                if input_tx.send(message).await.is_err() {
                                    break;
                                }
                            }
                            Err(e) => {
                                let message = format!("not a browser message: {e}");
                                let _ = text_tx.try_send(BrowserServerMessage::Error { message });
                            }
                        }
                        continue;
                    }
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                    Some(Ok(_)) => continue,
                },
                else => break,
            };
            if to_browser.send(outgoing).await.is_err() {
                break;
            }
        }
        for task in tasks {
            task.abort();
        }
        let _ = to_browser.close().await;
    }

    /// Pulls the agent's screencast, one frame at a time; asks again when the browser goes
    /// away (the next request starts it again).
    async fn frames(
        self: Arc<Self>,
        out: mpsc::Sender<Message>,
        text: mpsc::Sender<BrowserServerMessage>,
    ) {
        loop {
            let reason = match self.client.browser_screencast(&self.query).await {
                Ok(mut stream) => loop {
                    match stream.next().await {
                        Ok(Some(ScreencastEvent::Frame(frame))) => {
                            let header = WsFrameHeader {
                                seq: frame.seq,
                                tab: frame.tab,
                                width: frame.width,
                                height: frame.height,
                            };
                            let mut bytes =
                                Vec::with_capacity(header.encode().len() + frame.jpeg.len());
                            bytes.extend_from_slice(&header.encode());
                            bytes.extend_from_slice(&frame.jpeg);
                            if out.send(Message::Binary(bytes.into())).await.is_err() {
                                return;
                            }
                        }
                        Ok(Some(ScreencastEvent::Ended(reason))) => break reason,
                        Ok(None) => break "the screencast ended".to_owned(),
                        Err(e) => break format!("the screencast failed: {e}"),
                    }
                },
                Err(e) if e.code() == proto::error::ErrorCode::BadRequest => {
                    // A bad query stays bad: say so once and stop.
                    let _ = text.send(BrowserServerMessage::Error { message: e.to_string() }).await;
                    return;
                }
                Err(e) => e.to_string(),
            };
            if text.send(BrowserServerMessage::Ended { reason }).await.is_err() {
                return;
            }
            tokio::time::sleep(RESUBSCRIBE_AFTER).await;
        }
    }

    /// Sends the tabs and who drives whenever they change: read every [`STATE_EVERY`], at
    /// once after this viewer's own actions, and when someone else takes over.
    async fn state(
        self: Arc<Self>,
        text: mpsc::Sender<BrowserServerMessage>,
        refresh: Arc<tokio::sync::Notify>,
    ) {
        let mut driver = self.browsers.driver(&self.session_id).subscribe();
        let mut last = None;
        loop {
            if let Ok(status) = self.client.browser_status().await
                && status.running
            {
                let message = state_message(status, driver.borrow_and_update().clone());
                if last.as_ref() != Some(&message) {
                    last = Some(message.clone());
                    if text.send(message).await.is_err() {
                        return;
                    }
                }
            }
            tokio::select! {
                () = tokio::time::sleep(STATE_EVERY) => {}
                () = refresh.notified() => {}
                changed = driver.changed() => if changed.is_err() { return },
            }
        }
    }

    /// Replays this person's messages on the agent, in order. Navigations run on their own
    /// (a page may take long to load, and input goes on meanwhile).
    async fn input(
        self: Arc<Self>,
        mut messages: mpsc::Receiver<BrowserClientMessage>,
        text: mpsc::Sender<BrowserServerMessage>,
        refresh: Arc<tokio::sync::Notify>,
    ) {
        while let Some(message) = messages.recv().await {
            if !self.may_drive {
                if drives(&message) {
                    let message = format!(
                        "forbidden (403): {} is a viewer of this session and cannot drive the \
                         browser",
                        self.person
                    );
                    let _ = text.send(BrowserServerMessage::Error { message }).await;
                }
                continue;
            }
            if drives(&message) {
                self.browsers.drove(&self.session_id, DriverKind::Person, &self.person);
            }
            let client = self.client.clone();
            let loads = matches!(
                message,
                BrowserClientMessage::Navigate { .. } | BrowserClientMessage::NewTab { .. }
            );
            let permit = match loads.then(|| self.loads.clone().try_acquire_owned()) {
                Some(Err(_)) => {
                    let message = format!(
                        "{LOADS_IN_FLIGHT} pages are loading already: wait for one to finish"
                    );
                    let _ = text.send(BrowserServerMessage::Error { message }).await;
                    continue;
                }
                Some(Ok(permit)) => Some(permit),
                None => None,
            };
            let result = match message {
                BrowserClientMessage::Input { event } => {
                    client.browser_input(&event).await.map(drop)
                }
                BrowserClientMessage::CloseTab { tab } => {
                    client.browser_close_tab(tab).await.map(drop)
                }
                BrowserClientMessage::ActivateTab { tab } => {
                    client.browser_activate_tab(tab).await.map(drop)
                }
                BrowserClientMessage::Navigate { url } => {
                    let (text, done) = (text.clone(), refresh.clone());
                    tokio::spawn(async move {
                        let _permit = permit;
                        let request = Navigate { url, wait_ms: None };
                        let result = client.browser_navigate(&request).await.map(drop);
                        answer(&text, &done, result).await;
                    });
                    // The URL changes before the page has loaded.
                    refresh.notify_one();
                    continue;
                }
                BrowserClientMessage::NewTab { url } => {
                    let (text, done) = (text.clone(), refresh.clone());
                    tokio::spawn(async move {
                        let _permit = permit;
                        let result = client.browser_new_tab(&NewTab { url }).await.map(drop);
                        answer(&text, &done, result).await;
                    });
                    continue;
                }
            };
            answer(&text, &refresh, result).await;
        }
    }
}

/// After a person's action: its error, if any, and a fresh state.
async fn answer(
    text: &mpsc::Sender<BrowserServerMessage>,
    refresh: &tokio::sync::Notify,
    result: std::result::Result<(), agent_client::Error>,
) {
    refresh.notify_one();
    if let Err(e) = result {
        let _ = text.send(BrowserServerMessage::Error { message: e.to_string() }).await;
    }
}

/// Does this message drive the page (as opposed to a pointer passing over it, or the panel
/// resizing)?
fn drives(message: &BrowserClientMessage) -> bool {
    !matches!(
        message,
        BrowserClientMessage::Input {
            event: InputEvent::MouseMove { .. } | InputEvent::Resize { .. }
        }
    )
}

fn state_message(status: BrowserStatus, driver: Option<Driver>) -> BrowserServerMessage {
    BrowserServerMessage::State {
        tabs: status.tabs,
        active: status.active,
        viewport: status.viewport,
        driver,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::browser::TabId;

    #[test]
    fn pointer_moves_and_resizes_do_not_take_control() {
        let moved = BrowserClientMessage::Input {
            event: InputEvent::MouseMove { x: 1.0, y: 1.0, modifiers: Default::default() },
        };
        let resized =
            BrowserClientMessage::Input { event: InputEvent::Resize { width: 800, height: 600 } };
        assert!(!drives(&moved));
        assert!(!drives(&resized));
        assert!(drives(&BrowserClientMessage::Input { event: InputEvent::Reload }));
        assert!(drives(&BrowserClientMessage::ActivateTab { tab: TabId(1) }));
        assert!(drives(&BrowserClientMessage::Navigate { url: "example.test".into() }));
    }
}
