//! The MCP endpoint with real MCP clients (rmcp's here, the official Python SDK in
//! `python.rs`) against a real server and sandbox; `guest-agent mcp` over stdio inside a
//! sandbox.

use std::time::{Duration, Instant};

use http::StatusCode;
use rmcp::ServiceExt as _;
use rmcp::model::{CallToolRequestParams, CallToolResult, ClientConfig};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

use crate::common::*;

mod browser;
mod python;
mod terminal;

type McpClient = RunningService<RoleClient, ClientConfig>;

/// A signed-in owner with a user-wide token and one running session.
struct Fixture {
    server: TestServer,
    _dir: tempfile::TempDir,
    cookie: String,
    bearer: String,
    session: String,
}

/// The session most tests work in: the small test image.
const TEST_SESSION: &str = r#"{"image":"test","cpus":0.5,"memory_mb":512}"#;

impl Fixture {
    async fn new() -> Fixture {
        Fixture::with(&[], TEST_SESSION).await
    }

    /// A server started with `args`, its session created from the JSON `session`.
    async fn with(args: &[&str], session: &str) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = TestServer::start_with(dir.path(), args);
        let cookie = server.sign_in().await;
        let bearer = format!("Bearer {}", make_token(&server, &cookie, None).await.0);
        let session = new_session(&server, &bearer, session).await;
        Fixture { server, _dir: dir, cookie, bearer, session }
    }

    fn mcp_url(&self, session: &str) -> String {
        format!("http://{}/api/sessions/{session}/mcp", self.server.addr)
    }

    async fn events(&self) -> Vec<Value> {
        let path = format!("/api/sessions/{}/events", self.session);
        let reply = self.server.get(&path, &[("authorization", &self.bearer)]).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.json().as_array().cloned().unwrap_or_default()
    }
}

