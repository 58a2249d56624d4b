//! People in a session: invite links with a role (made, listed and revoked by the owner),
//! joining through one (a guest cookie for that session only), removing a guest, and who is
//! attached now. Revoking an invite or removing a guest closes their websockets at once
//! ([`crate::people::People::cut`]); their next request is a 401.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use proto::people::{
    AcceptInvite, CreateInvite, INVITE_DEFAULT_S, INVITE_MAX_S, Invite, Joined, NAME_MAX_CHARS,
    Presence, Role,
};

use crate::app::{AppState, JsonBody};
use crate::auth::{Caller, GUEST_COOKIE_NAME, Via, hash_token, random_hex, random_id};
use crate::core::{Need, authorize};
use crate::error::{AppError, ErrorBody, Result};
use crate::store::{GuestRecord, now_ms};

/// A guest's cookie lasts this long (their access ends earlier when the invite is revoked or
/// they are removed).
const GUEST_TTL_MS: i64 = 30 * 24 * 3600 * 1000;

/// The owner's say over who comes in: not a token (an agent does not invite people).
async fn owner(state: &AppState, caller: &Caller, id: &str) -> Result<()> {
    if let Via::Token { .. } = caller.via {
        return Err(AppError::forbidden("invites are the session owner's, from the web app"));
    }
    authorize(state, caller, id, Need::Own).await.map(drop)
}

/// `POST /api/sessions/{id}/invites`: an invite link giving `role`; its URL is only in this
/// answer.
#[utoipa::path(post, path = "/api/sessions/{id}/invites", tag = "people", params(("id" = String, Path, description = "session id")), request_body = CreateInvite, responses((status = 201, body = Invite), (status = 400, body = ErrorBody), (status = 401, description = "no credential", body = ErrorBody), (status = 403, description = "not the owner", body = ErrorBody), (status = 404, description = "no such session", body = ErrorBody), (status = 422, description = "not an invite request", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    JsonBody(request): JsonBody<CreateInvite>,
) -> Result<Response> {
    owner(&state, &caller, &id).await?;
    if request.role == Role::Owner {
        return Err(AppError::bad_request("an invite gives `viewer` or `editor`, not `owner`"));
    }
    let expires_s = request.expires_s.unwrap_or(INVITE_DEFAULT_S);
    if expires_s == 0 || expires_s > INVITE_MAX_S {
        return Err(AppError::bad_request(format!("expires_s must be 1..={INVITE_MAX_S}")));
    }
    let secret = random_hex();
    let created_ms = now_ms();
    let mut invite = Invite {
        id: random_id(),
        role: request.role,
        url: None,
        created_ms,
        expires_ms: created_ms + (expires_s as i64) * 1000,
        guests: Vec::new(),
    };
    state.store.insert_invite(&invite, &id, &caller.user.id, &hash_token(&secret)).await?;
    let detail =
        serde_json::json!({ "invite": invite.id, "role": invite.role, "expires_s": expires_s });
    state.sessions.audit_by(&caller, Some(&id), "invite.create", &detail).await?;
    invite.url = Some(format!("{}/join/{secret}", state.config.public_origin.to_origin_string()));
    Ok((StatusCode::CREATED, Json(invite)).into_response())
}

/// `GET /api/sessions/{id}/invites`: the live invites, each with the guests who joined.
#[utoipa::path(get, path = "/api/sessions/{id}/invites", tag = "people", params(("id" = String, Path, description = "session id")), responses((status = 200, body = Vec<Invite>), (status = 401, description = "no credential", body = ErrorBody), (status = 403, description = "not the owner", body = ErrorBody), (status = 404, description = "no such session", body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
) -> Result<Json<Vec<Invite>>> {
    owner(&state, &caller, &id).await?;
    Ok(Json(state.store.invites_of(&id).await?))
}

