//! The MCP tools an AI agent works a session with, served by the control plane over
//! Streamable HTTP (`/api/sessions/{id}/mcp`) and by `guest-agent mcp` over stdio inside the
//! sandbox. One definition for both: a [`Host`] says which agent a call reaches, records the
//! call in the audit log, and can cancel it.
//!
//! **Invariant:** a tool's failure is a tool result with `isError` and a message a model can
//! act on; a protocol error is only for an unknown tool. No tool blocks a runtime worker:
//! everything goes through the agent's async client.

mod args;
mod browser;
pub mod keys;
mod tools;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use proto::audit::ToolStatus;
use proto::error::ErrorCode;
use proto::terminal::{CreateTerminal, ShellState, TerminalId};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    JsonObject, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use self::args::{NoArgs, PreviewArgs, TerminalArgs, catalogue, parse, summarize};

use crate::client::Client;
use crate::error::Error;

/// Relative paths in tool arguments are under this directory.
pub const WORKSPACE: &str = "/workspace";

/// A tool call as the audit log sees it.
#[derive(Clone, Debug)]
pub struct CallInfo {
    /// Tool name.
    pub tool: &'static str,
    /// The arguments in a line (not yet redacted: hosts redact).
    pub summary: String,
    /// The terminal it types into (`run_command`, `send_keys`).
    pub terminal: Option<TerminalId>,
}

/// How a call ended.
#[derive(Clone, Debug)]
pub struct CallOutcome {
    /// Ok, error or cancelled.
    pub status: ToolStatus,
    /// The tool error.
    pub error: Option<String>,
    /// How long it took.
    pub duration: Duration,
}

/// A started call: the host's record of it and what cancels it.
#[derive(Debug)]
pub struct CallHandle {
    /// The host's id of the audit entry, if it keeps one.
    pub id: Option<i64>,
    /// Fired when the call must stop (its token was revoked, the client went away).
    pub cancel: CancellationToken,
}

/// Where the tools' calls go: the control plane (an agent of one session, the store) or the
/// sandbox (the restricted socket, a report per call).
pub trait Host: Send + Sync + 'static {
    /// The agent of the session this request acts on, or why there is none (a message for the
    /// model: "the session is stopped").
    fn client<'a>(
        &'a self,
        context: &'a RequestContext<RoleServer>,
    ) -> BoxFuture<'a, Result<Client, String>>;

    /// A call is about to run. An `Err` refuses it with that message.
    fn begin<'a>(
        &'a self,
        context: &'a RequestContext<RoleServer>,
        call: &'a CallInfo,
    ) -> BoxFuture<'a, Result<CallHandle, String>>;

    /// The call ended.
    fn end<'a>(
        &'a self,
        context: &'a RequestContext<RoleServer>,
        handle: CallHandle,
        call: &'a CallInfo,
        outcome: &'a CallOutcome,
    ) -> BoxFuture<'a, ()>;

    /// The preview URL of `port` and, when `share` gives a lifetime in seconds, a new share
    /// link; `Err` is a message for the model.
    fn preview<'a>(
        &'a self,
        context: &'a RequestContext<RoleServer>,
        port: u16,
        share: Option<u64>,
    ) -> BoxFuture<'a, Result<Preview, String>>;
}

/// A port's preview, as a host knows it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Preview {
    /// The URL.
    pub url: String,
    /// Whether anyone may open it (else the owner, signed in).
    pub public: bool,
    /// A share link, when one was asked for.
    pub share_url: Option<String>,
    /// When it expires (ms since the Unix epoch).
    pub share_expires_ms: Option<i64>,
}

/// The MCP server: the tool set over a [`Host`].
#[derive(Clone)]
pub struct Tools {
    host: Arc<dyn Host>,
    name: &'static str,
}

impl std::fmt::Debug for Tools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tools").field("name", &self.name).finish_non_exhaustive()
    }
}

/// A tool's failure, as the model reads it.
pub(crate) struct ToolError(String);

