//! The shared browser: the host's real Chromium (`/usr/bin/chromium`, or `FLINT_CHROMIUM`)
//! driven through the agent, against pages a local `python3 -m http.server` serves.

use std::future::Future;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use guest_agent::Error;
use proto::browser::{
    Click, InputEvent, Modifiers, Navigate, NewTab, PageText, ScreencastEvent, ScreencastFrame,
    ScreencastQuery, TabId, TypeText, Viewport,
};
use proto::error::ErrorCode;

use crate::common::*;

const INDEX: &str = r#"<!doctype html>
<html><head><title>Flint test page</title>
<style>
  body { margin: 0; font: 16px sans-serif; }
  #name { position: absolute; left: 100px; top: 100px; width: 300px; height: 30px; }
  #go { position: absolute; left: 100px; top: 200px; width: 200px; height: 60px; }
  #out { position: absolute; left: 100px; top: 300px; }
  #echo { position: absolute; left: 100px; top: 350px; }
</style></head>
<body>
<input id="name" value="">
<button id="go">Go</button>
<p id="out">not clicked</p>
<p id="echo"></p>
<script>
  let clicks = 0;
  document.getElementById('go').addEventListener('click', () => {
    clicks += 1;
    document.getElementById('out').textContent = 'clicked ' + clicks + ' times';
  });
  document.getElementById('name').addEventListener('input', (e) => {
    document.getElementById('echo').textContent = 'typed [' + e.target.value + ']';
  });
  console.log('page ready', 42);
  console.error('something failed');
</script>
</body></html>
"#;

/// Block noise redrawn on every animation frame: a stream of large, poorly compressible
/// screencast frames.
const NOISE: &str = r#"<!doctype html>
<html><head><title>Noise</title>
<style>body { margin: 0; } canvas { width: 100vw; height: 100vh; image-rendering: pixelated; }</style>
</head><body>
<canvas id="c" width="320" height="200"></canvas>
<p>noise page</p>
<script>
  const c = document.getElementById('c').getContext('2d');
  const image = c.createImageData(320, 200);
  function draw() {
    for (let i = 0; i < image.data.length; i += 4) {
      image.data[i] = Math.random() * 256;
      image.data[i + 1] = Math.random() * 256;
      image.data[i + 2] = Math.random() * 256;
      image.data[i + 3] = 255;
    }
    c.putImageData(image, 0, 0);
    requestAnimationFrame(draw);
  }
  draw();
</script>
</body></html>
"#;

/// `python3 -m http.server` on a free loopback port, serving the test pages; killed on drop.
struct Pages {
    child: Child,
    _dir: tempfile::TempDir,
    port: u16,
}

impl Pages {
    async fn serve() -> Pages {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("index.html"), INDEX).expect("write index");
        std::fs::write(dir.path().join("noise.html"), NOISE).expect("write noise");
        let port = free_port();
        let child = Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1"])
            .arg(port.to_string())
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start python3 -m http.server");
        let pages = Pages { child, _dir: dir, port };
        wait_until("the page server listens", || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()
        })
        .await;
        pages
    }

    fn url(&self, page: &str) -> String {
        format!("http://127.0.0.1:{}/{page}", self.port)
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a probe");
    probe.local_addr().expect("probe address").port()
}

