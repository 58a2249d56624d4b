//! What a bench's `flint serve` may leave on the host once it is gone, found by what names
//! it: its sandboxes' processes (the `process` driver's launcher and bubblewrap, gVisor's
//! `runsc` sandbox and gofer, the guest agent under either) by their cgroup
//! `flint/<instance>/…` or a command line naming its data directory; the namespaces
//! `flint-<instance>-*` and their address records in `/run/flint/net`; mounts and loop
//! devices under its data directory; its sessions' cgroups; an nftables table
//! `flint_<instance>` on the host; and the data directory itself.
//!
//! Shared by the sessions bench (whose harness removes what a stopped server left) and
//! `cargo xtask bench` (which checks, after every bench, that nothing is left): both read
//! the same **manifest**, `target/bench/servers.txt`, where each bench appends a line per
//! server it starts (`server <instance> <data dir>`) and per namespace of its own
//! (`netns <name>`). A server's instance is the first 12 hex digits of the sha256 of its
//! data directory's path, as `flint serve` names it (`Sessions::new`).
//!
//! Only the standard library: `xtask` includes this file by path.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The manifest's name in `target/bench/`.
pub const MANIFEST: &str = "servers.txt";

/// What the manifest lists.
#[derive(Debug, Default)]
pub struct Manifest {
    pub servers: Vec<ServerRecord>,
    /// Namespaces the bench made itself (its uplink and world).
    pub netns: Vec<String>,
}

/// One `flint serve` a bench started.
#[derive(Clone, Debug)]
pub struct ServerRecord {
    pub instance: String,
    pub data_dir: PathBuf,
}

/// One thing left behind.
#[derive(Debug, PartialEq)]
pub enum Leftover {
    Process {
        pid: u32,
        command: String,
    },
    Netns(String),
    AddressRecord(PathBuf),
    Mount(PathBuf),
    LoopDevice {
        device: String,
        file: String,
    },
    Cgroup(PathBuf),
    /// A table in the host's ruleset (`netns: None`) or in a namespace's.
    NftTable {
        netns: Option<String>,
        name: String,
    },
    DataDir(PathBuf),
}

impl fmt::Display for Leftover {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Leftover::Process { pid, command } => write!(f, "process {pid}: {command}"),
            Leftover::Netns(name) => write!(f, "network namespace {name}"),
            Leftover::AddressRecord(path) => write!(f, "address record {}", path.display()),
            Leftover::Mount(path) => write!(f, "mount {}", path.display()),
            Leftover::LoopDevice { device, file } => write!(f, "loop device {device} of {file}"),
            Leftover::Cgroup(path) => write!(f, "cgroup {}", path.display()),
            Leftover::NftTable { netns: None, name } => write!(f, "nftables table inet {name}"),
            Leftover::NftTable { netns: Some(netns), name } => {
                write!(f, "nftables table inet {name} in {netns}")
            }
            Leftover::DataDir(path) => write!(f, "data directory {}", path.display()),
        }
    }
}

/// Appends `line` to the manifest in `dir` (made if missing).
pub fn record(dir: &Path, line: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    std::fs::create_dir_all(dir)?;
    let mut file =
        std::fs::OpenOptions::new().create(true).append(true).open(dir.join(MANIFEST))?;
    writeln!(file, "{line}")
}

/// The manifest in `dir`; empty when there is none. Lines it does not know are skipped.
pub fn read_manifest(dir: &Path) -> Manifest {
    let text = std::fs::read_to_string(dir.join(MANIFEST)).unwrap_or_default();
    let mut manifest = Manifest::default();
    for line in text.lines() {
        let mut words = line.splitn(3, ' ');
        match (words.next(), words.next(), words.next()) {
            (Some("server"), Some(instance), Some(dir)) => manifest
                .servers
                .push(ServerRecord { instance: instance.to_owned(), data_dir: dir.into() }),
            (Some("netns"), Some(name), None) => manifest.netns.push(name.to_owned()),
            _ => {}
        }
    }
    manifest
}

