//! Per sandbox driver D, each on a server of its own:
//!
//! - `session.create_to_prompt.D`: cold creates (no warm pool, no network: the sandbox's
//!   own start), each until its first shell shows a prompt;
//! - `session.create_to_prompt_pool.D`: the same from the warm pool (the pool's class: the
//!   test image with networking), the pool refilled before each create;
//! - `session.concurrent10_wall.D`: ten cold creates at once, until all run;
//! - `session.idle_memory.D`: their resident memory on the host per sandbox after 2 s idle
//!   (for gVisor: the sentry, the gofer and the platform's stubs);
//! - `sandbox.spawn.D`: one `fork` + `exec` of `/bin/true` by a shell in the sandbox (what
//!   every command of a shell loop, a build or a script costs), beside `anchor.host.spawn`,
//!   the same loop on the host;
//! - the terminal's metrics (`terminal.rs`) and the preview proxy's (`proxy.rs`; on the
//!   `process` driver's server also the direct and nginx anchors), on the cold server.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::report::Metric;
use super::server::Server;
use super::{
    CONCURRENT, CREATES, IDLE, SESSION_BODY_NET, create_concurrently, create_to_prompt,
    create_to_prompt_with, mib, name, proxy, session_rss, terminal, uplink,
};

/// Warm sandboxes the pool server keeps.
const POOL: &str = "2";

/// The driver's metrics that `wanted` asks for.
pub async fn measure(
    cache: &Path,
    agent: &Path,
    uplink: &uplink::Uplink,
    driver: &str,
    wanted: &dyn Fn(&str) -> bool,
) -> Result<Vec<Metric>> {
    let mut metrics = Vec::new();
    let cold = name(format!("session.create_to_prompt.{driver}"));
    let concurrent = name(format!("session.concurrent10_wall.{driver}"));
    let memory = name(format!("session.idle_memory.{driver}"));
    let spawn = name(format!("sandbox.spawn.{driver}"));
    let live = [
        "ws.keystroke_rtt",
        "terminal.output_1",
        "terminal.output_5",
        "terminal.output_1_deflate",
        "terminal.wire_ratio",
        "terminal.log_1",
        "terminal.log_1_deflate",
        "terminal.log_wire_ratio",
        "proxy.rps_c32",
        "proxy.errors_c32",
        "proxy.latency_c32",
        "proxy.stream_throughput",
        "proxy.rps_c128",
        "proxy.errors_c128",
    ]
    .map(|m| format!("{m}.{driver}"));
    let anchors = driver == "process";
    let live = live.iter().any(|m| wanted(m))
        || (anchors && proxy::ANCHORS.iter().flatten().any(|m| wanted(m)))
        || proxy::direct_names(driver).is_some_and(|d| d.iter().any(|m| wanted(m)))
        || wanted(&terminal::sandbox_pty_name(driver))
        || wanted(&terminal::sandbox_keys_name(driver));
    if [cold, concurrent, memory, spawn].iter().any(|m| wanted(m))
        || (anchors && wanted(HOST_SPAWN))
        || live
    {
        let args = ["--driver", driver, "--pool-size", "0"];
        let server = Server::start(cache, agent, uplink, &args).await?;
        let result = async {
            let mut metrics = cold_metrics(&server, driver, wanted).await?;
            metrics.extend(spawn_metrics(&server, driver, anchors, wanted).await?);
            metrics.extend(Box::pin(terminal::measure(&server, driver, wanted)).await?);
            let preview = proxy::measure(&server, uplink, driver, anchors, wanted);
            metrics.extend(Box::pin(preview).await?);
            anyhow::Ok(metrics)
        };
        let result = Box::pin(result).await;
        let cleanup = server.delete_leftovers().await;
        let stopped = server.stop().await;
        metrics.extend(result?);
        cleanup?;
        stopped?;
    }
    let pool = name(format!("session.create_to_prompt_pool.{driver}"));
    if wanted(pool) {
        let args = ["--driver", driver, "--pool-size", POOL, "--pool-images", "test"];
        let server = Server::start(cache, agent, uplink, &args).await?;
        let result = pool_samples(&server, driver).await;
        let cleanup = server.delete_leftovers().await;
        let stopped = server.stop().await;
        metrics.push(Metric::ms(pool, &result?));
        cleanup?;
        stopped?;
    }
    Ok(metrics)
}

