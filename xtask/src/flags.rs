//! The command line of `cargo xtask`.

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "xtask", bin_name = "cargo xtask", about = "Flint's development commands")]
pub struct Xtask {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build Flint and start `flint serve` on http://127.0.0.1:8080; prints the login URL.
    Run {
        /// Serve the guest agent alone on a unix socket under target/flint-run/ instead.
        #[arg(long)]
        agent: bool,
    },
    /// Every check CI runs, phase by phase, with a timing table at the end.
    Test {
        /// Run only these phases (always in the canonical order); all of them when none.
        #[arg(value_enum)]
        phases: Vec<Phase>,
    },
    /// Run the benchmarks and merge their figures into target/bench/results.json.
    Bench,
    /// Fuzz the decoders of peers' bytes (cargo-fuzz, nightly), growing fuzz/corpus/.
    Fuzz {
        /// One target (frames, ws_messages, agent_json, preview_host, image_spec); every one
        /// when none.
        target: Option<String>,
        /// How long each target runs.
        #[arg(long, default_value_t = 600)]
        seconds: u64,
    },
}

/// A phase of `cargo xtask test`, declared in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum Phase {
    /// Check (and later install) the tools the other phases need.
    Setup,
    /// `cargo fmt --check`.
    Fmt,
    /// `cargo clippy`, warnings denied.
    Clippy,
    /// Unit tests: every crate's lib and bins.
    Unit,
    /// Integration tests: every crate's `tests/` targets.
    Integration,
    /// End-to-end tests in headless Chromium.
    E2e,
}

impl Phase {
    /// Every phase, in the order they run.
    pub fn all() -> &'static [Phase] {
        Phase::value_variants()
    }

    /// The name on the command line and in the summary table.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Setup => "setup",
            Phase::Fmt => "fmt",
            Phase::Clippy => "clippy",
            Phase::Unit => "unit",
            Phase::Integration => "integration",
            Phase::E2e => "e2e",
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory as _, ValueEnum as _};

    use super::{Phase, Xtask};

    #[test]
    fn command_line_is_consistent() {
        Xtask::command().debug_assert();
    }

    #[test]
    fn phase_names_match_the_command_line() {
        for phase in Phase::all() {
            let parsed = Phase::from_str(phase.name(), false);
            assert_eq!(parsed, Ok(*phase));
        }
    }
}
