//! The browser tools' arguments (their JSON schemas), descriptions and audit summaries.

use rmcp::model::{JsonObject, Tool};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::mcp::args::{NoArgs, tool};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NavigateArgs {
    /// Where to go: http(s)://, file://, about: or data: (without a scheme, http:// is
    /// assumed). A server in the session is at http://127.0.0.1:PORT: the browser runs in
    /// the sandbox.
    pub(super) url: String,
    /// How long to wait for the page's load event, in milliseconds (default 30000, at most
    /// 120000). The page goes on loading after that.
    pub(super) wait_ms: Option<u64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ClickArgs {
    /// CSS selector of the element to click (its centre, after scrolling it into view), e.g.
    /// `#submit`, `button[type=submit]`, `a[href="/login"]`. Give this or x and y.
    pub(super) selector: Option<String>,
    /// Horizontal position in CSS pixels of the viewport (1280x800 unless a person resized
    /// it), as on browser_screenshot. With y, instead of a selector.
    pub(super) x: Option<f64>,
    /// Vertical position in CSS pixels of the viewport. With x, instead of a selector.
    pub(super) y: Option<f64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct TypeArgs {
    /// The text, inserted as if pasted (no key names: `\n` is a newline, not Enter).
    pub(super) text: String,
    /// CSS selector of the field to type into: it is clicked first and the text goes after
    /// what it holds. Default: the focused element.
    pub(super) selector: Option<String>,
}

/// What `browser_tabs` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum TabAction {
    List,
    New,
    Close,
    Activate,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct TabsArgs {
    /// list: the open tabs; new: open a tab (with `url`, loaded) and make it active; close:
    /// close tab `tab`; activate: make tab `tab` the one every browser tool and the person's
    /// view act on.
    pub(super) action: TabAction,
    /// The tab's id, as listed (for close and activate).
    pub(super) tab: Option<u32>,
    /// The new tab's first page (for new; default about:blank).
    pub(super) url: Option<String>,
}

/// The browser tools, in the catalogue's order.
pub(in crate::mcp) fn catalogue() -> Vec<Tool> {
    vec![
        tool::<NavigateArgs>(
            "browser_navigate",
            "Load a URL in the session's shared browser (headless Chromium, watched live by the \
             person) and wait for the page to load; returns its URL and title. The browser runs \
             inside the sandbox: a server started in the session is at http://127.0.0.1:PORT \
             (list_ports shows the ports), not at its preview URL. Acts on the active tab \
             (browser_tabs to open or switch tabs). Then use browser_text or browser_screenshot \
             to see the page.",
        ),
        tool::<ClickArgs>(
            "browser_click",
            "Click in the shared browser's active tab: the element a CSS selector matches (give \
             `selector`), or a point of the viewport (give `x` and `y`, in the pixels of \
             browser_screenshot). Returns the page's URL and title afterwards; check the effect \
             with browser_text or browser_screenshot.",
        ),
        tool::<TypeArgs>(
            "browser_type",
            "Type text in the shared browser's active tab: into the field a CSS selector \
             matches (clicked first; the text goes after what it holds) or the focused element. \
             For a form: browser_type into each field, then browser_click its submit button.",
        ),
        tool::<NoArgs>(
            "browser_screenshot",
            "A PNG screenshot of the shared browser's active tab as the person sees it (the \
             viewport, 1280x800 unless resized), with its URL and title. Use it to check \
             layout and visual state; browser_text is cheaper for reading content.",
        ),
        tool::<NoArgs>(
            "browser_text",
            "The visible text of the shared browser's active tab (what a reader sees, without \
             markup), with its URL and title. The way to read a page, check a click's effect \
             or find what to click.",
        ),
        tool::<TabsArgs>(
            "browser_tabs",
            "The shared browser's tabs: action \"list\" lists them, \"new\" opens one (loading \
             `url` if given) and makes it active, \"close\" closes tab `tab`, \"activate\" makes \
             tab `tab` the active one (the tab every browser tool and the person's view use). \
             Always answers with the tabs afterwards, the active one marked.",
        ),
    ]
}

/// A line saying what a browser call was asked to do, for the audit log. Typed text is
/// counted, never shown: it may be a password.
pub(in crate::mcp) fn summarize(name: &str, args: &JsonObject) -> String {
    let field = |name: &str| args.get(name).and_then(Value::as_str).map(str::to_owned);
    let number = |name: &str| args.get(name).map(Value::to_string).unwrap_or_default();
    match name {
        "browser_navigate" => field("url").unwrap_or_default(),
        "browser_click" => {
            field("selector").unwrap_or_else(|| format!("at {}, {}", number("x"), number("y")))
        }
        "browser_type" => {
            let chars = args.get("text").and_then(Value::as_str).map_or(0, |t| t.chars().count());
            match field("selector") {
                Some(selector) => format!("{chars} characters into {selector}"),
                None => format!("{chars} characters"),
            }
        }
        "browser_tabs" => {
            let action = field("action").unwrap_or_default();
            match (field("url"), args.get("tab")) {
                (Some(url), _) => format!("{action} {url}"),
                (None, Some(tab)) => format!("{action} {tab}"),
                (None, None) => action,
            }
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn args(value: Value) -> JsonObject {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn summaries_count_typed_text_and_never_show_it() {
        let typed = summarize("browser_type", &args(json!({"text": "hunter2", "selector": "#pw"})));
        assert_eq!(typed, "7 characters into #pw");
        assert_eq!(summarize("browser_type", &args(json!({"text": "né"}))), "2 characters");
        assert_eq!(
            summarize("browser_navigate", &args(json!({"url": "http://127.0.0.1:8000/"}))),
            "http://127.0.0.1:8000/"
        );
        assert_eq!(summarize("browser_click", &args(json!({"selector": "#go"}))), "#go");
        assert_eq!(summarize("browser_click", &args(json!({"x": 10, "y": 20.5}))), "at 10, 20.5");
        assert_eq!(
            summarize("browser_tabs", &args(json!({"action": "close", "tab": 2}))),
            "close 2"
        );
        assert_eq!(
            summarize("browser_tabs", &args(json!({"action": "new", "url": "about:blank"}))),
            "new about:blank"
        );
        assert_eq!(summarize("browser_screenshot", &args(json!({}))), "");
    }
}
