//! The host's certificate authorities, trusted inside the sandbox: what the server hands in
//! (`serve --ca-bundle`, the host's bundle plus the CAs `flint serve --extra-ca` names) joins
//! the image's system store, and the variables Node, Python, pip, git and curl read point at
//! that store, for every terminal and command. So HTTPS from a session works wherever it
//! works on the host, a TLS-inspecting proxy's CA included.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use anyhow::Context as _;

/// Debian's system bundle (OpenSSL's default file, gnutls' and Go's too).
pub const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Where the certificates only the host has are kept, so a later `update-ca-certificates`
/// inside the session puts them back into the system bundle.
pub const LOCAL_CERTIFICATES: &str = "/usr/local/share/ca-certificates/flint-host.crt";

/// The variables that name a CA bundle, for programs that do not read the system store:
/// Node (which adds it to its own store), Python's requests, pip, git, curl and OpenSSL.
const BUNDLE_VARIABLES: &[&str] = &[
    "SSL_CERT_FILE",
    "NODE_EXTRA_CA_CERTS",
    "REQUESTS_CA_BUNDLE",
    "PIP_CERT",
    "GIT_SSL_CAINFO",
    "CURL_CA_BUNDLE",
];

/// The PEM certificates in `text`, each from its `BEGIN` line to its `END` line.
pub fn certificates(text: &str) -> Vec<String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let Some(length) = rest[start..].find(END) else { break };
        let end = start + length + END.len();
        found.push(rest[start..end].to_owned());
        rest = &rest[end..];
    }
    found
}

/// The host's certificates that `system` lacks, compared without whitespace differences.
pub fn missing_from(system: &str, host: &str) -> Vec<String> {
    let key = |pem: &str| pem.split_whitespace().collect::<String>();
    let known: HashSet<String> = certificates(system).iter().map(|c| key(c)).collect();
    let mut seen = HashSet::new();
    certificates(host)
        .into_iter()
        .filter(|c| !known.contains(&key(c)) && seen.insert(key(c)))
        .collect()
}

/// Adds the certificates of `bundle` that the system store lacks to it (and to
/// [`LOCAL_CERTIFICATES`]), and names the store in `env`. A missing bundle changes nothing.
pub fn install(bundle: &Path, env: &mut BTreeMap<String, String>) -> anyhow::Result<()> {
    let host = match std::fs::read_to_string(bundle) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", bundle.display())),
    };
    let system = std::fs::read_to_string(SYSTEM_BUNDLE).unwrap_or_default();
    let missing = missing_from(&system, &host);
    if !missing.is_empty() {
        let mut added = missing.join("\n");
        added.push('\n');
        write_file(Path::new(LOCAL_CERTIFICATES), &added)?;
        let mut joined = system;
        if !joined.is_empty() && !joined.ends_with('\n') {
            joined.push('\n');
        }
        joined.push_str(&added);
        write_file(Path::new(SYSTEM_BUNDLE), &joined)?;
    }
    for name in BUNDLE_VARIABLES {
        env.entry((*name).to_owned()).or_insert_with(|| SYSTEM_BUNDLE.to_owned());
    }
    tracing::info!(added = missing.len(), "the host's certificate authorities are trusted");
    Ok(())
}

/// Writes `text` to `path` through a temporary file beside it (a reader never sees half).
fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    let dir = path.parent().context("a bundle path has a directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let temp = dir.join(format!(".flint-{}.tmp", std::process::id()));
    std::fs::write(&temp, text).with_context(|| format!("writing {}", temp.display()))?;
    std::fs::rename(&temp, path).with_context(|| format!("installing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem(body: &str) -> String {
        format!("-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----")
    }

    #[test]
    fn certificates_are_cut_from_their_begin_to_their_end_line() {
        let text = format!(
            "# a comment\n{}\njunk\n{}\n-----BEGIN CERTIFICATE-----\nhalf",
            pem("AAA"),
            pem("BBB")
        );
        assert_eq!(certificates(&text), [pem("AAA"), pem("BBB")]);
        assert!(certificates("nothing here").is_empty());
    }

    #[test]
    fn only_the_hosts_certificates_the_system_lacks_are_added_once() {
        let system = format!("{}\n{}\n", pem("AAA"), pem("BBB"));
        let host = format!("{}\n{}\n{}\n{}\n", pem("BBB"), pem("PROXY"), pem("AAA"), pem("PROXY"));
        assert_eq!(missing_from(&system, &host), [pem("PROXY")]);
        // Line lengths may differ between two copies of one certificate.
        assert!(missing_from(&pem("A A A"), &pem("AAA")).is_empty());
    }
}