/// A token (secret, id), scoped to `session` when given.
async fn make_token(server: &TestServer, cookie: &str, session: Option<&str>) -> (String, String) {
    let body = json!({ "name": "claude", "session_id": session }).to_string();
    let reply = server
        .request(
            "POST",
            "/api/tokens",
            &[("cookie", cookie), ("content-type", "application/json")],
            &body,
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let json = reply.json();
    (json["token"].as_str().expect("token").to_owned(), json["id"].as_str().expect("id").to_owned())
}

async fn new_session(server: &TestServer, bearer: &str, body: &str) -> String {
    server.create_session(bearer, body).await["id"].as_str().expect("id").to_owned()
}

async fn connect(url: &str, token: &str) -> McpClient {
    let config = StreamableHttpClientTransportConfig::with_uri(url.to_owned()).auth_header(token);
    let transport = StreamableHttpClientTransport::from_config(config);
    ClientConfig::default().serve(transport).await.expect("MCP client connects")
}

async fn call(client: &McpClient, tool: &'static str, args: Value) -> CallToolResult {
    call_within(Duration::from_secs(60), client, tool, args).await
}

/// A tool call that must answer within `limit`.
async fn call_within(
    limit: Duration,
    client: &McpClient,
    tool: &'static str,
    args: Value,
) -> CallToolResult {
    let args = args.as_object().cloned().unwrap_or_default();
    tokio::time::timeout(
        limit,
        client.call_tool(CallToolRequestParams::new(tool).with_arguments(args)),
    )
    .await
    .unwrap_or_else(|_| panic!("{tool} did not answer within {limit:?}"))
    .expect("the call went through")
}

fn text_of(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn assert_ok(result: &CallToolResult) {
    assert_ne!(result.is_error, Some(true), "tool error: {}", text_of(result));
}

/// Reads the screen until the shell is at an empty prompt (within 30 s).
async fn wait_for_prompt(client: &McpClient) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let screen = call(client, "read_screen", json!({})).await;
        let shell = screen.structured_content.as_ref().map(|s| s["shell"].clone());
        if shell == Some(json!("prompt")) {
            return;
        }
        assert!(Instant::now() < deadline, "never back at a prompt: {}", text_of(&screen));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The terminal the agent's run_command uses, from its structured result.
fn terminal_of(result: &CallToolResult) -> String {
    result
        .structured_content
        .as_ref()
        .and_then(|s| s["terminal"].as_str())
        .expect("terminal")
        .into()
}

#[tokio::test]
async fn an_agent_works_in_the_shared_shell_with_rmcp_client() {
    let f = Fixture::new().await;
    let (token, _) = make_token(&f.server, &f.cookie, Some(&f.session)).await;
    let client = connect(&f.mcp_url(&f.session), &token).await;

    let tools = client.list_all_tools().await.expect("tools/list");
    let names: Vec<String> = tools.iter().map(|t| t.name.to_string()).collect();
    for expected in [
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
        "browser_tabs",
    ] {
        assert!(names.iter().any(|n| n == expected), "{expected} missing from {names:?}");
    }

    // The first call opens the shared shell; a person then watches it over the websocket.
    let first = call(&client, "run_command", json!({"command": "true"})).await;
    assert_ok(&first);
    let terminal = terminal_of(&first);
    let path = format!("/api/sessions/{}/terminals/{terminal}/ws", f.session);
    let origin = f.server.origin();
    let headers = [("authorization", f.bearer.as_str()), ("origin", origin.as_str())];
    let mut person = f.server.ws(&path, &headers).await.expect("websocket");
    // The end of the prompt, as the shell integration marks it.
    ws_read_until(&mut person, "\x1b]133;B").await;

    let hi = call(&client, "run_command", json!({"command": "echo hi"})).await;
    assert_ok(&hi);
    let structured = hi.structured_content.clone().expect("structured result");
    assert_eq!(structured["output"].as_str().map(str::trim), Some("hi"), "{structured}");
    assert_eq!(structured["exit_code"], 0);
    // The person saw the command typed, then its output.
    let mut seen = ws_read_until(&mut person, "echo hi").await;
    while !seen[seen.find("echo hi").unwrap_or(0) + "echo hi".len()..].contains("hi\r\n") {
        seen += &ws_read_until(&mut person, "hi\r\n").await;
    }

    let failed = call(&client, "run_command", json!({"command": "ls /nonexistent"})).await;
    assert_ok(&failed);
    assert_eq!(failed.structured_content.expect("structured")["exit_code"], 2);

    // A person mid-line: the agent is told the shell is busy, and nothing is typed over it.
    ws_type(&mut person, "ech").await;
    ws_read_until(&mut person, "ech").await;
    let busy = call(&client, "run_command", json!({"command": "echo clobber"})).await;
    assert_eq!(busy.is_error, Some(true), "{}", text_of(&busy));
    assert!(text_of(&busy).contains("busy"), "{}", text_of(&busy));
    let screen = call(&client, "read_screen", json!({})).await;
    assert!(text_of(&screen).contains("ech"), "{}", text_of(&screen));
    assert!(!text_of(&screen).contains("clobber"), "{}", text_of(&screen));
    ws_type(&mut person, "\x7f\x7f\x7f").await;
    wait_for_prompt(&client).await;
    assert_ok(&call(&client, "run_command", json!({"command": "echo free-again"})).await);

    // send_keys: Ctrl-C stops a command the agent started and gave up waiting for.
    let slow =
        call(&client, "run_command", json!({"command": "sleep 60", "timeout_ms": 300})).await;
    assert_ok(&slow);
    assert_eq!(slow.structured_content.expect("structured")["timed_out"], true);
    let keys = call(&client, "send_keys", json!({"keys": ["C-c"]})).await;
    assert_ok(&keys);
    wait_for_prompt(&client).await;
    assert_ok(&call(&client, "run_command", json!({"command": "echo after-interrupt"})).await);
    let bad_key = call(&client, "send_keys", json!({"keys": ["Hyper-X"]})).await;
    assert_eq!(bad_key.is_error, Some(true));
    assert!(text_of(&bad_key).contains("known keys"), "{}", text_of(&bad_key));

    // Files round trip, and the shell sees what the agent wrote.
    let wrote =
        call(&client, "write_file", json!({"path": "notes/todo.txt", "content": "ship it\n"}))
            .await;
    assert_ok(&wrote);
    let read = call(&client, "read_file", json!({"path": "/workspace/notes/todo.txt"})).await;
    assert_ok(&read);
    assert_eq!(text_of(&read), "ship it\n");
    let cat = call(&client, "run_command", json!({"command": "cat notes/todo.txt"})).await;
    assert!(text_of(&cat).contains("ship it"), "{}", text_of(&cat));
    let listing = call(&client, "list_files", json!({"path": "notes"})).await;
    assert!(text_of(&listing).contains("/workspace/notes/todo.txt"), "{}", text_of(&listing));
    let missing = call(&client, "read_file", json!({"path": "nope.txt"})).await;
    assert_eq!(missing.is_error, Some(true));

    // exec runs out of sight; list_ports finds what the agent started.
    let exec =
        call(&client, "exec", json!({"argv": ["sh", "-c", "echo out; echo err >&2; exit 3"]}))
            .await;
    let exec_result = exec.structured_content.clone().expect("structured");
    assert_eq!(exec_result["stdout"], "out\n");
    assert_eq!(exec_result["stderr"], "err\n");
    assert_eq!(exec_result["exit_code"], 3);
    let serve = "python3 -m http.server 8765 --bind 127.0.0.1 >/dev/null 2>&1 &";
    assert_ok(&call(&client, "run_command", json!({ "command": serve })).await);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ports = call(&client, "list_ports", json!({})).await;
        if text_of(&ports).contains("8765") {
            break;
        }
        assert!(Instant::now() < deadline, "port 8765 never listed: {}", text_of(&ports));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Its preview URL, and a share link that opens it for anyone.
    let preview = call(&client, "preview_url", json!({"port": 8765, "share": true})).await;
    assert_ok(&preview);
    let found = preview.structured_content.clone().expect("structured");
    let host = format!("8765-{}.preview.localhost:{}", f.session, f.server.addr.port());
    assert_eq!(found["url"], format!("http://{host}/"));
    assert_eq!(found["listening"], true);
    let share = found["share_url"].as_str().expect("a share link").to_owned();
    let path = &share[share.find("/?flint_share=").expect("share path")..];
    let opened = f.server.request("GET", path, &[("host", &host)], "").await;
    assert_eq!(opened.status, StatusCode::SEE_OTHER, "{}", opened.body);
    let cookie =
        opened.header("set-cookie").expect("cookie").split(';').next().expect("pair").to_owned();
    let page = f.server.request("GET", "/", &[("host", &host), ("cookie", &cookie)], "").await;
    assert!(page.body.contains("Directory listing"), "{}", page.body);
    let idle = call(&client, "preview_url", json!({"port": 9999})).await;
    assert!(text_of(&idle).contains("nothing listens on port 9999 yet"), "{}", text_of(&idle));

    // Bad arguments are a tool error the model can read, not a broken transport.
    let invalid = call(&client, "run_command", json!({"cmd": "ls"})).await;
    assert_eq!(invalid.is_error, Some(true));
    assert!(text_of(&invalid).contains("invalid arguments"), "{}", text_of(&invalid));

    // A secret typed by the agent never reaches the audit log.
    let secret = "export API_TOKEN=sup3rs3cr3tvalue; echo set";
    assert_ok(&call(&client, "run_command", json!({ "command": secret })).await);
    let events = f.events().await;
    let log = serde_json::to_string(&events).expect("json");
    assert!(!log.contains("sup3rs3cr3tvalue"), "the secret leaked into the audit log");
    let runs: Vec<&Value> = events.iter().filter(|e| e["kind"] == "mcp.run_command").collect();
    assert!(runs.len() >= 8, "every call is an audit event: {log}");
    assert!(runs.iter().all(|e| e["actor"] == "agent: claude" && e["status"] != "started"));
    assert!(runs.iter().any(|e| e["summary"] == "echo hi" && e["status"] == "ok"));
    assert!(runs.iter().any(|e| e["status"] == "error"), "the busy call is recorded as failed");
    assert!(runs.iter().all(|e| e["terminal"] == terminal.as_str()));
    let _ = client.cancel().await;
}

/// A raw `initialize` POST, to see the guard's answers without a client library.
async fn initialize(f: &Fixture, session: &str, headers: &[(&str, &str)]) -> Reply {
    let body = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "curl", "version": "1"}}
    })
    .to_string();
    let mut all = vec![
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
    ];
    all.extend_from_slice(headers);
    f.server.request("POST", &format!("/api/sessions/{session}/mcp"), &all, &body).await
}

