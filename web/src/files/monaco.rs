//! wasm-bindgen bindings to the parts of Monaco the editor uses. Monaco comes from npm
//! (`monaco-editor`, its prebuilt `min/vs` copied as-is to `/monaco/vs` by Trunk) and is
//! loaded on first use, not with the page: [`load`] adds its AMD loader (`loader.js`), then
//! `require(['vs/editor/editor.main'])` sets `globalThis.monaco`. (The loader is not in
//! `index.html`: xterm's UMD bundles would see its `define` and stop setting globals.)
//!
//! Monaco runs its language services in web workers made from `blob:` URLs: the page's CSP
//! allows `worker-src blob:` for them, and `font-src data:` for its icon font.

use std::cell::RefCell;

use js_sys::{Array, Function, JsString, Object, Promise, Reflect};
use wasm_bindgen::JsCast as _;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::HtmlElement;

/// Where Trunk puts Monaco's `min/vs` (see `index.html`).
const VS_PATH: &str = "/monaco/vs";

/// The editor's theme: Monaco's dark one on the app's background.
const THEME: &str = "flint-dark";

#[wasm_bindgen]
extern "C" {
    /// A code editor (`monaco.editor.IStandaloneCodeEditor`).
    #[derive(Clone)]
    pub type Editor;

    #[wasm_bindgen(js_namespace = ["monaco", "editor"], js_name = create)]
    fn create_editor(element: &HtmlElement, options: &JsValue) -> Editor;

    #[wasm_bindgen(js_namespace = ["monaco", "editor"], js_name = createModel)]
    fn create_model(value: &str, language: &str) -> Model;

    #[wasm_bindgen(js_namespace = ["monaco", "editor"], js_name = setModelLanguage)]
    fn set_model_language(model: &Model, language: &str);

    #[wasm_bindgen(js_namespace = ["monaco", "editor"], js_name = defineTheme)]
    fn define_theme(name: &str, theme: &JsValue);

    /// Shows `model` (or nothing, given `null`).
    #[wasm_bindgen(method, js_name = setModel)]
    fn set_model_js(this: &Editor, model: &JsValue);

    /// Cursor, selection and scroll, to put back with [`Editor::restore_view_state`].
    #[wasm_bindgen(method, js_name = saveViewState)]
    pub fn save_view_state(this: &Editor) -> JsValue;

    /// Puts back what [`Editor::save_view_state`] gave.
    #[wasm_bindgen(method, js_name = restoreViewState)]
    pub fn restore_view_state(this: &Editor, state: &JsValue);

    /// Gives the editor the keyboard.
    #[wasm_bindgen(method)]
    pub fn focus(this: &Editor);

    /// Tears the editor down (its models stay).
    #[wasm_bindgen(method)]
    pub fn dispose(this: &Editor);

    /// A text model (`monaco.editor.ITextModel`): one per open file, with its undo stack.
    #[derive(Clone)]
    pub type Model;

    /// The text, as a JS string (a save sends it as is, without a copy into wasm).
    #[wasm_bindgen(method, js_name = getValue)]
    pub fn value(this: &Model) -> JsString;

    /// Replaces the text (a reload).
    #[wasm_bindgen(method, js_name = setValue)]
    pub fn set_value(this: &Model, text: &str);

    /// An id of the text's state that comes back when an edit is undone: equal to the id
    /// at the last save means "no unsaved changes".
    #[wasm_bindgen(method, js_name = getAlternativeVersionId)]
    pub fn version(this: &Model) -> u32;

    /// Every change of the text.
    #[wasm_bindgen(method, js_name = onDidChangeContent)]
    pub fn on_did_change_content(this: &Model, listener: &Closure<dyn FnMut(JsValue)>) -> Listener;

    /// Frees the model.
    #[wasm_bindgen(method)]
    pub fn dispose(this: &Model);

    /// A listener registration.
    pub type Listener;

    /// Removes the listener.
    #[wasm_bindgen(method)]
    pub fn dispose(this: &Listener);
}

impl Editor {
    /// Shows `model`.
    pub fn set_model(&self, model: &Model) {
        self.set_model_js(model);
    }
}

/// A new model holding `text`, highlighted as `language` (a Monaco language id).
pub fn model(text: &str, language: &str) -> Model {
    create_model(text, language)
}

/// Changes a model's language (its file was renamed).
pub fn set_language(model: &Model, language: &str) {
    set_model_language(model, language);
}

thread_local! {
    /// Monaco being loaded, or loaded: one load per page.
    static LOADING: RefCell<Option<Promise>> = const { RefCell::new(None) };
}

/// Starts loading Monaco unless it is loading or loaded (while a file is read, say).
pub fn preload() {
    LOADING.with(|slot| {
        slot.borrow_mut().get_or_insert_with(start);
    });
}