async fn cold_metrics(
    server: &Server,
    driver: &str,
    wanted: &dyn Fn(&str) -> bool,
) -> Result<Vec<Metric>> {
    let mut metrics = Vec::new();
    let cold = name(format!("session.create_to_prompt.{driver}"));
    if wanted(cold) {
        eprintln!("bench: {cold} ({CREATES} sequential creates)");
        let mut samples = Vec::with_capacity(CREATES);
        for _ in 0..CREATES {
            let (id, elapsed) = create_to_prompt(server).await?;
            samples.push(elapsed);
            server.delete_session(&id).await?;
        }
        metrics.push(Metric::ms(cold, &samples));
    }
    let concurrent = name(format!("session.concurrent10_wall.{driver}"));
    let memory = name(format!("session.idle_memory.{driver}"));
    if wanted(concurrent) || wanted(memory) {
        eprintln!("bench: {concurrent} ({CONCURRENT} concurrent creates)");
        let (ids, wall) = create_concurrently(server, CONCURRENT).await?;
        if wanted(concurrent) {
            metrics.push(Metric::value(concurrent, "ms", wall.as_secs_f64() * 1e3));
        }
        if wanted(memory) {
            eprintln!("bench: {memory} ({CONCURRENT} sessions idle for {IDLE:?})");
            tokio::time::sleep(IDLE).await;
            let mut total = 0.0;
            for id in &ids {
                let (processes, bytes) = session_rss(id)?;
                eprintln!("bench:   {id}: {:.1} MiB in {} processes", mib(bytes), processes.len());
                total += mib(bytes);
            }
            metrics.push(Metric::value(memory, "MiB", total / ids.len() as f64));
        }
        for id in &ids {
            server.delete_session(id).await?;
        }
    }
    Ok(metrics)
}

/// The host's figure beside `sandbox.spawn.D`.
const HOST_SPAWN: &str = "anchor.host.spawn";

/// Spawns per sample of `sandbox.spawn.D`, and samples.
const SPAWNS: u32 = 100;
const SPAWN_SAMPLES: usize = 5;

/// A shell loop of [`SPAWNS`] `/bin/true`, timed by the shell itself: prints the
/// microseconds it took.
const SPAWN_LOOP: &str = "s=${EPOCHREALTIME/./}; for ((i = 0; i < $0; i++)); do /bin/true; done; \
     echo $(( ${EPOCHREALTIME/./} - s ))";

/// `sandbox.spawn.D` (and, on the anchors' server, `anchor.host.spawn`): the time per spawn
/// of each sample.
async fn spawn_metrics(
    server: &Server,
    driver: &str,
    anchors: bool,
    wanted: &dyn Fn(&str) -> bool,
) -> Result<Vec<Metric>> {
    let mut metrics = Vec::new();
    let spawns = SPAWNS.to_string();
    let argv = ["bash", "-c", SPAWN_LOOP, &spawns];
    let per_spawn = |stdout: &str| -> Result<Duration> {
        let micros: u64 = stdout.trim().parse().map_err(|e| anyhow::anyhow!("{stdout:?}: {e}"))?;
        Ok(Duration::from_micros(micros) / SPAWNS)
    };
    let spawn = name(format!("sandbox.spawn.{driver}"));
    if wanted(spawn) {
        eprintln!("bench: {spawn} ({SPAWN_SAMPLES} × {SPAWNS} spawns in one sandbox)");
        let id = server.create_session().await?;
        let mut samples = Vec::with_capacity(SPAWN_SAMPLES);
        for _ in 0..SPAWN_SAMPLES {
            let reply = server.exec(&id, &argv).await?;
            let stdout = reply["stdout"].as_str().unwrap_or_default();
            samples.push(per_spawn(stdout)?);
        }
        server.delete_session(&id).await?;
        metrics.push(Metric::ms(spawn, &samples));
    }
    if anchors && wanted(HOST_SPAWN) {
        eprintln!("bench: {HOST_SPAWN} ({SPAWN_SAMPLES} × {SPAWNS} spawns on the host)");
        let mut samples = Vec::with_capacity(SPAWN_SAMPLES);
        for _ in 0..SPAWN_SAMPLES {
            let output = tokio::process::Command::new("bash").args(&argv[1..]).output().await?;
            if !output.status.success() {
                bail!("{HOST_SPAWN}: bash failed: {}", String::from_utf8_lossy(&output.stderr));
            }
            samples.push(per_spawn(&String::from_utf8_lossy(&output.stdout))?);
        }
        metrics.push(Metric::ms(HOST_SPAWN, &samples));
    }
    Ok(metrics)
}

/// Creates from a full pool, one at a time.
async fn pool_samples(server: &Server, driver: &str) -> Result<Vec<Duration>> {
    eprintln!("bench: session.create_to_prompt_pool.{driver} ({CREATES} creates from the pool)");
    let mut samples = Vec::with_capacity(CREATES);
    for _ in 0..CREATES {
        wait_for_full_pool(server).await?;
        let (id, elapsed) = create_to_prompt_with(server, SESSION_BODY_NET).await?;
        samples.push(elapsed);
        server.delete_session(&id).await?;
    }
    Ok(samples)
}

async fn wait_for_full_pool(server: &Server) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let reply =
            server.request("GET", "/api/server", &[("authorization", server.bearer())], "").await?;
        let info = reply.json()?;
        let pool = &info["pool"][0];
        if pool["ready"].as_u64().is_some() && pool["ready"] == pool["size"] {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the pool did not fill in 2 minutes: {info}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
