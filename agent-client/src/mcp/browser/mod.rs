//! The shared browser's tools: navigate, click, type, screenshot, read the text, and tabs,
//! against the agent's browser routes. The person watching the session sees the same page
//! (its screencast), so these act on the tab they see: the active one.

mod args;

use base64::Engine as _;
use proto::browser::{Click, MAX_NAVIGATE_WAIT_MS, Navigate, NewTab, TabId, TabList, TypeText};
use proto::error::ErrorCode;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject};
use serde_json::{Value, json};

use self::args::{ClickArgs, NavigateArgs, TabAction, TabsArgs, TypeArgs};
pub(super) use self::args::{catalogue, summarize};
use super::args::{NoArgs, parse};
use super::{ToolError, ToolResult, structured};
use crate::client::Client;
use crate::error::Error;

/// Runs the browser tool `name`.
pub(super) async fn run(client: &Client, name: &str, args: &JsonObject) -> ToolResult {
    match name {
        "browser_navigate" => navigate(client, parse(args)?).await,
        "browser_click" => click(client, parse(args)?).await,
        "browser_type" => type_text(client, parse(args)?).await,
        "browser_screenshot" => {
            let _: NoArgs = parse(args)?;
            screenshot(client).await
        }
        "browser_text" => {
            let _: NoArgs = parse(args)?;
            text(client).await
        }
        "browser_tabs" => tabs(client, parse(args)?).await,
        other => Err(ToolError(format!("no tool {other:?}"))),
    }
}

/// What a browser call was doing when the agent refused it: the advice depends on it.
#[derive(Clone, Copy)]
enum Doing {
    /// Loading a page.
    Loading,
    /// Acting on an element or a point of the page.
    Acting,
    /// Working with the tabs.
    Tabs,
    /// Looking at the page.
    Looking,
}

/// The agent's error as the model reads it: its message, then what to do about it.
fn advise(doing: Doing, err: Error) -> ToolError {
    let Error::Api { code, message } = &err else { return ToolError::from(err) };
    let advice = match (code, doing) {
        (ErrorCode::BrowserUnavailable, _) => {
            "The shared browser needs Chromium in the session's image (the default image has \
             it); a browser that died starts again on the next call"
        }
        (ErrorCode::NavigationFailed, _) => {
            "The browser runs inside the sandbox: a server started in the session is at \
             http://127.0.0.1:PORT; check with list_ports that it listens and that the URL \
             is right"
        }
        (ErrorCode::Timeout, Doing::Loading) => {
            "The page goes on loading: look at it with browser_text or browser_screenshot, or \
             navigate again with a larger wait_ms (at most 120000)"
        }
        (ErrorCode::Timeout, _) => {
            "The page may be busy: try again, or look at it with browser_screenshot"
        }
        (ErrorCode::NotFound, Doing::Tabs) => {
            "Call browser_tabs with action \"list\" to see the open tabs"
        }
        (ErrorCode::NotFound, _) => {
            "Look at the page with browser_text or browser_screenshot, then use a CSS selector \
             that matches a visible element (#id, .class, button[type=submit], input[name=q]) \
             or click at x and y"
        }
        (ErrorCode::BadRequest, Doing::Acting) if message.contains("selector") => {
            "A selector is CSS, as document.querySelector takes it"
        }
        _ => return ToolError::from(err),
    };
    ToolError(format!("{message}. {advice}"))
}

async fn navigate(client: &Client, args: NavigateArgs) -> ToolResult {
    let wait_ms = args.wait_ms.map(|ms| ms.min(MAX_NAVIGATE_WAIT_MS));
    let request = Navigate { url: args.url, wait_ms };
    let page = client.browser_navigate(&request).await.map_err(|e| advise(Doing::Loading, e))?;
    structured(
        format!("loaded {}\ntitle: {}\ntab: {}", page.url, page.title, page.tab),
        json!({ "tab": page.tab, "url": page.url, "title": page.title }),
    )
}

