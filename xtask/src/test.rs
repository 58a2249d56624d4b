//! `cargo xtask test`: what CI runs (`.ci/run`), one timed phase after another, with a table
//! of the phases' durations at the end, also when a phase fails.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use xshell::{Shell, cmd};

use crate::flags::Phase;
use crate::{setup, web};

/// libtest threads for integration tests: `None` lets libtest pick (one per core). Set a
/// number when a suite is too heavy to run its tests side by side (sandboxes booting VMs);
/// better still, give that suite its own invocation with `--test-threads=1`.
const INTEGRATION_TEST_THREADS: Option<u32> = None;

/// How a phase ended.
enum Outcome {
    Passed,
    Skipped,
    Failed,
}

struct PhaseRecord {
    phase: Phase,
    outcome: Outcome,
    duration: Duration,
}

/// Runs `only` (every phase when empty) in the canonical order.
pub fn run(sh: &Shell, only: &[Phase]) -> anyhow::Result<()> {
    let phases: Vec<Phase> = Phase::all()
        .iter()
        .copied()
        .filter(|phase| only.is_empty() || only.contains(phase))
        .collect();
    let started = Instant::now();
    let mut records = Vec::new();
    for &phase in &phases {
        eprintln!("\n==> {}", phase.name());
        let phase_started = Instant::now();
        let result = run_phase(sh, phase);
        let outcome = match &result {
            Ok(PhaseEnd::Ran) => Outcome::Passed,
            Ok(PhaseEnd::Skipped) => Outcome::Skipped,
            Err(_) => Outcome::Failed,
        };
        records.push(PhaseRecord { phase, outcome, duration: phase_started.elapsed() });
        if let Err(error) = result {
            eprintln!("\n{}", summary(&records, &phases, started.elapsed()));
            return Err(error.context(format!("phase {} failed", phase.name())));
        }
    }
    eprintln!("\n{}", summary(&records, &phases, started.elapsed()));
    Ok(())
}

enum PhaseEnd {
    Ran,
    /// The phase has nothing to run yet; it printed why.
    Skipped,
}

fn run_phase(sh: &Shell, phase: Phase) -> anyhow::Result<PhaseEnd> {
    match phase {
        Phase::Setup => {
            setup::setup(sh)?;
            web::toolchain(sh)?;
            web::e2e_toolchain(sh)?;
        }
        Phase::Fmt => {
            cmd!(sh, "cargo fmt --all -- --check").run()?;
            // The web app is a workspace of its own.
            cmd!(sh, "cargo fmt --manifest-path web/Cargo.toml --all -- --check").run()?;
        }
        Phase::Clippy => {
            cmd!(sh, "cargo clippy --workspace --all-targets -- -D warnings").run()?;
            let wasm = "wasm32-unknown-unknown";
            cmd!(sh, "cargo clippy --manifest-path web/Cargo.toml --target {wasm} -- -D warnings")
                .run()?;
        }
        Phase::Unit => cmd!(sh, "cargo test --workspace --lib --bins").run()?,
        Phase::Integration => return integration(sh),
        Phase::E2e => {
            web::build_app(sh)?;
            // The debug server reads `web/dist` from disk; the integration phase built it,
            // this makes `cargo xtask test e2e` work alone too.
            cmd!(sh, "cargo build -p server -p guest-agent").run()?;
            web::run_e2e(sh)?;
        }
    }
    Ok(PhaseEnd::Ran)
}

/// Every `tests/` target of the workspace. cargo rejects `--test '*'` when no crate has one,
/// so that case is a skip.
fn integration(sh: &Shell) -> anyhow::Result<PhaseEnd> {
    if !workspace_has_integration_tests(sh)? {
        eprintln!("integration: skipped — no crate has a tests/ target");
        return Ok(PhaseEnd::Skipped);
    }
    let threads = INTEGRATION_TEST_THREADS.map(|n| format!("--test-threads={n}"));
    // The MCP tests' second client (the official Python SDK).
    let python = setup::ensure_mcp_python(sh)?;
    cmd!(sh, "cargo test --workspace --test * -- {threads...}")
        .env_remove("RUST_TEST_THREADS")
        .env("FLINT_MCP_PYTHON", python)
        .run()?;
    Ok(PhaseEnd::Ran)
}

fn workspace_has_integration_tests(sh: &Shell) -> anyhow::Result<bool> {
    let metadata = cmd!(sh, "cargo metadata --no-deps --format-version 1").quiet().read()?;
    let metadata: serde_json::Value =
        serde_json::from_str(&metadata).context("parsing `cargo metadata`")?;
    let Some(packages) = metadata["packages"].as_array() else {
        bail!("`cargo metadata` lists no packages");
    };
    Ok(packages
        .iter()
        .filter_map(|package| package["targets"].as_array())
        .flatten()
        .filter_map(|target| target["kind"].as_array())
        .any(|kinds| kinds.iter().any(|kind| kind == "test")))
}

/// The table printed at the end: one row per selected phase, also those that never ran.
fn summary(records: &[PhaseRecord], phases: &[Phase], total: Duration) -> String {
    let width = phases.iter().map(|phase| phase.name().len()).max().unwrap_or(0).max("total".len());
    let mut out = format!("{:<width$}  {:<7}  {:>8}\n", "phase", "result", "time");
    for &phase in phases {
        let row = match records.iter().find(|record| record.phase == phase) {
            Some(record) => {
                let result = match record.outcome {
                    Outcome::Passed => "ok",
                    Outcome::Skipped => "skipped",
                    Outcome::Failed => "FAILED",
                };
                format!("{:<width$}  {result:<7}  {:>8}", phase.name(), seconds(record.duration))
            }
            None => format!("{:<width$}  {:<7}", phase.name(), "not run"),
        };
        out.push_str(row.trim_end());
        out.push('\n');
    }
    out.push_str(&format!("{:<width$}  {:<7}  {:>8}", "total", "", seconds(total)));
    out
}

fn seconds(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Outcome, PhaseRecord, summary};
    use crate::flags::Phase;

    #[test]
    fn summary_lists_every_selected_phase() {
        let records = [
            PhaseRecord {
                phase: Phase::Fmt,
                outcome: Outcome::Passed,
                duration: Duration::from_millis(1300),
            },
            PhaseRecord {
                phase: Phase::Unit,
                outcome: Outcome::Failed,
                duration: Duration::from_secs(42),
            },
        ];
        let phases = [Phase::Fmt, Phase::Unit, Phase::Integration, Phase::E2e];
        let expected = "\
phase        result       time
fmt          ok           1.3s
unit         FAILED      42.0s
integration  not run
e2e          not run
total                    43.3s";
        assert_eq!(summary(&records, &phases, Duration::from_millis(43_300)), expected);
    }
}
