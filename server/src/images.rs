//! Image specs (`images/*.toml`) and the builder that turns one into a root filesystem.
//!
//! A [`Spec`] names a Debian suite, an mmdebstrap variant, packages, commands to run in the
//! image once they are installed (`run`), environment and files.
//! [`ensure_built`] builds it with `mmdebstrap` into `DATA_DIR/images/<name>-<hash>/rootfs`,
//! where `<hash>` is the first 16 hex digits of the SHA-256 of the canonical spec and
//! [`BUILDER_VERSION`]. So the same spec is built once and reused; an edited spec gets a
//! directory of its own. One image directory:
//!
//! ```text
//! images/default-0123456789abcdef/
//!   .lock            locked (flock) while a build checks or writes this directory
//!   rootfs.partial/  mmdebstrap's target during a build; removed when a build died
//!   rootfs/          the finished root filesystem, renamed into place in one step
//!   spec.json        the canonical spec that was built
//!   .complete        written last: its presence is what "built" means
//! ```
//!
//! The guest agent is **not** baked into an image: every image has an empty `/opt/flint`
//! where the sandbox driver bind-mounts the agent binary read-only when a sandbox starts, so
//! a new agent never rebuilds a 1 GB image. Every image also has an empty `/workspace`, the
//! mount point of the session's volume.
//!
//! The build is blocking work (a minute of mmdebstrap, then file writes): [`ensure_built`]
//! runs it on tokio's blocking pool. Dropping its future does not stop the build; it
//! finishes and is cached for the next caller.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{BufRead as _, BufReader, IsTerminal as _, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

mod run;
mod spec;
pub use spec::{Spec, SpecDirs, load_spec};

/// Bump when the builder changes what it puts into a root filesystem for the same spec (a
/// new directory, another env file): every image is then rebuilt once.
pub const BUILDER_VERSION: u32 = 1;

/// Hex digits of the spec hash in an image's directory name: 64 bits, no collision among
/// the handful of specs one host builds.
const HASH_DIGITS: usize = 16;

/// mmdebstrap's last lines kept for the error when it fails: enough to show apt's or
/// dpkg's complaint and what led to it.
const ERROR_TAIL_LINES: usize = 40;

/// A name a session may ask for as its image (`images_dir/NAME.toml`): `[a-z0-9-]+`.
pub fn is_image_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The image specs in `images_dir` that sessions can name, `default` first, then by name:
/// each with its description, whether it is built under `data_dir`, and why it cannot be
/// used if it cannot. Blocking: it reads every spec.
pub fn list(
    images_dir: &Path,
    data_dir: &Path,
    default: &str,
) -> anyhow::Result<Vec<proto::api::ImageInfo>> {
    let entries = fs::read_dir(images_dir)
        .with_context(|| format!("reading the images directory {}", images_dir.display()))?;
    let mut images = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".toml"));
        let Some(name) = name.filter(|name| is_image_name(name)) else { continue };
        let (description, built, error) = match load_spec(&path) {
            Ok(spec) => (spec.description.clone(), built_rootfs(data_dir, &spec).is_some(), None),
            Err(e) => (None, false, Some(format!("{e:#}"))),
        };
        let default = name == default;
        images.push(proto::api::ImageInfo {
            name: name.to_owned(),
            description,
            default,
            built,
            error,
        });
    }
    images.sort_by(|a, b| b.default.cmp(&a.default).then_with(|| a.name.cmp(&b.name)));
    Ok(images)
}

/// The directory of `spec`'s image: `data_dir/images/<name>-<first 16 hex of its hash>`.
pub fn spec_dir(data_dir: &Path, spec: &Spec) -> PathBuf {
    let hash = spec.hash();
    data_dir.join("images").join(format!("{}-{}", spec.name, &hash[..HASH_DIGITS]))
}

/// The image's root filesystem when it is completely built, else `None`.
pub fn built_rootfs(data_dir: &Path, spec: &Spec) -> Option<PathBuf> {
    let dir = spec_dir(data_dir, spec);
    is_complete(&dir).then(|| dir.join("rootfs"))
}

