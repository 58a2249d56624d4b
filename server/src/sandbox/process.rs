//! The `process` driver: the guest agent in fresh mount, pid, uts, ipc and network
//! namespaces (bubblewrap), on an overlay root (the image read-only below, a per-sandbox
//! upper), inside a cgroup with memory, pids and CPU limits.
//!
//! **Weak isolation.** There is no user namespace: sandbox root is host uid 0 with a reduced
//! capability set (Docker's default set, no `CAP_SYS_ADMIN`, no `CAP_NET_ADMIN`) and
//! `no_new_privs` (bubblewrap sets it). A single-uid user namespace would make every
//! root-owned image file `nobody` inside (apt and `/etc` break), and a full id-range mapping
//! needs the image shifted; until then this driver is labelled weak isolation in the API.
//!
//! Its disk is the session's [`Volume`]: an ext4 image of `disk_mb` holding `/workspace` and
//! the overlay's upper layer, mounted by the launcher inside the sandbox's mount namespace.
//!
//! The sandbox runs detached from the server (`setsid --fork`, stdio to a log file, no
//! die-with-parent), so a server restart finds it alive and re-adopts it. The overlay is
//! mounted inside the sandbox's own mount namespace: when the last process dies, the mount
//! goes with it.

use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use guest_agent::client::Client;
use guest_agent::listen::Listen;

use crate::sandbox::cgroup::{Cgroup, Limits};
use crate::sandbox::volume::Volume;

/// How long a sandbox may take to answer on its agent socket.
pub const START_DEADLINE: Duration = Duration::from_secs(20);

/// How long stopping may take to kill every process.
pub const STOP_DEADLINE: Duration = Duration::from_secs(10);

