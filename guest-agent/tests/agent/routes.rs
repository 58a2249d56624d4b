//! The route table, authentication and bad input, probed on the running binary.

use bytes::Bytes;
use guest_agent::client::{empty, full};
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use proto::error::{ErrorBody, ErrorCode};
use proto::routes::{Body, ROUTES};
use proto::terminal::{AttachQuery, AttachUp};

use crate::common::*;

async fn probe(
    agent: &TestAgent,
    method: &str,
    path: &str,
    body: Bytes,
) -> (StatusCode, Option<ErrorBody>) {
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    let request = agent.client.request(method, path).body(full(body)).expect("request");
    let response = agent.client.send(request).await.expect("send");
    let status = response.status();
    assert_eq!(
        response.headers().get(proto::AGENT_API_VERSION_HEADER).and_then(|v| v.to_str().ok()),
        Some(proto::AGENT_API_VERSION.to_string().as_str()),
        "every response carries the api version"
    );
    if status.is_success() {
        // Streams (ports/events) never end by themselves: do not read them.
        return (status, None);
    }
    let bytes = response.into_body().collect().await.expect("body").to_bytes();
    let error: ErrorBody = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{path}: error body is not json ({e}): {bytes:?}"));
    (status, Some(error))
}

#[tokio::test]
async fn every_declared_route_answers_and_nothing_else_does() {
    let agent = TestAgent::start().await;
    // A real terminal, so the `{id}` routes find one.
    let id = new_shell(&agent.client).await;
    let work = path_str(&agent.workdir());
    for decl in ROUTES {
        let path =
            decl.pattern.replace("{id}", id.as_str()).replace("{port}", "1").replace("{tab}", "1");
        let query =
            if path.starts_with("/v1/files/") { format!("?path={work}") } else { String::new() };
        let body = match decl.request {
            Body::Json => Bytes::from_static(b"{}"),
            _ => Bytes::new(),
        };
        let (status, error) =
            probe(&agent, decl.method.name(), &format!("{path}{query}"), body).await;
        let code = error.as_ref().map(|e| e.code);
        assert_ne!(
            code,
            Some(ErrorCode::UnknownRoute),
            "{} {path} is declared",
            decl.method.name()
        );
        assert_ne!(status, StatusCode::UNAUTHORIZED);
    }

    let undeclared = [
        ("GET", "/"),
        ("GET", "/v1"),
        ("GET", "/v1/"),
        ("GET", "/v2/info"),
        ("POST", "/v1/info"),
        ("GET", "/v1/info/extra"),
        ("GET", "/v1/exec"),
        ("PATCH", "/v1/terminals"),
        ("PUT", "/v1/terminals/1"),
        ("GET", "/v1/terminals/1/bogus"),
        ("GET", "/v1/terminals/UPPER"),
        ("POST", "/v1/tunnels/0"),
        ("POST", "/v1/tunnels/99999"),
        ("GET", "/v1/tunnels/80"),
        ("CONNECT", "/v1/tunnels/80"),
        ("GET", "/debug/pprof"),
        ("GET", "/metrics"),
    ];
    for (method, path) in undeclared {
        let (status, error) = probe(&agent, method, path, Bytes::new()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
        assert_eq!(error.map(|e| e.code), Some(ErrorCode::UnknownRoute), "{method} {path}");
    }
}

#[tokio::test]
async fn a_missing_or_wrong_secret_gets_401_on_every_route() {
    let agent = TestAgent::start().await;
    let wrong = guest_agent::client::Client::connect(&agent.listen, "not-the-secret")
        .await
        .expect("connect");
    let err = wrong.info().await.expect_err("wrong secret");
    assert_eq!(err.code(), ErrorCode::Unauthorized);
    for decl in ROUTES {
        let path = decl.pattern.replace("{id}", "1").replace("{port}", "1").replace("{tab}", "1");
        let method = Method::from_bytes(decl.method.name().as_bytes()).expect("method");
        let mut request = agent.client.request(method, &path).body(empty()).expect("request");
        request.headers_mut().remove(http::header::AUTHORIZATION);
        let response = agent.client.send(request).await.expect("send");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    // Unknown routes do not leak whether they exist either.
    let request = wrong.request(Method::GET, "/nope").body(empty()).expect("request");
    assert_eq!(wrong.send(request).await.expect("send").status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn malformed_bodies_queries_and_frames_get_400_and_the_agent_keeps_serving() {
    let agent = TestAgent::start().await;
    let cases: [(&str, &str, &[u8]); 7] = [
        ("POST", "/v1/terminals", b"{not json"),
        ("POST", "/v1/terminals", br#"{"cols": "wide"}"#),
        ("POST", "/v1/terminals", br#"{"unknown_field": 1}"#),
        ("POST", "/v1/terminals", br#"{"cols": 5000}"#),
        ("GET", "/v1/files/stat?nopath=1", b""),
        ("POST", "/v1/exec", b"\x00\x00\x00\x02\xee\xee"),
        ("POST", "/v1/exec", b""),
    ];
    for (method, path, body) in cases {
        let (status, error) = probe(&agent, method, path, Bytes::from_static(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {path} {body:?}");
        let error = error.expect("error body");
        assert_eq!(error.code, ErrorCode::BadRequest);
        assert!(!error.error.is_empty());
    }
    // A frame whose length is over 1 MiB: refused before its bytes arrive.
    let huge = ((proto::frame::MAX_FRAME_BYTES as u32) + 1).to_be_bytes();
    let (status, error) = probe(&agent, "POST", "/v1/exec", Bytes::copy_from_slice(&huge)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error.map(|e| e.code), Some(ErrorCode::TooLarge));
    // A 2 MiB JSON body.
    let big = format!("{{\"cwd\": \"{}\"}}", "a".repeat(2 << 20));
    let (status, _) = probe(&agent, "POST", "/v1/terminals", Bytes::from(big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    // A garbage frame on a live attach stream: an error frame, and the terminal lives on.
    let id = new_shell(&agent.client).await;
    let (bad, mut bad_out) = attach(&agent.client, &id, AttachQuery::default()).await;
    bad.send_raw(Bytes::from_static(b"\x00\x00\x00\x03\xff\xff\xff")).await.expect("send");
    let mut seen = Seen::default();
    read_until(&mut bad_out, &mut seen, "an error frame", |s| !s.errors.is_empty()).await;
    assert!(seen.errors[0].contains("malformed"), "{:?}", seen.errors);
    let (good, mut good_out) = attach(&agent.client, &id, AttachQuery::default()).await;
    good.send(&AttachUp::Input(serde_bytes::ByteBuf::from(b"echo still-'alive'\n".to_vec())))
        .await
        .expect("type");
    let mut seen = Seen::default();
    read_until_text(&mut good_out, &mut seen, "still-alive").await;
    assert!(seen.errors.is_empty(), "{:?}", seen.errors);
    agent.client.info().await.expect("the agent still answers");
}
