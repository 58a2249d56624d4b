//! The "new session" dialog: image, size, optional name, internet access, with progress while the sandbox
//! starts (`POST /api/sessions` answers once it runs).

use leptos::prelude::*;
use leptos::task::spawn_local;
use proto::api::{CreateSession, ImageInfo, SessionState};

use crate::api;
use crate::clock::{Now, now_ms, span};
use crate::events::SessionStore;
use crate::notice::use_reporter;

/// The image chosen until the server's list arrives (sessions get it when they name none).
const DEFAULT_IMAGE: &str = "default";

/// An image's line in the menu: its name, what is in it, and what choosing it means.
fn image_label(image: &ImageInfo) -> String {
    let mut label = image.name.clone();
    if let Some(description) = &image.description {
        label = format!("{label}: {description}");
    }
    if image.error.is_some() {
        label.push_str(" (invalid spec)");
    } else if !image.built {
        label.push_str(" (not built yet)");
    }
    label
}

/// What to say under the menu about the chosen image: why it cannot start, or that its first
/// session builds it.
fn image_note(images: &[ImageInfo], chosen: &str) -> Option<(bool, String)> {
    let image = images.iter().find(|i| i.name == chosen)?;
    match &image.error {
        Some(error) => Some((true, format!("This image cannot start: {error}"))),
        None if !image.built => Some((
            false,
            "Not built yet: the first session builds it, which takes a minute or two.".to_owned(),
        )),
        None => None,
    }
}

/// A size choice: name, label, CPUs, memory and disk in MiB.
struct Size {
    name: &'static str,
    label: &'static str,
    cpus: f64,
    memory_mb: u32,
    disk_mb: u32,
}

const SIZES: [Size; 3] = [
    Size {
        name: "small",
        label: "small: 0.5 CPU, 512 MiB",
        cpus: 0.5,
        memory_mb: 512,
        disk_mb: 2048,
    },
    Size {
        name: "medium",
        label: "medium: 1 CPU, 1 GiB",
        cpus: 1.0,
        memory_mb: 1024,
        disk_mb: 4096,
    },
    Size {
        name: "large",
        label: "large: 2 CPUs, 4 GiB",
        cpus: 2.0,
        memory_mb: 4096,
        disk_mb: 8192,
    },
];

/// What the form sends.
fn request(image: &str, size: &str, name: &str, network: bool) -> CreateSession {
    let size = SIZES.iter().find(|s| s.name == size).unwrap_or(&SIZES[1]);
    let name = name.trim();
    CreateSession {
        image: Some(image.to_owned()),
        name: (!name.is_empty()).then(|| name.to_owned()),
        cpus: Some(size.cpus),
        memory_mb: Some(size.memory_mb),
        disk_mb: Some(size.disk_mb),
        lifetime_s: None,
        network: Some(network),
        driver: None,
        env: None,
    }
}

