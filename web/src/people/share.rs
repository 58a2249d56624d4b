//! The owner's Share dialog: make an invite link (viewer or editor, with an expiry), copy it
//! (the server shows it once: the page keeps every link it made, each in its invite's row,
//! so a second link never hides the first), and the live invites with the people who came
//! through each, revocable (the link dies and its guests are out at once) or removable one
//! by one.

use std::collections::HashMap;

use leptos::prelude::*;
use leptos::task::spawn_local;
use proto::people::{Invite, Role};

use super::{Avatar, role_label};
use crate::api;
use crate::clipboard::Snippet;
use crate::clock::{DEFAULT_LINK_LIFETIME_S, LifetimeSelect};
use crate::confirm::ConfirmButton;
use crate::notice::use_reporter;

/// The dialog; `open` shows it.
#[component]
pub fn ShareDialog(session: String, open: RwSignal<bool>) -> impl IntoView {
    let reporter = use_reporter();
    let session = StoredValue::new(session);
    let role = RwSignal::new(Role::Editor);
    let expires = RwSignal::new(DEFAULT_LINK_LIFETIME_S);
    let pending = RwSignal::new(false);
    // Each link this page made, by invite id: the server never shows one again.
    let made = RwSignal::new(HashMap::<String, String>::new());
    let invites = RwSignal::new(Vec::<Invite>::new());
    let load = move || {
        spawn_local(async move {
            match api::invites(&session.get_value()).await {
                Ok(list) => invites.set(list),
                Err(error) => reporter.api("cannot list the invites", &error),
            }
        });
    };
    Effect::new(move |_| {
        if open.get() {
            load();
        }
    });
    let create = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        if pending.get_untracked() {
            return;
        }
        pending.set(true);
        spawn_local(async move {
            let result = api::create_invite(
                &session.get_value(),
                role.get_untracked(),
                expires.get_untracked(),
            )
            .await;
            pending.set(false);
            match result {
                Ok(invite) => {
                    if let Some(url) = invite.url {
                        made.update(|made| {
                            made.insert(invite.id, url);
                        });
                    }
                    load();
                }
                Err(error) => reporter.api("cannot make an invite", &error),
            }
        });
    };
    let revoke = move |id: String| {
        spawn_local(async move {
            match api::revoke_invite(&session.get_value(), &id).await {
                Ok(()) => load(),
                Err(error) => reporter.api("cannot revoke the invite", &error),
            }
        });
    };
    let remove = move |id: String| {
        spawn_local(async move {
            match api::remove_guest(&session.get_value(), &id).await {
                Ok(()) => load(),
                Err(error) => reporter.api("cannot remove the person", &error),
            }
        });
    };
    let close = move |_| open.set(false);

    let invite_row = move |invite: Invite| {
        let id = invite.id.clone();
        let left = crate::clock::remaining(invite.expires_ms, js_sys::Date::now() as i64);
        let link = made.with_untracked(|made| made.get(&invite.id).cloned()).map(|url| {
            view! {
                <Snippet
                    label="Invite link"
                    testid="invite-link"
                    copy_testid="invite-copy"
                    text=url
                />
            }
        });
        view! {
            <div
                class="invite-row"
                data-testid="invite-row"
                data-role=role_label(invite.role)
                data-invite-id=invite.id.clone()
            >
                <div class="invite-head">
                    <span class="badge">{role_label(invite.role)}</span>
                    <span class="muted small">{format!("link: {left} left")}</span>
                    <span class="spacer"></span>
                    <ConfirmButton
                        label="Revoke"
                        question="Revoke this link? Everyone who came through it is out."
                        testid="invite-revoke"
                        title="The link stops working and everyone who came through it is out"
                        on_confirm=move || revoke(id.clone())
                    />
                </div>
                {link}
                {invite
                    .guests
                    .into_iter()
                    .map(|guest| {
                        let gid = guest.id.clone();
                        let label = guest.name.clone();
                        let person = proto::people::Person {
                            id: guest.id.clone(),
                            name: guest.name.clone(),
                            role: guest.role,
                        };
                        view! {
                            <div class="guest-row" data-testid="guest-row" data-name=guest.name.clone()>
                                <Avatar person small=true />
                                <span>{label}</span>
                                <span class="spacer"></span>
                                <ConfirmButton
                                    label="Remove"
                                    question=format!("Remove {}?", guest.name)
                                    testid="guest-remove"
                                    title="They are out of the session at once"
                                    quiet=true
                                    on_confirm=move || remove(gid.clone())
                                />
                            </div>
                        }
                    })
                    .collect_view()}
            </div>
        }
    };

    move || {
        open.get().then(|| {
            view! {
                <div class="modal-backdrop" on:click=close>
                    <div
                        class="card modal wide"
                        role="dialog"
                        aria-label="Share this session"
                        data-testid="share-dialog"
                        on:click=|event| event.stop_propagation()
                    >
                        <h2>"Share this session"</h2>
                        <p class="muted">
                            "Anyone with an invite link joins under a name of their choice. "
                            "A viewer sees the terminals, files and activity; an editor also "
                            "types, edits files and opens ports."
                        </p>
                        <form class="share-form" on:submit=create>
                            <select
                                data-testid="share-role"
                                on:change=move |ev| {
                                    role.set(if event_target_value(&ev) == "viewer" { Role::Viewer } else { Role::Editor })
                                }
                            >
                                <option value="editor" selected=true>"Can edit"</option>
                                <option value="viewer">"Can view"</option>
                            </select>
                            <LifetimeSelect
                                lifetime=expires
                                testid="share-expiry".to_owned()
                                prefix="link works for "
                            />
                            <button
                                class="button primary"
                                data-testid="share-create"
                                disabled=move || pending.get()
                            >
                                "Make an invite link"
                            </button>
                        </form>
                        <div class="invite-list" data-testid="invite-list">
                            {move || invites.get().into_iter().map(invite_row).collect_view()}
                        </div>
                        <div class="actions">
                            <button class="button" data-testid="share-done" on:click=close>
                                "Done"
                            </button>
                        </div>
                    </div>
                </div>
            }
        })
    }
}
