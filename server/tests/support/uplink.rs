//! A test uplink: `flint serve --uplink-netns` on a namespace this builds, so that no
//! sandbox packet can leave the machine even if a rule is wrong (MACHINE.md, "Network").
//!
//! ```text
//!  host (root ns) ── 198.19.N.M/30 ── uplink ns ── 198.18.0.0/30 ── world ns
//!                                                  203.0.113.240/29   203.0.113.242  "LAN"
//!                                        │                          203.0.113.10  "internet" (HTTP :80)
//!                                        ├─ fl… veths to sandboxes  169.254.169.254  metadata (HTTP :80)
//!                                        └─ a service on 0.0.0.0    10.99.0.1  private service (HTTP :80)
//!                                                                   10.53.0.53  DNS (dnsmasq)
//! ```
//!
//! The world has no route back to sandboxes: it answers them only through the uplink's NAT.
//! The uplink routes the host's addresses to the host over its own link, so a rule that let
//! a sandbox through would reach the host for real.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The fake internet host.
pub const INTERNET: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
/// A host on the uplink's LAN: a subnet the uplink is directly connected to, outside every
/// range Flint forbids by name (the world's end of the link, on the same web server).
pub const LAN: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 242);
/// The world's end of the uplink's link: in IANA's benchmarking range (198.18.0.0/15).
pub const WORLD_LINK: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
/// Its name in the fake DNS.
pub const INTERNET_NAME: &str = "internet.test";
/// The fake metadata endpoint.
pub const METADATA: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);
/// The fake service on a private-range address.
pub const PRIVATE: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
/// The fake DNS server (private range: sandboxes reach it only through the forwarder).
pub const DNS: Ipv4Addr = Ipv4Addr::new(10, 53, 0, 53);
/// The port every world target serves HTTP on.
pub const HTTP_PORT: u16 = 80;
/// The port of the service bound to 0.0.0.0 in the uplink.
pub const UPLINK_SERVICE_PORT: u16 = 8081;
/// What the world's HTTP server holds: `index.html` names it, `big` is for throughput.
pub const INDEX: &str = "hello from the fake internet\n";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The namespaces and their services; dropping it removes everything.
pub struct Uplink {
    /// The uplink namespace's name (for `--uplink-netns`).
    pub name: String,
    world: String,
    host_link: String,
    /// The host's end of the host link.
    pub host_link_address: Ipv4Addr,
    children: Vec<Child>,
    dir: tempfile::TempDir,
}

