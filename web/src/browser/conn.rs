//! The Browser panel's link to the session's shared browser: the browser websocket, drawn
//! onto a canvas, reconnecting with backoff.
//!
//! Server → panel: binary messages are a [`WsFrameHeader`] and a JPEG, decoded off the main
//! path (`createImageBitmap`) and drawn; while one decodes, only the newest frame waits
//! (a slow tab skips frames, never queues them). Text messages are
//! [`BrowserServerMessage`]. Panel → server: [`BrowserClientMessage`] text.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use js_sys::{Array, ArrayBuffer, Uint8Array};
use leptos::prelude::*;
use proto::browser::{
    BrowserClientMessage, BrowserServerMessage, Driver, InputEvent, TabInfo, Viewport,
    WsFrameHeader,
};
use wasm_bindgen::JsCast as _;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, BlobPropertyBag, CanvasRenderingContext2d, HtmlCanvasElement, ImageBitmap};

use crate::socket::{Link, Reconnect, Socket, SocketEvent};

/// What the panel shows about the browser (all reactive, all `Copy`).
#[derive(Clone, Copy)]
pub struct BrowserSignals {
    /// The websocket.
    pub link: RwSignal<Link>,
    /// Open tabs, oldest first.
    pub tabs: RwSignal<Vec<TabInfo>>,
    /// The active tab's id.
    pub active: RwSignal<Option<u32>>,
    /// Who drove the page last.
    pub driver: RwSignal<Option<Driver>>,
    /// The last error the server reported for this panel (a page that did not load).
    pub error: RwSignal<Option<String>>,
    /// Why no frames come (the browser went away and is starting again).
    pub ended: RwSignal<Option<String>>,
    /// A frame has been drawn since the link opened.
    pub painted: RwSignal<bool>,
}

impl BrowserSignals {
    /// A panel that is connecting.
    pub fn connecting() -> BrowserSignals {
        BrowserSignals {
            link: RwSignal::new(Link::Connecting),
            tabs: RwSignal::new(Vec::new()),
            active: RwSignal::new(None),
            driver: RwSignal::new(None),
            error: RwSignal::new(None),
            ended: RwSignal::new(None),
            painted: RwSignal::new(false),
        }
    }

    /// The active tab (tracked).
    pub fn active_tab(self) -> Option<TabInfo> {
        let active = self.active.get()?;
        self.tabs.with(|tabs| tabs.iter().find(|t| t.id.0 == active).cloned())
    }
}

/// A panel's socket and canvas. Dropping it does not tear it down: call
/// [`BrowserConn::close`].
#[derive(Clone)]
pub struct BrowserConn(Rc<RefCell<Inner>>);

struct Inner {
    session: String,
    canvas: HtmlCanvasElement,
    signals: BrowserSignals,
    /// `Some(why)` when reconnecting is pointless (the session no longer runs).
    give_up: Box<dyn Fn() -> Option<String>>,
    socket: Option<Socket>,
    reconnect: Reconnect,
    done: bool,
    /// The page area the last frame showed, in CSS pixels (input coordinates' space).
    page: Option<(u32, u32)>,
    /// The viewport this panel wants (its size); sent on every (re)connect.
    viewport: Option<Viewport>,
    /// A frame is being decoded.
    decoding: bool,
    /// The newest frame that arrived meanwhile.
    pending: Option<Blob>,
    /// Frames drawn (the canvas's `data-frames`, for tests and curious people).
    drawn: u64,
}

impl BrowserConn {
    /// A panel drawing into `canvas`, connecting right away.
    pub fn open(
        session: &str,
        canvas: HtmlCanvasElement,
        signals: BrowserSignals,
        give_up: Box<dyn Fn() -> Option<String>>,
    ) -> BrowserConn {
        let conn = BrowserConn(Rc::new(RefCell::new(Inner {
            session: session.to_owned(),
            canvas,
            signals,
            give_up,
            socket: None,
            reconnect: Reconnect::new(signals.link),
            done: false,
            page: None,
            viewport: None,
            decoding: false,
            pending: None,
            drawn: 0,
        })));
        conn.connect();
        conn
    }

    /// Sends a message; false while not connected (a click into a reconnecting panel is not
    /// replayed later).
    pub fn send(&self, message: &BrowserClientMessage) -> bool {
        let Ok(inner) = self.0.try_borrow() else { return false };
        send(&inner, message)
    }

    /// The page area of the last frame, in CSS pixels.
    pub fn page(&self) -> Option<(u32, u32)> {
        self.0.try_borrow().ok().and_then(|inner| inner.page)
    }

    /// The panel's size changed: the browser's viewport follows.
    pub fn resize(&self, viewport: Viewport) {
        let Ok(mut inner) = self.0.try_borrow_mut() else { return };
        if inner.viewport == Some(viewport) {
            return;
        }
        inner.viewport = Some(viewport);
        send_viewport(&inner);
    }

    /// Tears the panel's link down: socket and timer.
    pub fn close(&self) {
        let mut inner = self.0.borrow_mut();
        inner.done = true;
        inner.reconnect.cancel();
        inner.socket = None;
        inner.pending = None;
    }

    fn connect(&self) {
        let weak = Rc::downgrade(&self.0);
        let mut inner = self.0.borrow_mut();
        if inner.done {
            return;
        }
        let path = format!("/api/sessions/{}/browser/ws", inner.session);
        match Socket::open(&path, move |event| on_event(&weak, event)) {
            Ok(socket) => inner.socket = Some(socket),
            Err(message) => {
                inner.signals.error.set(Some(message));
                drop(inner);
                schedule(&self.0);
            }
        }
    }
}

