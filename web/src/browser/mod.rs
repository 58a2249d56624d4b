//! The Browser panel: the session's shared headless Chromium, live. A URL bar with back,
//! forward and reload, the tabs, who drove the page last (a person or an agent), and the page
//! itself on a canvas that takes the mouse and, once clicked, the keyboard. The browser's
//! viewport follows the panel's size.
//!
//! Inside the sandbox, a server listening on a port is at `http://127.0.0.1:PORT`: the Ports
//! panel's "Open in the shared browser" goes there.

mod conn;
pub mod geometry;

use leptos::html::{Canvas, Div, Input};
use leptos::prelude::*;
use proto::api::SessionState;
use proto::browser::{BrowserClientMessage, InputEvent, TabId};
use wasm_bindgen::prelude::*;
use web_sys::{KeyboardEvent, MouseEvent, ResizeObserver, WheelEvent};

use self::conn::{BrowserConn, BrowserSignals};
use self::geometry::{Fit, button, driver_text, forwarded_key, modifiers, viewport_for};
use crate::auth::{Auth, AuthState};
use crate::events::SessionStore;
use crate::socket::Link;
use crate::workspace::shortcut;

/// Wait after the panel's last size change before the browser's viewport follows.
const RESIZE_SETTLE_MS: u64 = 150;

/// Least time between two pointer moves sent while no button is held.
const MOVE_EVERY_MS: f64 = 50.0;

/// Pixels a wheel "line" scrolls (`WheelEvent.deltaMode` 1).
const LINE_PIXELS: f64 = 40.0;

