//! People in a session: invite links with a role, guests with a cookie for that session
//! only, the role enforced on every call and websocket message, presence and "last typed
//! by", and revoking (which closes a guest's websockets at once).

use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use http::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::common::*;

struct Fixture {
    server: TestServer,
    _dir: tempfile::TempDir,
    /// The owner's sign-in cookie.
    owner: String,
    id: String,
    terminal: String,
}

impl Fixture {
    async fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = TestServer::start(dir.path());
        let owner = server.sign_in().await;
        let json = [("cookie", owner.as_str()), ("content-type", "application/json")];
        let body = r#"{"image":"test","cpus":0.5,"memory_mb":512}"#;
        let created = server.request("POST", "/api/sessions", &json, body).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        let id = created.json()["id"].as_str().expect("id").to_owned();
        let path = format!("/api/sessions/{id}/terminals");
        let terminal = server.request("POST", &path, &json, "{}").await;
        assert_eq!(terminal.status, StatusCode::CREATED, "{}", terminal.body);
        let terminal = terminal.json()["id"].as_str().expect("tid").to_owned();
        Fixture { server, _dir: dir, owner, id, terminal }
    }

    /// The owner makes an invite link; (its id, its secret).
    async fn invite(&self, role: &str, expires_s: u64) -> (String, String) {
        let json = [("cookie", self.owner.as_str()), ("content-type", "application/json")];
        let body = json!({ "role": role, "expires_s": expires_s }).to_string();
        let path = format!("/api/sessions/{}/invites", self.id);
        let reply = self.server.request("POST", &path, &json, &body).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        let invite = reply.json();
        assert_eq!(invite["role"], role);
        let url = invite["url"].as_str().expect("url");
        let secret = url.rsplit_once("/join/").expect("a /join/ link").1.to_owned();
        (invite["id"].as_str().expect("id").to_owned(), secret)
    }

    /// Accepts an invite under `name`.
    async fn accept(&self, secret: &str, name: &str) -> Reply {
        let body = json!({ "token": secret, "name": name }).to_string();
        let json = [("content-type", "application/json")];
        self.server.request("POST", "/api/invites/accept", &json, &body).await
    }

    /// Accepts an invite; the guest's cookie.
    async fn join(&self, secret: &str, name: &str) -> String {
        let reply = self.accept(secret, name).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(reply.json()["session_id"], self.id.as_str());
        let cookie = reply.header("set-cookie").expect("a guest cookie");
        assert!(cookie.starts_with("flint_guest=") && cookie.contains("HttpOnly"), "{cookie}");
        cookie.split(';').next().expect("pair").to_owned()
    }

    async fn terminal_ws(&self, cookie: &str) -> Ws {
        let origin = self.server.origin();
        let path = format!("/api/sessions/{}/terminals/{}/ws", self.id, self.terminal);
        self.server.ws(&path, &[("cookie", cookie), ("origin", &origin)]).await.expect("websocket")
    }

    async fn events_ws(&self, cookie: &str) -> Ws {
        let origin = self.server.origin();
        self.server
            .ws("/api/events/ws", &[("cookie", cookie), ("origin", &origin)])
            .await
            .expect("events websocket")
    }

    async fn get(&self, cookie: &str, path: &str) -> Reply {
        self.server.get(path, &[("cookie", cookie)]).await
    }
}

/// Whether a share link's path lets a browser in (the preview trades it for a cookie).
async fn share_opens(f: &Fixture, path: &str) -> bool {
    let host = format!("8000-{}.preview.localhost", f.id);
    let reply = f.server.get(path, &[("host", &host), ("accept", "text/html")]).await;
    reply.status == StatusCode::SEE_OTHER
}

/// Reads text messages until one satisfies `pick`.
async fn next_text(ws: &mut Ws, what: &str, pick: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = tokio::time::timeout(left, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no {what} within 20 s"));
        match message {
            Some(Ok(Message::Text(text))) => {
                let value: Value = serde_json::from_str(&text).expect("json");
                if pick(&value) {
                    return value;
                }
            }
            Some(Ok(_)) => {}
            other => panic!("the socket ended while waiting for {what}: {other:?}"),
        }
    }
}

/// Reads until the socket closes; its close code.
async fn closed(ws: &mut Ws) -> Option<CloseCode> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Err(_) => panic!("the socket stayed open"),
            Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| f.code),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_)) | None) => return None,
        }
    }
}

fn names(presence: &Value) -> Vec<String> {
    let people = presence["people"].as_array().cloned().unwrap_or_default();
    people.iter().filter_map(|p| p["name"].as_str().map(str::to_owned)).collect()
}

