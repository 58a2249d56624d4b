//! The Ports panel beside the terminals: one row per listening port with its process, and
//! buttons to open its preview in a new tab or in the shared browser, copy its URL, make it public or private, and
//! make, show and revoke share links.

use leptos::html::Div;
use leptos::prelude::*;
use leptos::task::spawn_local;
use proto::api::{PreviewPort, ShareLink};

use super::{PortStore, process_label};
use crate::api;
use crate::clipboard::{Copied, copy};
use crate::clock::{DEFAULT_LINK_LIFETIME_S, LifetimeSelect, Now, remaining};
use crate::notice::use_reporter;
use crate::workspace::HidePanel;

/// The panel; `running` says whether the session runs (only then has it ports), `open`
/// hides the panel.
#[component]
pub fn PortsPanel(session: String, running: Memo<bool>, open: RwSignal<bool>) -> impl IntoView {
    let store = expect_context::<PortStore>();
    let session = StoredValue::new(session);
    let numbers = move || {
        store.with_ports(&session.get_value(), |ports| {
            ports.unwrap_or_default().iter().map(|p| p.port).collect::<Vec<_>>()
        })
    };
    let count = move || store.with_ports(&session.get_value(), |ports| ports.map(<[_]>::len));
    let note = move || {
        if !running.get() {
            return Some(
                view! { <div class="activity-note muted">"The session is not running."</div> }
                    .into_any(),
            );
        }
        if let Some(error) = store.error(&session.get_value()) {
            return Some(
                view! { <div class="activity-note error" data-testid="ports-error">{error}</div> }
                    .into_any(),
            );
        }
        match count() {
            None => Some(view! { <div class="activity-note muted">"Loading…"</div> }.into_any()),
            Some(0) => Some(
                view! {
                    <div class="activity-note muted" data-testid="ports-empty">
                        "No ports yet — start a server (e.g. "
                        <code>"python3 -m http.server 8000"</code>
                        ") and it appears here."
                    </div>
                }
                .into_any(),
            ),
            Some(_) => None,
        }
    };

    view! {
        <section class="ports-panel" data-testid="ports-panel">
            <div class="panel-head">
                <span class="panel-title">"Ports"</span>
                <span class="muted small" data-testid="ports-count">
                    {move || match count() {
                        Some(n) if n > 0 && running.get() => format!("{n} listening"),
                        _ => String::new(),
                    }}
                </span>
                <span class="spacer"></span>
                <HidePanel name="ports" open />
            </div>
            <div class="ports-list" data-testid="ports-list">
                <Show when=move || running.get()>
                    <For each=numbers key=|port| *port let:port>
                        <PortRow session port />
                    </For>
                </Show>
                {note}
            </div>
        </section>
    }
}

