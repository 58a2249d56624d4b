//! The screencast: one `Page.startScreencast` on the active tab, shared by every viewer.
//!
//! One task (the caster) receives the frames, acks each at once (Chromium sends the next
//! only after the ack) and publishes it, already encoded as a stream frame, to a
//! `tokio::sync::watch`: it never waits for a viewer. Each viewer's task sends the newest
//! frame whenever the watch changes; while its own stream is pushed back on (HTTP/2 flow
//! control, a slow link), frames in between are simply never sent to it. So a slow viewer
//! costs one frame of memory, never a growing queue, and never slows another viewer.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use chromiumoxide::cdp::browser_protocol::page::{
    EventScreencastFrame, ScreencastFrameAckParams, StartScreencastFormat, StartScreencastParams,
    StopScreencastParams,
};
use chromiumoxide::listeners::EventStream;
use futures_util::StreamExt;
use proto::browser::{
    DEFAULT_SCREENCAST_QUALITY, ScreencastEvent, ScreencastFrame, ScreencastQuery, TabId,
};
use serde_bytes::ByteBuf;
use tokio::sync::watch;

use super::chrome::ActiveTab;
use crate::error::{Error, Result};
use crate::http::frame;

/// Frames queued in a viewer's response body before its task stops taking new ones.
const VIEWER_QUEUE: usize = 1;

/// Wait before starting a screencast again that Chromium refused (a tab still being set up
/// or swapping its renderer answers "Not attached to an active page").
const RETRY: std::time::Duration = std::time::Duration::from_millis(200);

/// What the screencast is asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Settings {
    quality: u8,
    max_width: Option<u32>,
    max_height: Option<u32>,
}

