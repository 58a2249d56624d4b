//! `cargo xtask fuzz [TARGET] [--seconds N]`: runs the cargo-fuzz targets (every one when
//! none is named) for N seconds each, growing the committed corpus in `fuzz/corpus/<target>/`,
//! then minimises it. Two cargo-fuzz projects: `fuzz/proto` (the wire types: light to
//! build) and `fuzz/server` (the server's own decoders). A crash leaves its input in
//! `fuzz/<project>/artifacts/<target>/` (commit it with the fix: the corpus replay keeps it
//! checked).
//! libFuzzer needs a nightly toolchain; cargo-fuzz is installed when missing.

use anyhow::{Context as _, bail};
use xshell::{Shell, cmd};

/// The targets and their cargo-fuzz project, as `proto::fuzz::TARGETS` and
/// `server::fuzz::TARGETS` name them.
const TARGETS: &[(&str, &str)] = &[
    ("frames", "fuzz/proto"),
    ("ws_messages", "fuzz/proto"),
    ("agent_json", "fuzz/proto"),
    ("preview_host", "fuzz/server"),
    ("image_spec", "fuzz/server"),
];

pub fn run(sh: &Shell, target: Option<&str>, seconds: u64) -> anyhow::Result<()> {
    let names: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
    let targets: Vec<(&str, &str)> = match target {
        Some(name) => match TARGETS.iter().find(|(t, _)| *t == name) {
            Some(found) => vec![*found],
            None => bail!("no fuzz target {name}: the targets are {}", names.join(", ")),
        },
        None => TARGETS.to_vec(),
    };
    if cmd!(sh, "rustup run nightly rustc --version").quiet().ignore_stdout().run().is_err() {
        bail!(
            "fuzzing needs a nightly toolchain (libFuzzer's instrumentation): `rustup toolchain install nightly`"
        );
    }
    if cmd!(sh, "cargo fuzz --version").quiet().ignore_stdout().ignore_stderr().run().is_err() {
        eprintln!("fuzz: installing cargo-fuzz");
        cmd!(sh, "cargo install cargo-fuzz --locked").run().context("installing cargo-fuzz")?;
    }
    let time = format!("-max_total_time={seconds}");
    for (target, dir) in targets {
        let corpus = format!("fuzz/corpus/{target}");
        eprintln!("fuzz: {target} for {seconds} s (corpus {corpus})");
        cmd!(sh, "cargo +nightly fuzz run --fuzz-dir {dir} {target} {corpus} -- {time} -rss_limit_mb=2048 -print_final_stats=1")
            .run()
            .with_context(|| format!("fuzz target {target} failed: see {dir}/artifacts/{target}/"))?;
        cmd!(sh, "cargo +nightly fuzz cmin --fuzz-dir {dir} {target} {corpus}")
            .run()
            .with_context(|| format!("minimising the corpus of {target}"))?;
    }
    Ok(())
}