/// Polls `check` until it holds, failing the test after [`DEADLINE`].
async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < DEADLINE, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Polls the active tab's text until it contains `needle`.
async fn wait_for_text(agent: &TestAgent, needle: &str) -> PageText {
    let start = Instant::now();
    loop {
        let text = agent.client.browser_text().await.expect("text");
        if text.text.contains(needle) {
            return text;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "the page never showed {needle:?}; it shows {:?}",
            text.text
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn navigate(agent: &TestAgent, url: &str) -> proto::browser::PageInfo {
    let request = Navigate { url: url.to_owned(), wait_ms: None };
    agent.client.browser_navigate(&request).await.expect("navigate")
}

fn api_code<T: std::fmt::Debug>(result: Result<T, Error>) -> (ErrorCode, String) {
    match result {
        Err(Error::Api { code, message }) => (code, message),
        other => panic!("expected an api error, got {other:?}"),
    }
}

/// Width and height from a JPEG's start-of-frame segment.
fn jpeg_size(jpeg: &[u8]) -> Option<(u16, u16)> {
    let mut at = 2;
    while at + 9 < jpeg.len() {
        if jpeg[at] != 0xff {
            return None;
        }
        let marker = jpeg[at + 1];
        let length = usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
        if matches!(marker, 0xc0..=0xc3) {
            let height = u16::from_be_bytes([jpeg[at + 5], jpeg[at + 6]]);
            let width = u16::from_be_bytes([jpeg[at + 7], jpeg[at + 8]]);
            return Some((width, height));
        }
        at += 2 + length;
    }
    None
}

fn png_size(png: &[u8]) -> (u32, u32) {
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    let reader = decoder.read_info().expect("the screenshot decodes as a png");
    let info = reader.info();
    (info.width, info.height)
}

async fn next_frame(
    stream: &mut guest_agent::client::FrameStream<ScreencastEvent>,
) -> ScreencastFrame {
    match tokio::time::timeout(DEADLINE, stream.next()).await {
        Ok(Ok(Some(ScreencastEvent::Frame(frame)))) => frame,
        Ok(other) => panic!("expected a screencast frame, got {other:?}"),
        Err(_) => panic!("no screencast frame within {DEADLINE:?}"),
    }
}

fn check_jpeg(frame: &ScreencastFrame) {
    let jpeg = &frame.jpeg;
    assert!(jpeg.starts_with(&[0xff, 0xd8, 0xff]), "frame {} is not a jpeg", frame.seq);
    assert!(jpeg.ends_with(&[0xff, 0xd9]), "frame {} is a truncated jpeg", frame.seq);
}

#[tokio::test]
async fn navigate_reads_title_url_text_and_console_and_starts_chromium_once() {
    let pages = Pages::serve().await;
    let agent = TestAgent::start().await;
    let status = agent.client.browser_status().await.expect("status");
    assert!(!status.running, "status alone does not start the browser");
    assert_eq!(status.devtools_port, None);

    let url = pages.url("index.html");
    let page = navigate(&agent, &url).await;
    assert_eq!(page.title, "Flint test page");
    assert_eq!(page.url, url);

    let status = agent.client.browser_status().await.expect("status");
    assert!(status.running);
    assert!(status.devtools_port.is_some());
    assert_eq!(status.active, Some(page.tab));
    assert_eq!(status.tabs.len(), 1, "{:?}", status.tabs);
    assert_eq!(status.tabs[0].url, url);

    let text = agent.client.browser_text().await.expect("text");
    assert_eq!(
        (text.tab, text.url.as_str(), text.title.as_str()),
        (page.tab, url.as_str(), "Flint test page")
    );
    assert!(text.text.contains("not clicked"), "{:?}", text.text);
    assert!(!text.truncated);

    wait_until("the console holds the page's messages", || async {
        let log = agent.client.browser_console(None).await.expect("console");
        log.messages.iter().any(|m| m.level == "log" && m.text == "page ready 42")
            && log.messages.iter().any(|m| m.level == "error" && m.text == "something failed")
    })
    .await;
    let log = agent.client.browser_console(None).await.expect("console");
    let last = log.messages.last().expect("a message").seq;
    assert!(log.messages.iter().all(|m| m.tab == page.tab && m.at_ms > 0));
    assert!(agent.client.browser_console(Some(last)).await.expect("console").messages.is_empty());

    // A port nothing listens on: the navigation fails with the browser's reason.
    let closed = format!("http://127.0.0.1:{}/", free_port());
    let request = Navigate { url: closed, wait_ms: Some(10_000) };
    let (code, message) = api_code(agent.client.browser_navigate(&request).await);
    assert_eq!(code, ErrorCode::NavigationFailed, "{message}");
    assert!(message.contains("ERR_CONNECTION_REFUSED"), "{message}");

    // One browser per agent: the same DevTools port after all of that.
    let again = agent.client.browser_status().await.expect("status");
    assert_eq!(again.devtools_port, status.devtools_port);
}

#[tokio::test]
async fn clicks_by_point_and_by_selector_reach_the_page() {
    let pages = Pages::serve().await;
    let agent = TestAgent::start().await;
    navigate(&agent, &pages.url("index.html")).await;

    // The button spans 100..300 x 200..260.
    let at_point = Click { x: Some(200.0), y: Some(230.0), ..Click::default() };
    agent.client.browser_click(&at_point).await.expect("click a point");
    wait_for_text(&agent, "clicked 1 times").await;

    let by_selector = Click { selector: Some("#go".to_owned()), ..Click::default() };
    agent.client.browser_click(&by_selector).await.expect("click a selector");
    wait_for_text(&agent, "clicked 2 times").await;

    // A point off the button changes nothing.
    let beside = Click { x: Some(500.0), y: Some(230.0), ..Click::default() };
    agent.client.browser_click(&beside).await.expect("click beside");
    let text = agent.client.browser_text().await.expect("text");
    assert!(text.text.contains("clicked 2 times"), "{:?}", text.text);

    let missing = Click { selector: Some("#nope".to_owned()), ..Click::default() };
    let (code, message) = api_code(agent.client.browser_click(&missing).await);
    assert_eq!(code, ErrorCode::NotFound, "{message}");
    let invalid = Click { selector: Some("##".to_owned()), ..Click::default() };
    let (code, message) = api_code(agent.client.browser_click(&invalid).await);
    assert_eq!(code, ErrorCode::BadRequest, "{message}");
    let (code, _) = api_code(agent.client.browser_click(&Click::default()).await);
    assert_eq!(code, ErrorCode::BadRequest);
}

#[tokio::test]
async fn typing_reaches_the_input_through_selectors_focus_and_keys() {
    let pages = Pages::serve().await;
    let agent = TestAgent::start().await;
    navigate(&agent, &pages.url("index.html")).await;

    let into_name = TypeText { selector: Some("#name".to_owned()), text: "hello".to_owned() };
    agent.client.browser_type(&into_name).await.expect("type into a selector");
    wait_for_text(&agent, "typed [hello]").await;

    // The input kept the focus: text without a selector goes after what it holds.
    let more = TypeText { selector: None, text: " world".to_owned() };
    agent.client.browser_type(&more).await.expect("type into the focused element");
    wait_for_text(&agent, "typed [hello world]").await;

    // Key events as a viewer replays them: Backspace deletes, a key with text types it.
    let key = |key: &str| InputEvent::KeyDown {
        key: key.to_owned(),
        code: None,
        text: None,
        key_code: None,
        modifiers: Modifiers::default(),
    };
    let up = |key: &str| InputEvent::KeyUp {
        key: key.to_owned(),
        code: None,
        key_code: None,
        modifiers: Modifiers::default(),
    };
    for name in ["Backspace", "Backspace", "Backspace", "Backspace", "Backspace", "!"] {
        agent.client.browser_input(&key(name)).await.expect("key down");
        agent.client.browser_input(&up(name)).await.expect("key up");
    }
    wait_for_text(&agent, "typed [hello !]").await;
    let insert = InputEvent::InsertText { text: "ünïcode".to_owned() };
    agent.client.browser_input(&insert).await.expect("insert text");
    wait_for_text(&agent, "typed [hello !ünïcode]").await;
}

#[tokio::test]
async fn screenshots_are_pngs_of_the_viewport_and_follow_a_resize() {
    let pages = Pages::serve().await;
    let agent = TestAgent::start().await;
    navigate(&agent, &pages.url("index.html")).await;
    let viewport = agent.client.browser_status().await.expect("status").viewport;
    assert_eq!(viewport, Viewport::DEFAULT);

    let png = agent.client.browser_screenshot().await.expect("screenshot");
    assert_eq!(png_size(&png), (viewport.width, viewport.height));

    let resize = InputEvent::Resize { width: 640, height: 480 };
    agent.client.browser_input(&resize).await.expect("resize");
    let png = agent.client.browser_screenshot().await.expect("screenshot");
    assert_eq!(png_size(&png), (640, 480));
    let status = agent.client.browser_status().await.expect("status");
    assert_eq!(status.viewport, Viewport { width: 640, height: 480 });

    let too_small = InputEvent::Resize { width: 10, height: 480 };
    let (code, _) = api_code(agent.client.browser_input(&too_small).await);
    assert_eq!(code, ErrorCode::BadRequest);
}

#[tokio::test]
async fn every_viewer_gets_frames_and_a_stalled_one_starves_no_other() {
    let pages = Pages::serve().await;
    let agent = TestAgent::start().await;
    navigate(&agent, &pages.url("noise.html")).await;
    let viewport = agent.client.browser_status().await.expect("status").viewport;

    let query = ScreencastQuery { quality: Some(80), max_width: Some(640), max_height: None };
    let mut stalled = agent.client.browser_screencast(&query).await.expect("viewer one");
    let mut reading = agent.client.browser_screencast(&query).await.expect("viewer two");

    // Both viewers get frames of the active tab.
    let first = next_frame(&mut stalled).await;
    let other = next_frame(&mut reading).await;
    for frame in [&first, &other] {
        check_jpeg(frame);
        assert_eq!((frame.width, frame.height), (viewport.width, viewport.height));
        let (width, height) = jpeg_size(&frame.jpeg).expect("a jpeg frame header");
        assert!((600..=640).contains(&width), "scaled to max_width: {width}x{height}");
        assert!(frame.timestamp_ms > 0);
    }
    assert!(first.jpeg.len() > 20_000, "noise frames are large: {} bytes", first.jpeg.len());

    // `stalled` stops reading. Its stream fills its flow-control window within a few of
    // these frames; `reading` must keep getting new ones regardless.
    let window_frames = (2 << 20) / first.jpeg.len() + 4;
    let mut last = other.seq;
    let mut received = 0;
    while received < 3 * window_frames + 20 {
        let frame = next_frame(&mut reading).await;
        assert!(frame.seq > last, "frames come newest-first, in order");
        check_jpeg(&frame);
        last = frame.seq;
        received += 1;
    }

    // When the stalled viewer reads again it drains what its window held and then jumps to
    // the newest frame: it got far fewer frames than were made meanwhile (no queue grew).
    let mut seen = 1u64;
    let mut previous = first.seq;
    loop {
        let frame = next_frame(&mut stalled).await;
        assert!(frame.seq > previous);
        previous = frame.seq;
        seen += 1;
        if frame.seq >= last {
            break;
        }
        assert!(seen < 10_000, "the stalled viewer never caught up");
    }
    let made = previous - first.seq + 1;
    assert!(
        seen * 2 < made,
        "a stalled viewer must skip frames: it got {seen} of the {made} made meanwhile"
    );
}

#[tokio::test]
async fn the_screencast_follows_the_active_tab() {
    let pages = Pages::serve().await;
    let agent = TestAgent::start().await;
    let first = navigate(&agent, &pages.url("index.html")).await;
    let mut viewer =
        agent.client.browser_screencast(&ScreencastQuery::default()).await.expect("viewer");
    let frame = next_frame(&mut viewer).await;
    assert_eq!(frame.tab, first.tab);
    check_jpeg(&frame);

    // The tab loads another site (a new renderer process): frames keep coming.
    let other_site = pages.url("noise.html").replace("127.0.0.1", "localhost");
    navigate(&agent, &other_site).await;
    frames_of(&mut viewer, first.tab, 10).await;

    let second = NewTab { url: Some(pages.url("noise.html")) };
    let second = agent.client.browser_new_tab(&second).await.expect("new tab");
    frames_of(&mut viewer, second.id, 10).await;

    agent.client.browser_activate_tab(first.tab).await.expect("activate");
    frames_of(&mut viewer, first.tab, 10).await;
}

/// Reads until `count` frames of `tab` came (frames of the tab before may come first).
async fn frames_of(
    viewer: &mut guest_agent::client::FrameStream<ScreencastEvent>,
    tab: TabId,
    count: usize,
) {
    let start = Instant::now();
    let mut seen = 0;
    while seen < count {
        let frame = next_frame(viewer).await;
        if frame.tab == tab {
            check_jpeg(&frame);
            seen += 1;
        }
        assert!(start.elapsed() < DEADLINE, "only {seen} frames of tab {tab} came");
    }
}

#[tokio::test]
async fn tabs_open_list_switch_and_close() {
    let pages = Pages::serve().await;
    let agent = TestAgent::start().await;
    let first = navigate(&agent, &pages.url("index.html")).await;

    let opened = agent
        .client
        .browser_new_tab(&NewTab { url: Some(pages.url("noise.html")) })
        .await
        .expect("new tab");
    assert_ne!(opened.id, first.tab);
    assert!(opened.active);
    assert_eq!(opened.title, "Noise");

    let list = agent.client.browser_tabs().await.expect("tabs");
    assert_eq!(list.tabs.len(), 2, "{list:?}");
    assert_eq!(list.active, Some(opened.id));
    let titles: Vec<(TabId, &str, bool)> =
        list.tabs.iter().map(|t| (t.id, t.title.as_str(), t.active)).collect();
    assert_eq!(titles, [(first.tab, "Flint test page", false), (opened.id, "Noise", true)]);
    assert!(agent.client.browser_text().await.expect("text").text.contains("noise page"));

    let list = agent.client.browser_activate_tab(first.tab).await.expect("activate");
    assert_eq!(list.active, Some(first.tab));
    let text = agent.client.browser_text().await.expect("text");
    assert_eq!(text.tab, first.tab);
    assert!(text.text.contains("not clicked"));

    let list = agent.client.browser_close_tab(opened.id).await.expect("close");
    assert_eq!(list.tabs.iter().map(|t| t.id).collect::<Vec<_>>(), [first.tab]);
    assert_eq!(list.active, Some(first.tab));
    let (code, _) = api_code(agent.client.browser_close_tab(opened.id).await);
    assert_eq!(code, ErrorCode::NotFound);
    let (code, _) = api_code(agent.client.browser_activate_tab(TabId(999)).await);
    assert_eq!(code, ErrorCode::NotFound);

    // Closing the active tab hands activity to the one left; the closed one stays gone.
    let third = agent.client.browser_new_tab(&NewTab::default()).await.expect("new tab");
    let list = agent.client.browser_close_tab(third.id).await.expect("close");
    assert_eq!(list.active, Some(first.tab));
    wait_until("the browser forgets the closed tab", || async {
        agent.client.browser_tabs().await.expect("tabs").tabs.len() == 1
    })
    .await;
}

#[tokio::test]
async fn history_and_reload_replay_through_input() {
    let pages = Pages::serve().await;
    let agent = TestAgent::start().await;
    navigate(&agent, &pages.url("index.html")).await;
    navigate(&agent, &pages.url("noise.html")).await;

    agent.client.browser_input(&InputEvent::Back).await.expect("back");
    wait_for_text(&agent, "not clicked").await;
    agent.client.browser_input(&InputEvent::Forward).await.expect("forward");
    wait_for_text(&agent, "noise page").await;
    let (code, _) = api_code(agent.client.browser_input(&InputEvent::Forward).await);
    assert_eq!(code, ErrorCode::NotFound, "nothing to go forward to");

    agent.client.browser_input(&InputEvent::Back).await.expect("back");
    wait_for_text(&agent, "not clicked").await;
    agent
        .client
        .browser_click(&Click { selector: Some("#go".into()), ..Click::default() })
        .await
        .expect("click");
    wait_for_text(&agent, "clicked 1 times").await;
    agent.client.browser_input(&InputEvent::Reload).await.expect("reload");
    wait_for_text(&agent, "not clicked").await;
}

/// The listening sockets of `port` in `/proc/net/tcp{,6}`: (local address hex, state).
fn proc_listeners(port: u16) -> Vec<String> {
    let mut found = Vec::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(table) = std::fs::read_to_string(file) else { continue };
        for line in table.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state)) = (fields.get(1), fields.get(3)) else { continue };
            let Some((address, hex_port)) = local.rsplit_once(':') else { continue };
            if *state == "0A" && u16::from_str_radix(hex_port, 16) == Ok(port) {
                found.push(address.to_owned());
            }
        }
    }
    found
}

