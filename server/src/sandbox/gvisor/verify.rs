//! The gVisor sandbox checked after launch: every runsc process's flags, the bundle's
//! `config.json` as read back, and the sentry's network namespace. The sandbox is stopped
//! unless they are as written.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, ensure};
use serde_json::Value;

use super::{bundle, preload, shim_path};
use crate::sandbox::{Prepared, Spec};

/// A runsc command line's global flags (`--name=value` or `--name value`, before the
/// subcommand), by name.
pub fn parse_flags(argv: &[String]) -> HashMap<String, String> {
    let mut flags = HashMap::new();
    let mut args = argv.iter().skip(1).peekable();
    while let Some(arg) = args.next() {
        let Some(flag) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            break; // the subcommand
        };
        match flag.split_once('=') {
            Some((name, value)) => flags.insert(name.to_owned(), value.to_owned()),
            None => {
                // A boolean, or a value in the next argument.
                let value = match args.peek() {
                    Some(next) if !next.starts_with('-') && !is_subcommand(next) => {
                        args.next().cloned().unwrap_or_default()
                    }
                    _ => "true".to_owned(),
                };
                flags.insert(flag.to_owned(), value)
            }
        };
    }
    flags
}

fn is_subcommand(arg: &str) -> bool {
    matches!(arg, "boot" | "gofer" | "run" | "create" | "start" | "exec" | "events" | "wait")
}

/// What is wrong with a runsc process's flags, if anything.
pub fn check_flags(flags: &HashMap<String, String>) -> Result<(), String> {
    let truthy = |name: &str| flags.get(name).is_some_and(|v| v != "false" && v != "0");
    // runsc hands its children only the flags that differ from the defaults: no
    // `--network` is the default, `sandbox`.
    match flags.get("network").map(String::as_str) {
        None | Some("sandbox" | "none") => {}
        Some(other) => return Err(format!("network is {other}, not sandbox or none")),
    }
    match flags.get("host-uds").map(String::as_str) {
        None | Some("none" | "create") => {}
        Some(other) => return Err(format!("host-uds={other} reaches host sockets")),
    }
    match flags.get("host-fifo").map(String::as_str) {
        None | Some("none") => {}
        Some(other) => return Err(format!("host-fifo={other} reaches host FIFOs")),
    }
    for name in ["net-raw", "profile", "allow-flag-override", "fsgofer-host-uds"] {
        if truthy(name) {
            return Err(format!("{name} is on"));
        }
    }
    if let Some(name) =
        flags.keys().find(|n| n.starts_with("profile-") || n.starts_with("TESTONLY"))
    {
        return Err(format!("{name} is set"));
    }
    Ok(())
}

/// What is wrong with the bundle's `config.json` as read back, if anything.
pub fn check_config(config: &Value, spec_root: &Path, allowed: &[&Path]) -> Result<(), String> {
    let root = config["root"]["path"].as_str().unwrap_or_default();
    if Path::new(root) == spec_root {
        return Err("the root is the shared image directory".to_owned());
    }
    if let Some(annotations) = config["annotations"].as_object()
        && let Some(key) = annotations.keys().find(|k| k.starts_with("dev.gvisor."))
    {
        return Err(format!("annotation {key} overrides runsc"));
    }
    for mount in config["mounts"].as_array().into_iter().flatten() {
        if mount["type"] != "bind" {
            continue;
        }
        let source = mount["source"].as_str().unwrap_or_default();
        if !allowed.iter().any(|a| Path::new(source) == *a) {
            return Err(format!("an unexpected host directory is mounted: {source}"));
        }
    }
    Ok(())
}

fn cmdline(pid: i32) -> Option<Vec<String>> {
    let bytes = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        bytes
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
    )
}

/// Whether `argv` is a runsc process's command line.
fn is_runsc(argv: &[String]) -> bool {
    argv.first().is_some_and(|a| a.contains("runsc"))
}

/// Whether `argv` is a runsc sandbox process's (gVisor's kernel).
fn is_sentry_argv(argv: &[String]) -> bool {
    is_runsc(argv) && argv.iter().any(|a| a == "boot")
}

/// Whether `pid` is a runsc sandbox process (gVisor's kernel).
pub fn is_sentry(pid: i32) -> bool {
    cmdline(pid).is_some_and(|argv| is_sentry_argv(&argv))
}

fn netns_inode(path: &Path) -> anyhow::Result<u64> {
    use std::os::unix::fs::MetadataExt as _;
    Ok(std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?.ino())
}