fn run(args: &[&str]) {
    let output = Command::new(args[0]).args(&args[1..]).output().expect("run a command");
    assert!(
        output.status.success(),
        "{}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn ip(lines: &[String]) {
    let mut child = Command::new("ip")
        .args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ip");
    std::io::Write::write_all(child.stdin.as_mut().expect("stdin"), lines.join("\n").as_bytes())
        .expect("write");
    let output = child.wait_with_output().expect("ip");
    assert!(output.status.success(), "ip: {}", String::from_utf8_lossy(&output.stderr));
}

/// The host's own IPv4 addresses (root namespace), without the ones other tests come and go
/// with while this runs (sandbox gateways of host-uplink servers, other test uplinks' links).
pub fn host_addresses() -> Vec<Ipv4Addr> {
    all_host_addresses()
        .into_iter()
        .filter(|addr| {
            let o = addr.octets();
            let sandbox_gateway = o[0] == 100 && (64..128).contains(&o[1]);
            let test_link = o[0] == 198 && (18..20).contains(&o[1]);
            !sandbox_gateway && !test_link
        })
        .collect()
}

/// Every IPv4 address of the root namespace.
fn all_host_addresses() -> Vec<Ipv4Addr> {
    let output = Command::new("ip").args(["-j", "-4", "addr", "show"]).output().expect("ip");
    let links: serde_json::Value = serde_json::from_slice(&output.stdout).expect("ip -j");
    let mut found = Vec::new();
    for link in links.as_array().into_iter().flatten() {
        for info in link["addr_info"].as_array().into_iter().flatten() {
            if let Some(addr) = info["local"].as_str().and_then(|a| a.parse().ok()) {
                found.push(addr);
            }
        }
    }
    found
}

impl Uplink {
    /// Builds the namespaces and starts the fake services, waiting until each answers.
    pub fn build() -> Uplink {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let tag = format!("{:04x}{n:x}", pid % 0x10000);
        let (name, world) = (format!("flt-up-{tag}"), format!("flt-w-{tag}"));
        let host_link = format!("flth{tag}");
        // 198.19.0.0/16 (benchmarking space): a /30 per uplink, unique per process and count.
        let base = 0xC613_0000u32 | (((pid % 1024) * 16 + (n % 16)) << 2);
        let host_link_address = Ipv4Addr::from(base + 1);
        let uplink_link_address = Ipv4Addr::from(base + 2);
        let dir = tempfile::tempdir().expect("tempdir");
        let mut uplink = Uplink {
            name: name.clone(),
            world: world.clone(),
            host_link: host_link.clone(),
            host_link_address,
            children: Vec::new(),
            dir,
        };
        run(&["ip", "netns", "add", &name]);
        run(&["ip", "netns", "add", &world]);
        let host = vec![
            format!("link add {host_link} type veth peer name eth1 netns {name}"),
            format!("addr add {host_link_address}/30 dev {host_link}"),
            format!("link set {host_link} up"),
        ];
        ip(&host);
        run(&["ip", "netns", "exec", &name, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        let mut up = vec![
            "link set lo up".to_owned(),
            format!("link add eth0 type veth peer name eth0 netns {world}"),
            "addr add 198.18.0.1/30 dev eth0".to_owned(),
            "addr add 203.0.113.241/29 dev eth0".to_owned(),
            "link set eth0 up".to_owned(),
            format!("addr add {uplink_link_address}/30 dev eth1"),
            "link set eth1 up".to_owned(),
        ];
        for target in [INTERNET, METADATA, PRIVATE, DNS] {
            up.push(format!("route add {target}/32 via 198.18.0.2"));
        }
        // The host's own addresses lead to the host.
        for addr in host_addresses() {
            if !addr.is_loopback() {
                up.push(format!("route add {addr}/32 via {host_link_address}"));
            }
        }
        run_batch_in(&name, &up);
        let mut world_lines = vec![
            "link set lo up".to_owned(),
            "addr add 198.18.0.2/30 dev eth0".to_owned(),
            format!("addr add {LAN}/29 dev eth0"),
            "link set eth0 up".to_owned(),
        ];
        for target in [INTERNET, METADATA, PRIVATE, DNS] {
            world_lines.push(format!("addr add {target}/32 dev lo"));
        }
        run_batch_in(&world, &world_lines);

        // The world's web server (every world address, port 80) with a page and a big file.
        let www = uplink.dir.path().join("www");
        std::fs::create_dir_all(&www).expect("www");
        std::fs::write(www.join("index.html"), INDEX).expect("index");
        let big = std::fs::File::create(www.join("big")).expect("big");
        big.set_len(64 << 20).expect("64 MiB");
        uplink.spawn_in(&world, &["python3", "-m", "http.server", "--bind", "0.0.0.0", "80"], &www);
        uplink.spawn_in(
            &world,
            &[
                "dnsmasq",
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
                "--user=root",
                "--pid-file",
                &format!("--listen-address={DNS}"),
                &format!("--address=/{INTERNET_NAME}/{INTERNET}"),
            ],
            &www,
        );
        // A service on every address of the uplink (so also on each sandbox's gateway).
        let port = UPLINK_SERVICE_PORT.to_string();
        uplink.spawn_in(&name, &["python3", "-m", "http.server", "--bind", "0.0.0.0", &port], &www);
        let deadline = Instant::now() + Duration::from_secs(20);
        for (addr, port) in [(INTERNET, 80), (DNS, 53), (Ipv4Addr::LOCALHOST, UPLINK_SERVICE_PORT)]
        {
            while !uplink.reaches(addr, port) {
                assert!(Instant::now() < deadline, "{addr}:{port} did not come up in the uplink");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        uplink
    }

    /// Serves the world's web root over HTTPS on the fake internet host's port 443 with
    /// `cert` and `key` (PEM), waiting until it answers.
    pub fn serve_https(&mut self, cert: &Path, key: &Path) {
        let script = format!(
            "import http.server, ssl\n\
             server = http.server.ThreadingHTTPServer(('{INTERNET}', 443), http.server.SimpleHTTPRequestHandler)\n\
             context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
             context.load_cert_chain({cert:?}, {key:?})\n\
             server.socket = context.wrap_socket(server.socket, server_side=True)\n\
             server.serve_forever()\n"
        );
        let (world, www) = (self.world.clone(), self.www());
        self.spawn_in(&world, &["python3", "-c", &script], &www);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.reaches(INTERNET, 443) {
            assert!(Instant::now() < deadline, "the HTTPS server did not come up in the world");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn spawn_in(&mut self, netns: &str, argv: &[&str], dir: &Path) {
        let child = Command::new("ip")
            .args(["netns", "exec", netns])
            .args(argv)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", argv.join(" ")));
        self.children.push(child);
    }

    /// The world's web root.
    pub fn www(&self) -> PathBuf {
        self.dir.path().join("www")
    }

    /// Whether a TCP connection from the uplink to `addr:port` opens (the same probe as from
    /// a sandbox: bash's `/dev/tcp`).
    pub fn reaches(&self, addr: impl std::fmt::Display, port: u16) -> bool {
        Command::new("ip")
            .args(["netns", "exec", &self.name, "bash", "-c", &probe_script(addr, port)])
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Runs a command in the uplink namespace; its standard output.
    pub fn exec(&self, argv: &[&str]) -> String {
        let output = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(argv)
            .output()
            .expect("ip netns exec");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

/// A bash TCP probe with a 3 s deadline: exits 0 if the connection opens.
pub fn probe_script(addr: impl std::fmt::Display, port: u16) -> String {
    format!("timeout 3 bash -c 'exec 3<>/dev/tcp/{addr}/{port}' 2>/dev/null")
}

/// The same probe from the host.
pub fn host_reaches(addr: impl std::fmt::Display, port: u16) -> bool {
    Command::new("bash").args(["-c", &probe_script(addr, port)]).status().is_ok_and(|s| s.success())
}

fn run_batch_in(netns: &str, lines: &[String]) {
    let mut child = Command::new("ip")
        .args(["-n", netns, "-batch", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ip");
    std::io::Write::write_all(child.stdin.as_mut().expect("stdin"), lines.join("\n").as_bytes())
        .expect("write");
    let output = child.wait_with_output().expect("ip");
    assert!(output.status.success(), "ip -n {netns}: {}", String::from_utf8_lossy(&output.stderr));
}

impl Drop for Uplink {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Deleting the namespaces takes their links, routes and Flint's table with them.
        for netns in [&self.name, &self.world] {
            let _ = Command::new("ip").args(["netns", "del", netns]).status();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_link])
            .stderr(Stdio::null())
            .status();
    }
}

/// Removes what a killed `flint serve` of `instance` left on the host: its sandboxes'
/// namespaces and its nftables table (a server on an uplink namespace keeps both there).
pub fn clean_instance(instance: &str) {
    let prefix = format!("flint-{instance}-");
    for entry in std::fs::read_dir("/run/netns").into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) {
            let _ = Command::new("ip").args(["netns", "del", &name]).status();
        }
    }
    let _ = Command::new("nft")
        .args(["delete", "table", "inet", &format!("flint_{instance}")])
        .stderr(Stdio::null())
        .status();
}
