//! The workspace's top bar: back to the list, the session's name, the terminal tabs (each
//! saying when an agent is typing into it), "new terminal", the shared browser's tab, the
//! open files' tabs, "Connect an agent", the files, ports and activity panels' toggles and
//! the shortcut help.

use leptos::prelude::*;
use proto::api::SessionInfo;

use proto::people::Role;

use super::{MainView, Workspace, keys};
use crate::events::SessionStore;
use crate::files::{FileTab, Files};
use crate::people::{Avatar, PresenceBar, role_label};
use crate::ports::PortStore;
use crate::socket::Link;

/// The bar above the terminals.
#[component]
pub fn TabBar(session: Memo<Option<SessionInfo>>) -> impl IntoView {
    let workspace = expect_context::<Workspace>();
    let ports = expect_context::<PortStore>();
    let store = expect_context::<SessionStore>();
    let presence = Memo::new(move |_| store.presence(&workspace.session.get_value()));
    let files = expect_context::<Files>();
    let browser_shown = Memo::new(move |_| workspace.main.get() == MainView::Browser);
    let open_files =
        move || files.docs.with(|docs| docs.iter().map(|d| d.path.clone()).collect::<Vec<_>>());
    let help_open = RwSignal::new(false);
    // Listening ports, on the toggle: seen even while the panel is hidden.
    let port_count = move || {
        let count = ports.with_ports(&workspace.session.get_value(), |list| list.map(<[_]>::len));
        count.filter(|&n| n > 0 && workspace.running.get())
    };
    let name = move || session.with(|s| s.as_ref().map(|s| s.name.clone())).unwrap_or_default();
    let new_title = "New terminal (Ctrl+Shift+T)";

    view! {
        <div class="tab-bar">
            <a class="back" href="/" title="All sessions">
                "←"
            </a>
            <span class="ws-name" title=move || workspace.session.get_value()>
                {name}
            </span>
            <div class="tabs" role="tablist">
                <For each=move || workspace.tabs.get() key=|tab| tab.id.clone() let:tab>
                    <TabButton tab />
                </For>
                {workspace
                    .can_edit
                    .then(|| {
                        view! {
                            <button
                                class="tab-new"
                                data-testid="new-terminal"
                                title=new_title
                                aria-label=new_title
                                disabled=move || {
                                    workspace.creating.get() || !workspace.running.get()
                                }
                                on:click=move |_| workspace.new_terminal()
                            >
                                "+"
                            </button>
                        }
                    })}
                <div
                    class="tab browser-tab"
                    class:active=move || browser_shown.get()
                    role="tab"
                    aria-selected=move || if browser_shown.get() { "true" } else { "false" }
                    data-testid="browser-tab"
                    title="The shared browser: the agent drives it, you watch and can take over"
                    on:click=move |_| workspace.main.set(MainView::Browser)
                >
                    <span class="tab-label">"Browser"</span>
                </div>
                <For each=open_files key=|path| path.clone() let:path>
                    <FileTab path />
                </For>
            </div>
            <div class="spacer"></div>
            <PresenceBar presence />
            {(workspace.role != Role::Owner)
                .then(|| {
                    view! {
                        <span class="badge role-badge" data-testid="my-role">
                            {role_label(workspace.role)}
                        </span>
                    }
                })}
            {(workspace.role == Role::Owner)
                .then(|| {
                    view! {
                        <button
                            class="button small"
                            data-testid="share-open"
                            title="Invite people to this session, as viewers or editors"
                            on:click=move |_| workspace.share_open.set(true)
                        >
                            "Share"
                        </button>
                        <button
                            class="button small"
                            data-testid="connect-agent"
                            title="Let an AI agent (MCP) work in this session's shell"
                            on:click=move |_| workspace.connect_open.set(true)
                        >
                            "Connect an agent"
                        </button>
                    }
                })}
            <button
                class="button small ghost"
                class:pressed=move || workspace.files_open.get()
                data-testid="files-toggle"
                aria-pressed=move || if workspace.files_open.get() { "true" } else { "false" }
                title="Show or hide the files panel (/workspace)"
                on:click=move |_| workspace.files_open.update(|open| *open = !*open)
            >
                "Files"
            </button>
            <button
                class="button small ghost"
                class:pressed=move || workspace.ports_open.get()
                data-testid="ports-toggle"
                aria-pressed=move || if workspace.ports_open.get() { "true" } else { "false" }
                title="Show or hide the ports panel (preview URLs)"
                on:click=move |_| workspace.ports_open.update(|open| *open = !*open)
            >
                "Ports"
                {move || {
                    port_count()
                        .map(|n| {
                            view! {
                                <span class="badge" data-testid="ports-toggle-count">
                                    {n.to_string()}
                                </span>
                            }
                        })
                }}
            </button>
            <button
                class="button small ghost"
                class:pressed=move || workspace.activity_open.get()
                data-testid="activity-toggle"
                aria-pressed=move || if workspace.activity_open.get() { "true" } else { "false" }
                title="Show or hide the activity panel"
                on:click=move |_| workspace.activity_open.update(|open| *open = !*open)
            >
                "Activity"
            </button>
            <div class="help">
                <button
                    class="icon-button"
                    title="Keyboard shortcuts"
                    aria-label="Keyboard shortcuts"
                    on:click=move |_| help_open.update(|open| *open = !*open)
                >
                    "⌨"
                </button>
                {move || {
                    help_open
                        .get()
                        .then(|| {
                            view! {
                                <div class="popover" on:click=move |_| help_open.set(false)>
                                    <div class="popover-title">"Keyboard shortcuts"</div>
                                    {keys::HELP
                                        .iter()
                                        .map(|(keys, what)| {
                                            view! {
                                                <div class="shortcut">
                                                    <kbd>{*keys}</kbd>
                                                    <span>{*what}</span>
                                                </div>
                                            }
                                        })
                                        .collect_view()}
                                </div>
                            }
                        })
                }}
            </div>
        </div>
    }
}

