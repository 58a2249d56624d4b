//! Who is signed in: `/api/me` at start-up, the signed-out page, the sign-out button.
//!
//! Signing in happens outside the app: the login link printed by `flint serve` sets an
//! HttpOnly cookie and redirects to `/`. Any 401 later (the cookie expired or was revoked)
//! switches the whole tab to the signed-out page; a guest, who has no sign-in link, gets the
//! page saying their access ended and why (the server's `access_ended`).

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::{self, Me};

/// Sign-in state of the tab.
#[derive(Clone, Debug, PartialEq)]
pub enum Auth {
    /// `/api/me` has not answered yet.
    Checking,
    /// Signed in.
    SignedIn(Me),
    /// No valid cookie.
    SignedOut,
    /// A guest's cookie stopped working: the server's words for why.
    AccessEnded(String),
    /// The server could not be asked.
    Unreachable(String),
}

/// The tab's [`Auth`] (context).
#[derive(Clone, Copy)]
pub struct AuthState(pub RwSignal<Auth>);

impl AuthState {
    /// Starts checking, provided as context.
    pub fn provide() -> AuthState {
        let state = AuthState(RwSignal::new(Auth::Checking));
        provide_context(state);
        state.check();
        state
    }

    /// Asks `/api/me` (again).
    pub fn check(self) {
        spawn_local(async move {
            let auth = match api::me().await {
                Ok(me) => Auth::SignedIn(me),
                Err(error) if error.is_unauthorized() => out(&error),
                Err(error) => Auth::Unreachable(error.message),
            };
            self.0.set(auth);
        });
    }

    /// A call answered 401 with `error`.
    pub fn signed_out(self, error: &api::ApiError) {
        let auth = out(error);
        if self.0.get_untracked() != auth {
            self.0.set(auth);
        }
    }

    /// The person signed out themselves.
    pub fn left(self) {
        self.0.set(Auth::SignedOut);
    }
}

/// What a 401 means for the tab.
fn out(error: &api::ApiError) -> Auth {
    if error.is_access_ended() { Auth::AccessEnded(error.message.clone()) } else { Auth::SignedOut }
}

/// The page shown without a valid sign-in cookie.
#[component]
pub fn SignedOutPage() -> impl IntoView {
    view! {
        <main class="center-page" data-testid="signed-out">
            <div class="card narrow">
                <div class="brand large">
                    <span class="brand-mark">"◆"</span>
                    " Flint"
                </div>
                <h1>"You are signed out"</h1>
                <p>
                    "Open the sign-in link printed by " <code>"flint serve"</code>
                    ", or run " <code>"flint login-url"</code>
                    " on the server for a new one. Each link works once."
                </p>
            </div>
        </main>
    }
}

/// The page a guest lands on once their access ended: what happened, in the server's
/// words, and what to do (they have no sign-in link of their own).
#[component]
pub fn AccessEndedPage(why: String) -> impl IntoView {
    // "your access to this session ended: the session was deleted" → its reason, capitalised.
    let reason = why.split_once(": ").map_or(why.as_str(), |(_, reason)| reason);
    let mut chars = reason.chars();
    let reason = match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => String::new(),
    };
    view! {
        <main class="center-page" data-testid="access-ended">
            <div class="card narrow">
                <div class="brand large">
                    <span class="brand-mark">"◆"</span>
                    " Flint"
                </div>
                <h1>"Your access to this session ended"</h1>
                <p data-testid="access-ended-reason">{reason}</p>
                <p class="muted">
                    "To join again, ask the person who invited you for a new invite link."
                </p>
            </div>
        </main>
    }
}

/// The page shown when the server does not answer.
#[component]
pub fn UnreachablePage(message: String) -> impl IntoView {
    let auth = expect_context::<AuthState>();
    view! {
        <main class="center-page">
            <div class="card narrow">
                <h1>"Cannot reach Flint"</h1>
                <p class="muted">{message}</p>
                <button class="button primary" on:click=move |_| auth.check()>
                    "Try again"
                </button>
            </div>
        </main>
    }
}

/// The signed-in person and the sign-out button, for the header.
#[component]
pub fn UserMenu(me: Me) -> impl IntoView {
    let auth = expect_context::<AuthState>();
    let reporter = crate::notice::use_reporter();
    let signing_out = RwSignal::new(false);
    let sign_out = move |_| {
        signing_out.set(true);
        spawn_local(async move {
            match api::logout().await {
                Ok(()) => auth.left(),
                Err(error) => {
                    signing_out.set(false);
                    reporter.api("cannot sign out", &error);
                }
            }
        });
    };
    let title = if me.is_admin { format!("{} (admin)", me.id) } else { me.id.clone() };
    view! {
        <div class="user-menu">
            <span class="user-name" title=title>
                {me.name}
            </span>
            <button
                class="button ghost small"
                data-testid="sign-out"
                disabled=move || signing_out.get()
                on:click=sign_out
            >
                "Sign out"
            </button>
        </div>
    }
}
