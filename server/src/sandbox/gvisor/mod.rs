//! The `gvisor` driver: the guest agent under runsc (gVisor's user-space kernel, systrap
//! platform: [`PLATFORM`]), so the sandbox's system calls never reach the host's kernel directly.
//!
//! - **Root.** The same overlay as the `process` driver (the image read-only below, the
//!   upper layer on the session's [`Volume`](super::volume::Volume)), mounted by the launcher in
//!   a private mount namespace and handed to runsc as a writable root with no overlay of
//!   runsc's own (`--overlay2=none`). If the overlay is not mounted, `set -e` stops the
//!   launcher and runsc never starts; the bundle's root is an empty directory, never the
//!   shared image (fails closed).
//! - **Network.** `--network=sandbox` in the namespace the server wired (runsc takes the
//!   veth over), `--network=none` without. runsc takes any namespace that has
//!   `/proc/sys/net/core/rmem_default` for the host's and refuses sandbox networking
//!   (MACHINE.md): the launcher hides `/proc/sys/net` under a tmpfs in its mount namespace.
//! - **The agent's channel.** `--host-uds=create`: the agent's listener in the bind-mounted
//!   `/run/flint` is a socket the host connects to. Nothing in the sandbox can connect out
//!   to a host socket, and there are no host FIFOs.
//! - **Limits.** The sandbox's cgroup (runsc is told to leave cgroups alone): the sentry, the
//!   gofer and the platform's stubs all live in it. A memory limit that fires kills the sentry:
//!   the whole sandbox ends, and the server reports it as the session's failure.
//! - **Checked after launch** ([`verify`], in `verify.rs`): every runsc process's command line and the
//!   bundle's `config.json` read back; the sandbox is stopped unless they are as written.
//! - **The preload shim** (`preload.c`, built by `build.rs`), preloaded through a read-only
//!   `/etc/ld.so.preload`: opens the controlling terminal where runsc's `/dev/tty` fails
//!   with EIO, and drops `AT_NO_AUTOMOUNT` from `statx` (which bookworm's runsc refused).
//! - **Detached.** `setsid --fork`, `runsc --root` under the data directory, stdio through a
//!   `cat` into the log (runsc garbles output written to a regular file at its own offset).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, ensure};
use serde_json::{Value, json};

use crate::sandbox::{CAPABILITIES, Prepared, Spec};

mod verify;
pub use verify::{is_sentry, verify};

/// The preload shim (see the module's documentation).
const SHIM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/flint-preload.so"));

/// Where the shim is inside a sandbox.
const SHIM_GUEST: &str = "/opt/flint/preload.so";

/// The shim's file beside runsc's state.
fn shim_path(root: &Path) -> PathBuf {
    root.join("flint-preload.so")
}

/// Writes the shim beside runsc's state (once per content) and returns its path.
fn shim(root: &Path) -> anyhow::Result<PathBuf> {
    let path = shim_path(root);
    if std::fs::read(&path).is_ok_and(|bytes| bytes == SHIM) {
        return Ok(path);
    }
    let temp = root.join(format!("flint-preload.so.{}", std::process::id()));
    std::fs::write(&temp, SHIM).context("writing the preload shim")?;
    std::fs::rename(&temp, &path).context("installing the preload shim")?;
    Ok(path)
}

/// How long a runsc command may take.
const RUNSC_DEADLINE: Duration = Duration::from_secs(15);

/// How the sentry intercepts the sandbox's system calls. systrap (seccomp traps served
/// through shared memory) costs ~9 µs a call here where ptrace costs ~39 µs (400,000 one-byte
/// `dd` reads and writes: 3.4 s against 15.8 s), which is most of what a terminal, a preview
/// or a build does; KVM hangs on these hosts (PVM, MACHINE.md).
pub const PLATFORM: &str = "systrap";

/// Flags every sandbox is started with (before `run`).
fn flags(spec: &Spec) -> Vec<String> {
    let network = if spec.net.is_some() { "sandbox" } else { "none" };
    [
        format!("--platform={PLATFORM}"),
        format!("--network={network}"),
        "--host-uds=create".to_owned(),
        "--host-fifo=none".to_owned(),
        "--overlay2=none".to_owned(),
        "--ignore-cgroups".to_owned(),
        "--net-raw=false".to_owned(),
        "--allow-flag-override=false".to_owned(),
    ]
    .to_vec()
}