#[tokio::test]
async fn the_endpoint_admits_only_the_sessions_own_tokens_from_our_origin() {
    let f = Fixture::new().await;
    let (token, _) = make_token(&f.server, &f.cookie, Some(&f.session)).await;
    let bearer = format!("Bearer {token}");
    let ok = initialize(&f, &f.session, &[("authorization", &bearer)]).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    let user_wide = initialize(&f, &f.session, &[("authorization", &f.bearer)]).await;
    assert_eq!(user_wide.status, StatusCode::OK, "{}", user_wide.body);

    let wrong = initialize(&f, &f.session, &[("authorization", "Bearer flint_0000")]).await;
    wrong.assert_error(StatusCode::UNAUTHORIZED);
    assert!(wrong.header("www-authenticate").is_some_and(|v| v.starts_with("Bearer")));
    // The browser's cookie is not an MCP credential.
    initialize(&f, &f.session, &[("cookie", &f.cookie)])
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
    initialize(&f, &f.session, &[("authorization", &bearer), ("origin", "http://evil.example")])
        .await
        .assert_error(StatusCode::FORBIDDEN);
    let origin = f.server.origin();
    let same_origin =
        initialize(&f, &f.session, &[("authorization", &bearer), ("origin", &origin)]).await;
    assert_eq!(same_origin.status, StatusCode::OK, "{}", same_origin.body);

    // Session A's token cannot reach session B, not even to learn that it exists.
    let other = new_session(&f.server, &f.bearer, TEST_SESSION).await;
    initialize(&f, &other, &[("authorization", &bearer)]).await.assert_error(StatusCode::NOT_FOUND);
    initialize(&f, "nosuchsession", &[("authorization", &f.bearer)])
        .await
        .assert_error(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_client_ending_its_mcp_session_gets_a_success_status() {
    let f = Fixture::new().await;
    let (token, _) = make_token(&f.server, &f.cookie, Some(&f.session)).await;
    let bearer = format!("Bearer {token}");
    let opened = initialize(&f, &f.session, &[("authorization", &bearer)]).await;
    assert_eq!(opened.status, StatusCode::OK, "{}", opened.body);
    let id = opened.header("mcp-session-id").expect("an MCP session id").to_owned();
    let path = format!("/api/sessions/{}/mcp", f.session);
    let headers = [("authorization", bearer.as_str()), ("mcp-session-id", id.as_str())];
    // The official Python SDK logs "Session termination failed" for anything but 200 or 204.
    let ended = f.server.request("DELETE", &path, &headers, "").await;
    assert!(
        [StatusCode::OK, StatusCode::NO_CONTENT].contains(&ended.status),
        "DELETE answered {}: {}",
        ended.status,
        ended.body
    );
    // And it did end: a request in that session is refused now.
    let ping = json!({"jsonrpc": "2.0", "id": 2, "method": "ping"}).to_string();
    let json_headers = [
        headers[0],
        headers[1],
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
    ];
    let after = f.server.request("POST", &path, &json_headers, &ping).await;
    assert!(after.status.is_client_error(), "{} {}", after.status, after.body);
}

#[tokio::test]
async fn revoking_the_token_cancels_the_call_in_flight_and_refuses_the_next() {
    let f = Fixture::new().await;
    let (token, token_id) = make_token(&f.server, &f.cookie, Some(&f.session)).await;
    let client = connect(&f.mcp_url(&f.session), &token).await;
    // This test is about revocation: start from a shell that is surely at its prompt.
    wait_for_prompt(&client).await;
    assert_ok(&call(&client, "run_command", json!({"command": "true"})).await);
    let origin = f.server.origin();
    let mut feed = f
        .server
        .ws("/api/events/ws", &[("cookie", &f.cookie), ("origin", &origin)])
        .await
        .expect("events websocket");

    let slow = tokio::spawn(async move {
        let started = Instant::now();
        let args = json!({"command": "sleep 45", "timeout_ms": 60000});
        let result = client
            .call_tool(
                CallToolRequestParams::new("run_command")
                    .with_arguments(args.as_object().cloned().unwrap_or_default()),
            )
            .await;
        (result, started.elapsed(), client)
    });
    // The owner's events websocket shows the call running, live; then "the UI" revokes.
    let started = next_activity(&mut feed, |e| e["summary"] == "sleep 45").await;
    assert_eq!(started["status"], "started", "{started}");
    assert_eq!(started["actor"], "agent: claude");
    assert_eq!(started["token_id"], token_id.as_str());
    assert!(started["terminal"].as_str().is_some(), "{started}");
    let revoked = f
        .server
        .request(
            "DELETE",
            &format!("/api/tokens/{token_id}"),
            &[("cookie", &f.cookie), ("x-flint-csrf", "1")],
            "",
        )
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.body);

    let (result, elapsed, client) = slow.await.expect("join");
    let ended = next_activity(&mut feed, |e| e["id"] == started["id"]).await;
    assert_eq!(ended["status"], "cancelled", "{ended}");
    assert!(elapsed < Duration::from_secs(30), "the call was cut, not waited out: {elapsed:?}");
    if let Ok(result) = &result {
        assert_eq!(result.is_error, Some(true), "{}", text_of(result));
    }
    let next = client
        .call_tool(CallToolRequestParams::new("run_command").with_arguments(
            json!({"command": "echo again"}).as_object().cloned().unwrap_or_default(),
        ))
        .await;
    assert!(next.is_err() || next.as_ref().is_ok_and(|r| r.is_error == Some(true)));
    let events = f.events().await;
    assert!(
        events.iter().any(|e| e["summary"] == "sleep 45" && e["status"] == "cancelled"),
        "{events:?}"
    );
    assert!(!events.iter().any(|e| e["summary"] == "echo again" && e["status"] == "ok"));
    assert!(events.iter().any(|e| e["kind"] == "token.revoke"));
    // The shell is free again: the agent's command was interrupted with it.
    let ws_token = format!("Bearer {}", make_token(&f.server, &f.cookie, Some(&f.session)).await.0);
    let next_client = connect(&f.mcp_url(&f.session), ws_token.trim_start_matches("Bearer ")).await;
    // (Its next prompt is drawn a moment after the interrupt.)
    wait_for_prompt(&next_client).await;
    assert_ok(&call(&next_client, "run_command", json!({"command": "echo shell-free"})).await);
}

/// The next activity-feed entry on an events websocket that `pick` accepts, within 30 s.
async fn next_activity(ws: &mut Ws, pick: impl Fn(&Value) -> bool) -> Value {
    use futures_util::StreamExt as _;
    use tokio_tungstenite::tungstenite::Message;
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    let message: Value = serde_json::from_str(&text).expect("json");
                    if message["type"] == "activity" && pick(&message["event"]) {
                        return message["event"].clone();
                    }
                }
                Some(Ok(_)) => {}
                other => panic!("events websocket ended: {other:?}"),
            }
        }
    });
    found.await.expect("the activity entry arrived in time")
}

