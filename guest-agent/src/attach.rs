//! Attach streams of shared terminals: each attacher reads the ring at its own offset and
//! sends frames into a bounded queue; what it sends up (keys, resizes) goes to the pty.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http::{Response, Uri};
use hyper::body::Incoming;
use proto::terminal::{AttachDown, AttachQuery, AttachUp, OutputQuery, Role, Size, TerminalId};
use serde_bytes::ByteBuf;
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::http::{Body, FrameReader, frame, frames, query, streaming};
use crate::ring::Read;
use crate::server::Agent;
use crate::terminal::{Cursor, Terminal};

/// Largest output frame sent to an attacher.
const OUTPUT_FRAME_BYTES: usize = 64 << 10;

/// Frames queued per attacher before it counts as slow and starts to fall behind the ring
/// (it then resumes from the ring, skipping what was overwritten).
const ATTACH_QUEUE_FRAMES: usize = 8;

/// Counts an attacher, and keeps its cursor registered, for as long as its output stream
/// lives.
struct Attachment {
    terminal: Arc<Terminal>,
    cursor: Arc<Cursor>,
}

impl Attachment {
    fn new(terminal: Arc<Terminal>, start: u64) -> Attachment {
        let cursor = Arc::new(Cursor {
            next: AtomicU64::new(start),
            lagging: std::sync::atomic::AtomicBool::new(false),
        });
        terminal.attached.fetch_add(1, Ordering::Relaxed);
        terminal.state().cursors.push(cursor.clone());
        Attachment { terminal, cursor }
    }

    /// Everything before `next` is sent; `caught_up` when nothing newer exists.
    fn advance(&self, next: u64, caught_up: bool) {
        self.cursor.next.store(next, Ordering::Relaxed);
        if caught_up {
            self.cursor.lagging.store(false, Ordering::Relaxed);
        }
        self.terminal.advanced.notify_all();
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        self.terminal.attached.fetch_sub(1, Ordering::Relaxed);
        self.terminal.state().cursors.retain(|c| !Arc::ptr_eq(c, &self.cursor));
        self.terminal.advanced.notify_all();
    }
}

/// `POST /v1/terminals/{id}/attach`
pub async fn attach(
    agent: &Agent,
    id: &TerminalId,
    uri: &Uri,
    body: Incoming,
) -> Result<Response<Body>> {
    let terminal = agent.terminals.get(id)?;
    let attach: AttachQuery = query(uri)?;
    let attacher = terminal.next_attacher.fetch_add(1, Ordering::Relaxed);
    let (tx, response) = streaming(proto::FRAMES_CONTENT_TYPE, ATTACH_QUEUE_FRAMES);
    let start = {
        let state = terminal.state();
        attach.offset.unwrap_or(state.ring.start()).min(state.ring.end())
    };
    let attachment = Attachment::new(terminal.clone(), start);
    let span = tracing::debug_span!("attach", terminal = %id, attacher, role = ?attach.role);
    let down = tx.clone();
    tokio::spawn(tracing::Instrument::instrument(
        async move {
            if let Err(e) = pump_output(&terminal, &attachment, start, &down).await {
                tracing::debug!("output stream ended: {e}");
            }
        },
        span.clone(),
    ));
    let terminal = agent.terminals.get(id)?;
    tokio::spawn(tracing::Instrument::instrument(
        read_input(terminal, attacher, attach.role, body, tx),
        span,
    ));
    Ok(response)
}

/// Sends the ring from `next` on, then new output as it comes, then the exit.
async fn pump_output(
    terminal: &Terminal,
    attachment: &Attachment,
    mut next: u64,
    tx: &mpsc::Sender<Bytes>,
) -> Result<()> {
    let send = |message: AttachDown| async move {
        tx.send(frame(&message)?).await.map_err(|_| Error::Transport("attacher went away".into()))
    };
    let mut output = terminal.output.subscribe();
    let mut sizes = terminal.sizes.subscribe();
    let size = *sizes.borrow_and_update();
    send(AttachDown::Attached { offset: next, size }).await?;
    loop {
        output.borrow_and_update();
        loop {
            let (read, exit) = {
                let state = terminal.state();
                (state.ring.read(next, OUTPUT_FRAME_BYTES), state.exit)
            };
            match read {
                Read::Bytes(data) => {
                    let offset = next;
                    next += data.len() as u64;
                    send(AttachDown::Output { offset, data: ByteBuf::from(data) }).await?;
                    attachment.advance(next, false);
                }
                Read::Missed { to } => {
                    send(AttachDown::Missed { from: next, to }).await?;
                    next = to;
                    attachment.advance(next, false);
                }
                Read::Nothing => {
                    attachment.advance(next, true);
                    match exit {
                        Some(status) => return send(AttachDown::Exit(status)).await,
                        None => break,
                    }
                }
            }
        }
        tokio::select! {
            changed = output.changed() => if changed.is_err() { return Ok(()) },
            changed = sizes.changed() => {
                if changed.is_err() { return Ok(()) }
                let size = *sizes.borrow_and_update();
                send(AttachDown::Resized(size)).await?;
            }
            () = tx.closed() => return Ok(()),
        }
    }
}

