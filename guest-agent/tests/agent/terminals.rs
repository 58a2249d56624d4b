//! Shared terminals: fan-out, replay, resume, slow attachers, resize (who sizes the pty),
//! screen, kill.

use guest_agent::client::{FrameSender, FrameStream};
use proto::terminal::{AttachDown, AttachQuery, AttachUp, OutputQuery, Role, Size};

use crate::common::*;

#[tokio::test]
async fn two_attachers_see_the_same_output_and_a_late_one_gets_the_replay() {
    let agent = TestAgent::start().await;
    let id = new_shell(&agent.client).await;
    let (writer, mut writer_out) = attach(&agent.client, &id, AttachQuery::default()).await;
    let viewer_query = AttachQuery { role: Role::Viewer, offset: None };
    let (_viewer_in, mut viewer_out) = attach(&agent.client, &id, viewer_query).await;

    // The quotes keep the typed echo from matching: only the command's output does.
    type_text(&writer, "echo hello-'from'-writer\n").await;
    let (mut a, mut b) = (Seen::default(), Seen::default());
    read_until_text(&mut writer_out, &mut a, "hello-from-writer").await;
    read_until_text(&mut viewer_out, &mut b, "hello-from-writer").await;

    let info = agent.client.terminal(&id).await.expect("info");
    assert_eq!(info.attached, 2);

    // Another client on its own connection attaches late and gets the scrollback.
    let late = agent.connect().await;
    let (_late_in, mut late_out) = attach(&late, &id, AttachQuery::default()).await;
    let mut c = Seen::default();
    read_until_text(&mut late_out, &mut c, "hello-from-writer").await;
    assert_eq!(c.first_offset, Some(0), "replay starts at the first byte");
}

#[tokio::test]
async fn resuming_from_an_offset_loses_and_repeats_nothing() {
    let agent = TestAgent::start().await;
    let id = new_shell(&agent.client).await;
    let (input, mut output) = attach(&agent.client, &id, AttachQuery::default()).await;
    type_text(&input, "echo first-'part'\n").await;
    let mut before = Seen::default();
    read_until_text(&mut output, &mut before, "first-part").await;
    let cut = before.next_offset.expect("offset");
    drop(output);

    // More output arrives while nobody reads it.
    type_text(&input, "for i in 1 2 3; do echo line-$i-'x'; done\n").await;
    let (_again_in, mut resumed) =
        attach(&agent.client, &id, AttachQuery { role: Role::Writer, offset: Some(cut) }).await;
    let mut after = Seen::default();
    read_until_text(&mut resumed, &mut after, "line-3-x").await;
    assert_eq!(after.first_offset, Some(cut), "resume starts exactly at the offset");

    // Stitched together, the two halves are exactly the full replay.
    let (_full_in, mut full_out) =
        attach(&agent.client, &id, AttachQuery { role: Role::Viewer, offset: Some(0) }).await;
    let mut full = Seen::default();
    let total = after.next_offset.expect("end");
    read_until(&mut full_out, &mut full, "full replay", |s| s.next_offset >= Some(total)).await;
    let mut stitched = before.bytes.clone();
    stitched.extend_from_slice(&after.bytes);
    assert_eq!(stitched, full.bytes[..stitched.len()]);
}

#[tokio::test]
async fn a_range_of_output_is_read_back_from_the_scrollback_without_attaching() {
    let agent = TestAgent::start().await;
    let id = new_shell(&agent.client).await;
    let (input, mut output) = attach(&agent.client, &id, AttachQuery::default()).await;
    type_text(&input, "echo range-'test'\n").await;
    let mut seen = Seen::default();
    read_until_text(&mut output, &mut seen, "range-test").await;
    let end = seen.next_offset.expect("end");

    // Any sub-range reads back exactly what the attacher got, and no further than asked.
    let (from, to) = (3, end - 2);
    let mut range = agent.client.output(&id, OutputQuery { from, to }).await.expect("output");
    let mut read = Seen { next_offset: Some(from), ..Seen::default() };
    while let Some(frame) = range.next().await.expect("frame") {
        read.apply(frame);
    }
    assert_eq!(read.bytes, seen.bytes[from as usize..to as usize]);
    assert_eq!(read.missed, 0);
    // Asking beyond the end reads what exists; a backwards range is a clear error.
    let mut tail = agent.client.output(&id, OutputQuery { from: end - 1, to: end + 100 }).await;
    let frame = tail.as_mut().expect("tail").next().await.expect("frame");
    // The shell may have printed more (its next prompt) since `end`: the read starts where
    // asked, holds the byte the attacher saw there, and whatever followed it.
    let last = seen.bytes[(end - 1) as usize];
    assert!(
        matches!(frame, Some(AttachDown::Output { offset, ref data }) if offset == end - 1 && data.first() == Some(&last)),
        "tail read from {}: {frame:?}",
        end - 1
    );
    let backwards = agent.client.output(&id, OutputQuery { from: 5, to: 4 }).await;
    let error = match backwards {
        Ok(mut stream) => stream.next().await.expect_err("an error"),
        Err(e) => e,
    };
    assert_eq!(error.code(), proto::error::ErrorCode::BadRequest);
}