/// A pid inside the session's sandbox: a process of its cgroup.
fn sandbox_pid(data_dir: &std::path::Path, session: &str) -> u32 {
    let instance = &server::auth::hash_token(&data_dir.to_string_lossy())[..12];
    for root in ["/sys/fs/cgroup/pids/flint", "/sys/fs/cgroup/flint"] {
        let procs = format!("{root}/{instance}/{session}/cgroup.procs");
        if let Ok(text) = std::fs::read_to_string(&procs) {
            // The agent as the sandbox runs it (the launcher around it lives outside).
            let agent = text.lines().filter_map(|l| l.trim().parse::<u32>().ok()).find(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| c.starts_with(b"/opt/flint/guest-agent\0serve\0"))
            });
            if let Some(pid) = agent {
                return pid;
            }
        }
    }
    panic!("no agent process found in the cgroup of session {session}");
}

/// `guest-agent mcp` started inside the session's sandbox (its namespaces, its root, its
/// `/run/flint`), with `env` added, as an MCP client over its stdio.
async fn in_sandbox_client(f: &Fixture, env: &[(&str, &str)]) -> McpClient {
    let pid = sandbox_pid(f._dir.path(), &f.session);
    let mut command = tokio::process::Command::new("nsenter");
    command
        .args(["-t", &pid.to_string(), "-a", "-r", "-w", "/opt/flint/guest-agent", "mcp"])
        .kill_on_drop(true)
        .env("FLINT_AGENT_LOG", "warn")
        .envs(env.iter().copied());
    let transport = rmcp::transport::TokioChildProcess::new(command).expect("spawn nsenter");
    ClientConfig::default().serve(transport).await.expect("stdio MCP handshake")
}

