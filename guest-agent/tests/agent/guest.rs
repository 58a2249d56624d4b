//! The restricted in-sandbox socket (`--guest-listen`): no secret, only `guest_allowed`
//! routes; and the guest reports posted there, read back by the server's `audit/events`.

use bytes::Bytes;
use guest_agent::Error;
use guest_agent::client::{Client, full};
use http::{Method, StatusCode};
use proto::audit::{GuestReport, ToolReport, ToolStatus};
use proto::error::ErrorCode;
use proto::exec::{ExecDown, ExecRequest};
use proto::routes::{Body, ROUTES, Route};
use proto::terminal::{AttachQuery, RunCommand, ShellState};

use crate::common::*;

async fn guest(agent: &TestAgent) -> Client {
    Client::connect_guest(&agent.guest_socket).await.expect("connect to the guest socket")
}

fn report(tool: &str, status: ToolStatus) -> ToolReport {
    ToolReport {
        tool: tool.to_owned(),
        summary: format!("{tool} called"),
        status,
        error: (status == ToolStatus::Error).then(|| "it failed".to_owned()),
        duration_ms: 12,
    }
}

fn denied<T>(result: Result<T, Error>, what: &str) {
    match result {
        Err(Error::Api { code: ErrorCode::PermissionDenied, message }) => {
            assert!(message.contains("not available on the in-sandbox socket"), "{message}");
        }
        Err(other) => panic!("{what} should be refused on the guest socket, got {other:?}"),
        Ok(_) => panic!("{what} was served on the guest socket"),
    }
}

#[tokio::test]
async fn the_guest_socket_runs_commands_and_files_without_a_secret() {
    let agent = TestAgent::start().await;
    let guest = guest(&agent).await;
    let id = guest.create_terminal(&integrated_shell()).await.expect("create").id;
    wait_for_shell(&guest, &id, ShellState::Prompt).await;
    let run = RunCommand { command: "echo from-'guest'".to_owned(), ..RunCommand::default() };
    assert_eq!(guest.run(&id, &run).await.expect("run").output, "from-guest\n");

    let path = path_str(&agent.workdir().join("note.txt"));
    guest.write(&path, "written by the guest").await.expect("write");
    assert_eq!(&guest.read(&path).await.expect("read")[..], b"written by the guest");

    // Programs in the sandbox find the socket through the environment.
    let request = ExecRequest {
        argv: vec!["printenv".into(), "FLINT_MCP_SOCKET".into()],
        ..ExecRequest::default()
    };
    let ExecDown::Finished { stdout, .. } = guest.exec_collect(request).await.expect("exec") else {
        panic!("exec did not finish")
    };
    assert_eq!(String::from_utf8_lossy(&stdout).trim_end(), path_str(&agent.guest_socket));
}

#[tokio::test]
async fn the_guest_socket_refuses_every_route_it_does_not_allow() {
    // The browser routes the guest may use answer at once without a Chromium to start
    // (`browser.rs` drives a real one through this socket).
    let agent = TestAgent::start_with_env(&[("FLINT_CHROMIUM", "/nonexistent/chromium")]).await;
    let id = new_shell(&agent.client).await;
    let guest = guest(&agent).await;

    denied(guest.tunnel(1).await, "tunnel");
    denied(guest.attach(&id, AttachQuery::default()).await, "attach");
    denied(guest.audit_events().await, "audit events");
    denied(guest.kill_terminal(&id).await, "kill");
    denied(guest.tar("/").await, "tar");

    // Every route the table does not allow answers 403 before its handler runs (so no side
    // effect), and every allowed one is served.
    for decl in ROUTES {
        let path =
            decl.pattern.replace("{id}", id.as_str()).replace("{port}", "1").replace("{tab}", "1");
        let route = Route::parse(decl.method, &path).expect("declared route parses");
        let body = match decl.request {
            Body::Json => Bytes::from_static(b"{}"),
            _ => Bytes::new(),
        };
        let method = Method::from_bytes(decl.method.name().as_bytes()).expect("method");
        let request = guest.request(method, &path).body(full(body)).expect("request");
        let status = guest.send(request).await.expect("send").status();
        if route.guest_allowed() {
            assert_ne!(status, StatusCode::FORBIDDEN, "{path} is allowed");
        } else {
            assert_eq!(status, StatusCode::FORBIDDEN, "{path} is not allowed");
        }
        assert_ne!(status, StatusCode::UNAUTHORIZED, "{path}: the guest socket takes no secret");
    }
    // The terminal outlived every refused DELETE.
    assert!(agent.client.terminal(&id).await.expect("terminal").exit.is_none());

    // The main socket still wants its secret.
    let anonymous = Client::connect(&agent.listen, "wrong").await;
    match anonymous.expect("connect").info().await {
        Err(Error::Api { code, .. }) => assert_eq!(code, ErrorCode::Unauthorized),
        other => panic!("the main socket answered a wrong secret: {other:?}"),
    }
}

#[tokio::test]
async fn reports_reach_the_reader_in_order_including_those_posted_before_it_came() {
    let agent = TestAgent::start().await;
    let guest = guest(&agent).await;
    let first = guest.report(&report("run_command", ToolStatus::Ok)).await.expect("report");
    let second = guest.report(&report("read_file", ToolStatus::Error)).await.expect("report");
    assert_eq!((first.seq, second.seq), (1, 2));

    let mut events = agent.client.audit_events().await.expect("audit events");
    let mut next = async || -> GuestReport {
        tokio::time::timeout(DEADLINE, events.next())
            .await
            .expect("a report in time")
            .expect("frame")
            .expect("the stream goes on")
    };
    let a = next().await;
    let b = next().await;
    assert_eq!((a.seq, a.report.tool.as_str()), (1, "run_command"));
    assert_eq!((b.seq, b.report.error.as_deref()), (2, Some("it failed")));
    assert!(a.at_ms > 0 && a.at_ms <= b.at_ms);

    // Live: a report posted now arrives without reconnecting.
    let mut long = report("write_file", ToolStatus::Ok);
    long.summary = "x".repeat(10_000);
    guest.report(&long).await.expect("report");
    let c = next().await;
    assert_eq!(c.seq, 3);
    assert!(c.report.summary.len() <= 2048, "summaries are capped: {}", c.report.summary.len());

    // A report the guest cannot make: unknown fields are refused.
    let request = guest
        .request(Method::POST, "/v1/audit")
        .body(full(r#"{"tool":"x","summary":"","status":"ok","duration_ms":1,"admin":true}"#))
        .expect("request");
    assert_eq!(guest.send(request).await.expect("send").status(), StatusCode::BAD_REQUEST);
}
