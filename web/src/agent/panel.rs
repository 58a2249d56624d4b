//! The Activity panel beside the terminals: the session's agent tokens (each revocable) and
//! its activity feed, newest first, live.

use leptos::prelude::*;
use leptos::task::spawn_local;
use proto::api::ActivityEvent;
use proto::audit::ToolStatus;

use super::ActivityStore;
use super::words::describe;
use crate::api::{self, ApiToken};
use crate::clock::{Now, span, start_duration, time_of_day};
use crate::confirm::ConfirmButton;
use crate::notice::use_reporter;
use crate::workspace::HidePanel;

/// Entries drawn: enough to scroll back over a working session; the feed keeps more, and a
/// few hundred DOM rows keep the page light while an agent is busy.
const RENDER_CAP: usize = 200;

/// The panel; `connect` opens the "Connect an agent" dialog, `open` hides the panel.
#[component]
pub fn ActivityPanel(
    session: String,
    open: RwSignal<bool>,
    connect: RwSignal<bool>,
) -> impl IntoView {
    let activity = expect_context::<ActivityStore>();
    // Agent tokens are the owner's: a guest sees the feed only.
    let owner = use_context::<crate::workspace::Workspace>()
        .is_none_or(|w| w.role == proto::people::Role::Owner);
    let session = StoredValue::new(session);
    let running = move || activity.with_feed(&session.get_value(), |f| f.running()).unwrap_or(0);
    let total = move || activity.with_feed(&session.get_value(), |f| f.len()).unwrap_or(0);
    let entries = move || {
        activity.with_feed(&session.get_value(), |f| f.newest(RENDER_CAP)).unwrap_or_default()
    };
    let hidden = move || total().saturating_sub(RENDER_CAP);
    let empty = move || {
        let (loaded, error) = activity.load_state(&session.get_value());
        if let Some(error) = error {
            return Some(
                view! { <div class="activity-note error" data-testid="activity-error">{error}</div> }
                    .into_any(),
            );
        }
        (total() == 0).then(|| {
            let text = if loaded { "Nothing yet." } else { "Loading…" };
            view! { <div class="activity-note muted">{text}</div> }.into_any()
        })
    };

    view! {
        <aside class="activity-panel" data-testid="activity-panel">
            <div class="panel-head">
                <span class="panel-title">"Activity"</span>
                <span class="muted small" data-testid="activity-running">
                    {move || match running() {
                        0 => String::new(),
                        n => format!("{n} running"),
                    }}
                </span>
                <span class="spacer"></span>
                <HidePanel name="activity" open />
            </div>
            {owner.then(|| view! { <TokenList session connect /> })}
            <div class="activity-list" data-testid="activity-list">
                <For
                    each=entries
                    key=|event| (event.id, event.status.as_str())
                    let:event
                >
                    <Entry event />
                </For>
                {empty}
                {move || {
                    let hidden = hidden();
                    (hidden > 0)
                        .then(|| {
                            view! {
                                <div class="activity-note muted">
                                    {format!("{hidden} older entries not shown")}
                                </div>
                            }
                        })
                }}
            </div>
        </aside>
    }
}

/// One feed entry.
#[component]
fn Entry(event: ActivityEvent) -> impl IntoView {
    let now = expect_context::<Now>();
    let status = event.status;
    let started = event.at_ms;
    let status_text = move || match status {
        ToolStatus::Started => format!("running {}", span(now.get() - started)),
        ToolStatus::Ok => "ok".to_owned(),
        ToolStatus::Error => "error".to_owned(),
        ToolStatus::Cancelled => "cancelled".to_owned(),
    };
    let duration =
        event.duration_ms.map(|ms| start_duration(i64::try_from(ms).unwrap_or(i64::MAX)));
    let title = event.token_id.as_ref().map(|id| format!("token {id}"));
    let words = describe(&event.kind, &event.summary);
    view! {
        <div
            class=format!("activity-entry status-{}", status.as_str())
            data-testid="activity-entry"
            data-event-id=event.id.to_string()
            data-status=status.as_str()
            data-kind=event.kind.clone()
        >
            <div class="entry-head">
                <span class="entry-time muted">{time_of_day(event.at_ms)}</span>
                <span class="entry-actor" title=title>{words.actor.clone().unwrap_or(event.actor)}</span>
                <span class="entry-what" data-testid="activity-what" title=event.kind.clone()>
                    {words.what}
                </span>
                {event
                    .guest_reported
                    .then(|| {
                        view! {
                            <span
                                class="guest-mark"
                                data-testid="activity-guest-reported"
                                title="reported by the sandbox itself (guest-agent mcp): the guest's word, not seen by the server"
                            >
                                "guest-reported"
                            </span>
                        }
                    })}
                <span class="spacer"></span>
                <span class="entry-status" data-testid="activity-status">
                    {(status == ToolStatus::Started).then(|| view! { <span class="spinner small"></span> })}
                    {status_text}
                    {duration.map(|d| view! { <span class="muted">{format!(" · {d}")}</span> })}
                </span>
            </div>
            {(!words.detail.is_empty())
                .then(|| {
                    view! {
                        <div class="entry-summary mono" data-testid="activity-summary">
                            {words.detail}
                        </div>
                    }
                })}
            {event
                .error
                .map(|error| {
                    view! { <div class="entry-error" data-testid="activity-entry-error">{error}</div> }
                })}
        </div>
    }
}

