//! The ticking clock (ages and remaining lifetimes count live) and how durations read.

use std::time::Duration;

use leptos::prelude::*;

/// Now, in Unix ms, updated every second (context).
#[derive(Clone, Copy)]
pub struct Now(pub RwSignal<i64>);

impl Now {
    /// Starts the clock, provided as context.
    pub fn provide() -> Now {
        let now = Now(RwSignal::new(now_ms()));
        provide_context(now);
        if let Ok(handle) = set_interval_with_handle(
            move || {
                now.0.try_set(now_ms());
            },
            Duration::from_secs(1),
        ) {
            on_cleanup(move || handle.clear());
        }
        now
    }

    /// The current time (tracked: re-runs every second).
    pub fn get(self) -> i64 {
        self.0.get()
    }
}

/// The browser's clock in Unix ms.
pub fn now_ms() -> i64 {
    js_sys::Date::now() as i64
}

/// The local time of day of a Unix ms instant: "14:05:09".
pub fn time_of_day(ms: i64) -> String {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64));
    format!("{:02}:{:02}:{:02}", date.get_hours(), date.get_minutes(), date.get_seconds())
}

/// A start duration: "420 ms", "1.4 s", "12 s".
pub fn start_duration(ms: i64) -> String {
    match ms {
        i64::MIN..0 => "–".to_owned(),
        0..1_000 => format!("{ms} ms"),
        1_000..10_000 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => span(ms),
    }
}

/// A span of time, coarse: "5 s", "3 min", "1 h 05 min", "2 d 3 h".
pub fn span(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s} s"),
        60..3_600 => format!("{} min", s / 60),
        3_600..86_400 => format!("{} h {:02} min", s / 3_600, s % 3_600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3_600),
    }
}

/// How long a link may work, as the Share dialog and the Ports panel offer it: label and
/// seconds.
pub const LINK_LIFETIMES: [(&str, u64); 4] =
    [("1 hour", 3600), ("1 day", 86_400), ("7 days", 604_800), ("30 days", 2_592_000)];

/// The lifetime a new link gets unless chosen otherwise: a day, the server's default too.
pub const DEFAULT_LINK_LIFETIME_S: u64 = 86_400;

/// A menu of [`LINK_LIFETIMES`] that sets `lifetime` (seconds); each option reads
/// `{prefix}{label}`.
#[component]
pub fn LifetimeSelect(
    lifetime: RwSignal<u64>,
    testid: String,
    #[prop(optional)] prefix: &'static str,
    #[prop(optional, into)] disabled: Signal<bool>,
) -> impl IntoView {
    view! {
        <select
            data-testid=testid
            title="How long the link works"
            aria-label="How long the link works"
            disabled=move || disabled.get()
            on:change=move |ev| {
                if let Ok(seconds) = event_target_value(&ev).parse() {
                    lifetime.set(seconds);
                }
            }
        >
            {LINK_LIFETIMES
                .iter()
                .map(|(label, seconds)| {
                    view! {
                        <option value=seconds.to_string() selected=*seconds == lifetime.get_untracked()>
                            {format!("{prefix}{label}")}
                        </option>
                    }
                })
                .collect_view()}
        </select>
    }
}

/// A countdown to `deadline_ms`: "59 min 30 s left" style, seconds shown under an hour so
/// it visibly ticks; "expired" once past.
pub fn remaining(deadline_ms: i64, now_ms: i64) -> String {
    let left = deadline_ms - now_ms;
    if left <= 0 {
        return "expired".to_owned();
    }
    let s = left / 1000;
    match s {
        0..60 => format!("{s} s"),
        60..3_600 => format!("{} min {:02} s", s / 60, s % 60),
        _ => span(left),
    }
}

#[cfg(test)]
mod tests {
    use super::{remaining, span, start_duration};

    #[test]
    fn durations_read_naturally() {
        assert_eq!(start_duration(420), "420 ms");
        assert_eq!(start_duration(1_440), "1.4 s");
        assert_eq!(start_duration(12_000), "12 s");
        assert_eq!(span(59_999), "59 s");
        assert_eq!(span(3 * 60_000), "3 min");
        assert_eq!(span(3_900_000), "1 h 05 min");
        assert_eq!(span(2 * 86_400_000 + 3 * 3_600_000), "2 d 3 h");
        assert_eq!(remaining(10_000, 0), "10 s");
        assert_eq!(remaining(3_570_000, 0), "59 min 30 s");
        assert_eq!(remaining(7_200_000, 0), "2 h 00 min");
        assert_eq!(remaining(0, 5), "expired");
    }
}
