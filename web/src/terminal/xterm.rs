//! wasm-bindgen bindings to the parts of xterm.js 6 the app uses (from npm, a UMD bundle
//! that `index.html` loads before the app: `globalThis.Terminal`), and the sizing of a
//! terminal to its pty: xterm always has exactly the pty's rows and columns, and its element
//! exactly the size they take, so a larger pane letterboxes it (top-left, blank around it)
//! and a smaller one scrolls it (the pane is `overflow: auto`), as tmux does.

use js_sys::{Object, Reflect, Uint8Array};
use wasm_bindgen::JsCast as _;
use wasm_bindgen::prelude::*;
use web_sys::{HtmlElement, KeyboardEvent};

#[wasm_bindgen]
extern "C" {
    /// An xterm.js terminal.
    #[derive(Clone)]
    pub type Terminal;

    #[wasm_bindgen(constructor)]
    fn new(options: &JsValue) -> Terminal;

    /// Renders the terminal into `parent`.
    #[wasm_bindgen(method)]
    pub fn open(this: &Terminal, parent: &HtmlElement);

    /// Queues output; xterm keeps the array, so it must not be a view into wasm memory.
    #[wasm_bindgen(method, js_name = write)]
    pub fn write_bytes(this: &Terminal, data: &Uint8Array);

    /// Queues text output.
    #[wasm_bindgen(method, js_name = write)]
    pub fn write_str(this: &Terminal, data: &str);

    /// Keystrokes and pastes, as text.
    #[wasm_bindgen(method, js_name = onData)]
    pub fn on_data(this: &Terminal, listener: &Closure<dyn FnMut(String)>) -> Disposable;

    /// Non-UTF-8 input (some mouse reports), one byte per char.
    #[wasm_bindgen(method, js_name = onBinary)]
    pub fn on_binary(this: &Terminal, listener: &Closure<dyn FnMut(String)>) -> Disposable;

    /// Size changes (`{cols, rows}`).
    #[wasm_bindgen(method, js_name = onResize)]
    pub fn on_resize(this: &Terminal, listener: &Closure<dyn FnMut(JsValue)>) -> Disposable;

    /// Sees every key event before xterm does; returning false makes xterm ignore it.
    #[wasm_bindgen(method, js_name = attachCustomKeyEventHandler)]
    pub fn attach_custom_key_event_handler(
        this: &Terminal,
        handler: &Closure<dyn FnMut(KeyboardEvent) -> bool>,
    );

    /// Columns.
    #[wasm_bindgen(method, getter)]
    pub fn cols(this: &Terminal) -> u16;

    /// Rows.
    #[wasm_bindgen(method, getter)]
    pub fn rows(this: &Terminal) -> u16;

    /// Gives the terminal the keyboard.
    #[wasm_bindgen(method)]
    pub fn focus(this: &Terminal);

    /// Tears the terminal down.
    #[wasm_bindgen(method)]
    pub fn dispose(this: &Terminal);

    /// Changes the size in cells.
    #[wasm_bindgen(method)]
    pub fn resize(this: &Terminal, cols: u16, rows: u16);

    /// The element xterm rendered into its parent (`.xterm`), once opened.
    #[wasm_bindgen(method, getter)]
    pub fn element(this: &Terminal) -> Option<HtmlElement>;

    /// A listener registration.
    pub type Disposable;

    /// Removes the listener.
    #[wasm_bindgen(method)]
    pub fn dispose(this: &Disposable);
}

/// Width of xterm's own scrollbar (its scrollback), right of the cells: xterm 6's
/// `ViewportConstants.DEFAULT_SCROLL_BAR_WIDTH`.
const SCROLLBAR_PX: f64 = 14.0;

/// The dark theme, matching the app's CSS.
fn options() -> JsValue {
    let theme = Object::new();
    for (key, value) in [
        ("background", "#0d1117"),
        ("foreground", "#d6dde6"),
        ("cursor", "#7cc4ff"),
        ("selectionBackground", "#264f78"),
    ] {
        let _ = Reflect::set(&theme, &key.into(), &value.into());
    }
    let options = Object::new();
    let entries: [(&str, JsValue); 6] = [
        ("cursorBlink", true.into()),
        (
            "fontFamily",
            "ui-monospace, 'JetBrains Mono', 'DejaVu Sans Mono', Menlo, monospace".into(),
        ),
        ("fontSize", 14.into()),
        ("scrollback", 10_000.into()),
        ("macOptionIsMeta", true.into()),
        ("theme", theme.into()),
    ];
    for (key, value) in entries {
        let _ = Reflect::set(&options, &key.into(), &value);
    }
    options.into()
}