#[tokio::test]
async fn a_stalled_attacher_blocks_neither_the_shell_nor_the_others() {
    let agent = TestAgent::start().await;
    let id = new_shell(&agent.client).await;
    // Attached from the start and never read: its queue fills, then it falls behind.
    let (_stalled_in, mut stalled_out) = attach(&agent.client, &id, AttachQuery::default()).await;
    let (input, mut output) = attach(&agent.client, &id, AttachQuery::default()).await;

    const TOTAL: u64 = 50_000_000;
    type_text(
        &input,
        &format!("head -c {TOTAL} /dev/zero | tr '\\0' x; echo; echo done-'with'-it\n"),
    )
    .await;
    let mut seen = Seen::default();
    // Count instead of keeping 50 MB: only the tail is kept to find the marker.
    let result = tokio::time::timeout(std::time::Duration::from_secs(120), async {
        let mut xs = 0u64;
        loop {
            let frame = output.next().await.expect("stream").expect("frame");
            if let AttachDown::Output { data, .. } = &frame {
                xs += data.iter().filter(|b| **b == b'x').count() as u64;
            }
            seen.apply(frame);
            if seen.bytes.len() > 1 << 16 {
                seen.bytes.drain(..seen.bytes.len() - 4096);
            }
            if seen.text().contains("done-with-it") {
                return xs;
            }
        }
    })
    .await;
    let xs = result.expect("the reading attacher got all output in time");
    assert_eq!(seen.missed, 0, "the reading attacher missed nothing");
    // Every x arrived (the echoed command line has none: it says `tr '\0' x` once).
    assert!(xs >= TOTAL, "got {xs} of {TOTAL} bytes");

    let hwm = status_bytes(agent.pid(), "VmHWM");
    assert!(hwm < 64 << 20, "agent peak RSS {} MiB", hwm >> 20);

    // The stalled attacher, when it reads at last, catches up to the end and is told how
    // much it missed on the way (possibly in several gaps).
    let mut stalled = Seen::default();
    read_until_text(&mut stalled_out, &mut stalled, "done-with-it").await;
    assert!(stalled.missed > TOTAL / 2, "missed {}", stalled.missed);
}

#[tokio::test]
async fn resize_reaches_the_pty_and_the_screen_model_shows_prompt_and_cursor() {
    let agent = TestAgent::start().await;
    let id = new_shell(&agent.client).await;
    let (input, mut output) = attach(&agent.client, &id, AttachQuery::default()).await;
    let mut seen = Seen::default();

    agent.client.resize_terminal(&id, Size { cols: 100, rows: 30 }).await.expect("resize");
    type_text(&input, "stty size\n").await;
    read_until_text(&mut output, &mut seen, "30 100").await;

    // A writer's own resize frame applies too, and every attacher hears of it.
    input.send(&AttachUp::Resize(Size { cols: 120, rows: 40 })).await.expect("resize frame");
    type_text(&input, "stty size\n").await;
    read_until_text(&mut output, &mut seen, "40 120").await;

    type_text(&input, "clear; echo screen-'check'\n").await;
    read_until_text(&mut output, &mut seen, "screen-check\r\n").await;
    let screen = crate::common::eventually_screen(&agent, &id, |s| {
        s.lines.iter().any(|l| l == "screen-check") && s.lines.iter().any(|l| l == "flint$")
    })
    .await;
    assert_eq!(screen.size, Size { cols: 120, rows: 40 });
    let row = screen.lines.iter().position(|l| l == "flint$").expect("prompt row");
    assert_eq!(usize::from(screen.cursor_row), row);
    assert_eq!(screen.cursor_col, "flint$ ".len() as u16);
}

