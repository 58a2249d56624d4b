//! Network namespaces: `ip` for links, addresses and routes (in batches: one process per
//! step, not per line), and a thread that enters a namespace for what only a syscall does
//! (sockets bound inside it, its sysctls).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context as _, bail};
use ipnet::Ipv4Net;
use tokio::io::AsyncWriteExt as _;

/// Where `ip netns add NAME` pins a namespace.
pub fn path(name: &str) -> PathBuf {
    Path::new("/run/netns").join(name)
}

/// Runs `ip [-n NETNS] -batch -` with one command per line.
pub async fn ip_batch(netns: Option<&str>, lines: &[String]) -> anyhow::Result<()> {
    let mut command = tokio::process::Command::new("ip");
    if let Some(netns) = netns {
        command.args(["-n", netns]);
    }
    let mut child = command
        .args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("running `ip` (install iproute2)")?;
    let mut stdin = child.stdin.take().context("ip's stdin")?;
    stdin.write_all(lines.join("\n").as_bytes()).await?;
    stdin.write_all(b"\n").await?;
    drop(stdin);
    let output = child.wait_with_output().await?;
    if !output.status.success() {
        bail!(
            "ip{}: {}: {}",
            netns.map(|n| format!(" -n {n}")).unwrap_or_default(),
            lines.join("; "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// Runs `ip ARGS...`, returning its standard output.
pub async fn ip(args: &[&str]) -> anyhow::Result<String> {
    let output = tokio::process::Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .context("running `ip` (install iproute2)")?;
    if !output.status.success() {
        bail!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The IPv4 networks of every address in a namespace (`None`: this process's).
pub async fn ipv4_networks(netns: Option<&str>) -> anyhow::Result<Vec<Ipv4Net>> {
    let mut args = vec![];
    if let Some(netns) = netns {
        args.extend(["-n", netns]);
    }
    args.extend(["-j", "-4", "addr", "show"]);
    let text = ip(&args).await?;
    let links: Vec<serde_json::Value> =
        serde_json::from_str(&text).context("parsing `ip -j addr` output")?;
    let mut nets = Vec::new();
    for link in &links {
        for info in link["addr_info"].as_array().into_iter().flatten() {
            let (Some(local), Some(len)) = (info["local"].as_str(), info["prefixlen"].as_u64())
            else {
                continue;
            };
            if let (Ok(addr), Ok(len)) = (local.parse(), u8::try_from(len))
                && let Ok(net) = Ipv4Net::new(addr, len)
            {
                nets.push(net);
            }
        }
    }
    Ok(nets)
}

/// Runs `f` on a fresh thread that first enters the network namespace at `netns` (`None`:
/// stays in this process's). A thread of its own, because entering a namespace is for
/// good: a pooled thread would carry it into unrelated work.
pub async fn run_in<T, F>(netns: Option<PathBuf>, f: F) -> anyhow::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> std::io::Result<T> + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new().name("flint-netns".into()).spawn(move || {
        let result = (|| {
            if let Some(path) = &netns {
                enter(path)?;
            }
            f().map_err(anyhow::Error::from)
        })();
        let _ = tx.send(result);
    })?;
    rx.await.context("the namespace thread died")?
}

fn enter(path: &Path) -> anyhow::Result<()> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("opening the network namespace {}", path.display()))?;
    nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
        .with_context(|| format!("entering the network namespace {}", path.display()))
}

/// A thread living in one network namespace, making sockets there for async code (a socket
/// belongs to the namespace it was made in, whichever thread uses it later).
pub struct Worker {
    jobs: std::sync::mpsc::Sender<Box<dyn FnOnce() + Send>>,
}

impl Worker {
    /// A thread in the namespace at `path`.
    pub fn start(path: &Path) -> anyhow::Result<Worker> {
        let (jobs, rx) = std::sync::mpsc::channel::<Box<dyn FnOnce() + Send>>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let path = path.to_owned();
        std::thread::Builder::new().name("flint-uplink".into()).spawn(move || {
            let entered = enter(&path);
            let ok = entered.is_ok();
            let _ = ready_tx.send(entered);
            if ok {
                for job in rx {
                    job();
                }
            }
        })?;
        ready_rx.recv().context("the uplink thread died")??;
        Ok(Worker { jobs })
    }

    /// Runs `f` in the namespace.
    pub async fn run<T, F>(&self, f: F) -> std::io::Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> std::io::Result<T> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = tx.send(f());
            }))
            .map_err(|_| std::io::Error::other("the uplink thread stopped"))?;
        rx.await.map_err(|_| std::io::Error::other("the uplink thread stopped"))?
    }
}

/// Writes a sysctl of the calling thread's network namespace (`net.ipv4.ip_forward` is
/// `ipv4/ip_forward`).
pub fn write_sysctl(name: &str, value: &str) -> std::io::Result<()> {
    std::fs::write(Path::new("/proc/sys/net").join(name), value)
}

/// Reads one, trimmed.
pub fn read_sysctl(name: &str) -> std::io::Result<String> {
    Ok(std::fs::read_to_string(Path::new("/proc/sys/net").join(name))?.trim().to_owned())
}
