//! The preview proxy against the same app reached directly: `proxy.rps`/`proxy.latency`
//! through `{port}-{session}.preview.localhost` (agent tunnel), `proxy.direct_*` from the
//! uplink namespace to the sandbox's address (its veth). One load generator for both: keep-
//! alive HTTP/1.1 connections issuing small GETs back to back; then one large download each
//! way for the streaming throughput.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::TokioIo;

use super::report::Metric;
use super::uplink::Uplink;
use super::{SESSION_BODY_NET, Server};

/// Connections kept busy at once.
const CONNECTIONS: usize = 8;
/// How long each side is loaded.
const LOAD: Duration = Duration::from_secs(4);
/// The streamed download, MiB.
const STREAM_MIB: usize = 256;

const APP: &str = include_str!("../../tests/server/preview_app.py");

/// Where requests go: the preview host through the server, or the sandbox directly.
#[derive(Clone)]
enum Route {
    Proxy { server: SocketAddr, host: String, token: String },
    Direct { netns: String, addr: SocketAddr },
}

impl Route {
    async fn connect(&self) -> Result<tokio::net::TcpStream> {
        let stream = match self {
            Route::Proxy { server, .. } => tokio::net::TcpStream::connect(server).await?,
            Route::Direct { netns, addr } => {
                // A socket belongs to the namespace it is made in: make it in the uplink's.
                let (path, addr) = (std::path::Path::new("/run/netns").join(netns), *addr);
                let std = tokio::task::spawn_blocking(move || {
                    std::thread::spawn(move || -> Result<std::net::TcpStream> {
                        let file = std::fs::File::open(&path)?;
                        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)?;
                        Ok(std::net::TcpStream::connect(addr)?)
                    })
                    .join()
                    .map_err(|_| anyhow::anyhow!("the connecting thread panicked"))?
                })
                .await??;
                std.set_nonblocking(true)?;
                tokio::net::TcpStream::from_std(std)?
            }
        };
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    fn request(&self, path: &str) -> Result<Request<Empty<Bytes>>> {
        let builder = Request::builder().uri(path);
        let builder = match self {
            Route::Proxy { host, token, .. } => {
                builder.header("host", host).header("x-flint-token", token)
            }
            Route::Direct { addr, .. } => builder.header("host", addr.to_string()),
        };
        Ok(builder.body(Empty::new())?)
    }
}

/// Requests per second and each request's latency, over `LOAD`.
async fn load(route: &Route) -> Result<(f64, Vec<Duration>)> {
    let route = Arc::new(route.clone());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let route = route.clone();
        tasks.push(tokio::spawn(async move {
            let stream = route.connect().await?;
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(connection);
            let mut samples = Vec::new();
            while started.elapsed() < LOAD {
                let request = route.request("/headers")?;
                let sent = Instant::now();
                let response = sender.send_request(request).await?;
                ensure!(response.status() == StatusCode::OK, "status {}", response.status());
                response.into_body().collect().await?;
                samples.push(sent.elapsed());
            }
            anyhow::Ok(samples)
        }));
    }
    let mut samples = Vec::new();
    for task in tasks {
        samples.extend(task.await??);
    }
    let rps = samples.len() as f64 / started.elapsed().as_secs_f64();
    Ok((rps, samples))
}

/// One download of `STREAM_MIB`, in MB/s.
async fn stream(route: &Route) -> Result<f64> {
    let stream = route.connect().await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let started = Instant::now();
    let response = sender.send_request(route.request(&format!("/big?mb={STREAM_MIB}"))?).await?;
    ensure!(response.status() == StatusCode::OK, "status {}", response.status());
    let mut body = response.into_body();
    let mut bytes = 0usize;
    while let Some(frame) = body.frame().await {
        bytes += frame?.data_ref().map_or(0, Bytes::len);
    }
    ensure!(bytes == STREAM_MIB << 20, "{bytes} bytes");
    Ok(bytes as f64 / 1e6 / started.elapsed().as_secs_f64())
}

pub(super) async fn proxy(
    server: &Server,
    uplink: &Uplink,
    wanted: &dyn Fn(&str) -> bool,
) -> Result<Vec<Metric>> {
    let id = server.create_session_with(SESSION_BODY_NET).await?;
    let auth = [("authorization", server.bearer())];
    let put = format!("/api/sessions/{id}/files/content?path=/workspace/app.py");
    let reply = server.request("PUT", &put, &auth, APP).await?;
    ensure!(reply.status.is_success(), "uploading the app: {}", reply.body);
    let body = serde_json::json!({
        "argv": ["bash", "-c", "cd /workspace && setsid -f python3 app.py 8000 >/dev/null 2>&1; \
                 for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/8000) 2>/dev/null && \
                 exit 0; sleep 0.1; done; exit 1"],
        "env": {},
    });
    let json = [("authorization", server.bearer()), ("content-type", "application/json")];
    let exec = format!("/api/sessions/{id}/exec");
    let reply = server.request("POST", &exec, &json, &body.to_string()).await?;
    ensure!(reply.json()?["exit_code"] == 0, "the app did not start: {}", reply.body);
    let address = sandbox_address(server, &id).await?;
    let server_addr: SocketAddr = server.inner.addr.parse().context("the server's address")?;
    let proxy = Route::Proxy {
        server: server_addr,
        host: format!("8000-{id}.preview.localhost:{}", server_addr.port()),
        token: server.bearer().trim_start_matches("Bearer ").to_owned(),
    };
    let direct =
        Route::Direct { netns: uplink.name.clone(), addr: SocketAddr::from((address, 8000)) };
    let mut metrics = Vec::new();
    let load_metrics = ["proxy.rps", "proxy.direct_rps", "proxy.latency", "proxy.direct_latency"];
    if load_metrics.iter().any(|m| wanted(m)) {
        eprintln!("bench: proxy ({CONNECTIONS} connections for {LOAD:?}, each way)");
        let (rps, samples) = load(&proxy).await?;
        let (direct_rps, direct_samples) = load(&direct).await?;
        metrics.push(Metric::value("proxy.rps", "req/s", rps));
        metrics.push(Metric::value("proxy.direct_rps", "req/s", direct_rps));
        metrics.push(Metric::ms("proxy.latency", &samples));
        metrics.push(Metric::ms("proxy.direct_latency", &direct_samples));
    }
    if wanted("proxy.stream_throughput") || wanted("proxy.direct_stream_throughput") {
        eprintln!("bench: proxy streaming ({STREAM_MIB} MiB each way)");
        metrics.push(Metric::value("proxy.stream_throughput", "MB/s", stream(&proxy).await?));
        metrics.push(Metric::value(
            "proxy.direct_stream_throughput",
            "MB/s",
            stream(&direct).await?,
        ));
    }
    server.delete_session(&id).await?;
    Ok(metrics)
}

/// The sandbox's address, without sending a packet (a UDP "connect" only routes).
async fn sandbox_address(server: &Server, id: &str) -> Result<std::net::Ipv4Addr> {
    let script = "import socket; s = socket.socket(2, 2); s.connect(('203.0.113.10', 80)); \
                  print(s.getsockname()[0])";
    let body = serde_json::json!({ "argv": ["python3", "-c", script], "env": {} });
    let json = [("authorization", server.bearer()), ("content-type", "application/json")];
    let reply = server
        .request("POST", &format!("/api/sessions/{id}/exec"), &json, &body.to_string())
        .await?;
    let out = reply.json()?["stdout"].as_str().unwrap_or_default().trim().to_owned();
    out.parse().with_context(|| format!("the sandbox's address: {out:?}"))
}
