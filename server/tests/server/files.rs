//! The files API as an editor uses it: stat to see a change on disk, a write whose
//! precondition (`if_modified_ms`) keeps it from overwriting a change made in the shell, and
//! one (`if_absent`) that makes a new file without replacing one made meanwhile.

use http::StatusCode;

use crate::common::*;

#[tokio::test]
async fn a_save_with_if_modified_ms_never_overwrites_a_change_made_in_the_shell() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path());
    let bearer = server.bearer().await;
    let auth = [("authorization", bearer.as_str())];
    let id = server
        .running_session(&bearer, r#"{"image":"test","name":"files","cpus":0.5,"memory_mb":512}"#)
        .await;
    let base = format!("/api/sessions/{id}");
    let put = |query: &str| format!("{base}/files/content?path=notes.txt{query}");

    // Opened: written (by someone) and stat'ed; the stat is what the editor holds.
    let written = server.request("PUT", &put(""), &auth, "v1").await;
    assert_eq!(written.status, StatusCode::OK, "{}", written.body);
    let stat = server.get(&format!("{base}/files/stat?path=/workspace/notes.txt"), &auth).await;
    assert_eq!(stat.status, StatusCode::OK, "{}", stat.body);
    assert_eq!(stat.json(), written.json(), "stat answers what the write answered");
    let read_at = stat.json()["modified_ms"].as_i64().expect("modified_ms");

    // Saved unchanged: goes through, and the answer is the new time to hold.
    let saved =
        server.request("PUT", &put(&format!("&if_modified_ms={read_at}")), &auth, "v2").await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    assert_eq!(saved.json()["size"], 2);
    let held = saved.json()["modified_ms"].as_i64().expect("modified_ms");

    // The shell changes it (with a time far from the held one: no same-millisecond luck).
    let (code, _, stderr) = server
        .sh(&bearer, &id, "printf 'from the shell' > /workspace/notes.txt && touch -d @2000000000 /workspace/notes.txt")
        .await;
    assert_eq!(code, 0, "{stderr}");
    let stat = server.get(&format!("{base}/files/stat?path=notes.txt"), &auth).await;
    assert_eq!(stat.json()["modified_ms"], 2_000_000_000_000_i64);
    assert_eq!(stat.json()["size"], 14);

    // A save with the held time is refused with a readable 409; the shell's text stays.
    let refused =
        server.request("PUT", &put(&format!("&if_modified_ms={held}")), &auth, "v3").await;
    refused.assert_error(StatusCode::CONFLICT);
    assert!(
        refused.json()["error"].as_str().is_some_and(|e| e.contains("changed on disk")),
        "{}",
        refused.body
    );
    let content = server.get(&put(""), &auth).await;
    assert_eq!(content.body, "from the shell");

    // "Overwrite": the same save without the precondition.
    let forced = server.request("PUT", &put(""), &auth, "v3").await;
    assert_eq!(forced.status, StatusCode::OK, "{}", forced.body);
    assert_eq!(server.get(&put(""), &auth).await.body, "v3");

    // Deleted in the shell: the stat is a 404, a conditional save a 409 (not a new file).
    let held = forced.json()["modified_ms"].as_i64().expect("modified_ms");
    let (code, _, stderr) = server.sh(&bearer, &id, "rm /workspace/notes.txt").await;
    assert_eq!(code, 0, "{stderr}");
    server
        .get(&format!("{base}/files/stat?path=notes.txt"), &auth)
        .await
        .assert_error(StatusCode::NOT_FOUND);
    server
        .request("PUT", &put(&format!("&if_modified_ms={held}")), &auth, "v4")
        .await
        .assert_error(StatusCode::CONFLICT);
    server.get(&put(""), &auth).await.assert_error(StatusCode::NOT_FOUND);

    // "New file": made only while nothing is there; the second maker gets a 409 and the
    // first one's text stays.
    let made = server.request("PUT", &put("&if_absent=true"), &auth, "mine").await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.body);
    let second = server.request("PUT", &put("&if_absent=true"), &auth, "theirs").await;
    second.assert_error(StatusCode::CONFLICT);
    assert!(second.body.contains("already exists"), "{}", second.body);
    assert_eq!(server.get(&put(""), &auth).await.body, "mine");
    server.request("DELETE", &base, &auth, "").await;
}
