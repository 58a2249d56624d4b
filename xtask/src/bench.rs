//! `cargo xtask bench`: runs the benchmarks, merges the figures each one wrote to
//! `target/bench/<bench>.json` into `target/bench/results.json` and prints them as a table.
//! Then checks that the benches left nothing behind: every `flint serve` they started is
//! listed in `target/bench/servers.txt`, and none may have left a process, namespace,
//! address record, mount, loop device, cgroup, nftables table or data directory (the
//! sessions bench's `leftovers.rs`, shared by path), nor a namespace of the benches' own.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use xshell::{Shell, cmd};

const RESULTS_FILE: &str = "results.json";

/// Debian packages only the benches need: nginx, the preview proxy's anchor (a reverse
/// proxy in front of the same app; Debian's package starts no service where
/// `policy-rc.d` forbids it, and the bench runs its own on a port of its uplink namespace).
const BENCH_PACKAGES: &[&str] = &["nginx"];

#[path = "../../server/benches/sessions/leftovers.rs"]
#[allow(dead_code, reason = "the bench removes leftovers; this only finds them")]
mod leftovers;

/// What `results.json` holds.
#[derive(Debug, Serialize, Deserialize)]
struct Results {
    /// The machine the figures come from: "hostname, N cores, X GiB RAM".
    machine: String,
    metrics: Vec<Metric>,
}

/// One figure, named stably (e.g. `agent.keystroke_rtt`) so runs can be compared.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Metric {
    name: String,
    unit: String,
    #[serde(flatten)]
    figures: Figures,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
enum Figures {
    /// A distribution over `n` samples.
    Percentiles { p50: f64, p95: f64, p99: f64, n: u64 },
    /// A single figure, e.g. a throughput.
    Value { value: f64 },
}

/// What a bench writes: a `results.json`-shaped object (its `machine` is ignored) or a bare
/// list of metrics.
#[derive(Deserialize)]
#[serde(untagged)]
enum BenchFile {
    Object { metrics: Vec<Metric> },
    List(Vec<Metric>),
}

pub fn run(sh: &Shell) -> anyhow::Result<()> {
    let dir = crate::target_dir(sh).join("bench");
    // Stale figures of an earlier run must never show up as this run's, nor its servers.
    remove_json_files(&dir)?;
    let manifest = dir.join(leftovers::MANIFEST);
    if manifest.exists() {
        std::fs::remove_file(&manifest)
            .with_context(|| format!("removing {}", manifest.display()))?;
    }
    let benches = run_benches(sh, &dir);
    // Also after a failed bench: what it left is what most needs saying.
    let left = check_leftovers(&dir);
    benches?;
    left
}

/// Fails, naming each, if anything of the servers and namespaces the benches listed in
/// `dir`'s manifest is still there.
fn check_leftovers(dir: &Path) -> anyhow::Result<()> {
    let manifest = leftovers::read_manifest(dir);
    let mut left = Vec::new();
    for server in &manifest.servers {
        left.extend(leftovers::find(server, None, true));
    }
    left.extend(leftovers::find_netns(&manifest));
    if left.is_empty() {
        eprintln!(
            "bench: nothing left behind ({} servers, {} namespaces checked)",
            manifest.servers.len(),
            manifest.netns.len()
        );
        return Ok(());
    }
    let left: Vec<String> = left.iter().map(ToString::to_string).collect();
    bail!("the benches left behind:\n  {}", left.join("\n  "))
}

fn run_benches(sh: &Shell, dir: &Path) -> anyhow::Result<()> {
    crate::setup::setup(sh)?;
    crate::setup::ensure_debian_packages(sh, BENCH_PACKAGES)?;
    // Before the server's build: a release `flint` embeds `web/dist`.
    crate::web::build_app(sh)?;
    cmd!(sh, "cargo bench -p guest-agent --bench agent").run()?;
    // After the agent's bench, whose build leaves a fresh release guest-agent for the server.
    cmd!(sh, "cargo bench -p server --bench sessions").run()?;
    // The UI in headless Chromium against the release server the bench above built.
    crate::web::run_ui_bench(sh)?;
    image_bench(sh, dir)?;

    let metrics = merge(dir)?;
    if metrics.is_empty() {
        bail!("the benchmarks wrote no figures to {}", dir.display());
    }
    let results = Results { machine: machine()?, metrics };
    let results_path = dir.join(RESULTS_FILE);
    let json = serde_json::to_string_pretty(&results)?;
    std::fs::write(&results_path, json + "\n")
        .with_context(|| format!("writing {}", results_path.display()))?;
    println!("\n{}\n{}", results.machine, table(&results.metrics));
    println!("written to {}", results_path.display());
    Ok(())
}

