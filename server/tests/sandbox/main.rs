//! The `process` driver on real namespaces, overlays and cgroups, with the real agent.

#[path = "../support/mod.rs"]
#[allow(dead_code)]
mod support;

use std::path::{Path, PathBuf};

use proto::exec::{ExecDown, ExecRequest};
use server::sandbox::cgroup::Limits;
use server::sandbox::volume::Volume;
use server::sandbox::{self, Driver, Sandbox, Spec};

fn spec(session_dir: &Path, id: &str) -> Spec {
    Spec {
        id: id.to_owned(),
        driver: Driver::Process,
        rootfs: support::test_rootfs(),
        session_dir: session_dir.to_owned(),
        disk_mb: 256,
        agent_bin: support::agent_bin(),
        cgroup: PathBuf::from(format!("flint-test/{}-{id}/{id}", std::process::id())),
        limits: Limits { memory_mb: 512, pids: 256, cpu_centis: 100 },
        net: None,
        preview_url: String::new(),
        ca_bundle: None,
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
    let sandbox = sandbox::start(&spec).await.expect("start");
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
    // /workspace is the session's volume.
    let (_, code) = sh(&sandbox, "echo kept > /workspace/note").await;
    assert_eq!(code, 0);
    // The agent's secret is gone from the sandbox's view once the agent read it, and the
    // agent's memory and open files are out of reach of the sandbox's root (not dumpable,
    // no CAP_SYS_PTRACE): nothing inside can speak to the full agent socket as the server.
    let (secret, code) = sh(&sandbox, "cat /run/flint/secret 2>&1").await;
    assert_ne!(code, 0, "the secret is readable inside: {secret}");
    let probe = "for p in /proc/[0-9]*; do \
        if tr '\\0' ' ' < $p/cmdline | grep -q '^/opt/flint/guest-agent serve'; then \
          echo agent; cat $p/mem 2>&1; cat $p/environ 2>&1; fi; done";
    let (agent, _) = sh(&sandbox, probe).await;
    assert!(agent.starts_with("agent\n"), "the agent is visible inside: {agent:?}");
    assert_eq!(agent.matches("Permission denied").count(), 2, "{agent}");
    // The server keeps its copy outside the sandbox, for adopting it after a restart.
    assert!(spec.session_dir.join("sandbox/secret").exists());
    // Root inside has no capability to administer the host.
    let (mount, code) = sh(&sandbox, "mount -t tmpfs none /mnt 2>&1").await;
    assert_ne!(code, 0, "mount must fail: {mount}");

    let pids = sandbox.pids();
    assert!(!pids.is_empty());
    // The sandbox's own namespaces (its agent's), to look for after the stop.
    let agent_pid = pids.iter().copied().max().expect("a pid");
    let namespaces: Vec<String> = ["mnt", "pid", "net", "uts", "ipc"]
        .iter()
        .filter_map(|ns| std::fs::read_link(format!("/proc/{agent_pid}/ns/{ns}")).ok())
        .map(|link| link.to_string_lossy().into_owned())
        .collect();
    let host: Vec<String> = ["mnt", "pid", "net", "uts", "ipc"]
        .iter()
        .filter_map(|ns| std::fs::read_link(format!("/proc/self/ns/{ns}")).ok())
        .map(|link| link.to_string_lossy().into_owned())
        .collect();
    let own: Vec<&String> = namespaces.iter().filter(|ns| !host.contains(ns)).collect();
    assert_eq!(own.len(), 5, "five namespaces of its own: {namespaces:?}");
    // Held open through the check: a freed namespace's number is handed to the next one made
    // (another test's sandbox), and these handles keep it from being reused meanwhile. Not the
    // mount namespace: holding it would hold the volume's mount, which stop waits to see go.
    let _pinned: Vec<std::fs::File> = ["pid", "net", "uts", "ipc"]
        .iter()
        .filter_map(|ns| std::fs::File::open(format!("/proc/{agent_pid}/ns/{ns}")).ok())
        .collect();
    sandbox::stop(&sandbox).await.expect("stop");
    // No process on the host is in any of them any more (only the handles above keep them).
    let holders: Vec<String> = std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter(|p| p.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
        .filter(|p| {
            ["pid", "net", "uts", "ipc"].iter().any(|ns| {
                std::fs::read_link(p.path().join("ns").join(ns))
                    .is_ok_and(|link| own.contains(&&link.to_string_lossy().into_owned()))
            })
        })
        .filter(|p| p.file_name().to_str().and_then(|s| s.parse().ok()).is_some_and(running))
        .map(|p| p.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(holders.is_empty(), "processes still in the sandbox's namespaces: {holders:?}");
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
    let volume = Volume::of(dir.path());
    assert!(!volume.in_use(), "no loop device holds the volume");
    assert!(!dir.path().join("sandbox").exists(), "sandbox directory removed");
    // The workspace is kept, and only the workspace: the root layer is scrubbed.
    let tar = export(&volume).await;
    assert!(contains(&tar, b"./note") && contains(&tar, b"kept\n"), "workspace kept");
    assert!(!contains(&tar, b"flint-scratch"));
}

async fn export(volume: &Volume) -> Vec<u8> {
    use futures_util::StreamExt as _;
    let mut stream = Box::pin(volume.export_workspace().await.expect("export"));
    let mut tar = Vec::new();
    while let Some(chunk) = stream.next().await {
        tar.extend_from_slice(&chunk.expect("chunk"));
    }
    tar
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn the_disk_cap_holds_for_the_workspace_and_the_root_layer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = Spec { disk_mb: 64, ..spec(dir.path(), "disktest") };
    let sandbox = sandbox::start(&spec).await.expect("start");
    // 200 MiB into a 64 MiB volume, once in /workspace and once outside it.
    for target in ["/workspace/fill", "/root/fill"] {
        let (out, code) =
            sh(&sandbox, &format!("dd if=/dev/zero of={target} bs=1M count=200 2>&1")).await;
        assert_ne!(code, 0, "{target}: {out}");
        assert!(out.contains("No space left on device"), "{target}: {out}");
        let (_, code) = sh(&sandbox, &format!("rm {target}")).await;
        assert_eq!(code, 0);
    }
    // Freed space is usable again, and the host never held more than the cap.
    let (out, code) = sh(&sandbox, "dd if=/dev/zero of=/workspace/ok bs=1M count=16 2>&1").await;
    assert_eq!(code, 0, "{out}");
    use std::os::unix::fs::MetadataExt as _;
    let image = std::fs::metadata(Volume::of(dir.path()).image()).expect("image");
    assert!(image.len() == 64 << 20 && image.blocks() * 512 <= 64 << 20, "{image:?}");
    sandbox::stop(&sandbox).await.expect("stop");
}

#[tokio::test]
async fn a_sandbox_outlives_its_handle_and_is_adopted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = spec(dir.path(), "adopttest");
    let sandbox = sandbox::start(&spec).await.expect("start");
    let (_, code) = sh(&sandbox, "echo before > /tmp/marker").await;
    assert_eq!(code, 0);
    drop(sandbox);
    let adopted = Sandbox::adopt("adopttest", Driver::Process, dir.path(), &spec.cgroup)
        .expect("adopt")
        .expect("alive");
    let (marker, _) = sh(&adopted, "cat /tmp/marker").await;
    assert_eq!(marker, "before\n");
    sandbox::stop(&adopted).await.expect("stop");
    assert!(
        Sandbox::adopt("adopttest", Driver::Process, dir.path(), &spec.cgroup)
            .expect("adopt")
            .is_none()
    );
}
