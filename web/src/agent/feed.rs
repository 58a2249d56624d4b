//! One session's activity feed as data: entries by id, a call's `started` entry replaced by
//! its end, bounded. Pure, so it is tested natively.

use std::collections::BTreeSet;

use proto::api::ActivityEvent;
use proto::audit::ToolStatus;

/// Entries a feed keeps: hours of an agent's work at a call every few seconds; older ones
/// are in the audit log (`GET /api/sessions/{id}/events`), not in the tab's memory.
pub const FEED_CAP: usize = 1_000;

/// A session's activity, oldest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Feed {
    /// Sorted by id (ids increase; a call keeps its id from start to end).
    entries: Vec<ActivityEvent>,
}

impl Feed {
    /// Adds an event, or replaces the entry with its id. An ended entry is never replaced by
    /// a `started` one: the REST list and the websocket race, and the end is the newer news.
    pub fn apply(&mut self, event: ActivityEvent) {
        match self.entries.binary_search_by_key(&event.id, |entry| entry.id) {
            Ok(index) => {
                let slot = &mut self.entries[index];
                if slot.status == ToolStatus::Started || event.status != ToolStatus::Started {
                    *slot = event;
                }
            }
            Err(index) => self.entries.insert(index, event),
        }
        if self.entries.len() > FEED_CAP {
            let excess = self.entries.len() - FEED_CAP;
            self.entries.drain(..excess);
        }
    }

    /// Every entry, oldest first.
    pub fn entries(&self) -> &[ActivityEvent] {
        &self.entries
    }

    /// The newest `limit` entries, newest first.
    pub fn newest(&self, limit: usize) -> Vec<ActivityEvent> {
        self.entries.iter().rev().take(limit).cloned().collect()
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Calls still running.
    pub fn running(&self) -> usize {
        self.entries.iter().filter(|entry| entry.status == ToolStatus::Started).count()
    }

    /// When a call through `token` last started (the token list's "used ... ago" between
    /// its reloads).
    pub fn last_use(&self, token: &str) -> Option<i64> {
        let entry = self.entries.iter().rev().find(|e| e.token_id.as_deref() == Some(token))?;
        Some(entry.at_ms)
    }

    /// Terminals an agent is typing into now (a running call names them).
    pub fn typing(&self) -> BTreeSet<String> {
        self.entries
            .iter()
            .filter(|entry| entry.status == ToolStatus::Started)
            .filter_map(|entry| entry.terminal.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use proto::api::ActivityEvent;
    use proto::audit::ToolStatus;

    use super::{FEED_CAP, Feed};

    fn event(id: i64, status: ToolStatus, terminal: Option<&str>) -> ActivityEvent {
        ActivityEvent {
            id,
            at_ms: 1_000 + id,
            session_id: Some("s1".to_owned()),
            actor: "agent: test".to_owned(),
            token_id: Some("t1".to_owned()),
            kind: "mcp.run_command".to_owned(),
            summary: "echo hi".to_owned(),
            status,
            error: None,
            duration_ms: (status != ToolStatus::Started).then_some(12),
            guest_reported: false,
            terminal: terminal.map(str::to_owned),
        }
    }

    #[test]
    fn a_started_call_is_replaced_by_its_end() {
        let mut feed = Feed::default();
        feed.apply(event(2, ToolStatus::Started, Some("3")));
        feed.apply(event(1, ToolStatus::Ok, None));
        assert_eq!(feed.running(), 1);
        assert_eq!(feed.typing().into_iter().collect::<Vec<_>>(), ["3"]);
        feed.apply(event(2, ToolStatus::Ok, Some("3")));
        assert_eq!(feed.len(), 2);
        assert_eq!(feed.running(), 0);
        assert!(feed.typing().is_empty());
        // Oldest first, newest first on request.
        assert_eq!(feed.entries().iter().map(|e| e.id).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(feed.newest(1)[0].id, 2);
        assert_eq!(feed.last_use("t1"), Some(1_002));
        assert_eq!(feed.last_use("t2"), None);
    }

    #[test]
    fn a_late_started_copy_does_not_undo_an_end() {
        let mut feed = Feed::default();
        feed.apply(event(5, ToolStatus::Error, Some("1")));
        feed.apply(event(5, ToolStatus::Started, Some("1")));
        assert_eq!(feed.entries()[0].status, ToolStatus::Error);
        assert!(feed.typing().is_empty());
    }

    #[test]
    fn the_feed_keeps_the_newest_entries() {
        let mut feed = Feed::default();
        for id in 0..(FEED_CAP as i64 + 10) {
            feed.apply(event(id, ToolStatus::Ok, None));
        }
        assert_eq!(feed.len(), FEED_CAP);
        assert_eq!(feed.entries()[0].id, 10);
    }
}