/// An image ready to use.
#[derive(Clone, Debug)]
pub struct Built {
    /// Its root filesystem.
    pub rootfs: PathBuf,
    /// How long the build took; `None` when it was cached.
    pub build_time: Option<Duration>,
}

/// The root filesystem of `spec`, built first unless it is cached. `progress` shows a
/// spinner on a terminal (plain phase lines on stderr otherwise); without it, phases go to
/// `tracing`.
pub async fn ensure_built(data_dir: &Path, spec: &Spec, progress: bool) -> anyhow::Result<PathBuf> {
    Ok(build(data_dir, spec, progress).await?.rootfs)
}

/// [`ensure_built`], also telling whether the image was cached.
pub async fn build(data_dir: &Path, spec: &Spec, progress: bool) -> anyhow::Result<Built> {
    let data_dir = data_dir.to_owned();
    let spec = spec.clone();
    tokio::task::spawn_blocking(move || build_blocking(&data_dir, &spec, progress))
        .await
        .context("the image build task failed")?
}

fn is_complete(dir: &Path) -> bool {
    dir.join(".complete").is_file() && dir.join("rootfs").is_dir()
}

fn build_blocking(data_dir: &Path, spec: &Spec, progress: bool) -> anyhow::Result<Built> {
    spec.validate()?;
    let dir = spec_dir(data_dir, spec);
    let rootfs = dir.join("rootfs");
    // `.complete` is written last, so seeing it needs no lock.
    if is_complete(&dir) {
        return Ok(Built { rootfs, build_time: None });
    }
    if find_on_path("mmdebstrap").is_none() {
        bail!("mmdebstrap is not installed: run `apt-get install mmdebstrap` as root");
    }
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let lock = fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(".lock"))
        .with_context(|| format!("opening {}/.lock", dir.display()))?;
    if lock.try_lock().is_err() {
        if progress {
            eprintln!("image {}: waiting for another build of it", spec.name);
        }
        lock.lock().context("locking the image directory")?;
    }
    // Another build may have finished while we waited.
    if is_complete(&dir) {
        return Ok(Built { rootfs, build_time: None });
    }
    let started = Instant::now();
    let partial = dir.join("rootfs.partial");
    // What a build that died left behind.
    remove_stale(&partial)?;
    remove_stale(&rootfs)?;

    run_mmdebstrap(spec, &partial, progress)?;
    customise(spec, &partial).context("writing the spec's files into the image")?;
    let spec_json = serde_json::to_string_pretty(&spec.canonical())?;
    fs::write(dir.join("spec.json"), spec_json + "\n")?;
    fs::rename(&partial, &rootfs)
        .with_context(|| format!("renaming {} into place", partial.display()))?;
    let build_time = started.elapsed();
    let marker = dir.join(".complete.tmp");
    fs::write(
        &marker,
        format!(
            "built in {:.1} s by flint {}\n",
            build_time.as_secs_f64(),
            env!("CARGO_PKG_VERSION")
        ),
    )?;
    fs::rename(&marker, dir.join(".complete"))?;
    drop(lock);
    Ok(Built { rootfs, build_time: Some(build_time) })
}

/// Removes a half-built tree, refusing when something is mounted inside it: deleting
/// through a bind mount of `/dev` would delete the host's device nodes.
fn remove_stale(path: &Path) -> anyhow::Result<()> {
    if fs::symlink_metadata(path).is_err() {
        return Ok(());
    }
    let canonical = path.canonicalize()?;
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").context("reading mountinfo")?;
    let mounted: Vec<String> = mount_points(&mountinfo)
        .filter(|point| point.starts_with(&canonical))
        .map(|point| point.display().to_string())
        .collect();
    if !mounted.is_empty() {
        bail!(
            "{} is left from a failed build with mounts inside ({}): unmount them, remove it",
            path.display(),
            mounted.join(", ")
        );
    }
    fs::remove_dir_all(path).with_context(|| format!("removing {}", path.display()))
}

