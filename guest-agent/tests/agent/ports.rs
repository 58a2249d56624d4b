//! Ports: events for servers that start and stop, and tunnels to them on IPv4 and IPv6.

use std::net::{IpAddr, Ipv6Addr};
use std::process::{Child, Command, Stdio};

use bytes::Bytes;
use guest_agent::client::{Client, FrameStream};
use http_body_util::BodyExt;
use proto::error::ErrorCode;
use proto::ports::{Listener, PortEvent};

use crate::common::*;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http_server(dir: &std::path::Path, port: u16, bind: &str) -> Server {
    let child = Command::new("python3")
        .args(["-m", "http.server", &port.to_string(), "--bind", bind])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start python3 -m http.server");
    Server(child)
}

/// Waits for an event about `port` that `matches`, skipping others (the host has more ports).
async fn wait_for_event(
    events: &mut FrameStream<PortEvent>,
    what: &str,
    matches: impl Fn(&PortEvent) -> bool,
) -> PortEvent {
    tokio::time::timeout(DEADLINE, async {
        loop {
            let event = events.next().await.expect("events").expect("stream open");
            if matches(&event) {
                return event;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// An HTTP/1.0 GET through a tunnel; the server closes after answering.
async fn get_through_tunnel(client: &Client, port: u16, path: &str) -> String {
    let (tx, mut body) = client.tunnel(port).await.expect("tunnel");
    let request = format!("GET {path} HTTP/1.0\r\nHost: localhost:{port}\r\n\r\n");
    tx.send(Bytes::from(request)).await.expect("send request");
    let mut response = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.expect("frame").into_data() {
            response.extend_from_slice(&data);
        }
    }
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn an_http_server_appears_serves_through_a_tunnel_and_disappears() {
    let agent = TestAgent::start().await;
    std::fs::write(agent.workdir().join("index.html"), "<h1>hello from the guest</h1>")
        .expect("page");
    let mut events = agent.client.port_events().await.expect("events");
    let first = events.next().await.expect("events").expect("snapshot");
    assert!(matches!(first, PortEvent::Snapshot(_)), "first event is a snapshot: {first:?}");

    let port = free_port();
    let server = http_server(&agent.workdir(), port, "127.0.0.1");
    let opened = wait_for_event(
        &mut events,
        "the port to open",
        |e| matches!(e, PortEvent::Opened(Listener { port: p, .. }) if *p == port),
    )
    .await;
    let PortEvent::Opened(listener) = opened else { unreachable!() };
    assert_eq!(listener.address, IpAddr::from([127, 0, 0, 1]));
    assert_eq!(listener.pid, Some(server.0.id()), "the owner is found");
    assert!(listener.process.as_deref().is_some_and(|p| p.starts_with("python")), "{listener:?}");
    let listed = agent.client.ports().await.expect("ports");
    assert!(listed.listeners.iter().any(|l| l.port == port));

    let response = get_through_tunnel(&agent.client, port, "/").await;
    assert!(response.starts_with("HTTP/1.0 200"), "{response}");
    assert!(response.contains("<h1>hello from the guest</h1>"), "{response}");

    drop(server);
    wait_for_event(
        &mut events,
        "the port to close",
        |e| matches!(e, PortEvent::Closed { port: p, .. } if *p == port),
    )
    .await;
    let err = agent.client.tunnel(port).await.expect_err("closed port");
    assert_eq!(err.code(), ErrorCode::NotFound, "{err}");
}

#[tokio::test]
async fn a_server_on_ipv6_loopback_only_is_reachable_through_a_tunnel() {
    let agent = TestAgent::start().await;
    std::fs::write(agent.workdir().join("v6.txt"), "only on ::1").expect("file");
    let mut events = agent.client.port_events().await.expect("events");
    let port = free_port();
    let _server = http_server(&agent.workdir(), port, "::1");
    let opened = wait_for_event(
        &mut events,
        "the v6 port to open",
        |e| matches!(e, PortEvent::Opened(Listener { port: p, .. }) if *p == port),
    )
    .await;
    let PortEvent::Opened(listener) = opened else { unreachable!() };
    assert_eq!(listener.address, IpAddr::V6(Ipv6Addr::LOCALHOST));
    let response = get_through_tunnel(&agent.client, port, "/v6.txt").await;
    assert!(response.contains("only on ::1"), "{response}");
}

#[tokio::test]
async fn a_tunnel_to_a_port_nobody_listens_on_is_refused_clearly() {
    let agent = TestAgent::start().await;
    let err = agent.client.tunnel(free_port()).await.expect_err("nothing listens");
    assert_eq!(err.code(), ErrorCode::NotFound);
    assert!(err.to_string().contains("nothing listens"), "{err}");
}

/// An app whose listen queue is full (it accepts nothing; Python's `http.server` queues only
/// 5) drops the tunnel's SYNs: the tunnel is refused with a timeout that names the cause
/// within [`CONNECT_WAIT`], instead of hanging for minutes of SYN retries.
#[tokio::test]
async fn a_tunnel_to_an_app_whose_listen_queue_is_full_is_refused_within_the_bound() {
    use guest_agent::server::CONNECT_WAIT;
    let agent = TestAgent::start().await;
    let port = free_port();
    // Listens with a queue of one, fills it, and never accepts.
    let script = format!(
        "import socket, time\n\
         s = socket.socket(); s.bind(('127.0.0.1', {port})); s.listen(0)\n\
         held = []\n\
         for _ in range(4):\n    c = socket.socket(); c.setblocking(False)\n    \
         c.connect_ex(('127.0.0.1', {port})); held.append(c)\n\
         print('full', flush=True)\n\
         time.sleep(600)\n"
    );
    let mut child = Command::new("python3")
        .args(["-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).expect("read");
    assert_eq!(line.trim(), "full");
    let _app = Server(child);

    let started = std::time::Instant::now();
    let err = tokio::time::timeout(CONNECT_WAIT * 3, agent.client.tunnel(port))
        .await
        .expect("the tunnel is answered within its bound")
        .expect_err("the app accepts nothing");
    let took = started.elapsed();
    assert_eq!(err.code(), ErrorCode::Timeout, "{err}");
    assert!(err.to_string().contains("listen queue is full"), "{err}");
    assert!(took >= CONNECT_WAIT && took < CONNECT_WAIT * 2, "took {took:?}");
}
