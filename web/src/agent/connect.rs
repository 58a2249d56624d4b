//! "Connect an agent": makes a token that works for this session only, then shows the
//! session's MCP endpoint and ready-to-paste configurations for Claude Code, Cursor and any
//! MCP client. The secret is shown once: closing the dialog forgets it.

use std::collections::BTreeMap;

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::Serialize;

use super::ActivityStore;
use crate::api::{self, NewToken};
use crate::clipboard::Snippet;
use crate::notice::use_reporter;

/// The session's MCP endpoint (Streamable HTTP).
pub fn mcp_url(origin: &str, session: &str) -> String {
    format!("{origin}/api/sessions/{session}/mcp")
}

/// A short, shell-safe name for the server entry: `flint-` and the session id's start.
pub fn server_name(session: &str) -> String {
    let short: String = session
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(8)
        .collect::<String>()
        .to_ascii_lowercase();
    format!("flint-{short}")
}

/// `claude mcp add ...`, for a terminal.
pub fn claude_command(session: &str, url: &str, token: &str) -> String {
    let name = server_name(session);
    format!(
        "claude mcp add --transport http {name} {url} --header \"Authorization: Bearer {token}\""
    )
}

/// An MCP server entry, its fields in the order people expect to read them.
#[derive(Serialize)]
struct ServerEntry<'a> {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    url: &'a str,
    headers: Headers,
}

#[derive(Serialize)]
struct Headers {
    #[serde(rename = "Authorization")]
    authorization: String,
}

fn entry<'a>(kind: Option<&'static str>, url: &'a str, token: &str) -> ServerEntry<'a> {
    ServerEntry { kind, url, headers: Headers { authorization: format!("Bearer {token}") } }
}

/// `.cursor/mcp.json`.
pub fn cursor_config(url: &str, token: &str) -> String {
    let servers = BTreeMap::from([("flint", entry(None, url, token))]);
    let config = BTreeMap::from([("mcpServers", servers)]);
    serde_json::to_string_pretty(&config).unwrap_or_default()
}

/// A client-neutral server entry.
pub fn generic_config(url: &str, token: &str) -> String {
    serde_json::to_string_pretty(&entry(Some("http"), url, token)).unwrap_or_default()
}

/// The default token name: `agent 2026-11-23 14:05` (local time).
fn default_name() -> String {
    let date = js_sys::Date::new_0();
    format!(
        "agent {:04}-{:02}-{:02} {:02}:{:02}",
        date.get_full_year(),
        date.get_month() + 1,
        date.get_date(),
        date.get_hours(),
        date.get_minutes()
    )
}

