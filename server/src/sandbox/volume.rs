//! A session's disk: one sparse ext4 image (`volume.img`) of the session's `disk_mb`, holding
//! `/workspace` and the root overlay's writable layer (`root/`). The filesystem's size is the
//! disk cap: a sandbox that fills it gets `ENOSPC` and the host's disk is untouched.
//!
//! The image is only ever mounted inside a private mount namespace: the sandbox's own (by its
//! launcher) or a short-lived one on the host side (to scrub the root layer at stop, or to
//! export `/workspace` of a stopped session). No mount of it is ever visible on the host, and a
//! loop device is released when its namespace's last process exits (`autoclear`). Two
//! read-write mounts of one image would corrupt it, so the host side waits until no loop
//! device still holds the image before it mounts.

use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// How long a stopped sandbox's loop device may take to be released.
const RELEASE_DEADLINE: Duration = Duration::from_secs(10);

/// The mount helper: `sh -euc SCRIPT volume IMAGE MOUNTPOINT OPTIONS [ARGS...]` mounts the
/// image, then runs the rest of the script with `$MNT` set.
const MOUNTED: &str = r#"
image=$1 mnt=$2 options=$3; shift 3
mount -o "loop,$options" "$image" "$mnt"
MNT=$mnt
"#;

/// One session's volume.
#[derive(Clone, Debug)]
pub struct Volume {
    image: PathBuf,
    mountpoint: PathBuf,
}

impl Volume {
    /// The volume of the session whose directory is `session_dir` (it may not exist yet).
    pub fn of(session_dir: &Path) -> Volume {
        Volume { image: session_dir.join("volume.img"), mountpoint: session_dir.join("mnt") }
    }

    /// The image file.
    pub fn image(&self) -> &Path {
        &self.image
    }

    /// True once the image exists.
    pub fn exists(&self) -> bool {
        self.image.exists()
    }

    /// Creates an empty ext4 image of `size_mb` (sparse: it takes host disk only as it fills).
    pub async fn create(&self, size_mb: u64) -> anyhow::Result<()> {
        if let Some(parent) = self.image.parent() {
            // The session's directory (and `sessions/` with it): root's alone.
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::create_dir_all(&self.mountpoint)
            .with_context(|| format!("creating {}", self.mountpoint.display()))?;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&self.image)
            .with_context(|| format!("creating {}", self.image.display()))?;
        file.set_len(size_mb * 1024 * 1024).context("sizing the volume")?;
        drop(file);
        // No reserved blocks (the sandbox's root may use all of it); inode tables and journal
        // are initialised lazily, so a 4 GiB volume is made in tens of milliseconds.
        let output = tokio::process::Command::new("mkfs.ext4")
            .args(["-q", "-F", "-m", "0", "-E", "lazy_itable_init=1,lazy_journal_init=1"])
            .arg(&self.image)
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .stdin(Stdio::null())
            .output()
            .await
            .context("running mkfs.ext4 (package e2fsprogs)")?;
        if !output.status.success() {
            bail!("mkfs.ext4 failed: {}", String::from_utf8_lossy(&output.stderr).trim());
        }
        Ok(())
    }

    /// Loop devices that still hold the image (a sandbox's, until its namespace is gone).
    fn holders(&self) -> Vec<String> {
        let Ok(image) = std::fs::canonicalize(&self.image) else {
            return Vec::new();
        };
        let Ok(devices) = std::fs::read_dir("/sys/block") else {
            return Vec::new();
        };
        devices
            .flatten()
            .filter(|device| {
                std::fs::read_to_string(device.path().join("loop/backing_file"))
                    .is_ok_and(|backing| Path::new(backing.trim()) == image)
            })
            .map(|device| device.file_name().to_string_lossy().into_owned())
            .collect()
    }

    /// True while a loop device (a running sandbox's) holds the image.
    pub fn in_use(&self) -> bool {
        !self.holders().is_empty()
    }

    /// Waits until no loop device holds the image.
    async fn wait_released(&self) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            let holders = self.holders();
            if holders.is_empty() {
                return Ok(());
            }
            if started.elapsed() > RELEASE_DEADLINE {
                bail!("{} is still held by {}", self.image.display(), holders.join(", "));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// `script` in a private mount namespace with the volume mounted at `$MNT`.
    fn mounted(&self, options: &str, script: &str) -> tokio::process::Command {
        let mut command = tokio::process::Command::new("unshare");
        command
            .args(["--mount", "--propagation", "private", "/bin/sh", "-euc"])
            .arg(format!("{MOUNTED}{script}"))
            .arg("volume")
            .arg(&self.image)
            .arg(&self.mountpoint)
            .arg(options)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        command
    }

    /// Deletes the root overlay's writable layer (what a stopped sandbox wrote outside
    /// `/workspace`). Call after the sandbox's processes are gone.
    pub async fn scrub_root(&self) -> anyhow::Result<()> {
        if !self.exists() {
            return Ok(());
        }
        self.wait_released().await?;
        let output = self
            .mounted("rw", r#"rm -rf "$MNT/root""#)
            .output()
            .await
            .context("running unshare to scrub the root layer")?;
        if !output.status.success() {
            bail!(
                "scrubbing the root layer failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }

    /// `/workspace` of a stopped session as a tar stream (entries `./...`, as the agent makes
    /// them for a running one). Fails before the first byte if the volume cannot be read.
    pub async fn export_workspace(
        &self,
    ) -> anyhow::Result<impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + use<>>
    {
        use futures_util::StreamExt as _;
        if !self.exists() {
            bail!("the session has no volume");
        }
        self.wait_released().await?;
        let mut child = self
            .mounted("ro", r#"exec tar -C "$MNT/workspace" --numeric-owner -cf - ."#)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("running unshare to export the workspace")?;
        let stdout = child.stdout.take().context("tar's stdout")?;
        let mut stream = tokio_util::io::ReaderStream::new(stdout);
        let first = stream.next().await;
        if matches!(first, None | Some(Err(_))) {
            let output = child.wait_with_output().await.context("waiting for tar")?;
            bail!("exporting the workspace failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        // The child lives as long as the stream: dropping it (a client gone) kills tar.
        let rest = stream.map(move |chunk| {
            let _alive = &child;
            chunk
        });
        Ok(futures_util::stream::iter(first).chain(rest))
    }
}