/// The launcher, run as `setsid --fork sh launch.sh PROCS...`: it joins the cgroups, enters
/// the sandbox's network namespace, mounts the volume and the overlay in a private mount
/// namespace, then runs runsc detached, its output through `cat` into the log.
const LAUNCHER: &str = r#"#!/bin/sh
# Flint gVisor-sandbox launcher, written by server/src/sandbox/gvisor.rs.
set -eu
for procs in "$@"; do echo $$ > "$procs"; done
if [ -n "${FLINT_NETNS:-}" ]; then
  set -- nsenter "--net=$FLINT_NETNS" --
else
  set --
fi
"$@" unshare --mount --propagation private /bin/sh -eu -c '
mount -t tmpfs -o size=16k,mode=0555 flint-sysnet /proc/sys/net
mount -o loop,discard "$FLINT_VOLUME_IMAGE" "$FLINT_VOLUME"
mkdir -p "$FLINT_VOLUME/workspace" "$FLINT_VOLUME/root/upper" "$FLINT_VOLUME/root/work"
mount -t overlay "flint-$FLINT_ID" -o "lowerdir=$FLINT_LOWER,upperdir=$FLINT_VOLUME/root/upper,workdir=$FLINT_VOLUME/root/work" "$FLINT_MERGED"
exec runsc --root "$FLINT_RUNSC_ROOT" $FLINT_RUNSC_FLAGS run --detach --bundle "$FLINT_BUNDLE" "$FLINT_ID"
' 2>&1 | cat
"#;

/// The OCI bundle's `config.json`.
fn config(spec: &Spec, prepared: &Prepared, shim: &Path) -> Value {
    let caps: Vec<&str> = CAPABILITIES.to_vec();
    let network = match &spec.net {
        Some(net) => json!({ "type": "network", "path": net.netns }),
        None => json!({ "type": "network" }),
    };
    let workspace = prepared.mountpoint.join("workspace");
    // Enforced by gVisor's kernel, so that neither host limit is reached: the host cgroup's
    // tasks (see `Driver::host_limits`), nor its memory, which each guest process also costs
    // in the sentry and its stub (about 1 MiB): a fork bomb is held, the sandbox lives.
    let guest_processes = guest_tasks(spec.limits);
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "user": { "uid": 0, "gid": 0 },
            "args": [
                "/usr/bin/tini", "-s", "--", "/opt/flint/guest-agent", "serve",
                "--listen", "unix:/run/flint/agent.sock",
                "--secret-file", "/run/flint/secret", "--remove-secret-file",
                "--workdir", "/workspace", "--env-file", "/etc/environment",
                "--guest-listen", "unix:/run/flint/mcp.sock",
                "--ca-bundle", "/run/flint/ca-certificates.crt",
                // gVisor's pty sends no SIGWINCH on a resize.
                "--signal-resize",
                // The prompt is ready sooner (see the agent's `--first-shell`).
                "--first-shell",
            ],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "HOME=/root",
                "LANG=C.UTF-8",
                "TERM=xterm-256color",
                format!("FLINT_SESSION={}", spec.id),
                format!("FLINT_PREVIEW_URL={}", spec.preview_url),
            ],
            "cwd": "/workspace",
            "capabilities": {
                "bounding": caps, "effective": caps, "inheritable": caps, "permitted": caps,
            },
            "rlimits": [
                { "type": "RLIMIT_NOFILE", "hard": 65536, "soft": 65536 },
                { "type": "RLIMIT_NPROC", "hard": guest_processes, "soft": guest_processes },
            ],
            "noNewPrivileges": true,
        },
        "root": { "path": prepared.merged, "readonly": false },
        "hostname": spec.hostname(),
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs" },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
              "options": ["nosuid", "nodev", "mode=1777"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs",
              "options": ["nosuid", "noexec", "nodev", "ro"] },
            { "destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "nodev", "mode=1777"] },
            { "destination": "/run", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "nodev", "mode=755"] },
            { "destination": "/run/flint", "type": "bind", "source": prepared.run,
              "options": ["rbind", "rw"] },
            { "destination": "/workspace", "type": "bind", "source": workspace,
              "options": ["rbind", "rw"] },
            { "destination": "/opt/flint/guest-agent", "type": "bind", "source": spec.agent_bin,
              "options": ["rbind", "ro"] },
            { "destination": "/etc/resolv.conf", "type": "bind", "source": prepared.resolv_conf,
              "options": ["rbind", "ro"] },
            { "destination": SHIM_GUEST, "type": "bind", "source": shim,
              "options": ["rbind", "ro"] },
            { "destination": "/etc/ld.so.preload", "type": "bind", "source": preload(prepared),
              "options": ["rbind", "ro"] },
        ],
        "linux": {
            "namespaces": [
                { "type": "pid" }, network, { "type": "ipc" }, { "type": "uts" },
                { "type": "mount" },
            ],
        },
    })
}

