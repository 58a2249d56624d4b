//! The agent link of a running session heals. The server holds one HTTP/2 connection per
//! session to its agent; both ends ping it (`agent_client::link::KEEPALIVE_INTERVAL`), so
//! a connection that died or wedged (an agent stopped from inside the sandbox, a peer that
//! broke h2) is closed within seconds. Whoever needs the agent next, or the watch within a
//! second, connects again. While that fails the session is `degraded`, with the reason, and
//! calls get a 503 that says so; the first connection that answers makes it `running`
//! again.

use std::sync::Arc;
use std::time::Duration;

use agent_client::client::Client;
use proto::api::SessionState;

use super::Sessions;
use crate::error::{AppError, Result};
use crate::sandbox::Sandbox;

/// How long one reconnection may take (connect, handshake, `GET /v1/info`).
const RECONNECT_DEADLINE: Duration = Duration::from_secs(3);

impl Sessions {
    /// A live session's client as it is, if its connection is not known to be gone.
    pub(super) async fn open_client(&self, id: &str) -> Option<std::result::Result<Client, ()>> {
        let mut live = self.live.lock().await;
        let live = live.get_mut(id)?;
        live.last_activity = std::time::Instant::now();
        Some(if live.client.is_closed() { Err(()) } else { Ok(live.client.clone()) })
    }

    /// Connects to a live session's agent again (one caller at a time per session; the
    /// others get the connection it made). `None` if the session is not live.
    pub(super) async fn relink(&self, id: &str) -> Option<Result<Client>> {
        let (sandbox, guard) = {
            let live = self.live.lock().await;
            let live = live.get(id)?;
            (live.sandbox.clone(), live.relinking.clone())
        };
        let _turn = guard.lock().await;
        // Someone else may have reconnected while this one waited its turn.
        if let Some(Ok(client)) = self.open_client(id).await {
            return Some(Ok(client));
        }
        match reconnect(&sandbox).await {
            Ok(client) => {
                {
                    let mut live = self.live.lock().await;
                    let live = live.get_mut(id)?;
                    live.client = client.clone();
                }
                tracing::info!(session = %id, "reconnected to the agent");
                self.follow_guest_reports(id, &client);
                self.follow_ports(id, &client);
                if let Ok(record) = self.record(id).await
                    && record.info.state == SessionState::Degraded
                    && let Err(e) = self.set_state(id, SessionState::Running, None).await
                {
                    tracing::warn!(session = %id, "marking the session running again: {e}");
                }
                Some(Ok(client))
            }
            Err(e) => {
                let reason = format!("its agent does not answer (reconnecting): {e:#}");
                if let Ok(record) = self.record(id).await
                    && record.info.state == SessionState::Running
                {
                    tracing::warn!(session = %id, "{reason}");
                    if let Err(e) = self.set_state(id, SessionState::Degraded, Some(&reason)).await
                    {
                        tracing::warn!(session = %id, "marking the session degraded: {e}");
                    }
                }
                Some(Err(AppError::new(
                    http::StatusCode::SERVICE_UNAVAILABLE,
                    format!("session {id} is degraded: {reason}"),
                )))
            }
        }
    }

    /// From the watch: every live session whose connection is gone is reconnected, each in
    /// a task of its own (a wedged one must not hold up the rest).
    pub(super) async fn relink_closed(&self) {
        let closed: Vec<String> = {
            let live = self.live.lock().await;
            live.iter()
                .filter(|(_, l)| l.client.is_closed() && l.relinking.try_lock().is_ok())
                .map(|(id, _)| id.clone())
                .collect()
        };
        for id in closed {
            let me = self.me.clone();
            tokio::spawn(async move {
                if let Some(sessions) = me.upgrade() {
                    let _ = sessions.relink(&id).await;
                }
            });
        }
    }
}

/// A new connection that answers.
async fn reconnect(sandbox: &Sandbox) -> anyhow::Result<Client> {
    let attempt = async {
        let client = sandbox.client().await?;
        client.info().await?;
        anyhow::Ok(client)
    };
    match tokio::time::timeout(RECONNECT_DEADLINE, attempt).await {
        Ok(result) => result,
        Err(_) => anyhow::bail!("no answer within {}s", RECONNECT_DEADLINE.as_secs()),
    }
}

/// The guard of one session's reconnections.
pub(super) type Relinking = Arc<tokio::sync::Mutex<()>>;
