//! Shell integration: what a terminal's shell is doing, from the OSC 133 marks its prompt
//! prints (`images/shell/flint-shell.bash`), and the output of one command line cleaned for
//! a model to read.
//!
//! `D;<exit>` command end and `A` prompt start (the start of `PS1`), `B` input start (the end
//! of `PS1`), `C` command start (bash's `PS0`). The reader feeds the screen
//! model in [`pieces`] that end right after each string terminator (BEL or `ESC \`), so a
//! mark's byte offsets are exact; only a mark whose terminator is split across two reads
//! of the pty is placed at the end of the piece that ends it.

use proto::terminal::ShellState;

/// `bytes` cut right after each BEL and each `ESC \\`: a mark's sequence ends exactly where its
/// piece does.
pub(crate) fn pieces(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = bytes;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = rest
            .iter()
            .enumerate()
            .position(|(i, b)| *b == 0x07 || (*b == b'\\' && i > 0 && rest[i - 1] == 0x1b))
            .map_or(rest.len(), |i| i + 1);
        let (piece, after) = rest.split_at(end);
        rest = after;
        Some(piece)
    })
}

/// One OSC 133 mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MarkKind {
    /// `A`: a prompt is being drawn.
    PromptStart,
    /// `B`: the prompt is drawn; what follows is the input line.
    InputStart,
    /// `C`: the shell read a line and runs it.
    CommandStart,
    /// `D;<exit>`: the line ended with this status (`None` when the mark carries none).
    CommandEnd(Option<i32>),
}

/// A mark as the screen model met it: its kind and how many bytes its OSC parameters take
/// (`133;D;0`), to find where the whole sequence starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Mark {
    pub(crate) kind: MarkKind,
    params_len: usize,
}

/// The screen model's callbacks: collects the marks of one `process` call.
#[derive(Debug, Default)]
pub(crate) struct Marks {
    pub(crate) seen: Vec<Mark>,
}

impl vt100::Callbacks for Marks {
    fn unhandled_osc(&mut self, _: &mut vt100::Screen, params: &[&[u8]]) {
        let [b"133", kind, rest @ ..] = params else { return };
        let kind = match *kind {
            b"A" => MarkKind::PromptStart,
            b"B" => MarkKind::InputStart,
            b"C" => MarkKind::CommandStart,
            b"D" => MarkKind::CommandEnd(
                rest.first()
                    .and_then(|code| std::str::from_utf8(code).ok())
                    .and_then(|code| code.parse().ok()),
            ),
            _ => return,
        };
        let params_len =
            params.iter().map(|p| p.len()).sum::<usize>() + params.len().saturating_sub(1);
        self.seen.push(Mark { kind, params_len });
    }
}

/// Where the shell is between marks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// No mark yet.
    Unknown,
    /// After `A` or `D`, before `B`: the prompt is being drawn.
    Drawing,
    /// After `B`: the cursor was here when the prompt was drawn.
    Input { row: u16, col: u16 },
    /// After `C`.
    Running,
}

/// What one `run` waits for, filled in by the reader as marks arrive after its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RunWatch {
    /// Output offset when the command line was written.
    pub(crate) from: u64,
    /// Where the command's output starts (the end of its `C` mark).
    pub(crate) output_start: Option<u64>,
    /// Where its output ends (the start of its `D` mark) and the exit status the mark gave.
    pub(crate) end: Option<(u64, Option<i32>)>,
    /// The next prompt is drawn (a `B` after the `D`): the shell takes the next line.
    pub(crate) prompt_again: bool,
}

impl RunWatch {
    /// A run whose command line is written at output offset `from`; no mark seen yet.
    pub(crate) fn new(from: u64) -> RunWatch {
        RunWatch { from, output_start: None, end: None, prompt_again: false }
    }
}

/// A terminal's shell integration state; lives in the terminal's state, under its lock.
#[derive(Debug)]
pub(crate) struct Shell {
    phase: Phase,
    /// The run in progress, if any: one at a time per terminal.
    pub(crate) run: Option<RunWatch>,
    /// Input was written that the shell may not have taken as a command line yet: since its
    /// last `C`, or a partial line that was written before it. Without it the input line is
    /// empty, whatever output (a background job's) has moved the cursor since the prompt.
    typed: bool,
    /// The input written so far ends in a partial line (keys after its last Enter).
    partial_line: bool,
}

