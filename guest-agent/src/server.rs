//! The agent's HTTP/2 server: accept loops, authentication and dispatch to the handlers.
//!
//! Two listeners share one agent: the main one (the server's link; every route, behind the
//! session secret) and, optionally, the restricted in-sandbox socket (no secret: it lives
//! inside the sandbox) that serves only the routes of [`Route::guest_allowed`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderValue, Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use proto::error::ErrorCode;
use proto::routes::{Method, Route};
use subtle::ConstantTimeEq;
use tracing::Instrument;

use crate::error::{Error, Result};
use crate::http::{Body, error_response};
use crate::listen::{Listen, Listener};
use crate::{attach, audit, browser, exec, files, info, ports, run, terminal, tunnel};

pub use agent_client::link::{
    CONNECTION_WINDOW_BYTES, KEEPALIVE_INTERVAL, KEEPALIVE_TIMEOUT, MAX_FRAME_BYTES, MAX_STREAMS,
    MAX_TUNNELS, STREAM_WINDOW_BYTES, TUNNEL_WAIT,
};

/// How long a tunnel waits for the app to accept its connection. An app whose listen queue
/// is full (Python's `http.server` queues 5) has its SYNs dropped and retried with backoff
/// (3, 7, 15, 31, 63 s under gVisor): without a bound the person's request would hang for
/// minutes with a tunnel slot held; with it they get a clear error.
pub const CONNECT_WAIT: Duration = Duration::from_secs(10);

/// How the agent is configured.
#[derive(Clone, Debug)]
pub struct Config {
    /// The secret a client must present as `Authorization: Bearer`.
    pub secret: String,
    /// Program and arguments of a terminal that names none.
    pub shell: Vec<String>,
    /// Working directory of terminals and commands that name none.
    pub workdir: PathBuf,
    /// Scrollback kept per terminal for replay.
    pub scrollback_bytes: usize,
    /// How often the port watcher polls.
    pub port_poll: Duration,
    /// Environment of every terminal and command (a request's own variables win).
    pub env: std::collections::BTreeMap<String, String>,
    /// The restricted in-sandbox socket, if any (`guest-agent mcp` connects to it).
    pub guest_listen: Option<Listen>,
    /// Send `SIGWINCH` to a terminal's process groups after resizing its pty, for a kernel
    /// whose pty does not (gVisor's: full-screen programs would never redraw).
    pub signal_resize: bool,
    /// Start terminal `1` before serving (`--first-shell`).
    pub first_shell: bool,
}

/// The variable that tells programs in the sandbox where the restricted socket is.
pub const MCP_SOCKET_ENV: &str = "FLINT_MCP_SOCKET";

/// Parses `KEY=value` / `KEY="value"` lines, skipping blanks and `#` comments.
pub fn parse_env_file(text: &str) -> std::collections::BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| {
            let value = value.trim();
            let value = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value);
            (key.trim().to_owned(), value.to_owned())
        })
        .filter(|(key, _)| !key.is_empty())
        .collect()
}

impl Config {
    /// Defaults for everything but the secret.
    pub fn new(secret: String) -> Config {
        Config {
            secret,
            shell: vec!["bash".to_owned(), "-l".to_owned()],
            workdir: PathBuf::from("/"),
            scrollback_bytes: terminal::SCROLLBACK_BYTES,
            port_poll: ports::POLL_INTERVAL,
            env: std::collections::BTreeMap::new(),
            guest_listen: None,
            signal_resize: false,
            first_shell: false,
        }
    }
}

/// The agent's state, shared by every connection and stream.
pub struct Agent {
    expected_authorization: Vec<u8>,
    pub(crate) config: Config,
    pub(crate) started: Instant,
    pub(crate) terminals: terminal::Terminals,
    pub(crate) ports: Arc<ports::PortWatcher>,
    pub(crate) tunnels: Arc<tokio::sync::Semaphore>,
    pub(crate) own_tcp_port: Option<u16>,
    pub(crate) cpu: info::CpuSampler,
    pub(crate) reports: Arc<audit::Reports>,
    pub(crate) browser: browser::SharedBrowser,
}

/// Which listener a connection came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Socket {
    /// The server's link: every route, with the secret.
    Main,
    /// The in-sandbox socket: [`Route::guest_allowed`] routes only, no secret.
    Guest,
}

