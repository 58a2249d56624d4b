//! `flint`: the Flint server and its admin commands.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use server::app::{AppState, app};
use server::auth::{Caller, Via, login_url};
use server::config::{Config, PublicOrigin, default_data_dir};
use server::core::{Action, Outcome, perform};
use server::images;
use server::metrics::Metrics;
use server::sessions::pool::Capacity;
use server::sessions::{DEFAULT_IDLE_TIMEOUT, DEFAULT_RETENTION, Sessions, SessionsConfig};
use server::store::Store;

#[derive(Parser)]
#[command(version, about = "Flint: a self-hostable cloud IDE of disposable sandboxes")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct Common {
    /// Data directory (database, sessions' workspaces, images).
    #[arg(long, default_value_os_t = default_data_dir())]
    data_dir: PathBuf,
    /// The origin browsers reach Flint at; default `http://` + the listen address.
    #[arg(long)]
    public_origin: Option<String>,
    /// Preview URLs are `{port}-{session}.DOMAIN` (a wildcard name pointing here; every
    /// `*.localhost` is loopback already).
    #[arg(long, default_value = server::preview::DEFAULT_DOMAIN)]
    preview_domain: String,
    /// The port previews are reached on, if not the public origin's (with `--preview-listen`
    /// behind a proxy that maps ports).
    #[arg(long)]
    preview_port: Option<u16>,
}

#[derive(clap::Args, Clone)]
struct SandboxArgs {
    /// Sandbox driver: `auto` picks the best that works here (gVisor, else `process`
    /// with a warning).
    #[arg(long, value_enum, default_value = "auto")]
    driver: server::drivers::Choice,
    /// Warm sandboxes kept ready per pool image (0: none).
    #[arg(long, default_value_t = 2)]
    pool_size: usize,
    /// Images with a warm pool (comma-separated spec names).
    #[arg(long, value_delimiter = ',', default_value = "default")]
    pool_images: Vec<String>,
    /// CPUs all sessions and warm sandboxes may ask for together; default 8 per host CPU.
    #[arg(long)]
    capacity_cpus: Option<f64>,
    /// Memory (MiB) all sessions and warm sandboxes may ask for; default the host's.
    #[arg(long)]
    capacity_memory_mb: Option<u64>,
    /// Sandboxes (sessions and warm ones) at most; default 256, or 12 per CPU when gVisor is
    /// the default driver (an idle gVisor sandbox takes about 5% of a core).
    #[arg(long)]
    capacity_sandboxes: Option<usize>,
    /// A PEM file of certificate authorities sandboxes trust besides the host's bundle
    /// (repeatable): a TLS-inspecting proxy's, a company CA.
    #[arg(long, value_name = "FILE")]
    extra_ca: Vec<PathBuf>,
}

#[derive(clap::Args, Clone)]
struct NetArgs {
    /// Sandbox addresses: a /30 each, from this range (inside 100.64.0.0/10 or a private
    /// range).
    #[arg(long, default_value = server::net::pool::DEFAULT_POOL)]
    net_pool: String,
    /// Route sandboxes' traffic through this network namespace (`ip netns add NAME`)
    /// instead of NAT on the host: a dedicated egress gateway.
    #[arg(long, value_name = "NAME")]
    uplink_netns: Option<String>,
    /// A resolver for sandboxes' DNS (repeatable; `IP` or `IP:PORT`); default: the uplink's
    /// resolv.conf.
    #[arg(long, value_name = "ADDR")]
    dns_upstream: Vec<String>,
}

