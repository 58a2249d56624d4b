//! Which sandbox driver a session gets. `--driver auto` (the default) probes, best first:
//!
//! 1. **microvm** (KVM): probed by booting a kernel with a deadline, because `/dev/kvm`
//!    existing proves nothing (these machines' PVM hangs a stock kernel, MACHINE.md). The
//!    result is cached in the data directory. The driver itself is a later issue: `auto`
//!    logs the probe's result and why it is not used.
//! 2. **gvisor**, when runsc really runs a sandbox (`true`, with no network).
//! 3. **process**, with a warning in the log, the API (`GET /api/server`) and the UI: it is
//!    weak isolation.
//!
//! A session may ask for a driver by name; one that is not the default is probed on first
//! use.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::OnceCell;

use crate::error::{AppError, Result};
use crate::sandbox::Driver;

/// How long a KVM guest may take to reach its kernel's root mount.
const KVM_DEADLINE: Duration = Duration::from_secs(10);

/// What `--driver` asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Choice {
    /// The best driver that works here.
    Auto,
    /// gVisor (runsc); the server refuses to start if it does not work.
    Gvisor,
    /// Namespaces and cgroups on the host's kernel: weak isolation.
    Process,
}

/// The drivers of this server.
#[derive(Debug)]
pub struct Drivers {
    default: Driver,
    runsc_root: PathBuf,
    data_dir: PathBuf,
    gvisor: OnceCell<std::result::Result<(), String>>,
    warnings: Vec<String>,
}

impl Drivers {
    /// For commands that start no sandbox: nothing probed, `process` by default.
    pub fn unprobed(data_dir: &Path) -> Drivers {
        Drivers {
            default: Driver::Process,
            runsc_root: data_dir.join("runsc"),
            data_dir: data_dir.to_owned(),
            gvisor: OnceCell::new(),
            warnings: Vec::new(),
        }
    }

    /// Picks the default driver as `choice` says, probing what it must.
    pub async fn select(choice: Choice, data_dir: &Path) -> anyhow::Result<Drivers> {
        let mut drivers = Drivers::unprobed(data_dir);
        match choice {
            Choice::Process => {
                drivers.warnings.push(process_warning("--driver process was asked for"));
            }
            Choice::Gvisor => {
                drivers
                    .probe_gvisor()
                    .await
                    .map_err(anyhow::Error::msg)
                    .context("--driver gvisor: runsc does not work here (apt-get install runsc)")?;
                drivers.default = drivers.gvisor();
            }
            Choice::Auto => {
                let kvm = kvm_probe(data_dir).await;
                tracing::info!(
                    "driver auto: KVM {kvm}; the microvm driver is not built yet, so it is not used"
                );
                match drivers.probe_gvisor().await {
                    Ok(()) => drivers.default = drivers.gvisor(),
                    Err(why) => {
                        drivers
                            .warnings
                            .push(process_warning(&format!("gVisor does not work here: {why}")));
                    }
                }
            }
        }
        if matches!(drivers.default, Driver::Gvisor { .. })
            && let Some(warning) = crate::sandbox::gvisor::version_warning().await
        {
            drivers.warnings.push(warning);
        }
        for warning in &drivers.warnings {
            tracing::warn!("{warning}");
        }
        tracing::info!(
            driver = drivers.default.name(),
            isolation = drivers.default.isolation(),
            "sandbox driver"
        );
        Ok(drivers)
    }

    fn gvisor(&self) -> Driver {
        Driver::Gvisor { root: self.runsc_root.clone() }
    }

    async fn probe_gvisor(&self) -> std::result::Result<(), String> {
        self.gvisor
            .get_or_init(|| async {
                let scratch = self.data_dir.join("runsc-probe");
                let result = crate::sandbox::gvisor::probe(Path::new("/"), &scratch).await;
                match &result {
                    Ok(()) => {
                        tracing::info!("gVisor works here");
                        raise_pid_max();
                    }
                    Err(e) => tracing::info!("gVisor does not work here: {e:#}"),
                }
                result.map_err(|e| format!("{e:#}"))
            })
            .await
            .clone()
    }

    /// The default driver.
    pub fn default_driver(&self) -> &Driver {
        &self.default
    }

    /// Warnings for the operator (weak isolation by default, and why).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The driver a session asks for (`None`: the default), or a 400 saying why not.
    pub async fn resolve(&self, name: Option<&str>) -> Result<Driver> {
        match name {
            None => Ok(self.default.clone()),
            Some("process") => Ok(Driver::Process),
            Some("gvisor") => match self.probe_gvisor().await {
                Ok(()) => Ok(self.gvisor()),
                Err(why) => Err(AppError::bad_request(format!("gvisor does not work here: {why}"))),
            },
            Some(other) => Err(AppError::bad_request(format!(
                "unknown driver {other:?}: use `process` or `gvisor`"
            ))),
        }
    }

