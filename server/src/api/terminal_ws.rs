//! `GET /api/sessions/{id}/terminals/{tid}/ws`: a browser's view of a shared shell. It relays
//! the agent's attach stream: output as binary messages (an 8-byte offset, then the bytes),
//! control as JSON text ([`TerminalServerMessage`]); keystrokes come back as binary
//! messages, resizes as [`TerminalClientMessage`].
//!
//! The relay drains the agent's stream into a per-browser outbox bounded by bytes. When it is
//! full the relay waits for room a little ([`OUTBOX_GRACE`](super::terminal_outbox::OUTBOX_GRACE), like the agent's own wait for
//! its attachers), so a browser that keeps up gets every byte even while the shell writes
//! faster than it reads; a browser still behind after that gets, in place of what overflowed,
//! the same range read back from the agent's scrollback when it catches up (or `missed` for
//! what the scrollback no longer holds). A stalled browser holds up the agent, the shell
//! and other clients for that grace at most, and not again until it has caught up.
//!
//! Output is compressed (permessage-deflate, RFC 7692) when the browser offers it, as
//! Chromium and Firefox do: terminal text shrinks several times over, which is what a
//! person on a slow link waits for. Messages under [`COMPRESS_FROM`] bytes (an echoed
//! keystroke) go as they are.
//!
//! Close codes: 4404 no such terminal, 4502 the agent failed, 4403 the person's access
//! ended, 4401 the credential it was opened with ended (a token revoked, a sign-in signed
//! out or expired).

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt as _, StreamExt as _};
use yawc::close::CloseCode;
use yawc::{CompressionLevel, Frame, HttpWebSocket as WebSocket, IncomingUpgrade, OpCode, Options};

use agent_client::client::{Client, FrameStream};
use http::HeaderMap;
use proto::api::{OUTPUT_OFFSET_BYTES, TerminalClientMessage, TerminalServerMessage};
use proto::terminal::{AttachDown, AttachQuery, AttachUp, OutputQuery, Role, Size, TerminalId};
use serde::Deserialize;
use serde_bytes::ByteBuf;

use super::terminal_outbox::{Item, Shared};
use crate::app::AppState;
use crate::auth::{Caller, origin_allowed};
use crate::core::{Action, Need, Outcome, perform};
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
    upgrade: std::result::Result<IncomingUpgrade, http::StatusCode>,
) -> Result<Response> {
    let upgrade =
        upgrade.map_err(|_| AppError::bad_request("this route takes a websocket upgrade"))?;
    if !origin_allowed(&headers, &state) {
        return Err(AppError::forbidden("websocket origin is not this server's public origin"));
    }
    let terminal =
        TerminalId::parse(&tid).ok_or_else(|| AppError::not_found(format!("no terminal {tid}")))?;
    let Outcome::Agent(client) =
        perform(&state, &caller, Action::ConnectAgent { id: id.clone(), need: Need::Read }).await?
    else {
        return Err(AppError::internal("connect-agent gave no agent"));
    };
    // Authorized above: the caller has a role in the session.
    let owner = state.sessions.record(&id).await?.owner_id;
    let role = caller.role_in(&id, &owner).unwrap_or(proto::people::Role::Viewer);
    let who =
        Who { person: caller.person(role), people: state.people.clone(), session: id.clone() };
    let credential = caller.credential_end(&state);
    let metrics = state.metrics.clone();
    let sessions = state.sessions.clone();
    let (response, socket) = upgrade
        .upgrade(socket_options())
        .map_err(|e| AppError::bad_request(format!("websocket upgrade: {e}")))?;
    tokio::spawn(async move {
        let Ok(socket) = socket.await else {
            return;
        };
        metrics.websocket_clients.inc();
        sessions.attached(&id, true).await;
        relay(socket, client, terminal, query.offset, who, credential).await;
        sessions.attached(&id, false).await;
        metrics.websocket_clients.dec();
    });
    Ok(response.into_response())
}

/// Messages shorter than this are never compressed: an echoed keystroke goes at once, as
/// it is.
const COMPRESS_FROM: usize = 64;

/// Largest message a browser may send (a paste): 4 MiB.
const MAX_MESSAGE_BYTES: usize = 4 << 20;

