//! The caller's sessions, live: the events websocket (`/api/events/ws`) keeps
//! [`SessionStore`] current, reconnecting with backoff when it drops. No polling. Its
//! `activity` messages go to the [`ActivityStore`], its `ports` messages to the
//! [`PortStore`].

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::{Rc, Weak};

use leptos::prelude::*;
use leptos::task::spawn_local;
use proto::api::{EventsMessage, SessionInfo};
use proto::people::Presence;

use crate::agent::ActivityStore;
use crate::api;
use crate::auth::AuthState;
use crate::ports::PortStore;
use crate::socket::{Link, Reconnect, Socket, SocketEvent};

/// Every session the caller may see (context).
#[derive(Clone, Copy)]
pub struct SessionStore {
    sessions: RwSignal<Vec<SessionInfo>>,
    /// A list has arrived (the socket's snapshot or the REST list).
    pub loaded: RwSignal<bool>,
    /// The events socket.
    pub link: RwSignal<Link>,
    /// The socket's snapshot has arrived: from then on the REST list is stale.
    live: RwSignal<bool>,
    /// Sessions deleted since the last snapshot: a late update of one is not brought back.
    gone: StoredValue<HashSet<String>>,
    /// Where `activity` messages go.
    activity: ActivityStore,
    /// Where `ports` messages go.
    ports: PortStore,
    /// Who is attached to each session (its `presence` messages).
    presence: RwSignal<HashMap<String, Presence>>,
}

impl SessionStore {
    /// Starts following the caller's sessions, provided as context; stops on cleanup. Needs
    /// the [`ActivityStore`] and the [`PortStore`] in context.
    pub fn provide() -> SessionStore {
        let store = SessionStore {
            sessions: RwSignal::new(Vec::new()),
            loaded: RwSignal::new(false),
            link: RwSignal::new(Link::Connecting),
            live: RwSignal::new(false),
            gone: StoredValue::new(HashSet::new()),
            activity: expect_context::<ActivityStore>(),
            ports: expect_context::<PortStore>(),
            presence: RwSignal::new(HashMap::new()),
        };
        provide_context(store);
        let auth = expect_context::<AuthState>();
        // The REST list renders the page at once; the socket's snapshot replaces it.
        spawn_local(async move {
            match api::sessions().await {
                Ok(list) if !store.live.get_untracked() => store.replace(list),
                Ok(_) => {}
                Err(error) if error.is_unauthorized() => auth.signed_out(&error),
                Err(_) => {} // the socket reports the server's state
            }
        });
        let conn = Rc::new(RefCell::new(EventsConn {
            store,
            auth,
            socket: None,
            reconnect: Reconnect::new(store.link),
            opened: false,
            stopped: false,
        }));
        EventsConn::connect(&conn);
        let conn = StoredValue::new_local(conn);
        on_cleanup(move || conn.with_value(|conn| conn.borrow_mut().stop()));
        store
    }

    /// The sessions, newest first (tracked).
    pub fn list(self) -> Vec<SessionInfo> {
        self.sessions.get()
    }

    /// One session (tracked).
    pub fn session(self, id: &str) -> Option<SessionInfo> {
        self.sessions.with(|list| list.iter().find(|s| s.id == id).cloned())
    }

    /// One session, untracked.
    pub fn session_untracked(self, id: &str) -> Option<SessionInfo> {
        self.sessions.with_untracked(|list| list.iter().find(|s| s.id == id).cloned())
    }

    /// A newer view of a session (a REST answer, or an event).
    pub fn upsert(self, session: SessionInfo) {
        if self.gone.with_value(|gone| gone.contains(&session.id)) {
            return;
        }
        self.sessions.update(|list| {
            match list.iter_mut().find(|s| s.id == session.id) {
                Some(slot) => *slot = session,
                None => list.push(session),
            }
            sort(list);
        });
    }

    /// A session is gone.
    pub fn remove(self, id: &str) {
        self.gone.update_value(|gone| {
            gone.insert(id.to_owned());
        });
        self.sessions.update(|list| list.retain(|s| s.id != id));
    }

