//! The Files panel: the tree of `/workspace` (directories open in place, files open in the
//! editor), new file, new folder, upload and refresh above it, and on each row rename,
//! delete (confirmed in the row) and download. The directories on screen are listed again
//! every [`TREE_EVERY`](super::TREE_EVERY) while the panel is shown, so what the shell or
//! an agent makes appears by itself.

use leptos::html::Input;
use leptos::prelude::*;
use std::cell::Cell;
use std::rc::Rc;

use super::tree::{self, ROOT, Row};
use super::{Files, TREE_EVERY};
use crate::workspace::{HidePanel, MainView};

/// A row being edited in place.
#[derive(Clone, Debug, PartialEq)]
enum Editing {
    /// A new file or directory in `dir`: its name is being typed.
    New { dir: String, is_dir: bool },
    /// `path`'s new name is being typed.
    Rename { path: String },
    /// "Delete `path`?" is asked.
    Delete { path: String },
}

/// The panel; `open` hides it, `running` says whether the session runs.
#[component]
pub fn FilesPanel(open: RwSignal<bool>, running: Memo<bool>) -> impl IntoView {
    let files = expect_context::<Files>();
    let editing = RwSignal::new(None::<Editing>);
    let upload_input = NodeRef::<Input>::new();

    // Listed when the session runs, then again while shown.
    Effect::new(move |_| {
        if running.get() {
            files.refresh_or_load();
        }
    });
    let timer = set_interval_with_handle(
        move || {
            if running.try_get_untracked() == Some(true) {
                files.refresh();
            }
        },
        TREE_EVERY,
    );
    on_cleanup(move || {
        if let Ok(handle) = timer {
            handle.clear();
        }
    });

    let new_entry = move |is_dir: bool| {
        let dir = files.target_dir();
        files.tree.update(|tree| tree.expand(&dir));
        files.list(dir.clone());
        editing.set(Some(Editing::New { dir, is_dir }));
    };
    let uploaded = move |_| {
        let Some(input) = upload_input.get_untracked() else { return };
        let Some(list) = input.files() else { return };
        let chosen: Vec<web_sys::File> = (0..list.length()).filter_map(|i| list.get(i)).collect();
        input.set_value("");
        if !chosen.is_empty() {
            files.upload(files.target_dir(), chosen);
        }
    };
    let rows = move || files.tree.with(tree::Tree::rows);
    let new_row = move || match editing.get() {
        Some(Editing::New { dir, is_dir }) if dir == ROOT => {
            Some(view! { <NameInput editing depth=0 initial=String::new() dir is_dir /> })
        }
        _ => None,
    };
    let note = move || {
        let (class, testid, text) = if !running.get() {
            ("muted", "files-idle", "The session is not running.".to_owned())
        } else if let Some(error) = files.tree_error.get() {
            ("error", "files-error", error)
        } else if !files.tree.with(|t| t.is_listed(ROOT)) {
            ("muted", "files-loading", "Loading…".to_owned())
        } else if files.tree.with(|t| t.rows().is_empty()) && editing.with(Option::is_none) {
            ("muted", "files-empty", "/workspace is empty.".to_owned())
        } else {
            return None;
        };
        Some(view! {
            <div class=format!("activity-note {class}") data-testid=testid>
                {text}
            </div>
        })
    };
    let upload = move |_| {
        if let Some(input) = upload_input.get_untracked() {
            input.click();
        }
    };
    let idle = move || !running.get();

    view! {
        <section class="files-panel" data-testid="files-panel">
            <div class="panel-head">
                <span class="panel-title">"Files"</span>
                <span class="spacer"></span>
                <button
                    class="icon-button"
                    class:hidden=!files.can_edit
                    data-testid="files-new-file"
                    title="New file"
                    aria-label="New file"
                    disabled=idle
                    on:click=move |_| new_entry(false)
                >
                    "+"
                </button>
                <button
                    class="icon-button"
                    class:hidden=!files.can_edit
                    data-testid="files-new-folder"
                    title="New folder"
                    aria-label="New folder"
                    disabled=idle
                    on:click=move |_| new_entry(true)
                >
                    "⊞"
                </button>
                <button
                    class="icon-button"
                    class:hidden=!files.can_edit
                    data-testid="files-upload"
                    title="Upload files (replaces files of the same name)"
                    aria-label="Upload files"
                    disabled=idle
                    on:click=upload
                >
                    "⇪"
                </button>
                <input
                    type="file"
                    multiple
                    class="upload-input"
                    node_ref=upload_input
                    data-testid="files-upload-input"
                    on:change=uploaded
                />
                <a
                    class="icon-button"
                    data-testid="files-download-all"
                    title="Download /workspace as a tarball"
                    aria-label="Download /workspace as a tarball"
                    href=files.workspace_tar_url()
                    download="workspace.tar"
                >
                    "⤓"
                </a>
                <button
                    class="icon-button"
                    data-testid="files-refresh"
                    title="Refresh"
                    aria-label="Refresh"
                    disabled=idle
                    on:click=move |_| files.refresh()
                >
                    "⟳"
                </button>
                <HidePanel name="files" open />
            </div>
            <div class="files-tree" data-testid="files-tree" role="tree">
                {new_row}
                <For each=rows key=row_key let:row>
                    <TreeRow row editing />
                </For>
                {note}
            </div>
        </section>
    }
}

