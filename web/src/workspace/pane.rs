//! The terminal area: one pane per tab, all mounted and laid out on top of each other (so
//! each keeps its size and screen), the active one visible. A pane owns its
//! [`TerminalConn`] from mount to cleanup.

use leptos::html::Div;
use leptos::prelude::*;
use proto::api::SessionState;
use wasm_bindgen::prelude::*;
use web_sys::ResizeObserver;

use super::{Tab, Workspace, shortcut};
use crate::events::SessionStore;
use crate::notice::use_reporter;
use crate::socket::Link;
use crate::terminal::conn::{Hooks, TerminalConn};

/// Every tab's pane, or a note when there is none.
#[component]
pub fn Panes() -> impl IntoView {
    let workspace = expect_context::<Workspace>();
    let empty = move || {
        workspace.tabs.with(|tabs| tabs.is_empty()).then(|| {
            let text = move || {
                if workspace.creating.get() {
                    "Opening a terminal…"
                } else {
                    "No terminal is open."
                }
            };
            // A viewer cannot open one: no button that would only be refused.
            let button = workspace.can_edit.then(|| {
                view! {
                    <button
                        class="button primary small"
                        disabled=move || workspace.creating.get()
                        on:click=move |_| workspace.new_terminal()
                    >
                        "New terminal"
                    </button>
                }
            });
            view! {
                <div class="term-message">
                    <span>{text}</span>
                    {button}
                </div>
            }
        })
    };
    view! {
        <For each=move || workspace.tabs.get() key=|tab| tab.id.clone() let:tab>
            <TerminalPane tab />
        </For>
        {empty}
    }
}

/// The xterm of one tab and its banner (reconnecting, ended).
#[component]
fn TerminalPane(tab: Tab) -> impl IntoView {
    let workspace = expect_context::<Workspace>();
    let store = expect_context::<SessionStore>();
    let reporter = use_reporter();
    let auth = expect_context::<crate::auth::AuthState>();
    let host = NodeRef::<Div>::new();
    let signals = tab.signals;
    let id = tab.id.clone();
    let conn = StoredValue::new_local(None::<TerminalConn>);
    let observer = StoredValue::new_local(None::<(ResizeObserver, Closure<dyn FnMut()>)>);

    let is_active = {
        let id = id.clone();
        Memo::new(move |_| workspace.active.get().as_deref() == Some(id.as_str()))
    };
    let typing = {
        let id = id.clone();
        Memo::new(move |_| workspace.agent_typing.with(|typing| typing.contains(&id)))
    };

    // Mount: open xterm into the host, connect, measure the host whenever it changes size.
    Effect::new({
        let id = id.clone();
        move |_| {
            let Some(element) = host.get() else { return };
            if conn.with_value(Option::is_some) {
                return;
            }
            let session = workspace.session.get_value();
            let hooks = Hooks {
                give_up: Box::new(move || {
                    let state = store.session_untracked(&session).map(|s| s.state);
                    match state {
                        Some(
                            SessionState::Running | SessionState::Degraded | SessionState::Creating,
                        ) => None,
                        Some(state) => Some(format!("the session is {}", state.as_str())),
                        None if store.loaded.get_untracked() => {
                            Some("the session no longer exists".to_owned())
                        }
                        None => None,
                    }
                }),
                error: Box::new(move |message| reporter.message(message)),
                is_shortcut: Box::new(|event| shortcut(event).is_some()),
                read_only: !workspace.can_edit,
                access_ended: Box::new(move || auth.check()),
            };
            let session = workspace.session.get_value();
            let opened = TerminalConn::open(&session, &id, &element, signals, hooks);
            workspace.register(&id, opened.clone());
            conn.set_value(Some(opened.clone()));
            if is_active.get_untracked() {
                opened.focus();
            }

            let measure = Closure::<dyn FnMut()>::new(move || {
                if let Some(conn) = conn.try_get_value().flatten() {
                    conn.measure();
                }
            });
            if let Ok(resize) = ResizeObserver::new(measure.as_ref().unchecked_ref()) {
                resize.observe(&element);
                observer.set_value(Some((resize, measure)));
            }
        }
    });

    // Activation: take the keyboard.
    Effect::new(move |_| {
        if is_active.get()
            && let Some(conn) = conn.with_value(Clone::clone)
        {
            request_animation_frame(move || {
                conn.measure();
                conn.focus();
            });
        }
    });

    on_cleanup({
        let id = id.clone();
        move || {
            if let Some((resize, _measure)) = observer.try_update_value(Option::take).flatten() {
                resize.disconnect();
            }
            if let Some(conn) = conn.try_update_value(Option::take).flatten() {
                conn.close();
            }
            workspace.unregister(&id);
        }
    });

    let banner = move || {
        if let Some(why) = signals.ended.get() {
            let why = format!("Disconnected: {why}.");
            let close_id = tab.id.clone();
            return Some(
                view! {
                    <div class="term-banner ended">
                        <span>{why}</span>
                        {workspace
                            .can_edit
                            .then(|| {
                                view! {
                                    <button
                                        class="button small"
                                        on:click=move |_| workspace.close_terminal(close_id.clone())
                                    >
                                        "Close tab"
                                    </button>
                                }
                            })}
                    </div>
                }
                .into_any(),
            );
        }
        match signals.link.get() {
            Link::Reconnecting { attempt } => Some(
                view! {
                    <div class="term-banner warn" data-testid="terminal-reconnecting">
                        <span class="spinner"></span>
                        <span>{format!("Connection lost. Reconnecting… (try {attempt})")}</span>
                        <button
                            class="button small"
                            on:click=move |_| {
                                if let Some(conn) = conn.with_value(Clone::clone) {
                                    conn.retry_now();
                                }
                            }
                        >
                            "Retry now"
                        </button>
                    </div>
                }
                .into_any(),
            ),
            _ => None,
        }
    };

    view! {
        <div
            class="term-pane"
            class:active=move || is_active.get()
            data-testid=move || is_active.get().then_some("terminal")
            data-terminal-id=id
        >
            // A click in the letterbox around a smaller terminal still gives it the keyboard.
            <div
                class="xterm-host"
                data-testid="terminal-scroller"
                node_ref=host
                on:mouseup=move |_| {
                    if let Some(conn) = conn.with_value(Clone::clone) {
                        conn.focus();
                    }
                }
            ></div>
            {(!workspace.can_edit)
                .then(|| {
                    view! {
                        <div class="view-only" data-testid="view-only">
                            "view only: you were invited as a viewer"
                        </div>
                    }
                })}
            {move || {
                typing
                    .get()
                    .then(|| {
                        view! {
                            <div class="agent-typing" data-testid="agent-typing">
                                <span class="spinner small"></span>
                                "agent is typing"
                            </div>
                        }
                    })
            }}
            {banner}
        </div>
    }
}
