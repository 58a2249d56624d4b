//! The tools themselves, each against the agent's typed client.

use std::time::Duration;

use bytes::Bytes;
use proto::exec::{ExecDown, ExecRequest};
use proto::files::FileKind;
use proto::terminal::{RunCommand, ShellState, TerminalId};
use serde_json::{Value, json};

use super::args::{ExecArgs, KeysArgs, ListArgs, ReadArgs, RunArgs, WriteArgs, absolute};
use super::{ToolError, ToolResult, WORKSPACE, keys, structured, text};
use crate::client::Client;

/// `read_file` returns at most this much unless asked for less.
const READ_DEFAULT_BYTES: u64 = 256 << 10;

/// `write_file` accepts at most this much.
const WRITE_MAX_BYTES: usize = 8 << 20;

/// `send_keys` waits this long before reading the screen back.
const KEYS_SETTLE: Duration = Duration::from_millis(150);

pub(super) async fn run_command(
    client: &Client,
    terminal: &TerminalId,
    args: RunArgs,
) -> ToolResult {
    let request =
        RunCommand { command: args.command, timeout_ms: args.timeout_ms, max_output_bytes: None };
    let result = client.run(terminal, &request).await?;
    let mut summary = result.output.clone();
    if !summary.is_empty() && !summary.ends_with('\n') {
        summary.push('\n');
    }
    if result.truncated {
        summary.insert_str(0, "[output truncated: only its end is shown]\n");
    }
    match result.exit_code {
        Some(code) if !result.timed_out => summary.push_str(&format!("[exit code {code}]")),
        _ => summary.push_str(&format!(
            "[still running after {} ms: it goes on in the shell; call read_screen to follow \
             it, or send_keys [\"C-c\"] to stop it]",
            request.timeout_ms.unwrap_or(30_000)
        )),
    }
    structured(
        summary,
        json!({
            "output": result.output,
            "exit_code": result.exit_code,
            "timed_out": result.timed_out,
            "truncated": result.truncated,
            "terminal": terminal.as_str(),
        }),
    )
}

pub(super) async fn read_screen(client: &Client, terminal: &TerminalId) -> ToolResult {
    let screen = client.screen(terminal).await?;
    let info = client.terminal(terminal).await?;
    let state = match info.shell {
        ShellState::Prompt => "at a prompt",
        ShellState::Typing => "at a prompt, with something typed",
        ShellState::Running => "running a command",
        ShellState::Unknown => "unknown (no shell integration)",
    };
    let mut lines = screen.lines.clone();
    while lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    let body = format!(
        "terminal {} ({}x{}), cursor at row {} column {}, shell {state}\n---\n{}",
        terminal.as_str(),
        screen.size.cols,
        screen.size.rows,
        screen.cursor_row,
        screen.cursor_col,
        lines.join("\n")
    );
    structured(
        body,
        json!({
            "terminal": terminal.as_str(),
            "lines": screen.lines,
            "cursor": { "row": screen.cursor_row, "col": screen.cursor_col },
            "cols": screen.size.cols,
            "rows": screen.size.rows,
            "shell": info.shell,
        }),
    )
}

pub(super) async fn send_keys(
    client: &Client,
    terminal: &TerminalId,
    args: KeysArgs,
) -> ToolResult {
    let mut bytes = args.text.unwrap_or_default().into_bytes();
    for name in args.keys.unwrap_or_default() {
        let key = keys::bytes(&name).ok_or_else(|| {
            ToolError(format!("unknown key {name:?}; known keys: {}", keys::NAMES))
        })?;
        bytes.extend(key);
    }
    if bytes.is_empty() {
        return Err(ToolError("nothing to send: give text, keys or both".to_owned()));
    }
    client.input(terminal, Bytes::from(bytes)).await?;
    tokio::time::sleep(KEYS_SETTLE).await;
    read_screen(client, terminal).await
}

pub(super) async fn read_file(client: &Client, args: ReadArgs) -> ToolResult {
    let path = absolute(&args.path)?;
    let stat = client.stat(&path).await?;
    if stat.kind == FileKind::Dir {
        return Err(ToolError(format!("{path} is a directory; use list_files")));
    }
    let offset = args.offset.unwrap_or(0);
    let max = args.max_bytes.unwrap_or(READ_DEFAULT_BYTES).clamp(1, 4 * READ_DEFAULT_BYTES);
    let query =
        proto::files::ReadQuery { path: path.clone(), offset: Some(offset), length: Some(max) };
    let body = client.read_stream(&query).await?;
    let bytes = http_body_util::BodyExt::collect(body)
        .await
        .map_err(|e| ToolError(format!("reading {path}: {e}")))?
        .to_bytes();
    if bytes.contains(&0) {
        return Err(ToolError(format!(
            "{path} is binary ({} bytes); use exec with e.g. [\"xxd\", \"{path}\"] or \
             [\"base64\", \"{path}\"]",
            stat.size
        )));
    }
    let content = String::from_utf8_lossy(&bytes).into_owned();
    let end = offset + bytes.len() as u64;
    let mut out = content.clone();
    if end < stat.size {
        out.push_str(&format!(
            "\n[{} of {} bytes shown; read on with offset {end}]",
            bytes.len(),
            stat.size
        ));
    }
    structured(
        out,
        json!({ "path": path, "content": content, "size": stat.size, "offset": offset }),
    )
}

