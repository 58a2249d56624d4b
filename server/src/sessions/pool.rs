//! The warm pool and the host's capacity.
//!
//! **Pool.** `pool_size` sandboxes per configured image (`pool_images`) and size class
//! (its disk, the default driver, with networking) are started ahead, each with its own
//! session id, directory, volume (its `/workspace`), cgroup and network, and its first
//! shell already at a prompt. A create that matches takes one: the session is recorded
//! under that id, its limits are applied to the cgroup, and its first shell is the warm
//! one (a create asking for `env` gets a fresh shell with it instead). A slot is taken out
//! of the pool under its lock, so it is never handed out twice; a slot whose image changed
//! (a new spec hash, so a new root filesystem) or whose sandbox died is discarded; the pool
//! refills in the background. Pool slots have no record: a clean shutdown discards them (one
//! being started too, once it is), and a start after a crash removes what is left.
//!
//! **Capacity.** CPUs, memory and sandboxes of running sessions **and pool slots** stay
//! within the configured host capacity; a create beyond it is a 503 with the reason. A
//! create that does not fit may discard spare pool slots to make room.

use std::path::PathBuf;
use std::time::Duration;

use proto::api::SessionLimits;
use proto::terminal::{CreateTerminal, ShellState};

use super::{Live, Sessions};
use crate::error::{AppError, Result};
use crate::sandbox::{self, Spec};

/// How often the pool is checked when nothing wakes it.
const REFILL_EVERY: Duration = Duration::from_secs(2);

/// How long the shutdown waits for a pool slot being started, to discard it too.
const DRAIN_WAIT: Duration = Duration::from_secs(30);

/// What a pool slot is interchangeable by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolKey {
    /// The driver's name.
    pub driver: String,
    /// The image spec's name.
    pub image: String,
    /// Its root filesystem (changes with the spec's hash).
    pub rootfs: PathBuf,
    /// The volume's size.
    pub disk_mb: u32,
    /// Networking.
    pub network: bool,
}

/// A pre-started sandbox.
pub struct Warm {
    /// The session id it will have.
    pub id: String,
    /// What it is.
    pub key: PoolKey,
    /// Its first shell is at a prompt.
    pub(super) live: Live,
}

/// The host's capacity for sessions (pool slots included).
#[derive(Clone, Copy, Debug)]
pub struct Capacity {
    /// CPUs' worth of time, summed over sandboxes' `cpus`.
    pub cpus: f64,
    /// MiB, summed over sandboxes' `memory_mb`.
    pub memory_mb: u64,
    /// Sandboxes.
    pub sandboxes: usize,
}

/// Sandboxes at most, whatever the host.
const SANDBOXES_MAX: usize = 256;

/// gVisor sandboxes per host CPU by default. An idle gVisor sandbox is not free: its sentry
/// alone takes about 4% of a core doing nothing (`runsc do sleep`, systrap and ptrace alike,
/// runsc 20240729 on a 2-core VM), 5% with the agent. Twelve per CPU keep what idle sandboxes
/// take below two thirds of the host, so that the sessions that do work still get the rest;
/// more made a 2-core host starve (50 sessions: creates took half a minute each, and one
/// sandbox's start timed out).
const GVISOR_SANDBOXES_PER_CPU: usize = 12;

impl Capacity {
    /// This host's: eight times its CPUs (a session's `cpus` is a ceiling, and sessions
    /// mostly sit idle), its memory, and 256 sandboxes, or [`GVISOR_SANDBOXES_PER_CPU`] per
    /// CPU when `gvisor` sandboxes are the default.
    pub fn of_host(gvisor: bool) -> Capacity {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let memory_mb = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|text| {
                let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
                line.split_whitespace().nth(1)?.parse::<u64>().ok()
            })
            .map_or(4096, |kib| kib / 1024);
        let sandboxes = if gvisor {
            (cpus as usize * GVISOR_SANDBOXES_PER_CPU).min(SANDBOXES_MAX)
        } else {
            SANDBOXES_MAX
        };
        Capacity { cpus: cpus * 8.0, memory_mb, sandboxes }
    }
}

/// What is in use: (cpus, memory MiB, sandboxes).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    /// CPUs.
    pub cpus: f64,
    /// MiB.
    pub memory_mb: u64,
    /// Sandboxes.
    pub sandboxes: usize,
}

impl Usage {
    fn add(&mut self, limits: &SessionLimits) {
        self.cpus += limits.cpus;
        self.memory_mb += u64::from(limits.memory_mb);
        self.sandboxes += 1;
    }
}

