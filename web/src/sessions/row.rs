//! One row of the session list: what the session is, how it is doing (live), its actions.

use leptos::prelude::*;
use leptos::task::spawn_local;
use proto::api::{SessionInfo, SessionState};

use crate::api;
use crate::clock::{Now, remaining, span, start_duration};
use crate::events::SessionStore;
use crate::notice::use_reporter;

/// What "+1 h" adds.
const EXTEND_BY_MS: i64 = 3_600_000;

/// "weak isolation", and "· no network" for a session created without egress.
pub fn isolation_label(session: &SessionInfo) -> String {
    if session.network {
        format!("{} isolation", session.isolation)
    } else {
        format!("{} isolation · no network", session.isolation)
    }
}

/// A session that is (or will soon be) usable counts down its lifetime.
fn is_alive(state: SessionState) -> bool {
    state == SessionState::Creating || state.is_up()
}

/// The row of session `id` (reads the live store); `destroy` asks for confirmation. Only
/// its `owner` gets "+1 h" and "Destroy".
#[component]
pub fn SessionRow(
    id: String,
    destroy: WriteSignal<Option<SessionInfo>>,
    highlight: ReadSignal<Option<String>>,
    owner: bool,
) -> impl IntoView {
    let store = expect_context::<SessionStore>();
    let now = expect_context::<Now>();
    let reporter = use_reporter();
    let session = {
        let id = id.clone();
        Memo::new(move |_| store.session(&id))
    };
    let extending = RwSignal::new(false);

    let extend = move |_| {
        let Some(current) = session.get_untracked() else { return };
        let left_ms = (current.expires_ms - crate::clock::now_ms()).max(0);
        let lifetime_s = ((left_ms + EXTEND_BY_MS) / 1000) as u64;
        extending.set(true);
        spawn_local(async move {
            match api::extend_session(&current.id, lifetime_s).await {
                Ok(updated) => store.upsert(updated),
                Err(error) => reporter.api("cannot extend the session", &error),
            }
            extending.set(false);
        });
    };

    let is_new = {
        let id = id.clone();
        move || highlight.get().as_deref() == Some(id.as_str())
    };

    move || {
        let session = session.get()?;
        let state = session.state;
        let alive = is_alive(state);
        let href = format!("/s/{}", session.id);
        let started = session.start_duration_ms.map(start_duration).unwrap_or_else(|| "–".into());
        let expires = session.expires_ms;
        let created = session.created_ms;
        let stopped = session.stopped_ms;
        let countdown = move || {
            if alive { remaining(expires, now.get()) } else { "–".to_owned() }
        };
        let age = move || match stopped {
            Some(stopped) if !alive => format!("{} (stopped)", span(stopped - created)),
            _ => span(now.get() - created),
        };
        let limits = session.limits;
        let limits = format!("{} CPU · {} MiB", limits.cpus, limits.memory_mb);
        let for_destroy = session.clone();
        Some(view! {
            <div
                class="session-row"
                class:highlight=is_new.clone()
                data-testid="session-row"
                data-session-id=session.id.clone()
                data-state=state.as_str()
            >
                <div class="cell name">
                    <div class="session-name">{session.name.clone()}</div>
                    <div class="mono muted small">{session.id.clone()}</div>
                </div>
                <div class="cell">
                    <div>{session.image.clone()}</div>
                    <div class="muted small">{limits}</div>
                </div>
                <div class="cell">
                    <div>{session.driver.clone()}</div>
                    <div class="muted small isolation">{isolation_label(&session)}</div>
                </div>
                <div class="cell">
                    <span class=format!("state state-{}", state.as_str())>
                        <span class="dot"></span>
                        {state.as_str()}
                    </span>
                    {session.reason.clone().map(|reason| view! { <div class="reason">{reason}</div> })}
                </div>
                <div class="cell numeric" title="how long the start took">
                    {started}
                </div>
                <div class="cell numeric">{age}</div>
                <div class="cell numeric">{countdown}</div>
                <div class="cell actions">
                    {if state.is_up() {
                        view! {
                            <a class="button primary small" href=href data-testid="open-session">
                                "Open"
                            </a>
                        }
                            .into_any()
                    } else {
                        view! {
                            <button
                                class="button primary small"
                                data-testid="open-session"
                                disabled=true
                                title="only a running session opens"
                            >
                                "Open"
                            </button>
                        }
                            .into_any()
                    }}
                    {(state.is_up() || matches!(state, SessionState::Stopped | SessionState::Failed))
                        .then(|| {
                            view! {
                                <a
                                    class="button small"
                                    data-testid="download-workspace"
                                    href=crate::api::workspace_tar_url(&session.id)
                                    download=format!("workspace-{}.tar", session.id)
                                    title="Download /workspace as a tarball (kept after the session stops)"
                                >
                                    ".tar"
                                </a>
                            }
                        })}
                    {owner
                        .then(|| {
                            view! {
                                <button
                                    class="button small"
                                    data-testid="extend-session"
                                    title="stop one hour later"
                                    disabled=move || !alive || extending.get()
                                    on:click=extend
                                >
                                    "+1 h"
                                </button>
                                <button
                                    class="button danger small"
                                    data-testid="destroy-session"
                                    on:click=move |_| destroy.set(Some(for_destroy.clone()))
                                >
                                    "Destroy"
                                </button>
                            }
                        })}
                </div>
            </div>
        })
    }
}
