//! The agent co-tenant in the UI: the activity feed of the open session (what agents did
//! and are doing, live), its agent tokens, and the "Connect an agent" dialog.
//!
//! [`ActivityStore`] holds the feeds of followed sessions (the open workspace's): loaded
//! from `GET /api/sessions/{id}/events`, then kept live by the events websocket's `activity`
//! messages (see `events.rs`), and loaded again after each snapshot (a reconnect may have
//! missed events).

mod connect;
mod feed;
mod panel;
mod words;

use std::collections::{BTreeSet, HashMap};

use leptos::prelude::*;
use leptos::task::spawn_local;
use proto::api::ActivityEvent;

use crate::api;
use crate::notice::{Reporter, use_reporter};

pub use connect::ConnectDialog;
pub use feed::{FEED_CAP, Feed};
pub use panel::ActivityPanel;

/// A followed session's feed and how loading it went.
#[derive(Clone, Debug, Default, PartialEq)]
struct Followed {
    feed: Feed,
    /// The REST list has arrived at least once.
    loaded: bool,
    /// Why the feed could not be loaded (shown in the panel).
    error: Option<String>,
}

/// The activity of followed sessions (context).
#[derive(Clone, Copy)]
pub struct ActivityStore {
    followed: RwSignal<HashMap<String, Followed>>,
    /// Bumped whenever a token is made or revoked, by anyone: token lists reload.
    pub tokens_changed: RwSignal<u64>,
    reporter: Reporter,
}

impl ActivityStore {
    /// An empty store, provided as context (needs the notices and sign-in state).
    pub fn provide() -> ActivityStore {
        let store = ActivityStore {
            followed: RwSignal::new(HashMap::new()),
            tokens_changed: RwSignal::new(0),
            reporter: use_reporter(),
        };
        provide_context(store);
        store
    }

    /// Keeps `session`'s feed from now on (until [`ActivityStore::unfollow`]).
    pub fn follow(self, session: &str) {
        self.followed.update(|followed| {
            followed.entry(session.to_owned()).or_default();
        });
        self.load(session.to_owned());
    }

    /// Forgets `session`'s feed.
    pub fn unfollow(self, session: &str) {
        self.followed.try_update(|followed| followed.remove(session));
    }

    /// An event from the websocket.
    pub fn record(self, event: ActivityEvent) {
        if event.kind.starts_with("token.") {
            self.tokens_changed.update(|n| *n += 1);
        }
        let Some(session) = event.session_id.clone() else { return };
        self.followed.update(|followed| {
            if let Some(slot) = followed.get_mut(&session) {
                slot.feed.apply(event);
            }
        });
    }

    /// The events socket (re)started: what it may have missed is loaded again.
    pub fn resync(self) {
        let sessions: Vec<String> = self.followed.with_untracked(|f| f.keys().cloned().collect());
        for session in sessions {
            self.load(session);
        }
        self.tokens_changed.update(|n| *n += 1);
    }

    fn load(self, session: String) {
        spawn_local(async move {
            let result = api::session_events(&session).await;
            if let Err(error) = &result
                && error.is_unauthorized()
            {
                self.reporter.api("cannot load the activity", error);
            }
            self.followed.try_update(|followed| {
                let Some(slot) = followed.get_mut(&session) else { return };
                match result {
                    Ok(events) => {
                        for event in events {
                            slot.feed.apply(event);
                        }
                        slot.loaded = true;
                        slot.error = None;
                    }
                    Err(error) => slot.error = Some(format!("cannot load the activity: {error}")),
                }
            });
        });
    }

    /// Reads `session`'s feed (tracked); `None` when it is not followed.
    pub fn with_feed<T>(self, session: &str, f: impl FnOnce(&Feed) -> T) -> Option<T> {
        self.followed.with(|followed| followed.get(session).map(|slot| f(&slot.feed)))
    }

    /// Whether the feed's first load finished, and its error (tracked).
    fn load_state(self, session: &str) -> (bool, Option<String>) {
        self.followed.with(|followed| {
            followed.get(session).map_or((false, None), |slot| (slot.loaded, slot.error.clone()))
        })
    }

    /// The terminals of `session` an agent is typing into now (tracked).
    pub fn typing(self, session: &str) -> BTreeSet<String> {
        self.with_feed(session, Feed::typing).unwrap_or_default()
    }
}