#[tokio::test]
async fn the_devtools_port_is_never_listed_and_never_tunnelled() {
    let agent = TestAgent::start().await;
    navigate(&agent, "about:blank").await;
    let port = agent
        .client
        .browser_status()
        .await
        .expect("status")
        .devtools_port
        .expect("a devtools port while the browser runs");

    // Chromium does listen there, on loopback only.
    let listeners = proc_listeners(port);
    assert!(!listeners.is_empty(), "nothing listens on the devtools port {port}");
    for address in &listeners {
        assert!(
            address == "0100007F" || address == "00000000000000000000000001000000",
            "devtools listens beyond loopback: {address}"
        );
    }

    // A port opened after Chromium's shows up, so the watcher has scanned since: the
    // DevTools port still does not.
    let witness = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a witness");
    let witness_port = witness.local_addr().expect("witness address").port();
    wait_until("the port watcher sees a newer port", || async {
        let list = agent.client.ports().await.expect("ports");
        list.listeners.iter().any(|l| l.port == witness_port)
    })
    .await;
    let list = agent.client.ports().await.expect("ports");
    assert!(list.listeners.iter().all(|l| l.port != port), "{port} is listed: {list:?}");
    let mut events = agent.client.port_events().await.expect("port events");
    match events.next().await.expect("a snapshot") {
        Some(proto::ports::PortEvent::Snapshot(listeners)) => {
            assert!(listeners.iter().all(|l| l.port != port), "{port} in the snapshot");
            assert!(listeners.iter().any(|l| l.port == witness_port));
        }
        other => panic!("expected a snapshot, got {other:?}"),
    }

    let (code, message) = api_code(agent.client.tunnel(port).await);
    assert_eq!(code, ErrorCode::PermissionDenied, "{message}");
    assert!(message.contains("devtools"), "{message}");
    // Other ports still tunnel.
    assert!(agent.client.tunnel(witness_port).await.is_ok());
}

