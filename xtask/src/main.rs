//! `cargo xtask`: the README's commands (`run`, `test`, `bench`), written in Rust so they
//! need nothing beyond cargo.
//!
//! `flags` parses the command line; each command is one module; `setup` installs what the
//! commands need and is shared by them.

mod bench;
mod flags;
mod fuzz;
mod run;
mod setup;
mod test;
mod web;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use xshell::Shell;

fn main() -> ExitCode {
    // Printed here rather than returned: the chain of causes is what a reader needs, and a
    // `RUST_BACKTRACE=1` backtrace of xtask itself would bury the summary above it.
    match try_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn try_main() -> anyhow::Result<()> {
    let flags = flags::Xtask::parse();
    let sh = Shell::new()?;
    sh.change_dir(project_root()?);
    match flags.command {
        flags::Command::Run { agent: false } => run::run_flint(&sh),
        flags::Command::Run { agent: true } => run::run_agent(&sh),
        flags::Command::Test { phases } => test::run(&sh, &phases),
        flags::Command::Bench => bench::run(&sh),
        flags::Command::Fuzz { target, seconds } => fuzz::run(&sh, target.as_deref(), seconds),
    }
}

/// cargo's target directory: `$CARGO_TARGET_DIR` (relative to the workspace root, where
/// xtask runs cargo) when set, else `target/`.
fn target_dir(sh: &Shell) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => sh.current_dir().join(dir),
        _ => sh.current_dir().join("target"),
    }
}

/// The workspace root: xtask always works from there, wherever cargo was started.
fn project_root() -> anyhow::Result<PathBuf> {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .context("xtask's manifest directory has no parent")
}
