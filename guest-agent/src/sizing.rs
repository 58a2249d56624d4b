//! Who sizes a shared terminal: the writer who typed last, as tmux's `window-size latest`.
//!
//! Every attached client has a window of its own size, and a pty has one size. The pty takes
//! the size of the **typist**, the writer whose keystrokes came last: a writer's window
//! resize applies only while they are the typist (or while nobody has typed yet), and a
//! writer who types brings their window's size with them. Viewers never size the pty. So a
//! guest's small window no longer shrinks the full-screen programs of the person working;
//! every client is told the size the pty really has and shows exactly that (the web app
//! letterboxes a smaller pty, and scrolls a larger one).

use proto::terminal::Size;

/// The typist of one terminal. Pure: [`crate::terminal::Terminal`] applies what it answers.
#[derive(Debug, Default)]
pub(crate) struct Sizing {
    /// The attacher who typed last; `None` before anyone typed, or after they left.
    typist: Option<u64>,
}

impl Sizing {
    /// Writer `attacher` typed; `window` is the size their window last asked for. Returns
    /// the size the pty takes now.
    pub(crate) fn typed(&mut self, attacher: u64, window: Option<Size>) -> Option<Size> {
        self.typist = Some(attacher);
        window
    }

    /// Writer `attacher`'s window is now `window`. Returns the size the pty takes now: theirs
    /// when they are the typist or nobody is, else none (someone else is typing).
    pub(crate) fn window(&mut self, attacher: u64, window: Size) -> Option<Size> {
        match self.typist {
            Some(typist) if typist != attacher => None,
            _ => Some(window),
        }
    }

    /// `attacher` detached: when they were the typist, nobody is until the next keystroke.
    pub(crate) fn left(&mut self, attacher: u64) {
        if self.typist == Some(attacher) {
            self.typist = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: Size = Size { cols: 40, rows: 12 };
    const LARGE: Size = Size { cols: 200, rows: 50 };

    #[test]
    fn before_anyone_types_the_last_window_wins() {
        let mut sizing = Sizing::default();
        assert_eq!(sizing.window(1, LARGE), Some(LARGE));
        assert_eq!(sizing.window(2, SMALL), Some(SMALL));
    }

    #[test]
    fn only_the_typist_resizes_and_typing_brings_the_window_along() {
        let mut sizing = Sizing::default();
        assert_eq!(sizing.typed(1, Some(LARGE)), Some(LARGE));
        assert_eq!(sizing.window(2, SMALL), None, "a writer who did not type last");
        assert_eq!(sizing.window(1, LARGE), Some(LARGE));
        assert_eq!(sizing.typed(2, Some(SMALL)), Some(SMALL));
        assert_eq!(sizing.window(1, LARGE), None);
        assert_eq!(sizing.typed(1, None), None, "no window size sent yet: the pty stays");
    }

    #[test]
    fn when_the_typist_leaves_the_next_window_applies() {
        let mut sizing = Sizing::default();
        sizing.typed(1, Some(LARGE));
        sizing.left(2);
        assert_eq!(sizing.window(2, SMALL), None, "someone else leaving changes nothing");
        sizing.left(1);
        assert_eq!(sizing.window(2, SMALL), Some(SMALL));
    }
}
