//! Sandbox networking: a network namespace per sandbox, a veth pair on a /30 of the pool to
//! its **uplink** (the host, or a named namespace: `--uplink-netns`), NAT there, and
//! Flint's nftables table keeping sandboxes away from the host, private ranges, the
//! metadata address and each other. DNS goes to a forwarder on the sandbox's gateway.
//!
//! State lives in the kernel, named so it can be found again: the sandbox's namespace is
//! `flint-<instance>-<session>` (pinned in `/run/netns`), its uplink interface
//! `fl<network in hex>`, its elements in the table's sets. A restarted server re-adopts
//! them ([`Network::reconcile`]); stopping a sandbox removes all three.

pub mod dns;
pub mod netns;
pub mod nft;
pub mod pool;

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use ipnet::Ipv4Net;
use tokio::sync::Mutex;

use self::dns::{Forwarder, Sockets};
use self::nft::Nft;
use self::pool::{Pool, Slot};

/// What `flint serve` is told about networking.
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// Sandbox addresses.
    pub pool: Pool,
    /// The namespace sandboxes' traffic leaves through; `None`: the host (NAT).
    pub uplink_netns: Option<String>,
    /// Resolvers the forwarder relays to; empty: the uplink's `resolv.conf`
    /// (`/etc/netns/NAME/resolv.conf` for a named uplink, as `ip netns exec` has it).
    pub dns_upstreams: Vec<SocketAddr>,
}

/// A sandbox's network, as the driver needs it.
#[derive(Clone, Debug)]
pub struct SandboxNet {
    /// The namespace to run the sandbox in.
    pub netns: PathBuf,
    /// Its gateway (and DNS server).
    pub gateway: Ipv4Addr,
    /// Its address.
    pub address: Ipv4Addr,
}

struct Attached {
    slot: Slot,
    _dns: Forwarder,
}

/// This server's sandbox networking.
pub struct Network {
    config: NetConfig,
    instance: String,
    nft: Nft,
    sockets: Sockets,
    upstreams: Arc<Vec<SocketAddr>>,
    attached: Mutex<HashMap<String, Attached>>,
    host: Mutex<Vec<Ipv4Net>>,
}

/// Serialises address allocation on a machine: servers (tests run several) pick a free /30
/// by looking at the uplink's addresses, then take it.
const ALLOC_LOCK: &str = "/run/flint/net.lock";

/// The shortest connected prefix taken for a LAN: an address configured with a shorter one
/// (a /0 on a point-to-point link, say) would forbid most of the internet.
pub const CONNECTED_PREFIX_MIN: u8 = 8;

/// Each namespace's sandbox address, by namespace name: a runtime that takes the veth over
/// (gVisor) leaves no address in the namespace to find it by after a restart.
const SLOT_RECORDS: &str = "/run/flint/net";

fn slot_record(netns: &str) -> PathBuf {
    Path::new(SLOT_RECORDS).join(netns)
}

