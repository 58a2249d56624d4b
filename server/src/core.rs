//! The domain core's one seam: every transport (REST, websockets, MCP, the CLI) translates a
//! request into an [`Action`] and hands it to [`perform`] with the [`Caller`].
//!
//! Each variant says who may perform it; `perform` enforces that, so no transport can forget.

use proto::api::{CreateSession, ExecCommand, ExecResult, Me, NewToken, SessionInfo};
use proto::exec::{ExecDown, ExecRequest};
use proto::files::{MoveRequest, RemoveRequest};
use proto::terminal::{CreateTerminal, TerminalId};

use crate::app::AppState;
use crate::auth::{API_TOKEN_PREFIX, Caller, hash_token, random_hex, random_id};
use crate::error::{AppError, Result};
use crate::store::{ApiToken, now_ms};

mod outcome;
pub use outcome::Outcome;

/// Everything the control plane can be asked to do.
#[derive(Clone, Debug)]
pub enum Action {
    /// Describe the caller. Anyone authenticated.
    WhoAmI,
    /// How this server runs sessions (driver, warnings, pool, capacity). Anyone
    /// authenticated.
    ServerInfo,
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
    /// The images sessions can start from. Not with a session-scoped token.
    ListImages,
    /// Start a session. Not with a session-scoped token.
    CreateSession(CreateSession),
    /// The caller's sessions (a scoped token sees its one session).
    ListSessions,
    /// One session. Its owner, or a token scoped to it.
    GetSession {
        /// Session id.
        id: String,
    },
    /// Give a session more time. Its owner, or a token scoped to it.
    ExtendSession {
        /// Session id.
        id: String,
        /// Seconds from now.
        lifetime_s: u64,
    },
    /// Stop a session and delete it with its `/workspace`. Its owner (not a scoped token).
    DeleteSession {
        /// Session id.
        id: String,
    },
    /// Open a new shell in a running session. Its owner, or a token scoped to it.
    CreateTerminal {
        /// Session id.
        id: String,
        /// What to run.
        request: CreateTerminal,
    },
    /// The shells of a running session. Its owner, or a token scoped to it.
    ListTerminals {
        /// Session id.
        id: String,
    },
    /// Kill a shell. Its owner, or a token scoped to it.
    KillTerminal {
        /// Session id.
        id: String,
        /// Terminal id.
        terminal: TerminalId,
    },
    /// Run a command in a running session and collect its output. Its owner, or a token
    /// scoped to it.
    Exec {
        /// Session id.
        id: String,
        /// What to run.
        command: ExecCommand,
    },
    /// List a directory of a running session. Its owner, or a token scoped to it.
    ListFiles {
        /// Session id.
        id: String,
        /// Absolute path.
        path: String,
        /// Levels to descend.
        depth: Option<u32>,
    },
    /// What a path of a running session is (size, modification time). Its owner, or a
    /// token scoped to it.
    StatPath {
        /// Session id.
        id: String,
        /// Absolute path.
        path: String,
    },
    /// Create a directory (and parents). Its owner, or a token scoped to it.
    MakeDir {
        /// Session id.
        id: String,
        /// Absolute path.
        path: String,
    },
    /// Move or rename a path. Its owner, or a token scoped to it.
    MovePath {
        /// Session id.
        id: String,
        /// What and where.
        request: MoveRequest,
    },
    /// Remove a path. Its owner, or a token scoped to it.
    RemovePath {
        /// Session id.
        id: String,
        /// What, and whether recursively.
        request: RemoveRequest,
    },
    /// Listening ports of a running session. Its owner, or a token scoped to it.
    ListPorts {
        /// Session id.
        id: String,
    },
    /// A running session's ports as previews. Its owner, or a token scoped to it.
    ListPreviews {
        /// Session id.
        id: String,
    },
    /// Makes a port's preview public or private. Its owner, or a token scoped to it.
    SetPreview {
        /// Session id.
        id: String,
        /// The port.
        port: u16,
        /// Public?
        public: bool,
    },
    /// Makes a share link to a port. Its owner, or a token scoped to it.
    CreateShare {
        /// Session id.
        id: String,
        /// The port.
        port: u16,
        /// Seconds until it expires.
        expires_s: Option<u64>,
    },
    /// Revokes a share link. Its owner, or a token scoped to it.
    RevokeShare {
        /// Session id.
        id: String,
        /// The port.
        port: u16,
        /// The link's id.
        share: String,
    },
    /// A session's audit events (what people, agents and the server did in it). Its owner,
    /// or a token scoped to it.
    SessionEvents {
        /// Session id.
        id: String,
        /// At most this many (the newest).
        limit: Option<i64>,
        /// Only entries before this one (a cursor: the first id of the last page).
        before: Option<i64>,
    },
    /// The agent of a running session, to relay a stream (terminal websocket, file bodies,
    /// the workspace tarball): streams do not fit an `Outcome`. Its owner, or a token scoped
    /// to it.
    ConnectAgent {
        /// Session id.
        id: String,
        /// What the stream does: reading (a viewer may) or changing things.
        need: Need,
    },
    /// `/workspace` as a tarball: from the agent while the session runs, from its volume
    /// once it stopped. Its owner, or a token scoped to it.
    ExportWorkspace {
        /// Session id.
        id: String,
    },
}