/// The session's agent tokens (tokens scoped to it), each with Revoke.
#[component]
fn TokenList(session: StoredValue<String>, connect: RwSignal<bool>) -> impl IntoView {
    let activity = expect_context::<ActivityStore>();
    let reporter = use_reporter();
    let tokens = RwSignal::new(None::<Result<Vec<ApiToken>, String>>);

    // Loads now, and again whenever a token is made or revoked.
    Effect::new(move |_| {
        activity.tokens_changed.track();
        spawn_local(async move {
            let result = api::tokens().await;
            let session = session.get_value();
            let result = match result {
                Ok(list) => Ok(list
                    .into_iter()
                    .filter(|token| token.session_id.as_deref() == Some(session.as_str()))
                    .collect()),
                Err(error) if error.is_unauthorized() => {
                    reporter.api("cannot list the tokens", &error);
                    return;
                }
                Err(error) => Err(format!("cannot list the tokens: {error}")),
            };
            tokens.try_set(Some(result));
        });
    });

    // `pending` is the row's button: busy until the answer, usable again after a failure.
    let revoke = move |id: String, pending: RwSignal<bool>| {
        spawn_local(async move {
            match api::revoke_token(&id).await {
                // Already gone counts as revoked.
                Ok(()) | Err(api::ApiError { status: 404, .. }) => {
                    tokens.try_update(|list| {
                        if let Some(Ok(list)) = list {
                            list.retain(|token| token.id != id);
                        }
                    });
                    activity.tokens_changed.update(|n| *n += 1);
                }
                Err(error) => {
                    pending.try_set(false);
                    reporter.api("cannot revoke the token", &error);
                }
            }
        });
    };

    let rows = move || match tokens.get() {
        None => view! { <div class="activity-note muted">"Loading…"</div> }.into_any(),
        Some(Err(message)) => view! { <div class="activity-note error">{message}</div> }.into_any(),
        Some(Ok(list)) if list.is_empty() => view! {
            <div class="activity-note muted">
                "No agent is connected. "
                <button
                    class="link-button"
                    data-testid="activity-connect"
                    on:click=move |_| connect.set(true)
                >
                    "Connect an agent"
                </button>
            </div>
        }
        .into_any(),
        Some(Ok(list)) => list
            .into_iter()
            .map(|token| view! { <TokenRow session token revoke /> })
            .collect_view()
            .into_any(),
    };

    view! {
        <section class="agent-tokens" data-testid="agent-tokens">
            <div class="section-title">"Agent tokens"</div>
            {rows}
        </section>
    }
}

/// One token: its name, when it was last used, Revoke.
#[component]
fn TokenRow(
    session: StoredValue<String>,
    token: ApiToken,
    revoke: impl Fn(String, RwSignal<bool>) + Copy + 'static,
) -> impl IntoView {
    let activity = expect_context::<ActivityStore>();
    let now = expect_context::<Now>();
    let pending = RwSignal::new(false);
    let listed = token.last_used_ms;
    let in_feed = {
        let id = token.id.clone();
        move || activity.with_feed(&session.get_value(), |feed| feed.last_use(&id)).flatten()
    };
    let used_text = move || match listed.max(in_feed()) {
        Some(ms) => format!("used {} ago", span(now.get() - ms)),
        None => "never used".to_owned(),
    };
    let id = token.id.clone();
    let question = "Revoke? Its calls stop now.";
    let confirmed = move || {
        pending.set(true);
        revoke(id.clone(), pending);
    };
    view! {
        <div class="token-row" data-testid="agent-token" data-token-id=token.id.clone()>
            <span class="token-name" title=format!("token {}", token.id)>{token.name}</span>
            <span class="muted small">{used_text}</span>
            <span class="spacer"></span>
            <ConfirmButton
                label="Revoke"
                question
                testid="agent-token-revoke"
                title="The agent's next call is refused, and a call it is making is cut"
                disabled=pending
                on_confirm=confirmed
            />
        </div>
    }
}
