//! The workspace page of one session (`/s/{id}`): terminal tabs, the shared browser and
//! open files in the main area, the files panel at the left, the ports and activity panels
//! beside them, the status bar.
//!
//! On opening, the session's existing terminals become tabs (a new shell when there are
//! none). Tabs stay mounted while hidden, so a background shell keeps its screen and link.
//! A terminal an agent starts typing into gets a tab too (the agent may open its own).

mod close;
mod keys;
mod pane;
mod panels;
mod restore;
mod status;
mod tabs;

use std::collections::{BTreeSet, HashMap};

use leptos::prelude::*;
use leptos::task::spawn_local_scoped_with_cancellation;
use leptos_router::hooks::use_params_map;
use proto::api::SessionState;

use crate::agent::{ActivityStore, ConnectDialog};
use crate::api;
use crate::browser::BrowserPanel;
use crate::events::SessionStore;
use crate::files::{EditorArea, Files};
use crate::notice::{Reporter, use_reporter};
use crate::people::ShareDialog;
use crate::ports::PortStore;
use crate::terminal::conn::{TermSignals, TerminalConn};

pub use keys::{Shortcut, shortcut};
pub use panels::HidePanel;

/// A terminal tab.
#[derive(Clone)]
pub struct Tab {
    /// The terminal's id.
    pub id: String,
    /// Its link, as the UI shows it.
    pub signals: TermSignals,
}

/// What the main area shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MainView {
    /// The active terminal tab.
    Terminal,
    /// The shared browser.
    Browser,
    /// An open file, in the editor.
    File(String),
}

/// The page's state (context).
#[derive(Clone, Copy)]
pub struct Workspace {
    /// The session's id.
    pub session: StoredValue<String>,
    /// The session runs (terminals can be opened).
    pub running: Memo<bool>,
    /// Open tabs, in order.
    pub tabs: RwSignal<Vec<Tab>>,
    /// The active tab's terminal id.
    pub active: RwSignal<Option<String>>,
    /// A terminal is being created.
    pub creating: RwSignal<bool>,
    /// Terminals an agent is typing into now (a tool call of theirs runs).
    pub agent_typing: Memo<BTreeSet<String>>,
    /// The activity panel is shown.
    pub activity_open: RwSignal<bool>,
    /// The ports panel is shown.
    pub ports_open: RwSignal<bool>,
    /// The files panel is shown.
    pub files_open: RwSignal<bool>,
    /// What the main area shows (the terminals stay mounted whatever it is).
    pub main: RwSignal<MainView>,
    /// The "Connect an agent" dialog is shown.
    pub connect_open: RwSignal<bool>,
    /// The Share dialog is shown.
    pub share_open: RwSignal<bool>,
    /// A tab whose shell runs a command is being closed: asking first.
    pub closing: RwSignal<Option<String>>,
    /// The signed-in person's role here: a guest's from their invite, else the owner.
    pub role: proto::people::Role,
    /// May type, write files and change ports (an editor or the owner).
    pub can_edit: bool,
    /// Each mounted tab's terminal (registered by its pane).
    conns: StoredValue<HashMap<String, TerminalConn>, LocalStorage>,
    /// The page's owner: tasks and tabs' signals belong to the page (not to whichever
    /// button or effect started them), and end with it.
    owner: StoredValue<Owner>,
    reporter: Reporter,
}

impl Workspace {
    /// Runs `task` under the page's owner, untracked, cancelled when the page goes.
    fn spawn(self, task: impl Future<Output = ()> + 'static) {
        let owner = self.owner.get_value();
        owner.with(|| untrack(|| spawn_local_scoped_with_cancellation(task)));
    }

    /// The active tab's terminal.
    pub fn active_conn(self) -> Option<TerminalConn> {
        let active = self.active.get_untracked()?;
        self.conns.with_value(|conns| conns.get(&active).cloned())
    }

    /// The active tab (tracked).
    pub fn active_tab(self) -> Option<Tab> {
        let active = self.active.get()?;
        self.tabs.with(|tabs| tabs.iter().find(|tab| tab.id == active).cloned())
    }

    fn register(self, id: &str, conn: TerminalConn) {
        self.conns.update_value(|conns| {
            conns.insert(id.to_owned(), conn);
        });
    }

    fn unregister(self, id: &str) {
        self.conns.update_value(|conns| {
            conns.remove(id);
        });
    }

