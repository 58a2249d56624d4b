//! What a person does with files: open, save (with its precondition), reload, close; list
//! and refresh the tree; create, rename, delete and upload. Each goes through the REST API
//! and reports failures through the app's [`Reporter`](crate::notice::Reporter).

use leptos::prelude::*;
use wasm_bindgen::JsValue;

use super::kind::{self, Refusal};
use super::tree::{self, ROOT};
use super::{Doc, Files, Phase, stamp};
use crate::api::{self, ApiError, WriteIf};
use crate::workspace::MainView;

/// The file's text and the stat taken before reading it, or why it is not opened.
enum Read {
    Text(String, proto::files::FileStat),
    Refused(Refusal),
    Failed(ApiError),
}

/// Stats, then reads: a change between the two shows as a newer time at the next poll (a
/// flag, never a missed change).
async fn read_text(session: &str, path: &str) -> Read {
    let stat = match api::stat_file(session, path).await {
        Ok(stat) => stat,
        Err(error) => return Read::Failed(error),
    };
    if let Err(refusal) = kind::check_size(stat.size) {
        return Read::Refused(refusal);
    }
    match api::read_file(session, path).await {
        Ok(bytes) => match kind::decode(bytes) {
            Ok(text) => Read::Text(text, stat),
            Err(refusal) => Read::Refused(refusal),
        },
        Err(error) => Read::Failed(error),
    }
}

impl Files {
    /// Opens `path` in the editor (shows it when it is open already).
    pub fn open(self, path: String) {
        self.main.set(MainView::File(path.clone()));
        if self.docs.with_untracked(|docs| docs.iter().any(|d| d.path == path)) {
            return;
        }
        self.docs.update(|docs| docs.push(Doc::loading(path.clone())));
        // The editor's scripts load while the file is read.
        super::monaco::preload();
        self.spawn(async move {
            let read = read_text(&self.session(), &path).await;
            let (text, stat) = match read {
                Read::Text(text, stat) => (text, stat),
                Read::Refused(refusal) => {
                    self.edit_doc(&path, |doc| doc.phase = Phase::Refused(refusal.message()));
                    return;
                }
                Read::Failed(error) => {
                    self.edit_doc(&path, |doc| doc.phase = Phase::Failed(error.message.clone()));
                    self.reporter.api(&format!("cannot open {path}"), &error);
                    return;
                }
            };
            if let Err(message) = super::monaco::load().await {
                self.edit_doc(&path, |doc| doc.phase = Phase::Failed(message.clone()));
                self.reporter.message(message);
                return;
            }
            // Closed while it was being read: nothing to show.
            if self.docs.with_untracked(|docs| !docs.iter().any(|d| d.path == path)) {
                return;
            }
            let model = self.attach(&path, &text);
            self.edit_doc(&path, |doc| doc.loaded(stamp(&stat), model.version()));
        });
    }

    /// Saves an open file: with the time it was read at as the precondition, or over
    /// whatever is on disk (`overwrite`, after a person chose it).
    pub fn save(self, path: String, overwrite: bool) {
        if !self.can_edit {
            return;
        }
        let Some(model) = self.model(&path) else { return };
        let version = model.version();
        let Some(save) = self.edit_doc(&path, |doc| doc.begin_save(version, overwrite)).flatten()
        else {
            return;
        };
        let text: JsValue = model.value().into();
        self.spawn(async move {
            let precondition = save.if_modified_ms.map_or(WriteIf::Always, WriteIf::Unmodified);
            let answer = api::write_file(&self.session(), &path, text, precondition).await;
            match answer {
                Ok(stat) => {
                    let now = model.version();
                    self.edit_doc(&path, |doc| doc.saved(save, stamp(&stat), now));
                }
                // The precondition failed: flagged in the editor, which offers what to do.
                Err(error) if error.status == 409 && save.if_modified_ms.is_some() => {
                    self.edit_doc(&path, Doc::save_refused);
                }
                Err(error) => {
                    self.edit_doc(&path, Doc::save_failed);
                    self.reporter.api(&format!("cannot save {path}"), &error);
                }
            }
        });
    }

