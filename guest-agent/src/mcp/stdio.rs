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

use super::{CallHandle, CallInfo, CallOutcome, Host, Tools};
use crate::client::Client;

/// Where the restricted socket is inside a sandbox.
pub const DEFAULT_SOCKET: &str = "/run/flint/mcp.sock";

struct GuestHost {
    client: Client,
}

impl Host for GuestHost {
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
