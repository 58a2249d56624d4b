//! The preview proxy per driver D, and, on the `process` driver's sandbox, the same app
//! reached without Flint. The app is the bench's own static server (`upstream.rs`) in a
//! session of the test image; one load generator for every path: `C` keep-alive HTTP/1.1
//! connections issuing 1 KiB GETs back to back for [`LOAD`], and one download of
//! [`STREAM_BYTES`] alone. Through the proxy: 32 connections, the download, then 128
//! connections (last: a failing load may leave the session's tunnels busy a while).
//!
//! - `proxy.rps_c32.D`, `proxy.rps_c128.D`: 2xx answers per second through
//!   `8000-{session}.preview.localhost` (the agent's tunnel), 32 and 128 connections;
//! - `proxy.errors_c32.D`, `proxy.errors_c128.D`: requests in that run that failed (a
//!   non-2xx answer, a broken connection, no answer within [`REQUEST_TIMEOUT`]); the load
//!   goes on after each, on a new connection when the old one broke;
//! - `proxy.latency_c32.D`: the 2xx answers' latencies at 32 connections;
//! - `proxy.stream_throughput.D`: the download through the proxy, MB/s;
//! - `anchor.direct.{rps_c32,latency_c32,stream_throughput}`: the app from the uplink
//!   namespace straight to the sandbox's address (its veth);
//! - `anchor.nginx.{rps_c32,latency_c32,stream_throughput}`: Debian's nginx in the uplink
//!   namespace as a reverse proxy to the same app (keep-alive upstream);
//! - `anchor.direct_gvisor.{rps_c32,latency_c32,stream_throughput}`: the same app in the
//!   `gvisor` driver's sandbox, reached straight at its address: what the app serves through
//!   gVisor's own network stack without Flint, the ceiling of any gVisor preview.
//!
//! `anchor.direct` and `anchor.nginx` use the `process` driver's sandbox, whose network is
//! the host kernel's, so they measure the app and a proxy in front of it, not gVisor's
//! network stack.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt as _, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

use super::report::Metric;
use super::uplink::Uplink;
use super::{SESSION_BODY_NET, Server, name, upstream};

/// How long each load runs.
const LOAD: Duration = Duration::from_secs(5);
/// A request without its answer for this long counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The download's size.
const STREAM_BYTES: u64 = 100_000_000;
/// The app's port in the sandbox.
const APP_PORT: u16 = 8000;
/// nginx's port in the uplink namespace (the bench's own: nothing else listens there).
const NGINX_PORT: u16 = 18080;
/// Failures whose text is printed per load (the rest are only counted).
const SHOWN_ERRORS: usize = 3;

/// The anchors' metrics: `[rps, latency, throughput]` direct and through nginx.
pub const ANCHORS: [[&str; 3]; 2] = [
    ["anchor.direct.rps_c32", "anchor.direct.latency_c32", "anchor.direct.stream_throughput"],
    ["anchor.nginx.rps_c32", "anchor.nginx.latency_c32", "anchor.nginx.stream_throughput"],
];

/// The app in the `gvisor` sandbox reached directly: `[rps, latency, throughput]`.
pub const DIRECT_GVISOR: [&str; 3] = [
    "anchor.direct_gvisor.rps_c32",
    "anchor.direct_gvisor.latency_c32",
    "anchor.direct_gvisor.stream_throughput",
];

/// The direct anchor's names on `driver`'s sandbox, if it has one.
pub fn direct_names(driver: &str) -> Option<[&'static str; 3]> {
    match driver {
        "process" => Some(ANCHORS[0]),
        "gvisor" => Some(DIRECT_GVISOR),
        _ => None,
    }
}

/// Where requests go: the preview host through the server, or an address reached from the
/// uplink namespace (the sandbox itself, or nginx).
#[derive(Clone)]
enum Route {
    Proxy { server: SocketAddr, host: String, token: String },
    Uplink { netns: String, addr: SocketAddr },
}

