//! The terminal websocket's bounds: what a client that misbehaves cannot grow.

use crate::common::*;
use crate::sessions::{create_session, token};

/// A terminal client that keeps sending (bad messages, each answered) without reading the
/// answers is closed once they reach their bound, instead of growing the server.
#[tokio::test]
async fn a_terminal_client_that_sends_without_reading_is_closed_at_the_bound() {
    use futures_util::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite::tungstenite::Message;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path());
    let bearer = token(&server).await;
    let id = create_session(&server, &bearer).await["id"].as_str().expect("id").to_owned();
    let origin = server.origin();
    let headers = [("authorization", bearer.as_str()), ("origin", origin.as_str())];
    let mut ws =
        server.ws(&format!("/api/sessions/{id}/terminals/1/ws"), &headers).await.expect("ws");
    // Far more answers than the socket's buffers and the bound hold together.
    let flood = async {
        for _ in 0..300_000 {
            if ws.feed(Message::Text("not json".into())).await.is_err() {
                return;
            }
        }
        let _ = ws.flush().await;
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), flood).await.expect("sent in time");
    let ended = async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return None,
            }
        }
    };
    let code = tokio::time::timeout(std::time::Duration::from_secs(30), ended)
        .await
        .expect("the socket was still open");
    assert!(matches!(code, None | Some(1008)), "closed with {code:?}");
}
