//! Chromium's process: its DevTools port out of reach, the agent without Chromium, and a
//! browser that died started again; the in-sandbox socket drives it but never watches it.

use super::screencast::{next_frame, png_size};
use super::*;

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

#[tokio::test]
async fn the_in_sandbox_socket_drives_the_browser_but_not_a_persons_view_of_it() {
    let pages = Pages::serve().await;
    let agent = TestAgent::start().await;
    let guest = guest_agent::client::Client::connect_guest(&agent.guest_socket)
        .await
        .expect("connect to the guest socket");
    let request = Navigate { url: pages.url("index.html"), wait_ms: None };
    let page = guest.browser_navigate(&request).await.expect("navigate on the guest socket");
    assert_eq!(page.title, "Flint test page");
    let click = Click { selector: Some("#go".to_owned()), ..Click::default() };
    guest.browser_click(&click).await.expect("click");
    assert!(guest.browser_text().await.expect("text").text.contains("clicked 1 times"));
    let png = guest.browser_screenshot().await.expect("screenshot");
    assert_eq!(png_size(&png), (Viewport::DEFAULT.width, Viewport::DEFAULT.height));
    let opened = guest.browser_new_tab(&NewTab::default()).await.expect("new tab");
    let tabs = guest.browser_activate_tab(page.tab).await.expect("activate");
    assert_eq!(tabs.active, Some(page.tab));
    guest.browser_close_tab(opened.id).await.expect("close");

    // A person's side of the browser stays on the main socket.
    for (code, what) in [
        api_code(guest.browser_input(&InputEvent::Reload).await),
        api_code(guest.browser_screencast(&ScreencastQuery::default()).await.map(|_| ())),
        api_code(guest.browser_console(None).await),
    ] {
        assert_eq!(code, ErrorCode::PermissionDenied, "{what}");
    }
}
