//! The activity feed and audit log: an agent's tool calls (started, then ended), what a
//! sandbox reported, and the other audit events, all read back as [`ActivityEvent`]s.

use proto::api::ActivityEvent;
use proto::audit::ToolStatus;
use sqlx::Row;

use super::{Store, now_ms};
use crate::error::Result;

/// Who the feed names for calls the sandbox reported.
pub const GUEST_ACTOR: &str = "in-sandbox agent";

/// Reports from inside a sandbox kept per session: past it the oldest go, and one entry in
/// their place says how many went.
pub const GUEST_ROWS_MAX: i64 = 10_000;

/// The kind of that one entry.
pub const OLDER_DROPPED_KIND: &str = "mcp.older_dropped";

/// Feed entries one `GET .../events` answers with, at most (and by default).
pub const EVENTS_PAGE_MAX: i64 = 1_000;

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
        self.cap_guest_rows(session_id).await?;
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

    /// Keeps at most [`GUEST_ROWS_MAX`] guest reports of a session: the oldest go, and one
    /// [`OLDER_DROPPED_KIND`] entry in their place counts all that went.
    async fn cap_guest_rows(&self, session_id: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit_events WHERE session_id = ? AND guest_reported = 1 \
             AND kind != ?",
        )
        .bind(session_id)
        .bind(OLDER_DROPPED_KIND)
        .fetch_one(&mut *tx)
        .await?;
        if count <= GUEST_ROWS_MAX {
            return Ok(());
        }
        let excess = count - GUEST_ROWS_MAX;
        let (last_id, last_at): (i64, i64) = sqlx::query_as(
            "SELECT id, at_ms FROM audit_events WHERE session_id = ? AND guest_reported = 1 \
             AND kind != ? ORDER BY id LIMIT 1 OFFSET ?",
        )
        .bind(session_id)
        .bind(OLDER_DROPPED_KIND)
        .bind(excess - 1)
        .fetch_one(&mut *tx)
        .await?;
        let before: Option<String> = sqlx::query_scalar(
            "SELECT detail_json FROM audit_events WHERE session_id = ? AND kind = ?",
        )
        .bind(session_id)
        .bind(OLDER_DROPPED_KIND)
        .fetch_optional(&mut *tx)
        .await?;
        let earlier = before
            .and_then(|d| serde_json::from_str::<serde_json::Value>(&d).ok())
            .and_then(|d| d["dropped"].as_i64())
            .unwrap_or(0);
        sqlx::query(
            "DELETE FROM audit_events WHERE session_id = ? AND guest_reported = 1 \
             AND (kind = ? OR id <= ?)",
        )
        .bind(session_id)
        .bind(OLDER_DROPPED_KIND)
        .bind(last_id)
        .execute(&mut *tx)
        .await?;
        // In the place of the last one that went, so the feed's order keeps it first.
        let dropped = earlier + excess;
        sqlx::query(
            "INSERT INTO audit_events (id, at_ms, user_id, session_id, kind, detail_json, actor, \
             summary, status, guest_reported) VALUES (?, ?, NULL, ?, ?, ?, ?, ?, 'error', 1)",
        )
        .bind(last_id)
        .bind(last_at)
        .bind(session_id)
        .bind(OLDER_DROPPED_KIND)
        .bind(serde_json::json!({ "dropped": dropped }).to_string())
        .bind(GUEST_ACTOR)
        .bind(format!("{dropped} older entries reported from inside the sandbox were dropped"))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
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

    /// A page of a session's activity feed, oldest first: the newest `limit` (at most
    /// [`EVENTS_PAGE_MAX`]) entries, or those before entry `before`.
    pub async fn session_events(
        &self,
        session_id: &str,
        limit: Option<i64>,
        before: Option<i64>,
    ) -> Result<Vec<ActivityEvent>> {
        let limit = limit.unwrap_or(EVENTS_PAGE_MAX).clamp(1, EVENTS_PAGE_MAX);
        let rows = sqlx::query(concat!(
            "SELECT ",
            activity_columns!(),
            " WHERE e.session_id = ? AND e.id < ? ORDER BY e.id DESC LIMIT ?"
        ))
        .bind(session_id)
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut events: Vec<ActivityEvent> =
            rows.iter().map(activity_from_row).collect::<Result<_>>()?;
        events.reverse();
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(n: u64) -> proto::audit::ToolReport {
        proto::audit::ToolReport {
            tool: "run_command".to_owned(),
            summary: format!("call {n}"),
            status: proto::audit::ToolStatus::Ok,
            error: None,
            duration_ms: 1,
        }
    }

    #[tokio::test]
    async fn a_sessions_guest_reports_are_capped_with_one_entry_counting_what_went() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).await.expect("open");
        let over = 25u64;
        let total = u64::try_from(GUEST_ROWS_MAX).expect("cap") + over;
        for n in 1..=total {
            store.guest_call("s1", n, &report(n)).await.expect("recorded");
        }
        store.guest_call("s2", 1, &report(1)).await.expect("another session");
        // Newest first pages: the last page starts with the entry counting what went.
        let mut all = Vec::new();
        let mut before = None;
        loop {
            let page =
                store.session_events("s1", Some(EVENTS_PAGE_MAX), before).await.expect("page");
            let Some(first) = page.first() else { break };
            before = Some(first.id);
            all.splice(0..0, page);
        }
        assert_eq!(all.len() as i64, GUEST_ROWS_MAX + 1, "the cap and one entry for the rest");
        assert_eq!(all[0].kind, OLDER_DROPPED_KIND);
        assert!(all[0].summary.starts_with(&format!("{over} older entries")), "{}", all[0].summary);
        assert_eq!(all[1].summary, format!("call {}", over + 1), "the oldest kept");
        assert_eq!(all.last().map(|e| e.summary.clone()), Some(format!("call {total}")));
        // One more: still one counting entry, now one more.
        store.guest_call("s1", total + 1, &report(total + 1)).await.expect("recorded");
        let page = store.session_events("s1", Some(2), Some(all[2].id)).await.expect("page");
        assert_eq!(page.len(), 1, "the counting entry is the only one before the oldest kept");
        assert!(
            page[0].summary.starts_with(&format!("{} older entries", over + 1)),
            "{:?}",
            page[0]
        );
        assert_eq!(store.session_events("s2", None, None).await.expect("s2").len(), 1);
    }
}
