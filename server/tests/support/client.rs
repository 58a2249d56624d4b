//! A tiny HTTP client: one request on a fresh connection, read whole. The server tests'
//! `TestServer` and the bench's `Server` both send theirs through it, each with its own
//! time limit and reply shape.

use anyhow::Context as _;
use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;

/// Sends one request to the server at `addr` (with `Host: addr` unless `headers` name a
/// host); the reply's status, headers and body.
pub async fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> anyhow::Result<(StatusCode, HeaderMap, Bytes)> {
    let stream = tokio::net::TcpStream::connect(addr).await.context("connecting")?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.context("handshake")?;
    tokio::spawn(connection);
    let mut request = Request::builder().method(method).uri(path);
    if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("host")) {
        request = request.header("host", addr);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(Bytes::from(body.to_owned()))).context("request")?;
    let response = sender.send_request(request).await.context("response")?;
    let (head, body) = response.into_parts();
    let body = body.collect().await.context("body")?.to_bytes();
    Ok((head.status, head.headers, body))
}
