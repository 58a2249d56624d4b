//! Who may open a preview: single-use tickets and host-only cookies handed out for preview
//! hosts, and what the proxy read from the store lately (owner, state, public ports,
//! verified tokens), kept briefly because every proxied request needs it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{COOKIE_TTL, TICKET_TTL, Target};
use crate::app::AppState;
use crate::auth::hash_token;

/// Who a ticket or cookie lets in: a user, a guest of the session, or the holder of a share
/// link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Holder {
    /// A user, by id.
    User(String),
    /// A guest (an invite's viewer or editor), by id: checked on every request.
    Guest(String),
    /// A share link, by id.
    Share(String),
}

#[derive(Clone, Debug)]
struct Grant {
    holder: Holder,
    target: Target,
    expires: Instant,
    /// The revocation signal of the credential it was minted from (`Revocations`): a
    /// sign-in's, a guest's or a share link's. What it opened (an upgraded connection)
    /// ends with it.
    ends: Option<String>,
}

/// How long the proxy trusts what it read from the store about a session (owner, state) or a
/// port (public or not); changes made through Flint clear it at once ([`Previews::changed`]).
const CACHE_TTL: Duration = Duration::from_secs(1);

/// How long a token checked for `X-Flint-Token` is trusted without the store; a revoked one
/// is refused at once all the same (its revocation signal is checked on every request).
const TOKEN_TTL: Duration = Duration::from_secs(30);

/// A session as the proxy needs it.
#[derive(Clone, Debug)]
pub(super) struct SessionFacts {
    pub(super) owner_id: String,
    pub(super) name: String,
    pub(super) state: proto::api::SessionState,
}

/// A verified token.
#[derive(Clone)]
pub(super) struct TokenFacts {
    pub(super) user_id: String,
    pub(super) scope: Option<String>,
    pub(super) revoked: std::sync::Arc<tokio_util::sync::CancellationToken>,
}

/// Tickets and cookies handed out for preview hosts (in memory: after a restart a browser is
/// bounced through the app once more, which it does by itself), and what the proxy read from
/// the store lately (every proxied request needs it; the store is a round trip each).
#[derive(Default)]
pub struct Previews {
    tickets: Mutex<HashMap<String, Grant>>,
    cookies: Mutex<HashMap<String, Grant>>,
    sessions: Mutex<HashMap<String, (Instant, SessionFacts)>>,
    public: Mutex<HashMap<(String, u16), (Instant, bool)>>,
    tokens: Mutex<HashMap<String, (Instant, TokenFacts)>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Previews {
    /// A single-use ticket for `user` on `target`.
    pub fn ticket(&self, user_id: &str, target: &Target) -> String {
        self.ticket_for(Holder::User(user_id.to_owned()), target, None)
    }

    /// A single-use ticket for `holder` on `target`, ending with signal `ends`.
    pub(super) fn ticket_for(
        &self,
        holder: Holder,
        target: &Target,
        ends: Option<String>,
    ) -> String {
        let ticket = crate::auth::random_hex();
        let expires = Instant::now() + TICKET_TTL;
        let grant = Grant { holder, target: target.clone(), expires, ends };
        let mut tickets = lock(&self.tickets);
        tickets.retain(|_, g| g.expires > Instant::now());
        tickets.insert(hash_token(&ticket), grant);
        ticket
    }

    /// Uses a ticket up: a cookie value for its host, if it was valid for `target`.
    pub(super) fn redeem(&self, ticket: &str, target: &Target) -> Option<String> {
        let grant = lock(&self.tickets).remove(&hash_token(ticket))?;
        if grant.expires < Instant::now() || grant.target != *target {
            return None;
        }
        Some(self.cookie_for(grant.holder, target, grant.ends))
    }

    pub(super) fn cookie_for(
        &self,
        holder: Holder,
        target: &Target,
        ends: Option<String>,
    ) -> String {
        let cookie = crate::auth::random_hex();
        let expires = Instant::now() + COOKIE_TTL;
        let grant = Grant { holder, target: target.clone(), expires, ends };
        let mut cookies = lock(&self.cookies);
        cookies.retain(|_, g| g.expires > Instant::now());
        cookies.insert(hash_token(&cookie), grant);
        cookie
    }

    /// Who a cookie is for on `target`, and the signal its credential ends with.
    pub(super) fn cookie_holder(
        &self,
        cookie: &str,
        target: &Target,
    ) -> Option<(Holder, Option<String>)> {
        let cookies = lock(&self.cookies);
        let grant = cookies.get(&hash_token(cookie))?;
        (grant.expires > Instant::now() && grant.target == *target)
            .then(|| (grant.holder.clone(), grant.ends.clone()))
    }

    /// A session's state or a port's visibility changed: read them again.
    pub fn changed(&self, session: &str) {
        lock(&self.sessions).remove(session);
        lock(&self.public).retain(|(s, _), _| s != session);
    }

    pub(super) async fn session(&self, state: &AppState, id: &str) -> Option<SessionFacts> {
        if let Some((at, facts)) = lock(&self.sessions).get(id)
            && at.elapsed() < CACHE_TTL
        {
            return Some(facts.clone());
        }
        let record = state.sessions.record(id).await.ok()?;
        let facts = SessionFacts {
            owner_id: record.owner_id,
            name: record.info.name,
            state: record.info.state,
        };
        lock(&self.sessions).insert(id.to_owned(), (Instant::now(), facts.clone()));
        Some(facts)
    }

    pub(super) async fn is_public(
        &self,
        state: &AppState,
        target: &Target,
    ) -> crate::error::Result<bool> {
        let key = (target.session.clone(), target.port);
        if let Some((at, public)) = lock(&self.public).get(&key)
            && at.elapsed() < CACHE_TTL
        {
            return Ok(*public);
        }
        let public = state.store.is_public(&target.session, target.port).await?;
        lock(&self.public).insert(key, (Instant::now(), public));
        Ok(public)
    }

    pub(super) async fn token(
        &self,
        state: &AppState,
        token: &str,
    ) -> crate::error::Result<Option<TokenFacts>> {
        let hash = hash_token(token);
        if let Some((at, facts)) = lock(&self.tokens).get(&hash)
            && at.elapsed() < TOKEN_TTL
        {
            return Ok((!facts.revoked.is_cancelled()).then(|| facts.clone()));
        }
        let Some((token, user)) = state.store.api_token(&hash).await? else {
            lock(&self.tokens).remove(&hash);
            return Ok(None);
        };
        let facts = TokenFacts {
            user_id: user.id,
            scope: token.session_id,
            revoked: state.revocations.watch(&token.id),
        };
        let mut tokens = lock(&self.tokens);
        tokens.retain(|_, (at, _)| at.elapsed() < TOKEN_TTL);
        tokens.insert(hash, (Instant::now(), facts.clone()));
        Ok(Some(facts))
    }

    /// Forgets every grant of a session (it was deleted).
    pub fn forget_session(&self, session: &str) {
        lock(&self.tickets).retain(|_, g| g.target.session != session);
        lock(&self.cookies).retain(|_, g| g.target.session != session);
    }
}