impl Shell {
    pub(crate) fn new() -> Shell {
        Shell { phase: Phase::Unknown, run: None, typed: false, partial_line: false }
    }

    /// Notes input on its way to the pty (anyone's: a person's keys, the agent's line). The
    /// first keys at a prompt are echoed where the cursor is now, which output since the
    /// prompt may have moved: that is where the input line starts.
    pub(crate) fn typed(&mut self, bytes: &[u8], screen: &vt100::Screen) {
        if bytes.is_empty() {
            return;
        }
        if !self.typed && matches!(self.phase, Phase::Input { .. }) {
            let (row, col) = screen.cursor_position();
            self.phase = Phase::Input { row, col };
        }
        self.typed = true;
        self.partial_line = match bytes.iter().rposition(|b| matches!(b, b'\r' | b'\n')) {
            Some(enter) => enter + 1 < bytes.len(),
            None => true,
        };
    }

    /// Applies a mark whose sequence ended at output offset `end` (`bel`: terminated by BEL,
    /// else by `ESC \\`).
    pub(crate) fn apply(&mut self, mark: Mark, end: u64, bel: bool, screen: &vt100::Screen) {
        // ESC ] params, then BEL (1 byte) or ESC \ (2 bytes).
        let len = 2 + mark.params_len as u64 + if bel { 1 } else { 2 };
        let start = end.saturating_sub(len);
        self.phase = match mark.kind {
            MarkKind::PromptStart | MarkKind::CommandEnd(_) => Phase::Drawing,
            MarkKind::InputStart => {
                let (row, col) = screen.cursor_position();
                Phase::Input { row, col }
            }
            MarkKind::CommandStart => {
                // The shell took a line: what it has not taken is the partial one, if any.
                self.typed = self.partial_line;
                Phase::Running
            }
        };
        let Some(run) = self.run.as_mut().filter(|run| start >= run.from) else { return };
        match mark.kind {
            MarkKind::CommandStart if run.output_start.is_none() && run.end.is_none() => {
                run.output_start = Some(end);
            }
            MarkKind::CommandEnd(code) if run.end.is_none() => run.end = Some((start, code)),
            MarkKind::InputStart if run.end.is_some() => run.prompt_again = true,
            _ => {}
        }
    }

    /// True while a prompt is being drawn (after `A` or `D`, before `B`): a moment, not a
    /// state worth refusing a run for.
    pub(crate) fn drawing(&self) -> bool {
        self.phase == Phase::Drawing
    }

    /// What the shell is doing, judged against the screen now: at `B`'s position with the
    /// rest of its row blank is an empty input line (typing and deleting it again is too), and
    /// so is any screen when nothing was typed since the shell took its last line (output of
    /// a background job moved the cursor, or a resize redrew the prompt).
    pub(crate) fn state(&self, screen: &vt100::Screen) -> ShellState {
        match self.phase {
            Phase::Unknown => ShellState::Unknown,
            Phase::Drawing | Phase::Running => ShellState::Running,
            Phase::Input { row, col } => {
                let (_, cols) = screen.size();
                let width = cols.get().saturating_sub(col);
                let rest_blank = width == 0
                    || screen
                        .rows(col, width)
                        .nth(usize::from(row))
                        .is_some_and(|rest| rest.trim().is_empty());
                if !self.typed || (screen.cursor_position() == (row, col) && rest_blank) {
                    ShellState::Prompt
                } else {
                    ShellState::Typing
                }
            }
        }
    }
}

