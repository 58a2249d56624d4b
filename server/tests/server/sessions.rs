//! Sessions over REST and terminals over websockets, on real process sandboxes.

use http::StatusCode;

use crate::common::*;

pub(crate) async fn token(server: &TestServer) -> String {
    server.bearer().await
}

pub(crate) async fn create_session(server: &TestServer, bearer: &str) -> serde_json::Value {
    let body = r#"{"image":"test","name":"demo","cpus":0.5,"memory_mb":512}"#;
    server.create_session(bearer, body).await
}

#[tokio::test]
async fn a_session_is_created_shared_over_two_websockets_and_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path());
    let bearer = token(&server).await;
    let auth = [("authorization", bearer.as_str())];

    let session = create_session(&server, &bearer).await;
    assert_eq!(session["state"], "running", "{session}");
    assert_eq!(session["driver"], "process");
    assert_eq!(session["isolation"], "weak");
    assert_eq!(session["limits"]["cpus"], 0.5);
    assert_eq!(session["limits"]["memory_mb"], 512);
    assert!(session["start_duration_ms"].as_i64().is_some());
    let id = session["id"].as_str().expect("id").to_owned();
    assert!(id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    let listed = server.get("/api/sessions", &auth).await;
    assert!(listed.body.contains(&id));
    let metrics = server.get("/metrics", &[]).await;
    assert!(metrics.body.contains("flint_sessions{state=\"running\"} 1"), "{}", metrics.body);

    let terminal = server
        .request(
            "POST",
            &format!("/api/sessions/{id}/terminals"),
            &[("authorization", &bearer), ("content-type", "application/json")],
            "{}",
        )
        .await;
    assert_eq!(terminal.status, StatusCode::CREATED, "{}", terminal.body);
    let tid = terminal.json()["id"].as_str().expect("tid").to_owned();
    let path = format!("/api/sessions/{id}/terminals/{tid}/ws");
    let origin = server.origin();
    let headers = [("authorization", bearer.as_str()), ("origin", origin.as_str())];

    // Guards first: a foreign Origin, no credential.
    let foreign =
        server.ws(&path, &[("authorization", &bearer), ("origin", "http://evil.example")]).await;
    assert_eq!(foreign.err(), Some(StatusCode::FORBIDDEN));
    let anonymous = server.ws(&path, &[("origin", &origin)]).await;
    assert_eq!(anonymous.err(), Some(StatusCode::UNAUTHORIZED));

    let mut first = server.ws(&path, &headers).await.expect("first websocket");
    let mut second = server.ws(&path, &headers).await.expect("second websocket");
    ws_type(&mut first, "echo hi-'from'-one\n").await;
    ws_read_until(&mut first, "hi-from-one").await;
    ws_read_until(&mut second, "hi-from-one").await;
    // The shell runs in the sandbox, in /workspace.
    ws_type(&mut second, "echo $FLINT_SESSION:$(pwd)\n").await;
    ws_read_until(&mut first, &format!("{id}:/workspace")).await;

    let deleted = server.request("DELETE", &format!("/api/sessions/{id}"), &auth, "").await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    server.get(&format!("/api/sessions/{id}"), &auth).await.assert_error(StatusCode::NOT_FOUND);
    assert!(!dir.path().join("sessions").join(&id).exists(), "the session's files are gone");
}

/// What a terminal websocket delivered: output checked for order on the way.
#[derive(Default)]
struct Followed {
    next: Option<u64>,
    xs: u64,
    missed: u64,
    tail: String,
}

