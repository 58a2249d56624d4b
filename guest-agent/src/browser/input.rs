//! Input events replayed on the active tab through the DevTools `Input` domain, and the
//! clicks and typing of the agent-facing operations.

use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::input::{
    DispatchKeyEventParams, DispatchKeyEventType, DispatchMouseEventParams, DispatchMouseEventType,
    InsertTextParams, MouseButton as CdpButton,
};
use chromiumoxide::cdp::browser_protocol::page::{
    GetNavigationHistoryParams, NavigateToHistoryEntryParams, ReloadParams,
};
use chromiumoxide::keys::USKEYBOARD_LAYOUT;
use proto::browser::{InputEvent, Modifiers, MouseButton, Viewport};

use super::cdp_error;
use super::chrome::{ActiveTab, Chrome};
use crate::error::{Error, Result};

/// Longest text one event inserts.
const MAX_TEXT_BYTES: usize = 64 << 10;

/// Replays one event on the active tab.
pub(crate) async fn replay(chrome: &Chrome, tab: &ActiveTab, event: InputEvent) -> Result<()> {
    let page = &tab.page;
    match event {
        InputEvent::MouseMove { x, y, modifiers } => {
            mouse(page, DispatchMouseEventType::MouseMoved, x, y, MouseButton::None, 0, modifiers)
                .await
        }
        InputEvent::MouseDown { x, y, button, click_count, modifiers } => {
            let kind = DispatchMouseEventType::MousePressed;
            mouse(page, kind, x, y, button, click_count, modifiers).await
        }
        InputEvent::MouseUp { x, y, button, click_count, modifiers } => {
            let kind = DispatchMouseEventType::MouseReleased;
            mouse(page, kind, x, y, button, click_count, modifiers).await
        }
        InputEvent::Click { x, y, button, click_count, modifiers } => {
            click_at(page, x, y, button, click_count, modifiers).await
        }
        InputEvent::Wheel { x, y, delta_x, delta_y, modifiers } => {
            check_point(x, y)?;
            if !delta_x.is_finite() || !delta_y.is_finite() {
                return Err(Error::bad_request("wheel deltas must be finite numbers"));
            }
            let mut params =
                DispatchMouseEventParams::new(DispatchMouseEventType::MouseWheel, x, y);
            params.delta_x = Some(delta_x);
            params.delta_y = Some(delta_y);
            params.modifiers = Some(bits(modifiers));
            execute(page, params, "scrolling").await
        }
        InputEvent::KeyDown { key, code, text, key_code, modifiers } => {
            let known = USKEYBOARD_LAYOUT.iter().find(|k| k.key == key);
            let text = text
                .or_else(|| known.and_then(|k| k.text).map(str::to_owned))
                .or_else(|| (key.chars().count() == 1).then(|| key.clone()));
            // A shortcut (Ctrl+A) types no text; a key with text is a `keyDown` that also
            // types it, one without (arrows) a `rawKeyDown`, as in a real browser.
            let text = text.filter(|_| !modifiers.ctrl && !modifiers.meta);
            let kind = if text.is_some() {
                DispatchKeyEventType::KeyDown
            } else {
                DispatchKeyEventType::RawKeyDown
            };
            let mut params = key_params(kind, &key, code, key_code, modifiers)?;
            params.unmodified_text.clone_from(&text);
            params.text = text;
            execute(page, params, "pressing a key").await
        }
        InputEvent::KeyUp { key, code, key_code, modifiers } => {
            let params = key_params(DispatchKeyEventType::KeyUp, &key, code, key_code, modifiers)?;
            execute(page, params, "releasing a key").await
        }
        InputEvent::Char { text, modifiers } => {
            check_text(&text)?;
            let mut params = DispatchKeyEventParams::new(DispatchKeyEventType::Char);
            params.text = Some(text);
            params.modifiers = Some(bits(modifiers));
            execute(page, params, "typing").await
        }
        InputEvent::InsertText { text } => insert_text(page, text).await,
        InputEvent::Back => history(page, -1).await,
        InputEvent::Forward => history(page, 1).await,
        InputEvent::Reload => execute(page, ReloadParams::default(), "reloading").await,
        InputEvent::Resize { width, height } => chrome.resize(Viewport { width, height }).await,
    }
}

/// Down and up at one point, after moving there (pages react to the hover).
pub(crate) async fn click_at(
    page: &Page,
    x: f64,
    y: f64,
    button: MouseButton,
    click_count: u32,
    modifiers: Modifiers,
) -> Result<()> {
    mouse(page, DispatchMouseEventType::MouseMoved, x, y, MouseButton::None, 0, modifiers).await?;
    mouse(page, DispatchMouseEventType::MousePressed, x, y, button, click_count, modifiers).await?;
    mouse(page, DispatchMouseEventType::MouseReleased, x, y, button, click_count, modifiers).await
}

