//! `GET /api/events/ws`: the caller's sessions, live. A snapshot first, then each change as
//! it is written ([`EventsMessage`]); a client that falls behind gets a fresh snapshot
//! instead of the changes it missed. What the web app's session list is built on.

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt as _, StreamExt as _};
use http::HeaderMap;
use proto::api::EventsMessage;
use tokio::sync::broadcast::error::RecvError;

use crate::app::AppState;
use crate::auth::{Caller, origin_allowed};
use crate::core::{Action, Outcome, perform};
use crate::error::{AppError, ErrorBody, Result};
use crate::sessions::SessionChange;

/// The upgrade: `Origin` must be ours.
#[utoipa::path(get, path = "/api/events/ws", tag = "sessions", responses((status = 101, description = "websocket: JSON `EventsMessage` text messages (snapshot, session, deleted, activity)"), (status = 403, description = "foreign Origin", body = ErrorBody), (status = 401, description = "no credential", body = ErrorBody)))]
pub async fn events_ws(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Caller,
    upgrade: WebSocketUpgrade,
) -> Result<Response> {
    if !origin_allowed(&headers, &state) {
        return Err(AppError::forbidden("websocket origin is not this server's public origin"));
    }
    Ok(upgrade
        .on_upgrade(move |socket| async move {
            state.metrics.websocket_clients.inc();
            if let Err(e) = relay(socket, &state, &caller).await {
                tracing::debug!("events websocket ended: {e}");
            }
            state.metrics.websocket_clients.dec();
        })
        .into_response())
}

async fn relay(socket: WebSocket, state: &AppState, caller: &Caller) -> anyhow::Result<()> {
    let (mut to_browser, mut from_browser) = socket.split();
    // A guest's socket closes the moment their access ends.
    let attachment = match &caller.via {
        crate::auth::Via::Guest { session, role, .. } => {
            Some(state.people.attach(session, caller.person(*role), false))
        }
        _ => None,
    };
    let cut = attachment.as_ref().map(|a| a.cut.clone()).unwrap_or_default();
    let credential = caller.credential_end(state);
    // Subscribed before the snapshot is read: no change can fall between the two.
    let mut changes = state.sessions.subscribe();
    to_browser.send(snapshot(state, caller).await?).await?;
    loop {
        tokio::select! {
            change = changes.recv() => {
                let message = match change {
                    Ok(change) if visible(caller, &change) => message(&match change {
                        SessionChange::Changed { info, .. } => EventsMessage::Session { session: info },
                        SessionChange::Deleted { id, .. } => EventsMessage::Deleted { id },
                        SessionChange::Activity { event, .. } => EventsMessage::Activity { event },
                        SessionChange::Ports { session_id, ports, .. } => {
                            EventsMessage::Ports { session_id, ports }
                        }
                        SessionChange::Presence { session_id, presence, .. } => {
                            EventsMessage::Presence { session_id, presence }
                        }
                    })?,
                    Ok(_) => continue,
                    Err(RecvError::Lagged(_)) => snapshot(state, caller).await?,
                    Err(RecvError::Closed) => return Ok(()),
                };
                to_browser.send(message).await?;
            }
            () = cut.cancelled() => return Ok(()),
            _ = credential.ended() => return Ok(()),
            incoming = from_browser.next() => match incoming {
                Some(Ok(Message::Close(_)) | Err(_)) | None => return Ok(()),
                // Nothing to say upstream: pings are answered by axum, the rest ignored.
                Some(Ok(_)) => {}
            },
        }
    }
}

/// Whether `caller` may see the changed session: its owner, and for a scoped token only
/// that session.
fn visible(caller: &Caller, change: &SessionChange) -> bool {
    caller.role_in(change.session_id(), change.owner_id()).is_some()
}

async fn snapshot(state: &AppState, caller: &Caller) -> anyhow::Result<Message> {
    let Outcome::Sessions(sessions) = perform(state, caller, Action::ListSessions).await? else {
        anyhow::bail!("list-sessions gave no sessions");
    };
    message(&EventsMessage::Snapshot { sessions })
}

fn message(event: &EventsMessage) -> anyhow::Result<Message> {
    Ok(Message::Text(serde_json::to_string(event)?.into()))
}
