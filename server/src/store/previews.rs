//! Preview ports' visibility and share links.

use sqlx::Row;

use super::{Store, now_ms};
use crate::error::Result;

/// A share link as stored (its secret only as a hash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Share {
    /// Its id.
    pub id: String,
    /// The session.
    pub session_id: String,
    /// The port.
    pub port: u16,
    /// When it stops working.
    pub expires_ms: i64,
}

fn share_from(row: &sqlx::sqlite::SqliteRow) -> Result<Share> {
    let port: i64 = row.try_get("port")?;
    Ok(Share {
        id: row.try_get("id")?,
        session_id: row.try_get("session_id")?,
        port: u16::try_from(port).unwrap_or_default(),
        expires_ms: row.try_get("expires_ms")?,
    })
}

impl Store {
    /// The public ports of a session.
    pub async fn public_ports(&self, session_id: &str) -> Result<Vec<u16>> {
        let rows =
            sqlx::query("SELECT port FROM preview_ports WHERE session_id = ? AND public = 1")
                .bind(session_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| Ok(u16::try_from(r.try_get::<i64, _>("port")?).unwrap_or_default()))
            .collect()
    }

    /// Whether a port is public.
    pub async fn is_public(&self, session_id: &str, port: u16) -> Result<bool> {
        let row = sqlx::query("SELECT public FROM preview_ports WHERE session_id = ? AND port = ?")
            .bind(session_id)
            .bind(i64::from(port))
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get::<i64, _>("public")).transpose()?.unwrap_or(0) == 1)
    }

    /// Makes a port public or private.
    pub async fn set_public(&self, session_id: &str, port: u16, public: bool) -> Result<()> {
        sqlx::query(
            "INSERT INTO preview_ports (session_id, port, public) VALUES (?, ?, ?) \
             ON CONFLICT (session_id, port) DO UPDATE SET public = excluded.public",
        )
        .bind(session_id)
        .bind(i64::from(port))
        .bind(public)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a share link; `creator_guest_id` when a guest made it (it ends with them).
    pub async fn insert_share(
        &self,
        share: &Share,
        secret_hash: &str,
        creator_guest_id: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO share_links \
             (id, session_id, port, secret_hash, created_ms, expires_ms, creator_guest_id) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&share.id)
        .bind(&share.session_id)
        .bind(i64::from(share.port))
        .bind(secret_hash)
        .bind(now_ms())
        .bind(share.expires_ms)
        .bind(creator_guest_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A session's share links that have not expired, by port then expiry.
    pub async fn shares_of(&self, session_id: &str) -> Result<Vec<Share>> {
        let rows = sqlx::query(
            "SELECT id, session_id, port, expires_ms FROM share_links \
             WHERE session_id = ? AND expires_ms > ? \
             AND (creator_guest_id IS NULL OR EXISTS (SELECT 1 FROM guests g \
             JOIN invites i ON i.id = g.invite_id WHERE g.id = creator_guest_id \
             AND g.removed_ms IS NULL AND i.revoked_ms IS NULL AND g.expires_ms > ?)) \
             ORDER BY port, expires_ms, id",
        )
        .bind(session_id)
        .bind(now_ms())
        .bind(now_ms())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(share_from).collect()
    }

    /// The valid share link with this secret (unexpired, and its guest creator's access
    /// not ended).
    pub async fn share_by_secret(&self, secret_hash: &str) -> Result<Option<Share>> {
        let row = sqlx::query(
            "SELECT id, session_id, port, expires_ms FROM share_links \
             WHERE secret_hash = ? AND expires_ms > ? \
             AND (creator_guest_id IS NULL OR EXISTS (SELECT 1 FROM guests g \
             JOIN invites i ON i.id = g.invite_id WHERE g.id = creator_guest_id \
             AND g.removed_ms IS NULL AND i.revoked_ms IS NULL AND g.expires_ms > ?))",
        )
        .bind(secret_hash)
        .bind(now_ms())
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(share_from).transpose()
    }

    /// The valid share link with this id.
    pub async fn share(&self, id: &str) -> Result<Option<Share>> {
        let row = sqlx::query(
            "SELECT id, session_id, port, expires_ms FROM share_links \
             WHERE id = ? AND expires_ms > ? \
             AND (creator_guest_id IS NULL OR EXISTS (SELECT 1 FROM guests g \
             JOIN invites i ON i.id = g.invite_id WHERE g.id = creator_guest_id \
             AND g.removed_ms IS NULL AND i.revoked_ms IS NULL AND g.expires_ms > ?))",
        )
        .bind(id)
        .bind(now_ms())
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(share_from).transpose()
    }

    /// Revokes a share link of a session's port; false if there was none.
    pub async fn delete_share(&self, session_id: &str, port: u16, id: &str) -> Result<bool> {
        let done =
            sqlx::query("DELETE FROM share_links WHERE id = ? AND session_id = ? AND port = ?")
                .bind(id)
                .bind(session_id)
                .bind(i64::from(port))
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }
}
