//! The browser websocket (`GET /api/sessions/{id}/browser/ws`) between the server and a
//! person's Browser panel: binary frame messages, the state and errors the server sends,
//! and the input and navigation a person sends back.

use serde::{Deserialize, Serialize};

use super::{InputEvent, TabId, TabInfo, Viewport};

/// Bytes of the header before the JPEG in a binary message of the browser websocket
/// (`GET /api/sessions/{id}/browser/ws`): the frame's `seq` (u64), its tab (u32), and the
/// page area it shows in CSS pixels, width then height (u32 each), all big-endian.
pub const WS_FRAME_HEADER_BYTES: usize = 20;

/// The header of a binary frame message on the browser websocket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WsFrameHeader {
    /// As [`ScreencastFrame::seq`].
    pub seq: u64,
    /// The tab shown.
    pub tab: TabId,
    /// Width of the page area shown, in CSS pixels: what input coordinates refer to.
    pub width: u32,
    /// Height of the page area shown, in CSS pixels.
    pub height: u32,
}

impl WsFrameHeader {
    /// The header's bytes.
    pub fn encode(&self) -> [u8; WS_FRAME_HEADER_BYTES] {
        let mut bytes = [0; WS_FRAME_HEADER_BYTES];
        bytes[..8].copy_from_slice(&self.seq.to_be_bytes());
        bytes[8..12].copy_from_slice(&self.tab.0.to_be_bytes());
        bytes[12..16].copy_from_slice(&self.width.to_be_bytes());
        bytes[16..20].copy_from_slice(&self.height.to_be_bytes());
        bytes
    }

    /// Splits a binary message into its header and the JPEG; `None` when it is too short.
    pub fn decode(message: &[u8]) -> Option<(WsFrameHeader, &[u8])> {
        let (head, jpeg) = message.split_at_checked(WS_FRAME_HEADER_BYTES)?;
        let u32_at = |at: usize| {
            head.get(at..at + 4).and_then(|b| <[u8; 4]>::try_from(b).ok()).map(u32::from_be_bytes)
        };
        let seq = u64::from_be_bytes(head.get(..8)?.try_into().ok()?);
        Some((
            WsFrameHeader { seq, tab: TabId(u32_at(8)?), width: u32_at(12)?, height: u32_at(16)? },
            jpeg,
        ))
    }
}

/// Who drove the shared page last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum DriverKind {
    /// A person, through a Browser panel.
    Person,
    /// An AI agent, through its `browser_*` tools.
    Agent,
}

/// The last one to drive the shared page: the Browser panel's "who is driving".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Driver {
    /// Person or agent.
    pub kind: DriverKind,
    /// Their name: a user's, or `agent: <token name>`.
    pub name: String,
    /// When they last did (Unix ms).
    pub at_ms: i64,
}

/// Server → browser text messages on the browser websocket
/// (`GET /api/sessions/{id}/browser/ws`). Screencast frames travel as binary messages: a
/// [`WsFrameHeader`], then the JPEG.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum BrowserServerMessage {
    /// The browser's tabs and who drives it: first once the browser runs, then on every
    /// change.
    State {
        /// Open tabs, oldest first.
        tabs: Vec<TabInfo>,
        /// The active tab (the one the frames show).
        active: Option<TabId>,
        /// The viewport of every tab.
        viewport: Viewport,
        /// Who drove the page last, if anyone did since the server started.
        driver: Option<Driver>,
    },
    /// Something this client asked for failed (a navigation that did not load, an unknown
    /// tab); the socket stays open.
    Error {
        /// What, readable.
        message: String,
    },
    /// The browser went away (it crashed, or the session is stopping); it is started again
    /// by the next frame request, which the server makes on its own shortly.
    Ended {
        /// Why.
        reason: String,
    },
}

/// Browser → server text messages on the browser websocket: a person driving the page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum BrowserClientMessage {
    /// Mouse, keyboard, history and viewport events for the active tab.
    Input {
        /// The event.
        event: InputEvent,
    },
    /// Load a URL in the active tab (the URL bar). A failure comes back as `error`.
    Navigate {
        /// Where: `http(s)://`, `file://`, `about:` or `data:`; a bare host gets `http://`.
        url: String,
    },
    /// Open a tab (and make it active).
    NewTab {
        /// Its first page; `about:blank` by default.
        #[serde(default)]
        url: Option<String>,
    },
    /// Close a tab.
    CloseTab {
        /// Which.
        tab: TabId,
    },
    /// Make a tab the active one.
    ActivateTab {
        /// Which.
        tab: TabId,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_frame_headers_round_trip_and_short_messages_are_refused() {
        let header = WsFrameHeader { seq: 1 << 40, tab: TabId(3), width: 1280, height: 800 };
        let mut message = header.encode().to_vec();
        message.extend_from_slice(b"jpeg");
        assert_eq!(WsFrameHeader::decode(&message), Some((header, &b"jpeg"[..])));
        assert_eq!(WsFrameHeader::decode(&message[..19]), None);
    }

    #[test]
    fn websocket_client_messages_wrap_input_events() {
        let message: BrowserClientMessage =
            serde_json::from_str(r#"{"type":"input","event":{"type":"click","x":1,"y":2}}"#)
                .expect("input");
        assert!(matches!(message, BrowserClientMessage::Input { event: InputEvent::Click { .. } }));
        let tab: BrowserClientMessage =
            serde_json::from_str(r#"{"type":"activate_tab","tab":2}"#).expect("tab");
        assert_eq!(tab, BrowserClientMessage::ActivateTab { tab: TabId(2) });
        assert!(serde_json::from_str::<BrowserClientMessage>(r#"{"type":"navigate"}"#).is_err());
    }
}
