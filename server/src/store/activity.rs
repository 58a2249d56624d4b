//! The activity feed and audit log: an agent's tool calls (started, then ended), what a
//! sandbox reported, and the other audit events, all read back as [`ActivityEvent`]s.

use proto::api::ActivityEvent;
use proto::audit::ToolStatus;
use sqlx::Row;

use super::{Store, now_ms};
use crate::error::Result;

/// Who the feed names for calls the sandbox reported.
pub const GUEST_ACTOR: &str = "in-sandbox agent";

/// An audit row joined with its user, as a macro so queries stay `&'static str`.
macro_rules! activity_columns {
    () => {
        "e.id, e.at_ms, e.session_id, e.kind, e.detail_json, e.actor, e.token_id, e.summary, \
         e.status, e.error, e.duration_ms, e.guest_reported, e.terminal, u.name AS user_name \
         FROM audit_events e LEFT JOIN users u ON u.id = e.user_id"
    };
}
fn activity_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<ActivityEvent> {
    let detail: String = row.try_get("detail_json")?;
    let summary: Option<String> = row.try_get("summary")?;
    let actor: Option<String> = row.try_get("actor")?;
    let user_name: Option<String> = row.try_get("user_name")?;
    let status: String = row.try_get("status")?;
    let duration: Option<i64> = row.try_get("duration_ms")?;
    let guest: i64 = row.try_get("guest_reported")?;
    Ok(ActivityEvent {
        id: row.try_get("id")?,
        at_ms: row.try_get("at_ms")?,
        session_id: row.try_get("session_id")?,
        actor: actor.or(user_name).unwrap_or_else(|| "server".to_owned()),
        token_id: row.try_get("token_id")?,
        kind: row.try_get("kind")?,
        // Events before the feed existed carry their arguments as JSON only.
        summary: summary.unwrap_or_else(|| if detail == "{}" { String::new() } else { detail }),
        status: ToolStatus::parse(&status).unwrap_or(ToolStatus::Ok),
        error: row.try_get("error")?,
        duration_ms: duration.and_then(|d| u64::try_from(d).ok()),
        guest_reported: guest != 0,
        terminal: row.try_get("terminal")?,
    })
}

/// An agent's tool call, as it starts: recorded by [`Store::begin_call`] and finished by
/// [`Store::end_call`].
#[derive(Clone, Debug)]
pub struct CallRecord {
    /// The session it acts on.
    pub session_id: String,
    /// The user whose credential it used.
    pub user_id: Option<String>,
    /// Who, for people: `agent: <token name>`.
    pub actor: String,
    /// The token it came through.
    pub token_id: Option<String>,
    /// `mcp.<tool>`.
    pub kind: String,
    /// Arguments, secrets redacted.
    pub summary: String,
    /// The terminal it types into, if any.
    pub terminal: Option<String>,
}

impl Store {
    /// Records a tool call as started; its id is the feed entry that [`Store::end_call`]
    /// completes.
    pub async fn begin_call(&self, call: &CallRecord) -> Result<ActivityEvent> {
        let at_ms = now_ms();
        let done = sqlx::query(
            "INSERT INTO audit_events (at_ms, user_id, session_id, kind, detail_json, actor, token_id, summary, status, terminal) VALUES (?, ?, ?, ?, '{}', ?, ?, ?, 'started', ?)",
        )
        .bind(at_ms)
        .bind(&call.user_id)
        .bind(&call.session_id)
        .bind(&call.kind)
        .bind(&call.actor)
        .bind(&call.token_id)
        .bind(&call.summary)
        .bind(&call.terminal)
        .execute(&self.pool)
        .await?;
        Ok(ActivityEvent {
            id: done.last_insert_rowid(),
            at_ms,
            session_id: Some(call.session_id.clone()),
            actor: call.actor.clone(),
            token_id: call.token_id.clone(),
            kind: call.kind.clone(),
            summary: call.summary.clone(),
            status: ToolStatus::Started,
            error: None,
            duration_ms: None,
            guest_reported: false,
            terminal: call.terminal.clone(),
        })
    }

