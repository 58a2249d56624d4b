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

/// A stream that counts the bytes read from it: what crossed the wire.
pub struct Counted {
    inner: tokio::net::TcpStream,
    read: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl tokio::io::AsyncRead for Counted {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = (buf.filled().len() - before) as u64;
        self.read.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        poll
    }
}

impl tokio::io::AsyncWrite for Counted {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A websocket client that offers permessage-deflate, as browsers do.
pub type DeflateWs = yawc::WebSocket<Counted>;

/// Opens a websocket at `path` offering permessage-deflate; with it, the count of bytes read
/// from the connection since the handshake.
pub async fn deflate_websocket(
    addr: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<(DeflateWs, std::sync::Arc<std::sync::atomic::AtomicU64>)> {
    let inner = tokio::net::TcpStream::connect(addr).await.context("connecting")?;
    let read = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut request = yawc::HttpRequest::builder();
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let url = format!("ws://{addr}{path}").parse().context("websocket url")?;
    let options = yawc::Options::default().with_low_latency_compression();
    let stream = Counted { inner, read: read.clone() };
    let ws = yawc::WebSocket::handshake_with_request(url, stream, options, request)
        .await
        .context("websocket handshake")?;
    read.store(0, std::sync::atomic::Ordering::Relaxed);
    Ok((ws, read))
}
