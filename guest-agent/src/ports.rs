//! The port watcher: lists listening TCP sockets ten times a second (a netlink `sock_diag`
//! dump, see [`listening`]) and publishes open and close events. The owning process is looked
//! up once, when a port opens.

mod listening;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use http::Response;
use proto::ports::{Listener, PortEvent, PortList};
use tokio::sync::broadcast;

use self::listening::ListeningSockets;
use crate::error::Result;
use crate::http::{Body, frame, json, streaming};
use crate::server::Agent;

/// Poll period: 100 ms keeps an open event well within 250 ms of `listen()` at the cost of
/// one dump of the listening sockets ten times a second.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Events buffered per subscriber; one that falls further behind gets a fresh snapshot.
const EVENT_BUFFER: usize = 256;

type Key = (IpAddr, u16);

/// Watches listening sockets.
pub struct PortWatcher {
    current: Mutex<BTreeMap<Key, Listener>>,
    events: broadcast::Sender<PortEvent>,
    hidden_port: Option<u16>,
    /// The shared browser's DevTools port while it runs, hidden like the agent's: a
    /// [`HiddenPort`] (0: none).
    browser_port: AtomicU64,
    hidings: AtomicU64,
    scan: tokio::sync::Mutex<()>,
    /// Used by one scan at a time (under `scan`), in a blocking task.
    listening: Arc<Mutex<ListeningSockets>>,
}

impl PortWatcher {
    /// Starts polling; `hidden_port` (the agent's own TCP port) is never reported.
    pub fn start(interval: Duration, hidden_port: Option<u16>) -> Arc<PortWatcher> {
        let watcher = Arc::new(PortWatcher {
            current: Mutex::default(),
            events: broadcast::channel(EVENT_BUFFER).0,
            hidden_port,
            browser_port: AtomicU64::new(0),
            hidings: AtomicU64::new(0),
            scan: tokio::sync::Mutex::new(()),
            listening: Arc::new(Mutex::new(ListeningSockets::open())),
        });
        let weak = Arc::downgrade(&watcher);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let Some(watcher) = weak.upgrade() else {
                    return;
                };
                watcher.scan_now().await;
            }
        });
        watcher
    }

    /// Hides `port` (the shared browser's DevTools port) from the listing and the events until
    /// released. A listing that already holds the port drops it (with a `Closed` event).
    pub fn hide_browser_port(&self, port: u16) -> HiddenPort {
        let hiding = self.hidings.fetch_add(1, Ordering::SeqCst) + 1;
        let hidden = HiddenPort((hiding << 16) | u64::from(port));
        // Stored before taking the lock: a scan publishing after this sees the new value, and
        // one that published before is undone below.
        self.browser_port.store(hidden.0, Ordering::SeqCst);
        let mut current = self.current();
        let listed: Vec<Key> = current.keys().filter(|(_, p)| *p == port).copied().collect();
        for key in listed {
            current.remove(&key);
            let _ = self.events.send(PortEvent::Closed { address: key.0, port: key.1 });
        }
        hidden
    }

    /// Shows the port again, unless another hiding (a newer browser's, even of the same
    /// port number) replaced this one.
    pub fn release_browser_port(&self, hidden: HiddenPort) {
        let _ = self.browser_port.compare_exchange(hidden.0, 0, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// The shared browser's DevTools port, while it runs.
    pub fn browser_port(&self) -> Option<u16> {
        let hidden = self.browser_port.load(Ordering::SeqCst);
        (hidden != 0).then_some(hidden as u16)
    }

    fn current(&self) -> MutexGuard<'_, BTreeMap<Key, Listener>> {
        self.current.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Scans once now and publishes the differences.
    pub async fn scan_now(self: &Arc<Self>) {
        let _one_at_a_time = self.scan.lock().await;
        let known: Vec<Key> = self.current().keys().copied().collect();
        let hidden = self.hidden_port;
        let listening = Arc::clone(&self.listening);
        let scanned = tokio::task::spawn_blocking(move || {
            let found = listening.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).list();
            scan(found, &known, hidden)
        })
        .await;
        let Ok((seen, opened)) = scanned else { return };
        // Publish under the lock, so a subscriber's snapshot and its events never overlap.
        let mut current = self.current();
        let browser_port = self.browser_port();
        let closed: Vec<Key> = current.keys().filter(|k| !seen.contains_key(k)).copied().collect();
        for key in closed {
            current.remove(&key);
            let _ = self.events.send(PortEvent::Closed { address: key.0, port: key.1 });
        }
        for listener in opened {
            let key = (listener.address, listener.port);
            if current.contains_key(&key) || Some(listener.port) == browser_port {
                continue;
            }
            current.insert(key, listener.clone());
            let _ = self.events.send(PortEvent::Opened(listener));
        }
    }

    /// Every listener now.
    pub fn listeners(&self) -> Vec<Listener> {
        self.current().values().cloned().collect()
    }

    /// The address to dial for `port`: loopback when it listens on a wildcard, IPv4 first.
    pub fn dial_address(&self, port: u16) -> Option<IpAddr> {
        let current = self.current();
        let mut candidates: Vec<IpAddr> = current
            .keys()
            .filter(|(_, p)| *p == port)
            .map(|(address, _)| match address {
                IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(a) if a.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
                other => *other,
            })
            .collect();
        candidates.sort_by_key(|a| (!a.is_loopback(), a.is_ipv6()));
        candidates.first().copied()
    }
}