/// Reads a terminal websocket until `needle` appears, checking that every output message
/// starts where the previous one ended, unless a `missed` message announced the hole.
async fn follow(ws: &mut Ws, needle: &str) -> Followed {
    use futures_util::StreamExt as _;
    use tokio_tungstenite::tungstenite::Message;
    let mut seen = Followed::default();
    let read = tokio::time::timeout(std::time::Duration::from_secs(120), async {
        while !seen.tail.contains(needle) {
            match ws.next().await {
                Some(Ok(Message::Binary(bytes))) => {
                    let (offset, data) = bytes.split_at(proto::api::OUTPUT_OFFSET_BYTES);
                    let offset = u64::from_be_bytes(offset.try_into().expect("8 bytes"));
                    if let Some(next) = seen.next {
                        assert_eq!(offset, next, "output continues where it stopped");
                    }
                    seen.next = Some(offset + data.len() as u64);
                    seen.xs += data.iter().filter(|b| **b == b'x').count() as u64;
                    seen.tail.push_str(&String::from_utf8_lossy(data));
                    let cut = seen.tail.len().saturating_sub(256);
                    seen.tail = seen.tail.split_off(seen.tail.floor_char_boundary(cut));
                }
                Some(Ok(Message::Text(text))) => {
                    let message: serde_json::Value = serde_json::from_str(&text).expect("json");
                    match message["type"].as_str() {
                        Some("attached") => seen.next = message["offset"].as_u64(),
                        Some("missed") => {
                            let (from, to) = (message["from"].as_u64(), message["to"].as_u64());
                            let (Some(from), Some(to)) = (from, to) else { panic!("{message}") };
                            assert_eq!(
                                Some(from),
                                seen.next,
                                "the hole starts where output stopped"
                            );
                            assert!(to > from);
                            seen.missed += to - from;
                            seen.next = Some(to);
                        }
                        _ => {}
                    }
                }
                Some(Ok(_)) => {}
                other => panic!("websocket ended while waiting for {needle:?}: {other:?}"),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "timed out waiting for {needle:?}");
    seen
}

#[tokio::test]
async fn a_slow_browser_is_resynced_from_the_scrollback_and_loses_nothing_else() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path());
    let bearer = token(&server).await;
    let id = create_session(&server, &bearer).await["id"].as_str().expect("id").to_owned();
    let json = [("authorization", bearer.as_str()), ("content-type", "application/json")];
    let terminal =
        server.request("POST", &format!("/api/sessions/{id}/terminals"), &json, "{}").await;
    let tid = terminal.json()["id"].as_str().expect("tid").to_owned();
    let path = format!("/api/sessions/{id}/terminals/{tid}/ws");
    let origin = server.origin();
    let headers = [("authorization", bearer.as_str()), ("origin", origin.as_str())];
    // One browser that stops reading, one that keeps up.
    let mut stalled = server.ws(&path, &headers).await.expect("websocket");
    let mut reader = server.ws(&path, &headers).await.expect("websocket");
    // 25 MiB, paced like a chatty build log (at most ~6 MB/s): more than the stalled
    // browser's queue and socket buffers hold, never more than the reading one keeps up with.
    const CHUNKS: u64 = 400;
    const TOTAL: u64 = CHUNKS * 65536;
    let command = format!(
        "python3 -c \"import sys, time; [(sys.stdout.write('x' * 65536 + '\\n'), \
         sys.stdout.flush(), time.sleep(0.01)) for _ in range({CHUNKS})]\"; echo done-'with'-it\n"
    );
    ws_type(&mut reader, &command).await;
    let kept_up = follow(&mut reader, "done-with-it").await;
    assert_eq!(kept_up.missed, 0, "the reading browser missed nothing");
    assert!(kept_up.xs >= TOTAL, "got {} of {TOTAL}", kept_up.xs);
    // The stalled one, reading at last, gets a consistent stream to the same end: what
    // overflowed its queue comes back from the scrollback, and only what the scrollback no
    // longer holds is announced as missed.
    let caught_up = follow(&mut stalled, "done-with-it").await;
    assert!(caught_up.missed > 0, "25 MiB cannot all have been queued");
    assert!(caught_up.xs + caught_up.missed >= TOTAL);
    // The shell is still there for both.
    ws_type(&mut stalled, "echo still-'here'\n").await;
    ws_read_until(&mut reader, "still-here").await;
    ws_read_until(&mut stalled, "still-here").await;
}

/// The next JSON text message of a websocket (skipping pings and activity-feed entries,
/// which `mcp.rs` checks), within 30 s.
async fn next_json(ws: &mut Ws) -> serde_json::Value {
    use futures_util::StreamExt as _;
    use tokio_tungstenite::tungstenite::Message;
    let next = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    let json: serde_json::Value = serde_json::from_str(&text).expect("json");
                    if json["type"] != "activity" {
                        return json;
                    }
                }
                Some(Ok(_)) => {}
                other => panic!("websocket ended: {other:?}"),
            }
        }
    });
    next.await.expect("a message in time")
}