#[tokio::test]
async fn without_chromium_the_browser_is_unavailable_and_the_agent_serves_on() {
    let missing = Path::new("/nonexistent/chromium");
    let agent =
        TestAgent::start_with_env(&[("FLINT_CHROMIUM", &missing.display().to_string())]).await;
    let (code, message) = api_code(
        agent
            .client
            .browser_navigate(&Navigate { url: "about:blank".to_owned(), wait_ms: None })
            .await,
    );
    assert_eq!(code, ErrorCode::BrowserUnavailable, "{message}");
    assert!(message.contains("FLINT_CHROMIUM"), "{message}");
    assert_eq!(ErrorCode::BrowserUnavailable.status(), 503);
    let (code, _) = api_code(agent.client.browser_screenshot().await);
    assert_eq!(code, ErrorCode::BrowserUnavailable);
    assert!(!agent.client.browser_status().await.expect("status").running);
    agent.client.info().await.expect("the agent still answers");
}

/// Direct children of `parent` named `name` (their `comm`).
fn children_named(parent: u32, name: &str) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let open = stat.find('(')?;
            let close = stat.rfind(')')?;
            let comm = &stat[open + 1..close];
            let ppid: u32 = stat[close + 1..].split_whitespace().nth(1)?.parse().ok()?;
            (ppid == parent && comm == name).then_some(pid)
        })
        .collect()
}

