//! Resource bombs against process sandboxes: a fork bomb, a memory hog, `rm -rf /`. Each
//! must stay inside its sandbox while a second sandbox keeps answering. They run one at a
//! time (the `BOMBS` lock): two bombs at once would measure each other.

#[path = "../support/mod.rs"]
#[allow(dead_code)]
mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use guest_agent::client::Client;
use proto::error::ErrorCode;
use proto::exec::{ExecDown, ExecRequest};
use server::sandbox::cgroup::Limits;
use server::sandbox::process::{self, Sandbox, Spec};

static BOMBS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn spec(session_dir: &Path, id: &str, limits: Limits) -> Spec {
    Spec {
        id: id.to_owned(),
        rootfs: support::test_rootfs(),
        session_dir: session_dir.to_owned(),
        agent_bin: support::agent_bin(),
        cgroup: PathBuf::from(format!("flint-test/{}/{id}", std::process::id())),
        limits,
    }
}

const SMALL: Limits = Limits { memory_mb: 256, pids: 128, cpu_centis: 50 };

async fn run(client: &Client, script: &str, timeout_ms: u64) -> ExecDown {
    let request = ExecRequest {
        argv: vec!["bash".into(), "-c".into(), script.into()],
        timeout_ms: Some(timeout_ms),
        ..ExecRequest::default()
    };
    client.exec_collect(request).await.expect("exec")
}

/// How long a trivial command takes in `sandbox`: the "keeps answering" check.
async fn answers_within(client: &Client, limit: Duration) {
    let started = Instant::now();
    match run(client, "echo alive", 30_000).await {
        ExecDown::Finished { stdout, .. } => assert_eq!(&stdout[..], b"alive\n"),
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < limit, "answered only after {:?}", started.elapsed());
}

async fn pair(dir: &Path, bomb: &str, limits: Limits) -> (Sandbox, Sandbox) {
    let a = process::start(&spec(&dir.join("a"), bomb, limits))
        .await
        .expect("start the bomb's sandbox");
    let b = process::start(&spec(&dir.join("b"), &format!("{bomb}-bystander"), SMALL))
        .await
        .expect("start");
    (a, b)
}

#[tokio::test]
async fn a_fork_bomb_is_held_by_the_pids_and_cpu_limits() {
    let _one_at_a_time = BOMBS.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (bomb, bystander) = pair(dir.path(), "forkbomb", SMALL).await;
    let bomb_client = bomb.client().await.expect("client");
    let bystander_client = bystander.client().await.expect("client");
    // Fire and forget: the bomb keeps the exec busy until its timeout kills the group.
    let firing =
        tokio::spawn(
            async move { run(&bomb_client, "bomb() { bomb | bomb & }; bomb", 8_000).await },
        );
    // Wait until the bomb has spread up to its limit, then check that it is held there.
    let deadline = Instant::now() + Duration::from_secs(30);
    while bomb.pids().len() < SMALL.pids as usize / 2 {
        assert!(
            Instant::now() < deadline,
            "the bomb never spread: {} processes",
            bomb.pids().len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(bomb.pids().len() <= SMALL.pids as usize, "{} processes", bomb.pids().len());
    answers_within(&bystander_client, Duration::from_secs(5)).await;
    let _ = firing.await;
    process::stop(&bomb).await.expect("stop the bomb");
    answers_within(&bystander_client, Duration::from_secs(5)).await;
    process::stop(&bystander).await.expect("stop");
}

#[tokio::test]
async fn a_memory_hog_is_killed_inside_its_sandbox() {
    let _one_at_a_time = BOMBS.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (hog, bystander) = pair(dir.path(), "memhog", SMALL).await;
    let client = hog.client().await.expect("client");
    // 1 GiB into a 256 MiB sandbox.
    let done = run(&client, "python3 -c 'b = bytearray(1 << 30); print(len(b))'", 60_000).await;
    let ExecDown::Finished { status, stdout, .. } = done else { panic!("{done:?}") };
    assert_eq!(status.signal, Some(9), "the OOM killer took it: {status:?} {stdout:?}");
    // The sandbox and its neighbour live on.
    answers_within(&client, Duration::from_secs(5)).await;
    answers_within(&bystander.client().await.expect("client"), Duration::from_secs(5)).await;
    process::stop(&hog).await.expect("stop");
    process::stop(&bystander).await.expect("stop");
}

#[tokio::test]
async fn rm_rf_root_deletes_inside_only() {
    let _one_at_a_time = BOMBS.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (victim, bystander) = pair(dir.path(), "rmrf", SMALL).await;
    let client = victim.client().await.expect("client");
    let _ = run(&client, "rm -rf --no-preserve-root / 2>/dev/null; true", 60_000).await;
    // The agent still runs (its binary is mapped); through the open connection it sees the
    // sandbox's root gone.
    let gone = client.stat("/usr/bin/bash").await.expect_err("bash is deleted");
    assert_eq!(gone.code(), ErrorCode::NotFound);
    let rootfs = support::test_rootfs();
    assert!(rootfs.join("usr/bin/bash").exists(), "the image is intact");
    answers_within(&bystander.client().await.expect("client"), Duration::from_secs(5)).await;
    process::stop(&victim).await.expect("stop");
    process::stop(&bystander).await.expect("stop");
}
