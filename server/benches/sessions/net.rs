//! `net.egress_throughput` and `net.host_throughput`: one HTTP download of the fake internet
//! host's 64 MiB file, from inside a sandbox (veth, Flint's rules, NAT on the uplink) and
//! from the uplink itself (the same server, no sandbox in the way). Same client both times:
//! the test image's Python.

use anyhow::{Context as _, Result, ensure};
use http::StatusCode;

use super::report::Metric;
use super::uplink::{INTERNET, Uplink};
use super::{SESSION_BODY_NET, Server};

/// Downloads per side; the median counts.
const RUNS: usize = 5;

/// Prints the download's rate in MB/s.
fn client_script() -> String {
    format!(
        "import time, urllib.request\n\
         t = time.monotonic(); n = 0\n\
         with urllib.request.urlopen('http://{INTERNET}/big', timeout=60) as r:\n\
         \x20   while chunk := r.read(1 << 20):\n\
         \x20       n += len(chunk)\n\
         print(n / (time.monotonic() - t) / 1e6)\n"
    )
}

pub(super) async fn throughput(
    server: &Server,
    uplink: &Uplink,
    wanted: &dyn Fn(&str) -> bool,
) -> Result<Vec<Metric>> {
    let mut metrics = Vec::new();
    if wanted("net.egress_throughput") {
        eprintln!("bench: net.egress_throughput ({RUNS} downloads of 64 MiB from a sandbox)");
        let id = server.create_session_with(SESSION_BODY_NET).await?;
        let mut rates = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            rates.push(sandbox_rate(server, &id).await?);
        }
        server.delete_session(&id).await?;
        metrics.push(Metric::value("net.egress_throughput", "MB/s", median(&mut rates)));
    }
    if wanted("net.host_throughput") {
        eprintln!("bench: net.host_throughput ({RUNS} downloads of 64 MiB from the uplink)");
        let mut rates = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let out = uplink.exec(&["python3", "-c", &client_script()]);
            rates.push(out.trim().parse::<f64>().with_context(|| format!("a rate: {out:?}"))?);
        }
        metrics.push(Metric::value("net.host_throughput", "MB/s", median(&mut rates)));
    }
    Ok(metrics)
}

async fn sandbox_rate(server: &Server, id: &str) -> Result<f64> {
    let body = serde_json::json!({
        "argv": ["python3", "-c", client_script()],
        "env": {},
        "timeout_ms": 120_000,
    });
    let headers = [("authorization", server.bearer()), ("content-type", "application/json")];
    let path = format!("/api/sessions/{id}/exec");
    let reply = server.request("POST", &path, &headers, &body.to_string()).await?;
    ensure!(reply.status == StatusCode::OK, "exec: {} {}", reply.status, reply.body);
    let result = reply.json()?;
    let out = result["stdout"].as_str().unwrap_or_default();
    ensure!(result["exit_code"] == 0, "the download failed: {result}");
    out.trim().parse::<f64>().with_context(|| format!("a rate: {out:?}"))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}
