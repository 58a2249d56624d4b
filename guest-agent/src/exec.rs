//! Running a command without a pty, in its own process group so a timeout kills it and its
//! children together.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Response;
use hyper::body::Incoming;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use proto::ExitStatus;
use proto::exec::{ExecDown, ExecRequest, ExecUp};
use serde_bytes::ByteBuf;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin};
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::http::{Body, FrameReader, frame, streaming};
use crate::server::Agent;

/// Output kept per stream in collect mode: both streams together stay under the 1 MiB frame
/// limit. Use streaming mode for more.
pub const COLLECT_LIMIT_BYTES: usize = 480 << 10;

/// After the command exits, how long to keep reading output that a background child of it
/// may still be writing to the inherited pipes.
const PIPE_DRAIN: Duration = Duration::from_millis(500);

/// Output frames queued before the command's pipes push back on it.
const QUEUE_FRAMES: usize = 16;

const READ_CHUNK_BYTES: usize = 64 << 10;

/// `POST /v1/exec`
pub async fn exec(agent: &Agent, body: Incoming) -> Result<Response<Body>> {
    let mut frames = FrameReader::new(body);
    let request = match frames.next::<ExecUp>().await? {
        Some(ExecUp::Start(request)) => request,
        Some(_) => return Err(Error::bad_request("the first exec frame must be Start")),
        None => return Err(Error::bad_request("exec stream ended before Start")),
    };
    let mut child = start(&request, agent)?;
    let pid = child.id().unwrap_or_default();
    let (tx, response) = streaming(proto::FRAMES_CONTENT_TYPE, QUEUE_FRAMES);
    let stdin = child.stdin.take();
    let request = Arc::new(request);
    tokio::spawn(async move {
        if let Ok(bytes) = frame(&ExecDown::Started { pid }) {
            let _ = tx.send(bytes).await;
        }
        if let Some(stdin) = stdin {
            tokio::spawn(feed_stdin(frames, stdin));
        }
        let last = match run(&mut child, pid, &request, &tx).await {
            Ok(last) => last,
            Err(e) => ExecDown::Error(e.to_string()),
        };
        if let Ok(bytes) = frame(&last) {
            let _ = tx.send(bytes).await;
        }
    });
    Ok(response)
}

fn start(request: &ExecRequest, agent: &Agent) -> Result<Child> {
    let Some(program) = request.argv.first() else {
        return Err(Error::bad_request("argv must name a program"));
    };
    let mut command = tokio::process::Command::new(program);
    command
        .args(&request.argv[1..])
        .current_dir(
            request.cwd.as_deref().map(std::path::Path::new).unwrap_or(&agent.config.workdir),
        )
        .envs(&agent.config.env)
        .envs(&request.env)
        .stdin(if request.stdin { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    command.spawn().map_err(|e| Error::io(&format!("starting {program}"), e))
}

async fn feed_stdin(mut frames: FrameReader, mut stdin: ChildStdin) {
    loop {
        match frames.next::<ExecUp>().await {
            Ok(Some(ExecUp::Stdin(data))) => {
                if stdin.write_all(&data).await.is_err() {
                    return;
                }
            }
            // End of stdin, a clean end of the request, or a bad frame: close stdin.
            Ok(Some(ExecUp::StdinEnd)) | Ok(None) | Ok(Some(ExecUp::Start(_))) | Err(_) => {
                let _ = stdin.shutdown().await;
                return;
            }
        }
    }
}

enum Chunk {
    Out(Vec<u8>),
    Err(Vec<u8>),
}

async fn run(
    child: &mut Child,
    pid: u32,
    request: &ExecRequest,
    tx: &mpsc::Sender<Bytes>,
) -> Result<ExecDown> {
    let (chunks_tx, mut chunks) = mpsc::channel::<Chunk>(QUEUE_FRAMES);
    if let Some(out) = child.stdout.take() {
        tokio::spawn(pump(out, chunks_tx.clone(), Chunk::Out));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(pump(err, chunks_tx.clone(), Chunk::Err));
    }
    drop(chunks_tx);

    let mut collected = (Vec::new(), Vec::new());
    let mut truncated = false;
    let mut on_chunk = |chunk: Chunk| -> Result<Option<Bytes>> {
        if request.collect {
            let (buf, data) = match chunk {
                Chunk::Out(data) => (&mut collected.0, data),
                Chunk::Err(data) => (&mut collected.1, data),
            };
            let room = COLLECT_LIMIT_BYTES.saturating_sub(buf.len());
            truncated |= data.len() > room;
            buf.extend_from_slice(&data[..data.len().min(room)]);
            return Ok(None);
        }
        let message = match chunk {
            Chunk::Out(data) => ExecDown::Stdout(ByteBuf::from(data)),
            Chunk::Err(data) => ExecDown::Stderr(ByteBuf::from(data)),
        };
        frame(&message).map(Some)
    };

    let deadline =
        request.timeout_ms.map(|ms| tokio::time::Instant::now() + Duration::from_millis(ms));
    let timeout = async {
        match deadline {
            Some(deadline) => tokio::time::sleep_until(deadline).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(timeout);
    let mut timed_out = false;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status.map_err(|e| Error::io("waiting for command", e))?,
            Some(chunk) = chunks.recv() => {
                if let Some(bytes) = on_chunk(chunk)?
                    && tx.send(bytes).await.is_err() {
                        // The client went away: stop the command.
                        kill_group(pid);
                    }
            }
            () = &mut timeout, if !timed_out => {
                timed_out = true;
                kill_group(pid);
            }
        }
    };
    // Drain what is left in the pipes; a background child may hold them open, so not forever.
    let drain = tokio::time::sleep(PIPE_DRAIN);
    tokio::pin!(drain);
    loop {
        tokio::select! {
            chunk = chunks.recv() => match chunk {
                None => break,
                Some(chunk) => if let Some(bytes) = on_chunk(chunk)? {
                    let _ = tx.send(bytes).await;
                },
            },
            () = &mut drain => break,
        }
    }
    if timed_out {
        // Children that left the group's leader behind die too.
        kill_group(pid);
    }
    let status = exit_status(status, timed_out);
    Ok(if request.collect {
        ExecDown::Finished {
            stdout: ByteBuf::from(collected.0),
            stderr: ByteBuf::from(collected.1),
            truncated,
            status,
        }
    } else {
        ExecDown::Exit(status)
    })
}

fn kill_group(pid: u32) {
    if let Ok(pid) = i32::try_from(pid)
        && pid > 0
    {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

fn exit_status(status: std::process::ExitStatus, timed_out: bool) -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    ExitStatus { code: status.code(), signal: status.signal(), timed_out }
}

async fn pump<R: AsyncRead + Unpin>(
    mut from: R,
    to: mpsc::Sender<Chunk>,
    wrap: fn(Vec<u8>) -> Chunk,
) {
    let mut buf = vec![0u8; READ_CHUNK_BYTES];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if to.send(wrap(buf[..n].to_vec())).await.is_err() {
                    return;
                }
            }
        }
    }
}
