//! Resource bombs against sandboxes (process, and gVisor on a real server): a fork bomb, a
//! memory hog, `rm -rf /`. Each must stay inside its sandbox while a second one keeps
//! answering. They run one at a
//! time (the `BOMBS` lock): two bombs at once would measure each other.

#[path = "../server/common.rs"]
#[allow(dead_code)]
mod common;
#[path = "../support/mod.rs"]
#[allow(dead_code)]
mod support;

use common::TestServer;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use agent_client::client::Client;
use proto::error::ErrorCode;
use proto::exec::{ExecDown, ExecRequest};
use server::sandbox::cgroup::Limits;
use server::sandbox::{self, Driver, Sandbox, Spec};

static BOMBS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn spec(session_dir: &Path, id: &str, limits: Limits) -> Spec {
    Spec {
        id: id.to_owned(),
        driver: Driver::Process,
        rootfs: support::test_rootfs(),
        session_dir: session_dir.to_owned(),
        disk_mb: 256,
        agent_bin: support::agent_bin(),
        cgroup: PathBuf::from(format!("flint-test/{}/{id}", std::process::id())),
        limits,
        net: None,
        preview_url: String::new(),
        ca_bundle: None,
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
    let a = sandbox::start(&spec(&dir.join("a"), bomb, limits))
        .await
        .expect("start the bomb's sandbox");
    let b = sandbox::start(&spec(&dir.join("b"), &format!("{bomb}-bystander"), SMALL))
        .await
        .expect("start");
    (a, b)
}

/// The pids cgroup of a server's session (`flint/<instance>/<id>`, v1 or v2).
fn session_pids_cgroup(id: &str) -> PathBuf {
    let roots = ["/sys/fs/cgroup/pids/flint", "/sys/fs/cgroup/flint"];
    roots
        .iter()
        .filter_map(|root| std::fs::read_dir(root).ok())
        .flat_map(|instances| instances.flatten())
        .map(|instance| instance.path().join(id))
        .find(|dir| dir.join("pids.max").exists())
        .unwrap_or_else(|| panic!("no pids cgroup for session {id}"))
}

fn read_number(path: &Path, key: Option<&str>) -> u64 {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let value = match key {
        Some(key) => text.lines().find_map(|l| l.strip_prefix(key)).unwrap_or("0").to_owned(),
        None => text,
    };
    value.trim().parse().unwrap_or(0)
}

#[tokio::test]
async fn a_fork_bomb_is_held_while_the_server_and_a_second_session_keep_answering() {
    let _one_at_a_time = BOMBS.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path());
    let secret = common::flint(&["token", "create", "--name", "bombs"], dir.path());
    let bearer = format!("Bearer {}", secret.lines().last().expect("a token"));
    let json = [("authorization", bearer.as_str()), ("content-type", "application/json")];
    let create = r#"{"image":"test","cpus":0.5,"memory_mb":512}"#;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let reply = server.request("POST", "/api/sessions", &json, create).await;
        assert_eq!(reply.status, http::StatusCode::CREATED, "{}", reply.body);
        ids.push(reply.json()["id"].as_str().expect("id").to_owned());
    }
    let (bomb, bystander) = (ids[0].clone(), ids[1].clone());
    let cgroup = session_pids_cgroup(&bomb);
    let limit = read_number(&cgroup.join("pids.max"), None);
    assert!(limit > 0 && limit <= 4096, "a pids limit is set: {limit}");

    // Fire: the exec returns when its timeout kills the bomb's process group.
    let fire =
        r#"{"argv":["bash","-c","bomb() { bomb | bomb & }; bomb; sleep 60"],"timeout_ms":20000}"#;
    let alive = r#"{"argv":["echo","alive"]}"#;
    let bomb_exec = format!("/api/sessions/{bomb}/exec");
    let firing = server.request("POST", &bomb_exec, &json, fire);
    let checks = async {
        // Wait until the kernel refused a fork at the limit (`pids.events`): the bomb is held.
        // (Within the exec's 20 s: its timeout ends the bomb.)
        let deadline = Instant::now() + Duration::from_secs(18);
        while read_number(&cgroup.join("pids.events"), Some("max")) == 0 {
            let current = read_number(&cgroup.join("pids.current"), None);
            assert!(Instant::now() < deadline, "the bomb never reached its limit: {current}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(read_number(&cgroup.join("pids.current"), None) <= limit);

        // While it rages, the server and the other session answer.
        let health = server.get("/healthz", &[]).await;
        assert_eq!(health.status, http::StatusCode::OK);
        let list = server.get("/api/sessions", &json[..1]).await;
        assert_eq!(list.status, http::StatusCode::OK, "{}", list.body);
        let started = Instant::now();
        let reply =
            server.request("POST", &format!("/api/sessions/{bystander}/exec"), &json, alive).await;
        assert_eq!(reply.json()["stdout"], "alive\n", "{}", reply.body);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "answered after {:?}",
            started.elapsed()
        );
    };
    let (fired, ()) = tokio::join!(firing, checks);
    assert_eq!(fired.status, http::StatusCode::OK, "{}", fired.body);
    // Deleting the bombed session kills all of it; the bystander still answers.
    let deleted = server.request("DELETE", &format!("/api/sessions/{bomb}"), &json[..1], "").await;
    assert_eq!(deleted.status, http::StatusCode::NO_CONTENT, "{}", deleted.body);
    assert!(!cgroup.exists(), "the bomb's cgroup is gone");
    let reply =
        server.request("POST", &format!("/api/sessions/{bystander}/exec"), &json, alive).await;
    assert_eq!(reply.json()["stdout"], "alive\n", "{}", reply.body);
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
    sandbox::stop(&hog).await.expect("stop");
    sandbox::stop(&bystander).await.expect("stop");
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
    sandbox::stop(&victim).await.expect("stop");
    sandbox::stop(&bystander).await.expect("stop");
}