    /// Completes a started call; returns the entry as it now reads.
    pub async fn end_call(
        &self,
        id: i64,
        status: ToolStatus,
        error: Option<&str>,
        duration_ms: u64,
        terminal: Option<&str>,
    ) -> Result<Option<ActivityEvent>> {
        sqlx::query(
            "UPDATE audit_events SET status = ?, error = ?, duration_ms = ?, terminal = COALESCE(?, terminal) WHERE id = ?",
        )
        .bind(status.as_str())
        .bind(error)
        .bind(i64::try_from(duration_ms).unwrap_or(i64::MAX))
        .bind(terminal)
        .bind(id)
        .execute(&self.pool)
        .await?;
        let row = sqlx::query(concat!("SELECT ", activity_columns!(), " WHERE e.id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(activity_from_row).transpose()
    }

    /// Records a tool call the sandbox reported (`guest-agent mcp`), marked guest-reported.
    pub async fn guest_call(
        &self,
        session_id: &str,
        seq: u64,
        report: &proto::audit::ToolReport,
    ) -> Result<ActivityEvent> {
        let at_ms = now_ms();
        let duration = i64::try_from(report.duration_ms).unwrap_or(i64::MAX);
        let kind = format!("mcp.{}", report.tool);
        let done = sqlx::query(
            "INSERT INTO audit_events (at_ms, user_id, session_id, kind, detail_json, actor, summary, status, error, duration_ms, guest_reported, guest_seq) VALUES (?, NULL, ?, ?, '{}', ?, ?, ?, ?, ?, 1, ?)",
        )
        .bind(at_ms.saturating_sub(duration))
        .bind(session_id)
        .bind(&kind)
        .bind(GUEST_ACTOR)
        .bind(&report.summary)
        .bind(report.status.as_str())
        .bind(&report.error)
        .bind(duration)
        .bind(i64::try_from(seq).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await?;
        Ok(ActivityEvent {
            id: done.last_insert_rowid(),
            at_ms: at_ms.saturating_sub(duration),
            session_id: Some(session_id.to_owned()),
            actor: GUEST_ACTOR.to_owned(),
            token_id: None,
            kind,
            summary: report.summary.clone(),
            status: report.status,
            error: report.error.clone(),
            duration_ms: Some(report.duration_ms),
            guest_reported: true,
            terminal: None,
        })
    }

    /// The last guest report recorded for a session (0 for none): a re-adopted sandbox's
    /// agent replays its reports, and those are skipped.
    pub async fn last_guest_seq(&self, session_id: &str) -> Result<u64> {
        let row = sqlx::query(
            "SELECT COALESCE(MAX(guest_seq), 0) AS seq FROM audit_events WHERE session_id = ?",
        )
        .bind(session_id)
        .fetch_one(&self.pool)
        .await?;
        let seq: i64 = row.try_get("seq")?;
        Ok(u64::try_from(seq).unwrap_or(0))
    }

    /// Calls still marked started (the server stopped while they ran) are marked cancelled.
    pub async fn cancel_unfinished_calls(&self) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE audit_events SET status = 'cancelled', error = 'the server stopped while it ran' WHERE status = 'started'",
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Appends an audit event.
    pub async fn audit(
        &self,
        user_id: Option<&str>,
        session_id: Option<&str>,
        kind: &str,
        detail: &serde_json::Value,
    ) -> Result<ActivityEvent> {
        self.audit_as(user_id, None, session_id, kind, detail).await
    }

    /// [`Store::audit`] with the name the feed shows for whoever did it, when it is not a
    /// user's (a guest's display name).
    pub async fn audit_as(
        &self,
        user_id: Option<&str>,
        actor: Option<&str>,
        session_id: Option<&str>,
        kind: &str,
        detail: &serde_json::Value,
    ) -> Result<ActivityEvent> {
        let at_ms = now_ms();
        let done = sqlx::query("INSERT INTO audit_events (at_ms, user_id, session_id, kind, detail_json, actor) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(at_ms)
            .bind(user_id)
            .bind(session_id)
            .bind(kind)
            .bind(detail.to_string())
            .bind(actor)
            .execute(&self.pool)
            .await?;
        let row = sqlx::query(concat!("SELECT ", activity_columns!(), " WHERE e.id = ?"))
            .bind(done.last_insert_rowid())
            .fetch_one(&self.pool)
            .await?;
        activity_from_row(&row)
    }

    /// A session's activity feed, oldest first.
    pub async fn session_events(&self, session_id: &str) -> Result<Vec<ActivityEvent>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            activity_columns!(),
            " WHERE e.session_id = ? ORDER BY e.id"
        ))
        .bind(session_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(activity_from_row).collect()
    }
}
