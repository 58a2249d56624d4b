//! Sign-in, tokens and the guards around them.

use http::StatusCode;

use crate::common::*;

#[tokio::test]
async fn a_login_link_signs_in_once_with_a_safe_cookie() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path());
    let reply = server.get(&server.login_path(), &[]).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(reply.header("location"), Some("/"));
    let cookie = reply.header("set-cookie").expect("set-cookie").to_owned();
    let attributes: Vec<String> =
        cookie.split(';').map(|a| a.trim().to_ascii_lowercase()).collect();
    assert!(attributes[0].starts_with("flint_session="), "{cookie}");
    assert!(attributes.contains(&"httponly".to_owned()), "{cookie}");
    assert!(attributes.contains(&"samesite=lax".to_owned()), "{cookie}");
    assert!(!attributes.iter().any(|a| a.starts_with("domain")), "no Domain attribute: {cookie}");
    let pair = cookie.split(';').next().expect("pair");

    let me = server.get("/api/me", &[("cookie", pair)]).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.json()["name"], "admin");
    assert_eq!(me.json()["via"], "cookie");

    // The link is dead now, with a page that says what to do.
    let again = server.get(&server.login_path(), &[]).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    assert!(again.body.contains("already used"), "{}", again.body);
    assert!(again.body.contains("flint login-url"), "{}", again.body);
    let forged = server.get("/login?token=0123", &[]).await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);

    // Signing out ends the cookie session.
    let out =
        server.request("POST", "/api/logout", &[("cookie", pair), ("x-flint-csrf", "1")], "").await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.body);
    server.get("/api/me", &[("cookie", pair)]).await.assert_error(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_api_needs_a_credential_and_healthz_does_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path());
    let health = server.get("/healthz", &[]).await;
    assert_eq!((health.status, health.body.as_str()), (StatusCode::OK, "ok\n"));
    server.get("/api/me", &[]).await.assert_error(StatusCode::UNAUTHORIZED);
    server.get("/api/tokens", &[]).await.assert_error(StatusCode::UNAUTHORIZED);
    server
        .get("/api/me", &[("authorization", "Bearer flint_nope")])
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
    server
        .get("/api/me", &[("authorization", "Basic YTpi")])
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
    server
        .get("/api/me", &[("cookie", "flint_session=forged")])
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
    server.get("/api/nothing-here", &[]).await.assert_error(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn tokens_are_made_used_scoped_and_revoked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path());
    let cookie = server.sign_in().await;

    // A cookie-authenticated mutation without JSON or the header looks like a cross-site
    // form post: refused.
    let csrf = server
        .request(
            "POST",
            "/api/tokens",
            &[("cookie", &cookie), ("content-type", "text/plain")],
            r#"{"name":"x"}"#,
        )
        .await;
    csrf.assert_error(StatusCode::FORBIDDEN);
    let bad = server
        .request(
            "POST",
            "/api/tokens",
            &[("cookie", &cookie), ("content-type", "application/json")],
            "{oops",
        )
        .await;
    bad.assert_error(StatusCode::BAD_REQUEST);

    let created = server
        .request(
            "POST",
            "/api/tokens",
            &[("cookie", &cookie), ("content-type", "application/json")],
            r#"{"name":"script"}"#,
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let token = created.json()["token"].as_str().expect("token").to_owned();
    assert!(token.starts_with("flint_"));
    let bearer = format!("Bearer {token}");
    let me = server.get("/api/me", &[("authorization", &bearer)]).await;
    assert_eq!(me.json()["via"], "token");
    // Bearer requests are not subject to the cookie's CSRF rule. A token makes tokens
    // confined to its person's sessions, never to another's nor to one that does not exist,
    // and never a user-wide one: a leaked token must not breed.
    let bearer_json = [("authorization", bearer.as_str()), ("content-type", "application/json")];
    let session = server.create_session(&bearer, r#"{"image":"test","network":false}"#).await;
    let session = session["id"].as_str().expect("id").to_owned();
    for (body, status) in [
        (r#"{"name":"agent","session_id":"abc"}"#.to_owned(), StatusCode::NOT_FOUND),
        (r#"{"name":"breeds"}"#.to_owned(), StatusCode::FORBIDDEN),
    ] {
        let refused = server.request("POST", "/api/tokens", &bearer_json, &body).await;
        refused.assert_error(status);
    }
    let body = format!(r#"{{"name":"agent","session_id":"{session}"}}"#);
    let scoped = server.request("POST", "/api/tokens", &bearer_json, &body).await;
    assert_eq!(scoped.status, StatusCode::CREATED, "{}", scoped.body);
    let scoped_bearer = format!("Bearer {}", scoped.json()["token"].as_str().expect("token"));
    let me = server.get("/api/me", &[("authorization", &scoped_bearer)]).await;
    assert_eq!(me.json()["session_scope"], session.as_str());
    let widen = server
        .request(
            "POST",
            "/api/tokens",
            &[("authorization", &scoped_bearer), ("content-type", "application/json")],
            r#"{"name":"wider"}"#,
        )
        .await;
    widen.assert_error(StatusCode::FORBIDDEN);

    let listed = server.get("/api/tokens", &[("authorization", &bearer)]).await;
    let tokens = listed.json();
    let tokens = tokens.as_array().expect("array");
    assert_eq!(tokens.len(), 2);
    assert!(!listed.body.contains(&token), "a listing never shows a secret");

    let id = created.json()["id"].as_str().expect("id").to_owned();
    let revoked = server
        .request("DELETE", &format!("/api/tokens/{id}"), &[("authorization", &bearer)], "")
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.body);
    server
        .get("/api/me", &[("authorization", &bearer)])
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
    let gone = server
        .request(
            "DELETE",
            &format!("/api/tokens/{id}"),
            &[("cookie", &cookie), ("x-flint-csrf", "1")],
            "",
        )
        .await;
    gone.assert_error(StatusCode::NOT_FOUND);

    // The CLI makes tokens too, straight into the store.
    let cli_token = flint(&["token", "create", "--name", "from-cli"], dir.path());
    let me = server.get("/api/me", &[("authorization", &format!("Bearer {cli_token}"))]).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);

    // One person holds at most 100 tokens: minting in a loop stops with a clear error.
    let cookie_json = [("cookie", cookie.as_str()), ("content-type", "application/json")];
    let mut made = 0;
    let refused = loop {
        let reply = server.request("POST", "/api/tokens", &cookie_json, r#"{"name":"n"}"#).await;
        if reply.status != StatusCode::CREATED {
            break reply;
        }
        made += 1;
        assert!(made <= 100, "more than 100 tokens were made");
    };
    refused.assert_error(StatusCode::CONFLICT);
    assert!(refused.body.contains("revoke one"), "{}", refused.body);
}

#[tokio::test]
async fn foreign_hosts_are_refused_and_metrics_are_served_on_loopback() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path());
    let port = server.addr.port();
    for host in ["evil.example", "evil.example:80", "10.1.2.3", "127.0.0.1.evil.example"] {
        let reply = server.get("/healthz", &[("host", host)]).await;
        reply.assert_error(StatusCode::MISDIRECTED_REQUEST);
    }
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}"), "[::1]".to_owned()] {
        let reply = server.get("/healthz", &[("host", &host)]).await;
        assert_eq!(reply.status, StatusCode::OK, "{host}");
    }
    let metrics = server.get("/metrics", &[]).await;
    assert_eq!(metrics.status, StatusCode::OK);
    for name in ["flint_sessions", "flint_session_start_seconds", "flint_websocket_clients"] {
        assert!(metrics.body.contains(name), "{name} missing from {}", metrics.body);
    }
}

