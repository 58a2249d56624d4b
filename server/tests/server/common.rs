//! A `flint serve` per test on a free port, and a tiny HTTP client.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

/// A running server, killed on drop together with its sandboxes (which, by design, outlive
/// a server that dies).
pub struct TestServer {
    child: Child,
    data_dir: std::path::PathBuf,
    pub addr: SocketAddr,
    pub login_url: String,
}

impl TestServer {
    /// Starts `flint serve` with its data in `data_dir`.
    pub fn start(data_dir: &Path) -> TestServer {
        TestServer::start_with(data_dir, &[])
    }

    /// Starts `flint serve` with extra arguments.
    pub fn start_with(data_dir: &Path, extra: &[&str]) -> TestServer {
        TestServer::start_on(data_dir, "127.0.0.1:0", extra)
    }

    /// Starts `flint serve --listen LISTEN` with extra arguments.
    pub fn start_on(data_dir: &Path, listen: &str, extra: &[&str]) -> TestServer {
        if !data_dir.join("images").exists() {
            crate::support::link_images(data_dir);
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_flint"))
            .args(["serve", "--listen", listen, "--data-dir"])
            .arg(data_dir)
            .args(extra)
            // Most suites test the server on the `process` driver; gVisor's ask for it.
            .args(if extra.contains(&"--driver") { &[][..] } else { &["--driver", "process"][..] })
            // No warm sandboxes unless a test asks: they would load every other test.
            .args(if extra.contains(&"--pool-size") { &[][..] } else { &["--pool-size", "0"][..] })
            .env("FLINT_LOG", "warn")
            .env("FLINT_IMAGES_DIR", crate::support::images_dir())
            .env("FLINT_AGENT_BIN", crate::support::agent_bin())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start flint serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut addr = None;
        let mut login_url = None;
        // The two lines come right after start-up; a dead server ends the stream instead.
        while addr.is_none() || login_url.is_none() {
            let line =
                lines.next().expect("flint serve printed its address and login url").expect("line");
            if let Some(rest) = line.strip_prefix("Flint is listening on http://") {
                addr = Some(rest.parse().expect("address"));
            } else if let Some(rest) = line.strip_prefix("Sign in: ") {
                login_url = Some(rest.to_owned());
            }
        }
        std::thread::spawn(move || for _ in lines {});
        TestServer {
            child,
            data_dir: data_dir.to_owned(),
            addr: addr.expect("addr"),
            login_url: login_url.expect("url"),
        }
    }

    /// The path and query of the login URL.
    pub fn login_path(&self) -> String {
        let url = &self.login_url;
        url[url.find("/login").expect("a /login url")..].to_owned()
    }

    /// The instance name of this server's cgroups, namespaces and nftables table.
    pub fn instance(&self) -> String {
        server::auth::hash_token(&self.data_dir.to_string_lossy())[..12].to_owned()
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -TERM`, then waits: a clean shutdown.
    pub fn terminate(mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.request("GET", path, headers, "").await
    }

    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Reply {
        let addr = self.addr.to_string();
        let exchange = crate::support::client::request(&addr, method, path, headers, body);
        let (status, headers, bytes) = tokio::time::timeout(Duration::from_secs(30), exchange)
            .await
            .expect("answered in time")
            .unwrap_or_else(|e| panic!("{method} {path}: {e:#}"));
        Reply { status, headers, body: String::from_utf8_lossy(&bytes).into_owned(), bytes }
    }

    /// Signs in with the login link and returns the `Cookie` header value.
    pub async fn sign_in(&self) -> String {
        let reply = self.get(&self.login_path(), &[]).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        let set_cookie = reply.header("set-cookie").expect("set-cookie");
        set_cookie.split(';').next().expect("pair").to_owned()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
        // The server names its cgroups `flint/<instance>/<session>`, the instance derived
        // from the data directory; a test's leftover sessions die here.
        let instance = &server::auth::hash_token(&self.data_dir.to_string_lossy())[..12];
        let parents = ["/sys/fs/cgroup/pids/flint", "/sys/fs/cgroup/flint"];
        let sessions = parents
            .iter()
            .filter_map(|parent| std::fs::read_dir(Path::new(parent).join(instance)).ok())
            .flat_map(|dir| dir.flatten())
            .filter(|entry| entry.path().is_dir())
            .map(|entry| entry.file_name().to_string_lossy().into_owned());
        for session in sessions.collect::<Vec<_>>() {
            let name = format!("flint/{instance}/{session}");
            if let Ok(cgroup) = server::sandbox::cgroup::Cgroup::at(&name)
                && let Err(e) = cgroup.kill_and_remove(Duration::from_secs(10))
            {
                eprintln!("cleaning up {name}: {e:#}");
            }
        }
        crate::support::uplink::clean_instance(instance);
        unmount_under(&self.data_dir);
    }
}

/// Detaches every mount under `dir` (the sandboxes' tmpfs host directories, which the
/// server unmounts only when it deletes a session), deepest first, so that no test leaves
/// mounts behind and its data directory can be removed.
fn unmount_under(dir: &Path) {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    // The fifth field is the mount point.
    let mut mounts: Vec<&Path> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(Path::new)
        .filter(|point| point.starts_with(dir))
        .collect();
    mounts.sort_by_key(|point| std::cmp::Reverse(point.components().count()));
    for point in mounts {
        if let Err(e) = nix::mount::umount2(point, nix::mount::MntFlags::MNT_DETACH) {
            eprintln!("unmounting {}: {e}", point.display());
        }
    }
}

/// A response, read whole.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
    /// The body as it came (`body` is its lossy text).
    pub bytes: Bytes,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not json ({e}): {}", self.body))
    }

    /// Asserts an error reply in the API's shape.
    pub fn assert_error(&self, status: StatusCode) {
        assert_eq!(self.status, status, "{}", self.body);
        let error = self.json();
        assert!(error["error"].as_str().is_some_and(|e| !e.is_empty()), "{}", self.body);
    }
}

/// Runs the `flint` CLI and returns its stdout.
pub fn flint(args: &[&str], data_dir: &Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_flint"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env("FLINT_LOG", "warn")
        .output()
        .expect("run flint");
    assert!(output.status.success(), "flint {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// A websocket client connection.
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

impl TestServer {
    /// Opens a websocket; `Err(status)` when the upgrade is refused.
    pub async fn ws(&self, path: &str, headers: &[(&str, &str)]) -> Result<Ws, StatusCode> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request =
            format!("ws://{}{path}", self.addr).into_client_request().expect("request");
        for (name, value) in headers {
            request.headers_mut().insert(
                http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                http::HeaderValue::from_str(value).expect("value"),
            );
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((ws, _)) => Ok(ws),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(response.status()),
            Err(e) => panic!("websocket failed: {e}"),
        }
    }

    /// The `Origin` browsers of this server send.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Reads output from a terminal websocket until `needle` appears; returns all output text.
pub async fn ws_read_until(ws: &mut Ws, needle: &str) -> String {
    use futures_util::StreamExt as _;
    use tokio_tungstenite::tungstenite::Message;
    let mut text = String::new();
    let result = tokio::time::timeout(Duration::from_secs(30), async {
        while !text.contains(needle) {
            match ws.next().await {
                Some(Ok(Message::Binary(bytes))) => {
                    assert!(bytes.len() >= proto::api::OUTPUT_OFFSET_BYTES);
                    text.push_str(&String::from_utf8_lossy(
                        &bytes[proto::api::OUTPUT_OFFSET_BYTES..],
                    ));
                }
                Some(Ok(_)) => {}
                other => {
                    panic!("websocket ended while waiting for {needle:?}: {other:?}; saw {text:?}")
                }
            }
        }
    })
    .await;
    assert!(result.is_ok(), "timed out waiting for {needle:?}; saw {text:?}");
    text
}

pub async fn ws_type(ws: &mut Ws, keys: &str) {
    use futures_util::SinkExt as _;
    ws.send(tokio_tungstenite::tungstenite::Message::Binary(keys.as_bytes().to_vec().into()))
        .await
        .expect("send");
}

impl TestServer {
    /// GETs `path` until `done` holds for the reply (or fails after 30 s) and returns it.
    pub async fn poll_get(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        what: &str,
        done: impl Fn(&Reply) -> bool,
    ) -> Reply {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let reply = self.get(path, headers).await;
            if done(&reply) {
                return reply;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}: {}",
                reply.body
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl TestServer {
    /// A bearer token of the admin (`Bearer ...`), made through a signed-in browser.
    pub async fn bearer(&self) -> String {
        let cookie = self.sign_in().await;
        let reply = self
            .request(
                "POST",
                "/api/tokens",
                &[("cookie", &cookie), ("content-type", "application/json")],
                r#"{"name":"test"}"#,
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        format!("Bearer {}", reply.json()["token"].as_str().expect("token"))
    }

    /// Creates a session from a JSON `body`; its record (201 expected).
    pub async fn create_session(&self, bearer: &str, body: &str) -> serde_json::Value {
        let reply = self
            .request(
                "POST",
                "/api/sessions",
                &[("authorization", bearer), ("content-type", "application/json")],
                body,
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.json()
    }

    /// Creates a running session from `body`; its id.
    pub async fn running_session(&self, bearer: &str, body: &str) -> String {
        let session = self.create_session(bearer, body).await;
        assert_eq!(session["state"], "running", "{session}");
        session["id"].as_str().expect("id").to_owned()
    }

    /// Runs `bash -c script` in a session (60 s at most); (exit code, stdout, stderr).
    pub async fn sh(&self, bearer: &str, id: &str, script: &str) -> (i64, String, String) {
        let body =
            serde_json::json!({ "argv": ["bash", "-c", script], "env": {}, "timeout_ms": 60_000 });
        let reply = self
            .request(
                "POST",
                &format!("/api/sessions/{id}/exec"),
                &[("authorization", bearer), ("content-type", "application/json")],
                &body.to_string(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let result = reply.json();
        let text = |k: &str| result[k].as_str().unwrap_or_default().to_owned();
        (result["exit_code"].as_i64().unwrap_or(-1), text("stdout"), text("stderr"))
    }
}
