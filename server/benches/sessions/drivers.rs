//! Per sandbox driver D, each on a server of its own:
//!
//! - `session.create_to_prompt.D`: cold creates (no warm pool, no network: the sandbox's
//!   own start), each until its first shell shows a prompt;
//! - `session.create_to_prompt_pool.D`: the same from the warm pool (the pool's class: the
//!   test image with networking), the pool refilled before each create;
//! - `session.concurrent10_wall.D`: ten cold creates at once, until all run;
//! - `session.idle_memory.D`: their resident memory on the host per sandbox after 2 s idle
//!   (for gVisor: the sentry, the gofer and the platform's stubs);
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
    let live = [
        "ws.keystroke_rtt",
        "terminal.output_1",
        "terminal.output_5",
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
        || (anchors && proxy::ANCHORS.iter().flatten().any(|m| wanted(m)));
    if [cold, concurrent, memory].iter().any(|m| wanted(m)) || live {
        let args = ["--driver", driver, "--pool-size", "0"];
        let server = Server::start(cache, agent, uplink, &args).await?;
        let result = async {
            let mut metrics = cold_metrics(&server, driver, wanted).await?;
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
