//! Activity entries in words. An agent's tool call reads as its tool and its arguments; what
//! people and the server did (a session made, an invite revoked, a port made public) is
//! stored with its details as JSON, and reads here as a sentence, never as raw JSON. Pure, so
//! it is tested natively.

use serde_json::{Map, Value};

use crate::clock::span;

/// What a feed row says: a short verb phrase and, below it, the details (may be empty).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Words {
    /// Who, when the stored actor is not it (a guest joining is recorded by the server).
    pub actor: Option<String>,
    /// "run_command", "made an invite link", ...
    pub what: String,
    /// The call's arguments, or the event's details in words.
    pub detail: String,
}

/// `kind` and `summary` of an activity entry, in words.
pub fn describe(kind: &str, summary: &str) -> Words {
    if let Some(tool) = kind.strip_prefix("mcp.") {
        return Words { actor: None, what: tool.to_owned(), detail: summary.to_owned() };
    }
    let fields = match serde_json::from_str::<Value>(summary) {
        Ok(Value::Object(fields)) => fields,
        // Already words (or nothing).
        _ => return Words { actor: None, what: plain(kind), detail: summary.to_owned() },
    };
    let text = |key: &str| fields.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
    let number = |key: &str| fields.get(key).and_then(Value::as_u64);
    let lasting = |key: &str| number(key).map(|s| format!("works for {}", lifetime(s)));
    let port = number("port").map(|p| p.to_string()).unwrap_or_default();
    let (what, detail): (String, String) = match kind {
        "session.create" => {
            let mut parts = vec![format!("image {}", text("image"))];
            parts.extend(
                fields.get("driver").and_then(Value::as_str).map(|d| format!("{d} sandbox")),
            );
            if fields.get("network").and_then(Value::as_bool) == Some(false) {
                parts.push("no network".to_owned());
            }
            if fields.get("warm").and_then(Value::as_bool) == Some(true) {
                parts.push("from the warm pool".to_owned());
            }
            ("started the session".into(), parts.join(" · "))
        }
        "session.delete" => ("destroyed the session".into(), String::new()),
        "session.retention_delete" => {
            ("deleted the stopped session (kept long enough)".into(), String::new())
        }
        "session.failed" => ("the session failed".into(), text("reason")),
        "session.oom_kill" => {
            let kills = number("kills").unwrap_or(1);
            let processes = if kills == 1 { "process" } else { "processes" };
            ("ran out of memory".into(), format!("{kills} {processes} killed"))
        }
        "token.create" => ("made an agent token".into(), quoted(&text("name"))),
        "token.revoke" => ("revoked an agent token".into(), quoted(&text("name"))),
        "invite.create" => {
            let role = text("role");
            let detail = [Some(format!("for {}", with_article(&role))), lasting("expires_s")];
            (
                "made an invite link".into(),
                detail.into_iter().flatten().collect::<Vec<_>>().join(", "),
            )
        }
        "invite.revoke" => {
            let detail = match number("guests") {
                Some(0) | None => "nobody had joined through it".to_owned(),
                Some(1) => "1 person is out".to_owned(),
                Some(n) => format!("{n} people are out"),
            };
            ("revoked an invite link".into(), detail)
        }
        "invite.accept" => {
            let actor = Some(text("name")).filter(|name| !name.is_empty());
            let detail = format!("as {}, through an invite link", with_article(&text("role")));
            return Words { actor, what: "joined".into(), detail };
        }
        "guest.remove" => ("removed a person".into(), String::new()),
        "exec" => {
            let argv = fields.get("argv").and_then(Value::as_array);
            let line = argv.map(|argv| argv.iter().filter_map(Value::as_str).collect::<Vec<_>>());
            ("ran a command".into(), line.map(|l| l.join(" ")).unwrap_or_default())
        }
        "preview.visibility" => {
            let state = if fields.get("public").and_then(Value::as_bool) == Some(true) {
                "public"
            } else {
                "private"
            };
            (format!("made port {port} {state}"), String::new())
        }
        "preview.share" => {
            (format!("made a share link for port {port}"), lasting("expires_s").unwrap_or_default())
        }
        "preview.unshare" => (format!("revoked a share link of port {port}"), String::new()),
        "login" => ("signed in".into(), String::new()),
        _ => (plain(kind), listed(&fields)),
    };
    Words { actor: None, what, detail }
}

/// A kind nobody wrote words for: `browser.navigate` → "browser navigate".
fn plain(kind: &str) -> String {
    kind.replace(['.', '_'], " ")
}

/// Fields as `key: value`, for kinds without words of their own.
fn listed(fields: &Map<String, Value>) -> String {
    let value = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    fields
        .iter()
        .map(|(k, v)| format!("{}: {}", k.replace('_', " "), value(v)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn quoted(name: &str) -> String {
    if name.is_empty() { String::new() } else { format!("“{name}”") }
}

fn with_article(role: &str) -> String {
    match role {
        "" => "a guest".to_owned(),
        role if role.starts_with(['a', 'e', 'i', 'o', 'u']) => format!("an {role}"),
        role => format!("a {role}"),
    }
}

fn lifetime(seconds: u64) -> String {
    match seconds {
        3_600 => "1 hour".to_owned(),
        86_400 => "1 day".to_owned(),
        s if s % 86_400 == 0 => format!("{} days", s / 86_400),
        s => span(i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX)),
    }
}

#[cfg(test)]
mod tests {
    use super::{Words, describe};

    fn words(kind: &str, summary: &str) -> (String, String) {
        let Words { what, detail, .. } = describe(kind, summary);
        (what, detail)
    }

    #[test]
    fn tool_calls_read_as_their_tool_and_arguments() {
        assert_eq!(words("mcp.run_command", "echo hi"), ("run_command".into(), "echo hi".into()));
    }

    #[test]
    fn admin_events_read_as_words_never_json() {
        let cases = [
            ("invite.create", r#"{"invite":"i1","role":"editor","expires_s":3600}"#),
            ("invite.revoke", r#"{"invite":"i1","guests":2}"#),
            ("invite.accept", r#"{"invite":"i1","guest":"g1","name":"Ada","role":"viewer"}"#),
            ("token.create", r#"{"token_id":"t1","name":"claude"}"#),
            ("session.create", r#"{"image":"test","network":true,"driver":"gvisor","warm":false}"#),
            ("preview.visibility", r#"{"port":8000,"public":true}"#),
            ("exec", r#"{"argv":["ls","-la"]}"#),
            ("something.new", r#"{"port":8000,"why":"because"}"#),
        ];
        for (kind, summary) in cases {
            let (what, detail) = words(kind, summary);
            assert!(
                !what.contains(['{', '"']) && !detail.contains(['{', '"']),
                "{kind}: {what} / {detail}"
            );
        }
        assert_eq!(
            words("invite.create", cases[0].1),
            ("made an invite link".into(), "for an editor, works for 1 hour".into())
        );
        let joined = describe("invite.accept", cases[2].1);
        assert_eq!(joined.actor.as_deref(), Some("Ada"), "the guest, not the server, joined");
        assert_eq!(
            (joined.what.as_str(), joined.detail.as_str()),
            ("joined", "as a viewer, through an invite link")
        );
        assert_eq!(words("preview.visibility", cases[5].1).0, "made port 8000 public");
        assert_eq!(
            words("something.new", cases[7].1),
            ("something new".into(), "port: 8000, why: because".into())
        );
    }
}