/// Loads Monaco (once per page); an error says what failed.
pub async fn load() -> Result<(), String> {
    let promise = LOADING.with(|slot| slot.borrow_mut().get_or_insert_with(start).clone());
    match JsFuture::from(promise).await {
        Ok(_) => Ok(()),
        Err(error) => {
            // The next file opened tries again.
            LOADING.with(|slot| slot.borrow_mut().take());
            Err(format!("the editor (Monaco) did not load: {}", describe(&error)))
        }
    }
}

fn describe(error: &JsValue) -> String {
    if let Some(text) = error.as_string() {
        return text;
    }
    Reflect::get(error, &"message".into())
        .ok()
        .and_then(|m| m.as_string())
        .unwrap_or_else(|| "unknown error".to_owned())
}

/// Adds the loader's script, then requires the editor.
fn start() -> Promise {
    Promise::new(&mut |resolve: Function, reject: Function| {
        let document = leptos::prelude::document();
        let Ok(script) = document.create_element("script") else {
            let _ = reject.call1(&JsValue::NULL, &"cannot add a script".into());
            return;
        };
        let _ = script.set_attribute("src", &format!("{VS_PATH}/loader.js"));
        let failed = reject.clone();
        let onload = Closure::once_into_js(move || require_editor(resolve, reject));
        let onerror = Closure::once_into_js(move || {
            let _ = failed.call1(&JsValue::NULL, &format!("{VS_PATH}/loader.js failed").into());
        });
        let _ = Reflect::set(&script, &"onload".into(), &onload);
        let _ = Reflect::set(&script, &"onerror".into(), &onerror);
        if let Some(head) = document.head() {
            let _ = head.append_child(&script);
        }
    })
}

/// `require.config({paths: {vs}})`, then `require(['vs/editor/editor.main'], ...)`.
fn require_editor(resolve: Function, reject: Function) {
    let global = js_sys::global();
    let require = Reflect::get(&global, &"require".into()).ok().and_then(|r| r.dyn_into().ok());
    let Some(require): Option<Function> = require else {
        let _ = reject.call1(&JsValue::NULL, &"loader.js defined no require".into());
        return;
    };
    let paths = Object::new();
    let _ = Reflect::set(&paths, &"vs".into(), &VS_PATH.into());
    let config = Object::new();
    let _ = Reflect::set(&config, &"paths".into(), &paths);
    if let Ok(configure) = Reflect::get(&require, &"config".into())
        && let Some(configure) = configure.dyn_ref::<Function>()
    {
        let _ = configure.call1(&require, &config);
    }
    let modules = Array::of1(&"vs/editor/editor.main".into());
    let loaded = Closure::once_into_js(move || {
        define_theme(THEME, &theme());
        let _ = resolve.call0(&JsValue::NULL);
    });
    let failed = Closure::once_into_js(move |error: JsValue| {
        let _ = reject.call1(&JsValue::NULL, &error);
    });
    let _ = require.call3(&JsValue::NULL, &modules, &loaded, &failed);
}

fn set(object: &Object, key: &str, value: impl Into<JsValue>) {
    let _ = Reflect::set(object, &key.into(), &value.into());
}

/// The app's dark background and borders on Monaco's `vs-dark`.
fn theme() -> JsValue {
    let colors = Object::new();
    for (key, value) in [
        ("editor.background", "#0d1117"),
        ("editorGutter.background", "#0d1117"),
        ("minimap.background", "#0d1117"),
        ("editorWidget.background", "#161b22"),
        ("editorWidget.border", "#2a313c"),
    ] {
        set(&colors, key, value);
    }
    let theme = Object::new();
    set(&theme, "base", "vs-dark");
    set(&theme, "inherit", true);
    set(&theme, "rules", Array::new());
    set(&theme, "colors", colors);
    theme.into()
}

/// A new editor in `element` (Monaco must be loaded), sized to it as it changes, and exposed
/// to tests as `window.__flintEditor`; `read_only` for a viewer, who may read but not type.
pub fn editor(element: &HtmlElement, read_only: bool) -> Editor {
    let options = Object::new();
    set(&options, "readOnly", read_only);
    if read_only {
        let message = Object::new();
        set(&message, "value", "You are a viewer in this session: files are read-only.");
        set(&options, "readOnlyMessage", message);
    }
    set(&options, "model", JsValue::NULL);
    set(&options, "theme", THEME);
    set(&options, "automaticLayout", true);
    set(
        &options,
        "fontFamily",
        "ui-monospace, 'JetBrains Mono', 'DejaVu Sans Mono', Menlo, monospace",
    );
    set(&options, "fontSize", 14);
    set(&options, "scrollBeyondLastLine", false);
    set(&options, "renderWhitespace", "selection");
    let editor = create_editor(element, &options);
    let _ = Reflect::set(&js_sys::global(), &"__flintEditor".into(), &editor);
    editor
}
