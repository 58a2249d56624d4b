//! Invite links and the guests they made.

use proto::people::{Guest, Invite, Role};
use sqlx::Row;

use super::{Store, now_ms};
use crate::error::Result;

/// A guest as the store knows them, found by their cookie.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestRecord {
    /// Their id.
    pub id: String,
    /// The session they may touch.
    pub session_id: String,
    /// The invite they came through.
    pub invite_id: String,
    /// Their name.
    pub name: String,
    /// Their role.
    pub role: Role,
}

/// A live invite found by its secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InviteRecord {
    /// Its id.
    pub id: String,
    /// The session.
    pub session_id: String,
    /// The role it gives.
    pub role: Role,
    /// When it was revoked, if it was.
    pub revoked: bool,
    /// When the link stops working.
    pub expires_ms: i64,
}

fn role_of(row: &sqlx::sqlite::SqliteRow) -> Result<Role> {
    let role: String = row.try_get("role")?;
    // Only `viewer` and `editor` are written; anything else reads as the least power.
    Ok(Role::parse(&role).filter(|r| *r != Role::Owner).unwrap_or(Role::Viewer))
}

fn guest_from(row: &sqlx::sqlite::SqliteRow) -> Result<GuestRecord> {
    Ok(GuestRecord {
        id: row.try_get("id")?,
        session_id: row.try_get("session_id")?,
        invite_id: row.try_get("invite_id")?,
        name: row.try_get("name")?,
        role: role_of(row)?,
    })
}

impl Store {
    /// Stores an invite (its secret as a hash).
    pub async fn insert_invite(
        &self,
        invite: &Invite,
        session_id: &str,
        created_by: &str,
        secret_hash: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO invites (id, session_id, role, secret_hash, created_by, created_ms, \
             expires_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&invite.id)
        .bind(session_id)
        .bind(invite.role.as_str())
        .bind(secret_hash)
        .bind(created_by)
        .bind(invite.created_ms)
        .bind(invite.expires_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A session's invites that were not revoked, newest first, each with its guests.
    pub async fn invites_of(&self, session_id: &str) -> Result<Vec<Invite>> {
        let rows = sqlx::query(
            "SELECT id, role, created_ms, expires_ms FROM invites \
             WHERE session_id = ? AND revoked_ms IS NULL ORDER BY created_ms DESC, id",
        )
        .bind(session_id)
        .fetch_all(&self.pool)
        .await?;
        let guests = sqlx::query(
            "SELECT id, invite_id, name, role, created_ms FROM guests \
             WHERE session_id = ? AND removed_ms IS NULL ORDER BY created_ms, id",
        )
        .bind(session_id)
        .fetch_all(&self.pool)
        .await?;
        let mut invites = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: String = row.try_get("id")?;
            let mut joined = Vec::new();
            for guest in &guests {
                if guest.try_get::<String, _>("invite_id")? == id {
                    joined.push(Guest {
                        id: guest.try_get("id")?,
                        name: guest.try_get("name")?,
                        role: role_of(guest)?,
                        joined_ms: guest.try_get("created_ms")?,
                    });
                }
            }
            invites.push(Invite {
                id,
                role: role_of(row)?,
                url: None,
                created_ms: row.try_get("created_ms")?,
                expires_ms: row.try_get("expires_ms")?,
                guests: joined,
            });
        }
        Ok(invites)
    }

    /// The invite of a link's secret, revoked or expired ones included (to say why).
    pub async fn invite_by_secret(&self, secret_hash: &str) -> Result<Option<InviteRecord>> {
        let row = sqlx::query(
            "SELECT id, session_id, role, expires_ms, revoked_ms FROM invites \
             WHERE secret_hash = ?",
        )
        .bind(secret_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(InviteRecord {
                id: row.try_get("id")?,
                session_id: row.try_get("session_id")?,
                role: role_of(&row)?,
                revoked: row.try_get::<Option<i64>, _>("revoked_ms")?.is_some(),
                expires_ms: row.try_get("expires_ms")?,
            })
        })
        .transpose()
    }

    /// Revokes an invite of `session_id`; false when there is no such live invite.
    pub async fn revoke_invite(&self, session_id: &str, id: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE invites SET revoked_ms = ? WHERE id = ? AND session_id = ? \
             AND revoked_ms IS NULL",
        )
        .bind(now_ms())
        .bind(id)
        .bind(session_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Stores a guest who joined through `invite`, with their cookie's hash.
    pub async fn insert_guest(
        &self,
        guest: &GuestRecord,
        cookie_hash: &str,
        expires_ms: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO guests (id, invite_id, session_id, name, role, cookie_hash, created_ms, \
             expires_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&guest.id)
        .bind(&guest.invite_id)
        .bind(&guest.session_id)
        .bind(&guest.name)
        .bind(guest.role.as_str())
        .bind(cookie_hash)
        .bind(now_ms())
        .bind(expires_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The guest of a cookie, while neither they were removed nor their invite revoked.
    pub async fn guest_by_cookie(&self, cookie_hash: &str) -> Result<Option<GuestRecord>> {
        self.live_guest("cookie_hash", cookie_hash).await
    }

    /// Why the guest cookie with this hash no longer lets anyone in, in words for them. A
    /// guest's row goes with their session, so a cookie the store has never heard of (or no
    /// longer has) is one whose session was deleted.
    pub async fn guest_end(&self, cookie_hash: &str) -> Result<&'static str> {
        let row = sqlx::query(
            "SELECT g.removed_ms, g.expires_ms, i.revoked_ms FROM guests g \
             JOIN invites i ON i.id = g.invite_id WHERE g.cookie_hash = ?",
        )
        .bind(cookie_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok("the session was deleted") };
        let removed: Option<i64> = row.try_get("removed_ms")?;
        let revoked: Option<i64> = row.try_get("revoked_ms")?;
        let expires: i64 = row.try_get("expires_ms")?;
        Ok(if removed.is_some() {
            "the session's owner removed you from it"
        } else if revoked.is_some() {
            "the session's owner revoked your invite"
        } else if expires <= now_ms() {
            "your invite's time ran out"
        } else {
            "the session was deleted"
        })
    }

    /// A guest by id, while neither they were removed nor their invite revoked.
    pub async fn guest(&self, id: &str) -> Result<Option<GuestRecord>> {
        self.live_guest("id", id).await
    }

    /// The live guest whose `column` (a constant of this module) is `value`.
    async fn live_guest(&self, column: &'static str, value: &str) -> Result<Option<GuestRecord>> {
        let sql = format!(
            "SELECT g.id, g.session_id, g.invite_id, g.name, g.role FROM guests g \
             JOIN invites i ON i.id = g.invite_id \
             WHERE g.{column} = ? AND g.removed_ms IS NULL AND i.revoked_ms IS NULL \
             AND g.expires_ms > ?"
        );
        // `column` is one of this module's constants, never input.
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(value)
            .bind(now_ms())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| guest_from(&row)).transpose()
    }

    /// Removes a guest of `session_id`; false when there is no such guest.
    pub async fn remove_guest(&self, session_id: &str, id: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE guests SET removed_ms = ? WHERE id = ? AND session_id = ? \
             AND removed_ms IS NULL",
        )
        .bind(now_ms())
        .bind(id)
        .bind(session_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
