//! `GET /v1/info`: who the agent is and how its machine is doing.

use serde::{Deserialize, Serialize};

/// `GET /v1/info` response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentInfo {
    /// [`crate::AGENT_API_VERSION`] of the agent.
    pub api_version: u32,
    /// The agent's crate version.
    pub agent_version: String,
    /// Milliseconds since the agent started.
    pub uptime_ms: u64,
    /// The guest's hostname.
    pub hostname: String,
    /// CPU figures.
    pub cpu: CpuInfo,
    /// Memory figures.
    pub memory: MemoryInfo,
}

/// CPU figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CpuInfo {
    /// CPUs online.
    pub count: u32,
    /// Load averages over 1, 5 and 15 minutes.
    pub load: [f64; 3],
    /// Busy share of all CPUs since the previous `info` call (or since boot), 0..=1.
    pub busy: f64,
}

/// Memory figures, in bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryInfo {
    /// Total memory.
    pub total: u64,
    /// Memory available for new work.
    pub available: u64,
    /// Resident set of the agent itself.
    pub agent_rss: u64,
}