async fn click(client: &Client, args: ClickArgs) -> ToolResult {
    let (request, what) = match (args.selector, args.x, args.y) {
        (Some(selector), None, None) => {
            let what = selector.clone();
            (Click { selector: Some(selector), x: None, y: None }, what)
        }
        (None, Some(x), Some(y)) => {
            (Click { selector: None, x: Some(x), y: Some(y) }, format!("the point {x}, {y}"))
        }
        (Some(_), _, _) => {
            return Err(ToolError(
                "give either selector or x and y, not both: a selector clicks the element's \
                 centre"
                    .to_owned(),
            ));
        }
        (None, _, _) => {
            return Err(ToolError(
                "give a CSS selector, or both x and y (viewport pixels, as on \
                 browser_screenshot)"
                    .to_owned(),
            ));
        }
    };
    let page = client.browser_click(&request).await.map_err(|e| advise(Doing::Acting, e))?;
    structured(
        format!("clicked {what}\nthe page: {} (title: {})", page.url, page.title),
        json!({ "tab": page.tab, "url": page.url, "title": page.title }),
    )
}

async fn type_text(client: &Client, args: TypeArgs) -> ToolResult {
    if args.text.is_empty() {
        return Err(ToolError("text is empty: nothing to type".to_owned()));
    }
    let chars = args.text.chars().count();
    let into = args.selector.clone().unwrap_or_else(|| "the focused element".to_owned());
    let request = TypeText { selector: args.selector, text: args.text };
    let page = client.browser_type(&request).await.map_err(|e| advise(Doing::Acting, e))?;
    structured(
        format!(
            "typed {chars} characters into {into}\nthe page: {} (title: {})",
            page.url, page.title
        ),
        json!({ "tab": page.tab, "url": page.url, "title": page.title }),
    )
}

/// Width and height from a PNG's header (its first chunk, IHDR).
fn png_size(png: &[u8]) -> Option<(u32, u32)> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if !png.starts_with(SIGNATURE) || png.get(12..16)? != b"IHDR" {
        return None;
    }
    let word = |at: usize| Some(u32::from_be_bytes(png.get(at..at + 4)?.try_into().ok()?));
    Some((word(16)?, word(20)?))
}

async fn screenshot(client: &Client) -> ToolResult {
    let png = client.browser_screenshot().await.map_err(|e| advise(Doing::Looking, e))?;
    let (width, height) = png_size(&png)
        .ok_or_else(|| ToolError("the browser's screenshot is not a PNG".to_owned()))?;
    // The screenshot started the browser if need be: its status names the active tab.
    let status = client.browser_status().await.map_err(|e| advise(Doing::Looking, e))?;
    let line = match status.tabs.iter().find(|t| Some(t.id) == status.active) {
        Some(tab) => format!(
            "screenshot of tab {}: {} (title: {}), {width}x{height} PNG",
            tab.id, tab.url, tab.title
        ),
        None => format!("screenshot, {width}x{height} PNG"),
    };
    let data = base64::engine::general_purpose::STANDARD.encode(&png);
    Ok(CallToolResult::success(vec![
        ContentBlock::text(line),
        ContentBlock::image(data, "image/png"),
    ]))
}

async fn text(client: &Client) -> ToolResult {
    let page = client.browser_text().await.map_err(|e| advise(Doing::Looking, e))?;
    let mut out = format!("title: {}\nurl: {}\n---\n{}", page.title, page.url, page.text);
    if page.truncated {
        out.push_str(&format!(
            "\n[text truncated: only the first {} characters are shown]",
            page.text.chars().count()
        ));
    }
    structured(
        out,
        json!({
            "tab": page.tab,
            "url": page.url,
            "title": page.title,
            "text": page.text,
            "truncated": page.truncated,
        }),
    )
}

