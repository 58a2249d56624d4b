//! Preview URLs: an app in a sandbox, reached on `{port}-{session}.preview.localhost` through
//! the real server, with its access rules, streaming bodies, SSE and upgrades.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::common::*;

const APP: &str = include_str!("preview_app.py");

struct Fixture {
    server: TestServer,
    _dir: tempfile::TempDir,
    cookie: String,
    /// `Bearer ...`.
    bearer: String,
    /// The raw token, for `X-Flint-Token`.
    token: String,
    id: String,
}

impl Fixture {
    /// A session running the test app on 8000, `http.server` on 8001 and the app on `::1`
    /// only on 8002.
    async fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = TestServer::start(dir.path());
        let cookie = server.sign_in().await;
        let reply = server
            .request(
                "POST",
                "/api/tokens",
                &[("cookie", &cookie), ("content-type", "application/json")],
                r#"{"name":"preview"}"#,
            )
            .await;
        let token = reply.json()["token"].as_str().expect("token").to_owned();
        let bearer = format!("Bearer {token}");
        let id = create(&server, &bearer).await;
        let f = Fixture { server, _dir: dir, cookie, bearer, token, id };
        let put = f
            .server
            .request(
                "PUT",
                &format!("/api/sessions/{}/files/content?path=/workspace/app.py", f.id),
                &[("authorization", &f.bearer)],
                APP,
            )
            .await;
        assert!(put.status.is_success(), "{}", put.body);
        f.exec(
            "cd /workspace && setsid -f python3 app.py 8000 >/tmp/app.log 2>&1; \
             setsid -f python3 -m http.server 8001 >/dev/null 2>&1; \
             setsid -f python3 app.py 8002 ::1 >/tmp/app6.log 2>&1",
        )
        .await;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ports = f
                .server
                .get(&format!("/api/sessions/{}/ports", f.id), &[("authorization", &f.bearer)])
                .await;
            let listeners = ports.json()["listeners"].as_array().cloned().unwrap_or_default();
            let open: Vec<u64> = listeners.iter().filter_map(|l| l["port"].as_u64()).collect();
            if [8000, 8001, 8002].iter().all(|p| open.contains(p)) {
                let web = listeners.iter().find(|l| l["port"] == 8001).expect("8001");
                assert!(web.to_string().contains("python3"), "the process shows: {web}");
                break;
            }
            assert!(Instant::now() < deadline, "the apps did not start: {}", ports.body);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        f
    }

    async fn exec(&self, script: &str) -> String {
        let body = serde_json::json!({ "argv": ["bash", "-c", script], "env": {} });
        let reply = self
            .server
            .request(
                "POST",
                &format!("/api/sessions/{}/exec", self.id),
                &[("authorization", &self.bearer), ("content-type", "application/json")],
                &body.to_string(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.json()["stdout"].as_str().unwrap_or_default().to_owned()
    }

    fn host(&self, port: u16) -> String {
        format!("{port}-{}.preview.localhost:{}", self.id, self.server.addr.port())
    }

    /// A request to a preview host, the body read whole.
    async fn preview(
        &self,
        port: u16,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Reply {
        let host = self.host(port);
        let mut all = vec![("host", host.as_str())];
        all.extend_from_slice(headers);
        self.server.request(method, path, &all, "").await
    }

    /// A request to a preview host, answered as a stream.
    async fn open(
        &self,
        port: u16,
        method: &str,
        path: &str,
        body: Bytes,
    ) -> http::Response<hyper::body::Incoming> {
        let stream = tokio::net::TcpStream::connect(self.server.addr).await.expect("connect");
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
        tokio::spawn(connection);
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.host(port))
            .header("x-flint-token", &self.token)
            .body(Full::new(body))
            .expect("request");
        sender.send_request(request).await.expect("response")
    }
}

pub(crate) async fn create(server: &TestServer, bearer: &str) -> String {
    server.running_session(bearer, r#"{"image":"test","network":false}"#).await
}

#[tokio::test]
async fn a_port_is_private_and_opened_by_ticket_cookie_or_token() {
    let f = Fixture::new().await;
    let token = f.token.clone();
    // A script with its token.
    let listing = f.preview(8001, "GET", "/", &[("x-flint-token", &token)]).await;
    assert_eq!(listing.status, StatusCode::OK, "{}", listing.body);
    assert!(listing.body.contains("Directory listing for /"), "{}", listing.body);
    assert!(listing.body.contains("app.py"));
    // Nobody: 401 for an API client, a bounce through the app for a browser.
    let anonymous = f.preview(8001, "GET", "/", &[("accept", "application/json")]).await;
    anonymous.assert_error(StatusCode::UNAUTHORIZED);
    let browser = f.preview(8001, "GET", "/a?b=1", &[("accept", "text/html")]).await;
    assert_eq!(browser.status, StatusCode::SEE_OTHER);
    let bounce = browser.header("location").expect("location").to_owned();
    let app_path = &bounce[bounce.find("/preview/open").expect("to the app")..];
    assert!(app_path.contains(&format!("session={}", f.id)) && app_path.contains("port=8001"));
    // The app, given its cookie, mints a ticket for the same path.
    let minted = f.server.get(app_path, &[("cookie", &f.cookie)]).await;
    assert_eq!(minted.status, StatusCode::SEE_OTHER, "{}", minted.body);
    let with_ticket = minted.header("location").expect("location").to_owned();
    let prefix = format!("http://{}", f.host(8001));
    let path = with_ticket.strip_prefix(&prefix).expect("to the preview host");
    assert!(path.starts_with("/a?b=1&flint_ticket="), "{path}");
    let exchanged = f.preview(8001, "GET", path, &[("accept", "text/html")]).await;
    assert_eq!(exchanged.status, StatusCode::SEE_OTHER);
    let back = format!("{prefix}/a?b=1");
    assert_eq!(exchanged.header("location"), Some(back.as_str()), "the ticket leaves the URL");
    let set_cookie = exchanged.header("set-cookie").expect("a cookie").to_owned();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    assert!(!set_cookie.to_ascii_lowercase().contains("domain="), "host-only: {set_cookie}");
    let cookie = set_cookie.split(';').next().expect("pair").to_owned();
    let again = f.preview(8001, "GET", path, &[("accept", "application/json")]).await;
    again.assert_error(StatusCode::FORBIDDEN);
    let by_cookie = f.preview(8001, "GET", "/", &[("cookie", &cookie)]).await;
    assert_eq!(by_cookie.status, StatusCode::OK);
    // A page may set a cookie of the same name (a script on its host): the valid one counts.
    let both = format!("flint_preview=forged-by-the-page; {cookie}");
    let by_either = f.preview(8001, "GET", "/", &[("cookie", &both)]).await;
    assert_eq!(by_either.status, StatusCode::OK, "{}", by_either.body);
    // The preview cookie is for its own host only; the app's cookie is no key at all.
    let other_port = f
        .preview(8000, "GET", "/headers", &[("cookie", &cookie), ("accept", "application/json")])
        .await;
    other_port.assert_error(StatusCode::UNAUTHORIZED);
    let app_cookie =
        f.preview(8001, "GET", "/", &[("cookie", &f.cookie), ("accept", "application/json")]).await;
    app_cookie.assert_error(StatusCode::UNAUTHORIZED);

    // No path sends the browser off the preview host, in the app's redirect nor in the
    // preview's (a relative `//evil.example/` would).
    for evil in ["%2F%2Fevil.example%2F", "%2F%5Cevil.example", "%2F%2F%2Fevil.example"] {
        let open = format!("/preview/open?session={}&port=8001&path={evil}", f.id);
        let minted = f.server.get(&open, &[("cookie", &f.cookie)]).await;
        let location = minted.header("location").expect("location").to_owned();
        let path = location.strip_prefix(&prefix).expect("to the preview host");
        assert!(path.starts_with('/'), "{location}");
        let exchanged = f.preview(8001, "GET", path, &[("accept", "text/html")]).await;
        let location = exchanged.header("location").expect("location");
        assert!(location.starts_with(&format!("{prefix}/")), "{evil}: off the host: {location}");
    }

    // A token scoped to another session opens nothing here.
    let other = create(&f.server, &f.bearer).await;
    let body = serde_json::json!({ "name": "b", "session_id": other }).to_string();
    let scoped = f
        .server
        .request(
            "POST",
            "/api/tokens",
            &[("cookie", &f.cookie), ("content-type", "application/json")],
            &body,
        )
        .await;
    let scoped = scoped.json()["token"].as_str().expect("token").to_owned();
    let refused = f.preview(8001, "GET", "/", &[("x-flint-token", &scoped)]).await;
    refused.assert_error(StatusCode::UNAUTHORIZED);
    // A token revoked while in use is refused from the next request on.
    let made = f
        .server
        .request(
            "POST",
            "/api/tokens",
            &[("cookie", &f.cookie), ("content-type", "application/json")],
            r#"{"name":"brief"}"#,
        )
        .await
        .json();
    let brief = made["token"].as_str().expect("token").to_owned();
    assert_eq!(
        f.preview(8001, "GET", "/", &[("x-flint-token", &brief)]).await.status,
        StatusCode::OK
    );
    let revoked = f
        .server
        .request(
            "DELETE",
            &format!("/api/tokens/{}", made["id"].as_str().expect("id")),
            &[("cookie", &f.cookie), ("x-flint-csrf", "1")],
            "",
        )
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.body);
    f.preview(8001, "GET", "/", &[("x-flint-token", &brief)])
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
    // Nor does this session's preview cookie open the other session's private port.
    let other_host = format!("8001-{other}.preview.localhost:{}", f.server.addr.port());
    let crossed = f
        .server
        .request(
            "GET",
            "/",
            &[("host", &other_host), ("cookie", &cookie), ("accept", "application/json")],
            "",
        )
        .await;
    crossed.assert_error(StatusCode::UNAUTHORIZED);

    // The upstream sees its own host and forwarding headers, never Flint's credentials.
    let echoed = f
        .preview(
            8000,
            "GET",
            "/headers",
            &[
                ("x-flint-token", &token),
                ("cookie", &format!("{cookie}; theme=dark; flint_guest=g; __Host-flint_x=y")),
                ("authorization", "Bearer the-apps-own"),
            ],
        )
        .await;
    assert_eq!(echoed.status, StatusCode::OK, "{}", echoed.body);
    let seen = echoed.json();
    assert_eq!(seen["host"], "localhost:8000");
    assert_eq!(seen["x-forwarded-host"], f.host(8000));
    assert_eq!(seen["x-forwarded-proto"], "http");
    assert_eq!(seen["x-forwarded-for"], "127.0.0.1");
    assert_eq!(seen["authorization"], "Bearer the-apps-own");
    assert_eq!(seen["cookie"], "theme=dark");
    assert!(seen.get("x-flint-token").is_none(), "{seen}");
    assert!(!echoed.body.contains(&token) && !echoed.body.contains("flint_preview"), "{seen}");
    // Nor may the app set a cookie for Flint, or for every preview under the domain.
    let set =
        "/cookies?c=mine%3D1&c=flint_session%3Dstolen&c=wide%3D1%3B%20Domain%3Dpreview.localhost";
    let cookies = f.preview(8000, "GET", set, &[("x-flint-token", &token)]).await;
    assert_eq!(cookies.status, StatusCode::NO_CONTENT, "{}", cookies.body);
    let set: Vec<&str> =
        cookies.headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).collect();
    assert_eq!(set, ["mine=1"]);

    // Clear errors: a closed port, an unknown session, a stopped one.
    let closed = f.preview(8009, "GET", "/", &[("x-flint-token", &token)]).await;
    closed.assert_error(StatusCode::BAD_GATEWAY);
    assert!(closed.body.contains("nothing is listening on port 8009"), "{}", closed.body);
    let page =
        f.preview(8009, "GET", "/", &[("x-flint-token", &token), ("accept", "text/html")]).await;
    assert_eq!(page.status, StatusCode::BAD_GATEWAY);
    assert!(
        page.header("content-type").is_some_and(|t| t.starts_with("text/html")),
        "{:?}",
        page.headers
    );
    let unknown = f
        .server
        .request(
            "GET",
            "/",
            &[("host", "8000-nosuchsession.preview.localhost"), ("x-flint-token", &token)],
            "",
        )
        .await;
    unknown.assert_error(StatusCode::NOT_FOUND);
    // A session whose lifetime ran out.
    let reply = f
        .server
        .request(
            "POST",
            "/api/sessions",
            &[("authorization", &f.bearer), ("content-type", "application/json")],
            r#"{"image":"test","network":false,"lifetime_s":1}"#,
        )
        .await;
    let short = reply.json()["id"].as_str().expect("id").to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let state =
            f.server.get(&format!("/api/sessions/{short}"), &[("authorization", &f.bearer)]).await;
        if state.json()["state"] == "stopped" {
            break;
        }
        assert!(Instant::now() < deadline, "never stopped: {}", state.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let host = format!("8001-{short}.preview.localhost");
    let stopped =
        f.server.request("GET", "/", &[("host", &host), ("x-flint-token", &token)], "").await;
    stopped.assert_error(StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn public_ports_and_share_links_open_without_an_account_until_revoked() {
    let f = Fixture::new().await;
    let origin = f.server.origin();
    let mut events = f
        .server
        .ws("/api/events/ws", &[("cookie", &f.cookie), ("origin", &origin)])
        .await
        .expect("events websocket");
    let anonymous = [("accept", "application/json")];
    f.preview(8001, "GET", "/", &anonymous).await.assert_error(StatusCode::UNAUTHORIZED);
    let previews = format!("/api/sessions/{}/previews", f.id);
    let json = [("authorization", f.bearer.as_str()), ("content-type", "application/json")];
    // Public: anyone with the URL; and the owner's live view hears of it.
    let set =
        f.server.request("PUT", &format!("{previews}/8001"), &json, r#"{"public":true}"#).await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(set.json()["public"], true);
    let text = text_until(&mut events, r#""public":true"#).await;
    assert!(text.contains(r#""type":"ports""#) && text.contains(r#""port":8001"#), "{text}");
    let open = f.preview(8001, "GET", "/", &anonymous).await;
    assert_eq!(open.status, StatusCode::OK, "{}", open.body);
    let set =
        f.server.request("PUT", &format!("{previews}/8001"), &json, r#"{"public":false}"#).await;
    assert_eq!(set.status, StatusCode::OK);
    f.preview(8001, "GET", "/", &anonymous).await.assert_error(StatusCode::UNAUTHORIZED);

    // A share link: a browser with nothing but the link gets in, until it is revoked.
    let share = f.server.request("POST", &format!("{previews}/8001/shares"), &json, "{}").await;
    assert_eq!(share.status, StatusCode::CREATED, "{}", share.body);
    let share = share.json();
    let url = share["url"].as_str().expect("url").to_owned();
    let path = &url[url.find("/?flint_share=").expect("a share path")..];
    let exchanged = f.preview(8001, "GET", path, &[("accept", "text/html")]).await;
    assert_eq!(exchanged.status, StatusCode::SEE_OTHER, "{}", exchanged.body);
    let home = format!("http://{}/", f.host(8001));
    assert_eq!(exchanged.header("location"), Some(home.as_str()));
    let cookie =
        exchanged.header("set-cookie").expect("cookie").split(';').next().expect("pair").to_owned();
    assert_eq!(f.preview(8001, "GET", "/", &[("cookie", &cookie)]).await.status, StatusCode::OK);
    // It is for its own port only, and is reusable by another browser until revoked.
    f.preview(8000, "GET", path, &anonymous).await.assert_error(StatusCode::FORBIDDEN);
    let listed = f.server.get(&previews, &[("authorization", &f.bearer)]).await.json();
    let port =
        listed.as_array().expect("list").iter().find(|p| p["port"] == 8001).cloned().expect("8001");
    assert_eq!(port["shares"][0]["id"], share["id"]);
    assert!(port["shares"][0]["url"].is_null(), "the secret is shown once: {port}");
    let revoke = f
        .server
        .request(
            "DELETE",
            &format!("{previews}/8001/shares/{}", share["id"].as_str().expect("id")),
            &[("authorization", &f.bearer)],
            "",
        )
        .await;
    assert_eq!(revoke.status, StatusCode::NO_CONTENT, "{}", revoke.body);
    f.preview(8001, "GET", "/", &[("cookie", &cookie), ("accept", "application/json")])
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
    f.preview(8001, "GET", path, &anonymous).await.assert_error(StatusCode::FORBIDDEN);
    // An expired link is refused too.
    let short = f
        .server
        .request("POST", &format!("{previews}/8001/shares"), &json, r#"{"expires_s":1}"#)
        .await;
    let short = short.json()["url"].as_str().expect("url").to_owned();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let path = &short[short.find("/?flint_share=").expect("path")..];
    f.preview(8001, "GET", path, &anonymous).await.assert_error(StatusCode::FORBIDDEN);

    // A port opening shows up live.
    f.exec("cd /tmp && setsid -f python3 -m http.server 8003 >/dev/null 2>&1").await;
    let text = text_until(&mut events, r#""port":8003"#).await;
    assert!(text.contains(r#""type":"ports""#), "{text}");
}

/// Reads the events websocket until a text message contains `needle`; that message.
async fn text_until(ws: &mut Ws, needle: &str) -> String {
    use futures_util::StreamExt as _;
    use tokio_tungstenite::tungstenite::Message;
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) if text.contains(needle) => return text.to_string(),
                Some(Ok(_)) => {}
                other => panic!("the events websocket ended waiting for {needle:?}: {other:?}"),
            }
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("no event with {needle:?} within 30 s"))
}

/// Peak resident memory of a process, in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM");
    line.split_whitespace().nth(1).and_then(|kb| kb.parse::<u64>().ok()).expect("kB") * 1024
}

#[tokio::test]
async fn bodies_stream_both_ways_and_upgrades_and_sse_pass_through() {
    let f = Fixture::new().await;
    // 50 MB up, intact.
    let upload: Vec<u8> = (0..50_000_000u32).map(|i| (i % 251) as u8).collect();
    let expected = {
        use sha2::Digest as _;
        hex(&sha2::Sha256::digest(&upload))
    };
    let response = f.open(8000, "POST", "/hash", Bytes::from(upload)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let got = response.into_body().collect().await.expect("body").to_bytes();
    assert_eq!(String::from_utf8_lossy(&got), expected);

    // 50 MiB down to a slow reader: streamed, not buffered in the server.
    let before = peak_rss(f.server.pid());
    let response = f.open(8000, "GET", "/big?mb=50", Bytes::new()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        total += frame.expect("frame").data_ref().map_or(0, |d| d.len());
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
    assert_eq!(total, 50 << 20);
    let grown = peak_rss(f.server.pid()).saturating_sub(before);
    assert!(grown < 16 << 20, "the server's peak memory grew by {} MiB", grown >> 20);

    // SSE: event one arrives before event two is even sent.
    let response = f.open(8000, "GET", "/sse", Bytes::new()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let mut seen = String::new();
    while !seen.contains("data: one") {
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("event one in time")
            .expect("a frame")
            .expect("frame");
        seen.push_str(&String::from_utf8_lossy(frame.data_ref().map_or(&[][..], |d| d)));
    }
    assert!(!seen.contains("data: two"));
    f.exec("touch /tmp/sse-go").await;
    while !seen.contains("data: two") {
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("event two in time")
            .expect("a frame")
            .expect("frame");
        seen.push_str(&String::from_utf8_lossy(frame.data_ref().map_or(&[][..], |d| d)));
    }

    // An upgrade (the app speaks a raw echo protocol after 101) is spliced both ways.
    let mut socket = echo_upgrade(&f, &format!("X-Flint-Token: {}", f.token)).await;
    for message in [&b"ping"[..], b"a longer message"] {
        socket.write_all(message).await.expect("write");
        let mut echo = vec![0u8; message.len()];
        tokio::time::timeout(Duration::from_secs(10), socket.read_exact(&mut echo))
            .await
            .expect("echo in time")
            .expect("echo");
        assert_eq!(echo, message);
    }

    // A WebSocket app, through the proxy, with a real client.
    {
        use futures_util::{SinkExt as _, StreamExt as _};
        use tokio_tungstenite::tungstenite::Message;
        use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
        let mut request =
            format!("ws://{}/ws", f.server.addr).into_client_request().expect("request");
        let headers = request.headers_mut();
        headers.insert("host", f.host(8000).parse().expect("host"));
        headers.insert("x-flint-token", f.token.parse().expect("token"));
        let (mut ws, response) =
            tokio_tungstenite::connect_async(request).await.expect("websocket through the proxy");
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        let big = "x".repeat(100_000);
        for text in ["hello", big.as_str()] {
            ws.send(Message::text(text)).await.expect("send");
            let echo = tokio::time::timeout(Duration::from_secs(10), ws.next())
                .await
                .expect("echo in time")
                .expect("a message")
                .expect("message");
            assert_eq!(echo.into_text().expect("text").as_str(), text);
        }
        ws.send(Message::binary(vec![1u8, 2, 3])).await.expect("send");
        let echo = ws.next().await.expect("a message").expect("message");
        assert_eq!(echo.into_data().as_ref(), &[1u8, 2, 3]);
        let _ = ws.close(None).await;
    }

    // An app listening on ::1 only.
    let v6 = f.preview(8002, "GET", "/headers", &[("x-flint-token", &f.token)]).await;
    assert_eq!(v6.status, StatusCode::OK, "{}", v6.body);
    assert_eq!(v6.json()["host"], "localhost:8002");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An upgraded connection to port 8000's echo protocol with `credential` (a header line),
/// shown to echo.
async fn echo_upgrade(f: &Fixture, credential: &str) -> tokio::net::TcpStream {
    let mut socket = tokio::net::TcpStream::connect(f.server.addr).await.expect("connect");
    let head = format!(
        "GET /echo HTTP/1.1\r\nHost: {}\r\n{credential}\r\nConnection: Upgrade\r\n\
         Upgrade: echo\r\n\r\n",
        f.host(8000),
    );
    socket.write_all(head.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let mut buf = [0u8; 1];
        let n = socket.read(&mut buf).await.expect("read");
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&buf[..n]);
    }
    assert!(answer.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&answer));
    socket.write_all(b"ping").await.expect("write");
    let mut echo = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(10), socket.read_exact(&mut echo))
        .await
        .expect("echo in time")
        .expect("echo");
    socket
}

/// Whether the connection is closed within a second (it reads EOF or an error).
async fn closed_within_a_second(socket: &mut tokio::net::TcpStream) -> bool {
    let mut buf = [0u8; 64];
    match tokio::time::timeout(Duration::from_secs(1), socket.read(&mut buf)).await {
        Ok(Ok(0) | Err(_)) => true,
        Ok(Ok(_)) | Err(_) => false,
    }
}

/// A websocket (any upgrade) through a preview ends with the credential it was opened
/// with: a token revoked, a share link revoked. One opened otherwise stays.
#[tokio::test]
async fn an_upgraded_preview_connection_ends_with_its_credential() {
    let f = Fixture::new().await;
    let json = [("cookie", f.cookie.as_str()), ("content-type", "application/json")];
    let minted = f.server.request("POST", "/api/tokens", &json, r#"{"name":"ws"}"#).await;
    let (token, token_id) = {
        let minted = minted.json();
        (
            minted["token"].as_str().expect("token").to_owned(),
            minted["id"].as_str().expect("id").to_owned(),
        )
    };
    let mut by_token = echo_upgrade(&f, &format!("X-Flint-Token: {token}")).await;
    // A share link's cookie.
    let shares = format!("/api/sessions/{}/previews/8000/shares", f.id);
    let share = f.server.request("POST", &shares, &json, "{}").await.json();
    let share_id = share["id"].as_str().expect("id").to_owned();
    let url = share["url"].as_str().expect("url");
    let path = &url[url.find("/?flint_share=").expect("a share path")..];
    let traded = f.preview(8000, "GET", path, &[("accept", "text/html")]).await;
    let cookie = traded.header("set-cookie").expect("cookie").split(';').next().expect("pair");
    let mut by_share = echo_upgrade(&f, &format!("Cookie: {cookie}")).await;
    let mut by_other = echo_upgrade(&f, &format!("X-Flint-Token: {}", f.token)).await;
    // A preview cookie got through a second sign-in of the owner's, in another browser.
    let url = flint(&["login-url"], f._dir.path());
    let login = f.server.get(&url[url.find("/login").expect("login url")..], &[]).await;
    let sign_in = login.header("set-cookie").expect("cookie").split(';').next().expect("pair");
    let sign_in = sign_in.to_owned();
    let open = format!("/preview/open?session={}&port=8000", f.id);
    let minted = f.server.get(&open, &[("cookie", &sign_in)]).await;
    let location = minted.header("location").expect("location").to_owned();
    let ticket = &location[location.find("/?flint_ticket=").expect("a ticket")..];
    let traded = f.preview(8000, "GET", ticket, &[("accept", "text/html")]).await;
    let cookie = traded.header("set-cookie").expect("cookie").split(';').next().expect("pair");
    let mut by_sign_in = echo_upgrade(&f, &format!("Cookie: {cookie}")).await;
    let out = [("cookie", sign_in.as_str()), ("x-flint-csrf", "1")];
    let signed_out = f.server.request("POST", "/api/logout", &out, "").await;
    assert_eq!(signed_out.status, StatusCode::NO_CONTENT, "{}", signed_out.body);
    assert!(closed_within_a_second(&mut by_sign_in).await, "open after its sign-in ended");

    let csrf = [("cookie", f.cookie.as_str()), ("x-flint-csrf", "1")];
    let revoked = f.server.request("DELETE", &format!("/api/tokens/{token_id}"), &csrf, "").await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.body);
    assert!(closed_within_a_second(&mut by_token).await, "open after its token was revoked");
    let unshared = format!("{shares}/{share_id}");
    let revoked = f.server.request("DELETE", &unshared, &csrf, "").await;
    assert!(revoked.status.is_success(), "{}", revoked.body);
    assert!(closed_within_a_second(&mut by_share).await, "open after its link was revoked");
    // The other still echoes.
    by_other.write_all(b"pong").await.expect("write");
    let mut echo = [0u8; 4];
    by_other.read_exact(&mut echo).await.expect("still open");
    assert_eq!(&echo, b"pong");
}
