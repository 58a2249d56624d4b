//! A button for what cannot be undone (revoking an agent's token or an invite, removing a
//! person): a first click asks, in place, and only the confirming click acts.

use leptos::prelude::*;

/// `label` (`data-testid=testid`); a click puts `question` in its place with a confirming
/// button (`{testid}-confirm`, reading `label`) and Cancel (`{testid}-cancel`).
#[component]
pub fn ConfirmButton(
    /// What the button says, and the confirming one too.
    label: &'static str,
    /// What is asked before it happens.
    #[prop(into)]
    question: String,
    /// The button's `data-testid`; the confirming and cancelling ones add `-confirm`/`-cancel`.
    testid: &'static str,
    /// The button's tooltip: what happens.
    title: &'static str,
    /// Greys the button out (while the action runs).
    #[prop(optional, into)]
    disabled: Signal<bool>,
    /// The button is quiet (`ghost`) rather than red.
    #[prop(optional)]
    quiet: bool,
    /// What the confirming click does.
    on_confirm: impl Fn() + 'static,
) -> impl IntoView {
    let on_confirm = StoredValue::new_local(on_confirm);
    let asking = RwSignal::new(false);
    let class = if quiet { "button small ghost" } else { "button small danger" };
    move || {
        if asking.get() {
            view! {
                <span class="confirm-ask" data-testid=format!("{testid}-ask")>
                    <span class="confirm-question">{question.clone()}</span>
                    <button
                        class="button small danger"
                        data-testid=format!("{testid}-confirm")
                        on:click=move |_| {
                            asking.set(false);
                            on_confirm.with_value(|act| act());
                        }
                    >
                        {label}
                    </button>
                    <button
                        class="button small"
                        data-testid=format!("{testid}-cancel")
                        on:click=move |_| asking.set(false)
                    >
                        "Cancel"
                    </button>
                </span>
            }
            .into_any()
        } else {
            view! {
                <button
                    class=class
                    data-testid=testid
                    title=title
                    disabled=move || disabled.get()
                    on:click=move |_| asking.set(true)
                >
                    {label}
                </button>
            }
            .into_any()
        }
    }
}
