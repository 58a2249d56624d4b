//! The bench's harness: a release `flint serve` on a free port with a fresh data
//! directory (the test image linked in) and a user-wide token, and plain HTTP requests.
//!
//! A server is stopped as an operator stops it (SIGTERM: it discards its warm pool and
//! removes its nftables table), then whatever it left of its sandboxes is found and
//! removed ([`leftovers`]); each server is listed in the manifest `target/bench/servers.txt`
//! that `cargo xtask bench` checks at the end.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context as _, Result, bail, ensure};
use http::StatusCode;
use tokio::io::AsyncBufReadExt as _;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

use super::leftovers::{self, Leftover, ServerRecord};
use super::report::{target_dir, workspace};
use super::{SESSION_BODY, WAIT, Ws, client, uplink};

/// How long a server may take to stop after SIGTERM: it discards its warm sandboxes first
/// (a gVisor sandbox takes a few hundred ms).
const STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Every server this run started: the run's last check looks at each again.
static STARTED: Mutex<Vec<ServerRecord>> = Mutex::new(Vec::new());

/// Namespaces this run made itself (its uplink's).
static OWN_NETNS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The servers this run started, and its own namespaces: what its last check looks at.
pub fn started() -> leftovers::Manifest {
    let servers = STARTED.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    let netns = OWN_NETNS.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    leftovers::Manifest { servers, netns }
}

/// Lists a namespace this run made in the manifest.
pub fn record_netns(name: &str) -> Result<()> {
    OWN_NETNS.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(name.to_owned());
    record(&format!("netns {name}"))
}

/// Lists `line` in the manifest `cargo xtask bench` checks.
fn record(line: &str) -> Result<()> {
    let dir = target_dir().join("bench");
    leftovers::record(&dir, line).with_context(|| format!("writing {}", dir.display()))
}

/// The release guest-agent binary, built (or brought up to date: a stale agent would measure
/// old code) by `cargo build --release -p guest-agent`, since `cargo bench -p server` does not
/// build other packages' binaries.
pub fn agent_bin() -> Result<PathBuf> {
    let bin = target_dir().join("release/guest-agent");
    {
        eprintln!("bench: cargo build --release -p guest-agent");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = std::process::Command::new(cargo)
            .args(["build", "--release", "-p", "guest-agent"])
            .current_dir(workspace())
            .status()
            .context("running cargo build --release -p guest-agent")?;
        ensure!(status.success(), "building the release guest-agent failed: {status}");
    }
    Ok(bin)
}

/// A data directory holding the built test image, built unless cached: each run links its
/// `images/` into a fresh data directory.
pub async fn image_cache() -> Result<PathBuf> {
    build_image("test").await
}

/// Builds `images/{name}.toml` into the bench's image cache (a no-op when it is there);
/// the cache.
pub async fn build_image(name: &str) -> Result<PathBuf> {
    let cache = target_dir().join("flint-bench-data");
    let spec = workspace().join(format!("images/{name}.toml"));
    let start = Instant::now();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_flint"))
        .args(["image", "build"])
        .arg(&spec)
        .arg("--data-dir")
        .arg(&cache)
        .env("FLINT_LOG", "warn")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .await
        .context("running flint image build")?;
    ensure!(output.status.success(), "building {} failed: {}", spec.display(), output.status);
    eprintln!(
        "bench: {name} image {} ({:.1?})",
        String::from_utf8_lossy(&output.stdout).trim(),
        start.elapsed()
    );
    Ok(cache)
}

/// `flint serve` on a free port with a fresh data directory, and a user-wide token.
#[derive(Clone)]
pub struct Server {
    pub inner: Arc<Inner>,
}

pub struct Inner {
    pub child: tokio::sync::Mutex<tokio::process::Child>,
    pub addr: String,
    pub bearer: String,
    /// Sessions created and not deleted yet.
    pub sessions: Mutex<Vec<String>>,
    /// Its instance and data directory.
    pub record: ServerRecord,
    /// The uplink namespace it was given (its table lives there).
    uplink: String,
    _dir: tempfile::TempDir,
}

/// A response, read whole.
pub struct Reply {
    pub status: StatusCode,
    /// The name=value pair of its `Set-Cookie`, if any.
    pub cookie: Option<String>,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_str(&self.body).with_context(|| format!("not json: {}", self.body))
    }
}

