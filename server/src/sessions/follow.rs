//! What a running session's agent streams to the server: tool calls reported from inside
//! the sandbox (`guest-agent mcp`) and port events, each followed by a task for as long as
//! the agent answers.

use agent_client::client::Client;

use super::{SessionChange, Sessions};
use crate::error::Result;

/// Reports from inside a sandbox recorded per second, sustained; beyond it they are dropped
/// and counted (a guest looping on `POST /v1/audit` must not fill the store).
pub const GUEST_REPORTS_PER_S: u32 = 10;

/// Reports recorded at once before the rate applies (an agent's burst of calls).
pub const GUEST_REPORTS_BURST: u32 = 100;

/// A token bucket for one session's guest reports.
struct GuestRate {
    tokens: f64,
    at: tokio::time::Instant,
    dropped: u64,
}

impl GuestRate {
    fn new(now: tokio::time::Instant) -> GuestRate {
        GuestRate { tokens: f64::from(GUEST_REPORTS_BURST), at: now, dropped: 0 }
    }

    /// `Some(dropped since the last admitted)` if a report may be recorded now, else `None`
    /// (and it is counted).
    fn admit(&mut self, now: tokio::time::Instant) -> Option<u64> {
        let earned = now.duration_since(self.at).as_secs_f64() * f64::from(GUEST_REPORTS_PER_S);
        self.tokens = (self.tokens + earned).min(f64::from(GUEST_REPORTS_BURST));
        self.at = now;
        if self.tokens < 1.0 {
            self.dropped += 1;
            return None;
        }
        self.tokens -= 1.0;
        Some(std::mem::take(&mut self.dropped))
    }
}

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
            let mut bucket = GuestRate::new(tokio::time::Instant::now());
            while let Ok(Some(guest)) = reports.next().await {
                if guest.seq <= last {
                    continue;
                }
                // Over the rate: counted, said once the rate allows again.
                let Some(dropped) = bucket.admit(tokio::time::Instant::now()) else { continue };
                let Some(sessions) = me.upgrade() else { return };
                let mut records = Vec::with_capacity(2);
                if dropped > 0 {
                    records.push(crate::activity::dropped_report(
                        dropped,
                        &format!("over {GUEST_REPORTS_PER_S} a second"),
                    ));
                }
                records.push(crate::activity::sanitize_report(guest.report));
                for report in records {
                    match sessions.store.guest_call(&id, guest.seq, &report).await {
                        Ok(event) => sessions.publish_activity(event).await,
                        Err(e) => tracing::warn!(session = %id, "guest report not recorded: {e}"),
                    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_reports_past_the_rate_are_dropped_and_counted() {
        let start = tokio::time::Instant::now();
        let mut bucket = GuestRate::new(start);
        for _ in 0..GUEST_REPORTS_BURST {
            assert_eq!(bucket.admit(start), Some(0));
        }
        for _ in 0..5 {
            assert_eq!(bucket.admit(start), None);
        }
        let later = start + std::time::Duration::from_millis(1000 / u64::from(GUEST_REPORTS_PER_S));
        assert_eq!(bucket.admit(later), Some(5), "the next one says how many went");
        assert_eq!(bucket.admit(later), None);
    }
}
