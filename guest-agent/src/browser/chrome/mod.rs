//! Starting Chromium (its executable, flags, DevTools port and profile), watching its
//! process, and one running Chromium; its tabs are `tabs.rs`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chromiumoxide::browser::{Browser, BrowserConfig};
use futures_util::StreamExt;
use proto::browser::Viewport;
use tokio::sync::watch;

mod tabs;

pub(crate) use self::tabs::ActiveTab;
use self::tabs::Tabs;
use super::console::Console;
use super::screencast::Caster;
use super::unavailable;
use crate::error::Result;
use crate::ports::{HiddenPort, PortWatcher};

/// The variable naming the Chromium executable; without it `/usr/bin/chromium`, then
/// `chromium` on `PATH`.
pub const CHROMIUM_ENV: &str = "FLINT_CHROMIUM";

/// How long Chromium may take to print its DevTools address.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(20);

/// How long one DevTools command may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Flags for a headless Chromium run as root in a sandbox without a display, GPU or network
/// beyond what the session reaches. The crate adds the leading dashes: a flag given with
/// them would reach Chromium as `----flag` and be ignored.
const FLAGS: &[&str] = &[
    "headless",
    // No tab of its own (a `chrome://newtab` page): every tab is one the agent opened or a
    // page opened.
    "no-startup-window",
    "mute-audio",
    "disable-gpu",
    "disable-dev-shm-usage",
    "no-first-run",
    "no-default-browser-check",
    "disable-background-networking",
    "disable-component-update",
    "disable-sync",
    "disable-breakpad",
];

/// The agent's one shared browser, started by the first call that needs it and started
/// again by the next call after it died.
pub(crate) struct SharedBrowser {
    ports: Arc<PortWatcher>,
    /// Held while launching, so concurrent first calls share one launch.
    running: tokio::sync::Mutex<Option<Arc<Chrome>>>,
    launches: AtomicU32,
}

impl SharedBrowser {
    pub(crate) fn new(ports: Arc<PortWatcher>) -> SharedBrowser {
        SharedBrowser { ports, running: tokio::sync::Mutex::new(None), launches: AtomicU32::new(0) }
    }

    /// The running browser, launched now if there is none (or the last one died).
    pub(crate) async fn get(&self) -> Result<Arc<Chrome>> {
        let mut running = self.running.lock().await;
        if let Some(chrome) = running.as_ref()
            && chrome.is_alive()
        {
            return Ok(chrome.clone());
        }
        if let Some(dead) = running.take() {
            tracing::warn!("the shared browser died; starting it again");
            dead.shut_down().await;
            self.ports.release_browser_port(dead.hidden_port);
        }
        let launch = self.launches.fetch_add(1, Ordering::Relaxed) + 1;
        let chrome = Chrome::launch(&self.ports, launch).await?;
        *running = Some(chrome.clone());
        Ok(chrome)
    }

    /// The browser if it runs; never launches it.
    pub(crate) async fn running(&self) -> Option<Arc<Chrome>> {
        self.running.lock().await.as_ref().filter(|chrome| chrome.is_alive()).cloned()
    }
}

/// One running Chromium.
pub(crate) struct Chrome {
    browser: Browser,
    /// Chromium's process (the crate's child: only it reaps it, so the pid stays ours).
    pid: Option<i32>,
    devtools_port: u16,
    hidden_port: HiddenPort,
    profile: PathBuf,
    alive: watch::Receiver<bool>,
    tabs: Mutex<Tabs>,
    /// Serialises opening, closing and adopting tabs (each awaits the browser).
    tab_changes: tokio::sync::Mutex<()>,
    active: watch::Sender<Option<ActiveTab>>,
    viewport: Mutex<Viewport>,
    pub(crate) console: Arc<Console>,
    pub(crate) cast: Arc<Caster>,
}

