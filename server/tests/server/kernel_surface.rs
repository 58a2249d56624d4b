//! The `process` driver's kernel surface (weak isolation: the host's kernel): the calls its
//! seccomp filters refuse fail inside with `EPERM` (or `ENOSYS`, so programs fall back), and
//! what programs need still works.

use nix::libc;

use crate::common::*;

/// `(name, number, arguments)`: each refused with `errno`.
fn refused() -> Vec<(&'static str, libc::c_long, &'static str, i32)> {
    vec![
        // KEYCTL_GET_KEYRING_ID of the thread keyring: works without the filter.
        ("keyctl", libc::SYS_keyctl, "0, -1, 0", libc::EPERM),
        ("add_key", libc::SYS_add_key, "b'user', b'k', b'v', 1, -1", libc::EPERM),
        ("request_key", libc::SYS_request_key, "b'user', b'k', None, 0", libc::EPERM),
        ("bpf", libc::SYS_bpf, "0, None, 0", libc::EPERM),
        ("perf_event_open", libc::SYS_perf_event_open, "None, 0, -1, -1, 0", libc::EPERM),
        ("finit_module", libc::SYS_finit_module, "0, b'', 0", libc::EPERM),
        ("kexec_load", libc::SYS_kexec_load, "0, 0, None, 0", libc::EPERM),
        ("open_by_handle_at", libc::SYS_open_by_handle_at, "-1, None, 0", libc::EPERM),
        ("setns", libc::SYS_setns, "0, 0", libc::EPERM),
        ("userfaultfd", libc::SYS_userfaultfd, "0", libc::EPERM),
        // A new user namespace: works without the filter.
        ("unshare(CLONE_NEWUSER)", libc::SYS_unshare, "0x10000000", libc::EPERM),
        ("clone3", libc::SYS_clone3, "None, 0", libc::ENOSYS),
        ("io_uring_setup", libc::SYS_io_uring_setup, "1, None", libc::ENOSYS),
    ]
}

#[tokio::test]
async fn on_process_the_keyring_ebpf_modules_and_new_user_namespaces_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path());
    let bearer = server.bearer().await;
    let id = server.running_session(&bearer, r#"{"image":"test","network":false}"#).await;

    let mut script = String::from(
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n\
         def call(name, nr, *args):\n    \
         ctypes.set_errno(0)\n    r = libc.syscall(nr, *args)\n    \
         print(name, ctypes.get_errno() if r < 0 else 'allowed')\n",
    );
    for (name, nr, args, _) in refused() {
        script.push_str(&format!("call({name:?}, {nr}, {args})\n"));
    }
    let put = server
        .request(
            "PUT",
            &format!("/api/sessions/{id}/files/content?path=/workspace/probe.py"),
            &[("authorization", &bearer)],
            &script,
        )
        .await;
    assert!(put.status.is_success(), "{}", put.body);
    let (code, out, err) = server.sh(&bearer, &id, "python3 /workspace/probe.py").await;
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    for ((name, _, _, errno), line) in refused().into_iter().zip(&lines) {
        assert_eq!(*line, format!("{name} {errno}"), "{out}");
    }
    assert_eq!(lines.len(), refused().len(), "{out}");

    // The command-line forms a person would try.
    let (code, _, err) = server.sh(&bearer, &id, "unshare --user true").await;
    assert_ne!(code, 0, "a user namespace was made");
    assert!(err.contains("Operation not permitted"), "{err}");
    // What programs need still works: threads (clone, after clone3's ENOSYS), processes.
    let threads = "python3 -c 'import threading; t = threading.Thread(target=print, \
                   args=(\"from a thread\",)); t.start(); t.join()' && sh -c 'echo forked'";
    let (code, out, err) = server.sh(&bearer, &id, threads).await;
    assert_eq!((code, out.as_str()), (0, "from a thread\nforked\n"), "{err}");
}
