//! Guest reports: tool calls of the in-sandbox MCP server (`guest-agent mcp`), posted on the
//! restricted socket and read by the server for its audit log.
//!
//! The queue is bounded ([`HELD_REPORTS`]) and so is each report's text: the guest posts what
//! it likes, and must not be able to grow the agent's memory with it.

use std::collections::VecDeque;
use std::sync::Mutex;

use http::Response;
use hyper::body::Incoming;
use proto::audit::{GuestReport, ReportQueued, ToolReport};
use tokio::sync::broadcast;

use crate::error::Result;
use crate::http::{Body, frame, json, read_json, streaming};
use crate::server::Agent;

/// Reports held for a reader that connects later: the last 1000, hours of an agent's calls.
pub const HELD_REPORTS: usize = 1000;

/// Longest summary or error kept, in bytes: 2 KiB is a long command line; the rest is cut.
pub const MAX_REPORT_TEXT_BYTES: usize = 2 << 10;

/// Longest tool name kept.
const MAX_TOOL_NAME_BYTES: usize = 128;

/// Live reports buffered per reader; one that falls further behind is resent what the queue
/// still holds after the last one it got.
const LIVE_BUFFER: usize = 64;

/// The queue of reports.
pub struct Reports {
    queue: Mutex<Queue>,
    live: broadcast::Sender<GuestReport>,
}

struct Queue {
    held: VecDeque<GuestReport>,
    next_seq: u64,
}

impl Default for Reports {
    fn default() -> Reports {
        Reports {
            queue: Mutex::new(Queue { held: VecDeque::new(), next_seq: 1 }),
            live: broadcast::channel(LIVE_BUFFER).0,
        }
    }
}

impl Reports {
    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues a report (its text cut to size) and returns its sequence number.
    pub fn push(&self, mut report: ToolReport) -> u64 {
        cut(&mut report.tool, MAX_TOOL_NAME_BYTES);
        cut(&mut report.summary, MAX_REPORT_TEXT_BYTES);
        if let Some(error) = report.error.as_mut() {
            cut(error, MAX_REPORT_TEXT_BYTES);
        }
        let at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        // Published under the lock, so a reader's held reports and its live ones never
        // overlap or leave a gap.
        let mut queue = self.queue();
        let seq = queue.next_seq;
        queue.next_seq += 1;
        let report = GuestReport { seq, at_ms, report };
        if queue.held.len() == HELD_REPORTS {
            queue.held.pop_front();
        }
        queue.held.push_back(report.clone());
        let _ = self.live.send(report);
        seq
    }

    /// The held reports after `seq`, and a subscription to the ones that follow.
    fn after(&self, seq: u64) -> (Vec<GuestReport>, broadcast::Receiver<GuestReport>) {
        let queue = self.queue();
        let held = queue.held.iter().filter(|r| r.seq > seq).cloned().collect();
        (held, self.live.subscribe())
    }
}

/// Cuts `text` to at most `max` bytes at a character boundary, marking the cut.
fn cut(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push('…');
}

/// `POST /v1/audit`
pub async fn report(agent: &Agent, body: Incoming) -> Result<Response<Body>> {
    let report: ToolReport = read_json(body).await?;
    json(&ReportQueued { seq: agent.reports.push(report) })
}

/// `GET /v1/audit/events`: every held report, then new ones as they come.
pub fn events(agent: &Agent) -> Result<Response<Body>> {
    let reports = agent.reports.clone();
    let (tx, response) = streaming(proto::FRAMES_CONTENT_TYPE, 16);
    let (mut pending, mut live) = reports.after(0);
    tokio::spawn(async move {
        let mut last = 0;
        loop {
            for report in pending.drain(..) {
                last = report.seq;
                let Ok(bytes) = frame(&report) else { return };
                if tx.send(bytes).await.is_err() {
                    return;
                }
            }
            tokio::select! {
                report = live.recv() => match report {
                    Ok(report) if report.seq > last => pending.push(report),
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        (pending, live) = reports.after(last);
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                () = tx.closed() => return,
            }
        }
    });
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::audit::ToolStatus;

    fn report(summary: &str) -> ToolReport {
        ToolReport {
            tool: "run_command".to_owned(),
            summary: summary.to_owned(),
            status: ToolStatus::Ok,
            error: Some("é".repeat(MAX_REPORT_TEXT_BYTES)),
            duration_ms: 1,
        }
    }

    #[test]
    fn the_queue_keeps_the_newest_reports_and_cuts_their_text() {
        let reports = Reports::default();
        for i in 0..HELD_REPORTS + 5 {
            assert_eq!(reports.push(report(&format!("call {i}"))), i as u64 + 1);
        }
        let (held, _) = reports.after(0);
        assert_eq!(held.len(), HELD_REPORTS);
        assert_eq!(held[0].seq, 6);
        assert_eq!(held[0].report.summary, "call 5");
        let error = held[0].report.error.as_deref().expect("error");
        assert!(error.len() <= MAX_REPORT_TEXT_BYTES && error.ends_with('…'), "{}", error.len());
        assert_eq!(reports.after(HELD_REPORTS as u64).0.len(), 5);
    }
}