    fn replace(self, mut list: Vec<SessionInfo>) {
        sort(&mut list);
        self.gone.update_value(HashSet::clear);
        self.sessions.set(list);
        if !self.loaded.get_untracked() {
            self.loaded.set(true);
        }
    }

    /// Who is attached to `id` now, as last heard (tracked).
    pub fn presence(self, id: &str) -> Presence {
        self.presence.with(|all| all.get(id).cloned().unwrap_or_default())
    }

    /// Sets a session's presence from a REST answer (before the socket says more).
    pub fn set_presence(self, id: &str, presence: Presence) {
        self.presence.update(|all| {
            all.insert(id.to_owned(), presence);
        });
    }

    fn apply(self, message: EventsMessage) {
        match message {
            EventsMessage::Snapshot { sessions } => {
                self.live.set(true);
                self.replace(sessions);
                // A new socket: activity and ports it missed while down are loaded again.
                self.activity.resync();
                self.ports.resync();
            }
            EventsMessage::Session { session } => self.upsert(*session),
            EventsMessage::Deleted { id } => self.remove(&id),
            EventsMessage::Activity { event } => self.activity.record(*event),
            EventsMessage::Ports { session_id, ports } => self.ports.update(&session_id, ports),
            EventsMessage::Presence { session_id, presence } => {
                self.presence.update(|all| {
                    all.insert(session_id, presence);
                });
            }
        }
    }
}

/// Newest first; the id breaks ties so the order is stable.
fn sort(list: &mut [SessionInfo]) {
    list.sort_by(|a, b| b.created_ms.cmp(&a.created_ms).then_with(|| a.id.cmp(&b.id)));
}

/// The events socket and its reconnects.
struct EventsConn {
    store: SessionStore,
    auth: AuthState,
    socket: Option<Socket>,
    reconnect: Reconnect,
    /// The current socket opened (a socket that never opens may mean a lost sign-in).
    opened: bool,
    stopped: bool,
}

impl EventsConn {
    fn connect(this: &Rc<RefCell<EventsConn>>) {
        let weak = Rc::downgrade(this);
        let socket = Socket::open(api::EVENTS_WS_PATH, move |event| on_event(&weak, event));
        let mut conn = this.borrow_mut();
        conn.opened = false;
        match socket {
            Ok(socket) => conn.socket = Some(socket),
            Err(message) => {
                leptos::logging::warn!("{message}");
                drop(conn);
                EventsConn::schedule(this);
            }
        }
    }

    fn schedule(this: &Rc<RefCell<EventsConn>>) {
        let mut conn = this.borrow_mut();
        if conn.stopped {
            return;
        }
        let weak = Rc::downgrade(this);
        conn.reconnect.schedule(move || {
            if let Some(this) = weak.upgrade() {
                EventsConn::connect(&this);
            }
        });
    }

    fn stop(&mut self) {
        self.stopped = true;
        self.reconnect.cancel();
        self.socket = None;
    }
}

fn on_event(weak: &Weak<RefCell<EventsConn>>, event: SocketEvent) {
    let Some(this) = weak.upgrade() else { return };
    match event {
        SocketEvent::Open => {
            let mut conn = this.borrow_mut();
            conn.opened = true;
            conn.reconnect.connected();
        }
        SocketEvent::Text(text) => match serde_json::from_str::<EventsMessage>(&text) {
            Ok(message) => {
                let store = this.borrow().store;
                store.apply(message);
            }
            Err(error) => leptos::logging::warn!("unexpected events message: {error}"),
        },
        SocketEvent::Binary(_) => {}
        SocketEvent::Closed { .. } => {
            let (socket, opened, auth) = {
                let mut conn = this.borrow_mut();
                (conn.socket.take(), conn.opened, conn.auth)
            };
            // This runs inside the socket's own handler: drop it once the handler returned.
            queue_microtask(move || drop(socket));
            if !opened {
                // A refused upgrade looks like any network error; ask whether we are
                // still signed in (a 401 switches the tab to the signed-out page).
                spawn_local(async move {
                    if let Err(error) = api::me().await
                        && error.is_unauthorized()
                    {
                        auth.signed_out(&error);
                    }
                });
            }
            EventsConn::schedule(&this);
        }
    }
}
