//! The spec's `run` commands as mmdebstrap customize hooks: each in a `chroot` of the image
//! with a clean environment and, while they run, the host's CA bundle.

use super::Spec;

/// The host's CA bundle (Debian's, with the host's local CAs): the spec's `run` commands
/// reach the registries through the host's network, so they trust what the host trusts (a
/// TLS-inspecting proxy's CA included), without it ever being part of the image.
pub(super) const HOST_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// A directory inside the image that exists only while the `run` commands run: the host's
/// CA bundle is copied there and removed afterwards.
pub(super) const RUN_DIR_IN_IMAGE: &str = "/tmp/flint-build";

/// `PATH` of the `run` commands (Debian's default for root).
pub(super) const RUN_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// One `--customize-hook` of mmdebstrap: the `sh` script it runs (the image's root is `$1`)
/// and the phase it is shown as.
#[derive(Debug)]
pub(super) struct Hook {
    pub(super) script: String,
    pub(super) label: String,
}

/// The hooks that run the spec's `run` commands, in order, each `sh -e` in a `chroot` of the
/// image with a clean environment (never the builder's own: no host variables, no npm
/// settings of whoever started the build): `PATH`, `HOME`, `LANG`, `DEBIAN_FRONTEND`, the
/// spec's `env`, and `host_ca` (when the host has one) copied into the image for as long as
/// the commands run, as `SSL_CERT_FILE` and `NODE_EXTRA_CA_CERTS`.
pub(super) fn run_hooks(spec: &Spec, host_ca: Option<&str>) -> Vec<Hook> {
    if spec.run.is_empty() {
        return Vec::new();
    }
    let mut hooks = Vec::new();
    let mut env = vec![
        format!("PATH={RUN_PATH}"),
        "HOME=/root".to_owned(),
        "LANG=C.UTF-8".to_owned(),
        "DEBIAN_FRONTEND=noninteractive".to_owned(),
    ];
    env.extend(spec.env.iter().map(|(key, value)| format!("{key}={value}")));
    if let Some(host_ca) = host_ca {
        let inside = format!("{RUN_DIR_IN_IMAGE}/ca-certificates.crt");
        hooks.push(Hook {
            script: format!(
                "mkdir -p \"$1\"{dir} && cp {host_ca} \"$1\"{inside}",
                dir = shell_quote(RUN_DIR_IN_IMAGE),
                host_ca = shell_quote(host_ca),
                inside = shell_quote(&inside),
            ),
            label: "run: the host's CA bundle for the commands".to_owned(),
        });
        env.push(format!("SSL_CERT_FILE={inside}"));
        env.push(format!("NODE_EXTRA_CA_CERTS={inside}"));
    }
    let env: Vec<String> = env.iter().map(|pair| shell_quote(pair)).collect();
    let env = env.join(" ");
    let total = spec.run.len();
    for (index, command) in spec.run.iter().enumerate() {
        let first_line = command.trim().lines().next().unwrap_or_default();
        let shown: String = first_line.chars().take(100).collect();
        let more = if shown.len() < command.trim().len() { " …" } else { "" };
        hooks.push(Hook {
            script: format!("env -i {env} chroot \"$1\" /bin/sh -ec {}", shell_quote(command)),
            label: format!("run {}/{total}: {shown}{more}", index + 1),
        });
    }
    if host_ca.is_some() {
        hooks.push(Hook {
            script: format!("rm -rf \"$1\"{}", shell_quote(RUN_DIR_IN_IMAGE)),
            label: "run: removing the host's CA bundle".to_owned(),
        });
    }
    hooks
}

