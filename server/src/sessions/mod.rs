//! Sessions: the domain core of the control plane. A session is a sandbox (today from the
//! `process` driver) plus its `/workspace`, with a lifecycle written to the store before
//! each side effect so a crash mid-way is recoverable.
//!
//! **Architecture invariant:** this module knows no transport; `core::perform` calls it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use guest_agent::client::Client;
use proto::api::{CreateSession, SessionInfo, SessionLimits, SessionState};
use tokio::sync::Mutex;

use crate::error::{AppError, Result};
use crate::metrics::Metrics;
use crate::sandbox::cgroup::Limits;
use crate::sandbox::volume::Volume;
use crate::sandbox::{self, Sandbox, Spec};
use crate::store::{SessionRecord, Store, User, now_ms};

mod follow;
pub mod pool;

/// A stream of bytes to relay (a tarball).
pub type ByteStream = futures_util::stream::BoxStream<'static, std::io::Result<bytes::Bytes>>;

/// Defaults and bounds of a session's resources.
const DEFAULT_CPUS: f64 = 1.0;
const MIN_CPUS: f64 = 0.1;
const MAX_CPUS: f64 = 64.0;
const DEFAULT_MEMORY_MB: u32 = 1024;
const DEFAULT_DISK_MB: u32 = 4096;
const DEFAULT_LIFETIME_S: u64 = 3600;
const MAX_LIFETIME_S: u64 = 7 * 24 * 3600;
/// Processes and threads per sandbox: plenty for a build, a bound for a fork bomb.
const PIDS_PER_SESSION: u32 = 1024;

/// Where things live and what to run.
#[derive(Clone, Debug)]
pub struct SessionsConfig {
    /// The server's data directory.
    pub data_dir: PathBuf,
    /// Where image specs (`NAME.toml`) are.
    pub images_dir: PathBuf,
    /// The guest-agent binary bind-mounted into sandboxes.
    pub agent_bin: PathBuf,
    /// A running session with no client attached and no API call for this long stops.
    pub idle_timeout: Duration,
    /// A stopped (or failed) session, `/workspace` included, is deleted after this long.
    pub retention: Duration,
    /// Where preview URLs point.
    pub preview: crate::config::PreviewBase,
    /// The sandbox drivers.
    pub drivers: Arc<crate::drivers::Drivers>,
    /// Warm sandboxes kept per pool image (0: no pool).
    pub pool_size: usize,
    /// Images with a warm pool.
    pub pool_images: Vec<String>,
    /// What running sessions and pool slots may use together.
    pub capacity: pool::Capacity,
}

/// Default retention of a stopped session's `/workspace`: 7 days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Default idle timeout: 30 minutes, as Codespaces does.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

struct Live {
    sandbox: Sandbox,
    client: Client,
    /// Last API call or websocket message for this session.
    last_activity: Instant,
    /// Websocket clients attached now.
    attached: usize,
    /// OOM kills already recorded.
    oom_kills: u64,
    /// Its limits (what it counts against the host's capacity).
    limits: SessionLimits,
}

impl Live {
    fn new(sandbox: Sandbox, client: Client, limits: SessionLimits) -> Live {
        let oom_kills = sandbox.oom_kills();
        Live { sandbox, client, last_activity: Instant::now(), attached: 0, oom_kills, limits }
    }
}

/// A session's limits as its cgroup takes them.
fn cgroup_limits(limits: &SessionLimits) -> Limits {
    Limits {
        memory_mb: u64::from(limits.memory_mb),
        pids: u64::from(limits.pids),
        cpu_centis: (limits.cpus * 100.0).round() as u64,
    }
}

/// A change to a session, for live views (the events websocket).
#[derive(Clone, Debug)]
pub enum SessionChange {
    /// Created or changed: its record now.
    Changed {
        /// Whose session.
        owner_id: String,
        /// The session.
        info: Box<SessionInfo>,
    },
    /// Deleted.
    Deleted {
        /// Whose session it was.
        owner_id: String,
        /// Its id.
        id: String,
    },
    /// An entry of the session's activity feed was written or completed.
    Activity {
        /// Whose session.
        owner_id: String,
        /// The entry (its `session_id` is set).
        event: Box<proto::api::ActivityEvent>,
    },
    /// Its listening ports or their previews changed.
    Ports {
        /// Whose session.
        owner_id: String,
        /// The session.
        session_id: String,
        /// Its ports now.
        ports: Vec<proto::api::PreviewPort>,
    },
}

