//! The panels around the main area: files at the left; ports above activity at the right.
//! Each is shown unless hidden, and the choice is kept in `localStorage` across page loads.
//! Both columns are resized by dragging their inner edge (kept too); their default widths
//! leave the terminal more than 80 columns in a 1280 px window with both shown.

use leptos::prelude::*;
use wasm_bindgen::JsCast as _;

use super::Workspace;
use crate::agent::ActivityPanel;
use crate::files::FilesPanel;
use crate::ports::PortsPanel;

/// Where the activity panel's shown-or-hidden choice is kept across page loads.
pub const ACTIVITY_PANEL_KEY: &str = "flint.activity-panel";

/// Where the ports panel's is.
pub const PORTS_PANEL_KEY: &str = "flint.ports-panel";

/// Where the files panel's is.
pub const FILES_PANEL_KEY: &str = "flint.files-panel";

/// Where the files column's width is kept.
const FILES_WIDTH_KEY: &str = "flint.files-width";

/// Where the right column's width is kept.
const SIDE_WIDTH_KEY: &str = "flint.side-width";

/// Default widths (px): with both columns shown, a 1280 px window keeps about 750 px, some
/// 88 columns of 14 px monospace, for the terminal.
const FILES_WIDTH: i32 = 220;
const SIDE_WIDTH: i32 = 300;

/// Narrowest and widest a column is dragged to.
const MIN_WIDTH: i32 = 160;
const MAX_WIDTH: i32 = 640;

/// A column's width as kept, else `default`.
fn remembered_width(key: &str, default: i32) -> i32 {
    let stored = window().local_storage().ok().flatten().and_then(|s| s.get_item(key).ok());
    let width = stored.flatten().and_then(|w| w.parse().ok()).unwrap_or(default);
    width.clamp(MIN_WIDTH, MAX_WIDTH)
}

/// Which way a column grows when its edge is dragged right.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Edge {
    /// The handle is on the column's right edge (the files column).
    Right,
    /// On its left edge (the column at the right).
    Left,
}

/// The drag handle on a column's inner edge.
#[component]
fn Splitter(
    width: RwSignal<i32>,
    edge: Edge,
    key: &'static str,
    testid: &'static str,
) -> impl IntoView {
    // Where the drag started: pointer x and the width then.
    let start = StoredValue::new(None::<(i32, i32)>);
    let down = move |event: leptos::ev::PointerEvent| {
        event.prevent_default();
        if let Some(handle) = event.target().and_then(|t| t.dyn_into::<web_sys::Element>().ok()) {
            let _ = handle.set_pointer_capture(event.pointer_id());
        }
        start.set_value(Some((event.client_x(), width.get_untracked())));
    };
    let moved = move |event: leptos::ev::PointerEvent| {
        let Some((x, from)) = start.get_value() else { return };
        let dx = event.client_x() - x;
        let to = if edge == Edge::Right { from + dx } else { from - dx };
        width.set(to.clamp(MIN_WIDTH, MAX_WIDTH));
    };
    let up = move |_: leptos::ev::PointerEvent| {
        if start.get_value().is_some() {
            start.set_value(None);
            if let Ok(Some(storage)) = window().local_storage() {
                let _ = storage.set_item(key, &width.get_untracked().to_string());
            }
        }
    };
    view! {
        <div
            class="splitter"
            class:left=edge == Edge::Left
            role="separator"
            aria-orientation="vertical"
            title="Drag to resize"
            data-testid=testid
            on:pointerdown=down
            on:pointermove=moved
            on:pointerup=up
            on:pointercancel=up
        ></div>
    }
}

/// The × at the end of a panel's head: hides the `name` panel.
#[component]
pub fn HidePanel(name: &'static str, open: RwSignal<bool>) -> impl IntoView {
    let what = format!("Hide the {name} panel");
    view! {
        <button
            class="icon-button"
            title=what.clone()
            aria-label=what
            on:click=move |_| open.set(false)
        >
            "×"
        </button>
    }
}

/// A panel's last state; shown unless it was hidden.
pub fn remembered(key: &str) -> bool {
    let stored = window().local_storage().ok().flatten().and_then(|s| s.get_item(key).ok());
    stored.flatten().as_deref() != Some("hidden")
}

fn remember_open(key: &str, open: bool) {
    if let Ok(Some(storage)) = window().local_storage() {
        let _ = storage.set_item(key, if open { "shown" } else { "hidden" });
    }
}

/// Keeps each panel's choice as it changes.
pub fn remember(workspace: Workspace) {
    Effect::new(move |_| remember_open(ACTIVITY_PANEL_KEY, workspace.activity_open.get()));
    Effect::new(move |_| remember_open(PORTS_PANEL_KEY, workspace.ports_open.get()));
    Effect::new(move |_| remember_open(FILES_PANEL_KEY, workspace.files_open.get()));
}

/// The left column: the files panel.
#[component]
pub fn FilesColumn() -> impl IntoView {
    let workspace = expect_context::<Workspace>();
    let width = RwSignal::new(remembered_width(FILES_WIDTH_KEY, FILES_WIDTH));
    let panel = move || {
        workspace.files_open.get().then(|| {
            view! { <FilesPanel open=workspace.files_open running=workspace.running /> }
        })
    };
    view! {
        <div
            class="files-column"
            class:hidden=move || !workspace.files_open.get()
            style:width=move || format!("{}px", width.get())
        >
            {panel}
            <Splitter width edge=Edge::Right key=FILES_WIDTH_KEY testid="files-splitter" />
        </div>
    }
}

/// The right column: ports above activity.
#[component]
pub fn SideColumn(session: String) -> impl IntoView {
    let workspace = expect_context::<Workspace>();
    let session = StoredValue::new(session);
    let ports_panel = move || {
        workspace.ports_open.get().then(|| {
            let session = session.get_value();
            view! { <PortsPanel session running=workspace.running open=workspace.ports_open /> }
        })
    };
    let activity_panel = move || {
        workspace.activity_open.get().then(|| {
            let session = session.get_value();
            view! {
                <ActivityPanel
                    session
                    open=workspace.activity_open
                    connect=workspace.connect_open
                />
            }
        })
    };
    let shown = move || workspace.ports_open.get() || workspace.activity_open.get();
    let width = RwSignal::new(remembered_width(SIDE_WIDTH_KEY, SIDE_WIDTH));
    view! {
        <div
            class="side-column"
            class:hidden=move || !shown()
            style:width=move || format!("{}px", width.get())
        >
            <Splitter width edge=Edge::Left key=SIDE_WIDTH_KEY testid="side-splitter" />
            {ports_panel}
            {activity_panel}
        </div>
    }
}