/// Everything of `server` still on the host, its table also looked for in `uplink` (the
/// namespace it was told to use, while that exists); its data directory only when
/// `with_data_dir` (the harness removes that itself, after the check). Processes come
/// first: they hold the rest.
pub fn find(server: &ServerRecord, uplink: Option<&str>, with_data_dir: bool) -> Vec<Leftover> {
    let mut found = Vec::new();
    let dir = server.data_dir.to_string_lossy().into_owned();
    let cgroup = format!("/flint/{}/", server.instance);
    let me = std::process::id();
    for (pid, command, cgroups) in processes() {
        if pid == me {
            continue;
        }
        if command.contains(&dir) || cgroups.contains(&cgroup) {
            found.push(Leftover::Process { pid, command });
        }
    }
    let prefix = format!("flint-{}-", server.instance);
    for name in names_in(Path::new("/run/netns")) {
        if name.starts_with(&prefix) {
            found.push(Leftover::Netns(name));
        }
    }
    for name in names_in(Path::new("/run/flint/net")) {
        if name.starts_with(&prefix) {
            found.push(Leftover::AddressRecord(Path::new("/run/flint/net").join(name)));
        }
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for line in mountinfo.lines() {
        // The fifth field is the mount point (octal escapes for spaces, which the bench's
        // directories do not have).
        if let Some(point) = line.split(' ').nth(4).filter(|p| p.starts_with(&dir)) {
            found.push(Leftover::Mount(point.into()));
        }
    }
    for name in names_in(Path::new("/sys/block")) {
        let backing = Path::new("/sys/block").join(&name).join("loop/backing_file");
        let file = std::fs::read_to_string(backing).unwrap_or_default().trim().to_owned();
        if file.starts_with(&dir) {
            found.push(Leftover::LoopDevice { device: format!("/dev/{name}"), file });
        }
    }
    for cgroup in session_cgroups(&server.instance) {
        found.push(Leftover::Cgroup(cgroup));
    }
    let table = format!("flint_{}", server.instance);
    for netns in [None, uplink] {
        if nft_tables(netns).contains(&table) {
            let netns = netns.map(str::to_owned);
            found.push(Leftover::NftTable { netns, name: table.clone() });
        }
    }
    if with_data_dir && server.data_dir.exists() {
        found.push(Leftover::DataDir(server.data_dir.clone()));
    }
    found
}

/// The bench's own namespaces of `manifest` that are still there.
pub fn find_netns(manifest: &Manifest) -> Vec<Leftover> {
    let present = names_in(Path::new("/run/netns"));
    manifest
        .netns
        .iter()
        .filter(|name| present.contains(name))
        .map(|name| Leftover::Netns(name.clone()))
        .collect()
}

/// Removes one leftover (processes are killed: a stopped server's sandboxes are spare).
pub fn remove(leftover: &Leftover) -> Result<(), String> {
    let result = match leftover {
        // One that exited meanwhile is gone as wished.
        Leftover::Process { pid, .. } => run(&["kill", "-KILL", &pid.to_string()])
            .or_else(|e| if Path::new(&format!("/proc/{pid}")).exists() { Err(e) } else { Ok(()) }),
        Leftover::Netns(name) => run(&["ip", "netns", "del", name]),
        Leftover::AddressRecord(path) => std::fs::remove_file(path).map_err(|e| e.to_string()),
        Leftover::Mount(path) => run(&["umount", "--lazy", &path.to_string_lossy()]),
        Leftover::LoopDevice { device, .. } => run(&["losetup", "-d", device]),
        // Deepest first: a session's cgroup holds no children of its own.
        Leftover::Cgroup(path) => std::fs::remove_dir(path).map_err(|e| e.to_string()),
        Leftover::NftTable { netns: None, name } => run(&["nft", "delete", "table", "inet", name]),
        Leftover::NftTable { netns: Some(netns), name } => {
            run(&["ip", "netns", "exec", netns, "nft", "delete", "table", "inet", name])
        }
        Leftover::DataDir(path) => std::fs::remove_dir_all(path).map_err(|e| e.to_string()),
    };
    result.map_err(|e| format!("removing {leftover}: {e}"))
}

/// Every process: its pid, command line (arguments joined by spaces) and `/proc/PID/cgroup`.
fn processes() -> Vec<(u32, String, String)> {
    let mut found = Vec::new();
    for name in names_in(Path::new("/proc")) {
        let Ok(pid) = name.parse::<u32>() else { continue };
        // A process may exit while this reads: it is then no leftover.
        let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
        let command = String::from_utf8_lossy(&raw).replace('\0', " ").trim_end().to_owned();
        let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        // `/flint/<instance>/<session>` matches `/flint/<instance>/`; so does a process in
        // the instance's own cgroup once a slash is appended to each line.
        let cgroups = cgroups.lines().map(|l| format!("{l}/\n")).collect();
        // A process without a command line (gVisor's platform stubs, a zombie) by its name.
        let command = if command.is_empty() {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            format!("[{}]", comm.trim())
        } else {
            command
        };
        found.push((pid, command, cgroups));
    }
    found
}

/// The cgroups of `instance` under every hierarchy, deepest first: its sessions', then its
/// own (which the server removes with its last session).
fn session_cgroups(instance: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut roots = vec![PathBuf::from("/sys/fs/cgroup/flint")];
    for name in names_in(Path::new("/sys/fs/cgroup")) {
        roots.push(Path::new("/sys/fs/cgroup").join(name).join("flint"));
    }
    for root in roots {
        let dir = root.join(instance);
        for name in names_in(&dir) {
            let path = dir.join(name);
            if path.is_dir() {
                found.push(path);
            }
        }
        if dir.is_dir() {
            found.push(dir);
        }
    }
    found
}

/// The names of the inet tables in `netns` (`None`: the host's).
pub fn nft_tables(netns: Option<&str>) -> Vec<String> {
    let mut command = match netns {
        Some(name) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", name, "nft"]);
            c
        }
        None => Command::new("nft"),
    };
    let output = command.args(["list", "tables", "inet"]).stderr(Stdio::null()).output();
    let text = output.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    text.lines().filter_map(|l| l.strip_prefix("table inet ")).map(str::to_owned).collect()
}

/// The entries of `dir` by name; none when it cannot be read.
fn names_in(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect()
}

fn run(argv: &[&str]) -> Result<(), String> {
    let output = Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", argv[0]))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
    }
}
