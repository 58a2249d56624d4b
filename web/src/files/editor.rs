//! The editor in the main area: one Monaco editor showing the active file's model (each
//! open file keeps its own, with its undo stack, cursor and scroll), a bar with the path,
//! the save state, Save and Download, and the notes that replace or flag the text: loading,
//! refused (too large, binary: download instead), changed or deleted on disk ("Reload from
//! disk" or "Overwrite").

use leptos::html::Div;
use leptos::prelude::*;

use super::{Disk, Files, POLL_EVERY, Phase, monaco, tree};

/// The editor area; hidden unless the main area shows a file.
#[component]
pub fn EditorArea() -> impl IntoView {
    let files = expect_context::<Files>();
    let host = NodeRef::<Div>::new();
    let editor = StoredValue::new_local(None::<monaco::Editor>);
    // The file and model the editor shows (a file closed and opened again has a new model).
    let showing = StoredValue::new_local(None::<(String, monaco::Model)>);
    let active = Memo::new(move |_| files.active());
    let doc = Memo::new(move |_| active.get().and_then(|path| files.doc(&path)));
    let ready =
        Memo::new(move |_| doc.with(|d| d.as_ref().is_some_and(|d| d.phase == Phase::Ready)));

    // The active file's model into the editor (made on first use), cursor and scroll back.
    Effect::new(move |_| {
        let path = active.get();
        let is_ready = ready.get();
        let Some(element) = host.get() else { return };
        let Some(path) = path.filter(|_| is_ready) else { return };
        let Some(model) = files.model(&path) else { return };
        let same = showing.with_value(|s| s.as_ref().is_some_and(|(_, m)| **m == *model));
        if same {
            // Renamed: the same model under its new path.
            showing.set_value(Some((path, model)));
            return;
        }
        let shown = editor.with_value(Clone::clone).unwrap_or_else(|| {
            let made = monaco::editor(&element, !files.can_edit);
            editor.set_value(Some(made.clone()));
            made
        });
        if let Some((old, _)) = showing.get_value() {
            files.keep_view_state(&old, shown.save_view_state());
        }
        shown.set_model(&model);
        let state = files.view_state(&path);
        if !state.is_undefined() {
            shown.restore_view_state(&state);
        }
        showing.set_value(Some((path, model)));
        request_animation_frame(move || shown.focus());
    });
    on_cleanup(move || {
        if let Some(editor) = editor.try_update_value(Option::take).flatten() {
            editor.dispose();
        }
    });

    // Open files are stat'ed while the editor is shown.
    let poll = set_interval_with_handle(
        move || {
            if files.main.try_get_untracked().is_some_and(|m| matches!(m, super::MainView::File(_)))
            {
                files.poll();
            }
        },
        POLL_EVERY,
    );
    on_cleanup(move || {
        if let Ok(handle) = poll {
            handle.clear();
        }
    });
    // Shown again: look at once.
    Effect::new(move |_| {
        if active.get().is_some() {
            files.poll();
        }
    });

    let path = move || active.get().unwrap_or_default();
    let status = move || {
        doc.with(|d| match d {
            // A viewer saves nothing: "read-only" says it all.
            _ if !files.can_edit => ("", ""),
            Some(d) if d.saving => ("saving", "Saving…"),
            Some(d) if d.dirty => ("dirty", "Unsaved changes"),
            Some(d) if d.phase == Phase::Ready => ("saved", "Saved"),
            _ => ("", ""),
        })
    };
    let save = move |_| {
        if let Some(path) = active.get_untracked() {
            files.save(path, false);
        }
    };

    view! {
        <div
            class="editor-area"
            class:hidden=move || active.get().is_none()
            data-testid="editor-area"
        >
            <div class="editor-bar">
                <span class="editor-path mono" data-testid="editor-path" title=path>
                    {path}
                </span>
                <span
                    class=move || format!("editor-status {}", status().0)
                    data-testid="editor-status"
                    data-state=move || status().0
                >
                    {move || status().1}
                </span>
                <span class="spacer"></span>
                {(!files.can_edit)
                    .then(|| {
                        view! {
                            <span class="editor-status" data-testid="editor-read-only">
                                "read-only"
                            </span>
                        }
                    })}
                <button
                    class="button small"
                    class:hidden=!files.can_edit
                    data-testid="editor-save"
                    title="Save (Ctrl+S)"
                    disabled=move || !ready.get()
                    on:click=save
                >
                    "Save"
                </button>
                <a
                    class="button small ghost"
                    data-testid="editor-download"
                    href=move || files.download_url(&path())
                    download=move || tree::name(&path()).to_owned()
                >
                    "Download"
                </a>
            </div>
            <ConflictBar doc />
            <Note doc />
            <div
                class="editor-host"
                class:hidden=move || !ready.get()
                node_ref=host
                data-testid="editor"
            ></div>
        </div>
    }
}