/// Capabilities a sandbox keeps: what a root shell needs to install packages and run
/// services (Docker's default set), nothing that administers the host.
const CAPABILITIES: &[&str] = &[
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

/// The launcher, run as `setsid --fork sh launch.sh PROCS...`: it joins the cgroups first,
/// mounts the session's volume and the overlay in a private mount namespace, then becomes
/// bubblewrap.
const LAUNCHER: &str = r#"#!/bin/sh
# Flint process-sandbox launcher, written by server/src/sandbox/process.rs.
set -eu
for procs in "$@"; do echo $$ > "$procs"; done
# With networking, the sandbox lives in the namespace the server wired (FLINT_NETNS);
# without, bubblewrap makes an empty one (loopback only).
if [ -n "${FLINT_NETNS:-}" ]; then
  export FLINT_NET_ARGS="--ro-bind $FLINT_RESOLV_CONF /etc/resolv.conf"
  set -- nsenter "--net=$FLINT_NETNS" --
else
  export FLINT_NET_ARGS="--unshare-net"
  set --
fi
exec "$@" unshare --mount --propagation private /bin/sh -eu -c '
mount -o loop,discard "$FLINT_VOLUME_IMAGE" "$FLINT_VOLUME"
mkdir -p "$FLINT_VOLUME/workspace" "$FLINT_VOLUME/root/upper" "$FLINT_VOLUME/root/work"
mount -t overlay "flint-$FLINT_ID" -o "lowerdir=$FLINT_LOWER,upperdir=$FLINT_VOLUME/root/upper,workdir=$FLINT_VOLUME/root/work" "$FLINT_MERGED"
exec bwrap \
  --bind "$FLINT_MERGED" / \
  --dev /dev --proc /proc --tmpfs /tmp --tmpfs /run \
  --bind "$FLINT_VOLUME/workspace" /workspace \
  --ro-bind "$FLINT_AGENT" /opt/flint/guest-agent \
  --bind "$FLINT_RUN" /run/flint \
  --unshare-ipc --unshare-pid --unshare-uts $FLINT_NET_ARGS --unshare-cgroup-try \
  --hostname "$FLINT_HOSTNAME" \
  --new-session \
  --cap-drop ALL $FLINT_CAPS \
  --clearenv \
  --setenv PATH /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --setenv HOME /root --setenv LANG C.UTF-8 --setenv TERM xterm-256color \
  --setenv FLINT_SESSION "$FLINT_ID" \
  --setenv FLINT_PREVIEW_URL "$FLINT_PREVIEW_URL" \
  --chdir /workspace \
  -- /usr/bin/tini -s -- /opt/flint/guest-agent serve \
     --listen unix:/run/flint/agent.sock --secret-file /run/flint/secret --remove-secret-file \
     --workdir /workspace \
     --env-file /etc/environment --guest-listen unix:/run/flint/mcp.sock
'
"#;

/// What to start.
#[derive(Clone, Debug)]
pub struct Spec {
    /// The session id (lower-case, DNS-safe).
    pub id: String,
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
}

/// A running sandbox.
#[derive(Clone, Debug)]
pub struct Sandbox {
    /// The session id.
    pub id: String,
    /// Its agent's socket on the host.
    pub socket: PathBuf,
    secret: String,
    cgroup: Cgroup,
    sandbox_dir: PathBuf,
    volume: Volume,
}

fn sandbox_dir(session_dir: &Path) -> PathBuf {
    session_dir.join("sandbox")
}

fn mkdir(path: &Path, mode: u32) -> anyhow::Result<()> {
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
    let volume = Volume::of(&spec.session_dir);
    if !volume.exists() {
        volume.create(spec.disk_mb).await?;
    }
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
    if let Some(net) = &spec.net {
        let text = format!(
            "# Flint: the DNS forwarder on this sandbox's gateway.\nnameserver {}\n",
            net.gateway
        );
        std::fs::write(&resolv_conf, text).context("writing resolv.conf")?;
    }
    let launcher = dir.join("launch.sh");
    std::fs::write(&launcher, LAUNCHER).context("writing the launcher")?;

    let cgroup = Cgroup::at(&spec.cgroup)?;
    cgroup.create(spec.limits)?;
    let log = std::fs::File::create(dir.join("sandbox.log")).context("creating the sandbox log")?;
    let caps: Vec<String> = CAPABILITIES.iter().map(|c| format!("--cap-add {c}")).collect();
    let status = tokio::process::Command::new("setsid")
        .arg("--fork")
        .arg("/bin/sh")
        .arg(&launcher)
        .args(cgroup.procs_files())
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("FLINT_ID", &spec.id)
        .env("FLINT_HOSTNAME", format!("flint-{}", &spec.id[..spec.id.len().min(8)]))
        .env("FLINT_LOWER", &spec.rootfs)
        .env("FLINT_VOLUME_IMAGE", volume.image())
        .env("FLINT_VOLUME", &mountpoint)
        .env("FLINT_MERGED", &merged)
        .env("FLINT_AGENT", &spec.agent_bin)
        .env("FLINT_RUN", &run)
        .env("FLINT_CAPS", caps.join(" "))
        .env("FLINT_NETNS", spec.net.as_ref().map(|n| n.netns.as_os_str()).unwrap_or_default())
        .env("FLINT_RESOLV_CONF", &resolv_conf)
        .env("FLINT_PREVIEW_URL", &spec.preview_url)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .status()
        .await
        .context("running setsid")?;
    if !status.success() {
        bail!("the launcher could not start: {status}");
    }
    let sandbox = Sandbox {
        id: spec.id.clone(),
        socket: run.join("agent.sock"),
        secret,
        cgroup,
        sandbox_dir: dir,
        volume,
    };
    if let Err(e) = sandbox.wait_for_agent().await {
        let log = sandbox.log_tail();
        let _ = stop(&sandbox).await;
        bail!("{e}; sandbox log: {log}");
    }
    Ok(sandbox)
}

impl Sandbox {
    async fn wait_for_agent(&self) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            if self.socket.exists()
                && let Ok(client) = self.client().await
                && client.info().await.is_ok()
            {
                return Ok(());
            }
            // The launcher is in the cgroup from its first instruction: empty means dead.
            if started.elapsed() > Duration::from_millis(500) && self.cgroup.pids().is_empty() {
                bail!("the sandbox exited before its agent answered");
            }
            if started.elapsed() > START_DEADLINE {
                bail!("the agent did not answer within {}s", START_DEADLINE.as_secs());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A new connection to the sandbox's agent.
    pub async fn client(&self) -> anyhow::Result<Client> {
        Ok(Client::connect(&Listen::Unix(self.socket.clone()), &self.secret).await?)
    }

    /// How many times the OOM killer struck inside the sandbox.
    pub fn oom_kills(&self) -> u64 {
        self.cgroup.oom_kills()
    }

    /// Processes of the sandbox on the host.
    pub fn pids(&self) -> Vec<i32> {
        self.cgroup.pids()
    }

    /// The last lines of the sandbox's log (the launcher's and the agent's output).
    pub fn log_tail(&self) -> String {
        let text =
            std::fs::read_to_string(self.sandbox_dir.join("sandbox.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().rev().take(10).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// Re-attaches to a sandbox that outlived a server restart; `None` if it is gone.
    pub fn adopt(id: &str, session_dir: &Path, cgroup: &Path) -> anyhow::Result<Option<Sandbox>> {
        let dir = sandbox_dir(session_dir);
        let cgroup = Cgroup::at(cgroup)?;
        let run = dir.join("run");
        let Ok(secret) = std::fs::read_to_string(dir.join("secret")) else {
            return Ok(None);
        };
        if cgroup.pids().is_empty() {
            return Ok(None);
        }
        Ok(Some(Sandbox {
            id: id.to_owned(),
            socket: run.join("agent.sock"),
            secret,
            cgroup,
            sandbox_dir: dir,
            volume: Volume::of(session_dir),
        }))
    }
}

/// Kills every process of the sandbox and removes every trace but `/workspace`.
pub async fn stop(sandbox: &Sandbox) -> anyhow::Result<()> {
    let cgroup = sandbox.cgroup.clone();
    let dir = sandbox.sandbox_dir.clone();
    tokio::task::spawn_blocking(move || {
        cgroup.kill_and_remove(STOP_DEADLINE)?;
        // The mounts lived in the sandbox's mount namespace and went with its last process.
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("removing {}", dir.display())),
        }
    })
    .await??;
    // The root layer is scratch: only `/workspace` outlives the sandbox.
    sandbox.volume.scrub_root().await
}
