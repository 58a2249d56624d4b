//! The shared browser through the server: the Browser panel's websocket (frames, tabs, who
//! drives, a person's input), the REST routes, and the DevTools port kept out of reach.
//! Real Chromium in a real sandbox (the default image has it).

use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use http::StatusCode;
use proto::browser::{BrowserServerMessage, DriverKind, TabInfo, WsFrameHeader};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::common::{TestServer, Ws};
use crate::support;

/// A form, a big button at the top left (clicked by coordinates), and an input whose value
/// goes into the title, so what a person did reads back from the tab list.
const FORM: &str = r#"<!doctype html><html><head><title>Form</title></head>
<body style="margin:0;font-family:sans-serif">
<button id="big" style="position:fixed;left:0;top:0;width:300px;height:120px"
  onclick="document.title='big clicked'">Big</button>
<input id="name" style="position:fixed;left:0;top:200px;width:300px;height:40px"
  oninput="document.title='typed '+this.value">
<a id="next" href="/next.html" style="position:fixed;left:0;top:300px">next</a>
</body></html>"#;

/// A page that repaints every animation frame.
const ANIMATED: &str = r#"<!doctype html><html><head><title>Spin</title></head>
<body style="margin:0"><div id="box" style="width:100vw;height:100vh"></div><script>
let n = 0;
function tick() { n++; document.getElementById('box').style.background =
  'hsl(' + (n * 7 % 360) + ',80%,50%)'; requestAnimationFrame(tick); }
requestAnimationFrame(tick);
</script></body></html>"#;

struct Fixture {
    server: TestServer,
    _dir: tempfile::TempDir,
    bearer: String,
    id: String,
}

impl Fixture {
    async fn new() -> Fixture {
        support::build_image("default");
        let dir = tempfile::tempdir().expect("tempdir");
        let server = TestServer::start(dir.path());
        let bearer = server.bearer().await;
        let body = r#"{"image":"default","network":false,"memory_mb":2048,"cpus":2}"#;
        let id = server.running_session(&bearer, body).await;
        let f = Fixture { server, _dir: dir, bearer, id };
        for (name, page) in [("form.html", FORM), ("spin.html", ANIMATED)] {
            let path = format!("/api/sessions/{}/files/content?path=/workspace/{name}", f.id);
            let put = f.server.request("PUT", &path, &[("authorization", &f.bearer)], page).await;
            assert!(put.status.is_success(), "{}", put.body);
        }
        let next = "<!doctype html><title>Next page</title><p>here";
        let path = format!("/api/sessions/{}/files/content?path=/workspace/next.html", f.id);
        f.server.request("PUT", &path, &[("authorization", &f.bearer)], next).await;
        let (code, _, err) = f
            .server
            .sh(
                &f.bearer,
                &f.id,
                "cd /workspace && setsid -f python3 -m http.server 8123 >/dev/null 2>&1; \
                 for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/8123) 2>/dev/null && exit 0; \
                 sleep 0.1; done; exit 1",
            )
            .await;
        assert_eq!(code, 0, "http.server did not start: {err}");
        f
    }

    async fn viewer(&self) -> Viewer {
        Viewer::open(&self.server, &self.bearer, &self.id).await
    }

    async fn get(&self, path: &str) -> crate::common::Reply {
        self.server
            .get(&format!("/api/sessions/{}{path}", self.id), &[("authorization", &self.bearer)])
            .await
    }
}

/// One Browser panel's socket, and what it has seen.
pub(crate) struct Viewer {
    ws: Ws,
    pub(crate) frames: u64,
    last_frame: Option<WsFrameHeader>,
    pub(crate) state: Option<BrowserServerMessage>,
}

impl Viewer {
    /// A person's Browser panel on `session`.
    pub(crate) async fn open(server: &TestServer, bearer: &str, session: &str) -> Viewer {
        let origin = server.origin();
        let path = format!("/api/sessions/{session}/browser/ws?quality=50");
        let ws = server
            .ws(&path, &[("authorization", bearer), ("origin", &origin)])
            .await
            .expect("browser websocket");
        Viewer { ws, frames: 0, last_frame: None, state: None }
    }

    async fn send(&mut self, message: Value) {
        self.ws.send(Message::Text(message.to_string().into())).await.expect("send");
    }