impl SessionChange {
    /// The session's owner.
    pub fn owner_id(&self) -> &str {
        match self {
            SessionChange::Changed { owner_id, .. }
            | SessionChange::Deleted { owner_id, .. }
            | SessionChange::Activity { owner_id, .. }
            | SessionChange::Ports { owner_id, .. } => owner_id,
        }
    }

    /// The session's id.
    pub fn session_id(&self) -> &str {
        match self {
            SessionChange::Changed { info, .. } => &info.id,
            SessionChange::Deleted { id, .. } => id,
            SessionChange::Activity { event, .. } => event.session_id.as_deref().unwrap_or(""),
            SessionChange::Ports { session_id, .. } => session_id,
        }
    }
}

/// Changes buffered per live view before it lags (and gets a fresh snapshot instead).
const CHANGES_BUFFER: usize = 256;

/// Every session of this server.
pub struct Sessions {
    store: Store,
    config: SessionsConfig,
    metrics: Arc<Metrics>,
    /// Names this server's cgroups, so parallel servers (tests) never collide.
    instance: String,
    live: Mutex<HashMap<String, Live>>,
    changes: tokio::sync::broadcast::Sender<SessionChange>,
    /// Sandbox networking, once `flint serve` set it up.
    network: std::sync::OnceLock<Arc<crate::net::Network>>,
    /// Warm sandboxes (see [`pool`]).
    pool: Mutex<Vec<pool::Warm>>,
    /// Wakes the pool's refill task.
    pool_wake: tokio::sync::Notify,
    /// Sessions and pool slots being started, counted against the capacity.
    starting: Mutex<HashMap<String, SessionLimits>>,
    /// Makes checking the capacity and counting a new sandbox one step.
    reserving: Mutex<()>,
    /// This, for the tasks it starts (guest reports of each running session).
    me: std::sync::Weak<Sessions>,
}

impl Sessions {
    /// The sessions of `store`.
    pub fn new(store: Store, config: SessionsConfig, metrics: Arc<Metrics>) -> Arc<Sessions> {
        let instance = crate::auth::hash_token(&config.data_dir.to_string_lossy())[..12].to_owned();
        let (changes, _) = tokio::sync::broadcast::channel(CHANGES_BUFFER);
        Arc::new_cyclic(|me| Sessions {
            store,
            config,
            metrics,
            instance,
            live: Mutex::default(),
            changes,
            network: std::sync::OnceLock::new(),
            pool: Mutex::default(),
            pool_wake: tokio::sync::Notify::new(),
            starting: Mutex::default(),
            reserving: Mutex::default(),
            me: me.clone(),
        })
    }

    /// Names this server's cgroups, network namespaces and nftables table.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Gives sessions their network (`flint serve` does, before adopting sandboxes).
    pub fn set_network(&self, network: Arc<crate::net::Network>) {
        let _ = self.network.set(network);
    }

    /// Sandbox networking, if set up.
    pub fn network(&self) -> Option<&Arc<crate::net::Network>> {
        self.network.get()
    }

    /// Writes an audit event and, when it belongs to a session, shows it in that session's
    /// activity feed.
    pub async fn audit(
        &self,
        user_id: Option<&str>,
        session_id: Option<&str>,
        kind: &str,
        detail: &serde_json::Value,
    ) -> Result<()> {
        let event = self.store.audit(user_id, session_id, kind, detail).await?;
        self.publish_activity(event).await;
        Ok(())
    }

    /// Shows a feed entry to the live views of its session's owner, looked up.
    pub async fn publish_activity(&self, event: proto::api::ActivityEvent) {
        let Some(session_id) = event.session_id.as_deref() else { return };
        match self.store.session(session_id).await {
            Ok(Some(record)) => self.publish_activity_of(&record.owner_id, event),
            Ok(None) => {}
            Err(e) => tracing::warn!(session = %session_id, "activity not published: {e}"),
        }
    }

