//! Who is calling: login links, cookies, bearer tokens, and the request guards (Host, Origin,
//! CSRF) that keep a browser from being used against Flint.

use std::net::IpAddr;

use axum::extract::{FromRequestParts, Query, Request, State};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde::Deserialize;
use sha2::Digest;

use crate::app::AppState;
use crate::error::ErrorBody;
use crate::error::{AppError, Result};
use crate::store::{User, now_ms};

/// Name of the sign-in cookie.
pub const COOKIE_NAME: &str = "flint_session";

/// Name of a guest's cookie (made from an invite link): kept apart from the sign-in cookie,
/// so opening an invite in a signed-in browser signs nobody out.
pub const GUEST_COOKIE_NAME: &str = "flint_guest";

/// Header that, like a JSON body, marks a cookie-authenticated mutation as not cross-site.
pub const CSRF_HEADER: &str = "x-flint-csrf";

/// A login link lives this long: long enough to copy from a terminal, short enough to be
/// worthless in a log tomorrow.
pub const LOGIN_LINK_TTL_MS: i64 = 24 * 3600 * 1000;

/// A browser sign-in lasts 30 days.
pub const WEB_SESSION_TTL_MS: i64 = 30 * 24 * 3600 * 1000;

/// Prefix of API tokens, so a leaked one is recognisable (secret scanners look for these).
pub const API_TOKEN_PREFIX: &str = "flint_";

/// 32 random bytes as lower-case hex.
pub fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    // The OS random source failing is not recoverable; a zeroed secret must never be used.
    if let Err(e) = getrandom::fill(&mut bytes) {
        panic!("the OS random source failed: {e}");
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An unguessable lower-case id (it may end up in a DNS label: 26 chars of base32).
pub fn random_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut bytes = [0u8; 26];
    if let Err(e) = getrandom::fill(&mut bytes) {
        panic!("the OS random source failed: {e}");
    }
    bytes.iter().map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char).collect()
}

/// Tokens are stored as their SHA-256: a copy of the database signs nobody in.
pub fn hash_token(token: &str) -> String {
    sha2::Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Mints a single-use login link for `user`.
pub async fn login_url(state: &AppState, user: &User) -> Result<String> {
    let token = random_hex();
    state
        .store
        .create_login_token(&hash_token(&token), &user.id, now_ms() + LOGIN_LINK_TTL_MS)
        .await?;
    Ok(format!("{}/login?token={token}", state.config.public_origin.to_origin_string()))
}

/// How a caller proved who it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Via {
    /// The sign-in cookie.
    Cookie {
        /// The sign-in's id (its cookie's hash); empty for the server's own calls.
        web_session: String,
        /// When it expires (ms since the epoch; 0: never).
        expires_ms: i64,
    },
    /// A bearer token; `session` set when the token is scoped to one session.
    Token {
        /// The token's id.
        id: String,
        /// Its name (what the activity feed calls the agent).
        name: String,
        /// The one session it may touch, if scoped.
        session: Option<String>,
    },
    /// A guest's cookie, made from an invite link to one session.
    Guest {
        /// The guest's id.
        id: String,
        /// The invite they came through.
        invite: String,
        /// The one session they may touch.
        session: String,
        /// What they may do there.
        role: proto::people::Role,
    },
}

/// An authenticated caller of the API.
#[derive(Clone, Debug)]
pub struct Caller {
    /// Who.
    pub user: User,
    /// How.
    pub via: Via,
}

impl Caller {
    /// Ends when the credential this call came with ends: a bearer token revoked, a
    /// sign-in signed out or expired. A websocket or stream opened with it closes then.
    /// Guests' ends reach their sockets through presence (`People::attach`).
    pub fn credential_end(&self, state: &AppState) -> CredentialEnd {
        match &self.via {
            Via::Token { id, .. } => CredentialEnd {
                signal: Some(state.revocations.watch(id)),
                expires: None,
                revoked: "the token it was opened with was revoked",
            },
            Via::Cookie { web_session, expires_ms } if !web_session.is_empty() => {
                let left = u64::try_from(expires_ms - now_ms()).unwrap_or(0);
                CredentialEnd {
                    signal: Some(
                        state
                            .revocations
                            .watch(&crate::activity::Revocations::web_key(web_session)),
                    ),
                    expires: (*expires_ms > 0).then(|| {
                        tokio::time::Instant::now() + std::time::Duration::from_millis(left)
                    }),
                    revoked: "you signed out",
                }
            }
            _ => CredentialEnd { signal: None, expires: None, revoked: "" },
        }
    }

    /// The session this caller is confined to, if any.
    pub fn session_scope(&self) -> Option<&str> {
        match &self.via {
            Via::Token { session: Some(id), .. } | Via::Guest { session: id, .. } => Some(id),
            _ => None,
        }
    }

