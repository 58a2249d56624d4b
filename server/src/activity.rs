//! The activity feed's rules: what an agent's arguments may show (secrets redacted), what a
//! sandbox's report may carry, and revoking a token while its calls are in flight.
//!
//! **Invariant:** every summary that reaches the store went through [`redact`], whether the
//! server wrote it or the sandbox reported it.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use proto::audit::ToolReport;
use regex::Regex;
use tokio_util::sync::CancellationToken;

/// Longest summary or error kept, in characters.
pub const SUMMARY_MAX_CHARS: usize = 500;

/// What a redacted value reads as.
const REDACTED: &str = "[redacted]";

/// Patterns that give a secret away, each with what replaces its match. The first group, when
/// a pattern has one, is kept (the name of the variable or flag).
static RULES: LazyLock<Vec<(Regex, String)>> = LazyLock::new(|| {
    let rules = [
        // `TOKEN=...`, `export GITHUB_TOKEN="..."`, `DB_PASSWORD='...'`, `api_key: ...`
        (
            r#"(?i)\b([a-z0-9_]*(?:token|secret|passw(?:or)?d|passwd|pwd|api_?key|access_?key|private_?key|credentials?|auth)[a-z0-9_]*\s*[=:]\s*)(?:"[^"]*"|'[^']*'|[^\s;&|]+)"#,
            format!("${{1}}{REDACTED}"),
        ),
        // `--password x`, `--token=x`, `-p` is too common to guess at
        (
            r#"(?i)(--?(?:password|passwd|token|secret|api-?key|access-?key|auth)(?:=|\s+))(?:"[^"]*"|'[^']*'|[^\s;&|]+)"#,
            format!("${{1}}{REDACTED}"),
        ),
        // HTTP credentials in a header
        (
            r"(?i)\b((?:authorization|proxy-authorization|x-api-key|x-flint-token|cookie)\s*:\s*)[^\r\n]+?(?:$|\r?\n|\x22|')",
            format!("${{1}}{REDACTED}"),
        ),
        (r"(?i)\b((?:bearer|basic|token)\s+)[a-z0-9._~+/=-]{8,}", format!("${{1}}{REDACTED}")),
        // user:password@ in a URL
        (r"(://)[^/\s:@]+:[^/\s@]+@", format!("${{1}}{REDACTED}@")),
        // well-known token shapes, wherever they stand
        (
            r"\b(?:flint_[0-9a-f]{16,}|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|sk-[A-Za-z0-9_-]{20,}|[sr]k_(?:live|test)_[A-Za-z0-9]{16,}|xox[abprs]-[A-Za-z0-9-]{10,}|AKIA[0-9A-Z]{16}|glpat-[A-Za-z0-9_-]{20,}|AIza[0-9A-Za-z_-]{30,}|npm_[A-Za-z0-9]{30,}|hf_[A-Za-z0-9]{30,}|pypi-[A-Za-z0-9_-]{40,}|ya29\.[A-Za-z0-9_-]{20,})",
            REDACTED.to_owned(),
        ),
        // JSON Web Tokens (a session, an ID token): header and payload are base64url JSON
        (r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*", REDACTED.to_owned()),
        // private keys
        (
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)",
            REDACTED.to_owned(),
        ),
    ];
    rules
        .into_iter()
        .filter_map(|(pattern, replacement)| match Regex::new(pattern) {
            Ok(regex) => Some((regex, replacement)),
            // A typo here is caught by the unit tests below, never by a user.
            Err(e) => {
                tracing::error!("redaction pattern {pattern} does not compile: {e}");
                None
            }
        })
        .collect()
});

/// `text` with secrets replaced by `[redacted]`, on one line, at most [`SUMMARY_MAX_CHARS`].
pub fn redact(text: &str) -> String {
    let mut out = text.to_owned();
    for (regex, replacement) in RULES.iter() {
        if regex.is_match(&out) {
            out = regex.replace_all(&out, replacement.as_str()).into_owned();
        }
    }
    let one_line: String =
        out.chars().map(|c| if c == '\n' || c == '\r' { ' ' } else { c }).collect();
    truncate(&one_line, SUMMARY_MAX_CHARS)
}

/// At most `max` characters, with an ellipsis when cut.
pub fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// A sandbox's report as the store may keep it: the guest's word, redacted again and capped.
pub fn sanitize_report(mut report: ToolReport) -> ToolReport {
    report.tool = truncate(
        &report.tool.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>(),
        64,
    );
    if report.tool.is_empty() {
        report.tool = "unknown".to_owned();
    }
    report.summary = redact(&report.summary);
    report.error = report.error.as_deref().map(redact);
    report
}

