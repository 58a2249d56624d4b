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

mod process;
mod screencast;

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