    /// Adds a tab for an existing terminal.
    fn add_tab(self, id: String, activate: bool) {
        if self.tabs.with_untracked(|tabs| tabs.iter().any(|tab| tab.id == id)) {
            return;
        }
        self.tabs
            .update(|tabs| tabs.push(Tab { id: id.clone(), signals: TermSignals::connecting() }));
        if activate {
            self.show_terminal(id);
        } else if self.active.get_untracked().is_none() {
            self.active.set(Some(id));
        }
    }

    /// Opens a new shell in a new tab, the size of the current one.
    pub fn new_terminal(self) {
        if self.creating.get_untracked() || !self.running.get_untracked() || !self.can_edit {
            return;
        }
        self.creating.set(true);
        let (cols, rows) = self.active_conn().map_or((0, 0), |conn| conn.size());
        let session = self.session.get_value();
        self.spawn(async move {
            match api::create_terminal(&session, cols, rows).await {
                Ok(info) => self.add_tab(info.id.to_string(), true),
                Err(error) => self.reporter.api("cannot open a terminal", &error),
            }
            self.creating.set(false);
        });
    }

    /// Closes a tab, which kills its shell: at once when the shell is at a prompt (or
    /// gone), after asking when it runs a command.
    pub fn request_close(self, id: String) {
        let session = self.session.get_value();
        self.spawn(async move {
            let running = match api::terminals(&session).await {
                Ok(list) => list.iter().any(|terminal| {
                    terminal.id.as_str() == id
                        && terminal.exit.is_none()
                        && terminal.shell == proto::terminal::ShellState::Running
                }),
                // Not knowing, ask: a kill cannot be undone.
                Err(_) => true,
            };
            if running {
                self.closing.set(Some(id));
            } else {
                self.close_terminal(id);
            }
        });
    }

    /// Kills a tab's shell and closes the tab.
    pub fn close_terminal(self, id: String) {
        let session = self.session.get_value();
        self.spawn(async move {
            match api::kill_terminal(&session, &id).await {
                Ok(()) => self.remove_tab(&id),
                // Already gone: close the tab all the same.
                Err(error) if error.status == 404 => self.remove_tab(&id),
                Err(error) => self.reporter.api("cannot close the terminal", &error),
            }
        });
    }

    fn remove_tab(self, id: &str) {
        let tabs = self.tabs.get_untracked();
        let Some(index) = tabs.iter().position(|tab| tab.id == id) else { return };
        if self.active.get_untracked().as_deref() == Some(id) {
            // The neighbour to the right, else to the left, takes over.
            let next =
                tabs.get(index + 1).or_else(|| index.checked_sub(1).and_then(|i| tabs.get(i)));
            self.active.set(next.map(|tab| tab.id.clone()));
        }
        self.tabs.update(|tabs| tabs.retain(|tab| tab.id != id));
    }

    /// Activates the tab `delta` places away (wrapping).
    pub fn cycle(self, delta: isize) {
        let tabs = self.tabs.get_untracked();
        if tabs.is_empty() {
            return;
        }
        let active = self.active.get_untracked();
        let index = tabs.iter().position(|tab| Some(&tab.id) == active.as_ref()).unwrap_or(0);
        let next = (index as isize + delta).rem_euclid(tabs.len() as isize) as usize;
        self.active.set(Some(tabs[next].id.clone()));
    }

    /// Shows the shared browser with a port of the sandbox in it (`http://127.0.0.1:PORT/`
    /// there: the browser runs inside).
    pub fn open_in_browser(self, port: u16) {
        self.main.set(MainView::Browser);
        let session = self.session.get_value();
        self.spawn(async move {
            let url = format!("http://127.0.0.1:{port}/");
            if let Err(error) = api::browser_navigate(&session, &url).await {
                self.reporter
                    .api(&format!("cannot open port {port} in the shared browser"), &error);
            }
        });
    }

    /// Shows a terminal tab (leaving the browser or the editor).
    pub fn show_terminal(self, id: String) {
        self.main.set(MainView::Terminal);
        self.active.set(Some(id));
    }

    /// The main area shows the terminals (tracked).
    pub fn terminals_shown(self) -> bool {
        self.main.with(|main| *main == MainView::Terminal)
    }

    /// Lists the session's terminals as tabs, opening a shell when there is none.
    fn load(self) {
        let session = self.session.get_value();
        self.spawn(async move {
            match api::terminals(&session).await {
                Ok(list) if list.is_empty() => self.new_terminal(),
                Ok(list) => {
                    for info in list {
                        self.add_tab(info.id.to_string(), false);
                    }
                    // After a reload: what this page showed before.
                    match restore::remembered(&session) {
                        Some(restore::Shown::Terminal(id))
                            if self.tabs.with_untracked(|tabs| tabs.iter().any(|t| t.id == id)) =>
                        {
                            self.active.set(Some(id));
                        }
                        Some(restore::Shown::Browser) => self.main.set(MainView::Browser),
                        _ => {}
                    }
                }
                Err(error) => self.reporter.api("cannot list the terminals", &error),
            }
        });
    }
}