/// The dialog; `open` shows it. A made token lands in the activity panel's token list.
#[component]
pub fn ConnectDialog(session: String, open: RwSignal<bool>) -> impl IntoView {
    let activity = expect_context::<ActivityStore>();
    let reporter = use_reporter();
    let session = StoredValue::new(session);
    let name = RwSignal::new(String::new());
    let pending = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let made = RwSignal::new(None::<NewToken>);

    // Each opening starts afresh: a new default name, no old secret on screen.
    Effect::new(move |_| {
        if open.get() {
            name.set(default_name());
            error.set(None);
            made.set(None);
        }
    });

    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        if pending.get_untracked() {
            return;
        }
        let name = name.get_untracked().trim().to_owned();
        if name.is_empty() {
            error.set(Some("give the token a name".to_owned()));
            return;
        }
        pending.set(true);
        error.set(None);
        spawn_local(async move {
            let result = api::create_session_token(&name, &session.get_value()).await;
            pending.set(false);
            match result {
                Ok(token) => {
                    made.set(Some(token));
                    activity.tokens_changed.update(|n| *n += 1);
                }
                Err(e) if e.is_unauthorized() => reporter.api("cannot make a token", &e),
                Err(e) => error.set(Some(format!("cannot make a token: {e}"))),
            }
        });
    };
    let close = move |_| {
        if !pending.get_untracked() {
            made.set(None);
            open.set(false);
        }
    };

    let form = move || {
        view! {
            <form class="connect-form" on:submit=submit>
                <p>
                    "An AI agent (Claude Code, Cursor, any MCP client) works in this session's "
                    "shell and browser while you watch: every call it makes shows in the "
                    "Activity panel. "
                    "It gets a token that works for this session only."
                </p>
                <label class="field">
                    <span>"Token name"</span>
                    <input
                        data-testid="connect-agent-name"
                        type="text"
                        maxlength="100"
                        prop:value=move || name.get()
                        on:input=move |ev| name.set(event_target_value(&ev))
                        disabled=move || pending.get()
                    />
                </label>
                {move || {
                    error
                        .get()
                        .map(|message| {
                            view! {
                                <div class="form-error" role="alert" data-testid="connect-agent-error">
                                    {message}
                                </div>
                            }
                        })
                }}
                <div class="actions">
                    <button type="button" class="button ghost" on:click=close>
                        "Cancel"
                    </button>
                    <button
                        type="submit"
                        class="button primary"
                        data-testid="connect-agent-create"
                        disabled=move || pending.get()
                    >
                        {move || if pending.get() { "Making a token…" } else { "Make a token" }}
                    </button>
                </div>
            </form>
        }
    };

    let result = move |token: NewToken| {
        let origin = window().location().origin().unwrap_or_default();
        let session = session.get_value();
        let url = mcp_url(&origin, &session);
        let secret = token.token;
        let claude = claude_command(&session, &url, &secret);
        let cursor = cursor_config(&url, &secret);
        let generic = generic_config(&url, &secret);
        view! {
            <div class="connect-result" data-testid="connect-agent-result">
                <div class="once-warning">
                    "This token is shown once: copy it now. Closing this dialog forgets it; "
                    "revoke it in the Activity panel."
                </div>
                <Snippet label="Token" testid="connect-agent-token" copy_testid="connect-agent-copy-token" text=secret />
                <Snippet label="MCP endpoint (Streamable HTTP)" testid="connect-agent-url" copy_testid="connect-agent-copy-url" text=url />
                <Snippet label="Claude Code (run in a terminal)" testid="connect-agent-claude" copy_testid="connect-agent-copy-claude" text=claude />
                <Snippet label="Cursor (.cursor/mcp.json)" testid="connect-agent-cursor" copy_testid="connect-agent-copy-cursor" text=cursor />
                <Snippet label="Any MCP client (JSON)" testid="connect-agent-json" copy_testid="connect-agent-copy-json" text=generic />
                <div class="actions">
                    <button
                        type="button"
                        class="button primary"
                        data-testid="connect-agent-done"
                        on:click=close
                    >
                        "Done"
                    </button>
                </div>
            </div>
        }
    };

    move || {
        open.get().then(|| {
            let body = move || match made.get() {
                Some(token) => result(token).into_any(),
                None => form().into_any(),
            };
            view! {
                <div class="modal-backdrop" on:click=close>
                    <div
                        class="card modal wide"
                        role="dialog"
                        aria-label="Connect an agent"
                        data-testid="connect-agent-dialog"
                        on:click=|event| event.stop_propagation()
                    >
                        <h2>"Connect an agent"</h2>
                        {body}
                    </div>
                </div>
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{claude_command, cursor_config, generic_config, mcp_url, server_name};

    #[test]
    fn configurations_name_the_endpoint_and_the_token() {
        let url = mcp_url("https://flint.example", "abc123def456");
        assert_eq!(url, "https://flint.example/api/sessions/abc123def456/mcp");
        assert_eq!(server_name("abc123def456"), "flint-abc123de");
        assert_eq!(
            claude_command("abc123def456", &url, "flint_x"),
            "claude mcp add --transport http flint-abc123de \
             https://flint.example/api/sessions/abc123def456/mcp \
             --header \"Authorization: Bearer flint_x\""
        );
        let cursor: serde_json::Value =
            serde_json::from_str(&cursor_config(&url, "flint_x")).unwrap_or_default();
        assert_eq!(cursor["mcpServers"]["flint"]["url"], url.as_str());
        assert_eq!(cursor["mcpServers"]["flint"]["headers"]["Authorization"], "Bearer flint_x");
        assert_eq!(
            generic_config(&url, "flint_x"),
            "{\n  \"type\": \"http\",\n  \"url\": \"https://flint.example/api/sessions/abc123def456/mcp\",\n  \"headers\": {\n    \"Authorization\": \"Bearer flint_x\"\n  }\n}"
        );
    }
}
