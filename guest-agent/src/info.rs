//! `GET /v1/info`: version, uptime, hostname, CPU and memory.

use std::sync::Mutex;

use http::Response;
use proto::info::{AgentInfo, CpuInfo, MemoryInfo};

use crate::error::Result;
use crate::http::{Body, json};
use crate::server::Agent;

/// Remembers the previous `/proc/stat` reading so `busy` covers the time between calls.
#[derive(Default)]
pub struct CpuSampler {
    previous: Mutex<Option<(u64, u64)>>,
}

impl CpuSampler {
    fn busy(&self) -> f64 {
        let Some((busy, total)) = read_cpu_ticks() else {
            return 0.0;
        };
        let mut previous = self.previous.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (busy0, total0) = previous.replace((busy, total)).unwrap_or((0, 0));
        let total_delta = total.saturating_sub(total0);
        if total_delta == 0 {
            return 0.0;
        }
        busy.saturating_sub(busy0) as f64 / total_delta as f64
    }
}

/// Busy and total jiffies from the first line of `/proc/stat`.
fn read_cpu_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let values: Vec<u64> =
        stat.lines().next()?.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    let total: u64 = values.iter().sum();
    // idle + iowait are not busy.
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}

/// A `kB` field of a `/proc` file such as `/proc/meminfo`, in bytes.
fn kib_field(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

/// `GET /v1/info`
pub fn info(agent: &Agent) -> Result<Response<Body>> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut load = [0.0; 3];
    for (slot, value) in load.iter_mut().zip(loadavg.split_whitespace()) {
        *slot = value.parse().unwrap_or(0.0);
    }
    let count = std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1);
    json(&AgentInfo {
        api_version: proto::AGENT_API_VERSION,
        agent_version: env!("CARGO_PKG_VERSION").to_owned(),
        uptime_ms: agent.started.elapsed().as_millis() as u64,
        hostname: nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default(),
        cpu: CpuInfo { count, load, busy: agent.cpu.busy() },
        memory: MemoryInfo {
            total: kib_field(&meminfo, "MemTotal"),
            available: kib_field(&meminfo, "MemAvailable"),
            agent_rss: kib_field(&status, "VmRSS"),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::kib_field;

    #[test]
    fn reads_kib_fields_as_bytes() {
        let text = "MemTotal:       24000000 kB\nMemAvailable:   1000 kB\n";
        assert_eq!(kib_field(text, "MemAvailable"), 1000 * 1024);
        assert_eq!(kib_field(text, "Missing"), 0);
    }
}