/// A REST exec without a timeout of its own is killed after a minute.
const DEFAULT_EXEC_TIMEOUT_MS: u64 = 60_000;

/// Longest token name accepted.
const TOKEN_NAME_MAX: usize = 100;

/// Tokens one person may hold at once: each is a row and a credential to watch; a script
/// that mints in a loop is stopped here (revoking one makes room).
pub const TOKENS_PER_USER_MAX: usize = 100;

/// Performs `action` for `caller`.
pub async fn perform(state: &AppState, caller: &Caller, action: Action) -> Result<Outcome> {
    match action {
        Action::ServerInfo => Ok(Outcome::Server(state.sessions.server_info().await)),
        Action::WhoAmI => Ok(Outcome::Me(Me {
            id: caller.user.id.clone(),
            name: caller.user.name.clone(),
            is_admin: caller.user.is_admin,
            via: match caller.via {
                crate::auth::Via::Cookie { .. } => "cookie".to_owned(),
                crate::auth::Via::Token { .. } => "token".to_owned(),
                crate::auth::Via::Guest { .. } => "guest".to_owned(),
            },
            session_scope: caller.session_scope().map(str::to_owned),
            role: match &caller.via {
                crate::auth::Via::Guest { role, .. } => Some(*role),
                _ => None,
            },
        })),
        Action::CreateToken { name, session_id } => {
            refuse_scoped(caller)?;
            let name = name.trim().to_owned();
            if name.is_empty() || name.len() > TOKEN_NAME_MAX {
                return Err(AppError::bad_request(format!(
                    "name must be 1 to {TOKEN_NAME_MAX} characters"
                )));
            }
            match &session_id {
                // Only the owner confines a token to a session (else 404, as for any).
                Some(id) => {
                    authorize(state, caller, id, Need::Own).await?;
                }
                // A leaked token must not breed: user-wide ones come from a sign-in only.
                None if matches!(caller.via, crate::auth::Via::Token { .. }) => {
                    return Err(AppError::forbidden(
                        "a token cannot make a user-wide token: sign in to the web app, or run \
                         `flint token create` on the server (a token may make session tokens)",
                    ));
                }
                None => {}
            }
            if state.store.api_tokens(&caller.user.id).await?.len() >= TOKENS_PER_USER_MAX {
                return Err(AppError::new(
                    http::StatusCode::CONFLICT,
                    format!(
                        "you hold {TOKENS_PER_USER_MAX} tokens, the most one person may: revoke \
                     one first"
                    ),
                ));
            }
            let token = format!("{API_TOKEN_PREFIX}{}", random_hex());
            let record = ApiToken {
                id: random_id(),
                name,
                session_id,
                created_ms: now_ms(),
                last_used_ms: None,
            };
            state.store.create_api_token(&caller.user.id, &hash_token(&token), &record).await?;
            let detail = serde_json::json!({ "token_id": record.id, "name": record.name });
            state
                .sessions
                .audit_by(caller, record.session_id.as_deref(), "token.create", &detail)
                .await?;
            Ok(Outcome::NewToken(NewToken { token, record }))
        }
        Action::ListTokens => {
            refuse_scoped(caller)?;
            Ok(Outcome::Tokens(state.store.api_tokens(&caller.user.id).await?))
        }
        Action::RevokeToken { id } => {
            refuse_scoped(caller)?;
            let Some(token) = state.store.delete_api_token(&caller.user.id, &id).await? else {
                return Err(AppError::not_found(format!("no token {id}")));
            };
            // Deleted first: a call racing the signal fails its next authentication anyway.
            state.revocations.revoke(&id);
            let detail = serde_json::json!({ "token_id": id, "name": token.name });
            state
                .sessions
                .audit_by(caller, token.session_id.as_deref(), "token.revoke", &detail)
                .await?;
            Ok(Outcome::Done)
        }
        Action::ListImages => {
            refuse_scoped(caller)?;
            Ok(Outcome::Images(state.sessions.images().await?))
        }
        Action::CreateSession(request) => {
            refuse_scoped(caller)?;
            Ok(Outcome::Session(state.sessions.create(&caller.user, request).await?))
        }
        Action::ListSessions => {
            if let crate::auth::Via::Guest { session, .. } = &caller.via {
                return Ok(Outcome::Sessions(vec![state.sessions.record(session).await?.info]));
            }
            let mut sessions = state.sessions.list(&caller.user).await?;
            if let Some(scope) = caller.session_scope() {
                sessions.retain(|s| s.id == scope);
            }
            Ok(Outcome::Sessions(sessions))
        }
        Action::GetSession { id } => {
            Ok(Outcome::Session(authorize(state, caller, &id, Need::Read).await?))
        }
        Action::ExtendSession { id, lifetime_s } => {
            authorize(state, caller, &id, Need::Own).await?;
            Ok(Outcome::Session(state.sessions.extend(&id, lifetime_s).await?))
        }
        Action::DeleteSession { id } => {
            refuse_scoped(caller)?;
            authorize(state, caller, &id, Need::Own).await?;
            state.sessions.delete(&id).await?;
            let detail = serde_json::json!({ "session_id": id });
            state.store.audit(Some(&caller.user.id), None, "session.delete", &detail).await?;
            Ok(Outcome::Done)
        }
        Action::CreateTerminal { id, request } => {
            authorize(state, caller, &id, Need::Edit).await?;
            let client = state.sessions.client(&id).await?;
            Ok(Outcome::Terminal(client.create_terminal(&request).await.map_err(agent_error)?))
        }
        Action::ListTerminals { id } => {
            authorize(state, caller, &id, Need::Read).await?;
            let client = state.sessions.client(&id).await?;
            Ok(Outcome::Terminals(client.terminals().await.map_err(agent_error)?))
        }
        Action::KillTerminal { id, terminal } => {
            authorize(state, caller, &id, Need::Edit).await?;
            let client = state.sessions.client(&id).await?;
            client.kill_terminal(&terminal).await.map_err(agent_error)?;
            Ok(Outcome::Done)
        }
        Action::Exec { id, command } => {
            authorize(state, caller, &id, Need::Edit).await?;
            let client = state.sessions.client(&id).await?;
            let detail = serde_json::json!({ "argv": crate::activity::redact_argv(&command.argv) });
            state.sessions.audit_by(caller, Some(&id), "exec", &detail).await?;
            let request = ExecRequest {
                argv: command.argv,
                cwd: Some(command.cwd.unwrap_or_else(|| "/workspace".to_owned())),
                env: command.env,
                timeout_ms: Some(command.timeout_ms.unwrap_or(DEFAULT_EXEC_TIMEOUT_MS)),
                collect: true,
                stdin: false,
            };
            match client.exec_collect(request).await.map_err(agent_error)? {
                ExecDown::Finished { stdout, stderr, truncated, status } => {
                    Ok(Outcome::ExecResult(ExecResult {
                        stdout: String::from_utf8_lossy(&stdout).into_owned(),
                        stderr: String::from_utf8_lossy(&stderr).into_owned(),
                        exit_code: status.code,
                        signal: status.signal,
                        timed_out: status.timed_out,
                        truncated,
                    }))
                }
                _ => Err(AppError::new(
                    http::StatusCode::BAD_GATEWAY,
                    "the agent gave no exec result",
                )),
            }
        }
        Action::ListFiles { id, path, depth } => {
            authorize(state, caller, &id, Need::Read).await?;
            let client = state.sessions.client(&id).await?;
            Ok(Outcome::Files(client.list(&path, depth).await.map_err(agent_error)?))
        }
        Action::StatPath { id, path } => {
            authorize(state, caller, &id, Need::Read).await?;
            let client = state.sessions.client(&id).await?;
            Ok(Outcome::Stat(client.stat(&path).await.map_err(agent_error)?))
        }
        Action::MakeDir { id, path } => {
            authorize(state, caller, &id, Need::Edit).await?;
            let client = state.sessions.client(&id).await?;
            client.mkdir(&path).await.map_err(agent_error)?;
            Ok(Outcome::Done)
        }
        Action::MovePath { id, request } => {
            authorize(state, caller, &id, Need::Edit).await?;
            let client = state.sessions.client(&id).await?;
            client.rename(&request).await.map_err(agent_error)?;
            Ok(Outcome::Done)
        }
        Action::RemovePath { id, request } => {
            authorize(state, caller, &id, Need::Edit).await?;
            let client = state.sessions.client(&id).await?;
            client.remove(&request).await.map_err(agent_error)?;
            Ok(Outcome::Done)
        }
        Action::ListPorts { id } => {
            authorize(state, caller, &id, Need::Read).await?;
            let client = state.sessions.client(&id).await?;
            Ok(Outcome::Ports(client.ports().await.map_err(agent_error)?))
        }
        Action::ListPreviews { id } => {
            authorize(state, caller, &id, Need::Read).await?;
            Ok(Outcome::Previews(state.sessions.previews(&id).await?))
        }
        Action::SetPreview { id, port, public } => {
            authorize(state, caller, &id, Need::Edit).await?;
            valid_port(port)?;
            state.store.set_public(&id, port, public).await?;
            state.previews.changed(&id);
            let detail = serde_json::json!({ "port": port, "public": public });
            state.sessions.audit_by(caller, Some(&id), "preview.visibility", &detail).await?;
            state.sessions.publish_ports(&id).await;
            let previews = state.sessions.previews(&id).await.unwrap_or_default();
            let preview = previews.into_iter().find(|p| p.port == port).unwrap_or_else(|| {
                let target = crate::preview::Target { port, session: id.clone() };
                proto::api::PreviewPort {
                    port,
                    process: None,
                    url: crate::preview::url(state, &target, "/"),
                    open_path: format!("/preview/open?session={id}&port={port}"),
                    public,
                    shares: Vec::new(),
                }
            });
            Ok(Outcome::Preview(preview))
        }
        Action::CreateShare { id, port, expires_s } => {
            authorize(state, caller, &id, Need::Edit).await?;
            valid_port(port)?;
            let expires_s = expires_s.unwrap_or(SHARE_DEFAULT_S);
            if expires_s == 0 || expires_s > SHARE_MAX_S {
                return Err(AppError::bad_request(format!("expires_s must be 1..={SHARE_MAX_S}")));
            }
            let secret = crate::auth::random_hex();
            let share = crate::store::Share {
                id: crate::auth::random_id(),
                session_id: id.clone(),
                port,
                expires_ms: crate::store::now_ms() + (expires_s as i64) * 1000,
            };
            let creator = match &caller.via {
                crate::auth::Via::Guest { id, .. } => Some(id.as_str()),
                _ => None,
            };
            state.store.insert_share(&share, &crate::auth::hash_token(&secret), creator).await?;
            let detail =
                serde_json::json!({ "port": port, "share": share.id, "expires_s": expires_s });
            state.sessions.audit_by(caller, Some(&id), "preview.share", &detail).await?;
            state.sessions.publish_ports(&id).await;
            let target = crate::preview::Target { port, session: id };
            let path = format!("/?{}={secret}", crate::preview::SHARE_PARAM);
            Ok(Outcome::Share(proto::api::ShareLink {
                id: share.id,
                url: Some(crate::preview::url(state, &target, &path)),
                expires_ms: share.expires_ms,
            }))
        }
        Action::RevokeShare { id, port, share } => {
            authorize(state, caller, &id, Need::Edit).await?;
            if !state.store.delete_share(&id, port, &share).await? {
                return Err(AppError::not_found(format!("no share link {share} on port {port}")));
            }
            // What it opened (an upgraded connection) closes now.
            state.revocations.revoke(&crate::activity::Revocations::share_key(&share));
            let detail = serde_json::json!({ "port": port, "share": share });
            state.sessions.audit_by(caller, Some(&id), "preview.unshare", &detail).await?;
            state.sessions.publish_ports(&id).await;
            Ok(Outcome::Done)
        }
        Action::SessionEvents { id, limit, before } => {
            authorize(state, caller, &id, Need::Read).await?;
            Ok(Outcome::Events(state.store.session_events(&id, limit, before).await?))
        }
        Action::ConnectAgent { id, need } => {
            authorize(state, caller, &id, need).await?;
            Ok(Outcome::Agent(state.sessions.client(&id).await?))
        }
        Action::ExportWorkspace { id } => {
            authorize(state, caller, &id, Need::Read).await?;
            Ok(Outcome::Tarball(state.sessions.workspace_tar(&id).await?))
        }
    }
}