/// Why `limits` does not fit next to `used` within `capacity`, if it does not.
pub fn does_not_fit(capacity: &Capacity, used: &Usage, limits: &SessionLimits) -> Option<String> {
    if used.sandboxes + 1 > capacity.sandboxes {
        return Some(format!(
            "the host is full: {} of {} sandboxes run",
            used.sandboxes, capacity.sandboxes
        ));
    }
    if used.cpus + limits.cpus > capacity.cpus + 1e-9 {
        return Some(format!(
            "the host is full: {:.1} of {:.1} CPUs are taken and this session asks for {:.1}",
            used.cpus, capacity.cpus, limits.cpus
        ));
    }
    if used.memory_mb + u64::from(limits.memory_mb) > capacity.memory_mb {
        return Some(format!(
            "the host is full: {} of {} MiB of memory are taken and this session asks for {}",
            used.memory_mb, capacity.memory_mb, limits.memory_mb
        ));
    }
    None
}

impl Sessions {
    /// The limits every pool slot starts with (a claim applies the session's own).
    pub(super) fn pool_limits() -> SessionLimits {
        SessionLimits {
            cpus: super::DEFAULT_CPUS,
            memory_mb: super::DEFAULT_MEMORY_MB,
            disk_mb: super::DEFAULT_DISK_MB,
            pids: super::PIDS_PER_SESSION,
        }
    }

    /// Running and starting sessions and pool slots, summed.
    pub(super) async fn usage(&self) -> Usage {
        let mut usage = Usage::default();
        for limits in self.live.lock().await.values().map(|l| l.limits) {
            usage.add(&limits);
        }
        for limits in self.starting.lock().await.values() {
            usage.add(limits);
        }
        for warm in self.pool.lock().await.iter() {
            usage.add(&warm.live.limits);
        }
        usage
    }

    /// Counts session `id` with `limits` until [`Sessions::unreserve`], or answers 503 when
    /// it does not fit; spare pool slots are discarded to make room.
    pub(super) async fn reserve(&self, id: &str, limits: &SessionLimits) -> Result<()> {
        let _one_at_a_time = self.reserving.lock().await;
        loop {
            let Some(reason) = does_not_fit(&self.config.capacity, &self.usage().await, limits)
            else {
                self.starting.lock().await.insert(id.to_owned(), *limits);
                return Ok(());
            };
            let spare = self.pool.lock().await.pop();
            match spare {
                Some(warm) => self.discard(warm).await,
                None => return Err(AppError::new(http::StatusCode::SERVICE_UNAVAILABLE, reason)),
            }
        }
    }

    /// Like [`Sessions::reserve`] for a pool slot, which never displaces another.
    async fn reserve_for_pool(&self, id: &str) -> std::result::Result<(), String> {
        let _one_at_a_time = self.reserving.lock().await;
        let limits = Self::pool_limits();
        if let Some(why) = does_not_fit(&self.config.capacity, &self.usage().await, &limits) {
            return Err(why);
        }
        self.starting.lock().await.insert(id.to_owned(), limits);
        Ok(())
    }

    /// Stops counting a starting sandbox (it runs, counted as live or pooled, or failed).
    pub(super) async fn unreserve(&self, id: &str) {
        self.starting.lock().await.remove(id);
    }

    /// The pool key of a session that asks for `image` with `disk_mb`, `network` on `driver`.
    pub(super) fn pool_key(
        &self,
        image: &str,
        disk_mb: u32,
        network: bool,
        driver: &sandbox::Driver,
    ) -> anyhow::Result<PoolKey> {
        let spec_path = self.config.images_dir.join(format!("{image}.toml"));
        Ok(PoolKey {
            driver: driver.name().to_owned(),
            image: image.to_owned(),
            rootfs: self.spec_dirs.dir(&spec_path)?.join("rootfs"),
            disk_mb,
            network,
        })
    }

    /// Takes a live slot of `key` out of the pool, if there is one.
    pub(super) async fn claim(&self, key: &PoolKey) -> Option<Warm> {
        loop {
            let warm = {
                let mut pool = self.pool.lock().await;
                let at = pool.iter().position(|w| &w.key == key)?;
                pool.remove(at)
            };
            self.pool_wake.notify_one();
            if warm.live.sandbox.alive() {
                return Some(warm);
            }
            tracing::warn!(slot = %warm.id, "a pool slot died: discarded");
            self.discard(warm).await;
        }
    }

    /// Stops a pool slot and removes everything of it.
    pub(super) async fn discard(&self, warm: Warm) {
        self.discard_sandbox(&warm.id, &warm.live.sandbox).await;
    }