impl Server {
    /// Starts `flint serve` with `extra` arguments (the driver, the pool).
    pub async fn start(
        cache: &Path,
        agent: &Path,
        uplink: &uplink::Uplink,
        extra: &[&str],
    ) -> Result<Server> {
        let dir = tempfile::Builder::new()
            .prefix("flint-bench-sessions-")
            .tempdir()
            .context("temporary directory")?;
        let record =
            ServerRecord { instance: instance_of(dir.path()), data_dir: dir.path().to_owned() };
        self::record(&format!("server {} {}", record.instance, dir.path().display()))?;
        STARTED.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(record.clone());
        std::os::unix::fs::symlink(cache.join("images"), dir.path().join("images"))
            .context("linking the image cache")?;
        let binary = env!("CARGO_BIN_EXE_flint");
        let mut child = tokio::process::Command::new(binary)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .args(["--uplink-netns", &uplink.name, "--dns-upstream", &uplink::DNS.to_string()])
            .args(extra)
            .env("FLINT_LOG", std::env::var("FLINT_LOG").unwrap_or_else(|_| "warn".into()))
            .env("FLINT_IMAGES_DIR", workspace().join("images"))
            .env("FLINT_AGENT_BIN", agent)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {binary} serve"))?;
        let stdout = child.stdout.take().context("the server's stdout")?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let (mut addr, mut login_url) = (None, None);
        let started = async {
            while addr.is_none() || login_url.is_none() {
                let Some(line) = lines.next_line().await.context("reading the server's stdout")?
                else {
                    bail!("flint serve exited before printing its address and login url");
                };
                if let Some(rest) = line.strip_prefix("Flint is listening on http://") {
                    addr = Some(rest.to_owned());
                } else if let Some(rest) = line.strip_prefix("Sign in: ") {
                    login_url = Some(rest.to_owned());
                }
            }
            anyhow::Ok(())
        };
        tokio::time::timeout(WAIT, started).await.context("flint serve did not start")??;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let (addr, login_url) = (addr.unwrap_or_default(), login_url.unwrap_or_default());
        eprintln!("bench: flint serve on http://{addr} ({binary}, agent {})", agent.display());
        let bearer = token(&addr, &login_url).await?;
        Ok(Server {
            inner: Arc::new(Inner {
                child: tokio::sync::Mutex::new(child),
                addr,
                bearer,
                sessions: Mutex::default(),
                record,
                uplink: uplink.name.clone(),
                _dir: dir,
            }),
        })
    }

    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Result<Reply> {
        request(&self.inner.addr, method, path, headers, body).await
    }

    /// Creates a session and checks it is running; its id.
    pub async fn create_session(&self) -> Result<String> {
        self.create_session_with(SESSION_BODY).await
    }

    pub async fn create_session_with(&self, body: &str) -> Result<String> {
        let headers = [("authorization", self.bearer()), ("content-type", "application/json")];
        let reply = self.request("POST", "/api/sessions", &headers, body).await?;
        ensure!(
            reply.status == StatusCode::CREATED,
            "creating a session: {} {}",
            reply.status,
            reply.body
        );
        let session = reply.json()?;
        let id = session["id"].as_str().context("no session id")?.to_owned();
        self.sessions().push(id.clone());
        ensure!(session["state"] == "running", "a session that is not running: {session}");
        Ok(id)
    }

    /// Creates a terminal in the session and opens its websocket.
    pub async fn open_terminal(&self, id: &str) -> Result<Ws> {
        let tid = self.create_terminal(id).await?;
        self.attach(id, &tid).await
    }

    /// Opens the session's first shell as the web app does: the one that is there (a warm
    /// sandbox's), else a new one.
    pub async fn open_first_shell(&self, id: &str) -> Result<Ws> {
        let headers = [("authorization", self.bearer())];
        let reply =
            self.request("GET", &format!("/api/sessions/{id}/terminals"), &headers, "").await?;
        ensure!(
            reply.status == StatusCode::OK,
            "listing terminals: {} {}",
            reply.status,
            reply.body
        );
        let first =
            reply.json()?.as_array().and_then(|t| t.first()?["id"].as_str().map(str::to_owned));
        let tid = match first {
            Some(tid) => tid,
            None => self.create_terminal(id).await?,
        };
        self.attach(id, &tid).await
    }

    pub async fn create_terminal(&self, id: &str) -> Result<String> {
        let headers = [("authorization", self.bearer()), ("content-type", "application/json")];
        let reply =
            self.request("POST", &format!("/api/sessions/{id}/terminals"), &headers, "{}").await?;
        ensure!(
            reply.status == StatusCode::CREATED,
            "creating a terminal: {} {}",
            reply.status,
            reply.body
        );
        Ok(reply.json()?["id"].as_str().context("no terminal id")?.to_owned())
    }

