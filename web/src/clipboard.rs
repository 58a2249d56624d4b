//! Copying text for people: the clipboard where the page may write to it, else the text is
//! selected for a manual Ctrl+C. Used by "Connect an agent", the Share dialog and the Ports
//! panel.

use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;

/// How long a copy button says what happened before it reads "Copy" again.
const COPIED_SHOWN: Duration = Duration::from_secs(3);

/// What a copy button says.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Copied {
    /// Nothing copied lately.
    Not,
    /// On the clipboard.
    Yes,
    /// The clipboard refused (e.g. a page not served over HTTPS): the text is selected.
    Selected,
}

impl Copied {
    /// The button's label.
    pub fn label(self) -> &'static str {
        match self {
            Copied::Not => "Copy",
            Copied::Yes => "Copied",
            Copied::Selected => "Selected: press Ctrl+C",
        }
    }
}

/// Copies `text`, selecting `fallback`'s text when the clipboard refuses, and shows the
/// outcome in `copied` for a few seconds.
pub fn copy(text: String, fallback: Option<web_sys::HtmlElement>, copied: RwSignal<Copied>) {
    spawn_local(async move {
        let outcome = if write_clipboard(&text).await.is_ok() {
            Copied::Yes
        } else {
            if let Some(element) = &fallback {
                select_contents(element);
            }
            Copied::Selected
        };
        copied.try_set(outcome);
        set_timeout(
            move || {
                copied.try_set(Copied::Not);
            },
            COPIED_SHOWN,
        );
    });
}

/// Writes `text` to the clipboard; fails where the page may not (insecure origins).
async fn write_clipboard(text: &str) -> Result<(), String> {
    let navigator = window().navigator();
    // `navigator.clipboard` is undefined outside secure contexts: check before calling.
    let present = js_sys::Reflect::get(&navigator, &"clipboard".into())
        .is_ok_and(|clipboard| !clipboard.is_undefined());
    if !present {
        return Err("no clipboard".to_owned());
    }
    let promise = navigator.clipboard().write_text(text);
    wasm_bindgen_futures::JsFuture::from(promise).await.map(drop).map_err(|_| "refused".to_owned())
}

/// Selects an element's text, for a manual copy.
fn select_contents(element: &web_sys::HtmlElement) {
    if let Ok(Some(selection)) = window().get_selection() {
        let _ = selection.select_all_children(element.unchecked_ref());
    }
}

/// A labelled block of text (`testid`) with a copy button (`copy_testid`).
#[component]
pub fn Snippet(
    label: &'static str,
    testid: &'static str,
    copy_testid: &'static str,
    text: String,
) -> impl IntoView {
    let block = NodeRef::<leptos::html::Pre>::new();
    let copied = RwSignal::new(Copied::Not);
    let text = StoredValue::new(text);
    let on_copy = move |_| {
        let fallback = block.get_untracked().map(|block| block.into());
        copy(text.get_value(), fallback, copied);
    };
    view! {
        <div class="snippet">
            <div class="snippet-head">
                <span>{label}</span>
                <button type="button" class="button small" data-testid=copy_testid on:click=on_copy>
                    {move || copied.get().label()}
                </button>
            </div>
            <pre class="snippet-text" data-testid=testid node_ref=block>
                {text.get_value()}
            </pre>
        </div>
    }
}