/// The dialog; `open` shows it, `created` gets the new session's id.
#[component]
pub fn CreateDialog(open: RwSignal<bool>, created: WriteSignal<Option<String>>) -> impl IntoView {
    let store = expect_context::<SessionStore>();
    let reporter = use_reporter();
    let now = expect_context::<Now>();
    let image = RwSignal::new(DEFAULT_IMAGE.to_owned());
    // The server's images, asked for each time the dialog opens (a spec may have been added
    // or built since); `Err` says why they could not be listed.
    let images = RwSignal::new(None::<Result<Vec<ImageInfo>, String>>);
    Effect::new(move |_| {
        if !open.get() {
            return;
        }
        spawn_local(async move {
            let listed = api::images().await;
            if let Ok(list) = &listed {
                let chosen = image.get_untracked();
                let usable = |i: &&ImageInfo| i.error.is_none();
                if !list.iter().filter(usable).any(|i| i.name == chosen) {
                    let default = list.iter().filter(usable).find(|i| i.default);
                    if let Some(first) = default.or_else(|| list.iter().find(usable)) {
                        image.set(first.name.clone());
                    }
                }
            }
            images.set(Some(listed.map_err(|e| e.to_string())));
        });
    });
    let note = move || {
        let chosen = image.get();
        let (error, text) = images.with(|listed| match listed {
            Some(Ok(list)) => image_note(list, &chosen),
            Some(Err(error)) => Some((true, format!("cannot list the images: {error}"))),
            None => None,
        })?;
        let class = if error { "field-note error" } else { "field-note muted" };
        Some(view! { <div class=class data-testid="create-image-note">{text}</div> })
    };
    let unusable = move || {
        images.with(|listed| {
            listed
                .as_ref()
                .and_then(|l| l.as_ref().ok())
                .is_some_and(|list| image_note(list, &image.get()).is_some_and(|(error, _)| error))
        })
    };
    let size = RwSignal::new(SIZES[1].name.to_owned());
    let name = RwSignal::new(String::new());
    let network = RwSignal::new(true);
    // When the pending request started.
    let pending = RwSignal::new(None::<i64>);

    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        if pending.get_untracked().is_some() {
            return;
        }
        let body = request(
            &image.get_untracked(),
            &size.get_untracked(),
            &name.get_untracked(),
            network.get_untracked(),
        );
        pending.set(Some(now_ms()));
        spawn_local(async move {
            let result = api::create_session(&body).await;
            pending.set(None);
            match result {
                Ok(session) => {
                    if session.state == SessionState::Failed {
                        let reason = session.reason.clone().unwrap_or_default();
                        reporter.message(format!("the session failed to start: {reason}"));
                    }
                    created.set(Some(session.id.clone()));
                    store.upsert(session);
                    name.set(String::new());
                    open.set(false);
                }
                Err(error) => reporter.api("cannot create the session", &error),
            }
        });
    };
    let close = move |_| {
        if pending.get_untracked().is_none() {
            open.set(false);
        }
    };
    let busy = move || pending.get().is_some();
    let progress = move || {
        pending.get().map(|started| {
            let elapsed = span((now.get() - started).max(0));
            view! {
                <div class="progress-line">
                    <span class="spinner"></span>
                    {format!("Starting the sandbox… {elapsed}")}
                    <span class="muted">
                        " (an image's first use builds it, which can take a minute or two)"
                    </span>
                </div>
            }
        })
    };

    move || {
        open.get().then(|| {
            view! {
                <div class="modal-backdrop" on:click=close>
                    <form
                        class="card modal"
                        on:submit=submit
                        on:click=|event| event.stop_propagation()
                    >
                        <h2>"New session"</h2>
                        <label class="field">
                            <span>"Image"</span>
                            <select
                                data-testid="create-image"
                                prop:value=move || image.get()
                                on:change=move |ev| image.set(event_target_value(&ev))
                                disabled=busy
                            >
                                {move || match images.get() {
                                    Some(Ok(list)) => {
                                        list.iter()
                                            .map(|i| {
                                                view! {
                                                    <option
                                                        value=i.name.clone()
                                                        selected=i.name == image.get_untracked()
                                                    >
                                                        {image_label(i)}
                                                    </option>
                                                }
                                            })
                                            .collect_view()
                                            .into_any()
                                    }
                                    // Not listed (yet): the default is what the server
                                    // gives anyway.
                                    _ => {
                                        view! {
                                            <option value=DEFAULT_IMAGE selected=true>
                                                {DEFAULT_IMAGE}
                                            </option>
                                        }
                                            .into_any()
                                    }
                                }}
                            </select>
                            {note}
                        </label>
                        <label class="field">
                            <span>"Size"</span>
                            <select
                                data-testid="create-size"
                                prop:value=move || size.get()
                                on:change=move |ev| size.set(event_target_value(&ev))
                                disabled=busy
                            >
                                {SIZES
                                    .iter()
                                    .map(|s| view! { <option value=s.name>{s.label}</option> })
                                    .collect_view()}
                            </select>
                        </label>
                        <label class="field">
                            <span>"Name " <span class="muted">"(optional)"</span></span>
                            <input
                                data-testid="create-name"
                                type="text"
                                maxlength="64"
                                placeholder="e.g. my-experiment"
                                prop:value=move || name.get()
                                on:input=move |ev| name.set(event_target_value(&ev))
                                disabled=busy
                            />
                        </label>
                        <label class="check">
                            <input
                                data-testid="create-network"
                                type="checkbox"
                                prop:checked=move || network.get()
                                on:change=move |ev| network.set(event_target_checked(&ev))
                                disabled=busy
                            />
                            <span>
                                "Internet access "
                                <span class="muted">
                                    "(never to this host, private networks or other sessions)"
                                </span>
                            </span>
                        </label>
                        {progress}
                        <div class="actions">
                            <button type="button" class="button ghost" on:click=close disabled=busy>
                                "Cancel"
                            </button>
                            <button
                                type="submit"
                                class="button primary"
                                data-testid="create-submit"
                                disabled=move || busy() || unusable()
                            >
                                {move || if busy() { "Creating…" } else { "Create" }}
                            </button>
                        </div>
                    </form>
                </div>
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{ImageInfo, image_label, image_note, request};

    fn image(name: &str, built: bool, error: Option<&str>) -> ImageInfo {
        ImageInfo {
            name: name.to_owned(),
            description: Some("what is in it".to_owned()),
            default: name == "default",
            built,
            error: error.map(str::to_owned),
        }
    }

    #[test]
    fn images_say_whether_they_start_at_once_need_building_or_cannot_start() {
        let list = [
            image("default", true, None),
            image("big", false, None),
            image("bad", false, Some("no suite")),
        ];
        assert_eq!(image_label(&list[0]), "default: what is in it");
        assert_eq!(image_label(&list[1]), "big: what is in it (not built yet)");
        assert_eq!(image_label(&list[2]), "bad: what is in it (invalid spec)");
        assert_eq!(image_note(&list, "default"), None);
        assert!(
            image_note(&list, "big")
                .is_some_and(|(error, text)| !error && text.contains("builds it"))
        );
        assert!(
            image_note(&list, "bad")
                .is_some_and(|(error, text)| error && text.contains("no suite"))
        );
        assert_eq!(image_note(&list, "unknown"), None);
    }

    #[test]
    fn the_form_maps_to_a_create_request() {
        let body = request("test", "small", "  demo ", true);
        assert_eq!(body.image.as_deref(), Some("test"));
        assert_eq!(body.name.as_deref(), Some("demo"));
        assert_eq!((body.cpus, body.memory_mb), (Some(0.5), Some(512)));
        assert_eq!(body.network, Some(true));
        let body = request("default", "unknown", "", false);
        assert_eq!((body.name, body.memory_mb), (None, Some(1024)));
        assert_eq!(body.network, Some(false));
    }
}