/// Binds `listen` (and the guest socket, if configured) and serves until the process ends.
pub async fn serve(listen: Listen, mut config: Config) -> anyhow::Result<()> {
    let listener = Listener::bind(&listen).await?;
    let guest = match &config.guest_listen {
        Some(guest_listen) => Some((guest_listen.clone(), bind_guest(guest_listen).await?)),
        None => None,
    };
    if let Some(Listen::Unix(path)) = &config.guest_listen {
        config.env.entry(MCP_SOCKET_ENV.to_owned()).or_insert_with(|| path.display().to_string());
    }
    let own_tcp_port = listener.tcp_port();
    let ports = ports::PortWatcher::start(config.port_poll, own_tcp_port);
    let agent = Arc::new(Agent {
        expected_authorization: format!("Bearer {}", config.secret).into_bytes(),
        terminals: terminal::Terminals::new(config.scrollback_bytes),
        config,
        started: Instant::now(),
        browser: browser::SharedBrowser::new(ports.clone()),
        ports,
        tunnels: Arc::new(tokio::sync::Semaphore::new(MAX_TUNNELS)),
        own_tcp_port,
        cpu: info::CpuSampler::default(),
        reports: Arc::default(),
    });
    if agent.config.first_shell {
        // Its fork and exec (~50 ms under gVisor) and its login (~100 ms more to the
        // prompt) run beside the server's connecting and checking.
        terminal::Terminals::start_first_shell(&agent);
    }
    tracing::info!(%listen, api = proto::AGENT_API_VERSION, "guest agent listening");
    if let Some((guest_listen, guest_listener)) = guest {
        tracing::info!(listen = %guest_listen, "restricted in-sandbox socket listening");
        tokio::spawn(accept_loop(agent.clone(), guest_listener, Socket::Guest));
    }
    accept_loop(agent, listener, Socket::Main).await;
    Ok(())
}

/// Binds the guest socket. A unix socket is open to every user of the sandbox (mode 0666):
/// the sandbox is the trust boundary, and the routes it serves are what any process in it
/// may do anyway.
async fn bind_guest(listen: &Listen) -> anyhow::Result<Listener> {
    use anyhow::Context as _;
    // Open to every user in the sandbox: it is the sandbox's own MCP endpoint.
    Listener::bind_with_mode(listen, 0o666).await.with_context(|| format!("binding {listen}"))
}

async fn accept_loop(agent: Arc<Agent>, listener: Listener, socket: Socket) {
    let mut next_connection = 0u64;
    loop {
        let stream = match listener.accept().await {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        next_connection += 1;
        let agent = agent.clone();
        let span = tracing::info_span!("connection", id = next_connection, ?socket);
        tokio::spawn(
            async move {
                let service = hyper::service::service_fn(move |req| {
                    let agent = agent.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(handle(agent, req, socket).await)
                    }
                });
                if let Err(e) =
                    http2_builder().serve_connection(TokioIo::new(stream), service).await
                {
                    tracing::debug!("connection ended: {e}");
                }
            }
            .instrument(span),
        );
    }
}

/// The HTTP/2 settings both ends of the agent link use.
pub fn http2_builder() -> hyper::server::conn::http2::Builder<TokioExecutor> {
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .adaptive_window(false)
        .initial_stream_window_size(STREAM_WINDOW_BYTES)
        .initial_connection_window_size(CONNECTION_WINDOW_BYTES)
        .max_concurrent_streams(MAX_STREAMS)
        .max_frame_size(MAX_FRAME_BYTES)
        .max_header_list_size(64 << 10)
        // h2 counts every stream it resets on its own (DATA still arriving for a stream
        // already reset or forgotten: a browser that aborts downloads and uploads makes
        // those in their thousands) and, by default, kills the connection at the 1024th:
        // every terminal and preview of the session with it. The peer on this socket is the
        // server (the socket is the host's), so there is no limit; those resets cost one
        // frame each and nothing is kept.
        .max_local_error_reset_streams(None)
        // Streams the server cancels before the agent took them (a preview request aborted
        // at once) would hit the default of 20 and close the connection too.
        .max_pending_accept_reset_streams(Some(MAX_STREAMS as usize))
        .keep_alive_interval(Some(KEEPALIVE_INTERVAL))
        .keep_alive_timeout(KEEPALIVE_TIMEOUT);
    builder
}