/// A command's raw output as text: escape sequences removed, `\r\n` as `\n`, and a line
/// that was redrawn with a lone `\r` (a progress bar) as its last drawing.
pub(crate) fn clean_output(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut lines = raw.split(|b| *b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let line = trim_end_cr(line);
        // What a lone `\r` started is drawn over what came before it; keep the last drawing
        // that shows anything (a trailing `\r` followed by an erase shows nothing).
        let shown = line
            .split(|b| *b == b'\r')
            .map(strip_keeping_tabs)
            .rfind(|text| !text.is_empty())
            .unwrap_or_default();
        out.extend_from_slice(&shown);
        if lines.peek().is_some() {
            out.push(b'\n');
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn trim_end_cr(mut line: &[u8]) -> &[u8] {
    while let [rest @ .., b'\r'] = line {
        line = rest;
    }
    line
}

/// `strip-ansi-escapes` drops every control character but `\n`; tabs are worth keeping.
fn strip_keeping_tabs(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for (i, part) in text.split(|b| *b == b'\t').enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        out.extend_from_slice(&strip_ansi_escapes::strip(part));
    }
    out
}

/// The last `max` bytes of `text` (from a character boundary), and whether anything was cut.
pub(crate) fn keep_tail(text: String, max: usize) -> (String, bool) {
    if text.len() <= max {
        return (text, false);
    }
    let mut cut = text.len() - max;
    while !text.is_char_boundary(cut) {
        cut += 1;
    }
    (text[cut..].to_owned(), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(shell: &mut Shell, parser: &mut vt100::Parser<Marks>, base: &mut u64, bytes: &[u8]) {
        for piece in pieces(bytes) {
            parser.process(piece);
            *base += piece.len() as u64;
            let bel = piece.last() == Some(&0x07);
            for mark in std::mem::take(&mut parser.callbacks_mut().seen) {
                shell.apply(mark, *base, bel, parser.screen());
            }
        }
    }

    fn parser() -> vt100::Parser<Marks> {
        let size = |n| std::num::NonZeroU16::new(n).expect("non-zero");
        vt100::Parser::new_with_callbacks(size(24), size(80), 0, Marks::default())
    }

    #[test]
    fn marks_drive_the_state_and_typing_then_deleting_is_a_prompt_again() {
        let (mut shell, mut parser, mut at) = (Shell::new(), parser(), 0);
        assert_eq!(shell.state(parser.screen()), ShellState::Unknown);
        feed(&mut shell, &mut parser, &mut at, b"hello\r\n\x1b]133;A\x07$ ");
        assert_eq!(shell.state(parser.screen()), ShellState::Running, "prompt half drawn");
        assert!(shell.drawing());
        feed(&mut shell, &mut parser, &mut at, b"\x1b]133;B\x07");
        assert_eq!(shell.state(parser.screen()), ShellState::Prompt);
        shell.typed(b"ec", parser.screen());
        feed(&mut shell, &mut parser, &mut at, b"ec");
        assert_eq!(shell.state(parser.screen()), ShellState::Typing);
        shell.typed(b"\x7f\x7f", parser.screen());
        feed(&mut shell, &mut parser, &mut at, b"\x08\x08\x1b[K");
        assert_eq!(shell.state(parser.screen()), ShellState::Prompt);
        shell.typed(b"x\x1b[D", parser.screen());
        feed(&mut shell, &mut parser, &mut at, b"x\x08");
        assert_eq!(shell.state(parser.screen()), ShellState::Typing, "x is still on the line");
        shell.typed(b"\x0b", parser.screen());
        feed(&mut shell, &mut parser, &mut at, b"\x1b[K");
        shell.typed(b"ls\r", parser.screen());
        feed(&mut shell, &mut parser, &mut at, b"ls\r\n\x1b]133;C\x07");
        assert_eq!(shell.state(parser.screen()), ShellState::Running);
        feed(
            &mut shell,
            &mut parser,
            &mut at,
            b"a b\r\n\x1b]133;D;0\x07\x1b]133;A\x07$ \x1b]133;B\x07",
        );
        assert_eq!(shell.state(parser.screen()), ShellState::Prompt);
    }

    #[test]
    fn output_at_an_untouched_prompt_is_not_typing() {
        let (mut shell, mut parser, mut at) = (Shell::new(), parser(), 0);
        feed(&mut shell, &mut parser, &mut at, b"\x1b]133;A\x07$ \x1b]133;B\x07");
        // A background job prints while the prompt waits: the input line is still empty.
        feed(&mut shell, &mut parser, &mut at, b"server listening on :3000\r\n");
        assert_eq!(shell.state(parser.screen()), ShellState::Prompt);
        // Someone types: their line starts where the output left the cursor.
        shell.typed(b"l", parser.screen());
        feed(&mut shell, &mut parser, &mut at, b"l");
        assert_eq!(shell.state(parser.screen()), ShellState::Typing);
        shell.typed(b"\x7f", parser.screen());
        feed(&mut shell, &mut parser, &mut at, b"\x08\x1b[K");
        assert_eq!(shell.state(parser.screen()), ShellState::Prompt, "deleted again");
        shell.typed(b"l", parser.screen());
        feed(&mut shell, &mut parser, &mut at, b"l");
        assert_eq!(shell.state(parser.screen()), ShellState::Typing);
        // Their Enter: the shell takes the line, and nothing typed is left.
        shell.typed(b"\r", parser.screen());
        feed(&mut shell, &mut parser, &mut at, b"\r\n\x1b]133;C\x07");
        feed(&mut shell, &mut parser, &mut at, b"\x1b]133;D;0\x07\x1b]133;A\x07$ \x1b]133;B\x07");
        feed(&mut shell, &mut parser, &mut at, b"more output\r\n");
        assert_eq!(shell.state(parser.screen()), ShellState::Prompt);
    }

    #[test]
    fn a_partial_line_written_ahead_of_a_command_is_still_typing_after_it() {
        let (mut shell, mut parser, mut at) = (Shell::new(), parser(), 0);
        feed(&mut shell, &mut parser, &mut at, b"\x1b]133;A\x07$ \x1b]133;B\x07");
        // A paste of one line and the start of the next.
        shell.typed(b"make\rgit sta", parser.screen());
        feed(&mut shell, &mut parser, &mut at, b"make\r\n\x1b]133;C\x07built\r\n");
        feed(&mut shell, &mut parser, &mut at, b"\x1b]133;D;0\x07\x1b]133;A\x07$ \x1b]133;B\x07");
        feed(&mut shell, &mut parser, &mut at, b"git sta");
        assert_eq!(shell.state(parser.screen()), ShellState::Typing);
        // Output moving the cursor changes nothing: the line is still theirs.
        feed(&mut shell, &mut parser, &mut at, b"\r\nlog\r\n");
        assert_eq!(shell.state(parser.screen()), ShellState::Typing);
    }

    #[test]
    fn a_run_records_exact_offsets_of_its_output_and_end() {
        let (mut shell, mut parser, mut at) = (Shell::new(), parser(), 0);
        feed(&mut shell, &mut parser, &mut at, b"\x1b]133;A\x07$ \x1b]133;B\x07");
        shell.run = Some(RunWatch::new(at));
        let echo = b"echo hi\r\n\x1b[?2004l\r\x1b]133;C\x07";
        let output = b"hi\r\n";
        let end = b"\x1b]133;D;7\x1b\\\x1b]133;A\x07$ \x1b]133;B\x07";
        let from = at;
        let mut all = echo.to_vec();
        all.extend_from_slice(output);
        all.extend_from_slice(end);
        feed(&mut shell, &mut parser, &mut at, &all);
        let run = shell.run.expect("run");
        let output_start = from + echo.len() as u64;
        assert_eq!(run.output_start, Some(output_start));
        // The ST-terminated D mark is placed exactly too: its piece ends right after it.
        assert_eq!(run.end, Some((output_start + output.len() as u64, Some(7))));
        assert!(run.prompt_again);
    }

    #[test]
    fn pieces_end_after_each_string_terminator() {
        let pieces: Vec<&[u8]> = pieces(b"a\x07b\x1b\\c\\d\x07").collect();
        assert_eq!(pieces, [&b"a\x07"[..], b"b\x1b\\", b"c\\d\x07"]);
        assert_eq!(super::pieces(b"").count(), 0);
    }

    #[test]
    fn output_is_cleaned_of_escapes_and_carriage_returns() {
        let raw = b"\x1b[32mgreen\x1b[0m\r\n10%\r20%\r\x1b[Kdone\r\na\tb\r\n\x1b]0;title\x07x\r\n";
        assert_eq!(clean_output(raw), "green\ndone\na\tb\nx\n");
        assert_eq!(clean_output(b"no newline"), "no newline");
        assert_eq!(clean_output(b"50%\r\x1b[K"), "50%", "an erase shows nothing new");
    }

    #[test]
    fn the_tail_is_cut_at_a_character_boundary() {
        assert_eq!(keep_tail("abcdef".to_owned(), 3), ("def".to_owned(), true));
        assert_eq!(keep_tail("abc".to_owned(), 3), ("abc".to_owned(), false));
        assert_eq!(keep_tail("xé".to_owned(), 1), (String::new(), true));
    }
}