    /// Shows a feed entry of a session owned by `owner_id` to that owner's live views.
    pub fn publish_activity_of(&self, owner_id: &str, event: proto::api::ActivityEvent) {
        if event.session_id.is_some() {
            // No receiver is fine: nobody is watching.
            let _ = self.changes.send(SessionChange::Activity {
                owner_id: owner_id.to_owned(),
                event: Box::new(event),
            });
        }
    }

    /// Every change to any session from now on (filter by owner).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<SessionChange> {
        self.changes.subscribe()
    }

    /// Tells live views about a session's current record.
    async fn publish(&self, id: &str) {
        match self.store.session(id).await {
            Ok(Some(record)) => {
                let change = SessionChange::Changed {
                    owner_id: record.owner_id,
                    info: Box::new(record.info),
                };
                // No receiver is fine: nobody is watching.
                let _ = self.changes.send(change);
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(session = %id, "reading a session to publish it: {e}"),
        }
    }

    /// Writes a session's state, then tells live views.
    async fn set_state(&self, id: &str, state: SessionState, reason: Option<&str>) -> Result<()> {
        self.store.set_session_state(id, state, reason).await?;
        self.publish(id).await;
        Ok(())
    }

    fn session_dir(&self, id: &str) -> PathBuf {
        self.config.data_dir.join("sessions").join(id)
    }

    fn cgroup(&self, id: &str) -> PathBuf {
        PathBuf::from(format!("flint/{}/{id}", self.instance))
    }

    /// The sandbox of a session that outlived its handle (a server restart), if alive.
    fn adopt(&self, id: &str, driver: &str) -> Result<Option<Sandbox>> {
        let driver = self.config.drivers.by_name(driver);
        Sandbox::adopt(id, driver, &self.session_dir(id), &self.cgroup(id))
            .map_err(AppError::internal)
    }

    /// The record of a session, or 404.
    pub async fn record(&self, id: &str) -> Result<SessionRecord> {
        self.store.session(id).await?.ok_or_else(|| AppError::not_found(format!("no session {id}")))
    }

    /// A user's sessions.
    pub async fn list(&self, owner: &User) -> Result<Vec<SessionInfo>> {
        Ok(self.store.sessions_of(&owner.id).await?.into_iter().map(|r| r.info).collect())
    }

    /// Creates a session and waits until its sandbox answers.
    pub async fn create(&self, owner: &User, request: CreateSession) -> Result<SessionInfo> {
        let image = request.image.unwrap_or_else(|| "default".to_owned());
        if image.is_empty()
            || !image.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(AppError::bad_request("image must be a spec name like `default`"));
        }
        let limits = SessionLimits {
            cpus: {
                let cpus = request.cpus.unwrap_or(DEFAULT_CPUS);
                if !(MIN_CPUS..=MAX_CPUS).contains(&cpus) {
                    return Err(AppError::bad_request(format!(
                        "cpus must be {MIN_CPUS}..={MAX_CPUS}"
                    )));
                }
                cpus
            },
            memory_mb: bounded(
                "memory_mb",
                request.memory_mb.unwrap_or(DEFAULT_MEMORY_MB),
                64,
                65536,
            )?,
            disk_mb: bounded("disk_mb", request.disk_mb.unwrap_or(DEFAULT_DISK_MB), 64, 1 << 20)?,
            pids: PIDS_PER_SESSION,
        };
        let network = request.network.unwrap_or(true);
        if network && self.network.get().is_none() {
            return Err(AppError::new(
                http::StatusCode::SERVICE_UNAVAILABLE,
                "this server has no sandbox networking set up; create the session with \
                 `network: false`",
            ));
        }
        let lifetime = request.lifetime_s.unwrap_or(DEFAULT_LIFETIME_S);
        if lifetime == 0 || lifetime > MAX_LIFETIME_S {
            return Err(AppError::bad_request(format!("lifetime_s must be 1..={MAX_LIFETIME_S}")));
        }
        let driver = self.config.drivers.resolve(request.driver.as_deref()).await?;
        let spec_path = self.config.images_dir.join(format!("{image}.toml"));
        if !spec_path.exists() {
            return Err(AppError::bad_request(format!(
                "no image spec {image} in {}",
                self.config.images_dir.display()
            )));
        }
        let env = request.env.unwrap_or_default();
        // A warm sandbox of the same image, disk, network and driver, if the pool has one.
        let key = self.pool_key(&image, limits.disk_mb, network, &driver).ok();
        let warm = match &key {
            Some(key) if self.config.pool_size > 0 => self.claim(key).await,
            _ => None,
        };
        let id = warm.as_ref().map_or_else(crate::auth::random_id, |w| w.id.clone());
        // Counted from here until it runs or fails.
        match &warm {
            None => self.reserve(&id, &limits).await?,
            Some(_) => {
                self.starting.lock().await.insert(id.clone(), limits);
            }
        }
        let created_ms = now_ms();
        let info = SessionInfo {
            id: id.clone(),
            name: request
                .name
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| id[..8].to_owned()),
            image,
            driver: driver.name().to_owned(),
            isolation: driver.isolation().to_owned(),
            state: SessionState::Creating,
            reason: None,
            limits,
            network,
            created_ms,
            started_ms: None,
            start_duration_ms: None,
            stopped_ms: None,
            expires_ms: created_ms + (lifetime as i64) * 1000,
        };
        // Written before anything is started: a crash from here on leaves a record to clean.
        let inserted = self
            .store
            .insert_session(&SessionRecord { owner_id: owner.id.clone(), info: info.clone() })
            .await;
        if let Err(e) = inserted {
            self.unreserve(&id).await;
            if let Some(warm) = warm {
                self.discard(warm).await;
            }
            return Err(e);
        }
        self.publish(&id).await;
        let detail = serde_json::json!({
            "image": info.image, "network": info.network, "driver": info.driver,
            "warm": warm.is_some(),
        });
        self.audit(Some(&owner.id), Some(&id), "session.create", &detail).await?;
        let started = match warm {
            Some(warm) => self.take_warm(warm, &info, &env).await,
            None => {
                let started = self.start_sandbox(&info, &spec_path, driver).await;
                match started {
                    Ok(live) if !env.is_empty() => {
                        pool::first_shell(&live, &env).await.map(|_| live)
                    }
                    other => other,
                }
            }
        };
        match started {
            Ok(live) => {
                self.follow_guest_reports(&id, &live.client);
                self.follow_ports(&id, &live.client);
                self.live.lock().await.insert(id.clone(), live);
                self.unreserve(&id).await;
                self.set_state(&id, SessionState::Running, None).await?;
                let record = self.record(&id).await?;
                if let Some(ms) = record.info.start_duration_ms {
                    self.metrics.session_start_seconds.observe(ms as f64 / 1000.0);
                }
                Ok(record.info)
            }
            Err(e) => {
                self.unreserve(&id).await;
                let reason = format!("{e:#}");
                tracing::warn!(session = %id, "start failed: {reason}");
                self.set_state(&id, SessionState::Failed, Some(&reason)).await?;
                Ok(self.record(&id).await?.info)
            }
        }
    }

    /// Makes a warm sandbox the session `info`: its limits, and a fresh first shell when
    /// the session asks for `env`.
    async fn take_warm(
        &self,
        warm: pool::Warm,
        info: &SessionInfo,
        env: &std::collections::BTreeMap<String, String>,
    ) -> anyhow::Result<Live> {
        let mut live = warm.live;
        let prepared = async {
            live.sandbox.set_limits(cgroup_limits(&info.limits))?;
            live.limits = info.limits;
            if !env.is_empty() {
                live.client.kill_terminal(&warm.terminal).await?;
                pool::first_shell(&live, env).await?;
            }
            anyhow::Ok(())
        };
        match prepared.await {
            Ok(()) => Ok(live),
            Err(e) => {
                let _ = sandbox::stop(&live.sandbox).await;
                if let Some(network) = self.network.get() {
                    network.detach(&info.id).await;
                }
                Err(e)
            }
        }
    }

    async fn start_sandbox(
        &self,
        info: &SessionInfo,
        spec_path: &Path,
        driver: sandbox::Driver,
    ) -> anyhow::Result<Live> {
        let image = crate::images::load_spec(spec_path)?;
        let rootfs = crate::images::ensure_built(&self.config.data_dir, &image, false).await?;
        let spec = Spec {
            id: info.id.clone(),
            driver,
            rootfs,
            session_dir: self.session_dir(&info.id),
            disk_mb: u64::from(info.limits.disk_mb),
            agent_bin: self.config.agent_bin.clone(),
            cgroup: self.cgroup(&info.id),
            limits: cgroup_limits(&info.limits),
            net: None,
            preview_url: self.config.preview.url(&format!("{{port}}-{}", info.id), "/"),
        };
        let network = if info.network { self.network.get() } else { None };
        let spec = match network {
            Some(network) => Spec { net: Some(network.attach(&info.id).await?), ..spec },
            None => spec,
        };
        let started = async {
            let sandbox = sandbox::start(&spec).await?;
            let client = sandbox.client().await?;
            anyhow::Ok(Live::new(sandbox, client, info.limits))
        };
        match started.await {
            Ok(live) => Ok(live),
            Err(e) => {
                if let Some(network) = network {
                    network.detach(&info.id).await;
                }
                Err(e)
            }
        }
    }

    /// Counts as activity: an API call or a websocket message.
    pub async fn touch(&self, id: &str) {
        if let Some(live) = self.live.lock().await.get_mut(id) {
            live.last_activity = Instant::now();
        }
    }

    /// A websocket client attached (`true`) or left (`false`).
    pub async fn attached(&self, id: &str, attached: bool) {
        if let Some(live) = self.live.lock().await.get_mut(id) {
            live.attached =
                if attached { live.attached + 1 } else { live.attached.saturating_sub(1) };
            live.last_activity = Instant::now();
        }
    }

    /// The agent client of a running session.
    pub async fn client(&self, id: &str) -> Result<Client> {
        if let Some(live) = self.live.lock().await.get_mut(id) {
            live.last_activity = Instant::now();
            return Ok(live.client.clone());
        }
        let record = self.record(id).await?;
        Err(AppError::new(
            http::StatusCode::CONFLICT,
            format!("session {id} is {}, not running", record.info.state.as_str()),
        ))
    }

    /// `/workspace` as a tar stream: from the agent while the session runs, from its volume
    /// once it stopped (kept until the session is deleted).
    pub async fn workspace_tar(&self, id: &str) -> Result<ByteStream> {
        use futures_util::{StreamExt as _, TryStreamExt as _};
        use http_body_util::BodyExt as _;
        let client = self.live.lock().await.get(id).map(|live| live.client.clone());
        if let Some(client) = client {
            let body = client.tar("/workspace").await.map_err(crate::core::agent_error)?;
            return Ok(body.into_data_stream().map_err(std::io::Error::other).boxed());
        }
        let record = self.record(id).await?;
        if !matches!(record.info.state, SessionState::Stopped | SessionState::Failed) {
            return Err(AppError::new(
                http::StatusCode::CONFLICT,
                format!("session {id} is {}; try again in a moment", record.info.state.as_str()),
            ));
        }
        let volume = Volume::of(&self.session_dir(id));
        if !volume.exists() {
            return Err(AppError::not_found(format!("session {id} has no workspace")));
        }
        let stream = volume
            .export_workspace()
            .await
            .map_err(|e| AppError::internal(format!("exporting {id}'s workspace: {e:#}")))?;
        Ok(stream.boxed())
    }

    /// Sets a running session's lifetime to `lifetime_s` from now.
    pub async fn extend(&self, id: &str, lifetime_s: u64) -> Result<SessionInfo> {
        if lifetime_s == 0 || lifetime_s > MAX_LIFETIME_S {
            return Err(AppError::bad_request(format!("lifetime_s must be 1..={MAX_LIFETIME_S}")));
        }
        self.store.set_session_expiry(id, now_ms() + (lifetime_s as i64) * 1000).await?;
        self.publish(id).await;
        Ok(self.record(id).await?.info)
    }

    /// Stops a session's sandbox, keeping `/workspace`.
    pub async fn stop(&self, id: &str, reason: Option<&str>) -> Result<()> {
        self.set_state(id, SessionState::Stopping, reason).await?;
        let live = self.live.lock().await.remove(id);
        if let Some(live) = live {
            sandbox::stop(&live.sandbox)
                .await
                .map_err(|e| AppError::internal(format!("stopping {id}: {e:#}")))?;
        } else if let Some(sandbox) = self.adopt(id, &self.record(id).await?.info.driver)? {
            sandbox::stop(&sandbox)
                .await
                .map_err(|e| AppError::internal(format!("stopping {id}: {e:#}")))?;
        }
        if let Some(network) = self.network.get() {
            network.detach(id).await;
        }
        self.set_state(id, SessionState::Stopped, reason).await?;
        Ok(())
    }

    /// Stops a session and deletes everything of it, `/workspace` included.
    pub async fn delete(&self, id: &str) -> Result<()> {
        self.stop(id, None).await?;
        let dir = self.session_dir(id);
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(AppError::internal(format!("removing {}: {e}", dir.display())));
            }
        }
        let owner_id = self.record(id).await?.owner_id;
        self.store.delete_session(id).await?;
        let _ = self.changes.send(SessionChange::Deleted { owner_id, id: id.to_owned() });
        Ok(())
    }

    /// At start-up: re-attaches to sandboxes that outlived the previous server, and marks
    /// sessions whose sandbox is gone (or that were mid-way) as failed.
    pub async fn adopt_all(&self) -> Result<()> {
        let records = self
            .store
            .sessions_in(&[SessionState::Creating, SessionState::Running, SessionState::Stopping])
            .await?;
        let mut networked = std::collections::HashSet::new();
        for record in records {
            let id = &record.info.id;
            let adopted = match record.info.state {
                SessionState::Running => self.adopt(id, &record.info.driver)?,
                _ => None,
            };
            let client = match &adopted {
                Some(sandbox) => sandbox.client().await.ok(),
                None => None,
            };
            match (adopted, client) {
                (Some(sandbox), Some(client)) => {
                    tracing::info!(session = %id, "re-adopted a running sandbox");
                    if record.info.network {
                        networked.insert(id.clone());
                    }
                    self.follow_guest_reports(id, &client);
                    self.follow_ports(id, &client);
                    let live = Live::new(sandbox, client, record.info.limits);
                    self.live.lock().await.insert(id.clone(), live);
                }
                (sandbox, _) => {
                    if let Some(sandbox) = sandbox {
                        let _ = sandbox::stop(&sandbox).await;
                    }
                    let reason = format!(
                        "the sandbox was lost while the server was down (it was {})",
                        record.info.state.as_str()
                    );
                    self.set_state(id, SessionState::Failed, Some(&reason)).await?;
                }
            }
        }
        self.remove_orphans().await;
        // The kernel holds each sandbox's network; put back what is missing, remove the rest.
        if let Some(network) = self.network.get() {
            let lost = network.reconcile(&networked).await.map_err(AppError::internal)?;
            for id in lost {
                tracing::warn!(session = %id, "its network was lost while the server was down");
                if let Some(live) = self.live.lock().await.remove(&id) {
                    let _ = sandbox::stop(&live.sandbox).await;
                }
                let reason = "its network was lost while the server was down";
                self.set_state(&id, SessionState::Failed, Some(reason)).await?;
            }
        }
        Ok(())
    }

    /// Removes sandboxes that have no session: warm pool slots of the previous server (and
    /// whatever a crash between start and record left).
    async fn remove_orphans(&self) {
        let Ok(entries) = std::fs::read_dir(self.config.data_dir.join("sessions")) else {
            return;
        };
        for entry in entries.flatten() {
            let id = entry.file_name().to_string_lossy().into_owned();
            if !matches!(self.store.session(&id).await, Ok(None)) {
                continue;
            }
            let driver =
                if entry.path().join("sandbox/bundle").exists() { "gvisor" } else { "process" };
            if let Ok(Some(sandbox)) = self.adopt(&id, driver) {
                tracing::info!(slot = %id, "removing a sandbox with no session (a warm one)");
                let _ = sandbox::stop(&sandbox).await;
            }
            if let Err(e) = std::fs::remove_dir_all(entry.path()) {
                tracing::warn!(slot = %id, "removing an orphan's directory: {e}");
            }
        }
    }

    /// Once a second: stops sessions whose lifetime is over or that sat idle too long, and
    /// records OOM kills. Runs until the server ends.
    pub async fn watch_forever(self: Arc<Self>) {
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        for tick in 0u64.. {
            ticker.tick().await;
            if tick % 10 == 0
                && let Some(network) = self.network.get()
                && let Err(e) = network.refresh_host_addresses().await
            {
                tracing::warn!("refreshing the host's addresses: {e:#}");
            }
            if let Err(e) = self.watch_once().await {
                tracing::warn!("session watch: {e}");
            }
        }
    }

    async fn watch_once(&self) -> Result<()> {
        let now = now_ms();
        let mut to_stop: Vec<(String, String)> = self
            .store
            .sessions_in(&[SessionState::Running])
            .await?
            .into_iter()
            .filter(|r| r.info.expires_ms <= now)
            .map(|r| (r.info.id, "its lifetime ran out".to_owned()))
            .collect();
        let mut ooms = Vec::new();
        let mut dead = Vec::new();
        {
            let mut live = self.live.lock().await;
            for (id, session) in live.iter_mut() {
                let idle = session.last_activity.elapsed();
                if session.attached == 0
                    && idle >= self.config.idle_timeout
                    && !to_stop.iter().any(|(s, _)| s == id)
                {
                    to_stop.push((
                        id.clone(),
                        format!("idle for {} s with no client attached", idle.as_secs()),
                    ));
                }
                let kills = session.sandbox.oom_kills();
                if kills > session.oom_kills {
                    ooms.push((id.clone(), kills - session.oom_kills));
                }
                if !session.sandbox.alive() {
                    let memory_mb = session.sandbox.memory_mb();
                    let reason = if kills > 0 {
                        format!(
                            "out of memory: the sandbox went over its {memory_mb} MiB and was \
                             ended (/workspace is kept)"
                        )
                    } else {
                        "the sandbox ended unexpectedly (/workspace is kept)".to_owned()
                    };
                    dead.push((id.clone(), reason));
                }
                session.oom_kills = kills;
            }
        }
        for (id, count) in ooms {
            tracing::warn!(session = %id, count, "out of memory: the kernel killed a process");
            let detail = serde_json::json!({ "kills": count });
            self.audit(None, Some(&id), "session.oom_kill", &detail).await?;
        }
        let retention_ms = i64::try_from(self.config.retention.as_millis()).unwrap_or(i64::MAX);
        let expired =
            self.store.sessions_in(&[SessionState::Stopped, SessionState::Failed]).await?;
        for record in expired {
            let stopped = record.info.stopped_ms.unwrap_or(record.info.created_ms);
            if stopped.saturating_add(retention_ms) <= now {
                tracing::info!(session = %record.info.id, "retention over: deleting");
                self.delete(&record.info.id).await?;
                let detail = serde_json::json!({ "session_id": record.info.id });
                self.store
                    .audit(Some(&record.owner_id), None, "session.retention_delete", &detail)
                    .await?;
            }
        }
        for (id, reason) in dead {
            tracing::warn!(session = %id, "{reason}");
            self.audit(None, Some(&id), "session.failed", &serde_json::json!({ "reason": reason }))
                .await?;
            if let Err(e) = self.stop(&id, Some(&reason)).await {
                tracing::warn!(session = %id, "cleaning up after the sandbox ended: {e}");
            }
            self.set_state(&id, SessionState::Failed, Some(&reason)).await?;
        }
        for (id, reason) in to_stop {
            tracing::info!(session = %id, "stopping: {reason}");
            if let Err(e) = self.stop(&id, Some(&reason)).await {
                tracing::warn!(session = %id, "stopping: {e}");
            }
        }
        Ok(())
    }
}

fn bounded(name: &str, value: u32, min: u32, max: u32) -> Result<u32> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(AppError::bad_request(format!("{name} must be {min}..={max}")))
    }
}
