//! Who is attached to each session right now (presence), whose keystrokes last reached each
//! terminal, and cutting a person's connections at once (an invite revoked, a guest
//! removed).
//!
//! Every live connection of a person to a session (a terminal or browser websocket, a
//! guest's events websocket) holds an [`Attachment`]: dropping it detaches. Each attachment
//! carries a cancellation token its relay selects on; [`People::cut`] fires the tokens of
//! the people it matches, which close their sockets.
//!
//! **Invariant:** presence is published (on the events websocket, to the session's owner and
//! its guests) whenever the set of people or a terminal's last typist changes, never per
//! keystroke.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use proto::people::{Person, Presence, Typist};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::sessions::Sessions;

#[derive(Default)]
struct Attached {
    /// Live connections: id → (person, shown in presence, its cut signal).
    connections: BTreeMap<u64, (Person, bool, CancellationToken)>,
    /// Terminal → the person who typed into it last.
    typists: BTreeMap<String, Person>,
}

/// The people of every session.
pub struct People {
    sessions: Mutex<HashMap<String, Attached>>,
    next: Mutex<u64>,
    /// Sessions whose presence changed, for the publishing task.
    changed: mpsc::UnboundedSender<String>,
}

impl std::fmt::Debug for People {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("People").finish_non_exhaustive()
    }
}

/// One connection of a person to a session; detaches when dropped.
#[derive(Debug)]
pub struct Attachment {
    people: Weak<People>,
    session_id: String,
    id: u64,
    /// Fired when the person's access ends: the connection must close.
    pub cut: CancellationToken,
}

impl Drop for Attachment {
    fn drop(&mut self) {
        if let Some(people) = self.people.upgrade() {
            people.detach(&self.session_id, self.id);
        }
    }
}

impl People {
    /// The registry; presence changes are published through `sessions` by a task of its
    /// own (the owner is looked up in the store).
    pub fn new(sessions: &Arc<Sessions>) -> Arc<People> {
        let (changed, mut rx) = mpsc::unbounded_channel::<String>();
        let people = Arc::new(People { sessions: Mutex::default(), next: Mutex::new(0), changed });
        let weak = Arc::downgrade(&people);
        let sessions = Arc::downgrade(sessions);
        tokio::spawn(async move {
            while let Some(session_id) = rx.recv().await {
                let (Some(people), Some(sessions)) = (weak.upgrade(), sessions.upgrade()) else {
                    return;
                };
                let presence = people.presence(&session_id);
                sessions.publish_presence(&session_id, presence).await;
            }
        });
        people
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Attached>) -> T) -> T {
        f(&mut self.sessions.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// `person` connected to `session_id`; `shown` connections count in presence (a
    /// guest's events websocket only needs cutting).
    pub fn attach(self: &Arc<Self>, session_id: &str, person: Person, shown: bool) -> Attachment {
        let id = {
            let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
            *next += 1;
            *next
        };
        let cut = CancellationToken::new();
        let changed = self.with(|sessions| {
            let attached = sessions.entry(session_id.to_owned()).or_default();
            let new =
                shown && !attached.connections.values().any(|(p, s, _)| *s && p.id == person.id);
            attached.connections.insert(id, (person, shown, cut.clone()));
            new
        });
        if changed {
            let _ = self.changed.send(session_id.to_owned());
        }
        Attachment { people: Arc::downgrade(self), session_id: session_id.to_owned(), id, cut }
    }

    fn detach(&self, session_id: &str, id: u64) {
        let changed = self.with(|sessions| {
            let Some(attached) = sessions.get_mut(session_id) else { return false };
            let Some((person, shown, _)) = attached.connections.remove(&id) else { return false };
            let gone =
                shown && !attached.connections.values().any(|(p, s, _)| *s && p.id == person.id);
            if attached.connections.is_empty() {
                sessions.remove(session_id);
            }
            gone
        });
        if changed {
            let _ = self.changed.send(session_id.to_owned());
        }
    }

    /// `person` typed into `terminal` of `session_id`.
    pub fn typed(&self, session_id: &str, terminal: &str, person: &Person) {
        let changed = self.with(|sessions| {
            let Some(attached) = sessions.get_mut(session_id) else { return false };
            if attached.typists.get(terminal).is_some_and(|p| p.id == person.id) {
                return false;
            }
            attached.typists.insert(terminal.to_owned(), person.clone());
            true
        });
        if changed {
            let _ = self.changed.send(session_id.to_owned());
        }
    }

    /// Closes the connections to `session_id` of the people `matches` picks; how many.
    pub fn cut(&self, session_id: &str, matches: impl Fn(&Person) -> bool) -> usize {
        self.with(|sessions| {
            let Some(attached) = sessions.get(session_id) else { return 0 };
            let mut cut = 0;
            for (person, _, token) in attached.connections.values() {
                if matches(person) {
                    token.cancel();
                    cut += 1;
                }
            }
            cut
        })
    }

    /// Who is attached to `session_id` now, each once, in the order they came.
    pub fn presence(&self, session_id: &str) -> Presence {
        self.with(|sessions| {
            let Some(attached) = sessions.get(session_id) else { return Presence::default() };
            let mut people: Vec<Person> = Vec::new();
            for (person, shown, _) in attached.connections.values() {
                if *shown && !people.iter().any(|p| p.id == person.id) {
                    people.push(person.clone());
                }
            }
            let typists = attached
                .typists
                .iter()
                .map(|(terminal, p)| Typist {
                    terminal: terminal.clone(),
                    person: p.id.clone(),
                    name: p.name.clone(),
                })
                .collect();
            Presence { people, typists }
        })
    }
}

#[cfg(test)]
mod tests {
    use proto::people::Role;

    use super::*;

    fn person(id: &str, role: Role) -> Person {
        Person { id: id.to_owned(), name: id.to_uppercase(), role }
    }

    fn people() -> Arc<People> {
        let (changed, _rx) = mpsc::unbounded_channel();
        Arc::new(People { sessions: Mutex::default(), next: Mutex::new(0), changed })
    }

    #[test]
    fn a_person_is_present_once_while_any_connection_lasts() {
        let people = people();
        let a1 = people.attach("s", person("ada", Role::Owner), true);
        let a2 = people.attach("s", person("ada", Role::Owner), true);
        let b = people.attach("s", person("bob", Role::Editor), true);
        let hidden = people.attach("s", person("cy", Role::Viewer), false);
        let ids = |p: &People| p.presence("s").people.into_iter().map(|p| p.id).collect::<Vec<_>>();
        assert_eq!(ids(&people), ["ada", "bob"]);
        drop(a1);
        assert_eq!(ids(&people), ["ada", "bob"]);
        drop(a2);
        assert_eq!(ids(&people), ["bob"]);
        assert!(people.presence("other").people.is_empty());
        drop((b, hidden));
        assert!(people.presence("s").people.is_empty());
    }

    #[test]
    fn typists_and_cuts_follow_the_people() {
        let people = people();
        let bob = person("bob", Role::Editor);
        let a = people.attach("s", person("ada", Role::Owner), true);
        let b = people.attach("s", bob.clone(), true);
        people.typed("s", "t1", &bob);
        let typists = people.presence("s").typists;
        assert_eq!(typists.len(), 1);
        assert_eq!((typists[0].terminal.as_str(), typists[0].name.as_str()), ("t1", "BOB"));
        assert_eq!(people.cut("s", |p| p.id == "bob"), 1);
        assert!(b.cut.is_cancelled() && !a.cut.is_cancelled());
    }
}
