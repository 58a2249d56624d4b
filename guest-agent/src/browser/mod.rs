//! The shared browser: one headless Chromium per agent, driven over DevTools
//! (`chromiumoxide`), started by the first browser call and again after it died.
//!
//! A person watches it through the screencast ([`screencast`]) and drives it with input
//! events ([`input`]); an AI agent uses the operations here (navigate, click, type,
//! screenshot, text, console). Both act on the **active tab**.
//!
//! Chromium's DevTools endpoint listens on loopback only; its port is hidden from the port
//! watcher and refused by the tunnel, so nothing outside the agent ever reaches it.

mod chrome;
mod console;
mod input;
mod screencast;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::page::{
    CaptureScreenshotFormat, CaptureScreenshotParams, NavigateParams,
};
use chromiumoxide::cdp::js_protocol::runtime::EvaluateParams;
use chromiumoxide::error::CdpError;
use http::{Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use proto::browser::{
    BrowserStatus, Click, ConsoleLog, ConsoleQuery, DEFAULT_NAVIGATE_WAIT_MS, InputDone,
    InputEvent, MAX_NAVIGATE_WAIT_MS, MAX_TEXT_CHARS, Modifiers, MouseButton, Navigate, NewTab,
    PageText, ScreencastQuery, TabId, TabInfo, TypeText, Viewport,
};
use proto::error::ErrorCode;
use serde::Deserialize;
use serde::de::DeserializeOwned;

pub(crate) use self::chrome::SharedBrowser;
use self::chrome::{ActiveTab, Chrome};
use crate::error::{Error, Result};
use crate::http::{Body, json, query, read_json, streaming};
use crate::server::Agent;

/// Longest URL accepted.
const MAX_URL_BYTES: usize = 8 << 10;

/// The error of a browser that cannot run.
fn unavailable(message: impl Into<String>) -> Error {
    Error::api(ErrorCode::BrowserUnavailable, message)
}

/// Maps a DevTools failure while doing `what` to the agent's error.
fn cdp_error(what: &str, err: CdpError) -> Error {
    match err {
        CdpError::Timeout => {
            Error::api(ErrorCode::Timeout, format!("{what}: the browser did not answer in time"))
        }
        CdpError::Ws(_)
        | CdpError::ChannelSendError(_)
        | CdpError::NoResponse
        | CdpError::LaunchExit(..)
        | CdpError::LaunchTimeout(_)
        | CdpError::LaunchIo(..) => unavailable(format!("{what}: the browser went away ({err})")),
        CdpError::NotFound => Error::not_found(format!("{what}: not found")),
        other => Error::api(ErrorCode::Internal, format!("{what}: {other}")),
    }
}

/// Evaluates `expression` in the page and returns its value (promises awaited).
async fn evaluate<T: DeserializeOwned>(page: &Page, expression: String, what: &str) -> Result<T> {
    let mut params = EvaluateParams::new(expression);
    params.return_by_value = Some(true);
    params.await_promise = Some(true);
    let returns = page.execute(params).await.map_err(|e| cdp_error(what, e))?.result;
    if let Some(exception) = returns.exception_details {
        let text = exception.exception.and_then(|e| e.description).unwrap_or(exception.text);
        return Err(Error::api(ErrorCode::Internal, format!("{what}: the page threw {text}")));
    }
    let value = returns.result.value.unwrap_or(serde_json::Value::Null);
    serde_json::from_value(value)
        .map_err(|e| Error::api(ErrorCode::Internal, format!("{what}: unexpected answer: {e}")))
}

/// The running browser and its active tab, starting either as needed.
async fn active(agent: &Agent) -> Result<(Arc<Chrome>, ActiveTab)> {
    let chrome = agent.browser.get().await?;
    let tab = chrome.active().await?;
    Ok((chrome, tab))
}

/// `GET /v1/browser/status`: never starts the browser.
pub async fn status(agent: &Arc<Agent>) -> Result<Response<Body>> {
    let Some(chrome) = agent.browser.running().await else {
        return json(&BrowserStatus {
            running: false,
            devtools_port: None,
            tabs: Vec::new(),
            active: None,
            viewport: Viewport::DEFAULT,
        });
    };
    let tabs = chrome.list().await?;
    json(&BrowserStatus {
        running: true,
        devtools_port: Some(chrome.devtools_port()),
        tabs: tabs.tabs,
        active: tabs.active,
        viewport: chrome.viewport(),
    })
}

/// `POST /v1/browser/navigate`
pub async fn navigate(agent: &Arc<Agent>, body: Incoming) -> Result<Response<Body>> {
    let request: Navigate = read_json(body).await?;
    let url = normalize_url(&request.url)?;
    let wait = request.wait_ms.unwrap_or(DEFAULT_NAVIGATE_WAIT_MS).min(MAX_NAVIGATE_WAIT_MS);
    let (chrome, tab) = active(agent).await?;
    go(&tab.page, url, wait).await?;
    json(&chrome.page_info(&tab).await?)
}

/// Loads `url` in `page` and waits up to `wait_ms` for its `load` event.
async fn go(page: &Page, url: String, wait_ms: u64) -> Result<()> {
    let loading = page.goto(NavigateParams::new(url.clone()));
    match tokio::time::timeout(Duration::from_millis(wait_ms), loading).await {
        Err(_) => Err(Error::api(
            ErrorCode::Timeout,
            format!("{url} did not finish loading in {wait_ms} ms; it goes on loading"),
        )),
        // `Page.navigate`'s `errorText`: net::ERR_CONNECTION_REFUSED and the like.
        Ok(Err(CdpError::ChromeMessage(reason))) => {
            Err(Error::api(ErrorCode::NavigationFailed, format!("loading {url}: {reason}")))
        }
        Ok(Err(e)) => Err(cdp_error(&format!("loading {url}"), e)),
        Ok(Ok(_)) => Ok(()),
    }
}

/// Checks a URL; one without a scheme (`localhost:3000/x`, `example.com`) is taken as
/// `http://`.
fn normalize_url(url: &str) -> Result<String> {
    let url = url.trim();
    if url.is_empty() || url.len() > MAX_URL_BYTES {
        return Err(Error::bad_request(format!("a url is 1 to {MAX_URL_BYTES} bytes")));
    }
    let scheme = url.split_once(':').map(|(scheme, _)| scheme.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("http" | "https" | "file" | "about" | "data") => Ok(url.to_owned()),
        Some("javascript") => Err(Error::bad_request("javascript: urls are not navigated to")),
        // `localhost:3000` parses as a scheme `localhost`: a host with a port.
        _ if !url.contains("://") => Ok(format!("http://{url}")),
        Some(other) => Err(Error::bad_request(format!("unsupported url scheme {other}:"))),
        None => Ok(format!("http://{url}")),
    }
}

/// Where an element is, after scrolling it into view.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case", tag = "found")]
enum Located {
    Yes { x: f64, y: f64, width: f64, height: f64 },
    No,
    Invalid { error: String },
}

/// Scrolls the element `selector` matches into view and returns its centre.
async fn locate(page: &Page, selector: &str) -> Result<(f64, f64)> {
    if selector.is_empty() || selector.len() > 4096 {
        return Err(Error::bad_request("a selector is 1 to 4096 bytes"));
    }
    let quoted = serde_json::to_string(selector)
        .map_err(|e| Error::bad_request(format!("selector: {e}")))?;
    let script = format!(
        r#"(() => {{
            let element;
            try {{ element = document.querySelector({quoted}); }}
            catch (e) {{ return {{ found: "invalid", error: String(e && e.message || e) }}; }}
            if (!element) return {{ found: "no" }};
            element.scrollIntoView({{ block: "center", inline: "center" }});
            const r = element.getBoundingClientRect();
            return {{ found: "yes", x: r.left + r.width / 2, y: r.top + r.height / 2,
                      width: r.width, height: r.height }};
        }})()"#
    );
    match evaluate::<Located>(page, script, "finding the element").await? {
        Located::Yes { x, y, width, height } => {
            if width <= 0.0 || height <= 0.0 {
                return Err(Error::api(
                    ErrorCode::NotFound,
                    format!("the element {selector} is not visible (it has no size)"),
                ));
            }
            Ok((x, y))
        }
        Located::No => Err(Error::not_found(format!("no element matches {selector}"))),
        Located::Invalid { error } => {
            Err(Error::bad_request(format!("invalid selector {selector}: {error}")))
        }
    }
}

