//! One terminal tab's link to its shell: xterm.js on one side, the terminal websocket on the
//! other, reconnecting with backoff and resuming at the next expected output offset.
//!
//! Server → browser: binary messages are an 8-byte big-endian offset and output bytes;
//! text messages are [`TerminalServerMessage`]. Browser → server: keystrokes as binary
//! messages, the room the pane has as [`TerminalClientMessage`].
//!
//! The tab shows exactly the pty's size, which the server tells on attach and on every
//! change; the pane's own room is only asked for (the pty takes it while this person is the
//! one who typed last: see `guest-agent/src/sizing.rs`). Close codes: 4404 no such terminal (final),
//! 4401 the credential ended (final), 4502 the agent failed (retried).

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use js_sys::{ArrayBuffer, Uint8Array};
use leptos::prelude::*;
use proto::api::{OUTPUT_OFFSET_BYTES, TerminalClientMessage, TerminalServerMessage};
use wasm_bindgen::prelude::*;
use web_sys::KeyboardEvent;

use super::cursor::{Gap, OutputCursor};
use super::xterm::{self, Disposable, Xterm};
use crate::api;
use crate::socket::{Link, Reconnect, Socket, SocketEvent};

/// Close code: the terminal does not exist (killed, or never did).
const CLOSE_NO_SUCH_TERMINAL: u16 = 4404;

/// Close code: the person's access to the session ended (final).
const CLOSE_ACCESS_ENDED: u16 = 4403;

/// Close code (final): the credential the socket was opened with ended (signed out here or
/// in another tab, the sign-in expired, the token revoked); the reason says which.
const CLOSE_CREDENTIAL_ENDED: u16 = 4401;

/// What the tab shows about its link (all reactive, all `Copy`).
#[derive(Clone, Copy)]
pub struct TermSignals {
    /// The websocket.
    pub link: RwSignal<Link>,
    /// Why the link ended for good (the shell exited, the terminal is gone).
    pub ended: RwSignal<Option<String>>,
    /// The pty's size in cells, which the tab shows.
    pub size: RwSignal<(u16, u16)>,
    /// The size the pane has room for (what this tab asks the pty to be).
    pub room: RwSignal<(u16, u16)>,
}

impl TermSignals {
    /// A tab that is connecting.
    pub fn connecting() -> TermSignals {
        TermSignals {
            link: RwSignal::new(Link::Connecting),
            ended: RwSignal::new(None),
            size: RwSignal::new((0, 0)),
            room: RwSignal::new((0, 0)),
        }
    }
}

/// What the tab needs from around it.
pub struct Hooks {
    /// `Some(why)` when reconnecting is pointless (the session no longer runs).
    pub give_up: Box<dyn Fn() -> Option<String>>,
    /// A message for the error banner.
    pub error: Box<dyn Fn(String)>,
    /// Key events xterm must leave alone (the app's shortcuts).
    pub is_shortcut: Box<dyn Fn(&KeyboardEvent) -> bool>,
    /// A viewer's tab: keystrokes are not sent (the server would refuse them anyway).
    pub read_only: bool,
    /// The person's access to the session ended (an invite revoked, removed).
    pub access_ended: Box<dyn Fn()>,
}

/// A terminal tab's xterm and websocket. Dropping it does not tear it down: call
/// [`TerminalConn::close`].
#[derive(Clone)]
pub struct TerminalConn(Rc<RefCell<Inner>>);

struct Inner {
    session: String,
    terminal: String,
    xterm: Xterm,
    /// The element xterm is rendered into, which scrolls it: its box is the room there is.
    pane: web_sys::HtmlElement,
    /// The room last asked for on this connection.
    asked: Option<(u16, u16)>,
    signals: TermSignals,
    hooks: Hooks,
    cursor: OutputCursor,
    socket: Option<Socket>,
    reconnect: Reconnect,
    /// Closed by the tab, or ended for good: never reconnect.
    done: bool,
    listeners: Vec<Disposable>,
    _closures: Closures,
}

/// The JS callbacks xterm holds; they live as long as the tab.
struct Closures {
    _data: Closure<dyn FnMut(String)>,
    _binary: Closure<dyn FnMut(String)>,
    _keys: Closure<dyn FnMut(KeyboardEvent) -> bool>,
}