/// One port (`port-row-{port}`). It reads its port from the store, so a change (public,
/// shares) updates the row in place and a share link just made stays on screen.
#[component]
fn PortRow(session: StoredValue<String>, port: u16) -> impl IntoView {
    let store = expect_context::<PortStore>();
    // A viewer opens and copies; changing visibility, sharing and the shared browser are
    // an editor's (no button that would only be refused).
    let workspace = use_context::<crate::workspace::Workspace>();
    let can_edit = workspace.is_none_or(|w| w.can_edit);
    let reporter = use_reporter();
    let info = Memo::new(move |_| store.port(&session.get_value(), port));
    let field = move |f: fn(&PreviewPort) -> String| move || info.with(|p| p.as_ref().map(f));
    let public = move || info.with(|p| p.as_ref().is_some_and(|p| p.public));
    let url_block = NodeRef::<Div>::new();
    let copied = RwSignal::new(Copied::Not);
    let toggling = RwSignal::new(false);
    let sharing = RwSignal::new(false);
    // How long the next share link works.
    let lifetime = RwSignal::new(DEFAULT_LINK_LIFETIME_S);
    // The link just made: its URL is in no list (the server keeps a hash), so it is shown
    // here until dismissed.
    let made = RwSignal::new(None::<ShareLink>);

    let toggle = move |_| {
        if toggling.get_untracked() {
            return;
        }
        let public = !public();
        toggling.set(true);
        let session = session.get_value();
        spawn_local(async move {
            match api::set_preview_public(&session, port, public).await {
                Ok(answer) => store.edit(&session, port, |slot| *slot = answer),
                Err(error) => {
                    let state = if public { "public" } else { "private" };
                    reporter.api(&format!("cannot make port {port} {state}"), &error);
                }
            }
            toggling.try_set(false);
        });
    };
    let copy_url = move |_| {
        let Some(url) = info.with_untracked(|p| p.as_ref().map(|p| p.url.clone())) else {
            return;
        };
        let fallback = url_block.get_untracked().map(|block| block.into());
        copy(url, fallback, copied);
    };
    let share = move |_| {
        if sharing.get_untracked() {
            return;
        }
        sharing.set(true);
        let session = session.get_value();
        spawn_local(async move {
            match api::create_share(&session, port, Some(lifetime.get_untracked())).await {
                Ok(link) => {
                    let listed = ShareLink { url: None, ..link.clone() };
                    store.edit(&session, port, |slot| {
                        if !slot.shares.iter().any(|s| s.id == listed.id) {
                            slot.shares.push(listed);
                        }
                    });
                    made.try_set(Some(link));
                }
                Err(error) => reporter.api(&format!("cannot share port {port}"), &error),
            }
            sharing.try_set(false);
        });
    };
    let revoke = move |id: String, pending: RwSignal<bool>| {
        let session = session.get_value();
        spawn_local(async move {
            match api::revoke_share(&session, port, &id).await {
                // Already gone counts as revoked.
                Ok(()) | Err(api::ApiError { status: 404, .. }) => {
                    store.edit(&session, port, |slot| slot.shares.retain(|s| s.id != id));
                    made.try_update(|made| {
                        if made.as_ref().is_some_and(|link| link.id == id) {
                            *made = None;
                        }
                    });
                }
                Err(error) => {
                    pending.try_set(false);
                    reporter.api("cannot revoke the share link", &error);
                }
            }
        });
    };
    let shares = move || info.with(|p| p.as_ref().map(|p| p.shares.clone()).unwrap_or_default());
    let public_attr = move || if public() { "true" } else { "false" };
    let public_title = move || {
        if public() {
            "Public: anyone with the URL opens it. Click to make it private."
        } else {
            "Private: only you (and share links). Click to make it public."
        }
    };

    view! {
        <div
            class="port-row"
            data-testid=format!("port-row-{port}")
            data-port=port.to_string()
            data-public=public_attr
        >
            <div class="port-head">
                <span class="port-number mono">{port.to_string()}</span>
                <span class="port-process" data-testid=format!("port-process-{port}")>
                    {field(|p| process_label(p).to_owned())}
                </span>
                <span class="spacer"></span>
                {if can_edit {
                    view! {
                        <button
                            class="port-toggle"
                            class:public=public
                            role="switch"
                            aria-checked=public_attr
                            data-testid=format!("port-public-{port}")
                            title=public_title
                            disabled=move || toggling.get()
                            on:click=toggle
                        >
                            <span class="dot"></span>
                            {move || if public() { "Public" } else { "Private" }}
                        </button>
                    }
                        .into_any()
                } else {
                    view! {
                        <span
                            class="port-toggle static"
                            class:public=public
                            data-testid=format!("port-visibility-{port}")
                        >
                            <span class="dot"></span>
                            {move || if public() { "Public" } else { "Private" }}
                        </span>
                    }
                        .into_any()
                }}
            </div>
            <div class="port-url mono" data-testid=format!("port-url-{port}") node_ref=url_block>
                {field(|p| p.url.clone())}
            </div>
            <div class="port-actions">
                <a
                    class="button small primary"
                    data-testid=format!("port-open-{port}")
                    href=field(|p| p.open_path.clone())
                    target="_blank"
                    rel="noopener"
                    title="Open the preview in a new tab"
                >
                    "Open preview"
                </a>
                {workspace
                    .filter(|_| can_edit)
                    .map(|workspace| {
                        view! {
                            <button
                                class="button small"
                                data-testid=format!("port-browser-{port}")
                                title="Open it in the shared browser (the one the agent drives)"
                                on:click=move |_| workspace.open_in_browser(port)
                            >
                                "Open in browser"
                            </button>
                        }
                    })}
                <button class="button small" data-testid=format!("port-copy-{port}") on:click=copy_url>
                    {move || match copied.get() {
                        Copied::Not => "Copy URL",
                        other => other.label(),
                    }}
                </button>
                <span class="share-make" class:hidden=!can_edit>
                    <button
                        class="button small"
                        data-testid=format!("port-share-{port}")
                        title="A link that works without a Flint account, for as long as chosen; revocable"
                        disabled=move || sharing.get()
                        on:click=share
                    >
                        {move || if sharing.get() { "Sharing…" } else { "Share link" }}
                    </button>
                    <LifetimeSelect
                        lifetime
                        testid=format!("port-share-lifetime-{port}")
                        disabled=sharing
                    />
                </span>
            </div>
            {move || made.get().map(|link| view! { <NewShare port link made /> })}
            <For each=shares key=|share| share.id.clone() let:share>
                <ShareRow port share revoke can_edit />
            </For>
        </div>
    }
}