/// The mount points listed in `/proc/self/mountinfo` text (field 5, octal escapes undone).
fn mount_points(mountinfo: &str) -> impl Iterator<Item = PathBuf> + '_ {
    mountinfo.lines().filter_map(|line| {
        let escaped = line.split(' ').nth(4)?;
        let mut bytes = Vec::with_capacity(escaped.len());
        let mut rest = escaped.as_bytes();
        while let Some((&first, tail)) = rest.split_first() {
            let octal = tail
                .get(..3)
                .and_then(|digits| std::str::from_utf8(digits).ok())
                .and_then(|digits| u8::from_str_radix(digits, 8).ok());
            match (first, octal) {
                (b'\\', Some(byte)) => {
                    bytes.push(byte);
                    rest = &tail[3..];
                }
                _ => {
                    bytes.push(first);
                    rest = tail;
                }
            }
        }
        Some(PathBuf::from(OsString::from(<OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(
            &bytes,
        ))))
    })
}

/// Runs mmdebstrap into `target`, in a mount namespace of its own so that nothing it mounts
/// (`/proc`, `/dev` in the chroot) outlives it, even when it is killed.
fn run_mmdebstrap(spec: &Spec, target: &Path, progress: bool) -> anyhow::Result<()> {
    let mut command = Command::new("unshare");
    command
        .args(["--mount", "--propagation", "private", "--", "mmdebstrap"])
        // One line per package step (`Unpacking ...`, `Setting up ...`): the spinner's
        // message, and context when a build fails.
        .arg("--verbose")
        .arg(format!("--variant={}", spec.variant));
    let packages = spec.canonical().packages;
    if !packages.is_empty() {
        command.arg(format!("--include={}", packages.join(",")));
    }
    let host_ca = Path::new(run::HOST_CA_BUNDLE).is_file().then_some(run::HOST_CA_BUNDLE);
    let hooks = run::run_hooks(spec, host_ca);
    for hook in &hooks {
        command.arg(format!("--customize-hook={}", hook.script));
    }
    command.arg("--").arg(&spec.suite).arg(target);
    let (reader, writer) = std::io::pipe().context("creating a pipe")?;
    command.stdin(Stdio::null()).stdout(writer.try_clone()?).stderr(writer);
    let mut child = command.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            anyhow::anyhow!("`unshare` is not installed: run `apt-get install util-linux`")
        } else {
            anyhow::Error::new(e).context("starting mmdebstrap")
        }
    })?;
    // The command holds the pipe's write ends: close ours so the reader sees the end.
    drop(command);

    let labels = hooks.into_iter().map(|hook| hook.label).collect();
    let mut reporter = Reporter::new(&spec.name, progress, labels)?;
    let mut tail = VecDeque::with_capacity(ERROR_TAIL_LINES);
    for line in BufReader::new(reader).split(b'\n') {
        let line = line.context("reading mmdebstrap's output")?;
        let line = String::from_utf8_lossy(&line);
        let line = line.trim_end_matches('\r');
        reporter.line(line);
        if tail.len() == ERROR_TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line.to_owned());
    }
    let status = child.wait().context("waiting for mmdebstrap")?;
    reporter.finish();
    if !status.success() {
        let tail: Vec<String> = tail.into_iter().collect();
        bail!("mmdebstrap failed ({status}); its last lines:\n{}", tail.join("\n"));
    }
    Ok(())
}

/// Shows mmdebstrap's progress: its `I:` lines are phases, other lines the current step.
struct Reporter {
    name: String,
    started: Instant,
    /// What to show for each `--customize-hook` mmdebstrap runs, in order (its own line
    /// shows the whole script).
    hook_labels: VecDeque<String>,
    bar: Option<indicatif::ProgressBar>,
    /// Progress wanted but stderr is no terminal: phases as plain lines.
    plain: bool,
}