/// Applies what an attacher sends; problems go back to it as error frames. A viewer's
/// window sizes nothing (ignored without a word: every window has a size); a viewer's keys
/// are refused.
async fn read_input(
    terminal: Arc<Terminal>,
    attacher: u64,
    role: Role,
    body: Incoming,
    tx: mpsc::Sender<Bytes>,
) {
    let complain = |message: String| {
        let tx = tx.clone();
        async move {
            if let Ok(bytes) = frame(&AttachDown::Error(message)) {
                let _ = tx.send(bytes).await;
            }
        }
    };
    let _left = Detach { terminal: terminal.clone(), attacher };
    let mut frames = FrameReader::new(body);
    // This writer's window, as it last said.
    let mut window = None;
    loop {
        let up = match frames.next::<AttachUp>().await {
            Ok(Some(up)) => up,
            Ok(None) => return,
            Err(e) => {
                // The stream cannot be resynchronised after a bad frame.
                complain(format!("{e}; input closed")).await;
                return;
            }
        };
        match (role, up) {
            (Role::Viewer, AttachUp::Input(_)) => {
                complain("viewers cannot type".to_owned()).await;
            }
            (_, AttachUp::Resize(size)) if !size.is_valid() => {
                complain(format!("size must be 1..={} each way", Size::MAX)).await;
            }
            (Role::Viewer, AttachUp::Resize(_)) => {}
            (Role::Writer, AttachUp::Input(data)) => {
                if let Err(e) = terminal.typed_by(attacher, window) {
                    complain(e.to_string()).await;
                }
                if terminal.send_input(Bytes::from(data.into_vec())).await.is_err() {
                    return;
                }
            }
            (Role::Writer, AttachUp::Resize(size)) => {
                window = Some(size);
                if let Err(e) = terminal.window_resized(attacher, size) {
                    complain(e.to_string()).await;
                }
            }
        }
    }
}

/// Tells the terminal its attacher stopped sending (it may have been the typist).
struct Detach {
    terminal: Arc<Terminal>,
    attacher: u64,
}

impl Drop for Detach {
    fn drop(&mut self) {
        self.terminal.detached(self.attacher);
    }
}

/// `GET /v1/terminals/{id}/output?from=&to=`: the part of `from..to` the scrollback still
/// holds, as attach frames (`Missed` for what is gone, then `Output` chunks), without
/// attaching. A relay that dropped output for a slow client fills the hole with it later.
pub fn output(agent: &Agent, id: &TerminalId, uri: &Uri) -> Result<Response<Body>> {
    let terminal = agent.terminals.get(id)?;
    let range: OutputQuery = query(uri)?;
    if range.to < range.from {
        return Err(Error::bad_request("`to` is before `from`"));
    }
    let mut body = Vec::new();
    let state = terminal.state();
    let to = range.to.min(state.ring.end());
    let mut next = range.from;
    while next < to {
        let want = usize::try_from(to - next).unwrap_or(usize::MAX).min(OUTPUT_FRAME_BYTES);
        let message = match state.ring.read(next, want) {
            Read::Bytes(data) => {
                let offset = next;
                next += data.len() as u64;
                AttachDown::Output { offset, data: ByteBuf::from(data) }
            }
            Read::Missed { to: start } => {
                let from = next;
                next = start.min(to);
                AttachDown::Missed { from, to: next }
            }
            Read::Nothing => break,
        };
        body.extend_from_slice(&frame(&message)?);
    }
    Ok(frames(body))
}
