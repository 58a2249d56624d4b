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

fn layout(root: &Path) -> anyhow::Result<Layout> {
    let v2 = root.join("cgroup.controllers");
    if let Ok(controllers) = std::fs::read_to_string(&v2) {
        let have: Vec<&str> = controllers.split_whitespace().collect();
        if ["memory", "pids", "cpu"].iter().all(|c| have.contains(c)) {
            return Ok(Layout::V2);
        }
    }
    if ["memory", "pids", "cpu"].iter().all(|c| root.join(c).join("cgroup.procs").exists()) {
        return Ok(Layout::V1);
    }
    anyhow::bail!(
        "no usable cgroup hierarchy with memory, pids and cpu controllers under {}",
        root.display()
    )
}

/// One sandbox's cgroup (a directory per controller on v1, one directory on v2).
#[derive(Clone, Debug)]
pub struct Cgroup {
    layout: Layout,
    /// Where the hierarchies are mounted: `/sys/fs/cgroup`.
    root: PathBuf,
    /// Relative to each hierarchy's root, e.g. `flint/<instance>/<session>`.
    name: PathBuf,
}

impl Cgroup {
    /// Names (without creating) the cgroup at `name`.
    pub fn at(name: impl Into<PathBuf>) -> anyhow::Result<Cgroup> {
        Cgroup::under(Path::new(ROOT), name)
    }

    /// Names the cgroup at `name` in hierarchies mounted at `root`.
    fn under(root: &Path, name: impl Into<PathBuf>) -> anyhow::Result<Cgroup> {
        Ok(Cgroup { layout: layout(root)?, root: root.to_owned(), name: name.into() })
    }

    fn dirs(&self) -> Vec<PathBuf> {
        match self.layout {
            Layout::V1 => ["memory", "pids", "cpu"]
                .iter()
                .map(|c| self.root.join(c).join(&self.name))
                .collect(),
            Layout::V2 => vec![self.root.join(&self.name)],
        }
    }

    /// Creates the cgroup and applies `limits`.
    pub fn create(&self, limits: Limits) -> anyhow::Result<()> {
        if self.layout == Layout::V2 {
            enable_v2_controllers(&self.root, &self.name)?;
        }
        for dir in self.dirs() {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("creating cgroup {}", dir.display()))?;
        }
        let memory = limits.memory_mb * 1024 * 1024;
        let quota = limits.cpu_centis * CPU_PERIOD_US / 100;
        match self.layout {
            Layout::V1 => {
                let root = &self.root;
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
                let dir = self.root.join(&self.name);
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
            Layout::V1 => {
                (self.root.join("memory").join(&self.name).join("memory.oom_control"), "oom_kill")
            }
            Layout::V2 => (self.root.join(&self.name).join("memory.events"), "oom_kill"),
        };
        std::fs::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .find_map(|line| line.strip_prefix(key)?.trim().parse().ok())
            .unwrap_or(0)
    }

    /// The memory limit in bytes, if one is set.
    pub fn memory_limit(&self) -> Option<u64> {
        let file = match self.layout {
            Layout::V1 => self.root.join("memory").join(&self.name).join("memory.limit_in_bytes"),
            Layout::V2 => self.root.join(&self.name).join("memory.max"),
        };
        std::fs::read_to_string(file).ok()?.trim().parse().ok()
    }