async fn handle(agent: Arc<Agent>, req: Request<Incoming>, socket: Socket) -> Response<Body> {
    let mut response = match dispatch(&agent, req, socket).await {
        Ok(response) => response,
        Err(err) => {
            if err.code() == ErrorCode::Internal {
                tracing::warn!("request failed: {err}");
            }
            error_response(&err)
        }
    };
    response
        .headers_mut()
        .insert(proto::AGENT_API_VERSION_HEADER, HeaderValue::from(proto::AGENT_API_VERSION));
    response
}

async fn dispatch(
    agent: &Arc<Agent>,
    req: Request<Incoming>,
    socket: Socket,
) -> Result<Response<Body>> {
    if socket == Socket::Main {
        let presented = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if !bool::from(presented.ct_eq(&agent.expected_authorization)) {
            return Err(Error::api(ErrorCode::Unauthorized, "missing or wrong agent secret"));
        }
    }
    let route = Method::from_name(req.method().as_str())
        .and_then(|method| Route::parse(method, req.uri().path()))
        .ok_or_else(|| {
            Error::api(
                ErrorCode::UnknownRoute,
                format!("no route {} {}", req.method(), req.uri().path()),
            )
        })?;
    if socket == Socket::Guest && !route.guest_allowed() {
        return Err(Error::api(
            ErrorCode::PermissionDenied,
            format!(
                "{} {} is not available on the in-sandbox socket",
                req.method(),
                req.uri().path()
            ),
        ));
    }
    tracing::debug!(?route, "request");
    let (parts, body) = req.into_parts();
    let uri = &parts.uri;
    if route.is_terminal() {
        agent.terminals.settled().await;
    }
    match route {
        Route::Info => info::info(agent),
        Route::TerminalList => terminal::list(agent),
        Route::TerminalCreate => terminal::create(agent, body).await,
        Route::TerminalGet(id) => terminal::get(agent, &id),
        Route::TerminalKill(id) => terminal::kill(agent, &id).await,
        Route::TerminalResize(id) => terminal::resize(agent, &id, body).await,
        Route::TerminalAttach(id) => attach::attach(agent, &id, uri, body).await,
        Route::TerminalScreen(id) => terminal::screen(agent, &id),
        Route::TerminalOutput(id) => attach::output(agent, &id, uri),
        Route::Exec => exec::exec(agent, body).await,
        Route::FileStat => files::stat(uri).await,
        Route::FileList => files::list(uri).await,
        Route::FileRead => files::read(uri).await,
        Route::FileWrite => files::write(uri, body).await,
        Route::FileMkdir => files::mkdir(body).await,
        Route::FileMove => files::rename(body).await,
        Route::FileRemove => files::remove(body).await,
        Route::FileTar => files::tar(uri).await,
        Route::PortList => ports::list(agent),
        Route::PortEvents => ports::events(agent),
        Route::Tunnel(port) => tunnel::open(agent, port, body).await,
        Route::TerminalRun(id) => run::run(agent, &id, body).await,
        Route::TerminalInput(id) => run::input(agent, &id, body).await,
        Route::AuditReport => audit::report(agent, body).await,
        Route::AuditEvents => audit::events(agent),
        Route::BrowserStatus => browser::status(agent).await,
        Route::BrowserNavigate => browser::navigate(agent, body).await,
        Route::BrowserClick => browser::click(agent, body).await,
        Route::BrowserType => browser::type_text(agent, body).await,
        Route::BrowserScreenshot => browser::screenshot(agent).await,
        Route::BrowserText => browser::text(agent).await,
        Route::BrowserConsole => browser::console(agent, uri).await,
        Route::BrowserTabs => browser::tabs(agent).await,
        Route::BrowserNewTab => browser::new_tab(agent, body).await,
        Route::BrowserCloseTab(tab) => browser::close_tab(agent, tab).await,
        Route::BrowserActivateTab(tab) => browser::activate_tab(agent, tab).await,
        Route::BrowserInput => browser::input(agent, body).await,
        Route::BrowserScreencast => browser::screencast(agent, uri).await,
    }
}

#[cfg(test)]
mod tests {
    use super::parse_env_file;

    #[test]
    fn env_files_parse_quoted_and_bare_values_and_skip_comments() {
        let env = parse_env_file("# from the spec\nLANG=\"C.UTF-8\"\n\nA=b c\nnot a pair\n=x\n");
        assert_eq!(env.get("LANG").map(String::as_str), Some("C.UTF-8"));
        assert_eq!(env.get("A").map(String::as_str), Some("b c"));
        assert_eq!(env.len(), 2);
    }
}
