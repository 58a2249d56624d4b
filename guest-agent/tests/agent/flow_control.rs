//! No head-of-line blocking: stalled tunnels, with more data in flight than the whole
//! connection's flow-control window, must not freeze a shell or another tunnel.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::BodyExt;
use proto::terminal::AttachQuery;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;

/// Serves `size` bytes of noise to each connection, then closes; counts what it wrote.
async fn download_server(size: usize) -> (u16, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let block = Bytes::from(noise(1 << 20, 5));
    let written = Arc::new(AtomicU64::new(0));
    let counter = written.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let block = block.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut left = size;
                while left > 0 {
                    let n = left.min(block.len());
                    if socket.write_all(&block[..n]).await.is_err() {
                        return;
                    }
                    counter.fetch_add(n as u64, Ordering::Relaxed);
                    left -= n;
                }
            });
        }
    });
    (port, written)
}

/// Reads everything each connection sends and answers with the byte count at its end;
/// counts what it received so far.
async fn upload_server() -> (u16, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 1 << 16];
                let mut total = 0u64;
                loop {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            total += n as u64;
                            counter.fetch_add(n as u64, Ordering::Relaxed);
                        }
                    }
                }
                let _ = socket.write_all(total.to_string().as_bytes()).await;
            });
        }
    });
    (port, received)
}

async fn wait_listed(agent: &TestAgent, port: u16) {
    let start = std::time::Instant::now();
    while !agent.client.ports().await.expect("ports").listeners.iter().any(|l| l.port == port) {
        assert!(start.elapsed() < DEADLINE, "port {port} never listed");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn stalled_tunnels_do_not_block_a_shell_or_another_tunnel() {
    let agent = TestAgent::start().await;
    let window = guest_agent::server::CONNECTION_WINDOW_BYTES as usize;
    let (big, big_written) = download_server(2 * window).await;
    let (small, _) = download_server(3 << 20).await;
    let (upload, uploaded) = upload_server().await;
    for port in [big, small, upload] {
        wait_listed(&agent, port).await;
    }

    // Several downloads that are never read, on the same connection as everything else:
    // together they offer far more than the connection window.
    let mut stalled = Vec::new();
    for _ in 0..4 {
        stalled.push(agent.client.tunnel(big).await.expect("stalled download"));
    }
    // An upload that stops mid-body (the sender stays open, nothing more is sent).
    let (upload_tx, _upload_body) = agent.client.tunnel(upload).await.expect("upload");
    upload_tx.send(Bytes::from(noise(3 << 20, 6))).await.expect("first part");

    // Wait until the stalls are real: the upload's first part reached the app, and the
    // downloads have pushed more than a stream window each into the tunnels.
    let stream_window = u64::from(guest_agent::server::STREAM_WINDOW_BYTES);
    eventually("the stalled streams to fill their windows", || {
        uploaded.load(Ordering::Relaxed) >= 3 << 20
            && big_written.load(Ordering::Relaxed) >= 4 * stream_window
    })
    .await;

    // Keystrokes still echo.
    let id = new_shell(&agent.client).await;
    let (input, mut output) = attach(&agent.client, &id, AttachQuery::default()).await;
    type_text(&input, "echo keys-'still'-echo\n").await;
    let mut seen = Seen::default();
    read_until_text(&mut output, &mut seen, "keys-still-echo").await;

    // A second tunnel still moves all its data.
    let (_tx, mut body) = agent.client.tunnel(small).await.expect("second tunnel");
    let mut total = 0;
    let read_all = async {
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.expect("frame").into_data() {
                total += data.len();
            }
        }
    };
    tokio::time::timeout(DEADLINE, read_all).await.expect("second tunnel completes");
    assert_eq!(total, 3 << 20);

    // The stalled upload completes once it is resumed: nothing was lost meanwhile.
    upload_tx.send(Bytes::from(noise(1 << 20, 7))).await.expect("second part");
    drop(upload_tx);
    let count = tokio::time::timeout(DEADLINE, _upload_body.collect()).await.expect("upload done");
    assert_eq!(count.expect("body").to_bytes(), Bytes::from((4u64 << 20).to_string()));
    drop(stalled);
}
