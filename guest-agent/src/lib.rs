//! The Flint guest agent: the daemon inside every sandbox.
//!
//! It serves the API declared in [`proto::routes`] as HTTP/2 with prior knowledge over one byte
//! stream (see [`listen`]), to one client that presents the session's secret. Everything a
//! session does inside its sandbox — shared terminals, commands, files, ports, tunnels — goes
//! through it. Its typed client, the link's settings and the MCP tools are the `agent-client`
//! crate (re-exported here), which the server links instead of this one.
//!
//! Optionally (`serve --guest-listen unix:PATH`) it also serves a restricted socket inside
//! the sandbox, without a secret, for the in-sandbox MCP server: only the routes of
//! [`proto::routes::Route::guest_allowed`] — running a command line at a shared shell's
//! prompt (shell state from the OSC 133 marks of `images/shell/flint-shell.bash`), typing,
//! files, exec, the shared browser's operations and tabs, and reporting tool calls, which
//! the server reads back for its audit log.

pub mod mcp_stdio;
pub mod server;

pub use agent_client::{client, error, listen, mcp, trust};

mod attach;
mod audit;
mod browser;
mod exec;
mod files;
mod http;
mod info;
mod ports;
mod ring;
mod run;
mod shell;
mod sizing;
mod terminal;
mod tunnel;

pub use agent_client::Error;
