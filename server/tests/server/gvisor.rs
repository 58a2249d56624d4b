//! The `gvisor` driver on a real server: sessions really run under gVisor's kernel, see
//! only their own descriptors, write to their own root layer, and run Chromium.

use crate::common::*;
use crate::support;

/// `path` inside a session, as bytes (through `od`: the exec API returns text).
async fn read_bytes(server: &TestServer, bearer: &str, id: &str, path: &str) -> Vec<u8> {
    let (code, hex, err) =
        server.sh(bearer, id, &format!("od -An -v -tx1 {path} | tr -d ' \\n'")).await;
    assert_eq!(code, 0, "{err}");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

#[tokio::test]
async fn a_gvisor_session_runs_on_gvisors_kernel_with_only_its_own_descriptors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start_with(dir.path(), &["--driver", "gvisor"]);
    let bearer = server.bearer().await;
    let session = server.create_session(&bearer, r#"{"image":"test","network":false}"#).await;
    assert_eq!((&session["driver"], &session["isolation"]), (&"gvisor".into(), &"strong".into()));
    let id = session["id"].as_str().expect("id");

    // gVisor's kernel answers, not the host's.
    let (_, out, _) = server.sh(&bearer, id, "dmesg | head -n 1; uname -r").await;
    assert!(out.contains("Starting gVisor"), "{out}");
    let host_release = std::fs::read_to_string("/proc/sys/kernel/osrelease").expect("release");
    assert!(!out.contains(host_release.trim()), "the host's kernel release shows: {out}");

    // A command's descriptors: its stdin, stdout and stderr, and the directory it reads.
    let script = "python3 -c \"import os; print('\\n'.join(f + ' ' + os.readlink('/proc/self/fd/' \
                  + f) for f in sorted(os.listdir('/proc/self/fd')) if os.path.exists('/proc/self/fd/' + f)))\"";
    let (code, out, err) = server.sh(&bearer, id, script).await;
    assert_eq!(code, 0, "{err}");
    let fds: Vec<(&str, &str)> = out.lines().filter_map(|l| l.split_once(' ')).collect();
    let numbers: Vec<&str> = fds.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, ["0", "1", "2"], "{out}");
    assert_eq!(fds[0].1, "/dev/null", "{out}");
    assert!(fds[1].1.starts_with("pipe:") && fds[2].1.starts_with("pipe:"), "{out}");
    // Nothing the agent holds leaks into commands (its sockets, its secret).
    let (_, out, _) = server.sh(&bearer, id, "ls -l /proc/self/fd; ls /run/flint").await;
    assert!(!out.contains("socket:") && !out.contains("host:"), "{out}");
    assert!(!out.contains("secret"), "the agent's secret file is gone: {out}");

    // coreutils work (`ls -l` passes AT_NO_AUTOMOUNT, which bookworm's runsc refuses without
    // Flint's shim), and writes outside /workspace land in the session's own layer.
    let (code, out, err) = server
        .sh(
            &bearer,
            id,
            "ls -l /etc/passwd && echo mine > /etc/flint-written && cat /etc/flint-written",
        )
        .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("-rw-r--r-- 1 root root") && out.ends_with("mine\n"), "{out}");
    assert!(!support::test_rootfs().join("etc/flint-written").exists(), "the image is untouched");
}

#[tokio::test]
async fn chromium_runs_headless_inside_gvisor_and_writes_a_screenshot() {
    // The default image has Chromium (the shared browser's).
    support::build_image("default");
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start_with(dir.path(), &["--driver", "gvisor"]);
    let bearer = server.bearer().await;
    let body = r#"{"image":"default","network":false,"memory_mb":2048,"cpus":2}"#;
    let id = server.running_session(&bearer, body).await;
    let page = "<html><body style='margin:0;background:#ff0000'><h1>Flint</h1></body></html>";
    let (code, _, err) =
        server.sh(&bearer, &id, &format!("printf '%s' \"{page}\" > /workspace/page.html")).await;
    assert_eq!(code, 0, "{err}");
    // Flags from MACHINE.md ("Chromium"); slow under ptrace: the exec allows a minute.
    let chromium = "chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
                    --no-first-run --disable-background-networking --disable-component-update \
                    --disable-sync --user-data-dir=/tmp/chromium --window-size=640,480 \
                    --screenshot=/workspace/shot.png file:///workspace/page.html 2>&1 | tail -n 3; \
                    test -s /workspace/shot.png";
    let (code, out, _) = server.sh(&bearer, &id, chromium).await;
    assert_eq!(code, 0, "no screenshot: {out}");
    let png = read_bytes(&server, &bearer, &id, "/workspace/shot.png").await;
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut pixels).expect("its pixels");
    assert_eq!((frame.width, frame.height), (640, 480));
    // The page rendered: a pixel away from the heading is the page's red.
    let channels = frame.color_type.samples();
    let at = (400 * frame.width as usize + 600) * channels;
    assert_eq!(&pixels[at..at + 3], &[255, 0, 0], "{:?}", frame.color_type);
}