/// "Changed on disk": what happened, and what to do about it.
#[component]
fn ConflictBar(doc: Memo<Option<super::Doc>>) -> impl IntoView {
    let files = expect_context::<Files>();
    move || {
        let doc = doc.get()?;
        if doc.phase != Phase::Ready || !doc.flagged() {
            return None;
        }
        let name = tree::name(&doc.path).to_owned();
        let (text, deleted) = match &doc.disk {
            Disk::Deleted => (format!("{name} was deleted on disk."), true),
            Disk::Changed(how) => (format!("{name} changed on disk ({how})."), false),
            Disk::InSync => return None,
        };
        let unsaved = if doc.dirty { " Your unsaved changes are still here." } else { "" };
        let (reload_path, overwrite_path) = (doc.path.clone(), doc.path.clone());
        let overwrite = if deleted { "Save again" } else { "Overwrite" };
        Some(view! {
            <div
                class="editor-conflict"
                role="alert"
                data-testid="editor-conflict"
                data-disk=if deleted { "deleted" } else { "changed" }
            >
                <span class="error-icon">"!"</span>
                <span class="conflict-text">{text}{unsaved}</span>
                {(!deleted).then(|| view! {
                    <button
                        class="button small primary"
                        data-testid="editor-reload"
                        title="Replace the text here with the file on disk"
                        on:click=move |_| files.reload(reload_path.clone())
                    >
                        "Reload from disk"
                    </button>
                })}
                <button
                    class="button small danger"
                    class:hidden=!files.can_edit
                    data-testid="editor-overwrite"
                    title="Write the text here over the file on disk"
                    on:click=move |_| files.save(overwrite_path.clone(), true)
                >
                    {overwrite}
                </button>
            </div>
        })
    }
}

/// What shows instead of the text: loading, refused (with a download link), failed.
#[component]
fn Note(doc: Memo<Option<super::Doc>>) -> impl IntoView {
    let files = expect_context::<Files>();
    move || {
        let doc = doc.get()?;
        let download = {
            let url = files.download_url(&doc.path);
            let name = tree::name(&doc.path).to_owned();
            move || {
                view! {
                    <a
                        class="button small primary"
                        data-testid="editor-refused-download"
                        href=url
                        download=name
                    >
                        "Download"
                    </a>
                }
            }
        };
        match doc.phase {
            Phase::Ready => None,
            Phase::Loading => Some(
                view! {
                    <div class="term-message" data-testid="editor-loading">
                        <span class="spinner"></span>
                        <span>"Opening…"</span>
                    </div>
                }
                .into_any(),
            ),
            Phase::Refused(why) => Some(
                view! {
                    <div class="term-message" data-testid="editor-refused">
                        <span class="refused-text">{why}</span>
                        {download()}
                    </div>
                }
                .into_any(),
            ),
            Phase::Failed(why) => Some(
                view! {
                    <div class="term-message" data-testid="editor-failed">
                        <span class="refused-text">{format!("Cannot open this file: {why}")}</span>
                        <button class="button small" on:click=move |_| files.close(&doc.path)>
                            "Close"
                        </button>
                    </div>
                }
                .into_any(),
            ),
        }
    }
}
