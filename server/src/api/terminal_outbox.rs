//! One browser's outbox on the terminal websocket: output bounded by bytes (then a gap,
//! read back from the agent's scrollback when the browser catches up), control messages by
//! their own budget (then the socket is closed), and the notifications the agent pump and
//! the browser sender wait on.

use std::collections::VecDeque;

use yawc::Frame;

/// The most output one message carries when queued pieces join.
const MESSAGE_OUTPUT_BYTES: usize = 64 << 10;

/// Output bytes a websocket may have queued before the relay waits for room, then records a
/// gap instead.
const OUTBOX_BYTES: usize = 512 << 10;

/// Control messages (answers, resizes, notices) a websocket may have queued: they cannot
/// become a gap, so a client that sends (bad messages, say) without reading what it is
/// answered is closed ([`CLOSE_NOT_READING`](super::terminal_ws::CLOSE_NOT_READING)) when they reach this.
const CONTROL_BYTES: usize = 256 << 10;

/// How long the relay waits for a full outbox to make room before it records a gap: a
/// browser that reads at all keeps every byte; one stalled longer stops holding up the
/// shell (the agent waits as long for its attachers: its `STALL_GRACE`).
pub(super) const OUTBOX_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// What waits to be sent to one browser.
pub(super) enum Item {
    /// Output from `offset`: pieces that follow each other join while they wait, up to
    /// [`MESSAGE_OUTPUT_BYTES`], so a browser that is behind gets fewer, larger messages
    /// (which also compress better: the shell's output reaches the relay in pieces of a few
    /// hundred bytes under gVisor).
    Output { offset: u64, data: Vec<u8> },
    /// A control message ready to send.
    Message(Frame),
    /// Output `from..to` dropped while the browser was slow: read back from the scrollback
    /// when its turn comes (what the scrollback lost by then is announced as `missed`).
    Gap { from: u64, to: u64 },
    /// The last message.
    Close(Frame),
}

/// One browser's queue, bounded by output bytes ([`OUTBOX_BYTES`], then gaps) and control
/// bytes ([`CONTROL_BYTES`], then the socket is closed).
#[derive(Default)]
pub(super) struct Outbox {
    items: VecDeque<Item>,
    bytes: usize,
    control: usize,
    /// A control message did not fit: the relay closes the socket.
    overflowed: bool,
}

impl Outbox {
    pub(super) fn push_output(&mut self, offset: u64, data: &[u8]) {
        let end = offset + data.len() as u64;
        if let Some(Item::Gap { to, .. }) = self.items.back_mut()
            && *to == offset
        {
            // Output after a gap joins it, so the browser gets bytes in order.
            *to = end;
            return;
        }
        if self.bytes + data.len() > OUTBOX_BYTES {
            self.items.push_back(Item::Gap { from: offset, to: end });
            return;
        }
        self.bytes += data.len();
        if let Some(Item::Output { offset: start, data: queued }) = self.items.back_mut()
            && *start + queued.len() as u64 == offset
            && queued.len() + data.len() <= MESSAGE_OUTPUT_BYTES
        {
            queued.extend_from_slice(data);
            return;
        }
        self.items.push_back(Item::Output { offset, data: data.to_vec() });
    }

    fn push(&mut self, item: Item) {
        if let Item::Message(frame) = &item {
            let size = frame.payload().len();
            if self.control + size > CONTROL_BYTES {
                self.overflowed = true;
                return;
            }
            self.control += size;
        }
        self.items.push_back(item);
    }

    fn pop(&mut self) -> Option<Item> {
        let item = self.items.pop_front()?;
        match &item {
            Item::Output { data, .. } => self.bytes -= data.len(),
            Item::Message(frame) => self.control -= frame.payload().len(),
            Item::Gap { .. } | Item::Close(_) => {}
        }
        Some(item)
    }
}

/// The outbox shared by the agent pump (producer) and the browser sender (consumer).
#[derive(Default)]
pub(super) struct Shared {
    outbox: std::sync::Mutex<Outbox>,
    ready: tokio::sync::Notify,
    /// Signalled as output leaves the outbox.
    room: tokio::sync::Notify,
    /// Signalled when a control message did not fit.
    overflow: tokio::sync::Notify,
}

impl Shared {
    pub(super) fn push(&self, item: Item) {
        self.with(|outbox| outbox.push(item));
    }

    pub(super) fn with(&self, f: impl FnOnce(&mut Outbox)) {
        let overflowed = {
            let mut outbox = self.outbox.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            f(&mut outbox);
            outbox.overflowed
        };
        self.ready.notify_one();
        if overflowed {
            self.overflow.notify_one();
        }
    }

