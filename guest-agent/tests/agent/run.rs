//! Running command lines at a shared shell's prompt (OSC 133 shell integration), raw input,
//! and the shell state every terminal reports.

use guest_agent::Error;
use guest_agent::client::Client;
use proto::error::ErrorCode;
use proto::terminal::{AttachQuery, Role, RunCommand, RunResult, ShellState, TerminalId};

use crate::common::*;

fn command(line: &str) -> RunCommand {
    RunCommand { command: line.to_owned(), ..RunCommand::default() }
}

/// A shell with the images' integration, once it shows its first empty prompt.
async fn ready_shell(client: &Client) -> TerminalId {
    let id = client.create_terminal(&integrated_shell()).await.expect("create terminal").id;
    wait_for_shell(client, &id, ShellState::Prompt).await;
    id
}

async fn run_ok(client: &Client, id: &TerminalId, line: &str) -> RunResult {
    client.run(id, &command(line)).await.unwrap_or_else(|e| panic!("run {line:?}: {e}"))
}

fn expect_error(result: Result<RunResult, Error>, code: ErrorCode, words: &str) {
    match result {
        Err(Error::Api { code: got, message }) => {
            assert_eq!(got, code, "{message}");
            assert!(message.contains(words), "{message:?} should say {words:?}");
        }
        other => panic!("expected {code:?}, got {other:?}"),
    }
}

#[tokio::test]
async fn a_command_line_runs_and_returns_its_output_and_exit_code() {
    let agent = TestAgent::start().await;
    let id = ready_shell(&agent.client).await;

    let hi = run_ok(&agent.client, &id, "echo hi").await;
    assert_eq!(hi.output, "hi\n");
    assert_eq!(hi.exit_code, Some(0));
    assert!(!hi.timed_out && !hi.truncated);
    assert!(hi.from < hi.to);

    // Straight after a run the prompt is ready for the next one.
    let failed = run_ok(&agent.client, &id, "false").await;
    assert_eq!((failed.output.as_str(), failed.exit_code), ("", Some(1)));

    // Colours and tabs: the escapes go, the text and tabs stay; stderr is on the terminal too.
    let coloured =
        run_ok(&agent.client, &id, r"printf '\033[31mred\033[0m\tx\n'; echo err >&2").await;
    assert_eq!(coloured.output, "red\tx\nerr\n");

    // A syntax error prints no command-start mark: its output starts after the echoed line.
    let syntax = run_ok(&agent.client, &id, "if then").await;
    assert_eq!(syntax.exit_code, Some(2));
    assert!(syntax.output.contains("syntax error"), "{:?}", syntax.output);
    assert!(!syntax.output.contains("if then"), "{:?}", syntax.output);

    // The state is kept between runs, as in any shell.
    run_ok(&agent.client, &id, "cd / && X=kept").await;
    assert_eq!(run_ok(&agent.client, &id, "echo $PWD $X").await.output, "/ kept\n");
}

#[tokio::test]
async fn a_timed_out_command_keeps_running_and_the_shell_is_busy_until_it_ends() {
    let agent = TestAgent::start().await;
    let id = ready_shell(&agent.client).await;
    let slow = RunCommand { timeout_ms: Some(300), ..command("echo started; sleep 30") };
    let result = agent.client.run(&id, &slow).await.expect("run");
    assert!(result.timed_out);
    assert_eq!(result.exit_code, None);
    assert_eq!(result.output, "started\n");

    assert_eq!(agent.client.terminal(&id).await.expect("info").shell, ShellState::Running);
    expect_error(
        agent.client.run(&id, &command("echo no")).await,
        ErrorCode::ShellBusy,
        "a command is running",
    );

    // Ctrl-C as raw input ends it; the prompt comes back and takes commands again.
    let written = agent.client.input(&id, &b"\x03"[..]).await.expect("input");
    assert_eq!(written.bytes, 1);
    wait_for_shell(&agent.client, &id, ShellState::Prompt).await;
    assert_eq!(run_ok(&agent.client, &id, "echo again").await.output, "again\n");
}

/// A person types "ec": the shell is busy for a run; two backspaces delete it, and the shell
/// is at an empty prompt again.
async fn type_then_delete(client: &Client, id: &TerminalId) {
    client.input(id, &b"ec"[..]).await.expect("input");
    wait_for_shell(client, id, ShellState::Typing).await;
    expect_error(
        client.run(id, &command("echo no")).await,
        ErrorCode::ShellBusy,
        "someone is typing",
    );
    client.input(id, &b"\x7f\x7f"[..]).await.expect("input");
    wait_for_shell(client, id, ShellState::Prompt).await;
}