/// The share link just made: its URL (copied at once where the clipboard allows), shown
/// until dismissed.
#[component]
fn NewShare(port: u16, link: ShareLink, made: RwSignal<Option<ShareLink>>) -> impl IntoView {
    let block = NodeRef::<Div>::new();
    let copied = RwSignal::new(Copied::Not);
    let url = StoredValue::new(link.url.unwrap_or_default());
    // Copied as soon as it is on screen: straight after the click, the page may still write
    // to the clipboard (else the text is selected).
    let auto_copied = StoredValue::new(false);
    Effect::new(move |_| {
        if let Some(element) = block.get()
            && !auto_copied.get_value()
        {
            auto_copied.set_value(true);
            copy(url.get_value(), Some(element.into()), copied);
        }
    });
    let on_copy = move |_| {
        let fallback = block.get_untracked().map(|block| block.into());
        copy(url.get_value(), fallback, copied);
    };
    view! {
        <div class="share-new" data-testid=format!("port-share-new-{port}")>
            <div class="share-new-head">
                <span>"New share link: copy it now, it is shown once"</span>
                <span class="spacer"></span>
                <button
                    class="icon-button"
                    title="Hide the link (it keeps working until revoked)"
                    aria-label="Hide the link"
                    on:click=move |_| made.set(None)
                >
                    "×"
                </button>
            </div>
            <div class="share-new-body">
                <div class="share-url mono" data-testid=format!("port-share-url-{port}") node_ref=block>
                    {url.get_value()}
                </div>
                <button
                    class="button small"
                    data-testid=format!("port-share-copy-{port}")
                    on:click=on_copy
                >
                    {move || copied.get().label()}
                </button>
            </div>
        </div>
    }
}

/// A share link of a port: when it expires, and Revoke (`port-share-revoke-{id}`).
#[component]
fn ShareRow(
    port: u16,
    share: ShareLink,
    revoke: impl Fn(String, RwSignal<bool>) + Copy + 'static,
    can_edit: bool,
) -> impl IntoView {
    let now = expect_context::<Now>();
    let pending = RwSignal::new(false);
    let expires = share.expires_ms;
    let left = move || {
        let now = now.get();
        if expires <= now {
            "expired".to_owned()
        } else {
            format!("expires in {}", remaining(expires, now))
        }
    };
    let id = share.id.clone();
    view! {
        <div
            class="share-row"
            data-testid="port-share-link"
            data-port=port.to_string()
            data-share-id=share.id.clone()
        >
            <span class="muted">"Share link"</span>
            <span class="small muted">{left}</span>
            <span class="spacer"></span>
            <button
                class="button small danger"
                class:hidden=!can_edit
                data-testid=format!("port-share-revoke-{}", share.id)
                title="The link stops working at once"
                disabled=move || pending.get()
                on:click=move |_| {
                    pending.set(true);
                    revoke(id.clone(), pending);
                }
            >
                "Revoke"
            </button>
        </div>
    }
}
