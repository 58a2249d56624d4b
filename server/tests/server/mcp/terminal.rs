//! An agent at the shared terminal under gVisor (the driver users get), in the default
//! image: what a person's keys do there, the MCP tools do too. Ctrl-C and Ctrl-Z through
//! `send_keys` reach the foreground job, full-screen programs draw and quit, a password
//! prompt does not echo, and `npm` returns to the prompt under `run_command`.

use std::time::{Duration, Instant};

use serde_json::json;

use super::*;

/// The default image under gVisor: top, htop, vim, Python and npm.
const DEFAULT_SESSION: &str = r#"{"image":"default","cpus":1,"memory_mb":1024}"#;

/// Reads the screen until `found` accepts its text (within 30 s); that text.
async fn wait_for_screen(client: &McpClient, what: &str, found: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = text_of(&call(client, "read_screen", json!({})).await);
        if found(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "{what} never showed; the screen:\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn keys(client: &McpClient, args: serde_json::Value) {
    assert_ok(&call(client, "send_keys", args).await);
}

/// `run_command` that must finish; its output, trimmed.
async fn run(client: &McpClient, command: &str) -> String {
    let result = call(client, "run_command", json!({ "command": command })).await;
    assert_ok(&result);
    let structured = result.structured_content.expect("structured result");
    assert_eq!(structured["timed_out"], false, "{command} timed out: {structured}");
    structured["output"].as_str().unwrap_or_default().trim().to_owned()
}

#[tokio::test]
async fn an_agent_interrupts_stops_and_drives_full_screen_programs_under_gvisor() {
    crate::support::build_image("default");
    let f = Fixture::with(&["--driver", "gvisor"], DEFAULT_SESSION).await;
    let (token, _) = make_token(&f.server, &f.cookie, Some(&f.session)).await;
    let client = connect(&f.mcp_url(&f.session), &token).await;

    // The shell leads its session and /dev/tty is its terminal.
    assert_eq!(
        run(&client, r#"test "$(ps -o sid= -p $$ | tr -d ' ')" = "$$" && echo leader"#).await,
        "leader"
    );
    assert_eq!(
        run(&client, "echo to-the-tty > /dev/tty && echo tty-ok").await,
        "to-the-tty\ntty-ok"
    );

    // C-c interrupts what run_command gave up waiting for: the shell saw SIGINT (130).
    let slow =
        call(&client, "run_command", json!({"command": "sleep 300", "timeout_ms": 500})).await;
    assert_eq!(slow.structured_content.expect("structured")["timed_out"], true);
    keys(&client, json!({"keys": ["C-c"]})).await;
    wait_for_prompt(&client).await;
    assert_eq!(run(&client, "echo $?").await, "130");

    // C-z stops it; fg resumes it; C-c ends it.
    let slow =
        call(&client, "run_command", json!({"command": "sleep 301", "timeout_ms": 500})).await;
    assert_eq!(slow.structured_content.expect("structured")["timed_out"], true);
    keys(&client, json!({"keys": ["C-z"]})).await;
    wait_for_screen(&client, "the stopped job", |s| {
        s.contains("Stopped") && s.contains("sleep 301")
    })
    .await;
    wait_for_prompt(&client).await;
    assert!(run(&client, "jobs").await.contains("Stopped"));
    let resumed = call(&client, "run_command", json!({"command": "fg", "timeout_ms": 500})).await;
    assert_eq!(resumed.structured_content.expect("structured")["timed_out"], true);
    keys(&client, json!({"keys": ["C-c"]})).await;
    wait_for_prompt(&client).await;
    assert_eq!(run(&client, "echo $?").await, "130");

    // npm probes its terminal and exits.
    let version = run(&client, "npm --version").await;
    assert!(version.split('.').count() == 3, "npm --version said {version:?}");

    // top and htop draw and quit with q.
    keys(&client, json!({"text": "top -d 1", "keys": ["Enter"]})).await;
    wait_for_screen(&client, "top", |s| s.contains("PID") && s.contains("USER")).await;
    keys(&client, json!({"text": "q"})).await;
    wait_for_prompt(&client).await;
    keys(&client, json!({"text": "htop", "keys": ["Enter"]})).await;
    wait_for_screen(&client, "htop", |s| s.contains("Quit") && s.contains("Mem")).await;
    keys(&client, json!({"text": "q"})).await;
    wait_for_prompt(&client).await;

    // vim edits and writes a file.
    keys(&client, json!({"text": "vim /workspace/agent.txt", "keys": ["Enter"]})).await;
    wait_for_screen(&client, "vim", |s| s.contains("agent.txt")).await;
    keys(&client, json!({"text": "iwritten by the agent in vim", "keys": ["Escape"]})).await;
    keys(&client, json!({"text": ":wq", "keys": ["Enter"]})).await;
    wait_for_prompt(&client).await;
    let read = call(&client, "read_file", json!({"path": "/workspace/agent.txt"})).await;
    assert_eq!(text_of(&read), "written by the agent in vim\n");

    // A password prompt does not echo what is typed.
    keys(
        &client,
        json!({
            "text": "python3 -c \"import getpass; print('length', len(getpass.getpass('pw: ')))\"",
            "keys": ["Enter"],
        }),
    )
    .await;
    // The prompt on a line of its own (the command line shows `pw: ` too, before Python runs).
    wait_for_screen(&client, "the password prompt", |s| s.lines().any(|l| l.trim() == "pw:")).await;
    keys(&client, json!({"text": "open-sesame", "keys": ["Enter"]})).await;
    let screen = wait_for_screen(&client, "getpass's answer", |s| s.contains("length 11")).await;
    assert!(!screen.contains("open-sesame") && !screen.contains("Warning"), "{screen}");
}
