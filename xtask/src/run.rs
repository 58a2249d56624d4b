//! `cargo xtask run`: Flint itself (builds the default image if it is not cached, then
//! `flint serve`, which prints the login URL); with
//! `--agent`, the guest agent alone, serving the current directory on a unix socket under
//! `target/flint-run/agent/`.

use std::io::{Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::os::unix::process::CommandExt as _;
use std::path::Path;

use anyhow::{Context as _, bail};
use xshell::{Shell, cmd};

use crate::setup;

/// The longest unix socket path Linux binds: `sun_path` is 108 bytes with the final NUL.
const MAX_SOCKET_PATH_BYTES: usize = 107;

/// Builds the release `flint` and becomes `flint serve` with its defaults.
pub fn run_flint(sh: &Shell) -> anyhow::Result<()> {
    setup::setup(sh)?;
    // Before the server: a release `flint` embeds `web/dist`.
    crate::web::build_app(sh)?;
    // The agent is bind-mounted into every sandbox from beside `flint`.
    cmd!(sh, "cargo build --release -p server -p guest-agent").run()?;
    let flint = crate::target_dir(sh).join("release/flint");
    // The default image, unless this spec is cached (about two minutes the first time).
    cmd!(sh, "{flint} image build images/default.toml").run()?;
    println!("\nstarting {} serve (Ctrl-C stops it)\n", flint.display());
    std::io::stdout().flush()?;
    let mut command = std::process::Command::new(&flint);
    command.arg("serve");
    exec(command, &flint)
}

/// Builds the release agent and becomes `guest-agent serve` on a unix socket.
pub fn run_agent(sh: &Shell) -> anyhow::Result<()> {
    // Terminals and commands that name no directory start where the developer ran cargo.
    let workdir = std::env::current_dir().context("reading the current directory")?;
    setup::setup(sh)?;
    cmd!(sh, "cargo build -p guest-agent --release").run()?;

    let run_dir = crate::target_dir(sh).join("flint-run/agent");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&run_dir)
        .with_context(|| format!("creating {}", run_dir.display()))?;
    let secret_file = run_dir.join("secret");
    write_secret(&secret_file)?;
    let socket = run_dir.join("agent.sock");
    if socket.as_os_str().len() > MAX_SOCKET_PATH_BYTES {
        bail!(
            "socket path {} is longer than {MAX_SOCKET_PATH_BYTES} bytes: move the checkout to \
             a shorter path",
            socket.display()
        );
    }

    let agent = crate::target_dir(sh).join("release/guest-agent");
    let listen = format!("unix:{}", socket.display());
    println!("\nguest agent: {listen}, serving {}", workdir.display());
    println!("try it from another terminal:\n");
    println!(
        "  curl --http2-prior-knowledge --unix-socket {} -H \"Authorization: Bearer $(cat {})\" \
         http://agent/v1/info\n",
        socket.display(),
        secret_file.display()
    );
    let guest = run_dir.join("mcp.sock");
    println!(
        "or speak MCP to it over stdio, as an agent inside a sandbox would:\n\n  {} mcp --socket {}\n",
        agent.display(),
        guest.display()
    );
    println!("Ctrl-C stops it.\n");
    std::io::stdout().flush()?;

    let mut command = std::process::Command::new(&agent);
    command
        .arg("serve")
        .arg("--listen")
        .arg(&listen)
        .arg("--secret-file")
        .arg(&secret_file)
        .arg("--guest-listen")
        .arg(format!("unix:{}", guest.display()))
        .arg("--workdir")
        .arg(&workdir);
    exec(command, &agent)
}

/// Replaces this process with `command`: exec, not spawn, so Ctrl-C, a `kill` of this pid and
/// the exit status all reach it directly and no orphan can be left behind.
fn exec(mut command: std::process::Command, program: &Path) -> anyhow::Result<()> {
    // What `cargo run` set for xtask would leak into the shells it starts.
    for (name, _) in std::env::vars_os() {
        let name_text = name.to_string_lossy();
        if name_text.starts_with("CARGO_PKG_")
            || ["CARGO_MANIFEST_DIR", "CARGO_MANIFEST_PATH", "CARGO_CRATE_NAME", "CARGO_BIN_NAME"]
                .contains(&name_text.as_ref())
        {
            command.env_remove(&name);
        }
    }
    let error = command.exec();
    Err(error).with_context(|| format!("starting {}", program.display()))
}

/// Writes 32 random bytes, hex-encoded, to a fresh file only the owner can read.
fn write_secret(path: &Path) -> anyhow::Result<()> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut urandom| urandom.read_exact(&mut bytes))
        .context("reading /dev/urandom")?;
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    // Removed first so that an old file's looser mode can't survive.
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing {}", path.display())),
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    writeln!(file, "{hex}").with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