/// The panel of `session`.
#[component]
pub fn BrowserPanel(session: String) -> impl IntoView {
    let store = expect_context::<SessionStore>();
    let auth = expect_context::<AuthState>();
    let signals = BrowserSignals::connecting();
    let canvas = NodeRef::<Canvas>::new();
    let view_box = NodeRef::<Div>::new();
    let url_input = NodeRef::<Input>::new();
    let conn = StoredValue::new_local(None::<BrowserConn>);
    let observer = StoredValue::new_local(None::<(ResizeObserver, Closure<dyn FnMut()>)>);
    let settle = StoredValue::new_local(None::<TimeoutHandle>);
    let last_move = StoredValue::new(0.0_f64);
    let session = StoredValue::new(session);
    // A viewer watches: no buttons that drive (the server refuses a viewer's driving).
    let can_drive = use_context::<crate::workspace::Workspace>().is_none_or(|w| w.can_edit);

    // Mount: connect, and follow the panel's size.
    Effect::new(move |_| {
        let (Some(element), Some(area)) = (canvas.get(), view_box.get()) else { return };
        if conn.with_value(Option::is_some) {
            return;
        }
        let id = session.get_value();
        let give_up = Box::new(move || {
            let state = store.session_untracked(&id).map(|s| s.state);
            match state {
                Some(SessionState::Running | SessionState::Degraded | SessionState::Creating)
                | None => None,
                Some(state) => Some(format!("the session is {}", state.as_str())),
            }
        });
        let opened = BrowserConn::open(&session.get_value(), element, signals, give_up);
        conn.set_value(Some(opened));
        let follow = {
            let area = area.clone();
            move || {
                if let Some(handle) = settle.try_update_value(Option::take).flatten() {
                    handle.clear();
                }
                let area = area.clone();
                let handle = set_timeout_with_handle(
                    move || {
                        let size = viewport_for(
                            f64::from(area.client_width()),
                            f64::from(area.client_height()),
                        );
                        if let (Some(size), Some(conn)) = (size, conn.try_get_value().flatten()) {
                            conn.resize(size);
                        }
                    },
                    std::time::Duration::from_millis(RESIZE_SETTLE_MS),
                );
                settle.set_value(handle.ok());
            }
        };
        follow();
        let follow = Closure::<dyn FnMut()>::new(follow);
        if let Ok(resize) = ResizeObserver::new(follow.as_ref().unchecked_ref()) {
            resize.observe(&area);
            observer.set_value(Some((resize, follow)));
        }
    });
    on_cleanup(move || {
        if let Some((resize, _follow)) = observer.try_update_value(Option::take).flatten() {
            resize.disconnect();
        }
        if let Some(handle) = settle.try_update_value(Option::take).flatten() {
            handle.clear();
        }
        if let Some(conn) = conn.try_update_value(Option::take).flatten() {
            conn.close();
        }
    });

    let send = move |message: BrowserClientMessage| {
        if let Some(conn) = conn.with_value(Clone::clone) {
            conn.send(&message);
        }
    };
    // A viewer's pointer and keys drive nothing (the server would refuse them with an error).
    let input = move |event: InputEvent| {
        if can_drive {
            send(BrowserClientMessage::Input { event });
        }
    };
    // The page point under a mouse event, once a frame said the page's size.
    let point = move |event: &MouseEvent| -> Option<(f64, f64)> {
        let element = canvas.get_untracked()?;
        let (width, height) = conn.with_value(|c| c.as_ref().and_then(BrowserConn::page))?;
        let rect = element.get_bounding_client_rect();
        let (width, height) = (f64::from(width), f64::from(height));
        let fit = Fit::contain(rect.width(), rect.height(), width, height)?;
        let x = f64::from(event.client_x()) - rect.left();
        let y = f64::from(event.client_y()) - rect.top();
        Some(fit.to_page(x, y, width, height))
    };
    let held = |event: &MouseEvent| {
        modifiers(event.alt_key(), event.ctrl_key(), event.meta_key(), event.shift_key())
    };
    let on_down = move |event: MouseEvent| {
        if let Some(element) = canvas.get_untracked() {
            let _ = element.focus();
        }
        let Some((x, y)) = point(&event) else { return };
        event.prevent_default();
        let click_count = u32::try_from(event.detail()).unwrap_or(1).max(1);
        input(InputEvent::MouseDown {
            x,
            y,
            button: button(event.button()),
            click_count,
            modifiers: held(&event),
        });
    };
    let on_up = move |event: MouseEvent| {
        let Some((x, y)) = point(&event) else { return };
        let click_count = u32::try_from(event.detail()).unwrap_or(1).max(1);
        input(InputEvent::MouseUp {
            x,
            y,
            button: button(event.button()),
            click_count,
            modifiers: held(&event),
        });
    };
    let on_move = move |event: MouseEvent| {
        let now = js_sys::Date::now();
        // A drag sends every move; hovering, a few per second.
        if event.buttons() == 0 && now - last_move.get_value() < MOVE_EVERY_MS {
            return;
        }
        last_move.set_value(now);
        let Some((x, y)) = point(&event) else { return };
        input(InputEvent::MouseMove { x, y, modifiers: held(&event) });
    };
    let on_wheel = move |event: WheelEvent| {
        let Some((x, y)) = point(&event) else { return };
        event.prevent_default();
        let unit = if event.delta_mode() == 1 { LINE_PIXELS } else { 1.0 };
        input(InputEvent::Wheel {
            x,
            y,
            delta_x: event.delta_x() * unit,
            delta_y: event.delta_y() * unit,
            modifiers: held(&event),
        });
    };
    let key_mods = |event: &KeyboardEvent| {
        modifiers(event.alt_key(), event.ctrl_key(), event.meta_key(), event.shift_key())
    };
    let on_key_down = move |event: KeyboardEvent| {
        let key = event.key();
        // The workspace's shortcuts and pasting stay the outer browser's.
        let pasting = (event.ctrl_key() || event.meta_key()) && key.eq_ignore_ascii_case("v");
        if shortcut(&event).is_some() || pasting || !forwarded_key(&key) {
            return;
        }
        event.prevent_default();
        input(InputEvent::KeyDown {
            key,
            code: Some(event.code()).filter(|c| !c.is_empty()),
            text: None,
            key_code: None,
            modifiers: key_mods(&event),
        });
    };
    let on_key_up = move |event: KeyboardEvent| {
        let key = event.key();
        if shortcut(&event).is_some() || !forwarded_key(&key) {
            return;
        }
        event.prevent_default();
        input(InputEvent::KeyUp {
            key,
            code: Some(event.code()).filter(|c| !c.is_empty()),
            key_code: None,
            modifiers: key_mods(&event),
        });
    };
    let on_paste = move |event: web_sys::ClipboardEvent| {
        let text = event.clipboard_data().and_then(|data| data.get_data("text/plain").ok());
        if let Some(text) = text.filter(|t| !t.is_empty()) {
            event.prevent_default();
            input(InputEvent::InsertText { text });
        }
    };

    // The URL bar shows the active tab's address unless someone is typing in it.
    let editing = RwSignal::new(false);
    Effect::new(move |_| {
        let url = signals.active_tab().map(|t| t.url).unwrap_or_default();
        if !editing.get_untracked()
            && let Some(field) = url_input.get()
        {
            field.set_value(&url);
        }
    });
    let go = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        if !can_drive {
            return;
        }
        let Some(field) = url_input.get_untracked() else { return };
        let url = field.value().trim().to_owned();
        if url.is_empty() {
            return;
        }
        signals.error.set(None);
        editing.set(false);
        let _ = field.blur();
        send(BrowserClientMessage::Navigate { url });
    };

    let me = move || match auth.0.get() {
        Auth::SignedIn(me) => Some(me.name),
        _ => None,
    };
    let driver = move || {
        let driver = signals.driver.get();
        let kind = driver.as_ref().map_or("none", |d| match d.kind {
            proto::browser::DriverKind::Person => "person",
            proto::browser::DriverKind::Agent => "agent",
        });
        let text = driver_text(driver.as_ref(), me().as_deref());
        view! {
            <span class=format!("browser-driver {kind}") data-testid="browser-driver" data-kind=kind>
                {text}
            </span>
        }
    };
    let overlay = move || {
        if let Some(why) = signals.ended.get() {
            return Some(
                view! {
                    <div class="browser-note" data-testid="browser-ended">
                        <span class="spinner"></span>
                        <span>{format!("The browser is starting again ({why})…")}</span>
                    </div>
                }
                .into_any(),
            );
        }
        let connecting = matches!(signals.link.get(), Link::Connecting | Link::Reconnecting { .. });
        (connecting || !signals.painted.get()).then(|| {
            view! {
                <div class="browser-note" data-testid="browser-starting">
                    <span class="spinner"></span>
                    <span>"Starting the shared browser…"</span>
                </div>
            }
            .into_any()
        })
    };
    let error = move || {
        signals.error.get().map(|message| {
            view! {
                <div class="browser-error" data-testid="browser-error">
                    <span>{message}</span>
                    <button class="icon-button" on:click=move |_| signals.error.set(None)>
                        "×"
                    </button>
                </div>
            }
        })
    };

    view! {
        <section class="browser-panel" data-testid="browser-panel">
            <div class="browser-toolbar">
                {can_drive
                    .then(|| {
                        view! {
                            <ToolButton
                                title="Back"
                                testid="browser-back"
                                glyph="←"
                                on_click=move || input(InputEvent::Back)
                            />
                            <ToolButton
                                title="Forward"
                                testid="browser-forward"
                                glyph="→"
                                on_click=move || input(InputEvent::Forward)
                            />
                            <ToolButton
                                title="Reload"
                                testid="browser-reload"
                                glyph="⟳"
                                on_click=move || input(InputEvent::Reload)
                            />
                        }
                    })}
                <form class="browser-url" on:submit=go>
                    <input
                        class="mono"
                        readonly=!can_drive
                        node_ref=url_input
                        data-testid="browser-url"
                        placeholder="http://127.0.0.1:8000 (servers in the sandbox)"
                        spellcheck="false"
                        on:focus=move |_| editing.set(true)
                        on:blur=move |_| editing.set(false)
                    />
                </form>
                {driver}
            </div>
            <div class="browser-tabs" role="tablist" data-testid="browser-tabs">
                <For
                    each=move || signals.tabs.get()
                    key=|tab| (tab.id, tab.title.clone(), tab.active)
                    let:tab
                >
                    <BrowserTab tab send can_drive />
                </For>
                {can_drive
                    .then(|| {
                        view! {
                            <button
                                class="tab-new"
                                title="New tab"
                                aria-label="New browser tab"
                                data-testid="browser-new-tab"
                                on:click=move |_| send(BrowserClientMessage::NewTab { url: None })
                            >
                                "+"
                            </button>
                        }
                    })}
            </div>
            {error}
            <div class="browser-view" node_ref=view_box>
                <canvas
                    node_ref=canvas
                    tabindex="0"
                    data-testid="browser-canvas"
                    data-frames="0"
                    on:mousedown=on_down
                    on:mouseup=on_up
                    on:mousemove=on_move
                    on:wheel=on_wheel
                    on:contextmenu=|event: MouseEvent| event.prevent_default()
                    on:keydown=on_key_down
                    on:keyup=on_key_up
                    on:paste=on_paste
                ></canvas>
                {overlay}
            </div>
        </section>
    }
}

