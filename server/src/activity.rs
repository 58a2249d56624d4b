//! The activity feed's rules: what an agent's arguments may show (secrets redacted), what a
//! sandbox's report may carry, and revoking a token while its calls are in flight.
//!
//! **Invariant:** every summary that reaches the store went through [`redact`], whether the
//! server wrote it or the sandbox reported it.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

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

/// A command's arguments as the audit log may keep them: each redacted as [`redact`] does,
/// and the value after a secret flag given apart (`--password`, `hunter2`) too. At most
/// [`ARGV_MAX`] arguments are kept, the rest counted.
pub fn redact_argv(argv: &[String]) -> Vec<String> {
    let mut out: Vec<String> = argv.iter().take(ARGV_MAX).map(|arg| redact(arg)).collect();
    for i in 1..out.len() {
        let (flag, value) = (&argv[i - 1], &argv[i]);
        let pair = format!("{flag} {value}");
        let redacted = redact(&pair);
        if redacted != pair
            && let Some(rest) = redacted.strip_prefix(&format!("{flag} "))
            && !rest.contains(value.as_str())
        {
            out[i] = rest.to_owned();
        }
    }
    if argv.len() > ARGV_MAX {
        out.push(format!("… {} more", argv.len() - ARGV_MAX));
    }
    out
}

/// Arguments of one command kept in the audit log.
pub const ARGV_MAX: usize = 64;

/// At most `max` characters, with an ellipsis when cut.
pub fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// The feed's word for `n` reports from inside a sandbox that were not kept, and `why`.
pub fn dropped_report(n: u64, why: &str) -> ToolReport {
    ToolReport {
        tool: "reports_dropped".to_owned(),
        summary: format!("{n} reports from inside the sandbox were dropped: {why}"),
        status: proto::audit::ToolStatus::Error,
        error: None,
        duration_ms: 0,
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

/// Revocation signals of credentials (bearer tokens by id, sign-ins as `web:` and their
/// cookie's hash): a call made with one watches its signal, and ending the credential fires
/// it, cutting the call, its websockets and its MCP streams at once. A fired signal stays
/// fired for [`REVOKED_KEPT`], so a request that authenticated just before the revocation
/// and watches just after it is cut all the same; after that the store refuses the
/// credential itself. Signals nobody watches are forgotten: the map holds only what live
/// calls watch and what was revoked within [`REVOKED_KEPT`].
#[derive(Debug, Default)]
pub struct Revocations {
    inner: Mutex<RevocationsInner>,
}

#[derive(Debug, Default)]
struct RevocationsInner {
    /// Watched signals, weakly: a signal whose watchers are gone is pruned.
    watched: HashMap<String, std::sync::Weak<CancellationToken>>,
    /// Fired signals, kept for [`REVOKED_KEPT`] after they fired.
    revoked: HashMap<String, (Arc<CancellationToken>, Instant)>,
    /// `watched.len()` after the last pruning: the next prunes at twice as many.
    pruned_at: usize,
}

/// How long a fired signal is kept for late watchers (see [`Revocations`]).
pub const REVOKED_KEPT: Duration = Duration::from_secs(60);

impl Revocations {
    /// The signal's name of a sign-in (by its cookie's hash).
    pub fn web_key(web_session: &str) -> String {
        format!("web:{web_session}")
    }

    /// The signal's name of a guest (fired when their invite is revoked or they are removed).
    pub fn guest_key(guest_id: &str) -> String {
        format!("guest:{guest_id}")
    }

    /// The signal's name of a share link (fired when it is revoked).
    pub fn share_key(share_id: &str) -> String {
        format!("share:{share_id}")
    }

    /// The signal of credential `id`, fired when it is (or was, lately) revoked.
    pub fn watch(&self, id: &str) -> Arc<CancellationToken> {
        let mut inner = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        inner.prune();
        if let Some((signal, _)) = inner.revoked.get(id) {
            return signal.clone();
        }
        if let Some(signal) = inner.watched.get(id).and_then(std::sync::Weak::upgrade) {
            return signal;
        }
        let signal = Arc::new(CancellationToken::new());
        inner.watched.insert(id.to_owned(), Arc::downgrade(&signal));
        signal
    }

    /// Fires credential `id`'s signal.
    pub fn revoke(&self, id: &str) {
        let mut inner = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let signal = match inner.watched.remove(id).and_then(|weak| weak.upgrade()) {
            Some(signal) => signal,
            None => Arc::new(CancellationToken::new()),
        };
        signal.cancel();
        inner.revoked.insert(id.to_owned(), (signal, Instant::now()));
        inner.prune();
    }

    /// Signals held: watched ones (not yet pruned) and lately revoked ones.
    pub fn held(&self) -> usize {
        let inner = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        inner.watched.len() + inner.revoked.len()
    }
}

impl RevocationsInner {
    fn prune(&mut self) {
        self.revoked.retain(|_, (_, at)| at.elapsed() < REVOKED_KEPT);
        if self.watched.len() >= (2 * self.pruned_at).max(64) {
            self.watched.retain(|_, weak| weak.strong_count() > 0);
            self.pruned_at = self.watched.len();
        }
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
    fn a_commands_secrets_are_redacted_argument_by_argument() {
        let argv: Vec<String> = [
            "mysql",
            "--password",
            "hunter22",
            "-e",
            "select 1",
            "sh",
            "-c",
            "export TOKEN=abc123secret && make",
        ]
        .map(str::to_owned)
        .to_vec();
        let kept = redact_argv(&argv);
        let text = kept.join(" ");
        assert!(!text.contains("hunter22") && !text.contains("abc123secret"), "{text}");
        assert_eq!(&kept[..2], ["mysql", "--password"]);
        assert_eq!(kept[4], "select 1");
        let many: Vec<String> = (0..100).map(|n| n.to_string()).collect();
        let kept = redact_argv(&many);
        assert_eq!((kept.len(), kept[ARGV_MAX].as_str()), (ARGV_MAX + 1, "… 36 more"));
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

    #[test]
    fn signals_nobody_watches_are_forgotten() {
        let revocations = Revocations::default();
        let kept = revocations.watch("kept");
        for n in 0..1_000 {
            drop(revocations.watch(&format!("t{n}")));
        }
        assert!(revocations.held() <= 128, "{} signals held", revocations.held());
        revocations.revoke("kept");
        assert!(kept.is_cancelled());
        assert!(revocations.watch("kept").is_cancelled(), "a late watcher is cut too");
    }
}