    /// Reads an open file again, replacing its text ("Reload from disk").
    pub fn reload(self, path: String) {
        self.spawn(async move {
            match read_text(&self.session(), &path).await {
                Read::Text(text, stat) => {
                    let Some(model) = self.model(&path) else { return };
                    model.set_value(&text);
                    let version = model.version();
                    self.edit_doc(&path, |doc| doc.loaded(stamp(&stat), version));
                }
                Read::Refused(refusal) => {
                    self.detach(&path);
                    self.edit_doc(&path, |doc| doc.phase = Phase::Refused(refusal.message()));
                }
                Read::Failed(error) => {
                    self.reporter.api(&format!("cannot reload {path}"), &error);
                }
            }
        });
    }

    /// Closes an open file (asking first when it has unsaved changes); its neighbour, or
    /// the terminals, take the main area.
    pub fn close(self, path: &str) {
        let Some(doc) = self.docs.with_untracked(|d| d.iter().find(|d| d.path == path).cloned())
        else {
            return;
        };
        if doc.dirty {
            let question = format!("{} has unsaved changes. Close it anyway?", tree::name(path));
            let confirmed =
                leptos::prelude::window().confirm_with_message(&question).unwrap_or(false);
            if !confirmed {
                return;
            }
        }
        let paths: Vec<String> =
            self.docs.with_untracked(|d| d.iter().map(|d| d.path.clone()).collect());
        let index = paths.iter().position(|p| p == path).unwrap_or(0);
        self.docs.update(|docs| docs.retain(|d| d.path != path));
        self.detach(path);
        if self.main.get_untracked() == MainView::File(path.to_owned()) {
            let next =
                paths.get(index + 1).or_else(|| index.checked_sub(1).and_then(|i| paths.get(i)));
            self.main.set(next.map_or(MainView::Terminal, |p| MainView::File(p.clone())));
        }
    }

    /// Stats every open file (ready ones), flagging those changed or deleted on disk.
    pub fn poll(self) {
        let asks: Vec<(String, u64)> = self.docs.with_untracked(|docs| {
            docs.iter()
                .filter(|d| d.phase == Phase::Ready && !d.saving)
                .map(|d| (d.path.clone(), d.generation()))
                .collect()
        });
        for (path, generation) in asks {
            self.spawn(async move {
                let now = match api::stat_file(&self.session(), &path).await {
                    Ok(stat) => Some(stamp(&stat)),
                    Err(error) if error.status == 404 => None,
                    // Anything else (the network, a restart) is not news about the file.
                    Err(_) => return,
                };
                let flips = self.docs.with_untracked(|docs| {
                    docs.iter().any(|d| d.path == path && d.clone().polled(generation, now))
                });
                if flips {
                    self.edit_doc(&path, |doc| doc.polled(generation, now));
                }
            });
        }
    }

    /// Lists `dir` into the tree.
    pub fn list(self, dir: String) {
        self.spawn(async move {
            match api::list_files(&self.session(), &dir).await {
                Ok(list) => {
                    let mut tree = self.tree.get_untracked();
                    if tree.set_listing(&dir, &list.entries) {
                        self.tree.set(tree);
                    }
                    if dir == ROOT {
                        self.tree_error.set(None);
                    }
                }
                // A directory that went away: its parent's next listing forgets it.
                Err(error) if error.status == 404 && dir != ROOT => {}
                Err(error) if dir == ROOT => self.tree_error.set(Some(error.message)),
                Err(error) => self.reporter.api(&format!("cannot list {dir}"), &error),
            }
        });
    }

    /// Lists every directory on screen again.
    pub fn refresh(self) {
        for dir in self.tree.with_untracked(tree::Tree::shown_dirs) {
            self.list(dir);
        }
    }

    /// Opens or closes a directory of the tree (listing it when opened).
    pub fn toggle_dir(self, dir: String) {
        let mut opened = false;
        self.tree.update(|tree| opened = tree.toggle(&dir));
        if opened {
            self.list(dir);
        }
    }