    /// Opens the websocket of terminal `tid` of session `id`.
    pub async fn attach(&self, id: &str, tid: &str) -> Result<Ws> {
        self.websocket(&format!("/api/sessions/{id}/terminals/{tid}/ws")).await
    }

    /// Opens the websocket of terminal `tid` of session `id` offering permessage-deflate, as
    /// browsers do; with it, the count of bytes read from its connection.
    pub async fn attach_deflate(
        &self,
        id: &str,
        tid: &str,
    ) -> Result<(client::DeflateWs, std::sync::Arc<std::sync::atomic::AtomicU64>)> {
        let path = format!("/api/sessions/{id}/terminals/{tid}/ws");
        let origin = format!("http://{}", self.inner.addr);
        let headers = [("authorization", self.bearer()), ("origin", origin.as_str())];
        let open = client::deflate_websocket(&self.inner.addr, &path, &headers);
        tokio::time::timeout(WAIT, open)
            .await
            .with_context(|| format!("opening {path} timed out"))?
    }

    /// Opens a websocket of the API as the web app does (bearer, our `Origin`).
    pub async fn websocket(&self, path: &str) -> Result<Ws> {
        let stream = tokio::net::TcpStream::connect(&self.inner.addr)
            .await
            .with_context(|| format!("connecting to {}", self.inner.addr))?;
        self.websocket_on(path, stream).await
    }