#[tokio::test]
async fn a_restart_prints_a_new_link_and_keeps_sign_ins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = TestServer::start(dir.path());
    let cookie = server.sign_in().await;
    let old_link = server.login_path();
    server.kill();

    let server = TestServer::start(dir.path());
    assert_ne!(server.login_path(), old_link);
    let me = server.get("/api/me", &[("cookie", &cookie)]).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    server.get(&old_link, &[]).await;
    assert_eq!(server.get(&old_link, &[]).await.status, StatusCode::UNAUTHORIZED);

    // `flint login-url` mints another working link while the server runs.
    let url = flint(&["login-url"], dir.path());
    let path = &url[url.find("/login").expect("login url")..];
    assert_eq!(server.get(path, &[]).await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn the_web_app_is_served_at_every_non_api_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path());
    // The app (or, in a build without it, a page saying how to get it) is open to all: it
    // holds no secret and signs in through the API.
    let home = server.get("/", &[]).await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.header("content-type").is_some_and(|t| t.starts_with("text/html")));
    // The app's own routes get the same page; API misses and missing files are 404s.
    let route = server.get("/s/some-session", &[]).await;
    assert_eq!((route.status, &route.body), (StatusCode::OK, &home.body));
    server.get("/api/nothing-here", &[]).await.assert_error(StatusCode::NOT_FOUND);
    server.get("/missing.js", &[]).await.assert_error(StatusCode::NOT_FOUND);
    if let Some(etag) = home.header("etag") {
        let again = server.get("/", &[("if-none-match", etag)]).await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    } else {
        assert!(home.body.contains("cargo xtask run"), "{}", home.body);
    }
}