impl TerminalConn {
    /// A tab for `terminal` of `session`, rendered into `parent`, connecting right away.
    pub fn open(
        session: &str,
        terminal: &str,
        parent: &web_sys::HtmlElement,
        signals: TermSignals,
        hooks: Hooks,
    ) -> TerminalConn {
        let xterm = Xterm::create();
        let conn = Rc::new_cyclic(|weak: &Weak<RefCell<Inner>>| {
            let closures = Closures {
                _data: input_closure(weak.clone(), |text| text.into_bytes()),
                // onBinary gives one char per byte.
                _binary: input_closure(weak.clone(), |text| {
                    text.chars().map(|c| c as u8).collect()
                }),
                _keys: keys_closure(weak.clone()),
            };
            let listeners =
                vec![xterm.term.on_data(&closures._data), xterm.term.on_binary(&closures._binary)];
            xterm.term.attach_custom_key_event_handler(&closures._keys);
            RefCell::new(Inner {
                session: session.to_owned(),
                terminal: terminal.to_owned(),
                xterm: xterm.clone(),
                pane: parent.clone(),
                asked: None,
                signals,
                hooks,
                cursor: OutputCursor::default(),
                socket: None,
                reconnect: Reconnect::new(signals.link),
                done: false,
                listeners,
                _closures: closures,
            })
        });
        xterm.term.open(parent);
        xterm::register(terminal, &xterm.term);
        // Until the server tells the pty's size, the pane's own.
        if let Some((cols, rows)) = xterm.room_in(parent) {
            xterm.set_size(cols, rows);
        }
        signals.size.set((xterm.term.cols(), xterm.term.rows()));
        let conn = TerminalConn(conn);
        conn.connect();
        conn
    }

    /// Measures the pane again (it changed size, or was shown) and asks for its room.
    pub fn measure(&self) {
        let inner = &mut *self.0.borrow_mut();
        inner.xterm.frame();
        ask_for_room(inner);
    }

    /// Gives the terminal the keyboard.
    pub fn focus(&self) {
        let xterm = self.0.borrow().xterm.clone();
        xterm.term.focus();
    }

    /// The size in cells the pane has room for (else the pty's).
    pub fn size(&self) -> (u16, u16) {
        let inner = self.0.borrow();
        inner
            .xterm
            .room_in(&inner.pane)
            .unwrap_or((inner.xterm.term.cols(), inner.xterm.term.rows()))
    }

    /// Retries now instead of waiting for the backoff.
    pub fn retry_now(&self) {
        let mut inner = self.0.borrow_mut();
        if inner.done || inner.socket.is_some() {
            return;
        }
        inner.reconnect.cancel();
        drop(inner);
        self.connect();
    }

    /// Tears the tab down: socket, timers, listeners, xterm, the test hook.
    pub fn close(&self) {
        let mut inner = self.0.borrow_mut();
        inner.done = true;
        inner.reconnect.cancel();
        inner.socket = None;
        for listener in inner.listeners.drain(..) {
            listener.dispose();
        }
        xterm::unregister(&inner.terminal);
        inner.xterm.term.dispose();
    }

    fn connect(&self) {
        let weak = Rc::downgrade(&self.0);
        let mut inner = self.0.borrow_mut();
        if inner.done {
            return;
        }
        let path =
            api::terminal_ws_path(&inner.session, &inner.terminal, inner.cursor.resume_offset());
        inner.asked = None;
        match Socket::open(&path, move |event| on_event(&weak, event)) {
            Ok(socket) => inner.socket = Some(socket),
            Err(message) => {
                (inner.hooks.error)(message);
                drop(inner);
                schedule(&self.0);
            }
        }
    }
}

/// Plans the next try, unless the link ended for good.
fn schedule(this: &Rc<RefCell<Inner>>) {
    let mut inner = this.borrow_mut();
    if inner.done {
        return;
    }
    if let Some(why) = (inner.hooks.give_up)() {
        end(&mut inner, why);
        return;
    }
    let weak = Rc::downgrade(this);
    inner.reconnect.schedule(move || {
        if let Some(this) = weak.upgrade() {
            TerminalConn(this).connect();
        }
    });
}

/// The link ended for good.
fn end(inner: &mut Inner, why: String) {
    inner.done = true;
    inner.signals.link.set(Link::Offline);
    inner.signals.ended.set(Some(why));
}

fn on_event(weak: &Weak<RefCell<Inner>>, event: SocketEvent) {
    let Some(this) = weak.upgrade() else { return };
    match event {
        SocketEvent::Open => {}
        SocketEvent::Binary(buffer) => output(&mut this.borrow_mut(), &buffer),
        SocketEvent::Text(text) => match serde_json::from_str::<TerminalServerMessage>(&text) {
            Ok(message) => control(&mut this.borrow_mut(), message),
            Err(error) => leptos::logging::warn!("unexpected terminal message: {error}"),
        },
        SocketEvent::Closed { code, reason } => {
            let socket = {
                let mut inner = this.borrow_mut();
                if code == CLOSE_ACCESS_ENDED && !inner.done {
                    end(&mut inner, "your access to this session ended".to_owned());
                    (inner.hooks.access_ended)();
                }
                if code == CLOSE_CREDENTIAL_ENDED && !inner.done {
                    let why = if reason.is_empty() {
                        "your sign-in ended".into()
                    } else {
                        reason.clone()
                    };
                    end(&mut inner, why);
                }
                if code == CLOSE_NO_SUCH_TERMINAL && !inner.done {
                    let why =
                        if reason.is_empty() { "the terminal is gone".into() } else { reason };
                    end(&mut inner, why);
                }
                inner.socket.take()
            };
            // This runs inside the socket's own handler: drop it once the handler returned.
            queue_microtask(move || drop(socket));
            schedule(&this);
        }
    }
}

