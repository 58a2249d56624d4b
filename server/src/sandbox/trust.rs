//! The certificate authorities every sandbox trusts besides its image's: the host's bundle
//! (`$SSL_CERT_FILE`, else Debian's `/etc/ssl/certs/ca-certificates.crt`) and the files
//! `flint serve --extra-ca` names. Written once per server start to the data directory,
//! copied into each sandbox's `/run/flint` at start; the guest agent adds what its image
//! lacks to the system store ([`agent_client::trust`]).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, ensure};

/// Debian's system bundle on the host.
const HOST_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The file's name in the data directory and in each sandbox's `/run/flint`.
pub const FILE_NAME: &str = "ca-certificates.crt";

/// The host's bundle: `$SSL_CERT_FILE` if it names a file, else Debian's.
fn host_bundle() -> Option<PathBuf> {
    std::env::var_os("SSL_CERT_FILE")
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .or_else(|| Some(PathBuf::from(HOST_BUNDLE)).filter(|p| p.is_file()))
}

/// The PEM text of the host's bundle and of every `extra` file (each must hold at least one
/// certificate), or `None` when there is neither.
pub fn compose(host: Option<&Path>, extra: &[PathBuf]) -> anyhow::Result<Option<String>> {
    let mut text = String::new();
    if let Some(host) = host {
        text = std::fs::read_to_string(host)
            .with_context(|| format!("reading the host's CA bundle {}", host.display()))?;
    }
    for path in extra {
        let more = std::fs::read_to_string(path)
            .with_context(|| format!("--extra-ca {}: cannot read it", path.display()))?;
        ensure!(
            !agent_client::trust::certificates(&more).is_empty(),
            "--extra-ca {}: no PEM certificate in it",
            path.display()
        );
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&more);
    }
    Ok((!agent_client::trust::certificates(&text).is_empty()).then_some(text))
}

/// Writes the bundle sandboxes get into `data_dir` and returns its path; `None` when the
/// host has no bundle and no extra CA was named.
pub fn prepare(data_dir: &Path, extra: &[PathBuf]) -> anyhow::Result<Option<PathBuf>> {
    let Some(text) = compose(host_bundle().as_deref(), extra)? else {
        tracing::info!("no CA bundle on the host: sandboxes trust their images' CAs only");
        return Ok(None);
    };
    let path = data_dir.join(FILE_NAME);
    let temp = data_dir.join(format!("{FILE_NAME}.{}", std::process::id()));
    std::fs::write(&temp, &text).with_context(|| format!("writing {}", temp.display()))?;
    std::fs::rename(&temp, &path).with_context(|| format!("writing {}", path.display()))?;
    let count = agent_client::trust::certificates(&text).len();
    tracing::info!(certificates = count, extra = extra.len(), "sandboxes trust the host's CAs");
    Ok(Some(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM: &str = "-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n";

    #[test]
    fn the_bundle_is_the_hosts_then_each_extra_ca() {
        let dir = tempfile::tempdir().expect("tempdir");
        let host = dir.path().join("host.crt");
        let extra = dir.path().join("proxy.pem");
        std::fs::write(&host, PEM).expect("host");
        std::fs::write(&extra, PEM.replace("AAA", "PROXY")).expect("extra");
        let text = compose(Some(&host), std::slice::from_ref(&extra)).expect("compose");
        let text = text.expect("a bundle");
        assert_eq!(agent_client::trust::certificates(&text).len(), 2);
        assert!(text.ends_with("PROXY\n-----END CERTIFICATE-----\n"), "{text}");
        assert_eq!(compose(None, &[]).expect("nothing"), None);
    }

    #[test]
    fn an_extra_ca_without_a_certificate_is_refused_with_its_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").expect("junk");
        let error = compose(None, &[junk]).expect_err("junk").to_string();
        assert!(error.contains("junk.pem") && error.contains("no PEM certificate"), "{error}");
        let error = compose(None, &[dir.path().join("absent.pem")]).expect_err("absent");
        assert!(format!("{error:#}").contains("absent.pem"), "{error:#}");
    }
}