#[tokio::test]
async fn the_events_websocket_shows_sessions_change_live() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path());
    let bearer = token(&server).await;
    let origin = server.origin();
    let headers = [("authorization", bearer.as_str()), ("origin", origin.as_str())];
    let foreign = server
        .ws("/api/events/ws", &[("authorization", &bearer), ("origin", "http://evil.example")])
        .await;
    assert_eq!(foreign.err(), Some(StatusCode::FORBIDDEN));
    let mut events = server.ws("/api/events/ws", &headers).await.expect("websocket");
    let snapshot = next_json(&mut events).await;
    assert_eq!(snapshot["type"], "snapshot");
    assert_eq!(snapshot["sessions"], serde_json::json!([]));

    let id = create_session(&server, &bearer).await["id"].as_str().expect("id").to_owned();
    let mut states = Vec::new();
    while states.last().map(String::as_str) != Some("running") {
        let event = next_json(&mut events).await;
        if event["type"] == "ports" {
            // Its first ports message may come before it is marked running.
            continue;
        }
        assert_eq!(
            (event["type"].as_str(), event["session"]["id"].as_str()),
            (Some("session"), Some(id.as_str()))
        );
        states.push(event["session"]["state"].as_str().expect("state").to_owned());
    }
    assert_eq!(states, ["creating", "running"]);

    // A token scoped to another session sees nothing of this one.
    let json = [("authorization", bearer.as_str()), ("content-type", "application/json")];
    let other = create_session(&server, &bearer).await["id"].as_str().expect("id").to_owned();
    let scoped = server
        .request("POST", "/api/tokens", &json, &format!(r#"{{"name":"s","session_id":"{other}"}}"#))
        .await;
    let scoped = format!("Bearer {}", scoped.json()["token"].as_str().expect("token"));
    let mut confined = server
        .ws("/api/events/ws", &[("authorization", &scoped), ("origin", &origin)])
        .await
        .expect("websocket");
    let snapshot = next_json(&mut confined).await;
    let ids: Vec<&str> = snapshot["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert_eq!(ids, [other.as_str()]);

    let deleted = server.request("DELETE", &format!("/api/sessions/{id}"), &json[..1], "").await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    // The owner sees the other session's creation, then the stop and the deletion.
    let mut seen = Vec::new();
    while seen.last() != Some(&format!("deleted {id}")) {
        let event = next_json(&mut events).await;
        seen.push(match event["type"].as_str() {
            // Port and activity messages ride the same socket.
            Some("ports" | "activity") => continue,
            Some("deleted") => format!("deleted {}", event["id"].as_str().expect("id")),
            _ => format!(
                "{} {}",
                event["session"]["state"].as_str().expect("state"),
                event["session"]["id"].as_str().expect("id")
            ),
        });
    }
    assert!(
        seen.contains(&format!("stopping {id}")) && seen.contains(&format!("stopped {id}")),
        "{seen:?}"
    );
    // The confined view heard nothing about it.
    server.request("DELETE", &format!("/api/sessions/{other}"), &json[..1], "").await;
    let mut next = next_json(&mut confined).await;
    while matches!(next["type"].as_str(), Some("ports" | "activity")) {
        next = next_json(&mut confined).await;
    }
    assert_eq!(
        next["session"]["id"].as_str().or(next["id"].as_str()),
        Some(other.as_str()),
        "{next}"
    );
}

#[tokio::test]
async fn bad_requests_and_foreign_sessions_get_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path());
    let bearer = token(&server).await;
    let json = [("authorization", bearer.as_str()), ("content-type", "application/json")];
    for body in [
        r#"{"image":"../etc"}"#,
        r#"{"image":"nosuch"}"#,
        r#"{"memory_mb":1}"#,
        r#"{"cpus":0}"#,
        r#"{"lifetime_s":0}"#,
        r#"{"bogus":1}"#,
    ] {
        let reply = server.request("POST", "/api/sessions", &json, body).await;
        assert!(reply.status.is_client_error(), "{body}: {}", reply.status);
        reply.assert_error(reply.status);
    }
    server.get("/api/sessions/nosuchsession", &json[..1]).await.assert_error(StatusCode::NOT_FOUND);

    // A token scoped to one session sees nothing else and cannot start sessions.
    let session = create_session(&server, &bearer).await;
    let id = session["id"].as_str().expect("id");
    let other = create_session(&server, &bearer).await["id"].as_str().expect("id").to_owned();
    let scoped = server
        .request("POST", "/api/tokens", &json, &format!(r#"{{"name":"s","session_id":"{other}"}}"#))
        .await;
    let scoped = format!("Bearer {}", scoped.json()["token"].as_str().expect("token"));
    server
        .get(&format!("/api/sessions/{id}"), &[("authorization", &scoped)])
        .await
        .assert_error(StatusCode::NOT_FOUND);
    // Its listing holds its one session.
    let listed = server.get("/api/sessions", &[("authorization", &scoped)]).await.json();
    let listed: Vec<&str> =
        listed.as_array().expect("array").iter().filter_map(|s| s["id"].as_str()).collect();
    assert_eq!(listed, [other.as_str()]);
    let create = server
        .request(
            "POST",
            "/api/sessions",
            &[("authorization", &scoped), ("content-type", "application/json")],
            "{}",
        )
        .await;
    create.assert_error(StatusCode::FORBIDDEN);
    server.request("DELETE", &format!("/api/sessions/{id}"), &json[..1], "").await;
}

#[tokio::test]
async fn the_images_a_session_can_start_from_are_listed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path());
    let bearer = token(&server).await;
    let reply = server.get("/api/images", &[("authorization", &bearer)]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let images = reply.json();
    let images = images.as_array().expect("a list");
    assert_eq!(images[0]["name"], "default", "the default comes first: {images:?}");
    assert_eq!(images[0]["default"], true);
    let names: Vec<&str> = images.iter().filter_map(|i| i["name"].as_str()).collect();
    for name in ["test", "vite"] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    for image in images {
        assert!(image["description"].as_str().is_some_and(|d| !d.is_empty()), "{image}");
        assert!(image.get("error").is_none(), "the repository's specs are valid: {image}");
    }
    // This server's data directory holds the built test image (the suite builds it once).
    let test = images.iter().find(|i| i["name"] == "test").expect("test");
    assert_eq!(
        (&test["built"], &test["default"]),
        (&serde_json::json!(true), &serde_json::json!(false))
    );

    server.get("/api/images", &[]).await.assert_error(StatusCode::UNAUTHORIZED);
    let json = [("authorization", bearer.as_str()), ("content-type", "application/json")];
    let other = create_session(&server, &bearer).await["id"].as_str().expect("id").to_owned();
    let scoped = server
        .request("POST", "/api/tokens", &json, &format!(r#"{{"name":"s","session_id":"{other}"}}"#))
        .await;
    let scoped = format!("Bearer {}", scoped.json()["token"].as_str().expect("token"));
    server
        .get("/api/images", &[("authorization", &scoped)])
        .await
        .assert_error(StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_killed_server_readopts_its_running_session_with_the_shell_history() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = TestServer::start(dir.path());
    let bearer = token(&server).await;
    let session = create_session(&server, &bearer).await;
    let id = session["id"].as_str().expect("id").to_owned();
    let terminal = server
        .request(
            "POST",
            &format!("/api/sessions/{id}/terminals"),
            &[("authorization", &bearer), ("content-type", "application/json")],
            "{}",
        )
        .await;
    let tid = terminal.json()["id"].as_str().expect("tid").to_owned();
    let path = format!("/api/sessions/{id}/terminals/{tid}/ws");
    let origin = server.origin();
    let mut ws =
        server.ws(&path, &[("authorization", &bearer), ("origin", &origin)]).await.expect("ws");
    ws_type(&mut ws, "echo before-'the'-restart\n").await;
    ws_read_until(&mut ws, "before-the-restart").await;
    drop(ws);

    server.kill();
    let server = TestServer::start(dir.path());
    let again = server.get(&format!("/api/sessions/{id}"), &[("authorization", &bearer)]).await;
    assert_eq!(again.json()["state"], "running", "{}", again.body);
    let origin = server.origin();
    let mut ws =
        server.ws(&path, &[("authorization", &bearer), ("origin", &origin)]).await.expect("ws");
    // The scrollback replays from the start: the shell is the same one.
    ws_read_until(&mut ws, "before-the-restart").await;
    server
        .request("DELETE", &format!("/api/sessions/{id}"), &[("authorization", &bearer)], "")
        .await;
}

#[tokio::test]
async fn files_exec_and_ports_round_trip_over_rest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path());
    let bearer = token(&server).await;
    let auth = [("authorization", bearer.as_str())];
    let json = [("authorization", bearer.as_str()), ("content-type", "application/json")];
    let session = create_session(&server, &bearer).await;
    let id = session["id"].as_str().expect("id").to_owned();
    let base = format!("/api/sessions/{id}");

    let written = server
        .request("PUT", &format!("{base}/files/content?path=hello.txt"), &auth, "hi there")
        .await;
    assert_eq!(written.status, StatusCode::OK, "{}", written.body);
    assert_eq!(written.json()["size"], 8);
    let read = server.get(&format!("{base}/files/content?path=/workspace/hello.txt"), &auth).await;
    assert_eq!((read.status, read.body.as_str()), (StatusCode::OK, "hi there"));
    // Saved by a browser, never rendered on the app's origin.
    assert_eq!(read.header("x-content-type-options"), Some("nosniff"));
    let disposition = read.header("content-disposition").unwrap_or_default();
    assert!(disposition.starts_with("attachment; filename=\"hello.txt\""), "{disposition}");
    let listing = server.get(&format!("{base}/files?path=/workspace"), &auth).await;
    assert!(listing.body.contains("/workspace/hello.txt"), "{}", listing.body);

    let mkdir =
        server.request("POST", &format!("{base}/files/mkdir"), &json, r#"{"path":"d/e"}"#).await;
    assert_eq!(mkdir.status, StatusCode::NO_CONTENT, "{}", mkdir.body);
    let moved = server
        .request(
            "POST",
            &format!("{base}/files/move"),
            &json,
            r#"{"from":"hello.txt","to":"d/e/h.txt"}"#,
        )
        .await;
    assert_eq!(moved.status, StatusCode::NO_CONTENT, "{}", moved.body);
    let exec = server
        .request("POST", &format!("{base}/exec"), &json, r#"{"argv":["cat","d/e/h.txt"]}"#)
        .await;
    assert_eq!(exec.status, StatusCode::OK, "{}", exec.body);
    assert_eq!(exec.json()["stdout"], "hi there");
    assert_eq!(exec.json()["exit_code"], 0);
    let failing = server
        .request(
            "POST",
            &format!("{base}/exec"),
            &json,
            r#"{"argv":["sh","-c","echo no >&2; exit 3"]}"#,
        )
        .await;
    assert_eq!(
        (failing.json()["stderr"].as_str(), failing.json()["exit_code"].as_i64()),
        (Some("no\n"), Some(3))
    );
    server
        .request("POST", &format!("{base}/exec"), &json, r#"{"argv":[]}"#)
        .await
        .assert_error(StatusCode::BAD_REQUEST);

    let tar = server.get(&format!("{base}/workspace.tar"), &auth).await;
    assert_eq!(tar.status, StatusCode::OK);
    assert!(
        tar.body.contains("d/e/h.txt") && tar.body.contains("hi there"),
        "the tarball holds the file"
    );

    let removed =
        server.request("DELETE", &format!("{base}/files?path=d&recursive=true"), &auth, "").await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{}", removed.body);
    server
        .get(&format!("{base}/files/content?path=d/e/h.txt"), &auth)
        .await
        .assert_error(StatusCode::NOT_FOUND);
    server
        .get(&format!("{base}/files/content?path=/workspace"), &auth)
        .await
        .assert_error(StatusCode::CONFLICT);

    // A server started in the sandbox shows up as a port.
    let start =
        r#"{"argv":["sh","-c","python3 -m http.server 8123 --bind 127.0.0.1 >/dev/null 2>&1 &"]}"#;
    assert_eq!(
        server.request("POST", &format!("{base}/exec"), &json, start).await.status,
        StatusCode::OK
    );
    server
        .poll_get(&format!("{base}/ports"), &auth, "port 8123 to be listed", |ports| {
            ports.json()["listeners"]
                .as_array()
                .is_some_and(|l| l.iter().any(|p| p["port"] == 8123))
        })
        .await;
    server.request("DELETE", &base, &auth, "").await;
}

#[tokio::test]
async fn an_idle_session_stops_by_itself_and_says_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start_with(dir.path(), &["--idle-timeout-s", "2"]);
    let bearer = token(&server).await;
    let session = create_session(&server, &bearer).await;
    let id = session["id"].as_str().expect("id").to_owned();
    let json = [("authorization", bearer.as_str()), ("content-type", "application/json")];
    let exec =
        r#"{"argv":["sh","-c","echo survives > kept.txt && echo scratch > /root/gone.txt"]}"#;
    let wrote = server.request("POST", &format!("/api/sessions/{id}/exec"), &json, exec).await;
    assert_eq!(wrote.json()["exit_code"], 0, "{}", wrote.body);
    // Reading a session's record does not count as activity, so polling it is fine.
    let stopped = server
        .poll_get(&format!("/api/sessions/{id}"), &[("authorization", &bearer)], "a stop", |r| {
            r.json()["state"] == "stopped"
        })
        .await
        .json();
    assert!(stopped["reason"].as_str().is_some_and(|r| r.contains("idle")), "{stopped}");
    assert!(stopped["stopped_ms"].as_i64().is_some());
    // Its workspace outlives the sandbox until the session is deleted, and still downloads.
    let tar = server.get(&format!("/api/sessions/{id}/workspace.tar"), &json[..1]).await;
    assert_eq!(tar.status, StatusCode::OK, "{}", tar.body);
    assert!(tar.body.contains("./kept.txt") && tar.body.contains("survives\n"), "{}", tar.body);
    assert!(!tar.body.contains("scratch"));
    assert!(!dir.path().join("sessions").join(&id).join("sandbox").exists());
}

#[tokio::test]
async fn an_out_of_memory_kill_is_recorded_as_a_session_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path());
    let bearer = token(&server).await;
    let json = [("authorization", bearer.as_str()), ("content-type", "application/json")];
    let reply =
        server.request("POST", "/api/sessions", &json, r#"{"image":"test","memory_mb":128}"#).await;
    let id = reply.json()["id"].as_str().expect("id").to_owned();
    let hog = r#"{"argv":["python3","-c","b = bytearray(1 << 30)"]}"#;
    let exec = server.request("POST", &format!("/api/sessions/{id}/exec"), &json, hog).await;
    assert_eq!(exec.json()["signal"], 9, "{}", exec.body);
    let kinds = |reply: &Reply| -> Vec<String> {
        let events = reply.json();
        let events = events.as_array().expect("array");
        events.iter().filter_map(|e| e["kind"].as_str().map(str::to_owned)).collect()
    };
    let events = server
        .poll_get(&format!("/api/sessions/{id}/events"), &json[..1], "an oom event", |r| {
            kinds(r).iter().any(|k| k == "session.oom_kill")
        })
        .await;
    let kinds = kinds(&events);
    assert!(
        kinds.contains(&"session.create".to_owned()) && kinds.contains(&"exec".to_owned()),
        "{kinds:?}"
    );
    // The session itself survives its process's death; a command's secrets stay out of
    // the audit log, however they are passed.
    let secret =
        r#"{"argv":["sh","-c","export TOKEN=abc123secret; true","--password","hunter22"]}"#;
    let alive = server.request("POST", &format!("/api/sessions/{id}/exec"), &json, secret).await;
    assert_eq!(alive.json()["exit_code"], 0);
    let events = server.get(&format!("/api/sessions/{id}/events"), &json[..1]).await;
    assert!(events.body.contains("[redacted]"), "{}", events.body);
    assert!(events.header("link").is_none(), "one page holds them all: {:?}", events.headers);
    // The feed comes in pages, newest first, each oldest first, linked to the one before.
    let all: Vec<i64> =
        events.json().as_array().expect("array").iter().filter_map(|e| e["id"].as_i64()).collect();
    let mut path = format!("/api/sessions/{id}/events?limit=2");
    let mut paged = Vec::new();
    loop {
        let page = server.get(&path, &json[..1]).await;
        let ids: Vec<i64> = page
            .json()
            .as_array()
            .expect("array")
            .iter()
            .filter_map(|e| e["id"].as_i64())
            .collect();
        assert!(ids.len() <= 2, "{ids:?}");
        paged.splice(0..0, ids);
        let Some(link) = page.header("link") else { break };
        let next = link.trim_start_matches('<').split('>').next().expect("a link").to_owned();
        assert!(next.contains("before="), "{link}");
        path = next;
    }
    assert_eq!(paged, all);
    assert!(
        !events.body.contains("abc123secret") && !events.body.contains("hunter22"),
        "{}",
        events.body
    );
    server.request("DELETE", &format!("/api/sessions/{id}"), &json[..1], "").await;
}

#[tokio::test]
async fn a_stopped_session_is_deleted_when_its_retention_ends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server =
        TestServer::start_with(dir.path(), &["--idle-timeout-s", "1", "--retention-s", "1"]);
    let bearer = token(&server).await;
    let session = create_session(&server, &bearer).await;
    let id = session["id"].as_str().expect("id").to_owned();
    server
        .poll_get(&format!("/api/sessions/{id}"), &[("authorization", &bearer)], "a delete", |r| {
            r.status == StatusCode::NOT_FOUND
        })
        .await;
    assert!(!dir.path().join("sessions").join(&id).exists(), "its workspace is gone too");
}