/// One tab: its name, a link dot, and its close button.
#[component]
fn TabButton(tab: super::Tab) -> impl IntoView {
    let workspace = expect_context::<Workspace>();
    let id = tab.id.clone();
    let is_active = {
        let id = id.clone();
        move || {
            workspace.terminals_shown() && workspace.active.get().as_deref() == Some(id.as_str())
        }
    };
    let dot = move || {
        let ended = tab.signals.ended.with(Option::is_some);
        match (ended, tab.signals.link.get()) {
            (true, _) | (_, Link::Offline) => "dot bad",
            (_, Link::Connected) => "dot ok",
            _ => "dot warn",
        }
    };
    let typing = {
        let id = id.clone();
        move || workspace.agent_typing.with(|typing| typing.contains(&id))
    };
    let store = expect_context::<SessionStore>();
    let typist = {
        let id = id.clone();
        Memo::new(move |_| {
            let presence = store.presence(&workspace.session.get_value());
            let typist = presence.typists.into_iter().find(|t| t.terminal == id)?;
            let role = presence.people.iter().find(|p| p.id == typist.person).map(|p| p.role);
            Some(proto::people::Person {
                id: typist.person,
                name: typist.name,
                role: role.unwrap_or(Role::Editor),
            })
        })
    };
    let activate = {
        let id = id.clone();
        move |_| workspace.show_terminal(id.clone())
    };
    let close = {
        let id = id.clone();
        move |event: leptos::ev::MouseEvent| {
            event.stop_propagation();
            workspace.request_close(id.clone());
        }
    };
    let active_attr = {
        let is_active = is_active.clone();
        move || if is_active() { "true" } else { "false" }
    };
    view! {
        <div
            class="tab"
            class:active=is_active.clone()
            role="tab"
            aria-selected=active_attr.clone()
            data-testid="terminal-tab"
            data-terminal-id=id.clone()
            data-active=active_attr
            title=format!("terminal {id}")
            on:click=activate
        >
            <span class=dot></span>
            <span class="tab-label">{format!("shell {id}")}</span>
            {move || {
                typing()
                    .then(|| {
                        view! {
                            <span class="typing-mark" data-testid="tab-agent-typing">
                                "agent is typing"
                            </span>
                        }
                    })
            }}
            {move || {
                typist
                    .get()
                    .map(|person| {
                        view! {
                            <span class="typist" data-testid="tab-typist" title="typed here last">
                                <Avatar person small=true />
                            </span>
                        }
                    })
            }}
            {workspace
                .can_edit
                .then(|| {
                    view! {
                        <button
                            class="tab-close"
                            data-testid="close-terminal"
                            title="Close (kills the shell)"
                            aria-label="Close terminal"
                            on:click=close
                        >
                            "×"
                        </button>
                    }
                })}
        </div>
    }
}
