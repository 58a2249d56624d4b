//! The tools' arguments: their types (the JSON schemas clients see come from these, doc
//! comments included), the catalogue with each tool's description, and the one-line summary
//! of a call the audit log keeps.

use std::sync::Arc;

use rmcp::model::{JsonObject, Tool};
use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{ToolError, WORKSPACE};

/// Longest summary of a call's arguments, in characters (the host redacts secrets).
const SUMMARY_CHARS: usize = 300;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RunArgs {
    /// One command line, run by bash at the shared shell's prompt (join several with `&&`
    /// or `;`; no newlines).
    pub(super) command: String,
    /// Stop waiting after this many milliseconds (default 30000). The command keeps running.
    pub(super) timeout_ms: Option<u64>,
    /// Terminal id; default the session's first shell.
    #[expect(dead_code, reason = "read from the raw arguments, before the call is recorded")]
    pub(super) terminal: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct TerminalArgs {
    /// Terminal id; default the session's first shell.
    #[expect(dead_code, reason = "read from the raw arguments, before the call is recorded")]
    pub(super) terminal: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct KeysArgs {
    /// Text typed literally first (no key names are interpreted in it).
    pub(super) text: Option<String>,
    /// Named keys pressed after the text, in order: Enter, Tab, Escape, Backspace, Delete,
    /// Up, Down, Left, Right, Home, End, PageUp, PageDown, F1..F12, Space, C-c (Ctrl-C),
    /// C-d, M-b (Alt-b), ...
    pub(super) keys: Option<Vec<String>>,
    /// Terminal id; default the session's first shell.
    #[expect(dead_code, reason = "read from the raw arguments, before the call is recorded")]
    pub(super) terminal: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ReadArgs {
    /// File path; relative paths are under /workspace.
    pub(super) path: String,
    /// First byte to read (default 0).
    pub(super) offset: Option<u64>,
    /// Most bytes to return (default 262144).
    pub(super) max_bytes: Option<u64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct WriteArgs {
    /// File path; relative paths are under /workspace. Missing parent directories are
    /// created.
    pub(super) path: String,
    /// The whole new content (UTF-8 text).
    pub(super) content: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ListArgs {
    /// Directory; default /workspace. Relative paths are under /workspace.
    pub(super) path: Option<String>,
    /// Levels to descend (default 1, at most 5).
    pub(super) depth: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ExecArgs {
    /// Program and arguments, not parsed by a shell (use ["bash", "-c", "..."] for one).
    pub(super) argv: Vec<String>,
    /// Working directory (default /workspace).
    pub(super) cwd: Option<String>,
    /// Kill it after this many milliseconds (default 60000).
    pub(super) timeout_ms: Option<u64>,
    /// Extra environment variables.
    pub(super) env: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NoArgs {}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PreviewArgs {
    /// The port in the session (what the dev server listens on, e.g. 5173).
    pub(super) port: u16,
    /// Also make a share link: a URL that works without a Flint account until it expires
    /// (default false).
    pub(super) share: Option<bool>,
    /// The share link's lifetime in seconds (default 86400).
    pub(super) expires_s: Option<u64>,
}

/// A tool: its name, description and the JSON schema of its argument type.
pub(super) fn tool<T: JsonSchema>(name: &'static str, description: &'static str) -> Tool {
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .with(|s| s.inline_subschemas = true)
        .into_generator()
        .into_root_schema_for::<T>();
    let mut object: JsonObject = match serde_json::to_value(schema) {
        Ok(Value::Object(map)) => map,
        _ => JsonObject::new(),
    };
    object.remove("$schema");
    object.remove("title");
    object.entry("properties").or_insert_with(|| json!({}));
    Tool::new(name, description, Arc::new(object))
}

/// Each tool: name, description, argument type; the shared browser's come last.
pub(super) fn catalogue() -> Vec<Tool> {
    let mut tools = vec![
        tool::<RunArgs>(
            "run_command",
            "Run a shell command line in the session's shared terminal, exactly as if typed at \
             the prompt: the person watching sees it run. Waits for it to finish and returns \
             its output and exit code. State persists between calls (cd, exported variables, \
             activated environments). Fails with a 'busy' error when a command is still running \
             or a person is typing at the prompt. For long-running processes (dev servers), \
             start them in the background (`cmd > log 2>&1 &`) or use a short timeout and \
             read_screen. Interactive programs (vi, top, REPLs) need send_keys and read_screen \
             instead.",
        ),
        tool::<TerminalArgs>(
            "read_screen",
            "The shared terminal's screen as a person sees it now, as text, with the cursor \
             position and what the shell is doing (prompt, typing, running).",
        ),
        tool::<KeysArgs>(
            "send_keys",
            "Press keys in the shared terminal: literal `text` first, then named `keys` (Enter, \
             C-c for Ctrl-C, Up, Escape, ...). For interactive programs and for interrupting a \
             command. Returns the screen afterwards.",
        ),
        tool::<ReadArgs>(
            "read_file",
            "Read a text file of the session. Relative paths are under /workspace. Large files \
             can be read in parts with offset and max_bytes.",
        ),
        tool::<WriteArgs>(
            "write_file",
            "Create or replace a text file of the session with the given content (written \
             atomically; parent directories are created). Relative paths are under /workspace.",
        ),
        tool::<ListArgs>(
            "list_files",
            "List a directory of the session (default /workspace): one entry per line with its \
             kind, size and path.",
        ),
        tool::<ExecArgs>(
            "exec",
            "Run a program without the shared terminal (nobody sees it typed) and return its \
             stdout, stderr and exit code. argv is not parsed by a shell.",
        ),
        tool::<NoArgs>(
            "list_ports",
            "The TCP ports something listens on in the session (a dev server, a database), \
             with the address and the process.",
        ),
        tool::<PreviewArgs>(
            "preview_url",
            "The browser URL of a port in the session (a web app or dev server started here), \
             to give the person. Private ports open for the session's owner signed in to \
             Flint; with share=true also returns a share link that works for anyone until it \
             expires. Inside the sandbox the same app is at http://127.0.0.1:PORT.",
        ),
    ];
    tools.extend(super::browser::catalogue());
    tools
}

pub(super) fn parse<T: DeserializeOwned>(args: &JsonObject) -> Result<T, ToolError> {
    serde_json::from_value(Value::Object(args.clone()))
        .map_err(|e| ToolError(format!("invalid arguments: {e}")))
}

/// `/workspace`-relative paths made absolute; `..` is left to the agent (the sandbox is one
/// trust domain, so there is nothing to escape to).
pub(super) fn absolute(path: &str) -> Result<String, ToolError> {
    let path = path.trim();
    if path.is_empty() {
        return Err(ToolError("path is empty".to_owned()));
    }
    Ok(if path.starts_with('/') { path.to_owned() } else { format!("{WORKSPACE}/{path}") })
}

/// A line saying what the call was asked to do, for the audit log.
pub(super) fn summarize(tool: &str, args: &JsonObject) -> String {
    let field = |name: &str| args.get(name).and_then(Value::as_str).unwrap_or("").to_owned();
    let summary = match tool {
        "run_command" => field("command"),
        "send_keys" => {
            let keys = args
                .get("keys")
                .and_then(Value::as_array)
                .map(|keys| keys.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" "))
                .unwrap_or_default();
            format!("{} {keys}", field("text")).trim().to_owned()
        }
        "read_file" | "list_files" => field("path"),
        "preview_url" => {
            let port = args.get("port").map(Value::to_string).unwrap_or_default();
            let share = args.get("share").and_then(Value::as_bool).unwrap_or(false);
            if share { format!("port {port}, share link") } else { format!("port {port}") }
        }
        "write_file" => {
            let bytes = args.get("content").and_then(Value::as_str).map_or(0, str::len);
            format!("{} ({bytes} bytes)", field("path"))
        }
        "exec" => args
            .get("argv")
            .and_then(Value::as_array)
            .map(|argv| argv.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" "))
            .unwrap_or_default(),
        browser if browser.starts_with("browser_") => super::browser::summarize(browser, args),
        _ => String::new(),
    };
    match summary.char_indices().nth(SUMMARY_CHARS) {
        Some((cut, _)) => format!("{}…", &summary[..cut]),
        None => summary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_has_an_object_schema_and_a_description() {
        let tools = catalogue();
        let names: Vec<_> = tools.iter().map(|t| t.name.to_string()).collect();
        assert_eq!(
            names,
            [
                "run_command",
                "read_screen",
                "send_keys",
                "read_file",
                "write_file",
                "list_files",
                "exec",
                "list_ports",
                "preview_url",
                "browser_navigate",
                "browser_click",
                "browser_type",
                "browser_screenshot",
                "browser_text",
                "browser_tabs"
            ]
        );
        for tool in &tools {
            assert_eq!(tool.input_schema.get("type"), Some(&json!("object")), "{}", tool.name);
            assert!(tool.description.as_deref().is_some_and(|d| d.len() > 40), "{}", tool.name);
        }
        let run = &tools[0].input_schema;
        assert_eq!(run.get("required"), Some(&json!(["command"])));
        assert!(run["properties"]["command"]["description"].as_str().is_some());
    }

    #[test]
    fn summaries_name_what_was_asked() {
        let args = |v: Value| v.as_object().cloned().unwrap_or_default();
        assert_eq!(summarize("run_command", &args(json!({"command": "ls -l"}))), "ls -l");
        assert_eq!(
            summarize("preview_url", &args(json!({"port": 5173, "share": true}))),
            "port 5173, share link"
        );
        assert_eq!(
            summarize("write_file", &args(json!({"path": "a.txt", "content": "secret"}))),
            "a.txt (6 bytes)"
        );
        assert_eq!(summarize("exec", &args(json!({"argv": ["echo", "x"]}))), "echo x");
        assert_eq!(
            summarize("send_keys", &args(json!({"text": "q", "keys": ["Enter"]}))),
            "q Enter"
        );
    }

    #[test]
    fn relative_paths_are_under_the_workspace() {
        assert_eq!(absolute("src/main.rs").ok().as_deref(), Some("/workspace/src/main.rs"));
        assert_eq!(absolute("/etc/hosts").ok().as_deref(), Some("/etc/hosts"));
        assert!(absolute("  ").is_err());
    }
}
