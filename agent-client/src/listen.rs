//! Where the agent listens: the one byte stream a sandbox driver gives it.
//!
//! An enum so that a virtio-serial port or vsock can be added without touching the server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use tokio::io::{AsyncRead, AsyncWrite};

/// A listen address: `unix:PATH` or `tcp:ADDR`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listen {
    /// A unix socket at this path (created, mode 0600; a stale file is replaced).
    Unix(PathBuf),
    /// A TCP address, e.g. on a private veth link.
    Tcp(SocketAddr),
}

impl FromStr for Listen {
    type Err = String;

    fn from_str(text: &str) -> Result<Listen, String> {
        if let Some(path) = text.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("unix: needs a path".to_owned());
            }
            return Ok(Listen::Unix(PathBuf::from(path)));
        }
        if let Some(addr) = text.strip_prefix("tcp:") {
            return addr
                .parse()
                .map(Listen::Tcp)
                .map_err(|e| format!("invalid tcp address {addr:?}: {e}"));
        }
        Err(format!("listen address {text:?} must start with unix: or tcp:"))
    }
}

impl std::fmt::Display for Listen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Listen::Unix(path) => write!(f, "unix:{}", path.display()),
            Listen::Tcp(addr) => write!(f, "tcp:{addr}"),
        }
    }
}

/// A bound listener.
pub enum Listener {
    /// Unix socket.
    Unix(tokio::net::UnixListener),
    /// TCP.
    Tcp(tokio::net::TcpListener),
}

/// One accepted byte stream.
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

impl Listener {
    /// Binds `listen`.
    pub async fn bind(listen: &Listen) -> std::io::Result<Listener> {
        Listener::bind_with_mode(listen, 0o600).await
    }

    /// Binds `listen`; a unix socket gets `mode`. The socket is made under a umask that
    /// gives it `mode` at once (no window with a wider mode), then `chmod`ed; a runtime
    /// that refuses `chmod` on a socket (gVisor with host-backed sockets) keeps the umask's.
    pub async fn bind_with_mode(listen: &Listen, mode: u32) -> std::io::Result<Listener> {
        match listen {
            Listen::Unix(path) => {
                use nix::sys::stat::{Mode, umask};
                use std::os::unix::fs::PermissionsExt;
                match std::fs::remove_file(path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
                let mask = Mode::from_bits_truncate(!mode & 0o777);
                let before = umask(mask);
                let bound = tokio::net::UnixListener::bind(path);
                umask(before);
                let listener = bound?;
                match std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                        tracing::debug!(path = %path.display(), "chmod refused: {e}");
                    }
                    Err(e) => return Err(e),
                }
                Ok(Listener::Unix(listener))
            }
            Listen::Tcp(addr) => Ok(Listener::Tcp(tokio::net::TcpListener::bind(addr).await?)),
        }
    }

    /// The TCP port, when listening on TCP (the agent never tunnels to it).
    pub fn tcp_port(&self) -> Option<u16> {
        match self {
            Listener::Tcp(l) => l.local_addr().ok().map(|a| a.port()),
            Listener::Unix(_) => None,
        }
    }

    /// Waits for the next connection.
    pub async fn accept(&self) -> std::io::Result<Box<dyn Stream>> {
        match self {
            Listener::Unix(l) => Ok(Box::new(l.accept().await?.0)),
            Listener::Tcp(l) => {
                let (stream, _) = l.accept().await?;
                stream.set_nodelay(true)?;
                Ok(Box::new(stream))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_forms_and_refuses_others() {
        assert_eq!("unix:/run/a.sock".parse(), Ok(Listen::Unix("/run/a.sock".into())));
        assert_eq!(
            "tcp:127.0.0.1:9".parse(),
            Ok(Listen::Tcp(SocketAddr::from(([127, 0, 0, 1], 9))))
        );
        assert!("unix:".parse::<Listen>().is_err());
        assert!("tcp:nowhere".parse::<Listen>().is_err());
        assert!("/run/a.sock".parse::<Listen>().is_err());
    }
}