#[tokio::test]
async fn an_editor_types_a_viewer_watches_and_revoking_cuts_them_off() {
    let f = Fixture::new().await;
    let (editor_invite, editor_secret) = f.invite("editor", 3600).await;
    let (_, viewer_secret) = f.invite("viewer", 3600).await;
    let editor = f.join(&editor_secret, "Grace").await;
    let viewer = f.join(&viewer_secret, "Linus").await;

    // The owner watches the session's presence live.
    let mut owner_events = f.events_ws(&f.owner).await;
    let mut owner_term = f.terminal_ws(&f.owner).await;
    ws_read_until(&mut owner_term, "# ").await;

    // A guest sees their one session and who they are.
    let me = f.get(&editor, "/api/me").await.json();
    assert_eq!(
        (&me["via"], &me["role"], &me["name"]),
        (&json!("guest"), &json!("editor"), &json!("Grace"))
    );
    assert_eq!(me["session_scope"], f.id.as_str());
    let listed = f.get(&viewer, "/api/sessions").await.json();
    let ids: Vec<&str> =
        listed.as_array().expect("list").iter().filter_map(|s| s["id"].as_str()).collect();
    assert_eq!(ids, [f.id.as_str()]);

    // What a guest does through the API is in the feed under their name.
    let exec = json!({ "argv": ["true"] }).to_string();
    let path = format!("/api/sessions/{}/exec", f.id);
    let headers = [("cookie", editor.as_str()), ("content-type", "application/json")];
    let ran = f.server.request("POST", &path, &headers, &exec).await;
    assert_eq!(ran.status, StatusCode::OK, "{}", ran.body);
    let feed = f.get(&f.owner, &format!("/api/sessions/{}/events", f.id)).await.json();
    let exec = feed.as_array().expect("feed").iter().rev().find(|e| e["kind"] == "exec");
    assert_eq!(exec.map(|e| &e["actor"]), Some(&json!("Grace")), "{feed}");

    // The editor types into the shared shell; the owner sees it, and who typed last.
    let mut editor_term = f.terminal_ws(&editor).await;
    ws_type(&mut editor_term, "echo from-$((40+2))-grace\n").await;
    ws_read_until(&mut owner_term, "from-42-grace").await;
    let presence = next_text(&mut owner_events, "presence with Grace typing", |m| {
        m["type"] == "presence"
            && m["presence"]["typists"].as_array().is_some_and(|t| !t.is_empty())
    })
    .await;
    let typist = &presence["presence"]["typists"][0];
    assert_eq!((&typist["terminal"], &typist["name"]), (&json!(f.terminal), &json!("Grace")));

    // The viewer sees the terminal but cannot type: the message is refused with a 403.
    let mut viewer_term = f.terminal_ws(&viewer).await;
    ws_read_until(&mut viewer_term, "from-42-grace").await;
    ws_type(&mut viewer_term, "echo from-viewer-$((6*7))\n").await;
    let refused = next_text(&mut viewer_term, "an error", |m| m["type"] == "error").await;
    let message = refused["message"].as_str().unwrap_or_default();
    assert!(message.contains("403") && message.contains("viewer"), "{message}");
    // Nor does a viewer's window size the shared terminal, and more keystrokes get no more
    // answers (one refusal per socket: a viewer typing grows nothing in the server).
    let size = || async {
        let list = f.get(&f.owner, &format!("/api/sessions/{}/terminals", f.id)).await.json();
        let terminal =
            list.as_array().and_then(|l| l.iter().find(|t| t["id"] == f.terminal.as_str()));
        terminal.map(|t| (t["cols"].clone(), t["rows"].clone())).expect("the terminal")
    };
    let before = size().await;
    {
        use futures_util::SinkExt as _;
        let resize = json!({"type": "resize", "cols": 20, "rows": 5}).to_string();
        viewer_term.send(Message::Text(resize.into())).await.expect("send");
    }
    for _ in 0..50 {
        ws_type(&mut viewer_term, "x").await;
    }
    let refusal = async {
        while let Some(Ok(message)) = viewer_term.next().await {
            if let Message::Text(text) = message
                && serde_json::from_str::<Value>(&text).is_ok_and(|m| m["type"] == "error")
            {
                return Some(text.to_string());
            }
        }
        None
    };
    match tokio::time::timeout(Duration::from_secs(1), refusal).await {
        Err(_) => {}
        Ok(Some(text)) => panic!("a keystroke was refused again: {text}"),
        Ok(None) => panic!("the viewer's socket ended"),
    }
    assert_eq!(size().await, before, "a viewer's window resized the terminal");
    // Everyone present, each once.
    let path = format!("/api/sessions/{}/people", f.id);
    let people = f.get(&viewer, &path).await.json();
    let mut present = names(&people);
    present.sort();
    assert_eq!(present, ["Grace", "Linus", "admin"], "{people}");
    for (name, role) in [("Grace", "editor"), ("Linus", "viewer"), ("admin", "owner")] {
        let person =
            people["people"].as_array().expect("people").iter().find(|p| p["name"] == name);
        assert_eq!(person.map(|p| &p["role"]), Some(&json!(role)), "{people}");
    }

    // A viewer's file write is a 403; an editor's goes through. Reads are fine for both.
    let write = format!("/api/sessions/{}/files/content?path=/workspace/notes.txt", f.id);
    let by_viewer =
        f.server.request("PUT", &write, &[("cookie", &viewer), ("x-flint-csrf", "1")], "v").await;
    by_viewer.assert_error(StatusCode::FORBIDDEN);
    let by_editor =
        f.server.request("PUT", &write, &[("cookie", &editor), ("x-flint-csrf", "1")], "e").await;
    assert!(by_editor.status.is_success(), "{}", by_editor.body);
    let read = f.get(&viewer, &write).await;
    assert_eq!((read.status, read.body.as_str()), (StatusCode::OK, "e"));
    let exec = format!("/api/sessions/{}/exec", f.id);
    let json_viewer = [("cookie", viewer.as_str()), ("content-type", "application/json")];
    let ran = f.server.request("POST", &exec, &json_viewer, r#"{"argv":["true"]}"#).await;
    ran.assert_error(StatusCode::FORBIDDEN);
    // The viewer's keystrokes never reached the shell: everything the shell printed since
    // up to the owner's marker is free of them.
    ws_type(&mut owner_term, "echo marker-$((2+3))\n").await;
    let screen = ws_read_until(&mut owner_term, "marker-5").await;
    assert!(!screen.contains("from-viewer"), "a viewer's keys reached the shell: {screen}");

    // Guests may not manage the session or make tokens.
    let json_editor = [("cookie", editor.as_str()), ("content-type", "application/json")];
    let invites = format!("/api/sessions/{}/invites", f.id);
    let guest_invites =
        f.server.request("POST", &invites, &json_editor, r#"{"role":"editor"}"#).await;
    guest_invites.assert_error(StatusCode::FORBIDDEN);
    let token = f.server.request("POST", "/api/tokens", &json_editor, r#"{"name":"x"}"#).await;
    token.assert_error(StatusCode::FORBIDDEN);
    let delete = f
        .server
        .request(
            "DELETE",
            &format!("/api/sessions/{}", f.id),
            &[("cookie", &editor), ("x-flint-csrf", "1")],
            "",
        )
        .await;
    delete.assert_error(StatusCode::FORBIDDEN);

    // A share link the editor made, and one the owner made: both open the port now.
    let shares = format!("/api/sessions/{}/previews/8000/shares", f.id);
    let mut share_paths = Vec::new();
    for cookie in [&editor, &f.owner] {
        let headers = [("cookie", cookie.as_str()), ("content-type", "application/json")];
        let share = f.server.request("POST", &shares, &headers, "{}").await;
        assert_eq!(share.status, StatusCode::CREATED, "{}", share.body);
        let url = share.json()["url"].as_str().expect("url").to_owned();
        share_paths.push(url[url.find("/?flint_share=").expect("a share path")..].to_owned());
    }
    assert!(share_opens(&f, &share_paths[0]).await, "the editor's share link opens");

    // Revoking the editor's invite closes their websocket at once; their cookie is dead.
    let revoke = format!("/api/sessions/{}/invites/{editor_invite}", f.id);
    let reply = f
        .server
        .request("DELETE", &revoke, &[("cookie", &f.owner), ("x-flint-csrf", "1")], "")
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    assert_eq!(closed(&mut editor_term).await, Some(CloseCode::Library(4403)));
    assert_access_ended(&f.get(&editor, "/api/me").await, "revoked your invite");
    f.server
        .ws(
            &format!("/api/sessions/{}/terminals/{}/ws", f.id, f.terminal),
            &[("cookie", &editor), ("origin", &f.server.origin())],
        )
        .await
        .expect_err("refused");
    let gone = next_text(&mut owner_events, "presence without Grace", |m| {
        m["type"] == "presence" && !names(&m["presence"]).contains(&"Grace".to_owned())
    })
    .await;
    assert!(names(&gone["presence"]).contains(&"Linus".to_owned()), "{gone}");
    // The share link the editor made ended with them; the owner's did not.
    assert!(!share_opens(&f, &share_paths[0]).await, "the editor's share link outlived them");
    assert!(share_opens(&f, &share_paths[1]).await, "the owner's share link ended too");
    // The revoked link no longer lets anyone in; the viewer is unaffected.
    f.accept(&editor_secret, "Mallory").await.assert_error(StatusCode::GONE);
    assert_eq!(f.get(&viewer, "/api/me").await.status, StatusCode::OK);

    // The owner lists what is left: the viewer's invite with Linus.
    let list = f.get(&f.owner, &invites).await.json();
    let left: Vec<&Value> = list.as_array().expect("invites").iter().collect();
    assert_eq!(left.len(), 1, "{list}");
    assert_eq!(left[0]["guests"][0]["name"], "Linus");
    assert!(left[0]["url"].is_null(), "the link is shown once: {list}");

    // Removing a person closes their websockets too.
    let linus = left[0]["guests"][0]["id"].as_str().expect("guest id");
    let remove = format!("/api/sessions/{}/people/{linus}", f.id);
    let reply = f
        .server
        .request("DELETE", &remove, &[("cookie", &f.owner), ("x-flint-csrf", "1")], "")
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    assert_eq!(closed(&mut viewer_term).await, Some(CloseCode::Library(4403)));
    assert_access_ended(&f.get(&viewer, "/api/me").await, "removed you");
    // The owner's own terminal carries on.
    ws_type(&mut owner_term, "echo still-$((1+1))\n").await;
    ws_read_until(&mut owner_term, "still-2").await;
}

/// A dead guest cookie is told why (its page says so), not to sign in: 401 `access_ended`.
fn assert_access_ended(reply: &Reply, why: &str) {
    reply.assert_error(StatusCode::UNAUTHORIZED);
    let body = reply.json();
    assert_eq!(body["code"], "access_ended", "{body}");
    assert!(body["error"].as_str().is_some_and(|e| e.contains(why)), "{body}");
}

#[tokio::test]
async fn a_guest_whose_session_was_deleted_is_told_so() {
    let f = Fixture::new().await;
    let (_, secret) = f.invite("viewer", 3600).await;
    let guest = f.join(&secret, "Ada").await;
    assert_eq!(f.get(&guest, "/api/me").await.status, StatusCode::OK);
    let csrf = [("cookie", f.owner.as_str()), ("x-flint-csrf", "1")];
    let deleted = f.server.request("DELETE", &format!("/api/sessions/{}", f.id), &csrf, "").await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    assert_access_ended(&f.get(&guest, "/api/me").await, "the session was deleted");
    // Someone with neither cookie is still simply asked to sign in.
    let nobody = f.server.get("/api/me", &[]).await;
    nobody.assert_error(StatusCode::UNAUTHORIZED);
    assert_eq!(nobody.json()["code"], "unauthorized");
}

#[tokio::test]
async fn invite_links_are_checked_and_a_guest_stays_in_their_session() {
    let f = Fixture::new().await;
    // An expired link is refused.
    let (short_id, short) = f.invite("editor", 1).await;
    // Polled until the server's own expiry time has passed (the link's clock is the wall's).
    let path = format!("/api/sessions/{}/invites", f.id);
    let listed = f.server.get(&path, &[("cookie", f.owner.as_str())]).await.json();
    let expires_ms = listed
        .as_array()
        .and_then(|all| all.iter().find(|i| i["id"] == short_id.as_str()))
        .and_then(|i| i["expires_ms"].as_i64())
        .expect("the short invite is listed with its expiry");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while server::store::now_ms() <= expires_ms {
        assert!(std::time::Instant::now() < deadline, "the clock never passed {expires_ms}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let expired = f.accept(&short, "Late").await;
    expired.assert_error(StatusCode::GONE);
    assert!(expired.body.contains("expired"), "{}", expired.body);
    // An unknown one, a bad name, an owner invite.
    f.accept("0123456789abcdef", "Nobody").await.assert_error(StatusCode::NOT_FOUND);
    let (_, secret) = f.invite("viewer", 60).await;
    f.accept(&secret, "   ").await.assert_error(StatusCode::BAD_REQUEST);
    let json = [("cookie", f.owner.as_str()), ("content-type", "application/json")];
    let path = format!("/api/sessions/{}/invites", f.id);
    let owner_role = f.server.request("POST", &path, &json, r#"{"role":"owner"}"#).await;
    owner_role.assert_error(StatusCode::BAD_REQUEST);
    // Invites are the owner's, from the web app: not a token's.
    let made = f.server.request("POST", "/api/tokens", &json, r#"{"name":"script"}"#).await;
    let bearer = format!("Bearer {}", made.json()["token"].as_str().expect("token"));
    let token_json = [("authorization", bearer.as_str()), ("content-type", "application/json")];
    let by_token = f.server.request("POST", &path, &token_json, r#"{"role":"viewer"}"#).await;
    by_token.assert_error(StatusCode::FORBIDDEN);

    // A guest of this session finds no other.
    let guest = f.join(&secret, "Visitor").await;

    // A private preview of this session opens for the guest, until they are removed.
    let exec = format!("/api/sessions/{}/exec", f.id);
    let serve = r#"{"argv":["bash","-c","cd /tmp && setsid -f python3 -m http.server 8000 >/dev/null 2>&1; for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/8000) 2>/dev/null && exit 0; sleep 0.1; done; exit 1"]}"#;
    let started = f.server.request("POST", &exec, &json, serve).await;
    assert_eq!(started.json()["exit_code"], 0, "{}", started.body);
    let open = format!("/preview/open?session={}&port=8000", f.id);
    let minted = f.get(&guest, &open).await;
    assert_eq!(minted.status, StatusCode::SEE_OTHER, "{}", minted.body);
    let host = format!("8000-{}.preview.localhost:{}", f.id, f.server.addr.port());
    let location = minted.header("location").expect("location").to_owned();
    let path = location.strip_prefix(&format!("http://{host}")).expect("to the preview host");
    let html = [("host", host.as_str()), ("accept", "text/html")];
    let exchanged = f.server.get(path, &html).await;
    assert_eq!(exchanged.status, StatusCode::SEE_OTHER, "{}", exchanged.body);
    let set_cookie = exchanged.header("set-cookie").expect("cookie");
    let preview_cookie = set_cookie.split(';').next().expect("pair").to_owned();
    let with_cookie = [("host", host.as_str()), ("cookie", preview_cookie.as_str())];
    let page = f.server.get("/", &with_cookie).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Directory listing"), "{}", page.body);
    // Nobody's cookie, no ticket.
    let stranger = f.server.get(&open, &[]).await;
    assert_eq!(stranger.status, StatusCode::UNAUTHORIZED, "{}", stranger.body);
    let other = f
        .server
        .request("POST", "/api/sessions", &json, r#"{"image":"test","cpus":0.5,"memory_mb":512}"#)
        .await;
    let other = other.json()["id"].as_str().expect("id").to_owned();
    f.get(&guest, &format!("/api/sessions/{other}")).await.assert_error(StatusCode::NOT_FOUND);
    let origin = f.server.origin();
    let mut events = f.events_ws(&guest).await;
    let snapshot = next_text(&mut events, "a snapshot", |m| m["type"] == "snapshot").await;
    let sessions = snapshot["sessions"].as_array().expect("sessions");
    assert_eq!(sessions.len(), 1, "{snapshot}");
    assert_eq!(sessions[0]["id"], f.id.as_str());
    let path = format!("/api/sessions/{other}/terminals/x/ws");
    assert_eq!(
        f.server.ws(&path, &[("cookie", &guest), ("origin", &origin)]).await.err(),
        Some(StatusCode::NOT_FOUND)
    );
    let elsewhere = f.get(&guest, &format!("/preview/open?session={other}&port=8000")).await;
    assert_eq!(elsewhere.status, StatusCode::UNAUTHORIZED, "{}", elsewhere.body);

    // Removed: the preview's cookie stops working at the next request.
    let list = f.get(&f.owner, &format!("/api/sessions/{}/invites", f.id)).await.json();
    let visitor = list[0]["guests"][0]["id"].as_str().expect("guest").to_owned();
    let remove = format!("/api/sessions/{}/people/{visitor}", f.id);
    let csrf = [("cookie", f.owner.as_str()), ("x-flint-csrf", "1")];
    let removed = f.server.request("DELETE", &remove, &csrf, "").await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{}", removed.body);
    let as_json = [
        ("host", host.as_str()),
        ("cookie", preview_cookie.as_str()),
        ("accept", "application/json"),
    ];
    f.server.get("/", &as_json).await.assert_error(StatusCode::UNAUTHORIZED);
}