/// Tasks (processes and threads) a gVisor sandbox with `limits` may have: its pids limit,
/// at most one per 2 MiB of its memory.
pub fn guest_tasks(limits: crate::sandbox::cgroup::Limits) -> u64 {
    limits.pids.min(limits.memory_mb / 2).max(32)
}

fn preload(prepared: &Prepared) -> PathBuf {
    prepared.dir.join("ld.so.preload")
}

fn bundle(prepared: &Prepared) -> PathBuf {
    prepared.dir.join("bundle")
}

/// Writes the bundle and the launcher and runs it detached; [`super::start`] waits for the
/// agent, then calls [`verify`].
pub async fn launch(spec: &Spec, prepared: &Prepared, root: &Path) -> anyhow::Result<()> {
    // Fail closed: the root handed to runsc is the overlay's mount point, never the image.
    ensure!(prepared.merged != spec.rootfs, "refusing the image directory as a sandbox root");
    super::mkdir(root, 0o700)?;
    let bundle = bundle(prepared);
    super::mkdir(&bundle, 0o700)?;
    let shim = shim(root)?;
    std::fs::write(preload(prepared), format!("{SHIM_GUEST}\n"))
        .context("writing ld.so.preload")?;
    let config = serde_json::to_vec_pretty(&config(spec, prepared, &shim))?;
    std::fs::write(bundle.join("config.json"), config).context("writing config.json")?;
    let netns = spec.net.as_ref().map(|n| n.netns.display().to_string()).unwrap_or_default();
    std::fs::write(prepared.dir.join("netns"), netns).context("recording the netns")?;
    let flags = flags(spec).join(" ");
    let env: [(&str, &std::ffi::OsStr); 3] = [
        ("FLINT_RUNSC_ROOT", root.as_ref()),
        ("FLINT_RUNSC_FLAGS", flags.as_ref()),
        ("FLINT_BUNDLE", bundle.as_ref()),
    ];
    prepared.launch(spec, LAUNCHER, &env).await
}

/// The network namespace a sandbox was started in, as recorded in its directory.
fn recorded_netns(sandbox_dir: &Path) -> Option<PathBuf> {
    std::fs::read_to_string(sandbox_dir.join("netns"))
        .ok()
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
}

/// Runs runsc in the sandbox's network namespace: its control socket is an abstract unix
/// socket, which lives in a network namespace (from any other, runsc takes the sandbox for
/// stopped).
async fn runsc(
    root: &Path,
    netns: Option<&Path>,
    args: &[&str],
) -> anyhow::Result<std::process::Output> {
    let mut command = match netns {
        Some(netns) => {
            let mut command = tokio::process::Command::new("nsenter");
            command.arg(format!("--net={}", netns.display())).arg("--").arg("runsc");
            command
        }
        None => tokio::process::Command::new("runsc"),
    };
    let command = command
        .arg("--root")
        .arg(root)
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(RUNSC_DEADLINE, command)
        .await
        .with_context(|| format!("runsc {} timed out", args.join(" ")))?
        .context("running runsc (Debian package runsc)")
}

/// Kills the container (`runsc delete --force`); what is left dies with the cgroup.
pub async fn destroy(root: &Path, sandbox_dir: &Path, id: &str) {
    let netns = recorded_netns(sandbox_dir).filter(|p| p.exists());
    match runsc(root, netns.as_deref(), &["delete", "--force", id]).await {
        Ok(output) if output.status.success() => {}
        Ok(output) => {
            tracing::debug!(session = %id, "runsc delete: {}", String::from_utf8_lossy(&output.stderr).trim());
        }
        Err(e) => tracing::warn!(session = %id, "runsc delete: {e:#}"),
    }
}

