//! `guest-agent`: the daemon inside every Flint sandbox.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use guest_agent::listen::Listen;
use guest_agent::server::{self, Config};

#[derive(Parser)]
#[command(
    version,
    about = "The Flint guest agent: shared terminals, exec, files, ports and tunnels"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the agent API (HTTP/2 with prior knowledge) on one listener.
    Serve {
        /// `unix:PATH` or `tcp:ADDR`.
        #[arg(long)]
        listen: Listen,
        /// File holding the secret clients must present as `Authorization: Bearer`.
        #[arg(long)]
        secret_file: PathBuf,
        /// Delete the secret file once read, so nothing else in the sandbox can read it (the
        /// agent's memory is kept from other processes too: it is not dumpable).
        #[arg(long)]
        remove_secret_file: bool,
        /// Shell of a terminal that names no command, split on spaces.
        #[arg(long, default_value = "bash -l")]
        shell: String,
        /// Working directory of terminals and commands that name none.
        #[arg(long, default_value = "/")]
        workdir: PathBuf,
        /// `KEY="value"` lines (like `/etc/environment`) set for every terminal and command;
        /// a missing file is skipped.
        #[arg(long)]
        env_file: Option<PathBuf>,
        /// `unix:PATH`: also serve the restricted in-sandbox socket there (no secret; only the
        /// routes `guest-agent mcp` needs). Its path is set as `FLINT_MCP_SOCKET` for every
        /// terminal and command.
        #[arg(long)]
        guest_listen: Option<Listen>,
        /// The host's CA bundle (PEM): its certificates join the sandbox's system store, and
        /// `SSL_CERT_FILE`, `NODE_EXTRA_CA_CERTS` and the like name that store for every
        /// terminal and command. A missing file is skipped.
        #[arg(long)]
        ca_bundle: Option<PathBuf>,
        /// Send SIGWINCH to a terminal's process groups after a resize: for kernels whose pty
        /// does not (gVisor), so that full-screen programs redraw at the new size.
        #[arg(long)]
        signal_resize: bool,
        /// Start the first shell (terminal `1`, as `POST /v1/terminals` with no options
        /// would) as the agent starts, its terminal routes waiting for it: a session's
        /// prompt then comes while its server still connects, instead of after.
        #[arg(long)]
        first_shell: bool,
    },
    /// Speak MCP on stdin/stdout with the session's tools (run_command, read_screen, files,
    /// ...), through the agent's restricted socket: for an AI agent running inside the
    /// sandbox. Its calls show in the session's activity feed as guest-reported.
    Mcp {
        /// The agent's restricted socket.
        #[arg(long, default_value = guest_agent::mcp_stdio::DEFAULT_SOCKET)]
        socket: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    let directives = std::env::var("FLINT_AGENT_LOG").unwrap_or_else(|_| "info".to_owned());
    let mut filter = tracing_subscriber::EnvFilter::try_new(&directives)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    if !directives.contains("chromiumoxide")
        && let Ok(quiet) = "chromiumoxide::handler=error".parse()
    {
        // Chromium 156 sends an event per page load that chromiumoxide 0.9 cannot parse; it
        // warns about each. Asking for `chromiumoxide` in FLINT_AGENT_LOG shows them.
        filter = filter.add_directive(quiet);
    }
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            listen,
            secret_file,
            remove_secret_file,
            shell,
            workdir,
            env_file,
            guest_listen,
            ca_bundle,
            signal_resize,
            first_shell,
        } => {
            let secret = std::fs::read_to_string(&secret_file)
                .with_context(|| format!("reading secret file {}", secret_file.display()))?
                .trim()
                .to_owned();
            anyhow::ensure!(!secret.is_empty(), "secret file {} is empty", secret_file.display());
            // Other processes (the sandbox's root included, which lacks CAP_SYS_PTRACE) cannot
            // read a non-dumpable process's memory, environment or open files.
            nix::sys::prctl::set_dumpable(false).context("making the agent non-dumpable")?;
            if remove_secret_file {
                std::fs::remove_file(&secret_file)
                    .with_context(|| format!("removing secret file {}", secret_file.display()))?;
            }
            let mut config = Config::new(secret);
            config.shell = shell.split_whitespace().map(str::to_owned).collect();
            anyhow::ensure!(!config.shell.is_empty(), "--shell is empty");
            config.workdir = workdir;
            if let Some(guest) = &guest_listen {
                anyhow::ensure!(
                    matches!(guest, Listen::Unix(_)),
                    "--guest-listen must be unix:PATH: the restricted socket is a file in the sandbox"
                );
            }
            config.guest_listen = guest_listen;
            config.signal_resize = signal_resize;
            config.first_shell = first_shell;
            if let Some(path) = env_file {
                match std::fs::read_to_string(&path) {
                    Ok(text) => config.env = guest_agent::server::parse_env_file(&text),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
                }
            }
            if let Some(bundle) = ca_bundle
                && let Err(e) = guest_agent::trust::install(&bundle, &mut config.env)
            {
                // HTTPS through an inspecting proxy fails then; everything else works.
                tracing::warn!("trusting the host's certificate authorities: {e:#}");
            }
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the runtime")?
                .block_on(server::serve(listen, config))
        }
        Command::Mcp { socket } => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the runtime")?
            .block_on(guest_agent::mcp_stdio::serve(socket)),
    }
}
