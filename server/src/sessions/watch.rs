//! What keeps sessions true to the world: re-adoption at start-up (sandboxes outlive the
//! server; those with no session, the last run's warm ones, are removed) and a watch once a
//! second (lifetimes, idle sessions, retention, OOM kills, sandboxes that died).

use std::sync::Arc;
use std::time::Duration;

use proto::api::SessionState;

use super::{Live, Sessions};
use crate::error::{AppError, Result};
use crate::sandbox;
use crate::store::now_ms;

impl Sessions {
    /// At start-up: re-attaches to sandboxes that outlived the previous server, and marks
    /// sessions whose sandbox is gone (or that were mid-way) as failed.
    pub async fn adopt_all(&self) -> Result<()> {
        let records = self
            .store
            .sessions_in(&[
                SessionState::Creating,
                SessionState::Running,
                SessionState::Degraded,
                SessionState::Stopping,
            ])
            .await?;
        let mut networked = std::collections::HashSet::new();
        for record in records {
            let id = &record.info.id;
            let adopted = match record.info.state {
                state if state.is_up() => self.adopt(id, &record.info.driver)?,
                _ => None,
            };
            let client = match &adopted {
                Some(sandbox) => Some(sandbox.client().await),
                None => None,
            };
            match (adopted, client) {
                (Some(sandbox), Some(Ok(client))) => {
                    tracing::info!(session = %id, "re-adopted a running sandbox");
                    if record.info.network {
                        networked.insert(id.clone());
                    }
                    self.follow_guest_reports(id, &client);
                    self.follow_ports(id, &client);
                    let live = Live::new(sandbox, client, record.info.limits);
                    self.live.lock().await.insert(id.clone(), live);
                    if record.info.state == SessionState::Degraded {
                        self.set_state(id, SessionState::Running, None).await?;
                    }
                }
                (sandbox, client) => {
                    if let Some(sandbox) = sandbox {
                        let _ = sandbox::stop(&sandbox).await;
                    }
                    let reason = match client {
                        // A socket that is not the agent's is refused, and said why.
                        Some(Err(e)) => {
                            tracing::warn!(session = %id, "not re-adopted: {e:#}");
                            format!("the sandbox could not be re-adopted and was stopped: {e:#}")
                        }
                        _ => format!(
                            "the sandbox was lost while the server was down (it was {})",
                            record.info.state.as_str()
                        ),
                    };
                    self.set_state(id, SessionState::Failed, Some(&reason)).await?;
                }
            }
        }
        self.remove_orphans().await;
        // The kernel holds each sandbox's network; put back what is missing, remove the rest.
        if let Some(network) = self.network.get() {
            let lost = network.reconcile(&networked).await.map_err(AppError::internal)?;
            for id in lost {
                tracing::warn!(session = %id, "its network was lost while the server was down");
                if let Some(live) = self.live.lock().await.remove(&id) {
                    let _ = sandbox::stop(&live.sandbox).await;
                }
                let reason = "its network was lost while the server was down";
                self.set_state(&id, SessionState::Failed, Some(reason)).await?;
            }
        }
        Ok(())
    }

    /// Removes sandboxes that have no session: warm pool slots of the previous server (and
    /// whatever a crash between start and record left).
    async fn remove_orphans(&self) {
        let Ok(entries) = std::fs::read_dir(self.config.data_dir.join("sessions")) else {
            return;
        };
        for entry in entries.flatten() {
            let id = entry.file_name().to_string_lossy().into_owned();
            if !matches!(self.store.session(&id).await, Ok(None)) {
                continue;
            }
            let driver =
                if entry.path().join("sandbox/bundle").exists() { "gvisor" } else { "process" };
            if let Ok(Some(sandbox)) = self.adopt(&id, driver) {
                tracing::info!(slot = %id, "removing a sandbox with no session (a warm one)");
                let _ = sandbox::stop(&sandbox).await;
            }
            if let Err(e) = sandbox::remove_session_dir(&entry.path()).await {
                tracing::warn!(slot = %id, "removing an orphan's directory: {e:#}");
            }
        }
    }