/// Compression when the browser offers it: deflate's fastest level (terminal text shrinks
/// most of what it will at level 1, and the relay must keep up with the shell), context kept
/// between messages (repeated prompts and paths compress against earlier output).
fn socket_options() -> Options {
    Options::default()
        .with_limits(MAX_MESSAGE_BYTES, 2 * MAX_MESSAGE_BYTES)
        .with_compression_level(CompressionLevel::fast())
        .with_compression_threshold(COMPRESS_FROM)
        .with_no_delay()
}

/// A close frame; its reason cut to what a control frame holds (123 bytes).
fn close_frame(code: u16, reason: &str) -> Frame {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Frame::close(CloseCode::from(code), &reason[..end])
}

/// Close code: the client did not read what it was sent while it kept sending.
pub const CLOSE_NOT_READING: u16 = 1008;

/// Who is on the other end, for presence, "last typed by" and their role.
struct Who {
    person: proto::people::Person,
    people: std::sync::Arc<crate::people::People>,
    session: String,
}

/// Close code: the person's access to the session ended (invite revoked, removed).
pub const CLOSE_ACCESS_ENDED: u16 = 4403;

/// Close code: the credential the socket was opened with ended (a bearer token revoked, a
/// sign-in signed out or expired).
pub const CLOSE_REVOKED: u16 = 4401;

async fn relay(
    socket: WebSocket,
    client: Client,
    terminal: TerminalId,
    offset: Option<u64>,
    who: Who,
    credential: crate::auth::CredentialEnd,
) {
    let (mut to_browser, mut from_browser) = socket.split();
    let attachment = who.people.attach(&who.session, who.person.clone(), true);
    let writer = who.person.role.may_edit();
    // The agent refuses a viewer's input too; the server answers it first, with the reason.
    let role = if writer { Role::Writer } else { Role::Viewer };
    let attach = client.attach(&terminal, AttachQuery { role, offset }).await;
    let (input, output) = match attach {
        Ok(streams) => streams,
        Err(e) => {
            let code = if e.code() == proto::error::ErrorCode::NotFound { 4404 } else { 4502 };
            let _ = to_browser.send(close_frame(code, &e.to_string())).await;
            return;
        }
    };
    let shared = std::sync::Arc::new(Shared::default());
    let pump = tokio::spawn(pump(output, shared.clone()));
    let _stop_pump = AbortOnDrop(pump.abort_handle());
    let sender = send_to_browser(&mut to_browser, &client, &terminal, &shared);
    let receiver = async {
        // A viewer's keystrokes are refused with one answer, not one each: a viewer typing
        // fast (or a client that sends without reading) grows nothing.
        let mut refused = false;
        while let Some(up) = receive_from_browser(&mut from_browser, &shared).await {
            match &up {
                AttachUp::Input(_) if !writer => {
                    if !std::mem::replace(&mut refused, true) {
                        let error = TerminalServerMessage::Error {
                            message: format!(
                                "forbidden (403): {} is a viewer of this session and cannot type",
                                who.person.name
                            ),
                        };
                        shared.push(Item::Message(text(&error)));
                    }
                    continue;
                }
                // A viewer's window does not resize the shared terminal.
                AttachUp::Resize(_) if !writer => continue,
                AttachUp::Input(_) => {
                    who.people.typed(&who.session, terminal.as_str(), &who.person)
                }
                _ => {}
            }
            if input.send(&up).await.is_err() {
                return;
            }
        }
    };
    let close = tokio::select! {
        () = sender => None,
        () = receiver => None,
        () = attachment.cut.cancelled() => {
            Some(close_frame(CLOSE_ACCESS_ENDED, "your access to this session ended"))
        }
        why = credential.ended() => Some(close_frame(CLOSE_REVOKED, why)),
        () = shared.overflowed() => Some(close_frame(
            CLOSE_NOT_READING,
            "the client kept sending without reading what it was sent",
        )),
    };
    if let Some(close) = close {
        // A client that does not read may never take it: it is dropped then.
        let send = to_browser.send(close);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), send).await;
    }
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Agent → outbox, as fast as the browser takes it, or the agent sends once the browser has
/// been too slow for [`OUTBOX_GRACE`](super::terminal_outbox::OUTBOX_GRACE).
async fn pump(mut output: FrameStream<AttachDown>, shared: std::sync::Arc<Shared>) {
    loop {
        let message = match output.next().await {
            Ok(Some(AttachDown::Output { offset, data })) => {
                shared.wait_for_room(data.len()).await;
                shared.with(|outbox| outbox.push_output(offset, &data));
                continue;
            }
            Ok(Some(AttachDown::Exit(status))) => {
                let exit = TerminalServerMessage::Exit { code: status.code, signal: status.signal };
                shared.push(Item::Message(text(&exit)));
                shared.push(Item::Close(close_frame(1000, "")));
                return;
            }
            Ok(Some(other)) => browser_message(other),
            Ok(None) | Err(_) => {
                shared.push(Item::Close(close_frame(4502, "the agent stream ended")));
                return;
            }
        };
        shared.push(Item::Message(message));
    }
}