/// `/s/{id}`.
#[component]
pub fn WorkspacePage() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| params.read().get("id").unwrap_or_default());
    // A new id is a new workspace: the old one's tabs close.
    move || {
        let id = id.get();
        view! { <Existing id /> }
    }
}

/// The workspace of a session that exists; a plain 404 page for an id the server does not
/// know (a mistyped or stale link), rather than a workspace around nothing.
#[component]
fn Existing(id: String) -> impl IntoView {
    let store = expect_context::<SessionStore>();
    let reporter = use_reporter();
    // None while asking.
    let exists = RwSignal::new(store.session_untracked(&id).map(|_| true));
    if exists.get_untracked().is_none() {
        let id = id.clone();
        leptos::task::spawn_local(async move {
            let found = match api::session(&id).await {
                Ok(session) => {
                    store.upsert(session);
                    true
                }
                Err(error) if error.status == 404 => false,
                // The workspace says what it can (and a 401 switches the tab anyway).
                Err(error) => {
                    reporter.api("cannot open the session", &error);
                    true
                }
            };
            exists.try_set(Some(found));
        });
    }
    move || match exists.get() {
        None => view! {
            <main class="center-page">
                <span class="spinner"></span>
            </main>
        }
        .into_any(),
        Some(false) => view! {
            <crate::app::NotFound
                title="No such session"
                detail="It may have been destroyed, or the link is wrong."
            />
        }
        .into_any(),
        Some(true) => {
            let id = id.clone();
            view! { <WorkspaceView id /> }.into_any()
        }
    }
}

