//! Messages for people: a banner of recent errors (`data-testid="error-banner"`), the
//! [`Reporter`] every API call's failure goes through (a 401 signs the tab out instead), and
//! toasts (`data-testid="toast"`): passing news with an optional link, such as "Port 8000 is
//! listening — open preview".

use std::time::Duration;

use leptos::prelude::*;

use crate::api::ApiError;
use crate::auth::AuthState;

/// How long an error stays up unless dismissed: long enough to be read after looking away.
const NOTICE_LIFETIME: Duration = Duration::from_secs(15);

/// How long a toast stays up unless dismissed or followed: news, not an error to act on.
const TOAST_LIFETIME: Duration = Duration::from_secs(20);

/// Toasts shown at once: a burst of news (a dev server opening three ports) stays readable.
const TOAST_CAP: usize = 3;

/// One message.
#[derive(Clone, Debug, PartialEq)]
struct Notice {
    id: u64,
    message: String,
}

/// Passing news, at the bottom right.
#[derive(Clone, Debug, PartialEq)]
pub struct Toast {
    /// What it is about (`port/{session}/{port}/`): a toast with the same key replaces it,
    /// and [`Notices::dismiss_toasts`] removes toasts by key prefix.
    pub key: String,
    /// The news.
    pub text: String,
    /// What to do about it.
    pub link: Option<ToastLink>,
}

/// A toast's button: a link, opened in a new tab (a preview) or in place.
#[derive(Clone, Debug, PartialEq)]
pub struct ToastLink {
    /// Its words ("open preview").
    pub label: String,
    /// Where it goes.
    pub href: String,
    /// Opens a new browser tab.
    pub new_tab: bool,
    /// Its `data-testid`.
    pub testid: String,
}

/// A toast on screen.
#[derive(Clone, Debug, PartialEq)]
struct Shown {
    id: u64,
    toast: Toast,
}

/// The banner's messages and the toasts (context).
#[derive(Clone, Copy)]
pub struct Notices {
    list: RwSignal<Vec<Notice>>,
    toasts: RwSignal<Vec<Shown>>,
    next_id: RwSignal<u64>,
}

impl Notices {
    /// An empty list, provided as context.
    pub fn provide() -> Notices {
        let notices = Notices {
            list: RwSignal::new(Vec::new()),
            toasts: RwSignal::new(Vec::new()),
            next_id: RwSignal::new(0),
        };
        provide_context(notices);
        notices
    }

    fn next_id(&self) -> u64 {
        let id = self.next_id.get_untracked();
        self.next_id.set(id + 1);
        id
    }

    /// Shows `toast` for a while, replacing one with the same key.
    pub fn toast(&self, toast: Toast) {
        let id = self.next_id();
        self.toasts.update(|toasts| {
            toasts.retain(|shown| shown.toast.key != toast.key);
            toasts.push(Shown { id, toast });
            if toasts.len() > TOAST_CAP {
                toasts.remove(0);
            }
        });
        let toasts = self.toasts;
        set_timeout(
            move || toasts.try_update(|toasts| toasts.retain(|t| t.id != id)).unwrap_or_default(),
            TOAST_LIFETIME,
        );
    }

    /// Removes the toasts whose key starts with `prefix` (their news is stale: the port
    /// closed, the session is no longer shown).
    pub fn dismiss_toasts(&self, prefix: &str) {
        self.toasts.try_update(|toasts| toasts.retain(|t| !t.toast.key.starts_with(prefix)));
    }

    fn dismiss_toast(&self, id: u64) {
        self.toasts.update(|toasts| toasts.retain(|toast| toast.id != id));
    }

    /// Shows `message` for a while.
    pub fn error(&self, message: impl Into<String>) {
        let message = message.into();
        let id = self.next_id();
        self.list.update(|list| {
            // The same message twice in a row (a retry failing again) is shown once.
            list.retain(|notice| notice.message != message);
            list.push(Notice { id, message });
            // Keep the banner short.
            if list.len() > 4 {
                list.remove(0);
            }
        });
        let list = self.list;
        set_timeout(
            move || list.try_update(|list| list.retain(|n| n.id != id)).unwrap_or_default(),
            NOTICE_LIFETIME,
        );
    }

    fn dismiss(&self, id: u64) {
        self.list.update(|list| list.retain(|notice| notice.id != id));
    }
}

/// Turns a failed call into what a person sees: signed out on 401, otherwise a notice
/// prefixed with what was being done.
#[derive(Clone, Copy)]
pub struct Reporter {
    notices: Notices,
    auth: AuthState,
}

impl Reporter {
    /// Reports `error` met while `doing` (e.g. "cannot create the session").
    pub fn api(&self, doing: &str, error: &ApiError) {
        if error.is_unauthorized() {
            self.auth.signed_out(error);
        } else {
            self.notices.error(format!("{doing}: {error}"));
        }
    }

    /// Shows a message that did not come from a call.
    pub fn message(&self, message: impl Into<String>) {
        self.notices.error(message);
    }
}

/// The reporter of the current tab (needs [`Notices`] and [`AuthState`] in context).
pub fn use_reporter() -> Reporter {
    Reporter { notices: expect_context::<Notices>(), auth: expect_context::<AuthState>() }
}

/// The banner of recent errors, at the top of the page.
#[component]
pub fn ErrorBanner() -> impl IntoView {
    let notices = expect_context::<Notices>();
    move || {
        let list = notices.list.get();
        (!list.is_empty()).then(|| {
            view! {
                <div class="error-banner" role="alert" data-testid="error-banner">
                    {list
                        .into_iter()
                        .map(|notice| {
                            let id = notice.id;
                            view! {
                                <div class="error-line">
                                    <span class="error-icon">"!"</span>
                                    <span class="error-text">{notice.message}</span>
                                    <button
                                        class="icon-button"
                                        title="Dismiss"
                                        on:click=move |_| notices.dismiss(id)
                                    >
                                        "×"
                                    </button>
                                </div>
                            }
                        })
                        .collect_view()}
                </div>
            }
        })
    }
}

/// The toasts, at the bottom right of the page.
#[component]
pub fn Toasts() -> impl IntoView {
    let notices = expect_context::<Notices>();
    view! {
        <div class="toasts" role="status" aria-live="polite">
            <For each=move || notices.toasts.get() key=|shown| shown.id let:shown>
                <ToastView shown notices />
            </For>
        </div>
    }
}

/// One toast: its news, its link (following it dismisses the toast), a close button.
#[component]
fn ToastView(shown: Shown, notices: Notices) -> impl IntoView {
    let id = shown.id;
    let link = shown.toast.link.map(|link| {
        let target = link.new_tab.then_some("_blank");
        let rel = link.new_tab.then_some("noopener");
        view! {
            <a
                class="button small primary"
                href=link.href
                target=target
                rel=rel
                data-testid=link.testid
                on:click=move |_| notices.dismiss_toast(id)
            >
                {link.label}
            </a>
        }
    });
    view! {
        <div class="toast" data-testid="toast" data-key=shown.toast.key>
            <span class="toast-text">{shown.toast.text}</span>
            {link.map(|link| view! { <span class="muted">"—"</span> {link} })}
            <button
                class="icon-button"
                title="Dismiss"
                aria-label="Dismiss"
                on:click=move |_| notices.dismiss_toast(id)
            >
                "×"
            </button>
        </div>
    }
}