/// `image.default.build_s` and `image.default.size_mb`: the default image built from
/// scratch (into a scratch data directory, removed afterwards) by the release `flint`, and
/// the size of its root filesystem; written to `dir/images.json`.
fn image_bench(sh: &Shell, dir: &Path) -> anyhow::Result<()> {
    let flint = crate::target_dir(sh).join("release/flint");
    let scratch = crate::target_dir(sh).join("bench-image-data");
    let _ = std::fs::remove_dir_all(&scratch);
    let started = std::time::Instant::now();
    let printed = cmd!(sh, "{flint} image build images/default.toml --data-dir {scratch}")
        .env("FLINT_LOG", "warn")
        .read()?;
    // It prints the root filesystem's path last.
    let rootfs = printed.lines().last().context("flint image build printed no path")?.trim();
    let build_s = started.elapsed().as_secs_f64();
    let size = cmd!(sh, "du -sm {rootfs}").read()?;
    let size_mb: f64 = size
        .split_whitespace()
        .next()
        .and_then(|mb| mb.parse().ok())
        .with_context(|| format!("du printed {size:?}"))?;
    std::fs::remove_dir_all(&scratch).with_context(|| format!("removing {}", scratch.display()))?;
    let metrics = [
        Metric {
            name: "image.default.build_s".to_owned(),
            unit: "s".to_owned(),
            figures: Figures::Value { value: (build_s * 10.0).round() / 10.0 },
        },
        Metric {
            name: "image.default.size_mb".to_owned(),
            unit: "MiB".to_owned(),
            figures: Figures::Value { value: size_mb },
        },
    ];
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("images.json"), serde_json::to_string_pretty(&metrics)? + "\n")?;
    Ok(())
}

fn remove_json_files(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    for path in json_files(dir)? {
        std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    }
    Ok(())
}

/// The `*.json` files of `dir`, sorted by name.
fn json_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "json") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Every metric of every bench file in `dir` (all `*.json` but `results.json`), in file
/// order; a name may appear only once.
fn merge(dir: &Path) -> anyhow::Result<Vec<Metric>> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut merged: Vec<(Metric, PathBuf)> = Vec::new();
    for path in json_files(dir)? {
        if path.file_name().is_some_and(|name| name == RESULTS_FILE) {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let file: BenchFile = serde_json::from_str(&text).with_context(|| {
            format!(
                "{}: expected {{\"metrics\": [...]}} whose metrics have a name, a unit and \
                 either p50, p95, p99 and n or a value",
                path.display()
            )
        })?;
        let metrics = match file {
            BenchFile::Object { metrics } | BenchFile::List(metrics) => metrics,
        };
        for metric in metrics {
            if let Some((_, earlier)) = merged.iter().find(|(seen, _)| seen.name == metric.name) {
                bail!(
                    "metric {} appears in both {} and {}",
                    metric.name,
                    earlier.display(),
                    path.display()
                );
            }
            merged.push((metric, path.clone()));
        }
    }
    Ok(merged.into_iter().map(|(metric, _)| metric).collect())
}

/// "hostname, N cores, X GiB RAM".
fn machine() -> anyhow::Result<String> {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .context("reading /proc/sys/kernel/hostname")?;
    let cores = std::thread::available_parallelism().context("counting cores")?;
    let meminfo = std::fs::read_to_string("/proc/meminfo").context("reading /proc/meminfo")?;
    let mem_total_kib: u64 = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse().ok())
        .context("no MemTotal in /proc/meminfo")?;
    let mem_total_gib = mem_total_kib as f64 / (1024.0 * 1024.0);
    Ok(format!("{}, {cores} cores, {mem_total_gib:.1} GiB RAM", hostname.trim()))
}

