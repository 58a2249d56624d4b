//! The panels around the main area: files at the left; ports above activity at the right.
//! Each is shown unless hidden, and the choice is kept in `localStorage` across page loads.

use leptos::prelude::*;

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
    let panel = move || {
        workspace.files_open.get().then(|| {
            view! { <FilesPanel open=workspace.files_open running=workspace.running /> }
        })
    };
    view! {
        <div class="files-column" class:hidden=move || !workspace.files_open.get()>
            {panel}
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
    view! {
        <div class="side-column" class:hidden=move || !shown()>
            {ports_panel}
            {activity_panel}
        </div>
    }
}