/// Outbox → browser, at the browser's pace; gaps are filled from the agent's scrollback.
async fn send_to_browser(
    to_browser: &mut futures_util::stream::SplitSink<WebSocket, Frame>,
    client: &Client,
    terminal: &TerminalId,
    shared: &Shared,
) {
    loop {
        match shared.pop().await {
            Item::Output { offset, data } => {
                if to_browser.send(output_message(offset, &data)).await.is_err() {
                    return;
                }
            }
            Item::Message(message) => {
                if to_browser.send(message).await.is_err() {
                    return;
                }
            }
            Item::Gap { from, to } => {
                let mut range = match client.output(terminal, OutputQuery { from, to }).await {
                    Ok(range) => range,
                    Err(_) => {
                        let _ = to_browser.send(close_frame(4502, "the agent failed")).await;
                        return;
                    }
                };
                let mut next = from;
                while let Ok(Some(frame)) = range.next().await {
                    next = match &frame {
                        AttachDown::Output { offset, data } => offset + data.len() as u64,
                        AttachDown::Missed { to, .. } => *to,
                        _ => next,
                    };
                    if to_browser.send(browser_message(frame)).await.is_err() {
                        return;
                    }
                }
                // Whatever the scrollback could not give (the agent went away mid-way).
                if next < to {
                    let missed = text(&TerminalServerMessage::Missed { from: next, to });
                    if to_browser.send(missed).await.is_err() {
                        return;
                    }
                }
            }
            Item::Close(frame) => {
                let _ = to_browser.send(frame).await;
                return;
            }
        }
    }
}

/// The next frame for the agent from the browser; `None` when the browser left. Invalid
/// messages are answered (through the outbox) and skipped.
async fn receive_from_browser(
    from_browser: &mut futures_util::stream::SplitStream<WebSocket>,
    shared: &Shared,
) -> Option<AttachUp> {
    loop {
        let frame = from_browser.next().await?;
        return match frame.opcode() {
            OpCode::Binary => Some(AttachUp::Input(ByteBuf::from(frame.into_payload().to_vec()))),
            OpCode::Text => {
                match serde_json::from_slice::<TerminalClientMessage>(frame.payload()) {
                    Ok(TerminalClientMessage::Resize { cols, rows }) => {
                        Some(AttachUp::Resize(Size { cols, rows }))
                    }
                    Err(e) => {
                        let error = TerminalServerMessage::Error {
                            message: format!("invalid message: {e}"),
                        };
                        shared.push(Item::Message(text(&error)));
                        continue;
                    }
                }
            }
            OpCode::Close => None,
            // Pings are answered by the socket itself.
            OpCode::Ping | OpCode::Pong | OpCode::Continuation => continue,
        };
    }
}

/// The browser's message for a frame of the agent.
fn browser_message(frame: AttachDown) -> Frame {
    text(&match frame {
        AttachDown::Output { offset, data } => return output_message(offset, &data),
        AttachDown::Attached { offset, size } => {
            TerminalServerMessage::Attached { offset, cols: size.cols, rows: size.rows }
        }
        AttachDown::Missed { from, to } => TerminalServerMessage::Missed { from, to },
        AttachDown::Resized(size) => {
            TerminalServerMessage::Resized { cols: size.cols, rows: size.rows }
        }
        AttachDown::Error(message) => TerminalServerMessage::Error { message },
        AttachDown::Exit(status) => {
            TerminalServerMessage::Exit { code: status.code, signal: status.signal }
        }
    })
}

/// A binary output message: the 8-byte big-endian offset, then the bytes.
fn output_message(offset: u64, data: &[u8]) -> Frame {
    let mut bytes = Vec::with_capacity(OUTPUT_OFFSET_BYTES + data.len());
    bytes.extend_from_slice(&offset.to_be_bytes());
    bytes.extend_from_slice(data);
    Frame::binary(bytes)
}

fn text(message: &TerminalServerMessage) -> Frame {
    Frame::text(serde_json::to_string(message).unwrap_or_default())
}
