//! Sandboxes: where a session's guest agent runs. Two drivers behind one shape:
//!
//! - `gvisor` ([`gvisor`]): runsc, a user-space kernel between the sandbox and the host
//!   (**strong isolation**, the default wherever `runsc` works);
//! - `process` ([`process`]): namespaces, an overlay root and cgroup limits on the host's
//!   kernel (**weak isolation**).
//!
//! Both share the rest: the session's [`Volume`] (`/workspace` and the root overlay's upper
//! layer, mounted only inside the sandbox's private mount namespace), a cgroup that every
//! process of the sandbox lives in (so "empty" means "dead"), the agent's socket in a
//! per-sandbox directory, and detached launching (`setsid --fork`, stdio to a log), so a
//! server restart finds the sandbox alive and re-adopts it.
//!
//! **What the guest can write on the host.** The per-sandbox directory (`SESSION/sandbox`:
//! launcher, bundle, secret, log, sockets) is a tmpfs of [`SANDBOX_DIR_BYTES`] mounted
//! `nosuid,nodev,noexec` on the host; the guest sees only its `run/` (at `/run/flint`). So
//! what the guest writes there (and the log it can make the agent write) stops at the cap,
//! and a device node or setuid file planted there is inert on the host. The guest can still
//! replace `agent.sock` inside it: the server connects only to the socket whose device and
//! inode it recorded when the agent first answered (kept beside, out of the guest's view),
//! opened without following links, and refuses anything else.

pub mod cgroup;
pub mod gvisor;
mod hostdir;
pub mod process;
mod seccomp;
pub mod trust;
pub mod volume;

use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use agent_client::client::Client;
use anyhow::{Context as _, bail};

use crate::sandbox::cgroup::{Cgroup, Limits};
pub use crate::sandbox::hostdir::{SANDBOX_DIR_BYTES, remove_session_dir};
use crate::sandbox::hostdir::{
    SOCKET_ID_FILE, SocketId, connect_fd, mount_sandbox_dir, open_socket, remove_sandbox_dir,
};
use crate::sandbox::volume::Volume;

/// How long a sandbox may take to answer on its agent socket.
pub const START_DEADLINE: Duration = Duration::from_secs(30);

/// How long stopping may take to kill every process.
pub const STOP_DEADLINE: Duration = Duration::from_secs(10);

/// Capabilities a sandbox's root keeps: what a root shell needs to install packages and run
/// services (Docker's default set without `CAP_NET_RAW`), nothing that administers the host.
pub const CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Host tasks allowed per guest task under gVisor (see [`Driver::host_limits`]).
pub const GVISOR_HOST_TASKS_PER_PID: u64 = 32;

/// A sandbox driver.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Driver {
    /// Namespaces and cgroups on the host's kernel.
    Process,
    /// gVisor's runsc; its state lives under `root` (`runsc --root`).
    Gvisor {
        /// runsc's state directory.
        root: PathBuf,
    },
}

impl Driver {
    /// The name the API shows (`process`, `gvisor`).
    pub fn name(&self) -> &'static str {
        match self {
            Driver::Process => "process",
            Driver::Gvisor { .. } => "gvisor",
        }
    }

    /// The cgroup limits on the host for a sandbox with `limits`. Under gVisor's platforms
    /// (ptrace, systrap) every guest process costs host tasks (stub processes and threads),
    /// and the sentry dies when it cannot make one.
    /// So gVisor's own kernel enforces `limits.pids` inside (`RLIMIT_NPROC`: a fork bomb gets
    /// `EAGAIN`), and the host cgroup allows [`GVISOR_HOST_TASKS_PER_PID`] times as many.
    pub fn host_limits(&self, limits: Limits) -> Limits {
        match self {
            Driver::Process => limits,
            Driver::Gvisor { .. } => {
                Limits { pids: limits.pids * GVISOR_HOST_TASKS_PER_PID, ..limits }
            }
        }
    }

    /// The isolation level the API shows: `weak` (the host's kernel) or `strong` (a kernel
    /// of its own between the sandbox and the host).
    pub fn isolation(&self) -> &'static str {
        match self {
            Driver::Process => "weak",
            Driver::Gvisor { .. } => "strong",
        }
    }
}

