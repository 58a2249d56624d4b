//! Exec: collected and streamed output, stdin, exit codes, timeouts that kill the group.

use proto::exec::{ExecDown, ExecRequest, ExecUp};
use serde_bytes::ByteBuf;

use crate::common::*;

fn sh(script: &str) -> ExecRequest {
    ExecRequest { argv: vec!["sh".into(), "-c".into(), script.into()], ..ExecRequest::default() }
}

#[tokio::test]
async fn collects_stdout_stderr_and_the_exit_code() {
    let agent = TestAgent::start().await;
    let mut request = sh("echo out; echo err >&2; echo $FLINT_X; pwd; exit 7");
    request.env.insert("FLINT_X".into(), "from-env".into());
    let done = agent.client.exec_collect(request).await.expect("exec");
    let ExecDown::Finished { stdout, stderr, truncated, status } = done else {
        panic!("expected Finished, got {done:?}")
    };
    let workdir = path_str(&agent.workdir());
    assert_eq!(String::from_utf8_lossy(&stdout), format!("out\nfrom-env\n{workdir}\n"));
    assert_eq!(&stderr[..], b"err\n");
    assert!(!truncated);
    assert_eq!(status.code, Some(7));
    assert!(!status.timed_out);
}

#[tokio::test]
async fn streams_stdin_through_and_output_back_as_bytes() {
    let agent = TestAgent::start().await;
    let request = ExecRequest { argv: vec!["cat".into()], stdin: true, ..ExecRequest::default() };
    let (input, mut output) = agent.client.exec(request).await.expect("exec");
    let payload = noise(300_000, 7);
    for chunk in payload.chunks(50_000) {
        input.send(&ExecUp::Stdin(ByteBuf::from(chunk.to_vec()))).await.expect("stdin");
    }
    input.send(&ExecUp::StdinEnd).await.expect("end");
    let mut got = Vec::new();
    let status = loop {
        match output.next().await.expect("frame").expect("not ended") {
            ExecDown::Started { pid } => assert!(pid > 0),
            ExecDown::Stdout(data) => got.extend_from_slice(&data),
            ExecDown::Exit(status) => break status,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert!(status.success());
    assert_eq!(sha256(&got), sha256(&payload));
}

#[tokio::test]
async fn a_timeout_kills_the_command_and_its_children() {
    let agent = TestAgent::start().await;
    let mut request = sh("sleep 300 & echo child=$!; sleep 300");
    request.timeout_ms = Some(500);
    let (_input, mut output) = agent.client.exec(request).await.expect("exec");
    let mut text = String::new();
    let status = loop {
        match output.next().await.expect("frame").expect("not ended") {
            ExecDown::Stdout(data) => text.push_str(&String::from_utf8_lossy(&data)),
            ExecDown::Exit(status) => break status,
            _ => {}
        }
    };
    assert!(status.timed_out, "{status:?}");
    assert_eq!(status.signal, Some(9));
    let child: u32 =
        text.trim().strip_prefix("child=").and_then(|p| p.parse().ok()).expect("child pid");
    eventually("the background child to die", || !alive(child)).await;
}

#[tokio::test]
async fn a_missing_program_is_a_clear_error() {
    let agent = TestAgent::start().await;
    let request = ExecRequest { argv: vec!["/no/such/program".into()], ..ExecRequest::default() };
    let err = agent.client.exec_collect(request).await.expect_err("must fail");
    assert_eq!(err.code(), proto::error::ErrorCode::NotFound, "{err}");
    assert!(err.to_string().contains("/no/such/program"), "{err}");
}
