//! The shared browser: one headless Chromium per agent, started on the first browser call.
//! Its tabs, the operations an AI agent uses (navigate, click, type, screenshot, text,
//! console), input replayed from a person's viewer, and the screencast viewers watch.
//!
//! One tab is **active**: every operation, input event and the screencast target it.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

mod ws;
pub use ws::*;

/// A tab's id: a small number the agent gives each tab it sees, never reused while the
/// browser runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TabId(pub u32);

impl TabId {
    /// Accepts a plain decimal number above 0 (no sign, no leading zero), as in a path.
    pub fn parse(text: &str) -> Option<TabId> {
        if text.is_empty() || text.starts_with('0') || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse().ok().filter(|n| *n != 0).map(TabId)
    }
}

impl std::fmt::Display for TabId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Size of the page area in CSS pixels: what screenshots capture and input coordinates
/// refer to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Viewport {
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

impl Viewport {
    /// The viewport of a fresh browser.
    pub const DEFAULT: Viewport = Viewport { width: 1280, height: 800 };
    /// Smallest width or height accepted.
    pub const MIN: u32 = 100;
    /// Largest width or height accepted.
    pub const MAX: u32 = 4096;

    /// Is each side within [`Viewport::MIN`]..=[`Viewport::MAX`]?
    pub fn is_valid(&self) -> bool {
        (Self::MIN..=Self::MAX).contains(&self.width)
            && (Self::MIN..=Self::MAX).contains(&self.height)
    }
}

/// One tab.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TabInfo {
    /// Its id.
    pub id: TabId,
    /// The page's URL.
    pub url: String,
    /// The page's title (the URL when the page has none).
    pub title: String,
    /// Is it the active tab?
    pub active: bool,
}

/// `GET /v1/browser/tabs` response, and the answer of closing or activating a tab.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TabList {
    /// Open tabs, oldest first.
    pub tabs: Vec<TabInfo>,
    /// The active tab, if any is open.
    pub active: Option<TabId>,
}

/// `GET /v1/browser/status` response. Never starts the browser.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BrowserStatus {
    /// Does Chromium run?
    pub running: bool,
    /// The loopback port of its DevTools endpoint while it runs. This port is never listed
    /// in `GET /v1/ports` and never tunnelled.
    pub devtools_port: Option<u16>,
    /// Open tabs, oldest first.
    pub tabs: Vec<TabInfo>,
    /// The active tab.
    pub active: Option<TabId>,
    /// The viewport of every tab.
    pub viewport: Viewport,
}

/// How long `navigate` waits for the page's `load` event unless told.
pub const DEFAULT_NAVIGATE_WAIT_MS: u64 = 30_000;

/// The longest `navigate` waits.
pub const MAX_NAVIGATE_WAIT_MS: u64 = 120_000;

/// `POST /v1/browser/navigate` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Navigate {
    /// Where to go: `http(s)://`, `file://`, `about:` or `data:`.
    pub url: String,
    /// How long to wait for the `load` event, in milliseconds ([`DEFAULT_NAVIGATE_WAIT_MS`],
    /// at most [`MAX_NAVIGATE_WAIT_MS`]). When it runs out the answer is a `timeout` error
    /// and the page goes on loading.
    #[serde(default)]
    pub wait_ms: Option<u64>,
}

/// The active tab's page, after an operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PageInfo {
    /// The tab.
    pub tab: TabId,
    /// Its URL.
    pub url: String,
    /// Its title.
    pub title: String,
}

/// `POST /v1/browser/click` body: a CSS selector (the element's centre is clicked, after
/// scrolling it into view) or viewport coordinates in CSS pixels, not both.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Click {
    /// CSS selector of the element to click.
    #[serde(default)]
    pub selector: Option<String>,
    /// Horizontal position.
    #[serde(default)]
    pub x: Option<f64>,
    /// Vertical position.
    #[serde(default)]
    pub y: Option<f64>,
}

/// `POST /v1/browser/type` body: inserts `text` into the focused element, or first clicks
/// the element `selector` matches (then the text goes after what it holds).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypeText {
    /// CSS selector of the element to type into; `None` types into the focused element.
    #[serde(default)]
    pub selector: Option<String>,
    /// The text.
    pub text: String,
}

/// Longest visible text `GET /v1/browser/text` returns, in characters.
pub const MAX_TEXT_CHARS: usize = 200_000;

/// `GET /v1/browser/text` response: what a reader of the active tab sees.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageText {
    /// The tab.
    pub tab: TabId,
    /// Its URL.
    pub url: String,
    /// Its title.
    pub title: String,
    /// `document.body.innerText`, cut to [`MAX_TEXT_CHARS`].
    pub text: String,
    /// True when `text` was cut.
    pub truncated: bool,
}