    /// The driver of a recorded session (by the name in its record).
    pub fn by_name(&self, name: &str) -> Driver {
        match name {
            "gvisor" => self.gvisor(),
            _ => Driver::Process,
        }
    }
}

/// The 64-bit kernel's largest `kernel.pid_max` (systemd's default).
const PID_MAX: u64 = 4_194_304;

/// gVisor's platforms spend host tasks freely (see `Driver::host_limits`): a host
/// with the kernel's old default of 32768 pids would run out before a sandbox's limit. Like
/// IPv4 forwarding for sandbox networking, this is a host setting any runtime host makes.
fn raise_pid_max() {
    let path = "/proc/sys/kernel/pid_max";
    let now: u64 =
        std::fs::read_to_string(path).ok().and_then(|t| t.trim().parse().ok()).unwrap_or(0);
    if now < PID_MAX {
        match std::fs::write(path, PID_MAX.to_string()) {
            Ok(()) => tracing::info!("raised kernel.pid_max from {now} to {PID_MAX} for gVisor"),
            Err(e) => tracing::warn!("kernel.pid_max is {now} and could not be raised: {e}"),
        }
    }
}

fn process_warning(why: &str) -> String {
    format!(
        "sessions run on the `process` driver ({why}): weak isolation, the sandbox shares the \
         host's kernel"
    )
}

/// Probes KVM by booting a kernel under QEMU with a deadline; the result (a phrase for the
/// log) is cached in the data directory per kernel and QEMU.
pub async fn kvm_probe(data_dir: &Path) -> String {
    if !Path::new("/dev/kvm").exists() {
        return "absent: no /dev/kvm".to_owned();
    }
    let Some(qemu) = which("qemu-system-x86_64") else {
        return "not probed: qemu-system-x86_64 is not installed".to_owned();
    };
    let Some(kernel) = host_kernel() else {
        return "not probed: no kernel in /boot to boot".to_owned();
    };
    let key = format!("{}:{}", qemu.display(), kernel.display());
    let cache = data_dir.join("kvm-probe.json");
    if let Ok(text) = std::fs::read_to_string(&cache)
        && let Ok(cached) = serde_json::from_str::<serde_json::Value>(&text)
        && cached["key"] == key.as_str()
        && let Some(result) = cached["result"].as_str()
    {
        return format!("{result} (cached)");
    }
    let output = tokio::process::Command::new(&qemu)
        .args(["-M", "microvm", "-enable-kvm", "-cpu", "host", "-m", "256", "-nodefaults"])
        .args(["-no-reboot", "-display", "none", "-serial", "stdio", "-kernel"])
        .arg(&kernel)
        .args(["-append", "console=ttyS0 panic=-1 reboot=t"])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let result = match tokio::time::timeout(KVM_DEADLINE, output).await {
        Ok(Ok(output)) => classify_boot(&String::from_utf8_lossy(&output.stdout)),
        Ok(Err(e)) => format!("unusable: running QEMU failed: {e}"),
        Err(_) => classify_boot(""),
    };
    let record = serde_json::json!({ "key": key, "result": result });
    let _ = std::fs::write(&cache, record.to_string());
    result
}

/// What a probe boot's console says about KVM.
pub fn classify_boot(console: &str) -> String {
    // With no root device the kernel gets as far as mounting root and panics: it booted.
    if console.contains("VFS: Unable to mount root") || console.contains("Run /init") {
        "works: a kernel booted".to_owned()
    } else if console.contains("Linux version") {
        "unusable: the kernel started but did not reach its root mount in time".to_owned()
    } else {
        "unusable: the guest hung before its kernel started (PVM?)".to_owned()
    }
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|path| path.is_file())
}

fn host_kernel() -> Option<PathBuf> {
    let mut kernels: Vec<PathBuf> = std::fs::read_dir("/boot")
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-")))
        .collect();
    kernels.sort();
    kernels.pop()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_boot_counts_only_when_the_kernel_reached_its_root_mount() {
        let booted = "Linux version 6.1\n...\nVFS: Unable to mount root fs on unknown-block(0,0)";
        assert!(classify_boot(booted).starts_with("works"));
        assert!(classify_boot("Probing EDD (edd=off to disable)... ok\n").starts_with("unusable"));
        assert!(classify_boot("Linux version 6.1\n").contains("did not reach"));
    }
}