impl Reporter {
    fn new(name: &str, progress: bool, hook_labels: VecDeque<String>) -> anyhow::Result<Reporter> {
        let terminal = std::io::stderr().is_terminal();
        let bar = if progress && terminal {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] image {prefix}: {wide_msg}",
            )?);
            bar.set_prefix(format!("{name}: starting mmdebstrap"));
            bar.enable_steady_tick(Duration::from_millis(120));
            Some(bar)
        } else {
            None
        };
        Ok(Reporter {
            name: name.to_owned(),
            started: Instant::now(),
            hook_labels,
            bar,
            plain: progress && !terminal,
        })
    }

    fn line(&mut self, line: &str) {
        let mut phase = line.strip_prefix("I: ").map(|phase| phase.trim_end_matches("..."));
        let label;
        if phase.is_some_and(|phase| phase.starts_with("running --customize-hook")) {
            label = self.hook_labels.pop_front();
            phase = label.as_deref().or(phase);
        }
        let warning = line.starts_with("W: ") || line.starts_with("E: ");
        match (&self.bar, phase) {
            (Some(bar), Some(phase)) => {
                bar.set_prefix(format!("{}: {phase}", self.name));
                bar.set_message("");
            }
            (Some(bar), None) if warning => bar.println(line),
            (Some(bar), None) => bar.set_message(line.to_owned()),
            (None, Some(phase)) if self.plain => eprintln!(
                "image {}: {phase} [{:.0} s]",
                self.name,
                self.started.elapsed().as_secs_f64()
            ),
            (None, Some(phase)) => tracing::info!(image = %self.name, "{phase}"),
            (None, None) if warning && self.plain => eprintln!("image {}: {line}", self.name),
            (None, None) if warning => tracing::warn!(image = %self.name, "{line}"),
            (None, None) => {}
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// What Flint adds to what mmdebstrap installed: its mount points, the spec's files, the
/// spec's environment.
fn customise(spec: &Spec, root: &Path) -> anyhow::Result<()> {
    if !spec.files_from.is_empty() {
        bail!("the spec's `files_from` was not read (load it with `load_spec`)");
    }
    for dir in ["workspace", "opt/flint"] {
        let path = root.join(dir);
        fs::create_dir_all(&path)?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
    }
    for (path, contents) in &spec.files {
        let host = resolve_in_root(root, Path::new(path))?;
        if let Some(parent) = host.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&host, contents).with_context(|| format!("writing {path}"))?;
        fs::set_permissions(&host, fs::Permissions::from_mode(0o644))?;
    }
    if !spec.env.is_empty() {
        // Read by pam_env for logins; the sandbox driver passes the same values to the agent
        // (which is started without PAM).
        let host = resolve_in_root(root, Path::new("/etc/environment"))?;
        let mut text = fs::read_to_string(&host).unwrap_or_default();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str("# from the Flint image spec\n");
        for (key, value) in &spec.env {
            text.push_str(&format!("{key}=\"{value}\"\n"));
        }
        let mut file = fs::File::create(&host).context("writing /etc/environment")?;
        file.write_all(text.as_bytes())?;
        fs::set_permissions(&host, fs::Permissions::from_mode(0o644))?;
    }
    Ok(())
}

/// Where absolute `path` of the image is on the host, following symlinks as if `root` were
/// `/`: an absolute link in the image (`/etc/mtab -> /proc/self/mounts`) must lead into the
/// image, never to the host's own file.
fn resolve_in_root(root: &Path, path: &Path) -> anyhow::Result<PathBuf> {
    /// A loop of links is an error, as in the kernel (`ELOOP` after 40).
    const MAX_LINKS: usize = 40;
    // Components still to walk, last on top; `..` stands for a parent step (a `Normal`
    // component is never `..`).
    let mut pending: Vec<OsString> = Vec::new();
    push_components(&mut pending, path);
    let mut resolved = PathBuf::new();
    let mut links = 0;
    while let Some(name) = pending.pop() {
        if name == ".." {
            resolved.pop();
            continue;
        }
        let candidate = root.join(&resolved).join(&name);
        match fs::symlink_metadata(&candidate) {
            Ok(meta) if meta.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    bail!("too many symlinks resolving {} in the image", path.display());
                }
                let target = fs::read_link(&candidate)?;
                if target.is_absolute() {
                    resolved = PathBuf::new();
                }
                push_components(&mut pending, &target);
            }
            _ => resolved.push(name),
        }
    }
    Ok(root.join(resolved))
}