/// Console messages the agent keeps, across tabs; older ones are dropped.
pub const CONSOLE_MESSAGES: usize = 200;

/// Query of `GET /v1/browser/console`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleQuery {
    /// Only messages with a `seq` above this one.
    #[serde(default)]
    pub since: Option<u64>,
}

/// One console message (or uncaught exception) of a page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleMessage {
    /// Increases by one per message, across tabs.
    pub seq: u64,
    /// The tab it came from.
    pub tab: TabId,
    /// `log`, `info`, `warning`, `error`, `debug`, ... or `exception` for an uncaught one.
    pub level: String,
    /// The message's arguments as text, separated by spaces.
    pub text: String,
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: u64,
}

/// `GET /v1/browser/console` response, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleLog {
    /// The messages (at most [`CONSOLE_MESSAGES`]).
    pub messages: Vec<ConsoleMessage>,
}

/// `POST /v1/browser/tabs` body: a new tab, which becomes the active one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTab {
    /// Its first page, loaded and waited for as `navigate` does (a failure is answered as
    /// there, the tab stays open); `about:blank` by default.
    #[serde(default)]
    pub url: Option<String>,
}

/// Modifier keys held during an input event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Modifiers {
    /// Alt.
    pub alt: bool,
    /// Control.
    pub ctrl: bool,
    /// Meta (Command).
    pub meta: bool,
    /// Shift.
    pub shift: bool,
}

/// A mouse button.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum MouseButton {
    /// No button (a move).
    None,
    /// The main button.
    #[default]
    Left,
    /// The wheel button.
    Middle,
    /// The secondary button.
    Right,
    /// The "back" side button.
    Back,
    /// The "forward" side button.
    Forward,
}

fn one() -> u32 {
    1
}

/// `POST /v1/browser/input` body: one input event for the active tab, as a person's viewer
/// replays it. Coordinates are CSS pixels of the viewport.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum InputEvent {
    /// The pointer moved.
    MouseMove {
        /// Horizontal position.
        x: f64,
        /// Vertical position.
        y: f64,
        /// Held modifiers.
        #[serde(default)]
        modifiers: Modifiers,
    },
    /// A button went down.
    MouseDown {
        /// Horizontal position.
        x: f64,
        /// Vertical position.
        y: f64,
        /// Which button.
        #[serde(default)]
        button: MouseButton,
        /// 1 for a click, 2 for the second press of a double click.
        #[serde(default = "one")]
        click_count: u32,
        /// Held modifiers.
        #[serde(default)]
        modifiers: Modifiers,
    },
    /// A button went up.
    MouseUp {
        /// Horizontal position.
        x: f64,
        /// Vertical position.
        y: f64,
        /// Which button.
        #[serde(default)]
        button: MouseButton,
        /// As on the matching `mouse_down`.
        #[serde(default = "one")]
        click_count: u32,
        /// Held modifiers.
        #[serde(default)]
        modifiers: Modifiers,
    },
    /// Down and up at one place.
    Click {
        /// Horizontal position.
        x: f64,
        /// Vertical position.
        y: f64,
        /// Which button.
        #[serde(default)]
        button: MouseButton,
        /// 1 for a click, 2 for a double click.
        #[serde(default = "one")]
        click_count: u32,
        /// Held modifiers.
        #[serde(default)]
        modifiers: Modifiers,
    },
    /// The wheel turned (scrolling).
    Wheel {
        /// Horizontal position.
        x: f64,
        /// Vertical position.
        y: f64,
        /// Horizontal scroll, in CSS pixels.
        #[serde(default)]
        delta_x: f64,
        /// Vertical scroll, in CSS pixels.
        #[serde(default)]
        delta_y: f64,
        /// Held modifiers.
        #[serde(default)]
        modifiers: Modifiers,
    },
    /// A key went down.
    KeyDown {
        /// `KeyboardEvent.key`: `a`, `Enter`, `ArrowLeft`, ...
        key: String,
        /// `KeyboardEvent.code`: `KeyA`, `Enter`, ...; looked up from `key` when missing.
        #[serde(default)]
        code: Option<String>,
        /// The text the key produces (`a`, `\r`); looked up from `key` when missing.
        #[serde(default)]
        text: Option<String>,
        /// Windows virtual key code; looked up from `key` when missing.
        #[serde(default)]
        key_code: Option<u32>,
        /// Held modifiers.
        #[serde(default)]
        modifiers: Modifiers,
    },
    /// A key went up.
    KeyUp {
        /// `KeyboardEvent.key`.
        key: String,
        /// `KeyboardEvent.code`.
        #[serde(default)]
        code: Option<String>,
        /// Windows virtual key code.
        #[serde(default)]
        key_code: Option<u32>,
        /// Held modifiers.
        #[serde(default)]
        modifiers: Modifiers,
    },
    /// A character typed without a key event (an input method's result).
    Char {
        /// The character(s).
        text: String,
        /// Held modifiers.
        #[serde(default)]
        modifiers: Modifiers,
    },
    /// Text inserted into the focused element as if pasted.
    InsertText {
        /// The text.
        text: String,
    },
    /// History back.
    Back,
    /// History forward.
    Forward,
    /// Reload the page.
    Reload,
    /// Resize the viewport of every tab (a viewer's window changed).
    Resize {
        /// Width in CSS pixels, [`Viewport::MIN`]..=[`Viewport::MAX`].
        width: u32,
        /// Height in CSS pixels, [`Viewport::MIN`]..=[`Viewport::MAX`].
        height: u32,
    },
}