    /// The caller's role in session `id` owned by `owner_id`: the owner (their cookie, or
    /// a token of theirs that may touch it), a guest of that session, or nobody (`None`).
    pub fn role_in(&self, id: &str, owner_id: &str) -> Option<proto::people::Role> {
        match &self.via {
            Via::Guest { session, role, .. } => (session == id).then_some(*role),
            _ => (owner_id == self.user.id && self.session_scope().is_none_or(|s| s == id))
                .then_some(proto::people::Role::Owner),
        }
    }

    /// The caller as presence shows them.
    pub fn person(&self, role: proto::people::Role) -> proto::people::Person {
        proto::people::Person { id: self.user.id.clone(), name: self.user.name.clone(), role }
    }
}

/// The end of a caller's credential, for a websocket or a stream opened with it.
pub struct CredentialEnd {
    signal: Option<std::sync::Arc<tokio_util::sync::CancellationToken>>,
    expires: Option<tokio::time::Instant>,
    revoked: &'static str,
}

impl CredentialEnd {
    /// Resolves when the credential ends, with the reason for a person (never, for one that
    /// cannot end).
    pub async fn ended(&self) -> &'static str {
        let revoked = async {
            match &self.signal {
                Some(signal) => signal.cancelled().await,
                None => std::future::pending().await,
            }
        };
        let expired = async {
            match self.expires {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = revoked => self.revoked,
            () = expired => "your sign-in expired",
        }
    }
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(name)?.strip_prefix('='))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller> {
        if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
            let token = value
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .ok_or_else(AppError::unauthorized)?;
            let (token, user) = state
                .store
                .api_token(&hash_token(token.trim()))
                .await?
                .ok_or_else(AppError::unauthorized)?;
            return Ok(Caller {
                user,
                via: Via::Token { id: token.id, name: token.name, session: token.session_id },
            });
        }
        let caller = match cookie_value(&parts.headers, COOKIE_NAME) {
            Some(cookie) => {
                let web_session = hash_token(cookie);
                state.store.web_session(&web_session).await?.map(|(user, expires_ms)| Caller {
                    user,
                    via: Via::Cookie { web_session, expires_ms },
                })
            }
            None => None,
        };
        let caller = match (caller, cookie_value(&parts.headers, GUEST_COOKIE_NAME)) {
            (Some(caller), _) => caller,
            (None, Some(cookie)) => {
                let hash = hash_token(cookie);
                let Some(guest) = state.store.guest_by_cookie(&hash).await? else {
                    // Only an invite ever set this cookie: tell its holder what happened,
                    // rather than to sign in (a guest has nothing to sign in with).
                    return Err(AppError::access_ended(state.store.guest_end(&hash).await?));
                };
                Caller {
                    user: User { id: guest.id.clone(), name: guest.name, is_admin: false },
                    via: Via::Guest {
                        id: guest.id,
                        invite: guest.invite_id,
                        session: guest.session_id,
                        role: guest.role,
                    },
                }
            }
            (None, None) => return Err(AppError::unauthorized()),
        };
        // A cookie rides along on cross-site requests; a mutation must prove it is same-site
        // with something a plain form cannot send: a JSON body or our header.
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        let json =
            parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(
                |v| {
                    v.split(';')
                        .next()
                        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
                },
            );
        if !safe && !json && !parts.headers.contains_key(CSRF_HEADER) {
            return Err(AppError::forbidden(format!(
                "a cookie-authenticated {} needs a JSON body or the {CSRF_HEADER} header",
                parts.method
            )));
        }
        Ok(caller)
    }
}

/// The user signed in with the cookie of these headers, if any (for pages, which show a
/// sign-in hint instead of a 401).
pub async fn cookie_user(state: &AppState, headers: &HeaderMap) -> Result<Option<User>> {
    match cookie_value(headers, COOKIE_NAME) {
        Some(cookie) => {
            Ok(state.store.web_session(&hash_token(cookie)).await?.map(|(user, _)| user))
        }
        None => Ok(None),
    }
}

/// The sign-in id (its cookie's hash) of these headers' sign-in cookie, if any.
pub fn cookie_web_session(headers: &HeaderMap) -> Option<String> {
    cookie_value(headers, COOKIE_NAME).map(hash_token)
}

/// The live guest of these headers' guest cookie, if any.
pub async fn cookie_guest(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<crate::store::GuestRecord>> {
    match cookie_value(headers, GUEST_COOKIE_NAME) {
        Some(cookie) => state.store.guest_by_cookie(&hash_token(cookie)).await,
        None => Ok(None),
    }
}

/// Refuses requests whose `Host` is not one of ours (DNS rebinding): the listen address,
/// the public origin's host, `localhost`, `127.0.0.1`, `::1`. Ports are not compared.
pub async fn check_host(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| request.uri().host())
        .map(host_without_port);
    match host {
        Some(host) if is_our_host(&state, &host) => next.run(request).await,
        _ => AppError::new(StatusCode::MISDIRECTED_REQUEST, "this host name is not served here")
            .into_response(),
    }
}

fn host_without_port(host: &str) -> String {
    let host = host.trim().to_ascii_lowercase();
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default().to_owned();
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name.to_owned(),
        _ => host,
    }
}

