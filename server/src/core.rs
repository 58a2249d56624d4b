//! The domain core's one seam: every transport (REST, websockets, MCP, the CLI) translates a
//! request into an [`Action`] and hands it to [`perform`] with the [`Caller`].
//!
//! Each variant says who may perform it; `perform` enforces that, so no transport can forget.

use serde::Serialize;

use crate::app::AppState;
use crate::auth::{API_TOKEN_PREFIX, Caller, hash_token, random_hex, random_id};
use crate::error::{AppError, Result};
use crate::store::{ApiToken, now_ms};

/// Everything the control plane can be asked to do.
#[derive(Clone, Debug)]
pub enum Action {
    /// Describe the caller. Anyone authenticated.
    WhoAmI,
    /// Make a bearer token, user-wide or scoped to one session. Not with a session-scoped
    /// token (a scoped token must not mint a wider one).
    CreateToken {
        /// What it is for.
        name: String,
        /// Confine it to this session.
        session_id: Option<String>,
    },
    /// List the caller's tokens. Not with a session-scoped token.
    ListTokens,
    /// Revoke one of the caller's tokens. Not with a session-scoped token.
    RevokeToken {
        /// The token's id.
        id: String,
    },
}

/// What an action produced.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Outcome {
    /// `WhoAmI`
    Me(Me),
    /// `CreateToken`: the only time the secret is shown.
    NewToken(NewToken),
    /// `ListTokens`
    Tokens(Vec<ApiToken>),
    /// Done, nothing to say.
    Done,
}

/// The caller, as `WhoAmI` describes it.
#[derive(Debug, Serialize)]
pub struct Me {
    /// User id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Admin?
    pub is_admin: bool,
    /// `cookie` or `token`.
    pub via: &'static str,
    /// The session a scoped token is confined to.
    pub session_scope: Option<String>,
}

/// A freshly made token.
#[derive(Debug, Serialize)]
pub struct NewToken {
    /// The secret, shown once.
    pub token: String,
    /// Its record.
    #[serde(flatten)]
    pub record: ApiToken,
}

/// Longest token name accepted.
const TOKEN_NAME_MAX: usize = 100;

/// Performs `action` for `caller`.
pub async fn perform(state: &AppState, caller: &Caller, action: Action) -> Result<Outcome> {
    match action {
        Action::WhoAmI => Ok(Outcome::Me(Me {
            id: caller.user.id.clone(),
            name: caller.user.name.clone(),
            is_admin: caller.user.is_admin,
            via: match caller.via {
                crate::auth::Via::Cookie => "cookie",
                crate::auth::Via::Token { .. } => "token",
            },
            session_scope: caller.session_scope().map(str::to_owned),
        })),
        Action::CreateToken { name, session_id } => {
            refuse_scoped(caller)?;
            let name = name.trim().to_owned();
            if name.is_empty() || name.len() > TOKEN_NAME_MAX {
                return Err(AppError::bad_request(format!(
                    "name must be 1 to {TOKEN_NAME_MAX} characters"
                )));
            }
            let token = format!("{API_TOKEN_PREFIX}{}", random_hex());
            let record = ApiToken {
                id: random_id(),
                name,
                session_id,
                created_ms: now_ms(),
                last_used_ms: None,
            };
            state
                .store
                .create_api_token(&caller.user.id, &hash_token(&token), &record)
                .await?;
            let detail = serde_json::json!({ "token_id": record.id, "name": record.name });
            state
                .store
                .audit(
                    Some(&caller.user.id),
                    record.session_id.as_deref(),
                    "token.create",
                    &detail,
                )
                .await?;
            Ok(Outcome::NewToken(NewToken { token, record }))
        }
        Action::ListTokens => {
            refuse_scoped(caller)?;
            Ok(Outcome::Tokens(
                state.store.api_tokens(&caller.user.id).await?,
            ))
        }
        Action::RevokeToken { id } => {
            refuse_scoped(caller)?;
            if !state.store.delete_api_token(&caller.user.id, &id).await? {
                return Err(AppError::not_found(format!("no token {id}")));
            }
            state
                .store
                .audit(
                    Some(&caller.user.id),
                    None,
                    "token.revoke",
                    &serde_json::json!({ "token_id": id }),
                )
                .await?;
            Ok(Outcome::Done)
        }
    }
}

fn refuse_scoped(caller: &Caller) -> Result<()> {
    match caller.session_scope() {
        Some(session) => Err(AppError::forbidden(format!(
            "this token is scoped to session {session}"
        ))),
        None => Ok(()),
    }
}
