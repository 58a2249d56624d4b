//! The DNS forwarder on each sandbox's gateway: the one address on the uplink a sandbox may
//! reach, relaying queries to the uplink's resolvers (which may sit in a private range a
//! sandbox must not reach itself). Queries and answers pass through as bytes; nothing is
//! parsed but the two-byte id that pairs them.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::{TcpListener, TcpSocket, UdpSocket};
use tokio::task::JoinSet;

use super::netns::Worker;

/// How long one upstream may take to answer before the next is tried.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a DNS-over-TCP connection may last.
const TCP_DEADLINE: Duration = Duration::from_secs(30);

/// Queries in flight per sandbox; more are dropped (the client retries).
const IN_FLIGHT: usize = 64;

/// Where the uplink's sockets are made.
#[derive(Clone)]
pub enum Sockets {
    /// This process's namespace (the host is the uplink).
    Here,
    /// An uplink namespace, through its thread.
    Uplink(Arc<Worker>),
}

impl Sockets {
    async fn make<T, F>(&self, f: F) -> std::io::Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> std::io::Result<T> + Send + 'static,
    {
        match self {
            Sockets::Here => f(),
            Sockets::Uplink(worker) => worker.run(f).await,
        }
    }

    async fn udp(&self, bind: SocketAddr) -> std::io::Result<UdpSocket> {
        let socket = self
            .make(move || {
                let socket = std::net::UdpSocket::bind(bind)?;
                socket.set_nonblocking(true)?;
                Ok(socket)
            })
            .await?;
        UdpSocket::from_std(socket)
    }

    async fn tcp_listener(&self, bind: SocketAddr) -> std::io::Result<TcpListener> {
        let listener = self
            .make(move || {
                let listener = std::net::TcpListener::bind(bind)?;
                listener.set_nonblocking(true)?;
                Ok(listener)
            })
            .await?;
        TcpListener::from_std(listener)
    }

    async fn tcp_socket(&self, to: SocketAddr) -> std::io::Result<TcpSocket> {
        self.make(move || if to.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() })
            .await
    }
}

/// A running forwarder; dropping it stops it.
pub struct Forwarder {
    _tasks: JoinSet<()>,
}

/// Serves DNS on `gateway:53` (UDP and TCP), relaying to `upstreams` in order.
pub async fn start(
    sockets: &Sockets,
    gateway: Ipv4Addr,
    upstreams: Arc<Vec<SocketAddr>>,
) -> anyhow::Result<Forwarder> {
    let bind = SocketAddr::from((gateway, 53));
    let udp = Arc::new(sockets.udp(bind).await.with_context(|| format!("DNS on {bind}/udp"))?);
    let tcp = sockets.tcp_listener(bind).await.with_context(|| format!("DNS on {bind}/tcp"))?;
    let limit = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let mut tasks = JoinSet::new();
    tasks.spawn(serve_udp(udp, sockets.clone(), upstreams.clone(), limit.clone()));
    tasks.spawn(serve_tcp(tcp, sockets.clone(), upstreams, limit));
    Ok(Forwarder { _tasks: tasks })
}

async fn serve_udp(
    socket: Arc<UdpSocket>,
    sockets: Sockets,
    upstreams: Arc<Vec<SocketAddr>>,
    limit: Arc<tokio::sync::Semaphore>,
) {
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, client) = match socket.recv_from(&mut buf).await {
            Ok(got) => got,
            Err(e) => {
                tracing::debug!("DNS forwarder: {e}");
                continue;
            }
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else { continue };
        if n < 12 {
            continue; // shorter than a DNS header
        }
        let query = buf[..n].to_vec();
        let (socket, sockets, upstreams) = (socket.clone(), sockets.clone(), upstreams.clone());
        tokio::spawn(async move {
            let _permit = permit;
            if let Some(answer) = relay_udp(&sockets, &upstreams, &query).await {
                let _ = socket.send_to(&answer, client).await;
            }
        });
    }
}

async fn relay_udp(sockets: &Sockets, upstreams: &[SocketAddr], query: &[u8]) -> Option<Vec<u8>> {
    for upstream in upstreams {
        let any = if upstream.is_ipv4() {
            SocketAddr::from(([0, 0, 0, 0], 0))
        } else {
            SocketAddr::from(([0u16; 8], 0))
        };
        let attempt = async {
            let socket = sockets.udp(any).await?;
            socket.connect(upstream).await?;
            socket.send(query).await?;
            let mut answer = vec![0u8; 65535];
            loop {
                let n = socket.recv(&mut answer).await?;
                // Same id: the answer to this query, not a stray datagram.
                if n >= 12 && answer[..2] == query[..2] {
                    answer.truncate(n);
                    return Ok::<_, std::io::Error>(answer);
                }
            }
        };
        match tokio::time::timeout(UPSTREAM_TIMEOUT, attempt).await {
            Ok(Ok(answer)) => return Some(answer),
            Ok(Err(e)) => tracing::debug!(%upstream, "DNS upstream: {e}"),
            Err(_) => tracing::debug!(%upstream, "DNS upstream timed out"),
        }
    }
    None
}

async fn serve_tcp(
    listener: TcpListener,
    sockets: Sockets,
    upstreams: Arc<Vec<SocketAddr>>,
    limit: Arc<tokio::sync::Semaphore>,
) {
    loop {
        let Ok((mut client, _)) = listener.accept().await else { continue };
        let Ok(permit) = limit.clone().try_acquire_owned() else { continue };
        let (sockets, upstreams) = (sockets.clone(), upstreams.clone());
        tokio::spawn(async move {
            let _permit = permit;
            for upstream in upstreams.iter() {
                let connect =
                    async { sockets.tcp_socket(*upstream).await?.connect(*upstream).await };
                if let Ok(Ok(mut server)) = tokio::time::timeout(UPSTREAM_TIMEOUT, connect).await {
                    let relay = tokio::io::copy_bidirectional(&mut client, &mut server);
                    let _ = tokio::time::timeout(TCP_DEADLINE, relay).await;
                    return;
                }
            }
        });
    }
}

/// The resolvers of a `resolv.conf` (`nameserver` lines), on port 53.
pub fn resolvers(path: &Path) -> Vec<SocketAddr> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    parse_resolv_conf(&text)
}

fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("nameserver")).then(|| words.next()).flatten()
        })
        .filter_map(|addr| addr.split('%').next()?.parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nameservers_are_read_from_resolv_conf() {
        let text = "# comment\nsearch example.com\nnameserver 10.255.255.53\nnameserver fe80::1%eth0\n\
                    nameserver\nnameserver bogus\noptions edns0\n";
        let got = parse_resolv_conf(text);
        assert_eq!(
            got,
            vec![
                "10.255.255.53:53".parse().expect("parse"),
                "[fe80::1]:53".parse().expect("parse")
            ]
        );
    }
}