fn send(inner: &Inner, message: &BrowserClientMessage) -> bool {
    match (&inner.socket, serde_json::to_string(message)) {
        (Some(socket), Ok(text)) => socket.send_text(&text),
        _ => false,
    }
}

fn send_viewport(inner: &Inner) {
    if let Some(Viewport { width, height }) = inner.viewport {
        send(inner, &BrowserClientMessage::Input { event: InputEvent::Resize { width, height } });
    }
}

/// Plans the next try, unless the link ended for good.
fn schedule(this: &Rc<RefCell<Inner>>) {
    let mut inner = this.borrow_mut();
    if inner.done {
        return;
    }
    if let Some(why) = (inner.give_up)() {
        inner.done = true;
        inner.signals.link.set(Link::Offline);
        inner.signals.ended.set(Some(why));
        return;
    }
    let weak = Rc::downgrade(this);
    inner.reconnect.schedule(move || {
        if let Some(this) = weak.upgrade() {
            BrowserConn(this).connect();
        }
    });
}

fn on_event(weak: &Weak<RefCell<Inner>>, event: SocketEvent) {
    let Some(this) = weak.upgrade() else { return };
    match event {
        SocketEvent::Open => {
            let mut inner = this.borrow_mut();
            inner.reconnect.connected();
            // This panel's size wins: it is the one being looked at.
            send_viewport(&inner);
        }
        SocketEvent::Binary(buffer) => frame(&this, &buffer),
        SocketEvent::Text(text) => match serde_json::from_str::<BrowserServerMessage>(&text) {
            Ok(message) => control(&this.borrow(), message),
            Err(error) => leptos::logging::warn!("unexpected browser message: {error}"),
        },
        SocketEvent::Closed { .. } => {
            let socket = this.borrow_mut().socket.take();
            // This runs inside the socket's own handler: drop it once the handler returned.
            queue_microtask(move || drop(socket));
            schedule(&this);
        }
    }
}

fn control(inner: &Inner, message: BrowserServerMessage) {
    let signals = inner.signals;
    match message {
        BrowserServerMessage::State { tabs, active, driver, .. } => {
            signals.ended.set(None);
            if signals.tabs.with_untracked(|old| *old != tabs) {
                signals.tabs.set(tabs);
            }
            signals.active.set(active.map(|t| t.0));
            if signals.driver.with_untracked(|old| *old != driver) {
                signals.driver.set(driver);
            }
        }
        BrowserServerMessage::Error { message } => signals.error.set(Some(message)),
        BrowserServerMessage::Ended { reason } => signals.ended.set(Some(reason)),
    }
}

/// A frame message: note its page size, and draw it (or keep it as the next to draw).
fn frame(this: &Rc<RefCell<Inner>>, buffer: &ArrayBuffer) {
    let bytes = Uint8Array::new(buffer).to_vec();
    let Some((header, jpeg)) = WsFrameHeader::decode(&bytes) else { return };
    let blob = {
        let parts = Array::of1(&Uint8Array::from(jpeg));
        let options = BlobPropertyBag::new();
        options.set_type("image/jpeg");
        match Blob::new_with_u8_array_sequence_and_options(&parts, &options) {
            Ok(blob) => blob,
            Err(error) => {
                leptos::logging::warn!("a frame could not be read: {error:?}");
                return;
            }
        }
    };
    let mut inner = this.borrow_mut();
    inner.page = Some((header.width, header.height));
    if inner.decoding {
        inner.pending = Some(blob);
        return;
    }
    inner.decoding = true;
    drop(inner);
    leptos::task::spawn_local(draw_frames(Rc::downgrade(this), blob));
}

/// Decodes and draws `blob`, then whatever arrived meanwhile, newest only.
async fn draw_frames(weak: Weak<RefCell<Inner>>, mut blob: Blob) {
    loop {
        let bitmap = decode(&blob).await;
        let Some(this) = weak.upgrade() else { return };
        let mut inner = this.borrow_mut();
        if inner.done {
            return;
        }
        match bitmap {
            Ok(bitmap) => {
                paint(&inner.canvas, &bitmap);
                bitmap.close();
                inner.drawn += 1;
                let _ = inner.canvas.set_attribute("data-frames", &inner.drawn.to_string());
                if !inner.signals.painted.get_untracked() {
                    inner.signals.painted.set(true);
                }
            }
            Err(error) => leptos::logging::warn!("a frame could not be decoded: {error}"),
        }
        match inner.pending.take() {
            Some(next) => blob = next,
            None => {
                inner.decoding = false;
                return;
            }
        }
    }
}

async fn decode(blob: &Blob) -> Result<ImageBitmap, String> {
    let promise = window().create_image_bitmap_with_blob(blob).map_err(|e| format!("{e:?}"))?;
    let value = JsFuture::from(promise).await.map_err(|e| format!("{e:?}"))?;
    value.dyn_into::<ImageBitmap>().map_err(|_| "not an image".to_owned())
}

fn paint(canvas: &HtmlCanvasElement, bitmap: &ImageBitmap) {
    let (width, height) = (bitmap.width(), bitmap.height());
    if canvas.width() != width || canvas.height() != height {
        canvas.set_width(width);
        canvas.set_height(height);
    }
    let context = canvas
        .get_context("2d")
        .ok()
        .flatten()
        .and_then(|c| c.dyn_into::<CanvasRenderingContext2d>().ok());
    if let Some(context) = context {
        let _ = context.draw_image_with_image_bitmap(bitmap, 0.0, 0.0);
    }
}