/// `POST /v1/browser/input` response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputDone {
    /// The tab the event went to.
    pub tab: TabId,
}

/// JPEG quality of the screencast unless asked.
pub const DEFAULT_SCREENCAST_QUALITY: u8 = 60;

/// Query of `GET /v1/browser/screencast`. The browser runs one screencast, with the
/// settings of the viewer that came last.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScreencastQuery {
    /// JPEG quality, 1..=100 ([`DEFAULT_SCREENCAST_QUALITY`]).
    #[serde(default)]
    pub quality: Option<u8>,
    /// Largest frame width in pixels (frames are scaled down to fit); the viewport's by
    /// default.
    #[serde(default)]
    pub max_width: Option<u32>,
    /// Largest frame height in pixels; the viewport's by default.
    #[serde(default)]
    pub max_height: Option<u32>,
}

/// One screencast frame of the active tab.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScreencastFrame {
    /// Increases with every frame the browser sends; a viewer that was slow sees gaps (it
    /// gets the newest frame, not every one).
    pub seq: u64,
    /// The tab.
    pub tab: TabId,
    /// The image, JPEG.
    pub jpeg: ByteBuf,
    /// Width of the page area it shows, in CSS pixels (the space of input coordinates).
    pub width: u32,
    /// Height of the page area it shows, in CSS pixels.
    pub height: u32,
    /// When the browser drew it, in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
}

/// Frames of `GET /v1/browser/screencast`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ScreencastEvent {
    /// The newest frame. The first one, if any, is sent at once.
    Frame(ScreencastFrame),
    /// The browser went away; the stream ends after this.
    Ended(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tab_ids_are_plain_positive_decimals() {
        assert_eq!(TabId::parse("7"), Some(TabId(7)));
        assert_eq!(TabId::parse("4294967295"), Some(TabId(u32::MAX)));
        for bad in ["", "0", "07", "+7", "-7", "7a", "4294967296", "x"] {
            assert_eq!(TabId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn input_events_are_tagged_json_with_defaults() {
        let click: InputEvent =
            serde_json::from_str(r#"{"type":"click","x":10,"y":20.5}"#).expect("click");
        assert_eq!(
            click,
            InputEvent::Click {
                x: 10.0,
                y: 20.5,
                button: MouseButton::Left,
                click_count: 1,
                modifiers: Modifiers::default(),
            }
        );
        let key: InputEvent =
            serde_json::from_str(r#"{"type":"key_down","key":"a","modifiers":{"shift":true}}"#)
                .expect("key");
        assert!(matches!(
            key,
            InputEvent::KeyDown { modifiers: Modifiers { shift: true, .. }, .. }
        ));
        let back: InputEvent = serde_json::from_str(r#"{"type":"back"}"#).expect("back");
        assert_eq!(back, InputEvent::Back);
        assert!(serde_json::from_str::<InputEvent>(r#"{"type":"teleport"}"#).is_err());
        // Unknown fields are refused (serde lets them pass on unit variants like `back`).
        let extra = r#"{"type":"click","x":1,"y":2,"z":3}"#;
        assert!(serde_json::from_str::<InputEvent>(extra).is_err());
    }

    #[test]
    fn screencast_frames_carry_jpeg_as_bytes() {
        let frame = ScreencastEvent::Frame(ScreencastFrame {
            seq: 1,
            tab: TabId(1),
            jpeg: ByteBuf::from(vec![0xff; 1000]),
            width: 800,
            height: 600,
            timestamp_ms: 1,
        });
        let encoded = crate::frame::encode(&frame).expect("encode");
        assert!(encoded.len() < 1000 + 32, "{} bytes: bytes travel raw", encoded.len());
    }

    #[test]
    fn viewport_bounds() {
        assert!(Viewport::DEFAULT.is_valid());
        assert!(!Viewport { width: 99, height: 600 }.is_valid());
        assert!(!Viewport { width: 800, height: 4097 }.is_valid());
    }
}