    /// The directory new files and uploads go to: the selected directory, the selected
    /// file's, else the root.
    pub fn target_dir(self) -> String {
        let Some(selected) = self.selected.get_untracked() else { return ROOT.to_owned() };
        let is_dir = self.tree.with_untracked(|t| t.entry(&selected).is_some_and(|e| e.is_dir()));
        if is_dir { selected } else { tree::parent(&selected).to_owned() }
    }

    /// Creates an empty file (then opens it) or a directory named `name` in `dir`.
    pub fn create(self, dir: String, name: String, is_dir: bool) {
        if let Err(why) = tree::check_name(&name) {
            self.reporter.message(format!("cannot create “{name}”: {why}"));
            return;
        }
        let path = tree::join(&dir, &name);
        self.spawn(async move {
            let session = self.session();
            let made = if is_dir {
                api::make_dir(&session, &path).await
            } else {
                // Never over an existing file, even one made a moment ago by someone else.
                api::write_file(&session, &path, JsValue::from_str(""), WriteIf::Absent)
                    .await
                    .map(drop)
            };
            match made {
                Ok(()) => {
                    self.tree.update(|tree| tree.expand(&dir));
                    self.list(dir);
                    self.selected.set(Some(path.clone()));
                    if !is_dir {
                        self.open(path);
                    }
                }
                Err(error) => self.reporter.api(&format!("cannot create {name}"), &error),
            }
        });
    }

    /// Renames `path` to `name` in the same directory; open files below it follow.
    pub fn rename(self, path: String, name: String) {
        if name == tree::name(&path) {
            return;
        }
        if let Err(why) = tree::check_name(&name) {
            self.reporter.message(format!("cannot rename to “{name}”: {why}"));
            return;
        }
        let dir = tree::parent(&path).to_owned();
        let to = tree::join(&dir, &name);
        self.spawn(async move {
            match api::move_path(&self.session(), &path, &to).await {
                Ok(()) => {
                    self.tree.update(|tree| tree.moved(&path, &to));
                    let open: Vec<String> =
                        self.docs.with_untracked(|d| d.iter().map(|d| d.path.clone()).collect());
                    for old in open {
                        if let Some(new) = tree::moved_path(&old, &path, &to) {
                            self.rekey(&old, &new);
                        }
                    }
                    self.selected.set(Some(to));
                    self.list(dir);
                }
                Err(error) => self.reporter.api(&format!("cannot rename {path}"), &error),
            }
        });
    }

    /// Deletes `path` (a directory with everything below it). Open files below it without
    /// unsaved changes close; the others stay, flagged as deleted by the next poll.
    pub fn remove(self, path: String, is_dir: bool) {
        self.spawn(async move {
            match api::remove_path(&self.session(), &path, is_dir).await {
                Ok(()) => {
                    self.tree.update(|tree| tree.forget(&path));
                    let gone: Vec<String> = self.docs.with_untracked(|docs| {
                        docs.iter()
                            .filter(|d| !d.dirty && tree::within(&d.path, &path))
                            .map(|d| d.path.clone())
                            .collect()
                    });
                    for doc in gone {
                        self.close(&doc);
                    }
                    if self.selected.get_untracked().as_deref() == Some(path.as_str()) {
                        self.selected.set(None);
                    }
                    self.list(tree::parent(&path).to_owned());
                }
                Err(error) => self.reporter.api(&format!("cannot delete {path}"), &error),
            }
        });
    }

    /// Uploads files (from a file input) into `dir`, replacing files of the same names.
    pub fn upload(self, dir: String, files: Vec<web_sys::File>) {
        self.spawn(async move {
            for file in files {
                let name = file.name();
                if let Err(why) = tree::check_name(&name) {
                    self.reporter.message(format!("cannot upload “{name}”: {why}"));
                    continue;
                }
                let path = tree::join(&dir, &name);
                if let Err(error) =
                    api::write_file(&self.session(), &path, file.into(), WriteIf::Always).await
                {
                    self.reporter.api(&format!("cannot upload {name}"), &error);
                }
            }
            self.tree.update(|tree| tree.expand(&dir));
            self.list(dir);
        });
    }
}