#[tokio::test]
async fn resize_follows_the_most_recently_active_writer() {
    let agent = TestAgent::start().await;
    let id = new_shell(&agent.client).await;
    let (a, _a_out) = attach(&agent.client, &id, AttachQuery::default()).await;
    let (b, mut b_out) = attach(&agent.client, &id, AttachQuery::default()).await;
    let mut seen = Seen::default();
    // Each attacher's frames are its own stream: wait for one resize to land before the next.
    let a_size = Size { cols: 90, rows: 20 };
    a.send(&AttachUp::Resize(a_size)).await.expect("a");
    read_until(&mut b_out, &mut seen, "a's size", |s| s.sizes.last() == Some(&a_size)).await;
    let b_size = Size { cols: 70, rows: 25 };
    b.send(&AttachUp::Resize(b_size)).await.expect("b");
    read_until(&mut b_out, &mut seen, "b's size", |s| s.sizes.last() == Some(&b_size)).await;
    type_text(&b, "stty size\n").await;
    read_until_text(&mut b_out, &mut seen, "25 70").await;
    // A types: its size wins again.
    type_text(&a, "stty size\n").await;
    read_until_text(&mut b_out, &mut seen, "20 90").await;
}

/// Sends a frame the agent answers with an error: once the error is back, every frame this
/// attacher sent before it was applied (each attacher's frames are handled in order).
async fn fence(
    input: &FrameSender<AttachUp>,
    output: &mut FrameStream<AttachDown>,
    seen: &mut Seen,
) {
    let errors = seen.errors.len();
    input.send(&AttachUp::Resize(Size { cols: 0, rows: 0 })).await.expect("fence");
    read_until(output, seen, "the fence's error", |s| s.errors.len() > errors).await;
}

async fn pty_size(agent: &TestAgent, id: &proto::terminal::TerminalId) -> Size {
    let info = agent.client.terminal(id).await.expect("info");
    Size { cols: info.cols, rows: info.rows }
}

#[tokio::test]
async fn the_size_follows_the_last_typist_never_a_viewer_and_everyone_is_told() {
    let agent = TestAgent::start().await;
    let id = new_shell(&agent.client).await;
    let (owner, mut owner_out) = attach(&agent.client, &id, AttachQuery::default()).await;
    let (guest, mut guest_out) = attach(&agent.client, &id, AttachQuery::default()).await;
    let viewer_query = AttachQuery { role: Role::Viewer, offset: None };
    let (viewer, mut viewer_out) = attach(&agent.client, &id, viewer_query).await;
    let (mut o, mut g, mut v) = (Seen::default(), Seen::default(), Seen::default());
    let big = Size { cols: 160, rows: 48 };
    let small = Size { cols: 50, rows: 15 };

    // Nobody typed yet: a writer's window applies. Then the owner types and is the typist.
    owner.send(&AttachUp::Resize(big)).await.expect("owner's window");
    read_until(&mut owner_out, &mut o, "the owner's size", |s| s.sizes.last() == Some(&big)).await;
    type_text(&owner, "echo owner-$(stty size | tr ' ' x)\n").await;
    read_until_text(&mut owner_out, &mut o, "owner-48x160").await;

    // Another writer's small window and a viewer's tiny one shrink nothing.
    guest.send(&AttachUp::Resize(small)).await.expect("guest's window");
    viewer.send(&AttachUp::Resize(Size { cols: 20, rows: 5 })).await.expect("viewer's window");
    fence(&guest, &mut guest_out, &mut g).await;
    fence(&viewer, &mut viewer_out, &mut v).await;
    assert_eq!(pty_size(&agent, &id).await, big, "only the typist's window sizes the pty");
    assert!(!v.errors.iter().any(|e| e.contains("viewer")), "a viewer's window is no error");

    // The guest types: the pty takes the guest's window, and every attacher is told.
    type_text(&guest, "echo guest-$(stty size | tr ' ' x)\n").await;
    read_until_text(&mut guest_out, &mut g, "guest-15x50").await;
    read_until(&mut owner_out, &mut o, "the new size", |s| s.sizes.last() == Some(&small)).await;
    read_until(&mut viewer_out, &mut v, "the new size", |s| s.sizes.last() == Some(&small)).await;

    // Now the owner's window changing is not the typist's.
    owner.send(&AttachUp::Resize(Size { cols: 150, rows: 40 })).await.expect("owner's window");
    fence(&owner, &mut owner_out, &mut o).await;
    assert_eq!(pty_size(&agent, &id).await, small);

    // Whoever attaches is told the size the pty has, in the first frame.
    let (_late, mut late_out) = attach(&agent.client, &id, AttachQuery::default()).await;
    let mut late = Seen::default();
    read_until(&mut late_out, &mut late, "the attach frame", |s| s.attached_size.is_some()).await;
    assert_eq!(late.attached_size, Some(small));

    // The typist leaves: the next writer's window applies. The guest's leaving travels on its
    // own connection, so the owner's window is sent again until the agent has seen it go.
    drop(guest);
    drop(guest_out);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while pty_size(&agent, &id).await != big {
        assert!(tokio::time::Instant::now() < deadline, "the owner's window never applied");
        owner.send(&AttachUp::Resize(big)).await.expect("owner's window");
        fence(&owner, &mut owner_out, &mut o).await;
    }
    read_until(&mut owner_out, &mut o, "the owner's size", |s| s.sizes.last() == Some(&big)).await;
}

