//! Sturdy on the driver users get (gVisor): a session's previews answer every request under
//! concurrency, a big download arrives whole beside small requests, browsers aborting
//! thousands of requests cannot break the agent's connection, and a stuck agent makes the
//! session `degraded` (never a `running` that answers nothing) until the server has
//! reconnected by itself.
//!
//! One server and one session serve every step (a gVisor start is the slow part); the steps
//! run in order in one test, the agent's stop last.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt as _;

use crate::common::*;

const APP: &str = include_str!("preview_app.py");

/// Concurrent keep-alive clients of the load step, and requests each sends.
const CLIENTS: usize = 64;
const REQUESTS: usize = 50;
/// The download beside small requests, in MiB, and how many small requesters run beside it.
const DOWNLOAD_MB: usize = 50;
const BESIDE: usize = 16;
/// Requests a browser abandons mid-body (half downloads, half uploads), and how many at once.
const ABORTED: usize = 2_000;
const ABORTING_AT_ONCE: usize = 32;
/// How long an aborting client waits for the next bytes of its answer: past a queue's wait
/// (30 s), so a request that is never answered fails the test, named.
const ANSWER_WITHIN: Duration = Duration::from_secs(60);

struct Session {
    server: TestServer,
    _dir: tempfile::TempDir,
    bearer: String,
    token: String,
    id: String,
}

