//! The status bar under the terminals: the connection (the active terminal's link; once its
//! shell has ended, the server's: one shell exiting is not the app going offline), how the
//! active shell ended, the session's state and isolation, its time left, the terminal's size
//! (the pty's; and the pane's room when another person's window sizes it).

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

    // The active terminal's link; without one, or once its shell ended for good, the events
    // socket's (the server's).
    let live_tab =
        move || workspace.active_tab().filter(|tab| tab.signals.ended.with(Option::is_none));
    let link = move || match live_tab() {
        Some(tab) => tab.signals.link.get(),
        None => store.link.get(),
    };
    let ended = move || {
        let why = workspace.active_tab()?.signals.ended.get()?;
        Some(view! {
            <span class="status-item warn" data-testid="status-terminal-ended" title=why.clone()>
                {format!("terminal ended: {why}")}
            </span>
        })
    };
    let link_class = move || match link() {
        Link::Connected => "status-item ok",
        Link::Offline => "status-item bad",
        Link::Connecting | Link::Reconnecting { .. } => "status-item warn",
    };
    let link_title = move || match link() {
        Link::Connecting => "connecting".to_owned(),
        Link::Reconnecting { attempt } => format!("connection lost; try {attempt}"),
        Link::Connected if live_tab().is_some() => "the terminal is attached".to_owned(),
        Link::Connected => "connected to the server".to_owned(),
        Link::Offline => "not connected".to_owned(),
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
        let tab = workspace.active_tab()?;
        let (cols, rows) = tab.signals.size.get();
        let (room_cols, room_rows) = tab.signals.room.get();
        (cols > 0).then(|| {
            if room_cols == 0 || (room_cols, room_rows) == (cols, rows) {
                format!("{cols}×{rows}")
            } else {
                // Someone else typed last: their window sizes the shared terminal.
                format!("{cols}×{rows} (sized by the last typist; yours {room_cols}×{room_rows})")
            }
        })
    };

    view! {
        <footer class="status-bar">
            <span class=link_class title=link_title>
                <span class="dot"></span>
                <span data-testid="status-connection">{move || link().label()}</span>
            </span>
            {ended}
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
            <span class="status-item muted" title="terminal size (columns × rows)" data-testid="status-size">
                {size}
            </span>
            <span class="status-item muted">"Ctrl+Shift+T new · Ctrl+Shift+[ ] switch"</span>
        </footer>
    }
}
