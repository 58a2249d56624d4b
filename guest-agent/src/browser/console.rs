//! Console messages and uncaught exceptions of every tab, in one bounded buffer.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use chromiumoxide::Page;
use chromiumoxide::cdp::js_protocol::runtime::{
    EventConsoleApiCalled, EventExceptionThrown, RemoteObject,
};
use futures_util::StreamExt;
use proto::browser::{CONSOLE_MESSAGES, ConsoleMessage, TabId};

use super::cdp_error;
use crate::error::Result;

/// Longest message kept, in bytes.
const MAX_MESSAGE_BYTES: usize = 4096;

/// The last [`CONSOLE_MESSAGES`] messages of every tab.
#[derive(Default)]
pub(crate) struct Console {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    next_seq: u64,
    messages: VecDeque<ConsoleMessage>,
}

impl Console {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn push(&self, tab: TabId, level: &str, mut text: String, at_ms: f64) {
        truncate(&mut text, MAX_MESSAGE_BYTES);
        let mut state = self.state();
        state.next_seq += 1;
        let seq = state.next_seq;
        if state.messages.len() == CONSOLE_MESSAGES {
            state.messages.pop_front();
        }
        // Chromium's clock; a nonsense value (negative, NaN) becomes 0.
        let at_ms = if at_ms.is_finite() && at_ms > 0.0 { at_ms as u64 } else { 0 };
        state.messages.push_back(ConsoleMessage { seq, tab, level: level.to_owned(), text, at_ms });
    }

    /// Held messages with a sequence number above `since`, oldest first.
    pub(crate) fn since(&self, since: Option<u64>) -> Vec<ConsoleMessage> {
        let since = since.unwrap_or(0);
        self.state().messages.iter().filter(|m| m.seq > since).cloned().collect()
    }
}

/// Starts collecting `page`'s console into `console`; the task ends with the page (or when
/// aborted, as a closed tab's is).
pub(crate) async fn collect(
    page: &Page,
    tab: TabId,
    console: Arc<Console>,
) -> Result<tokio::task::JoinHandle<()>> {
    let mut calls = page
        .event_listener::<EventConsoleApiCalled>()
        .await
        .map_err(|e| cdp_error("listening to the console", e))?;
    let mut exceptions = page
        .event_listener::<EventExceptionThrown>()
        .await
        .map_err(|e| cdp_error("listening to the console", e))?;
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                call = calls.next() => {
                    let Some(call) = call else { return };
                    let text: Vec<String> = call.args.iter().map(describe).collect();
                    console.push(tab, call.r#type.as_ref(), text.join(" "), *call.timestamp.inner());
                }
                thrown = exceptions.next() => {
                    let Some(thrown) = thrown else { return };
                    let details = &thrown.exception_details;
                    let text = details
                        .exception
                        .as_ref()
                        .and_then(|e| e.description.clone())
                        .unwrap_or_else(|| details.text.clone());
                    console.push(tab, "exception", text, *thrown.timestamp.inner());
                }
            }
        }
    }))
}

/// One console argument as text: strings as they are, other values as JSON, objects by
/// their description.
fn describe(arg: &RemoteObject) -> String {
    match &arg.value {
        Some(serde_json::Value::String(text)) => text.clone(),
        Some(value) => value.to_string(),
        None => arg
            .unserializable_value
            .as_ref()
            .map(|v| v.inner().clone())
            .or_else(|| arg.description.clone())
            .unwrap_or_else(|| arg.r#type.as_ref().to_owned()),
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary.
pub(crate) fn truncate(text: &mut String, max: usize) -> bool {
    if text.len() <= max {
        return false;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buffer_keeps_the_newest_messages_and_filters_by_seq() {
        let console = Console::default();
        for i in 0..(CONSOLE_MESSAGES + 5) {
            console.push(TabId(1), "log", format!("m{i}"), 1.0);
        }
        let all = console.since(None);
        assert_eq!(all.len(), CONSOLE_MESSAGES);
        assert_eq!(all[0].text, "m5");
        assert_eq!(all.last().map(|m| m.seq), Some((CONSOLE_MESSAGES + 5) as u64));
        let newer = console.since(Some(CONSOLE_MESSAGES as u64 + 3));
        assert_eq!(newer.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), ["m203", "m204"]);
    }

    #[test]
    fn truncation_keeps_whole_characters() {
        let mut text = "aé".repeat(3);
        assert!(truncate(&mut text, 4));
        assert_eq!(text, "aéa");
        assert!(!truncate(&mut text, 10));
    }
}