    async fn discard_sandbox(&self, id: &str, sandbox: &sandbox::Sandbox) {
        if let Err(e) = sandbox::stop(sandbox).await {
            tracing::warn!(slot = %id, "stopping a pool slot: {e:#}");
        }
        if let Some(network) = self.network.get() {
            network.detach(id).await;
        }
        let _ = sandbox::remove_session_dir(&self.session_dir(id)).await;
    }

    /// Discards every pool slot (at shutdown: they are spare). A slot being started is waited
    /// for (at most [`DRAIN_WAIT`]) and discarded too, rather than left running with no server.
    pub async fn drain_pool(&self) {
        self.pool_closed.store(true, std::sync::atomic::Ordering::SeqCst);
        let filling = tokio::time::timeout(DRAIN_WAIT, self.pool_filling.lock()).await;
        if filling.is_err() {
            tracing::warn!("a pool slot was still starting at shutdown; the next start removes it");
        }
        let slots: Vec<Warm> = self.pool.lock().await.drain(..).collect();
        for warm in slots {
            self.discard(warm).await;
        }
    }

    /// How many slots of each configured image are ready: (image, ready, wanted).
    async fn pool_status(&self) -> Vec<(String, usize, usize)> {
        let pool = self.pool.lock().await;
        self.config
            .pool_images
            .iter()
            .map(|image| {
                let ready = pool.iter().filter(|w| &w.key.image == image).count();
                (image.clone(), ready, self.config.pool_size)
            })
            .collect()
    }

    /// How this server runs sessions, for `GET /api/server`.
    pub async fn server_info(&self) -> proto::api::ServerInfo {
        let drivers = &self.config.drivers;
        let used = self.usage().await;
        let capacity = &self.config.capacity;
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        proto::api::ServerInfo {
            driver: drivers.default_driver().name().to_owned(),
            isolation: drivers.default_driver().isolation().to_owned(),
            warnings: drivers.warnings().to_vec(),
            pool: self
                .pool_status()
                .await
                .into_iter()
                .map(|(image, ready, size)| proto::api::PoolStatus {
                    image,
                    ready: count(ready),
                    size: count(size),
                })
                .collect(),
            capacity: proto::api::Resources {
                cpus: capacity.cpus,
                memory_mb: capacity.memory_mb,
                sandboxes: count(capacity.sandboxes),
            },
            used: proto::api::Resources {
                cpus: used.cpus,
                memory_mb: used.memory_mb,
                sandboxes: count(used.sandboxes),
            },
        }
    }

    /// Keeps the pool full until the server ends.
    pub async fn fill_pool_forever(self: std::sync::Arc<Self>) {
        if self.config.pool_size == 0 {
            return;
        }
        loop {
            self.fill_pool_once().await;
            let _ = tokio::time::timeout(REFILL_EVERY, self.pool_wake.notified()).await;
        }
    }

    async fn fill_pool_once(&self) {
        let _filling = self.pool_filling.lock().await;
        let driver = self.config.drivers.default_driver().clone();
        let network = self.network.get().is_some();
        for image in &self.config.pool_images {
            let key = match self.pool_key(image, super::DEFAULT_DISK_MB, network, &driver) {
                Ok(key) => key,
                Err(e) => {
                    tracing::warn!(%image, "no pool for this image: {e:#}");
                    continue;
                }
            };
            let stale: Vec<Warm> = {
                let mut pool = self.pool.lock().await;
                let (stale, keep) =
                    pool.drain(..).partition(|w| w.key.image == *image && w.key != key);
                *pool = keep;
                stale
            };
            for warm in stale {
                tracing::info!(slot = %warm.id, %image, "the image changed: pool slot discarded");
                self.discard(warm).await;
            }
            loop {
                let ready = self.pool.lock().await.iter().filter(|w| w.key == key).count();
                let closed = self.pool_closed.load(std::sync::atomic::Ordering::SeqCst);
                if ready >= self.config.pool_size || closed {
                    break;
                }
                let slot = crate::auth::random_id();
                if let Err(why) = self.reserve_for_pool(&slot).await {
                    tracing::debug!("the pool waits for room: {why}");
                    break;
                }
                let started = self.start_warm(&slot, &key, &driver).await;
                // Pushed into the pool before it stops being counted as starting.
                if let Ok(warm) = &started {
                    tracing::debug!(slot = %warm.id, %image, "pool slot ready");
                }
                match started {
                    Ok(warm) => {
                        self.pool.lock().await.push(warm);
                        self.unreserve(&slot).await;
                    }
                    Err(e) => {
                        self.unreserve(&slot).await;
                        tracing::debug!(%image, "starting a pool slot: {e:#}");
                        break;
                    }
                }
            }
        }
    }

