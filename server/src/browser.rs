//! The shared browser's control-plane side: who drove each session's page last, which every
//! Browser panel shows ("take control"). A person drives through the browser websocket
//! ([`crate::api::browser_ws`]); an AI agent through its `browser_*` MCP tools, seen here as
//! the activity feed's `mcp.browser_*` entries (served over HTTP or reported from the
//! sandbox's stdio MCP alike).
//!
//! The browser itself (Chromium, tabs, screencast, input replay) is the guest agent's
//! (the `guest-agent` binary's `browser` module); the server only relays.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use proto::browser::{Driver, DriverKind};
use tokio::sync::{broadcast::error::RecvError, watch};

use crate::sessions::{SessionChange, Sessions};

/// Activity kinds that drive the page: the agent's browser tools.
const AGENT_BROWSER_KIND: &str = "mcp.browser_";

/// Who drives each session's shared browser.
#[derive(Debug, Default)]
pub struct Browsers {
    drivers: Mutex<HashMap<String, Arc<watch::Sender<Option<Driver>>>>>,
}

impl Browsers {
    /// The registry, following `sessions`' activity feed for agents' browser calls (and
    /// forgetting deleted sessions) for as long as it lives.
    pub fn new(sessions: &Sessions) -> Arc<Browsers> {
        let browsers = Arc::new(Browsers::default());
        tokio::spawn(follow(Arc::downgrade(&browsers), sessions.subscribe()));
        browsers
    }

    /// The session's "who drives" signal.
    pub fn driver(&self, session_id: &str) -> Arc<watch::Sender<Option<Driver>>> {
        let mut drivers = self.drivers.lock().unwrap_or_else(PoisonError::into_inner);
        drivers
            .entry(session_id.to_owned())
            .or_insert_with(|| Arc::new(watch::channel(None).0))
            .clone()
    }

    /// `name` drove the page just now. Viewers hear of it when the driver changes (a person
    /// clicking on and on is one takeover, not a message per click).
    pub fn drove(&self, session_id: &str, kind: DriverKind, name: &str) {
        self.driver(session_id).send_if_modified(|driver| {
            if driver.as_ref().is_some_and(|d| d.kind == kind && d.name == name) {
                return false;
            }
            *driver = Some(Driver { kind, name: name.to_owned(), at_ms: now_ms() });
            true
        });
    }

    fn forget(&self, session_id: &str) {
        self.drivers.lock().unwrap_or_else(PoisonError::into_inner).remove(session_id);
    }
}

async fn follow(
    browsers: Weak<Browsers>,
    mut changes: tokio::sync::broadcast::Receiver<SessionChange>,
) {
    loop {
        let change = match changes.recv().await {
            Ok(change) => change,
            // Missed entries only delay an indicator: the next call sets it again.
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => return,
        };
        let Some(browsers) = browsers.upgrade() else { return };
        match change {
            SessionChange::Activity { event, .. } if event.kind.starts_with(AGENT_BROWSER_KIND) => {
                if let Some(session_id) = &event.session_id {
                    browsers.drove(session_id, DriverKind::Agent, &event.actor);
                }
            }
            SessionChange::Deleted { id, .. } => browsers.forget(&id),
            _ => {}
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_driver_changes_only_when_someone_else_takes_over() {
        let browsers = Browsers::default();
        let mut seen = browsers.driver("s1").subscribe();
        browsers.drove("s1", DriverKind::Person, "ada");
        assert!(seen.has_changed().unwrap_or(false));
        let first = seen.borrow_and_update().clone().map(|d| (d.kind, d.name));
        assert_eq!(first, Some((DriverKind::Person, "ada".to_owned())));
        browsers.drove("s1", DriverKind::Person, "ada");
        assert!(!seen.has_changed().unwrap_or(true), "the same person again is no change");
        browsers.drove("s1", DriverKind::Agent, "agent: claude");
        assert!(seen.has_changed().unwrap_or(false));
        assert_eq!(seen.borrow().as_ref().map(|d| d.kind), Some(DriverKind::Agent));
        assert!(browsers.driver("s2").borrow().is_none(), "sessions are apart");
    }
}
