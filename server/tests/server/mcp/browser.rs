//! The shared browser's MCP tools against the sandbox's own Chromium (the default image) and
//! a page a server inside the session serves: over HTTP on the `process` driver, under
//! gVisor, and over stdio inside the sandbox.

use base64::Engine as _;
use proto::browser::{BrowserServerMessage, DriverKind};

use super::*;
use crate::browser::Viewer;
use crate::support;

/// A session of the default image (Chromium, python3), with room for Chromium.
const BROWSER_SESSION: &str = r#"{"image":"default","cpus":1,"memory_mb":2048}"#;

/// A page with a title, a button that changes the text and a field that echoes what it
/// holds.
const PAGE: &str = r#"<!doctype html>
<html><head><title>Flint MCP page</title>
<style>body { margin: 0; font: 16px sans-serif; }</style></head>
<body>
<h1>Browser tools</h1>
<button id="go" onclick="document.getElementById('out').textContent = 'the button was clicked'">Go</button>
<p id="out">not clicked yet</p>
<input id="name" oninput="document.getElementById('echo').textContent = 'typed [' + this.value + ']'">
<p id="echo"></p>
</body></html>
"#;

/// What the agent types: it may be a password, so the audit log only counts it.
const SECRET: &str = "pa55-w0rd-typed";

/// Where the page's server listens inside the session.
const PORT: u16 = 8123;

/// Writes the page into the session and serves it on [`PORT`] with `python3 -m
/// http.server`, started in the background at the shared shell; its URL inside the sandbox.
async fn serve_page(client: &McpClient) -> String {
    let wrote = call(client, "write_file", json!({"path": "site/index.html", "content": PAGE}));
    assert_ok(&wrote.await);
    wait_for_prompt(client).await;
    let serve = format!(
        "python3 -m http.server {PORT} --bind 127.0.0.1 --directory /workspace/site \
         >/dev/null 2>&1 &"
    );
    assert_ok(&call(client, "run_command", json!({ "command": serve })).await);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ports = call(client, "list_ports", json!({})).await;
        if text_of(&ports).contains(&PORT.to_string()) {
            break;
        }
        assert!(Instant::now() < deadline, "port {PORT} never listed: {}", text_of(&ports));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    format!("http://127.0.0.1:{PORT}/index.html")
}

/// Reads the page's text until it shows `needle` (within 30 s).
async fn wait_for_text(client: &McpClient, needle: &str) -> CallToolResult {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let page = call(client, "browser_text", json!({})).await;
        assert_ok(&page);
        if text_of(&page).contains(needle) {
            return page;
        }
        assert!(Instant::now() < deadline, "the page never showed {needle:?}: {}", text_of(&page));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The size of the PNG a screenshot's image content holds, decoded.
fn png_of(result: &CallToolResult) -> (u32, u32) {
    let image = result.content.iter().find_map(|c| c.as_image()).expect("image content");
    assert_eq!(image.mime_type, "image/png");
    let png = base64::engine::general_purpose::STANDARD.decode(&image.data).expect("base64");
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut pixels).expect("its pixels");
    (frame.width, frame.height)
}

/// A person's Browser panel shows the page the agent navigated to and says the agent
/// drives; when the agent clicks, the change reaches the panel live as a new frame.
async fn person_sees_the_agent_drive(viewer: &mut Viewer, client: &McpClient) {
    viewer.until_title("Flint MCP page").await;
    let Some(BrowserServerMessage::State { driver, .. }) = &viewer.state else { unreachable!() };
    let driver = driver.as_ref().expect("someone drives");
    assert_eq!((driver.kind, driver.name.as_str()), (DriverKind::Agent, "agent: claude"));
    // The page stands still: nothing more comes for a moment.
    while tokio::time::timeout(Duration::from_secs(1), viewer.read()).await.is_ok() {}
    let frames = viewer.frames;
    let click =
        call_within(Duration::from_secs(120), client, "browser_click", json!({"selector": "#go"}));
    assert_ok(&click.await);
    let deadline = Instant::now() + Duration::from_secs(120);
    while viewer.frames == frames {
        assert!(Instant::now() < deadline, "the person's viewer got no frame of the click");
        let _ = tokio::time::timeout(Duration::from_secs(1), viewer.read()).await;
    }
}

