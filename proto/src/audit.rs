//! What agents did, as the activity feed and the audit log show it.
//!
//! Tool calls over the server's MCP endpoint are recorded by the server itself. Tool calls
//! over `guest-agent mcp` inside a sandbox are *reported*: the stdio MCP server posts a
//! [`ToolReport`] to the agent's restricted socket (`POST /v1/audit`), the agent queues it,
//! and the server reads the queue (`GET /v1/audit/events`) and records each report marked
//! guest-reported. A report is the guest's word, never trusted further than that.

use serde::{Deserialize, Serialize};

/// How a tool call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ToolStatus {
    /// Still running (the activity feed shows it live).
    Started,
    /// Returned a result.
    Ok,
    /// Returned a tool error.
    Error,
    /// Cut off: the caller's token was revoked or the client went away.
    Cancelled,
}

impl ToolStatus {
    /// The status's name, as stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            ToolStatus::Started => "started",
            ToolStatus::Ok => "ok",
            ToolStatus::Error => "error",
            ToolStatus::Cancelled => "cancelled",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<ToolStatus> {
        Some(match text {
            "started" => ToolStatus::Started,
            "ok" => ToolStatus::Ok,
            "error" => ToolStatus::Error,
            "cancelled" => ToolStatus::Cancelled,
            _ => return None,
        })
    }
}

/// `POST /v1/audit` body (restricted socket only): one finished tool call of the in-sandbox
/// MCP server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolReport {
    /// Tool name, e.g. `run_command`.
    pub tool: String,
    /// Arguments in a line; the server redacts secrets before it stores them.
    pub summary: String,
    /// How it ended.
    pub status: ToolStatus,
    /// The tool error, if any.
    #[serde(default)]
    pub error: Option<String>,
    /// How long it took.
    pub duration_ms: u64,
}

/// `POST /v1/audit` response: the report is queued under this sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportQueued {
    /// The report's [`GuestReport::seq`].
    pub seq: u64,
}

/// Frames of `GET /v1/audit/events`: every report since the agent started (as many as it
/// still holds), then new ones as they arrive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestReport {
    /// Increasing from 1 per agent run; a reader that reconnects skips what it saw.
    pub seq: u64,
    /// When the agent received it (Unix ms, the guest's clock).
    pub at_ms: i64,
    /// The report.
    pub report: ToolReport,
}
