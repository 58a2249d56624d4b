//! The warm pool and the host's capacity, on a real server.

use http::StatusCode;

use crate::common::*;

/// A session of the pool's class (the test image, default disk, with network).
const POOLED: &str = r#"{"image":"test","memory_mb":512,"cpus":0.5}"#;

/// The host's memory cgroup of a server's session (v1 here; v2 elsewhere).
fn memory_limit_mib(id: &str) -> u64 {
    let roots = ["/sys/fs/cgroup/memory/flint", "/sys/fs/cgroup/flint"];
    let file = roots
        .iter()
        .filter_map(|root| std::fs::read_dir(root).ok())
        .flat_map(|instances| instances.flatten())
        .map(|instance| instance.path().join(id))
        .find_map(|dir| {
            ["memory.limit_in_bytes", "memory.max"].iter().map(|f| dir.join(f)).find(|f| f.exists())
        })
        .unwrap_or_else(|| panic!("no memory cgroup for session {id}"));
    let text = std::fs::read_to_string(file).expect("memory limit");
    text.trim().parse::<u64>().expect("a number") >> 20
}

async fn wait_for_pool(server: &TestServer, bearer: &str, ready: u64) {
    server
        .poll_get("/api/server", &[("authorization", bearer)], "the pool to fill", |reply| {
            reply.json()["pool"][0]["ready"].as_u64() == Some(ready)
        })
        .await;
}

async fn terminals(server: &TestServer, bearer: &str, id: &str) -> Vec<serde_json::Value> {
    let reply =
        server.get(&format!("/api/sessions/{id}/terminals"), &[("authorization", bearer)]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.json().as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn warm_sandboxes_are_handed_out_once_with_the_sessions_own_limits_and_refilled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let args = ["--driver", "gvisor", "--pool-size", "2", "--pool-images", "test"];
    let server = TestServer::start_with(dir.path(), &args);
    let bearer = server.bearer().await;
    wait_for_pool(&server, &bearer, 2).await;
    let info = server.get("/api/server", &[("authorization", &bearer)]).await.json();
    assert_eq!(
        (&info["driver"], &info["used"]["sandboxes"]),
        (&"gvisor".into(), &2.into()),
        "{info}"
    );

    // Two creates in a row: two warm sandboxes, each with its first shell at a prompt.
    let a = server.running_session(&bearer, POOLED).await;
    let b = server.running_session(&bearer, r#"{"image":"test","memory_mb":768,"cpus":0.5}"#).await;
    assert_ne!(a, b);
    for id in [&a, &b] {
        let shells = terminals(&server, &bearer, id).await;
        assert_eq!(shells.len(), 1, "a warm session's first shell: {shells:?}");
        assert_eq!(shells[0]["shell"], "prompt", "{shells:?}");
    }
    // Not the same sandbox: what one writes, the other does not see.
    let (code, _, _) = server.sh(&bearer, &a, "echo a > /root/whose && hostname").await;
    assert_eq!(code, 0);
    let (_, out, _) = server.sh(&bearer, &b, "cat /root/whose 2>&1; hostname").await;
    assert!(out.contains("No such file"), "{out}");
    assert!(out.contains(&format!("flint-{}", &b[..8])), "{out}");
    // Each claimed session got its own limits.
    assert_eq!(memory_limit_mib(&a), 512);
    assert_eq!(memory_limit_mib(&b), 768);

    // The pool refills in the background.
    wait_for_pool(&server, &bearer, 2).await;

    // A session asking for environment variables gets a fresh first shell that has them.
    let body = r#"{"image":"test","env":{"FLINT_GREETING":"hello-from-env"}}"#;
    let c = server.running_session(&bearer, body).await;
    let shells = terminals(&server, &bearer, &c).await;
    assert_eq!(shells.len(), 1, "{shells:?}");
    let tid = shells[0]["id"].as_str().expect("tid");
    let origin = server.origin();
    let headers = [("authorization", bearer.as_str()), ("origin", origin.as_str())];
    let path = format!("/api/sessions/{c}/terminals/{tid}/ws");
    let mut ws = server.ws(&path, &headers).await.expect("websocket");
    ws_type(&mut ws, "echo \"[$FLINT_GREETING]\"\n").await;
    ws_read_until(&mut ws, "[hello-from-env]").await;
}

#[tokio::test]
async fn a_full_host_answers_503_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let args = ["--capacity-sandboxes", "2", "--capacity-memory-mb", "1536"];
    let server = TestServer::start_with(dir.path(), &args);
    let bearer = server.bearer().await;
    let small = r#"{"image":"test","network":false,"memory_mb":512}"#;
    let a = server.running_session(&bearer, small).await;
    // Memory first: 512 + 1024 fits, 512 + 1536 does not.
    let big = r#"{"image":"test","network":false,"memory_mb":1536}"#;
    let auth = [("authorization", bearer.as_str()), ("content-type", "application/json")];
    let reply = server.request("POST", "/api/sessions", &auth, big).await;
    reply.assert_error(StatusCode::SERVICE_UNAVAILABLE);
    assert!(reply.body.contains("512 of 1536 MiB"), "{}", reply.body);
    let _b = server.running_session(&bearer, small).await;
    // Then the count.
    let reply = server.request("POST", "/api/sessions", &auth, small).await;
    reply.assert_error(StatusCode::SERVICE_UNAVAILABLE);
    assert!(reply.body.contains("2 of 2 sandboxes"), "{}", reply.body);
    // Room again once one is deleted; nothing was lost meanwhile.
    let deleted = server.request("DELETE", &format!("/api/sessions/{a}"), &auth[..1], "").await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    server.running_session(&bearer, small).await;
    let list = server.get("/api/sessions", &auth[..1]).await.json();
    assert_eq!(list.as_array().map(Vec::len), Some(2), "{list}");
}

/// The sandboxes left in a data directory (each has a directory under `sessions/`).
fn sandboxes_left(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir.join("sessions"))
        .map(|entries| entries.flatten().map(|e| e.file_name().to_string_lossy().into()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_clean_shutdown_leaves_no_warm_sandbox_even_one_still_starting() {
    let args = ["--pool-size", "2", "--pool-images", "test"];
    // Stopped as soon as it answers: a slot is most likely being started then.
    let early = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start_with(early.path(), &args);
    let _ = server.bearer().await;
    server.terminate();
    assert_eq!(sandboxes_left(early.path()), Vec::<String>::new(), "a starting slot was left");
    // Stopped with a full pool.
    let full = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start_with(full.path(), &args);
    let bearer = server.bearer().await;
    wait_for_pool(&server, &bearer, 2).await;
    assert_eq!(sandboxes_left(full.path()).len(), 2, "the two slots have their directories");
    server.terminate();
    assert_eq!(sandboxes_left(full.path()), Vec::<String>::new(), "a ready slot was left");
}