impl Network {
    /// Checks the tools and the uplink, turns on forwarding there and writes the table.
    pub async fn start(config: NetConfig, instance: &str) -> anyhow::Result<Arc<Network>> {
        netns::ip(&["-V"]).await?;
        let (sockets, uplink_path) = match &config.uplink_netns {
            Some(name) => {
                let path = netns::path(name);
                if !path.exists() {
                    bail!("no network namespace {name} (expected {})", path.display());
                }
                (Sockets::Uplink(Arc::new(netns::Worker::start(&path)?)), Some(path))
            }
            None => (Sockets::Here, None),
        };
        let upstreams = if config.dns_upstreams.is_empty() {
            let netns_conf = config
                .uplink_netns
                .as_ref()
                .map(|n| Path::new("/etc/netns").join(n).join("resolv.conf"));
            let path =
                netns_conf.filter(|p| p.exists()).unwrap_or_else(|| "/etc/resolv.conf".into());
            let found = dns::resolvers(&path);
            if found.is_empty() {
                tracing::warn!(path = %path.display(), "no nameserver found: DNS will fail in sandboxes");
            }
            found
        } else {
            config.dns_upstreams.clone()
        };
        // Forwarding on the uplink: a host setting when the host is the uplink, as for any
        // container runtime.
        let forwarding = netns::run_in(uplink_path.clone(), || {
            let before = netns::read_sysctl("ipv4/ip_forward")?;
            if before != "1" {
                netns::write_sysctl("ipv4/ip_forward", "1")?;
            }
            Ok(before)
        })
        .await
        .context("turning on IPv4 forwarding on the uplink")?;
        if forwarding != "1" {
            tracing::info!(uplink = ?config.uplink_netns, "turned on IPv4 forwarding (net.ipv4.ip_forward=1)");
        }
        let nft = Nft::new(instance, config.uplink_netns.as_deref());
        nft.apply(&nft.rules(config.pool.net())).await.context("writing Flint's nftables table")?;
        let network = Arc::new(Network {
            nft,
            instance: instance.to_owned(),
            sockets,
            upstreams: Arc::new(upstreams),
            attached: Mutex::default(),
            host: Mutex::default(),
            config,
        });
        network.refresh_host_addresses().await?;
        tracing::info!(
            pool = %network.config.pool.net(),
            uplink = network.config.uplink_netns.as_deref().unwrap_or("host"),
            table = %network.nft.table,
            dns = ?network.upstreams,
            "sandbox networking ready"
        );
        Ok(network)
    }

    fn uplink(&self) -> Option<&str> {
        self.config.uplink_netns.as_deref()
    }

    fn netns_prefix(&self) -> String {
        format!("flint-{}-", self.instance)
    }

    fn netns_name(&self, session: &str) -> String {
        format!("{}{session}", self.netns_prefix())
    }

    /// Keeps the `host` set equal to the host's own IPv4 addresses and the subnets they are
    /// directly connected to, the uplink namespace's too (they change: DHCP, new
    /// interfaces; refreshed every 10 s), so that neither the host nor its LAN is reachable
    /// from a sandbox however it is routed. The pool's own links are left out (forbidden
    /// already), and so is a connected prefix shorter than [`CONNECTED_PREFIX_MIN`].
    pub async fn refresh_host_addresses(&self) -> anyhow::Result<()> {
        let mut networks = netns::ipv4_networks(None).await?;
        if let Some(uplink) = self.uplink() {
            networks.extend(netns::ipv4_networks(Some(uplink)).await?);
        }
        let pool = self.config.pool.net();
        let mut addresses: Vec<Ipv4Net> = Vec::new();
        for net in networks {
            if pool.contains(&net.addr()) {
                continue;
            }
            addresses.push(Ipv4Net::new(net.addr(), 32).unwrap_or(net));
            if net.prefix_len() >= CONNECTED_PREFIX_MIN && net.prefix_len() < 32 {
                addresses.push(net.trunc());
            }
        }
        // Overlaps merged: an address inside its own subnet is one element.
        let addresses = Ipv4Net::aggregate(&addresses);
        let mut host = self.host.lock().await;
        if *host != addresses {
            self.nft.apply(&self.nft.host_addresses(&addresses)).await?;
            tracing::debug!(?addresses, "host addresses forbidden to sandboxes");
            *host = addresses;
        }
        Ok(())
    }

    /// Makes a session's namespace, wired to the uplink, guarded, with DNS.
    pub async fn attach(&self, session: &str) -> anyhow::Result<SandboxNet> {
        let name = self.netns_name(session);
        let path = netns::path(&name);
        if path.exists() {
            // A crash mid-way left it: nothing runs in it.
            let _ = netns::ip(&["netns", "del", &name]).await;
        }
        netns::ip(&["netns", "add", &name]).await?;
        let result = self.wire(session, &name).await;
        if result.is_err() {
            self.detach(session).await;
        }
        result
    }