/// Inserts text into the focused element, as a paste or an input method would.
pub(crate) async fn insert_text(page: &Page, text: String) -> Result<()> {
    check_text(&text)?;
    execute(page, InsertTextParams::new(text), "typing").await
}

async fn mouse(
    page: &Page,
    kind: DispatchMouseEventType,
    x: f64,
    y: f64,
    button: MouseButton,
    click_count: u32,
    modifiers: Modifiers,
) -> Result<()> {
    check_point(x, y)?;
    let mut params = DispatchMouseEventParams::new(kind, x, y);
    params.button = Some(cdp_button(button));
    params.click_count = Some(i64::from(click_count.min(3)));
    params.modifiers = Some(bits(modifiers));
    execute(page, params, "replaying the mouse").await
}

fn key_params(
    kind: DispatchKeyEventType,
    key: &str,
    code: Option<String>,
    key_code: Option<u32>,
    modifiers: Modifiers,
) -> Result<DispatchKeyEventParams> {
    if key.is_empty() || key.len() > 64 {
        return Err(Error::bad_request("a key name is 1 to 64 bytes"));
    }
    let known = USKEYBOARD_LAYOUT.iter().find(|k| k.key == key);
    let mut params = DispatchKeyEventParams::new(kind);
    params.key = Some(key.to_owned());
    params.code = code.or_else(|| known.map(|k| k.code.to_owned()));
    // Chromium acts on the virtual key code (Enter submits, Backspace deletes).
    params.windows_virtual_key_code = key_code.map(i64::from).or_else(|| known.map(|k| k.key_code));
    params.modifiers = Some(bits(modifiers));
    Ok(params)
}

/// Goes `step` entries through the tab's history.
async fn history(page: &Page, step: i64) -> Result<()> {
    let history = page
        .execute(GetNavigationHistoryParams::default())
        .await
        .map_err(|e| cdp_error("reading the history", e))?
        .result;
    let index = history.current_index + step;
    let entry = usize::try_from(index).ok().and_then(|i| history.entries.get(i));
    let Some(entry) = entry else {
        let direction = if step < 0 { "back" } else { "forward" };
        return Err(Error::not_found(format!("no page to go {direction} to")));
    };
    execute(page, NavigateToHistoryEntryParams::new(entry.id), "moving through the history").await
}

async fn execute<T: chromiumoxide::types::Command>(
    page: &Page,
    params: T,
    what: &str,
) -> Result<()> {
    page.execute(params).await.map_err(|e| cdp_error(what, e))?;
    Ok(())
}

fn check_point(x: f64, y: f64) -> Result<()> {
    let limit = f64::from(Viewport::MAX) * 4.0;
    if x.is_finite()
        && y.is_finite()
        && (-limit..=limit).contains(&x)
        && (-limit..=limit).contains(&y)
    {
        Ok(())
    } else {
        Err(Error::bad_request(format!("({x}, {y}) is not a point of the page")))
    }
}

fn check_text(text: &str) -> Result<()> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(Error::bad_request(format!(
            "text of {} bytes is over the limit of {MAX_TEXT_BYTES}",
            text.len()
        )));
    }
    Ok(())
}

/// DevTools modifier bits: Alt 1, Ctrl 2, Meta 4, Shift 8.
fn bits(modifiers: Modifiers) -> i64 {
    i64::from(modifiers.alt)
        | (i64::from(modifiers.ctrl) << 1)
        | (i64::from(modifiers.meta) << 2)
        | (i64::from(modifiers.shift) << 3)
}

fn cdp_button(button: MouseButton) -> CdpButton {
    match button {
        MouseButton::None => CdpButton::None,
        MouseButton::Left => CdpButton::Left,
        MouseButton::Middle => CdpButton::Middle,
        MouseButton::Right => CdpButton::Right,
        MouseButton::Back => CdpButton::Back,
        MouseButton::Forward => CdpButton::Forward,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modifier_bits_follow_devtools() {
        assert_eq!(bits(Modifiers::default()), 0);
        assert_eq!(bits(Modifiers { alt: true, ctrl: true, meta: true, shift: true }), 15);
        assert_eq!(bits(Modifiers { shift: true, ..Modifiers::default() }), 8);
    }

    #[test]
    fn named_keys_get_their_codes() {
        let enter =
            key_params(DispatchKeyEventType::KeyDown, "Enter", None, None, Modifiers::default())
                .expect("enter");
        assert_eq!(enter.windows_virtual_key_code, Some(13));
        assert_eq!(enter.code.as_deref(), Some("Enter"));
        assert!(
            key_params(DispatchKeyEventType::KeyUp, "", None, None, Modifiers::default()).is_err()
        );
    }

    #[test]
    fn points_must_be_finite_and_near_the_page() {
        assert!(check_point(10.0, 20.0).is_ok());
        assert!(check_point(f64::NAN, 1.0).is_err());
        assert!(check_point(1.0, 1e9).is_err());
    }
}