/// `POST /v1/browser/click`
pub async fn click(agent: &Arc<Agent>, body: Incoming) -> Result<Response<Body>> {
    let request: Click = read_json(body).await?;
    let point = match (&request.selector, request.x, request.y) {
        (Some(_), None, None) => None,
        (None, Some(x), Some(y)) => Some((x, y)),
        _ => {
            return Err(Error::bad_request("click takes either a selector or both x and y"));
        }
    };
    let (chrome, tab) = active(agent).await?;
    let (x, y) = match (point, &request.selector) {
        (Some(point), _) => point,
        (None, Some(selector)) => locate(&tab.page, selector).await?,
        (None, None) => return Err(Error::bad_request("click takes a selector or a point")),
    };
    input::click_at(&tab.page, x, y, MouseButton::Left, 1, Modifiers::default()).await?;
    json(&chrome.page_info(&tab).await?)
}

/// `POST /v1/browser/type`
pub async fn type_text(agent: &Arc<Agent>, body: Incoming) -> Result<Response<Body>> {
    let request: TypeText = read_json(body).await?;
    let (chrome, tab) = active(agent).await?;
    if let Some(selector) = &request.selector {
        let (x, y) = locate(&tab.page, selector).await?;
        input::click_at(&tab.page, x, y, MouseButton::Left, 1, Modifiers::default()).await?;
        // The click put the caret where it landed: type after what the field holds.
        let quoted = serde_json::to_string(selector)
            .map_err(|e| Error::bad_request(format!("selector: {e}")))?;
        let to_end = format!(
            r#"(() => {{
                const e = document.querySelector({quoted});
                if (e && document.activeElement === e && typeof e.value === "string") {{
                    try {{ e.setSelectionRange(e.value.length, e.value.length); }} catch (_) {{}}
                }}
                return null;
            }})()"#
        );
        evaluate::<serde_json::Value>(&tab.page, to_end, "moving the caret").await?;
    }
    input::insert_text(&tab.page, request.text).await?;
    json(&chrome.page_info(&tab).await?)
}