/// Revocation signals of bearer tokens: a call made with a token watches its signal, and
/// revoking the token fires it, cutting the call and the token's MCP streams at once. A
/// revoked token's signal stays fired, so a request that authenticated just before the
/// revocation and watches just after it is cut all the same.
#[derive(Debug, Default)]
pub struct Revocations {
    tokens: Mutex<HashMap<String, CancellationToken>>,
}

impl Revocations {
    /// The signal of token `id`, fired when it is (or was) revoked.
    pub fn watch(&self, id: &str) -> CancellationToken {
        let mut tokens = self.tokens.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        tokens.entry(id.to_owned()).or_default().clone()
    }

    /// Fires token `id`'s signal, for good.
    pub fn revoke(&self, id: &str) {
        self.watch(id).cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_compiles() {
        assert_eq!(RULES.len(), 8);
    }

    #[test]
    fn secrets_in_commands_are_redacted() {
        let cases = [
            ("export TOKEN=abc123secret", "abc123secret"),
            ("export GITHUB_TOKEN=\"ghx quoted value\" && make", "ghx quoted value"),
            ("DB_PASSWORD='p@ss w0rd' ./run", "p@ss w0rd"),
            ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG ./deploy", "wJalrXUtnFEMI"),
            ("mysql --password=hunter22 -u root", "hunter22"),
            ("login --token hunter23", "hunter23"),
            ("curl -H 'Authorization: Bearer abcdefghijkl' http://x", "abcdefghijkl"),
            ("curl -H \"X-Api-Key: k3y-value-here\" http://x", "k3y-value-here"),
            ("git clone https://me:s3cr3tpw@example.com/r.git", "s3cr3tpw"),
            ("echo ghp_0123456789abcdefghijABCDEFGHIJ", "ghp_0123456789abcdefghij"),
            ("echo flint_0123456789abcdef0123456789abcdef", "0123456789abcdef0123"),
            ("key=AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
            ("stripe charges --key sk_live_4eC39HqLyjWDarjtT1zdp7dc", "4eC39HqLyjWDarjtT1zdp7dc"),
            (
                "echo //registry.npmjs.org/:_authToken=npm_abcdefghijklmnopqrstuvwxyz0123456789 >> ~/.npmrc",
                "npm_abcdefghij",
            ),
            ("huggingface-cli login hf_abcdefghijklmnopqrstuvwxyzABCDEF", "hf_abcdefghij"),
            (
                "curl http://x/api?jwt=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
                "dozjgNryP4J3",
            ),
        ];
        for (input, secret) in cases {
            let out = redact(input);
            assert!(!out.contains(secret), "{input:?} became {out:?}");
            assert!(out.contains(REDACTED), "{input:?} became {out:?}");
        }
    }

    #[test]
    fn ordinary_commands_are_left_alone() {
        for input in ["echo hi", "ls -la /workspace", "npm run build && npm test", "cat auth.rs"] {
            assert_eq!(redact(input), input);
        }
    }

    #[test]
    fn summaries_are_one_capped_line() {
        let long = "x".repeat(SUMMARY_MAX_CHARS + 10);
        let out = redact(&long);
        assert_eq!(out.chars().count(), SUMMARY_MAX_CHARS + 1);
        assert_eq!(redact("a\nb\r\nc"), "a b  c");
    }

    #[test]
    fn reports_are_redacted_and_named_safely() {
        let report = ToolReport {
            tool: "run_command<script>".to_owned(),
            summary: "PASSWORD=x1y2z3".to_owned(),
            status: proto::audit::ToolStatus::Ok,
            error: Some("token: abcdefghij".to_owned()),
            duration_ms: 3,
        };
        let clean = sanitize_report(report);
        assert_eq!(clean.tool, "run_commandscript");
        assert!(!clean.summary.contains("x1y2z3"));
        assert!(!clean.error.unwrap_or_default().contains("abcdefghij"));
    }

    #[test]
    fn revoking_fires_every_watcher_and_later_watches_too() {
        let revocations = Revocations::default();
        let (a, b) = (revocations.watch("t1"), revocations.watch("t1"));
        let other = revocations.watch("t2");
        revocations.revoke("t1");
        assert!(a.is_cancelled() && b.is_cancelled());
        assert!(revocations.watch("t1").is_cancelled());
        assert!(!other.is_cancelled());
    }
}
