//! A thin owner of a browser `WebSocket` (binary as `ArrayBuffer`, close codes kept) and the
//! reconnecting with backoff every long-lived socket (events, terminals, browser) does.
//!
//! Dropping a [`Socket`] detaches its handlers before closing it, so a socket that was let
//! go never reports a close (and never triggers a reconnect).

use std::time::Duration;

use js_sys::{ArrayBuffer, Uint8Array};
use leptos::prelude::{RwSignal, Set as _, TimeoutHandle, set_timeout_with_handle};
use wasm_bindgen::JsCast as _;
use wasm_bindgen::prelude::*;
use web_sys::{BinaryType, CloseEvent, MessageEvent, WebSocket};

/// What a socket reports.
pub enum SocketEvent {
    /// The upgrade succeeded.
    Open,
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(ArrayBuffer),
    /// The socket closed (or never opened: code 1006); the last event.
    Closed {
        /// Close code: 1000 normal, 1006 abnormal (network, refused upgrade), 4xxx ours.
        code: u16,
        /// Close reason sent by the server.
        reason: String,
    },
}

/// How a reconnecting socket is doing, for the status bar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// Opening the first connection.
    Connecting,
    /// Open.
    Connected,
    /// Lost; try `attempt` is scheduled.
    Reconnecting {
        /// Tries since the last success (1 for the first retry).
        attempt: u32,
    },
    /// Given up: nothing left to connect to.
    Offline,
}

impl Link {
    /// The status bar's word: `connected`, `reconnecting` or `offline`.
    pub fn label(self) -> &'static str {
        match self {
            Link::Connected => "connected",
            Link::Connecting | Link::Reconnecting { .. } => "reconnecting",
            Link::Offline => "offline",
        }
    }
}

/// One open (or opening) websocket.
pub struct Socket {
    ws: WebSocket,
    _on_open: Closure<dyn FnMut()>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

/// `ws://` or `wss://` (as the page's protocol) URL of a same-origin path.
pub fn ws_url(path: &str) -> String {
    let location = leptos::prelude::window().location();
    let scheme = match location.protocol().as_deref() {
        Ok("https:") => "wss",
        _ => "ws",
    };
    let host = location.host().unwrap_or_default();
    format!("{scheme}://{host}{path}")
}

impl Socket {
    /// Opens `path` (same origin); every event goes to `on_event`.
    pub fn open(path: &str, on_event: impl FnMut(SocketEvent) + 'static) -> Result<Socket, String> {
        let ws = WebSocket::new(&ws_url(path))
            .map_err(|error| format!("cannot open a websocket: {error:?}"))?;
        ws.set_binary_type(BinaryType::Arraybuffer);
        let on_event = std::rc::Rc::new(std::cell::RefCell::new(on_event));

        let handler = on_event.clone();
        let on_open =
            Closure::<dyn FnMut()>::new(move || (*handler.borrow_mut())(SocketEvent::Open));
        let handler = on_event.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            let data = event.data();
            let event = if let Some(text) = data.as_string() {
                SocketEvent::Text(text)
            } else if let Ok(buffer) = data.dyn_into::<ArrayBuffer>() {
                SocketEvent::Binary(buffer)
            } else {
                return;
            };
            (*handler.borrow_mut())(event);
        });
        let handler = on_event;
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |event: CloseEvent| {
            (*handler.borrow_mut())(SocketEvent::Closed {
                code: event.code(),
                reason: event.reason(),
            })
        });
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        Ok(Socket { ws, _on_open: on_open, _on_message: on_message, _on_close: on_close })
    }

    /// True once open and until closing.
    pub fn is_open(&self) -> bool {
        self.ws.ready_state() == WebSocket::OPEN
    }

    /// Sends a text message; false when the socket is not open.
    pub fn send_text(&self, text: &str) -> bool {
        self.is_open() && self.ws.send_with_str(text).is_ok()
    }

    /// Sends a binary message; false when the socket is not open.
    pub fn send_bytes(&self, bytes: &[u8]) -> bool {
        if !self.is_open() {
            return false;
        }
        // A copy owned by JS: the socket may queue it after wasm memory moved on.
        let array = Uint8Array::from(bytes);
        self.ws.send_with_array_buffer_view(&array).is_ok()
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        // Closing an already closed socket is a no-op.
        let _ = self.ws.close();
    }
}

/// Reconnect delays: doubling from [`Backoff::FIRST_MS`] up to [`Backoff::MAX_MS`], with
/// jitter so many tabs reconnecting after a server restart do not arrive at once.
#[derive(Clone, Debug, Default)]
pub struct Backoff {
    attempt: u32,
}

impl Backoff {
    /// First retry: quick, a dropped connection usually comes right back.
    pub const FIRST_MS: u32 = 250;
    /// Longest wait between tries: a person waiting sees it come back within this.
    pub const MAX_MS: u32 = 8_000;

    /// The delay before the next try (`jitter` in 0..1), counting the try.
    pub fn next_delay_ms(&mut self, jitter: f64) -> u32 {
        let base = Self::FIRST_MS.saturating_mul(1 << self.attempt.min(10)).min(Self::MAX_MS);
        self.attempt = self.attempt.saturating_add(1);
        let jitter = jitter.clamp(0.0, 1.0);
        // Up to a quarter earlier, never later than the cap.
        (f64::from(base) * (1.0 - jitter / 4.0)) as u32
    }

    /// Tries since the last success.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// A connection worked: start over.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// `Math.random()`, for [`Backoff::next_delay_ms`].
fn jitter() -> f64 {
    js_sys::Math::random()
}

/// A reconnecting socket's next try: its [`Backoff`], its timer, and the [`Link`] it shows.
/// What ends the link for good (and when) is the socket owner's business.
pub struct Reconnect {
    link: RwSignal<Link>,
    backoff: Backoff,
    timer: Option<TimeoutHandle>,
}

impl Reconnect {
    /// No try planned yet; `link` shows how it goes.
    pub fn new(link: RwSignal<Link>) -> Reconnect {
        Reconnect { link, backoff: Backoff::default(), timer: None }
    }

    /// Calls `retry` after the next backoff delay, showing the try as `Reconnecting`.
    pub fn schedule(&mut self, retry: impl FnOnce() + 'static) {
        let delay = self.backoff.next_delay_ms(jitter());
        self.link.set(Link::Reconnecting { attempt: self.backoff.attempts() });
        let delay = Duration::from_millis(u64::from(delay));
        self.timer = set_timeout_with_handle(retry, delay).ok();
    }

    /// The link works: `Connected`, and the next loss starts the backoff over.
    pub fn connected(&mut self) {
        self.backoff.reset();
        self.link.set(Link::Connected);
    }

    /// Drops the planned try, if any.
    pub fn cancel(&mut self) {
        if let Some(timer) = self.timer.take() {
            timer.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Backoff;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let mut backoff = Backoff::default();
        let delays: Vec<u32> = (0..8).map(|_| backoff.next_delay_ms(0.0)).collect();
        assert_eq!(delays, [250, 500, 1000, 2000, 4000, 8000, 8000, 8000]);
        assert_eq!(backoff.attempts(), 8);
        backoff.reset();
        assert_eq!(backoff.next_delay_ms(1.0), 187);
    }
}
