//! Upstream connections for the preview proxy: each is a byte tunnel through the session's
//! guest agent (`POST /v1/tunnels/{port}` on its HTTP/2 connection) to the port in the
//! guest, so nothing in the sandbox is ever reachable over the host's network. hyper-util's
//! pooled client keeps idle connections per `(session, port)` for the next request.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Uri;
use http_body_util::BodyExt as _;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, DuplexStream};

use crate::sessions::Sessions;

/// Bytes buffered between the proxy's HTTP client and a tunnel, each way.
const BUFFER: usize = 64 << 10;

/// The upstream URI of a port in a session: `http://{session}:{port}` (the pool's key).
pub fn upstream_uri(session: &str, port: u16, path_and_query: &str) -> Result<Uri, http::Error> {
    Uri::builder()
        .scheme("http")
        .authority(format!("{session}:{port}"))
        .path_and_query(path_and_query)
        .build()
}

/// Opens tunnels for hyper-util's client.
#[derive(Clone)]
pub struct Tunnels {
    pub sessions: Arc<Sessions>,
}

/// One tunnel, as a socket for hyper; it holds one of its session's tunnel slots
/// ([`Sessions::tunnel_slot`]) until it is dropped.
pub struct TunnelConn {
    io: TokioIo<DuplexStream>,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl Connection for TunnelConn {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl hyper::rt::Read for TunnelConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for TunnelConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Why a tunnel could not be opened, as the error page says it, and the status it gets:
/// 503 while the session's tunnels stay busy, 504 when the app does not accept in time,
/// else 502.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct TunnelError {
    pub status: http::StatusCode,
    pub message: String,
}

impl TunnelError {
    fn bad_gateway(message: String) -> TunnelError {
        TunnelError { status: http::StatusCode::BAD_GATEWAY, message }
    }
}

impl tower_service::Service<Uri> for Tunnels {
    type Response = TunnelConn;
    type Error = TunnelError;
    type Future = Pin<Box<dyn Future<Output = Result<TunnelConn, TunnelError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), TunnelError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let sessions = self.sessions.clone();
        Box::pin(async move {
            let session = uri.host().unwrap_or_default().to_owned();
            let port =
                uri.port_u16().ok_or_else(|| TunnelError::bad_gateway("no port".to_owned()))?;
            // Beyond the session's tunnels, requests queue here (hyper's pool hands each the
            // first connection that is free, a new one or an idle one).
            let from_app =
                |e: crate::error::AppError| TunnelError { status: e.status, message: e.message };
            let slot = sessions.tunnel_slot(&session).await.map_err(from_app)?;
            let client = sessions.client(&session).await.map_err(from_app)?;
            let (tx, mut incoming) = client.tunnel(port).await.map_err(|e| match e.code() {
                proto::error::ErrorCode::NotFound => TunnelError::bad_gateway(format!(
                    "nothing is listening on port {port} in this session"
                )),
                proto::error::ErrorCode::Timeout => TunnelError {
                    status: http::StatusCode::GATEWAY_TIMEOUT,
                    message: e.to_string(),
                },
                _ => TunnelError::bad_gateway(format!("port {port}: {e}")),
            })?;
            let (ours, theirs) = tokio::io::duplex(BUFFER);
            let (mut from_proxy, mut to_proxy) = tokio::io::split(theirs);
            tokio::spawn(async move {
                let mut buf = vec![0u8; BUFFER];
                loop {
                    match from_proxy.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if tx.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
            tokio::spawn(async move {
                while let Some(Ok(frame)) = incoming.frame().await {
                    if let Ok(data) = frame.into_data()
                        && to_proxy.write_all(&data).await.is_err()
                    {
                        return;
                    }
                }
                let _ = to_proxy.shutdown().await;
            });
            Ok(TunnelConn { io: TokioIo::new(ours), _slot: slot })
        })
    }
}
