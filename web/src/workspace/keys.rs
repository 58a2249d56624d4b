//! Keyboard shortcuts of the workspace. xterm is told to leave them alone (its custom key
//! handler returns false for them), so they bubble to the window, where this handles them.
//! Ctrl+S (Cmd+S on a Mac) saves the file shown in the editor; elsewhere it is left to the
//! terminal (XOFF) and the browser.

use leptos::prelude::*;
use web_sys::KeyboardEvent;

use super::{MainView, Workspace};
use crate::files::Files;

/// What a shortcut does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shortcut {
    /// Open a shell in a new tab.
    NewTerminal,
    /// Activate the tab to the right.
    NextTab,
    /// Activate the tab to the left.
    PreviousTab,
}

/// The shortcuts, for the help popover: keys and what they do.
pub const HELP: [(&str, &str); 4] = [
    ("Ctrl+S  or  Cmd+S", "save the file in the editor"),
    ("Ctrl+Shift+T", "new terminal (Ctrl+Shift+Enter where the browser keeps Ctrl+Shift+T)"),
    ("Ctrl+Shift+]  or  Ctrl+PageDown", "next tab"),
    ("Ctrl+Shift+[  or  Ctrl+PageUp", "previous tab"),
];

/// Keys as the pure parts of a key event: `code` (layout-independent), modifiers.
pub fn match_keys(code: &str, ctrl: bool, shift: bool, alt: bool, meta: bool) -> Option<Shortcut> {
    if !ctrl || alt || meta {
        return None;
    }
    match (shift, code) {
        (true, "KeyT" | "Enter") => Some(Shortcut::NewTerminal),
        (true, "BracketRight") | (false, "PageDown") => Some(Shortcut::NextTab),
        (true, "BracketLeft") | (false, "PageUp") => Some(Shortcut::PreviousTab),
        _ => None,
    }
}

/// Ctrl+S, or Cmd+S (a Mac's save), without Shift or Alt.
pub fn is_save(code: &str, ctrl: bool, shift: bool, alt: bool, meta: bool) -> bool {
    code == "KeyS" && ctrl != meta && !shift && !alt
}

/// The shortcut a key event is, if any.
pub fn shortcut(event: &KeyboardEvent) -> Option<Shortcut> {
    match_keys(
        &event.code(),
        event.ctrl_key(),
        event.shift_key(),
        event.alt_key(),
        event.meta_key(),
    )
}

/// Handles the shortcuts while the workspace is shown.
pub fn install(workspace: Workspace, files: Files) {
    let handle = window_event_listener(leptos::ev::keydown, move |event| {
        if let MainView::File(path) = workspace.main.get_untracked()
            && is_save(
                &event.code(),
                event.ctrl_key(),
                event.shift_key(),
                event.alt_key(),
                event.meta_key(),
            )
        {
            event.prevent_default();
            files.save(path, false);
            return;
        }
        let Some(action) = shortcut(&event) else { return };
        event.prevent_default();
        event.stop_propagation();
        match action {
            Shortcut::NewTerminal => workspace.new_terminal(),
            Shortcut::NextTab => workspace.cycle(1),
            Shortcut::PreviousTab => workspace.cycle(-1),
        }
    });
    on_cleanup(move || handle.remove());
}

#[cfg(test)]
mod tests {
    use super::{Shortcut, is_save, match_keys};

    #[test]
    fn shortcuts_need_exactly_their_modifiers() {
        assert_eq!(match_keys("KeyT", true, true, false, false), Some(Shortcut::NewTerminal));
        assert_eq!(match_keys("KeyT", true, false, false, false), None);
        assert_eq!(match_keys("KeyT", true, true, true, false), None);
        assert_eq!(match_keys("BracketRight", true, true, false, false), Some(Shortcut::NextTab));
        assert_eq!(match_keys("PageUp", true, false, false, false), Some(Shortcut::PreviousTab));
        assert_eq!(match_keys("PageUp", true, true, false, false), None);
        assert_eq!(match_keys("KeyC", true, true, false, false), None);
    }

    #[test]
    fn save_is_ctrl_s_or_cmd_s() {
        assert!(is_save("KeyS", true, false, false, false));
        assert!(is_save("KeyS", false, false, false, true));
        assert!(!is_save("KeyS", true, true, false, false), "Ctrl+Shift+S is not save");
        assert!(!is_save("KeyS", false, false, false, false));
        assert!(!is_save("KeyS", true, false, false, true));
        assert!(!is_save("KeyD", true, false, false, false));
    }
}