/// Pushes `path`'s components onto `stack` so that the first is on top.
fn push_components(stack: &mut Vec<OsString>, path: &Path) {
    for component in path.components().rev() {
        match component {
            Component::Normal(name) => stack.push(name.to_owned()),
            Component::ParentDir => stack.push(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
}

/// The first executable file called `name` in a directory of `$PATH`.
fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|candidate| {
        candidate
            .metadata()
            .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_has_every_nameable_spec_default_first_with_why_a_bad_one_fails() {
        let specs = tempfile::tempdir().expect("tempdir");
        let data = tempfile::tempdir().expect("tempdir");
        let spec = |name: &str| format!("name = \"{name}\"\nsuite = \"bookworm\"\n");
        fs::write(specs.path().join("zeta.toml"), spec("zeta")).expect("write");
        let described = format!("{}description = \"the usual\"\n", spec("default"));
        fs::write(specs.path().join("default.toml"), described).expect("write");
        fs::write(specs.path().join("broken.toml"), "name = \"broken\"\n").expect("write");
        // Not names a session can ask for, and not specs.
        fs::write(specs.path().join("Upper.toml"), spec("upper")).expect("write");
        fs::write(specs.path().join("README.md"), "specs").expect("write");
        // zeta is built (as the builder leaves an image).
        let zeta = load_spec(&specs.path().join("zeta.toml")).expect("spec");
        let dir = spec_dir(data.path(), &zeta);
        fs::create_dir_all(dir.join("rootfs")).expect("mkdir");
        fs::write(dir.join(".complete"), "").expect("write");

        let found = list(specs.path(), data.path(), "default").expect("list");
        let names: Vec<&str> = found.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["default", "broken", "zeta"]);
        assert!(found[0].default && !found[0].built);
        assert_eq!(found[0].description.as_deref(), Some("the usual"));
        let broken = &found[1];
        assert!(broken.error.as_deref().is_some_and(|e| e.contains("suite")), "{broken:?}");
        assert!(!broken.default && !broken.built);
        assert!(found[2].built && found[2].error.is_none() && found[2].description.is_none());
        assert!(list(&specs.path().join("missing"), data.path(), "default").is_err());
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let root = tempfile::tempdir().expect("tempdir");
        let root = root.path();
        fs::create_dir_all(root.join("usr/bin")).expect("mkdir");
        fs::create_dir_all(root.join("etc")).expect("mkdir");
        std::os::unix::fs::symlink("usr/bin", root.join("bin")).expect("link");
        std::os::unix::fs::symlink("/etc/hostname", root.join("etc/absolute")).expect("link");
        std::os::unix::fs::symlink("../../../../../etc/passwd", root.join("etc/up")).expect("link");
        std::os::unix::fs::symlink("loop", root.join("etc/loop")).expect("link");
        let resolve = |path: &str| resolve_in_root(root, Path::new(path));
        assert_eq!(resolve("/bin/x").expect("bin"), root.join("usr/bin/x"));
        assert_eq!(resolve("/etc/absolute").expect("absolute"), root.join("etc/hostname"));
        assert_eq!(resolve("/etc/up").expect("up"), root.join("etc/passwd"));
        assert_eq!(resolve("/new/dir/file").expect("new"), root.join("new/dir/file"));
        assert!(resolve("/etc/loop").is_err());
    }

    #[test]
    fn mount_points_undo_octal_escapes() {
        let mountinfo = "\
22 1 252:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
90 22 0:5 / /data/images/a\\040b/rootfs.partial/dev rw - devtmpfs udev rw
";
        let points: Vec<PathBuf> = mount_points(mountinfo).collect();
        assert_eq!(
            points,
            [PathBuf::from("/"), PathBuf::from("/data/images/a b/rootfs.partial/dev")]
        );
    }
}
