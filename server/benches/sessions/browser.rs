//! `browser.fps` and `browser.input_to_frame`: a Browser panel's websocket on a session of
//! the default image (its Chromium), the pages served from the sandbox's own files.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use futures_util::{SinkExt as _, StreamExt as _};
use proto::browser::{BrowserServerMessage, WsFrameHeader};
use report::Metric;
use tokio_tungstenite::tungstenite::Message;

use super::{Server, Ws, report};

/// How long frames of the animated page are counted.
const FPS_WINDOW: Duration = Duration::from_secs(5);
/// Clicks timed by `browser.input_to_frame`.
const CLICKS: usize = 50;
/// Quiet time after which the page counts as still (no frame came).
const STILL: Duration = Duration::from_millis(300);
/// Deadline of one wait (the first page starts Chromium).
const WAIT: Duration = Duration::from_secs(60);

/// A page that repaints every animation frame.
const SPIN: &str = "<!doctype html><title>Spin</title><body style='margin:0'>\
<div id=b style='width:100vw;height:100vh'></div><script>let n=0;function t(){n++;\
document.getElementById('b').style.background='hsl('+(n*7%360)+',80%,50%)';\
requestAnimationFrame(t)}requestAnimationFrame(t)</script>";

/// A still page whose colour flips on every mouse press.
const FLIP: &str = "<!doctype html><title>Flip</title><body style='margin:0;background:#00f'>\
<script>let n=0;document.addEventListener('mousedown',()=>{document.body.style.background=\
(++n%2)?'#f00':'#00f'})</script>";

pub(super) async fn measure(server: &Server, wanted: &dyn Fn(&str) -> bool) -> Result<Vec<Metric>> {
    let body = r#"{"image":"default","memory_mb":2048,"cpus":2,"network":false}"#;
    let id = server.create_session_with(body).await?;
    let auth = [("authorization", server.bearer())];
    for (name, page) in [("spin.html", SPIN), ("flip.html", FLIP)] {
        let put = format!("/api/sessions/{id}/files/content?path=/workspace/{name}");
        let reply = server.request("PUT", &put, &auth, page).await?;
        ensure!(reply.status.is_success(), "uploading {name}: {}", reply.body);
    }
    let mut panel =
        Panel { ws: server.websocket(&format!("/api/sessions/{id}/browser/ws")).await? };
    let mut metrics = Vec::new();
    if wanted("browser.fps") {
        panel.navigate("file:///workspace/spin.html", "Spin").await?;
        // Counting starts on a frame, after the page has been animating a moment.
        panel.frames_for(Duration::from_secs(1)).await?;
        let frames = panel.frames_for(FPS_WINDOW).await?;
        let fps = frames as f64 / FPS_WINDOW.as_secs_f64();
        eprintln!("bench:   {frames} frames in {FPS_WINDOW:?} of an animated page");
        metrics.push(Metric::value("browser.fps", "frames/s", fps));
    }
    if wanted("browser.input_to_frame") {
        eprintln!("bench: browser.input_to_frame ({CLICKS} clicks, each to its first frame)");
        panel.navigate("file:///workspace/flip.html", "Flip").await?;
        let mut samples = Vec::with_capacity(CLICKS);
        for _ in 0..CLICKS {
            panel.until_still().await?;
            let click = serde_json::json!({
                "type": "input", "event": {"type": "click", "x": 200, "y": 200}
            });
            let started = Instant::now();
            panel.ws.send(Message::Text(click.to_string().into())).await?;
            tokio::time::timeout(WAIT, panel.next_frame())
                .await
                .context("no frame after a click")??;
            samples.push(started.elapsed());
        }
        metrics.push(Metric::ms("browser.input_to_frame", &samples));
    }
    drop(panel);
    server.delete_session(&id).await?;
    Ok(metrics)
}

/// A Browser panel's socket.
struct Panel {
    ws: Ws,
}

impl Panel {
    /// Navigates and reads until the active tab has `title`.
    async fn navigate(&mut self, url: &str, title: &str) -> Result<()> {
        let message = serde_json::json!({"type": "navigate", "url": url});
        self.ws.send(Message::Text(message.to_string().into())).await?;
        let shown = async {
            loop {
                let message = self.ws.next().await.context("the socket closed")??;
                let Message::Text(text) = message else { continue };
                match serde_json::from_str::<BrowserServerMessage>(&text)? {
                    BrowserServerMessage::State { tabs, active, .. }
                        if tabs.iter().any(|t| Some(t.id) == active && t.title == title) =>
                    {
                        return anyhow::Ok(());
                    }
                    BrowserServerMessage::Error { message } => bail!("navigating: {message}"),
                    _ => {}
                }
            }
        };
        tokio::time::timeout(WAIT, shown).await.with_context(|| format!("{url} not shown"))?
    }

    /// The next frame message.
    async fn next_frame(&mut self) -> Result<WsFrameHeader> {
        loop {
            let message = self.ws.next().await.context("the socket closed")??;
            if let Message::Binary(bytes) = message {
                let (header, _) = WsFrameHeader::decode(&bytes).context("a short frame")?;
                return Ok(header);
            }
        }
    }

    /// Frames received in `window`.
    async fn frames_for(&mut self, window: Duration) -> Result<u64> {
        let deadline = tokio::time::Instant::now() + window;
        let mut frames = 0;
        while let Ok(frame) = tokio::time::timeout_at(deadline, self.next_frame()).await {
            frame?;
            frames += 1;
        }
        Ok(frames)
    }

    /// Reads frames until none came for [`STILL`].
    async fn until_still(&mut self) -> Result<()> {
        let started = Instant::now();
        while let Ok(frame) = tokio::time::timeout(STILL, self.next_frame()).await {
            frame?;
            ensure!(started.elapsed() < WAIT, "the page never stood still");
        }
        Ok(())
    }
}
