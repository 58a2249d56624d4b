//! Error messages for people: a banner of recent errors (`data-testid="error-banner"`) and
//! the [`Reporter`] every API call's failure goes through (a 401 signs the tab out instead).

use std::time::Duration;

use leptos::prelude::*;

use crate::api::ApiError;
use crate::auth::AuthState;

/// How long an error stays up unless dismissed: long enough to be read after looking away.
const NOTICE_LIFETIME: Duration = Duration::from_secs(15);

/// One message.
#[derive(Clone, Debug, PartialEq)]
struct Notice {
    id: u64,
    message: String,
}

/// The banner's messages (context).
#[derive(Clone, Copy)]
pub struct Notices {
    list: RwSignal<Vec<Notice>>,
    next_id: RwSignal<u64>,
}

impl Notices {
    /// An empty list, provided as context.
    pub fn provide() -> Notices {
        let notices = Notices { list: RwSignal::new(Vec::new()), next_id: RwSignal::new(0) };
        provide_context(notices);
        notices
    }

    /// Shows `message` for a while.
    pub fn error(&self, message: impl Into<String>) {
        let message = message.into();
        let id = self.next_id.get_untracked();
        self.next_id.set(id + 1);
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
            self.auth.signed_out();
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
