//! The app's frame: sign-in state, then the header, the error banner and the routes.

use leptos::prelude::*;
use leptos_router::components::{Route, Router, Routes};
use leptos_router::path;

use crate::agent::ActivityStore;
use crate::api::Me;
use crate::auth::{AccessEndedPage, Auth, AuthState, SignedOutPage, UnreachablePage, UserMenu};
use crate::clock::Now;
use crate::events::SessionStore;
use crate::notice::{ErrorBanner, Notices, Toasts};
use crate::people::JoinPage;
use crate::ports::PortStore;
use crate::sessions::SessionsPage;
use crate::workspace::WorkspacePage;

/// The whole app.
#[component]
pub fn App() -> impl IntoView {
    Notices::provide();
    // An invite link: the join page, signed in or not.
    let path = window().location().pathname().unwrap_or_default();
    if let Some(token) = crate::people::join::join_token(&path) {
        let token = token.to_owned();
        return view! { <JoinPage token /> }.into_any();
    }
    let auth = AuthState::provide();
    Now::provide();
    // Only the kind of state picks the page: a new `Me` for the same person rebuilds nothing.
    let page = Memo::new(move |_| auth.0.get());
    (move || match page.get() {
        Auth::Checking => view! {
            <main class="center-page">
                <span class="spinner"></span>
            </main>
        }
        .into_any(),
        Auth::SignedIn(me) => view! { <Shell me /> }.into_any(),
        Auth::SignedOut => view! { <SignedOutPage /> }.into_any(),
        Auth::AccessEnded(why) => view! { <AccessEndedPage why /> }.into_any(),
        Auth::Unreachable(message) => view! { <UnreachablePage message /> }.into_any(),
    })
    .into_any()
}

/// The signed-in app: the live session store lives as long as this.
#[component]
fn Shell(me: Me) -> impl IntoView {
    ActivityStore::provide();
    PortStore::provide();
    SessionStore::provide();
    view! {
        <Router>
            <div class="app">
                <header class="app-header">
                    <a class="brand" href="/">
                        <span class="brand-mark">"◆"</span>
                        " Flint"
                    </a>
                    <div class="spacer"></div>
                    <UserMenu me />
                </header>
                <ErrorBanner />
                <Routes fallback=|| {
                    view! { <NotFound title="Not found" detail="There is no page at this address." /> }
                }>
                    <Route path=path!("/") view=SessionsPage />
                    <Route path=path!("/s/:id") view=WorkspacePage />
                </Routes>
                <Toasts />
            </div>
        </Router>
    }
}

/// A plain 404 page: what is missing and the way back to the list.
#[component]
pub fn NotFound(title: &'static str, detail: &'static str) -> impl IntoView {
    view! {
        <main class="center-page" data-testid="not-found">
            <div class="card narrow">
                <h1>{title}</h1>
                <p class="muted">{detail}</p>
                <a class="button" href="/" data-testid="not-found-back">
                    "← All sessions"
                </a>
            </div>
        </main>
    }
}