impl Chrome {
    async fn launch(ports: &Arc<PortWatcher>, launch: u32) -> Result<Arc<Chrome>> {
        let executable = find_executable().await?;
        let profile =
            std::env::temp_dir().join(format!("flint-chromium-{}-{launch}", std::process::id()));
        remove_profile(&profile).await;
        tokio::fs::create_dir_all(&profile).await.map_err(|e| {
            unavailable(format!("creating the browser profile {}: {e}", profile.display()))
        })?;
        // The port is chosen (and hidden from the port list) before Chromium listens on it,
        // so no scan can ever report it.
        let port = free_loopback_port().await?;
        let hidden_port = ports.hide_browser_port(port);
        let viewport = Viewport::DEFAULT;
        let config = BrowserConfig::builder()
            .chrome_executable(&executable)
            // Headless through our own flag: the crate's adds `--hide-scrollbars`, and a
            // person watching the page wants its scrollbars.
            .with_head()
            .no_sandbox()
            .args(FLAGS.iter().copied())
            .user_data_dir(&profile)
            .port(port)
            .window_size(viewport.width, viewport.height)
            // The crate's viewport emulation also turns touch emulation on: tabs get ours.
            .viewport(None)
            .launch_timeout(LAUNCH_TIMEOUT)
            .request_timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| unavailable(format!("configuring chromium: {e}")))?;
        let (mut browser, mut handler) = match Browser::launch(config).await {
            Ok(launched) => launched,
            Err(e) => {
                ports.release_browser_port(hidden_port);
                remove_profile(&profile).await;
                return Err(unavailable(format!(
                    "chromium ({}) did not start: {e}",
                    executable.display()
                )));
            }
        };
        let devtools_port = devtools_port(browser.websocket_address()).unwrap_or(port);
        let mut hidden_port = hidden_port;
        if devtools_port != port {
            // Not expected: Chromium was told the port. Hide the one it uses.
            tracing::warn!(asked = port, got = devtools_port, "chromium chose its own port");
            ports.release_browser_port(hidden_port);
            hidden_port = ports.hide_browser_port(devtools_port);
        }
        tracing::info!(
            executable = %executable.display(),
            devtools = %browser.websocket_address(),
            "shared browser started"
        );
        let pid = browser
            .get_mut_child()
            .and_then(|child| child.inner.id())
            .and_then(|pid| i32::try_from(pid).ok());
        let (alive_tx, alive) = watch::channel(true);
        let alive_tx = Arc::new(alive_tx);
        // The handler drives the DevTools connection: it must be polled all the time, and
        // an error (Chromium 156 sends events this crate cannot parse) is no reason to stop.
        let ended = alive_tx.clone();
        tokio::spawn(async move {
            while let Some(event) = handler.next().await {
                if let Err(e) = event {
                    tracing::debug!("browser connection: {e}");
                }
            }
            tracing::info!("the shared browser's connection ended");
            ended.send_replace(false);
        });
        // The handler does not end when the connection closes (it waits on), so Chromium's
        // death is seen on its process.
        if let Some(pid) = pid {
            tokio::spawn(watch_process(pid, alive_tx));
        }
        // Once it is gone, its port is an ordinary port again.
        let mut gone = alive.clone();
        let watcher = ports.clone();
        tokio::spawn(async move {
            let _ = gone.wait_for(|alive| !*alive).await;
            watcher.release_browser_port(hidden_port);
        });
        let (active, _) = watch::channel(None);
        let chrome = Arc::new(Chrome {
            browser,
            pid,
            devtools_port,
            hidden_port,
            profile,
            alive: alive.clone(),
            tabs: Mutex::default(),
            tab_changes: tokio::sync::Mutex::new(()),
            active,
            viewport: Mutex::new(viewport),
            console: Arc::default(),
            cast: Caster::new(),
        });
        Caster::run(chrome.cast.clone(), chrome.active.subscribe(), alive);
        Ok(chrome)
    }

    pub(crate) fn is_alive(&self) -> bool {
        *self.alive.borrow()
    }

    pub(crate) fn devtools_port(&self) -> u16 {
        self.devtools_port
    }

    pub(crate) fn viewport(&self) -> Viewport {
        *self.viewport.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn tabs(&self) -> MutexGuard<'_, Tabs> {
        self.tabs.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Kills Chromium and removes its profile.
    async fn shut_down(&self) {
        self.tabs().open.clear();
        if let Some(pid) = self.pid {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            // Its profile is removed once it stopped writing there.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            while process_runs(pid).await && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        remove_profile(&self.profile).await;
    }
}

/// How often Chromium's process is checked on.
const WATCH_INTERVAL: Duration = Duration::from_millis(500);

/// Marks the browser dead when its process has exited.
async fn watch_process(pid: i32, alive: Arc<watch::Sender<bool>>) {
    let mut ticker = tokio::time::interval(WATCH_INTERVAL);
    loop {
        ticker.tick().await;
        if !*alive.borrow() {
            return;
        }
        if !process_runs(pid).await {
            tracing::warn!(pid, "chromium exited");
            alive.send_replace(false);
            return;
        }
    }
}

/// Is `pid` a live process (not gone, not a zombie)?
async fn process_runs(pid: i32) -> bool {
    let Ok(stat) = tokio::fs::read_to_string(format!("/proc/{pid}/stat")).await else {
        return false;
    };
    // `pid (comm) state ...`: the state follows the last parenthesis.
    let state = stat.rfind(')').and_then(|end| stat[end + 1..].split_whitespace().next());
    !matches!(state, None | Some("Z" | "X" | "x"))
}

/// `FLINT_CHROMIUM`, else `/usr/bin/chromium`, else `chromium` or `chromium-browser` on
/// `PATH`.
async fn find_executable() -> Result<PathBuf> {
    if let Some(named) = std::env::var_os(CHROMIUM_ENV).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(named);
        return if is_file(&path).await {
            Ok(path)
        } else {
            Err(unavailable(format!(
                "{CHROMIUM_ENV} names {}, which is not a file",
                path.display()
            )))
        };
    }
    let default = Path::new("/usr/bin/chromium");
    if is_file(default).await {
        return Ok(default.to_path_buf());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser"] {
            let candidate = dir.join(name);
            if is_file(&candidate).await {
                return Ok(candidate);
            }
        }
    }
    Err(unavailable(format!(
        "no chromium in this sandbox: install the `chromium` package in the image or set \
         {CHROMIUM_ENV}"
    )))
}

