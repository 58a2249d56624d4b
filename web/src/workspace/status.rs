//! The status bar under the terminals: the active terminal's link, the session's state and
//! isolation, its time left, the terminal's size.

use leptos::prelude::*;
use proto::api::SessionInfo;

use super::Workspace;
use crate::clock::{Now, remaining};
use crate::events::SessionStore;
use crate::sessions::isolation_label;
use crate::socket::Link;

/// The bar.
#[component]
pub fn StatusBar(session: Memo<Option<SessionInfo>>) -> impl IntoView {
    let workspace = expect_context::<Workspace>();
    let store = expect_context::<SessionStore>();
    let now = expect_context::<Now>();

    // The active terminal's link; without one, the events socket's (the server's).
    let link = move || match workspace.active_tab() {
        Some(tab) => tab.signals.link.get(),
        None => store.link.get(),
    };
    let link_class = move || match link() {
        Link::Connected => "status-item ok",
        Link::Offline => "status-item bad",
        Link::Connecting | Link::Reconnecting { .. } => "status-item warn",
    };
    let link_title = move || match link() {
        Link::Connecting => "connecting".to_owned(),
        Link::Reconnecting { attempt } => format!("connection lost; try {attempt}"),
        Link::Connected => "the terminal is attached".to_owned(),
        Link::Offline => workspace
            .active_tab()
            .and_then(|tab| tab.signals.ended.get())
            .unwrap_or_else(|| "not connected".to_owned()),
    };
    let state = move || session.with(|s| s.as_ref().map(|s| s.state.as_str())).unwrap_or("unknown");
    let isolation = move || session.with(|s| s.as_ref().map(isolation_label)).unwrap_or_default();
    let driver =
        move || session.with(|s| s.as_ref().map(|s| format!("{} ·", s.driver))).unwrap_or_default();
    let left = move || {
        let expires = session.with(|s| s.as_ref().map(|s| s.expires_ms))?;
        Some(format!("{} left", remaining(expires, now.get())))
    };
    let size = move || {
        let (cols, rows) = workspace.active_tab()?.signals.size.get();
        (cols > 0).then(|| format!("{cols}×{rows}"))
    };

    view! {
        <footer class="status-bar">
            <span class=link_class title=link_title>
                <span class="dot"></span>
                <span data-testid="status-connection">{move || link().label()}</span>
            </span>
            <span class="status-item" title="session state">
                "session "
                <span data-testid="status-session" class=move || format!("state-text state-{}", state())>
                    {state}
                </span>
            </span>
            <span class="status-item" title="sandbox driver and isolation level">
                {driver}
                <span data-testid="status-isolation">{isolation}</span>
            </span>
            <span class="status-item muted">{left}</span>
            <span class="spacer"></span>
            <span class="status-item muted" title="terminal size (columns × rows)">{size}</span>
            <span class="status-item muted">"Ctrl+Shift+T new · Ctrl+Shift+[ ] switch"</span>
        </footer>
    }
}
