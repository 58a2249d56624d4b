//! Closing a terminal tab kills its shell: when the shell is running a command (its
//! integration says `running`), the tab asks first, naming what would be lost.

use leptos::prelude::*;

use super::Workspace;

/// The question, while a tab whose command runs is being closed.
#[component]
pub fn ConfirmClose() -> impl IntoView {
    let workspace = expect_context::<Workspace>();
    let cancel = move |_| workspace.closing.set(None);
    move || {
        workspace.closing.get().map(|id| {
            let confirm = {
                let id = id.clone();
                move |_| {
                    workspace.closing.set(None);
                    workspace.close_terminal(id.clone());
                }
            };
            view! {
                <div class="modal-backdrop" on:click=cancel>
                    <div
                        class="card modal"
                        role="dialog"
                        data-testid="close-terminal-dialog"
                        on:click=|event| event.stop_propagation()
                    >
                        <h2>{format!("Close shell {id}?")}</h2>
                        <p>
                            "A command is still running in it. Closing the tab kills the shell "
                            "and everything it runs."
                        </p>
                        <div class="actions">
                            <button class="button ghost" data-testid="close-terminal-cancel" on:click=cancel>
                                "Keep it"
                            </button>
                            <button
                                class="button danger"
                                data-testid="close-terminal-confirm"
                                on:click=confirm
                            >
                                "Close and kill it"
                            </button>
                        </div>
                    </div>
                </div>
            }
        })
    }
}
