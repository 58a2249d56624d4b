//! A sandbox's host directory (`SESSION/sandbox`): a capped tmpfs, the only place on the
//! host the guest can write (see the module above), and the identity of the agent socket in
//! it, so the server connects to that socket and nothing put in its place.

use std::path::Path;

use agent_client::client::Client;
use anyhow::{Context as _, bail};

use super::sandbox_dir;

/// The size of a sandbox's host directory (a tmpfs): the launcher, bundle, secret and CA
/// bundle (well under 1 MiB), the sandbox's log (the agent's warnings and errors), and
/// whatever the guest writes in `/run/flint`. A guest that fills it gets ENOSPC; the host's
/// disk never sees it. The pages count against the session's memory cgroup.
pub const SANDBOX_DIR_BYTES: u64 = 8 << 20;

/// Where the server records the agent socket's identity, beside the socket (out of the
/// guest's view).
pub(super) const SOCKET_ID_FILE: &str = "agent.sock.id";

/// A socket file's device and inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct SocketId {
    dev: u64,
    ino: u64,
}

impl SocketId {
    pub(super) fn parse(text: &str) -> Option<SocketId> {
        let (dev, ino) = text.trim().split_once(' ')?;
        Some(SocketId { dev: dev.parse().ok()?, ino: ino.parse().ok()? })
    }

    pub(super) fn text(self) -> String {
        format!("{} {}\n", self.dev, self.ino)
    }
}

/// Opens the agent's socket file without following a link and checks that it is a socket,
/// and `expected` if given; returns the open `O_PATH` descriptor and the identity.
pub(super) fn open_socket(
    path: &Path,
    expected: Option<SocketId>,
) -> anyhow::Result<(std::os::fd::OwnedFd, SocketId)> {
    use nix::fcntl::{OFlag, open};
    use nix::sys::stat::{Mode, SFlag, fstat};
    let fd = open(path, OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty())
        .with_context(|| format!("opening {}", path.display()))?;
    let stat = fstat(&fd).with_context(|| format!("inspecting {}", path.display()))?;
    let kind = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT;
    if kind != SFlag::S_IFSOCK {
        bail!(
            "the agent's socket {} is not a socket (a link or a file put there from inside \
             the sandbox?): refusing to connect",
            path.display()
        );
    }
    let id = SocketId { dev: stat.st_dev, ino: stat.st_ino };
    if let Some(expected) = expected
        && expected != id
    {
        bail!(
            "the agent's socket {} was replaced since the sandbox started (not the socket \
             recorded then): refusing to connect",
            path.display()
        );
    }
    Ok((fd, id))
}

/// Connects to the socket open at `fd` (through `/proc/self/fd`, so the path is never
/// resolved again) and speaks to the agent.
pub(super) async fn connect_fd(fd: &std::os::fd::OwnedFd, secret: &str) -> anyhow::Result<Client> {
    use std::os::fd::AsRawFd as _;
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let stream = tokio::net::UnixStream::connect(&path).await.context("connecting to the agent")?;
    Ok(Client::handshake(Box::new(stream), secret).await?)
}

/// Mounts the sandbox's host directory: a tmpfs of [`SANDBOX_DIR_BYTES`], `nosuid,nodev,
/// noexec`, mode 0700.
pub(super) fn mount_sandbox_dir(dir: &Path) -> anyhow::Result<()> {
    use nix::mount::{MsFlags, mount};
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let options = format!("size={SANDBOX_DIR_BYTES},mode=0700");
    mount(Some("flint-sandbox"), dir, Some("tmpfs"), flags, Some(options.as_str()))
        .with_context(|| format!("mounting a tmpfs on {}", dir.display()))
}

/// Removes a sandbox's host directory `dir`: unmounts its tmpfs (if mounted) and removes
/// what is left. Nothing if it is gone.
pub(super) fn remove_sandbox_dir(dir: &Path) -> anyhow::Result<()> {
    // Lazily: a sandbox process that still holds it lets go as it dies.
    match nix::mount::umount2(dir, nix::mount::MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(e).with_context(|| format!("unmounting {}", dir.display())),
    }
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", dir.display())),
    }
}

/// Removes a session's directory, its sandbox's tmpfs unmounted first.
pub async fn remove_session_dir(session_dir: &Path) -> anyhow::Result<()> {
    let session_dir = session_dir.to_owned();
    tokio::task::spawn_blocking(move || {
        remove_sandbox_dir(&sandbox_dir(&session_dir))?;
        match std::fs::remove_dir_all(&session_dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("removing {}", session_dir.display())),
        }
    })
    .await?
}
