//! Sandbox networking and the escape suite: every probe from a sandbox to somewhere it must
//! not reach fails **while the same probe from the host or the uplink shows the target is
//! up**, and the allowed paths (NAT to the fake internet, DNS through the gateway) work.
//! All targets live on this machine: the uplink is a namespace the test builds.

use std::net::Ipv4Addr;

use http::StatusCode;

use crate::common::*;
use crate::support::uplink::{self, Uplink};

async fn token(server: &TestServer) -> String {
    server.bearer().await
}

async fn create(server: &TestServer, bearer: &str, body: &str) -> serde_json::Value {
    let session = server.create_session(bearer, body).await;
    assert_eq!(session["state"], "running", "{session}");
    session
}

/// Runs `bash -c script` in a session; (exit code, stdout).
async fn sh(server: &TestServer, bearer: &str, id: &str, script: &str) -> (i64, String) {
    let (code, stdout, _) = server.sh(bearer, id, script).await;
    (code, stdout)
}

/// Probes every target from inside a session at once; the ones that opened.
async fn sandbox_reaches(
    server: &TestServer,
    bearer: &str,
    id: &str,
    targets: &[(String, u16)],
) -> Vec<String> {
    let mut script = String::new();
    for (addr, port) in targets {
        script.push_str(&format!(
            "( {} && echo 'open {addr}:{port}' ) &\n",
            uplink::probe_script(addr, *port)
        ));
    }
    script.push_str("wait\n");
    let (_, out) = sh(server, bearer, id, &script).await;
    out.lines().filter_map(|l| l.strip_prefix("open ")).map(str::to_owned).collect()
}

/// The sandbox's own address, without sending a packet (a UDP "connect" only routes).
async fn address_of(server: &TestServer, bearer: &str, id: &str) -> Ipv4Addr {
    let script = "python3 -c \"import socket; s = socket.socket(2, 2); \
                  s.connect(('203.0.113.10', 80)); print(s.getsockname()[0])\"";
    let (code, out) = sh(server, bearer, id, script).await;
    assert_eq!(code, 0, "{out}");
    out.trim().parse().expect("an IPv4 address")
}

fn gateway_of(address: Ipv4Addr) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(address) - 1)
}

/// The sandbox's network interfaces, sorted.
const LINKS: &str = "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort";

