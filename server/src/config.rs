//! What `flint serve` is told: where to listen, where to keep data, which origin it is.

use std::net::SocketAddr;
use std::path::PathBuf;

/// The origin browsers reach Flint at, e.g. `http://127.0.0.1:8080`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicOrigin {
    /// `http` or `https`.
    pub scheme: String,
    /// Host name or address, without brackets for IPv6.
    pub host: String,
    /// Port, explicit or the scheme's default.
    pub port: u16,
}

impl PublicOrigin {
    /// Parses `scheme://host[:port]` (no path).
    pub fn parse(text: &str) -> Result<PublicOrigin, String> {
        let uri: http::Uri = text.parse().map_err(|e| format!("invalid origin {text:?}: {e}"))?;
        let scheme = uri.scheme_str().ok_or_else(|| format!("origin {text:?} has no scheme"))?;
        if scheme != "http" && scheme != "https" {
            return Err(format!("origin {text:?} must be http or https"));
        }
        if uri.path_and_query().is_some_and(|p| p.as_str() != "/" && !p.as_str().is_empty()) {
            return Err(format!("origin {text:?} must not have a path"));
        }
        let host = uri.host().ok_or_else(|| format!("origin {text:?} has no host"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        let port = uri.port_u16().unwrap_or(if scheme == "https" { 443 } else { 80 });
        Ok(PublicOrigin { scheme: scheme.to_owned(), host, port })
    }

    /// The origin as a browser sends it in `Origin`.
    pub fn to_origin_string(&self) -> String {
        let host =
            if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        let default = if self.scheme == "https" { 443 } else { 80 };
        if self.port == default {
            format!("{}://{host}", self.scheme)
        } else {
            format!("{}://{host}:{}", self.scheme, self.port)
        }
    }

    /// True for https: cookies then get `Secure`.
    pub fn is_https(&self) -> bool {
        self.scheme == "https"
    }
}

/// The whole configuration of a server.
#[derive(Clone, Debug)]
pub struct Config {
    /// The address actually bound.
    pub listen: SocketAddr,
    /// Where the database and sessions' data live.
    pub data_dir: PathBuf,
    /// The origin browsers use.
    pub public_origin: PublicOrigin,
    /// Where preview URLs point.
    pub preview: PreviewBase,
}

/// What preview URLs are made of: `{scheme}://{port}-{session}.{domain}[:{listen_port}]/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreviewBase {
    /// `http` or `https` (the public origin's).
    pub scheme: String,
    /// The preview domain (a wildcard name pointing at Flint).
    pub domain: String,
    /// The port browsers reach previews on: the public origin's, or `--preview-listen`'s.
    pub port: u16,
}

impl PreviewBase {
    /// The URL of `path` on the preview host `{port}-{session}.{domain}`.
    pub fn url(&self, host_label: &str, path: &str) -> String {
        let default = if self.scheme == "https" { 443 } else { 80 };
        let port = if self.port == default { String::new() } else { format!(":{}", self.port) };
        format!("{}://{host_label}.{}{port}{path}", self.scheme, self.domain)
    }
}

/// Creates the data directory if needed and makes it, and its `sessions/`, root's alone
/// (0700): session volumes, logs and the database are nobody else's to read.
pub fn prepare_data_dir(data_dir: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    for dir in [data_dir.to_owned(), data_dir.join("sessions")] {
        if dir.exists() {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("making {} private", dir.display()))?;
        }
    }
    Ok(())
}

/// `$FLINT_DATA_DIR`, else `~/.local/share/flint`.
pub fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FLINT_DATA_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home =
        std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".local/share/flint")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_parse_with_default_ports_and_print_back() {
        let o = PublicOrigin::parse("http://127.0.0.1:8080").expect("parse");
        assert_eq!((o.host.as_str(), o.port), ("127.0.0.1", 8080));
        assert_eq!(o.to_origin_string(), "http://127.0.0.1:8080");
        let o = PublicOrigin::parse("https://Flint.Example.com").expect("parse");
        assert_eq!((o.host.as_str(), o.port, o.is_https()), ("flint.example.com", 443, true));
        assert_eq!(o.to_origin_string(), "https://flint.example.com");
        let o = PublicOrigin::parse("http://[::1]:9000").expect("parse");
        assert_eq!(o.to_origin_string(), "http://[::1]:9000");
        assert!(PublicOrigin::parse("ftp://x").is_err());
        assert!(PublicOrigin::parse("http://x/path").is_err());
        assert!(PublicOrigin::parse("nonsense").is_err());
    }
}
