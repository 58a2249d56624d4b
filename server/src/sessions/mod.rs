//! Sessions: the domain core of the control plane. A session is a sandbox (today from the
//! `process` driver) plus its `/workspace`, with a lifecycle written to the store before
//! each side effect so a crash mid-way is recoverable.
//!
//! **Architecture invariant:** this module knows no transport; `core::perform` calls it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_client::client::Client;
use proto::api::{SessionInfo, SessionLimits, SessionState};
use tokio::sync::Mutex;

use crate::error::{AppError, Result};
use crate::metrics::Metrics;
use crate::sandbox::cgroup::Limits;
use crate::sandbox::volume::Volume;
use crate::sandbox::{self, Sandbox};
use crate::store::{SessionRecord, Store, User, now_ms};

mod create;
mod follow;
mod link;
pub mod pool;
mod watch;

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
    /// The CA bundle sandboxes trust besides their images' (`sandbox::trust`).
    pub ca_bundle: Option<PathBuf>,
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
    /// Held while its agent is being reconnected (see [`link`]).
    relinking: link::Relinking,
    /// Its previews' tunnels open now (see [`Sessions::tunnel_slot`]).
    tunnels: Arc<tokio::sync::Semaphore>,
}

impl Live {
    fn new(sandbox: Sandbox, client: Client, limits: SessionLimits) -> Live {
        let oom_kills = sandbox.oom_kills();
        Live {
            sandbox,
            client,
            last_activity: Instant::now(),
            attached: 0,
            oom_kills,
            limits,
            relinking: Arc::default(),
            tunnels: Arc::new(tokio::sync::Semaphore::new(agent_client::link::MAX_TUNNELS)),
        }
    }
}

/// How long a preview request waits for one of its session's tunnels to be free.
const TUNNEL_QUEUE_WAIT: Duration = Duration::from_secs(30);

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
    /// Who is attached to it changed.
    Presence {
        /// Whose session.
        owner_id: String,
        /// The session.
        session_id: String,
        /// Its people now.
        presence: proto::people::Presence,
    },
}

impl SessionChange {
    /// The session's owner.
    pub fn owner_id(&self) -> &str {
        match self {
            SessionChange::Changed { owner_id, .. }
            | SessionChange::Deleted { owner_id, .. }
            | SessionChange::Activity { owner_id, .. }
            | SessionChange::Ports { owner_id, .. }
            | SessionChange::Presence { owner_id, .. } => owner_id,
        }
    }

    /// The session's id.
    pub fn session_id(&self) -> &str {
        match self {
            SessionChange::Changed { info, .. } => &info.id,
            SessionChange::Deleted { id, .. } => id,
            SessionChange::Activity { event, .. } => event.session_id.as_deref().unwrap_or(""),
            SessionChange::Ports { session_id, .. }
            | SessionChange::Presence { session_id, .. } => session_id,
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
    /// Held while the refill task starts slots: the shutdown's drain waits for it.
    pool_filling: tokio::sync::Mutex<()>,
    /// The server is shutting down: no more pool slots are started.
    pool_closed: std::sync::atomic::AtomicBool,
    /// The image directories of pool keys, read again when a spec changes.
    spec_dirs: crate::images::SpecDirs,
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
        let spec_dirs = crate::images::SpecDirs::new(&config.data_dir);
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
            pool_filling: tokio::sync::Mutex::new(()),
            pool_closed: std::sync::atomic::AtomicBool::new(false),
            spec_dirs,
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

    /// [`Sessions::audit`] of what `caller` did: under their user, or a guest's display
    /// name (a guest is no user).
    pub async fn audit_by(
        &self,
        caller: &crate::auth::Caller,
        session_id: Option<&str>,
        kind: &str,
        detail: &serde_json::Value,
    ) -> Result<()> {
        let (user_id, actor) = match &caller.via {
            crate::auth::Via::Guest { .. } => (None, Some(caller.user.name.as_str())),
            _ => (Some(caller.user.id.as_str()), None),
        };
        let event = self.store.audit_as(user_id, actor, session_id, kind, detail).await?;
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

    /// Tells the live views of `session_id` who is attached to it now.
    pub async fn publish_presence(&self, session_id: &str, presence: proto::people::Presence) {
        match self.store.session(session_id).await {
            Ok(Some(record)) => {
                // No receiver is fine: nobody is watching.
                let _ = self.changes.send(SessionChange::Presence {
                    owner_id: record.owner_id,
                    session_id: session_id.to_owned(),
                    presence,
                });
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(session = %session_id, "presence not published: {e}"),
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

    /// The agent client of a running session; connected again first if its connection is
    /// gone (503 while the agent does not answer: the session is then `degraded`).
    pub async fn client(&self, id: &str) -> Result<Client> {
        match self.open_client(id).await {
            Some(Ok(client)) => return Ok(client),
            Some(Err(())) => {
                if let Some(result) = self.relink(id).await {
                    return result;
                }
            }
            None => {}
        }
        Err(self.not_running(id).await)
    }

    /// Why session `id` has no agent to talk to: 404 if there is no such session, else 409
    /// with its state.
    async fn not_running(&self, id: &str) -> AppError {
        match self.record(id).await {
            Ok(record) => AppError::new(
                http::StatusCode::CONFLICT,
                format!("session {id} is {}, not running", record.info.state.as_str()),
            ),
            Err(e) => e,
        }
    }

    /// A slot for one more preview tunnel into a running session: at most
    /// [`agent_client::link::MAX_TUNNELS`] are open at once (the agent's bound, which keeps
    /// its connection window from filling); a request beyond waits for one to close, up to
    /// [`TUNNEL_QUEUE_WAIT`], and then gets a 503. The slot is held as long as the tunnel.
    pub async fn tunnel_slot(&self, id: &str) -> Result<tokio::sync::OwnedSemaphorePermit> {
        let slots = self.live.lock().await.get(id).map(|live| live.tunnels.clone());
        let Some(slots) = slots else {
            return Err(self.not_running(id).await);
        };
        match tokio::time::timeout(TUNNEL_QUEUE_WAIT, slots.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) | Err(_) => Err(AppError::new(
                http::StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "all {} of the session's preview connections stayed busy for {}s",
                    agent_client::link::MAX_TUNNELS,
                    TUNNEL_QUEUE_WAIT.as_secs()
                ),
            )),
        }
    }

    /// `/workspace` as a tar stream: from the agent while the session runs, from its volume
    /// once it stopped (kept until the session is deleted).
    pub async fn workspace_tar(&self, id: &str) -> Result<ByteStream> {
        use futures_util::{StreamExt as _, TryStreamExt as _};
        use http_body_util::BodyExt as _;
        if self.live.lock().await.contains_key(id) {
            let client = self.client(id).await?;
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
        if let Err(e) = sandbox::remove_session_dir(&dir).await {
            return Err(AppError::internal(format!("{e:#}")));
        }
        let owner_id = self.record(id).await?.owner_id;
        self.store.delete_session(id).await?;
        let _ = self.changes.send(SessionChange::Deleted { owner_id, id: id.to_owned() });
        Ok(())
    }
}