impl Route {
    async fn connect(&self) -> Result<tokio::net::TcpStream> {
        let stream = match self {
            Route::Proxy { server, .. } => tokio::net::TcpStream::connect(server).await?,
            Route::Uplink { netns, addr } => {
                // A socket belongs to the namespace it is made in: make it in the uplink's.
                let (path, addr) = (Path::new("/run/netns").join(netns), *addr);
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

    async fn handshake(&self) -> Result<SendRequest<Empty<Bytes>>> {
        let stream = self.connect().await?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        Ok(sender)
    }

    fn request(&self, path: &str) -> Result<Request<Empty<Bytes>>> {
        let builder = Request::builder().uri(path);
        let builder = match self {
            Route::Proxy { host, token, .. } => {
                builder.header("host", host).header("x-flint-token", token)
            }
            Route::Uplink { addr, .. } => builder.header("host", addr.to_string()),
        };
        Ok(builder.body(Empty::new())?)
    }
}

/// What one load produced.
struct Load {
    /// 2xx answers per second.
    rps: f64,
    /// Failed requests.
    errors: u64,
    /// The 2xx answers' latencies.
    samples: Vec<Duration>,
}

/// `connections` keep-alive connections issuing small GETs for [`LOAD`].
async fn load(route: &Route, connections: usize, label: &str) -> Result<Load> {
    eprintln!("bench: {label} ({connections} connections for {LOAD:?})");
    let route = Arc::new(route.clone());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let route = route.clone();
        tasks.push(tokio::spawn(async move {
            let (mut samples, mut errors, mut shown) = (Vec::new(), 0u64, Vec::new());
            let mut sender = None;
            while started.elapsed() < LOAD {
                let outcome =
                    tokio::time::timeout(REQUEST_TIMEOUT, one_request(&route, &mut sender)).await;
                let error = match outcome {
                    Ok(Ok(latency)) => {
                        samples.push(latency);
                        continue;
                    }
                    Ok(Err(e)) => format!("{e:#}"),
                    Err(_) => {
                        // The connection still waits for that answer: a new one goes on.
                        sender = None;
                        format!("no answer within {REQUEST_TIMEOUT:?}")
                    }
                };
                errors += 1;
                if shown.len() < SHOWN_ERRORS {
                    shown.push(error);
                }
                if sender.is_none() {
                    // Failing to connect is not retried in a tight loop.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            (samples, errors, shown)
        }));
    }
    let (mut samples, mut errors, mut shown) = (Vec::new(), 0, Vec::new());
    for task in tasks {
        let (task_samples, task_errors, task_shown) = task.await.context("a load task")?;
        samples.extend(task_samples);
        errors += task_errors;
        shown.extend(task_shown);
    }
    let rps = samples.len() as f64 / started.elapsed().as_secs_f64();
    eprintln!("bench:   {rps:.0} answers/s, {errors} errors");
    for error in shown.iter().take(SHOWN_ERRORS) {
        eprintln!("bench:   an error: {error}");
    }
    Ok(Load { rps, errors, samples })
}

/// One GET of the small response on `sender`'s connection (a new one when there is none
/// or it was closed, as after an answer with `Connection: close`, which is no failure); its
/// latency if it was a 2xx answer.
async fn one_request(
    route: &Route,
    sender: &mut Option<SendRequest<Empty<Bytes>>>,
) -> Result<Duration> {
    if sender.as_ref().is_some_and(SendRequest::is_closed) {
        *sender = None;
    }
    let live = match sender {
        Some(live) => live,
        None => sender.insert(route.handshake().await.context("connecting")?),
    };
    if live.ready().await.is_err() {
        *sender = None;
        let live = sender.insert(route.handshake().await.context("connecting")?);
        live.ready().await.context("a new connection")?;
    }
    let live = sender.as_mut().context("no connection")?;
    let sent = Instant::now();
    let response = match live.send_request(route.request(upstream::SMALL_PATH)?).await {
        Ok(response) => response,
        Err(e) => {
            *sender = None;
            return Err(e).context("sending");
        }
    };
    let status = response.status();
    let body = response.into_body().collect().await;
    let body = match body {
        Ok(body) => body.to_bytes(),
        Err(e) => {
            *sender = None;
            return Err(e).context("reading the answer");
        }
    };
    ensure!(
        status.is_success(),
        "{status} {}",
        String::from_utf8_lossy(&body[..body.len().min(200)])
    );
    Ok(sent.elapsed())
}

/// One download of [`STREAM_BYTES`], in MB/s.
async fn stream(route: &Route, label: &str) -> Result<f64> {
    eprintln!("bench: {label} (one download of {STREAM_BYTES} bytes)");
    let mut sender = route.handshake().await?;
    let started = Instant::now();
    let path = format!("/bytes?n={STREAM_BYTES}");
    let response = sender.send_request(route.request(&path)?).await?;
    let status = response.status();
    if !status.is_success() {
        let body = response.into_body().collect().await?.to_bytes();
        bail!("{label}: {status} {}", String::from_utf8_lossy(&body[..body.len().min(200)]));
    }
    let mut body = response.into_body();
    let mut bytes = 0u64;
    while let Some(frame) = body.frame().await {
        bytes += frame?.data_ref().map_or(0, |data| data.len() as u64);
    }
    ensure!(bytes == STREAM_BYTES, "{bytes} bytes of {STREAM_BYTES}");
    let rate = bytes as f64 / 1e6 / started.elapsed().as_secs_f64();
    eprintln!("bench:   {rate:.0} MB/s");
    Ok(rate)
}

/// The preview metrics of `driver` that `wanted` asks for, the app reached directly in
/// `driver`'s sandbox, and with `anchors` the nginx ones, on one session's app.
pub async fn measure(
    server: &Server,
    uplink: &Uplink,
    driver: &str,
    anchors: bool,
    wanted: &dyn Fn(&str) -> bool,
) -> Result<Vec<Metric>> {
    let rps = [32, 128].map(|c| name(format!("proxy.rps_c{c}.{driver}")));
    let errors = [32, 128].map(|c| name(format!("proxy.errors_c{c}.{driver}")));
    let latency = name(format!("proxy.latency_c32.{driver}"));
    let throughput = name(format!("proxy.stream_throughput.{driver}"));
    let proxied: Vec<&str> =
        rps.iter().chain(&errors).chain([&latency, &throughput]).copied().collect();
    let nginx = ANCHORS[1];
    let direct = direct_names(driver);
    let want_direct = direct.is_some_and(|d| d.iter().any(|m| wanted(m)));
    let want_nginx = anchors && nginx.iter().any(|m| wanted(m));
    let mut metrics = Vec::new();
    if !proxied.iter().any(|m| wanted(m)) && !want_direct && !want_nginx {
        return Ok(metrics);
    }
    let id = server.create_session_with(SESSION_BODY_NET).await?;
    let address = start_app(server, &id).await?;
    let server_addr: SocketAddr = server.inner.addr.parse().context("the server's address")?;
    let proxy = Route::Proxy {
        server: server_addr,
        host: format!("{APP_PORT}-{id}.preview.localhost:{}", server_addr.port()),
        token: server.bearer().trim_start_matches("Bearer ").to_owned(),
    };
    // The download before the load at 128 connections, which leaves tunnels behind.
    if wanted(rps[0]) || wanted(errors[0]) || wanted(latency) {
        let found = load(&proxy, 32, &format!("preview on {driver}")).await?;
        metrics.push(Metric::value(rps[0], "req/s", found.rps));
        metrics.push(Metric::value(errors[0], "errors", found.errors as f64));
        metrics.push(Metric::ms(latency, &found.samples));
    }
    if wanted(throughput) {
        let rate = stream(&proxy, &format!("preview download on {driver}")).await?;
        metrics.push(Metric::value(throughput, "MB/s", rate));
    }
    if wanted(rps[1]) || wanted(errors[1]) {
        let found = load(&proxy, 128, &format!("preview on {driver}")).await?;
        metrics.push(Metric::value(rps[1], "req/s", found.rps));
        metrics.push(Metric::value(errors[1], "errors", found.errors as f64));
    }
    let app = SocketAddr::from((address, APP_PORT));
    if let Some(direct) = direct.filter(|_| want_direct) {
        let route = Route::Uplink { netns: uplink.name.clone(), addr: app };
        metrics.extend(anchor(&route, direct, "the app reached directly").await?);
    }
    if want_nginx {
        let proxy = Nginx::start(&uplink.name, app).await?;
        let route = Route::Uplink { netns: uplink.name.clone(), addr: proxy.addr };
        let result = anchor(&route, nginx, "nginx").await;
        proxy.stop().await;
        metrics.extend(result?);
    }
    server.delete_session(&id).await?;
    Ok(metrics)
}

/// An anchor's `[rps, latency, throughput]` over `route`.
async fn anchor(route: &Route, names: [&'static str; 3], label: &str) -> Result<Vec<Metric>> {
    let found = load(route, 32, label).await?;
    if found.errors > 0 {
        bail!("{label}: {} errors at 32 connections (an anchor must not fail)", found.errors);
    }
    Ok(vec![
        Metric::value(names[0], "req/s", found.rps),
        Metric::ms(names[1], &found.samples),
        Metric::value(names[2], "MB/s", stream(route, label).await?),
    ])
}

/// Uploads the bench binary into the session, starts it as the app on [`APP_PORT`], and
/// returns the sandbox's address.
async fn start_app(server: &Server, id: &str) -> Result<std::net::Ipv4Addr> {
    let exe = std::env::current_exe().context("the bench's own binary")?;
    // Without its debug information: a tenth of the size.
    let dir = tempfile::tempdir().context("temporary directory")?;
    let stripped = dir.path().join("upstream");
    let strip = tokio::process::Command::new("strip").arg("-o").arg(&stripped).arg(&exe).status();
    let exe = if strip.await.is_ok_and(|s| s.success()) { stripped } else { exe };
    let binary =
        tokio::fs::read(&exe).await.with_context(|| format!("reading {}", exe.display()))?;
    // mode 0755.
    let path = format!("/api/sessions/{id}/files/content?path=/workspace/upstream&mode=493");
    server.put_bytes(&path, binary).await.context("uploading the app")?;
    let start = format!(
        "setsid -f /workspace/upstream {flag} {APP_PORT} >/tmp/upstream.log 2>&1; \
         for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/{APP_PORT}) 2>/dev/null && \
         exit 0; sleep 0.1; done; cat /tmp/upstream.log; exit 1",
        flag = upstream::FLAG
    );
    let reply = server.exec(id, &["bash", "-c", &start]).await?;
    ensure!(reply["exit_code"] == 0, "the app did not start: {reply}");
    sandbox_address(server, id).await
}

/// The sandbox's address, without sending a packet (a UDP "connect" only routes).
async fn sandbox_address(server: &Server, id: &str) -> Result<std::net::Ipv4Addr> {
    let script = "import socket; s = socket.socket(2, 2); s.connect(('203.0.113.10', 80)); \
                  print(s.getsockname()[0])";
    let reply = server.exec(id, &["python3", "-c", script]).await?;
    let out = reply["stdout"].as_str().unwrap_or_default().trim().to_owned();
    out.parse().with_context(|| format!("the sandbox's address: {out:?}"))
}

/// Debian's nginx in the uplink namespace, proxying to the app.
struct Nginx {
    child: tokio::process::Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

/// Debian's binary (`cargo xtask bench` installs the package: `BENCH_PACKAGES` in
/// `xtask/src/bench.rs`).
const NGINX: &str = "/usr/sbin/nginx";

impl Nginx {
    /// Starts it and waits until it answers. Its configuration: as many workers as cores,
    /// no access log, an upstream of keep-alive connections (HTTP/1.1, `Connection`
    /// cleared), and buffering that never spills to a temporary file (a download streams
    /// through memory, as it does through Flint).
    async fn start(netns: &str, app: SocketAddr) -> Result<Nginx> {
        if !Path::new(NGINX).exists() {
            bail!("{NGINX} is missing: `cargo xtask bench` installs it (Debian's nginx)");
        }
        let dir = tempfile::tempdir().context("temporary directory")?;
        let d = dir.path().display();
        let config = format!(
            "worker_processes auto;\n\
             daemon off;\n\
             pid {d}/nginx.pid;\n\
             error_log {d}/error.log warn;\n\
             events {{ worker_connections 4096; }}\n\
             http {{\n\
               access_log off;\n\
               client_body_temp_path {d}/client_body;\n\
               proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fastcgi;\n\
               uwsgi_temp_path {d}/uwsgi;\n\
               scgi_temp_path {d}/scgi;\n\
               upstream app {{ server {app}; keepalive 256; }}\n\
               server {{\n\
                 listen 127.0.0.1:{NGINX_PORT};\n\
                 location / {{\n\
                   proxy_pass http://app;\n\
                   proxy_http_version 1.1;\n\
                   proxy_set_header Connection \"\";\n\
                   proxy_max_temp_file_size 0;\n\
                 }}\n\
               }}\n\
             }}\n"
        );
        std::fs::write(dir.path().join("nginx.conf"), config)?;
        let child = tokio::process::Command::new("ip")
            .args(["netns", "exec", netns, NGINX, "-p"])
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting nginx")?;
        let addr = SocketAddr::from(([127, 0, 0, 1], NGINX_PORT));
        let nginx = Nginx { child, addr, _dir: dir };
        let route = Route::Uplink { netns: netns.to_owned(), addr };
        let deadline = Instant::now() + Duration::from_secs(10);
        while route.connect().await.is_err() {
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(nginx._dir.path().join("error.log"));
                nginx.stop().await;
                bail!("nginx did not come up: {}", log.unwrap_or_default());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        eprintln!("bench: nginx on {addr} in {netns}, proxying to {app}");
        Ok(nginx)
    }

    /// SIGTERM (its master stops its workers), then waits.
    async fn stop(mut self) {
        if let Some(pid) = self.child.id().and_then(|pid| i32::try_from(pid).ok()) {
            let pid = nix::unistd::Pid::from_raw(pid);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        }
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
    }
}