fn is_our_host(state: &AppState, host: &str) -> bool {
    if host == "localhost" || host == state.config.public_origin.host {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback() || ip == state.config.listen.ip(),
        Err(_) => false,
    }
}

/// True when a websocket's `Origin` is the public origin (checked on every upgrade).
pub fn origin_allowed(headers: &HeaderMap, state: &AppState) -> bool {
    headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()).is_some_and(|origin| {
        origin.eq_ignore_ascii_case(&state.config.public_origin.to_origin_string())
    })
}

#[derive(Deserialize)]
pub(crate) struct LoginQuery {
    token: Option<String>,
}

/// `GET /login?token=...`: trades a single-use link for the sign-in cookie.
pub(crate) async fn login(
    State(state): State<AppState>,
    Query(query): Query<LoginQuery>,
) -> Result<Response> {
    let Some(token) = query.token.filter(|t| !t.is_empty()) else {
        return Ok(login_failed("This page needs the login link printed by `flint serve`."));
    };
    let Some(user_id) = state.store.consume_login_token(&hash_token(&token)).await? else {
        return Ok(login_failed(
            "This login link was already used or has expired. Run `flint login-url` for a new one.",
        ));
    };
    let cookie = random_hex();
    state
        .store
        .create_web_session(&hash_token(&cookie), &user_id, now_ms() + WEB_SESSION_TTL_MS)
        .await?;
    state.store.audit(Some(&user_id), None, "login", &serde_json::json!({})).await?;
    let secure = if state.config.public_origin.is_https() { "; Secure" } else { "" };
    let set_cookie = format!(
        "{COOKIE_NAME}={cookie}; HttpOnly; SameSite=Lax; Path=/; Max-Age={}{secure}",
        WEB_SESSION_TTL_MS / 1000
    );
    let mut response = Redirect::to("/").into_response();
    let value = HeaderValue::from_str(&set_cookie).map_err(AppError::internal)?;
    response.headers_mut().insert(header::SET_COOKIE, value);
    Ok(response)
}

fn login_failed(message: &str) -> Response {
    let page = format!(
        "<!doctype html><meta charset=utf-8><title>Flint: sign-in failed</title>\
         <body style=\"font-family:sans-serif;background:#111;color:#ddd;padding:3em\">\
         <h1>Sign-in failed</h1><p>{message}</p></body>"
    );
    (StatusCode::UNAUTHORIZED, Html(page)).into_response()
}

/// `POST /api/logout`: ends the cookie session.
#[utoipa::path(post, path = "/api/logout", tag = "auth", responses((status = 204), (status = 401, body = ErrorBody)))]
pub(crate) async fn logout(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Response> {
    if let (Via::Cookie { .. }, Some(cookie)) = (&caller.via, cookie_value(&headers, COOKIE_NAME)) {
        let web_session = hash_token(cookie);
        state.store.delete_web_session(&web_session).await?;
        // What was opened with it closes now.
        state.revocations.revoke(&crate::activity::Revocations::web_key(&web_session));
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("flint_session=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_sign_in_ends_for_its_sockets_when_it_expires_or_is_signed_out() {
        let soon = tokio::time::Instant::now() + std::time::Duration::from_millis(20);
        let expiring = CredentialEnd { signal: None, expires: Some(soon), revoked: "" };
        let ended = tokio::time::timeout(std::time::Duration::from_secs(5), expiring.ended());
        assert_eq!(ended.await.ok(), Some("your sign-in expired"));

        let signal = std::sync::Arc::new(tokio_util::sync::CancellationToken::new());
        let far = tokio::time::Instant::now() + std::time::Duration::from_secs(3600);
        let signed_out = CredentialEnd {
            signal: Some(signal.clone()),
            expires: Some(far),
            revoked: "you signed out",
        };
        signal.cancel();
        assert_eq!(signed_out.ended().await, "you signed out");

        let never = CredentialEnd { signal: None, expires: None, revoked: "" };
        let waited = tokio::time::timeout(std::time::Duration::from_millis(50), never.ended());
        assert!(waited.await.is_err(), "a credential that cannot end ended");
    }

    #[test]
    fn host_ports_and_brackets_are_stripped() {
        assert_eq!(host_without_port("127.0.0.1:8080"), "127.0.0.1");
        assert_eq!(host_without_port("LocalHost"), "localhost");
        assert_eq!(host_without_port("[::1]:80"), "::1");
        assert_eq!(host_without_port("evil.example:8080"), "evil.example");
    }

    #[test]
    fn ids_are_lowercase_and_tokens_hash_stably() {
        let id = random_id();
        assert_eq!(id.len(), 26);
        assert!(id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        assert_ne!(random_id(), id);
        assert_eq!(hash_token("abc"), hash_token("abc"));
        assert_eq!(hash_token("abc").len(), 64);
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("a=1; flint_session=xyz; b=2"));
        assert_eq!(cookie_value(&headers, COOKIE_NAME), Some("xyz"));
        assert_eq!(cookie_value(&headers, "missing"), None);
    }
}