#[tokio::test]
async fn guest_agent_mcp_serves_the_tools_over_stdio_inside_the_sandbox() {
    let f = Fixture::new().await;
    let client = in_sandbox_client(&f, &[]).await;
    let tools = client.list_all_tools().await.expect("tools/list");
    assert!(tools.iter().any(|t| t.name == "run_command"));

    let run =
        call(&client, "run_command", json!({"command": "echo from-inside; echo $FLINT_SESSION"}))
            .await;
    assert_ok(&run);
    assert!(text_of(&run).contains("from-inside"), "{}", text_of(&run));
    assert!(text_of(&run).contains(&f.session), "it ran in this session: {}", text_of(&run));
    // Shells in the sandbox know its preview URLs; `guest-agent mcp` started from one (as a
    // coding CLI would) answers preview_url with them; share links are the server's to make.
    let echo = call(&client, "run_command", json!({"command": "echo $FLINT_PREVIEW_URL"})).await;
    let template =
        format!("http://{{port}}-{}.preview.localhost:{}/", f.session, f.server.addr.port());
    assert!(text_of(&echo).contains(&template), "{}", text_of(&echo));
    let _ = client.cancel().await;
    let client = in_sandbox_client(&f, &[("FLINT_PREVIEW_URL", &template)]).await;
    let preview = call(&client, "preview_url", json!({"port": 8000})).await;
    assert_ok(&preview);
    let expected = format!("http://8000-{}.preview.localhost:{}/", f.session, f.server.addr.port());
    assert!(text_of(&preview).starts_with(&expected), "{}", text_of(&preview));
    let share = call(&client, "preview_url", json!({"port": 8000, "share": true})).await;
    assert_eq!(share.is_error, Some(true), "{}", text_of(&share));
    assert_ok(&call(&client, "write_file", json!({"path": "in.txt", "content": "x"})).await);
    let read = call(&client, "read_file", json!({"path": "in.txt"})).await;
    assert_eq!(text_of(&read), "x");
    let _ = client.cancel().await;

    // Its calls reach the audit log, marked as the sandbox's word.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let events = f.events().await;
        let guest: Vec<&Value> = events.iter().filter(|e| e["guest_reported"] == true).collect();
        if guest.iter().any(|e| e["kind"] == "mcp.run_command")
            && guest.iter().any(|e| e["kind"] == "mcp.read_file")
        {
            assert!(guest.iter().all(|e| e["actor"] == "in-sandbox agent"), "{guest:?}");
            break;
        }
        assert!(Instant::now() < deadline, "guest reports never arrived: {events:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