/// One hiding of the browser's DevTools port: a sequence number and the port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HiddenPort(u64);

/// Keys the listening sockets; looks up owners only for keys not already known.
fn scan(
    found: Vec<listening::Found>,
    known: &[Key],
    hidden: Option<u16>,
) -> (HashMap<Key, u64>, Vec<Listener>) {
    let seen: HashMap<Key, u64> = found
        .into_iter()
        .filter(|(_, port, _)| Some(*port) != hidden)
        .map(|(address, port, inode)| ((address, port), inode))
        .collect();
    let new: Vec<(Key, u64)> =
        seen.iter().filter(|(k, _)| !known.contains(k)).map(|(k, i)| (*k, *i)).collect();
    let owners = if new.is_empty() {
        HashMap::new()
    } else {
        owners_of(new.iter().map(|(_, i)| *i).collect())
    };
    let opened = new
        .into_iter()
        .map(|((address, port), inode)| {
            let owner = owners.get(&inode);
            Listener {
                address,
                port,
                pid: owner.map(|(pid, _)| *pid),
                process: owner.map(|(_, name)| name.clone()),
            }
        })
        .collect();
    (seen, opened)
}

/// Finds the processes holding these socket inodes by reading `/proc/*/fd`.
fn owners_of(inodes: Vec<u64>) -> HashMap<u64, (u32, String)> {
    let mut found = HashMap::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in procs.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let target = target.to_string_lossy();
            let Some(inode) = target
                .strip_prefix("socket:[")
                .and_then(|s| s.strip_suffix(']'))
                .and_then(|s| s.parse::<u64>().ok())
            else {
                continue;
            };
            if inodes.contains(&inode) && !found.contains_key(&inode) {
                let name = std::fs::read_to_string(entry.path().join("comm"))
                    .map(|s| s.trim_end().to_owned())
                    .unwrap_or_default();
                found.insert(inode, (pid, name));
            }
        }
        if found.len() == inodes.len() {
            break;
        }
    }
    found
}

/// `GET /v1/ports`
pub fn list(agent: &Agent) -> Result<Response<Body>> {
    json(&PortList { listeners: agent.ports.listeners() })
}

/// `GET /v1/ports/events`: a snapshot, then events; a subscriber that falls behind gets a
/// fresh snapshot instead of the events it missed.
pub fn events(agent: &Agent) -> Result<Response<Body>> {
    let watcher = agent.ports.clone();
    let (tx, response) = streaming(proto::FRAMES_CONTENT_TYPE, 16);
    let (snapshot, mut events) = {
        let current = watcher.current();
        (current.values().cloned().collect::<Vec<_>>(), watcher.events.subscribe())
    };
    tokio::spawn(async move {
        let mut next = Some(PortEvent::Snapshot(snapshot));
        loop {
            if let Some(event) = next.take() {
                let Ok(bytes) = frame(&event) else { return };
                if tx.send(bytes).await.is_err() {
                    return;
                }
            }
            tokio::select! {
                event = events.recv() => match event {
                    Ok(event) => next = Some(event),
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let current = watcher.current();
                        events = events.resubscribe();
                        next = Some(PortEvent::Snapshot(current.values().cloned().collect()));
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                () = tx.closed() => return,
            }
        }
    });
    Ok(response)
}