/// Navigates to the page (allowing `limit`, Chromium's start included) and checks its
/// title.
async fn navigate_to_page(client: &McpClient, url: &str, limit: Duration) -> Value {
    let args = json!({ "url": url, "wait_ms": 120_000 });
    let loaded = call_within(limit, client, "browser_navigate", args).await;
    assert_ok(&loaded);
    let page = loaded.structured_content.clone().expect("structured result");
    assert_eq!(page["title"], "Flint MCP page", "{page}");
    assert_eq!(page["url"], url, "{page}");
    assert!(text_of(&loaded).contains("Flint MCP page"), "{}", text_of(&loaded));
    page
}

fn tabs_of(result: &CallToolResult) -> (Vec<u64>, Option<u64>) {
    assert_ok(result);
    let tabs = result.structured_content.clone().expect("structured result");
    let ids = tabs["tabs"].as_array().expect("tabs").iter().filter_map(|t| t["id"].as_u64());
    (ids.collect(), tabs["active"].as_u64())
}

fn assert_tool_error(result: &CallToolResult, needles: &[&str]) {
    assert_eq!(result.is_error, Some(true), "not an error: {}", text_of(result));
    for needle in needles {
        assert!(text_of(result).contains(needle), "{needle:?} not in {}", text_of(result));
    }
}

#[tokio::test]
async fn an_agent_drives_the_shared_browser_with_rmcp_client() {
    support::build_image("default");
    let f = Fixture::with(&[], BROWSER_SESSION).await;
    let (token, _) = make_token(&f.server, &f.cookie, Some(&f.session)).await;
    let client = connect(&f.mcp_url(&f.session), &token).await;
    let url = serve_page(&client).await;
    // A person watches in their Browser panel.
    let mut viewer = Viewer::open(&f.server, &f.bearer, &f.session).await;

    // The sandbox's own server, at its loopback address: the browser runs in there.
    let page = navigate_to_page(&client, &url, Duration::from_secs(60)).await;
    let first = page["tab"].as_u64().expect("tab");
    let before = wait_for_text(&client, "not clicked yet").await;
    assert!(text_of(&before).contains(&url) && text_of(&before).contains("Flint MCP page"));
    person_sees_the_agent_drive(&mut viewer, &client).await;

    assert_ok(&call(&client, "browser_click", json!({"selector": "#go"})).await);
    wait_for_text(&client, "the button was clicked").await;
    let typed = call(&client, "browser_type", json!({"selector": "#name", "text": SECRET})).await;
    assert_ok(&typed);
    assert!(text_of(&typed).contains("15 characters into #name"), "{}", text_of(&typed));
    wait_for_text(&client, &format!("typed [{SECRET}]")).await;

    let shot = call(&client, "browser_screenshot", json!({})).await;
    assert_ok(&shot);
    assert_eq!(png_of(&shot), (1280, 800), "the default viewport");
    assert!(text_of(&shot).contains("Flint MCP page") && text_of(&shot).contains("1280x800"));

    // Tabs: open one (it becomes active), list, switch back, close it.
    let second_url = format!("{url}?second");
    let opened = call(&client, "browser_tabs", json!({"action": "new", "url": second_url})).await;
    let (ids, active) = tabs_of(&opened);
    assert_eq!(ids.len(), 2, "{}", text_of(&opened));
    let second = active.expect("an active tab");
    assert_ne!(second, first);
    assert_eq!(
        tabs_of(&call(&client, "browser_tabs", json!({"action": "list"})).await),
        (ids, active)
    );
    let switched = call(&client, "browser_tabs", json!({"action": "activate", "tab": first})).await;
    assert_eq!(tabs_of(&switched).1, Some(first));
    wait_for_text(&client, "the button was clicked").await;
    let closed = call(&client, "browser_tabs", json!({"action": "close", "tab": second})).await;
    assert_eq!(tabs_of(&closed), (vec![first], Some(first)));
    let gone = call(&client, "browser_tabs", json!({"action": "activate", "tab": second})).await;
    assert_tool_error(&gone, &[&format!("no tab {second}"), "\"list\""]);
    let no_id = call(&client, "browser_tabs", json!({"action": "close"})).await;
    assert_tool_error(&no_id, &["give the tab's id"]);

    // Failures are tool errors that say what to do next.
    let missing = call(&client, "browser_click", json!({"selector": "#nope"})).await;
    assert_tool_error(&missing, &["no element matches #nope", "browser_text"]);
    let neither = call(&client, "browser_click", json!({"x": 10})).await;
    assert_tool_error(&neither, &["give a CSS selector, or both x and y"]);
    let both = call(&client, "browser_click", json!({"selector": "#go", "x": 1, "y": 2})).await;
    assert_tool_error(&both, &["not both"]);
    let refused = call(&client, "browser_navigate", json!({"url": "http://127.0.0.1:8124/"})).await;
    assert_tool_error(&refused, &["ERR_CONNECTION_REFUSED", "list_ports"]);

    // Every call is in the audit log; the typed text is counted, never written down.
    let events = f.events().await;
    let log = serde_json::to_string(&events).expect("json");
    assert!(!log.contains(SECRET), "typed text leaked into the audit log: {log}");
    let find = |kind: &str, summary: &str| {
        events.iter().find(|e| e["kind"] == kind && e["summary"] == summary).cloned()
    };
    let navigated = find("mcp.browser_navigate", &url).expect("navigate recorded");
    assert_eq!(
        (&navigated["status"], &navigated["actor"]),
        (&json!("ok"), &json!("agent: claude"))
    );
    let typing = find("mcp.browser_type", "15 characters into #name").expect("type recorded");
    assert_eq!(typing["status"], "ok");
    let failed = find("mcp.browser_click", "#nope").expect("failed click recorded");
    assert_eq!(failed["status"], "error");
    assert!(failed["error"].as_str().is_some_and(|e| e.contains("no element matches")));
    for tool in ["browser_click", "browser_screenshot", "browser_text", "browser_tabs"] {
        let kind = format!("mcp.{tool}");
        assert!(events.iter().any(|e| e["kind"] == kind && e["status"] == "ok"), "{tool}: {log}");
    }
    let _ = client.cancel().await;
}

