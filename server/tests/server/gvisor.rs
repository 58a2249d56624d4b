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

/// The sandbox's host memory that cannot be reclaimed (processes' and gVisor's memory file:
/// `rss` + `shmem` of its cgroup), found by the session id in the memory hierarchy.
fn sandbox_memory(session: &str) -> u64 {
    fn find(dir: &std::path::Path, name: &str, depth: u32) -> Option<std::path::PathBuf> {
        for entry in std::fs::read_dir(dir).ok()?.flatten() {
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            if entry.file_name() == name {
                return Some(path);
            }
            if depth > 0
                && let Some(found) = find(&path, name, depth - 1)
            {
                return Some(found);
            }
        }
        None
    }
    let (dir, keys) = match find(std::path::Path::new("/sys/fs/cgroup/memory"), session, 4) {
        Some(dir) => (dir, ["total_rss", "total_shmem"]),
        None => (
            find(std::path::Path::new("/sys/fs/cgroup"), session, 4).expect("the sandbox's cgroup"),
            ["anon", "shmem"],
        ),
    };
    let stat = std::fs::read_to_string(dir.join("memory.stat")).expect("memory.stat");
    stat.lines()
        .filter_map(|line| line.split_once(' '))
        .filter(|(key, _)| keys.contains(key))
        .map(|(_, value)| value.trim().parse::<u64>().expect("a byte count"))
        .sum()
}

/// Reads a terminal websocket until `needle` shows in the output, keeping only a tail (the
/// output is 100 MB); the terminal's output offset after the last byte read. A viewer that
/// falls behind is resynced (a gap is read back from the scrollback, or announced as missed),
/// so offsets, not bytes received, tell how much the shell wrote.
async fn drain_until(ws: &mut Ws, needle: &str, limit: std::time::Duration) -> u64 {
    use futures_util::StreamExt as _;
    use tokio_tungstenite::tungstenite::Message;
    let mut tail: Vec<u8> = Vec::new();
    let mut end = 0;
    let read = async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Binary(data))) => {
                    let (offset, output) = data.split_at(proto::api::OUTPUT_OFFSET_BYTES);
                    let offset = u64::from_be_bytes(offset.try_into().expect("an 8-byte offset"));
                    end = end.max(offset + output.len() as u64);
                    tail.extend_from_slice(output);
                    if tail.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                        return;
                    }
                    let keep = tail.len().saturating_sub(needle.len());
                    tail.drain(..keep);
                }
                Some(Ok(_)) => {}
                other => panic!("the terminal websocket ended: {other:?}"),
            }
        }
    };
    assert!(tokio::time::timeout(limit, read).await.is_ok(), "no {needle:?} within {limit:?}");
    end
}

#[tokio::test]
async fn a_gigabyte_through_a_terminal_leaves_the_sandboxs_memory_bounded() {
    // bookworm's runsc kept 150-340 MiB of every ~133 MB written to a terminal, until the
    // fifth such output killed a 1024 MiB session.
    const ROUNDS: u32 = 10;
    const ROUND_BYTES: u64 = 100_000_000;
    const BOUND: u64 = 64 << 20;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start_with(dir.path(), &["--driver", "gvisor"]);
    let bearer = server.bearer().await;
    let body = r#"{"image":"test","network":false,"memory_mb":1024,"cpus":1}"#;
    let id = server.running_session(&bearer, body).await;
    let json = [("authorization", bearer.as_str()), ("content-type", "application/json")];
    let terminal =
        server.request("POST", &format!("/api/sessions/{id}/terminals"), &json, "{}").await;
    let terminal = terminal.json()["id"].as_str().expect("terminal id").to_owned();
    let origin = server.origin();
    let headers = [("authorization", bearer.as_str()), ("origin", origin.as_str())];
    let path = format!("/api/sessions/{id}/terminals/{terminal}/ws");
    let mut ws = server.ws(&path, &headers).await.expect("websocket");
    let mut end = drain_until(&mut ws, "\x1b]133;B", std::time::Duration::from_secs(30)).await;

    // A person watches every byte; the first round warms the sentry up.
    let mut baseline = 0;
    let mut highest = 0;
    for round in 1..=ROUNDS {
        let command = format!(
            "yes flint-flood-line-0123456789abcdef | head -c {ROUND_BYTES}; echo flo''od-{round}\r"
        );
        ws_type(&mut ws, &command).await;
        let limit = std::time::Duration::from_secs(180);
        let now = drain_until(&mut ws, &format!("flood-{round}"), limit).await;
        assert!(
            now - end >= ROUND_BYTES,
            "round {round}: the shell wrote only {} bytes",
            now - end
        );
        end = now;
        let memory = sandbox_memory(&id);
        eprintln!("round {round}: the sandbox holds {} MiB", memory >> 20);
        if round == 1 {
            baseline = memory;
        }
        highest = highest.max(memory);
    }
    assert!(
        highest <= baseline + BOUND,
        "{} MB of terminal output grew the sandbox from {} MiB to {} MiB",
        u64::from(ROUNDS) * ROUND_BYTES / 1_000_000,
        baseline >> 20,
        highest >> 20
    );
    let session = server.get(&format!("/api/sessions/{id}"), &[("authorization", &bearer)]).await;
    assert_eq!(session.json()["state"], "running", "{}", session.body);
}