    /// Reads one message; errors from the server fail the test.
    pub(crate) async fn read(&mut self) {
        let message = self.ws.next().await.expect("socket open").expect("a message");
        match message {
            Message::Binary(bytes) => {
                let (header, jpeg) = WsFrameHeader::decode(&bytes).expect("a frame header");
                assert_eq!(&jpeg[..2], &[0xff, 0xd8], "frames are JPEG");
                self.frames += 1;
                self.last_frame = Some(header);
            }
            Message::Text(text) => {
                let message: BrowserServerMessage = serde_json::from_str(&text).expect("message");
                if let BrowserServerMessage::Error { message } = &message {
                    panic!("the server said: {message}");
                }
                if matches!(message, BrowserServerMessage::State { .. }) {
                    self.state = Some(message);
                }
            }
            _ => {}
        }
    }

    /// Reads until the server reports an error (frames and states pass by); its message.
    async fn next_error(&mut self) -> String {
        loop {
            let message = self.ws.next().await.expect("open").expect("message");
            if let Message::Text(text) = message
                && let Ok(BrowserServerMessage::Error { message }) = serde_json::from_str(&text)
            {
                return message;
            }
        }
    }

    /// Reads until the state's active tab has `title` (60 s: the first page starts Chromium).
    pub(crate) async fn until_title(&mut self, title: &str) {
        self.until(title, |tab| tab.title == title).await;
    }

    /// Reads until the state's active tab is at a URL ending in `end`.
    async fn until_url(&mut self, end: &str) {
        self.until(end, |tab| tab.url.ends_with(end)).await;
    }

    async fn until(&mut self, what: &str, done: impl Fn(&TabInfo) -> bool) {
        // Chromium under gVisor's ptrace platform starts slowly.
        let deadline = Instant::now() + Duration::from_secs(180);
        while !self.active().is_some_and(&done) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no tab showing {what:?}; last state {:?}", self.state);
            let _ = tokio::time::timeout(left, self.read()).await;
        }
    }

    fn active(&self) -> Option<&TabInfo> {
        let Some(BrowserServerMessage::State { tabs, active, .. }) = &self.state else {
            return None;
        };
        tabs.iter().find(|t| Some(t.id) == *active)
    }

    /// Frames received in `window` (reading everything meanwhile).
    async fn frames_in(&mut self, window: Duration) -> u64 {
        let start = self.frames;
        let deadline = Instant::now() + window;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let _ = tokio::time::timeout(left, self.read()).await;
        }
        self.frames - start
    }
}