    /// Resolves once a control message did not fit ([`CONTROL_BYTES`]).
    pub(super) async fn overflowed(&self) {
        loop {
            let notified = self.overflow.notified();
            if self.outbox.lock().unwrap_or_else(std::sync::PoisonError::into_inner).overflowed {
                return;
            }
            notified.await;
        }
    }

    pub(super) async fn pop(&self) -> Item {
        loop {
            let item = self.outbox.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop();
            match item {
                Some(item) => {
                    self.room.notify_one();
                    return item;
                }
                None => self.ready.notified().await,
            }
        }
    }

    /// Waits, up to [`OUTBOX_GRACE`], until `bytes` more output fit; at once when the
    /// browser is behind already (a gap is queued: what follows joins it).
    pub(super) async fn wait_for_room(&self, bytes: usize) {
        let deadline = tokio::time::Instant::now() + OUTBOX_GRACE;
        loop {
            let room = self.room.notified();
            let full = {
                let outbox = self.outbox.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let behind = matches!(outbox.items.back(), Some(Item::Gap { .. }));
                !behind && outbox.bytes > 0 && outbox.bytes + bytes > OUTBOX_BYTES
            };
            if !full || tokio::time::timeout_at(deadline, room).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(outbox: &mut Outbox) -> Vec<String> {
        std::iter::from_fn(|| outbox.pop())
            .map(|item| match item {
                Item::Output { offset, data } => format!("out {}@{offset}", data.len()),
                Item::Message(_) => "control".to_owned(),
                Item::Gap { from, to } => format!("gap {from}..{to}"),
                Item::Close(_) => "close".to_owned(),
            })
            .collect()
    }

    #[test]
    fn output_beyond_the_budget_becomes_one_gap_and_order_is_kept() {
        let mut outbox = Outbox::default();
        let chunk = vec![b'x'; OUTBOX_BYTES / 2];
        outbox.push_output(0, &chunk);
        outbox.push_output(chunk.len() as u64, &chunk);
        let full = OUTBOX_BYTES as u64;
        // Over budget: a gap, and what follows it joins the gap even when it would fit.
        outbox.push_output(full, &chunk);
        outbox.push_output(full + chunk.len() as u64, b"tail");
        outbox.push(Item::Message(Frame::text("{}")));
        // After a control message, output queues normally again once there is room.
        assert_eq!(outbox.pop().map(|_| ()), Some(()));
        outbox.push_output(full * 3 / 2 + 4, b"more");
        let half = OUTBOX_BYTES / 2;
        assert_eq!(
            kinds(&mut outbox),
            vec![
                format!("out {half}@{half}"),
                format!("gap {full}..{}", full * 3 / 2 + 4),
                "control".to_owned(),
                format!("out 4@{}", full * 3 / 2 + 4),
            ]
        );
        assert_eq!(outbox.bytes, 0, "the budget is given back as messages leave");
    }

    #[test]
    fn control_messages_count_and_past_their_budget_the_socket_is_closed() {
        let mut outbox = Outbox::default();
        let message = format!("{{\"type\":\"error\",\"message\":\"{}\"}}", "x".repeat(1000));
        let mut queued = 0;
        while !outbox.overflowed {
            outbox.push(Item::Message(Frame::text(message.clone())));
            queued += 1;
            assert!(queued <= CONTROL_BYTES / 1000 + 1, "control messages grew past the budget");
        }
        assert!(outbox.control <= CONTROL_BYTES);
        while outbox.pop().is_some() {}
        assert_eq!(outbox.control, 0, "the budget is given back as messages leave");
    }

    #[test]
    fn waiting_pieces_that_follow_each_other_join_into_one_message() {
        let mut outbox = Outbox::default();
        let piece = vec![b'y'; 243];
        let mut offset = 0;
        while offset < MESSAGE_OUTPUT_BYTES as u64 + 1000 {
            outbox.push_output(offset, &piece);
            offset += piece.len() as u64;
        }
        outbox.push(Item::Message(Frame::text("{}")));
        outbox.push_output(offset, b"after");
        let first = MESSAGE_OUTPUT_BYTES / 243 * 243;
        let rest = offset as usize - first;
        assert_eq!(
            kinds(&mut outbox),
            vec![
                format!("out {first}@0"),
                format!("out {rest}@{first}"),
                "control".to_owned(),
                format!("out 5@{offset}"),
            ]
        );
        assert_eq!(outbox.bytes, 0);
    }
}