impl NetArgs {
    fn config(&self) -> anyhow::Result<server::net::NetConfig> {
        let pool = server::net::pool::Pool::parse(&self.net_pool).map_err(anyhow::Error::msg)?;
        let dns_upstreams = self
            .dns_upstream
            .iter()
            .map(|a| {
                a.parse::<SocketAddr>()
                    .or_else(|_| a.parse::<std::net::IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                    .map_err(|_| anyhow::anyhow!("--dns-upstream {a:?} is not IP or IP:PORT"))
            })
            .collect::<anyhow::Result<_>>()?;
        if let Some(name) = &self.uplink_netns
            && (name.is_empty() || name.contains('/'))
        {
            anyhow::bail!("--uplink-netns {name:?} is not a namespace name");
        }
        Ok(server::net::NetConfig { pool, uplink_netns: self.uplink_netns.clone(), dns_upstreams })
    }
}

#[derive(Subcommand)]
enum Command {
    /// Serve Flint; prints a fresh single-use login URL.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Stop a running session after this many seconds with no client attached and no
        /// API call.
        #[arg(long, default_value_t = 1800)]
        idle_timeout_s: u64,
        /// Delete a stopped session, `/workspace` included, after this many seconds.
        #[arg(long, default_value_t = 7 * 24 * 3600)]
        retention_s: u64,
        /// Also serve previews on this address (their own listener, e.g. for a wildcard
        /// certificate); the main listener serves them too.
        #[arg(long)]
        preview_listen: Option<SocketAddr>,
        #[command(flatten)]
        sandboxes: Box<SandboxArgs>,
        #[command(flatten)]
        net: NetArgs,
        #[command(flatten)]
        common: Common,
    },
    /// Print a fresh single-use login URL for the admin.
    LoginUrl {
        /// The address `flint serve` listens on (for the default public origin).
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        #[command(flatten)]
        common: Common,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Build and cache sandbox images.
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a bearer token for the admin and print it (once).
    Create {
        /// What the token is for.
        #[arg(long, default_value = "cli")]
        name: String,
        /// Confine the token to this session.
        #[arg(long)]
        session: Option<String>,
        #[arg(long, default_value_os_t = default_data_dir())]
        data_dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum ImageCommand {
    /// Build the root filesystem of an image spec, unless the same spec is built already;
    /// prints the root filesystem's path.
    Build {
        /// The spec to build.
        #[arg(default_value = "images/default.toml")]
        spec: PathBuf,
        /// Data directory; images are cached in its `images/`.
        #[arg(long, default_value_os_t = default_data_dir())]
        data_dir: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FLINT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?
        .block_on(run(cli))
}

/// How sessions run: what `flint serve` takes from its flags, defaults for the other
/// commands.
struct Running {
    idle_timeout: std::time::Duration,
    retention: std::time::Duration,
    drivers: Arc<server::drivers::Drivers>,
    pool_size: usize,
    pool_images: Vec<String>,
    capacity: Capacity,
    ca_bundle: Option<PathBuf>,
}

impl Running {
    /// For commands that run no session.
    fn none(drivers: Arc<server::drivers::Drivers>) -> Running {
        Running {
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            retention: DEFAULT_RETENTION,
            drivers,
            pool_size: 0,
            pool_images: Vec::new(),
            capacity: Capacity::of_host(false),
            ca_bundle: None,
        }
    }
}

async fn state(
    listen: SocketAddr,
    data_dir: PathBuf,
    public_origin: Option<String>,
    preview_domain: String,
    preview_port: Option<u16>,
    run: Running,
) -> anyhow::Result<AppState> {
    let Running { idle_timeout, retention, drivers, pool_size, pool_images, capacity, ca_bundle } =
        run;
    let preview_domain = preview_domain.trim_matches('.').to_ascii_lowercase();
    if preview_domain.is_empty() || !preview_domain.contains('.') && preview_domain != "localhost" {
        anyhow::bail!("--preview-domain {preview_domain:?} is not a domain name");
    }
    let public_origin = match public_origin {
        Some(text) => PublicOrigin::parse(&text).map_err(anyhow::Error::msg)?,
        None => PublicOrigin::parse(&format!("http://{listen}")).map_err(anyhow::Error::msg)?,
    };
    let preview = server::config::PreviewBase {
        scheme: public_origin.scheme.clone(),
        domain: preview_domain,
        port: preview_port.unwrap_or(public_origin.port),
    };
    let store = Store::open(&data_dir)
        .await
        .with_context(|| format!("opening the store in {}", data_dir.display()))?;
    let metrics = Metrics::new();
    let sessions_config = SessionsConfig {
        data_dir: data_dir.clone(),
        images_dir: images_dir(),
        agent_bin: agent_bin()?,
        idle_timeout,
        retention,
        preview: preview.clone(),
        drivers,
        pool_size,
        pool_images,
        capacity,
        ca_bundle,
    };
    let sessions = Sessions::new(store.clone(), sessions_config, metrics.clone());
    let config = Config { listen, data_dir, public_origin, preview };
    let proxy = server::preview::proxy::Proxy::new(sessions.clone());
    let browsers = server::browser::Browsers::new(&sessions);
    let people = server::people::People::new(&sessions);
    Ok(AppState {
        config: Arc::new(config),
        store,
        metrics,
        sessions,
        revocations: Arc::default(),
        previews: Arc::default(),
        proxy,
        browsers,
        people,
    })
}

/// Image specs: `$FLINT_IMAGES_DIR`, else `images/` in the current directory (the repository
/// when started by `cargo xtask run`).
fn images_dir() -> PathBuf {
    std::env::var_os("FLINT_IMAGES_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("images"))
}

/// The guest agent bind-mounted into sandboxes: `$FLINT_AGENT_BIN`, else `guest-agent`
/// beside this binary (cargo builds both into the same directory).
fn agent_bin() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("FLINT_AGENT_BIN").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().context("locating the flint binary")?;
    Ok(exe.with_file_name("guest-agent"))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            listen,
            idle_timeout_s,
            retention_s,
            preview_listen,
            sandboxes,
            net,
            common,
        } => {
            let SandboxArgs {
                driver,
                pool_size,
                pool_images,
                capacity_cpus,
                capacity_memory_mb,
                capacity_sandboxes,
                extra_ca,
            } = *sandboxes;
            let net = net.config()?;
            let drivers = server::drivers::Drivers::select(driver, &common.data_dir).await?;
            let gvisor = matches!(drivers.default_driver(), server::sandbox::Driver::Gvisor { .. });
            let host = Capacity::of_host(gvisor);
            let capacity = Capacity {
                cpus: capacity_cpus.unwrap_or(host.cpus),
                memory_mb: capacity_memory_mb.unwrap_or(host.memory_mb),
                sandboxes: capacity_sandboxes.unwrap_or(host.sandboxes),
            };
            let preview_listener = match preview_listen {
                Some(addr) => Some(
                    tokio::net::TcpListener::bind(addr)
                        .await
                        .with_context(|| format!("binding {addr} for previews"))?,
                ),
                None => None,
            };
            let preview_listener_port = match &preview_listener {
                Some(listener) => Some(listener.local_addr()?.port()),
                None => None,
            };
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding {listen}"))?;
            let bound = listener.local_addr()?;
            let idle = std::time::Duration::from_secs(idle_timeout_s);
            let retention = std::time::Duration::from_secs(retention_s);
            std::fs::create_dir_all(&common.data_dir)
                .with_context(|| format!("creating {}", common.data_dir.display()))?;
            let ca_bundle = server::sandbox::trust::prepare(&common.data_dir, &extra_ca)?;
            let state = state(
                bound,
                common.data_dir,
                common.public_origin,
                common.preview_domain,
                common.preview_port.or(preview_listener_port),
                Running {
                    idle_timeout: idle,
                    retention,
                    drivers: Arc::new(drivers),
                    pool_size,
                    pool_images,
                    capacity,
                    ca_bundle,
                },
            )
            .await?;
            let admin = state.store.ensure_admin().await?;
            let network = server::net::Network::start(net, state.sessions.instance())
                .await
                .context("setting up sandbox networking")?;
            state.sessions.set_network(network.clone());
            let unfinished = state
                .store
                .cancel_unfinished_calls()
                .await
                .map_err(|e| anyhow::anyhow!("closing the audit log's open calls: {e}"))?;
            if unfinished > 0 {
                tracing::info!(unfinished, "agent calls cut off by the last stop marked cancelled");
            }
            state
                .sessions
                .adopt_all()
                .await
                .map_err(|e| anyhow::anyhow!("re-adopting sessions: {e}"))?;
            tokio::spawn(state.sessions.clone().watch_forever());
            tokio::spawn(state.sessions.clone().fill_pool_forever());
            let sessions = state.sessions.clone();
            let url = login_url(&state, &admin).await?;
            println!("Flint is listening on http://{bound}");
            println!("Sign in: {url}");
            tracing::info!(%bound, "serving");
            if let Some(previews) = preview_listener {
                tracing::info!(bound = %previews.local_addr()?, "serving previews");
                let service = server::app::previews_only(state.clone())
                    .into_make_service_with_connect_info::<SocketAddr>();
                tokio::spawn(async move {
                    if let Err(e) = axum::serve(previews, service).await {
                        tracing::error!("the preview listener failed: {e}");
                    }
                });
            }
            let service = app(state).into_make_service_with_connect_info::<SocketAddr>();
            axum::serve(listener, service).with_graceful_shutdown(shutdown()).await?;
            // Warm sandboxes are spare: they go, and the table with them if nothing runs.
            sessions.drain_pool().await;
            network.shutdown().await;
            Ok(())
        }
        Command::LoginUrl { listen, common } => {
            let drivers = Arc::new(server::drivers::Drivers::unprobed(&common.data_dir));
            let state = state(
                listen,
                common.data_dir,
                common.public_origin,
                common.preview_domain,
                common.preview_port,
                Running::none(drivers),
            )
            .await?;
            let admin = state.store.ensure_admin().await?;
            println!("{}", login_url(&state, &admin).await?);
            Ok(())
        }
        Command::Token { command: TokenCommand::Create { name, session, data_dir } } => {
            let local = SocketAddr::from(([127, 0, 0, 1], 8080));
            let drivers = Arc::new(server::drivers::Drivers::unprobed(&data_dir));
            let state = state(
                local,
                data_dir,
                None,
                server::preview::DEFAULT_DOMAIN.to_owned(),
                None,
                Running::none(drivers),
            )
            .await?;
            let admin = state.store.ensure_admin().await?;
            let caller = Caller {
                user: admin,
                via: Via::Cookie { web_session: String::new(), expires_ms: 0 },
            };
            match perform(&state, &caller, Action::CreateToken { name, session_id: session }).await
            {
                Ok(Outcome::NewToken(new)) => {
                    println!("{}", new.token);
                    Ok(())
                }
                Ok(_) => anyhow::bail!("creating a token gave no token"),
                Err(e) => anyhow::bail!("{e}"),
            }
        }
        Command::Image { command: ImageCommand::Build { spec, data_dir } } => {
            let path = spec;
            let spec = images::load_spec(&path)?;
            let built = images::build(&data_dir, &spec, true).await?;
            match built.build_time {
                None => eprintln!("image {} is cached (same spec, not rebuilt)", spec.name),
                Some(time) => eprintln!(
                    "built image {} from {} in {:.1} s",
                    spec.name,
                    path.display(),
                    time.as_secs_f64()
                ),
            }
            println!("{}", built.rootfs.display());
            Ok(())
        }
    }
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}
