//! The `process` driver: the guest agent in fresh mount, pid, uts, ipc and network
//! namespaces (bubblewrap), on an overlay root (the image read-only below, a per-sandbox
//! upper), inside a cgroup with memory, pids and CPU limits.
//!
//! **Weak isolation.** There is no user namespace: sandbox root is host uid 0 with a reduced
//! capability set (Docker's default set without `CAP_MKNOD`, no `CAP_SYS_ADMIN`, no
//! `CAP_NET_ADMIN`) and
//! `no_new_privs` (bubblewrap sets it), and seccomp filters ([`super::seccomp`]: no
//! keyring, eBPF, modules or new user namespaces). A single-uid user namespace would make every
//! root-owned image file `nobody` inside (apt and `/etc` break), and a full id-range mapping
//! needs the image shifted; until then this driver is labelled weak isolation in the API.
//!
//! Its disk is the session's [`Volume`](super::volume::Volume): an ext4 image of `disk_mb` holding `/workspace` and
//! the overlay's upper layer, mounted by the launcher inside the sandbox's mount namespace.
//!
//! The sandbox runs detached from the server (`setsid --fork`, stdio to a log file, no
//! die-with-parent), so a server restart finds it alive and re-adopts it. The overlay is
//! mounted inside the sandbox's own mount namespace: when the last process dies, the mount
//! goes with it.

use std::ffi::OsStr;

use anyhow::Context as _;

use crate::sandbox::{CAPABILITIES, Prepared, Spec};

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
  --add-seccomp-fd 8 --add-seccomp-fd 9 \
  --clearenv \
  --setenv PATH /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --setenv HOME /root --setenv LANG C.UTF-8 --setenv TERM xterm-256color \
  --setenv FLINT_SESSION "$FLINT_ID" \
  --setenv FLINT_PREVIEW_URL "$FLINT_PREVIEW_URL" \
  --chdir /workspace \
  -- /usr/bin/tini -s -- /opt/flint/guest-agent serve \
     --listen unix:/run/flint/agent.sock --secret-file /run/flint/secret --remove-secret-file \
     --workdir /workspace \
     --env-file /etc/environment --guest-listen unix:/run/flint/mcp.sock \
     --ca-bundle /run/flint/ca-certificates.crt --first-shell \
  8<"$FLINT_SECCOMP_DENY" 9<"$FLINT_SECCOMP_ABSENT"
'
"#;

/// Writes the launcher and runs it detached; [`super::start`] waits for the agent.
pub async fn launch(spec: &Spec, prepared: &Prepared) -> anyhow::Result<()> {
    // Without `CAP_MKNOD`: root here is the host's root, and a device node it made in a
    // path the host sees would be a real one (its `/dev` is bubblewrap's, made for it).
    let caps: Vec<String> = CAPABILITIES
        .iter()
        .filter(|c| **c != "CAP_MKNOD")
        .map(|c| format!("--cap-add {c}"))
        .collect();
    let (hostname, caps) = (spec.hostname(), caps.join(" "));
    let [deny, absent] = super::seccomp::programs()?;
    let (deny_path, absent_path) =
        (prepared.dir.join("seccomp-deny.bpf"), prepared.dir.join("seccomp-absent.bpf"));
    std::fs::write(&deny_path, deny).context("writing the seccomp filter")?;
    std::fs::write(&absent_path, absent).context("writing the seccomp filter")?;
    let env: [(&str, &OsStr); 8] = [
        ("FLINT_SECCOMP_DENY", deny_path.as_ref()),
        ("FLINT_SECCOMP_ABSENT", absent_path.as_ref()),
        ("FLINT_HOSTNAME", hostname.as_ref()),
        ("FLINT_AGENT", spec.agent_bin.as_ref()),
        ("FLINT_RUN", prepared.run.as_ref()),
        ("FLINT_CAPS", caps.as_ref()),
        ("FLINT_RESOLV_CONF", prepared.resolv_conf.as_ref()),
        ("FLINT_PREVIEW_URL", spec.preview_url.as_ref()),
    ];
    prepared.launch(spec, LAUNCHER, &env).await
}