/// A share link's default lifetime: a day.
pub const SHARE_DEFAULT_S: u64 = 24 * 3600;

/// And its longest: 30 days.
pub const SHARE_MAX_S: u64 = 30 * 24 * 3600;

fn valid_port(port: u16) -> Result<()> {
    if port == 0 {
        return Err(AppError::bad_request("port must be 1..=65535"));
    }
    Ok(())
}

/// What an action needs of the caller's role in its session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Seeing it: terminals, files, ports, activity (a viewer may).
    Read,
    /// Changing it: typing, writing files, ports and shares, shells (an editor may).
    Edit,
    /// Its lifetime and who may come in (the owner only).
    Own,
}

/// The session, if the caller may do what `need` says in it: its owner (or a token of
/// theirs that may touch it) anything, an editor guest reading and changing, a viewer guest
/// reading. Anyone else gets the same 404 as for a session that does not exist; a guest
/// asking for more than their role gets a 403 that says so.
pub async fn authorize(
    state: &AppState,
    caller: &Caller,
    id: &str,
    need: Need,
) -> Result<SessionInfo> {
    let record = state.sessions.record(id).await?;
    let Some(role) = caller.role_in(id, &record.owner_id) else {
        return Err(AppError::not_found(format!("no session {id}")));
    };
    match need {
        Need::Read => {}
        Need::Edit if role.may_edit() => {}
        Need::Edit => {
            return Err(AppError::forbidden(format!(
                "{} is a viewer of this session: viewers cannot type, write files or change ports",
                caller.user.name
            )));
        }
        Need::Own if role == proto::people::Role::Owner => {}
        Need::Own => {
            return Err(AppError::forbidden("only the session's owner may do this"));
        }
    }
    Ok(record.info)
}

/// An agent's answer, passed on: its own errors keep their status, transport failures are
/// a 502.
pub fn agent_error(err: agent_client::Error) -> AppError {
    match err {
        agent_client::Error::Api { code, message } => AppError::new(
            http::StatusCode::from_u16(code.status()).unwrap_or(http::StatusCode::BAD_GATEWAY),
            message,
        ),
        agent_client::Error::Transport(message) => AppError::new(
            http::StatusCode::BAD_GATEWAY,
            format!("the session's agent did not answer: {message}"),
        ),
    }
}

fn refuse_scoped(caller: &Caller) -> Result<()> {
    match (&caller.via, caller.session_scope()) {
        (crate::auth::Via::Guest { .. }, _) => {
            Err(AppError::forbidden("a guest of a session cannot do this"))
        }
        (_, Some(session)) => {
            Err(AppError::forbidden(format!("this token is scoped to session {session}")))
        }
        (_, None) => Ok(()),
    }
}