/// A toolbar button of one glyph.
#[component]
fn ToolButton(
    title: &'static str,
    testid: &'static str,
    glyph: &'static str,
    on_click: impl Fn() + 'static,
) -> impl IntoView {
    view! {
        <button class="icon-button" title=title aria-label=title data-testid=testid on:click=move |_| on_click()>
            {glyph}
        </button>
    }
}

/// One of the shared browser's tabs.
#[component]
fn BrowserTab(
    tab: proto::browser::TabInfo,
    send: impl Fn(BrowserClientMessage) + Copy + Send + Sync + 'static,
    can_drive: bool,
) -> impl IntoView {
    let id: TabId = tab.id;
    let title = if tab.title.is_empty() { tab.url.clone() } else { tab.title.clone() };
    view! {
        <div
            class="tab"
            class:active=tab.active
            role="tab"
            aria-selected=if tab.active { "true" } else { "false" }
            data-testid="browser-tab"
            data-active=if tab.active { "true" } else { "false" }
            title=tab.url.clone()
            on:click=move |_| {
                if can_drive {
                    send(BrowserClientMessage::ActivateTab { tab: id });
                }
            }
        >
            <span class="tab-label">{title}</span>
            <button
                class="tab-close"
                class:hidden=!can_drive
                title="Close tab"
                aria-label="Close browser tab"
                on:click=move |event: MouseEvent| {
                    event.stop_propagation();
                    send(BrowserClientMessage::CloseTab { tab: id });
                }
            >
                "×"
            </button>
        </div>
    }
}
