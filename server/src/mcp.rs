//! `/api/sessions/{id}/mcp`: the session's tools for an AI agent, over MCP's Streamable HTTP
//! transport (rmcp). The tools themselves are [`agent_client::mcp`]; this module is the
//! control plane's side of them: who may call (a bearer token of the session's owner, user-wide
//! or scoped to the session; `Origin` ours when present), which agent a call reaches, and
//! the audit trail of every call, shown live in the session's activity feed.
//!
//! **Invariant:** revoking a token fires its [`crate::activity::Revocations`] signal, which
//! ends the token's calls in flight and its open response streams; the token being deleted
//! first, its next request is a 401.

use std::sync::Arc;

use agent_client::client::Client;
use agent_client::mcp::{CallHandle, CallInfo, CallOutcome, Host, Tools};
use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequestParts as _, Path, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use futures_util::FutureExt as _;
use futures_util::StreamExt as _;
use futures_util::future::BoxFuture;
use http::header;
use rmcp::RoleServer;
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use crate::activity::redact;
use crate::app::AppState;
use crate::auth::{Caller, Via, origin_allowed};
use crate::error::AppError;
use crate::store::CallRecord;

/// The MCP endpoint's path.
pub const PATH: &str = "/api/sessions/{id}/mcp";

/// What the guard learned about a request, for the tools' host.
#[derive(Clone, Debug)]
struct McpCaller {
    caller: Caller,
    session_id: String,
    token_id: String,
    token_name: String,
    revoked: Arc<CancellationToken>,
}

/// The endpoint, behind its guard.
pub fn router(state: &AppState) -> Router<AppState> {
    let config = StreamableHttpServerConfig::default()
        // `check_host` already guards every listener against DNS rebinding, with the
        // configured public origin; rmcp's own list would only know loopback names.
        .disable_allowed_hosts()
        .with_allowed_origins([state.config.public_origin.to_origin_string()])
        .with_cancellation_token(CancellationToken::new());
    let host: Arc<dyn Host> = Arc::new(ServerHost { state: state.clone() });
    let service = StreamableHttpService::new(
        move || Ok(Tools::new(host.clone(), "flint")),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    Router::new()
        .route_service(PATH, service)
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), guard))
}

/// Authenticates and authorizes every request to the endpoint, and cuts what it answers the
/// moment its token is revoked.
async fn guard(
    State(state): State<AppState>,
    Path(session_id): Path<String>,
    request: Request,
    next: Next,
) -> Response {
    match admit(&state, session_id, request).await {
        Ok((request, revoked)) => {
            let ends_session = request.method() == http::Method::DELETE;
            let response = next.run(request).await;
            let (mut parts, body) = response.into_parts();
            // rmcp answers a client's `DELETE` (end of its MCP session) with 202 Accepted, which
            // the official Python SDK takes as a failure ("Session termination failed", on
            // every close). The session is closed by then: say so.
            if ends_session && parts.status == http::StatusCode::ACCEPTED {
                parts.status = http::StatusCode::NO_CONTENT;
            }
            // The stream holds the signal (`Revocations` forgets signals nobody holds).
            let ended = async move { revoked.cancelled().await };
            let stream = body.into_data_stream().take_until(ended);
            Response::from_parts(parts, Body::from_stream(stream))
        }
        Err(err) => {
            let mut response = err.into_response();
            if response.status() == http::StatusCode::UNAUTHORIZED {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    http::HeaderValue::from_static("Bearer realm=\"flint\""),
                );
            }
            response
        }
    }
}

async fn admit(
    state: &AppState,
    session_id: String,
    request: Request,
) -> Result<(Request, Arc<CancellationToken>), AppError> {
    // The MCP transport spec: a server must validate `Origin` (DNS rebinding from a page).
    if request.headers().contains_key(header::ORIGIN) && !origin_allowed(request.headers(), state) {
        return Err(AppError::forbidden("Origin is not this server's public origin"));
    }
    if !request.headers().contains_key(header::AUTHORIZATION) {
        return Err(AppError::new(
            http::StatusCode::UNAUTHORIZED,
            "MCP needs a bearer token: make one with \"Connect an agent\" in the session, and \
             send it as Authorization: Bearer <token>",
        ));
    }
    let (mut parts, body) = request.into_parts();
    let caller = Caller::from_request_parts(&mut parts, state).await?;
    let Via::Token { id: token_id, name: token_name, .. } = caller.via.clone() else {
        return Err(AppError::unauthorized());
    };
    crate::core::authorize(state, &caller, &session_id, crate::core::Need::Edit).await?;
    // Revoked since it authenticated: a revoked token's signal stays fired.
    let revoked = state.revocations.watch(&token_id);
    if revoked.is_cancelled() {
        return Err(AppError::unauthorized());
    }
    state.sessions.touch(&session_id).await;
    parts.extensions.insert(McpCaller {
        caller,
        session_id,
        token_id,
        token_name,
        revoked: revoked.clone(),
    });
    Ok((Request::from_parts(parts, body), revoked))
}