/// The close code `ws` ends with within `within` (frames before it are skipped).
async fn close_code(ws: &mut Ws, within: std::time::Duration) -> Option<u16> {
    use futures_util::StreamExt as _;
    use tokio_tungstenite::tungstenite::Message;
    let closed = tokio::time::timeout(within, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return None,
            }
        }
    });
    closed.await.unwrap_or_else(|_| panic!("the websocket was still open after {within:?}"))
}

#[tokio::test]
async fn revoking_a_token_closes_the_websockets_opened_with_it_within_a_second() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path());
    let cookie = server.sign_in().await;
    let created = server
        .request(
            "POST",
            "/api/tokens",
            &[("cookie", &cookie), ("content-type", "application/json")],
            r#"{"name":"agent"}"#,
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let bearer = format!("Bearer {}", created.json()["token"].as_str().expect("token"));
    let token_id = created.json()["id"].as_str().expect("id").to_owned();
    let session = server.create_session(&bearer, r#"{"image":"test","network":false}"#).await;
    let id = session["id"].as_str().expect("id");
    let origin = server.origin();
    let headers = [("authorization", bearer.as_str()), ("origin", origin.as_str())];
    // The session's first shell, and the caller's session events.
    let mut terminal =
        server.ws(&format!("/api/sessions/{id}/terminals/1/ws"), &headers).await.expect("terminal");
    ws_type(&mut terminal, "echo before-$((6*7))\n").await;
    ws_read_until(&mut terminal, "before-42").await;
    let mut events = server.ws("/api/events/ws", &headers).await.expect("events");

    let revoked = server
        .request(
            "DELETE",
            &format!("/api/tokens/{token_id}"),
            &[("cookie", &cookie), ("x-flint-csrf", "1")],
            "",
        )
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.body);
    let second = std::time::Duration::from_secs(1);
    assert_eq!(close_code(&mut terminal, second).await, Some(4401), "the terminal's close code");
    close_code(&mut events, second).await;
    // Nor does the token open a new one.
    let again = server.ws(&format!("/api/sessions/{id}/terminals/1/ws"), &headers).await;
    assert_eq!(again.err(), Some(StatusCode::UNAUTHORIZED));
}

#[tokio::test]
async fn signing_out_closes_the_websockets_opened_with_that_sign_in_within_a_second() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path());
    let cookie = server.sign_in().await;
    // A second sign-in of the same person (another browser), from a new link.
    let url = flint(&["login-url"], dir.path());
    let other = server.get(&url[url.find("/login").expect("login url")..], &[]).await;
    let other_tab = other.header("set-cookie").expect("set-cookie");
    let other_tab = other_tab.split(';').next().expect("pair").to_owned();
    let json = [("cookie", cookie.as_str()), ("content-type", "application/json")];
    let body = r#"{"image":"test","network":false}"#;
    let session = server.request("POST", "/api/sessions", &json, body).await.json();
    let id = session["id"].as_str().expect("id").to_owned();
    let origin = server.origin();
    let headers = [("cookie", cookie.as_str()), ("origin", origin.as_str())];
    let mut terminal =
        server.ws(&format!("/api/sessions/{id}/terminals/1/ws"), &headers).await.expect("terminal");
    ws_type(&mut terminal, "echo signed-$((6*7))\n").await;
    ws_read_until(&mut terminal, "signed-42").await;
    let mut events = server.ws("/api/events/ws", &headers).await.expect("events");
    // Another sign-in of the same person keeps its sockets.
    let kept = [("cookie", other_tab.as_str()), ("origin", origin.as_str())];
    let mut other =
        server.ws(&format!("/api/sessions/{id}/terminals/1/ws"), &kept).await.expect("other");

    let signed_out = [("cookie", cookie.as_str()), ("x-flint-csrf", "1")];
    let out = server.request("POST", "/api/logout", &signed_out, "").await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.body);
    let second = std::time::Duration::from_secs(1);
    assert_eq!(close_code(&mut terminal, second).await, Some(4401), "the terminal's close code");
    close_code(&mut events, second).await;
    ws_type(&mut other, "echo still-$((6*7))\n").await;
    ws_read_until(&mut other, "still-42").await;
    let again = server.ws(&format!("/api/sessions/{id}/terminals/1/ws"), &headers).await;
    assert_eq!(again.err(), Some(StatusCode::UNAUTHORIZED));
}