/// A row is built anew when what it shows changes: its path, kind, depth or openness.
fn row_key(row: &Row) -> (String, u8, bool, usize) {
    (row.entry.path.clone(), row.entry.kind as u8, row.expanded, row.depth)
}

impl Files {
    /// Lists the root the first time, refreshes afterwards.
    fn refresh_or_load(self) {
        if self.tree.with_untracked(|t| t.is_listed(ROOT)) {
            self.refresh();
        } else {
            self.list(ROOT.to_owned());
        }
    }
}

/// One entry: a directory (click: open or close) or a file (click: open in the editor).
#[component]
fn TreeRow(row: Row, editing: RwSignal<Option<Editing>>) -> impl IntoView {
    let files = expect_context::<Files>();
    let Row { entry, depth, expanded } = row;
    let path = StoredValue::new(entry.path.clone());
    let is_dir = entry.is_dir();
    let indent = format!("padding-left: {}px", 8 + depth * 14);
    let selected = move || files.selected.get().as_deref() == Some(path.get_value().as_str());
    let active =
        move || files.main.with(|m| matches!(m, MainView::File(p) if *p == path.get_value()));
    let click = move |_| {
        let path = path.get_value();
        files.selected.set(Some(path.clone()));
        if is_dir { files.toggle_dir(path) } else { files.open(path) }
    };
    let renaming = move || {
        editing.with(|e| matches!(e, Some(Editing::Rename { path: p }) if *p == path.get_value()))
    };
    let deleting = move || {
        editing.with(|e| matches!(e, Some(Editing::Delete { path: p }) if *p == path.get_value()))
    };
    let new_below = move || match editing.get() {
        Some(Editing::New { dir, is_dir }) if dir == path.get_value() => {
            Some(view! { <NameInput editing depth=depth + 1 initial=String::new() dir is_dir /> })
        }
        _ => None,
    };
    let icon = if is_dir { if expanded { "▾" } else { "▸" } } else { "" };
    let name = entry.name.clone();
    let kind = if is_dir { "dir" } else { "file" };
    let download = (!is_dir).then(|| {
        let url = files.download_url(&entry.path);
        view! {
            <a
                class="icon-button"
                data-testid="file-download"
                title="Download"
                aria-label="Download"
                href=url
                download=name.clone()
                on:click=|e| e.stop_propagation()
            >
                "⤓"
            </a>
        }
    });
    // A row button's click: that row is edited in place (the row itself is not clicked).
    let ask = move |what: Editing| {
        move |event: leptos::ev::MouseEvent| {
            event.stop_propagation();
            editing.set(Some(what.clone()));
        }
    };
    let body = move || {
        if renaming() {
            let dir = tree::parent(&path.get_value()).to_owned();
            let initial = tree::name(&path.get_value()).to_owned();
            return view! { <NameInput editing depth initial dir is_dir /> }.into_any();
        }
        if deleting() {
            let what = if is_dir {
                format!("Delete {} and everything in it?", entry.name)
            } else {
                format!("Delete {}?", entry.name)
            };
            let confirm = move |_| {
                editing.set(None);
                files.remove(path.get_value(), is_dir);
            };
            return view! {
                <div class="file-row confirm" style=indent.clone() data-testid="file-delete-ask">
                    <span class="file-confirm-text">{what}</span>
                    <button
                        class="button small danger"
                        data-testid="file-delete-confirm"
                        on:click=confirm
                    >
                        "Delete"
                    </button>
                    <button
                        class="button small"
                        data-testid="file-delete-cancel"
                        on:click=move |_| editing.set(None)
                    >
                        "Cancel"
                    </button>
                </div>
            }
            .into_any();
        }
        view! {
            <div
                class="file-row"
                class:selected=selected
                class:active=active
                style=indent.clone()
                role="treeitem"
                data-testid="file-row"
                data-path=path.get_value()
                data-kind=kind
                title=path.get_value()
                on:click=click
            >
                <span class="file-chevron">{icon}</span>
                <span class="file-name" data-testid="file-name">{entry.name.clone()}</span>
                <span class="file-actions">
                    {download.clone()}
                    <button
                        class="icon-button"
                        class:hidden=!files.can_edit
                        data-testid="file-rename"
                        title="Rename"
                        aria-label="Rename"
                        on:click=ask(Editing::Rename { path: path.get_value() })
                    >
                        "✎"
                    </button>
                    <button
                        class="icon-button"
                        class:hidden=!files.can_edit
                        data-testid="file-delete"
                        title="Delete"
                        aria-label="Delete"
                        on:click=ask(Editing::Delete { path: path.get_value() })
                    >
                        <TrashIcon />
                    </button>
                </span>
            </div>
        }
        .into_any()
    };
    view! {
        {body}
        {new_below}
    }
}

