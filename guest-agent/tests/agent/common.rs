//! The test harness: a real agent process per test, and helpers that wait on events with a
//! deadline instead of sleeping.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use guest_agent::client::{Client, FrameSender, FrameStream};
use guest_agent::listen::Listen;
use proto::terminal::{AttachDown, AttachQuery, AttachUp, CreateTerminal, ShellState, TerminalId};
use serde_bytes::ByteBuf;

/// Generous deadline for anything a test waits on: CI machines are slow and busy.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A running agent, killed on drop.
pub struct TestAgent {
    child: Child,
    pub dir: tempfile::TempDir,
    pub listen: Listen,
    /// The restricted in-sandbox socket (`--guest-listen`).
    pub guest_socket: PathBuf,
    pub secret: String,
    pub client: Client,
}

impl TestAgent {
    pub async fn start() -> TestAgent {
        TestAgent::start_with_env(&[]).await
    }

    /// An agent with these extra environment variables.
    pub async fn start_with_env(env: &[(&str, &str)]) -> TestAgent {
        TestAgent::start_with(env, &[]).await
    }

    /// An agent with these extra environment variables and `serve` flags.
    pub async fn start_with(env: &[(&str, &str)], flags: &[&str]) -> TestAgent {
        let dir = tempfile::tempdir().expect("tempdir");
        let secret = format!("test-secret-{}", std::process::id());
        let secret_file = dir.path().join("secret");
        std::fs::write(&secret_file, &secret).expect("write secret");
        let socket = dir.path().join("agent.sock");
        let guest_socket = dir.path().join("mcp.sock");
        let workdir = dir.path().join("work");
        std::fs::create_dir(&workdir).expect("workdir");
        // The agent's temporary files (the shared browser's profile) go with the test's
        // directory, even when the agent is killed.
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).expect("tmp");
        let child = Command::new(env!("CARGO_BIN_EXE_guest-agent"))
            .arg("serve")
            .arg("--listen")
            .arg(format!("unix:{}", socket.display()))
            .arg("--secret-file")
            .arg(&secret_file)
            .arg("--workdir")
            .arg(&workdir)
            .arg("--guest-listen")
            .arg(format!("unix:{}", guest_socket.display()))
            .args(flags)
            .env(
                "FLINT_AGENT_LOG",
                std::env::var("FLINT_TEST_AGENT_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .env("TMPDIR", &tmp)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .spawn()
            .expect("start guest-agent");
        let listen = Listen::Unix(socket);
        let client = connect_with_deadline(&listen, &secret).await;
        TestAgent { child, dir, listen, guest_socket, secret, client }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn workdir(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    /// A second, independent HTTP/2 connection.
    pub async fn connect(&self) -> Client {
        connect_with_deadline(&self.listen, &self.secret).await
    }
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        // A SIGKILLed agent leaves its children behind (the shared browser's Chromium above
        // all): list them while the agent still holds them, then kill them too.
        let children = descendants(self.child.id());
        let _ = self.child.kill();
        for pid in children {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.child.wait();
    }
}

/// Every process below `root`, from `/proc/*/stat`.
fn descendants(root: u32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    let parents: Vec<(i32, i32)> = entries
        .flatten()
        .filter_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
            let after = &stat[stat.rfind(')')? + 1..];
            let ppid: i32 = after.split_whitespace().nth(1)?.parse().ok()?;
            Some((pid, ppid))
        })
        .collect();
    let Ok(root) = i32::try_from(root) else { return Vec::new() };
    let mut found = vec![root];
    let mut next = 0;
    while next < found.len() {
        let parent = found[next];
        found.extend(parents.iter().filter(|(_, ppid)| *ppid == parent).map(|(pid, _)| *pid));
        next += 1;
    }
    found.remove(0);
    found
}

async fn connect_with_deadline(listen: &Listen, secret: &str) -> Client {
    let start = Instant::now();
    loop {
        if let Ok(client) = Client::connect(listen, secret).await
            && client.info().await.is_ok()
        {
            return client;
        }
        assert!(start.elapsed() < DEADLINE, "agent did not come up at {listen}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The shell integration script the images install (`/etc/profile.d/flint-shell.sh`).
pub const SHELL_INTEGRATION: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../images/shell/flint-shell.bash");

/// An interactive bash with the images' shell integration (OSC 133 marks), as sessions get.
pub fn integrated_shell() -> CreateTerminal {
    CreateTerminal {
        command: vec![
            "bash".into(),
            "--noprofile".into(),
            "--rcfile".into(),
            SHELL_INTEGRATION.into(),
            "-i".into(),
        ],
        env: [
            ("PS1".to_owned(), "flint$ ".to_owned()),
            ("HISTFILE".to_owned(), "/dev/null".to_owned()),
        ]
        .into_iter()
        .collect(),
        ..CreateTerminal::default()
    }
}

/// A plain interactive bash with a known prompt and no profile noise.
pub fn plain_shell() -> CreateTerminal {
    CreateTerminal {
        command: vec!["bash".into(), "--norc".into(), "--noprofile".into(), "-i".into()],
        env: [("PS1".to_owned(), "flint$ ".to_owned())].into_iter().collect(),
        ..CreateTerminal::default()
    }
}

pub async fn new_shell(client: &Client) -> TerminalId {
    client.create_terminal(&plain_shell()).await.expect("create terminal").id
}

/// What one attacher has received so far.
#[derive(Default)]
pub struct Seen {
    pub bytes: Vec<u8>,
    /// Offset of the first byte in `bytes`.
    pub first_offset: Option<u64>,
    pub next_offset: Option<u64>,
    pub missed: u64,
    pub exit: Option<proto::ExitStatus>,
    pub errors: Vec<String>,
    pub sizes: Vec<proto::terminal::Size>,
    /// The size the first frame (`Attached`) gave.
    pub attached_size: Option<proto::terminal::Size>,
}

impl Seen {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    /// Applies one frame, checking that output offsets are contiguous.
    pub fn apply(&mut self, frame: AttachDown) {
        match frame {
            AttachDown::Attached { offset, size } => {
                self.next_offset = Some(offset);
                self.attached_size = Some(size);
            }
            AttachDown::Output { offset, data } => {
                if let Some(expected) = self.next_offset {
                    assert_eq!(offset, expected, "output offsets must be contiguous");
                }
                self.first_offset.get_or_insert(offset);
                self.next_offset = Some(offset + data.len() as u64);
                self.bytes.extend_from_slice(&data);
            }
            AttachDown::Missed { from, to } => {
                assert!(to > from, "missed range must be non-empty");
                self.missed += to - from;
                self.next_offset = Some(to);
            }
            AttachDown::Resized(size) => self.sizes.push(size),
            AttachDown::Error(e) => self.errors.push(e),
            AttachDown::Exit(status) => self.exit = Some(status),
        }
    }
}

/// Reads frames until `done` holds for what was seen, or fails at the deadline.
pub async fn read_until(
    stream: &mut FrameStream<AttachDown>,
    seen: &mut Seen,
    what: &str,
    done: impl Fn(&Seen) -> bool,
) {
    let result = tokio::time::timeout(DEADLINE, async {
        while !done(seen) {
            match stream.next().await.expect("attach stream") {
                Some(frame) => seen.apply(frame),
                None => {
                    panic!("attach stream ended while waiting for {what}; saw {:?}", seen.text())
                }
            }
        }
    })
    .await;
    if result.is_err() {
        panic!("timed out waiting for {what}; saw {:?}", seen.text());
    }
}

/// Reads until the received text contains `needle`.
pub async fn read_until_text(stream: &mut FrameStream<AttachDown>, seen: &mut Seen, needle: &str) {
    read_until(stream, seen, needle, |s| s.text().contains(needle)).await;
}

pub async fn type_text(input: &FrameSender<AttachUp>, text: &str) {
    input.send(&AttachUp::Input(ByteBuf::from(text.as_bytes().to_vec()))).await.expect("type");
}

pub async fn attach(
    client: &Client,
    id: &TerminalId,
    query: AttachQuery,
) -> (FrameSender<AttachUp>, FrameStream<AttachDown>) {
    client.attach(id, query).await.expect("attach")
}

/// Polls `check` until it holds, or fails at the deadline.
pub async fn eventually(what: &str, check: impl Fn() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// True while a process exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// A `kB` field of `/proc/PID/status`, in bytes.
pub fn status_bytes(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        .expect("field")
        * 1024
}

pub fn sha256(bytes: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).to_vec()
}

/// Deterministic pseudo-random bytes (xorshift), so big payloads are not all one value.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

pub fn path_str(path: &Path) -> String {
    path.to_str().expect("utf-8 path").to_owned()
}

/// Polls the screen until `check` holds, or fails at the deadline.
pub async fn eventually_screen(
    agent: &TestAgent,
    id: &TerminalId,
    check: impl Fn(&proto::terminal::Screen) -> bool,
) -> proto::terminal::Screen {
    let start = Instant::now();
    loop {
        let screen = agent.client.screen(id).await.expect("screen");
        if check(&screen) {
            return screen;
        }
        assert!(start.elapsed() < DEADLINE, "screen never matched: {:#?}", screen.lines);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls terminal `id` until its shell reports `want` (within [`DEADLINE`]).
pub async fn wait_for_shell(client: &Client, id: &TerminalId, want: ShellState) {
    let start = Instant::now();
    loop {
        let state = client.terminal(id).await.expect("terminal").shell;
        if state == want {
            return;
        }
        assert!(start.elapsed() < DEADLINE, "shell stayed {state:?}, never {want:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
