//! What a running session's agent streams to the server: tool calls reported from inside
//! the sandbox (`guest-agent mcp`) and port events, each followed by a task for as long as
//! the agent answers.

use guest_agent::client::Client;

use super::{SessionChange, Sessions};
use crate::error::Result;

impl Sessions {
    /// Records what `guest-agent mcp` inside the session reports, for as long as the agent
    /// answers.
    pub(super) fn follow_guest_reports(&self, id: &str, client: &Client) {
        let (me, id, client) = (self.me.clone(), id.to_owned(), client.clone());
        tokio::spawn(async move {
            let Some(sessions) = me.upgrade() else { return };
            let last = match sessions.store.last_guest_seq(&id).await {
                Ok(seq) => seq,
                Err(e) => return tracing::warn!(session = %id, "guest reports: {e}"),
            };
            drop(sessions);
            let mut reports = match client.audit_events().await {
                Ok(stream) => stream,
                Err(e) => return tracing::debug!(session = %id, "guest reports: {e}"),
            };
            while let Ok(Some(guest)) = reports.next().await {
                if guest.seq <= last {
                    continue;
                }
                let Some(sessions) = me.upgrade() else { return };
                let report = crate::activity::sanitize_report(guest.report);
                match sessions.store.guest_call(&id, guest.seq, &report).await {
                    Ok(event) => sessions.publish_activity(event).await,
                    Err(e) => tracing::warn!(session = %id, "guest report not recorded: {e}"),
                }
            }
        });
    }

    /// A running session's listening ports and their previews.
    pub async fn previews(&self, id: &str) -> Result<Vec<proto::api::PreviewPort>> {
        let client = self.client(id).await?;
        let listeners = client.ports().await.map_err(crate::core::agent_error)?.listeners;
        self.describe_ports(id, &listeners).await
    }

    async fn describe_ports(
        &self,
        id: &str,
        listeners: &[proto::ports::Listener],
    ) -> Result<Vec<proto::api::PreviewPort>> {
        let public = self.store.public_ports(id).await?;
        let shares = self.store.shares_of(id).await?;
        Ok(crate::preview::describe(&self.config.preview, id, listeners, &public, &shares))
    }

    /// Tells the owner's live views about a session's ports now.
    pub async fn publish_ports(&self, id: &str) {
        let (Ok(record), Ok(ports)) = (self.record(id).await, self.previews(id).await) else {
            return;
        };
        // No receiver is fine: nobody is watching.
        let _ = self.changes.send(SessionChange::Ports {
            owner_id: record.owner_id,
            session_id: id.to_owned(),
            ports,
        });
    }

    /// Publishes the session's ports whenever one opens or closes, for as long as the agent
    /// answers.
    pub(super) fn follow_ports(&self, id: &str, client: &Client) {
        let (me, id, client) = (self.me.clone(), id.to_owned(), client.clone());
        tokio::spawn(async move {
            let mut events = match client.port_events().await {
                Ok(stream) => stream,
                Err(e) => return tracing::debug!(session = %id, "port events: {e}"),
            };
            while let Ok(Some(_)) = events.next().await {
                let Some(sessions) = me.upgrade() else { return };
                sessions.publish_ports(&id).await;
            }
        });
    }
}