/// A binary output message: write what the tab does not have yet.
fn output(inner: &mut Inner, buffer: &ArrayBuffer) {
    let total = buffer.byte_length() as usize;
    if total < OUTPUT_OFFSET_BYTES {
        return;
    }
    let mut offset = [0u8; OUTPUT_OFFSET_BYTES];
    Uint8Array::new_with_byte_offset_and_length(buffer, 0, OUTPUT_OFFSET_BYTES as u32)
        .copy_to(&mut offset);
    let offset = u64::from_be_bytes(offset);
    let Some(accept) = inner.cursor.output(offset, total - OUTPUT_OFFSET_BYTES) else { return };
    if let Some(gap) = accept.gap {
        write_gap(inner, gap);
    }
    // A view into the message's own buffer: JS owns it, xterm may keep it.
    let start = (OUTPUT_OFFSET_BYTES + accept.skip) as u32;
    inner.xterm.term.write_bytes(&Uint8Array::new_with_byte_offset(buffer, start));
}

fn control(inner: &mut Inner, message: TerminalServerMessage) {
    match message {
        TerminalServerMessage::Attached { offset, cols, rows } => {
            inner.reconnect.connected();
            if let Some(gap) = inner.cursor.attached(offset) {
                write_gap(inner, gap);
            }
            show_size(inner, cols, rows);
            inner.asked = None;
            ask_for_room(inner);
        }
        TerminalServerMessage::Missed { from, to } => {
            if let Some(gap) = inner.cursor.missed(from, to) {
                write_gap(inner, gap);
            }
        }
        TerminalServerMessage::Resized { cols, rows } => show_size(inner, cols, rows),
        TerminalServerMessage::Error { message } => (inner.hooks.error)(message),
        TerminalServerMessage::Exit { code, signal } => {
            let why = match (code, signal) {
                (_, Some(signal)) => format!("the shell was killed by signal {signal}"),
                (Some(code), None) => format!("the shell exited with code {code}"),
                (None, None) => "the shell exited".to_owned(),
            };
            inner.xterm.term.write_str(&format!("\r\n\x1b[2m[{why}]\x1b[0m\r\n"));
            end(inner, why);
        }
    }
}

/// A dim line saying output was lost.
fn write_gap(inner: &Inner, gap: Gap) {
    let notice = format!(
        "\r\n\x1b[2m[{} bytes of output were lost here (offsets {}–{}): this tab fell too far behind]\x1b[0m\r\n",
        gap.bytes(),
        gap.from,
        gap.to
    );
    inner.xterm.term.write_str(&notice);
}

/// The pty's size: the tab shows exactly that (letterboxed or scrolled in its pane).
fn show_size(inner: &Inner, cols: u16, rows: u16) {
    inner.xterm.set_size(cols, rows);
    inner.signals.size.set((inner.xterm.term.cols(), inner.xterm.term.rows()));
}

/// Tells the server how much room the pane has, when that changed since it was last told.
/// A viewer's room is never asked for (the server would ignore it).
fn ask_for_room(inner: &mut Inner) {
    let Some(room) = inner.xterm.room_in(&inner.pane) else { return };
    inner.signals.room.set(room);
    if inner.hooks.read_only || inner.asked == Some(room) {
        return;
    }
    let (cols, rows) = room;
    let message = TerminalClientMessage::Resize { cols, rows };
    if let (Some(socket), Ok(text)) = (&inner.socket, serde_json::to_string(&message))
        && socket.send_text(&text)
    {
        inner.asked = Some(room);
    }
}

/// Keystrokes go up as binary messages; dropped while not connected (typing into a
/// reconnecting terminal is not replayed later, like a real terminal over a dropped link).
fn input_closure(
    weak: Weak<RefCell<Inner>>,
    to_bytes: fn(String) -> Vec<u8>,
) -> Closure<dyn FnMut(String)> {
    Closure::new(move |text: String| {
        let Some(this) = weak.upgrade() else { return };
        let Ok(inner) = this.try_borrow() else { return };
        if inner.hooks.read_only {
            return;
        }
        if let Some(socket) = &inner.socket {
            socket.send_bytes(&to_bytes(text));
        }
    })
}

fn keys_closure(weak: Weak<RefCell<Inner>>) -> Closure<dyn FnMut(KeyboardEvent) -> bool> {
    Closure::new(move |event: KeyboardEvent| {
        let Some(this) = weak.upgrade() else { return true };
        let Ok(inner) = this.try_borrow() else { return true };
        // False: xterm ignores the key and it bubbles to the window's shortcut handler.
        !(inner.hooks.is_shortcut)(&event)
    })
}