/// Removes runsc's state files of a container whose processes are all gone.
pub async fn forget(root: &Path, id: &str) {
    let _ = runsc(root, None, &["delete", "--force", id]).await;
    let Ok(entries) = std::fs::read_dir(root) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&format!("{id}_")) || name == id {
            let path = entry.path();
            let _ = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
        }
    }
}

/// The oldest gVisor release whose ptys are real terminals: bookworm's 20221219 ignores
/// Ctrl-C and Ctrl-Z, refuses `tcsetattr(TCSAFLUSH)` and leaves `npm` hanging at exit.
const FIRST_REAL_TERMINAL_RELEASE: u32 = 20240729;

/// The release date in a `runsc --version` version (`0.0~20240729.0`, `release-20240729.0`).
pub fn release_date(version: &str) -> Option<u32> {
    let digits: String = version
        .trim_start_matches("release-")
        .trim_start_matches("0.0~")
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    (digits.len() == 8).then(|| digits.parse().ok()).flatten()
}

/// What is wrong with the installed runsc for a person at a terminal, if anything: said in
/// the log and on the sessions page, as weak isolation is.
pub async fn version_warning() -> Option<String> {
    let output = tokio::process::Command::new("runsc")
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(RUNSC_DEADLINE, output).await.ok()?.ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let version = text.lines().next()?.strip_prefix("runsc version ")?.trim().to_owned();
    match release_date(&version) {
        Some(date) if date >= FIRST_REAL_TERMINAL_RELEASE => None,
        _ => Some(format!(
            "runsc {version} is older than {FIRST_REAL_TERMINAL_RELEASE}: under gVisor, Ctrl-C \
             and Ctrl-Z reach nothing and full-screen programs fail; `cargo xtask test setup` \
             installs Debian trixie's runsc"
        )),
    }
}

/// Whether runsc can run a sandbox here: runs `true` from `rootfs` with no network, under
/// a scratch root in `scratch`. `Err` says why not.
pub async fn probe(rootfs: &Path, scratch: &Path) -> anyhow::Result<()> {
    let _ = std::fs::remove_dir_all(scratch);
    let bundle = scratch.join("bundle");
    let state = scratch.join("state");
    super::mkdir(&bundle, 0o700)?;
    super::mkdir(&state, 0o700)?;
    let config = json!({
        "ociVersion": "1.0.2",
        "process": { "user": { "uid": 0, "gid": 0 }, "args": ["/bin/true"], "cwd": "/",
                     "env": ["PATH=/usr/bin:/bin"] },
        "root": { "path": rootfs, "readonly": true },
        "mounts": [ { "destination": "/proc", "type": "proc", "source": "proc" } ],
        "linux": { "namespaces": [ { "type": "pid" }, { "type": "network" },
                                   { "type": "ipc" }, { "type": "uts" }, { "type": "mount" } ] },
    });
    std::fs::write(bundle.join("config.json"), serde_json::to_vec(&config)?)?;
    let output = tokio::process::Command::new("runsc")
        .arg("--root")
        .arg(&state)
        .arg(format!("--platform={PLATFORM}"))
        .args(["--network=none", "--ignore-cgroups", "run", "--bundle"])
        .arg(&bundle)
        // Unique: a sandbox's control socket is an abstract socket named after its id, and
        // servers starting at once probe in the same network namespace.
        .arg(format!("flint-probe-{}", crate::auth::random_id()))
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(RUNSC_DEADLINE, output).await;
    let _ = std::fs::remove_dir_all(scratch);
    let output = output.context("runsc did not finish a `true` in time")?.context("runsc")?;
    ensure!(
        output.status.success(),
        "runsc could not run `true`: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_dates_are_read_from_debian_and_upstream_versions() {
        assert_eq!(release_date("0.0~20240729.0"), Some(20240729));
        assert_eq!(release_date("0.0~20221219.0"), Some(20221219));
        assert_eq!(release_date("release-20260608.0"), Some(20260608));
        assert_eq!(release_date("garbage"), None);
        assert_eq!(release_date("0.0~2024"), None);
    }
}