#[tokio::test]
async fn a_browser_that_died_starts_again_on_the_next_call() {
    let agent = TestAgent::start().await;
    navigate(&agent, "about:blank").await;
    let mut viewer =
        agent.client.browser_screencast(&ScreencastQuery::default()).await.expect("viewer");
    next_frame(&mut viewer).await;

    let chromium = children_named(agent.pid(), "chromium");
    assert_eq!(chromium.len(), 1, "one chromium per agent: {chromium:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(chromium[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill chromium");

    // Viewers are told, and the status says so.
    match tokio::time::timeout(DEADLINE, viewer.next()).await {
        Ok(Ok(Some(ScreencastEvent::Ended(reason)))) => assert!(reason.contains("closed")),
        Ok(Ok(Some(ScreencastEvent::Frame(_)))) => {
            // A frame sent before the kill may still be on its way; the end follows.
            let end = tokio::time::timeout(DEADLINE, viewer.next()).await;
            assert!(matches!(end, Ok(Ok(Some(ScreencastEvent::Ended(_))))), "{end:?}");
        }
        other => panic!("the viewer was not told the browser ended: {other:?}"),
    }
    wait_until("the agent sees the browser died", || async {
        !agent.client.browser_status().await.expect("status").running
    })
    .await;

    let page = navigate(&agent, "data:text/html,<title>again</title>").await;
    assert_eq!(page.title, "again");
    let status = agent.client.browser_status().await.expect("status");
    assert!(status.running);
    let port = status.devtools_port.expect("a devtools port");
    let (code, _) = api_code(agent.client.tunnel(port).await);
    assert_eq!(code, ErrorCode::PermissionDenied, "the new devtools port is refused too");
    assert_eq!(children_named(agent.pid(), "chromium").len(), 1);
}
