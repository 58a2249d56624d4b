//! What a guest can write on the host: only its sandbox's directory, a capped tmpfs mounted
//! `nosuid,nodev,noexec`, of which it sees `run/` at `/run/flint`; and a socket it puts in the
//! agent's place is never connected to, not even by a server that restarts.

use std::path::Path;

use crate::common::*;

/// The cap of a sandbox's host directory (`sandbox::SANDBOX_DIR_BYTES`).
const SANDBOX_DIR_BYTES: u64 = 8 << 20;

/// Bytes in the files under `dir` (not following links).
fn bytes_under(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let meta = entry.path().symlink_metadata().expect("metadata");
        total += if meta.is_dir() { bytes_under(&entry.path()) } else { meta.len() };
    }
    total
}

async fn a_guest_cannot_fill_the_hosts_disk_nor_plant_devices(driver: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start_with(dir.path(), &["--driver", driver]);
    let bearer = server.bearer().await;
    let id = server.running_session(&bearer, r#"{"image":"test","network":false}"#).await;
    let host = dir.path().join("sessions").join(&id).join("sandbox");

    let (code, _, err) =
        server.sh(&bearer, &id, "dd if=/dev/zero of=/run/flint/fill bs=1M count=64").await;
    assert_ne!(code, 0, "64 MiB fit in the host directory");
    assert!(err.contains("No space left on device"), "{err}");
    let used = bytes_under(&host);
    assert!(used <= SANDBOX_DIR_BYTES, "{used} bytes on the host");

    for path in ["/run/flint/null", "/workspace/null"] {
        let (code, _, err) = server.sh(&bearer, &id, &format!("mknod {path} c 1 3")).await;
        assert_ne!(code, 0, "mknod {path} worked");
        assert!(err.contains("Operation not permitted"), "{err}");
    }
    // A setuid file can be written, but the host's mount makes it inert there: no setuid,
    // no devices, no execution.
    let flags = nix::sys::statvfs::statvfs(&host).expect("statvfs").flags();
    use nix::sys::statvfs::FsFlags;
    for flag in [FsFlags::ST_NOSUID, FsFlags::ST_NODEV, FsFlags::ST_NOEXEC] {
        assert!(flags.contains(flag), "{flag:?} missing on the host: {flags:?}");
    }

    // The session lives on, and its space comes back.
    let (code, out, err) = server.sh(&bearer, &id, "rm /run/flint/fill && echo alive").await;
    assert_eq!((code, out.as_str()), (0, "alive\n"), "{err}");
    let auth = [("authorization", bearer.as_str())];
    let deleted = server.request("DELETE", &format!("/api/sessions/{id}"), &auth, "").await;
    assert!(deleted.status.is_success(), "{}", deleted.body);
    assert!(!host.exists(), "the sandbox's directory outlived it");
}

#[tokio::test]
async fn on_gvisor_a_guest_cannot_fill_the_hosts_disk_nor_plant_devices() {
    a_guest_cannot_fill_the_hosts_disk_nor_plant_devices("gvisor").await;
}

#[tokio::test]
async fn on_process_a_guest_cannot_fill_the_hosts_disk_nor_plant_devices() {
    a_guest_cannot_fill_the_hosts_disk_nor_plant_devices("process").await;
}

/// Under `process` (where the guest is the host's root), a guest replaces the agent's
/// socket with a link to a host socket, or with a socket of its own; after a restart the
/// server connects to neither and fails both sessions with the reason.
#[tokio::test]
async fn a_replaced_agent_socket_is_refused_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = TestServer::start(dir.path());
    let bearer = server.bearer().await;
    let body = r#"{"image":"test","network":false}"#;
    let linked = server.running_session(&bearer, body).await;
    let impostor = server.running_session(&bearer, body).await;

    let bait_path = dir.path().join("bait.sock");
    let bait = std::os::unix::net::UnixListener::bind(&bait_path).expect("bait");
    bait.set_nonblocking(true).expect("nonblocking");
    // The replacement comes a moment later: this command's answer still uses the link.
    let link = format!(
        "setsid -f sh -c 'sleep 0.5; mv /run/flint/agent.sock /run/flint/was.sock; \
         ln -s {} /run/flint/agent.sock' >/dev/null 2>&1",
        bait_path.display()
    );
    let (code, _, err) = server.sh(&bearer, &linked, &link).await;
    assert_eq!(code, 0, "{err}");
    let fake = "setsid -f python3 -c 'import os, socket, time\n\
                time.sleep(0.5)\n\
                os.rename(\"/run/flint/agent.sock\", \"/run/flint/was.sock\")\n\
                s = socket.socket(socket.AF_UNIX); s.bind(\"/run/flint/agent.sock\"); s.listen()\n\
                while True: s.accept()' >/dev/null 2>&1";
    let (code, _, err) = server.sh(&bearer, &impostor, fake).await;
    assert_eq!(code, 0, "{err}");
    // Both replaced: a link in one, and in the other a socket bound where the agent's was.
    let run = |id: &str| dir.path().join("sessions").join(id).join("sandbox/run/agent.sock");
    let bound = |id: &str| {
        use std::os::unix::fs::FileTypeExt as _;
        let moved = dir.path().join("sessions").join(id).join("sandbox/run/was.sock");
        moved.exists() && run(id).symlink_metadata().is_ok_and(|m| m.file_type().is_socket())
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !(run(&linked).is_symlink() && bound(&impostor)) {
        assert!(std::time::Instant::now() < deadline, "the sockets were not replaced");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    server.kill();
    let server = TestServer::start(dir.path());
    for (id, why) in [(&linked, "is not a socket"), (&impostor, "was replaced")] {
        let auth = [("authorization", bearer.as_str())];
        let record = server.get(&format!("/api/sessions/{id}"), &auth).await.json();
        assert_eq!(record["state"], "failed", "{record}");
        let reason = record["reason"].as_str().unwrap_or_default();
        assert!(reason.contains(why) && reason.contains("refusing to connect"), "{reason}");
    }
    match bait.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the server connected to the link's target: {other:?}"),
    }
}

/// What the server keeps on the host is root's alone: the data directory, `sessions/` and
/// each session's directory 0700; the database, volumes and logs 0600.
#[tokio::test]
async fn the_hosts_files_of_flint_are_roots_alone() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = TestServer::start(&data);
    let bearer = server.bearer().await;
    let id = server.running_session(&bearer, r#"{"image":"test","network":false}"#).await;
    let session = data.join("sessions").join(&id);
    let mode = |path: &Path| {
        path.metadata().unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode()
            & 0o777
    };
    for path in [data.clone(), data.join("sessions"), session.clone()] {
        assert_eq!(mode(&path), 0o700, "{}", path.display());
    }
    for path in
        [data.join("flint.db"), session.join("volume.img"), session.join("sandbox/sandbox.log")]
    {
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
}
