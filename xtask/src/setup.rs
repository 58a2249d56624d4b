//! Installs what the commands need, skipping what is already there.
//!
//! Three kinds of prerequisites, each with one helper: Debian packages (`apt-get`), cargo
//! tools (`cargo install` into the cache, one directory per tool and version) and npm
//! packages (`web::npm_ci`, from each directory's lock file). Flint needs commands already on
//! a Debian machine with rustup and Node.js, plus the Debian packages in `DEBIAN_PACKAGES`;
//! `web.rs` names the web app's tools.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context as _, bail};
use xshell::{Shell, cmd};

/// Commands that must already be on PATH, with how to get each.
const REQUIRED_COMMANDS: &[(&str, &str)] = &[
    ("cargo", "install Rust with rustup (https://rustup.rs)"),
    ("rustc", "install Rust with rustup (https://rustup.rs)"),
    ("rustfmt", "run `rustup component add rustfmt`"),
    ("cargo-clippy", "run `rustup component add clippy`"),
    // The guest agent's tests drive real shells and terminals.
    ("bash", "run `apt-get install bash`"),
    ("stty", "run `apt-get install coreutils`"),
    ("python3", "run `apt-get install python3`"),
    // The web app's npm packages (xterm.js, binaryen's wasm-opt) and the e2e suite.
    ("node", "install Node.js 20 or later (https://nodejs.org, or `apt-get install nodejs`)"),
    ("npm", "install npm (it comes with Node.js; on Debian `apt-get install npm`)"),
    // `flint image build` runs mmdebstrap in a mount namespace of its own.
    ("unshare", "run `apt-get install util-linux`"),
    // The `process` driver detaches sandboxes from the server with it.
    ("setsid", "run `apt-get install util-linux`"),
    // Sessions' volumes (the disk cap) are loop-mounted ext4 images.
    ("mount", "run `apt-get install mount`"),
    // The MCP stdio test runs `guest-agent mcp` inside a sandbox's namespaces.
    ("nsenter", "run `apt-get install util-linux`"),
];

/// The Python packages of the MCP tests' second client, pinned.
const MCP_REQUIREMENTS: &str = "server/tests/server/mcp-requirements.txt";

/// Debian packages the commands need (installed by `ensure_debian_packages`).
const DEBIAN_PACKAGES: &[&str] = &[
    // `flint image build` (and the image tests) build root filesystems with it.
    "mmdebstrap",
    // The `process` sandbox driver: namespaces around the guest agent.
    "bubblewrap",
    // Sessions' volumes (the disk cap): `mkfs.ext4` makes an ext4 image per session.
    "e2fsprogs",
    // Sandbox networking: namespaces, veths and routes (`ip`), Flint's own table (`nft`).
    "iproute2",
    "nftables",
    // The networking tests' fake DNS server, in the test uplink namespace.
    "dnsmasq-base",
    // The e2e suite, the UI benchmark and the agent's shared-browser tests drive Debian's
    // Chromium (Playwright's own browser download does not work here).
    "chromium",
];

/// Everything the commands need, installed or checked.
pub fn setup(sh: &Shell) -> anyhow::Result<()> {
    check_commands(REQUIRED_COMMANDS)?;
    let names: Vec<&str> = REQUIRED_COMMANDS.iter().map(|(name, _)| *name).collect();
    eprintln!("setup: found {}", names.join(", "));
    ensure_debian_packages(sh, DEBIAN_PACKAGES)?;
    ensure_runsc(sh)?;
    let python = ensure_mcp_python(sh)?;
    eprintln!("setup: MCP Python client in {}", python.display());
    Ok(())
}

/// A Python with the official MCP SDK (`MCP_REQUIREMENTS`), in a virtual environment in the
/// cache keyed by the requirements' content; made once.
pub fn ensure_mcp_python(sh: &Shell) -> anyhow::Result<PathBuf> {
    let requirements = sh.read_file(MCP_REQUIREMENTS)?;
    let key = requirements_key(&requirements);
    let venv = cache_dir()?.join("tools").join(format!("python-mcp-{key}"));
    let python = venv.join("bin/python");
    let stamp = venv.join(".installed");
    if stamp.exists() && python.exists() {
        return Ok(python);
    }
    let _ = std::fs::remove_dir_all(&venv);
    eprintln!("setup: installing the MCP Python SDK into {}", venv.display());
    cmd!(sh, "python3 -m venv {venv}").run()?;
    cmd!(sh, "{python} -m pip install --quiet --disable-pip-version-check -r {MCP_REQUIREMENTS}")
        .run()?;
    sh.write_file(&stamp, &requirements)?;
    Ok(python)
}

/// A short, stable name for a requirements file's content (FNV-1a, hex).
fn requirements_key(text: &str) -> String {
    let hash = text
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    format!("{hash:016x}")[..12].to_owned()
}