async fn is_file(path: &Path) -> bool {
    tokio::fs::metadata(path).await.is_ok_and(|m| m.is_file())
}

/// A port nothing listens on now, on loopback.
async fn free_loopback_port() -> Result<u16> {
    let probe = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
        .await
        .map_err(|e| unavailable(format!("finding a port for devtools: {e}")))?;
    let port = probe
        .local_addr()
        .map_err(|e| unavailable(format!("finding a port for devtools: {e}")))?
        .port();
    Ok(port)
}

/// The port of `ws://127.0.0.1:PORT/devtools/browser/...`.
fn devtools_port(websocket: &str) -> Option<u16> {
    let rest = websocket.strip_prefix("ws://")?;
    let authority = rest.split('/').next()?;
    authority.rsplit_once(':')?.1.parse().ok()
}

async fn remove_profile(profile: &Path) {
    match tokio::fs::remove_dir_all(profile).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!("removing the browser profile {}: {e}", profile.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::devtools_port;

    #[test]
    fn the_devtools_port_comes_from_the_websocket_address() {
        assert_eq!(devtools_port("ws://127.0.0.1:9222/devtools/browser/abc-def"), Some(9222));
        assert_eq!(devtools_port("ws://127.0.0.1/devtools/browser/x"), None);
        assert_eq!(devtools_port("http://127.0.0.1:1/"), None);
    }
}