/// What to start.
#[derive(Clone, Debug)]
pub struct Spec {
    /// The session id (lower-case, DNS-safe).
    pub id: String,
    /// The driver.
    pub driver: Driver,
    /// The image's root filesystem (read-only lower layer).
    pub rootfs: PathBuf,
    /// The session's directory: its volume is kept, `sandbox/` dies with the sandbox.
    pub session_dir: PathBuf,
    /// Size of the session's volume (`/workspace` and everything written outside it), made
    /// on the first start.
    pub disk_mb: u64,
    /// The guest-agent binary, bind-mounted read-only.
    pub agent_bin: PathBuf,
    /// The cgroup, relative to each hierarchy's root.
    pub cgroup: PathBuf,
    /// Resource limits.
    pub limits: Limits,
    /// The network namespace the server wired for it; `None`: no network (loopback only).
    pub net: Option<crate::net::SandboxNet>,
    /// Its preview URLs, `{port}` standing for the port (`guest-agent mcp` tells agents).
    pub preview_url: String,
    /// The CA bundle it trusts besides its image's ([`trust`]), copied into `/run/flint`.
    pub ca_bundle: Option<PathBuf>,
}

impl Spec {
    /// The sandbox's hostname.
    pub fn hostname(&self) -> String {
        format!("flint-{}", &self.id[..self.id.len().min(8)])
    }
}

/// The directories and files a driver's launcher gets, made by [`start`].
#[derive(Debug)]
pub struct Prepared {
    /// `SESSION/sandbox`: dies with the sandbox.
    pub dir: PathBuf,
    /// Where the volume is mounted (inside the sandbox's mount namespace).
    pub mountpoint: PathBuf,
    /// Where the overlay root is mounted (idem).
    pub merged: PathBuf,
    /// Bind-mounted at `/run/flint`: the agent's sockets and its secret.
    pub run: PathBuf,
    /// The sandbox's `/etc/resolv.conf` (with networking).
    pub resolv_conf: PathBuf,
    /// The launcher script.
    pub launcher: PathBuf,
    /// The sandbox's cgroup, created with its limits.
    pub cgroup: Cgroup,
    /// The volume's image.
    pub volume: Volume,
}

/// A running sandbox.
#[derive(Clone, Debug)]
pub struct Sandbox {
    /// The session id.
    pub id: String,
    /// Its driver.
    pub driver: Driver,
    /// Its agent's socket on the host.
    pub socket: PathBuf,
    /// The socket's identity, recorded when the agent first answered: the server connects
    /// to nothing else (the guest can replace the file).
    socket_id: Option<SocketId>,
    secret: String,
    cgroup: Cgroup,
    sandbox_dir: PathBuf,
    volume: Volume,
}

fn sandbox_dir(session_dir: &Path) -> PathBuf {
    session_dir.join("sandbox")
}

/// Creates `path` and its parents with `mode`.
pub fn mkdir(path: &Path, mode: u32) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .with_context(|| format!("creating {}", path.display()))
}

/// Starts a sandbox and waits until its agent answers.
pub async fn start(spec: &Spec) -> anyhow::Result<Sandbox> {
    let dir = sandbox_dir(&spec.session_dir);
    if dir.exists() {
        bail!(
            "sandbox directory {} exists: the sandbox is running or was not cleaned up",
            dir.display()
        );
    }
    let begun = Instant::now();
    let volume = Volume::of(&spec.session_dir);
    if !volume.exists() {
        volume.create(spec.disk_mb).await?;
    }
    let volume_ms = begun.elapsed().as_millis();
    mkdir(&dir, 0o700)?;
    mount_sandbox_dir(&dir)?;
    match start_in(spec, &dir, volume).await {
        Ok(sandbox) => {
            tracing::debug!(
                session = %spec.id, volume_ms, checked_ms = begun.elapsed().as_millis(),
                "sandbox started"
            );
            Ok(sandbox)
        }
        Err(e) => {
            if let Err(e) = remove_sandbox_dir(&dir) {
                tracing::warn!(session = %spec.id, "removing a sandbox that did not start: {e:#}");
            }
            Err(e)
        }
    }
}