pub(super) async fn write_file(client: &Client, args: WriteArgs) -> ToolResult {
    let path = absolute(&args.path)?;
    if args.content.len() > WRITE_MAX_BYTES {
        return Err(ToolError(format!(
            "content is {} bytes; write_file takes at most {WRITE_MAX_BYTES}",
            args.content.len()
        )));
    }
    if let Some((parent, _)) = path.rsplit_once('/')
        && !parent.is_empty()
    {
        client.mkdir(parent).await?;
    }
    let stat = client.write(&path, args.content.into_bytes()).await?;
    text(format!("wrote {} bytes to {path}", stat.size))
}

pub(super) async fn list_files(client: &Client, args: ListArgs) -> ToolResult {
    let path = absolute(args.path.as_deref().unwrap_or(WORKSPACE))?;
    let depth = args.depth.unwrap_or(1).clamp(1, 5);
    let list = client.list(&path, Some(depth)).await?;
    let mut out = String::new();
    for entry in &list.entries {
        let kind = match entry.kind {
            FileKind::Dir => "dir ",
            FileKind::File => "file",
            FileKind::Symlink => "link",
            FileKind::Other => "other",
        };
        out.push_str(&format!("{kind} {:>10} {}\n", entry.size, entry.path));
    }
    if out.is_empty() {
        out = format!("{path} is empty\n");
    }
    if list.truncated {
        out.push_str("[listing truncated: ask for a narrower path or a smaller depth]\n");
    }
    structured(out, serde_json::to_value(&list).unwrap_or(Value::Null))
}

pub(super) async fn exec(client: &Client, args: ExecArgs) -> ToolResult {
    if args.argv.is_empty() {
        return Err(ToolError("argv is empty: give the program and its arguments".to_owned()));
    }
    let request = ExecRequest {
        argv: args.argv,
        cwd: Some(absolute(args.cwd.as_deref().unwrap_or(WORKSPACE))?),
        env: args.env.unwrap_or_default(),
        timeout_ms: Some(args.timeout_ms.unwrap_or(60_000)),
        collect: true,
        stdin: false,
    };
    match client.exec_collect(request).await? {
        ExecDown::Finished { stdout, stderr, truncated, status } => {
            let (stdout, stderr) =
                (String::from_utf8_lossy(&stdout), String::from_utf8_lossy(&stderr));
            let mut out = String::new();
            if !stdout.is_empty() {
                out.push_str(&format!("stdout:\n{stdout}\n"));
            }
            if !stderr.is_empty() {
                out.push_str(&format!("stderr:\n{stderr}\n"));
            }
            if truncated {
                out.push_str("[output truncated]\n");
            }
            match (status.code, status.signal) {
                _ if status.timed_out => out.push_str("[killed: timed out]"),
                (Some(code), _) => out.push_str(&format!("[exit code {code}]")),
                (None, Some(signal)) => out.push_str(&format!("[killed by signal {signal}]")),
                (None, None) => out.push_str("[ended]"),
            }
            structured(
                out,
                json!({
                    "stdout": stdout,
                    "stderr": stderr,
                    "exit_code": status.code,
                    "signal": status.signal,
                    "timed_out": status.timed_out,
                    "truncated": truncated,
                }),
            )
        }
        _ => Err(ToolError("the agent gave no exec result".to_owned())),
    }
}

pub(super) async fn list_ports(client: &Client) -> ToolResult {
    let list = client.ports().await?;
    let mut out = String::new();
    for listener in &list.listeners {
        let process = match (&listener.process, listener.pid) {
            (Some(name), Some(pid)) => format!(" ({name}, pid {pid})"),
            (Some(name), None) => format!(" ({name})"),
            _ => String::new(),
        };
        out.push_str(&format!("{} on {}{process}\n", listener.port, listener.address));
    }
    if out.is_empty() {
        out.push_str("nothing listens on a TCP port\n");
    }
    structured(out, serde_json::to_value(&list).unwrap_or(Value::Null))
}

/// A port's preview URL, with a note when nothing listens there yet.
pub(super) async fn preview_url(
    client: &Client,
    port: u16,
    preview: &super::Preview,
) -> ToolResult {
    let listening = client.ports().await?.listeners.iter().any(|l| l.port == port);
    let mut out = format!(
        "{} ({})\n",
        preview.url,
        if preview.public {
            "public: anyone with the URL"
        } else {
            "private: the session's owner, signed in to Flint"
        }
    );
    if let Some(share) = &preview.share_url {
        out.push_str(&format!("share link (works for anyone until it expires): {share}\n"));
    }
    if !listening {
        out.push_str(&format!(
            "nothing listens on port {port} yet: start the server (listening on 0.0.0.0 or \
             127.0.0.1) and the URL works\n"
        ));
    }
    let value = serde_json::json!({
        "url": preview.url,
        "public": preview.public,
        "share_url": preview.share_url,
        "share_expires_ms": preview.share_expires_ms,
        "listening": listening,
    });
    structured(out, value)
}
