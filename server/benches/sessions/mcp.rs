//! `mcp.run_command`: an MCP client (rmcp's) on a session's endpoint, timing tool calls.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};

use super::{MCP_CALLS, Server};

/// An MCP client (rmcp's) on a session's endpoint: each `run_command "true"` round trip,
/// typed into the shared shell and finished by its OSC 133 mark.
pub(super) async fn run_command(server: &Server) -> Result<Vec<Duration>> {
    use rmcp::ServiceExt as _;
    use rmcp::model::{CallToolRequestParams, ClientConfig};
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;

    let id = server.create_session().await?;
    let url = format!("http://{}/api/sessions/{id}/mcp", server.inner.addr);
    let token = server.bearer().trim_start_matches("Bearer ").to_owned();
    let config = StreamableHttpClientTransportConfig::with_uri(url).auth_header(token);
    let client = ClientConfig::default()
        .serve(StreamableHttpClientTransport::from_config(config))
        .await
        .context("connecting the MCP client")?;
    let args = serde_json::json!({"command": "true"}).as_object().cloned().unwrap_or_default();
    let mut samples = Vec::with_capacity(MCP_CALLS);
    // One unmeasured call opens the shared shell.
    for i in 0..=MCP_CALLS {
        let started = Instant::now();
        let result = client
            .call_tool(CallToolRequestParams::new("run_command").with_arguments(args.clone()))
            .await
            .context("run_command")?;
        ensure!(result.is_error != Some(true), "run_command failed: {:?}", result.content);
        if i > 0 {
            samples.push(started.elapsed());
        }
    }
    let _ = client.cancel().await;
    server.delete_session(&id).await?;
    Ok(samples)
}
