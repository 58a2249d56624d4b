//! Files: the tree of `/workspace` (the Files panel) and the editor (Monaco) in the main
//! area, everything through the files REST API.
//!
//! An open file is a [`Doc`] (its state, pure) and a Monaco model (its text and undo stack).
//! Opening stats the file before reading it (a change between the two is then flagged, never
//! missed), refuses large and binary files, and holds the stat's modification time: a save
//! sends it as its precondition (`if_modified_ms`), so a file changed on disk since is never
//! overwritten (a 409 flags it instead), and the open files are stat'ed every
//! [`POLL_EVERY`] while the editor is shown, so a change made by the shell or an agent is
//! flagged as it happens. A flagged file offers "Reload from disk" or "Overwrite".

mod doc;
mod editor;
mod kind;
pub mod monaco;
mod ops;
mod panel;
mod tab;
pub mod tree;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local_scoped_with_cancellation;
use proto::files::FileStat;
use wasm_bindgen::prelude::*;

pub use self::doc::{Disk, Doc, Phase, Stamp};
pub use self::editor::EditorArea;
pub use self::kind::{Refusal, language};
pub use self::panel::FilesPanel;
pub use self::tab::FileTab;
use self::tree::Tree;
use crate::notice::Reporter;
use crate::workspace::MainView;

/// How often open files are stat'ed while the editor is shown: a change made in the
/// shell is flagged within this, at one small request per open file.
pub const POLL_EVERY: Duration = Duration::from_secs(2);

/// How often the tree's shown directories are listed again while the panel is shown.
pub const TREE_EVERY: Duration = Duration::from_secs(3);

/// The Monaco side of an open file.
struct Slot {
    model: monaco::Model,
    listener: monaco::Listener,
    /// Kept alive for as long as the listener is registered.
    _on_change: Closure<dyn FnMut(JsValue)>,
    /// Cursor and scroll when another file was shown.
    view_state: JsValue,
    /// The file's path, as the change listener finds its doc (a rename changes it).
    path: Rc<RefCell<String>>,
}

/// The workspace's files (context).
#[derive(Clone, Copy)]
pub struct Files {
    session: StoredValue<String>,
    /// What the main area shows (the workspace's).
    pub main: RwSignal<MainView>,
    /// The tree's listings and expanded directories.
    pub tree: RwSignal<Tree>,
    /// Why the root could not be listed.
    pub tree_error: RwSignal<Option<String>>,
    /// The row last clicked: new files and uploads go to it (a directory) or beside it.
    pub selected: RwSignal<Option<String>>,
    /// Open files, in tab order.
    pub docs: RwSignal<Vec<Doc>>,
    slots: StoredValue<HashMap<String, Slot>, LocalStorage>,
    owner: StoredValue<Owner>,
    reporter: Reporter,
    /// The person may change files (an owner or editor); a viewer reads them only.
    pub can_edit: bool,
}

impl Files {
    /// The files of `session`, provided as context; `can_edit` is false for a viewer.
    pub fn provide(
        session: &str,
        main: RwSignal<MainView>,
        reporter: Reporter,
        can_edit: bool,
    ) -> Files {
        let files = Files {
            session: StoredValue::new(session.to_owned()),
            main,
            tree: RwSignal::new(Tree::default()),
            tree_error: RwSignal::new(None),
            selected: RwSignal::new(None),
            docs: RwSignal::new(Vec::new()),
            slots: StoredValue::new_local(HashMap::new()),
            owner: StoredValue::new(Owner::current().unwrap_or_default()),
            reporter,
            can_edit,
        };
        provide_context(files);
        on_cleanup(move || {
            if let Some(slots) = files.slots.try_update_value(std::mem::take) {
                for (_, slot) in slots {
                    slot.listener.dispose();
                    slot.model.dispose();
                }
            }
        });
        files
    }

    /// Runs `task` under the page's owner, untracked, cancelled when the page goes.
    fn spawn(self, task: impl Future<Output = ()> + 'static) {
        let owner = self.owner.get_value();
        owner.with(|| untrack(|| spawn_local_scoped_with_cancellation(task)));
    }

