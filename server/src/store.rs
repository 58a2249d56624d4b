//! All SQL lives here (and in `store/`): SQLite through sqlx, migrations embedded at build time.
//!
//! **Architecture invariant:** no other module writes SQL, so a PostgreSQL backend can be
//! added behind the same methods.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use proto::api::{SessionInfo, SessionLimits, SessionState};

use crate::error::{AppError, Result};

mod activity;
mod people;
mod previews;
pub use activity::{CallRecord, EVENTS_PAGE_MAX, GUEST_ACTOR, GUEST_ROWS_MAX, OLDER_DROPPED_KIND};
pub use people::{GuestRecord, InviteRecord};
pub use previews::Share;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct User {
    /// Stable id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// May do anything.
    pub is_admin: bool,
}

pub use proto::api::ApiToken;

/// The database.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (creating if needed) `flint.db` in `data_dir` and migrates it.
    pub async fn open(data_dir: &Path) -> anyhow::Result<Store> {
        crate::config::prepare_data_dir(data_dir)?;
        // Only root reads the database (its SQLite journal files take its mode).
        let path = data_dir.join("flint.db");
        {
            use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
            std::fs::OpenOptions::new().append(true).create(true).mode(0o600).open(&path)?;
            for suffix in ["", "-wal", "-shm"] {
                let file = data_dir.join(format!("flint.db{suffix}"));
                if file.exists() {
                    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
                }
            }
        }
        let options = SqliteConnectOptions::new()
            .filename(data_dir.join("flint.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options).await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Store { pool })
    }

    /// The first admin, created on first run.
    pub async fn ensure_admin(&self) -> Result<User> {
        let existing = sqlx::query(
            "SELECT id, name FROM users WHERE is_admin = 1 ORDER BY created_ms LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = existing {
            return Ok(User { id: row.try_get("id")?, name: row.try_get("name")?, is_admin: true });
        }
        let user = User { id: crate::auth::random_id(), name: "admin".to_owned(), is_admin: true };
        sqlx::query("INSERT INTO users (id, name, is_admin, created_ms) VALUES (?, ?, 1, ?)")
            .bind(&user.id)
            .bind(&user.name)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        tracing::info!(user = %user.id, "created the admin user");
        Ok(user)
    }

    /// Stores a login link's hash.
    pub async fn create_login_token(
        &self,
        hash: &str,
        user_id: &str,
        expires_ms: i64,
    ) -> Result<()> {
        sqlx::query("INSERT INTO login_tokens (token_hash, user_id, created_ms, expires_ms) VALUES (?, ?, ?, ?)")
            .bind(hash)
            .bind(user_id)
            .bind(now_ms())
            .bind(expires_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Marks a login link used and returns its user, if it was unused and unexpired. One
    /// statement, so two racing uses cannot both succeed.
    pub async fn consume_login_token(&self, hash: &str) -> Result<Option<String>> {
        let now = now_ms();
        let row = sqlx::query(
            "UPDATE login_tokens SET used_ms = ? \
             WHERE token_hash = ? AND used_ms IS NULL AND expires_ms > ? RETURNING user_id",
        )
        .bind(now)
        .bind(hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get("user_id")).transpose()?)
    }

    /// Stores a browser sign-in.
    pub async fn create_web_session(
        &self,
        hash: &str,
        user_id: &str,
        expires_ms: i64,
    ) -> Result<()> {
        sqlx::query("INSERT INTO web_sessions (cookie_hash, user_id, created_ms, expires_ms) VALUES (?, ?, ?, ?)")
            .bind(hash)
            .bind(user_id)
            .bind(now_ms())
            .bind(expires_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The user of a live browser sign-in, and when it expires.
    pub async fn web_session(&self, hash: &str) -> Result<Option<(User, i64)>> {
        let row = sqlx::query(
            "SELECT u.id, u.name, u.is_admin, w.expires_ms FROM web_sessions w \
             JOIN users u ON u.id = w.user_id WHERE w.cookie_hash = ? AND w.expires_ms > ?",
        )
        .bind(hash)
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((user_from(&r)?, r.try_get::<i64, _>("expires_ms")?))).transpose()
    }

    /// Ends a browser sign-in.
    pub async fn delete_web_session(&self, hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM web_sessions WHERE cookie_hash = ?")
            .bind(hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Stores an API token's hash.
    pub async fn create_api_token(
        &self,
        user_id: &str,
        hash: &str,
        token: &ApiToken,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO api_tokens (id, token_hash, user_id, name, session_id, created_ms) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&token.id)
        .bind(hash)
        .bind(user_id)
        .bind(&token.name)
        .bind(&token.session_id)
        .bind(token.created_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The token with this hash and its user; records the use.
    pub async fn api_token(&self, hash: &str) -> Result<Option<(ApiToken, User)>> {
        let row = sqlx::query(
            "UPDATE api_tokens SET last_used_ms = ? WHERE token_hash = ? \
             RETURNING id, name, session_id, created_ms, last_used_ms, user_id",
        )
        .bind(now_ms())
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let token = token_from(&row)?;
        let user_id: String = row.try_get("user_id")?;
        let user = sqlx::query("SELECT id, name, is_admin FROM users WHERE id = ?")
            .bind(&user_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(Some((token, user_from(&user)?)))
    }

    /// A user's tokens, newest first.
    pub async fn api_tokens(&self, user_id: &str) -> Result<Vec<ApiToken>> {
        let rows = sqlx::query(
            "SELECT id, name, session_id, created_ms, last_used_ms FROM api_tokens \
             WHERE user_id = ? ORDER BY created_ms DESC, id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(token_from).collect()
    }

    /// Revokes one of a user's tokens; the token it was, if there was one.
    pub async fn delete_api_token(&self, user_id: &str, id: &str) -> Result<Option<ApiToken>> {
        let row = sqlx::query(
            "DELETE FROM api_tokens WHERE user_id = ? AND id = ? RETURNING id, name, session_id, created_ms, last_used_ms",
        )
        .bind(user_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(token_from).transpose()
    }
}

/// A session row: its owner and what the API shows.
#[derive(Clone, Debug)]
pub struct SessionRecord {
    /// The owning user.
    pub owner_id: String,
    /// The session.
    pub info: SessionInfo,
}

/// The session columns, as a macro so queries stay `&'static str` (sqlx refuses dynamic SQL).
macro_rules! session_columns {
    () => {
        "id, owner_id, name, image, driver, state, reason, spec_json, created_ms, started_ms, \
         stopped_ms, expires_ms, network"
    };
}

impl Store {
    /// Records a new session (in state `creating`, before anything is started).
    pub async fn insert_session(&self, record: &SessionRecord) -> Result<()> {
        let info = &record.info;
        let limits = serde_json::to_string(&info.limits).map_err(AppError::internal)?;
        sqlx::query(
            "INSERT INTO sessions (id, owner_id, name, image, driver, state, reason, spec_json, \
             created_ms, started_ms, stopped_ms, expires_ms, network) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&info.id)
        .bind(&record.owner_id)
        .bind(&info.name)
        .bind(&info.image)
        .bind(&info.driver)
        .bind(info.state.as_str())
        .bind(&info.reason)
        .bind(limits)
        .bind(info.created_ms)
        .bind(info.started_ms)
        .bind(info.stopped_ms)
        .bind(info.expires_ms)
        .bind(info.network)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Moves a session to `state`, stamping `started_ms` (running, unless it comes back from
    /// degraded) or `stopped_ms` (stopped, failed); `running` takes `reason` as it is (a
    /// healed session has none), the other states keep or set it.
    pub async fn set_session_state(
        &self,
        id: &str,
        state: SessionState,
        reason: Option<&str>,
    ) -> Result<()> {
        let now = now_ms();
        sqlx::query(
            "UPDATE sessions SET state = ?1, \
             reason = CASE WHEN ?1 = 'running' THEN ?2 ELSE COALESCE(?2, reason) END, \
             started_ms = CASE WHEN ?1 = 'running' AND state <> 'degraded' THEN ?3 \
                          ELSE started_ms END, \
             stopped_ms = CASE WHEN ?1 IN ('stopped', 'failed') THEN ?3 ELSE stopped_ms END \
             WHERE id = ?4",
        )
        .bind(state.as_str())
        .bind(reason)
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Sets when a session stops by itself.
    pub async fn set_session_expiry(&self, id: &str, expires_ms: i64) -> Result<()> {
        sqlx::query("UPDATE sessions SET expires_ms = ? WHERE id = ?")
            .bind(expires_ms)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// One session.
    pub async fn session(&self, id: &str) -> Result<Option<SessionRecord>> {
        let row =
            sqlx::query(concat!("SELECT ", session_columns!(), " FROM sessions WHERE id = ?"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| session_from(&r)).transpose()
    }

    /// A user's sessions, newest first.
    pub async fn sessions_of(&self, owner_id: &str) -> Result<Vec<SessionRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions WHERE owner_id = ? ORDER BY created_ms DESC, id"
        ))
        .bind(owner_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(session_from).collect()
    }

    /// Every session in one of `states` (for re-adoption at start-up).
    pub async fn sessions_in(&self, states: &[SessionState]) -> Result<Vec<SessionRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions ORDER BY created_ms"
        ))
        .fetch_all(&self.pool)
        .await?;
        let all: Vec<SessionRecord> = rows.iter().map(session_from).collect::<Result<_>>()?;
        Ok(all.into_iter().filter(|r| states.contains(&r.info.state)).collect())
    }

    /// How many sessions are in each state.
    pub async fn count_sessions_by_state(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM sessions GROUP BY state")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok((r.try_get("state")?, r.try_get("n")?))).collect()
    }

    /// Forgets a session.
    pub async fn delete_session(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE id = ?").bind(id).execute(&self.pool).await?;
        Ok(())
    }
}

fn session_from(row: &sqlx::sqlite::SqliteRow) -> Result<SessionRecord> {
    let state: String = row.try_get("state")?;
    let state = SessionState::parse(&state)
        .ok_or_else(|| AppError::internal(format!("stored state {state:?}")))?;
    let limits: String = row.try_get("spec_json")?;
    let limits: SessionLimits = serde_json::from_str(&limits).map_err(AppError::internal)?;
    let driver: String = row.try_get("driver")?;
    let started_ms: Option<i64> = row.try_get("started_ms")?;
    let created_ms: i64 = row.try_get("created_ms")?;
    Ok(SessionRecord {
        owner_id: row.try_get("owner_id")?,
        info: SessionInfo {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            image: row.try_get("image")?,
            isolation: if driver == "process" { "weak" } else { "strong" }.to_owned(),
            driver,
            state,
            reason: row.try_get("reason")?,
            limits,
            network: row.try_get("network")?,
            created_ms,
            started_ms,
            start_duration_ms: started_ms.map(|s| s - created_ms),
            stopped_ms: row.try_get("stopped_ms")?,
            expires_ms: row.try_get("expires_ms")?,
        },
    })
}

fn user_from(row: &sqlx::sqlite::SqliteRow) -> Result<User> {
    Ok(User {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        is_admin: row.try_get("is_admin")?,
    })
}

fn token_from(row: &sqlx::sqlite::SqliteRow) -> Result<ApiToken> {
    Ok(ApiToken {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        session_id: row.try_get("session_id")?,
        created_ms: row.try_get("created_ms")?,
        last_used_ms: row.try_get("last_used_ms")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_login_token_works_once_and_not_after_expiry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).await.expect("open");
        let admin = store.ensure_admin().await.expect("admin");
        assert_eq!(store.ensure_admin().await.expect("again"), admin, "one admin, made once");
        store.create_login_token("h1", &admin.id, now_ms() + 60_000).await.expect("create");
        assert_eq!(store.consume_login_token("h1").await.expect("use"), Some(admin.id.clone()));
        assert_eq!(store.consume_login_token("h1").await.expect("reuse"), None);
        store.create_login_token("h2", &admin.id, now_ms() - 1).await.expect("create");
        assert_eq!(store.consume_login_token("h2").await.expect("expired"), None);
        assert_eq!(store.consume_login_token("nope").await.expect("unknown"), None);
    }
}
