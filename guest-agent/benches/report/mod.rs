//! What every Flint bench shares (included by path from `guest-agent/benches/agent.rs` and
//! `server/benches/sessions.rs`): figures, the printed table, and `target/bench/NAME.json`,
//! which `cargo xtask bench` merges into `results.json`.

#![allow(dead_code, reason = "each bench uses its own part of the constructors")]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result};

/// One figure: percentiles over samples, or a single value.
pub enum Figure {
    /// Samples, reported as p50, p95, p99 and n.
    Samples(Vec<f64>),
    /// A single value.
    Value(f64),
}

/// A named figure with its unit.
pub struct Metric {
    pub name: &'static str,
    pub unit: &'static str,
    pub figure: Figure,
}

impl Metric {
    /// Durations, in milliseconds.
    pub fn ms(name: &'static str, samples: &[Duration]) -> Metric {
        let samples = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        Metric { name, unit: "ms", figure: Figure::Samples(samples) }
    }

    /// A throughput, in MB/s.
    pub fn mbps(name: &'static str, bytes: u64, elapsed: Duration) -> Metric {
        let value = bytes as f64 / 1e6 / elapsed.as_secs_f64().max(1e-9);
        Metric { name, unit: "MB/s", figure: Figure::Value(value) }
    }

    /// A single value in `unit`.
    pub fn value(name: &'static str, unit: &'static str, value: f64) -> Metric {
        Metric { name, unit, figure: Figure::Value(value) }
    }

    /// The metric as written to the JSON file.
    fn record(&self) -> Record {
        let round = |x: f64| (x * 1000.0).round() / 1000.0;
        let mut record = Record {
            name: self.name,
            unit: self.unit,
            p50: None,
            p95: None,
            p99: None,
            n: None,
            value: None,
        };
        match &self.figure {
            Figure::Samples(samples) => {
                let sorted = sorted(samples);
                record.p50 = Some(round(percentile(&sorted, 0.50)));
                record.p95 = Some(round(percentile(&sorted, 0.95)));
                record.p99 = Some(round(percentile(&sorted, 0.99)));
                record.n = Some(sorted.len());
            }
            Figure::Value(value) => record.value = Some(round(*value)),
        }
        record
    }
}

/// One entry of the JSON file, fields in the documented order.
#[derive(serde::Serialize)]
struct Record {
    name: &'static str,
    unit: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    p50: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p95: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p99: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    n: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<f64>,
}

fn sorted(samples: &[f64]) -> Vec<f64> {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The workspace root (every bench's crate sits right below it).
pub fn workspace() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// The workspace's target directory: `CARGO_TARGET_DIR` (relative to the workspace root)
/// when set, else `target/` of the workspace.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace().join(dir),
        _ => workspace().join("target"),
    }
}

/// A bench's `main`: runs `run` (given the first non-flag argument as a name filter) on a
/// tokio runtime, prints the table and writes `target/bench/{file}.json`.
pub fn main<F>(file: &str, run: impl FnOnce(Option<String>) -> F) -> Result<()>
where
    F: Future<Output = Result<Vec<Metric>>>,
{
    let filter = std::env::args().skip(1).find(|arg| !arg.starts_with('-'));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let metrics = runtime.block_on(Box::pin(run(filter)))?;
    print_table(&metrics);
    let path = write_json(&metrics, file)?;
    eprintln!("bench: wrote {}", path.display());
    Ok(())
}

fn print_table(metrics: &[Metric]) {
    println!();
    println!("{:<34} {:>6} {:>10} {:>10} {:>10} {:>6}", "metric", "unit", "p50", "p95", "p99", "n");
    for metric in metrics {
        match &metric.figure {
            Figure::Samples(samples) => {
                let sorted = sorted(samples);
                println!(
                    "{:<34} {:>6} {:>10.3} {:>10.3} {:>10.3} {:>6}",
                    metric.name,
                    metric.unit,
                    percentile(&sorted, 0.50),
                    percentile(&sorted, 0.95),
                    percentile(&sorted, 0.99),
                    sorted.len()
                );
            }
            Figure::Value(value) => {
                println!("{:<34} {:>6} {:>10.1}", metric.name, metric.unit, value);
            }
        }
    }
    println!();
}

fn write_json(metrics: &[Metric], file: &str) -> Result<PathBuf> {
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("{file}.json"));
    #[derive(serde::Serialize)]
    struct Document {
        metrics: Vec<Record>,
    }
    let document = Document { metrics: metrics.iter().map(Metric::record).collect() };
    let text = serde_json::to_string_pretty(&document)?;
    std::fs::write(&path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}