/// `GET /v1/browser/screenshot`: a PNG of the active tab's viewport.
pub async fn screenshot(agent: &Arc<Agent>) -> Result<Response<Body>> {
    let (_chrome, tab) = active(agent).await?;
    let params = CaptureScreenshotParams {
        format: Some(CaptureScreenshotFormat::Png),
        ..CaptureScreenshotParams::default()
    };
    let shot =
        tab.page.execute(params).await.map_err(|e| cdp_error("taking a screenshot", e))?.result;
    let encoded: &str = shot.data.as_ref();
    let png = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| Error::api(ErrorCode::Internal, format!("screenshot is not base64: {e}")))?;
    let mut response =
        Response::new(Full::new(bytes::Bytes::from(png)).map_err(|never| match never {}).boxed());
    *response.status_mut() = StatusCode::OK;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, http::HeaderValue::from_static("image/png"));
    Ok(response)
}

#[derive(Deserialize)]
struct Visible {
    url: String,
    title: String,
    text: String,
}

/// `GET /v1/browser/text`
pub async fn text(agent: &Arc<Agent>) -> Result<Response<Body>> {
    let (_chrome, tab) = active(agent).await?;
    let script = format!(
        "({{ url: location.href, title: document.title, \
            text: (document.body ? document.body.innerText : '').slice(0, {}) }})",
        MAX_TEXT_CHARS + 1
    );
    let mut visible: Visible = evaluate(&tab.page, script, "reading the page's text").await?;
    let truncated = match visible.text.char_indices().nth(MAX_TEXT_CHARS) {
        Some((cut, _)) => {
            visible.text.truncate(cut);
            true
        }
        None => false,
    };
    json(&PageText {
        tab: tab.id,
        url: visible.url,
        title: visible.title,
        text: visible.text,
        truncated,
    })
}