async fn tabs(client: &Client, args: TabsArgs) -> ToolResult {
    let tab = || -> Result<TabId, ToolError> {
        let id = args.tab.ok_or_else(|| {
            ToolError(
                "give the tab's id as `tab` (browser_tabs with action \"list\" lists them)"
                    .to_owned(),
            )
        })?;
        if id == 0 {
            return Err(ToolError("0 is not a tab id: ids start at 1".to_owned()));
        }
        Ok(TabId(id))
    };
    if args.url.is_some() && args.action != TabAction::New {
        return Err(ToolError(
            "url is for action \"new\"; to load a page in the active tab use browser_navigate"
                .to_owned(),
        ));
    }
    if args.tab.is_some() && matches!(args.action, TabAction::List | TabAction::New) {
        return Err(ToolError("tab is for actions \"close\" and \"activate\"".to_owned()));
    }
    let fail = |e| advise(Doing::Tabs, e);
    let (done, list) = match args.action {
        TabAction::List => {
            // The status never starts the browser just to say it has no tabs.
            let status = client.browser_status().await.map_err(fail)?;
            (String::new(), TabList { tabs: status.tabs, active: status.active })
        }
        TabAction::New => {
            let request = NewTab { url: args.url };
            let opened = client.browser_new_tab(&request).await.map_err(|e| match e {
                Error::Api { code: ErrorCode::NavigationFailed | ErrorCode::Timeout, .. } => {
                    let ToolError(message) = advise(Doing::Loading, e);
                    ToolError(format!("{message} (the new tab stays open and active)"))
                }
                other => fail(other),
            })?;
            let list = client.browser_tabs().await.map_err(fail)?;
            (format!("opened tab {}: {}\n", opened.id, opened.url), list)
        }
        TabAction::Close => {
            let id = tab()?;
            (format!("closed tab {id}\n"), client.browser_close_tab(id).await.map_err(fail)?)
        }
        TabAction::Activate => {
            let id = tab()?;
            (format!("tab {id} is active\n"), client.browser_activate_tab(id).await.map_err(fail)?)
        }
    };
    let mut out = done;
    if list.tabs.is_empty() {
        out.push_str("no tabs are open (browser_navigate opens one)\n");
    } else {
        let count = list.tabs.len();
        let plural = if count == 1 { "" } else { "s" };
        out.push_str(&format!("{count} tab{plural} open (* marks the active one):\n"));
        for tab in &list.tabs {
            let mark = if tab.active { '*' } else { ' ' };
            out.push_str(&format!("{mark} {} {} (title: {})\n", tab.id, tab.url, tab.title));
        }
    }
    let tabs: Vec<Value> = list
        .tabs
        .iter()
        .map(|t| json!({ "id": t.id, "url": t.url, "title": t.title, "active": t.active }))
        .collect();
    structured(out, json!({ "tabs": tabs, "active": list.active }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_sizes_come_from_the_header() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend(1280u32.to_be_bytes());
        png.extend(800u32.to_be_bytes());
        assert_eq!(png_size(&png), Some((1280, 800)));
        assert_eq!(png_size(&png[..20]), None);
        assert_eq!(png_size(b"GIF89a"), None);
    }

    #[test]
    fn browser_errors_carry_advice() {
        let missing = Error::not_found("no element matches #nope");
        let ToolError(message) = advise(Doing::Acting, missing);
        assert!(message.starts_with("no element matches #nope. "), "{message}");
        assert!(message.contains("browser_text"), "{message}");
        let refused =
            Error::api(ErrorCode::NavigationFailed, "loading x: net::ERR_CONNECTION_REFUSED");
        let ToolError(message) = advise(Doing::Loading, refused);
        assert!(message.contains("http://127.0.0.1:PORT"), "{message}");
        let ToolError(message) = advise(Doing::Tabs, Error::not_found("no tab 9"));
        assert!(message.contains("\"list\""), "{message}");
    }
}