/// Where downloads and installed tools live: `$FLINT_CACHE_DIR`, else `~/.cache/flint`;
/// outside the repository so that a `git clean` or a fresh checkout keeps them.
pub fn cache_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("FLINT_CACHE_DIR").filter(|dir| !dir.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let home = std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .context("neither FLINT_CACHE_DIR nor HOME is set: cannot place the cache")?;
    Ok(Path::new(&home).join(".cache").join("flint"))
}

/// Fails, naming every missing command and how to get it, unless all are on PATH.
fn check_commands(commands: &[(&str, &str)]) -> anyhow::Result<()> {
    let missing: Vec<String> = commands
        .iter()
        .filter(|(name, _)| find_on_path(name).is_none())
        .map(|(name, how)| format!("  {name}: {how}"))
        .collect();
    if !missing.is_empty() {
        bail!("missing commands, not found on PATH:\n{}", missing.join("\n"));
    }
    Ok(())
}

/// The first executable file called `name` in a directory of `$PATH`.
fn find_on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;

    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|candidate| {
        candidate
            .metadata()
            .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
    })
}

/// Installs the Debian packages of `packages` that are not installed yet: `apt-get update`
/// (at most once per run), then one `apt-get install` of the missing ones.
pub fn ensure_debian_packages(sh: &Shell, packages: &[&str]) -> anyhow::Result<()> {
    static APT_UPDATED: AtomicBool = AtomicBool::new(false);

    let status_format = "${Status}";
    let mut missing = Vec::new();
    for &package in packages {
        let status = cmd!(sh, "dpkg-query --show -f {status_format} {package}")
            .quiet()
            .ignore_status()
            .ignore_stderr()
            .read()
            .context("running dpkg-query (is this Debian?)")?;
        if status.trim() != "install ok installed" {
            missing.push(package);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    if !running_as_root(sh)? {
        bail!("missing Debian packages {}: install them as root", missing.join(" "));
    }
    if !APT_UPDATED.swap(true, Ordering::SeqCst) {
        cmd!(sh, "apt-get update").run()?;
    }
    cmd!(sh, "apt-get install --yes --no-install-recommends {missing...}")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .run()?;
    Ok(())
}

/// The gVisor release sessions run on (`runsc --version`), pinned. bookworm's runsc
/// (20221219) gives no real terminal: its pty line discipline ignores Ctrl-C and Ctrl-Z,
/// refuses `tcsetattr(TCSAFLUSH)` (`top` dies) and leaves `npm` hanging at exit. Debian's
/// trixie build of 20240729 fixes all three and installs on bookworm (a static binary, no
/// dependencies); it is the newest gVisor in Debian. ARCHITECTURE.md has the measurements.
pub const RUNSC_VERSION: &str = "0.0~20240729.0";

/// Where the pinned runsc comes from: Debian's own archive, the suite that carries it.
const RUNSC_SUITE: &str = "trixie";

/// Installs the pinned runsc (`RUNSC_VERSION`) unless `runsc --version` already says so:
/// downloads trixie's package with apt through a sources list and package lists of its own
/// under the cache (the host's apt sources stay as they are; the archive's signature is
/// checked against Debian's keyring as usual), installs it with `dpkg -i` and holds it, so
/// an `apt-get upgrade` never swaps it for another build.
fn ensure_runsc(sh: &Shell) -> anyhow::Result<()> {
    let installed = installed_runsc(sh);
    if installed.as_deref() == Some(RUNSC_VERSION) {
        eprintln!("setup: runsc {RUNSC_VERSION} (gVisor, pinned)");
        return Ok(());
    }
    if !running_as_root(sh)? {
        bail!(
            "runsc {RUNSC_VERSION} is needed (found {}): run `cargo xtask test setup` as root",
            installed.as_deref().unwrap_or("none")
        );
    }
    eprintln!(
        "setup: installing runsc {RUNSC_VERSION} from Debian {RUNSC_SUITE} (found {})",
        installed.as_deref().unwrap_or("none")
    );
    let apt = cache_dir()?.join("apt").join(RUNSC_SUITE);
    let lists = apt.join("lists");
    let archives = apt.join("archives");
    sh.create_dir(lists.join("partial"))?;
    sh.create_dir(archives.join("partial"))?;
    let sources = apt.join("sources.list");
    sh.write_file(
        &sources,
        format!(
            "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] \
             http://deb.debian.org/debian {RUNSC_SUITE} main\n"
        ),
    )?;
    let options = [
        format!("Dir::Etc::SourceList={}", sources.display()),
        "Dir::Etc::SourceParts=/dev/null".to_owned(),
        format!("Dir::State::Lists={}", lists.display()),
        format!("Dir::Cache::Archives={}", archives.display()),
        "APT::Sandbox::User=root".to_owned(),
    ];
    let options: Vec<String> = options.iter().flat_map(|o| ["-o".to_owned(), o.clone()]).collect();
    let options = &options;
    cmd!(sh, "apt-get {options...} update").run()?;
    let policy = cmd!(sh, "apt-cache {options...} policy runsc").read()?;
    let candidate = policy
        .lines()
        .find_map(|line| line.trim().strip_prefix("Candidate:"))
        .map(str::trim)
        .unwrap_or_default()
        .to_owned();
    if !candidate.starts_with(&format!("{RUNSC_VERSION}-")) {
        bail!(
            "Debian {RUNSC_SUITE} offers runsc {candidate:?}, not {RUNSC_VERSION}: \
             check the new build and update RUNSC_VERSION in xtask/src/setup.rs"
        );
    }
    let _dir = sh.push_dir(&archives);
    cmd!(sh, "apt-get {options...} download runsc={candidate}").run()?;
    let deb = std::fs::read_dir(&archives)?
        .flatten()
        .map(|entry| entry.path())
        .find(|path| {
            path.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with(&format!("runsc_{candidate}_")) && n.ends_with(".deb")
            })
        })
        .context("apt-get download left no runsc package")?;
    cmd!(sh, "dpkg -i {deb}").env("DEBIAN_FRONTEND", "noninteractive").run()?;
    cmd!(sh, "apt-mark hold runsc").run()?;
    let now = installed_runsc(sh);
    if now.as_deref() != Some(RUNSC_VERSION) {
        bail!("runsc --version says {now:?} after installing {RUNSC_VERSION}");
    }
    Ok(())
}