/// `DELETE /api/sessions/{id}/invites/{invite}`: the link stops working and everyone who
/// joined through it is out, their websockets closed at once.
#[utoipa::path(delete, path = "/api/sessions/{id}/invites/{invite}", tag = "people", params(("id" = String, Path, description = "session id"), ("invite" = String, Path, description = "invite id")), responses((status = 204), (status = 401, description = "no credential", body = ErrorBody), (status = 403, description = "not the owner", body = ErrorBody), (status = 404, description = "no such session or invite", body = ErrorBody)))]
pub async fn revoke(
    State(state): State<AppState>,
    Path((id, invite)): Path<(String, String)>,
    caller: Caller,
) -> Result<StatusCode> {
    owner(&state, &caller, &id).await?;
    let guests: Vec<String> = state
        .store
        .invites_of(&id)
        .await?
        .into_iter()
        .filter(|i| i.id == invite)
        .flat_map(|i| i.guests.into_iter().map(|g| g.id))
        .collect();
    if !state.store.revoke_invite(&id, &invite).await? {
        return Err(AppError::not_found(format!("no invite {invite}")));
    }
    // Revoked first: a request racing the cut fails its authentication anyway.
    state.people.cut(&id, |person| guests.contains(&person.id));
    for guest in &guests {
        state.revocations.revoke(&crate::activity::Revocations::guest_key(guest));
    }
    let detail = serde_json::json!({ "invite": invite, "guests": guests.len() });
    state.sessions.audit_by(&caller, Some(&id), "invite.revoke", &detail).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/sessions/{id}/people/{guest}`: a guest is out, their websockets closed.
#[utoipa::path(delete, path = "/api/sessions/{id}/people/{guest}", tag = "people", params(("id" = String, Path, description = "session id"), ("guest" = String, Path, description = "guest id")), responses((status = 204), (status = 401, description = "no credential", body = ErrorBody), (status = 403, description = "not the owner", body = ErrorBody), (status = 404, description = "no such session or guest", body = ErrorBody)))]
pub async fn remove(
    State(state): State<AppState>,
    Path((id, guest)): Path<(String, String)>,
    caller: Caller,
) -> Result<StatusCode> {
    owner(&state, &caller, &id).await?;
    if !state.store.remove_guest(&id, &guest).await? {
        return Err(AppError::not_found(format!("no guest {guest}")));
    }
    state.people.cut(&id, |person| person.id == guest);
    state.revocations.revoke(&crate::activity::Revocations::guest_key(&guest));
    let detail = serde_json::json!({ "guest": guest });
    state.sessions.audit_by(&caller, Some(&id), "guest.remove", &detail).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/sessions/{id}/people`: who is attached now, and each terminal's last typist.
#[utoipa::path(get, path = "/api/sessions/{id}/people", tag = "people", params(("id" = String, Path, description = "session id")), responses((status = 200, body = Presence), (status = 401, description = "no credential", body = ErrorBody), (status = 404, description = "no such session", body = ErrorBody)))]
pub async fn presence(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
) -> Result<Json<Presence>> {
    authorize(&state, &caller, &id, Need::Read).await?;
    Ok(Json(state.people.presence(&id)))
}

/// `POST /api/invites/accept`: the invitee's name for the secret of a live invite link; the
/// answer sets a guest cookie for that session only.
#[utoipa::path(post, path = "/api/invites/accept", tag = "people", request_body = AcceptInvite, responses((status = 200, body = Joined), (status = 400, description = "a name that will not do", body = ErrorBody), (status = 404, description = "not an invite link", body = ErrorBody), (status = 410, description = "the invite expired or was revoked", body = ErrorBody), (status = 422, description = "not an accept request", body = ErrorBody)))]
pub async fn accept(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<AcceptInvite>,
) -> Result<Response> {
    let name = display_name(&request.name)?;
    let Some(invite) = state.store.invite_by_secret(&hash_token(request.token.trim())).await?
    else {
        return Err(AppError::not_found("this invite link is not valid"));
    };
    if invite.revoked {
        return Err(AppError::new(StatusCode::GONE, "this invite was revoked by the owner"));
    }
    if invite.expires_ms <= now_ms() {
        return Err(AppError::new(StatusCode::GONE, "this invite link has expired"));
    }
    // The session must still be there (deleting it deletes its invites, but be plain).
    state.sessions.record(&invite.session_id).await?;
    let cookie = random_hex();
    let guest = GuestRecord {
        id: random_id(),
        session_id: invite.session_id.clone(),
        invite_id: invite.id.clone(),
        name,
        role: invite.role,
    };
    state.store.insert_guest(&guest, &hash_token(&cookie), now_ms() + GUEST_TTL_MS).await?;
    let detail = serde_json::json!({ "invite": invite.id, "guest": guest.id, "name": guest.name, "role": guest.role });
    state.sessions.audit(None, Some(&invite.session_id), "invite.accept", &detail).await?;
    let secure = if state.config.public_origin.is_https() { "; Secure" } else { "" };
    let set_cookie = format!(
        "{GUEST_COOKIE_NAME}={cookie}; HttpOnly; SameSite=Lax; Path=/; Max-Age={}{secure}",
        GUEST_TTL_MS / 1000
    );
    let joined = Joined { session_id: invite.session_id, role: invite.role };
    let mut response = Json(joined).into_response();
    let value = HeaderValue::from_str(&set_cookie).map_err(AppError::internal)?;
    response.headers_mut().insert(header::SET_COOKIE, value);
    Ok(response)
}

/// A guest's name: trimmed, 1 to [`NAME_MAX_CHARS`] characters, no control characters.
fn display_name(name: &str) -> Result<String> {
    let name = name.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > NAME_MAX_CHARS || name.chars().any(char::is_control) {
        return Err(AppError::bad_request(format!(
            "a name is 1 to {NAME_MAX_CHARS} characters, without control characters"
        )));
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(display_name("  Ada Lovelace ").ok().as_deref(), Some("Ada Lovelace"));
        assert!(display_name("   ").is_err());
        assert!(display_name(&"x".repeat(41)).is_err());
        assert!(display_name("bad\u{7}bell").is_err());
        assert_eq!(display_name(&"é".repeat(40)).ok().map(|n| n.chars().count()), Some(40));
    }
}