    fn session(self) -> String {
        self.session.get_value()
    }

    /// The open file at `path` (tracked).
    pub fn doc(self, path: &str) -> Option<Doc> {
        self.docs.with(|docs| docs.iter().find(|d| d.path == path).cloned())
    }

    /// Changes the open file at `path`, if open; what `f` returned.
    fn edit_doc<T>(self, path: &str, f: impl FnOnce(&mut Doc) -> T) -> Option<T> {
        self.docs.try_update(|docs| docs.iter_mut().find(|d| d.path == path).map(f)).flatten()
    }

    /// The file shown in the main area.
    pub fn active(self) -> Option<String> {
        match self.main.get() {
            MainView::File(path) => Some(path),
            _ => None,
        }
    }

    /// Where all of `/workspace` downloads from, as a tarball.
    pub fn workspace_tar_url(self) -> String {
        crate::api::workspace_tar_url(&self.session())
    }

    /// Where a file's bytes download from.
    pub fn download_url(self, path: &str) -> String {
        crate::api::file_content_url(&self.session(), path)
    }

    /// The model of an open file, once it is ready.
    pub fn model(self, path: &str) -> Option<monaco::Model> {
        self.slots.with_value(|slots| slots.get(path).map(|slot| slot.model.clone()))
    }

    /// Keeps cursor and scroll of a file the editor stops showing.
    pub fn keep_view_state(self, path: &str, state: JsValue) {
        self.slots.update_value(|slots| {
            if let Some(slot) = slots.get_mut(path) {
                slot.view_state = state;
            }
        });
    }

    /// What [`Files::keep_view_state`] kept.
    pub fn view_state(self, path: &str) -> JsValue {
        self.slots.with_value(|slots| {
            slots.get(path).map_or(JsValue::UNDEFINED, |slot| slot.view_state.clone())
        })
    }

    /// Makes the model of a file just read; its changes keep the doc's dirty mark.
    fn attach(self, path: &str, text: &str) -> monaco::Model {
        let model = monaco::model(text, language(path));
        let watched = model.clone();
        let key = Rc::new(RefCell::new(path.to_owned()));
        let path_cell = key.clone();
        let on_change = Closure::<dyn FnMut(JsValue)>::new(move |_| {
            let path = key.borrow().clone();
            let version = watched.version();
            // A signal write per key press only when the dirty mark flips.
            let flips = self
                .docs
                .try_with_untracked(|docs| {
                    docs.iter().any(|d| d.path == path && d.would_change(version))
                })
                .unwrap_or(false);
            if flips {
                self.edit_doc(&path, |doc| doc.edited(version));
            }
        });
        let listener = model.on_did_change_content(&on_change);
        let slot = Slot {
            model: model.clone(),
            listener,
            _on_change: on_change,
            view_state: JsValue::UNDEFINED,
            path: path_cell,
        };
        self.slots.update_value(|slots| {
            if let Some(old) = slots.insert(path.to_owned(), slot) {
                old.listener.dispose();
                old.model.dispose();
            }
        });
        model
    }

    /// Frees an open file's model.
    fn detach(self, path: &str) {
        if let Some(slot) = self.slots.try_update_value(|slots| slots.remove(path)).flatten() {
            slot.listener.dispose();
            slot.model.dispose();
        }
    }

    /// Moves an open file's model and doc to a new path (a rename).
    fn rekey(self, from: &str, to: &str) {
        self.slots.update_value(|slots| {
            if let Some(slot) = slots.remove(from) {
                monaco::set_language(&slot.model, language(to));
                *slot.path.borrow_mut() = to.to_owned();
                slots.insert(to.to_owned(), slot);
            }
        });
        self.edit_doc(from, |doc| doc.rename(to.to_owned()));
        if self.main.get_untracked() == MainView::File(from.to_owned()) {
            self.main.set(MainView::File(to.to_owned()));
        }
    }
}

/// What a stat says about the file on disk.
fn stamp(stat: &FileStat) -> Stamp {
    Stamp { modified_ms: stat.modified_ms, size: stat.size }
}
