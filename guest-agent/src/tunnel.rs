//! Byte tunnels to listening ports in the guest: the request body goes to the socket, the
//! socket's bytes come back as the response body.

use std::sync::Arc;

use bytes::Bytes;
use http::Response;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use proto::error::ErrorCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::{Error, Result};
use crate::http::{Body, streaming};
use crate::server::Agent;

/// Chunks queued toward the client before the guest socket is left unread (TCP then pushes
/// back on the app, and HTTP/2 flow control bounds the rest to this stream alone).
const QUEUE_CHUNKS: usize = 4;

const READ_CHUNK_BYTES: usize = 64 << 10;

/// `POST /v1/tunnels/{port}`
pub async fn open(agent: &Arc<Agent>, port: u16, mut body: Incoming) -> Result<Response<Body>> {
    if agent.own_tcp_port == Some(port) {
        return Err(Error::api(
            ErrorCode::PermissionDenied,
            format!("port {port} is the agent's own"),
        ));
    }
    if agent.ports.browser_port() == Some(port) {
        return Err(Error::api(
            ErrorCode::PermissionDenied,
            format!("port {port} is the shared browser's devtools port"),
        ));
    }
    // All open: wait for one to close (the server's own tunnels are released a moment
    // before the agent sees them go), within a bound.
    let acquire = agent.tunnels.clone().acquire_owned();
    let permit = match tokio::time::timeout(crate::server::TUNNEL_WAIT, acquire).await {
        Ok(Ok(permit)) => permit,
        Ok(Err(_)) | Err(_) => {
            return Err(Error::api(
                ErrorCode::Busy,
                format!(
                    "{} tunnels stayed open for {}s",
                    crate::server::MAX_TUNNELS,
                    crate::server::TUNNEL_WAIT.as_secs()
                ),
            ));
        }
    };
    let address = match agent.ports.dial_address(port) {
        Some(address) => address,
        None => {
            // It may have opened since the last poll.
            agent.ports.scan_now().await;
            agent
                .ports
                .dial_address(port)
                .ok_or_else(|| Error::not_found(format!("nothing listens on port {port}")))?
        }
    };
    let connect = tokio::net::TcpStream::connect((address, port));
    let socket = match tokio::time::timeout(crate::server::CONNECT_WAIT, connect).await {
        Ok(socket) => {
            socket.map_err(|e| Error::io(&format!("connecting to {address} port {port}"), e))?
        }
        Err(_) => {
            return Err(Error::api(
                ErrorCode::Timeout,
                format!(
                    "the app on port {port} did not accept a connection within {}s \
                     (its listen queue is full: it accepts too slowly or queues too few)",
                    crate::server::CONNECT_WAIT.as_secs()
                ),
            ));
        }
    };
    let _ = socket.set_nodelay(true);
    let (mut from_guest, mut to_guest) = socket.into_split();
    let (tx, response) = streaming("application/octet-stream", QUEUE_CHUNKS);
    let permit = Arc::new(permit);
    let up_permit = permit.clone();
    tokio::spawn(async move {
        let _permit = up_permit;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { return };
            if let Ok(data) = frame.into_data()
                && to_guest.write_all(&data).await.is_err()
            {
                return;
            }
        }
        // The client finished sending: half-close toward the app.
        let _ = to_guest.shutdown().await;
    });
    tokio::spawn(async move {
        let _permit = permit;
        let mut buf = vec![0u8; READ_CHUNK_BYTES];
        loop {
            let n = tokio::select! {
                read = from_guest.read(&mut buf) => match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                },
                () = tx.closed() => return,
            };
            if tx.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                return;
            }
        }
    });
    Ok(response)
}
