//! `/join/{token}`: an invite link opened. The invitee picks the name others will see; the
//! server answers with a guest cookie for that session only, and the page opens the session.
//! Shown whether or not the browser is signed in (a guest usually is not).

use leptos::html::Input;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api;

/// The token of a `/join/{token}` path, if this is one.
pub fn join_token(path: &str) -> Option<&str> {
    path.strip_prefix("/join/").filter(|t| !t.is_empty() && !t.contains('/'))
}

/// The join page for `token`.
#[component]
pub fn JoinPage(token: String) -> impl IntoView {
    let name = NodeRef::<Input>::new();
    let error = RwSignal::new(None::<String>);
    let joining = RwSignal::new(false);
    let token = StoredValue::new(token);
    let join = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let Some(field) = name.get_untracked() else { return };
        let chosen = field.value();
        if chosen.trim().is_empty() {
            error.set(Some("Enter the name the others will see.".to_owned()));
            return;
        }
        joining.set(true);
        error.set(None);
        spawn_local(async move {
            match api::accept_invite(&token.get_value(), chosen.trim()).await {
                Ok(joined) => {
                    // A full load: the app starts again with the guest cookie.
                    let _ = window().location().assign(&format!("/s/{}", joined.session_id));
                }
                Err(failure) => {
                    joining.set(false);
                    error.set(Some(failure.message));
                }
            }
        });
    };
    view! {
        <main class="center-page" data-testid="join-page">
            <div class="card narrow">
                <div class="brand large">
                    <span class="brand-mark">"◆"</span>
                    " Flint"
                </div>
                <h1>"You are invited to a session"</h1>
                <p class="muted">
                    "Pick the name the others in the session will see next to your cursor and keystrokes."
                </p>
                <form class="join-form" on:submit=join>
                    <input
                        node_ref=name
                        data-testid="join-name"
                        placeholder="Your name"
                        maxlength="40"
                        autofocus=true
                    />
                    <button
                        class="button primary"
                        data-testid="join-submit"
                        disabled=move || joining.get()
                    >
                        {move || if joining.get() { "Joining…" } else { "Join" }}
                    </button>
                </form>
                {move || {
                    error
                        .get()
                        .map(|message| {
                            view! {
                                <p class="form-error" data-testid="join-error">
                                    {message}
                                </p>
                            }
                        })
                }}
            </div>
        </main>
    }
}

#[cfg(test)]
mod tests {
    use super::join_token;

    #[test]
    fn only_join_paths_carry_a_token() {
        assert_eq!(join_token("/join/abc123"), Some("abc123"));
        assert_eq!(join_token("/join/"), None);
        assert_eq!(join_token("/join/a/b"), None);
        assert_eq!(join_token("/s/abc"), None);
    }
}
