//! The address plan: each sandbox gets a /30 of the pool, its first host address the
//! gateway (the uplink's end of the veth), its second the sandbox.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// The default pool: carrier-grade NAT space, which no home or cloud network hands out to
/// hosts and which the forbidden set covers whole (so sandboxes never reach each other).
pub const DEFAULT_POOL: &str = "100.64.0.0/16";

/// Ranges a sandbox may never reach; the pool must lie inside one of them.
pub const FORBIDDEN: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
    // IANA special-purpose, not global: protocol assignments, benchmarking, documentation
    // (TEST-NET-1 and -2; TEST-NET-3, 203.0.113.0/24, is the test uplink's "internet")
    "192.0.0.0/24",
    "192.0.2.0/24",
    "198.18.0.0/15",
    "198.51.100.0/24",
    // multicast, reserved (240.0.0.0/4) and broadcast
    "224.0.0.0/3",
];

/// The addresses sandboxes are given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool(Ipv4Net);

impl Pool {
    /// Parses `A.B.C.D/N`: at least one /30, inside the forbidden set.
    pub fn parse(text: &str) -> Result<Pool, String> {
        let net: Ipv4Net = text
            .parse()
            .map_err(|e| format!("invalid address pool {text:?}: {e} (want A.B.C.D/N)"))?;
        let net = net.trunc();
        if net.prefix_len() > 30 {
            return Err(format!("the address pool {text} is smaller than one /30"));
        }
        let covered =
            FORBIDDEN.iter().filter_map(|f| f.parse::<Ipv4Net>().ok()).any(|f| f.contains(&net));
        if !covered {
            return Err(format!(
                "the address pool {text} must lie inside 100.64.0.0/10 or a private range, so \
                 that sandboxes can't reach each other"
            ));
        }
        Ok(Pool(net))
    }

    /// The pool as a network.
    pub fn net(&self) -> Ipv4Net {
        self.0
    }

    /// The first /30 that overlaps none of `used` (networks already on the uplink).
    pub fn first_free(&self, used: &[Ipv4Net]) -> Option<Slot> {
        let subnets = self.0.subnets(30).ok()?;
        subnets.into_iter().find(|s| !used.iter().any(|u| overlaps(s, u))).map(Slot)
    }
}

fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// One sandbox's /30.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Slot(Ipv4Net);

impl Slot {
    /// The gateway: the uplink's end of the veth, where the DNS forwarder listens.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.0.network()) + 1)
    }

    /// The sandbox's address.
    pub fn address(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.0.network()) + 2)
    }

    /// The uplink's end of the veth: `fl` and the /30's network in hex (10 characters, and
    /// unique on an uplink because the /30 is).
    pub fn iface(&self) -> String {
        format!("fl{:08x}", u32::from(self.0.network()))
    }

    /// The slot an uplink interface named by [`Slot::iface`] stands for.
    pub fn from_iface(name: &str) -> Option<Slot> {
        let hex = name.strip_prefix("fl").filter(|h| h.len() == 8)?;
        let network = u32::from_str_radix(hex, 16).ok()?;
        Ipv4Net::new(Ipv4Addr::from(network), 30).ok().filter(|n| n.trunc() == *n).map(Slot)
    }

    /// The slot holding a sandbox address.
    pub fn of_address(address: Ipv4Addr) -> Slot {
        Slot(Ipv4Net::new(address, 30).map(|n| n.trunc()).unwrap_or_default())
    }

    /// The /30.
    pub fn net(&self) -> Ipv4Net {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_hands_out_the_first_unused_slash_30() {
        let pool = Pool::parse("100.64.0.0/16").expect("pool");
        let first = pool.first_free(&[]).expect("slot");
        assert_eq!(first.gateway(), Ipv4Addr::new(100, 64, 0, 1));
        assert_eq!(first.address(), Ipv4Addr::new(100, 64, 0, 2));
        assert_eq!(first.iface(), "fl64400000");
        assert!(first.iface().len() <= 15);
        // A gateway already on the uplink (another server's sandbox) takes its /30 out.
        let used: Vec<Ipv4Net> = ["100.64.0.1/30", "100.64.0.5/30", "10.0.0.1/8"]
            .iter()
            .map(|u| u.parse().expect("net"))
            .collect();
        let next = pool.first_free(&used).expect("slot");
        assert_eq!(next.address(), Ipv4Addr::new(100, 64, 0, 10));
        assert_eq!(Slot::from_iface(&next.iface()), Some(next));
        assert_eq!(Slot::of_address(next.address()), next);
        // A whole-pool route or address leaves nothing.
        assert_eq!(pool.first_free(&["100.64.0.0/10".parse().expect("parse")]), None);
    }

    #[test]
    fn pools_outside_the_forbidden_set_or_too_small_are_refused() {
        assert!(Pool::parse("100.64.0.0/16").is_ok());
        assert!(Pool::parse("10.200.0.0/24").is_ok());
        assert!(Pool::parse("203.0.113.0/24").expect_err("refused").contains("must lie inside"));
        assert!(
            Pool::parse("100.64.0.0/31").expect_err("refused").contains("smaller than one /30")
        );
        assert!(Pool::parse("nonsense").expect_err("refused").contains("invalid address pool"));
        assert_eq!(Slot::from_iface("eth0"), None);
        assert_eq!(Slot::from_iface("fl64400001"), None);
    }
}
