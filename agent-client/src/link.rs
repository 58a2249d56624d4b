//! The agent link's settings, the same at both ends: HTTP/2 windows, stream and tunnel
//! limits, keepalive.

use std::time::Duration;

/// HTTP/2 receive window of one stream: 1 MiB in flight is plenty for a fast tunnel on a
/// local link, and bounds what one stalled stream can hold.
pub const STREAM_WINDOW_BYTES: u32 = 1 << 20;

/// HTTP/2 receive window of the whole connection: 64 stream windows, so that even
/// [`MAX_TUNNELS`] stalled tunnels plus stalled terminals cannot use it all up (no
/// head-of-line blocking across streams).
pub const CONNECTION_WINDOW_BYTES: u32 = 64 * STREAM_WINDOW_BYTES;

/// Concurrent tunnels per agent (one agent per session); well below the
/// connection window divided by the stream window. The server queues its previews' tunnels
/// below this; a tunnel asked for while all are open waits for one, at most
/// [`TUNNEL_WAIT`].
pub const MAX_TUNNELS: usize = 32;

/// How long a tunnel waits for one of [`MAX_TUNNELS`] to close before it is refused.
pub const TUNNEL_WAIT: Duration = Duration::from_secs(30);

/// Keepalive of the agent link, both ends: a ping this often, even while idle, and the
/// connection is closed when its answer takes longer than [`KEEPALIVE_TIMEOUT`]. The server
/// then reconnects (a stopped or wedged agent shows as a degraded session, never as a
/// running one that answers nothing).
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);

/// See [`KEEPALIVE_INTERVAL`].
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Concurrent HTTP/2 streams of any kind.
pub const MAX_STREAMS: u32 = 256;

/// Largest HTTP/2 frame: 64 KiB, fewer frames for bulk data than the 16 KiB default.
pub const MAX_FRAME_BYTES: u32 = 64 << 10;