#[tokio::test]
async fn a_viewer_cannot_type() {
    let agent = TestAgent::start().await;
    let id = new_shell(&agent.client).await;
    let (viewer, mut viewer_out) =
        attach(&agent.client, &id, AttachQuery { role: Role::Viewer, offset: None }).await;
    type_text(&viewer, "echo should-'not'-run\n").await;
    let mut seen = Seen::default();
    read_until(&mut viewer_out, &mut seen, "an error frame", |s| !s.errors.is_empty()).await;
    assert!(seen.errors[0].contains("viewer"), "{:?}", seen.errors);
    let (writer, mut writer_out) = attach(&agent.client, &id, AttachQuery::default()).await;
    type_text(&writer, "echo writer-'ok'\n").await;
    let mut w = Seen::default();
    read_until_text(&mut writer_out, &mut w, "writer-ok").await;
    assert!(!w.text().contains("should-not-run"));
}

#[tokio::test]
async fn exit_is_reported_and_kill_takes_background_jobs_with_it() {
    let agent = TestAgent::start().await;
    let id = new_shell(&agent.client).await;
    let (input, mut output) = attach(&agent.client, &id, AttachQuery::default()).await;
    let mut seen = Seen::default();
    // A background job keeps the pty open: exit must come from waitpid, not EOF.
    type_text(&input, "sleep 999 & echo bg-pid-$!-'x'\n").await;
    // The typed line echoes as `bg-pid-$!-'x'`; the output is `bg-pid-1234-x`.
    let pid_in = |text: &str| -> Option<u32> {
        text.split("bg-pid-").skip(1).find_map(|t| t.split_once("-x")?.0.parse().ok())
    };
    read_until(&mut output, &mut seen, "background pid", |s| pid_in(&s.text()).is_some()).await;
    let sleep_pid = pid_in(&seen.text()).expect("pid");
    assert!(alive(sleep_pid));
    let shell_pid = agent.client.terminal(&id).await.expect("info").pid;

    let killed = agent.client.kill_terminal(&id).await.expect("kill");
    assert!(killed.exit.is_some(), "kill waits for the shell to be reaped");
    eventually("the shell and its job to die", || !alive(shell_pid) && !alive(sleep_pid)).await;
    read_until(&mut output, &mut seen, "exit frame", |s| s.exit.is_some()).await;
    assert!(agent.client.terminal(&id).await.is_err(), "a killed terminal is forgotten");

    // A shell that exits by itself reports its code.
    let id = new_shell(&agent.client).await;
    let (input, mut output) = attach(&agent.client, &id, AttachQuery::default()).await;
    type_text(&input, "exit 3\n").await;
    let mut seen = Seen::default();
    read_until(&mut output, &mut seen, "exit frame", |s| s.exit.is_some()).await;
    assert_eq!(seen.exit.and_then(|e| e.code), Some(3));
}

#[tokio::test]
async fn with_first_shell_the_agent_answers_with_terminal_1_already_running() {
    let flags = ["--first-shell", "--shell", "bash --noprofile --norc -i"];
    let agent = TestAgent::start_with(&[], &flags).await;
    // Started as the agent started; the first list already has it (terminal routes wait).
    let terminals = agent.client.terminals().await.expect("terminals");
    let ids: Vec<&str> = terminals.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["1"], "{terminals:?}");
    let (input, mut output) = attach(&agent.client, &terminals[0].id, AttachQuery::default()).await;
    type_text(&input, "echo first-'shell'-$((6*7))\n").await;
    read_until_text(&mut output, &mut Seen::default(), "first-shell-42").await;
    // A terminal opened afterwards is the next one.
    assert_eq!(new_shell(&agent.client).await.as_str(), "2");
}