/// The metrics as an aligned table: text columns to the left, figures to the right, blank
/// where a metric has no such figure.
fn table(metrics: &[Metric]) -> String {
    let header = ["name", "unit", "p50", "p95", "p99", "value", "n"].map(str::to_owned);
    let rows: Vec<[String; 7]> = metrics
        .iter()
        .map(|metric| {
            let [p50, p95, p99, value, n] = match &metric.figures {
                Figures::Percentiles { p50, p95, p99, n } => {
                    [number(*p50), number(*p95), number(*p99), String::new(), n.to_string()]
                }
                Figures::Value { value } => {
                    [String::new(), String::new(), String::new(), number(*value), String::new()]
                }
            };
            [metric.name.clone(), metric.unit.clone(), p50, p95, p99, value, n]
        })
        .collect();
    let mut widths = header.clone().map(|cell| cell.len());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (column, (cell, width)) in row.iter().zip(widths).enumerate() {
            let separator = if column == 0 { "" } else { "  " };
            // Name and unit read left to right; figures line up on their last digit.
            if column < 2 {
                let _ = write!(line, "{separator}{cell:<width$}");
            } else {
                let _ = write!(line, "{separator}{cell:>width$}");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Three significant digits, enough to compare runs; the JSON keeps every digit.
fn number(figure: f64) -> String {
    if figure == 0.0 || !figure.is_finite() {
        return figure.to_string();
    }
    let magnitude = figure.abs().log10().floor() as i32;
    let decimals = (2 - magnitude).clamp(0, 6) as usize;
    format!("{figure:.decimals$}")
}

#[cfg(test)]
mod tests {
    use xshell::Shell;

    use super::{Figures, Metric, merge, number, table};

    #[test]
    fn merges_every_bench_file_but_results_and_prints_a_table() -> anyhow::Result<()> {
        let sh = Shell::new()?;
        let dir = sh.create_temp_dir()?;
        sh.write_file(
            dir.path().join("agent.json"),
            r#"{"metrics": [
                {"name": "agent.keystroke_rtt", "unit": "ms", "p50": 0.4, "p95": 0.7, "p99": 1.1, "n": 1000},
                {"name": "agent.tunnel_throughput", "unit": "MB/s", "value": 512.0}
            ]}"#,
        )?;
        sh.write_file(
            dir.path().join("proxy.json"),
            r#"[{"name": "proxy.preview_rtt", "unit": "ms", "p50": 1.234, "p95": 12.5, "p99": 40, "n": 200}]"#,
        )?;
        // A stale result and a file of another kind are not inputs.
        sh.write_file(dir.path().join("results.json"), r#"{"machine": "old", "metrics": []}"#)?;
        sh.write_file(dir.path().join("notes.txt"), "not json")?;

        let metrics = merge(dir.path())?;
        let names: Vec<&str> = metrics.iter().map(|metric| metric.name.as_str()).collect();
        assert_eq!(names, ["agent.keystroke_rtt", "agent.tunnel_throughput", "proxy.preview_rtt"]);
        assert_eq!(metrics[1].figures, Figures::Value { value: 512.0 });

        let expected = "\
name                     unit    p50    p95   p99  value     n
agent.keystroke_rtt      ms    0.400  0.700  1.10         1000
agent.tunnel_throughput  MB/s                        512
proxy.preview_rtt        ms     1.23   12.5  40.0          200
";
        assert_eq!(table(&metrics), expected);
        Ok(())
    }

    #[test]
    fn results_json_has_the_documented_shape() -> anyhow::Result<()> {
        let metrics = vec![
            Metric {
                name: "agent.keystroke_rtt".to_owned(),
                unit: "ms".to_owned(),
                figures: Figures::Percentiles { p50: 0.4, p95: 0.7, p99: 1.1, n: 1000 },
            },
            Metric {
                name: "agent.tunnel_throughput".to_owned(),
                unit: "MB/s".to_owned(),
                figures: Figures::Value { value: 512.0 },
            },
        ];
        let results = super::Results { machine: "box, 2 cores, 7.8 GiB RAM".to_owned(), metrics };
        assert_eq!(
            serde_json::to_string(&results)?,
            r#"{"machine":"box, 2 cores, 7.8 GiB RAM","metrics":[{"name":"agent.keystroke_rtt","unit":"ms","p50":0.4,"p95":0.7,"p99":1.1,"n":1000},{"name":"agent.tunnel_throughput","unit":"MB/s","value":512.0}]}"#
        );
        Ok(())
    }

    #[test]
    fn a_duplicate_metric_name_is_an_error() -> anyhow::Result<()> {
        let sh = Shell::new()?;
        let dir = sh.create_temp_dir()?;
        let metric = r#"[{"name": "agent.x", "unit": "ms", "value": 1}]"#;
        sh.write_file(dir.path().join("a.json"), metric)?;
        sh.write_file(dir.path().join("b.json"), metric)?;
        let error = merge(dir.path()).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.starts_with("metric agent.x appears in both"), "{error}");
        Ok(())
    }

    #[test]
    fn numbers_keep_three_significant_digits() {
        let cases = [
            (0.0, "0"),
            (0.0004567, "0.000457"),
            (0.4, "0.400"),
            (12.34, "12.3"),
            (512.0, "512"),
            (98765.4, "98765"),
        ];
        for (figure, text) in cases {
            assert_eq!(number(figure), text);
        }
    }
}