    /// The same over `stream`, a connection to the server the caller made (with a small
    /// receive buffer, say).
    pub async fn websocket_on(&self, path: &str, stream: tokio::net::TcpStream) -> Result<Ws> {
        let url = format!("ws://{}{path}", self.inner.addr);
        let mut request = url.into_client_request().context("websocket request")?;
        let origin = format!("http://{}", self.inner.addr);
        for (name, value) in [("authorization", self.bearer()), ("origin", origin.as_str())] {
            request.headers_mut().insert(name, value.parse().context("header value")?);
        }
        stream.set_nodelay(true)?;
        let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::client_async(request, stream))
            .await
            .with_context(|| format!("opening {path} timed out"))?
            .with_context(|| format!("opening {path}"))?;
        Ok(ws)
    }

    /// Runs `argv` in session `id` (no pty, output collected); the reply
    /// (`exit_code`, `stdout`, `stderr`).
    pub async fn exec(&self, id: &str, argv: &[&str]) -> Result<serde_json::Value> {
        let body = serde_json::json!({ "argv": argv, "env": {}, "timeout_ms": 120_000 });
        let headers = [("authorization", self.bearer()), ("content-type", "application/json")];
        let path = format!("/api/sessions/{id}/exec");
        let reply = self.request("POST", &path, &headers, &body.to_string()).await?;
        ensure!(reply.status == StatusCode::OK, "exec: {} {}", reply.status, reply.body);
        reply.json()
    }

    /// `PUT path` with a binary body (a file's content), on a fresh connection.
    pub async fn put_bytes(&self, path: &str, body: Vec<u8>) -> Result<()> {
        use http_body_util::BodyExt as _;
        let stream =
            tokio::net::TcpStream::connect(&self.inner.addr).await.context("connecting")?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let request = http::Request::put(path)
            .header("host", &self.inner.addr)
            .header("authorization", self.bearer())
            .header("content-type", "application/octet-stream")
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))?;
        let response = tokio::time::timeout(WAIT, sender.send_request(request))
            .await
            .with_context(|| format!("PUT {path}: no answer within {WAIT:?}"))??;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        ensure!(status.is_success(), "PUT {path}: {status} {}", String::from_utf8_lossy(&body));
        Ok(())
    }

    pub async fn delete_session(&self, id: &str) -> Result<()> {
        let headers = [("authorization", self.bearer())];
        let reply = self.request("DELETE", &format!("/api/sessions/{id}"), &headers, "").await?;
        ensure!(
            reply.status == StatusCode::NO_CONTENT,
            "deleting session {id}: {} {}",
            reply.status,
            reply.body
        );
        self.sessions().retain(|s| s != id);
        Ok(())
    }

    /// Deletes every session a failed measurement left behind.
    pub async fn delete_leftovers(&self) -> Result<()> {
        let leftovers = self.sessions().clone();
        let mut result = Ok(());
        for id in leftovers {
            eprintln!("bench: deleting leftover session {id}");
            if let Err(e) = self.delete_session(&id).await {
                eprintln!("bench: {e:#}");
                result = Err(e);
            }
        }
        result
    }

    /// Stops the server (SIGTERM, then SIGKILL if it has not exited within [`STOP_WAIT`]),
    /// then removes what it left, saying what that was. Fails only when something could
    /// not be removed.
    pub async fn stop(&self) -> Result<()> {
        let mut child = self.inner.child.lock().await;
        if let Some(pid) = child.id() {
            let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).context("a pid")?);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            match tokio::time::timeout(STOP_WAIT, child.wait()).await {
                Ok(Ok(status)) if status.success() => {}
                Ok(Ok(status)) => eprintln!("bench: flint serve exited with {status}"),
                Ok(Err(e)) => eprintln!("bench: waiting for flint serve: {e}"),
                Err(_) => {
                    eprintln!("bench: flint serve did not stop within {STOP_WAIT:?}: SIGKILL");
                    let _ = child.kill().await;
                }
            }
        }
        drop(child);
        let (record, uplink) = (self.inner.record.clone(), self.inner.uplink.clone());
        tokio::task::spawn_blocking(move || remove_leftovers(&record, &uplink)).await?
    }

    pub fn bearer(&self) -> &str {
        &self.inner.bearer
    }

    pub fn sessions(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.inner.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A server's instance, as `flint serve` names it from its data directory.
fn instance_of(data_dir: &Path) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(data_dir.to_string_lossy().as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// Removes what a stopped server left of its sandboxes, saying what it was: processes
/// first, then, once they are gone (reaped: a zombie still holds its cgroup), the rest,
/// found again (a loop device may have gone with its mount), each retried for a while.
fn remove_leftovers(record: &ServerRecord, uplink: &str) -> Result<()> {
    let found = leftovers::find(record, Some(uplink), false);
    if found.is_empty() {
        return Ok(());
    }
    eprintln!(
        "bench: flint serve ({}) left {} things; removing them:",
        record.instance,
        found.len()
    );
    for leftover in &found {
        eprintln!("bench:   {leftover}");
    }
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    let mut failures = Vec::new();
    loop {
        let processes: Vec<Leftover> = leftovers::find(record, None, false)
            .into_iter()
            .filter(|l| matches!(l, Leftover::Process { .. }))
            .collect();
        if processes.is_empty() || Instant::now() > deadline {
            failures.extend(processes.iter().map(|p| format!("{p} did not go")));
            break;
        }
        for process in &processes {
            let _ = leftovers::remove(process);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    loop {
        let rest = leftovers::find(record, Some(uplink), false);
        let errors: Vec<String> = rest.iter().filter_map(|l| leftovers::remove(l).err()).collect();
        if errors.is_empty() || Instant::now() > deadline {
            failures.extend(errors);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    if failures.is_empty() {
        eprintln!("bench:   all removed");
        Ok(())
    } else {
        bail!("could not remove what flint serve left: {}", failures.join("; "))
    }
}

/// Signs in with the login link and creates a user-wide token: `Bearer <token>`.
pub async fn token(addr: &str, login_url: &str) -> Result<String> {
    let login = &login_url[login_url.find("/login").context("a /login url")?..];
    let reply = request(addr, "GET", login, &[], "").await?;
    ensure!(reply.status == StatusCode::SEE_OTHER, "sign-in: {} {}", reply.status, reply.body);
    let cookie = reply.cookie.context("no cookie from the sign-in")?;
    let headers = [("cookie", cookie.as_str()), ("content-type", "application/json")];
    let reply = request(addr, "POST", "/api/tokens", &headers, r#"{"name":"bench"}"#).await?;
    ensure!(reply.status.is_success(), "creating a token: {} {}", reply.status, reply.body);
    let token = reply.json()?["token"].as_str().map(str::to_owned);
    Ok(format!("Bearer {}", token.context("no token in the reply")?))
}

/// One request to the server at `addr` on a fresh connection.
pub async fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<Reply> {
    let (status, headers, body) =
        tokio::time::timeout(WAIT, client::request(addr, method, path, headers, body))
            .await
            .with_context(|| format!("{method} {path}: no answer within {WAIT:?}"))?
            .with_context(|| format!("{method} {path}"))?;
    let cookie = headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_owned);
    Ok(Reply { status, cookie, body: String::from_utf8_lossy(&body).into_owned() })
}
