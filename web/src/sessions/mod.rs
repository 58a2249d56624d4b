//! The sessions page: the caller's sessions, live, with create, extend, destroy and open.

mod create;
mod row;

use leptos::prelude::*;
use leptos::task::spawn_local;
use proto::api::SessionInfo;

use crate::api;
use crate::events::SessionStore;
use crate::notice::use_reporter;
use crate::socket::Link;

pub use row::isolation_label;

/// `/`: the list.
#[component]
pub fn SessionsPage() -> impl IntoView {
    let store = expect_context::<SessionStore>();
    let creating = RwSignal::new(false);
    let (highlight, set_highlight) = signal(None::<String>);
    let (destroying, set_destroying) = signal(None::<SessionInfo>);
    let ids = move || store.list().into_iter().map(|s| s.id).collect::<Vec<_>>();
    // A guest (an invite's cookie) sees their one session: they cannot make, extend or
    // destroy sessions, so no button offers it.
    let owner = match expect_context::<crate::auth::AuthState>().0.get_untracked() {
        crate::auth::Auth::SignedIn(me) => me.role.is_none(),
        _ => false,
    };

    let live = move || match store.link.get() {
        Link::Connected => view! { <span class="live ok">"● live"</span> }.into_any(),
        Link::Offline => view! { <span class="live bad">"● offline"</span> }.into_any(),
        Link::Connecting | Link::Reconnecting { .. } => {
            view! { <span class="live warn">"● reconnecting…"</span> }.into_any()
        }
    };

    // How this server runs sessions: its warnings (weak isolation, and why) stay in view.
    let server = LocalResource::new(api::server);
    let warnings = move || {
        let warnings = server.get().and_then(Result::ok).map(|info| info.warnings);
        warnings
            .unwrap_or_default()
            .into_iter()
            .map(|warning| {
                view! {
                    <div class="server-warning" role="alert" data-testid="server-warning">
                        <strong>"Weak isolation · "</strong>
                        {warning}
                    </div>
                }
            })
            .collect_view()
    };

    view! {
        <main class="page">
            {warnings}
            <div class="page-header">
                <h1>"Sessions"</h1>
                {live}
                <div class="spacer"></div>
                {owner
                    .then(|| {
                        view! {
                            <button
                                class="button primary"
                                data-testid="create-session"
                                on:click=move |_| creating.set(true)
                            >
                                "+ New session"
                            </button>
                        }
                    })}
            </div>
            <div class="session-list" data-testid="session-list">
                <div class="session-row head">
                    <div class="cell">"Name"</div>
                    <div class="cell">"Image"</div>
                    <div class="cell">"Sandbox"</div>
                    <div class="cell">"State"</div>
                    <div class="cell numeric">"Start took"</div>
                    <div class="cell numeric">"Age"</div>
                    <div class="cell numeric">"Time left"</div>
                    <div class="cell"></div>
                </div>
                <For each=ids key=|id| id.clone() let:id>
                    <row::SessionRow id destroy=set_destroying highlight owner />
                </For>
                {move || {
                    let empty = store.loaded.get() && store.list().is_empty();
                    empty
                        .then(|| {
                            view! {
                                <div class="empty" data-testid="sessions-empty">
                                    "No sessions yet. Start one with "
                                    <strong>"+ New session"</strong>
                                    ": a disposable sandbox with a shell."
                                </div>
                            }
                        })
                }}
                {move || {
                    (!store.loaded.get())
                        .then(|| view! { <div class="empty"><span class="spinner"></span>" Loading…"</div> })
                }}
            </div>
            <create::CreateDialog open=creating created=set_highlight />
            <ConfirmDestroy session=destroying close=set_destroying />
        </main>
    }
}

/// Asks before destroying a session (its `/workspace` goes with it).
#[component]
fn ConfirmDestroy(
    session: ReadSignal<Option<SessionInfo>>,
    close: WriteSignal<Option<SessionInfo>>,
) -> impl IntoView {
    let store = expect_context::<SessionStore>();
    let reporter = use_reporter();
    let pending = RwSignal::new(false);
    let confirm = move |_| {
        let Some(target) = session.get_untracked() else { return };
        pending.set(true);
        spawn_local(async move {
            match api::destroy_session(&target.id).await {
                Ok(()) => store.remove(&target.id),
                Err(error) if error.status == 404 => store.remove(&target.id),
                Err(error) => reporter.api("cannot destroy the session", &error),
            }
            pending.set(false);
            close.set(None);
        });
    };
    let cancel = move |_| {
        if !pending.get_untracked() {
            close.set(None);
        }
    };
    move || {
        session.get().map(|target| {
            view! {
                <div class="modal-backdrop" on:click=cancel>
                    <div class="card modal" role="dialog" on:click=|ev| ev.stop_propagation()>
                        <h2>"Destroy " {target.name.clone()} "?"</h2>
                        <p>
                            "The sandbox stops and its " <code>"/workspace"</code>
                            " is deleted. This cannot be undone."
                        </p>
                        <div class="actions">
                            <button class="button ghost" on:click=cancel disabled=move || pending.get()>
                                "Cancel"
                            </button>
                            <button
                                class="button danger"
                                data-testid="confirm-destroy"
                                disabled=move || pending.get()
                                on:click=confirm
                            >
                                {move || if pending.get() { "Destroying…" } else { "Destroy" }}
                            </button>
                        </div>
                    </div>
                </div>
            }
        })
    }
}