#[tokio::test]
async fn a_half_typed_line_makes_the_shell_busy_until_it_is_deleted() {
    let agent = TestAgent::start().await;
    let id = ready_shell(&agent.client).await;
    // Backspaces delete it: an empty prompt again, and nothing of "ec" reaches the command.
    type_then_delete(&agent.client, &id).await;
    let result = run_ok(&agent.client, &id, "echo typed-'clean'").await;
    assert_eq!(result.output, "typed-clean\n");
    assert_eq!(result.exit_code, Some(0));
}

#[tokio::test]
async fn bad_command_lines_are_refused_before_anything_is_typed() {
    let agent = TestAgent::start().await;
    let id = ready_shell(&agent.client).await;
    for line in ["echo a\necho b", "echo a\r", "", "   "] {
        let words = if line.trim().is_empty() { "empty" } else { "join commands with ;" };
        expect_error(agent.client.run(&id, &command(line)).await, ErrorCode::BadRequest, words);
    }
    let too_long = RunCommand { timeout_ms: Some(u64::MAX), ..command("true") };
    expect_error(agent.client.run(&id, &too_long).await, ErrorCode::BadRequest, "timeout_ms");
    let info = agent.client.terminal(&id).await.expect("info");
    assert_eq!(info.shell, ShellState::Prompt, "nothing was typed");
    let missing = TerminalId::parse("999").expect("id");
    expect_error(agent.client.run(&missing, &command("true")).await, ErrorCode::NotFound, "999");
}

#[tokio::test]
async fn a_shell_without_integration_is_refused_and_reported_unknown() {
    let agent = TestAgent::start().await;
    let id = new_shell(&agent.client).await;
    let (_input, mut output) = attach(&agent.client, &id, AttachQuery::default()).await;
    read_until_text(&mut output, &mut Seen::default(), "flint$ ").await;
    expect_error(
        agent.client.run(&id, &command("echo hi")).await,
        ErrorCode::NoShellIntegration,
        "OSC 133",
    );
    assert_eq!(agent.client.terminal(&id).await.expect("info").shell, ShellState::Unknown);
}

#[tokio::test]
async fn long_output_keeps_its_tail() {
    let agent = TestAgent::start().await;
    let id = ready_shell(&agent.client).await;
    let request = RunCommand { max_output_bytes: Some(1000), ..command("seq 1 20000") };
    let result = agent.client.run(&id, &request).await.expect("run");
    assert!(result.truncated);
    assert_eq!(result.exit_code, Some(0));
    assert!(result.output.len() <= 1000 && result.output.len() > 900, "{}", result.output.len());
    assert!(result.output.ends_with("\n19999\n20000\n"), "{:?}", result.output);

    let whole = run_ok(&agent.client, &id, "seq 1 3").await;
    assert!(!whole.truncated);
    assert_eq!(whole.output, "1\n2\n3\n");
}

#[tokio::test]
async fn an_attacher_sees_the_command_typed_and_its_output() {
    let agent = TestAgent::start().await;
    let id = ready_shell(&agent.client).await;
    let viewer = AttachQuery { role: Role::Viewer, offset: None };
    let (_input, mut output) = attach(&agent.client, &id, viewer).await;
    let result = run_ok(&agent.client, &id, "echo seen-'by'-viewer").await;
    let mut seen = Seen::default();
    read_until_text(&mut output, &mut seen, "seen-by-viewer\r\n").await;
    let text = seen.text();
    let typed = text.find("echo seen-'by'-viewer").expect("the command line is echoed");
    assert!(typed < text.find("seen-by-viewer\r\n").expect("output"), "{text:?}");
    assert_eq!(result.output, "seen-by-viewer\n");
    // The run's offsets are the attacher's offsets (its end is the `D` mark, which may come
    // after the output in a later frame).
    read_until(&mut output, &mut seen, "the run's end", |s| s.next_offset >= Some(result.to)).await;
    let start = seen.first_offset.expect("offset");
    assert!(result.from >= start && result.to <= seen.next_offset.expect("end"));
    let typed_at = usize::try_from(result.from - start).expect("small");
    assert!(text.as_bytes()[typed_at..].starts_with(b"echo seen-"), "{text:?}");
}