/// The escape suite for one driver.
async fn escape_suite(driver: &str) {
    let uplink = Uplink::build();
    let dir = tempfile::tempdir().expect("tempdir");
    let dns = uplink::DNS.to_string();
    // Listening on every host address: the worst case for the server's own port.
    let args = ["--uplink-netns", &uplink.name, "--dns-upstream", &dns, "--driver", driver];
    let server = TestServer::start_on(dir.path(), "0.0.0.0:0", &args);
    let bearer = token(&server).await;
    let a = create(&server, &bearer, r#"{"image":"test","name":"a"}"#).await;
    let b = create(&server, &bearer, r#"{"image":"test","name":"b"}"#).await;
    assert_eq!(a["driver"], driver);
    assert_eq!(a["network"], true);
    let (a, b) = (a["id"].as_str().expect("id"), b["id"].as_str().expect("id"));
    let (a_addr, b_addr) =
        (address_of(&server, &bearer, a).await, address_of(&server, &bearer, b).await);
    assert_ne!(a_addr, b_addr);

    // Targets, each with where it is shown up from.
    let host_service = std::net::TcpListener::bind("0.0.0.0:0").expect("bind a host service");
    let host_port = host_service.local_addr().expect("addr").port();
    let (code, _) = sh(
        &server,
        &bearer,
        b,
        "setsid -f python3 -m http.server 8000 \
        >/dev/null 2>&1; for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/8000) 2>/dev/null \
        && exit 0; sleep 0.1; done; exit 1",
    )
    .await;
    assert_eq!(code, 0, "a server in session B");
    let mut from_host = Vec::new();
    let mut host_addresses = uplink::host_addresses();
    host_addresses.push(uplink.host_link_address);
    for addr in host_addresses {
        from_host.push((addr.to_string(), server.addr.port()));
        from_host.push((addr.to_string(), host_port));
    }
    let gateway = gateway_of(a_addr).to_string();
    let from_uplink: Vec<(String, u16)> = vec![
        (gateway.clone(), uplink::UPLINK_SERVICE_PORT),
        (uplink::METADATA.to_string(), uplink::HTTP_PORT),
        (uplink::PRIVATE.to_string(), uplink::HTTP_PORT),
        // The uplink's LAN (a connected subnet) and IANA's non-global ranges.
        (uplink::LAN.to_string(), uplink::HTTP_PORT),
        (uplink::WORLD_LINK.to_string(), uplink::HTTP_PORT),
        (uplink::DNS.to_string(), 53),
        (b_addr.to_string(), 8000),
    ];
    for (addr, port) in &from_host {
        assert!(uplink::host_reaches(addr, *port), "{addr}:{port} is not up on the host");
    }
    for (addr, port) in &from_uplink {
        assert!(uplink.reaches(addr, *port), "{addr}:{port} is not up from the uplink");
    }
    // B's gateway's DNS is up (B reaches it), and answers B only: not A, nor the uplink
    // (a query from its LAN).
    let b_dns = (gateway_of(b_addr).to_string(), 53);
    assert_eq!(sandbox_reaches(&server, &bearer, b, std::slice::from_ref(&b_dns)).await.len(), 1);
    assert!(!uplink.reaches(&b_dns.0, 53), "the uplink reached a sandbox's DNS forwarder");
    let all: Vec<(String, u16)> =
        from_host.iter().chain(&from_uplink).chain([&b_dns]).cloned().collect();
    let escaped = sandbox_reaches(&server, &bearer, a, &all).await;
    assert!(escaped.is_empty(), "session A reached {escaped:?}");

    // Allowed: the internet by address and by name (through the gateway's forwarder), and
    // DNS on its own gateway.
    let internet = (uplink::INTERNET.to_string(), uplink::HTTP_PORT);
    let dns_tcp = (gateway.clone(), 53);
    let reached = sandbox_reaches(&server, &bearer, a, &[internet.clone(), dns_tcp]).await;
    assert_eq!(reached.len(), 2, "session A reached only {reached:?}");
    let (code, out) =
        sh(&server, &bearer, a, &format!("getent hosts {}", uplink::INTERNET_NAME)).await;
    assert_eq!((code, out.split_whitespace().next()), (0, Some("203.0.113.10")), "{out}");
    let fetch = format!(
        "python3 -c \"import urllib.request; print(urllib.request.urlopen('http://{}/', \
         timeout=10).read().decode(), end='')\"",
        uplink::INTERNET_NAME
    );
    let (code, out) = sh(&server, &bearer, a, &fetch).await;
    assert_eq!((code, out.as_str()), (0, uplink::INDEX));
    // No IPv6 on its network: only the loopback has an IPv6 address (`::1`), and there is
    // no IPv6 route. (gVisor's netstack has no per-interface IPv6 switch to read.)
    let switch = match driver {
        "process" => "cat /proc/sys/net/ipv6/conf/eth0/disable_ipv6",
        _ => "echo 1",
    };
    let script = format!(
        "{switch}; grep -v ' lo$' /proc/net/if_inet6 | wc -l; {LINKS}; python3 -c \"import \
         socket; s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.connect(('2001:db8::1', \
         80)); print('routed')\" 2>/dev/null || echo unroutable"
    );
    let (_, out) = sh(&server, &bearer, a, &script).await;
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["1", "0", "eth0", "lo", "unroutable"],
        "{out}"
    );

    // `network: false`: loopback only, nothing resolves, nothing answers.
    let c = create(&server, &bearer, r#"{"image":"test","network":false}"#).await;
    assert_eq!(c["network"], false);
    let c = c["id"].as_str().expect("id");
    let (_, out) = sh(&server, &bearer, c, LINKS).await;
    assert_eq!(out.trim(), "lo");
    let reached = sandbox_reaches(&server, &bearer, c, &[internet, (gateway, 53)]).await;
    assert!(reached.is_empty(), "an offline session reached {reached:?}");
    let (code, _) =
        sh(&server, &bearer, c, &format!("getent hosts {}", uplink::INTERNET_NAME)).await;
    assert_ne!(code, 0, "an offline session resolved a name");
    drop(host_service);
}

#[tokio::test]
async fn escape_suite_process() {
    escape_suite("process").await;
}

#[tokio::test]
async fn escape_suite_gvisor() {
    escape_suite("gvisor").await;
}

/// The `inet flint_<instance>` table's `ifs` set on the uplink: the sandboxes it guards.
fn guarded(uplink: &Uplink, instance: &str) -> Option<Vec<String>> {
    let text =
        uplink.exec(&["nft", "-j", "list", "set", "inet", &format!("flint_{instance}"), "ifs"]);
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    let mut names = Vec::new();
    for item in json["nftables"].as_array().into_iter().flatten() {
        for element in item["set"]["elem"].as_array().into_iter().flatten() {
            names.extend(element.as_str().map(str::to_owned));
        }
    }
    Some(names)
}

fn netns_exists(name: &str) -> bool {
    std::path::Path::new("/run/netns").join(name).exists()
}

/// A restart re-adopts a running sandbox and reconciles its network; stopping it removes
/// every trace, runsc's records included.
async fn restart_suite(driver: &str) {
    let uplink = Uplink::build();
    let dir = tempfile::tempdir().expect("tempdir");
    let dns = uplink::DNS.to_string();
    let args = ["--uplink-netns", &uplink.name, "--dns-upstream", &dns, "--driver", driver];
    let mut server = TestServer::start_with(dir.path(), &args);
    let instance = server.instance();
    let bearer = token(&server).await;
    let a = create(&server, &bearer, r#"{"image":"test"}"#).await;
    assert_eq!(a["driver"], driver);
    let a = a["id"].as_str().expect("id").to_owned();
    let netns = format!("flint-{instance}-{a}");
    assert!(netns_exists(&netns));
    let ifs = guarded(&uplink, &instance).expect("the table");
    assert_eq!(ifs.len(), 1, "{ifs:?}");
    let iface = ifs[0].clone();
    let gateway = gateway_of(address_of(&server, &bearer, &a).await);
    let (code, _) = sh(&server, &bearer, &a, "echo before > /root/marker").await;
    assert_eq!(code, 0);

    // The server dies; meanwhile A's DNS rule goes missing and a stale sandbox appears.
    server.kill();
    let table = format!("flint_{instance}");
    uplink.exec(&[
        "nft",
        "delete",
        "element",
        "inet",
        &table,
        "dns",
        &format!("{{ \"{iface}\" . {gateway} }}"),
    ]);
    let stale = format!("flint-{instance}-stalesession");
    assert!(
        std::process::Command::new("ip")
            .args(["netns", "add", &stale])
            .status()
            .is_ok_and(|s| s.success())
    );
    uplink.exec(&["nft", "add", "element", "inet", &table, "ifs", "{ \"fl64400ff0\" }"]);
    assert_eq!(guarded(&uplink, &instance).map(|g| g.len()), Some(2));

    let server = TestServer::start_with(dir.path(), &args);
    let bearer = token(&server).await;
    assert_eq!(guarded(&uplink, &instance), Some(vec![iface.clone()]), "stale element removed");
    assert!(!netns_exists(&stale), "the stale namespace is removed");
    // A's DNS works again: its rule and forwarder are back.
    let (code, out) =
        sh(&server, &bearer, &a, &format!("getent hosts {}", uplink::INTERNET_NAME)).await;
    assert_eq!(code, 0, "{out}");
    // The same sandbox, not a new one.
    let (_, out) = sh(&server, &bearer, &a, "cat /root/marker").await;
    assert_eq!(out, "before\n");

    // Deleting the session removes its namespace, its veth and its elements.
    let reply = server
        .request("DELETE", &format!("/api/sessions/{a}"), &[("authorization", &bearer)], "")
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    assert!(!netns_exists(&netns));
    assert_eq!(guarded(&uplink, &instance), Some(vec![]));
    let links = uplink.exec(&["ip", "-br", "link"]);
    assert!(!links.contains(&iface), "{links}");
    // runsc keeps no record of it (nor does anything else under the data directory).
    let mut left = Vec::new();
    for dir in [dir.path().join("runsc"), dir.path().join("sessions")] {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.contains(&a) {
                left.push(entry.path());
            }
        }
    }
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(!std::path::Path::new("/run/flint/net").join(&netns).exists());

    // A clean shutdown with no sandbox left removes the table.
    server.terminate();
    assert_eq!(guarded(&uplink, &instance), None, "the table is gone");
}

#[tokio::test]
async fn a_restart_reconciles_the_rules_and_stopping_removes_every_trace() {
    restart_suite("process").await;
}

#[tokio::test]
async fn a_restart_readopts_a_gvisor_sandbox_and_stopping_removes_every_trace() {
    restart_suite("gvisor").await;
}

#[tokio::test]
async fn with_the_host_as_uplink_the_host_is_out_of_reach_but_dns_is_served() {
    // NAT on the host itself: only local targets are probed, nothing leaves the machine.
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start_on(dir.path(), "0.0.0.0:0", &[]);
    let bearer = token(&server).await;
    let a = create(&server, &bearer, r#"{"image":"test"}"#).await;
    let a = a["id"].as_str().expect("id");
    let gateway = gateway_of(address_of(&server, &bearer, a).await);
    let host_service = std::net::TcpListener::bind("0.0.0.0:0").expect("bind");
    let host_port = host_service.local_addr().expect("addr").port();
    let mut targets = Vec::new();
    for addr in uplink::host_addresses() {
        targets.push((addr.to_string(), server.addr.port()));
        targets.push((addr.to_string(), host_port));
    }
    targets.push((gateway.to_string(), host_port));
    for (addr, port) in &targets {
        assert!(uplink::host_reaches(addr, *port), "{addr}:{port} is not up on the host");
    }
    let escaped = sandbox_reaches(&server, &bearer, a, &targets).await;
    assert!(escaped.is_empty(), "the sandbox reached {escaped:?}");
    let dns = sandbox_reaches(&server, &bearer, a, &[(gateway.to_string(), 53)]).await;
    assert_eq!(dns.len(), 1, "the gateway's DNS forwarder answers");
}