impl From<Error> for ToolError {
    fn from(err: Error) -> ToolError {
        ToolError(match err {
            Error::Api { code: ErrorCode::ShellBusy, message } => format!(
                "{message}. The shell is shared with a person: call read_screen to see what is \
                 going on, wait and retry, or send_keys [\"C-c\"] to interrupt a command you \
                 started"
            ),
            Error::Api { code: ErrorCode::NoShellIntegration, message } => format!(
                "{message}. run_command needs the image's shell integration; use exec for a \
                 command without the shared shell, or send_keys and read_screen"
            ),
            Error::Api { message, .. } => message,
            Error::Transport(message) => format!("the session's agent did not answer: {message}"),
        })
    }
}

pub(crate) type ToolResult = Result<CallToolResult, ToolError>;

pub(crate) fn text(text: impl Into<String>) -> ToolResult {
    Ok(CallToolResult::success(vec![ContentBlock::text(text)]))
}

pub(crate) fn structured(summary: String, value: Value) -> ToolResult {
    let mut result = CallToolResult::success(vec![ContentBlock::text(summary)]);
    result.structured_content = Some(value);
    Ok(result)
}
impl Tools {
    /// The tools over `host`; `name` is the server name clients see.
    pub fn new(host: Arc<dyn Host>, name: &'static str) -> Tools {
        Tools { host, name }
    }

    /// The terminal a call names, or the session's first live shell (opening one when there
    /// is none).
    async fn terminal(client: &Client, named: Option<&str>) -> Result<TerminalId, ToolError> {
        if let Some(name) = named {
            let id = TerminalId::parse(name)
                .ok_or_else(|| ToolError(format!("{name:?} is not a terminal id")))?;
            client.terminal(&id).await?;
            return Ok(id);
        }
        let terminals = client.terminals().await?;
        if let Some(first) = terminals.iter().find(|t| t.exit.is_none()) {
            return Ok(first.id.clone());
        }
        Ok(client.create_terminal(&CreateTerminal::default()).await?.id)
    }

