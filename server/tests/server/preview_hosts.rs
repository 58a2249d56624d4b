//! Where previews are served from: a listener of their own (`--preview-listen`, previews
//! only), and the cookie's name behind HTTPS.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;

use crate::common::*;
use crate::preview::create;

#[tokio::test]
async fn previews_can_have_a_listener_of_their_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("addr")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let server = TestServer::start_with(dir.path(), &["--preview-listen", &listen]);
    let bearer = server.bearer().await;
    let token = bearer.strip_prefix("Bearer ").expect("a bearer token").to_owned();
    let id = create(&server, &bearer).await;
    let body = serde_json::json!({ "argv": ["bash", "-c", "cd /tmp && setsid -f python3 -m http.server 8000 >/dev/null 2>&1; for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/8000) 2>/dev/null && exit 0; sleep 0.1; done; exit 1"], "env": {} });
    let json = [("authorization", bearer.as_str()), ("content-type", "application/json")];
    let started =
        server.request("POST", &format!("/api/sessions/{id}/exec"), &json, &body.to_string()).await;
    assert_eq!(started.json()["exit_code"], 0, "{}", started.body);
    let deadline = Instant::now() + Duration::from_secs(20);
    let url = loop {
        let list = server
            .get(&format!("/api/sessions/{id}/previews"), &[("authorization", &bearer)])
            .await;
        if let Some(url) = list.json()[0]["url"].as_str() {
            break url.to_owned();
        }
        assert!(Instant::now() < deadline, "no port: {}", list.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let host = format!("8000-{id}.preview.localhost:{port}");
    assert_eq!(url, format!("http://{host}/"));
    // Through the preview listener.
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(connection);
    let request = Request::builder()
        .uri("/")
        .header("host", &host)
        .header("x-flint-token", &token)
        .body(Full::new(Bytes::new()))
        .expect("request");
    let response = sender.send_request(request).await.expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.into_body().collect().await.expect("body").to_bytes();
    assert!(String::from_utf8_lossy(&page).contains("Directory listing"));
    // It serves previews only: the app's own hosts get nothing there, not even the login.
    for (host, path) in [
        (format!("localhost:{port}"), "/api/me".to_owned()),
        (format!("127.0.0.1:{port}"), server.login_path()),
        (format!("localhost:{port}"), "/".to_owned()),
        (format!("localhost:{port}"), "/healthz".to_owned()),
    ] {
        let request = Request::builder()
            .uri(&path)
            .header("host", &host)
            .header("authorization", &bearer)
            .body(Full::new(Bytes::new()))
            .expect("request");
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
        tokio::spawn(connection);
        let response = sender.send_request(request).await.expect("response");
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{host}{path}");
        let page = response.into_body().collect().await.expect("body").to_bytes();
        assert!(String::from_utf8_lossy(&page).contains("previews only"), "{host}{path}");
    }
}

/// Behind HTTPS (`--public-origin https://…`) the preview cookie is `__Host-` prefixed and
/// `Secure`: no other host, nor the app over plain HTTP, can set one the proxy accepts.
#[tokio::test]
async fn over_https_the_preview_cookie_is_host_prefixed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server =
        TestServer::start_with(dir.path(), &["--public-origin", "https://flint.localhost"]);
    let app = ("host", "flint.localhost");
    let login = server.get(&server.login_path(), &[app]).await;
    assert_eq!(login.status, StatusCode::SEE_OTHER, "{}", login.body);
    let cookie = login.header("set-cookie").expect("cookie").split(';').next().expect("pair");
    let cookie = cookie.to_owned();
    let json = [app, ("cookie", cookie.as_str()), ("content-type", "application/json")];
    let body = r#"{"image":"test","network":false}"#;
    let session = server.request("POST", "/api/sessions", &json, body).await.json();
    let id = session["id"].as_str().expect("id").to_owned();

    let open = format!("/preview/open?session={id}&port=8000");
    let minted = server.get(&open, &[app, ("cookie", &cookie)]).await;
    let location = minted.header("location").expect("location").to_owned();
    let host = format!("8000-{id}.preview.localhost");
    let path = location.strip_prefix(&format!("https://{host}")).expect("the preview over https");
    let exchanged = server.get(path, &[("host", &host), ("accept", "text/html")]).await;
    let set = exchanged.header("set-cookie").expect("a cookie").to_owned();
    assert!(set.starts_with("__Host-flint_preview=") && set.contains("; Secure"), "{set}");
    let value = set.split(';').next().expect("pair").split_once('=').expect("value").1;
    // The prefixed cookie is the key (nothing listens: the proxy got as far as the port);
    // the same value under the plain name is none.
    let json = ("accept", "application/json");
    let prefixed = format!("__Host-flint_preview={value}");
    let through = server.get("/", &[("host", &host), ("cookie", &prefixed), json]).await;
    through.assert_error(StatusCode::BAD_GATEWAY);
    let plain = format!("flint_preview={value}");
    let refused = server.get("/", &[("host", &host), ("cookie", &plain), json]).await;
    refused.assert_error(StatusCode::UNAUTHORIZED);
}