/// A bin, drawn (headless browsers and some desktops lack an emoji font).
#[component]
fn TrashIcon() -> impl IntoView {
    view! {
        <svg
            viewBox="0 0 16 16"
            width="12"
            height="12"
            fill="none"
            stroke="currentColor"
            stroke-width="1.4"
            aria-hidden="true"
        >
            <path d="M2.5 4h11M6 4V2.5h4V4M4 4l.8 9.5h6.4L12 4" />
        </svg>
    }
}

/// The name field of a new or renamed entry: Enter does it, Escape (or leaving it) cancels.
#[component]
fn NameInput(
    editing: RwSignal<Option<Editing>>,
    depth: usize,
    initial: String,
    dir: String,
    is_dir: bool,
) -> impl IntoView {
    let files = expect_context::<Files>();
    let input = NodeRef::<Input>::new();
    let renaming = editing.with_untracked(|e| match e {
        Some(Editing::Rename { path }) => Some(path.clone()),
        _ => None,
    });
    let placeholder = match (&renaming, is_dir) {
        (Some(_), _) => "new name",
        (None, true) => "folder name",
        (None, false) => "file name",
    };
    // Enter, then the blur of the input going away: only the first counts.
    let done = Rc::new(Cell::new(false));
    let finish = move |commit: bool| {
        if done.replace(true) {
            return;
        }
        let name = input.get_untracked().map(|i| i.value()).unwrap_or_default();
        editing.set(None);
        if !commit || name.trim().is_empty() {
            return;
        }
        match &renaming {
            Some(path) => files.rename(path.clone(), name.trim().to_owned()),
            None => files.create(dir.clone(), name.trim().to_owned(), is_dir),
        }
    };
    let finish = Rc::new(finish);
    let on_blur = finish.clone();
    Effect::new(move |_| {
        if let Some(input) = input.get() {
            let _ = input.focus();
            input.select();
        }
    });
    let keydown = move |event: leptos::ev::KeyboardEvent| match event.key().as_str() {
        "Enter" => {
            event.prevent_default();
            finish(true);
        }
        "Escape" => finish(false),
        _ => {}
    };
    view! {
        <div class="file-row editing" style=format!("padding-left: {}px", 8 + depth * 14)>
            <input
                type="text"
                class="file-name-input"
                data-testid="file-name-input"
                placeholder=placeholder
                value=initial
                node_ref=input
                on:keydown=keydown
                on:blur=move |_| on_blur(false)
                on:click=|e| e.stop_propagation()
            />
        </div>
    }
}