/// [`start`] once the sandbox's directory is mounted.
async fn start_in(spec: &Spec, dir: &Path, volume: Volume) -> anyhow::Result<Sandbox> {
    let begun = Instant::now();
    let dir = dir.to_owned();
    let (mountpoint, merged, run) = (dir.join("volume"), dir.join("merged"), dir.join("run"));
    for path in [&mountpoint, &merged] {
        mkdir(path, 0o755)?;
    }
    mkdir(&run, 0o700)?;
    let secret = crate::auth::random_hex();
    // The agent reads its copy and deletes it (`--remove-secret-file`), so nothing else in
    // the sandbox can; the server keeps its own outside the sandbox's view, for adoption.
    for path in [dir.join("secret"), run.join("secret")] {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, secret.as_bytes()))
            .with_context(|| format!("writing the agent secret {}", path.display()))?;
    }
    let resolv_conf = dir.join("resolv.conf");
    let text = match &spec.net {
        Some(net) => {
            format!(
                "# Flint: the DNS forwarder on this sandbox's gateway.\nnameserver {}\n",
                net.gateway
            )
        }
        None => "# Flint: this sandbox has no network.\n".to_owned(),
    };
    std::fs::write(&resolv_conf, text).context("writing resolv.conf")?;
    if let Some(bundle) = &spec.ca_bundle {
        std::fs::copy(bundle, run.join(trust::FILE_NAME))
            .with_context(|| format!("copying the CA bundle {}", bundle.display()))?;
    }
    let cgroup = Cgroup::at(&spec.cgroup)?;
    cgroup.create(spec.driver.host_limits(spec.limits))?;
    let prepared = Prepared {
        launcher: dir.join("launch.sh"),
        dir: dir.clone(),
        mountpoint,
        merged,
        run: run.clone(),
        resolv_conf,
        cgroup: cgroup.clone(),
        volume: volume.clone(),
    };
    let mut sandbox = Sandbox {
        id: spec.id.clone(),
        driver: spec.driver.clone(),
        socket: run.join("agent.sock"),
        socket_id: None,
        secret,
        cgroup,
        sandbox_dir: dir,
        volume,
    };
    let launched = match &spec.driver {
        Driver::Process => process::launch(spec, &prepared).await,
        Driver::Gvisor { root } => gvisor::launch(spec, &prepared, root).await,
    };
    let launched_ms = begun.elapsed().as_millis();
    let ready = match launched {
        Ok(()) => sandbox.wait_for_agent().await,
        Err(e) => Err(e),
    };
    let ready_ms = begun.elapsed().as_millis();
    match ready {
        Ok(id) => sandbox.socket_id = Some(id),
        Err(e) => {
            let log = sandbox.log_tail();
            let _ = stop(&sandbox).await;
            bail!("{e:#}; sandbox log: {log}");
        }
    }
    if let Driver::Gvisor { root } = &spec.driver
        && let Err(e) = gvisor::verify(root, spec, &prepared)
    {
        let _ = stop(&sandbox).await;
        return Err(e.context("the gVisor sandbox failed its launch check and was stopped"));
    }
    tracing::debug!(session = %spec.id, launched_ms, ready_ms, "sandbox answered");
    Ok(sandbox)
}

impl Prepared {
    /// Writes `script` as the launcher and runs it detached (`setsid --fork`: own session,
    /// stdio to `sandbox.log`, no tie to the server) as `sh launch.sh PROCS...`, so its first
    /// step can join the cgroups. Its environment is `env` and the variables every launcher
    /// reads: `FLINT_ID`, `FLINT_LOWER`, `FLINT_VOLUME_IMAGE`, `FLINT_VOLUME`, `FLINT_MERGED`,
    /// `FLINT_NETNS`.
    pub(crate) async fn launch(
        &self,
        spec: &Spec,
        script: &str,
        env: &[(&str, &std::ffi::OsStr)],
    ) -> anyhow::Result<()> {
        std::fs::write(&self.launcher, script).context("writing the launcher")?;
        let log = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(self.dir.join("sandbox.log"))
            .context("creating the sandbox log")?;
        let netns = spec.net.as_ref().map(|n| n.netns.as_os_str()).unwrap_or_default();
        let status = tokio::process::Command::new("setsid")
            .arg("--fork")
            .arg("/bin/sh")
            .arg(&self.launcher)
            .args(self.cgroup.procs_files())
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("FLINT_ID", &spec.id)
            .env("FLINT_LOWER", &spec.rootfs)
            .env("FLINT_VOLUME_IMAGE", self.volume.image())
            .env("FLINT_VOLUME", &self.mountpoint)
            .env("FLINT_MERGED", &self.merged)
            .env("FLINT_NETNS", netns)
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .status()
            .await
            .context("running setsid")?;
        if !status.success() {
            bail!("the launcher could not start: {status}");
        }
        Ok(())
    }
}

