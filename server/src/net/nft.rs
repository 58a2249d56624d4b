//! Flint's nftables table, one per server instance (`inet flint_<instance>`) on the uplink:
//! only that table is ever written or deleted, never the ruleset.
//!
//! The rules are fixed; sandboxes come and go as set elements (their uplink interface, its
//! gateway, their address), so starting, stopping and reconciling a sandbox is an element
//! change, atomic and independent of the others.

use std::process::Stdio;

use anyhow::{Context as _, bail};
use ipnet::Ipv4Net;
use tokio::io::AsyncWriteExt as _;

use super::pool::{FORBIDDEN, Slot};

/// Where `nft` runs: the host's namespace, or a named uplink namespace.
#[derive(Clone, Debug)]
pub struct Nft {
    /// `inet <table>`.
    pub table: String,
    uplink: Option<String>,
}

impl Nft {
    /// Flint's table for `instance`, on `uplink` (`None`: the host).
    pub fn new(instance: &str, uplink: Option<&str>) -> Nft {
        Nft { table: format!("flint_{instance}"), uplink: uplink.map(str::to_owned) }
    }

    /// The rules. Re-applying them (a server restart) replaces the chains' rules in one
    /// transaction and keeps every set's elements, so a running sandbox is never unguarded.
    ///
    /// - from a sandbox to the uplink itself (input): only DNS to its own gateway, and
    ///   replies to what the uplink opened; DNS to one of this instance's gateways from
    ///   anywhere else (the LAN, the uplink itself) never: the forwarders answer sandboxes
    ///   only (another server's gateways on the same uplink are its own table's business);
    /// - from a sandbox onwards (forward): never to a forbidden range or a host address, and
    ///   only from its own address; IPv6 never;
    /// - to a sandbox: only replies;
    /// - NAT (masquerade) for what leaves the pool.
    pub fn rules(&self, pool: Ipv4Net) -> String {
        let t = &self.table;
        let forbidden = FORBIDDEN.join(", ");
        format!(
            r#"add table inet {t} {{ comment "Flint sandboxes: written by flint serve, deleted with its last sandbox"; }}
add set inet {t} ifs {{ type ifname; }}
add set inet {t} source {{ type ifname . ipv4_addr; }}
add set inet {t} dns {{ type ifname . ipv4_addr; }}
add set inet {t} gateways {{ type ipv4_addr; }}
add set inet {t} host {{ type ipv4_addr; flags interval; auto-merge; }}
add set inet {t} forbidden {{ type ipv4_addr; flags interval; auto-merge; }}
flush set inet {t} forbidden
add element inet {t} forbidden {{ {forbidden} }}
add chain inet {t} input {{ type filter hook input priority filter - 5; policy accept; }}
add chain inet {t} forward {{ type filter hook forward priority filter - 5; policy accept; }}
add chain inet {t} postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}
add chain inet {t} from_sandbox_to_uplink
add chain inet {t} from_sandbox
add chain inet {t} to_sandbox
flush chain inet {t} input
flush chain inet {t} forward
flush chain inet {t} postrouting
flush chain inet {t} from_sandbox_to_uplink
flush chain inet {t} from_sandbox
flush chain inet {t} to_sandbox
add rule inet {t} input iifname @ifs jump from_sandbox_to_uplink
add rule inet {t} input ip daddr @gateways meta l4proto {{ tcp, udp }} th dport 53 drop
add rule inet {t} from_sandbox_to_uplink meta nfproto ipv6 drop
add rule inet {t} from_sandbox_to_uplink ct state established,related accept
add rule inet {t} from_sandbox_to_uplink iifname . ip saddr != @source drop
add rule inet {t} from_sandbox_to_uplink iifname . ip daddr @dns meta l4proto {{ tcp, udp }} th dport 53 accept
add rule inet {t} from_sandbox_to_uplink drop
add rule inet {t} forward iifname @ifs jump from_sandbox
add rule inet {t} forward oifname @ifs jump to_sandbox
add rule inet {t} from_sandbox meta nfproto ipv6 drop
add rule inet {t} from_sandbox iifname . ip saddr != @source drop
add rule inet {t} from_sandbox ip daddr @forbidden drop
add rule inet {t} from_sandbox ip daddr @host drop
add rule inet {t} from_sandbox accept
add rule inet {t} to_sandbox ct state established,related accept
add rule inet {t} to_sandbox drop
add rule inet {t} postrouting ip saddr {pool} oifname != @ifs masquerade
"#
        )
    }

    /// Adds a sandbox's elements.
    pub fn add(&self, slot: Slot) -> String {
        self.elements("add", slot)
    }

    /// Deletes them, whichever exist: adding first makes every delete valid (`nft` fails a
    /// whole transaction on one missing element), and the transaction is atomic.
    pub fn delete(&self, slot: Slot) -> String {
        self.elements("add", slot) + &self.elements("delete", slot)
    }

    fn elements(&self, verb: &str, slot: Slot) -> String {
        let (t, i) = (&self.table, slot.iface());
        let (gateway, address) = (slot.gateway(), slot.address());
        format!(
            "{verb} element inet {t} ifs {{ \"{i}\" }}\n\
             {verb} element inet {t} source {{ \"{i}\" . {address} }}\n\
             {verb} element inet {t} dns {{ \"{i}\" . {gateway} }}\n\
             {verb} element inet {t} gateways {{ {gateway} }}\n"
        )
    }

    /// Replaces the host's addresses and connected subnets (refreshed as they change).
    pub fn host_addresses(&self, addresses: &[Ipv4Net]) -> String {
        let t = &self.table;
        let mut script = format!("flush set inet {t} host\n");
        if !addresses.is_empty() {
            let list: Vec<String> = addresses.iter().map(Ipv4Net::to_string).collect();
            script.push_str(&format!("add element inet {t} host {{ {} }}\n", list.join(", ")));
        }
        script
    }

    /// Runs a script as one transaction.
    pub async fn apply(&self, script: &str) -> anyhow::Result<()> {
        let mut child = self
            .command(&["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("running `nft` (install nftables)")?;
        let mut stdin = child.stdin.take().context("nft's stdin")?;
        stdin.write_all(script.as_bytes()).await?;
        drop(stdin);
        let output = child.wait_with_output().await?;
        if !output.status.success() {
            bail!("nft: {}", String::from_utf8_lossy(&output.stderr).trim());
        }
        Ok(())
    }

    /// The interfaces in the table's `ifs` set; `None` if the table does not exist.
    pub async fn interfaces(&self) -> anyhow::Result<Option<Vec<String>>> {
        let output = self
            .command(&["-j", "list", "set", "inet", &self.table, "ifs"])
            .stdin(Stdio::null())
            .output()
            .await
            .context("running `nft` (install nftables)")?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            if stderr.contains("No such file or directory") {
                return Ok(None);
            }
            bail!("nft list set: {}", stderr.trim());
        }
        let json: serde_json::Value =
            serde_json::from_slice(&output.stdout).context("parsing `nft -j` output")?;
        let mut names = Vec::new();
        for item in json["nftables"].as_array().into_iter().flatten() {
            for element in item["set"]["elem"].as_array().into_iter().flatten() {
                if let Some(name) = element.as_str() {
                    names.push(name.to_owned());
                }
            }
        }
        Ok(Some(names))
    }

    /// Deletes the table (and with it every rule and element of this instance).
    pub async fn delete_table(&self) -> anyhow::Result<()> {
        self.apply(&format!("delete table inet {}\n", self.table)).await
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = match &self.uplink {
            Some(netns) => {
                let mut c = tokio::process::Command::new("nsenter");
                c.arg(format!("--net={}", super::netns::path(netns).display())).arg("nft");
                c
            }
            None => tokio::process::Command::new("nft"),
        };
        command.args(args).kill_on_drop(true);
        command
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rules_name_only_flints_own_table() {
        let nft = Nft::new("0123456789ab", Some("up"));
        let rules = nft.rules("100.64.0.0/16".parse().expect("parse"));
        // Every statement names the table: nothing global is flushed or changed.
        for line in rules.lines().filter(|l| !l.is_empty()) {
            assert!(line.contains("inet flint_0123456789ab"), "{line}");
            assert!(!line.contains("ruleset"), "{line}");
        }
        assert!(rules.contains("ip saddr 100.64.0.0/16 oifname != @ifs masquerade"));
        let slot = super::super::pool::Pool::parse("100.64.0.0/16")
            .expect("pool")
            .first_free(&[])
            .expect("slot");
        let add = nft.add(slot);
        assert!(add.contains(r#"dns { "fl64400000" . 100.64.0.1 }"#), "{add}");
        assert!(add.contains(r#"source { "fl64400000" . 100.64.0.2 }"#), "{add}");
        assert_eq!(nft.delete(slot), add.clone() + &add.replace("add ", "delete "));
    }
}