/// The version `runsc --version` prints (`runsc version 0.0~20240729.0`), if runsc runs.
fn installed_runsc(sh: &Shell) -> Option<String> {
    let output = cmd!(sh, "runsc --version").quiet().ignore_stderr().read().ok()?;
    parse_runsc_version(&output)
}

/// The version in `runsc --version`'s first line.
pub fn parse_runsc_version(output: &str) -> Option<String> {
    output.lines().next()?.strip_prefix("runsc version ").map(|v| v.trim().to_owned())
}

fn running_as_root(sh: &Shell) -> anyhow::Result<bool> {
    Ok(cmd!(sh, "id -u").quiet().read()?.trim() == "0")
}

/// A crate whose binaries a command needs, pinned to one version.
#[derive(Debug)]
pub struct CargoTool {
    /// The crate on crates.io, e.g. `wasm-bindgen-cli`.
    pub name: &'static str,
    /// The exact version, e.g. `0.2.100`.
    pub version: &'static str,
    /// Whether to build with the crate's own `Cargo.lock` (`cargo install --locked`).
    pub locked: bool,
}

/// Installs `tool` into `cache_dir()/tools/<name>-<version>` unless it is there already, and
/// returns the directory of its binaries.
pub fn ensure_cargo_tool(sh: &Shell, tool: &CargoTool) -> anyhow::Result<PathBuf> {
    let root = cache_dir()?.join("tools").join(format!("{}-{}", tool.name, tool.version));
    let bin = root.join("bin");
    // `cargo install` records what it installed in `.crates.toml` once it has succeeded, so
    // a half-finished install is retried.
    let manifest = sh.read_file(root.join(".crates.toml")).unwrap_or_default();
    if bin.is_dir() && lists_installed(&manifest, tool) {
        return Ok(bin);
    }
    let CargoTool { name, version, .. } = tool;
    let locked = tool.locked.then_some("--locked");
    cmd!(sh, "cargo install {name} --version {version} {locked...} --root {root}").run()?;
    Ok(bin)
}

/// Whether `.crates.toml` text records `tool` at its version.
fn lists_installed(crates_toml: &str, tool: &CargoTool) -> bool {
    let key = format!("\"{} {} (", tool.name, tool.version);
    crates_toml.lines().any(|line| line.starts_with(&key))
}

#[cfg(test)]
mod tests {
    use super::{CargoTool, RUNSC_VERSION, lists_installed, parse_runsc_version};

    #[test]
    fn runsc_version_is_read_from_the_first_line() {
        let output = "runsc version 0.0~20240729.0\nspec: 1.2.0\n";
        assert_eq!(parse_runsc_version(output).as_deref(), Some(RUNSC_VERSION));
        assert_eq!(
            parse_runsc_version("runsc version release-20221219.0\n").as_deref(),
            Some("release-20221219.0")
        );
        assert_eq!(parse_runsc_version("bash: runsc: not found"), None);
    }

    #[test]
    fn crates_toml_records_the_exact_version() {
        let crates_toml = "[v1]\n\
            \"trunk 0.21.14 (registry+https://github.com/rust-lang/crates.io-index)\" = [\"trunk\"]\n";
        let tool = |version| CargoTool { name: "trunk", version, locked: true };
        assert!(lists_installed(crates_toml, &tool("0.21.14")));
        assert!(!lists_installed(crates_toml, &tool("0.21.1")));
        assert!(!lists_installed("", &tool("0.21.14")));
    }
}