    async fn wire(&self, session: &str, name: &str) -> anyhow::Result<SandboxNet> {
        let path = netns::path(name);
        // No IPv6 on the sandbox's network: the forbidden set is IPv4, and a link-local
        // address reaches the peer (MACHINE.md). The default is set before the veth exists,
        // so it never gets an address; the loopback keeps `::1` (dev servers listen there).
        netns::run_in(Some(path.clone()), || {
            netns::write_sysctl("ipv6/conf/default/disable_ipv6", "1")
        })
        .await
        .context("turning IPv6 off in the sandbox's namespace")?;
        let slot = self.take_slot(name).await?;
        let iface = slot.iface();
        let (gateway, address) = (slot.gateway(), slot.address());
        netns::ip_batch(
            Some(name),
            &[
                "link set lo up".to_owned(),
                format!("addr add {address}/30 dev eth0"),
                "link set eth0 up".to_owned(),
                format!("route add default via {gateway}"),
            ],
        )
        .await?;
        self.nft.apply(&self.nft.add(slot)).await.context("guarding the sandbox")?;
        let forwarder = dns::start(&self.sockets, gateway, self.upstreams.clone()).await;
        let forwarder = match forwarder {
            Ok(forwarder) => forwarder,
            Err(e) => {
                let _ = self.nft.apply(&self.nft.delete(slot)).await;
                return Err(e);
            }
        };
        self.attached.lock().await.insert(session.to_owned(), Attached { slot, _dns: forwarder });
        if let Err(e) = std::fs::create_dir_all(SLOT_RECORDS)
            .and_then(|()| std::fs::write(slot_record(name), address.to_string()))
        {
            tracing::warn!(%session, "recording the sandbox's address: {e}");
        }
        tracing::debug!(%session, %iface, %address, "sandbox network up");
        Ok(SandboxNet { netns: path, gateway, address })
    }

    /// Picks a free /30 and puts its gateway on a new veth, under the machine-wide lock.
    async fn take_slot(&self, name: &str) -> anyhow::Result<Slot> {
        let lock = tokio::task::spawn_blocking(|| -> anyhow::Result<_> {
            std::fs::create_dir_all("/run/flint")?;
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(ALLOC_LOCK)
                .with_context(|| format!("opening {ALLOC_LOCK}"))?;
            nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
                .map_err(|(_, e)| anyhow::anyhow!("locking {ALLOC_LOCK}: {e}"))
        })
        .await??;
        let used = netns::ipv4_networks(self.uplink()).await?;
        let slot = self
            .config
            .pool
            .first_free(&used)
            .with_context(|| format!("the address pool {} is full", self.config.pool.net()))?;
        let iface = slot.iface();
        netns::ip_batch(
            self.uplink(),
            &[format!("link add {iface} type veth peer name eth0 netns {name}")],
        )
        .await?;
        let sysctl = format!("ipv6/conf/{iface}/disable_ipv6");
        let disabled = match &self.sockets {
            Sockets::Here => netns::write_sysctl(&sysctl, "1"),
            Sockets::Uplink(worker) => worker.run(move || netns::write_sysctl(&sysctl, "1")).await,
        };
        let up = async {
            disabled.context("turning IPv6 off on the uplink's end")?;
            netns::ip_batch(
                self.uplink(),
                &[
                    format!("addr add {}/30 dev {iface}", slot.gateway()),
                    format!("link set {iface} up"),
                ],
            )
            .await
        };
        if let Err(e) = up.await {
            let _ = netns::ip_batch(self.uplink(), &[format!("link del {iface}")]).await;
            return Err(e);
        }
        drop(lock);
        Ok(slot)
    }

    /// Removes a session's namespace, links, rules and forwarder; whatever is already gone
    /// is fine. Call it once the sandbox's processes are dead.
    pub async fn detach(&self, session: &str) {
        let name = self.netns_name(session);
        let slot = match self.attached.lock().await.remove(session) {
            Some(attached) => Some(attached.slot),
            None => self.slot_in(&name).await,
        };
        if let Some(slot) = slot {
            self.remove_slot(slot).await;
        }
        if netns::path(&name).exists()
            && let Err(e) = netns::ip(&["netns", "del", &name]).await
        {
            tracing::warn!(%session, "removing the network namespace: {e:#}");
        }
        let _ = std::fs::remove_file(slot_record(&name));
    }

