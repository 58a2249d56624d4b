//! Preview URLs in the UI: the listening ports of the open session, live, and the Ports
//! panel (open a preview, copy its URL, make it public or private, share links).
//!
//! [`PortStore`] holds the ports of followed sessions (the open workspace's, while it
//! runs): loaded from `GET /api/sessions/{id}/previews`, then replaced by the events
//! websocket's `ports` messages (see `events.rs`), and loaded again after each snapshot (a
//! reconnect may have missed changes). A port that opens after the first list is announced
//! with a toast.

mod list;
mod panel;

use std::collections::HashMap;

use leptos::prelude::*;
use leptos::task::spawn_local;
use proto::api::PreviewPort;

use crate::api;
use crate::notice::{Notices, Reporter, Toast, ToastLink, use_reporter};

pub use list::{Change, PortList, diff, listening_text, process_label};
pub use panel::PortsPanel;

/// A followed session's ports and how loading them went.
#[derive(Clone, Debug, Default, PartialEq)]
struct Followed {
    list: PortList,
    /// Why the list could not be loaded (shown in the panel).
    error: Option<String>,
}

/// The ports of followed sessions (context).
#[derive(Clone, Copy)]
pub struct PortStore {
    followed: RwSignal<HashMap<String, Followed>>,
    notices: Notices,
    reporter: Reporter,
}

/// The key of a port's toasts (see [`Toast::key`]); a session's all start with
/// `port/{session}/`.
fn toast_key(session: &str, port: Option<u16>) -> String {
    match port {
        Some(port) => format!("port/{session}/{port}/"),
        None => format!("port/{session}/"),
    }
}

impl PortStore {
    /// An empty store, provided as context (needs the notices and sign-in state).
    pub fn provide() -> PortStore {
        let store = PortStore {
            followed: RwSignal::new(HashMap::new()),
            notices: expect_context::<Notices>(),
            reporter: use_reporter(),
        };
        provide_context(store);
        store
    }

    /// Keeps `session`'s ports from now on (until [`PortStore::unfollow`]); loads them
    /// (again, when already followed).
    pub fn follow(self, session: &str) {
        self.followed.update(|followed| {
            followed.entry(session.to_owned()).or_default();
        });
        self.load(session.to_owned());
    }

    /// Forgets `session`'s ports, and its toasts.
    pub fn unfollow(self, session: &str) {
        self.followed.try_update(|followed| followed.remove(session));
        self.notices.dismiss_toasts(&toast_key(session, None));
    }

    /// A session's whole list, from the websocket.
    pub fn update(self, session: &str, ports: Vec<PreviewPort>) {
        let change = self
            .followed
            .try_update(|followed| followed.get_mut(session).map(|slot| slot.list.update(ports)))
            .flatten();
        if let Some(change) = change {
            self.announce(session, change);
        }
    }

    /// The events socket (re)started: what it may have missed is loaded again.
    pub fn resync(self) {
        let sessions: Vec<String> = self.followed.with_untracked(|f| f.keys().cloned().collect());
        for session in sessions {
            self.load(session);
        }
    }

    fn load(self, session: String) {
        let Some(since) = self
            .followed
            .with_untracked(|followed| followed.get(&session).map(|slot| slot.list.updates()))
        else {
            return;
        };
        spawn_local(async move {
            let result = api::previews(&session).await;
            if let Err(error) = &result
                && error.is_unauthorized()
            {
                self.reporter.api("cannot list the ports", error);
            }
            let change = self
                .followed
                .try_update(|followed| {
                    let slot = followed.get_mut(&session)?;
                    match result {
                        Ok(ports) => {
                            slot.error = None;
                            Some(slot.list.loaded(since, ports))
                        }
                        Err(error) => {
                            slot.error = Some(format!("cannot list the ports: {error}"));
                            None
                        }
                    }
                })
                .flatten();
            if let Some(change) = change {
                self.announce(&session, change);
            }
        });
    }

    /// Toasts the ports that opened; drops the toasts of those that closed.
    fn announce(self, session: &str, change: Change) {
        for port in change.closed {
            self.notices.dismiss_toasts(&toast_key(session, Some(port)));
        }
        for port in change.opened {
            self.notices.toast(Toast {
                key: toast_key(session, Some(port.port)),
                text: listening_text(port.port),
                link: Some(ToastLink {
                    label: "open preview".to_owned(),
                    href: port.open_path,
                    new_tab: true,
                    testid: format!("toast-open-{}", port.port),
                }),
            });
        }
    }

    /// Changes one of `session`'s ports in place: the answer to a change this tab made,
    /// shown before the socket's list arrives.
    pub fn edit(self, session: &str, port: u16, f: impl FnOnce(&mut PreviewPort)) {
        self.followed.try_update(|followed| {
            if let Some(slot) = followed.get_mut(session) {
                slot.list.edit(port, f);
            }
        });
    }

    /// Reads `session`'s list (tracked); `None` inside when it is not followed or its
    /// first list has not arrived.
    pub fn with_ports<T>(self, session: &str, f: impl FnOnce(Option<&[PreviewPort]>) -> T) -> T {
        self.followed.with(|followed| f(followed.get(session).and_then(|slot| slot.list.ports())))
    }

    /// One of `session`'s ports, while it listens (tracked).
    pub fn port(self, session: &str, port: u16) -> Option<PreviewPort> {
        self.followed
            .with(|followed| followed.get(session).and_then(|slot| slot.list.port(port).cloned()))
    }

    /// Why `session`'s list could not be loaded (tracked).
    fn error(self, session: &str) -> Option<String> {
        self.followed.with(|followed| followed.get(session).and_then(|slot| slot.error.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::toast_key;

    #[test]
    fn a_sessions_toast_keys_share_its_prefix_only() {
        let all = toast_key("s1", None);
        assert!(toast_key("s1", Some(8000)).starts_with(&all));
        assert!(!toast_key("s10", Some(8000)).starts_with(&all));
        // Closing port 80 leaves port 8000's toast.
        assert!(!toast_key("s1", Some(8000)).starts_with(&toast_key("s1", Some(80))));
    }
}
