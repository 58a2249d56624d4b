//! `guest-agent mcp`: the tools over stdio inside the sandbox, for an agent that runs there
//! (a coding CLI started in the shared shell). Calls go through the agent's restricted
//! socket, which serves only what the tools need, and every call is reported there for the
//! audit log, where it shows as guest-reported.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;
use proto::audit::ToolReport;
use rmcp::service::RequestContext;
use rmcp::{RoleServer, ServiceExt as _};
use tokio_util::sync::CancellationToken;

use crate::client::Client;
use crate::mcp::{CallHandle, CallInfo, CallOutcome, Host, Preview, Tools};

/// Where the restricted socket is inside a sandbox.
pub const DEFAULT_SOCKET: &str = "/run/flint/mcp.sock";

struct GuestHost {
    client: Client,
}

/// The sandbox's preview URL template (`{port}` stands for the port), set by the server.
pub const PREVIEW_URL_ENV: &str = "FLINT_PREVIEW_URL";

impl Host for GuestHost {
    fn preview<'a>(
        &'a self,
        _context: &'a RequestContext<RoleServer>,
        port: u16,
        share: Option<u64>,
    ) -> BoxFuture<'a, Result<Preview, String>> {
        let result = if share.is_some() {
            Err("share links are made from Flint's web UI or its HTTP MCP endpoint, not from \
                 inside the sandbox"
                .to_owned())
        } else {
            match std::env::var(PREVIEW_URL_ENV) {
                Ok(template) if template.contains("{port}") => Ok(Preview {
                    url: template.replace("{port}", &port.to_string()),
                    public: false,
                    share_url: None,
                    share_expires_ms: None,
                }),
                _ => Err(format!(
                    "this sandbox does not know its preview URLs ({PREVIEW_URL_ENV} is not set); \
                     ask the person for the session's preview URL"
                )),
            }
        };
        std::future::ready(result).boxed()
    }

    fn client<'a>(
        &'a self,
        _context: &'a RequestContext<RoleServer>,
    ) -> BoxFuture<'a, Result<Client, String>> {
        std::future::ready(Ok(self.client.clone())).boxed()
    }

    fn begin<'a>(
        &'a self,
        _context: &'a RequestContext<RoleServer>,
        _call: &'a CallInfo,
    ) -> BoxFuture<'a, Result<CallHandle, String>> {
        std::future::ready(Ok(CallHandle { id: None, cancel: CancellationToken::new() })).boxed()
    }

    fn end<'a>(
        &'a self,
        _context: &'a RequestContext<RoleServer>,
        _handle: CallHandle,
        call: &'a CallInfo,
        outcome: &'a CallOutcome,
    ) -> BoxFuture<'a, ()> {
        async move {
            let report = ToolReport {
                tool: call.tool.to_owned(),
                summary: call.summary.clone(),
                status: outcome.status,
                error: outcome.error.clone(),
                duration_ms: u64::try_from(outcome.duration.as_millis()).unwrap_or(u64::MAX),
            };
            if let Err(e) = self.client.report(&report).await {
                tracing::warn!("tool call not reported: {e}");
            }
        }
        .boxed()
    }
}

/// Serves the tools on stdin/stdout until the client hangs up.
pub async fn serve(socket: PathBuf) -> anyhow::Result<()> {
    let client = Client::connect_guest(&socket)
        .await
        .with_context(|| format!("connecting to the agent's socket {}", socket.display()))?;
    let tools = Tools::new(Arc::new(GuestHost { client }), "flint-sandbox");
    let running = tools.serve(rmcp::transport::stdio()).await.context("starting MCP on stdio")?;
    running.waiting().await.context("serving MCP on stdio")?;
    Ok(())
}