    async fn call(
        &self,
        name: &str,
        args: JsonObject,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let Some(tool) = catalogue().into_iter().find(|t| t.name == name).map(|t| t.name) else {
            return Err(ErrorData::invalid_params(
                format!("no tool {name:?}; call tools/list for the tool set"),
                None,
            ));
        };
        let tool: &'static str = match tool {
            std::borrow::Cow::Borrowed(name) => name,
            std::borrow::Cow::Owned(_) => "unknown",
        };
        let started = Instant::now();
        let mut call = CallInfo { tool, summary: summarize(tool, &args), terminal: None };
        // What the call needs before it is recorded: the agent and, for the shell tools, the
        // terminal (so the feed can say "agent is typing" there).
        let prepared = match self.host.client(context).await {
            Ok(client) => match tool {
                "run_command" | "read_screen" | "send_keys" => {
                    let named = args.get("terminal").and_then(Value::as_str);
                    Self::terminal(&client, named).await.map(|id| (client, Some(id)))
                }
                _ => Ok((client, None)),
            },
            Err(message) => Err(ToolError(message)),
        };
        if let Ok((_, terminal)) = &prepared {
            call.terminal = terminal.clone();
        }
        let handle = match self.host.begin(context, &call).await {
            Ok(handle) => handle,
            Err(message) => return Ok(CallToolResult::error(vec![ContentBlock::text(message)])),
        };
        let result = match prepared {
            Err(e) => Err(e),
            Ok((client, terminal)) => {
                tokio::select! {
                    result = self.run(tool, &args, &client, terminal.as_ref(), context) => result,
                    () = handle.cancel.cancelled() => {
                        if tool == "run_command"
                            && let Some(id) = &terminal
                        {
                            // The agent was stopped: so is the command it was running.
                            interrupt(&client, id).await;
                        }
                        Err(ToolError("cancelled: this agent's access was revoked".to_owned()))
                    }
                    () = context.ct.cancelled() => {
                        Err(ToolError("cancelled by the client".to_owned()))
                    }
                }
            }
        };
        let outcome = CallOutcome {
            status: match &result {
                Ok(_) => ToolStatus::Ok,
                Err(_) if handle.cancel.is_cancelled() || context.ct.is_cancelled() => {
                    ToolStatus::Cancelled
                }
                Err(_) => ToolStatus::Error,
            },
            error: result.as_ref().err().map(|e| e.0.clone()),
            duration: started.elapsed(),
        };
        self.host.end(context, handle, &call, &outcome).await;
        Ok(result.unwrap_or_else(|e| CallToolResult::error(vec![ContentBlock::text(e.0)])))
    }

    async fn run(
        &self,
        tool: &str,
        args: &JsonObject,
        client: &Client,
        terminal: Option<&TerminalId>,
        context: &RequestContext<RoleServer>,
    ) -> ToolResult {
        let terminal = || terminal.ok_or_else(|| ToolError("no terminal".to_owned()));
        match tool {
            "run_command" => tools::run_command(client, terminal()?, parse(args)?).await,
            "read_screen" => {
                let _: TerminalArgs = parse(args)?;
                tools::read_screen(client, terminal()?).await
            }
            "send_keys" => tools::send_keys(client, terminal()?, parse(args)?).await,
            "read_file" => tools::read_file(client, parse(args)?).await,
            "write_file" => tools::write_file(client, parse(args)?).await,
            "list_files" => tools::list_files(client, parse(args)?).await,
            "exec" => tools::exec(client, parse(args)?).await,
            "list_ports" => {
                let _: NoArgs = parse(args)?;
                tools::list_ports(client).await
            }
            "preview_url" => {
                let args: PreviewArgs = parse(args)?;
                if args.port == 0 {
                    return Err(ToolError("port must be 1..65535".to_owned()));
                }
                let share = args.share.unwrap_or(false).then(|| args.expires_s.unwrap_or(86_400));
                let preview =
                    self.host.preview(context, args.port, share).await.map_err(ToolError)?;
                tools::preview_url(client, args.port, &preview).await
            }
            "browser_navigate" | "browser_click" | "browser_type" | "browser_screenshot"
            | "browser_text" | "browser_tabs" => browser::run(client, tool, args).await,
            other => Err(ToolError(format!("no tool {other:?}"))),
        }
    }
}

impl ServerHandler for Tools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(self.name, env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "A Flint session: a Linux sandbox shared with a person who watches the same \
                 terminal in a browser. Work in /workspace. run_command types into the shared \
                 shell; exec runs a program out of sight; read_file/write_file/list_files work \
                 on files; list_ports shows what listens; preview_url gives a port's browser \
                 URL. The browser_* tools drive a headless browser inside the sandbox that the \
                 person watches too: there, a server of the session is at \
                 http://127.0.0.1:PORT.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(catalogue()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let args = request.arguments.unwrap_or_default();
        Ok(self.call(&request.name, args, &context).await?.into())
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        catalogue().into_iter().find(|t| t.name == name)
    }
}

/// Interrupts what a terminal's shell runs: Ctrl-C until the shell is back at its prompt
/// (at most [`INTERRUPT_TRIES`] times). One Ctrl-C can be lost: typed in the moment between
/// the shell forking a command and handing it the terminal, it reaches the shell, not the
/// command.
async fn interrupt(client: &crate::client::Client, terminal: &TerminalId) {
    for _ in 0..INTERRUPT_TRIES {
        if client.input(terminal, Bytes::from_static(b"\x03")).await.is_err() {
            return;
        }
        tokio::time::sleep(INTERRUPT_GAP).await;
        let Ok(terminals) = client.terminals().await else { return };
        let at_prompt = terminals
            .iter()
            .find(|t| &t.id == terminal)
            .is_none_or(|t| t.shell == ShellState::Prompt || t.exit.is_some());
        if at_prompt {
            return;
        }
    }
}

/// How many Ctrl-C [`interrupt`] sends at most, and how far apart.
const INTERRUPT_TRIES: usize = 10;
const INTERRUPT_GAP: Duration = Duration::from_millis(200);