/// `GET /v1/browser/console`
pub async fn console(agent: &Arc<Agent>, uri: &http::Uri) -> Result<Response<Body>> {
    let request: ConsoleQuery = query(uri)?;
    let chrome = agent.browser.get().await?;
    json(&ConsoleLog { messages: chrome.console.since(request.since) })
}

/// `GET /v1/browser/tabs`
pub async fn tabs(agent: &Arc<Agent>) -> Result<Response<Body>> {
    let chrome = agent.browser.get().await?;
    json(&chrome.list().await?)
}

/// `POST /v1/browser/tabs`: a new active tab, with its page loaded when a URL is given.
pub async fn new_tab(agent: &Arc<Agent>, body: Incoming) -> Result<Response<Body>> {
    let request: NewTab = read_json(body).await?;
    let url = request.url.as_deref().map(normalize_url).transpose()?;
    let chrome = agent.browser.get().await?;
    let tab = chrome.new_tab().await?;
    if let Some(url) = url {
        go(&tab.page, url, DEFAULT_NAVIGATE_WAIT_MS).await?;
    }
    let info = chrome.page_info(&tab).await?;
    json(&TabInfo { id: tab.id, url: info.url, title: info.title, active: true })
}

/// `DELETE /v1/browser/tabs/{tab}`
pub async fn close_tab(agent: &Arc<Agent>, id: TabId) -> Result<Response<Body>> {
    let chrome = agent.browser.get().await?;
    chrome.close(id).await?;
    json(&chrome.list().await?)
}

/// `POST /v1/browser/tabs/{tab}/activate`
pub async fn activate_tab(agent: &Arc<Agent>, id: TabId) -> Result<Response<Body>> {
    let chrome = agent.browser.get().await?;
    chrome.activate(id).await?;
    json(&chrome.list().await?)
}

/// `POST /v1/browser/input`
pub async fn input(agent: &Arc<Agent>, body: Incoming) -> Result<Response<Body>> {
    let event: InputEvent = read_json(body).await?;
    let (chrome, tab) = active(agent).await?;
    input::replay(&chrome, &tab, event).await?;
    json(&InputDone { tab: tab.id })
}

/// `GET /v1/browser/screencast`: frames of the active tab until the client goes away.
pub async fn screencast(agent: &Arc<Agent>, uri: &http::Uri) -> Result<Response<Body>> {
    let request: ScreencastQuery = query(uri)?;
    let settings = screencast::Settings::from_query(&request)?;
    // A tab to cast: the browser's first is opened now if need be.
    let (chrome, _tab) = active(agent).await?;
    let viewer = chrome.cast.join(settings);
    let (tx, response) = streaming(proto::FRAMES_CONTENT_TYPE, screencast::viewer_queue());
    tokio::spawn(viewer.pump(tx));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::normalize_url;

    #[test]
    fn urls_without_a_scheme_are_http() {
        let ok = |url: &str| normalize_url(url).expect(url);
        assert_eq!(ok("localhost:3000/x"), "http://localhost:3000/x");
        assert_eq!(ok("example.com"), "http://example.com");
        assert_eq!(ok(" https://a.b/c "), "https://a.b/c");
        assert_eq!(ok("about:blank"), "about:blank");
        assert_eq!(ok("data:text/html,hi"), "data:text/html,hi");
        assert!(normalize_url("javascript:alert(1)").is_err());
        assert!(normalize_url("ftp://x").is_err());
        assert!(normalize_url("").is_err());
    }
}