impl Settings {
    /// Checks a viewer's query.
    pub(crate) fn from_query(query: &ScreencastQuery) -> Result<Settings> {
        let quality = query.quality.unwrap_or(DEFAULT_SCREENCAST_QUALITY);
        if !(1..=100).contains(&quality) {
            return Err(Error::bad_request(format!("quality is 1..=100, not {quality}")));
        }
        for (name, value) in [("max_width", query.max_width), ("max_height", query.max_height)] {
            if let Some(value) = value
                && !(16..=8192).contains(&value)
            {
                return Err(Error::bad_request(format!("{name} is 16..=8192, not {value}")));
            }
        }
        Ok(Settings { quality, max_width: query.max_width, max_height: query.max_height })
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Wants {
    viewers: usize,
    settings: Settings,
}

/// What the caster publishes: the newest frame, or the end.
#[derive(Clone)]
enum Published {
    Frame(Bytes),
    Ended(Bytes),
}

/// The screencast of one browser.
pub(crate) struct Caster {
    wants: watch::Sender<Wants>,
    frames: watch::Sender<Option<Published>>,
}

impl Caster {
    pub(crate) fn new() -> Arc<Caster> {
        Arc::new(Caster {
            wants: watch::channel(Wants::default()).0,
            frames: watch::channel(None).0,
        })
    }

    /// Starts the caster task; it follows the active tab and the viewers, and ends when the
    /// browser does.
    pub(crate) fn run(
        caster: Arc<Caster>,
        active: watch::Receiver<Option<ActiveTab>>,
        alive: watch::Receiver<bool>,
    ) {
        tokio::spawn(cast(caster, active, alive));
    }

    /// Adds a viewer: frames flow while at least one is there, with the settings of the one
    /// that came last. Dropping the guard removes it.
    pub(crate) fn join(self: &Arc<Caster>, settings: Settings) -> Viewer {
        self.wants.send_modify(|wants| {
            wants.viewers += 1;
            wants.settings = settings;
        });
        let mut frames = self.frames.subscribe();
        // The newest frame goes out at once: a still page sends no new one.
        frames.mark_changed();
        Viewer { caster: self.clone(), frames }
    }
}

/// One viewer: its view of the newest frame; leaves the screencast when dropped.
pub(crate) struct Viewer {
    caster: Arc<Caster>,
    frames: watch::Receiver<Option<Published>>,
}

impl Drop for Viewer {
    fn drop(&mut self) {
        self.caster.wants.send_modify(|wants| wants.viewers = wants.viewers.saturating_sub(1));
    }
}

impl Viewer {
    /// Sends the newest frame into `tx` whenever there is a newer one, until the viewer goes
    /// away or the browser ends.
    pub(crate) async fn pump(mut self, tx: tokio::sync::mpsc::Sender<Bytes>) {
        loop {
            tokio::select! {
                changed = self.frames.changed() => {
                    if changed.is_err() {
                        let ended = ScreencastEvent::Ended("the browser closed".to_owned());
                        if let Ok(bytes) = frame(&ended) {
                            let _ = tx.send(bytes).await;
                        }
                        return;
                    }
                }
                () = tx.closed() => return,
            }
            let newest = self.frames.borrow_and_update().clone();
            let (bytes, last) = match newest {
                Some(Published::Frame(bytes)) => (bytes, false),
                Some(Published::Ended(bytes)) => (bytes, true),
                None => continue,
            };
            // Waits while this viewer's stream is pushed back on; the frames published
            // meanwhile are skipped, the newest is sent next.
            if tx.send(bytes).await.is_err() || last {
                return;
            }
        }
    }
}

/// Capacity of a viewer's response queue.
pub(crate) fn viewer_queue() -> usize {
    VIEWER_QUEUE
}

/// A running `Page.startScreencast`.
struct Casting {
    tab: TabId,
    settings: Settings,
    page: chromiumoxide::Page,
    /// `None` when starting failed or the tab went away: tried again after [`RETRY`].
    frames: Option<EventStream<EventScreencastFrame>>,
}

async fn cast(
    caster: Arc<Caster>,
    mut active: watch::Receiver<Option<ActiveTab>>,
    mut alive: watch::Receiver<bool>,
) {
    let mut wants = caster.wants.subscribe();
    let mut casting: Option<Casting> = None;
    let mut seq = 0u64;
    loop {
        let want = *wants.borrow_and_update();
        let tab = active.borrow_and_update().clone();
        let desired = tab.filter(|_| want.viewers > 0).map(|tab| (tab, want.settings));
        let same = match (&casting, &desired) {
            (Some(now), Some((tab, settings))) => now.tab == tab.id && now.settings == *settings,
            (None, None) => true,
            _ => false,
        };
        if !same {
            if let Some(old) = casting.take() {
                if let Err(e) = old.page.execute(StopScreencastParams::default()).await {
                    tracing::debug!(tab = %old.tab, "stopping the screencast: {e}");
                }
                if desired.as_ref().is_none_or(|(tab, _)| tab.id != old.tab) {
                    // A new viewer of another tab must not see this one's last frame.
                    caster.frames.send_replace(None);
                }
            }
            if let Some((tab, settings)) = desired {
                casting = Some(start(tab, settings).await);
            }
        }
        let stalled = casting.as_ref().is_some_and(|c| c.frames.is_none());
        let next_frame = async {
            match casting.as_mut().and_then(|c| c.frames.as_mut()) {
                Some(frames) => frames.next().await,
                None => std::future::pending().await,
            }
        };
        let retry = async {
            if stalled {
                tokio::time::sleep(RETRY).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        let event = tokio::select! {
            changed = wants.changed() => match changed {
                Ok(()) => continue,
                Err(_) => return,
            },
            changed = active.changed() => match changed {
                Ok(()) => continue,
                Err(_) => return,
            },
            _ = alive.wait_for(|alive| !*alive) => {
                if let Ok(bytes) = frame(&ScreencastEvent::Ended("the browser closed".to_owned())) {
                    caster.frames.send_replace(Some(Published::Ended(bytes)));
                }
                return;
            }
            event = next_frame => event,
            () = retry => {
                casting = None;
                continue;
            }
        };
        match (event, &mut casting) {
            (Some(event), Some(now)) => {
                seq += 1;
                publish(&caster, now, &event, seq).await;
            }
            // The tab went away; its successor comes as a change of the active tab.
            (None, Some(now)) => now.frames = None,
            (_, None) => {}
        }
    }
}

async fn start(tab: ActiveTab, settings: Settings) -> Casting {
    let mut casting = Casting { tab: tab.id, settings, page: tab.page.clone(), frames: None };
    // Listen first, so the first frame is not missed.
    let frames = match tab.page.event_listener::<EventScreencastFrame>().await {
        Ok(frames) => frames,
        Err(e) => {
            tracing::debug!(tab = %tab.id, "listening for screencast frames: {e}");
            return casting;
        }
    };
    let params = StartScreencastParams {
        format: Some(StartScreencastFormat::Jpeg),
        quality: Some(i64::from(settings.quality)),
        max_width: settings.max_width.map(i64::from),
        max_height: settings.max_height.map(i64::from),
        every_nth_frame: Some(1),
    };
    match tab.page.execute(params).await {
        Ok(_) => casting.frames = Some(frames),
        Err(e) => tracing::debug!(tab = %tab.id, "starting the screencast: {e}"),
    }
    casting
}

/// Acks a frame (Chromium sends no more until it is acked) and publishes it.
async fn publish(caster: &Caster, casting: &Casting, event: &EventScreencastFrame, seq: u64) {
    if let Err(e) = casting.page.execute(ScreencastFrameAckParams::new(event.session_id)).await {
        tracing::debug!(tab = %casting.tab, "acking a screencast frame: {e}");
    }
    let encoded: &str = event.data.as_ref();
    let jpeg = match base64::engine::general_purpose::STANDARD.decode(encoded) {
        Ok(jpeg) => jpeg,
        Err(e) => {
            tracing::debug!(tab = %casting.tab, "a screencast frame is not base64: {e}");
            return;
        }
    };
    let metadata = &event.metadata;
    let timestamp_ms = metadata
        .timestamp
        .as_ref()
        .map(|t| *t.inner() * 1000.0)
        .filter(|ms| ms.is_finite() && *ms > 0.0)
        .map_or_else(now_ms, |ms| ms as u64);
    let message = ScreencastEvent::Frame(ScreencastFrame {
        seq,
        tab: casting.tab,
        jpeg: ByteBuf::from(jpeg),
        width: css_pixels(metadata.device_width),
        height: css_pixels(metadata.device_height),
        timestamp_ms,
    });
    match frame(&message) {
        Ok(bytes) => {
            caster.frames.send_replace(Some(Published::Frame(bytes)));
        }
        // Over the 1 MiB frame limit (a huge viewport at a high quality): skipped.
        Err(e) => tracing::debug!(tab = %casting.tab, "screencast frame dropped: {e}"),
    }
}

fn css_pixels(value: f64) -> u32 {
    if value.is_finite() && value > 0.0 { value.round().min(f64::from(u32::MAX)) as u32 } else { 0 }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