/// A terminal, sized to its pty.
#[derive(Clone)]
pub struct Xterm {
    /// The terminal.
    pub term: Terminal,
}

impl Xterm {
    /// A new terminal (not yet opened into an element).
    pub fn create() -> Xterm {
        Xterm { term: Terminal::new(&options()) }
    }

    /// The size in cells `pane` has room for (its whole box: its scrollbars, when it shows
    /// any, do not count, so the answer does not change when they come and go). `None`
    /// while nothing is laid out (a hidden tab) or the font is not measured yet.
    pub fn room_in(&self, pane: &HtmlElement) -> Option<(u16, u16)> {
        let (cell_width, cell_height) = self.dimensions("cell")?;
        let width = f64::from(pane.offset_width()) - SCROLLBAR_PX;
        let height = f64::from(pane.offset_height());
        if width <= 0.0 || height <= 0.0 {
            return None;
        }
        let cells = |room: f64, cell: f64, min: f64| {
            (room / cell).floor().clamp(min, f64::from(proto::terminal::Size::MAX)) as u16
        };
        Some((cells(width, cell_width, 2.0), cells(height, cell_height, 1.0)))
    }

    /// Takes the pty's size: the cells, and an element exactly as large as they are.
    pub fn set_size(&self, cols: u16, rows: u16) {
        if cols == 0 || rows == 0 {
            return;
        }
        if (self.term.cols(), self.term.rows()) != (cols, rows) {
            self.term.resize(cols, rows);
        }
        self.frame();
    }

    /// Sizes xterm's element to its cells (and its scrollbar), as the font now measures.
    pub fn frame(&self) {
        let (Some(element), Some((width, height))) =
            (self.term.element(), self.dimensions("canvas"))
        else {
            return;
        };
        let style = element.style();
        let _ = style.set_property("width", &format!("{}px", (width + SCROLLBAR_PX).ceil()));
        let _ = style.set_property("height", &format!("{}px", height.ceil()));
    }

    /// xterm's measured `cell` or `canvas` size in CSS pixels. Through its private render
    /// service, as xterm's own fit addon does: no public API gives it.
    fn dimensions(&self, what: &str) -> Option<(f64, f64)> {
        let mut value: JsValue = self.term.clone().into();
        for key in ["_core", "_renderService", "dimensions", "css", what] {
            value = Reflect::get(&value, &key.into()).ok().filter(|v| v.is_object())?;
        }
        let read = |key: &str| Reflect::get(&value, &key.into()).ok().and_then(|v| v.as_f64());
        let (width, height) = (read("width")?, read("height")?);
        (width > 0.0 && height > 0.0).then_some((width, height))
    }
}

/// `window.__flintTerminals`, the test hook: `{ [terminalId]: Terminal }`.
fn registry() -> Option<Object> {
    let window: JsValue = leptos::prelude::window().into();
    let key = JsValue::from_str("__flintTerminals");
    let existing = Reflect::get(&window, &key).ok().filter(|value| value.is_object());
    if let Some(existing) = existing {
        return Some(existing.unchecked_into());
    }
    let object = Object::new();
    Reflect::set(&window, &key, &object).ok()?;
    Some(object)
}

/// Creates `window.__flintTerminals` (empty) so tests find it before the first terminal.
pub fn init_registry() {
    let _ = registry();
}

/// Exposes a terminal to tests as `window.__flintTerminals[id]`.
pub fn register(id: &str, term: &Terminal) {
    if let Some(registry) = registry() {
        let _ = Reflect::set(&registry, &id.into(), term);
    }
}

/// Removes `window.__flintTerminals[id]`.
pub fn unregister(id: &str) {
    if let Some(registry) = registry() {
        let _ = Reflect::delete_property(&registry, &id.into());
    }
}
