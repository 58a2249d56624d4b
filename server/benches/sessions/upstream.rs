//! The preview bench's upstream app: a small static HTTP/1.1 server (tokio and hyper, two
//! worker threads, keep-alive) that **the bench binary itself** serves inside the sandbox
//! (`sessions --serve-upstream PORT`, the binary uploaded into the session). The test
//! image has no Node.js (`images/test.toml`), and Python's `http.server`, even threaded,
//! is slower than the paths being measured: with this app the figures measure the way to
//! the app, not the app. The same app, in the same sandbox, serves the proxy, the direct
//! path and nginx.
//!
//! ```text
//! GET /1k          1 KiB of text (the small-request load)
//! GET /bytes?n=N   N bytes, streamed in 1 MiB chunks (the download)
//! ```

use std::convert::Infallible;
use std::time::Duration;

use anyhow::{Context as _, Result};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;

/// The argument that makes the bench binary this server: `--serve-upstream PORT`.
pub const FLAG: &str = "--serve-upstream";

/// The small response.
pub const SMALL_PATH: &str = "/1k";
static SMALL: [u8; 1024] = [b'x'; 1024];
/// What a download is sent in.
static CHUNK: [u8; 1 << 20] = [0; 1 << 20];

/// `Some(port)` when the process was started as the upstream.
pub fn requested() -> Option<Result<u16>> {
    let args: Vec<String> = std::env::args().collect();
    let at = args.iter().position(|arg| arg == FLAG)?;
    let port = args.get(at + 1).context("--serve-upstream PORT");
    Some(port.and_then(|port| port.parse().with_context(|| format!("a port: {port:?}"))))
}

/// Serves on `0.0.0.0:port` until killed.
pub fn serve(port: u16) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("0.0.0.0", port))
            .await
            .with_context(|| format!("binding port {port}"))?;
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors, say: the clients see it; keep serving.
                    eprintln!("upstream: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(answer);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

type Body = BoxBody<Bytes, Infallible>;

async fn answer(request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let uri = request.uri();
    let n = uri.query().and_then(|q| q.strip_prefix("n=")).and_then(|n| n.parse::<u64>().ok());
    let response = match (uri.path(), n) {
        (SMALL_PATH, _) => Response::builder()
            .header("content-type", "text/plain")
            .body(Full::new(Bytes::from_static(&SMALL)).boxed()),
        ("/bytes", Some(n)) => {
            let chunks = (0..n.div_ceil(CHUNK.len() as u64)).map(move |i| {
                let left = n - i * CHUNK.len() as u64;
                let len = usize::try_from(left).unwrap_or(usize::MAX).min(CHUNK.len());
                Ok(Frame::data(Bytes::from_static(&CHUNK[..len])))
            });
            Response::builder()
                .header("content-type", "application/octet-stream")
                .header("content-length", n)
                .body(StreamBody::new(futures_util::stream::iter(chunks)).boxed())
        }
        _ => Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Full::new(Bytes::from_static(b"no such path\n")).boxed()),
    };
    Ok(response.unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed())))
}
