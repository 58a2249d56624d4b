//! An open file's tab in the workspace's tab bar: its name, a dot while it has unsaved
//! changes, a mark while it changed on disk, and its close button.

use leptos::prelude::*;

use super::{Files, tree};
use crate::workspace::MainView;

/// The tab of the open file at `path`.
#[component]
pub fn FileTab(path: String) -> impl IntoView {
    let files = expect_context::<Files>();
    let path = StoredValue::new(path);
    let is_active =
        move || files.main.with(|m| matches!(m, MainView::File(p) if *p == path.get_value()));
    let doc = Memo::new(move |_| files.doc(&path.get_value()));
    let dirty = move || doc.with(|d| d.as_ref().is_some_and(|d| d.dirty));
    let flagged = move || doc.with(|d| d.as_ref().is_some_and(super::Doc::flagged));
    let active_attr = move || if is_active() { "true" } else { "false" };
    let close = move |event: leptos::ev::MouseEvent| {
        event.stop_propagation();
        files.close(&path.get_value());
    };
    view! {
        <div
            class="tab file-tab"
            class:active=is_active
            class:dirty=dirty
            role="tab"
            aria-selected=active_attr
            data-testid="file-tab"
            data-path=path.get_value()
            data-active=active_attr
            data-dirty=move || if dirty() { "true" } else { "false" }
            title=path.get_value()
            on:click=move |_| files.main.set(MainView::File(path.get_value()))
        >
            <span class="tab-label">{tree::name(&path.get_value()).to_owned()}</span>
            {move || flagged().then(|| view! { <ChangedMark /> })}
            {move || dirty().then(|| view! { <DirtyDot /> })}
            <button
                class="tab-close"
                data-testid="file-tab-close"
                title="Close"
                aria-label="Close file"
                on:click=close
            >
                "×"
            </button>
        </div>
    }
}

/// "Changed on disk".
#[component]
fn ChangedMark() -> impl IntoView {
    view! {
        <span class="changed-mark" data-testid="file-tab-changed" title="Changed on disk">
            "!"
        </span>
    }
}

/// "Unsaved changes".
#[component]
fn DirtyDot() -> impl IntoView {
    view! {
        <span class="dirty-dot" data-testid="file-tab-dirty" title="Unsaved changes">
            "●"
        </span>
    }
}
