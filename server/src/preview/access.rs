//! Who may open a preview: single-use tickets and host-only cookies handed out for preview
//! hosts, and what the proxy read from the store lately (owner, state, public ports,
//! verified tokens), kept briefly because every proxied request needs it.
//!
//! **Bounded.** A cookie is signed, not stored (HMAC-SHA256 with a key made at start: after
//! a restart a browser is bounced through the app once more): however many a share link's
//! visitors trade for, the server holds nothing for them. Tickets are single-use, so they
//! are held: at most [`TICKETS_MAX`], oldest first out, expired ones dropped from the front
//! of their queue (never a scan of all under the lock).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use hmac::Mac as _;
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
pub struct Previews {
    tickets: Mutex<Tickets>,
    /// Signs cookies (made at start, never stored).
    key: [u8; 32],
    sessions: Mutex<HashMap<String, (Instant, SessionFacts)>>,
    public: Mutex<HashMap<(String, u16), (Instant, bool)>>,
    tokens: Mutex<HashMap<String, (Instant, TokenFacts)>>,
}

/// Tickets not used yet, at most [`TICKETS_MAX`]: by hash, and in the order they were made
/// (which is the order they expire in).
#[derive(Default)]
struct Tickets {
    by_hash: HashMap<String, Grant>,
    order: VecDeque<(Instant, String)>,
}

/// Tickets waiting to be used, at most: each is one `/preview/open` by a signed-in person or
/// a guest, used within seconds; past this the oldest go.
pub const TICKETS_MAX: usize = 10_000;

impl Default for Previews {
    fn default() -> Previews {
        let mut key = [0u8; 32];
        // The OS random source failing is not recoverable; a zero key must never sign.
        if let Err(e) = getrandom::fill(&mut key) {
            panic!("the OS random source failed: {e}");
        }
        Previews {
            tickets: Mutex::default(),
            key,
            sessions: Mutex::default(),
            public: Mutex::default(),
            tokens: Mutex::default(),
        }
    }
}

type Signer = hmac::Hmac<sha2::Sha256>;

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
        let hash = hash_token(&ticket);
        let grant = Grant { holder, target: target.clone(), expires, ends };
        let mut tickets = lock(&self.tickets);
        let now = Instant::now();
        while let Some((at, first)) = tickets.order.front().cloned()
            && (at <= now || tickets.order.len() >= TICKETS_MAX)
        {
            tickets.order.pop_front();
            tickets.by_hash.remove(&first);
        }
        tickets.order.push_back((expires, hash.clone()));
        tickets.by_hash.insert(hash, grant);
        ticket
    }

    /// Uses a ticket up: a cookie value for its host, if it was valid for `target`.
    pub(super) fn redeem(&self, ticket: &str, target: &Target) -> Option<String> {
        // Its place in the queue goes when it comes to the front.
        let grant = lock(&self.tickets).by_hash.remove(&hash_token(ticket))?;
        if grant.expires < Instant::now() || grant.target != *target {
            return None;
        }
        Some(self.cookie_for(grant.holder, target, grant.ends))
    }

    /// A signed cookie for `holder` on `target`: `v1.{kind}.{id}.{session}.{port}.{expires
    /// ms}.{ends or -}.{HMAC, hex}`. Ids and signal names hold no dots.
    pub(super) fn cookie_for(
        &self,
        holder: Holder,
        target: &Target,
        ends: Option<String>,
    ) -> String {
        let (kind, id) = match &holder {
            Holder::User(id) => ("u", id),
            Holder::Guest(id) => ("g", id),
            Holder::Share(id) => ("s", id),
        };
        let expires = crate::store::now_ms() + COOKIE_TTL.as_millis() as i64;
        let ends = ends.unwrap_or_else(|| "-".to_owned());
        let payload = format!("v1.{kind}.{id}.{}.{}.{expires}.{ends}", target.session, target.port);
        format!("{payload}.{}", self.sign(&payload))
    }

    fn sign(&self, payload: &str) -> String {
        let mut mac = Signer::new_from_slice(&self.key).unwrap_or_else(|_| unreachable_key());
        mac.update(payload.as_bytes());
        mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Who a cookie is for on `target`, and the signal its credential ends with: `None`
    /// unless its signature holds, it is for `target` and it has not expired.
    pub(super) fn cookie_holder(
        &self,
        cookie: &str,
        target: &Target,
    ) -> Option<(Holder, Option<String>)> {
        let (payload, signature) = cookie.rsplit_once('.')?;
        let signature = decode_hex(signature)?;
        let mut mac = Signer::new_from_slice(&self.key).ok()?;
        mac.update(payload.as_bytes());
        mac.verify_slice(&signature).ok()?;
        let fields: Vec<&str> = payload.split('.').collect();
        let [version, kind, id, session, port, expires, ends] = fields[..] else { return None };
        let expires: i64 = expires.parse().ok()?;
        if version != "v1"
            || session != target.session
            || port.parse::<u16>().ok()? != target.port
            || expires <= crate::store::now_ms()
        {
            return None;
        }
        let holder = match kind {
            "u" => Holder::User(id.to_owned()),
            "g" => Holder::Guest(id.to_owned()),
            "s" => Holder::Share(id.to_owned()),
            _ => return None,
        };
        Some((holder, (ends != "-").then(|| ends.to_owned())))
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

    /// Tickets held (waiting to be used).
    pub fn held_tickets(&self) -> usize {
        lock(&self.tickets).by_hash.len()
    }

    /// Forgets every ticket of a session (it was deleted; its cookies open nothing, as the
    /// session is gone).
    pub fn forget_session(&self, session: &str) {
        lock(&self.tickets).by_hash.retain(|_, g| g.target.session != session);
    }
}

/// HMAC takes a key of any length: a 32-byte one is never refused.
fn unreachable_key() -> ! {
    panic!("HMAC-SHA256 refused a 32-byte key")
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok()).collect()
}
