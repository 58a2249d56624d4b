//! The web app (`web/`, Leptos built by Trunk) and its end-to-end suite (`e2e/`,
//! Playwright with Debian's Chromium): their toolchains and builds.
//!
//! Trunk would download wasm-bindgen and wasm-opt from GitHub when they are missing, which
//! fails on our machines: both are pinned in `web/Trunk.toml` and put on `PATH` here (the
//! cargo tools from the cache, `wasm-opt` from npm's `binaryen` in `web/node_modules`), and
//! Trunk runs with `--offline` so a missing tool fails loudly.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use xshell::{Shell, cmd};

use crate::setup::{self, CargoTool};

/// Trunk, the app's bundler (0.22 needs a newer rustc than ours).
const TRUNK: CargoTool = CargoTool { name: "trunk", version: "0.21.14", locked: true };

/// Must equal the `wasm-bindgen` version in `web/Cargo.lock` (checked before each build).
/// `--locked` fails against this registry index, hence unlocked.
const WASM_BINDGEN: CargoTool =
    CargoTool { name: "wasm-bindgen-cli", version: "0.2.130", locked: false };

/// Everything building the app needs: the wasm target, Trunk, wasm-bindgen, the npm
/// packages (xterm.js, binaryen). Returns the `PATH` to build with.
pub fn toolchain(sh: &Shell) -> anyhow::Result<OsString> {
    let installed = cmd!(sh, "rustup target list --installed").quiet().read()?;
    if !installed.lines().any(|target| target.trim() == "wasm32-unknown-unknown") {
        cmd!(sh, "rustup target add wasm32-unknown-unknown").run()?;
    }
    check_wasm_bindgen_pin(sh)?;
    let mut dirs = vec![setup::ensure_cargo_tool(sh, &TRUNK)?];
    dirs.push(setup::ensure_cargo_tool(sh, &WASM_BINDGEN)?);
    npm_ci(sh, Path::new("web"))?;
    dirs.push(sh.current_dir().join("web/node_modules/.bin"));
    let path = std::env::var_os("PATH").unwrap_or_default();
    dirs.extend(std::env::split_paths(&path));
    std::env::join_paths(dirs).context("building PATH")
}

/// Builds `web/dist` (release, optimised).
pub fn build_app(sh: &Shell) -> anyhow::Result<()> {
    let path = toolchain(sh)?;
    eprintln!("web: building the app with Trunk (about a minute from clean)");
    cmd!(sh, "cargo fetch --manifest-path web/Cargo.toml").run()?;
    let _dir = sh.push_dir("web");
    cmd!(sh, "trunk build --release --offline")
        .env("PATH", path)
        .env("TRUNK_SKIP_VERSION_CHECK", "true")
        .run()?;
    Ok(())
}

/// The e2e suite's npm packages (Playwright Test; the browser is Debian's Chromium).
pub fn e2e_toolchain(sh: &Shell) -> anyhow::Result<()> {
    npm_ci(sh, Path::new("e2e"))
}

/// Runs the e2e suite against the debug `flint` and agent with the test image.
pub fn run_e2e(sh: &Shell) -> anyhow::Result<()> {
    in_e2e(sh, "debug", "npx", &["playwright", "test"])
}

/// `ui.create_to_prompt` (click "Create" to a prompt in xterm) and `ui.save_to_shell`
/// (Ctrl+S of a 1 MB file in the editor to the sandbox seeing it), in headless Chromium
/// against the release server; writes `target/bench/ui.json`.
pub fn run_ui_bench(sh: &Shell) -> anyhow::Result<()> {
    // Where `bench` merges figures from and checks servers listed for leftovers.
    let _dir = sh.push_env("FLINT_BENCH_DIR", crate::target_dir(sh).join("bench"));
    in_e2e(sh, "release", "node", &["bench/ui.mjs"])
}

/// Runs `program args` in `e2e/` against the `profile` build of `flint` and the agent.
fn in_e2e(sh: &Shell, profile: &str, program: &str, args: &[&str]) -> anyhow::Result<()> {
    e2e_toolchain(sh)?;
    let binaries = crate::target_dir(sh).join(profile);
    let images = sh.current_dir().join("images");
    let _dir = sh.push_dir("e2e");
    cmd!(sh, "{program} {args...}")
        .env("FLINT_BIN", binaries.join("flint"))
        .env("FLINT_AGENT_BIN", binaries.join("guest-agent"))
        .env("FLINT_IMAGES_DIR", images)
        .run()?;
    Ok(())
}

/// `npm ci` in `dir` unless its `node_modules` was installed from this very lock file (a
/// stamp in `node_modules` records the lock file's contents).
fn npm_ci(sh: &Shell, dir: &Path) -> anyhow::Result<()> {
    let lock = sh.read_file(dir.join("package-lock.json")).with_context(|| {
        format!("{}/package-lock.json is missing: run `npm install` there", dir.display())
    })?;
    let stamp: PathBuf = dir.join("node_modules/.flint-installed-lock");
    if sh.read_file(&stamp).is_ok_and(|installed| installed == lock) {
        return Ok(());
    }
    let _dir = sh.push_dir(dir);
    cmd!(sh, "npm ci --no-audit --no-fund").run()?;
    drop(_dir);
    sh.write_file(&stamp, lock)?;
    Ok(())
}

/// Fails with the fix when `web/Cargo.lock` has another wasm-bindgen than the CLI we install
/// (the app would build, then fail to load).
fn check_wasm_bindgen_pin(sh: &Shell) -> anyhow::Result<()> {
    let lock = sh.read_file("web/Cargo.lock").context("reading web/Cargo.lock")?;
    let locked = locked_version(&lock, "wasm-bindgen")
        .context("web/Cargo.lock has no wasm-bindgen package")?;
    if locked != WASM_BINDGEN.version {
        bail!(
            "web/Cargo.lock has wasm-bindgen {locked} but xtask installs wasm-bindgen-cli {}: \
             pin `wasm-bindgen = \"={}\"` in web/Cargo.toml, or change WASM_BINDGEN in \
             xtask/src/web.rs",
            WASM_BINDGEN.version,
            WASM_BINDGEN.version
        );
    }
    Ok(())
}

/// The version of `package` in a `Cargo.lock` text.
fn locked_version<'a>(lock: &'a str, package: &str) -> Option<&'a str> {
    let name_line = format!("name = \"{package}\"");
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == name_line {
            return lines.next()?.trim().strip_prefix("version = \"")?.strip_suffix('"');
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::locked_version;

    #[test]
    fn reads_a_package_version_from_a_lock_file() {
        let lock = "[[package]]\nname = \"wasm-bindgen-macro\"\nversion = \"0.2.1\"\n\n\
                    [[package]]\nname = \"wasm-bindgen\"\nversion = \"0.2.130\"\n";
        assert_eq!(locked_version(lock, "wasm-bindgen"), Some("0.2.130"));
        assert_eq!(locked_version(lock, "leptos"), None);
    }
}