/// The output a terminal websocket client received until `needle`, checked for order.
async fn deflated_output_until(ws: &mut support::client::DeflateWs, needle: &str) -> Vec<u8> {
    use futures_util::StreamExt as _;
    let mut output = Vec::new();
    let mut next = None;
    let read = async {
        while !output.windows(needle.len()).any(|w| w == needle.as_bytes()) {
            let frame = ws.next().await.expect("the websocket ended");
            match frame.opcode() {
                yawc::OpCode::Binary => {
                    let (offset, data) = frame.payload().split_at(proto::api::OUTPUT_OFFSET_BYTES);
                    let offset = u64::from_be_bytes(offset.try_into().expect("8 bytes"));
                    assert_eq!(next.unwrap_or(offset), offset, "output continues where it ended");
                    next = Some(offset + data.len() as u64);
                    output.extend_from_slice(data);
                }
                yawc::OpCode::Close => panic!("the websocket closed"),
                _ => {}
            }
        }
    };
    let limit = std::time::Duration::from_secs(60);
    assert!(tokio::time::timeout(limit, read).await.is_ok(), "no {needle:?} within {limit:?}");
    output
}

#[tokio::test]
async fn terminal_output_goes_compressed_to_a_browser_that_offers_deflate() {
    use futures_util::SinkExt as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start_with(dir.path(), &["--driver", "gvisor"]);
    let bearer = server.bearer().await;
    let id = server.running_session(&bearer, r#"{"image":"test","network":false}"#).await;
    let json = [("authorization", bearer.as_str()), ("content-type", "application/json")];
    let terminal =
        server.request("POST", &format!("/api/sessions/{id}/terminals"), &json, "{}").await;
    let terminal = terminal.json()["id"].as_str().expect("terminal id").to_owned();
    let origin = server.origin();
    let path = format!("/api/sessions/{id}/terminals/{terminal}/ws");

    // A client offering permessage-deflate, as browsers do, and one that does not.
    let headers = [("authorization", bearer.as_str()), ("origin", origin.as_str())];
    let address = server.addr.to_string();
    let (mut deflated, wire) = support::client::deflate_websocket(&address, &path, &headers)
        .await
        .expect("a websocket offering deflate");
    let mut plain = server.ws(&path, &headers).await.expect("a websocket without deflate");

    // Keystrokes go up through the compressing client; a build log's worth of text comes
    // back.
    let command = "seq -f 'line %g of the build log' 1 20000; echo log-''done\r";
    deflated.send(yawc::Frame::binary(command.as_bytes().to_vec())).await.expect("type");
    let compressed = deflated_output_until(&mut deflated, "log-done").await;
    // What was read after the handshake: the scrollback and the output, all of it below.
    let wire_bytes = wire.load(std::sync::atomic::Ordering::Relaxed);
    let uncompressed = ws_read_until(&mut plain, "log-done").await;

    // The same bytes reach both, in order and whole.
    let cut = |bytes: &[u8]| {
        let end = bytes.windows(8).position(|w| w == b"log-done").expect("log-done") + 8;
        bytes[..end].to_vec()
    };
    let (compressed, uncompressed) = (cut(&compressed), cut(uncompressed.as_bytes()));
    assert_eq!(compressed, uncompressed, "both clients see the same output");
    let text = String::from_utf8_lossy(&compressed);
    for n in [1, 9999, 20000] {
        assert!(text.contains(&format!("line {n} of the build log\r\n")), "line {n} is missing");
    }
    eprintln!(
        "{} bytes of output crossed the wire as {wire_bytes} bytes ({:.1}x)",
        compressed.len(),
        compressed.len() as f64 / wire_bytes.max(1) as f64
    );
    assert!(
        wire_bytes * 3 < compressed.len() as u64,
        "{} bytes of terminal text took {wire_bytes} bytes on the wire",
        compressed.len()
    );
}

#[tokio::test]
async fn a_cold_gvisor_session_comes_with_its_first_shell_whose_login_starts_no_programs() {
    let dir = tempfile::tempdir().expect("tempdir");
    // No warm pool: the sandbox starts with the create.
    let server = TestServer::start_with(dir.path(), &["--driver", "gvisor", "--pool-size", "0"]);
    let bearer = server.bearer().await;
    let session = server.create_session(&bearer, r#"{"image":"test","network":false}"#).await;
    let id = session["id"].as_str().expect("id");
    // The agent started the first shell before it answered: it is there when the create
    // returns, and gets to its prompt without anyone asking.
    let auth = [("authorization", bearer.as_str())];
    let path = format!("/api/sessions/{id}/terminals");
    let list = server.get(&path, &auth).await.json();
    let ids: Vec<&str> =
        list.as_array().into_iter().flatten().filter_map(|t| t["id"].as_str()).collect();
    assert_eq!(ids, ["1"], "{list}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while server.get(&path, &auth).await.json()[0]["shell"] != "prompt" {
        assert!(
            std::time::Instant::now() < deadline,
            "no prompt: {}",
            server.get(&path, &auth).await.body
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // A login shell runs none of the programs Debian's /etc/profile would (`id -u`,
    // `run-parts`), each ~30 ms under gVisor: functions of those names would say so.
    let script = "id() { echo RAN-id; }; run-parts() { echo RAN-run-parts; }; \
                  export -f id run-parts; bash -lic 'echo login-$((6*7)) \"$PATH\"' 2>&1";
    let (code, out, err) = server.sh(&bearer, id, script).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("login-42 /usr/local/sbin:"), "root's PATH: {out}");
    assert!(!out.contains("RAN-"), "the login shell ran a program: {out}");
}
