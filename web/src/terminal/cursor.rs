//! Which output bytes a terminal tab still needs, so that across reconnects no byte is
//! written twice and every lost range is announced.
//!
//! Output offsets are absolute byte positions in the shell's output (the agent's ring). The
//! cursor holds the next offset the tab expects: a reconnect resumes there (`?offset=`),
//! bytes before it are dropped, and a jump past it (scrollback overwritten while away, or a
//! `missed` message) is a [`Gap`] the tab shows as a dim notice.

/// Output the tab never got: offsets `from..to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gap {
    /// First lost offset.
    pub from: u64,
    /// Where output resumes.
    pub to: u64,
}

impl Gap {
    /// Lost bytes.
    pub fn bytes(&self) -> u64 {
        self.to - self.from
    }
}

/// What to do with one binary output message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accept {
    /// Bytes at the start of the message the tab already has: skip them.
    pub skip: usize,
    /// Output lost just before this message.
    pub gap: Option<Gap>,
}

/// The next output offset a tab expects (`None` until the first attach).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutputCursor {
    next: Option<u64>,
}

impl OutputCursor {
    /// Where a (re)connect resumes: `None` on the first one, which replays the scrollback.
    pub fn resume_offset(&self) -> Option<u64> {
        self.next
    }

    /// `attached {offset}`: output starts at `offset`. Later than expected means the
    /// scrollback no longer holds what came while the tab was away.
    pub fn attached(&mut self, offset: u64) -> Option<Gap> {
        match self.next {
            None => {
                self.next = Some(offset);
                None
            }
            Some(next) if offset > next => {
                self.next = Some(offset);
                Some(Gap { from: next, to: offset })
            }
            // Earlier than expected: the replay's first bytes are dropped by `output`.
            Some(_) => None,
        }
    }

    /// A binary message of `len` bytes at `offset`: `None` when the tab has all of it.
    pub fn output(&mut self, offset: u64, len: usize) -> Option<Accept> {
        let end = offset.saturating_add(len as u64);
        let Some(next) = self.next else {
            self.next = Some(end);
            return Some(Accept { skip: 0, gap: None });
        };
        if end <= next {
            return None;
        }
        self.next = Some(end);
        if offset > next {
            return Some(Accept { skip: 0, gap: Some(Gap { from: next, to: offset }) });
        }
        // `next - offset < len` here, so it fits a usize.
        Some(Accept { skip: (next - offset) as usize, gap: None })
    }

    /// `missed {from, to}`: output resumes at `to`. Only the part the tab did not have
    /// is a gap.
    pub fn missed(&mut self, from: u64, to: u64) -> Option<Gap> {
        let from = self.next.map_or(from, |next| next.max(from));
        if to <= from {
            return None;
        }
        self.next = Some(to);
        Some(Gap { from, to })
    }
}

#[cfg(test)]
mod tests {
    use super::{Accept, Gap, OutputCursor};

    /// Plays messages into a cursor and returns the bytes it would write.
    fn play(cursor: &mut OutputCursor, messages: &[(u64, &[u8])]) -> Vec<u8> {
        let mut written = Vec::new();
        for (offset, data) in messages {
            if let Some(accept) = cursor.output(*offset, data.len()) {
                written.extend_from_slice(&data[accept.skip..]);
            }
        }
        written
    }

    #[test]
    fn first_attach_takes_the_replay_as_is() {
        let mut cursor = OutputCursor::default();
        assert_eq!(cursor.resume_offset(), None);
        assert_eq!(cursor.attached(100), None);
        assert_eq!(play(&mut cursor, &[(100, b"hello "), (106, b"world")]), b"hello world");
        assert_eq!(cursor.resume_offset(), Some(111));
    }

    #[test]
    fn a_reconnect_replaying_overlap_writes_nothing_twice() {
        let mut cursor = OutputCursor::default();
        cursor.attached(0);
        assert_eq!(play(&mut cursor, &[(0, b"abc"), (3, b"def")]), b"abcdef");
        // The server resumes a little early: old bytes and the overlap are dropped.
        assert_eq!(cursor.attached(2), None);
        let written = play(&mut cursor, &[(2, b"cd"), (4, b"efgh"), (8, b"ij")]);
        assert_eq!(written, b"ghij");
        assert_eq!(cursor.resume_offset(), Some(10));
    }

    #[test]
    fn an_attach_past_the_expected_offset_is_a_gap() {
        let mut cursor = OutputCursor::default();
        cursor.attached(0);
        play(&mut cursor, &[(0, b"abc")]);
        assert_eq!(cursor.attached(50), Some(Gap { from: 3, to: 50 }));
        assert_eq!(play(&mut cursor, &[(50, b"xyz")]), b"xyz");
    }

    #[test]
    fn output_past_the_expected_offset_reports_the_gap() {
        let mut cursor = OutputCursor::default();
        cursor.attached(0);
        play(&mut cursor, &[(0, b"abc")]);
        let accept = cursor.output(10, 2);
        assert_eq!(accept, Some(Accept { skip: 0, gap: Some(Gap { from: 3, to: 10 }) }));
        assert_eq!(cursor.resume_offset(), Some(12));
    }

    #[test]
    fn missed_counts_only_what_the_tab_lacks() {
        let mut cursor = OutputCursor::default();
        cursor.attached(0);
        play(&mut cursor, &[(0, b"abcdef")]);
        assert_eq!(cursor.missed(4, 20), Some(Gap { from: 6, to: 20 }));
        assert_eq!(cursor.missed(10, 20), None);
        assert_eq!(play(&mut cursor, &[(18, b"stuv")]), b"uv");
        assert_eq!(cursor.resume_offset(), Some(22));
    }
}