#[tokio::test]
async fn the_browser_tools_work_in_a_gvisor_session() {
    support::build_image("default");
    let session = r#"{"image":"default","network":false,"cpus":2,"memory_mb":2048}"#;
    let f = Fixture::with(&["--driver", "gvisor"], session).await;
    let path = format!("/api/sessions/{}", f.session);
    let record = f.server.get(&path, &[("authorization", &f.bearer)]).await.json();
    assert_eq!(record["driver"], "gvisor", "{record}");
    let (token, _) = make_token(&f.server, &f.cookie, Some(&f.session)).await;
    let client = connect(&f.mcp_url(&f.session), &token).await;
    let url = serve_page(&client).await;
    let mut viewer = Viewer::open(&f.server, &f.bearer, &f.session).await;
    // Chromium under gVisor's ptrace platform is slow to start and to draw.
    navigate_to_page(&client, &url, Duration::from_secs(180)).await;
    person_sees_the_agent_drive(&mut viewer, &client).await;
    let shot =
        call_within(Duration::from_secs(120), &client, "browser_screenshot", json!({})).await;
    assert_ok(&shot);
    assert_eq!(png_of(&shot), (1280, 800));
    let _ = client.cancel().await;
}

#[tokio::test]
async fn guest_agent_mcp_drives_the_browser_over_stdio_inside_the_sandbox() {
    support::build_image("default");
    let f = Fixture::with(&[], BROWSER_SESSION).await;
    let client = in_sandbox_client(&f, &[]).await;
    let url = serve_page(&client).await;
    navigate_to_page(&client, &url, Duration::from_secs(60)).await;
    let shot = call(&client, "browser_screenshot", json!({})).await;
    assert_ok(&shot);
    assert_eq!(png_of(&shot), (1280, 800));
    let typed = call(&client, "browser_type", json!({"selector": "#name", "text": SECRET})).await;
    assert_ok(&typed);
    let _ = client.cancel().await;

    // The sandbox's reports of them reach the audit log, the typed text counted only.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let events = f.events().await;
        let guest: Vec<&Value> = events.iter().filter(|e| e["guest_reported"] == true).collect();
        let reported = |kind: &str| guest.iter().any(|e| e["kind"] == kind && e["status"] == "ok");
        if reported("mcp.browser_navigate") && reported("mcp.browser_type") {
            assert!(guest.iter().any(|e| e["summary"] == url.as_str()), "{guest:?}");
            let log = serde_json::to_string(&events).expect("json");
            assert!(!log.contains(SECRET), "typed text leaked into the audit log: {log}");
            break;
        }
        assert!(Instant::now() < deadline, "guest reports never arrived: {events:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