/// Checks the running sandbox: every runsc process's flags, the bundle as read back, and
/// the sentry's network namespace (the session's, or a fresh one; never the host's).
///
/// The sentry is found among the processes of the sandbox's own cgroup, which its launcher
/// joined before it ran runsc: reading `/proc` costs nothing where asking `runsc state`
/// started another runsc (~25 ms of every cold start).
pub fn verify(root: &Path, spec: &Spec, prepared: &Prepared) -> anyhow::Result<()> {
    let mut sentries = Vec::new();
    for process in prepared.cgroup.pids() {
        let Some(argv) = cmdline(process) else { continue };
        if !is_runsc(&argv) {
            continue;
        }
        let flags = parse_flags(&argv);
        check_flags(&flags)
            .map_err(|e| anyhow::anyhow!("runsc pid {process} ({}): {e}", argv.join(" ")))?;
        if is_sentry_argv(&argv) {
            sentries.push(process);
        }
    }
    let pid = match sentries[..] {
        [pid] => pid,
        [] => anyhow::bail!("no sentry (runsc boot) in the sandbox's cgroup"),
        _ => anyhow::bail!("{} sentries in the sandbox's cgroup: {sentries:?}", sentries.len()),
    };
    let text =
        std::fs::read(bundle(prepared).join("config.json")).context("reading config.json")?;
    let config: Value = serde_json::from_slice(&text).context("parsing config.json")?;
    let spec_root = config["root"]["path"].as_str().unwrap_or_default();
    ensure!(Path::new(spec_root) == prepared.merged, "the root is not the sandbox's overlay");
    let workspace = prepared.mountpoint.join("workspace");
    let agent = config["mounts"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["destination"] == "/opt/flint/guest-agent"))
        .and_then(|m| m["source"].as_str())
        .map(PathBuf::from)
        .unwrap_or_default();
    let (shim, preload) = (shim_path(root), preload(prepared));
    let allowed =
        [prepared.run.as_path(), &workspace, &agent, &prepared.resolv_conf, &shim, &preload];
    check_config(&config, &spec.rootfs, &allowed).map_err(|e| anyhow::anyhow!(e))?;
    let sentry = netns_inode(&PathBuf::from(format!("/proc/{pid}/ns/net")))?;
    let host = netns_inode(Path::new("/proc/self/ns/net"))?;
    ensure!(sentry != host, "the sandbox runs in the host's network namespace");
    let wanted = config["linux"]["namespaces"]
        .as_array()
        .and_then(|n| n.iter().find(|n| n["type"] == "network"))
        .and_then(|n| n["path"].as_str())
        .map(PathBuf::from);
    if let Some(path) = wanted {
        ensure!(
            netns_inode(&path)? == sentry,
            "the sandbox is not in its network namespace {}",
            path.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn argv(line: &str) -> Vec<String> {
        line.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn the_flags_we_launch_with_pass_the_check() {
        let line = "runsc-sandbox --root=/d --platform=systrap --network=sandbox --host-uds=create \
                    --host-fifo=none --overlay2=none --ignore-cgroups --net-raw=false boot --bundle /b x";
        let flags = parse_flags(&argv(line));
        assert_eq!(flags["network"], "sandbox");
        assert_eq!(flags["ignore-cgroups"], "true");
        assert!(!flags.contains_key("bundle"), "flags stop at the subcommand");
        assert_eq!(check_flags(&flags), Ok(()));
        // runsc's children get only the flags that differ from the defaults.
        let child =
            "runsc-gofer --root=/d --host-uds=create --ignore-cgroups=true gofer --bundle /b";
        assert_eq!(check_flags(&parse_flags(&argv(child))), Ok(()));
    }

    #[test]
    fn dangerous_flags_are_refused() {
        for (line, why) in [
            ("runsc --network=host boot", "network"),
            ("runsc --network=sandbox --host-uds=all boot", "host-uds"),
            ("runsc --network=sandbox --host-uds open boot", "host-uds"),
            ("runsc --network=sandbox --host-fifo=open boot", "host-fifo"),
            ("runsc --network=sandbox --net-raw boot", "net-raw"),
            ("runsc --network=sandbox --profile boot", "profile"),
            ("runsc --network=sandbox --profile-cpu=/x boot", "profile-cpu"),
            ("runsc --network=sandbox --allow-flag-override=true boot", "allow-flag-override"),
            ("runsc --network=sandbox -TESTONLY-unsafe-nonroot boot", "TESTONLY"),
        ] {
            let error = check_flags(&parse_flags(&argv(line))).expect_err(line);
            assert!(error.contains(why), "{line}: {error}");
        }
    }

    #[test]
    fn the_config_check_refuses_the_image_root_foreign_mounts_and_overrides() {
        let run = Path::new("/s/run");
        let ok = json!({ "root": { "path": "/s/merged" },
                         "mounts": [ { "type": "bind", "source": "/s/run" },
                                     { "type": "tmpfs", "source": "tmpfs" } ] });
        assert_eq!(check_config(&ok, Path::new("/img"), &[run]), Ok(()));
        let image_root = json!({ "root": { "path": "/img" } });
        assert!(check_config(&image_root, Path::new("/img"), &[run]).is_err());
        let foreign = json!({ "root": { "path": "/s/merged" },
                              "mounts": [ { "type": "bind", "source": "/var/run" } ] });
        assert!(
            check_config(&foreign, Path::new("/img"), &[run])
                .expect_err("foreign")
                .contains("/var/run")
        );
        let annotated = json!({ "root": { "path": "/s/merged" },
                                "annotations": { "dev.gvisor.flag.network": "host" } });
        assert!(check_config(&annotated, Path::new("/img"), &[run]).is_err());
    }
}
