//! The `process` driver on real namespaces, overlays and cgroups, with the real agent.

#[path = "../support/mod.rs"]
#[allow(dead_code)]
mod support;

use std::path::{Path, PathBuf};

use proto::exec::{ExecDown, ExecRequest};
use server::sandbox::cgroup::Limits;
use server::sandbox::process::{self, Sandbox, Spec};

fn spec(session_dir: &Path, id: &str) -> Spec {
    Spec {
        id: id.to_owned(),
        rootfs: support::test_rootfs(),
        session_dir: session_dir.to_owned(),
        agent_bin: support::agent_bin(),
        cgroup: PathBuf::from(format!("flint-test/{}-{id}/{id}", std::process::id())),
        limits: Limits { memory_mb: 512, pids: 256, cpu_centis: 100 },
    }
}

fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit_once(')').map(|(_, rest)| rest.trim_start().to_owned()))
        .is_some_and(|rest| !rest.starts_with('Z') && !rest.starts_with('X'))
}

async fn sh(sandbox: &Sandbox, script: &str) -> (String, i32) {
    let client = sandbox.client().await.expect("client");
    let request = ExecRequest {
        argv: vec!["sh".into(), "-c".into(), script.into()],
        ..ExecRequest::default()
    };
    match client.exec_collect(request).await.expect("exec") {
        ExecDown::Finished { stdout, stderr, status, .. } => {
            let text =
                format!("{}{}", String::from_utf8_lossy(&stdout), String::from_utf8_lossy(&stderr));
            (text, status.code.unwrap_or(-1))
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn a_sandbox_is_isolated_writes_to_its_own_layer_and_stop_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = spec(dir.path(), "isolatedtest");
    let sandbox = process::start(&spec).await.expect("start");
    let client = sandbox.client().await.expect("client");
    assert!(client.info().await.expect("info").hostname.starts_with("flint-"));

    // The image's environment reaches commands.
    let (image, _) = sh(&sandbox, "echo $FLINT_IMAGE").await;
    assert_eq!(image, "test\n");
    // Its own pid namespace: few processes, and the host's are invisible.
    let (procs, _) = sh(&sandbox, "ls /proc | grep -c '^[0-9]'").await;
    assert!(procs.trim().parse::<u32>().expect("count") < 10, "{procs}");
    // Its own, empty network namespace.
    let (links, _) = sh(&sandbox, "cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '").await;
    assert_eq!(links.trim(), "lo");
    // Writes to / land in the sandbox's upper layer, never in the image.
    let (_, code) = sh(&sandbox, "echo scratch > /etc/flint-scratch && rm -f /bin/ls").await;
    assert_eq!(code, 0);
    assert!(!spec.rootfs.join("etc/flint-scratch").exists());
    assert!(spec.rootfs.join("bin/ls").exists() || spec.rootfs.join("usr/bin/ls").exists());
    // /workspace is the host directory.
    let (_, code) = sh(&sandbox, "echo kept > /workspace/note").await;
    assert_eq!(code, 0);
    assert_eq!(std::fs::read_to_string(dir.path().join("workspace/note")).expect("note"), "kept\n");
    // Root inside has no capability to administer the host.
    let (mount, code) = sh(&sandbox, "mount -t tmpfs none /mnt 2>&1").await;
    assert_ne!(code, 0, "mount must fail: {mount}");

    let pids = sandbox.pids();
    assert!(!pids.is_empty());
    process::stop(&sandbox).await.expect("stop");
    for pid in pids {
        // A killed process may stay a zombie until the host's init reaps it: that is dead.
        assert!(!running(pid), "process {pid} survived");
    }
    let cgroup_dirs = ["memory", "pids", "cpu"]
        .map(|c| PathBuf::from(format!("/sys/fs/cgroup/{c}")).join(&spec.cgroup));
    assert!(cgroup_dirs.iter().all(|d| !d.exists()), "cgroups removed");
    let parents = cgroup_dirs.map(|d| d.parent().expect("parent").to_owned());
    assert!(parents.iter().all(|d| !d.exists()), "the emptied parent cgroups are removed too");
    let mounts = std::fs::read_to_string("/proc/mounts").expect("mounts");
    assert!(!mounts.contains(&dir.path().to_string_lossy().into_owned()), "no mount left");
    assert!(!dir.path().join("sandbox").exists(), "sandbox directory removed");
    assert!(dir.path().join("workspace/note").exists(), "workspace kept");
}

#[tokio::test]
async fn a_sandbox_outlives_its_handle_and_is_adopted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = spec(dir.path(), "adopttest");
    let sandbox = process::start(&spec).await.expect("start");
    let (_, code) = sh(&sandbox, "echo before > /tmp/marker").await;
    assert_eq!(code, 0);
    drop(sandbox);
    let adopted =
        Sandbox::adopt("adopttest", dir.path(), &spec.cgroup).expect("adopt").expect("alive");
    let (marker, _) = sh(&adopted, "cat /tmp/marker").await;
    assert_eq!(marker, "before\n");
    process::stop(&adopted).await.expect("stop");
    assert!(Sandbox::adopt("adopttest", dir.path(), &spec.cgroup).expect("adopt").is_none());
}
