//! What the workspace showed survives a reload: the active terminal tab, or the shared
//! browser, kept per session in `sessionStorage` (per browser tab, like the page itself).

use leptos::prelude::*;

use super::{MainView, Workspace};

/// What was shown, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shown {
    /// A terminal tab, by terminal id.
    Terminal(String),
    /// The shared browser.
    Browser,
}

impl Shown {
    fn encode(&self) -> String {
        match self {
            Shown::Terminal(id) => format!("terminal:{id}"),
            Shown::Browser => "browser".to_owned(),
        }
    }

    fn decode(text: &str) -> Option<Shown> {
        match text.split_once(':') {
            Some(("terminal", id)) if !id.is_empty() => Some(Shown::Terminal(id.to_owned())),
            _ => (text == "browser").then_some(Shown::Browser),
        }
    }
}

fn key(session: &str) -> String {
    format!("flint.shown.{session}")
}

/// What the page showed for `session` before it was reloaded.
pub fn remembered(session: &str) -> Option<Shown> {
    let storage = window().session_storage().ok().flatten()?;
    Shown::decode(&storage.get_item(&key(session)).ok().flatten()?)
}

/// Keeps what is shown as it changes (an open file counts as its terminal tab: files are
/// opened again by hand).
pub fn remember(workspace: Workspace) {
    Effect::new(move |_| {
        let shown = match workspace.main.get() {
            MainView::Browser => Some(Shown::Browser),
            _ => workspace.active.get().map(Shown::Terminal),
        };
        let Some(shown) = shown else { return };
        if let Ok(Some(storage)) = window().session_storage() {
            let _ = storage.set_item(&key(&workspace.session.get_value()), &shown.encode());
        }
    });
}

#[cfg(test)]
mod tests {
    use super::Shown;

    #[test]
    fn what_was_shown_reads_back() {
        for shown in [Shown::Terminal("12".to_owned()), Shown::Browser] {
            assert_eq!(Shown::decode(&shown.encode()), Some(shown));
        }
        assert_eq!(Shown::decode("terminal:"), None);
        assert_eq!(Shown::decode("something else"), None);
    }
}
