//! People in a session besides its owner: invite links with a role, the guests they made,
//! and who is attached right now (presence).

use serde::{Deserialize, Serialize};

/// What a guest may do in the session they were invited to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Sees terminals, files, ports and activity; cannot type, write files or change ports.
    Viewer,
    /// Types in the terminals, edits files, opens and shares ports.
    Editor,
    /// The session's owner (never given by an invite): everything, invites included.
    Owner,
}

impl Role {
    /// `viewer`, `editor` or `owner`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Owner => "owner",
        }
    }

    /// The inverse of [`Role::as_str`].
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "viewer" => Some(Role::Viewer),
            "editor" => Some(Role::Editor),
            "owner" => Some(Role::Owner),
            _ => None,
        }
    }

    /// May type, write files and change ports?
    pub fn may_edit(self) -> bool {
        matches!(self, Role::Editor | Role::Owner)
    }
}

/// An invite link lives a day unless asked.
pub const INVITE_DEFAULT_S: u64 = 24 * 3600;

/// And at most 30 days.
pub const INVITE_MAX_S: u64 = 30 * 24 * 3600;

/// Longest display name a guest may choose, in characters.
pub const NAME_MAX_CHARS: usize = 40;

/// `POST /api/sessions/{id}/invites` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateInvite {
    /// `viewer` or `editor`.
    pub role: Role,
    /// Seconds until the link stops working ([`INVITE_DEFAULT_S`], at most
    /// [`INVITE_MAX_S`]). Guests who joined stay until the invite is revoked or they are
    /// removed.
    #[serde(default)]
    pub expires_s: Option<u64>,
}

/// A guest: someone who joined through an invite.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Guest {
    /// Their id.
    pub id: String,
    /// The name they gave.
    pub name: String,
    /// Their role.
    pub role: Role,
    /// When they joined (Unix ms).
    pub joined_ms: i64,
}

/// An invite link (`GET /api/sessions/{id}/invites`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Invite {
    /// Its id.
    pub id: String,
    /// The role it gives.
    pub role: Role,
    /// The link: only in the answer that made it (only its hash is kept).
    pub url: Option<String>,
    /// When it was made (Unix ms).
    pub created_ms: i64,
    /// When the link stops working (Unix ms).
    pub expires_ms: i64,
    /// Who joined through it and was not removed.
    pub guests: Vec<Guest>,
}

/// `POST /api/invites/accept` body: the secret of an invite link and the name to show.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AcceptInvite {
    /// The secret from the link (`/join/{token}`).
    pub token: String,
    /// The name others see, 1 to [`NAME_MAX_CHARS`] characters.
    pub name: String,
}

/// `POST /api/invites/accept` answer (and a guest cookie for that session only).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Joined {
    /// The session to open.
    pub session_id: String,
    /// The guest's role there.
    pub role: Role,
}

/// Someone attached to a session now (a terminal or the browser open).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Person {
    /// A user's id, or a guest's.
    pub id: String,
    /// Their name.
    pub name: String,
    /// Their role in the session.
    pub role: Role,
}

/// Whose keystrokes last reached a terminal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Typist {
    /// The terminal.
    pub terminal: String,
    /// The person's id.
    pub person: String,
    /// Their name.
    pub name: String,
}

/// `GET /api/sessions/{id}/people`, and the events websocket's `presence` message.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Presence {
    /// Who is attached, in the order they came.
    pub people: Vec<Person>,
    /// The last typist of each terminal someone typed into.
    pub typists: Vec<Typist>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_read_and_write_as_words() {
        for role in [Role::Viewer, Role::Editor, Role::Owner] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("admin"), None);
        assert!(!Role::Viewer.may_edit() && Role::Editor.may_edit() && Role::Owner.may_edit());
        let invite: CreateInvite = serde_json::from_str(r#"{"role":"viewer"}"#).expect("invite");
        assert_eq!(invite, CreateInvite { role: Role::Viewer, expires_s: None });
        assert!(serde_json::from_str::<CreateInvite>(r#"{"role":"admin"}"#).is_err());
    }
}