/// A server on the gVisor driver with two sessions of `body`: (server, bearer, A, B).
async fn gvisor_pair(dir: &Path, body: &str) -> (TestServer, String, String, String) {
    let server = TestServer::start_with(dir, &["--driver", "gvisor"]);
    let bearer = server.bearer().await;
    let a = server.running_session(&bearer, body).await;
    let b = server.running_session(&bearer, body).await;
    (server, bearer, a, b)
}

/// B answers `echo alive` within 10 s.
async fn answers(server: &TestServer, bearer: &str, id: &str) {
    let started = Instant::now();
    let (_, out, err) = server.sh(bearer, id, "echo alive").await;
    assert_eq!(out, "alive\n", "{err}");
    assert!(started.elapsed() < Duration::from_secs(10), "answered after {:?}", started.elapsed());
}

#[tokio::test]
async fn under_gvisor_a_fork_bomb_is_held_by_gvisors_kernel_and_the_session_lives() {
    let _one_at_a_time = BOMBS.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let body = r#"{"image":"test","network":false,"cpus":0.5,"memory_mb":512}"#;
    let (server, bearer, bomb, bystander) = gvisor_pair(dir.path(), body).await;
    let cgroup = session_pids_cgroup(&bomb);
    let auth = [("authorization", bearer.as_str()), ("content-type", "application/json")];
    // Under systrap a fork costs the sentry ~28 ms, and the bomb has half a core: beside a
    // busy suite it took more than 15 s to reach the guest's limit (CI, once).
    let fire =
        r#"{"argv":["bash","-c","bomb() { bomb | bomb & }; bomb; sleep 60"],"timeout_ms":25000}"#;
    let bomb_exec = format!("/api/sessions/{bomb}/exec");
    // Host tasks of the idle sandbox (sentry, gofer, stubs): the bomb's show up on top.
    let idle = read_number(&cgroup.join("pids.current"), None);
    let firing = server.request("POST", &bomb_exec, &auth, fire);
    let checks = async {
        // Wait until the bomb runs: under ptrace every guest process costs host tasks.
        // (Within the exec's 25 s: its timeout ends the bomb, and the client waits 30 s.)
        let deadline = Instant::now() + Duration::from_secs(12);
        loop {
            let current = read_number(&cgroup.join("pids.current"), None);
            if current >= idle + 100 {
                break;
            }
            assert!(Instant::now() < deadline, "the bomb never took off: {current} host tasks");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // While it rages, the server and the other session answer.
        assert_eq!(server.get("/healthz", &[]).await.status, http::StatusCode::OK);
        let list = server.get("/api/sessions", &auth[..1]).await;
        assert_eq!(list.status, http::StatusCode::OK, "{}", list.body);
        answers(&server, &bearer, &bystander).await;
    };
    let (fired, ()) = tokio::join!(firing, checks);
    assert_eq!(fired.status, http::StatusCode::OK, "{}", fired.body);
    // gVisor's kernel refused the forks (RLIMIT_NPROC) ...
    let stderr = fired.json()["stderr"].as_str().unwrap_or_default().to_owned();
    assert!(
        stderr.contains("Resource temporarily unavailable"),
        "no fork was refused; {} host tasks at the end; the exec said {}",
        read_number(&cgroup.join("pids.current"), None),
        fired.body
    );
    // ... long before the host's limit, which would have starved the sentry.
    assert_eq!(read_number(&cgroup.join("pids.events"), Some("max")), 0, "the host limit was hit");
    // Held, not killed: the session runs on and answers once the bomb's thousands of
    // processes, killed with the exec's process group, are gone (that takes gVisor a while).
    let session = server.get(&format!("/api/sessions/{bomb}"), &auth[..1]).await.json();
    assert_eq!(session["state"], "running", "{session}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let alive = r#"{"argv":["echo","alive"]}"#;
        let reply = server.request("POST", &bomb_exec, &auth, alive).await;
        if reply.status == http::StatusCode::OK && reply.json()["stdout"] == "alive\n" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the bombed session never answered again: {}",
            reply.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let session = server.get(&format!("/api/sessions/{bomb}"), &auth[..1]).await.json();
    assert_eq!(session["state"], "running", "{session}");
    let deleted = server.request("DELETE", &format!("/api/sessions/{bomb}"), &auth[..1], "").await;
    assert_eq!(deleted.status, http::StatusCode::NO_CONTENT, "{}", deleted.body);
    assert!(!cgroup.exists(), "the bomb's cgroup is gone");
    answers(&server, &bearer, &bystander).await;
}

#[tokio::test]
async fn under_gvisor_a_memory_hog_ends_its_session_with_a_reason_and_keeps_its_workspace() {
    let _one_at_a_time = BOMBS.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let body = r#"{"image":"test","network":false,"memory_mb":256}"#;
    let (server, bearer, hog, bystander) = gvisor_pair(dir.path(), body).await;
    let (code, _, err) = server.sh(&bearer, &hog, "echo keep-me > /workspace/kept.txt").await;
    assert_eq!(code, 0, "{err}");
    // 1 GiB into a 256 MiB sandbox: the host's limit fires and takes gVisor's kernel with it.
    let auth = [("authorization", bearer.as_str()), ("content-type", "application/json")];
    let hog_body =
        r#"{"argv":["python3","-c","b = bytearray(1 << 30); print(len(b))"],"timeout_ms":60000}"#;
    let _ = server.request("POST", &format!("/api/sessions/{hog}/exec"), &auth, hog_body).await;
    let ended = server
        .poll_get(&format!("/api/sessions/{hog}"), &auth[..1], "the hog's session to fail", |r| {
            r.json()["state"] == "failed"
        })
        .await
        .json();
    let reason = ended["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("out of memory") && reason.contains("256 MiB"), "{reason}");
    // The server and the other session are unaffected; the hog's /workspace is kept.
    assert_eq!(server.get("/healthz", &[]).await.status, http::StatusCode::OK);
    answers(&server, &bearer, &bystander).await;
    let tar = server.get(&format!("/api/sessions/{hog}/workspace.tar"), &auth[..1]).await;
    assert_eq!(tar.status, http::StatusCode::OK, "{}", tar.body);
    assert!(tar.body.contains("kept.txt") && tar.body.contains("keep-me"), "not in the tarball");
}

#[tokio::test]
async fn under_gvisor_rm_rf_root_deletes_inside_only() {
    let _one_at_a_time = BOMBS.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let body = r#"{"image":"test","network":false}"#;
    let (server, bearer, victim, bystander) = gvisor_pair(dir.path(), body).await;
    let _ = server.sh(&bearer, &victim, "rm -rf --no-preserve-root / 2>/dev/null; true").await;
    // The agent still runs (its binary is mapped); it sees the sandbox's root gone.
    let auth = [("authorization", bearer.as_str())];
    let gone = server
        .get(&format!("/api/sessions/{victim}/files/content?path=/usr/bin/bash"), &auth)
        .await;
    assert_eq!(gone.status, http::StatusCode::NOT_FOUND, "{}", gone.body);
    assert!(support::test_rootfs().join("usr/bin/bash").exists(), "the image is intact");
    answers(&server, &bearer, &bystander).await;
}