    /// Processes in the cgroup now.
    pub fn pids(&self) -> Vec<i32> {
        let Some(first) = self.procs_files().into_iter().find(|f| f.exists()) else {
            return Vec::new();
        };
        // On v1 the pids hierarchy is the authoritative one: every task is counted there.
        let file = match self.layout {
            Layout::V1 => self.root.join("pids").join(&self.name).join("cgroup.procs"),
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
fn enable_v2_controllers(root: &Path, name: &Path) -> anyhow::Result<()> {
    let mut dir = root.to_owned();
    for component in name.parent().into_iter().flat_map(|p| p.components()) {
        write(&dir.join("cgroup.subtree_control"), "+memory +pids +cpu")?;
        dir.push(component);
        std::fs::create_dir_all(&dir)?;
    }
    write(&dir.join("cgroup.subtree_control"), "+memory +pids +cpu")
}

#[cfg(test)]
mod tests {
    //! These machines have cgroup v1; v2's file protocol is checked here against a directory
    //! laid out as the kernel lays out a unified hierarchy (the kernel itself is not faked
    //! anywhere else: the integration tests use the real v1 hierarchy).

    use super::*;

    const LIMITS: Limits = Limits { memory_mb: 256, pids: 128, cpu_centis: 150 };

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn on_v2_limits_and_controllers_are_written_down_the_unified_tree() {
        let root = tempfile::tempdir().expect("tempdir");
        let root = root.path();
        std::fs::write(root.join("cgroup.controllers"), "cpuset cpu io memory hugetlb pids\n")
            .expect("controllers");
        let cgroup = Cgroup::under(root, "flint/abc/s1").expect("v2");
        assert_eq!(cgroup.layout, Layout::V2);
        cgroup.create(LIMITS).expect("create");
        // Every ancestor hands the controllers down to its children.
        for dir in [root.to_owned(), root.join("flint"), root.join("flint/abc")] {
            assert_eq!(read(&dir.join("cgroup.subtree_control")), "+memory +pids +cpu");
        }
        let dir = root.join("flint/abc/s1");
        assert_eq!(read(&dir.join("memory.max")), (256u64 << 20).to_string());
        assert_eq!(read(&dir.join("memory.swap.max")), "0");
        assert_eq!(read(&dir.join("pids.max")), "128");
        assert_eq!(read(&dir.join("cpu.max")), "150000 100000");
        assert_eq!(cgroup.procs_files(), vec![dir.join("cgroup.procs")]);

        std::fs::write(dir.join("cgroup.procs"), "42\n43\n").expect("procs");
        assert_eq!(cgroup.pids(), vec![42, 43]);
        let events = "low 0\nhigh 0\nmax 7\noom 2\noom_kill 2\noom_group_kill 0\n";
        std::fs::write(dir.join("memory.events"), events).expect("events");
        assert_eq!(cgroup.oom_kills(), 2);
    }

    #[test]
    fn on_v1_each_controller_has_its_own_tree() {
        let root = tempfile::tempdir().expect("tempdir");
        let root = root.path();
        for controller in ["memory", "pids", "cpu"] {
            std::fs::create_dir_all(root.join(controller)).expect("mkdir");
            std::fs::write(root.join(controller).join("cgroup.procs"), "").expect("procs");
        }
        let cgroup = Cgroup::under(root, "flint/abc/s1").expect("v1");
        assert_eq!(cgroup.layout, Layout::V1);
        cgroup.create(LIMITS).expect("create");
        let memory = root.join("memory/flint/abc/s1");
        assert_eq!(read(&memory.join("memory.limit_in_bytes")), (256u64 << 20).to_string());
        assert!(!memory.join("memory.memsw.limit_in_bytes").exists(), "no swap accounting here");
        assert_eq!(read(&root.join("pids/flint/abc/s1/pids.max")), "128");
        assert_eq!(read(&root.join("cpu/flint/abc/s1/cpu.cfs_quota_us")), "150000");
        assert_eq!(cgroup.procs_files().len(), 3);
        std::fs::write(
            memory.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
        )
        .expect("oom_control");
        assert_eq!(cgroup.oom_kills(), 3);
    }

    #[test]
    fn a_hierarchy_without_the_controllers_is_refused() {
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::write(root.path().join("cgroup.controllers"), "cpu io\n").expect("controllers");
        let error = Cgroup::under(root.path(), "x").expect_err("refused").to_string();
        assert!(error.contains("memory, pids and cpu"), "{error}");
    }
}