    /// Once a second: stops sessions whose lifetime is over or that sat idle too long, and
    /// records OOM kills. Runs until the server ends.
    pub async fn watch_forever(self: Arc<Self>) {
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        for tick in 0u64.. {
            ticker.tick().await;
            if tick % 10 == 0
                && let Some(network) = self.network.get()
                && let Err(e) = network.refresh_host_addresses().await
            {
                tracing::warn!("refreshing the host's addresses: {e:#}");
            }
            self.relink_closed().await;
            if let Err(e) = self.watch_once().await {
                tracing::warn!("session watch: {e}");
            }
        }
    }

    async fn watch_once(&self) -> Result<()> {
        let now = now_ms();
        let mut to_stop: Vec<(String, String)> = self
            .store
            .sessions_in(&[SessionState::Running, SessionState::Degraded])
            .await?
            .into_iter()
            .filter(|r| r.info.expires_ms <= now)
            .map(|r| (r.info.id, "its lifetime ran out".to_owned()))
            .collect();
        let mut ooms = Vec::new();
        let mut dead = Vec::new();
        {
            let mut live = self.live.lock().await;
            for (id, session) in live.iter_mut() {
                let idle = session.last_activity.elapsed();
                if session.attached == 0
                    && idle >= self.config.idle_timeout
                    && !to_stop.iter().any(|(s, _)| s == id)
                {
                    to_stop.push((
                        id.clone(),
                        format!("idle for {} s with no client attached", idle.as_secs()),
                    ));
                }
                let kills = session.sandbox.oom_kills();
                if kills > session.oom_kills {
                    ooms.push((id.clone(), kills - session.oom_kills));
                }
                if !session.sandbox.alive() {
                    let memory_mb = session.sandbox.memory_mb();
                    let reason = if kills > 0 {
                        format!(
                            "out of memory: the sandbox went over its {memory_mb} MiB and was \
                             ended (/workspace is kept)"
                        )
                    } else {
                        "the sandbox ended unexpectedly (/workspace is kept)".to_owned()
                    };
                    dead.push((id.clone(), reason));
                }
                session.oom_kills = kills;
            }
        }
        for (id, count) in ooms {
            tracing::warn!(session = %id, count, "out of memory: the kernel killed a process");
            let detail = serde_json::json!({ "kills": count });
            self.audit(None, Some(&id), "session.oom_kill", &detail).await?;
        }
        let retention_ms = i64::try_from(self.config.retention.as_millis()).unwrap_or(i64::MAX);
        let expired =
            self.store.sessions_in(&[SessionState::Stopped, SessionState::Failed]).await?;
        for record in expired {
            let stopped = record.info.stopped_ms.unwrap_or(record.info.created_ms);
            if stopped.saturating_add(retention_ms) <= now {
                tracing::info!(session = %record.info.id, "retention over: deleting");
                self.delete(&record.info.id).await?;
                let detail = serde_json::json!({ "session_id": record.info.id });
                self.store
                    .audit(Some(&record.owner_id), None, "session.retention_delete", &detail)
                    .await?;
            }
        }
        for (id, reason) in dead {
            tracing::warn!(session = %id, "{reason}");
            self.audit(None, Some(&id), "session.failed", &serde_json::json!({ "reason": reason }))
                .await?;
            if let Err(e) = self.stop(&id, Some(&reason)).await {
                tracing::warn!(session = %id, "cleaning up after the sandbox ended: {e}");
            }
            self.set_state(&id, SessionState::Failed, Some(&reason)).await?;
        }
        for (id, reason) in to_stop {
            tracing::info!(session = %id, "stopping: {reason}");
            if let Err(e) = self.stop(&id, Some(&reason)).await {
                tracing::warn!(session = %id, "stopping: {e}");
            }
        }
        Ok(())
    }
}
