//! Creating a session: its request checked, a warm sandbox taken or a cold one started,
//! the row written before anything starts.

use std::path::Path;

use proto::api::{CreateSession, SessionInfo, SessionLimits, SessionState};

use super::{
    DEFAULT_CPUS, DEFAULT_DISK_MB, DEFAULT_LIFETIME_S, DEFAULT_MEMORY_MB, Live, MAX_CPUS,
    MAX_LIFETIME_S, MIN_CPUS, PIDS_PER_SESSION, Sessions, cgroup_limits, pool,
};
use crate::error::{AppError, Result};
use crate::sandbox::{self, Spec};
use crate::store::{SessionRecord, User, now_ms};

/// The image a session gets when it names none.
pub const DEFAULT_IMAGE: &str = "default";

impl Sessions {
    /// The images sessions can start from (`GET /api/images`).
    pub async fn images(&self) -> Result<Vec<proto::api::ImageInfo>> {
        let images_dir = self.config.images_dir.clone();
        let data_dir = self.config.data_dir.clone();
        tokio::task::spawn_blocking(move || {
            crate::images::list(&images_dir, &data_dir, DEFAULT_IMAGE)
        })
        .await
        .map_err(AppError::internal)?
        .map_err(|e| AppError::internal(format!("{e:#}")))
    }

    /// Creates a session and waits until its sandbox answers.
    pub async fn create(&self, owner: &User, request: CreateSession) -> Result<SessionInfo> {
        let image = request.image.unwrap_or_else(|| DEFAULT_IMAGE.to_owned());
        if !crate::images::is_image_name(&image) {
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
                        pool::first_shell(&live, &env).await.map(|()| live)
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
            ca_bundle: self.config.ca_bundle.clone(),
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
}

fn bounded(name: &str, value: u32, min: u32, max: u32) -> Result<u32> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(AppError::bad_request(format!("{name} must be {min}..={max}")))
    }
}
