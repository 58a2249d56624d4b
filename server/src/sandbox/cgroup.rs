//! Per-sandbox cgroups with memory, pids and CPU limits, on cgroup v1 (these machines: one
//! hierarchy per controller) or v2 (one unified hierarchy with the controllers enabled).
//!
//! A sandbox's first process joins its cgroup before it execs anything (the launcher writes
//! its own pid into `cgroup.procs`), so a fork bomb cannot outrun the move.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;

const ROOT: &str = "/sys/fs/cgroup";

/// CPU quota period: 100 ms, the kernel's default.
const CPU_PERIOD_US: u64 = 100_000;

/// Limits of one sandbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Memory in MiB (no swap).
    pub memory_mb: u64,
    /// Most processes and threads.
    pub pids: u64,
    /// CPUs' worth of time per period, in hundredths (150 = 1.5 CPUs).
    pub cpu_centis: u64,
}

/// Which cgroup layout the host has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    V1,
    V2,
}

fn layout() -> anyhow::Result<Layout> {
    let v2 = Path::new(ROOT).join("cgroup.controllers");
    if let Ok(controllers) = std::fs::read_to_string(&v2) {
        let have: Vec<&str> = controllers.split_whitespace().collect();
        if ["memory", "pids", "cpu"].iter().all(|c| have.contains(c)) {
            return Ok(Layout::V2);
        }
    }
    if ["memory", "pids", "cpu"]
        .iter()
        .all(|c| Path::new(ROOT).join(c).join("cgroup.procs").exists())
    {
        return Ok(Layout::V1);
    }
    anyhow::bail!("no usable cgroup hierarchy with memory, pids and cpu controllers under {ROOT}")
}

/// One sandbox's cgroup (a directory per controller on v1, one directory on v2).
#[derive(Clone, Debug)]
pub struct Cgroup {
    layout: Layout,
    /// Relative to each hierarchy's root, e.g. `flint/<instance>/<session>`.
    name: PathBuf,
}

impl Cgroup {
    /// Names (without creating) the cgroup at `name`.
    pub fn at(name: impl Into<PathBuf>) -> anyhow::Result<Cgroup> {
        Ok(Cgroup { layout: layout()?, name: name.into() })
    }

    fn dirs(&self) -> Vec<PathBuf> {
        match self.layout {
            Layout::V1 => ["memory", "pids", "cpu"]
                .iter()
                .map(|c| Path::new(ROOT).join(c).join(&self.name))
                .collect(),
            Layout::V2 => vec![Path::new(ROOT).join(&self.name)],
        }
    }

    /// Creates the cgroup and applies `limits`.
    pub fn create(&self, limits: Limits) -> anyhow::Result<()> {
        if self.layout == Layout::V2 {
            enable_v2_controllers(&self.name)?;
        }
        for dir in self.dirs() {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("creating cgroup {}", dir.display()))?;
        }
        let memory = limits.memory_mb * 1024 * 1024;
        let quota = limits.cpu_centis * CPU_PERIOD_US / 100;
        match self.layout {
            Layout::V1 => {
                let root = Path::new(ROOT);
                write(
                    &root.join("memory").join(&self.name).join("memory.limit_in_bytes"),
                    &memory.to_string(),
                )?;
                // Without swap accounting this file is absent; the limit above then covers RAM.
                let memsw =
                    root.join("memory").join(&self.name).join("memory.memsw.limit_in_bytes");
                if memsw.exists() {
                    write(&memsw, &memory.to_string())?;
                }
                write(
                    &root.join("pids").join(&self.name).join("pids.max"),
                    &limits.pids.to_string(),
                )?;
                let cpu = root.join("cpu").join(&self.name);
                write(&cpu.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())?;
                write(&cpu.join("cpu.cfs_quota_us"), &quota.to_string())?;
            }
            Layout::V2 => {
                let dir = Path::new(ROOT).join(&self.name);
                write(&dir.join("memory.max"), &memory.to_string())?;
                write(&dir.join("memory.swap.max"), "0").ok();
                write(&dir.join("pids.max"), &limits.pids.to_string())?;
                write(&dir.join("cpu.max"), &format!("{quota} {CPU_PERIOD_US}"))?;
            }
        }
        Ok(())
    }

    /// The `cgroup.procs` files a process writes its pid into to join (one per hierarchy).
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs().into_iter().map(|d| d.join("cgroup.procs")).collect()
    }

    /// How many times the OOM killer has killed a process of this cgroup.
    pub fn oom_kills(&self) -> u64 {
        let (file, key) = match self.layout {
            Layout::V1 => (
                Path::new(ROOT).join("memory").join(&self.name).join("memory.oom_control"),
                "oom_kill",
            ),
            Layout::V2 => (Path::new(ROOT).join(&self.name).join("memory.events"), "oom_kill"),
        };
        std::fs::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .find_map(|line| line.strip_prefix(key)?.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Processes in the cgroup now.
    pub fn pids(&self) -> Vec<i32> {
        let Some(first) = self.procs_files().into_iter().find(|f| f.exists()) else {
            return Vec::new();
        };
        // On v1 the pids hierarchy is the authoritative one: every task is counted there.
        let file = match self.layout {
            Layout::V1 => Path::new(ROOT).join("pids").join(&self.name).join("cgroup.procs"),
            Layout::V2 => first,
        };
        std::fs::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// True when the cgroup exists.
    pub fn exists(&self) -> bool {
        self.dirs().iter().any(|d| d.exists())
    }

    /// SIGKILLs every process until none is left, then removes the cgroup.
    pub fn kill_and_remove(&self, deadline: Duration) -> anyhow::Result<()> {
        let start = Instant::now();
        loop {
            let pids = self.pids();
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            anyhow::ensure!(
                start.elapsed() < deadline,
                "processes of {} survive SIGKILL",
                self.name.display()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        for dir in self.dirs() {
            // An emptied cgroup can take a moment before rmdir succeeds.
            loop {
                match std::fs::remove_dir(&dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    Err(e) if start.elapsed() < deadline => {
                        tracing::debug!("rmdir {}: {e}", dir.display());
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(e) => {
                        return Err(e)
                            .with_context(|| format!("removing cgroup {}", dir.display()));
                    }
                }
            }
            // Parents (`flint/<instance>`, `flint`) go too once nothing else lives in them;
            // rmdir refuses while they hold other cgroups, which is what we want.
            let depth = self.name.components().count().saturating_sub(1);
            for parent in dir.ancestors().skip(1).take(depth) {
                if std::fs::remove_dir(parent).is_err() {
                    break;
                }
            }
        }
        Ok(())
    }
}

fn write(path: &Path, value: &str) -> anyhow::Result<()> {
    std::fs::write(path, value).with_context(|| format!("writing {value} to {}", path.display()))
}

/// On v2, a controller must be enabled in every ancestor's `cgroup.subtree_control`.
fn enable_v2_controllers(name: &Path) -> anyhow::Result<()> {
    let mut dir = PathBuf::from(ROOT);
    for component in name.parent().into_iter().flat_map(|p| p.components()) {
        write(&dir.join("cgroup.subtree_control"), "+memory +pids +cpu")?;
        dir.push(component);
        std::fs::create_dir_all(&dir)?;
    }
    write(&dir.join("cgroup.subtree_control"), "+memory +pids +cpu")
}