#[component]
fn WorkspaceView(id: String) -> impl IntoView {
    let store = expect_context::<SessionStore>();
    let activity = expect_context::<ActivityStore>();
    activity.follow(&id);
    on_cleanup({
        let id = id.clone();
        move || activity.unfollow(&id)
    });
    let session = {
        let id = id.clone();
        Memo::new(move |_| store.session(&id))
    };
    let state = Memo::new(move |_| session.get().map(|s| s.state));
    let role = match expect_context::<crate::auth::AuthState>().0.get_untracked() {
        crate::auth::Auth::SignedIn(me) => me.role.unwrap_or(proto::people::Role::Owner),
        _ => proto::people::Role::Viewer,
    };
    let workspace = Workspace {
        session: StoredValue::new(id.clone()),
        running: Memo::new(move |_| state.get().is_some_and(SessionState::is_up)),
        tabs: RwSignal::new(Vec::new()),
        active: RwSignal::new(None),
        creating: RwSignal::new(false),
        agent_typing: {
            let id = id.clone();
            Memo::new(move |_| activity.typing(&id))
        },
        activity_open: RwSignal::new(panels::remembered(panels::ACTIVITY_PANEL_KEY)),
        ports_open: RwSignal::new(panels::remembered(panels::PORTS_PANEL_KEY)),
        files_open: RwSignal::new(panels::remembered(panels::FILES_PANEL_KEY)),
        main: RwSignal::new(MainView::Terminal),
        connect_open: RwSignal::new(false),
        share_open: RwSignal::new(false),
        closing: RwSignal::new(None),
        role,
        can_edit: role.may_edit(),
        conns: StoredValue::new_local(HashMap::new()),
        owner: StoredValue::new(Owner::current().unwrap_or_default()),
        reporter: use_reporter(),
    };
    provide_context(workspace);
    let files = Files::provide(&id, workspace.main, workspace.reporter, workspace.can_edit);

    // Terminals load once the session runs (it may still be starting).
    let loaded = StoredValue::new(false);
    Effect::new(move |_| {
        if state.get().is_some_and(SessionState::is_up) && !loaded.get_value() {
            loaded.set_value(true);
            workspace.load();
        }
    });

    keys::install(workspace, files);

    // Who is here: asked once, then live from the events socket.
    {
        let id = id.clone();
        workspace.spawn(async move {
            if let Ok(presence) = api::people(&id).await {
                store.set_presence(&id, presence);
            }
        });
    }

    // An agent typing into a terminal without a tab (it opened its own): show it.
    Effect::new(move |_| {
        let typing = workspace.agent_typing.get();
        if !loaded.get_value() {
            return;
        }
        for id in typing {
            workspace.add_tab(id, false);
        }
    });
    panels::remember(workspace);
    restore::remember(workspace);

    // Ports exist while the session runs: loaded each time it starts running, then live.
    let ports = expect_context::<PortStore>();
    Effect::new({
        let id = id.clone();
        move |was_running: Option<bool>| {
            let running = workspace.running.get();
            if running && was_running != Some(true) {
                ports.follow(&id);
            }
            running
        }
    });
    on_cleanup({
        let id = id.clone();
        move || ports.unfollow(&id)
    });

    // The browser tab says which session it is.
    Effect::new(move |_| {
        let name = session.with(|s| s.as_ref().map(|s| s.name.clone()));
        document().set_title(&name.map_or_else(|| "Flint".to_owned(), |n| format!("{n} · Flint")));
    });
    on_cleanup(|| document().set_title("Flint"));

    // What the terminal area shows; a memo, so the panes are built once per phase.
    let phase = Memo::new(move |_| match (session.get(), store.loaded.get()) {
        (None, false) => Phase::Loading,
        (None, true) => Phase::Missing,
        (Some(session), _) => match session.state {
            SessionState::Creating => Phase::Starting,
            SessionState::Running | SessionState::Degraded => Phase::Running,
            state => Phase::Ended(match session.reason {
                Some(reason) => format!("This session is {}: {reason}", state.as_str()),
                None => format!("This session is {}.", state.as_str()),
            }),
        },
    });
    // Not in the list: ask the server itself, which says why (and the list may lag behind a
    // session created a moment ago).
    Effect::new({
        let id = id.clone();
        let reporter = workspace.reporter;
        move |_| {
            if phase.get() != Phase::Missing {
                return;
            }
            let id = id.clone();
            workspace.spawn(async move {
                match api::session(&id).await {
                    Ok(session) => store.upsert(session),
                    // Gone: the page already says so.
                    Err(error) if error.status == 404 => {}
                    Err(error) => reporter.api("cannot open the session", &error),
                }
            });
        }
    });

    let body = move || match phase.get() {
        Phase::Loading => view! { <Message spinner=true text="Loading…".into() /> }.into_any(),
        Phase::Missing => {
            let text = "This session no longer exists: it was destroyed.".to_owned();
            view! { <Message text /> }.into_any()
        }
        Phase::Starting => {
            view! { <Message spinner=true text="The sandbox is starting…".into() /> }.into_any()
        }
        Phase::Running => {
            let session = workspace.session.get_value();
            let browser_shown = Memo::new(move |_| workspace.main.get() == MainView::Browser);
            view! {
                <div class="terminals" class:hidden=move || !workspace.terminals_shown()>
                    <pane::Panes />
                </div>
                {move || {
                    let session = session.clone();
                    browser_shown.get().then(|| view! { <BrowserPanel session /> })
                }}
                <EditorArea />
            }
            .into_any()
        }
        Phase::Ended(text) => view! { <Message text /> }.into_any(),
    };

    // A degraded session keeps its panes (they reconnect by themselves); this says why.
    let degraded = move || {
        session.with(|s| {
            s.as_ref().filter(|s| s.state == SessionState::Degraded).map(|s| {
                let why = s.reason.clone().unwrap_or_else(|| "its agent does not answer".into());
                view! {
                    <div class="server-warning" role="status" data-testid="session-degraded">
                        {format!("Reconnecting to the sandbox: {why}")}
                    </div>
                }
            })
        })
    };

    view! {
        <div class="workspace">
            {degraded}
            <tabs::TabBar session />
            <div class="ws-body">
                <panels::FilesColumn />
                <div class="term-area">{body}</div>
                <panels::SideColumn session=id.clone() />
            </div>
            <status::StatusBar session />
            <ConnectDialog session=id.clone() open=workspace.connect_open />
            <ShareDialog session=id open=workspace.share_open />
            <close::ConfirmClose />
        </div>
    }
}

/// What the terminal area shows.
#[derive(Clone, Debug, PartialEq)]
enum Phase {
    Loading,
    Missing,
    Starting,
    Running,
    /// Stopped, stopping or failed: why.
    Ended(String),
}

/// A centred note in the terminal area.
#[component]
fn Message(text: String, #[prop(optional)] spinner: bool) -> impl IntoView {
    view! {
        <div class="term-message">
            {spinner.then(|| view! { <span class="spinner"></span> })}
            <span>{text}</span>
            <a class="button small" href="/">
                "← All sessions"
            </a>
        </div>
    }
}
