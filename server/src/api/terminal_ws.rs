//! `GET /api/sessions/{id}/terminals/{tid}/ws`: a browser's view of a shared shell. It relays
//! the agent's attach stream: output as binary messages (an 8-byte offset, then the bytes),
//! control as JSON text ([`TerminalServerMessage`]); keystrokes come back as binary
//! messages, resizes as [`TerminalClientMessage`].
//!
//! Close codes: 4404 no such terminal, 4502 the agent failed.

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt as _, StreamExt as _};
use guest_agent::client::Client;
use http::HeaderMap;
use proto::api::{OUTPUT_OFFSET_BYTES, TerminalClientMessage, TerminalServerMessage};
use proto::terminal::{AttachDown, AttachQuery, AttachUp, Role, Size, TerminalId};
use serde::Deserialize;
use serde_bytes::ByteBuf;

use crate::app::AppState;
use crate::auth::{Caller, origin_allowed};
use crate::core::{Action, Outcome, perform};
use crate::error::ErrorBody;
use crate::error::{AppError, Result};

/// Query of the websocket route.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WsQuery {
    /// Resume from this output offset (a reconnect); default the whole scrollback.
    offset: Option<u64>,
}

/// The upgrade: `Origin` must be ours, the caller must own the session.
#[utoipa::path(get, path = "/api/sessions/{id}/terminals/{tid}/ws", tag = "terminals", params(("id" = String, Path, description = "session id"), ("tid" = String, Path, description = "terminal id"), ("offset" = Option<u64>, Query, description = "resume from this output offset")), responses((status = 101, description = "websocket: binary output (8-byte offset + bytes) and JSON control messages"), (status = 403, description = "foreign Origin", body = ErrorBody), (status = 401, description = "no credential", body = ErrorBody), (status = 404, description = "no such session", body = ErrorBody)))]
pub async fn terminal_ws(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, tid)): Path<(String, String)>,
    Query(query): Query<WsQuery>,
    caller: Caller,
    upgrade: WebSocketUpgrade,
) -> Result<Response> {
    if !origin_allowed(&headers, &state) {
        return Err(AppError::forbidden("websocket origin is not this server's public origin"));
    }
    let terminal =
        TerminalId::parse(&tid).ok_or_else(|| AppError::not_found(format!("no terminal {tid}")))?;
    let Outcome::Agent(client) =
        perform(&state, &caller, Action::ConnectAgent { id: id.clone() }).await?
    else {
        return Err(AppError::internal("connect-agent gave no agent"));
    };
    let metrics = state.metrics.clone();
    let sessions = state.sessions.clone();
    Ok(upgrade
        .on_upgrade(move |socket| async move {
            metrics.websocket_clients.inc();
            sessions.attached(&id, true).await;
            relay(socket, client, terminal, query.offset).await;
            sessions.attached(&id, false).await;
            metrics.websocket_clients.dec();
        })
        .into_response())
}

async fn relay(socket: WebSocket, client: Client, terminal: TerminalId, offset: Option<u64>) {
    let (mut to_browser, mut from_browser) = socket.split();
    let attach = client.attach(&terminal, AttachQuery { role: Role::Writer, offset }).await;
    let (input, mut output) = match attach {
        Ok(streams) => streams,
        Err(e) => {
            let code = if e.code() == proto::error::ErrorCode::NotFound { 4404 } else { 4502 };
            let close = CloseFrame { code, reason: e.to_string().into() };
            let _ = to_browser.send(Message::Close(Some(close))).await;
            return;
        }
    };
    loop {
        tokio::select! {
            frame = output.next() => {
                let message = match frame {
                    Ok(Some(AttachDown::Output { offset, data })) => {
                        let mut bytes = Vec::with_capacity(OUTPUT_OFFSET_BYTES + data.len());
                        bytes.extend_from_slice(&offset.to_be_bytes());
                        bytes.extend_from_slice(&data);
                        Message::Binary(bytes.into())
                    }
                    Ok(Some(AttachDown::Attached { offset, size })) => {
                        text(&TerminalServerMessage::Attached { offset, cols: size.cols, rows: size.rows })
                    }
                    Ok(Some(AttachDown::Missed { from, to })) => text(&TerminalServerMessage::Missed { from, to }),
                    Ok(Some(AttachDown::Resized(size))) => {
                        text(&TerminalServerMessage::Resized { cols: size.cols, rows: size.rows })
                    }
                    Ok(Some(AttachDown::Error(message))) => text(&TerminalServerMessage::Error { message }),
                    Ok(Some(AttachDown::Exit(status))) => {
                        let exit = text(&TerminalServerMessage::Exit { code: status.code, signal: status.signal });
                        let _ = to_browser.send(exit).await;
                        let _ = to_browser.send(Message::Close(None)).await;
                        return;
                    }
                    Ok(None) | Err(_) => {
                        let close = CloseFrame { code: 4502, reason: "the agent stream ended".into() };
                        let _ = to_browser.send(Message::Close(Some(close))).await;
                        return;
                    }
                };
                if to_browser.send(message).await.is_err() {
                    return;
                }
            }
            message = from_browser.next() => {
                let up = match message {
                    Some(Ok(Message::Binary(bytes))) => AttachUp::Input(ByteBuf::from(bytes.to_vec())),
                    Some(Ok(Message::Text(json))) => match serde_json::from_str::<TerminalClientMessage>(&json) {
                        Ok(TerminalClientMessage::Resize { cols, rows }) => AttachUp::Resize(Size { cols, rows }),
                        Err(e) => {
                            let error = text(&TerminalServerMessage::Error { message: format!("invalid message: {e}") });
                            if to_browser.send(error).await.is_err() {
                                return;
                            }
                            continue;
                        }
                    },
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                };
                if input.send(&up).await.is_err() {
                    return;
                }
            }
        }
    }
}

fn text(message: &TerminalServerMessage) -> Message {
    Message::Text(serde_json::to_string(message).unwrap_or_default().into())
}
