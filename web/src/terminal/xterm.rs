//! wasm-bindgen bindings to the parts of xterm.js 6 and its fit addon the app uses. Both
//! come from npm as UMD bundles that `index.html` loads before the app: `globalThis.Terminal`
//! and `globalThis.FitAddon.FitAddon`.

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

    #[wasm_bindgen(method, js_name = loadAddon)]
    fn load_addon(this: &Terminal, addon: &Fit);

    /// A listener registration.
    pub type Disposable;

    /// Removes the listener.
    #[wasm_bindgen(method)]
    pub fn dispose(this: &Disposable);

    /// The fit addon: sizes the terminal to its container. (The Rust name differs from the
    /// JS one: wasm-bindgen 0.2.130 breaks on a type named like its namespace.)
    #[wasm_bindgen(js_name = FitAddon, js_namespace = FitAddon)]
    #[derive(Clone)]
    pub type Fit;

    #[wasm_bindgen(constructor, js_class = "FitAddon", js_namespace = FitAddon)]
    fn new() -> Fit;

    /// Resizes the terminal to fill its container.
    #[wasm_bindgen(method, catch)]
    fn fit(this: &Fit) -> Result<(), JsValue>;

    /// The size `fit` would apply; `undefined` while the container is not laid out.
    #[wasm_bindgen(method, js_name = proposeDimensions)]
    fn propose_dimensions(this: &Fit) -> JsValue;
}

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

/// A terminal with its fit addon loaded.
#[derive(Clone)]
pub struct Xterm {
    /// The terminal.
    pub term: Terminal,
    fit: Fit,
}

impl Xterm {
    /// A new terminal (not yet opened into an element).
    pub fn create() -> Xterm {
        let term = Terminal::new(&options());
        let fit = Fit::new();
        term.load_addon(&fit);
        Xterm { term, fit }
    }

    /// Fits the terminal to its container, when the container is laid out (a hidden tab
    /// is not: it fits when shown). True when it fitted.
    pub fn fit(&self) -> bool {
        if self.fit.propose_dimensions().is_undefined() {
            return false;
        }
        self.fit.fit().is_ok()
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