impl Session {
    async fn start() -> Session {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = TestServer::start_with(dir.path(), &["--driver", "gvisor"]);
        let bearer = server.bearer().await;
        let token = bearer.strip_prefix("Bearer ").expect("a bearer token").to_owned();
        let body = r#"{"image":"test","network":false,"memory_mb":1024}"#;
        let id = server.running_session(&bearer, body).await;
        let put = server
            .request(
                "PUT",
                &format!("/api/sessions/{id}/files/content?path=/workspace/app.py"),
                &[("authorization", &bearer)],
                APP,
            )
            .await;
        assert!(put.status.is_success(), "{}", put.body);
        let s = Session { server, _dir: dir, bearer, token, id };
        let (code, _, err) =
            s.sh("cd /workspace && setsid -f python3 app.py 8000 >/tmp/app.log 2>&1").await;
        assert_eq!(code, 0, "{err}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while s.get("/headers", &[]).await.0 != StatusCode::OK {
            assert!(Instant::now() < deadline, "the app did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        s
    }

    async fn sh(&self, script: &str) -> (i64, String, String) {
        self.server.sh(&self.bearer, &self.id, script).await
    }

    /// The session's record.
    async fn record(&self) -> serde_json::Value {
        let reply = self
            .server
            .get(&format!("/api/sessions/{}", self.id), &[("authorization", &self.bearer)])
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.json()
    }

    /// Polls the session's record while it is `from` until it is `to`, by `limit` after
    /// `started`; the record then.
    async fn state_turns(
        &self,
        from: &str,
        to: &str,
        started: Instant,
        limit: Duration,
    ) -> serde_json::Value {
        loop {
            let record = self.record().await;
            if record["state"] == to {
                return record;
            }
            assert_eq!(record["state"], from, "{record}");
            assert!(started.elapsed() < limit, "never {to}: {record}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn host(&self) -> String {
        format!("8000-{}.preview.localhost:{}", self.id, self.server.addr.port())
    }

    /// A new keep-alive connection to the server, as a preview client.
    async fn connect(&self) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
        let stream = tokio::net::TcpStream::connect(self.server.addr).await.expect("connect");
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
        tokio::spawn(connection);
        sender
    }

    fn request(&self, method: &str, path: &str, body: Bytes) -> Request<Full<Bytes>> {
        Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.host())
            .header("x-flint-token", &self.token)
            .body(Full::new(body))
            .expect("request")
    }

    /// One GET to the preview on a connection of its own: (status, body).
    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> (StatusCode, Bytes) {
        let mut sender = self.connect().await;
        let mut request = self.request("GET", path, Bytes::new());
        for (name, value) in headers {
            request.headers_mut().insert(
                http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                http::HeaderValue::from_str(value).expect("value"),
            );
        }
        let response = sender.send_request(request).await.expect("response");
        let status = response.status();
        (status, response.into_body().collect().await.expect("body").to_bytes())
    }
}

/// What `GET /pattern?mb=N` sends as its MiB `i`.
fn pattern_mib(i: usize) -> Vec<u8> {
    let turn = i % 256;
    (0..1usize << 20).map(|j| ((j + turn) % 256) as u8).collect()
}

/// `CLIENTS` keep-alive connections, each sending `REQUESTS` GETs of `/headers` one after the
/// other with a header of its own; every answer must be a 200 that echoes that header.
async fn load(s: &Session) {
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..CLIENTS {
        let mut sender = s.connect().await;
        let host = s.host();
        let token = s.token.clone();
        clients.spawn(async move {
            let mut failures = Vec::new();
            for n in 0..REQUESTS {
                let probe = format!("client-{client}-request-{n}");
                let request = Request::get("/headers")
                    .header("host", &host)
                    .header("x-flint-token", &token)
                    .header("x-probe", &probe)
                    .body(Full::new(Bytes::new()))
                    .expect("request");
                if sender.ready().await.is_err() {
                    failures.push(format!("{probe}: the connection closed"));
                    break;
                }
                match sender.send_request(request).await {
                    Ok(response) => {
                        let status = response.status();
                        let body = response.into_body().collect().await.map(|b| b.to_bytes());
                        let body = body.map(|b| String::from_utf8_lossy(&b).into_owned());
                        match body {
                            Ok(body) if status == StatusCode::OK && body.contains(&probe) => {}
                            Ok(body) => failures.push(format!("{probe}: {status} {body}")),
                            Err(e) => failures.push(format!("{probe}: {status}, body: {e}")),
                        }
                    }
                    Err(e) => failures.push(format!("{probe}: {e}")),
                }
            }
            failures
        });
    }
    let mut failures = Vec::new();
    while let Some(result) = clients.join_next().await {
        failures.extend(result.expect("a client"));
    }
    assert!(
        failures.is_empty(),
        "{} of {} preview requests failed, e.g. {:?}",
        failures.len(),
        CLIENTS * REQUESTS,
        &failures[..failures.len().min(5)]
    );
}

/// A `DOWNLOAD_MB` MiB download, compared byte for byte as it arrives, while `BESIDE`
/// clients send small requests until it is done.
async fn download_beside_small_requests(s: &Session) {
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut small = tokio::task::JoinSet::new();
    for client in 0..BESIDE {
        let mut sender = s.connect().await;
        let request = {
            let host = s.host();
            let token = s.token.clone();
            move |n: usize| {
                Request::get("/headers")
                    .header("host", &host)
                    .header("x-flint-token", &token)
                    .header("x-probe", format!("beside-{client}-{n}"))
                    .body(Full::new(Bytes::new()))
                    .expect("request")
            }
        };
        let done = done.clone();
        small.spawn(async move {
            let mut answered = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) || answered == 0 {
                sender.ready().await.expect("a small request's connection");
                let response = sender.send_request(request(answered)).await.expect("response");
                assert_eq!(response.status(), StatusCode::OK, "a small request beside");
                let body = response.into_body().collect().await.expect("body").to_bytes();
                assert!(
                    String::from_utf8_lossy(&body).contains(&format!("beside-{client}-{answered}")),
                    "a small request got another's answer"
                );
                answered += 1;
            }
            answered
        });
    }

    let mut sender = s.connect().await;
    let response = sender
        .send_request(s.request("GET", &format!("/pattern?mb={DOWNLOAD_MB}"), Bytes::new()))
        .await
        .expect("the download's response");
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let mut received = 0usize;
    let mut mib = pattern_mib(0);
    while let Some(frame) = body.frame().await {
        let frame = frame.expect("the download broke off");
        let Some(data) = frame.data_ref() else { continue };
        for chunk_start in (0..data.len()).step_by(1 << 16) {
            let chunk = &data[chunk_start..data.len().min(chunk_start + (1 << 16))];
            let mut at = 0;
            while at < chunk.len() {
                let index = received >> 20;
                let within = received & ((1 << 20) - 1);
                if within == 0 && index > 0 {
                    mib = pattern_mib(index);
                }
                let n = (chunk.len() - at).min((1 << 20) - within);
                assert!(
                    chunk[at..at + n] == mib[within..within + n],
                    "the download differs within bytes {received}..{}",
                    received + n
                );
                received += n;
                at += n;
            }
        }
    }
    assert_eq!(received, DOWNLOAD_MB << 20, "the download arrived short");
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut answered = 0;
    while let Some(result) = small.join_next().await {
        answered += result.expect("small requests beside the download");
    }
    eprintln!("{answered} small requests were answered beside the download");
}

/// `ABORTED` requests given up mid-body, as browsers do when a tab closes or a reload
/// cancels: half are downloads dropped after their first bytes, half are uploads whose
/// sender goes away mid-body.
async fn abort_requests(s: &Session) {
    let semaphore = std::sync::Arc::new(tokio::sync::Semaphore::new(ABORTING_AT_ONCE));
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..ABORTED {
        let permit = semaphore.clone().acquire_owned().await.expect("semaphore");
        let addr = s.server.addr;
        let host = s.host();
        let token = s.token.clone();
        tasks.spawn(async move {
            let _permit = permit;
            let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
            if n % 2 == 0 {
                let head = format!(
                    "GET /big?mb=64 HTTP/1.1\r\nhost: {host}\r\nx-flint-token: {token}\r\n\r\n"
                );
                stream.write_all(head.as_bytes()).await.expect("send");
                // Read until the body has begun, then go away. An answer other than 200
                // (the app, flooded with threads, may fail one: Flint then answers 5xx) is
                // whole once its head is in, and its connection stays open for the next.
                let mut head = Vec::new();
                let mut buf = vec![0u8; 1 << 16];
                while head.len() < 128 << 10 {
                    let read = tokio::io::AsyncReadExt::read(&mut stream, &mut buf);
                    match tokio::time::timeout(ANSWER_WITHIN, read).await {
                        Ok(Ok(0) | Err(_)) => break,
                        Ok(Ok(read)) => head.extend_from_slice(&buf[..read]),
                        Err(_) => panic!(
                            "aborted request {n} got nothing for {ANSWER_WITHIN:?} after {:?}",
                            String::from_utf8_lossy(&head[..head.len().min(300)])
                        ),
                    }
                    if !head.starts_with(b"HTTP/1.1 200")
                        && head.windows(4).any(|w| w == b"\r\n\r\n")
                    {
                        break;
                    }
                }
            } else {
                let head = format!(
                    "POST /hash HTTP/1.1\r\nhost: {host}\r\nx-flint-token: {token}\r\n\
                     content-length: {}\r\n\r\n",
                    8 << 20
                );
                stream.write_all(head.as_bytes()).await.expect("send");
                // Flint may answer before it reads the body (a 503 when the session's
                // preview connections stay busy): then the rest is never read, as for a
                // browser, which gives up on the upload.
                let part = vec![7u8; 256 << 10];
                let upload = stream.write_all(&part);
                let _ = tokio::time::timeout(ANSWER_WITHIN, upload).await;
            }
            // Dropped with the rest unread or unsent, like a closed tab.
            drop(stream);
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.expect("an aborting client");
    }
}

/// 100 MB written to the terminal reach a viewer that reads them whole (each frame's offset
/// where the one before ended), and a key typed mid-flood is echoed within
/// [`ECHO_BOUND`] of being sent.
async fn flood(ws: &mut Ws) {
    use futures_util::StreamExt as _;
    use tokio_tungstenite::tungstenite::Message;
    const FLOOD_BYTES: u64 = 100_000_000;
    const KEY: &str = "zq7x";
    const ECHO_BOUND: Duration = Duration::from_secs(5);
    ws_type(ws, &format!("yes flint-flood-line | head -c {FLOOD_BYTES}; echo flo''od-over\r"))
        .await;
    let mut next: Option<u64> = None;
    let mut first = None;
    let mut tail: Vec<u8> = Vec::new();
    let mut typed: Option<Instant> = None;
    let mut echoed = None;
    let read = async {
        loop {
            let data = match ws.next().await {
                Some(Ok(Message::Binary(data))) => data,
                Some(Ok(_)) => continue,
                other => panic!("the terminal websocket ended mid-flood: {other:?}"),
            };
            let (offset, output) = data.split_at(proto::api::OUTPUT_OFFSET_BYTES);
            let offset = u64::from_be_bytes(offset.try_into().expect("an 8-byte offset"));
            if let Some(next) = next {
                assert_eq!(offset, next, "the output skipped from {next} to {offset}");
            }
            next = Some(offset + output.len() as u64);
            let start = *first.get_or_insert(offset);
            tail.extend_from_slice(output);
            let seen = |needle: &str, tail: &[u8]| {
                tail.windows(needle.len()).any(|w| w == needle.as_bytes())
            };
            if typed.is_none() && offset - start > FLOOD_BYTES / 4 {
                ws_type(ws, KEY).await;
                typed = Some(Instant::now());
            }
            if echoed.is_none() && typed.is_some() && seen(KEY, &tail) {
                echoed = typed.map(|t| t.elapsed());
            }
            if seen("flood-over", &tail) {
                return offset - start;
            }
            let keep = tail.len().saturating_sub(16);
            tail.drain(..keep);
        }
    };
    let written = tokio::time::timeout(Duration::from_secs(300), read)
        .await
        .expect("the flood did not end within 300 s");
    assert!(written >= FLOOD_BYTES, "the viewer read {written} bytes of {FLOOD_BYTES}");
    let echoed = echoed.expect("the key typed mid-flood was never echoed");
    eprintln!("a key typed mid-flood was echoed after {echoed:?}");
    assert!(echoed <= ECHO_BOUND, "a key typed mid-flood was echoed only after {echoed:?}");
    // The key waits in the line; clear it.
    ws_type(ws, "\x15").await;
}

/// The longest one step may take: a step that hangs fails, named, instead of the suite.
const STEP_LIMIT: Duration = Duration::from_secs(240);

/// Runs one step of the test with [`STEP_LIMIT`] and says how long it took.
async fn step<T>(what: &str, work: impl std::future::Future<Output = T>) -> T {
    let started = Instant::now();
    match tokio::time::timeout(STEP_LIMIT, work).await {
        Ok(result) => {
            eprintln!("{what}: {:?}", started.elapsed());
            result
        }
        Err(_) => panic!("{what} did not finish within {STEP_LIMIT:?}"),
    }
}

#[tokio::test]
async fn previews_on_gvisor_answer_under_load_survive_aborts_and_the_agent_link_heals() {
    let s = Session::start().await;

    step("64 clients x 50 requests", load(&s)).await;
    step("a download beside small requests", download_beside_small_requests(&s)).await;

    // A person's terminal stays attached through what follows: it streams over the agent's
    // connection, so it would end with it.
    let json = [("authorization", s.bearer.as_str()), ("content-type", "application/json")];
    let terminal =
        s.server.request("POST", &format!("/api/sessions/{}/terminals", s.id), &json, "{}").await;
    let terminal = terminal.json()["id"].as_str().expect("terminal id").to_owned();
    let origin = s.server.origin();
    let headers = [("authorization", s.bearer.as_str()), ("origin", origin.as_str())];
    let path = format!("/api/sessions/{}/terminals/{terminal}/ws", s.id);
    let mut ws = s.server.ws(&path, &headers).await.expect("websocket");
    ws_read_until(&mut ws, "\x1b]133;B").await;

    step("2,000 aborted requests", abort_requests(&s)).await;
    // The agent's connection is still the one that answers: previews, commands, terminals.
    ws_type(&mut ws, "echo after-''aborts\r").await;
    ws_read_until(&mut ws, "after-aborts").await;
    let (status, body) = s.get("/headers", &[("x-probe", "after-aborts")]).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    step("100 MB to a terminal", flood(&mut ws)).await;
    let (code, out, err) = s.sh("echo still-here").await;
    assert_eq!((code, out.as_str()), (0, "still-here\n"), "{err}");
    assert_eq!(s.record().await["state"], "running");
    step("64 clients x 50 requests, again", load(&s)).await;

    // The agent stops answering (stopped from inside its own sandbox for 25 s): the session
    // says `degraded` with the reason while it does not answer, and `running` again once the
    // server reconnected, with nothing asked of anyone.
    let find_agent = "for p in /proc/[0-9]*; do \
                      if tr '\\0' ' ' < $p/cmdline 2>/dev/null | grep -q '^/opt/flint/guest-agent serve'; \
                      then echo ${p#/proc/}; fi; done";
    let (code, agent, err) = s.sh(find_agent).await;
    let agent = agent.trim().to_owned();
    assert!(code == 0 && agent.parse::<u32>().is_ok(), "the agent's pid: {agent:?} {err}");
    // The stopper waits a second first: this very command's answer must leave the agent
    // before it stops (the 25 s are the outage being tested, not a wait for anything).
    let (code, _, err) = s
        .sh(&format!(
            "setsid -f sh -c 'sleep 1; kill -STOP {agent}; sleep 25; kill -CONT {agent}' \
             >/dev/null 2>&1"
        ))
        .await;
    assert_eq!(code, 0, "{err}");

    let started = Instant::now();
    let degraded = s.state_turns("running", "degraded", started, Duration::from_secs(25)).await;
    let reason = degraded["reason"].as_str().unwrap_or_default().to_owned();
    assert!(reason.contains("agent does not answer"), "{degraded}");
    eprintln!("degraded after {:?}: {reason}", started.elapsed());
    // Meanwhile a command is told why, at once, not after a long wait.
    let body = serde_json::json!({ "argv": ["true"], "env": {} }).to_string();
    let asked = Instant::now();
    let reply = s
        .server
        .request(
            "POST",
            &format!("/api/sessions/{}/exec", s.id),
            &[("authorization", &s.bearer), ("content-type", "application/json")],
            &body,
        )
        .await;
    if reply.status != StatusCode::OK {
        reply.assert_error(StatusCode::SERVICE_UNAVAILABLE);
        assert!(reply.body.contains("degraded"), "{}", reply.body);
        assert!(asked.elapsed() < Duration::from_secs(10), "took {:?}", asked.elapsed());
    }

    let healed = s.state_turns("degraded", "running", started, Duration::from_secs(60)).await;
    assert!(healed["reason"].is_null(), "{healed}");
    eprintln!("running again after {:?}", started.elapsed());
    let (code, out, err) = s.sh("echo healed").await;
    assert_eq!((code, out.as_str()), (0, "healed\n"), "{err}");
    let (status, _) = s.get("/headers", &[]).await;
    assert_eq!(status, StatusCode::OK);
    // Ports are followed again on the new connection.
    s.sh("cd /workspace && setsid -f python3 app.py 8003 >/dev/null 2>&1").await;
    let ports = s
        .server
        .poll_get(
            &format!("/api/sessions/{}/ports", s.id),
            &[("authorization", &s.bearer)],
            "port 8003 after the reconnect",
            |reply| reply.body.contains("8003"),
        )
        .await;
    assert!(ports.body.contains("8003"), "{}", ports.body);
}
