//! The official MCP Python SDK (`pip install mcp`, run by `mcp_client.py`) as a second client
//! no one here wrote, through the same checks as the rmcp client.

use super::*;

/// The Python client's side of the conversation: its lines on stdout, `go` on its stdin.
struct PythonClient {
    child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    seen: Vec<String>,
}

impl PythonClient {
    /// Its next line that starts with `prefix`, with the prefix cut (within 60 s).
    async fn expect(&mut self, prefix: &str) -> String {
        let limit = Duration::from_secs(60);
        loop {
            let line = match tokio::time::timeout(limit, self.lines.next_line()).await {
                Ok(Ok(Some(line))) => line,
                other => self.fail(&format!("no `{prefix}` line ({other:?})")).await,
            };
            self.seen.push(line.clone());
            if let Some(rest) = line.strip_prefix(prefix) {
                return rest.trim().to_owned();
            }
        }
    }

    async fn go(&mut self) {
        use tokio::io::AsyncWriteExt as _;
        let stdin = self.child.stdin.as_mut().expect("stdin");
        stdin.write_all(b"go\n").await.expect("write to the python client");
    }

    /// Fails the test with everything the client printed.
    async fn fail(&mut self, why: &str) -> ! {
        use tokio::io::AsyncReadExt as _;
        let _ = self.child.start_kill();
        let mut stderr = String::new();
        if let Some(mut err) = self.child.stderr.take() {
            let _ = err.read_to_string(&mut stderr).await;
        }
        panic!("python client: {why}\n{}\n{stderr}", self.seen.join("\n"));
    }
}

#[tokio::test]
async fn the_python_sdk_is_a_second_client() {
    use tokio::io::AsyncBufReadExt as _;
    let Some(python) = std::env::var_os("FLINT_MCP_PYTHON") else {
        println!(
            "skipped: FLINT_MCP_PYTHON (a python with the `mcp` package) is not set; `cargo xtask test` sets it"
        );
        return;
    };
    let f = Fixture::new().await;
    let other = new_session(&f.server, &f.bearer, TEST_SESSION).await;
    let (token, _) = make_token(&f.server, &f.cookie, Some(&f.session)).await;
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/server/mcp_client.py");
    let mut child = tokio::process::Command::new(python)
        .arg(script)
        .arg(f.mcp_url(&f.session))
        .arg(&token)
        .arg(f.mcp_url(&other))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python runs");
    let stdout = child.stdout.take().expect("stdout");
    let mut py =
        PythonClient { child, lines: tokio::io::BufReader::new(stdout).lines(), seen: vec![] };

    assert_eq!(py.expect("wrong token:").await, "401");
    assert_eq!(py.expect("foreign origin:").await, "403");
    assert_eq!(py.expect("other session:").await, "404");
    let tools = py.expect("tools:").await;
    assert!(tools.split(' ').any(|t| t == "list_ports"), "{tools}");

    // A person watches the shell the agent types into.
    let terminal = py.expect("terminal:").await;
    let path = format!("/api/sessions/{}/terminals/{terminal}/ws", f.session);
    let origin = f.server.origin();
    let headers = [("authorization", f.bearer.as_str()), ("origin", origin.as_str())];
    let mut person = f.server.ws(&path, &headers).await.expect("websocket");
    ws_read_until(&mut person, "\x1b]133;B").await;
    py.expect("wait: watching").await;
    py.go().await;
    assert_eq!(py.expect("run_command:").await, "hi-from-python exit 0");
    // The command typed, then its output.
    let typed = "echo hi-from-python";
    let mut seen = ws_read_until(&mut person, typed).await;
    while !seen[seen.find(typed).unwrap_or(0) + typed.len()..].contains("hi-from-python\r\n") {
        seen += &ws_read_until(&mut person, "hi-from-python\r\n").await;
    }

    // Half a line typed by the person: the agent hears "busy".
    py.expect("wait: person typing").await;
    ws_type(&mut person, "ech").await;
    ws_read_until(&mut person, "ech").await;
    py.go().await;
    let busy = py.expect("busy:").await;
    assert!(busy.contains("busy"), "{busy}");
    py.expect("wait: person done").await;
    ws_type(&mut person, "\x7f\x7f\x7f").await;
    py.go().await;

    py.expect("read_file: round trip ok").await;
    py.expect("read_file: missing file is a tool error").await;
    assert_eq!(py.expect("list_ports:").await, "8766");
    py.expect("secret: typed").await;
    let status = tokio::time::timeout(Duration::from_secs(30), py.child.wait()).await;
    if !matches!(status, Ok(Ok(s)) if s.success()) {
        py.fail(&format!("did not exit cleanly: {status:?}")).await;
    }
    // Leaving its session, the SDK sends DELETE and warns on anything but 200 or 204.
    let mut stderr = String::new();
    if let Some(mut err) = py.child.stderr.take() {
        use tokio::io::AsyncReadExt as _;
        let _ = err.read_to_string(&mut stderr).await;
    }
    assert!(!stderr.contains("Session termination failed"), "{stderr}");

    let events = f.events().await;
    let log = serde_json::to_string(&events).expect("json");
    assert!(!log.contains("pyth0ns3cr3tvalue"), "the secret leaked into the audit log");
    assert!(events.iter().any(|e| e["summary"] == "echo hi-from-python" && e["status"] == "ok"));
    assert!(
        events.iter().any(|e| e["kind"] == "mcp.run_command" && e["status"] == "error"),
        "the busy call is recorded as failed: {log}"
    );
}
