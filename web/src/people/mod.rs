//! People in a session besides its owner: who is here now (presence, with initials and a
//! colour each), the owner's Share dialog (invite links with a role, the guests who came,
//! revoke and remove), and the page an invite link opens (`/join/{token}`).
//!
//! The server enforces every role; the UI only stops offering what a role may not do.

pub mod join;
mod share;

use leptos::prelude::*;
use proto::people::{Person, Presence, Role};

pub use join::JoinPage;
pub use share::ShareDialog;

/// Up to two letters for a name: the first of its first two words (`Ada Lovelace` → `AL`),
/// or its first two letters.
pub fn initials(name: &str) -> String {
    let words: Vec<&str> = name.split_whitespace().collect();
    let letters: String = match words.as_slice() {
        [] => String::new(),
        [one] => one.chars().take(2).collect(),
        [first, second, ..] => first.chars().take(1).chain(second.chars().take(1)).collect(),
    };
    letters.to_uppercase()
}

/// A stable colour for a person's id (one of a palette that reads on the dark theme).
pub fn colour(id: &str) -> &'static str {
    const PALETTE: [&str; 8] =
        ["#e57373", "#64b5f6", "#81c784", "#ffb74d", "#ba68c8", "#4dd0e1", "#f06292", "#aed581"];
    // FNV-1a: the same id gets the same colour in every tab.
    let hash =
        id.bytes().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    PALETTE[(hash as usize) % PALETTE.len()]
}

/// What a role reads as.
pub fn role_label(role: Role) -> &'static str {
    match role {
        Role::Owner => "owner",
        Role::Editor => "editor",
        Role::Viewer => "viewer",
    }
}

/// One person's round badge.
#[component]
pub fn Avatar(person: Person, #[prop(optional)] small: bool) -> impl IntoView {
    let title = format!("{} ({})", person.name, role_label(person.role));
    view! {
        <span
            class="avatar"
            class:small=small
            style=format!("background:{}", colour(&person.id))
            title=title
            data-testid="avatar"
            data-name=person.name.clone()
            data-role=role_label(person.role)
        >
            {initials(&person.name)}
        </span>
    }
}

/// Who is attached to the session now.
#[component]
pub fn PresenceBar(presence: Memo<Presence>) -> impl IntoView {
    view! {
        <div class="presence" data-testid="presence">
            <For
                each=move || presence.get().people
                key=|p| (p.id.clone(), p.name.clone(), p.role)
                let:person
            >
                <Avatar person />
            </For>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initials_take_two_words_or_two_letters() {
        assert_eq!(initials("Ada Lovelace"), "AL");
        assert_eq!(initials("grace"), "GR");
        assert_eq!(initials("  linus  b. torvalds "), "LB");
        assert_eq!(initials("é"), "É");
        assert_eq!(initials(""), "");
    }

    #[test]
    fn colours_are_stable_per_id() {
        assert_eq!(colour("abc"), colour("abc"));
        let distinct: std::collections::HashSet<_> =
            ["a", "b", "c", "d", "e", "f", "g", "h", "i"].iter().map(|id| colour(id)).collect();
        assert!(distinct.len() > 3, "ids spread over the palette: {distinct:?}");
    }
}
