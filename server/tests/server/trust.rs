//! Sandboxes trust what the host trusts: a certificate authority given to `flint serve
//! --extra-ca` (as a TLS-inspecting proxy's would be) signs the fake internet's HTTPS
//! server, and curl, Python and Node in a gVisor session fetch from it; a server without
//! the CA gets a verification error for the same fetch.

use std::path::Path;
use std::process::Command;

use crate::common::*;
use crate::support::uplink::{self, Uplink};

/// Runs `openssl` with `args` in `dir`; panics with its error output if it fails.
fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A CA (`ca.pem`) and a certificate it signed for the fake internet's name (`site.pem`,
/// `site.key`), in `dir`.
fn make_certificates(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-subj",
            "/CN=Flint test inspecting proxy",
            // Python 3.13 verifies strictly: a CA needs its key usage.
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "site.key",
            "-out",
            "site.csr",
            "-subj",
            &format!("/CN={}", uplink::INTERNET_NAME),
        ],
    );
    std::fs::write(dir.join("san.ext"), format!(
        "subjectAltName=DNS:{}\nauthorityKeyIdentifier=keyid,issuer\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
        uplink::INTERNET_NAME
    ))
        .expect("san");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "site.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            "site.pem",
            "-extfile",
            "san.ext",
        ],
    );
}

#[tokio::test]
async fn a_session_trusts_the_hosts_extra_certificate_authorities() {
    crate::support::build_image("default");
    let certs = tempfile::tempdir().expect("tempdir");
    make_certificates(certs.path());
    let mut uplink = Uplink::build();
    uplink.serve_https(&certs.path().join("site.pem"), &certs.path().join("site.key"));
    let url = format!("https://{}/", uplink::INTERNET_NAME);
    let dns = uplink::DNS.to_string();
    let ca = certs.path().join("ca.pem");
    let ca = ca.to_str().expect("utf-8 path");
    let base = ["--uplink-netns", &uplink.name, "--dns-upstream", &dns, "--driver", "gvisor"];

    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start_with(dir.path(), &[&base[..], &["--extra-ca", ca]].concat());
    let bearer = server.bearer().await;
    let id =
        server.running_session(&bearer, r#"{"image":"default","memory_mb":1024,"cpus":1}"#).await;
    for (tool, script) in [
        ("curl", format!("curl -sS {url}")),
        (
            "python",
            format!(
                "python3 -c \"import urllib.request; print(urllib.request.urlopen('{url}').read().decode(), end='')\""
            ),
        ),
        (
            "node",
            format!(
                "node -e \"fetch('{url}').then(r => r.text()).then(t => process.stdout.write(t))\""
            ),
        ),
    ] {
        let (code, out, err) = server.sh(&bearer, &id, &script).await;
        assert_eq!((code, out.as_str()), (0, uplink::INDEX), "{tool} over HTTPS: {err}");
    }
    // The CA joined the system store and the file update-ca-certificates keeps it in.
    let pem = std::fs::read_to_string(certs.path().join("ca.pem")).expect("ca.pem");
    let line = pem.lines().nth(1).expect("a line of the CA's body");
    for file in
        ["/etc/ssl/certs/ca-certificates.crt", "/usr/local/share/ca-certificates/flint-host.crt"]
    {
        let (code, _, _) = server.sh(&bearer, &id, &format!("grep -qF '{line}' {file}")).await;
        assert_eq!(code, 0, "the CA is not in {file}");
    }

    // Without the CA, the same fetch fails verification.
    let other = tempfile::tempdir().expect("tempdir");
    let plain = TestServer::start_with(other.path(), &base);
    let bearer = plain.bearer().await;
    let id = plain.running_session(&bearer, r#"{"image":"test","memory_mb":512}"#).await;
    let script = format!("python3 -c \"import urllib.request; urllib.request.urlopen('{url}')\"");
    let (code, _, err) = plain.sh(&bearer, &id, &script).await;
    assert_ne!(code, 0);
    assert!(err.contains("CERTIFICATE_VERIFY_FAILED"), "{err}");
}