#[tokio::test]
async fn a_person_watches_and_drives_the_shared_browser_over_the_websocket() {
    let f = Fixture::new().await;
    // Nothing runs until someone looks.
    let status = f.get("/browser").await;
    assert_eq!(status.status, StatusCode::OK, "{}", status.body);
    assert_eq!(status.json()["running"], false, "{}", status.body);

    let mut viewer = f.viewer().await;
    viewer.send(json!({"type": "navigate", "url": "127.0.0.1:8123/form.html"})).await;
    viewer.until_title("Form").await;
    // The page is on the frames, at the viewport's size.
    while viewer.last_frame.is_none() {
        viewer.read().await;
    }
    let frame = viewer.last_frame.expect("a frame");
    assert_eq!((frame.width, frame.height), (1280, 800), "{frame:?}");

    // A click by coordinates on the big button; then typing into the input.
    viewer.send(json!({"type": "input", "event": {"type": "click", "x": 150, "y": 60}})).await;
    viewer.until_title("big clicked").await;
    viewer.send(json!({"type": "input", "event": {"type": "click", "x": 150, "y": 220}})).await;
    for key in ["h", "i"] {
        let down = json!({"type": "input", "event": {"type": "key_down", "key": key}});
        viewer.send(down).await;
        viewer.send(json!({"type": "input", "event": {"type": "key_up", "key": key}})).await;
    }
    viewer.send(json!({"type": "input", "event": {"type": "insert_text", "text": " there"}})).await;
    viewer.until_title("typed hi there").await;
    let Some(BrowserServerMessage::State { driver, .. }) = &viewer.state else { unreachable!() };
    let driver = driver.as_ref().expect("someone drives");
    assert_eq!(driver.kind, DriverKind::Person, "{driver:?}");

    // A link clicked on the page navigates; history goes back.
    viewer.send(json!({"type": "input", "event": {"type": "click", "x": 10, "y": 305}})).await;
    viewer.until_title("Next page").await;
    viewer.send(json!({"type": "input", "event": {"type": "back"}})).await;
    viewer.until_url("/form.html").await;

    // Tabs: a new one becomes active, closing it returns to the first.
    viewer.send(json!({"type": "new_tab", "url": "http://127.0.0.1:8123/next.html"})).await;
    viewer.until_title("Next page").await;
    let Some(BrowserServerMessage::State { tabs, active, .. }) = viewer.state.clone() else {
        unreachable!()
    };
    assert_eq!(tabs.len(), 2, "{tabs:?}");
    viewer.send(json!({"type": "close_tab", "tab": active})).await;
    viewer.until_url("/form.html").await;

    // A URL that does not load is an error message; the socket stays usable.
    viewer.send(json!({"type": "navigate", "url": "http://127.0.0.1:1/"})).await;
    let error = viewer.next_error().await;
    assert!(error.contains("127.0.0.1:1"), "{error}");
    viewer.send(json!({"type": "teleport"})).await;
    let refused = viewer.next_error().await;
    assert!(refused.contains("not a browser message"), "{refused}");

    // REST: status, and a screenshot that decodes as a PNG of the viewport.
    let status = f.get("/browser").await.json();
    assert_eq!(status["running"], true, "{status}");
    let shot = f.get("/browser/screenshot").await;
    assert_eq!(shot.header("content-type"), Some("image/png"));
    let decoder = png::Decoder::new(std::io::Cursor::new(shot.bytes.clone()));
    let info = decoder.read_info().expect("a PNG");
    assert_eq!((info.info().width, info.info().height), (1280, 800));

    // The DevTools port is the sandbox's own: not a port to list, not a preview.
    let devtools = status["devtools_port"].as_u64().expect("devtools port");
    let ports = f.get("/ports").await.json();
    let listed: Vec<u64> = ports["listeners"]
        .as_array()
        .expect("listeners")
        .iter()
        .filter_map(|l| l["port"].as_u64())
        .collect();
    assert!(listed.contains(&8123) && !listed.contains(&devtools), "{ports}");
    let host = format!("{devtools}-{}.preview.localhost:{}", f.id, f.server.addr.port());
    let preview =
        f.server.get("/json/version", &[("host", &host), ("authorization", &f.bearer)]).await;
    assert!(!preview.status.is_success(), "DevTools through a preview: {}", preview.body);
    assert!(!preview.body.contains("webSocketDebuggerUrl"), "{}", preview.body);

    // A foreign origin never gets the socket.
    let path = format!("/api/sessions/{}/browser/ws", f.id);
    let foreign =
        f.server.ws(&path, &[("authorization", &f.bearer), ("origin", "http://evil.test")]).await;
    assert_eq!(foreign.err(), Some(StatusCode::FORBIDDEN));

    // Pages that never load hold what they use; a socket has at most a few loading, and
    // the next is answered at once.
    let (code, _, err) = f
        .server
        .sh(
            &f.bearer,
            &f.id,
            "setsid -f python3 -c 'import socket, time; s = socket.socket();              s.bind((\"127.0.0.1\", 8124)); s.listen(64); time.sleep(600)' >/dev/null 2>&1",
        )
        .await;
    assert_eq!(code, 0, "{err}");
    for n in 0..12 {
        let kind = if n % 2 == 0 { "navigate" } else { "new_tab" };
        viewer.send(json!({"type": kind, "url": format!("http://127.0.0.1:8124/{n}")})).await;
    }
    let refused = tokio::time::timeout(std::time::Duration::from_secs(10), viewer.next_error())
        .await
        .expect("an answer at once");
    assert!(refused.contains("loading already"), "{refused}");
}

#[tokio::test]
async fn a_viewer_that_stops_reading_does_not_slow_another() {
    let f = Fixture::new().await;
    let mut a = f.viewer().await;
    a.send(json!({"type": "navigate", "url": "http://127.0.0.1:8123/spin.html"})).await;
    a.until_title("Spin").await;
    let alone = a.frames_in(Duration::from_secs(3)).await;
    // B reads its first frames, then nothing more.
    let mut b = f.viewer().await;
    while b.frames < 2 {
        b.read().await;
    }
    let with_stalled = a.frames_in(Duration::from_secs(3)).await;
    println!("frames in 3 s: alone {alone}, next to a stalled viewer {with_stalled}");
    assert!(alone >= 10, "the animation gave only {alone} frames in 3 s");
    assert!(
        with_stalled * 2 >= alone,
        "a stalled viewer slowed the other: {with_stalled} frames against {alone} alone"
    );
    // B was not sent a growing queue: it reads a current frame promptly once it reads again.
    let before = b.frames;
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.frames < before + 3 {
        assert!(Instant::now() < deadline, "the stalled viewer did not resume");
        b.read().await;
    }
}