impl Sandbox {
    /// Waits until the agent answers on its socket; records the socket's identity (beside
    /// it, for a server that adopts the sandbox later) and returns it.
    async fn wait_for_agent(&self) -> anyhow::Result<SocketId> {
        let started = Instant::now();
        loop {
            if std::fs::symlink_metadata(&self.socket).is_ok() {
                // Nothing but the agent runs in the sandbox yet: this is its socket.
                let (fd, id) = open_socket(&self.socket, None)?;
                if let Ok(client) = connect_fd(&fd, &self.secret).await
                    && client.info().await.is_ok()
                {
                    std::fs::write(self.sandbox_dir.join(SOCKET_ID_FILE), id.text())
                        .context("recording the agent socket's identity")?;
                    return Ok(id);
                }
            }
            // The launcher is in the cgroup from its first instruction: empty means dead.
            if started.elapsed() > Duration::from_millis(500) && self.cgroup.pids().is_empty() {
                bail!("the sandbox exited before its agent answered");
            }
            if started.elapsed() > START_DEADLINE {
                bail!("the agent did not answer within {}s", START_DEADLINE.as_secs());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// A new connection to the sandbox's agent, on the socket recorded at its start only.
    pub async fn client(&self) -> anyhow::Result<Client> {
        let Some(expected) = self.socket_id else {
            bail!("the agent's socket has no recorded identity: refusing to connect");
        };
        let (fd, _) = open_socket(&self.socket, Some(expected))?;
        connect_fd(&fd, &self.secret).await
    }

    /// How many times the OOM killer struck inside the sandbox.
    pub fn oom_kills(&self) -> u64 {
        self.cgroup.oom_kills()
    }

    /// Processes of the sandbox on the host.
    pub fn pids(&self) -> Vec<i32> {
        self.cgroup.pids()
    }

    /// Whether the sandbox still runs: its processes (for gVisor: its kernel, the sentry;
    /// a memory limit that fires kills it and leaves the rest to wind down).
    pub fn alive(&self) -> bool {
        let pids = self.cgroup.pids();
        match &self.driver {
            Driver::Process => !pids.is_empty(),
            Driver::Gvisor { .. } => pids.iter().any(|pid| gvisor::is_sentry(*pid)),
        }
    }

    /// The memory limit in MiB, as the cgroup holds it.
    pub fn memory_mb(&self) -> u64 {
        self.cgroup.memory_limit().unwrap_or(0) >> 20
    }

    /// Applies new limits to the running sandbox (a warm sandbox handed to a session).
    pub fn set_limits(&self, limits: Limits) -> anyhow::Result<()> {
        self.cgroup.create(self.driver.host_limits(limits))
    }

    /// The last lines of the sandbox's log (the launcher's and the agent's output).
    pub fn log_tail(&self) -> String {
        let text =
            std::fs::read_to_string(self.sandbox_dir.join("sandbox.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().rev().take(10).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// Re-attaches to a sandbox that outlived a server restart; `None` if it is gone.
    pub fn adopt(
        id: &str,
        driver: Driver,
        session_dir: &Path,
        cgroup: &Path,
    ) -> anyhow::Result<Option<Sandbox>> {
        let dir = sandbox_dir(session_dir);
        let cgroup = Cgroup::at(cgroup)?;
        let run = dir.join("run");
        let Ok(secret) = std::fs::read_to_string(dir.join("secret")) else {
            return Ok(None);
        };
        if cgroup.pids().is_empty() {
            return Ok(None);
        }
        // Missing or unreadable (a sandbox of an older Flint): every connection is refused
        // and the session fails with the reason.
        let socket_id = std::fs::read_to_string(dir.join(SOCKET_ID_FILE))
            .ok()
            .and_then(|text| SocketId::parse(&text));
        Ok(Some(Sandbox {
            id: id.to_owned(),
            driver,
            socket: run.join("agent.sock"),
            socket_id,
            secret,
            cgroup,
            sandbox_dir: dir,
            volume: Volume::of(session_dir),
        }))
    }
}

/// Kills every process of the sandbox and removes every trace but `/workspace`.
pub async fn stop(sandbox: &Sandbox) -> anyhow::Result<()> {
    if let Driver::Gvisor { root } = &sandbox.driver {
        gvisor::destroy(root, &sandbox.sandbox_dir, &sandbox.id).await;
    }
    let cgroup = sandbox.cgroup.clone();
    let dir = sandbox.sandbox_dir.clone();
    tokio::task::spawn_blocking(move || {
        cgroup.kill_and_remove(STOP_DEADLINE)?;
        // The volume and overlay lived in the sandbox's mount namespace and went with its
        // last process; the directory's tmpfs is the host's.
        remove_sandbox_dir(&dir)
    })
    .await??;
    if let Driver::Gvisor { root } = &sandbox.driver {
        // runsc's own record of the container, now that nothing of it runs.
        gvisor::forget(root, &sandbox.id).await;
    }
    // The root layer is scratch: only `/workspace` outlives the sandbox.
    sandbox.volume.scrub_root().await
}