    async fn start_warm(
        &self,
        id: &str,
        key: &PoolKey,
        driver: &sandbox::Driver,
    ) -> anyhow::Result<Warm> {
        let id = id.to_owned();
        // A pool never builds an image: the first session of it (or `flint image build`) does.
        let spec_path = self.config.images_dir.join(format!("{}.toml", key.image));
        let image = crate::images::load_spec(&spec_path)?;
        if crate::images::built_rootfs(&self.config.data_dir, &image).is_none() {
            anyhow::bail!("image {} is not built yet: the pool waits for it", key.image);
        }
        let rootfs = key.rootfs.clone();
        let limits = Self::pool_limits();
        let spec = Spec {
            id: id.clone(),
            driver: driver.clone(),
            rootfs,
            session_dir: self.session_dir(&id),
            disk_mb: u64::from(key.disk_mb),
            agent_bin: self.config.agent_bin.clone(),
            cgroup: self.cgroup(&id),
            limits: super::cgroup_limits(&limits),
            net: None,
            preview_url: self.config.preview.url(&format!("{{port}}-{id}"), "/"),
            ca_bundle: self.config.ca_bundle.clone(),
        };
        let network = if key.network { self.network.get() } else { None };
        let spec = match network {
            Some(network) => Spec { net: Some(network.attach(&id).await?), ..spec },
            None => spec,
        };
        let started = async {
            let sandbox = sandbox::start(&spec).await?;
            let client = sandbox.client().await?;
            let live = Live::new(sandbox, client, limits);
            anyhow::Ok(live)
        };
        let live = match started.await {
            Ok(live) => live,
            Err(e) => {
                if let Some(network) = network {
                    network.detach(&id).await;
                }
                let _ = sandbox::remove_session_dir(&self.session_dir(&id)).await;
                return Err(e);
            }
        };
        if let Err(e) = first_shell(&live, &Default::default()).await {
            self.discard_sandbox(&id, &live.sandbox).await;
            return Err(e);
        }
        Ok(Warm { id, key: key.clone(), live })
    }
}

/// The sandbox's first shell at its prompt: the one its agent started (`--first-shell`),
/// or, when the session asks for `env` (which that shell lacks) or the agent started none,
/// a new one in its place.
pub(super) async fn first_shell(
    live: &Live,
    env: &std::collections::BTreeMap<String, String>,
) -> anyhow::Result<()> {
    let started = live.client.terminals().await?;
    let terminal = match started.first() {
        Some(first) if env.is_empty() => first.id.clone(),
        _ => {
            for stale in &started {
                live.client.kill_terminal(&stale.id).await?;
            }
            let request = CreateTerminal { env: env.clone(), ..CreateTerminal::default() };
            live.client.create_terminal(&request).await?.id
        }
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let info = live.client.terminals().await?;
        let ready = info.iter().any(|t| t.id == terminal && t.shell == ShellState::Prompt);
        if ready {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("the first shell did not reach a prompt in 10 s");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(cpus: f64, memory_mb: u32) -> SessionLimits {
        SessionLimits { cpus, memory_mb, disk_mb: 1024, pids: 1024 }
    }

    #[test]
    fn gvisor_hosts_hold_a_dozen_sandboxes_per_cpu_by_default() {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let gvisor = Capacity::of_host(true);
        assert_eq!(gvisor.sandboxes, (cpus * GVISOR_SANDBOXES_PER_CPU).min(SANDBOXES_MAX));
        assert_eq!(gvisor.cpus, cpus as f64 * 8.0);
        assert_eq!(Capacity::of_host(false).sandboxes, SANDBOXES_MAX);
    }

    #[test]
    fn a_session_fits_until_one_of_cpu_memory_or_count_runs_out() {
        let capacity = Capacity { cpus: 4.0, memory_mb: 4096, sandboxes: 3 };
        let mut used = Usage::default();
        assert_eq!(does_not_fit(&capacity, &used, &limits(2.0, 2048)), None);
        used.add(&limits(2.0, 2048));
        used.add(&limits(1.5, 1024));
        let cpu = does_not_fit(&capacity, &used, &limits(1.0, 512)).expect("no cpu left");
        assert!(cpu.contains("3.5 of 4.0 CPUs"), "{cpu}");
        let memory = does_not_fit(&capacity, &used, &limits(0.5, 2048)).expect("no memory left");
        assert!(memory.contains("3072 of 4096 MiB"), "{memory}");
        assert_eq!(does_not_fit(&capacity, &used, &limits(0.5, 1024)), None);
        used.add(&limits(0.5, 1024));
        let count = does_not_fit(&capacity, &used, &limits(0.1, 64)).expect("no slot left");
        assert!(count.contains("3 of 3 sandboxes"), "{count}");
    }
}