#[tokio::test]
async fn the_shell_state_goes_prompt_running_prompt_and_one_run_at_a_time() {
    let agent = TestAgent::start().await;
    let id = ready_shell(&agent.client).await;
    let client = agent.client.clone();
    let run_id = id.clone();
    let running = tokio::spawn(async move {
        let request =
            RunCommand { timeout_ms: Some(20_000), ..command("read -r line; echo got-$line") };
        client.run(&run_id, &request).await
    });
    wait_for_shell(&agent.client, &id, ShellState::Running).await;
    expect_error(
        agent.client.run(&id, &command("echo second")).await,
        ErrorCode::ShellBusy,
        "still running",
    );
    agent.client.input(&id, &b"line\r"[..]).await.expect("input");
    let result = running.await.expect("task").expect("run");
    assert_eq!(result.exit_code, Some(0));
    assert!(result.output.ends_with("got-line\n"), "{:?}", result.output);
    assert_eq!(agent.client.terminal(&id).await.expect("info").shell, ShellState::Prompt);
}

#[tokio::test]
async fn the_integration_survives_a_later_ps1_and_a_second_source() {
    let agent = TestAgent::start().await;
    let id = ready_shell(&agent.client).await;
    run_ok(&agent.client, &id, "PS1='other> '").await;
    run_ok(&agent.client, &id, &format!(". {SHELL_INTEGRATION}")).await;
    let result = run_ok(&agent.client, &id, "echo \"${PROMPT_COMMAND[@]}\"").await;
    assert_eq!(result.output, "__flint_marks\n", "hooked once");
    let screen = agent.client.screen(&id).await.expect("screen");
    assert!(screen.lines.iter().any(|l| l == "other>"), "{:#?}", screen.lines);
}

#[tokio::test]
async fn a_background_job_printing_at_the_prompt_leaves_the_shell_free() {
    let agent = TestAgent::start().await;
    let id = ready_shell(&agent.client).await;
    let (_input, mut output) = attach(&agent.client, &id, AttachQuery::default()).await;
    let mut seen = Seen::default();
    run_ok(&agent.client, &id, "(sleep 0.3; echo bg-one; sleep 0.3; echo bg-two) &").await;
    read_until_text(&mut output, &mut seen, "bg-two").await;
    // The job's output moved the cursor off the prompt, but nobody typed: the line is empty.
    assert_eq!(agent.client.terminal(&id).await.expect("info").shell, ShellState::Prompt);
    assert_eq!(run_ok(&agent.client, &id, "echo after-bg").await.output, "after-bg\n");

    // A person typing under such output is still seen, and deleting it frees the shell.
    run_ok(&agent.client, &id, "(sleep 0.3; echo bg-three) &").await;
    read_until_text(&mut output, &mut seen, "bg-three").await;
    type_then_delete(&agent.client, &id).await;
    assert_eq!(run_ok(&agent.client, &id, "echo clean").await.output, "clean\n");
}

#[tokio::test]
async fn the_marks_survive_a_users_own_prompt_command_and_prompt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rc = dir.path().join("bashrc");
    // As a ~/.bashrc after the profile's integration might: both replaced outright.
    let text = format!("source {SHELL_INTEGRATION}\nPROMPT_COMMAND='__mine=1'\nPS1='custom> '\n");
    std::fs::write(&rc, text).expect("write rc");
    let mut shell = integrated_shell();
    shell.command = vec![
        "bash".into(),
        "--noprofile".into(),
        "--rcfile".into(),
        rc.to_string_lossy().into_owned(),
        "-i".into(),
    ];
    let agent = TestAgent::start().await;
    let id = agent.client.create_terminal(&shell).await.expect("create terminal").id;
    wait_for_shell(&agent.client, &id, ShellState::Prompt).await;
    let failed = run_ok(&agent.client, &id, "(exit 7)").await;
    assert_eq!(failed.exit_code, Some(7));
    let mine = run_ok(&agent.client, &id, "echo $__mine; PROMPT_COMMAND='echo -n'").await;
    assert_eq!((mine.output.as_str(), mine.exit_code), ("1\n", Some(0)));
    // Replaced again at the prompt: the next command still ends with its status.
    let after = run_ok(&agent.client, &id, "echo again; false").await;
    assert_eq!((after.output.as_str(), after.exit_code), ("again\n", Some(1)));
    let screen = agent.client.screen(&id).await.expect("screen");
    assert!(screen.lines.iter().any(|l| l.starts_with("custom> ")), "{:?}", screen.lines);
}