/// `text` as one word for `sh`: single quotes, each `'` written as `'\''`.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;
    use std::process::Command;

    use super::*;

    fn spec_with_run(run: &[&str]) -> Spec {
        let mut spec = Spec::parse("name = \"demo\"\nsuite = \"bookworm\"\n[env]\nA = \"x y\"\n")
            .expect("valid spec");
        spec.run = run.iter().map(|command| (*command).to_owned()).collect();
        spec.validate().expect("valid run");
        spec
    }

    /// Runs a hook's script as mmdebstrap does (`sh -c SCRIPT exec ROOT`).
    fn run_hook(hook: &Hook, root: &Path) -> std::process::Output {
        Command::new("sh").args(["-c", &hook.script, "exec"]).arg(root).output().expect("run sh")
    }

    #[test]
    fn shell_quote_survives_sh() {
        for text in ["plain", "it's", "a\nb", "$HOME `id` \\ \"q\" '' ; exit 1", ""] {
            let output = Command::new("sh")
                .args(["-c", &format!("printf %s {}", shell_quote(text))])
                .output()
                .expect("run sh");
            assert!(output.status.success(), "{text:?}");
            assert_eq!(String::from_utf8_lossy(&output.stdout), text);
        }
    }

    #[test]
    fn run_commands_become_chroot_hooks_in_order_with_a_clean_environment() {
        assert!(run_hooks(&spec_with_run(&[]), Some("/ca.crt")).is_empty(), "no run, no hooks");

        let spec = spec_with_run(&["echo 'one'", "npm install --prefix /opt/x a@1\necho done"]);
        let hooks = run_hooks(&spec, None);
        assert_eq!(hooks.len(), 2);
        assert_eq!(hooks[0].label, "run 1/2: echo 'one'");
        assert_eq!(hooks[1].label, "run 2/2: npm install --prefix /opt/x a@1 …");
        for (hook, command) in hooks.iter().zip(&spec.run) {
            assert!(hook.script.starts_with("env -i 'PATH=/usr/local/sbin:"), "{}", hook.script);
            assert!(hook.script.contains(" 'HOME=/root' 'LANG=C.UTF-8' "), "{}", hook.script);
            assert!(hook.script.contains(" 'A=x y' "), "the spec's env: {}", hook.script);
            assert!(!hook.script.contains("SSL_CERT_FILE"), "no host CA: {}", hook.script);
            let tail = format!(" chroot \"$1\" /bin/sh -ec {}", shell_quote(command));
            assert!(hook.script.ends_with(&tail), "{}", hook.script);
        }

        let with_ca = run_hooks(&spec, Some("/etc/ssl/certs/ca-certificates.crt"));
        let labels: Vec<&str> = with_ca.iter().map(|hook| hook.label.as_str()).collect();
        assert_eq!(labels.len(), 4, "{labels:?}");
        assert!(labels[0].contains("CA bundle") && labels[3].contains("CA bundle"), "{labels:?}");
        let inside = "/tmp/flint-build/ca-certificates.crt";
        for hook in &with_ca[1..3] {
            assert!(hook.script.contains(&format!(" 'SSL_CERT_FILE={inside}' ")));
            assert!(hook.script.contains(&format!(" 'NODE_EXTRA_CA_CERTS={inside}' ")));
        }
    }

    #[test]
    fn the_host_ca_bundle_is_in_the_image_only_while_commands_run() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = dir.path().join("host's ca.crt");
        fs::write(&ca, "-----BEGIN CERTIFICATE-----\n").expect("write");
        let root = dir.path().join("root $1");
        fs::create_dir_all(root.join("tmp")).expect("mkdir");
        let hooks = run_hooks(&spec_with_run(&["true"]), ca.to_str());
        let (copy, cleanup) = (&hooks[0], &hooks[2]);
        let output = run_hook(copy, &root);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let copied = fs::read_to_string(root.join("tmp/flint-build/ca-certificates.crt"))
            .expect("the bundle is in the image");
        assert_eq!(copied, "-----BEGIN CERTIFICATE-----\n");
        let output = run_hook(cleanup, &root);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        assert!(!root.join("tmp/flint-build").exists());
        assert!(root.join("tmp").is_dir());
    }
}