    async fn remove_slot(&self, slot: Slot) {
        if let Err(e) = self.nft.apply(&self.nft.delete(slot)).await {
            tracing::warn!(iface = %slot.iface(), "removing the sandbox's rules: {e:#}");
        }
        // Deleting the namespace takes the veth with it; this covers a namespace already gone.
        let _ = netns::ip_batch(self.uplink(), &[format!("link del {}", slot.iface())]).await;
    }

    /// The slot of a namespace's `eth0`, if it has one.
    async fn slot_in(&self, name: &str) -> Option<Slot> {
        if !netns::path(name).exists() {
            return None;
        }
        let nets = netns::ipv4_networks(Some(name)).await.ok()?;
        let in_pool = |s: &Slot| self.config.pool.net().contains(&s.net());
        let found = nets
            .iter()
            .map(|n| Slot::of_address(n.addr()))
            .find(|s| in_pool(s) && !s.address().is_loopback());
        // gVisor takes the veth over and strips its address: the record says which it was.
        found.or_else(|| {
            let text = std::fs::read_to_string(slot_record(name)).ok()?;
            Some(Slot::of_address(text.trim().parse().ok()?)).filter(in_pool)
        })
    }

    /// After a restart: keeps the networks of `running` sessions (adding whatever rule or
    /// forwarder is missing) and removes every other trace of this instance. Returns the
    /// running sessions whose network was gone.
    pub async fn reconcile(&self, running: &HashSet<String>) -> anyhow::Result<Vec<String>> {
        let prefix = self.netns_prefix();
        let mut found: HashMap<String, Slot> = HashMap::new();
        let entries = match std::fs::read_dir("/run/netns") {
            Ok(entries) => entries.flatten().collect(),
            Err(_) => Vec::new(),
        };
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(session) = name.strip_prefix(&prefix) else { continue };
            if running.contains(session)
                && let Some(slot) = self.slot_in(&name).await
            {
                found.insert(session.to_owned(), slot);
            } else {
                tracing::info!(%session, "removing a stale sandbox network");
                self.detach(session).await;
            }
        }
        let in_table: HashSet<String> =
            self.nft.interfaces().await?.unwrap_or_default().into_iter().collect();
        let wanted: HashSet<String> = found.values().map(Slot::iface).collect();
        for iface in in_table.difference(&wanted) {
            if let Some(slot) = Slot::from_iface(iface) {
                self.remove_slot(slot).await;
            }
        }
        for (session, slot) in found {
            // Adding an element that exists is a no-op: whatever went missing comes back.
            self.nft.apply(&self.nft.add(slot)).await?;
            let forwarder = dns::start(&self.sockets, slot.gateway(), self.upstreams.clone())
                .await
                .with_context(|| format!("DNS for session {session}"))?;
            self.attached.lock().await.insert(session, Attached { slot, _dns: forwarder });
        }
        let attached = self.attached.lock().await;
        Ok(running.iter().filter(|s| !attached.contains_key(*s)).cloned().collect())
    }

    /// At shutdown: deletes the table when no sandbox needs it. Sandboxes outlive the server
    /// by design, and a running sandbox keeps its guard until it stops.
    pub async fn shutdown(&self) {
        let attached = self.attached.lock().await.len();
        if attached == 0 {
            match self.nft.delete_table().await {
                Ok(()) => tracing::info!(table = %self.nft.table, "removed Flint's nftables table"),
                Err(e) => tracing::warn!("removing Flint's nftables table: {e:#}"),
            }
        } else {
            tracing::info!(attached, table = %self.nft.table, "sandboxes keep running: their rules stay");
        }
    }
}