/// The control plane as the tools' host: the session's agent, the store's audit trail.
struct ServerHost {
    state: AppState,
}

fn mcp_caller(context: &RequestContext<RoleServer>) -> Result<&McpCaller, String> {
    context
        .extensions
        .get::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<McpCaller>())
        .ok_or_else(|| "this request did not come through the MCP endpoint".to_owned())
}

impl Host for ServerHost {
    fn preview<'a>(
        &'a self,
        context: &'a RequestContext<RoleServer>,
        port: u16,
        share: Option<u64>,
    ) -> BoxFuture<'a, Result<agent_client::mcp::Preview, String>> {
        async move {
            let mcp = mcp_caller(context)?;
            let id = mcp.session_id.clone();
            let target = crate::preview::Target { port, session: id.clone() };
            let public = self.state.store.is_public(&id, port).await.map_err(|e| e.message)?;
            let mut preview = agent_client::mcp::Preview {
                url: crate::preview::url(&self.state, &target, "/"),
                public,
                share_url: None,
                share_expires_ms: None,
            };
            if let Some(expires_s) = share {
                let action =
                    crate::core::Action::CreateShare { id, port, expires_s: Some(expires_s) };
                match crate::core::perform(&self.state, &mcp.caller, action).await {
                    Ok(crate::core::Outcome::Share(link)) => {
                        preview.share_url = link.url;
                        preview.share_expires_ms = Some(link.expires_ms);
                    }
                    Ok(_) => return Err("making the share link gave no link".to_owned()),
                    Err(e) => return Err(e.message),
                }
            }
            Ok(preview)
        }
        .boxed()
    }

    fn client<'a>(
        &'a self,
        context: &'a RequestContext<RoleServer>,
    ) -> BoxFuture<'a, Result<Client, String>> {
        async move {
            let mcp = mcp_caller(context)?;
            self.state.sessions.client(&mcp.session_id).await.map_err(|e| e.message)
        }
        .boxed()
    }

    fn begin<'a>(
        &'a self,
        context: &'a RequestContext<RoleServer>,
        call: &'a CallInfo,
    ) -> BoxFuture<'a, Result<CallHandle, String>> {
        async move {
            let mcp = mcp_caller(context)?;
            if mcp.revoked.is_cancelled() {
                return Err("this agent's token was revoked".to_owned());
            }
            let record = CallRecord {
                session_id: mcp.session_id.clone(),
                user_id: Some(mcp.caller.user.id.clone()),
                actor: format!("agent: {}", mcp.token_name),
                token_id: Some(mcp.token_id.clone()),
                kind: format!("mcp.{}", call.tool),
                summary: redact(&call.summary),
                terminal: call.terminal.as_ref().map(|t| t.as_str().to_owned()),
            };
            let event = self
                .state
                .store
                .begin_call(&record)
                .await
                .map_err(|e| format!("the audit log refused the call: {}", e.message))?;
            let id = event.id;
            // The guard authorized the caller as the session's owner.
            self.state.sessions.publish_activity_of(&mcp.caller.user.id, event);
            Ok(CallHandle { id: Some(id), cancel: mcp.revoked.child_token() })
        }
        .boxed()
    }

    fn end<'a>(
        &'a self,
        context: &'a RequestContext<RoleServer>,
        handle: CallHandle,
        call: &'a CallInfo,
        outcome: &'a CallOutcome,
    ) -> BoxFuture<'a, ()> {
        async move {
            let (Some(id), Ok(mcp)) = (handle.id, mcp_caller(context)) else { return };
            let error = outcome.error.as_deref().map(redact);
            let duration = u64::try_from(outcome.duration.as_millis()).unwrap_or(u64::MAX);
            let terminal = call.terminal.as_ref().map(|t| t.as_str());
            match self
                .state
                .store
                .end_call(id, outcome.status, error.as_deref(), duration, terminal)
                .await
            {
                Ok(Some(event)) => {
                    self.state.sessions.publish_activity_of(&mcp.caller.user.id, event);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(call = id, "tool call end not recorded: {}", e.message),
            }
        }
        .boxed()
    }
}
